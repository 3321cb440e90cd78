/*
 * replica.c: this process's replica id (include/replica.h).  Host name and
 * pid say where to look; the random part keeps two processes apart when a
 * pid is reused (a container restarted with pid 1 on the same host name).
 * A chosen id (state.replica) replaces all three.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "replica.h"
#include "util.h"

static pthread_once_t	 replica_once = PTHREAD_ONCE_INIT;
static char		 replica_buf[128];
static const char	*replica_chosen;

static void
replica_make(void)
{
	char		 host[64];
	unsigned char	 r[4];
	char		 hex[sizeof(r) * 2 + 1];

	if (replica_chosen != NULL) {
		snprintf(replica_buf, sizeof(replica_buf), "%s",
		    replica_chosen);
		return;
	}
	if (gethostname(host, sizeof(host)) == -1 || host[0] == '\0')
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	if (util_random(r, sizeof(r)) != 0)
		memset(r, 0, sizeof(r));
	util_hex(r, sizeof(r), hex);
	snprintf(replica_buf, sizeof(replica_buf), "%s-%ld-%s", host,
	    (long)getpid(), hex);
}

int
replica_choose(const char *id)
{
	if (id == NULL)
		return 0;
	replica_chosen = id;
	pthread_once(&replica_once, replica_make);
	return strcmp(replica_buf, id) == 0 ? 0 : -1;
}

const char *
replica_id(void)
{
	pthread_once(&replica_once, replica_make);
	return replica_buf;
}
