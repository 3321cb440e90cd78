/*
 * opsgenie.c: alerts through the Opsgenie Alert API.
 *
 * A failure creates an alert (POST <api_url>/v2/alerts), the recovery
 * closes it (POST <api_url>/v2/alerts/<alias>/close?identifierType=alias).
 * The alias is the incident key on this notifier (notifier_incident_key():
 * the notifier's name, the app and the failure reason, as PagerDuty's
 * dedup_key), so Opsgenie folds repeated creates of one reason into one
 * open alert, and the recovery closes every reason still open -- even
 * after a restart, as the outbox keeps them.  Authorization:
 * "GenieKey <api key>".  Opsgenie answers 202 and processes the request
 * later; 429 is retried by the queue.
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

/* Field limits of the create-alert request. */
#define OG_MESSAGE_MAX		130
#define OG_DESCRIPTION_MAX	15000
#define OG_DETAIL_MAX		4000	/* of the 8000 all details share */
#define OG_TEXT_CAP		(64 * 1024)

struct og_opts {
	char	*api_key_file;
	char	*api_key_env;
	char	*api_key;		/* from either */
	char	*api_url;
	char	*priority;
	char	*ca_file;
};

#define O(field)	offsetof(struct og_opts, field)

static const struct config_key og_keys[] = {
	{ "api_key_file", T_SECRET_FILE,
	  .off = O(api_key_file), .off2 = O(api_key),
	  .help = "opsgenie: file holding the API integration's key" },
	{ "api_key_env", T_SECRET_ENV,
	  .off = O(api_key_env), .off2 = O(api_key),
	  .help = "opsgenie: environment variable holding the API key" },
	{ "api_url", T_STR,
	  .off = O(api_url), .def = "https://api.opsgenie.com",
	  .help = "pagerduty, opsgenie, telegram: API base URL (opsgenie "
	    "EU: https://api.eu.opsgenie.com)" },
	{ "priority", T_STR,
	  .off = O(priority), .def = "P3",
	  .help = "opsgenie: alert priority, P1 .. P5" },
	NOTIFIER_KEY_CA_FILE(O(ca_file)),
};

#undef O

static void
og_config_check(struct config_walk *w, void *opts,
    const struct config_node *map, const struct config_node *at)
{
	(void)opts;
	notifier_require_secret(w, map, at, "opsgenie", "api_key");
}

static const struct config_plugin og_config =
    CONFIG_PLUGIN(struct og_opts, og_keys, og_config_check);

static int
og_check(const struct config *cfg, const struct config_notifier *n,
    size_t index, struct config_errors *errs)
{
	const struct og_opts	*o = n->opts;
	char			 key[96];
	size_t			 before = errs->n;

	template_check_notifier(cfg, n, index, errs);
	if (o == NULL)
		return (int)(errs->n - before);
	snprintf(key, sizeof(key), "notifiers[%zu].api_url", index);
	notifier_check_http_url(cfg, errs, key, o->api_url);
	snprintf(key, sizeof(key), "notifiers[%zu].priority", index);
	if (o->priority == NULL || strlen(o->priority) != 2 ||
	    o->priority[0] != 'P' || o->priority[1] < '1' ||
	    o->priority[1] > '5')
		config_error_at(cfg, errs, key, "must be P1, P2, P3, P4 or P5");
	return (int)(errs->n - before);
}

/* A details value: Opsgenie takes strings only. */
static void
og_detail(cJSON *d, const char *k, const char *v)
{
	char	*s;

	if (v == NULL || *v == '\0')
		return;
	s = xstrdup(v);
	template_utf8_truncate(s, OG_DETAIL_MAX);
	cJSON_AddStringToObject(d, k, s);
	free(s);
}

static int
og_render(const struct config_notifier *n, const struct notify_alert *a,
    struct notify_request *req, char *err, size_t errlen)
{
	const struct og_opts	*o = n->opts;
	struct buf	 title, body, tmp;
	cJSON		*doc = NULL, *d, *tags;
	char		*url = NULL, *auth = NULL, *img = NULL, alias[65];
	char		 num[32];
	const char	*hdrs[2];
	int		 rc = -1;

	buf_init(&title, OG_TEXT_CAP);
	buf_init(&body, OG_TEXT_CAP);
	buf_init(&tmp, 0);
	memset(req, 0, sizeof(*req));
	if (o == NULL || o->api_key == NULL) {
		snprintf(err, errlen, "no API key (api_key_file)");
		goto out;
	}
	notifier_incident_key(n, a, alias);
	if (template_render_title(n, a, NULL, &title) == -1 ||
	    template_render_body(n, a, NULL, &body) == -1) {
		snprintf(err, errlen, "title or body template too long or "
		    "invalid");
		goto out;
	}
	doc = cJSON_CreateObject();
	if (notifier_is_resolve(a)) {
		template_utf8_truncate(title.data, 25000);
		cJSON_AddStringToObject(doc, "source", "gitopsd");
		cJSON_AddStringToObject(doc, "user", "gitopsd");
		cJSON_AddStringToObject(doc, "note", title.data);
		(void)buf_printf(&tmp, "/v2/alerts/%s/close"
		    "?identifierType=alias", alias);
		url = notifier_api_url(o->api_url, tmp.data);
		goto send;
	}
	notifier_one_line(title.data);
	template_utf8_truncate(title.data, OG_MESSAGE_MAX);
	if (title.data[0] == '\0')
		(void)buf_addstr(&title, "gitopsd alert");
	template_utf8_truncate(body.data, OG_DESCRIPTION_MAX);
	cJSON_AddStringToObject(doc, "message", title.data);
	cJSON_AddStringToObject(doc, "alias", alias);
	if (body.len > 0)
		cJSON_AddStringToObject(doc, "description", body.data);
	if (a->app != NULL)
		cJSON_AddStringToObject(doc, "entity", a->app);
	cJSON_AddStringToObject(doc, "source", "gitopsd");
	cJSON_AddStringToObject(doc, "priority", o->priority);
	tags = cJSON_AddArrayToObject(doc, "tags");
	cJSON_AddItemToArray(tags, cJSON_CreateString("gitopsd"));
	if (a->reason_kind != NULL)
		cJSON_AddItemToArray(tags, cJSON_CreateString(a->reason_kind));
	d = cJSON_AddObjectToObject(doc, "details");
	og_detail(d, "app", a->app);
	og_detail(d, "cluster", a->cluster);
	og_detail(d, "job_kind", a->kind);
	snprintf(num, sizeof(num), "%lld", (long long)a->job_id);
	og_detail(d, "job", num);
	og_detail(d, "error", a->reason);
	og_detail(d, "object", a->object);
	og_detail(d, "revision", a->revision);
	img = notifier_image_ref(a);
	og_detail(d, "image", img);
	og_detail(d, "job_url", a->url);
	og_detail(d, "pr_url", a->pr_url);
	url = notifier_api_url(o->api_url, "/v2/alerts");
send:
	auth = xasprintf("Authorization: GenieKey %s", o->api_key);
	hdrs[0] = auth;
	hdrs[1] = NULL;
	if (notifier_json_request(req, url, doc, hdrs, o->ca_file, err,
	    errlen) == -1)
		goto out;
	rc = 0;
out:
	if (rc == -1)
		notify_request_free(req);
	if (auth != NULL) {
		explicit_bzero(auth, strlen(auth));
		free(auth);
	}
	free(url);
	free(img);
	cJSON_Delete(doc);
	buf_free(&title);
	buf_free(&body);
	buf_free(&tmp);
	return rc;
}

const struct notifier notifier_opsgenie = {
	.type = "opsgenie",
	.config = &og_config,
	.check = og_check,
	.render = og_render,
	.per_reason = 1,
};
