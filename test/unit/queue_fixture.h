/*
 * queue_fixture.h: a real queue on a temporary SQLite file, a libevent
 * base driven by the test, and job runners whose behaviour each test picks
 * through the app name.  Shared by test_store.c and test_queue.c.
 */
#ifndef QUEUE_FIXTURE_H
#define QUEUE_FIXTURE_H

#include <sys/stat.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "config.h"
#include "handler.h"
#include "job.h"
#include "queue.h"
#include "store.h"
#include "util.h"

#define QFX_UNUSED __attribute__((unused))

/*
 * Until daemon/config.c is linked in, the tests count references here; the
 * fixture's config is never freed through them (refs start high).
 */
__attribute__((weak)) struct config *
config_ref(struct config *c)
{
	__atomic_add_fetch(&c->refs, 1, __ATOMIC_SEQ_CST);
	return c;
}

__attribute__((weak)) void
config_unref(struct config *c)
{
	if (c != NULL)
		__atomic_sub_fetch(&c->refs, 1, __ATOMIC_SEQ_CST);
}

struct qfx {
	char			 dir[64];
	char			 path[128];
	struct config		 cfg;
	struct config_app	 apps[4];
	struct config_repo	 repos[2];
	struct config_image	 images[2];
	struct event_base	*base;
	struct queue		*q;
};

/* What the test runners did, guarded by qfx_mtx. */
static pthread_mutex_t	 qfx_mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	 qfx_cv = PTHREAD_COND_INITIALIZER;
static int		 qfx_runs;
static int		 qfx_flaky_fails;	/* "flaky" fails this many times */
static int		 qfx_blocked;		/* "block" jobs waiting */
static int		 qfx_release;		/* let "block" jobs finish */
static int		 qfx_running_now, qfx_running_max;
static int		 qfx_on_main_thread;	/* a run() on the loop thread */
static pthread_t	 qfx_main_thread;
static size_t		 qfx_last_merged, qfx_max_merged;
static int		 qfx_image_runs;

/*
 * The runner for sync and update-image: behaviour by app name.
 * ok: succeeds (sync: revision + health; update-image: a follow-up sync)
 * fail: transient failure, perm: permanent failure, flaky: fails
 * qfx_flaky_fails times then succeeds, block: waits for qfx_release.
 */
static void
qfx_run(const struct config *cfg, struct job *j, struct job_result *res)
{
	struct job_spec	 f;
	int		 fail = 0;

	(void)cfg;
	pthread_mutex_lock(&qfx_mtx);
	qfx_runs++;
	if (pthread_equal(pthread_self(), qfx_main_thread))
		qfx_on_main_thread = 1;
	qfx_running_now++;
	if (qfx_running_now > qfx_running_max)
		qfx_running_max = qfx_running_now;
	qfx_last_merged = j->nmerged;
	if (j->nmerged > qfx_max_merged)
		qfx_max_merged = j->nmerged;
	if (j->kind == JOB_UPDATE_IMAGE)
		qfx_image_runs++;
	if (strcmp(j->app, "block") == 0) {
		qfx_blocked++;
		pthread_cond_broadcast(&qfx_cv);
		while (!qfx_release)
			pthread_cond_wait(&qfx_cv, &qfx_mtx);
		qfx_blocked--;
	}
	if (strcmp(j->app, "flaky") == 0 && qfx_flaky_fails > 0) {
		qfx_flaky_fails--;
		fail = 1;
	}
	pthread_mutex_unlock(&qfx_mtx);
	usleep(2000);	/* long enough for overlapping runs to show */

	if (strcmp(j->app, "fail") == 0 || fail)
		job_result_fail(res, JOB_ERR_UNREACHABLE, 0, "cluster down");
	else if (strcmp(j->app, "perm") == 0)
		job_result_fail(res, JOB_ERR_MANIFEST, 1, "bad manifest");
	else {
		res->ok = 1;
		if (j->kind == JOB_SYNC) {
			res->revision = xstrdup(j->revision != NULL ?
			    j->revision : "headrev");
			res->detail = xstrdup("{\"health\": \"Healthy\"}");
		} else if (j->kind == JOB_UPDATE_IMAGE) {
			res->commit = xstrdup("c0ffee");
			memset(&f, 0, sizeof(f));
			f.kind = JOB_SYNC;
			f.app = j->app;
			f.repo = j->repo;
			f.revision = "c0ffee";
			job_result_add_followup(res, &f);
		}
	}
	pthread_mutex_lock(&qfx_mtx);
	qfx_running_now--;
	pthread_mutex_unlock(&qfx_mtx);
}

static const struct job_runner qfx_thread_runner_sync = {
	.kind = JOB_SYNC, .run = qfx_run,
};
static const struct job_runner qfx_thread_runner_image = {
	.kind = JOB_UPDATE_IMAGE, .run = qfx_run,
};

static const struct job_runner *
qfx_find(enum job_kind kind)
{
	if (kind == JOB_SYNC)
		return &qfx_thread_runner_sync;
	if (kind == JOB_UPDATE_IMAGE)
		return &qfx_thread_runner_image;
	return NULL;
}

static QFX_UNUSED void
qfx_reset_runners(void)
{
	pthread_mutex_lock(&qfx_mtx);
	qfx_runs = qfx_flaky_fails = qfx_blocked = qfx_release = 0;
	qfx_running_now = qfx_running_max = qfx_on_main_thread = 0;
	qfx_last_merged = qfx_max_merged = 0;
	qfx_image_runs = 0;
	qfx_main_thread = pthread_self();
	pthread_mutex_unlock(&qfx_mtx);
}

static QFX_UNUSED void
qfx_config(struct qfx *fx)
{
	static const char *const names[] = { "ok", "fail", "perm", "flaky" };
	struct config	*c = &fx->cfg;
	size_t		 i;

	memset(c, 0, sizeof(*c));
	c->refs = 1000000;
	c->state.path = fx->path;
	c->state.dedup_days = 7;
	c->state.keep_days = 30;
	c->queue.max_queued = 100000;
	c->queue.workers = 4;
	c->retry.base_s = 1;
	c->retry.max_s = 1;
	c->retry.max_attempts = 3;
	c->notify.max_attempts = 10;
	c->notify.repeat_after_s = 3600;
	fx->repos[0].name = "deploy";
	fx->repos[0].branch = "main";
	fx->repos[1].name = "other";
	fx->repos[1].branch = "main";
	c->repos = fx->repos;
	c->nrepos = 2;
	fx->images[0].repository = "registry.acme.io/acme/web";
	for (i = 0; i < nitems(names); i++) {
		fx->apps[i].name = (char *)names[i];
		fx->apps[i].repo = "deploy";
		fx->apps[i].path = "apps";
		fx->apps[i].cluster = "prod";
		fx->apps[i].namespace = "web";
	}
	fx->apps[0].images = fx->images;
	fx->apps[0].nimages = 1;
	c->apps = fx->apps;
	c->napps = nitems(names);
}

static QFX_UNUSED void
qfx_setup(struct qfx *fx)
{
	static int	 once;

	if (!once) {
		evthread_use_pthreads();
		signal(SIGPIPE, SIG_IGN);
		once = 1;
	}
	memset(fx, 0, sizeof(*fx));
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/gitopsd-queue-XXXXXX");
	if (mkdtemp(fx->dir) == NULL)
		abort();
	snprintf(fx->path, sizeof(fx->path), "%s/state.db", fx->dir);
	qfx_config(fx);
	fx->base = event_base_new();
	qfx_reset_runners();
}

static QFX_UNUSED struct queue *
qfx_open(struct qfx *fx, int start)
{
	char	 err[256];

	fx->q = queue_open(fx->base, &fx->cfg, err, sizeof(err));
	if (fx->q == NULL) {
		fprintf(stderr, "queue_open: %s\n", err);
		abort();
	}
	queue_set_runner_find(fx->q, qfx_find);
	if (start && queue_start(fx->q) == -1)
		abort();
	return fx->q;
}

static QFX_UNUSED void
qfx_close(struct qfx *fx)
{
	if (fx->q != NULL)
		queue_close(fx->q, 5);
	fx->q = NULL;
}

static QFX_UNUSED void
qfx_teardown(struct qfx *fx)
{
	qfx_close(fx);
	event_base_free(fx->base);
	util_rmtree(fx->dir);
}

static void
qfx_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

/* Run the loop until pred(arg) holds; 0, or -1 after timeout_ms. */
static QFX_UNUSED int
qfx_loop_until(struct qfx *fx, int (*pred)(void *), void *arg, int timeout_ms)
{
	struct event	*tick;
	struct timeval	 tv = { 0, 5000 };
	int64_t		 end = util_mono_ms() + timeout_ms;
	int		 rc = -1;

	tick = event_new(fx->base, -1, EV_PERSIST, qfx_tick_cb, NULL);
	event_add(tick, &tv);
	while (util_mono_ms() < end) {
		if (pred(arg)) {
			rc = 0;
			break;
		}
		event_base_loop(fx->base, EVLOOP_ONCE);
	}
	event_free(tick);
	return rc;
}

/* The outcome of one queue_submit call, copied in the callback. */
struct qfx_sub {
	int			 called;
	size_t			 n;
	enum queue_status	 status[8];
	int64_t			 event_id[8];
	int64_t			 ids[8][4];
	size_t			 nids[8];
	/* Checked in the callback: the event is visible to another reader. */
	const char		*check_path;
	int			 visible;
};

static void
qfx_sub_cb(const struct queue_outcome *out, size_t n, void *arg)
{
	struct qfx_sub		*s = arg;
	struct store		*st;
	struct store_event_row	*rows = NULL;
	size_t			 i, k, nrows = 0;
	int64_t			 next;
	char			 err[256];

	s->called++;
	s->n = n;
	for (i = 0; i < n && i < 8; i++) {
		s->status[i] = out[i].status;
		s->event_id[i] = out[i].event_id;
		s->nids[i] = out[i].njob_ids;
		for (k = 0; k < out[i].njob_ids && k < 4; k++)
			s->ids[i][k] = out[i].job_ids[k];
	}
	if (s->check_path != NULL && n > 0 && out[0].status == QUEUE_OK) {
		/* A separate connection sees only committed data. */
		st = store_sqlite_ops.open(s->check_path, NULL, err, sizeof(err));
		if (st != NULL && store_sqlite_ops.list_events(st,
		    out[0].event_id + 1, 1, &rows, &nrows, &next, err,
		    sizeof(err)) == 0 && nrows == 1 &&
		    rows[0].id == out[0].event_id)
			s->visible = 1;
		store_event_rows_free(rows, nrows);
		if (st != NULL)
			store_sqlite_ops.close(st);
	}
}

static QFX_UNUSED int
qfx_sub_done(void *arg)
{
	return ((struct qfx_sub *)arg)->called > 0;
}

/* Submit one delivery with jobs for the given apps (sync jobs). */
static QFX_UNUSED void
qfx_submit(struct qfx *fx, const char *source, const char *delivery,
    const struct job_spec *jobs, size_t njobs, struct qfx_sub *out)
{
	struct hook_event	 ev;
	struct queue_item	 it;

	memset(&ev, 0, sizeof(ev));
	ev.kind = HOOK_EVENT_PUSH;
	ev.delivery = (char *)delivery;
	ev.summary = (char *)"push to main";
	it.source = source;
	it.event = &ev;
	it.jobs = jobs;
	it.njobs = njobs;
	queue_submit(fx->q, &it, 1, qfx_sub_cb, out);
}

static QFX_UNUSED struct job_spec
qfx_sync(const char *app, const char *rev)
{
	struct job_spec	 s;

	memset(&s, 0, sizeof(s));
	s.kind = JOB_SYNC;
	s.app = app;
	s.repo = "deploy";
	s.revision = rev;
	return s;
}

static QFX_UNUSED struct job_spec
qfx_image(const char *app, const char *repo, const char *tag)
{
	struct job_spec	 s;

	memset(&s, 0, sizeof(s));
	s.kind = JOB_UPDATE_IMAGE;
	s.app = app;
	s.repo = repo;
	s.image = "registry.acme.io/acme/web";
	s.tag = tag;
	return s;
}

/* Read a job through the admin path of a second store connection. */
static QFX_UNUSED int
qfx_job(struct qfx *fx, int64_t id, struct store_job_row *r)
{
	struct store	*st;
	char		 err[256];
	int		 rc;

	st = store_sqlite_ops.open(fx->path, NULL, err, sizeof(err));
	if (st == NULL)
		return -1;
	rc = store_sqlite_ops.get_job(st, id, r, err, sizeof(err));
	store_sqlite_ops.close(st);
	return rc;
}

#endif
