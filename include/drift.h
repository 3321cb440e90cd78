/*
 * drift.h: periodic re-sync of apps with sync.interval_s (daemon/drift.c),
 * so manual changes in a cluster are put back, as Argo CD's self-heal does.
 */
#ifndef GITOPSD_DRIFT_H
#define GITOPSD_DRIFT_H

struct event_base;
struct config;
struct queue;
struct drift;

struct drift	*drift_new(struct event_base *, struct queue *, struct config *);
void		 drift_reconfigure(struct drift *, struct config *);
void		 drift_free(struct drift *);

#endif
