/*
 * worker.c: the thread pool that runs blocking jobs (libgit2, Kubernetes).
 *
 * DESIGN
 * - Threads: N workers block on one condition variable for the work list.
 *   The loop thread submits; the workers never touch the event base except
 *   through event_active() on the pool's wake-up event (libevent is set up
 *   with evthread_use_pthreads()).
 * - Ownership: a submitted item (job, config reference, result) belongs to
 *   the pool until its done callback runs on the loop; the callee then owns
 *   the job and the result.  The config reference is dropped on the loop.
 * - Ordering: finished items go onto one completion list; one wake-up may
 *   cover many, and the loop swaps the whole list out under the lock.
 */
#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "job.h"
#include "log.h"
#include "util.h"
#include "worker.h"

struct worker_item {
	struct job		*job;
	struct job_result	*res;
	const struct job_runner	*runner;
	struct config		*cfg;
	int64_t			 started_ms, ended_ms;
	int64_t			 started_mono;	/* for the running gauges */
	struct worker_item	*next;
	struct worker_item	*run_next;	/* on the running list */
};

struct worker_pool {
	pthread_mutex_t		 mtx;
	pthread_cond_t		 work_cv;	/* work queued or stopping */
	pthread_cond_t		 idle_cv;	/* a job finished */
	struct worker_item	*work, **work_tail;
	struct worker_item	*done, **done_tail;
	struct worker_item	*running;	/* inside a runner now */
	int			 busy;		/* queued + running */
	int			 stopping;
	pthread_t		*threads;
	int			 nthreads;
	struct event		*wake;
	worker_done_cb		*cb;
	void			*arg;
};

static void *
worker_main(void *arg)
{
	struct worker_pool	*p = arg;
	struct worker_item	*it, **pp;

	pthread_mutex_lock(&p->mtx);
	for (;;) {
		while (p->work == NULL && !p->stopping)
			pthread_cond_wait(&p->work_cv, &p->mtx);
		if (p->stopping)
			break;
		it = p->work;
		p->work = it->next;
		if (p->work == NULL)
			p->work_tail = &p->work;
		it->started_mono = util_mono_ms();
		it->run_next = p->running;
		p->running = it;
		pthread_mutex_unlock(&p->mtx);

		it->started_ms = util_now_ms();
		it->runner->run(it->cfg, it->job, it->res);
		it->ended_ms = util_now_ms();

		pthread_mutex_lock(&p->mtx);
		for (pp = &p->running; *pp != NULL; pp = &(*pp)->run_next)
			if (*pp == it) {
				*pp = it->run_next;
				break;
			}
		it->next = NULL;
		*p->done_tail = it;
		p->done_tail = &it->next;
		pthread_cond_broadcast(&p->idle_cv);
		if (!p->stopping)
			event_active(p->wake, EV_READ, 0);
	}
	pthread_mutex_unlock(&p->mtx);
	return NULL;
}

/* Hand every finished item to the callback; runs on the loop thread. */
static void
worker_deliver(struct worker_pool *p)
{
	struct worker_item	*list, *it, *next;

	pthread_mutex_lock(&p->mtx);
	list = p->done;
	p->done = NULL;
	p->done_tail = &p->done;
	pthread_mutex_unlock(&p->mtx);

	for (it = list; it != NULL; it = next) {
		next = it->next;
		config_unref(it->cfg);
		pthread_mutex_lock(&p->mtx);
		p->busy--;
		pthread_mutex_unlock(&p->mtx);
		p->cb(it->job, it->res, it->started_ms, it->ended_ms, p->arg);
		free(it);
	}
}

static void
worker_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	worker_deliver(arg);
}

struct worker_pool *
worker_pool_new(struct event_base *base, int nthreads, worker_done_cb *cb,
    void *arg, char *err, size_t errlen)
{
	struct worker_pool	*p;
	int			 i, e;

	if (nthreads < 1)
		nthreads = 1;
	p = xcalloc(1, sizeof(*p));
	pthread_mutex_init(&p->mtx, NULL);
	pthread_cond_init(&p->work_cv, NULL);
	pthread_cond_init(&p->idle_cv, NULL);
	p->work_tail = &p->work;
	p->done_tail = &p->done;
	p->cb = cb;
	p->arg = arg;
	if ((p->wake = event_new(base, -1, 0, worker_wake_cb, p)) == NULL) {
		snprintf(err, errlen, "worker wake-up event");
		goto fail;
	}
	p->threads = xcalloc((size_t)nthreads, sizeof(*p->threads));
	for (i = 0; i < nthreads; i++) {
		if ((e = pthread_create(&p->threads[i], NULL, worker_main,
		    p)) != 0) {
			snprintf(err, errlen, "worker thread: %s", strerror(e));
			/* Stop the ones already started. */
			pthread_mutex_lock(&p->mtx);
			p->stopping = 1;
			pthread_cond_broadcast(&p->work_cv);
			pthread_mutex_unlock(&p->mtx);
			while (i-- > 0)
				pthread_join(p->threads[i], NULL);
			goto fail;
		}
		p->nthreads++;
	}
	return p;
fail:
	if (p->wake != NULL)
		event_free(p->wake);
	free(p->threads);
	pthread_cond_destroy(&p->work_cv);
	pthread_cond_destroy(&p->idle_cv);
	pthread_mutex_destroy(&p->mtx);
	free(p);
	return NULL;
}

void
worker_pool_submit(struct worker_pool *p, struct config *cfg,
    const struct job_runner *runner, struct job *job)
{
	struct worker_item	*it;

	it = xcalloc(1, sizeof(*it));
	it->job = job;
	it->res = xcalloc(1, sizeof(*it->res));
	it->runner = runner;
	it->cfg = config_ref(cfg);
	pthread_mutex_lock(&p->mtx);
	*p->work_tail = it;
	p->work_tail = &it->next;
	p->busy++;
	pthread_cond_signal(&p->work_cv);
	pthread_mutex_unlock(&p->mtx);
}

int
worker_pool_size(const struct worker_pool *p)
{
	return p->nthreads;
}

int
worker_pool_running(struct worker_pool *p, int64_t *oldest_ms)
{
	struct worker_item	*it;
	int64_t			 now = util_mono_ms();
	int			 n = 0;

	*oldest_ms = 0;
	pthread_mutex_lock(&p->mtx);
	for (it = p->running; it != NULL; it = it->run_next) {
		n++;
		if (now - it->started_mono > *oldest_ms)
			*oldest_ms = now - it->started_mono;
	}
	pthread_mutex_unlock(&p->mtx);
	return n;
}

int
worker_pool_stop(struct worker_pool *p, int timeout_s)
{
	struct timespec	 ts;
	struct worker_item *unstarted, *it, *next;
	int		 i, left, finished;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_s > 0 ? timeout_s : 0;

	pthread_mutex_lock(&p->mtx);
	/* Let queued work start and running work end, until the deadline. */
	for (;;) {
		finished = 0;
		for (it = p->done; it != NULL; it = it->next)
			finished++;
		if (p->busy - finished <= 0)
			break;
		if (pthread_cond_timedwait(&p->idle_cv, &p->mtx, &ts) ==
		    ETIMEDOUT)
			break;
	}
	p->stopping = 1;
	pthread_cond_broadcast(&p->work_cv);
	/* Jobs not started stay `running` in the store: taken over later. */
	unstarted = p->work;
	p->work = NULL;
	p->work_tail = &p->work;
	pthread_mutex_unlock(&p->mtx);
	for (it = unstarted; it != NULL; it = next) {
		next = it->next;
		config_unref(it->cfg);
		job_free(it->job);
		job_result_clear(it->res);
		free(it->res);
		free(it);
		pthread_mutex_lock(&p->mtx);
		p->busy--;
		pthread_mutex_unlock(&p->mtx);
	}

	event_del(p->wake);
	worker_deliver(p);

	pthread_mutex_lock(&p->mtx);
	left = p->busy;
	pthread_mutex_unlock(&p->mtx);
	if (left > 0) {
		/*
		 * Threads still inside a runner cannot be joined in time; they
		 * keep the pool, which is therefore not freed.  Their jobs stay
		 * running in the store and are taken over when their lease
		 * ends.
		 */
		for (i = 0; i < p->nthreads; i++)
			pthread_detach(p->threads[i]);
		log_warnx("worker: %d job(s) still running at shutdown", left);
		return left;
	}
	for (i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	event_free(p->wake);
	free(p->threads);
	pthread_cond_destroy(&p->work_cv);
	pthread_cond_destroy(&p->idle_cv);
	pthread_mutex_destroy(&p->mtx);
	free(p);
	return 0;
}
