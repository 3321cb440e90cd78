/*
 * http.c: HTTP/1.1 server over libevent bufferevents.
 *
 * DESIGN
 * One struct http_conn per accepted socket, owned by the loop thread.  A
 * connection reads one request at a time: request line and headers (capped
 * at max_header_bytes), then a Content-Length or chunked body (capped at
 * max_body_bytes, refused with 413 before it is read when the length is
 * declared).  While a request waits for its answer, reading stops, so
 * pipelined requests stay in the input buffer and are served in order.  A
 * deadline timer bounds the whole request (read_timeout_s from its first
 * byte), so a client that trickles bytes is cut off; a write timeout bounds
 * a client that does not read.  Over max_connections, or over
 * max_connections_per_client from one peer address, a new connection gets
 * a 503 and is closed; past HTTP_BUSY_MAX such answers, it is closed
 * unanswered.  Those refusals, and accept() failing for want of
 * descriptors (which pauses the listener briefly rather than retrying in
 * a loop), are counted in a metric and logged as one line per period.
 *
 * A pending request whose client disconnects is marked orphaned and freed
 * when its answer arrives (never inside the callback that created it).
 */
#include <sys/socket.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "http.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#define HTTP_MAX_HEADERS	100

enum http_conn_state {
	HTTP_READ_HEADERS,
	HTTP_READ_BODY,
	HTTP_READ_CHUNK_SIZE,
	HTTP_READ_CHUNK_DATA,
	HTTP_READ_CHUNK_TRAILER,
	HTTP_DISPATCHED,
	HTTP_WRITING,
	HTTP_LINGER,		/* answered and half-closed; draining input */
	HTTP_STREAMING,		/* a long-lived answer (http_stream_start) */
};

/*
 * After accept() fails for want of descriptors, the listener sleeps this
 * long: the socket stays readable, so retrying at once would spin.
 */
#define HTTP_ACCEPT_PAUSE_MS	100
/* Refused connections are logged as one summary line per this period. */
#define HTTP_TALLY_S		10
#define HTTP_PEER_BUCKETS	256
/* How long a closing connection may keep sending before we drop it. */
#define HTTP_LINGER_S	2
/* Chunk extensions are ignored; a long one only costs memory and time. */
#define HTTP_CHUNK_EXT_MAX	64
/* A chunk-size line: 16 hex digits, ";" and the extension. */
#define HTTP_CHUNK_LINE_MAX	(16 + 1 + HTTP_CHUNK_EXT_MAX)
/* A streamed answer's client that lets this much pile up is dropped. */
#define HTTP_STREAM_MAX_BUFFERED	(256 * 1024)
/* Input kept beyond a header block while a request is handled. */
#define HTTP_READ_SLACK	(16 * 1024)

struct http_server;

struct http_request {
	struct http_server	*srv;
	struct http_conn	*conn;		/* NULL once orphaned */
	struct http_request_info info;
	char			*method;
	char			*path;
	char			*query;
	struct hook_header	 headers[HTTP_MAX_HEADERS];
	size_t			 nheaders;
	struct buf		 body;
	int			 http10;
	int			 keep_alive;
	int			 head;
	int			 replied;
	http_stream_gone_cb	*gone_cb;	/* streaming: client went away */
	void			*gone_arg;
};

struct http_conn {
	struct http_server	*srv;
	struct bufferevent	*bev;
	struct event		*deadline;
	struct event		*written;	/* reply sent without EV_WRITE */
	enum http_conn_state	 state;
	struct http_request	*req;
	size_t			 header_bytes;
	size_t			 body_left;	/* Content-Length or chunk left */
	int			 close_after_write;
	int			 peer_eof;	/* half-closed while we worked */
	int			 busy;		/* over the cap: 503 and close */
	struct http_peer	*owner;		/* its address's count */
	char			 peer[64];
	struct http_conn	*next, *prev;
};

/* Connections open from one peer address. */
struct http_peer {
	char			 host[INET6_ADDRSTRLEN];
	int			 n;
	struct http_peer	*next;
};

enum http_refusal {
	HTTP_REFUSED_MAX,		/* over max_connections */
	HTTP_REFUSED_PER_CLIENT,	/* over max_connections_per_client */
	HTTP_REFUSED_DESCRIPTORS,	/* accept() failed: EMFILE, ENFILE */
	HTTP_REFUSED_N
};

/*
 * Refusals since the last summary line.  The first of a quiet period is
 * logged at once; the rest are summed and logged once per HTTP_TALLY_S,
 * so a flood costs one line per period, not one per connection.
 */
struct http_tally {
	unsigned long		 refused[HTTP_REFUSED_N];
	unsigned long		 dropped[HTTP_REFUSED_N];
	char			 last_peer[INET6_ADDRSTRLEN];
	int			 last_errno;
	int			 open;		/* timer armed: summing */
	struct event		*ev;
};

struct http_server {
	struct event_base	*base;
	struct evconnlistener	*listener;
	struct event		*resume;	/* re-enables the listener */
	unsigned long		 accept_pauses;
	struct http_tally	 tally;
	struct http_peer	*peers[HTTP_PEER_BUCKETS];
	SSL_CTX			*ssl;
	struct http_limits	 limits;
	http_handler_cb		*cb;
	void			*arg;
	int			 port;
	int			 nconns;
	int			 nbusy;
	int			 npending;
	struct http_conn	*conns;
};

static void	http_conn_free(struct http_conn *);
static void	http_conn_process(struct http_conn *);
static void	http_conn_fail(struct http_conn *, int status, const char *msg);
static int	http_conn_new(struct http_server *, evutil_socket_t,
		    const char *, const char *, int);
static int	http_te_check(const struct http_request *);
static void	http_peer_put(struct http_server *, struct http_peer *);

const char *
http_status_text(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 417: return "Expectation Failed";
	case 421: return "Misdirected Request";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}

static struct http_request *
http_request_new(struct http_conn *c)
{
	struct http_request	*r;

	r = xcalloc(1, sizeof(*r));
	r->conn = c;
	r->srv = c->srv;
	buf_init(&r->body, c->srv->limits.max_body_bytes);
	r->info.start = util_mono_s();
	r->info.peer = c->peer;
	return r;
}

static void
http_request_free(struct http_request *r)
{
	size_t	 i;

	if (r == NULL)
		return;
	free(r->method);
	free(r->path);
	free(r->query);
	for (i = 0; i < r->nheaders; i++) {
		free((char *)r->headers[i].name);
		free((char *)r->headers[i].value);
	}
	buf_free(&r->body);
	free(r);
}

const struct http_request_info *
http_request_info(const struct http_request *r)
{
	return &r->info;
}

int
http_request_orphaned(const struct http_request *r)
{
	return r->conn == NULL;
}

static const char *
http_req_header(const struct http_request *r, const char *name)
{
	size_t	 i;

	for (i = 0; i < r->nheaders; i++)
		if (strcasecmp(r->headers[i].name, name) == 0)
			return r->headers[i].value;
	return NULL;
}

/* Header names are RFC 9110 tokens. */
static int
http_token_ok(const char *s, size_t n)
{
	size_t	 i;

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!isalnum(c) && strchr("!#$%&'*+-.^_`|~", c) == NULL)
			return 0;
	}
	return 1;
}

static void
http_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn	*c = arg;

	(void)fd;
	(void)what;
	if (c->state == HTTP_DISPATCHED)
		return;		/* our turn, not the client's */
	if (c->state == HTTP_LINGER || c->state == HTTP_WRITING) {
		http_conn_free(c);
		return;
	}
	if (c->state == HTTP_READ_HEADERS && c->header_bytes == 0 &&
	    (c->req == NULL || c->req->method == NULL) &&
	    evbuffer_get_length(bufferevent_get_input(c->bev)) == 0) {
		/* An idle keep-alive connection: just close it. */
		http_conn_free(c);
		return;
	}
	log_kv(LOG_LEVEL_INFO, "request timeout", "peer", c->peer, NULL);
	http_conn_fail(c, 408, "request not received in time");
}

static void
http_deadline_arm(struct http_conn *c)
{
	struct timeval	 tv = { c->srv->limits.read_timeout_s, 0 };

	if (tv.tv_sec <= 0)
		tv.tv_sec = 10;
	evtimer_add(c->deadline, &tv);
}

/* The status line, Content-Type and the caller's headers. */
static void
http_write_head(struct evbuffer *out, int status, const char *ctype,
    const char *const *extra)
{
	char		 line[256];
	size_t		 i;
	int		 n;

	/* snprintf and evbuffer_add: evbuffer_add_printf is much slower. */
	n = snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", status,
	    http_status_text(status));
	evbuffer_add(out, line, (size_t)n);
	if (ctype != NULL) {
		evbuffer_add(out, "Content-Type: ", 14);
		evbuffer_add(out, ctype, strlen(ctype));
		evbuffer_add(out, "\r\n", 2);
	}
	for (i = 0; extra != NULL && extra[i] != NULL; i++) {
		evbuffer_add(out, extra[i], strlen(extra[i]));
		evbuffer_add(out, "\r\n", 2);
	}
}

/* Serialize a response into the connection's output buffer. */
static void
http_write_response(struct http_conn *c, int status, const char *ctype,
    const char *const *extra, const void *body, size_t len, int keep_alive,
    int head)
{
	struct evbuffer	*out = bufferevent_get_output(c->bev);
	char		 line[64];
	int		 n;

	http_write_head(out, status, ctype, extra);
	/* A 304 has no body: its headers describe the cached one. */
	if (status != 304) {
		n = snprintf(line, sizeof(line), "Content-Length: %zu\r\n",
		    len);
		evbuffer_add(out, line, (size_t)n);
	}
	if (keep_alive)
		evbuffer_add(out, "Connection: keep-alive\r\n\r\n", 26);
	else
		evbuffer_add(out, "Connection: close\r\n\r\n", 21);
	if (!head && len > 0)
		evbuffer_add(out, body, len);
}

/* Answer an error the server itself detected, then close. */
static void
http_conn_fail(struct http_conn *c, int status, const char *msg)
{
	static const char *const retry[] = { "Retry-After: 1", NULL };
	struct timeval	 wtv;
	char		*body, st[8];

	snprintf(st, sizeof(st), "%d", status);
	/* A connection over a cap is in the tally's summary line instead. */
	if (!c->busy)
		log_kv(LOG_LEVEL_INFO, "request refused", "peer", c->peer,
		    "status", st, "cause", msg, NULL);
	body = xasprintf("{\"error\":\"%s\",\"code\":%d}", msg, status);
	http_write_response(c, status, "application/json", status == 503 ?
	    retry : NULL, body, strlen(body), 0, 0);
	free(body);
	if (c->req != NULL && c->req->conn == c) {
		http_request_free(c->req);
		c->req = NULL;
	}
	c->state = HTTP_WRITING;
	c->close_after_write = 1;
	evtimer_del(c->deadline);
	wtv.tv_sec = c->srv->limits.write_timeout_s > 0 ?
	    c->srv->limits.write_timeout_s : 10;
	wtv.tv_usec = 0;
	bufferevent_set_timeouts(c->bev, NULL, &wtv);
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_enable(c->bev, EV_WRITE);
}

static void
http_conn_free(struct http_conn *c)
{
	struct http_server	*srv = c->srv;
	struct http_request	*gone = NULL;

	if (c->req != NULL) {
		if (c->state == HTTP_STREAMING) {
			/* Its owner frees it (http_stream_end), told below. */
			c->req->conn = NULL;
			c->req->srv = NULL;
			gone = c->req;
		} else if (c->state == HTTP_DISPATCHED) {
			/* The handler still owns it: orphan, freed at reply. */
			c->req->conn = NULL;
			c->req->srv = NULL;
			srv->npending--;
		} else
			http_request_free(c->req);
		c->req = NULL;
	}
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	/*
	 * The analyzer does not know the list is doubly linked (a freed
	 * neighbour is always unlinked first).
	 */
	if (c->next != NULL)
		// NOLINTNEXTLINE(clang-analyzer-unix.Malloc)
		c->next->prev = c->prev;
	if (c->busy)
		srv->nbusy--;
	else
		srv->nconns--;
	http_peer_put(srv, c->owner);
	event_free(c->deadline);
	event_free(c->written);
	bufferevent_free(c->bev);
	free(c);
	if (gone != NULL)
		gone->gone_cb(gone, gone->gone_arg);
}

/*
 * One CRLF-ended line from the input, without its CRLF.  Returns 1 with
 * the line, 0 when no full line is buffered yet, -1 for a bare LF or a
 * CR anywhere but before the LF.  evbuffer_readln(EVBUFFER_EOL_CRLF)
 * also ends a line at a bare LF: a front proxy that does not would see
 * other requests in the same bytes (RFC 9112 section 2.2 allows either;
 * only the strict one is safe behind a proxy).
 */
static int
http_readln(struct evbuffer *in, char **line, size_t *len)
{
	struct evbuffer_ptr	 p;
	unsigned char		*data;
	size_t			 n;

	p = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_LF);
	if (p.pos == -1)
		return 0;
	n = (size_t)p.pos;
	data = evbuffer_pullup(in, (ev_ssize_t)n + 1);
	if (n == 0 || data[n - 1] != '\r' || memchr(data, '\r', n - 1) != NULL)
		return -1;
	*line = xmalloc(n);
	memcpy(*line, data, n - 1);
	(*line)[n - 1] = '\0';
	*len = n - 1;
	evbuffer_drain(in, n + 1);
	return 1;
}

/* Parse the request line; 0 or an HTTP status to fail with. */
static int
http_parse_request_line(struct http_request *r, char *line)
{
	char	*sp1, *sp2, *target, *q;

	if ((sp1 = strchr(line, ' ')) == NULL)
		return 400;
	*sp1 = '\0';
	target = sp1 + 1;
	if ((sp2 = strchr(target, ' ')) == NULL)
		return 400;
	*sp2 = '\0';
	if (!http_token_ok(line, strlen(line)) || strlen(line) > 16)
		return 400;
	if (strcmp(sp2 + 1, "HTTP/1.1") == 0)
		r->http10 = 0;
	else if (strcmp(sp2 + 1, "HTTP/1.0") == 0)
		r->http10 = 1;
	else if (strncmp(sp2 + 1, "HTTP/", 5) == 0)
		return 505;
	else
		return 400;
	if (target[0] != '/')
		return 400;
	r->method = xstrdup(line);
	if ((q = strchr(target, '?')) != NULL) {
		r->query = xstrdup(q + 1);
		*q = '\0';
	}
	r->path = xstrdup(target);
	r->head = strcmp(r->method, "HEAD") == 0;
	return 0;
}

static int
http_parse_header(struct http_request *r, char *line)
{
	char	*colon, *v, *end;

	if (line[0] == ' ' || line[0] == '\t')
		return 400;		/* obsolete line folding */
	if ((colon = strchr(line, ':')) == NULL)
		return 400;
	if (!http_token_ok(line, (size_t)(colon - line)))
		return 400;
	if (r->nheaders == HTTP_MAX_HEADERS)
		return 431;
	v = colon + 1;
	while (*v == ' ' || *v == '\t')
		v++;
	end = v + strlen(v);
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	r->headers[r->nheaders].name = xstrndup(line, (size_t)(colon - line));
	r->headers[r->nheaders].value = xstrndup(v, (size_t)(end - v));
	r->nheaders++;
	return 0;
}

/* Headers complete: decide how the body comes. 0, or a status to fail. */
static int
http_headers_done(struct http_conn *c)
{
	struct http_request	*r = c->req;
	const char		*te, *cl, *conn, *expect;
	char			*end;
	unsigned long long	 n;
	size_t			 i;
	int			 ncl = 0, st;

	for (i = 0; i < r->nheaders; i++)
		if (strcasecmp(r->headers[i].name, "Content-Length") == 0)
			ncl++;
	te = http_req_header(r, "Transfer-Encoding");
	cl = http_req_header(r, "Content-Length");
	if (ncl > 1 || (te != NULL && cl != NULL))
		return 400;	/* ambiguous framing: request smuggling */
	/* HTTP/1.0 has no chunked coding: RFC 9112 says faulty framing. */
	if (te != NULL && r->http10)
		return 400;
	if (te != NULL && (st = http_te_check(r)) != 0)
		return st;
	conn = http_req_header(r, "Connection");
	r->keep_alive = !r->http10;
	if (conn != NULL && strcasecmp(conn, "close") == 0)
		r->keep_alive = 0;
	if (conn != NULL && r->http10 && strcasecmp(conn, "keep-alive") == 0)
		r->keep_alive = 1;

	c->state = HTTP_READ_BODY;
	c->body_left = 0;
	if (te != NULL) {
		c->state = HTTP_READ_CHUNK_SIZE;
	} else if (cl != NULL) {
		if (!isdigit((unsigned char)cl[0]))
			return 400;
		errno = 0;
		n = strtoull(cl, &end, 10);
		if (*end != '\0' || errno != 0)
			return 400;
		if (n > c->srv->limits.max_body_bytes)
			return 413;
		c->body_left = (size_t)n;
		/*
		 * Room for the body at once, not by doubling from 256 bytes;
		 * only up to 64 KiB, so a client that announces a large body
		 * and sends nothing does not hold that much memory.
		 */
		if (buf_reserve(&r->body, n < 65536 ? (size_t)n : 65536) == -1)
			return 413;
	}
	expect = http_req_header(r, "Expect");
	if (expect != NULL) {
		if (strcasecmp(expect, "100-continue") != 0)
			return 417;
		if (!r->http10 && (c->body_left > 0 ||
		    c->state == HTTP_READ_CHUNK_SIZE)) {
			evbuffer_add_printf(bufferevent_get_output(c->bev),
			    "HTTP/1.1 100 Continue\r\n\r\n");
			bufferevent_enable(c->bev, EV_WRITE);
		}
	}
	return 0;
}

/*
 * The rest of a body straight from the socket into the request, once.
 * libevent 2.1 reads at most 4 KiB per callback (and asks FIONREAD
 * first), so a 7 KiB webhook took two loop iterations and four system
 * calls; the client has usually sent all of it already.  Plain TCP only
 * (TLS must go through OpenSSL), and at most 64 KiB at a time, so a
 * client that announces a large body holds no more than it sent.  An
 * EOF, an error or nothing to read are left to the bufferevent, which
 * sees them at its next read.  Returns 1 when bytes came, 0 when not,
 * 413 when the body cap does not allow them.
 */
static int
http_read_body_direct(struct http_conn *c)
{
	struct buf	*b = &c->req->body;
	size_t		 want = c->body_left < 65536 ? c->body_left : 65536;
	ssize_t		 n;

	if (c->srv->ssl != NULL ||
	    evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		return 0;
	if (buf_reserve(b, want) == -1)
		return 413;
	n = read(bufferevent_getfd(c->bev), b->data + b->len, want);
	if (n <= 0)
		return 0;
	b->len += (size_t)n;
	b->data[b->len] = '\0';
	c->body_left -= (size_t)n;
	return 1;
}

/*
 * A chunk-size line: 1*HEXDIG, then nothing or ";" and an extension of at
 * most HTTP_CHUNK_EXT_MAX bytes (ignored).  strtoull would also take
 * leading blanks, a sign and "0x": another parser in front may read
 * those differently, so they are refused, as is any padding.  0, or -1.
 */
static int
http_chunk_size(const char *line, size_t n, unsigned long long *sz)
{
	size_t	 i;
	int	 d;

	*sz = 0;
	for (i = 0; i < n && isxdigit((unsigned char)line[i]); i++) {
		if (i == 16)
			return -1;	/* past 64 bits */
		d = isdigit((unsigned char)line[i]) ? line[i] - '0' :
		    tolower((unsigned char)line[i]) - 'a' + 10;
		*sz = *sz << 4 | (unsigned long long)d;
	}
	if (i == 0)
		return -1;
	if (i == n)
		return 0;
	if (line[i] != ';' || n - i - 1 > HTTP_CHUNK_EXT_MAX)
		return -1;
	for (i++; i < n; i++)
		if (line[i] == '\0' || iscntrl((unsigned char)line[i]))
			return -1;
	return 0;
}

/*
 * Transfer-Encoding (RFC 9112 section 6): one header, whose last coding
 * is chunked and which names no other (gitopsd decodes no other).  A
 * coding after chunked, or chunked twice, leaves the length unknown: 400;
 * otherwise any other coding is one gitopsd does not implement: 501.
 */
static int
http_te_check(const struct http_request *r)
{
	const char	*v = NULL, *p, *e;
	size_t		 i, len;
	int		 nte = 0, nchunked = 0, other = 0, last_chunked = 0;

	for (i = 0; i < r->nheaders; i++)
		if (strcasecmp(r->headers[i].name, "Transfer-Encoding") == 0) {
			v = r->headers[i].value;
			nte++;
		}
	if (nte > 1)
		return 400;
	if (v == NULL)
		return 0;
	for (p = v; ; p = e + 1) {
		while (*p == ' ' || *p == '\t')
			p++;
		if ((e = strchr(p, ',')) == NULL)
			e = p + strlen(p);
		len = (size_t)(e - p);
		while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (len == 0)
			return 400;	/* an empty element: "chunked," */
		last_chunked = len == 7 && strncasecmp(p, "chunked", 7) == 0;
		if (last_chunked)
			nchunked++;
		else
			other = 1;
		if (*e == '\0')
			break;
	}
	if (nchunked > 1 || (nchunked == 1 && !last_chunked))
		return 400;
	return other ? 501 : 0;
}

/* Hand a complete request to the handler. */
static void
http_dispatch(struct http_conn *c)
{
	struct http_request	*r = c->req;

	/*
	 * Reading stays on while the handler works: turning it off and on
	 * again costs two epoll_ctl calls per request.  What a client sends
	 * meanwhile (a pipelined request) waits in the input buffer, which
	 * the read watermark bounds; an EOF is kept for after the answer.
	 */
	evtimer_del(c->deadline);
	c->state = HTTP_DISPATCHED;
	r->info.method = r->method;
	r->info.path = r->path;
	r->info.query = r->query;
	r->info.headers = r->headers;
	r->info.nheaders = r->nheaders;
	r->info.body = (const unsigned char *)(r->body.data != NULL ?
	    r->body.data : "");
	r->info.body_len = r->body.len;
	c->srv->npending++;
	c->srv->cb(r, c->srv->arg);
}

/*
 * Advance the read state machine over what is buffered.  Returns when it
 * needs more bytes, dispatched a request, or failed the connection.
 */
static void
http_conn_process(struct http_conn *c)
{
	struct evbuffer		*in = bufferevent_get_input(c->bev);
	struct http_server	*srv = c->srv;
	char			*line;
	size_t			 n, avail;
	unsigned long long	 sz;
	int			 st;

	for (;;) {
		switch (c->state) {
		case HTTP_READ_HEADERS:
			if (c->req == NULL) {
				if (evbuffer_get_length(in) == 0)
					return;
				c->req = http_request_new(c);
				c->header_bytes = 0;
				http_deadline_arm(c);
			}
			if ((st = http_readln(in, &line, &n)) == -1) {
				http_conn_fail(c, 400, "line not ended by CRLF");
				return;
			}
			if (st == 0) {
				if (c->header_bytes + evbuffer_get_length(in) >
				    srv->limits.max_header_bytes) {
					http_conn_fail(c, 431,
					    "request headers too large");
				}
				return;
			}
			c->header_bytes += n + 2;
			if (c->header_bytes > srv->limits.max_header_bytes) {
				free(line);
				http_conn_fail(c, 431, "request headers too large");
				return;
			}
			if (memchr(line, '\0', n) != NULL) {
				free(line);
				http_conn_fail(c, 400, "NUL byte in headers");
				return;
			}
			if (c->req->method == NULL) {
				if (n == 0) {
					/* RFC 9112: ignore an empty line before the request. */
					free(line);
					c->header_bytes = 0;
					continue;
				}
				st = http_parse_request_line(c->req, line);
			} else if (n == 0) {
				free(line);
				if ((st = http_headers_done(c)) != 0) {
					http_conn_fail(c, st, st == 413 ?
					    "request body too large" :
					    st == 501 ? "transfer encoding not supported" :
					    st == 417 ? "expectation not supported" :
					    "malformed request framing");
					return;
				}
				continue;
			} else
				st = http_parse_header(c->req, line);
			free(line);
			if (st != 0) {
				http_conn_fail(c, st, st == 505 ?
				    "HTTP version not supported" : st == 431 ?
				    "too many request headers" :
				    "malformed request");
				return;
			}
			break;
		case HTTP_READ_BODY:
			avail = evbuffer_get_length(in);
			n = avail < c->body_left ? avail : c->body_left;
			if (n > 0) {
				if (buf_add(&c->req->body, evbuffer_pullup(in,
				    (ev_ssize_t)n), n) == -1) {
					http_conn_fail(c, 413, "request body too large");
					return;
				}
				evbuffer_drain(in, n);
				c->body_left -= n;
			}
			if (c->body_left > 0) {
				if ((st = http_read_body_direct(c)) == 413) {
					http_conn_fail(c, 413,
					    "request body too large");
					return;
				}
				if (st == 0)
					return;
				break;	/* got some: see whether that was all */
			}
			http_dispatch(c);
			return;
		case HTTP_READ_CHUNK_SIZE:
			if ((st = http_readln(in, &line, &n)) == -1) {
				http_conn_fail(c, 400, "line not ended by CRLF");
				return;
			}
			if (st == 0) {
				if (evbuffer_get_length(in) > HTTP_CHUNK_LINE_MAX)
					http_conn_fail(c, 400, "malformed chunk");
				return;
			}
			st = http_chunk_size(line, n, &sz);
			free(line);
			if (st != 0) {
				http_conn_fail(c, 400, "malformed chunk size");
				return;
			}
			if (sz > srv->limits.max_body_bytes ||
			    c->req->body.len + sz > srv->limits.max_body_bytes) {
				http_conn_fail(c, 413, "request body too large");
				return;
			}
			c->body_left = (size_t)sz;
			c->state = sz == 0 ? HTTP_READ_CHUNK_TRAILER :
			    HTTP_READ_CHUNK_DATA;
			break;
		case HTTP_READ_CHUNK_DATA:
			/* The chunk's data plus its CRLF. */
			if (c->body_left > 0) {
				avail = evbuffer_get_length(in);
				n = avail < c->body_left ? avail : c->body_left;
				if (n == 0)
					return;
				if (buf_add(&c->req->body, evbuffer_pullup(in,
				    (ev_ssize_t)n), n) == -1) {
					http_conn_fail(c, 413, "request body too large");
					return;
				}
				evbuffer_drain(in, n);
				c->body_left -= n;
				break;
			}
			if (evbuffer_get_length(in) < 2)
				return;
			if (memcmp(evbuffer_pullup(in, 2), "\r\n", 2) != 0) {
				http_conn_fail(c, 400, "malformed chunk");
				return;
			}
			evbuffer_drain(in, 2);
			c->state = HTTP_READ_CHUNK_SIZE;
			break;
		case HTTP_READ_CHUNK_TRAILER:
			if ((st = http_readln(in, &line, &n)) == -1) {
				http_conn_fail(c, 400, "line not ended by CRLF");
				return;
			}
			if (st == 0) {
				if (evbuffer_get_length(in) >
				    srv->limits.max_header_bytes)
					http_conn_fail(c, 431, "trailers too large");
				return;
			}
			free(line);
			c->header_bytes += n + 2;
			if (c->header_bytes > srv->limits.max_header_bytes) {
				http_conn_fail(c, 431, "trailers too large");
				return;
			}
			if (n == 0) {
				http_dispatch(c);
				return;
			}
			break;
		case HTTP_LINGER:
		case HTTP_STREAMING:
			/* Nothing more is read from a streaming client. */
			evbuffer_drain(in, evbuffer_get_length(in));
			return;
		case HTTP_DISPATCHED:
		case HTTP_WRITING:
			return;
		}
	}
}

static void
http_read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	http_conn_process(arg);
}

static void
http_write_cb(struct bufferevent *bev, void *arg)
{
	struct http_conn	*c = arg;

	(void)bev;
	if (c->state == HTTP_STREAMING) {
		if (c->srv->ssl == NULL)
			bufferevent_disable(c->bev, EV_WRITE);
		return;
	}
	if (c->state != HTTP_WRITING)
		return;
	/*
	 * Off until the next answer needs it: while EV_WRITE is enabled,
	 * every byte added to the output arms the write event (epoll_ctl).
	 * TLS keeps it: OpenSSL may need to write at any time.
	 */
	if (c->srv->ssl == NULL)
		bufferevent_disable(c->bev, EV_WRITE);
	if (c->close_after_write) {
		struct timeval	 tv = { HTTP_LINGER_S, 0 };

		/*
		 * Closing with unread input makes the kernel send a reset,
		 * which can destroy the answer before the client reads it
		 * (a 413 while the client is still sending).  Half-close,
		 * drain what still arrives, and close at EOF or after a
		 * short linger.  TLS closes at once: its own close_notify
		 * needs the write side.
		 */
		if (c->srv->ssl != NULL || shutdown(bufferevent_getfd(c->bev),
		    SHUT_WR) == -1) {
			http_conn_free(c);
			return;
		}
		c->state = HTTP_LINGER;
		bufferevent_enable(c->bev, EV_READ);
		evtimer_add(c->deadline, &tv);
		http_conn_process(c);
		return;
	}
	/* Next request on a kept-alive connection (maybe already buffered). */
	c->state = HTTP_READ_HEADERS;
	c->header_bytes = 0;
	bufferevent_enable(c->bev, EV_READ);
	http_deadline_arm(c);
	http_conn_process(c);
}

/* The answer went out in http_reply(): as if EV_WRITE had drained it. */
static void
http_written_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn	*c = arg;

	(void)fd;
	(void)what;
	http_write_cb(c->bev, c);
}

static void
http_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct http_conn	*c = arg;

	(void)bev;
	if (what & BEV_EVENT_TIMEOUT)
		log_kv(LOG_LEVEL_INFO, "write timeout", "peer", c->peer, NULL);
	if (what & BEV_EVENT_ERROR) {
		unsigned long	 e = bufferevent_get_openssl_error(c->bev);

		if (e != 0)
			log_kv(LOG_LEVEL_DEBUG, "tls error", "peer", c->peer,
			    "error", ERR_reason_error_string(e), NULL);
	}
	/*
	 * A client may half-close once its request is sent and still wait
	 * for the answer: answer, then close.
	 */
	if (what == (BEV_EVENT_READING | BEV_EVENT_EOF)) {
		if (c->state == HTTP_DISPATCHED) {
			c->peer_eof = 1;
			return;
		}
		if (c->state == HTTP_WRITING) {
			c->close_after_write = 1;
			return;
		}
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
		http_conn_free(c);
}

/*
 * Write what the output holds now; 1 when all of it went out.  Else (TLS,
 * a full socket buffer) the bufferevent writes the rest under the write
 * timeout.  A socket bufferevent keeps its output's start frozen except
 * while it writes itself (evbuffer_write fails on a frozen buffer), so
 * the write thaws it the same way.
 */
static int
http_flush(struct http_conn *c)
{
	struct evbuffer	*out = bufferevent_get_output(c->bev);
	struct timeval	 wtv;
	ev_ssize_t	 w;

	if (c->srv->ssl == NULL) {
		evbuffer_unfreeze(out, 1);
		w = evbuffer_write(out, bufferevent_getfd(c->bev));
		evbuffer_freeze(out, 1);
		if (w >= 0 && evbuffer_get_length(out) == 0)
			return 1;
	}
	wtv.tv_sec = c->srv->limits.write_timeout_s > 0 ?
	    c->srv->limits.write_timeout_s : 10;
	wtv.tv_usec = 0;
	bufferevent_set_timeouts(c->bev, NULL, &wtv);
	bufferevent_enable(c->bev, EV_WRITE);
	return 0;
}

void
http_reply(struct http_request *r, int status, const char *ctype,
    const char *const *extra, const void *body, size_t len)
{
	struct http_conn	*c = r->conn;

	if (r->replied)
		return;
	r->replied = 1;
	if (c == NULL) {
		/* Orphaned: the client went away while we worked. */
		http_request_free(r);
		return;
	}
	c->srv->npending--;
	http_write_response(c, status, ctype, extra, body, len,
	    r->keep_alive && !c->peer_eof, r->head);
	c->close_after_write = !r->keep_alive || c->peer_eof;
	http_request_free(r);
	c->req = NULL;
	c->state = HTTP_WRITING;
	/*
	 * A small answer almost always fits the socket buffer: write it now
	 * and go on from the next loop iteration, instead of enabling and
	 * disabling EV_WRITE (two epoll_ctl calls and one more wakeup per
	 * request).
	 */
	if (http_flush(c))
		event_active(c->written, 0, 0);
}

void
http_reply_error(struct http_request *r, int status, const char *msg,
    const char *const *extra)
{
	char	*body, *esc;
	size_t	 cap = strlen(msg) * 6 + 1;

	esc = xmalloc(cap);
	log_escape(msg, strlen(msg), esc, cap);
	body = xasprintf("{\"error\":\"%s\",\"code\":%d}", esc, status);
	http_reply(r, status, "application/json", extra, body, strlen(body));
	free(body);
	free(esc);
}

int
http_stream_start(struct http_request *r, int status, const char *ctype,
    const char *const *extra, http_stream_gone_cb *gone, void *arg)
{
	struct http_conn	*c = r->conn;
	struct evbuffer		*out;

	if (r->replied || c == NULL || r->head || gone == NULL)
		return -1;
	r->replied = 1;
	r->gone_cb = gone;
	r->gone_arg = arg;
	/* No longer waiting for an answer: a drain does not wait for it. */
	c->srv->npending--;
	c->state = HTTP_STREAMING;
	/*
	 * No Content-Length and no chunking: the body ends when the
	 * connection does, which every HTTP/1.x client understands.
	 */
	out = bufferevent_get_output(c->bev);
	http_write_head(out, status, ctype, extra);
	evbuffer_add(out, "Connection: close\r\n\r\n", 21);
	http_flush(c);
	return 0;
}

int
http_stream_send(struct http_request *r, const void *data, size_t len)
{
	struct http_conn	*c = r->conn;
	struct evbuffer		*out;

	if (c == NULL || c->state != HTTP_STREAMING)
		return -1;
	out = bufferevent_get_output(c->bev);
	if (evbuffer_get_length(out) + len > HTTP_STREAM_MAX_BUFFERED) {
		log_kv(LOG_LEVEL_INFO, "stream client too slow", "peer",
		    c->peer, NULL);
		return -1;
	}
	evbuffer_add(out, data, len);
	http_flush(c);
	return 0;
}

void
http_stream_end(struct http_request *r)
{
	struct http_conn	*c = r->conn;

	if (c != NULL) {
		/* What is buffered still goes out; then the close. */
		c->req = NULL;
		c->state = HTTP_WRITING;
		c->close_after_write = 1;
		if (http_flush(c))
			event_active(c->written, 0, 0);
	}
	http_request_free(r);
}

static const char *const http_refusal_names[HTTP_REFUSED_N] = {
	"max_connections", "max_connections_per_client", "descriptors"
};

static unsigned
http_peer_hash(const char *host)
{
	unsigned	 h = 2166136261u;

	for (; *host != '\0'; host++)
		h = (h ^ (unsigned char)*host) * 16777619u;
	return h % HTTP_PEER_BUCKETS;
}

static struct http_peer *
http_peer_find(struct http_server *srv, const char *host)
{
	struct http_peer	*p;

	for (p = srv->peers[http_peer_hash(host)]; p != NULL; p = p->next)
		if (strcmp(p->host, host) == 0)
			return p;
	return NULL;
}

/* One more connection of host; its entry is created at the first. */
static struct http_peer *
http_peer_get(struct http_server *srv, const char *host)
{
	struct http_peer	*p;
	unsigned		 h;

	if ((p = http_peer_find(srv, host)) == NULL) {
		h = http_peer_hash(host);
		p = xcalloc(1, sizeof(*p));
		util_strlcpy(p->host, host, sizeof(p->host));
		p->next = srv->peers[h];
		srv->peers[h] = p;
	}
	p->n++;
	return p;
}

/* One connection fewer; the entry goes with the last. */
static void
http_peer_put(struct http_server *srv, struct http_peer *p)
{
	struct http_peer	**pp;

	if (p == NULL || --p->n > 0)
		return;
	for (pp = &srv->peers[http_peer_hash(p->host)]; *pp != NULL;
	    pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	free(p);
}

/* Log what the tally holds, if anything; 1 when it logged. */
static int
http_tally_flush(struct http_server *srv)
{
	struct http_tally	*t = &srv->tally;
	char			 n[HTTP_REFUSED_N][24], d[24], e[64];
	unsigned long		 sum = 0, dropped = 0;
	int			 i;

	for (i = 0; i < HTTP_REFUSED_N; i++) {
		sum += t->refused[i] + t->dropped[i];
		dropped += t->dropped[i];
		snprintf(n[i], sizeof(n[i]), "%lu", t->refused[i] +
		    t->dropped[i]);
	}
	if (sum == 0)
		return 0;
	snprintf(d, sizeof(d), "%lu", dropped);
	snprintf(e, sizeof(e), "%s", t->last_errno != 0 ?
	    strerror(t->last_errno) : "");
	log_kv(LOG_LEVEL_WARN, "connections refused",
	    "listener", srv->limits.name != NULL ? srv->limits.name : "http",
	    "max_connections", n[HTTP_REFUSED_MAX],
	    "max_connections_per_client", n[HTTP_REFUSED_PER_CLIENT],
	    "descriptors", n[HTTP_REFUSED_DESCRIPTORS],
	    "unanswered", d, "last_peer", t->last_peer,
	    /* A NULL name ends the list: no accept_error without one. */
	    t->last_errno != 0 ? "accept_error" : NULL, e, NULL);
	memset(t->refused, 0, sizeof(t->refused));
	memset(t->dropped, 0, sizeof(t->dropped));
	t->last_errno = 0;
	return 1;
}

static void
http_tally_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_server	*srv = arg;
	struct timeval		 tv = { HTTP_TALLY_S, 0 };

	(void)fd;
	(void)what;
	/* Nothing more in a whole period: the next refusal logs at once. */
	if (!http_tally_flush(srv)) {
		srv->tally.open = 0;
		return;
	}
	evtimer_add(srv->tally.ev, &tv);
}

/*
 * Count a connection refused (answered 503) or dropped (closed without an
 * answer, or never accepted) in the metric and the tally.
 */
static void
http_refuse(struct http_server *srv, enum http_refusal why, int dropped,
    const char *host)
{
	struct http_tally	*t = &srv->tally;
	struct timeval		 tv = { HTTP_TALLY_S, 0 };
	char			 labels[160];

	snprintf(labels, sizeof(labels),
	    "listener=\"%s\",cause=\"%s\",outcome=\"%s\"",
	    srv->limits.name != NULL ? srv->limits.name : "http",
	    http_refusal_names[why], dropped ? "dropped" : "refused");
	metrics_counter_add("gitopsd_connections_refused_total", labels, 1);
	if (dropped)
		t->dropped[why]++;
	else
		t->refused[why]++;
	if (host != NULL)
		util_strlcpy(t->last_peer, host, sizeof(t->last_peer));
	if (!t->open) {
		http_tally_flush(srv);
		t->open = 1;
		evtimer_add(t->ev, &tv);
	}
}

static void
http_accept_cb(struct evconnlistener *lev, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct http_server	*srv = arg;
	struct http_peer	*p;
	char			 host[INET6_ADDRSTRLEN] = "?", peer[64];
	int			 port = 0, one = 1, why = -1;

	(void)lev;
	(void)salen;
	if (sa->sa_family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		port = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		port = ntohs(in6->sin6_port);
	}
	if (srv->nconns >= srv->limits.max_connections)
		why = HTTP_REFUSED_MAX;
	else if (srv->limits.max_connections_per_client > 0 &&
	    (p = http_peer_find(srv, host)) != NULL &&
	    p->n >= srv->limits.max_connections_per_client)
		why = HTTP_REFUSED_PER_CLIENT;
	if (why != -1 && srv->nbusy >= HTTP_BUSY_MAX) {
		/* Past the 503 answers too: a plain close. */
		http_refuse(srv, why, 1, host);
		evutil_closesocket(fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	snprintf(peer, sizeof(peer), sa->sa_family == AF_INET6 ?
	    "[%s]:%d" : "%s:%d", host, port);
	if (why != -1)
		http_refuse(srv, why, 0, host);
	http_conn_new(srv, fd, peer, host, why != -1);
}

static void
http_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_server	*srv = arg;

	(void)fd;
	(void)what;
	if (srv->listener != NULL)
		evconnlistener_enable(srv->listener);
}

/*
 * accept() failed with something other than a retry (libevent handles
 * EAGAIN, EINTR, ECONNABORTED): mostly EMFILE or ENFILE.  The pending
 * connection stays in the backlog and the socket readable, so pause the
 * listener instead of failing again in a loop; connections that close
 * meanwhile give their descriptors back.
 */
static void
http_accept_error_cb(struct evconnlistener *lev, void *arg)
{
	struct http_server	*srv = arg;
	struct timeval		 tv = { 0, HTTP_ACCEPT_PAUSE_MS * 1000 };
	int			 e = errno;

	evconnlistener_disable(lev);
	evtimer_add(srv->resume, &tv);
	srv->accept_pauses++;
	srv->tally.last_errno = e;
	http_refuse(srv, HTTP_REFUSED_DESCRIPTORS, 1, NULL);
}

/*
 * A connection for an accepted socket; the socket is closed on failure.
 * busy: over a cap, it only gets a 503 and is closed.
 */
static int
http_conn_new(struct http_server *srv, evutil_socket_t fd, const char *peer,
    const char *host, int busy)
{
	struct http_conn	*c;
	struct bufferevent	*bev;
	SSL			*ssl;

	evutil_make_socket_nonblocking(fd);
	if (srv->ssl != NULL) {
		if ((ssl = SSL_new(srv->ssl)) == NULL) {
			evutil_closesocket(fd);
			return -1;
		}
		bev = bufferevent_openssl_socket_new(srv->base, fd, ssl,
		    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	} else
		bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		evutil_closesocket(fd);
		return -1;
	}
	c = xcalloc(1, sizeof(*c));
	c->srv = srv;
	c->bev = bev;
	c->state = HTTP_READ_HEADERS;
	util_strlcpy(c->peer, peer, sizeof(c->peer));
	if ((c->deadline = evtimer_new(srv->base, http_deadline_cb, c)) == NULL ||
	    (c->written = event_new(srv->base, -1, 0, http_written_cb, c)) ==
	    NULL)
		fatalx("evtimer_new");
	c->next = srv->conns;
	if (srv->conns != NULL)
		srv->conns->prev = c;
	srv->conns = c;
	if (busy) {
		c->busy = 1;
		srv->nbusy++;
	} else {
		c->owner = http_peer_get(srv, host);
		srv->nconns++;
	}
	bufferevent_setcb(bev, http_read_cb, http_write_cb, http_event_cb, c);
	/*
	 * What a client sends while its request is handled (pipelining)
	 * waits in the input buffer; beyond this much, reading pauses until
	 * it is consumed.  Bodies are drained as they come, and a header
	 * block up to its cap always fits, so only that waiting is bounded.
	 */
	bufferevent_setwatermark(bev, EV_READ, 0,
	    srv->limits.max_header_bytes + HTTP_READ_SLACK);
	if (srv->ssl != NULL)
		bufferevent_enable(bev, EV_READ | EV_WRITE);
	else {
		/* A new bufferevent starts with EV_WRITE on. */
		bufferevent_disable(bev, EV_WRITE);
		bufferevent_enable(bev, EV_READ);
	}
	/* An idle connection gets read_timeout_s for its first request too. */
	http_deadline_arm(c);
	if (busy)
		http_conn_fail(c, 503, "too many connections");
	return 0;
}

int
http_server_adopt(struct http_server *srv, int fd, const char *peer)
{
	if (srv->nconns >= srv->limits.max_connections)
		return -1;
	return http_conn_new(srv, fd, peer, peer, 0);
}

static SSL_CTX *
http_ssl_ctx(const char *cert, const char *key, char *err, size_t errlen)
{
	SSL_CTX	*ctx;

	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		snprintf(err, errlen, "SSL_CTX_new failed");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		snprintf(err, errlen, "cannot load TLS certificate %s: %s", cert,
		    ERR_reason_error_string(ERR_get_error()));
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, errlen, "cannot load TLS key %s: %s", key,
		    ERR_reason_error_string(ERR_get_error()));
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

struct http_server *
http_server_new(struct event_base *base, const char *host, int port,
    const struct http_limits *limits, const char *tls_cert,
    const char *tls_key, http_handler_cb *cb, void *arg, char *err,
    size_t errlen)
{
	return http_server_new_fd(base, -1, host, port, limits, tls_cert,
	    tls_key, cb, arg, err, errlen);
}

struct http_server *
http_server_new_fd(struct event_base *base, int fd, const char *host,
    int port, const struct http_limits *limits, const char *tls_cert,
    const char *tls_key, http_handler_cb *cb, void *arg, char *err,
    size_t errlen)
{
	struct http_server	*srv;
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*in = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*in6 = (struct sockaddr_in6 *)&ss;
	socklen_t		 sslen = 0;
	const char		*h = host;

	memset(&ss, 0, sizeof(ss));
	if (fd == -1) {
		if (strcmp(h, "localhost") == 0)
			h = "127.0.0.1";
		if (inet_pton(AF_INET, h, &in->sin_addr) == 1) {
			in->sin_family = AF_INET;
			in->sin_port = htons((uint16_t)port);
			sslen = sizeof(*in);
		} else if (inet_pton(AF_INET6, h, &in6->sin6_addr) == 1) {
			in6->sin6_family = AF_INET6;
			in6->sin6_port = htons((uint16_t)port);
			sslen = sizeof(*in6);
		} else {
			snprintf(err, errlen, "bad listen address %s", host);
			return NULL;
		}
	}
	srv = xcalloc(1, sizeof(*srv));
	srv->base = base;
	srv->limits = *limits;
	srv->cb = cb;
	srv->arg = arg;
	if ((srv->resume = evtimer_new(base, http_resume_cb, srv)) == NULL ||
	    (srv->tally.ev = evtimer_new(base, http_tally_cb, srv)) == NULL)
		fatalx("evtimer_new");
	metrics_describe("gitopsd_connections_refused_total", "counter",
	    "Connections refused with 503 (outcome refused) or closed "
	    "unanswered (outcome dropped), by listener and cause.");
	if (tls_cert != NULL &&
	    (srv->ssl = http_ssl_ctx(tls_cert, tls_key, err, errlen)) == NULL)
		goto fail;
	if (fd != -1) {
		/* An inherited, already listening socket (systemd). */
		evutil_make_socket_nonblocking(fd);
		evutil_make_socket_closeonexec(fd);
		srv->listener = evconnlistener_new(base, http_accept_cb, srv,
		    LEV_OPT_CLOSE_ON_FREE, -1, fd);
	} else
		srv->listener = evconnlistener_new_bind(base, http_accept_cb,
		    srv, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
		    LEV_OPT_CLOSE_ON_EXEC, 1024, (struct sockaddr *)&ss,
		    (int)sslen);
	if (srv->listener != NULL)
		evconnlistener_set_error_cb(srv->listener, http_accept_error_cb);
	if (srv->listener == NULL) {
		if (fd != -1)
			snprintf(err, errlen, "cannot use inherited socket %d: %s",
			    fd, strerror(errno));
		else
			snprintf(err, errlen, "cannot listen on %s:%d: %s", host,
			    port, strerror(errno));
		goto fail;
	}
	sslen = sizeof(ss);
	if (getsockname(evconnlistener_get_fd(srv->listener),
	    (struct sockaddr *)&ss, &sslen) == 0)
		srv->port = ss.ss_family == AF_INET6 ? ntohs(in6->sin6_port) :
		    ntohs(in->sin_port);
	return srv;
fail:
	if (srv->ssl != NULL)
		SSL_CTX_free(srv->ssl);
	event_free(srv->resume);
	event_free(srv->tally.ev);
	free(srv);
	return NULL;
}

void
http_server_stop(struct http_server *srv)
{
	struct http_conn	*c, *next;

	if (srv->listener != NULL) {
		evconnlistener_free(srv->listener);
		srv->listener = NULL;
	}
	evtimer_del(srv->resume);
	/* Idle connections go now; busy ones finish their request. */
	for (c = srv->conns; c != NULL; c = next) {
		next = c->next;
		if (c->state == HTTP_READ_HEADERS && c->req == NULL)
			http_conn_free(c);
		else if (c->req != NULL)
			c->req->keep_alive = 0;
	}
}

void
http_server_free(struct http_server *srv)
{
	if (srv == NULL)
		return;
	http_server_stop(srv);
	/* http_conn_free unlinks: conns never holds a freed connection. */
	while (srv->conns != NULL)
		// NOLINTNEXTLINE(clang-analyzer-unix.Malloc)
		http_conn_free(srv->conns);
	if (srv->ssl != NULL)
		SSL_CTX_free(srv->ssl);
	/* What the last period refused still gets its line. */
	http_tally_flush(srv);
	event_free(srv->resume);
	event_free(srv->tally.ev);
	free(srv);
}

void
http_server_set_limits(struct http_server *srv, const struct http_limits *l)
{
	srv->limits = *l;
}

int
http_server_port(const struct http_server *srv)
{
	return srv->port;
}

int
http_server_connections(const struct http_server *srv)
{
	return srv->nconns;
}

int
http_server_pending(const struct http_server *srv)
{
	return srv->npending;
}

unsigned long
http_server_accept_pauses(const struct http_server *srv)
{
	return srv->accept_pauses;
}

int
http_listener_fds(int max_connections)
{
	/* The listening socket, the connections, the 503 answers. */
	return 1 + max_connections + HTTP_BUSY_MAX;
}
