/*
 * Unit tests for daemon/http.c: a real server on 127.0.0.1 driven by a
 * client thread over real sockets, past every limit.
 */
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "http.h"
#include "util.h"

struct fixture {
	struct event_base	*base;
	struct http_server	*srv;
	int			 port;
	int			 requests;
	int			 delay_ms;	/* answer later from a timer */
	size_t			 last_body_len;
	char			 last_body[64];
	struct http_request	*stream;	/* streaming: until ended */
	int			 gone;		/* streams whose client left */
	int			 pending_streaming;
};

struct client_arg {
	struct fixture	*fx;
	void		(*fn)(struct fixture *);
	int		 done;
};

static void
test_reply_later_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_request	*req = arg;

	(void)fd;
	(void)what;
	http_reply(req, 200, "text/plain", NULL, "late", 4);
}

static void
test_stream_gone_cb(struct http_request *req, void *arg)
{
	struct fixture	*fx = arg;

	assert_ptr_equal(req, fx->stream);
	/* Gone: a send fails, and ending it only frees it. */
	assert_int_equal(http_stream_send(req, "x", 1), -1);
	fx->gone++;
	fx->stream = NULL;
	http_stream_end(req);
}

static void
test_stream_more_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fixture	*fx = arg;

	(void)fd;
	(void)what;
	if (fx->stream != NULL)
		assert_int_equal(http_stream_send(fx->stream, "b\n", 2), 0);
}

static void
test_stream_end_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fixture	*fx = arg;

	(void)fd;
	(void)what;
	if (fx->stream != NULL) {
		http_stream_end(fx->stream);
		fx->stream = NULL;
	}
}

/*
 * /stream: "a", then "b" 50 ms later; /stream/end: ended by the server
 * 100 ms later.  /stream/open: left open.
 */
static void
test_stream_handler(struct fixture *fx, struct http_request *req,
    const char *path)
{
	static const char *const hdr[] = { "Cache-Control: no-store", NULL };
	struct timeval	 more = { 0, 50000 }, end = { 0, 100000 };

	assert_int_equal(http_stream_start(req, 200, "text/event-stream", hdr,
	    test_stream_gone_cb, fx), 0);
	/* Answered once: a second start or a reply changes nothing. */
	assert_int_equal(http_stream_start(req, 200, "text/plain", NULL,
	    test_stream_gone_cb, fx), -1);
	http_reply(req, 500, "text/plain", NULL, "no", 2);
	fx->stream = req;
	fx->pending_streaming = http_server_pending(fx->srv);
	assert_int_equal(http_stream_send(req, "a\n", 2), 0);
	event_base_once(fx->base, -1, EV_TIMEOUT, test_stream_more_cb, fx,
	    &more);
	if (strcmp(path, "/stream/end") == 0)
		event_base_once(fx->base, -1, EV_TIMEOUT, test_stream_end_cb,
		    fx, &end);
}

/* Echo the body length and the path. */
static void
test_handler(struct http_request *req, void *arg)
{
	struct fixture			*fx = arg;
	const struct http_request_info	*ri = http_request_info(req);
	char				 out[256];
	struct timeval			 tv;

	if (strncmp(ri->path, "/stream", 7) == 0) {
		test_stream_handler(fx, req, ri->path);
		return;
	}
	fx->requests++;
	fx->last_body_len = ri->body_len;
	memset(fx->last_body, 0, sizeof(fx->last_body));
	memcpy(fx->last_body, ri->body, ri->body_len < 63 ? ri->body_len : 63);
	if (fx->delay_ms > 0) {
		tv.tv_sec = 0;
		tv.tv_usec = fx->delay_ms * 1000;
		event_base_once(fx->base, -1, EV_TIMEOUT, test_reply_later_cb,
		    req, &tv);
		return;
	}
	snprintf(out, sizeof(out), "%s %s %zu", ri->method, ri->path,
	    ri->body_len);
	http_reply(req, 200, "text/plain", NULL, out, strlen(out));
}

static int
setup(void **state)
{
	struct fixture		*fx = xcalloc(1, sizeof(*fx));
	struct http_limits	 l = {
		.max_body_bytes = 1024, .max_header_bytes = 512,
		.read_timeout_s = 1, .write_timeout_s = 2, .max_connections = 4,
	};
	char			 err[256];

	fx->base = event_base_new();
	assert_non_null(fx->base);
	fx->srv = http_server_new(fx->base, "127.0.0.1", 0, &l, NULL, NULL,
	    test_handler, fx, err, sizeof(err));
	assert_non_null(fx->srv);
	fx->port = http_server_port(fx->srv);
	assert_true(fx->port > 0);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*fx = *state;

	http_server_free(fx->srv);
	event_base_free(fx->base);
	free(fx);
	return 0;
}

static int
client_connect(struct fixture *fx)
{
	struct sockaddr_in	 sin;
	struct timeval		 tv = { 5, 0 };
	int			 fd;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)fx->port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static void
client_send(int fd, const char *s, size_t n)
{
	size_t	 off = 0;
	ssize_t	 w;

	while (off < n) {
		w = send(fd, s + off, n - off, MSG_NOSIGNAL);
		if (w <= 0)
			return;		/* the server may close early: fine */
		off += (size_t)w;
	}
}

/* Read until the peer closes or `want` responses' bodies have arrived. */
static size_t
client_read_all(int fd, char *out, size_t cap)
{
	size_t	 n = 0;
	ssize_t	 r;

	while (n + 1 < cap) {
		r = recv(fd, out + n, cap - 1 - n, 0);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	out[n] = '\0';
	return n;
}

static int
count(const char *hay, const char *needle)
{
	int		 c = 0;
	const char	*p = hay;

	while ((p = strstr(p, needle)) != NULL) {
		c++;
		p += strlen(needle);
	}
	return c;
}

static void *
client_thread(void *arg)
{
	struct client_arg	*ca = arg;

	ca->fn(ca->fx);
	__atomic_store_n(&ca->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

static void
run_client(struct fixture *fx, void (*fn)(struct fixture *))
{
	struct client_arg	 ca = { fx, fn, 0 };
	pthread_t		 t;
	struct timeval		 tick = { 0, 10000 };

	assert_int_equal(pthread_create(&t, NULL, client_thread, &ca), 0);
	while (!__atomic_load_n(&ca.done, __ATOMIC_SEQ_CST)) {
		event_base_loopexit(fx->base, &tick);
		event_base_dispatch(fx->base);
	}
	pthread_join(t, NULL);
}

static char	 resp[65536];

static void
c_simple(struct fixture *fx)
{
	int	 fd = client_connect(fx);
	const char req[] = "POST /hooks/x HTTP/1.1\r\nHost: a\r\n"
	    "Content-Length: 5\r\nConnection: close\r\n\r\nhello";

	client_send(fd, req, sizeof(req) - 1);
	client_read_all(fd, resp, sizeof(resp));
	close(fd);
}

static void
test_simple(void **state)
{
	struct fixture	*fx = *state;

	run_client(fx, c_simple);
	assert_non_null(strstr(resp, "HTTP/1.1 200 OK\r\n"));
	assert_non_null(strstr(resp, "POST /hooks/x 5"));
	assert_string_equal(fx->last_body, "hello");
}

static void
c_pipeline(struct fixture *fx)
{
	int	 fd = client_connect(fx);
	const char req[] =
	    "POST /a HTTP/1.1\r\nContent-Length: 1\r\n\r\nA"
	    "GET /b HTTP/1.1\r\n\r\n"
	    "POST /c HTTP/1.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\nCC";

	client_send(fd, req, sizeof(req) - 1);
	client_read_all(fd, resp, sizeof(resp));
	close(fd);
}

/* Pipelined requests are answered in order on one connection. */
static void
test_pipeline(void **state)
{
	struct fixture	*fx = *state;
	char		*a, *b, *c;

	run_client(fx, c_pipeline);
	assert_int_equal(fx->requests, 3);
	a = strstr(resp, "POST /a 1");
	b = strstr(resp, "GET /b 0");
	c = strstr(resp, "POST /c 2");
	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(c);
	assert_true(a < b && b < c);
}

static void
c_body_cap(struct fixture *fx)
{
	int	 fd = client_connect(fx);
	const char req[] = "POST /x HTTP/1.1\r\nContent-Length: 1025\r\n\r\n";
	char	 body[1025];

	memset(body, 'b', sizeof(body));
	client_send(fd, req, sizeof(req) - 1);
	usleep(50000);
	/* The client goes on sending: the answer must survive that. */
	client_send(fd, body, sizeof(body));
	client_read_all(fd, resp, sizeof(resp));
	close(fd);
}

/* A declared length over the cap is refused before the body is read. */
static void
test_body_cap(void **state)
{
	struct fixture	*fx = *state;

	run_client(fx, c_body_cap);
	assert_non_null(strstr(resp, "HTTP/1.1 413 "));
	assert_non_null(strstr(resp, "{\"error\":\"request body too large\",\"code\":413}"));
	assert_int_equal(fx->requests, 0);
}

static void
c_chunked(struct fixture *fx)
{
	int	 fd = client_connect(fx);
	const char req[] = "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
	    "Connection: close\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n";

	client_send(fd, req, sizeof(req) - 1);
	client_read_all(fd, resp, sizeof(resp));
	close(fd);
}

static void
test_chunked(void **state)
{
	struct fixture	*fx = *state;

	run_client(fx, c_chunked);
	assert_non_null(strstr(resp, "HTTP/1.1 200 OK"));
	assert_string_equal(fx->last_body, "hello world");
}

static void
c_chunked_over(struct fixture *fx)
{
	int	 fd = client_connect(fx);
	char	 chunk[700];
	const char head[] = "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";

	memset(chunk, 'a', sizeof(chunk));
	client_send(fd, head, sizeof(head) - 1);
	/* Two chunks of 600: each under the cap, together over it. */
	client_send(fd, "258\r\n", 5);
	client_send(fd, chunk, 600);
	client_send(fd, "\r\n258\r\n", 7);
	client_send(fd, chunk, 600);
	client_send(fd, "\r\n0\r\n\r\n", 7);
	client_read_all(fd, resp, sizeof(resp));
	close(fd);
}

static void
test_chunked_over_cap(void **state)
{
	struct fixture	*fx = *state;

	run_client(fx, c_chunked_over);
	assert_non_null(strstr(resp, "HTTP/1.1 413 "));
	assert_int_equal(fx->requests, 0);
}

static void
c_header_cap(struct fixture *fx)
{
	int	 fd = client_connect(fx);
	char	 big[1024];

	memset(big, 'x', sizeof(big));
	client_send(fd, "GET / HTTP/1.1\r\nX-Big: ", 23);
	client_send(fd, big, sizeof(big));
	client_send(fd, "\r\n\r\n", 4);
	client_read_all(fd, resp, sizeof(resp));
	close(fd);
}

static void
test_header_cap(void **state)
{
	struct fixture	*fx = *state;

	run_client(fx, c_header_cap);
	assert_non_null(strstr(resp, "HTTP/1.1 431 "));
	assert_int_equal(fx->requests, 0);
}

static void
c_slowloris(struct fixture *fx)
{
	int		 fd = client_connect(fx), i;
	const char	*part = "GET / HTTP/1.1\r\nX-A: b\r\n";
	double		 t0 = util_mono_s();

	/* A byte every 200 ms never lets the read deadline (1 s) reset. */
	for (i = 0; part[i] != '\0' && util_mono_s() - t0 < 4; i++) {
		if (send(fd, part + i, 1, MSG_NOSIGNAL) <= 0)
			break;
		usleep(200000);
	}
	client_read_all(fd, resp, sizeof(resp));
	close(fd);
	/* Served while the slow one trickled: a second client is fine. */
}

static void
test_slowloris(void **state)
{
	struct fixture	*fx = *state;
	double		 t0 = util_mono_s();

	run_client(fx, c_slowloris);
	assert_non_null(strstr(resp, "HTTP/1.1 408 "));
	assert_true(util_mono_s() - t0 < 3.5);
	assert_int_equal(fx->requests, 0);
}

static void
c_conn_cap(struct fixture *fx)
{
	int	 fds[4], fd, i;

	for (i = 0; i < 4; i++)
		fds[i] = client_connect(fx);
	usleep(100000);
	fd = client_connect(fx);
	client_send(fd, "GET / HTTP/1.1\r\n\r\n", 18);
	client_read_all(fd, resp, sizeof(resp));
	close(fd);
	for (i = 0; i < 4; i++)
		close(fds[i]);
}

static void
test_connection_cap(void **state)
{
	struct fixture	*fx = *state;

	run_client(fx, c_conn_cap);
	assert_non_null(strstr(resp, "HTTP/1.1 503 "));
	assert_non_null(strstr(resp, "Retry-After: 1"));
	assert_non_null(strstr(resp, "too many connections"));
}

static void
c_smuggle(struct fixture *fx)
{
	int	 fd = client_connect(fx);
	const char req[] = "POST /x HTTP/1.1\r\nContent-Length: 3\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n";

	client_send(fd, req, sizeof(req) - 1);
	client_read_all(fd, resp, sizeof(resp));
	close(fd);
}

static void
test_ambiguous_framing(void **state)
{
	struct fixture	*fx = *state;

	run_client(fx, c_smuggle);
	assert_non_null(strstr(resp, "HTTP/1.1 400 "));
	assert_int_equal(fx->requests, 0);
}

static void
c_expect(struct fixture *fx)
{
	int	 fd = client_connect(fx);
	const char head[] = "POST /x HTTP/1.1\r\nContent-Length: 3\r\n"
	    "Expect: 100-continue\r\nConnection: close\r\n\r\n";
	char	 buf[256];
	ssize_t	 n;

	client_send(fd, head, sizeof(head) - 1);
	n = recv(fd, buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	if (strncmp(buf, "HTTP/1.1 100 Continue\r\n\r\n", 25) == 0)
		client_send(fd, "abc", 3);
	client_read_all(fd, resp, sizeof(resp));
	close(fd);
}

static void
test_expect_continue(void **state)
{
	struct fixture	*fx = *state;

	run_client(fx, c_expect);
	assert_non_null(strstr(resp, "POST /x 3"));
}

static void
c_keepalive_late(struct fixture *fx)
{
	int	 fd = client_connect(fx);
	const char req[] = "GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n"
	    "Connection: close\r\n\r\n";

	client_send(fd, req, sizeof(req) - 1);
	client_read_all(fd, resp, sizeof(resp));
	close(fd);
}

/* An answer given later from another callback still arrives, in order. */
static void
test_async_reply(void **state)
{
	struct fixture	*fx = *state;

	fx->delay_ms = 50;
	run_client(fx, c_keepalive_late);
	assert_int_equal(count(resp, "HTTP/1.1 200 OK"), 2);
	assert_int_equal(count(resp, "late"), 2);
	assert_int_equal(http_server_pending(fx->srv), 0);
}

static void
c_disconnect(struct fixture *fx)
{
	int	 fd = client_connect(fx);
	const char req[] = "GET /gone HTTP/1.1\r\n\r\n";

	client_send(fd, req, sizeof(req) - 1);
	usleep(20000);
	close(fd);
	usleep(300000);		/* the late answer finds no client */
}

/* A client gone while its request is pending: no crash, no leak. */
static void
test_orphaned_request(void **state)
{
	struct fixture	*fx = *state;

	fx->delay_ms = 150;
	run_client(fx, c_disconnect);
	assert_int_equal(fx->requests, 1);
	assert_int_equal(http_server_pending(fx->srv), 0);
}

static void
c_half_close(struct fixture *fx)
{
	int	 fd = client_connect(fx);
	const char req[] = "POST /half HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi";

	client_send(fd, req, sizeof(req) - 1);
	shutdown(fd, SHUT_WR);	/* sent: done writing, still reading */
	client_read_all(fd, resp, sizeof(resp));
	close(fd);
}

/*
 * A client that half-closes once its request is sent still gets the
 * answer, given later while the EOF is already known, and then the close.
 */
static void
test_half_close(void **state)
{
	struct fixture	*fx = *state;

	fx->delay_ms = 100;
	run_client(fx, c_half_close);
	assert_int_equal(fx->requests, 1);
	assert_non_null(strstr(resp, "HTTP/1.1 200 OK\r\n"));
	assert_non_null(strstr(resp, "Connection: close\r\n"));
	assert_non_null(strstr(resp, "late"));
	assert_int_equal(http_server_pending(fx->srv), 0);
}

static void
c_body_pieces(struct fixture *fx)
{
	int	 fd = client_connect(fx);
	const char head[] = "POST /pieces HTTP/1.1\r\nContent-Length: 1000\r\n"
	    "\r\n";
	const char next[] = "GET /after HTTP/1.1\r\nConnection: close\r\n\r\n";
	char	 body[1000];
	size_t	 i;

	for (i = 0; i < sizeof(body); i++)
		body[i] = (char)('a' + i % 26);
	client_send(fd, head, sizeof(head) - 1);
	usleep(30000);
	client_send(fd, body, 10);
	usleep(30000);
	client_send(fd, body + 10, 500);
	usleep(30000);
	/* The body's end and the next request in one segment. */
	{
		char	 tail[sizeof(body) - 510 + sizeof(next) - 1];

		memcpy(tail, body + 510, sizeof(body) - 510);
		memcpy(tail + sizeof(body) - 510, next, sizeof(next) - 1);
		client_send(fd, tail, sizeof(tail));
	}
	client_read_all(fd, resp, sizeof(resp));
	close(fd);
}

/* A body that arrives in pieces is read whole, and not one byte more. */
static void
test_body_pieces(void **state)
{
	struct fixture	*fx = *state;

	run_client(fx, c_body_pieces);
	assert_int_equal(fx->requests, 2);
	assert_non_null(strstr(resp, "POST /pieces 1000"));
	assert_non_null(strstr(resp, "GET /after 0"));
}

static void
c_pipeline_many(struct fixture *fx)
{
	int	 fd = client_connect(fx);
	char	 pad[451], one[600], *all;
	size_t	 n = 0, len;
	int	 i;

	memset(pad, 'p', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	all = xmalloc(40 * sizeof(one));
	for (i = 0; i < 40; i++) {
		len = (size_t)snprintf(one, sizeof(one),
		    "GET /p%d HTTP/1.1\r\nX-Pad: %s\r\n%s\r\n", i, pad,
		    i == 39 ? "Connection: close\r\n" : "");
		memcpy(all + n, one, len);
		n += len;
	}
	client_send(fd, all, n);
	free(all);
	client_read_all(fd, resp, sizeof(resp));
	close(fd);
}

/*
 * Forty pipelined requests (about 19 KB) sent at once, each answered
 * late: more than the input kept while a request is handled, so reading
 * pauses and resumes; every one is answered.
 */
static void
test_pipeline_many(void **state)
{
	struct fixture	*fx = *state;

	fx->delay_ms = 5;
	run_client(fx, c_pipeline_many);
	assert_int_equal(fx->requests, 40);
	assert_int_equal(count(resp, "HTTP/1.1 200 OK"), 40);
	assert_int_equal(count(resp, "late"), 40);
	assert_int_equal(http_server_pending(fx->srv), 0);
}

static void
c_bad(struct fixture *fx)
{
	int	 fd = client_connect(fx);
	const char req[] = "GARBAGE\r\n\r\n";

	client_send(fd, req, sizeof(req) - 1);
	client_read_all(fd, resp, sizeof(resp));
	close(fd);
}

static void
test_bad_request_line(void **state)
{
	struct fixture	*fx = *state;

	run_client(fx, c_bad);
	assert_non_null(strstr(resp, "HTTP/1.1 400 "));
	assert_non_null(strstr(resp, "\"code\":400"));
}

/*
 * Framing the server must refuse (docs/http-framing.md): each case is
 * sent on its own connection; the answer is the status given, the
 * connection closes after it, and no request reaches the handler.  The
 * last ones are framings that stay accepted.
 */
struct framing_case {
	const char	*name;
	const char	*raw;
	int		 status;
	size_t		 body_len;	/* decoded, when accepted */
};

#define FR_POST	"POST /x HTTP/1.1\r\nHost: a\r\n"
#define FR_TE	FR_POST "Transfer-Encoding: chunked\r\n\r\n"
#define FR_EXT64 "0123456789abcdef0123456789abcdef" \
		 "0123456789abcdef0123456789abcdef"

static const struct framing_case framing_cases[] = {
	{ "two Transfer-Encoding headers", FR_POST
	  "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
	  "0\r\n\r\n", 400, 0 },
	{ "chunked, then identity in a second header", FR_POST
	  "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n"
	  "0\r\n\r\n", 400, 0 },
	{ "a coding after chunked", FR_POST
	  "Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 400, 0 },
	{ "chunked twice in one list", FR_POST
	  "Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 400, 0 },
	{ "an empty coding", FR_POST
	  "Transfer-Encoding: chunked,\r\n\r\n0\r\n\r\n", 400, 0 },
	{ "an unknown coding before chunked", FR_POST
	  "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501, 0 },
	{ "Transfer-Encoding with Content-Length", FR_POST
	  "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
	  "0\r\n\r\n", 400, 0 },
	{ "Transfer-Encoding in HTTP/1.0", "POST /x HTTP/1.0\r\n"
	  "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, 0 },
	{ "signed chunk size +5", FR_TE "+5\r\nhello\r\n0\r\n\r\n", 400, 0 },
	{ "negative chunk size -5", FR_TE "-5\r\nhello\r\n0\r\n\r\n", 400, 0 },
	{ "chunk size after a blank", FR_TE " 5\r\nhello\r\n0\r\n\r\n", 400, 0 },
	{ "chunk size with 0x", FR_TE "0x5\r\nhello\r\n0\r\n\r\n", 400, 0 },
	{ "chunk size before a blank", FR_TE "5 \r\nhello\r\n0\r\n\r\n", 400, 0 },
	{ "blank before a chunk extension", FR_TE
	  "5 ;a=b\r\nhello\r\n0\r\n\r\n", 400, 0 },
	{ "chunk extension over 64 bytes", FR_TE
	  "5;" FR_EXT64 "x\r\nhello\r\n0\r\n\r\n", 400, 0 },
	{ "bare LF after the request line", "GET /x HTTP/1.1\n\n", 400, 0 },
	{ "bare LF after a header", "GET /x HTTP/1.1\r\nHost: a\n\r\n", 400, 0 },
	{ "bare CR in a header", "GET /x HTTP/1.1\r\nHost: a\rb\r\n\r\n", 400, 0 },
	{ "bare LF after a chunk size", FR_TE "5\nhello\r\n0\r\n\r\n", 400, 0 },
	{ "bare LF after the last chunk", FR_TE "5\r\nhello\r\n0\n\r\n", 400, 0 },
	{ "bare LF ending the trailers", FR_TE "5\r\nhello\r\n0\r\n\n", 400, 0 },
	/* Still accepted. */
	{ "chunk extension of 64 bytes", FR_POST "Connection: close\r\n"
	  "Transfer-Encoding: chunked\r\n\r\n5;" FR_EXT64
	  "\r\nhello\r\n0\r\n\r\n", 200, 5 },
	{ "upper-case hex and a coding name in capitals", FR_POST
	  "Connection: close\r\nTransfer-Encoding: Chunked\r\n\r\n"
	  "A\r\n0123456789\r\n0\r\n\r\n", 200, 10 },
};

static size_t	 framing_idx;
static int	 framing_eof;

static void
c_framing(struct fixture *fx)
{
	const char	*raw = framing_cases[framing_idx].raw;
	int		 fd = client_connect(fx);
	size_t		 n = 0;
	ssize_t		 r = 0;

	client_send(fd, raw, strlen(raw));
	while (n + 1 < sizeof(resp) &&
	    (r = recv(fd, resp + n, sizeof(resp) - 1 - n, 0)) > 0)
		n += (size_t)r;
	resp[n] = '\0';
	/* Closed by the server: EOF, or a reset of what it did not read. */
	framing_eof = r == 0 || (r == -1 && errno == ECONNRESET);
	close(fd);
}

static void
test_strict_framing(void **state)
{
	struct fixture	*fx = *state;
	char		 want[32];
	int		 before;

	for (framing_idx = 0; framing_idx < sizeof(framing_cases) /
	    sizeof(framing_cases[0]); framing_idx++) {
		const struct framing_case *fc = &framing_cases[framing_idx];

		before = fx->requests;
		run_client(fx, c_framing);
		snprintf(want, sizeof(want), "HTTP/1.1 %d ", fc->status);
		if (strncmp(resp, want, strlen(want)) != 0 || !framing_eof ||
		    strstr(resp, "\r\nConnection: close\r\n") == NULL ||
		    (fc->status != 200) != (fx->requests == before))
			fail_msg("%s: want %d and a close, got %s(eof %d, "
			    "handled %d)", fc->name, fc->status, resp,
			    framing_eof, fx->requests - before);
		if (fc->status == 200)
			assert_int_equal(fx->last_body_len, fc->body_len);
	}
}

static int	 emfile_fd = -1;

static void
c_emfile(struct fixture *fx)
{
	const char req[] = "GET /x HTTP/1.1\r\nConnection: close\r\n\r\n";

	(void)fx;
	client_send(emfile_fd, req, sizeof(req) - 1);
	client_read_all(emfile_fd, resp, sizeof(resp));
	close(emfile_fd);
}

/*
 * accept() failing with EMFILE pauses the listener instead of retrying
 * in a loop, and accepting resumes once descriptors are free: a client
 * waits in the backlog while every descriptor is taken, then is served.
 */
static void
test_emfile_pauses(void **state)
{
	struct fixture	*fx = *state;
	struct rlimit	 saved, low;
	struct timeval	 one = { 1, 0 };
	int		 fds[512], n = 0, fd;
	unsigned long	 pauses;

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
	low = saved;
	low.rlim_cur = 256;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	emfile_fd = client_connect(fx);		/* waits in the backlog */
	while (n < (int)nitems(fds) && (fd = dup(0)) != -1)
		fds[n++] = fd;
	assert_int_equal(errno, EMFILE);
	event_base_loopexit(fx->base, &one);
	event_base_dispatch(fx->base);
	pauses = http_server_accept_pauses(fx->srv);
	while (n > 0)
		close(fds[--n]);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
	/* 100 ms pauses over a second, not a failed accept() per loop turn. */
	assert_true(pauses >= 1);
	assert_true(pauses <= 15);
	run_client(fx, c_emfile);
	assert_non_null(strstr(resp, "HTTP/1.1 200 "));
}

static void
c_stream_end(struct fixture *fx)
{
	int	 fd = client_connect(fx);
	const char req[] = "GET /stream/end HTTP/1.1\r\nHost: a\r\n\r\n";

	client_send(fd, req, sizeof(req) - 1);
	client_read_all(fd, resp, sizeof(resp));
	close(fd);
}

/*
 * A streamed answer: headers without a length, then each piece as it is
 * sent, until the server ends it (which closes the connection: the
 * client reads to EOF).  It never counts as pending.
 */
static void
test_stream_until_end(void **state)
{
	struct fixture	*fx = *state;
	const char	*body;

	run_client(fx, c_stream_end);
	assert_non_null(strstr(resp, "HTTP/1.1 200 OK\r\n"));
	assert_non_null(strstr(resp, "Content-Type: text/event-stream\r\n"));
	assert_non_null(strstr(resp, "Cache-Control: no-store\r\n"));
	assert_non_null(strstr(resp, "Connection: close\r\n"));
	assert_null(strstr(resp, "Content-Length"));
	assert_null(strstr(resp, "500"));
	body = strstr(resp, "\r\n\r\n");
	assert_non_null(body);
	assert_string_equal(body + 4, "a\nb\n");
	assert_int_equal(fx->gone, 0);
	assert_int_equal(fx->pending_streaming, 0);
	assert_null(fx->stream);
}

static void
c_stream_leave(struct fixture *fx)
{
	int	 fd = client_connect(fx);
	const char req[] = "GET /stream HTTP/1.1\r\nHost: a\r\n\r\n";
	size_t	 n = 0;
	ssize_t	 r;

	client_send(fd, req, sizeof(req) - 1);
	/* Up to "b": both pieces arrived while the stream is open. */
	while (n + 1 < sizeof(resp)) {
		r = recv(fd, resp + n, sizeof(resp) - 1 - n, 0);
		if (r <= 0)
			break;
		n += (size_t)r;
		resp[n] = '\0';
		if (strstr(resp, "a\nb\n") != NULL)
			break;
	}
	close(fd);
	/* Let the server see the close. */
	usleep(100000);
}

/* A client that leaves is noticed at once: gone is called, once. */
static void
test_stream_client_leaves(void **state)
{
	struct fixture	*fx = *state;

	run_client(fx, c_stream_leave);
	assert_non_null(strstr(resp, "a\nb\n"));
	assert_int_equal(fx->gone, 1);
	assert_null(fx->stream);
	assert_int_equal(http_server_connections(fx->srv), 0);
}

static void
c_stream_open(struct fixture *fx)
{
	int	 fd = client_connect(fx);
	const char req[] = "GET /stream HTTP/1.1\r\nHost: a\r\n\r\n";

	client_send(fd, req, sizeof(req) - 1);
	assert_true(recv(fd, resp, sizeof(resp) - 1, 0) > 0);
	fx->port = fd;		/* kept open past the client thread */
}

/* Freeing the listener with a stream open tells its owner. */
static void
test_stream_server_freed(void **state)
{
	struct fixture	*fx = *state;

	run_client(fx, c_stream_open);
	assert_non_null(fx->stream);
	http_server_free(fx->srv);
	fx->srv = NULL;
	assert_int_equal(fx->gone, 1);
	assert_null(fx->stream);
	close(fx->port);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_simple, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pipeline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_body_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_chunked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_chunked_over_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_header_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slowloris, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connection_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ambiguous_framing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expect_continue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_async_reply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_orphaned_request, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_request_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_half_close, setup, teardown),
		cmocka_unit_test_setup_teardown(test_body_pieces, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pipeline_many, setup, teardown),
		cmocka_unit_test_setup_teardown(test_strict_framing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_emfile_pauses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_until_end, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_stream_client_leaves, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_stream_server_freed, setup,
		    teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	evthread_use_pthreads();
	return cmocka_run_group_tests_name("http", tests, NULL, NULL);
}
