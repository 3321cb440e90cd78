/*
 * config.h: the validated configuration (DESIGN.md section 6).
 *
 * config_load() parses a YAML file with libyaml into a struct config driven
 * by one table of keys (daemon/config.c).  Every string is owned by the
 * struct and freed by config_free().  Secrets (`*_file`, `*_env`) are read
 * at load time into the `secret*` fields; the path is kept for messages.
 * A reload builds a new struct and swaps it only when it is valid.
 */
#ifndef GITOPSD_CONFIG_H
#define GITOPSD_CONFIG_H

#include <stddef.h>
#include <stdint.h>

/* A listen address "host:port" or "[v6]:port", split and checked. */
struct config_listen {
	char	*host;		/* "127.0.0.1", "::1", "0.0.0.0" */
	int	 port;
};

struct config_server {
	struct config_listen listen;		/* default 0.0.0.0:8080 */
	size_t	 max_body_bytes;		/* default 1048576 */
	size_t	 max_header_bytes;		/* default 16384 */
	int	 read_timeout_s;		/* default 10 */
	int	 write_timeout_s;		/* default 10 */
	int	 max_connections;		/* default 1024 */
	int	 max_connections_per_client;	/* default 256; 0: no cap */
	char	*tls_cert_file;			/* NULL: plain HTTP */
	char	*tls_key_file;
};

struct config_admin {
	struct config_listen listen;		/* default 127.0.0.1:9090 */
	char	*token_file;			/* NULL: API open (loopback) */
	char	*token;				/* contents of token_file/token_env */
	char	*token_env;			/* token_env: variable name */
	char	**allowed_hosts;		/* Host values besides listen */
	size_t	 nallowed_hosts;
	int	 insecure_no_token;		/* beyond loopback, no token */
	char	*public_url;			/* the listener as users reach it */
};

enum config_state_driver {
	CONFIG_STATE_SQLITE,
	CONFIG_STATE_POSTGRES,
};

struct config_state {
	int	 driver;			/* enum config_state_driver */
	char	*path;				/* default /var/lib/gitopsd/state.db */
	char	*dsn_file;			/* postgres: file holding the DSN */
	char	*dsn_env;			/* postgres: variable holding it */
	char	*dsn;				/* the DSN itself: a secret */
	int	 dedup_days;			/* default 7 */
	int	 keep_days;			/* default 30 */
	int	 heartbeat_s;			/* default 5 */
	char	*replica;			/* chosen replica id or NULL */
};

struct config_queue {
	int	 max_queued;			/* default 100000 */
	int	 workers;			/* default 4 */
	int	 lease_s;			/* default 30 */
};

struct config_retry {
	int	 base_s;			/* default 5 */
	int	 max_s;				/* default 300 */
	int	 max_attempts;			/* default 8 */
};

struct config_git {
	int	 push_retries;			/* default 5 */
	int	 timeout_s;			/* default 120 */
	char	*commit_message;		/* template; NULL: built-in default */
};

struct config_notify_opts {
	int	 max_attempts;			/* default 10 */
	int	 repeat_after_s;		/* default 3600 */
	int	 timeout_s;			/* default 10 */
};

/* A container registry gitopsd may query (tag verification). */
struct config_registry {
	char	*host;				/* "registry.acme.io", "localhost:5000" */
	char	*username;
	char	*password_file;
	char	*password;			/* contents */
	char	*password_env;			/* variable name */
	int	 insecure;			/* plain HTTP */
};

struct config_rate_limit {
	double	 rps;				/* 0: unlimited */
	int	 burst;				/* default: max(1, rps) */
};

/* A webhook sender: POST /hooks/<name>[/<token>]. */
struct handler;
struct config_source {
	char	*name;
	char	*type;				/* a handler type, handler.h */
	const struct handler *plugin;		/* NULL: unknown type */
	void	*opts;				/* the handler's own options */
	char	**secrets;			/* 1 or 2 (rotation: new, old) */
	size_t	 nsecrets;
	char	**secret_paths;			/* where each came from (messages) */
	int	 allow_sha1;			/* github: accept X-Hub-Signature */
	int	 verify_tag;			/* registry sources; default 1 */
	struct config_rate_limit rate_limit;
};

struct config_repo_auth {
	char	*username;
	char	*password_file;
	char	*password;			/* contents */
	char	*ssh_key_file;
	char	*ssh_pubkey_file;		/* optional */
	char	*ssh_passphrase_file;
	char	*ssh_passphrase;
	char	*known_hosts_file;
	char	*password_env;			/* variable names */
	char	*ssh_passphrase_env;
};

/* repos[].pull_request: open a PR/MR for each pushed push_branch. */
enum config_pr_provider {
	CONFIG_PR_NONE = 0,			/* no pull_request table */
	CONFIG_PR_GITHUB,
	CONFIG_PR_GITLAB,
	CONFIG_PR_GITEA,
	CONFIG_PR_BITBUCKET,
};

struct config_pull_request {
	int	 provider;			/* enum config_pr_provider */
	char	*api_url;			/* NULL: the provider's default */
	char	*token_file;
	char	*token;				/* contents */
	char	*title;				/* template; NULL: built-in */
	char	*body;				/* template; NULL: none */
	char	**labels;
	size_t	 nlabels;
	int	 close_stale;			/* close older tags' PRs */
};

struct config_repo {
	char	*name;
	char	*url;
	char	*branch;			/* default "main" */
	char	*push_branch;			/* NULL: push to branch */
	struct config_repo_auth auth;
	char	*author_name;			/* default "gitopsd" */
	char	*author_email;			/* default "gitopsd@localhost" */
	char	*commit_message;		/* NULL: git.commit_message */
	struct config_pull_request pull_request;
	int	 poll_interval_s;		/* ask for the branch head this
						 * often; 0: off */
};

struct config_cluster {
	char	*name;
	char	*kubeconfig;			/* path, or "in-cluster" */
	char	*context;			/* NULL: current-context */
	int	 allow_insecure;
	double	 qps;				/* API requests a second; 0: off */
	int	 burst;
};

enum config_policy_kind {
	CONFIG_POLICY_SEMVER = 0,
	CONFIG_POLICY_PATTERN,
	CONFIG_POLICY_LATEST,
	CONFIG_POLICY_DIGEST,
};

enum config_policy_order {
	CONFIG_ORDER_NUMERICAL = 0,
	CONFIG_ORDER_ALPHABETICAL,
};

struct config_policy {
	enum config_policy_kind kind;		/* default semver ">=0.0.0" */
	char	*semver;			/* range text */
	int	 prerelease;
	char	*pattern;			/* POSIX ERE */
	char	*extract;			/* "$1"; NULL: whole tag */
	enum config_policy_order order;
	char	*digest_tag;			/* digest policy: the tag to follow */
};

struct config_image {
	char	*repository;			/* as written; normalized by policy.c */
	struct config_policy policy;
	int	 poll_interval_s;		/* list tags this often; 0: off */
};

struct config_app {
	char	*name;
	char	*repo;				/* config_repo name */
	char	*path;				/* within the repo; default "." */
	char	*cluster;			/* config_cluster name; optional */
	char	*namespace;
	char	**exclude;
	size_t	 nexclude;
	char	**render_command;		/* argv; NULL: plain manifests */
	size_t	 nrender_command;
	int	 render_timeout_s;		/* default 60 */
	struct config_image *images;
	size_t	 nimages;
	int	 sync_auto;			/* default 1 */
	int	 sync_prune;			/* default 0 */
	int	 sync_timeout_s;		/* default 300 */
	int	 sync_interval_s;		/* default 0: no drift re-sync */
	char	**notify;			/* notifier names */
	size_t	 nnotify;
};

/* Bits of config_notifier.on */
#define CONFIG_ON_FAILURE	0x1
#define CONFIG_ON_RECOVERY	0x2
#define CONFIG_ON_ALL		0x4
#define CONFIG_ON_STARTED	0x8	/* sync.started; not part of all */

struct config_header {
	char	*name;
	char	*value;
};

/*
 * An alert sink.  Only what every sink has lives here; a sink's own keys
 * (URL, SMTP server, headers, ...) fill the options struct its plug-in
 * declares beside its code (notify/<type>.c), reached through opts.
 */
struct notifier;
struct config_notifier {
	char	*name;
	char	*type;				/* a notifier type, notifier.h */
	unsigned on;				/* CONFIG_ON_*; default FAILURE */
	char	*title;				/* template; NULL: built-in */
	char	*body;				/* template; NULL: built-in */
	int	 timeout_s;			/* 0: notify.timeout_s */
	const struct notifier *plugin;		/* NULL: unknown type */
	void	*opts;				/* the plug-in's options */
};

struct config_marks;

struct config {
	int	 refs;				/* config_ref/config_unref (atomic) */
	char	*path;				/* the file it came from */
	int	 shutdown_timeout_s;		/* default 30 */
	struct config_server server;
	struct config_admin admin;
	struct config_state state;
	struct config_queue queue;
	struct config_retry retry;
	struct config_git git;
	struct config_notify_opts notify;
	char	*workdir;			/* default /var/lib/gitopsd/repos */
	char	*links_base_url;		/* links.base_url */
	char	**notify_default;
	size_t	 nnotify_default;
	struct config_registry *registries;
	size_t	 nregistries;
	struct config_source *sources;
	size_t	 nsources;
	struct config_repo *repos;
	size_t	 nrepos;
	struct config_cluster *clusters;
	size_t	 nclusters;
	struct config_app *apps;
	size_t	 napps;
	struct config_notifier *notifiers;
	size_t	 nnotifiers;
	struct config_marks *marks;		/* key path -> line:column */
};

/* Collected diagnostics: each "FILE:LINE:COLUMN: key.path: message". */
struct config_errors {
	char	**msgs;
	size_t	 n;
	char	**warnings;			/* valid but worth saying (-t) */
	size_t	 nwarnings;
};

/*
 * Load and validate path.  Returns a new config (caller frees with
 * config_free) or NULL with every problem in errs (caller frees with
 * config_errors_free).  Warnings may be set on success too.
 */
struct config	*config_load(const char *path, struct config_errors *errs);

/* Same, from a buffer; name is used in messages.  Secret files are read. */
struct config	*config_load_buffer(const char *name, const char *buf,
		    size_t len, struct config_errors *errs);

/*
 * For `gitopsd -t`, start and reload: like config_load, but when the file
 * has errors the config still comes back (with errs->n > 0) as long as it
 * parsed and every required key of every entry is present, so that the
 * checks of other modules (check_config) can add theirs and one run
 * reports every problem.  Such a config is for checking only: the caller
 * frees it and refuses the file when errs->n > 0.  Optional keys whose
 * value was wrong are left unset (NULL/0); an image policy with errors
 * reads as the default semver ">=0.0.0".  NULL as config_load otherwise.
 */
struct config	*config_load_for_check(const char *path,
		    struct config_errors *errs);

void		 config_free(struct config *);
void		 config_errors_free(struct config_errors *);

/*
 * Reference counting: a reload swaps the daemon's config while workers may
 * still run on the old one.  config_load returns refs == 1; the last unref
 * frees.
 */
struct config	*config_ref(struct config *);
void		 config_unref(struct config *);
/* Where links in alerts and statuses point: links.base_url, else
 * admin.public_url; NULL when neither is set. */
const char	*config_links_base(const struct config *);

/*
 * Append "FILE:LINE:COLUMN: keypath: message" for a key of a loaded config
 * (keypath as "sources[0].type", "apps[2].images[0].policy.semver"); the
 * position is where the parser saw that key (or its parent when absent).
 * Used by checks that live in other modules (handler types, policies,
 * templates, kubeconfigs: daemon/check.c).
 */
void		 config_error_at(const struct config *, struct config_errors *,
		    const char *keypath, const char *fmt, ...)
		    __attribute__((format(printf, 4, 5)));
void		 config_warning_at(const struct config *, struct config_errors *,
		    const char *keypath, const char *fmt, ...)
		    __attribute__((format(printf, 4, 5)));

/*
 * The schema, for documentation and tests: calls cb once per key with its
 * full path ("apps[].images[].policy.semver"), type name, default text
 * (NULL: none) and help text.
 */
void		 config_schema_foreach(void (*cb)(const char *keypath,
		    const char *type, const char *def, const char *help,
		    void *arg), void *arg);

const struct config_source	*config_find_source(const struct config *,
				    const char *name);
const struct config_repo	*config_find_repo(const struct config *,
				    const char *name);
const struct config_cluster	*config_find_cluster(const struct config *,
				    const char *name);
const struct config_app		*config_find_app(const struct config *,
				    const char *name);
const struct config_notifier	*config_find_notifier(const struct config *,
				    const char *name);

#endif
