/*
 * wakeup.h: wake-ups from other replicas sharing the state store.  A
 * connection of its own listens (store ops listen, wait_fd,
 * drain_notifications); its socket is watched by the event loop, and each
 * wake-up from another process calls back, so an idle replica claims a
 * job queued through another one at once instead of at its next timer.
 */
#ifndef GITOPSD_WAKEUP_H
#define GITOPSD_WAKEUP_H

struct event_base;
struct store;
struct store_ops;
struct wakeup;

typedef void wakeup_cb(void *arg);

/*
 * Listen on the store at target (copied; a DSN is a secret, never
 * logged) for ops that have listen.  Connects from the loop at once and
 * again after a loss, without blocking it (wakeup_dial), retrying after
 * 1 s, then 2 s, up to 5 s while the store is away; cb also runs after
 * each (re)connect, for what may have been missed.  Loop thread only.
 */
struct wakeup	*wakeup_open(struct event_base *, const struct store_ops *,
		    const char *target, wakeup_cb *cb, void *arg);
void		 wakeup_close(struct wakeup *);

/* A connection being made gives up after this long. */
#define WAKEUP_CONNECT_MS	10000

/*
 * Make st (just begun by the ops' open_start or reconnect_start) on the
 * loop, one step per socket event: cb(arg, 0, NULL) once it is made,
 * cb(arg, -1, reason) when it failed or WAKEUP_CONNECT_MS passed.  The
 * dial is gone when cb runs, never before wakeup_dial returned;
 * wakeup_dial_cancel stops it before (st is the caller's either way).
 * NULL: no memory for events.  Loop thread only.
 */
struct wakeup_dial;
typedef void wakeup_dial_cb(void *arg, int rc, const char *err);
struct wakeup_dial *wakeup_dial(struct event_base *, const struct store_ops *,
		    struct store *, wakeup_dial_cb *cb, void *arg);
void		 wakeup_dial_cancel(struct wakeup_dial *);

#endif
