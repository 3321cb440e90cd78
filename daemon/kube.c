/*
 * kube.c: Kubernetes API client (libcurl easy API, worker threads).
 *
 * DESIGN: a struct kube owns one CURL easy handle, so connections are kept
 * alive across the many small requests of one sync; it is never shared
 * between threads.  Discovery is expensive (one request per group-version)
 * and almost never changes, so it lives in a process-wide cache keyed by
 * cluster name, guarded by one mutex.  Network I/O happens outside the
 * mutex; a finished discovery replaces the old one whole.  Lookups copy
 * what they return, so no caller holds a pointer into the cache.
 *
 * Discovery is single-flight per cluster: when several workers find the
 * cache empty at once (every worker's first sync after start), one fetches
 * and the others wait for its result instead of each fetching the same
 * dozens of group-versions.  Each installed discovery carries a generation;
 * a caller that asks for a refresh says which generation it saw, so a
 * refresh finished by someone else meanwhile satisfies it.  A discovery
 * older than KUBE_DISCOVERY_TTL_MS is refreshed at the next lookup (kinds
 * added without a 404 to tell us, e.g. a CRD served by another cluster
 * admin), and kept in use if that refresh fails.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "kube.h"
#include "kubeconfig.h"
#include "log.h"
#include "ratelimit.h"
#include "util.h"

#define KUBE_MAX_RESPONSE	(64u * 1024 * 1024)
#define KUBE_CONNECT_TIMEOUT_S	10L
#define KUBE_TIMEOUT_S		60L
#define KUBE_DISCOVERY_TTL_MS	(10 * 60 * 1000)
/* 429 answers (API Priority and Fairness) are retried after their
 * Retry-After, as client-go does, this many times per request. */
#define KUBE_MAX_THROTTLED	5
#define KUBE_MAX_RETRY_AFTER_S	10

/* One discovered resource type, as cached. */
struct kube_dres {
	struct kube_resource	 r;
	int			 listable;	/* list + delete verbs */
	int			 preferred;	/* preferred version of its group */
};

struct kube_disc {
	char			*key;
	struct kube_dres	*res;
	size_t			 n;
	uint64_t		 gen;		/* set when installed, never 0 */
	int64_t			 fetched_ms;	/* monotonic */
	struct kube_disc	*next;
};

/* A cluster whose discovery is being fetched right now. */
struct kube_flight {
	char			*key;
	struct kube_flight	*next;
};

/* One client rate limit per cluster, shared by every worker's client. */
struct kube_limit {
	char			*key;
	struct ratelimit	 bucket;
	struct kube_limit	*next;
};

static pthread_mutex_t	 kube_limit_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kube_limit *kube_limits;
static pthread_mutex_t	 kube_cache_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	 kube_cache_cond = PTHREAD_COND_INITIALIZER;
static struct kube_disc	*kube_cache;
static struct kube_flight *kube_flights;
static uint64_t		 kube_cache_gen;
static pthread_once_t	 kube_curl_once = PTHREAD_ONCE_INIT;
static int		 kube_curl_ok;

struct kube {
	CURL			*curl;
	char			*server;
	char			*key;
	struct curl_slist	*auth;		/* Authorization header, if any */
	long			 timeout_s;
	double			 qps;		/* 0: unlimited */
	int			 burst;
	char			 errbuf[CURL_ERROR_SIZE];
};

static void
kube_curl_init(void)
{
	kube_curl_ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

void
kube_resource_clear(struct kube_resource *r)
{
	free(r->group);
	free(r->version);
	free(r->kind);
	free(r->plural);
	memset(r, 0, sizeof(*r));
}

void
kube_resources_free(struct kube_resource *r, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		kube_resource_clear(&r[i]);
	free(r);
}

static void
kube_resource_copy(struct kube_resource *dst, const struct kube_resource *src)
{
	dst->group = xstrdup(src->group);
	dst->version = xstrdup(src->version);
	dst->kind = xstrdup(src->kind);
	dst->plural = xstrdup(src->plural);
	dst->namespaced = src->namespaced;
}

static void
kube_disc_free(struct kube_disc *d)
{
	size_t	 i;

	if (d == NULL)
		return;
	for (i = 0; i < d->n; i++)
		kube_resource_clear(&d->res[i].r);
	free(d->res);
	free(d->key);
	free(d);
}

struct kube *
kube_new(const struct kubeconfig *kc, const char *cache_key, char *err,
    size_t errlen)
{
	struct kube	*k;
	char		*hdr;

	pthread_once(&kube_curl_once, kube_curl_init);
	if (!kube_curl_ok) {
		snprintf(err, errlen, "libcurl initialization failed");
		return NULL;
	}
	k = xcalloc(1, sizeof(*k));
	k->server = xstrdup(kc->server);
	/* The same name may point elsewhere after a reload. */
	k->key = xasprintf("%s|%s", cache_key != NULL ? cache_key : "",
	    kc->server);
	k->timeout_s = KUBE_TIMEOUT_S;
	if ((k->curl = curl_easy_init()) == NULL) {
		snprintf(err, errlen, "curl_easy_init failed");
		goto fail;
	}
	/* Worker threads: no signals; errors as text in errbuf. */
	if (curl_easy_setopt(k->curl, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(k->curl, CURLOPT_ERRORBUFFER, k->errbuf) !=
	    CURLE_OK ||
	    curl_easy_setopt(k->curl, CURLOPT_CONNECTTIMEOUT,
	    KUBE_CONNECT_TIMEOUT_S) != CURLE_OK ||
	    curl_easy_setopt(k->curl, CURLOPT_PROTOCOLS_STR, "https,http") !=
	    CURLE_OK ||
	    curl_easy_setopt(k->curl, CURLOPT_USERAGENT,
	    "gitopsd/" GITOPSD_VERSION) != CURLE_OK ||
	    curl_easy_setopt(k->curl, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK) {
		snprintf(err, errlen, "libcurl lacks a required option");
		goto fail;
	}
	if (kc->insecure) {
		curl_easy_setopt(k->curl, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(k->curl, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (kc->ca_data != NULL) {
		struct curl_blob	 b = { kc->ca_data, kc->ca_len,
		    CURL_BLOB_COPY };

		if (curl_easy_setopt(k->curl, CURLOPT_CAINFO_BLOB, &b) !=
		    CURLE_OK) {
			snprintf(err, errlen, "certificate-authority-data: not "
			    "supported by this libcurl");
			goto fail;
		}
	} else if (kc->ca_file != NULL)
		curl_easy_setopt(k->curl, CURLOPT_CAINFO, kc->ca_file);
	if (kc->cert_data != NULL) {
		struct curl_blob	 c = { kc->cert_data, kc->cert_len,
		    CURL_BLOB_COPY };

		if (curl_easy_setopt(k->curl, CURLOPT_SSLCERT_BLOB, &c) !=
		    CURLE_OK) {
			snprintf(err, errlen, "client-certificate-data: not "
			    "supported by this libcurl");
			goto fail;
		}
		curl_easy_setopt(k->curl, CURLOPT_SSLCERTTYPE, "PEM");
	} else if (kc->cert_file != NULL)
		curl_easy_setopt(k->curl, CURLOPT_SSLCERT, kc->cert_file);
	if (kc->key_data != NULL) {
		struct curl_blob	 kb = { kc->key_data, kc->key_len,
		    CURL_BLOB_COPY };

		if (curl_easy_setopt(k->curl, CURLOPT_SSLKEY_BLOB, &kb) !=
		    CURLE_OK) {
			snprintf(err, errlen, "client-key-data: not supported by "
			    "this libcurl");
			goto fail;
		}
		curl_easy_setopt(k->curl, CURLOPT_SSLKEYTYPE, "PEM");
	} else if (kc->key_file != NULL)
		curl_easy_setopt(k->curl, CURLOPT_SSLKEY, kc->key_file);
	if (kc->token != NULL) {
		hdr = xasprintf("Authorization: Bearer %s", kc->token);
		k->auth = curl_slist_append(NULL, hdr);
		memset(hdr, 0, strlen(hdr));
		free(hdr);
		if (k->auth == NULL) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
	} else if (kc->username != NULL) {
		curl_easy_setopt(k->curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(k->curl, CURLOPT_USERNAME, kc->username);
		curl_easy_setopt(k->curl, CURLOPT_PASSWORD,
		    kc->password != NULL ? kc->password : "");
	}
	return k;
fail:
	kube_free(k);
	return NULL;
}

void
kube_free(struct kube *k)
{
	struct curl_slist	*s;

	if (k == NULL)
		return;
	if (k->curl != NULL)
		curl_easy_cleanup(k->curl);
	for (s = k->auth; s != NULL; s = s->next)
		memset(s->data, 0, strlen(s->data));
	curl_slist_free_all(k->auth);
	free(k->server);
	free(k->key);
	free(k);
}

void
kube_set_timeout(struct kube *k, long seconds)
{
	k->timeout_s = seconds;
}

void
kube_set_rate(struct kube *k, double qps, int burst)
{
	k->qps = qps;
	k->burst = burst;
}

/* Wait for this cluster's rate limit to allow one more request. */
static void
kube_throttle(struct kube *k)
{
	struct kube_limit	*l;
	double			 wait;
	struct timespec		 ts;

	if (k->qps <= 0)
		return;
	pthread_mutex_lock(&kube_limit_lock);
	for (l = kube_limits; l != NULL; l = l->next)
		if (strcmp(l->key, k->key) == 0)
			break;
	if (l == NULL) {
		l = xcalloc(1, sizeof(*l));
		l->key = xstrdup(k->key);
		l->next = kube_limits;
		kube_limits = l;
	}
	wait = ratelimit_reserve(&l->bucket, k->qps, k->burst, util_mono_s());
	pthread_mutex_unlock(&kube_limit_lock);
	if (wait <= 0)
		return;
	ts.tv_sec = (time_t)wait;
	ts.tv_nsec = (long)((wait - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* Whether an answer asks to be retried after its Retry-After: 429 always
 * (refused before any processing), a 5xx only for a GET. */
static int
kube_retry_later(const char *method, const struct kube_response *r)
{
	if (r->status == 429)
		return 1;
	return r->status >= 500 && r->retry_after_s > 0 &&
	    strcmp(method, "GET") == 0;
}

static size_t
kube_write_cb(char *p, size_t size, size_t n, void *arg)
{
	struct buf	*b = arg;

	if (buf_add(b, p, size * n) == -1)
		return 0;	/* over the cap: curl fails the transfer */
	return size * n;
}

/* Only Retry-After is wanted from the headers (429/503 answers). */
static size_t
kube_header_cb(char *p, size_t size, size_t n, void *arg)
{
	struct kube_response	*resp = arg;
	size_t			 len = size * n;
	static const char	 name[] = "retry-after:";
	char			 val[32];
	size_t			 i, j = 0;
	long			 v;
	char			*end;

	if (len > sizeof(name) - 1 &&
	    strncasecmp(p, name, sizeof(name) - 1) == 0) {
		for (i = sizeof(name) - 1; i < len && j < sizeof(val) - 1; i++)
			if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' &&
			    p[i] != '\n')
				val[j++] = p[i];
		val[j] = '\0';
		v = strtol(val, &end, 10);
		/* The HTTP-date form is rare from the API; ignored. */
		if (j > 0 && *end == '\0' && v > 0 && v <= 3600)
			resp->retry_after_s = v;
	}
	return len;
}

void
kube_response_clear(struct kube_response *r)
{
	free(r->body);
	cJSON_Delete(r->json);
	memset(r, 0, sizeof(*r));
}

enum kube_rc
kube_request(struct kube *k, const char *method, const char *path,
    const char *content_type, const char *body, size_t len,
    struct kube_response *resp, char *err, size_t errlen)
{
	struct curl_slist	*hdrs = NULL, *s;
	struct buf		 b;
	enum kube_rc		 rc = KUBE_UNREACHABLE;
	CURLcode		 cc;
	char			*url = NULL, *ct = NULL;
	int			 tries;
	long			 wait;

	memset(resp, 0, sizeof(*resp));
	buf_init(&b, KUBE_MAX_RESPONSE);
	url = xasprintf("%s%s", k->server, path);
	/* Keep the auth header out of the per-request list we free. */
	for (s = k->auth; s != NULL; s = s->next)
		hdrs = curl_slist_append(hdrs, s->data);
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	if (content_type != NULL) {
		ct = xasprintf("Content-Type: %s", content_type);
		hdrs = curl_slist_append(hdrs, ct);
	}
	/* No 100-continue round trip on large bodies. */
	hdrs = curl_slist_append(hdrs, "Expect:");
	if (hdrs == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	k->errbuf[0] = '\0';
	curl_easy_setopt(k->curl, CURLOPT_URL, url);
	curl_easy_setopt(k->curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(k->curl, CURLOPT_TIMEOUT, k->timeout_s);
	curl_easy_setopt(k->curl, CURLOPT_WRITEFUNCTION, kube_write_cb);
	curl_easy_setopt(k->curl, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(k->curl, CURLOPT_HEADERFUNCTION, kube_header_cb);
	curl_easy_setopt(k->curl, CURLOPT_HEADERDATA, resp);
	if (body != NULL) {
		curl_easy_setopt(k->curl, CURLOPT_POST, 1L);
		curl_easy_setopt(k->curl, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)len);
		curl_easy_setopt(k->curl, CURLOPT_POSTFIELDS, body);
	} else
		curl_easy_setopt(k->curl, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(k->curl, CURLOPT_CUSTOMREQUEST,
	    strcmp(method, "GET") == 0 || strcmp(method, "POST") == 0 ?
	    NULL : method);
	for (tries = 0;; tries++) {
		kube_throttle(k);
		cc = curl_easy_perform(k->curl);
		if (cc != CURLE_OK || tries == KUBE_MAX_THROTTLED)
			break;
		curl_easy_getinfo(k->curl, CURLINFO_RESPONSE_CODE,
		    &resp->status);
		if (!kube_retry_later(method, resp))
			break;
		wait = resp->retry_after_s > 0 ? resp->retry_after_s : 1;
		if (wait > KUBE_MAX_RETRY_AFTER_S)
			wait = KUBE_MAX_RETRY_AFTER_S;
		log_debug("kube: %s %s: HTTP %ld, again in %ld s", method,
		    path, resp->status, wait);
		buf_free(&b);
		buf_init(&b, KUBE_MAX_RESPONSE);
		resp->retry_after_s = 0;
		sleep((unsigned int)wait);
	}
	if (cc != CURLE_OK) {
		switch (cc) {
		case CURLE_PEER_FAILED_VERIFICATION:
		case CURLE_SSL_CACERT_BADFILE:
		case CURLE_SSL_CERTPROBLEM:
		case CURLE_SSL_ISSUER_ERROR:
			rc = KUBE_TLS;
			break;
		default:
			rc = KUBE_UNREACHABLE;
			break;
		}
		if (cc == CURLE_WRITE_ERROR && b.len > 0)
			snprintf(err, errlen, "%s %s: response over %u bytes",
			    method, k->server, KUBE_MAX_RESPONSE);
		else
			snprintf(err, errlen, "%s: %s", k->server,
			    k->errbuf[0] != '\0' ? k->errbuf :
			    curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(k->curl, CURLINFO_RESPONSE_CODE, &resp->status);
	resp->body = buf_steal(&b, &resp->len);
	if (resp->body == NULL) {
		resp->body = xstrdup("");
		resp->len = 0;
	}
	resp->json = cJSON_ParseWithLength(resp->body, resp->len);
	rc = KUBE_OK;
out:
	curl_easy_setopt(k->curl, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(k->curl, CURLOPT_POSTFIELDS, NULL);
	curl_easy_setopt(k->curl, CURLOPT_HEADERDATA, NULL);
	curl_easy_setopt(k->curl, CURLOPT_HEADERFUNCTION, NULL);
	curl_slist_free_all(hdrs);
	buf_free(&b);
	free(url);
	free(ct);
	return rc;
}

void
kube_response_message(const struct kube_response *r, char *out,
    size_t outlen)
{
	const cJSON	*m;

	m = cJSON_GetObjectItemCaseSensitive(r->json, "message");
	if (cJSON_IsString(m) && m->valuestring[0] != '\0')
		snprintf(out, outlen, "%s", m->valuestring);
	else
		snprintf(out, outlen, "HTTP %ld", r->status);
}

const char *
kube_response_reason(const struct kube_response *r)
{
	const cJSON	*m;

	m = cJSON_GetObjectItemCaseSensitive(r->json, "reason");
	return cJSON_IsString(m) ? m->valuestring : "";
}

/* GET path and expect a JSON object of the given kind. */
static enum kube_rc
kube_get_kind(struct kube *k, const char *path, const char *kind,
    struct kube_response *resp, long *status, char *err, size_t errlen)
{
	const cJSON	*kj;
	char		 msg[256];
	enum kube_rc	 rc;

	if ((rc = kube_request(k, "GET", path, NULL, NULL, 0, resp, err,
	    errlen)) != KUBE_OK)
		return rc;
	*status = resp->status;
	if (resp->status != 200) {
		kube_response_message(resp, msg, sizeof(msg));
		snprintf(err, errlen, "GET %s: %s", path, msg);
		return KUBE_HTTP;
	}
	kj = cJSON_GetObjectItemCaseSensitive(resp->json, "kind");
	if (!cJSON_IsString(kj) || strcmp(kj->valuestring, kind) != 0) {
		snprintf(err, errlen, "GET %s: not an %s (is this a Kubernetes "
		    "API server?)", path, kind);
		*status = 0;
		return KUBE_HTTP;
	}
	return KUBE_OK;
}

/* Add one group-version's resources (an APIResourceList) to d. */
static enum kube_rc
kube_discover_gv(struct kube *k, struct kube_disc *d, const char *group,
    const char *version, int preferred, long *status, char *err,
    size_t errlen)
{
	struct kube_response	 resp;
	const cJSON		*list, *e, *v;
	struct kube_dres	*dr;
	char			*path;
	enum kube_rc		 rc;
	int			 can_list, can_delete;

	path = group[0] == '\0' ? xasprintf("/api/%s", version) :
	    xasprintf("/apis/%s/%s", group, version);
	rc = kube_get_kind(k, path, "APIResourceList", &resp, status, err,
	    errlen);
	free(path);
	if (rc != KUBE_OK) {
		kube_response_clear(&resp);
		return rc;
	}
	list = cJSON_GetObjectItemCaseSensitive(resp.json, "resources");
	cJSON_ArrayForEach(e, list) {
		const char	*name, *kind;

		v = cJSON_GetObjectItemCaseSensitive(e, "name");
		name = cJSON_IsString(v) ? v->valuestring : NULL;
		v = cJSON_GetObjectItemCaseSensitive(e, "kind");
		kind = cJSON_IsString(v) ? v->valuestring : NULL;
		/* Subresources ("deployments/status") are not kinds. */
		if (name == NULL || kind == NULL || strchr(name, '/') != NULL)
			continue;
		can_list = can_delete = 0;
		cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(e,
		    "verbs")) {
			if (!cJSON_IsString(v))
				continue;
			if (strcmp(v->valuestring, "list") == 0)
				can_list = 1;
			if (strcmp(v->valuestring, "delete") == 0)
				can_delete = 1;
		}
		d->res = xreallocarray(d->res, d->n + 1, sizeof(*d->res));
		dr = &d->res[d->n++];
		memset(dr, 0, sizeof(*dr));
		dr->r.group = xstrdup(group);
		dr->r.version = xstrdup(version);
		dr->r.kind = xstrdup(kind);
		dr->r.plural = xstrdup(name);
		dr->r.namespaced = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
		    e, "namespaced"));
		dr->listable = can_list && can_delete;
		dr->preferred = preferred;
	}
	kube_response_clear(&resp);
	return KUBE_OK;
}

/* Full discovery; a group-version that fails (an aggregated API that is
 * down) is skipped, but /api and /apis themselves must answer. */
static enum kube_rc
kube_discover(struct kube *k, struct kube_disc **out, long *status, char *err,
    size_t errlen)
{
	struct kube_response	 resp;
	struct kube_disc	*d = xcalloc(1, sizeof(*d));
	const cJSON		*g, *v, *pv, *gv;
	enum kube_rc		 rc;
	char			 sub[256];
	long			 st = 0;

	*status = 0;
	if ((rc = kube_get_kind(k, "/api", "APIVersions", &resp, status, err,
	    errlen)) != KUBE_OK)
		goto fail;
	cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(resp.json,
	    "versions")) {
		if (!cJSON_IsString(v))
			continue;
		if ((rc = kube_discover_gv(k, d, "", v->valuestring,
		    v == cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(
		    resp.json, "versions"), 0), status, err, errlen)) != KUBE_OK)
			goto fail;
	}
	kube_response_clear(&resp);
	if ((rc = kube_get_kind(k, "/apis", "APIGroupList", &resp, status,
	    err, errlen)) != KUBE_OK)
		goto fail;
	cJSON_ArrayForEach(g, cJSON_GetObjectItemCaseSensitive(resp.json,
	    "groups")) {
		const cJSON	*name = cJSON_GetObjectItemCaseSensitive(g, "name");
		const char	*pref = NULL;

		if (!cJSON_IsString(name))
			continue;
		pv = cJSON_GetObjectItemCaseSensitive(g, "preferredVersion");
		pv = cJSON_GetObjectItemCaseSensitive(pv, "version");
		if (cJSON_IsString(pv))
			pref = pv->valuestring;
		cJSON_ArrayForEach(gv, cJSON_GetObjectItemCaseSensitive(g,
		    "versions")) {
			v = cJSON_GetObjectItemCaseSensitive(gv, "version");
			if (!cJSON_IsString(v))
				continue;
			rc = kube_discover_gv(k, d, name->valuestring,
			    v->valuestring, pref != NULL &&
			    strcmp(pref, v->valuestring) == 0, &st, sub,
			    sizeof(sub));
			if (rc == KUBE_UNREACHABLE || rc == KUBE_TLS ||
			    (rc == KUBE_HTTP && (st == 401 || st == 403))) {
				snprintf(err, errlen, "%s", sub);
				*status = st;
				goto fail;
			}
			if (rc != KUBE_OK)
				log_debug("kube: discovery of %s/%s skipped: %s",
				    name->valuestring, v->valuestring, sub);
		}
	}
	kube_response_clear(&resp);
	d->key = xstrdup(k->key);
	*out = d;
	return KUBE_OK;
fail:
	kube_response_clear(&resp);
	kube_disc_free(d);
	return rc;
}

/* Install a fresh discovery for its cluster, replacing the old one.
 * Caller holds kube_cache_lock; returns the replaced one for freeing
 * outside the lock. */
static struct kube_disc *
kube_cache_put_locked(struct kube_disc *d)
{
	struct kube_disc	**pp, *old;

	d->gen = ++kube_cache_gen;
	d->fetched_ms = util_mono_ms();
	for (pp = &kube_cache; *pp != NULL; pp = &(*pp)->next) {
		if (strcmp((*pp)->key, d->key) == 0) {
			old = *pp;
			d->next = old->next;
			*pp = d;
			return old;
		}
	}
	d->next = kube_cache;
	kube_cache = d;
	return NULL;
}

/* Caller holds kube_cache_lock. */
static struct kube_disc *
kube_cache_get(const char *key)
{
	struct kube_disc	*d;

	for (d = kube_cache; d != NULL; d = d->next)
		if (strcmp(d->key, key) == 0)
			return d;
	return NULL;
}

void
kube_discovery_invalidate(struct kube *k)
{
	struct kube_disc	**pp, *old;

	pthread_mutex_lock(&kube_cache_lock);
	for (pp = &kube_cache; *pp != NULL; pp = &(*pp)->next) {
		if (strcmp((*pp)->key, k->key) == 0) {
			old = *pp;
			*pp = old->next;
			pthread_mutex_unlock(&kube_cache_lock);
			kube_disc_free(old);
			return;
		}
	}
	pthread_mutex_unlock(&kube_cache_lock);
}

/* Split "apps/v1" into group "apps", version "v1"; "v1" is the core group. */
static void
kube_split_gv(const char *api_version, char **group, char **version)
{
	const char	*slash = strchr(api_version, '/');

	if (slash == NULL) {
		*group = xstrdup("");
		*version = xstrdup(api_version);
	} else {
		*group = xstrndup(api_version, (size_t)(slash - api_version));
		*version = xstrdup(slash + 1);
	}
}

/* Caller holds kube_cache_lock. */
static struct kube_flight **
kube_flight_find(const char *key)
{
	struct kube_flight	**pp;

	for (pp = &kube_flights; *pp != NULL; pp = &(*pp)->next)
		if (strcmp((*pp)->key, key) == 0)
			return pp;
	return NULL;
}

/*
 * Look up under the lock; 1 found, 0 not found, -1 no discovery yet.
 * *gen is the generation looked at (0 if none), *stale whether it is past
 * its time to live.
 */
static int
kube_cache_find(const char *key, const char *group, const char *version,
    const char *kind, struct kube_resource *out, uint64_t *gen, int *stale)
{
	struct kube_disc	*d;
	size_t			 i;
	int			 found = 0;

	*gen = 0;
	*stale = 0;
	pthread_mutex_lock(&kube_cache_lock);
	if ((d = kube_cache_get(key)) == NULL) {
		pthread_mutex_unlock(&kube_cache_lock);
		return -1;
	}
	*gen = d->gen;
	*stale = util_mono_ms() - d->fetched_ms > KUBE_DISCOVERY_TTL_MS;
	for (i = 0; i < d->n; i++) {
		if (strcmp(d->res[i].r.group, group) == 0 &&
		    strcmp(d->res[i].r.version, version) == 0 &&
		    strcmp(d->res[i].r.kind, kind) == 0) {
			kube_resource_copy(out, &d->res[i].r);
			found = 1;
			break;
		}
	}
	pthread_mutex_unlock(&kube_cache_lock);
	return found;
}

/*
 * Make sure k's cluster has a discovery newer than generation seen (0: any
 * discovery at all).  If another thread is fetching it, wait for that one
 * instead of fetching too; if it failed, fetch ourselves.
 */
static enum kube_rc
kube_refresh(struct kube *k, uint64_t seen, long *status, char *err,
    size_t errlen)
{
	struct kube_disc	*d, *old = NULL;
	struct kube_flight	*f, **pp;
	enum kube_rc		 rc;

	pthread_mutex_lock(&kube_cache_lock);
	for (;;) {
		d = kube_cache_get(k->key);
		if (d != NULL && d->gen != seen) {
			pthread_mutex_unlock(&kube_cache_lock);
			return KUBE_OK;
		}
		if (kube_flight_find(k->key) == NULL)
			break;
		pthread_cond_wait(&kube_cache_cond, &kube_cache_lock);
	}
	f = xcalloc(1, sizeof(*f));
	f->key = xstrdup(k->key);
	f->next = kube_flights;
	kube_flights = f;
	pthread_mutex_unlock(&kube_cache_lock);

	rc = kube_discover(k, &d, status, err, errlen);

	pthread_mutex_lock(&kube_cache_lock);
	if (rc == KUBE_OK)
		old = kube_cache_put_locked(d);
	if ((pp = kube_flight_find(k->key)) != NULL) {
		f = *pp;
		*pp = f->next;
		free(f->key);
		free(f);
	}
	pthread_cond_broadcast(&kube_cache_cond);
	pthread_mutex_unlock(&kube_cache_lock);
	kube_disc_free(old);
	return rc;
}

enum kube_rc
kube_resource_find(struct kube *k, const char *api_version, const char *kind,
    struct kube_resource *out, long *status, char *err, size_t errlen)
{
	char		*group, *version;
	enum kube_rc	 rc = KUBE_OK;
	uint64_t	 gen;
	int		 found, stale;

	memset(out, 0, sizeof(*out));
	*status = 0;
	kube_split_gv(api_version, &group, &version);
	found = kube_cache_find(k->key, group, version, kind, out, &gen,
	    &stale);
	if (found != 1 || stale) {
		/* Nothing cached yet, a kind that appeared since (CRD), or
		 * a discovery past its time to live (kept if refresh fails). */
		if ((rc = kube_refresh(k, gen, status, err, errlen)) != KUBE_OK) {
			if (found == 1) {
				log_debug("kube: discovery refresh failed, "
				    "keeping the cached one: %s", err);
				rc = KUBE_OK;
				*status = 0;
			}
			goto out;
		}
		kube_resource_clear(out);
		found = kube_cache_find(k->key, group, version, kind, out,
		    &gen, &stale);
	}
	if (found != 1) {
		snprintf(err, errlen, "the server does not serve kind %s in %s%s",
		    kind, api_version, group[0] != '\0' &&
		    strstr(group, ".k8s.io") == NULL ?
		    " (is its CustomResourceDefinition installed?)" : "");
		rc = KUBE_NO_KIND;
	}
out:
	free(group);
	free(version);
	return rc;
}

enum kube_rc
kube_resources_all(struct kube *k, struct kube_resource **outp, size_t *np,
    long *status, char *err, size_t errlen)
{
	struct kube_disc	*d;
	struct kube_resource	*out = NULL;
	size_t			 n = 0, i;
	enum kube_rc		 rc;

	uint64_t		 gen = 0;
	int			 stale = 0;

	*outp = NULL;
	*np = 0;
	*status = 0;
	pthread_mutex_lock(&kube_cache_lock);
	if ((d = kube_cache_get(k->key)) != NULL) {
		gen = d->gen;
		stale = util_mono_ms() - d->fetched_ms > KUBE_DISCOVERY_TTL_MS;
	}
	pthread_mutex_unlock(&kube_cache_lock);
	if ((d == NULL || stale) &&
	    (rc = kube_refresh(k, gen, status, err, errlen)) != KUBE_OK &&
	    d == NULL)
		return rc;
	pthread_mutex_lock(&kube_cache_lock);
	if ((d = kube_cache_get(k->key)) != NULL) {
		for (i = 0; i < d->n; i++) {
			if (!d->res[i].listable || !d->res[i].preferred)
				continue;
			out = xreallocarray(out, n + 1, sizeof(*out));
			kube_resource_copy(&out[n++], &d->res[i].r);
		}
	}
	pthread_mutex_unlock(&kube_cache_lock);
	*outp = out;
	*np = n;
	return KUBE_OK;
}

/* Percent-encode one path segment. */
static void
kube_escape(struct buf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char	 c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
		    c == '~' || c == ':')
			buf_add(b, s, 1);
		else
			buf_printf(b, "%%%02X", c);
	}
}

char *
kube_path(const struct kube_resource *r, const char *ns, const char *name)
{
	struct buf	 b;

	buf_init(&b, 0);
	if (r->group[0] == '\0')
		buf_printf(&b, "/api/%s", r->version);
	else
		buf_printf(&b, "/apis/%s/%s", r->group, r->version);
	if (r->namespaced && ns != NULL) {
		buf_addstr(&b, "/namespaces/");
		kube_escape(&b, ns);
	}
	buf_printf(&b, "/%s", r->plural);
	if (name != NULL) {
		buf_addstr(&b, "/");
		kube_escape(&b, name);
	}
	return buf_steal(&b, NULL);
}

char *
kube_describe(const char *kind, const char *ns, const char *name)
{
	if (ns != NULL && ns[0] != '\0')
		return xasprintf("%s %s/%s", kind, ns, name);
	return xasprintf("%s %s", kind, name);
}
