/*
 * mattermost.c: alerts to a Mattermost incoming webhook as a message
 * attachment.
 *
 * {"text": <title>, "attachments": [{"fallback", "color", "title",
 * "title_link" (the job), "text" (the body), "fields": [{"short",
 * "title", "value"}], "footer"}]}: Slack's attachment format, which
 * Mattermost's webhooks take.  Text is Markdown; values are set as they
 * are.  The webhook URL is a secret (url_file, url_env).
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

#define MM_TEXT_CAP	(16 * 1024)
#define MM_TEXT_MAX	8000	/* of a post's 16383 characters */

static int
mm_render(const struct config_notifier *n, const struct notify_alert *a,
    struct notify_request *req, char *err, size_t errlen)
{
	const struct notifier_url_opts *o = n->opts;
	struct notifier_fact	 facts[NOTIFIER_FACTS_MAX];
	struct buf	 title, body;
	cJSON		*doc = NULL, *att, *fields, *f;
	size_t		 i, nfacts = 0;
	int		 rc = -1;

	buf_init(&title, MM_TEXT_CAP);
	buf_init(&body, MM_TEXT_CAP);
	memset(req, 0, sizeof(*req));
	if (o == NULL || o->url_secret == NULL) {
		snprintf(err, errlen, "no webhook URL (url_file)");
		goto out;
	}
	if (notifier_render_text(n, a, NULL, &title, &body, err, errlen)
	    == -1)
		goto out;
	template_utf8_truncate(body.data, MM_TEXT_MAX);
	doc = cJSON_CreateObject();
	cJSON_AddStringToObject(doc, "text", title.data);
	att = cJSON_CreateObject();
	cJSON_AddItemToArray(cJSON_AddArrayToObject(doc, "attachments"), att);
	cJSON_AddStringToObject(att, "fallback", title.data);
	cJSON_AddStringToObject(att, "color", notifier_is_resolve(a) ?
	    "#2ea44f" : "#d73a49");
	cJSON_AddStringToObject(att, "title", title.data);
	if (a->url != NULL && *a->url != '\0')
		cJSON_AddStringToObject(att, "title_link", a->url);
	if (body.len > 0)
		cJSON_AddStringToObject(att, "text", body.data);
	fields = cJSON_AddArrayToObject(att, "fields");
	nfacts = notifier_facts(a, facts);
	for (i = 0; i < nfacts; i++) {
		template_utf8_truncate(facts[i].value, 1000);
		f = cJSON_CreateObject();
		cJSON_AddBoolToObject(f, "short", strlen(facts[i].value) < 40);
		cJSON_AddStringToObject(f, "title", facts[i].name);
		cJSON_AddStringToObject(f, "value", facts[i].value);
		cJSON_AddItemToArray(fields, f);
	}
	cJSON_AddStringToObject(att, "footer", "gitopsd");
	if (notifier_json_request(req, o->url_secret, doc, NULL, NULL, err,
	    errlen) == -1)
		goto out;
	rc = 0;
out:
	if (rc == -1)
		notify_request_free(req);
	notifier_facts_free(facts, nfacts);
	cJSON_Delete(doc);
	buf_free(&title);
	buf_free(&body);
	return rc;
}

const struct notifier notifier_mattermost = {
	.type = "mattermost",
	.config = &notifier_url_config,
	.check = notifier_url_check,
	.render = mm_render,
};
