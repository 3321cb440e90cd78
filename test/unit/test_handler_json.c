/* Unit tests for handler_json_parse: the strict JSON every handler uses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "handler.h"
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
	for (i = 0; i < sizeof(deep); i++)
		deep[i] = '[';
	expect_bad(deep, sizeof(deep), "nested");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_bad),
	};

	return cmocka_run_group_tests_name("handler_json", tests, NULL, NULL);
}
