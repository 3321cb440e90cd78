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
#include <stdint.h>

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
 * The incidents an app has open, as its outbox says: fed its notify jobs'
 * params newest first, it keeps per notifier and target every failure
 * reason alerted since the last alert that resolved (a recovery), with
 * the newest failure alert of each.  Read by the recovery (one resolve
 * per reason) and by re-sends (notify_resend_plan).
 */
struct notify_open {
	char	*notifier;
	int	 target;
	char	*incident;	/* NULL: planned without a reason */
	char	*params;	/* the newest failure alert of that reason */
};

struct notify_open_set {
	struct notify_open	*v;
	size_t			 n;
	char			**closed;	/* "notifier\ntarget" resolved */
	size_t			 nclosed;
};

void	notify_open_feed(struct notify_open_set *, const char *params);
void	notify_open_free(struct notify_open_set *);

/*
 * Plan alerts for job j that ended an attempt with res; final is the state
 * the job is moving to (JOB_SUCCEEDED, JOB_FAILED, JOB_DEAD).
 * app_was_failing: the app's last final outcome was a failure (recovery);
 * open: the app's open incidents then (NULL: none known).
 */
void	notify_plan(const struct config *, const struct job *j,
	    const struct job_result *res, enum job_state final,
	    int app_was_failing, const struct notify_open_set *open,
	    struct notify_plan *out);
/*
 * Whether notify_plan() for a job of app that ended ok or not, the app
 * failing before or not, resolves incidents per reason, so needs the
 * app's open ones (a scan of its notify jobs).
 */
int	notify_wants_open(const struct config *, const char *app, int ok,
	    int app_was_failing);
/*
 * Re-sends of app's open failures on notifiers with a resend interval
 * (alertmanager), newest failure per notifier and target; each dedup key
 * lets one through per interval.  The caller knows the app is failing.
 */
void	notify_resend_plan(const struct config *, const char *app,
	    const struct notify_open_set *, struct notify_plan *out);
/* The shortest resend interval of any notifier in ms; 0: none. */
int64_t	notify_resend_every_ms(const struct config *);
/* Whether one of app's notifiers has a resend interval: only then is its
 * status worth reading for a re-send pass. */
int	notify_app_resends(const struct config *, const char *app);
/*
 * Plan the sync.started alerts of sync job j, whose attempt starts on
 * revision (the resolved commit): to NOTIFIER_STATUS types and to
 * notifiers with `on: [started]`.
 */
void	notify_plan_started(const struct config *, const struct job *j,
	    const char *revision, struct notify_plan *out);
void	notify_plan_free(struct notify_plan *);

#endif
