/*
 * job_advance (daemon/job.c): what one finished attempt does to its job,
 * decided from the config, the job and the result alone: no store, no
 * threads, no clock, the backoff's jitter given.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"
#include "job.h"

static struct config	 cfg;

static int
setup(void **state)
{
	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	cfg.retry.base_s = 5;
	cfg.retry.max_s = 300;
	cfg.retry.max_attempts = 3;
	cfg.notify.max_attempts = 10;
	return 0;
}

static struct job
job_of(enum job_kind kind, int attempts)
{
	struct job	 j;

	memset(&j, 0, sizeof(j));
	j.id = 7;
	j.kind = kind;
	j.attempts = attempts;
	return j;
}

static void
test_success(void **state)
{
	struct job		 j = job_of(JOB_SYNC, 1);
	struct job_result	 res = { .ok = 1 };
	struct job_advance	 a;

	(void)state;
	job_advance(&cfg, &j, &res, 1, 1000, 1500, 0.5, &a);
	assert_int_equal(a.state, JOB_SUCCEEDED);
	assert_int_equal(a.attempts, 2);
	assert_int_equal(a.started_ms, 1000);
	assert_int_equal(a.not_before_ms, 0);
	assert_null(a.error);
	assert_true(a.ended);
	assert_true(a.final);
	assert_false(a.followups);
}

/* A failure with attempts left is retried after a full-jitter backoff
 * capped at base * 2^(attempts-1); the jitter picks the point. */
static void
test_failure_backoff(void **state)
{
	struct job		 j = job_of(JOB_UPDATE_IMAGE, 1);
	struct job_result	 res = { .error = "push refused" };
	struct job_advance	 a;

	(void)state;
	job_advance(&cfg, &j, &res, 1, 1000, 2000, 0.5, &a);
	assert_int_equal(a.state, JOB_FAILED);
	assert_int_equal(a.attempts, 2);
	/* Second attempt failed: cap 10 s, half of it. */
	assert_int_equal(a.not_before_ms, 2000 + 5000);
	assert_string_equal(a.error, "push refused");
	assert_true(a.ended);
	assert_false(a.final);		/* a retry is not an outcome */
	job_advance(&cfg, &j, &res, 1, 1000, 2000, 0.0, &a);
	assert_int_equal(a.not_before_ms, 2000);
	/* No error text: still a failure with a reason. */
	res.error = NULL;
	job_advance(&cfg, &j, &res, 1, 1000, 2000, 0.0, &a);
	assert_string_equal(a.error, "failed");
}

/* Retry-After raises the pause, up to max_s; the cap stops at max_s. */
static void
test_backoff_bounds(void **state)
{
	(void)state;
	assert_int_equal(job_backoff_ms(5, 300, 1, 0, 0.999999), 4999);
	assert_int_equal(job_backoff_ms(5, 300, 3, 0, 1.0), 20000);
	assert_int_equal(job_backoff_ms(5, 300, 1000, 0, 1.0), 300000);
	assert_int_equal(job_backoff_ms(5, 300, 1, 60, 0.1), 60000);
	assert_int_equal(job_backoff_ms(5, 300, 1, 86400, 0.1), 300000);
	/* Below one second a base is one second; max below base is base. */
	assert_int_equal(job_backoff_ms(0, 0, 1, 0, 1.0), 1000);
}

/* Out of attempts, or a permanent failure: dead, the app's outcome. */
static void
test_dead(void **state)
{
	struct job		 j = job_of(JOB_SYNC, 2);
	struct job_result	 res = { .error = "unreachable" };
	struct job_advance	 a;

	(void)state;
	job_advance(&cfg, &j, &res, 1, 1000, 2000, 0.5, &a);
	assert_int_equal(a.state, JOB_DEAD);
	assert_int_equal(a.attempts, 3);
	assert_int_equal(a.not_before_ms, 0);
	assert_true(a.final);
	/* The stored limit wins (a manual retry raised it). */
	j.max_attempts = 6;
	job_advance(&cfg, &j, &res, 1, 1000, 2000, 0.5, &a);
	assert_int_equal(a.state, JOB_FAILED);
	/* Permanent: dead at the first attempt. */
	j = job_of(JOB_SYNC, 0);
	res.permanent = 1;
	job_advance(&cfg, &j, &res, 1, 1000, 2000, 0.5, &a);
	assert_int_equal(a.state, JOB_DEAD);
	assert_int_equal(a.attempts, 1);
}

/* Notify jobs count against notify.max_attempts. */
/*
 * An interrupted attempt (its runner stopped; the lease was taken over):
 * counted, and the job runs again at once, no backoff, no outcome; the
 * last one is dead, a failure like any attempt's (its alert, the app's
 * outcome).
 */
static void
test_interrupted(void **state)
{
	struct job		 j = job_of(JOB_SYNC, 0);
	struct job_result	 res = { .ok = 0, .interrupted = 1,
				    .err_kind = JOB_ERR_INTERRUPTED,
				    .error = "interrupted" };
	struct job_advance	 a;

	(void)state;
	job_advance(&cfg, &j, &res, 1, 1000, 2000, 0.9, &a);
	assert_int_equal(a.state, JOB_QUEUED);
	assert_int_equal(a.attempts, 1);
	assert_int_equal(a.not_before_ms, 0);
	assert_true(a.ended);
	assert_false(a.final);
	assert_string_equal(a.error, "interrupted");

	j.attempts = 2;		/* its third and last attempt */
	job_advance(&cfg, &j, &res, 1, 1000, 2000, 0.9, &a);
	assert_int_equal(a.state, JOB_DEAD);
	assert_int_equal(a.attempts, 3);
	assert_true(a.ended);
	assert_true(a.final);
	assert_string_equal(a.error, "interrupted");
	/* A stored limit wins, as for any attempt. */
	j.attempts = 2;
	j.max_attempts = 5;
	job_advance(&cfg, &j, &res, 1, 1000, 2000, 0.9, &a);
	assert_int_equal(a.state, JOB_QUEUED);
}

static void
test_notify_limit(void **state)
{
	struct job		 j = job_of(JOB_NOTIFY, 5);
	struct job_result	 res = { .error = "sink down" };
	struct job_advance	 a;

	(void)state;
	job_advance(&cfg, &j, &res, 1, 1000, 2000, 0.5, &a);
	assert_int_equal(a.state, JOB_FAILED);
	j.attempts = 9;
	job_advance(&cfg, &j, &res, 1, 1000, 2000, 0.5, &a);
	assert_int_equal(a.state, JOB_DEAD);
	assert_int_equal(job_max_attempts(&cfg, JOB_NOTIFY), 10);
	assert_int_equal(job_max_attempts(&cfg, JOB_SYNC), 3);
}

/* Follow-ups: a succeeded run's head inserts them, once; the success is
 * then not the app's final outcome (the sync decides). */
static void
test_followups(void **state)
{
	struct job		 j = job_of(JOB_UPDATE_IMAGE, 0);
	struct job_spec		 sync = { .kind = JOB_SYNC, .app = "web" };
	struct job_result	 res = { .ok = 1, .followups = &sync,
				    .nfollowups = 1 };
	struct job_advance	 a;

	(void)state;
	job_advance(&cfg, &j, &res, 1, 1000, 2000, 0.5, &a);
	assert_true(a.followups);
	assert_false(a.final);
	job_advance(&cfg, &j, &res, 0, 1000, 2000, 0.5, &a);
	assert_false(a.followups);
	/* A failed run inserts none. */
	res.ok = 0;
	job_advance(&cfg, &j, &res, 1, 1000, 2000, 0.5, &a);
	assert_false(a.followups);
}

/* Applied, not healthy yet: waiting, not an attempt's end; the pause is
 * kept between 10 ms and a minute; a looked-at job's attempt began with
 * its apply. */
static void
test_waiting(void **state)
{
	struct job		 j = job_of(JOB_SYNC, 1);
	struct job_result	 res = { .wait = "{\"x\":1}", .wait_ms = 2000 };
	struct job_advance	 a;

	(void)state;
	job_advance(&cfg, &j, &res, 1, 1000, 1500, 0.5, &a);
	assert_int_equal(a.state, JOB_WAITING);
	assert_int_equal(a.attempts, 1);
	assert_int_equal(a.not_before_ms, 3500);
	assert_int_equal(a.started_ms, 1000);
	assert_false(a.ended);
	assert_null(a.error);
	res.wait_ms = 0;
	job_advance(&cfg, &j, &res, 1, 1000, 1500, 0.5, &a);
	assert_int_equal(a.not_before_ms, 1500 + JOB_WAIT_MIN_MS);
	res.wait_ms = 3600000;
	job_advance(&cfg, &j, &res, 1, 1000, 1500, 0.5, &a);
	assert_int_equal(a.not_before_ms, 1500 + JOB_WAIT_MAX_MS);

	/* The look that ends it: the attempt spans from the apply. */
	j.wait = "{\"x\":1}";
	j.started_ms = 400;
	res.wait = NULL;
	res.ok = 1;
	job_advance(&cfg, &j, &res, 1, 1000, 1500, 0.5, &a);
	assert_int_equal(a.state, JOB_SUCCEEDED);
	assert_int_equal(a.started_ms, 400);
	assert_int_equal(a.attempts, 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_success, setup),
		cmocka_unit_test_setup(test_failure_backoff, setup),
		cmocka_unit_test_setup(test_backoff_bounds, setup),
		cmocka_unit_test_setup(test_dead, setup),
		cmocka_unit_test_setup(test_interrupted, setup),
		cmocka_unit_test_setup(test_notify_limit, setup),
		cmocka_unit_test_setup(test_followups, setup),
		cmocka_unit_test_setup(test_waiting, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
