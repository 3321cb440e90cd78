/*
 * Token-bucket reservations (daemon/ratelimit.c) on a clock the test moves.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ratelimit.h"

/* Each reservation takes a token: evaluate it once. */
static void
near(double got, double want, int line)
{
	if (!(got > want - 1e-9 && got < want + 1e-9))
		fail_msg("line %d: waited %.9f, want %.9f", line, got, want);
}
#define NEAR(a, b)	near((a), (b), __LINE__)

/* A full bucket gives burst tokens at once; the next callers are spaced
 * one interval apart, each told its own wait. */
static void
test_burst_then_spaced(void **state)
{
	struct ratelimit	 r = { 0 };
	int			 i;

	(void)state;
	for (i = 0; i < 3; i++)
		NEAR(ratelimit_reserve(&r, 10, 3, 100.0), 0);
	NEAR(ratelimit_reserve(&r, 10, 3, 100.0), 0.1);
	NEAR(ratelimit_reserve(&r, 10, 3, 100.0), 0.2);
	NEAR(ratelimit_reserve(&r, 10, 3, 100.0), 0.3);
	/* 0.3 s later the three reserved tokens are paid for: empty again. */
	NEAR(ratelimit_reserve(&r, 10, 3, 100.3), 0.1);
}

/* Idle time refills up to burst and no further. */
static void
test_refill_capped(void **state)
{
	struct ratelimit	 r = { 0 };
	int			 i;

	(void)state;
	NEAR(ratelimit_reserve(&r, 2, 2, 0.0), 0);
	NEAR(ratelimit_reserve(&r, 2, 2, 0.0), 0);
	NEAR(ratelimit_reserve(&r, 2, 2, 0.0), 0.5);
	for (i = 0; i < 2; i++)
		NEAR(ratelimit_reserve(&r, 2, 2, 1000.0), 0);
	NEAR(ratelimit_reserve(&r, 2, 2, 1000.0), 0.5);
	/* A clock that steps back refills nothing. */
	NEAR(ratelimit_reserve(&r, 2, 2, 999.0), 1.0);
}

/* rate 0 is unlimited; a burst below one still lets one through. */
static void
test_unlimited_and_small_burst(void **state)
{
	struct ratelimit	 r = { 0 }, s = { 0 };
	int			 i;

	(void)state;
	for (i = 0; i < 1000; i++)
		NEAR(ratelimit_reserve(&r, 0, 0, 5.0), 0);
	NEAR(ratelimit_reserve(&s, 0.5, 0, 5.0), 0);
	NEAR(ratelimit_reserve(&s, 0.5, 0, 5.0), 2.0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burst_then_spaced),
		cmocka_unit_test(test_refill_capped),
		cmocka_unit_test(test_unlimited_and_small_burst),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
