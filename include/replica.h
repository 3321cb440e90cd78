/*
 * replica.h: this process's replica id, the name it holds leases and
 * periodic work under in a shared store (DESIGN.md section 9).
 */
#ifndef GITOPSD_REPLICA_H
#define GITOPSD_REPLICA_H

/*
 * "hostname-pid-random", made once at the first call and the same for
 * the life of the process (thread-safe).  Random as well as host and pid:
 * a restarted container has the same hostname and often the same pid,
 * and must not take the leases of its previous life for its own.
 */
const char	*replica_id(void);

#endif
