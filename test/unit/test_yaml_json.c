/* Unit tests for yaml_json.c: typing, multi-document streams, rejections. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "yaml_json.h"

static char	 err[256];

/* Parse one document and return it printed compactly (caller frees). */
static char *
one_json(const char *yaml)
{
	cJSON	*doc;
	char	*s;

	doc = yaml_json_parse_one(yaml, strlen(yaml), err, sizeof(err));
	if (doc == NULL)
		return NULL;
	s = cJSON_PrintUnformatted(doc);
	cJSON_Delete(doc);
	return s;
}

static void
expect_json(const char *yaml, const char *json)
{
	char	*s = one_json(yaml);

	if (s == NULL)
		fail_msg("parse failed: %s", err);
	assert_string_equal(s, json);
	free(s);
}

static void
expect_error(const char *yaml, const char *fragment)
{
	char	*s = one_json(yaml);

	if (s != NULL) {
		fail_msg("parsed, expected error: %s", s);
		free(s);
	}
	if (strstr(err, fragment) == NULL)
		fail_msg("error \"%s\" does not mention \"%s\"", err, fragment);
}

static void
test_core_scalars(void **state)
{
	(void)state;
	expect_json("a: true\nb: False\nc: null\nd: ~\ne:\nf: 42\ng: -7\n"
	    "h: 0x1f\ni: 0o17\nj: 1.5\nk: 2e3\nl: hello\n",
	    "{\"a\":true,\"b\":false,\"c\":null,\"d\":null,\"e\":null,"
	    "\"f\":42,\"g\":-7,\"h\":31,\"i\":15,\"j\":1.5,\"k\":2000,"
	    "\"l\":\"hello\"}");
	/* Quoted and !!str stay strings; YAML 1.1 words are strings in 1.2. */
	expect_json("a: \"true\"\nb: '42'\nc: !!str 3\nd: yes\ne: on\n"
	    "f: \"null\"\ng: 1.2.3\nh: 0777\n",
	    "{\"a\":\"true\",\"b\":\"42\",\"c\":\"3\",\"d\":\"yes\","
	    "\"e\":\"on\",\"f\":\"null\",\"g\":\"1.2.3\",\"h\":777}");
}

static void
test_big_int_exact(void **state)
{
	(void)state;
	expect_json("n: 123456789012345678901234567890\n",
	    "{\"n\":123456789012345678901234567890}");
}

static void
test_nested(void **state)
{
	(void)state;
	expect_json("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"
	    "  labels: {a: b}\ndata:\n  list: |\n    one\n    two\nitems:\n"
	    "- 1\n- [x, {y: z}]\n",
	    "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":"
	    "{\"name\":\"x\",\"labels\":{\"a\":\"b\"}},\"data\":{\"list\":"
	    "\"one\\ntwo\\n\"},\"items\":[1,[\"x\",{\"y\":\"z\"}]]}");
}

static void
test_multi_document(void **state)
{
	const char	*y = "---\na: 1\n---\n# only a comment\n---\nb: 2\n...\n---\n";
	cJSON		**docs;
	size_t		 n;

	(void)state;
	assert_int_equal(yaml_json_parse(y, strlen(y), NULL, &docs, &n, err,
	    sizeof(err)), 0);
	assert_int_equal(n, 2);
	assert_int_equal(cJSON_GetObjectItem(docs[0], "a")->valueint, 1);
	assert_int_equal(cJSON_GetObjectItem(docs[1], "b")->valueint, 2);
	yaml_json_free(docs, n);
}

static void
test_rejections(void **state)
{
	struct yaml_json_limits	 lim = { .max_depth = 4 };
	const char		*deep = "a: {b: {c: {d: {e: 1}}}}\n";
	cJSON			**docs;
	size_t			 n;

	(void)state;
	expect_error("a: &x {k: v}\nb: *x\n", "aliases");
	expect_error("a: 1\na: 2\n", "duplicate key \"a\"");
	expect_error("? [a]\n: 1\n", "mapping key must be a scalar");
	expect_error("a: .inf\n", "cannot be represented");
	expect_error("a: !!int abc\n", "not a valid");
	expect_error("a: [1, 2\n", "line ");
	expect_error("a: 1\n---\nb: 2\n", "expected one YAML document");
	assert_int_equal(yaml_json_parse(deep, strlen(deep), &lim, &docs, &n,
	    err, sizeof(err)), -1);
	assert_non_null(strstr(err, "nesting deeper than 4"));
	lim.max_depth = 0;
	lim.max_bytes = 8;
	assert_int_equal(yaml_json_parse(deep, strlen(deep), &lim, &docs, &n,
	    err, sizeof(err)), -1);
	assert_non_null(strstr(err, "over the limit"));
}

static void
test_billion_laughs_rejected(void **state)
{
	const char	*y = "a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n";
	cJSON		**docs;
	size_t		 n;

	(void)state;
	assert_int_equal(yaml_json_parse(y, strlen(y), NULL, &docs, &n, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "line 2"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_core_scalars),
		cmocka_unit_test(test_big_int_exact),
		cmocka_unit_test(test_nested),
		cmocka_unit_test(test_multi_document),
		cmocka_unit_test(test_rejections),
		cmocka_unit_test(test_billion_laughs_rejected),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
