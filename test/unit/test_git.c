/*
 * Unit tests for git.c against real bare repositories (file://, git daemon,
 * git http-backend behind lighttpd with basic auth) and known_hosts checks.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"
#include "gitrepo.h"
#include "util.h"

#include <openssl/evp.h>

#include "gitops_testlib.h"

struct fx {
	char			*dir;
	struct config		 cfg;
	struct config_repo	 repo;
	char			*url;
	char			*workdir;
};

static int
fx_setup(void **state)
{
	struct fx	*fx = calloc(1, sizeof(*fx));

	if (fx == NULL || (fx->dir = tl_tmpdir()) == NULL)
		return -1;
	if (tl_sh("mkdir -p '%s/seed/apps/web' && printf 'image: a/b:1\\n' "
	    "> '%s/seed/apps/web/deploy.yaml' && printf 'x\\n' > "
	    "'%s/seed/README.md'", fx->dir, fx->dir, fx->dir) != 0 ||
	    tl_bare_repo(fx->dir, "deploy") != 0)
		return -1;
	fx->url = xasprintf("file://%s/deploy.git", fx->dir);
	fx->workdir = xasprintf("%s/workdir", fx->dir);
	fx->cfg.workdir = fx->workdir;
	fx->repo.name = "deploy";
	fx->repo.url = fx->url;
	fx->repo.branch = "main";
	*state = fx;
	return 0;
}

static int
fx_teardown(void **state)
{
	struct fx	*fx = *state;

	tl_rmrf(fx->dir);
	free(fx->dir);
	free(fx->url);
	free(fx->workdir);
	free(fx);
	return 0;
}

static void
test_prepare_clone_then_fetch(void **state)
{
	struct fx	*fx = *state;
	char		*path = NULL, *head = NULL, err[512];
	const char	*want;

	assert_int_equal(git_repo_prepare(&fx->cfg, &fx->repo, &path, &head,
	    err, sizeof(err)), 0);
	want = tl_out("git --git-dir='%s/deploy.git' rev-parse main", fx->dir);
	assert_string_equal(head, want);
	assert_non_null(strstr(path, "/workdir/deploy.git"));
	assert_int_equal(tl_sh("test -f '%s/HEAD' && test ! -e '%s/apps'", path,
	    path), 0);
	free(path);
	free(head);

	/* Someone pushes; the next prepare fetches it. */
	assert_int_equal(tl_sh("cd '%s/work-deploy' && echo y >> README.md && "
	    TL_GIT " commit -qam two && " TL_GIT " push -q ../deploy.git main",
	    fx->dir), 0);
	assert_int_equal(git_repo_prepare(&fx->cfg, &fx->repo, &path, &head,
	    err, sizeof(err)), 0);
	want = tl_out("git --git-dir='%s/deploy.git' rev-parse main", fx->dir);
	assert_string_equal(head, want);
	free(path);
	free(head);
}

static void
test_prepare_bad_url(void **state)
{
	struct fx		*fx = *state;
	struct config_repo	 r = fx->repo;
	char			*path = NULL, *head = NULL, err[512];

	r.name = "missing";
	r.url = "file:///nonexistent/gitopsd/nothing.git";
	assert_int_equal(git_repo_prepare(&fx->cfg, &r, &path, &head, err,
	    sizeof(err)), -1);
	assert_null(path);
	assert_non_null(strstr(err, "fetch"));
}

struct collect {
	char	 names[16][256];
	int	 n;
};

static int
collect_cb(const char *path, const char *data, size_t len, void *arg)
{
	struct collect	*c = arg;

	(void)data;
	(void)len;
	if (c->n < 16)
		snprintf(c->names[c->n++], sizeof(c->names[0]), "%s", path);
	return 0;
}

/* Commit from blobs/trees, push, and see it on the remote branch. */
static void
test_commit_and_push(void **state)
{
	struct fx		*fx = *state;
	struct git_repo		*g;
	struct collect		 c = { .n = 0 };
	struct git_repo_change	 ch = { "apps/web/deploy.yaml",
	    "image: a/b:2\n", 13 };
	char			 head[41], commit[41], err[512];

	assert_int_equal(git_repo_open(&fx->cfg, &fx->repo, &g, err,
	    sizeof(err)), GIT_REPO_OK);
	assert_int_equal(git_repo_head(g, head), 0);
	assert_int_equal(git_repo_read_files(g, head, "apps", 1 << 20,
	    collect_cb, &c, err, sizeof(err)), 0);
	assert_int_equal(c.n, 1);
	assert_string_equal(c.names[0], "apps/web/deploy.yaml");
	assert_int_equal(git_repo_commit(g, head, &ch, 1, "gitopsd",
	    "gitopsd@localhost", "deploy(web): b 1 -> 2\n", commit, err,
	    sizeof(err)), 0);
	assert_int_equal(git_repo_push(g, commit, "main", err, sizeof(err)),
	    GIT_REPO_OK);
	git_repo_close(g);
	assert_string_equal(tl_out("git --git-dir='%s/deploy.git' rev-parse "
	    "main", fx->dir), commit);
	assert_string_equal(tl_out("git --git-dir='%s/deploy.git' show "
	    "main:apps/web/deploy.yaml", fx->dir), "image: a/b:2");
	assert_string_equal(tl_out("git --git-dir='%s/deploy.git' show -s "
	    "--format=%%an/%%ae main", fx->dir), "gitopsd/gitopsd@localhost");
	/* Untouched files keep their blobs. */
	assert_string_equal(tl_out("git --git-dir='%s/deploy.git' diff "
	    "--name-only main~1 main", fx->dir), "apps/web/deploy.yaml");
}

struct race {
	const char	*dir;
	int		 fired;
};

/* Lands an unrelated commit on the remote inside the push window. */
static void
race_hook(void *arg)
{
	struct race	*r = arg;

	if (r->fired++ > 0)
		return;
	tl_sh("cd '%s/work-deploy' && " TL_GIT " pull -q --ff-only "
	    "../deploy.git main && echo other >> README.md && "
	    TL_GIT " commit -qam unrelated && " TL_GIT " push -q ../deploy.git "
	    "main", r->dir);
}

/* A push that lost a race is reported as rejected, never forced. */
static void
test_push_race_rejected(void **state)
{
	struct fx		*fx = *state;
	struct git_repo		*g;
	struct race		 r = { fx->dir, 0 };
	struct git_repo_change	 ch = { "apps/web/deploy.yaml",
	    "image: a/b:3\n", 13 };
	char			 head[41], commit[41], err[512];
	char			 remote_head[64];

	assert_int_equal(git_repo_open(&fx->cfg, &fx->repo, &g, err,
	    sizeof(err)), GIT_REPO_OK);
	assert_int_equal(git_repo_head(g, head), 0);
	assert_int_equal(git_repo_commit(g, head, &ch, 1, "gitopsd",
	    "gitopsd@localhost", "m\n", commit, err, sizeof(err)), 0);
	git_repo_set_push_hook(race_hook, &r);
	assert_int_equal(git_repo_push(g, commit, "main", err, sizeof(err)),
	    GIT_REPO_REJECTED);
	git_repo_set_push_hook(NULL, NULL);
	assert_int_equal(r.fired, 1);
	snprintf(remote_head, sizeof(remote_head), "%s", tl_out("git "
	    "--git-dir='%s/deploy.git' rev-parse main", fx->dir));
	assert_string_not_equal(remote_head, commit);
	assert_string_equal(tl_out("git --git-dir='%s/deploy.git' log -1 "
	    "--format=%%s main", fx->dir), "unrelated");
	/* After a fetch the head is the other commit. */
	assert_int_equal(git_repo_fetch(g, err, sizeof(err)), GIT_REPO_OK);
	assert_int_equal(git_repo_head(g, head), 0);
	assert_string_equal(head, remote_head);
	git_repo_close(g);
}

static void
test_export(void **state)
{
	struct fx	*fx = *state;
	char		*path = NULL, *head = NULL, err[512], *dest;

	assert_int_equal(git_repo_prepare(&fx->cfg, &fx->repo, &path, &head,
	    err, sizeof(err)), 0);
	dest = xasprintf("%s/export", fx->dir);
	assert_int_equal(git_repo_export(path, head, "apps", dest, err,
	    sizeof(err)), 0);
	assert_int_equal(tl_sh("grep -q 'a/b:1' '%s/web/deploy.yaml'", dest), 0);
	assert_int_equal(tl_sh("test ! -e '%s/README.md'", dest), 0);
	free(dest);
	free(path);
	free(head);
}

/* Push over git daemon (git://) with receive-pack enabled. */
static void
test_git_daemon_push(void **state)
{
	struct fx		*fx = *state;
	struct config_repo	 r = fx->repo;
	struct git_repo		*g;
	struct git_repo_change	 ch = { "apps/web/deploy.yaml",
	    "image: a/b:4\n", 13 };
	char			 head[41], commit[41], err[512];
	int			 port;
	pid_t			 pid;

	pid = tl_git_daemon(fx->dir, &port);
	assert_true(pid > 0);
	r.name = "deploy-daemon";
	r.url = xasprintf("git://127.0.0.1:%d/deploy.git", port);
	assert_int_equal(git_repo_open(&fx->cfg, &r, &g, err, sizeof(err)),
	    GIT_REPO_OK);
	assert_int_equal(git_repo_head(g, head), 0);
	assert_int_equal(git_repo_commit(g, head, &ch, 1, "gitopsd",
	    "gitopsd@localhost", "daemon\n", commit, err, sizeof(err)), 0);
	assert_int_equal(git_repo_push(g, commit, "main", err, sizeof(err)),
	    GIT_REPO_OK);
	git_repo_close(g);
	tl_stop(pid);
	assert_string_equal(tl_out("git --git-dir='%s/deploy.git' rev-parse "
	    "main", fx->dir), commit);
	free(r.url);
}

/* The same race over git daemon: the server refuses the stale update. */
static void
test_git_daemon_race_rejected(void **state)
{
	struct fx		*fx = *state;
	struct config_repo	 r = fx->repo;
	struct git_repo		*g;
	struct race		 ra = { fx->dir, 0 };
	struct git_repo_change	 ch = { "apps/web/deploy.yaml",
	    "image: a/b:6\n", 13 };
	char			 head[41], commit[41], err[512];
	int			 port;
	pid_t			 pid;

	pid = tl_git_daemon(fx->dir, &port);
	assert_true(pid > 0);
	r.name = "deploy-daemon-race";
	r.url = xasprintf("git://127.0.0.1:%d/deploy.git", port);
	assert_int_equal(git_repo_open(&fx->cfg, &r, &g, err, sizeof(err)),
	    GIT_REPO_OK);
	assert_int_equal(git_repo_head(g, head), 0);
	assert_int_equal(git_repo_commit(g, head, &ch, 1, "gitopsd",
	    "gitopsd@localhost", "race\n", commit, err, sizeof(err)), 0);
	git_repo_set_push_hook(race_hook, &ra);
	assert_int_equal(git_repo_push(g, commit, "main", err, sizeof(err)),
	    GIT_REPO_REJECTED);
	git_repo_set_push_hook(NULL, NULL);
	git_repo_close(g);
	tl_stop(pid);
	assert_string_equal(tl_out("git --git-dir='%s/deploy.git' log -1 "
	    "--format=%%s main", fx->dir), "unrelated");
	free(r.url);
}

/* Smart HTTP with basic auth: a good password pushes, a bad one is AUTH. */
static void
test_http_auth_push(void **state)
{
	struct fx		*fx = *state;
	struct config_repo	 r = fx->repo;
	struct git_repo		*g;
	struct git_repo_change	 ch = { "apps/web/deploy.yaml",
	    "image: a/b:5\n", 13 };
	char			 head[41], commit[41], err[512];
	int			 port;
	pid_t			 pid;

	pid = tl_lighttpd(fx->dir, "deployer", "s3cret-pw", &port);
	assert_true(pid > 0);
	r.url = xasprintf("http://127.0.0.1:%d/git/deploy.git", port);

	r.name = "deploy-http-bad";
	r.auth.username = "deployer";
	r.auth.password = "wrong";
	assert_int_equal(git_repo_open(&fx->cfg, &r, &g, err, sizeof(err)),
	    GIT_REPO_AUTH);
	assert_null(strstr(err, "wrong"));

	r.name = "deploy-http";
	r.auth.password = "s3cret-pw";
	assert_int_equal(git_repo_open(&fx->cfg, &r, &g, err, sizeof(err)),
	    GIT_REPO_OK);
	assert_int_equal(git_repo_head(g, head), 0);
	assert_int_equal(git_repo_commit(g, head, &ch, 1, "gitopsd",
	    "gitopsd@localhost", "http\n", commit, err, sizeof(err)), 0);
	assert_int_equal(git_repo_push(g, commit, "main", err, sizeof(err)),
	    GIT_REPO_OK);
	git_repo_close(g);
	tl_stop(pid);
	assert_string_equal(tl_out("git --git-dir='%s/deploy.git' rev-parse "
	    "main", fx->dir), commit);
	free(r.url);
}

/* known_hosts: plain, [host]:port, hashed, changed, unknown, revoked. */
static void
test_known_hosts(void **state)
{
	struct fx	*fx = *state;
	char		 kh[4200], err[512], b64[512];
	unsigned char	 key[512], other[512];
	int		 klen, olen;

	assert_int_equal(tl_sh("cd '%s' && ssh-keygen -q -t ed25519 -N '' "
	    "-f hk1 && ssh-keygen -q -t ed25519 -N '' -f hk2", fx->dir), 0);
	snprintf(b64, sizeof(b64), "%s", tl_out("cut -d' ' -f2 '%s/hk1.pub'",
	    fx->dir));
	klen = EVP_DecodeBlock(key, (unsigned char *)b64, (int)strlen(b64));
	klen -= (b64[strlen(b64) - 1] == '=') + (b64[strlen(b64) - 2] == '=');
	snprintf(b64, sizeof(b64), "%s", tl_out("cut -d' ' -f2 '%s/hk2.pub'",
	    fx->dir));
	olen = EVP_DecodeBlock(other, (unsigned char *)b64, (int)strlen(b64));
	olen -= (b64[strlen(b64) - 1] == '=') + (b64[strlen(b64) - 2] == '=');
	assert_true(klen > 32 && olen > 32);

	snprintf(kh, sizeof(kh), "%s/known_hosts", fx->dir);
	assert_int_equal(tl_sh("cd '%s' && { echo '# comment'; "
	    "printf 'git.acme.io,10.0.0.1 '; cat hk1.pub; "
	    "printf '[git.acme.io]:2222 '; cat hk2.pub; } > known_hosts",
	    fx->dir), 0);
	assert_int_equal(git_repo_known_hosts_check(kh, "git.acme.io", 22,
	    "ssh-ed25519", key, (size_t)klen, err, sizeof(err)), 0);
	assert_int_equal(git_repo_known_hosts_check(kh, "git.acme.io", 2222,
	    "ssh-ed25519", other, (size_t)olen, err, sizeof(err)), 0);
	assert_int_equal(git_repo_known_hosts_check(kh, "git.acme.io", 22,
	    "ssh-ed25519", other, (size_t)olen, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "changed"));
	assert_int_equal(git_repo_known_hosts_check(kh, "evil.example", 22,
	    "ssh-ed25519", key, (size_t)klen, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "unknown"));
	assert_int_equal(git_repo_known_hosts_check(NULL, "git.acme.io", 22,
	    "ssh-ed25519", key, (size_t)klen, err, sizeof(err)), -1);

	/* Hashed with ssh-keygen -H. */
	assert_int_equal(tl_sh("cd '%s' && ssh-keygen -q -H -f known_hosts "
	    ">/dev/null 2>&1 && ! grep -q 'git.acme.io' known_hosts", fx->dir),
	    0);
	assert_int_equal(git_repo_known_hosts_check(kh, "git.acme.io", 22,
	    "ssh-ed25519", key, (size_t)klen, err, sizeof(err)), 0);
	assert_int_equal(git_repo_known_hosts_check(kh, "10.0.0.1", 22,
	    "ssh-ed25519", key, (size_t)klen, err, sizeof(err)), 0);
	assert_int_equal(git_repo_known_hosts_check(kh, "git.acme.io", 2222,
	    "ssh-ed25519", other, (size_t)olen, err, sizeof(err)), 0);
	assert_int_equal(git_repo_known_hosts_check(kh, "git.acme.io", 22,
	    "ssh-ed25519", other, (size_t)olen, err, sizeof(err)), -1);

	/* @revoked refuses even a matching key. */
	assert_int_equal(tl_sh("cd '%s' && { printf '@revoked git.acme.io '; "
	    "cat hk1.pub; } > known_hosts", fx->dir), 0);
	assert_int_equal(git_repo_known_hosts_check(kh, "git.acme.io", 22,
	    "ssh-ed25519", key, (size_t)klen, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "revoked"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_prepare_clone_then_fetch,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_prepare_bad_url,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_commit_and_push,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_push_race_rejected,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_export,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_git_daemon_push,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_git_daemon_race_rejected,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_http_auth_push,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_known_hosts,
		    fx_setup, fx_teardown),
	};
	int	 rc;

	git_repo_global_init();
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	git_repo_global_shutdown();
	return rc;
}
