/*
 * registry_hooks.h: what the container-registry handlers share
 * (handlers/registry.c implements it; dockerhub.c, harbor.c and quay.c use
 * it).  Pure functions, like the handlers themselves.
 */
#ifndef GITOPSD_REGISTRY_HOOKS_H
#define GITOPSD_REGISTRY_HOOKS_H

#include <stddef.h>
#include <stdint.h>

struct config_source;
struct hook_request;
struct hook_result;
struct hook_event;

/*
 * Check an Authorization header value against the source's secrets, in
 * constant time:  "Bearer <token>" compares the token, "Basic <base64>"
 * compares the password (any user name), and the whole header value is
 * compared too (Harbor sends its "Auth Header" setting verbatim).
 * Returns 0 on match, -1 otherwise (also when absent).
 */
int	registry_hook_check_auth(const struct config_source *,
	    const char *authorization);

/*
 * 0 if the request's media type is one of the NULL-terminated list; else
 * 415 with why set.
 */
int	registry_hook_media_type(const struct hook_request *,
	    const char *const *allowed, char *why, size_t whylen);

/*
 * A stable delivery id for senders that send none: "<prefix>-" and the
 * first 32 hex digits of SHA-256 over the parts, each NUL-terminated (so
 * "ab"+"c" and "a"+"bc" differ).  NULL parts count as empty.  malloc'd.
 */
char	*registry_hook_delivery(const char *prefix, const char *const *parts,
	    size_t nparts);

/*
 * Append a HOOK_EVENT_IMAGE to res for host/repository:tag (host NULL:
 * docker.io), normalizing the names.  Takes a copy of every string.
 * Returns the event, or NULL (res untouched, why set) when the names are
 * not a valid image reference.
 */
struct hook_event *registry_hook_add(struct hook_result *, const char *host,
	    const char *repository, const char *tag, const char *digest,
	    const char *delivery, int64_t pushed_at_ms, const char *sender,
	    char *why, size_t whylen);

/*
 * Parse the body with handler_json_parse() (strict JSON).  NULL with res
 * set to 400 and the reason on failure; the caller frees the tree with
 * cJSON_Delete().
 */
struct cJSON;
struct cJSON	*registry_hook_parse_json(const struct hook_request *,
		    struct hook_result *);

/* RFC 3339 ("2026-11-26T06:31:32.047739529Z") to unix ms; -1 if bad. */
int64_t	registry_hook_rfc3339_ms(const char *);

#endif
