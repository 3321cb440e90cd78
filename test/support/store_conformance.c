/*
 * store_conformance: one cmocka suite run against every backend of
 * struct store_ops (include/store.h), so that the SQLite and PostgreSQL
 * stores keep the same promises: events and dedup, jobs and absorption,
 * the claim rules, finish and retries, app status, alert keys,
 * retention, listing and paging, replicas and roles, copying a whole
 * state.
 *
 * usage: store_conformance [BACKEND...]   (default: every backend)
 *
 * A backend is a row of conf_backends: its ops and how to get a fresh,
 * empty store.  SQLite needs a temporary directory; PostgreSQL needs a
 * server: GITOPSD_TEST_PG_DSN names a database the suite may empty
 * (test/integration/test_store_conformance.py starts a throwaway server).
 * A backend whose server is not given is reported as failed, not skipped:
 * the runner decides what to run.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "job.h"
#include "store.h"
#include "util.h"

struct conf_backend {
	const char		*name;
	const struct store_ops	*ops;
	/* Several connections may write at once (replicas share it). */
	int			 shared;
	/* A fresh empty store's open() argument into target. */
	int			 (*fresh)(char *target, size_t len, char *err,
				    size_t errlen);
};

static const struct conf_backend *conf_cur;
static char	conf_target[512];
static char	conf_dir[64];
static int	conf_seq;
/* The token of each job's latest claim, for finish and renew. */
static struct store_lease conf_tokens[256];
static size_t	conf_ntokens;

static int
conf_fresh_sqlite(char *target, size_t len, char *err, size_t errlen)
{
	if (conf_dir[0] == '\0') {
		snprintf(conf_dir, sizeof(conf_dir), "/tmp/gitopsd-conf-XXXXXX");
		if (mkdtemp(conf_dir) == NULL) {
			snprintf(err, errlen, "mkdtemp failed");
			return -1;
		}
	}
	snprintf(target, len, "%s/state-%d.db", conf_dir, ++conf_seq);
	return 0;
}

/* Removes the SQLite files (database, log, shared memory) and their
 * directory. */
static void
conf_cleanup(void)
{
	static const char *const sfx[] = { "", "-wal", "-shm", "-journal" };
	char	 path[128];
	int	 i;
	size_t	 k;

	if (conf_dir[0] == '\0')
		return;
	for (i = 1; i <= conf_seq; i++)
		for (k = 0; k < nitems(sfx); k++) {
			snprintf(path, sizeof(path), "%s/state-%d.db%s", conf_dir,
			    i, sfx[k]);
			unlink(path);
		}
	if (rmdir(conf_dir) == -1)
		fprintf(stderr, "cannot remove %s\n", conf_dir);
}

/* Empties the database (the whole public schema, tables of any version). */
static int
conf_fresh_pg(char *target, size_t len, char *err, size_t errlen)
{
	const char	*dsn = getenv("GITOPSD_TEST_PG_DSN");
	PGconn		*c;
	PGresult	*r;
	int		 rc = -1;

	if (dsn == NULL || *dsn == '\0') {
		snprintf(err, errlen, "GITOPSD_TEST_PG_DSN is not set");
		return -1;
	}
	c = PQconnectdb(dsn);
	if (PQstatus(c) != CONNECTION_OK) {
		snprintf(err, errlen, "%s", PQerrorMessage(c));
		goto out;
	}
	r = PQexec(c, "SET client_min_messages = warning;"
	    "DROP SCHEMA public CASCADE; CREATE SCHEMA public;");
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		snprintf(err, errlen, "%s", PQresultErrorMessage(r));
	else
		rc = 0;
	PQclear(r);
	snprintf(target, len, "%s", dsn);
out:
	PQfinish(c);
	return rc;
}

static const struct conf_backend conf_backends[] = {
	/* One writing connection per file: the daemon's store thread. */
	{ "sqlite", &store_sqlite_ops, 0, conf_fresh_sqlite },
	{ "postgres", &store_pg_ops, 1, conf_fresh_pg },
};

/* ---- helpers */

#define OPS		(conf_cur->ops)
#define OK(call)	conf_ok((call), err, #call, __LINE__)

static char	err[512];

static void
conf_ok(int rc, const char *e, const char *what, int line)
{
	if (rc != 0)
		fail_msg("line %d: %s = %d: %s", line, what, rc, e);
}

static struct store *
conf_open(void)
{
	struct store	*st;

	st = OPS->open(conf_target, NULL, err, sizeof(err));
	if (st == NULL)
		fail_msg("%s: open: %s", conf_cur->name, err);
	return st;
}

/* A fresh store for each test. */
static int
conf_setup(void **state)
{
	(void)state;
	conf_ntokens = 0;
	if (conf_cur->fresh(conf_target, sizeof(conf_target), err,
	    sizeof(err)) == -1) {
		fprintf(stderr, "%s: fresh store: %s\n", conf_cur->name, err);
		return -1;
	}
	return 0;
}

static int
conf_event(struct store *st, const char *source, const char *delivery,
    int64_t received, int64_t *id)
{
	struct store_event	 ev = { source, delivery, "push", "summary",
				    received };
	int64_t			 eid = 0;
	int			 r;

	OK(OPS->begin(st, err, sizeof(err)));
	r = OPS->add_event(st, &ev, &eid, err, sizeof(err));
	if (r == -1)
		fail_msg("add_event: %s", err);
	OK(OPS->commit(st, err, sizeof(err)));
	if (id != NULL)
		*id = r == 0 ? eid : 0;
	return r;
}

static int64_t
conf_job(struct store *st, enum job_kind kind, const char *app,
    const char *repo, const char *revision, int64_t event_id, int *absorbed)
{
	struct job_spec	 js = { .kind = kind, .app = app, .repo = repo,
			    .revision = revision };
	int64_t		 id = 0;
	int		 ab = 0;

	if (kind == JOB_UPDATE_IMAGE) {
		js.image = "registry.local/web";
		js.tag = "1.0.0";
	}
	OK(OPS->begin(st, err, sizeof(err)));
	OK(OPS->add_job(st, &js, event_id, 3, 1000, &id, &ab, err,
	    sizeof(err)));
	OK(OPS->commit(st, err, sizeof(err)));
	if (absorbed != NULL)
		*absorbed = ab;
	assert_true(id > 0);
	return id;
}

static void
conf_token_set(const struct job *j)
{
	size_t	 i;

	assert_true(j->claim > 0);
	for (i = 0; i < conf_ntokens; i++)
		if (conf_tokens[i].job_id == j->id)
			break;
	if (i == conf_ntokens) {
		assert_true(conf_ntokens < nitems(conf_tokens));
		conf_ntokens++;
	}
	conf_tokens[i].job_id = j->id;
	conf_tokens[i].claim = j->claim;
}

static int64_t
conf_token(int64_t id)
{
	size_t	 i;

	for (i = 0; i < conf_ntokens; i++)
		if (conf_tokens[i].job_id == id)
			return conf_tokens[i].claim;
	return 0;
}

/* Claims in one transaction; returns the count, jobs in *out. */
static size_t
conf_claim_with(struct store *st, const struct store_claim *c,
    struct job ***out)
{
	struct job	**jobs = NULL;
	size_t		 n = 0, i, k;

	OK(OPS->begin(st, err, sizeof(err)));
	OK(OPS->claim(st, c, &jobs, &n, err, sizeof(err)));
	OK(OPS->commit(st, err, sizeof(err)));
	for (i = 0; i < n; i++) {
		conf_token_set(jobs[i]);
		for (k = 0; k < jobs[i]->nmerged; k++)
			conf_token_set(jobs[i]->merged[k]);
	}
	*out = jobs;
	return n;
}

static size_t
conf_claim(struct store *st, int64_t now, int max_thread, int max_loop,
    struct job ***out)
{
	struct store_claim	 c = { .now_ms = now, .max_thread = max_thread,
				    .max_loop = max_loop };

	return conf_claim_with(st, &c, out);
}

static void
conf_jobs_free(struct job **jobs, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		job_free(jobs[i]);
	free(jobs);
}

/* An attempt from started to ended (a waiting job's began earlier). */
static void
conf_finish_from(struct store *st, int64_t id, enum job_state state,
    int attempts, int64_t not_before, int64_t started, int64_t ended,
    const char *error, const char *result)
{
	struct store_finish	 f = { id, state, attempts, not_before,
				    started, ended, error, result, NULL,
				    conf_token(id) };

	OK(OPS->begin(st, err, sizeof(err)));
	OK(OPS->finish(st, &f, err, sizeof(err)));
	OK(OPS->commit(st, err, sizeof(err)));
}

static void
conf_finish(struct store *st, int64_t id, enum job_state state, int attempts,
    int64_t not_before, int64_t ended, const char *error, const char *result)
{
	conf_finish_from(st, id, state, attempts, not_before, ended - 10,
	    ended, error, result);
}

static enum job_state
conf_state(struct store *st, int64_t id)
{
	struct store_job_row	 r;
	enum job_state		 s;

	assert_int_equal(OPS->get_job(st, id, &r, err, sizeof(err)), 1);
	s = r.state;
	store_job_row_clear(&r);
	return s;
}

/* takeover in a transaction of its own; the dead jobs in *dead. */
static int
conf_takeover_dead(struct store *st, int64_t expired, int64_t now, int *nre,
    int *ndead, struct job ***dead)
{
	if (OPS->begin(st, err, sizeof(err)) == -1)
		return -1;
	if (OPS->takeover(st, expired, now, nre, ndead, dead, err,
	    sizeof(err)) == -1) {
		OPS->rollback(st);
		return -1;
	}
	return OPS->commit(st, err, sizeof(err));
}

static int
conf_takeover(struct store *st, int64_t expired, int64_t now, int *nre,
    int *ndead)
{
	return conf_takeover_dead(st, expired, now, nre, ndead, NULL);
}

/* Claims as owner, leased until until. */
static size_t
conf_claim_as(struct store *st, const char *owner, int64_t now,
    int64_t until, int max_thread, struct job ***out)
{
	struct store_claim	 c = { .now_ms = now, .max_thread = max_thread,
				    .owner = owner, .lease_until_ms = until };

	return conf_claim_with(st, &c, out);
}

/* finish as owner under claim: its return (0 done, 1 fenced off). */
static int
conf_finish_claim(struct store *st, const char *owner, int64_t id,
    int64_t claim, enum job_state state, int attempts, int64_t started,
    int64_t ended, const char *result)
{
	struct store_finish	 f = { .job_id = id, .state = state,
				    .attempts = attempts, .started_ms = started,
				    .ended_ms = ended, .result = result,
				    .owner = owner, .claim = claim };
	int			 r;

	if (state == JOB_WAITING)
		f.not_before_ms = ended + 100;
	else if (state != JOB_SUCCEEDED)
		f.error = "failed";
	OK(OPS->begin(st, err, sizeof(err)));
	r = OPS->finish(st, &f, err, sizeof(err));
	if (r == -1)
		fail_msg("finish: %s", err);
	OK(OPS->commit(st, err, sizeof(err)));
	return r;
}

/* finish as owner under the job's latest claim. */
static int
conf_finish_as(struct store *st, const char *owner, int64_t id,
    enum job_state state, int attempts, int64_t started, int64_t ended,
    const char *result)
{
	return conf_finish_claim(st, owner, id, conf_token(id), state,
	    attempts, started, ended, result);
}

static int
conf_renew_leases(struct store *st, const char *owner,
    const struct store_lease *leases, size_t n, int64_t until)
{
	size_t	 renewed = 0;

	OK(OPS->begin(st, err, sizeof(err)));
	OK(OPS->renew(st, owner, leases, n, until, &renewed, err,
	    sizeof(err)));
	OK(OPS->commit(st, err, sizeof(err)));
	return (int)renewed;
}

/* Renew the jobs' latest claims. */
static int
conf_renew(struct store *st, const char *owner, const int64_t *ids,
    size_t n, int64_t until)
{
	struct store_lease	 l[8];
	size_t			 i;

	assert_true(n <= nitems(l));
	for (i = 0; i < n; i++) {
		l[i].job_id = ids[i];
		l[i].claim = conf_token(ids[i]);
	}
	return conf_renew_leases(st, owner, l, n, until);
}

/* An interrupted look at a waiting job's health (its apply began at
 * 2000): waiting again, due now, nothing counted. */
static void
conf_back_to_waiting(struct store *st, int64_t id)
{
	struct store_job_row	 r;

	assert_int_equal(OPS->get_job(st, id, &r, err, sizeof(err)), 1);
	assert_int_equal(r.state, JOB_WAITING);
	assert_int_equal(r.attempts, 0);
	assert_int_equal(r.not_before_ms, 0);
	assert_int_equal(r.started_ms, 2000);
	store_job_row_clear(&r);
}

/* ---- events and dedup */

static void
conf_dedup(void **state)
{
	struct store	*st;
	int64_t		 id, id2, ms;

	(void)state;
	st = conf_open();
	OK(OPS->writer_start(st, 0, err, sizeof(err)));
	assert_int_equal(conf_event(st, "github", "d-1", 5000, &id), 0);
	assert_true(id > 0);
	assert_int_equal(conf_event(st, "github", "d-1", 5001, NULL), 1);
	/* Another source may reuse the id. */
	assert_int_equal(conf_event(st, "gitlab", "d-1", 5002, &id2), 0);
	assert_true(id2 > id);
	assert_int_equal(OPS->event_received(st, id, &ms, err, sizeof(err)), 1);
	assert_int_equal(ms, 5000);
	assert_int_equal(OPS->event_received(st, id2 + 100, &ms, err,
	    sizeof(err)), 0);
	OPS->close(st);

	/* Across a restart, and from another connection. */
	st = conf_open();
	OK(OPS->writer_start(st, 0, err, sizeof(err)));
	assert_int_equal(conf_event(st, "github", "d-1", 6000, NULL), 1);
	assert_int_equal(conf_event(st, "github", "d-2", 6000, NULL), 0);
	OPS->close(st);
}

/* A rolled back transaction and an aborted item leave nothing behind,
 * not even the memory of their delivery ids. */
static void
conf_rollback(void **state)
{
	struct store		*st;
	struct store_event	 ev = { "github", "r-1", "push", "s", 1000 };
	struct store_event	 ev2 = { "github", "r-2", "push", "s", 1000 };
	struct store_event	 ev3 = { "github", "r-3", "push", "s", 1000 };
	struct store_event_row	*rows;
	size_t			 n;
	int64_t			 id, next;

	(void)state;
	st = conf_open();
	OK(OPS->writer_start(st, 0, err, sizeof(err)));
	OK(OPS->begin(st, err, sizeof(err)));
	assert_int_equal(OPS->add_event(st, &ev, &id, err, sizeof(err)), 0);
	OPS->rollback(st);

	OK(OPS->begin(st, err, sizeof(err)));
	OK(OPS->item_begin(st, err, sizeof(err)));
	assert_int_equal(OPS->add_event(st, &ev2, &id, err, sizeof(err)), 0);
	OPS->item_abort(st);
	OK(OPS->item_begin(st, err, sizeof(err)));
	assert_int_equal(OPS->add_event(st, &ev3, &id, err, sizeof(err)), 0);
	OK(OPS->item_end(st, err, sizeof(err)));
	/* The same delivery again in the same transaction. */
	assert_int_equal(OPS->add_event(st, &ev3, &id, err, sizeof(err)), 1);
	OK(OPS->commit(st, err, sizeof(err)));

	OK(OPS->list_events(st, 0, 10, &rows, &n, &next, err, sizeof(err)));
	assert_int_equal(n, 1);
	assert_string_equal(rows[0].delivery, "r-3");
	store_event_rows_free(rows, n);
	assert_int_equal(conf_event(st, "github", "r-1", 2000, NULL), 0);
	assert_int_equal(conf_event(st, "github", "r-2", 2000, NULL), 0);
	assert_int_equal(conf_event(st, "github", "r-3", 2000, NULL), 1);
	OPS->close(st);
}

/* conf_round stores a round as one of deliveries only (see below). */
static int	 conf_whole;

/*
 * One round of deliveries as the queue stores it: add_deliveries where
 * the backend has it, else add_event and add_job one by one, a failure
 * rolling back the whole round (every delivery then status -1).  With
 * conf_whole, add_deliveries_commit where the backend has it (begin and
 * commit in the same call).
 */
static void
conf_round(struct store *st, struct store_delivery *ds, size_t n, int64_t now)
{
	size_t	 i, k;
	int	 absorbed;

	if (conf_whole && OPS->add_deliveries_commit != NULL) {
		OK(OPS->add_deliveries_commit(st, ds, n, now, err,
		    sizeof(err)));
		return;
	}
	OK(OPS->begin(st, err, sizeof(err)));
	if (OPS->add_deliveries != NULL) {
		OK(OPS->add_deliveries(st, ds, n, now, err, sizeof(err)));
		OK(OPS->commit(st, err, sizeof(err)));
		return;
	}
	for (i = 0; i < n; i++) {
		ds[i].added = 0;
		ds[i].status = OPS->add_event(st, &ds[i].ev, &ds[i].event_id,
		    ds[i].err, sizeof(ds[i].err));
		for (k = 0; ds[i].status == 0 && k < ds[i].njobs; k++) {
			if (OPS->add_job(st, &ds[i].jobs[k], ds[i].event_id,
			    ds[i].max_attempts[k], now, &ds[i].job_ids[k],
			    &absorbed, ds[i].err, sizeof(ds[i].err)) == -1)
				ds[i].status = -1;
			else if (!absorbed)
				ds[i].added++;
		}
		if (ds[i].status == -1) {
			OPS->rollback(st);
			for (k = 0; k < n; k++)
				ds[k].status = -1;
			return;
		}
	}
	OK(OPS->commit(st, err, sizeof(err)));
}

static int
conf_has_delivery(struct store *st, const char *delivery)
{
	struct store_event_row	*rows;
	size_t			 n, i;
	int64_t			 next;
	int			 found = 0;

	OK(OPS->list_events(st, 0, 100, &rows, &n, &next, err, sizeof(err)));
	for (i = 0; i < n; i++)
		if (strcmp(rows[i].delivery, delivery) == 0)
			found++;
	store_event_rows_free(rows, n);
	return found;
}

/*
 * A round of deliveries: one repeated from an earlier round and one
 * within the round are duplicates, syncs of one app absorb into the first
 * one's job, a delivery without jobs is stored, and one whose text the
 * store cannot take (not UTF-8: PostgreSQL refuses it) is left out alone,
 * the others stored.  The next rounds store as well (after the failure,
 * and after a round rolled back).
 */
static void
conf_deliveries(void **state)
{
	static const int	 maxa[2] = { 3, 5 };
	struct job_spec		 web[2] = {
		{ .kind = JOB_SYNC, .app = "web", .repo = "apps",
		    .revision = "rev1" },
		{ .kind = JOB_UPDATE_IMAGE, .app = "web", .repo = "apps",
		    .image = "registry.local/web", .tag = "1.0.0" },
	};
	struct job_spec		 web2 = { .kind = JOB_SYNC, .app = "web",
				    .repo = "apps", .revision = "rev2" };
	struct job_spec		 web3 = { .kind = JOB_SYNC, .app = "web",
				    .repo = "apps", .revision = "rev3" };
	struct job_spec		 api1 = { .kind = JOB_SYNC, .app = "api",
				    .repo = "apps", .revision = "a1" };
	struct job_spec		 api2 = { .kind = JOB_SYNC, .app = "api",
				    .repo = "apps", .revision = "a2" };
	const struct {
		const char		*delivery;
		const struct job_spec	*jobs;
		size_t			 njobs;
	} plan[7] = {
		{ "d-1", web, 2 },
		{ "d-0", &web2, 1 },	/* stored before */
		{ "d-2", &web2, 1 },
		{ "d-bad", &api1, 1 },	/* its summary is not UTF-8 */
		{ "d-2", &web3, 1 },	/* again in the round */
		{ "d-3", NULL, 0 },
		{ "d-4", &api2, 1 },
	};
	int64_t			 ids[7][2];
	struct store_delivery	 ds[7], more[1];
	struct store_job_row	 r;
	struct store		*st;
	size_t			 i;
	int64_t			 web_sync;

	(void)state;
	st = conf_open();
	OK(OPS->writer_start(st, 0, err, sizeof(err)));
	assert_int_equal(conf_event(st, "github", "d-0", 900, NULL), 0);
	memset(ds, 0, sizeof(ds));
	memset(ids, 0, sizeof(ids));
	for (i = 0; i < nitems(ds); i++) {
		ds[i].ev = (struct store_event){ "github", NULL, "push",
		    "summary", 1000 + (int64_t)i };
		ds[i].max_attempts = maxa;
		ds[i].job_ids = ids[i];
		ds[i].status = 99;
	}
	for (i = 0; i < nitems(ds); i++) {
		ds[i].ev.delivery = plan[i].delivery;
		ds[i].jobs = plan[i].jobs;
		ds[i].njobs = plan[i].njobs;
	}
	ds[3].ev.summary = "caf\xe9 \xff";
	conf_round(st, ds, nitems(ds), 2000);

	assert_int_equal(ds[0].status, 0);
	assert_true(ds[0].event_id > 0);
	assert_true(ids[0][0] > 0 && ids[0][1] > 0 && ids[0][0] != ids[0][1]);
	assert_int_equal(ds[0].added, 2);
	web_sync = ids[0][0];
	assert_int_equal(ds[1].status, 1);
	assert_int_equal(ds[2].status, 0);
	assert_int_equal(ids[2][0], web_sync);
	assert_int_equal(ds[2].added, 0);
	assert_int_equal(ds[4].status, 1);
	assert_int_equal(ds[5].status, 0);
	assert_true(ds[5].event_id > ds[2].event_id);
	assert_int_equal(ds[6].status, 0);
	/* Stored whole or not at all. */
	assert_true(ds[3].status == 0 || ds[3].status == -1);
	assert_int_equal(conf_has_delivery(st, "d-bad"), ds[3].status == 0);
	if (ds[3].status == 0) {
		assert_int_equal(ds[6].added, 0);
		assert_int_equal(ids[6][0], ids[3][0]);
	} else {
		assert_int_equal(ds[6].added, 1);
		assert_int_equal(OPS->get_job(st, ids[6][0], &r, err,
		    sizeof(err)), 1);
		assert_string_equal(r.revision, "a2");
		assert_int_equal(r.event_id, ds[6].event_id);
		store_job_row_clear(&r);
	}
	assert_int_equal(conf_has_delivery(st, "d-0"), 1);
	assert_int_equal(conf_has_delivery(st, "d-2"), 1);
	assert_int_equal(conf_has_delivery(st, "d-3"), 1);

	assert_int_equal(OPS->get_job(st, web_sync, &r, err, sizeof(err)), 1);
	assert_string_equal(r.revision, "rev2");
	assert_int_equal(r.event_id, ds[0].event_id);
	assert_int_equal(r.max_attempts, 3);
	store_job_row_clear(&r);
	assert_int_equal(OPS->get_job(st, ids[0][1], &r, err, sizeof(err)), 1);
	assert_int_equal(r.kind, JOB_UPDATE_IMAGE);
	assert_string_equal(r.tag, "1.0.0");
	assert_int_equal(r.max_attempts, 5);
	store_job_row_clear(&r);

	/* A round rolled back stores nothing; the next one stores. */
	memset(more, 0, sizeof(more));
	more[0].ev = (struct store_event){ "github", "d-5", "push", "s", 3000 };
	more[0].jobs = &web3;
	more[0].njobs = 1;
	more[0].max_attempts = maxa;
	more[0].job_ids = ids[0];
	if (OPS->add_deliveries != NULL) {
		OK(OPS->begin(st, err, sizeof(err)));
		OK(OPS->add_deliveries(st, more, 1, 3000, err, sizeof(err)));
		assert_int_equal(more[0].status, 0);
		OPS->rollback(st);
		assert_int_equal(conf_has_delivery(st, "d-5"), 0);
	}
	conf_round(st, more, 1, 3000);
	assert_int_equal(more[0].status, 0);
	assert_int_equal(ids[0][0], web_sync);
	more[0].ev.delivery = "d-6";
	conf_round(st, more, 1, 3001);
	assert_int_equal(more[0].status, 0);
	assert_int_equal(OPS->get_job(st, web_sync, &r, err, sizeof(err)), 1);
	assert_string_equal(r.revision, "rev3");
	store_job_row_clear(&r);
	assert_int_equal(conf_has_delivery(st, "d-5"), 1);
	assert_int_equal(conf_has_delivery(st, "d-6"), 1);
	OPS->close(st);
}

/*
 * The same rounds, each in one exchange where the backend can (begin,
 * the deliveries and commit together): stored and committed alike, the
 * delivery it cannot take left out alone by the one-by-one fallback in
 * the same transaction; a round rolled back still stores nothing.
 */
static void
conf_deliveries_whole(void **state)
{
	conf_whole = 1;
	conf_deliveries(state);
	conf_whole = 0;
}

/* The event row of delivery in rows, or NULL. */
static const struct store_event_row *
conf_event_row(const struct store_event_row *rows, size_t n,
    const char *delivery)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (strcmp(rows[i].delivery, delivery) == 0)
			return &rows[i];
	return NULL;
}

/* 1 when the event row links job_id. */
static int
conf_links(const struct store_event_row *row, int64_t job_id)
{
	size_t	 i;

	for (i = 0; row != NULL && i < row->njob_ids; i++)
		if (row->job_ids[i] == job_id)
			return 1;
	return 0;
}

/*
 * A round every delivery of which the backend can take in one go (no bad
 * bytes): duplicates within it and against earlier rounds, an app's
 * first sync of the round absorbing the later ones (the last revision
 * wins), an app's sync queued before absorbing the round's, and every
 * event linked to the jobs it made or fed.
 */
static void
conf_deliveries_set(void **state)
{
	static const int	 maxa[2] = { 3, 5 };
	struct job_spec		 s1[2] = {
		{ .kind = JOB_SYNC, .app = "web", .repo = "apps",
		    .revision = "w1" },
		{ .kind = JOB_UPDATE_IMAGE, .app = "web", .repo = "apps",
		    .image = "registry.local/web", .tag = "2.0.0" },
	};
	struct job_spec		 s2[2] = {
		{ .kind = JOB_SYNC, .app = "web", .repo = "apps",
		    .revision = "w2" },
		{ .kind = JOB_SYNC, .app = "api", .repo = "apps",
		    .revision = "a1" },
	};
	struct job_spec		 s4[2] = {
		{ .kind = JOB_SYNC, .app = "api", .repo = "apps",
		    .revision = "a2" },
		{ .kind = JOB_SYNC, .app = "web", .repo = "apps",
		    .revision = "w3" },
	};
	struct job_spec		 dup = { .kind = JOB_SYNC, .app = "web",
				    .repo = "apps", .revision = "wx" };
	const struct {
		const char		*delivery;
		const struct job_spec	*jobs;
		size_t			 njobs;
	} plan[6] = {
		{ "s-1", s1, 2 },
		{ "s-0", &dup, 1 },	/* stored before */
		{ "s-2", s2, 2 },
		{ "s-1", &dup, 1 },	/* again in the round */
		{ "s-3", NULL, 0 },
		{ "s-4", s4, 2 },
	};
	int64_t			 ids[6][2], api, web, next;
	struct store_delivery	 ds[6];
	struct store_job_row	 r;
	struct store_event_row	*rows;
	const struct store_event_row *row;
	struct store		*st;
	size_t			 i, n;
	int			 ab;

	(void)state;
	st = conf_open();
	OK(OPS->writer_start(st, 0, err, sizeof(err)));
	assert_int_equal(conf_event(st, "github", "s-0", 900, NULL), 0);
	api = conf_job(st, JOB_SYNC, "api", "apps", "a0", 0, &ab);
	assert_int_equal(ab, 0);
	memset(ds, 0, sizeof(ds));
	memset(ids, 0, sizeof(ids));
	for (i = 0; i < nitems(ds); i++) {
		ds[i].ev = (struct store_event){ "github", plan[i].delivery,
		    "push", "summary", 1000 + (int64_t)i };
		ds[i].jobs = plan[i].jobs;
		ds[i].njobs = plan[i].njobs;
		ds[i].max_attempts = maxa;
		ds[i].job_ids = ids[i];
		ds[i].status = 99;
	}
	conf_round(st, ds, nitems(ds), 2000);

	assert_int_equal(ds[0].status, 0);
	assert_int_equal(ds[0].added, 2);
	web = ids[0][0];
	assert_true(web > api && ids[0][1] > web);
	assert_int_equal(ds[1].status, 1);
	assert_int_equal(ds[2].status, 0);
	assert_int_equal(ds[2].added, 0);
	assert_int_equal(ids[2][0], web);
	assert_int_equal(ids[2][1], api);
	assert_int_equal(ds[3].status, 1);
	assert_int_equal(ds[4].status, 0);
	assert_int_equal(ds[4].added, 0);
	assert_int_equal(ds[5].status, 0);
	assert_int_equal(ds[5].added, 0);
	assert_int_equal(ids[5][0], api);
	assert_int_equal(ids[5][1], web);
	assert_true(ds[0].event_id < ds[2].event_id &&
	    ds[2].event_id < ds[4].event_id &&
	    ds[4].event_id < ds[5].event_id);

	assert_int_equal(OPS->get_job(st, web, &r, err, sizeof(err)), 1);
	assert_string_equal(r.revision, "w3");
	assert_int_equal(r.event_id, ds[0].event_id);
	assert_int_equal(r.max_attempts, 3);
	assert_int_equal(r.state, JOB_QUEUED);
	store_job_row_clear(&r);
	assert_int_equal(OPS->get_job(st, ids[0][1], &r, err, sizeof(err)), 1);
	assert_int_equal(r.kind, JOB_UPDATE_IMAGE);
	assert_string_equal(r.tag, "2.0.0");
	assert_int_equal(r.max_attempts, 5);
	store_job_row_clear(&r);
	assert_int_equal(OPS->get_job(st, api, &r, err, sizeof(err)), 1);
	assert_string_equal(r.revision, "a2");
	assert_int_equal(r.event_id, 0);
	store_job_row_clear(&r);

	OK(OPS->list_events(st, 0, 10, &rows, &n, &next, err, sizeof(err)));
	assert_int_equal(n, 5);	/* s-0 .. s-4, s-1 once */
	row = conf_event_row(rows, n, "s-1");
	assert_non_null(row);
	assert_int_equal(row->id, ds[0].event_id);
	assert_int_equal(row->njob_ids, 2);
	assert_true(conf_links(row, web) && conf_links(row, ids[0][1]));
	row = conf_event_row(rows, n, "s-2");
	assert_int_equal(row != NULL ? row->njob_ids : 0, 2);
	assert_true(conf_links(row, web) && conf_links(row, api));
	row = conf_event_row(rows, n, "s-3");
	assert_int_equal(row != NULL ? row->njob_ids : 1, 0);
	row = conf_event_row(rows, n, "s-4");
	assert_int_equal(row != NULL ? row->njob_ids : 0, 2);
	assert_true(conf_links(row, web) && conf_links(row, api));
	store_event_rows_free(rows, n);
	OPS->close(st);
}

static void
conf_deliveries_set_whole(void **state)
{
	conf_whole = 1;
	conf_deliveries_set(state);
	conf_whole = 0;
}

/* ---- jobs */

static void
conf_absorb(void **state)
{
	struct store		*st;
	struct store_job_row	 r;
	struct store_event_row	*rows;
	struct job		**jobs;
	size_t			 n;
	int64_t			 e1, e2, a, a2, b, u, next;
	int			 ab;

	(void)state;
	st = conf_open();
	conf_event(st, "github", "e-1", 1000, &e1);
	conf_event(st, "github", "e-2", 1001, &e2);
	a = conf_job(st, JOB_SYNC, "web", "apps", "rev1", e1, &ab);
	assert_int_equal(ab, 0);
	a2 = conf_job(st, JOB_SYNC, "web", "apps", "rev2", e2, &ab);
	assert_int_equal(ab, 1);
	assert_int_equal(a2, a);
	b = conf_job(st, JOB_SYNC, "api", "apps", "rev1", 0, &ab);
	assert_int_equal(ab, 0);
	assert_true(b != a);
	/* Only syncs are absorbed. */
	u = conf_job(st, JOB_UPDATE_IMAGE, "web", "apps", NULL, 0, &ab);
	assert_int_equal(ab, 0);
	assert_true(u != a);

	assert_int_equal(OPS->get_job(st, a, &r, err, sizeof(err)), 1);
	assert_string_equal(r.revision, "rev2");
	assert_int_equal(r.kind, JOB_SYNC);
	assert_int_equal(r.state, JOB_QUEUED);
	assert_int_equal(r.max_attempts, 3);
	assert_int_equal(r.event_id, e1);
	assert_string_equal(r.source, "github");
	assert_string_equal(r.delivery, "e-1");
	store_job_row_clear(&r);
	/* Both events point at the job. */
	OK(OPS->list_events(st, 0, 10, &rows, &n, &next, err, sizeof(err)));
	assert_int_equal(n, 2);
	assert_int_equal(rows[0].njob_ids, 1);
	assert_int_equal(rows[0].job_ids[0], a);
	assert_int_equal(rows[1].njob_ids, 1);
	assert_int_equal(rows[1].job_ids[0], a);
	store_event_rows_free(rows, n);

	/* A running sync absorbs nothing: the next one waits in the queue. */
	n = conf_claim(st, 2000, 4, 0, &jobs);
	assert_int_equal(n, 2);
	conf_jobs_free(jobs, n);
	assert_int_equal(conf_state(st, a), JOB_RUNNING);
	a2 = conf_job(st, JOB_SYNC, "web", "apps", "rev3", 0, &ab);
	assert_int_equal(ab, 0);
	assert_true(a2 != a);
	OPS->close(st);
}

/* Due order, one running sync/update-image per app and one update-image
 * per repository; queued update-images of that repository merge in. */
static void
conf_claim_rules(void **state)
{
	struct store	*st;
	struct job	**jobs;
	size_t		 n;
	int64_t		 s1, s2, s3, u1, u2, u3, n1, n2, due;

	(void)state;
	st = conf_open();
	assert_int_equal(OPS->next_due(st, -1, &due, err, sizeof(err)), 0);
	s1 = conf_job(st, JOB_SYNC, "a", "r1", NULL, 0, NULL);
	s2 = conf_job(st, JOB_SYNC, "b", "r1", NULL, 0, NULL);
	s3 = conf_job(st, JOB_SYNC, "c", "r1", NULL, 0, NULL);

	/* Nothing asked for, nothing taken. */
	n = conf_claim(st, 2000, 0, 0, &jobs);
	assert_int_equal(n, 0);
	free(jobs);
	/* In id order, up to max_thread. */
	n = conf_claim(st, 2000, 2, 0, &jobs);
	assert_int_equal(n, 2);
	assert_int_equal(jobs[0]->id, s1);
	assert_int_equal(jobs[1]->id, s2);
	assert_int_equal(jobs[0]->state, JOB_RUNNING);
	assert_string_equal(jobs[0]->app, "a");
	conf_jobs_free(jobs, n);
	/* s1 failed and waits until 5000: s3 first, then s1 when due. */
	conf_finish(st, s1, JOB_FAILED, 1, 5000, 2100, "boom", NULL);
	assert_int_equal(OPS->next_due(st, -1, &due, err, sizeof(err)), 1);
	assert_int_equal(due, 0);	/* s3 */
	/* Due already (s3) does not hide what comes later. */
	assert_int_equal(OPS->next_due(st, 2100, &due, err, sizeof(err)), 1);
	assert_int_equal(due, 5000);
	n = conf_claim(st, 3000, 4, 0, &jobs);
	assert_int_equal(n, 1);
	assert_int_equal(jobs[0]->id, s3);
	conf_jobs_free(jobs, n);
	assert_int_equal(OPS->next_due(st, 3000, &due, err, sizeof(err)), 1);
	assert_int_equal(due, 5000);
	assert_int_equal(OPS->next_due(st, 5000, &due, err, sizeof(err)), 0);
	n = conf_claim(st, 4999, 4, 0, &jobs);
	assert_int_equal(n, 0);
	free(jobs);
	n = conf_claim(st, 5000, 4, 0, &jobs);
	assert_int_equal(n, 1);
	assert_int_equal(jobs[0]->id, s1);
	assert_int_equal(jobs[0]->attempts, 1);
	conf_jobs_free(jobs, n);

	/* App a is busy (s1 runs): its update-image waits, b's and d's
	 * (one repository) make one run, e's (another) runs beside. */
	u1 = conf_job(st, JOB_UPDATE_IMAGE, "a", "r1", NULL, 0, NULL);
	conf_finish(st, s2, JOB_SUCCEEDED, 1, 0, 5100, NULL, NULL);
	u2 = conf_job(st, JOB_UPDATE_IMAGE, "b", "r1", NULL, 0, NULL);
	u3 = conf_job(st, JOB_UPDATE_IMAGE, "d", "r1", NULL, 0, NULL);
	n1 = conf_job(st, JOB_UPDATE_IMAGE, "e", "r2", NULL, 0, NULL);
	n = conf_claim(st, 6000, 4, 0, &jobs);
	assert_int_equal(n, 2);
	assert_int_equal(jobs[0]->id, u2);
	assert_int_equal(jobs[0]->nmerged, 1);
	assert_int_equal(jobs[0]->merged[0]->id, u3);
	assert_int_equal(jobs[1]->id, n1);
	assert_int_equal(jobs[1]->nmerged, 0);
	conf_jobs_free(jobs, n);
	assert_int_equal(conf_state(st, u3), JOB_RUNNING);
	assert_int_equal(conf_state(st, u1), JOB_QUEUED);
	/* a is free again, but r1 has a running update-image. */
	conf_finish(st, s1, JOB_SUCCEEDED, 2, 0, 6100, NULL, NULL);
	n = conf_claim(st, 6200, 4, 0, &jobs);
	assert_int_equal(n, 0);
	free(jobs);
	conf_finish(st, u2, JOB_SUCCEEDED, 1, 0, 6300, NULL, NULL);
	conf_finish(st, u3, JOB_SUCCEEDED, 1, 0, 6300, NULL, NULL);
	n = conf_claim(st, 6400, 4, 0, &jobs);
	assert_int_equal(n, 1);
	assert_int_equal(jobs[0]->id, u1);
	conf_jobs_free(jobs, n);

	/* Notify jobs: not limited per app, only by max_loop. */
	n1 = conf_job(st, JOB_NOTIFY, "a", NULL, NULL, 0, NULL);
	n2 = conf_job(st, JOB_NOTIFY, "a", NULL, NULL, 0, NULL);
	conf_job(st, JOB_NOTIFY, "a", NULL, NULL, 0, NULL);
	n = conf_claim(st, 7000, 0, 2, &jobs);
	assert_int_equal(n, 2);
	assert_int_equal(jobs[0]->id, n1);
	assert_int_equal(jobs[1]->id, n2);
	assert_int_equal(jobs[0]->kind, JOB_NOTIFY);
	conf_jobs_free(jobs, n);
	OPS->close(st);
}

/* finish records attempts and states; counts follow. */
static void
conf_finish_attempts(void **state)
{
	struct store		*st;
	struct store_job_row	 r;
	struct store_attempt_row *att;
	struct job		**jobs;
	size_t			 n;
	int64_t			 id, pending, counts[JOB_STATE_MAX];

	(void)state;
	st = conf_open();
	id = conf_job(st, JOB_SYNC, "web", "apps", "rev", 0, NULL);
	conf_job(st, JOB_NOTIFY, "web", NULL, NULL, 0, NULL);
	OK(OPS->count_pending(st, &pending, err, sizeof(err)));
	assert_int_equal(pending, 2);
	n = conf_claim(st, 2000, 1, 0, &jobs);
	assert_int_equal(n, 1);
	conf_jobs_free(jobs, n);
	assert_int_equal(OPS->get_job(st, id, &r, err, sizeof(err)), 1);
	assert_int_equal(r.started_ms, 2000);
	store_job_row_clear(&r);
	OK(OPS->count_states(st, counts, err, sizeof(err)));
	assert_int_equal(counts[JOB_QUEUED], 1);
	assert_int_equal(counts[JOB_RUNNING], 1);
	assert_int_equal(counts[0], 1);		/* the notify job */

	conf_finish(st, id, JOB_FAILED, 1, 9000, 2500, "git: timeout", NULL);
	assert_int_equal(OPS->get_job(st, id, &r, err, sizeof(err)), 1);
	assert_int_equal(r.state, JOB_FAILED);
	assert_int_equal(r.attempts, 1);
	assert_int_equal(r.not_before_ms, 9000);
	assert_int_equal(r.updated_ms, 2500);
	assert_int_equal(r.started_ms, 0);
	assert_string_equal(r.error, "git: timeout");
	store_job_row_clear(&r);
	OK(OPS->count_pending(st, &pending, err, sizeof(err)));
	assert_int_equal(pending, 2);
	OK(OPS->count_states(st, counts, err, sizeof(err)));
	assert_int_equal(counts[JOB_FAILED], 1);
	assert_int_equal(counts[JOB_RUNNING], 0);

	n = conf_claim(st, 9000, 1, 0, &jobs);
	assert_int_equal(n, 1);
	conf_jobs_free(jobs, n);
	conf_finish(st, id, JOB_SUCCEEDED, 2, 0, 9500, NULL,
	    "{\"commit\":\"abc\"}");
	assert_int_equal(OPS->get_job(st, id, &r, err, sizeof(err)), 1);
	assert_int_equal(r.state, JOB_SUCCEEDED);
	assert_int_equal(r.attempts, 2);
	assert_null(r.error);
	assert_string_equal(r.result, "{\"commit\":\"abc\"}");
	store_job_row_clear(&r);

	OK(OPS->list_attempts(st, id, &att, &n, err, sizeof(err)));
	assert_int_equal(n, 2);
	assert_int_equal(att[0].n, 1);
	assert_int_equal(att[0].ok, 0);
	assert_int_equal(att[0].started_ms, 2490);
	assert_int_equal(att[0].ended_ms, 2500);
	assert_string_equal(att[0].error, "git: timeout");
	assert_int_equal(att[1].n, 2);
	assert_int_equal(att[1].ok, 1);
	assert_null(att[1].error);
	store_attempt_rows_free(att, n);
	OPS->close(st);
}

/*
 * A sync that waits for health (JOB_WAITING): not an attempt (no attempts
 * row, attempts unchanged), due again at not_before, its start and result
 * kept.  It holds its app: only it may run there, and no merge takes the
 * app; at its time it is claimed with its wait state.  An interrupted look
 * goes back to waiting, due at once, with nothing counted.
 */
static void
conf_waiting(void **state)
{
	struct store		*st;
	struct store_job_row	 r, *rows;
	struct store_attempt_row *att;
	struct store_job_filter	 lf;
	struct job		**jobs;
	size_t			 n;
	int64_t			 w, q, ua, uw, due, pending, next;
	int64_t			 counts[JOB_STATE_MAX];
	int			 ab, nre, ndead;
	const char		*result = "{\"detail\":{\"health\":"
				    "\"Progressing\"},\"wait\":{\"x\":1}}";

	(void)state;
	st = conf_open();
	w = conf_job(st, JOB_SYNC, "web", "apps", "rev", 0, NULL);
	n = conf_claim(st, 2000, 1, 0, &jobs);
	assert_int_equal(n, 1);
	assert_null(jobs[0]->wait);
	conf_jobs_free(jobs, n);

	conf_finish_from(st, w, JOB_WAITING, 0, 2600, 2000, 2100, NULL, result);
	assert_int_equal(OPS->get_job(st, w, &r, err, sizeof(err)), 1);
	assert_int_equal(r.state, JOB_WAITING);
	assert_int_equal(r.attempts, 0);
	assert_int_equal(r.not_before_ms, 2600);
	assert_int_equal(r.started_ms, 2000);
	assert_int_equal(r.updated_ms, 2100);
	assert_null(r.error);
	assert_string_equal(r.result, result);
	store_job_row_clear(&r);
	OK(OPS->list_attempts(st, w, &att, &n, err, sizeof(err)));
	assert_int_equal(n, 0);
	store_attempt_rows_free(att, n);
	memset(&lf, 0, sizeof(lf));
	lf.limit = 10;
	lf.state = JOB_WAITING;
	OK(OPS->list_jobs(st, &lf, &rows, &n, &next, err, sizeof(err)));
	assert_int_equal(n, 1);
	assert_int_equal(rows[0].id, w);
	assert_int_equal(rows[0].started_ms, 2000);
	store_job_rows_free(rows, n);
	/* Counted apart, and not pending (the queue bound). */
	OK(OPS->count_states(st, counts, err, sizeof(err)));
	assert_int_equal(counts[JOB_WAITING], 1);
	assert_int_equal(counts[JOB_RUNNING], 0);
	assert_int_equal(counts[JOB_QUEUED], 0);
	OK(OPS->count_pending(st, &pending, err, sizeof(err)));
	assert_int_equal(pending, 0);

	/*
	 * Its app is held: a new sync is not absorbed into it and does not
	 * run; an update-image of the app neither runs nor joins another
	 * app's run of the same repository.
	 */
	q = conf_job(st, JOB_SYNC, "web", "apps", "rev2", 0, &ab);
	assert_int_equal(ab, 0);
	assert_true(q != w);
	ua = conf_job(st, JOB_UPDATE_IMAGE, "api", "apps", NULL, 0, NULL);
	uw = conf_job(st, JOB_UPDATE_IMAGE, "web", "apps", NULL, 0, NULL);
	n = conf_claim(st, 2200, 4, 0, &jobs);
	assert_int_equal(n, 1);
	assert_int_equal(jobs[0]->id, ua);
	assert_int_equal(jobs[0]->nmerged, 0);
	conf_jobs_free(jobs, n);
	assert_int_equal(conf_state(st, q), JOB_QUEUED);
	assert_int_equal(conf_state(st, uw), JOB_QUEUED);
	conf_finish(st, ua, JOB_SUCCEEDED, 1, 0, 2300, NULL, NULL);
	/* Held-back jobs due already do not hide the waiting one's time. */
	assert_int_equal(OPS->next_due(st, 2300, &due, err, sizeof(err)), 1);
	assert_int_equal(due, 2600);
	n = conf_claim(st, 2599, 4, 0, &jobs);
	assert_int_equal(n, 0);
	free(jobs);

	/* Due: only the waiting job is claimed for its app, with its wait. */
	n = conf_claim(st, 2600, 4, 0, &jobs);
	assert_int_equal(n, 1);
	assert_int_equal(jobs[0]->id, w);
	assert_int_equal(jobs[0]->state, JOB_RUNNING);
	assert_int_equal(jobs[0]->attempts, 0);
	assert_non_null(jobs[0]->wait);
	assert_string_equal(jobs[0]->wait, "{\"x\":1}");
	assert_int_equal(jobs[0]->started_ms, 2000);
	conf_jobs_free(jobs, n);
	/* The attempt's start stays the apply's. */
	assert_int_equal(OPS->get_job(st, w, &r, err, sizeof(err)), 1);
	assert_int_equal(r.state, JOB_RUNNING);
	assert_int_equal(r.started_ms, 2000);
	store_job_row_clear(&r);
	n = conf_claim(st, 2700, 4, 0, &jobs);
	assert_int_equal(n, 0);
	free(jobs);
	OPS->close(st);

	/* Stopped during the look: back to waiting, due now, not counted. */
	st = conf_open();
	OK(conf_takeover(st, INT64_MAX, 3000, &nre, &ndead));
	assert_int_equal(nre, 1);
	assert_int_equal(ndead, 0);
	conf_back_to_waiting(st, w);
	OK(OPS->list_attempts(st, w, &att, &n, err, sizeof(err)));
	assert_int_equal(n, 0);
	store_attempt_rows_free(att, n);

	/* Looked at again, it ends: one attempt, from the apply. */
	n = conf_claim(st, 3100, 4, 0, &jobs);
	assert_int_equal(n, 1);
	assert_int_equal(jobs[0]->id, w);
	assert_string_equal(jobs[0]->wait, "{\"x\":1}");
	conf_jobs_free(jobs, n);
	conf_finish_from(st, w, JOB_SUCCEEDED, 1, 0, 2000, 3200, NULL,
	    "{\"revision\":\"rev\"}");
	assert_int_equal(OPS->get_job(st, w, &r, err, sizeof(err)), 1);
	assert_int_equal(r.state, JOB_SUCCEEDED);
	assert_int_equal(r.attempts, 1);
	assert_int_equal(r.started_ms, 0);
	store_job_row_clear(&r);
	OK(OPS->list_attempts(st, w, &att, &n, err, sizeof(err)));
	assert_int_equal(n, 1);
	assert_int_equal(att[0].n, 1);
	assert_int_equal(att[0].ok, 1);
	assert_int_equal(att[0].started_ms, 2000);
	assert_int_equal(att[0].ended_ms, 3200);
	store_attempt_rows_free(att, n);
	/* The app is free: the newer sync runs (its update-image after). */
	n = conf_claim(st, 3300, 4, 0, &jobs);
	assert_int_equal(n, 1);
	assert_int_equal(jobs[0]->id, q);
	assert_null(jobs[0]->wait);
	conf_jobs_free(jobs, n);
	OPS->close(st);
}

/* retry_job: a fresh set of attempts for failed and dead jobs only. */
static void
conf_retry(void **state)
{
	struct store		*st;
	struct store_job_row	 r;
	struct job		**jobs;
	size_t			 n;
	int64_t			 id, q;

	(void)state;
	st = conf_open();
	id = conf_job(st, JOB_SYNC, "web", "apps", NULL, 0, NULL);
	q = conf_job(st, JOB_SYNC, "api", "apps", NULL, 0, NULL);
	n = conf_claim(st, 2000, 1, 0, &jobs);
	conf_jobs_free(jobs, n);
	conf_finish(st, id, JOB_DEAD, 3, 0, 2100, "gave up", NULL);

	OK(OPS->begin(st, err, sizeof(err)));
	assert_int_equal(OPS->retry_job(st, id, 3000, err, sizeof(err)), 0);
	assert_int_equal(OPS->retry_job(st, q, 3000, err, sizeof(err)), 1);
	assert_int_equal(OPS->retry_job(st, id + q + 100, 3000, err,
	    sizeof(err)), 2);
	OK(OPS->commit(st, err, sizeof(err)));
	assert_int_equal(OPS->get_job(st, id, &r, err, sizeof(err)), 1);
	assert_int_equal(r.state, JOB_QUEUED);
	assert_int_equal(r.attempts, 3);
	assert_int_equal(r.max_attempts, 6);
	assert_int_equal(r.not_before_ms, 0);
	assert_int_equal(r.updated_ms, 3000);
	store_job_row_clear(&r);
	/* A retried job runs again (q is queued beside it), and the claim
	 * hands over the limit as stored, which the queue ends it against. */
	n = conf_claim(st, 3000, 4, 0, &jobs);
	assert_int_equal(n, 2);
	assert_int_equal(jobs[0]->id == id ? jobs[0]->max_attempts :
	    jobs[1]->max_attempts, 6);
	conf_jobs_free(jobs, n);
	assert_int_equal(conf_state(st, id), JOB_RUNNING);
	OPS->close(st);
}

/* Every lease expired (a SQLite store's start): counted, logged, dead
 * when out of attempts, the dead ones handed back as claimed (their
 * alerts). */
static void
conf_requeue(void **state)
{
	struct store		*st;
	struct store_attempt_row *att;
	struct job		**jobs, **dead = NULL;
	size_t			 n;
	int64_t			 a, b;
	int			 nre, ndead;

	(void)state;
	st = conf_open();
	a = conf_job(st, JOB_SYNC, "web", "apps", NULL, 0, NULL);
	b = conf_job(st, JOB_SYNC, "api", "apps", NULL, 0, NULL);
	n = conf_claim(st, 2000, 4, 0, &jobs);
	assert_int_equal(n, 2);
	conf_jobs_free(jobs, n);
	/* b is on its last attempt. */
	conf_finish(st, b, JOB_FAILED, 2, 0, 2100, "x", NULL);
	n = conf_claim(st, 2200, 4, 0, &jobs);
	assert_int_equal(n, 1);
	conf_jobs_free(jobs, n);
	OPS->close(st);

	st = conf_open();
	OK(conf_takeover_dead(st, INT64_MAX, 3000, &nre, &ndead, &dead));
	assert_int_equal(nre, 1);
	assert_int_equal(ndead, 1);
	assert_non_null(dead);
	assert_int_equal(dead[0]->id, b);
	assert_int_equal(dead[0]->kind, JOB_SYNC);
	assert_string_equal(dead[0]->app, "api");
	assert_int_equal(dead[0]->attempts, 2);
	assert_int_equal(dead[0]->max_attempts, 3);
	conf_jobs_free(dead, 1);
	assert_int_equal(conf_state(st, a), JOB_QUEUED);
	assert_int_equal(conf_state(st, b), JOB_DEAD);
	OK(OPS->list_attempts(st, a, &att, &n, err, sizeof(err)));
	assert_int_equal(n, 1);
	assert_int_equal(att[0].ok, 0);
	assert_string_equal(att[0].error,
	    "interrupted: gitopsd stopped while the job ran");
	store_attempt_rows_free(att, n);
	OPS->close(st);
}

/* ---- leases */

/*
 * A claim leases its jobs (merged ones too) to its owner until the time
 * given; renewal by the owner moves it, by anyone else does nothing; a
 * job is taken over only once its lease has ended.
 */
static void
conf_lease_renew(void **state)
{
	struct store	*st;
	struct job	**jobs;
	size_t		 n;
	int64_t		 ids[3], unknown;
	int		 nre, ndead;

	(void)state;
	st = conf_open();
	ids[0] = conf_job(st, JOB_UPDATE_IMAGE, "web", "r", NULL, 0, NULL);
	ids[1] = conf_job(st, JOB_UPDATE_IMAGE, "api", "r", NULL, 0, NULL);
	n = conf_claim_as(st, "a", 2000, 5000, 4, &jobs);
	assert_int_equal(n, 1);
	assert_int_equal(jobs[0]->nmerged, 1);
	conf_jobs_free(jobs, n);
	/* Not expired yet: nothing moves. */
	OK(conf_takeover(st, 4999, 4000, &nre, &ndead));
	assert_int_equal(nre + ndead, 0);
	/* Renewed by its owner (one unknown id among them), not by another. */
	unknown = ids[1] + 100;
	ids[2] = unknown;
	assert_int_equal(conf_renew(st, "b", ids, 3, 9000), 0);
	assert_int_equal(conf_renew(st, "a", ids, 3, 8000), 2);
	assert_int_equal(conf_renew(st, "a", ids, 0, 8000), 0);
	OK(conf_takeover(st, 7999, 7000, &nre, &ndead));
	assert_int_equal(nre + ndead, 0);
	assert_int_equal(conf_state(st, ids[0]), JOB_RUNNING);
	assert_int_equal(conf_state(st, ids[1]), JOB_RUNNING);
	/* Past the renewed lease: both taken over, the merged one too. */
	OK(conf_takeover(st, 8001, 8001, &nre, &ndead));
	assert_int_equal(nre, 2);
	assert_int_equal(ndead, 0);
	assert_int_equal(conf_state(st, ids[0]), JOB_QUEUED);
	assert_int_equal(conf_state(st, ids[1]), JOB_QUEUED);
	/* A lease that was taken over is not renewed. */
	assert_int_equal(conf_renew(st, "a", ids, 2, 9000), 0);
	OPS->close(st);
}

/* A sync of web claimed by owner "a" at 2000, leased until 3000. */
static int64_t
conf_leased_sync(struct store *a)
{
	struct job	**jobs;
	int64_t		 id;
	size_t		 n;

	id = conf_job(a, JOB_SYNC, "web", "r", "rev", 0, NULL);
	n = conf_claim_as(a, "a", 2000, 3000, 4, &jobs);
	assert_int_equal(n, 1);
	assert_int_equal(jobs[0]->id, id);
	conf_jobs_free(jobs, n);
	return id;
}

/*
 * A replica's lease ends while its job runs: a second connection of
 * another owner takes the job over (the attempt counted as interrupted)
 * and runs it; the first one's late finish is refused and writes
 * nothing, the new owner's is recorded.
 */
static void
conf_lease_takeover(void **state)
{
	struct store		*a, *b;
	struct store_job_row	 r;
	struct store_attempt_row *att;
	struct job		**jobs;
	size_t			 n;
	int64_t			 id;
	int			 nre, ndead;

	(void)state;
	a = conf_open();
	b = conf_open();
	id = conf_leased_sync(a);
	/* b sees a's job running and leased: nothing to claim or take. */
	n = conf_claim_as(b, "b", 2500, 3500, 4, &jobs);
	assert_int_equal(n, 0);
	free(jobs);
	OK(conf_takeover(b, 2500, 2500, &nre, &ndead));
	assert_int_equal(nre + ndead, 0);
	/* a stopped renewing: b takes the job over and runs it. */
	OK(conf_takeover(b, 3500, 3500, &nre, &ndead));
	assert_int_equal(nre, 1);
	assert_int_equal(ndead, 0);
	n = conf_claim_as(b, "b", 3600, 9000, 4, &jobs);
	assert_int_equal(n, 1);
	assert_int_equal(jobs[0]->id, id);
	assert_int_equal(jobs[0]->attempts, 1);
	conf_jobs_free(jobs, n);
	/* a wakes up and finishes: refused, nothing written. */
	assert_int_equal(conf_finish_as(a, "a", id, JOB_SUCCEEDED, 1, 2000,
	    3700, "{\"by\":\"a\"}"), 1);
	assert_int_equal(OPS->get_job(a, id, &r, err, sizeof(err)), 1);
	assert_int_equal(r.state, JOB_RUNNING);
	assert_int_equal(r.attempts, 1);
	assert_null(r.result);
	store_job_row_clear(&r);
	OK(OPS->list_attempts(a, id, &att, &n, err, sizeof(err)));
	assert_int_equal(n, 1);
	assert_string_equal(att[0].error,
	    "interrupted: gitopsd stopped while the job ran");
	store_attempt_rows_free(att, n);
	/* Its lease is b's: a cannot renew it either. */
	assert_int_equal(conf_renew(a, "a", &id, 1, 20000), 0);
	/* b's finish is the one recorded; a second one is refused. */
	assert_int_equal(conf_finish_as(b, "b", id, JOB_SUCCEEDED, 2, 3600,
	    3800, "{\"by\":\"b\"}"), 0);
	assert_int_equal(conf_finish_as(b, "b", id, JOB_FAILED, 3, 3600,
	    3900, NULL), 1);
	assert_int_equal(OPS->get_job(a, id, &r, err, sizeof(err)), 1);
	assert_int_equal(r.state, JOB_SUCCEEDED);
	assert_int_equal(r.attempts, 2);
	assert_string_equal(r.result, "{\"by\":\"b\"}");
	store_job_row_clear(&r);
	OK(OPS->list_attempts(a, id, &att, &n, err, sizeof(err)));
	assert_int_equal(n, 2);
	store_attempt_rows_free(att, n);
	/* Nothing running is left to take over. */
	OK(conf_takeover(a, INT64_MAX, 9999, &nre, &ndead));
	assert_int_equal(nre + ndead, 0);
	OPS->close(b);
	OPS->close(a);
}

/*
 * A lease lost and claimed again by the same owner: each claim has a
 * token of its own, so the first run's late finish and renewal are
 * refused although its owner holds the job again, and the second run's
 * are accepted.
 */
static void
conf_lease_same_owner(void **state)
{
	struct store		*a;
	struct store_job_row	 r;
	struct store_lease	 first, second;
	struct job		**jobs;
	size_t			 n;
	int64_t			 id;
	int			 nre, ndead;

	(void)state;
	a = conf_open();
	id = conf_leased_sync(a);
	first.job_id = id;
	first.claim = conf_token(id);
	/* a was paused past its lease; nobody else came: a takes it back. */
	OK(conf_takeover(a, 3500, 3500, &nre, &ndead));
	assert_int_equal(nre, 1);
	n = conf_claim_as(a, "a", 3600, 9000, 4, &jobs);
	assert_int_equal(n, 1);
	assert_int_equal(jobs[0]->id, id);
	second.job_id = id;
	second.claim = jobs[0]->claim;
	assert_true(second.claim != first.claim);
	conf_jobs_free(jobs, n);
	/* The first run's renewal and finish: same owner, refused. */
	assert_int_equal(conf_renew_leases(a, "a", &first, 1, 20000), 0);
	assert_int_equal(conf_finish_claim(a, "a", id, first.claim,
	    JOB_SUCCEEDED, 1, 2000, 3700, "{\"run\":1}"), 1);
	assert_int_equal(OPS->get_job(a, id, &r, err, sizeof(err)), 1);
	assert_int_equal(r.state, JOB_RUNNING);
	assert_null(r.result);
	store_job_row_clear(&r);
	/* The second run's are accepted. */
	assert_int_equal(conf_renew_leases(a, "a", &second, 1, 20000), 1);
	assert_int_equal(conf_finish_claim(a, "a", id, second.claim,
	    JOB_SUCCEEDED, 2, 3600, 3800, "{\"run\":2}"), 0);
	assert_int_equal(OPS->get_job(a, id, &r, err, sizeof(err)), 1);
	assert_int_equal(r.state, JOB_SUCCEEDED);
	assert_int_equal(r.attempts, 2);
	assert_string_equal(r.result, "{\"run\":2}");
	store_job_row_clear(&r);
	OPS->close(a);
}

/*
 * A waiting job holds no lease (no one runs it); claimed for a look at
 * its health it is leased like any claim, and taken over after that
 * lease it goes back to waiting, due now, nothing counted; the first
 * looker's late finish is refused.
 */
static void
conf_lease_waiting(void **state)
{
	struct store		*a, *b;
	struct job		**jobs;
	size_t			 n;
	int64_t			 id;
	int			 nre, ndead;
	const char		*result = "{\"wait\":{\"x\":1}}";

	(void)state;
	a = conf_open();
	b = conf_open();
	id = conf_leased_sync(a);
	assert_int_equal(conf_finish_as(a, "a", id, JOB_WAITING, 0, 2000, 2100,
	    result), 0);
	/* Waiting, its lease ended with the attempt's run: nothing taken. */
	OK(conf_takeover(b, INT64_MAX, 2150, &nre, &ndead));
	assert_int_equal(nre + ndead, 0);
	assert_int_equal(conf_state(b, id), JOB_WAITING);
	assert_int_equal(conf_renew(a, "a", &id, 1, 9000), 0);
	/* Due (2200): b looks at it, leased until 2500. */
	n = conf_claim_as(b, "b", 2300, 2500, 4, &jobs);
	assert_int_equal(n, 1);
	assert_non_null(jobs[0]->wait);
	conf_jobs_free(jobs, n);
	OK(conf_takeover(a, 2400, 2400, &nre, &ndead));
	assert_int_equal(nre + ndead, 0);
	/* b stops during the look: a takes it back to waiting, due now. */
	OK(conf_takeover(a, 2600, 2600, &nre, &ndead));
	assert_int_equal(nre, 1);
	assert_int_equal(ndead, 0);
	conf_back_to_waiting(a, id);
	/* b's late look is refused; a's is recorded. */
	assert_int_equal(conf_finish_as(b, "b", id, JOB_SUCCEEDED, 1, 2000,
	    2700, NULL), 1);
	n = conf_claim_as(a, "a", 2700, 5000, 4, &jobs);
	assert_int_equal(n, 1);
	conf_jobs_free(jobs, n);
	assert_int_equal(conf_finish_as(a, "a", id, JOB_SUCCEEDED, 1, 2000,
	    2800, NULL), 0);
	assert_int_equal(conf_state(a, id), JOB_SUCCEEDED);
	OPS->close(b);
	OPS->close(a);
}

/*
 * One runner at a time per app and per repository across replicas: a
 * second connection of another owner, claiming after the first one's
 * claim committed, reads its running jobs and leaves their app and
 * repository alone, until the first one's lease ends and is taken over.
 */
static void
conf_lease_exclusive(void **state)
{
	struct store	*a, *b;
	struct job	**jobs;
	size_t		 n;
	int64_t		 sync, img, img2, other, api;
	int		 nre, ndead;

	(void)state;
	a = conf_open();
	b = conf_open();
	sync = conf_job(a, JOB_SYNC, "web", "apps", NULL, 0, NULL);
	img = conf_job(a, JOB_UPDATE_IMAGE, "cart", "r", NULL, 0, NULL);
	n = conf_claim_as(a, "a", 2000, 3000, 4, &jobs);
	assert_int_equal(n, 2);
	conf_jobs_free(jobs, n);
	/* Queued after a's claim: same app, same repository, and others. */
	conf_job(a, JOB_SYNC, "web", "apps", NULL, 0, NULL);
	img2 = conf_job(a, JOB_UPDATE_IMAGE, "shop", "r", NULL, 0, NULL);
	other = conf_job(a, JOB_UPDATE_IMAGE, "shop", "r2", NULL, 0, NULL);
	api = conf_job(a, JOB_SYNC, "api", "apps", NULL, 0, NULL);
	n = conf_claim_as(b, "b", 2100, 3100, 8, &jobs);
	assert_int_equal(n, 2);
	assert_true((jobs[0]->id == other && jobs[1]->id == api) ||
	    (jobs[0]->id == api && jobs[1]->id == other));
	conf_jobs_free(jobs, n);
	assert_int_equal(conf_state(b, img2), JOB_QUEUED);
	/* a dies: b takes over, then runs web and repository r itself. */
	OK(conf_takeover(b, 3050, 3050, &nre, &ndead));
	assert_int_equal(nre, 2);
	n = conf_claim_as(b, "b", 3060, 9000, 8, &jobs);
	assert_int_equal(n, 2);
	assert_true(jobs[0]->id == sync || jobs[1]->id == sync);
	assert_true(jobs[0]->id == img || jobs[1]->id == img);
	conf_jobs_free(jobs, n);
	OPS->close(b);
	OPS->close(a);
}

/* ---- app status and alert keys */

static void
conf_app_status(void **state)
{
	struct store		*st;
	struct store_app_row	 r;
	int64_t			 id;

	(void)state;
	st = conf_open();
	OK(OPS->app_get(st, "web", &r, err, sizeof(err)));
	assert_int_equal(r.found, 0);
	store_app_row_clear(&r);

	id = conf_job(st, JOB_SYNC, "web", "apps", NULL, 0, NULL);
	OK(OPS->begin(st, err, sizeof(err)));
	OK(OPS->app_record(st, "web", JOB_DEAD, id, NULL, NULL, 0,
	    "apply failed", err, sizeof(err)));
	OK(OPS->app_image_set(st, "web", "registry.local/web", "1.0.0",
	    "sha256:aa", err, sizeof(err)));
	OK(OPS->commit(st, err, sizeof(err)));
	OK(OPS->app_get(st, "web", &r, err, sizeof(err)));
	assert_int_equal(r.found, 1);
	assert_int_equal(r.outcome, JOB_DEAD);
	assert_string_equal(r.last_error, "apply failed");
	assert_null(r.revision);
	assert_int_equal(r.last_job_id, id);
	assert_int_equal(r.last_job_kind, JOB_SYNC);
	assert_int_equal(r.last_job_state, JOB_QUEUED);
	assert_int_equal(r.nimages, 1);
	assert_string_equal(r.images[0].tag, "1.0.0");
	store_app_row_clear(&r);

	/* Outcome 0 and NULL keep what is there; a success clears the error. */
	OK(OPS->begin(st, err, sizeof(err)));
	OK(OPS->app_record(st, "web", 0, id, "abc123", "Healthy", 4000, NULL,
	    err, sizeof(err)));
	OK(OPS->commit(st, err, sizeof(err)));
	OK(OPS->app_get(st, "web", &r, err, sizeof(err)));
	assert_int_equal(r.outcome, JOB_DEAD);
	assert_string_equal(r.last_error, "apply failed");
	assert_string_equal(r.revision, "abc123");
	assert_string_equal(r.health, "Healthy");
	assert_int_equal(r.synced_at_ms, 4000);
	store_app_row_clear(&r);
	OK(OPS->begin(st, err, sizeof(err)));
	OK(OPS->app_record(st, "web", JOB_SUCCEEDED, id, NULL, NULL, 0, NULL,
	    err, sizeof(err)));
	/* A NULL tag keeps the tag; the digest follows. */
	OK(OPS->app_image_set(st, "web", "registry.local/web", NULL,
	    "sha256:bb", err, sizeof(err)));
	OK(OPS->app_image_set(st, "web", "registry.local/api", "2.0.0", NULL,
	    err, sizeof(err)));
	OK(OPS->commit(st, err, sizeof(err)));
	OK(OPS->app_get(st, "web", &r, err, sizeof(err)));
	assert_int_equal(r.outcome, JOB_SUCCEEDED);
	assert_null(r.last_error);
	assert_string_equal(r.revision, "abc123");
	assert_int_equal(r.nimages, 2);
	for (size_t i = 0; i < r.nimages; i++)
		if (strcmp(r.images[i].image, "registry.local/web") == 0) {
			assert_string_equal(r.images[i].tag, "1.0.0");
			assert_string_equal(r.images[i].digest, "sha256:bb");
		}
	store_app_row_clear(&r);
	OPS->close(st);
}

static void
conf_notify_key(void **state)
{
	struct store	*st;

	(void)state;
	st = conf_open();
	OK(OPS->begin(st, err, sizeof(err)));
	assert_int_equal(OPS->notify_key(st, "web:dead", 1000, 600, err,
	    sizeof(err)), 0);
	assert_int_equal(OPS->notify_key(st, "web:dead", 1599, 600, err,
	    sizeof(err)), 1);
	assert_int_equal(OPS->notify_key(st, "api:dead", 1599, 600, err,
	    sizeof(err)), 0);
	/* The window runs from the last time the key was planned. */
	assert_int_equal(OPS->notify_key(st, "web:dead", 1600, 600, err,
	    sizeof(err)), 0);
	assert_int_equal(OPS->notify_key(st, "web:dead", 2100, 600, err,
	    sizeof(err)), 1);
	OK(OPS->commit(st, err, sizeof(err)));
	OPS->close(st);
}

/* ---- retention */

/* An app's inventory is kept as given, replaced whole, and rolled back
 * with the transaction that wrote it. */
static void
conf_inventory(void **state)
{
	struct store	*st;
	char		*objects = NULL;

	(void)state;
	st = conf_open();
	assert_int_equal(OPS->inventory_get(st, "web", &objects, err,
	    sizeof(err)), 0);
	assert_null(objects);
	OK(OPS->begin(st, err, sizeof(err)));
	OK(OPS->inventory_set(st, "web", "[{\"kind\":\"ConfigMap\"}]", 1000,
	    err, sizeof(err)));
	OK(OPS->commit(st, err, sizeof(err)));
	OK(OPS->begin(st, err, sizeof(err)));
	OK(OPS->inventory_set(st, "web", "[]", 2000, err, sizeof(err)));
	OPS->rollback(st);
	assert_int_equal(OPS->inventory_get(st, "web", &objects, err,
	    sizeof(err)), 1);
	assert_string_equal(objects, "[{\"kind\":\"ConfigMap\"}]");
	free(objects);
	OK(OPS->begin(st, err, sizeof(err)));
	OK(OPS->inventory_set(st, "web", "[]", 3000, err, sizeof(err)));
	OK(OPS->commit(st, err, sizeof(err)));
	assert_int_equal(OPS->inventory_get(st, "web", &objects, err,
	    sizeof(err)), 1);
	assert_string_equal(objects, "[]");
	free(objects);
	assert_int_equal(OPS->inventory_get(st, "api", &objects, err,
	    sizeof(err)), 0);
	OPS->close(st);
}

static void
conf_retention(void **state)
{
	struct store		*st;
	struct store_attempt_row *att;
	struct store_job_row	 r;
	struct job		**jobs;
	size_t			 n;
	int64_t			 day = 86400000LL, now = 100 * day;
	int64_t			 e_old, e_new, e_lone, old, fresh, queued;
	int64_t			 deleted;

	(void)state;
	st = conf_open();
	conf_event(st, "github", "old", now - 40 * day, &e_old);
	conf_event(st, "github", "lone", now - 40 * day, &e_lone);
	conf_event(st, "github", "new", now - day, &e_new);
	old = conf_job(st, JOB_SYNC, "a", "r", NULL, e_old, NULL);
	fresh = conf_job(st, JOB_SYNC, "b", "r", NULL, e_new, NULL);
	queued = conf_job(st, JOB_SYNC, "c", "r", NULL, 0, NULL);
	n = conf_claim(st, now - 40 * day, 2, 0, &jobs);
	assert_int_equal(n, 2);
	conf_jobs_free(jobs, n);
	conf_finish(st, old, JOB_SUCCEEDED, 1, 0, now - 35 * day, NULL, NULL);
	conf_finish(st, fresh, JOB_DEAD, 1, 0, now - day, "x", NULL);
	OK(OPS->begin(st, err, sizeof(err)));
	assert_int_equal(OPS->notify_key(st, "k-old", now - 40 * day, day, err,
	    sizeof(err)), 0);
	OK(OPS->commit(st, err, sizeof(err)));

	OK(OPS->retention(st, now - 30 * day, now - 7 * day, &deleted, err,
	    sizeof(err)));
	/* The old job, its attempt and link, two events, one key. */
	assert_true(deleted >= 6);
	assert_int_equal(OPS->get_job(st, old, &r, err, sizeof(err)), 0);
	OK(OPS->list_attempts(st, old, &att, &n, err, sizeof(err)));
	assert_int_equal(n, 0);
	free(att);
	assert_int_equal(conf_state(st, fresh), JOB_DEAD);
	assert_int_equal(conf_state(st, queued), JOB_QUEUED);
	int64_t ms;
	assert_int_equal(OPS->event_received(st, e_old, &ms, err,
	    sizeof(err)), 0);
	assert_int_equal(OPS->event_received(st, e_lone, &ms, err,
	    sizeof(err)), 0);
	assert_int_equal(OPS->event_received(st, e_new, &ms, err,
	    sizeof(err)), 1);
	/* The old key may be planned again at once. */
	OK(OPS->begin(st, err, sizeof(err)));
	assert_int_equal(OPS->notify_key(st, "k-old", now - 40 * day + 1, day,
	    err, sizeof(err)), 0);
	OK(OPS->commit(st, err, sizeof(err)));
	/* The kept event's delivery id is still known. */
	assert_int_equal(conf_event(st, "github", "new", now, NULL), 1);
	OPS->close(st);
}

/* ---- listing and paging */

static void
conf_listing(void **state)
{
	struct store		*st;
	struct store_event_row	*ev;
	struct store_job_row	*rows, r;
	struct store_job_filter	 f;
	struct job		**jobs;
	int64_t			 ids[5], jids[6], next;
	size_t			 n, i;
	char			 d[16];

	(void)state;
	st = conf_open();
	for (i = 0; i < 5; i++) {
		snprintf(d, sizeof(d), "l-%zu", i);
		conf_event(st, "github", d, 1000 + (int64_t)i, &ids[i]);
	}
	OK(OPS->list_events(st, 0, 2, &ev, &n, &next, err, sizeof(err)));
	assert_int_equal(n, 2);
	assert_int_equal(ev[0].id, ids[4]);
	assert_int_equal(ev[1].id, ids[3]);
	assert_string_equal(ev[0].delivery, "l-4");
	assert_string_equal(ev[0].kind, "push");
	assert_string_equal(ev[0].summary, "summary");
	assert_int_equal(ev[0].received_ms, 1004);
	assert_int_equal(next, ids[3]);
	store_event_rows_free(ev, n);
	OK(OPS->list_events(st, next, 2, &ev, &n, &next, err, sizeof(err)));
	assert_int_equal(n, 2);
	assert_int_equal(ev[0].id, ids[2]);
	store_event_rows_free(ev, n);
	OK(OPS->list_events(st, next, 2, &ev, &n, &next, err, sizeof(err)));
	assert_int_equal(n, 1);
	assert_int_equal(ev[0].id, ids[0]);
	assert_int_equal(next, 0);
	store_event_rows_free(ev, n);
	assert_int_equal(OPS->list_events(st, 0, 0, &ev, &n, &next, err,
	    sizeof(err)), -1);

	jids[0] = conf_job(st, JOB_SYNC, "web", "r", NULL, ids[0], NULL);
	jids[1] = conf_job(st, JOB_SYNC, "api", "r", NULL, 0, NULL);
	jids[2] = conf_job(st, JOB_UPDATE_IMAGE, "web", "r", NULL, 0, NULL);
	jids[3] = conf_job(st, JOB_NOTIFY, "web", NULL, NULL, 0, NULL);
	jids[4] = conf_job(st, JOB_UPDATE_IMAGE, "api", "r2", NULL, 0, NULL);
	jids[5] = conf_job(st, JOB_NOTIFY, "api", NULL, NULL, 0, NULL);
	n = conf_claim(st, 2000, 1, 0, &jobs);	/* jids[0] runs */
	conf_jobs_free(jobs, n);

	memset(&f, 0, sizeof(f));
	f.limit = 4;
	OK(OPS->list_jobs(st, &f, &rows, &n, &next, err, sizeof(err)));
	assert_int_equal(n, 4);
	assert_int_equal(rows[0].id, jids[5]);
	assert_int_equal(rows[3].id, jids[2]);
	assert_int_equal(next, jids[2]);
	store_job_rows_free(rows, n);
	f.after = next;
	OK(OPS->list_jobs(st, &f, &rows, &n, &next, err, sizeof(err)));
	assert_int_equal(n, 2);
	assert_int_equal(rows[0].id, jids[1]);
	assert_int_equal(rows[1].id, jids[0]);
	assert_int_equal(rows[1].state, JOB_RUNNING);
	assert_int_equal(rows[1].started_ms, 2000);
	assert_string_equal(rows[1].delivery, "l-0");
	assert_int_equal(next, 0);
	store_job_rows_free(rows, n);

	memset(&f, 0, sizeof(f));
	f.limit = 10;
	f.app = "web";
	OK(OPS->list_jobs(st, &f, &rows, &n, &next, err, sizeof(err)));
	assert_int_equal(n, 3);
	store_job_rows_free(rows, n);
	f.kind = JOB_UPDATE_IMAGE;
	OK(OPS->list_jobs(st, &f, &rows, &n, &next, err, sizeof(err)));
	assert_int_equal(n, 1);
	assert_int_equal(rows[0].id, jids[2]);
	assert_string_equal(rows[0].image, "registry.local/web");
	assert_string_equal(rows[0].tag, "1.0.0");
	store_job_rows_free(rows, n);
	f.app = NULL;
	f.kind = 0;
	f.state = JOB_RUNNING;
	OK(OPS->list_jobs(st, &f, &rows, &n, &next, err, sizeof(err)));
	assert_int_equal(n, 1);
	assert_int_equal(rows[0].id, jids[0]);
	store_job_rows_free(rows, n);
	f.state = JOB_QUEUED;
	f.kind = JOB_NOTIFY;
	OK(OPS->list_jobs(st, &f, &rows, &n, &next, err, sizeof(err)));
	assert_int_equal(n, 2);
	store_job_rows_free(rows, n);
	f.limit = 0;
	assert_int_equal(OPS->list_jobs(st, &f, &rows, &n, &next, err,
	    sizeof(err)), -1);

	assert_int_equal(OPS->get_job(st, jids[5] + 100, &r, err,
	    sizeof(err)), 0);
	OPS->close(st);
}

/* ---- two writers at once (replicas), for shared backends */

struct conf_peer {
	struct store		*st;
	struct store_event	 ev;
	int			 claim;		/* else add ev */
	const char		*sync_app;	/* else the above: add a sync */
	int64_t			 job_id;
	int			 absorbed;
	int			 rc, done;
	struct job		**jobs;
	size_t			 njobs;
	char			 err[512];
};

static void *
conf_peer_main(void *arg)
{
	struct conf_peer	*p = arg;
	struct store_claim	 c = { .now_ms = 2000, .max_thread = 4 };
	int64_t			 id;

	p->rc = -1;
	if (OPS->begin(p->st, p->err, sizeof(p->err)) == -1)
		goto out;
	if (p->sync_app != NULL) {
		struct job_spec js = { .kind = JOB_SYNC, .app = p->sync_app,
				       .repo = "r", .revision = "b" };

		p->rc = OPS->add_job(p->st, &js, 0, 3, 2000, &p->job_id,
		    &p->absorbed, p->err, sizeof(p->err));
	} else if (p->claim)
		p->rc = OPS->claim(p->st, &c, &p->jobs, &p->njobs, p->err,
		    sizeof(p->err));
	else
		p->rc = OPS->add_event(p->st, &p->ev, &id, p->err,
		    sizeof(p->err));
	if (p->rc == -1 || OPS->commit(p->st, p->err, sizeof(p->err)) == -1) {
		OPS->rollback(p->st);
		p->rc = -1;
	}
out:
	__atomic_store_n(&p->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

/* Runs p's call on another thread while this one holds its transaction
 * open for a while: the peer must wait for it, then see its outcome. */
static void
conf_peer_run(struct conf_peer *p, struct store *st, int commit)
{
	pthread_t	 t;

	assert_int_equal(pthread_create(&t, NULL, conf_peer_main, p), 0);
	usleep(300000);
	assert_int_equal(__atomic_load_n(&p->done, __ATOMIC_SEQ_CST), 0);
	if (commit)
		OK(OPS->commit(st, err, sizeof(err)));
	else
		OPS->rollback(st);
	assert_int_equal(pthread_join(t, NULL), 0);
}

/* One delivery sent to two replicas at once is stored once: the second
 * insert waits for the first transaction and is a duplicate if it
 * commits, the one stored if it rolls back. */
static void
conf_shared_dedup(void **state)
{
	struct store_event	 ev = { "github", "twice", "push", "s", 1000 };
	struct store_event_row	*rows;
	struct conf_peer	 p;
	struct store		*a, *b;
	int64_t			 id, next;
	size_t			 n;

	(void)state;
	if (!conf_cur->shared)
		skip();
	a = conf_open();
	b = conf_open();
	memset(&p, 0, sizeof(p));
	p.st = b;
	p.ev = ev;
	OK(OPS->begin(a, err, sizeof(err)));
	assert_int_equal(OPS->add_event(a, &ev, &id, err, sizeof(err)), 0);
	conf_peer_run(&p, a, 1);
	assert_int_equal(p.rc, 1);

	ev.delivery = p.ev.delivery = "rolled-back";
	p.done = 0;
	OK(OPS->begin(a, err, sizeof(err)));
	assert_int_equal(OPS->add_event(a, &ev, &id, err, sizeof(err)), 0);
	conf_peer_run(&p, a, 0);
	assert_int_equal(p.rc, 0);

	OK(OPS->list_events(a, 0, 10, &rows, &n, &next, err, sizeof(err)));
	assert_int_equal(n, 2);
	assert_string_equal(rows[0].delivery, "rolled-back");
	assert_string_equal(rows[1].delivery, "twice");
	store_event_rows_free(rows, n);
	OPS->close(b);
	OPS->close(a);
}

/* Two replicas claiming at once keep one running job per app: the second
 * claimer sees the first one's claim, not a free app. */
static void
conf_shared_claim(void **state)
{
	struct store_claim	 c = { .now_ms = 2000, .max_thread = 1 };
	struct conf_peer	 p;
	struct store		*a, *b;
	struct job		**jobs;
	size_t			 n;
	int64_t			 web, img, api;

	(void)state;
	if (!conf_cur->shared)
		skip();
	a = conf_open();
	b = conf_open();
	web = conf_job(a, JOB_SYNC, "web", "r", NULL, 0, NULL);
	img = conf_job(a, JOB_UPDATE_IMAGE, "web", "r", NULL, 0, NULL);
	api = conf_job(a, JOB_SYNC, "api", "r", NULL, 0, NULL);
	memset(&p, 0, sizeof(p));
	p.st = b;
	p.claim = 1;
	OK(OPS->begin(a, err, sizeof(err)));
	OK(OPS->claim(a, &c, &jobs, &n, err, sizeof(err)));
	assert_int_equal(n, 1);
	assert_int_equal(jobs[0]->id, web);
	conf_jobs_free(jobs, n);
	conf_peer_run(&p, a, 1);
	assert_int_equal(p.rc, 0);
	assert_int_equal(p.njobs, 1);
	assert_int_equal(p.jobs[0]->id, api);
	conf_jobs_free(p.jobs, p.njobs);
	assert_int_equal(conf_state(a, img), JOB_QUEUED);
	OPS->close(b);
	OPS->close(a);
}

/* A sync queued through a replica while another replica's open round is
 * absorbing into the app's queued sync does not wait for that round (it
 * may be waiting for this one's locks: a deadlock): it is queued as a
 * sync of its own. */
static void
conf_shared_absorb(void **state)
{
	struct job_spec		 js = { .kind = JOB_SYNC, .app = "web",
				       .repo = "r", .revision = "a" };
	struct conf_peer	 p;
	struct store		*a, *b;
	pthread_t		 t;
	int64_t			 queued, id;
	int			 ab, i;

	(void)state;
	if (!conf_cur->shared)
		skip();
	a = conf_open();
	b = conf_open();
	queued = conf_job(a, JOB_SYNC, "web", "r", NULL, 0, NULL);
	OK(OPS->begin(a, err, sizeof(err)));
	OK(OPS->add_job(a, &js, 0, 3, 1500, &id, &ab, err, sizeof(err)));
	assert_int_equal(ab, 1);
	assert_int_equal(id, queued);
	memset(&p, 0, sizeof(p));
	p.st = b;
	p.sync_app = "web";
	assert_int_equal(pthread_create(&t, NULL, conf_peer_main, &p), 0);
	for (i = 0; i < 200 && !__atomic_load_n(&p.done, __ATOMIC_SEQ_CST);
	    i++)
		usleep(10000);
	/* Ending this round releases a peer that waited: no hang. */
	OK(OPS->commit(a, err, sizeof(err)));
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_true(i < 200);
	assert_int_equal(p.rc, 0);
	assert_int_equal(p.absorbed, 0);
	assert_true(p.job_id > queued);
	assert_int_equal(conf_state(a, p.job_id), JOB_QUEUED);
	OPS->close(b);
	OPS->close(a);
}

/*
 * What a backend runs beside its writer is its own business: a writer
 * committing rounds with its upkeep between them (as the queue's store
 * thread does) while another connection reads, started twice, closes with
 * every commit readable afresh.
 */
static void
conf_writer(void **state)
{
	struct store		*st, *rd;
	struct store_event_row	*rows;
	size_t			 n;
	int64_t			 next;
	char			 d[32];
	int			 i;

	(void)state;
	st = conf_open();
	rd = conf_open();
	OK(OPS->writer_start(st, 0, err, sizeof(err)));
	for (i = 0; i < 40; i++) {
		snprintf(d, sizeof(d), "w-%d", i);
		assert_int_equal(conf_event(st, "github", d, 1000 + i, NULL),
		    0);
		if (OPS->upkeep != NULL)
			OPS->upkeep(st);
		if (i % 10 == 0) {
			OK(OPS->list_events(rd, 0, 5, &rows, &n, &next, err,
			    sizeof(err)));
			assert_int_equal(n, i + 1 < 5 ? i + 1 : 5);
			store_event_rows_free(rows, n);
		}
	}
	/* Again: the dedup window is read anew, nothing starts twice. */
	OK(OPS->writer_start(st, 0, err, sizeof(err)));
	assert_int_equal(conf_event(st, "github", "w-0", 2000, NULL), 1);
	if (OPS->upkeep != NULL)
		OPS->upkeep(st);
	OPS->close(st);
	OPS->close(rd);

	st = conf_open();
	OK(OPS->list_events(st, 0, 100, &rows, &n, &next, err, sizeof(err)));
	assert_int_equal(n, 40);
	store_event_rows_free(rows, n);
	OPS->close(st);
}

static void
conf_beat(struct store *st, const char *id, int64_t started, int64_t hb,
    int64_t forget_before)
{
	struct store_replica	 r = { id, "host-a", "1.2.3", 42, started, hb };

	OK(OPS->replica_beat(st, &r, forget_before, err, sizeof(err)));
}

/* Replicas register and renew their heartbeat from their own connections;
 * running jobs are counted by lease owner; long-gone ones are forgotten;
 * one that leaves is gone with its roles. */
static void
conf_replicas(void **state)
{
	struct store_replica_row	*rows;
	struct store_role_row		*roles;
	struct job			**jobs;
	struct store			*a, *b;
	size_t				 n;
	int64_t				 web, api;

	(void)state;
	a = conf_open();
	b = conf_open();
	OK(OPS->list_replicas(a, &rows, &n, err, sizeof(err)));
	assert_int_equal(n, 0);
	store_replica_rows_free(rows, n);
	conf_beat(a, "r1", 1000, 5000, 0);
	conf_beat(b, "r2", 2000, 6000, 0);
	/* A renewal changes the heartbeat only. */
	conf_beat(a, "r1", 1500, 9000, 0);

	web = conf_job(a, JOB_SYNC, "web", "r", NULL, 0, NULL);
	api = conf_job(a, JOB_SYNC, "api", "r", NULL, 0, NULL);
	assert_int_equal(conf_claim_as(a, "r1", 2000, 60000, 4, &jobs), 2);
	conf_jobs_free(jobs, 2);
	assert_int_equal(conf_finish_as(a, "r1", api, JOB_SUCCEEDED, 1, 2490,
	    2500, NULL), 0);

	OK(OPS->list_replicas(b, &rows, &n, err, sizeof(err)));
	assert_int_equal(n, 2);
	assert_string_equal(rows[0].id, "r1");
	assert_string_equal(rows[0].hostname, "host-a");
	assert_string_equal(rows[0].version, "1.2.3");
	assert_int_equal(rows[0].pid, 42);
	assert_int_equal(rows[0].started_ms, 1000);
	assert_int_equal(rows[0].heartbeat_ms, 9000);
	/* web runs under r1's lease; api has ended. */
	assert_int_equal(rows[0].running, 1);
	assert_string_equal(rows[1].id, "r2");
	assert_int_equal(rows[1].heartbeat_ms, 6000);
	assert_int_equal(rows[1].running, 0);
	store_replica_rows_free(rows, n);
	(void)web;

	/* r2 silent since 6000 is forgotten by r1's beat. */
	conf_beat(a, "r1", 1000, 20000, 7000);
	OK(OPS->list_replicas(b, &rows, &n, err, sizeof(err)));
	assert_int_equal(n, 1);
	assert_string_equal(rows[0].id, "r1");
	store_replica_rows_free(rows, n);

	assert_int_equal(OPS->role_hold(a, "periodic", "r1", 3000, 20000, err,
	    sizeof(err)), 1);
	OK(OPS->replica_leave(a, "r1", err, sizeof(err)));
	OK(OPS->list_replicas(b, &rows, &n, err, sizeof(err)));
	assert_int_equal(n, 0);
	store_replica_rows_free(rows, n);
	OK(OPS->list_roles(b, &roles, &n, err, sizeof(err)));
	assert_int_equal(n, 0);
	store_role_rows_free(roles, n);
	OPS->close(b);
	OPS->close(a);
}

static int
conf_hold(struct store *st, const char *role, const char *owner, int64_t now)
{
	int	 r = OPS->role_hold(st, role, owner, 3000, now, err,
		    sizeof(err));

	if (r == -1)
		fail_msg("role_hold: %s", err);
	return r;
}

struct conf_racer {
	struct store		*st;
	const char		*owner;
	pthread_barrier_t	*go;
	int			 held[20];
	char			 err[512];
};

static void *
conf_racer_main(void *arg)
{
	struct conf_racer	*r = arg;
	char			 role[32];
	int			 i;

	for (i = 0; i < 20; i++) {
		snprintf(role, sizeof(role), "race-%d", i);
		pthread_barrier_wait(r->go);
		r->held[i] = OPS->role_hold(r->st, role, r->owner, 3000, 1000,
		    r->err, sizeof(r->err));
	}
	return NULL;
}

/* A role is held by one replica at a time: renewed by its holder, taken
 * over once its lease has run out, free at once when its holder leaves,
 * and given to exactly one of two replicas asking at the same moment. */
static void
conf_roles(void **state)
{
	struct store_role_row	*roles;
	struct conf_racer	 ra, rb;
	pthread_barrier_t	 go;
	pthread_t		 ta, tb;
	struct store		*a, *b;
	size_t			 n;
	int			 i;

	(void)state;
	a = conf_open();
	b = conf_open();
	assert_int_equal(conf_hold(a, "periodic", "r1", 1000), 1);
	assert_int_equal(conf_hold(b, "periodic", "r2", 2000), 0);
	assert_int_equal(conf_hold(a, "periodic", "r1", 3000), 1);
	/* Renewed until 6000: not yet free at 5999. */
	assert_int_equal(conf_hold(b, "periodic", "r2", 5999), 0);
	assert_int_equal(conf_hold(b, "periodic", "r2", 6000), 1);
	assert_int_equal(conf_hold(a, "periodic", "r1", 6500), 0);
	assert_int_equal(conf_hold(a, "other", "r1", 6500), 1);
	OK(OPS->list_roles(a, &roles, &n, err, sizeof(err)));
	assert_int_equal(n, 2);
	assert_string_equal(roles[0].name, "other");
	assert_string_equal(roles[0].owner, "r1");
	assert_int_equal(roles[0].until_ms, 9500);
	assert_string_equal(roles[1].name, "periodic");
	assert_string_equal(roles[1].owner, "r2");
	assert_int_equal(roles[1].until_ms, 9000);
	store_role_rows_free(roles, n);
	OK(OPS->replica_leave(b, "r2", err, sizeof(err)));
	assert_int_equal(conf_hold(a, "periodic", "r1", 6600), 1);

	memset(&ra, 0, sizeof(ra));
	memset(&rb, 0, sizeof(rb));
	assert_int_equal(pthread_barrier_init(&go, NULL, 2), 0);
	ra.st = a;
	ra.owner = "r1";
	ra.go = &go;
	rb.st = b;
	rb.owner = "r2";
	rb.go = &go;
	assert_int_equal(pthread_create(&ta, NULL, conf_racer_main, &ra), 0);
	assert_int_equal(pthread_create(&tb, NULL, conf_racer_main, &rb), 0);
	assert_int_equal(pthread_join(ta, NULL), 0);
	assert_int_equal(pthread_join(tb, NULL), 0);
	pthread_barrier_destroy(&go);
	for (i = 0; i < 20; i++) {
		if (ra.held[i] == -1 || rb.held[i] == -1)
			fail_msg("race %d: %s%s", i, ra.err, rb.err);
		assert_int_equal(ra.held[i] + rb.held[i], 1);
	}
	OPS->close(b);
	OPS->close(a);
}

/* ---- copying a whole state (rows_each, row_put: daemon/copystate.c) */

struct conf_rows {
	const struct store_ops	*ops;		/* row_put into to, or NULL */
	struct store		*to;
	enum store_table	 table;
	struct buf		 text;		/* every row, as text */
	int64_t			 n;
};

static int
conf_rows_cb(void *arg, const char *const *vals, char *e, size_t elen)
{
	struct conf_rows	*c = arg;
	int64_t			 kept = 0;
	int			 i;

	for (i = 0; i < store_tables[c->table].ncols; i++)
		buf_printf(&c->text, "%s%s", i > 0 ? "|" : "",
		    vals[i] != NULL ? vals[i] : "<null>");
	buf_addstr(&c->text, "\n");
	c->n++;
	if (c->ops != NULL &&
	    c->ops->row_put(c->to, c->table, vals, &kept, e, elen) != 0)
		return -1;
	return 0;
}

/*
 * Every row of from, as text (the caller frees it); copied into to (with
 * tops, in one transaction) when to is not NULL.
 */
static char *
conf_rows(const struct store_ops *fops, struct store *from,
    const struct store_ops *tops, struct store *to)
{
	struct conf_rows	 c;
	int64_t			 n;
	int			 t;

	memset(&c, 0, sizeof(c));
	buf_init(&c.text, 0);
	c.ops = tops;
	c.to = to;
	if (to != NULL)
		OK(tops->begin(to, err, sizeof(err)));
	for (t = 0; t < STORE_T_MAX; t++) {
		c.table = t;
		c.n = 0;
		buf_printf(&c.text, "%s:\n", store_tables[t].name);
		OK(fops->rows_each(from, t, conf_rows_cb, &c, err,
		    sizeof(err)));
		OK(fops->rows_count(from, t, &n, err, sizeof(err)));
		assert_int_equal(n, c.n);
	}
	if (to != NULL) {
		OK(tops->rows_done(to, err, sizeof(err)));
		OK(tops->commit(to, err, sizeof(err)));
	}
	return buf_steal(&c.text, NULL);
}

/*
 * A state with a row in every table goes out into an SQLite file and back
 * into a fresh store of the backend, ids and all: the same rows, the old
 * delivery ids still duplicates, new ids past the copied ones.
 */
static void
conf_copy(void **state)
{
	struct store	*st, *mid;
	struct job	**jobs;
	char		 mid_path[512], *before, *after, *again;
	int64_t		 ev, a, b, c, n;
	int		 absorbed;

	(void)state;
	st = conf_open();
	OK(OPS->writer_start(st, 0, err, sizeof(err)));
	assert_int_equal(conf_event(st, "github", "d-1", 5000, &ev), 0);
	a = conf_job(st, JOB_SYNC, "web", "deploy", "abc", ev, NULL);
	b = conf_job(st, JOB_UPDATE_IMAGE, "api", "deploy", NULL, ev, NULL);
	c = conf_job(st, JOB_NOTIFY, "web", NULL, NULL, 0, NULL);
	/* An attempt is recorded for a job its runner claimed. */
	assert_int_equal(conf_claim(st, 5500, 4, 0, &jobs), 2);
	conf_jobs_free(jobs, 2);
	conf_finish(st, a, JOB_SUCCEEDED, 1, 0, 6000, NULL,
	    "{\"revision\":\"abc\"}");
	conf_finish(st, b, JOB_DEAD, 1, 0, 6100, "push: rejected", NULL);
	OK(OPS->begin(st, err, sizeof(err)));
	OK(OPS->app_record(st, "web", JOB_SUCCEEDED, a, "abc", "Healthy",
	    6000, NULL, err, sizeof(err)));
	OK(OPS->app_image_set(st, "api", "registry.local/api", "1.2.3",
	    "sha256:00", err, sizeof(err)));
	OK(OPS->inventory_set(st, "web", "[{\"kind\":\"ConfigMap\"}]", 6000,
	    err, sizeof(err)));
	assert_int_equal(OPS->notify_key(st, "web:failure", 6000, 1000, err,
	    sizeof(err)), 0);
	OK(OPS->commit(st, err, sizeof(err)));
	before = conf_rows(OPS, st, NULL, NULL);
	OPS->close(st);

	/* Out into SQLite, then back into an empty store of the backend. */
	OK(conf_fresh_sqlite(mid_path, sizeof(mid_path), err, sizeof(err)));
	if ((mid = store_sqlite_ops.open(mid_path, NULL, err,
	    sizeof(err))) == NULL)
		fail_msg("open %s: %s", mid_path, err);
	free(conf_rows(OPS, st = conf_open(), &store_sqlite_ops, mid));
	OPS->close(st);
	OK(conf_cur->fresh(conf_target, sizeof(conf_target), err,
	    sizeof(err)));
	st = conf_open();
	OK(OPS->rows_count(st, STORE_T_JOBS, &n, err, sizeof(err)));
	assert_int_equal(n, 0);
	again = conf_rows(&store_sqlite_ops, mid, OPS, st);
	after = conf_rows(OPS, st, NULL, NULL);
	assert_string_equal(after, before);
	assert_string_equal(again, before);
	store_sqlite_ops.close(mid);

	OK(OPS->writer_start(st, 0, err, sizeof(err)));
	assert_int_equal(conf_event(st, "github", "d-1", 7000, NULL), 1);
	assert_true(conf_event(st, "github", "d-2", 7000, &ev) == 0 &&
	    ev > 1);
	assert_true(conf_job(st, JOB_SYNC, "other", "deploy", "def", ev,
	    &absorbed) > c);
	assert_int_equal(conf_state(st, b), JOB_DEAD);
	OPS->close(st);
	free(before);
	free(after);
	free(again);
}

#define T(f)	cmocka_unit_test_setup(f, conf_setup)

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		T(conf_dedup),
		T(conf_rollback),
		T(conf_deliveries),
		T(conf_deliveries_whole),
		T(conf_deliveries_set),
		T(conf_deliveries_set_whole),
		T(conf_absorb),
		T(conf_claim_rules),
		T(conf_finish_attempts),
		T(conf_retry),
		T(conf_requeue),
		T(conf_waiting),
		T(conf_lease_renew),
		T(conf_lease_takeover),
		T(conf_lease_same_owner),
		T(conf_lease_waiting),
		T(conf_lease_exclusive),
		T(conf_app_status),
		T(conf_notify_key),
		T(conf_inventory),
		T(conf_retention),
		T(conf_listing),
		T(conf_writer),
		T(conf_copy),
		T(conf_shared_dedup),
		T(conf_shared_claim),
		T(conf_replicas),
		T(conf_roles),
		T(conf_shared_absorb),
	};
	size_t		 i;
	int		 a, fails = 0, ran = 0;

	for (i = 0; i < nitems(conf_backends); i++) {
		int want = argc < 2;

		for (a = 1; a < argc; a++)
			if (strcmp(argv[a], conf_backends[i].name) == 0)
				want = 1;
		if (!want)
			continue;
		conf_cur = &conf_backends[i];
		ran++;
		fails += _cmocka_run_group_tests(conf_cur->name, tests,
		    nitems(tests), NULL, NULL);
	}
	conf_cleanup();
	if (ran == 0) {
		fprintf(stderr, "usage: store_conformance [sqlite|postgres]...\n");
		return 2;
	}
	return fails == 0 ? 0 : 1;
}
