/*
 * Tests for alert planning (notify/dispatch.c), the renderers (slack.c,
 * email.c, webhook.c) and their config checks.  The notify job runner
 * delivering to real receivers is test/integration/notify_run_suite.c.
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

#include "notify_fixture.h"
#include "notify_test_config.h"
#include "test_json.h"

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
	notify_plan(&t.cfg, &j, &r, JOB_DEAD, 0, NULL, &p);
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
	notify_plan(&t.cfg, &j, &r, JOB_DEAD, 0, NULL, &p);
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
	notify_plan(&t.cfg, &j, &r, JOB_FAILED, 0, NULL, &p);
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
	notify_plan(&t.cfg, &j, &r, JOB_FAILED, 0, NULL, &p);
	assert_int_equal(p.n, 3);
	notify_plan_free(&p);
	res_fail(&r, JOB_ERR_TIMEOUT, "health wait timed out", NULL);
	notify_plan(&t.cfg, &j, &r, JOB_FAILED, 0, NULL, &p);
	assert_int_equal(p.n, 3);
	notify_plan_free(&p);
	res_fail(&r, JOB_ERR_UNREACHABLE, "cluster unreachable", NULL);
	notify_plan(&t.cfg, &j, &r, JOB_FAILED, 0, NULL, &p);
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
	notify_plan(&t.cfg, &j, &r, JOB_SUCCEEDED, 1, NULL, &p);
	assert_int_equal(p.n, 2);
	it = plan_find(&p, "oncall-mail");
	assert_non_null(it);
	assert_non_null(strstr(it->spec.params, "\"event\":\"job.recovered\""));
	assert_null(strstr(it->spec.params, "\"reason\""));
	it = plan_find(&p, "audit");
	assert_non_null(strstr(it->spec.params, "\"event\":\"job.recovered\""));
	notify_plan_free(&p);
	/* A success with no failure before: only `all`, as job.succeeded. */
	notify_plan(&t.cfg, &j, &r, JOB_SUCCEEDED, 0, NULL, &p);
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
	notify_plan(&t.cfg, &j, &r, JOB_DEAD, 0, NULL, &p);
	assert_int_equal(p.n, 1);
	assert_non_null(plan_find(&p, "fallback"));
	notify_plan_free(&p);
	/* An app no longer configured still alerts through the defaults. */
	job_init(&j, 3, JOB_SYNC, "gone", 0);
	notify_plan(&t.cfg, &j, &r, JOB_DEAD, 0, NULL, &p);
	assert_int_equal(p.n, 1);
	notify_plan_free(&p);
	/* Notify jobs never plan alerts. */
	job_init(&j, 4, JOB_NOTIFY, "web", 9);
	notify_plan(&t.cfg, &j, &r, JOB_DEAD, 0, NULL, &p);
	assert_int_equal(p.n, 0);
	notify_plan_free(&p);
	/* No default and the app names none: nothing. */
	t.cfg.nnotify_default = 0;
	job_init(&j, 3, JOB_SYNC, "api", 0);
	notify_plan(&t.cfg, &j, &r, JOB_DEAD, 0, NULL, &p);
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

	notify_plan(&t->cfg, j, r, JOB_DEAD, 0, NULL, &p);
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

/* ---- commit-status -------------------------------------------------------- */

#define CS_TOKEN	"cs-TOKEN-0f1e2d3c4b5a"
#define CS_SHA		"0123456789abcdef0123456789abcdef01234567"

static struct config *
cs_load(const char *provider, const char *app, int base)
{
	struct config_errors	 e;
	struct config		*cfg;
	char			*yaml;

	setenv("CS_TEST_TOKEN", CS_TOKEN, 1);
	yaml = xasprintf(
	    "repos: [{name: r, url: \"https://git.test/acme/deploy.git\"}]\n"
	    "apps: [{name: %s, repo: r, path: p, notify: [s, chat]}]\n"
	    "notifiers:\n"
	    "  - {name: s, type: commit-status, provider: %s,"
	    " api_url: \"http://127.0.0.1:1/api/\", token_env: CS_TEST_TOKEN}\n"
	    "  - {name: chat, type: webhook, url: \"http://127.0.0.1:1/h\","
	    " on: [all]}\n%s", app, provider,
	    base ? "links: {base_url: \"https://gitopsd.test/\"}\n" : "");
	memset(&e, 0, sizeof(e));
	cfg = config_load_buffer("t.yaml", yaml, strlen(yaml), &e);
	free(yaml);
	config_errors_free(&e);
	assert_non_null(cfg);
	return cfg;
}

/* Render one alert: its URL and auth header (unless NULL) as wanted; the
 * token nowhere else; returns the JSON body. */
static cJSON *
cs_render(const struct config *cfg, const struct notify_alert *a,
    const char *url, const char *auth)
{
	struct notify_request	 req;
	char			 err[256];
	cJSON			*o;
	size_t			 i, n = 0;

	assert_int_equal(cfg->notifiers[0].plugin->render(&cfg->notifiers[0],
	    a, &req, err, sizeof(err)), 0);
	assert_string_equal(req.url, url);
	for (i = 0; i < req.nheaders; i++)
		if (strstr(req.headers[i], CS_TOKEN) != NULL) {
			if (auth != NULL)
				assert_string_equal(req.headers[i], auth);
			n++;
		}
	assert_int_equal(n, 1);
	assert_null(strstr(req.body, CS_TOKEN));
	o = cJSON_Parse(req.body);
	notify_request_free(&req);
	assert_non_null(o);
	return o;
}

static void
test_commit_status(void **state)
{
	static const char *long_app =
	    "payments-ledger-reconciliation-worker-eu-west";
	struct config		*cfg;
	struct notify_alert	 a;
	struct notify_request	 req;
	struct notify_plan	 p;
	struct job		 j;
	struct job_result	 r;
	struct config_errors	 e;
	const struct notifier	*nt = notifier_find("commit-status");
	char			 reason[400], out[600], err[256];
	cJSON			*o, *params;
	int			 perm, wait;

	(void)state;
	assert_non_null(nt);
	cfg = cs_load("github", "web", 1);
	memset(&a, 0, sizeof(a));
	a.event = "sync.started";
	a.app = "web";
	a.kind = "sync";
	a.job_id = 9;
	a.revision = CS_SHA;
	a.repo_owner = "acme";
	a.repo_name = "deploy";
	a.page_url = "https://gitopsd.test/#/jobs/9";
	o = cs_render(cfg, &a, "http://127.0.0.1:1/api/repos/acme/deploy/"
	    "statuses/" CS_SHA,
	    "Authorization: Bearer " CS_TOKEN);
	assert_string_equal(test_json_str(o, "state"), "pending");
	assert_string_equal(test_json_str(o, "context"), "gitopsd/web");
	assert_string_equal(test_json_str(o, "target_url"), a.page_url);
	cJSON_Delete(o);

	/* A long reason is cut to GitHub's 140 characters. */
	memset(reason, 'x', sizeof(reason) - 1);
	reason[sizeof(reason) - 1] = '\0';
	a.event = "job.failed";
	a.reason = reason;
	a.reason_kind = "unhealthy";
	o = cs_render(cfg, &a, "http://127.0.0.1:1/api/repos/acme/deploy/"
	    "statuses/" CS_SHA, NULL);
	assert_string_equal(test_json_str(o, "state"), "failure");
	assert_true(strlen(test_json_str(o, "description")) <= 140);
	cJSON_Delete(o);

	/* Planning: sync results and starts only, never deduplicated away;
	 * an update-image job or a revision that is no commit: nothing. */
	job_init(&j, 9, JOB_SYNC, "web", 0);
	memset(&r, 0, sizeof(r));
	r.ok = 1;
	notify_plan(cfg, &j, &r, JOB_SUCCEEDED, 0, NULL, &p);
	assert_int_equal(p.n, 2);	/* s and chat (on: all) */
	assert_non_null(plan_find(&p, "s"));
	params = cJSON_Parse(plan_find(&p, "s")->spec.params);
	assert_string_equal(test_json_str(params, "event"), "job.succeeded");
	assert_string_equal(test_json_str(params, "repo_owner"), "acme");
	assert_string_equal(test_json_str(params, "repo_name"), "deploy");
	assert_string_equal(test_json_str(params, "page_url"),
	    "https://gitopsd.test/#/jobs/9");
	cJSON_Delete(params);
	notify_plan_free(&p);
	notify_plan_started(cfg, &j, CS_SHA, &p);
	assert_int_equal(p.n, 1);	/* chat's on: [all] is not started */
	assert_non_null(plan_find(&p, "s"));
	assert_int_equal(plan_find(&p, "s")->max_attempts, 1);
	/* It names the repo: the store runs an app's reports in order. */
	assert_string_equal(plan_find(&p, "s")->spec.repo, "r");
	notify_plan_free(&p);
	notify_plan_started(cfg, &j, "main", &p);
	assert_int_equal(p.n, 0);
	notify_plan_free(&p);
	job_init(&j, 10, JOB_UPDATE_IMAGE, "web", 0);
	notify_plan(cfg, &j, &r, JOB_SUCCEEDED, 0, NULL, &p);
	assert_int_equal(p.n, 1);
	assert_null(plan_find(&p, "s"));
	notify_plan_free(&p);

	/* Refusals as GitHub documents them; the token never in the text. */
	perm = 1;
	wait = 0;
	nt->refused(CONFIG_PR_GITHUB, "http://127.0.0.1:1/api/repos/a/b", 401,
	    "{\"message\": \"Bad credentials\"}", &perm, &wait, out,
	    sizeof(out));
	assert_int_equal(perm, 1);
	assert_non_null(strstr(out, "the token was refused (HTTP 401): Bad "
	    "credentials"));
	perm = 1;
	nt->refused(CONFIG_PR_GITHUB, "http://127.0.0.1:1/api/repos/a/b", 403,
	    "{\"message\": \"You have exceeded a secondary rate limit.\"}",
	    &perm, &wait, out, sizeof(out));
	assert_int_equal(perm, 0);
	assert_int_equal(wait, 60);
	nt->refused(CONFIG_PR_GITHUB, "http://127.0.0.1:1/api/repos/a/b", 404,
	    "{\"message\": \"Not Found\"}", &perm, &wait, out, sizeof(out));
	assert_int_equal(perm, 1);
	assert_non_null(strstr(out, "check api_url"));
	config_free(cfg);

	/* GitLab: the project path URL-encoded, PRIVATE-TOKEN, its words. */
	cfg = cs_load("gitlab", "web", 0);
	a.event = "sync.started";
	a.page_url = NULL;
	a.repo_owner = "acme/platform";
	o = cs_render(cfg, &a, "http://127.0.0.1:1/api/projects/"
	    "acme%2Fplatform%2Fdeploy/statuses/" CS_SHA,
	    "PRIVATE-TOKEN: " CS_TOKEN);
	assert_string_equal(test_json_str(o, "state"), "running");
	assert_string_equal(test_json_str(o, "name"), "gitopsd/web");
	assert_null(cJSON_GetObjectItem(o, "target_url"));
	cJSON_Delete(o);
	config_free(cfg);

	/* Bitbucket: a key of at most 40 characters, url required. */
	cfg = cs_load("bitbucket", long_app, 0);
	memset(&e, 0, sizeof(e));
	assert_true(nt->check(cfg, &cfg->notifiers[0], 0, &e) > 0);
	assert_true(test_errors_have(&e, "notifiers[0].provider",
	    "links.base_url"));
	test_errors_free(&e);
	a.app = long_app;
	a.repo_owner = "acme";
	assert_int_equal(nt->render(&cfg->notifiers[0], &a, &req, err,
	    sizeof(err)), -1);
	a.page_url = "https://gitopsd.test/#/jobs/9";
	a.event = "job.succeeded";
	o = cs_render(cfg, &a, "http://127.0.0.1:1/api/repositories/acme/"
	    "deploy/commit/" CS_SHA "/statuses/build", NULL);
	assert_string_equal(test_json_str(o, "state"), "SUCCESSFUL");
	assert_int_equal(strlen(test_json_str(o, "key")), 40);
	assert_string_equal(test_json_str(o, "url"), a.page_url);
	cJSON_Delete(o);
	config_free(cfg);
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
		cmocka_unit_test(test_commit_status),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
