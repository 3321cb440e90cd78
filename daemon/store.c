/*
 * store.c: what the store backends share (include/store.h): the choice of
 * backend and the claim rules, so that every backend takes the same jobs.
 */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "job.h"
#include "store.h"
#include "util.h"

const struct store_ops *
store_backend(const struct config_state *cs, const char **target)
{
	if (cs->driver == CONFIG_STATE_POSTGRES) {
		*target = cs->dsn;
		return &store_pg_ops;
	}
	*target = cs->path;
	return &store_sqlite_ops;
}

static int
store_names_has(char *const *v, size_t n, const char *name)
{
	size_t	 i;

	if (name == NULL)
		return 0;
	for (i = 0; i < n; i++)
		if (strcmp(v[i], name) == 0)
			return 1;
	return 0;
}

static void
store_names_add(char ***v, size_t *n, const char *name)
{
	if (name == NULL || store_names_has(*v, *n, name))
		return;
	*v = xreallocarray(*v, *n + 1, sizeof(**v));
	(*v)[(*n)++] = xstrdup(name);
}

void
store_rules_busy(struct store_rules *r, enum job_kind kind, const char *app,
    const char *repo, int waiting)
{
	if (kind == JOB_NOTIFY)
		return;
	/* A waiting app is free for its own health check only. */
	if (waiting)
		store_names_add(&r->held, &r->nheld, app);
	else
		store_names_add(&r->apps, &r->napps, app);
	if (kind == JOB_UPDATE_IMAGE)
		store_names_add(&r->repos, &r->nrepos, repo);
}

int
store_rules_full(const struct store_rules *r, const struct store_claim *c)
{
	return r->nthread >= c->max_thread && r->nloop >= c->max_loop;
}

int
store_rules_take(struct store_rules *r, const struct store_claim *c,
    enum job_kind kind, const char *app, const char *repo, int waiting)
{
	if (kind == JOB_NOTIFY) {
		if (r->nloop >= c->max_loop)
			return 0;
		r->nloop++;
		return 1;
	}
	if (r->nthread >= c->max_thread ||
	    store_names_has(r->apps, r->napps, app) ||
	    (!waiting && store_names_has(r->held, r->nheld, app)) ||
	    (kind == JOB_UPDATE_IMAGE &&
	    store_names_has(r->repos, r->nrepos, repo)))
		return 0;
	r->nthread++;
	store_rules_busy(r, kind, app, repo, 0);
	return 1;
}

int
store_rules_merge(struct store_rules *r, const struct job *lead,
    const char *app)
{
	/* Its app must be free too (one running job per app). */
	if (app != NULL && strcmp(app, lead->app != NULL ? lead->app : "") != 0
	    && (store_names_has(r->apps, r->napps, app) ||
	    store_names_has(r->held, r->nheld, app)))
		return 0;
	store_names_add(&r->apps, &r->napps, app);
	return 1;
}

void
store_rules_free(struct store_rules *r)
{
	size_t	 i;

	for (i = 0; i < r->napps; i++)
		free(r->apps[i]);
	for (i = 0; i < r->nrepos; i++)
		free(r->repos[i]);
	for (i = 0; i < r->nheld; i++)
		free(r->held[i]);
	free(r->apps);
	free(r->repos);
	free(r->held);
	memset(r, 0, sizeof(*r));
}

void
store_job_merge(struct job *lead, struct job *m)
{
	lead->merged = xreallocarray(lead->merged, lead->nmerged + 1,
	// NOLINTNEXTLINE(bugprone-sizeof-expression): array of pointers
	    sizeof(*lead->merged));
	lead->merged[lead->nmerged++] = m;
}

void
store_replica_rows_free(struct store_replica_row *rows, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++) {
		free(rows[i].id);
		free(rows[i].hostname);
		free(rows[i].version);
	}
	free(rows);
}

void
store_role_rows_free(struct store_role_row *rows, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++) {
		free(rows[i].name);
		free(rows[i].owner);
	}
	free(rows);
}
