/*
 * live.c: the status page's change stream, GET /api/v1/stream.
 *
 * The queue calls live_changed_cb on the loop after store rounds have
 * committed.  Each stream then gets, within LIVE_COALESCE_MS (a burst of
 * rounds makes one message):
 *
 *   event: jobs            jobs changed (claimed, finished, retried, added)
 *   event: apps            apps' status may have changed with them
 *   event: events          a delivery was stored (only when one was)
 *   data: {"version": N}   a counter, one step per message
 *
 * The messages say what to re-read, not the new state: the page reads it
 * through the same /api/v1 routes as everyone else, so the stream adds
 * no second API to keep consistent.  A comment line goes out every
 * LIVE_HEARTBEAT_S so the page can tell a quiet daemon from a dead one.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "http.h"
#include "live.h"
#include "log.h"
#include "queue.h"
#include "util.h"

#define LIVE_COALESCE_MS	100

struct live_client {
	struct http_request	*req;
	struct live		*lv;
	struct live_client	*prev, *next;
};

struct live {
	struct live_client	*clients;
	int			 nclients;
	int			 draining;
	uint64_t		 version;
	int			 due_events;	/* the next message's contents */
	int			 due;
	struct event		*beat;
	struct event		*flush;
};

static void
live_client_drop(struct live_client *cl)
{
	struct live	*lv = cl->lv;

	if (cl->prev != NULL)
		cl->prev->next = cl->next;
	else
		lv->clients = cl->next;
	if (cl->next != NULL)
		cl->next->prev = cl->prev;
	lv->nclients--;
	http_stream_end(cl->req);
	free(cl);
}

/* Send to every stream; a client gone or too slow is dropped. */
static void
live_broadcast(struct live *lv, const char *msg, size_t len)
{
	struct live_client	*cl, *next;

	for (cl = lv->clients; cl != NULL; cl = next) {
		next = cl->next;
		if (http_stream_send(cl->req, msg, len) == -1)
			live_client_drop(cl);
	}
}

static void
live_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct live	*lv = arg;
	char		 msg[256];
	int		 n;

	(void)fd;
	(void)what;
	if (!lv->due)
		return;
	lv->version++;
	n = snprintf(msg, sizeof(msg),
	    "event: jobs\ndata: {\"version\": %" PRIu64 "}\n\n"
	    "event: apps\ndata: {\"version\": %" PRIu64 "}\n\n",
	    lv->version, lv->version);
	if (lv->due_events)
		n += snprintf(msg + n, sizeof(msg) - (size_t)n,
		    "event: events\ndata: {\"version\": %" PRIu64 "}\n\n",
		    lv->version);
	lv->due = 0;
	lv->due_events = 0;
	live_broadcast(lv, msg, (size_t)n);
}

static void
live_changed_cb(int new_events, void *arg)
{
	struct live	*lv = arg;
	struct timeval	 tv = { 0, LIVE_COALESCE_MS * 1000 };

	if (lv->clients == NULL)
		return;
	lv->due_events |= new_events;
	if (!lv->due) {
		lv->due = 1;
		evtimer_add(lv->flush, &tv);
	}
}

static void
live_beat_cb(evutil_socket_t fd, short what, void *arg)
{
	static const char	 beat[] = ": heartbeat\n\n";

	(void)fd;
	(void)what;
	live_broadcast(arg, beat, sizeof(beat) - 1);
}

static void
live_gone_cb(struct http_request *req, void *arg)
{
	(void)req;
	live_client_drop(arg);
}

struct live *
live_new(struct event_base *base, struct queue *q, char *err, size_t errlen)
{
	struct live	*lv;
	struct timeval	 tv = { LIVE_HEARTBEAT_S, 0 };

	lv = xcalloc(1, sizeof(*lv));
	lv->beat = event_new(base, -1, EV_PERSIST, live_beat_cb, lv);
	lv->flush = evtimer_new(base, live_flush_cb, lv);
	if (lv->beat == NULL || lv->flush == NULL) {
		snprintf(err, errlen, "live: event_new failed");
		goto fail;
	}
	if (queue_watch(q, live_changed_cb, lv) == -1) {
		snprintf(err, errlen, "live: too many queue watchers");
		goto fail;
	}
	event_add(lv->beat, &tv);
	return lv;
fail:
	live_free(lv);
	return NULL;
}

void
live_open(struct live *lv, struct http_request *req)
{
	static const char *const hdr[] = {
		"Cache-Control: no-store",
		"X-Content-Type-Options: nosniff",
		/* nginx and the like would hold the messages back. */
		"X-Accel-Buffering: no",
		NULL
	};
	static const char	 hello[] = "retry: 1000\n"
	    "event: hello\ndata: {}\n\n";
	const struct http_request_info	*ri = http_request_info(req);
	struct live_client		*cl;

	if (strcmp(ri->method, "GET") != 0) {
		static const char *const allow[] = { "Allow: GET", NULL };

		http_reply_error(req, 405, "method not allowed", allow);
		return;
	}
	if (lv->draining) {
		http_reply_error(req, 503, "draining", NULL);
		return;
	}
	if (lv->nclients >= LIVE_MAX_CLIENTS) {
		http_reply_error(req, 503, "too many streams open", NULL);
		return;
	}
	cl = xcalloc(1, sizeof(*cl));
	cl->req = req;
	cl->lv = lv;
	if (http_stream_start(req, 200, "text/event-stream; charset=utf-8",
	    hdr, live_gone_cb, cl) == -1) {
		free(cl);
		http_reply_error(req, 400, "cannot stream", NULL);
		return;
	}
	cl->next = lv->clients;
	if (lv->clients != NULL)
		lv->clients->prev = cl;
	lv->clients = cl;
	lv->nclients++;
	if (http_stream_send(req, hello, sizeof(hello) - 1) == -1)
		live_client_drop(cl);
}

void
live_drain(struct live *lv)
{
	if (lv == NULL)
		return;
	lv->draining = 1;
	/* live_client_drop unlinks: clients never holds a freed one. */
	while (lv->clients != NULL)
		// NOLINTNEXTLINE(clang-analyzer-unix.Malloc)
		live_client_drop(lv->clients);
}

void
live_free(struct live *lv)
{
	if (lv == NULL)
		return;
	live_drain(lv);
	if (lv->beat != NULL)
		event_free(lv->beat);
	if (lv->flush != NULL)
		event_free(lv->flush);
	free(lv);
}

int
live_clients(const struct live *lv)
{
	return lv->nclients;
}
