/*
 * Unit tests for manifest.c: the golden-file suite (every directory under
 * test/fixtures/manifests holds input.yaml, a job file and expected.yaml,
 * compared byte for byte), plus reference normalization and limits.
 *
 * job file: key=value lines
 *   image=REPOSITORY  tag=T  digest=D  marker=APP:IMAGE (default web:<last>)
 *   file=NAME (the path the input is known by; default deploy.yaml)
 *   newer=semver      (never-downgrade order: dotted numbers)
 *   error=SUBSTRING   (the file must be refused with this in the message)
 *   changed=N already=N skipped=N unsupported=N (counts to check)
 */
#include <sys/stat.h>

#include <dirent.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "manifest.h"
#include "util.h"

#ifndef FIXTURES
#define FIXTURES "test/fixtures/manifests"
#endif

/* Dotted numeric order ("1.10.0" > "1.9.3"); NULL is older than anything. */
static int
dotted_newer(void *arg, const char *cur, const char *cand)
{
	const char	*a = cur, *b = cand;
	char		*ea, *eb;
	long		 x, y;

	(void)arg;
	if (cur == NULL)
		return 1;
	while (*a == 'v')
		a++;
	while (*b == 'v')
		b++;
	for (;;) {
		x = strtol(a, &ea, 10);
		y = strtol(b, &eb, 10);
		if (ea == a || eb == b)
			return 0;
		if (x != y)
			return y > x;
		if (*ea != '.' || *eb != '.')
			return *eb == '.' && *ea != '.';
		a = ea + 1;
		b = eb + 1;
	}
}

struct jobfile {
	char	 image[256], tag[128], digest[128], marker[128], file[256];
	char	 newer[32], error[256];
	int	 changed, already, skipped, unsupported;
};

static int
jobfile_read(const char *path, struct jobfile *j)
{
	char	 line[512], *eq;
	FILE	*f;

	memset(j, 0, sizeof(*j));
	j->changed = j->already = j->skipped = j->unsupported = -1;
	snprintf(j->file, sizeof(j->file), "deploy.yaml");
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0] == '#' || (eq = strchr(line, '=')) == NULL)
			continue;
		*eq++ = '\0';
#define JF(k, field) if (strcmp(line, k) == 0) \
		snprintf(j->field, sizeof(j->field), "%s", eq);
		JF("image", image) JF("tag", tag) JF("digest", digest)
		JF("marker", marker) JF("file", file) JF("newer", newer)
		JF("error", error)
#undef JF
		if (strcmp(line, "changed") == 0)
			j->changed = atoi(eq);
		if (strcmp(line, "already") == 0)
			j->already = atoi(eq);
		if (strcmp(line, "skipped") == 0)
			j->skipped = atoi(eq);
		if (strcmp(line, "unsupported") == 0)
			j->unsupported = atoi(eq);
	}
	fclose(f);
	if (j->marker[0] == '\0')
		snprintf(j->marker, sizeof(j->marker), "web:%s",
		    manifest_marker_image(j->image));
	return 0;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* One golden case; returns 0 or prints why and returns -1. */
static int
golden_case(const char *dir, const char *name)
{
	struct jobfile		 j;
	struct manifest_target	 t;
	struct manifest_result	 res;
	char			*path, *in, *exp = NULL, err[512];
	size_t			 inlen, explen = 0;
	int			 rc = -1, r;

	path = xasprintf("%s/%s/job", dir, name);
	r = jobfile_read(path, &j);
	free(path);
	if (r == -1) {
		print_error("%s: no job file\n", name);
		return -1;
	}
	path = xasprintf("%s/%s/input.yaml", dir, name);
	in = util_read_file(path, 4 << 20, &inlen);
	free(path);
	if (in == NULL) {
		print_error("%s: no input.yaml\n", name);
		return -1;
	}
	memset(&t, 0, sizeof(t));
	t.image = j.image;
	t.tag = j.tag[0] != '\0' ? j.tag : NULL;
	t.digest = j.digest[0] != '\0' ? j.digest : NULL;
	t.marker = j.marker;
	if (strcmp(j.newer, "semver") == 0)
		t.newer = dotted_newer;
	r = manifest_update(j.file, in, inlen, &t, &res, err, sizeof(err));
	if (j.error[0] != '\0') {
		if (r != -1 || strstr(err, j.error) == NULL) {
			print_error("%s: expected error \"%s\", got rc %d \"%s\"\n",
			    name, j.error, r, r == -1 ? err : "");
			goto out;
		}
		rc = 0;
		goto out;
	}
	if (r == -1) {
		print_error("%s: %s\n", name, err);
		goto out;
	}
	path = xasprintf("%s/%s/expected.yaml", dir, name);
	exp = util_read_file(path, 4 << 20, &explen);
	free(path);
	if (exp == NULL) {
		print_error("%s: no expected.yaml\n", name);
		goto done;
	}
	if (res.out == NULL) {
		if (explen != inlen || memcmp(exp, in, inlen) != 0) {
			print_error("%s: file unchanged but expected differs "
			    "(note: %s)\n", name, res.note ? res.note : "-");
			goto done;
		}
	} else if (res.outlen != explen || memcmp(res.out, exp, explen) != 0) {
		print_error("%s: output differs from expected.yaml:\n"
		    "--- got (%zu bytes)\n%.*s\n--- want (%zu bytes)\n%s\n",
		    name, res.outlen, (int)res.outlen, res.out, explen, exp);
		goto done;
	}
#define CHECK(f) if (j.f >= 0 && res.f != j.f) { \
		print_error("%s: " #f " %d, want %d\n", name, res.f, j.f); \
		goto done; }
	CHECK(changed) CHECK(already) CHECK(skipped) CHECK(unsupported)
#undef CHECK
	rc = 0;
done:
	manifest_result_free(&res);
out:
	free(exp);
	free(in);
	return rc;
}

static void
test_golden(void **state)
{
	DIR		*d;
	struct dirent	*de;
	char		**names = NULL;
	size_t		 n = 0, i;
	int		 failed = 0;

	(void)state;
	d = opendir(FIXTURES);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		names = xreallocarray(names, n + 1, sizeof(*names));
		names[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(*names), name_cmp);
	for (i = 0; i < n; i++) {
		if (golden_case(FIXTURES, names[i]) == -1)
			failed++;
		else
			print_message("golden %s: ok\n", names[i]);
		free(names[i]);
	}
	free(names);
	assert_true(n >= 25);
	assert_int_equal(failed, 0);
}

static void
test_image_name(void **state)
{
	static const char *const cases[][2] = {
		{ "nginx", "docker.io/library/nginx" },
		{ "nginx:1.25", "docker.io/library/nginx" },
		{ "docker.io/nginx:1.25", "docker.io/library/nginx" },
		{ "index.docker.io/library/nginx", "docker.io/library/nginx" },
		{ "acme/web:1", "docker.io/acme/web" },
		{ "registry.acme.io/acme/web:1.2@sha256:"
		    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		    "registry.acme.io/acme/web" },
		{ "localhost:5000/web:3", "localhost:5000/web" },
		{ "localhost/web", "localhost/web" },
	};
	size_t	 i;
	char	*s;

	(void)state;
	for (i = 0; i < nitems(cases); i++) {
		s = manifest_image_name(cases[i][0]);
		assert_non_null(s);
		assert_string_equal(s, cases[i][1]);
		free(s);
	}
	assert_null(manifest_image_name(""));
	assert_null(manifest_image_name("a b"));
	assert_string_equal(manifest_marker_image("registry.acme.io/acme/web"),
	    "web");
}

static void
test_limits(void **state)
{
	struct manifest_target	 t = { .image = "acme/web", .tag = "2",
	    .marker = "web:web" };
	struct manifest_result	 res;
	struct buf		 b;
	char			 err[256];
	int			 i;

	(void)state;
	/* Deep nesting is refused with a position. */
	buf_init(&b, 0);
	for (i = 0; i < 200; i++)
		buf_addstr(&b, "[");
	for (i = 0; i < 200; i++)
		buf_addstr(&b, "]");
	assert_int_equal(manifest_update("deep.yaml", b.data, b.len, &t, &res,
	    err, sizeof(err)), -1);
	assert_non_null(strstr(err, "deep.yaml:1:"));
	assert_non_null(strstr(err, "nesting"));
	buf_free(&b);

	/* Alias bomb: many aliases are refused, never expanded. */
	buf_init(&b, 0);
	buf_addstr(&b, "a: &a [x, x, x, x, x, x, x, x, x]\n");
	buf_addstr(&b, "b: [");
	for (i = 0; i < 1000; i++)
		buf_addstr(&b, "*a, ");
	buf_addstr(&b, "*a]\n");
	assert_int_equal(manifest_update("bomb.yaml", b.data, b.len, &t, &res,
	    err, sizeof(err)), -1);
	assert_non_null(strstr(err, "aliases"));
	buf_free(&b);

	/* Oversized files are refused before parsing. */
	buf_init(&b, 0);
	for (i = 0; i < (MANIFEST_MAX_BYTES / 16) + 2; i++)
		buf_addstr(&b, "# padding line.\n");
	assert_int_equal(manifest_update("big.yaml", b.data, b.len, &t, &res,
	    err, sizeof(err)), -1);
	assert_non_null(strstr(err, "larger"));
	buf_free(&b);

	/* Invalid UTF-8 and UTF-16 are refused. */
	assert_int_equal(manifest_update("bad.yaml", "a: \xff\xfe\n", 7, &t,
	    &res, err, sizeof(err)), -1);
	assert_int_equal(manifest_update("u16.yaml", "\xff\xfe" "a\0:\0", 6, &t,
	    &res, err, sizeof(err)), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden),
		cmocka_unit_test(test_image_name),
		cmocka_unit_test(test_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
