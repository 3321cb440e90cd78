/*
 * live.h: GET /api/v1/stream on the admin listener (daemon/live.c): a
 * text/event-stream that tells the status page what changed, so it
 * re-reads only then.
 */
#ifndef GITOPSD_LIVE_H
#define GITOPSD_LIVE_H

struct event_base;
struct http_request;
struct queue;

struct live;

/* Most streams open at once; more are answered 503. */
#define LIVE_MAX_CLIENTS	32
/* A comment line this often keeps proxies and the page's watchdog calm. */
#define LIVE_HEARTBEAT_S	15

/* Watches the queue's committed rounds.  NULL on failure (err set). */
struct live	*live_new(struct event_base *, struct queue *, char *err,
		    size_t errlen);
/* Answer a request for the stream (or 503/405); the request is taken. */
void		 live_open(struct live *, struct http_request *);
/* Close every stream and refuse new ones (shutdown). */
void		 live_drain(struct live *);
/* After queue_close() or with the loop stopped: the queue keeps no handle. */
void		 live_free(struct live *);
/* Streams open now (tests). */
int		 live_clients(const struct live *);

#endif
