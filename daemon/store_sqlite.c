/*
 * store_sqlite.c: the state store on SQLite (include/store.h).
 *
 * WAL mode with synchronous=FULL: a commit returns only once the log is on
 * disk.  Automatic checkpoints are off (wal_autocheckpoint=0) so that no
 * commit on the hot path pays for one; the writer's checkpointer copies the
 * log back instead (see struct store_sqlite_ckpt).  Statements are prepared
 * once per connection and kept.  Job states and kinds are stored as their
 * enum numbers.
 *
 * Repeated deliveries are found through an in-memory set of the delivery
 * ids of the dedup window (include/seen.h), rebuilt from the events table
 * at start (writer_start), not through an index on disk: such an index
 * is keyed by random ids, so every delivery of a group commit wrote a page
 * of its own (10-12 of the 18 pages a round of 12 deliveries wrote).  The
 * events themselves are the durable record; retention keeps each event at
 * least as long as its delivery id is remembered.
 */
#include <sys/statvfs.h>

#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "job.h"
#include "log.h"
#include "metrics.h"
#include "seen.h"
#include "store.h"
#include "util.h"

#define STORE_SQLITE_BUSY_MS	10000
#define STORE_SQLITE_CKPT_PAGES	4096		/* 16 MB of 4 KiB pages */
#define STORE_SQLITE_CKPT_IDLE_MS	1000

/*
 * What a waiting job left to check: the "wait" member of its result
 * (daemon/queue.c writes it).  Only a waiting job's result has one: every
 * other finish replaces the result.  CASE, not AND: json_extract fails the
 * whole statement on a result that is not JSON.
 */
#define STORE_SQLITE_WAIT_OF(col) \
	"CASE WHEN json_valid(" col ") THEN json_extract(" col ", '$.wait')" \
	" END"
#define STORE_SQLITE_WAIT_COL \
	"CASE WHEN j.state = 6 THEN " STORE_SQLITE_WAIT_OF("j.result") " END"

enum st_stmt {
	ST_EVENT_KEY,
	ST_SEEN_LOAD,
	ST_ADD_EVENT,
	ST_FIND_SYNC,
	ST_ABSORB,
	ST_ADD_JOB,
	ST_LINK,
	ST_COUNT_PENDING,
	ST_COUNT_STATES,
	ST_NEXT_DUE,
	ST_BUSY,
	ST_CANDIDATES,
	ST_MERGE_CANDS,
	ST_MARK_RUNNING,
	ST_RENEW,
	ST_FINISH,
	ST_ATTEMPT,
	ST_APP_UPSERT,
	ST_APP_IMAGE,
	ST_NOTIFY_GET,
	ST_NOTIFY_PUT,
	ST_EVENT_RECEIVED,
	ST_APP_GET,
	ST_APP_IMAGES,
	ST_INV_GET,
	ST_INV_PUT,
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_SAVEPOINT,
	ST_RELEASE,
	ST_ROLLBACK_TO,
	ST_MAX
};

static const char *const store_sqlite_sql[ST_MAX] = {
	[ST_EVENT_KEY] = "SELECT source, delivery FROM events WHERE id = ?1",
	[ST_SEEN_LOAD] = "SELECT id, source, delivery, received FROM events"
	    " WHERE received >= ?1",
	[ST_ADD_EVENT] = "INSERT INTO events(source, delivery, received, kind,"
	    " summary) VALUES (?1, ?2, ?3, ?4, ?5)",
	[ST_FIND_SYNC] = "SELECT id FROM jobs WHERE app = ?1 AND kind = 1"
	    " AND state = 1 ORDER BY id LIMIT 1",
	[ST_ABSORB] = "UPDATE jobs SET revision = ?2, updated = ?3 WHERE id = ?1",
	[ST_ADD_JOB] = "INSERT INTO jobs(kind, state, app, repo, revision, image,"
	    " tag, digest, params, event_id, attempts, max_attempts, created,"
	    " updated, not_before) VALUES (?1, 1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,"
	    " 0, ?10, ?11, ?11, 0)",
	[ST_LINK] = "INSERT OR IGNORE INTO event_jobs(event_id, job_id)"
	    " VALUES (?1, ?2)",
	[ST_COUNT_PENDING] = "SELECT count(*) FROM jobs WHERE state IN (1, 4)",
	/* Index range counts; succeeded jobs (the bulk) are not counted. */
	[ST_COUNT_STATES] = "SELECT 1, count(*) FROM jobs WHERE state = 1"
	    " UNION ALL SELECT 2, count(*) FROM jobs WHERE state = 2"
	    " UNION ALL SELECT 4, count(*) FROM jobs WHERE state = 4"
	    " UNION ALL SELECT 5, count(*) FROM jobs WHERE state = 5"
	    " UNION ALL SELECT 6, count(*) FROM jobs WHERE state = 6"
	    /* Row 0: the alert outbox, notify jobs not yet finished. */
	    " UNION ALL SELECT 0, count(*) FROM jobs WHERE state IN (1, 2, 4)"
	    " AND kind = 3",
	[ST_NEXT_DUE] = "SELECT min(not_before) FROM jobs"
	    " WHERE state IN (1, 4, 6) AND not_before > ?1",
	[ST_BUSY] = "SELECT kind, app, repo, state FROM jobs"
	    " WHERE state IN (2, 6)",
	[ST_CANDIDATES] = "SELECT j.id, j.kind, j.state, j.app, j.repo,"
	    " j.revision, j.image, j.tag, j.digest, j.params, e.source,"
	    " e.delivery, j.event_id, j.attempts, j.created, j.max_attempts,"
	    STORE_SQLITE_WAIT_COL ", j.started"
	    " FROM jobs j"
	    " LEFT JOIN events e ON e.id = j.event_id"
	    " WHERE j.state IN (1, 4, 6) AND j.not_before <= ?1"
	    " ORDER BY j.not_before, j.id",
	[ST_MERGE_CANDS] = "SELECT j.id, j.kind, j.state, j.app, j.repo,"
	    " j.revision, j.image, j.tag, j.digest, j.params, e.source,"
	    " e.delivery, j.event_id, j.attempts, j.created, j.max_attempts,"
	    STORE_SQLITE_WAIT_COL ", j.started"
	    " FROM jobs j"
	    " LEFT JOIN events e ON e.id = j.event_id"
	    " WHERE j.state = 1 AND j.kind = 2 AND j.repo = ?1 AND j.id != ?2"
	    " AND j.not_before <= ?3 ORDER BY j.id",
	/* A waiting job's attempt began with its apply. */
	[ST_MARK_RUNNING] = "UPDATE jobs SET"
	    " started = CASE WHEN state = 6 THEN started ELSE ?2 END,"
	    " state = 2, updated = ?2, lease_owner = ?3, lease_until = ?4"
	    " WHERE id = ?1",
	[ST_RENEW] = "UPDATE jobs SET lease_until = ?1 WHERE state = 2"
	    " AND lease_owner = ?2 AND id IN (SELECT value FROM json_each(?3))",
	/* The fence: see finish in store.h. */
	[ST_FINISH] = "UPDATE jobs SET state = ?2, attempts = ?3,"
	    " not_before = ?4, updated = ?5, error = ?6,"
	    " result = coalesce(?7, result),"
	    " started = CASE WHEN ?2 = 6 THEN ?8 END,"
	    " lease_owner = NULL, lease_until = NULL"
	    " WHERE id = ?1 AND state = 2 AND lease_owner IS ?9",
	[ST_ATTEMPT] = "INSERT OR REPLACE INTO attempts(job_id, n, started,"
	    " ended, ok, error) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[ST_APP_UPSERT] = "INSERT INTO apps(name, outcome, revision, health,"
	    " synced_at, last_job, last_error) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
	    " ON CONFLICT(name) DO UPDATE SET"
	    " outcome = coalesce(excluded.outcome, outcome),"
	    " revision = coalesce(excluded.revision, revision),"
	    " health = coalesce(excluded.health, health),"
	    " synced_at = coalesce(excluded.synced_at, synced_at),"
	    " last_job = excluded.last_job,"
	    " last_error = CASE WHEN ?8 THEN excluded.last_error"
	    " ELSE coalesce(excluded.last_error, last_error) END",
	[ST_APP_IMAGE] = "INSERT INTO app_images(app, image, tag, digest)"
	    " VALUES (?1, ?2, ?3, ?4) ON CONFLICT(app, image) DO UPDATE SET"
	    " tag = coalesce(excluded.tag, tag), digest = excluded.digest",
	[ST_NOTIFY_GET] = "SELECT planned FROM notify_keys WHERE key = ?1",
	[ST_NOTIFY_PUT] = "INSERT OR REPLACE INTO notify_keys(key, planned)"
	    " VALUES (?1, ?2)",
	[ST_EVENT_RECEIVED] = "SELECT received FROM events WHERE id = ?1",
	[ST_APP_GET] = "SELECT a.outcome, a.revision, a.health, a.synced_at,"
	    " a.last_job, a.last_error, j.kind, j.state FROM apps a"
	    " LEFT JOIN jobs j ON j.id = a.last_job WHERE a.name = ?1",
	[ST_APP_IMAGES] = "SELECT image, tag, digest FROM app_images"
	    " WHERE app = ?1",
	[ST_INV_GET] = "SELECT objects FROM app_inventory WHERE app = ?1",
	[ST_INV_PUT] = "INSERT OR REPLACE INTO app_inventory(app, objects,"
	    " updated) VALUES (?1, ?2, ?3)",
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_SAVEPOINT] = "SAVEPOINT item",
	[ST_RELEASE] = "RELEASE item",
	[ST_ROLLBACK_TO] = "ROLLBACK TO item",
};

static const char store_sqlite_schema[] =
    "CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v TEXT);"
    /* Schema 1 kept delivery ids in a table of their own (see the top). */
    "DROP TABLE IF EXISTS deliveries;"
    "CREATE TABLE IF NOT EXISTS events(id INTEGER PRIMARY KEY,"
    " source TEXT NOT NULL, delivery TEXT NOT NULL, received INTEGER NOT NULL,"
    " kind TEXT NOT NULL, summary TEXT);"
    "CREATE TABLE IF NOT EXISTS jobs(id INTEGER PRIMARY KEY,"
    " kind INTEGER NOT NULL, state INTEGER NOT NULL, app TEXT, repo TEXT,"
    " revision TEXT, image TEXT, tag TEXT, digest TEXT, params TEXT,"
    " event_id INTEGER, attempts INTEGER NOT NULL DEFAULT 0,"
    " max_attempts INTEGER NOT NULL, created INTEGER NOT NULL,"
    " updated INTEGER NOT NULL, not_before INTEGER NOT NULL DEFAULT 0,"
    " started INTEGER, error TEXT, result TEXT,"
    " lease_owner TEXT, lease_until INTEGER);"
    "CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, not_before);"
    /*
     * Partial indexes: a queued sync's revision and time change with every
     * delivery it absorbs, and a job's state with every claim and attempt;
     * an index holding state or time for every job took a page write per
     * commit each.  These two change only when a sync is queued or leaves
     * the queue, and when a job is finished for good.
     */
    "DROP INDEX IF EXISTS jobs_app;"
    "DROP INDEX IF EXISTS jobs_updated;"
    "CREATE INDEX IF NOT EXISTS jobs_queued_sync ON jobs(app)"
    " WHERE state = 1 AND kind = 1;"
    "CREATE INDEX IF NOT EXISTS jobs_finished ON jobs(updated)"
    " WHERE state IN (3, 5);"
    "CREATE TABLE IF NOT EXISTS event_jobs(event_id INTEGER NOT NULL,"
    " job_id INTEGER NOT NULL, PRIMARY KEY(event_id, job_id)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS event_jobs_job ON event_jobs(job_id);"
    "CREATE TABLE IF NOT EXISTS attempts(job_id INTEGER NOT NULL,"
    " n INTEGER NOT NULL, started INTEGER, ended INTEGER, ok INTEGER NOT NULL,"
    " error TEXT, PRIMARY KEY(job_id, n)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS apps(name TEXT PRIMARY KEY, outcome INTEGER,"
    " revision TEXT, health TEXT, synced_at INTEGER, last_job INTEGER,"
    " last_error TEXT);"
    "CREATE TABLE IF NOT EXISTS app_images(app TEXT NOT NULL,"
    " image TEXT NOT NULL, tag TEXT, digest TEXT,"
    " PRIMARY KEY(app, image)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS notify_keys(key TEXT PRIMARY KEY,"
    " planned INTEGER NOT NULL) WITHOUT ROWID;"
    /*
     * Schema 3: what each app's syncs applied, so that prune needs no
     * list of every kind.  One document per app: it is only ever read
     * and replaced whole, by the app's one running sync.
     */
    "CREATE TABLE IF NOT EXISTS app_inventory(app TEXT PRIMARY KEY,"
    " objects TEXT NOT NULL, updated INTEGER NOT NULL) WITHOUT ROWID;"
    /*
     * Schema 4: the replicas sharing the store, their heartbeats, and the
     * roles one of them holds at a time (DESIGN.md section 9).  SQLite
     * has one process, but the tables are the same on every backend.
     */
    "CREATE TABLE IF NOT EXISTS replicas(id TEXT PRIMARY KEY,"
    " hostname TEXT NOT NULL, pid INTEGER NOT NULL, version TEXT NOT NULL,"
    " started INTEGER NOT NULL, heartbeat INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS roles(name TEXT PRIMARY KEY,"
    " owner TEXT NOT NULL, until INTEGER NOT NULL) WITHOUT ROWID;"
    "INSERT OR REPLACE INTO meta(k, v) VALUES ('schema', '4');";

/*
 * Schema 4: job leases (lease_owner, lease_until; see takeover in
 * store.h), added to a jobs table of an older file (a new one has them).
 */
static const char store_sqlite_schema_4[] =
    "ALTER TABLE jobs ADD COLUMN lease_owner TEXT;"
    "ALTER TABLE jobs ADD COLUMN lease_until INTEGER;";

enum st_ckpt {
	ST_CKPT_PASSIVE,
	ST_CKPT_TRUNCATE,
	ST_CKPT_RESTART,
};

struct store_sqlite_ckpt;

struct store {
	sqlite3		*db;
	sqlite3_stmt	*stmt[ST_MAX];
	sqlite3_stmt	*put[STORE_T_MAX];	/* row_put, prepared once */
	long		 wal_pages;	/* atomic: read by the checkpointer */
	struct seen	*seen;		/* the writer's: writer_start */
	struct store_sqlite_ckpt *ck;	/* the writer's: writer_start */
	size_t		 seen_mark;	/* pending entries at item_begin */
	int		 fail_rc;	/* the last failure's result code */
	int		 fail_errno;	/* and the system call's errno */
};

/* Keep what failed before a ROLLBACK or the next call overwrites it. */
static void
store_sqlite_note(struct store *st)
{
	metrics_counter_add("gitopsd_store_errors_total",
	    "backend=\"sqlite\"", 1);
	st->fail_rc = sqlite3_errcode(st->db);
	st->fail_errno = sqlite3_system_errno(st->db);
}

static void
store_sqlite_err(struct store *st, char *err, size_t errlen, const char *what)
{
	store_sqlite_note(st);
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s: %s", what, sqlite3_errmsg(st->db));
}

/*
 * A full disk (SQLITE_FULL, or an I/O error: EFBIG and ENOSPC in the log or
 * the shared-memory file come back as SQLITE_IOERR), a read-only file
 * system, or a file that cannot be created for either reason passes when
 * space returns or the file system is remounted; a corrupt file, a missing
 * directory or a permission needs a person.
 */
static int
store_sqlite_transient(struct store *st)
{
	switch (st->fail_rc & 0xff) {
	case SQLITE_FULL:
	case SQLITE_IOERR:
	case SQLITE_READONLY:
		return 1;
	case SQLITE_CANTOPEN:
		return st->fail_errno == ENOSPC || st->fail_errno == EDQUOT ||
		    st->fail_errno == EROFS || st->fail_errno == EIO ||
		    st->fail_errno == EFBIG;
	default:
		return 0;
	}
}

/*
 * SQLite's "unable to open database file" may carry the errno of a later
 * fallback (ENOENT of a read-only -shm open after EROFS): ask the file
 * system that holds the database whether it is read-only or full.  A
 * directory that does not exist is a mistake in the configuration.
 */
static int
store_sqlite_fs_stuck(const char *path)
{
	struct statvfs	 vfs;
	char		*copy = xstrdup(path);
	int		 stuck = 0;

	if (statvfs(dirname(copy), &vfs) == 0)
		stuck = (vfs.f_flag & ST_RDONLY) != 0 ||
		    (vfs.f_blocks > 0 && vfs.f_bavail == 0) ||
		    (vfs.f_files > 0 && vfs.f_favail == 0);
	free(copy);
	return stuck;
}

/* The cached statement, reset and unbound, ready for binding. */
static sqlite3_stmt *
store_sqlite_stmt(struct store *st, enum st_stmt which, char *err,
    size_t errlen)
{
	sqlite3_stmt	*s = st->stmt[which];

	if (s == NULL) {
		if (sqlite3_prepare_v3(st->db, store_sqlite_sql[which], -1,
		    SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK) {
			store_sqlite_err(st, err, errlen, "prepare");
			return NULL;
		}
		st->stmt[which] = s;
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return s;
}

static void
store_sqlite_text(sqlite3_stmt *s, int i, const char *v)
{
	if (v == NULL)
		sqlite3_bind_null(s, i);
	else
		sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
}

static void
store_sqlite_int(sqlite3_stmt *s, int i, int64_t v, int null_if_zero)
{
	if (null_if_zero && v == 0)
		sqlite3_bind_null(s, i);
	else
		sqlite3_bind_int64(s, i, v);
}

static char *
store_sqlite_col(sqlite3_stmt *s, int i)
{
	const unsigned char *t = sqlite3_column_text(s, i);

	return t == NULL ? NULL : xstrdup((const char *)t);
}

static int
store_sqlite_exec(struct store *st, const char *sql, char *err, size_t errlen)
{
	char	*msg = NULL;

	if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		store_sqlite_note(st);
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "%s", msg != NULL ? msg :
			    sqlite3_errmsg(st->db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

/* Step a statement that returns no rows. */
static int
store_sqlite_done(struct store *st, sqlite3_stmt *s, char *err, size_t errlen,
    const char *what)
{
	int	 rc = sqlite3_step(s);

	if (rc != SQLITE_DONE) {
		store_sqlite_err(st, err, errlen, what);
		sqlite3_reset(s);
		return -1;
	}
	sqlite3_reset(s);
	return 0;
}

/*
 * Bring a file of any earlier schema to this one, inside the caller's
 * transaction: the tables that are missing, then the columns.
 */
static int
store_sqlite_schema_apply(struct store *st, char *err, size_t errlen)
{
	sqlite3_stmt	*s = NULL;
	int		 rc, has_lease;

	if (store_sqlite_exec(st, store_sqlite_schema, err, errlen) == -1)
		return -1;
	if (sqlite3_prepare_v2(st->db, "SELECT count(*) FROM"
	    " pragma_table_info('jobs') WHERE name = 'lease_owner'", -1, &s,
	    NULL) != SQLITE_OK) {
		store_sqlite_err(st, err, errlen, "schema");
		return -1;
	}
	rc = sqlite3_step(s);
	has_lease = rc == SQLITE_ROW && sqlite3_column_int(s, 0) > 0;
	sqlite3_finalize(s);
	if (rc != SQLITE_ROW) {
		store_sqlite_err(st, err, errlen, "schema");
		return -1;
	}
	if (!has_lease && store_sqlite_exec(st, store_sqlite_schema_4, err,
	    errlen) == -1)
		return -1;
	return store_sqlite_exec(st, "INSERT OR REPLACE INTO meta(k, v)"
	    " VALUES ('schema', '4')", err, errlen);
}

static int
store_sqlite_wal_hook_cb(void *arg, sqlite3 *db, const char *name, int pages)
{
	struct store	*st = arg;

	(void)db;
	(void)name;
	/* Read by the writer's checkpointer. */
	__atomic_store_n(&st->wal_pages, (long)pages, __ATOMIC_RELAXED);
	return SQLITE_OK;
}

static void	store_sqlite_ckpt_stop(struct store *);
static void	store_sqlite_ckpt_commit(struct store *);

static void
store_sqlite_close(struct store *st)
{
	size_t	 i;

	if (st == NULL)
		return;
	if (st->ck != NULL)
		store_sqlite_ckpt_stop(st);
	for (i = 0; i < ST_MAX; i++)
		sqlite3_finalize(st->stmt[i]);
	for (i = 0; i < STORE_T_MAX; i++)
		sqlite3_finalize(st->put[i]);
	sqlite3_close(st->db);
	seen_free(st->seen);
	free(st);
}

static struct store *
store_sqlite_open(const char *path, int *transient, char *err, size_t errlen)
{
	struct store	*st;

	st = xcalloc(1, sizeof(*st));
	if (transient != NULL)
		*transient = 0;
	if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, st->db != NULL ?
		    sqlite3_errmsg(st->db) : "cannot open");
		if (st->db != NULL)
			store_sqlite_note(st);
		goto fail;
	}
	sqlite3_busy_timeout(st->db, STORE_SQLITE_BUSY_MS);
	sqlite3_extended_result_codes(st->db, 0);
	if (store_sqlite_exec(st, "PRAGMA journal_mode=WAL;"
	    "PRAGMA synchronous=FULL; PRAGMA wal_autocheckpoint=0;"
	    "PRAGMA foreign_keys=OFF; PRAGMA temp_store=MEMORY;",
	    err, errlen) == -1)
		goto fail;
	if (store_sqlite_exec(st, "BEGIN IMMEDIATE", err, errlen) == -1)
		goto fail;
	if (store_sqlite_schema_apply(st, err, errlen) == -1) {
		store_sqlite_exec(st, "ROLLBACK", NULL, 0);
		goto fail;
	}
	if (store_sqlite_exec(st, "COMMIT", err, errlen) == -1)
		goto fail;
	sqlite3_wal_hook(st->db, store_sqlite_wal_hook_cb, st);
	return st;
fail:
	if (transient != NULL)
		*transient = store_sqlite_transient(st) ||
		    ((st->fail_rc & 0xff) == SQLITE_CANTOPEN &&
		    store_sqlite_fs_stuck(path));
	store_sqlite_close(st);
	return NULL;
}

/* Transaction control through cached statements (hot path). */
static int
store_sqlite_simple(struct store *st, enum st_stmt which, char *err,
    size_t errlen)
{
	sqlite3_stmt	*s;

	if ((s = store_sqlite_stmt(st, which, err, errlen)) == NULL)
		return -1;
	return store_sqlite_done(st, s, err, errlen, store_sqlite_sql[which]);
}

static int
store_sqlite_begin(struct store *st, char *err, size_t errlen)
{
	return store_sqlite_simple(st, ST_BEGIN, err, errlen);
}

static int
store_sqlite_commit(struct store *st, char *err, size_t errlen)
{
	if (store_sqlite_simple(st, ST_COMMIT, err, errlen) == -1) {
		/* A failed COMMIT may leave the transaction open. */
		if (!sqlite3_get_autocommit(st->db))
			store_sqlite_simple(st, ST_ROLLBACK, NULL, 0);
		if (st->seen != NULL)
			seen_rollback_to(st->seen, 0);
		return -1;
	}
	if (st->seen != NULL)
		seen_commit(st->seen);
	if (st->ck != NULL)
		store_sqlite_ckpt_commit(st);
	return 0;
}

static void
store_sqlite_rollback(struct store *st)
{
	if (!sqlite3_get_autocommit(st->db))
		store_sqlite_simple(st, ST_ROLLBACK, NULL, 0);
	if (st->seen != NULL)
		seen_rollback_to(st->seen, 0);
}

static int
store_sqlite_item_begin(struct store *st, char *err, size_t errlen)
{
	st->seen_mark = st->seen != NULL ? seen_pending(st->seen) : 0;
	return store_sqlite_simple(st, ST_SAVEPOINT, err, errlen);
}

static int
store_sqlite_item_end(struct store *st, char *err, size_t errlen)
{
	return store_sqlite_simple(st, ST_RELEASE, err, errlen);
}

static void
store_sqlite_item_abort(struct store *st)
{
	/* ROLLBACK TO keeps the savepoint; RELEASE drops it. */
	if (store_sqlite_simple(st, ST_ROLLBACK_TO, NULL, 0) == 0)
		store_sqlite_simple(st, ST_RELEASE, NULL, 0);
	if (st->seen != NULL)
		seen_rollback_to(st->seen, st->seen_mark);
}

/* A delivery's key, checked against a stored event by seen_find. */
struct store_sqlite_key {
	struct store	*st;
	const char	*source, *delivery;
	char		 err[128];
};

/* Is event_id the stored event of this key?  1 yes, 0 no, -1 error. */
static int
store_sqlite_match_cb(void *arg, int64_t event_id)
{
	struct store_sqlite_key	*k = arg;
	sqlite3_stmt		*s;
	const char		*src, *del;
	int			 rc, r = 0;

	if ((s = store_sqlite_stmt(k->st, ST_EVENT_KEY, k->err,
	    sizeof(k->err))) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, event_id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		src = (const char *)sqlite3_column_text(s, 0);
		del = (const char *)sqlite3_column_text(s, 1);
		r = src != NULL && del != NULL && strcmp(src, k->source) == 0 &&
		    strcmp(del, k->delivery) == 0;
	} else if (rc != SQLITE_DONE) {
		store_sqlite_err(k->st, k->err, sizeof(k->err), "find delivery");
		r = -1;
	}
	sqlite3_reset(s);
	return r;
}

/*
 * The set of delivery ids received since since_ms, read from the events
 * (writer_start).  A connection that never takes deliveries never builds
 * it.
 */
static int
store_sqlite_load_deliveries(struct store *st, int64_t since_ms, char *err,
    size_t errlen)
{
	struct seen	*sn;
	sqlite3_stmt	*s;
	const char	*src, *del;
	int		 rc;

	if ((sn = seen_new()) == NULL) {
		snprintf(err, errlen, "delivery ids: no random key");
		return -1;
	}
	if ((s = store_sqlite_stmt(st, ST_SEEN_LOAD, err, errlen)) == NULL)
		goto fail;
	sqlite3_bind_int64(s, 1, since_ms);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		src = (const char *)sqlite3_column_text(s, 1);
		del = (const char *)sqlite3_column_text(s, 2);
		if (src == NULL || del == NULL)
			continue;
		seen_load(sn, seen_hash(sn, src, del),
		    sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 3));
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		store_sqlite_err(st, err, errlen, "load delivery ids");
		goto fail;
	}
	seen_free(st->seen);
	st->seen = sn;
	return 0;
fail:
	seen_free(sn);
	return -1;
}

static int
store_sqlite_add_event(struct store *st, const struct store_event *ev,
    int64_t *event_id, char *err, size_t errlen)
{
	struct store_sqlite_key	 key;
	sqlite3_stmt		*s;
	uint64_t		 h;
	int64_t			 id;
	int			 rc;

	/*
	 * A duplicate is found before anything of it is written, so a round
	 * of deliveries needs no savepoint per delivery (one cost more than
	 * the lookup: SQLite copies every page the delivery touches into a
	 * statement journal).  The store thread is the only writer.
	 */
	if (st->seen == NULL &&
	    store_sqlite_load_deliveries(st, 0, err, errlen) == -1)
		return -1;
	key.st = st;
	key.source = ev->source;
	key.delivery = ev->delivery;
	h = seen_hash(st->seen, ev->source, ev->delivery);
	if ((rc = seen_find(st->seen, h, store_sqlite_match_cb, &key)) != 0) {
		if (rc == -1)
			snprintf(err, errlen, "%s", key.err);
		return rc;
	}

	if ((s = store_sqlite_stmt(st, ST_ADD_EVENT, err, errlen)) == NULL)
		return -1;
	store_sqlite_text(s, 1, ev->source);
	store_sqlite_text(s, 2, ev->delivery);
	sqlite3_bind_int64(s, 3, ev->received_ms);
	store_sqlite_text(s, 4, ev->kind);
	store_sqlite_text(s, 5, ev->summary);
	if (store_sqlite_done(st, s, err, errlen, "add event") == -1)
		return -1;
	id = sqlite3_last_insert_rowid(st->db);

	seen_add(st->seen, h, id, ev->received_ms);
	*event_id = id;
	return 0;
}

static int
store_sqlite_link(struct store *st, int64_t event_id, int64_t job_id,
    char *err, size_t errlen)
{
	sqlite3_stmt	*s;

	if (event_id <= 0)
		return 0;
	if ((s = store_sqlite_stmt(st, ST_LINK, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, event_id);
	sqlite3_bind_int64(s, 2, job_id);
	return store_sqlite_done(st, s, err, errlen, "link job");
}

static int
store_sqlite_add_job(struct store *st, const struct job_spec *js,
    int64_t event_id, int max_attempts, int64_t now_ms, int64_t *job_id,
    int *absorbed, char *err, size_t errlen)
{
	sqlite3_stmt	*s;
	int64_t		 id;
	int		 rc;

	*absorbed = 0;
	if (js->kind == JOB_SYNC && js->app != NULL) {
		if ((s = store_sqlite_stmt(st, ST_FIND_SYNC, err, errlen)) == NULL)
			return -1;
		store_sqlite_text(s, 1, js->app);
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW) {
			id = sqlite3_column_int64(s, 0);
			sqlite3_reset(s);
			if ((s = store_sqlite_stmt(st, ST_ABSORB, err,
			    errlen)) == NULL)
				return -1;
			sqlite3_bind_int64(s, 1, id);
			store_sqlite_text(s, 2, js->revision);
			sqlite3_bind_int64(s, 3, now_ms);
			if (store_sqlite_done(st, s, err, errlen, "absorb") == -1)
				return -1;
			*absorbed = 1;
			*job_id = id;
			return store_sqlite_link(st, event_id, id, err, errlen);
		}
		sqlite3_reset(s);
		if (rc != SQLITE_DONE) {
			store_sqlite_err(st, err, errlen, "find sync");
			return -1;
		}
	}
	if ((s = store_sqlite_stmt(st, ST_ADD_JOB, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int(s, 1, (int)js->kind);
	store_sqlite_text(s, 2, js->app);
	store_sqlite_text(s, 3, js->repo);
	store_sqlite_text(s, 4, js->revision);
	store_sqlite_text(s, 5, js->image);
	store_sqlite_text(s, 6, js->tag);
	store_sqlite_text(s, 7, js->digest);
	store_sqlite_text(s, 8, js->params);
	store_sqlite_int(s, 9, event_id, 1);
	sqlite3_bind_int(s, 10, max_attempts);
	sqlite3_bind_int64(s, 11, now_ms);
	if (store_sqlite_done(st, s, err, errlen, "add job") == -1)
		return -1;
	*job_id = sqlite3_last_insert_rowid(st->db);
	return store_sqlite_link(st, event_id, *job_id, err, errlen);
}

static int
store_sqlite_count_pending(struct store *st, int64_t *n, char *err,
    size_t errlen)
{
	sqlite3_stmt	*s;

	if ((s = store_sqlite_stmt(st, ST_COUNT_PENDING, err, errlen)) == NULL)
		return -1;
	if (sqlite3_step(s) != SQLITE_ROW) {
		store_sqlite_err(st, err, errlen, "count");
		sqlite3_reset(s);
		return -1;
	}
	*n = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return 0;
}

static int
store_sqlite_count_states(struct store *st, int64_t counts[JOB_STATE_MAX],
    char *err, size_t errlen)
{
	sqlite3_stmt	*s;
	int		 rc, state;

	memset(counts, 0, JOB_STATE_MAX * sizeof(counts[0]));
	if ((s = store_sqlite_stmt(st, ST_COUNT_STATES, err, errlen)) == NULL)
		return -1;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		state = sqlite3_column_int(s, 0);
		if (state >= 0 && state < JOB_STATE_MAX)
			counts[state] = sqlite3_column_int64(s, 1);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		store_sqlite_err(st, err, errlen, "count states");
		return -1;
	}
	return 0;
}

static int
store_sqlite_takeover(struct store *st, int64_t expired_ms, int64_t now_ms,
    int *nrequeued, int *ndead, char *err, size_t errlen)
{
	int		 rc = -1;
	char		*sql;
	char		 cond[64];

	*nrequeued = *ndead = 0;
	snprintf(cond, sizeof(cond), " AND coalesce(lease_until, 0) < %lld",
	    (long long)expired_ms);
	/*
	 * An interrupted health check only read: it goes back to waiting,
	 * due now, its attempt still the one that applied.
	 */
	sql = xasprintf("UPDATE jobs SET state = 6, not_before = 0,"
	    " updated = %lld, lease_owner = NULL, lease_until = NULL"
	    " WHERE state = 2%s AND " STORE_SQLITE_WAIT_OF("result")
	    " IS NOT NULL", (long long)now_ms, cond);
	if (store_sqlite_exec(st, sql, err, errlen) == -1)
		goto out;
	*nrequeued = sqlite3_changes(st->db);
	free(sql);
	/* The interrupted attempt is counted and logged. */
	sql = xasprintf("INSERT OR REPLACE INTO attempts(job_id, n, started,"
	    " ended, ok, error) SELECT id, attempts + 1, started, %lld, 0,"
	    " 'interrupted: gitopsd stopped while the job ran'"
	    " FROM jobs WHERE state = 2%s", (long long)now_ms, cond);
	if (store_sqlite_exec(st, sql, err, errlen) == -1)
		goto out;
	free(sql);
	sql = xasprintf("UPDATE jobs SET state = 5, attempts = attempts + 1,"
	    " updated = %lld, started = NULL, error = 'interrupted; no attempts"
	    " left', lease_owner = NULL, lease_until = NULL"
	    " WHERE state = 2%s AND attempts + 1 >= max_attempts",
	    (long long)now_ms, cond);
	if (store_sqlite_exec(st, sql, err, errlen) == -1)
		goto out;
	*ndead = sqlite3_changes(st->db);
	free(sql);
	sql = xasprintf("UPDATE jobs SET state = 1, attempts = attempts + 1,"
	    " updated = %lld, started = NULL, not_before = 0,"
	    " lease_owner = NULL, lease_until = NULL WHERE state = 2%s",
	    (long long)now_ms, cond);
	if (store_sqlite_exec(st, sql, err, errlen) == -1)
		goto out;
	*nrequeued += sqlite3_changes(st->db);
	rc = 0;
out:
	free(sql);
	return rc;
}

static int
store_sqlite_renew(struct store *st, const char *owner, const int64_t *ids,
    size_t nids, int64_t until_ms, size_t *nrenewed, char *err, size_t errlen)
{
	sqlite3_stmt	*s;
	char		*arr;
	size_t		 i, off = 0;
	int		 rc;

	*nrenewed = 0;
	if (nids == 0)
		return 0;
	if ((s = store_sqlite_stmt(st, ST_RENEW, err, errlen)) == NULL)
		return -1;
	/* The ids as a JSON array, [1,2,3]. */
	arr = xmalloc(nids * 21 + 3);
	arr[off++] = '[';
	for (i = 0; i < nids; i++)
		off += (size_t)snprintf(arr + off, 22, "%s%lld",
		    i > 0 ? "," : "", (long long)ids[i]);
	arr[off++] = ']';
	arr[off] = '\0';
	sqlite3_bind_int64(s, 1, until_ms);
	store_sqlite_text(s, 2, owner);
	store_sqlite_text(s, 3, arr);
	rc = store_sqlite_done(st, s, err, errlen, "renew");
	free(arr);
	if (rc == 0)
		*nrenewed = (size_t)sqlite3_changes(st->db);
	return rc;
}

static int
store_sqlite_next_due(struct store *st, int64_t after_ms, int64_t *due_ms,
    char *err, size_t errlen)
{
	sqlite3_stmt	*s;
	int		 rc;

	if ((s = store_sqlite_stmt(st, ST_NEXT_DUE, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, after_ms);
	if (sqlite3_step(s) != SQLITE_ROW) {
		store_sqlite_err(st, err, errlen, "next due");
		sqlite3_reset(s);
		return -1;
	}
	if (sqlite3_column_type(s, 0) == SQLITE_NULL)
		rc = 0;
	else {
		*due_ms = sqlite3_column_int64(s, 0);
		rc = 1;
	}
	sqlite3_reset(s);
	return rc;
}

/* A struct job from a ST_CANDIDATES / ST_MERGE_CANDS row. */
static struct job *
store_sqlite_job_from_row(sqlite3_stmt *s)
{
	struct job	*j = xcalloc(1, sizeof(*j));

	j->id = sqlite3_column_int64(s, 0);
	j->kind = (enum job_kind)sqlite3_column_int(s, 1);
	j->state = JOB_RUNNING;
	j->app = store_sqlite_col(s, 3);
	j->repo = store_sqlite_col(s, 4);
	j->revision = store_sqlite_col(s, 5);
	j->image = store_sqlite_col(s, 6);
	j->tag = store_sqlite_col(s, 7);
	j->digest = store_sqlite_col(s, 8);
	j->params = store_sqlite_col(s, 9);
	j->source = store_sqlite_col(s, 10);
	j->delivery = store_sqlite_col(s, 11);
	j->event_id = sqlite3_column_int64(s, 12);
	j->attempts = sqlite3_column_int(s, 13);
	j->created_ms = sqlite3_column_int64(s, 14);
	j->max_attempts = sqlite3_column_int(s, 15);
	if ((j->wait = store_sqlite_col(s, 16)) != NULL)
		j->started_ms = sqlite3_column_int64(s, 17);
	return j;
}

static int
store_sqlite_mark_running(struct store *st, int64_t id,
    const struct store_claim *c, char *err, size_t errlen)
{
	sqlite3_stmt	*s;

	if ((s = store_sqlite_stmt(st, ST_MARK_RUNNING, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, c->now_ms);
	store_sqlite_text(s, 3, c->owner);
	sqlite3_bind_int64(s, 4, c->lease_until_ms);
	return store_sqlite_done(st, s, err, errlen, "mark running");
}

/* Queued update-image jobs for j's repository join j's run. */
static int
store_sqlite_claim_merges(struct store *st, struct job *j, int64_t now_ms,
    struct store_rules *rules, char *err, size_t errlen)
{
	sqlite3_stmt	*s;
	struct job	*m;
	int		 rc;

	if ((s = store_sqlite_stmt(st, ST_MERGE_CANDS, err, errlen)) == NULL)
		return -1;
	store_sqlite_text(s, 1, j->repo);
	sqlite3_bind_int64(s, 2, j->id);
	sqlite3_bind_int64(s, 3, now_ms);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		m = store_sqlite_job_from_row(s);
		if (store_rules_merge(rules, j, m->app))
			store_job_merge(j, m);
		else
			job_free(m);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		store_sqlite_err(st, err, errlen, "merge candidates");
		return -1;
	}
	return 0;
}

static int
store_sqlite_claim(struct store *st, const struct store_claim *c,
    struct job ***jobsp, size_t *njobsp, char *err, size_t errlen)
{
	struct store_rules rules = { 0 };
	struct job	**jobs = NULL, *j;
	size_t		 njobs = 0, i, k;
	int		 rc = -1, step;
	sqlite3_stmt	*s;

	*jobsp = NULL;
	*njobsp = 0;
	if (c->max_thread <= 0 && c->max_loop <= 0)
		return 0;
	if ((s = store_sqlite_stmt(st, ST_BUSY, err, errlen)) == NULL)
		goto out;
	while ((step = sqlite3_step(s)) == SQLITE_ROW)
		store_rules_busy(&rules, (enum job_kind)sqlite3_column_int(s, 0),
		    (const char *)sqlite3_column_text(s, 1),
		    (const char *)sqlite3_column_text(s, 2),
		    sqlite3_column_int(s, 3) == JOB_WAITING);
	sqlite3_reset(s);
	if (step != SQLITE_DONE) {
		store_sqlite_err(st, err, errlen, "busy");
		goto out;
	}

	if ((s = store_sqlite_stmt(st, ST_CANDIDATES, err, errlen)) == NULL)
		goto out;
	sqlite3_bind_int64(s, 1, c->now_ms);
	while (!store_rules_full(&rules, c) &&
	    (step = sqlite3_step(s)) == SQLITE_ROW) {
		if (!store_rules_take(&rules, c,
		    (enum job_kind)sqlite3_column_int(s, 1),
		    (const char *)sqlite3_column_text(s, 3),
		    (const char *)sqlite3_column_text(s, 4),
		    sqlite3_column_int(s, 2) == JOB_WAITING))
			continue;
		// NOLINTNEXTLINE(bugprone-sizeof-expression): array of pointers
		jobs = xreallocarray(jobs, njobs + 1, sizeof(*jobs));
		jobs[njobs++] = store_sqlite_job_from_row(s);
	}
	sqlite3_reset(s);
	if (step != SQLITE_DONE && step != SQLITE_ROW) {
		store_sqlite_err(st, err, errlen, "candidates");
		goto out;
	}
	/* Rows are updated only after the scan is finished. */
	for (i = 0; i < njobs; i++) {
		j = jobs[i];
		if (j->kind == JOB_UPDATE_IMAGE && j->repo != NULL &&
		    store_sqlite_claim_merges(st, j, c->now_ms, &rules, err,
		    errlen) == -1)
			goto out;
		if (store_sqlite_mark_running(st, j->id, c, err, errlen) == -1)
			goto out;
		for (k = 0; k < j->nmerged; k++)
			if (store_sqlite_mark_running(st, j->merged[k]->id, c,
			    err, errlen) == -1)
				goto out;
	}
	*jobsp = jobs;
	*njobsp = njobs;
	jobs = NULL;
	njobs = 0;
	rc = 0;
out:
	for (i = 0; i < njobs; i++)
		job_free(jobs[i]);
	free(jobs);
	store_rules_free(&rules);
	return rc;
}

static int
store_sqlite_finish(struct store *st, const struct store_finish *f,
    char *err, size_t errlen)
{
	sqlite3_stmt	*s;

	/* The fence first (see store_pg_finish). */
	if ((s = store_sqlite_stmt(st, ST_FINISH, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, f->job_id);
	sqlite3_bind_int(s, 2, (int)f->state);
	sqlite3_bind_int(s, 3, f->attempts);
	sqlite3_bind_int64(s, 4, f->not_before_ms);
	sqlite3_bind_int64(s, 5, f->ended_ms);
	store_sqlite_text(s, 6, f->error);
	store_sqlite_text(s, 7, f->result);
	store_sqlite_int(s, 8, f->started_ms, 1);
	store_sqlite_text(s, 9, f->owner);
	if (store_sqlite_done(st, s, err, errlen, "finish") == -1)
		return -1;
	if (sqlite3_changes(st->db) == 0)
		return 1;
	/* A job that waits has not finished its attempt. */
	if (f->state == JOB_WAITING)
		return 0;
	if ((s = store_sqlite_stmt(st, ST_ATTEMPT, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, f->job_id);
	sqlite3_bind_int(s, 2, f->attempts);
	store_sqlite_int(s, 3, f->started_ms, 1);
	sqlite3_bind_int64(s, 4, f->ended_ms);
	sqlite3_bind_int(s, 5, f->state == JOB_SUCCEEDED);
	store_sqlite_text(s, 6, f->error);
	return store_sqlite_done(st, s, err, errlen, "attempt");
}

static int
store_sqlite_app_record(struct store *st, const char *app,
    enum job_state outcome, int64_t job_id, const char *revision,
    const char *health, int64_t synced_at_ms, const char *error, char *err,
    size_t errlen)
{
	sqlite3_stmt	*s;

	if ((s = store_sqlite_stmt(st, ST_APP_UPSERT, err, errlen)) == NULL)
		return -1;
	store_sqlite_text(s, 1, app);
	store_sqlite_int(s, 2, (int64_t)outcome, 1);
	store_sqlite_text(s, 3, revision);
	store_sqlite_text(s, 4, health);
	store_sqlite_int(s, 5, synced_at_ms, 1);
	sqlite3_bind_int64(s, 6, job_id);
	store_sqlite_text(s, 7, error);
	/* A success clears the last error. */
	sqlite3_bind_int(s, 8, outcome == JOB_SUCCEEDED);
	return store_sqlite_done(st, s, err, errlen, "app status");
}

static int
store_sqlite_app_image_set(struct store *st, const char *app,
    const char *image, const char *tag, const char *digest, char *err,
    size_t errlen)
{
	sqlite3_stmt	*s;

	if ((s = store_sqlite_stmt(st, ST_APP_IMAGE, err, errlen)) == NULL)
		return -1;
	store_sqlite_text(s, 1, app);
	store_sqlite_text(s, 2, image);
	store_sqlite_text(s, 3, tag);
	store_sqlite_text(s, 4, digest);
	return store_sqlite_done(st, s, err, errlen, "app image");
}

static int
store_sqlite_app_get(struct store *st, const char *app,
    struct store_app_row *r, char *err, size_t errlen)
{
	sqlite3_stmt	*s;
	int		 step;

	memset(r, 0, sizeof(*r));
	if ((s = store_sqlite_stmt(st, ST_APP_GET, err, errlen)) == NULL)
		return -1;
	store_sqlite_text(s, 1, app);
	step = sqlite3_step(s);
	if (step == SQLITE_ROW) {
		r->found = 1;
		r->outcome = (enum job_state)sqlite3_column_int(s, 0);
		r->revision = store_sqlite_col(s, 1);
		r->health = store_sqlite_col(s, 2);
		r->synced_at_ms = sqlite3_column_int64(s, 3);
		r->last_job_id = sqlite3_column_int64(s, 4);
		r->last_error = store_sqlite_col(s, 5);
		r->last_job_kind = (enum job_kind)sqlite3_column_int(s, 6);
		r->last_job_state = (enum job_state)sqlite3_column_int(s, 7);
		if (sqlite3_column_type(s, 6) == SQLITE_NULL)
			r->last_job_id = 0;	/* deleted by retention */
	}
	sqlite3_reset(s);
	if (step != SQLITE_ROW && step != SQLITE_DONE) {
		store_sqlite_err(st, err, errlen, "app");
		goto fail;
	}
	if ((s = store_sqlite_stmt(st, ST_APP_IMAGES, err, errlen)) == NULL)
		goto fail;
	store_sqlite_text(s, 1, app);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		r->images = xreallocarray(r->images, r->nimages + 1,
		    sizeof(*r->images));
		r->images[r->nimages].image = store_sqlite_col(s, 0);
		r->images[r->nimages].tag = store_sqlite_col(s, 1);
		r->images[r->nimages].digest = store_sqlite_col(s, 2);
		r->nimages++;
	}
	sqlite3_reset(s);
	if (step != SQLITE_DONE) {
		store_sqlite_err(st, err, errlen, "app images");
		goto fail;
	}
	return 0;
fail:
	store_app_row_clear(r);
	return -1;
}

static int
store_sqlite_inventory_get(struct store *st, const char *app, char **objects,
    char *err, size_t errlen)
{
	sqlite3_stmt	*s;
	int		 step;

	*objects = NULL;
	if ((s = store_sqlite_stmt(st, ST_INV_GET, err, errlen)) == NULL)
		return -1;
	store_sqlite_text(s, 1, app);
	step = sqlite3_step(s);
	if (step == SQLITE_ROW)
		*objects = store_sqlite_col(s, 0);
	sqlite3_reset(s);
	if (step != SQLITE_ROW && step != SQLITE_DONE) {
		store_sqlite_err(st, err, errlen, "inventory");
		return -1;
	}
	return *objects != NULL;
}

static int
store_sqlite_inventory_set(struct store *st, const char *app,
    const char *objects, int64_t now_ms, char *err, size_t errlen)
{
	sqlite3_stmt	*s;

	if ((s = store_sqlite_stmt(st, ST_INV_PUT, err, errlen)) == NULL)
		return -1;
	store_sqlite_text(s, 1, app);
	store_sqlite_text(s, 2, objects);
	sqlite3_bind_int64(s, 3, now_ms);
	return store_sqlite_done(st, s, err, errlen, "inventory");
}

static int
store_sqlite_notify_key(struct store *st, const char *key, int64_t now_ms,
    int64_t window_ms, char *err, size_t errlen)
{
	sqlite3_stmt	*s;
	int		 step;
	int64_t		 planned;

	if ((s = store_sqlite_stmt(st, ST_NOTIFY_GET, err, errlen)) == NULL)
		return -1;
	store_sqlite_text(s, 1, key);
	step = sqlite3_step(s);
	if (step == SQLITE_ROW) {
		planned = sqlite3_column_int64(s, 0);
		sqlite3_reset(s);
		if (now_ms - planned < window_ms)
			return 1;
	} else {
		sqlite3_reset(s);
		if (step != SQLITE_DONE) {
			store_sqlite_err(st, err, errlen, "notify key");
			return -1;
		}
	}
	if ((s = store_sqlite_stmt(st, ST_NOTIFY_PUT, err, errlen)) == NULL)
		return -1;
	store_sqlite_text(s, 1, key);
	sqlite3_bind_int64(s, 2, now_ms);
	if (store_sqlite_done(st, s, err, errlen, "notify key") == -1)
		return -1;
	return 0;
}

static int
store_sqlite_event_received(struct store *st, int64_t event_id, int64_t *ms,
    char *err, size_t errlen)
{
	sqlite3_stmt	*s;
	int		 step;

	if ((s = store_sqlite_stmt(st, ST_EVENT_RECEIVED, err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, event_id);
	step = sqlite3_step(s);
	if (step == SQLITE_ROW)
		*ms = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	if (step == SQLITE_ROW)
		return 1;
	if (step == SQLITE_DONE)
		return 0;
	store_sqlite_err(st, err, errlen, "event");
	return -1;
}

static int
store_sqlite_list_events(struct store *st, int64_t after, int limit,
    struct store_event_row **rowsp, size_t *np, int64_t *next, char *err,
    size_t errlen)
{
	sqlite3_stmt	*s = NULL, *sj = NULL;
	struct store_event_row *rows = NULL, *r;
	size_t		 n = 0, i;
	int		 rc = -1, step;

	*next = 0;
	if (limit < 1) {
		/* rows[n - 1] below needs a page of at least one row. */
		snprintf(err, errlen, "events: limit must be at least 1");
		return -1;
	}
	if (sqlite3_prepare_v2(st->db, "SELECT id, source, delivery, received,"
	    " kind, summary FROM events WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
	    -1, &s, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(st->db, "SELECT job_id FROM event_jobs"
	    " WHERE event_id = ?1 ORDER BY job_id", -1, &sj, NULL) != SQLITE_OK) {
		store_sqlite_err(st, err, errlen, "events");
		goto out;
	}
	sqlite3_bind_int64(s, 1, after > 0 ? after : INT64_MAX);
	sqlite3_bind_int(s, 2, limit + 1);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == (size_t)limit) {
			*next = rows[n - 1].id;
			break;
		}
		rows = xreallocarray(rows, n + 1, sizeof(*rows));
		r = &rows[n++];
		memset(r, 0, sizeof(*r));
		r->id = sqlite3_column_int64(s, 0);
		r->source = store_sqlite_col(s, 1);
		r->delivery = store_sqlite_col(s, 2);
		r->received_ms = sqlite3_column_int64(s, 3);
		r->kind = store_sqlite_col(s, 4);
		r->summary = store_sqlite_col(s, 5);
	}
	if (step != SQLITE_DONE && step != SQLITE_ROW) {
		store_sqlite_err(st, err, errlen, "events");
		goto out;
	}
	for (i = 0; i < n; i++) {
		sqlite3_reset(sj);
		sqlite3_bind_int64(sj, 1, rows[i].id);
		while ((step = sqlite3_step(sj)) == SQLITE_ROW) {
			rows[i].job_ids = xreallocarray(rows[i].job_ids,
			    rows[i].njob_ids + 1, sizeof(int64_t));
			rows[i].job_ids[rows[i].njob_ids++] =
			    sqlite3_column_int64(sj, 0);
		}
		if (step != SQLITE_DONE) {
			store_sqlite_err(st, err, errlen, "event jobs");
			goto out;
		}
	}
	*rowsp = rows;
	*np = n;
	rows = NULL;
	n = 0;
	rc = 0;
out:
	store_event_rows_free(rows, n);
	sqlite3_finalize(s);
	sqlite3_finalize(sj);
	return rc;
}

#define STORE_SQLITE_JOB_COLS \
	"j.id, j.kind, j.state, j.app, j.repo, j.revision, j.image, j.tag," \
	" j.digest, j.params, e.source, e.delivery, j.error, j.result," \
	" j.attempts, j.max_attempts, j.created, j.updated, j.not_before," \
	" j.event_id, j.started FROM jobs j LEFT JOIN events e" \
	" ON e.id = j.event_id"

static void
store_sqlite_job_row(sqlite3_stmt *s, struct store_job_row *r)
{
	memset(r, 0, sizeof(*r));
	r->id = sqlite3_column_int64(s, 0);
	r->kind = (enum job_kind)sqlite3_column_int(s, 1);
	r->state = (enum job_state)sqlite3_column_int(s, 2);
	r->app = store_sqlite_col(s, 3);
	r->repo = store_sqlite_col(s, 4);
	r->revision = store_sqlite_col(s, 5);
	r->image = store_sqlite_col(s, 6);
	r->tag = store_sqlite_col(s, 7);
	r->digest = store_sqlite_col(s, 8);
	r->params = store_sqlite_col(s, 9);
	r->source = store_sqlite_col(s, 10);
	r->delivery = store_sqlite_col(s, 11);
	r->error = store_sqlite_col(s, 12);
	r->result = store_sqlite_col(s, 13);
	r->attempts = sqlite3_column_int(s, 14);
	r->max_attempts = sqlite3_column_int(s, 15);
	r->created_ms = sqlite3_column_int64(s, 16);
	r->updated_ms = sqlite3_column_int64(s, 17);
	r->not_before_ms = sqlite3_column_int64(s, 18);
	r->event_id = sqlite3_column_int64(s, 19);
	r->started_ms = sqlite3_column_int64(s, 20);
}

static int
store_sqlite_list_jobs(struct store *st, const struct store_job_filter *f,
    struct store_job_row **rowsp, size_t *np, int64_t *next, char *err,
    size_t errlen)
{
	sqlite3_stmt	*s = NULL;
	struct store_job_row *rows = NULL;
	size_t		 n = 0;
	int		 rc = -1, step;

	*next = 0;
	if (f->limit < 1) {
		/* rows[n - 1] below needs a page of at least one row. */
		snprintf(err, errlen, "jobs: limit must be at least 1");
		return -1;
	}
	if (sqlite3_prepare_v2(st->db, "SELECT " STORE_SQLITE_JOB_COLS
	    " WHERE j.id < ?1 AND (?2 IS NULL OR j.app = ?2)"
	    " AND (?3 = 0 OR j.state = ?3) AND (?4 = 0 OR j.kind = ?4)"
	    " ORDER BY j.id DESC LIMIT ?5", -1, &s, NULL) != SQLITE_OK) {
		store_sqlite_err(st, err, errlen, "jobs");
		goto out;
	}
	sqlite3_bind_int64(s, 1, f->after > 0 ? f->after : INT64_MAX);
	store_sqlite_text(s, 2, f->app);
	sqlite3_bind_int(s, 3, f->state);
	sqlite3_bind_int(s, 4, f->kind);
	sqlite3_bind_int(s, 5, f->limit + 1);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == (size_t)f->limit) {
			*next = rows[n - 1].id;
			break;
		}
		rows = xreallocarray(rows, n + 1, sizeof(*rows));
		store_sqlite_job_row(s, &rows[n++]);
	}
	if (step != SQLITE_DONE && step != SQLITE_ROW) {
		store_sqlite_err(st, err, errlen, "jobs");
		goto out;
	}
	*rowsp = rows;
	*np = n;
	rows = NULL;
	n = 0;
	rc = 0;
out:
	store_job_rows_free(rows, n);
	sqlite3_finalize(s);
	return rc;
}

static int
store_sqlite_get_job(struct store *st, int64_t id, struct store_job_row *r,
    char *err, size_t errlen)
{
	sqlite3_stmt	*s = NULL;
	int		 rc = -1, step;

	memset(r, 0, sizeof(*r));
	if (sqlite3_prepare_v2(st->db, "SELECT " STORE_SQLITE_JOB_COLS
	    " WHERE j.id = ?1", -1, &s, NULL) != SQLITE_OK) {
		store_sqlite_err(st, err, errlen, "job");
		goto out;
	}
	sqlite3_bind_int64(s, 1, id);
	step = sqlite3_step(s);
	if (step == SQLITE_ROW) {
		store_sqlite_job_row(s, r);
		rc = 1;
	} else if (step == SQLITE_DONE)
		rc = 0;
	else
		store_sqlite_err(st, err, errlen, "job");
out:
	sqlite3_finalize(s);
	return rc;
}

static int
store_sqlite_list_attempts(struct store *st, int64_t job_id,
    struct store_attempt_row **rowsp, size_t *np, char *err, size_t errlen)
{
	sqlite3_stmt	*s = NULL;
	struct store_attempt_row *rows = NULL, *r;
	size_t		 n = 0;
	int		 rc = -1, step;

	if (sqlite3_prepare_v2(st->db, "SELECT n, started, ended, ok, error"
	    " FROM attempts WHERE job_id = ?1 ORDER BY n", -1, &s,
	    NULL) != SQLITE_OK) {
		store_sqlite_err(st, err, errlen, "attempts");
		goto out;
	}
	sqlite3_bind_int64(s, 1, job_id);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		rows = xreallocarray(rows, n + 1, sizeof(*rows));
		r = &rows[n++];
		r->n = sqlite3_column_int(s, 0);
		r->started_ms = sqlite3_column_int64(s, 1);
		r->ended_ms = sqlite3_column_int64(s, 2);
		r->ok = sqlite3_column_int(s, 3);
		r->error = store_sqlite_col(s, 4);
	}
	if (step != SQLITE_DONE) {
		store_sqlite_err(st, err, errlen, "attempts");
		goto out;
	}
	*rowsp = rows;
	*np = n;
	rows = NULL;
	n = 0;
	rc = 0;
out:
	store_attempt_rows_free(rows, n);
	sqlite3_finalize(s);
	return rc;
}

static int
store_sqlite_retry_job(struct store *st, int64_t id, int64_t now_ms,
    char *err, size_t errlen)
{
	sqlite3_stmt	*s = NULL;
	int		 rc = -1, step, state;

	if (sqlite3_prepare_v2(st->db, "SELECT state FROM jobs WHERE id = ?1",
	    -1, &s, NULL) != SQLITE_OK) {
		store_sqlite_err(st, err, errlen, "retry");
		goto out;
	}
	sqlite3_bind_int64(s, 1, id);
	step = sqlite3_step(s);
	if (step == SQLITE_DONE) {
		rc = 2;
		goto out;
	}
	if (step != SQLITE_ROW) {
		store_sqlite_err(st, err, errlen, "retry");
		goto out;
	}
	state = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	s = NULL;
	if (state != JOB_FAILED && state != JOB_DEAD) {
		rc = 1;
		goto out;
	}
	/* A manual retry starts a fresh series of attempts. */
	if (sqlite3_prepare_v2(st->db, "UPDATE jobs SET state = 1,"
	    " max_attempts = max_attempts + attempts, not_before = 0,"
	    " updated = ?2 WHERE id = ?1", -1, &s, NULL) != SQLITE_OK) {
		store_sqlite_err(st, err, errlen, "retry");
		goto out;
	}
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, now_ms);
	if (sqlite3_step(s) != SQLITE_DONE) {
		store_sqlite_err(st, err, errlen, "retry");
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(s);
	return rc;
}

static int
store_sqlite_retention(struct store *st, int64_t keep_before_ms,
    int64_t dedup_before_ms, int64_t *deleted, char *err, size_t errlen)
{
	char	*sql;
	int	 rc = -1, before;

	*deleted = 0;
	if (store_sqlite_begin(st, err, errlen) == -1)
		return -1;
	before = sqlite3_total_changes(st->db);
	sql = xasprintf(
	    "CREATE TEMP TABLE IF NOT EXISTS old_jobs(id INTEGER PRIMARY KEY);"
	    "DELETE FROM old_jobs;"
	    /* Without statistics the planner would take jobs_state. */
	    "INSERT INTO old_jobs SELECT id FROM jobs INDEXED BY jobs_finished"
	    " WHERE state IN (3, 5) AND updated < %lld;"
	    "DELETE FROM attempts WHERE job_id IN (SELECT id FROM old_jobs);"
	    "DELETE FROM event_jobs WHERE job_id IN (SELECT id FROM old_jobs);"
	    "DELETE FROM jobs WHERE id IN (SELECT id FROM old_jobs);"
	    /* An event stays while its delivery id is remembered. */
	    "DELETE FROM events WHERE received < %lld AND NOT EXISTS"
	    " (SELECT 1 FROM event_jobs ej WHERE ej.event_id = events.id);"
	    "DELETE FROM notify_keys WHERE planned < %lld;",
	    (long long)keep_before_ms,
	    (long long)(keep_before_ms < dedup_before_ms ? keep_before_ms :
	    dedup_before_ms), (long long)keep_before_ms);
	if (store_sqlite_exec(st, sql, err, errlen) == -1)
		goto out;
	*deleted = sqlite3_total_changes(st->db) - before;
	if (store_sqlite_commit(st, err, errlen) == -1)
		goto out;
	if (st->seen != NULL)
		*deleted += (int64_t)seen_prune(st->seen, dedup_before_ms);
	rc = 0;
out:
	free(sql);
	if (rc == -1)
		store_sqlite_rollback(st);
	return rc;
}

/*
 * Replicas and roles.  These run every few seconds, not per delivery:
 * prepared per call rather than kept.
 */
static sqlite3_stmt *
store_sqlite_prepare(struct store *st, const char *sql, const char *what,
    char *err, size_t errlen)
{
	sqlite3_stmt	*s = NULL;

	if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK) {
		store_sqlite_err(st, err, errlen, what);
		sqlite3_finalize(s);
		return NULL;
	}
	return s;
}

/* Run a prepared statement without rows to its end and finalize it. */
static int
store_sqlite_run(struct store *st, sqlite3_stmt *s, const char *what,
    char *err, size_t errlen)
{
	int	 rc = 0;

	if (sqlite3_step(s) != SQLITE_DONE) {
		store_sqlite_err(st, err, errlen, what);
		rc = -1;
	}
	sqlite3_finalize(s);
	return rc;
}

static int
store_sqlite_replica_beat(struct store *st, const struct store_replica *r,
    int64_t forget_before_ms, char *err, size_t errlen)
{
	sqlite3_stmt	*s;

	if ((s = store_sqlite_prepare(st, "INSERT INTO replicas(id, hostname,"
	    " pid, version, started, heartbeat) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
	    " ON CONFLICT(id) DO UPDATE SET heartbeat = excluded.heartbeat",
	    "replica", err, errlen)) == NULL)
		return -1;
	store_sqlite_text(s, 1, r->id);
	store_sqlite_text(s, 2, r->hostname);
	sqlite3_bind_int64(s, 3, r->pid);
	store_sqlite_text(s, 4, r->version);
	sqlite3_bind_int64(s, 5, r->started_ms);
	sqlite3_bind_int64(s, 6, r->heartbeat_ms);
	if (store_sqlite_run(st, s, "replica", err, errlen) == -1)
		return -1;
	if ((s = store_sqlite_prepare(st, "DELETE FROM replicas"
	    " WHERE heartbeat < ?1", "replica", err, errlen)) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, forget_before_ms);
	return store_sqlite_run(st, s, "replica", err, errlen);
}

static int
store_sqlite_replica_leave(struct store *st, const char *id, char *err,
    size_t errlen)
{
	sqlite3_stmt	*s;

	if ((s = store_sqlite_prepare(st, "DELETE FROM roles WHERE owner = ?1",
	    "replica", err, errlen)) == NULL)
		return -1;
	store_sqlite_text(s, 1, id);
	if (store_sqlite_run(st, s, "replica", err, errlen) == -1)
		return -1;
	if ((s = store_sqlite_prepare(st, "DELETE FROM replicas WHERE id = ?1",
	    "replica", err, errlen)) == NULL)
		return -1;
	store_sqlite_text(s, 1, id);
	return store_sqlite_run(st, s, "replica", err, errlen);
}

static int
store_sqlite_list_replicas(struct store *st, struct store_replica_row **rows,
    size_t *n, char *err, size_t errlen)
{
	struct store_replica_row	*v = NULL, *r;
	sqlite3_stmt			*s;
	size_t				 cnt = 0;
	int				 step;

	*rows = NULL;
	*n = 0;
	if ((s = store_sqlite_prepare(st, "SELECT r.id, r.hostname, r.pid,"
	    " r.version, r.started, r.heartbeat, (SELECT count(*) FROM jobs j"
	    " WHERE j.state = 2 AND j.lease_owner = r.id) FROM replicas r"
	    " ORDER BY r.started, r.id", "replicas", err, errlen)) == NULL)
		return -1;
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		v = xreallocarray(v, cnt + 1, sizeof(*v));
		r = &v[cnt++];
		r->id = store_sqlite_col(s, 0);
		r->hostname = store_sqlite_col(s, 1);
		r->pid = sqlite3_column_int64(s, 2);
		r->version = store_sqlite_col(s, 3);
		r->started_ms = sqlite3_column_int64(s, 4);
		r->heartbeat_ms = sqlite3_column_int64(s, 5);
		r->running = sqlite3_column_int64(s, 6);
	}
	if (step != SQLITE_DONE) {
		store_sqlite_err(st, err, errlen, "replicas");
		sqlite3_finalize(s);
		store_replica_rows_free(v, cnt);
		return -1;
	}
	sqlite3_finalize(s);
	*rows = v;
	*n = cnt;
	return 0;
}

static int
store_sqlite_role_hold(struct store *st, const char *role, const char *owner,
    int64_t ttl_ms, int64_t now_ms, char *err, size_t errlen)
{
	sqlite3_stmt	*s;

	if ((s = store_sqlite_prepare(st, "INSERT INTO roles(name, owner,"
	    " until) VALUES (?1, ?2, ?3) ON CONFLICT(name) DO UPDATE SET"
	    " owner = excluded.owner, until = excluded.until"
	    " WHERE roles.owner = excluded.owner OR roles.until <= ?4",
	    "role", err, errlen)) == NULL)
		return -1;
	store_sqlite_text(s, 1, role);
	store_sqlite_text(s, 2, owner);
	sqlite3_bind_int64(s, 3, now_ms + ttl_ms);
	sqlite3_bind_int64(s, 4, now_ms);
	if (store_sqlite_run(st, s, "role", err, errlen) == -1)
		return -1;
	/* An upsert whose WHERE fails changes no row. */
	return sqlite3_changes(st->db) > 0 ? 1 : 0;
}

static int
store_sqlite_list_roles(struct store *st, struct store_role_row **rows,
    size_t *n, char *err, size_t errlen)
{
	struct store_role_row	*v = NULL, *r;
	sqlite3_stmt		*s;
	size_t			 cnt = 0;
	int			 step;

	*rows = NULL;
	*n = 0;
	if ((s = store_sqlite_prepare(st, "SELECT name, owner, until FROM roles"
	    " ORDER BY name", "roles", err, errlen)) == NULL)
		return -1;
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		v = xreallocarray(v, cnt + 1, sizeof(*v));
		r = &v[cnt++];
		r->name = store_sqlite_col(s, 0);
		r->owner = store_sqlite_col(s, 1);
		r->until_ms = sqlite3_column_int64(s, 2);
	}
	if (step != SQLITE_DONE) {
		store_sqlite_err(st, err, errlen, "roles");
		sqlite3_finalize(s);
		store_role_rows_free(v, cnt);
		return -1;
	}
	sqlite3_finalize(s);
	*rows = v;
	*n = cnt;
	return 0;
}

static int
store_sqlite_checkpoint(struct store *st, enum st_ckpt mode, char *err,
    size_t errlen)
{
	int	 log = 0, done = 0, rc;

	switch (mode) {
	case ST_CKPT_RESTART:
		/* Not waiting: the caller is the writer, between rounds. */
		sqlite3_busy_timeout(st->db, 0);
		rc = sqlite3_wal_checkpoint_v2(st->db, NULL,
		    SQLITE_CHECKPOINT_RESTART, &log, &done);
		sqlite3_busy_timeout(st->db, STORE_SQLITE_BUSY_MS);
		if (rc == SQLITE_BUSY)
			return 1;
		break;
	case ST_CKPT_TRUNCATE:
		rc = sqlite3_wal_checkpoint_v2(st->db, NULL,
		    SQLITE_CHECKPOINT_TRUNCATE, &log, &done);
		break;
	default:
		rc = sqlite3_wal_checkpoint_v2(st->db, NULL,
		    SQLITE_CHECKPOINT_PASSIVE, &log, &done);
		break;
	}
	if (rc != SQLITE_OK) {
		store_sqlite_err(st, err, errlen, "checkpoint");
		return -1;
	}
	return 0;
}

static int
store_sqlite_rows_each(struct store *st, enum store_table t, store_row_cb *cb,
    void *arg, char *err, size_t errlen)
{
	const char	*vals[STORE_TABLE_MAXCOLS];
	sqlite3_stmt	*s = NULL;
	char		*sql = store_table_sql(t, 0, "");
	int		 i, r, rc = -1;

	if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK) {
		store_sqlite_err(st, err, errlen, store_tables[t].name);
		goto out;
	}
	while ((r = sqlite3_step(s)) == SQLITE_ROW) {
		for (i = 0; i < store_tables[t].ncols; i++)
			vals[i] = (const char *)sqlite3_column_text(s, i);
		if (cb(arg, vals, err, errlen) != 0)
			goto out;
	}
	if (r != SQLITE_DONE) {
		store_sqlite_err(st, err, errlen, store_tables[t].name);
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(s);
	free(sql);
	return rc;
}

static int
store_sqlite_rows_count(struct store *st, enum store_table t, int64_t *n,
    char *err, size_t errlen)
{
	sqlite3_stmt	*s = NULL;
	char		*sql = xasprintf("SELECT count(*) FROM %s",
			    store_tables[t].name);
	int		 rc = -1;

	if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK ||
	    sqlite3_step(s) != SQLITE_ROW) {
		store_sqlite_err(st, err, errlen, store_tables[t].name);
		goto out;
	}
	*n = sqlite3_column_int64(s, 0);
	rc = 0;
out:
	sqlite3_finalize(s);
	free(sql);
	return rc;
}

/*
 * Values are bound as text: a column's type affinity turns "42" back into
 * the integer 42, so the copy stores what the original did.
 */
static int
store_sqlite_row_put(struct store *st, enum store_table t,
    const char *const *vals, int64_t *kept, char *err, size_t errlen)
{
	sqlite3_stmt	*s = st->put[t];
	char		*sql;
	int		 i;

	(void)kept;	/* no unique key beyond the ids (see the top) */
	if (s == NULL) {
		sql = store_table_sql(t, '?', "");
		i = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);
		free(sql);
		if (i != SQLITE_OK) {
			store_sqlite_err(st, err, errlen, store_tables[t].name);
			return -1;
		}
		st->put[t] = s;
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	for (i = 0; i < store_tables[t].ncols; i++)
		store_sqlite_text(s, i + 1, vals[i]);
	return store_sqlite_done(st, s, err, errlen, store_tables[t].name);
}

/* An INTEGER PRIMARY KEY goes on from the largest id stored. */
static int
store_sqlite_rows_done(struct store *st, char *err, size_t errlen)
{
	(void)st;
	(void)err;
	(void)errlen;
	return 0;
}


/*
 * The writer's checkpointer.  The write-ahead log grows with every commit
 * (automatic checkpoints are off so no commit pays for one).  A thread
 * copies it back into the database from a connection of its own: a
 * passive checkpoint beside the writer once the log holds
 * STORE_SQLITE_CKPT_PAGES (the writer's commit wakes it then), and a
 * truncating one once commits have stopped for a second.
 *
 * SQLite starts the log over only when every frame in it has been copied
 * back, which a passive checkpoint beside a writer that never stops does
 * not reach: under a steady load the log grew without bound (half a
 * gigabyte in 8 s of the ingest benchmark) and every commit extended the
 * file (a block allocation and an inode write in each fdatasync).  So
 * after each passive checkpoint the writer copies the rest on its own
 * connection between two rounds (upkeep, a RESTART checkpoint): only the
 * pages written since, a millisecond or so.  At close the writer copies
 * everything back and empties the log (TRUNCATE).
 */
struct store_sqlite_ckpt {
	struct store	*wr;		/* the writer (its wal_pages) */
	struct store	*conn;		/* the thread's own connection */
	pthread_t	 thread;
	pthread_mutex_t	 mtx;
	pthread_cond_t	 cv;
	/* Guarded by mtx. */
	uint64_t	 commits;	/* the writer's */
	int		 asked;		/* woken for a passive checkpoint */
	int		 stop;
	/* Atomic: a passive one is done, the writer restarts the log. */
	int		 restart;
	/* Writer only. */
	uint64_t	 restarts;
};

/*
 * After a commit of the writer: wake the checkpointer once the log holds
 * STORE_SQLITE_CKPT_PAGES, once per checkpoint and restart.
 */
static void
store_sqlite_ckpt_commit(struct store *wr)
{
	struct store_sqlite_ckpt *ck = wr->ck;

	pthread_mutex_lock(&ck->mtx);
	ck->commits++;
	if (!ck->asked && __atomic_load_n(&wr->wal_pages, __ATOMIC_RELAXED) >=
	    STORE_SQLITE_CKPT_PAGES) {
		ck->asked = 1;
		pthread_cond_signal(&ck->cv);
	}
	pthread_mutex_unlock(&ck->mtx);
}

static void *
store_sqlite_ckpt_main(void *arg)
{
	struct store_sqlite_ckpt	*ck = arg;
	struct timespec			 ts;
	uint64_t			 commits, last = 0;
	uint64_t			 truncated_at = UINT64_MAX;
	int64_t				 now, changed = util_mono_ms();
	long				 pages;
	char				 err[256];

	pthread_mutex_lock(&ck->mtx);
	while (!ck->stop) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += STORE_SQLITE_CKPT_IDLE_MS % 1000 * 1000000L;
		ts.tv_sec += STORE_SQLITE_CKPT_IDLE_MS / 1000 +
		    ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&ck->cv, &ck->mtx, &ts);
		if (ck->stop)
			break;
		commits = ck->commits;
		pthread_mutex_unlock(&ck->mtx);

		now = util_mono_ms();
		if (commits != last) {
			last = commits;
			changed = now;
		}
		pages = __atomic_load_n(&ck->wr->wal_pages, __ATOMIC_RELAXED);
		if (now - changed >= STORE_SQLITE_CKPT_IDLE_MS) {
			if (pages > 0 && truncated_at != commits) {
				if (store_sqlite_checkpoint(ck->conn,
				    ST_CKPT_TRUNCATE, err, sizeof(err)) == -1)
					log_warnx("store: %s", err);
				else
					truncated_at = commits;
			}
		} else if (pages >= STORE_SQLITE_CKPT_PAGES) {
			/*
			 * asked stays set until the writer has tried the
			 * restart; a failed checkpoint is tried again at the
			 * next second, not at every commit.
			 */
			if (store_sqlite_checkpoint(ck->conn, ST_CKPT_PASSIVE,
			    err, sizeof(err)) == -1)
				log_warnx("store: %s", err);
			else
				__atomic_store_n(&ck->restart, 1,
				    __ATOMIC_RELEASE);
		}
		pthread_mutex_lock(&ck->mtx);
	}
	pthread_mutex_unlock(&ck->mtx);
	return NULL;
}

/* Start the writer's checkpointer (see struct store_sqlite_ckpt). */
static int
store_sqlite_ckpt_start(struct store *wr, char *err, size_t errlen)
{
	struct store_sqlite_ckpt	*ck;
	const char			*path;
	int				 transient, e;

	/* A database without a file (":memory:") has no log. */
	path = sqlite3_db_filename(wr->db, "main");
	if (path == NULL || *path == '\0')
		return 0;
	ck = xcalloc(1, sizeof(*ck));
	ck->wr = wr;
	if ((ck->conn = store_sqlite_open(path, &transient, err, errlen)) ==
	    NULL) {
		/* The writer answers transient() for it. */
		wr->fail_rc = transient ? SQLITE_IOERR : SQLITE_CANTOPEN;
		wr->fail_errno = 0;
		free(ck);
		return -1;
	}
	pthread_mutex_init(&ck->mtx, NULL);
	pthread_cond_init(&ck->cv, NULL);
	if ((e = pthread_create(&ck->thread, NULL, store_sqlite_ckpt_main,
	    ck)) != 0) {
		snprintf(err, errlen, "checkpoint thread: %s", strerror(e));
		wr->fail_rc = SQLITE_ERROR;
		store_sqlite_close(ck->conn);
		pthread_cond_destroy(&ck->cv);
		pthread_mutex_destroy(&ck->mtx);
		free(ck);
		return -1;
	}
	metrics_describe("gitopsd_store_wal_restarts_total", "counter",
	    "Times the write-ahead log started over under load after a"
	    " checkpoint.");
	wr->ck = ck;
	return 0;
}

/* At the writer's close: stop the thread, then empty the log. */
static void
store_sqlite_ckpt_stop(struct store *wr)
{
	struct store_sqlite_ckpt	*ck = wr->ck;
	char				 err[256];

	pthread_mutex_lock(&ck->mtx);
	ck->stop = 1;
	pthread_cond_signal(&ck->cv);
	pthread_mutex_unlock(&ck->mtx);
	pthread_join(ck->thread, NULL);
	store_sqlite_close(ck->conn);
	if (store_sqlite_checkpoint(wr, ST_CKPT_TRUNCATE, err,
	    sizeof(err)) == -1)
		log_warnx("store: final %s", err);
	if (ck->restarts > 0)
		log_info("store: the write-ahead log started over %" PRIu64
		    " times", ck->restarts);
	pthread_cond_destroy(&ck->cv);
	pthread_mutex_destroy(&ck->mtx);
	free(ck);
	wr->ck = NULL;
}

/*
 * Between rounds, after a passive checkpoint: copy back what it left and
 * start the log over (see struct store_sqlite_ckpt).  A reader in the way
 * (an admin read) makes it give up at once; the next passive checkpoint
 * asks again.
 */
static void
store_sqlite_upkeep(struct store *wr)
{
	struct store_sqlite_ckpt	*ck = wr->ck;
	char				 err[256];
	int				 r;

	if (ck == NULL ||
	    !__atomic_exchange_n(&ck->restart, 0, __ATOMIC_ACQ_REL))
		return;
	r = store_sqlite_checkpoint(wr, ST_CKPT_RESTART, err, sizeof(err));
	if (r == -1)
		log_warnx("store: %s", err);
	else if (r == 0) {
		metrics_counter_add("gitopsd_store_wal_restarts_total", "", 1);
		ck->restarts++;
	}
	/* Done or not, the next commit past the mark asks again. */
	pthread_mutex_lock(&ck->mtx);
	ck->asked = 0;
	pthread_mutex_unlock(&ck->mtx);
}

static int
store_sqlite_writer_start(struct store *wr, int64_t dedup_since_ms,
    char *err, size_t errlen)
{
	if (store_sqlite_load_deliveries(wr, dedup_since_ms, err, errlen) ==
	    -1)
		return -1;
	return wr->ck != NULL ? 0 : store_sqlite_ckpt_start(wr, err, errlen);
}

const struct store_ops store_sqlite_ops = {
	.rows_each = store_sqlite_rows_each,
	.rows_count = store_sqlite_rows_count,
	.row_put = store_sqlite_row_put,
	.rows_done = store_sqlite_rows_done,
	.name = "sqlite",
	.open = store_sqlite_open,
	.close = store_sqlite_close,
	.transient = store_sqlite_transient,
	.begin = store_sqlite_begin,
	.commit = store_sqlite_commit,
	.rollback = store_sqlite_rollback,
	.item_begin = store_sqlite_item_begin,
	.item_end = store_sqlite_item_end,
	.item_abort = store_sqlite_item_abort,
	.writer_start = store_sqlite_writer_start,
	.upkeep = store_sqlite_upkeep,
	.add_event = store_sqlite_add_event,
	.add_job = store_sqlite_add_job,
	.count_pending = store_sqlite_count_pending,
	.count_states = store_sqlite_count_states,
	.renew = store_sqlite_renew,
	.takeover = store_sqlite_takeover,
	.next_due = store_sqlite_next_due,
	.claim = store_sqlite_claim,
	.finish = store_sqlite_finish,
	.app_record = store_sqlite_app_record,
	.app_image_set = store_sqlite_app_image_set,
	.app_get = store_sqlite_app_get,
	.inventory_get = store_sqlite_inventory_get,
	.inventory_set = store_sqlite_inventory_set,
	.notify_key = store_sqlite_notify_key,
	.event_received = store_sqlite_event_received,
	.list_events = store_sqlite_list_events,
	.list_jobs = store_sqlite_list_jobs,
	.get_job = store_sqlite_get_job,
	.list_attempts = store_sqlite_list_attempts,
	.retry_job = store_sqlite_retry_job,
	.retention = store_sqlite_retention,
	.replica_beat = store_sqlite_replica_beat,
	.replica_leave = store_sqlite_replica_leave,
	.list_replicas = store_sqlite_list_replicas,
	.role_hold = store_sqlite_role_hold,
	.list_roles = store_sqlite_list_roles,
};

void
store_job_row_clear(struct store_job_row *r)
{
	free(r->app);
	free(r->repo);
	free(r->revision);
	free(r->image);
	free(r->tag);
	free(r->digest);
	free(r->params);
	free(r->source);
	free(r->delivery);
	free(r->error);
	free(r->result);
	memset(r, 0, sizeof(*r));
}

void
store_job_rows_free(struct store_job_row *rows, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		store_job_row_clear(&rows[i]);
	free(rows);
}

void
store_attempt_rows_free(struct store_attempt_row *rows, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		free(rows[i].error);
	free(rows);
}

void
store_event_rows_free(struct store_event_row *rows, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++) {
		free(rows[i].source);
		free(rows[i].delivery);
		free(rows[i].kind);
		free(rows[i].summary);
		free(rows[i].job_ids);
	}
	free(rows);
}

void
store_app_row_clear(struct store_app_row *r)
{
	size_t	 i;

	free(r->revision);
	free(r->health);
	free(r->last_error);
	for (i = 0; i < r->nimages; i++) {
		free(r->images[i].image);
		free(r->images[i].tag);
		free(r->images[i].digest);
	}
	free(r->images);
	memset(r, 0, sizeof(*r));
}
