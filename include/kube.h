/*
 * kube.h: a Kubernetes API client over libcurl's easy API (daemon/kube.c).
 *
 * One struct kube is one connection (reused between requests) used by one
 * worker thread at a time.  Discovery (/api, /apis and each group-version's
 * resource list) is cached per cluster for the whole process, shared by
 * every struct kube of that cluster, and refreshed when a kind is missing
 * (a CRD installed since) or the server answers 404 for a resource path.
 */
#ifndef GITOPSD_KUBE_H
#define GITOPSD_KUBE_H

#include <stddef.h>

struct cJSON;
struct kube;
struct kubeconfig;

enum kube_rc {
	KUBE_OK = 0,
	KUBE_UNREACHABLE,	/* connect/send/receive failed or timed out */
	KUBE_TLS,		/* the server's certificate does not verify */
	KUBE_HTTP,		/* the server answered a failure status */
	KUBE_NO_KIND,		/* discovery does not know apiVersion/kind */
};

/* A resource type from discovery.  Strings malloc'd (kube_resource_clear). */
struct kube_resource {
	char	*group;		/* "" for the core group */
	char	*version;
	char	*kind;
	char	*plural;	/* path segment: "deployments" */
	int	 namespaced;
};

struct kube_response {
	long		 status;	/* HTTP status */
	char		*body;		/* NUL-terminated */
	size_t		 len;
	struct cJSON	*json;		/* body parsed, or NULL */
	long		 retry_after_s;	/* Retry-After (seconds form), or 0 */
};

/*
 * A client for kc; cache_key names the cluster for the discovery cache
 * (the configured cluster name).  NULL with err on failure.
 */
struct kube	*kube_new(const struct kubeconfig *kc, const char *cache_key,
		    char *err, size_t errlen);
void		 kube_free(struct kube *);
/* Per-request time limit (default 60 s). */
void		 kube_set_timeout(struct kube *, long seconds);
/*
 * Client rate limit: qps requests a second, bursts of burst, shared by all
 * clients of the same cluster (cache_key and server); qps 0: none.
 */
void		 kube_set_rate(struct kube *, double qps, int burst);

/*
 * One request; path includes the query.  KUBE_OK means an answer came (any
 * status: resp->status); otherwise err says what failed.  resp is cleared
 * first; the caller clears it (kube_response_clear).
 */
enum kube_rc	 kube_request(struct kube *, const char *method,
		    const char *path, const char *content_type,
		    const char *body, size_t len, struct kube_response *resp,
		    char *err, size_t errlen);
void		 kube_response_clear(struct kube_response *);
/* The Status message of a failure answer, or "HTTP <code>". */
void		 kube_response_message(const struct kube_response *,
		    char *out, size_t outlen);
/* The Status reason ("NotFound", "Invalid"...), or "". */
const char	*kube_response_reason(const struct kube_response *);

/*
 * Map apiVersion + kind to a resource.  KUBE_NO_KIND when the server does
 * not serve it (after one refresh); KUBE_HTTP with *status when discovery
 * itself was refused (401, 403...).
 */
enum kube_rc	 kube_resource_find(struct kube *, const char *api_version,
		    const char *kind, struct kube_resource *out, long *status,
		    char *err, size_t errlen);
/*
 * Every listable and deletable resource type, preferred version of each
 * group only, subresources excluded.  *out malloc'd (kube_resources_free).
 */
enum kube_rc	 kube_resources_all(struct kube *, struct kube_resource **out,
		    size_t *n, long *status, char *err, size_t errlen);
void		 kube_resource_clear(struct kube_resource *);
void		 kube_resources_free(struct kube_resource *, size_t);
/* Forget this cluster's discovery (next lookup fetches it again). */
void		 kube_discovery_invalidate(struct kube *);

/*
 * The path of a resource collection (name NULL) or object; ns ignored for
 * cluster-scoped kinds.  Names are percent-encoded.  malloc'd.
 */
char		*kube_path(const struct kube_resource *, const char *ns,
		    const char *name);
/* "Deployment web/api" or "Namespace web": for messages. */
char		*kube_describe(const char *kind, const char *ns,
		    const char *name);

#endif
