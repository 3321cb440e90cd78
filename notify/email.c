/*
 * email.c: alerts as RFC 5322 mail over SMTP (libcurl: smtp:// with
 * STARTTLS, or smtps://).
 *
 * The message: Date, Message-ID (from the alert id, so every retry of one
 * alert is the same message to mail clients), From, To, Subject (RFC 2047
 * encoded-words when not ASCII), MIME-Version, Content-Type text/plain
 * UTF-8, Content-Transfer-Encoding (7bit, or quoted-printable when the body
 * is not plain short ASCII), Auto-Submitted.  Lines end in CRLF; libcurl
 * dot-stuffs the upload.
 */
#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "config.h"
#include "config_schema.h"
#include "notifier.h"
#include "template.h"
#include "util.h"

#define EMAIL_TEXT_CAP		(64 * 1024)
#define EMAIL_SUBJECT_MAX	200	/* bytes of UTF-8 before encoding */

struct email_opts {
	char	*smtp_url;
	int	 require_tls;
	int	 allow_plaintext_auth;		/* smtp://: AUTH without STARTTLS */
	char	*username;
	char	*password_file;
	char	*password_env;
	char	*password;			/* from either */
	char	*from;
	char	**to;
	size_t	 nto;
	char	*ca_file;
};

#define O(field)	offsetof(struct email_opts, field)

static const struct config_key email_keys[] = {
	{ "smtp_url", T_STR,
	  .off = O(smtp_url),
	  .help = "email: smtp://host:port or smtps://host:port" },
	{ "require_tls", T_BOOL,
	  .off = O(require_tls), .def = "false",
	  .help = "email: refuse smtp:// without STARTTLS" },
	{ "allow_plaintext_auth", T_BOOL,
	  .off = O(allow_plaintext_auth), .def = "false",
	  .help =
	    "email: log in on smtp:// even when the server offers no "
	    "STARTTLS (the password goes out in clear)" },
	{ "username", T_STR,
	  .off = O(username),
	  .help = "email: SMTP user" },
	{ "password_file", T_SECRET_FILE,
	  .off = O(password_file), .off2 = O(password),
	  .help = "email: file holding the SMTP password" },
	{ "password_env", T_SECRET_ENV,
	  .off = O(password_env), .off2 = O(password),
	  .help = "email: environment variable holding the SMTP password" },
	{ "from", T_STR,
	  .off = O(from),
	  .help = "email: sender address" },
	{ "to", T_STRLIST,
	  .off = O(to), .off2 = O(nto),
	  .help = "email: recipient addresses" },
	NOTIFIER_KEY_CA_FILE(O(ca_file)),
};

#undef O

static const struct config_plugin email_config =
    CONFIG_PLUGIN(struct email_opts, email_keys, NULL);

/*
 * The bare address of "Name <a@b>" or "a@b", malloc'd; NULL when it does
 * not look like one mailbox (no '@', spaces, controls, non-ASCII).
 */
static char *
email_addr(const char *s)
{
	const char	*lt, *gt, *p;
	char		*a;

	if ((lt = strrchr(s, '<')) != NULL) {
		if ((gt = strchr(lt, '>')) == NULL || gt[1] != '\0')
			return NULL;
		a = xstrndup(lt + 1, (size_t)(gt - lt - 1));
	} else
		a = xstrdup(s);
	for (p = a; *p != '\0'; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f ||
		    strchr("<>()[],;:\\\"", *p) != NULL)
			goto bad;
	if ((p = strchr(a, '@')) == NULL || p == a || p[1] == '\0' ||
	    strchr(p + 1, '@') != NULL)
		goto bad;
	return a;
bad:
	free(a);
	return NULL;
}

static int
email_is_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return 0;
	return 1;
}

static int
email_has_password(const struct email_opts *o)
{
	return o->password != NULL || o->password_file != NULL ||
	    o->password_env != NULL;
}

/*
 * smtp:// with a password: libcurl logs in after STARTTLS when the server
 * offers it, and in clear when it does not.  So STARTTLS is required then
 * (the attempt fails before any AUTH), unless allow_plaintext_auth says a
 * password in clear is acceptable (a relay on a trusted network).
 */
static int
email_auth_needs_tls(const struct email_opts *o)
{
	return o->smtp_url != NULL && strncmp(o->smtp_url, "smtp://", 7) == 0 &&
	    !o->require_tls && !o->allow_plaintext_auth &&
	    email_has_password(o);
}

/* gitopsd -t: where the SMTP password may travel, named per notifier. */
static void
email_check_auth(const struct config *cfg, const struct config_notifier *n,
    size_t index, struct config_errors *errs)
{
	const struct email_opts	*o = n->opts;
	char	 key[64];
	int	 plain = o->smtp_url != NULL &&
	    strncmp(o->smtp_url, "smtp://", 7) == 0 && !o->require_tls;

	snprintf(key, sizeof(key), "notifiers[%zu].allow_plaintext_auth",
	    index);
	if (o->allow_plaintext_auth && !plain)
		config_warning_at(cfg, errs, key, "notifier %s: no effect, "
		    "TLS is required (smtps:// or require_tls: true)", n->name);
	else if (o->allow_plaintext_auth && email_has_password(o))
		config_warning_at(cfg, errs, key, "notifier %s: the SMTP "
		    "password may go out in clear (smtp:// without "
		    "require_tls: true)", n->name);
	else if (email_auth_needs_tls(o)) {
		snprintf(key, sizeof(key), "notifiers[%zu].smtp_url", index);
		config_warning_at(cfg, errs, key, "notifier %s: a password on "
		    "smtp:// without require_tls: STARTTLS is required anyway, "
		    "a delivery fails without logging in when the server "
		    "offers none (say smtps:// or require_tls: true)", n->name);
	}
}

static int
email_check(const struct config *cfg, const struct config_notifier *n,
    size_t index, struct config_errors *errs)
{
	const struct email_opts	*o = n->opts;
	char	 key[64], *a;
	size_t	 i, before = errs->n;

	template_check_notifier(cfg, n, index, errs);
	if (o == NULL)
		return (int)(errs->n - before);
	snprintf(key, sizeof(key), "notifiers[%zu].smtp_url", index);
	if (o->smtp_url == NULL)
		config_error_at(cfg, errs, key, "missing required key "
		    "(email needs smtp_url)");
	else if (strncmp(o->smtp_url, "smtp://", 7) != 0 &&
	    strncmp(o->smtp_url, "smtps://", 8) != 0)
		config_error_at(cfg, errs, key, "must be smtp://host[:port] or "
		    "smtps://host[:port]");
	snprintf(key, sizeof(key), "notifiers[%zu].from", index);
	if (o->from == NULL)
		config_error_at(cfg, errs, key, "missing required key "
		    "(email needs from)");
	else if (!email_is_ascii(o->from) || strpbrk(o->from, "\r\n") != NULL ||
	    (a = email_addr(o->from)) == NULL)
		config_error_at(cfg, errs, key, "not a mail address "
		    "(\"a@example.com\" or \"Name <a@example.com>\", ASCII)");
	else
		free(a);
	snprintf(key, sizeof(key), "notifiers[%zu].to", index);
	if (o->nto == 0)
		config_error_at(cfg, errs, key, "missing required key "
		    "(email needs at least one recipient)");
	for (i = 0; i < o->nto; i++) {
		snprintf(key, sizeof(key), "notifiers[%zu].to[%zu]", index, i);
		if (!email_is_ascii(o->to[i]) ||
		    (a = email_addr(o->to[i])) == NULL)
			config_error_at(cfg, errs, key, "not a mail address");
		else
			free(a);
	}
	if (o->password_file != NULL && o->username == NULL) {
		snprintf(key, sizeof(key), "notifiers[%zu].username", index);
		config_error_at(cfg, errs, key, "password_file needs username");
	}
	if (o->require_tls && o->smtp_url != NULL &&
	    strncmp(o->smtp_url, "smtps://", 8) == 0) {
		snprintf(key, sizeof(key), "notifiers[%zu].require_tls", index);
		config_warning_at(cfg, errs, key, "smtps:// is always TLS; "
		    "require_tls matters for smtp:// (STARTTLS)");
	}
	email_check_auth(cfg, n, index, errs);
	return (int)(errs->n - before);
}

/* RFC 5322 date-time in UTC, independent of the locale. */
static void
email_date(int64_t ms, char *out, size_t outlen)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu",
	    "Fri", "Sat" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr",
	    "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t		 t = (time_t)(ms / 1000);
	struct tm	 tm;

	gmtime_r(&t, &tm);
	snprintf(out, outlen, "%s, %02d %s %04d %02d:%02d:%02d +0000",
	    days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900,
	    tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/*
 * "Subject: " plus s, as is when ASCII, else as RFC 2047 "B" encoded-words
 * of at most 75 characters each (45 bytes of UTF-8, never split inside a
 * character), folded onto continuation lines.
 */
static void
email_add_subject(struct buf *b, const char *s)
{
	unsigned char	 enc[64];
	size_t		 len = strlen(s), off = 0, n;
	int		 first = 1;

	(void)buf_addstr(b, "Subject: ");
	if (email_is_ascii(s)) {
		(void)buf_addstr(b, s);
		(void)buf_addstr(b, "\r\n");
		return;
	}
	while (off < len) {
		n = len - off > 45 ? 45 : len - off;
		while (off + n < len && n > 0 &&
		    ((unsigned char)s[off + n] & 0xc0) == 0x80)
			n--;
		EVP_EncodeBlock(enc, (const unsigned char *)s + off, (int)n);
		(void)buf_printf(b, "%s=?UTF-8?B?%s?=", first ? "" : "\r\n ",
		    enc);
		first = 0;
		off += n;
	}
	(void)buf_addstr(b, "\r\n");
}

/* Does text need quoted-printable (non-ASCII, long lines, bare CR)? */
static int
email_needs_qp(const char *s)
{
	size_t	 col = 0;

	for (; *s != '\0'; s++) {
		if ((unsigned char)*s >= 0x80 || *s == '\r')
			return 1;
		col = *s == '\n' ? 0 : col + 1;
		if (col > 76)
			return 1;
	}
	return 0;
}

/* Append text with LF line ends as CRLF, quoted-printable when qp. */
static void
email_add_body(struct buf *b, const char *s, int qp)
{
	size_t	 col = 0;
	char	 hex[4];

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '\n') {
			(void)buf_addstr(b, "\r\n");
			col = 0;
			continue;
		}
		if (!qp) {
			(void)buf_add(b, s, 1);
			continue;
		}
		/* "=XX" for 8-bit, '=', controls, and space/tab at line end. */
		if (c >= 0x80 || c == '=' || (c < 0x20 && c != '\t') ||
		    ((c == ' ' || c == '\t') && (s[1] == '\n' || s[1] == '\0'))) {
			if (col + 3 > 75) {
				(void)buf_addstr(b, "=\r\n");
				col = 0;
			}
			snprintf(hex, sizeof(hex), "=%02X", c);
			(void)buf_addstr(b, hex);
			col += 3;
		} else {
			if (col + 1 > 75) {
				(void)buf_addstr(b, "=\r\n");
				col = 0;
			}
			(void)buf_add(b, s, 1);
			col++;
		}
	}
	if (b->len < 2 || memcmp(b->data + b->len - 2, "\r\n", 2) != 0)
		(void)buf_addstr(b, "\r\n");
}

/* The domain of the sender, for Message-ID. */
static const char *
email_domain(const char *addr)
{
	const char	*at = strchr(addr, '@');

	return at != NULL ? at + 1 : "gitopsd.invalid";
}

static int
email_render(const struct config_notifier *n, const struct notify_alert *a,
    struct notify_request *req, char *err, size_t errlen)
{
	const struct email_opts	*o = n->opts;
	struct buf	 title, body, text, msg;
	char		 date[64], id[40], *from = NULL, *hfrom = NULL, *subj;
	unsigned char	 rnd[16];
	size_t		 i;
	int		 rc = -1, qp;

	buf_init(&title, EMAIL_TEXT_CAP);
	buf_init(&body, EMAIL_TEXT_CAP);
	buf_init(&text, 0);
	buf_init(&msg, 0);
	memset(req, 0, sizeof(*req));
	if (o == NULL || o->smtp_url == NULL || o->from == NULL ||
	    o->nto == 0) {
		snprintf(err, errlen, "smtp_url, from and to are required");
		goto out;
	}
	if ((from = email_addr(o->from)) == NULL) {
		snprintf(err, errlen, "from is not a mail address");
		goto out;
	}
	req->rcpt = xcalloc(o->nto, sizeof(char *));
	for (i = 0; i < o->nto; i++) {
		if ((req->rcpt[i] = email_addr(o->to[i])) == NULL) {
			snprintf(err, errlen, "to[%zu] is not a mail address", i);
			goto out;
		}
		req->nrcpt++;
	}
	if (template_render_title(n, a, NULL, &title) == -1 ||
	    template_render_body(n, a, NULL, &body) == -1) {
		snprintf(err, errlen, "title or body template too long or "
		    "invalid");
		goto out;
	}

	/* The text: the body, then the facts, one per line. */
	(void)buf_printf(&text, "%s\n\n", body.data != NULL ? body.data : "");
	(void)buf_printf(&text, "App:       %s\n", a->app != NULL ? a->app : "");
	(void)buf_printf(&text, "Job:       %s job %lld\n",
	    a->kind != NULL ? a->kind : "", (long long)a->job_id);
	if (a->reason_kind != NULL && strcmp(a->reason_kind, "none") != 0)
		(void)buf_printf(&text, "Failure:   %s%s%s%s\n", a->reason_kind,
		    a->object != NULL ? " (" : "",
		    a->object != NULL ? a->object : "",
		    a->object != NULL ? ")" : "");
	if (a->reason != NULL && strcmp(a->event, "job.failed") == 0)
		(void)buf_printf(&text, "Reason:    %s\n", a->reason);
	if (a->revision != NULL)
		(void)buf_printf(&text, "Revision:  %s\n", a->revision);
	if (a->image != NULL)
		(void)buf_printf(&text, "Image:     %s%s%s\n", a->image,
		    a->tag != NULL ? ":" : "", a->tag != NULL ? a->tag : "");
	if (a->delivery != NULL)
		(void)buf_printf(&text, "Delivery:  %s\n", a->delivery);
	(void)buf_printf(&text, "Attempts:  %d\n", a->attempts);
	if (a->url != NULL)
		(void)buf_printf(&text, "Link:      %s\n", a->url);

	subj = template_header_clean(title.data != NULL ? title.data : "");
	template_utf8_truncate(subj, EMAIL_SUBJECT_MAX);
	hfrom = template_header_clean(o->from);
	email_date(a->time_ms, date, sizeof(date));
	if (a->alert_id != NULL)
		snprintf(id, sizeof(id), "%.32s", a->alert_id);
	else {
		if (util_random(rnd, sizeof(rnd)) != 0)
			memset(rnd, 0, sizeof(rnd));
		util_hex(rnd, sizeof(rnd), id);
	}
	(void)buf_printf(&msg, "Date: %s\r\n", date);
	(void)buf_printf(&msg, "Message-ID: <%s.%lld@%s>\r\n", id,
	    (long long)a->job_id, email_domain(from));
	(void)buf_printf(&msg, "From: %s\r\n", hfrom);
	(void)buf_addstr(&msg, "To: ");
	for (i = 0; i < req->nrcpt; i++)
		(void)buf_printf(&msg, "%s%s", i > 0 ? ",\r\n " : "",
		    req->rcpt[i]);
	(void)buf_addstr(&msg, "\r\n");
	email_add_subject(&msg, subj);
	free(subj);
	qp = email_needs_qp(text.data);
	(void)buf_addstr(&msg, "MIME-Version: 1.0\r\n");
	(void)buf_addstr(&msg, "Content-Type: text/plain; charset=UTF-8\r\n");
	(void)buf_printf(&msg, "Content-Transfer-Encoding: %s\r\n",
	    qp ? "quoted-printable" : "7bit");
	(void)buf_addstr(&msg, "Auto-Submitted: auto-generated\r\n");
	if (a->alert_id != NULL)
		(void)buf_printf(&msg, "X-Gitopsd-Alert: %s\r\n", id);
	(void)buf_addstr(&msg, "\r\n");
	email_add_body(&msg, text.data, qp);

	req->url = xstrdup(o->smtp_url);
	req->auth_needs_tls = email_auth_needs_tls(o);
	req->require_tls = o->require_tls || req->auth_needs_tls;
	req->mail_from = from;
	from = NULL;
	req->username = o->username;
	req->password = o->password;
	req->ca_file = o->ca_file;
	req->body = buf_steal(&msg, &req->body_len);
	rc = 0;
out:
	if (rc == -1)
		notify_request_free(req);
	free(from);
	free(hfrom);
	buf_free(&title);
	buf_free(&body);
	buf_free(&text);
	buf_free(&msg);
	return rc;
}

const struct notifier notifier_email = {
	.type = "email",
	.config = &email_config,
	.check = email_check,
	.render = email_render,
};
