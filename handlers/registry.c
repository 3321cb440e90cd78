/*
 * registry.c: the CNCF distribution registry ("type: registry") and what
 * the registry handlers share (registry_hooks.h).
 *
 * The registry POSTs an envelope {"events": [...]} with the headers from
 * its config.yml (there is no signature); we authenticate the configured
 * Authorization header.  It retries any non-2xx answer forever and blocks
 * its queue behind it, so everything valid but uninteresting (blob pushes,
 * pulls, deletes, manifests pushed by digest) is a 200, and one
 * HOOK_EVENT_IMAGE is made per manifest push by tag, its delivery the
 * event's id (the registry reuses it on every retry).
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "config.h"
#include "handler.h"
#include "policy.h"
#include "registry_hooks.h"
#include "util.h"

#define REGISTRY_AUTH_MAX	4096

/* ---------------------------------------------------------------- */
/* Shared by the registry handlers                                   */

/* Constant-time compare of presented bytes with every secret. */
static int
registry_hook_check_secret(const struct config_source *src,
    const void *presented, size_t len)
{
	size_t	 i;
	int	 ok = 0;

	for (i = 0; i < src->nsecrets; i++)
		ok |= util_ct_equal(src->secrets[i], strlen(src->secrets[i]),
		    presented, len);
	return ok ? 0 : -1;
}

int
registry_hook_check_auth(const struct config_source *src, const char *auth)
{
	unsigned char	*dec = NULL;
	const char	*cred, *colon;
	size_t		 n, clen = 0, pad;
	int		 dlen, ok;

	if (auth == NULL || src->nsecrets == 0)
		return -1;
	n = strlen(auth);
	if (n == 0 || n > REGISTRY_AUTH_MAX)
		return -1;
	/* The whole value always counts (a secret file holding "Bearer x"). */
	ok = registry_hook_check_secret(src, auth, n) == 0;
	if (strncasecmp(auth, "Bearer ", 7) == 0) {
		cred = auth + 7;
		while (*cred == ' ')
			cred++;
		ok |= registry_hook_check_secret(src, cred, strlen(cred)) == 0;
	} else if (strncasecmp(auth, "Basic ", 6) == 0) {
		cred = auth + 6;
		while (*cred == ' ')
			cred++;
		clen = strlen(cred);
		if (clen >= 4 && clen % 4 == 0) {
			dec = xmalloc(clen / 4 * 3 + 1);
			dlen = EVP_DecodeBlock(dec, (const unsigned char *)cred,
			    (int)clen);
			/* EVP_DecodeBlock counts the padding as zero bytes. */
			pad = (cred[clen - 1] == '=') + (cred[clen - 2] == '=');
			if (dlen >= (int)pad) {
				dlen -= (int)pad;
				colon = memchr(dec, ':', (size_t)dlen);
				if (colon != NULL) {
					colon++;
					ok |= registry_hook_check_secret(src,
					    colon, (size_t)dlen -
					    (size_t)(colon - (const char *)dec))
					    == 0;
				}
			}
			OPENSSL_cleanse(dec, clen / 4 * 3 + 1);
			free(dec);
		}
	}
	return ok ? 0 : -1;
}

int
registry_hook_media_type(const struct hook_request *req,
    const char *const *allowed, char *why, size_t whylen)
{
	char	 mt[128];
	size_t	 i;

	if (hook_media_type(req, mt, sizeof(mt)) == -1) {
		snprintf(why, whylen, "missing or malformed Content-Type");
		return 415;
	}
	for (i = 0; allowed[i] != NULL; i++)
		if (strcmp(mt, allowed[i]) == 0)
			return 0;
	snprintf(why, whylen, "unsupported Content-Type %s", mt);
	return 415;
}

char *
registry_hook_delivery(const char *prefix, const char *const *parts,
    size_t nparts)
{
	struct buf	 b;
	char		 hex[65];
	const char	*p;
	size_t		 i;

	buf_init(&b, 0);
	for (i = 0; i < nparts; i++) {
		p = parts[i] != NULL ? parts[i] : "";
		/* Uncapped buffer: cannot fail. */
		(void)buf_add(&b, p, strlen(p) + 1);
	}
	util_sha256_hex(b.data != NULL ? b.data : "", b.len, hex);
	buf_free(&b);
	hex[32] = '\0';
	return xasprintf("%s-%s", prefix, hex);
}

struct hook_event *
registry_hook_add(struct hook_result *res, const char *host,
    const char *repository, const char *tag, const char *digest,
    const char *delivery, int64_t pushed_at_ms, const char *sender,
    char *why, size_t whylen)
{
	struct image_ref	 ref;
	struct hook_event	*ev;
	char			 err[128];

	if (image_ref_from_parts(host, repository, &ref, err,
	    sizeof(err)) == -1) {
		snprintf(why, whylen, "%s", err);
		return NULL;
	}
	if (!image_tag_valid(tag)) {
		snprintf(why, whylen, "bad tag");
		image_ref_free(&ref);
		return NULL;
	}
	if (digest != NULL && !image_digest_valid(digest)) {
		snprintf(why, whylen, "bad digest");
		image_ref_free(&ref);
		return NULL;
	}
	ev = hook_result_add(res, HOOK_EVENT_IMAGE);
	ev->registry = ref.registry;
	ev->repository = ref.repository;
	ref.registry = ref.repository = NULL;
	image_ref_free(&ref);
	ev->tag = xstrdup(tag);
	ev->digest = digest != NULL ? xstrdup(digest) : NULL;
	ev->delivery = xstrdup(delivery);
	ev->pushed_at_ms = pushed_at_ms;
	ev->summary = xasprintf("%s push %s/%s:%s%s%s", sender, ev->registry,
	    ev->repository, ev->tag, ev->digest != NULL ? "@" : "",
	    ev->digest != NULL ? ev->digest : "");
	return ev;
}

/* Digits n long at s, as a number; -1 if any is not a digit. */
static int
registry_hook_digits(const char *s, int n)
{
	int	 v = 0, i;

	for (i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

int64_t
registry_hook_rfc3339_ms(const char *s)
{
	struct tm	 tm;
	int64_t		 ms = 0, scale = 100, off = 0;
	time_t		 t;
	int		 hh, mm;

	if (s == NULL || strlen(s) < 20 || s[4] != '-' || s[7] != '-' ||
	    (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || s[13] != ':' ||
	    s[16] != ':')
		return -1;
	memset(&tm, 0, sizeof(tm));
	if ((tm.tm_year = registry_hook_digits(s, 4)) < 0 ||
	    (tm.tm_mon = registry_hook_digits(s + 5, 2)) < 1 ||
	    tm.tm_mon > 12 ||
	    (tm.tm_mday = registry_hook_digits(s + 8, 2)) < 1 ||
	    tm.tm_mday > 31 ||
	    (tm.tm_hour = registry_hook_digits(s + 11, 2)) < 0 ||
	    tm.tm_hour > 23 ||
	    (tm.tm_min = registry_hook_digits(s + 14, 2)) < 0 ||
	    tm.tm_min > 59 ||
	    (tm.tm_sec = registry_hook_digits(s + 17, 2)) < 0 ||
	    tm.tm_sec > 60)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	s += 19;
	if (*s == '.') {
		s++;
		if (!isdigit((unsigned char)*s))
			return -1;
		for (; isdigit((unsigned char)*s); s++) {
			ms += scale * (*s - '0');
			scale /= 10;
		}
	}
	if (*s == 'Z' || *s == 'z')
		s++;
	else if ((*s == '+' || *s == '-') && strlen(s) == 6 && s[3] == ':') {
		if ((hh = registry_hook_digits(s + 1, 2)) < 0 || hh > 23 ||
		    (mm = registry_hook_digits(s + 4, 2)) < 0 || mm > 59)
			return -1;
		off = (int64_t)(hh * 60 + mm) * 60 * 1000;
		if (*s == '-')
			off = -off;
		s += 6;
	} else
		return -1;
	if (*s != '\0' || (t = timegm(&tm)) == (time_t)-1)
		return -1;
	return (int64_t)t * 1000 + ms - off;
}

/* ---------------------------------------------------------------- */
/* The distribution registry                                         */

static const char *const registry_media_types[] = {
	"application/vnd.docker.distribution.events.v1+json",	/* 2.x */
	"application/vnd.docker.distribution.events.v2+json",	/* 3.x */
	"application/json",		/* hand-made and compatible senders */
	NULL
};

/* Media types of manifests and indexes: a push of one by tag deploys. */
static const char *const registry_manifest_types[] = {
	"application/vnd.docker.distribution.manifest.v2+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
	"application/vnd.docker.distribution.manifest.v1+json",
	"application/vnd.docker.distribution.manifest.v1+prettyjws",
	"application/vnd.oci.image.manifest.v1+json",
	"application/vnd.oci.image.index.v1+json",
	NULL
};

static int
registry_verify(const struct hook_request *req,
    const struct config_source *src, char *why, size_t whylen)
{
	if (registry_hook_check_auth(src,
	    hook_request_header(req, "Authorization")) == -1) {
		snprintf(why, whylen, "missing or wrong Authorization");
		return 401;
	}
	return registry_hook_media_type(req, registry_media_types, why, whylen);
}

static const char *
registry_json_str(const cJSON *obj, const char *key)
{
	const cJSON	*v = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsString(v) && v->valuestring[0] != '\0' ?
	    v->valuestring : NULL;
}

static int
registry_is_manifest(const char *mt)
{
	size_t	 i;

	if (mt == NULL)
		return 0;
	for (i = 0; registry_manifest_types[i] != NULL; i++)
		if (strcmp(mt, registry_manifest_types[i]) == 0)
			return 1;
	return 0;
}

/* The host[:port] of an http(s) URL into out; -1 if none. */
static int
registry_url_host(const char *url, char *out, size_t outlen)
{
	const char	*p, *end;
	size_t		 n;

	if (url == NULL)
		return -1;
	if (strncmp(url, "https://", 8) == 0)
		p = url + 8;
	else if (strncmp(url, "http://", 7) == 0)
		p = url + 7;
	else
		return -1;
	end = p + strcspn(p, "/?#");
	if (memchr(p, '@', (size_t)(end - p)) != NULL)
		p = (const char *)memchr(p, '@', (size_t)(end - p)) + 1;
	n = (size_t)(end - p);
	if (n == 0 || n >= outlen)
		return -1;
	memcpy(out, p, n);
	out[n] = '\0';
	return 0;
}

cJSON *
registry_hook_parse_json(const struct hook_request *req,
    struct hook_result *res)
{
	char	 why[160];
	cJSON	*root;

	if ((root = handler_json_parse(req->body, req->body_len, why,
	    sizeof(why))) == NULL)
		hook_result_setf(res, 400, "%s", why);
	return root;
}

static void
registry_parse(const struct hook_request *req,
    const struct config_source *src, struct hook_result *res)
{
	const cJSON	*events, *ev, *target, *request;
	const char	*action, *tag, *repo, *digest, *id, *host, *mt, *ts;
	char		 urlhost[256], why[128], *delivery;
	cJSON		*root;
	size_t		 n = 0;
	int64_t		 pushed_ms;
	const char	*parts[4];

	(void)src;
	if ((root = registry_hook_parse_json(req, res)) == NULL)
		return;
	events = cJSON_GetObjectItemCaseSensitive(root, "events");
	if (!cJSON_IsObject(root) || !cJSON_IsArray(events)) {
		hook_result_setf(res, 400, "no \"events\" array");
		goto out;
	}
	cJSON_ArrayForEach(ev, events) {
		n++;
		if (!cJSON_IsObject(ev)) {
			hook_result_free(res);
			hook_result_setf(res, 400, "event %zu is not an object",
			    n - 1);
			goto out;
		}
		target = cJSON_GetObjectItemCaseSensitive(ev, "target");
		action = registry_json_str(ev, "action");
		if (action == NULL || strcmp(action, "push") != 0 ||
		    !cJSON_IsObject(target)) {
			continue;
		}
		tag = registry_json_str(target, "tag");
		mt = registry_json_str(target, "mediaType");
		if (tag == NULL || !registry_is_manifest(mt)) {
			continue;	/* blob, or manifest pushed by digest */
		}
		repo = registry_json_str(target, "repository");
		digest = registry_json_str(target, "digest");
		request = cJSON_GetObjectItemCaseSensitive(ev, "request");
		host = cJSON_IsObject(request) ?
		    registry_json_str(request, "host") : NULL;
		if (host == NULL && registry_url_host(registry_json_str(target,
		    "url"), urlhost, sizeof(urlhost)) == 0)
			host = urlhost;
		if (repo == NULL || host == NULL) {
			hook_result_free(res);
			hook_result_setf(res, 400, "event %zu: push without "
			    "%s", n - 1, repo == NULL ? "target.repository" :
			    "request.host or target.url");
			goto out;
		}
		/* The id is stable across retries; derive one if absent. */
		if ((id = registry_json_str(ev, "id")) != NULL)
			delivery = xstrdup(id);
		else {
			parts[0] = host;
			parts[1] = repo;
			parts[2] = tag;
			parts[3] = digest;
			delivery = registry_hook_delivery("registry", parts, 4);
		}
		ts = registry_json_str(ev, "timestamp");
		if ((pushed_ms = registry_hook_rfc3339_ms(ts)) < 0)
			pushed_ms = 0;
		if (registry_hook_add(res, host, repo, tag, digest, delivery,
		    pushed_ms, "registry", why, sizeof(why)) == NULL) {
			free(delivery);
			hook_result_free(res);
			hook_result_setf(res, 400, "event %zu: %s", n - 1, why);
			goto out;
		}
		free(delivery);
	}
	if (res->nevents == 0)
		hook_result_setf(res, 200, "ignored: no manifest push by tag "
		    "among %zu event%s", n, n == 1 ? "" : "s");
out:
	handler_json_delete(root);
}

const struct handler handler_registry = {
	.type = "registry",
	.path_token = 0,
	.verify = registry_verify,
	.parse = registry_parse,
};
