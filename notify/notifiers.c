/*
 * notifiers.c: the table of alert sink types.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_schema.h"
#include "notifier.h"
#include "util.h"

extern const struct notifier notifier_slack;
extern const struct notifier notifier_email;
extern const struct notifier notifier_webhook;

/* Adding a sink: one file under notify/ and one row here. */
const struct notifier *const notifier_table[] = {
	&notifier_slack,
	&notifier_email,
	&notifier_webhook,
	NULL
};
const size_t notifier_table_len = nitems(notifier_table) - 1;

const struct notifier *
notifier_find(const char *type)
{
	size_t	 i;

	for (i = 0; i < notifier_table_len; i++)
		if (strcmp(notifier_table[i]->type, type) == 0)
			return notifier_table[i];
	return NULL;
}

static const struct config_plugin *
notifier_config_find(const char *type, const void **desc)
{
	const struct notifier	*n = notifier_find(type);

	if (n == NULL)
		return NULL;
	*desc = n;
	return n->config;
}

static const struct config_plugin *
notifier_config_nth(size_t i, const char **type)
{
	if (i >= notifier_table_len)
		return NULL;
	*type = notifier_table[i]->type;
	return notifier_table[i]->config;
}

const struct config_family notifier_config_family = {
	.type_key = "type",
	.type_off = offsetof(struct config_notifier, type),
	.desc_off = offsetof(struct config_notifier, plugin),
	.opts_off = offsetof(struct config_notifier, opts),
	.find = notifier_config_find,
	.nth = notifier_config_nth,
};

void
notify_request_free(struct notify_request *r)
{
	size_t	 i;

	free(r->url);
	for (i = 0; i < r->nheaders; i++)
		free(r->headers[i]);
	free(r->headers);
	free(r->body);
	free(r->mail_from);
	for (i = 0; i < r->nrcpt; i++)
		free(r->rcpt[i]);
	free(r->rcpt);
	memset(r, 0, sizeof(*r));
}
