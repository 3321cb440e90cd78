/*
 * Tests for daemon/http_client.c: a libevent loop drives libcurl against
 * real receivers on 127.0.0.1 (test/support/notify_sink.py: an HTTP sink
 * and aiosmtpd, plain and with STARTTLS).  Run by test_cmocka_suites.py.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include "http_client.h"
#include "notify_test_sink.h"

struct result {
	int	 done;
	int	 freed;
	int	 ok;
	long	 status;
	int	 retry_after_s;
	char	 error[512];
};

static void
result_cb(const struct http_response *resp, void *arg)
{
	struct result	*r = arg;

	r->done++;
	r->ok = resp->ok;
	r->status = resp->status;
	r->retry_after_s = resp->retry_after_s;
	snprintf(r->error, sizeof(r->error), "%s",
	    resp->error != NULL ? resp->error : "");
}

static void
result_free_cb(void *arg)
{
	struct result	*r = arg;

	r->freed++;
}

struct fixture {
	struct event_base	*base;
	struct http_client	*client;
};

static int
setup(void **state)
{
	struct fixture	*f = calloc(1, sizeof(*f));
	char		 err[256];

	if (f == NULL || (f->base = event_base_new()) == NULL)
		return -1;
	if ((f->client = http_client_create(f->base, err, sizeof(err))) == NULL)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*f = *state;

	http_client_free(f->client);
	event_base_free(f->base);
	free(f);
	return 0;
}

static int
submit_post(struct fixture *f, const char *url, const char *body,
    struct result *r)
{
	const char		*hdrs[] = { "Content-Type: application/json",
				    "X-Test: yes" };
	struct http_request	 req;
	char			 err[256];

	memset(&req, 0, sizeof(req));
	req.url = url;
	req.headers = hdrs;
	req.nheaders = 2;
	req.body = body;
	req.body_len = strlen(body);
	req.timeout_s = 5;
	return http_client_submit(f->client, &req, result_cb, result_free_cb,
	    r, err, sizeof(err));
}

static void
test_post_ok(void **state)
{
	struct fixture		*f = *state;
	struct test_sink	 s;
	struct result		 r = { 0 };
	char			 url[128];
	cJSON			*recs, *rec, *h;

	assert_int_equal(test_sink_start(&s, "http", NULL), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook", s.port);
	assert_int_equal(submit_post(f, url, "{\"a\":1}", &r), 0);
	assert_int_equal(r.done, 0);	/* never from inside submit */
	assert_int_equal(http_client_pending(f->client), 1);
	assert_int_equal(test_loop_until(f->base, &r.done, 10000), 0);
	assert_int_equal(r.done, 1);
	assert_int_equal(r.freed, 1);
	assert_true(r.ok);
	assert_int_equal(r.status, 200);
	assert_int_equal(http_client_pending(f->client), 0);
	recs = test_sink_records(&s);
	assert_int_equal(cJSON_GetArraySize(recs), 1);
	rec = cJSON_GetArrayItem(recs, 0);
	assert_string_equal(test_json_str(rec, "method"), "POST");
	assert_string_equal(test_json_str(rec, "path"), "/hook");
	assert_string_equal(test_json_str(rec, "body"), "{\"a\":1}");
	h = cJSON_GetObjectItem(rec, "headers");
	assert_string_equal(test_json_str(h, "x-test"), "yes");
	assert_string_equal(test_json_str(h, "content-type"),
	    "application/json");
	assert_non_null(strstr(test_json_str(h, "user-agent"), "gitopsd/"));
	cJSON_Delete(recs);
	test_sink_stop(&s);
}

static void
test_status_and_retry_after(void **state)
{
	struct fixture		*f = *state;
	struct test_sink	 s;
	struct result		 r1 = { 0 }, r2 = { 0 }, r3 = { 0 };
	const char		*extra[] = { "--script", "429:7,500", NULL };
	char			 url[128];

	assert_int_equal(test_sink_start(&s, "http", extra), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook", s.port);
	assert_int_equal(submit_post(f, url, "{}", &r1), 0);
	assert_int_equal(test_loop_until(f->base, &r1.done, 10000), 0);
	assert_false(r1.ok);
	assert_int_equal(r1.status, 429);
	assert_int_equal(r1.retry_after_s, 7);
	assert_string_equal(r1.error, "HTTP 429: error 429");

	assert_int_equal(submit_post(f, url, "{}", &r2), 0);
	assert_int_equal(test_loop_until(f->base, &r2.done, 10000), 0);
	assert_false(r2.ok);
	assert_int_equal(r2.status, 500);
	assert_int_equal(r2.retry_after_s, 0);

	assert_int_equal(submit_post(f, url, "{}", &r3), 0);
	assert_int_equal(test_loop_until(f->base, &r3.done, 10000), 0);
	assert_true(r3.ok);
	assert_int_equal(r3.status, 200);
	test_sink_stop(&s);
}

/* A port nobody listens on: connection refused, reported, not fatal. */
static void
test_refused(void **state)
{
	struct fixture		*f = *state;
	struct result		 r = { 0 };
	struct sockaddr_in	 sa;
	socklen_t		 sl = sizeof(sa);
	char			 url[128];
	int			 fd;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	close(fd);	/* the port is now closed */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", ntohs(sa.sin_port));
	assert_int_equal(submit_post(f, url, "{}", &r), 0);
	assert_int_equal(test_loop_until(f->base, &r.done, 10000), 0);
	assert_false(r.ok);
	assert_int_equal(r.status, 0);
	assert_true(strlen(r.error) > 0);
	assert_int_equal(r.freed, 1);
}

/* A peer that accepts the connection and never answers: the timeout
 * ends the transfer, and meanwhile the loop keeps running other work. */
static void
test_timeout_does_not_block(void **state)
{
	struct fixture		*f = *state;
	struct result		 slow = { 0 }, fast = { 0 };
	struct test_sink	 s;
	struct http_request	 req;
	struct sockaddr_in	 sa;
	socklen_t		 sl = sizeof(sa);
	char			 url[128], url2[128], err[256];
	int			 fd;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 8), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", ntohs(sa.sin_port));
	memset(&req, 0, sizeof(req));
	req.url = url;
	req.body = "{}";
	req.body_len = 2;
	req.timeout_s = 1;
	assert_int_equal(http_client_submit(f->client, &req, result_cb,
	    result_free_cb, &slow, err, sizeof(err)), 0);

	assert_int_equal(test_sink_start(&s, "http", NULL), 0);
	snprintf(url2, sizeof(url2), "http://127.0.0.1:%d/hook", s.port);
	assert_int_equal(submit_post(f, url2, "{}", &fast), 0);
	assert_int_equal(test_loop_until(f->base, &fast.done, 10000), 0);
	assert_true(fast.ok);
	assert_int_equal(slow.done, 0);	/* still waiting, not blocking */
	assert_int_equal(test_loop_until(f->base, &slow.done, 5000), 0);
	assert_false(slow.ok);
	assert_non_null(strstr(slow.error, "imed out"));
	close(fd);
	test_sink_stop(&s);
}

static void
test_many_concurrent(void **state)
{
	struct fixture		*f = *state;
	struct test_sink	 s;
	struct result		 r[25];
	char			 url[128], body[32];
	int			 i, all = 0;
	cJSON			*recs;

	memset(r, 0, sizeof(r));
	assert_int_equal(test_sink_start(&s, "http", NULL), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook", s.port);
	for (i = 0; i < 25; i++) {
		snprintf(body, sizeof(body), "{\"n\":%d}", i);
		assert_int_equal(submit_post(f, url, body, &r[i]), 0);
	}
	assert_int_equal(http_client_pending(f->client), 25);
	while (!all) {
		int	 flag = 0;

		(void)test_loop_until(f->base, &flag, 50);
		for (all = 1, i = 0; i < 25; i++)
			if (!r[i].done)
				all = 0;
		if (http_client_pending(f->client) == 0)
			break;
	}
	for (i = 0; i < 25; i++) {
		assert_int_equal(r[i].done, 1);
		assert_true(r[i].ok);
	}
	recs = test_sink_records(&s);
	assert_int_equal(cJSON_GetArraySize(recs), 25);
	cJSON_Delete(recs);
	test_sink_stop(&s);
}

static void
test_free_pending_calls_free_cb_only(void **state)
{
	struct event_base	*base = event_base_new();
	struct http_client	*c;
	struct http_request	 req;
	struct result		 r = { 0 };
	char			 err[256];

	(void)state;
	c = http_client_create(base, err, sizeof(err));
	assert_non_null(c);
	memset(&req, 0, sizeof(req));
	req.url = "http://127.0.0.1:9/never";
	req.body = "{}";
	req.body_len = 2;
	assert_int_equal(http_client_submit(c, &req, result_cb, result_free_cb,
	    &r, err, sizeof(err)), 0);
	http_client_free(c);
	assert_int_equal(r.done, 0);
	assert_int_equal(r.freed, 1);
	event_base_free(base);
}

static void
test_bad_scheme(void **state)
{
	struct fixture		*f = *state;
	struct http_request	 req;
	struct result		 r = { 0 };
	char			 err[256];

	memset(&req, 0, sizeof(req));
	req.url = "file:///etc/passwd";
	assert_int_equal(http_client_submit(f->client, &req, result_cb,
	    result_free_cb, &r, err, sizeof(err)), -1);
	assert_int_equal(r.freed, 0);
	assert_int_equal(r.done, 0);
}

static const char mail[] =
    "From: gitopsd@example.test\r\n"
    "To: a@example.test, b@example.test\r\n"
    "Subject: test\r\n"
    "Date: Thu, 26 Nov 2026 06:00:00 +0000\r\n"
    "Message-ID: <1@example.test>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=UTF-8\r\n"
    "Content-Transfer-Encoding: 7bit\r\n"
    "\r\n"
    "line one\r\n"
    ".leading dot\r\n";

static int
submit_mail(struct fixture *f, const char *url, int require_tls,
    const char *ca, const char *user, const char *pass, struct result *r)
{
	const char		*rcpt[] = { "a@example.test", "b@example.test" };
	struct http_request	 req;
	char			 err[256];

	memset(&req, 0, sizeof(req));
	req.url = url;
	req.body = mail;
	req.body_len = strlen(mail);
	req.mail_from = "gitopsd@example.test";
	req.rcpt = rcpt;
	req.nrcpt = 2;
	req.require_tls = require_tls;
	req.ca_file = ca;
	req.username = user;
	req.password = pass;
	req.timeout_s = 10;
	return http_client_submit(f->client, &req, result_cb, result_free_cb,
	    r, err, sizeof(err));
}

static void
test_smtp_plain(void **state)
{
	struct fixture		*f = *state;
	struct test_sink	 s;
	struct result		 r = { 0 };
	char			 url[128];
	cJSON			*recs, *rec, *rc;

	assert_int_equal(test_sink_start(&s, "smtp", NULL), 0);
	snprintf(url, sizeof(url), "smtp://127.0.0.1:%d", s.port);
	assert_int_equal(submit_mail(f, url, 0, NULL, NULL, NULL, &r), 0);
	assert_int_equal(test_loop_until(f->base, &r.done, 15000), 0);
	assert_true(r.ok);
	assert_int_equal(r.status, 250);
	recs = test_sink_records(&s);
	assert_int_equal(cJSON_GetArraySize(recs), 1);
	rec = cJSON_GetArrayItem(recs, 0);
	assert_string_equal(test_json_str(rec, "mail_from"),
	    "gitopsd@example.test");
	rc = cJSON_GetObjectItem(rec, "rcpt_tos");
	assert_int_equal(cJSON_GetArraySize(rc), 2);
	assert_string_equal(cJSON_GetArrayItem(rc, 1)->valuestring,
	    "b@example.test");
	/* curl dot-stuffed the line; the server un-stuffed it. */
	assert_non_null(strstr(test_json_str(rec, "body"), "\n.leading dot"));
	assert_true(test_json_true(rec, "crlf_ok"));
	assert_false(test_json_true(rec, "tls"));
	cJSON_Delete(recs);
	test_sink_stop(&s);
}

/* STARTTLS required by the client and by the server, with login. */
static void
test_smtp_starttls(void **state)
{
	struct fixture		*f = *state;
	struct test_sink	 s;
	struct result		 r = { 0 }, bad = { 0 };
	char			 dir[64], cert[128], key[128], url[128], cmd[128];
	const char		*extra[] = { "--cert", cert, "--key", key,
				    "--require-starttls", "--login",
				    "alerts:s3cret", NULL };
	cJSON			*recs, *rec;

	assert_int_equal(test_sink_mkdir(dir, sizeof(dir)), 0);
	assert_int_equal(test_make_cert(dir, cert, key, sizeof(cert)), 0);
	assert_int_equal(test_sink_start(&s, "smtp", extra), 0);
	snprintf(url, sizeof(url), "smtp://127.0.0.1:%d", s.port);
	assert_int_equal(submit_mail(f, url, 1, cert, "alerts", "s3cret", &r),
	    0);
	assert_int_equal(test_loop_until(f->base, &r.done, 15000), 0);
	if (!r.ok)
		fprintf(stderr, "error: %s\n", r.error);
	assert_true(r.ok);
	recs = test_sink_records(&s);
	assert_int_equal(cJSON_GetArraySize(recs), 1);
	rec = cJSON_GetArrayItem(recs, 0);
	assert_true(test_json_true(rec, "tls"));
	assert_true(test_json_true(rec, "auth"));
	cJSON_Delete(recs);

	/* Without the CA the certificate does not verify: refused (a new
	 * client, so no verified connection is reused from its cache). */
	http_client_free(f->client);
	f->client = http_client_create(f->base, cmd, sizeof(cmd));
	assert_non_null(f->client);
	assert_int_equal(submit_mail(f, url, 1, NULL, "alerts", "s3cret", &bad),
	    0);
	assert_int_equal(test_loop_until(f->base, &bad.done, 15000), 0);
	assert_false(bad.ok);
	assert_non_null(strstr(bad.error, "certificate"));
	test_sink_stop(&s);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* smtps://: TLS from the first byte, verified against ca_file. */
static void
test_smtps_implicit_tls(void **state)
{
	struct fixture		*f = *state;
	struct test_sink	 s;
	struct result		 r = { 0 };
	char			 dir[64], cert[128], key[128], url[128], cmd[128];
	const char		*extra[] = { "--cert", cert, "--key", key,
				    "--implicit-tls", NULL };
	cJSON			*recs;

	assert_int_equal(test_sink_mkdir(dir, sizeof(dir)), 0);
	assert_int_equal(test_make_cert(dir, cert, key, sizeof(cert)), 0);
	assert_int_equal(test_sink_start(&s, "smtp", extra), 0);
	snprintf(url, sizeof(url), "smtps://127.0.0.1:%d", s.port);
	assert_int_equal(submit_mail(f, url, 0, cert, NULL, NULL, &r), 0);
	assert_int_equal(test_loop_until(f->base, &r.done, 15000), 0);
	if (!r.ok)
		fprintf(stderr, "error: %s\n", r.error);
	assert_true(r.ok);
	recs = test_sink_records(&s);
	assert_int_equal(cJSON_GetArraySize(recs), 1);
	assert_true(test_json_true(cJSON_GetArrayItem(recs, 0), "tls"));
	cJSON_Delete(recs);
	test_sink_stop(&s);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* require_tls against a server without STARTTLS: nothing is sent. */
static void
test_smtp_require_tls_refuses_plain(void **state)
{
	struct fixture		*f = *state;
	struct test_sink	 s;
	struct result		 r = { 0 };
	char			 url[128];
	cJSON			*recs;

	assert_int_equal(test_sink_start(&s, "smtp", NULL), 0);
	snprintf(url, sizeof(url), "smtp://127.0.0.1:%d", s.port);
	assert_int_equal(submit_mail(f, url, 1, NULL, NULL, NULL, &r), 0);
	assert_int_equal(test_loop_until(f->base, &r.done, 15000), 0);
	assert_false(r.ok);
	assert_true(strlen(r.error) > 0);
	recs = test_sink_records(&s);
	assert_int_equal(cJSON_GetArraySize(recs), 0);
	cJSON_Delete(recs);
	test_sink_stop(&s);
}

static void
test_parse_retry_after(void **state)
{
	(void)state;
	assert_int_equal(http_client_parse_retry_after("120", 0), 120);
	assert_int_equal(http_client_parse_retry_after("0", 0), 0);
	assert_int_equal(http_client_parse_retry_after("12x", 0), -1);
	assert_int_equal(http_client_parse_retry_after("999999999", 0), 86400);
	/* 1994-11-06 08:49:37 UTC is 784111777. */
	assert_int_equal(http_client_parse_retry_after(
	    "Sun, 06 Nov 1994 08:49:37 GMT", 784111777 - 30), 30);
	assert_int_equal(http_client_parse_retry_after(
	    "Sun, 06 Nov 1994 08:49:37 GMT", 784111777 + 30), 0);
	assert_int_equal(http_client_parse_retry_after("soon", 0), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_retry_after),
		cmocka_unit_test_setup_teardown(test_post_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_and_retry_after,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout_does_not_block,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_concurrent, setup,
		    teardown),
		cmocka_unit_test(test_free_pending_calls_free_cb_only),
		cmocka_unit_test_setup_teardown(test_bad_scheme, setup, teardown),
		cmocka_unit_test_setup_teardown(test_smtp_plain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_smtp_starttls, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_smtp_require_tls_refuses_plain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_smtps_implicit_tls, setup,
		    teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
