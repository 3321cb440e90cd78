/*
 * worker.h: the worker thread pool (daemon/worker.c).
 *
 * The queue hands claimed sync and update-image jobs to the pool; a thread
 * runs runner->run() with a referenced config snapshot and hands the job
 * and its result back to the event loop through one wake-up.
 */
#ifndef GITOPSD_WORKER_H
#define GITOPSD_WORKER_H

#include <stdint.h>

struct event_base;
struct config;
struct job;
struct job_result;
struct job_runner;

struct worker_pool;

/*
 * Called on the loop for each finished job.  The callee owns job (job_free)
 * and res (job_result_clear, then free).  started_ms/ended_ms: wall clock.
 */
typedef void worker_done_cb(struct job *, struct job_result *res,
    int64_t started_ms, int64_t ended_ms, void *arg);

struct worker_pool	*worker_pool_new(struct event_base *, int nthreads,
			    worker_done_cb *, void *arg, char *err, size_t errlen);
/* Queue a job; the pool owns it (and a reference on cfg) until done. */
void			 worker_pool_submit(struct worker_pool *,
			    struct config *cfg, const struct job_runner *,
			    struct job *);
int			 worker_pool_size(const struct worker_pool *);
/* Workers inside a job now; *oldest_ms: the longest such attempt so far. */
int			 worker_pool_running(struct worker_pool *,
			    int64_t *oldest_ms);
/*
 * Stop: wait up to timeout_s for queued and running jobs, deliver the
 * finished ones through the done callback (on the calling thread), join
 * the threads and free the pool.  Returns how many jobs were still running
 * (their threads are left to finish detached; the jobs stay `running` in
 * the store and are taken over when their lease ends).
 */
int			 worker_pool_stop(struct worker_pool *, int timeout_s);

#endif
