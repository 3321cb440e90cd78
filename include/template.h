/*
 * template.h: the small template language of alert titles and bodies
 * (notify/template.c).
 *
 * Text with variables in double braces, "{{app}}" or "{{ app }}": app,
 * event, job, kind, reason, object, revision, image, tag, delivery,
 * attempts, url, time, pr_url, cluster.  Everything else is literal.  An unknown variable or
 * a "{{" without its "}}" is an error, found by template_check() when the
 * configuration is checked, so rendering never meets one.
 */
#ifndef GITOPSD_TEMPLATE_H
#define GITOPSD_TEMPLATE_H

#include <stddef.h>

struct buf;
struct config;
struct config_errors;
struct config_notifier;
struct notify_alert;

/* Appends in escaped for the sink (Slack mrkdwn, ...) to out. */
typedef int template_escape_fn(const char *in, struct buf *out);

/* 0 when valid; else -1 and err says what and where ("column 7"). */
int	 template_check(const char *tmpl, char *err, size_t errlen);

/*
 * Append tmpl with the alert's values to out; each value goes through esc
 * (NULL: as is).  Missing values render as "".  -1 on an invalid template
 * or when out's cap is hit.
 */
int	 template_render(const char *tmpl, const struct notify_alert *,
	    template_escape_fn *esc, struct buf *out);

/* The value of one variable ("" when unset; NULL: unknown name).  tmp
 * holds numbers formatted for the call. */
const char *template_value(const struct notify_alert *, const char *name,
	    size_t namelen, char tmp[32]);

/* A copy of s fit for a header value: CR, LF and other control
 * characters become spaces (no header injection).  Caller frees. */
char	*template_header_clean(const char *s);
/* Cut s to at most max bytes without splitting a UTF-8 sequence. */
void	 template_utf8_truncate(char *s, size_t max);

/*
 * The checks all notifier types share (`gitopsd -t`): the title and body
 * templates; reported as notifiers[index].title etc.
 */
void	 template_check_notifier(const struct config *,
	    const struct config_notifier *, size_t index,
	    struct config_errors *);

/* Render n's title (or the built-in one for the event) into out. */
int	 template_render_title(const struct config_notifier *,
	    const struct notify_alert *, template_escape_fn *, struct buf *out);
int	 template_render_body(const struct config_notifier *,
	    const struct notify_alert *, template_escape_fn *, struct buf *out);

/* Built-in title and body for an alert event ("job.failed", ...). */
const char *template_default_title(const char *event);
const char *template_default_body(const char *event);

#endif
