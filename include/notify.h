/*
 * notify.h: alert dispatch (notify/dispatch.c) as the queue sees it.
 *
 * When a job reaches a final state (or fails an attempt, for `on: [all]`),
 * the queue asks notify_plan() which notify jobs that makes and inserts
 * them in the same transaction as the state change: an alert is in the
 * durable outbox before any sending starts.  Each planned job carries a
 * dedup key; the store skips a notify job whose key was planned within
 * notify.repeat_after_s (one alert per app, failure reason and revision).
 * The notify jobs themselves run on the event loop (notify_runner in the
 * job runner table), through daemon/http_client.c.
 */
#ifndef GITOPSD_NOTIFY_H
#define GITOPSD_NOTIFY_H

#include <stddef.h>

#include "job.h"

struct config;

struct notify_plan_item {
	struct job_spec	 spec;		/* kind JOB_NOTIFY, app, params (JSON) */
	char		*dedup_key;	/* NULL: never deduplicated */
	int		 repeat_after_s;
	int		 max_attempts;	/* 0: job_max_attempts() */
};

struct notify_plan {
	struct notify_plan_item	*items;
	size_t			 n;
	char			**owned;	/* strings the specs point into */
	size_t			 nowned;
};

/*
 * Plan alerts for job j that ended an attempt with res; final is the state
 * the job is moving to (JOB_SUCCEEDED, JOB_FAILED, JOB_DEAD).
 * app_was_failing: the app's last final outcome was a failure (recovery).
 */
void	notify_plan(const struct config *, const struct job *j,
	    const struct job_result *res, enum job_state final,
	    int app_was_failing, struct notify_plan *out);
/*
 * Plan the sync.started alerts of sync job j, whose attempt starts on
 * revision (the resolved commit): to NOTIFIER_STATUS types and to
 * notifiers with `on: [started]`.
 */
void	notify_plan_started(const struct config *, const struct job *j,
	    const char *revision, struct notify_plan *out);
void	notify_plan_free(struct notify_plan *);

#endif
