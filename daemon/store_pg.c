/*
 * store_pg.c: the state store on PostgreSQL (include/store.h), for
 * several replicas sharing one database (DESIGN.md section 9).
 *
 * Every statement goes through PQexecParams (or, for a round's
 * deliveries, PQsendQueryParams in one pipeline, see add_deliveries) with
 * its values as $n parameters in text form; no SQL is ever built from a
 * value.  Every
 * result is checked and cleared before the call returns.  Job states and
 * kinds are stored as their enum numbers, as in the SQLite backend, so the
 * two backends read the same rows the same way.
 *
 * Sessions run with synchronous_commit on: a COMMIT that returns is on the
 * server's disk (and its synchronous standbys), which is what a 202 means.
 *
 * Deduplication is the unique key (source, delivery) of events, inserted
 * with ON CONFLICT DO NOTHING: a second replica inserting the same key
 * waits for the first one's transaction and then inserts nothing, so one
 * delivery sent to two replicas gets one 202.  A delivery id is therefore
 * remembered as long as its event is kept (retention keeps an event at
 * least dedup_days), not only for the dedup window; writer_start has
 * nothing to load.
 *
 * Claims serialize on a transaction-level advisory lock, held until the
 * claiming round commits: the next claimer, on whichever replica, then sees
 * the jobs marked running and keeps the per-app and per-repository rules.
 * Rows are read FOR UPDATE SKIP LOCKED so a job being retried or finished
 * by another connection is passed over instead of waited for.  A claimed
 * job carries its claimer's lease (lease_owner, lease_until) and the
 * claim's token (claims, counted up by each claim); takeover runs under
 * the same lock, and finish and renew are fenced by lease and token.
 *
 * Idle replicas learn of runnable work through LISTEN/NOTIFY: a round that
 * queued a job, retried one or finished an attempt (which frees its app
 * and repository for the next job) sends one NOTIFY on channel
 * gitopsd_jobs just before its COMMIT, so it is delivered on commit and
 * never for work rolled back.  The payload names the sending process:
 * its own connections ignore it (the round that queued a job has tried to
 * claim it already).  PostgreSQL folds repeated notifications of one
 * transaction into one.  A listening connection (listen) is watched by the
 * caller's event loop (wait_fd) and read with drain_notifications.
 *
 * The write-ahead log belongs to the server, which checkpoints it by
 * itself: writer_start starts nothing beside the writer and there is no
 * upkeep.
 *
 * A lost connection makes the call fail with "connection lost" and the
 * transaction with it (nothing uncommitted is acknowledged); the next call
 * outside a transaction reconnects, with a doubling backoff while the
 * server stays away.  A DSN's connect_timeout bounds each attempt.  The DSN
 * is a secret: it is never copied into a message (libpq's own messages
 * name host and port, never the password).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "job.h"
#include "metrics.h"
#include "store.h"
#include "util.h"

/* The newest schema this binary knows; a newer database is refused. */
#define STORE_PG_SCHEMA		3
/* Advisory lock keys: "gitp" (ours) in the first, the purpose second. */
#define STORE_PG_LOCK_NS	0x67697470
#define STORE_PG_LOCK_SCHEMA	1
#define STORE_PG_LOCK_CLAIM	2
#define STORE_PG_MAXPARAMS	12
/* Candidates read per claim beyond what can be taken (others are skipped
 * for a busy app or repository). */
#define STORE_PG_CLAIM_SLACK	64
/* Reconnect attempts after a lost connection: doubling from/up to. */
#define STORE_PG_CONNECT_TIMEOUT_S "10"	/* when the DSN says none */
/*
 * A server that goes silent in the middle of a query (its host gone, a
 * network that drops packets) would hold the caller until the kernel gives
 * up, minutes later.  When the DSN says nothing of its own: keepalive
 * probes after 10 s of silence, every 5 s, 3 unanswered mean the
 * connection is dead (about 25 s), and data the server's host has not
 * acknowledged for 25 s does the same.  A server that is only slow still
 * answers probes.
 */
#define STORE_PG_KEEPALIVES_IDLE_S	"10"
#define STORE_PG_KEEPALIVES_INTERVAL_S	"5"
#define STORE_PG_KEEPALIVES_COUNT	"3"
#define STORE_PG_TCP_USER_TIMEOUT_MS	"25000"
/*
 * The event loop's own connections (admin reads and writes, wake-ups) run
 * their queries synchronously on the loop; a query that waits on a lock
 * the store thread or another session holds would stop every webhook and
 * every admin request meanwhile.  The server cancels such a query after
 * this long; the admin call fails with it.
 */
#define STORE_PG_LOOP_STATEMENT_TIMEOUT_MS "5000"
#define STORE_PG_BACKOFF_MIN_MS	100
#define STORE_PG_BACKOFF_MAX_MS	5000
/* LISTEN/NOTIFY channel of job wake-ups (see the top). */
#define STORE_PG_CHANNEL	"gitopsd_jobs"

/*
 * The statements every delivery runs, prepared once per session: parsing
 * and planning them again for each delivery took a third of the
 * server's CPU under load (docs/benchmarks.md).
 */
enum store_pg_stmt {
	STORE_PG_ST_EVENT,
	STORE_PG_ST_ABSORB,
	STORE_PG_ST_LINK,
	STORE_PG_ST_INGEST,	/* store_pg_ingest_sql */
	STORE_PG_ST_FINISH,
};

struct store {
	PGconn		*conn;
	unsigned	 prepared;	/* 1 << store_pg_stmt, this session */
	int		 in_tx;		/* between begin and commit/rollback */
	int64_t		 retry_ms;	/* no reconnect before (monotonic) */
	int64_t		 backoff_ms;
	int		 listening;	/* LISTEN again after a reconnect */
	int		 wake;		/* NOTIFY before this commit */
	int		 loop;		/* the event loop's: never blocks on a
					 * connect (store_pg_connect_poll) */
	int		 connecting;	/* PQconnectStart/PQresetStart begun */
	int		 polled;	/* connect_poll called since */
};

/* This process's NOTIFY payload (see the top). */
static char		 store_pg_token[48];
static pthread_once_t	 store_pg_token_once = PTHREAD_ONCE_INIT;

static void
store_pg_token_init(void)
{
	snprintf(store_pg_token, sizeof(store_pg_token), "%ld-%lld",
	    (long)getpid(), (long long)util_now_ms());
}

/* Query parameters in text form; numbers are printed into buf. */
struct store_pg_params {
	const char	*v[STORE_PG_MAXPARAMS];
	char		 buf[STORE_PG_MAXPARAMS][24];
	int		 n;
};

static const char store_pg_schema[] =
    "CREATE TABLE events(id bigserial PRIMARY KEY,"
    " source text NOT NULL, delivery text NOT NULL, received bigint NOT NULL,"
    " kind text NOT NULL, summary text, UNIQUE(source, delivery));"
    "CREATE INDEX events_received ON events(received);"
    "CREATE TABLE jobs(id bigserial PRIMARY KEY,"
    " kind integer NOT NULL, state integer NOT NULL, app text, repo text,"
    " revision text, image text, tag text, digest text, params text,"
    " event_id bigint, attempts integer NOT NULL DEFAULT 0,"
    " max_attempts integer NOT NULL, created bigint NOT NULL,"
    " updated bigint NOT NULL, not_before bigint NOT NULL DEFAULT 0,"
    " started bigint, error text, result text);"
    "CREATE INDEX jobs_state ON jobs(state, not_before);"
    "CREATE INDEX jobs_queued_sync ON jobs(app) WHERE state = 1 AND kind = 1;"
    "CREATE INDEX jobs_finished ON jobs(updated) WHERE state IN (3, 5);"
    "CREATE TABLE event_jobs(event_id bigint NOT NULL,"
    " job_id bigint NOT NULL, PRIMARY KEY(event_id, job_id));"
    "CREATE INDEX event_jobs_job ON event_jobs(job_id);"
    "CREATE TABLE attempts(job_id bigint NOT NULL, n integer NOT NULL,"
    " started bigint, ended bigint, ok integer NOT NULL, error text,"
    " PRIMARY KEY(job_id, n));"
    "CREATE TABLE apps(name text PRIMARY KEY, outcome integer,"
    " revision text, health text, synced_at bigint, last_job bigint,"
    " last_error text);"
    "CREATE TABLE app_images(app text NOT NULL, image text NOT NULL,"
    " tag text, digest text, PRIMARY KEY(app, image));"
    "CREATE TABLE notify_keys(key text PRIMARY KEY, planned bigint NOT NULL);"
    "CREATE TABLE app_inventory(app text PRIMARY KEY, objects text NOT NULL,"
    " updated bigint NOT NULL);";

/*
 * The steps from each schema version to the next: store_pg_migrations[v]
 * takes a database at version v + 1 to v + 2.  A new database gets
 * store_pg_schema (version 1), then every step.
 */
static const char *const store_pg_migrations[] = {
	/*
	 * 2: the replicas, their heartbeats and the roles one of them holds
	 * at a time; the replica holding a running job's lease, and until
	 * when (unix ms).
	 */
	"ALTER TABLE jobs ADD COLUMN IF NOT EXISTS lease_owner text;"
	"ALTER TABLE jobs ADD COLUMN IF NOT EXISTS lease_until bigint;"
	"CREATE TABLE IF NOT EXISTS replicas(id text PRIMARY KEY,"
	" hostname text NOT NULL, pid bigint NOT NULL, version text NOT NULL,"
	" started bigint NOT NULL, heartbeat bigint NOT NULL);"
	"CREATE TABLE IF NOT EXISTS roles(name text PRIMARY KEY,"
	" owner text NOT NULL, until bigint NOT NULL);",
	/*
	 * 3: how many times each job was claimed, the token of its current
	 * claim (see claim in store.h).
	 */
	"ALTER TABLE jobs ADD COLUMN IF NOT EXISTS claims bigint NOT NULL"
	" DEFAULT 0;",
};
_Static_assert(nitems(store_pg_migrations) == STORE_PG_SCHEMA - 1,
    "one migration per schema version after 1");

static void
store_pg_p_text(struct store_pg_params *p, const char *v)
{
	p->v[p->n++] = v;
}

static void
store_pg_p_int(struct store_pg_params *p, int64_t v)
{
	snprintf(p->buf[p->n], sizeof(p->buf[p->n]), "%lld", (long long)v);
	p->v[p->n] = p->buf[p->n];
	p->n++;
}

/* 0 as NULL, for optional ids and times. */
static void
store_pg_p_opt(struct store_pg_params *p, int64_t v)
{
	if (v == 0)
		p->v[p->n++] = NULL;
	else
		store_pg_p_int(p, v);
}

static void
store_pg_errmsg(struct store *st, char *err, size_t errlen, const char *what,
    const PGresult *res)
{
	const char	*m;
	size_t		 len;

	metrics_counter_add("gitopsd_store_errors_total",
	    "backend=\"postgres\"", 1);
	if (err == NULL || errlen == 0)
		return;
	if (PQstatus(st->conn) == CONNECTION_BAD) {
		snprintf(err, errlen, "%s: connection lost: %s", what,
		    PQerrorMessage(st->conn));
	} else {
		m = res != NULL ? PQresultErrorMessage(res) : "";
		if (*m == '\0')
			m = PQerrorMessage(st->conn);
		snprintf(err, errlen, "%s: %s", what, m);
	}
	/* libpq ends its messages with a newline. */
	len = strlen(err);
	while (len > 0 && (err[len - 1] == '\n' || err[len - 1] == ' '))
		err[--len] = '\0';
}

static int	store_pg_session(struct store *, char *, size_t);

/*
 * A lost connection is reset before the next statement outside a
 * transaction (inside one, the transaction is gone and its statements
 * must fail), at most once per backoff step so a dead server costs each
 * caller one connect attempt, not one per statement.
 */
static int
store_pg_reconnect(struct store *st, char *err, size_t errlen)
{
	int64_t	 now;

	if (st->connecting) {
		snprintf(err, errlen, "connection lost: reconnecting");
		return -1;
	}
	if (PQstatus(st->conn) != CONNECTION_BAD || st->in_tx)
		return 0;
	/* The loop's connections are made again by the loop, unblocked. */
	if (st->loop) {
		snprintf(err, errlen, "connection lost: %s",
		    PQerrorMessage(st->conn));
		err[strcspn(err, "\n")] = '\0';
		return -1;
	}
	now = util_mono_ms();
	if (now < st->retry_ms) {
		snprintf(err, errlen, "connection lost: reconnecting in %lld ms",
		    (long long)(st->retry_ms - now));
		return -1;
	}
	PQreset(st->conn);
	if (PQstatus(st->conn) != CONNECTION_OK) {
		st->backoff_ms = st->backoff_ms == 0 ? STORE_PG_BACKOFF_MIN_MS :
		    st->backoff_ms * 2;
		if (st->backoff_ms > STORE_PG_BACKOFF_MAX_MS)
			st->backoff_ms = STORE_PG_BACKOFF_MAX_MS;
		st->retry_ms = now + st->backoff_ms;
		store_pg_errmsg(st, err, errlen, "reconnect", NULL);
		return -1;
	}
	st->backoff_ms = 0;
	st->retry_ms = 0;
	return store_pg_session(st, err, errlen);
}

/*
 * Run one statement; returns its result (the caller clears it) when its
 * status is the expected one, else NULL with err set.
 */
static PGresult *
store_pg_q(struct store *st, const char *sql, const struct store_pg_params *p,
    ExecStatusType want, const char *what, char *err, size_t errlen)
{
	PGresult	*res;

	if (store_pg_reconnect(st, err, errlen) == -1)
		return NULL;
	res = PQexecParams(st->conn, sql, p != NULL ? p->n : 0, NULL,
	    p != NULL ? p->v : NULL, NULL, NULL, 0);
	if (res == NULL || PQresultStatus(res) != want) {
		store_pg_errmsg(st, err, errlen, what, res);
		PQclear(res);
		return NULL;
	}
	return res;
}

/* The session's name of prepared statement id. */
static void
store_pg_stmt_name(enum store_pg_stmt id, char *name, size_t len)
{
	snprintf(name, len, "gitopsd_%d", (int)id);
}

/* store_pg_q for one of the prepared statements. */
static PGresult *
store_pg_qp(struct store *st, enum store_pg_stmt id, const char *sql,
    const struct store_pg_params *p, ExecStatusType want, const char *what,
    char *err, size_t errlen)
{
	PGresult	*res;
	char		 name[24];

	if (store_pg_reconnect(st, err, errlen) == -1)
		return NULL;
	store_pg_stmt_name(id, name, sizeof(name));
	if (!(st->prepared & (1u << id))) {
		res = PQprepare(st->conn, name, sql, p->n, NULL);
		if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
			store_pg_errmsg(st, err, errlen, what, res);
			PQclear(res);
			return NULL;
		}
		PQclear(res);
		st->prepared |= 1u << id;
	}
	res = PQexecPrepared(st->conn, name, p->n, p->v, NULL, NULL, 0);
	if (res == NULL || PQresultStatus(res) != want) {
		store_pg_errmsg(st, err, errlen, what, res);
		PQclear(res);
		return NULL;
	}
	return res;
}

/* A statement without rows; *changed (if not NULL) gets the row count. */
static int
store_pg_cmd(struct store *st, const char *sql, const struct store_pg_params *p,
    const char *what, int64_t *changed, char *err, size_t errlen)
{
	PGresult	*res;

	if ((res = store_pg_q(st, sql, p, PGRES_COMMAND_OK, what, err,
	    errlen)) == NULL)
		return -1;
	if (changed != NULL)
		*changed = strtoll(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	return 0;
}

static int64_t
store_pg_int(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return 0;
	return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/* A column's text, NULL for SQL NULL (borrowed from res). */
static const char *
store_pg_val(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

static char *
store_pg_str(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return NULL;
	return xstrdup(PQgetvalue(res, row, col));
}

/* Server notices (IF NOT EXISTS and the like) are not the daemon's log. */
static void
store_pg_notice(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

static void
store_pg_close(struct store *st)
{
	if (st == NULL)
		return;
	if (st->conn != NULL)
		PQfinish(st->conn);
	free(st);
}

static int
store_pg_session(struct store *st, char *err, size_t errlen)
{
	PQsetNoticeProcessor(st->conn, store_pg_notice, NULL);
	st->prepared = 0;
	if (store_pg_cmd(st, "SET synchronous_commit = on", NULL,
	    "session", NULL, err, errlen) == -1)
		return -1;
	if (st->loop && store_pg_cmd(st, "SET statement_timeout = "
	    STORE_PG_LOOP_STATEMENT_TIMEOUT_MS, NULL, "session", NULL, err,
	    errlen) == -1)
		return -1;
	if (st->listening)
		return store_pg_cmd(st, "LISTEN " STORE_PG_CHANNEL, NULL,
		    "listen", NULL, err, errlen);
	return 0;
}

/* Create or check the schema, under a lock so replicas starting together
 * do not race. */
static int
store_pg_schema_apply(struct store *st, char *err, size_t errlen)
{
	struct store_pg_params	 p = { .n = 0 };
	PGresult		*res = NULL;
	int64_t			 version, applied;
	int			 rc = -1;

	if (store_pg_cmd(st, "BEGIN", NULL, "schema", NULL, err, errlen) == -1)
		return -1;
	store_pg_p_int(&p, STORE_PG_LOCK_NS);
	store_pg_p_int(&p, STORE_PG_LOCK_SCHEMA);
	if ((res = store_pg_q(st, "SELECT pg_advisory_xact_lock($1::int,"
	    " $2::int)", &p, PGRES_TUPLES_OK, "schema lock", err,
	    errlen)) == NULL)
		goto out;
	PQclear(res);
	if (store_pg_cmd(st, "CREATE TABLE IF NOT EXISTS schema_version("
	    "version integer NOT NULL, applied timestamptz NOT NULL"
	    " DEFAULT now())", NULL, "schema", NULL, err, errlen) == -1)
		goto out;
	if ((res = store_pg_q(st, "SELECT coalesce(max(version), 0)"
	    " FROM schema_version", NULL, PGRES_TUPLES_OK, "schema version",
	    err, errlen)) == NULL)
		goto out;
	version = applied = store_pg_int(res, 0, 0);
	PQclear(res);
	if (version > STORE_PG_SCHEMA) {
		snprintf(err, errlen, "the state database has schema version"
		    " %lld, newer than this gitopsd knows (%d): run a newer"
		    " gitopsd", (long long)version, STORE_PG_SCHEMA);
		goto out;
	}
	for (; version < STORE_PG_SCHEMA; version++) {
		/* A multi-statement string takes no parameters: simple query. */
		res = PQexec(st->conn, version == 0 ? store_pg_schema :
		    store_pg_migrations[version - 1]);
		if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
			store_pg_errmsg(st, err, errlen, "create schema", res);
			PQclear(res);
			goto out;
		}
		PQclear(res);
	}
	if (version != applied) {
		p.n = 0;
		store_pg_p_int(&p, STORE_PG_SCHEMA);
		if (store_pg_cmd(st, "INSERT INTO schema_version(version)"
		    " VALUES ($1::int)", &p, "schema version", NULL, err,
		    errlen) == -1)
			goto out;
	}
	if ((res = store_pg_q(st, "COMMIT", NULL, PGRES_COMMAND_OK, "schema",
	    err, errlen)) == NULL)
		goto out;
	PQclear(res);
	rc = 0;
out:
	if (rc == -1 && PQtransactionStatus(st->conn) != PQTRANS_IDLE)
		PQclear(PQexec(st->conn, "ROLLBACK"));
	return rc;
}

/*
 * A DSN without connect_timeout would let libpq wait for a host that
 * drops packets as long as the kernel retries (minutes), with the store
 * thread and every webhook behind it; the keepalive and TCP timeouts do
 * the same for a connection that is up (above).  The defaults come
 * first, so the DSN's own values (the expanded dbname) win.
 */
static const char *const store_pg_conn_keys[] = { "connect_timeout",
    "keepalives_idle", "keepalives_interval", "keepalives_count",
    "tcp_user_timeout", "dbname", NULL };
#define STORE_PG_CONN_VALS(dsn)	{ STORE_PG_CONNECT_TIMEOUT_S, \
    STORE_PG_KEEPALIVES_IDLE_S, STORE_PG_KEEPALIVES_INTERVAL_S, \
    STORE_PG_KEEPALIVES_COUNT, STORE_PG_TCP_USER_TIMEOUT_MS, (dsn), NULL }

static PGconn *
store_pg_connect(const char *dsn, int start)
{
	const char *const	 vals[] = STORE_PG_CONN_VALS(dsn);

	return start ? PQconnectStartParams(store_pg_conn_keys, vals, 1) :
	    PQconnectdbParams(store_pg_conn_keys, vals, 1);
}

/*
 * A server that does not answer, or answers that it cannot take
 * connections yet (starting, shutting down, too many clients), may do so
 * in a minute: gitopsd then starts without its store and keeps trying.
 * Wrong parameters, a refused password or a missing database will not
 * pass by themselves.
 */
static int
store_pg_connect_transient(const char *dsn)
{
	const char *const	 vals[] = STORE_PG_CONN_VALS(dsn);
	PGPing			 ping = PQpingParams(store_pg_conn_keys, vals,
				    1);

	return ping == PQPING_NO_RESPONSE || ping == PQPING_REJECT;
}

static struct store *
store_pg_open(const char *dsn, int *transient, char *err, size_t errlen)
{
	struct store	*st;

	if (transient != NULL)
		*transient = 0;
	pthread_once(&store_pg_token_once, store_pg_token_init);
	st = xcalloc(1, sizeof(*st));
	st->conn = store_pg_connect(dsn, 0);
	if (st->conn == NULL || PQstatus(st->conn) != CONNECTION_OK) {
		snprintf(err, errlen, "postgres: cannot connect: %s",
		    st->conn != NULL ? PQerrorMessage(st->conn) : "no memory");
		err[strcspn(err, "\n")] = '\0';
		if (transient != NULL)
			*transient = store_pg_connect_transient(dsn);
		goto fail;
	}
	if (store_pg_session(st, err, errlen) == -1 ||
	    store_pg_schema_apply(st, err, errlen) == -1) {
		/* The server went away meanwhile: as above. */
		if (transient != NULL && PQstatus(st->conn) == CONNECTION_BAD)
			*transient = 1;
		goto fail;
	}
	return st;
fail:
	store_pg_close(st);
	return NULL;
}

/* A call failed: the connection is gone, and may come back. */
static int
store_pg_transient(struct store *st)
{
	return st->conn == NULL || st->connecting ||
	    PQstatus(st->conn) == CONNECTION_BAD;
}

/*
 * The loop's connections.  PQconnectStart and PQresetStart return before
 * the server answers (a host name is still resolved before they return:
 * give the loop's DSN an address, or a resolver that answers, to keep
 * that short); PQconnectPoll then goes one step per ready socket.  The
 * session statements run once the server has answered the start-up.
 */
static struct store *
store_pg_open_start(const char *dsn, char *err, size_t errlen)
{
	struct store	*st;

	pthread_once(&store_pg_token_once, store_pg_token_init);
	st = xcalloc(1, sizeof(*st));
	st->loop = 1;
	st->conn = store_pg_connect(dsn, 1);
	if (st->conn == NULL || PQstatus(st->conn) == CONNECTION_BAD) {
		snprintf(err, errlen, "postgres: cannot connect: %s",
		    st->conn != NULL ? PQerrorMessage(st->conn) : "no memory");
		err[strcspn(err, "\n")] = '\0';
		store_pg_close(st);
		return NULL;
	}
	st->connecting = 1;
	st->polled = 0;
	return st;
}

static void
store_pg_loop(struct store *st)
{
	PGresult	*res;

	st->loop = 1;
	/* This session was made before it served the loop.  If the SET
	 * fails the connection is as good as lost: the loop makes it
	 * again, and store_pg_session sets the timeout then. */
	res = PQexec(st->conn, "SET statement_timeout = "
	    STORE_PG_LOOP_STATEMENT_TIMEOUT_MS);
	PQclear(res);
}

static int
store_pg_reconnect_start(struct store *st, char *err, size_t errlen)
{
	st->in_tx = 0;
	st->wake = 0;
	if (!PQresetStart(st->conn)) {
		snprintf(err, errlen, "reconnect: %s", PQerrorMessage(st->conn));
		err[strcspn(err, "\n")] = '\0';
		return -1;
	}
	st->connecting = 1;
	st->polled = 0;
	return 0;
}

static int
store_pg_connect_poll(struct store *st, int *fd, int *want_write, char *err,
    size_t errlen)
{
	PostgresPollingStatusType	 r;

	if (!st->connecting)
		return PQstatus(st->conn) == CONNECTION_OK ? 1 : -1;
	/* As libpq asks: wait for writing before the first poll. */
	r = st->polled ? PQconnectPoll(st->conn) : PGRES_POLLING_WRITING;
	st->polled = 1;
	switch (r) {
	case PGRES_POLLING_READING:
	case PGRES_POLLING_WRITING:
		if ((*fd = PQsocket(st->conn)) == -1)
			break;
		*want_write = r == PGRES_POLLING_WRITING;
		return 0;
	case PGRES_POLLING_OK:
		st->connecting = 0;
		return store_pg_session(st, err, errlen) == -1 ? -1 : 1;
	default:
		break;
	}
	/* Still "connecting": calls fail until reconnect_start. */
	snprintf(err, errlen, "connect: %s", PQerrorMessage(st->conn));
	err[strcspn(err, "\n")] = '\0';
	metrics_counter_add("gitopsd_store_errors_total",
	    "backend=\"postgres\"", 1);
	return -1;
}

static int
store_pg_begin(struct store *st, char *err, size_t errlen)
{
	if (store_pg_cmd(st, "BEGIN", NULL, "begin", NULL, err, errlen) == -1)
		return -1;
	st->in_tx = 1;
	return 0;
}

static void
store_pg_rollback(struct store *st)
{
	st->in_tx = 0;
	st->wake = 0;
	if (PQstatus(st->conn) == CONNECTION_OK &&
	    PQtransactionStatus(st->conn) != PQTRANS_IDLE)
		PQclear(PQexec(st->conn, "ROLLBACK"));
}

static int
store_pg_commit(struct store *st, char *err, size_t errlen)
{
	PGresult	*res;
	char		 sql[128] = "COMMIT";

	/* COMMIT of a failed transaction "succeeds" as a ROLLBACK. */
	if (PQtransactionStatus(st->conn) == PQTRANS_INERROR) {
		snprintf(err, errlen, "commit: the transaction had failed");
		store_pg_rollback(st);
		return -1;
	}
	/*
	 * A connection lost during COMMIT leaves its outcome unknown; it is
	 * reported as a failure, so nothing is acknowledged that may not be
	 * on disk (a delivery sent again is then found a duplicate).  The
	 * wake-up goes in the same round trip (the token is digits and a
	 * dash); if it fails, so does the COMMIT.
	 */
	if (st->wake) {
		snprintf(sql, sizeof(sql), "SELECT pg_notify('"
		    STORE_PG_CHANNEL "', '%s'); COMMIT", store_pg_token);
		st->wake = 0;
	}
	res = PQexec(st->conn, sql);
	if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
		store_pg_errmsg(st, err, errlen, "commit", res);
		PQclear(res);
		res = NULL;
	}
	st->in_tx = 0;
	if (res == NULL) {
		store_pg_rollback(st);
		return -1;
	}
	if (strcmp(PQcmdStatus(res), "COMMIT") != 0) {
		snprintf(err, errlen, "commit: rolled back by the server");
		PQclear(res);
		return -1;
	}
	PQclear(res);
	return 0;
}

static int
store_pg_item_begin(struct store *st, char *err, size_t errlen)
{
	return store_pg_cmd(st, "SAVEPOINT item", NULL, "savepoint", NULL, err,
	    errlen);
}

static int
store_pg_item_end(struct store *st, char *err, size_t errlen)
{
	return store_pg_cmd(st, "RELEASE SAVEPOINT item", NULL, "release",
	    NULL, err, errlen);
}

static void
store_pg_item_abort(struct store *st)
{
	if (store_pg_cmd(st, "ROLLBACK TO SAVEPOINT item", NULL, "rollback to",
	    NULL, NULL, 0) == 0)
		store_pg_cmd(st, "RELEASE SAVEPOINT item", NULL, "release",
		    NULL, NULL, 0);
}

static int
store_pg_writer_start(struct store *st, int64_t dedup_since_ms, char *err,
    size_t errlen)
{
	/* The unique key is the memory of deliveries (see the top). */
	(void)st;
	(void)dedup_since_ms;
	(void)err;
	(void)errlen;
	return 0;
}

static int
store_pg_add_event(struct store *st, const struct store_event *ev,
    int64_t *event_id, char *err, size_t errlen)
{
	struct store_pg_params	 p = { .n = 0 };
	PGresult		*res;
	int			 rc;

	store_pg_p_text(&p, ev->source);
	store_pg_p_text(&p, ev->delivery);
	store_pg_p_int(&p, ev->received_ms);
	store_pg_p_text(&p, ev->kind);
	store_pg_p_text(&p, ev->summary);
	if ((res = store_pg_qp(st, STORE_PG_ST_EVENT,
	    "INSERT INTO events(source, delivery,"
	    " received, kind, summary) VALUES ($1, $2, $3, $4, $5)"
	    " ON CONFLICT (source, delivery) DO NOTHING RETURNING id", &p,
	    PGRES_TUPLES_OK, "add event", err, errlen)) == NULL)
		return -1;
	if (PQntuples(res) == 0)
		rc = 1;
	else {
		*event_id = store_pg_int(res, 0, 0);
		rc = 0;
	}
	PQclear(res);
	return rc;
}

static int
store_pg_link(struct store *st, int64_t event_id, int64_t job_id, char *err,
    size_t errlen)
{
	struct store_pg_params	 p = { .n = 0 };
	PGresult		*res;

	if (event_id <= 0)
		return 0;
	store_pg_p_int(&p, event_id);
	store_pg_p_int(&p, job_id);
	if ((res = store_pg_qp(st, STORE_PG_ST_LINK, "INSERT INTO"
	    " event_jobs(event_id, job_id) VALUES ($1, $2) ON CONFLICT DO"
	    " NOTHING", &p, PGRES_COMMAND_OK, "link job", err, errlen)) == NULL)
		return -1;
	PQclear(res);
	return 0;
}

static int
store_pg_add_job(struct store *st, const struct job_spec *js,
    int64_t event_id, int max_attempts, int64_t now_ms, int64_t *job_id,
    int *absorbed, char *err, size_t errlen)
{
	struct store_pg_params	 p = { .n = 0 };
	PGresult		*res;

	*absorbed = 0;
	if (js->kind == JOB_SYNC && js->app != NULL) {
		/*
		 * The queued sync takes the newer revision.  One that another
		 * process's open round is absorbing into is skipped (a new
		 * queued sync instead): waiting for it would hold this round's
		 * locks while that round may wait for them (its claim lock),
		 * a deadlock that fails both rounds' deliveries after
		 * deadlock_timeout.
		 */
		store_pg_p_text(&p, js->app);
		store_pg_p_text(&p, js->revision);
		store_pg_p_int(&p, now_ms);
		if ((res = store_pg_qp(st, STORE_PG_ST_ABSORB,
		    "UPDATE jobs SET revision = $2,"
		    " updated = $3 WHERE id = (SELECT id FROM jobs WHERE"
		    " app = $1 AND kind = 1 AND state = 1 ORDER BY id LIMIT 1"
		    " FOR UPDATE SKIP LOCKED) RETURNING id", &p, PGRES_TUPLES_OK,
		    "absorb", err, errlen)) == NULL)
			return -1;
		if (PQntuples(res) > 0) {
			*job_id = store_pg_int(res, 0, 0);
			*absorbed = 1;
			PQclear(res);
			return store_pg_link(st, event_id, *job_id, err, errlen);
		}
		PQclear(res);
		p.n = 0;
	}
	store_pg_p_int(&p, (int64_t)js->kind);
	store_pg_p_text(&p, js->app);
	store_pg_p_text(&p, js->repo);
	store_pg_p_text(&p, js->revision);
	store_pg_p_text(&p, js->image);
	store_pg_p_text(&p, js->tag);
	store_pg_p_text(&p, js->digest);
	store_pg_p_text(&p, js->params);
	store_pg_p_opt(&p, event_id > 0 ? event_id : 0);
	store_pg_p_int(&p, max_attempts);
	store_pg_p_int(&p, now_ms);
	if ((res = store_pg_q(st, "INSERT INTO jobs(kind, state, app, repo,"
	    " revision, image, tag, digest, params, event_id, attempts,"
	    " max_attempts, created, updated, not_before) VALUES ($1, 1, $2,"
	    " $3, $4, $5, $6, $7, $8, $9, 0, $10, $11, $11, 0) RETURNING id",
	    &p, PGRES_TUPLES_OK, "add job", err, errlen)) == NULL)
		return -1;
	*job_id = store_pg_int(res, 0, 0);
	PQclear(res);
	st->wake = 1;
	return store_pg_link(st, event_id, *job_id, err, errlen);
}

/*
 * A round's deliveries in one round trip: one statement, prepared once
 * per session, that stores them as add_event and add_job would one by
 * one, inside a savepoint, sent in a pipeline with the savepoint and its
 * release.  Statement by statement, a round of N deliveries took 3N round
 * trips; a PL/pgSQL loop over the same statements in the server cost it
 * about 60 us per delivery (docs/benchmarks.md).  Set by set instead:
 * events (the first of two equal deliveries of the round is the one
 * inserted; one stored earlier makes both duplicates), then the app syncs
 * of the stored deliveries, then the other jobs and the links.  A
 * data-modifying CTE does not see the rows its siblings write, so what
 * the loop did row by row is spelled out: per app, its oldest queued sync
 * (not one another process's open round holds: see store_pg_add_job)
 * absorbs every sync of the round, with the revision of the last; with
 * none, the app's first sync of the round is inserted with that revision
 * and absorbs the others.  One update per app and round instead of one
 * per delivery.  Job ids are taken from the sequence in delivery order
 * beforehand, so that each job's row is known without reading it back.
 * The deliveries go as one JSON array (cJSON quotes every value; text
 * that is not UTF-8 fails the call, and the fallback stores the others).
 * It answers one row per delivery (o_job NULL; o_event NULL for a
 * duplicate), then one per job of a stored delivery, in order.
 */
static const char store_pg_ingest_sql[] =
    "WITH d AS (SELECT x.o - 1 AS n, x.s, x.d, x.r, x.k, x.m, x.j,"
    "  row_number() OVER (PARTITION BY x.s, x.d ORDER BY x.o) AS f"
    "  FROM ROWS FROM (jsonb_to_recordset($1::jsonb) AS (s text, d text,"
    "  r bigint, k text, m text, j jsonb)) WITH ORDINALITY"
    "  AS x(s, d, r, k, m, j, o)),"
    " e AS (INSERT INTO events(source, delivery, received, kind, summary)"
    "  SELECT s, d, r, k, m FROM d WHERE f = 1 ORDER BY n"
    "  ON CONFLICT (source, delivery) DO NOTHING"
    "  RETURNING id, source, delivery),"
    " de AS (SELECT d.n, e.id AS eid, d.j FROM d JOIN e ON"
    "  e.source = d.s AND e.delivery = d.d WHERE d.f = 1),"
    " j AS (SELECT de.n, y.o AS k, de.eid, y.s, y.k AS kind, y.a, y.p,"
    "  y.v, y.i, y.t, y.g, y.x, y.n AS maxa FROM de CROSS JOIN LATERAL"
    "  ROWS FROM (jsonb_to_recordset(de.j) AS (s boolean, k integer,"
    "  a text, p text, v text, i text, t text, g text, x text,"
    "  n integer)) WITH ORDINALITY AS y(s, k, a, p, v, i, t, g, x, n, o)),"
    " sj AS (SELECT n, k, a,"
    "  row_number() OVER (PARTITION BY a ORDER BY n, k) AS i,"
    "  first_value(v) OVER (PARTITION BY a ORDER BY n DESC, k DESC)"
    "  AS last FROM j WHERE s),"
    " u AS (UPDATE jobs SET revision = sa.last, updated = $2::bigint"
    "  FROM (SELECT a, last FROM sj WHERE i = 1) sa CROSS JOIN LATERAL"
    "  (SELECT q.id FROM jobs q WHERE q.app = sa.a AND q.kind = 1"
    "  AND q.state = 1 ORDER BY q.id LIMIT 1 FOR UPDATE SKIP LOCKED) t"
    "  WHERE jobs.id = t.id RETURNING jobs.id, jobs.app),"
    " ins AS (SELECT nextval((SELECT pg_get_serial_sequence('jobs',"
    "  'id'))::regclass) AS id, z.* FROM (SELECT j.n, j.k, j.eid, j.s,"
    "  j.kind, j.a, j.p, CASE WHEN j.s THEN sj.last ELSE j.v END AS v,"
    "  j.i, j.t, j.g, j.x, j.maxa FROM j"
    "  LEFT JOIN sj ON sj.n = j.n AND sj.k = j.k WHERE NOT j.s"
    "  OR (sj.i = 1 AND NOT EXISTS (SELECT 1 FROM u WHERE u.app = j.a))"
    "  ORDER BY j.n, j.k) z),"
    " ji AS (INSERT INTO jobs(id, kind, state, app, repo, revision, image,"
    "  tag, digest, params, event_id, attempts, max_attempts, created,"
    "  updated, not_before) SELECT id, kind, 1, a, p, v, i, t, g, x, eid,"
    "  0, maxa, $2::bigint, $2::bigint, 0 FROM ins),"
    " jid AS (SELECT j.n, j.k, j.eid, COALESCE(ins.id, u.id, fi.id) AS id,"
    "  ins.id IS NULL AS absorbed FROM j"
    "  LEFT JOIN ins ON ins.n = j.n AND ins.k = j.k"
    "  LEFT JOIN u ON j.s AND u.app = j.a"
    "  LEFT JOIN ins fi ON j.s AND fi.s AND fi.a = j.a),"
    " l AS (INSERT INTO event_jobs(event_id, job_id)"
    "  SELECT DISTINCT eid, id FROM jid ON CONFLICT DO NOTHING)"
    " SELECT o_i, o_event, o_job, o_absorbed FROM"
    " (SELECT d.n AS o_i, de.eid AS o_event, NULL::bigint AS o_job,"
    "  NULL::boolean AS o_absorbed, 0::bigint AS k"
    "  FROM d LEFT JOIN de ON de.n = d.n"
    "  UNION ALL SELECT n, eid, id, absorbed, k FROM jid) r"
    " ORDER BY o_i, k";

/* Adds key: s (NULL as null) to o; -1 when out of memory. */
static int
store_pg_json_str(cJSON *o, const char *key, const char *s)
{
	cJSON	*v = s != NULL ? cJSON_CreateString(s) : cJSON_CreateNull();

	if (v == NULL || !cJSON_AddItemToObject(o, key, v)) {
		cJSON_Delete(v);
		return -1;
	}
	return 0;
}

static int
store_pg_json_num(cJSON *o, const char *key, double n)
{
	return cJSON_AddNumberToObject(o, key, n) != NULL ? 0 : -1;
}

/* The deliveries as the statement's JSON argument (caller frees). */
static char *
store_pg_ingest_json(const struct store_delivery *ds, size_t n)
{
	const struct job_spec	*js;
	cJSON			*a, *o, *jobs, *j;
	char			*s = NULL;
	size_t			 i, k;

	if ((a = cJSON_CreateArray()) == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		if ((o = cJSON_CreateObject()) == NULL)
			goto out;
		if (!cJSON_AddItemToArray(a, o)) {
			cJSON_Delete(o);
			goto out;
		}
		if (store_pg_json_str(o, "s", ds[i].ev.source) == -1 ||
		    store_pg_json_str(o, "d", ds[i].ev.delivery) == -1 ||
		    store_pg_json_num(o, "r",
		    (double)ds[i].ev.received_ms) == -1 ||
		    store_pg_json_str(o, "k", ds[i].ev.kind) == -1 ||
		    store_pg_json_str(o, "m", ds[i].ev.summary) == -1 ||
		    (jobs = cJSON_AddArrayToObject(o, "j")) == NULL)
			goto out;
		for (k = 0; k < ds[i].njobs; k++) {
			js = &ds[i].jobs[k];
			if ((j = cJSON_CreateObject()) == NULL)
				goto out;
			if (!cJSON_AddItemToArray(jobs, j)) {
				cJSON_Delete(j);
				goto out;
			}
			/* s: a sync of an app, absorbed into its queued one. */
			if (cJSON_AddBoolToObject(j, "s", js->kind == JOB_SYNC &&
			    js->app != NULL) == NULL ||
			    store_pg_json_num(j, "k", (double)js->kind) == -1 ||
			    store_pg_json_str(j, "a", js->app) == -1 ||
			    store_pg_json_str(j, "p", js->repo) == -1 ||
			    store_pg_json_str(j, "v", js->revision) == -1 ||
			    store_pg_json_str(j, "i", js->image) == -1 ||
			    store_pg_json_str(j, "t", js->tag) == -1 ||
			    store_pg_json_str(j, "g", js->digest) == -1 ||
			    store_pg_json_str(j, "x", js->params) == -1 ||
			    store_pg_json_num(j, "n",
			    (double)ds[i].max_attempts[k]) == -1)
				goto out;
		}
	}
	s = cJSON_PrintUnformatted(a);
out:
	cJSON_Delete(a);
	return s;
}

/* The statement's rows into ds; -1 when they do not fit the deliveries. */
static int
store_pg_ingest_rows(struct store *st, const PGresult *res,
    struct store_delivery *ds, size_t n)
{
	struct store_delivery	*d = NULL;
	const char		*absorbed;
	int64_t			 i;
	size_t			 k = 0;
	int			 r;

	for (i = 0; i < (int64_t)n; i++) {
		ds[i].status = -1;
		ds[i].added = 0;
	}
	for (r = 0; r < PQntuples(res); r++) {
		i = store_pg_int(res, r, 0);
		if (i < 0 || i >= (int64_t)n)
			return -1;
		if (PQgetisnull(res, r, 2)) {
			if (d != NULL && d->status == 0 && k != d->njobs)
				return -1;
			d = &ds[i];
			d->event_id = store_pg_int(res, r, 1);
			d->status = d->event_id > 0 ? 0 : 1;
			k = 0;
			continue;
		}
		absorbed = store_pg_val(res, r, 3);
		if (d != &ds[i] || d->status != 0 || k >= d->njobs ||
		    absorbed == NULL)
			return -1;
		d->job_ids[k++] = store_pg_int(res, r, 2);
		if (strcmp(absorbed, "t") != 0) {
			d->added++;
			st->wake = 1;
		}
	}
	if (d != NULL && d->status == 0 && k != d->njobs)
		return -1;
	for (i = 0; i < (int64_t)n; i++)
		if (ds[i].status == -1)
			return -1;
	return 0;
}

/*
 * The pipeline: SAVEPOINT, the statement's preparation (at the
 * session's first round, inside the savepoint so that a failure to
 * prepare it only costs the fallback), the call, RELEASE, one sync; with whole, BEGIN before
 * and COMMIT after, so that a round of deliveries only is one round trip
 * (add_deliveries_commit).  0: stored (ds filled; with whole, committed);
 * 1: the call failed and its savepoint was rolled back (err says why;
 * nothing of it remains; with whole, the transaction is still open); -1:
 * the transaction is lost (with whole: or the COMMIT's outcome unknown).
 */
static int
store_pg_ingest_call(struct store *st, struct store_delivery *ds, size_t n,
    int64_t now_ms, int whole, char *err, size_t errlen)
{
	const char	*sql[7], *vals[2];
	ExecStatusType	 want[7], rs;
	char		*json, now[24], notify[128], name[24];
	PGresult	*res, *rows = NULL;
	size_t		 q, nq = 0, call, nulls, sp, ci, prep;
	const char	*state;
	int		 rc = -1, sent = 1, synced, bad = 0;
	int		 missing = 0;

	if (PQstatus(st->conn) == CONNECTION_BAD) {
		store_pg_errmsg(st, err, errlen, "ingest", NULL);
		return -1;
	}
	store_pg_stmt_name(STORE_PG_ST_INGEST, name, sizeof(name));
	if (whole) {
		want[nq] = PGRES_COMMAND_OK;
		sql[nq++] = "BEGIN";
		st->in_tx = 1;
	}
	sp = nq;
	want[nq] = PGRES_COMMAND_OK;
	sql[nq++] = "SAVEPOINT ingest";
	prep = SIZE_MAX;
	if (!(st->prepared & (1u << STORE_PG_ST_INGEST))) {
		prep = nq;
		want[nq] = PGRES_COMMAND_OK;
		sql[nq++] = store_pg_ingest_sql;
	}
	call = nq;
	want[nq] = PGRES_TUPLES_OK;
	sql[nq++] = name;
	want[nq] = PGRES_COMMAND_OK;
	sql[nq++] = "RELEASE SAVEPOINT ingest";
	ci = nq;	/* none: past the end */
	if (whole && st->wake) {
		/* A wake-up owed by an earlier round of this kind. */
		snprintf(notify, sizeof(notify), "SELECT pg_notify('"
		    STORE_PG_CHANNEL "', '%s')", store_pg_token);
		want[nq] = PGRES_TUPLES_OK;
		sql[nq++] = notify;
		ci = nq;
	}
	if (whole) {
		want[nq] = PGRES_COMMAND_OK;
		sql[nq++] = "COMMIT";
	}
	if ((json = store_pg_ingest_json(ds, n)) == NULL) {
		snprintf(err, errlen, "ingest: out of memory");
		return 1;
	}
	snprintf(now, sizeof(now), "%lld", (long long)now_ms);
	vals[0] = json;
	vals[1] = now;
	if (PQenterPipelineMode(st->conn) != 1) {
		store_pg_errmsg(st, err, errlen, "ingest", NULL);
		free(json);
		return -1;
	}
	for (q = 0; q < nq && sent; q++) {
		if (q == prep)
			sent = PQsendPrepare(st->conn, name, sql[q], 2,
			    NULL) == 1;
		else if (q == call)
			sent = PQsendQueryPrepared(st->conn, name, 2, vals,
			    NULL, NULL, 0) == 1;
		else
			sent = PQsendQueryParams(st->conn, sql[q], 0, NULL,
			    NULL, NULL, NULL, 0) == 1;
	}
	/* Also after a failed send: the sync flushes what went out. */
	synced = PQpipelineSync(st->conn) == 1;
	if (!sent || !synced) {
		store_pg_errmsg(st, err, errlen, "ingest", NULL);
		bad = 2;
	}
	free(json);
	/*
	 * Each statement's results end with a NULL; the sync's result ends
	 * the pipeline.  The first failure is the reason; the statements
	 * after it come back PGRES_PIPELINE_ABORTED.  bad: 1 after the
	 * savepoint, 2 before it, the COMMIT itself or the connection.
	 */
	for (q = 0, nulls = 0; synced && PQstatus(st->conn) == CONNECTION_OK;) {
		if ((res = PQgetResult(st->conn)) == NULL) {
			if (++nulls > nq)
				break;
			q++;
			continue;
		}
		rs = PQresultStatus(res);
		if (rs == PGRES_PIPELINE_SYNC) {
			PQclear(res);
			break;
		}
		if (q >= nq || rs != want[q]) {
			if (!bad) {
				store_pg_errmsg(st, err, errlen, "ingest", res);
				state = PQresultErrorField(res,
				    PG_DIAG_SQLSTATE);
				missing = state != NULL &&
				    strcmp(state, "26000") == 0;
			}
			if (q <= sp || q >= nq || (q == ci && !bad))
				bad = 2;
			else if (!bad)
				bad = 1;
			PQclear(res);
		} else if (q == call && rows == NULL)
			rows = res;
		else {
			/* A prepared statement outlives a rollback. */
			if (q == prep)
				st->prepared |= 1u << STORE_PG_ST_INGEST;
			PQclear(res);
		}
	}
	if (PQexitPipelineMode(st->conn) != 1 ||
	    PQstatus(st->conn) == CONNECTION_BAD || bad == 2) {
		if (!bad)
			store_pg_errmsg(st, err, errlen, "ingest", NULL);
		goto out;
	}
	if (bad) {
		/* invalid_sql_statement_name: not prepared after all.  The
		 * next call prepares it again. */
		if (missing)
			st->prepared &= ~(1u << STORE_PG_ST_INGEST);
		if (store_pg_cmd(st, "ROLLBACK TO SAVEPOINT ingest", NULL,
		    "rollback to", NULL, NULL, 0) == -1 ||
		    store_pg_cmd(st, "RELEASE SAVEPOINT ingest", NULL,
		    "release", NULL, NULL, 0) == -1)
			goto out;
		rc = 1;
		goto out;
	}
	if (whole)
		st->in_tx = st->wake = 0;
	if (rows == NULL || store_pg_ingest_rows(st, rows, ds, n) == -1) {
		/* Released already: what it stored cannot be told apart. */
		snprintf(err, errlen, "ingest: the answer does not fit the"
		    " deliveries");
		goto out;
	}
	rc = 0;
out:
	PQclear(rows);
	return rc;
}

/*
 * After a failed call, delivery by delivery, each in a savepoint, so the
 * one that fails is the only one left out.  -1: the transaction is lost.
 */
static int
store_pg_ingest_each(struct store *st, struct store_delivery *ds, size_t n,
    int64_t now_ms, char *err, size_t errlen)
{
	struct store_delivery	*d;
	size_t			 i, k;
	int			 absorbed;

	for (i = 0; i < n; i++) {
		d = &ds[i];
		d->added = 0;
		d->status = -1;
		if (store_pg_item_begin(st, d->err, sizeof(d->err)) == 0) {
			d->status = store_pg_add_event(st, &d->ev,
			    &d->event_id, d->err, sizeof(d->err));
			for (k = 0; d->status == 0 && k < d->njobs; k++) {
				if (store_pg_add_job(st, &d->jobs[k],
				    d->event_id, d->max_attempts[k], now_ms,
				    &d->job_ids[k], &absorbed, d->err,
				    sizeof(d->err)) == -1)
					d->status = -1;
				else if (!absorbed)
					d->added++;
			}
			if (d->status != -1 &&
			    store_pg_item_end(st, d->err, sizeof(d->err)) == 0)
				continue;
			d->status = -1;
			d->added = 0;
			store_pg_item_abort(st);
		}
		if (PQstatus(st->conn) == CONNECTION_BAD ||
		    PQtransactionStatus(st->conn) != PQTRANS_INTRANS) {
			snprintf(err, errlen, "%s", d->err);
			return -1;
		}
	}
	return 0;
}

static int
store_pg_add_deliveries(struct store *st, struct store_delivery *ds,
    size_t n, int64_t now_ms, char *err, size_t errlen)
{
	int	 r;

	if ((r = store_pg_ingest_call(st, ds, n, now_ms, 0, err,
	    errlen)) != 1)
		return r;
	return store_pg_ingest_each(st, ds, n, now_ms, err, errlen);
}

/*
 * BEGIN, the call and COMMIT in one pipeline: one round trip and one WAL
 * flush for a round of deliveries only.  When the call fails, the same
 * transaction goes on one by one and commits as any round.  The wake-up
 * for the jobs it adds is not in it (its need is known only from the
 * answer): it stays owed to the next commit, which the queue brings
 * soon after its own claim (daemon/queue.c, queue_store_round), so this
 * replica takes what it can run before the others are woken.
 */
static int
store_pg_add_deliveries_commit(struct store *st, struct store_delivery *ds,
    size_t n, int64_t now_ms, char *err, size_t errlen)
{
	int	 r, owed = st->wake;

	if ((r = store_pg_ingest_call(st, ds, n, now_ms, 1, err,
	    errlen)) == 0)
		return 0;
	if (r == -1 || store_pg_ingest_each(st, ds, n, now_ms, err,
	    errlen) == -1) {
		store_pg_rollback(st);
		st->wake = owed;	/* what committed before still owes it */
		return -1;
	}
	/* On failure it has rolled back. */
	if (store_pg_commit(st, err, errlen) == -1) {
		st->wake = owed;
		return -1;
	}
	return 0;
}

static int
store_pg_count_pending(struct store *st, int64_t *n, char *err, size_t errlen)
{
	PGresult	*res;

	if ((res = store_pg_q(st, "SELECT count(*) FROM jobs WHERE state IN"
	    " (1, 4)", NULL, PGRES_TUPLES_OK, "count", err, errlen)) == NULL)
		return -1;
	*n = store_pg_int(res, 0, 0);
	PQclear(res);
	return 0;
}

static int
store_pg_count_states(struct store *st, int64_t counts[JOB_STATE_MAX],
    char *err, size_t errlen)
{
	PGresult	*res;
	int		 i, state;

	memset(counts, 0, JOB_STATE_MAX * sizeof(counts[0]));
	/* Row 0: the alert outbox, notify jobs not yet finished. */
	if ((res = store_pg_q(st, "SELECT state, count(*) FROM jobs"
	    " WHERE state IN (1, 2, 4, 5, 6) GROUP BY state"
	    " UNION ALL SELECT 0, count(*) FROM jobs WHERE state IN (1, 2, 4)"
	    " AND kind = 3", NULL, PGRES_TUPLES_OK, "count states", err,
	    errlen)) == NULL)
		return -1;
	for (i = 0; i < PQntuples(res); i++) {
		state = (int)store_pg_int(res, i, 0);
		if (state >= 0 && state < JOB_STATE_MAX)
			counts[state] = store_pg_int(res, i, 1);
	}
	PQclear(res);
	return 0;
}

/*
 * What a waiting job left to check: the "wait" member of its result
 * (daemon/queue.c writes it), as JSON text, or NULL.  Only a waiting job's
 * result has one: every other finish replaces the result.  Read here, not
 * in SQL: a cast of a result that is not JSON would fail the statement.
 */
static char *
store_pg_wait_of(const char *result)
{
	cJSON	*doc, *w;
	char	*s = NULL;

	if (result == NULL || (doc = cJSON_Parse(result)) == NULL)
		return NULL;
	if ((w = cJSON_GetObjectItemCaseSensitive(doc, "wait")) != NULL)
		s = cJSON_PrintUnformatted(w);
	cJSON_Delete(doc);
	return s;
}

/*
 * An interrupted health check of a waiting job only read: it goes back to
 * waiting, due now, its attempt still the one that applied.
 */
static int
store_pg_takeover_waits(struct store *st, int64_t expired_ms, int64_t now_ms,
    int *n, char *err, size_t errlen)
{
	struct store_pg_params	 p = { .n = 0 };
	PGresult		*res;
	char			*wait;
	int			 row, rc = 0;

	store_pg_p_int(&p, expired_ms);
	if ((res = store_pg_q(st, "SELECT id, result FROM jobs WHERE state = 2"
	    " AND coalesce(lease_until, 0) < $1 AND result IS NOT NULL", &p,
	    PGRES_TUPLES_OK, "takeover", err, errlen)) == NULL)
		return -1;
	for (row = 0; row < PQntuples(res) && rc == 0; row++) {
		if ((wait = store_pg_wait_of(store_pg_val(res, row, 1))) == NULL)
			continue;
		free(wait);
		p.n = 0;
		store_pg_p_int(&p, store_pg_int(res, row, 0));
		store_pg_p_int(&p, now_ms);
		if (store_pg_cmd(st, "UPDATE jobs SET state = 6, not_before = 0,"
		    " updated = $2, lease_owner = NULL, lease_until = NULL"
		    " WHERE id = $1", &p, "takeover", NULL, err, errlen) == -1)
			rc = -1;
		else
			(*n)++;
	}
	PQclear(res);
	return rc;
}

static struct job *store_pg_job_from_row(const PGresult *, int);
static int	store_pg_takeover_dead(struct store *, int64_t, struct job ***,
		    int *, char *, size_t);

static int
store_pg_takeover(struct store *st, int64_t expired_ms, int64_t now_ms,
    int *nrequeued, int *ndead, struct job ***dead, char *err, size_t errlen)
{
	struct store_pg_params	 p = { .n = 0 };
	PGresult		*res;
	struct job		**djobs = NULL;
	int64_t			 n;
	int			 nd = 0, rc = -1;

	*nrequeued = *ndead = 0;
	/* With the claim lock: no claim of another replica in between. */
	store_pg_p_int(&p, STORE_PG_LOCK_NS);
	store_pg_p_int(&p, STORE_PG_LOCK_CLAIM);
	if ((res = store_pg_q(st, "SELECT pg_advisory_xact_lock($1::int,"
	    " $2::int)", &p, PGRES_TUPLES_OK, "claim lock", err,
	    errlen)) == NULL)
		return -1;
	PQclear(res);
	/*
	 * Lock them first: a finish of their runner in flight either
	 * committed before (the job is no longer one of them) or waits and
	 * is then refused by its fence, never half of each.
	 */
	p.n = 0;
	store_pg_p_int(&p, expired_ms);
	if ((res = store_pg_q(st, "SELECT id FROM jobs WHERE state = 2"
	    " AND coalesce(lease_until, 0) < $1 FOR UPDATE", &p,
	    PGRES_TUPLES_OK, "takeover", err, errlen)) == NULL)
		return -1;
	PQclear(res);
	if (store_pg_takeover_waits(st, expired_ms, now_ms, nrequeued, err,
	    errlen) == -1)
		return -1;
	store_pg_p_int(&p, now_ms);
	/* The interrupted attempt is counted and logged. */
	if (store_pg_cmd(st, "INSERT INTO attempts(job_id, n, started, ended,"
	    " ok, error) SELECT id, attempts + 1, started, $2, 0,"
	    " 'interrupted: gitopsd stopped while the job ran' FROM jobs"
	    " WHERE state = 2 AND coalesce(lease_until, 0) < $1"
	    " ON CONFLICT (job_id, n) DO UPDATE SET"
	    " started = excluded.started, ended = excluded.ended,"
	    " ok = excluded.ok, error = excluded.error", &p, "takeover", NULL,
	    err, errlen) == -1)
		return -1;
	/* Those out of attempts, as claimed, for their alerts. */
	if (dead != NULL && store_pg_takeover_dead(st, expired_ms, &djobs, &nd,
	    err, errlen) == -1)
		goto out;
	if (store_pg_cmd(st, "UPDATE jobs SET state = 5, attempts = attempts + 1,"
	    " updated = $2, started = NULL, error = 'interrupted; no attempts"
	    " left', lease_owner = NULL, lease_until = NULL WHERE state = 2"
	    " AND coalesce(lease_until, 0) < $1 AND attempts + 1 >= max_attempts",
	    &p, "takeover", &n, err, errlen) == -1)
		goto out;
	*ndead = (int)n;
	if (store_pg_cmd(st, "UPDATE jobs SET state = 1, attempts = attempts + 1,"
	    " updated = $2, started = NULL, not_before = 0, lease_owner = NULL,"
	    " lease_until = NULL WHERE state = 2"
	    " AND coalesce(lease_until, 0) < $1", &p, "takeover", &n, err,
	    errlen) == -1)
		goto out;
	*nrequeued += (int)n;
	if (dead != NULL) {
		*dead = djobs;
		djobs = NULL;
		nd = 0;
	}
	rc = 0;
out:
	while (nd > 0)
		job_free(djobs[--nd]);
	free(djobs);
	return rc;
}

/* The ids as a PostgreSQL array literal, {1,2,3}. */
static char *
store_pg_id_array(const int64_t *ids, size_t n)
{
	char	*s = xmalloc(n * 21 + 3);
	size_t	 i, off = 0;

	s[off++] = '{';
	for (i = 0; i < n; i++)
		off += (size_t)snprintf(s + off, 22, "%s%lld", i > 0 ? "," : "",
		    (long long)ids[i]);
	s[off++] = '}';
	s[off] = '\0';
	return s;
}

static int
store_pg_renew(struct store *st, const char *owner,
    const struct store_lease *leases, size_t nids, int64_t until_ms,
    size_t *nrenewed, char *err, size_t errlen)
{
	struct store_pg_params	 p = { .n = 0 };
	char			*ids_arr, *claims_arr;
	int64_t			*v, n = 0;
	size_t			 i;
	int			 rc;

	*nrenewed = 0;
	if (nids == 0)
		return 0;
	v = xreallocarray(NULL, nids, sizeof(*v));
	for (i = 0; i < nids; i++)
		v[i] = leases[i].job_id;
	ids_arr = store_pg_id_array(v, nids);
	for (i = 0; i < nids; i++)
		v[i] = leases[i].claim;
	claims_arr = store_pg_id_array(v, nids);
	free(v);
	store_pg_p_int(&p, until_ms);
	store_pg_p_text(&p, owner);
	store_pg_p_text(&p, ids_arr);
	store_pg_p_text(&p, claims_arr);
	rc = store_pg_cmd(st, "UPDATE jobs j SET lease_until = $1"
	    " FROM unnest($3::bigint[], $4::bigint[]) AS l(id, claim)"
	    " WHERE j.id = l.id AND j.claims = l.claim AND j.state = 2"
	    " AND j.lease_owner = $2", &p, "renew", &n, err, errlen);
	free(ids_arr);
	free(claims_arr);
	*nrenewed = (size_t)n;
	return rc;
}

static int
store_pg_next_due(struct store *st, int64_t after_ms, int64_t *due_ms,
    char *err, size_t errlen)
{
	struct store_pg_params	 p = { .n = 0 };
	PGresult		*res;
	int			 rc = 0;

	store_pg_p_int(&p, after_ms);
	if ((res = store_pg_q(st, "SELECT min(not_before) FROM jobs"
	    " WHERE state IN (1, 4, 6) AND not_before > $1", &p,
	    PGRES_TUPLES_OK, "next due", err, errlen)) == NULL)
		return -1;
	if (!PQgetisnull(res, 0, 0)) {
		*due_ms = store_pg_int(res, 0, 0);
		rc = 1;
	}
	PQclear(res);
	return rc;
}

#define STORE_PG_CLAIM_COLS \
	"j.id, j.kind, j.state, j.app, j.repo, j.revision, j.image, j.tag," \
	" j.digest, j.params, e.source, e.delivery, j.event_id, j.attempts," \
	" j.created, j.result, j.started, j.max_attempts, j.claims FROM jobs j" \
	" LEFT JOIN events e ON e.id = j.event_id"

static struct job *
store_pg_job_from_row(const PGresult *res, int i)
{
	struct job	*j = xcalloc(1, sizeof(*j));

	j->id = store_pg_int(res, i, 0);
	j->kind = (enum job_kind)store_pg_int(res, i, 1);
	j->state = JOB_RUNNING;
	j->app = store_pg_str(res, i, 3);
	j->repo = store_pg_str(res, i, 4);
	j->revision = store_pg_str(res, i, 5);
	j->image = store_pg_str(res, i, 6);
	j->tag = store_pg_str(res, i, 7);
	j->digest = store_pg_str(res, i, 8);
	j->params = store_pg_str(res, i, 9);
	j->source = store_pg_str(res, i, 10);
	j->delivery = store_pg_str(res, i, 11);
	j->event_id = store_pg_int(res, i, 12);
	j->attempts = (int)store_pg_int(res, i, 13);
	j->created_ms = store_pg_int(res, i, 14);
	/* As stored: a manual retry raised it. */
	j->max_attempts = (int)store_pg_int(res, i, 17);
	if (store_pg_int(res, i, 2) == JOB_WAITING &&
	    (j->wait = store_pg_wait_of(store_pg_val(res, i, 15))) != NULL)
		j->started_ms = store_pg_int(res, i, 16);
	/* The row is locked (FOR UPDATE): no other claim in between. */
	j->claim = store_pg_int(res, i, 18) + 1;
	return j;
}

static int
store_pg_mark_running(struct store *st, const struct job *j,
    const struct store_claim *c, char *err, size_t errlen)
{
	struct store_pg_params	 p = { .n = 0 };

	store_pg_p_int(&p, j->id);
	store_pg_p_int(&p, c->now_ms);
	store_pg_p_text(&p, c->owner);
	store_pg_p_int(&p, c->lease_until_ms);
	store_pg_p_int(&p, j->claim);
	/* A waiting job's attempt began with its apply. */
	return store_pg_cmd(st, "UPDATE jobs SET"
	    " started = CASE WHEN state = 6 THEN started ELSE $2 END,"
	    " state = 2, updated = $2, lease_owner = $3, lease_until = $4,"
	    " claims = $5 WHERE id = $1", &p, "mark running", NULL, err, errlen);
}

/* The running jobs whose lease ended before expired_ms that are out of
 * attempts (takeover makes them dead), locked already. */
static int
store_pg_takeover_dead(struct store *st, int64_t expired_ms,
    struct job ***jobs, int *n, char *err, size_t errlen)
{
	struct store_pg_params	 p = { .n = 0 };
	PGresult		*res;
	struct job		**v;
	int			 i, nt;

	store_pg_p_int(&p, expired_ms);
	if ((res = store_pg_q(st, "SELECT " STORE_PG_CLAIM_COLS
	    " WHERE j.state = 2 AND coalesce(j.lease_until, 0) < $1"
	    " AND j.attempts + 1 >= j.max_attempts ORDER BY j.id", &p,
	    PGRES_TUPLES_OK, "takeover", err, errlen)) == NULL)
		return -1;
	if ((nt = PQntuples(res)) > 0) {
		v = xreallocarray(NULL, (size_t)nt, sizeof(struct job *));
		for (i = 0; i < nt; i++)
			v[i] = store_pg_job_from_row(res, i);
		*jobs = v;
		*n = nt;
	}
	PQclear(res);
	return 0;
}

/* Queued update-image jobs for j's repository join j's run. */
static int
store_pg_claim_merges(struct store *st, struct job *j, int64_t now_ms,
    struct store_rules *rules, char *err, size_t errlen)
{
	struct store_pg_params	 p = { .n = 0 };
	PGresult		*res;
	struct job		*m;
	int			 i;

	store_pg_p_text(&p, j->repo);
	store_pg_p_int(&p, j->id);
	store_pg_p_int(&p, now_ms);
	if ((res = store_pg_q(st, "SELECT " STORE_PG_CLAIM_COLS
	    " WHERE j.state = 1 AND j.kind = 2 AND j.repo = $1 AND j.id != $2"
	    " AND j.not_before <= $3 ORDER BY j.id FOR UPDATE OF j SKIP LOCKED",
	    &p, PGRES_TUPLES_OK, "merge candidates", err, errlen)) == NULL)
		return -1;
	for (i = 0; i < PQntuples(res); i++) {
		m = store_pg_job_from_row(res, i);
		if (store_rules_merge(rules, j, m->app))
			store_job_merge(j, m);
		else
			job_free(m);
	}
	PQclear(res);
	return 0;
}

static int
store_pg_claim(struct store *st, const struct store_claim *c,
    struct job ***jobsp, size_t *njobsp, char *err, size_t errlen)
{
	struct store_rules	 rules = { 0 };
	struct store_pg_params	 p = { .n = 0 };
	struct job		**jobs = NULL, *j;
	PGresult		*res = NULL;
	size_t			 njobs = 0, i, k;
	int			 rc = -1, row;

	*jobsp = NULL;
	*njobsp = 0;
	if (c->max_thread <= 0 && c->max_loop <= 0)
		return 0;
	/*
	 * A failed statement spoils a PostgreSQL transaction; the claim's
	 * own savepoint keeps the round's deliveries committable when only
	 * the claim fails (as with SQLite).
	 */
	if (store_pg_cmd(st, "SAVEPOINT claim", NULL, "claim", NULL, err,
	    errlen) == -1)
		return -1;
	store_pg_p_int(&p, STORE_PG_LOCK_NS);
	store_pg_p_int(&p, STORE_PG_LOCK_CLAIM);
	if ((res = store_pg_q(st, "SELECT pg_advisory_xact_lock($1::int,"
	    " $2::int)", &p, PGRES_TUPLES_OK, "claim lock", err,
	    errlen)) == NULL)
		goto out;
	PQclear(res);

	/* Read after the lock: every earlier claim is committed and seen. */
	if ((res = store_pg_q(st, "SELECT kind, app, repo, state FROM jobs"
	    " WHERE state IN (2, 6) AND kind != 3", NULL, PGRES_TUPLES_OK,
	    "busy", err, errlen)) == NULL)
		goto out;
	for (row = 0; row < PQntuples(res); row++)
		store_rules_busy(&rules, (enum job_kind)store_pg_int(res, row, 0),
		    store_pg_val(res, row, 1), store_pg_val(res, row, 2),
		    store_pg_int(res, row, 3) == JOB_WAITING);
	PQclear(res);

	/*
	 * Jobs of a busy app or repository are left out here, in SQL, so
	 * the limit counts jobs that can be taken; the rules between the
	 * rows read (one per app, one per repository) are applied below.
	 * An app held by a waiting job is free for that job only.
	 */
	p.n = 0;
	store_pg_p_int(&p, c->now_ms);
	store_pg_p_int(&p, (int64_t)c->max_thread + c->max_loop +
	    STORE_PG_CLAIM_SLACK);
	if ((res = store_pg_q(st, "SELECT " STORE_PG_CLAIM_COLS
	    " WHERE j.state IN (1, 4, 6) AND j.not_before <= $1"
	    " AND (j.kind = 3 OR (NOT EXISTS (SELECT 1 FROM jobs r"
	    " WHERE r.kind != 3 AND r.app = j.app AND (r.state = 2"
	    " OR (r.state = 6 AND r.id != j.id)))"
	    " AND (j.kind != 2 OR NOT EXISTS (SELECT 1 FROM jobs r"
	    " WHERE r.state IN (2, 6) AND r.kind = 2 AND r.repo = j.repo))))"
	    " ORDER BY j.not_before, j.id LIMIT $2 FOR UPDATE OF j SKIP LOCKED",
	    &p, PGRES_TUPLES_OK, "candidates", err, errlen)) == NULL)
		goto out;
	for (row = 0; row < PQntuples(res) && !store_rules_full(&rules, c);
	    row++) {
		if (!store_rules_take(&rules, c,
		    (enum job_kind)store_pg_int(res, row, 1),
		    store_pg_val(res, row, 3), store_pg_val(res, row, 4),
		    store_pg_int(res, row, 2) == JOB_WAITING))
			continue;
		// NOLINTNEXTLINE(bugprone-sizeof-expression): array of pointers
		jobs = xreallocarray(jobs, njobs + 1, sizeof(*jobs));
		jobs[njobs++] = store_pg_job_from_row(res, row);
	}
	PQclear(res);
	res = NULL;
	for (i = 0; i < njobs; i++) {
		j = jobs[i];
		if (j->kind == JOB_UPDATE_IMAGE && j->repo != NULL &&
		    store_pg_claim_merges(st, j, c->now_ms, &rules, err,
		    errlen) == -1)
			goto out;
		if (store_pg_mark_running(st, j, c, err, errlen) == -1)
			goto out;
		for (k = 0; k < j->nmerged; k++)
			if (store_pg_mark_running(st, j->merged[k], c,
			    err, errlen) == -1)
				goto out;
	}
	if (store_pg_cmd(st, "RELEASE SAVEPOINT claim", NULL, "claim", NULL,
	    err, errlen) == -1)
		goto out;
	*jobsp = jobs;
	*njobsp = njobs;
	rc = 0;
out:
	if (rc == -1) {
		if (store_pg_cmd(st, "ROLLBACK TO SAVEPOINT claim", NULL,
		    "claim", NULL, NULL, 0) == 0)
			store_pg_cmd(st, "RELEASE SAVEPOINT claim", NULL,
			    "claim", NULL, NULL, 0);
		for (i = 0; i < njobs; i++)
			job_free(jobs[i]);
		free(jobs);
	}
	store_rules_free(&rules);
	return rc;
}

static int
store_pg_finish(struct store *st, const struct store_finish *f, char *err,
    size_t errlen)
{
	struct store_pg_params	 p = { .n = 0 };
	PGresult		*res;
	int64_t			 n;

	store_pg_p_int(&p, f->job_id);
	store_pg_p_int(&p, (int64_t)f->state);
	store_pg_p_int(&p, f->attempts);
	store_pg_p_int(&p, f->not_before_ms);
	store_pg_p_int(&p, f->ended_ms);
	store_pg_p_text(&p, f->error);
	store_pg_p_text(&p, f->result);
	store_pg_p_opt(&p, f->started_ms);
	store_pg_p_text(&p, f->owner);
	store_pg_p_int(&p, f->claim);
	store_pg_p_int(&p, f->state == JOB_SUCCEEDED);
	/* A job that waits has not finished its attempt. */
	store_pg_p_text(&p, f->state != JOB_WAITING ? "true" : "false");
	st->wake = 1;
	/*
	 * The fence first: a job taken over is another runner's now, and
	 * its attempt row is not this one's either (the attempt is written
	 * only for the job the update matched).  WAITING keeps the
	 * attempt's start: the apply.  One prepared statement: finishing
	 * is on the store thread's path between rounds of deliveries.
	 */
	if ((res = store_pg_qp(st, STORE_PG_ST_FINISH, "WITH u AS"
	    " (UPDATE jobs SET state = $2, attempts = $3,"
	    " not_before = $4, updated = $5, error = $6,"
	    " result = coalesce($7, result),"
	    " started = CASE WHEN $2::int = 6 THEN $8::bigint END,"
	    " lease_owner = NULL, lease_until = NULL"
	    " WHERE id = $1 AND state = 2 AND lease_owner IS NOT DISTINCT FROM $9"
	    " AND claims = $10 RETURNING id),"
	    " a AS (INSERT INTO attempts(job_id, n, started, ended, ok, error)"
	    " SELECT id, $3::int, $8::bigint, $5::bigint, $11::int, $6::text"
	    " FROM u WHERE $12::boolean"
	    " ON CONFLICT (job_id, n) DO UPDATE SET started = excluded.started,"
	    " ended = excluded.ended, ok = excluded.ok, error = excluded.error)"
	    " SELECT count(*) FROM u", &p, PGRES_TUPLES_OK, "finish", err,
	    errlen)) == NULL)
		return -1;
	n = store_pg_int(res, 0, 0);
	PQclear(res);
	return n == 0 ? 1 : 0;
}

static int
store_pg_app_record(struct store *st, const char *app, enum job_state outcome,
    int64_t job_id, const char *revision, const char *health,
    int64_t synced_at_ms, const char *error, char *err, size_t errlen)
{
	struct store_pg_params	 p = { .n = 0 };

	store_pg_p_text(&p, app);
	store_pg_p_opt(&p, (int64_t)outcome);
	store_pg_p_text(&p, revision);
	store_pg_p_text(&p, health);
	store_pg_p_opt(&p, synced_at_ms);
	store_pg_p_int(&p, job_id);
	store_pg_p_text(&p, error);
	/* A success clears the last error. */
	store_pg_p_text(&p, outcome == JOB_SUCCEEDED ? "true" : "false");
	return store_pg_cmd(st, "INSERT INTO apps AS a(name, outcome, revision,"
	    " health, synced_at, last_job, last_error) VALUES ($1, $2, $3, $4,"
	    " $5, $6, $7) ON CONFLICT (name) DO UPDATE SET"
	    " outcome = coalesce(excluded.outcome, a.outcome),"
	    " revision = coalesce(excluded.revision, a.revision),"
	    " health = coalesce(excluded.health, a.health),"
	    " synced_at = coalesce(excluded.synced_at, a.synced_at),"
	    " last_job = excluded.last_job,"
	    " last_error = CASE WHEN $8::boolean THEN excluded.last_error"
	    " ELSE coalesce(excluded.last_error, a.last_error) END", &p,
	    "app status", NULL, err, errlen);
}

static int
store_pg_app_image_set(struct store *st, const char *app, const char *image,
    const char *tag, const char *digest, char *err, size_t errlen)
{
	struct store_pg_params	 p = { .n = 0 };

	store_pg_p_text(&p, app);
	store_pg_p_text(&p, image);
	store_pg_p_text(&p, tag);
	store_pg_p_text(&p, digest);
	return store_pg_cmd(st, "INSERT INTO app_images AS i(app, image, tag,"
	    " digest) VALUES ($1, $2, $3, $4) ON CONFLICT (app, image) DO"
	    " UPDATE SET tag = coalesce(excluded.tag, i.tag),"
	    " digest = excluded.digest", &p, "app image", NULL, err, errlen);
}

static int
store_pg_app_get(struct store *st, const char *app, struct store_app_row *r,
    char *err, size_t errlen)
{
	struct store_pg_params	 p = { .n = 0 };
	PGresult		*res;
	int			 i, n;

	memset(r, 0, sizeof(*r));
	store_pg_p_text(&p, app);
	if ((res = store_pg_q(st, "SELECT a.outcome, a.revision, a.health,"
	    " a.synced_at, a.last_job, a.last_error, j.kind, j.state FROM apps a"
	    " LEFT JOIN jobs j ON j.id = a.last_job WHERE a.name = $1", &p,
	    PGRES_TUPLES_OK, "app", err, errlen)) == NULL)
		return -1;
	if (PQntuples(res) > 0) {
		r->found = 1;
		r->outcome = (enum job_state)store_pg_int(res, 0, 0);
		r->revision = store_pg_str(res, 0, 1);
		r->health = store_pg_str(res, 0, 2);
		r->synced_at_ms = store_pg_int(res, 0, 3);
		r->last_job_id = store_pg_int(res, 0, 4);
		r->last_error = store_pg_str(res, 0, 5);
		r->last_job_kind = (enum job_kind)store_pg_int(res, 0, 6);
		r->last_job_state = (enum job_state)store_pg_int(res, 0, 7);
		if (PQgetisnull(res, 0, 6))
			r->last_job_id = 0;	/* deleted by retention */
	}
	PQclear(res);
	if ((res = store_pg_q(st, "SELECT image, tag, digest FROM app_images"
	    " WHERE app = $1 ORDER BY image", &p, PGRES_TUPLES_OK, "app images",
	    err, errlen)) == NULL) {
		store_app_row_clear(r);
		return -1;
	}
	n = PQntuples(res);
	if (n > 0)
		r->images = xcalloc((size_t)n, sizeof(*r->images));
	for (i = 0; i < n; i++) {
		r->images[i].image = store_pg_str(res, i, 0);
		r->images[i].tag = store_pg_str(res, i, 1);
		r->images[i].digest = store_pg_str(res, i, 2);
	}
	r->nimages = (size_t)n;
	PQclear(res);
	return 0;
}

static int
store_pg_notify_key(struct store *st, const char *key, int64_t now_ms,
    int64_t window_ms, char *err, size_t errlen)
{
	struct store_pg_params	 p = { .n = 0 };
	PGresult		*res;
	int			 rc;

	/*
	 * One statement, so two replicas planning the same alert at once
	 * cannot both see the key missing: the insert or the update wins
	 * only when the key is new or out of its window.
	 */
	store_pg_p_text(&p, key);
	store_pg_p_int(&p, now_ms);
	store_pg_p_int(&p, window_ms);
	if ((res = store_pg_q(st, "INSERT INTO notify_keys AS k(key, planned)"
	    " VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET"
	    " planned = excluded.planned WHERE $2 - k.planned >= $3"
	    " RETURNING 1", &p, PGRES_TUPLES_OK, "notify key", err,
	    errlen)) == NULL)
		return -1;
	rc = PQntuples(res) > 0 ? 0 : 1;
	PQclear(res);
	return rc;
}

static int
store_pg_inventory_get(struct store *st, const char *app, char **objects,
    char *err, size_t errlen)
{
	struct store_pg_params	 p = { .n = 0 };
	PGresult		*res;
	int			 rc = 0;

	*objects = NULL;
	store_pg_p_text(&p, app);
	if ((res = store_pg_q(st, "SELECT objects FROM app_inventory"
	    " WHERE app = $1", &p, PGRES_TUPLES_OK, "inventory", err,
	    errlen)) == NULL)
		return -1;
	if (PQntuples(res) > 0 && (*objects = store_pg_str(res, 0, 0)) != NULL)
		rc = 1;
	PQclear(res);
	return rc;
}

static int
store_pg_inventory_set(struct store *st, const char *app, const char *objects,
    int64_t now_ms, char *err, size_t errlen)
{
	struct store_pg_params	 p = { .n = 0 };

	store_pg_p_text(&p, app);
	store_pg_p_text(&p, objects);
	store_pg_p_int(&p, now_ms);
	return store_pg_cmd(st, "INSERT INTO app_inventory(app, objects, updated)"
	    " VALUES ($1, $2, $3::bigint) ON CONFLICT (app) DO UPDATE"
	    " SET objects = EXCLUDED.objects, updated = EXCLUDED.updated", &p,
	    "inventory", NULL, err, errlen);
}

static int
store_pg_event_received(struct store *st, int64_t event_id, int64_t *ms,
    char *err, size_t errlen)
{
	struct store_pg_params	 p = { .n = 0 };
	PGresult		*res;
	int			 rc = 0;

	store_pg_p_int(&p, event_id);
	if ((res = store_pg_q(st, "SELECT received FROM events WHERE id = $1",
	    &p, PGRES_TUPLES_OK, "event", err, errlen)) == NULL)
		return -1;
	if (PQntuples(res) > 0) {
		*ms = store_pg_int(res, 0, 0);
		rc = 1;
	}
	PQclear(res);
	return rc;
}

static int
store_pg_list_events(struct store *st, int64_t after, int limit,
    struct store_event_row **rowsp, size_t *np, int64_t *next, char *err,
    size_t errlen)
{
	struct store_pg_params	 p = { .n = 0 };
	struct store_event_row	*rows = NULL, *r;
	PGresult		*res;
	size_t			 n = 0, i;
	int			 row, k, nk, rc = -1;

	*next = 0;
	if (limit < 1) {
		snprintf(err, errlen, "events: limit must be at least 1");
		return -1;
	}
	store_pg_p_int(&p, after > 0 ? after : INT64_MAX);
	store_pg_p_int(&p, (int64_t)limit + 1);
	if ((res = store_pg_q(st, "SELECT id, source, delivery, received, kind,"
	    " summary FROM events WHERE id < $1 ORDER BY id DESC LIMIT $2", &p,
	    PGRES_TUPLES_OK, "events", err, errlen)) == NULL)
		return -1;
	for (row = 0; row < PQntuples(res); row++) {
		if (n == (size_t)limit) {
			*next = rows[n - 1].id;
			break;
		}
		rows = xreallocarray(rows, n + 1, sizeof(*rows));
		r = &rows[n++];
		memset(r, 0, sizeof(*r));
		r->id = store_pg_int(res, row, 0);
		r->source = store_pg_str(res, row, 1);
		r->delivery = store_pg_str(res, row, 2);
		r->received_ms = store_pg_int(res, row, 3);
		r->kind = store_pg_str(res, row, 4);
		r->summary = store_pg_str(res, row, 5);
	}
	PQclear(res);
	for (i = 0; i < n; i++) {
		p.n = 0;
		store_pg_p_int(&p, rows[i].id);
		if ((res = store_pg_q(st, "SELECT job_id FROM event_jobs"
		    " WHERE event_id = $1 ORDER BY job_id", &p, PGRES_TUPLES_OK,
		    "event jobs", err, errlen)) == NULL)
			goto out;
		nk = PQntuples(res);
		if (nk > 0)
			rows[i].job_ids = xcalloc((size_t)nk, sizeof(int64_t));
		for (k = 0; k < nk; k++)
			rows[i].job_ids[k] = store_pg_int(res, k, 0);
		rows[i].njob_ids = (size_t)nk;
		PQclear(res);
	}
	*rowsp = rows;
	*np = n;
	rows = NULL;
	n = 0;
	rc = 0;
out:
	store_event_rows_free(rows, n);
	return rc;
}

#define STORE_PG_JOB_COLS \
	"j.id, j.kind, j.state, j.app, j.repo, j.revision, j.image, j.tag," \
	" j.digest, j.params, e.source, e.delivery, j.error, j.result," \
	" j.attempts, j.max_attempts, j.created, j.updated, j.not_before," \
	" j.event_id, j.started FROM jobs j LEFT JOIN events e" \
	" ON e.id = j.event_id"

static void
store_pg_job_row(const PGresult *res, int i, struct store_job_row *r)
{
	memset(r, 0, sizeof(*r));
	r->id = store_pg_int(res, i, 0);
	r->kind = (enum job_kind)store_pg_int(res, i, 1);
	r->state = (enum job_state)store_pg_int(res, i, 2);
	r->app = store_pg_str(res, i, 3);
	r->repo = store_pg_str(res, i, 4);
	r->revision = store_pg_str(res, i, 5);
	r->image = store_pg_str(res, i, 6);
	r->tag = store_pg_str(res, i, 7);
	r->digest = store_pg_str(res, i, 8);
	r->params = store_pg_str(res, i, 9);
	r->source = store_pg_str(res, i, 10);
	r->delivery = store_pg_str(res, i, 11);
	r->error = store_pg_str(res, i, 12);
	r->result = store_pg_str(res, i, 13);
	r->attempts = (int)store_pg_int(res, i, 14);
	r->max_attempts = (int)store_pg_int(res, i, 15);
	r->created_ms = store_pg_int(res, i, 16);
	r->updated_ms = store_pg_int(res, i, 17);
	r->not_before_ms = store_pg_int(res, i, 18);
	r->event_id = store_pg_int(res, i, 19);
	r->started_ms = store_pg_int(res, i, 20);
}

static int
store_pg_list_jobs(struct store *st, const struct store_job_filter *f,
    struct store_job_row **rowsp, size_t *np, int64_t *next, char *err,
    size_t errlen)
{
	struct store_pg_params	 p = { .n = 0 };
	struct store_job_row	*rows = NULL;
	PGresult		*res;
	size_t			 n = 0;
	int			 row;

	*next = 0;
	if (f->limit < 1) {
		snprintf(err, errlen, "jobs: limit must be at least 1");
		return -1;
	}
	store_pg_p_int(&p, f->after > 0 ? f->after : INT64_MAX);
	store_pg_p_text(&p, f->app);
	store_pg_p_int(&p, f->state);
	store_pg_p_int(&p, f->kind);
	store_pg_p_int(&p, (int64_t)f->limit + 1);
	if ((res = store_pg_q(st, "SELECT " STORE_PG_JOB_COLS
	    " WHERE j.id < $1 AND ($2::text IS NULL OR j.app = $2)"
	    " AND ($3::int = 0 OR j.state = $3) AND ($4::int = 0 OR j.kind = $4)"
	    " ORDER BY j.id DESC LIMIT $5", &p, PGRES_TUPLES_OK, "jobs", err,
	    errlen)) == NULL)
		return -1;
	for (row = 0; row < PQntuples(res); row++) {
		if (n == (size_t)f->limit) {
			*next = rows[n - 1].id;
			break;
		}
		rows = xreallocarray(rows, n + 1, sizeof(*rows));
		store_pg_job_row(res, row, &rows[n++]);
	}
	PQclear(res);
	*rowsp = rows;
	*np = n;
	return 0;
}

static int
store_pg_get_job(struct store *st, int64_t id, struct store_job_row *r,
    char *err, size_t errlen)
{
	struct store_pg_params	 p = { .n = 0 };
	PGresult		*res;
	int			 rc = 0;

	memset(r, 0, sizeof(*r));
	store_pg_p_int(&p, id);
	if ((res = store_pg_q(st, "SELECT " STORE_PG_JOB_COLS " WHERE j.id = $1",
	    &p, PGRES_TUPLES_OK, "job", err, errlen)) == NULL)
		return -1;
	if (PQntuples(res) > 0) {
		store_pg_job_row(res, 0, r);
		rc = 1;
	}
	PQclear(res);
	return rc;
}

static int
store_pg_list_attempts(struct store *st, int64_t job_id,
    struct store_attempt_row **rowsp, size_t *np, char *err, size_t errlen)
{
	struct store_pg_params	 p = { .n = 0 };
	struct store_attempt_row *rows = NULL;
	PGresult		*res;
	int			 i, n;

	*rowsp = NULL;
	*np = 0;
	store_pg_p_int(&p, job_id);
	if ((res = store_pg_q(st, "SELECT n, started, ended, ok, error"
	    " FROM attempts WHERE job_id = $1 ORDER BY n", &p, PGRES_TUPLES_OK,
	    "attempts", err, errlen)) == NULL)
		return -1;
	n = PQntuples(res);
	if (n > 0)
		rows = xcalloc((size_t)n, sizeof(*rows));
	for (i = 0; i < n; i++) {
		rows[i].n = (int)store_pg_int(res, i, 0);
		rows[i].started_ms = store_pg_int(res, i, 1);
		rows[i].ended_ms = store_pg_int(res, i, 2);
		rows[i].ok = (int)store_pg_int(res, i, 3);
		rows[i].error = store_pg_str(res, i, 4);
	}
	*rowsp = rows;
	*np = (size_t)n;
	PQclear(res);
	return 0;
}

static int
store_pg_retry_job(struct store *st, int64_t id, int64_t now_ms, char *err,
    size_t errlen)
{
	struct store_pg_params	 p = { .n = 0 };
	PGresult		*res;
	int64_t			 state;

	store_pg_p_int(&p, id);
	if ((res = store_pg_q(st, "SELECT state FROM jobs WHERE id = $1"
	    " FOR UPDATE", &p, PGRES_TUPLES_OK, "retry", err, errlen)) == NULL)
		return -1;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return 2;
	}
	state = store_pg_int(res, 0, 0);
	PQclear(res);
	if (state != JOB_FAILED && state != JOB_DEAD)
		return 1;
	/* A manual retry starts a fresh series of attempts. */
	store_pg_p_int(&p, now_ms);
	st->wake = 1;
	return store_pg_cmd(st, "UPDATE jobs SET state = 1,"
	    " max_attempts = max_attempts + attempts, not_before = 0,"
	    " updated = $2 WHERE id = $1", &p, "retry", NULL, err, errlen);
}

static int
store_pg_retention(struct store *st, int64_t keep_before_ms,
    int64_t dedup_before_ms, int64_t *deleted, char *err, size_t errlen)
{
	static const char *const sql[] = {
		"DELETE FROM attempts WHERE job_id IN (SELECT id FROM jobs"
		" WHERE state IN (3, 5) AND updated < $1)",
		"DELETE FROM event_jobs WHERE job_id IN (SELECT id FROM jobs"
		" WHERE state IN (3, 5) AND updated < $1)",
		"DELETE FROM jobs WHERE state IN (3, 5) AND updated < $1",
		/* An event stays while its delivery id is remembered. */
		"DELETE FROM events WHERE received < least($1::bigint, $2::bigint) AND NOT EXISTS"
		" (SELECT 1 FROM event_jobs ej WHERE ej.event_id = events.id)",
		"DELETE FROM notify_keys WHERE planned < $1",
	};
	struct store_pg_params	 p = { .n = 0 };
	int64_t			 n;
	size_t			 i;

	*deleted = 0;
	if (store_pg_begin(st, err, errlen) == -1)
		return -1;
	for (i = 0; i < nitems(sql); i++) {
		/* $2 is only in the events statement (a parameter count must
		 * match the statement's). */
		p.n = 0;
		store_pg_p_int(&p, keep_before_ms);
		if (i == 3)
			store_pg_p_int(&p, dedup_before_ms);
		if (store_pg_cmd(st, sql[i], &p, "retention", &n, err,
		    errlen) == -1) {
			store_pg_rollback(st);
			return -1;
		}
		*deleted += n;
	}
	return store_pg_commit(st, err, errlen);
}

static int
store_pg_replica_beat(struct store *st, const struct store_replica *r,
    int64_t forget_before_ms, char *err, size_t errlen)
{
	struct store_pg_params	 p = { .n = 0 };

	store_pg_p_text(&p, r->id);
	store_pg_p_text(&p, r->hostname);
	store_pg_p_int(&p, r->pid);
	store_pg_p_text(&p, r->version);
	store_pg_p_int(&p, r->started_ms);
	store_pg_p_int(&p, r->heartbeat_ms);
	if (store_pg_cmd(st, "INSERT INTO replicas(id, hostname, pid, version,"
	    " started, heartbeat) VALUES ($1, $2, $3, $4, $5, $6)"
	    " ON CONFLICT(id) DO UPDATE SET heartbeat = excluded.heartbeat",
	    &p, "replica", NULL, err, errlen) == -1)
		return -1;
	p.n = 0;
	store_pg_p_int(&p, forget_before_ms);
	return store_pg_cmd(st, "DELETE FROM replicas WHERE heartbeat < $1",
	    &p, "replica", NULL, err, errlen);
}

static int
store_pg_replica_leave(struct store *st, const char *id, char *err,
    size_t errlen)
{
	struct store_pg_params	 p = { .n = 0 };

	store_pg_p_text(&p, id);
	if (store_pg_cmd(st, "DELETE FROM roles WHERE owner = $1", &p,
	    "replica", NULL, err, errlen) == -1)
		return -1;
	return store_pg_cmd(st, "DELETE FROM replicas WHERE id = $1", &p,
	    "replica", NULL, err, errlen);
}

static int
store_pg_list_replicas(struct store *st, struct store_replica_row **rows,
    size_t *n, char *err, size_t errlen)
{
	struct store_replica_row	*v;
	PGresult			*res;
	int				 i, cnt;

	*rows = NULL;
	*n = 0;
	if ((res = store_pg_q(st, "SELECT r.id, r.hostname, r.pid, r.version,"
	    " r.started, r.heartbeat, (SELECT count(*) FROM jobs j"
	    " WHERE j.state = 2 AND j.lease_owner = r.id) FROM replicas r"
	    " ORDER BY r.started, r.id", NULL, PGRES_TUPLES_OK, "replicas",
	    err, errlen)) == NULL)
		return -1;
	cnt = PQntuples(res);
	v = xcalloc(cnt > 0 ? (size_t)cnt : 1, sizeof(*v));
	for (i = 0; i < cnt; i++) {
		v[i].id = store_pg_str(res, i, 0);
		v[i].hostname = store_pg_str(res, i, 1);
		v[i].pid = store_pg_int(res, i, 2);
		v[i].version = store_pg_str(res, i, 3);
		v[i].started_ms = store_pg_int(res, i, 4);
		v[i].heartbeat_ms = store_pg_int(res, i, 5);
		v[i].running = store_pg_int(res, i, 6);
	}
	PQclear(res);
	*rows = v;
	*n = (size_t)cnt;
	return 0;
}

/*
 * ON CONFLICT DO UPDATE locks the row: a second replica asking at the
 * same time waits, then sees the first one's lease and changes nothing.
 */
static int
store_pg_role_hold(struct store *st, const char *role, const char *owner,
    int64_t ttl_ms, int64_t now_ms, char *err, size_t errlen)
{
	struct store_pg_params	 p = { .n = 0 };
	int64_t			 changed;

	store_pg_p_text(&p, role);
	store_pg_p_text(&p, owner);
	store_pg_p_int(&p, now_ms + ttl_ms);
	store_pg_p_int(&p, now_ms);
	if (store_pg_cmd(st, "INSERT INTO roles(name, owner, until)"
	    " VALUES ($1, $2, $3) ON CONFLICT(name) DO UPDATE SET"
	    " owner = excluded.owner, until = excluded.until"
	    " WHERE roles.owner = excluded.owner OR roles.until <= $4", &p,
	    "role", &changed, err, errlen) == -1)
		return -1;
	return changed > 0 ? 1 : 0;
}

static int
store_pg_list_roles(struct store *st, struct store_role_row **rows, size_t *n,
    char *err, size_t errlen)
{
	struct store_role_row	*v;
	PGresult		*res;
	int			 i, cnt;

	*rows = NULL;
	*n = 0;
	if ((res = store_pg_q(st, "SELECT name, owner, until FROM roles"
	    " ORDER BY name", NULL, PGRES_TUPLES_OK, "roles", err,
	    errlen)) == NULL)
		return -1;
	cnt = PQntuples(res);
	v = xcalloc(cnt > 0 ? (size_t)cnt : 1, sizeof(*v));
	for (i = 0; i < cnt; i++) {
		v[i].name = store_pg_str(res, i, 0);
		v[i].owner = store_pg_str(res, i, 1);
		v[i].until_ms = store_pg_int(res, i, 2);
	}
	PQclear(res);
	*rows = v;
	*n = (size_t)cnt;
	return 0;
}

/* Rows one at a time (single-row mode): a state may not fit in memory. */
static int
store_pg_rows_each(struct store *st, enum store_table t, store_row_cb *cb,
    void *arg, char *err, size_t errlen)
{
	const char	*vals[STORE_TABLE_MAXCOLS];
	PGresult	*res;
	char		*sql = store_table_sql(t, 0, "");
	int		 i, failed = 0, rc = -1;

	if (store_pg_reconnect(st, err, errlen) == -1)
		goto out;
	if (!PQsendQuery(st->conn, sql) || !PQsetSingleRowMode(st->conn)) {
		store_pg_errmsg(st, err, errlen, store_tables[t].name, NULL);
		goto out;
	}
	/* Read every result, even after a failure, to leave the connection
	 * ready for the next statement. */
	while ((res = PQgetResult(st->conn)) != NULL) {
		if (!failed && PQresultStatus(res) == PGRES_SINGLE_TUPLE) {
			for (i = 0; i < store_tables[t].ncols; i++)
				vals[i] = store_pg_val(res, 0, i);
			if (cb(arg, vals, err, errlen) != 0)
				failed = 2;
		} else if (!failed && PQresultStatus(res) != PGRES_TUPLES_OK) {
			store_pg_errmsg(st, err, errlen, store_tables[t].name,
			    res);
			failed = 1;
		}
		PQclear(res);
	}
	rc = failed ? -1 : 0;
out:
	free(sql);
	return rc;
}

static int
store_pg_rows_count(struct store *st, enum store_table t, int64_t *n,
    char *err, size_t errlen)
{
	PGresult	*res;
	char		*sql = xasprintf("SELECT count(*) FROM %s",
			    store_tables[t].name);

	res = store_pg_q(st, sql, NULL, PGRES_TUPLES_OK, store_tables[t].name,
	    err, errlen);
	free(sql);
	if (res == NULL)
		return -1;
	*n = store_pg_int(res, 0, 0);
	PQclear(res);
	return 0;
}

/*
 * SQLite finds repeated deliveries in memory, so an old state may hold one
 * (source, delivery) twice (sent again after its dedup window); here it is
 * a unique key, and the second event is reported with the first one's id.
 */
static int
store_pg_row_put(struct store *st, enum store_table t,
    const char *const *vals, int64_t *kept, char *err, size_t errlen)
{
	struct store_pg_params	 p = { .n = 0 };
	PGresult		*res;
	char			*sql = store_table_sql(t, '$',
				    " ON CONFLICT DO NOTHING");
	int			 rc = -1;

	if (store_pg_reconnect(st, err, errlen) == -1)
		goto out;
	res = PQexecParams(st->conn, sql, store_tables[t].ncols, NULL, vals,
	    NULL, NULL, 0);
	if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
		store_pg_errmsg(st, err, errlen, store_tables[t].name, res);
		PQclear(res);
		goto out;
	}
	rc = strcmp(PQcmdTuples(res), "0") == 0 ? 1 : 0;
	PQclear(res);
	if (rc == 1 && t == STORE_T_EVENTS) {
		store_pg_p_text(&p, vals[1]);
		store_pg_p_text(&p, vals[2]);
		if ((res = store_pg_q(st, "SELECT id FROM events WHERE"
		    " source = $1 AND delivery = $2", &p, PGRES_TUPLES_OK,
		    "events", err, errlen)) == NULL) {
			rc = -1;
			goto out;
		}
		*kept = PQntuples(res) == 1 ? store_pg_int(res, 0, 0) : 0;
		PQclear(res);
	}
out:
	free(sql);
	return rc;
}

/* Rows inserted with their ids leave the sequences behind: move them on. */
static int
store_pg_rows_done(struct store *st, char *err, size_t errlen)
{
	static const char *const tables[] = { "events", "jobs" };
	PGresult	*res;
	char		*sql;
	size_t		 i;

	for (i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		sql = xasprintf("SELECT setval(pg_get_serial_sequence('%s',"
		    " 'id'), coalesce(max(id), 0) + 1, false) FROM %s",
		    tables[i], tables[i]);
		res = store_pg_q(st, sql, NULL, PGRES_TUPLES_OK, "sequence",
		    err, errlen);
		free(sql);
		if (res == NULL)
			return -1;
		PQclear(res);
	}
	return 0;
}

static int
store_pg_listen(struct store *st, char *err, size_t errlen)
{
	st->listening = 1;
	return store_pg_cmd(st, "LISTEN " STORE_PG_CHANNEL, NULL, "listen",
	    NULL, err, errlen);
}

static int
store_pg_wait_fd(struct store *st)
{
	return PQstatus(st->conn) == CONNECTION_OK ? PQsocket(st->conn) : -1;
}

/*
 * What arrived on a listening connection: the number of wake-ups sent by
 * other processes, 1 more when the connection was lost and has just come
 * back (what was sent meanwhile is lost), -1 while it is lost.
 */
static int
store_pg_drain_notifications(struct store *st, char *err, size_t errlen)
{
	PGnotify	*n;
	int		 back = 0, count = 0;

	if (PQstatus(st->conn) == CONNECTION_BAD) {
		if (store_pg_reconnect(st, err, errlen) == -1)
			return -1;
		back = 1;
	}
	if (!PQconsumeInput(st->conn)) {
		store_pg_errmsg(st, err, errlen, "listen", NULL);
		return -1;
	}
	while ((n = PQnotifies(st->conn)) != NULL) {
		if (strcmp(n->extra, store_pg_token) != 0)
			count++;
		PQfreemem(n);
	}
	return count + back;
}

const struct store_ops store_pg_ops = {
	.listen = store_pg_listen,
	.wait_fd = store_pg_wait_fd,
	.drain_notifications = store_pg_drain_notifications,
	.open_start = store_pg_open_start,
	.loop = store_pg_loop,
	.reconnect_start = store_pg_reconnect_start,
	.connect_poll = store_pg_connect_poll,
	.rows_each = store_pg_rows_each,
	.rows_count = store_pg_rows_count,
	.row_put = store_pg_row_put,
	.rows_done = store_pg_rows_done,
	.name = "postgres",
	.shared = 1,
	.replica_beat = store_pg_replica_beat,
	.replica_leave = store_pg_replica_leave,
	.list_replicas = store_pg_list_replicas,
	.role_hold = store_pg_role_hold,
	.list_roles = store_pg_list_roles,
	.inventory_get = store_pg_inventory_get,
	.inventory_set = store_pg_inventory_set,
	.open = store_pg_open,
	.close = store_pg_close,
	.transient = store_pg_transient,
	.begin = store_pg_begin,
	.commit = store_pg_commit,
	.rollback = store_pg_rollback,
	.item_begin = store_pg_item_begin,
	.item_end = store_pg_item_end,
	.item_abort = store_pg_item_abort,
	.writer_start = store_pg_writer_start,
	.upkeep = NULL,		/* nothing beside the writer (see the top) */
	.add_event = store_pg_add_event,
	.add_job = store_pg_add_job,
	.add_deliveries = store_pg_add_deliveries,
	.add_deliveries_commit = store_pg_add_deliveries_commit,
	.count_pending = store_pg_count_pending,
	.count_states = store_pg_count_states,
	.renew = store_pg_renew,
	.takeover = store_pg_takeover,
	.next_due = store_pg_next_due,
	.claim = store_pg_claim,
	.finish = store_pg_finish,
	.app_record = store_pg_app_record,
	.app_image_set = store_pg_app_image_set,
	.app_get = store_pg_app_get,
	.notify_key = store_pg_notify_key,
	.event_received = store_pg_event_received,
	.list_events = store_pg_list_events,
	.list_jobs = store_pg_list_jobs,
	.get_job = store_pg_get_job,
	.list_attempts = store_pg_list_attempts,
	.retry_job = store_pg_retry_job,
	.retention = store_pg_retention,
};
