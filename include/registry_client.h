/*
 * registry_client.h: asks a container registry whether a tag exists
 * (daemon/registry_client.c, libcurl; Docker Registry HTTP API v2 with
 * the token auth flow).  Blocking: called on worker threads only.
 */
#ifndef GITOPSD_REGISTRY_CLIENT_H
#define GITOPSD_REGISTRY_CLIENT_H

#include <stddef.h>

struct config;

/*
 * HEAD /v2/<repository>/manifests/<tag> on registry (a normalized host),
 * with the credentials of the matching `registries:` entry, if any.
 * Returns 0 and *digest_out (malloc'd "sha256:...") when the tag exists;
 * 1 when the registry says it does not; -1 on any other failure (err).
 */
int	registry_verify_tag(const struct config *, const char *registry,
	    const char *repository, const char *tag, char **digest_out,
	    char *err, size_t errlen);

/* A registry's tag list (registry_list_tags). */
struct registry_tags {
	char	**tags;		/* valid tags only, in the registry's order */
	size_t	 n;
	char	*etag;		/* for the next call's if_none_match, or NULL */
	int	 not_modified;	/* 304 to if_none_match: tags is empty */
	int	 retry_after_s;	/* Retry-After of a 429 (0: none sent) */
	long	 remaining;	/* RateLimit-Remaining (Docker Hub), or -1 */
};

#define REGISTRY_THROTTLED	2

/*
 * GET /v2/<repository>/tags/list on registry, following the Link header's
 * next pages on the same registry, with the same authentication as
 * registry_verify_tag (anonymous, then the 401 challenge's bearer token or
 * Basic credentials, kept for every page).  if_none_match: the ETag of the
 * last listing (one page only).  Returns 0, REGISTRY_THROTTLED on a 429
 * (t->retry_after_s says how long), or -1 (err).  Clear t after each call.
 */
int	registry_list_tags(const struct config *, const char *registry,
	    const char *repository, const char *if_none_match,
	    struct registry_tags *t, char *err, size_t errlen);
void	registry_tags_clear(struct registry_tags *);
/*
 * One page of a tag list: body's valid tags appended to t, and *next the
 * next page's URL from its Link header (malloc'd; NULL at the last page).
 * -1 (err) when body is not a tag list or the next page is on another
 * host.  What registry_list_tags does with each page; the fuzz target's
 * entry.
 */
int	registry_tags_page(struct registry_tags *t, const char *body,
	    size_t len, const char *link, const char *scheme,
	    const char *apihost, char **next, char *err, size_t errlen);

#endif
