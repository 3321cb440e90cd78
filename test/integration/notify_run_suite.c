/*
 * The notify job runner (notify/runner.c) delivering to real receivers on
 * 127.0.0.1 (test/support/notify_sink.py: an HTTP sink that checks Slack's
 * Block Kit shape and webhook signatures, and aiosmtpd parsing the mail
 * with Python's email package).  Run by test_cmocka_suites.py.
 */
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"
#include "job.h"
#include "notifier.h"
#include "notify.h"
#include "notify_runner.h"
#include "util.h"

#include "notify_fixture.h"
#include "notify_test_sink.h"

/* ---- the runner against real receivers ---------------------------------- */

struct run_result {
	int			 done;
	int			 ok;
	int			 permanent;
	int			 retry_after_s;
	enum job_error_kind	 err_kind;
	char			 error[512];
};

static void
run_done_cb(struct job *j, struct job_result *res, void *arg)
{
	struct run_result	*r = arg;

	(void)j;
	r->done++;
	r->ok = res->ok;
	r->permanent = res->permanent;
	r->retry_after_s = res->retry_after_s;
	r->err_kind = res->err_kind;
	snprintf(r->error, sizeof(r->error), "%s",
	    res->error != NULL ? res->error : "");
}

/* Plan the alerts of a dead sync of web and run the one for notifier. */
static void
run_alert(struct tcfg *t, struct event_base *base, const char *notifier,
    struct run_result *r)
{
	const struct job_runner	*runner = job_runner_find(JOB_NOTIFY);
	struct job		 j, nj;
	struct job_result	 res;
	struct notify_plan	 p;
	const struct notify_plan_item *it;

	assert_non_null(runner);
	assert_non_null(runner->start);
	job_init(&j, 42, JOB_SYNC, "web", 4);
	res_fail(&res, JOB_ERR_UNHEALTHY, "Deployment web/web: 0/3 ready "
	    "<timeout> & rollback", "Deployment web/web");
	notify_plan(&t->cfg, &j, &res, JOB_DEAD, 0, NULL, &p);
	it = plan_find(&p, notifier);
	assert_non_null(it);
	memset(&nj, 0, sizeof(nj));
	nj.id = 100;
	nj.kind = JOB_NOTIFY;
	nj.app = (char *)"web";
	nj.params = (char *)it->spec.params;
	memset(r, 0, sizeof(*r));
	runner->start(&t->cfg, base, &nj, run_done_cb, r);
	notify_plan_free(&p);	/* the runner keeps nothing of the params */
	assert_int_equal(r->done, 0);
	assert_int_equal(test_loop_until(base, &r->done, 20000), 0);
	assert_int_equal(r->done, 1);
}

static void
test_run_slack_and_webhook(void **state)
{
	struct tcfg		 t;
	struct event_base	*base = event_base_new();
	struct test_sink	 s;
	struct run_result	 r;
	const char		*extra[] = { "--secret", "topsecret", NULL };
	char			 slack_url[128], hook_url[128];
	struct tparams		 p = tparams_default;
	cJSON			*recs, *rec;

	(void)state;
	assert_int_equal(test_sink_start(&s, "http", extra), 0);
	snprintf(slack_url, sizeof(slack_url),
	    "http://127.0.0.1:%d/slack/T000/B000", s.port);
	snprintf(hook_url, sizeof(hook_url), "http://127.0.0.1:%d/audit",
	    s.port);
	p.slack_url = slack_url;
	p.hook_url = hook_url;
	tcfg_load(&t, &p);

	run_alert(&t, base, "ops-slack", &r);
	assert_true(r.ok);
	run_alert(&t, base, "audit", &r);
	assert_true(r.ok);

	recs = test_sink_records(&s);
	assert_int_equal(cJSON_GetArraySize(recs), 2);
	rec = cJSON_GetArrayItem(recs, 0);
	assert_string_equal(test_json_str(rec, "path"), "/slack/T000/B000");
	if (!test_json_true(rec, "slack_ok"))
		fprintf(stderr, "slack: %s\n", test_json_str(rec, "slack_error"));
	assert_true(test_json_true(rec, "slack_ok"));
	rec = cJSON_GetArrayItem(recs, 1);
	assert_string_equal(test_json_str(rec, "path"), "/audit");
	assert_true(test_json_true(rec, "json_ok"));
	assert_true(test_json_true(rec, "signature_ok"));
	assert_string_equal(test_json_str(cJSON_GetObjectItem(rec, "headers"),
	    "x-env"), "prod");
	assert_int_equal(strlen(test_json_str(cJSON_GetObjectItem(rec,
	    "headers"), "x-gitopsd-delivery")), 32);
	cJSON_Delete(recs);
	test_sink_stop(&s);
	notify_runner_shutdown();
	event_base_free(base);
}

/* 429 with Retry-After, 500, 404, and a receiver that is down. */
static void
test_run_failures(void **state)
{
	struct tcfg		 t;
	struct event_base	*base = event_base_new();
	struct test_sink	 s;
	struct run_result	 r;
	const char		*extra[] = { "--script", "429:30,500,404", NULL };
	char			 url[128], *name;
	struct tparams		 p = tparams_default;

	(void)state;
	assert_int_equal(test_sink_start(&s, "http", extra), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/slack/x", s.port);
	p.slack_url = url;
	tcfg_load(&t, &p);

	run_alert(&t, base, "ops-slack", &r);
	assert_false(r.ok);
	assert_false(r.permanent);
	assert_int_equal(r.err_kind, JOB_ERR_NOTIFY);
	assert_int_equal(r.retry_after_s, 30);
	assert_non_null(strstr(r.error, "ops-slack: HTTP 429"));

	run_alert(&t, base, "ops-slack", &r);
	assert_false(r.ok);
	assert_false(r.permanent);
	assert_int_equal(r.retry_after_s, 0);

	run_alert(&t, base, "ops-slack", &r);
	assert_false(r.ok);
	assert_true(r.permanent);	/* 404: a retry cannot fix it */

	run_alert(&t, base, "ops-slack", &r);
	assert_true(r.ok);
	test_sink_stop(&s);

	/* Down: refused, retried later. */
	run_alert(&t, base, "ops-slack", &r);
	assert_false(r.ok);
	assert_false(r.permanent);

	/* A notifier removed from the config: permanent, reported later. */
	name = t.n[0].name;
	t.n[0].name = "renamed";
	run_alert(&t, base, "oncall-mail", &r);	/* still fine to plan */
	assert_false(r.ok);			/* smtp port 1: refused */
	t.n[0].name = name;
	notify_runner_shutdown();
	event_base_free(base);
}

static void
test_run_notifier_gone(void **state)
{
	struct tcfg		 t;
	struct event_base	*base = event_base_new();
	struct run_result	 r;
	struct job		 nj;

	(void)state;
	tcfg_init(&t);
	memset(&nj, 0, sizeof(nj));
	nj.id = 7;
	nj.kind = JOB_NOTIFY;
	nj.params = (char *)"{\"notifier\":\"nobody\",\"event\":\"job.failed\"}";
	memset(&r, 0, sizeof(r));
	job_runner_find(JOB_NOTIFY)->start(&t.cfg, base, &nj, run_done_cb, &r);
	assert_int_equal(r.done, 0);	/* never inside start */
	assert_int_equal(test_loop_until(base, &r.done, 5000), 0);
	assert_false(r.ok);
	assert_true(r.permanent);
	assert_non_null(strstr(r.error, "nobody"));
	notify_runner_shutdown();
	event_base_free(base);
}

static void
test_run_email_starttls(void **state)
{
	struct tcfg		 t;
	struct event_base	*base = event_base_new();
	struct test_sink	 s;
	struct run_result	 r;
	char			 dir[64], cert[128], key[128], url[128], cmd[128];
	char			*extra_keys;
	const char		*extra[] = { "--cert", cert, "--key", key,
				    "--require-starttls", "--login",
				    "alerts:pw", NULL };
	cJSON			*recs, *rec, *to;
	struct tparams		 p = tparams_default;
	const char		*title = "Échec: {{app}} {{kind}} "
				    "({{attempts}} essais) — {{reason}}";

	(void)state;
	assert_int_equal(test_sink_mkdir(dir, sizeof(dir)), 0);
	assert_int_equal(test_make_cert(dir, cert, key, sizeof(cert)), 0);
	assert_int_equal(test_sink_start(&s, "smtp", extra), 0);
	snprintf(url, sizeof(url), "smtp://127.0.0.1:%d", s.port);
	p.smtp_url = url;
	p.smtp_extra = extra_keys = xasprintf(", require_tls: true, ca_file: %s,"
	    " username: alerts, password_env: TEST_NOTIFY_MAIL_PW", cert);
	setenv("TEST_NOTIFY_MAIL_PW", "pw", 1);
	tcfg_load(&t, &p);
	tset(&t.n[1].title, title);

	run_alert(&t, base, "oncall-mail", &r);
	if (!r.ok)
		fprintf(stderr, "mail: %s\n", r.error);
	assert_true(r.ok);
	recs = test_sink_records(&s);
	assert_int_equal(cJSON_GetArraySize(recs), 1);
	rec = cJSON_GetArrayItem(recs, 0);
	assert_true(test_json_true(rec, "tls"));
	assert_true(test_json_true(rec, "auth"));
	assert_true(test_json_true(rec, "crlf_ok"));
	assert_true(test_json_true(rec, "date_ok"));
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(rec,
	    "defects")), 0);
	assert_string_equal(test_json_str(rec, "mail_from"),
	    "gitopsd@example.test");
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(rec,
	    "rcpt_tos")), 2);
	to = cJSON_GetObjectItem(rec, "to");
	assert_int_equal(cJSON_GetArraySize(to), 2);
	assert_string_equal(cJSON_GetArrayItem(to, 1)->valuestring,
	    "dev@example.test");
	/* The encoded-words decode back to the UTF-8 subject. */
	assert_string_equal(test_json_str(rec, "subject"),
	    "Échec: web sync (5 essais) — Deployment web/web: 0/3 ready "
	    "<timeout> & rollback");
	assert_string_equal(test_json_str(rec, "mime_version"), "1.0");
	assert_string_equal(test_json_str(rec, "content_type"), "text/plain");
	assert_string_equal(test_json_str(rec, "charset"), "utf-8");
	assert_non_null(strstr(test_json_str(rec, "message_id"),
	    "@example.test>"));
	assert_non_null(strstr(test_json_str(rec, "body"),
	    "Revision:  0123456789abcdef0123456789abcdef01234567\r\n"));
	assert_non_null(strstr(test_json_str(rec, "body"),
	    "Link:      https://gitopsd.test/api/v1/jobs/42\r\n"));
	assert_true(cJSON_GetObjectItem(rec, "max_line")->valueint <= 998);
	cJSON_Delete(recs);

	/* A wrong password: 535, permanent. */
	setenv("TEST_NOTIFY_MAIL_PW", "wrong", 1);
	tcfg_load(&t, &p);
	tset(&t.n[1].title, title);
	run_alert(&t, base, "oncall-mail", &r);
	assert_false(r.ok);
	assert_true(r.permanent);
	test_sink_stop(&s);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	free(extra_keys);
	notify_runner_shutdown();
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_run_notifier_gone, tcfg_teardown),
		cmocka_unit_test_teardown(test_run_slack_and_webhook, tcfg_teardown),
		cmocka_unit_test_teardown(test_run_failures, tcfg_teardown),
		cmocka_unit_test_teardown(test_run_email_starttls, tcfg_teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
