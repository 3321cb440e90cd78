/*
 * googlechat.c: alerts to a Google Chat space's incoming webhook as a
 * card (cardsV2).
 *
 * {"text": <title>, "cardsV2": [{"cardId": "gitopsd", "card": {"header":
 * {"title", "subtitle"}, "sections": [{"widgets": [textParagraph (the
 * body), decoratedText per fact, buttonList (job, pull request)]}]}}]}.
 * Card text takes a small HTML subset, so values are escaped (&, <, >).
 * The webhook URL holds its key and token: a secret.
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

#define GCHAT_TEXT_CAP	(16 * 1024)

static int
gchat_escape(const char *in, struct buf *out)
{
	const char	*p;

	for (p = in; *p != '\0'; p++) {
		const char *rep = *p == '&' ? "&amp;" : *p == '<' ? "&lt;" :
		    *p == '>' ? "&gt;" : NULL;

		if (rep != NULL ? buf_addstr(out, rep) : buf_add(out, p, 1))
			return -1;
	}
	return 0;
}

static void
gchat_button(cJSON *buttons, const char *text, const char *url)
{
	cJSON	*b;

	if (url == NULL || *url == '\0')
		return;
	b = cJSON_CreateObject();
	cJSON_AddStringToObject(b, "text", text);
	cJSON_AddStringToObject(cJSON_AddObjectToObject(cJSON_AddObjectToObject(
	    b, "onClick"), "openLink"), "url", url);
	cJSON_AddItemToArray(buttons, b);
}

static int
gchat_render(const struct config_notifier *n, const struct notify_alert *a,
    struct notify_request *req, char *err, size_t errlen)
{
	const struct notifier_url_opts *o = n->opts;
	struct notifier_fact	 facts[NOTIFIER_FACTS_MAX];
	struct buf	 title, body, v;
	cJSON		*doc = NULL, *c, *card, *hdr, *sec, *widgets, *w;
	cJSON		*buttons;
	size_t		 i, nfacts = 0;
	int		 rc = -1;

	buf_init(&title, GCHAT_TEXT_CAP);
	buf_init(&body, GCHAT_TEXT_CAP);
	buf_init(&v, 0);
	memset(req, 0, sizeof(*req));
	if (o == NULL || o->url_secret == NULL) {
		snprintf(err, errlen, "no webhook URL (url_file)");
		goto out;
	}
	if (notifier_render_text(n, a, gchat_escape, &title, &body, err,
	    errlen) == -1)
		goto out;
	template_utf8_truncate(body.data, 4000);
	doc = cJSON_CreateObject();
	cJSON_AddStringToObject(doc, "text", title.data);
	c = cJSON_CreateObject();
	cJSON_AddItemToArray(cJSON_AddArrayToObject(doc, "cardsV2"), c);
	cJSON_AddStringToObject(c, "cardId", "gitopsd");
	card = cJSON_AddObjectToObject(c, "card");
	hdr = cJSON_AddObjectToObject(card, "header");
	cJSON_AddStringToObject(hdr, "title", title.data);
	cJSON_AddStringToObject(hdr, "subtitle", "gitopsd");
	sec = cJSON_CreateObject();
	cJSON_AddItemToArray(cJSON_AddArrayToObject(card, "sections"), sec);
	widgets = cJSON_AddArrayToObject(sec, "widgets");
	if (body.len > 0) {
		w = cJSON_CreateObject();
		cJSON_AddStringToObject(cJSON_AddObjectToObject(w,
		    "textParagraph"), "text", body.data);
		cJSON_AddItemToArray(widgets, w);
	}
	nfacts = notifier_facts(a, facts);
	for (i = 0; i < nfacts; i++) {
		buf_reset(&v);
		(void)gchat_escape(facts[i].value, &v);
		template_utf8_truncate(v.data, 2000);
		w = cJSON_CreateObject();
		hdr = cJSON_AddObjectToObject(w, "decoratedText");
		cJSON_AddStringToObject(hdr, "topLabel", facts[i].name);
		cJSON_AddStringToObject(hdr, "text", v.data);
		cJSON_AddBoolToObject(hdr, "wrapText", 1);
		cJSON_AddItemToArray(widgets, w);
	}
	w = cJSON_CreateObject();
	buttons = cJSON_AddArrayToObject(cJSON_AddObjectToObject(w,
	    "buttonList"), "buttons");
	gchat_button(buttons, "View job", a->url);
	gchat_button(buttons, "Pull request", a->pr_url);
	if (cJSON_GetArraySize(buttons) > 0)
		cJSON_AddItemToArray(widgets, w);
	else
		cJSON_Delete(w);
	if (notifier_json_request(req, o->url_secret, doc, NULL, NULL, err,
	    errlen) == -1)
		goto out;
	/* Google Chat wants the charset named. */
	free(req->headers[0]);
	req->headers[0] = xstrdup("Content-Type: application/json; "
	    "charset=UTF-8");
	rc = 0;
out:
	if (rc == -1)
		notify_request_free(req);
	notifier_facts_free(facts, nfacts);
	cJSON_Delete(doc);
	buf_free(&title);
	buf_free(&body);
	buf_free(&v);
	return rc;
}

const struct notifier notifier_googlechat = {
	.type = "googlechat",
	.config = &notifier_url_config,
	.check = notifier_url_check,
	.render = gchat_render,
};
