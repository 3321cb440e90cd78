/*
 * Unit tests for daemon/router.c: URL normalization and push routing
 * (repo URL, branch, tag, changed paths) over a config built in memory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"
#include "handler.h"
#include "job.h"
#include "router.h"
#include "util.h"

static void
test_url_normalize(void **state)
{
	static const struct {
		const char	*in;
		const char	*want;
	} cases[] = {
		{ "https://github.com/acme/deploy.git", "github.com/acme/deploy" },
		{ "https://github.com/acme/deploy", "github.com/acme/deploy" },
		{ "https://github.com/acme/deploy/", "github.com/acme/deploy" },
		{ "https://GitHub.COM/acme/deploy.git/", "github.com/acme/deploy" },
		{ "https://x-access-token:s3cret@github.com/acme/deploy.git",
		    "github.com/acme/deploy" },
		{ "https://github.com:443/acme/deploy", "github.com/acme/deploy" },
		{ "http://example.com:80/mike/diaspora.git", "example.com/mike/diaspora" },
		{ "https://example.com:8443/a/b.git", "example.com:8443/a/b" },
		{ "git@github.com:acme/deploy.git", "github.com/acme/deploy" },
		{ "github.com:acme/deploy", "github.com/acme/deploy" },
		{ "ssh://git@github.com/acme/deploy.git", "github.com/acme/deploy" },
		{ "ssh://git@github.com:22/acme/deploy.git", "github.com/acme/deploy" },
		{ "ssh://git@bitbucketserver:7999/myproject/test-repo.git",
		    "bitbucketserver:7999/myproject/test-repo" },
		{ "git://github.com/acme/deploy.git", "github.com/acme/deploy" },
		{ "file:///srv/git/deploy.git", "/srv/git/deploy" },
		{ "/srv/git/deploy.git/", "/srv/git/deploy" },
		{ "https://[::1]:8443/a/b.git", "[::1]:8443/a/b" },
		{ "https://host//a//b.git", "host/a/b" },
	};
	size_t	 i;
	char	*n;

	(void)state;
	for (i = 0; i < nitems(cases); i++) {
		n = router_url_normalize(cases[i].in);
		assert_non_null(n);
		if (strcmp(n, cases[i].want) != 0)
			fail_msg("%s -> %s, want %s", cases[i].in, n,
			    cases[i].want);
		free(n);
	}
	assert_null(router_url_normalize(NULL));
}

static void
test_url_equal(void **state)
{
	(void)state;
	assert_true(router_url_equal("git@github.com:acme/deploy.git",
	    "https://github.com/acme/deploy"));
	assert_true(router_url_equal("https://GITHUB.com/acme/deploy.git",
	    "ssh://git@github.com/acme/deploy"));
	/* Paths on unknown hosts stay case-sensitive; hosts and repos must
	 * both agree. */
	assert_false(router_url_equal("https://git.acme.io/Acme/deploy",
	    "https://git.acme.io/acme/deploy"));
	assert_false(router_url_equal("https://github.com/acme/deploy",
	    "https://gitlab.com/acme/deploy"));
	assert_false(router_url_equal("https://github.com/acme/deploy",
	    "https://github.com/acme/deploy-prod"));
	assert_false(router_url_equal("https://h:8443/a/b", "https://h/a/b"));
	assert_false(router_url_equal(NULL, "https://github.com/a/b"));
	assert_false(router_url_equal("", ""));
}

/*
 * Repository paths on the public hosts ignore case whatever the sender; on
 * other hosts only when the sender's host type does (nocase); hosts and
 * local paths never.
 */
static void
test_url_same_case(void **state)
{
	static const char *const public[] = {
		"github.com", "gitlab.com", "bitbucket.org", "codeberg.org",
	};
	char	 a[128], b[128];
	size_t	 i;

	(void)state;
	for (i = 0; i < nitems(public); i++) {
		snprintf(a, sizeof(a), "https://%s/codertocat/hello-world",
		    public[i]);
		snprintf(b, sizeof(b), "git@%s:Codertocat/Hello-World.git",
		    public[i]);
		if (!router_url_same(a, b, 0))
			fail_msg("%s: %s != %s", public[i], a, b);
	}
	assert_true(router_url_equal("github.com/codertocat/hello-world",
	    "https://github.com/Codertocat/Hello-World.git"));
	/* Unknown hosts: exact unless the sender type says otherwise. */
	assert_false(router_url_same("https://git.acme.io/acme/web",
	    "https://git.acme.io/Acme/Web", 0));
	assert_true(router_url_same("https://git.acme.io/acme/web",
	    "https://git.acme.io/Acme/Web", 1));
	/* Host and port are never folded into the path compare. */
	assert_false(router_url_same("https://git.acme.io/acme/web",
	    "https://git.acme.io:8443/acme/web", 1));
	assert_false(router_url_same("https://github.com.evil/acme/web",
	    "https://github.com/acme/web", 1));
	/* Local paths: a case-sensitive file system. */
	assert_false(router_url_same("/srv/git/Deploy.git", "/srv/git/deploy",
	    1));
	assert_false(router_url_same("file:///srv/git/Deploy.git",
	    "/srv/git/deploy", 1));
}

/* Bitbucket Data Center: project key and slug against the repo URL. */
static void
test_bbdc_match(void **state)
{
	static const char *const yes[] = {
		"https://bitbucket.acme.io/scm/PROJ/repository.git",
		"https://bitbucket.acme.io/scm/proj/repository.git",
		"https://bitbucket.acme.io/scm/proj/Repository",
		"https://bitbucket.acme.io/bitbucket/scm/PROJ/repository.git",
		"https://bitbucket.acme.io/projects/PROJ/repos/repository",
		"https://bitbucket.acme.io/projects/proj/repos/repository/",
		"ssh://git@bitbucket.acme.io:7999/proj/repository.git",
		"ssh://git@bitbucket.acme.io/PROJ/repository",
		"git@bitbucket.acme.io:proj/repository.git",
	};
	static const char *const no[] = {
		"https://bitbucket.acme.io/scm/PROJ/repository2.git",
		"https://bitbucket.acme.io/scm/OTHER/repository.git",
		"https://bitbucket.acme.io/proj/repository.git",
		"https://bitbucket.acme.io/PROJ/repos/repository",
		"https://bitbucket.acme.io/projects/PROJ/repository",
		"ssh://git@bitbucket.acme.io:7999/x/proj/repository.git",
		"git@github.com:proj/repository.git",
		"https://bitbucket.org/proj/repository.git",
		"/srv/git/scm/proj/repository.git",
		"repository",
	};
	size_t	 i;

	(void)state;
	for (i = 0; i < nitems(yes); i++)
		if (!router_bbdc_match(yes[i], "PROJ", "repository"))
			fail_msg("%s refused", yes[i]);
	for (i = 0; i < nitems(no); i++)
		if (router_bbdc_match(no[i], "PROJ", "repository"))
			fail_msg("%s matched", no[i]);
	assert_false(router_bbdc_match(NULL, "PROJ", "repository"));
	assert_false(router_bbdc_match(yes[0], NULL, "repository"));
}

/* Two repos, four apps. */
static struct config_repo test_repos[] = {
	{ .name = "deploy", .url = "https://github.com/acme/deploy.git",
	  .branch = "main" },
	{ .name = "release", .url = "git@github.com:acme/deploy.git",
	  .branch = "v1.0.0" },
};
static struct config_app test_apps[] = {
	{ .name = "web", .repo = "deploy", .path = "apps/web",
	  .cluster = "prod" },
	{ .name = "api", .repo = "deploy", .path = "./apps/api/",
	  .cluster = "prod" },
	{ .name = "all", .repo = "deploy", .path = ".", .cluster = "prod" },
	{ .name = "pinned", .repo = "release", .path = "apps/web",
	  .cluster = "prod" },
};
static struct config test_cfg = {
	.repos = test_repos, .nrepos = nitems(test_repos),
	.apps = test_apps, .napps = nitems(test_apps),
};

static void
test_event(struct hook_event *ev, const char *ref, const char *url)
{
	memset(ev, 0, sizeof(*ev));
	ev->kind = HOOK_EVENT_PUSH;
	ev->ref = xstrdup(ref);
	if (strncmp(ref, "refs/heads/", 11) == 0)
		ev->branch = xstrdup(ref + 11);
	else
		ev->tag = xstrdup(ref + 10);
	ev->after = xstrdup("0123456789abcdef0123456789abcdef01234567");
	ev->clone_url = xstrdup(url);
}

static int
has_job(const struct job_spec *jobs, size_t n, const char *app)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (strcmp(jobs[i].app, app) == 0)
			return 1;
	return 0;
}

static void
test_route_branch(void **state)
{
	struct hook_event	 ev;
	struct job_spec		*jobs;
	char			 why[256];
	size_t			 n;

	(void)state;
	test_event(&ev, "refs/heads/main", "https://github.com/acme/deploy");
	n = router_route(&test_cfg, &ev, &jobs, why, sizeof(why));
	assert_int_equal(n, 3);
	assert_true(has_job(jobs, n, "web"));
	assert_true(has_job(jobs, n, "api"));
	assert_true(has_job(jobs, n, "all"));
	assert_int_equal(jobs[0].kind, JOB_SYNC);
	assert_string_equal(jobs[0].repo, "deploy");
	assert_string_equal(jobs[0].revision, ev.after);
	free(jobs);
	hook_event_free(&ev);

	/* Matched through the ssh URL when the clone URL differs. */
	test_event(&ev, "refs/heads/main", "https://mirror.example/x.git");
	ev.ssh_url = xstrdup("git@github.com:acme/deploy.git");
	assert_int_equal(router_route(&test_cfg, &ev, &jobs, why,
	    sizeof(why)), 3);
	free(jobs);
	hook_event_free(&ev);

	/* Another branch of the same repository: no app follows it. */
	test_event(&ev, "refs/heads/feature", "https://github.com/acme/deploy");
	assert_int_equal(router_route(&test_cfg, &ev, &jobs, why,
	    sizeof(why)), 0);
	assert_null(jobs);
	assert_true(strncmp(why, "no app", 6) == 0);
	hook_event_free(&ev);

	/* Another repository. */
	test_event(&ev, "refs/heads/main", "https://github.com/acme/other");
	assert_int_equal(router_route(&test_cfg, &ev, &jobs, why,
	    sizeof(why)), 0);
	assert_string_equal(why, "no app");
	hook_event_free(&ev);
}

static void
test_route_paths(void **state)
{
	struct hook_event	 ev;
	struct job_spec		*jobs;
	char			 why[256];
	size_t			 n;

	(void)state;
	test_event(&ev, "refs/heads/main", "https://github.com/acme/deploy");
	hook_event_add_path(&ev, "apps/web/deployment.yaml");
	hook_event_add_path(&ev, "README.md");
	ev.paths_complete = 1;
	n = router_route(&test_cfg, &ev, &jobs, why, sizeof(why));
	assert_int_equal(n, 2);
	assert_true(has_job(jobs, n, "web"));
	assert_true(has_job(jobs, n, "all"));
	assert_false(has_job(jobs, n, "api"));
	free(jobs);

	/* "apps/webx" is not under "apps/web". */
	hook_event_free(&ev);
	test_event(&ev, "refs/heads/main", "https://github.com/acme/deploy");
	hook_event_add_path(&ev, "apps/webx/a.yaml");
	hook_event_add_path(&ev, "apps/api/b.yaml");
	ev.paths_complete = 1;
	n = router_route(&test_cfg, &ev, &jobs, why, sizeof(why));
	assert_int_equal(n, 2);
	assert_true(has_job(jobs, n, "api"));
	assert_true(has_job(jobs, n, "all"));
	free(jobs);

	/* An incomplete list never rules an app out. */
	ev.paths_complete = 0;
	assert_int_equal(router_route(&test_cfg, &ev, &jobs, why,
	    sizeof(why)), 3);
	free(jobs);
	hook_event_free(&ev);

	/* Paths that touch no app at all. */
	struct config_app	 one = { .name = "web", .repo = "deploy",
				     .path = "apps/web", .cluster = "prod" };
	struct config		 cfg1 = test_cfg;
	cfg1.apps = &one;
	cfg1.napps = 1;
	test_event(&ev, "refs/heads/main", "https://github.com/acme/deploy");
	hook_event_add_path(&ev, "docs/x.md");
	ev.paths_complete = 1;
	assert_int_equal(router_route(&cfg1, &ev, &jobs, why, sizeof(why)), 0);
	assert_non_null(strstr(why, "path"));
	hook_event_free(&ev);
}

static void
test_route_tag(void **state)
{
	struct hook_event	 ev;
	struct job_spec		*jobs;
	char			 why[256];
	size_t			 n;

	(void)state;
	/* Apps follow branches; a tag syncs only a repo pinned to it. */
	test_event(&ev, "refs/tags/v1.0.0", "https://github.com/acme/deploy");
	n = router_route(&test_cfg, &ev, &jobs, why, sizeof(why));
	assert_int_equal(n, 1);
	assert_string_equal(jobs[0].app, "pinned");
	assert_string_equal(jobs[0].repo, "release");
	free(jobs);
	hook_event_free(&ev);

	test_event(&ev, "refs/tags/v2.0.0", "https://github.com/acme/deploy");
	assert_int_equal(router_route(&test_cfg, &ev, &jobs, why,
	    sizeof(why)), 0);
	assert_true(strncmp(why, "no app", 6) == 0);
	hook_event_free(&ev);
}

/* A push to a case-variant of the repo path, as GitHub spells it. */
static void
test_route_case(void **state)
{
	struct hook_event	 ev;
	struct job_spec		*jobs;
	char			 why[256];
	struct config_repo	 repo = { .name = "r", .branch = "main",
				     .url = "https://git.acme.io/acme/deploy" };
	struct config_app	 app = { .name = "a", .repo = "r", .path = ".",
				     .cluster = "prod" };
	struct config		 cfg = { .repos = &repo, .nrepos = 1,
				     .apps = &app, .napps = 1 };

	(void)state;
	test_event(&ev, "refs/heads/main", "https://github.com/Acme/Deploy");
	assert_int_equal(router_route(&test_cfg, &ev, &jobs, why,
	    sizeof(why)), 3);
	free(jobs);
	hook_event_free(&ev);

	/* A self-hosted GitLab: only the sender type says case is folded. */
	test_event(&ev, "refs/heads/main", "https://git.acme.io/Acme/Deploy.git");
	assert_int_equal(router_route(&cfg, &ev, &jobs, why, sizeof(why)), 0);
	ev.path_nocase = 1;
	assert_int_equal(router_route(&cfg, &ev, &jobs, why, sizeof(why)), 1);
	free(jobs);
	hook_event_free(&ev);
}

/* An app without a cluster is kept in Git only: no sync job. */
static void
test_route_gitonly(void **state)
{
	struct hook_event	 ev;
	struct job_spec		*jobs;
	char			 why[256];
	struct config_app	 apps[2] = {
		{ .name = "web", .repo = "deploy", .path = "apps/web" },
		{ .name = "api", .repo = "deploy", .path = "apps/api",
		  .cluster = "prod" },
	};
	struct config		 cfg = test_cfg;

	(void)state;
	cfg.apps = apps;
	cfg.napps = 2;
	test_event(&ev, "refs/heads/main", "https://github.com/acme/deploy");
	assert_int_equal(router_route(&cfg, &ev, &jobs, why, sizeof(why)), 1);
	assert_string_equal(jobs[0].app, "api");
	free(jobs);
	cfg.napps = 1;
	assert_int_equal(router_route(&cfg, &ev, &jobs, why, sizeof(why)), 0);
	assert_null(jobs);
	assert_non_null(strstr(why, "app web has no cluster"));
	hook_event_free(&ev);
}

/* A Data Center push without links reaches the repo by key and slug. */
static void
test_route_bbdc(void **state)
{
	struct hook_event	 ev;
	struct job_spec		*jobs;
	char			 why[256];
	struct config_repo	 repo = { .name = "r", .branch = "master",
				     .url = "https://bb.acme.io/scm/proj/repository.git" };
	struct config_app	 app = { .name = "a", .repo = "r", .path = ".",
				     .cluster = "prod" };
	struct config		 cfg = { .repos = &repo, .nrepos = 1,
				     .apps = &app, .napps = 1 };

	(void)state;
	test_event(&ev, "refs/heads/master", "https://x/y");
	free(ev.clone_url);
	ev.clone_url = NULL;
	ev.scm_project = xstrdup("PROJ");
	ev.scm_slug = xstrdup("repository");
	assert_int_equal(router_route(&cfg, &ev, &jobs, why, sizeof(why)), 1);
	free(jobs);
	/* With links, the links name the server: no key/slug fallback. */
	ev.clone_url = xstrdup("https://other.acme.io/scm/proj/repository.git");
	assert_int_equal(router_route(&cfg, &ev, &jobs, why, sizeof(why)), 0);
	hook_event_free(&ev);
}

static void
test_route_image_delegates(void **state)
{
	struct hook_event	 ev;
	struct job_spec		*jobs = (struct job_spec *)&ev;
	char			 why[256] = "";

	(void)state;
	memset(&ev, 0, sizeof(ev));
	ev.kind = HOOK_EVENT_IMAGE;
	ev.registry = xstrdup("ghcr.io");
	ev.repository = xstrdup("acme/web");
	ev.tag = xstrdup("1.0.0");
	/* Whatever the image router decides, the push rules are not used. */
	size_t n = router_route(&test_cfg, &ev, &jobs, why, sizeof(why));
	size_t m = router_route_image(&test_cfg, &ev, &jobs, why, sizeof(why));
	assert_int_equal(n, m);
	free(jobs);
	hook_event_free(&ev);
}

/* Commit pages on the public hosts; nothing for other hosts, local paths
 * or a revision that is not a hex sha. */
static void
test_commit_url(void **state)
{
	static const struct {
		const char	*url, *want;
	} cases[] = {
		{ "https://github.com/Acme/Deploy.git",
		  "https://github.com/Acme/Deploy/commit/0123abc" },
		{ "git@github.com:acme/deploy.git",
		  "https://github.com/acme/deploy/commit/0123abc" },
		{ "https://gitlab.com/group/sub/deploy.git",
		  "https://gitlab.com/group/sub/deploy/-/commit/0123abc" },
		{ "https://x-token-auth@bitbucket.org/acme/deploy.git",
		  "https://bitbucket.org/acme/deploy/commits/0123abc" },
		{ "ssh://git@codeberg.org/acme/deploy",
		  "https://codeberg.org/acme/deploy/commit/0123abc" },
		{ "https://git.example.com/acme/deploy.git", NULL },
		{ "/srv/git/deploy.git", NULL },
		{ "https://github.com/", NULL },
	};
	char	*u;
	size_t	 i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		u = router_commit_url(cases[i].url, "0123abc");
		if (cases[i].want == NULL)
			assert_null(u);
		else {
			assert_non_null(u);
			assert_string_equal(u, cases[i].want);
		}
		free(u);
	}
	assert_null(router_commit_url("https://github.com/a/b", "HEAD~1"));
	assert_null(router_commit_url("https://github.com/a/b", "abc"));
	assert_null(router_commit_url("https://github.com/a/b", NULL));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_normalize),
		cmocka_unit_test(test_url_equal),
		cmocka_unit_test(test_url_same_case),
		cmocka_unit_test(test_commit_url),
		cmocka_unit_test(test_bbdc_match),
		cmocka_unit_test(test_route_case),
		cmocka_unit_test(test_route_gitonly),
		cmocka_unit_test(test_route_bbdc),
		cmocka_unit_test(test_route_branch),
		cmocka_unit_test(test_route_paths),
		cmocka_unit_test(test_route_tag),
		cmocka_unit_test(test_route_image_delegates),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
