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
struct store_ops;
struct wakeup;

typedef void wakeup_cb(void *arg);

/*
 * Listen on the store at target (copied; a DSN is a secret, never
 * logged) for ops that have listen.  Connects from the loop at once and
 * again after a loss, every second while the store is away; cb also runs
 * after each (re)connect, for what may have been missed.  Loop thread only.
 */
struct wakeup	*wakeup_open(struct event_base *, const struct store_ops *,
		    const char *target, wakeup_cb *cb, void *arg);
void		 wakeup_close(struct wakeup *);

#endif
