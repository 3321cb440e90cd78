/* Unit tests for util.c: HMAC vectors, hex, capped buffers, form decoding. */
#include <pthread.h>
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

static const char jefe_msg[] = "what do ya want for nothing?";
static const char jefe256[] =
    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";

static void *
hmac_thread(void *arg)
{
	util_hmac_sha256_hex("Jefe", 4, jefe_msg, strlen(jefe_msg), arg);
	return NULL;
}

/*
 * Each thread keeps a context keyed with the last digest and key: switching
 * key, digest or thread, and keys too long to keep, give the RFC 4231 and
 * RFC 2202 values every time (and a thread's context goes with it: the
 * sanitizers' leak check runs on this).
 */
static void
test_hmac_key_switch(void **state)
{
	unsigned char	 big[131];
	char		 out[65];
	const char	*gh = "It's a Secret to Everybody", *hello = "Hello, World!";
	pthread_t	 t;
	int		 i;

	(void)state;
	memset(big, 0xaa, sizeof(big));
	for (i = 0; i < 2; i++) {
		util_hmac_sha256_hex("Jefe", 4, jefe_msg, strlen(jefe_msg), out);
		assert_string_equal(out, jefe256);
	}
	/* Same length as "Jefe", other bytes. */
	util_hmac_sha256_hex("Jeff", 4, jefe_msg, strlen(jefe_msg), out);
	assert_string_not_equal(out, jefe256);
	util_hmac_sha256_hex("Jefe", 4, jefe_msg, strlen(jefe_msg), out);
	assert_string_equal(out, jefe256);
	util_hmac_sha1_hex("Jefe", 4, jefe_msg, strlen(jefe_msg), out);
	assert_string_equal(out, "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
	util_hmac_sha256_hex(gh, strlen(gh), hello, strlen(hello), out);
	assert_string_equal(out,
	    "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
	for (i = 0; i < 2; i++) {
		util_hmac_sha256_hex(big, sizeof(big), "Test Using Larger Than "
		    "Block-Size Key - Hash Key First", 54, out);
		assert_string_equal(out, "60e431591ee0b67f0d8a26aacbf5b77f"
		    "8e0bc6213728c5140546040f0ee37f54");
	}
	util_hmac_sha256_hex("", 0, "", 0, out);
	assert_string_equal(out,
	    "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
	memset(out, 0, sizeof(out));
	assert_int_equal(pthread_create(&t, NULL, hmac_thread, out), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_string_equal(out, jefe256);
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
		cmocka_unit_test(test_hmac_key_switch),
		cmocka_unit_test(test_hex_roundtrip),
		cmocka_unit_test(test_ct_equal),
		cmocka_unit_test(test_buf_cap),
		cmocka_unit_test(test_form_get),
	};

	return cmocka_run_group_tests_name("util", tests, NULL, NULL);
}
