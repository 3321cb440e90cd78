/*
 * queue.c: the durable job queue (include/queue.h) over the state store
 * (include/store.h) and the job state machine.  The admin API
 * (daemon/admin.c) reads through queue_reader() and writes through
 * queue_retry() and queue_add_jobs().
 *
 * DESIGN
 * - Threads.  The loop thread owns the event base, the timers and the
 *   worker pool's hand-offs.  One store thread owns the writing store
 *   connection and does every write of the hot path in "rounds": it swaps
 *   out everything that arrived since the last round (submissions, finished
 *   attempts, a claim request) and handles it in one transaction with one
 *   durable commit (group commit).  While a round commits, new submissions
 *   pile up for the next one.  Admin writes (retry, manual sync) are handed
 *   to the same rounds; the loop keeps a connection of its own for the
 *   admin API's reads only.  What a backend runs beside its writer (its
 *   own threads and connections) is the backend's: writer_start starts it
 *   with the writing connection, close stops it, and the store thread
 *   gives it a moment between rounds (upkeep); docs/queue.md
 *   (Durability) says what the default backend does there.
 * - Hand-back.  A round's results (submission outcomes, claimed jobs, the
 *   next retry time) go onto one list; one event_active() wakes the loop,
 *   which swaps the list out under the lock and calls queue_submit's
 *   callbacks: a callback fires only after its commit.
 * - State machine.  queued -> running -> succeeded | failed (retry at
 *   not_before: backoff with full jitter) -> ... -> dead.  A sync whose
 *   workloads still roll out goes running -> waiting: the worker is free,
 *   and at not_before the job is claimed again for a health check only
 *   (job->wait), which ends in succeeded, failed or dead as the attempt
 *   would have, or in waiting again.  Waiting is not an attempt: nothing
 *   counted, no alert, no app status; it still holds its app as a running
 *   job does, and is not in `pending` (the queue bound).  One pure
 *   function, job_advance() (job.c), decides every transition;
 *   queue_store_finish() stores it in the same transaction as the attempt,
 *   the result, follow-up jobs, planned alerts and the app's status.
 *   Claims follow the store's rules (one running job per
 *   app, per repository for update-image, queued update-image jobs of one
 *   repository merged into one run).
 * - Leases.  A claim holds each job under this replica's id (replica.h)
 *   until now + queue.lease_s; every lease_s/3 one round renews the
 *   leases of every job claimed here and not yet recorded (one
 *   statement) and takes over, as after a crash, the running jobs of any
 *   replica whose lease ended (store.h: takeover).  Recording an attempt
 *   is fenced by the lease and the claim's token (job->claim): a replica
 *   that was paused past its lease finds its job taken over and drops its
 *   result (the new runner's counts), even when the new runner is itself.  This is the only recovery: a SQLite store is one process's,
 *   so its leases at start are expired at once (queue_store_prepare).
 * - Failure.  A delivery is stored whole or not at all: a duplicate is
 *   found before anything of it is written, and any other failure while
 *   writing it rolls back the whole round (no savepoint per delivery,
 *   see queue_store_item); a failed round or commit answers QUEUE_ERROR
 *   for all of it, and finished attempts of that round are kept to be
 *   recorded again.  A store that takes a round's deliveries at once
 *   (add_deliveries: PostgreSQL, where each statement is a round trip)
 *   leaves a delivery it cannot store out alone (QUEUE_ERROR for it).
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <event2/event.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "gitnet.h"
#include "handler.h"
#include "job.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "queue.h"
#include "replica.h"
#include "replicas.h"
#include "store.h"
#include "util.h"
#include "wakeup.h"
#include "worker.h"

#define QUEUE_MAX_LOOP_JOBS	32		/* notify jobs in flight */
#define QUEUE_RETENTION_MS	(3600 * 1000)
#define QUEUE_DONE_TRIES	5
#define QUEUE_GAUGES_MS		1000
#define QUEUE_REOPEN_MS		1000		/* store not writable at start */
#define QUEUE_MAX_WATCHERS	4
/*
 * Shortest gap between two claims on a store where a claim costs round
 * trips and a lock every replica shares (add_deliveries: PostgreSQL),
 * while jobs are already running here.  A claim there is a third of a
 * round: made every round under a stream of deliveries, it puts that
 * third on every 202.  25 ms is a few rounds' worth under load (a
 * round takes 4-8 ms), short beside any job (a sync is seconds) and
 * beside the lease; an idle replica still claims at once.
 */
#define QUEUE_CLAIM_GAP_MS	25

/* One queue_submit() call, copied so the caller's memory can go. */
struct queue_sub_item {
	char			*source, *delivery, *kind, *summary;
	struct job_spec		*jobs;
	size_t			 njobs;
	int64_t			 received_ms;
};

struct queue_sub {
	struct queue_sub	*next;
	struct queue_sub_item	*items;
	size_t			 n;
	struct queue_outcome	*outcomes;
	int64_t			*ids;		/* all items' job ids */
	queue_submit_cb		*cb;
	void			*arg;
};

/* A finished attempt waiting to be recorded by the store thread. */
struct queue_done {
	struct queue_done	*next;
	struct job		*job;
	struct job_result	*res;
	int64_t			 started_ms, ended_ms;
	int			 tries;
	int			 warned;	/* "cannot record" logged */
};

/*
 * What a recorded attempt tells the log and the metrics, held until its
 * round commits: a round that fails (a full disk) records the attempt
 * again in the next one, and must not count or log it each time.
 */
struct queue_note {
	char		*line;			/* the log line */
	char		 state_label[96];	/* gitopsd_jobs_total */
	char		 kind_label[96];	/* gitopsd_job_duration_seconds */
	double		 duration_s;
	double		 to_deploy_s;		/* <0: not a deploy */
};

/*
 * A write the admin API needs at once (retry, manual sync): the loop
 * queues it for the store thread, which runs it in its next round (same
 * transaction, same commit), and waits until that commit is over.  The
 * loop thus never takes the write lock itself.
 */
struct queue_call {
	struct queue_call	*next;
	int			(*fn)(struct queue *, const struct config *,
				    void *arg, char *err, size_t errlen);
	void			*arg;
	int			 rc;
	int			 done;
	char			 err[256];
};

/* What a round hands back to the loop. */
struct queue_reply {
	struct queue_reply	*next;
	struct queue_sub	*subs;
	struct job		**claimed;
	size_t			 nclaimed;
	int			 has_due;
	int			 keep_due;	/* the timer stays as it is */
	int64_t			 due_ms;
};

struct queue {
	struct event_base	*base;
	const struct store_ops	*ops;
	struct store		*wr;		/* store thread */
	struct store		*rd;		/* loop: admin API */
	queue_runner_find_fn	*find;

	pthread_mutex_t		 mtx;
	pthread_cond_t		 cv;
	/* Guarded by mtx. */
	struct config		*cfg;
	struct queue_sub	*subs, **subs_tail;
	struct queue_done	*dones, **dones_tail;
	struct queue_reply	*replies, **replies_tail;
	struct queue_call	*calls, **calls_tail;
	pthread_cond_t		 call_cv;	/* a call is done */
	int			 kick;		/* claim / recount wanted */
	int			 stop;
	/*
	 * Atomic: wr and rd are open (queue_store_prepare).  Set once, with
	 * release, after they are; read with acquire before rd.
	 */
	int			 avail;
	/*
	 * Atomic: a shared store's connection is lost (set and cleared by
	 * the store thread, read by /readyz).
	 */
	int			 link_down;
	int			 claiming;	/* started and not draining */

	/* Store thread only. */
	pthread_t		 thread;
	int			 thread_started;
	int64_t			 pending;	/* queued + failed jobs */
	int			 out_thread;	/* claimed, not yet recorded */
	int			 out_loop;
	int64_t			 last_retention_ms;
	int64_t			 last_resend_ms;	/* monotonic; 0: never */
	/* Claims made here and not yet recorded: their leases renewed. */
	struct store_lease	*leased;
	size_t			 nleased, leased_cap;
	int64_t			 last_lease_ms;	/* last renewal (monotonic) */
	int64_t			 last_claim_ms;	/* monotonic; 0: never */
	int			 claim_owed;	/* a claim put off (claim gap) */
	int			 done_failed;	/* last round could not record */
	int64_t			 open_tried_ms;	/* the store not yet open */
	unsigned		 open_tries;
	char			 open_err[256];	/* the last reason logged */
	struct queue_note	*notes;		/* this round's, until commit */
	size_t			 nnotes, notes_cap;
	int			 gauges_due;	/* counts changed since last gauges */
	int64_t			 last_gauges_ms;
	struct queue_stats	 stats;		/* under mtx */

	/* Loop only. */
	struct event		*wake;
	struct event		*timer;
	struct wakeup		*wakeup;	/* other replicas' jobs */
	struct wakeup_dial	*rd_dial;	/* rd being made again */
	int64_t			 rd_retry_ms;	/* not before (monotonic) */
	int			 rd_backoff_ms;
	int			 rd_lost;	/* logged once per loss */
	struct worker_pool	*pool;
	struct queue_loop_run	*loop_runs;	/* notify jobs in flight */
	int			 started;
	int			 draining;
	struct {
		queue_watch_cb	*cb;
		void		*arg;
	}			 watch[QUEUE_MAX_WATCHERS];
	size_t			 nwatch;
};

struct queue_loop_run;
static void	queue_kick(struct queue *);

int64_t
queue_backoff_ms(int base_s, int max_s, int attempts, int retry_after_s)
{
	return job_backoff_ms(base_s, max_s, attempts, retry_after_s,
	    util_random_unit());
}

void
queue_stats(struct queue *q, struct queue_stats *out)
{
	pthread_mutex_lock(&q->mtx);
	*out = q->stats;
	pthread_mutex_unlock(&q->mtx);
}

void
queue_set_runner_find(struct queue *q, queue_runner_find_fn *find)
{
	q->find = find;
}

static int
queue_workers(const struct config *cfg)
{
	return cfg->queue.workers;
}

static void
queue_spec_copy(struct job_spec *dst, const struct job_spec *src)
{
	dst->kind = src->kind;
	dst->app = src->app != NULL ? xstrdup(src->app) : NULL;
	dst->repo = src->repo != NULL ? xstrdup(src->repo) : NULL;
	dst->revision = src->revision != NULL ? xstrdup(src->revision) : NULL;
	dst->image = src->image != NULL ? xstrdup(src->image) : NULL;
	dst->tag = src->tag != NULL ? xstrdup(src->tag) : NULL;
	dst->digest = src->digest != NULL ? xstrdup(src->digest) : NULL;
	dst->params = src->params != NULL ? xstrdup(src->params) : NULL;
}

static void
queue_spec_free(struct job_spec *s)
{
	free((char *)s->app);
	free((char *)s->repo);
	free((char *)s->revision);
	free((char *)s->image);
	free((char *)s->tag);
	free((char *)s->digest);
	free((char *)s->params);
}

static void
queue_sub_free(struct queue_sub *sub)
{
	size_t	 i, k;

	for (i = 0; i < sub->n; i++) {
		free(sub->items[i].source);
		free(sub->items[i].delivery);
		free(sub->items[i].kind);
		free(sub->items[i].summary);
		for (k = 0; k < sub->items[i].njobs; k++)
			queue_spec_free(&sub->items[i].jobs[k]);
		free(sub->items[i].jobs);
	}
	free(sub->items);
	free(sub->outcomes);
	free(sub->ids);
	free(sub);
}

static void
queue_done_free(struct queue_done *d)
{
	job_free(d->job);
	if (d->res != NULL) {
		job_result_clear(d->res);
		free(d->res);
	}
	free(d);
}

static void
queue_reply_free(struct queue_reply *r)
{
	struct queue_sub	*sub, *next;
	size_t			 i;

	for (sub = r->subs; sub != NULL; sub = next) {
		next = sub->next;
		queue_sub_free(sub);
	}
	for (i = 0; i < r->nclaimed; i++)
		job_free(r->claimed[i]);
	free(r->claimed);
	free(r);
}

/* "sync" -> `kind="sync"` for metric labels. */
static void
queue_kind_label(enum job_kind kind, const char *extra, char *out, size_t len)
{
	if (extra != NULL)
		snprintf(out, len, "kind=\"%s\",result=\"%s\"",
		    job_kind_name(kind), extra);
	else
		snprintf(out, len, "kind=\"%s\"", job_kind_name(kind));
}

/* The result of an attempt as the JSON object stored with the job. */
static char *
queue_result_json(const struct job_result *res)
{
	cJSON	*o, *d;
	char	*s;

	o = cJSON_CreateObject();
	if (o == NULL)
		return NULL;
	cJSON_AddBoolToObject(o, "ok", res->ok != 0);
	if (res->commit != NULL)
		cJSON_AddStringToObject(o, "commit", res->commit);
	if (res->revision != NULL)
		cJSON_AddStringToObject(o, "revision", res->revision);
	if (res->object != NULL)
		cJSON_AddStringToObject(o, "object", res->object);
	if (!res->ok && res->wait == NULL)
		cJSON_AddStringToObject(o, "error_kind",
		    job_error_kind_name(res->err_kind));
	if (res->detail != NULL) {
		if ((d = cJSON_Parse(res->detail)) != NULL)
			cJSON_AddItemToObject(o, "detail", d);
		else
			cJSON_AddStringToObject(o, "detail", res->detail);
	}
	/* Read back by the store's claim (job->wait). */
	if (res->wait != NULL) {
		if ((d = cJSON_Parse(res->wait)) == NULL) {
			cJSON_Delete(o);
			return NULL;
		}
		cJSON_AddItemToObject(o, "wait", d);
	}
	s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return s;
}

/* `health` from a sync result's detail JSON, malloc'd or NULL. */
static char *
queue_result_health(const struct job_result *res)
{
	cJSON	*o, *h;
	char	*s = NULL;

	if (res->detail == NULL || (o = cJSON_Parse(res->detail)) == NULL)
		return NULL;
	h = cJSON_GetObjectItemCaseSensitive(o, "health");
	if (cJSON_IsString(h) && h->valuestring != NULL)
		s = xstrdup(h->valuestring);
	cJSON_Delete(o);
	return s;
}

/*
 * How far back an app's open incidents are looked for: its newest notify
 * jobs, this many (an app that failed for longer than retention keeps is
 * resolved by the key of the app alone; notify_plan_resolves).
 */
#define QUEUE_OPEN_SCAN	500
#define QUEUE_OPEN_PAGE	100

/* The app's open incidents, from its notify jobs in the outbox. */
static int
queue_store_open(struct queue *q, const char *app, struct notify_open_set *s,
    char *err, size_t errlen)
{
	struct store_job_filter	 f;
	struct store_job_row	*rows = NULL;
	size_t			 n = 0, i, seen = 0;
	int64_t			 next = 0;

	memset(s, 0, sizeof(*s));
	do {
		memset(&f, 0, sizeof(f));
		f.app = app;
		f.kind = JOB_NOTIFY;
		f.after = next;
		f.limit = QUEUE_OPEN_PAGE;
		if (q->ops->list_jobs(q->wr, &f, &rows, &n, &next, err,
		    errlen) == -1) {
			notify_open_free(s);
			return -1;
		}
		for (i = 0; i < n; i++)
			notify_open_feed(s, rows[i].params);
		store_job_rows_free(rows, n);
		seen += n;
	} while (next != 0 && seen < QUEUE_OPEN_SCAN);
	return 0;
}

/* Insert planned notify jobs but those their dedup key holds back. */
static int
queue_store_items(struct queue *q, const struct config *cfg,
    const struct notify_plan *plan, int64_t now, size_t *added, char *err,
    size_t errlen)
{
	int	 dup, absorbed;
	int64_t	 id;
	size_t	 i;

	for (i = 0; i < plan->n; i++) {
		const struct notify_plan_item *it = &plan->items[i];

		if (it->dedup_key != NULL) {
			dup = q->ops->notify_key(q->wr, it->dedup_key, now,
			    (int64_t)it->repeat_after_s * 1000, err, errlen);
			if (dup == -1)
				return -1;
			if (dup == 1)
				continue;
		}
		if (q->ops->add_job(q->wr, &it->spec, 0, it->max_attempts > 0 ?
		    it->max_attempts : job_max_attempts(cfg, JOB_NOTIFY), now,
		    &id, &absorbed, err, errlen) == -1)
			return -1;
		q->pending++;
		if (added != NULL)
			(*added)++;
	}
	return 0;
}

/* Insert the alerts notify_plan() makes for this transition. */
static int
queue_store_plan(struct queue *q, const struct config *cfg,
    const struct job *j, const struct job_result *res, enum job_state state,
    int64_t now, char *err, size_t errlen)
{
	struct store_app_row	 app;
	struct notify_plan	 plan;
	struct notify_open_set	 open;
	int			 was_failing = 0, rc = -1;

	memset(&plan, 0, sizeof(plan));
	memset(&open, 0, sizeof(open));
	if (j->kind == JOB_NOTIFY)
		return 0;	/* alerts about alerts would loop */
	if (j->app != NULL) {
		if (q->ops->app_get(q->wr, j->app, &app, err, errlen) == -1)
			return -1;
		was_failing = app.found && app.outcome == JOB_DEAD &&
		    job_outcome_final(res, state);
		store_app_row_clear(&app);
	}
	/* A recovery resolves what the outbox has open. */
	if (notify_wants_open(cfg, j->app, res->ok, was_failing) &&
	    queue_store_open(q, j->app, &open, err, errlen) == -1)
		return -1;
	notify_plan(cfg, j, res, state, was_failing, &open, &plan);
	if (queue_store_items(q, cfg, &plan, now, NULL, err, errlen) == -1)
		goto out;
	rc = 0;
out:
	notify_plan_free(&plan);
	notify_open_free(&open);
	return rc;
}

/*
 * Re-send the open failures of every failing app on notifiers that want
 * it (alertmanager), inside the round's transaction.  Periodic work: the
 * caller holds the periodic role.  Returns the jobs added, -1 on error.
 */
static int
queue_store_resend(struct queue *q, const struct config *cfg, int64_t now,
    char *err, size_t errlen)
{
	struct store_app_row	 app;
	struct notify_open_set	 open;
	struct notify_plan	 plan;
	size_t			 i, added, total = 0;
	int			 failing;
	char			 n[24];

	for (i = 0; i < cfg->napps; i++) {
		/* Most apps' notifiers re-send nothing: no read for them. */
		if (!notify_app_resends(cfg, cfg->apps[i].name))
			continue;
		if (q->ops->app_get(q->wr, cfg->apps[i].name, &app, err,
		    errlen) == -1)
			return -1;
		failing = app.found && app.outcome == JOB_DEAD;
		store_app_row_clear(&app);
		if (!failing)
			continue;
		if (queue_store_open(q, cfg->apps[i].name, &open, err,
		    errlen) == -1)
			return -1;
		notify_resend_plan(cfg, cfg->apps[i].name, &open, &plan);
		notify_open_free(&open);
		added = 0;
		if (queue_store_items(q, cfg, &plan, now, &added, err,
		    errlen) == -1) {
			notify_plan_free(&plan);
			return -1;
		}
		notify_plan_free(&plan);
		if (added > 0) {
			snprintf(n, sizeof(n), "%zu", added);
			log_kv(LOG_LEVEL_DEBUG, "open alerts re-sent", "app",
			    cfg->apps[i].name, "alerts", n, NULL);
		}
		total += added;
	}
	return (int)total;
}

/* Per-app status after an attempt of j. */
static int
queue_store_app(struct queue *q, const struct job *j,
    const struct job_result *res, enum job_state state, int64_t now,
    char *err, size_t errlen)
{
	char		*health = NULL;
	const char	*rev = NULL;
	int		 rc;

	if (j->app == NULL || j->kind == JOB_NOTIFY)
		return 0;
	/*
	 * A sync that reached the cluster says what runs there, even when
	 * it failed (a rollout applied but unhealthy): the app shows that
	 * revision and its health, not the last healthy one's.
	 */
	if (j->kind == JOB_SYNC) {
		health = queue_result_health(res);
		if (state == JOB_SUCCEEDED || health != NULL)
			rev = res->revision != NULL ? res->revision :
			    j->revision;
	}
	if (state == JOB_SUCCEEDED && j->kind == JOB_UPDATE_IMAGE &&
	    j->image != NULL && q->ops->app_image_set(q->wr, j->app, j->image,
	    j->tag, j->digest, err, errlen) == -1)
		return -1;
	rc = q->ops->app_record(q->wr, j->app,
	    job_outcome_final(res, state) ? state : 0, j->id, rev, health,
	    state == JOB_SUCCEEDED && j->kind == JOB_SYNC ? now : 0,
	    state == JOB_SUCCEEDED ? NULL : res->error, err, errlen);
	free(health);
	return rc;
}

/*
 * Drop the notes from index mark on; first log and count them when their
 * round committed (emit).
 */
static void
queue_notes_end(struct queue *q, size_t mark, int emit)
{
	struct queue_note	*n;
	size_t			 i;

	for (i = mark; i < q->nnotes; i++) {
		n = &q->notes[i];
		if (emit && n->state_label[0] == '\0')
			log_info("%s", n->line);	/* waiting: no attempt */
		else if (emit) {
			metrics_counter_add("gitopsd_jobs_total",
			    n->state_label, 1);
			metrics_observe("gitopsd_job_duration_seconds",
			    n->kind_label, n->duration_s);
			if (n->to_deploy_s >= 0)
				metrics_observe(
				    "gitopsd_event_to_deploy_seconds", "",
				    n->to_deploy_s);
			log_info("%s", n->line);
		}
		free(n->line);
	}
	q->nnotes = mark;
}

/* Queue a log line (no metrics) for after the round's commit. */
static void
queue_note_add(struct queue *q, const struct queue_note *note)
{
	if (q->nnotes == q->notes_cap) {
		q->notes_cap = q->notes_cap > 0 ? q->notes_cap * 2 : 16;
		q->notes = xreallocarray(q->notes, q->notes_cap,
		    sizeof(*q->notes));
	}
	q->notes[q->nnotes++] = *note;
}

/* A sync's new inventory, with the attempt (or wait) that applied it. */
static int
queue_store_inventory(struct queue *q, const struct job *j,
    const struct job_result *res, int head, int64_t now, char *err,
    size_t errlen)
{
	if (!head || j->kind != JOB_SYNC || j->app == NULL ||
	    res->inventory == NULL)
		return 0;
	return q->ops->inventory_set(q->wr, j->app, res->inventory, now, err,
	    errlen);
}

/*
 * The job's lease ended before its attempt did (this replica was paused
 * or cut off from the store past queue.lease_s) and another runner took
 * it over: the result goes, the job is the new runner's.  Nothing else of
 * the attempt is recorded either (app status, alerts, follow-ups): the
 * run that holds the job now does that once.
 */
static void
queue_lease_lost(const struct job *j, const char *outcome)
{
	log_warnx("job %" PRId64 " %s app=%s: its lease was taken over while"
	    " it ran; this attempt's outcome (%s) is dropped", j->id,
	    job_kind_name(j->kind), j->app != NULL ? j->app : "-", outcome);
}

/*
 * An attempt that applied but must look at health again later: waiting
 * until not_before.  Not an attempt's end: its count stays, no attempt
 * row, no alert, the app's status unchanged until the attempt ends; the
 * store keeps started_ms as the attempt's start.
 */
static int
queue_store_wait(struct queue *q, const struct job *j,
    const struct job_result *res, int head, const struct job_advance *adv,
    int64_t ended_ms, char *err, size_t errlen)
{
	struct store_finish	 f;
	struct queue_note	 note;
	char			*result;
	int64_t			 delay = adv->not_before_ms - ended_ms;
	int			 rc;

	memset(&f, 0, sizeof(f));
	f.job_id = j->id;
	f.state = JOB_WAITING;
	f.attempts = adv->attempts;
	f.started_ms = adv->started_ms;
	f.ended_ms = ended_ms;
	f.not_before_ms = adv->not_before_ms;
	/* Without its wait state the job could not be looked at again. */
	if ((result = queue_result_json(res)) == NULL) {
		snprintf(err, errlen, "job %" PRId64 ": the wait state does not"
		    " encode", j->id);
		return -1;
	}
	f.result = result;
	f.owner = replica_id();
	f.claim = j->claim;
	rc = q->ops->finish(q->wr, &f, err, errlen);
	free(result);
	if (rc == -1)
		return -1;
	if (rc == 1) {
		queue_lease_lost(j, "waiting for health");
		return 0;
	}
	/*
	 * The apply is done: what it applied is stored now, not when the
	 * wait ends (a look at health has no inventory), so that a failed
	 * wait or a crash meanwhile still prunes from it.
	 */
	if (queue_store_inventory(q, j, res, head, ended_ms, err, errlen) == -1)
		return -1;
	/* One line when it starts waiting; each later look is a debug line. */
	if (j->wait != NULL) {
		log_debug("job %" PRId64 " %s app=%s: still waiting, next look "
		    "in %" PRId64 " ms", j->id, job_kind_name(j->kind),
		    j->app != NULL ? j->app : "-", delay);
		return 0;
	}
	memset(&note, 0, sizeof(note));
	note.to_deploy_s = -1;
	/* Not shaped as an attempt's outcome ("attempt=N: state"): none yet. */
	note.line = xasprintf("job %" PRId64 " %s app=%s delivery=%s: "
	    "waiting for health (attempt %d goes on)", j->id,
	    job_kind_name(j->kind), j->app != NULL ? j->app : "-",
	    j->delivery != NULL ? j->delivery : "-", f.attempts + 1);
	queue_note_add(q, &note);
	return 0;
}

/*
 * Hand each claimed sync its app's inventory.  A store error here costs
 * the sync one list-based prune (it then writes the inventory again), so
 * it does not fail the round.
 */
static void
queue_store_inventories(struct queue *q, struct queue_reply *rep)
{
	struct job	*j;
	char		 err[256];
	size_t		 i;

	for (i = 0; i < rep->nclaimed; i++) {
		j = rep->claimed[i];
		/* A look at a waiting sync's health prunes nothing. */
		if (j->kind != JOB_SYNC || j->app == NULL || j->wait != NULL)
			continue;
		if (q->ops->inventory_get(q->wr, j->app, &j->inventory, err,
		    sizeof(err)) == -1)
			log_warnx("queue: job %" PRId64 ": inventory of %s: %s "
			    "(its prune lists every kind)", j->id, j->app, err);
	}
}

/*
 * The state machine: record one finished attempt of j (one member of a
 * merged run) and move it to its next state.  Runs in the round's
 * transaction.
 */
static int
queue_store_finish(struct queue *q, const struct config *cfg,
    const struct job *j, const struct job_result *res, int head,
    int64_t started_ms, int64_t ended_ms, char *err, size_t errlen)
{
	struct store_finish	 f;
	struct job_advance	 adv;
	struct queue_note	 note;
	enum job_state		 state;
	char			*result = NULL;
	int64_t			 now = ended_ms, id, received;
	int			 absorbed, rc = -1, fenced;
	size_t			 i;

	job_advance(cfg, j, res, head, started_ms, ended_ms,
	    util_random_unit(), &adv);
	if (!adv.ended)
		return queue_store_wait(q, j, res, head, &adv, ended_ms, err,
		    errlen);
	state = adv.state;
	started_ms = adv.started_ms;

	memset(&note, 0, sizeof(note));
	note.to_deploy_s = -1;
	memset(&f, 0, sizeof(f));
	f.job_id = j->id;
	f.state = state;
	f.attempts = adv.attempts;
	f.started_ms = started_ms;
	f.ended_ms = ended_ms;
	f.error = adv.error;
	f.not_before_ms = adv.not_before_ms;
	result = queue_result_json(res);
	f.result = result;
	f.owner = replica_id();
	f.claim = j->claim;
	if ((fenced = q->ops->finish(q->wr, &f, err, errlen)) == -1)
		goto out;
	if (fenced == 1) {
		queue_lease_lost(j, job_state_name(state));
		rc = 0;
		goto out;
	}
	if (state == JOB_FAILED)
		q->pending++;

	if (state == JOB_SUCCEEDED) {
		for (i = 0; adv.followups && i < res->nfollowups; i++) {
			if (q->ops->add_job(q->wr, &res->followups[i],
			    j->event_id, job_max_attempts(cfg,
			    res->followups[i].kind), now, &id, &absorbed, err,
			    errlen) == -1)
				goto out;
			if (!absorbed)
				q->pending++;
		}
		if (j->kind == JOB_SYNC && j->event_id > 0 &&
		    q->ops->event_received(q->wr, j->event_id, &received, err,
		    errlen) == 1 && now >= received)
			note.to_deploy_s = (double)(now - received) / 1000.0;
	}
	/* The plan reads the app's previous outcome (recovery): first. */
	if (queue_store_plan(q, cfg, j, res, state, now, err, errlen) == -1)
		goto out;
	if (queue_store_app(q, j, res, state, now, err, errlen) == -1)
		goto out;
	/* With the attempt that applied it: the next sync reads this. */
	if (queue_store_inventory(q, j, res, head, now, err, errlen) == -1)
		goto out;

	queue_kind_label(j->kind, job_state_name(state), note.state_label,
	    sizeof(note.state_label));
	queue_kind_label(j->kind, NULL, note.kind_label,
	    sizeof(note.kind_label));
	note.duration_s = (double)(ended_ms - started_ms) / 1000.0;
	note.line = xasprintf("job %" PRId64 " %s app=%s delivery=%s "
	    "attempt=%d: %s%s%s", j->id, job_kind_name(j->kind),
	    j->app != NULL ? j->app : "-",
	    j->delivery != NULL ? j->delivery : "-", adv.attempts,
	    job_state_name(state), res->ok ? "" : ": ",
	    res->ok ? "" : f.error);
	queue_note_add(q, &note);
	rc = 0;
out:
	free(result);
	return rc;
}

/* A job's lease in ms (queue.lease_s). */
static int64_t
queue_lease_ms(const struct config *cfg)
{
	return (int64_t)(cfg->queue.lease_s > 0 ? cfg->queue.lease_s : 30) *
	    1000;
}

static void
queue_leased_add(struct queue *q, const struct job *j)
{
	if (q->nleased == q->leased_cap) {
		q->leased_cap = q->leased_cap == 0 ? 16 : q->leased_cap * 2;
		q->leased = xreallocarray(q->leased, q->leased_cap,
		    sizeof(*q->leased));
	}
	q->leased[q->nleased].job_id = j->id;
	q->leased[q->nleased++].claim = j->claim;
}

/*
 * By claim, not by job: a run whose lease was lost may still be here when
 * this replica claims the job again.
 */
static void
queue_leased_del(struct queue *q, const struct job *j)
{
	size_t	 i;

	for (i = 0; i < q->nleased; i++)
		if (q->leased[i].job_id == j->id &&
		    q->leased[i].claim == j->claim) {
			q->leased[i] = q->leased[--q->nleased];
			return;
		}
}

/* A run (the job and those merged into it) is no longer held here. */
static void
queue_leased_end(struct queue *q, const struct job *j)
{
	size_t	 i;

	queue_leased_del(q, j);
	for (i = 0; i < j->nmerged; i++)
		queue_leased_del(q, j->merged[i]);
}

/*
 * Jobs a takeover made dead: their last attempt was interrupted.  That is
 * a failure like an attempt's (job_advance decides, as for a finish):
 * the app's status records it and its alerts go to the outbox in the
 * caller's transaction, under the same dedup keys, so one failure makes
 * one alert whoever takes the job over, and a later success is a
 * recovery.  Frees dead.
 */
static int
queue_store_interrupted(struct queue *q, const struct config *cfg,
    struct job **dead, int ndead, int64_t now, char *err, size_t errlen)
{
	struct job_result	 res;
	struct job_advance	 adv;
	int			 i, rc = 0;

	for (i = 0; i < ndead; i++) {
		memset(&res, 0, sizeof(res));
		job_result_fail(&res, JOB_ERR_INTERRUPTED, 0,
		    "interrupted: gitopsd stopped while the job ran");
		res.interrupted = 1;
		job_advance(cfg, dead[i], &res, 1, now, now, 0.0, &adv);
		if (rc == 0 && adv.ended && adv.state == JOB_DEAD &&
		    (queue_store_plan(q, cfg, dead[i], &res, adv.state, now,
		    err, errlen) == -1 || queue_store_app(q, dead[i], &res,
		    adv.state, now, err, errlen) == -1))
			rc = -1;
		job_result_clear(&res);
		job_free(dead[i]);
	}
	free(dead);
	return rc;
}

/*
 * The lease step of a round: renew the leases of the jobs running here,
 * then take over those of any runner whose lease ended.  Each in its own
 * item, so that a failure costs the round nothing else: a lease not
 * renewed now is renewed by the next round, well before it ends.
 * *ntaken: jobs taken over (their runner's attempt ended).
 */
static void
queue_store_lease(struct queue *q, const struct config *cfg, int64_t now,
    int claiming, int *ntaken)
{
	struct job	**dead = NULL;
	char		 err[256];
	size_t		 nrenewed;
	int		 nrequeued, ndead;

	*ntaken = 0;
	if (q->ops->item_begin(q->wr, err, sizeof(err)) == -1)
		goto fail;
	if (q->ops->renew(q->wr, replica_id(), q->leased, q->nleased,
	    now + queue_lease_ms(cfg), &nrenewed, err, sizeof(err)) == -1 ||
	    q->ops->item_end(q->wr, err, sizeof(err)) == -1)
		goto abort;
	/*
	 * Before this round records anything, every job in leased is still
	 * running under this lease unless another runner took it over (this
	 * process was paused or cut off from the store past the lease).
	 */
	if (nrenewed < q->nleased)
		log_warnx("queue: %zu of the %zu jobs running here lost their"
		    " lease to another runner; their outcomes will be dropped",
		    q->nleased - nrenewed, q->nleased);
	/* A draining queue takes no job over: it would not run it. */
	if (!claiming)
		return;
	if (q->ops->item_begin(q->wr, err, sizeof(err)) == -1)
		goto fail;
	if (q->ops->takeover(q->wr, now, now, &nrequeued, &ndead, &dead, err,
	    sizeof(err)) == -1 || queue_store_interrupted(q, cfg, dead, ndead,
	    now, err, sizeof(err)) == -1 || q->ops->item_end(q->wr, err,
	    sizeof(err)) == -1)
		goto abort;
	if (nrequeued > 0 || ndead > 0)
		log_info("queue: %d job(s) taken over after their lease ended,"
		    " %d of them out of attempts", nrequeued + ndead, ndead);
	*ntaken = nrequeued + ndead;
	return;
abort:
	q->ops->item_abort(q->wr);
fail:
	log_warnx("queue: leases: %s", err);
}

/* Record a finished run (the job and any merged into it). */
static int
queue_store_done(struct queue *q, const struct config *cfg,
    struct queue_done *d, char *err, size_t errlen)
{
	size_t	 i, mark = q->nnotes;

	if (q->ops->item_begin(q->wr, err, errlen) == -1)
		return -1;
	if (queue_store_finish(q, cfg, d->job, d->res, 1, d->started_ms,
	    d->ended_ms, err, errlen) == -1)
		goto fail;
	for (i = 0; i < d->job->nmerged; i++)
		if (queue_store_finish(q, cfg, d->job->merged[i], d->res, 0,
		    d->started_ms, d->ended_ms, err, errlen) == -1)
			goto fail;
	if (q->ops->item_end(q->wr, err, errlen) == -1)
		goto fail;
	return 0;
fail:
	q->ops->item_abort(q->wr);
	queue_notes_end(q, mark, 0);
	return -1;
}

/*
 * Store one delivery whole.  A duplicate or a full queue is known before
 * anything of it is written; any other failure leaves part of it in the
 * transaction, so QUEUE_ERROR means the whole round must be rolled back
 * (every delivery of it is then answered 503, as when the commit fails).
 * A savepoint per delivery would confine a failure to its delivery, but
 * it cost more than a tenth of the store thread's time, for errors (disk
 * full, I/O) that fail the commit of the round anyway.
 */
static enum queue_status
queue_store_item(struct queue *q, const struct config *cfg,
    struct queue_sub_item *it, struct queue_outcome *o, int64_t *ids,
    int64_t now)
{
	struct store_event	 ev;
	char			 err[256];
	int			 r, absorbed, added = 0;
	size_t			 k;

	if (cfg->queue.max_queued > 0 &&
	    q->pending + (int64_t)it->njobs > cfg->queue.max_queued)
		return QUEUE_FULL;
	ev.source = it->source;
	ev.delivery = it->delivery;
	ev.kind = it->kind;
	ev.summary = it->summary;
	ev.received_ms = it->received_ms;
	r = q->ops->add_event(q->wr, &ev, &o->event_id, err, sizeof(err));
	if (r == 1)
		return QUEUE_DUPLICATE;
	if (r == -1)
		goto fail;
	for (k = 0; k < it->njobs; k++) {
		if (q->ops->add_job(q->wr, &it->jobs[k], o->event_id,
		    job_max_attempts(cfg, it->jobs[k].kind), now, &ids[k],
		    &absorbed, err, sizeof(err)) == -1)
			goto fail;
		if (!absorbed)
			added++;
	}
	q->pending += added;
	o->job_ids = ids;
	o->njob_ids = it->njobs;
	return QUEUE_OK;
fail:
	log_warnx("queue: cannot store delivery %s of %s: %s (the round is "
	    "rolled back)", it->delivery, it->source, err);
	return QUEUE_ERROR;
}

/*
 * A round's deliveries in one call, for a store that sends them at once
 * (queue_store_item's rules; one that cannot be stored fails alone).
 * The queue bound counts every job of the deliveries before a delivery
 * as added: near the bound it may refuse one that absorption or a
 * duplicate would have let in, never let one too many in.  *added counts
 * the jobs created: a sync absorbed into one already queued makes nothing
 * newly runnable, so a round of those needs no claim (on PostgreSQL a
 * claim is several round trips and a lock all replicas share).  -1: the
 * transaction is lost.
 */
static int
queue_store_deliveries(struct queue *q, const struct config *cfg,
    struct queue_sub *subs, int64_t now, int whole, int *added,
    size_t *nitems)
{
	struct store_delivery	*ds = NULL, *d;
	struct queue_sub	*sub;
	struct queue_sub_item	*it;
	int			*maxa = NULL;
	char			 err[256];
	int64_t			 bound = q->pending, *ids;
	size_t			 i, k, n = 0, nd = 0, na = 0, nj = 0;
	int			 rc = -1;

	for (sub = subs; sub != NULL; sub = sub->next) {
		n += sub->n;
		for (i = 0; i < sub->n; i++)
			nj += sub->items[i].njobs;
	}
	*nitems = n;
	ds = xcalloc(n + 1, sizeof(*ds));
	maxa = xcalloc(nj + 1, sizeof(*maxa));
	for (sub = subs; sub != NULL; sub = sub->next) {
		for (i = 0, k = 0; i < sub->n; i++)
			k += sub->items[i].njobs;
		sub->ids = ids = xcalloc(k + 1, sizeof(int64_t));
		for (i = 0; i < sub->n; ids += sub->items[i].njobs, i++) {
			it = &sub->items[i];
			if (cfg->queue.max_queued > 0 &&
			    bound + (int64_t)it->njobs > cfg->queue.max_queued) {
				sub->outcomes[i].status = QUEUE_FULL;
				continue;
			}
			bound += (int64_t)it->njobs;
			d = &ds[nd++];
			d->ev.source = it->source;
			d->ev.delivery = it->delivery;
			d->ev.kind = it->kind;
			d->ev.summary = it->summary;
			d->ev.received_ms = it->received_ms;
			d->jobs = it->jobs;
			d->njobs = it->njobs;
			d->max_attempts = &maxa[na];
			for (k = 0; k < it->njobs; k++)
				maxa[na++] = job_max_attempts(cfg,
				    it->jobs[k].kind);
			d->job_ids = ids;
		}
	}
	if (nd > 0 && (whole ? q->ops->add_deliveries_commit :
	    q->ops->add_deliveries)(q->wr, ds, nd, now, err,
	    sizeof(err)) == -1) {
		log_warnx("queue: cannot store a round of %zu deliveries: %s"
		    " (the round is rolled back)", nd, err);
		goto out;
	}
	d = ds;
	for (sub = subs; sub != NULL; sub = sub->next)
		for (i = 0; i < sub->n; i++) {
			if (sub->outcomes[i].status == QUEUE_FULL)
				continue;
			if (d->status == 1)
				sub->outcomes[i].status = QUEUE_DUPLICATE;
			else if (d->status == -1) {
				log_warnx("queue: cannot store delivery %s of"
				    " %s: %s", d->ev.delivery, d->ev.source,
				    d->err);
				sub->outcomes[i].status = QUEUE_ERROR;
			} else {
				sub->outcomes[i].status = QUEUE_OK;
				sub->outcomes[i].event_id = d->event_id;
				sub->outcomes[i].job_ids = d->job_ids;
				sub->outcomes[i].njob_ids = d->njobs;
				q->pending += (int64_t)d->added;
				*added += (int)d->added;
			}
			d++;
		}
	rc = 0;
out:
	free(ds);
	free(maxa);
	return rc;
}

static void
queue_store_gauges(struct queue *q)
{
	int64_t		 counts[JOB_STATE_MAX];
	char		 err[256], label[64];
	int		 s;

	if (q->ops->count_states(q->wr, counts, err, sizeof(err)) == -1) {
		log_warnx("queue: %s", err);
		return;
	}
	q->pending = counts[JOB_QUEUED] + counts[JOB_FAILED];
	for (s = JOB_QUEUED; s < JOB_STATE_MAX; s++) {
		if (s == JOB_SUCCEEDED)
			continue;
		snprintf(label, sizeof(label), "state=\"%s\"",
		    job_state_name((enum job_state)s));
		metrics_gauge_set("gitopsd_queue_depth", label,
		    (double)counts[s]);
	}
	metrics_gauge_set("gitopsd_outbox_depth", NULL, (double)counts[0]);
}

/* Housekeeping between rounds: gauges, heartbeat, retention. */
static void
queue_store_housekeeping(struct queue *q, const struct config *cfg)
{
	char		 err[256];
	int64_t		 now = util_mono_ms(), wall, deleted;

	/* Exact counts cost a scan: at most once a second, off the rounds. */
	if (q->gauges_due && now - q->last_gauges_ms >= QUEUE_GAUGES_MS) {
		queue_store_gauges(q);
		q->gauges_due = 0;
		q->last_gauges_ms = now;
	}
	replicas_tick(q->ops, q->wr, cfg);
	/* One replica's retention serves them all (the periodic role). */
	if (replicas_periodic() && (q->last_retention_ms == 0 ||
	    now - q->last_retention_ms >= QUEUE_RETENTION_MS)) {
		q->last_retention_ms = now;
		wall = util_now_ms();
		if (q->ops->retention(q->wr,
		    wall - (int64_t)cfg->state.keep_days * 86400000,
		    wall - (int64_t)cfg->state.dedup_days * 86400000,
		    &deleted, err, sizeof(err)) == -1)
			log_warnx("queue: retention: %s", err);
		else if (deleted > 0)
			log_info("queue: retention removed %" PRId64 " rows",
			    deleted);
	}
}

/* A round's reply to the loop; its admin calls are done. */
static void
queue_store_hand_back(struct queue *q, struct queue_reply *rep,
    struct queue_call *calls)
{
	struct queue_call	*call;

	pthread_mutex_lock(&q->mtx);
	rep->next = NULL;
	*q->replies_tail = rep;
	q->replies_tail = &rep->next;
	for (call = calls; call != NULL; call = call->next)
		call->done = 1;
	if (calls != NULL)
		pthread_cond_broadcast(&q->call_cv);
	pthread_mutex_unlock(&q->mtx);
	event_active(q->wake, EV_READ, 0);
}

/*
 * A store where every statement is a round trip to a server shared with
 * other replicas (add_deliveries: PostgreSQL): what a round may leave
 * out there is worth leaving out.
 */
static int
queue_store_costly(const struct queue *q)
{
	return q->ops->add_deliveries != NULL;
}

/*
 * A claim owed (queue_claim_later) is due: at once when nothing runs
 * here any more, else when the gap has passed.
 */
static int
queue_claim_due_in(const struct queue *q)
{
	int64_t	 left;

	if (q->out_thread == 0 && q->out_loop == 0)
		return 0;
	left = q->last_claim_ms + QUEUE_CLAIM_GAP_MS - util_mono_ms();
	return left > 0 ? (int)left : 0;
}

/*
 * Whether a round's claim waits for the claim gap (QUEUE_CLAIM_GAP_MS):
 * only on a store whose claims are round trips, only while jobs claimed
 * here were running when the round began (a replica with nothing running
 * starts what arrives at once: job start latency), and only until the
 * gap has passed since the last claim.  A claim put off is owed: the
 * store thread wakes for it when the gap ends (queue_store_main), even
 * if no delivery comes.
 */
static int
queue_claim_later(struct queue *q, int busy)
{
	if (!queue_store_costly(q) || !busy || q->last_claim_ms == 0 ||
	    util_mono_ms() - q->last_claim_ms >= QUEUE_CLAIM_GAP_MS)
		return 0;
	q->claim_owed = 1;
	return 1;
}

/* One round: everything that arrived, one transaction, one commit. */
static void
queue_store_round(struct queue *q, struct config *cfg, struct queue_sub *subs,
    struct queue_done *dones, struct queue_call *calls, int kick,
    int claiming, int lease, int resend)
{
	struct queue_call	*call;
	struct queue_reply	*rep;
	struct queue_sub	*sub;
	struct queue_done	*d, *dnext, *retry = NULL, **retry_tail = &retry;
	struct queue_done	*recorded = NULL;
	struct store_claim	 c;
	char			 err[256];
	int64_t			 now = util_now_ms(), *ids;
	int			 ok = 0, claimed = 0, r, added = 0, broken = 0;
	int			 ntaken = 0, busy, want, recorded_any, whole;
	size_t			 i, k, nids, nitems = 0;
	double			 t0 = util_mono_s(), dt;

	rep = xcalloc(1, sizeof(*rep));
	rep->subs = subs;
	/* Before this round records anything: a job that ends now ran. */
	busy = q->out_thread > 0 || q->out_loop > 0;
	/*
	 * Deliveries and nothing else, while jobs run here: in a transaction
	 * of their own, begun and committed in the same exchange
	 * (add_deliveries_commit).  The claim they may call for is owed to
	 * the next round (when the claim gap ends): their 202s do not wait
	 * for it.  A replica with nothing running claims in the round that
	 * stores, as before: what arrives starts at once, and on this
	 * replica rather than on one woken by it.
	 */
	whole = q->ops->add_deliveries_commit != NULL && subs != NULL &&
	    dones == NULL && calls == NULL && !kick && !lease && !resend &&
	    busy;
	if (!whole && q->ops->begin(q->wr, err, sizeof(err)) == -1) {
		log_warnx("queue: begin: %s", err);
		goto done;
	}
	/*
	 * Leases before the attempts they cover are recorded (and end): a
	 * renewal then counts only jobs lost to a takeover.
	 */
	if (lease) {
		queue_store_lease(q, cfg, now, claiming, &ntaken);
		if (ntaken > 0)
			kick = 1;	/* they may run again, here too */
	}
	/* Finished attempts first: they free slots for this round's claim. */
	for (d = dones; d != NULL; d = dnext) {
		dnext = d->next;
		d->next = NULL;
		if (queue_store_done(q, cfg, d, err, sizeof(err)) == -1) {
			/* Once per attempt: a full disk fails every round. */
			if (!d->warned++)
				log_warnx("queue: job %" PRId64 ": cannot "
				    "record: %s (tried again each round)",
				    d->job->id, err);
			*retry_tail = d;
			retry_tail = &d->next;
		} else {
			d->next = recorded;
			recorded = d;
		}
	}
	dones = NULL;
	if (resend && q->ops->item_begin(q->wr, err, sizeof(err)) == -1)
		log_warnx("queue: re-sending open alerts: %s", err);
	else if (resend) {
		if ((r = queue_store_resend(q, cfg, now, err,
		    sizeof(err))) == -1 ||
		    q->ops->item_end(q->wr, err, sizeof(err)) == -1) {
			log_warnx("queue: re-sending open alerts: %s", err);
			q->ops->item_abort(q->wr);
		} else if (r > 0)
			added = 1;
	}
	if (q->ops->add_deliveries != NULL) {
		if (queue_store_deliveries(q, cfg, subs, now, whole, &added,
		    &nitems) == -1)
			broken = 1;
	} else for (sub = subs; sub != NULL; sub = sub->next) {
		for (i = 0, nids = 0; i < sub->n; i++)
			nids += sub->items[i].njobs;
		sub->ids = xcalloc(nids + 1, sizeof(int64_t));
		ids = sub->ids;
		nitems += sub->n;
		for (i = 0; i < sub->n && !broken; i++) {
			sub->outcomes[i].status = queue_store_item(q, cfg,
			    &sub->items[i], &sub->outcomes[i], ids, now);
			if (sub->outcomes[i].status == QUEUE_OK)
				added += (int)sub->items[i].njobs;
			else if (sub->outcomes[i].status == QUEUE_ERROR)
				broken = 1;
			ids += sub->items[i].njobs;
		}
	}
	if (broken) {
		/* Part of a delivery is in the transaction: none of it may
		 * be committed (pending is counted again from the store). */
		snprintf(err, sizeof(err), "a delivery could not be stored");
		goto done;
	}
	for (d = recorded; d != NULL; d = d->next) {
		if (d->job->kind == JOB_NOTIFY)
			q->out_loop--;
		else
			q->out_thread--;
	}
	for (call = calls; call != NULL; call = call->next) {
		if (q->ops->item_begin(q->wr, call->err, sizeof(call->err))
		    == -1) {
			call->rc = -1;
			continue;
		}
		call->rc = call->fn(q, cfg, call->arg, call->err,
		    sizeof(call->err));
		if (call->rc == 0) {
			if (q->ops->item_end(q->wr, call->err,
			    sizeof(call->err)) == -1) {
				q->ops->item_abort(q->wr);
				call->rc = -1;
			}
		} else
			q->ops->item_abort(q->wr);
		kick = 1;	/* what it queued may run now */
	}
	/*
	 * A claim needs a free slot and something new that may be runnable.
	 * Without a slot nothing is owed: the attempt that frees one brings
	 * a round of its own.
	 */
	want = claiming && (recorded != NULL || kick || added ||
	    q->claim_owed);
	if (whole) {
		/*
		 * Committed already: the next round claims, and its commit
		 * carries the wake-up of other replicas for what this one
		 * added (store_pg.c), even with no slot here.
		 */
		if (want || added)
			q->claim_owed = 1;
	} else if (!want || (q->out_thread >= queue_workers(cfg) &&
	    q->out_loop >= QUEUE_MAX_LOOP_JOBS))
		q->claim_owed = 0;
	else if (!queue_claim_later(q, busy)) {
		q->claim_owed = 0;
		q->last_claim_ms = util_mono_ms();
		c.now_ms = now;
		c.owner = replica_id();
		c.lease_until_ms = now + queue_lease_ms(cfg);
		c.max_thread = queue_workers(cfg) - q->out_thread;
		c.max_loop = QUEUE_MAX_LOOP_JOBS - q->out_loop;
		r = q->ops->claim(q->wr, &c, &rep->claimed, &rep->nclaimed,
		    err, sizeof(err));
		if (r == -1)
			log_warnx("queue: claim: %s", err);
		else
			queue_store_inventories(q, rep);
		claimed = 1;
	}
	if (!whole && q->ops->commit(q->wr, err, sizeof(err)) == -1) {
		log_warnx("queue: commit: %s", err);
		goto done;
	}
	ok = 1;
	queue_notes_end(q, 0, 1);
	if (lease)
		q->last_lease_ms = util_mono_ms();
	if (ntaken > 0)
		metrics_counter_add("gitopsd_lease_takeovers_total", "",
		    (double)ntaken);
	dt = util_mono_s() - t0;
	metrics_counter_add("gitopsd_store_commits_total", "", 1);
	metrics_observe("gitopsd_store_commit_seconds", "", dt);
	pthread_mutex_lock(&q->mtx);
	q->stats.commits++;
	q->stats.submissions += nitems;
	if (nitems > q->stats.max_batch)
		q->stats.max_batch = nitems;
	if (dt > q->stats.max_commit_s)
		q->stats.max_commit_s = dt;
	q->stats.sum_commit_s += dt;
	pthread_mutex_unlock(&q->mtx);
done:
	if (!ok) {
		/* A round of deliveries only was rolled back by its call. */
		if (!whole)
			q->ops->rollback(q->wr);
		/* Its claim is undone with it. */
		if (claimed)
			q->claim_owed = 1;
		queue_notes_end(q, 0, 0);
		for (call = calls; call != NULL; call = call->next)
			if (call->rc == 0) {
				call->rc = -1;
				snprintf(call->err, sizeof(call->err),
				    "%s", err);
			}
		/* Nothing of this round is on disk. */
		for (sub = subs; sub != NULL; sub = sub->next)
			for (i = 0; i < sub->n; i++) {
				sub->outcomes[i].status = QUEUE_ERROR;
				sub->outcomes[i].job_ids = NULL;
				sub->outcomes[i].njob_ids = 0;
			}
		for (d = recorded; d != NULL; d = d->next) {
			if (d->job->kind == JOB_NOTIFY)
				q->out_loop++;
			else
				q->out_thread++;
		}
		for (i = 0; i < rep->nclaimed; i++)
			job_free(rep->claimed[i]);
		free(rep->claimed);
		rep->claimed = NULL;
		rep->nclaimed = 0;
		/* Record them again next round. */
		for (d = recorded; d != NULL; d = dnext) {
			dnext = d->next;
			d->next = NULL;
			*retry_tail = d;
			retry_tail = &d->next;
		}
		recorded = NULL;
		if (dones != NULL)
			*retry_tail = dones;
		q->gauges_due = 1;
	} else {
		for (d = recorded; d != NULL; d = d->next)
			queue_leased_end(q, d->job);
		for (i = 0; i < rep->nclaimed; i++) {
			queue_leased_add(q, rep->claimed[i]);
			for (k = 0; k < rep->claimed[i]->nmerged; k++)
				queue_leased_add(q,
				    rep->claimed[i]->merged[k]);
			if (rep->claimed[i]->kind == JOB_NOTIFY)
				q->out_loop++;
			else
				q->out_thread++;
			/* A waiting job was not pending (see DESIGN). */
			for (k = rep->claimed[i]->wait != NULL ? 1 : 0;
			    k < rep->claimed[i]->nmerged + 1; k++)
				q->pending--;
		}
		if (recorded != NULL || claimed || kick || added)
			q->gauges_due = 1;
	}
	recorded_any = recorded != NULL;
	for (d = recorded; d != NULL; d = dnext) {
		dnext = d->next;
		queue_done_free(d);
	}
	/*
	 * An attempt whose own statements fail is retried a few times, then
	 * left running in the store: its lease is no longer renewed, and it
	 * is taken over when the lease ends.  When the
	 * whole round failed (a full disk, an I/O error), nothing was wrong
	 * with the attempt: it waits, without limit, for a round that
	 * commits.  Giving up there would leave the job running in the store
	 * and its app blocked until a restart, long after space returned.
	 */
	q->done_failed = 0;
	for (d = retry; d != NULL; d = dnext) {
		dnext = d->next;
		d->next = NULL;
		if (ok && ++d->tries >= QUEUE_DONE_TRIES) {
			log_warnx("queue: job %" PRId64 ": giving up recording"
			    " its result; it is taken over when its lease ends",
			    d->job->id);
			queue_leased_end(q, d->job);
			if (d->job->kind == JOB_NOTIFY)
				q->out_loop--;
			else
				q->out_thread--;
			queue_done_free(d);
			continue;
		}
		q->done_failed = 1;
		pthread_mutex_lock(&q->mtx);
		d->next = q->dones;
		q->dones = d;
		if (q->dones_tail == &q->dones)
			q->dones_tail = &d->next;
		pthread_mutex_unlock(&q->mtx);
	}
	/*
	 * Only a future retry needs the timer: a due job that is not claimed
	 * waits for a slot or its app, and a finished attempt brings a round.
	 */
	/*
	 * A round that only stored deliveries moved no retry: new jobs are
	 * due now, an absorbed sync keeps its time.  On a costly store it
	 * leaves the timer as it is rather than ask (a round trip before the
	 * round's 202s go out).  Other replicas' retries come as wake-ups
	 * (kick), which ask.
	 */
	if (queue_store_costly(q) && ok && recorded_any == 0 && !claimed &&
	    !kick && calls == NULL && !resend && !lease)
		rep->keep_due = 1;
	else {
		r = q->ops->next_due(q->wr, now, &rep->due_ms, err,
		    sizeof(err));
		rep->has_due = r == 1 && rep->due_ms > now;
	}
	queue_store_hand_back(q, rep, calls);
}

static int
queue_store_avail(const struct queue *q)
{
	return __atomic_load_n(&q->avail, __ATOMIC_ACQUIRE);
}

/*
 * Open the three connections, put back jobs a previous process left
 * running, load the dedup window.  On failure nothing stays open and
 * *transient says whether trying again later can help (see store.h).
 */
/* The store as logs name it: never the PostgreSQL DSN (a secret). */
static const char *
queue_store_name(const struct config *cfg)
{
	return cfg->state.driver == CONFIG_STATE_POSTGRES ? "postgres" :
	    cfg->state.path;
}

/* Start of a store not shared: every running job is taken over. */
static int
queue_store_takeover_all(struct queue *q, const struct config *cfg,
    struct store *wr, char *err, size_t errlen)
{
	struct job	**dead = NULL;
	int64_t		 now = util_now_ms();
	int		 nrequeued, ndead;

	if (q->ops->begin(wr, err, errlen) == -1)
		return -1;
	if (q->ops->takeover(wr, INT64_MAX, now, &nrequeued, &ndead, &dead,
	    err, errlen) == -1 || queue_store_interrupted(q, cfg, dead, ndead,
	    now, err, errlen) == -1 || q->ops->commit(wr, err, errlen) == -1) {
		q->ops->rollback(wr);
		return -1;
	}
	if (nrequeued > 0 || ndead > 0) {
		log_info("queue: %d interrupted job(s) re-queued, %d out of"
		    " attempts", nrequeued, ndead);
		metrics_counter_add("gitopsd_lease_takeovers_total", "",
		    (double)(nrequeued + ndead));
	}
	return 0;
}

static int
queue_store_prepare(struct queue *q, const struct config *cfg,
    int *transient, char *err, size_t errlen)
{
	struct store	*wr = NULL, *rd = NULL;
	const char	*path;

	(void)store_backend(&cfg->state, &path);

	if ((wr = q->ops->open(path, transient, err, errlen)) == NULL ||
	    (rd = q->ops->open(path, transient, err, errlen)) == NULL)
		goto fail;
	/*
	 * A store that is not shared is this process's alone (SQLite: one
	 * process owns the file), so every lease in it is a previous
	 * process's, dead now: expire them all at once and take their jobs
	 * over before anything runs, as before leases (a crash is recovered
	 * at start, not lease_s later).  A shared store's leases may be live
	 * replicas': the rounds take them over when they end.
	 */
	/* The alerts of jobs it ends are written through q->wr. */
	q->wr = wr;
	if (!q->ops->shared && queue_store_takeover_all(q, cfg, wr, err,
	    errlen) == -1) {
		*transient = q->ops->transient(wr);
		goto fail;
	}
	if (q->ops->writer_start(wr, util_now_ms() -
	    (int64_t)cfg->state.dedup_days * 86400000, err, errlen) == -1) {
		*transient = q->ops->transient(wr);
		goto fail;
	}
	/* rd serves the loop: lost, it is made again there (queue_reader). */
	if (q->ops->loop != NULL)
		q->ops->loop(rd);
	q->wr = wr;
	q->rd = rd;
	queue_store_gauges(q);
	__atomic_store_n(&q->avail, 1, __ATOMIC_RELEASE);
	metrics_gauge_set("gitopsd_store_available", NULL, 1);
	return 0;
fail:
	q->wr = NULL;
	q->ops->close(rd);
	q->ops->close(wr);
	return -1;
}

/*
 * gitopsd started without its store (a full or read-only disk): try again
 * once a second; 1 once it is open.
 */
static int
queue_store_reopen(struct queue *q, const struct config *cfg)
{
	char	 err[256];
	int64_t	 now = util_mono_ms();
	int	 transient;

	if (now - q->open_tried_ms < QUEUE_REOPEN_MS)
		return 0;
	q->open_tried_ms = now;
	q->open_tries++;
	if (queue_store_prepare(q, cfg, &transient, err, sizeof(err)) == -1) {
		/* Once a second for hours: a line only when the reason
		 * changes (the first one was logged by queue_open). */
		if (strcmp(err, q->open_err) != 0) {
			log_warnx("queue: state store %s still unavailable: %s",
			    queue_store_name(cfg), err);
			snprintf(q->open_err, sizeof(q->open_err), "%s", err);
		} else
			log_debug("queue: state store still unavailable: %s",
			    err);
		return 0;
	}
	log_info("queue: state store %s open after %u tries: accepting "
	    "webhooks", queue_store_name(cfg), q->open_tries);
	return 1;
}

/*
 * Without a store every submission is refused (503 with Retry-After) and
 * every admin write fails, at once; the loop hears of it as of a round.
 */
static void
queue_store_refuse(struct queue *q, struct queue_sub *subs,
    struct queue_call *calls)
{
	struct queue_reply	*rep;
	struct queue_call	*call;
	struct queue_sub	*sub;
	size_t			 i;

	rep = xcalloc(1, sizeof(*rep));
	rep->subs = subs;
	for (sub = subs; sub != NULL; sub = sub->next)
		for (i = 0; i < sub->n; i++)
			sub->outcomes[i].status = QUEUE_ERROR;
	for (call = calls; call != NULL; call = call->next) {
		call->rc = -1;
		snprintf(call->err, sizeof(call->err),
		    "state store unavailable");
	}
	queue_store_hand_back(q, rep, calls);
}

/*
 * A shared store (PostgreSQL) that lost its connection has webhooks
 * answered 503 round by round, but nothing else said so: /readyz stayed
 * 200 and a load balancer kept sending hooks to a replica that could take
 * none.  After each turn the store thread looks at its connection; while
 * it is lost, a cheap read outside any transaction (next_due) makes the
 * backend reconnect on its own backoff, so readiness comes back without
 * waiting for a webhook.  An embedded store has no connection: its
 * failures (a full disk) are per statement and do not make it unready.
 */
static void
queue_store_link(struct queue *q)
{
	char	 err[256];
	int64_t	 due;
	int	 down, was;

	if (!q->ops->shared)
		return;
	down = q->ops->transient(q->wr);
	was = __atomic_load_n(&q->link_down, __ATOMIC_ACQUIRE);
	if (down && was && q->ops->next_due(q->wr, util_now_ms(), &due, err,
	    sizeof(err)) != -1)
		down = 0;
	if (down == was)
		return;
	__atomic_store_n(&q->link_down, down, __ATOMIC_RELEASE);
	metrics_gauge_set("gitopsd_store_available", NULL, !down);
	if (down)
		log_warnx("queue: state store connection lost: /readyz is not"
		    " ready and webhooks get 503 until it is back");
	else {
		log_info("queue: state store connection back: ready");
		queue_kick(q);
	}
}

static void *
queue_store_main(void *arg)
{
	struct queue		*q = arg;
	struct queue_sub	*subs;
	struct queue_done	*dones;
	struct queue_call	*calls;
	struct config		*cfg;
	struct timespec		 ts;
	int64_t			 every, wait_ms, resend_every, owed;
	int			 kick, claiming, stop, lease, resend;

	pthread_mutex_lock(&q->mtx);
	for (;;) {
		/* A second at most, and a third of the lease (renewals). */
		every = queue_lease_ms(q->cfg) / 3;
		wait_ms = every < 1000 ? every : 1000;
		if (q->claim_owed) {
			owed = q->claiming ? queue_claim_due_in(q) : 0;
			wait_ms = owed < wait_ms ? owed : wait_ms;
		}
		while (q->subs == NULL && (q->dones == NULL || q->done_failed) &&
		    q->calls == NULL && !q->kick && !q->stop) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += wait_ms / 1000;
			ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			if (pthread_cond_timedwait(&q->cv, &q->mtx, &ts) ==
			    ETIMEDOUT)
				break;
		}
		subs = q->subs;
		q->subs = NULL;
		q->subs_tail = &q->subs;
		dones = q->dones;
		q->dones = NULL;
		q->dones_tail = &q->dones;
		calls = q->calls;
		q->calls = NULL;
		q->calls_tail = &q->calls;
		kick = q->kick;
		q->kick = 0;
		claiming = q->claiming;
		stop = q->stop;
		cfg = config_ref(q->cfg);
		pthread_mutex_unlock(&q->mtx);

		/* Nothing was claimed yet, so there are no dones. */
		if (!queue_store_avail(q) && queue_store_reopen(q, cfg))
			kick = 1;
		if (!queue_store_avail(q)) {
			if (subs != NULL || calls != NULL)
				queue_store_refuse(q, subs, calls);
			config_unref(cfg);
			pthread_mutex_lock(&q->mtx);
			if (stop && q->subs == NULL && q->calls == NULL)
				break;
			continue;
		}
		/* Renewals go on while draining (its jobs still run). */
		lease = (claiming || q->nleased > 0) &&
		    util_mono_ms() - q->last_lease_ms >=
		    queue_lease_ms(cfg) / 3;
		/*
		 * Open alerts re-sent (alertmanager): periodic work, every
		 * shortest resend interval, and at once on taking the role
		 * (a restart) so the alerts' endsAt is renewed in time.
		 */
		resend_every = notify_resend_every_ms(cfg);
		resend = claiming && resend_every > 0 && replicas_periodic() &&
		    (q->last_resend_ms == 0 ||
		    util_mono_ms() - q->last_resend_ms >= resend_every);
		if (resend)
			q->last_resend_ms = util_mono_ms();
		/* A claim put off by the claim gap, now due. */
		if (q->claim_owed && (!claiming || queue_claim_due_in(q) == 0))
			kick = 1;
		if (subs != NULL || dones != NULL || calls != NULL || kick ||
		    lease || resend)
			queue_store_round(q, cfg, subs, dones, calls, kick,
			    claiming, lease, resend);
		if (q->ops->upkeep != NULL)
			q->ops->upkeep(q->wr);
		queue_store_housekeeping(q, cfg);
		queue_store_link(q);
		config_unref(cfg);

		pthread_mutex_lock(&q->mtx);
		if (stop && q->subs == NULL && q->calls == NULL &&
		    (q->dones == NULL || q->done_failed))
			break;
	}
	pthread_mutex_unlock(&q->mtx);
	return NULL;
}

static void
queue_kick(struct queue *q)
{
	pthread_mutex_lock(&q->mtx);
	q->kick = 1;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mtx);
}

/* A finished attempt goes to the store thread to be recorded. */
static void
queue_finished(struct queue *q, struct job *job, struct job_result *res,
    int64_t started_ms, int64_t ended_ms)
{
	struct queue_done	*d;

	d = xcalloc(1, sizeof(*d));
	d->job = job;
	d->res = res;
	d->started_ms = started_ms;
	d->ended_ms = ended_ms;
	pthread_mutex_lock(&q->mtx);
	*q->dones_tail = d;
	q->dones_tail = &d->next;
	q->done_failed = 0;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mtx);
}

static void
queue_worker_done_cb(struct job *job, struct job_result *res,
    int64_t started_ms, int64_t ended_ms, void *arg)
{
	queue_finished(arg, job, res, started_ms, ended_ms);
}

/*
 * Loop runners (notify) report back here.  Runs in flight are listed so
 * that queue_close() can orphan them: a runner finishing after the queue is
 * gone only frees its job (it stays `running` in the store until its
 * lease ends: taken over).
 */
struct queue_loop_run {
	struct queue		*q;		/* NULL: orphaned by close */
	int64_t			 started_ms;
	struct queue_loop_run	*prev, *next;
};

static void
queue_loop_done_cb(struct job *job, struct job_result *res, void *arg)
{
	struct queue_loop_run	*run = arg;
	struct queue		*q = run->q;
	struct job_result	*copy;

	if (q == NULL) {
		job_free(job);
		free(run);
		return;
	}
	if (run->prev != NULL)
		run->prev->next = run->next;
	else
		q->loop_runs = run->next;
	if (run->next != NULL)
		run->next->prev = run->prev;
	/* The runner keeps its result struct; its contents move here. */
	copy = xcalloc(1, sizeof(*copy));
	*copy = *res;
	memset(res, 0, sizeof(*res));
	queue_finished(q, job, copy, run->started_ms, util_now_ms());
	free(run);
}

static void
queue_dispatch(struct queue *q, struct config *cfg, struct job *job)
{
	const struct job_runner	*runner = q->find(job->kind);
	struct job_result	*res;
	struct queue_loop_run	*run;
	int64_t			 now = util_now_ms();

	log_debug("job %" PRId64 " %s app=%s delivery=%s: running", job->id,
	    job_kind_name(job->kind), job->app != NULL ? job->app : "-",
	    job->delivery != NULL ? job->delivery : "-");
	if (runner != NULL && runner->start != NULL) {
		run = xcalloc(1, sizeof(*run));
		run->q = q;
		run->started_ms = now;
		run->next = q->loop_runs;
		if (q->loop_runs != NULL)
			q->loop_runs->prev = run;
		q->loop_runs = run;
		runner->start(cfg, q->base, job, queue_loop_done_cb, run);
		return;
	}
	if (runner != NULL && runner->run != NULL && q->pool != NULL) {
		worker_pool_submit(q->pool, cfg, runner, job);
		return;
	}
	res = xcalloc(1, sizeof(*res));
	job_result_fail(res, JOB_ERR_INTERNAL, 1, "no runner for kind %s",
	    job_kind_name(job->kind));
	queue_finished(q, job, res, now, now);
}

/* Another replica queued or freed work: try to claim it. */
static void
queue_wakeup_cb(void *arg)
{
	queue_kick(arg);
}

static void
queue_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	queue_kick(arg);
}

static void
queue_arm_timer(struct queue *q, int64_t due_ms)
{
	struct timeval	 tv;
	int64_t		 d = due_ms - util_now_ms();

	if (d < 0)
		d = 0;
	/* A retry due now still waits a little: no busy loop on the store. */
	if (d < 10)
		d = 10;
	tv.tv_sec = (time_t)(d / 1000);
	tv.tv_usec = (suseconds_t)((d % 1000) * 1000);
	event_add(q->timer, &tv);
}

/* The loop side of a round: callbacks, dispatch, the retry timer. */
static void
queue_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct queue		*q = arg;
	struct queue_reply	*list, *rep, *next;
	struct queue_sub	*sub;
	struct config		*cfg;
	size_t			 i;
	int			 events = 0;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&q->mtx);
	list = q->replies;
	q->replies = NULL;
	q->replies_tail = &q->replies;
	cfg = config_ref(q->cfg);
	pthread_mutex_unlock(&q->mtx);

	for (rep = list; rep != NULL; rep = next) {
		next = rep->next;
		for (sub = rep->subs; sub != NULL; sub = sub->next) {
			sub->cb(sub->outcomes, sub->n, sub->arg);
			events = 1;
		}
		for (i = 0; i < rep->nclaimed; i++) {
			queue_dispatch(q, cfg, rep->claimed[i]);
			rep->claimed[i] = NULL;
		}
		rep->nclaimed = 0;
		if (rep->next == NULL) {
			/* The newest round knows the next retry. */
			if (!q->started || q->draining)
				event_del(q->timer);
			else if (rep->has_due)
				queue_arm_timer(q, rep->due_ms);
			else if (!rep->keep_due)
				event_del(q->timer);
		}
		queue_reply_free(rep);
	}
	config_unref(cfg);
	/* After the callbacks: what the watchers read is committed. */
	for (i = 0; list != NULL && i < q->nwatch; i++)
		q->watch[i].cb(events, q->watch[i].arg);
}

int
queue_watch(struct queue *q, queue_watch_cb *cb, void *arg)
{
	if (q->nwatch == QUEUE_MAX_WATCHERS)
		return -1;
	q->watch[q->nwatch].cb = cb;
	q->watch[q->nwatch].arg = arg;
	q->nwatch++;
	return 0;
}

struct queue *
queue_open(struct event_base *base, struct config *cfg, char *err,
    size_t errlen)
{
	struct queue	*q;
	const char	*target;
	int		 transient, e;

	q = xcalloc(1, sizeof(*q));
	q->base = base;
	q->find = job_runner_find;
	q->ops = store_backend(&cfg->state, &target);
	pthread_mutex_init(&q->mtx, NULL);
	pthread_cond_init(&q->cv, NULL);
	q->subs_tail = &q->subs;
	q->dones_tail = &q->dones;
	q->replies_tail = &q->replies;
	q->calls_tail = &q->calls;
	pthread_cond_init(&q->call_cv, NULL);
	q->cfg = config_ref(cfg);

	metrics_describe("gitopsd_jobs_total", "counter",
	    "Job attempts by kind and resulting state.");
	metrics_describe("gitopsd_outbox_depth", "gauge",
	    "Alerts not yet delivered (notify jobs queued, running or "
	    "waiting for a retry).");
	metrics_describe("gitopsd_queue_depth", "gauge",
	    "Jobs in the store by state.");
	metrics_describe("gitopsd_workers_busy", "gauge",
	    "Worker threads running a job attempt now.");
	metrics_describe("gitopsd_oldest_running_job_seconds", "gauge",
	    "Age of the oldest job attempt still running (0: none).");
	metrics_describe("gitopsd_git_operations_overdue", "gauge",
	    "Git network operations still running past their deadline "
	    "(git.timeout_s) and its grace period: stuck workers.");
	metrics_gauge_set("gitopsd_workers_busy", NULL, 0);
	metrics_gauge_set("gitopsd_oldest_running_job_seconds", NULL, 0);
	metrics_gauge_set("gitopsd_git_operations_overdue", NULL, 0);
	metrics_describe("gitopsd_job_duration_seconds", "histogram",
	    "Duration of job attempts by kind.");
	metrics_describe("gitopsd_event_to_deploy_seconds", "histogram",
	    "From receiving an event to its sync succeeding.");
	metrics_describe("gitopsd_store_commits_total", "counter",
	    "Durable commits of the state store (one per group of requests).");
	metrics_describe("gitopsd_store_commit_seconds", "histogram",
	    "Time of one store round, begin to durable commit.");
	metrics_describe("gitopsd_lease_takeovers_total", "counter",
	    "Running jobs taken over after their runner's lease ended (a"
	    " crashed or stopped replica; at start for SQLite).");
	metrics_counter_add("gitopsd_lease_takeovers_total", "", 0);
	metrics_describe("gitopsd_store_available", "gauge",
	    "1 while the state store is open; 0 while gitopsd runs without"
	    " it (started on a full or read-only disk) or while a shared"
	    " store's connection is lost.");
	job_runners_init();

	/*
	 * A store that cannot be written now (a full or read-only disk, even
	 * a database file that cannot be created yet) may be writable in a
	 * minute: exiting would have systemd restart gitopsd in a loop while
	 * senders get connection refused.  gitopsd starts without it instead,
	 * answers webhooks 503 with Retry-After and /readyz 503, and the
	 * store thread opens it as soon as it can (queue_store_reopen).  A
	 * corrupt file, a missing directory or a permission is a mistake a
	 * restart will not fix: those still stop the start.
	 */
	if (queue_store_prepare(q, cfg, &transient, err, errlen) == -1) {
		if (!transient)
			goto fail;
		log_warnx("state store %s: %s; starting without it: webhooks "
		    "get 503 and /readyz is not ready until it can be written "
		    "(tried every %d s)", queue_store_name(cfg), err,
		    QUEUE_REOPEN_MS / 1000);
		metrics_gauge_set("gitopsd_store_available", NULL, 0);
		snprintf(q->open_err, sizeof(q->open_err), "%s", err);
		q->open_tried_ms = util_mono_ms();
		q->open_tries = 1;
	}
	if (queue_store_avail(q) && replicas_claim_id(q->ops, q->wr, cfg, err,
	    errlen) == -1)
		goto fail;
	if ((q->wake = event_new(base, -1, 0, queue_wake_cb, q)) == NULL ||
	    (q->timer = evtimer_new(base, queue_timer_cb, q)) == NULL) {
		snprintf(err, errlen, "queue: cannot create events");
		goto fail;
	}
	if (q->ops->listen != NULL && (q->wakeup = wakeup_open(base, q->ops,
	    target, queue_wakeup_cb, q)) == NULL) {
		snprintf(err, errlen, "queue: cannot create events");
		goto fail;
	}
	if ((e = pthread_create(&q->thread, NULL, queue_store_main, q)) != 0) {
		snprintf(err, errlen, "queue: store thread: %s", strerror(e));
		goto fail;
	}
	q->thread_started = 1;
	return q;
fail:
	wakeup_close(q->wakeup);
	if (q->wake != NULL)
		event_free(q->wake);
	if (q->timer != NULL)
		event_free(q->timer);
	if (q->rd != NULL)
		q->ops->close(q->rd);
	if (q->wr != NULL)
		q->ops->close(q->wr);
	config_unref(q->cfg);
	pthread_cond_destroy(&q->call_cv);
	pthread_cond_destroy(&q->cv);
	pthread_mutex_destroy(&q->mtx);
	free(q);
	return NULL;
}

/* Gauges read when /metrics is scraped (metrics_set_collector). */
static void
queue_metrics_collect(void *arg)
{
	struct queue	*q = arg;
	int64_t		 oldest = 0;
	int		 busy = 0;

	if (q->pool != NULL)
		busy = worker_pool_running(q->pool, &oldest);
	metrics_gauge_set("gitopsd_workers_busy", NULL, busy);
	metrics_gauge_set("gitopsd_oldest_running_job_seconds", NULL,
	    (double)oldest / 1000.0);
	metrics_gauge_set("gitopsd_git_operations_overdue", NULL,
	    gitnet_overdue());
}

int
queue_start(struct queue *q)
{
	char	 err[256];
	int	 n;

	if (q->started)
		return 0;
	n = queue_workers(q->cfg);
	if ((q->pool = worker_pool_new(q->base, n, queue_worker_done_cb, q,
	    err, sizeof(err))) == NULL) {
		log_warnx("queue: %s", err);
		return -1;
	}
	q->started = 1;
	metrics_set_collector(queue_metrics_collect, q);
	pthread_mutex_lock(&q->mtx);
	q->claiming = 1;
	q->kick = 1;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mtx);
	return 0;
}

void
queue_drain(struct queue *q)
{
	q->draining = 1;
	event_del(q->timer);
	pthread_mutex_lock(&q->mtx);
	q->claiming = 0;
	pthread_mutex_unlock(&q->mtx);
}

/*
 * Not ready while draining, without the store or its connection, or while
 * a worker is stuck in a Git operation beyond its deadline (the deadline
 * could not end it).
 */
int
queue_ready(const struct queue *q)
{
	return q != NULL && !q->draining && queue_store_avail(q) &&
	    !__atomic_load_n(&q->link_down, __ATOMIC_ACQUIRE) &&
	    gitnet_overdue() == 0;
}

void
queue_reconfigure(struct queue *q, struct config *cfg)
{
	struct config	*old;

	pthread_mutex_lock(&q->mtx);
	old = q->cfg;
	q->cfg = config_ref(cfg);
	q->kick = 1;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mtx);
	config_unref(old);
}

void
queue_close(struct queue *q, int timeout_s)
{
	struct queue_reply	*rep, *next;
	struct queue_loop_run	*run;

	if (q == NULL)
		return;
	queue_drain(q);
	wakeup_close(q->wakeup);
	q->wakeup = NULL;
	wakeup_dial_cancel(q->rd_dial);
	q->rd_dial = NULL;
	metrics_set_collector(NULL, NULL);
	for (run = q->loop_runs; run != NULL; run = run->next)
		run->q = NULL;
	q->loop_runs = NULL;
	/* Finished attempts are recorded; unfinished ones stay running. */
	if (q->pool != NULL && worker_pool_stop(q->pool, timeout_s) > 0)
		log_warnx("queue: jobs still running are taken over when"
		    " their lease ends (with SQLite, at the next start)");
	q->pool = NULL;
	pthread_mutex_lock(&q->mtx);
	q->stop = 1;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mtx);
	if (q->thread_started)
		pthread_join(q->thread, NULL);
	/* Replies nobody will read: claimed jobs stay running (taken over). */
	for (rep = q->replies; rep != NULL; rep = next) {
		next = rep->next;
		queue_reply_free(rep);
	}
	while (q->dones != NULL) {
		struct queue_done *d = q->dones;

		q->dones = d->next;
		queue_done_free(d);
	}
	free(q->leased);
	event_free(q->wake);
	event_free(q->timer);
	if (q->wr != NULL)
		replicas_leave(q->ops, q->wr);
	q->ops->close(q->rd);
	q->ops->close(q->wr);
	if (q->stats.commits > 0)
		log_info("queue: %" PRIu64 " commits for %" PRIu64 " deliveries"
		    " (largest batch %" PRIu64 "); a round took %.2f ms on"
		    " average, %.2f ms at most", q->stats.commits,
		    q->stats.submissions, q->stats.max_batch,
		    q->stats.sum_commit_s * 1000 / (double)q->stats.commits,
		    q->stats.max_commit_s * 1000);
	free(q->notes);
	config_unref(q->cfg);
	pthread_cond_destroy(&q->call_cv);
	pthread_cond_destroy(&q->cv);
	pthread_mutex_destroy(&q->mtx);
	free(q);
}

static const char *
queue_event_kind(const struct hook_event *ev)
{
	if (ev == NULL)
		return "api";
	return ev->kind == HOOK_EVENT_IMAGE ? "image" : "push";
}

void
queue_submit(struct queue *q, const struct queue_item *items, size_t n,
    queue_submit_cb *cb, void *arg)
{
	struct queue_sub	*sub;
	struct queue_sub_item	*it;
	int64_t			 now = util_now_ms();
	size_t			 i, k;

	sub = xcalloc(1, sizeof(*sub));
	sub->n = n;
	sub->items = xcalloc(n + 1, sizeof(*sub->items));
	sub->outcomes = xcalloc(n + 1, sizeof(*sub->outcomes));
	sub->cb = cb;
	sub->arg = arg;
	for (i = 0; i < n; i++) {
		it = &sub->items[i];
		it->source = xstrdup(items[i].source != NULL ?
		    items[i].source : "");
		it->delivery = xstrdup(items[i].event != NULL &&
		    items[i].event->delivery != NULL ?
		    items[i].event->delivery : "");
		it->kind = xstrdup(queue_event_kind(items[i].event));
		it->summary = items[i].event != NULL &&
		    items[i].event->summary != NULL ?
		    xstrdup(items[i].event->summary) : NULL;
		it->received_ms = now;
		it->njobs = items[i].njobs;
		it->jobs = xcalloc(it->njobs + 1, sizeof(*it->jobs));
		for (k = 0; k < it->njobs; k++)
			queue_spec_copy(&it->jobs[k], &items[i].jobs[k]);
	}
	pthread_mutex_lock(&q->mtx);
	*q->subs_tail = sub;
	q->subs_tail = &sub->next;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mtx);
}

/* Run fn on the store thread in its next round; wait for the commit. */
static int
queue_call(struct queue *q, int (*fn)(struct queue *, const struct config *,
    void *, char *, size_t), void *arg, char *err, size_t errlen)
{
	struct queue_call	 call;

	memset(&call, 0, sizeof(call));
	call.fn = fn;
	call.arg = arg;
	call.rc = -1;
	snprintf(call.err, sizeof(call.err), "store unavailable");
	pthread_mutex_lock(&q->mtx);
	*q->calls_tail = &call;
	/*
	 * call lives on this stack until done: the store thread unlinks the
	 * whole list (and resets calls_tail) before it sets done.
	 */
	/* cppcheck-suppress autoVariables */
	q->calls_tail = &call.next;
	pthread_cond_signal(&q->cv);
	while (!call.done)
		pthread_cond_wait(&q->call_cv, &q->mtx);
	pthread_mutex_unlock(&q->mtx);
	if (call.rc == -1 && err != NULL)
		snprintf(err, errlen, "%s", call.err);
	return call.rc;
}

struct queue_add_arg {
	const struct job_spec	*specs;
	size_t			 n;
	int64_t			*ids;
};

static int
queue_add_jobs_fn(struct queue *q, const struct config *cfg, void *arg,
    char *err, size_t errlen)
{
	struct queue_add_arg	*a = arg;
	int64_t			 now = util_now_ms();
	int			 absorbed;
	size_t			 i;

	for (i = 0; i < a->n; i++) {
		if (q->ops->add_job(q->wr, &a->specs[i], 0,
		    job_max_attempts(cfg, a->specs[i].kind), now, &a->ids[i],
		    &absorbed, err, errlen) == -1)
			return -1;
		if (!absorbed)
			q->pending++;
	}
	return 0;
}

int
queue_add_jobs(struct queue *q, const struct job_spec *specs, size_t n,
    int64_t *ids, char *err, size_t errlen)
{
	/* ids is written, not read (cppcheck's ctuuninitvar is wrong). */
	/* cppcheck-suppress ctuuninitvar */
	struct queue_add_arg	 a = { specs, n, ids };

	return queue_call(q, queue_add_jobs_fn, &a, err, errlen);
}

static int
queue_plan_fn(struct queue *q, const struct config *cfg, void *arg,
    char *err, size_t errlen)
{
	return queue_store_items(q, cfg, arg, util_now_ms(), NULL, err,
	    errlen);
}

void
queue_sync_started(const struct config *cfg, const struct job *job,
    const char *revision, void *arg)
{
	struct queue		*q = arg;
	struct notify_plan	 plan;
	char			 err[256];

	notify_plan_started(cfg, job, revision, &plan);
	/* In the outbox before the sync goes on: a restart still sends it. */
	if (plan.n > 0 && queue_call(q, queue_plan_fn, &plan, err,
	    sizeof(err)) == -1)
		log_warnx("job %" PRId64 ": cannot queue its sync.started "
		    "alerts: %s", job->id, err);
	notify_plan_free(&plan);
}

struct queue_retry_arg {
	int64_t	 id;
	int	 status;	/* retry_job's answer */
};

static int
queue_retry_fn(struct queue *q, const struct config *cfg, void *arg,
    char *err, size_t errlen)
{
	struct queue_retry_arg	*a = arg;

	(void)cfg;
	a->status = q->ops->retry_job(q->wr, a->id, util_now_ms(), err,
	    errlen);
	if (a->status == 0)
		q->pending++;
	/* Refusals (409/404) change nothing and are not errors. */
	return a->status == -1 ? -1 : 0;
}

int
queue_retry(struct queue *q, int64_t id, char *err, size_t errlen)
{
	struct queue_retry_arg	 a = { id, -1 };
	int			 rc;

	rc = queue_call(q, queue_retry_fn, &a, err, errlen);
	if (rc == 0)
		rc = a.status;
	if (rc == 0) {
		log_info("job %" PRId64 ": re-queued by the admin API", id);
		queue_kick(q);
	}
	return rc;
}

#define QUEUE_RD_RETRY_MS	100
#define QUEUE_RD_RETRY_MAX_MS	5000

static void
queue_rd_made_cb(void *arg, int rc, const char *err)
{
	struct queue	*q = arg;

	q->rd_dial = NULL;
	if (rc == 0) {
		if (q->rd_lost)
			log_info("admin: state store connection back");
		q->rd_lost = 0;
		q->rd_backoff_ms = 0;
		return;
	}
	if (!q->rd_lost)
		log_warnx("admin: state store: %s; reads answer 503 until it"
		    " is back", err);
	q->rd_lost = 1;
	q->rd_backoff_ms = q->rd_backoff_ms == 0 ? QUEUE_RD_RETRY_MS :
	    q->rd_backoff_ms * 2;
	if (q->rd_backoff_ms > QUEUE_RD_RETRY_MAX_MS)
		q->rd_backoff_ms = QUEUE_RD_RETRY_MAX_MS;
	q->rd_retry_ms = util_mono_ms() + q->rd_backoff_ms;
}

/*
 * The loop's read connection, lost, is made again on the loop without
 * blocking it (a reconnect inside the call would hold every hook and
 * probe for the whole connect); meanwhile reads fail at once.  1 while
 * it is usable.
 */
static int
queue_rd_up(struct queue *q)
{
	char	 err[256] = "cannot create events";

	if (q->ops->connect_poll == NULL || !q->ops->transient(q->rd))
		return 1;
	if (q->rd_dial != NULL || util_mono_ms() < q->rd_retry_ms)
		return 0;
	if (q->ops->reconnect_start(q->rd, err, sizeof(err)) == -1 ||
	    (q->rd_dial = wakeup_dial(q->base, q->ops, q->rd,
	    queue_rd_made_cb, q)) == NULL)
		queue_rd_made_cb(q, -1, err);
	return 0;
}

const struct store_ops *
queue_reader(struct queue *q, struct store **rd)
{
	if (!queue_store_avail(q)) {
		*rd = NULL;
		return NULL;
	}
	(void)queue_rd_up(q);
	*rd = q->rd;
	return q->ops;
}

int
queue_reader_up(struct queue *q)
{
	return queue_store_avail(q) && queue_rd_up(q);
}

const struct config *
queue_config(const struct queue *q)
{
	return q->cfg;
}
