/*
 * webhook.c: alerts as a JSON POST to any HTTP endpoint.
 *
 * Body (docs/alerts.md): {"event", "app", "job", "kind", "reason",
 * "reason_kind", "object", "revision", "image", "tag", "delivery",
 * "attempts", "url", "time", "alert_id", "title", "text"}.  Headers:
 * X-Gitopsd-Event, X-Gitopsd-Delivery (the alert id: the same on every
 * retry, so receivers can drop repeats) and, with a secret,
 * X-Gitopsd-Signature-256: sha256=<hex HMAC-SHA256 of the body>.
 */
#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "config_schema.h"
#include "notifier.h"
#include "template.h"
#include "util.h"

#define WEBHOOK_TEXT_CAP	(64 * 1024)

/* Header names gitopsd sets itself; config may not override them. */
static const char *const webhook_reserved[] = {
	"content-type", "content-length", "host", "transfer-encoding",
	"x-gitopsd-event", "x-gitopsd-delivery", "x-gitopsd-signature-256",
};

struct webhook_opts {
	char			*url;		/* inline, or: */
	char			*url_file;
	char			*url_env;
	char			*url_secret;	/* ... the URL from either */
	char			*secret_file;
	char			*secret_env;
	char			*secret;	/* HMAC-SHA256 key */
	struct config_header	*headers;
	size_t			 nheaders;
	char			*ca_file;
};

#define O(field)	offsetof(struct webhook_opts, field)

static const struct config_key webhook_keys[] = {
	{ "url", T_STR,
	  .off = O(url),
	  .help = "webhook: target URL (not for slack: its URL is a secret)" },
	{ "url_file", T_SECRET_FILE,
	  .off = O(url_file), .off2 = O(url_secret),
	  .help = "file holding the URL" },
	{ "url_env", T_SECRET_ENV,
	  .off = O(url_env), .off2 = O(url_secret),
	  .help = "environment variable holding the URL" },
	{ "secret_file", T_SECRET_FILE,
	  .off = O(secret_file), .off2 = O(secret),
	  .help = "webhook: file holding the HMAC-SHA256 signing key" },
	{ "secret_env", T_SECRET_ENV,
	  .off = O(secret_env), .off2 = O(secret),
	  .help = "webhook: environment variable holding the signing key" },
	{ "headers", T_HEADERS,
	  .off = O(headers), .off2 = O(nheaders),
	  .help = "webhook: extra request headers, name: value" },
	NOTIFIER_KEY_CA_FILE(O(ca_file)),
};

#undef O

/* The URL comes inline or as a secret, never both. */
static void
webhook_config_check(struct config_walk *w, void *opts,
    const struct config_node *map, const struct config_node *at)
{
	int	 has_secret = config_node_has(map, "url_file") ||
		    config_node_has(map, "url_env");

	(void)opts;
	if (config_node_has(map, "url") && has_secret)
		config_walk_error(w, config_node_get_key(map, "url"), "url",
		    "set url or url_file/url_env, not both");
	else if (!config_node_has(map, "url") && !has_secret)
		config_walk_error(w, at, "url", "missing required key "
		    "(webhook needs url, url_file or url_env)");
}

static const struct config_plugin webhook_config =
    CONFIG_PLUGIN(struct webhook_opts, webhook_keys, webhook_config_check);

/* An RFC 9110 token. */
static int
webhook_is_token(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && strchr("!#$%&'*+-.^_`|~", *s)
		    == NULL)
			return 0;
	return 1;
}

static int
webhook_check(const struct config *cfg, const struct config_notifier *n,
    size_t index, struct config_errors *errs)
{
	const struct webhook_opts *o = n->opts;
	char		 key[96];
	const char	*url;
	size_t		 i, j, before = errs->n;

	template_check_notifier(cfg, n, index, errs);
	if (o == NULL)
		return (int)(errs->n - before);
	url = o->url != NULL ? o->url : o->url_secret;
	snprintf(key, sizeof(key), "notifiers[%zu].%s", index,
	    o->url != NULL ? "url" : "url_file");
	if (url != NULL && strncmp(url, "https://", 8) != 0 &&
	    strncmp(url, "http://", 7) != 0)
		config_error_at(cfg, errs, key, "must be an http(s) URL");
	for (i = 0; i < o->nheaders; i++) {
		const struct config_header *h = &o->headers[i];

		snprintf(key, sizeof(key), "notifiers[%zu].headers.%s", index,
		    h->name);
		if (!webhook_is_token(h->name)) {
			config_error_at(cfg, errs, key, "not a valid header "
			    "name");
			continue;
		}
		for (j = 0; j < nitems(webhook_reserved); j++)
			if (strcasecmp(h->name, webhook_reserved[j]) == 0)
				config_error_at(cfg, errs, key, "set by "
				    "gitopsd; cannot be overridden");
		if (h->value != NULL && strpbrk(h->value, "\r\n") != NULL)
			config_error_at(cfg, errs, key, "a header value cannot "
			    "hold a line break");
	}
	return (int)(errs->n - before);
}

static void
webhook_add_str(cJSON *o, const char *k, const char *v)
{
	if (v != NULL)
		cJSON_AddStringToObject(o, k, v);
	else
		cJSON_AddNullToObject(o, k);
}

static void
webhook_add_header(struct notify_request *req, const char *name,
    const char *value)
{
	char	*v = template_header_clean(value);

	req->headers = xreallocarray(req->headers, req->nheaders + 1,
	    sizeof(char *));
	req->headers[req->nheaders++] = xasprintf("%s: %s", name, v);
	free(v);
}

static int
webhook_render(const struct config_notifier *n, const struct notify_alert *a,
    struct notify_request *req, char *err, size_t errlen)
{
	const struct webhook_opts *o = n->opts;
	struct buf	 title, body;
	cJSON		*doc = NULL;
	char		*json = NULL, when[32], sig[65];
	const char	*url = o == NULL ? NULL : o->url != NULL ? o->url :
			    o->url_secret;
	size_t		 i;
	int		 rc = -1;

	buf_init(&title, WEBHOOK_TEXT_CAP);
	buf_init(&body, WEBHOOK_TEXT_CAP);
	memset(req, 0, sizeof(*req));
	if (url == NULL) {
		snprintf(err, errlen, "no URL (url or url_file)");
		goto out;
	}
	if (template_render_title(n, a, NULL, &title) == -1 ||
	    template_render_body(n, a, NULL, &body) == -1) {
		snprintf(err, errlen, "title or body template too long or "
		    "invalid");
		goto out;
	}
	doc = cJSON_CreateObject();
	webhook_add_str(doc, "event", a->event);
	webhook_add_str(doc, "app", a->app);
	cJSON_AddNumberToObject(doc, "job", (double)a->job_id);
	webhook_add_str(doc, "kind", a->kind);
	webhook_add_str(doc, "reason", a->reason);
	webhook_add_str(doc, "reason_kind", a->reason_kind);
	webhook_add_str(doc, "object", a->object);
	webhook_add_str(doc, "revision", a->revision);
	webhook_add_str(doc, "image", a->image);
	webhook_add_str(doc, "tag", a->tag);
	webhook_add_str(doc, "delivery", a->delivery);
	cJSON_AddNumberToObject(doc, "attempts", a->attempts);
	webhook_add_str(doc, "url", a->url);
	webhook_add_str(doc, "pr_url", a->pr_url);
	util_rfc3339(a->time_ms, when);
	webhook_add_str(doc, "time", when);
	webhook_add_str(doc, "alert_id", a->alert_id);
	webhook_add_str(doc, "title", title.data != NULL ? title.data : "");
	webhook_add_str(doc, "text", body.data != NULL ? body.data : "");
	if ((json = cJSON_PrintUnformatted(doc)) == NULL) {
		snprintf(err, errlen, "cannot encode JSON");
		goto out;
	}
	req->url = xstrdup(url);
	req->body = xstrdup(json);
	req->body_len = strlen(json);
	webhook_add_header(req, "Content-Type", "application/json");
	webhook_add_header(req, "X-Gitopsd-Event", a->event);
	if (a->alert_id != NULL)
		webhook_add_header(req, "X-Gitopsd-Delivery", a->alert_id);
	if (o->secret != NULL) {
		util_hmac_sha256_hex(o->secret, strlen(o->secret), req->body,
		    req->body_len, sig);
		req->headers = xreallocarray(req->headers, req->nheaders + 1,
		    sizeof(char *));
		req->headers[req->nheaders++] = xasprintf(
		    "X-Gitopsd-Signature-256: sha256=%s", sig);
	}
	for (i = 0; i < o->nheaders; i++) {
		char *name = template_header_clean(o->headers[i].name);

		webhook_add_header(req, name, o->headers[i].value);
		free(name);
	}
	req->ca_file = o->ca_file;
	rc = 0;
out:
	if (rc == -1)
		notify_request_free(req);
	cJSON_free(json);
	cJSON_Delete(doc);
	buf_free(&title);
	buf_free(&body);
	return rc;
}

const struct notifier notifier_webhook = {
	.type = "webhook",
	.config = &webhook_config,
	.check = webhook_check,
	.render = webhook_render,
};
