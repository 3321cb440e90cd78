/*
 * queue.h: the durable job queue as the rest of the daemon sees it.
 *
 * The queue lives on the event loop.  queue_submit() hands it accepted
 * deliveries; it group-commits them to the state store (include/store.h)
 * and calls back on the loop only after the commit is durable, so the HTTP
 * server answers 202 only for what is on disk.  The queue also feeds the
 * worker pool (daemon/worker.c) and runs the retry timer.
 */
#ifndef GITOPSD_QUEUE_H
#define GITOPSD_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "job.h"

struct event_base;
struct config;
struct hook_event;
struct job_spec;
struct buf;
struct store;
struct store_ops;

struct queue;

/* One accepted event and the jobs it makes.  Borrowed for the call only. */
struct queue_item {
	const char		*source;
	const struct hook_event	*event;
	const struct job_spec	*jobs;
	size_t			 njobs;
};

enum queue_status {
	QUEUE_OK = 0,		/* stored; job_ids set */
	QUEUE_DUPLICATE,	/* (source, delivery) seen before; nothing added */
	QUEUE_FULL,		/* over queue.max_queued; nothing added (503) */
	QUEUE_ERROR,		/* store failed (disk full...); nothing added (503) */
};

struct queue_outcome {
	enum queue_status	 status;
	int64_t			 event_id;
	const int64_t		*job_ids;
	size_t			 njob_ids;
};

/* Called on the loop once the items are durable (or refused); outcomes[i]
 * belongs to items[i].  The arrays are valid only during the call. */
typedef void queue_submit_cb(const struct queue_outcome *, size_t n, void *arg);

/* Opens the store at cfg->state.path, re-queues jobs left running. */
struct queue	*queue_open(struct event_base *, struct config *cfg,
		    char *err, size_t errlen);
/* Stops taking work, waits up to timeout_s for running jobs, closes. */
void		 queue_close(struct queue *, int timeout_s);
/* Swap the configuration (SIGHUP); queued jobs are kept. */
void		 queue_reconfigure(struct queue *, struct config *cfg);
/* Start the workers (after listeners are up). */
int		 queue_start(struct queue *);
/* Stop claiming new jobs (drain); readyz turns 503. */
void		 queue_drain(struct queue *);
int		 queue_ready(const struct queue *);

void		 queue_submit(struct queue *, const struct queue_item *,
		    size_t n, queue_submit_cb *, void *arg);

/* Create jobs that belong to no webhook (POST /apps/<name>/sync, drift). */
int		 queue_add_jobs(struct queue *, const struct job_spec *, size_t,
		    int64_t *ids, char *err, size_t errlen);

/*
 * A job_sync_started_fn (arg: the queue): the sync.started alerts
 * (notify_plan_started) into the outbox, waiting for the store's commit.
 */
void		 queue_sync_started(const struct config *, const struct job *,
		    const char *revision, void *arg);

/*
 * Put a failed or dead job back in the queue with a fresh set of attempts
 * (in the store thread's next round).  0 done, 1 the job is not failed or
 * dead, 2 no such job, -1 store error with err.
 */
int		 queue_retry(struct queue *, int64_t id, char *err,
		    size_t errlen);

/*
 * Read access for the admin API, on the loop thread only: the store's
 * functions and its read-only connection (*rd), or NULL while the store
 * is not open (gitopsd started on a full or read-only disk); and the
 * running configuration (replaced on reload, so not kept across calls).
 */
const struct store_ops *queue_reader(struct queue *, struct store **rd);
/*
 * Whether rd is usable now.  A lost connection of a shared store is made
 * again in the background (never blocking the loop); until then calls on
 * rd fail at once and this is 0.
 */
int		 queue_reader_up(struct queue *);
const struct config *queue_config(const struct queue *);

/*
 * Called on the loop after each batch of store rounds has committed (jobs
 * claimed or finished, deliveries stored, admin writes): what the store
 * reads then may have changed.  new_events: a round answered deliveries
 * (stored as events unless refused or duplicates).
 * Watchers stay until queue_close(); -1 when there are too many.
 */
typedef void queue_watch_cb(int new_events, void *arg);
int		 queue_watch(struct queue *, queue_watch_cb *, void *arg);

/*
 * Next retry delay in ms after `attempts` failed attempts: exponential
 * backoff with full jitter, uniform in [0, min(max_s, base_s * 2^(n-1))],
 * never below retry_after_s (a receiver's Retry-After) capped at max_s.
 */
int64_t		 queue_backoff_ms(int base_s, int max_s, int attempts,
		    int retry_after_s);

/* Counters of the store thread, for tests, benchmarks and the docs. */
struct queue_stats {
	uint64_t	 commits;	/* rounds committed */
	uint64_t	 submissions;	/* queue_submit items stored or refused */
	uint64_t	 max_batch;	/* most items in one commit */
	double		 max_commit_s;	/* longest round (begin..commit) */
	double		 sum_commit_s;
};
void		 queue_stats(struct queue *, struct queue_stats *);

/* Tests: pick the job runners (default job_runner_find). */
typedef const struct job_runner *queue_runner_find_fn(enum job_kind);
void		 queue_set_runner_find(struct queue *, queue_runner_find_fn *);

#endif
