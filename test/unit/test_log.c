/* Unit tests for log.c: batched lines of the loop thread, order kept. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <event2/event.h>

#include "log.h"

/* What stderr (a temporary file) holds so far. */
static char *
log_test_read(FILE *f)
{
	static char	 buf[8192];
	size_t		 n;

	fflush(f);
	rewind(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fseek(f, 0, SEEK_END);
	return buf;
}

static void
test_batch(void **state)
{
	struct event_base	*base;
	FILE			*f;
	char			*s, *a, *b;
	int			 saved;

	(void)state;
	log_init(LOG_LEVEL_DEBUG, LOG_FORMAT_TEXT);
	assert_non_null(f = tmpfile());
	fflush(stderr);
	saved = dup(2);
	assert_true(saved >= 0);
	assert_int_equal(dup2(fileno(f), 2), 2);
	assert_non_null(base = event_base_new());
	log_batch_start(base);

	log_kv(LOG_LEVEL_INFO, "first-line", NULL);
	/* Not written yet: it waits for the end of the loop iteration. */
	assert_null(strstr(log_test_read(f), "first-line"));
	/* A warning goes out at once, after what was pending. */
	log_kv(LOG_LEVEL_WARN, "second-line", NULL);
	s = log_test_read(f);
	assert_non_null(a = strstr(s, "first-line"));
	assert_non_null(b = strstr(s, "second-line"));
	assert_true(a < b);
	log_kv(LOG_LEVEL_INFO, "third-line", NULL);
	assert_null(strstr(log_test_read(f), "third-line"));
	assert_true(event_base_loop(base, EVLOOP_NONBLOCK) != -1);
	assert_non_null(strstr(log_test_read(f), "third-line"));
	/* After stop: written at once again, and pending lines are flushed. */
	log_kv(LOG_LEVEL_INFO, "fourth-line", NULL);
	log_batch_stop();
	assert_non_null(strstr(log_test_read(f), "fourth-line"));
	log_kv(LOG_LEVEL_INFO, "fifth-line", NULL);
	assert_non_null(strstr(log_test_read(f), "fifth-line"));

	event_base_free(base);
	fflush(stderr);
	assert_int_equal(dup2(saved, 2), 2);
	close(saved);
	fclose(f);
}

/*
 * Fields: plain values bare, values with blanks, quotes or '=' and empty
 * ones quoted, quotes and backslashes escaped, control bytes and broken
 * UTF-8 as \u00XX, valid UTF-8 kept, NULL as "-"; the same in JSON.
 */
static void
test_fields(void **state)
{
	FILE	*f;
	char	*s, big[3000];
	int	 saved;

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_non_null(f = tmpfile());
	fflush(stderr);
	saved = dup(2);
	assert_true(saved >= 0);
	assert_int_equal(dup2(fileno(f), 2), 2);
	log_init(LOG_LEVEL_DEBUG, LOG_FORMAT_TEXT);
	log_kv(LOG_LEVEL_INFO, "request", "peer", "127.0.0.1:5", "path",
	    "/a b", "q", "say \"hi\"\\", "e", "", "n", NULL, "eq", "a=b",
	    "ctl", "x\001\xff\xc3\xa9y", "big", big, "last", "z", NULL);
	s = log_test_read(f);
	assert_non_null(strstr(s, " request peer=127.0.0.1:5 path=\"/a b\" "
	    "q=\"say \\\"hi\\\"\\\\\" e=\"\" n=- eq=\"a=b\" "
	    "ctl=x\\u0001\\u00ff\xc3\xa9y big=xxx"));
	assert_non_null(strstr(s, "xxx last=z\n"));
	log_init(LOG_LEVEL_DEBUG, LOG_FORMAT_JSON);
	log_kv(LOG_LEVEL_INFO, "json-line", "path", "/a \"b\"", "n", NULL,
	    NULL);
	s = log_test_read(f);
	assert_non_null(strstr(s, "\"path\":\"/a \\\"b\\\"\",\"n\":\"-\""));
	log_init(LOG_LEVEL_DEBUG, LOG_FORMAT_TEXT);
	fflush(stderr);
	assert_int_equal(dup2(saved, 2), 2);
	close(saved);
	fclose(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_batch),
		cmocka_unit_test(test_fields),
	};

	return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
