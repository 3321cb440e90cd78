/*
 * discord.c: alerts to a Discord channel webhook as an embed.
 *
 * {"embeds": [{"title", "description", "url", "color", "fields",
 * "timestamp", "footer"}], "allowed_mentions": {"parse": []}}: the title
 * links to the job, the body is the description, the alert's facts are
 * fields; red for a failure, green otherwise.  Discord's limits (title
 * 256, description 4096, field name 256 and value 1024 characters, 25
 * fields, 6000 for the whole embed) are applied here.  No mentions are
 * parsed, so an error text cannot ping @everyone.  Discord answers 429
 * with the wait in the body ({"retry_after": seconds, a float}); that is
 * the hint the retry honours.  The webhook URL holds its token: a secret.
 */
#include <math.h>
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

#define DISCORD_TITLE_MAX	256
#define DISCORD_DESC_MAX	4096
#define DISCORD_VALUE_MAX	1024	/* per field; less here, see render */
#define DISCORD_FACT_MAX	(DISCORD_VALUE_MAX / 3)
#define DISCORD_TEXT_CAP	(16 * 1024)
#define DISCORD_RED		0xd73a49
#define DISCORD_GREEN		0x2ea44f

static int
discord_render(const struct config_notifier *n, const struct notify_alert *a,
    struct notify_request *req, char *err, size_t errlen)
{
	const struct notifier_url_opts *o = n->opts;
	struct notifier_fact	 facts[NOTIFIER_FACTS_MAX];
	struct buf	 title, body;
	cJSON		*doc = NULL, *em, *fields, *f;
	char		 when[32];
	size_t		 i, nfacts = 0;
	int		 rc = -1;

	buf_init(&title, DISCORD_TEXT_CAP);
	buf_init(&body, DISCORD_TEXT_CAP);
	memset(req, 0, sizeof(*req));
	if (o == NULL || o->url_secret == NULL) {
		snprintf(err, errlen, "no webhook URL (url_file)");
		goto out;
	}
	if (notifier_render_text(n, a, NULL, &title, &body, err, errlen)
	    == -1)
		goto out;
	/* Bytes, not characters: a cut never exceeds the limit. */
	template_utf8_truncate(title.data, DISCORD_TITLE_MAX);
	/* The whole embed must stay under 6000: title 256, description
	 * 1500, 9 facts of at most 341 bytes. */
	template_utf8_truncate(body.data, 1500);
	doc = cJSON_CreateObject();
	em = cJSON_CreateObject();
	cJSON_AddItemToArray(cJSON_AddArrayToObject(doc, "embeds"), em);
	cJSON_AddStringToObject(em, "title", title.data);
	if (body.len > 0)
		cJSON_AddStringToObject(em, "description", body.data);
	if (a->url != NULL && *a->url != '\0')
		cJSON_AddStringToObject(em, "url", a->url);
	cJSON_AddNumberToObject(em, "color", notifier_is_resolve(a) ?
	    DISCORD_GREEN : DISCORD_RED);
	fields = cJSON_AddArrayToObject(em, "fields");
	nfacts = notifier_facts(a, facts);
	for (i = 0; i < nfacts; i++) {
		template_utf8_truncate(facts[i].value, DISCORD_FACT_MAX);
		f = cJSON_CreateObject();
		cJSON_AddStringToObject(f, "name", facts[i].name);
		cJSON_AddStringToObject(f, "value", facts[i].value);
		cJSON_AddBoolToObject(f, "inline",
		    strlen(facts[i].value) < 40);
		cJSON_AddItemToArray(fields, f);
	}
	if (a->time_ms > 0) {
		util_rfc3339(a->time_ms, when);
		cJSON_AddStringToObject(em, "timestamp", when);
	}
	cJSON_AddStringToObject(cJSON_AddObjectToObject(em, "footer"), "text",
	    "gitopsd");
	cJSON_AddArrayToObject(cJSON_AddObjectToObject(doc,
	    "allowed_mentions"), "parse");
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

/* 429 {"message": ..., "retry_after": 1.5, "global": false}. */
static int
discord_retry_after(long status, const char *body)
{
	cJSON		*doc;
	const cJSON	*v;
	int		 s = 0;

	if (status != 429 || (doc = cJSON_Parse(body)) == NULL)
		return 0;
	v = cJSON_GetObjectItemCaseSensitive(doc, "retry_after");
	if (cJSON_IsNumber(v) && v->valuedouble > 0 &&
	    v->valuedouble < 86400)
		s = (int)ceil(v->valuedouble);
	cJSON_Delete(doc);
	return s;
}

const struct notifier notifier_discord = {
	.type = "discord",
	.config = &notifier_url_config,
	.check = notifier_url_check,
	.render = discord_render,
	.retry_after = discord_retry_after,
};
