/*
 * Unit tests for config.c: values and defaults of a full file, every error
 * class with its exact "FILE:LINE:COLUMN: key.path: message", secrets,
 * relative paths, listen addresses, positions for other modules.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "check.h"
#include "config.h"
#include "config_yaml.h"
#include "notifier.h"
#include "util.h"

/* A scratch directory per test, removed in teardown. */
static char tmpdir[64];

static int
setup_tmp(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_config.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	return 0;
}

static int
teardown_tmp(void **state)
{
	(void)state;
	util_rmtree(tmpdir);
	return 0;
}

/* Writes tmpdir/rel (creating directories); returns the absolute path. */
static char *
put_file(const char *rel, const char *contents)
{
	char	*p, *dir, *slash;

	p = xasprintf("%s/%s", tmpdir, rel);
	dir = xstrdup(p);
	if ((slash = strrchr(dir, '/')) != NULL) {
		*slash = '\0';
		assert_int_equal(util_mkdirs(dir, 0755), 0);
	}
	free(dir);
	assert_int_equal(util_write_file_atomic(p, contents, strlen(contents)), 0);
	return p;
}

/* Same, for files whose path the test does not need. */
static void
put(const char *rel, const char *contents)
{
	free(put_file(rel, contents));
}

static struct config *
load(const char *yaml, struct config_errors *e)
{
	memset(e, 0, sizeof(*e));
	return config_load_buffer("t.yaml", yaml, strlen(yaml), e);
}

static void
dump(const struct config_errors *e)
{
	size_t	i;

	for (i = 0; i < e->n; i++)
		print_message("  error: %s\n", e->msgs[i]);
	for (i = 0; i < e->nwarnings; i++)
		print_message("  warning: %s\n", e->warnings[i]);
}

/* Asserts that msg is one of the errors, exactly. */
static void
assert_error(const struct config_errors *e, const char *msg)
{
	size_t	i;

	for (i = 0; i < e->n; i++)
		if (strcmp(e->msgs[i], msg) == 0)
			return;
	print_message("missing error: %s\n", msg);
	dump(e);
	fail();
}

/* The load fails with exactly one error, msg. */
static void
assert_only_error(const char *yaml, const char *msg)
{
	struct config_errors	 e = { 0 };
	struct config		*c;

	c = load(yaml, &e);
	if (c != NULL || e.n != 1) {
		print_message("expected exactly one error: %s\n", msg);
		dump(&e);
	}
	assert_null(c);
	assert_int_equal(e.n, 1);
	assert_string_equal(e.msgs[0], msg);
	config_errors_free(&e);
}

static struct config *
load_ok(const char *yaml)
{
	struct config_errors	 e = { 0 };
	struct config		*c;

	c = load(yaml, &e);
	if (c == NULL)
		dump(&e);
	assert_non_null(c);
	assert_int_equal(e.n, 0);
	config_errors_free(&e);
	return c;
}

/* A file with every section; secrets relative to it. */
/* Render a test alert with the notifier's plug-in. */
static void
render_ok(const struct config_notifier *n, struct notify_request *req)
{
	static const struct notify_alert a = {
		.event = "job.failed", .app = "web", .kind = "sync",
		.alert_id = "0123456789abcdef0123456789abcdef",
	};
	char	err[256];

	assert_non_null(n);
	assert_non_null(n->plugin);
	assert_int_equal(n->plugin->render(n, &a, req, err, sizeof(err)), 0);
}

static int
has_header(const struct notify_request *req, const char *line)
{
	size_t	i;

	for (i = 0; i < req->nheaders; i++)
		if (strcmp(req->headers[i], line) == 0)
			return 1;
	return 0;
}

static void
test_full_config(void **state)
{
	struct config_errors	 e = { 0 };
	struct config		*c;
	char			*path, *want;
	const struct config_app	*a;
	const struct config_notifier *n;
	struct notify_request	 req;
	char			 sig[65], want_sig[128];

	(void)state;
	put("secrets/gh.secret", "gh-secret\n");
	put("secrets/gl.new", "gl-new\r\n");
	put("secrets/gl.old", "gl-old");
	put("secrets/admin.token", "admintok\n");
	put("secrets/reg.pw", "regpw\n");
	put("secrets/repo.pw", "repopw\n");
	put("secrets/slack.url", "https://hooks.slack.com/services/X\n");
	put("secrets/smtp.pw", "smtppw\n");
	put("secrets/audit.key", "auditkey\n");
	put("known_hosts", "github.com ssh-ed25519 AAAA\n");
	put("id_ed25519", "KEY\n");
	setenv("TEST_CONFIG_GIT_PW", "envpw", 1);
	path = put_file("etc/gitopsd.yaml",
	    "shutdown_timeout_s: 12\n"
	    "server:\n"
	    "  listen: \"[::1]:8081\"\n"
	    "  max_body_bytes: 2M\n"
	    "  read_timeout_s: 3\n"
	    "admin: {listen: 127.0.0.1:0, token_file: ../secrets/admin.token}\n"
	    "state: {path: state/state.db, dedup_days: 2}\n"
	    "workdir: ../var/repos\n"
	    "queue: {workers: 2}\n"
	    "retry: {base_s: 1, max_s: 10, max_attempts: 3}\n"
	    "git: {push_retries: 1, commit_message: \"bump {{tag}}\"}\n"
	    "notify: {max_attempts: 4, repeat_after_s: 0, timeout_s: 5}\n"
	    "notify_default: [ops]\n"
	    "links: {base_url: \"https://g.example\"}\n"
	    "registries:\n"
	    "  - {host: localhost:5000, username: u,"
	    " password_file: ../secrets/reg.pw, insecure: true}\n"
	    "sources:\n"
	    "  - {name: github, type: github, secret_file: ../secrets/gh.secret,"
	    " allow_sha1: true, rate_limit: {rps: 2.5}}\n"
	    "  - name: gitlab\n"
	    "    type: gitlab\n"
	    "    secret_files: [../secrets/gl.new, ../secrets/gl.old]\n"
	    "    verify_tag: false\n"
	    "    rate_limit: {rps: 10, burst: 3}\n"
	    "repos:\n"
	    "  - name: deploy\n"
	    "    url: ../deploy.git\n"
	    "    auth: {username: bot, password_env: TEST_CONFIG_GIT_PW}\n"
	    "    author: {name: Bot, email: bot@example.com}\n"
	    "  - name: ssh\n"
	    "    url: git@github.com:acme/deploy.git\n"
	    "    branch: prod\n"
	    "    push_branch: bump\n"
	    "    auth: {ssh_key_file: ../id_ed25519,"
	    " known_hosts_file: ../known_hosts}\n"
	    "clusters:\n"
	    "  - {name: prod, kubeconfig: kube/prod.yaml, context: c1,"
	    " allow_insecure: true, qps: 2.5, burst: 5}\n"
	    "  - {name: local, kubeconfig: in-cluster}\n"
	    "apps:\n"
	    "  - name: web\n"
	    "    repo: deploy\n"
	    "    path: apps/web\n"
	    "    cluster: prod\n"
	    "    namespace: web\n"
	    "    exclude: [\"*.md\"]\n"
	    "    render: {command: [kustomize, build, .], timeout_s: 9}\n"
	    "    images:\n"
	    "      - {repository: r.io/web, policy: {semver: \">=1.2.0 <2\","
	    " prerelease: true}}\n"
	    "      - {repository: r.io/w2, policy: {pattern: \"^main-([0-9]+)$\","
	    " extract: \"$1\", order: alphabetical}}\n"
	    "      - {repository: r.io/w3, policy: {latest: true}}\n"
	    "      - {repository: r.io/w4, policy: {digest: stable}}\n"
	    "      - {repository: r.io/w5}\n"
	    "    sync: {auto: false, prune: true, timeout_s: 30, interval_s: 60}\n"
	    "    notify: [ops, mail]\n"
	    "  - {name: bare, repo: ssh}\n"
	    "notifiers:\n"
	    "  - {name: ops, type: slack, url_file: ../secrets/slack.url,"
	    " on: [failure, recovery]}\n"
	    "  - {name: mail, type: email, smtp_url: \"smtp://127.0.0.1:2525\","
	    " require_tls: true, username: u, password_file: ../secrets/smtp.pw,"
	    " from: a@b.c, to: [x@y.z, w@y.z], title: T, body: B, timeout_s: 7}\n"
	    "  - {name: audit, type: webhook, url: \"https://h.example/x\","
	    " secret_file: ../secrets/audit.key, headers: {X-Env: prod, X-A: b},"
	    " on: [all]}\n");

	c = config_load(path, &e);
	if (c == NULL)
		dump(&e);
	assert_non_null(c);
	assert_int_equal(e.n, 0);
	assert_int_equal(c->refs, 1);
	assert_string_equal(c->path, path);
	assert_int_equal(c->shutdown_timeout_s, 12);
	assert_string_equal(c->server.listen.host, "::1");
	assert_int_equal(c->server.listen.port, 8081);
	assert_int_equal(c->server.max_body_bytes, 2 * 1024 * 1024);
	assert_int_equal(c->server.max_header_bytes, 16384);
	assert_int_equal(c->server.read_timeout_s, 3);
	assert_int_equal(c->server.write_timeout_s, 10);
	assert_int_equal(c->server.max_connections, 1024);
	assert_null(c->server.tls_cert_file);
	assert_string_equal(c->admin.listen.host, "127.0.0.1");
	assert_int_equal(c->admin.listen.port, 0);
	assert_string_equal(c->admin.token, "admintok");
	want = xasprintf("%s/secrets/admin.token", tmpdir);
	assert_string_equal(c->admin.token_file, want);
	free(want);
	want = xasprintf("%s/etc/state/state.db", tmpdir);
	assert_string_equal(c->state.path, want);
	free(want);
	assert_int_equal(c->state.dedup_days, 2);
	assert_int_equal(c->state.keep_days, 30);
	want = xasprintf("%s/var/repos", tmpdir);
	assert_string_equal(c->workdir, want);
	free(want);
	assert_int_equal(c->queue.workers, 2);
	assert_int_equal(c->queue.max_queued, 100000);
	assert_int_equal(c->retry.base_s, 1);
	assert_int_equal(c->retry.max_s, 10);
	assert_int_equal(c->retry.max_attempts, 3);
	assert_int_equal(c->git.push_retries, 1);
	assert_string_equal(c->git.commit_message, "bump {{tag}}");
	assert_int_equal(c->notify.max_attempts, 4);
	assert_int_equal(c->notify.repeat_after_s, 0);
	assert_int_equal(c->notify.timeout_s, 5);
	assert_int_equal(c->nnotify_default, 1);
	assert_string_equal(c->notify_default[0], "ops");
	assert_string_equal(c->links_base_url, "https://g.example");

	assert_int_equal(c->nregistries, 1);
	assert_string_equal(c->registries[0].host, "localhost:5000");
	assert_string_equal(c->registries[0].username, "u");
	assert_string_equal(c->registries[0].password, "regpw");
	assert_true(c->registries[0].insecure);

	assert_int_equal(c->nsources, 2);
	assert_string_equal(c->sources[0].name, "github");
	assert_string_equal(c->sources[0].type, "github");
	assert_int_equal(c->sources[0].nsecrets, 1);
	assert_string_equal(c->sources[0].secrets[0], "gh-secret");
	want = xasprintf("%s/secrets/gh.secret", tmpdir);
	assert_string_equal(c->sources[0].secret_paths[0], want);
	free(want);
	assert_true(c->sources[0].allow_sha1);
	assert_true(c->sources[0].verify_tag);
	assert_true(c->sources[0].rate_limit.rps == 2.5);
	assert_int_equal(c->sources[0].rate_limit.burst, 3);
	assert_ptr_equal(config_find_source(c, "gitlab"), &c->sources[1]);
	assert_int_equal(c->sources[1].nsecrets, 2);
	assert_string_equal(c->sources[1].secrets[0], "gl-new");
	assert_string_equal(c->sources[1].secrets[1], "gl-old");
	assert_false(c->sources[1].verify_tag);
	assert_false(c->sources[1].allow_sha1);
	assert_int_equal(c->sources[1].rate_limit.burst, 3);

	assert_int_equal(c->nrepos, 2);
	want = xasprintf("%s/deploy.git", tmpdir);
	assert_string_equal(c->repos[0].url, want);
	free(want);
	assert_string_equal(c->repos[0].branch, "main");
	assert_null(c->repos[0].push_branch);
	assert_string_equal(c->repos[0].auth.username, "bot");
	assert_string_equal(c->repos[0].auth.password, "envpw");
	assert_string_equal(c->repos[0].auth.password_env, "TEST_CONFIG_GIT_PW");
	assert_null(c->repos[0].auth.password_file);
	assert_string_equal(c->repos[0].author_name, "Bot");
	assert_string_equal(c->repos[0].author_email, "bot@example.com");
	assert_string_equal(c->repos[1].url, "git@github.com:acme/deploy.git");
	assert_string_equal(c->repos[1].branch, "prod");
	assert_string_equal(c->repos[1].push_branch, "bump");
	want = xasprintf("%s/known_hosts", tmpdir);
	assert_string_equal(c->repos[1].auth.known_hosts_file, want);
	free(want);
	assert_string_equal(c->repos[1].author_name, "gitopsd");
	assert_string_equal(c->repos[1].author_email, "gitopsd@localhost");

	want = xasprintf("%s/etc/kube/prod.yaml", tmpdir);
	assert_string_equal(config_find_cluster(c, "prod")->kubeconfig, want);
	free(want);
	assert_string_equal(c->clusters[0].context, "c1");
	assert_true(c->clusters[0].allow_insecure);
	assert_string_equal(c->clusters[1].kubeconfig, "in-cluster");
	assert_false(c->clusters[1].allow_insecure);
	assert_true(c->clusters[0].qps == 2.5);
	assert_int_equal(c->clusters[0].burst, 5);
	assert_true(c->clusters[1].qps == 50);
	assert_int_equal(c->clusters[1].burst, 100);

	a = config_find_app(c, "web");
	assert_non_null(a);
	assert_string_equal(a->repo, "deploy");
	assert_string_equal(a->path, "apps/web");
	assert_string_equal(a->cluster, "prod");
	assert_string_equal(a->namespace, "web");
	assert_int_equal(a->nexclude, 1);
	assert_string_equal(a->exclude[0], "*.md");
	assert_int_equal(a->nrender_command, 3);
	assert_string_equal(a->render_command[2], ".");
	assert_int_equal(a->render_timeout_s, 9);
	assert_int_equal(a->nimages, 5);
	assert_int_equal(a->images[0].policy.kind, CONFIG_POLICY_SEMVER);
	assert_string_equal(a->images[0].policy.semver, ">=1.2.0 <2");
	assert_true(a->images[0].policy.prerelease);
	assert_int_equal(a->images[1].policy.kind, CONFIG_POLICY_PATTERN);
	assert_string_equal(a->images[1].policy.pattern, "^main-([0-9]+)$");
	assert_string_equal(a->images[1].policy.extract, "$1");
	assert_int_equal(a->images[1].policy.order, CONFIG_ORDER_ALPHABETICAL);
	assert_int_equal(a->images[2].policy.kind, CONFIG_POLICY_LATEST);
	assert_int_equal(a->images[3].policy.kind, CONFIG_POLICY_DIGEST);
	assert_string_equal(a->images[3].policy.digest_tag, "stable");
	assert_string_equal(a->images[4].repository, "r.io/w5");
	assert_int_equal(a->images[4].policy.kind, CONFIG_POLICY_SEMVER);
	assert_string_equal(a->images[4].policy.semver, ">=0.0.0");
	assert_false(a->images[4].policy.prerelease);
	assert_false(a->sync_auto);
	assert_true(a->sync_prune);
	assert_int_equal(a->sync_timeout_s, 30);
	assert_int_equal(a->sync_interval_s, 60);
	assert_int_equal(a->nnotify, 2);
	assert_string_equal(a->notify[1], "mail");
	a = config_find_app(c, "bare");
	assert_string_equal(a->path, ".");
	assert_null(a->cluster);
	assert_null(a->render_command);
	assert_int_equal(a->render_timeout_s, 60);
	assert_true(a->sync_auto);
	assert_false(a->sync_prune);
	assert_int_equal(a->sync_timeout_s, 300);
	assert_int_equal(a->sync_interval_s, 0);
	assert_int_equal(a->nimages, 0);

	/* A sink's own keys are its plug-in's: read them back from the
	 * request it renders. */
	n = config_find_notifier(c, "ops");
	render_ok(n, &req);
	assert_string_equal(req.url, "https://hooks.slack.com/services/X");
	notify_request_free(&req);
	assert_int_equal(n->on, CONFIG_ON_FAILURE | CONFIG_ON_RECOVERY);
	n = config_find_notifier(c, "mail");
	render_ok(n, &req);
	assert_string_equal(req.url, "smtp://127.0.0.1:2525");
	assert_true(req.require_tls);
	assert_string_equal(req.password, "smtppw");
	assert_string_equal(req.mail_from, "a@b.c");
	assert_int_equal(req.nrcpt, 2);
	assert_string_equal(req.rcpt[1], "w@y.z");
	notify_request_free(&req);
	assert_string_equal(n->title, "T");
	assert_string_equal(n->body, "B");
	assert_int_equal(n->timeout_s, 7);
	assert_int_equal(n->on, CONFIG_ON_FAILURE);
	n = config_find_notifier(c, "audit");
	render_ok(n, &req);
	assert_string_equal(req.url, "https://h.example/x");
	util_hmac_sha256_hex("auditkey", 8, req.body, req.body_len, sig);
	snprintf(want_sig, sizeof(want_sig),
	    "X-Gitopsd-Signature-256: sha256=%s", sig);
	assert_true(has_header(&req, want_sig));
	assert_true(has_header(&req, "X-Env: prod"));
	assert_true(has_header(&req, "X-A: b"));
	notify_request_free(&req);
	assert_int_equal(n->on, CONFIG_ON_ALL);
	assert_null(config_find_notifier(c, "nope"));

	config_unref(c);
	config_errors_free(&e);
	free(path);
	unsetenv("TEST_CONFIG_GIT_PW");
}

/* An empty file is a valid configuration with every default. */
static void
test_defaults(void **state)
{
	struct config	*c;

	(void)state;
	c = load_ok("");
	assert_string_equal(c->server.listen.host, "0.0.0.0");
	assert_int_equal(c->server.listen.port, 8080);
	assert_int_equal(c->server.max_body_bytes, 1048576);
	assert_int_equal(c->server.max_header_bytes, 16384);
	assert_int_equal(c->server.read_timeout_s, 10);
	assert_int_equal(c->server.write_timeout_s, 10);
	assert_int_equal(c->server.max_connections, 1024);
	assert_string_equal(c->admin.listen.host, "127.0.0.1");
	assert_int_equal(c->admin.listen.port, 9090);
	assert_null(c->admin.token);
	assert_string_equal(c->state.path, "/var/lib/gitopsd/state.db");
	assert_int_equal(c->state.dedup_days, 7);
	assert_int_equal(c->state.keep_days, 30);
	assert_int_equal(c->queue.max_queued, 100000);
	assert_int_equal(c->queue.workers, 4);
	assert_int_equal(c->retry.base_s, 5);
	assert_int_equal(c->retry.max_s, 300);
	assert_int_equal(c->retry.max_attempts, 8);
	assert_int_equal(c->git.push_retries, 5);
	assert_null(c->git.commit_message);
	assert_int_equal(c->notify.max_attempts, 10);
	assert_int_equal(c->notify.repeat_after_s, 3600);
	assert_int_equal(c->notify.timeout_s, 10);
	assert_int_equal(c->shutdown_timeout_s, 30);
	assert_string_equal(c->workdir, "/var/lib/gitopsd/repos");
	assert_null(c->links_base_url);
	assert_int_equal(c->nsources + c->nrepos + c->napps + c->nnotifiers, 0);
	config_unref(c);

	/* A section present but empty also gets its defaults. */
	c = load_ok("server:\nsources: []\n");
	assert_int_equal(c->server.listen.port, 8080);
	config_unref(c);

	/* 0 is a value, not "unset": no push retries. */
	c = load_ok("git: {push_retries: 0}\n");
	assert_int_equal(c->git.push_retries, 0);
	config_unref(c);
}

static void
test_syntax_error(void **state)
{
	(void)state;
	assert_only_error("server:\n  listen: \"127.0.0.1:1\n",
	    "t.yaml:3:1: server.listen: syntax error: found unexpected end of "
	    "stream (while scanning a quoted scalar)");
	assert_only_error("apps:\n  - name: a\n    repo: [x\n  - b\n",
	    "t.yaml:5:1: apps[0].repo[1]: syntax error: did not find expected ',' "
	    "or ']' (while parsing a flow sequence)");
	assert_only_error("a: 1\n---\nb: 2\n",
	    "t.yaml:2:1: only one YAML document is allowed");
	assert_only_error("- 1\n",
	    "t.yaml:1:1: the configuration must be a mapping of keys, got a list");
}

static void
test_unknown_keys(void **state)
{
	struct config_errors	 e = { 0 };

	(void)state;
	assert_only_error("server:\n  listne: 127.0.0.1:1\n",
	    "t.yaml:2:3: server.listne: unknown key");
	assert_null(load("bogus: 1\napps:\n  - {name: a, repo: r, colour: red}\n"
	    "repos: [{name: r, url: /x}]\n", &e));
	assert_int_equal(e.n, 2);
	assert_error(&e, "t.yaml:1:1: bogus: unknown key");
	assert_error(&e, "t.yaml:3:24: apps[0].colour: unknown key");
	config_errors_free(&e);
	assert_only_error("state: {path: /a, path: /b}\n",
	    "t.yaml:1:19: state.path: duplicate key (first at line 1)");
}

static void
test_wrong_types(void **state)
{
	struct config_errors	 e = { 0 };

	(void)state;
	assert_null(load(
	    "shutdown_timeout_s: soon\n"
	    "server: [1]\n"
	    "queue: {workers: \"4\"}\n"
	    "workdir: {a: b}\n"
	    "sources: {name: x}\n"
	    "notify_default: ops\n"
	    "apps:\n"
	    "  - 7\n"
	    "notifiers:\n"
	    "  - {name: n, type: webhook, url: \"http://x\", on: [failure],"
	    " headers: [a]}\n"
	    "repos:\n"
	    "  - {name: r, url: /x, auth: {username: [u]}}\n"
	    "clusters: [{name: c, kubeconfig: /k, allow_insecure: maybe}]\n"
	    "retry: {base_s: 1.5}\n", &e));
	assert_error(&e, "t.yaml:1:21: shutdown_timeout_s: expected an integer, "
	    "got \"soon\"");
	assert_error(&e, "t.yaml:2:9: server: expected a mapping, got a list");
	assert_error(&e, "t.yaml:3:18: queue.workers: expected an integer, got "
	    "a quoted string");
	assert_error(&e, "t.yaml:4:10: workdir: expected a string, got a mapping");
	assert_error(&e, "t.yaml:5:10: sources: expected a list, got a mapping");
	assert_error(&e, "t.yaml:6:17: notify_default: expected a list of "
	    "strings, got a scalar");
	assert_error(&e, "t.yaml:8:5: apps[0]: expected a mapping, got a scalar");
	assert_error(&e, "t.yaml:10:71: notifiers[0].headers: expected a mapping "
	    "of header: value, got a list");
	assert_error(&e, "t.yaml:12:41: repos[0].auth.username: expected a "
	    "string, got a list");
	assert_error(&e, "t.yaml:13:54: clusters[0].allow_insecure: expected "
	    "true or false, got \"maybe\"");
	assert_error(&e, "t.yaml:14:17: retry.base_s: expected an integer, got "
	    "\"1.5\"");
	assert_int_equal(e.n, 11);
	config_errors_free(&e);
}

static void
test_out_of_range(void **state)
{
	struct config_errors	 e = { 0 };

	(void)state;
	assert_null(load("queue:\n  workers: 0\n  max_queued: 99999999999\n"
	    "server: {max_body_bytes: 2G, read_timeout_s: -1}\n"
	    "sources:\n  - {name: s, type: t, secret_env: HOME,"
	    " rate_limit: {rps: -1}}\n", &e));
	assert_error(&e, "t.yaml:2:12: queue.workers: 0 is out of range "
	    "(1..256)");
	assert_error(&e, "t.yaml:3:15: queue.max_queued: 99999999999 is out of "
	    "range (1..100000000)");
	assert_error(&e, "t.yaml:4:26: server.max_body_bytes: 2G is out of "
	    "range (1..1073741824)");
	assert_error(&e, "t.yaml:4:46: server.read_timeout_s: -1 is out of "
	    "range (1..3600)");
	assert_error(&e, "t.yaml:6:60: sources[0].rate_limit.rps: -1 is out of "
	    "range (0..1000000)");
	assert_int_equal(e.n, 5);
	config_errors_free(&e);
	assert_only_error("retry: {base_s: 60, max_s: 30}\n",
	    "t.yaml:1:17: retry.base_s: base_s (60) must not exceed max_s (30)");
	assert_only_error("notifiers: [{name: n, type: webhook, url: \"http://x\","
	    " on: [failure, sometimes]}]\n",
	    "t.yaml:1:69: notifiers[0].on[1]: unknown value \"sometimes\" "
	    "(expected one of: failure, recovery, all, started)");
	assert_only_error("apps: [{name: a, repo: r, images: [{repository: x,"
	    " policy: {pattern: y, order: random}}]}]\nrepos: [{name: r, url: /r}]\n",
	    "t.yaml:1:80: apps[0].images[0].policy.order: unknown value "
	    "\"random\" (expected one of: numerical, alphabetical)");
}

static void
test_listen_addresses(void **state)
{
	struct config		*c;
	struct config_errors	 e = { 0 };

	(void)state;
	c = load_ok("server: {listen: \"[::1]:9090\"}\n"
	    "admin: {listen: \"127.0.0.1:0\"}\n");
	assert_string_equal(c->server.listen.host, "::1");
	assert_int_equal(c->server.listen.port, 9090);
	assert_string_equal(c->admin.listen.host, "127.0.0.1");
	assert_int_equal(c->admin.listen.port, 0);
	config_unref(c);
	c = load_ok("server: {listen: \"localhost:65535\"}\n"
	    "admin: {listen: \"[::]:1\", token_env: HOME}\n");
	assert_string_equal(c->server.listen.host, "localhost");
	assert_int_equal(c->server.listen.port, 65535);
	assert_string_equal(c->admin.listen.host, "::");
	config_unref(c);

	assert_only_error("server: {listen: \"::1:80\"}\n",
	    "t.yaml:1:18: server.listen: bad listen address \"::1:80\": an IPv6 "
	    "address needs brackets: [ADDR]:PORT");
	assert_only_error("server: {listen: \"127.0.0.1:65536\"}\n",
	    "t.yaml:1:18: server.listen: bad listen address \"127.0.0.1:65536\": "
	    "port must be 0..65535");
	assert_only_error("server: {listen: \"example.com:80\"}\n",
	    "t.yaml:1:18: server.listen: bad listen address \"example.com:80\": "
	    "host must be an IP address or localhost");
	assert_only_error("server: {listen: \"127.0.0.1\"}\n",
	    "t.yaml:1:18: server.listen: bad listen address \"127.0.0.1\": "
	    "expected HOST:PORT");
	assert_only_error("admin: {listen: \"[::1]\"}\n",
	    "t.yaml:1:17: admin.listen: bad listen address \"[::1]\": expected "
	    "[IPv6]:PORT");
	assert_only_error("admin: {listen: \"[1.2.3.4]:80\"}\n",
	    "t.yaml:1:17: admin.listen: bad listen address \"[1.2.3.4]:80\": not "
	    "an IPv6 address");
	assert_only_error("admin: {listen: \":80\"}\n",
	    "t.yaml:1:17: admin.listen: bad listen address \":80\": missing host");
	assert_only_error("admin: {listen: \"1.2.3:80\"}\n",
	    "t.yaml:1:17: admin.listen: bad listen address \"1.2.3:80\": host "
	    "must be an IP address or localhost");
	assert_only_error("admin: {listen: \"127.0.0.1:http\"}\n",
	    "t.yaml:1:17: admin.listen: bad listen address \"127.0.0.1:http\": "
	    "missing or bad port");

	/* Beyond loopback without a token: an error, unless insecure. */
	assert_only_error("admin: {listen: \"0.0.0.0:9090\"}\n",
	    "t.yaml:1:17: admin: the admin API listens on 0.0.0.0 without a "
	    "token: set token_file (or token_env), or insecure_no_token: true");
	c = load("admin: {listen: \"0.0.0.0:9090\", insecure_no_token: true}\n",
	    &e);
	assert_non_null(c);
	assert_int_equal(e.nwarnings, 1);
	assert_string_equal(e.warnings[0], "t.yaml:1:17: admin: the admin API "
	    "listens on 0.0.0.0 without a token: anyone who reaches it can "
	    "trigger syncs");
	config_unref(c);
	config_errors_free(&e);
	assert_only_error("admin: {allowed_hosts: [\"http://a\"]}\n",
	    "t.yaml:1:24: admin.allowed_hosts: \"http://a\" is not a host or "
	    "host:port");
}

static void
test_missing_required(void **state)
{
	struct config_errors	 e = { 0 };

	(void)state;
	assert_null(load("sources:\n  - type: github\n    secret_env: HOME\n"
	    "  - name: x\n    secret_env: HOME\n"
	    "repos:\n  - name: r\n"
	    "apps:\n  - {name: a, repo: }\n"
	    "clusters: [{name: c}]\n"
	    "notifiers: [{name: n}]\n", &e));
	assert_error(&e, "t.yaml:2:5: sources[0].name: missing required key");
	assert_error(&e, "t.yaml:4:5: sources[1].type: missing required key");
	assert_error(&e, "t.yaml:7:5: repos[0].url: missing required key");
	assert_error(&e, "t.yaml:9:15: apps[0].repo: missing value");
	assert_error(&e, "t.yaml:10:12: clusters[0].kubeconfig: missing required "
	    "key");
	assert_error(&e, "t.yaml:11:13: notifiers[0].type: missing required key");
	assert_int_equal(e.n, 6);
	config_errors_free(&e);

	assert_only_error("sources: [{name: s, type: github}]\n",
	    "t.yaml:1:11: sources[0]: a source needs a secret: set secret_file, "
	    "secret_files, token_file, secret_env or token_env");
	assert_only_error("notifiers: [{name: s, type: slack}]\n",
	    "t.yaml:1:13: notifiers[0].url_file: missing required key (slack "
	    "needs url_file or url_env)");
	assert_only_error("apps: [{name: a, repo: r, images: [{repository: x,"
	    " policy: {prerelease: true}}]}]\nrepos: [{name: r, url: /r}]\n",
	    "t.yaml:1:60: apps[0].images[0].policy: exactly one of semver, "
	    "pattern, latest, digest is required (0 given)");
	assert_only_error("apps: [{name: a, repo: r, images: [{repository: x,"
	    " policy: {semver: \">=1\", latest: true}}]}]\n"
	    "repos: [{name: r, url: /r}]\n",
	    "t.yaml:1:60: apps[0].images[0].policy: exactly one of semver, "
	    "pattern, latest, digest is required (2 given)");
	assert_only_error("apps: [{name: a, repo: r, images: [{policy: "
	    "{latest: true}}]}]\nrepos: [{name: r, url: /r}]\n",
	    "t.yaml:1:36: apps[0].images[0].repository: missing required key");
}

static void
test_names(void **state)
{
	struct config_errors	 e = { 0 };

	(void)state;
	assert_null(load("sources:\n"
	    "  - {name: hub, type: github, secret_env: HOME}\n"
	    "  - {name: lab, type: gitlab, secret_env: HOME}\n"
	    "  - {name: hub, type: gitea, secret_env: HOME}\n"
	    "repos: [{name: r, url: /a}, {name: r, url: /b}]\n"
	    "clusters: [{name: c, kubeconfig: in-cluster},"
	    " {name: c, kubeconfig: in-cluster}]\n"
	    "apps: [{name: a, repo: r}, {name: a, repo: r}]\n"
	    "notifiers: [{name: n, type: webhook, url: \"http://x\"},"
	    " {name: n, type: webhook, url: \"http://y\"}]\n"
	    "registries: [{host: docker.io}, {host: docker.io}]\n", &e));
	assert_error(&e, "t.yaml:4:6: sources[2].name: duplicate name \"hub\" "
	    "(first at line 2)");
	assert_error(&e, "t.yaml:5:30: repos[1].name: duplicate name \"r\" "
	    "(first at line 5)");
	assert_error(&e, "t.yaml:6:48: clusters[1].name: duplicate name \"c\" "
	    "(first at line 6)");
	assert_error(&e, "t.yaml:7:29: apps[1].name: duplicate name \"a\" "
	    "(first at line 7)");
	assert_error(&e, "t.yaml:8:57: notifiers[1].name: duplicate name \"n\" "
	    "(first at line 8)");
	assert_error(&e, "t.yaml:9:34: registries[1].host: duplicate host "
	    "\"docker.io\" (first at line 9)");
	assert_int_equal(e.n, 6);
	config_errors_free(&e);
	assert_only_error("sources: [{name: \"a/b\", type: t, secret_env: HOME}]\n",
	    "t.yaml:1:18: sources[0].name: name \"a/b\" may only contain "
	    "letters, digits, '.', '_' and '-'");
}

static void
test_dangling_refs(void **state)
{
	struct config_errors	 e = { 0 };

	(void)state;
	assert_null(load("notify_default: [ops, pager]\n"
	    "repos: [{name: deploy, url: /d}]\n"
	    "clusters: [{name: prod, kubeconfig: in-cluster}]\n"
	    "notifiers: [{name: ops, type: webhook, url: \"http://x\"}]\n"
	    "apps:\n"
	    "  - name: web\n"
	    "    repo: deploi\n"
	    "    cluster: prdo\n"
	    "    notify: [ops, mail]\n", &e));
	assert_error(&e, "t.yaml:1:23: notify_default[1]: unknown notifier "
	    "\"pager\"");
	assert_error(&e, "t.yaml:7:5: apps[0].repo: unknown repo \"deploi\"");
	assert_error(&e, "t.yaml:8:5: apps[0].cluster: unknown cluster \"prdo\"");
	assert_error(&e, "t.yaml:9:19: apps[0].notify[1]: unknown notifier "
	    "\"mail\"");
	assert_int_equal(e.n, 4);
	config_errors_free(&e);
}

static void
test_inline_secrets(void **state)
{
	struct config_errors	 e = { 0 };
	size_t			 i;

	(void)state;
	assert_null(load("sources:\n"
	    "  - {name: a, type: github, secret: hunter2}\n"
	    "  - {name: b, type: gitlab, token: hunter3}\n"
	    "  - {name: c, type: gitlab, secrets: [hunter4]}\n"
	    "repos: [{name: r, url: /r, auth: {password: hunter5}}]\n"
	    "registries: [{host: h, password: hunter6}]\n"
	    "admin: {token: hunter7}\n"
	    "notifiers:\n"
	    "  - {name: s, type: slack, url: \"https://hooks.slack.com/hunter8\"}\n"
	    "  - {name: w, type: webhook, url: \"http://x\", secret: hunter9}\n",
	    &e));
	assert_error(&e, "t.yaml:2:29: sources[0].secret: inline secrets are not "
	    "allowed; use secret_file or secret_env");
	assert_error(&e, "t.yaml:3:29: sources[1].token: inline secrets are not "
	    "allowed; use token_file or token_env");
	assert_error(&e, "t.yaml:4:29: sources[2].secrets: inline secrets are not "
	    "allowed; use secret_file or secret_env");
	assert_error(&e, "t.yaml:5:35: repos[0].auth.password: inline secrets are "
	    "not allowed; use password_file or password_env");
	assert_error(&e, "t.yaml:6:24: registries[0].password: inline secrets are "
	    "not allowed; use password_file or password_env");
	assert_error(&e, "t.yaml:7:9: admin.token: inline secrets are not "
	    "allowed; use token_file or token_env");
	assert_error(&e, "t.yaml:9:28: notifiers[0].url: inline secrets are not "
	    "allowed; a Slack webhook URL is a secret: use url_file or url_env");
	assert_error(&e, "t.yaml:10:47: notifiers[1].secret: inline secrets are "
	    "not allowed; use secret_file or secret_env");
	/* No second "a source needs a secret" for those sources. */
	assert_int_equal(e.n, 8);
	for (i = 0; i < e.n; i++)
		assert_null(strstr(e.msgs[i], "hunter"));
	config_errors_free(&e);
}

/* Several independent problems are all reported, in file order. */
static void
test_many_errors(void **state)
{
	struct config_errors	 e = { 0 };

	(void)state;
	assert_null(load("server:\n"
	    "  listen: nowhere\n"
	    "  max_connections: 0\n"
	    "queue: {workerz: 2}\n"
	    "apps: [{name: a, repo: missing}]\n", &e));
	assert_int_equal(e.n, 4);
	assert_string_equal(e.msgs[0], "t.yaml:2:11: server.listen: bad listen "
	    "address \"nowhere\": expected HOST:PORT");
	assert_string_equal(e.msgs[1], "t.yaml:3:20: server.max_connections: 0 "
	    "is out of range (1..1000000)");
	assert_string_equal(e.msgs[2], "t.yaml:4:9: queue.workerz: unknown key");
	assert_string_equal(e.msgs[3], "t.yaml:5:18: apps[0].repo: unknown repo "
	    "\"missing\"");
	config_errors_free(&e);
}

static void
test_secret_files(void **state)
{
	struct config_errors	 e = { 0 };
	struct config		*c;
	char			*yaml, *msg;
	size_t			 i;

	(void)state;
	put("empty.secret", "\n");
	put("good.secret", "s3cr3t-contents\n");
	put("old.secret", "old-contents\n");
	yaml = xasprintf(
	    "sources:\n"
	    "  - {name: a, type: github, secret_file: %s/missing.secret}\n"
	    "  - {name: b, type: github, secret_file: %s/empty.secret}\n"
	    "  - {name: c, type: github, secret_files: [%s/good.secret,"
	    " %s/old.secret, %s/good.secret]}\n"
	    "  - {name: d, type: github, secret_file: %s/good.secret,"
	    " secret_files: [%s/old.secret, %s/good.secret]}\n"
	    "  - {name: e, type: github, secret_env: TEST_CONFIG_UNSET_VAR}\n"
	    "notifiers: [{name: n, type: email, password_file: %s/good.secret,"
	    " password_env: HOME}]\n",
	    tmpdir, tmpdir, tmpdir, tmpdir, tmpdir, tmpdir, tmpdir, tmpdir, tmpdir);
	unsetenv("TEST_CONFIG_UNSET_VAR");
	assert_null(load(yaml, &e));
	msg = xasprintf("t.yaml:2:42: sources[0].secret_file: cannot read secret "
	    "file %s/missing.secret: No such file or directory", tmpdir);
	assert_error(&e, msg);
	free(msg);
	msg = xasprintf("t.yaml:3:42: sources[1].secret_file: secret file "
	    "%s/empty.secret is empty", tmpdir);
	assert_error(&e, msg);
	free(msg);
	assert_error(&e, "t.yaml:4:43: sources[2].secret_files: at most 2 secret "
	    "files (new, old)");
	msg = xasprintf("t.yaml:5:%zu: sources[3].secret_files[1]: at most 2 "
	    "secrets per source (new, old)", 84 + 2 * strlen(tmpdir));
	assert_error(&e, msg);
	free(msg);
	assert_error(&e, "t.yaml:6:41: sources[4].secret_env: environment "
	    "variable TEST_CONFIG_UNSET_VAR is not set");
	msg = xasprintf("t.yaml:7:%zu: notifiers[0].password_env: more than one "
	    "of password_file and password_env", 79 + strlen(tmpdir));
	assert_error(&e, msg);
	free(msg);
	assert_int_equal(e.n, 6);
	for (i = 0; i < e.n; i++) {
		assert_null(strstr(e.msgs[i], "s3cr3t"));
		assert_null(strstr(e.msgs[i], "old-contents"));
	}
	config_errors_free(&e);
	free(yaml);

	/* Environment secrets; the source's paths name the variable. */
	setenv("TEST_CONFIG_SECRET", "from-env", 1);
	yaml = xasprintf("sources: [{name: a, type: github, secret_env: "
	    "TEST_CONFIG_SECRET, secret_file: %s/good.secret}]\n", tmpdir);
	c = load_ok(yaml);
	assert_int_equal(c->sources[0].nsecrets, 2);
	assert_string_equal(c->sources[0].secrets[0], "from-env");
	assert_string_equal(c->sources[0].secret_paths[0], "$TEST_CONFIG_SECRET");
	assert_string_equal(c->sources[0].secrets[1], "s3cr3t-contents");
	config_unref(c);
	free(yaml);
	setenv("TEST_CONFIG_SECRET", "", 1);
	assert_only_error("admin: {token_env: TEST_CONFIG_SECRET}\n",
	    "t.yaml:1:20: admin.token_env: environment variable "
	    "TEST_CONFIG_SECRET is empty");
	unsetenv("TEST_CONFIG_SECRET");
}

/* No error message ever carries a secret's contents. */
static void
test_secrets_never_in_errors(void **state)
{
	struct config_errors	 e = { 0 };
	char			*yaml;
	size_t			 i;

	(void)state;
	put("a.secret", "TOPSECRET-A\n");
	put("b.secret", "TOPSECRET-B\n");
	setenv("TEST_CONFIG_SECRET_C", "TOPSECRET-C", 1);
	/* Every secret loads; everything else around them is wrong. */
	yaml = xasprintf(
	    "admin: {listen: bad, token_file: %s/a.secret}\n"
	    "sources:\n"
	    "  - {name: x, type: github, secret_file: %s/a.secret,"
	    " secret_env: TEST_CONFIG_SECRET_C, token_file: %s/b.secret}\n"
	    "  - {name: x, type: 1, token_env: TEST_CONFIG_SECRET_C, unknown: 1}\n"
	    "registries: [{host: h, password_file: %s/b.secret, insecure: 3}]\n"
	    "notifiers: [{name: n, type: slack, url_file: %s/a.secret,"
	    " url: TOPSECRET-D}]\n"
	    "repos: [{name: r, url: /r, auth: {password_file: %s/b.secret,"
	    " ssh_key_file: /nonexistent}}]\n",
	    tmpdir, tmpdir, tmpdir, tmpdir, tmpdir, tmpdir);
	assert_null(load(yaml, &e));
	assert_true(e.n >= 7);
	for (i = 0; i < e.n; i++)
		assert_null(strstr(e.msgs[i], "TOPSECRET"));
	config_errors_free(&e);
	free(yaml);
	unsetenv("TEST_CONFIG_SECRET_C");
}

static void
test_aliases_rejected(void **state)
{
	(void)state;
	assert_only_error("defaults: &d {auto: true}\n"
	    "apps:\n  - name: a\n    sync: *d\n",
	    "t.yaml:4:11: apps[0].sync: aliases (*d) are not allowed in the "
	    "configuration");
	/* A billion laughs never expands. */
	assert_only_error("a: &a [x, x]\nb: &b [*a, *a]\n",
	    "t.yaml:2:8: b[0]: aliases (*a) are not allowed in the configuration");
}

static void
test_limits(void **state)
{
	struct buf		 b;
	struct config_errors	 e = { 0 };
	int			 i;

	(void)state;
	/* 64 levels are parsed (and then refused as unknown keys); 65 are not. */
	buf_init(&b, 0);
	for (i = 0; i < 64; i++)
		buf_addstr(&b, "[");
	for (i = 0; i < 64; i++)
		buf_addstr(&b, "]");
	assert_null(config_load_buffer("t.yaml", b.data, b.len, &e));
	assert_int_equal(e.n, 1);
	assert_string_equal(e.msgs[0], "t.yaml:1:1: the configuration must be a "
	    "mapping of keys, got a list");
	config_errors_free(&e);
	buf_reset(&b);
	buf_addstr(&b, "server: ");
	for (i = 0; i < 100000; i++)
		buf_addstr(&b, "[");
	assert_null(config_load_buffer("t.yaml", b.data, b.len, &e));
	assert_int_equal(e.n, 1);
	/* The 64th "[" opens level 65 (the top-level mapping is level 1). */
	buf_reset(&b);
	buf_addstr(&b, "t.yaml:1:72: server");
	for (i = 0; i < 63; i++)
		buf_addstr(&b, "[0]");
	buf_addstr(&b, ": nesting deeper than 64 levels");
	assert_string_equal(e.msgs[0], b.data);
	config_errors_free(&e);

	/* Over 1 MiB: refused before parsing. */
	buf_reset(&b);
	while (b.len <= 1024 * 1024)
		buf_addstr(&b, "# padding padding padding padding padding\n");
	assert_null(config_load_buffer("t.yaml", b.data, b.len, &e));
	assert_int_equal(e.n, 1);
	assert_string_equal(e.msgs[0], "t.yaml:1:1: file is larger than 1048576 "
	    "bytes");
	config_errors_free(&e);
	buf_free(&b);
}

static void
test_relative_paths(void **state)
{
	struct config_errors	 e = { 0 };
	struct config		*c;
	char			*path, *want, *cwd, buf[4096];

	(void)state;
	put("conf/secrets/hub.secret", "x\n");
	path = put_file("conf/gitopsd.yaml",
	    "state: {path: ./db/../state.db}\n"
	    "workdir: ../var//repos/\n"
	    "sources: [{name: s, type: github, secret_file: secrets/hub.secret}]\n"
	    "repos:\n"
	    "  - {name: a, url: ../git/deploy.git}\n"
	    "  - {name: b, url: /srv/git/deploy.git}\n"
	    "  - {name: c, url: \"file:///srv/git/x.git\"}\n"
	    "  - {name: d, url: \"user@host:acme/x.git\"}\n"
	    "  - {name: e, url: \"https://github.com/acme/x.git\"}\n"
	    "  - {name: f, url: deploy}\n"
	    "clusters:\n"
	    "  - {name: k, kubeconfig: kube/config}\n"
	    "  - {name: i, kubeconfig: in-cluster}\n");
	c = config_load(path, &e);
	if (c == NULL)
		dump(&e);
	assert_non_null(c);
	want = xasprintf("%s/conf/state.db", tmpdir);
	assert_string_equal(c->state.path, want);
	free(want);
	want = xasprintf("%s/var/repos", tmpdir);
	assert_string_equal(c->workdir, want);
	free(want);
	want = xasprintf("%s/conf/secrets/hub.secret", tmpdir);
	assert_string_equal(c->sources[0].secret_paths[0], want);
	free(want);
	want = xasprintf("%s/git/deploy.git", tmpdir);
	assert_string_equal(c->repos[0].url, want);
	free(want);
	assert_string_equal(c->repos[1].url, "/srv/git/deploy.git");
	assert_string_equal(c->repos[2].url, "file:///srv/git/x.git");
	assert_string_equal(c->repos[3].url, "user@host:acme/x.git");
	assert_string_equal(c->repos[4].url, "https://github.com/acme/x.git");
	want = xasprintf("%s/conf/deploy", tmpdir);
	assert_string_equal(c->repos[5].url, want);
	free(want);
	want = xasprintf("%s/conf/kube/config", tmpdir);
	assert_string_equal(c->clusters[0].kubeconfig, want);
	free(want);
	assert_string_equal(c->clusters[1].kubeconfig, "in-cluster");
	config_unref(c);
	config_errors_free(&e);

	/* A relative config path is made absolute first. */
	cwd = getcwd(buf, sizeof(buf));
	assert_non_null(cwd);
	assert_int_equal(chdir(tmpdir), 0);
	c = config_load("conf/gitopsd.yaml", &e);
	assert_int_equal(chdir(buf), 0);
	assert_non_null(c);
	assert_string_equal(c->path, path);
	want = xasprintf("%s/conf/state.db", tmpdir);
	assert_string_equal(c->state.path, want);
	free(want);
	config_unref(c);
	config_errors_free(&e);
	free(path);

	/* From a buffer: relative to the working directory. */
	c = load_ok("workdir: repos\n");
	want = xasprintf("%s/repos", buf);
	assert_string_equal(c->workdir, want);
	free(want);
	config_unref(c);
}

/* Positions for checks in other modules, with fallback to the parent. */
static void
test_error_at(void **state)
{
	struct config_errors	 e = { 0 };
	struct config		*c;

	(void)state;
	c = load_ok("sources:\n"
	    "  - name: a\n"
	    "    type: nosuch\n"
	    "    secret_env: HOME\n"
	    "apps:\n"
	    "  - name: web\n"
	    "    repo: r\n"
	    "    images:\n"
	    "      - repository: x\n"
	    "        policy: {semver: \"bad\"}\n"
	    "repos: [{name: r, url: /r}]\n");
	config_error_at(c, &e, "sources[0].type", "unknown source type \"%s\"",
	    c->sources[0].type);
	config_error_at(c, &e, "apps[0].images[0].policy.semver", "bad range");
	config_error_at(c, &e, "apps[0].images[0].policy.prerelease", "absent");
	config_error_at(c, &e, "apps[0].images[0]", "item");
	config_error_at(c, &e, "apps[0].sync.auto", "parent absent");
	config_error_at(c, &e, "nothing.here", "root");
	config_warning_at(c, &e, "apps[0].name", "just saying");
	assert_int_equal(e.n, 6);
	assert_string_equal(e.msgs[0], "t.yaml:3:5: sources[0].type: unknown "
	    "source type \"nosuch\"");
	assert_string_equal(e.msgs[1], "t.yaml:10:18: "
	    "apps[0].images[0].policy.semver: bad range");
	assert_string_equal(e.msgs[2], "t.yaml:10:9: "
	    "apps[0].images[0].policy.prerelease: absent");
	assert_string_equal(e.msgs[3], "t.yaml:9:9: apps[0].images[0]: item");
	assert_string_equal(e.msgs[4], "t.yaml:6:5: apps[0].sync.auto: parent "
	    "absent");
	assert_string_equal(e.msgs[5], "t.yaml:1:1: nothing.here: root");
	assert_int_equal(e.nwarnings, 1);
	assert_string_equal(e.warnings[0], "t.yaml:6:5: apps[0].name: just saying");
	config_errors_free(&e);
	config_unref(c);
}

static void
test_refcount(void **state)
{
	struct config	*c;

	(void)state;
	c = load_ok("queue: {workers: 3}\n");
	assert_int_equal(c->refs, 1);
	assert_ptr_equal(config_ref(c), c);
	assert_int_equal(c->refs, 2);
	config_unref(c);
	assert_int_equal(c->refs, 1);
	assert_int_equal(c->queue.workers, 3);
	config_unref(c);	/* freed: ASan reports a leak otherwise */
	config_unref(NULL);
}

static void
test_policy_and_notifier_rules(void **state)
{
	struct config_errors	 e = { 0 };

	(void)state;
	assert_null(load("repos: [{name: r, url: /r}]\n"
	    "apps:\n"
	    "  - name: a\n"
	    "    repo: r\n"
	    "    path: ../other\n"
	    "    images:\n"
	    "      - {repository: x, policy: {semver: \">=1\", order: numerical}}\n"
	    "      - {repository: y, policy: {latest: false}}\n"
	    "notifiers:\n"
	    "  - {name: w, type: webhook}\n"
	    "  - {name: v, type: webhook, url: \"http://x\", url_env: HOME}\n"
	    "links: {base_url: \"ftp://x\"}\n"
	    "server: {tls: {cert_file: /etc/hostname}}\n", &e));
	assert_error(&e, "t.yaml:5:11: apps[0].path: must not leave the "
	    "repository (..)");
	assert_error(&e, "t.yaml:7:49: apps[0].images[0].policy.order: only "
	    "applies to a pattern policy");
	assert_error(&e, "t.yaml:8:42: apps[0].images[1].policy.latest: latest "
	    "can only be true (remove it for another policy)");
	assert_error(&e, "t.yaml:10:5: notifiers[0].url: missing required key "
	    "(webhook needs url, url_file or url_env)");
	assert_error(&e, "t.yaml:11:30: notifiers[1].url: set url or "
	    "url_file/url_env, not both");
	assert_error(&e, "t.yaml:12:19: links.base_url: must start with http:// "
	    "or https://");
	assert_error(&e, "t.yaml:13:15: server.tls: cert_file and key_file go "
	    "together");
	assert_int_equal(e.n, 7);
	config_errors_free(&e);
}

/* Links point at admin.public_url unless links.base_url says otherwise;
 * either must be an http(s) URL. */
static void
test_public_url(void **state)
{
	struct config_errors	 e;
	struct config		*c;

	(void)state;
	c = load("admin: {public_url: \"https://deploy.example/\"}\n", &e);
	assert_non_null(c);
	assert_string_equal(config_links_base(c), "https://deploy.example/");
	config_free(c);
	config_errors_free(&e);

	c = load("admin: {public_url: \"https://deploy.example/\"}\n"
	    "links: {base_url: \"http://alerts.example\"}\n", &e);
	assert_non_null(c);
	assert_string_equal(config_links_base(c), "http://alerts.example");
	config_free(c);
	config_errors_free(&e);

	c = load("admin: {listen: \"127.0.0.1:9\"}\n", &e);
	assert_non_null(c);
	assert_null(config_links_base(c));
	config_free(c);
	config_errors_free(&e);

	assert_null(load("admin: {public_url: deploy.example}\n", &e));
	assert_error(&e, "t.yaml:1:21: admin.public_url: must start with "
	    "http:// or https://");
	assert_int_equal(e.n, 1);
	config_errors_free(&e);
}

/* state.driver postgres takes its DSN from dsn_file or dsn_env, sqlite none. */
/*
 * A sink's own keys come from its plug-in (notify/<type>.c): their errors
 * keep the position of the key, a key of another sink is not used by this
 * type, and an unknown type has its keys left to the type's own error.
 */
static void
test_plugin_keys(void **state)
{
	struct config_errors	 e = { 0 };
	struct config		*c;

	(void)state;
	assert_null(load("notifiers:\n"
	    "  - name: m\n"
	    "    type: email\n"
	    "    smtp_url: \"smtp://127.0.0.1:25\"\n"
	    "    require_tls: maybe\n"
	    "    headers: {X-A: b}\n"
	    "    to: [a@b.c]\n"
	    "    timeout_s: 601\n"
	    "  - {name: w, type: webhook, url: \"http://x\", smtp_url: y}\n"
	    "  - {name: s, type: slack, url_env: HOME, bogus: 1}\n", &e));
	assert_error(&e, "t.yaml:5:18: notifiers[0].require_tls: expected true "
	    "or false, got \"maybe\"");
	assert_error(&e, "t.yaml:6:5: notifiers[0].headers: not used by type "
	    "email");
	assert_error(&e, "t.yaml:8:16: notifiers[0].timeout_s: 601 is out of "
	    "range (0..600)");
	assert_error(&e, "t.yaml:9:47: notifiers[1].smtp_url: not used by type "
	    "webhook");
	assert_error(&e, "t.yaml:10:43: notifiers[2].bogus: unknown key");
	assert_int_equal(e.n, 5);
	config_errors_free(&e);

	/* An unknown type: its sink keys are not judged, the type is. */
	c = load_ok("notifiers:\n"
	    "  - {name: p, type: pager, url: \"http://x\", smtp_url: y}\n");
	assert_null(c->notifiers[0].plugin);
	assert_null(c->notifiers[0].opts);
	memset(&e, 0, sizeof(e));
	assert_int_equal(check_config(c, &e), 1);
	assert_error(&e, "t.yaml:2:15: notifiers[0].type: unknown notifier type "
	    "\"pager\"");
	config_errors_free(&e);
	config_unref(c);
	assert_null(load("notifiers:\n"
	    "  - {name: p, type: pager, nope: 1}\n", &e));
	assert_error(&e, "t.yaml:2:28: notifiers[0].nope: unknown key");
	config_errors_free(&e);
}

/* The YAML module alone: positions of keys and values, and a refused
 * alias reported with the path of the collection it is in. */
static void
test_yaml_tree(void **state)
{
	static const char	 ok[] = "a:\n  b: [x, 'y']\n  c: ~\n";
	static const char	 bad[] = "a: &x 1\nb:\n  - *x\n";
	struct config_diags	 d = { 0 };
	struct config_node	*root, *a, *b;
	char			**msgs = NULL;
	size_t			 n = 0;

	(void)state;
	root = config_yaml_parse("y.yaml", &d, ok, strlen(ok));
	assert_non_null(root);
	assert_int_equal(d.n, 0);
	assert_int_equal(root->kind, CONFIG_NODE_MAP);
	a = (struct config_node *)config_node_get(root, "a");
	assert_non_null(a);
	b = (struct config_node *)config_node_get(a, "b");
	assert_int_equal(b->kind, CONFIG_NODE_SEQ);
	assert_int_equal(b->line, 2);
	assert_int_equal(b->col, 6);
	assert_int_equal(b->kids[1]->col, 10);
	assert_false(b->kids[1]->plain);
	assert_string_equal(config_node_kind_name(b->kids[1]),
	    "a quoted string");
	assert_int_equal(config_node_get_key(a, "c")->line, 3);
	assert_false(config_node_has(a, "c"));
	assert_true(config_node_has(a, "b"));
	config_node_free(root);

	assert_null(config_yaml_parse("y.yaml", &d, bad, strlen(bad)));
	config_diags_flush(&d, &msgs, &n);
	assert_int_equal(n, 1);
	assert_string_equal(msgs[0], "y.yaml:3:5: b[0]: aliases (*x) are not "
	    "allowed in the configuration");
	free(msgs[0]);
	free(msgs);
	config_diags_free(&d);
}

static void
test_state_driver(void **state)
{
	struct config	*c;

	(void)state;
	c = load_ok("state: {path: /tmp/s.db}\n");
	assert_int_equal(c->state.driver, CONFIG_STATE_SQLITE);
	assert_null(c->state.dsn);
	config_unref(c);
	setenv("TEST_CONFIG_DSN", "host=127.0.0.1 password=pg-secret", 1);
	c = load_ok("state: {driver: postgres, dsn_env: TEST_CONFIG_DSN}\n");
	assert_int_equal(c->state.driver, CONFIG_STATE_POSTGRES);
	assert_string_equal(c->state.dsn, "host=127.0.0.1 password=pg-secret");
	config_unref(c);
	assert_only_error("state: {driver: postgres}\n",
	    "t.yaml:1:17: state.driver: driver postgres needs dsn_file or "
	    "dsn_env");
	assert_only_error("state: {dsn_env: TEST_CONFIG_DSN}\n",
	    "t.yaml:1:18: state.dsn_env: dsn_file and dsn_env need driver: "
	    "postgres");
	assert_only_error("state: {driver: mysql}\n",
	    "t.yaml:1:17: state.driver: unknown value \"mysql\" (expected one "
	    "of: sqlite, postgres)");
	unsetenv("TEST_CONFIG_DSN");
}

/* Headers, readable-file keys, variable names, sizes, auth conflicts. */
static void
test_misc_values(void **state)
{
	struct config_errors	 e = { 0 };
	struct config		*c;

	(void)state;
	c = load_ok("server: {max_header_bytes: 16K, max_body_bytes: 1MiB}\n");
	assert_int_equal(c->server.max_header_bytes, 16384);
	assert_int_equal(c->server.max_body_bytes, 1048576);
	config_unref(c);
	setenv("TEST_CONFIG_TOK", "tok", 1);
	assert_null(load(
	    "notifiers:\n"
	    "  - name: w\n"
	    "    type: webhook\n"
	    "    url: \"http://x\"\n"
	    "    headers: {\"Bad Name\": x, X-Ok: \"a\\r\\nInjected: 1\", X-Empty: }\n"
	    "repos:\n"
	    "  - name: r\n"
	    "    url: git@h:r.git\n"
	    "    auth: {password_env: TEST_CONFIG_TOK, ssh_key_file: /nonexistent/key,"
	    " ssh_passphrase_env: \"A B\"}\n"
	    "admin: {token_env: TEST_CONFIG_TOK, token_file: /nonexistent/tok}\n"
	    "server: {max_header_bytes: 16Q}\n", &e));
	assert_error(&e, "t.yaml:5:15: notifiers[0].headers.Bad Name: not a "
	    "valid header name");
	assert_error(&e, "t.yaml:5:36: notifiers[0].headers.X-Ok: header value "
	    "holds a line break");
	assert_error(&e, "t.yaml:5:65: notifiers[0].headers.X-Empty: empty "
	    "header value");
	assert_error(&e, "t.yaml:9:57: repos[0].auth.ssh_key_file: cannot read "
	    "/nonexistent/key: No such file or directory");
	assert_error(&e, "t.yaml:9:95: repos[0].auth.ssh_passphrase_env: \"A B\" "
	    "is not an environment variable name");
	assert_error(&e, "t.yaml:10:49: admin.token_file: more than one of "
	    "token_file and token_env");
	assert_error(&e, "t.yaml:11:28: server.max_header_bytes: expected a size "
	    "(bytes, or with K, M, G suffix), got \"16Q\"");
	assert_error(&e, "t.yaml:9:43: repos[0].auth.ssh_key_file: use either "
	    "a password or an SSH key, not both");
	assert_int_equal(e.n, 8);
	config_errors_free(&e);
	/* Both a password and a key: which one would be used is unclear. */
	assert_only_error("repos: [{name: r, url: /r, auth: {password_env: "
	    "TEST_CONFIG_TOK, ssh_key_file: /etc/hostname}}]\n",
	    "t.yaml:1:66: repos[0].auth.ssh_key_file: use either a password or "
	    "an SSH key, not both");
	unsetenv("TEST_CONFIG_TOK");
}

/*
 * config_load_for_check: errors in values still give a config for the
 * module checks; a missing required key or a syntax error does not.
 */
static void
test_load_for_check(void **state)
{
	struct config_errors	 e = { 0 };
	struct config		*c;
	char			*path, *want;

	(void)state;
	put("s.secret", "x\n");
	path = put_file("a.yaml",
	    "bogus_key: 1\n"
	    "sources: [{name: gh, type: nosuchhost, secret_file: s.secret}]\n"
	    "repos: [{name: r, url: /r}]\n"
	    "apps:\n"
	    "  - name: a\n"
	    "    repo: r\n"
	    "    images:\n"
	    "      - {repository: x, policy: {semver: [1]}}\n"
	    "      - {repository: y, policy: {pattern: p, digest: d}}\n"
	    "      - {repository: z, policy: {pattern: \"^v\", order: up}}\n");
	assert_null(config_load(path, &e));
	assert_int_equal(e.n, 4);
	config_errors_free(&e);
	c = config_load_for_check(path, &e);
	assert_non_null(c);
	assert_int_equal(e.n, 4);
	assert_string_equal(c->sources[0].type, "nosuchhost");
	assert_int_equal(c->apps[0].images[0].policy.kind, CONFIG_POLICY_SEMVER);
	assert_string_equal(c->apps[0].images[0].policy.semver, ">=0.0.0");
	assert_int_equal(c->apps[0].images[1].policy.kind, CONFIG_POLICY_DIGEST);
	assert_int_equal(c->apps[0].images[2].policy.kind, CONFIG_POLICY_PATTERN);
	assert_string_equal(c->apps[0].images[2].policy.pattern, "^v");
	config_error_at(c, &e, "sources[0].type", "unknown source type");
	assert_int_equal(e.n, 5);
	want = xasprintf("%s:2:22: sources[0].type: unknown source type", path);
	assert_string_equal(e.msgs[4], want);
	free(want);
	config_unref(c);
	config_errors_free(&e);
	free(path);

	/* A required key missing: the checks would see NULL, so no config. */
	path = put_file("b.yaml", "sources: [{name: gh, secret_file: s.secret}]\n");
	assert_null(config_load_for_check(path, &e));
	assert_int_equal(e.n, 1);
	config_errors_free(&e);
	free(path);
	path = put_file("c.yaml", "apps: [7]\n");
	assert_null(config_load_for_check(path, &e));
	config_errors_free(&e);
	free(path);
	path = put_file("d.yaml", "a: [\n");
	assert_null(config_load_for_check(path, &e));
	assert_int_equal(e.n, 1);
	config_errors_free(&e);
	free(path);
	/* A valid file: same as config_load. */
	path = put_file("e.yaml", "queue: {workers: 2}\n");
	c = config_load_for_check(path, &e);
	assert_non_null(c);
	assert_int_equal(e.n, 0);
	config_unref(c);
	config_errors_free(&e);
	free(path);
}

/* Every key of the schema is documented in docs/config.md. */
struct doc_check {
	char	*doc;
	int	 missing;
	int	 keys;
};

static void
doc_key_cb(const char *keypath, const char *type, const char *def,
    const char *help, void *arg)
{
	struct doc_check	*d = arg;
	char			*needle;

	(void)def;
	assert_non_null(type);
	assert_non_null(help);
	d->keys++;
	needle = xasprintf("`%s`", keypath);
	if (strstr(d->doc, needle) == NULL) {
		print_message("docs/config.md lacks %s\n", needle);
		d->missing++;
	}
	free(needle);
}

static void
test_schema_documented(void **state)
{
	struct doc_check	 d = { 0 };

	(void)state;
	d.doc = util_read_file("docs/config.md", 0, NULL);
	if (d.doc == NULL)
		skip();
	config_schema_foreach(doc_key_cb, &d);
	assert_true(d.keys > 100);
	assert_int_equal(d.missing, 0);
	free(d.doc);
}

/* The warnings of loading yaml, which must load. */
static struct config_errors
load_warnings(const char *yaml)
{
	struct config_errors	 e;
	struct config		*c;

	c = load(yaml, &e);
	if (c == NULL)
		dump(&e);
	assert_non_null(c);
	config_unref(c);
	return e;
}

/*
 * A secret file (any *_file secret key, private keys) readable by others,
 * or by a group that is not gitopsd's own, is warned about with its mode.
 */
static void
test_secret_file_modes(void **state)
{
	struct config_errors	 e;
	char			*sec, *key, *yaml, *want;

	(void)state;
	sec = put_file("hook.secret", "s3cret\n");
	key = put_file("id_ed25519", "-----BEGIN OPENSSH PRIVATE KEY-----\n");
	yaml = xasprintf("sources:\n  - {name: gh, type: github, secret_file: "
	    "%s}\nrepos:\n  - {name: d, url: \"ssh://git@127.0.0.1/d.git\","
	    " auth: {ssh_key_file: %s}}\n", sec, key);

	/* 0600: quiet. */
	e = load_warnings(yaml);
	assert_int_equal(e.nwarnings, 0);
	config_errors_free(&e);

	/* Readable by others: the file, its mode, the key it came from. */
	assert_int_equal(chmod(sec, 0644), 0);
	assert_int_equal(chmod(key, 0604), 0);
	e = load_warnings(yaml);
	assert_int_equal(e.nwarnings, 2);
	want = xasprintf("t.yaml:2:43: sources[0].secret_file: secret file %s "
	    "has mode 0644: readable by others; make it 0600, or 0640 with "
	    "gitopsd's group (gid %u)", sec, (unsigned)getegid());
	assert_string_equal(e.warnings[0], want);
	free(want);
	assert_non_null(strstr(e.warnings[1], "repos[0].auth.ssh_key_file: "
	    "secret file "));
	assert_non_null(strstr(e.warnings[1], "has mode 0604: readable by "
	    "others"));
	config_errors_free(&e);

	/* Group-readable by gitopsd's own group (root:gitopsd 0640): quiet. */
	assert_int_equal(chmod(sec, 0640), 0);
	assert_int_equal(chmod(key, 0440), 0);
	e = load_warnings(yaml);
	assert_int_equal(e.nwarnings, 0);
	config_errors_free(&e);

	/* Another group can read it (only root can hand the file over). */
	if (geteuid() == 0) {
		assert_int_equal(chown(sec, 0, getegid() + 1), 0);
		e = load_warnings(yaml);
		assert_int_equal(e.nwarnings, 1);
		assert_non_null(strstr(e.warnings[0], "has mode 0640: readable "
		    "by its group;"));
		config_errors_free(&e);
	}
	free(yaml);
	free(key);
	free(sec);
}

/* Replaces every "FILE" and "ROOT" of a line in an .errors file. */
static char *
expand(const char *line, const char *file, const char *root)
{
	struct buf	 b;
	const char	*p;

	buf_init(&b, 0);
	buf_addstr(&b, "");
	for (p = line; *p != '\0'; ) {
		if (strncmp(p, "FILE", 4) == 0) {
			buf_addstr(&b, file);
			p += 4;
		} else if (strncmp(p, "ROOT", 4) == 0) {
			buf_addstr(&b, root);
			p += 4;
		} else
			buf_add(&b, p++, 1);
	}
	return buf_steal(&b, NULL);
}

#define FIXTURES	"test/fixtures/config"

/*
 * Declarative cases: each test/fixtures/config/bad/NAME.yaml fails with
 * exactly the lines of NAME.errors (FILE: the path loaded, ROOT: the
 * absolute fixtures directory); each good/NAME.yaml loads cleanly.
 */
static void
test_fixtures(void **state)
{
	DIR			*d;
	struct dirent		*de;
	char			 root[PATH_MAX], *cwd;
	int			 nbad = 0, ngood = 0;

	(void)state;
	if ((cwd = getcwd(root, sizeof(root))) == NULL ||
	    (d = opendir(FIXTURES "/bad")) == NULL)
		skip();	/* not run from the source tree */
	util_strlcpy(root + strlen(root), "/" FIXTURES,
	    sizeof(root) - strlen(root));
	while ((de = readdir(d)) != NULL) {
		struct config_errors	 e = { 0 };
		char			*path, *epath, *want, *line, *save = NULL;
		size_t			 len, i = 0;

		len = strlen(de->d_name);
		if (len < 6 || strcmp(de->d_name + len - 5, ".yaml") != 0)
			continue;
		path = xasprintf(FIXTURES "/bad/%s", de->d_name);
		epath = xasprintf(FIXTURES "/bad/%.*s.errors", (int)(len - 5),
		    de->d_name);
		want = util_read_file(epath, 0, NULL);
		assert_non_null(want);
		assert_null(config_load(path, &e));
		for (line = strtok_r(want, "\n", &save); line != NULL;
		    line = strtok_r(NULL, "\n", &save), i++) {
			char *x = expand(line, path, root);

			if (i >= e.n || strcmp(e.msgs[i], x) != 0) {
				print_message("%s: error %zu: want %s\n", path, i, x);
				dump(&e);
				fail();
			}
			free(x);
		}
		if (i != e.n) {
			dump(&e);
			fail_msg("%s: %zu errors, %zu expected", path, e.n, i);
		}
		config_errors_free(&e);
		free(want);
		free(epath);
		free(path);
		nbad++;
	}
	closedir(d);
	/* Git keeps no file modes: the secrets are checked out 0644. */
	assert_non_null(d = opendir(FIXTURES "/secrets"));
	while ((de = readdir(d)) != NULL) {
		char	*path = xasprintf(FIXTURES "/secrets/%s", de->d_name);

		if (de->d_name[0] != '.')
			assert_int_equal(chmod(path, 0600), 0);
		free(path);
	}
	closedir(d);
	assert_non_null(d = opendir(FIXTURES "/good"));
	while ((de = readdir(d)) != NULL) {
		struct config_errors	 e = { 0 };
		struct config		*c;
		char			*path;
		size_t			 len = strlen(de->d_name);

		if (len < 6 || strcmp(de->d_name + len - 5, ".yaml") != 0)
			continue;
		path = xasprintf(FIXTURES "/good/%s", de->d_name);
		c = config_load(path, &e);
		if (c == NULL) {
			print_message("%s:\n", path);
			dump(&e);
		}
		assert_non_null(c);
		assert_int_equal(e.nwarnings, 0);
		config_unref(c);
		config_errors_free(&e);
		free(path);
		ngood++;
	}
	closedir(d);
	assert_true(nbad >= 5);
	assert_true(ngood >= 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_full_config, setup_tmp,
		    teardown_tmp),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_syntax_error),
		cmocka_unit_test(test_unknown_keys),
		cmocka_unit_test(test_wrong_types),
		cmocka_unit_test(test_out_of_range),
		cmocka_unit_test(test_listen_addresses),
		cmocka_unit_test(test_missing_required),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_dangling_refs),
		cmocka_unit_test(test_inline_secrets),
		cmocka_unit_test(test_many_errors),
		cmocka_unit_test_setup_teardown(test_secret_files, setup_tmp,
		    teardown_tmp),
		cmocka_unit_test_setup_teardown(test_secrets_never_in_errors,
		    setup_tmp, teardown_tmp),
		cmocka_unit_test(test_aliases_rejected),
		cmocka_unit_test(test_limits),
		cmocka_unit_test_setup_teardown(test_secret_file_modes,
		    setup_tmp, teardown_tmp),
		cmocka_unit_test_setup_teardown(test_relative_paths, setup_tmp,
		    teardown_tmp),
		cmocka_unit_test(test_error_at),
		cmocka_unit_test(test_refcount),
		cmocka_unit_test(test_policy_and_notifier_rules),
		cmocka_unit_test(test_plugin_keys),
		cmocka_unit_test(test_yaml_tree),
		cmocka_unit_test(test_state_driver),
		cmocka_unit_test(test_schema_documented),
		cmocka_unit_test(test_fixtures),
		cmocka_unit_test(test_misc_values),
		cmocka_unit_test(test_public_url),
		cmocka_unit_test_setup_teardown(test_load_for_check, setup_tmp,
		    teardown_tmp),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
