/*
 * http.h: a small HTTP/1.1 server over libevent bufferevents
 * (daemon/http.c), used for the public and the admin listener.
 *
 * libevent 2.1's evhttp cannot cap concurrent connections, cannot bound the
 * total time a client takes to send its headers (a byte every few seconds
 * resets its read timeout forever), and answers an oversized body with its
 * own HTML page.  This server enforces every limit itself, answers them in
 * JSON, and supports what senders use: keep-alive, pipelining (served in
 * order), Content-Length and chunked bodies, Expect: 100-continue, and TLS
 * 1.2+ through bufferevent_openssl.
 */
#ifndef GITOPSD_HTTP_H
#define GITOPSD_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "handler.h"

struct event_base;
struct http_server;
struct http_request;

struct http_limits {
	size_t	 max_body_bytes;
	size_t	 max_header_bytes;
	int	 read_timeout_s;	/* whole request, headers + body */
	int	 write_timeout_s;
	int	 max_connections;
	int	 max_connections_per_client;	/* per peer address; 0: none */
	const char *name;		/* listener label in metrics and log */
};

/*
 * Over max_connections (or a client over its share), up to this many
 * more connections are answered 503 before the next ones are closed
 * unanswered.
 */
#define HTTP_BUSY_MAX	64

/* Descriptors one listener may hold: its socket and every connection. */
int			 http_listener_fds(int max_connections);

/* What a handler sees.  Valid until http_reply(). */
struct http_request_info {
	const char		*method;
	const char		*path;		/* decoded? no: raw path, no query */
	const char		*query;		/* NULL when absent */
	const struct hook_header *headers;
	size_t			 nheaders;
	const unsigned char	*body;
	size_t			 body_len;
	const char		*peer;		/* "127.0.0.1:53422" */
	double			 start;		/* util_mono_s() at first byte */
};

typedef void http_handler_cb(struct http_request *, void *arg);

/*
 * Listen on host:port (port 0: any free port).  tls_cert/tls_key NULL for
 * plain HTTP.  Returns NULL with err on failure.
 */
struct http_server	*http_server_new(struct event_base *, const char *host,
			    int port, const struct http_limits *,
			    const char *tls_cert, const char *tls_key,
			    http_handler_cb *, void *arg, char *err, size_t);
/* Same on an inherited listening socket (systemd socket activation). */
struct http_server	*http_server_new_fd(struct event_base *, int fd,
			    const char *host, int port, const struct http_limits *,
			    const char *tls_cert, const char *tls_key,
			    http_handler_cb *, void *arg, char *err, size_t);
/*
 * Serve an already connected socket as if it had been accepted (tests,
 * fuzzing through a socketpair).  Returns 0, or -1 over max_connections.
 */
int			 http_server_adopt(struct http_server *, int fd,
			    const char *peer);
/* Stop accepting; connections with a request in flight finish. */
void			 http_server_stop(struct http_server *);
/* Close everything now. */
void			 http_server_free(struct http_server *);
void			 http_server_set_limits(struct http_server *,
			    const struct http_limits *);
int			 http_server_port(const struct http_server *);
/* Connections open / requests waiting for an answer. */
int			 http_server_connections(const struct http_server *);
int			 http_server_pending(const struct http_server *);
/* Times accept() failed (descriptors exhausted) and accepting paused. */
unsigned long		 http_server_accept_pauses(const struct http_server *);

const struct http_request_info *http_request_info(const struct http_request *);

/*
 * Answer a request (exactly once, possibly later from another callback on
 * the loop).  extra_headers: "Name: value" lines without CRLF, NULL-ended,
 * or NULL.  If the client went away meanwhile the answer is dropped.
 */
void	http_reply(struct http_request *, int status, const char *content_type,
	    const char *const *extra_headers, const void *body, size_t len);
/* {"error": msg, "code": status} as application/json. */
void	http_reply_error(struct http_request *, int status, const char *msg,
	    const char *const *extra_headers);
/* True when the client has gone away while the request was pending. */
int	http_request_orphaned(const struct http_request *);

/*
 * Long-lived answers (text/event-stream).  http_stream_start() answers
 * the request with its status line and headers and no length: the body
 * is what http_stream_send() adds until http_stream_end() or the client
 * goes away, and the connection closes after it.  The request stays the
 * caller's until http_stream_end(), which frees it (and, while the client
 * is there, sends what is buffered and closes).  When the connection
 * closes for any other reason (the client left, a write timeout, the
 * listener freed), gone is called once, after which only
 * http_stream_end() may be called on the request (also from gone).
 * A streaming request does not count as pending.
 */
typedef void http_stream_gone_cb(struct http_request *, void *arg);
/* 0, or -1 (already answered, the client gone, a HEAD request). */
int	http_stream_start(struct http_request *, int status,
	    const char *content_type, const char *const *extra_headers,
	    http_stream_gone_cb *gone, void *arg);
/* 0, or -1 when the client is gone or reads too slowly: end it. */
int	http_stream_send(struct http_request *, const void *, size_t);
void	http_stream_end(struct http_request *);

const char	*http_status_text(int);

#endif
