/*
 * job_sync.c: the JOB_SYNC runner (worker thread).
 *
 * Resolves the job's app, repository and cluster in the config snapshot,
 * brings the local clone up to date (git_repo_prepare, daemon/git.c) and
 * hands over to sync_app_run().  revision NULL syncs the branch head as
 * fetched just now.  A claimed waiting job (job->wait) only looks at
 * health again (sync_health_recheck): no fetch, no apply.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "gitrepo.h"
#include "job.h"
#include "log.h"
#include "sync.h"
#include "util.h"

static job_sync_started_fn	*job_sync_started;
static void			*job_sync_started_arg;

void
job_sync_on_start(job_sync_started_fn *fn, void *arg)
{
	job_sync_started = fn;
	job_sync_started_arg = arg;
}

/* The end of a sync: applied and healthy, or why not. */
static void
job_sync_log_done(const struct job *job, const struct config_app *app,
    const struct job_result *res)
{
	char	 idbuf[32];

	snprintf(idbuf, sizeof(idbuf), "%lld", (long long)job->id);
	log_kv(res->ok ? LOG_LEVEL_INFO : LOG_LEVEL_WARN, "sync done", "job",
	    idbuf, "app", app->name, "result", res->ok ? "ok" :
	    job_error_kind_name(res->err_kind), "revision",
	    res->revision != NULL ? res->revision : "-", "object",
	    res->object != NULL ? res->object : "-", NULL);
}

static void
job_sync_run(const struct config *cfg, struct job *job,
    struct job_result *res)
{
	const struct config_app		*app;
	const struct config_repo	*repo;
	const struct config_cluster	*cl;
	char				*path = NULL, *head = NULL, err[1024];
	const char			*revision;
	char				 idbuf[32];

	snprintf(idbuf, sizeof(idbuf), "%lld", (long long)job->id);
	if (job->app == NULL || (app = config_find_app(cfg, job->app)) == NULL) {
		job_result_fail(res, JOB_ERR_CONFIG, 1, "app %s is not "
		    "configured", job->app != NULL ? job->app : "(none)");
		return;
	}
	if (app->cluster == NULL) {
		job_result_fail(res, JOB_ERR_CONFIG, 1, "app %s has no cluster "
		    "to sync to", app->name);
		return;
	}
	if ((cl = config_find_cluster(cfg, app->cluster)) == NULL ||
	    (repo = config_find_repo(cfg, app->repo)) == NULL) {
		job_result_fail(res, JOB_ERR_CONFIG, 1, "app %s: %s %s is not "
		    "configured", app->name, cl == NULL ? "cluster" : "repo",
		    cl == NULL ? app->cluster : app->repo);
		return;
	}
	if (job->wait != NULL) {
		sync_health_recheck(cl, job->wait, res);
		if (res->wait == NULL)
			job_sync_log_done(job, app, res);
		return;
	}
	if (git_repo_prepare(cfg, repo, &path, &head, err, sizeof(err)) == -1) {
		job_result_fail(res, JOB_ERR_GIT, 0, "repo %s: %s", repo->name,
		    err);
		goto out;
	}
	revision = job->revision != NULL && job->revision[0] != '\0' ?
	    job->revision : head;
	log_kv(LOG_LEVEL_INFO, "sync start", "job", idbuf, "app", app->name,
	    "cluster", cl->name, "revision", revision != NULL ? revision :
	    "(branch head)", "delivery", job->delivery != NULL ?
	    job->delivery : "-", NULL);
	if (job_sync_started != NULL && revision != NULL)
		job_sync_started(cfg, job, revision, job_sync_started_arg);
	sync_app_run(cl, app, path, revision, repo->branch,
	    job->inventory, res);
	if (res->wait == NULL)
		job_sync_log_done(job, app, res);
out:
	free(path);
	free(head);
}

const struct job_runner job_runner_sync = {
	.kind = JOB_SYNC,
	.run = job_sync_run,
};
