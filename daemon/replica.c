/*
 * replica.c: this process's replica id (include/replica.h).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "replica.h"
#include "util.h"

static pthread_once_t	 replica_once = PTHREAD_ONCE_INIT;
static char		 replica_buf[128];

static void
replica_make(void)
{
	char		 host[64];
	uint32_t	 r;

	if (gethostname(host, sizeof(host)) == -1)
		snprintf(host, sizeof(host), "gitopsd");
	host[sizeof(host) - 1] = '\0';
	/* Without getrandom the clock still tells two lives apart. */
	if (util_random(&r, sizeof(r)) == -1)
		r = (uint32_t)util_now_ms();
	snprintf(replica_buf, sizeof(replica_buf), "%s-%ld-%08x", host,
	    (long)getpid(), (unsigned)r);
}

const char *
replica_id(void)
{
	pthread_once(&replica_once, replica_make);
	return replica_buf;
}
