/*
 * dispatch.c: which alerts a finished job attempt makes (notify_plan).
 *
 * DESIGN
 * The queue calls notify_plan() inside the transaction that records the
 * attempt, and stores what it returns as notify jobs: the outbox is the
 * job table.  Each planned job carries everything needed to render it
 * later, after a restart, from the store alone (params JSON), and a dedup
 * key built only from what identifies the problem (notifier, app, job
 * kind, error kind, object, revision or image:tag) -- never times,
 * durations or attempt counts -- so one failure makes one alert however
 * often it is retried or repeated within notify.repeat_after_s.
 *
 *   failure   final state dead, or a sync whose result is unhealthy or
 *             timed out (health is final for that sync); on: failure, all
 *   recovery  first success after the app's last final outcome was a
 *             failure (app_was_failing); on: recovery, all; the key holds
 *             the job id: once per streak
 *   result    every other attempt result; on: all; the key holds the job
 *             id and attempt, so only a replay of the same result dedups
 *
 * A notifier type with several endpoints (alertmanager's URLs) gets one
 * job per endpoint, the endpoint's index in the key and the params, so
 * one endpoint down delays nothing at the others.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "notifier.h"
#include "notify.h"
#include "util.h"

#define NOTIFY_REASON_MAX	4000	/* bytes of error text in an alert */

static const struct config_app *
notify_find_app(const struct config *cfg, const char *name)
{
	size_t	 i;

	for (i = 0; name != NULL && i < cfg->napps; i++)
		if (strcmp(cfg->apps[i].name, name) == 0)
			return &cfg->apps[i];
	return NULL;
}

static const struct config_notifier *
notify_find_notifier(const struct config *cfg, const char *name)
{
	size_t	 i;

	for (i = 0; i < cfg->nnotifiers; i++)
		if (strcmp(cfg->notifiers[i].name, name) == 0)
			return &cfg->notifiers[i];
	return NULL;
}

static char *
notify_own(struct notify_plan *p, char *s)
{
	p->owned = xreallocarray(p->owned, p->nowned + 1, sizeof(char *));
	p->owned[p->nowned++] = s;
	return s;
}

/* Append one field of a key; '\n' separates, so escape it in values. */
static void
notify_key_add(struct buf *b, const char *v)
{
	const char	*p;

	for (p = v != NULL ? v : ""; *p != '\0'; p++) {
		if (*p == '\\' || *p == '\n')
			(void)buf_add(b, "\\", 1);
		(void)buf_add(b, p, 1);
	}
	(void)buf_add(b, "\n", 1);
}

static void
notify_json_str(cJSON *o, const char *k, const char *v)
{
	if (v != NULL)
		cJSON_AddStringToObject(o, k, v);
}

/* The revision an alert names: what the sync applied, else asked for. */
static const char *
notify_revision(const struct job *j, const struct job_result *res)
{
	if (res->revision != NULL)
		return res->revision;
	if (res->commit != NULL)
		return res->commit;
	return j->revision;
}

/* The pull request an update-image job opened (detail.pr_url), malloc'd. */
static char *
notify_pr_url(const struct job_result *res)
{
	cJSON		*d;
	const cJSON	*u;
	char		*s = NULL;

	if (res->detail == NULL || (d = cJSON_Parse(res->detail)) == NULL)
		return NULL;
	if (cJSON_IsString(u = cJSON_GetObjectItemCaseSensitive(d, "pr_url")))
		s = xstrdup(u->valuestring);
	cJSON_Delete(d);
	return s;
}

/* The link to the job: <links.base_url>/api/v1/jobs/<id>. */
static char *
notify_link(const struct config *cfg, int64_t id)
{
	size_t	 len;

	if (cfg->links_base_url == NULL || *cfg->links_base_url == '\0')
		return NULL;
	len = strlen(cfg->links_base_url);
	while (len > 0 && cfg->links_base_url[len - 1] == '/')
		len--;
	return xasprintf("%.*s/api/v1/jobs/%" PRId64, (int)len,
	    cfg->links_base_url, id);
}

void
notify_plan(const struct config *cfg, const struct job *j,
    const struct job_result *res, enum job_state final, int app_was_failing,
    struct notify_plan *out)
{
	const struct config_app		*app;
	const struct config_notifier	*n;
	char *const			*names;
	size_t				 nnames, i, t, ntargets;
	const char			*event, *cls, *rev;
	char				*reason = NULL, *link = NULL, *json;
	char				*pr_url = NULL;
	char				 hash[65], alert_id[33], attempt[16];
	char				 idtext[24], target[24];
	unsigned			 on;
	int				 failure;
	int64_t				 now = util_now_ms();
	struct buf			 key;
	struct notify_plan_item		*it;
	cJSON				*o;

	memset(out, 0, sizeof(*out));
	if (j->kind == JOB_NOTIFY)
		return;		/* alerts never make alerts */
	app = notify_find_app(cfg, j->app);
	if (app != NULL && app->nnotify > 0) {
		names = app->notify;
		nnames = app->nnotify;
	} else {
		names = cfg->notify_default;
		nnames = cfg->nnotify_default;
	}
	if (nnames == 0)
		return;

	failure = !res->ok && (final == JOB_DEAD || (j->kind == JOB_SYNC &&
	    (res->err_kind == JOB_ERR_UNHEALTHY ||
	    res->err_kind == JOB_ERR_TIMEOUT)));
	rev = notify_revision(j, res);
	if (res->error != NULL) {
		reason = xstrdup(res->error);
		if (strlen(reason) > NOTIFY_REASON_MAX) {
			size_t m = NOTIFY_REASON_MAX;

			while (m > 0 && ((unsigned char)reason[m] & 0xc0) == 0x80)
				m--;
			reason[m] = '\0';
		}
	}
	link = notify_link(cfg, j->id);
	pr_url = notify_pr_url(res);
	snprintf(attempt, sizeof(attempt), "%d", j->attempts + 1);
	snprintf(idtext, sizeof(idtext), "%" PRId64, j->id);

	for (i = 0; i < nnames; i++) {
		if ((n = notify_find_notifier(cfg, names[i])) == NULL)
			continue;	/* config checks refuse this */
		on = n->on != 0 ? n->on : CONFIG_ON_FAILURE;
		event = cls = NULL;
		if (failure) {
			if (on & (CONFIG_ON_FAILURE | CONFIG_ON_ALL)) {
				event = "job.failed";
				cls = "failure";
			}
		} else if (res->ok && final == JOB_SUCCEEDED && app_was_failing &&
		    (on & (CONFIG_ON_RECOVERY | CONFIG_ON_ALL))) {
			event = "job.recovered";
			cls = "recovery";
		} else if (on & CONFIG_ON_ALL) {
			event = res->ok ? "job.succeeded" : "job.failed";
			cls = "result";
		}
		if (event == NULL)
			continue;

		ntargets = n->plugin != NULL && n->plugin->targets != NULL ?
		    n->plugin->targets(n) : 1;
		for (t = 0; t < ntargets; t++) {
			buf_init(&key, 0);
			notify_key_add(&key, "v1");
			notify_key_add(&key, cls);
			notify_key_add(&key, n->name);
			notify_key_add(&key, j->app);
			if (ntargets > 1) {
				snprintf(target, sizeof(target), "%zu", t);
				notify_key_add(&key, target);
			}
			notify_key_add(&key, job_kind_name(j->kind));
			if (strcmp(cls, "failure") == 0) {
				notify_key_add(&key,
				    job_error_kind_name(res->err_kind));
				notify_key_add(&key, res->object);
				notify_key_add(&key, rev);
				notify_key_add(&key, j->image);
				notify_key_add(&key, j->tag);
			} else {
				notify_key_add(&key, idtext);
				if (strcmp(cls, "result") == 0) {
					notify_key_add(&key, attempt);
					notify_key_add(&key,
					    job_state_name(final));
				}
			}
			util_sha256_hex(key.data, key.len, hash);
			buf_free(&key);
			/* The alert id (stable across retries): half the
			 * key hash. */
			memcpy(alert_id, hash, 32);
			alert_id[32] = '\0';

			o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "notifier", n->name);
			cJSON_AddStringToObject(o, "event", event);
			cJSON_AddStringToObject(o, "alert_id", alert_id);
			notify_json_str(o, "app", j->app);
			notify_json_str(o, "cluster", app != NULL ?
			    app->cluster : NULL);
			if (ntargets > 1)
				cJSON_AddNumberToObject(o, "target", (double)t);
			cJSON_AddNumberToObject(o, "job", (double)j->id);
			cJSON_AddStringToObject(o, "kind",
			    job_kind_name(j->kind));
			cJSON_AddStringToObject(o, "state",
			    job_state_name(final));
			notify_json_str(o, "reason", res->ok ? NULL : reason);
			if (!res->ok)
				cJSON_AddStringToObject(o, "reason_kind",
				    job_error_kind_name(res->err_kind));
			notify_json_str(o, "object", res->object);
			notify_json_str(o, "revision", rev);
			notify_json_str(o, "image", j->image);
			notify_json_str(o, "tag", j->tag);
			notify_json_str(o, "delivery", j->delivery);
			cJSON_AddNumberToObject(o, "attempts",
			    j->attempts + 1);
			notify_json_str(o, "url", link);
			notify_json_str(o, "pr_url", pr_url);
			cJSON_AddNumberToObject(o, "time", (double)now);
			json = cJSON_PrintUnformatted(o);
			cJSON_Delete(o);
			if (json == NULL)
				continue;

			out->items = xreallocarray(out->items, out->n + 1,
			    sizeof(*out->items));
			it = &out->items[out->n++];
			memset(it, 0, sizeof(*it));
			it->spec.kind = JOB_NOTIFY;
			it->spec.app = j->app != NULL ?
			    notify_own(out, xstrdup(j->app)) : NULL;
			it->spec.params = notify_own(out, xstrdup(json));
			cJSON_free(json);
			it->dedup_key = xasprintf("notify:%s", hash);
			/* 0 is "never again" (as long as the key is kept). */
			it->repeat_after_s = cfg->notify.repeat_after_s > 0 ?
			    cfg->notify.repeat_after_s : INT_MAX;
		}
	}
	free(reason);
	free(link);
	free(pr_url);
}

void
notify_plan_free(struct notify_plan *p)
{
	size_t	 i;

	for (i = 0; i < p->n; i++)
		free(p->items[i].dedup_key);
	free(p->items);
	for (i = 0; i < p->nowned; i++)
		free(p->owned[i]);
	free(p->owned);
	memset(p, 0, sizeof(*p));
}
