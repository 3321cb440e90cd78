/*
 * Unit tests for daemon/queue.c and daemon/worker.c with a libevent base:
 * group commit (many submissions, few commits), callbacks only after the
 * commit is visible to another connection, worker threads off the loop,
 * one job per app at a time, notify jobs started on the loop, draining.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "admin.h"
#include "queue_fixture.h"

#define NSUBS	400

struct test_many {
	struct qfx_sub	 subs[NSUBS];
	char		 ids[NSUBS][16];
};

static int
test_all_called(void *arg)
{
	struct test_many	*m = arg;
	int			 i;

	for (i = 0; i < NSUBS; i++)
		if (!m->subs[i].called)
			return 0;
	return 1;
}

static void
test_group_commit(void **state)
{
	struct qfx		 fx;
	struct test_many	*m;
	struct queue_stats	 st;
	struct job_spec		 js = qfx_sync("ok", "r");
	int			 i, visible = 0;

	(void)state;
	qfx_setup(&fx);
	qfx_open(&fx, 0);
	m = xcalloc(1, sizeof(*m));
	/* Submissions arrive while earlier commits run. */
	for (i = 0; i < NSUBS; i++) {
		snprintf(m->ids[i], sizeof(m->ids[i]), "gc-%d", i);
		m->subs[i].check_path = fx.path;
		qfx_submit(&fx, "github", m->ids[i], &js, 1, &m->subs[i]);
		if (i % 50 == 49)
			event_base_loop(fx.base, EVLOOP_NONBLOCK);
	}
	assert_int_equal(qfx_loop_until(&fx, test_all_called, m, 10000), 0);
	for (i = 0; i < NSUBS; i++) {
		assert_int_equal(m->subs[i].called, 1);
		assert_int_equal(m->subs[i].status[0], QUEUE_OK);
		visible += m->subs[i].visible;
	}
	/* Every callback saw its own event committed. */
	assert_int_equal(visible, NSUBS);
	/* All sync jobs of one app were absorbed into one queued job. */
	for (i = 1; i < NSUBS; i++)
		assert_int_equal(m->subs[i].ids[0][0], m->subs[0].ids[0][0]);
	queue_stats(fx.q, &st);
	assert_int_equal(st.submissions, NSUBS);
	/* Group commit: far fewer commits than requests. */
	print_message("group commit: %llu submissions in %llu commits, "
	    "largest batch %llu, longest round %.2f ms\n",
	    (unsigned long long)st.submissions,
	    (unsigned long long)st.commits, (unsigned long long)st.max_batch,
	    st.max_commit_s * 1000);
	assert_true(st.commits < NSUBS / 4);
	assert_true(st.max_batch > 1);
	free(m);
	qfx_teardown(&fx);
}

static void
test_callback_only_after_commit(void **state)
{
	struct qfx		 fx;
	struct qfx_sub		 s;
	struct job_spec		 js = qfx_sync("ok", "r");

	(void)state;
	qfx_setup(&fx);
	qfx_open(&fx, 0);
	memset(&s, 0, sizeof(s));
	s.check_path = fx.path;
	qfx_submit(&fx, "github", "one", &js, 1, &s);
	/* Never synchronously from queue_submit. */
	assert_int_equal(s.called, 0);
	assert_int_equal(qfx_loop_until(&fx, qfx_sub_done, &s, 5000), 0);
	assert_int_equal(s.called, 1);
	assert_int_equal(s.visible, 1);
	qfx_teardown(&fx);
}

static int
test_blocked_n(void *arg)
{
	int	 n;

	pthread_mutex_lock(&qfx_mtx);
	n = qfx_blocked;
	pthread_mutex_unlock(&qfx_mtx);
	return n >= *(int *)arg;
}

static int
test_runs_n(void *arg)
{
	int	 n;

	pthread_mutex_lock(&qfx_mtx);
	n = qfx_runs;
	pthread_mutex_unlock(&qfx_mtx);
	return n >= *(int *)arg;
}

struct test_wait {
	struct qfx	*fx;
	int64_t		 id;
};

static int
test_succeeded(void *arg)
{
	struct test_wait	*w = arg;
	struct store_job_row	 r;
	int			 ok;

	if (qfx_job(w->fx, w->id, &r) != 1)
		return 0;
	ok = r.state == JOB_SUCCEEDED;
	store_job_row_clear(&r);
	return ok;
}

static void
test_workers_one_per_app(void **state)
{
	struct qfx		 fx;
	struct qfx_sub		 s[6];
	struct job_spec		 blk = qfx_sync("block", "r"),
				 ok[4] = { qfx_sync("ok", "1"),
				     qfx_sync("fail", "2"), qfx_sync("perm", "3"),
				     qfx_sync("flaky", "4") },
				 blk_img = qfx_image("block", "deploy", "9");
	struct test_wait	 w;
	char			 d[16];
	int			 want, i;

	(void)state;
	qfx_setup(&fx);
	fx.cfg.queue.workers = 2;
	qfx_open(&fx, 1);
	memset(s, 0, sizeof(s));
	qfx_submit(&fx, "github", "w-0", &blk, 1, &s[0]);
	want = 1;
	assert_int_equal(qfx_loop_until(&fx, test_blocked_n, &want, 5000), 0);
	/* Another job for the busy app waits, even with a free worker. */
	qfx_submit(&fx, "github", "w-1", &blk_img, 1, &s[1]);
	for (i = 0; i < 4; i++) {
		snprintf(d, sizeof(d), "w-%d", i + 2);
		qfx_submit(&fx, "github", d, &ok[i], 1, &s[i + 2]);
	}
	/* The four other apps run on the one remaining worker. */
	want = 5;
	assert_int_equal(qfx_loop_until(&fx, test_runs_n, &want, 5000), 0);
	pthread_mutex_lock(&qfx_mtx);
	assert_int_equal(qfx_blocked, 1);
	assert_true(qfx_running_max <= 2);
	qfx_release = 1;
	pthread_cond_broadcast(&qfx_cv);
	pthread_mutex_unlock(&qfx_mtx);
	/* Then the blocked app's image job runs. */
	w.fx = &fx;
	w.id = s[1].ids[0][0];
	assert_int_equal(qfx_loop_until(&fx, test_succeeded, &w, 5000), 0);
	assert_false(qfx_on_main_thread);
	qfx_teardown(&fx);
}

/* A loop runner for notify jobs: finishes from a timer, later. */
struct test_notify_run {
	struct job	*job;
	job_done_cb	*done;
	void		*arg;
	struct event	*ev;
};

static int	 test_notify_started, test_notify_on_loop;

static void
test_notify_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct test_notify_run	*r = arg;
	struct job_result	 res;

	(void)fd;
	(void)what;
	memset(&res, 0, sizeof(res));
	res.ok = 1;
	res.detail = xstrdup("{\"sent\": true}");
	event_free(r->ev);
	r->done(r->job, &res, r->arg);
	job_result_clear(&res);
	free(r);
}

static void
test_notify_start(const struct config *cfg, struct event_base *base,
    struct job *j, job_done_cb *done, void *arg)
{
	struct test_notify_run	*r = xcalloc(1, sizeof(*r));
	struct timeval		 tv = { 0, 20000 };

	(void)cfg;
	test_notify_started++;
	if (pthread_equal(pthread_self(), qfx_main_thread))
		test_notify_on_loop++;
	r->job = j;
	r->done = done;
	r->arg = arg;
	r->ev = evtimer_new(base, test_notify_timer_cb, r);
	evtimer_add(r->ev, &tv);
}

static const struct job_runner test_notify_runner = {
	.kind = JOB_NOTIFY, .start = test_notify_start,
};

static const struct job_runner *
test_find_with_notify(enum job_kind kind)
{
	if (kind == JOB_NOTIFY)
		return &test_notify_runner;
	return qfx_find(kind);
}

static void
test_notify_runs_on_loop(void **state)
{
	struct qfx		 fx;
	struct job_spec		 n = { .kind = JOB_NOTIFY, .app = "ok",
	    .params = "{\"notifier\": \"ops\"}" };
	struct test_wait	 w;
	struct store_job_row	 r;
	int64_t			 id;
	char			 err[256];

	(void)state;
	qfx_setup(&fx);
	test_notify_started = test_notify_on_loop = 0;
	qfx_open(&fx, 0);
	queue_set_runner_find(fx.q, test_find_with_notify);
	assert_int_equal(queue_start(fx.q), 0);
	assert_int_equal(queue_add_jobs(fx.q, &n, 1, &id, err, sizeof(err)), 0);
	w.fx = &fx;
	w.id = id;
	assert_int_equal(qfx_loop_until(&fx, test_succeeded, &w, 5000), 0);
	assert_int_equal(test_notify_started, 1);
	assert_int_equal(test_notify_on_loop, 1);
	assert_int_equal(qfx_job(&fx, id, &r), 1);
	assert_int_equal(r.max_attempts, 10);	/* notify.max_attempts */
	assert_non_null(strstr(r.result, "\"sent\":true"));
	store_job_row_clear(&r);
	qfx_teardown(&fx);
}

static void
test_drain_stops_claims(void **state)
{
	struct qfx		 fx;
	struct qfx_sub		 s;
	struct job_spec		 js = qfx_sync("ok", "r");
	struct store_job_row	 r;
	int			 i;

	(void)state;
	qfx_setup(&fx);
	qfx_open(&fx, 1);
	assert_true(queue_ready(fx.q));
	queue_drain(fx.q);
	assert_false(queue_ready(fx.q));
	memset(&s, 0, sizeof(s));
	/* Still durable while draining, but nothing new starts. */
	qfx_submit(&fx, "github", "dr-1", &js, 1, &s);
	assert_int_equal(qfx_loop_until(&fx, qfx_sub_done, &s, 5000), 0);
	assert_int_equal(s.status[0], QUEUE_OK);
	for (i = 0; i < 20; i++) {
		event_base_loop(fx.base, EVLOOP_NONBLOCK);
		usleep(5000);
	}
	assert_int_equal(qfx_job(&fx, s.ids[0][0], &r), 1);
	assert_int_equal(r.state, JOB_QUEUED);
	store_job_row_clear(&r);
	assert_int_equal(qfx_runs, 0);
	qfx_teardown(&fx);
}

static int
test_count_jobs(struct qfx *fx, enum job_kind kind)
{
	struct store		*st;
	struct store_job_row	*rows = NULL;
	struct store_job_filter	 f;
	size_t			 n = 0;
	int64_t			 next;
	char			 err[256];

	memset(&f, 0, sizeof(f));
	f.kind = (int)kind;
	f.limit = 100;
	st = store_sqlite_ops.open(fx->path, NULL, err, sizeof(err));
	assert_non_null(st);
	assert_int_equal(store_sqlite_ops.list_jobs(st, &f, &rows, &n, &next,
	    err, sizeof(err)), 0);
	store_job_rows_free(rows, n);
	store_sqlite_ops.close(st);
	return (int)n;
}

struct test_dead {
	struct qfx	*fx;
	int64_t		 id;
	int		 attempts;
};

static int
test_dead_after(void *arg)
{
	struct test_dead	*d = arg;
	struct store_job_row	 r;
	int			 ok;

	if (qfx_job(d->fx, d->id, &r) != 1)
		return 0;
	ok = r.state == JOB_DEAD && r.attempts == d->attempts;
	store_job_row_clear(&r);
	return ok;
}

/*
 * A manual retry of a job out of attempts gets retry.max_attempts more
 * (docs/queue.md), not one: finishing compares with the stored limit.
 */
static void
test_retry_fresh_attempts(void **state)
{
	struct qfx		 fx;
	struct qfx_sub		 s;
	struct job_spec		 js = qfx_sync("fail", "r");
	struct test_dead	 d;
	struct buf		 b;
	char			 path[64];

	(void)state;
	qfx_setup(&fx);
	qfx_open(&fx, 1);
	memset(&s, 0, sizeof(s));
	qfx_submit(&fx, "github", "fresh-1", &js, 1, &s);
	assert_int_equal(qfx_loop_until(&fx, qfx_sub_done, &s, 5000), 0);
	d = (struct test_dead){ &fx, s.ids[0][0], 3 };
	assert_int_equal(qfx_loop_until(&fx, test_dead_after, &d, 10000), 0);

	snprintf(path, sizeof(path), "/api/v1/jobs/%lld/retry",
	    (long long)d.id);
	buf_init(&b, 0);
	assert_int_equal(admin_api(fx.q, NULL, "POST", path, NULL, &b), 200);
	buf_free(&b);
	/* Three more attempts, not one: dead again after six in all. */
	d.attempts = 6;
	assert_int_equal(qfx_loop_until(&fx, test_dead_after, &d, 10000), 0);
	assert_int_equal(qfx_runs, 6);
	qfx_teardown(&fx);
}

/*
 * A runner whose syncs roll out for two looks: the first run applies
 * (wait NULL), hands back an inventory naming its revision and leaves a
 * wait state; each claim of the waiting job must come with that state and
 * only looks.  Events are numbered in order; the inventory the second
 * apply was given is kept.
 */
static int	 test_wt_seq;
static int	 test_wt_applies, test_wt_looks;
static int	 test_wt_healthy_at, test_wt_second_apply_at;
static char	*test_wt_second_inventory;

#define TEST_WT_INVENTORY(rev) \
	"{\"objects\":[{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\"," \
	"\"name\":\"" rev "\"}]}"

static void
test_wt_run(const struct config *cfg, struct job *j, struct job_result *res)
{
	cJSON	*w;
	int	 left;

	(void)cfg;
	pthread_mutex_lock(&qfx_mtx);
	test_wt_seq++;
	if (j->wait == NULL) {
		if (++test_wt_applies == 2) {
			test_wt_second_apply_at = test_wt_seq;
			free(test_wt_second_inventory);
			test_wt_second_inventory = j->inventory != NULL ?
			    xstrdup(j->inventory) : NULL;
		}
		pthread_mutex_unlock(&qfx_mtx);
		res->inventory = xasprintf("{\"objects\":[{\"apiVersion\":"
		    "\"v1\",\"kind\":\"ConfigMap\",\"name\":\"%s\"}]}",
		    j->revision);
		res->wait = xstrdup("{\"left\": 2}");
		res->wait_ms = 20;
		res->revision = xstrdup(j->revision);
		res->detail = xstrdup("{\"health\": \"Progressing\"}");
		return;
	}
	test_wt_looks++;
	w = cJSON_Parse(j->wait);
	left = cJSON_GetObjectItem(w, "left")->valueint - 1;
	cJSON_Delete(w);
	if (left == 0 && test_wt_healthy_at == 0)
		test_wt_healthy_at = test_wt_seq;	/* the first job's */
	pthread_mutex_unlock(&qfx_mtx);
	res->revision = xstrdup(j->revision);
	if (left > 0) {
		res->wait = xasprintf("{\"left\": %d}", left);
		res->wait_ms = 20;
		res->detail = xstrdup("{\"health\": \"Progressing\"}");
		return;
	}
	res->ok = 1;
	res->detail = xstrdup("{\"health\": \"Healthy\"}");
}

static const struct job_runner test_wt_runner = {
	.kind = JOB_SYNC, .run = test_wt_run,
};

static const struct job_runner *
test_find_wt(enum job_kind kind)
{
	return kind == JOB_SYNC ? &test_wt_runner : NULL;
}

static int
test_job_is(struct qfx *fx, int64_t id, enum job_state st)
{
	struct store_job_row	 r;
	int			 ok;

	if (qfx_job(fx, id, &r) != 1)
		return 0;
	ok = r.state == st;
	store_job_row_clear(&r);
	return ok;
}

struct test_wt {
	struct qfx	*fx;
	int64_t		 id;
	enum job_state	 state;
};

static int
test_wt_reached(void *arg)
{
	struct test_wt	*t = arg;

	return test_job_is(t->fx, t->id, t->state);
}

/*
 * A sync that waits for health: the job shows `waiting` (the API lists
 * it), is claimed again only to look, ends as one succeeded attempt with
 * the app's status and no alert; its inventory is stored when it starts
 * waiting; a newer sync of the same app runs only after the look that
 * found it healthy, and is given that inventory.
 */
static void
test_waiting_sync(void **state)
{
	struct qfx		 fx;
	struct qfx_sub		 s1, s2;
	struct job_spec		 a = qfx_sync("ok", "rev1"),
				 b = qfx_sync("ok", "rev2");
	struct test_wt		 t;
	struct store		*st;
	struct store_app_row	 app;
	struct store_job_row	 r;
	struct buf		 body;
	char			 err[256], *inv = NULL;
	cJSON			*o, *it;
	int			 listed = 0;

	(void)state;
	qfx_setup(&fx);
	fx.cfg.notify.repeat_after_s = 0;
	qfx_open(&fx, 0);
	queue_set_runner_find(fx.q, test_find_wt);
	assert_int_equal(queue_start(fx.q), 0);
	test_wt_seq = test_wt_applies = test_wt_looks = 0;
	test_wt_healthy_at = test_wt_second_apply_at = 0;
	memset(&s1, 0, sizeof(s1));
	qfx_submit(&fx, "github", "w-1", &a, 1, &s1);
	assert_int_equal(qfx_loop_until(&fx, qfx_sub_done, &s1, 5000), 0);
	t = (struct test_wt){ &fx, s1.ids[0][0], JOB_WAITING };
	assert_int_equal(qfx_loop_until(&fx, test_wt_reached, &t, 5000), 0);
	/* What the apply applied is stored as it starts waiting. */
	st = store_sqlite_ops.open(fx.path, NULL, err, sizeof(err));
	assert_non_null(st);
	assert_int_equal(store_sqlite_ops.inventory_get(st, "ok", &inv, err,
	    sizeof(err)), 1);
	assert_string_equal(inv, TEST_WT_INVENTORY("rev1"));
	free(inv);
	store_sqlite_ops.close(st);

	/* The API shows it waiting, with its next look; nothing counted. */
	buf_init(&body, 0);
	assert_int_equal(admin_api(fx.q, NULL, "GET", "/api/v1/jobs",
	    "state=waiting", &body), 200);
	o = cJSON_Parse(body.data);
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(o, "jobs")) {
		assert_string_equal(cJSON_GetObjectItem(it, "state")->valuestring,
		    "waiting");
		assert_int_equal(cJSON_GetObjectItem(it, "attempts")->valueint,
		    0);
		listed++;
	}
	cJSON_Delete(o);
	buf_free(&body);
	/* It may be mid-look (running) when listed; waiting most of the time. */
	assert_true(listed <= 1);

	/* A newer sync of the app while it waits. */
	memset(&s2, 0, sizeof(s2));
	qfx_submit(&fx, "github", "w-2", &b, 1, &s2);
	assert_int_equal(qfx_loop_until(&fx, qfx_sub_done, &s2, 5000), 0);
	assert_true(s2.ids[0][0] != s1.ids[0][0]);	/* not absorbed */
	t = (struct test_wt){ &fx, s2.ids[0][0], JOB_SUCCEEDED };
	assert_int_equal(qfx_loop_until(&fx, test_wt_reached, &t, 10000), 0);
	assert_true(test_job_is(&fx, s1.ids[0][0], JOB_SUCCEEDED));
	assert_int_equal(test_wt_applies, 2);
	assert_int_equal(test_wt_looks, 4);
	/* Exclusive as before: the second apply came after the first job's
	 * last look. */
	assert_true(test_wt_second_apply_at > test_wt_healthy_at);
	/* The newer sync prunes from the first one's inventory. */
	pthread_mutex_lock(&qfx_mtx);
	assert_non_null(test_wt_second_inventory);
	assert_string_equal(test_wt_second_inventory,
	    TEST_WT_INVENTORY("rev1"));
	free(test_wt_second_inventory);
	test_wt_second_inventory = NULL;
	pthread_mutex_unlock(&qfx_mtx);

	assert_int_equal(qfx_job(&fx, s1.ids[0][0], &r), 1);
	assert_int_equal(r.attempts, 1);
	assert_null(strstr(r.result, "\"wait\""));
	store_job_row_clear(&r);
	st = store_sqlite_ops.open(fx.path, NULL, err, sizeof(err));
	assert_non_null(st);
	assert_int_equal(store_sqlite_ops.app_get(st, "ok", &app, err,
	    sizeof(err)), 0);
	assert_int_equal(app.outcome, JOB_SUCCEEDED);
	assert_string_equal(app.revision, "rev2");
	assert_string_equal(app.health, "Healthy");
	store_app_row_clear(&app);
	store_sqlite_ops.close(st);
	/* Waiting planned no alert (no notifiers; and no notify job). */
	assert_int_equal(test_count_jobs(&fx, JOB_NOTIFY), 0);
	qfx_teardown(&fx);
}

/* Two queued image jobs of one repository run as one; one follow-up. */
static void
test_merged_run(void **state)
{
	struct qfx		 fx;
	struct qfx_sub		 s1, s2;
	struct job_spec		 a = qfx_image("ok", "deploy", "2.0"),
				 b = qfx_image("flaky", "deploy", "2.1");
	struct test_wait	 w1, w2;

	(void)state;
	qfx_setup(&fx);
	qfx_open(&fx, 0);
	memset(&s1, 0, sizeof(s1));
	memset(&s2, 0, sizeof(s2));
	qfx_submit(&fx, "registry", "m-1", &a, 1, &s1);
	qfx_submit(&fx, "registry", "m-2", &b, 1, &s2);
	assert_int_equal(qfx_loop_until(&fx, qfx_sub_done, &s2, 5000), 0);
	assert_int_equal(queue_start(fx.q), 0);
	w1.fx = w2.fx = &fx;
	w1.id = s1.ids[0][0];
	w2.id = s2.ids[0][0];
	assert_int_equal(qfx_loop_until(&fx, test_succeeded, &w1, 5000), 0);
	assert_int_equal(qfx_loop_until(&fx, test_succeeded, &w2, 5000), 0);
	pthread_mutex_lock(&qfx_mtx);
	assert_int_equal(qfx_image_runs, 1);	/* one run for both */
	assert_int_equal(qfx_max_merged, 1);
	pthread_mutex_unlock(&qfx_mtx);
	/* The run's follow-up sync was created once. */
	assert_int_equal(test_count_jobs(&fx, JOB_SYNC), 1);
	qfx_teardown(&fx);
}

/* A notify runner that only finishes when the test says so. */
static struct job	*test_held_job;
static job_done_cb	*test_held_done;
static void		*test_held_arg;

static void
test_hold_start(const struct config *cfg, struct event_base *base,
    struct job *j, job_done_cb *done, void *arg)
{
	(void)cfg;
	(void)base;
	test_held_job = j;
	test_held_done = done;
	test_held_arg = arg;
}

static const struct job_runner test_hold_runner = {
	.kind = JOB_NOTIFY, .start = test_hold_start,
};

static const struct job_runner *
test_find_hold(enum job_kind kind)
{
	return kind == JOB_NOTIFY ? &test_hold_runner : qfx_find(kind);
}

static int
test_held(void *arg)
{
	(void)arg;
	return test_held_job != NULL;
}

/* A loop runner finishing after queue_close() only frees its job. */
static void
test_loop_run_after_close(void **state)
{
	struct qfx		 fx;
	struct job_spec		 n = { .kind = JOB_NOTIFY, .app = "ok",
	    .params = "{}" };
	struct job_result	 res;
	struct store_job_row	 r;
	int64_t			 id;
	char			 err[256];

	(void)state;
	qfx_setup(&fx);
	test_held_job = NULL;
	qfx_open(&fx, 0);
	queue_set_runner_find(fx.q, test_find_hold);
	assert_int_equal(queue_start(fx.q), 0);
	assert_int_equal(queue_add_jobs(fx.q, &n, 1, &id, err, sizeof(err)), 0);
	assert_int_equal(qfx_loop_until(&fx, test_held, NULL, 5000), 0);
	qfx_close(&fx);
	memset(&res, 0, sizeof(res));
	res.ok = 1;
	test_held_done(test_held_job, &res, test_held_arg);
	job_result_clear(&res);
	/* Still running in the store: the next start re-queues it. */
	assert_int_equal(qfx_job(&fx, id, &r), 1);
	assert_int_equal(r.state, JOB_RUNNING);
	store_job_row_clear(&r);
	qfx_teardown(&fx);
}

static int
test_wal_empty(void *arg)
{
	struct stat	 sb;

	return stat(arg, &sb) == 0 && sb.st_size == 0;
}

static void
test_checkpoint_when_idle(void **state)
{
	struct qfx		 fx;
	struct qfx_sub		 s;
	struct job_spec		 js = qfx_sync("ok", "r");
	struct stat		 sb;
	char			 wal[160];

	(void)state;
	qfx_setup(&fx);
	qfx_open(&fx, 0);
	memset(&s, 0, sizeof(s));
	qfx_submit(&fx, "github", "ck-1", &js, 1, &s);
	assert_int_equal(qfx_loop_until(&fx, qfx_sub_done, &s, 5000), 0);
	snprintf(wal, sizeof(wal), "%s-wal", fx.path);
	/* Commits went to the log (no automatic checkpoint)... */
	assert_int_equal(stat(wal, &sb), 0);
	assert_true(sb.st_size > 0);
	/* ...which the checkpoint thread empties once the store is idle (a
	 * second without commits; generous for unit binaries run side by
	 * side on a loaded machine). */
	assert_int_equal(qfx_loop_until(&fx, test_wal_empty, wal, 15000), 0);
	qfx_teardown(&fx);
}

/* Until the job is final, with its row in *arg's wait. */
struct test_final {
	struct qfx		*fx;
	int64_t			 id;
	struct store_job_row	 row;
};

static int
test_final(void *arg)
{
	struct test_final	*t = arg;

	store_job_row_clear(&t->row);
	if (qfx_job(t->fx, t->id, &t->row) != 1)
		return 0;
	return t->row.state == JOB_SUCCEEDED || t->row.state == JOB_DEAD;
}

static int
test_never(void *arg)
{
	(void)arg;
	return 0;
}

/*
 * A job that runs for three times queue.lease_s keeps its lease: the
 * store thread renews it every third of the lease, and does not take
 * over a job its own process still runs.  One run, one attempt.
 */
static void
test_lease_renewed(void **state)
{
	struct qfx		 fx;
	struct qfx_sub		 s;
	struct job_spec		 blk = qfx_sync("block", "r");
	struct test_final	 t;
	int			 one = 1;

	(void)state;
	qfx_setup(&fx);
	fx.cfg.queue.lease_s = 1;
	qfx_open(&fx, 1);
	memset(&s, 0, sizeof(s));
	qfx_submit(&fx, "github", "lease-1", &blk, 1, &s);
	assert_int_equal(qfx_loop_until(&fx, qfx_sub_done, &s, 5000), 0);
	assert_int_equal(qfx_loop_until(&fx, test_blocked_n, &one, 5000), 0);
	(void)qfx_loop_until(&fx, test_never, NULL, 3000);
	pthread_mutex_lock(&qfx_mtx);
	qfx_release = 1;
	pthread_cond_broadcast(&qfx_cv);
	pthread_mutex_unlock(&qfx_mtx);
	memset(&t, 0, sizeof(t));
	t.fx = &fx;
	t.id = s.ids[0][0];
	assert_int_equal(qfx_loop_until(&fx, test_final, &t, 5000), 0);
	assert_int_equal(t.row.state, JOB_SUCCEEDED);
	assert_int_equal(t.row.attempts, 1);
	store_job_row_clear(&t.row);
	pthread_mutex_lock(&qfx_mtx);
	assert_int_equal(qfx_runs, 1);
	pthread_mutex_unlock(&qfx_mtx);
	qfx_teardown(&fx);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_group_commit),
		cmocka_unit_test(test_callback_only_after_commit),
		cmocka_unit_test(test_workers_one_per_app),
		cmocka_unit_test(test_notify_runs_on_loop),
		cmocka_unit_test(test_drain_stops_claims),
		cmocka_unit_test(test_checkpoint_when_idle),
		cmocka_unit_test(test_merged_run),
		cmocka_unit_test(test_waiting_sync),
		cmocka_unit_test(test_retry_fresh_attempts),
		cmocka_unit_test(test_loop_run_after_close),
		cmocka_unit_test(test_lease_renewed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
