/*
 * bench_update: runs one update-image job (the daemon's runner, libgit2,
 * manifest edits, push) against a bare repository and prints the time
 * from job start to pushed commit.
 *   bench_update WORKDIR REPO_URL APP_PATH TAG
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "gitrepo.h"
#include "job.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

int
main(int argc, char **argv)
{
	struct config		 cfg;
	struct config_repo	 repo;
	struct config_app	 app;
	struct config_image	 img;
	struct job		 job;
	struct job_result	 res;
	const struct job_runner	*r;
	double			 t0, t1;
	int			 rc = 1;

	if (argc != 5) {
		fprintf(stderr, "usage: bench_update WORKDIR URL PATH TAG\n");
		return 2;
	}
	log_init(LOG_LEVEL_WARN, LOG_FORMAT_TEXT);
	metrics_init();
	if (git_repo_global_init() == -1)
		return 1;
	memset(&cfg, 0, sizeof(cfg));
	memset(&repo, 0, sizeof(repo));
	memset(&app, 0, sizeof(app));
	memset(&img, 0, sizeof(img));
	memset(&job, 0, sizeof(job));
	memset(&res, 0, sizeof(res));
	cfg.workdir = argv[1];
	cfg.git.push_retries = 5;
	repo.name = "bench";
	repo.url = argv[2];
	repo.branch = "main";
	img.repository = "registry.acme.io/acme/web";
	img.policy.kind = CONFIG_POLICY_SEMVER;
	img.policy.semver = ">=1.0.0";
	app.name = "web";
	app.repo = "bench";
	app.path = argv[3];
	app.images = &img;
	app.nimages = 1;
	cfg.repos = &repo;
	cfg.nrepos = 1;
	cfg.apps = &app;
	cfg.napps = 1;
	job.id = 1;
	job.kind = JOB_UPDATE_IMAGE;
	job.app = "web";
	job.repo = "bench";
	job.image = "registry.acme.io/acme/web";
	job.tag = argv[4];
	job.delivery = "bench";

	r = job_runner_find(JOB_UPDATE_IMAGE);
	t0 = util_mono_s();
	r->run(&cfg, &job, &res);
	t1 = util_mono_s();
	if (res.ok && res.commit != NULL) {
		printf("%.3f %s\n", t1 - t0, res.commit);
		rc = 0;
	} else
		fprintf(stderr, "job failed: %s\n", res.error != NULL ?
		    res.error : res.detail != NULL ? res.detail : "no commit");
	/* The job's strings are stack/argv: only the result is ours. */
	job_result_clear(&res);
	git_repo_global_shutdown();
	metrics_free();
	return rc;
}
