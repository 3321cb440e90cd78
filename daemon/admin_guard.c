/*
 * admin_guard.c: the admin listener's defences against browsers.
 *
 * The admin API is often open (no token on loopback), and a browser on the
 * same machine can reach loopback.  Two attacks need no token:
 *
 * - DNS rebinding: a page at evil.example whose name then resolves to
 *   127.0.0.1 reads and writes the API as same-origin.  Its requests carry
 *   "Host: evil.example", so only the listener's own address is accepted
 *   (localhost too on loopback; on a wildcard address any IP literal, which
 *   no DNS answer can stand for; plus admin.allowed_hosts).  Answer: 421.
 * - Cross-site request forgery: a page posts to http://127.0.0.1:9090
 *   without reading the answer.  Browsers send Origin with every such
 *   POST, and a form can only send the three "simple" content types, so a
 *   state-changing request with a foreign Origin or a form content type is
 *   refused.  Answer: 403.  gitopsctl and curl send neither.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "admin_guard.h"
#include "config.h"
#include "handler.h"
#include "http.h"

#define ADMIN_GUARD_HOST_MAX	256

/*
 * "host", "host:port", "[v6]" or "[v6]:port" into a lower-case host and a
 * port (-1 when absent).  -1 when it is none of those.
 */
static int
admin_guard_split(const char *s, char *host, size_t hostlen, int *port)
{
	const char	*end, *colon;
	size_t		 n, i;
	char		*e;
	long		 p;

	*port = -1;
	if (s[0] == '[') {
		if ((end = strchr(s, ']')) == NULL)
			return -1;
		n = (size_t)(end - s - 1);
		s++;
		colon = end[1] == ':' ? end + 1 : NULL;
		if (end[1] != '\0' && colon == NULL)
			return -1;
	} else {
		colon = strchr(s, ':');
		if (colon != NULL && strchr(colon + 1, ':') != NULL)
			return -1;	/* IPv6 without brackets */
		n = colon != NULL ? (size_t)(colon - s) : strlen(s);
	}
	if (n == 0 || n >= hostlen)
		return -1;
	for (i = 0; i < n; i++) {
		if (isspace((unsigned char)s[i]) || s[i] == '/' ||
		    s[i] == '@' || s[i] == '\\')
			return -1;
		host[i] = (char)tolower((unsigned char)s[i]);
	}
	host[n] = '\0';
	if (colon != NULL) {
		/* One spelling per port: no sign, space or leading zero. */
		if (!isdigit((unsigned char)colon[1]) || colon[1] == '0')
			return -1;
		p = strtol(colon + 1, &e, 10);
		if (*e != '\0' || p < 1 || p > 65535)
			return -1;
		*port = (int)p;
	}
	return 0;
}

static int
admin_guard_is_ip(const char *host)
{
	unsigned char	 a[16];

	return inet_pton(AF_INET, host, a) == 1 ||
	    inet_pton(AF_INET6, host, a) == 1;
}

static int
admin_guard_loopback(const char *host)
{
	return strcmp(host, "localhost") == 0 ||
	    strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0;
}

/* Is host (lower case) with port (-1: none) one this listener answers? */
static int
admin_guard_host_ok(const struct config_admin *a, int lport, const char *h,
    int hport)
{
	char	 lh[ADMIN_GUARD_HOST_MAX], eh[ADMIN_GUARD_HOST_MAX];
	int	 ep;
	size_t	 i;

	for (i = 0; i < a->nallowed_hosts; i++)
		if (admin_guard_split(a->allowed_hosts[i], eh, sizeof(eh),
		    &ep) == 0 && strcmp(eh, h) == 0 &&
		    (ep == -1 || ep == hport))
			return 1;
	if ((hport == -1 ? 80 : hport) != lport || a->listen.host == NULL)
		return 0;
	snprintf(lh, sizeof(lh), "%s", a->listen.host);
	for (i = 0; lh[i] != '\0'; i++)
		lh[i] = (char)tolower((unsigned char)lh[i]);
	if (strcmp(h, lh) == 0)
		return 1;
	if (admin_guard_loopback(lh))
		return strcmp(h, "localhost") == 0 ||
		    (strcmp(lh, "localhost") == 0 && admin_guard_loopback(h) &&
		    admin_guard_is_ip(h));
	if (strcmp(lh, "0.0.0.0") == 0 || strcmp(lh, "::") == 0)
		return strcmp(h, "localhost") == 0 || admin_guard_is_ip(h);
	return 0;
}

/* The value of the only header called name; NULL if absent; *n: count. */
static const char *
admin_guard_header(const struct http_request_info *ri, const char *name,
    size_t *n)
{
	const char	*v = NULL;
	size_t		 i;

	*n = 0;
	for (i = 0; i < ri->nheaders; i++)
		if (strcasecmp(ri->headers[i].name, name) == 0) {
			v = ri->headers[i].value;
			(*n)++;
		}
	return v;
}

/* The content types a cross-site form (or no-cors fetch) can send. */
static int
admin_guard_form_type(const char *ct)
{
	static const char *const forms[] = {
		"application/x-www-form-urlencoded", "multipart/form-data",
		"text/plain",
	};
	size_t	 i, n;

	while (*ct == ' ' || *ct == '\t')
		ct++;
	n = strcspn(ct, "; \t");
	for (i = 0; i < sizeof(forms) / sizeof(forms[0]); i++)
		if (n == strlen(forms[i]) && strncasecmp(ct, forms[i], n) == 0)
			return 1;
	return 0;
}

/* Is Origin the same origin as the (accepted) Host? */
static int
admin_guard_same_origin(const char *origin, const char *host)
{
	char	 oh[ADMIN_GUARD_HOST_MAX], hh[ADMIN_GUARD_HOST_MAX];
	int	 op, hp, def;

	if (strncasecmp(origin, "http://", 7) == 0) {
		origin += 7;
		def = 80;
	} else if (strncasecmp(origin, "https://", 8) == 0) {
		origin += 8;
		def = 443;	/* a TLS proxy in front of the listener */
	} else
		return 0;	/* "null" (sandboxed, file:) and the rest */
	if (admin_guard_split(origin, oh, sizeof(oh), &op) == -1 ||
	    admin_guard_split(host, hh, sizeof(hh), &hp) == -1)
		return 0;
	return strcmp(oh, hh) == 0 &&
	    (op == -1 ? def : op) == (hp == -1 ? def : hp);
}

int
admin_guard_check(const struct config_admin *a, int port,
    const struct http_request_info *ri, char *why, size_t whylen)
{
	const char	*host, *origin, *ct;
	char		 h[ADMIN_GUARD_HOST_MAX];
	size_t		 n;
	int		 hp;

	host = admin_guard_header(ri, "Host", &n);
	if (n != 1 || admin_guard_split(host, h, sizeof(h), &hp) == -1 ||
	    !admin_guard_host_ok(a, port, h, hp)) {
		snprintf(why, whylen, "the Host header does not name this "
		    "admin listener (admin.listen, admin.allowed_hosts)");
		return 421;
	}
	if (strcmp(ri->method, "GET") == 0 || strcmp(ri->method, "HEAD") == 0 ||
	    strcmp(ri->method, "OPTIONS") == 0)
		return 0;
	origin = admin_guard_header(ri, "Origin", &n);
	if (n > 1 || (origin != NULL &&
	    !admin_guard_same_origin(origin, host))) {
		snprintf(why, whylen, "cross-origin request refused (Origin "
		    "is not this admin listener)");
		return 403;
	}
	ct = admin_guard_header(ri, "Content-Type", &n);
	if (ct != NULL && admin_guard_form_type(ct)) {
		snprintf(why, whylen, "form content type refused on a "
		    "state-changing request (send application/json or none)");
		return 403;
	}
	return 0;
}
