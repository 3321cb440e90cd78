/*
 * job.c: job kinds and states, results, and the table of job runners.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "job.h"
#include "util.h"

static const char *const job_kind_names[] = {
	[JOB_SYNC] = "sync",
	[JOB_UPDATE_IMAGE] = "update-image",
	[JOB_NOTIFY] = "notify",
};

static const char *const job_state_names[] = {
	[JOB_QUEUED] = "queued",
	[JOB_RUNNING] = "running",
	[JOB_SUCCEEDED] = "succeeded",
	[JOB_FAILED] = "failed",
	[JOB_DEAD] = "dead",
	[JOB_WAITING] = "waiting",
};

static const char *const job_error_kind_names[] = {
	[JOB_ERR_NONE] = "none",
	[JOB_ERR_CONFIG] = "config",
	[JOB_ERR_GIT] = "git",
	[JOB_ERR_GIT_AUTH] = "git-auth",
	[JOB_ERR_MANIFEST] = "manifest",
	[JOB_ERR_REGISTRY] = "registry",
	[JOB_ERR_APPLY_REJECTED] = "apply-rejected",
	[JOB_ERR_UNREACHABLE] = "unreachable",
	[JOB_ERR_UNAUTHORIZED] = "unauthorized",
	[JOB_ERR_UNHEALTHY] = "unhealthy",
	[JOB_ERR_TIMEOUT] = "timeout",
	[JOB_ERR_NOTIFY] = "notify",
	[JOB_ERR_INTERNAL] = "internal",
	[JOB_ERR_INTERRUPTED] = "interrupted",
};

extern const struct job_runner job_runner_notify;

/* Runners live in their own modules; adding a job kind is one row here. */
extern const struct job_runner job_runner_sync;
extern const struct job_runner job_runner_update_image;

static const struct job_runner *const job_runner_table[] = {
	&job_runner_sync,
	&job_runner_update_image,
	&job_runner_notify,
	NULL
};

const char *
job_kind_name(enum job_kind k)
{
	if ((size_t)k < nitems(job_kind_names) && job_kind_names[k] != NULL)
		return job_kind_names[k];
	return "unknown";
}

int
job_kind_parse(const char *s, enum job_kind *out)
{
	size_t	 i;

	for (i = 0; i < nitems(job_kind_names); i++) {
		if (job_kind_names[i] != NULL && strcmp(s, job_kind_names[i]) == 0) {
			*out = (enum job_kind)i;
			return 0;
		}
	}
	return -1;
}

const char *
job_state_name(enum job_state s)
{
	if ((size_t)s < nitems(job_state_names) && job_state_names[s] != NULL)
		return job_state_names[s];
	return "unknown";
}

int
job_state_parse(const char *s, enum job_state *out)
{
	size_t	 i;

	for (i = 0; i < nitems(job_state_names); i++) {
		if (job_state_names[i] != NULL && strcmp(s, job_state_names[i]) == 0) {
			*out = (enum job_state)i;
			return 0;
		}
	}
	return -1;
}

const char *
job_error_kind_name(enum job_error_kind k)
{
	if ((size_t)k < nitems(job_error_kind_names))
		return job_error_kind_names[k];
	return "unknown";
}

const struct job_runner *
job_runner_find(enum job_kind kind)
{
	size_t	 i;

	for (i = 0; job_runner_table[i] != NULL; i++)
		if (job_runner_table[i]->kind == kind)
			return job_runner_table[i];
	return NULL;
}

void
job_runners_init(void)
{
	size_t	 i;

	for (i = 0; job_runner_table[i] != NULL; i++)
		if (job_runner_table[i]->init != NULL)
			job_runner_table[i]->init();
}

void
job_free(struct job *j)
{
	size_t	 i;

	if (j == NULL)
		return;
	free(j->app);
	free(j->repo);
	free(j->revision);
	free(j->image);
	free(j->tag);
	free(j->digest);
	free(j->params);
	free(j->source);
	free(j->delivery);
	free(j->inventory);
	free(j->wait);
	for (i = 0; i < j->nmerged; i++)
		job_free(j->merged[i]);
	free(j->merged);
	free(j);
}

void
job_result_clear(struct job_result *r)
{
	size_t	 i;

	free(r->error);
	free(r->object);
	free(r->detail);
	free(r->commit);
	free(r->revision);
	free(r->inventory);
	free(r->wait);
	free(r->followups);
	for (i = 0; i < r->nowned; i++)
		free(r->owned[i]);
	free(r->owned);
	memset(r, 0, sizeof(*r));
}

void
job_result_fail(struct job_result *r, enum job_error_kind kind, int permanent,
    const char *fmt, ...)
{
	va_list	 ap;

	r->ok = 0;
	r->err_kind = kind;
	r->permanent = permanent;
	free(r->error);
	va_start(ap, fmt);
	r->error = xvasprintf(fmt, ap);
	va_end(ap);
}

static const char *
job_result_own(struct job_result *r, const char *s)
{
	if (s == NULL)
		return NULL;
	r->owned = xreallocarray(r->owned, r->nowned + 1, sizeof(char *));
	r->owned[r->nowned] = xstrdup(s);
	return r->owned[r->nowned++];
}

void
job_result_add_followup(struct job_result *r, const struct job_spec *spec)
{
	struct job_spec	*f;

	r->followups = xreallocarray(r->followups, r->nfollowups + 1,
	    sizeof(*r->followups));
	f = &r->followups[r->nfollowups++];
	f->kind = spec->kind;
	f->app = job_result_own(r, spec->app);
	f->repo = job_result_own(r, spec->repo);
	f->revision = job_result_own(r, spec->revision);
	f->image = job_result_own(r, spec->image);
	f->tag = job_result_own(r, spec->tag);
	f->digest = job_result_own(r, spec->digest);
	f->params = job_result_own(r, spec->params);
}

int64_t
job_backoff_ms(int base_s, int max_s, int attempts, int retry_after_s,
    double jitter)
{
	double	 cap, d;

	if (base_s < 1)
		base_s = 1;
	if (max_s < base_s)
		max_s = base_s;
	if (attempts < 1)
		attempts = 1;
	cap = (double)base_s * pow(2.0, (double)(attempts > 40 ? 40 :
	    attempts - 1));
	if (cap > (double)max_s)
		cap = (double)max_s;
	d = jitter * cap * 1000.0;
	/*
	 * A receiver's Retry-After is honoured only up to max_s: a sink (or
	 * an API) asking for a day would otherwise hold an alert or a sync
	 * back that long, past every bound the operator configured.
	 */
	if (retry_after_s > max_s)
		retry_after_s = max_s;
	if (retry_after_s > 0 && d < (double)retry_after_s * 1000.0)
		d = (double)retry_after_s * 1000.0;
	return (int64_t)d;
}

int
job_max_attempts(const struct config *cfg, enum job_kind kind)
{
	return kind == JOB_NOTIFY ? cfg->notify.max_attempts :
	    cfg->retry.max_attempts;
}

int
job_outcome_final(const struct job_result *res, enum job_state state)
{
	/* Retried, or interrupted and run again: not an outcome. */
	if (state == JOB_FAILED || state == JOB_QUEUED)
		return 0;
	return !(state == JOB_SUCCEEDED && res->nfollowups > 0);
}

void
job_advance(const struct config *cfg, const struct job *j,
    const struct job_result *res, int head, int64_t started_ms,
    int64_t ended_ms, double jitter, struct job_advance *out)
{
	int64_t	 delay;
	int	 max;

	memset(out, 0, sizeof(*out));
	/*
	 * A waiting job's attempt began with its apply, before the health
	 * checks that followed (the store kept when).
	 */
	out->started_ms = started_ms;
	if (j->wait != NULL && j->started_ms > 0 && j->started_ms < started_ms)
		out->started_ms = j->started_ms;
	/* Applied, not healthy yet: not an attempt's end. */
	if (!res->ok && res->wait != NULL) {
		delay = res->wait_ms;
		if (delay < JOB_WAIT_MIN_MS)
			delay = JOB_WAIT_MIN_MS;
		if (delay > JOB_WAIT_MAX_MS)
			delay = JOB_WAIT_MAX_MS;
		out->state = JOB_WAITING;
		out->attempts = j->attempts;
		out->not_before_ms = ended_ms + delay;
		return;
	}
	out->ended = 1;
	out->attempts = j->attempts + 1;
	max = j->max_attempts > 0 ? j->max_attempts :
	    job_max_attempts(cfg, j->kind);
	if (res->ok)
		out->state = JOB_SUCCEEDED;
	else if (res->permanent || out->attempts >= max)
		out->state = JOB_DEAD;
	else if (res->interrupted)
		out->state = JOB_QUEUED;
	else
		out->state = JOB_FAILED;
	if (!res->ok)
		out->error = res->error != NULL ? res->error : "failed";
	if (out->state == JOB_FAILED)
		out->not_before_ms = ended_ms + job_backoff_ms(cfg->retry.base_s,
		    cfg->retry.max_s, out->attempts, res->retry_after_s, jitter);
	/* A merged run's follow-ups belong to the run: inserted once. */
	out->followups = out->state == JOB_SUCCEEDED && head &&
	    res->nfollowups > 0;
	out->final = job_outcome_final(res, out->state);
}
