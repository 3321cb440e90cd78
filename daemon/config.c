/*
 * config.c: the YAML configuration loader (DESIGN.md section 6).
 *
 * DESIGN
 * Loading runs in three passes over one file:
 *  1. libyaml events are built into a small node tree that keeps the
 *     1-based line and column of every key and value.  Aliases are refused
 *     (no billion laughs), nesting is capped at CONFIG_MAX_DEPTH and the
 *     file at CONFIG_MAX_BYTES.  A syntax error stops here: libyaml cannot
 *     resume after one.
 *  2. The tree is walked with the schema tables below: one table per
 *     struct, one row per key (type, range, default, required, help).  The
 *     same rows apply defaults, free the struct and document the schema
 *     (config_schema_foreach), so a key exists in exactly one place.
 *     Every problem is collected; the walk never stops at the first.
 *  3. Cross-references (unique names, an app's repo/cluster/notifiers,
 *     notify_default) are checked on the filled struct.
 * Errors are sorted by position and formatted
 * "FILE:LINE:COLUMN: key.path: message".  The key path of every key and
 * list item seen is kept with its position (struct config_marks) so that
 * checks in other modules (daemon/check.c) report in the same format.
 *
 * Secrets: `*_file` keys are read here (util_read_secret) and `*_env`
 * keys looked up in the environment; messages name the file or variable,
 * never the contents.  A value is never echoed for a key that could hold
 * a secret.
 */
#include <sys/stat.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <yaml.h>

#include "config.h"
#include "pr.h"
#include "util.h"

#define CONFIG_MAX_DEPTH	64
#define CONFIG_MAX_BYTES	(1024 * 1024)
#define CONFIG_MAX_SECRETS	2

/* ---- node tree */

enum node_kind {
	NODE_SCALAR,
	NODE_MAP,
	NODE_SEQ,
};

struct node {
	enum node_kind	 kind;
	int		 line;		/* 1-based */
	int		 col;
	/* scalar */
	char		*str;
	size_t		 len;
	int		 plain;		/* unquoted, untagged: may be null/bool/int */
	int		 null;		/* ~, null, empty or !!null */
	/* map: kids[0]=key0, kids[1]=value0, ...; seq: items */
	struct node	**kids;
	size_t		 nkids;
	size_t		 allockids;
};

/* ---- diagnostics */

struct diag {
	int	 line;
	int	 col;
	size_t	 seq;
	char	*msg;
};

struct diags {
	struct diag	*v;
	size_t		 n;
	size_t		 alloc;
};

struct mark {
	char	*path;
	int	 line;
	int	 col;
};

struct config_marks {
	char		*file;		/* the config's name in messages */
	struct mark	*v;
	size_t		 n;
	size_t		 alloc;
	int		 sorted;
};

/* State of one load. */
struct ctx {
	const char		*file;		/* as named in messages */
	char			*basedir;	/* relative paths resolve here */
	struct diags		 errors;
	struct diags		 warnings;
	size_t			 seq;
	struct buf		 path;		/* current key path */
	struct config_marks	*marks;
	struct config		*cfg;
};

/* ---- schema */

enum key_type {
	T_STR,
	T_NAME,			/* string, [A-Za-z0-9._-]+ */
	T_PATH,			/* relative: against the config's directory */
	T_KUBECONFIG,		/* path, or the literal "in-cluster" */
	T_REPO_URL,		/* URL, scp-like, or a local path (resolved) */
	T_FILE,			/* path to a file that must be readable now */
	T_INT,
	T_SIZE,
	T_BOOL,
	T_DOUBLE,
	T_LISTEN,
	T_STRLIST,
	T_FLAGS,
	T_ENUM,
	T_TABLE,
	T_LIST,
	T_HEADERS,
	T_SECRET_FILE,		/* off: path, off2: contents */
	T_SECRET_ENV,		/* off: variable name, off2: contents */
	T_SRC_SECRET_FILE,	/* off: secrets, off2: nsecrets, off3: paths */
	T_SRC_SECRET_FILES,
	T_SRC_SECRET_ENV,
};

static const char *const key_type_names[] = {
	[T_STR] = "string",
	[T_NAME] = "name",
	[T_PATH] = "path",
	[T_KUBECONFIG] = "path or in-cluster",
	[T_REPO_URL] = "URL or path",
	[T_FILE] = "file path",
	[T_INT] = "integer",
	[T_SIZE] = "size",
	[T_BOOL] = "bool",
	[T_DOUBLE] = "number",
	[T_LISTEN] = "listen address",
	[T_STRLIST] = "list of strings",
	[T_FLAGS] = "list of",
	[T_ENUM] = "one of",
	[T_TABLE] = "mapping",
	[T_LIST] = "list of mappings",
	[T_HEADERS] = "map of strings",
	[T_SECRET_FILE] = "secret file path",
	[T_SECRET_ENV] = "environment variable name",
	[T_SRC_SECRET_FILE] = "secret file path",
	[T_SRC_SECRET_FILES] = "list of secret file paths",
	[T_SRC_SECRET_ENV] = "environment variable name",
};

#define KEY_REQUIRED	0x1
#define KEY_NOSTORE	0x2	/* validated only; a check reads the node */
#define KEY_FREE_SHARED	0x4	/* frees off2/off3 shared with sibling keys */
#define KEY_PRIVATE	0x8	/* T_FILE holding a private key: mode checked */

struct cfg_enum {
	const char	*name;
	int		 value;
};

/*
 * One row per key.  Rows open with the name and type, positionally (tools
 * and tests scan for `{ "name", T_TYPE,`), then designated fields.
 */
struct cfg_table;
struct cfg_key {
	const char		*name;
	enum key_type		 type;
	size_t			 off;
	size_t			 off2;
	size_t			 off3;
	long long		 min;
	long long		 max;
	const char		*def;
	int			 flags;
	const struct cfg_table	*sub;
	const struct cfg_enum	*enums;
	const char		*help;
};

struct cfg_table {
	const char		*name;
	size_t			 size;		/* element size for lists */
	const struct cfg_key	*keys;
	size_t			 nkeys;
	/* Checks that span keys; map is NULL when the table was absent. */
	void			(*check)(struct ctx *, void *obj,
				    const struct node *map, const struct node *at);
};

#define TABLE(n, type, k, chk) \
	{ .name = n, .size = sizeof(type), .keys = k, .nkeys = nitems(k), \
	  .check = chk }

static void	check_server(struct ctx *, void *, const struct node *,
		    const struct node *);
static void	check_admin(struct ctx *, void *, const struct node *,
		    const struct node *);
static void	check_retry(struct ctx *, void *, const struct node *,
		    const struct node *);
static void	check_state(struct ctx *, void *, const struct node *,
		    const struct node *);
static void	check_links(struct ctx *, void *, const struct node *,
		    const struct node *);
static void	check_source(struct ctx *, void *, const struct node *,
		    const struct node *);
static void	check_rate_limit(struct ctx *, void *, const struct node *,
		    const struct node *);
static void	check_repo_auth(struct ctx *, void *, const struct node *,
		    const struct node *);
static void	check_repo(struct ctx *, void *, const struct node *,
		    const struct node *);
static void	check_repo_pr(struct ctx *, void *, const struct node *,
		    const struct node *);
static void	check_app(struct ctx *, void *, const struct node *,
		    const struct node *);
static void	check_policy(struct ctx *, void *, const struct node *,
		    const struct node *);
static void	check_notifier(struct ctx *, void *, const struct node *,
		    const struct node *);

#define O(type, field)	offsetof(type, field)

/* server.tls: its keys live in struct config_server */
static const struct cfg_key server_tls_keys[] = {
	{ "cert_file", T_FILE,
	  .off = O(struct config_server, tls_cert_file),
	  .help =
	    "PEM certificate chain; serve HTTPS when set (with key_file)" },
	{ "key_file", T_FILE,
	  .off = O(struct config_server, tls_key_file), .flags = KEY_PRIVATE,
	  .help = "PEM private key of cert_file" },
};
static const struct cfg_table server_tls_table =
    TABLE("tls", struct config_server, server_tls_keys, NULL);

static const struct cfg_key server_keys[] = {
	{ "listen", T_LISTEN,
	  .off = O(struct config_server, listen), .def = "0.0.0.0:8080",
	  .help =
	    "public webhook listener, HOST:PORT or [IPv6]:PORT (port 0: "
	    "any free port)" },
	{ "max_body_bytes", T_SIZE,
	  .off = O(struct config_server, max_body_bytes), .min = 1,
	  .max = 1024LL * 1024 * 1024, .def = "1048576",
	  .help = "largest request body accepted (413 above)" },
	{ "max_header_bytes", T_SIZE,
	  .off = O(struct config_server, max_header_bytes), .min = 1024,
	  .max = 1024 * 1024, .def = "16384",
	  .help = "largest request header block accepted" },
	{ "read_timeout_s", T_INT,
	  .off = O(struct config_server, read_timeout_s), .min = 1,
	  .max = 3600, .def = "10",
	  .help = "seconds to receive a request" },
	{ "write_timeout_s", T_INT,
	  .off = O(struct config_server, write_timeout_s), .min = 1,
	  .max = 3600, .def = "10",
	  .help = "seconds to send a response" },
	{ "max_connections", T_INT,
	  .off = O(struct config_server, max_connections), .min = 1,
	  .max = 1000000, .def = "1024",
	  .help = "concurrent connections before new ones wait" },
	{ "max_connections_per_client", T_INT,
	  .off = O(struct config_server, max_connections_per_client),
	  .min = 0, .max = 1000000, .def = "256",
	  .help =
	    "concurrent connections from one peer address (a proxy in "
	    "front is one address); 0: no per-client cap" },
	{ "tls", T_TABLE,
	  .sub = &server_tls_table,
	  .help = "optional TLS for the public listener" },
};
static const struct cfg_table server_table =
    TABLE("server", struct config_server, server_keys, check_server);

static const struct cfg_key admin_keys[] = {
	{ "listen", T_LISTEN,
	  .off = O(struct config_admin, listen), .def = "127.0.0.1:9090",
	  .help = "admin API, /metrics and /readyz listener" },
	{ "token_file", T_SECRET_FILE,
	  .off = O(struct config_admin, token_file),
	  .off2 = O(struct config_admin, token),
	  .help =
	    "file holding the bearer token of the admin API; unset: no "
	    "token" },
	{ "token_env", T_SECRET_ENV,
	  .off = O(struct config_admin, token_env),
	  .off2 = O(struct config_admin, token),
	  .help =
	    "environment variable holding the admin token (instead of "
	    "token_file)" },
	{ "allowed_hosts", T_STRLIST,
	  .off = O(struct config_admin, allowed_hosts),
	  .off2 = O(struct config_admin, nallowed_hosts),
	  .help =
	    "Host header values accepted besides the listen address "
	    "(host or host:port; DNS rebinding defence)" },
	{ "insecure_no_token", T_BOOL,
	  .off = O(struct config_admin, insecure_no_token), .def = "false",
	  .help =
	    "allow a listener beyond loopback without token_file or "
	    "token_env" },
};
static const struct cfg_table admin_table =
    TABLE("admin", struct config_admin, admin_keys, check_admin);

static const struct cfg_enum state_driver_enums[] = {
	{ "sqlite", CONFIG_STATE_SQLITE },
	{ "postgres", CONFIG_STATE_POSTGRES },
	{ NULL, 0 },
};

static const struct cfg_key state_keys[] = {
	{ "driver", T_ENUM,
	  .off = O(struct config_state, driver), .def = "sqlite",
	  .enums = state_driver_enums,
	  .help = "sqlite (the file at path) or postgres (the database of"
	      " dsn_file or dsn_env, shared by replicas)" },
	{ "path", T_PATH,
	  .off = O(struct config_state, path),
	  .def = "/var/lib/gitopsd/state.db",
	  .help = "SQLite database of jobs, deliveries and the notify outbox" },
	{ "dsn_file", T_SECRET_FILE,
	  .off = O(struct config_state, dsn_file),
	  .off2 = O(struct config_state, dsn),
	  .help = "postgres: file holding the libpq connection string or URI"
	      " (a secret)" },
	{ "dsn_env", T_SECRET_ENV,
	  .off = O(struct config_state, dsn_env),
	  .off2 = O(struct config_state, dsn),
	  .help = "postgres: environment variable holding the connection"
	      " string (instead of dsn_file)" },
	{ "dedup_days", T_INT,
	  .off = O(struct config_state, dedup_days), .min = 1, .max = 3650,
	  .def = "7",
	  .help = "days a delivery id is remembered for deduplication"
	      " (in memory: 21-43 bytes per id)" },
	{ "keep_days", T_INT,
	  .off = O(struct config_state, keep_days), .min = 1, .max = 3650,
	  .def = "30",
	  .help = "days finished jobs are kept" },
};
static const struct cfg_table state_table =
    TABLE("state", struct config_state, state_keys, check_state);

static const struct cfg_key queue_keys[] = {
	{ "max_queued", T_INT,
	  .off = O(struct config_queue, max_queued), .min = 1,
	  .max = 100000000, .def = "100000",
	  .help = "queued jobs before webhooks get 503 + Retry-After" },
	{ "workers", T_INT,
	  .off = O(struct config_queue, workers), .min = 1, .max = 256,
	  .def = "4",
	  .help = "worker threads running jobs" },
	{ "lease_s", T_INT,
	  .off = O(struct config_queue, lease_s), .min = 1, .max = 3600,
	  .def = "30",
	  .help = "seconds a claimed job's lease lasts; renewed every third"
	  " of it while the job runs, taken over by any replica after it" },
};
static const struct cfg_table queue_table =
    TABLE("queue", struct config_queue, queue_keys, NULL);

static const struct cfg_key retry_keys[] = {
	{ "base_s", T_INT,
	  .off = O(struct config_retry, base_s), .min = 1, .max = 86400,
	  .def = "5",
	  .help = "first retry delay; doubles each attempt (with jitter)" },
	{ "max_s", T_INT,
	  .off = O(struct config_retry, max_s), .min = 1, .max = 604800,
	  .def = "300",
	  .help = "longest retry delay (>= base_s)" },
	{ "max_attempts", T_INT,
	  .off = O(struct config_retry, max_attempts), .min = 1, .max = 1000,
	  .def = "8",
	  .help = "attempts before a job is dead and an alert is sent" },
};
static const struct cfg_table retry_table =
    TABLE("retry", struct config_retry, retry_keys, check_retry);

static const struct cfg_key git_keys[] = {
	{ "push_retries", T_INT,
	  .off = O(struct config_git, push_retries), .max = 100, .def = "5",
	  .help =
	    "re-fetch, re-apply and push again after a non-fast-forward" },
	{ "timeout_s", T_INT,
	  .off = O(struct config_git, timeout_s), .min = 1, .max = 86400,
	  .def = "120",
	  .help =
	    "connect timeout, and the longest a fetch or push may go without "
	    "moving a byte (it may run 10 times this in all)" },
	{ "commit_message", T_STR,
	  .off = O(struct config_git, commit_message),
	  .help = "commit message template of image updates; unset: built-in" },
};
static const struct cfg_table git_table =
    TABLE("git", struct config_git, git_keys, NULL);

static const struct cfg_key notify_opts_keys[] = {
	{ "max_attempts", T_INT,
	  .off = O(struct config_notify_opts, max_attempts), .min = 1,
	  .max = 1000, .def = "10",
	  .help = "delivery attempts per alert" },
	{ "repeat_after_s", T_INT,
	  .off = O(struct config_notify_opts, repeat_after_s),
	  .max = 30 * 86400, .def = "3600",
	  .help =
	    "an identical alert is sent again only after this long (0: "
	    "never)" },
	{ "timeout_s", T_INT,
	  .off = O(struct config_notify_opts, timeout_s), .min = 1,
	  .max = 600, .def = "10",
	  .help = "timeout of one delivery" },
};
static const struct cfg_table notify_opts_table =
    TABLE("notify", struct config_notify_opts, notify_opts_keys, NULL);

static const struct cfg_key links_keys[] = {
	{ "base_url", T_STR,
	  .off = O(struct config, links_base_url),
	  .help =
	    "http(s) URL prefix for links in alerts (the admin API as "
	    "users reach it)" },
};
static const struct cfg_table links_table =
    TABLE("links", struct config, links_keys, check_links);

static const struct cfg_key registry_keys[] = {
	{ "host", T_STR,
	  .off = O(struct config_registry, host), .flags = KEY_REQUIRED,
	  .help =
	    "registry host[:port] as in image names (docker.io for Docker "
	    "Hub)" },
	{ "username", T_STR,
	  .off = O(struct config_registry, username),
	  .help = "user for the registry's token/basic auth" },
	{ "password_file", T_SECRET_FILE,
	  .off = O(struct config_registry, password_file),
	  .off2 = O(struct config_registry, password),
	  .help = "file holding the password or access token" },
	{ "password_env", T_SECRET_ENV,
	  .off = O(struct config_registry, password_env),
	  .off2 = O(struct config_registry, password),
	  .help = "environment variable holding the password" },
	{ "insecure", T_BOOL,
	  .off = O(struct config_registry, insecure), .def = "false",
	  .help = "plain HTTP instead of HTTPS" },
};
static const struct cfg_table registry_table =
    TABLE("registries", struct config_registry, registry_keys, NULL);

static const struct cfg_key rate_limit_keys[] = {
	{ "rps", T_DOUBLE,
	  .off = O(struct config_rate_limit, rps), .max = 1000000, .def = "0",
	  .help = "requests per second accepted (0: unlimited)" },
	{ "burst", T_INT,
	  .off = O(struct config_rate_limit, burst), .min = 1, .max = 1000000,
	  .help = "bucket size; default max(1, rps)" },
};
static const struct cfg_table rate_limit_table =
    TABLE("rate_limit", struct config_rate_limit, rate_limit_keys,
    check_rate_limit);

static const struct cfg_key source_keys[] = {
	{ "name", T_NAME,
	  .off = O(struct config_source, name), .flags = KEY_REQUIRED,
	  .help = "unique; the webhook URL is /hooks/NAME" },
	{ "type", T_STR,
	  .off = O(struct config_source, type), .flags = KEY_REQUIRED,
	  .help =
	    "sender: github, gitlab, gitea, bitbucket, registry, "
	    "dockerhub, harbor, quay, generic-hmac" },
	{ "secret_file", T_SRC_SECRET_FILE,
	  .off = O(struct config_source, secrets),
	  .off2 = O(struct config_source, nsecrets),
	  .off3 = O(struct config_source, secret_paths),
	  .flags = KEY_FREE_SHARED,
	  .help = "file holding the shared secret" },
	{ "secret_files", T_SRC_SECRET_FILES,
	  .off = O(struct config_source, secrets),
	  .off2 = O(struct config_source, nsecrets),
	  .off3 = O(struct config_source, secret_paths),
	  .help =
	    "up to two secret files [new, old]: both verify during "
	    "rotation" },
	{ "token_file", T_SRC_SECRET_FILE,
	  .off = O(struct config_source, secrets),
	  .off2 = O(struct config_source, nsecrets),
	  .off3 = O(struct config_source, secret_paths),
	  .help = "file holding the token (token-based senders)" },
	{ "secret_env", T_SRC_SECRET_ENV,
	  .off = O(struct config_source, secrets),
	  .off2 = O(struct config_source, nsecrets),
	  .off3 = O(struct config_source, secret_paths),
	  .help = "environment variable holding the secret" },
	{ "token_env", T_SRC_SECRET_ENV,
	  .off = O(struct config_source, secrets),
	  .off2 = O(struct config_source, nsecrets),
	  .off3 = O(struct config_source, secret_paths),
	  .help = "environment variable holding the token" },
	{ "allow_sha1", T_BOOL,
	  .off = O(struct config_source, allow_sha1), .def = "false",
	  .help =
	    "github: also accept the legacy X-Hub-Signature (HMAC-SHA1)" },
	{ "verify_tag", T_BOOL,
	  .off = O(struct config_source, verify_tag), .def = "true",
	  .help =
	    "registry senders: check that a pushed tag exists before "
	    "acting" },
	{ "rate_limit", T_TABLE,
	  .off = O(struct config_source, rate_limit),
	  .sub = &rate_limit_table,
	  .help = "per-source request rate limit (429 above)" },
};
static const struct cfg_table source_table =
    TABLE("sources", struct config_source, source_keys, check_source);

static const struct cfg_key repo_auth_keys[] = {
	{ "username", T_STR,
	  .off = O(struct config_repo_auth, username),
	  .help = "HTTPS user (x-access-token, oauth2, ...)" },
	{ "password_file", T_SECRET_FILE,
	  .off = O(struct config_repo_auth, password_file),
	  .off2 = O(struct config_repo_auth, password),
	  .help = "file holding the HTTPS password or token" },
	{ "password_env", T_SECRET_ENV,
	  .off = O(struct config_repo_auth, password_env),
	  .off2 = O(struct config_repo_auth, password),
	  .help = "environment variable holding the HTTPS password" },
	{ "ssh_key_file", T_FILE,
	  .off = O(struct config_repo_auth, ssh_key_file), .flags = KEY_PRIVATE,
	  .help = "SSH private key (ssh:// and scp-like URLs)" },
	{ "ssh_pubkey_file", T_FILE,
	  .off = O(struct config_repo_auth, ssh_pubkey_file),
	  .help = "SSH public key, if not derivable" },
	{ "ssh_passphrase_file", T_SECRET_FILE,
	  .off = O(struct config_repo_auth, ssh_passphrase_file),
	  .off2 = O(struct config_repo_auth, ssh_passphrase),
	  .help = "file holding the SSH key's passphrase" },
	{ "ssh_passphrase_env", T_SECRET_ENV,
	  .off = O(struct config_repo_auth, ssh_passphrase_env),
	  .off2 = O(struct config_repo_auth, ssh_passphrase),
	  .help = "environment variable holding the SSH passphrase" },
	{ "known_hosts_file", T_FILE,
	  .off = O(struct config_repo_auth, known_hosts_file),
	  .help = "OpenSSH known_hosts checked against the server's host key" },
};
static const struct cfg_table repo_auth_table =
    TABLE("auth", struct config_repo_auth, repo_auth_keys, check_repo_auth);

static const struct cfg_key repo_author_keys[] = {
	{ "name", T_STR,
	  .off = O(struct config_repo, author_name), .def = "gitopsd",
	  .help = "author and committer name of commits" },
	{ "email", T_STR,
	  .off = O(struct config_repo, author_email),
	  .def = "gitopsd@localhost",
	  .help = "author and committer email" },
};
static const struct cfg_table repo_author_table =
    TABLE("author", struct config_repo, repo_author_keys, NULL);

static const struct cfg_enum pr_provider_enums[] = {
	{ "github", CONFIG_PR_GITHUB },
	{ "gitlab", CONFIG_PR_GITLAB },
	{ "gitea", CONFIG_PR_GITEA },
	{ "bitbucket", CONFIG_PR_BITBUCKET },
	{ NULL, 0 },
};

static const struct cfg_key repo_pr_keys[] = {
	{ "provider", T_ENUM,
	  .off = O(struct config_pull_request, provider),
	  .enums = pr_provider_enums,
	  .help = "github, gitlab, gitea or bitbucket (Cloud)" },
	{ "api_url", T_STR,
	  .off = O(struct config_pull_request, api_url),
	  .help = "REST API base for self-hosted hosts; unset: the public one" },
	{ "token_file", T_SECRET_FILE,
	  .off = O(struct config_pull_request, token_file),
	  .off2 = O(struct config_pull_request, token),
	  .help = "file holding the API token" },
	{ "title", T_STR,
	  .off = O(struct config_pull_request, title),
	  .help = "template; unset: deploy({{app}}): {{image}} {{old}} -> {{new}}" },
	{ "body", T_STR,
	  .off = O(struct config_pull_request, body),
	  .help = "template put above the list of image changes" },
	{ "labels", T_STRLIST,
	  .off = O(struct config_pull_request, labels),
	  .off2 = O(struct config_pull_request, nlabels),
	  .help = "labels set on the pull request (not on Bitbucket)" },
	{ "close_stale", T_BOOL,
	  .off = O(struct config_pull_request, close_stale), .def = "false",
	  .help = "close the open PRs of older tags of the same update" },
};
static const struct cfg_table repo_pr_table =
    TABLE("pull_request", struct config_pull_request, repo_pr_keys,
    check_repo_pr);

static const struct cfg_key repo_keys[] = {
	{ "name", T_NAME,
	  .off = O(struct config_repo, name), .flags = KEY_REQUIRED,
	  .help = "unique; apps refer to it" },
	{ "url", T_REPO_URL,
	  .off = O(struct config_repo, url), .flags = KEY_REQUIRED,
	  .help = "https://, ssh://, user@host:path, file:// or a local path" },
	{ "branch", T_STR,
	  .off = O(struct config_repo, branch), .def = "main",
	  .help = "branch holding the manifests" },
	{ "push_branch", T_STR,
	  .off = O(struct config_repo, push_branch),
	  .help = "branch image updates are pushed to, a template for one "
	    "per update ({{app}} {{image}} {{tag}} {{short_sha}}); unset: "
	    "branch" },
	{ "auth", T_TABLE,
	  .off = O(struct config_repo, auth), .sub = &repo_auth_table,
	  .help = "credentials: password or SSH key" },
	{ "author", T_TABLE,
	  .sub = &repo_author_table,
	  .help = "identity of image-update commits" },
	{ "commit_message", T_STR,
	  .off = O(struct config_repo, commit_message),
	  .help = "template; unset: git.commit_message" },
	{ "pull_request", T_TABLE,
	  .off = O(struct config_repo, pull_request), .sub = &repo_pr_table,
	  .help = "open a pull/merge request for each pushed push_branch" },
};
static const struct cfg_table repo_table =
    TABLE("repos", struct config_repo, repo_keys, check_repo);

static const struct cfg_key cluster_keys[] = {
	{ "name", T_NAME,
	  .off = O(struct config_cluster, name), .flags = KEY_REQUIRED,
	  .help = "unique; apps refer to it" },
	{ "kubeconfig", T_KUBECONFIG,
	  .off = O(struct config_cluster, kubeconfig), .flags = KEY_REQUIRED,
	  .help =
	    "kubeconfig path, or in-cluster for the pod's service account" },
	{ "context", T_STR,
	  .off = O(struct config_cluster, context),
	  .help = "kubeconfig context; unset: current-context" },
	{ "allow_insecure", T_BOOL,
	  .off = O(struct config_cluster, allow_insecure), .def = "false",
	  .help = "honour insecure-skip-tls-verify in the kubeconfig" },
	{ "qps", T_DOUBLE,
	  .off = O(struct config_cluster, qps), .max = 100000, .def = "50",
	  .help = "API requests a second from all workers (0: no limit)" },
	{ "burst", T_INT,
	  .off = O(struct config_cluster, burst), .min = 1, .max = 100000,
	  .def = "100",
	  .help = "API requests allowed at once above qps" },
};
static const struct cfg_table cluster_table =
    TABLE("clusters", struct config_cluster, cluster_keys, NULL);

static const struct cfg_enum order_enums[] = {
	{ "numerical", CONFIG_ORDER_NUMERICAL },
	{ "alphabetical", CONFIG_ORDER_ALPHABETICAL },
	{ NULL, 0 },
};

static const struct cfg_key policy_keys[] = {
	{ "semver", T_STR,
	  .off = O(struct config_policy, semver),
	  .help = "highest tag in a semver range, e.g. \">=1.2.0 <2.0.0\"" },
	{ "prerelease", T_BOOL,
	  .off = O(struct config_policy, prerelease), .def = "false",
	  .help = "semver: also accept pre-release tags" },
	{ "pattern", T_STR,
	  .off = O(struct config_policy, pattern),
	  .help = "tags matching a POSIX extended regex" },
	{ "extract", T_STR,
	  .off = O(struct config_policy, extract),
	  .help = "pattern: \"$1\" compares that group; unset: whole tag" },
	{ "order", T_ENUM,
	  .off = O(struct config_policy, order), .def = "numerical",
	  .enums = order_enums,
	  .help = "pattern: numerical or alphabetical, highest wins" },
	{ "latest", T_BOOL,
	  .flags = KEY_NOSTORE,
	  .help = "true: the most recently pushed tag wins" },
	{ "digest", T_STR,
	  .off = O(struct config_policy, digest_tag),
	  .help = "follow this tag's digest (image@sha256:...)" },
};
static const struct cfg_table policy_table =
    TABLE("policy", struct config_policy, policy_keys, check_policy);

static const struct cfg_key image_keys[] = {
	{ "repository", T_STR,
	  .off = O(struct config_image, repository), .flags = KEY_REQUIRED,
	  .help = "image repository as written in the manifests" },
	{ "policy", T_TABLE,
	  .off = O(struct config_image, policy), .sub = &policy_table,
	  .help =
	    "exactly one of semver, pattern, latest, digest; default "
	    "semver \">=0.0.0\"" },
	{ "poll_interval_s", T_INT,
	  .off = O(struct config_image, poll_interval_s), .min = 0,
	  .max = 604800, .def = "300",
	  .help = "list the registry's tags this often (0: off; not for "
	    "latest)" },
};
static const struct cfg_table image_table =
    TABLE("images", struct config_image, image_keys, NULL);

static const struct cfg_key app_render_keys[] = {
	{ "command", T_STRLIST,
	  .off = O(struct config_app, render_command),
	  .off2 = O(struct config_app, nrender_command),
	  .help = "argv run in the app path; its stdout is the manifests" },
	{ "timeout_s", T_INT,
	  .off = O(struct config_app, render_timeout_s), .min = 1,
	  .max = 3600, .def = "60",
	  .help = "render command timeout" },
};
static const struct cfg_table app_render_table =
    TABLE("render", struct config_app, app_render_keys, NULL);

static const struct cfg_key app_sync_keys[] = {
	{ "auto", T_BOOL,
	  .off = O(struct config_app, sync_auto), .def = "true",
	  .help = "sync on push events and after image updates" },
	{ "prune", T_BOOL,
	  .off = O(struct config_app, sync_prune), .def = "false",
	  .help = "delete objects no longer in Git" },
	{ "timeout_s", T_INT,
	  .off = O(struct config_app, sync_timeout_s), .min = 1, .max = 86400,
	  .def = "300",
	  .help = "wait this long for health after apply" },
	{ "interval_s", T_INT,
	  .off = O(struct config_app, sync_interval_s), .max = 7 * 86400,
	  .def = "0",
	  .help = "periodic drift re-sync (0: off)" },
};
static const struct cfg_table app_sync_table =
    TABLE("sync", struct config_app, app_sync_keys, NULL);

static const struct cfg_key app_keys[] = {
	{ "name", T_NAME,
	  .off = O(struct config_app, name), .flags = KEY_REQUIRED,
	  .help = "unique; the admin API uses it" },
	{ "repo", T_STR,
	  .off = O(struct config_app, repo), .flags = KEY_REQUIRED,
	  .help = "name of a repos entry" },
	{ "path", T_STR,
	  .off = O(struct config_app, path), .def = ".",
	  .help = "directory of the manifests within the repo" },
	{ "cluster", T_STR,
	  .off = O(struct config_app, cluster),
	  .help = "name of a clusters entry; unset: Git write-back only" },
	{ "namespace", T_STR,
	  .off = O(struct config_app, namespace),
	  .help = "default namespace of namespaced objects" },
	{ "exclude", T_STRLIST,
	  .off = O(struct config_app, exclude),
	  .off2 = O(struct config_app, nexclude),
	  .help = "glob patterns of files under path to skip" },
	{ "render", T_TABLE,
	  .sub = &app_render_table,
	  .help =
	    "generate manifests with a command (helm template, kustomize "
	    "build)" },
	{ "images", T_LIST,
	  .off = O(struct config_app, images),
	  .off2 = O(struct config_app, nimages), .sub = &image_table,
	  .help = "images kept up to date in the manifests" },
	{ "sync", T_TABLE,
	  .sub = &app_sync_table,
	  .help = "how the app is applied to its cluster" },
	{ "notify", T_STRLIST,
	  .off = O(struct config_app, notify),
	  .off2 = O(struct config_app, nnotify),
	  .help = "notifier names; unset: notify_default" },
};
static const struct cfg_table app_table =
    TABLE("apps", struct config_app, app_keys, check_app);

static const struct cfg_enum on_flags[] = {
	{ "failure", CONFIG_ON_FAILURE },
	{ "recovery", CONFIG_ON_RECOVERY },
	{ "all", CONFIG_ON_ALL },
	{ NULL, 0 },
};

static const struct cfg_key notifier_keys[] = {
	{ "name", T_NAME,
	  .off = O(struct config_notifier, name), .flags = KEY_REQUIRED,
	  .help = "unique; apps and notify_default refer to it" },
	{ "type", T_STR,
	  .off = O(struct config_notifier, type), .flags = KEY_REQUIRED,
	  .help = "slack, email or webhook" },
	{ "url", T_STR,
	  .off = O(struct config_notifier, url),
	  .help = "webhook: target URL (not for slack: its URL is a secret)" },
	{ "url_file", T_SECRET_FILE,
	  .off = O(struct config_notifier, url_file),
	  .off2 = O(struct config_notifier, url_secret),
	  .help = "file holding the URL (slack incoming webhook)" },
	{ "url_env", T_SECRET_ENV,
	  .off = O(struct config_notifier, url_env),
	  .off2 = O(struct config_notifier, url_secret),
	  .help = "environment variable holding the URL" },
	{ "smtp_url", T_STR,
	  .off = O(struct config_notifier, smtp_url),
	  .help = "email: smtp://host:port or smtps://host:port" },
	{ "require_tls", T_BOOL,
	  .off = O(struct config_notifier, require_tls), .def = "false",
	  .help = "email: refuse smtp:// without STARTTLS" },
	{ "allow_plaintext_auth", T_BOOL,
	  .off = O(struct config_notifier, allow_plaintext_auth),
	  .def = "false",
	  .help =
	    "email: log in on smtp:// even when the server offers no "
	    "STARTTLS (the password goes out in clear)" },
	{ "username", T_STR,
	  .off = O(struct config_notifier, username),
	  .help = "email: SMTP user" },
	{ "password_file", T_SECRET_FILE,
	  .off = O(struct config_notifier, password_file),
	  .off2 = O(struct config_notifier, password),
	  .help = "email: file holding the SMTP password" },
	{ "password_env", T_SECRET_ENV,
	  .off = O(struct config_notifier, password_env),
	  .off2 = O(struct config_notifier, password),
	  .help = "email: environment variable holding the SMTP password" },
	{ "from", T_STR,
	  .off = O(struct config_notifier, from),
	  .help = "email: sender address" },
	{ "to", T_STRLIST,
	  .off = O(struct config_notifier, to),
	  .off2 = O(struct config_notifier, nto),
	  .help = "email: recipient addresses" },
	{ "secret_file", T_SECRET_FILE,
	  .off = O(struct config_notifier, secret_file),
	  .off2 = O(struct config_notifier, secret),
	  .help = "webhook: file holding the HMAC-SHA256 signing key" },
	{ "secret_env", T_SECRET_ENV,
	  .off = O(struct config_notifier, secret_env),
	  .off2 = O(struct config_notifier, secret),
	  .help = "webhook: environment variable holding the signing key" },
	{ "headers", T_HEADERS,
	  .off = O(struct config_notifier, headers),
	  .off2 = O(struct config_notifier, nheaders),
	  .help = "webhook: extra request headers, name: value" },
	{ "on", T_FLAGS,
	  .off = O(struct config_notifier, on), .def = "failure",
	  .enums = on_flags,
	  .help = "events sent: failure, recovery, all" },
	{ "title", T_STR,
	  .off = O(struct config_notifier, title),
	  .help = "title/subject template; unset: built-in" },
	{ "body", T_STR,
	  .off = O(struct config_notifier, body),
	  .help = "body template; unset: built-in" },
	{ "timeout_s", T_INT,
	  .off = O(struct config_notifier, timeout_s), .max = 600, .def = "0",
	  .help = "delivery timeout (0: notify.timeout_s)" },
	{ "ca_file", T_FILE,
	  .off = O(struct config_notifier, ca_file),
	  .help =
	    "email/webhook: PEM CA bundle that verifies the server; unset: "
	    "the system's" },
};
static const struct cfg_table notifier_table_ =
    TABLE("notifiers", struct config_notifier, notifier_keys, check_notifier);

static const struct cfg_key top_keys[] = {
	{ "shutdown_timeout_s", T_INT,
	  .off = O(struct config, shutdown_timeout_s), .min = 1, .max = 3600,
	  .def = "30",
	  .help =
	    "SIGTERM: wait this long for running jobs before re-queueing "
	    "them" },
	{ "server", T_TABLE,
	  .off = O(struct config, server), .sub = &server_table,
	  .help = "the public webhook listener" },
	{ "admin", T_TABLE,
	  .off = O(struct config, admin), .sub = &admin_table,
	  .help = "the admin API listener" },
	{ "state", T_TABLE,
	  .off = O(struct config, state), .sub = &state_table,
	  .help = "durable state" },
	{ "queue", T_TABLE,
	  .off = O(struct config, queue), .sub = &queue_table,
	  .help = "job queue and workers" },
	{ "retry", T_TABLE,
	  .off = O(struct config, retry), .sub = &retry_table,
	  .help = "retries of failed jobs" },
	{ "git", T_TABLE,
	  .off = O(struct config, git), .sub = &git_table,
	  .help = "Git write-back and remote operations" },
	{ "notify", T_TABLE,
	  .off = O(struct config, notify), .sub = &notify_opts_table,
	  .help = "alert delivery" },
	{ "notify_default", T_STRLIST,
	  .off = O(struct config, notify_default),
	  .off2 = O(struct config, nnotify_default),
	  .help = "notifier names for apps without notify" },
	{ "links", T_TABLE,
	  .sub = &links_table,
	  .help = "links in alerts" },
	{ "workdir", T_PATH,
	  .off = O(struct config, workdir), .def = "/var/lib/gitopsd/repos",
	  .help = "local clones of the repos" },
	{ "registries", T_LIST,
	  .off = O(struct config, registries),
	  .off2 = O(struct config, nregistries), .sub = &registry_table,
	  .help = "credentials of container registries gitopsd queries" },
	{ "sources", T_LIST,
	  .off = O(struct config, sources),
	  .off2 = O(struct config, nsources), .sub = &source_table,
	  .help = "webhook senders" },
	{ "repos", T_LIST,
	  .off = O(struct config, repos), .off2 = O(struct config, nrepos),
	  .sub = &repo_table,
	  .help = "Git repositories of manifests" },
	{ "clusters", T_LIST,
	  .off = O(struct config, clusters),
	  .off2 = O(struct config, nclusters), .sub = &cluster_table,
	  .help = "Kubernetes clusters" },
	{ "apps", T_LIST,
	  .off = O(struct config, apps), .off2 = O(struct config, napps),
	  .sub = &app_table,
	  .help = "what is deployed where" },
	{ "notifiers", T_LIST,
	  .off = O(struct config, notifiers),
	  .off2 = O(struct config, nnotifiers), .sub = &notifier_table_,
	  .help = "alert sinks" },
};
static const struct cfg_table top_table =
    TABLE("", struct config, top_keys, NULL);

/* ---- small helpers */

/* Keys that hold a secret inline; the *_file / *_env keys replace them. */
static const char *const inline_secret_names[] = {
	"secret", "secrets", "token", "tokens", "password", "passwords",
	"passphrase", "ssh_passphrase", "ssh_key", "private_key", "api_key",
};

#define FIELD(obj, off, type)	((type *)(void *)((char *)(obj) + (off)))

static void
diags_add(struct diags *d, int line, int col, size_t seq, char *msg)
{
	if (d->n == d->alloc) {
		d->alloc = d->alloc ? d->alloc * 2 : 16;
		d->v = xreallocarray(d->v, d->alloc, sizeof(*d->v));
	}
	d->v[d->n].line = line;
	d->v[d->n].col = col;
	d->v[d->n].seq = seq;
	d->v[d->n].msg = msg;
	d->n++;
}

static void
diags_free(struct diags *d)
{
	size_t	i;

	for (i = 0; i < d->n; i++)
		free(d->v[i].msg);
	free(d->v);
	memset(d, 0, sizeof(*d));
}

static int
diag_cmp(const void *a, const void *b)
{
	const struct diag *x = a, *y = b;

	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	if (x->col != y->col)
		return x->col < y->col ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void
strv_push(char ***v, size_t *n, char *s)
{
	*v = xreallocarray(*v, *n + 1, sizeof(**v));
	(*v)[(*n)++] = s;
}

static char *diag_format(const char *, int, int, const char *, const char *,
    va_list) __attribute__((format(printf, 5, 0)));

/* Formats one message; path NULL or "" leaves the key part out. */
static char *
diag_format(const char *file, int line, int col, const char *path,
    const char *fmt, va_list ap)
{
	char	*msg, *s;

	msg = xvasprintf(fmt, ap);
	if (path != NULL && *path != '\0')
		s = xasprintf("%s:%d:%d: %s: %s", file, line, col, path, msg);
	else
		s = xasprintf("%s:%d:%d: %s", file, line, col, msg);
	free(msg);
	return s;
}

static void ctx_vdiag(struct ctx *, int, const struct node *, const char *,
    const char *, va_list) __attribute__((format(printf, 5, 0)));

static void
ctx_vdiag(struct ctx *ctx, int warning, const struct node *at,
    const char *path, const char *fmt, va_list ap)
{
	int	 line = at ? at->line : 1, col = at ? at->col : 1;
	char	*s;

	s = diag_format(ctx->file, line, col, path, fmt, ap);
	diags_add(warning ? &ctx->warnings : &ctx->errors, line, col,
	    ctx->seq++, s);
}

/* An error at node `at` for the current key path. */
static void ctx_err(struct ctx *, const struct node *, const char *, ...)
    __attribute__((format(printf, 3, 4)));
static void
ctx_err(struct ctx *ctx, const struct node *at, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	ctx_vdiag(ctx, 0, at, ctx->path.data, fmt, ap);
	va_end(ap);
}

/* An error at node `at` for the current key path plus ".sub". */
static void ctx_err_sub(struct ctx *, const struct node *, const char *,
    const char *, ...) __attribute__((format(printf, 4, 5)));
static void
ctx_err_sub(struct ctx *ctx, const struct node *at, const char *sub,
    const char *fmt, ...)
{
	va_list	 ap;
	char	*p;

	if (ctx->path.len > 0)
		p = xasprintf("%s.%s", ctx->path.data, sub);
	else
		p = xstrdup(sub);
	va_start(ap, fmt);
	ctx_vdiag(ctx, 0, at, p, fmt, ap);
	va_end(ap);
	free(p);
}

static void ctx_warn(struct ctx *, const struct node *, const char *, ...)
    __attribute__((format(printf, 3, 4)));
static void
ctx_warn(struct ctx *ctx, const struct node *at, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	ctx_vdiag(ctx, 1, at, ctx->path.data, fmt, ap);
	va_end(ap);
}

/* Path stack: push returns the length to restore with path_pop. */
static size_t
path_push_key(struct ctx *ctx, const char *key)
{
	size_t	old = ctx->path.len;

	if (old > 0)
		buf_addstr(&ctx->path, ".");
	buf_addstr(&ctx->path, key);
	return old;
}

static size_t
path_push_index(struct ctx *ctx, size_t i)
{
	size_t	old = ctx->path.len;

	buf_printf(&ctx->path, "[%zu]", i);
	return old;
}

static void
path_pop(struct ctx *ctx, size_t old)
{
	ctx->path.len = old;
	ctx->path.data[old] = '\0';
}

static void
marks_add(struct config_marks *m, const char *path, int line, int col)
{
	if (m->n == m->alloc) {
		m->alloc = m->alloc ? m->alloc * 2 : 64;
		m->v = xreallocarray(m->v, m->alloc, sizeof(*m->v));
	}
	m->v[m->n].path = xstrdup(path);
	m->v[m->n].line = line;
	m->v[m->n].col = col;
	m->n++;
	m->sorted = 0;
}

static void
ctx_mark(struct ctx *ctx, const struct node *at)
{
	if (at != NULL)
		marks_add(ctx->marks, ctx->path.data, at->line, at->col);
}

static int
mark_cmp(const void *a, const void *b)
{
	const struct mark *x = a, *y = b;

	return strcmp(x->path, y->path);
}

static void
marks_free(struct config_marks *m)
{
	size_t	i;

	if (m == NULL)
		return;
	for (i = 0; i < m->n; i++)
		free(m->v[i].path);
	free(m->v);
	free(m->file);
	free(m);
}

/*
 * Position of keypath, or of its nearest recorded parent; 1:1 when none.
 * "a[2].b.c" falls back to "a[2].b", "a[2]", "a".
 */
static void
marks_find(const struct config_marks *m, const char *keypath, int *line,
    int *col)
{
	struct mark	 key, *hit;
	char		*p, *cut;

	*line = 1;
	*col = 1;
	if (m == NULL || m->n == 0 || keypath == NULL)
		return;
	p = xstrdup(keypath);
	memset(&key, 0, sizeof(key));
	for (;;) {
		key.path = p;
		if (m->sorted)
			hit = bsearch(&key, m->v, m->n, sizeof(*m->v), mark_cmp);
		else {
			size_t	i;

			hit = NULL;
			for (i = 0; i < m->n && hit == NULL; i++)
				if (strcmp(m->v[i].path, p) == 0)
					hit = &m->v[i];
		}
		if (hit != NULL) {
			*line = hit->line;
			*col = hit->col;
			break;
		}
		if (*p == '\0')
			break;
		cut = strrchr(p, '.');
		if (p[strlen(p) - 1] == ']') {
			char	*br = strrchr(p, '[');

			if (br != NULL && (cut == NULL || br > cut))
				cut = br;
		}
		if (cut == NULL)
			*p = '\0';
		else
			*cut = '\0';
	}
	free(p);
}

/* ---- paths */

/* Lexically clean an absolute path: no "//", "." or "x/..". */
static char *
path_clean(const char *in)
{
	char	*out, *seg, *save = NULL, *tmp;
	size_t	 len = 0;

	out = xmalloc(strlen(in) + 2);
	out[0] = '\0';
	tmp = xstrdup(in);
	for (seg = strtok_r(tmp, "/", &save); seg != NULL;
	    seg = strtok_r(NULL, "/", &save)) {
		if (strcmp(seg, ".") == 0)
			continue;
		if (strcmp(seg, "..") == 0) {
			while (len > 0 && out[len - 1] != '/')
				len--;
			if (len > 0)
				len--;
			out[len] = '\0';
			continue;
		}
		out[len++] = '/';
		memcpy(out + len, seg, strlen(seg));
		len += strlen(seg);
		out[len] = '\0';
	}
	if (len == 0) {
		out[0] = '/';
		out[1] = '\0';
	}
	free(tmp);
	return out;
}

/* An absolute, cleaned path: relative ones resolve against ctx->basedir. */
static char *
path_resolve(const struct ctx *ctx, const char *p)
{
	char	*joined, *out;

	if (p[0] == '/')
		return path_clean(p);
	joined = xasprintf("%s/%s", ctx->basedir, p);
	out = path_clean(joined);
	free(joined);
	return out;
}

static char *
path_cwd(void)
{
	char	buf[PATH_MAX];

	if (getcwd(buf, sizeof(buf)) == NULL)
		return xstrdup("/");
	return xstrdup(buf);
}

/* ---- YAML to node tree */

static void
node_free(struct node *n)
{
	size_t	i;

	if (n == NULL)
		return;
	for (i = 0; i < n->nkids; i++)
		node_free(n->kids[i]);
	free(n->kids);
	free(n->str);
	free(n);
}

static void
node_add(struct node *parent, struct node *kid)
{
	if (parent->nkids == parent->allockids) {
		parent->allockids = parent->allockids ? parent->allockids * 2 : 8;
		parent->kids = xreallocarray(parent->kids, parent->allockids,
		// NOLINTNEXTLINE(bugprone-sizeof-expression): array of pointers
		    sizeof(*parent->kids));
	}
	parent->kids[parent->nkids++] = kid;
}

static int
scalar_is_null(const char *s, size_t len)
{
	return len == 0 || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
	    strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

/*
 * The key path of the innermost open collection, for syntax errors (the
 * walker's path does not exist yet while parsing).
 */
static char *
parse_stack_path(struct node **stack, size_t depth)
{
	struct buf	b;
	size_t		i;

	buf_init(&b, 0);
	buf_addstr(&b, "");
	for (i = 0; i < depth; i++) {
		struct node *n = stack[i];

		if (n->kind == NODE_SEQ) {
			/* Inner levels: the open item; innermost: the next one. */
			buf_printf(&b, "[%zu]", i + 1 < depth ? n->nkids - 1 :
			    n->nkids);
		} else if (n->kind == NODE_MAP && n->nkids > 0) {
			struct node *k;

			/* Odd: a key waits for its value; even: between pairs. */
			if (n->nkids % 2 == 1)
				k = n->kids[n->nkids - 1];
			else if (i + 1 < depth)
				k = n->kids[n->nkids - 2];
			else
				break;
			if (k->kind != NODE_SCALAR)
				break;
			if (b.len > 0)
				buf_addstr(&b, ".");
			buf_addstr(&b, k->str);
		}
	}
	return buf_steal(&b, NULL);
}

static void
ctx_err_parse(struct ctx *ctx, struct node **stack, size_t depth, int line,
    int col, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void
ctx_err_parse(struct ctx *ctx, struct node **stack, size_t depth, int line,
    int col, const char *fmt, ...)
{
	struct node	 at = { .line = line, .col = col };
	char		*path;
	va_list		 ap;

	path = parse_stack_path(stack, depth);
	va_start(ap, fmt);
	ctx_vdiag(ctx, 0, &at, path, fmt, ap);
	va_end(ap);
	free(path);
}

static int
tag_ok(const char *tag, const char *want)
{
	static const char prefix[] = "tag:yaml.org,2002:";

	return strncmp(tag, prefix, sizeof(prefix) - 1) == 0 &&
	    strcmp(tag + sizeof(prefix) - 1, want) == 0;
}

/*
 * Parse buf into a node tree.  Returns the root (a null scalar for an empty
 * document) or NULL after recording the error.
 */
static struct node *
config_parse_yaml(struct ctx *ctx, const char *buf, size_t len)
{
	yaml_parser_t	 parser;
	yaml_event_t	 ev;
	struct node	*stack[CONFIG_MAX_DEPTH + 1];
	struct node	*root = NULL, *n;
	size_t		 depth = 0;
	int		 done = 0, ok = 0, ndocs = 0;

	if (!yaml_parser_initialize(&parser)) {
		ctx_err_parse(ctx, stack, 0, 1, 1, "cannot initialize the YAML parser");
		return NULL;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	while (!done) {
		if (!yaml_parser_parse(&parser, &ev)) {
			char	 ctxbuf[128] = "";

			if (parser.context != NULL)
				snprintf(ctxbuf, sizeof(ctxbuf), " (%s)",
				    parser.context);
			ctx_err_parse(ctx, stack, depth,
			    (int)parser.problem_mark.line + 1,
			    (int)parser.problem_mark.column + 1,
			    "syntax error: %s%s", parser.problem ?
			    parser.problem : "invalid YAML", ctxbuf);
			goto out;
		}
		n = NULL;
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = 1;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (++ndocs > 1) {
				ctx_err_parse(ctx, stack, 0,
				    (int)ev.start_mark.line + 1,
				    (int)ev.start_mark.column + 1,
				    "only one YAML document is allowed");
				yaml_event_delete(&ev);
				goto out;
			}
			break;
		case YAML_ALIAS_EVENT:
			ctx_err_parse(ctx, stack, depth,
			    (int)ev.start_mark.line + 1,
			    (int)ev.start_mark.column + 1,
			    "aliases (*%s) are not allowed in the configuration",
			    (const char *)ev.data.alias.anchor);
			yaml_event_delete(&ev);
			goto out;
		case YAML_SCALAR_EVENT:
			n = xcalloc(1, sizeof(*n));
			n->kind = NODE_SCALAR;
			n->str = xstrndup((const char *)ev.data.scalar.value,
			    ev.data.scalar.length);
			n->len = ev.data.scalar.length;
			n->plain = ev.data.scalar.plain_implicit &&
			    ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
			if (ev.data.scalar.tag != NULL) {
				const char *t = (const char *)ev.data.scalar.tag;

				if (tag_ok(t, "null"))
					n->null = 1;
				else if (tag_ok(t, "str"))
					n->plain = 0;
				else if (!tag_ok(t, "int") && !tag_ok(t, "bool") &&
				    !tag_ok(t, "float")) {
					ctx_err_parse(ctx, stack, depth,
					    (int)ev.start_mark.line + 1,
					    (int)ev.start_mark.column + 1,
					    "YAML tag %s is not supported", t);
					free(n->str);
					free(n);
					yaml_event_delete(&ev);
					goto out;
				} else
					n->plain = 1;
			}
			if (n->plain && scalar_is_null(n->str, n->len))
				n->null = 1;
			break;
		case YAML_MAPPING_START_EVENT:
		case YAML_SEQUENCE_START_EVENT:
			n = xcalloc(1, sizeof(*n));
			n->kind = ev.type == YAML_MAPPING_START_EVENT ?
			    NODE_MAP : NODE_SEQ;
			break;
		case YAML_MAPPING_END_EVENT:
		case YAML_SEQUENCE_END_EVENT:
			/* libyaml pairs ends with starts; never wrap anyway. */
			if (depth > 0)
				depth--;
			break;
		default:
			break;
		}
		if (n != NULL) {
			n->line = (int)ev.start_mark.line + 1;
			n->col = (int)ev.start_mark.column + 1;
			if (n->kind != NODE_SCALAR && depth == CONFIG_MAX_DEPTH) {
				ctx_err_parse(ctx, stack, depth, n->line, n->col,
				    "nesting deeper than %d levels",
				    CONFIG_MAX_DEPTH);
				node_free(n);
				yaml_event_delete(&ev);
				goto out;
			}
			if (depth > 0) {
				struct node *top = stack[depth - 1];

				if (top->kind == NODE_MAP && top->nkids % 2 == 0 &&
				    n->kind != NODE_SCALAR) {
					ctx_err_parse(ctx, stack, depth, n->line,
					    n->col, "mapping keys must be scalars");
					node_free(n);
					yaml_event_delete(&ev);
					goto out;
				}
				node_add(top, n);
			} else
				root = n;
			if (n->kind != NODE_SCALAR)
				stack[depth++] = n;
		}
		yaml_event_delete(&ev);
	}
	ok = 1;
out:
	yaml_parser_delete(&parser);
	if (!ok) {
		node_free(root);
		return NULL;
	}
	if (root == NULL) {
		/* An empty file is an empty configuration. */
		root = xcalloc(1, sizeof(*root));
		root->kind = NODE_SCALAR;
		root->str = xstrdup("");
		root->null = 1;
		root->plain = 1;
		root->line = root->col = 1;
	}
	return root;
}

/* ---- typed values */

static const char *
node_kind_name(const struct node *v)
{
	if (v->kind == NODE_MAP)
		return "a mapping";
	if (v->kind == NODE_SEQ)
		return "a list";
	return v->plain ? "a scalar" : "a quoted string";
}

/* A string value; no NUL bytes. */
static const char *
value_str(struct ctx *ctx, const struct node *v)
{
	if (v->kind != NODE_SCALAR) {
		ctx_err(ctx, v, "expected a string, got %s", node_kind_name(v));
		return NULL;
	}
	if (strlen(v->str) != v->len) {
		ctx_err(ctx, v, "string holds a NUL byte");
		return NULL;
	}
	return v->str;
}

static int
value_int(struct ctx *ctx, const struct cfg_key *k, const struct node *v,
    long long *out)
{
	char		*end;
	long long	 x;

	if (v->kind != NODE_SCALAR || !v->plain) {
		ctx_err(ctx, v, "expected an integer, got %s", node_kind_name(v));
		return -1;
	}
	errno = 0;
	x = strtoll(v->str, &end, 10);
	if (v->len == 0 || *end != '\0' || isspace((unsigned char)v->str[0])) {
		ctx_err(ctx, v, "expected an integer, got \"%s\"", v->str);
		return -1;
	}
	if (errno == ERANGE || x < k->min || x > k->max) {
		ctx_err(ctx, v, "%s is out of range (%lld..%lld)", v->str,
		    k->min, k->max);
		return -1;
	}
	*out = x;
	return 0;
}

/* A byte count: digits with an optional k/K/KiB, M/MiB, G/GiB suffix. */
static int
value_size(struct ctx *ctx, const struct cfg_key *k, const struct node *v,
    long long *out)
{
	char		*end;
	long long	 x, mul = 1;

	if (v->kind != NODE_SCALAR || !v->plain) {
		ctx_err(ctx, v, "expected a size, got %s", node_kind_name(v));
		return -1;
	}
	errno = 0;
	x = strtoll(v->str, &end, 10);
	if (end == v->str || v->str[0] == '-' || v->str[0] == '+')
		goto bad;
	if (strcmp(end, "") == 0)
		mul = 1;
	else if (strcmp(end, "k") == 0 || strcmp(end, "K") == 0 ||
	    strcmp(end, "KiB") == 0)
		mul = 1024;
	else if (strcmp(end, "M") == 0 || strcmp(end, "MiB") == 0)
		mul = 1024 * 1024;
	else if (strcmp(end, "G") == 0 || strcmp(end, "GiB") == 0)
		mul = 1024LL * 1024 * 1024;
	else
		goto bad;
	if (errno == ERANGE || x > LLONG_MAX / mul || x * mul < k->min ||
	    x * mul > k->max) {
		ctx_err(ctx, v, "%s is out of range (%lld..%lld)", v->str,
		    k->min, k->max);
		return -1;
	}
	*out = x * mul;
	return 0;
bad:
	ctx_err(ctx, v, "expected a size (bytes, or with K, M, G suffix), got \"%s\"",
	    v->str);
	return -1;
}

static int
value_bool(struct ctx *ctx, const struct node *v, int *out)
{
	static const char *const yes[] = { "true", "True", "TRUE", "yes",
	    "Yes", "YES", "on", "On", "ON" };
	static const char *const no[] = { "false", "False", "FALSE", "no",
	    "No", "NO", "off", "Off", "OFF" };
	size_t	i;

	if (v->kind == NODE_SCALAR && v->plain) {
		for (i = 0; i < nitems(yes); i++) {
			if (strcmp(v->str, yes[i]) == 0) {
				*out = 1;
				return 0;
			}
			if (strcmp(v->str, no[i]) == 0) {
				*out = 0;
				return 0;
			}
		}
	}
	if (v->kind == NODE_SCALAR)
		ctx_err(ctx, v, "expected true or false, got %s\"%s\"",
		    v->plain ? "" : "quoted ", v->str);
	else
		ctx_err(ctx, v, "expected true or false, got %s",
		    node_kind_name(v));
	return -1;
}

static int
value_double(struct ctx *ctx, const struct cfg_key *k, const struct node *v,
    double *out)
{
	char	*end;
	double	 x;

	if (v->kind != NODE_SCALAR || !v->plain) {
		ctx_err(ctx, v, "expected a number, got %s", node_kind_name(v));
		return -1;
	}
	errno = 0;
	x = strtod(v->str, &end);
	if (v->len == 0 || *end != '\0' || isspace((unsigned char)v->str[0]) ||
	    !isfinite(x)) {
		ctx_err(ctx, v, "expected a number, got \"%s\"", v->str);
		return -1;
	}
	if (x < (double)k->min || x > (double)k->max) {
		ctx_err(ctx, v, "%s is out of range (%lld..%lld)", v->str,
		    k->min, k->max);
		return -1;
	}
	*out = x;
	return 0;
}

/*
 * "host:port" or "[v6]:port"; host an IPv4/IPv6 literal or "localhost";
 * port 0..65535 (0: the kernel picks a free port, for tests).
 */
static int
listen_parse(const char *s, struct config_listen *out, char *why,
    size_t whylen)
{
	const char	*colon, *p;
	char		*host, *end;
	unsigned char	 addr[16];
	long		 port;
	int		 v6 = 0;

	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (rb == NULL || rb[1] != ':') {
			snprintf(why, whylen, "expected [IPv6]:PORT");
			return -1;
		}
		host = xstrndup(s + 1, (size_t)(rb - s - 1));
		colon = rb + 1;
		v6 = 1;
	} else {
		if ((colon = strrchr(s, ':')) == NULL) {
			snprintf(why, whylen, "expected HOST:PORT");
			return -1;
		}
		if (memchr(s, ':', (size_t)(colon - s)) != NULL) {
			snprintf(why, whylen,
			    "an IPv6 address needs brackets: [ADDR]:PORT");
			return -1;
		}
		host = xstrndup(s, (size_t)(colon - s));
	}
	if (*host == '\0') {
		snprintf(why, whylen, "missing host");
		goto bad;
	}
	if (v6) {
		if (inet_pton(AF_INET6, host, addr) != 1) {
			snprintf(why, whylen, "not an IPv6 address");
			goto bad;
		}
	} else if (strcmp(host, "localhost") != 0 &&
	    inet_pton(AF_INET, host, addr) != 1) {
		snprintf(why, whylen,
		    "host must be an IP address or localhost");
		goto bad;
	}
	p = colon + 1;
	if (*p == '\0' || !isdigit((unsigned char)*p)) {
		snprintf(why, whylen, "missing or bad port");
		goto bad;
	}
	errno = 0;
	port = strtol(p, &end, 10);
	if (*end != '\0' || errno == ERANGE || port < 0 || port > 65535) {
		snprintf(why, whylen, "port must be 0..65535");
		goto bad;
	}
	free(out->host);
	out->host = host;
	out->port = (int)port;
	return 0;
bad:
	free(host);
	return -1;
}

static int
name_ok(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && *s != '.' && *s != '_' &&
		    *s != '-')
			return 0;
	return 1;
}

/* RFC 7230 token characters of a header name. */
static int
header_name_ok(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && strchr("!#$%&'*+-.^_`|~", *s) == NULL)
			return 0;
	return 1;
}

/* A repo URL is a local path unless it has a scheme or is scp-like. */
static int
url_is_local(const char *u)
{
	const char	*colon, *slash;

	if (strstr(u, "://") != NULL)
		return 0;
	colon = strchr(u, ':');
	slash = strchr(u, '/');
	/* git's rule: host:path has its colon before the first slash. */
	if (colon != NULL && (slash == NULL || colon < slash))
		return 0;
	return 1;
}

/*
 * A secret other users can read is warned about (as OpenSSH does for keys),
 * at gitopsd -t and at every (re)load.  Group read is fine when the group
 * is the one gitopsd runs as: the documented root:gitopsd 0640 layout and
 * a Kubernetes secret volume (0440, group fsGroup) are read that way.
 */
static void
secret_mode_check(struct ctx *ctx, const struct node *v, const char *path)
{
	struct stat	 st;
	int		 grp, oth;

	if (stat(path, &st) == -1)
		return;
	oth = (st.st_mode & S_IROTH) != 0;
	grp = (st.st_mode & S_IRGRP) != 0 && st.st_gid != getegid();
	if (oth || grp)
		ctx_warn(ctx, v, "secret file %s has mode %04o: readable by "
		    "%s; make it 0600, or 0640 with gitopsd's group (gid %u)",
		    path, (unsigned)(st.st_mode & 07777), oth && grp ?
		    "group and others" : oth ? "others" : "its group",
		    (unsigned)getegid());
}

/* Read one secret file into *contents; *pathp is the resolved path. */
static int
secret_from_file(struct ctx *ctx, const struct node *v, const char *path,
    char **contents)
{
	char	 err[PATH_MAX + 128];
	char	*s;

	if ((s = util_read_secret(path, err, sizeof(err))) == NULL) {
		ctx_err(ctx, v, "%s", err);
		return -1;
	}
	secret_mode_check(ctx, v, path);
	*contents = s;
	return 0;
}

static int
secret_from_env(struct ctx *ctx, const struct node *v, const char *var,
    char **contents)
{
	const char	*val;

	if (!name_ok(var) || strchr(var, '.') != NULL) {
		ctx_err(ctx, v, "\"%s\" is not an environment variable name",
		    var);
		return -1;
	}
	if ((val = getenv(var)) == NULL) {
		ctx_err(ctx, v, "environment variable %s is not set", var);
		return -1;
	}
	if (*val == '\0') {
		ctx_err(ctx, v, "environment variable %s is empty", var);
		return -1;
	}
	*contents = xstrdup(val);
	return 0;
}

static void
secret_free(char *s)
{
	if (s != NULL) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

static void	walk_table(struct ctx *, const struct cfg_table *, void *obj,
		    const struct node *map, const struct node *at);
static void	walk_list(struct ctx *, const struct cfg_key *, void *obj,
		    const struct node *v);

/* A list of scalars as strings; NULL after an error. */
static char **
value_strlist(struct ctx *ctx, const struct node *v, size_t *np)
{
	char	**out = NULL;
	size_t	  i, n = 0, old;
	int	  bad = 0;

	if (v->kind != NODE_SEQ) {
		ctx_err(ctx, v, "expected a list of strings, got %s",
		    node_kind_name(v));
		return NULL;
	}
	for (i = 0; i < v->nkids; i++) {
		const struct node *it = v->kids[i];
		const char *s;

		old = path_push_index(ctx, i);
		ctx_mark(ctx, it);
		if (it->kind == NODE_SCALAR && it->null) {
			ctx_err(ctx, it, "empty list item");
			bad = 1;
		} else if ((s = value_str(ctx, it)) == NULL)
			bad = 1;
		else if (!bad)
			strv_push(&out, &n, xstrdup(s));
		path_pop(ctx, old);
	}
	if (bad) {
		for (i = 0; i < n; i++)
			free(out[i]);
		free(out);
		return NULL;
	}
	*np = n;
	return out;
}

/* Append one secret of a source (contents + where it came from). */
static int
source_secret_add(struct ctx *ctx, const struct cfg_key *k, void *obj,
    const struct node *v, char *secret, char *where)
{
	char	***sv = FIELD(obj, k->off, char **);
	size_t	 *n = FIELD(obj, k->off2, size_t);
	char	***pv = FIELD(obj, k->off3, char **);
	size_t	  np;

	if (*n >= CONFIG_MAX_SECRETS) {
		ctx_err(ctx, v, "at most %d secrets per source (new, old)",
		    CONFIG_MAX_SECRETS);
		secret_free(secret);
		free(where);
		return -1;
	}
	np = *n;
	strv_push(pv, &np, where);
	strv_push(sv, n, secret);
	return 0;
}

/*
 * Convert and store one value; ctx->path names the key.  Defaults come
 * through here too, as synthetic plain scalars.
 */
static void
set_value(struct ctx *ctx, const struct cfg_key *k, void *obj,
    const struct node *v)
{
	const char	*s;
	long long	 ll;
	double		 d;
	int		 b;
	char		 why[128], *p, *sec;

	switch (k->type) {
	case T_STR:
	case T_NAME:
		if ((s = value_str(ctx, v)) == NULL)
			return;
		if (k->type == T_NAME && !name_ok(s)) {
			ctx_err(ctx, v, "name \"%s\" may only contain letters, "
			    "digits, '.', '_' and '-'", s);
			return;
		}
		free(*FIELD(obj, k->off, char *));
		*FIELD(obj, k->off, char *) = xstrdup(s);
		return;
	case T_PATH:
	case T_KUBECONFIG:
	case T_REPO_URL:
	case T_FILE:
		if ((s = value_str(ctx, v)) == NULL)
			return;
		if (*s == '\0') {
			ctx_err(ctx, v, "empty path");
			return;
		}
		if ((k->type == T_KUBECONFIG && strcmp(s, "in-cluster") == 0) ||
		    (k->type == T_REPO_URL && !url_is_local(s)))
			p = xstrdup(s);
		else
			p = path_resolve(ctx, s);
		if (k->type == T_FILE && access(p, R_OK) == -1) {
			ctx_err(ctx, v, "cannot read %s: %s", p, strerror(errno));
			free(p);
			return;
		}
		if (k->flags & KEY_PRIVATE)
			secret_mode_check(ctx, v, p);
		free(*FIELD(obj, k->off, char *));
		*FIELD(obj, k->off, char *) = p;
		return;
	case T_INT:
		if (value_int(ctx, k, v, &ll) == 0)
			*FIELD(obj, k->off, int) = (int)ll;
		return;
	case T_SIZE:
		if (value_size(ctx, k, v, &ll) == 0)
			*FIELD(obj, k->off, size_t) = (size_t)ll;
		return;
	case T_BOOL:
		if (value_bool(ctx, v, &b) == 0 && !(k->flags & KEY_NOSTORE))
			*FIELD(obj, k->off, int) = b;
		return;
	case T_DOUBLE:
		if (value_double(ctx, k, v, &d) == 0)
			*FIELD(obj, k->off, double) = d;
		return;
	case T_LISTEN:
		if ((s = value_str(ctx, v)) == NULL)
			return;
		if (listen_parse(s, FIELD(obj, k->off, struct config_listen),
		    why, sizeof(why)) == -1)
			ctx_err(ctx, v, "bad listen address \"%s\": %s", s, why);
		return;
	case T_ENUM: {
		const struct cfg_enum *e;

		if ((s = value_str(ctx, v)) == NULL)
			return;
		for (e = k->enums; e->name != NULL; e++)
			if (strcmp(e->name, s) == 0)
				break;
		if (e->name == NULL) {
			struct buf names;

			buf_init(&names, 0);
			for (e = k->enums; e->name != NULL; e++)
				buf_printf(&names, "%s%s", names.len ? ", " : "",
				    e->name);
			ctx_err(ctx, v, "unknown value \"%s\" (expected one of: %s)",
			    s, names.data);
			buf_free(&names);
			return;
		}
		*FIELD(obj, k->off, int) = e->value;
		return;
	}
	case T_FLAGS: {
		const struct cfg_enum *e;
		unsigned bits = 0;
		size_t i, n = 0;
		char **items;
		int bad = 0;

		if ((items = value_strlist(ctx, v, &n)) == NULL)
			return;
		for (i = 0; i < n; i++) {
			for (e = k->enums; e->name != NULL; e++)
				if (strcmp(e->name, items[i]) == 0)
					break;
			if (e->name == NULL) {
				size_t old = path_push_index(ctx, i);
				struct buf names;
				const struct cfg_enum *f;

				buf_init(&names, 0);
				for (f = k->enums; f->name != NULL; f++)
					buf_printf(&names, "%s%s",
					    names.len ? ", " : "", f->name);
				ctx_err(ctx, v->kids[i], "unknown value \"%s\" "
				    "(expected one of: %s)", items[i], names.data);
				buf_free(&names);
				path_pop(ctx, old);
				bad = 1;
			} else
				bits |= (unsigned)e->value;
			free(items[i]);
		}
		free(items);
		if (n == 0) {
			ctx_err(ctx, v, "empty list");
			return;
		}
		if (!bad)
			*FIELD(obj, k->off, unsigned) = bits;
		return;
	}
	case T_STRLIST: {
		char **items;
		size_t n = 0;

		if ((items = value_strlist(ctx, v, &n)) == NULL)
			return;
		*FIELD(obj, k->off, char **) = items;
		*FIELD(obj, k->off2, size_t) = n;
		return;
	}
	case T_TABLE:
		if (v->kind != NODE_MAP) {
			ctx_err(ctx, v, "expected a mapping, got %s",
			    node_kind_name(v));
			return;
		}
		walk_table(ctx, k->sub, (char *)obj + k->off, v, v);
		return;
	case T_LIST:
		walk_list(ctx, k, obj, v);
		return;
	case T_HEADERS: {
		struct config_header **hv = FIELD(obj, k->off,
		    struct config_header *);
		size_t *hn = FIELD(obj, k->off2, size_t);
		size_t i, old;

		if (v->kind != NODE_MAP) {
			ctx_err(ctx, v, "expected a mapping of header: value, got %s",
			    node_kind_name(v));
			return;
		}
		for (i = 0; i + 1 < v->nkids; i += 2) {
			const struct node *hk = v->kids[i], *hv_ = v->kids[i + 1];
			const char *val;

			old = path_push_key(ctx, hk->str);
			ctx_mark(ctx, hk);
			if (!header_name_ok(hk->str))
				ctx_err(ctx, hk, "not a valid header name");
			else if (hv_->kind == NODE_SCALAR && hv_->null)
				ctx_err(ctx, hv_, "empty header value");
			else if ((val = value_str(ctx, hv_)) != NULL) {
				if (strpbrk(val, "\r\n") != NULL)
					ctx_err(ctx, hv_,
					    "header value holds a line break");
				else {
					*hv = xreallocarray(*hv, *hn + 1,
					    sizeof(**hv));
					(*hv)[*hn].name = xstrdup(hk->str);
					(*hv)[*hn].value = xstrdup(val);
					(*hn)++;
				}
			}
			path_pop(ctx, old);
		}
		return;
	}
	case T_SECRET_FILE:
		if ((s = value_str(ctx, v)) == NULL)
			return;
		if (*s == '\0') {
			ctx_err(ctx, v, "empty path");
			return;
		}
		if (*FIELD(obj, k->off2, char *) != NULL) {
			ctx_err(ctx, v, "more than one of %.*s_file and %.*s_env",
			    (int)(strlen(k->name) - 5), k->name,
			    (int)(strlen(k->name) - 5), k->name);
			return;
		}
		p = path_resolve(ctx, s);
		free(*FIELD(obj, k->off, char *));
		*FIELD(obj, k->off, char *) = p;
		if (secret_from_file(ctx, v, p, &sec) == 0)
			*FIELD(obj, k->off2, char *) = sec;
		return;
	case T_SECRET_ENV:
		if ((s = value_str(ctx, v)) == NULL)
			return;
		if (*FIELD(obj, k->off2, char *) != NULL) {
			ctx_err(ctx, v, "more than one of %.*s_file and %.*s_env",
			    (int)(strlen(k->name) - 4), k->name,
			    (int)(strlen(k->name) - 4), k->name);
			return;
		}
		free(*FIELD(obj, k->off, char *));
		*FIELD(obj, k->off, char *) = xstrdup(s);
		if (secret_from_env(ctx, v, s, &sec) == 0)
			*FIELD(obj, k->off2, char *) = sec;
		return;
	case T_SRC_SECRET_FILE:
		if ((s = value_str(ctx, v)) == NULL)
			return;
		if (*s == '\0') {
			ctx_err(ctx, v, "empty path");
			return;
		}
		p = path_resolve(ctx, s);
		if (secret_from_file(ctx, v, p, &sec) == 0)
			source_secret_add(ctx, k, obj, v, sec, p);
		else
			free(p);
		return;
	case T_SRC_SECRET_FILES: {
		char **items;
		size_t i, n = 0, old;

		if ((items = value_strlist(ctx, v, &n)) == NULL)
			return;
		if (n == 0)
			ctx_err(ctx, v, "empty list");
		if (n > CONFIG_MAX_SECRETS)
			ctx_err(ctx, v, "at most %d secret files (new, old)",
			    CONFIG_MAX_SECRETS);
		for (i = 0; i < n; i++) {
			if (n <= CONFIG_MAX_SECRETS) {
				old = path_push_index(ctx, i);
				p = path_resolve(ctx, items[i]);
				if (secret_from_file(ctx, v->kids[i], p, &sec) == 0)
					source_secret_add(ctx, k, obj, v->kids[i],
					    sec, p);
				else
					free(p);
				path_pop(ctx, old);
			}
			free(items[i]);
		}
		free(items);
		return;
	}
	case T_SRC_SECRET_ENV:
		if ((s = value_str(ctx, v)) == NULL)
			return;
		if (secret_from_env(ctx, v, s, &sec) == 0)
			source_secret_add(ctx, k, obj, v, sec,
			    xasprintf("$%s", s));
		return;
	}
}


static const struct cfg_key *
table_key(const struct cfg_table *t, const char *name)
{
	size_t	i;

	for (i = 0; i < t->nkeys; i++)
		if (strcmp(t->keys[i].name, name) == 0)
			return &t->keys[i];
	return NULL;
}

/* "use secret_file or secret_env" for an inline key of table t. */
static void
inline_secret_error(struct ctx *ctx, const struct cfg_table *t,
    const struct node *at, const char *name)
{
	char	 base[64], f[80], e[80];
	size_t	 len = strlen(name);

	if (len >= sizeof(base))
		len = sizeof(base) - 1;
	memcpy(base, name, len);
	base[len] = '\0';
	if (len > 1 && base[len - 1] == 's')
		base[len - 1] = '\0';
	if (strcmp(base, "passphrase") == 0)
		snprintf(base, sizeof(base), "ssh_passphrase");
	snprintf(f, sizeof(f), "%s_file", base);
	snprintf(e, sizeof(e), "%s_env", base);
	if (table_key(t, f) == NULL && table_key(t, "secret_file") != NULL &&
	    strcmp(base, "token") != 0) {
		snprintf(f, sizeof(f), "secret_file");
		snprintf(e, sizeof(e), "secret_env");
	}
	if (table_key(t, f) != NULL && table_key(t, e) != NULL)
		ctx_err(ctx, at, "inline secrets are not allowed; use %s or %s",
		    f, e);
	else if (table_key(t, f) != NULL)
		ctx_err(ctx, at, "inline secrets are not allowed; use %s", f);
	else
		ctx_err(ctx, at, "inline secrets are not allowed; use a *_file "
		    "or *_env key");
}

static const struct node *
map_get(const struct node *map, const char *key)
{
	size_t	i;

	if (map == NULL || map->kind != NODE_MAP)
		return NULL;
	for (i = 0; i + 1 < map->nkids; i += 2)
		if (strcmp(map->kids[i]->str, key) == 0)
			return map->kids[i + 1];
	return NULL;
}

static const struct node *
map_get_key(const struct node *map, const char *key)
{
	size_t	i;

	if (map == NULL || map->kind != NODE_MAP)
		return NULL;
	for (i = 0; i + 1 < map->nkids; i += 2)
		if (strcmp(map->kids[i]->str, key) == 0)
			return map->kids[i];
	return NULL;
}

/* Present and not null. */
static int
map_has(const struct node *map, const char *key)
{
	const struct node *v = map_get(map, key);

	return v != NULL && !(v->kind == NODE_SCALAR && v->null);
}

/*
 * Fill obj from map with table t: every key converted, unknown and inline
 * secret keys reported, missing required keys reported at `at` (the map,
 * or its parent when the table is absent), defaults applied, then the
 * table's cross-key check.  map may be NULL (absent table: defaults only).
 */
static void
walk_table(struct ctx *ctx, const struct cfg_table *t, void *obj,
    const struct node *map, const struct node *at)
{
	const struct cfg_key	*k;
	size_t			 i, j, old;
	unsigned char		 seen[64];
	const struct node	*nullkey[64];

	memset(seen, 0, sizeof(seen));
	memset(nullkey, 0, sizeof(nullkey));
	for (i = 0; map != NULL && i + 1 < map->nkids; i += 2) {
		const struct node *key = map->kids[i], *val = map->kids[i + 1];
		int dup = 0;

		old = path_push_key(ctx, key->str);
		for (j = 0; j < i; j += 2) {
			if (strcmp(map->kids[j]->str, key->str) == 0) {
				ctx_err(ctx, key, "duplicate key (first at line %d)",
				    map->kids[j]->line);
				dup = 1;
				break;
			}
		}
		if (dup) {
			path_pop(ctx, old);
			continue;
		}
		ctx_mark(ctx, key);
		if ((k = table_key(t, key->str)) == NULL) {
			size_t n;

			for (n = 0; n < nitems(inline_secret_names); n++)
				if (strcmp(key->str, inline_secret_names[n]) == 0)
					break;
			if (n < nitems(inline_secret_names))
				inline_secret_error(ctx, t, key, key->str);
			else
				ctx_err(ctx, key, "unknown key");
		} else if (!(val->kind == NODE_SCALAR && val->null)) {
			seen[k - t->keys] = 1;
			set_value(ctx, k, obj, val);
		} else
			nullkey[k - t->keys] = key;
		path_pop(ctx, old);
	}

	/* Absent keys: required ones are errors, the rest get defaults. */
	for (i = 0; i < t->nkeys; i++) {
		struct node def = { .kind = NODE_SCALAR, .plain = 1 };

		k = &t->keys[i];
		if (seen[i])
			continue;
		old = path_push_key(ctx, k->name);
		if ((k->flags & KEY_REQUIRED) && nullkey[i] != NULL)
			ctx_err(ctx, nullkey[i], "missing value");
		else if (k->flags & KEY_REQUIRED)
			ctx_err(ctx, at, "missing required key");
		else if (k->type == T_TABLE)
			walk_table(ctx, k->sub, (char *)obj + k->off, NULL, at);
		else if (k->def != NULL) {
			def.line = at ? at->line : 1;
			def.col = at ? at->col : 1;
			if (k->type == T_FLAGS) {
				/* A default flag list is one flag name. */
				struct node item = def, *kids[1] = { &item };

				item.str = (char *)k->def;
				item.len = strlen(k->def);
				def.kind = NODE_SEQ;
				def.kids = kids;
				def.nkids = 1;
				set_value(ctx, k, obj, &def);
			} else {
				def.str = (char *)k->def;
				def.len = strlen(k->def);
				set_value(ctx, k, obj, &def);
			}
		}
		path_pop(ctx, old);
	}
	if (t->check != NULL)
		t->check(ctx, obj, map, at);
}

/* A list of tables: a malloc'd array of t->size elements. */
static void
walk_list(struct ctx *ctx, const struct cfg_key *k, void *obj,
    const struct node *v)
{
	const struct cfg_table	*t = k->sub;
	char			*arr;
	size_t			 i, old;

	if (v->kind != NODE_SEQ) {
		ctx_err(ctx, v, "expected a list, got %s", node_kind_name(v));
		return;
	}
	arr = xcalloc(v->nkids ? v->nkids : 1, t->size);
	*FIELD(obj, k->off, void *) = arr;
	*FIELD(obj, k->off2, size_t) = v->nkids;
	for (i = 0; i < v->nkids; i++) {
		const struct node *it = v->kids[i];

		old = path_push_index(ctx, i);
		ctx_mark(ctx, it);
		if (it->kind != NODE_MAP)
			ctx_err(ctx, it, "expected a mapping, got %s",
			    node_kind_name(it));
		else
			walk_table(ctx, t, arr + i * t->size, it, it);
		path_pop(ctx, old);
	}
}

/* ---- cross-key checks */

static void
check_server(struct ctx *ctx, void *obj, const struct node *map,
    const struct node *at)
{
	const struct node	*tls = map_get(map, "tls");

	(void)obj;
	(void)at;
	if (tls != NULL && tls->kind == NODE_MAP &&
	    map_has(tls, "cert_file") != map_has(tls, "key_file"))
		ctx_err_sub(ctx, tls, "tls", "cert_file and key_file go together");
}

static int
host_is_loopback(const char *h)
{
	return strcmp(h, "localhost") == 0 || strncmp(h, "127.", 4) == 0 ||
	    strcmp(h, "::1") == 0;
}

static void
check_admin(struct ctx *ctx, void *obj, const struct node *map,
    const struct node *at)
{
	struct config_admin	*a = obj;
	const struct node	*l = map_get(map, "listen");
	size_t			 i;

	/* A mistake on a reachable address must not leave the API open. */
	if (a->listen.host != NULL && !host_is_loopback(a->listen.host) &&
	    a->token == NULL && !map_has(map, "token_file") &&
	    !map_has(map, "token_env")) {
		if (a->insecure_no_token)
			ctx_warn(ctx, l ? l : at, "the admin API listens on %s "
			    "without a token: anyone who reaches it can "
			    "trigger syncs", a->listen.host);
		else
			ctx_err(ctx, l ? l : at, "the admin API listens on %s "
			    "without a token: set token_file (or token_env), "
			    "or insecure_no_token: true", a->listen.host);
	}
	for (i = 0; i < a->nallowed_hosts; i++)
		if (a->allowed_hosts[i][0] == '\0' ||
		    strpbrk(a->allowed_hosts[i], "/@\\ \t*") != NULL)
			ctx_err_sub(ctx, map_get(map, "allowed_hosts"),
			    "allowed_hosts", "\"%s\" is not a host or host:port",
			    a->allowed_hosts[i]);
}

static void
check_retry(struct ctx *ctx, void *obj, const struct node *map,
    const struct node *at)
{
	struct config_retry	*r = obj;
	const struct node	*b = map_get(map, "base_s");

	if (r->base_s > r->max_s)
		ctx_err_sub(ctx, b ? b : at, "base_s",
		    "base_s (%d) must not exceed max_s (%d)", r->base_s,
		    r->max_s);
}

static void
check_state(struct ctx *ctx, void *obj, const struct node *map,
    const struct node *at)
{
	struct config_state	*s = obj;
	const struct node	*d = map_get(map, "driver");
	const char		*dsn_key = map_has(map, "dsn_file") ?
				    "dsn_file" : map_has(map, "dsn_env") ?
				    "dsn_env" : NULL;

	if (s->driver == CONFIG_STATE_POSTGRES && dsn_key == NULL)
		ctx_err_sub(ctx, d ? d : at, "driver",
		    "driver postgres needs dsn_file or dsn_env");
	else if (s->driver == CONFIG_STATE_SQLITE && dsn_key != NULL)
		ctx_err_sub(ctx, map_get(map, dsn_key), dsn_key,
		    "dsn_file and dsn_env need driver: postgres");
}

static void
check_links(struct ctx *ctx, void *obj, const struct node *map,
    const struct node *at)
{
	struct config		*c = obj;
	const struct node	*v = map_get(map, "base_url");

	(void)at;
	if (c->links_base_url != NULL &&
	    strncmp(c->links_base_url, "http://", 7) != 0 &&
	    strncmp(c->links_base_url, "https://", 8) != 0)
		ctx_err_sub(ctx, v, "base_url", "must start with http:// or https://");
}

static void
check_source(struct ctx *ctx, void *obj, const struct node *map,
    const struct node *at)
{
	struct config_source	*s = obj;
	static const char *const keys[] = { "secret_file", "secret_files",
	    "token_file", "secret_env", "token_env" };
	size_t			 i;

	/*
	 * A secret that failed to load has its own error already, and so
	 * has an inline one.
	 */
	for (i = 0; i < nitems(keys); i++)
		if (map_has(map, keys[i]))
			return;
	for (i = 0; i < nitems(inline_secret_names); i++)
		if (map_get(map, inline_secret_names[i]) != NULL)
			return;
	if (s->nsecrets == 0)
		ctx_err(ctx, at, "a source needs a secret: set secret_file, "
		    "secret_files, token_file, secret_env or token_env");
}

static void
check_rate_limit(struct ctx *ctx, void *obj, const struct node *map,
    const struct node *at)
{
	struct config_rate_limit *r = obj;

	(void)ctx;
	(void)at;
	if (!map_has(map, "burst"))
		r->burst = r->rps < 1 ? 1 : (r->rps > 1000000 ? 1000000 :
		    (int)ceil(r->rps));
}

static void
check_repo_auth(struct ctx *ctx, void *obj, const struct node *map,
    const struct node *at)
{
	struct config_repo_auth	*a = obj;

	(void)at;
	if ((map_has(map, "password_file") || map_has(map, "password_env")) &&
	    map_has(map, "ssh_key_file"))
		ctx_err_sub(ctx, map_get_key(map, "ssh_key_file"), "ssh_key_file",
		    "use either a password or an SSH key, not both");
	if ((a->ssh_passphrase != NULL || a->ssh_pubkey_file != NULL) &&
	    !map_has(map, "ssh_key_file"))
		ctx_err_sub(ctx, map, "ssh_key_file",
		    "ssh_passphrase and ssh_pubkey_file need ssh_key_file");
}

/* A templated push_branch must expand to a valid branch name; a pull
 * request needs a branch of its own to come from. */
static void
check_repo(struct ctx *ctx, void *obj, const struct node *map,
    const struct node *at)
{
	struct config_repo	*r = obj;
	char			 why[256];

	(void)at;
	if (r->push_branch != NULL && pr_check_branch(r->push_branch, why,
	    sizeof(why)) == -1)
		ctx_err_sub(ctx, map_get(map, "push_branch"), "push_branch",
		    "%s", why);
	if (r->pull_request.provider != CONFIG_PR_NONE &&
	    (r->push_branch == NULL || (r->branch != NULL &&
	    strcmp(r->push_branch, r->branch) == 0)))
		ctx_err_sub(ctx, map_get(map, "pull_request"), "pull_request",
		    "needs a push_branch other than branch to open it from");
}

static void
check_repo_pr(struct ctx *ctx, void *obj, const struct node *map,
    const struct node *at)
{
	struct config_pull_request	*p = obj;
	char				 why[256];

	(void)at;
	if (map == NULL)
		return;
	/* Required inside the table only: KEY_REQUIRED would ask for them
	 * in every repo. */
	if (!map_has(map, "provider"))
		ctx_err_sub(ctx, map, "provider", "missing required key");
	if (!map_has(map, "token_file"))
		ctx_err_sub(ctx, map, "token_file", "missing required key");
	if (p->title != NULL && pr_check_text(p->title, why, sizeof(why)) ==
	    -1)
		ctx_err_sub(ctx, map_get(map, "title"), "title", "%s", why);
	if (p->body != NULL && pr_check_text(p->body, why, sizeof(why)) == -1)
		ctx_err_sub(ctx, map_get(map, "body"), "body", "%s", why);
	if (p->api_url != NULL && strncmp(p->api_url, "https://", 8) != 0 &&
	    strncmp(p->api_url, "http://", 7) != 0)
		ctx_err_sub(ctx, map_get(map, "api_url"), "api_url",
		    "must be an http:// or https:// URL");
}

static void
check_app(struct ctx *ctx, void *obj, const struct node *map,
    const struct node *at)
{
	struct config_app	*a = obj;
	const struct node	*v = map_get(map, "path");
	const char		*seg;

	(void)at;
	if (a->path == NULL || v == NULL)
		return;
	/* Manifests stay inside the clone. */
	if (a->path[0] == '/') {
		ctx_err_sub(ctx, v, "path", "must be relative to the repository");
		return;
	}
	for (seg = a->path; seg != NULL; seg = strchr(seg, '/')) {
		if (*seg == '/')
			seg++;
		if (strncmp(seg, "..", 2) == 0 &&
		    (seg[2] == '/' || seg[2] == '\0')) {
			ctx_err_sub(ctx, v, "path",
			    "must not leave the repository (..)");
			return;
		}
	}
}

static void
check_policy(struct ctx *ctx, void *obj, const struct node *map,
    const struct node *at)
{
	struct config_policy	*p = obj;
	int			 n = 0, latest = 0;
	const struct node	*l = map_get(map, "latest");

	if (map == NULL) {
		/* No policy: any release. */
		p->kind = CONFIG_POLICY_SEMVER;
		p->semver = xstrdup(">=0.0.0");
		return;
	}
	if (map_has(map, "semver")) {
		n++;
		p->kind = CONFIG_POLICY_SEMVER;
	}
	if (map_has(map, "pattern")) {
		n++;
		p->kind = CONFIG_POLICY_PATTERN;
	}
	if (map_has(map, "digest")) {
		n++;
		p->kind = CONFIG_POLICY_DIGEST;
	}
	if (l != NULL && !(l->kind == NODE_SCALAR && l->null)) {
		if (value_bool(ctx, l, &latest) == 0 && !latest)
			ctx_err_sub(ctx, l, "latest", "latest can only be true "
			    "(remove it for another policy)");
		n++;
		p->kind = CONFIG_POLICY_LATEST;
	}
	if (n != 1) {
		ctx_err(ctx, at, "exactly one of semver, pattern, latest, digest "
		    "is required (%d given)", n);
		return;
	}
	if (p->kind != CONFIG_POLICY_PATTERN) {
		if (map_has(map, "extract"))
			ctx_err_sub(ctx, map_get_key(map, "extract"), "extract",
			    "only applies to a pattern policy");
		if (map_has(map, "order"))
			ctx_err_sub(ctx, map_get_key(map, "order"), "order",
			    "only applies to a pattern policy");
	}
	if (p->kind != CONFIG_POLICY_SEMVER && map_has(map, "prerelease"))
		ctx_err_sub(ctx, map_get_key(map, "prerelease"), "prerelease",
		    "only applies to a semver policy");
}

static void
check_notifier(struct ctx *ctx, void *obj, const struct node *map,
    const struct node *at)
{
	struct config_notifier	*n = obj;
	int			 has_url_secret;

	has_url_secret = map_has(map, "url_file") || map_has(map, "url_env");
	if (n->type == NULL)
		return;
	if (strcmp(n->type, "slack") == 0) {
		if (map_has(map, "url"))
			ctx_err_sub(ctx, map_get_key(map, "url"), "url",
			    "inline secrets are not allowed; a Slack webhook URL "
			    "is a secret: use url_file or url_env");
		else if (!has_url_secret)
			ctx_err_sub(ctx, at, "url_file", "missing required key "
			    "(slack needs url_file or url_env)");
	} else if (strcmp(n->type, "webhook") == 0) {
		if (map_has(map, "url") && has_url_secret)
			ctx_err_sub(ctx, map_get_key(map, "url"), "url",
			    "set url or url_file/url_env, not both");
		else if (!map_has(map, "url") && !has_url_secret)
			ctx_err_sub(ctx, at, "url", "missing required key "
			    "(webhook needs url, url_file or url_env)");
	}
}

/* ---- references */

/* A mark recorded during the walk, as a node for messages. */
static struct node
mark_node(const struct ctx *ctx, const char *path)
{
	struct node	n = { .kind = NODE_SCALAR };

	marks_find(ctx->marks, path, &n.line, &n.col);
	return n;
}

static void ref_err(struct ctx *, const char *, const char *, ...)
    __attribute__((format(printf, 3, 4)));
static void
ref_err(struct ctx *ctx, const char *path, const char *fmt, ...)
{
	struct node	n = mark_node(ctx, path);
	va_list		ap;

	va_start(ap, fmt);
	ctx_vdiag(ctx, 0, &n, path, fmt, ap);
	va_end(ap);
}

/* Names within one list are unique. */
static void
check_unique(struct ctx *ctx, const char *list, const void *arr, size_t n,
    size_t size, size_t name_off, const char *what)
{
	size_t	 i, j;
	char	 p[64], q[64];

	for (i = 0; i < n; i++) {
		const char *a = *FIELD((const char *)arr + i * size, name_off,
		    char *);

		if (a == NULL)
			continue;
		for (j = 0; j < i; j++) {
			const char *b = *FIELD((const char *)arr + j * size,
			    name_off, char *);
			struct node first;

			if (b == NULL || strcmp(a, b) != 0)
				continue;
			snprintf(p, sizeof(p), "%s[%zu].%s", list, i, what);
			snprintf(q, sizeof(q), "%s[%zu].%s", list, j, what);
			first = mark_node(ctx, q);
			ref_err(ctx, p, "duplicate %s \"%s\" (first at line %d)",
			    what, a, first.line);
			break;
		}
	}
}

static void
check_refs(struct ctx *ctx, struct config *c)
{
	size_t	 i, j;
	char	 p[96];

	check_unique(ctx, "registries", c->registries, c->nregistries,
	    sizeof(*c->registries), O(struct config_registry, host), "host");
	check_unique(ctx, "sources", c->sources, c->nsources,
	    sizeof(*c->sources), O(struct config_source, name), "name");
	check_unique(ctx, "repos", c->repos, c->nrepos, sizeof(*c->repos),
	    O(struct config_repo, name), "name");
	check_unique(ctx, "clusters", c->clusters, c->nclusters,
	    sizeof(*c->clusters), O(struct config_cluster, name), "name");
	check_unique(ctx, "apps", c->apps, c->napps, sizeof(*c->apps),
	    O(struct config_app, name), "name");
	check_unique(ctx, "notifiers", c->notifiers, c->nnotifiers,
	    sizeof(*c->notifiers), O(struct config_notifier, name), "name");

	for (i = 0; i < c->napps; i++) {
		struct config_app *a = &c->apps[i];

		if (a->repo != NULL && config_find_repo(c, a->repo) == NULL) {
			snprintf(p, sizeof(p), "apps[%zu].repo", i);
			ref_err(ctx, p, "unknown repo \"%s\"", a->repo);
		}
		if (a->cluster != NULL &&
		    config_find_cluster(c, a->cluster) == NULL) {
			snprintf(p, sizeof(p), "apps[%zu].cluster", i);
			ref_err(ctx, p, "unknown cluster \"%s\"", a->cluster);
		}
		for (j = 0; j < a->nnotify; j++) {
			if (config_find_notifier(c, a->notify[j]) != NULL)
				continue;
			snprintf(p, sizeof(p), "apps[%zu].notify[%zu]", i, j);
			ref_err(ctx, p, "unknown notifier \"%s\"", a->notify[j]);
		}
	}
	for (j = 0; j < c->nnotify_default; j++) {
		if (config_find_notifier(c, c->notify_default[j]) != NULL)
			continue;
		snprintf(p, sizeof(p), "notify_default[%zu]", j);
		ref_err(ctx, p, "unknown notifier \"%s\"", c->notify_default[j]);
	}
}

/* ---- freeing, driven by the same tables */

static void
free_table(const struct cfg_table *t, void *obj)
{
	const struct cfg_key	*k;
	size_t			 i, j, n;

	for (i = 0; i < t->nkeys; i++) {
		k = &t->keys[i];
		switch (k->type) {
		case T_STR:
		case T_NAME:
		case T_PATH:
		case T_KUBECONFIG:
		case T_REPO_URL:
		case T_FILE:
		case T_SECRET_ENV:	/* contents freed by the *_file key */
			free(*FIELD(obj, k->off, char *));
			break;
		case T_SECRET_FILE:
			free(*FIELD(obj, k->off, char *));
			secret_free(*FIELD(obj, k->off2, char *));
			break;
		case T_LISTEN:
			free(FIELD(obj, k->off, struct config_listen)->host);
			break;
		case T_STRLIST: {
			char **v = *FIELD(obj, k->off, char **);

			n = *FIELD(obj, k->off2, size_t);
			for (j = 0; j < n; j++)
				free(v[j]);
			free(v);
			break;
		}
		case T_HEADERS: {
			struct config_header *h = *FIELD(obj, k->off,
			    struct config_header *);

			n = *FIELD(obj, k->off2, size_t);
			for (j = 0; j < n; j++) {
				free(h[j].name);
				free(h[j].value);
			}
			free(h);
			break;
		}
		case T_TABLE:
			free_table(k->sub, (char *)obj + k->off);
			break;
		case T_LIST: {
			char *arr = *FIELD(obj, k->off, char *);

			n = *FIELD(obj, k->off2, size_t);
			for (j = 0; arr != NULL && j < n; j++)
				free_table(k->sub, arr + j * k->sub->size);
			free(arr);
			break;
		}
		case T_SRC_SECRET_FILE:
		case T_SRC_SECRET_FILES:
		case T_SRC_SECRET_ENV:
			if (k->flags & KEY_FREE_SHARED) {
				char **sv = *FIELD(obj, k->off, char **);
				char **pv = *FIELD(obj, k->off3, char **);

				n = *FIELD(obj, k->off2, size_t);
				for (j = 0; j < n; j++) {
					secret_free(sv[j]);
					free(pv[j]);
				}
				free(sv);
				free(pv);
			}
			break;
		case T_INT:
		case T_SIZE:
		case T_BOOL:
		case T_DOUBLE:
		case T_FLAGS:
		case T_ENUM:
			break;
		}
	}
}

void
config_free(struct config *c)
{
	if (c == NULL)
		return;
	free_table(&top_table, c);
	marks_free(c->marks);
	free(c->path);
	free(c);
}

void
config_errors_free(struct config_errors *e)
{
	size_t	i;

	if (e == NULL)
		return;
	for (i = 0; i < e->n; i++)
		free(e->msgs[i]);
	free(e->msgs);
	for (i = 0; i < e->nwarnings; i++)
		free(e->warnings[i]);
	free(e->warnings);
	memset(e, 0, sizeof(*e));
}

struct config *
config_ref(struct config *c)
{
	__atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
	return c;
}

void
config_unref(struct config *c)
{
	if (c != NULL && __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) == 0)
		config_free(c);
}

/* ---- loading */

/* Every required key of every entry holds a value (see config.h). */
static int
config_complete(const struct cfg_table *t, const void *obj)
{
	const struct cfg_key	*k;
	size_t			 i, j, n;

	for (i = 0; i < t->nkeys; i++) {
		k = &t->keys[i];
		if (k->type == T_TABLE && !config_complete(k->sub,
		    (const char *)obj + k->off))
			return 0;
		if (k->type == T_LIST) {
			const char *arr = *FIELD(obj, k->off, char *);

			n = *FIELD(obj, k->off2, size_t);
			for (j = 0; j < n; j++)
				if (!config_complete(k->sub, arr + j * k->sub->size))
					return 0;
		}
		if ((k->flags & KEY_REQUIRED) &&
		    *FIELD(obj, k->off, char *) == NULL)
			return 0;
	}
	return 1;
}

/* A policy whose own keys were wrong reads as the default (config.h). */
static void
config_policies_sane(struct config *c)
{
	size_t	i, j;

	for (i = 0; i < c->napps; i++) {
		for (j = 0; j < c->apps[i].nimages; j++) {
			struct config_policy *p = &c->apps[i].images[j].policy;
			int ok;

			switch (p->kind) {
			case CONFIG_POLICY_SEMVER:
				ok = p->semver != NULL;
				break;
			case CONFIG_POLICY_PATTERN:
				ok = p->pattern != NULL;
				break;
			case CONFIG_POLICY_DIGEST:
				ok = p->digest_tag != NULL;
				break;
			default:
				ok = 1;
				break;
			}
			if (ok)
				continue;
			free(p->semver);
			p->semver = xstrdup(">=0.0.0");
			p->kind = CONFIG_POLICY_SEMVER;
		}
	}
}

/* Move sorted diagnostics into the caller's lists. */
static void
ctx_flush(struct ctx *ctx, struct config_errors *errs)
{
	size_t	i;

	if (ctx->errors.n > 0)
		qsort(ctx->errors.v, ctx->errors.n, sizeof(*ctx->errors.v),
		    diag_cmp);
	if (ctx->warnings.n > 0)
		qsort(ctx->warnings.v, ctx->warnings.n,
		    sizeof(*ctx->warnings.v), diag_cmp);
	for (i = 0; i < ctx->errors.n; i++) {
		strv_push(&errs->msgs, &errs->n, ctx->errors.v[i].msg);
		ctx->errors.v[i].msg = NULL;
	}
	for (i = 0; i < ctx->warnings.n; i++) {
		strv_push(&errs->warnings, &errs->nwarnings,
		    ctx->warnings.v[i].msg);
		ctx->warnings.v[i].msg = NULL;
	}
}

static struct config *
config_load_common(const char *name, const char *abspath, char *basedir,
    const char *buf, size_t len, struct config_errors *errs, int keep)
{
	struct ctx	 ctx;
	struct config	*c = NULL;
	struct node	*root = NULL;
	int		 nerr;

	memset(&ctx, 0, sizeof(ctx));
	ctx.file = name;
	ctx.basedir = basedir;
	buf_init(&ctx.path, 0);
	buf_addstr(&ctx.path, "");
	ctx.marks = xcalloc(1, sizeof(*ctx.marks));

	if (len > CONFIG_MAX_BYTES) {
		struct node at = { .line = 1, .col = 1 };

		ctx_err(&ctx, &at, "file is larger than %d bytes",
		    CONFIG_MAX_BYTES);
		goto out;
	}
	if (memchr(buf, '\0', len) != NULL) {
		struct node at = { .line = 1, .col = 1 };

		ctx_err(&ctx, &at, "file holds a NUL byte");
		goto out;
	}
	if ((root = config_parse_yaml(&ctx, buf, len)) == NULL)
		goto out;

	c = xcalloc(1, sizeof(*c));
	c->refs = 1;
	c->path = xstrdup(abspath);
	c->marks = ctx.marks;
	c->marks->file = xstrdup(name);
	ctx.cfg = c;
	if (root->kind == NODE_SCALAR && root->null)
		walk_table(&ctx, &top_table, c, NULL, root);
	else if (root->kind != NODE_MAP)
		ctx_err(&ctx, root, "the configuration must be a mapping of keys, "
		    "got %s", node_kind_name(root));
	else
		walk_table(&ctx, &top_table, c, root, root);
	if (ctx.marks->n > 0)
		qsort(ctx.marks->v, ctx.marks->n, sizeof(*ctx.marks->v),
		    mark_cmp);
	ctx.marks->sorted = 1;
	check_refs(&ctx, c);
out:
	nerr = (int)ctx.errors.n;
	ctx_flush(&ctx, errs);
	diags_free(&ctx.errors);
	diags_free(&ctx.warnings);
	buf_free(&ctx.path);
	node_free(root);
	if (c == NULL)
		marks_free(ctx.marks);
	if (nerr > 0 && c != NULL && keep && config_complete(&top_table, c))
		config_policies_sane(c);
	else if (nerr > 0) {
		config_free(c);
		c = NULL;
	}
	free(basedir);
	return c;
}

static struct config *
config_load_file(const char *path, struct config_errors *errs, int keep)
{
	struct config	*c;
	char		*buf, *abspath, *tmp, *slash, *basedir;
	size_t		 len;

	if ((buf = util_read_file(path, CONFIG_MAX_BYTES + 1, &len)) == NULL) {
		if (errno == EFBIG)
			strv_push(&errs->msgs, &errs->n, xasprintf("%s:1:1: file "
			    "is larger than %d bytes", path, CONFIG_MAX_BYTES));
		else
			strv_push(&errs->msgs, &errs->n, xasprintf("%s: cannot "
			    "read: %s", path, strerror(errno)));
		return NULL;
	}
	if (path[0] == '/')
		abspath = path_clean(path);
	else {
		char *cwd = path_cwd();

		tmp = xasprintf("%s/%s", cwd, path);
		abspath = path_clean(tmp);
		free(tmp);
		free(cwd);
	}
	basedir = xstrdup(abspath);
	slash = strrchr(basedir, '/');
	if (slash == basedir)
		slash[1] = '\0';
	else
		*slash = '\0';
	c = config_load_common(path, abspath, basedir, buf, len, errs, keep);
	free(abspath);
	free(buf);
	return c;
}

struct config *
config_load_buffer(const char *name, const char *buf, size_t len,
    struct config_errors *errs)
{
	return config_load_common(name, name, path_cwd(), buf, len, errs, 0);
}

struct config *
config_load(const char *path, struct config_errors *errs)
{
	return config_load_file(path, errs, 0);
}

struct config *
config_load_for_check(const char *path, struct config_errors *errs)
{
	return config_load_file(path, errs, 1);
}

/* ---- diagnostics for other modules */

static void config_vdiag_at(const struct config *, char ***, size_t *,
    const char *, const char *, va_list) __attribute__((format(printf, 5, 0)));

static void
config_vdiag_at(const struct config *c, char ***v, size_t *n,
    const char *keypath, const char *fmt, va_list ap)
{
	int	line, col;

	marks_find(c->marks, keypath, &line, &col);
	/* A config built by hand (tests) may have neither. */
	strv_push(v, n, diag_format(c->marks != NULL ? c->marks->file :
	    c->path != NULL ? c->path : "(config)", line, col, keypath, fmt, ap));
}

void
config_error_at(const struct config *c, struct config_errors *errs,
    const char *keypath, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	config_vdiag_at(c, &errs->msgs, &errs->n, keypath, fmt, ap);
	va_end(ap);
}

void
config_warning_at(const struct config *c, struct config_errors *errs,
    const char *keypath, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	config_vdiag_at(c, &errs->warnings, &errs->nwarnings, keypath, fmt, ap);
	va_end(ap);
}

/* ---- schema export */

static void
schema_walk(const struct cfg_table *t, struct buf *path,
    void (*cb)(const char *, const char *, const char *, const char *, void *),
    void *arg)
{
	size_t	i, old;

	for (i = 0; i < t->nkeys; i++) {
		const struct cfg_key *k = &t->keys[i];

		char *type;

		old = path->len;
		if (old > 0)
			buf_addstr(path, ".");
		buf_addstr(path, k->name);
		if (k->type == T_INT || k->type == T_SIZE || k->type == T_DOUBLE)
			type = xasprintf("%s, %lld..%lld", key_type_names[k->type],
			    k->min, k->max);
		else if (k->type == T_ENUM || k->type == T_FLAGS) {
			const struct cfg_enum *e;
			struct buf names;

			buf_init(&names, 0);
			for (e = k->enums; e->name != NULL; e++)
				buf_printf(&names, "%s%s", names.len ? ", " : "",
				    e->name);
			type = xasprintf("%s: %s", key_type_names[k->type],
			    names.data);
			buf_free(&names);
		} else
			type = xstrdup(key_type_names[k->type]);
		if (k->flags & KEY_REQUIRED) {
			char *req = xasprintf("%s, required", type);

			free(type);
			type = req;
		}
		cb(path->data, type, k->def, k->help, arg);
		free(type);
		if (k->type == T_TABLE || k->type == T_LIST) {
			if (k->type == T_LIST)
				buf_addstr(path, "[]");
			schema_walk(k->sub, path, cb, arg);
		}
		path->len = old;
		path->data[old] = '\0';
	}
}

void
config_schema_foreach(void (*cb)(const char *, const char *, const char *,
    const char *, void *), void *arg)
{
	struct buf	path;

	buf_init(&path, 0);
	buf_addstr(&path, "");
	schema_walk(&top_table, &path, cb, arg);
	buf_free(&path);
}

/* ---- lookups */

#define FIND(fn, type, arr, n)						\
const struct type *							\
fn(const struct config *c, const char *name)				\
{									\
	size_t	i;							\
									\
	for (i = 0; c != NULL && name != NULL && i < c->n; i++)		\
		if (c->arr[i].name != NULL &&				\
		    strcmp(c->arr[i].name, name) == 0)			\
			return &c->arr[i];				\
	return NULL;							\
}

FIND(config_find_source, config_source, sources, nsources)
FIND(config_find_repo, config_repo, repos, nrepos)
FIND(config_find_cluster, config_cluster, clusters, nclusters)
FIND(config_find_app, config_app, apps, napps)
FIND(config_find_notifier, config_notifier, notifiers, nnotifiers)
