/*
 * router.h: which apps an event concerns, and the jobs it makes.
 *
 * Push events (daemon/router.c): apps whose repo URL is the pushed
 * repository (normalized URL compare) and whose branch was pushed, skipped
 * when the payload lists changed paths and none is under the app's path;
 * one sync job each (none for an app without a cluster).  Image events (daemon/router_image.c): apps with an
 * image of that repository whose policy accepts the tag; one update-image
 * job each.
 */
#ifndef GITOPSD_ROUTER_H
#define GITOPSD_ROUTER_H

#include <stddef.h>

struct config;
struct hook_event;
struct job_spec;

/*
 * Fill *out (malloc'd array; strings point into cfg and ev, which must
 * outlive it) and return how many jobs.  0 jobs: why says which check
 * ruled the apps out ("no app").
 */
size_t	router_route(const struct config *, const struct hook_event *,
	    struct job_spec **out, char *why, size_t whylen);
size_t	router_route_image(const struct config *, const struct hook_event *,
	    struct job_spec **out, char *why, size_t whylen);

/*
 * Normalize a Git URL for comparison: scheme and scp-like forms
 * (git@host:owner/repo) to host/path, host lowercased, userinfo, port of
 * the default scheme, trailing ".git" and "/" dropped.  malloc'd.
 */
char	*router_url_normalize(const char *url);
/*
 * The web page of commit sha in the repository at repo_url when its host
 * is one whose pages are known (github.com, gitlab.com, bitbucket.org,
 * codeberg.org), else NULL.  malloc'd.
 */
char	*router_commit_url(const char *repo_url, const char *sha);
/*
 * 1 if both URLs name the same repository: normalized, hosts equal, paths
 * equal -- ignoring case when nocase is set (the sender's host ignores it)
 * or the host is github.com, gitlab.com, bitbucket.org or codeberg.org.
 * Other hosts and local paths compare exactly.  router_url_equal() is
 * router_url_same() with nocase 0.
 */
int	 router_url_same(const char *, const char *, int nocase);
int	 router_url_equal(const char *, const char *);
/*
 * 1 if the repo URL names Bitbucket Data Center repository key/slug
 * (both ignoring case): .../scm/KEY/slug[.git] under any context path,
 * .../projects/KEY/repos/slug, or ssh://host[:port]/key/slug[.git] and
 * host:key/slug.  The payload names no host, so any non-public host
 * matches.
 */
int	 router_bbdc_match(const char *url, const char *key, const char *slug);

#endif
