/* Unit tests for handler_json_parse: the strict JSON every handler uses. */
#include <pthread.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "handler.h"
#include "json_ref.h"
#include "util.h"

static void
expect_bad(const char *body, size_t len, const char *why_part)
{
	char	 why[256] = "";
	cJSON	*j;

	j = handler_json_parse(body, len, why, sizeof(why));
	if (j != NULL)
		fail_msg("accepted: %.80s", body);
	assert_non_null(strstr(why, why_part));
}

static void
test_good(void **state)
{
	const char	*b = "{\"a\": [1, 2, {\"b\": \"\\\\u0000 ok\"}], "
	    "\"c\": \"caf\xc3\xa9 \xf0\x9f\x9a\x80\"} \n";
	char		 why[256];
	cJSON		*j;

	(void)state;
	j = handler_json_parse(b, strlen(b), why, sizeof(why));
	assert_non_null(j);
	assert_string_equal(cJSON_GetObjectItem(j, "c")->valuestring,
	    "caf\xc3\xa9 \xf0\x9f\x9a\x80");
	cJSON_Delete(j);
	/* Keys alike in length, first and last byte are still different. */
	j = handler_json_parse("{\"axb\": 1, \"ayb\": 2}", 20, why,
	    sizeof(why));
	assert_non_null(j);
	cJSON_Delete(j);
}

static void
test_bad(void **state)
{
	char	 deep[300];
	size_t	 i;

	(void)state;
	expect_bad("", 0, "empty");
	expect_bad("{\"a\":1", 6, "malformed");
	expect_bad("{\"a\":1} x", 9, "trailing");
	expect_bad("{\"a\":1,\"a\":2}", 13, "duplicate JSON key \"a\"");
	expect_bad("{\"o\":{\"k\":1,\"x\":2,\"k\":3}}", 25, "duplicate");
	expect_bad("{\"a\":\"x\\u0000y\"}", 16, "u0000");
	expect_bad("{\"a\":\"\xff\"}", 8, "UTF-8");
	expect_bad("{\"a\":\"\xc0\xaf\"}", 9, "UTF-8");	/* overlong */
	expect_bad("{\"a\":\"\xed\xa0\x80\"}", 10, "UTF-8");	/* surrogate */
	expect_bad("{\"a\":1e999999}", 14, "out of range");
	expect_bad("{\"a\":\"b\"}\0", 10, "NUL");
	/* cJSON read a bad hex digit as U+0000 and cut the string there. */
	expect_bad("[\"ab\\u00zzcd\"]", 14, "escape");
	expect_bad("[\"\\ud800\"]", 10, "escape");	/* half a pair */
	expect_bad("[\"\\udc00\\ud800\"]", 16, "escape");
	expect_bad("[1,]", 4, "malformed JSON at byte 3");
	expect_bad("{\"axb\": 1, \"ayb\": 2, \"a\\u0078b\": 3}", 35,
	    "duplicate JSON key \"axb\"");
	expect_bad("[\"abc", 5, "not closed");
	for (i = 0; i < sizeof(deep); i++)
		deep[i] = '[';
	expect_bad(deep, sizeof(deep), "nested");
}

/* Reader and reference agree on bodies and on every one-byte change of
 * them: the same verdict, and the same tree where both accept. */
static void
same_as_reference(const char *doc, size_t len)
{
	char	 why[256], rwhy[256], where[256];
	cJSON	*a, *b;

	why[0] = rwhy[0] = '\0';
	a = handler_json_parse(doc, len, why, sizeof(why));
	b = json_ref_parse(doc, len, rwhy, sizeof(rwhy));
	if ((a == NULL) != (b == NULL))
		fail_msg("%.*s: reader %s (%s), reference %s (%s)", (int)len,
		    doc, a ? "accepts" : "refuses", why,
		    b ? "accepts" : "refuses", rwhy);
	if (a != NULL && !json_ref_same(a, b, where, sizeof(where)))
		fail_msg("%.*s: trees differ: %s", (int)len, doc, where);
	if (a == NULL)
		assert_true(why[0] != '\0');
	cJSON_Delete(a);
	cJSON_Delete(b);
}

static void
test_reference(void **state)
{
	static const char *const docs[] = {
		"{\"ref\": \"refs/heads/main\", \"commits\": [{\"id\": "
		    "\"0f3c\", \"added\": [\"a/b.yaml\"], \"n\": -12.5e-1}], "
		    "\"ok\": true, \"no\": false, \"x\": null}",
		"\xef\xbb\xbf{\"bom\": [01, 1., -0, 1E+2, 123456789012345678]}",
		"[\"\\u00e9\\ud83d\\ude80\\n\\t\\\"\\\\\\/\\b\\f\\r\", "
		    "\"raw \x01\x1f\", \"caf\xc3\xa9 \xf0\x9f\x9a\x80\"]",
		"\x01\x1f[\x0b" "1\x0c,\x7f" "2]\x0b",
		"[99999999999999999999999999999999999999999999999999999999999999"
		    "9999999999, 2147483648, -2147483649, 1e308]",
		"{\"a\": {\"b\": {\"c\": [[], {}, [[]]]}}, \"d\": \"\"}",
		/* Alike in length, first and last byte, yet different. */
		"{\"axb\": 1, \"ayb\": 2, \"azb\": [\"axb\"]}",
		"{\"axb\": 1, \"ayb\": 2, \"a\\u0078b\": 3}",
		/* More keys than are checked as they come. */
		"{\"k0\":0,\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,"
		    "\"k7\":7,\"k8\":8,\"k9\":9,\"ka\":10,\"kb\":11,\"kc\":12,"
		    "\"kd\":13,\"ke\":14,\"kf\":15,\"kg\":16,\"kh\":17,\"k1\":1}",
	};
	char	 m[512];
	size_t	 i, k, len;
	int	 v;
	static const char subst[] = { '\0', '"', '\\', '[', '}', ',', ':',
	    ' ', '\x0b', '0', 'e', '-', '.', 'u', '\x80', '\xc3', '\xff' };

	(void)state;
	for (i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		len = strlen(docs[i]);
		assert_true(len < sizeof(m));
		same_as_reference(docs[i], len);
		for (k = 0; k < len; k++) {
			for (v = 0; v < (int)sizeof(subst); v++) {
				memcpy(m, docs[i], len);
				m[k] = subst[v];
				same_as_reference(m, len);
			}
			/* And every prefix. */
			same_as_reference(docs[i], k);
		}
	}
}

static void *
other_thread_parse(void *arg)
{
	char	 why[64];
	cJSON	*j;
	int	*owned = arg;

	/* No bracket on this thread: plain malloc, whatever main does. */
	j = handler_json_parse("{\"x\": [1, 2]}", 13, why, sizeof(why));
	*owned = j == NULL || handler_json_arena_owns(j) ||
	    handler_json_arena_owns(j->child);
	cJSON_Delete(j);
	return NULL;
}

/*
 * Inside a bracket the tree is arena memory (also past the first buffer),
 * outside and on other threads it is not, and every tree can be deleted
 * either way.
 */
static void
test_arena(void **state)
{
	const char	*small = "{\"ref\": \"refs/heads/main\", \"n\": [1]}";
	char		*big, why[128];
	cJSON		*j, *k, *last;
	pthread_t	 t;
	size_t		 i, len, cap = 400000;
	int		 round, other = -1;

	(void)state;
	big = malloc(cap);
	assert_non_null(big);
	len = 0;
	big[len++] = '[';
	for (i = 0; i < 20000; i++)
		len += (size_t)snprintf(big + len, cap - len, "%s{\"k%zu\": "
		    "\"v\"}", i ? "," : "", i);
	big[len++] = ']';

	j = handler_json_parse(small, strlen(small), why, sizeof(why));
	assert_non_null(j);
	assert_false(handler_json_arena_owns(j));
	cJSON_Delete(j);

	for (round = 0; round < 3; round++) {
		handler_json_arena_begin();
		j = handler_json_parse(small, strlen(small), why, sizeof(why));
		assert_non_null(j);
		assert_true(handler_json_arena_owns(j));
		assert_true(handler_json_arena_owns(j->child->valuestring));
		/* Far more than the first buffer: overflow chunks. */
		k = handler_json_parse(big, len, why, sizeof(why));
		assert_non_null(k);
		assert_int_equal(cJSON_GetArraySize(k), 20000);
		last = cJSON_GetArrayItem(k, 19999);
		assert_true(handler_json_arena_owns(last));
		assert_string_equal(last->child->string, "k19999");
		assert_int_equal(pthread_create(&t, NULL, other_thread_parse,
		    &other), 0);
		assert_int_equal(pthread_join(t, NULL), 0);
		assert_int_equal(other, 0);
		cJSON_Delete(k);
		cJSON_Delete(j);
		handler_json_arena_end();
		assert_false(handler_json_arena_owns(j));
	}
	/* After the bracket, cJSON is back on malloc for this thread. */
	j = handler_json_parse(big, len, why, sizeof(why));
	assert_non_null(j);
	assert_false(handler_json_arena_owns(j));
	cJSON_Delete(j);
	free(big);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_reference),
		cmocka_unit_test(test_arena),
	};

	return cmocka_run_group_tests_name("handler_json", tests, NULL, NULL);
}
