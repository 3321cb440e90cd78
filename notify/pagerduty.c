/*
 * pagerduty.c: alerts as PagerDuty Events API v2 events (POST
 * <api_url>/v2/enqueue).
 *
 * A failure is a `trigger`, the recovery a `resolve`, both with the same
 * dedup_key: one incident per app and failure reason, derived from the
 * notifier's name, the app and the reason -- the job kind and error kind,
 * "sync/apply-rejected", a class that stays the same however the error's
 * text varies (notifier_incident_key()).  A second reason while the app
 * is still failing opens a second incident; the recovery resolves every
 * reason the outbox has open for the app (dispatch.c), so a restart
 * between failure and recovery resolves the right ones.
 *
 * Rate limits: PagerDuty answers 429 without Retry-After; the runner
 * treats 429 as temporary and the queue retries with its backoff.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "config_schema.h"
#include "notifier.h"
#include "template.h"
#include "util.h"

#define PD_SUMMARY_MAX	1024		/* payload.summary, per the API */
#define PD_TEXT_CAP	(16 * 1024)

struct pd_opts {
	char	*routing_key_file;
	char	*routing_key_env;
	char	*routing_key;		/* from either */
	char	*api_url;
	char	*severity;
	char	*ca_file;
};

#define O(field)	offsetof(struct pd_opts, field)

static const struct config_key pd_keys[] = {
	{ "routing_key_file", T_SECRET_FILE,
	  .off = O(routing_key_file), .off2 = O(routing_key),
	  .help = "pagerduty: file holding the integration's routing key" },
	{ "routing_key_env", T_SECRET_ENV,
	  .off = O(routing_key_env), .off2 = O(routing_key),
	  .help = "pagerduty: environment variable holding the routing key" },
	{ "api_url", T_STR,
	  .off = O(api_url), .def = "https://events.pagerduty.com",
	  .help = "pagerduty, opsgenie, telegram: API base URL (opsgenie "
	    "EU: https://api.eu.opsgenie.com)" },
	{ "severity", T_STR,
	  .off = O(severity), .def = "error",
	  .help = "alertmanager: the severity label; pagerduty: critical, "
	    "error, warning or info" },
	NOTIFIER_KEY_CA_FILE(O(ca_file)),
};

#undef O

static void
pd_config_check(struct config_walk *w, void *opts,
    const struct config_node *map, const struct config_node *at)
{
	(void)opts;
	notifier_require_secret(w, map, at, "pagerduty", "routing_key");
}

static const struct config_plugin pd_config =
    CONFIG_PLUGIN(struct pd_opts, pd_keys, pd_config_check);

static const char *const pd_severities[] = {
	"critical", "error", "warning", "info",
};

static int
pd_check(const struct config *cfg, const struct config_notifier *n,
    size_t index, struct config_errors *errs)
{
	const struct pd_opts	*o = n->opts;
	char			 key[96];
	size_t			 i, before = errs->n;
	int			 ok = 0;

	template_check_notifier(cfg, n, index, errs);
	if (o == NULL)
		return (int)(errs->n - before);
	snprintf(key, sizeof(key), "notifiers[%zu].api_url", index);
	notifier_check_http_url(cfg, errs, key, o->api_url);
	for (i = 0; o->severity != NULL && i < nitems(pd_severities); i++)
		ok |= strcmp(o->severity, pd_severities[i]) == 0;
	snprintf(key, sizeof(key), "notifiers[%zu].severity", index);
	if (!ok)
		config_error_at(cfg, errs, key, "must be critical, error, "
		    "warning or info");
	return (int)(errs->n - before);
}

static void
pd_add(cJSON *obj, const char *k, const char *v)
{
	if (v != NULL && *v != '\0')
		cJSON_AddStringToObject(obj, k, v);
}

static void
pd_link(cJSON *links, const char *href, const char *text)
{
	cJSON	*l;

	if (href == NULL || *href == '\0')
		return;
	l = cJSON_CreateObject();
	cJSON_AddStringToObject(l, "href", href);
	cJSON_AddStringToObject(l, "text", text);
	cJSON_AddItemToArray(links, l);
}

static int
pd_render(const struct config_notifier *n, const struct notify_alert *a,
    struct notify_request *req, char *err, size_t errlen)
{
	const struct pd_opts	*o = n->opts;
	struct buf	 title, body;
	cJSON		*doc = NULL, *pl, *cd, *links;
	char		*url = NULL, *img = NULL, key[65], when[32];
	int		 rc = -1;

	buf_init(&title, PD_TEXT_CAP);
	buf_init(&body, PD_TEXT_CAP);
	memset(req, 0, sizeof(*req));
	if (o == NULL || o->routing_key == NULL) {
		snprintf(err, errlen, "no routing key (routing_key_file)");
		goto out;
	}
	notifier_incident_key(n, a, key);
	doc = cJSON_CreateObject();
	cJSON_AddStringToObject(doc, "routing_key", o->routing_key);
	cJSON_AddStringToObject(doc, "dedup_key", key);
	if (notifier_is_resolve(a)) {
		cJSON_AddStringToObject(doc, "event_action", "resolve");
		goto send;
	}
	cJSON_AddStringToObject(doc, "event_action", "trigger");
	if (template_render_title(n, a, NULL, &title) == -1 ||
	    template_render_body(n, a, NULL, &body) == -1) {
		snprintf(err, errlen, "title or body template too long or "
		    "invalid");
		goto out;
	}
	notifier_one_line(title.data);
	template_utf8_truncate(title.data, PD_SUMMARY_MAX);
	if (title.data[0] == '\0')
		(void)buf_addstr(&title, "gitopsd alert");
	pl = cJSON_AddObjectToObject(doc, "payload");
	cJSON_AddStringToObject(pl, "summary", title.data);
	cJSON_AddStringToObject(pl, "source", a->cluster != NULL &&
	    *a->cluster != '\0' ? a->cluster : "gitopsd");
	cJSON_AddStringToObject(pl, "severity", o->severity);
	if (a->time_ms > 0) {
		util_rfc3339(a->time_ms, when);
		cJSON_AddStringToObject(pl, "timestamp", when);
	}
	pd_add(pl, "component", a->app);
	pd_add(pl, "group", a->cluster);
	pd_add(pl, "class", a->reason_kind);
	cd = cJSON_AddObjectToObject(pl, "custom_details");
	pd_add(cd, "text", body.data);
	pd_add(cd, "error", a->reason);
	pd_add(cd, "job_kind", a->kind);
	cJSON_AddNumberToObject(cd, "job", (double)a->job_id);
	pd_add(cd, "object", a->object);
	pd_add(cd, "revision", a->revision);
	pd_add(cd, "image", img = notifier_image_ref(a));
	pd_add(cd, "delivery", a->delivery);
	cJSON_AddNumberToObject(cd, "attempts", a->attempts);
	cJSON_AddStringToObject(doc, "client", "gitopsd");
	pd_add(doc, "client_url", a->url);
	links = cJSON_AddArrayToObject(doc, "links");
	pd_link(links, a->url, "gitopsd job");
	pd_link(links, a->pr_url, "pull request");
send:
	url = notifier_api_url(o->api_url, "/v2/enqueue");
	if (notifier_json_request(req, url, doc, NULL, o->ca_file, err,
	    errlen) == -1)
		goto out;
	rc = 0;
out:
	if (rc == -1)
		notify_request_free(req);
	free(url);
	free(img);
	cJSON_Delete(doc);
	buf_free(&title);
	buf_free(&body);
	return rc;
}

const struct notifier notifier_pagerduty = {
	.type = "pagerduty",
	.config = &pd_config,
	.check = pd_check,
	.render = pd_render,
	.per_reason = 1,
};
