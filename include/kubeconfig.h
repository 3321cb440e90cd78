/*
 * kubeconfig.h: how to reach a cluster (daemon/kubeconfig.c).
 *
 * A cluster's `kubeconfig:` is a kubeconfig file (its `context:`, or the
 * file's current-context) or the word `in-cluster` (the pod's service
 * account: token and ca.crt under /var/run/secrets/kubernetes.io/
 * serviceaccount, overridable with GITOPSD_SERVICEACCOUNT_DIR, and
 * KUBERNETES_SERVICE_HOST/PORT).  Loading reads every file it names, so a
 * rotated token or certificate is picked up by the next job.
 */
#ifndef GITOPSD_KUBECONFIG_H
#define GITOPSD_KUBECONFIG_H

#include <stddef.h>

struct config_cluster;

struct kubeconfig {
	char	*server;	/* "https://host:port", no trailing slash */
	/* Each of ca/cert/key: a file path, or PEM bytes (the -data keys). */
	char	*ca_file;
	char	*ca_data;
	size_t	 ca_len;
	char	*cert_file;
	char	*cert_data;
	size_t	 cert_len;
	char	*key_file;
	char	*key_data;
	size_t	 key_len;
	int	 insecure;	/* insecure-skip-tls-verify (allowed) */
	char	*token;		/* bearer token (from token or tokenFile) */
	char	*username;	/* basic auth */
	char	*password;
	char	*namespace;	/* the context's namespace, or NULL */
};

/* Env var that replaces the service account directory (tests, sidecars). */
#define KUBECONFIG_SA_DIR_ENV	"GITOPSD_SERVICEACCOUNT_DIR"
#define KUBECONFIG_SA_DIR	"/var/run/secrets/kubernetes.io/serviceaccount"

/*
 * Load what cluster names.  Returns a new struct (kubeconfig_free) or NULL
 * with a reason in err; secrets never appear in err.
 */
struct kubeconfig	*kubeconfig_load(const struct config_cluster *,
			    char *err, size_t errlen);

/* Load a kubeconfig file; context NULL means its current-context. */
struct kubeconfig	*kubeconfig_load_file(const char *path,
			    const char *context, int allow_insecure,
			    char *err, size_t errlen);

/* In-cluster configuration (service account). */
struct kubeconfig	*kubeconfig_load_in_cluster(char *err, size_t errlen);

/*
 * For `gitopsd -t`: 0 if the cluster's kubeconfig loads and uses only what
 * gitopsd supports (exec and auth-provider users are not), else -1 with a
 * reason in err.
 */
int	kubeconfig_check(const struct config_cluster *, char *err,
	    size_t errlen);

void	kubeconfig_free(struct kubeconfig *);

#endif
