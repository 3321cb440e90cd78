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

/* The columns both schemas share (store_sqlite.c, store_pg.c). */
const struct store_table_def store_tables[STORE_T_MAX] = {
	[STORE_T_EVENTS] = { "events", "id", { "id", "source", "delivery",
	    "received", "kind", "summary" }, 6 },
	[STORE_T_JOBS] = { "jobs", "id", { "id", "kind", "state", "app",
	    "repo", "revision", "image", "tag", "digest", "params",
	    "event_id", "attempts", "max_attempts", "created", "updated",
	    "not_before", "started", "error", "result" }, 19 },
	[STORE_T_EVENT_JOBS] = { "event_jobs", "event_id, job_id",
	    { "event_id", "job_id" }, 2 },
	[STORE_T_ATTEMPTS] = { "attempts", "job_id, n", { "job_id", "n",
	    "started", "ended", "ok", "error" }, 6 },
	[STORE_T_APPS] = { "apps", "name", { "name", "outcome", "revision",
	    "health", "synced_at", "last_job", "last_error" }, 7 },
	[STORE_T_APP_IMAGES] = { "app_images", "app, image", { "app",
	    "image", "tag", "digest" }, 4 },
	[STORE_T_APP_INVENTORY] = { "app_inventory", "app", { "app",
	    "objects", "updated" }, 3 },
	[STORE_T_NOTIFY_KEYS] = { "notify_keys", "key", { "key",
	    "planned" }, 2 },
};

/*
 * SQL naming a table's columns (identifiers from store_tables, never a
 * value): with ph 0 "SELECT c1, ... FROM t ORDER BY o", else "INSERT INTO
 * t(c1, ...) VALUES (<ph>1, ...)" with ph the backend's placeholder ('?'
 * or '$'), followed by tail.  The caller frees it.
 */
char *
store_table_sql(enum store_table t, char ph, const char *tail)
{
	const struct store_table_def	*d = &store_tables[t];
	struct buf			 b;
	int				 i;

	buf_init(&b, 0);
	if (ph == 0)
		buf_addstr(&b, "SELECT ");
	else
		buf_printf(&b, "INSERT INTO %s(", d->name);
	for (i = 0; i < d->ncols; i++)
		buf_printf(&b, "%s%s", i > 0 ? ", " : "", d->cols[i]);
	if (ph == 0) {
		buf_printf(&b, " FROM %s ORDER BY %s", d->name, d->order);
	} else {
		buf_addstr(&b, ") VALUES (");
		for (i = 0; i < d->ncols; i++)
			buf_printf(&b, "%s%c%d", i > 0 ? ", " : "", ph, i + 1);
		buf_addstr(&b, ")");
	}
	buf_addstr(&b, tail);
	return buf_steal(&b, NULL);
}

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
	if (kind == JOB_NOTIFY) {
		if (repo != NULL)
			store_names_add(&r->reports, &r->nreports, app);
		return;
	}
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
		if (r->nloop >= c->max_loop || (repo != NULL &&
		    store_names_has(r->reports, r->nreports, app)))
			return 0;
		r->nloop++;
		store_rules_busy(r, kind, app, repo, 0);
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
	for (i = 0; i < r->nreports; i++)
		free(r->reports[i]);
	free(r->reports);
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
