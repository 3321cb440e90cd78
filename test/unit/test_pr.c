/* Tests for daemon/pr.c: branch names, templates, owner/name from URLs. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "pr.h"
#include "util.h"

static void
test_branch_name_rules(void **state)
{
	static const char *const good[] = {
		"main", "gitopsd/web-1.2.3", "a/b/c", "release_1.0",
		"gitopsd/web-0a1b2c3", "x@y",
	};
	static const char *const bad[] = {
		"", "/a", "a/", "a//b", "a..b", "a.", ".a", "a/.b", "a.lock",
		"a.lock/b", "a b", "a~1", "a^", "a:b", "a?", "a*", "a[b",
		"a\\b", "a@{1}", "@", "-a", "a\tb", "a\x7f",
	};
	size_t	i;

	(void)state;
	for (i = 0; i < nitems(good); i++)
		if (!pr_branch_name_ok(good[i]))
			fail_msg("refused %s", good[i]);
	for (i = 0; i < nitems(bad); i++)
		if (pr_branch_name_ok(bad[i]))
			fail_msg("accepted \"%s\"", bad[i]);
}

static void
test_branch_expand(void **state)
{
	struct pr_branch_vars	 v = { "web", "web", "1.2.3", "0a1b2c3" };
	char			 err[256], *b;

	(void)state;
	b = pr_branch_expand("gitopsd/{{app}}-{{ tag }}-{{short_sha}}", &v,
	    err, sizeof(err));
	assert_non_null(b);
	assert_string_equal(b, "gitopsd/web-1.2.3-0a1b2c3");
	free(b);
	/* A value that makes a bad name is refused after expansion. */
	v.tag = "1..2";
	assert_null(pr_branch_expand("gitopsd/{{tag}}", &v, err,
	    sizeof(err)));
	assert_non_null(strstr(err, "not a valid branch name"));

	assert_int_equal(pr_check_branch("gitopsd/{{app}}-{{tag}}", err,
	    sizeof(err)), 0);
	assert_int_equal(pr_check_branch("gitopsd/{{old}}", err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "unknown variable \"old\""));
	assert_int_equal(pr_check_branch("gitopsd/{{app", err, sizeof(err)),
	    -1);
	assert_int_equal(pr_check_branch("gitopsd/{{app}}.lock", err,
	    sizeof(err)), -1);
	assert_int_equal(pr_check_text("{{app}} {{old}} -> {{new}} {{event}}",
	    err, sizeof(err)), 0);
	assert_int_equal(pr_check_text("{{short_sha}}", err, sizeof(err)), -1);
	assert_true(pr_is_template("a/{{app}}"));
	assert_false(pr_is_template("a/b"));
}

static void
test_repo_path(void **state)
{
	static const struct {
		const char *url, *owner, *name;
	} cases[] = {
		{ "https://github.com/acme/deploy.git", "acme", "deploy" },
		{ "https://ghe.acme.io/acme/deploy", "acme", "deploy" },
		{ "https://gitlab.acme.io/group/sub/deploy.git", "group/sub",
		  "deploy" },
		{ "ssh://git@host:2222/acme/deploy.git", "acme", "deploy" },
		{ "git@bitbucket.org:ws/deploy.git", "ws", "deploy" },
		{ "file:///srv/git/acme/deploy.git", "srv/git/acme", "deploy" },
		{ "/srv/git/acme/deploy.git/", "srv/git/acme", "deploy" },
	};
	char	*o, *n;
	size_t	 i;

	(void)state;
	for (i = 0; i < nitems(cases); i++) {
		assert_int_equal(pr_repo_path(cases[i].url, &o, &n), 0);
		assert_string_equal(o, cases[i].owner);
		assert_string_equal(n, cases[i].name);
		free(o);
		free(n);
	}
	assert_int_equal(pr_repo_path("https://host/deploy.git", &o, &n), -1);
	assert_int_equal(pr_repo_path("https://host", &o, &n), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_branch_name_rules),
		cmocka_unit_test(test_branch_expand),
		cmocka_unit_test(test_repo_path),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
