/*
 * slack.c: alerts to a Slack incoming webhook as Block Kit messages.
 *
 * The message has a plain `text` (the fallback shown in notifications) and
 * `blocks`: a header (the title), a section (the body, mrkdwn), a section
 * of fields (app, what failed, revision or image, delivery, attempts) and
 * a context line (link and time).  Values are escaped for mrkdwn (&, <, >)
 * and the JSON is built with cJSON.  Slack's limits (header 150, section
 * 3000, field 2000 characters) are applied here so Slack never refuses a
 * long reason.
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

#define SLACK_HEADER_MAX	150
#define SLACK_SECTION_MAX	3000
#define SLACK_FIELD_MAX		2000
#define SLACK_TEXT_CAP		(64 * 1024)

/* Slack mrkdwn: only &, < and > are control characters. */
static int
slack_escape(const char *in, struct buf *out)
{
	const char	*p;

	for (p = in; *p != '\0'; p++) {
		const char *rep = NULL;

		if (*p == '&')
			rep = "&amp;";
		else if (*p == '<')
			rep = "&lt;";
		else if (*p == '>')
			rep = "&gt;";
		if (rep != NULL ? buf_addstr(out, rep) : buf_add(out, p, 1))
			return -1;
	}
	return 0;
}

/* A Slack incoming-webhook URL is a secret: only from a file or the
 * environment. */
struct slack_opts {
	char	*url_file;
	char	*url_env;
	char	*url_secret;		/* the URL itself */
};

static const struct config_key slack_keys[] = {
	{ "url", T_STR,
	  .flags = KEY_REFUSED,
	  .help = "refused: a Slack webhook URL is a secret" },
	{ "url_file", T_SECRET_FILE,
	  .off = offsetof(struct slack_opts, url_file),
	  .off2 = offsetof(struct slack_opts, url_secret),
	  .help = "file holding the URL (slack incoming webhook)" },
	{ "url_env", T_SECRET_ENV,
	  .off = offsetof(struct slack_opts, url_env),
	  .off2 = offsetof(struct slack_opts, url_secret),
	  .help = "environment variable holding the URL" },
};

static void
slack_config_check(struct config_walk *w, void *opts,
    const struct config_node *map, const struct config_node *at)
{
	(void)opts;
	if (config_node_has(map, "url"))
		config_walk_error(w, config_node_get_key(map, "url"), "url",
		    "inline secrets are not allowed; a Slack webhook URL "
		    "is a secret: use url_file or url_env");
	else
		notifier_require_secret(w, map, at, "slack", "url");
}

static const struct config_plugin slack_config =
    CONFIG_PLUGIN(struct slack_opts, slack_keys, slack_config_check);

static int
slack_check(const struct config *cfg, const struct config_notifier *n,
    size_t index, struct config_errors *errs)
{
	const struct slack_opts	*o = n->opts;
	char			 key[64];
	size_t			 before = errs->n;

	template_check_notifier(cfg, n, index, errs);
	snprintf(key, sizeof(key), "notifiers[%zu].url_file", index);
	if (o != NULL && o->url_secret != NULL &&
	    strncmp(o->url_secret, "https://", 8) != 0 &&
	    strncmp(o->url_secret, "http://", 7) != 0)
		config_error_at(cfg, errs, key, "the file does not hold an "
		    "http(s) URL");
	return (int)(errs->n - before);
}

/* A "*Name*\nvalue" mrkdwn field; skipped when value is empty. */
static void
slack_field(cJSON *fields, const char *name, const char *value, int code)
{
	struct buf	 b;
	cJSON		*f;

	if (value == NULL || *value == '\0')
		return;
	buf_init(&b, 0);
	(void)buf_printf(&b, "*%s*\n%s", name, code ? "`" : "");
	(void)slack_escape(value, &b);
	if (code)
		(void)buf_addstr(&b, "`");
	template_utf8_truncate(b.data, SLACK_FIELD_MAX);
	f = cJSON_CreateObject();
	cJSON_AddStringToObject(f, "type", "mrkdwn");
	cJSON_AddStringToObject(f, "text", b.data);
	cJSON_AddItemToArray(fields, f);
	buf_free(&b);
}

static cJSON *
slack_text(const char *type, const char *text)
{
	cJSON	*t = cJSON_CreateObject();

	cJSON_AddStringToObject(t, "type", type);
	cJSON_AddStringToObject(t, "text", text);
	return t;
}

static int
slack_render(const struct config_notifier *n, const struct notify_alert *a,
    struct notify_request *req, char *err, size_t errlen)
{
	const struct slack_opts	*o = n->opts;
	struct buf	 title, body, text, tmp;
	cJSON		*doc = NULL, *blocks, *blk, *fields, *elems;
	char		*json = NULL, when[32];
	int		 rc = -1;

	buf_init(&title, SLACK_TEXT_CAP);
	buf_init(&body, SLACK_TEXT_CAP);
	buf_init(&text, 0);
	buf_init(&tmp, 0);
	if (o == NULL || o->url_secret == NULL) {
		snprintf(err, errlen, "no webhook URL (url_file)");
		goto out;
	}
	/* The header block is plain_text: no mrkdwn escaping there. */
	if (template_render_title(n, a, NULL, &title) == -1 ||
	    template_render_body(n, a, slack_escape, &body) == -1) {
		snprintf(err, errlen, "title or body template too long or "
		    "invalid");
		goto out;
	}
	notifier_one_line(title.data);
	template_utf8_truncate(title.data, SLACK_HEADER_MAX);
	template_utf8_truncate(body.data, SLACK_SECTION_MAX);
	if (title.data[0] == '\0')
		(void)buf_addstr(&title, "gitopsd alert");

	doc = cJSON_CreateObject();
	(void)slack_escape(title.data, &text);
	if (body.len > 0)
		(void)buf_printf(&text, "\n%s", body.data);
	cJSON_AddStringToObject(doc, "text", text.data);
	blocks = cJSON_AddArrayToObject(doc, "blocks");

	blk = cJSON_CreateObject();
	cJSON_AddStringToObject(blk, "type", "header");
	cJSON_AddItemToObject(blk, "text", slack_text("plain_text", title.data));
	cJSON_AddItemToArray(blocks, blk);

	if (body.len > 0) {
		blk = cJSON_CreateObject();
		cJSON_AddStringToObject(blk, "type", "section");
		cJSON_AddItemToObject(blk, "text", slack_text("mrkdwn",
		    body.data));
		cJSON_AddItemToArray(blocks, blk);
	}

	blk = cJSON_CreateObject();
	cJSON_AddStringToObject(blk, "type", "section");
	fields = cJSON_AddArrayToObject(blk, "fields");
	slack_field(fields, "App", a->app, 0);
	buf_reset(&tmp);
	(void)buf_printf(&tmp, "%s job %lld", a->kind != NULL ? a->kind : "",
	    (long long)a->job_id);
	slack_field(fields, "Job", tmp.data, 0);
	if (a->reason_kind != NULL && strcmp(a->reason_kind, "none") != 0) {
		buf_reset(&tmp);
		(void)buf_addstr(&tmp, a->reason_kind);
		if (a->object != NULL && *a->object != '\0')
			(void)buf_printf(&tmp, " (%s)", a->object);
		slack_field(fields, "Failure", tmp.data, 0);
	}
	if (a->reason != NULL && strcmp(a->event, "job.failed") == 0)
		slack_field(fields, "Reason", a->reason, 0);
	slack_field(fields, "Revision", a->revision, 1);
	if (a->image != NULL && *a->image != '\0') {
		buf_reset(&tmp);
		(void)buf_printf(&tmp, "%s%s%s", a->image,
		    a->tag != NULL ? ":" : "", a->tag != NULL ? a->tag : "");
		slack_field(fields, "Image", tmp.data, 1);
	}
	slack_field(fields, "Delivery", a->delivery, 1);
	buf_reset(&tmp);
	(void)buf_printf(&tmp, "%d", a->attempts);
	slack_field(fields, "Attempts", tmp.data, 0);
	cJSON_AddItemToArray(blocks, blk);

	blk = cJSON_CreateObject();
	cJSON_AddStringToObject(blk, "type", "context");
	elems = cJSON_AddArrayToObject(blk, "elements");
	buf_reset(&tmp);
	util_rfc3339(a->time_ms, when);
	/* A link's URL cannot hold '|' or '>' inside <url|label>. */
	if (a->url != NULL && *a->url != '\0' && strpbrk(a->url, "|<> ") == NULL)
		(void)buf_printf(&tmp, "<%s|View job %lld> · ", a->url,
		    (long long)a->job_id);
	(void)buf_printf(&tmp, "gitopsd · %s", when);
	cJSON_AddItemToArray(elems, slack_text("mrkdwn", tmp.data));
	cJSON_AddItemToArray(blocks, blk);

	if ((json = cJSON_PrintUnformatted(doc)) == NULL) {
		snprintf(err, errlen, "cannot encode JSON");
		goto out;
	}
	memset(req, 0, sizeof(*req));
	req->url = xstrdup(o->url_secret);
	req->headers = xcalloc(1, sizeof(char *));
	req->headers[0] = xstrdup("Content-Type: application/json; charset=utf-8");
	req->nheaders = 1;
	req->body = xstrdup(json);
	req->body_len = strlen(json);
	rc = 0;
out:
	cJSON_free(json);
	cJSON_Delete(doc);
	buf_free(&title);
	buf_free(&body);
	buf_free(&text);
	buf_free(&tmp);
	return rc;
}

const struct notifier notifier_slack = {
	.type = "slack",
	.config = &slack_config,
	.check = slack_check,
	.render = slack_render,
};
