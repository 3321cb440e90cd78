/*
 * Unit tests for policy.c: image reference normalization, semver ranges,
 * pattern/extract ordering, latest and digest policies, validation errors.
 * The main table is (policy, current tag, pushed tag) -> should update.
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
#include "policy.h"

#define SEMVER(r)		CONFIG_POLICY_SEMVER, r, 0, NULL, NULL, CONFIG_ORDER_NUMERICAL, NULL
#define SEMVER_PRE(r)		CONFIG_POLICY_SEMVER, r, 1, NULL, NULL, CONFIG_ORDER_NUMERICAL, NULL
#define PATTERN(p, x, o)	CONFIG_POLICY_PATTERN, NULL, 0, p, x, o, NULL
#define LATEST			CONFIG_POLICY_LATEST, NULL, 0, NULL, NULL, CONFIG_ORDER_NUMERICAL, NULL
#define DIGEST(t)		CONFIG_POLICY_DIGEST, NULL, 0, NULL, NULL, CONFIG_ORDER_NUMERICAL, t
#define NUM			CONFIG_ORDER_NUMERICAL
#define ALPHA			CONFIG_ORDER_ALPHABETICAL

struct row {
	enum config_policy_kind	 kind;
	const char		*semver;
	int			 prerelease;
	const char		*pattern;
	const char		*extract;
	enum config_policy_order order;
	const char		*digest_tag;
	const char		*current;
	const char		*pushed;
	int			 want;		/* policy_newer() */
};

static const struct row rows[] = {
	/* Explicit ranges. */
	{ SEMVER(">=1.2.0 <2.0.0"), "1.2.0", "1.3.0", 1 },
	{ SEMVER(">=1.2.0 <2.0.0"), "1.2.0", "2.0.0", 0 },
	{ SEMVER(">=1.2.0 <2.0.0"), "1.2.0", "1.1.9", 0 },
	{ SEMVER(">=1.2.0 <2.0.0"), "1.9.0", "1.4.0", 0 },	/* late push: no downgrade */
	{ SEMVER(">=1.2.0 <2.0.0"), "1.4.0", "1.4.0", 0 },	/* same tag */
	{ SEMVER(">=1.2.0, <2.0.0"), "1.2.0", "1.10.0", 1 },	/* comma, numeric not lexical */
	{ SEMVER(">1.2.3"), "1.2.3", "1.2.4", 1 },
	{ SEMVER(">1.2"), "1.0.0", "1.2.9", 0 },		/* >1.2 is >=1.3.0 */
	{ SEMVER("<=1.2"), "1.0.0", "1.2.9", 1 },		/* <=1.2 is <1.3.0 */
	{ SEMVER("1.2.3 - 1.4"), "1.2.3", "1.4.7", 1 },	/* hyphen, partial upper */
	{ SEMVER("1.2.3 - 1.4"), "1.2.3", "1.5.0", 0 },
	{ SEMVER("<1.0.0 || >=3.0.0"), "0.9.0", "3.1.0", 1 },
	{ SEMVER("<1.0.0 || >=3.0.0"), "0.9.0", "2.0.0", 0 },
	{ SEMVER("!=1.4.0 >=1.0.0"), "1.3.0", "1.4.0", 0 },
	/* Caret. */
	{ SEMVER("^1.2"), "1.2.0", "1.9.9", 1 },
	{ SEMVER("^1.2"), "1.2.0", "2.0.0", 0 },
	{ SEMVER("^1.2"), "1.2.0", "1.1.0", 0 },
	{ SEMVER("^0.2.3"), "0.2.3", "0.2.9", 1 },
	{ SEMVER("^0.2.3"), "0.2.3", "0.3.0", 0 },
	{ SEMVER("^0.0.3"), "0.0.3", "0.0.4", 0 },
	/* Tilde. */
	{ SEMVER("~1.2.3"), "1.2.3", "1.2.10", 1 },
	{ SEMVER("~1.2.3"), "1.2.3", "1.3.0", 0 },
	{ SEMVER("~1"), "1.0.0", "1.9.0", 1 },
	/* X-ranges and any. */
	{ SEMVER("1.x"), "1.0.0", "1.99.0", 1 },
	{ SEMVER("1.x"), "1.0.0", "2.0.0", 0 },
	{ SEMVER("1.2.*"), "1.2.0", "1.2.5", 1 },
	{ SEMVER("*"), "1.0.0", "10.0.0", 1 },
	{ SEMVER(NULL), "1.0.0", "1.0.1", 1 },		/* no range: any version */
	{ SEMVER("*"), "1.0.0", "latest", 0 },		/* not a version */
	/* A leading v, on tags and in ranges. */
	{ SEMVER(">=1.2.0"), "v1.2.0", "v1.3.0", 1 },
	{ SEMVER("^v1.2"), "1.2.0", "v1.5.0", 1 },
	{ SEMVER(">=1.0.0"), "v2.0.0", "1.9.0", 0 },
	/* Partial versions as tags. */
	{ SEMVER(">=1.0.0"), "1.2", "1.10", 1 },
	{ SEMVER(">=1.0.0"), "1.2.0", "1.2", 0 },		/* equal, not newer */
	/* Pre-releases. */
	{ SEMVER(">=1.0.0"), "1.0.0", "1.1.0-rc.1", 0 },	/* excluded by default */
	{ SEMVER_PRE(">=1.0.0"), "1.0.0", "1.1.0-rc.1", 1 },
	{ SEMVER_PRE(">=1.0.0"), "1.1.0-rc.1", "1.1.0-rc.2", 1 },
	{ SEMVER_PRE(">=1.0.0"), "1.1.0-rc.2", "1.1.0-rc.10", 1 },	/* numeric ids */
	{ SEMVER_PRE(">=1.0.0"), "1.1.0-beta", "1.1.0-alpha", 0 },
	{ SEMVER_PRE(">=1.0.0"), "1.1.0-alpha", "1.1.0-alpha.1", 1 },	/* more fields */
	{ SEMVER_PRE(">=1.0.0"), "1.1.0-1", "1.1.0-alpha", 1 },	/* numeric < alnum */
	{ SEMVER_PRE(">=1.0.0"), "1.1.0", "1.1.0-rc.1", 0 },	/* release beats rc */
	{ SEMVER_PRE(">=1.0.0"), "1.1.0-rc.1", "1.1.0", 1 },
	{ SEMVER_PRE("^1.2"), "1.9.0", "2.0.0-rc.1", 0 },	/* bound excludes 2.0.0-x */
	{ SEMVER_PRE(">=1.2.0 <2.0.0"), "1.9.0", "2.0.0-rc.1", 0 },
	{ SEMVER(">=1.0.0"), "1.2.0-rc.1", "1.1.0", 0 },	/* current pre-release still ordered */
	/* Build metadata is ignored in ordering. */
	{ SEMVER(">=1.0.0"), "1.2.3_build.1", "1.2.3_build.2", 0 },
	{ SEMVER(">=1.0.0"), "1.2.3_build.9", "1.2.4_build.1", 1 },
	/* Current tags the policy cannot order. */
	{ SEMVER(">=1.0.0"), NULL, "1.0.0", 1 },
	{ SEMVER(">=1.0.0"), "latest", "1.0.0", 1 },
	{ SEMVER(">=1.0.0"), "latest", "0.9.0", 0 },		/* candidate out of range */
	/* Pattern policies: numeric vs lexical order. */
	{ PATTERN("^main-[0-9a-f]+-([0-9]+)$", "$1", NUM),
	  "main-abc123-9", "main-def456-10", 1 },		/* 10 > 9 numerically */
	{ PATTERN("^main-[0-9a-f]+-([0-9]+)$", "$1", ALPHA),
	  "main-abc123-9", "main-def456-10", 0 },		/* "10" < "9" lexically */
	{ PATTERN("^main-[0-9a-f]+-([0-9]+)$", "$1", NUM),
	  "main-abc123-20261126063000", "main-def456-20261126062959", 0 },
	{ PATTERN("^main-[0-9a-f]+-([0-9]+)$", "$1", NUM),
	  "main-abc-5", "release-1", 0 },			/* no match */
	{ PATTERN("^main-[0-9a-f]+-([0-9]+)$", "$1", NUM),
	  "latest", "main-abc-5", 1 },			/* current unordered */
	{ PATTERN("^RELEASE\\.([0-9TZ-]+)$", "$1", ALPHA),
	  "RELEASE.2026-10-01T10-00-00Z", "RELEASE.2026-11-01T10-00-00Z", 1 },
	{ PATTERN("^[0-9]+$", NULL, NUM), "99", "100", 1 },
	{ PATTERN("^[0-9]+$", NULL, ALPHA), "99", "100", 0 },
	{ PATTERN("^build-([0-9]+)\\.([0-9]+)$", "$2", NUM),
	  "build-9.3", "build-1.4", 1 },			/* orders by the 2nd group */
	{ PATTERN("^v([0-9]+(\\.[0-9]+)?)$", "$1", NUM),
	  "v1.5", "v1.25", 0 },				/* decimal: 1.25 < 1.5 */
	{ PATTERN("^stage-(.*)$", "$1", NUM), "stage-1", "stage-abc", 0 },	/* not a number */
	/* Latest: newest push wins. */
	{ LATEST, "abc", "def", 1 },
	{ LATEST, "1.9.0", "1.0.0", 1 },
	{ LATEST, NULL, "anything", 1 },
	/* Digest: follow one tag, pin its digest. */
	{ DIGEST("stable"), "stable", "stable", 1 },
	{ DIGEST("stable"), "stable", "edge", 0 },
	{ DIGEST("stable"), NULL, "1.0.0", 0 },
};

static void
row_policy(const struct row *r, struct config_policy *p)
{
	memset(p, 0, sizeof(*p));
	p->kind = r->kind;
	p->semver = (char *)r->semver;
	p->prerelease = r->prerelease;
	p->pattern = (char *)r->pattern;
	p->extract = (char *)r->extract;
	p->order = r->order;
	p->digest_tag = (char *)r->digest_tag;
}

static void
test_policy_table(void **state)
{
	struct config_policy	 p;
	char			 err[256];
	size_t			 i, bad = 0;
	int			 got;

	(void)state;
	assert_true(sizeof(rows) / sizeof(rows[0]) >= 40);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		row_policy(&rows[i], &p);
		assert_int_equal(policy_validate(&p, err, sizeof(err)), 0);
		got = policy_newer(&p, rows[i].current, rows[i].pushed);
		if (got != rows[i].want) {
			printf("row %zu: policy %s%s current %s pushed %s: "
			    "want %d got %d\n", i,
			    rows[i].semver ? rows[i].semver : "",
			    rows[i].pattern ? rows[i].pattern : "",
			    rows[i].current ? rows[i].current : "(none)",
			    rows[i].pushed, rows[i].want, got);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
}

/* policy_accepts() ignores what is deployed now. */
static void
test_policy_accepts(void **state)
{
	struct config_policy	 p;

	(void)state;
	memset(&p, 0, sizeof(p));
	p.kind = CONFIG_POLICY_SEMVER;
	p.semver = ">=1.2.0 <2.0.0";
	assert_true(policy_accepts(&p, "1.2.0"));
	assert_true(policy_accepts(&p, "v1.9.9"));
	assert_false(policy_accepts(&p, "1.1.9"));
	assert_false(policy_accepts(&p, "2.0.0"));
	assert_false(policy_accepts(&p, "1.5.0-rc.1"));
	assert_false(policy_accepts(&p, "01.5.0"));	/* leading zero */
	assert_false(policy_accepts(&p, "1.5.0.1"));
	assert_false(policy_accepts(&p, ""));
	assert_false(policy_accepts(&p, NULL));
	assert_false(policy_accepts(&p, "-1.5.0"));	/* not a tag */
	p.prerelease = 1;
	assert_true(policy_accepts(&p, "1.5.0-rc.1"));
	assert_false(policy_accepts(&p, "1.5.0-rc.01"));	/* leading zero id */

	memset(&p, 0, sizeof(p));
	p.kind = CONFIG_POLICY_PATTERN;
	p.pattern = "^main-([0-9]+)$";
	p.extract = "$1";
	p.order = CONFIG_ORDER_NUMERICAL;
	assert_true(policy_accepts(&p, "main-42"));
	assert_false(policy_accepts(&p, "main-42x"));
	assert_false(policy_accepts(&p, "feature-42"));

	memset(&p, 0, sizeof(p));
	p.kind = CONFIG_POLICY_LATEST;
	assert_true(policy_accepts(&p, "whatever_1"));
	assert_false(policy_accepts(&p, ".bad"));

	memset(&p, 0, sizeof(p));
	p.kind = CONFIG_POLICY_DIGEST;
	p.digest_tag = "stable";
	assert_true(policy_accepts(&p, "stable"));
	assert_false(policy_accepts(&p, "stable2"));
}

static void
expect_invalid(struct config_policy *p, const char *needle)
{
	char	 err[256] = "";

	assert_int_equal(policy_validate(p, err, sizeof(err)), -1);
	if (strstr(err, needle) == NULL)
		fail_msg("error \"%s\" lacks \"%s\"", err, needle);
}

static void
test_policy_validate(void **state)
{
	struct config_policy	 p;
	char			 err[256];
	static const char *const good[] = {
		">=1.2.0 <2.0.0", "^1.2", "~1.2.3", "1.x", "*", "v1.2.3",
		">= 1.2.3", "1.2.3 - 2.3.4", "<1 || >=3", "~>1.2", "=1.2.3",
		">=1.0.0-rc.1", "1.2.3+meta", "", "x",
	};
	static const char *const bad[] = {
		">=1.2.0 <2.0.0.0", "^", "1.x.3", "abc", ">=1..2", "||",
		">= || <2", ">*", "!=1.2", "1.2.3 -", ">>1.2", "01.2.3",
	};
	size_t	 i;

	(void)state;
	memset(&p, 0, sizeof(p));
	p.kind = CONFIG_POLICY_SEMVER;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		p.semver = (char *)good[i];
		if (policy_validate(&p, err, sizeof(err)) != 0)
			fail_msg("range \"%s\" refused: %s", good[i], err);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		p.semver = (char *)bad[i];
		expect_invalid(&p, "bad semver range");
	}
	p.semver = ">=1.2.0 <2.0.0.0";
	expect_invalid(&p, "at offset 8 (\"<2.0.0.0\")");

	memset(&p, 0, sizeof(p));
	p.kind = CONFIG_POLICY_PATTERN;
	p.pattern = "^main-([0-9]+$";
	expect_invalid(&p, "bad pattern \"^main-([0-9]+$\"");
	p.pattern = NULL;
	expect_invalid(&p, "needs a pattern");
	/* Expansions that would make regcomp() slow or huge. */
	p.pattern = "^a++++++++++++++++++++++++++++++++$";
	expect_invalid(&p, "repeats too much");
	p.pattern = "^((a{100}){100})$";
	expect_invalid(&p, "repeats too much");
	p.pattern = "^A?+$";
	expect_invalid(&p, "repeats too much");
	p.pattern = "^[0-9]{1,5000}$";
	expect_invalid(&p, "repeats too much");
	p.pattern = "^(v[0-9]+\\.[0-9]{1,3})-(rc[0-9]{1,4})?[a-z]*$";
	assert_int_equal(policy_validate(&p, err, sizeof(err)), 0);
	p.pattern = "^[[:digit:]]{8}-[0-9a-f]{7,40}(-[[:alnum:]]+)*$";
	assert_int_equal(policy_validate(&p, err, sizeof(err)), 0);
	p.pattern = "^main-([0-9]+)$";
	p.extract = "$2";
	expect_invalid(&p, "names group $2 but the pattern has 1 group");
	p.extract = "1";
	expect_invalid(&p, "bad extract");
	p.extract = "${1";
	expect_invalid(&p, "bad extract");
	p.extract = "v${1}";
	assert_int_equal(policy_validate(&p, err, sizeof(err)), 0);

	memset(&p, 0, sizeof(p));
	p.kind = CONFIG_POLICY_DIGEST;
	expect_invalid(&p, "digest policy needs a valid tag");
	p.digest_tag = "stable";
	assert_int_equal(policy_validate(&p, err, sizeof(err)), 0);
}

struct refcase {
	const char	*in;
	const char	*registry, *repository, *tag, *digest;
};

#define D64 "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void
test_image_ref_parse(void **state)
{
	static const struct refcase cases[] = {
		{ "nginx", "docker.io", "library/nginx", NULL, NULL },
		{ "nginx:1.25", "docker.io", "library/nginx", "1.25", NULL },
		{ "docker.io/nginx", "docker.io", "library/nginx", NULL, NULL },
		{ "index.docker.io/library/nginx", "docker.io", "library/nginx", NULL, NULL },
		{ "registry-1.docker.io/acme/web", "docker.io", "acme/web", NULL, NULL },
		{ "acme/web:v2", "docker.io", "acme/web", "v2", NULL },
		{ "localhost/app", "localhost", "app", NULL, NULL },
		{ "localhost:5000/app", "localhost:5000", "app", NULL, NULL },
		{ "host:5000/a/b:1.2@" D64, "host:5000", "a/b", "1.2", D64 },
		{ "Registry.ACME.io/acme/web", "registry.acme.io", "acme/web", NULL, NULL },
		{ "ghcr.io/acme/web@" D64, "ghcr.io", "acme/web", NULL, D64 },
		{ "127.0.0.1:5000/team/app:v1.2.3", "127.0.0.1:5000", "team/app", "v1.2.3", NULL },
		{ "[::1]:5000/app", "[::1]:5000", "app", NULL, NULL },
		{ "quay.io/ns/a.b_c__d-e--f", "quay.io", "ns/a.b_c__d-e--f", NULL, NULL },
		{ "acme/web/api", "docker.io", "acme/web/api", NULL, NULL },
	};
	static const char *const bad[] = {
		"", "Acme/web", "acme//web", "acme/web:", "acme/web:-x",
		"acme/web@sha256:abc", "https://ghcr.io/acme/web", "host:99999x/a",
		"acme/web/", "/acme", "a..b/c", "acme/web:t@", "localhost:5000/",
	};
	struct image_ref ref;
	char		 err[128], *name;
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (image_ref_parse(cases[i].in, &ref, err, sizeof(err)) != 0)
			fail_msg("%s: %s", cases[i].in, err);
		assert_string_equal(ref.registry, cases[i].registry);
		assert_string_equal(ref.repository, cases[i].repository);
		if (cases[i].tag == NULL)
			assert_null(ref.tag);
		else
			assert_string_equal(ref.tag, cases[i].tag);
		if (cases[i].digest == NULL)
			assert_null(ref.digest);
		else
			assert_string_equal(ref.digest, cases[i].digest);
		image_ref_free(&ref);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (image_ref_parse(bad[i], &ref, err, sizeof(err)) == 0) {
			image_ref_free(&ref);
			fail_msg("\"%s\" accepted", bad[i]);
		}

	assert_int_equal(image_ref_parse("nginx", &ref, err, sizeof(err)), 0);
	name = image_ref_name(&ref);
	assert_string_equal(name, "docker.io/library/nginx");
	free(name);
	image_ref_free(&ref);
}

static void
test_image_ref_same_repo(void **state)
{
	struct image_ref a, b;
	char		 err[128];

	(void)state;
	assert_int_equal(image_ref_parse("nginx:1", &a, err, sizeof(err)), 0);
	assert_int_equal(image_ref_parse("index.docker.io/library/nginx@" D64,
	    &b, err, sizeof(err)), 0);
	assert_true(image_ref_same_repo(&a, &b));
	image_ref_free(&b);
	assert_int_equal(image_ref_from_parts("Docker.io", "nginx", &b, err,
	    sizeof(err)), 0);
	assert_true(image_ref_same_repo(&a, &b));
	image_ref_free(&b);
	assert_int_equal(image_ref_parse("localhost:5000/nginx", &b, err,
	    sizeof(err)), 0);
	assert_false(image_ref_same_repo(&a, &b));
	image_ref_free(&b);
	assert_int_equal(image_ref_from_parts("127.0.0.1:5000", "Acme/web", &b,
	    err, sizeof(err)), -1);
	assert_int_equal(image_ref_from_parts("bad host", "acme/web", &b,
	    err, sizeof(err)), -1);
	image_ref_free(&a);
}

/* The best tag of a listing: highest by the policy's order, never at or
 * below the current one; none for latest and digest policies. */
static void
test_policy_best(void **state)
{
	struct config_policy	 p;
	char			*tags[] = { "1.1.0", "2.0.0", "1.2.0", "latest",
				    "1.2.0-rc.1", "main-9", "main-10", "v1.10.0" };
	size_t			 n = sizeof(tags) / sizeof(tags[0]);
	const char		*best;

	(void)state;
	memset(&p, 0, sizeof(p));
	p.kind = CONFIG_POLICY_SEMVER;
	p.semver = "<2";
	best = policy_best(&p, tags, n, NULL);
	assert_non_null(best);
	assert_string_equal(best, "v1.10.0");
	best = policy_best(&p, tags, n, "1.1.0");
	assert_non_null(best);
	assert_string_equal(best, "v1.10.0");
	assert_null(policy_best(&p, tags, n, "1.10.0"));
	assert_null(policy_best(&p, tags, n, "3.0.0"));	/* never down */
	assert_null(policy_best(&p, tags, 1, "1.1.0"));
	assert_null(policy_best(&p, tags, 0, NULL));

	memset(&p, 0, sizeof(p));
	p.kind = CONFIG_POLICY_PATTERN;
	p.pattern = "^main-([0-9]+)$";
	p.extract = "$1";
	p.order = CONFIG_ORDER_NUMERICAL;
	best = policy_best(&p, tags, n, "main-2");
	assert_non_null(best);
	assert_string_equal(best, "main-10");
	p.order = CONFIG_ORDER_ALPHABETICAL;
	best = policy_best(&p, tags, n, NULL);
	assert_non_null(best);
	assert_string_equal(best, "main-9");

	memset(&p, 0, sizeof(p));
	p.kind = CONFIG_POLICY_LATEST;
	assert_null(policy_best(&p, tags, n, NULL));
	memset(&p, 0, sizeof(p));
	p.kind = CONFIG_POLICY_DIGEST;
	p.digest_tag = "latest";
	assert_null(policy_best(&p, tags, n, NULL));
}

/* The OCI digest grammar and the tag grammar, as every sender is held to. */
static void
test_image_digest_tag_grammar(void **state)
{
	static const char *const good_digests[] = {
		D64,
		"sha512:" "0123456789abcdef0123456789abcdef0123456789abcdef"
		"0123456789abcdef0123456789abcdef0123456789abcdef"
		"0123456789abcdef0123456789abcdef",
		"blake3:0123456789abcdef0123456789abcdef0123456789abcdef"
		"0123456789abcdef",
		"multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8",
		"sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564",
		"x.y-z_w:a=",
	};
	static const char *const bad_digests[] = {
		"sha256:abc123", "sha256:" "0123456789ABCDEF0123456789abcdef"
		"0123456789abcdef0123456789abcdef", D64 "0", "sha512:" "0123",
		"blake3:xyz", "sha256", ":abc", "sha256:", "SHA256:abc",
		"+sha:abc", "sha+:abc", "sha++x:abc", "foo:a/b", "foo:a b",
		"foo:a:b", "foo:a.b",
	};
	static const char *const good_tags[] = {
		"1.2.3", "v1.2.3-rc.1", "_x", "latest", "A_b.C-d",
	};
	static const char *const bad_tags[] = {
		"", ".x", "-x", "a/b", "a:b", "a@b", "a b",
		"x0123456789012345678901234567890123456789012345678901234567890"
		"1234567890123456789012345678901234567890123456789012345678901"
		"234567",
	};
	size_t	 i;

	(void)state;
	for (i = 0; i < sizeof(good_digests) / sizeof(good_digests[0]); i++)
		if (!image_digest_valid(good_digests[i]))
			fail_msg("digest \"%s\" refused", good_digests[i]);
	for (i = 0; i < sizeof(bad_digests) / sizeof(bad_digests[0]); i++)
		if (image_digest_valid(bad_digests[i]))
			fail_msg("digest \"%s\" accepted", bad_digests[i]);
	for (i = 0; i < sizeof(good_tags) / sizeof(good_tags[0]); i++)
		if (!image_tag_valid(good_tags[i]))
			fail_msg("tag \"%s\" refused", good_tags[i]);
	for (i = 0; i < sizeof(bad_tags) / sizeof(bad_tags[0]); i++)
		if (image_tag_valid(bad_tags[i]))
			fail_msg("tag \"%s\" accepted", bad_tags[i]);
	assert_false(image_digest_valid(NULL));
	assert_false(image_tag_valid(NULL));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_policy_table),
		cmocka_unit_test(test_policy_accepts),
		cmocka_unit_test(test_policy_best),
		cmocka_unit_test(test_policy_validate),
		cmocka_unit_test(test_image_ref_parse),
		cmocka_unit_test(test_image_ref_same_repo),
		cmocka_unit_test(test_image_digest_tag_grammar),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
