/*
 * replicas.c: the replicas sharing one state store (include/replicas.h).
 *
 * Each process registers a row (id, host, pid, version, start) and renews
 * its heartbeat every state.heartbeat_s from the queue's store thread,
 * between rounds: no thread and no connection of its own.  A replica is
 * alive while its heartbeat is younger than three heartbeats
 * (replicas_alive); one missed renewal (a long commit, a slow database) is
 * not a death.  Rows of replicas gone for REPLICAS_FORGET_MS are removed
 * by whichever replica beats next.
 *
 * Periodic work (drift re-syncs, registry and Git polls, retention, the
 * re-sends of open Alertmanager alerts) must
 * run on one replica at a time, like Flux's leader election: the replica
 * holding the role "periodic" (store role_hold, a lease of three
 * heartbeats renewed at each one) does it, the others skip it.  When the
 * holder dies its lease runs out and the next replica to ask takes the
 * role; a clean stop gives it up at once (replicas_leave).  This replica
 * trusts its hold one heartbeat less than the lease, on the monotonic
 * clock, so a renewal that fails or comes late stops the work before
 * another replica may take it (lease times are compared across replicas:
 * their clocks are kept in step, as for the job leases).  A store that
 * one process uses alone (SQLite) needs no election: the role is held.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "metrics.h"
#include "replica.h"
#include "replicas.h"
#include "store.h"
#include "util.h"

#define REPLICAS_FORGET_MS	(3600 * 1000)
#define REPLICAS_TIMEOUT_BEATS	3

/* Written by the store thread; read (atomically) by any thread. */
static int64_t	 replicas_timeout_ms = REPLICAS_TIMEOUT_BEATS * 5000;
static int64_t	 replicas_held_until;	/* monotonic ms */

/* Store thread only. */
static int64_t	 replicas_started_ms;
static int64_t	 replicas_next_beat;	/* monotonic ms */
static int	 replicas_holding;	/* as last logged */
static int	 replicas_registered;

int
replicas_periodic(void)
{
	return util_mono_ms() < __atomic_load_n(&replicas_held_until,
	    __ATOMIC_ACQUIRE);
}

int
replicas_alive(int64_t heartbeat_ms, int64_t now_ms)
{
	return now_ms - heartbeat_ms <
	    __atomic_load_n(&replicas_timeout_ms, __ATOMIC_RELAXED);
}

/* gitopsd_replicas: the live replicas the store knows of. */
static void
replicas_count(const struct store_ops *ops, struct store *st, int64_t now)
{
	struct store_replica_row	*rows;
	size_t				 n, i, alive = 0;
	char				 err[256];

	if (ops->list_replicas(st, &rows, &n, err, sizeof(err)) == -1) {
		log_warnx("replicas: %s", err);
		return;
	}
	for (i = 0; i < n; i++)
		if (replicas_alive(rows[i].heartbeat_ms, now))
			alive++;
	metrics_gauge_set("gitopsd_replicas", NULL, (double)alive);
	store_replica_rows_free(rows, n);
}

/*
 * On a store no other process uses, rows of other replicas are this
 * one's predecessors (stopped by a crash): they are gone.
 */
static void
replicas_forget_others(const struct store_ops *ops, struct store *st)
{
	struct store_replica_row	*rows;
	size_t				 n, i;
	char				 err[256];

	if (ops->list_replicas(st, &rows, &n, err, sizeof(err)) == -1) {
		log_warnx("replicas: %s", err);
		return;
	}
	for (i = 0; i < n; i++)
		if (strcmp(rows[i].id, replica_id()) != 0 &&
		    ops->replica_leave(st, rows[i].id, err, sizeof(err)) == -1)
			log_warnx("replicas: %s", err);
	store_replica_rows_free(rows, n);
}

/* Take or renew the periodic role; log when it comes or goes. */
static void
replicas_hold(const struct store_ops *ops, struct store *st, int64_t beat_ms,
    int64_t now, int64_t mono)
{
	int64_t	 ttl = REPLICAS_TIMEOUT_BEATS * beat_ms, until;
	char	 err[256];
	int	 r;

	/* Alone on the store, the row only shows the role in the listing. */
	r = ops->role_hold(st, REPLICAS_ROLE_PERIODIC, replica_id(), ttl, now,
	    err, sizeof(err));
	if (r == -1)
		log_warnx("replicas: role %s: %s", REPLICAS_ROLE_PERIODIC, err);
	if (!ops->shared)
		r = 1;
	else if (r == -1)
		return;	/* our hold runs out by itself if this goes on */
	until = r == 0 ? 0 : !ops->shared ? INT64_MAX : mono + ttl - beat_ms;
	__atomic_store_n(&replicas_held_until, until, __ATOMIC_RELEASE);
	metrics_gauge_set("gitopsd_role_held", "role=\"" REPLICAS_ROLE_PERIODIC
	    "\"", r);
	if (r != replicas_holding)
		log_kv(LOG_LEVEL_INFO, r ? "role taken: this replica runs the"
		    " periodic work" : "role held by another replica: periodic"
		    " work skipped here", "role", REPLICAS_ROLE_PERIODIC,
		    "replica", replica_id(), NULL);
	replicas_holding = r;
}

void
replicas_tick(const struct store_ops *ops, struct store *st,
    const struct config *cfg)
{
	struct store_replica	 r;
	char			 host[256], err[256], label[64];
	int64_t			 mono = util_mono_ms(), now, beat_ms;

	if (mono < replicas_next_beat)
		return;
	/* A configuration not made by the loader (tests) has no default. */
	beat_ms = (int64_t)(cfg->state.heartbeat_s > 0 ?
	    cfg->state.heartbeat_s : 5) * 1000;
	replicas_next_beat = mono + beat_ms;
	__atomic_store_n(&replicas_timeout_ms, REPLICAS_TIMEOUT_BEATS * beat_ms,
	    __ATOMIC_RELAXED);
	now = util_now_ms();
	if (replicas_started_ms == 0) {
		replicas_started_ms = now;
		metrics_describe("gitopsd_replicas", "gauge",
		    "Replicas alive in the state store (heartbeat within three"
		    " state.heartbeat_s).");
		metrics_describe("gitopsd_role_held", "gauge",
		    "1 while this replica holds the role (periodic: drift,"
		    " polls, retention, alert re-sends).");
		metrics_describe("gitopsd_store_errors_total", "counter",
		    "State store calls that failed, by backend.");
		snprintf(label, sizeof(label), "backend=\"%s\"", ops->name);
		metrics_counter_add("gitopsd_store_errors_total", label, 0);
	}
	if (gethostname(host, sizeof(host)) == -1)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	memset(&r, 0, sizeof(r));
	r.id = replica_id();
	r.hostname = host;
	r.version = GITOPSD_VERSION;
	r.pid = (int64_t)getpid();
	r.started_ms = replicas_started_ms;
	r.heartbeat_ms = now;
	if (ops->replica_beat(st, &r, now - REPLICAS_FORGET_MS, err,
	    sizeof(err)) == -1)
		log_warnx("replicas: heartbeat: %s", err);
	else if (!replicas_registered) {
		replicas_registered = 1;
		if (!ops->shared)
			replicas_forget_others(ops, st);
		log_kv(LOG_LEVEL_INFO, "replica registered", "replica",
		    replica_id(), NULL);
	}
	replicas_hold(ops, st, beat_ms, now, mono);
	replicas_count(ops, st, now);
}

/* Who holds this replica's id in the store. */
struct replicas_own {
	char	 hostname_buf[256];
	int64_t	 pid, heartbeat_ms;
};

/* The row of this replica's id: 1, or 0 without one (-1: an error). */
static int
replicas_find_own(const struct store_ops *ops, struct store *st,
    struct replicas_own *out, char *err, size_t errlen)
{
	struct store_replica_row	*rows;
	size_t				 n, i;
	int				 found = 0;

	if (ops->list_replicas(st, &rows, &n, err, errlen) == -1)
		return -1;
	for (i = 0; i < n && !found; i++)
		if (strcmp(rows[i].id, replica_id()) == 0) {
			snprintf(out->hostname_buf, sizeof(out->hostname_buf),
			    "%s", rows[i].hostname != NULL ?
			    rows[i].hostname : "?");
			out->pid = rows[i].pid;
			out->heartbeat_ms = rows[i].heartbeat_ms;
			found = 1;
		}
	store_replica_rows_free(rows, n);
	return found;
}

int
replicas_claim_id(const struct store_ops *ops, struct store *st,
    const struct config *cfg, char *err, size_t errlen)
{
	struct replicas_own	 row;
	int64_t			 beat_ms, first, deadline;
	int			 r;

	if (cfg->state.replica == NULL)
		return 0;
	/* One process on the store: the row is its predecessor's. */
	if (!ops->shared)
		return ops->replica_leave(st, replica_id(), err, errlen);
	beat_ms = (int64_t)(cfg->state.heartbeat_s > 0 ?
	    cfg->state.heartbeat_s : 5) * 1000;
	memset(&row, 0, sizeof(row));
	if ((r = replicas_find_own(ops, st, &row, err, errlen)) <= 0)
		return r;
	if (util_now_ms() - row.heartbeat_ms >= REPLICAS_TIMEOUT_BEATS *
	    beat_ms)
		goto forget;
	first = row.heartbeat_ms;
	log_kv(LOG_LEVEL_INFO, "replica id has a fresh heartbeat: waiting to"
	    " see whether its process is alive", "replica", replica_id(), NULL);
	/*
	 * Until the row is as old as the other replicas' rule for a gone
	 * one (three missed beats), and half a second more: a live process
	 * whose store thread is busy beats late, and two beats were seen
	 * not to be enough on a loaded machine.  The same bound as the
	 * periodic role's, so an id is never taken from a process the
	 * others still count alive.
	 */
	deadline = util_mono_ms() + 500 + REPLICAS_TIMEOUT_BEATS * beat_ms -
	    (util_now_ms() - row.heartbeat_ms);
	while (util_mono_ms() < deadline) {
		usleep(100 * 1000);
		if ((r = replicas_find_own(ops, st, &row, err, errlen)) <= 0)
			return r;
		if (row.heartbeat_ms != first) {
			snprintf(err, errlen, "replica id %s is in use by a"
			    " running process (host %s, pid %lld, heartbeat"
			    " renewed): give each process its own"
			    " state.replica", replica_id(), row.hostname_buf,
			    (long long)row.pid);
			return -1;
		}
	}
	log_kv(LOG_LEVEL_INFO, "replica id taken over from a process that"
	    " stopped beating", "replica", replica_id(), NULL);
forget:
	/* A beat renews only the heartbeat: the row (host, pid, start) and
	 * the roles of the dead process go, this one registers anew. */
	return ops->replica_leave(st, replica_id(), err, errlen);
}

void
replicas_leave(const struct store_ops *ops, struct store *st)
{
	char	 err[256];

	__atomic_store_n(&replicas_held_until, 0, __ATOMIC_RELEASE);
	if (!replicas_registered)
		return;
	if (ops->replica_leave(st, replica_id(), err, sizeof(err)) == -1)
		log_warnx("replicas: leaving: %s", err);
	replicas_registered = 0;
}
