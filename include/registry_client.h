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

#endif
