/*
 * One page of a registry's tag list (registry_tags_page): the tags kept,
 * and the next page from the Link header (RFC 8288), never on another
 * host.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "registry_client.h"

struct page {
	const char	*link;
	const char	*next;		/* NULL: last page */
	int		 rc;
};

static void
check(const struct page *pg)
{
	static const char	 body[] = "{\"tags\":[\"1.0.0\"]}";
	struct registry_tags	 t;
	char			*next = NULL, err[256];
	int			 rc;

	memset(&t, 0, sizeof(t));
	rc = registry_tags_page(&t, body, sizeof(body) - 1, pg->link, "https",
	    "reg.test:5000", &next, err, sizeof(err));
	if (rc != pg->rc)
		fail_msg("%s: rc %d, want %d (%s)", pg->link, rc, pg->rc, err);
	if (pg->next == NULL && next != NULL)
		fail_msg("%s: next %s, want none", pg->link, next);
	if (pg->next != NULL && (next == NULL || strcmp(next, pg->next) != 0))
		fail_msg("%s: next %s, want %s", pg->link,
		    next != NULL ? next : "(none)", pg->next);
	free(next);
	registry_tags_clear(&t);
}

static void
test_link_next(void **state)
{
	static const struct page pages[] = {
		{ "</v2/a/tags/list?n=50&last=1.0.0>; rel=\"next\"",
		  "https://reg.test:5000/v2/a/tags/list?n=50&last=1.0.0", 0 },
		{ "<https://reg.test:5000/v2/a/tags/list?last=b>; rel=next",
		  "https://reg.test:5000/v2/a/tags/list?last=b", 0 },
		{ "<https://REG.test:5000/v2/a?last=b>;rel=\"prev next\"",
		  "https://reg.test:5000/v2/a?last=b", 0 },
		{ "</v2/a?p=1>; rel=\"prev\", </v2/a?p=3>; rel=\"next\"",
		  "https://reg.test:5000/v2/a?p=3", 0 },
		/* A comma inside a quoted value does not end the link. */
		{ "</v2/a?p=1>; title=\"a, b\"; rel=\"next\"",
		  "https://reg.test:5000/v2/a?p=1", 0 },
		/* rel=next inside another parameter's value is not rel. */
		{ "</v2/a?p=1>; title=\"rel=next\"; rel=\"last\"", NULL, 0 },
		{ "</v2/a?p=1>; rel=\"nextpage\"", NULL, 0 },
		{ "</v2/a?p=1>; rel=\"last\"; rel=\"next\"", NULL, 0 },
		{ "garbage", NULL, 0 },
		/* Another host, or a scheme-relative one: refused. */
		{ "<https://evil.test/v2/a?last=b>; rel=\"next\"", NULL, -1 },
		{ "<http://reg.test:5000/v2/a?last=b>; rel=\"next\"", NULL, -1 },
		{ "<//evil.test/v2/a>; rel=\"next\"", NULL, -1 },
	};
	size_t	 i;

	(void)state;
	for (i = 0; i < sizeof(pages) / sizeof(pages[0]); i++)
		check(&pages[i]);
}

/* Tags that are not valid tags are dropped; a body that is not a tag list
 * is an error. */
static void
test_tags_kept(void **state)
{
	static const char	 body[] =
	    "{\"tags\":[\"1.0.0\",\".bad\",5,null,\"a/b\",\"ok_1\"]}";
	struct registry_tags	 t;
	char			*next = NULL, err[256];

	(void)state;
	memset(&t, 0, sizeof(t));
	assert_int_equal(registry_tags_page(&t, body, sizeof(body) - 1, NULL,
	    "https", "reg.test", &next, err, sizeof(err)), 0);
	assert_int_equal(t.n, 2);
	assert_string_equal(t.tags[0], "1.0.0");
	assert_string_equal(t.tags[1], "ok_1");
	assert_null(next);
	assert_int_equal(registry_tags_page(&t, "{\"tags\":null}", 13, NULL,
	    "https", "reg.test", &next, err, sizeof(err)), 0);
	assert_int_equal(t.n, 2);
	assert_int_equal(registry_tags_page(&t, "[1]", 3, NULL, "https",
	    "reg.test", &next, err, sizeof(err)), -1);
	assert_int_equal(registry_tags_page(&t, "nope", 4, NULL, "https",
	    "reg.test", &next, err, sizeof(err)), -1);
	registry_tags_clear(&t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_link_next),
		cmocka_unit_test(test_tags_kept),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
