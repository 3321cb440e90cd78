/*
 * Tests for alert planning (notify/dispatch.c), the renderers (slack.c,
 * email.c, webhook.c), their config checks, and the notify job runner
 * delivering to real receivers on 127.0.0.1 (test/support/notify_sink.py:
 * an HTTP sink that checks Slack's Block Kit shape and webhook signatures,
 * and aiosmtpd parsing the mail with Python's email package).
 */
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"
#include "job.h"
#include "notifier.h"
#include "notify.h"
#include "notify_runner.h"
#include "util.h"

#include "notify_test_config.h"
#include "notify_test_sink.h"

/* ---- a configuration: apps by hand, notifiers loaded --------------------- */

/*
 * A sink's own keys belong to its plug-in (options private to its file), so
 * the notifiers come from YAML through config_load_buffer, as in the daemon.
 * Secrets travel in the environment (url_env, secret_env, password_env).
 */
struct tparams {
	const char	*slack_url;
	const char	*hook_url;
	const char	*hook_header;		/* "Name: value" */
	const char	*smtp_url;
	const char	*smtp_extra;		/* more email keys, flow style */
	const char	*to1;			/* the second recipient */
};

static const struct tparams tparams_default = {
	.slack_url = "http://127.0.0.1:1/slack/T000/B000",
	.hook_url = "http://127.0.0.1:1/audit",
	.hook_header = "X-Env: prod",
	.smtp_url = "smtp://127.0.0.1:1",
	.smtp_extra = "",
	.to1 = "Second <dev@example.test>",
};

struct tcfg {
	struct config		 cfg;
	struct config_app	 apps[2];
	struct config_notifier	*n;
	char			*web_notify[3];
	char			*defaults[1];
};

/* The last loaded notifiers, freed by the teardown. */
static struct config *tcfg_loaded;

static int
tcfg_teardown(void **state)
{
	(void)state;
	config_unref(tcfg_loaded);
	tcfg_loaded = NULL;
	return 0;
}

static void
tcfg_load(struct tcfg *t, const struct tparams *p)
{
	struct config_errors	 e;
	char			*yaml;
	size_t			 i;

	memset(t, 0, sizeof(*t));
	t->cfg.notify.max_attempts = 10;
	t->cfg.notify.repeat_after_s = 3600;
	t->cfg.notify.timeout_s = 5;
	t->cfg.links_base_url = "https://gitopsd.test/";
	setenv("TEST_NOTIFY_SLACK_URL", p->slack_url, 1);
	setenv("TEST_NOTIFY_HOOK_SECRET", "topsecret", 1);
	yaml = xasprintf("notifiers:\n"
	    "  - {name: ops-slack, type: slack, url_env: TEST_NOTIFY_SLACK_URL,"
	    " on: [failure]}\n"
	    "  - {name: oncall-mail, type: email, smtp_url: \"%s\","
	    " from: \"gitopsd <gitopsd@example.test>\","
	    " to: [oncall@example.test, \"%s\"], on: [failure, recovery]%s}\n"
	    "  - {name: audit, type: webhook, url: \"%s\","
	    " secret_env: TEST_NOTIFY_HOOK_SECRET, headers: {%s}, on: [all]}\n"
	    "  - {name: fallback, type: webhook,"
	    " url: \"http://127.0.0.1:1/fallback\", on: [failure]}\n",
	    p->smtp_url, p->to1, p->smtp_extra, p->hook_url, p->hook_header);
	memset(&e, 0, sizeof(e));
	config_unref(tcfg_loaded);
	tcfg_loaded = config_load_buffer("test.yaml", yaml, strlen(yaml), &e);
	for (i = 0; i < e.n; i++)
		fprintf(stderr, "%s\n", e.msgs[i]);
	assert_non_null(tcfg_loaded);
	config_errors_free(&e);
	free(yaml);
	t->n = tcfg_loaded->notifiers;
	t->cfg.notifiers = t->n;
	t->cfg.nnotifiers = tcfg_loaded->nnotifiers;
	assert_int_equal(t->cfg.nnotifiers, 4);
	t->web_notify[0] = "ops-slack";
	t->web_notify[1] = "oncall-mail";
	t->web_notify[2] = "audit";
	t->apps[0].name = "web";
	t->apps[0].notify = t->web_notify;
	t->apps[0].nnotify = 3;
	t->apps[1].name = "api";		/* names none: notify_default */
	t->cfg.apps = t->apps;
	t->cfg.napps = 2;
	t->defaults[0] = "fallback";
	t->cfg.notify_default = t->defaults;
	t->cfg.nnotify_default = 1;
}

static void
tcfg_init(struct tcfg *t)
{
	tcfg_load(t, &tparams_default);
}

/* Replace a loaded string field. */
static void
tset(char **field, const char *v)
{
	free(*field);
	*field = xstrdup(v);
}

static void
job_init(struct job *j, int64_t id, enum job_kind kind, const char *app,
    int attempts)
{
	memset(j, 0, sizeof(*j));
	j->id = id;
	j->kind = kind;
	j->app = (char *)app;
	j->attempts = attempts;
	j->delivery = (char *)"delivery-1";
	if (kind == JOB_UPDATE_IMAGE) {
		j->image = (char *)"registry.test/acme/web";
		j->tag = (char *)"1.4.0";
	} else
		j->revision = (char *)"0123456789abcdef0123456789abcdef01234567";
}

static void
res_fail(struct job_result *r, enum job_error_kind k, const char *error,
    const char *object)
{
	memset(r, 0, sizeof(*r));
	r->err_kind = k;
	r->error = (char *)error;
	r->object = (char *)object;
}

static const struct notify_plan_item *
plan_find(const struct notify_plan *p, const char *notifier)
{
	size_t	 i;
	char	 want[128];

	snprintf(want, sizeof(want), "\"notifier\":\"%s\"", notifier);
	for (i = 0; i < p->n; i++)
		if (strstr(p->items[i].spec.params, want) != NULL)
			return &p->items[i];
	return NULL;
}

/* ---- planning ----------------------------------------------------------- */

static void
test_plan_dead_update_image(void **state)
{
	struct tcfg		 t;
	struct job		 j;
	struct job_result	 r;
	struct notify_plan	 p;
	const struct notify_plan_item *it;
	cJSON			*o;

	(void)state;
	tcfg_init(&t);
	job_init(&j, 42, JOB_UPDATE_IMAGE, "web", 7);
	res_fail(&r, JOB_ERR_GIT, "push rejected: non-fast-forward", NULL);
	notify_plan(&t.cfg, &j, &r, JOB_DEAD, 0, &p);
	assert_int_equal(p.n, 3);	/* slack, mail, audit(all) */
	it = plan_find(&p, "ops-slack");
	assert_non_null(it);
	assert_int_equal(it->spec.kind, JOB_NOTIFY);
	assert_string_equal(it->spec.app, "web");
	assert_non_null(it->dedup_key);
	assert_int_equal(it->repeat_after_s, 3600);
	o = cJSON_Parse(it->spec.params);
	assert_non_null(o);
	assert_string_equal(test_json_str(o, "event"), "job.failed");
	assert_string_equal(test_json_str(o, "kind"), "update-image");
	assert_string_equal(test_json_str(o, "reason_kind"), "git");
	assert_string_equal(test_json_str(o, "reason"),
	    "push rejected: non-fast-forward");
	assert_string_equal(test_json_str(o, "image"), "registry.test/acme/web");
	assert_string_equal(test_json_str(o, "tag"), "1.4.0");
	assert_string_equal(test_json_str(o, "delivery"), "delivery-1");
	assert_string_equal(test_json_str(o, "url"),
	    "https://gitopsd.test/api/v1/jobs/42");
	assert_int_equal(cJSON_GetObjectItem(o, "attempts")->valueint, 8);
	assert_int_equal(strlen(test_json_str(o, "alert_id")), 32);
	/* The alert id is derived from the key: stable across retries. */
	assert_non_null(strstr(it->dedup_key, test_json_str(o, "alert_id")));
	cJSON_Delete(o);
	notify_plan_free(&p);

	/* notify.repeat_after_s: 0 is "never again", not the default. */
	t.cfg.notify.repeat_after_s = 0;
	notify_plan(&t.cfg, &j, &r, JOB_DEAD, 0, &p);
	assert_non_null(it = plan_find(&p, "ops-slack"));
	assert_int_equal(it->repeat_after_s, INT_MAX);
	notify_plan_free(&p);
}

/* A failed attempt that will be retried alerts only `on: [all]`. */
static void
test_plan_retrying_only_all(void **state)
{
	struct tcfg		 t;
	struct job		 j;
	struct job_result	 r;
	struct notify_plan	 p;

	(void)state;
	tcfg_init(&t);
	job_init(&j, 42, JOB_UPDATE_IMAGE, "web", 0);
	res_fail(&r, JOB_ERR_GIT, "fetch failed", NULL);
	notify_plan(&t.cfg, &j, &r, JOB_FAILED, 0, &p);
	assert_int_equal(p.n, 1);
	assert_non_null(plan_find(&p, "audit"));
	notify_plan_free(&p);
}

/* A sync that ends unhealthy alerts even while the job may retry. */
static void
test_plan_unhealthy_sync(void **state)
{
	struct tcfg		 t;
	struct job		 j;
	struct job_result	 r;
	struct notify_plan	 p;

	(void)state;
	tcfg_init(&t);
	job_init(&j, 5, JOB_SYNC, "web", 0);
	res_fail(&r, JOB_ERR_UNHEALTHY, "Deployment web/web not ready",
	    "Deployment web/web");
	notify_plan(&t.cfg, &j, &r, JOB_FAILED, 0, &p);
	assert_int_equal(p.n, 3);
	notify_plan_free(&p);
	res_fail(&r, JOB_ERR_TIMEOUT, "health wait timed out", NULL);
	notify_plan(&t.cfg, &j, &r, JOB_FAILED, 0, &p);
	assert_int_equal(p.n, 3);
	notify_plan_free(&p);
	res_fail(&r, JOB_ERR_UNREACHABLE, "cluster unreachable", NULL);
	notify_plan(&t.cfg, &j, &r, JOB_FAILED, 0, &p);
	assert_int_equal(p.n, 1);	/* only `all` */
	notify_plan_free(&p);
}

static void
test_plan_recovery_and_success(void **state)
{
	struct tcfg		 t;
	struct job		 j;
	struct job_result	 r;
	struct notify_plan	 p;
	const struct notify_plan_item *it;

	(void)state;
	tcfg_init(&t);
	job_init(&j, 9, JOB_SYNC, "web", 1);
	memset(&r, 0, sizeof(r));
	r.ok = 1;
	/* After a failure: mail (failure+recovery) and audit (all). */
	notify_plan(&t.cfg, &j, &r, JOB_SUCCEEDED, 1, &p);
	assert_int_equal(p.n, 2);
	it = plan_find(&p, "oncall-mail");
	assert_non_null(it);
	assert_non_null(strstr(it->spec.params, "\"event\":\"job.recovered\""));
	assert_null(strstr(it->spec.params, "\"reason\""));
	it = plan_find(&p, "audit");
	assert_non_null(strstr(it->spec.params, "\"event\":\"job.recovered\""));
	notify_plan_free(&p);
	/* A success with no failure before: only `all`, as job.succeeded. */
	notify_plan(&t.cfg, &j, &r, JOB_SUCCEEDED, 0, &p);
	assert_int_equal(p.n, 1);
	assert_non_null(strstr(p.items[0].spec.params,
	    "\"event\":\"job.succeeded\""));
	notify_plan_free(&p);
}

static void
test_plan_notify_default_and_notify_jobs(void **state)
{
	struct tcfg		 t;
	struct job		 j;
	struct job_result	 r;
	struct notify_plan	 p;

	(void)state;
	tcfg_init(&t);
	job_init(&j, 3, JOB_SYNC, "api", 0);
	res_fail(&r, JOB_ERR_APPLY_REJECTED, "denied", "ConfigMap api/x");
	notify_plan(&t.cfg, &j, &r, JOB_DEAD, 0, &p);
	assert_int_equal(p.n, 1);
	assert_non_null(plan_find(&p, "fallback"));
	notify_plan_free(&p);
	/* An app no longer configured still alerts through the defaults. */
	job_init(&j, 3, JOB_SYNC, "gone", 0);
	notify_plan(&t.cfg, &j, &r, JOB_DEAD, 0, &p);
	assert_int_equal(p.n, 1);
	notify_plan_free(&p);
	/* Notify jobs never plan alerts. */
	job_init(&j, 4, JOB_NOTIFY, "web", 9);
	notify_plan(&t.cfg, &j, &r, JOB_DEAD, 0, &p);
	assert_int_equal(p.n, 0);
	notify_plan_free(&p);
	/* No default and the app names none: nothing. */
	t.cfg.nnotify_default = 0;
	job_init(&j, 3, JOB_SYNC, "api", 0);
	notify_plan(&t.cfg, &j, &r, JOB_DEAD, 0, &p);
	assert_int_equal(p.n, 0);
	notify_plan_free(&p);
}

static char *
key_of(struct tcfg *t, struct job *j, struct job_result *r,
    const char *notifier)
{
	struct notify_plan	 p;
	const struct notify_plan_item *it;
	char			*k;

	notify_plan(&t->cfg, j, r, JOB_DEAD, 0, &p);
	it = plan_find(&p, notifier);
	assert_non_null(it);
	k = xstrdup(it->dedup_key);
	notify_plan_free(&p);
	return k;
}

/*
 * One alert per (app, reason, revision): the key ignores attempts, times,
 * job ids and the error text, and changes with what identifies the
 * problem.
 */
static void
test_dedup_keys(void **state)
{
	struct tcfg		 t;
	struct job		 j;
	struct job_result	 r;
	char			*base, *k;

	(void)state;
	tcfg_init(&t);
	job_init(&j, 10, JOB_SYNC, "web", 2);
	res_fail(&r, JOB_ERR_APPLY_REJECTED, "rejected at 06:01:02 after 3.2s",
	    "Deployment web/web");
	base = key_of(&t, &j, &r, "ops-slack");

	job_init(&j, 11, JOB_SYNC, "web", 7);	/* other job, attempts */
	res_fail(&r, JOB_ERR_APPLY_REJECTED, "rejected at 07:00:00 after 9s",
	    "Deployment web/web");
	k = key_of(&t, &j, &r, "ops-slack");
	assert_string_equal(k, base);
	free(k);

	r.err_kind = JOB_ERR_UNAUTHORIZED;
	k = key_of(&t, &j, &r, "ops-slack");
	assert_string_not_equal(k, base);
	free(k);

	r.err_kind = JOB_ERR_APPLY_REJECTED;
	r.object = (char *)"Service web/web";
	k = key_of(&t, &j, &r, "ops-slack");
	assert_string_not_equal(k, base);
	free(k);

	r.object = (char *)"Deployment web/web";
	j.revision = (char *)"ffff";
	k = key_of(&t, &j, &r, "ops-slack");
	assert_string_not_equal(k, base);
	free(k);

	j.revision = (char *)"0123456789abcdef0123456789abcdef01234567";
	k = key_of(&t, &j, &r, "oncall-mail");	/* other notifier */
	assert_string_not_equal(k, base);
	free(k);

	j.app = (char *)"api";
	t.apps[1].notify = t.web_notify;
	t.apps[1].nnotify = 1;
	k = key_of(&t, &j, &r, "ops-slack");	/* other app */
	assert_string_not_equal(k, base);
	free(k);
	free(base);

	/* update-image: the image:tag identifies it. */
	job_init(&j, 20, JOB_UPDATE_IMAGE, "web", 0);
	res_fail(&r, JOB_ERR_REGISTRY, "tag not found", NULL);
	base = key_of(&t, &j, &r, "ops-slack");
	j.tag = (char *)"1.4.1";
	k = key_of(&t, &j, &r, "ops-slack");
	assert_string_not_equal(k, base);
	free(k);
	free(base);
}

/* ---- rendering ---------------------------------------------------------- */

static const struct notify_alert alert = {
	.event = "job.failed",
	.app = "web",
	.job_id = 42,
	.kind = "sync",
	.reason = "apply rejected: <admission> & policy",
	.reason_kind = "apply-rejected",
	.object = "Deployment web/web",
	.revision = "0123abcd",
	.delivery = "d-77",
	.attempts = 3,
	.url = "https://gitopsd.test/api/v1/jobs/42",
	.time_ms = 1795674097000LL,
	.alert_id = "0123456789abcdef0123456789abcdef",
};

static const cJSON *
block_of_type(const cJSON *blocks, const char *type, int nth)
{
	const cJSON	*b;

	cJSON_ArrayForEach(b, blocks) {
		if (strcmp(test_json_str(b, "type"), type) == 0 && nth-- == 0)
			return b;
	}
	return NULL;
}

static void
test_render_slack(void **state)
{
	struct tcfg		 t;
	struct notify_request	 req;
	char			 err[256];
	cJSON			*doc, *blocks;
	const cJSON		*b, *f;
	char			*all;

	(void)state;
	tcfg_init(&t);
	assert_int_equal(notifier_find("slack")->render(&t.n[0], &alert, &req,
	    err, sizeof(err)), 0);
	assert_string_equal(req.url, tparams_default.slack_url);
	assert_int_equal(req.nheaders, 1);
	assert_non_null(strstr(req.headers[0], "application/json"));
	doc = cJSON_Parse(req.body);
	assert_non_null(doc);
	assert_non_null(test_json_str(doc, "text"));
	blocks = cJSON_GetObjectItem(doc, "blocks");
	b = block_of_type(blocks, "header", 0);
	assert_non_null(b);
	assert_string_equal(test_json_str(cJSON_GetObjectItem(b, "text"),
	    "type"), "plain_text");
	assert_string_equal(test_json_str(cJSON_GetObjectItem(b, "text"),
	    "text"), "web: sync failed");
	/* The body section: mrkdwn, the reason escaped. */
	b = block_of_type(blocks, "section", 0);
	assert_non_null(strstr(test_json_str(cJSON_GetObjectItem(b, "text"),
	    "text"), "&lt;admission&gt; &amp; policy"));
	b = block_of_type(blocks, "section", 1);
	f = cJSON_GetObjectItem(b, "fields");
	assert_true(cJSON_GetArraySize(f) >= 5);
	all = cJSON_PrintUnformatted(f);
	assert_non_null(strstr(all, "*App*\\nweb"));
	assert_non_null(strstr(all, "*Revision*\\n`0123abcd`"));
	assert_non_null(strstr(all, "*Delivery*\\n`d-77`"));
	assert_non_null(strstr(all, "*Attempts*\\n3"));
	assert_non_null(strstr(all, "apply-rejected (Deployment web/web)"));
	cJSON_free(all);
	b = block_of_type(blocks, "context", 0);
	all = cJSON_PrintUnformatted(b);
	assert_non_null(strstr(all,
	    "<https://gitopsd.test/api/v1/jobs/42|View job 42>"));
	cJSON_free(all);
	cJSON_Delete(doc);
	notify_request_free(&req);

	/* A title template; header text is capped at Slack's 150. */
	tset(&t.n[0].title, "{{reason}}{{reason}}{{reason}}{{reason}}{{reason}}");
	assert_int_equal(notifier_find("slack")->render(&t.n[0], &alert, &req,
	    err, sizeof(err)), 0);
	doc = cJSON_Parse(req.body);
	b = block_of_type(cJSON_GetObjectItem(doc, "blocks"), "header", 0);
	assert_int_equal(strlen(test_json_str(cJSON_GetObjectItem(b, "text"),
	    "text")), 150);
	cJSON_Delete(doc);
	notify_request_free(&req);
}

static void
test_render_webhook(void **state)
{
	struct tcfg		 t;
	struct notify_request	 req;
	char			 err[256], sig[65], want[128];
	cJSON			*doc;
	size_t			 i;
	int			 saw_sig = 0, saw_env = 0, saw_delivery = 0;

	(void)state;
	tcfg_init(&t);
	assert_int_equal(notifier_find("webhook")->render(&t.n[2], &alert, &req,
	    err, sizeof(err)), 0);
	doc = cJSON_Parse(req.body);
	assert_non_null(doc);
	assert_string_equal(test_json_str(doc, "event"), "job.failed");
	assert_string_equal(test_json_str(doc, "app"), "web");
	assert_int_equal(cJSON_GetObjectItem(doc, "job")->valueint, 42);
	assert_string_equal(test_json_str(doc, "kind"), "sync");
	assert_string_equal(test_json_str(doc, "reason"),
	    "apply rejected: <admission> & policy");
	assert_string_equal(test_json_str(doc, "revision"), "0123abcd");
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(doc, "image")));
	assert_string_equal(test_json_str(doc, "delivery"), "d-77");
	assert_string_equal(test_json_str(doc, "time"), "2026-11-26T06:21:37Z");
	cJSON_Delete(doc);
	util_hmac_sha256_hex("topsecret", 9, req.body, req.body_len, sig);
	snprintf(want, sizeof(want), "X-Gitopsd-Signature-256: sha256=%s", sig);
	for (i = 0; i < req.nheaders; i++) {
		assert_null(strpbrk(req.headers[i], "\r\n"));
		if (strcmp(req.headers[i], want) == 0)
			saw_sig = 1;
		if (strncmp(req.headers[i], "X-Env: prod", 11) == 0)
			saw_env = 1;
		if (strcmp(req.headers[i], "X-Gitopsd-Delivery: "
		    "0123456789abcdef0123456789abcdef") == 0)
			saw_delivery = 1;
	}
	assert_true(saw_sig && saw_env && saw_delivery);
	notify_request_free(&req);
}

static void
test_render_email(void **state)
{
	struct tcfg		 t;
	struct notify_request	 req;
	struct notify_alert	 a = alert;
	char			 err[256], *hdr_end, *p;

	(void)state;
	tcfg_init(&t);
	tset(&t.n[1].title, "Échec de {{app}} — {{kind}} {{reason}}");
	a.reason = "réessayé\nline two";
	assert_int_equal(notifier_find("email")->render(&t.n[1], &a, &req,
	    err, sizeof(err)), 0);
	assert_string_equal(req.url, "smtp://127.0.0.1:1");
	assert_string_equal(req.mail_from, "gitopsd@example.test");
	assert_int_equal(req.nrcpt, 2);
	assert_string_equal(req.rcpt[1], "dev@example.test");
	hdr_end = strstr(req.body, "\r\n\r\n");
	assert_non_null(hdr_end);
	assert_non_null(strstr(req.body, "Date: Thu, 26 Nov 2026 06:21:37 "
	    "+0000\r\n"));
	assert_non_null(strstr(req.body, "Message-ID: <0123456789abcdef0123456"
	    "789abcdef.42@example.test>\r\n"));
	assert_non_null(strstr(req.body, "Subject: =?UTF-8?B?"));
	assert_non_null(strstr(req.body, "Content-Transfer-Encoding: "
	    "quoted-printable\r\n"));
	/* Every line ends in CRLF and none is over 78 characters. */
	for (p = req.body; *p != '\0'; p++) {
		if (*p == '\n')
			assert_true(p > req.body && p[-1] == '\r');
	}
	notify_request_free(&req);
}

static void
test_checks(void **state)
{
	struct tcfg		 t;
	struct tparams		 p = tparams_default;
	struct config_errors	 e;
	const struct notifier	*nt;
	char			 pw[] = "/tmp/test_notify_pw.XXXXXX", *extra;
	size_t			 i;
	int			 fd;

	(void)state;
	tcfg_init(&t);
	memset(&e, 0, sizeof(e));
	for (i = 0; i < t.cfg.nnotifiers; i++) {
		nt = notifier_find(t.n[i].type);
		assert_non_null(nt);
		assert_ptr_equal(t.n[i].plugin, nt);
		nt->check(&t.cfg, &t.n[i], i, &e);
	}
	assert_int_equal(e.n, 0);
	test_errors_free(&e);

	assert_true((fd = mkstemp(pw)) != -1);
	assert_int_equal(write(fd, "pw\n", 3), 3);
	close(fd);
	extra = xasprintf(", body: \"{{app}} {{bogus}}\", password_file: %s",
	    pw);
	p.smtp_url = "http://mail.test";
	p.to1 = "not an address";
	p.smtp_extra = extra;
	tcfg_load(&t, &p);
	notifier_find("email")->check(&t.cfg, &t.n[1], 1, &e);
	assert_true(test_errors_have(&e, "notifiers[1].smtp_url", "smtp://"));
	assert_true(test_errors_have(&e, "notifiers[1].to[1]", NULL));
	assert_true(test_errors_have(&e, "notifiers[1].body", "bogus"));
	assert_true(test_errors_have(&e, "notifiers[1].username", NULL));
	test_errors_free(&e);
	unlink(pw);
	free(extra);

	p = tparams_default;
	p.hook_header = "X-Gitopsd-Signature-256: x";
	tcfg_load(&t, &p);
	notifier_find("webhook")->check(&t.cfg, &t.n[2], 2, &e);
	assert_true(test_errors_have(&e,
	    "notifiers[2].headers.X-Gitopsd-Signature-256", "overridden"));
	test_errors_free(&e);
}

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
	notify_plan(&t->cfg, &j, &res, JOB_DEAD, 0, &p);
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
		cmocka_unit_test_teardown(test_plan_dead_update_image, tcfg_teardown),
		cmocka_unit_test_teardown(test_plan_retrying_only_all, tcfg_teardown),
		cmocka_unit_test_teardown(test_plan_unhealthy_sync, tcfg_teardown),
		cmocka_unit_test_teardown(test_plan_recovery_and_success, tcfg_teardown),
		cmocka_unit_test_teardown(test_plan_notify_default_and_notify_jobs, tcfg_teardown),
		cmocka_unit_test_teardown(test_dedup_keys, tcfg_teardown),
		cmocka_unit_test_teardown(test_render_slack, tcfg_teardown),
		cmocka_unit_test_teardown(test_render_webhook, tcfg_teardown),
		cmocka_unit_test_teardown(test_render_email, tcfg_teardown),
		cmocka_unit_test_teardown(test_checks, tcfg_teardown),
		cmocka_unit_test_teardown(test_run_notifier_gone, tcfg_teardown),
		cmocka_unit_test_teardown(test_run_slack_and_webhook, tcfg_teardown),
		cmocka_unit_test_teardown(test_run_failures, tcfg_teardown),
		cmocka_unit_test_teardown(test_run_email_starttls, tcfg_teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
