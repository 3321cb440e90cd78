/* Tests for notify/template.c: checking, rendering, escaping helpers. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"
#include "notifier.h"
#include "template.h"
#include "util.h"

#include "notify_test_config.h"

static const struct notify_alert alert = {
	.event = "job.failed",
	.app = "web",
	.job_id = 42,
	.kind = "sync",
	.reason = "Deployment web/web: 0/3 <ready> & waiting",
	.reason_kind = "unhealthy",
	.object = "Deployment web/web",
	.revision = "0123abcd",
	.image = "registry.test/acme/web",
	.tag = "1.2.3",
	.delivery = "d-77",
	.attempts = 3,
	.url = "https://gitopsd.test/api/v1/jobs/42",
	.pr_url = "https://github.test/acme/deploy/pull/7",
	.time_ms = 1795674097000LL,	/* 2026-11-26T06:21:37Z */
	.alert_id = "abc",
};

static char *
render(const char *t, template_escape_fn *esc)
{
	struct buf	 b;

	buf_init(&b, 0);
	if (template_render(t, &alert, esc, &b) == -1) {
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b, NULL);
}

static void
test_check(void **state)
{
	char	 err[256];

	(void)state;
	assert_int_equal(template_check("plain text", err, sizeof(err)), 0);
	assert_int_equal(template_check("{{app}} {{ reason }} {{tag}}} }}", err,
	    sizeof(err)), 0);
	assert_int_equal(template_check("{{app} x", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "unclosed"));
	assert_non_null(strstr(err, "column 1"));
	assert_int_equal(template_check("ok {{nope}}", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "unknown variable \"nope\""));
	assert_non_null(strstr(err, "column 4"));
	assert_int_equal(template_check("{{ }}", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "empty"));
	assert_int_equal(template_check("{{app}} {{", err, sizeof(err)), -1);
}

static void
test_render_all_vars(void **state)
{
	char	*s;

	(void)state;
	s = render("{{app}}|{{event}}|{{job}}|{{kind}}|{{object}}|{{revision}}|"
	    "{{image}}|{{tag}}|{{delivery}}|{{attempts}}|{{url}}|{{time}}|"
	    "{{pr_url}}", NULL);
	assert_non_null(s);
	assert_string_equal(s, "web|job.failed|42|sync|Deployment web/web|"
	    "0123abcd|registry.test/acme/web|1.2.3|d-77|3|"
	    "https://gitopsd.test/api/v1/jobs/42|2026-11-26T06:21:37Z|"
	    "https://github.test/acme/deploy/pull/7");
	free(s);
	s = render("{{ app }} failed: {{reason}}", NULL);
	assert_string_equal(s, "web failed: Deployment web/web: 0/3 <ready> & "
	    "waiting");
	free(s);
	assert_null(render("{{bad}}", NULL));
}

static int
test_upper(const char *in, struct buf *out)
{
	for (; *in != '\0'; in++) {
		char c = *in >= 'a' && *in <= 'z' ? (char)(*in - 32) : *in;

		if (buf_add(out, &c, 1) == -1)
			return -1;
	}
	return 0;
}

/* The escape applies to values only, never to the template's text. */
static void
test_render_escape_values_only(void **state)
{
	char	*s;

	(void)state;
	s = render("app {{app}} tag {{tag}}", test_upper);
	assert_string_equal(s, "app WEB tag 1.2.3");
	free(s);
}

static void
test_missing_values_empty(void **state)
{
	struct notify_alert	 a = { .event = "job.failed", .app = "x" };
	struct buf		 b;

	(void)state;
	buf_init(&b, 0);
	assert_int_equal(template_render("[{{revision}}][{{app}}][{{url}}]", &a,
	    NULL, &b), 0);
	assert_string_equal(b.data, "[][x][]");
	buf_free(&b);
}

static void
test_cap(void **state)
{
	struct buf	 b;

	(void)state;
	buf_init(&b, 8);
	assert_int_equal(template_render("{{reason}}", &alert, NULL, &b), -1);
	buf_free(&b);
}

static void
test_defaults_valid(void **state)
{
	const char	*ev[] = { "job.failed", "job.recovered", "job.succeeded" };
	char		 err[256];
	size_t		 i;

	(void)state;
	for (i = 0; i < 3; i++) {
		assert_int_equal(template_check(template_default_title(ev[i]),
		    err, sizeof(err)), 0);
		assert_int_equal(template_check(template_default_body(ev[i]),
		    err, sizeof(err)), 0);
	}
}

static void
test_header_clean_and_truncate(void **state)
{
	char	*s, u[] = "ab\xc3\xa9" "cd";	/* "abécd" */

	(void)state;
	s = template_header_clean("a\r\nBcc: evil@x\tz");
	assert_null(strpbrk(s, "\r\n"));
	assert_string_equal(s, "a  Bcc: evil@x z");
	free(s);
	template_utf8_truncate(u, 3);	/* would split é */
	assert_string_equal(u, "ab");
}

static void
test_check_notifier_keypaths(void **state)
{
	struct config		 cfg;
	struct config_notifier	 n;
	struct config_errors	 e;

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	memset(&n, 0, sizeof(n));
	memset(&e, 0, sizeof(e));
	n.name = "ops";
	n.type = "webhook";
	n.title = "{{app";
	n.body = "{{application}}";
	template_check_notifier(&cfg, &n, 1, &e);
	assert_int_equal(e.n, 2);
	assert_true(test_errors_have(&e, "notifiers[1].title", "unclosed"));
	assert_true(test_errors_have(&e, "notifiers[1].body",
	    "unknown variable \"application\""));
	test_errors_free(&e);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_render_all_vars),
		cmocka_unit_test(test_render_escape_values_only),
		cmocka_unit_test(test_missing_values_empty),
		cmocka_unit_test(test_cap),
		cmocka_unit_test(test_defaults_valid),
		cmocka_unit_test(test_header_clean_and_truncate),
		cmocka_unit_test(test_check_notifier_keypaths),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
