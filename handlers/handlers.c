/*
 * handlers.c: the table of sender types and what handlers share (header
 * lookup, media types, HMAC and token checks, event lists).
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <math.h>

#include <cjson/cJSON.h>

#include "config.h"
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

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlongs, no
 * surrogates), or 0. */
static size_t
handler_utf8_seq(const unsigned char *s, size_t left)
{
	size_t	 n, k;
	uint32_t cp;

	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 1;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 2;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 3;
		cp = s[0] & 0x07;
	} else
		return 0;
	if (n >= left)
		return 0;
	for (k = 1; k <= n; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[k] & 0x3f);
	}
	if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n + 1;
}

/* The bytes handler_json_scan() must look at: NUL, quote, backslash,
 * brackets, and every byte of a multi-byte UTF-8 sequence. */
static const unsigned char handler_json_special[256] = {
	[0] = 1, ['"'] = 1, ['\\'] = 1, ['['] = 1, [']'] = 1, ['{'] = 1,
	['}'] = 1,
	[0x80 ... 0xff] = 1,
};

/*
 * One pass over the raw body before cJSON sees it: valid UTF-8, no NUL
 * byte, no \u0000 escape in a string (cJSON would cut the string there),
 * nesting bounded (cJSON recurses).  0, or -1 with why.
 */
static int
handler_json_scan(const unsigned char *s, size_t len, char *why,
    size_t whylen)
{
	size_t	 i = 0, n, depth = 0;
	int	 in_str = 0;

	while (i < len) {
		/* Most bytes need no look: skip them without the switch. */
		while (i < len && !handler_json_special[s[i]])
			i++;
		if (i >= len)
			break;
		if (s[i] >= 0x80) {
			if ((n = handler_utf8_seq(s + i, len - i)) == 0) {
				snprintf(why, whylen, "body is not valid UTF-8");
				return -1;
			}
			i += n;
			continue;
		}
		switch (s[i]) {
		case '\0':
			snprintf(why, whylen, "NUL byte in body");
			return -1;
		case '"':
			in_str = !in_str;
			break;
		case '\\':
			if (!in_str || i + 1 >= len)
				break;
			if (s[i + 1] == 'u' && i + 5 < len &&
			    memcmp(s + i + 2, "0000", 4) == 0) {
				snprintf(why, whylen, "\\u0000 in a JSON string");
				return -1;
			}
			if (s[i + 1] < 0x80)
				i++;	/* the escaped character */
			break;
		case '[':
		case '{':
			if (!in_str && ++depth > HANDLER_JSON_MAX_DEPTH) {
				snprintf(why, whylen, "JSON nested deeper than "
				    "%d", HANDLER_JSON_MAX_DEPTH);
				return -1;
			}
			break;
		case ']':
		case '}':
			if (!in_str && depth > 0)
				depth--;
			break;
		default:
			break;
		}
		i++;
	}
	return 0;
}

static int
handler_key_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int
handler_json_walk(const cJSON *node, int depth, char *why, size_t whylen)
{
	const cJSON	*c;
	const char	**keys;
	size_t		 n = 0, i;
	int		 rc = 0;

	if (depth > HANDLER_JSON_MAX_DEPTH) {
		snprintf(why, whylen, "JSON nested deeper than %d",
		    HANDLER_JSON_MAX_DEPTH);
		return -1;
	}
	if (cJSON_IsNumber(node) && !isfinite(node->valuedouble)) {
		snprintf(why, whylen, "JSON number out of range");
		return -1;
	}
	if (cJSON_IsObject(node)) {
		for (c = node->child; c != NULL; c = c->next)
			n++;
		if (n <= 16) {
			/* Small objects (most): compare pairs, no allocation. */
			const cJSON	*d;

			for (c = node->child; c != NULL; c = c->next)
				for (d = c->next; d != NULL; d = d->next)
					/* First bytes first: most keys differ
					 * there, and strcmp is not free. */
					if (c->string != NULL && d->string !=
					    NULL && c->string[0] == d->string[0] &&
					    strcmp(c->string, d->string) == 0) {
						snprintf(why, whylen, "duplicate "
						    "JSON key \"%.64s\"",
						    c->string);
						return -1;
					}
			goto children;
		}
		/* Sorted keys find duplicates in O(n log n), not O(n^2). */
		keys = xcalloc(n, sizeof(*keys));
		for (i = 0, c = node->child; c != NULL; c = c->next)
			keys[i++] = c->string != NULL ? c->string : "";
		qsort(keys, n, sizeof(*keys), handler_key_cmp);
		for (i = 1; i < n && rc == 0; i++) {
			if (strcmp(keys[i - 1], keys[i]) == 0) {
				snprintf(why, whylen, "duplicate JSON key "
				    "\"%.64s\"", keys[i]);
				rc = -1;
			}
		}
		free(keys);
		if (rc == -1)
			return -1;
	}
children:
	for (c = node->child; c != NULL; c = c->next)
		if (handler_json_walk(c, depth + 1, why, whylen) == -1)
			return -1;
	return 0;
}

struct cJSON *
handler_json_parse(const void *body, size_t len, char *why, size_t whylen)
{
	const char	*s = body, *end = NULL;
	cJSON		*root;

	if (len == 0) {
		snprintf(why, whylen, "empty body");
		return NULL;
	}
	if (handler_json_scan(body, len, why, whylen) == -1)
		return NULL;
	root = cJSON_ParseWithLengthOpts(s, len, &end, 0);
	if (root == NULL) {
		snprintf(why, whylen, "malformed JSON");
		return NULL;
	}
	for (; end != NULL && end < s + len; end++) {
		if (*end != ' ' && *end != '\t' && *end != '\n' && *end != '\r') {
			handler_json_delete(root);
			snprintf(why, whylen, "trailing data after JSON");
			return NULL;
		}
	}
	if (handler_json_walk(root, 0, why, whylen) == -1) {
		handler_json_delete(root);
		return NULL;
	}
	return root;
}
