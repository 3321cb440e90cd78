/*
 * git.c against real bare repositories (file://, git daemon, git
 * http-backend behind lighttpd with basic auth) and known_hosts checks.
 * Run from the repository root by test_cmocka_suites.py.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"
#include "gitnet.h"
#include "gitrepo.h"
#include "job.h"
#include "metrics.h"
#include "sync.h"
#include "util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sys/socket.h>
#include <pwd.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

#include "gitops_testlib.h"

/*
 * libgit2 is built without frame pointers: the slow unwinder gives leak
 * reports whole stacks, so a leak inside libgit2 or libssh2 names the
 * gitopsd call it came through.
 */
const char *__asan_default_options(void);
const char *
__asan_default_options(void)
{
	return "fast_unwind_on_malloc=0";
}

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

/*
 * A poll's question: the remote's head without fetching (the clone's
 * tracking ref stays where it was), then the paths changed between two
 * heads once fetched; an unknown base has no list.
 */
static void
test_remote_head_and_changed_paths(void **state)
{
	struct fx		*fx = *state;
	struct config_repo	 r = fx->repo;
	struct git_repo		*g = NULL;
	struct git_repo_paths	 paths;
	char			 remote[41], local[41], first[41], err[512];
	char			*path = NULL, *head = NULL;
	const char		*want;

	assert_int_equal(git_repo_remote_head(&fx->cfg, &fx->repo, remote,
	    local, err, sizeof(err)), GIT_REPO_OK);
	want = tl_out("git --git-dir='%s/deploy.git' rev-parse main", fx->dir);
	assert_string_equal(remote, want);
	assert_string_equal(local, "");
	assert_int_equal(git_repo_prepare(&fx->cfg, &fx->repo, &path, &head,
	    err, sizeof(err)), 0);
	assert_int_equal(git_repo_remote_head(&fx->cfg, &fx->repo, remote,
	    local, err, sizeof(err)), GIT_REPO_OK);
	assert_string_equal(local, remote);
	memcpy(first, remote, sizeof(first));

	assert_int_equal(tl_sh("cd '%s/work-deploy' && echo 'image: a/b:2' > "
	    "apps/web/deploy.yaml && " TL_GIT " commit -qam two && " TL_GIT
	    " push -q ../deploy.git main", fx->dir), 0);
	assert_int_equal(git_repo_remote_head(&fx->cfg, &fx->repo, remote,
	    local, err, sizeof(err)), GIT_REPO_OK);
	want = tl_out("git --git-dir='%s/deploy.git' rev-parse main", fx->dir);
	assert_string_equal(remote, want);
	/* Asked, not fetched. */
	assert_string_equal(local, first);

	assert_int_equal(git_repo_open(&fx->cfg, &fx->repo, &g, err,
	    sizeof(err)), GIT_REPO_OK);
	memset(&paths, 0, sizeof(paths));
	paths.max = 10;
	assert_int_equal(git_repo_changed_paths(g, first, remote, &paths, err,
	    sizeof(err)), 0);
	assert_int_equal(paths.complete, 1);
	assert_int_equal(paths.n, 1);
	assert_string_equal(paths.paths[0], "apps/web/deploy.yaml");
	git_repo_paths_clear(&paths);
	/* A base this clone never saw: no list. */
	paths.max = 10;
	assert_int_equal(git_repo_changed_paths(g,
	    "0123456789012345678901234567890123456789", remote, &paths, err,
	    sizeof(err)), 0);
	assert_int_equal(paths.complete, 0);
	assert_int_equal(paths.n, 0);
	git_repo_close(g);

	/* A branch the remote lacks is an error. */
	r.branch = "nope";
	assert_int_equal(git_repo_remote_head(&fx->cfg, &r, remote, local, err,
	    sizeof(err)), GIT_REPO_ERROR);
	assert_non_null(strstr(err, "no branch nope"));
	free(path);
	free(head);
}

struct ls_arg {
	struct fx	*fx;
	char		 remote[41], local[41];
	int		 rc, done;
};

static void *
ls_thread(void *arg)
{
	struct ls_arg	*a = arg;
	char		 err[512];

	a->rc = git_repo_remote_head(&a->fx->cfg, &a->fx->repo, a->remote,
	    a->local, err, sizeof(err));
	__atomic_store_n(&a->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

/* A poll takes the clone's lock like a job: it waits for the holder. */
static void
test_remote_head_waits_for_lock(void **state)
{
	struct fx	*fx = *state;
	struct git_repo	*g;
	struct ls_arg	 a;
	pthread_t	 t;
	char		 err[512];

	memset(&a, 0, sizeof(a));
	a.fx = fx;
	assert_int_equal(git_repo_open(&fx->cfg, &fx->repo, &g, err,
	    sizeof(err)), GIT_REPO_OK);
	assert_int_equal(pthread_create(&t, NULL, ls_thread, &a), 0);
	usleep(300 * 1000);
	assert_int_equal(__atomic_load_n(&a.done, __ATOMIC_SEQ_CST), 0);
	git_repo_close(g);
	pthread_join(t, NULL);
	assert_int_equal(a.done, 1);
	assert_int_equal(a.rc, GIT_REPO_OK);
	assert_string_equal(a.remote, a.local);
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
	    TL_GIT " add -A && " TL_GIT " commit -qm unrelated && " TL_GIT " push -q ../deploy.git "
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
	struct git_repo	*g;
	char		*path = NULL, *head = NULL, err[512], *dest;

	assert_int_equal(git_repo_prepare(&fx->cfg, &fx->repo, &path, &head,
	    err, sizeof(err)), 0);
	dest = xasprintf("%s/export", fx->dir);
	assert_int_equal(git_repo_open_path(path, &g, err, sizeof(err)),
	    GIT_REPO_OK);
	/* The whole tree (a renderer reads ../base), with plain files. */
	assert_int_equal(git_repo_export(g, head, "./apps/web/", dest, 1 << 20,
	    err, sizeof(err)), 0);
	assert_int_equal(tl_sh("grep -q 'a/b:1' '%s/apps/web/deploy.yaml'",
	    dest), 0);
	assert_int_equal(tl_sh("test -f '%s/README.md'", dest), 0);
	/* Always a fresh directory, and a size limit. */
	assert_int_equal(git_repo_export(g, head, "apps/web", dest, 1 << 20,
	    err, sizeof(err)), -1);
	assert_non_null(strstr(err, "File exists"));
	tl_rmrf(dest);
	assert_int_equal(git_repo_export(g, head, "apps/web", dest, 4, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "export over 4 bytes"));
	git_repo_close(g);
	free(dest);
	free(path);
	free(head);
}

/* The names and link targets every tree reader checks. */
static void
test_tree_names(void **state)
{
	static const char *const bad[] = { "", ".", "..", ".git", ".GIT",
	    ".Git", "a/b", "a\\b", "\\" };
	static const char *const good[] = { "a", "...", ".gitignore", "git",
	    ".git.yaml", "x..y", ".a" };
	char		 err[256], *out;
	size_t		 i;

	(void)state;
	for (i = 0; i < nitems(bad); i++)
		assert_int_equal(git_repo_name_ok(bad[i], strlen(bad[i])), 0);
	for (i = 0; i < nitems(good); i++)
		assert_int_equal(git_repo_name_ok(good[i], strlen(good[i])), 1);
	assert_int_equal(git_repo_name_ok("a\0b", 3), 0);

	assert_int_equal(git_repo_link_target("apps/web", "apps/web/sub",
	    "../data/./x.txt", 15, &out, err, sizeof(err)), 0);
	assert_string_equal(out, "apps/web/data/x.txt");
	free(out);
	assert_int_equal(git_repo_link_target("", "a", "b//c", 4, &out, err,
	    sizeof(err)), 0);
	assert_string_equal(out, "a/b/c");
	free(out);
	/* Out of the app, out of the repository, absolute, refused names. */
	assert_int_equal(git_repo_link_target("apps/web", "apps/web",
	    "../../../secret", 15, &out, err, sizeof(err)), -1);
	assert_null(out);
	assert_non_null(strstr(err, "leaves apps/web"));
	assert_int_equal(git_repo_link_target("apps/web", "apps/web",
	    "../web2/x", 9, &out, err, sizeof(err)), -1);
	assert_int_equal(git_repo_link_target("apps/web", "apps/web", ".", 1,
	    &out, err, sizeof(err)), -1);
	assert_int_equal(git_repo_link_target("", "", "..", 2, &out, err,
	    sizeof(err)), -1);
	assert_int_equal(git_repo_link_target("", "a", "/etc/passwd", 11, &out,
	    err, sizeof(err)), -1);
	assert_int_equal(git_repo_link_target("", "a", ".git/config", 11, &out,
	    err, sizeof(err)), -1);
	assert_int_equal(git_repo_link_target("", "a", "x\\..\\..\\y", 9, &out,
	    err, sizeof(err)), -1);
	assert_int_equal(git_repo_link_target("", "a", "", 0, &out, err,
	    sizeof(err)), -1);
}

/*
 * One hostile commit on the remote's main, from plumbing: apps/web holds
 * deploy.yaml and the entry `extra` (mode, object), written as a
 * printf(1) mktree line.  Returns the commit's hex (static).
 */
static const char *
hostile_commit(struct fx *fx, const char *extra)
{
	return tl_out("set -e; cd '%s'; G='git --git-dir=deploy.git'; "
	    "d=$(printf 'image: a/b:1\\n' | $G hash-object -w --stdin); "
	    "s=$(printf 'kind: Secret\\n' | $G hash-object -w --stdin); "
	    "ln=$(printf '../../../secret' | $G hash-object -w --stdin); "
	    "in=$(printf 'data/x.txt' | $G hash-object -w --stdin); "
	    "sub=$(printf '100644 blob %%s\\tpwned.yaml\\n' $s | $G mktree); "
	    "data=$(printf '100644 blob %%s\\tx.txt\\n' $d | $G mktree); "
	    "web=$({ printf '100644 blob %%s\\tdeploy.yaml\\n' $d; "
	    "printf '040000 tree %%s\\tdata\\n' $data; %s; } | $G mktree); "
	    "apps=$(printf '040000 tree %%s\\tweb\\n' $web | $G mktree); "
	    "root=$(printf '040000 tree %%s\\tapps\\n' $apps | $G mktree); "
	    "c=$(echo hostile | $G commit-tree $root -p main); "
	    "$G update-ref refs/heads/main $c; echo $c", fx->dir, extra);
}

struct names {
	int	 n;
	char	 last[256];
	char	 data[64];
};

static int
names_cb(const char *path, const char *data, size_t len, void *arg)
{
	struct names	*c = arg;

	c->n++;
	snprintf(c->last, sizeof(c->last), "%s", path);
	snprintf(c->data, sizeof(c->data), "%.*s", (int)len, data != NULL ?
	    data : "");
	return 0;
}

/*
 * Trees with entries named "..", ".git", ".GIT", "a\b" and a link out of
 * the app: every reader fails naming the entry, and the export writes
 * nothing outside its directory.  A link inside the app reads as its
 * target's content and is exported as a plain file.
 */
static void
test_hostile_trees(void **state)
{
	static const struct {
		const char	*extra;		/* mktree line(s) */
		const char	*error;		/* NULL: accepted */
		int		 update_rc;	/* links: skipped there */
	} cases[] = {
		{ "printf '040000 tree %s\\t..\\n' $sub", "\"..\": tree entry "
		    "name refused", -1 },
		{ "printf '040000 tree %s\\t.git\\n' $sub", "\".git\": tree "
		    "entry name refused", -1 },
		{ "printf '040000 tree %s\\t.GIT\\n' $sub", "\".GIT\": tree "
		    "entry name refused", -1 },
		{ "printf '100644 blob %s\\tx\\\\y.yaml\\n' $s",
		    "tree entry name refused", -1 },
		{ "printf '120000 blob %s\\tleak.yaml\\n' $ln", "apps/web/leak."
		    "yaml: symlink refused: target \"../../../secret\" leaves "
		    "apps/web", 0 },
		{ "printf '120000 blob %s\\tin.yaml\\n' $in", NULL, 0 },
	};
	struct fx		*fx = *state;
	struct git_repo		*g;
	struct git_repo_walk	 w;
	struct names		 c;
	char			*path = NULL, *dest, err[512], commit[41];
	size_t			 i;

	assert_int_equal(tl_sh("mkdir -p '%s/out' && printf 'canary' > "
	    "'%s/secret'", fx->dir, fx->dir), 0);
	dest = xasprintf("%s/out/a/b/export", fx->dir);
	for (i = 0; i < nitems(cases); i++) {
		snprintf(commit, sizeof(commit), "%s",
		    hostile_commit(fx, cases[i].extra));
		assert_int_equal(strlen(commit), 40);
		free(path);
		assert_int_equal(git_repo_prepare(&fx->cfg, &fx->repo, &path,
		    NULL, err, sizeof(err)), 0);
		assert_int_equal(git_repo_open_path(path, &g, err,
		    sizeof(err)), GIT_REPO_OK);

		memset(&c, 0, sizeof(c));
		memset(&w, 0, sizeof(w));
		w.dir = "apps/web";
		w.max_bytes = 1 << 20;
		w.links = 1;
		w.cb = names_cb;
		w.arg = &c;
		err[0] = '\0';
		tl_sh("mkdir -p '%s/out/a/b'", fx->dir);
		if (cases[i].error != NULL) {
			assert_int_equal(git_repo_walk(g, commit, &w, err,
			    sizeof(err)), -1);
			if (strstr(err, cases[i].error) == NULL)
				fail_msg("case %zu: walk: %s", i, err);
			assert_int_equal(git_repo_read_files(g, commit,
			    "apps/web", 1 << 20, names_cb, &c, err,
			    sizeof(err)), cases[i].update_rc);
			assert_int_equal(git_repo_export(g, commit, "apps/web",
			    dest, 1 << 20, err, sizeof(err)), -1);
			if (strstr(err, cases[i].error) == NULL)
				fail_msg("case %zu: export: %s", i, err);
		} else {
			assert_int_equal(git_repo_walk(g, commit, &w, err,
			    sizeof(err)), 0);
			assert_int_equal(c.n, 3);
			assert_string_equal(c.last, "in.yaml");
			assert_string_equal(c.data, "image: a/b:1\n");
			/* The update walk never writes through a link. */
			c.n = 0;
			assert_int_equal(git_repo_read_files(g, commit,
			    "apps/web", 1 << 20, names_cb, &c, err,
			    sizeof(err)), 0);
			assert_int_equal(c.n, 1);
			assert_int_equal(git_repo_export(g, commit, "apps/web",
			    dest, 1 << 20, err, sizeof(err)), 0);
			assert_int_equal(tl_sh("test -f '%s/apps/web/in.yaml' "
			    "&& test ! -L '%s/apps/web/in.yaml' && grep -q "
			    "a/b:1 '%s/apps/web/in.yaml'", dest, dest, dest), 0);
		}
		git_repo_close(g);
		/* Nothing written beside the export, no canary copied. */
		assert_int_equal(tl_sh("test -z \"$(find '%s/out' -name "
		    "pwned.yaml)\" && ! grep -rq canary '%s/out' && test -z "
		    "\"$(ls -A '%s/out/a/b' | grep -v '^export$')\"", fx->dir,
		    fx->dir, fx->dir), 0);
		tl_rmrf(dest);
	}
	free(dest);
	free(path);
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

/*
 * Many fetches and pushes over a network remote, with url.insteadOf
 * entries in the clone's config: libgit2 1.5 leaked the pcre2 match data
 * of each config entry on every remote lookup, which LSan reports at exit
 * (test/lsan.supp no longer hides libpcre2).  The clone's remote.origin
 * follows the configured URL for people who inspect it with git.
 */
static void
test_remote_ops_repeat(void **state)
{
	struct fx		*fx = *state;
	struct config_repo	 r = fx->repo;
	struct git_repo		*g;
	struct git_repo_change	 ch = { "apps/web/deploy.yaml", NULL, 0 };
	char			 head[41], commit[41], err[512], data[32];
	const char		*path;
	int			 i, port;
	pid_t			 pid;

	pid = tl_git_daemon(fx->dir, &port);
	assert_true(pid > 0);
	r.name = "deploy-repeat";
	r.url = xasprintf("git://127.0.0.1:%d/deploy.git", port);
	for (i = 0; i < 25; i++) {
		assert_int_equal(git_repo_open(&fx->cfg, &r, &g, err,
		    sizeof(err)), GIT_REPO_OK);
		path = git_repo_path(g);
		if (i == 0)
			assert_int_equal(tl_sh("git --git-dir='%s' config "
			    "url.git://nowhere.invalid/.insteadOf gh: && "
			    "git --git-dir='%s' config url.x://y/.pushInsteadOf "
			    "z:", path, path), 0);
		assert_string_equal(tl_out("git --git-dir='%s' config "
		    "remote.origin.url", path), r.url);
		assert_int_equal(git_repo_fetch(g, err, sizeof(err)),
		    GIT_REPO_OK);
		assert_int_equal(git_repo_head(g, head), 0);
		snprintf(data, sizeof(data), "image: a/b:r%d\n", i);
		ch.data = data;
		ch.len = strlen(data);
		assert_int_equal(git_repo_commit(g, head, &ch, 1, "gitopsd",
		    "gitopsd@localhost", "repeat\n", commit, err,
		    sizeof(err)), 0);
		assert_int_equal(git_repo_push(g, commit, "main", err,
		    sizeof(err)), GIT_REPO_OK);
		git_repo_close(g);
	}
	tl_stop(pid);
	assert_string_equal(tl_out("git --git-dir='%s/deploy.git' rev-parse "
	    "main", fx->dir), commit);
	free(r.url);
}

/* A loopback listener that never accepts: connects succeed, reads hang. */
static int
hung_listener(int *portp, int backlog)
{
	struct sockaddr_in	 sa = { .sin_family = AF_INET };
	socklen_t		 len = sizeof(sa);
	int			 fd;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
	    listen(fd, backlog) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) == -1)
		return -1;
	*portp = ntohs(sa.sin_port);
	return fd;
}

/*
 * A remote that accepts and never answers: every transport's fetch ends
 * with "timed out" after git.timeout_s (1 s here), not never.
 */
static void
test_hung_remote_times_out(void **state)
{
	static const char *const urls[] = {
		"http://", "https://", "git://", "ssh://git@",
	};
	struct fx		*fx = *state;
	struct config_repo	 r = fx->repo;
	struct git_repo		*g = NULL;
	char			 err[512], name[32], head[41], local[41];
	int64_t			 t0, ms;
	size_t			 i;
	int			 lfd, port;

	fx->cfg.git.timeout_s = 1;
	lfd = hung_listener(&port, 16);
	assert_true(lfd >= 0);
	for (i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		snprintf(name, sizeof(name), "hung%zu", i);
		r.name = name;
		r.url = xasprintf("%s127.0.0.1:%d/deploy.git", urls[i], port);
		t0 = util_mono_ms();
		assert_int_equal(git_repo_open(&fx->cfg, &r, &g, err,
		    sizeof(err)), GIT_REPO_ERROR);
		ms = util_mono_ms() - t0;
		print_message("%s: %s (%lld ms)\n", r.url, err, (long long)ms);
		assert_non_null(strstr(err, "timed out"));
		assert_true(ms >= 900 && ms < 5000);
		assert_null(g);
		/* A poll's ls-remote has the same deadline. */
		t0 = util_mono_ms();
		assert_int_equal(git_repo_remote_head(&fx->cfg, &r, head, local,
		    err, sizeof(err)), GIT_REPO_ERROR);
		ms = util_mono_ms() - t0;
		assert_non_null(strstr(err, "timed out"));
		assert_true(ms >= 900 && ms < 5000);
		free(r.url);
	}
	close(lfd);
}

/* A listener whose accept queue is full: the connect itself times out. */
static void
test_connect_times_out(void **state)
{
	struct fx		*fx = *state;
	struct config_repo	 r = fx->repo;
	struct git_repo		*g = NULL;
	struct sockaddr_in	 sa = { .sin_family = AF_INET };
	char			 err[512];
	int			 lfd, port, fill[4], i;
	int64_t			 t0, ms;

	fx->cfg.git.timeout_s = 1;
	lfd = hung_listener(&port, 0);
	assert_true(lfd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)port);
	for (i = 0; i < 4; i++) {
		fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		assert_true(fill[i] >= 0);
		(void)connect(fill[i], (struct sockaddr *)&sa, sizeof(sa));
	}
	usleep(200000);
	r.name = "connect-timeout";
	r.url = xasprintf("git://127.0.0.1:%d/deploy.git", port);
	t0 = util_mono_ms();
	assert_int_equal(git_repo_open(&fx->cfg, &r, &g, err, sizeof(err)),
	    GIT_REPO_ERROR);
	ms = util_mono_ms() - t0;
	print_message("%s (%lld ms)\n", err, (long long)ms);
	assert_non_null(strstr(err, "timed out"));
	assert_true(ms >= 900 && ms < 5000);
	for (i = 0; i < 4; i++)
		close(fill[i]);
	close(lfd);
	free(r.url);
}

/*
 * A pre-receive hook that sleeps: the server stays silent during the
 * push, which ends with "timed out"; the clone is usable afterwards.
 */
static void
test_push_stalled_hook_times_out(void **state)
{
	struct fx		*fx = *state;
	struct config_repo	 r = fx->repo;
	struct git_repo		*g;
	struct git_repo_change	 ch = { "apps/web/deploy.yaml",
	    "image: a/b:7\n", 13 };
	char			 head[41], commit[41], err[512];
	int64_t			 t0, ms;
	int			 port;
	pid_t			 pid;

	fx->cfg.git.timeout_s = 2;
	pid = tl_git_daemon(fx->dir, &port);
	assert_true(pid > 0);
	r.name = "deploy-slow-hook";
	r.url = xasprintf("git://127.0.0.1:%d/deploy.git", port);
	assert_int_equal(git_repo_open(&fx->cfg, &r, &g, err, sizeof(err)),
	    GIT_REPO_OK);
	assert_int_equal(git_repo_head(g, head), 0);
	assert_int_equal(git_repo_commit(g, head, &ch, 1, "gitopsd",
	    "gitopsd@localhost", "slow\n", commit, err, sizeof(err)), 0);
	assert_int_equal(tl_sh("printf '#!/bin/sh\\nsleep 6\\n' > "
	    "'%s/deploy.git/hooks/pre-receive' && chmod +x "
	    "'%s/deploy.git/hooks/pre-receive'", fx->dir, fx->dir), 0);
	t0 = util_mono_ms();
	assert_int_equal(git_repo_push(g, commit, "main", err, sizeof(err)),
	    GIT_REPO_ERROR);
	ms = util_mono_ms() - t0;
	print_message("%s (%lld ms)\n", err, (long long)ms);
	assert_non_null(strstr(err, "push: timed out"));
	assert_true(ms >= 1900 && ms < 5500);
	git_repo_close(g);
	tl_stop(pid);
	free(r.url);
}

struct hung_open {
	struct fx		*fx;
	struct config_repo	 r;
	enum git_repo_status	 rc;
	char			 err[512];
};

static void *
hung_open_thread(void *arg)
{
	struct hung_open	*h = arg;
	struct git_repo		*g = NULL;

	h->rc = git_repo_open(&h->fx->cfg, &h->r, &g, h->err, sizeof(h->err));
	git_repo_close(g);
	return NULL;
}

/*
 * A job waiting for a clone whose fetch is stalled gives up once the
 * holder has been silent for half the deadline, instead of holding its
 * worker through the holder's deadline and then its own.
 */
static void
test_waiter_on_stalled_clone_gives_up(void **state)
{
	struct fx		*fx = *state;
	struct hung_open	 h = { .fx = fx };
	struct git_repo		*g = NULL;
	pthread_t		 t;
	char			 err[512];
	int64_t			 t0, ms;
	int			 lfd, port;

	fx->cfg.git.timeout_s = 4;
	lfd = hung_listener(&port, 16);
	assert_true(lfd >= 0);
	h.r = fx->repo;
	h.r.name = "stalled-shared";
	h.r.url = xasprintf("http://127.0.0.1:%d/deploy.git", port);
	assert_int_equal(pthread_create(&t, NULL, hung_open_thread, &h), 0);
	usleep(300000);
	t0 = util_mono_ms();
	assert_int_equal(git_repo_open(&fx->cfg, &h.r, &g, err, sizeof(err)),
	    GIT_REPO_ERROR);
	ms = util_mono_ms() - t0;
	print_message("%s (%lld ms)\n", err, (long long)ms);
	assert_non_null(strstr(err, "busy: another job's fetch or push"));
	assert_true(ms >= 1000 && ms < 3500);
	assert_null(g);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(h.rc, GIT_REPO_ERROR);
	assert_non_null(strstr(h.err, "timed out"));
	close(lfd);
	free(h.r.url);
}

/*
 * An operation the watchdog timed out but that does not return (blocked
 * outside a socket, say in a resolver) counts as overdue after the grace
 * period: /readyz reports it.
 */
static void
test_overdue_operation(void **state)
{
	struct gitnet_op	*op;
	char			 why[128];

	(void)state;
	assert_int_equal(gitnet_overdue(), 0);
	op = gitnet_begin(1);
	usleep(1500000);
	assert_int_equal(gitnet_overdue(), 0);		/* within the grace */
	usleep(1200000);
	assert_int_equal(gitnet_overdue(), 1);
	assert_int_equal(gitnet_end(op, why, sizeof(why)), 1);
	assert_string_equal(why, "no data from the remote for 1 s");
	assert_int_equal(gitnet_overdue(), 0);
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
	/* Pushing forbidden by the server (403): an auth failure. */
	assert_int_equal(tl_sh("git --git-dir='%s/deploy.git' config "
	    "http.receivepack false", fx->dir), 0);
	assert_int_equal(git_repo_push(g, commit, "main", err, sizeof(err)),
	    GIT_REPO_AUTH);
	assert_int_equal(tl_sh("git --git-dir='%s/deploy.git' config "
	    "http.receivepack true", fx->dir), 0);
	assert_int_equal(git_repo_push(g, commit, "main", err, sizeof(err)),
	    GIT_REPO_OK);
	git_repo_close(g);
	tl_stop(pid);
	assert_string_equal(tl_out("git --git-dir='%s/deploy.git' rev-parse "
	    "main", fx->dir), commit);
	free(r.url);
}

struct sshfx {
	struct config_repo	 r;
	char			*kh, *key, *pub;
	int			 port;
	pid_t			 pid;
};

/* sshd serving fx's deploy.git; r trusts its host key, logs in with a key. */
static void
sshfx_start(struct fx *fx, struct sshfx *s)
{
	s->r = fx->repo;
	s->pid = tl_sshd(fx->dir, &s->port);
	assert_true(s->pid > 0);
	s->r.url = xasprintf("ssh://%s@127.0.0.1:%d%s/deploy.git",
	    getpwuid(getuid())->pw_name, s->port, fx->dir);
	s->kh = xasprintf("%s/ssh/known_hosts", fx->dir);
	s->key = xasprintf("%s/ssh/id", fx->dir);
	s->pub = xasprintf("%s/ssh/id.pub", fx->dir);
	s->r.auth.ssh_key_file = s->key;
	s->r.auth.ssh_pubkey_file = s->pub;
	s->r.auth.known_hosts_file = s->kh;
}

static void
sshfx_stop(struct sshfx *s)
{
	tl_stop(s->pid);
	free(s->r.url);
	free(s->kh);
	free(s->key);
	free(s->pub);
}

/* Open r (a fetch), commit yaml as the app's manifest, push it to main. */
static void
sshfx_push(struct fx *fx, const struct config_repo *r, const char *yaml)
{
	struct git_repo		*g;
	struct git_repo_change	 ch = { "apps/web/deploy.yaml", yaml,
	    strlen(yaml) };
	char			 head[41], commit[41], err[512];

	assert_int_equal(git_repo_open(&fx->cfg, r, &g, err, sizeof(err)),
	    GIT_REPO_OK);
	assert_int_equal(git_repo_head(g, head), 0);
	assert_int_equal(git_repo_commit(g, head, &ch, 1, "gitopsd",
	    "gitopsd@localhost", "ssh\n", commit, err, sizeof(err)), 0);
	assert_int_equal(git_repo_push(g, commit, "main", err, sizeof(err)),
	    GIT_REPO_OK);
	git_repo_close(g);
	assert_string_equal(tl_out("git --git-dir='%s/deploy.git' rev-parse "
	    "main", fx->dir), commit);
}

/*
 * SSH with an ed25519 deploy key; the host key is checked against
 * known_hosts: trusted pushes, unknown and changed keys are refused.
 */
static void
test_ssh_push_and_host_keys(void **state)
{
	struct fx		*fx = *state;
	struct sshfx		 s;
	struct config_repo	*r = &s.r;
	struct git_repo		*g;
	char			 err[512];

	if (getuid() != 0 || access("/usr/sbin/sshd", X_OK) != 0)
		skip();
	sshfx_start(fx, &s);

	r->name = "deploy-ssh";
	r->auth.known_hosts_file = s.kh;
	sshfx_push(fx, r, "image: a/b:7\n");

	/* Unknown host: no entry for this host and port. */
	assert_int_equal(tl_sh("cd '%s/ssh' && cp known_hosts kh.good && "
	    "sed -i 's/^\\[127.0.0.1\\]:[0-9]*/[127.0.0.1]:1/' known_hosts",
	    fx->dir), 0);
	r->name = "deploy-ssh-unknown";
	assert_int_equal(git_repo_open(&fx->cfg, r, &g, err, sizeof(err)),
	    GIT_REPO_AUTH);
	assert_non_null(strstr(err, "unknown"));

	/* Changed host key: the entry names another key. */
	assert_int_equal(tl_sh("cd '%s/ssh' && ssh-keygen -q -t ed25519 -N '' "
	    "-f other && { printf '[127.0.0.1]:%d '; cat other.pub; } > "
	    "known_hosts", fx->dir, s.port), 0);
	r->name = "deploy-ssh-changed";
	assert_int_equal(git_repo_open(&fx->cfg, r, &g, err, sizeof(err)),
	    GIT_REPO_AUTH);
	assert_non_null(strstr(err, "changed"));

	/* No known_hosts file configured: never trusted blindly. */
	r->name = "deploy-ssh-none";
	r->auth.known_hosts_file = NULL;
	assert_int_equal(git_repo_open(&fx->cfg, r, &g, err, sizeof(err)),
	    GIT_REPO_AUTH);
	assert_non_null(strstr(err, "known_hosts"));

	/* The hashed form of the good file works too. */
	assert_int_equal(tl_sh("cd '%s/ssh' && cp kh.good known_hosts && "
	    "ssh-keygen -q -H -f known_hosts >/dev/null 2>&1 && "
	    "! grep -q 127.0.0.1 known_hosts", fx->dir), 0);
	r->name = "deploy-ssh-hashed";
	r->auth.known_hosts_file = s.kh;
	assert_int_equal(git_repo_open(&fx->cfg, r, &g, err, sizeof(err)),
	    GIT_REPO_OK);
	git_repo_close(g);
	sshfx_stop(&s);
}

/*
 * Many SSH connections leak nothing (libgit2 1.5's own SSH transport
 * leaked on each one; gitssh.c replaces it): fetches (one through the
 * scp-like URL) and a push with a passphrase-protected key, then
 * LeakSanitizer looks at the heap.  A missing repository fails with the
 * server's reason; a wrong passphrase is an authentication failure.
 */
static void
test_ssh_connections_leak_nothing(void **state)
{
	struct fx		*fx = *state;
	struct sshfx		 s;
	struct git_repo		*g;
	char			 err[512], *pwkey, *pwpub;
	char			*url;
	int			 i;

	if (getuid() != 0 || access("/usr/sbin/sshd", X_OK) != 0)
		skip();
	sshfx_start(fx, &s);
	assert_int_equal(tl_sh("cd '%s/ssh' && ssh-keygen -q -t ed25519 "
	    "-N 'open sesame' -f idpw && cat idpw.pub >> authorized_keys",
	    fx->dir), 0);
	pwkey = xasprintf("%s/ssh/idpw", fx->dir);
	pwpub = xasprintf("%s/ssh/idpw.pub", fx->dir);
	s.r.name = "deploy-ssh-pw";
	s.r.auth.ssh_key_file = pwkey;
	s.r.auth.ssh_pubkey_file = pwpub;
	s.r.auth.ssh_passphrase = "open sesame";
	for (i = 0; i < 5; i++) {
		assert_int_equal(git_repo_open(&fx->cfg, &s.r, &g, err,
		    sizeof(err)), GIT_REPO_OK);
		git_repo_close(g);
	}
	/* The scp-like form of the URL, the port in brackets. */
	url = s.r.url;
	s.r.url = xasprintf("%s@[127.0.0.1:%d]:%s/deploy.git",
	    getpwuid(getuid())->pw_name, s.port, fx->dir);
	s.r.name = "deploy-ssh-scp";
	assert_int_equal(git_repo_open(&fx->cfg, &s.r, &g, err, sizeof(err)),
	    GIT_REPO_OK);
	git_repo_close(g);
	free(s.r.url);
	s.r.url = url;
	s.r.name = "deploy-ssh-pw";
	sshfx_push(fx, &s.r, "image: a/b:8\n");

	/* The server's reason (on stderr) for a repository it does not have. */
	url = s.r.url;
	s.r.url = xasprintf("ssh://%s@127.0.0.1:%d%s/nothing.git",
	    getpwuid(getuid())->pw_name, s.port, fx->dir);
	s.r.name = "deploy-ssh-nothing";
	assert_int_equal(git_repo_open(&fx->cfg, &s.r, &g, err, sizeof(err)),
	    GIT_REPO_ERROR);
	assert_non_null(strstr(err, "does not appear to be a git repository"));
	free(s.r.url);
	s.r.url = url;

	s.r.name = "deploy-ssh-badpw";
	s.r.auth.ssh_passphrase = "wrong";
	assert_int_equal(git_repo_open(&fx->cfg, &s.r, &g, err, sizeof(err)),
	    GIT_REPO_AUTH);
	assert_non_null(strstr(err, "authentication"));
#if defined(__SANITIZE_ADDRESS__)
	/* Every connection above is closed: nothing of theirs may remain. */
	assert_int_equal(__lsan_do_recoverable_leak_check(), 0);
#endif
	sshfx_stop(&s);
	free(pwkey);
	free(pwpub);
}

struct prep_arg {
	struct fx	*fx;
	int		 ok;
};

static void *
prep_thread(void *arg)
{
	struct prep_arg	*a = arg;
	char		*path, *head, err[512];
	int		 i;

	for (i = 0; i < 5; i++) {
		if (git_repo_prepare(&a->fx->cfg, &a->fx->repo, &path, &head,
		    err, sizeof(err)) == 0 && head != NULL && strlen(head) == 40)
			a->ok++;
		free(path);
		free(head);
	}
	return NULL;
}

/* Worker threads preparing one clone at once are serialized, all succeed. */
static void
test_prepare_concurrent(void **state)
{
	struct fx	*fx = *state;
	struct prep_arg	 a[4];
	pthread_t	 t[4];
	int		 i;

	for (i = 0; i < 4; i++) {
		a[i].fx = fx;
		a[i].ok = 0;
		assert_int_equal(pthread_create(&t[i], NULL, prep_thread, &a[i]),
		    0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(a[i].ok, 5);
	}
	assert_int_equal(tl_sh("git --git-dir='%s/workdir/deploy.git' fsck "
	    "--no-progress >/dev/null 2>&1", fx->dir), 0);
}

struct read_arg {
	const char		*path;
	struct config_app	 app;
	struct sync_manifests	 m;
	int			 rc;
	volatile int		 done;
};

static void *
read_thread(void *p)
{
	struct read_arg	*a = p;
	char		*commit = NULL, err[512];
	int		 kind;

	a->rc = sync_manifests_read(a->path, NULL, "main", &a->app, &a->m,
	    &commit, &kind, err, sizeof(err));
	free(commit);
	a->done = 1;
	return NULL;
}

/* A sync reads the clone under its lock: it waits for an update job. */
static void
test_sync_read_waits_for_lock(void **state)
{
	struct fx	*fx = *state;
	struct git_repo	*g;
	struct read_arg	 a;
	pthread_t	 t;
	char		*path = NULL, err[512];

	assert_int_equal(git_repo_prepare(&fx->cfg, &fx->repo, &path, NULL,
	    err, sizeof(err)), 0);
	memset(&a, 0, sizeof(a));
	a.path = path;
	a.app.name = "web";
	a.app.path = "apps/web";
	assert_int_equal(git_repo_open(&fx->cfg, &fx->repo, &g, err,
	    sizeof(err)), GIT_REPO_OK);
	assert_int_equal(pthread_create(&t, NULL, read_thread, &a), 0);
	usleep(300 * 1000);
	assert_int_equal(a.done, 0);
	git_repo_close(g);
	pthread_join(t, NULL);
	assert_int_equal(a.done, 1);
	assert_int_equal(a.rc, 0);
	assert_int_equal(a.m.n, 1);
	sync_manifests_free(&a.m);
	free(path);
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

/*
 * The update-image runner against a real bare repository: two apps share
 * it; web's manifests hold registry.acme.io/acme/web in a Deployment and a
 * kustomization, worker's another image.
 */
struct ufx {
	struct fx		 fx;
	struct config_app	 apps[3];
	struct config_image	 web_img, worker_img;
};

static int
ufx_setup(void **state)
{
	struct ufx	*u = calloc(1, sizeof(*u));
	struct fx	*fx = &u->fx;

	if (u == NULL || (fx->dir = tl_tmpdir()) == NULL)
		return -1;
	if (tl_sh("set -e; cd '%s'; mkdir -p seed/apps/web seed/apps/worker "
	    "seed/apps/other; printf 'kind: Deployment\\nspec:\\n  template:\\n"
	    "    spec:\\n      containers:\\n        - name: web\\n"
	    "          image: registry.acme.io/acme/web:1.2.0 # keep\\n' > "
	    "seed/apps/web/deploy.yaml; printf 'images:\\n  - name: web\\n"
	    "    newName: registry.acme.io/acme/web\\n    newTag: \"1.2.0\"\\n'"
	    " > seed/apps/web/kustomization.yaml; printf 'kind: Pod\\nspec:\\n"
	    "  containers:\\n  - {name: w, image: registry.acme.io/acme/worker:0.9}"
	    "\\n' > seed/apps/worker/pod.yaml; printf 'a: b\\n' > "
	    "seed/apps/other/x.yaml", fx->dir) != 0 ||
	    tl_bare_repo(fx->dir, "deploy") != 0)
		return -1;
	fx->url = xasprintf("file://%s/deploy.git", fx->dir);
	fx->workdir = xasprintf("%s/workdir", fx->dir);
	fx->cfg.workdir = fx->workdir;
	fx->cfg.git.push_retries = 5;
	fx->repo.name = "deploy";
	fx->repo.url = fx->url;
	fx->repo.branch = "main";
	fx->repo.author_name = "gitopsd";
	fx->repo.author_email = "gitopsd@acme.io";
	fx->cfg.repos = &fx->repo;
	fx->cfg.nrepos = 1;
	u->web_img.repository = "registry.acme.io/acme/web";
	u->web_img.policy.kind = CONFIG_POLICY_SEMVER;
	u->web_img.policy.semver = ">=1.0.0";
	u->worker_img.repository = "registry.acme.io/acme/worker";
	u->worker_img.policy.kind = CONFIG_POLICY_SEMVER;
	u->worker_img.policy.semver = ">=0.1.0";
	u->apps[0].name = "web";
	u->apps[0].repo = "deploy";
	u->apps[0].path = "apps/web";
	u->apps[0].cluster = "prod";
	u->apps[0].images = &u->web_img;
	u->apps[0].nimages = 1;
	u->apps[1].name = "worker";
	u->apps[1].repo = "deploy";
	u->apps[1].path = "apps/worker";
	u->apps[1].cluster = "prod";
	u->apps[1].images = &u->worker_img;
	u->apps[1].nimages = 1;
	u->apps[2].name = "other";
	u->apps[2].repo = "deploy";
	u->apps[2].path = "apps/other";
	fx->cfg.apps = u->apps;
	fx->cfg.napps = 3;
	*state = u;
	return 0;
}

static int
ufx_teardown(void **state)
{
	struct ufx	*u = *state;

	tl_rmrf(u->fx.dir);
	free(u->fx.dir);
	free(u->fx.url);
	free(u->fx.workdir);
	free(u);
	return 0;
}

static struct job *
mkjob(int64_t id, const char *app, const char *image, const char *tag)
{
	struct job	*j = xcalloc(1, sizeof(*j));

	j->id = id;
	j->kind = JOB_UPDATE_IMAGE;
	j->app = xstrdup(app);
	j->repo = xstrdup("deploy");
	j->image = xstrdup(image);
	j->tag = xstrdup(tag);
	j->delivery = xasprintf("delivery-%lld", (long long)id);
	return j;
}

static void
run_job(struct ufx *u, struct job *j, struct job_result *res)
{
	const struct job_runner	*r = job_runner_find(JOB_UPDATE_IMAGE);

	assert_non_null(r);
	assert_non_null(r->run);
	memset(res, 0, sizeof(*res));
	r->run(&u->fx.cfg, j, res);
}

#define REMOTE(fmt) tl_out("git --git-dir='%s/deploy.git' " fmt, u->fx.dir)

static void
test_update_commits_pushes_and_follows_up(void **state)
{
	struct ufx		*u = *state;
	struct job		*j = mkjob(41, "web", "registry.acme.io/acme/web",
				    "1.3.0");
	struct job_result	 res;

	run_job(u, j, &res);
	assert_true(res.ok);
	assert_non_null(res.commit);
	assert_string_equal(REMOTE("rev-parse main"), res.commit);
	assert_string_equal(REMOTE("show main:apps/web/deploy.yaml"),
	    "kind: Deployment\nspec:\n  template:\n    spec:\n      containers:"
	    "\n        - name: web\n          image: registry.acme.io/acme/web:"
	    "1.3.0 # keep");
	assert_string_equal(REMOTE("show main:apps/web/kustomization.yaml"),
	    "images:\n  - name: web\n    newName: registry.acme.io/acme/web\n"
	    "    newTag: \"1.3.0\"");
	assert_string_equal(REMOTE("log -1 --format=%%B main"),
	    "deploy(web): web 1.2.0 -> 1.3.0\n\nGitopsd-Job: 41\n"
	    "Gitopsd-Event: delivery-41");
	assert_string_equal(REMOTE("log -1 --format=%%an/%%ae main"),
	    "gitopsd/gitopsd@acme.io");
	assert_string_equal(REMOTE("diff --name-only main~1 main"),
	    "apps/web/deploy.yaml\napps/web/kustomization.yaml");
	/* A sync follow-up for web only (worker's files did not change). */
	assert_int_equal(res.nfollowups, 1);
	assert_int_equal(res.followups[0].kind, JOB_SYNC);
	assert_string_equal(res.followups[0].app, "web");
	assert_string_equal(res.followups[0].revision, res.commit);
	assert_non_null(strstr(res.detail, "\"commit\":\""));
	assert_non_null(strstr(res.detail, "\"files\":[\"apps/web/deploy.yaml\","
	    "\"apps/web/kustomization.yaml\"]"));
	assert_non_null(strstr(res.detail, "\"old\":\"1.2.0\",\"new\":\"1.3.0\""));
	job_result_clear(&res);

	/* The same job again: the tag is set, no commit. */
	run_job(u, j, &res);
	assert_true(res.ok);
	assert_null(res.commit);
	assert_int_equal(res.nfollowups, 0);
	assert_non_null(strstr(res.detail, "already set"));
	assert_string_equal(REMOTE("rev-list --count main"), "2");
	job_result_clear(&res);
	job_free(j);

	/* An older tag is never deployed over a newer one. */
	j = mkjob(42, "web", "registry.acme.io/acme/web", "1.2.5");
	run_job(u, j, &res);
	assert_true(res.ok);
	assert_null(res.commit);
	assert_non_null(strstr(res.detail, "not newer"));
	assert_string_equal(REMOTE("rev-list --count main"), "2");
	job_result_clear(&res);
	job_free(j);
}

/*
 * An app without a cluster is updated in Git only: the commit is pushed
 * and no sync follows (it could only fail and alert).
 */
static void
test_update_gitonly_no_sync(void **state)
{
	struct ufx		*u = *state;
	struct job		*j = mkjob(45, "web", "registry.acme.io/acme/web",
				    "1.3.0");
	struct job_result	 res;

	u->apps[0].cluster = NULL;
	run_job(u, j, &res);
	assert_true(res.ok);
	assert_non_null(res.commit);
	assert_string_equal(REMOTE("rev-parse main"), res.commit);
	assert_int_equal(res.nfollowups, 0);
	job_result_clear(&res);
	job_free(j);
}

/* Two queued updates for one repository make one commit. */
static void
test_update_merged_one_commit(void **state)
{
	struct ufx		*u = *state;
	struct job		*j = mkjob(50, "web", "registry.acme.io/acme/web",
				    "2.0.0");
	struct job_result	 res;

	j->merged = xcalloc(1, sizeof(*j->merged));
	j->merged[0] = mkjob(51, "worker", "registry.acme.io/acme/worker",
	    "1.0.0");
	j->nmerged = 1;
	run_job(u, j, &res);
	assert_true(res.ok);
	assert_string_equal(REMOTE("rev-list --count main"), "2");
	assert_string_equal(REMOTE("log -1 --format=%%B main"),
	    "deploy: 2 image updates\n\n"
	    "- deploy(web): web 1.2.0 -> 2.0.0\n"
	    "- deploy(worker): worker 0.9 -> 1.0.0\n\n"
	    "Gitopsd-Job: 50\nGitopsd-Job: 51\n"
	    "Gitopsd-Event: delivery-50\nGitopsd-Event: delivery-51");
	assert_non_null(strstr(REMOTE("show main:apps/worker/pod.yaml"),
	    "registry.acme.io/acme/worker:1.0.0}"));
	assert_int_equal(res.nfollowups, 2);
	job_result_clear(&res);
	job_free(j);
}

/*
 * Someone pushes between gitopsd's fetch and its push: the push is refused,
 * gitopsd fetches, re-applies the edit on the new head and pushes again;
 * both commits end up on the branch.
 */
static void
test_update_race_keeps_both_commits(void **state)
{
	struct ufx		*u = *state;
	struct race		 r = { u->fx.dir, 0 };
	struct job		*j = mkjob(60, "web", "registry.acme.io/acme/web",
				    "1.4.0");
	struct job_result	 res;
	struct buf		 m;

	metrics_init();
	git_repo_set_push_hook(race_hook, &r);
	run_job(u, j, &res);
	git_repo_set_push_hook(NULL, NULL);
	assert_true(res.ok);
	assert_int_equal(r.fired, 2);
	assert_string_equal(REMOTE("log --format=%%s main"),
	    "deploy(web): web 1.2.0 -> 1.4.0\nunrelated\nseed");
	assert_string_equal(REMOTE("rev-parse main"), res.commit);
	assert_non_null(strstr(REMOTE("show main:README.md"), "other"));
	assert_non_null(strstr(res.detail, "\"push_retries\":1"));
	buf_init(&m, 0);
	metrics_render(&m);
	assert_non_null(strstr(m.data,
	    "gitopsd_git_push_retries_total{repo=\"deploy\"} 1"));
	buf_free(&m);
	metrics_free();
	job_result_clear(&res);
	job_free(j);
}

/*
 * git.push_retries: 0 (documented, valid) means no retry: the rejected push
 * fails the attempt at once, without a second fetch and push.
 */
static void
test_update_push_retries_zero(void **state)
{
	struct ufx		*u = *state;
	struct race		 r = { u->fx.dir, 0 };
	struct job		*j = mkjob(63, "web", "registry.acme.io/acme/web",
				    "1.4.0");
	struct job_result	 res;

	u->fx.cfg.git.push_retries = 0;
	git_repo_set_push_hook(race_hook, &r);
	run_job(u, j, &res);
	git_repo_set_push_hook(NULL, NULL);
	assert_false(res.ok);
	assert_false(res.permanent);
	assert_int_equal(r.fired, 1);
	assert_non_null(strstr(res.error, "push still rejected after 0 "
	    "retries"));
	assert_string_equal(REMOTE("log --format=%%s main"), "unrelated\nseed");
	job_result_clear(&res);
	job_free(j);
}

/* Lands a commit that sets the very tag the job is about to push. */
static void
race_same_tag_hook(void *arg)
{
	struct race	*r = arg;

	if (r->fired++ > 0)
		return;
	tl_sh("cd '%s/work-deploy' && " TL_GIT " pull -q --ff-only "
	    "../deploy.git main && sed -i 's/web:1.2.0/web:1.4.0/' "
	    "apps/web/deploy.yaml && sed -i 's/\"1.2.0\"/\"1.4.0\"/' "
	    "apps/web/kustomization.yaml && " TL_GIT " commit -qam by-hand && "
	    TL_GIT " push -q ../deploy.git main", r->dir);
}

/* The race winner already set the tag: success without a commit. */
static void
test_update_race_other_set_tag(void **state)
{
	struct ufx		*u = *state;
	struct race		 r = { u->fx.dir, 0 };
	struct job		*j = mkjob(62, "web", "registry.acme.io/acme/web",
				    "1.4.0");
	struct job_result	 res;

	git_repo_set_push_hook(race_same_tag_hook, &r);
	run_job(u, j, &res);
	git_repo_set_push_hook(NULL, NULL);
	assert_true(res.ok);
	assert_int_equal(r.fired, 1);
	assert_null(res.commit);
	assert_non_null(strstr(res.detail, "already set"));
	assert_string_equal(REMOTE("log --format=%%s main"), "by-hand\nseed");
	job_result_clear(&res);
	job_free(j);
}

/* The same race over smart HTTP (the server refuses the stale update). */
static void
test_update_race_over_http(void **state)
{
	struct ufx		*u = *state;
	struct race		 r = { u->fx.dir, 0 };
	struct job		*j = mkjob(61, "web", "registry.acme.io/acme/web",
				    "1.5.0");
	struct job_result	 res;
	int			 port;
	pid_t			 pid;
	char			*url;

	pid = tl_lighttpd(u->fx.dir, "deployer", "pw-61", &port);
	assert_true(pid > 0);
	url = xasprintf("http://127.0.0.1:%d/git/deploy.git", port);
	u->fx.repo.url = url;
	u->fx.repo.auth.username = "deployer";
	u->fx.repo.auth.password = "pw-61";
	git_repo_set_push_hook(race_hook, &r);
	run_job(u, j, &res);
	git_repo_set_push_hook(NULL, NULL);
	tl_stop(pid);
	assert_true(res.ok);
	assert_true(r.fired >= 2);
	assert_string_equal(REMOTE("log --format=%%s main"),
	    "deploy(web): web 1.2.0 -> 1.5.0\nunrelated\nseed");
	assert_string_equal(REMOTE("rev-parse main"), res.commit);
	assert_non_null(strstr(res.detail, "\"push_retries\":1"));
	job_result_clear(&res);
	u->fx.repo.url = u->fx.url;
	u->fx.repo.auth.username = NULL;
	u->fx.repo.auth.password = NULL;
	free(url);
	job_free(j);
}

/* exclude patterns (as sync reads them) and a path with a trailing slash. */
static void
test_update_exclude(void **state)
{
	struct ufx		*u = *state;
	struct job		*j = mkjob(95, "web", "registry.acme.io/acme/web",
				    "1.3.0");
	struct job_result	 res;
	char			*excl[] = { "kustomization.yaml" };

	u->apps[0].path = "./apps/web/";
	u->apps[0].exclude = excl;
	u->apps[0].nexclude = 1;
	run_job(u, j, &res);
	assert_true(res.ok);
	assert_string_equal(REMOTE("diff --name-only main~1 main"),
	    "apps/web/deploy.yaml");
	assert_int_equal(res.nfollowups, 1);
	job_result_clear(&res);
	job_free(j);
}

/* push_branch: commits go there (stacking), no sync follows. */
static void
test_update_push_branch(void **state)
{
	struct ufx		*u = *state;
	struct job		*j = mkjob(90, "web", "registry.acme.io/acme/web",
				    "1.3.0");
	struct job_result	 res;

	u->fx.repo.push_branch = "gitopsd/updates";
	run_job(u, j, &res);
	assert_true(res.ok);
	assert_int_equal(res.nfollowups, 0);
	assert_string_equal(REMOTE("rev-parse gitopsd/updates"), res.commit);
	assert_string_equal(REMOTE("rev-list --count main"), "1");
	job_result_clear(&res);
	job_free(j);

	j = mkjob(91, "worker", "registry.acme.io/acme/worker", "1.0.0");
	run_job(u, j, &res);
	assert_true(res.ok);
	assert_string_equal(REMOTE("log --format=%%s gitopsd/updates"),
	    "deploy(worker): worker 0.9 -> 1.0.0\n"
	    "deploy(web): web 1.2.0 -> 1.3.0\nseed");
	job_result_clear(&res);
	job_free(j);
	u->fx.repo.push_branch = NULL;
}

/*
 * A push_branch template: one branch per update, from main's head; the
 * same update again reuses it (no commit); a newer tag gets its own
 * branch from main; a branch deleted on the remote is made again; once
 * main has the tag nothing is proposed.
 */
static void
test_update_branch_per_update(void **state)
{
	struct ufx		*u = *state;
	struct job		*j;
	struct job_result	 res;
	char			*tip, *main0 = xstrdup(REMOTE("rev-parse main"));

	u->fx.repo.push_branch = "gitopsd/{{app}}-{{tag}}";
	j = mkjob(95, "web", "registry.acme.io/acme/web", "1.3.0");
	run_job(u, j, &res);
	assert_true(res.ok);
	assert_int_equal(res.nfollowups, 0);
	tip = xstrdup(REMOTE("rev-parse gitopsd/web-1.3.0"));
	assert_string_equal(res.commit, tip);
	assert_string_equal(REMOTE("rev-parse gitopsd/web-1.3.0~1"), main0);
	assert_string_equal(REMOTE("rev-parse main"), main0);
	job_result_clear(&res);
	job_free(j);

	/* A retry or a duplicate event: the branch is reused. */
	j = mkjob(96, "web", "registry.acme.io/acme/web", "1.3.0");
	run_job(u, j, &res);
	assert_true(res.ok);
	assert_null(res.commit);
	assert_non_null(strstr(res.detail, "\"result\":\"branch reused\""));
	assert_non_null(strstr(res.detail, "\"old\":\"1.2.0\""));
	assert_string_equal(REMOTE("rev-parse gitopsd/web-1.3.0"), tip);
	job_result_clear(&res);
	job_free(j);

	/* A newer tag: its own branch, from main, not stacked. */
	j = mkjob(97, "web", "registry.acme.io/acme/web", "1.4.0");
	run_job(u, j, &res);
	assert_true(res.ok);
	assert_string_equal(REMOTE("rev-parse gitopsd/web-1.4.0~1"), main0);
	job_result_clear(&res);
	job_free(j);

	/* Deleted on the remote: made again, not found from the old fetch. */
	REMOTE("branch -D gitopsd/web-1.3.0");
	j = mkjob(98, "web", "registry.acme.io/acme/web", "1.3.0");
	run_job(u, j, &res);
	assert_true(res.ok);
	assert_non_null(res.commit);
	assert_string_equal(REMOTE("rev-parse gitopsd/web-1.3.0~1"), main0);
	job_result_clear(&res);
	job_free(j);

	/* Merged: main has it, nothing to propose. */
	REMOTE("update-ref refs/heads/main gitopsd/web-1.3.0");
	j = mkjob(99, "web", "registry.acme.io/acme/web", "1.3.0");
	run_job(u, j, &res);
	assert_true(res.ok);
	assert_null(res.commit);
	assert_non_null(strstr(res.detail, "already set: no change"));
	job_result_clear(&res);
	job_free(j);
	free(tip);
	free(main0);
	u->fx.repo.push_branch = NULL;
}

/* A broken file is left alone and named; nothing else to edit: failure. */
static void
test_update_manifest_error(void **state)
{
	struct ufx		*u = *state;
	struct job		*j = mkjob(70, "other", "registry.acme.io/acme/web",
				    "1.3.0");
	struct job_result	 res;

	assert_int_equal(tl_sh("cd '%s/work-deploy' && printf 'a: [b\\n' > "
	    "apps/other/broken.yaml && " TL_GIT " add -A && " TL_GIT " commit "
	    "-qm broken && " TL_GIT " push -q ../deploy.git main", u->fx.dir),
	    0);
	run_job(u, j, &res);
	assert_false(res.ok);
	assert_int_equal(res.err_kind, JOB_ERR_MANIFEST);
	assert_true(res.permanent);
	assert_non_null(strstr(res.error, "apps/other/broken.yaml:"));
	job_result_clear(&res);
	job_free(j);
}

/*
 * A tree entry ".." under the app: the update walk fails naming it and
 * nothing is committed; a link out of the app is skipped, not followed.
 */
static void
test_update_hostile_tree(void **state)
{
	struct ufx		*u = *state;
	struct job		*j = mkjob(71, "web", "registry.acme.io/acme/web",
				    "1.3.0");
	struct job_result	 res;
	const char		*head;

	head = hostile_commit(&u->fx, "printf '040000 tree %s\\t..\\n' $sub");
	assert_int_equal(strlen(head), 40);
	run_job(u, j, &res);
	assert_false(res.ok);
	assert_int_equal(res.err_kind, JOB_ERR_GIT);
	assert_non_null(strstr(res.error, "apps/web/\"..\": tree entry name "
	    "refused"));
	job_result_clear(&res);
	assert_string_equal(tl_out("git --git-dir='%s/deploy.git' rev-parse "
	    "main", u->fx.dir), head);
	job_free(j);
}

/* Wrong credentials over smart HTTP: a permanent git-auth failure. */
static void
test_update_auth_failure(void **state)
{
	struct ufx		*u = *state;
	struct job		*j = mkjob(80, "web", "registry.acme.io/acme/web",
				    "1.3.0");
	struct job_result	 res;
	int			 port;
	pid_t			 pid;
	char			*url;

	pid = tl_lighttpd(u->fx.dir, "deployer", "right-pw", &port);
	assert_true(pid > 0);
	url = xasprintf("http://127.0.0.1:%d/git/deploy.git", port);
	u->fx.repo.url = url;
	u->fx.repo.auth.username = "deployer";
	u->fx.repo.auth.password = "wrong-pw";
	run_job(u, j, &res);
	assert_false(res.ok);
	assert_int_equal(res.err_kind, JOB_ERR_GIT_AUTH);
	assert_true(res.permanent);
	assert_null(strstr(res.error, "wrong-pw"));
	job_result_clear(&res);

	u->fx.repo.auth.password = "right-pw";
	run_job(u, j, &res);
	assert_true(res.ok);
	assert_string_equal(REMOTE("rev-parse main"), res.commit);
	job_result_clear(&res);
	tl_stop(pid);
	u->fx.repo.url = u->fx.url;
	free(url);
	job_free(j);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_prepare_clone_then_fetch,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_remote_head_and_changed_paths, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_remote_head_waits_for_lock, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_prepare_bad_url,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_commit_and_push,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_push_race_rejected,
		    fx_setup, fx_teardown),
		cmocka_unit_test(test_tree_names),
		cmocka_unit_test_setup_teardown(test_hostile_trees, fx_setup,
		    fx_teardown),
		cmocka_unit_test_setup_teardown(test_export,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_git_daemon_push,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_remote_ops_repeat,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_hung_remote_times_out,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_connect_times_out,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_push_stalled_hook_times_out,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_waiter_on_stalled_clone_gives_up, fx_setup, fx_teardown),
		cmocka_unit_test(test_overdue_operation),
		cmocka_unit_test_setup_teardown(test_git_daemon_race_rejected,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_http_auth_push,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_known_hosts,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_sync_read_waits_for_lock,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_prepare_concurrent,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_ssh_push_and_host_keys,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_ssh_connections_leak_nothing, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_update_commits_pushes_and_follows_up, ufx_setup,
		    ufx_teardown),
		cmocka_unit_test_setup_teardown(test_update_gitonly_no_sync,
		    ufx_setup, ufx_teardown),
		cmocka_unit_test_setup_teardown(test_update_merged_one_commit,
		    ufx_setup, ufx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_update_race_keeps_both_commits, ufx_setup,
		    ufx_teardown),
		cmocka_unit_test_setup_teardown(test_update_push_retries_zero,
		    ufx_setup, ufx_teardown),
		cmocka_unit_test_setup_teardown(test_update_race_other_set_tag,
		    ufx_setup, ufx_teardown),
		cmocka_unit_test_setup_teardown(test_update_race_over_http,
		    ufx_setup, ufx_teardown),
		cmocka_unit_test_setup_teardown(test_update_exclude,
		    ufx_setup, ufx_teardown),
		cmocka_unit_test_setup_teardown(test_update_branch_per_update,
		    ufx_setup, ufx_teardown),
		cmocka_unit_test_setup_teardown(test_update_push_branch,
		    ufx_setup, ufx_teardown),
		cmocka_unit_test_setup_teardown(test_update_manifest_error,
		    ufx_setup, ufx_teardown),
		cmocka_unit_test_setup_teardown(test_update_hostile_tree,
		    ufx_setup, ufx_teardown),
		cmocka_unit_test_setup_teardown(test_update_auth_failure,
		    ufx_setup, ufx_teardown),
	};
	int	 rc;

	git_repo_global_init();
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	git_repo_global_shutdown();
	return rc;
}
