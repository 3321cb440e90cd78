/* Unit tests for util.c: HMAC vectors, hex, capped buffers, form decoding. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "util.h"

/* The test vector from GitHub's "validating webhook deliveries" page. */
static void
test_hmac_github_vector(void **state)
{
	char	 out[65];
	const char *key = "It's a Secret to Everybody";
	const char *msg = "Hello, World!";

	(void)state;
	util_hmac_sha256_hex(key, strlen(key), msg, strlen(msg), out);
	assert_string_equal(out,
	    "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
}

static void
test_hex_roundtrip(void **state)
{
	unsigned char	 in[4] = { 0x00, 0xab, 0x7f, 0xff }, out[4];
	char		 hex[9];

	(void)state;
	util_hex(in, 4, hex);
	assert_string_equal(hex, "00ab7fff");
	assert_int_equal(util_unhex(hex, 8, out, 4), 4);
	assert_memory_equal(in, out, 4);
	assert_int_equal(util_unhex("0g", 2, out, 4), -1);
	assert_int_equal(util_unhex("abc", 3, out, 4), -1);
	assert_int_equal(util_unhex("0011223344", 10, out, 4), -1);
}

static void
test_ct_equal(void **state)
{
	(void)state;
	assert_true(util_ct_equal("abc", 3, "abc", 3));
	assert_false(util_ct_equal("abc", 3, "abd", 3));
	assert_false(util_ct_equal("abc", 3, "abcd", 4));
}

static void
test_buf_cap(void **state)
{
	struct buf	 b;

	(void)state;
	buf_init(&b, 8);
	assert_int_equal(buf_addstr(&b, "12345"), 0);
	assert_int_equal(buf_addstr(&b, "6789"), -1);
	assert_int_equal(b.len, 5);
	assert_string_equal(b.data, "12345");
	assert_int_equal(buf_addstr(&b, "678"), 0);
	assert_string_equal(b.data, "12345678");
	buf_free(&b);
}

static void
test_form_get(void **state)
{
	const char	*body = "a=1&payload=%7B%22x%22%3A+1%7D&b=2";
	char		*v;
	size_t		 n;

	(void)state;
	v = util_form_get(body, strlen(body), "payload", &n);
	assert_non_null(v);
	assert_string_equal(v, "{\"x\": 1}");
	assert_int_equal(n, 8);
	free(v);
	assert_null(util_form_get(body, strlen(body), "pay", NULL));
	assert_null(util_form_get("payload=%zz", 11, "payload", NULL));
	assert_null(util_form_get("payload=%4", 10, "payload", NULL));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hmac_github_vector),
		cmocka_unit_test(test_hex_roundtrip),
		cmocka_unit_test(test_ct_equal),
		cmocka_unit_test(test_buf_cap),
		cmocka_unit_test(test_form_get),
	};

	return cmocka_run_group_tests_name("util", tests, NULL, NULL);
}
