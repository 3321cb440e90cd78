/*
 * handlers.c: the table of sender types and what handlers share (header
 * lookup, media types, HMAC and token checks, event lists).
 */
#include <ctype.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "config_schema.h"
#include "handler.h"
#include "util.h"

extern const struct handler handler_github;
extern const struct handler handler_gitlab;
extern const struct handler handler_gitea;
extern const struct handler handler_bitbucket;
extern const struct handler handler_generic;
extern const struct handler handler_registry;
extern const struct handler handler_dockerhub;
extern const struct handler handler_harbor;
extern const struct handler handler_quay;

/* Adding a sender: one file under handlers/ and one row here. */
const struct handler *const handler_table[] = {
	&handler_github,
	&handler_gitlab,
	&handler_gitea,
	&handler_bitbucket,
	&handler_generic,
	&handler_registry,
	&handler_dockerhub,
	&handler_harbor,
	&handler_quay,
	NULL
};
const size_t handler_table_len = nitems(handler_table) - 1;

const struct handler *
handler_find(const char *type)
{
	size_t	 i;

	for (i = 0; i < handler_table_len; i++)
		if (strcmp(handler_table[i]->type, type) == 0)
			return handler_table[i];
	return NULL;
}

/* A sender without keys of its own still selects its entry's plug-in. */
static const struct config_plugin handler_config_none;

static const struct config_plugin *
handler_config_find(const char *type, const void **desc)
{
	const struct handler	*h = handler_find(type);

	if (h == NULL)
		return NULL;
	*desc = h;
	return h->config != NULL ? h->config : &handler_config_none;
}

static const struct config_plugin *
handler_config_nth(size_t i, const char **type)
{
	if (i >= handler_table_len)
		return NULL;
	*type = handler_table[i]->type;
	return handler_table[i]->config != NULL ? handler_table[i]->config :
	    &handler_config_none;
}

const struct config_family handler_config_family = {
	.type_key = "type",
	.type_off = offsetof(struct config_source, type),
	.desc_off = offsetof(struct config_source, plugin),
	.opts_off = offsetof(struct config_source, opts),
	.find = handler_config_find,
	.nth = handler_config_nth,
};

const char *
hook_request_header(const struct hook_request *req, const char *name)
{
	size_t	 i;

	for (i = 0; i < req->nheaders; i++)
		if (strcasecmp(req->headers[i].name, name) == 0)
			return req->headers[i].value;
	return NULL;
}

int
hook_media_type(const struct hook_request *req, char *out, size_t outlen)
{
	const char	*ct, *end;
	size_t		 n, i;

	if ((ct = hook_request_header(req, "Content-Type")) == NULL)
		return -1;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	end = ct + strcspn(ct, ";");
	while (end > ct && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	n = (size_t)(end - ct);
	if (n == 0 || n >= outlen || memchr(ct, '/', n) == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)ct[i];

		/* RFC 7230 token characters plus the type/subtype slash. */
		if (!isalnum(c) && strchr("!#$%&'*+-.^_`|~/", c) == NULL)
			return -1;
		out[i] = (char)tolower(c);
	}
	out[n] = '\0';
	return 0;
}

struct hook_event *
hook_result_add(struct hook_result *res, enum hook_event_kind kind)
{
	struct hook_event	*ev;

	res->events = xreallocarray(res->events, res->nevents + 1,
	    sizeof(*res->events));
	ev = &res->events[res->nevents++];
	memset(ev, 0, sizeof(*ev));
	ev->kind = kind;
	return ev;
}

void
hook_result_setf(struct hook_result *res, int status, const char *fmt, ...)
{
	va_list	 ap;

	res->status = status;
	va_start(ap, fmt);
	vsnprintf(res->reason, sizeof(res->reason), fmt, ap);
	va_end(ap);
}

void
hook_event_free(struct hook_event *ev)
{
	size_t	 i;

	free(ev->delivery);
	free(ev->summary);
	free(ev->repo_name);
	free(ev->clone_url);
	free(ev->ssh_url);
	free(ev->web_url);
	free(ev->ref);
	free(ev->branch);
	free(ev->tag);
	free(ev->before);
	free(ev->after);
	free(ev->pusher);
	free(ev->scm_project);
	free(ev->scm_slug);
	for (i = 0; i < ev->npaths; i++)
		free(ev->paths[i]);
	free(ev->paths);
	free(ev->registry);
	free(ev->repository);
	free(ev->digest);
	memset(ev, 0, sizeof(*ev));
}

void
hook_result_free(struct hook_result *res)
{
	size_t	 i;

	for (i = 0; i < res->nevents; i++)
		hook_event_free(&res->events[i]);
	free(res->events);
	res->events = NULL;
	res->nevents = 0;
}

void
hook_event_add_path(struct hook_event *ev, const char *path)
{
	ev->paths = xreallocarray(ev->paths, ev->npaths + 1, sizeof(char *));
	ev->paths[ev->npaths++] = xstrdup(path);
}

/*
 * HMAC of msg with each of the source's secrets, compared in constant time
 * with sig_hex; every secret is tried so timing does not tell which one
 * matched.
 */
static int
handler_check_hmac(const struct config_source *src, const void *msg,
    size_t len, const char *sig_hex, int sha1)
{
	char	 want[65];
	size_t	 i, slen, wlen = sha1 ? 40 : 64;
	int	 ok = 0;

	if (sig_hex == NULL)
		return -1;
	slen = strlen(sig_hex);
	for (i = 0; i < src->nsecrets; i++) {
		if (sha1)
			util_hmac_sha1_hex(src->secrets[i],
			    strlen(src->secrets[i]), msg, len, want);
		else
			util_hmac_sha256_hex(src->secrets[i],
			    strlen(src->secrets[i]), msg, len, want);
		ok |= util_ct_equal(want, wlen, sig_hex, slen);
	}
	return ok ? 0 : -1;
}

int
handler_check_hmac256(const struct config_source *src, const void *msg,
    size_t len, const char *sig_hex)
{
	return handler_check_hmac(src, msg, len, sig_hex, 0);
}

int
handler_check_hmac1(const struct config_source *src, const void *msg,
    size_t len, const char *sig_hex)
{
	return handler_check_hmac(src, msg, len, sig_hex, 1);
}

int
handler_check_token(const struct config_source *src, const char *presented)
{
	size_t	 i, plen;
	int	 ok = 0;

	if (presented == NULL)
		return -1;
	plen = strlen(presented);
	for (i = 0; i < src->nsecrets; i++)
		ok |= util_ct_equal(src->secrets[i], strlen(src->secrets[i]),
		    presented, plen);
	return ok ? 0 : -1;
}
