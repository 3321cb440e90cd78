/*
 * policy.h: image references and tag policies (daemon/policy.c).
 *
 * Image names are normalized before any comparison: docker.io,
 * index.docker.io and no host are one registry, "library/" is implied for
 * single-name Docker Hub images, hosts may carry ports.
 */
#ifndef GITOPSD_POLICY_H
#define GITOPSD_POLICY_H

#include <stddef.h>

struct config_policy;

struct image_ref {
	char	*registry;	/* normalized host[:port]: "docker.io", "localhost:5000" */
	char	*repository;	/* "library/nginx", "acme/web" */
	char	*tag;		/* NULL when absent */
	char	*digest;	/* "sha256:<hex>" or NULL */
};

/* Parse "host:5000/a/b:1.2@sha256:..." and friends.  0 or -1 with err. */
int	 image_ref_parse(const char *, struct image_ref *, char *err, size_t);
/*
 * The same from a registry host and a repository path as senders report
 * them separately ("127.0.0.1:5000" + "acme/web"; NULL host: docker.io).
 */
int	 image_ref_from_parts(const char *host, const char *repository,
	    struct image_ref *, char *err, size_t);
void	 image_ref_free(struct image_ref *);
/*
 * Tag grammar [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}; digest per the OCI
 * image spec ("sha256:" and 64 lowercase hex, sha512 128, other
 * algorithms by the spec's grammar).  Every sender's image event passes
 * both before it is answered (handlers refuse a bad one with 400).
 */
int	 image_tag_valid(const char *);
int	 image_digest_valid(const char *);
/* "registry/repository" of a reference, malloc'd ("docker.io/library/nginx"). */
char	*image_ref_name(const struct image_ref *);
/* Same image repository (registry and repository equal after normalizing). */
int	 image_ref_same_repo(const struct image_ref *, const struct image_ref *);

/* Check a policy's own syntax (semver range, regex, extract).  0 or -1. */
int	 policy_validate(const struct config_policy *, char *err, size_t);
/* Does the tag satisfy the policy (ignoring what is deployed now)? */
int	 policy_accepts(const struct config_policy *, const char *tag);
/*
 * Is candidate newer than current by the policy's order?  1 yes, 0 no.
 * A current tag the policy cannot order (NULL, "latest", not matching)
 * counts as older than any accepted candidate.
 */
int	 policy_newer(const struct config_policy *, const char *current,
	    const char *candidate);
/*
 * The highest of n tags by the policy's order that it accepts and that is
 * newer than current (NULL: no current tag), or NULL.  Always NULL for
 * latest (a tag list has no push order) and digest (one followed tag).
 */
const char *policy_best(const struct config_policy *, char *const *tags,
	    size_t n, const char *current);

#endif
