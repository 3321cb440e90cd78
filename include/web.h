/*
 * web.h: the status page (daemon/web.c): the files of web/, embedded at
 * build time by scripts/embed-web.sh, served on the admin listener.
 */
#ifndef GITOPSD_WEB_H
#define GITOPSD_WEB_H

#include <stddef.h>

struct http_request;

/* One embedded file; the generated table ends with a NULL path. */
struct web_asset {
	const char		*path;		/* "/app.js" */
	const unsigned char	*data;
	size_t			 len;
	const unsigned char	*gz;		/* gzip -9 -n of data */
	size_t			 gzlen;
	const char		*etag;		/* quoted, strong */
};

extern const struct web_asset web_assets[];

/* The asset a request path names ("/" is /index.html), or NULL. */
const struct web_asset	*web_asset_find(const char *path);

/*
 * Answer a request for the page (GET or HEAD): 304 when If-None-Match
 * names the representation, gzip when Accept-Encoding allows it, and the
 * security headers.  Returns 0 when the path is not the page's (nothing
 * answered), 1 when answered.
 */
int			 web_serve(struct http_request *);

/* Does an Accept-Encoding value accept gzip (q > 0)?  Exposed for tests. */
int			 web_accepts_gzip(const char *accept_encoding);
/* Does an If-None-Match value match etag (weak comparison)? */
int			 web_etag_match(const char *if_none_match,
			    const char *etag);

#endif
