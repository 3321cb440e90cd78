/*
 * replica.h: this process's name among the replicas sharing one store
 * (daemon/replica.c).
 */
#ifndef GITOPSD_REPLICA_H
#define GITOPSD_REPLICA_H

/*
 * "hostname-pid-random", made once at the first call and the same for the
 * life of the process; a restarted process is a new replica.
 */
const char	*replica_id(void);

#endif
