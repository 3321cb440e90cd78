/*
 * notifiers.c: the table of alert sink types.
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

extern const struct notifier notifier_slack;
extern const struct notifier notifier_email;
extern const struct notifier notifier_webhook;
extern const struct notifier notifier_alertmanager;
extern const struct notifier notifier_pagerduty;
extern const struct notifier notifier_opsgenie;
extern const struct notifier notifier_teams;
extern const struct notifier notifier_discord;
extern const struct notifier notifier_googlechat;
extern const struct notifier notifier_mattermost;
extern const struct notifier notifier_telegram;
extern const struct notifier notifier_commit_status;

/* Adding a sink: one file under notify/ and one row here. */
const struct notifier *const notifier_table[] = {
	&notifier_slack,
	&notifier_email,
	&notifier_webhook,
	&notifier_alertmanager,
	&notifier_pagerduty,
	&notifier_opsgenie,
	&notifier_teams,
	&notifier_discord,
	&notifier_googlechat,
	&notifier_mattermost,
	&notifier_telegram,
	&notifier_commit_status,
	NULL
};
const size_t notifier_table_len = nitems(notifier_table) - 1;

const struct notifier *
notifier_find(const char *type)
{
	size_t	 i;

	for (i = 0; i < notifier_table_len; i++)
		if (strcmp(notifier_table[i]->type, type) == 0)
			return notifier_table[i];
	return NULL;
}

static const struct config_plugin *
notifier_config_find(const char *type, const void **desc)
{
	const struct notifier	*n = notifier_find(type);

	if (n == NULL)
		return NULL;
	*desc = n;
	return n->config;
}

static const struct config_plugin *
notifier_config_nth(size_t i, const char **type)
{
	if (i >= notifier_table_len)
		return NULL;
	*type = notifier_table[i]->type;
	return notifier_table[i]->config;
}

const struct config_family notifier_config_family = {
	.type_key = "type",
	.type_off = offsetof(struct config_notifier, type),
	.desc_off = offsetof(struct config_notifier, plugin),
	.opts_off = offsetof(struct config_notifier, opts),
	.find = notifier_config_find,
	.nth = notifier_config_nth,
};

void
notify_request_free(struct notify_request *r)
{
	size_t	 i;

	free(r->url);
	for (i = 0; i < r->nheaders; i++)
		free(r->headers[i]);
	free(r->headers);
	free(r->body);
	free(r->mail_from);
	for (i = 0; i < r->nrcpt; i++)
		free(r->rcpt[i]);
	free(r->rcpt);
	memset(r, 0, sizeof(*r));
}

int
notifier_is_resolve(const struct notify_alert *a)
{
	return a->event == NULL || strcmp(a->event, "job.failed") != 0;
}

void
notifier_incident_key(const struct config_notifier *n,
    const struct notify_alert *a, char out[65])
{
	struct buf	 b;

	buf_init(&b, 0);
	if (a->incident == NULL)
		(void)buf_printf(&b, "gitopsd-incident\nv1\n%s\n%s",
		    n->name, a->app != NULL ? a->app : "");
	else
		(void)buf_printf(&b, "gitopsd-incident\nv2\n%s\n%s\n%s",
		    n->name, a->app != NULL ? a->app : "", a->incident);
	util_sha256_hex(b.data, b.len, out);
	buf_free(&b);
}

char *
notifier_api_url(const char *base, const char *path)
{
	size_t	 len = strlen(base);

	while (len > 0 && base[len - 1] == '/')
		len--;
	return xasprintf("%.*s%s", (int)len, base, path);
}

int
notifier_json_request(struct notify_request *req, const char *url,
    const void *doc, const char *const *headers, const char *ca_file,
    char *err, size_t errlen)
{
	char	*json;
	size_t	 n;

	memset(req, 0, sizeof(*req));
	if ((json = cJSON_PrintUnformatted(doc)) == NULL) {
		snprintf(err, errlen, "cannot encode JSON");
		return -1;
	}
	req->url = xstrdup(url);
	req->body = xstrdup(json);
	req->body_len = strlen(json);
	cJSON_free(json);
	for (n = 0; headers != NULL && headers[n] != NULL; n++)
		;
	req->headers = xcalloc(n + 1, sizeof(char *));
	req->headers[req->nheaders++] =
	    xstrdup("Content-Type: application/json");
	for (n = 0; headers != NULL && headers[n] != NULL; n++)
		req->headers[req->nheaders++] = xstrdup(headers[n]);
	req->ca_file = ca_file;
	return 0;
}

char *
notifier_image_ref(const struct notify_alert *a)
{
	if (a->image == NULL || *a->image == '\0')
		return NULL;
	return xasprintf("%s%s%s", a->image, a->tag != NULL ? ":" : "",
	    a->tag != NULL ? a->tag : "");
}

void
notifier_one_line(char *s)
{
	for (; *s != '\0'; s++)
		if (*s == '\n' || *s == '\r' || *s == '\t')
			*s = ' ';
}

void
notifier_check_http_url(const struct config *cfg, struct config_errors *errs,
    const char *key, const char *url)
{
	if (url != NULL && strncmp(url, "https://", 8) != 0 &&
	    strncmp(url, "http://", 7) != 0)
		config_error_at(cfg, errs, key, "must be an http(s) URL");
}

size_t
notifier_facts(const struct notify_alert *a,
    struct notifier_fact out[NOTIFIER_FACTS_MAX])
{
	size_t	 n = 0;

#define FACT(name_, value_) do {					\
	char *v_ = (value_);						\
	if (v_ != NULL && *v_ != '\0') {				\
		out[n].name = (name_);					\
		out[n++].value = v_;					\
	} else								\
		free(v_);						\
} while (0)
#define DUP(s_)	((s_) != NULL ? xstrdup(s_) : NULL)
	FACT("App", DUP(a->app));
	FACT("Cluster", DUP(a->cluster));
	FACT("Job", xasprintf("%s job %lld", a->kind != NULL ? a->kind : "",
	    (long long)a->job_id));
	if (a->reason_kind != NULL && strcmp(a->reason_kind, "none") != 0)
		FACT("Failure", a->object != NULL && *a->object != '\0' ?
		    xasprintf("%s (%s)", a->reason_kind, a->object) :
		    xstrdup(a->reason_kind));
	if (!notifier_is_resolve(a))
		FACT("Error", DUP(a->reason));
	FACT("Revision", DUP(a->revision));
	FACT("Image", notifier_image_ref(a));
	FACT("Delivery", DUP(a->delivery));
	FACT("Attempts", xasprintf("%d", a->attempts));
#undef FACT
#undef DUP
	return n;
}

void
notifier_facts_free(struct notifier_fact *f, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		free(f[i].value);
}

static const struct config_key notifier_url_keys[] = {
	{ "url_file", T_SECRET_FILE,
	  .off = offsetof(struct notifier_url_opts, url_file),
	  .off2 = offsetof(struct notifier_url_opts, url_secret),
	  .help = "file holding the URL (slack incoming webhook)" },
	{ "url_env", T_SECRET_ENV,
	  .off = offsetof(struct notifier_url_opts, url_env),
	  .off2 = offsetof(struct notifier_url_opts, url_secret),
	  .help = "environment variable holding the URL" },
};

void
notifier_require_secret(struct config_walk *w, const struct config_node *map,
    const struct config_node *at, const char *type, const char *name)
{
	char	 file[64], env[64];

	snprintf(file, sizeof(file), "%s_file", name);
	snprintf(env, sizeof(env), "%s_env", name);
	if (!config_node_has(map, file) && !config_node_has(map, env))
		config_walk_error(w, at, file, "missing required key (%s "
		    "needs %s or %s)", type, file, env);
}

static void
notifier_url_config_check(struct config_walk *w, void *opts,
    const struct config_node *map, const struct config_node *at)
{
	(void)opts;
	if (!config_node_has(map, "url_file") &&
	    !config_node_has(map, "url_env"))
		config_walk_error(w, at, "url_file", "missing required key "
		    "(this type needs url_file or url_env: its URL is a "
		    "secret)");
}

const struct config_plugin notifier_url_config =
    CONFIG_PLUGIN(struct notifier_url_opts, notifier_url_keys,
    notifier_url_config_check);

int
notifier_url_check(const struct config *cfg, const struct config_notifier *n,
    size_t index, struct config_errors *errs)
{
	const struct notifier_url_opts *o = n->opts;
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

int
notifier_render_text(const struct config_notifier *n,
    const struct notify_alert *a, int (*esc)(const char *, struct buf *),
    struct buf *title, struct buf *body, char *err, size_t errlen)
{
	/* A title is plain text everywhere but in Telegram's HTML. */
	if (template_render_title(n, a, NULL, title) == -1 ||
	    template_render_body(n, a, esc, body) == -1) {
		snprintf(err, errlen, "title or body template too long or "
		    "invalid");
		return -1;
	}
	notifier_one_line(title->data);
	if (title->data[0] == '\0')
		(void)buf_addstr(title, "gitopsd alert");
	return 0;
}
