/*
 * registry_client.c: does a tag exist in a registry, and what digest does
 * it name?  (Docker Registry HTTP API v2 / OCI distribution, libcurl easy
 * API; blocking, so worker threads only.)
 *
 * DESIGN
 * - HEAD /v2/<repository>/manifests/<tag> with Accept headers for OCI
 *   index/manifest and Docker v2 manifest/list; the answer's
 *   Docker-Content-Digest is the digest.  A registry that sends no digest
 *   header gets a GET, and the digest is the SHA-256 of the manifest bytes.
 * - Auth: anonymous first.  On 401 with a Bearer challenge
 *   (realm, service, scope) a token is fetched from the realm, with the
 *   `registries:` entry's credentials as HTTP Basic when configured, and
 *   the request is repeated with it.  A Basic challenge is answered with
 *   the credentials directly.
 * - Transport: https.  Plain http only when the `registries:` entry says
 *   `insecure: true`, or for a loopback registry (localhost, 127.0.0.0/8,
 *   ::1) after https failed to connect, as Docker does for loopback.  A
 *   token realm over plain http is refused unless the registry itself is
 *   plain http (credentials never travel in clear to another host).
 * - docker.io is served by registry-1.docker.io.
 * - Secrets (passwords, tokens) never reach err or the log.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "config.h"
#include "http_client.h"
#include "policy.h"
#include "registry_client.h"
#include "util.h"

#define RC_HEADER_MAX		8192
#define RC_TOKEN_BODY_MAX	(64 * 1024)
#define RC_MANIFEST_MAX		(4 * 1024 * 1024)
#define RC_TIMEOUT_S		30L
#define RC_CONNECT_TIMEOUT_S	10L
#define RC_TAGS_PAGE_MAX	(4 * 1024 * 1024)
#define RC_TAGS_MAX		100000
#define RC_PAGES_MAX		1000

static const char *const rc_accept =
    "Accept: application/vnd.oci.image.index.v1+json, "
    "application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.docker.distribution.manifest.v2+json";

static pthread_once_t rc_once = PTHREAD_ONCE_INIT;

static void
rc_global_init(void)
{
	(void)curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* What one request brought back. */
struct rc_reply {
	long		 status;
	char		*digest;	/* Docker-Content-Digest */
	char		*challenge;	/* WWW-Authenticate */
	char		*link;		/* Link (tag list paging) */
	char		*etag;		/* ETag */
	char		*retry_after;	/* Retry-After */
	char		*ratelimit;	/* RateLimit-Remaining (Docker Hub) */
	struct buf	 body;
	size_t		 hdrbytes;
};

/* Forget the headers of one response (a redirect brings another). */
static void
rc_reply_headers_free(struct rc_reply *r)
{
	free(r->digest);
	free(r->challenge);
	free(r->link);
	free(r->etag);
	free(r->retry_after);
	free(r->ratelimit);
	r->digest = r->challenge = r->link = r->etag = NULL;
	r->retry_after = r->ratelimit = NULL;
}

static void
rc_reply_reset(struct rc_reply *r)
{
	rc_reply_headers_free(r);
	buf_free(&r->body);
	memset(r, 0, sizeof(*r));
}

/* Keep the first value of a header, drop repeats. */
static void
rc_header_keep(char **slot, char *v)
{
	if (*slot == NULL)
		*slot = v;
	else
		free(v);
}

/* Trimmed copy of a header value if the line is "name: value". */
static char *
rc_header_value(const char *line, size_t n, const char *name)
{
	size_t	 nl = strlen(name);
	const char *v, *end;

	if (n <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
		return NULL;
	v = line + nl + 1;
	end = line + n;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' ||
	    end[-1] == ' ' || end[-1] == '\t'))
		end--;
	return xstrndup(v, (size_t)(end - v));
}

static size_t
rc_header_cb(char *line, size_t size, size_t nitems, void *arg)
{
	struct rc_reply	*r = arg;
	size_t		 n = size * nitems;
	char		*v;

	r->hdrbytes += n;
	if (r->hdrbytes > RC_HEADER_MAX * 4)
		return 0;	/* abort: absurd headers */
	if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
		/* A new response (after a redirect): forget the last one. */
		rc_reply_headers_free(r);
		return n;
	}
	if (n > RC_HEADER_MAX)
		return n;
	if ((v = rc_header_value(line, n, "Docker-Content-Digest")) != NULL) {
		free(r->digest);
		r->digest = v;
	} else if ((v = rc_header_value(line, n, "WWW-Authenticate")) != NULL)
		rc_header_keep(&r->challenge, v);
	else if ((v = rc_header_value(line, n, "Link")) != NULL)
		rc_header_keep(&r->link, v);
	else if ((v = rc_header_value(line, n, "ETag")) != NULL)
		rc_header_keep(&r->etag, v);
	else if ((v = rc_header_value(line, n, "Retry-After")) != NULL)
		rc_header_keep(&r->retry_after, v);
	else if ((v = rc_header_value(line, n, "RateLimit-Remaining")) != NULL)
		rc_header_keep(&r->ratelimit, v);
	return n;
}

static size_t
rc_body_cb(char *data, size_t size, size_t nitems, void *arg)
{
	struct rc_reply	*r = arg;
	size_t		 n = size * nitems;

	if (buf_add(&r->body, data, n) == -1)
		return 0;	/* over the cap: abort the transfer */
	return n;
}

/* How to authenticate one request, and its conditional header. */
struct rc_auth {
	const char	*bearer;	/* token, or NULL */
	const char	*username;	/* Basic, or NULL */
	const char	*password;
	const char	*if_none_match;	/* an ETag, or NULL */
};

/*
 * One request.  method "HEAD" or "GET"; body capped at cap.  Returns 0
 * with r filled (any HTTP status), or -1 on a transport failure (err).
 */
static int
rc_request(const char *method, const char *url, const struct rc_auth *auth,
    size_t cap, struct rc_reply *r, char *err, size_t errlen)
{
	struct curl_slist	*hdrs = NULL, *tmp;
	CURL			*curl;
	CURLcode		 cc;
	char			*authz = NULL, *inm = NULL;
	int			 rc = -1;

	memset(r, 0, sizeof(*r));
	buf_init(&r->body, cap);
	if ((curl = curl_easy_init()) == NULL) {
		snprintf(err, errlen, "cannot create a curl handle");
		return -1;
	}
	if ((tmp = curl_slist_append(hdrs, rc_accept)) == NULL)
		goto nomem;
	hdrs = tmp;
	if (auth != NULL && auth->bearer != NULL) {
		authz = xasprintf("Authorization: Bearer %s", auth->bearer);
		if ((tmp = curl_slist_append(hdrs, authz)) == NULL)
			goto nomem;
		hdrs = tmp;
	}
	if (auth != NULL && auth->if_none_match != NULL) {
		inm = xasprintf("If-None-Match: %s", auth->if_none_match);
		if ((tmp = curl_slist_append(hdrs, inm)) == NULL)
			goto nomem;
		hdrs = tmp;
	}
	if (curl_easy_setopt(curl, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https") !=
	    CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") !=
	    CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 3L) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_TIMEOUT, RC_TIMEOUT_S) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT,
	    RC_CONNECT_TIMEOUT_S) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_USERAGENT,
	    "gitopsd/" GITOPSD_VERSION) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, rc_header_cb) !=
	    CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_HEADERDATA, r) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, rc_body_cb) !=
	    CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_WRITEDATA, r) != CURLE_OK) {
		snprintf(err, errlen, "cannot set up the request");
		goto out;
	}
	if (strcmp(method, "HEAD") == 0 &&
	    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L) != CURLE_OK) {
		snprintf(err, errlen, "cannot set up the request");
		goto out;
	}
	if (auth != NULL && auth->bearer == NULL && auth->username != NULL &&
	    (curl_easy_setopt(curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC) !=
	    CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_USERNAME, auth->username) !=
	    CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_PASSWORD,
	    auth->password != NULL ? auth->password : "") != CURLE_OK)) {
		snprintf(err, errlen, "cannot set up the request");
		goto out;
	}
	if ((cc = curl_easy_perform(curl)) != CURLE_OK) {
		snprintf(err, errlen, "%s", cc == CURLE_WRITE_ERROR ?
		    "response too large" : curl_easy_strerror(cc));
		goto out;
	}
	if (curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->status) !=
	    CURLE_OK) {
		snprintf(err, errlen, "no HTTP status");
		goto out;
	}
	rc = 0;
	goto out;
nomem:
	snprintf(err, errlen, "out of memory");
out:
	if (rc == -1)
		rc_reply_reset(r);
	curl_slist_free_all(hdrs);
	free(inm);
	if (authz != NULL) {
		explicit_bzero(authz, strlen(authz));
		free(authz);
	}
	curl_easy_cleanup(curl);
	return rc;
}

/*
 * One auth-param value of a challenge ('Bearer realm="...",service=...').
 * Returns a malloc'd unquoted value or NULL.
 */
static char *
rc_challenge_param(const char *ch, const char *name)
{
	const char	*p = ch;
	struct buf	 b;
	size_t		 nl = strlen(name), kl;
	const char	*key;

	/* Skip the scheme. */
	p += strcspn(p, " ");
	while (*p != '\0') {
		while (*p == ' ' || *p == ',')
			p++;
		key = p;
		while (*p != '\0' && *p != '=' && *p != ',' && *p != ' ')
			p++;
		kl = (size_t)(p - key);
		if (*p != '=')
			continue;
		p++;
		buf_init(&b, 4096);
		if (*p == '"') {
			p++;
			while (*p != '\0' && *p != '"') {
				if (*p == '\\' && p[1] != '\0')
					p++;
				if (buf_add(&b, p, 1) == -1)
					break;
				p++;
			}
			if (*p == '"')
				p++;
		} else {
			const char *v = p;

			p += strcspn(p, ", ");
			(void)buf_add(&b, v, (size_t)(p - v));
		}
		if (kl == nl && strncasecmp(key, name, nl) == 0) {
			(void)buf_add(&b, "", 0);
			return buf_steal(&b, NULL);
		}
		buf_free(&b);
	}
	return NULL;
}

/* Is host[:port] a loopback name or address? */
static int
rc_is_loopback(const char *hostport)
{
	char		 host[256];
	struct in6_addr	 a6;
	struct in_addr	 a4;
	size_t		 n;

	if (hostport[0] == '[') {
		n = strcspn(hostport + 1, "]");
		if (n >= sizeof(host))
			return 0;
		memcpy(host, hostport + 1, n);
		host[n] = '\0';
		return inet_pton(AF_INET6, host, &a6) == 1 &&
		    IN6_IS_ADDR_LOOPBACK(&a6);
	}
	n = strcspn(hostport, ":");
	if (n >= sizeof(host))
		return 0;
	memcpy(host, hostport, n);
	host[n] = '\0';
	if (strcasecmp(host, "localhost") == 0)
		return 1;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	return 0;
}

/* The `registries:` entry for a normalized host, or NULL. */
static const struct config_registry *
rc_find_registry(const struct config *cfg, const char *registry)
{
	struct image_ref ref;
	char		 err[64];
	size_t		 i;
	int		 same;

	if (cfg == NULL)
		return NULL;
	for (i = 0; i < cfg->nregistries; i++) {
		if (cfg->registries[i].host == NULL ||
		    image_ref_from_parts(cfg->registries[i].host, "x", &ref,
		    err, sizeof(err)) == -1)
			continue;
		same = strcmp(ref.registry, registry) == 0;
		image_ref_free(&ref);
		if (same)
			return &cfg->registries[i];
	}
	return NULL;
}

/* Fetch a bearer token from a challenge's realm.  malloc'd or NULL. */
static char *
rc_fetch_token(const char *challenge, const char *scheme,
    const char *repository, const struct config_registry *reg,
    char *err, size_t errlen)
{
	struct rc_reply	 r;
	struct rc_auth	 auth;
	char		*realm = NULL, *service = NULL, *scope = NULL;
	char		*url = NULL, *es = NULL, *esc = NULL, *token = NULL;
	CURL		*curl = NULL;
	cJSON		*root = NULL;
	const cJSON	*t;
	char		 why[160];

	memset(&r, 0, sizeof(r));
	if ((realm = rc_challenge_param(challenge, "realm")) == NULL) {
		snprintf(err, errlen, "bearer challenge without a realm");
		goto out;
	}
	if (strncmp(realm, "https://", 8) != 0 &&
	    !(strncmp(realm, "http://", 7) == 0 &&
	    (strcmp(scheme, "http") == 0 || rc_is_loopback(realm + 7)))) {
		snprintf(err, errlen, "token realm must be https");
		goto out;
	}
	service = rc_challenge_param(challenge, "service");
	scope = rc_challenge_param(challenge, "scope");
	if (scope == NULL)
		scope = xasprintf("repository:%s:pull", repository);
	if ((curl = curl_easy_init()) == NULL) {
		snprintf(err, errlen, "cannot create a curl handle");
		goto out;
	}
	if ((esc = curl_easy_escape(curl, scope, 0)) == NULL ||
	    (service != NULL &&
	    (es = curl_easy_escape(curl, service, 0)) == NULL)) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	url = xasprintf("%s%cscope=%s%s%s", realm,
	    strchr(realm, '?') != NULL ? '&' : '?', esc,
	    es != NULL ? "&service=" : "", es != NULL ? es : "");
	memset(&auth, 0, sizeof(auth));
	if (reg != NULL && reg->username != NULL) {
		auth.username = reg->username;
		auth.password = reg->password;
	}
	if (rc_request("GET", url, &auth, RC_TOKEN_BODY_MAX, &r, why,
	    sizeof(why)) == -1) {
		snprintf(err, errlen, "token request failed: %s", why);
		goto out;
	}
	if (r.status == 401 || r.status == 403) {
		snprintf(err, errlen, "token request refused (HTTP %ld): %s",
		    r.status, auth.username != NULL ? "wrong credentials" :
		    "credentials needed");
		goto out;
	}
	if (r.status != 200) {
		snprintf(err, errlen, "token request: HTTP %ld", r.status);
		goto out;
	}
	if (r.body.data == NULL || (root = cJSON_ParseWithLength(r.body.data,
	    r.body.len)) == NULL) {
		snprintf(err, errlen, "token response is not JSON");
		goto out;
	}
	t = cJSON_GetObjectItemCaseSensitive(root, "token");
	if (!cJSON_IsString(t) || t->valuestring[0] == '\0')
		t = cJSON_GetObjectItemCaseSensitive(root, "access_token");
	if (!cJSON_IsString(t) || t->valuestring[0] == '\0' ||
	    strpbrk(t->valuestring, "\r\n") != NULL) {
		snprintf(err, errlen, "token response has no token");
		goto out;
	}
	token = xstrdup(t->valuestring);
out:
	if (r.body.data != NULL)
		explicit_bzero(r.body.data, r.body.len);
	rc_reply_reset(&r);
	cJSON_Delete(root);
	curl_free(es);
	curl_free(esc);
	if (curl != NULL)
		curl_easy_cleanup(curl);
	free(url);
	free(realm);
	free(service);
	free(scope);
	return token;
}

/*
 * One conversation with a registry about one repository.  The first
 * request goes out anonymous; a 401 challenge is answered once (a bearer
 * token from its realm, or Basic credentials from `registries:`) and the
 * answer is kept for the following requests (the pages of a tag list).
 */
struct rc_session {
	const char			*scheme;
	const char			*apihost;
	const char			*repository;
	const struct config_registry	*reg;
	struct rc_auth			 auth;
	char				*token;
	int				 authed;
};

static void
rc_session_end(struct rc_session *s)
{
	if (s->token != NULL) {
		explicit_bzero(s->token, strlen(s->token));
		free(s->token);
	}
	s->token = NULL;
}

/*
 * One request in a session.  Returns 0 with r filled (any status), -1 on
 * an error (err), or -2 when the very first request could not reach the
 * registry (another scheme may).
 */
static int
rc_session_request(struct rc_session *s, const char *method, const char *url,
    const char *if_none_match, size_t cap, struct rc_reply *r, char *err,
    size_t errlen)
{
	struct rc_auth	 a = s->auth;
	char		 why[200];

	a.if_none_match = if_none_match;
	if (rc_request(method, url, &a, cap, r, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "%s://%s: %s", s->scheme, s->apihost,
		    why);
		return s->authed ? -1 : -2;
	}
	if (r->status != 401 || r->challenge == NULL || s->authed)
		return 0;
	if (strncasecmp(r->challenge, "Bearer", 6) == 0) {
		s->token = rc_fetch_token(r->challenge, s->scheme,
		    s->repository, s->reg, why, sizeof(why));
		if (s->token == NULL) {
			snprintf(err, errlen, "%s: %s", s->apihost, why);
			return -1;
		}
		s->auth.bearer = s->token;
	} else if (strncasecmp(r->challenge, "Basic", 5) == 0 &&
	    s->reg != NULL && s->reg->username != NULL) {
		s->auth.username = s->reg->username;
		s->auth.password = s->reg->password;
	} else {
		snprintf(err, errlen, "%s: authentication required and no "
		    "credentials configured (registries:)", s->apihost);
		return -1;
	}
	s->authed = 1;
	rc_reply_reset(r);
	a = s->auth;
	a.if_none_match = if_none_match;
	if (rc_request(method, url, &a, cap, r, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "%s: %s", s->apihost, why);
		return -1;
	}
	return 0;
}

/*
 * Ask one scheme.  Returns 0 (digest set), 1 (no such tag), -1 (err), or
 * -2 for a transport failure worth retrying over another scheme.
 */
static int
rc_verify_scheme(const char *scheme, const char *apihost,
    const struct config_registry *reg, const char *repository,
    const char *tag, char **digest_out, char *err, size_t errlen)
{
	struct rc_session	 sess = { scheme, apihost, repository, reg,
				    { NULL, NULL, NULL, NULL }, NULL, 0 };
	struct rc_reply		 r;
	char			*url, hex[65];
	int			 rc;

	memset(&r, 0, sizeof(r));
	url = xasprintf("%s://%s/v2/%s/manifests/%s", scheme, apihost,
	    repository, tag);
	if ((rc = rc_session_request(&sess, "HEAD", url, NULL, 0, &r, err,
	    errlen)) != 0)
		goto out;
	rc = -1;
	switch (r.status) {
	case 200:
		break;
	case 404:
		snprintf(err, errlen, "%s/%s:%s: no such tag", apihost,
		    repository, tag);
		rc = 1;
		goto out;
	case 401:
	case 403:
		snprintf(err, errlen, "%s: access denied (HTTP %ld)%s", apihost,
		    r.status, sess.authed ? "" : "; configure credentials");
		goto out;
	default:
		snprintf(err, errlen, "%s: HTTP %ld for the manifest", apihost,
		    r.status);
		goto out;
	}
	if (r.digest == NULL) {
		/* No digest header: the digest of the manifest bytes. */
		rc_reply_reset(&r);
		if (rc_session_request(&sess, "GET", url, NULL,
		    RC_MANIFEST_MAX, &r, err, errlen) != 0)
			goto out;
		if (r.status != 200 || r.body.data == NULL) {
			snprintf(err, errlen, "%s: HTTP %ld fetching the "
			    "manifest", apihost, r.status);
			goto out;
		}
		util_sha256_hex(r.body.data, r.body.len, hex);
		r.digest = xasprintf("sha256:%s", hex);
	}
	if (!image_digest_valid(r.digest)) {
		snprintf(err, errlen, "%s: malformed Docker-Content-Digest",
		    apihost);
		goto out;
	}
	*digest_out = r.digest;
	r.digest = NULL;
	rc = 0;
out:
	rc_reply_reset(&r);
	rc_session_end(&sess);
	free(url);
	return rc;
}

/* Where to send requests about registry/repository: the validated name
 * (its parts become a URL), the `registries:` entry and the API host. */
static int
rc_target(const struct config *cfg, const char *registry,
    const char *repository, struct image_ref *ref,
    const struct config_registry **reg, const char **apihost, char *err,
    size_t errlen)
{
	if (pthread_once(&rc_once, rc_global_init) != 0) {
		snprintf(err, errlen, "cannot initialize libcurl");
		return -1;
	}
	if (image_ref_from_parts(registry, repository, ref, err,
	    errlen) == -1)
		return -1;
	*reg = rc_find_registry(cfg, ref->registry);
	*apihost = strcmp(ref->registry, "docker.io") == 0 ?
	    "registry-1.docker.io" : ref->registry;
	return 0;
}

/* The schemes to try in order: plain http when the entry says insecure;
 * else https, then http for a loopback registry that https cannot reach. */
static size_t
rc_schemes(const struct config_registry *reg, const char *apihost,
    const char *out[2])
{
	if (reg != NULL && reg->insecure) {
		out[0] = "http";
		return 1;
	}
	out[0] = "https";
	out[1] = "http";
	return rc_is_loopback(apihost) ? 2 : 1;
}

int
registry_verify_tag(const struct config *cfg, const char *registry,
    const char *repository, const char *tag, char **digest_out, char *err,
    size_t errlen)
{
	const struct config_registry *reg;
	struct image_ref	 ref;
	const char		*apihost, *schemes[2];
	size_t			 i, n;
	int			 rc = -1;

	*digest_out = NULL;
	if (rc_target(cfg, registry, repository, &ref, &reg, &apihost, err,
	    errlen) == -1)
		return -1;
	if (!image_tag_valid(tag)) {
		snprintf(err, errlen, "bad tag");
		image_ref_free(&ref);
		return -1;
	}
	n = rc_schemes(reg, apihost, schemes);
	for (i = 0; i < n; i++)
		if ((rc = rc_verify_scheme(schemes[i], apihost, reg,
		    ref.repository, tag, digest_out, err, errlen)) != -2)
			break;
	image_ref_free(&ref);
	return rc == -2 ? -1 : rc;
}

void
registry_tags_clear(struct registry_tags *t)
{
	size_t	 i;

	for (i = 0; i < t->n; i++)
		free(t->tags[i]);
	free(t->tags);
	free(t->etag);
	memset(t, 0, sizeof(*t));
	t->remaining = -1;
}

/*
 * Whether the link-params in [p, end) (RFC 8288: '; name=value' with
 * token or quoted-string values) give rel a "next" among its
 * space-separated types.  Only the first rel counts, as the RFC says.
 */
static int
rc_link_is_next(const char *p, const char *end)
{
	const char	*name, *v, *vend, *t;
	size_t		 nlen;

	while (p < end) {
		while (p < end && (*p == ' ' || *p == '\t' || *p == ';'))
			p++;
		name = p;
		while (p < end && *p != '=' && *p != ';' && *p != ' ' &&
		    *p != '\t')
			p++;
		nlen = (size_t)(p - name);
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		v = vend = p;
		if (p < end && *p == '=') {
			p++;
			while (p < end && (*p == ' ' || *p == '\t'))
				p++;
			if (p < end && *p == '"') {
				v = ++p;
				while (p < end && *p != '"') {
					if (*p == '\\' && p + 1 < end)
						p++;
					p++;
				}
				vend = p;
				if (p < end)
					p++;
			} else {
				v = p;
				while (p < end && *p != ';' && *p != ' ' &&
				    *p != '\t')
					p++;
				vend = p;
			}
		}
		if (nlen != 3 || strncasecmp(name, "rel", 3) != 0)
			continue;
		for (t = v; t < vend;) {
			while (t < vend && *t == ' ')
				t++;
			if (vend - t >= 4 && strncasecmp(t, "next", 4) == 0 &&
			    (t + 4 == vend || t[4] == ' '))
				return 1;
			while (t < vend && *t != ' ')
				t++;
		}
		return 0;
	}
	return 0;
}

/* The end of the link-value starting at p: the next ',' outside a
 * quoted-string, or the end of the header. */
static const char *
rc_link_value_end(const char *p)
{
	int	 quoted = 0;

	for (; *p != '\0'; p++) {
		if (quoted && *p == '\\' && p[1] != '\0')
			p++;
		else if (*p == '"')
			quoted = !quoted;
		else if (!quoted && *p == ',')
			break;
	}
	return p;
}

/*
 * The next page from a Link header ('<url>; rel="next"'), as a URL on the
 * same registry: relative targets are resolved against it, absolute ones
 * must name the same scheme and host (the session's credentials go with
 * it).  Returns malloc'd URL, NULL at the last page; *bad on a target
 * elsewhere.
 */
static char *
rc_next_page(const char *link, const char *scheme, const char *apihost,
    int *bad)
{
	const char	*p = link, *lt, *gt, *end;
	char		*target = NULL, *origin, *url = NULL;
	size_t		 olen;

	*bad = 0;
	while (*p != '\0') {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p != '<')
			return NULL;
		lt = p + 1;
		if ((gt = strchr(lt, '>')) == NULL)
			return NULL;
		end = rc_link_value_end(gt + 1);
		if (rc_link_is_next(gt + 1, end)) {
			target = xstrndup(lt, (size_t)(gt - lt));
			break;
		}
		p = end;
	}
	if (target == NULL)
		return NULL;
	if (target[0] == '/' && target[1] != '/')
		url = xasprintf("%s://%s%s", scheme, apihost, target);
	else {
		origin = xasprintf("%s://%s/", scheme, apihost);
		olen = strlen(origin);
		if (strncasecmp(target, origin, olen) == 0)
			url = xasprintf("%s%s", origin, target + olen);
		else
			*bad = 1;
		free(origin);
	}
	free(target);
	return url;
}

/* Append a page's {"tags": [...]} to t; tags that are not valid tags are
 * skipped.  -1 if the page is not a tag list. */
static int
rc_add_tags(struct registry_tags *t, const char *body, size_t len, char *err,
    size_t errlen)
{
	cJSON		*root;
	const cJSON	*tags, *e;

	if (body == NULL || (root = cJSON_ParseWithLength(body, len)) == NULL) {
		snprintf(err, errlen, "tag list is not JSON");
		return -1;
	}
	tags = cJSON_GetObjectItemCaseSensitive(root, "tags");
	if (!cJSON_IsArray(tags) && !cJSON_IsNull(tags)) {
		cJSON_Delete(root);
		snprintf(err, errlen, "tag list without \"tags\"");
		return -1;
	}
	cJSON_ArrayForEach(e, tags) {
		if (!cJSON_IsString(e) || !image_tag_valid(e->valuestring))
			continue;
		if (t->n >= RC_TAGS_MAX)
			break;
		t->tags = xreallocarray(t->tags, t->n + 1, sizeof(*t->tags));
		t->tags[t->n++] = xstrdup(e->valuestring);
	}
	cJSON_Delete(root);
	return 0;
}

int
registry_tags_page(struct registry_tags *t, const char *body, size_t len,
    const char *link, const char *scheme, const char *apihost, char **next,
    char *err, size_t errlen)
{
	int	 bad = 0;

	*next = NULL;
	if (rc_add_tags(t, body, len, err, errlen) == -1)
		return -1;
	if (link != NULL &&
	    (*next = rc_next_page(link, scheme, apihost, &bad)) == NULL &&
	    bad) {
		snprintf(err, errlen, "%s: tag list pages to another host",
		    apihost);
		return -1;
	}
	return 0;
}

/* A throttled answer: how long to wait, and the remaining-quota header. */
static void
rc_note_limits(struct registry_tags *t, const struct rc_reply *r)
{
	int	 secs;

	if (r->retry_after != NULL && (secs = http_client_parse_retry_after(
	    r->retry_after, (long long)time(NULL))) >= 0)
		t->retry_after_s = secs;
	if (r->ratelimit != NULL && isdigit((unsigned char)r->ratelimit[0]))
		t->remaining = strtol(r->ratelimit, NULL, 10);
}

/* Every page of one scheme's tag list.  0, REGISTRY_THROTTLED, -1, or -2
 * (could not connect: another scheme may). */
static int
rc_list_scheme(const char *scheme, const char *apihost,
    const struct config_registry *reg, const char *repository,
    const char *if_none_match, struct registry_tags *t, char *err,
    size_t errlen)
{
	struct rc_session	 sess = { scheme, apihost, repository, reg,
				    { NULL, NULL, NULL, NULL }, NULL, 0 };
	struct rc_reply		 r;
	char			*url, *next;
	int			 rc, pages = 0;

	memset(&r, 0, sizeof(r));
	url = xasprintf("%s://%s/v2/%s/tags/list?n=1000", scheme, apihost,
	    repository);
	for (;;) {
		rc = rc_session_request(&sess, "GET", url, pages == 0 ?
		    if_none_match : NULL, RC_TAGS_PAGE_MAX, &r, err, errlen);
		if (rc != 0)
			break;
		rc = -1;
		rc_note_limits(t, &r);
		if (r.status == 304 && pages == 0 && if_none_match != NULL) {
			t->not_modified = 1;
			rc = 0;
			break;
		}
		if (r.status == 429) {
			snprintf(err, errlen, "%s: too many requests (HTTP 429)",
			    apihost);
			rc = REGISTRY_THROTTLED;
			break;
		}
		if (r.status == 401 || r.status == 403) {
			snprintf(err, errlen, "%s: access denied (HTTP %ld)%s",
			    apihost, r.status, sess.authed ? "" :
			    "; configure credentials");
			break;
		}
		if (r.status == 404) {
			snprintf(err, errlen, "%s/%s: no such repository",
			    apihost, repository);
			break;
		}
		if (r.status != 200) {
			snprintf(err, errlen, "%s: HTTP %ld listing tags",
			    apihost, r.status);
			break;
		}
		if (registry_tags_page(t, r.body.data, r.body.len, r.link,
		    scheme, apihost, &next, err, errlen) == -1)
			break;
		if (pages == 0 && r.etag != NULL && r.link == NULL)
			t->etag = xstrdup(r.etag);
		if (next == NULL) {
			rc = 0;
			break;
		}
		if (++pages >= RC_PAGES_MAX) {
			free(next);
			snprintf(err, errlen, "%s: over %d pages of tags",
			    apihost, RC_PAGES_MAX);
			break;
		}
		free(url);
		url = next;
		rc_reply_reset(&r);
	}
	rc_reply_reset(&r);
	rc_session_end(&sess);
	free(url);
	return rc;
}

int
registry_list_tags(const struct config *cfg, const char *registry,
    const char *repository, const char *if_none_match,
    struct registry_tags *t, char *err, size_t errlen)
{
	const struct config_registry *reg;
	struct image_ref	 ref;
	const char		*apihost, *schemes[2];
	size_t			 i, n;
	int			 rc = -1, ra;
	long			 rem;

	memset(t, 0, sizeof(*t));
	t->remaining = -1;
	if (rc_target(cfg, registry, repository, &ref, &reg, &apihost, err,
	    errlen) == -1)
		return -1;
	n = rc_schemes(reg, apihost, schemes);
	for (i = 0; i < n; i++) {
		registry_tags_clear(t);
		if ((rc = rc_list_scheme(schemes[i], apihost, reg,
		    ref.repository, if_none_match, t, err, errlen)) != -2)
			break;
	}
	image_ref_free(&ref);
	if (rc != 0 && rc != REGISTRY_THROTTLED) {
		/* Keep what explains a wait; drop a partial list. */
		ra = t->retry_after_s;
		rem = t->remaining;
		registry_tags_clear(t);
		t->retry_after_s = ra;
		t->remaining = rem;
		return -1;
	}
	return rc;
}
