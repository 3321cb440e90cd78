/*
 * teams.c: alerts to Microsoft Teams through a Workflows (Power Automate)
 * "When a Teams webhook request is received" flow, as an Adaptive Card.
 *
 * The body is the message-with-attachments form the Workflows trigger
 * takes: {"type": "message", "attachments": [{"contentType":
 * "application/vnd.microsoft.card.adaptive", "content": <card>}]}.  The
 * card (version 1.4, what Teams renders) holds the title (a bold
 * TextBlock), the body, a FactSet of the alert's facts and an
 * Action.OpenUrl to the job and to the pull request.  The webhook URL
 * carries its own signature: a secret (url_file, url_env).
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

#define TEAMS_TEXT_CAP	(16 * 1024)

static cJSON *
teams_text(const char *text, int bold)
{
	cJSON	*t = cJSON_CreateObject();

	cJSON_AddStringToObject(t, "type", "TextBlock");
	cJSON_AddStringToObject(t, "text", text);
	cJSON_AddBoolToObject(t, "wrap", 1);
	if (bold) {
		cJSON_AddStringToObject(t, "weight", "Bolder");
		cJSON_AddStringToObject(t, "size", "Medium");
	}
	return t;
}

static void
teams_open(cJSON *actions, const char *title, const char *url)
{
	cJSON	*a;

	if (url == NULL || *url == '\0')
		return;
	a = cJSON_CreateObject();
	cJSON_AddStringToObject(a, "type", "Action.OpenUrl");
	cJSON_AddStringToObject(a, "title", title);
	cJSON_AddStringToObject(a, "url", url);
	cJSON_AddItemToArray(actions, a);
}

static int
teams_render(const struct config_notifier *n, const struct notify_alert *a,
    struct notify_request *req, char *err, size_t errlen)
{
	const struct notifier_url_opts *o = n->opts;
	struct notifier_fact	 facts[NOTIFIER_FACTS_MAX];
	struct buf	 title, body;
	cJSON		*doc = NULL, *att, *card, *cbody, *set, *list, *f;
	size_t		 i, nfacts = 0;
	int		 rc = -1;

	buf_init(&title, TEAMS_TEXT_CAP);
	buf_init(&body, TEAMS_TEXT_CAP);
	memset(req, 0, sizeof(*req));
	if (o == NULL || o->url_secret == NULL) {
		snprintf(err, errlen, "no webhook URL (url_file)");
		goto out;
	}
	if (notifier_render_text(n, a, NULL, &title, &body, err, errlen)
	    == -1)
		goto out;
	doc = cJSON_CreateObject();
	cJSON_AddStringToObject(doc, "type", "message");
	att = cJSON_CreateObject();
	cJSON_AddItemToArray(cJSON_AddArrayToObject(doc, "attachments"), att);
	cJSON_AddStringToObject(att, "contentType",
	    "application/vnd.microsoft.card.adaptive");
	cJSON_AddNullToObject(att, "contentUrl");
	card = cJSON_AddObjectToObject(att, "content");
	cJSON_AddStringToObject(card, "$schema",
	    "http://adaptivecards.io/schemas/adaptive-card.json");
	cJSON_AddStringToObject(card, "type", "AdaptiveCard");
	cJSON_AddStringToObject(card, "version", "1.4");
	cbody = cJSON_AddArrayToObject(card, "body");
	cJSON_AddItemToArray(cbody, teams_text(title.data, 1));
	if (body.len > 0)
		cJSON_AddItemToArray(cbody, teams_text(body.data, 0));
	nfacts = notifier_facts(a, facts);
	set = cJSON_CreateObject();
	cJSON_AddStringToObject(set, "type", "FactSet");
	list = cJSON_AddArrayToObject(set, "facts");
	for (i = 0; i < nfacts; i++) {
		f = cJSON_CreateObject();
		cJSON_AddStringToObject(f, "title", facts[i].name);
		cJSON_AddStringToObject(f, "value", facts[i].value);
		cJSON_AddItemToArray(list, f);
	}
	cJSON_AddItemToArray(cbody, set);
	list = cJSON_AddArrayToObject(card, "actions");
	teams_open(list, "View job", a->url);
	teams_open(list, "Pull request", a->pr_url);
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

const struct notifier notifier_teams = {
	.type = "teams",
	.config = &notifier_url_config,
	.check = notifier_url_check,
	.render = teams_render,
};
