/*
 * hook_treq.h: webhook requests built by hand for the Git host handlers
 * (headers, signatures as each sender computes them, GitHub's form
 * encoding) and a verify-then-parse driver.  Shared by the handler unit
 * tests and the suite over the published GitHub examples
 * (test/integration/octokit_suite.c).
 */
#ifndef HOOK_TREQ_H
#define HOOK_TREQ_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "handler.h"
#include "util.h"

#define HOOK_UNUSED __attribute__((unused))

/* A request under construction: up to 8 headers, the body owned. */
struct treq {
	struct hook_header	 h[8];
	size_t			 nh;
	char			*body;
	size_t			 len;
	char			*sig;		/* owned header value */
};

static HOOK_UNUSED void
treq_init(struct treq *t, const char *body, size_t len)
{
	memset(t, 0, sizeof(*t));
	t->body = xmalloc(len + 1);
	memcpy(t->body, body, len);
	t->body[len] = '\0';
	t->len = len;
}

static HOOK_UNUSED void
treq_hdr(struct treq *t, const char *name, const char *value)
{
	assert_true(t->nh < nitems(t->h));
	t->h[t->nh].name = name;
	t->h[t->nh].value = value;
	t->nh++;
}

/* Sign msg (not necessarily the body) and set header name to prefix+hex. */
static HOOK_UNUSED void
treq_sign(struct treq *t, const char *name, const char *prefix,
    const char *secret, const void *msg, size_t len)
{
	char	 hex[65];

	util_hmac_sha256_hex(secret, strlen(secret), msg, len, hex);
	free(t->sig);
	t->sig = xasprintf("%s%s", prefix, hex);
	treq_hdr(t, name, t->sig);
}

static HOOK_UNUSED void
treq_free(struct treq *t)
{
	free(t->body);
	free(t->sig);
}

static HOOK_UNUSED struct hook_request
treq_req(const struct treq *t)
{
	struct hook_request	 r;

	memset(&r, 0, sizeof(r));
	r.method = "POST";
	r.headers = t->h;
	r.nheaders = t->nh;
	r.body = (const unsigned char *)t->body;
	r.body_len = t->len;
	return r;
}

static HOOK_UNUSED char *secrets1[] = { "s3cret" };
static HOOK_UNUSED char *secrets2[] = { "new-secret", "old-secret" };

static HOOK_UNUSED struct config_source
src_make(const char *type, char **secrets, size_t n)
{
	struct config_source	 s;

	memset(&s, 0, sizeof(s));
	s.name = (char *)type;
	s.type = (char *)type;
	s.secrets = secrets;
	s.nsecrets = n;
	return s;
}

/* verify, then parse when verified; returns verify's status. */
static HOOK_UNUSED int
run(const char *type, const struct treq *t, const struct config_source *src,
    struct hook_result *res)
{
	const struct handler	*h = handler_find(type);
	struct hook_request	 r = treq_req(t);
	char			 why[256] = "";
	int			 st;

	assert_non_null(h);
	memset(res, 0, sizeof(*res));
	if ((st = h->verify(&r, src, why, sizeof(why))) != 0) {
		assert_true(why[0] != '\0');
		return st;
	}
	h->parse(&r, src, res);
	return 0;
}

static HOOK_UNUSED int
has_path(const struct hook_event *ev, const char *p)
{
	size_t	 i;

	for (i = 0; i < ev->npaths; i++)
		if (strcmp(ev->paths[i], p) == 0)
			return 1;
	return 0;
}

static HOOK_UNUSED cJSON *
load_json(const char *path)
{
	char	*text;
	size_t	 len;
	cJSON	*j;

	if ((text = util_read_file(path, 0, &len)) == NULL)
		fail_msg("cannot read %s (run scripts/deps.sh)", path);
	j = cJSON_ParseWithLength(text, len);
	free(text);
	assert_non_null(j);
	return j;
}

/* Form-encode a JSON text as GitHub does: payload=<urlencoded>. */
static HOOK_UNUSED char *
form_encode(const char *json)
{
	struct buf	 b;
	const char	*p;

	buf_init(&b, 0);
	assert_int_equal(buf_addstr(&b, "payload="), 0);
	for (p = json; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr("-_.*", c) != NULL)
			assert_int_equal(buf_add(&b, p, 1), 0);
		else if (c == ' ')
			assert_int_equal(buf_addstr(&b, "+"), 0);
		else
			assert_int_equal(buf_printf(&b, "%%%02X", c), 0);
	}
	return buf_steal(&b, NULL);
}

#endif
