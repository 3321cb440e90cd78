/*
 * alertmanager.c: alerts to Prometheus Alertmanager (POST /api/v2/alerts).
 *
 * An app's failure is one alert, identified as Alertmanager identifies
 * alerts: by its label set (alertname, app, cluster, severity and the
 * configured extra labels; nothing that changes between a failure and its
 * recovery).  The recovery posts the same labels with endsAt now, which
 * resolves it.  Both come from the alert's own fields, so a restart
 * between the two resolves the right alert.
 *
 * As Prometheus does, a firing alert is re-sent while the app keeps
 * failing, every resend_interval_s (the newest failure alert from the
 * outbox, queued again by the replica holding the periodic role; queue.c),
 * each time with endsAt four intervals ahead.  An alert gitopsd can no
 * longer renew or resolve (gitopsd gone, notifier removed) then ends by
 * itself a few minutes later instead of firing forever, and one missed
 * re-send does not end it.
 *
 * Several `url`s (an Alertmanager cluster: like Prometheus, send to every
 * member) are several targets: one notify job each.
 */
#include <ctype.h>
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

#define AM_TEXT_CAP	(16 * 1024)
/* endsAt of a firing alert, in resend intervals (Prometheus: 4). */
#define AM_RESEND_ENDS	4

struct am_opts {
	char			**urls;
	size_t			  nurls;
	char			 *alertname;
	char			 *severity;
	struct config_header	 *labels;
	size_t			  nlabels;
	int			  resend_interval_s;
	char			 *ca_file;
};

#define O(field)	offsetof(struct am_opts, field)

static const struct config_key am_keys[] = {
	{ "url", T_STRLIST,
	  .off = O(urls), .off2 = O(nurls), .flags = KEY_ONE_OR_LIST,
	  .help = "alertmanager: base URL, or a list of them (every member "
	    "of a cluster)" },
	{ "alertname", T_STR,
	  .off = O(alertname), .def = "GitopsdAppFailing",
	  .help = "alertmanager: the alertname label" },
	{ "severity", T_STR,
	  .off = O(severity), .def = "error",
	  .help = "alertmanager: the severity label; pagerduty: critical, "
	    "error, warning or info" },
	{ "labels", T_HEADERS,
	  .off = O(labels), .off2 = O(nlabels),
	  .help = "alertmanager: extra labels, name: value" },
	{ "resend_interval_s", T_INT,
	  .off = O(resend_interval_s), .min = 5, .max = 86400, .def = "60",
	  .help = "alertmanager: a firing alert is sent again this often "
	    "while the app fails, with endsAt four intervals ahead" },
	NOTIFIER_KEY_CA_FILE(O(ca_file)),
};

#undef O

static void
am_config_check(struct config_walk *w, void *opts,
    const struct config_node *map, const struct config_node *at)
{
	(void)opts;
	if (!config_node_has(map, "url"))
		config_walk_error(w, at, "url", "missing required key "
		    "(alertmanager needs url)");
}

static const struct config_plugin am_config =
    CONFIG_PLUGIN(struct am_opts, am_keys, am_config_check);

/* A Prometheus label name: [a-zA-Z_][a-zA-Z0-9_]*. */
static int
am_label_name_ok(const char *s)
{
	if (*s == '\0' || isdigit((unsigned char)*s))
		return 0;
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && *s != '_')
			return 0;
	return 1;
}

/* Labels gitopsd sets from the alert; the config cannot replace them. */
static const char *const am_reserved[] = {
	"alertname", "app", "cluster", "severity",
};

static int
am_check(const struct config *cfg, const struct config_notifier *n,
    size_t index, struct config_errors *errs)
{
	const struct am_opts	*o = n->opts;
	char			 key[128];
	size_t			 i, j, before = errs->n;

	template_check_notifier(cfg, n, index, errs);
	if (o == NULL)
		return (int)(errs->n - before);
	for (i = 0; i < o->nurls; i++) {
		snprintf(key, sizeof(key), "notifiers[%zu].url[%zu]", index, i);
		notifier_check_http_url(cfg, errs, key, o->urls[i]);
	}
	snprintf(key, sizeof(key), "notifiers[%zu].alertname", index);
	if (o->alertname == NULL || *o->alertname == '\0')
		config_error_at(cfg, errs, key, "must not be empty");
	snprintf(key, sizeof(key), "notifiers[%zu].severity", index);
	if (o->severity == NULL || *o->severity == '\0')
		config_error_at(cfg, errs, key, "must not be empty");
	for (i = 0; i < o->nlabels; i++) {
		snprintf(key, sizeof(key), "notifiers[%zu].labels.%s", index,
		    o->labels[i].name);
		if (!am_label_name_ok(o->labels[i].name))
			config_error_at(cfg, errs, key, "not a valid label "
			    "name ([a-zA-Z_][a-zA-Z0-9_]*)");
		for (j = 0; j < nitems(am_reserved); j++)
			if (strcmp(o->labels[i].name, am_reserved[j]) == 0)
				config_error_at(cfg, errs, key, "set by "
				    "gitopsd (alertname and severity have "
				    "keys of their own)");
		if (o->labels[i].value == NULL || *o->labels[i].value == '\0')
			config_error_at(cfg, errs, key, "an empty label is no "
			    "label");
	}
	return (int)(errs->n - before);
}

static size_t
am_targets(const struct config_notifier *n)
{
	const struct am_opts	*o = n->opts;

	return o != NULL && o->nurls > 0 ? o->nurls : 1;
}

static int
am_resend_s(const struct config_notifier *n)
{
	const struct am_opts	*o = n->opts;

	return o != NULL ? o->resend_interval_s : 0;
}

static void
am_add(cJSON *obj, const char *k, const char *v)
{
	if (v != NULL && *v != '\0')
		cJSON_AddStringToObject(obj, k, v);
}

static int
am_render(const struct config_notifier *n, const struct notify_alert *a,
    struct notify_request *req, char *err, size_t errlen)
{
	const struct am_opts	*o = n->opts;
	struct buf	 title, body;
	cJSON		*doc = NULL, *al, *labels, *ann;
	char		*url = NULL, *img = NULL, starts[32], ends[32];
	int64_t		 now = util_now_ms(), t;
	size_t		 i;
	int		 rc = -1;

	buf_init(&title, AM_TEXT_CAP);
	buf_init(&body, AM_TEXT_CAP);
	memset(req, 0, sizeof(*req));
	if (o == NULL || o->nurls == 0 || a->target < 0 ||
	    (size_t)a->target >= o->nurls) {
		snprintf(err, errlen, "no Alertmanager URL for target %d",
		    a->target);
		goto out;
	}
	if (template_render_title(n, a, NULL, &title) == -1 ||
	    template_render_body(n, a, NULL, &body) == -1) {
		snprintf(err, errlen, "title or body template too long or "
		    "invalid");
		goto out;
	}
	doc = cJSON_CreateArray();
	al = cJSON_CreateObject();
	cJSON_AddItemToArray(doc, al);
	labels = cJSON_AddObjectToObject(al, "labels");
	cJSON_AddStringToObject(labels, "alertname", o->alertname);
	am_add(labels, "app", a->app);
	am_add(labels, "cluster", a->cluster);
	cJSON_AddStringToObject(labels, "severity", o->severity);
	for (i = 0; i < o->nlabels; i++)
		am_add(labels, o->labels[i].name, o->labels[i].value);

	ann = cJSON_AddObjectToObject(al, "annotations");
	am_add(ann, "summary", title.data);
	am_add(ann, "description", body.data);
	if (!notifier_is_resolve(a))
		am_add(ann, "error", a->reason);
	am_add(ann, "error_kind", a->reason_kind);
	am_add(ann, "revision", a->revision);
	am_add(ann, "image", img = notifier_image_ref(a));
	am_add(ann, "job_url", a->url);
	am_add(ann, "pr_url", a->pr_url);
	am_add(al, "generatorURL", a->url);

	/*
	 * A resolve names no start of its own: startsAt == endsAt passes
	 * the API's check, and Alertmanager keeps the firing alert's start
	 * when it merges the two.
	 */
	t = a->time_ms > 0 ? a->time_ms : now;
	if (notifier_is_resolve(a)) {
		util_rfc3339(t, starts);
		util_rfc3339(t, ends);
	} else {
		util_rfc3339(t, starts);
		util_rfc3339((now > t ? now : t) + AM_RESEND_ENDS *
		    (int64_t)o->resend_interval_s * 1000, ends);
	}
	cJSON_AddStringToObject(al, "startsAt", starts);
	cJSON_AddStringToObject(al, "endsAt", ends);

	url = notifier_api_url(o->urls[a->target], "/api/v2/alerts");
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

const struct notifier notifier_alertmanager = {
	.type = "alertmanager",
	.config = &am_config,
	.check = am_check,
	.render = am_render,
	.targets = am_targets,
	.resend_s = am_resend_s,
};
