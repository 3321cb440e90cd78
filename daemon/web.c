/*
 * web.c: serves the status page's files (web/, embedded by
 * scripts/embed-web.sh) on the admin listener.
 *
 * Each file is embedded twice, as is and pre-compressed with gzip -9 -n,
 * so the daemon needs no zlib.  The two are different representations, so
 * they carry different strong ETags ("<sha>" and "<sha>-gz") and the
 * answer varies by Accept-Encoding.  Cache-Control: no-cache makes a
 * browser revalidate each load: after an upgrade it gets the new page at
 * once, before that a 304 of a few hundred bytes.  The Content-Security-
 * Policy allows this origin's script, style, images and fetches only: no
 * inline script, no eval, no framing, no form posts elsewhere.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "handler.h"
#include "http.h"
#include "web.h"

#define WEB_CSP	"Content-Security-Policy: default-src 'none'; " \
	"script-src 'self'; style-src 'self'; img-src 'self'; " \
	"connect-src 'self'; base-uri 'none'; form-action 'none'; " \
	"frame-ancestors 'none'"

static const struct {
	const char	*ext;
	const char	*type;
} web_types[] = {
	{ ".html", "text/html; charset=utf-8" },
	{ ".css", "text/css; charset=utf-8" },
	{ ".js", "text/javascript; charset=utf-8" },
	{ ".svg", "image/svg+xml" },
	{ ".json", "application/json" },
};

static const char *
web_type(const char *path)
{
	size_t	 i, n = strlen(path), e;

	for (i = 0; i < sizeof(web_types) / sizeof(web_types[0]); i++) {
		e = strlen(web_types[i].ext);
		if (n > e && strcmp(path + n - e, web_types[i].ext) == 0)
			return web_types[i].type;
	}
	return "application/octet-stream";
}

const struct web_asset *
web_asset_find(const char *path)
{
	const struct web_asset	*a;

	if (strcmp(path, "/") == 0)
		path = "/index.html";
	for (a = web_assets; a->path != NULL; a++)
		if (strcmp(a->path, path) == 0)
			return a;
	return NULL;
}

static const char *
web_header(const struct http_request_info *ri, const char *name)
{
	size_t	 i;

	for (i = 0; i < ri->nheaders; i++)
		if (strcasecmp(ri->headers[i].name, name) == 0)
			return ri->headers[i].value;
	return NULL;
}

static const char *
web_skip_ows(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

/*
 * RFC 9110 12.5.3: a list of codings with optional weights.  An explicit
 * gzip (or x-gzip) entry decides; otherwise "*" does; q=0 refuses.
 */
int
web_accepts_gzip(const char *v)
{
	const char	*p = v, *tok, *semi, *q;
	size_t		 n;
	int		 gzip = -1, star = -1, ok;
	double		 w;

	if (v == NULL)
		return 0;
	while (*p != '\0') {
		p = web_skip_ows(p);
		tok = p;
		while (*p != '\0' && *p != ',' && *p != ';' && *p != ' ' &&
		    *p != '\t')
			p++;
		n = (size_t)(p - tok);
		ok = 1;
		/* Parameters up to the next comma; only q matters. */
		while (*p != '\0' && *p != ',') {
			semi = p;
			p++;
			if (*semi != ';')
				continue;
			q = web_skip_ows(p);
			if ((q[0] == 'q' || q[0] == 'Q') && q[1] == '=') {
				w = strtod(q + 2, NULL);
				ok = w > 0;
			}
		}
		if ((n == 4 && strncasecmp(tok, "gzip", 4) == 0) ||
		    (n == 6 && strncasecmp(tok, "x-gzip", 6) == 0))
			gzip = ok;
		else if (n == 1 && *tok == '*')
			star = ok;
		if (*p == ',')
			p++;
	}
	if (gzip != -1)
		return gzip;
	return star == 1;
}

/*
 * RFC 9110 13.1.2: "*" or a list of entity tags, compared weakly (a W/
 * prefix is ignored).  Tags are quoted strings and may hold commas.
 */
int
web_etag_match(const char *v, const char *etag)
{
	const char	*p = v, *start;
	size_t		 n, elen = strlen(etag);

	if (v == NULL)
		return 0;
	for (;;) {
		p = web_skip_ows(p);
		if (*p == '\0')
			return 0;
		if (*p == '*')
			return 1;
		if (strncmp(p, "W/", 2) == 0)
			p += 2;
		if (*p != '"')
			return 0;	/* malformed: never a match */
		start = p++;
		while (*p != '\0' && *p != '"')
			p++;
		if (*p != '"')
			return 0;
		p++;
		n = (size_t)(p - start);
		if (n == elen && memcmp(start, etag, n) == 0)
			return 1;
		p = web_skip_ows(p);
		if (*p == ',')
			p++;
		else if (*p != '\0')
			return 0;
	}
}

int
web_serve(struct http_request *req)
{
	const struct http_request_info	*ri = http_request_info(req);
	const struct web_asset		*a;
	const char			*hdr[10];
	char				 etag[96];
	int				 gz, nh = 0;

	if ((a = web_asset_find(ri->path)) == NULL)
		return 0;
	if (strcmp(ri->method, "GET") != 0 && strcmp(ri->method, "HEAD") != 0) {
		static const char *const allow[] = { "Allow: GET, HEAD", NULL };

		http_reply_error(req, 405, "method not allowed", allow);
		return 1;
	}
	gz = web_accepts_gzip(web_header(ri, "Accept-Encoding"));
	/* The gzip copy's tag: the same hash, marked, inside the quotes. */
	if (gz)
		snprintf(etag, sizeof(etag), "ETag: %.*s-gz\"",
		    (int)strlen(a->etag) - 1, a->etag);
	else
		snprintf(etag, sizeof(etag), "ETag: %s", a->etag);
	hdr[nh++] = etag;
	hdr[nh++] = "Cache-Control: no-cache";
	hdr[nh++] = "Vary: Accept-Encoding";
	hdr[nh++] = WEB_CSP;
	hdr[nh++] = "X-Content-Type-Options: nosniff";
	hdr[nh++] = "Referrer-Policy: no-referrer";
	hdr[nh++] = "X-Frame-Options: DENY";
	if (web_etag_match(web_header(ri, "If-None-Match"), etag + 6)) {
		hdr[nh] = NULL;
		http_reply(req, 304, NULL, hdr, NULL, 0);
		return 1;
	}
	if (gz)
		hdr[nh++] = "Content-Encoding: gzip";
	hdr[nh] = NULL;
	if (gz)
		http_reply(req, 200, web_type(a->path), hdr, a->gz, a->gzlen);
	else
		http_reply(req, 200, web_type(a->path), hdr, a->data, a->len);
	return 1;
}
