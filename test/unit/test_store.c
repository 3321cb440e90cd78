/*
 * Unit tests for the state store (daemon/store_sqlite.c) and the job state
 * machine of daemon/queue.c on a real SQLite file: dedup, absorb, merge,
 * requeue after a crash, backoff, back-pressure, a full disk, retention
 * and the admin endpoints.
 */
#include <sys/resource.h>
#include <sys/stat.h>

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "admin.h"
#include "metrics.h"
#include "queue_fixture.h"

static struct store *
test_store_open(struct qfx *fx)
{
	char		 err[256];
	struct store	*st;

	st = store_sqlite_ops.open(fx->path, NULL, err, sizeof(err));
	if (st == NULL)
		fail_msg("open: %s", err);
	return st;
}

/* The value of one series in the rendered metrics, -1 when absent. */
static double
test_metric(const char *series)
{
	struct buf	 m;
	const char	*line;
	size_t		 len = strlen(series);
	double		 v = -1;

	buf_init(&m, 0);
	metrics_render(&m);
	for (line = m.data; line != NULL && *line != '\0';
	    line = strchr(line, '\n') != NULL ? strchr(line, '\n') + 1 : NULL)
		if (strncmp(line, series, len) == 0 && line[len] == ' ')
			v = strtod(line + len + 1, NULL);
	buf_free(&m);
	return v;
}

static int64_t
test_add_event(struct store *st, const char *source, const char *delivery,
    int64_t received, int *dup)
{
	const struct store_ops	*ops = &store_sqlite_ops;
	struct store_event	 ev = { source, delivery, "push", "s", received };
	char			 err[256];
	int64_t			 id = 0;
	int			 r;

	assert_int_equal(ops->begin(st, err, sizeof(err)), 0);
	assert_int_equal(ops->item_begin(st, err, sizeof(err)), 0);
	r = ops->add_event(st, &ev, &id, err, sizeof(err));
	assert_true(r == 0 || r == 1);
	if (r == 1)
		ops->item_abort(st);
	else
		assert_int_equal(ops->item_end(st, err, sizeof(err)), 0);
	assert_int_equal(ops->commit(st, err, sizeof(err)), 0);
	*dup = r;
	return id;
}

static int64_t
test_add_job(struct store *st, const struct job_spec *js, int64_t event_id,
    int *absorbed)
{
	const struct store_ops	*ops = &store_sqlite_ops;
	char			 err[256];
	int64_t			 id = 0;

	assert_int_equal(ops->begin(st, err, sizeof(err)), 0);
	assert_int_equal(ops->add_job(st, js, event_id, 3, util_now_ms(), &id,
	    absorbed, err, sizeof(err)), 0);
	assert_int_equal(ops->commit(st, err, sizeof(err)), 0);
	return id;
}

static void
test_dedup_store(void **state)
{
	struct qfx	 fx;
	struct store	*st;
	int		 dup;
	int64_t		 id;

	(void)state;
	qfx_setup(&fx);
	st = test_store_open(&fx);
	id = test_add_event(st, "github", "d-1", util_now_ms(), &dup);
	assert_int_equal(dup, 0);
	assert_true(id > 0);
	test_add_event(st, "github", "d-1", util_now_ms(), &dup);
	assert_int_equal(dup, 1);
	/* Another source may reuse the id. */
	test_add_event(st, "gitlab", "d-1", util_now_ms(), &dup);
	assert_int_equal(dup, 0);
	store_sqlite_ops.close(st);
	/* Across a restart. */
	st = test_store_open(&fx);
	test_add_event(st, "github", "d-1", util_now_ms(), &dup);
	assert_int_equal(dup, 1);
	store_sqlite_ops.close(st);
	qfx_teardown(&fx);
}

/*
 * Delivery ids are remembered for the dedup window, not longer, across a
 * restart (the window is read back from the events), and an event is kept
 * while its id is remembered even when state.keep_days is shorter.
 */
static void
test_dedup_window(void **state)
{
	const struct store_ops	*ops = &store_sqlite_ops;
	struct qfx		 fx;
	struct store		*st;
	int64_t			 now = util_now_ms(), day = 86400000LL;
	int64_t			 deleted;
	int			 dup;
	char			 err[256];

	(void)state;
	qfx_setup(&fx);
	st = test_store_open(&fx);
	test_add_event(st, "github", "old", now - 10 * day, &dup);
	test_add_event(st, "github", "mid", now - 5 * day, &dup);
	test_add_event(st, "github", "new", now - day, &dup);
	ops->close(st);

	st = test_store_open(&fx);
	assert_int_equal(ops->writer_start(st, now - 7 * day, err,
	    sizeof(err)), 0);
	/* Out of the window: stored again, as a new event. */
	test_add_event(st, "github", "old", now, &dup);
	assert_int_equal(dup, 0);
	test_add_event(st, "github", "old", now, &dup);
	assert_int_equal(dup, 1);
	/* Kept 3 days, remembered 7: "mid" stays stored and known. */
	assert_int_equal(ops->retention(st, now - 3 * day, now - 7 * day,
	    &deleted, err, sizeof(err)), 0);
	test_add_event(st, "github", "mid", now, &dup);
	assert_int_equal(dup, 1);
	test_add_event(st, "github", "new", now, &dup);
	assert_int_equal(dup, 1);
	ops->close(st);
	qfx_teardown(&fx);
}

static void
test_dedup_queue_batch_and_restart(void **state)
{
	struct qfx		 fx;
	struct hook_event	 ev[2];
	struct queue_item	 it[2];
	struct job_spec		 js = qfx_sync("ok", "r1");
	struct qfx_sub		 s, s2;

	(void)state;
	qfx_setup(&fx);
	qfx_open(&fx, 0);
	memset(ev, 0, sizeof(ev));
	memset(&s, 0, sizeof(s));
	ev[0].kind = ev[1].kind = HOOK_EVENT_PUSH;
	ev[0].delivery = ev[1].delivery = (char *)"same";
	for (int i = 0; i < 2; i++) {
		it[i].source = "github";
		it[i].event = &ev[i];
		it[i].jobs = &js;
		it[i].njobs = 1;
	}
	/* Two identical deliveries in one batch: the second is a repeat. */
	queue_submit(fx.q, it, 2, qfx_sub_cb, &s);
	assert_int_equal(qfx_loop_until(&fx, qfx_sub_done, &s, 5000), 0);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.status[0], QUEUE_OK);
	assert_int_equal(s.status[1], QUEUE_DUPLICATE);
	assert_int_equal(s.nids[0], 1);
	qfx_close(&fx);

	qfx_open(&fx, 0);
	memset(&s2, 0, sizeof(s2));
	qfx_submit(&fx, "github", "same", &js, 1, &s2);
	assert_int_equal(qfx_loop_until(&fx, qfx_sub_done, &s2, 5000), 0);
	assert_int_equal(s2.status[0], QUEUE_DUPLICATE);
	qfx_teardown(&fx);
}

static void
test_backoff_bounds(void **state)
{
	int64_t	 d, cap, lo, hi, sum;
	int	 n, i;

	(void)state;
	for (n = 1; n <= 10; n++) {
		cap = (int64_t)5 * (1LL << (n - 1));
		if (cap > 300)
			cap = 300;
		lo = INT64_MAX;
		hi = 0;
		sum = 0;
		for (i = 0; i < 2000; i++) {
			d = queue_backoff_ms(5, 300, n, 0);
			assert_true(d >= 0);
			assert_true(d <= cap * 1000);
			lo = d < lo ? d : lo;
			hi = d > hi ? d : hi;
			sum += d;
		}
		/* Full jitter spreads over the whole range. */
		assert_true(lo < cap * 1000 / 10);
		assert_true(hi > cap * 1000 * 9 / 10);
		assert_true(sum / 2000 > cap * 1000 / 3);
		assert_true(sum / 2000 < cap * 1000 * 2 / 3);
	}
	/* Retry-After is a floor. */
	for (i = 0; i < 200; i++)
		assert_true(queue_backoff_ms(5, 300, 1, 60) >= 60000);
	/* Huge attempt counts stay at the cap. */
	assert_true(queue_backoff_ms(5, 300, 1000, 0) <= 300000);
	/* A Retry-After of a day is held to max_s. */
	for (i = 0; i < 200; i++) {
		assert_int_equal(queue_backoff_ms(5, 300, 1, 86400), 300000);
		assert_int_equal(queue_backoff_ms(1, 1, 3, 86400), 1000);
	}
}

static void
test_absorb(void **state)
{
	struct qfx		 fx;
	struct store		*st;
	struct job_spec		 a = qfx_sync("ok", "rev1"), b = qfx_sync("ok",
	    "rev2"), other = qfx_sync("fail", "rev3");
	struct store_job_row	 r;
	struct store_event_row	*rows = NULL;
	size_t			 n = 0;
	int64_t			 e1, e2, j1, j2, j3, next;
	int			 dup, absorbed;
	char			 err[256];

	(void)state;
	qfx_setup(&fx);
	st = test_store_open(&fx);
	e1 = test_add_event(st, "github", "a", util_now_ms(), &dup);
	e2 = test_add_event(st, "github", "b", util_now_ms(), &dup);
	j1 = test_add_job(st, &a, e1, &absorbed);
	assert_int_equal(absorbed, 0);
	j2 = test_add_job(st, &b, e2, &absorbed);
	assert_int_equal(absorbed, 1);
	assert_int_equal(j1, j2);
	j3 = test_add_job(st, &other, e2, &absorbed);
	assert_int_equal(absorbed, 0);
	assert_true(j3 != j1);
	/* The newest revision wins. */
	assert_int_equal(store_sqlite_ops.get_job(st, j1, &r, err,
	    sizeof(err)), 1);
	assert_string_equal(r.revision, "rev2");
	store_job_row_clear(&r);
	/* Both events list the job. */
	assert_int_equal(store_sqlite_ops.list_events(st, 0, 10, &rows, &n,
	    &next, err, sizeof(err)), 0);
	assert_int_equal(n, 2);
	assert_int_equal(rows[0].njob_ids, 2);	/* event b: j1 and j3 */
	assert_int_equal(rows[1].njob_ids, 1);
	assert_int_equal(rows[1].job_ids[0], j1);
	store_event_rows_free(rows, n);
	store_sqlite_ops.close(st);
	qfx_teardown(&fx);
}

/* What a SQLite store's start does: every lease is a dead process's. */
static int
test_takeover_all(struct store *st, int *nq, int *nd)
{
	char	 err[256];

	if (store_sqlite_ops.begin(st, err, sizeof(err)) == -1 ||
	    store_sqlite_ops.takeover(st, INT64_MAX, util_now_ms(), nq, nd, NULL,
	    err, sizeof(err)) == -1)
		return -1;
	return store_sqlite_ops.commit(st, err, sizeof(err));
}

static void
test_claim_merge_exclusive(void **state)
{
	struct qfx		 fx;
	struct store		*st;
	struct job_spec		 i1 = qfx_image("ok", "deploy", "1.0"),
				 i2 = qfx_image("flaky", "deploy", "1.1"),
				 i3 = qfx_image("perm", "other", "2.0"),
				 s1 = qfx_sync("ok", "r"), s2 = qfx_sync("fail", "r");
	struct store_claim	 c = { .now_ms = util_now_ms() + 1, .max_thread = 4,
	    .max_loop = 4 };
	struct job		**jobs = NULL;
	size_t			 n = 0, i;
	int64_t			 id1, id2, id3, ids1, ids2;
	int			 absorbed, saw_merged = 0, saw_other = 0;
	char			 err[256];

	(void)state;
	qfx_setup(&fx);
	st = test_store_open(&fx);
	id1 = test_add_job(st, &i1, 0, &absorbed);
	id2 = test_add_job(st, &i2, 0, &absorbed);
	id3 = test_add_job(st, &i3, 0, &absorbed);
	ids1 = test_add_job(st, &s1, 0, &absorbed);
	ids2 = test_add_job(st, &s2, 0, &absorbed);
	assert_int_equal(store_sqlite_ops.begin(st, err, sizeof(err)), 0);
	assert_int_equal(store_sqlite_ops.claim(st, &c, &jobs, &n, err,
	    sizeof(err)), 0);
	assert_int_equal(store_sqlite_ops.commit(st, err, sizeof(err)), 0);
	/* deploy's two image jobs run as one; other's alone; sync of "fail". */
	assert_int_equal(n, 3);
	for (i = 0; i < n; i++) {
		if (jobs[i]->id == id1) {
			assert_int_equal(jobs[i]->nmerged, 1);
			assert_int_equal(jobs[i]->merged[0]->id, id2);
			saw_merged = 1;
		} else if (jobs[i]->id == id3)
			saw_other = 1;
		else {
			/* "ok" is busy with its image job: its sync waits. */
			assert_int_equal(jobs[i]->id, ids2);
		}
		job_free(jobs[i]);
	}
	free(jobs);
	assert_true(saw_merged && saw_other);
	/* Nothing else may run now: ok's sync waits for its app. */
	assert_int_equal(store_sqlite_ops.begin(st, err, sizeof(err)), 0);
	assert_int_equal(store_sqlite_ops.claim(st, &c, &jobs, &n, err,
	    sizeof(err)), 0);
	store_sqlite_ops.commit(st, err, sizeof(err));
	assert_int_equal(n, 0);
	free(jobs);
	(void)ids1;
	store_sqlite_ops.close(st);
	qfx_teardown(&fx);
}

static void
test_requeue_on_restart(void **state)
{
	struct qfx		 fx;
	struct store		*st;
	struct job_spec		 s = qfx_sync("ok", "r");
	struct store_claim	 c = { .now_ms = util_now_ms() + 1, .max_thread = 4,
	    .max_loop = 4 };
	struct job		**jobs = NULL;
	struct store_job_row	 r;
	struct store_attempt_row *att = NULL;
	size_t			 n = 0;
	int64_t			 id;
	int			 absorbed, nq, nd;
	char			 err[256];

	(void)state;
	qfx_setup(&fx);
	st = test_store_open(&fx);
	id = test_add_job(st, &s, 0, &absorbed);
	store_sqlite_ops.begin(st, err, sizeof(err));
	assert_int_equal(store_sqlite_ops.claim(st, &c, &jobs, &n, err,
	    sizeof(err)), 0);
	store_sqlite_ops.commit(st, err, sizeof(err));
	assert_int_equal(n, 1);
	job_free(jobs[0]);
	free(jobs);
	/* "Crash": the connection goes away with the job running. */
	store_sqlite_ops.close(st);
	st = test_store_open(&fx);
	assert_int_equal(test_takeover_all(st, &nq, &nd), 0);
	assert_int_equal(nq, 1);
	assert_int_equal(nd, 0);
	assert_int_equal(store_sqlite_ops.get_job(st, id, &r, err,
	    sizeof(err)), 1);
	assert_int_equal(r.state, JOB_QUEUED);
	assert_int_equal(r.attempts, 1);
	store_job_row_clear(&r);
	assert_int_equal(store_sqlite_ops.list_attempts(st, id, &att, &n, err,
	    sizeof(err)), 0);
	assert_int_equal(n, 1);
	assert_false(att[0].ok);
	assert_non_null(strstr(att[0].error, "interrupted"));
	store_attempt_rows_free(att, n);
	store_sqlite_ops.close(st);

	/* queue_open does the same and the job then runs to success. */
	qfx_open(&fx, 1);
	{
		struct store_job_row	 rr;
		int64_t			 end = util_mono_ms() + 5000;

		memset(&rr, 0, sizeof(rr));
		while (util_mono_ms() < end) {
			event_base_loop(fx.base, EVLOOP_NONBLOCK);
			usleep(2000);
			if (qfx_job(&fx, id, &rr) == 1 &&
			    rr.state == JOB_SUCCEEDED)
				break;
			store_job_row_clear(&rr);
		}
		assert_int_equal(rr.state, JOB_SUCCEEDED);
		assert_int_equal(rr.attempts, 2);
		store_job_row_clear(&rr);
	}
	qfx_teardown(&fx);
}

/* Claim what is due at now_ms in one committed transaction. */
static void
test_claim_at(struct store *st, int64_t now_ms, struct job ***jobs,
    size_t *n)
{
	struct store_claim	 c = { .now_ms = now_ms, .max_thread = 4,
	    .max_loop = 4 };
	char			 err[256];

	assert_int_equal(store_sqlite_ops.begin(st, err, sizeof(err)), 0);
	assert_int_equal(store_sqlite_ops.claim(st, &c, jobs, n, err,
	    sizeof(err)), 0);
	assert_int_equal(store_sqlite_ops.commit(st, err, sizeof(err)), 0);
}

static void
test_finish(struct store *st, const struct store_finish *f)
{
	char	 err[256];

	assert_int_equal(store_sqlite_ops.begin(st, err, sizeof(err)), 0);
	assert_int_equal(store_sqlite_ops.finish(st, f, err, sizeof(err)), 0);
	assert_int_equal(store_sqlite_ops.commit(st, err, sizeof(err)), 0);
}

static void
test_jobs_free(struct job **jobs, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		job_free(jobs[i]);
	free(jobs);
}

/*
 * Status reports (notify jobs with a repo, commit-status) of one app run
 * one at a time, in order: the result waits for the pending one.  Other
 * alerts of the app and another app's report run meanwhile.
 */
static void
test_status_reports_in_order(void **state)
{
	struct qfx		 fx;
	struct store		*st;
	struct job_spec		 pend = { .kind = JOB_NOTIFY, .app = "web",
				    .repo = "deploy", .params = "{}" };
	struct job_spec		 res = pend, chat = pend, other = pend;
	struct job		**jobs = NULL;
	struct store_finish	 f;
	size_t			 n = 0, i;
	int64_t			 idp, idr, idc, ido;
	int			 absorbed, seen;

	(void)state;
	chat.repo = NULL;
	other.app = "api";
	qfx_setup(&fx);
	st = test_store_open(&fx);
	idp = test_add_job(st, &pend, 0, &absorbed);
	idr = test_add_job(st, &res, 0, &absorbed);
	idc = test_add_job(st, &chat, 0, &absorbed);
	ido = test_add_job(st, &other, 0, &absorbed);
	test_claim_at(st, util_now_ms() + 1, &jobs, &n);
	assert_int_equal(n, 3);
	for (i = 0, seen = 0; i < n; i++) {
		assert_true(jobs[i]->id != idr);
		seen += jobs[i]->id == idp || jobs[i]->id == idc ||
		    jobs[i]->id == ido;
	}
	assert_int_equal(seen, 3);
	test_jobs_free(jobs, n);
	/* Still running: the result waits. */
	test_claim_at(st, util_now_ms() + 1, &jobs, &n);
	assert_int_equal(n, 0);
	test_jobs_free(jobs, n);
	memset(&f, 0, sizeof(f));
	f.job_id = idp;
	f.claim = 1;		/* its first claim */
	f.state = JOB_SUCCEEDED;
	f.attempts = 1;
	f.started_ms = f.ended_ms = util_now_ms();
	f.result = "{\"ok\":true}";
	test_finish(st, &f);
	test_claim_at(st, util_now_ms() + 1, &jobs, &n);
	assert_int_equal(n, 1);
	assert_true(jobs[0]->id == idr);
	test_jobs_free(jobs, n);
	store_sqlite_ops.close(st);
	qfx_teardown(&fx);
}

/*
 * A waiting sync: no attempt recorded; it holds its app (a newer sync and
 * an image update of the app wait, other apps run); when due it is
 * claimed with its wait state and its attempt's start; a crash during its
 * look puts it back to waiting, not to queued, with nothing counted.
 */
static void
test_waiting_job(void **state)
{
	struct qfx		 fx;
	struct store		*st;
	struct job_spec		 s1 = qfx_sync("ok", "r1"), s2 = qfx_sync("ok",
				    "r2"), i1 = qfx_image("ok", "other", "2"),
				 o1 = qfx_sync("fail", "r1");
	struct job		**jobs = NULL;
	struct store_finish	 f;
	struct store_job_row	 r;
	struct store_attempt_row *att = NULL;
	size_t			 n = 0;
	int64_t			 id, id2, idi, ido, t0, counts[JOB_STATE_MAX];
	int64_t			 due;
	int			 absorbed, nq, nd;
	char			 err[256];
	const char		*result = "{\"ok\":false,\"wait\":{\"checks\":"
				    "[{\"path\":\"/apis/apps/v1/x\"}]}}";

	(void)state;
	qfx_setup(&fx);
	st = test_store_open(&fx);
	id = test_add_job(st, &s1, 0, &absorbed);
	t0 = util_now_ms();
	test_claim_at(st, t0 + 1, &jobs, &n);
	assert_int_equal(n, 1);
	assert_null(jobs[0]->wait);
	test_jobs_free(jobs, n);

	memset(&f, 0, sizeof(f));
	f.job_id = id;
	f.state = JOB_WAITING;
	f.attempts = 0;
	f.started_ms = t0 - 5;
	f.ended_ms = t0;
	f.not_before_ms = t0 + 60000;
	f.result = result;
	f.claim = 1;		/* its first claim */
	test_finish(st, &f);
	assert_int_equal(store_sqlite_ops.get_job(st, id, &r, err,
	    sizeof(err)), 1);
	assert_int_equal(r.state, JOB_WAITING);
	assert_int_equal(r.attempts, 0);
	assert_true(r.started_ms == t0 - 5);
	assert_true(r.not_before_ms == t0 + 60000);
	store_job_row_clear(&r);
	assert_int_equal(store_sqlite_ops.list_attempts(st, id, &att, &n, err,
	    sizeof(err)), 0);
	assert_int_equal(n, 0);
	store_attempt_rows_free(att, n);
	assert_int_equal(store_sqlite_ops.count_states(st, counts, err,
	    sizeof(err)), 0);
	assert_int_equal(counts[JOB_WAITING], 1);
	assert_int_equal(counts[JOB_RUNNING], 0);
	assert_int_equal(store_sqlite_ops.next_due(st, t0, &due, err,
	    sizeof(err)), 1);
	assert_true(due == t0 + 60000);

	/* A newer sync is not absorbed into it and waits for the app. */
	id2 = test_add_job(st, &s2, 0, &absorbed);
	assert_false(absorbed);
	assert_true(id2 != id);
	idi = test_add_job(st, &i1, 0, &absorbed);
	ido = test_add_job(st, &o1, 0, &absorbed);
	test_claim_at(st, t0 + 1, &jobs, &n);
	assert_int_equal(n, 1);
	assert_true(jobs[0]->id == ido);
	test_jobs_free(jobs, n);

	/* Due: only the waiting job is claimed for its app. */
	test_claim_at(st, t0 + 60001, &jobs, &n);
	assert_int_equal(n, 1);
	assert_true(jobs[0]->id == id);
	assert_non_null(jobs[0]->wait);
	assert_non_null(strstr(jobs[0]->wait, "/apis/apps/v1/x"));
	assert_null(strstr(jobs[0]->wait, "\"ok\""));
	assert_true(jobs[0]->started_ms == t0 - 5);
	assert_int_equal(jobs[0]->attempts, 0);
	test_jobs_free(jobs, n);
	assert_int_equal(store_sqlite_ops.get_job(st, id, &r, err,
	    sizeof(err)), 1);
	assert_int_equal(r.state, JOB_RUNNING);
	assert_true(r.started_ms == t0 - 5);
	store_job_row_clear(&r);

	/* "Crash" during the look: back to waiting, due now, not counted. */
	store_sqlite_ops.close(st);
	st = test_store_open(&fx);
	assert_int_equal(test_takeover_all(st, &nq, &nd), 0);
	assert_int_equal(nq, 2);	/* the look and "fail"'s sync */
	assert_int_equal(nd, 0);
	assert_int_equal(store_sqlite_ops.get_job(st, id, &r, err,
	    sizeof(err)), 1);
	assert_int_equal(r.state, JOB_WAITING);
	assert_int_equal(r.attempts, 0);
	assert_true(r.not_before_ms == 0);
	assert_true(r.started_ms == t0 - 5);
	store_job_row_clear(&r);
	assert_int_equal(store_sqlite_ops.list_attempts(st, id, &att, &n, err,
	    sizeof(err)), 0);
	assert_int_equal(n, 0);
	store_attempt_rows_free(att, n);

	/* The look ends: one attempt, from the apply on. */
	test_claim_at(st, util_now_ms(), &jobs, &n);
	assert_int_equal(n, 2);		/* the look and "fail"'s sync again */
	test_jobs_free(jobs, n);
	memset(&f, 0, sizeof(f));
	f.job_id = id;
	f.state = JOB_SUCCEEDED;
	f.attempts = 1;
	f.started_ms = t0 - 5;
	f.ended_ms = util_now_ms();
	f.result = "{\"ok\":true}";
	f.claim = 3;		/* the look, and the look again after the crash */
	test_finish(st, &f);
	assert_int_equal(store_sqlite_ops.list_attempts(st, id, &att, &n, err,
	    sizeof(err)), 0);
	assert_int_equal(n, 1);
	assert_true(att[0].ok);
	assert_true(att[0].started_ms == t0 - 5);
	store_attempt_rows_free(att, n);
	assert_int_equal(store_sqlite_ops.get_job(st, id, &r, err,
	    sizeof(err)), 1);
	assert_int_equal(r.state, JOB_SUCCEEDED);
	assert_true(r.started_ms == 0);
	store_job_row_clear(&r);
	/* The app is free: its newer sync (or the image update) runs. */
	test_claim_at(st, util_now_ms(), &jobs, &n);
	assert_int_equal(n, 1);
	assert_true(jobs[0]->id == id2 || jobs[0]->id == idi);
	test_jobs_free(jobs, n);
	store_sqlite_ops.close(st);
	qfx_teardown(&fx);
}

struct test_wait_job {
	struct qfx	*fx;
	int64_t		 id;
	enum job_state	 state;
	int		 attempts;	/* 0: any */
};

static int
test_job_reached(void *arg)
{
	struct test_wait_job	*w = arg;
	struct store_job_row	 r;
	int			 ok;

	if (qfx_job(w->fx, w->id, &r) != 1)
		return 0;
	ok = r.state == w->state && (w->attempts == 0 ||
	    r.attempts == w->attempts);
	store_job_row_clear(&r);
	return ok;
}

/* JSON body of an admin call, parsed (caller frees). */
static cJSON *
test_admin(struct qfx *fx, const char *method, const char *path,
    const char *query, int want_status)
{
	struct buf	 b;
	cJSON		*o;
	int		 status;

	buf_init(&b, 0);
	status = admin_api(fx->q, NULL, method, path, query, &b);
	if (status != want_status)
		fail_msg("%s %s: %d, want %d: %s", method, path, status,
		    want_status, b.data != NULL ? b.data : "");
	o = cJSON_Parse(b.data != NULL ? b.data : "");
	buf_free(&b);
	assert_non_null(o);
	return o;
}

/* How many events the admin API lists. */
static int
test_event_count(struct qfx *fx)
{
	cJSON	*o;
	int	 n;

	o = test_admin(fx, "GET", "/api/v1/events", NULL, 200);
	n = cJSON_GetArraySize(cJSON_GetObjectItem(o, "events"));
	cJSON_Delete(o);
	return n;
}

static void
test_state_machine(void **state)
{
	struct qfx		 fx;
	struct job_spec		 flaky = qfx_sync("flaky", "r1"),
				 fail = qfx_sync("fail", "r2"),
				 perm = qfx_sync("perm", "r3"),
				 img = qfx_image("ok", "deploy", "1.2.3");
	struct qfx_sub		 s[4];
	struct test_wait_job	 w;
	struct store_job_row	 r;
	cJSON			*o, *att, *a, *jobs;
	char			 path[64];

	(void)state;
	qfx_setup(&fx);
	qfx_flaky_fails = 2;
	qfx_open(&fx, 1);
	memset(s, 0, sizeof(s));
	qfx_submit(&fx, "github", "sm-1", &flaky, 1, &s[0]);
	qfx_submit(&fx, "github", "sm-2", &fail, 1, &s[1]);
	qfx_submit(&fx, "github", "sm-3", &perm, 1, &s[2]);
	qfx_submit(&fx, "registry", "sm-4", &img, 1, &s[3]);
	assert_int_equal(qfx_loop_until(&fx, qfx_sub_done, &s[3], 5000), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(s[i].status[0], QUEUE_OK);

	/* A permanent failure is dead at once. */
	w = (struct test_wait_job){ &fx, s[2].ids[0][0], JOB_DEAD, 1 };
	assert_int_equal(qfx_loop_until(&fx, test_job_reached, &w, 5000), 0);
	/* Fails twice (failed -> retry on the timer), then succeeds. */
	w = (struct test_wait_job){ &fx, s[0].ids[0][0], JOB_SUCCEEDED, 3 };
	assert_int_equal(qfx_loop_until(&fx, test_job_reached, &w, 8000), 0);
	/* Out of attempts (max 3): dead. */
	w = (struct test_wait_job){ &fx, s[1].ids[0][0], JOB_DEAD, 3 };
	assert_int_equal(qfx_loop_until(&fx, test_job_reached, &w, 8000), 0);
	assert_int_equal(qfx_job(&fx, s[1].ids[0][0], &r), 1);
	assert_string_equal(r.error, "cluster down");
	store_job_row_clear(&r);

	/* The attempts log of the flaky job. */
	snprintf(path, sizeof(path), "/api/v1/jobs/%lld",
	    (long long)s[0].ids[0][0]);
	o = test_admin(&fx, "GET", path, NULL, 200);
	assert_string_equal(cJSON_GetObjectItem(o, "state")->valuestring,
	    "succeeded");
	assert_string_equal(cJSON_GetObjectItem(o, "delivery")->valuestring,
	    "sm-1");
	att = cJSON_GetObjectItem(o, "attempts_log");
	assert_int_equal(cJSON_GetArraySize(att), 3);
	a = cJSON_GetArrayItem(att, 0);
	assert_false(cJSON_IsTrue(cJSON_GetObjectItem(a, "ok")));
	assert_string_equal(cJSON_GetObjectItem(a, "error")->valuestring,
	    "cluster down");
	assert_true(cJSON_IsString(cJSON_GetObjectItem(a, "started")));
	assert_true(cJSON_IsString(cJSON_GetObjectItem(a, "ended")));
	a = cJSON_GetArrayItem(att, 2);
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(a, "ok")));
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(o,
	    "result"), "revision")->valuestring, "r1");
	cJSON_Delete(o);

	/* The image job succeeded and its follow-up sync ran after it. */
	w = (struct test_wait_job){ &fx, s[3].ids[0][0], JOB_SUCCEEDED, 1 };
	assert_int_equal(qfx_loop_until(&fx, test_job_reached, &w, 5000), 0);
	o = test_admin(&fx, "GET", "/api/v1/jobs", "app=ok&kind=sync", 200);
	jobs = cJSON_GetObjectItem(o, "jobs");
	assert_int_equal(cJSON_GetArraySize(jobs), 1);
	w = (struct test_wait_job){ &fx, (int64_t)cJSON_GetObjectItem(
	    cJSON_GetArrayItem(jobs, 0), "id")->valuedouble, JOB_SUCCEEDED, 1 };
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(jobs, 0),
	    "revision")->valuestring, "c0ffee");
	cJSON_Delete(o);
	assert_int_equal(qfx_loop_until(&fx, test_job_reached, &w, 5000), 0);

	/* App status: revision, health, image tag, last job. */
	o = test_admin(&fx, "GET", "/api/v1/apps/ok", NULL, 200);
	assert_string_equal(cJSON_GetObjectItem(o, "revision")->valuestring,
	    "c0ffee");
	assert_string_equal(cJSON_GetObjectItem(o, "health")->valuestring,
	    "Healthy");
	assert_string_equal(cJSON_GetObjectItem(o, "branch")->valuestring,
	    "main");
	/* No URL on a known host: no commit page to link. */
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(o, "revision_url")));
	assert_true(cJSON_IsString(cJSON_GetObjectItem(o, "synced_at")));
	a = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "images"), 0);
	assert_string_equal(cJSON_GetObjectItem(a, "tag")->valuestring, "1.2.3");
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(o, "last_error")));
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(o,
	    "last_job"), "state")->valuestring, "succeeded");
	cJSON_Delete(o);
	o = test_admin(&fx, "GET", "/api/v1/apps/fail", NULL, 200);
	assert_string_equal(cJSON_GetObjectItem(o, "last_error")->valuestring,
	    "cluster down");
	assert_string_equal(cJSON_GetObjectItem(o, "health")->valuestring,
	    "Unknown");
	cJSON_Delete(o);
	o = test_admin(&fx, "GET", "/api/v1/apps", NULL, 200);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(o, "apps")), 4);
	cJSON_Delete(o);
	o = test_admin(&fx, "GET", "/api/v1/apps/nope", NULL, 404);
	cJSON_Delete(o);
	/* At most one job per app ran at a time; none on the loop thread. */
	assert_false(qfx_on_main_thread);
	qfx_teardown(&fx);
}

static void
test_back_pressure(void **state)
{
	struct qfx		 fx;
	struct job_spec		 two[2] = { qfx_sync("ok", "a"),
				    qfx_sync("fail", "b") },
				 more[2] = { qfx_sync("perm", "c"),
				    qfx_sync("flaky", "d") };
	struct qfx_sub		 s1, s2, s3;
	cJSON			*o;

	(void)state;
	qfx_setup(&fx);
	fx.cfg.queue.max_queued = 3;
	qfx_open(&fx, 0);	/* not started: jobs stay queued */
	memset(&s1, 0, sizeof(s1));
	memset(&s2, 0, sizeof(s2));
	memset(&s3, 0, sizeof(s3));
	qfx_submit(&fx, "github", "bp-1", two, 2, &s1);
	assert_int_equal(qfx_loop_until(&fx, qfx_sub_done, &s1, 5000), 0);
	assert_int_equal(s1.status[0], QUEUE_OK);
	qfx_submit(&fx, "github", "bp-2", more, 2, &s2);
	assert_int_equal(qfx_loop_until(&fx, qfx_sub_done, &s2, 5000), 0);
	assert_int_equal(s2.status[0], QUEUE_FULL);
	/* Nothing of it was stored: one event, two jobs. */
	assert_int_equal(test_event_count(&fx), 1);
	o = test_admin(&fx, "GET", "/api/v1/jobs", NULL, 200);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(o, "jobs")), 2);
	cJSON_Delete(o);
	/* Its delivery id was not kept either: once there is room, it goes in. */
	fx.cfg.queue.max_queued = 10;
	qfx_submit(&fx, "github", "bp-2", more, 2, &s3);
	assert_int_equal(qfx_loop_until(&fx, qfx_sub_done, &s3, 5000), 0);
	assert_int_equal(s3.status[0], QUEUE_OK);
	qfx_teardown(&fx);
}

/*
 * A round writes its deliveries without a savepoint each, so a delivery
 * that fails half-way (here a trigger refuses its job after its event is
 * in) must take the whole round down with it: both deliveries of the
 * batch are answered QUEUE_ERROR, and neither is stored, not even in part
 * (the second is not a "duplicate" later, the first is stored again).
 */
static void
test_round_rolled_back_whole(void **state)
{
	struct qfx		 fx;
	struct hook_event	 ev[2];
	struct queue_item	 it[2];
	struct job_spec		 good = qfx_sync("ok", "r1"),
				 bad = qfx_sync("poison", "r2");
	struct qfx_sub		 s, s2, s3;
	sqlite3			*db;

	(void)state;
	qfx_setup(&fx);
	qfx_open(&fx, 0);
	assert_int_equal(sqlite3_open(fx.path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	assert_int_equal(sqlite3_exec(db, "CREATE TRIGGER poison BEFORE "
	    "INSERT ON jobs WHEN NEW.app = 'poison' BEGIN "
	    "SELECT RAISE(ABORT, 'poisoned job'); END", NULL, NULL, NULL),
	    SQLITE_OK);
	memset(ev, 0, sizeof(ev));
	memset(&s, 0, sizeof(s));
	ev[0].kind = ev[1].kind = HOOK_EVENT_PUSH;
	ev[0].delivery = (char *)"good-1";
	ev[1].delivery = (char *)"bad-1";
	it[0].source = it[1].source = "github";
	it[0].event = &ev[0];
	it[1].event = &ev[1];
	it[0].jobs = &good;
	it[1].jobs = &bad;
	it[0].njobs = it[1].njobs = 1;
	queue_submit(fx.q, it, 2, qfx_sub_cb, &s);
	assert_int_equal(qfx_loop_until(&fx, qfx_sub_done, &s, 5000), 0);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.status[0], QUEUE_ERROR);
	assert_int_equal(s.status[1], QUEUE_ERROR);
	assert_int_equal(test_event_count(&fx), 0);

	/* The store goes on: the good one alone is stored now... */
	memset(&s2, 0, sizeof(s2));
	qfx_submit(&fx, "github", "good-1", &good, 1, &s2);
	assert_int_equal(qfx_loop_until(&fx, qfx_sub_done, &s2, 5000), 0);
	assert_int_equal(s2.status[0], QUEUE_OK);
	/* ...and, once its job is allowed, so is the other: no part of it
	 * was left behind to make it a repeat. */
	assert_int_equal(sqlite3_exec(db, "DROP TRIGGER poison", NULL, NULL,
	    NULL), SQLITE_OK);
	memset(&s3, 0, sizeof(s3));
	qfx_submit(&fx, "github", "bad-1", &bad, 1, &s3);
	assert_int_equal(qfx_loop_until(&fx, qfx_sub_done, &s3, 5000), 0);
	assert_int_equal(s3.status[0], QUEUE_OK);
	assert_int_equal(test_event_count(&fx), 2);
	sqlite3_close(db);
	qfx_teardown(&fx);
}

/*
 * Under a load that never pauses the write-ahead log still starts over
 * (a passive checkpoint beside a writer that never stops never copies
 * every frame, and SQLite starts the log over only then): rounds of
 * deliveries back to back write some 120 MB of log, which must not all
 * stay in the file.
 */
static void
test_wal_bounded_under_load(void **state)
{
	struct qfx		 fx;
	struct hook_event	 ev[8];
	struct queue_item	 it[8];
	struct qfx_sub		 s;
	struct stat		 sb;
	char			 ids[8][32], *summary, *wal;
	const char		*series = "gitopsd_store_wal_restarts_total";
	double			 before, restarts;
	int			 round, i;

	(void)state;
	if ((before = test_metric(series)) < 0)
		before = 0;
	qfx_setup(&fx);
	qfx_open(&fx, 0);
	/* About a page per event: 8 pages and more per round. */
	summary = xmalloc(3001);
	memset(summary, 's', 3000);
	summary[3000] = '\0';
	for (round = 0; round < 3000; round++) {
		memset(ev, 0, sizeof(ev));
		for (i = 0; i < 8; i++) {
			snprintf(ids[i], sizeof(ids[i]), "w-%d-%d", round, i);
			ev[i].kind = HOOK_EVENT_PUSH;
			ev[i].delivery = ids[i];
			ev[i].summary = summary;
			it[i].source = "github";
			it[i].event = &ev[i];
			it[i].jobs = NULL;
			it[i].njobs = 0;
		}
		memset(&s, 0, sizeof(s));
		queue_submit(fx.q, it, 8, qfx_sub_cb, &s);
		assert_int_equal(qfx_loop_until(&fx, qfx_sub_done, &s, 10000),
		    0);
		assert_int_equal(s.status[0], QUEUE_OK);
	}
	restarts = test_metric(series) - before;
	wal = xasprintf("%s-wal", fx.path);
	assert_int_equal(stat(wal, &sb), 0);
	print_message("wal: %lld bytes after %d rounds, started over %.0f"
	    " times\n", (long long)sb.st_size, round, restarts);
	assert_true(restarts >= 1);
	assert_true(sb.st_size < 40 * 1024 * 1024);
	free(wal);
	free(summary);
	qfx_teardown(&fx);
}

/* Waits up to 5 s for a file to be empty: 1 once it is. */
static int
test_file_empties(const char *path)
{
	struct stat	 sb;
	int		 i;

	for (i = 0; i < 500; i++) {
		if (stat(path, &sb) == 0 && sb.st_size == 0)
			return 1;
		usleep(10000);
	}
	return 0;
}

/*
 * The backend checkpoints its writer by itself, with no queue around it:
 * the log a writer's commits left is copied back and emptied once they
 * stop, and again when the writer closes.
 */
static void
test_writer_checkpoints_alone(void **state)
{
	const struct store_ops	*ops = &store_sqlite_ops;
	struct qfx		 fx;
	struct store		*st;
	struct stat		 sb;
	char			 err[256], *wal;
	int			 dup;

	(void)state;
	qfx_setup(&fx);
	wal = xasprintf("%s-wal", fx.path);
	st = test_store_open(&fx);
	assert_int_equal(ops->writer_start(st, 0, err, sizeof(err)), 0);
	test_add_event(st, "github", "ck-1", util_now_ms(), &dup);
	assert_int_equal(stat(wal, &sb), 0);
	assert_true(sb.st_size > 0);
	assert_true(test_file_empties(wal));
	test_add_event(st, "github", "ck-2", util_now_ms(), &dup);
	assert_int_equal(stat(wal, &sb), 0);
	assert_true(sb.st_size > 0);
	/* Closed before a second of idleness: close empties it (SQLite
	 * removes an empty log when its last connection closes). */
	ops->close(st);
	assert_true(stat(wal, &sb) == -1 || sb.st_size == 0);
	free(wal);
	qfx_teardown(&fx);
}

static void
test_disk_full(void **state)
{
	struct qfx		 fx;
	struct job_spec		 js = qfx_sync("ok", "a");
	struct qfx_sub		 s1, s2, s3;
	struct rlimit		 old, lim;
	struct stat		 sb;
	char			 wal[160], *big;
	struct hook_event	 ev;
	struct queue_item	 it;

	(void)state;
	qfx_setup(&fx);
	qfx_open(&fx, 0);
	memset(&s1, 0, sizeof(s1));
	memset(&s2, 0, sizeof(s2));
	memset(&s3, 0, sizeof(s3));
	qfx_submit(&fx, "github", "df-1", &js, 1, &s1);
	assert_int_equal(qfx_loop_until(&fx, qfx_sub_done, &s1, 5000), 0);
	assert_int_equal(s1.status[0], QUEUE_OK);

	/* The disk "fills up": no file may grow past its current size. */
	snprintf(wal, sizeof(wal), "%s-wal", fx.path);
	if (stat(wal, &sb) == -1)
		sb.st_size = 0;
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = (rlim_t)sb.st_size;
	big = xmalloc(512 * 1024 + 1);
	memset(big, 'x', 512 * 1024);
	big[512 * 1024] = '\0';
	memset(&ev, 0, sizeof(ev));
	ev.kind = HOOK_EVENT_PUSH;
	ev.delivery = (char *)"df-2";
	ev.summary = big;	/* more than the log holds */
	it.source = "github";
	it.event = &ev;
	it.jobs = &js;
	it.njobs = 1;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	queue_submit(fx.q, &it, 1, qfx_sub_cb, &s2);
	assert_int_equal(qfx_loop_until(&fx, qfx_sub_done, &s2, 5000), 0);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	assert_int_equal(s2.status[0], QUEUE_ERROR);

	/* Space is back: the same delivery is stored, the store works. */
	queue_submit(fx.q, &it, 1, qfx_sub_cb, &s3);
	assert_int_equal(qfx_loop_until(&fx, qfx_sub_done, &s3, 5000), 0);
	assert_int_equal(s3.status[0], QUEUE_OK);
	assert_int_equal(test_event_count(&fx), 2);
	free(big);
	qfx_teardown(&fx);
}

static void
test_retention(void **state)
{
	struct qfx		 fx;
	struct store		*st;
	struct job_spec		 s = qfx_sync("ok", "r"), s2 = qfx_sync("fail",
	    "r");
	struct store_claim	 c = { .now_ms = util_now_ms() + 1, .max_thread = 4,
	    .max_loop = 4 };
	struct store_finish	 f;
	struct job		**jobs = NULL;
	struct store_job_row	 r;
	size_t			 n = 0, i;
	int64_t			 now = util_now_ms(), day = 86400000LL;
	int64_t			 e_old, e_new, j_old, j_new, deleted;
	int			 dup, absorbed;
	char			 err[256];

	(void)state;
	qfx_setup(&fx);
	st = test_store_open(&fx);
	e_old = test_add_event(st, "github", "old", now - 40 * day, &dup);
	e_new = test_add_event(st, "github", "new", now, &dup);
	j_old = test_add_job(st, &s, e_old, &absorbed);
	j_new = test_add_job(st, &s2, e_new, &absorbed);
	store_sqlite_ops.begin(st, err, sizeof(err));
	assert_int_equal(store_sqlite_ops.claim(st, &c, &jobs, &n, err,
	    sizeof(err)), 0);
	for (i = 0; i < n; i++)
		job_free(jobs[i]);
	free(jobs);
	/* The old job finished 40 days ago. */
	memset(&f, 0, sizeof(f));
	f.job_id = j_old;
	f.state = JOB_SUCCEEDED;
	f.attempts = 1;
	f.started_ms = now - 40 * day;
	f.ended_ms = now - 40 * day;
	f.claim = 1;
	assert_int_equal(store_sqlite_ops.finish(st, &f, err, sizeof(err)), 0);
	store_sqlite_ops.commit(st, err, sizeof(err));

	assert_int_equal(store_sqlite_ops.retention(st, now - 30 * day,
	    now - 7 * day, &deleted, err, sizeof(err)), 0);
	assert_true(deleted >= 4);	/* job, attempt, link, event, delivery */
	assert_int_equal(store_sqlite_ops.get_job(st, j_old, &r, err,
	    sizeof(err)), 0);
	assert_int_equal(store_sqlite_ops.get_job(st, j_new, &r, err,
	    sizeof(err)), 1);
	store_job_row_clear(&r);
	/* The old delivery id is forgotten; the new one is still known. */
	test_add_event(st, "github", "old", now, &dup);
	assert_int_equal(dup, 0);
	test_add_event(st, "github", "new", now, &dup);
	assert_int_equal(dup, 1);
	store_sqlite_ops.close(st);
	qfx_teardown(&fx);
}

static void
test_retry_endpoint_and_admin(void **state)
{
	struct qfx		 fx;
	struct job_spec		 perm = qfx_sync("perm", "r"),
				 q2 = qfx_sync("ok", "x");
	struct qfx_sub		 s, s2;
	struct test_wait_job	 w;
	char			 path[64];
	cJSON			*o, *jobs, *ev;
	int64_t			 id;

	(void)state;
	qfx_setup(&fx);
	qfx_open(&fx, 1);
	memset(&s, 0, sizeof(s));
	memset(&s2, 0, sizeof(s2));
	qfx_submit(&fx, "github", "rt-1", &perm, 1, &s);
	assert_int_equal(qfx_loop_until(&fx, qfx_sub_done, &s, 5000), 0);
	id = s.ids[0][0];
	w = (struct test_wait_job){ &fx, id, JOB_DEAD, 0 };
	assert_int_equal(qfx_loop_until(&fx, test_job_reached, &w, 5000), 0);

	snprintf(path, sizeof(path), "/api/v1/jobs/%lld/retry", (long long)id);
	o = test_admin(&fx, "POST", path, NULL, 200);
	assert_string_equal(cJSON_GetObjectItem(o, "state")->valuestring,
	    "queued");
	assert_int_equal((int64_t)cJSON_GetObjectItem(o, "job")->valuedouble,
	    id);
	cJSON_Delete(o);
	/* It runs again and dies again: two attempts in its log. */
	w = (struct test_wait_job){ &fx, id, JOB_DEAD, 2 };
	assert_int_equal(qfx_loop_until(&fx, test_job_reached, &w, 5000), 0);

	qfx_release = 0;
	o = test_admin(&fx, "POST", "/api/v1/jobs/999999/retry", NULL, 404);
	cJSON_Delete(o);
	o = test_admin(&fx, "GET", "/api/v1/jobs/999999", NULL, 404);
	cJSON_Delete(o);
	o = test_admin(&fx, "GET", "/api/v1/jobs/abc", NULL, 404);
	cJSON_Delete(o);
	o = test_admin(&fx, "GET", path, NULL, 405);
	cJSON_Delete(o);
	o = test_admin(&fx, "GET", "/api/v1/jobs", "state=bogus", 400);
	cJSON_Delete(o);
	o = test_admin(&fx, "GET", "/api/v1/jobs", "kind=bogus", 400);
	cJSON_Delete(o);
	o = test_admin(&fx, "GET", "/api/v1/jobs", "limit=0", 400);
	cJSON_Delete(o);
	o = test_admin(&fx, "GET", "/api/v1/jobs", "limit=1001", 400);
	cJSON_Delete(o);

	/* Manual sync: a job at the branch head (revision null). */
	o = test_admin(&fx, "POST", "/api/v1/apps/ok/sync", NULL, 202);
	assert_true(cJSON_GetObjectItem(o, "job")->valuedouble > 0);
	cJSON_Delete(o);
	o = test_admin(&fx, "POST", "/api/v1/apps/nope/sync", NULL, 404);
	cJSON_Delete(o);
	/* An app without a cluster (Git only) has nothing to sync: 409. */
	fx.apps[0].cluster = NULL;
	o = test_admin(&fx, "POST", "/api/v1/apps/ok/sync", NULL, 409);
	assert_non_null(strstr(cJSON_GetObjectItem(o, "error")->valuestring,
	    "no cluster"));
	cJSON_Delete(o);
	fx.apps[0].cluster = "prod";

	/* Paging: newest first, `next` continues. */
	qfx_submit(&fx, "github", "rt-2", &q2, 1, &s2);
	assert_int_equal(qfx_loop_until(&fx, qfx_sub_done, &s2, 5000), 0);
	o = test_admin(&fx, "GET", "/api/v1/events", "limit=1", 200);
	ev = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "events"), 0);
	assert_string_equal(cJSON_GetObjectItem(ev, "delivery")->valuestring,
	    "rt-2");
	assert_string_equal(cJSON_GetObjectItem(ev, "kind")->valuestring,
	    "push");
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(ev, "jobs")),
	    1);
	assert_true(cJSON_IsNumber(cJSON_GetObjectItem(o, "next")));
	snprintf(path, sizeof(path), "limit=1&after=%d",
	    (int)cJSON_GetObjectItem(o, "next")->valuedouble);
	cJSON_Delete(o);
	o = test_admin(&fx, "GET", "/api/v1/events", path, 200);
	ev = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "events"), 0);
	assert_string_equal(cJSON_GetObjectItem(ev, "delivery")->valuestring,
	    "rt-1");
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(o, "next")));
	cJSON_Delete(o);
	o = test_admin(&fx, "GET", "/api/v1/jobs", "state=dead&app=perm", 200);
	jobs = cJSON_GetObjectItem(o, "jobs");
	assert_int_equal(cJSON_GetArraySize(jobs), 1);
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(jobs, 0),
	    "source")->valuestring, "github");
	cJSON_Delete(o);
	assert_int_equal(admin_api(fx.q, NULL, "GET", "/api/v1/other", NULL,
	    NULL), 0);
	qfx_teardown(&fx);
}

static void
test_no_runner(void **state)
{
	struct qfx		 fx;
	struct job_spec		 n = { .kind = JOB_NOTIFY, .app = "ok",
	    .params = "{}" };
	struct test_wait_job	 w;
	struct store_job_row	 r;
	int64_t			 id;
	char			 err[256];

	(void)state;
	qfx_setup(&fx);
	qfx_open(&fx, 1);
	assert_int_equal(queue_add_jobs(fx.q, &n, 1, &id, err, sizeof(err)), 0);
	w = (struct test_wait_job){ &fx, id, JOB_DEAD, 1 };
	assert_int_equal(qfx_loop_until(&fx, test_job_reached, &w, 5000), 0);
	assert_int_equal(qfx_job(&fx, id, &r), 1);
	assert_string_equal(r.error, "no runner for kind notify");
	store_job_row_clear(&r);
	qfx_teardown(&fx);
}

/* A sync runner that reports the inventory it was given and a new one. */
static char	*test_inv_seen[3];
static int	 test_inv_runs;

static void
test_inv_run(const struct config *cfg, struct job *j, struct job_result *res)
{
	int	 n;

	(void)cfg;
	pthread_mutex_lock(&qfx_mtx);
	n = test_inv_runs++;
	if (n < (int)nitems(test_inv_seen))
		test_inv_seen[n] = j->inventory != NULL ?
		    xstrdup(j->inventory) : NULL;
	pthread_mutex_unlock(&qfx_mtx);
	/* The second run fails after applying: its inventory counts too. */
	if (n == 1)
		job_result_fail(res, JOB_ERR_UNHEALTHY, 1, "unhealthy");
	else {
		res->ok = 1;
		res->revision = xstrdup("r");
	}
	res->inventory = xasprintf("{\"objects\":[],\"run\":%d}", n);
}

static const struct job_runner test_inv_runner = {
	.kind = JOB_SYNC, .run = test_inv_run,
};

static const struct job_runner *
test_find_inv(enum job_kind kind)
{
	return kind == JOB_SYNC ? &test_inv_runner : qfx_find(kind);
}

/*
 * Schema 3 -> 5: a jobs table without leases gets them (and the claim
 * counter) at the next open; a job a schema-3 gitopsd left running (no
 * lease) is taken over.
 */
static void
test_schema_leases(void **state)
{
	struct qfx		 fx;
	struct store		*st;
	struct store_job_row	 r;
	struct job		**jobs = NULL;
	struct store_claim	 c = { .now_ms = util_now_ms(), .max_thread = 4,
				    .owner = "me", .lease_until_ms = 1 };
	sqlite3			*db;
	sqlite3_stmt		*q;
	char			 err[256];
	size_t			 n = 0;
	int			 nq, nd;

	(void)state;
	qfx_setup(&fx);
	assert_int_equal(sqlite3_open(fx.path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE meta(k TEXT PRIMARY"
	    " KEY, v TEXT); INSERT INTO meta VALUES ('schema', '3');"
	    "CREATE TABLE jobs(id INTEGER PRIMARY KEY,"
	    " kind INTEGER NOT NULL, state INTEGER NOT NULL, app TEXT, repo TEXT,"
	    " revision TEXT, image TEXT, tag TEXT, digest TEXT, params TEXT,"
	    " event_id INTEGER, attempts INTEGER NOT NULL DEFAULT 0,"
	    " max_attempts INTEGER NOT NULL, created INTEGER NOT NULL,"
	    " updated INTEGER NOT NULL, not_before INTEGER NOT NULL DEFAULT 0,"
	    " started INTEGER, error TEXT, result TEXT);"
	    "INSERT INTO jobs(id, kind, state, app, max_attempts, created,"
	    " updated, started) VALUES (7, 1, 2, 'ok', 3, 1, 1, 1)",
	    NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	st = test_store_open(&fx);
	assert_int_equal(test_takeover_all(st, &nq, &nd), 0);
	assert_int_equal(nq, 1);
	assert_int_equal(store_sqlite_ops.get_job(st, 7, &r, err,
	    sizeof(err)), 1);
	assert_int_equal(r.state, JOB_QUEUED);
	assert_int_equal(r.attempts, 1);
	store_job_row_clear(&r);
	/* Claimed and finished under a lease in the upgraded table. */
	assert_int_equal(store_sqlite_ops.begin(st, err, sizeof(err)), 0);
	assert_int_equal(store_sqlite_ops.claim(st, &c, &jobs, &n, err,
	    sizeof(err)), 0);
	assert_int_equal(store_sqlite_ops.commit(st, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	test_jobs_free(jobs, n);
	store_sqlite_ops.close(st);

	assert_int_equal(sqlite3_open(fx.path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT lease_owner,"
	    " lease_until, (SELECT v FROM meta WHERE k = 'schema'), claims"
	    " FROM jobs WHERE id = 7", -1, &q, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(q, 0), "me");
	assert_int_equal(sqlite3_column_int64(q, 1), 1);
	assert_string_equal((const char *)sqlite3_column_text(q, 2), "5");
	assert_int_equal(sqlite3_column_int64(q, 3), 1);
	sqlite3_finalize(q);
	sqlite3_close(db);
	qfx_teardown(&fx);
}

/*
 * Inventories: the store ops, the schema 2 -> 3 upgrade, and the queue
 * handing each sync its app's inventory as the previous attempt left it.
 */
static void
test_inventory(void **state)
{
	struct qfx		 fx;
	struct store		*st;
	struct job_spec		 js = qfx_sync("ok", NULL);
	struct qfx_sub		 sub;
	struct test_wait_job	 w;
	sqlite3			*db;
	sqlite3_stmt		*q;
	char			 err[256], *text, dl[16];
	int			 i;

	(void)state;
	qfx_setup(&fx);
	st = test_store_open(&fx);
	assert_int_equal(store_sqlite_ops.inventory_get(st, "ok", &text, err,
	    sizeof(err)), 0);
	assert_null(text);
	assert_int_equal(store_sqlite_ops.inventory_set(st, "ok", "{\"a\":1}",
	    5, err, sizeof(err)), 0);
	assert_int_equal(store_sqlite_ops.inventory_set(st, "ok", "{\"a\":2}",
	    6, err, sizeof(err)), 0);
	assert_int_equal(store_sqlite_ops.inventory_get(st, "ok", &text, err,
	    sizeof(err)), 1);
	assert_string_equal(text, "{\"a\":2}");
	free(text);
	store_sqlite_ops.close(st);

	/* A database of schema 2 gets the table at the next open. */
	assert_int_equal(sqlite3_open(fx.path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "DROP TABLE app_inventory;"
	    "UPDATE meta SET v = '2' WHERE k = 'schema'", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	st = test_store_open(&fx);
	assert_int_equal(store_sqlite_ops.inventory_get(st, "ok", &text, err,
	    sizeof(err)), 0);
	store_sqlite_ops.close(st);
	assert_int_equal(sqlite3_open(fx.path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT v FROM meta WHERE"
	    " k = 'schema'", -1, &q, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(q, 0), "5");
	sqlite3_finalize(q);
	sqlite3_close(db);

	qfx_open(&fx, 1);
	queue_set_runner_find(fx.q, test_find_inv);
	for (i = 0; i < 3; i++) {
		memset(&sub, 0, sizeof(sub));
		snprintf(dl, sizeof(dl), "inv-%d", i);
		qfx_submit(&fx, "github", dl, &js, 1, &sub);
		assert_int_equal(qfx_loop_until(&fx, qfx_sub_done, &sub,
		    5000), 0);
		assert_int_equal(sub.status[0], QUEUE_OK);
		w = (struct test_wait_job){ &fx, sub.ids[0][0],
		    i == 1 ? JOB_DEAD : JOB_SUCCEEDED, 1 };
		assert_int_equal(qfx_loop_until(&fx, test_job_reached, &w,
		    5000), 0);
	}
	pthread_mutex_lock(&qfx_mtx);
	assert_int_equal(test_inv_runs, 3);
	assert_null(test_inv_seen[0]);
	assert_non_null(test_inv_seen[1]);
	assert_string_equal(test_inv_seen[1], "{\"objects\":[],\"run\":0}");
	assert_non_null(test_inv_seen[2]);
	assert_string_equal(test_inv_seen[2], "{\"objects\":[],\"run\":1}");
	for (i = 0; i < 3; i++)
		free(test_inv_seen[i]);
	pthread_mutex_unlock(&qfx_mtx);
	qfx_teardown(&fx);
}

/*
 * Schema 3 -> 4: a database from before the replicas gets their tables and
 * the jobs' lease columns at the next open, its jobs kept.
 */
static void
test_schema_4_upgrade(void **state)
{
	const struct store_ops		*ops = &store_sqlite_ops;
	struct store_replica		 r = { "r1", "h", "v", 1, 1000, 2000 };
	struct store_replica_row	*rows;
	struct qfx			 fx;
	struct store			*st;
	sqlite3				*db;
	char				 err[256];
	size_t				 n;

	(void)state;
	qfx_setup(&fx);
	st = test_store_open(&fx);
	ops->close(st);
	assert_int_equal(sqlite3_open(fx.path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "DROP TABLE replicas;"
	    "DROP TABLE roles; ALTER TABLE jobs DROP COLUMN lease_owner;"
	    "ALTER TABLE jobs DROP COLUMN lease_until;"
	    "INSERT INTO jobs(kind, state, app, max_attempts, created, updated)"
	    " VALUES (1, 2, 'web', 3, 1, 1);"
	    "UPDATE meta SET v = '3' WHERE k = 'schema'", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	st = test_store_open(&fx);
	if (ops->replica_beat(st, &r, 0, err, sizeof(err)) == -1 ||
	    ops->list_replicas(st, &rows, &n, err, sizeof(err)) == -1)
		fail_msg("%s", err);
	assert_int_equal(n, 1);
	assert_int_equal(rows[0].running, 0);
	store_replica_rows_free(rows, n);
	assert_int_equal(ops->role_hold(st, "periodic", "r1", 10, 1, err,
	    sizeof(err)), 1);
	ops->close(st);
	/* Opening again adds nothing twice. */
	st = test_store_open(&fx);
	ops->close(st);
	qfx_teardown(&fx);
}

/* A failed store call is counted in gitopsd_store_errors_total. */
static void
test_store_errors_counted(void **state)
{
	const struct store_ops		*ops = &store_sqlite_ops;
	struct store_replica_row	*rows;
	struct qfx			 fx;
	struct store			*st;
	sqlite3				*db;
	char				 err[256];
	size_t				 n;
	const char			*series =
	    "gitopsd_store_errors_total{backend=\"sqlite\"}";
	double				 before;

	(void)state;
	metrics_init();
	qfx_setup(&fx);
	st = test_store_open(&fx);
	before = test_metric(series);
	if (before < 0)
		before = 0;
	assert_int_equal(sqlite3_open(fx.path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "DROP TABLE replicas", NULL, NULL,
	    NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(ops->list_replicas(st, &rows, &n, err, sizeof(err)),
	    -1);
	assert_true(test_metric(series) == before + 1);
	ops->close(st);
	qfx_teardown(&fx);
	metrics_free();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dedup_store),
		cmocka_unit_test(test_dedup_window),
		cmocka_unit_test(test_dedup_queue_batch_and_restart),
		cmocka_unit_test(test_round_rolled_back_whole),
		cmocka_unit_test(test_backoff_bounds),
		cmocka_unit_test(test_absorb),
		cmocka_unit_test(test_claim_merge_exclusive),
		cmocka_unit_test(test_requeue_on_restart),
		cmocka_unit_test(test_waiting_job),
		cmocka_unit_test(test_status_reports_in_order),
		cmocka_unit_test(test_state_machine),
		cmocka_unit_test(test_back_pressure),
		cmocka_unit_test(test_wal_bounded_under_load),
		cmocka_unit_test(test_writer_checkpoints_alone),
		cmocka_unit_test(test_disk_full),
		cmocka_unit_test(test_retention),
		cmocka_unit_test(test_retry_endpoint_and_admin),
		cmocka_unit_test(test_no_runner),
		cmocka_unit_test(test_inventory),
		cmocka_unit_test(test_schema_4_upgrade),
		cmocka_unit_test(test_store_errors_counted),
		cmocka_unit_test(test_schema_leases),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
