/*
 * wakeup.c: the loop's listening connection for wake-ups between replicas
 * (include/wakeup.h).  Its own connection, not the admin API's: a query
 * on a connection reads its pending notifications into libpq's memory,
 * after which the socket no longer shows them as readable.  The connection
 * is made from a timer (at once, then every WAKEUP_RETRY_MS while the
 * store is away), never inside the caller's start-up: a replica whose
 * store is down still starts and answers 503 as before.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "log.h"
#include "store.h"
#include "util.h"
#include "wakeup.h"

#define WAKEUP_RETRY_MS	1000

struct wakeup {
	struct event_base	*base;
	const struct store_ops	*ops;
	char			*target;
	struct store		*st;
	struct event		*ev;		/* the socket, while connected */
	struct event		*retry;
	int			 fd;
	int			 lost;		/* logged once per loss */
	wakeup_cb		*cb;
	void			*arg;
};

static void	wakeup_read_cb(evutil_socket_t, short, void *);

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
	w->cb(w->arg);
}

static void
wakeup_lost(struct wakeup *w, const char *err)
{
	if (!w->lost)
		log_warnx("wake-ups: %s; other replicas' jobs are found by"
		    " the timers until it is back", err);
	w->lost = 1;
	wakeup_later(w, WAKEUP_RETRY_MS);
}

static void
wakeup_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct wakeup	*w = arg;
	char		 err[512];

	(void)fd;
	(void)what;
	if (w->st == NULL) {
		if ((w->st = w->ops->open(w->target, NULL, err,
		    sizeof(err))) == NULL) {
			wakeup_lost(w, err);
			return;
		}
		if (w->ops->listen(w->st, err, sizeof(err)) == -1) {
			w->ops->close(w->st);
			w->st = NULL;
			wakeup_lost(w, err);
			return;
		}
	} else if (w->ops->drain_notifications(w->st, err,
	    sizeof(err)) == -1) {
		wakeup_lost(w, err);
		return;
	}
	wakeup_arm(w);
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
