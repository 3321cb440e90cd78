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
struct buf;

/* What an alert says; strings borrowed. */
struct notify_alert {
	const char	*event;		/* "job.failed", "job.recovered",
					 * "job.succeeded", "sync.started" */
	const char	*app;
	const char	*cluster;	/* the app's cluster name; NULL: none */
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
	const char	*page_url;	/* the job on the status page */
	const char	*repo_owner;	/* NOTIFIER_STATUS types: the */
	const char	*repo_name;	/* app's repo (pr_repo_path) */
	int64_t		 time_ms;
	const char	*alert_id;	/* stable across retries (dedup key hash) */
	/*
	 * The failure reason an incident is about, "<job kind>/<error
	 * kind>" (sync/apply-rejected): on a failure its own, on a
	 * recovery the one it resolves; NULL in alerts planned before
	 * incidents had reasons (notifier_incident_key).
	 */
	const char	*incident;
	int		 target;	/* which of the notifier's targets() */
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
	int	 variant;		/* for the type's refused() */
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
	/*
	 * How many endpoints one alert goes to (alertmanager: every URL);
	 * NULL: one.  Dispatch plans one notify job per target, so each is
	 * retried on its own; render() reads a->target.
	 */
	size_t		(*targets)(const struct config_notifier *);
	/*
	 * Seconds to wait before retrying, from an error answer's body (a
	 * service that says it there, not in Retry-After); 0: no hint.
	 * NULL: none.
	 */
	int		(*retry_after)(long status, const char *body);
	unsigned	 flags;		/* NOTIFIER_* */
	/*
	 * Optional: a refused HTTP answer (status, body) to the request to
	 * url, as the service documents its errors: the job's error text
	 * (never a header) in out, and *permanent and *retry_after_s
	 * (preset from the status and Retry-After) changed as it says.
	 * variant: the request's.
	 */
	void		(*refused)(int variant, const char *url, long status,
			    const char *body, int *permanent,
			    int *retry_after_s, char *out, size_t outlen);
	/*
	 * One incident per app and failure reason (pagerduty, opsgenie):
	 * the recovery resolves each reason still open, one alert apiece.
	 */
	int		 per_reason;
	/*
	 * Seconds between re-sends of an open failure while the app keeps
	 * failing (alertmanager: an alert not re-sent expires); 0: none.
	 * NULL: never re-sent.
	 */
	int		(*resend_s)(const struct config_notifier *);
};

/*
 * A type that reports syncs back to where they came from (commit-status):
 * it gets sync.started and the result of every sync attempt whatever its
 * `on` says, and nothing of other jobs; none of it is deduplicated (each
 * sync has its own status), and the alert carries repo_owner/repo_name.
 */
#define NOTIFIER_STATUS		0x1

/* The key of sinks that verify a TLS server of their own (a row of their
 * key table; config_schema.h). */
#define NOTIFIER_KEY_CA_FILE(off_)					\
	{ "ca_file", T_FILE, .off = (off_),				\
	  .help = "email/webhook: PEM CA bundle that verifies the server; " \
	    "unset: the system's" }

/*
 * For the incident types (alertmanager, pagerduty, opsgenie).  An alert
 * opens or resolves; job.failed opens, every other event resolves.
 */
int			 notifier_is_resolve(const struct notify_alert *);
/*
 * The key that names an incident on one notifier: hex SHA-256 of the
 * notifier's name, the app and the failure reason (a->incident).  The
 * failure carries its reason in the outbox and the recovery the reasons
 * it resolves, found there (notify_open_feed), so a restart between them
 * derives the same keys.  An alert without a reason (planned by an older
 * gitopsd) gets the key of the app alone, as then.
 */
void			 notifier_incident_key(const struct config_notifier *,
			    const struct notify_alert *, char out[65]);
/* base (trailing '/' dropped) + path, malloc'd. */
char			*notifier_api_url(const char *base, const char *path);
/* Set req to a JSON POST of doc (a cJSON) to url, with extra headers
 * (NULL-ended) and ca_file; -1 with err when doc cannot be encoded. */
int			 notifier_json_request(struct notify_request *,
			    const char *url, const void *doc,
			    const char *const *headers, const char *ca_file,
			    char *err, size_t errlen);
/* "image:tag" (or image) of the alert, malloc'd; NULL without an image. */
char			*notifier_image_ref(const struct notify_alert *);
/* Line breaks and tabs to spaces: a one-line title. */
void			 notifier_one_line(char *);
/*
 * Append the alert's title (one line; "gitopsd alert" when empty) and
 * body, the body's values through esc (NULL: as they are), to title and
 * body (empty bufs with their caps).  -1 with err.
 */
int			 notifier_render_text(const struct config_notifier *,
			    const struct notify_alert *,
			    int (*esc)(const char *, struct buf *),
			    struct buf *title, struct buf *body, char *err,
			    size_t errlen);
struct config_walk;
struct config_node;
/*
 * At load: a secret has no inline form, so one of NAME_file and NAME_env
 * is required; else "missing required key (TYPE needs NAME_file or
 * NAME_env)" at NAME_file.
 */
void			 notifier_require_secret(struct config_walk *,
			    const struct config_node *map,
			    const struct config_node *at, const char *type,
			    const char *name);
/* `gitopsd -t`: url must be http(s); reported at key. */
void			 notifier_check_http_url(const struct config *,
			    struct config_errors *, const char *key,
			    const char *url);

/*
 * The facts every chat message lists (app, cluster, job, failure, error,
 * revision, image, delivery, attempts), in that order, the empty ones
 * left out.  Values are malloc'd; notifier_facts_free() frees them.
 */
#define NOTIFIER_FACTS_MAX	9
struct notifier_fact {
	const char	*name;
	char		*value;
};
size_t			 notifier_facts(const struct notify_alert *,
			    struct notifier_fact out[NOTIFIER_FACTS_MAX]);
void			 notifier_facts_free(struct notifier_fact *, size_t);

/*
 * The keys of a sink whose whole address is a secret URL (teams, discord,
 * googlechat, mattermost): url_file / url_env, one of them required.
 * Options struct: struct notifier_url_opts.
 */
struct notifier_url_opts {
	char	*url_file;
	char	*url_env;
	char	*url_secret;		/* the URL itself */
};
extern const struct config_plugin notifier_url_config;
/* `gitopsd -t` for those: templates, the URL's scheme. */
int			 notifier_url_check(const struct config *,
			    const struct config_notifier *, size_t index,
			    struct config_errors *);

extern const struct notifier *const notifier_table[];
extern const size_t notifier_table_len;

const struct notifier	*notifier_find(const char *type);

/* The notifiers list's plug-ins, for the config core. */
extern const struct config_family notifier_config_family;
void			 notify_request_free(struct notify_request *);

#endif
