/*
 * job.h: the job model shared by the router, the queue, the workers and the
 * job runners (DESIGN.md section 7).
 *
 * A struct job_spec is a job to create (from an event, or as a follow-up of
 * another job).  A struct job is a claimed job handed to a runner.  Runners
 * are a table (job_runner_find): update-image and sync run on worker
 * threads with run(); notify runs on the event loop with start(), because
 * notifications go through the loop's libcurl multi handle.
 */
#ifndef GITOPSD_JOB_H
#define GITOPSD_JOB_H

#include <stddef.h>
#include <stdint.h>

struct config;
struct event_base;

enum job_kind {
	JOB_SYNC = 1,
	JOB_UPDATE_IMAGE,
	JOB_NOTIFY,
};

enum job_state {
	JOB_QUEUED = 1,
	JOB_RUNNING,
	JOB_SUCCEEDED,
	JOB_FAILED,		/* will retry at not_before */
	JOB_DEAD,		/* gave up; alert sent */
	/*
	 * Applied, workloads still rolling out: health is looked at again at
	 * not_before, on a worker but without holding one meanwhile.  Still
	 * the app's running job for exclusivity; not an attempt.  Last, so
	 * the stored numbers of the others stay what they were.
	 */
	JOB_WAITING,
};
#define JOB_STATE_MAX	(JOB_WAITING + 1)

const char	*job_kind_name(enum job_kind);
int		 job_kind_parse(const char *, enum job_kind *);
const char	*job_state_name(enum job_state);
int		 job_state_parse(const char *, enum job_state *);

/* A job to create.  Strings are borrowed by whoever submits it. */
struct job_spec {
	enum job_kind	 kind;
	const char	*app;
	const char	*repo;		/* repo name (config) */
	const char	*revision;	/* sync: commit to apply; NULL = branch head */
	const char	*image;		/* update-image: normalized repository */
	const char	*tag;
	const char	*digest;
	const char	*params;	/* JSON object text with kind-specific extras, or NULL */
};

/* A claimed job.  Strings owned by the job (job_free). */
struct job {
	int64_t		 id;
	enum job_kind	 kind;
	enum job_state	 state;
	char		*app;
	char		*repo;
	char		*revision;
	char		*image;
	char		*tag;
	char		*digest;
	char		*params;
	char		*source;	/* the event's source name */
	char		*delivery;	/* the event's delivery id */
	int64_t		 event_id;
	int		 attempts;	/* attempts made before this one */
	int		 max_attempts;	/* as stored: a manual retry adds some */
	int64_t		 created_ms;
	/*
	 * This claim's token (store.h: claim): the job's claims counter as
	 * this claim left it.  Recording the attempt and renewing its lease
	 * present it, so a run whose lease ended is refused even when the
	 * same replica claimed the job again since.
	 */
	int64_t		 claim;
	/* sync: the app's stored inventory (JSON text, see sync.h) as of
	 * the claim, or NULL when it has none. */
	char		*inventory;
	/*
	 * A claimed waiting job: what its last look left to check (the
	 * result's "wait" member, include/sync.h) and when its attempt
	 * started (the apply).  NULL and 0 for a fresh run.
	 */
	char		*wait;
	int64_t		 started_ms;
	/* Other queued jobs merged into this run (two update-image jobs for
	 * one repository make one commit). */
	struct job	**merged;
	size_t		 nmerged;
};

/*
 * Structured failure reasons (sync issue item 6); the notifier renders them.
 */
enum job_error_kind {
	JOB_ERR_NONE = 0,
	JOB_ERR_CONFIG,		/* app/repo/cluster no longer configured */
	JOB_ERR_GIT,		/* fetch/clone/push failed */
	JOB_ERR_GIT_AUTH,
	JOB_ERR_MANIFEST,	/* a file does not parse */
	JOB_ERR_REGISTRY,	/* tag verification failed */
	JOB_ERR_APPLY_REJECTED,
	JOB_ERR_UNREACHABLE,
	JOB_ERR_UNAUTHORIZED,
	JOB_ERR_UNHEALTHY,
	JOB_ERR_TIMEOUT,
	JOB_ERR_NOTIFY,
	JOB_ERR_INTERNAL,
	JOB_ERR_INTERRUPTED,	/* its runner stopped during the attempt */
};

const char	*job_error_kind_name(enum job_error_kind);

struct job_result {
	int		 ok;		/* 1 succeeded */
	int		 permanent;	/* failure that retrying cannot fix: dead at once */
	/*
	 * The attempt did not end: its runner stopped (its lease was taken
	 * over).  Not the job's fault: it runs again at once while attempts
	 * are left, with no backoff.
	 */
	int		 interrupted;
	enum job_error_kind err_kind;
	char		*error;		/* human text (malloc'd) */
	char		*object;	/* the object concerned ("Deployment web/web") */
	char		*detail;	/* JSON text: structured result, what was done */
	char		*commit;	/* update-image: commit pushed (or NULL) */
	char		*revision;	/* sync: revision applied */
	int		 retry_after_s;	/* >0: not before this (429 Retry-After) */
	/* sync: the app's new inventory (JSON text), stored with the
	 * attempt's outcome; NULL keeps the stored one. */
	char		*inventory;
	/*
	 * Not done yet (ok 0, no error): the job waits, and the runner looks
	 * again after wait_ms with what wait (JSON text) says to check.
	 */
	char		*wait;
	int		 wait_ms;
	/* Jobs to create when this one succeeds (sync after a push). */
	struct job_spec	*followups;
	size_t		 nfollowups;
	char		**owned;	/* strings the followups point into */
	size_t		 nowned;
};

void	job_free(struct job *);
void	job_result_clear(struct job_result *);
void	job_result_fail(struct job_result *, enum job_error_kind, int permanent,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Append a follow-up job; strings are copied. */
void	job_result_add_followup(struct job_result *, const struct job_spec *);

/*
 * The rules that advance a job (DESIGN.md section 7, daemon/queue.c's
 * DESIGN): what one finished attempt of j does to it, from the config,
 * the job as claimed and the attempt's result alone; no store, no clock,
 * no randomness (jitter, in [0, 1), draws the backoff).  head: j leads
 * its run (merged jobs share the head's result; follow-ups are the
 * run's, inserted once).  The queue stores it (store.h: finish) with
 * what it implies.
 */
struct job_advance {
	enum job_state	 state;		/* SUCCEEDED, FAILED (retried at
					 * not_before), DEAD, WAITING or
					 * QUEUED (interrupted, run again
					 * at once) */
	int		 attempts;	/* made, this one included (WAITING:
					 * unchanged, the attempt goes on) */
	int64_t		 not_before_ms;	/* FAILED: next attempt; WAITING:
					 * next look at health */
	int64_t		 started_ms;	/* the attempt's start (a waiting
					 * job's: its apply) */
	const char	*error;		/* failed or dead: res's (borrowed) */
	int		 followups;	/* insert res->followups */
	/* An attempt ended (not WAITING): its attempts row, the app's
	 * status and the alerts notify_plan() makes for state. */
	int		 ended;
	/* The app's final outcome (job_outcome_final). */
	int		 final;
};

/* Longest and shortest pause before a waiting job is looked at again. */
#define JOB_WAIT_MIN_MS		10
#define JOB_WAIT_MAX_MS		60000

void	job_advance(const struct config *, const struct job *j,
	    const struct job_result *res, int head, int64_t started_ms,
	    int64_t ended_ms, double jitter, struct job_advance *out);
/*
 * Backoff before attempt attempts + 1: full jitter (jitter * cap) under
 * a cap doubling from base_s up to max_s; a Retry-After is honoured up
 * to max_s.
 */
int64_t	job_backoff_ms(int base_s, int max_s, int attempts, int retry_after_s,
	    double jitter);
/* The kind's attempts before dead (the config's; a job's stored one wins). */
int	job_max_attempts(const struct config *, enum job_kind);
/*
 * Whether state is the app's final outcome.  A retry is not, and neither
 * is a success whose follow-ups (the sync after an image update) still
 * decide whether the change works: an app whose rollout failed has not
 * recovered when the next commit is pushed, only when it is healthy.
 */
int	job_outcome_final(const struct job_result *, enum job_state);

/* Called on the loop when a loop runner finishes. */
typedef void job_done_cb(struct job *, struct job_result *, void *arg);

struct job_runner {
	enum job_kind	 kind;
	/* Worker thread: cfg is a referenced snapshot valid for the call. */
	void		(*run)(const struct config *cfg, struct job *,
			    struct job_result *);
	/* Event loop: must call done exactly once, possibly later. */
	void		(*start)(const struct config *cfg, struct event_base *,
			    struct job *, job_done_cb *done, void *arg);
	/* Optional, once at start: declares the runner's metrics so a
	 * scrape shows them before the first job of the kind. */
	void		(*init)(void);
};

const struct job_runner	*job_runner_find(enum job_kind);

/*
 * Called on the worker when a sync attempt starts applying revision (the
 * commit resolved after the fetch), before it applies anything.  Set
 * once, before workers start (main: queue_sync_started).
 */
typedef void job_sync_started_fn(const struct config *, const struct job *,
	    const char *revision, void *arg);
void			 job_sync_on_start(job_sync_started_fn *, void *arg);
/* Calls every runner's init. */
void			 job_runners_init(void);

#endif
