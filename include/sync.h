/*
 * sync.h: make a cluster match an app's manifests (daemon/sync.c).
 *
 * A sync reads the app's manifests at a revision straight from the Git
 * objects (or from its renderer's output), applies them with server-side
 * apply in dependency order, prunes what the app no longer has (when
 * asked), and looks at its workloads' health once.  Everything runs on the
 * calling (worker) thread; the result goes into a struct job_result.
 *
 * A sync whose workloads are still rolling out does not wait on the
 * thread: its result has ok 0, err_kind JOB_ERR_NONE and wait set (what
 * to look at again, JSON, kept with the job while it waits in the queue)
 * with wait_ms (when).  sync_health_recheck() takes that wait state and
 * looks again, until healthy, degraded or the deadline
 * (sync.timeout_s after the apply) has passed.
 */
#ifndef GITOPSD_SYNC_H
#define GITOPSD_SYNC_H

#include <stddef.h>
#include <stdint.h>

struct cJSON;
struct config_app;
struct config_cluster;
struct job_result;
struct kube;

/* Labels and annotations gitopsd puts on / reads from objects. */
#define SYNC_LABEL_MANAGED_BY	"app.kubernetes.io/managed-by"
#define SYNC_LABEL_APP		"gitopsd.io/app"
#define SYNC_ANNOTATION_PRUNE	"gitopsd.io/prune"	/* "disabled" */
#define SYNC_FIELD_MANAGER	"gitopsd"

/* Manifests read for one sync: documents in apply-independent file order. */
struct sync_manifests {
	struct cJSON	**objs;
	char		**origins;	/* "apps/web/deploy.yaml" (messages) */
	size_t		 n;
};

void	sync_manifests_free(struct sync_manifests *);

/*
 * Read app's manifests from the local repository at repo_path.  revision
 * NULL means the branch head (refs/remotes/origin/<branch>, then
 * refs/heads/<branch>, then HEAD).  *commit_out (malloc'd) is the commit
 * read.  On error -1, a reason in err and *kind (JOB_ERR_GIT for a missing
 * revision or path, JOB_ERR_MANIFEST for a bad file or renderer).
 */
int	sync_manifests_read(const char *repo_path, const char *revision,
	    const char *branch, const struct config_app *app,
	    struct sync_manifests *out, char **commit_out, int *kind,
	    char *err, size_t errlen);

struct sync_request {
	const char	*app;		/* label value gitopsd.io/app */
	const char	*namespace;	/* for namespaced objects without one */
	int		 prune;
	/* The app's inventory from the store (result->inventory of the
	 * last sync), or NULL: prune then lists every kind, once. */
	const char	*inventory;
	int		 timeout_s;	/* health wait; 0: do not wait */
	int		 poll_ms;	/* fixed health poll interval; 0: 250 ms
					 * doubling up to 4 s */
	const char	*revision;	/* commit applied, kept in the wait state */
};

/*
 * Apply manifests (consumed: the objects are modified), prune, look at
 * health.  Fills result: ok, or err_kind/permanent/object/error, or wait
 * (see the top); detail JSON either way; inventory when there is one to
 * store (NULL: keep the stored one), also while it waits.  Does not set
 * result->revision.
 */
void	sync_apply(struct kube *, const struct sync_request *,
	    struct sync_manifests *, struct job_result *);

/*
 * A whole sync of app on cluster from the clone at repo_path: kubeconfig,
 * manifests, apply; inventory as in struct sync_request.  On success
 * (and while it waits) result->revision is the commit applied.
 */
void	sync_app_run(const struct config_cluster *, const struct config_app *,
	    const char *repo_path, const char *revision, const char *branch,
	    const char *inventory, struct job_result *);

/*
 * The next look at a waiting sync's health (wait: its result->wait):
 * GETs only, no Git and no apply.  The result is what the sync would have
 * ended with had it waited on its thread (ok with the revision and
 * detail; unhealthy; the timeout failure past the deadline), or waiting
 * again with the next backoff.
 */
void	sync_health_recheck(const struct config_cluster *, const char *wait,
	    struct job_result *);

/*
 * Drift correction (sync.interval_s): 1 when app wants a periodic sync and
 * the last one finished (or was attempted) at least interval_s ago.
 * last_ms 0 means never.  *next_ms (optional) gets when it is next due
 * (INT64_MAX when drift correction is off).
 */
int	sync_drift_due(const struct config_app *, int64_t last_ms,
	    int64_t now_ms, int64_t *next_ms);

#endif
