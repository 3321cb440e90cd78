/*
 * Tests for the incident notifiers (alertmanager.c, pagerduty.c,
 * opsgenie.c) and the chat notifiers (teams.c, discord.c, googlechat.c,
 * mattermost.c, telegram.c): their keys and checks as loaded from YAML,
 * the requests they render for a failure and for the recovery (fields
 * checked one by one), the incident key shared by both, the planning of
 * one job per Alertmanager URL, and the retry hints of 429 bodies.
 */
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "job.h"
#include "notifier.h"
#include "notify.h"
#include "util.h"


static struct config *loaded;
static int apps_borrowed;	/* loaded->apps is a test's own (a failed assert) */

static int
teardown(void **state)
{
	(void)state;
	if (loaded != NULL && apps_borrowed) {
		loaded->apps = NULL;
		loaded->napps = 0;
	}
	apps_borrowed = 0;
	config_unref(loaded);
	loaded = NULL;
	return 0;
}

static const char *const yaml_ok =
    "notifiers:\n"
    "  - {name: am, type: alertmanager, url: [\"http://127.0.0.1:9/\","
    " \"http://127.0.0.2:9\"], labels: {team: web}}\n"
    "  - {name: pd, type: pagerduty, routing_key_env: TEST_PD_KEY,"
    " api_url: \"http://127.0.0.1:7/\", severity: critical}\n"
    "  - {name: og, type: opsgenie, api_key_env: TEST_OG_KEY,"
    " api_url: \"https://api.eu.opsgenie.com\"}\n"
    "  - {name: am1, type: alertmanager, url: \"http://127.0.0.1:9\","
    " on: [failure, recovery]}\n"
    "  - {name: teams, type: teams, url_env: TEST_CHAT_URL}\n"
    "  - {name: discord, type: discord, url_env: TEST_CHAT_URL}\n"
    "  - {name: gchat, type: googlechat, url_env: TEST_CHAT_URL}\n"
    "  - {name: mm, type: mattermost, url_env: TEST_CHAT_URL}\n"
    "  - {name: tg, type: telegram, bot_token_env: TEST_TG_TOKEN,"
    " chat_id: \"-100123\", api_url: \"http://127.0.0.1:8\"}\n";

/* Loads yaml; with errs NULL the load must succeed. */
static struct config *
load(const char *yaml, struct config_errors *errs)
{
	struct config_errors	 e;
	size_t			 i;

	setenv("TEST_PD_KEY", "R0UTINGKEY0123456789abcdef012345", 1);
	setenv("TEST_OG_KEY", "eb243592-faa2-4ba2-a551q-1afdf565c889", 1);
	setenv("TEST_CHAT_URL", "https://chat.test/hook/1", 1);
	setenv("TEST_TG_TOKEN", "123456:ABC-DEF", 1);
	memset(&e, 0, sizeof(e));
	config_unref(loaded);
	loaded = config_load_buffer("test.yaml", yaml, strlen(yaml),
	    errs != NULL ? errs : &e);
	if (errs == NULL) {
		for (i = 0; i < e.n; i++)
			fprintf(stderr, "%s\n", e.msgs[i]);
		assert_non_null(loaded);
		config_errors_free(&e);
	}
	return loaded;
}

static const struct notify_alert failed = {
	.event = "job.failed",
	.app = "web",
	.cluster = "prod-eu",
	.job_id = 42,
	.kind = "sync",
	.reason = "Deployment web/web: ProgressDeadlineExceeded",
	.reason_kind = "unhealthy",
	.object = "Deployment web/web",
	.revision = "0123abcd",
	.image = "registry.test/acme/web",
	.tag = "1.4.0",
	.delivery = "d-77",
	.attempts = 3,
	.url = "https://gitopsd.test/api/v1/jobs/42",
	.pr_url = "https://github.test/acme/deploy/pull/7",
	.time_ms = 1700000000000,
	.alert_id = "0123456789abcdef0123456789abcdef",
};

static struct notify_alert
recovered(void)
{
	struct notify_alert	 a = {
		.event = "job.recovered", .app = "web", .cluster = "prod-eu",
		.job_id = 57, .kind = "sync", .revision = "89abcdef",
		.attempts = 1, .url = "https://gitopsd.test/api/v1/jobs/57",
		.time_ms = 1700000600000,
		.alert_id = "fedcba9876543210fedcba9876543210",
	};

	return a;
}

static const struct config_notifier *
find(const struct config *cfg, const char *name)
{
	size_t	 i;

	for (i = 0; i < cfg->nnotifiers; i++)
		if (strcmp(cfg->notifiers[i].name, name) == 0)
			return &cfg->notifiers[i];
	fail_msg("no notifier %s", name);
	return NULL;
}

static cJSON *
render(const struct config_notifier *n, const struct notify_alert *a,
    struct notify_request *req)
{
	char	 err[256];
	cJSON	*doc;

	if (n->plugin->render(n, a, req, err, sizeof(err)) != 0)
		fail_msg("render: %s", err);
	doc = cJSON_Parse(req->body);
	assert_non_null(doc);
	return doc;
}

static const char *
str(const cJSON *o, const char *k)
{
	const cJSON	*v = cJSON_GetObjectItemCaseSensitive(o, k);

	if (!cJSON_IsString(v))
		fail_msg("%s is not a string", k);
	return v->valuestring;
}

static int
has_header(const struct notify_request *r, const char *h)
{
	size_t	 i;

	for (i = 0; i < r->nheaders; i++)
		if (strcmp(r->headers[i], h) == 0)
			return 1;
	return 0;
}

static void
test_alertmanager(void **state)
{
	struct config		*cfg;
	const struct config_notifier *n;
	struct notify_request	 req;
	struct notify_alert	 rec = recovered(), a2 = failed;
	cJSON			*doc, *al, *l, *an;
	int64_t			 before = util_now_ms();
	char			 want[32];

	(void)state;
	cfg = load(yaml_ok, NULL);
	n = find(cfg, "am");
	assert_int_equal(n->plugin->targets(n), 2);
	assert_int_equal(find(cfg, "am1")->plugin->targets(find(cfg, "am1")),
	    1);

	doc = render(n, &failed, &req);
	assert_string_equal(req.url, "http://127.0.0.1:9/api/v2/alerts");
	assert_true(has_header(&req, "Content-Type: application/json"));
	assert_true(cJSON_IsArray(doc));
	assert_int_equal(cJSON_GetArraySize(doc), 1);
	al = cJSON_GetArrayItem(doc, 0);
	l = cJSON_GetObjectItem(al, "labels");
	assert_int_equal(cJSON_GetArraySize(l), 5);
	assert_string_equal(str(l, "alertname"), "GitopsdAppFailing");
	assert_string_equal(str(l, "app"), "web");
	assert_string_equal(str(l, "cluster"), "prod-eu");
	assert_string_equal(str(l, "severity"), "error");
	assert_string_equal(str(l, "team"), "web");
	an = cJSON_GetObjectItem(al, "annotations");
	assert_string_equal(str(an, "summary"), "web: sync failed");
	assert_string_equal(str(an, "error"),
	    "Deployment web/web: ProgressDeadlineExceeded");
	assert_string_equal(str(an, "revision"), "0123abcd");
	assert_string_equal(str(an, "image"), "registry.test/acme/web:1.4.0");
	assert_string_equal(str(an, "job_url"), failed.url);
	assert_string_equal(str(an, "pr_url"), failed.pr_url);
	assert_string_equal(str(al, "generatorURL"), failed.url);
	assert_string_equal(str(al, "startsAt"), "2023-11-14T22:13:20Z");
	/* Firing: endsAt four resend intervals (60 s by default) ahead. */
	util_rfc3339(before + 240 * 1000LL - 1000, want);
	assert_true(strcmp(str(al, "endsAt"), want) >= 0);
	util_rfc3339(util_now_ms() + 240 * 1000LL + 1000, want);
	assert_true(strcmp(str(al, "endsAt"), want) <= 0);
	cJSON_Delete(doc);
	notify_request_free(&req);

	/* The recovery: the same labels, endsAt the recovery's time. */
	rec.target = 1;
	doc = render(n, &rec, &req);
	assert_string_equal(req.url, "http://127.0.0.2:9/api/v2/alerts");
	al = cJSON_GetArrayItem(doc, 0);
	l = cJSON_GetObjectItem(al, "labels");
	assert_int_equal(cJSON_GetArraySize(l), 5);
	assert_string_equal(str(l, "alertname"), "GitopsdAppFailing");
	assert_string_equal(str(l, "app"), "web");
	assert_string_equal(str(l, "cluster"), "prod-eu");
	assert_string_equal(str(al, "endsAt"), "2023-11-14T22:23:20Z");
	assert_string_equal(str(al, "startsAt"), "2023-11-14T22:23:20Z");
	assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(al,
	    "annotations"), "error"));
	cJSON_Delete(doc);
	notify_request_free(&req);

	/* A target past the URLs is an error, not a request. */
	a2.target = 2;
	{
		char err[128];

		assert_int_equal(n->plugin->render(n, &a2, &req, err,
		    sizeof(err)), -1);
		assert_null(req.url);
	}
}

static void
test_pagerduty(void **state)
{
	struct config		*cfg;
	const struct config_notifier *n;
	struct notify_request	 req;
	struct notify_alert	 rec = recovered(), other = failed;
	cJSON			*doc, *pl, *cd, *links;
	char			 key[65], trig_key[65];

	(void)state;
	cfg = load(yaml_ok, NULL);
	n = find(cfg, "pd");
	doc = render(n, &failed, &req);
	assert_string_equal(req.url, "http://127.0.0.1:7/v2/enqueue");
	assert_true(has_header(&req, "Content-Type: application/json"));
	assert_string_equal(str(doc, "routing_key"),
	    "R0UTINGKEY0123456789abcdef012345");
	assert_string_equal(str(doc, "event_action"), "trigger");
	notifier_incident_key(n, &failed, key);
	assert_string_equal(str(doc, "dedup_key"), key);
	snprintf(trig_key, sizeof(trig_key), "%s", key);
	pl = cJSON_GetObjectItem(doc, "payload");
	assert_string_equal(str(pl, "summary"), "web: sync failed");
	assert_string_equal(str(pl, "source"), "prod-eu");
	assert_string_equal(str(pl, "severity"), "critical");
	assert_string_equal(str(pl, "timestamp"), "2023-11-14T22:13:20Z");
	assert_string_equal(str(pl, "component"), "web");
	assert_string_equal(str(pl, "group"), "prod-eu");
	assert_string_equal(str(pl, "class"), "unhealthy");
	cd = cJSON_GetObjectItem(pl, "custom_details");
	assert_string_equal(str(cd, "revision"), "0123abcd");
	assert_string_equal(str(cd, "image"), "registry.test/acme/web:1.4.0");
	assert_string_equal(str(cd, "error"), failed.reason);
	assert_string_equal(str(doc, "client_url"), failed.url);
	links = cJSON_GetObjectItem(doc, "links");
	assert_int_equal(cJSON_GetArraySize(links), 2);
	assert_string_equal(str(cJSON_GetArrayItem(links, 1), "href"),
	    failed.pr_url);
	cJSON_Delete(doc);
	notify_request_free(&req);

	/* The recovery resolves with the same key and nothing else. */
	doc = render(n, &rec, &req);
	assert_string_equal(str(doc, "event_action"), "resolve");
	assert_string_equal(str(doc, "dedup_key"), trig_key);
	assert_null(cJSON_GetObjectItem(doc, "payload"));
	cJSON_Delete(doc);
	notify_request_free(&req);

	/* Another app is another incident; another notifier too. */
	other.app = "api";
	notifier_incident_key(n, &other, key);
	assert_string_not_equal(key, trig_key);
	notifier_incident_key(find(cfg, "og"), &failed, key);
	assert_string_not_equal(key, trig_key);
}

static void
test_opsgenie(void **state)
{
	struct config		*cfg;
	const struct config_notifier *n;
	struct notify_request	 req;
	struct notify_alert	 rec = recovered(), longer = failed;
	cJSON			*doc, *d;
	char			 key[65], want[160];
	char			 big[400];

	(void)state;
	cfg = load(yaml_ok, NULL);
	n = find(cfg, "og");
	notifier_incident_key(n, &failed, key);
	doc = render(n, &failed, &req);
	assert_string_equal(req.url, "https://api.eu.opsgenie.com/v2/alerts");
	assert_true(has_header(&req, "Authorization: GenieKey "
	    "eb243592-faa2-4ba2-a551q-1afdf565c889"));
	assert_true(has_header(&req, "Content-Type: application/json"));
	assert_string_equal(str(doc, "message"), "web: sync failed");
	assert_string_equal(str(doc, "alias"), key);
	assert_string_equal(str(doc, "priority"), "P3");
	assert_string_equal(str(doc, "entity"), "web");
	assert_string_equal(str(doc, "source"), "gitopsd");
	assert_non_null(strstr(str(doc, "description"),
	    "ProgressDeadlineExceeded"));
	d = cJSON_GetObjectItem(doc, "details");
	assert_string_equal(str(d, "cluster"), "prod-eu");
	assert_string_equal(str(d, "revision"), "0123abcd");
	assert_string_equal(str(d, "image"), "registry.test/acme/web:1.4.0");
	assert_string_equal(str(d, "job_url"), failed.url);
	cJSON_Delete(doc);
	notify_request_free(&req);

	doc = render(n, &rec, &req);
	snprintf(want, sizeof(want), "https://api.eu.opsgenie.com/v2/alerts/"
	    "%s/close?identifierType=alias", key);
	assert_string_equal(req.url, want);
	assert_string_equal(str(doc, "source"), "gitopsd");
	assert_string_equal(str(doc, "note"), "web recovered");
	assert_null(cJSON_GetObjectItem(doc, "message"));
	cJSON_Delete(doc);
	notify_request_free(&req);

	/* message is capped at Opsgenie's 130 characters. */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	longer.app = big;
	doc = render(n, &longer, &req);
	assert_int_equal(strlen(str(doc, "message")), 130);
	cJSON_Delete(doc);
	notify_request_free(&req);
}

static int
errs_have(const struct config_errors *e, const char *needle)
{
	size_t	 i;

	for (i = 0; i < e->n; i++)
		if (strstr(e->msgs[i], needle) != NULL)
			return 1;
	return 0;
}

static void
test_checks(void **state)
{
	struct config		*cfg;
	struct config_errors	 e;
	size_t			 i;

	(void)state;
	cfg = load(yaml_ok, NULL);
	memset(&e, 0, sizeof(e));
	for (i = 0; i < cfg->nnotifiers; i++)
		cfg->notifiers[i].plugin->check(cfg, &cfg->notifiers[i], i, &e);
	assert_int_equal(e.n, 0);

	/* Load-time: the secret keys are required, inline keys refused. */
	memset(&e, 0, sizeof(e));
	assert_null(load("notifiers:\n"
	    "  - {name: pd, type: pagerduty}\n"
	    "  - {name: og, type: opsgenie, routing_key_env: X}\n"
	    "  - {name: am, type: alertmanager}\n", &e));
	assert_true(errs_have(&e, "notifiers[0].routing_key_file: missing "
	    "required key"));
	assert_true(errs_have(&e, "notifiers[1].routing_key_env: not used by "
	    "type opsgenie"));
	assert_true(errs_have(&e, "notifiers[1].api_key_file: missing"));
	assert_true(errs_have(&e, "notifiers[2].url: missing required key"));
	config_errors_free(&e);

	/* Values checked with the whole configuration (gitopsd -t). */
	cfg = load("notifiers:\n"
	    "  - {name: am, type: alertmanager, url: [\"ftp://x\"],"
	    " labels: {app: x, \"bad-name\": y}}\n"
	    "  - {name: pd, type: pagerduty, routing_key_env: TEST_PD_KEY,"
	    " severity: high, api_url: \"events.pagerduty.com\"}\n"
	    "  - {name: og, type: opsgenie, api_key_env: TEST_OG_KEY,"
	    " priority: P9}\n", NULL);
	memset(&e, 0, sizeof(e));
	for (i = 0; i < cfg->nnotifiers; i++)
		cfg->notifiers[i].plugin->check(cfg, &cfg->notifiers[i], i, &e);
	assert_true(errs_have(&e, "notifiers[0].url[0]: must be an http(s)"));
	assert_true(errs_have(&e, "notifiers[0].labels.app: set by gitopsd"));
	assert_true(errs_have(&e, "notifiers[0].labels.bad-name: not a valid"));
	assert_true(errs_have(&e, "notifiers[1].severity: must be critical"));
	assert_true(errs_have(&e, "notifiers[1].api_url: must be an http(s)"));
	assert_true(errs_have(&e, "notifiers[2].priority: must be P1"));
	config_errors_free(&e);
}

/* yaml_ok with one app, web on prod-eu, notifying am and pd; a failed
 * sync of it in j and res. */
static struct config *
load_web(struct config_app *app, struct job *j, struct job_result *res)
{
	static char		*names[] = { "am", "pd" };
	struct config		*cfg = load(yaml_ok, NULL);

	memset(app, 0, sizeof(*app));
	app->name = "web";
	app->cluster = "prod-eu";
	app->notify = names;
	app->nnotify = 2;
	cfg->apps = app;
	cfg->napps = 1;
	apps_borrowed = 1;
	memset(j, 0, sizeof(*j));
	j->kind = JOB_SYNC;
	j->app = "web";
	memset(res, 0, sizeof(*res));
	return cfg;
}

/* One Alertmanager job per URL, each with its own dedup key. */
static void
test_plan_targets(void **state)
{
	struct config		*cfg;
	struct config_app	 app;
	struct job		 j;
	struct job_result	 res;
	struct notify_plan	 p;
	cJSON			*a, *b;

	(void)state;
	cfg = load_web(&app, &j, &res);
	j.id = 9;
	j.revision = "0123abcd";
	res.err_kind = JOB_ERR_UNHEALTHY;
	res.error = "unhealthy";
	notify_plan(cfg, &j, &res, JOB_DEAD, 0, NULL, &p);
	cfg->apps = NULL;
	cfg->napps = 0;
	assert_int_equal(p.n, 3);
	a = cJSON_Parse(p.items[0].spec.params);
	b = cJSON_Parse(p.items[1].spec.params);
	assert_string_equal(str(a, "notifier"), "am");
	assert_string_equal(str(b, "notifier"), "am");
	assert_string_equal(str(a, "cluster"), "prod-eu");
	assert_int_equal(cJSON_GetObjectItem(a, "target")->valueint, 0);
	assert_int_equal(cJSON_GetObjectItem(b, "target")->valueint, 1);
	assert_string_not_equal(p.items[0].dedup_key, p.items[1].dedup_key);
	cJSON_Delete(a);
	cJSON_Delete(b);
	a = cJSON_Parse(p.items[2].spec.params);
	assert_string_equal(str(a, "notifier"), "pd");
	assert_null(cJSON_GetObjectItem(a, "target"));
	cJSON_Delete(a);
	notify_plan_free(&p);
}

/*
 * An incident per app and failure reason: the failure names its reason;
 * the recovery resolves each reason the outbox has open (newest first,
 * up to the last resolve), pagerduty with one alert and key apiece; the
 * re-sends take the newest alertmanager failure of each target.
 */
static void
test_plan_reasons(void **state)
{
	struct config		*cfg;
	struct config_app	 app;
	struct job		 j;
	struct job_result	 res;
	struct notify_plan	 p;
	struct notify_open_set	 open;
	struct notify_alert	 al;
	char			 k0[65], k1[65];
	cJSON			*a, *b;
	size_t			 i;
	static const char *const outbox[] = {	/* newest first */
	    "{\"notifier\":\"pd\",\"event\":\"job.failed\",\"app\":\"web\","
	    "\"incident\":\"sync/manifest\",\"job\":12}",
	    "{\"notifier\":\"am\",\"event\":\"job.failed\",\"app\":\"web\","
	    "\"target\":1,\"incident\":\"sync/manifest\",\"job\":12}",
	    "{\"notifier\":\"pd\",\"event\":\"job.failed\",\"app\":\"web\","
	    "\"incident\":\"sync/apply-rejected\",\"job\":11}",
	    "{\"notifier\":\"pd\",\"event\":\"job.failed\",\"app\":\"web\","
	    "\"incident\":\"sync/manifest\",\"job\":10}",
	    "{\"notifier\":\"am\",\"event\":\"job.failed\",\"app\":\"web\","
	    "\"incident\":\"sync/apply-rejected\",\"job\":11}",
	    /* Resolved before: not open any more. */
	    "{\"notifier\":\"pd\",\"event\":\"job.recovered\",\"app\":\"web\","
	    "\"incident\":\"sync/timeout\",\"job\":8}",
	    "{\"notifier\":\"pd\",\"event\":\"job.failed\",\"app\":\"web\","
	    "\"incident\":\"update-image/git\",\"job\":7}",
	};

	(void)state;
	cfg = load_web(&app, &j, &res);
	j.id = 13;
	res.err_kind = JOB_ERR_MANIFEST;
	res.error = "apps/web/config.yaml: bad YAML";

	/* The failure's reason: job kind and error kind. */
	notify_plan(cfg, &j, &res, JOB_DEAD, 0, NULL, &p);
	assert_int_equal(p.n, 3);
	for (i = 0; i < p.n; i++) {
		a = cJSON_Parse(p.items[i].spec.params);
		assert_string_equal(str(a, "incident"), "sync/manifest");
		cJSON_Delete(a);
	}
	notify_plan_free(&p);

	memset(&open, 0, sizeof(open));
	for (i = 0; i < nitems(outbox); i++)
		notify_open_feed(&open, outbox[i]);
	assert_int_equal(open.n, 4);	/* pd x2, am target 1, am target 0 */

	memset(&res, 0, sizeof(res));
	res.ok = 1;
	for (i = 0; i < cfg->nnotifiers; i++)
		cfg->notifiers[i].on |= CONFIG_ON_FAILURE | CONFIG_ON_RECOVERY;
	notify_plan(cfg, &j, &res, JOB_SUCCEEDED, 1, &open, &p);
	/* am: one resolve per URL; pd: one per open reason. */
	assert_int_equal(p.n, 4);
	a = cJSON_Parse(p.items[2].spec.params);
	b = cJSON_Parse(p.items[3].spec.params);
	assert_string_equal(str(a, "notifier"), "pd");
	assert_string_equal(str(a, "event"), "job.recovered");
	assert_string_equal(str(a, "incident"), "sync/manifest");
	assert_string_equal(str(b, "incident"), "sync/apply-rejected");
	assert_string_not_equal(p.items[2].dedup_key, p.items[3].dedup_key);
	/* Each resolve carries the key its trigger had. */
	memset(&al, 0, sizeof(al));
	al.app = "web";
	al.incident = str(a, "incident");
	notifier_incident_key(find(cfg, "pd"), &al, k0);
	al.incident = "sync/manifest";
	notifier_incident_key(find(cfg, "pd"), &al, k1);
	assert_string_equal(k0, k1);
	al.incident = str(b, "incident");
	notifier_incident_key(find(cfg, "pd"), &al, k1);
	assert_string_not_equal(k0, k1);
	cJSON_Delete(a);
	cJSON_Delete(b);
	notify_plan_free(&p);

	/* With on: [all] any success resolves, per reason as well. */
	assert_false(notify_wants_open(cfg, "web", 1, 0));
	assert_false(notify_wants_open(cfg, "web", 0, 1));
	assert_true(notify_wants_open(cfg, "web", 1, 1));
	for (i = 0; i < cfg->nnotifiers; i++)
		if (strcmp(cfg->notifiers[i].name, "pd") == 0)
			cfg->notifiers[i].on = CONFIG_ON_ALL;
	assert_true(notify_wants_open(cfg, "web", 1, 0));
	notify_plan(cfg, &j, &res, JOB_SUCCEEDED, 0, &open, &p);
	assert_int_equal(p.n, 2);
	for (i = 0; i < p.n; i++) {
		a = cJSON_Parse(p.items[i].spec.params);
		assert_string_equal(str(a, "notifier"), "pd");
		assert_string_equal(str(a, "event"), "job.succeeded");
		assert_string_equal(str(a, "incident"), i == 0 ?
		    "sync/manifest" : "sync/apply-rejected");
		cJSON_Delete(a);
	}
	notify_plan_free(&p);

	/* Re-sends: alertmanager only, its newest failure per target. */
	notify_resend_plan(cfg, "web", &open, &p);
	assert_int_equal(p.n, 2);
	a = cJSON_Parse(p.items[0].spec.params);
	b = cJSON_Parse(p.items[1].spec.params);
	assert_string_equal(str(a, "notifier"), "am");
	assert_int_equal(cJSON_GetObjectItem(a, "target")->valueint, 1);
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(a, "resend")));
	assert_int_equal(cJSON_GetObjectItem(b, "job")->valueint, 11);
	assert_int_equal(p.items[0].repeat_after_s, 59);
	cJSON_Delete(a);
	cJSON_Delete(b);
	notify_plan_free(&p);
	assert_int_equal(notify_resend_every_ms(cfg), 60000);
	/* Only an app with a re-sending notifier is read for a pass. */
	assert_true(notify_app_resends(cfg, "web"));
	app.nnotify = 0;	/* the default list: none */
	assert_false(notify_app_resends(cfg, "web"));
	app.notify += 1;	/* pd alone */
	app.nnotify = 1;
	assert_false(notify_app_resends(cfg, "web"));
	app.notify -= 1;	/* am alone */
	assert_true(notify_app_resends(cfg, "web"));
	app.nnotify = 2;
	assert_false(notify_app_resends(cfg, "other"));
	notify_open_free(&open);
}

static const cJSON *
path(const cJSON *o, const char *p)
{
	char		 k[64];
	const char	*dot;
	size_t		 len;

	while (o != NULL && *p != '\0') {
		dot = strchr(p, '.');
		len = dot != NULL ? (size_t)(dot - p) : strlen(p);
		snprintf(k, sizeof(k), "%.*s", (int)len, p);
		if (k[0] >= '0' && k[0] <= '9')
			o = cJSON_GetArrayItem(o, atoi(k));
		else
			o = cJSON_GetObjectItemCaseSensitive(o, k);
		p += len + (dot != NULL);
	}
	if (o == NULL)
		fail_msg("no %s", p);
	return o;
}

static const char *
pstr(const cJSON *o, const char *p)
{
	const cJSON	*v = path(o, p);

	if (!cJSON_IsString(v))
		fail_msg("%s is not a string", p);
	return v->valuestring;
}

static int
count(const char *s, const char *needle)
{
	int	 n = 0;

	while ((s = strstr(s, needle)) != NULL) {
		n++;
		s += strlen(needle);
	}
	return n;
}

static void
test_chat(void **state)
{
	struct config		*cfg;
	struct notify_request	 req;
	struct notify_alert	 rec = recovered(), evil = failed;
	cJSON			*doc;
	const char		*t;

	(void)state;
	cfg = load(yaml_ok, NULL);

	doc = render(find(cfg, "teams"), &failed, &req);
	assert_string_equal(req.url, "https://chat.test/hook/1");
	assert_string_equal(pstr(doc, "type"), "message");
	assert_string_equal(pstr(doc, "attachments.0.contentType"),
	    "application/vnd.microsoft.card.adaptive");
	assert_string_equal(pstr(doc, "attachments.0.content.type"),
	    "AdaptiveCard");
	assert_string_equal(pstr(doc, "attachments.0.content.body.0.text"),
	    "web: sync failed");
	assert_string_equal(pstr(doc,
	    "attachments.0.content.body.2.facts.1.title"), "Cluster");
	assert_string_equal(pstr(doc,
	    "attachments.0.content.body.2.facts.1.value"), "prod-eu");
	assert_string_equal(pstr(doc,
	    "attachments.0.content.actions.0.url"), failed.url);
	assert_string_equal(pstr(doc,
	    "attachments.0.content.actions.1.url"), failed.pr_url);
	cJSON_Delete(doc);
	notify_request_free(&req);

	doc = render(find(cfg, "discord"), &failed, &req);
	assert_string_equal(pstr(doc, "embeds.0.title"), "web: sync failed");
	assert_string_equal(pstr(doc, "embeds.0.url"), failed.url);
	assert_int_equal(path(doc, "embeds.0.color")->valueint, 0xd73a49);
	assert_string_equal(pstr(doc, "embeds.0.fields.0.name"), "App");
	assert_string_equal(pstr(doc, "embeds.0.fields.5.name"), "Revision");
	assert_string_equal(pstr(doc, "embeds.0.fields.6.value"),
	    "registry.test/acme/web:1.4.0");
	assert_int_equal(cJSON_GetArraySize(path(doc,
	    "allowed_mentions.parse")), 0);
	cJSON_Delete(doc);
	notify_request_free(&req);
	doc = render(find(cfg, "discord"), &rec, &req);
	assert_int_equal(path(doc, "embeds.0.color")->valueint, 0x2ea44f);
	assert_string_equal(pstr(doc, "embeds.0.title"), "web recovered");
	cJSON_Delete(doc);
	notify_request_free(&req);

	evil.reason = "<b>boom</b> & \"quoted\"";
	doc = render(find(cfg, "gchat"), &evil, &req);
	assert_true(has_header(&req,
	    "Content-Type: application/json; charset=UTF-8"));
	assert_string_equal(pstr(doc, "cardsV2.0.cardId"), "gitopsd");
	assert_string_equal(pstr(doc, "cardsV2.0.card.header.title"),
	    "web: sync failed");
	assert_non_null(strstr(pstr(doc,
	    "cardsV2.0.card.sections.0.widgets.0.textParagraph.text"),
	    "&lt;b&gt;boom&lt;/b&gt; &amp;"));
	assert_string_equal(pstr(doc,
	    "cardsV2.0.card.sections.0.widgets.1.decoratedText.topLabel"),
	    "App");
	cJSON_Delete(doc);
	notify_request_free(&req);

	doc = render(find(cfg, "mm"), &failed, &req);
	assert_string_equal(pstr(doc, "attachments.0.title"),
	    "web: sync failed");
	assert_string_equal(pstr(doc, "attachments.0.title_link"), failed.url);
	assert_string_equal(pstr(doc, "attachments.0.color"), "#d73a49");
	assert_string_equal(pstr(doc, "attachments.0.fields.3.title"),
	    "Failure");
	assert_string_equal(pstr(doc, "attachments.0.fields.3.value"),
	    "unhealthy (Deployment web/web)");
	cJSON_Delete(doc);
	notify_request_free(&req);

	doc = render(find(cfg, "tg"), &evil, &req);
	assert_string_equal(req.url,
	    "http://127.0.0.1:8/bot123456:ABC-DEF/sendMessage");
	assert_string_equal(pstr(doc, "chat_id"), "-100123");
	assert_string_equal(pstr(doc, "parse_mode"), "HTML");
	t = pstr(doc, "text");
	assert_true(strncmp(t, "<b>web: sync failed</b>\n\n", 25) == 0);
	assert_non_null(strstr(t, "<b>Error</b>: &lt;b&gt;boom&lt;/b&gt; "
	    "&amp; &quot;quoted&quot;"));
	assert_non_null(strstr(t, "<a href=\"https://gitopsd.test/api/v1/"
	    "jobs/42\">View job</a>"));
	assert_null(strstr(t, "<b>boom"));
	cJSON_Delete(doc);
	notify_request_free(&req);

	/* The longest error an alert holds (4000 bytes, dispatch.c), each byte
	 * escaped to four: the text stays within 4096, cut at a line end. */
	{
		char *big = xcalloc(1, 4000);

		memset(big, '<', 3999);
		evil.reason = big;
		doc = render(find(cfg, "tg"), &evil, &req);
		t = pstr(doc, "text");
		assert_true(strlen(t) <= 4000);
		assert_int_equal(count(t, "<b>"), count(t, "</b>"));
		assert_non_null(strchr(strrchr(t, '&'), ';'));
		/* The links come before the facts and survive the cut. */
		assert_non_null(strstr(t, ">View job</a>"));
		cJSON_Delete(doc);
		notify_request_free(&req);
		free(big);
	}
}

static void
test_retry_hints(void **state)
{
	struct config		*cfg;
	const struct notifier	*d, *tg;

	(void)state;
	cfg = load(yaml_ok, NULL);
	d = find(cfg, "discord")->plugin;
	tg = find(cfg, "tg")->plugin;
	assert_int_equal(d->retry_after(429, "{\"message\": \"You are being "
	    "rate limited.\", \"retry_after\": 3.2, \"global\": false}"), 4);
	assert_int_equal(d->retry_after(429, "not json"), 0);
	assert_int_equal(d->retry_after(500, "{\"retry_after\": 3}"), 0);
	assert_int_equal(tg->retry_after(429, "{\"ok\": false, \"error_code\":"
	    " 429, \"parameters\": {\"retry_after\": 17}}"), 17);
	assert_int_equal(tg->retry_after(429, "{\"ok\": false}"), 0);
	assert_null(find(cfg, "pd")->plugin->retry_after);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_alertmanager, teardown),
		cmocka_unit_test_teardown(test_pagerduty, teardown),
		cmocka_unit_test_teardown(test_opsgenie, teardown),
		cmocka_unit_test_teardown(test_checks, teardown),
		cmocka_unit_test_teardown(test_plan_targets, teardown),
		cmocka_unit_test_teardown(test_plan_reasons, teardown),
		cmocka_unit_test_teardown(test_chat, teardown),
		cmocka_unit_test_teardown(test_retry_hints, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
