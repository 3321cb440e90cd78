/*
 * githost.c: pieces shared by the Git host handlers.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "githost.h"
#include "handler.h"
#include "hookjson.h"
#include "util.h"

int
githost_check_sig(const struct config_source *src, const char *value,
    const char *prefix, int sha1, const void *msg, size_t len, char *why,
    size_t whylen)
{
	char		 hex[65];
	size_t		 plen, want = sha1 ? 40 : 64, i, n;
	const char	*p;

	if (src->nsecrets == 0) {
		snprintf(why, whylen, "source has no secret configured");
		return -1;
	}
	if (value == NULL) {
		snprintf(why, whylen, "missing signature");
		return -1;
	}
	plen = strlen(prefix);
	if (strncmp(value, prefix, plen) != 0) {
		snprintf(why, whylen, "malformed signature");
		return -1;
	}
	p = value + plen;
	n = strlen(p);
	if (n != want) {
		snprintf(why, whylen, "malformed signature");
		return -1;
	}
	/* Senders print lowercase hex; accept either case, compare lowercase. */
	for (i = 0; i < n; i++) {
		if (!isxdigit((unsigned char)p[i])) {
			snprintf(why, whylen, "malformed signature");
			return -1;
		}
		hex[i] = (char)tolower((unsigned char)p[i]);
	}
	hex[n] = '\0';
	if ((sha1 ? handler_check_hmac1(src, msg, len, hex) :
	    handler_check_hmac256(src, msg, len, hex)) != 0) {
		snprintf(why, whylen, "signature mismatch");
		return -1;
	}
	return 0;
}

char *
githost_delivery(const struct hook_request *req, const char *const *names,
    struct hook_result *res)
{
	const char	*v;
	char		 hex[65];
	size_t		 i, n;

	for (; *names != NULL; names++) {
		if ((v = hook_request_header(req, *names)) == NULL)
			continue;
		n = strlen(v);
		if (n == 0 || n > 200) {
			hook_result_setf(res, 400, "malformed %s header", *names);
			return NULL;
		}
		for (i = 0; i < n; i++)
			if ((unsigned char)v[i] <= 0x20 ||
			    (unsigned char)v[i] >= 0x7f) {
				hook_result_setf(res, 400,
				    "malformed %s header", *names);
				return NULL;
			}
		return xstrdup(v);
	}
	util_sha256_hex(req->body, req->body_len, hex);
	return xasprintf("sha256:%s", hex);
}

int
githost_split_ref(struct hook_event *ev)
{
	if (ev->ref == NULL)
		return -1;
	if (strncmp(ev->ref, "refs/heads/", 11) == 0 && ev->ref[11] != '\0') {
		ev->branch = xstrdup(ev->ref + 11);
		return 0;
	}
	if (strncmp(ev->ref, "refs/tags/", 10) == 0 && ev->ref[10] != '\0') {
		ev->tag = xstrdup(ev->ref + 10);
		return 0;
	}
	return -1;
}

/* Copy s into out without control characters (summaries are log lines). */
static void
githost_clean(const char *s, char *out, size_t outlen)
{
	size_t	 o = 0;

	for (; s != NULL && *s != '\0' && o + 1 < outlen; s++)
		out[o++] = (unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s;
	out[o] = '\0';
}

void
githost_summarize(struct hook_event *ev, long ncommits)
{
	char	 repo[128], ref[128], who[64], before[8], after[8], count[32];

	githost_clean(ev->repo_name != NULL ? ev->repo_name : ev->clone_url,
	    repo, sizeof(repo));
	githost_clean(ev->branch != NULL ? ev->branch :
	    ev->tag != NULL ? ev->tag : ev->ref, ref, sizeof(ref));
	githost_clean(ev->pusher, who, sizeof(who));
	githost_clean(ev->before != NULL ? ev->before : "0000000", before,
	    sizeof(before));
	githost_clean(ev->after, after, sizeof(after));
	count[0] = '\0';
	if (ncommits >= 0)
		snprintf(count, sizeof(count), " (%ld commit%s)", ncommits,
		    ncommits == 1 ? "" : "s");
	free(ev->summary);
	ev->summary = xasprintf("push %s %s%s %s..%s%s%s%s", repo,
	    ev->tag != NULL ? "tag " : "", ref, before, after,
	    who[0] != '\0' ? " by " : "", who, count);
}

char *
githost_form_payload(const struct hook_request *req, size_t *lenp)
{
	return util_form_get((const char *)req->body, req->body_len, "payload",
	    lenp);
}

long
githost_commit_paths(struct hook_event *ev, const struct cJSON *commits,
    int *listed, struct hook_result *res)
{
	static const char *const keys[] = { "added", "modified", "removed" };
	const cJSON	*c;
	long		 n = 0;
	size_t		 k;
	const cJSON	*arr;

	*listed = 1;
	if (commits == NULL)
		return 0;
	cJSON_ArrayForEach(c, commits) {
		if (!cJSON_IsObject(c)) {
			hook_result_setf(res, 400,
			    "field 'commits[%ld]' must be an object", n);
			return -1;
		}
		for (k = 0; k < nitems(keys); k++) {
			arr = hookjson_get(c, keys[k]);
			if (!cJSON_IsArray(arr))
				*listed = 0;
			if (hookjson_add_paths(ev, arr, n, keys[k], res) == -1)
				return -1;
		}
		n++;
	}
	if (ev->npaths >= HOOKJSON_MAX_PATHS)
		*listed = 0;
	return n;
}
