/*
 * githost.h: what the Git host handlers (github, gitlab, gitea, bitbucket,
 * generic) share beyond JSON lookups: prefixed HMAC signature checks,
 * delivery ids, ref splitting and the one-line event summary
 * (handlers/githost.c).
 */
#ifndef GITOPSD_GITHOST_H
#define GITOPSD_GITHOST_H

#include <stddef.h>

struct config_source;
struct hook_event;
struct hook_request;
struct hook_result;

/*
 * Check a signature header value "<prefix><hex>" (prefix may be "" for a
 * bare hex digest) as HMAC-SHA256 (sha1 = 0) or HMAC-SHA1 (sha1 = 1) of
 * msg with any of the source's secrets.  Hex may be either case.  Returns
 * 0 on match; -1 with why set to a reason that never echoes the value.
 */
int	 githost_check_sig(const struct config_source *, const char *value,
	    const char *prefix, int sha1, const void *msg, size_t len,
	    char *why, size_t whylen);

/*
 * The delivery id: the first of the named headers that is present (names
 * NULL-terminated), else "sha256:<hex of body>" so a redelivered identical
 * body still deduplicates.  A header value that is empty, over 200 bytes or
 * not printable ASCII is refused: returns NULL with res set to 400.
 * malloc'd.
 */
char	*githost_delivery(const struct hook_request *, const char *const *names,
	    struct hook_result *);

/*
 * Set ev->branch or ev->tag from ev->ref ("refs/heads/x", "refs/tags/x").
 * Returns 0, or -1 when the ref is neither (notes, pull refs...).
 */
int	 githost_split_ref(struct hook_event *);

/* ev->summary: "push acme/deploy main 1a2b3c4..5d6e7f8 by alice (2 commits)". */
void	 githost_summarize(struct hook_event *, long ncommits);

/*
 * Add the added/modified/removed paths of every commit object in commits
 * (GitHub, GitLab and Gitea share this shape) to ev->paths.  Returns the
 * number of commits, or -1 with res set to 400 on a malformed entry.
 * *listed is 1 when every commit carried all three lists (GitLab system
 * hooks, for one, send commits without them), and the path cap was not hit.
 */
struct cJSON;
long	 githost_commit_paths(struct hook_event *, const struct cJSON *commits,
	    int *listed, struct hook_result *);

/* The JSON document of a form body's payload= field; malloc'd or NULL. */
char	*githost_form_payload(const struct hook_request *, size_t *lenp);

#endif
