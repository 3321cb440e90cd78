/*
 * notifier.h: the alert sink plug-in interface (DESIGN.md section 1).
 *
 * One notifier per sink type (slack, email, webhook) under notify/, listed
 * in notifier_table[] (notify/notifiers.c); each declares its own config
 * keys beside its code, so adding a sink is one file and one table row
 * (docs/notifiers.md).  render() turns an alert into a
 * request; delivery goes through the loop's shared libcurl multi handle
 * (daemon/http_client.c).  Dispatch (notify/dispatch.c) decides which
 * alerts go where, dedups them and keeps them in the durable outbox as
 * notify jobs.
 */
#ifndef GITOPSD_NOTIFIER_H
#define GITOPSD_NOTIFIER_H

#include <stddef.h>
#include <stdint.h>

struct config;
struct config_notifier;
struct config_errors;

/* What an alert says; strings borrowed. */
struct notify_alert {
	const char	*event;		/* "job.failed", "job.recovered", "job.succeeded" */
	const char	*app;
	int64_t		 job_id;
	const char	*kind;		/* job kind */
	const char	*reason;	/* human text */
	const char	*reason_kind;	/* job_error_kind name */
	const char	*object;
	const char	*revision;
	const char	*image;
	const char	*tag;
	const char	*delivery;
	int		 attempts;
	const char	*url;		/* link, from links.base_url */
	const char	*pr_url;	/* update-image: its pull request */
	int64_t		 time_ms;
	const char	*alert_id;	/* stable across retries (dedup key hash) */
};

/* A rendered request for one sink. */
struct notify_request {
	char	*url;			/* http(s):// or smtp(s):// */
	char	**headers;		/* "Name: value" */
	size_t	 nheaders;
	char	*body;
	size_t	 body_len;
	/* SMTP */
	char	*mail_from;
	char	**rcpt;
	size_t	 nrcpt;
	int	 require_tls;		/* smtp://: STARTTLS is mandatory */
	int	 auth_needs_tls;	/* ... because a password would go out */
	/* Borrowed from the notifier's options (live as long as the config). */
	const char *username;		/* SMTP login */
	const char *password;
	const char *ca_file;		/* NULL: the system's CA store */
};

struct config_plugin;

/*
 * A sink type.  config: its own keys, defaults and checks at load
 * (config_schema.h); their values reach check() and render() as the
 * notifier's opts.
 */
struct notifier {
	const char	*type;
	const struct config_plugin *config;
	/* Check type-specific keys of a notifier (config -t). */
	int		(*check)(const struct config *, const struct config_notifier *,
			    size_t index, struct config_errors *);
	int		(*render)(const struct config_notifier *,
			    const struct notify_alert *, struct notify_request *,
			    char *err, size_t errlen);
};

/* The key of sinks that verify a TLS server of their own (a row of their
 * key table; config_schema.h). */
#define NOTIFIER_KEY_CA_FILE(off_)					\
	{ "ca_file", T_FILE, .off = (off_),				\
	  .help = "email/webhook: PEM CA bundle that verifies the server; " \
	    "unset: the system's" }

extern const struct notifier *const notifier_table[];
extern const size_t notifier_table_len;

const struct notifier	*notifier_find(const char *type);

/* The notifiers list's plug-ins, for the config core. */
extern const struct config_family notifier_config_family;
void			 notify_request_free(struct notify_request *);

#endif
