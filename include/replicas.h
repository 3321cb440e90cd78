/*
 * replicas.h: this replica's heartbeat in the state store and the roles
 * it holds among the replicas sharing it (daemon/replicas.c, DESIGN.md
 * section 9).
 */
#ifndef GITOPSD_REPLICAS_H
#define GITOPSD_REPLICAS_H

#include <stdint.h>

struct config;
struct store;
struct store_ops;

/* Drift re-syncs, polls and retention: one replica at a time. */
#define REPLICAS_ROLE_PERIODIC	"periodic"

/*
 * Between the store thread's rounds (its connection, outside a
 * transaction): every state.heartbeat_s, register or renew this replica,
 * forget long-gone ones, and take or renew the periodic role.
 */
void	 replicas_tick(const struct store_ops *, struct store *,
	    const struct config *);
/*
 * At start, before the first heartbeat: a chosen id (state.replica) names
 * one running process.  A row with it and a fresh heartbeat is a live
 * process using it, or this process's predecessor killed a moment ago (a
 * restart after a crash): a live one renews it within a heartbeat, a dead
 * one never again.  The row is watched for two heartbeats (one may be
 * late under load); -1 (err) if it was renewed, 0 when the id is free or
 * taken over (the dead process's row and roles deleted: this one
 * registers anew).  Blocks that long; made ids (never reused) and
 * unshared stores return at once.
 */
int	 replicas_claim_id(const struct store_ops *, struct store *,
	    const struct config *, char *err, size_t errlen);
/* A clean stop: the row goes and the roles are free at once. */
void	 replicas_leave(const struct store_ops *, struct store *);
/* Whether this replica runs the periodic work now (any thread). */
int	 replicas_periodic(void);
/* Whether a replica whose last heartbeat was at heartbeat_ms is alive. */
int	 replicas_alive(int64_t heartbeat_ms, int64_t now_ms);

#endif
