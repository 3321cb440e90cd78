/*
 * drift.h: periodic re-sync of apps with sync.interval_s (daemon/drift.c),
 * so manual changes in a cluster are put back, as Argo CD's self-heal does.
 */
#ifndef GITOPSD_DRIFT_H
#define GITOPSD_DRIFT_H

#include <stdint.h>

struct event_base;
struct config;
struct queue;
struct drift;

struct drift	*drift_new(struct event_base *, struct queue *, struct config *);
void		 drift_reconfigure(struct drift *, struct config *);
void		 drift_free(struct drift *);
/* When an app first falls due after start_ms: its own slot in the
 * interval, from a hash of its name (INT64_MAX when interval_s <= 0). */
int64_t		 drift_first_due_ms(const char *app, int interval_s,
		    int64_t start_ms);

#endif
