/*
 * store.h: the durable state store behind the queue (events, deliveries,
 * jobs, attempts, results, per-app status, alert dedup keys).
 *
 * Every SQL statement of the daemon lives behind this ops struct (SQLite
 * in store_sqlite.c, PostgreSQL in store_pg.c); the queue, the workers and
 * the admin API only see these calls.  A struct store is
 * one connection: the caller uses it from one thread at a time.  The queue
 * keeps one store for its store thread (all writes of the hot path) and one
 * for the event loop (admin reads and the rare admin writes); on a store
 * that several processes share, the loop keeps a third one that listens
 * for the others' wake-ups (daemon/wakeup.c).  What a
 * backend needs beside its writer (the SQLite write-ahead log's
 * checkpoints) it runs itself: see writer_start and upkeep.
 *
 * Calls return 0 on success and -1 on a store error with a reason in err;
 * a few return a positive status where the caller must tell cases apart.
 * Times are unix milliseconds.
 */
#ifndef GITOPSD_STORE_H
#define GITOPSD_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "job.h"

struct store;

/* An accepted event to record (strings borrowed). */
struct store_event {
	const char	*source;
	const char	*delivery;
	const char	*kind;		/* "push", "image", "api" */
	const char	*summary;
	int64_t		 received_ms;
};

/*
 * One delivery of a round for add_deliveries: its event and jobs (borrowed;
 * max_attempts[k] and job_ids[k] for jobs[k]), and what became of it.
 */
struct store_delivery {
	struct store_event	 ev;
	const struct job_spec	*jobs;
	const int		*max_attempts;
	size_t			 njobs;
	/* Out: 0 stored, 1 a duplicate (nothing written), -1 not stored
	 * (nothing of it written, the others unharmed). */
	int			 status;
	int64_t			 event_id;
	int64_t			*job_ids;
	size_t			 added;		/* jobs created, not absorbed */
	char			 err[160];	/* status -1 */
};

/* A job as the admin API shows it.  Strings malloc'd (store_job_row_clear). */
struct store_job_row {
	int64_t		 id;
	enum job_kind	 kind;
	enum job_state	 state;
	char		*app, *repo, *revision, *image, *tag, *digest, *params;
	char		*source, *delivery, *error, *result;
	int		 attempts, max_attempts;
	int64_t		 created_ms, updated_ms, not_before_ms, event_id;
	int64_t		 started_ms;	/* current attempt (running, waiting),
					 * else 0 */
};

struct store_attempt_row {
	int		 n;
	int64_t		 started_ms, ended_ms;
	int		 ok;
	char		*error;
};

struct store_event_row {
	int64_t		 id;
	char		*source, *delivery, *kind, *summary;
	int64_t		 received_ms;
	int64_t		*job_ids;
	size_t		 njob_ids;
};

struct store_image_row {
	char		*image, *tag, *digest;
};

/* Per-app status, for GET /api/v1/apps and recovery alerts. */
struct store_app_row {
	int		 found;
	enum job_state	 outcome;	/* last final outcome (0: none) */
	char		*revision, *health, *last_error;
	int64_t		 synced_at_ms;
	int64_t		 last_job_id;	/* 0: none */
	enum job_kind	 last_job_kind;
	enum job_state	 last_job_state;
	struct store_image_row *images;
	size_t		 nimages;
};

struct store_job_filter {
	const char	*app;		/* NULL: any */
	int		 state;		/* 0: any; else enum job_state */
	int		 kind;		/* 0: any; else enum job_kind */
	int64_t		 after;		/* 0: from the newest; else id < after */
	int		 limit;
};

/* Claim limits and rules, see claim below. */
struct store_claim {
	int64_t		 now_ms;
	int		 max_thread;	/* jobs for worker threads (sync, update-image) */
	int		 max_loop;	/* notify jobs (run on the loop) */
	/* The lease the claimed jobs are held under (see renew). */
	const char	*owner;		/* this replica (replica_id()) */
	int64_t		 lease_until_ms;
};

/* How a finished attempt changes a job (decided by the queue). */
struct store_finish {
	int64_t		 job_id;
	enum job_state	 state;		/* SUCCEEDED, FAILED (retry), DEAD or
					 * WAITING (looked at again) */
	int		 attempts;	/* attempts made, this one included */
	int64_t		 not_before_ms;	/* FAILED: next attempt; WAITING:
					 * next look */
	int64_t		 started_ms, ended_ms;
	const char	*error;		/* NULL on success */
	const char	*result;	/* JSON object text or NULL */
	/* The fence: applies only to a job still running under this
	 * owner's lease (the claim's owner) and this claim (job->claim). */
	const char	*owner;
	int64_t		 claim;
};

/* A lease to renew: a job and the token of the claim that holds it. */
struct store_lease {
	int64_t		 job_id;
	int64_t		 claim;
};

/* A replica's registration and heartbeat (strings borrowed). */
struct store_replica {
	const char	*id, *hostname, *version;
	int64_t		 pid, started_ms, heartbeat_ms;
};

/* A replica as listed.  Strings malloc'd (store_replica_rows_free). */
struct store_replica_row {
	char		*id, *hostname, *version;
	int64_t		 pid, started_ms, heartbeat_ms;
	int64_t		 running;	/* running jobs leased to it */
};

/* Who holds a role, until when.  Strings malloc'd. */
struct store_role_row {
	char		*name, *owner;
	int64_t		 until_ms;
};

/*
 * The tables of a state, for copying one whole (daemon/copystate.c): every
 * backend stores them with these columns, in this order (store_tables),
 * rows passed as text (NULL for SQL NULL) so no value is reinterpreted.
 * Parents before children: events, then the jobs that name them.
 */
enum store_table {
	STORE_T_EVENTS,
	STORE_T_JOBS,
	STORE_T_EVENT_JOBS,
	STORE_T_ATTEMPTS,
	STORE_T_APPS,
	STORE_T_APP_IMAGES,
	STORE_T_APP_INVENTORY,
	STORE_T_NOTIFY_KEYS,
	STORE_T_MAX
};

#define STORE_TABLE_MAXCOLS	20

struct store_table_def {
	const char	*name;
	const char	*order;		/* ORDER BY: stable, parents first */
	const char	*cols[STORE_TABLE_MAXCOLS];
	int		 ncols;
};

extern const struct store_table_def store_tables[STORE_T_MAX];

/* One row of a table (vals[i] is column i); non-zero stops the walk. */
/* SQL for a table's rows, see daemon/store.c (backends only). */
char	*store_table_sql(enum store_table, char ph, const char *tail);

typedef int store_row_cb(void *arg, const char *const *vals, char *err,
    size_t errlen);

struct store_ops {
	const char	*name;
	/*
	 * Several processes may use one store at once (replicas).  When
	 * not, a store's leases at start are a dead process's.
	 */
	int		 shared;
	/*
	 * Open (creating the schema); readonly stores still take admin writes.
	 * On failure *transient (may be NULL) says whether the cause can pass
	 * without a restart: the disk full, read-only or failing I/O (not a
	 * corrupt file, a missing directory or a permission).
	 */
	struct store	*(*open)(const char *path, int *transient, char *err,
			    size_t errlen);
	void		 (*close)(struct store *);
	/* After a call failed: could its cause pass, as for open? */
	int		 (*transient)(struct store *);

	/* One transaction; begin takes the write lock at once. */
	int		 (*begin)(struct store *, char *err, size_t errlen);
	int		 (*commit)(struct store *, char *err, size_t errlen);
	void		 (*rollback)(struct store *);
	/* A nested all-or-nothing unit inside a transaction (a finished run,
	 * an admin write; deliveries go without one, see add_event). */
	int		 (*item_begin)(struct store *, char *err, size_t errlen);
	int		 (*item_end)(struct store *, char *err, size_t errlen);
	void		 (*item_abort)(struct store *);

	/*
	 * This connection becomes the writer: the one that takes deliveries
	 * and the queue's writes, used by one thread.  Called after open,
	 * outside a transaction (again: the window is read anew, nothing
	 * starts twice).  It recognises the delivery ids received since
	 * dedup_since_ms (the dedup window; without this call the first
	 * add_event remembers every stored event) and starts whatever upkeep
	 * the backend runs beside a writer, on threads and connections of its
	 * own, until close (which finishes it).  On failure transient() says
	 * whether the cause can pass, as for open.
	 */
	int		 (*writer_start)(struct store *, int64_t dedup_since_ms,
			    char *err, size_t errlen);
	/*
	 * The writer's moment for the backend's upkeep (NULL: none needed):
	 * called on the writer's thread, outside a transaction, after each
	 * round of work (its replies handed back), and at least once a
	 * second.  It may use the connection briefly but never waits for
	 * another one, and logs its own failures (nothing for the caller to
	 * do about them).
	 */
	void		 (*upkeep)(struct store *);
	/*
	 * Record an event and its delivery id.  Returns 0 (event_id set),
	 * 1 when (source, delivery) is already stored (found before anything
	 * is written, so nothing needs undoing), -1 on error (the caller
	 * rolls back the whole transaction).
	 */
	int		 (*add_event)(struct store *, const struct store_event *,
			    int64_t *event_id, char *err, size_t errlen);
	/*
	 * Create a job (linked to event_id when > 0).  A sync job for an app
	 * that already has a queued sync is absorbed into it: that job takes
	 * the newer revision, and its id is returned.  *absorbed says which.
	 */
	int		 (*add_job)(struct store *, const struct job_spec *,
			    int64_t event_id, int max_attempts, int64_t now_ms,
			    int64_t *job_id, int *absorbed, char *err,
			    size_t errlen);
	/*
	 * A round's deliveries at once, each as add_event then add_job for
	 * its jobs would store it, in order (NULL: the caller makes those
	 * calls).  A delivery that cannot be stored is left out whole
	 * (status -1) without failing the others.  Returns -1 only when the
	 * transaction itself is lost (the caller rolls it back).
	 */
	int		 (*add_deliveries)(struct store *,
			    struct store_delivery *, size_t n, int64_t now_ms,
			    char *err, size_t errlen);
	/*
	 * A round of deliveries only, in a transaction of its own: begin,
	 * add_deliveries and commit in one exchange with the server (NULL:
	 * the caller makes those three calls).  0: committed, ds filled as
	 * by add_deliveries; -1: nothing of it may be taken as committed
	 * (rolled back, or the commit's outcome unknown).
	 */
	int		 (*add_deliveries_commit)(struct store *,
			    struct store_delivery *, size_t n, int64_t now_ms,
			    char *err, size_t errlen);
	/* Jobs waiting to run (queued, or failed awaiting retry). */
	int		 (*count_pending)(struct store *, int64_t *n,
			    char *err, size_t errlen);
	/*
	 * counts[state] (array of JOB_STATE_MAX) for queued, running, failed,
	 * dead and waiting; succeeded is left 0 (it only grows; jobs_total
	 * counts it).  counts[0] is the alert outbox: notify jobs queued,
	 * running or failed (waiting for a retry).
	 */
	int		 (*count_states)(struct store *,
			    int64_t counts[JOB_STATE_MAX], char *err,
			    size_t errlen);
	/*
	 * Leases.  A claimed job is held by its claimer's owner id until
	 * lease_until; the claimer renews it while the job runs.  renew:
	 * lease_until of owner's running jobs among leases, each only while
	 * still held by the claim named (one statement); *nrenewed says how
	 * many were still its own.
	 */
	int		 (*renew)(struct store *, const char *owner,
			    const struct store_lease *leases, size_t nleases,
			    int64_t until_ms,
			    size_t *nrenewed, char *err, size_t errlen);
	/*
	 * Take over the running jobs whose lease ended before expired_ms,
	 * as after a crash of their runner: back to queued with the attempt
	 * counted (an attempts row says it was interrupted); those out of
	 * attempts are dead.  A waiting job's health check that was
	 * interrupted goes back to waiting, due at once, with nothing
	 * counted (*nrequeued counts it).  The rule is job_advance's for an
	 * interrupted attempt (job_result.interrupted).  When dead is not
	 * NULL, *dead gets the jobs made dead, as they were claimed
	 * (*ndead of them; the caller frees each with job_free and the
	 * array with free), for the caller to record their failure as an
	 * attempt's (alerts, app status).  Inside the caller's transaction;
	 * serialised with claims.
	 */
	int		 (*takeover)(struct store *, int64_t expired_ms,
			    int64_t now_ms, int *nrequeued, int *ndead,
			    struct job ***dead, char *err, size_t errlen);
	/*
	 * Earliest not_before after after_ms of a job waiting for its time
	 * (queued, failed or waiting): 1 found, 0 none, -1 error.  Jobs due
	 * already but held back (by their app) must not hide a later one:
	 * a waiting job is the one that frees its app.
	 */
	int		 (*next_due)(struct store *, int64_t after_ms,
			    int64_t *due_ms,
			    char *err, size_t errlen);
	/*
	 * Mark runnable jobs running and return them (caller frees each with
	 * job_free and the array with free).  Rules: due jobs in
	 * (not_before, id) order; at most one running sync/update-image job
	 * per app and one running update-image job per repository; a waiting
	 * job holds its app like a running one (only it may run there); other
	 * queued update-image jobs of the same repository are claimed with it
	 * into job->merged.  Notify jobs are not limited per app.  A claimed
	 * waiting job comes with job->wait and job->started_ms.  Every job
	 * claimed (merged ones too) is leased to owner until lease_until_ms
	 * (a waiting job holds no lease: nobody runs it until its look).
	 * Every claim counts one more on the job's claims counter and hands
	 * the new count out as job->claim, the token finish and renew
	 * compare: an owner alone cannot tell its claims of one job apart.
	 */
	int		 (*claim)(struct store *, const struct store_claim *,
			    struct job ***jobs, size_t *njobs, char *err,
			    size_t errlen);
	/*
	 * Record an attempt's end and the job's new state, and end its
	 * lease.  WAITING records no attempt and keeps started_ms as the
	 * attempt's start.  Returns 1, writing nothing, when the job is no
	 * longer running under f->owner's lease and claim f->claim (taken
	 * over meanwhile, and perhaps claimed again, by anyone).
	 */
	int		 (*finish)(struct store *, const struct store_finish *,
			    char *err, size_t errlen);
	/*
	 * Per-app status after an attempt: outcome (0: keep), revision and
	 * health (NULL: keep) with synced_at, last job and error (NULL clears
	 * it when outcome is SUCCEEDED).
	 */
	int		 (*app_record)(struct store *, const char *app,
			    enum job_state outcome, int64_t job_id,
			    const char *revision, const char *health,
			    int64_t synced_at_ms, const char *error,
			    char *err, size_t errlen);
	int		 (*app_image_set)(struct store *, const char *app,
			    const char *image, const char *tag,
			    const char *digest, char *err, size_t errlen);
	int		 (*app_get)(struct store *, const char *app,
			    struct store_app_row *, char *err, size_t errlen);
	/*
	 * An app's inventory: what its syncs applied (group/version/kind,
	 * namespace, name, uid), as the JSON text sync.c writes; the store
	 * keeps it opaque.  get: 1 found (*objects malloc'd), 0 none, -1
	 * error.  set replaces it (in the caller's transaction, with the
	 * attempt that produced it).
	 */
	int		 (*inventory_get)(struct store *, const char *app,
			    char **objects, char *err, size_t errlen);
	int		 (*inventory_set)(struct store *, const char *app,
			    const char *objects, int64_t now_ms, char *err,
			    size_t errlen);
	/*
	 * Alert dedup: returns 1 if key was planned within window_ms (skip
	 * it), else records it at now_ms and returns 0; -1 on error.
	 */
	int		 (*notify_key)(struct store *, const char *key,
			    int64_t now_ms, int64_t window_ms, char *err,
			    size_t errlen);
	/* Received time of an event: 1 found, 0 not, -1 error. */
	int		 (*event_received)(struct store *, int64_t event_id,
			    int64_t *ms, char *err, size_t errlen);

	/* Admin: rows newest first; *next = id for the next page or 0. */
	int		 (*list_events)(struct store *, int64_t after, int limit,
			    struct store_event_row **rows, size_t *n,
			    int64_t *next, char *err, size_t errlen);
	int		 (*list_jobs)(struct store *, const struct store_job_filter *,
			    struct store_job_row **rows, size_t *n,
			    int64_t *next, char *err, size_t errlen);
	/* 1 found, 0 not found, -1 error. */
	int		 (*get_job)(struct store *, int64_t id,
			    struct store_job_row *, char *err, size_t errlen);
	int		 (*list_attempts)(struct store *, int64_t job_id,
			    struct store_attempt_row **rows, size_t *n,
			    char *err, size_t errlen);
	/*
	 * A failed or dead job back to queued (a fresh set of attempts),
	 * inside the caller's transaction.  Returns 0, 1 if its state does
	 * not allow it, 2 if unknown, -1 on error.
	 */
	int		 (*retry_job)(struct store *, int64_t id, int64_t now_ms,
			    char *err, size_t errlen);
	/*
	 * Delete finished jobs (and their attempts, events left without
	 * jobs) older than keep_before_ms and delivery ids older than
	 * dedup_before_ms.  *deleted counts rows removed.
	 */
	int		 (*retention)(struct store *, int64_t keep_before_ms,
			    int64_t dedup_before_ms, int64_t *deleted,
			    char *err, size_t errlen);
	/*
	 * Replicas (DESIGN.md section 9).  replica_beat registers r or
	 * renews its heartbeat (one upsert) and forgets replicas whose
	 * heartbeat is older than forget_before_ms; replica_leave removes a
	 * replica that stops and gives up its roles.  list_replicas: oldest
	 * first, with the running jobs whose lease_owner is the replica.
	 * Outside a transaction (each is one of its own).
	 */
	int		 (*replica_beat)(struct store *,
			    const struct store_replica *r,
			    int64_t forget_before_ms, char *err, size_t errlen);
	int		 (*replica_leave)(struct store *, const char *id,
			    char *err, size_t errlen);
	int		 (*list_replicas)(struct store *,
			    struct store_replica_row **rows, size_t *n,
			    char *err, size_t errlen);
	/*
	 * A named role held by one replica at a time, as a lease: owner
	 * takes role when nobody holds it, when the holder's lease ran out
	 * (until <= now_ms) or when owner holds it already, and then holds it
	 * until now_ms + ttl_ms.  One atomic statement, so two replicas
	 * asking at once never both get it.  1 held, 0 another replica holds
	 * it, -1 error.  list_roles: every role row, expired ones included.
	 */
	int		 (*role_hold)(struct store *, const char *role,
			    const char *owner, int64_t ttl_ms, int64_t now_ms,
			    char *err, size_t errlen);
	int		 (*list_roles)(struct store *,
			    struct store_role_row **rows, size_t *n,
			    char *err, size_t errlen);

	/*
	 * Copying a whole state (daemon/copystate.c).  rows_each calls cb
	 * for every row of a table in its order; rows_count counts them;
	 * row_put inserts one row as given, ids included, in the caller's
	 * transaction: 0, or 1 when the row's unique key is already stored
	 * (an event whose (source, delivery) another event holds: *kept is
	 * that event's id), -1 on error.  rows_done, after the last row and
	 * before the commit, makes new ids start past the copied ones.
	 */
	int		 (*rows_each)(struct store *, enum store_table,
			    store_row_cb *cb, void *arg, char *err,
			    size_t errlen);
	int		 (*rows_count)(struct store *, enum store_table,
			    int64_t *n, char *err, size_t errlen);
	int		 (*row_put)(struct store *, enum store_table,
			    const char *const *vals, int64_t *kept,
			    char *err, size_t errlen);
	int		 (*rows_done)(struct store *, char *err, size_t errlen);

	/*
	 * Wake-ups between processes sharing the store (NULL for a store
	 * only one process uses).  A commit that queued, retried or finished
	 * a job wakes every other process's listening connection.  listen
	 * makes this connection one (kept across reconnects); wait_fd is its
	 * socket to watch for reading (-1 while the connection is lost: it
	 * may change); drain_notifications reads what arrived and returns
	 * how many wake-ups it holds (>0: try to claim), reconnecting a lost
	 * connection (which counts as one), -1 while it is lost.
	 */
	int		 (*listen)(struct store *, char *err, size_t errlen);
	int		 (*wait_fd)(struct store *);
	int		 (*drain_notifications)(struct store *, char *err,
			    size_t errlen);

	/*
	 * Connections of the event loop (wake-ups, admin reads) are made
	 * without blocking it: a server whose host drops packets would
	 * otherwise freeze every hook and probe for the whole connect
	 * (NULL for a store with no server).  open_start begins a
	 * connection and returns at once; on a connection made by open, loop
	 * makes it the loop's: a call on it once lost fails at once instead
	 * of reconnecting inside the call, and reconnect_start begins
	 * making it again.  connect_poll moves a connection being made on:
	 * 1 made (its session set up), 0 not yet (*fd, *want_write: what to
	 * wait for before the next call; the first call asks for writing,
	 * and fd may change), -1 failed (err).  Calls on a connection being
	 * made fail at once and transient() is 1.  The caller bounds the
	 * time (daemon/wakeup.c, wakeup_dial).
	 */
	struct store	*(*open_start)(const char *target, char *err,
			    size_t errlen);
	void		 (*loop)(struct store *);
	int		 (*reconnect_start)(struct store *, char *err,
			    size_t errlen);
	int		 (*connect_poll)(struct store *, int *fd, int *want_write,
			    char *err, size_t errlen);
};

extern const struct store_ops store_sqlite_ops;
extern const struct store_ops store_pg_ops;

struct config_state;

/*
 * The backend of state.driver and what its open takes in *target (the
 * SQLite path or the PostgreSQL DSN, a secret; borrowed from cs).
 */
const struct store_ops	*store_backend(const struct config_state *cs,
			    const char **target);

/*
 * The claim rules of every backend (see claim above), fed with the jobs
 * already running or waiting (busy) and then the candidates in due order
 * (take: 1 to claim it, 0 to pass it over); merge says whether a queued
 * update-image job of lead's repository may join lead's run.  waiting: the
 * job is in JOB_WAITING; its app is held (only it may run there, and no
 * merge takes it).  A notify job with a repo is a status report
 * (commit-status): one per app runs at a time, in due order, so a sync's
 * pending status is answered before its result is sent.
 * Zero-initialised.
 */
struct store_rules {
	char		**apps, **repos;
	char		**held;		/* apps of waiting jobs */
	char		**reports;	/* apps of running status reports */
	size_t		 napps, nrepos, nheld, nreports;
	int		 nthread, nloop;
};

void	store_rules_busy(struct store_rules *, enum job_kind, const char *app,
	    const char *repo, int waiting);
int	store_rules_full(const struct store_rules *, const struct store_claim *);
int	store_rules_take(struct store_rules *, const struct store_claim *,
	    enum job_kind, const char *app, const char *repo, int waiting);
int	store_rules_merge(struct store_rules *, const struct job *lead,
	    const char *app);
void	store_rules_free(struct store_rules *);
/* m joins lead's run (lead owns it). */
void	store_job_merge(struct job *lead, struct job *m);

void	store_job_row_clear(struct store_job_row *);
void	store_job_rows_free(struct store_job_row *, size_t);
void	store_attempt_rows_free(struct store_attempt_row *, size_t);
void	store_event_rows_free(struct store_event_row *, size_t);
void	store_app_row_clear(struct store_app_row *);
void	store_replica_rows_free(struct store_replica_row *, size_t);
void	store_role_rows_free(struct store_role_row *, size_t);

#endif
