/*
 * Unit tests for gitopsctl's output: table alignment, sanitizing of text
 * from the daemon, JSON cell values, query building, argument parsing.
 * The tool's source is compiled in (without its main) so its static
 * helpers can be tested; the requests themselves are tested against a
 * real gitopsd in test/integration/test_gitopsctl.py.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define GITOPSCTL_NO_MAIN 1
#include "../../tools/gitopsctl.c"

/* Print t into a malloc'd string. */
static char *
print_table(struct ctl_table *t)
{
	char	*out = NULL;
	size_t	 len = 0;
	FILE	*fp;

	fp = open_memstream(&out, &len);
	assert_non_null(fp);
	ctl_table_print(t, fp);
	assert_int_equal(fclose(fp), 0);
	return out;
}

static void
test_table_aligns_columns(void **state)
{
	struct ctl_table	*t;
	char			*out;

	(void)state;
	t = ctl_table_new(3, 1, NULL);
	ctl_table_add(t, "ID", 0);
	ctl_table_add(t, "STATE", 0);
	ctl_table_add(t, "APP", 0);
	ctl_table_add(t, "7", 0);
	ctl_table_add(t, "succeeded", 0);
	ctl_table_add(t, "web", 0);
	ctl_table_add(t, "123", 0);
	ctl_table_add(t, NULL, 0);	/* null shows as "-" */
	ctl_table_add(t, "api-gateway", 0);
	out = print_table(t);
	assert_string_equal(out,
	    "ID   STATE      APP\n"
	    "7    succeeded  web\n"
	    "123  -          api-gateway\n");
	free(out);
	ctl_table_free(t);
}

static void
test_table_counts_characters_not_bytes(void **state)
{
	struct ctl_table	*t;
	char			*out;

	(void)state;
	t = ctl_table_new(2, 0, "  ");
	ctl_table_add(t, "caf\xc3\xa9", 0);	/* 4 characters, 5 bytes */
	ctl_table_add(t, "x", 0);
	ctl_table_add(t, "abcd", 0);
	ctl_table_add(t, "y", 0);
	ctl_table_add(t, "ab", 0);		/* short last row padded */
	out = print_table(t);
	assert_string_equal(out,
	    "  caf\xc3\xa9  x\n"
	    "  abcd  y\n"
	    "  ab    -\n");
	free(out);
	ctl_table_free(t);
}

static void
test_sanitize_controls_and_bad_utf8(void **state)
{
	char	*s;
	size_t	 w;

	(void)state;
	/* An escape sequence cannot reach the terminal. */
	s = ctl_sanitize("a\x1b]0;pwned\x07z", 0, &w);
	assert_string_equal(s, "a?]0;pwned?z");
	assert_int_equal(w, 12);
	free(s);
	s = ctl_sanitize("line1\nline2\ttab\r", 0, NULL);
	assert_string_equal(s, "line1 line2 tab ");
	free(s);
	/* C1 control U+009B (CSI) encoded in UTF-8, an overlong '/', a
	 * surrogate, a lone continuation byte, a truncated sequence. */
	s = ctl_sanitize("\xc2\x9b" "\xc0\xaf" "\xed\xa0\x80" "\x80" "\xe2\x82",
	    0, &w);
	assert_string_equal(s, "??" "??" "???" "?" "??");
	free(s);
	/* Valid multibyte text is kept. */
	s = ctl_sanitize("\xe2\x9c\x93 ok \xf0\x9f\x9a\x80", 0, &w);
	assert_string_equal(s, "\xe2\x9c\x93 ok \xf0\x9f\x9a\x80");
	assert_int_equal(w, 6);
	free(s);
	s = ctl_sanitize("", 0, &w);
	assert_string_equal(s, "");
	assert_int_equal(w, 0);
	free(s);
}

static void
test_sanitize_cuts_long_text(void **state)
{
	char	*s;
	size_t	 w;

	(void)state;
	s = ctl_sanitize("abcdefghij", 8, &w);
	assert_string_equal(s, "abcde...");
	assert_int_equal(w, 8);
	free(s);
	/* Exactly max characters: not cut. */
	s = ctl_sanitize("abcdefgh", 8, &w);
	assert_string_equal(s, "abcdefgh");
	free(s);
	/* Cut on character boundaries. */
	s = ctl_sanitize("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 5,
	    &w);
	assert_string_equal(s, "\xc3\xa9\xc3\xa9...");
	assert_int_equal(w, 5);
	free(s);
}

static void
test_json_values(void **state)
{
	cJSON	*o;
	char	*s;

	(void)state;
	o = cJSON_Parse("{\"id\": 42, \"big\": 9007199254740991, \"r\": 1.5,"
	    "\"ok\": true, \"no\": false, \"n\": null, \"s\": \"x\","
	    "\"res\": {\"commit\": \"abc\"}, \"ids\": [1, 2]}");
	assert_non_null(o);
	s = ctl_field(o, "id");
	assert_string_equal(s, "42");
	free(s);
	s = ctl_field(o, "big");
	assert_string_equal(s, "9007199254740991");
	free(s);
	s = ctl_field(o, "r");
	assert_string_equal(s, "1.5");
	free(s);
	s = ctl_field(o, "ok");
	assert_string_equal(s, "yes");
	free(s);
	s = ctl_field(o, "no");
	assert_string_equal(s, "no");
	free(s);
	s = ctl_field(o, "n");
	assert_string_equal(s, "-");
	free(s);
	s = ctl_field(o, "missing");
	assert_string_equal(s, "-");
	free(s);
	s = ctl_field(o, "s");
	assert_string_equal(s, "x");
	free(s);
	s = ctl_field(o, "res");
	assert_string_equal(s, "{\"commit\":\"abc\"}");
	free(s);
	s = ctl_field(o, "ids");
	assert_string_equal(s, "[1,2]");
	free(s);
	cJSON_Delete(o);
}

static void
test_job_target(void **state)
{
	cJSON	*o;
	char	*s;

	(void)state;
	o = cJSON_Parse("{\"image\": \"registry.acme.io/web\", \"tag\": \"1.2.3\","
	    "\"digest\": null, \"revision\": null}");
	s = ctl_job_target(o, 0);
	assert_string_equal(s, "registry.acme.io/web:1.2.3");
	free(s);
	cJSON_Delete(o);
	o = cJSON_Parse("{\"image\": \"r/web\", \"tag\": null,"
	    "\"digest\": \"sha256:ab\"}");
	s = ctl_job_target(o, 0);
	assert_string_equal(s, "r/web@sha256:ab");
	free(s);
	cJSON_Delete(o);
	o = cJSON_Parse("{\"image\": null, \"revision\":"
	    "\"0123456789abcdef0123456789abcdef01234567\"}");
	s = ctl_job_target(o, 0);
	assert_string_equal(s, "0123456789ab");
	free(s);
	s = ctl_job_target(o, 1);
	assert_string_equal(s, "0123456789abcdef0123456789abcdef01234567");
	free(s);
	cJSON_Delete(o);
	o = cJSON_Parse("{}");
	s = ctl_job_target(o, 0);
	assert_string_equal(s, "-");
	free(s);
	cJSON_Delete(o);
}

static void
test_query_and_escape(void **state)
{
	struct ctl	 ctl;
	char		*s;

	(void)state;
	memset(&ctl, 0, sizeof ctl);
	s = ctl_query(&ctl);
	assert_string_equal(s, "");
	free(s);
	ctl.app = "my app&x=1";
	ctl.state = "dead";
	ctl.kind = "update-image";
	ctl.limit = 5;
	ctl.after = 1234567890123LL;
	s = ctl_query(&ctl);
	assert_string_equal(s, "?app=my%20app%26x%3D1&state=dead"
	    "&kind=update-image&limit=5&after=1234567890123");
	free(s);
	s = ctl_escape("../x/y");
	assert_string_equal(s, "..%2Fx%2Fy");
	free(s);
}

static void
test_parse_numbers(void **state)
{
	long long	id;

	(void)state;
	assert_int_equal(ctl_parse_id("42", &id), 0);
	assert_true(id == 42);
	assert_int_equal(ctl_parse_id("0", &id), -1);
	assert_int_equal(ctl_parse_id("-1", &id), -1);
	assert_int_equal(ctl_parse_id("+1", &id), -1);
	assert_int_equal(ctl_parse_id(" 1", &id), -1);
	assert_int_equal(ctl_parse_id("12x", &id), -1);
	assert_int_equal(ctl_parse_id("99999999999999999999", &id), -1);
	assert_true(ctl_parse_num("1000", 1000) == 1000);
	assert_true(ctl_parse_num("1001", 1000) == -1);
}

static void
test_usage_lists_every_command(void **state)
{
	char	*out = NULL;
	size_t	 len = 0, i;
	FILE	*fp;

	(void)state;
	fp = open_memstream(&out, &len);
	assert_non_null(fp);
	ctl_usage(fp);
	assert_int_equal(fclose(fp), 0);
	for (i = 0; i < nitems(ctl_cmds); i++) {
		char	*line = xasprintf("\n  %s", ctl_cmds[i].name);

		assert_non_null(strstr(out, line));
		free(line);
	}
	assert_non_null(strstr(out, "exit status:"));
	free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_aligns_columns),
		cmocka_unit_test(test_table_counts_characters_not_bytes),
		cmocka_unit_test(test_sanitize_controls_and_bad_utf8),
		cmocka_unit_test(test_sanitize_cuts_long_text),
		cmocka_unit_test(test_json_values),
		cmocka_unit_test(test_job_target),
		cmocka_unit_test(test_query_and_escape),
		cmocka_unit_test(test_parse_numbers),
		cmocka_unit_test(test_usage_lists_every_command),
	};

	return cmocka_run_group_tests_name("gitopsctl", tests, NULL, NULL);
}
