/*
 * template.c: "{{variable}}" substitution for alert titles and bodies.
 *
 * Deliberately tiny: no conditionals, loops or filters, so a template can
 * be checked completely at `gitopsd -t` time and rendering cannot fail on
 * a valid one.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "notifier.h"
#include "template.h"
#include "util.h"

static const char *const template_vars[] = {
	"app", "event", "job", "kind", "reason", "object", "revision",
	"image", "tag", "delivery", "attempts", "url", "time", "pr_url",
	"cluster",
};

static int
template_is_space(char c)
{
	return c == ' ' || c == '\t';
}

const char *
template_value(const struct notify_alert *a, const char *name, size_t len,
    char tmp[32])
{
#define TEMPLATE_IS(s) (len == strlen(s) && memcmp(name, s, len) == 0)
#define TEMPLATE_STR(v) ((v) != NULL ? (v) : "")
	if (TEMPLATE_IS("app"))
		return TEMPLATE_STR(a->app);
	if (TEMPLATE_IS("event"))
		return TEMPLATE_STR(a->event);
	if (TEMPLATE_IS("job")) {
		snprintf(tmp, 32, "%" PRId64, a->job_id);
		return tmp;
	}
	if (TEMPLATE_IS("kind"))
		return TEMPLATE_STR(a->kind);
	if (TEMPLATE_IS("reason"))
		return TEMPLATE_STR(a->reason);
	if (TEMPLATE_IS("object"))
		return TEMPLATE_STR(a->object);
	if (TEMPLATE_IS("revision"))
		return TEMPLATE_STR(a->revision);
	if (TEMPLATE_IS("image"))
		return TEMPLATE_STR(a->image);
	if (TEMPLATE_IS("tag"))
		return TEMPLATE_STR(a->tag);
	if (TEMPLATE_IS("delivery"))
		return TEMPLATE_STR(a->delivery);
	if (TEMPLATE_IS("attempts")) {
		snprintf(tmp, 32, "%d", a->attempts);
		return tmp;
	}
	if (TEMPLATE_IS("url"))
		return TEMPLATE_STR(a->url);
	if (TEMPLATE_IS("pr_url"))
		return TEMPLATE_STR(a->pr_url);
	if (TEMPLATE_IS("cluster"))
		return TEMPLATE_STR(a->cluster);
	if (TEMPLATE_IS("time")) {
		util_rfc3339(a->time_ms, tmp);
		return tmp;
	}
	return NULL;
#undef TEMPLATE_IS
#undef TEMPLATE_STR
}

static int
template_known(const char *name, size_t len)
{
	size_t	 i;

	for (i = 0; i < nitems(template_vars); i++)
		if (strlen(template_vars[i]) == len &&
		    memcmp(template_vars[i], name, len) == 0)
			return 1;
	return 0;
}

/*
 * Find the variable of the "{{" at p: its name (trimmed) and where the
 * text after "}}" starts.  -1 with err when unclosed, empty or unknown.
 */
static int
template_parse_var(const char *tmpl, const char *p, const char **name,
    size_t *len, const char **next, char *err, size_t errlen)
{
	const char	*s = p + 2, *e, *close;

	if ((close = strstr(s, "}}")) == NULL) {
		snprintf(err, errlen, "unclosed \"{{\" at column %zu",
		    (size_t)(p - tmpl) + 1);
		return -1;
	}
	while (s < close && template_is_space(*s))
		s++;
	e = close;
	while (e > s && template_is_space(e[-1]))
		e--;
	if (e == s) {
		snprintf(err, errlen, "empty variable at column %zu",
		    (size_t)(p - tmpl) + 1);
		return -1;
	}
	if (!template_known(s, (size_t)(e - s))) {
		snprintf(err, errlen, "unknown variable \"%.*s\" at column %zu "
		    "(known: app, event, job, kind, reason, object, revision, "
		    "image, tag, delivery, attempts, url, time)",
		    (int)((e - s) > 64 ? 64 : (e - s)), s,
		    (size_t)(p - tmpl) + 1);
		return -1;
	}
	*name = s;
	*len = (size_t)(e - s);
	*next = close + 2;
	return 0;
}

int
template_check(const char *tmpl, char *err, size_t errlen)
{
	const char	*p = tmpl, *open, *name;
	size_t		 len;

	while ((open = strstr(p, "{{")) != NULL) {
		if (template_parse_var(tmpl, open, &name, &len, &p, err,
		    errlen) == -1)
			return -1;
	}
	return 0;
}

int
template_render(const char *tmpl, const struct notify_alert *a,
    template_escape_fn *esc, struct buf *out)
{
	const char	*p = tmpl, *open, *name, *v;
	char		 tmp[32], err[256];
	size_t		 len;

	while ((open = strstr(p, "{{")) != NULL) {
		if (buf_add(out, p, (size_t)(open - p)) == -1)
			return -1;
		if (template_parse_var(tmpl, open, &name, &len, &p, err,
		    sizeof(err)) == -1)
			return -1;
		v = template_value(a, name, len, tmp);
		if (esc != NULL ? esc(v, out) == -1 : buf_addstr(out, v) == -1)
			return -1;
	}
	return buf_addstr(out, p);
}

const char *
template_default_title(const char *event)
{
	if (strcmp(event, "job.recovered") == 0)
		return "{{app}} recovered";
	if (strcmp(event, "job.succeeded") == 0)
		return "{{app}}: {{kind}} succeeded";
	if (strcmp(event, "sync.started") == 0)
		return "{{app}}: sync started";
	return "{{app}}: {{kind}} failed";
}

const char *
template_default_body(const char *event)
{
	if (strcmp(event, "job.recovered") == 0)
		return "The {{kind}} job {{job}} of {{app}} succeeded after "
		    "earlier failures.";
	if (strcmp(event, "job.succeeded") == 0)
		return "The {{kind}} job {{job}} of {{app}} succeeded.";
	if (strcmp(event, "sync.started") == 0)
		return "The sync job {{job}} of {{app}} started applying "
		    "{{revision}}.";
	return "The {{kind}} job {{job}} of {{app}} failed after {{attempts}} "
	    "attempt(s): {{reason}}";
}

char *
template_header_clean(const char *s)
{
	char	*out = xstrdup(s != NULL ? s : ""), *p;

	for (p = out; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	return out;
}

void
template_utf8_truncate(char *s, size_t max)
{
	size_t	 len = strlen(s);

	if (len <= max)
		return;
	/* Back up over continuation bytes (10xxxxxx) to a lead byte. */
	while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
		max--;
	s[max] = '\0';
}

void
template_check_notifier(const struct config *cfg,
    const struct config_notifier *n, size_t index, struct config_errors *errs)
{
	char	 key[64], err[512];

	snprintf(key, sizeof(key), "notifiers[%zu].title", index);
	if (n->title != NULL && template_check(n->title, err, sizeof(err)) == -1)
		config_error_at(cfg, errs, key, "%s", err);
	snprintf(key, sizeof(key), "notifiers[%zu].body", index);
	if (n->body != NULL && template_check(n->body, err, sizeof(err)) == -1)
		config_error_at(cfg, errs, key, "%s", err);
}

int
template_render_title(const struct config_notifier *n,
    const struct notify_alert *a, template_escape_fn *esc, struct buf *out)
{
	return template_render(n->title != NULL ? n->title :
	    template_default_title(a->event), a, esc, out);
}

int
template_render_body(const struct config_notifier *n,
    const struct notify_alert *a, template_escape_fn *esc, struct buf *out)
{
	return template_render(n->body != NULL ? n->body :
	    template_default_body(a->event), a, esc, out);
}
