/*
 * config.c: gitopsd's configuration: its key tables, the checks across
 * keys and entries, and the load/reload lifecycle (DESIGN.md section 6).
 *
 * DESIGN
 * Loading runs in three passes over one file:
 *  1. The YAML becomes a node tree with the line and column of every key
 *     and value (config_yaml.c); the file is capped at CONFIG_MAX_BYTES.
 *  2. The tree is walked with the key tables below (config_schema.c): one
 *     table per struct, one row per key (type, range, default, required,
 *     help).  The same rows apply defaults, free the struct and document
 *     the schema (config_schema_foreach), so a key exists in one place.
 *     Sources and notifiers take their plug-in's keys too (handler.h,
 *     notifier.h); this file knows no plug-in type.
 *  3. Cross-references (unique names, an app's repo/cluster/notifiers,
 *     notify_default) are checked on the filled struct.
 * Errors are sorted by position and formatted
 * "FILE:LINE:COLUMN: key.path: message".  The key path of every key and
 * list item seen is kept with its position (struct config_marks) so that
 * checks in other modules (daemon/check.c) report in the same format.
 * A reload builds a new struct and the daemon swaps it only when valid;
 * workers hold references (config_ref) to the one they started on.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "config_schema.h"
#include "config_yaml.h"
#include "handler.h"
#include "notifier.h"
#include "pr.h"
#include "replica.h"
#include "util.h"

#define CONFIG_MAX_BYTES	(1024 * 1024)

static void	config_check_server(struct config_walk *, void *,
    const struct config_node *,
		    const struct config_node *);
static void	config_check_admin(struct config_walk *, void *,
    const struct config_node *,
		    const struct config_node *);
static void	config_check_retry(struct config_walk *, void *,
    const struct config_node *,
		    const struct config_node *);
static void	config_check_state(struct config_walk *, void *,
    const struct config_node *,
		    const struct config_node *);
static void	config_check_links(struct config_walk *, void *,
    const struct config_node *,
		    const struct config_node *);
static void	config_check_source(struct config_walk *, void *,
    const struct config_node *,
		    const struct config_node *);
static void	config_check_rate_limit(struct config_walk *, void *,
    const struct config_node *,
		    const struct config_node *);
static void	config_check_repo_auth(struct config_walk *, void *,
    const struct config_node *,
		    const struct config_node *);
static void	config_check_repo(struct config_walk *, void *,
    const struct config_node *,
		    const struct config_node *);
static void	config_check_repo_pr(struct config_walk *, void *,
    const struct config_node *,
		    const struct config_node *);
static void	config_check_app(struct config_walk *, void *,
    const struct config_node *,
		    const struct config_node *);
static void	config_check_policy(struct config_walk *, void *,
    const struct config_node *,
		    const struct config_node *);

#define O(type, field)	offsetof(type, field)

/* server.tls: its keys live in struct config_server */
static const struct config_key server_tls_keys[] = {
	{ "cert_file", T_FILE,
	  .off = O(struct config_server, tls_cert_file),
	  .help =
	    "PEM certificate chain; serve HTTPS when set (with key_file)" },
	{ "key_file", T_FILE,
	  .off = O(struct config_server, tls_key_file), .flags = KEY_PRIVATE,
	  .help = "PEM private key of cert_file" },
};
static const struct config_table server_tls_table =
    CONFIG_TABLE("tls", struct config_server, server_tls_keys, NULL);

static const struct config_key server_keys[] = {
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
static const struct config_table server_table =
    CONFIG_TABLE("server", struct config_server, server_keys,
    config_check_server);

static const struct config_key admin_keys[] = {
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
	{ "public_url", T_STR,
	  .off = O(struct config_admin, public_url),
	  .help =
	    "http(s) URL of this listener as users reach it (behind a proxy "
	    "or load balancer): links to the status page; links.base_url "
	    "overrides it for alerts" },
};
static const struct config_table admin_table =
    CONFIG_TABLE("admin", struct config_admin, admin_keys, config_check_admin);

static const struct config_enum state_driver_enums[] = {
	{ "sqlite", CONFIG_STATE_SQLITE },
	{ "postgres", CONFIG_STATE_POSTGRES },
	{ NULL, 0 },
};

static const struct config_key state_keys[] = {
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
	{ "heartbeat_s", T_INT,
	  .off = O(struct config_state, heartbeat_s), .min = 1, .max = 60,
	  .def = "5",
	  .help = "seconds between a replica's heartbeats in the store; it is"
	      " gone after three missed, and its periodic role moves" },
	{ "replica", T_STR,
	  .off = O(struct config_state, replica),
	  .help = "this process's replica id, kept across restarts (1-63 of"
	      " A-Z a-z 0-9 . _ -); unset: hostname-pid-random, new at each"
	      " start" },
};
static const struct config_table state_table =
    CONFIG_TABLE("state", struct config_state, state_keys, config_check_state);

static const struct config_key queue_keys[] = {
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
static const struct config_table queue_table =
    CONFIG_TABLE("queue", struct config_queue, queue_keys, NULL);

static const struct config_key retry_keys[] = {
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
static const struct config_table retry_table =
    CONFIG_TABLE("retry", struct config_retry, retry_keys, config_check_retry);

static const struct config_key config_git_keys[] = {
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
static const struct config_table config_git_table =
    CONFIG_TABLE("git", struct config_git, config_git_keys, NULL);

static const struct config_key notify_opts_keys[] = {
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
static const struct config_table notify_opts_table =
    CONFIG_TABLE("notify", struct config_notify_opts, notify_opts_keys, NULL);

static const struct config_key links_keys[] = {
	{ "base_url", T_STR,
	  .off = O(struct config, links_base_url),
	  .help =
	    "http(s) URL prefix for links in alerts (the admin API as "
	    "users reach it)" },
};
static const struct config_table links_table =
    CONFIG_TABLE("links", struct config, links_keys, config_check_links);

static const struct config_key registry_keys[] = {
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
static const struct config_table registry_table =
    CONFIG_TABLE("registries", struct config_registry, registry_keys, NULL);

static const struct config_key rate_limit_keys[] = {
	{ "rps", T_DOUBLE,
	  .off = O(struct config_rate_limit, rps), .max = 1000000, .def = "0",
	  .help = "requests per second accepted (0: unlimited)" },
	{ "burst", T_INT,
	  .off = O(struct config_rate_limit, burst), .min = 1, .max = 1000000,
	  .help = "bucket size; default max(1, rps)" },
};
static const struct config_table rate_limit_table =
    CONFIG_TABLE("rate_limit", struct config_rate_limit, rate_limit_keys,
    config_check_rate_limit);

static const struct config_key source_keys[] = {
	{ "name", T_NAME,
	  .off = O(struct config_source, name), .flags = KEY_REQUIRED,
	  .help = "unique; the webhook URL is /hooks/NAME" },
	{ "type", T_STR,
	  .off = O(struct config_source, type), .flags = KEY_REQUIRED,
	  .help = "sender" },
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
static const struct config_table source_table = {
	.name = "sources", .size = sizeof(struct config_source),
	.keys = source_keys, .nkeys = nitems(source_keys),
	.check = config_check_source, .family = &handler_config_family,
};

static const struct config_key repo_auth_keys[] = {
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
static const struct config_table repo_auth_table =
    CONFIG_TABLE("auth", struct config_repo_auth, repo_auth_keys,
    config_check_repo_auth);

static const struct config_key repo_author_keys[] = {
	{ "name", T_STR,
	  .off = O(struct config_repo, author_name), .def = "gitopsd",
	  .help = "author and committer name of commits" },
	{ "email", T_STR,
	  .off = O(struct config_repo, author_email),
	  .def = "gitopsd@localhost",
	  .help = "author and committer email" },
};
static const struct config_table repo_author_table =
    CONFIG_TABLE("author", struct config_repo, repo_author_keys, NULL);

static const struct config_key repo_pr_keys[] = {
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
static const struct config_table repo_pr_table =
    CONFIG_TABLE("pull_request", struct config_pull_request, repo_pr_keys,
    config_check_repo_pr);

static const struct config_key repo_keys[] = {
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
	{ "poll_interval_s", T_INT,
	  .off = O(struct config_repo, poll_interval_s), .min = 0,
	  .max = 604800, .def = "180",
	  .help = "ask the remote for the branch head this often, fetching "
	    "only when it moved (0: off)" },
};
static const struct config_table repo_table =
    CONFIG_TABLE("repos", struct config_repo, repo_keys, config_check_repo);

static const struct config_key cluster_keys[] = {
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
static const struct config_table cluster_table =
    CONFIG_TABLE("clusters", struct config_cluster, cluster_keys, NULL);

static const struct config_enum order_enums[] = {
	{ "numerical", CONFIG_ORDER_NUMERICAL },
	{ "alphabetical", CONFIG_ORDER_ALPHABETICAL },
	{ NULL, 0 },
};

static const struct config_key policy_keys[] = {
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
static const struct config_table policy_table =
    CONFIG_TABLE("policy", struct config_policy, policy_keys,
    config_check_policy);

static const struct config_key image_keys[] = {
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
static const struct config_table image_table =
    CONFIG_TABLE("images", struct config_image, image_keys, NULL);

static const struct config_key app_render_keys[] = {
	{ "command", T_STRLIST,
	  .off = O(struct config_app, render_command),
	  .off2 = O(struct config_app, nrender_command),
	  .help = "argv run in the app path; its stdout is the manifests" },
	{ "timeout_s", T_INT,
	  .off = O(struct config_app, render_timeout_s), .min = 1,
	  .max = 3600, .def = "60",
	  .help = "render command timeout" },
};
static const struct config_table app_render_table =
    CONFIG_TABLE("render", struct config_app, app_render_keys, NULL);

static const struct config_key app_sync_keys[] = {
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
static const struct config_table app_sync_table =
    CONFIG_TABLE("sync", struct config_app, app_sync_keys, NULL);

static const struct config_key app_keys[] = {
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
static const struct config_table app_table =
    CONFIG_TABLE("apps", struct config_app, app_keys, config_check_app);

static const struct config_enum on_flags[] = {
	{ "failure", CONFIG_ON_FAILURE },
	{ "recovery", CONFIG_ON_RECOVERY },
	{ "all", CONFIG_ON_ALL },
	{ "started", CONFIG_ON_STARTED },
	{ NULL, 0 },
};

/* The keys every sink has; a sink's own come from its plug-in. */
static const struct config_key notifier_keys[] = {
	{ "name", T_NAME,
	  .off = O(struct config_notifier, name), .flags = KEY_REQUIRED,
	  .help = "unique; apps and notify_default refer to it" },
	{ "type", T_STR,
	  .off = O(struct config_notifier, type), .flags = KEY_REQUIRED,
	  .help = "sink" },
	{ "on", T_FLAGS,
	  .off = O(struct config_notifier, on), .def = "failure",
	  .enums = on_flags,
	  .help = "events sent: failure, recovery, all, started (a sync "
	    "began; not part of all)" },
	{ "title", T_STR,
	  .off = O(struct config_notifier, title),
	  .help = "title/subject template; unset: built-in" },
	{ "body", T_STR,
	  .off = O(struct config_notifier, body),
	  .help = "body template; unset: built-in" },
	{ "timeout_s", T_INT,
	  .off = O(struct config_notifier, timeout_s), .max = 600, .def = "0",
	  .help = "delivery timeout (0: notify.timeout_s)" },
};
static const struct config_table notifier_table_ = {
	.name = "notifiers", .size = sizeof(struct config_notifier),
	.keys = notifier_keys, .nkeys = nitems(notifier_keys),
	.family = &notifier_config_family,
};

static const struct config_key top_keys[] = {
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
	  .off = O(struct config, git), .sub = &config_git_table,
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
static const struct config_table top_table =
    CONFIG_TABLE("", struct config, top_keys, NULL);

/* ---- small helpers */

static char *
config_path_cwd(void)
{
	char	buf[PATH_MAX];

	if (getcwd(buf, sizeof(buf)) == NULL)
		return xstrdup("/");
	return xstrdup(buf);
}

static void
config_strv_push(char ***v, size_t *n, char *s)
{
	*v = xreallocarray(*v, *n + 1, sizeof(**v));
	(*v)[(*n)++] = s;
}

/* ---- cross-key checks */

static void
config_check_server(struct config_walk *ctx, void *obj,
    const struct config_node *map,
    const struct config_node *at)
{
	const struct config_node	*tls = config_node_get(map, "tls");

	(void)obj;
	(void)at;
	if (tls != NULL && tls->kind == CONFIG_NODE_MAP &&
	    config_node_has(tls, "cert_file") != config_node_has(tls,
	    "key_file"))
		config_walk_error(ctx, tls, "tls",
		    "cert_file and key_file go together");
}

static int
config_host_is_loopback(const char *h)
{
	return strcmp(h, "localhost") == 0 || strncmp(h, "127.", 4) == 0 ||
	    strcmp(h, "::1") == 0;
}

/* URLs put into alerts and statuses: a relative or other-scheme one would
 * be a dead link in every message. */
static void
config_check_http_url(struct config_walk *ctx, const struct config_node *map,
    const char *key, const char *url)
{
	if (url != NULL && strncmp(url, "http://", 7) != 0 &&
	    strncmp(url, "https://", 8) != 0)
		config_walk_error(ctx, config_node_get(map, key), key,
		    "must start with http:// or https://");
}

static void
config_check_admin(struct config_walk *ctx, void *obj,
    const struct config_node *map,
    const struct config_node *at)
{
	struct config_admin	*a = obj;
	const struct config_node	*l = config_node_get(map, "listen");
	size_t			 i;

	/* A mistake on a reachable address must not leave the API open. */
	if (a->listen.host != NULL && !config_host_is_loopback(a->listen.host) &&
	    a->token == NULL && !config_node_has(map, "token_file") &&
	    !config_node_has(map, "token_env")) {
		if (a->insecure_no_token)
			config_walk_warning(ctx, l ? l : at,
			    "the admin API listens on %s "
			    "without a token: anyone who reaches it can "
			    "trigger syncs", a->listen.host);
		else
			config_walk_error(ctx, l ? l : at, NULL,
			    "the admin API listens on %s "
			    "without a token: set token_file (or token_env), "
			    "or insecure_no_token: true", a->listen.host);
	}
	for (i = 0; i < a->nallowed_hosts; i++)
		if (a->allowed_hosts[i][0] == '\0' ||
		    strpbrk(a->allowed_hosts[i], "/@\\ \t*") != NULL)
			config_walk_error(ctx, config_node_get(map,
			    "allowed_hosts"),
			    "allowed_hosts", "\"%s\" is not a host or host:port",
			    a->allowed_hosts[i]);
	config_check_http_url(ctx, map, "public_url", a->public_url);
}

static void
config_check_retry(struct config_walk *ctx, void *obj,
    const struct config_node *map,
    const struct config_node *at)
{
	struct config_retry	*r = obj;
	const struct config_node	*b = config_node_get(map, "base_s");

	if (r->base_s > r->max_s)
		config_walk_error(ctx, b ? b : at, "base_s",
		    "base_s (%d) must not exceed max_s (%d)", r->base_s,
		    r->max_s);
}

/*
 * A replica id is shown in logs, metrics' neighbours, the admin API and
 * gitopsctl's table, and compared as leases' owner: a short token with
 * nothing to quote or escape anywhere.
 */
_Static_assert(REPLICA_ID_MAX == 63, "the message below says 63");

static int
config_replica_id_ok(const char *id)
{
	size_t	 n = strlen(id);

	if (n == 0 || n > REPLICA_ID_MAX || !isalnum((unsigned char)id[0]))
		return 0;
	return strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789._-") == n;
}

static void
config_check_state(struct config_walk *ctx, void *obj,
    const struct config_node *map,
    const struct config_node *at)
{
	struct config_state	*s = obj;
	const struct config_node	*d = config_node_get(map, "driver");
	const char		*dsn_key = config_node_has(map, "dsn_file") ?
				    "dsn_file" : config_node_has(map, "dsn_env") ?
				    "dsn_env" : NULL;

	if (s->driver == CONFIG_STATE_POSTGRES && dsn_key == NULL)
		config_walk_error(ctx, d ? d : at, "driver",
		    "driver postgres needs dsn_file or dsn_env");
	else if (s->driver == CONFIG_STATE_SQLITE && dsn_key != NULL)
		config_walk_error(ctx, config_node_get(map, dsn_key), dsn_key,
		    "dsn_file and dsn_env need driver: postgres");
	if (s->replica != NULL && !config_replica_id_ok(s->replica))
		config_walk_error(ctx, config_node_get(map, "replica"),
		    "replica", "must be 1 to 63 characters of A-Z a-z 0-9 . _ -, starting with a letter"
		    " or a digit");
}

static void
config_check_links(struct config_walk *ctx, void *obj,
    const struct config_node *map,
    const struct config_node *at)
{
	struct config		*c = obj;

	(void)at;
	config_check_http_url(ctx, map, "base_url", c->links_base_url);
}

const char *
config_links_base(const struct config *c)
{
	if (c->links_base_url != NULL && *c->links_base_url != '\0')
		return c->links_base_url;
	if (c->admin.public_url != NULL && *c->admin.public_url != '\0')
		return c->admin.public_url;
	return NULL;
}

static void
config_check_source(struct config_walk *ctx, void *obj,
    const struct config_node *map,
    const struct config_node *at)
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
		if (config_node_has(map, keys[i]))
			return;
	for (i = 0; map != NULL && i + 1 < map->nkids; i += 2)
		if (config_schema_is_inline_secret(map->kids[i]->str))
			return;
	if (s->nsecrets == 0)
		config_walk_error(ctx, at, NULL,
		    "a source needs a secret: set secret_file, "
		    "secret_files, token_file, secret_env or token_env");
}

static void
config_check_rate_limit(struct config_walk *ctx, void *obj,
    const struct config_node *map,
    const struct config_node *at)
{
	struct config_rate_limit *r = obj;

	(void)ctx;
	(void)at;
	if (!config_node_has(map, "burst"))
		r->burst = r->rps < 1 ? 1 : (r->rps > 1000000 ? 1000000 :
		    (int)ceil(r->rps));
}

static void
config_check_repo_auth(struct config_walk *ctx, void *obj,
    const struct config_node *map,
    const struct config_node *at)
{
	struct config_repo_auth	*a = obj;

	(void)at;
	if ((config_node_has(map, "password_file") || config_node_has(map,
	    "password_env")) &&
	    config_node_has(map, "ssh_key_file"))
		config_walk_error(ctx, config_node_get_key(map, "ssh_key_file"),
		    "ssh_key_file",
		    "use either a password or an SSH key, not both");
	if ((a->ssh_passphrase != NULL || a->ssh_pubkey_file != NULL) &&
	    !config_node_has(map, "ssh_key_file"))
		config_walk_error(ctx, map, "ssh_key_file",
		    "ssh_passphrase and ssh_pubkey_file need ssh_key_file");
}

/* A templated push_branch must expand to a valid branch name; a pull
 * request needs a branch of its own to come from. */
static void
config_check_repo(struct config_walk *ctx, void *obj,
    const struct config_node *map,
    const struct config_node *at)
{
	struct config_repo	*r = obj;
	char			 why[256];

	(void)at;
	if (r->push_branch != NULL && pr_check_branch(r->push_branch, why,
	    sizeof(why)) == -1)
		config_walk_error(ctx, config_node_get(map, "push_branch"),
		    "push_branch",
		    "%s", why);
	if (r->pull_request.provider != CONFIG_PR_NONE &&
	    (r->push_branch == NULL || (r->branch != NULL &&
	    strcmp(r->push_branch, r->branch) == 0)))
		config_walk_error(ctx, config_node_get(map, "pull_request"),
		    "pull_request",
		    "needs a push_branch other than branch to open it from");
}

static void
config_check_repo_pr(struct config_walk *ctx, void *obj,
    const struct config_node *map,
    const struct config_node *at)
{
	struct config_pull_request	*p = obj;
	char				 why[256];

	(void)at;
	if (map == NULL)
		return;
	/* Required inside the table only: KEY_REQUIRED would ask for them
	 * in every repo. */
	if (!config_node_has(map, "provider"))
		config_walk_error(ctx, map, "provider", "missing required key");
	if (!config_node_has(map, "token_file"))
		config_walk_error(ctx, map, "token_file",
		    "missing required key");
	if (p->title != NULL && pr_check_text(p->title, why, sizeof(why)) ==
	    -1)
		config_walk_error(ctx, config_node_get(map, "title"), "title",
		    "%s", why);
	if (p->body != NULL && pr_check_text(p->body, why, sizeof(why)) == -1)
		config_walk_error(ctx, config_node_get(map, "body"), "body",
		    "%s", why);
	if (p->api_url != NULL && strncmp(p->api_url, "https://", 8) != 0 &&
	    strncmp(p->api_url, "http://", 7) != 0)
		config_walk_error(ctx, config_node_get(map, "api_url"),
		    "api_url",
		    "must be an http:// or https:// URL");
}

static void
config_check_app(struct config_walk *ctx, void *obj,
    const struct config_node *map,
    const struct config_node *at)
{
	struct config_app	*a = obj;
	const struct config_node	*v = config_node_get(map, "path");
	const char		*seg;

	(void)at;
	if (a->path == NULL || v == NULL)
		return;
	/* Manifests stay inside the clone. */
	if (a->path[0] == '/') {
		config_walk_error(ctx, v, "path",
		    "must be relative to the repository");
		return;
	}
	for (seg = a->path; seg != NULL; seg = strchr(seg, '/')) {
		if (*seg == '/')
			seg++;
		if (strncmp(seg, "..", 2) == 0 &&
		    (seg[2] == '/' || seg[2] == '\0')) {
			config_walk_error(ctx, v, "path",
			    "must not leave the repository (..)");
			return;
		}
	}
}

static void
config_check_policy(struct config_walk *ctx, void *obj,
    const struct config_node *map,
    const struct config_node *at)
{
	struct config_policy	*p = obj;
	int			 n = 0, latest = 0;
	const struct config_node	*l = config_node_get(map, "latest");

	if (map == NULL) {
		/* No policy: any release. */
		p->kind = CONFIG_POLICY_SEMVER;
		p->semver = xstrdup(">=0.0.0");
		return;
	}
	if (config_node_has(map, "semver")) {
		n++;
		p->kind = CONFIG_POLICY_SEMVER;
	}
	if (config_node_has(map, "pattern")) {
		n++;
		p->kind = CONFIG_POLICY_PATTERN;
	}
	if (config_node_has(map, "digest")) {
		n++;
		p->kind = CONFIG_POLICY_DIGEST;
	}
	if (l != NULL && !(l->kind == CONFIG_NODE_SCALAR && l->null)) {
		if (config_schema_value_bool(ctx, l, &latest) == 0 && !latest)
			config_walk_error(ctx, l, "latest",
			    "latest can only be true "
			    "(remove it for another policy)");
		n++;
		p->kind = CONFIG_POLICY_LATEST;
	}
	if (n != 1) {
		config_walk_error(ctx, at, NULL,
		    "exactly one of semver, pattern, latest, digest "
		    "is required (%d given)", n);
		return;
	}
	if (p->kind != CONFIG_POLICY_PATTERN) {
		if (config_node_has(map, "extract"))
			config_walk_error(ctx, config_node_get_key(map,
			    "extract"), "extract",
			    "only applies to a pattern policy");
		if (config_node_has(map, "order"))
			config_walk_error(ctx, config_node_get_key(map,
			    "order"), "order",
			    "only applies to a pattern policy");
	}
	if (p->kind != CONFIG_POLICY_SEMVER && config_node_has(map,
	    "prerelease"))
		config_walk_error(ctx, config_node_get_key(map, "prerelease"),
		    "prerelease",
		    "only applies to a semver policy");
}

/* ---- references */

/* A mark recorded during the walk, as a node for messages. */
static struct config_node
config_mark_node(const struct config_walk *ctx, const char *path)
{
	struct config_node	n = { .kind = CONFIG_NODE_SCALAR };

	config_marks_find(ctx->marks, path, &n.line, &n.col);
	return n;
}

/* Names within one list are unique. */
static void
config_check_unique(struct config_walk *ctx, const char *list, const void *arr,
    size_t n,
    size_t size, size_t name_off, const char *what)
{
	size_t	 i, j;
	char	 p[64], q[64];

	for (i = 0; i < n; i++) {
		const char *a = *CONFIG_FIELD((const char *)arr + i * size,
		    name_off,
		    char *);

		if (a == NULL)
			continue;
		for (j = 0; j < i; j++) {
			const char *b = *CONFIG_FIELD((const char *)arr + j * size,
			    name_off, char *);
			struct config_node first;

			if (b == NULL || strcmp(a, b) != 0)
				continue;
			snprintf(p, sizeof(p), "%s[%zu].%s", list, i, what);
			snprintf(q, sizeof(q), "%s[%zu].%s", list, j, what);
			first = config_mark_node(ctx, q);
			config_walk_error_at(ctx, p,
			    "duplicate %s \"%s\" (first at line %d)",
			    what, a, first.line);
			break;
		}
	}
}

static void
config_check_refs(struct config_walk *ctx, struct config *c)
{
	size_t	 i, j;
	char	 p[96];

	config_check_unique(ctx, "registries", c->registries, c->nregistries,
	    sizeof(*c->registries), O(struct config_registry, host), "host");
	config_check_unique(ctx, "sources", c->sources, c->nsources,
	    sizeof(*c->sources), O(struct config_source, name), "name");
	config_check_unique(ctx, "repos", c->repos, c->nrepos,
	    sizeof(*c->repos),
	    O(struct config_repo, name), "name");
	config_check_unique(ctx, "clusters", c->clusters, c->nclusters,
	    sizeof(*c->clusters), O(struct config_cluster, name), "name");
	config_check_unique(ctx, "apps", c->apps, c->napps, sizeof(*c->apps),
	    O(struct config_app, name), "name");
	config_check_unique(ctx, "notifiers", c->notifiers, c->nnotifiers,
	    sizeof(*c->notifiers), O(struct config_notifier, name), "name");

	for (i = 0; i < c->napps; i++) {
		struct config_app *a = &c->apps[i];

		if (a->repo != NULL && config_find_repo(c, a->repo) == NULL) {
			snprintf(p, sizeof(p), "apps[%zu].repo", i);
			config_walk_error_at(ctx, p, "unknown repo \"%s\"",
			    a->repo);
		}
		if (a->cluster != NULL &&
		    config_find_cluster(c, a->cluster) == NULL) {
			snprintf(p, sizeof(p), "apps[%zu].cluster", i);
			config_walk_error_at(ctx, p, "unknown cluster \"%s\"",
			    a->cluster);
		}
		for (j = 0; j < a->nnotify; j++) {
			if (config_find_notifier(c, a->notify[j]) != NULL)
				continue;
			snprintf(p, sizeof(p), "apps[%zu].notify[%zu]", i, j);
			config_walk_error_at(ctx, p, "unknown notifier \"%s\"",
			    a->notify[j]);
		}
	}
	for (j = 0; j < c->nnotify_default; j++) {
		if (config_find_notifier(c, c->notify_default[j]) != NULL)
			continue;
		snprintf(p, sizeof(p), "notify_default[%zu]", j);
		config_walk_error_at(ctx, p, "unknown notifier \"%s\"",
		    c->notify_default[j]);
	}
}

void
config_free(struct config *c)
{
	if (c == NULL)
		return;
	config_schema_free_table(&top_table, c);
	config_marks_free(c->marks);
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

static struct config *
config_load_common(const char *name, const char *abspath, char *basedir,
    const char *buf, size_t len, struct config_errors *errs, int keep)
{
	struct config_walk	 ctx;
	struct config	*c = NULL;
	struct config_node	*root = NULL;
	int		 nerr;

	memset(&ctx, 0, sizeof(ctx));
	ctx.file = name;
	ctx.basedir = basedir;
	buf_init(&ctx.path, 0);
	buf_addstr(&ctx.path, "");
	ctx.marks = xcalloc(1, sizeof(*ctx.marks));

	if (len > CONFIG_MAX_BYTES) {
		struct config_node at = { .line = 1, .col = 1 };

		config_walk_error(&ctx, &at, NULL,
		    "file is larger than %d bytes",
		    CONFIG_MAX_BYTES);
		goto out;
	}
	if (memchr(buf, '\0', len) != NULL) {
		struct config_node at = { .line = 1, .col = 1 };

		config_walk_error(&ctx, &at, NULL, "file holds a NUL byte");
		goto out;
	}
	if ((root = config_yaml_parse(ctx.file, &ctx.errors, buf, len)) == NULL)
		goto out;

	c = xcalloc(1, sizeof(*c));
	c->refs = 1;
	c->path = xstrdup(abspath);
	c->marks = ctx.marks;
	c->marks->file = xstrdup(name);
	ctx.cfg = c;
	if (root->kind == CONFIG_NODE_SCALAR && root->null)
		config_schema_walk_table(&ctx, &top_table, c, NULL, root);
	else if (root->kind != CONFIG_NODE_MAP)
		config_walk_error(&ctx, root, NULL,
		    "the configuration must be a mapping of keys, "
		    "got %s", config_node_kind_name(root));
	else
		config_schema_walk_table(&ctx, &top_table, c, root, root);
	config_marks_sort(ctx.marks);
	config_check_refs(&ctx, c);
out:
	nerr = (int)ctx.errors.n;
	config_diags_flush(&ctx.errors, &errs->msgs, &errs->n);
	config_diags_flush(&ctx.warnings, &errs->warnings, &errs->nwarnings);
	config_diags_free(&ctx.errors);
	config_diags_free(&ctx.warnings);
	buf_free(&ctx.path);
	config_node_free(root);
	if (c == NULL)
		config_marks_free(ctx.marks);
	if (nerr > 0 && c != NULL && keep && config_schema_complete(&top_table,
	    c))
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
			config_strv_push(&errs->msgs, &errs->n,
			    xasprintf("%s:1:1: file "
			    "is larger than %d bytes", path, CONFIG_MAX_BYTES));
		else
			config_strv_push(&errs->msgs, &errs->n,
			    xasprintf("%s: cannot "
			    "read: %s", path, strerror(errno)));
		return NULL;
	}
	if (path[0] == '/')
		abspath = config_schema_path_clean(path);
	else {
		char *cwd = config_path_cwd();

		tmp = xasprintf("%s/%s", cwd, path);
		abspath = config_schema_path_clean(tmp);
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
	return config_load_common(name, name, config_path_cwd(), buf, len, errs,
	    0);
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

	config_marks_find(c->marks, keypath, &line, &col);
	/* A config built by hand (tests) may have neither. */
	config_strv_push(v, n,
	    config_diag_format(c->marks != NULL ? c->marks->file :
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

void
config_schema_foreach(config_schema_cb *cb, void *arg)
{
	config_schema_list_table(&top_table, cb, arg);
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
