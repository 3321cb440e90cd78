/*
 * wakeup.c: the loop's listening connection for wake-ups between replicas
 * (include/wakeup.h), and the loop's way of making a store connection
 * without blocking (wakeup_dial).  Its own connection, not the admin
 * API's: a query on a connection reads its pending notifications into
 * libpq's memory, after which the socket no longer shows them as
 * readable.  The connection is made from a timer (at once, then with a
 * backoff while the store is away), never inside the caller's start-up: a
 * replica whose store is down still starts and answers 503 as before.
 *
 * Connections are made step by step on socket events (store ops
 * open_start, reconnect_start, connect_poll), each bounded by
 * WAKEUP_CONNECT_MS: a blocking connect to a host that drops packets
 * would hold the whole loop (hooks, /healthz, the status page) for the
 * kernel's TCP timeout, minutes.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "log.h"
#include "store.h"
#include "util.h"
#include "wakeup.h"

#define WAKEUP_RETRY_MS		1000	/* first retry, doubled to ... */
#define WAKEUP_RETRY_MAX_MS	5000

struct wakeup_dial {
	struct event_base	*base;
	const struct store_ops	*ops;
	struct store		*st;
	struct event		*ev;
	int64_t			 deadline;	/* monotonic ms */
	wakeup_dial_cb		*cb;
	void			*arg;
};

struct wakeup {
	struct event_base	*base;
	const struct store_ops	*ops;
	char			*target;
	struct store		*st;
	struct wakeup_dial	*dial;		/* st being made */
	struct event		*ev;		/* the socket, while connected */
	struct event		*retry;
	int			 fd;
	int			 lost;		/* logged once per loss */
	int			 backoff_ms;
	wakeup_cb		*cb;
	void			*arg;
};

static void	wakeup_read_cb(evutil_socket_t, short, void *);
static void	wakeup_dial_step(struct wakeup_dial *);

static void
wakeup_dial_end(struct wakeup_dial *d, int rc, const char *err)
{
	wakeup_dial_cb	*cb = d->cb;
	void		*arg = d->arg;

	wakeup_dial_cancel(d);
	cb(arg, rc, err);
}

static void
wakeup_dial_cb_ev(evutil_socket_t fd, short what, void *arg)
{
	struct wakeup_dial	*d = arg;

	(void)fd;
	if (what & EV_TIMEOUT) {
		wakeup_dial_end(d, -1, "connect: timed out");
		return;
	}
	wakeup_dial_step(d);
}

/* One step of the connection, then wait for what it asks. */
static void
wakeup_dial_step(struct wakeup_dial *d)
{
	struct timeval	 tv;
	char		 err[512];
	int64_t		 left;
	int		 fd = -1, want_write = 0, r;

	r = d->ops->connect_poll(d->st, &fd, &want_write, err, sizeof(err));
	if (r != 0) {
		wakeup_dial_end(d, r == 1 ? 0 : -1, r == 1 ? NULL : err);
		return;
	}
	if ((left = d->deadline - util_mono_ms()) <= 0) {
		wakeup_dial_end(d, -1, "connect: timed out");
		return;
	}
	if (d->ev != NULL)
		event_free(d->ev);
	/* The socket may be another one at each step (another address). */
	d->ev = event_new(d->base, fd, want_write ? EV_WRITE : EV_READ,
	    wakeup_dial_cb_ev, d);
	tv.tv_sec = left / 1000;
	tv.tv_usec = (left % 1000) * 1000;
	if (d->ev == NULL || event_add(d->ev, &tv) == -1) {
		wakeup_dial_end(d, -1, "connect: cannot watch the socket");
		return;
	}
}

static void
wakeup_dial_first_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	wakeup_dial_step(arg);
}

struct wakeup_dial *
wakeup_dial(struct event_base *base, const struct store_ops *ops,
    struct store *st, wakeup_dial_cb *cb, void *arg)
{
	struct wakeup_dial	*d;
	struct timeval		 zero = { 0, 0 };

	d = xcalloc(1, sizeof(*d));
	d->base = base;
	d->ops = ops;
	d->st = st;
	d->cb = cb;
	d->arg = arg;
	d->deadline = util_mono_ms() + WAKEUP_CONNECT_MS;
	/* From the loop: cb never runs before the caller has the dial. */
	if ((d->ev = evtimer_new(base, wakeup_dial_first_cb, d)) == NULL ||
	    event_add(d->ev, &zero) == -1) {
		wakeup_dial_cancel(d);
		return NULL;
	}
	return d;
}

void
wakeup_dial_cancel(struct wakeup_dial *d)
{
	if (d == NULL)
		return;
	if (d->ev != NULL)
		event_free(d->ev);
	free(d);
}

static void
wakeup_later(struct wakeup *w, int ms)
{
	struct timeval	 tv = { ms / 1000, (ms % 1000) * 1000 };

	if (w->ev != NULL) {
		event_free(w->ev);
		w->ev = NULL;
	}
	event_add(w->retry, &tv);
}

/* Watch the connection's socket, and claim what may have been missed. */
static void
wakeup_arm(struct wakeup *w)
{
	int	 fd = w->ops->wait_fd(w->st);

	if (fd == -1) {
		wakeup_later(w, WAKEUP_RETRY_MS);
		return;
	}
	if (w->ev == NULL || fd != w->fd) {
		if (w->ev != NULL)
			event_free(w->ev);
		w->fd = fd;
		w->ev = event_new(w->base, fd, EV_READ | EV_PERSIST,
		    wakeup_read_cb, w);
		if (w->ev == NULL) {
			log_warnx("wake-ups: cannot watch the connection");
			wakeup_later(w, WAKEUP_RETRY_MS);
			return;
		}
		event_add(w->ev, NULL);
	}
	if (w->lost)
		log_info("wake-ups: listening again");
	w->lost = 0;
	w->backoff_ms = 0;
	w->cb(w->arg);
}

/* The connection is gone or could not be made: a new one, later. */
static void
wakeup_lost(struct wakeup *w, const char *err)
{
	if (!w->lost)
		log_warnx("wake-ups: %s; other replicas' jobs are found by"
		    " the timers until it is back", err);
	else
		log_debug("wake-ups: %s", err);
	w->lost = 1;
	if (w->st != NULL) {
		w->ops->close(w->st);
		w->st = NULL;
	}
	w->backoff_ms = w->backoff_ms == 0 ? WAKEUP_RETRY_MS :
	    w->backoff_ms * 2;
	if (w->backoff_ms > WAKEUP_RETRY_MAX_MS)
		w->backoff_ms = WAKEUP_RETRY_MAX_MS;
	wakeup_later(w, w->backoff_ms);
}

static void
wakeup_made_cb(void *arg, int rc, const char *err)
{
	struct wakeup	*w = arg;
	char		 lerr[512];

	w->dial = NULL;
	if (rc == -1) {
		wakeup_lost(w, err);
		return;
	}
	/* A fresh connection to a server that answers: LISTEN is quick. */
	if (w->ops->listen(w->st, lerr, sizeof(lerr)) == -1) {
		wakeup_lost(w, lerr);
		return;
	}
	wakeup_arm(w);
}

static void
wakeup_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct wakeup	*w = arg;
	char		 err[512];

	(void)fd;
	(void)what;
	if (w->st != NULL) {
		/* A wait_fd of -1 on a live connection: look again. */
		if (w->ops->drain_notifications(w->st, err, sizeof(err)) == -1)
			wakeup_lost(w, err);
		else
			wakeup_arm(w);
		return;
	}
	if ((w->st = w->ops->open_start(w->target, err, sizeof(err))) ==
	    NULL) {
		wakeup_lost(w, err);
		return;
	}
	if ((w->dial = wakeup_dial(w->base, w->ops, w->st, wakeup_made_cb,
	    w)) == NULL)
		wakeup_lost(w, "connect: cannot create events");
}

static void
wakeup_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct wakeup	*w = arg;
	char		 err[512];
	int		 n;

	(void)fd;
	(void)what;
	if ((n = w->ops->drain_notifications(w->st, err, sizeof(err))) == -1) {
		wakeup_lost(w, err);
		return;
	}
	if (n > 0) {
		log_debug("wake-ups: %d from other replicas", n);
		w->cb(w->arg);
	}
}

struct wakeup *
wakeup_open(struct event_base *base, const struct store_ops *ops,
    const char *target, wakeup_cb *cb, void *arg)
{
	struct wakeup	*w;

	if (ops->open_start == NULL)
		return NULL;
	w = xcalloc(1, sizeof(*w));
	w->base = base;
	w->ops = ops;
	w->target = xstrdup(target);
	w->cb = cb;
	w->arg = arg;
	w->fd = -1;
	if ((w->retry = evtimer_new(base, wakeup_retry_cb, w)) == NULL) {
		wakeup_close(w);
		return NULL;
	}
	wakeup_later(w, 0);
	return w;
}

void
wakeup_close(struct wakeup *w)
{
	if (w == NULL)
		return;
	wakeup_dial_cancel(w->dial);
	if (w->ev != NULL)
		event_free(w->ev);
	if (w->retry != NULL)
		event_free(w->retry);
	if (w->st != NULL)
		w->ops->close(w->st);
	/* The DSN may hold a password. */
	explicit_bzero(w->target, strlen(w->target));
	free(w->target);
	free(w);
}
