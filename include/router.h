/*
 * router.h: which apps an event concerns, and the jobs it makes.
 *
 * Push events (daemon/router.c): apps whose repo URL is the pushed
 * repository (normalized URL compare) and whose branch was pushed, skipped
 * when the payload lists changed paths and none is under the app's path;
 * one sync job each.  Image events (daemon/router_image.c): apps with an
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
int	 router_url_equal(const char *, const char *);

#endif
