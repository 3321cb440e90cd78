/*
 * replica.h: this process's replica id, the name it holds leases and
 * periodic work under in a shared store (DESIGN.md section 9).
 */
#ifndef GITOPSD_REPLICA_H
#define GITOPSD_REPLICA_H

/*
 * "hostname-pid-random" unless one was chosen (replica_choose), made once
 * at the first call and the same for the life of the process
 * (thread-safe).  Random as well as host and pid: a restarted container
 * has the same hostname and often the same pid, and must not take the
 * leases of its previous life for its own.  A chosen id is the same
 * across restarts: replicas_claim_id keeps it to one live process.
 */
const char	*replica_id(void);
/*
 * Use id (state.replica, checked by the configuration: 1 to
 * REPLICA_ID_MAX characters of A-Z a-z 0-9 . _ -, starting with a letter
 * or digit) instead; before the first replica_id().  -1 if an id was
 * made already and differs.  NULL keeps the made one.
 */
int		 replica_choose(const char *id);

#define REPLICA_ID_MAX	63

#endif
