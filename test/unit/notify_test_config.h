/*
 * notify_test_config.h: records config_error_at()/config_warning_at() calls
 * made by notifier checks, so tests can assert the key paths.  The
 * definitions are weak: when the real daemon/config.c is linked in, its
 * versions win and the tests read the messages from config_errors.
 */
#ifndef NOTIFY_TEST_CONFIG_H
#define NOTIFY_TEST_CONFIG_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "util.h"

__attribute__((weak)) void
config_error_at(const struct config *cfg, struct config_errors *errs,
    const char *keypath, const char *fmt, ...)
{
	va_list	 ap;
	char	*m;

	(void)cfg;
	va_start(ap, fmt);
	m = xvasprintf(fmt, ap);
	va_end(ap);
	errs->msgs = xreallocarray(errs->msgs, errs->n + 1, sizeof(char *));
	errs->msgs[errs->n++] = xasprintf("test.yaml:1:1: %s: %s", keypath, m);
	free(m);
}

__attribute__((weak)) void
config_warning_at(const struct config *cfg, struct config_errors *errs,
    const char *keypath, const char *fmt, ...)
{
	va_list	 ap;
	char	*m;

	(void)cfg;
	va_start(ap, fmt);
	m = xvasprintf(fmt, ap);
	va_end(ap);
	errs->warnings = xreallocarray(errs->warnings, errs->nwarnings + 1,
	    sizeof(char *));
	errs->warnings[errs->nwarnings++] = xasprintf("test.yaml:1:1: %s: %s",
	    keypath, m);
	free(m);
}

static void
test_errors_free(struct config_errors *e)
{
	size_t	 i;

	for (i = 0; i < e->n; i++)
		free(e->msgs[i]);
	free(e->msgs);
	for (i = 0; i < e->nwarnings; i++)
		free(e->warnings[i]);
	free(e->warnings);
	memset(e, 0, sizeof(*e));
}

/* Does some error mention keypath (": keypath: ") and text? */
static int
test_errors_have(const struct config_errors *e, const char *keypath,
    const char *text)
{
	char	 k[160];
	size_t	 i;

	snprintf(k, sizeof(k), ": %s: ", keypath);
	for (i = 0; i < e->n; i++)
		if (strstr(e->msgs[i], k) != NULL &&
		    (text == NULL || strstr(e->msgs[i], text) != NULL))
			return 1;
	return 0;
}

#endif
