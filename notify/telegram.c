/*
 * telegram.c: alerts through a Telegram bot (Bot API sendMessage).
 *
 * POST <api_url>/bot<token>/sendMessage with {"chat_id", "text",
 * "parse_mode": "HTML", "link_preview_options": {"is_disabled": true}}.
 * The text is the title in bold, the body, the facts and links; in HTML
 * parse mode only &, < and > (and " inside an attribute) need escaping,
 * so every value goes through telegram_escape().  Telegram caps a message
 * at 4096 characters: title, body and facts are each cut after escaping
 * (never inside an entity), and the whole at a line's end within 4000
 * bytes.  A 429 answer says
 * the wait in parameters.retry_after, the hint the retry honours.  The
 * bot token is a secret (bot_token_file, bot_token_env); it is part of
 * the URL, as the Bot API requires.
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

#define TG_TEXT_MAX	4000
#define TG_TITLE_MAX	256
#define TG_BODY_MAX	1800
#define TG_FACT_MAX	200
#define TG_TEXT_CAP	(16 * 1024)

struct tg_opts {
	char	*bot_token_file;
	char	*bot_token_env;
	char	*bot_token;
	char	*chat_id;
	char	*api_url;
	char	*ca_file;
};

#define O(field)	offsetof(struct tg_opts, field)

static const struct config_key tg_keys[] = {
	{ "bot_token_file", T_SECRET_FILE,
	  .off = O(bot_token_file), .off2 = O(bot_token),
	  .help = "telegram: file holding the bot token" },
	{ "bot_token_env", T_SECRET_ENV,
	  .off = O(bot_token_env), .off2 = O(bot_token),
	  .help = "telegram: environment variable holding the bot token" },
	{ "chat_id", T_STR,
	  .off = O(chat_id), .flags = KEY_REQUIRED,
	  .help = "telegram: chat id (a number) or @channelusername" },
	{ "api_url", T_STR,
	  .off = O(api_url), .def = "https://api.telegram.org",
	  .help = "pagerduty, opsgenie, telegram: API base URL (opsgenie "
	    "EU: https://api.eu.opsgenie.com)" },
	NOTIFIER_KEY_CA_FILE(O(ca_file)),
};

#undef O

static void
tg_config_check(struct config_walk *w, void *opts,
    const struct config_node *map, const struct config_node *at)
{
	(void)opts;
	notifier_require_secret(w, map, at, "telegram", "bot_token");
}

static const struct config_plugin tg_config =
    CONFIG_PLUGIN(struct tg_opts, tg_keys, tg_config_check);

static int
tg_check(const struct config *cfg, const struct config_notifier *n,
    size_t index, struct config_errors *errs)
{
	const struct tg_opts	*o = n->opts;
	char			 key[96];
	size_t			 before = errs->n;

	template_check_notifier(cfg, n, index, errs);
	if (o == NULL)
		return (int)(errs->n - before);
	snprintf(key, sizeof(key), "notifiers[%zu].api_url", index);
	notifier_check_http_url(cfg, errs, key, o->api_url);
	return (int)(errs->n - before);
}

/* HTML parse mode: &, <, > and " are the only entities it knows. */
static int
telegram_escape(const char *in, struct buf *out)
{
	const char	*p;

	for (p = in; *p != '\0'; p++) {
		const char *rep = *p == '&' ? "&amp;" : *p == '<' ? "&lt;" :
		    *p == '>' ? "&gt;" : *p == '"' ? "&quot;" : NULL;

		if (rep != NULL ? buf_addstr(out, rep) : buf_add(out, p, 1))
			return -1;
	}
	return 0;
}

/* s escaped, at most max bytes of it: a cut entity is dropped whole. */
static void
tg_add_escaped(struct buf *out, const char *s, size_t max)
{
	struct buf	 e;
	char		*amp;

	buf_init(&e, 0);
	(void)telegram_escape(s, &e);
	if (e.len > max) {
		template_utf8_truncate(e.data, max);
		if ((amp = strrchr(e.data, '&')) != NULL &&
		    strchr(amp, ';') == NULL)
			*amp = '\0';
	}
	(void)buf_addstr(out, e.data);
	buf_free(&e);
}

static void
tg_link(struct buf *b, const char *url, const char *label)
{
	if (url == NULL || *url == '\0')
		return;
	(void)buf_addstr(b, "\n<a href=\"");
	(void)telegram_escape(url, b);
	(void)buf_printf(b, "\">%s</a>", label);
}

static int
tg_render(const struct config_notifier *n, const struct notify_alert *a,
    struct notify_request *req, char *err, size_t errlen)
{
	const struct tg_opts	*o = n->opts;
	struct notifier_fact	 facts[NOTIFIER_FACTS_MAX];
	struct buf	 title, body, text;
	cJSON		*doc = NULL;
	char		*url = NULL, *path = NULL;
	size_t		 i, nfacts = 0, cut;
	int		 rc = -1;

	buf_init(&title, TG_TEXT_CAP);
	buf_init(&body, TG_TEXT_CAP);
	buf_init(&text, 0);
	memset(req, 0, sizeof(*req));
	if (o == NULL || o->bot_token == NULL || o->chat_id == NULL) {
		snprintf(err, errlen, "no bot token or chat_id");
		goto out;
	}
	if (template_render_title(n, a, NULL, &title) == -1 ||
	    template_render_body(n, a, NULL, &body) == -1) {
		snprintf(err, errlen, "title or body template too long or "
		    "invalid");
		goto out;
	}
	notifier_one_line(title.data);
	(void)buf_addstr(&text, "<b>");
	tg_add_escaped(&text, title.data[0] != '\0' ? title.data :
	    "gitopsd alert", TG_TITLE_MAX);
	(void)buf_addstr(&text, "</b>");
	if (body.data[0] != '\0') {
		(void)buf_addstr(&text, "\n\n");
		tg_add_escaped(&text, body.data, TG_BODY_MAX);
	}
	/* The links before the facts: a cut text keeps them. */
	(void)buf_addstr(&text, "\n");
	tg_link(&text, a->url, "View job");
	tg_link(&text, a->pr_url, "Pull request");
	(void)buf_addstr(&text, "\n");
	nfacts = notifier_facts(a, facts);
	for (i = 0; i < nfacts; i++) {
		(void)buf_printf(&text, "\n<b>%s</b>: ", facts[i].name);
		tg_add_escaped(&text, facts[i].value, TG_FACT_MAX);
	}
	if (text.len > TG_TEXT_MAX) {
		/* At a line's end: every tag and entity is within a line. */
		cut = TG_TEXT_MAX;
		while (cut > 0 && text.data[cut] != '\n')
			cut--;
		text.data[cut] = '\0';
		text.len = cut;
	}
	doc = cJSON_CreateObject();
	cJSON_AddStringToObject(doc, "chat_id", o->chat_id);
	cJSON_AddStringToObject(doc, "text", text.data);
	cJSON_AddStringToObject(doc, "parse_mode", "HTML");
	cJSON_AddBoolToObject(cJSON_AddObjectToObject(doc,
	    "link_preview_options"), "is_disabled", 1);
	path = xasprintf("/bot%s/sendMessage", o->bot_token);
	url = notifier_api_url(o->api_url, path);
	if (notifier_json_request(req, url, doc, NULL, o->ca_file, err,
	    errlen) == -1)
		goto out;
	rc = 0;
out:
	if (rc == -1)
		notify_request_free(req);
	notifier_facts_free(facts, nfacts);
	if (url != NULL) {
		explicit_bzero(url, strlen(url));
		free(url);
	}
	if (path != NULL) {
		explicit_bzero(path, strlen(path));
		free(path);
	}
	cJSON_Delete(doc);
	buf_free(&title);
	buf_free(&body);
	buf_free(&text);
	return rc;
}

/* 429 {"ok": false, "error_code": 429, "parameters": {"retry_after": N}}. */
static int
tg_retry_after(long status, const char *body)
{
	cJSON		*doc;
	const cJSON	*v;
	int		 s = 0;

	if (status != 429 || (doc = cJSON_Parse(body)) == NULL)
		return 0;
	v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(
	    doc, "parameters"), "retry_after");
	if (cJSON_IsNumber(v) && v->valuedouble > 0 &&
	    v->valuedouble < 86400)
		s = (int)v->valuedouble;
	cJSON_Delete(doc);
	return s;
}

const struct notifier notifier_telegram = {
	.type = "telegram",
	.config = &tg_config,
	.check = tg_check,
	.render = tg_render,
	.retry_after = tg_retry_after,
};
