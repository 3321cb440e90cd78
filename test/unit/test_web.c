/*
 * Unit tests for daemon/web.c: the embedded status page served through
 * the real HTTP server over a socketpair (http_server_adopt): validators,
 * gzip negotiation, the security headers, the page's weight.
 */
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <cmocka.h>

#include <event2/event.h>
#include <zlib.h>

#include "http.h"
#include "util.h"
#include "web.h"

/* One parsed answer. */
struct answer {
	int		 status;
	char		 names[32][64];
	char		 values[32][512];
	size_t		 nheaders;
	unsigned char	 body[256 * 1024];
	size_t		 len;
};

static struct answer	 ans;

static void
handler(struct http_request *req, void *arg)
{
	(void)arg;
	if (!web_serve(req))
		http_reply_error(req, 404, "not found", NULL);
}

static const char *
hdr(const char *name)
{
	size_t	 i;

	for (i = 0; i < ans.nheaders; i++)
		if (strcasecmp(ans.names[i], name) == 0)
			return ans.values[i];
	return NULL;
}

/* Status line, header lines and body of a whole HTTP/1.1 answer. */
static void
parse(const unsigned char *raw, size_t n)
{
	const char	*p = (const char *)raw, *end, *colon;
	const char	*stop = (const char *)raw + n;

	memset(&ans, 0, sizeof(ans));
	end = memchr(p, '\n', n);
	assert_non_null(end);
	assert_int_equal(sscanf(p, "HTTP/1.1 %d ", &ans.status), 1);
	p = end + 1;
	for (;;) {
		end = memchr(p, '\n', (size_t)(stop - p));
		assert_non_null(end);
		assert_true(end > p && end[-1] == '\r');
		if (end - 1 == p) {
			p = end + 1;
			break;
		}
		colon = memchr(p, ':', (size_t)(end - p));
		assert_non_null(colon);
		assert_true(ans.nheaders < 32);
		snprintf(ans.names[ans.nheaders], 64, "%.*s", (int)(colon - p),
		    p);
		colon++;
		while (*colon == ' ')
			colon++;
		snprintf(ans.values[ans.nheaders], 512, "%.*s",
		    (int)(end - 1 - colon), colon);
		ans.nheaders++;
		p = end + 1;
	}
	ans.len = (size_t)(stop - p);
	assert_true(ans.len <= sizeof(ans.body));
	memcpy(ans.body, p, ans.len);
}

/* Send one request (Connection: close) and read the answer to EOF. */
static void
ask(const char *method, const char *path, const char *extra)
{
	static unsigned char	 raw[300 * 1024];
	struct http_limits	 l = {
		.max_body_bytes = 1024, .max_header_bytes = 4096,
		.read_timeout_s = 2, .write_timeout_s = 2, .max_connections = 4,
	};
	struct event_base	*base = event_base_new();
	struct http_server	*srv;
	char			 req[1024], err[256];
	size_t			 n = 0;
	ssize_t			 r;
	int			 sv[2], tries;

	assert_non_null(base);
	srv = http_server_new(base, "127.0.0.1", 0, &l, NULL, NULL, handler,
	    NULL, err, sizeof(err));
	assert_non_null(srv);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(http_server_adopt(srv, sv[1], "test"), 0);
	snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s"
	    "Connection: close\r\n\r\n", method, path, extra);
	assert_int_equal(write(sv[0], req, strlen(req)), (ssize_t)strlen(req));
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	for (tries = 0; tries < 2000; tries++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		r = read(sv[0], raw + n, sizeof(raw) - n);
		if (r == 0)
			break;
		if (r > 0)
			n += (size_t)r;
		else {
			assert_true(errno == EAGAIN);
			usleep(1000);
		}
	}
	close(sv[0]);
	http_server_free(srv);
	event_base_free(base);
	parse(raw, n);
}

/* gunzip in process: the test starts no gzip(1). */
static size_t
gunzip(const unsigned char *in, size_t n, unsigned char *out, size_t cap)
{
	z_stream	 z;

	memset(&z, 0, sizeof(z));
	/* 16 + MAX_WBITS: a gzip wrapper, not a zlib one. */
	assert_int_equal(inflateInit2(&z, 16 + MAX_WBITS), Z_OK);
	z.next_in = (unsigned char *)in;
	z.avail_in = (uInt)n;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
	assert_int_equal(z.avail_in, 0);
	assert_int_equal(inflateEnd(&z), Z_OK);
	return cap - z.avail_out;
}

static void
test_index(void **state)
{
	const struct web_asset	*a = web_asset_find("/");
	const char		*csp;

	(void)state;
	assert_non_null(a);
	assert_ptr_equal(a, web_asset_find("/index.html"));
	ask("GET", "/", "");
	assert_int_equal(ans.status, 200);
	assert_string_equal(hdr("Content-Type"), "text/html; charset=utf-8");
	assert_string_equal(hdr("ETag"), a->etag);
	assert_int_equal(ans.len, a->len);
	assert_memory_equal(ans.body, a->data, a->len);
	assert_null(hdr("Content-Encoding"));
	assert_string_equal(hdr("X-Content-Type-Options"), "nosniff");
	assert_string_equal(hdr("Vary"), "Accept-Encoding");
	assert_string_equal(hdr("Cache-Control"), "no-cache");
	assert_string_equal(hdr("X-Frame-Options"), "DENY");
	csp = hdr("Content-Security-Policy");
	assert_non_null(csp);
	assert_string_equal(csp, "default-src 'none'; script-src 'self'; "
	    "style-src 'self'; img-src 'self'; connect-src 'self'; "
	    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
}

static void
test_types_and_unknown(void **state)
{
	(void)state;
	ask("GET", "/app.js", "");
	assert_int_equal(ans.status, 200);
	assert_string_equal(hdr("Content-Type"),
	    "text/javascript; charset=utf-8");
	ask("GET", "/app.css", "");
	assert_string_equal(hdr("Content-Type"), "text/css; charset=utf-8");
	ask("GET", "/favicon.svg", "");
	assert_string_equal(hdr("Content-Type"), "image/svg+xml");
	ask("GET", "/nope.js", "");
	assert_int_equal(ans.status, 404);
	ask("GET", "/../index.html", "");
	assert_int_equal(ans.status, 404);
	ask("POST", "/", "Content-Length: 0\r\n");
	assert_int_equal(ans.status, 405);
	assert_string_equal(hdr("Allow"), "GET, HEAD");
	ask("HEAD", "/app.js", "");
	assert_int_equal(ans.status, 200);
	assert_int_equal(ans.len, 0);
	assert_int_equal(atoi(hdr("Content-Length")),
	    (int)web_asset_find("/app.js")->len);
}

/* The validator: 304 without a body for a matching tag, else 200. */
static void
test_etag_304(void **state)
{
	const struct web_asset	*a = web_asset_find("/app.js");
	char			 h[256];

	(void)state;
	snprintf(h, sizeof(h), "If-None-Match: %s\r\n", a->etag);
	ask("GET", "/app.js", h);
	assert_int_equal(ans.status, 304);
	assert_int_equal(ans.len, 0);
	assert_string_equal(hdr("ETag"), a->etag);
	assert_null(hdr("Content-Length"));
	snprintf(h, sizeof(h), "If-None-Match: \"x\", W/%s\r\n", a->etag);
	ask("GET", "/app.js", h);
	assert_int_equal(ans.status, 304);
	ask("GET", "/app.js", "If-None-Match: \"x\", \"y\"\r\n");
	assert_int_equal(ans.status, 200);
	/* Another file's tag does not validate this one. */
	snprintf(h, sizeof(h), "If-None-Match: %s\r\n",
	    web_asset_find("/")->etag);
	ask("GET", "/app.js", h);
	assert_int_equal(ans.status, 200);
	/* The identity tag does not validate the gzip representation. */
	snprintf(h, sizeof(h), "Accept-Encoding: gzip\r\nIf-None-Match: %s\r\n",
	    a->etag);
	ask("GET", "/app.js", h);
	assert_int_equal(ans.status, 200);
	snprintf(h, sizeof(h), "Accept-Encoding: gzip\r\nIf-None-Match: %s\r\n",
	    hdr("ETag"));
	ask("GET", "/app.js", h);
	assert_int_equal(ans.status, 304);
}

static void
test_gzip(void **state)
{
	const struct web_asset	*a = web_asset_find("/app.js");
	static unsigned char	 plain[256 * 1024];
	size_t			 n;

	(void)state;
	ask("GET", "/app.js", "Accept-Encoding: br, gzip, deflate\r\n");
	assert_int_equal(ans.status, 200);
	assert_string_equal(hdr("Content-Encoding"), "gzip");
	assert_string_not_equal(hdr("ETag"), a->etag);
	assert_true(ans.len < a->len);
	n = gunzip(ans.body, ans.len, plain, sizeof(plain));
	assert_int_equal(n, a->len);
	assert_memory_equal(plain, a->data, a->len);
	ask("GET", "/app.js", "Accept-Encoding: gzip;q=0, identity\r\n");
	assert_null(hdr("Content-Encoding"));
	assert_int_equal(ans.len, a->len);
}

static void
test_accept_encoding(void **state)
{
	(void)state;
	assert_true(web_accepts_gzip("gzip"));
	assert_true(web_accepts_gzip("GZip ; q=0.5"));
	assert_true(web_accepts_gzip("deflate, x-gzip"));
	assert_true(web_accepts_gzip("*"));
	assert_true(web_accepts_gzip("br;q=1.0, *;q=0.1"));
	assert_false(web_accepts_gzip(NULL));
	assert_false(web_accepts_gzip(""));
	assert_false(web_accepts_gzip("identity"));
	assert_false(web_accepts_gzip("gzip;q=0"));
	assert_false(web_accepts_gzip("gzip; q=0.000"));
	assert_false(web_accepts_gzip("*, gzip;q=0"));
	assert_false(web_accepts_gzip("*;q=0"));
	assert_false(web_accepts_gzip("gzipx"));
}

static void
test_etag_match(void **state)
{
	(void)state;
	assert_true(web_etag_match("\"abc\"", "\"abc\""));
	assert_true(web_etag_match("W/\"abc\"", "\"abc\""));
	assert_true(web_etag_match("*", "\"abc\""));
	assert_true(web_etag_match("\"a,b\", \"abc\"", "\"abc\""));
	assert_false(web_etag_match(NULL, "\"abc\""));
	assert_false(web_etag_match("\"abcd\"", "\"abc\""));
	assert_false(web_etag_match("abc", "\"abc\""));
	assert_false(web_etag_match("\"abc", "\"abc\""));
	assert_false(web_etag_match("\"x\" junk, \"abc\"", "\"abc\""));
}

/* Under 150 KB in all, and the page loads nothing it does not embed. */
static void
test_page_weight(void **state)
{
	const struct web_asset	*a;
	size_t			 total = 0;

	(void)state;
	for (a = web_assets; a->path != NULL; a++) {
		total += a->len;
		assert_true(a->gzlen > 18);
		assert_int_equal(a->gz[0], 0x1f);
		assert_int_equal(a->gz[1], 0x8b);
	}
	assert_true(total < 150 * 1024);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_index),
		cmocka_unit_test(test_types_and_unknown),
		cmocka_unit_test(test_etag_304),
		cmocka_unit_test(test_gzip),
		cmocka_unit_test(test_accept_encoding),
		cmocka_unit_test(test_etag_match),
		cmocka_unit_test(test_page_weight),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
