/*
 * admin.c: the admin REST API under /api/v1 (apps, jobs, events, replicas,
 * retry, sync now), as JSON.  It runs on the loop thread, reads through the
 * queue's read-only store connection (queue_reader) and the running
 * configuration, and changes state only through the queue's calls
 * (queue_retry, queue_add_jobs), which run in the store thread's rounds.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "config.h"
#include "job.h"
#include "log.h"
#include "poller.h"
#include "queue.h"
#include "replica.h"
#include "replicas.h"
#include "router.h"
#include "store.h"
#include "util.h"

static cJSON *
admin_json_str(const char *s)
{
	return s != NULL ? cJSON_CreateString(s) : cJSON_CreateNull();
}

static cJSON *
admin_json_time(int64_t ms)
{
	char	 t[32];

	if (ms <= 0)
		return cJSON_CreateNull();
	util_rfc3339(ms, t);
	return cJSON_CreateString(t);
}

static cJSON *
admin_json_id(int64_t id)
{
	return id > 0 ? cJSON_CreateNumber((double)id) : cJSON_CreateNull();
}

static int
admin_reply(struct buf *body, int status, cJSON *o)
{
	char	*s;

	s = o != NULL ? cJSON_PrintUnformatted(o) : NULL;
	cJSON_Delete(o);
	if (s == NULL) {
		buf_reset(body);
		buf_addstr(body, "{\"error\": \"out of memory\", \"code\": 500}");
		return 500;
	}
	buf_reset(body);
	if (buf_addstr(body, s) == -1) {
		free(s);
		buf_reset(body);
		buf_addstr(body, "{\"error\": \"response too large\","
		    " \"code\": 500}");
		return 500;
	}
	free(s);
	return status;
}

static int
admin_error(struct buf *body, int status, const char *msg)
{
	cJSON	*o = cJSON_CreateObject();

	if (o != NULL) {
		cJSON_AddStringToObject(o, "error", msg);
		cJSON_AddNumberToObject(o, "code", status);
	}
	return admin_reply(body, status, o);
}

/*
 * A read the store could not answer.  A shared store is another service:
 * what fails there (a lost connection, a query the server cancelled after
 * the loop connections' statement timeout because another session held a
 * lock) passes by itself, so the client is told to come back (503).
 * SQLite's own file failing is this process's error (500).
 */
static int
admin_store_error(const struct store_ops *ops, struct buf *body,
    const char *err)
{
	log_warnx("admin: %s", err);
	return admin_error(body, ops->shared ? 503 : 500, "store error");
}

/*
 * A notify job's alert: which notifier, failure or recovery, and the job
 * it is about, so a job's alerts can be found (they belong to no event).
 */
static void
admin_alert_json(cJSON *o, const char *params)
{
	cJSON	*p, *al, *v;

	if (params == NULL || (p = cJSON_Parse(params)) == NULL)
		return;
	al = cJSON_AddObjectToObject(o, "alert");
	v = cJSON_GetObjectItemCaseSensitive(p, "notifier");
	cJSON_AddItemToObject(al, "notifier", admin_json_str(
	    cJSON_IsString(v) ? v->valuestring : NULL));
	v = cJSON_GetObjectItemCaseSensitive(p, "event");
	cJSON_AddItemToObject(al, "event", admin_json_str(
	    cJSON_IsString(v) ? v->valuestring : NULL));
	v = cJSON_GetObjectItemCaseSensitive(p, "job");
	cJSON_AddItemToObject(al, "job", admin_json_id(cJSON_IsNumber(v) ?
	    (int64_t)v->valuedouble : 0));
	cJSON_Delete(p);
}

static cJSON *
admin_job_json(const struct store_job_row *r)
{
	cJSON	*o = cJSON_CreateObject(), *res;

	if (o == NULL)
		return NULL;
	cJSON_AddNumberToObject(o, "id", (double)r->id);
	cJSON_AddStringToObject(o, "kind", job_kind_name(r->kind));
	cJSON_AddStringToObject(o, "state", job_state_name(r->state));
	cJSON_AddItemToObject(o, "app", admin_json_str(r->app));
	cJSON_AddItemToObject(o, "repo", admin_json_str(r->repo));
	cJSON_AddItemToObject(o, "revision", admin_json_str(r->revision));
	cJSON_AddItemToObject(o, "image", admin_json_str(r->image));
	cJSON_AddItemToObject(o, "tag", admin_json_str(r->tag));
	cJSON_AddItemToObject(o, "digest", admin_json_str(r->digest));
	cJSON_AddNumberToObject(o, "attempts", r->attempts);
	cJSON_AddNumberToObject(o, "max_attempts", r->max_attempts);
	cJSON_AddItemToObject(o, "created", admin_json_time(r->created_ms));
	cJSON_AddItemToObject(o, "updated", admin_json_time(r->updated_ms));
	cJSON_AddItemToObject(o, "not_before",
	    admin_json_time(r->state == JOB_FAILED ||
	    r->state == JOB_WAITING ? r->not_before_ms : 0));
	cJSON_AddItemToObject(o, "event_id", admin_json_id(r->event_id));
	cJSON_AddItemToObject(o, "source", admin_json_str(r->source));
	cJSON_AddItemToObject(o, "delivery", admin_json_str(r->delivery));
	cJSON_AddItemToObject(o, "error", admin_json_str(r->error));
	res = r->result != NULL ? cJSON_Parse(r->result) : NULL;
	cJSON_AddItemToObject(o, "result", res != NULL ? res :
	    cJSON_CreateNull());
	if (r->kind == JOB_NOTIFY)
		admin_alert_json(o, r->params);
	return o;
}

/* Parse limit/after from the query; -1 on a bad value. */
static int
admin_page(const char *query, int *limit, int64_t *after)
{
	char		*v, *end;
	long long	 n;
	size_t		 len;

	*limit = 50;
	*after = 0;
	if (query == NULL)
		return 0;
	if ((v = util_form_get(query, strlen(query), "limit", &len)) != NULL) {
		errno = 0;
		n = strtoll(v, &end, 10);
		if (*v == '\0' || *end != '\0' || errno != 0 || n < 1 ||
		    n > 1000) {
			free(v);
			return -1;
		}
		*limit = (int)n;
		free(v);
	}
	if ((v = util_form_get(query, strlen(query), "after", &len)) != NULL) {
		errno = 0;
		n = strtoll(v, &end, 10);
		if (*v == '\0' || *end != '\0' || errno != 0 || n < 1) {
			free(v);
			return -1;
		}
		*after = n;
		free(v);
	}
	return 0;
}

static int
admin_events(struct queue *q, const char *query, struct buf *body)
{
	struct store		*rd;
	const struct store_ops	*ops = queue_reader(q, &rd);
	struct store_event_row	*rows = NULL;
	size_t			 n = 0, i, k;
	int64_t			 after, next;
	int			 limit;
	char			 err[256];
	cJSON			*o, *arr, *e, *ids;

	if (admin_page(query, &limit, &after) == -1)
		return admin_error(body, 400, "bad limit or after");
	if (ops->list_events(rd, after, limit, &rows, &n, &next, err,
	    sizeof(err)) == -1) {
		return admin_store_error(ops, body, err);
	}
	o = cJSON_CreateObject();
	arr = cJSON_AddArrayToObject(o, "events");
	for (i = 0; i < n; i++) {
		e = cJSON_CreateObject();
		cJSON_AddNumberToObject(e, "id", (double)rows[i].id);
		cJSON_AddItemToObject(e, "source", admin_json_str(rows[i].source));
		cJSON_AddItemToObject(e, "delivery",
		    admin_json_str(rows[i].delivery));
		cJSON_AddItemToObject(e, "received",
		    admin_json_time(rows[i].received_ms));
		cJSON_AddItemToObject(e, "kind", admin_json_str(rows[i].kind));
		cJSON_AddItemToObject(e, "summary",
		    admin_json_str(rows[i].summary));
		ids = cJSON_AddArrayToObject(e, "jobs");
		for (k = 0; k < rows[i].njob_ids; k++)
			cJSON_AddItemToArray(ids,
			    cJSON_CreateNumber((double)rows[i].job_ids[k]));
		cJSON_AddItemToArray(arr, e);
	}
	cJSON_AddItemToObject(o, "next", admin_json_id(next));
	store_event_rows_free(rows, n);
	return admin_reply(body, 200, o);
}

/*
 * GET /api/v1/replicas: the replicas the store knows of, oldest first,
 * whether each is alive (replicas_alive), the jobs running under its
 * leases and the roles it holds; and each role's holder.
 */
static int
admin_replicas(struct queue *q, struct buf *body)
{
	struct store			*rd;
	const struct store_ops		*ops = queue_reader(q, &rd);
	struct store_replica_row	*rows = NULL;
	struct store_role_row		*roles = NULL;
	size_t				 n = 0, nroles = 0, i, k;
	int64_t				 now = util_now_ms();
	char				 err[256];
	cJSON				*o, *arr, *e, *held;

	if (ops->list_replicas(rd, &rows, &n, err, sizeof(err)) == -1 ||
	    ops->list_roles(rd, &roles, &nroles, err, sizeof(err)) == -1) {
		store_replica_rows_free(rows, n);
		return admin_store_error(ops, body, err);
	}
	o = cJSON_CreateObject();
	arr = cJSON_AddArrayToObject(o, "replicas");
	for (i = 0; i < n; i++) {
		e = cJSON_CreateObject();
		cJSON_AddItemToObject(e, "id", admin_json_str(rows[i].id));
		cJSON_AddItemToObject(e, "hostname",
		    admin_json_str(rows[i].hostname));
		cJSON_AddNumberToObject(e, "pid", (double)rows[i].pid);
		cJSON_AddItemToObject(e, "version",
		    admin_json_str(rows[i].version));
		cJSON_AddItemToObject(e, "started",
		    admin_json_time(rows[i].started_ms));
		cJSON_AddItemToObject(e, "heartbeat",
		    admin_json_time(rows[i].heartbeat_ms));
		cJSON_AddBoolToObject(e, "alive",
		    replicas_alive(rows[i].heartbeat_ms, now));
		cJSON_AddBoolToObject(e, "self",
		    strcmp(rows[i].id, replica_id()) == 0);
		cJSON_AddNumberToObject(e, "running", (double)rows[i].running);
		held = cJSON_AddArrayToObject(e, "roles");
		for (k = 0; k < nroles; k++)
			if (roles[k].until_ms > now &&
			    strcmp(roles[k].owner, rows[i].id) == 0)
				cJSON_AddItemToArray(held,
				    cJSON_CreateString(roles[k].name));
		cJSON_AddItemToArray(arr, e);
	}
	/* A role whose lease ran out has no holder until one renews it. */
	arr = cJSON_AddArrayToObject(o, "roles");
	for (k = 0; k < nroles; k++) {
		e = cJSON_CreateObject();
		cJSON_AddItemToObject(e, "name", admin_json_str(roles[k].name));
		cJSON_AddItemToObject(e, "holder", roles[k].until_ms > now ?
		    admin_json_str(roles[k].owner) : cJSON_CreateNull());
		cJSON_AddItemToObject(e, "until",
		    admin_json_time(roles[k].until_ms));
		cJSON_AddItemToArray(arr, e);
	}
	store_replica_rows_free(rows, n);
	store_role_rows_free(roles, nroles);
	return admin_reply(body, 200, o);
}

static int
admin_jobs(struct queue *q, const char *query, struct buf *body)
{
	struct store		*rd;
	const struct store_ops	*ops = queue_reader(q, &rd);
	struct store_job_filter	 f;
	struct store_job_row	*rows = NULL;
	size_t			 n = 0, i, len;
	int64_t			 next;
	char			 err[256], *v, *app = NULL;
	enum job_state		 st;
	enum job_kind		 kind;
	cJSON			*o, *arr;
	int			 rc;

	memset(&f, 0, sizeof(f));
	if (admin_page(query, &f.limit, &f.after) == -1)
		return admin_error(body, 400, "bad limit or after");
	if (query != NULL) {
		if ((v = util_form_get(query, strlen(query), "state",
		    &len)) != NULL) {
			rc = job_state_parse(v, &st);
			free(v);
			if (rc == -1)
				return admin_error(body, 400,
				    "bad state");
			f.state = (int)st;
		}
		if ((v = util_form_get(query, strlen(query), "kind",
		    &len)) != NULL) {
			rc = job_kind_parse(v, &kind);
			free(v);
			if (rc == -1)
				return admin_error(body, 400,
				    "bad kind");
			f.kind = (int)kind;
		}
		app = util_form_get(query, strlen(query), "app", &len);
		f.app = app;
	}
	rc = ops->list_jobs(rd, &f, &rows, &n, &next, err, sizeof(err));
	free(app);
	if (rc == -1) {
		return admin_store_error(ops, body, err);
	}
	o = cJSON_CreateObject();
	arr = cJSON_AddArrayToObject(o, "jobs");
	for (i = 0; i < n; i++)
		cJSON_AddItemToArray(arr, admin_job_json(&rows[i]));
	cJSON_AddItemToObject(o, "next", admin_json_id(next));
	store_job_rows_free(rows, n);
	return admin_reply(body, 200, o);
}

static int
admin_job(struct queue *q, int64_t id, struct buf *body)
{
	struct store		*rd;
	const struct store_ops	*ops = queue_reader(q, &rd);
	struct store_job_row	 r;
	struct store_attempt_row *att = NULL;
	size_t			 n = 0, i;
	char			 err[256];
	cJSON			*o, *arr, *a;
	int			 rc;

	rc = ops->get_job(rd, id, &r, err, sizeof(err));
	if (rc == 0)
		return admin_error(body, 404, "no such job");
	if (rc == -1 || ops->list_attempts(rd, id, &att, &n, err,
	    sizeof(err)) == -1) {
		if (rc == 1)
			store_job_row_clear(&r);
		return admin_store_error(ops, body, err);
	}
	o = admin_job_json(&r);
	arr = cJSON_AddArrayToObject(o, "attempts_log");
	for (i = 0; i < n; i++) {
		a = cJSON_CreateObject();
		cJSON_AddNumberToObject(a, "n", att[i].n);
		cJSON_AddItemToObject(a, "started",
		    admin_json_time(att[i].started_ms));
		cJSON_AddItemToObject(a, "ended",
		    admin_json_time(att[i].ended_ms));
		cJSON_AddBoolToObject(a, "ok", att[i].ok != 0);
		cJSON_AddItemToObject(a, "error", admin_json_str(att[i].error));
		cJSON_AddItemToArray(arr, a);
	}
	/*
	 * The attempt in progress has a start and no end yet; a waiting
	 * job's attempt is in progress from its apply to its last look.
	 */
	if ((r.state == JOB_RUNNING || r.state == JOB_WAITING) &&
	    r.started_ms > 0) {
		a = cJSON_CreateObject();
		cJSON_AddNumberToObject(a, "n", r.attempts + 1);
		cJSON_AddItemToObject(a, "started",
		    admin_json_time(r.started_ms));
		cJSON_AddItemToObject(a, "ended", cJSON_CreateNull());
		cJSON_AddItemToObject(a, "ok", cJSON_CreateNull());
		cJSON_AddItemToObject(a, "error", cJSON_CreateNull());
		cJSON_AddItemToArray(arr, a);
	}
	store_attempt_rows_free(att, n);
	store_job_row_clear(&r);
	return admin_reply(body, 200, o);
}

static int
admin_retry(struct queue *q, int64_t id, struct buf *body)
{
	char	 err[256];
	int	 rc;
	cJSON	*o;

	rc = queue_retry(q, id, err, sizeof(err));
	if (rc == 2)
		return admin_error(body, 404, "no such job");
	if (rc == 1)
		return admin_error(body, 409,
		    "only a failed or dead job can be retried");
	if (rc == -1) {
		log_warnx("admin: retry: %s", err);
		return admin_error(body, 503, "store error");
	}
	o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "job", (double)id);
	cJSON_AddStringToObject(o, "state", "queued");
	return admin_reply(body, 200, o);
}

/* Image names compare without Docker Hub's implied host and library/. */
static const char *
admin_image_short(const char *s)
{
	static const char *const prefixes[] = {
		"docker.io/", "index.docker.io/", "registry-1.docker.io/",
	};
	size_t	 i, len;

	for (i = 0; i < nitems(prefixes); i++) {
		len = strlen(prefixes[i]);
		if (strncmp(s, prefixes[i], len) == 0) {
			s += len;
			break;
		}
	}
	if (strncmp(s, "library/", 8) == 0 && strchr(s + 8, '/') == NULL)
		s += 8;
	return s;
}

/* The fields a repo's and an image's last poll share. */
static void
admin_poll_json(cJSON *pj, const struct poller_status *ps)
{
	cJSON_AddNumberToObject(pj, "interval_s", ps->interval_s);
	cJSON_AddItemToObject(pj, "last", admin_json_time(ps->last_ms));
	cJSON_AddItemToObject(pj, "next", admin_json_time(ps->next_ms));
	cJSON_AddItemToObject(pj, "result", admin_json_str(ps->last_ms > 0 ?
	    ps->result : NULL));
	cJSON_AddItemToObject(pj, "error", admin_json_str(ps->error[0] !=
	    '\0' ? ps->error : NULL));
}

static cJSON *
admin_app_json(struct queue *q, struct poller *pl, const struct config *cfg,
    const struct config_app *a, char *err, size_t errlen)
{
	struct store		*rd;
	const struct store_ops	*ops = queue_reader(q, &rd);
	const struct config_repo *repo = NULL;
	struct store_app_row	 r;
	struct poller_status	 ps;
	char			*rev_url;
	cJSON			*o, *imgs, *im, *lj, *pj;
	size_t			 i, k;
	const struct store_image_row *found;

	for (i = 0; a->repo != NULL && i < cfg->nrepos; i++)
		if (strcmp(cfg->repos[i].name, a->repo) == 0)
			repo = &cfg->repos[i];
	if (ops->app_get(rd, a->name, &r, err, errlen) == -1)
		return NULL;
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "name", a->name);
	cJSON_AddItemToObject(o, "repo", admin_json_str(a->repo));
	cJSON_AddItemToObject(o, "branch", admin_json_str(repo != NULL ?
	    repo->branch : NULL));
	cJSON_AddItemToObject(o, "path", admin_json_str(a->path));
	cJSON_AddItemToObject(o, "cluster", admin_json_str(a->cluster));
	cJSON_AddItemToObject(o, "namespace", admin_json_str(a->namespace));
	cJSON_AddItemToObject(o, "revision", admin_json_str(r.revision));
	rev_url = repo != NULL ? router_commit_url(repo->url, r.revision) :
	    NULL;
	cJSON_AddItemToObject(o, "revision_url", admin_json_str(rev_url));
	free(rev_url);
	cJSON_AddStringToObject(o, "health", r.health != NULL ? r.health :
	    "Unknown");
	cJSON_AddItemToObject(o, "synced_at", admin_json_time(r.synced_at_ms));
	if (a->repo != NULL && poller_repo_status_get(pl, a->repo, &ps)) {
		pj = cJSON_AddObjectToObject(o, "repo_poll");
		admin_poll_json(pj, &ps);
		cJSON_AddItemToObject(pj, "head", admin_json_str(
		    ps.head[0] != '\0' ? ps.head : NULL));
	} else
		cJSON_AddItemToObject(o, "repo_poll", cJSON_CreateNull());
	imgs = cJSON_AddArrayToObject(o, "images");
	for (i = 0; i < a->nimages; i++) {
		found = NULL;
		for (k = 0; k < r.nimages; k++)
			if (strcmp(admin_image_short(r.images[k].image),
			    admin_image_short(a->images[i].repository)) == 0)
				found = &r.images[k];
		im = cJSON_CreateObject();
		cJSON_AddStringToObject(im, "repository",
		    a->images[i].repository);
		cJSON_AddItemToObject(im, "tag", admin_json_str(found != NULL ?
		    found->tag : NULL));
		cJSON_AddItemToObject(im, "digest", admin_json_str(found !=
		    NULL ? found->digest : NULL));
		if (poller_status_get(pl, a->name, a->images[i].repository,
		    &ps)) {
			pj = cJSON_AddObjectToObject(im, "poll");
			admin_poll_json(pj, &ps);
			cJSON_AddItemToObject(pj, "tag", admin_json_str(
			    ps.tag[0] != '\0' ? ps.tag : NULL));
		} else
			cJSON_AddItemToObject(im, "poll", cJSON_CreateNull());
		cJSON_AddItemToArray(imgs, im);
	}
	if (r.last_job_id > 0) {
		lj = cJSON_CreateObject();
		cJSON_AddNumberToObject(lj, "id", (double)r.last_job_id);
		cJSON_AddStringToObject(lj, "kind",
		    job_kind_name(r.last_job_kind));
		cJSON_AddStringToObject(lj, "state",
		    job_state_name(r.last_job_state));
		cJSON_AddItemToObject(o, "last_job", lj);
	} else
		cJSON_AddItemToObject(o, "last_job", cJSON_CreateNull());
	cJSON_AddItemToObject(o, "last_error", admin_json_str(r.last_error));
	store_app_row_clear(&r);
	return o;
}

static int
admin_apps(struct queue *q, struct poller *pl, const char *name,
    struct buf *body)
{
	const struct config	*cfg = queue_config(q);	/* swapped on the loop */
	struct store		*rd;
	const struct store_ops	*ops = queue_reader(q, &rd);
	char			 err[256];
	cJSON			*o = NULL, *arr, *a;
	size_t			 i;

	if (name != NULL) {
		for (i = 0; i < cfg->napps; i++)
			if (strcmp(cfg->apps[i].name, name) == 0)
				break;
		if (i == cfg->napps)
			return admin_error(body, 404, "no such app");
		if ((o = admin_app_json(q, pl, cfg, &cfg->apps[i], err,
		    sizeof(err))) == NULL)
			goto fail;
		return admin_reply(body, 200, o);
	}
	o = cJSON_CreateObject();
	arr = cJSON_AddArrayToObject(o, "apps");
	for (i = 0; i < cfg->napps; i++) {
		if ((a = admin_app_json(q, pl, cfg, &cfg->apps[i], err,
		    sizeof(err))) == NULL)
			goto fail;
		cJSON_AddItemToArray(arr, a);
	}
	return admin_reply(body, 200, o);
fail:
	cJSON_Delete(o);
	return admin_store_error(ops, body, err);
}

static int
admin_sync(struct queue *q, const char *name, struct buf *body)
{
	const struct config	*cfg = queue_config(q);
	const struct config_app	*a = NULL;
	struct job_spec		 spec;
	char			 err[256];
	int64_t			 id;
	size_t			 i;
	cJSON			*o;

	for (i = 0; i < cfg->napps; i++)
		if (strcmp(cfg->apps[i].name, name) == 0)
			a = &cfg->apps[i];
	if (a == NULL)
		return admin_error(body, 404, "no such app");
	/* A Git-only app: a sync job could only fail and alert. */
	if (a->cluster == NULL)
		return admin_error(body, 409, "app has no cluster: its "
		    "image updates are written to Git only, nothing to sync");
	memset(&spec, 0, sizeof(spec));
	spec.kind = JOB_SYNC;
	spec.app = a->name;
	spec.repo = a->repo;
	spec.revision = NULL;	/* the branch head when it runs */
	if (queue_add_jobs(q, &spec, 1, &id, err, sizeof(err)) == -1) {
		log_warnx("admin: sync %s: %s", name, err);
		return admin_error(body, 503, "store error");
	}
	log_info("job %" PRId64 " sync app=%s: created by the admin API", id,
	    name);
	o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "job", (double)id);
	return admin_reply(body, 202, o);
}

/* A positive decimal id of the whole segment [s, end), or -1. */
static int64_t
admin_id(const char *s, size_t len)
{
	int64_t	 v = 0;
	size_t	 i;

	if (len == 0 || len > 18)
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v > 0 ? v : -1;
}

int
admin_api(struct queue *q, struct poller *pl, const char *method,
    const char *path, const char *query, struct buf *body)
{
	const char	*p = path, *slash;
	struct store	*rd;
	int		 get = strcmp(method, "GET") == 0;
	int		 post = strcmp(method, "POST") == 0;
	int64_t		 id;
	char		*name;
	int		 status;

	if (queue_reader(q, &rd) == NULL || !queue_reader_up(q))
		return admin_error(body, 503, "state store unavailable");
	if (strncmp(p, "/api/v1", 7) == 0)
		p += 7;
	if (query != NULL && *query == '\0')
		query = NULL;

	if (strcmp(p, "/events") == 0) {
		if (!get)
			return admin_error(body, 405, "method not allowed");
		return admin_events(q, query, body);
	}
	if (strcmp(p, "/replicas") == 0) {
		if (!get)
			return admin_error(body, 405, "method not allowed");
		return admin_replicas(q, body);
	}
	if (strcmp(p, "/jobs") == 0) {
		if (!get)
			return admin_error(body, 405, "method not allowed");
		return admin_jobs(q, query, body);
	}
	if (strncmp(p, "/jobs/", 6) == 0) {
		p += 6;
		slash = strchr(p, '/');
		id = admin_id(p, slash != NULL ? (size_t)(slash - p) :
		    strlen(p));
		if (id == -1)
			return admin_error(body, 404, "no such job");
		if (slash == NULL) {
			if (!get)
				return admin_error(body, 405,
				    "method not allowed");
			return admin_job(q, id, body);
		}
		if (strcmp(slash, "/retry") == 0) {
			if (!post)
				return admin_error(body, 405,
				    "method not allowed");
			return admin_retry(q, id, body);
		}
		return admin_error(body, 404, "not found");
	}
	if (strcmp(p, "/apps") == 0) {
		if (!get)
			return admin_error(body, 405, "method not allowed");
		return admin_apps(q, pl, NULL, body);
	}
	if (strncmp(p, "/apps/", 6) == 0) {
		p += 6;
		slash = strchr(p, '/');
		name = slash != NULL ? xstrndup(p, (size_t)(slash - p)) :
		    xstrdup(p);
		if (slash == NULL) {
			status = get ? admin_apps(q, pl, name, body) :
			    admin_error(body, 405, "method not allowed");
		} else if (strcmp(slash, "/sync") == 0) {
			status = post ? admin_sync(q, name, body) :
			    admin_error(body, 405, "method not allowed");
		} else
			status = admin_error(body, 404, "not found");
		free(name);
		return status;
	}
	return 0;
}
