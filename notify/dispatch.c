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
 *
 * A failed job's alerts carry its failure reason ("incident": job kind
 * and error kind), which names the incident on pagerduty and opsgenie.
 * Their recovery is one alert per reason the outbox still has open
 * (notify_open_feed over the app's notify jobs, read by the queue), so
 * every incident the app opened is resolved, after a restart too.  The
 * same reading gives the re-sends of alerts that expire unless renewed
 * (notify_resend_plan: alertmanager).
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

/* The notifiers an app's alerts go to: its own list, else the default. */
static char *const *
notify_names(const struct config *cfg, const struct config_app *app,
    size_t *n)
{
	if (app != NULL && app->nnotify > 0) {
		*n = app->nnotify;
		return app->notify;
	}
	*n = cfg->nnotify_default;
	return cfg->notify_default;
}

int
notify_wants_open(const struct config *cfg, const char *app, int ok,
    int app_was_failing)
{
	const struct config_notifier	*n;
	char *const			*names;
	size_t				 nnames, i;

	if (!ok)
		return 0;	/* only what resolves needs them */
	names = notify_names(cfg, notify_find_app(cfg, app), &nnames);
	for (i = 0; i < nnames; i++) {
		n = notify_find_notifier(cfg, names[i]);
		if (n != NULL && n->plugin != NULL && n->plugin->per_reason &&
		    (app_was_failing || (n->on & CONFIG_ON_ALL)))
			return 1;
	}
	return 0;
}

/* Both NULL or the same string. */
static int
notify_same(const char *a, const char *b)
{
	return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

/* What one planned alert is made of, besides its notifier and target. */
struct notify_ctx {
	const struct config	*cfg;
	const struct config_app	*app;
	const struct job	*j;
	const struct job_result	*res;
	enum job_state		 final;
	const char		*event, *cls, *rev, *reason, *link, *pr_url;
	char			 attempt[16], idtext[24];
	int64_t			 now;
};

/* The failure reason of an incident: "<job kind>/<error kind>". */
static char *
notify_incident_of(const struct job *j, const struct job_result *res)
{
	return xasprintf("%s/%s", job_kind_name(j->kind),
	    job_error_kind_name(res->err_kind));
}

static void
notify_plan_item(struct notify_plan *out, const struct notify_ctx *c,
    const struct config_notifier *n, size_t t, size_t ntargets,
    const char *incident)
{
	const struct job	*j = c->j;
	const struct job_result	*res = c->res;
	struct notify_plan_item	*it;
	struct buf		 key;
	char			 hash[65], alert_id[33], target[24], *json;
	cJSON			*o;

	buf_init(&key, 0);
	notify_key_add(&key, "v1");
	notify_key_add(&key, c->cls);
	notify_key_add(&key, n->name);
	notify_key_add(&key, j->app);
	if (ntargets > 1) {
		snprintf(target, sizeof(target), "%zu", t);
		notify_key_add(&key, target);
	}
	notify_key_add(&key, job_kind_name(j->kind));
	if (strcmp(c->cls, "failure") == 0) {
		notify_key_add(&key, job_error_kind_name(res->err_kind));
		notify_key_add(&key, res->object);
		notify_key_add(&key, c->rev);
		notify_key_add(&key, j->image);
		notify_key_add(&key, j->tag);
	} else {
		notify_key_add(&key, c->idtext);
		if (strcmp(c->cls, "result") == 0) {
			notify_key_add(&key, c->attempt);
			notify_key_add(&key, job_state_name(c->final));
		}
		if (incident != NULL)
			notify_key_add(&key, incident);	/* one per reason */
	}
	util_sha256_hex(key.data, key.len, hash);
	buf_free(&key);
	/* The alert id (stable across retries): half the key hash. */
	memcpy(alert_id, hash, 32);
	alert_id[32] = '\0';

	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "notifier", n->name);
	cJSON_AddStringToObject(o, "event", c->event);
	cJSON_AddStringToObject(o, "alert_id", alert_id);
	notify_json_str(o, "app", j->app);
	notify_json_str(o, "cluster", c->app != NULL ? c->app->cluster : NULL);
	if (ntargets > 1)
		cJSON_AddNumberToObject(o, "target", (double)t);
	cJSON_AddNumberToObject(o, "job", (double)j->id);
	cJSON_AddStringToObject(o, "kind", job_kind_name(j->kind));
	cJSON_AddStringToObject(o, "state", job_state_name(c->final));
	notify_json_str(o, "reason", res->ok ? NULL : c->reason);
	if (!res->ok)
		cJSON_AddStringToObject(o, "reason_kind",
		    job_error_kind_name(res->err_kind));
	notify_json_str(o, "incident", incident);
	notify_json_str(o, "object", res->object);
	notify_json_str(o, "revision", c->rev);
	notify_json_str(o, "image", j->image);
	notify_json_str(o, "tag", j->tag);
	notify_json_str(o, "delivery", j->delivery);
	cJSON_AddNumberToObject(o, "attempts", j->attempts + 1);
	notify_json_str(o, "url", c->link);
	notify_json_str(o, "pr_url", c->pr_url);
	cJSON_AddNumberToObject(o, "time", (double)c->now);
	json = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (json == NULL)
		return;

	out->items = xreallocarray(out->items, out->n + 1, sizeof(*out->items));
	it = &out->items[out->n++];
	memset(it, 0, sizeof(*it));
	it->spec.kind = JOB_NOTIFY;
	it->spec.app = j->app != NULL ? notify_own(out, xstrdup(j->app)) : NULL;
	it->spec.params = notify_own(out, xstrdup(json));
	cJSON_free(json);
	it->dedup_key = xasprintf("notify:%s", hash);
	/* 0 is "never again" (as long as the key is kept). */
	it->repeat_after_s = c->cfg->notify.repeat_after_s > 0 ?
	    c->cfg->notify.repeat_after_s : INT_MAX;
}

/*
 * A recovery (or with on: [all], any success) on a notifier with an
 * incident per reason: one resolve for each reason the outbox has open
 * there; none known (opened before
 * reasons were kept, or the rows are gone): one without a reason, which
 * resolves what an older gitopsd opened.
 */
static void
notify_plan_resolves(struct notify_plan *out, const struct notify_ctx *c,
    const struct config_notifier *n, const struct notify_open_set *open)
{
	size_t	 i, k, planned = 0;
	int	 seen;

	for (i = 0; open != NULL && i < open->n; i++) {
		if (strcmp(open->v[i].notifier, n->name) != 0)
			continue;
		for (k = 0, seen = 0; k < i; k++)
			seen |= strcmp(open->v[k].notifier, n->name) == 0 &&
			    notify_same(open->v[k].incident,
			    open->v[i].incident);
		if (seen)
			continue;
		notify_plan_item(out, c, n, 0, 1, open->v[i].incident);
		planned++;
	}
	if (planned == 0)
		notify_plan_item(out, c, n, 0, 1, NULL);
}

void
notify_plan(const struct config *cfg, const struct job *j,
    const struct job_result *res, enum job_state final, int app_was_failing,
    const struct notify_open_set *open, struct notify_plan *out)
{
	const struct config_notifier	*n;
	char *const			*names;
	size_t				 nnames, i, t, ntargets;
	char				*reason = NULL, *link = NULL;
	char				*pr_url = NULL, *incident = NULL;
	unsigned			 on;
	int				 failure;
	struct notify_ctx		 c;

	memset(out, 0, sizeof(*out));
	memset(&c, 0, sizeof(c));
	if (j->kind == JOB_NOTIFY)
		return;		/* alerts never make alerts */
	c.cfg = cfg;
	c.j = j;
	c.res = res;
	c.final = final;
	c.now = util_now_ms();
	c.app = notify_find_app(cfg, j->app);
	names = notify_names(cfg, c.app, &nnames);
	if (nnames == 0)
		return;

	failure = !res->ok && (final == JOB_DEAD || (j->kind == JOB_SYNC &&
	    (res->err_kind == JOB_ERR_UNHEALTHY ||
	    res->err_kind == JOB_ERR_TIMEOUT)));
	c.rev = notify_revision(j, res);
	if (res->error != NULL) {
		reason = xstrdup(res->error);
		if (strlen(reason) > NOTIFY_REASON_MAX) {
			size_t m = NOTIFY_REASON_MAX;

			while (m > 0 && ((unsigned char)reason[m] & 0xc0) == 0x80)
				m--;
			reason[m] = '\0';
		}
	}
	c.reason = reason;
	c.link = link = notify_link(cfg, j->id);
	c.pr_url = pr_url = notify_pr_url(res);
	if (!res->ok)
		incident = notify_incident_of(j, res);
	snprintf(c.attempt, sizeof(c.attempt), "%d", j->attempts + 1);
	snprintf(c.idtext, sizeof(c.idtext), "%" PRId64, j->id);

	for (i = 0; i < nnames; i++) {
		if ((n = notify_find_notifier(cfg, names[i])) == NULL)
			continue;	/* config checks refuse this */
		on = n->on != 0 ? n->on : CONFIG_ON_FAILURE;
		c.event = c.cls = NULL;
		if (failure) {
			if (on & (CONFIG_ON_FAILURE | CONFIG_ON_ALL)) {
				c.event = "job.failed";
				c.cls = "failure";
			}
		} else if (res->ok && final == JOB_SUCCEEDED && app_was_failing &&
		    (on & (CONFIG_ON_RECOVERY | CONFIG_ON_ALL))) {
			c.event = "job.recovered";
			c.cls = "recovery";
		} else if (on & CONFIG_ON_ALL) {
			c.event = res->ok ? "job.succeeded" : "job.failed";
			c.cls = "result";
		}
		if (c.event == NULL)
			continue;
		/* Every alert but a failure resolves (notifier.h). */
		if (res->ok && n->plugin != NULL && n->plugin->per_reason) {
			notify_plan_resolves(out, &c, n, open);
			continue;
		}
		ntargets = n->plugin != NULL && n->plugin->targets != NULL ?
		    n->plugin->targets(n) : 1;
		for (t = 0; t < ntargets; t++)
			notify_plan_item(out, &c, n, t, ntargets, incident);
	}
	free(reason);
	free(link);
	free(pr_url);
	free(incident);
}

static const char *
notify_open_str(const cJSON *o, const char *k)
{
	const cJSON	*v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

void
notify_open_feed(struct notify_open_set *s, const char *params)
{
	cJSON		*p;
	const cJSON	*tv;
	const char	*name, *event, *incident;
	char		*pair;
	int		 target;
	size_t		 i;

	if (params == NULL || (p = cJSON_Parse(params)) == NULL)
		return;
	name = notify_open_str(p, "notifier");
	event = notify_open_str(p, "event");
	incident = notify_open_str(p, "incident");
	tv = cJSON_GetObjectItemCaseSensitive(p, "target");
	target = cJSON_IsNumber(tv) ? tv->valueint : 0;
	if (name == NULL)
		goto out;
	pair = xasprintf("%s\n%d", name, target);
	for (i = 0; i < s->nclosed; i++)
		if (strcmp(s->closed[i], pair) == 0)
			break;
	if (i < s->nclosed) {
		free(pair);	/* older than its last resolve */
		goto out;
	}
	/* Newest first: every alert but a failure resolves (notifier.h). */
	if (event != NULL && strcmp(event, "job.failed") != 0) {
		s->closed = xreallocarray(s->closed, s->nclosed + 1,
		    sizeof(*s->closed));
		s->closed[s->nclosed++] = pair;
		goto out;
	}
	free(pair);
	for (i = 0; i < s->n; i++)
		if (strcmp(s->v[i].notifier, name) == 0 &&
		    s->v[i].target == target &&
		    notify_same(s->v[i].incident, incident))
			goto out;	/* a newer one of that reason is kept */
	s->v = xreallocarray(s->v, s->n + 1, sizeof(*s->v));
	s->v[s->n].notifier = xstrdup(name);
	s->v[s->n].target = target;
	s->v[s->n].incident = incident != NULL ? xstrdup(incident) : NULL;
	s->v[s->n].params = xstrdup(params);
	s->n++;
out:
	cJSON_Delete(p);
}

void
notify_open_free(struct notify_open_set *s)
{
	size_t	 i;

	for (i = 0; i < s->n; i++) {
		free(s->v[i].notifier);
		free(s->v[i].incident);
		free(s->v[i].params);
	}
	free(s->v);
	for (i = 0; i < s->nclosed; i++)
		free(s->closed[i]);
	free(s->closed);
	memset(s, 0, sizeof(*s));
}

int64_t
notify_resend_every_ms(const struct config *cfg)
{
	const struct config_notifier	*n;
	int64_t				 every = 0, s;
	size_t				 i;

	for (i = 0; i < cfg->nnotifiers; i++) {
		n = &cfg->notifiers[i];
		if (n->plugin == NULL || n->plugin->resend_s == NULL ||
		    (s = (int64_t)n->plugin->resend_s(n) * 1000) <= 0)
			continue;
		if (every == 0 || s < every)
			every = s;
	}
	return every;
}

void
notify_resend_plan(const struct config *cfg, const char *app,
    const struct notify_open_set *open, struct notify_plan *out)
{
	const struct config_notifier	*n;
	struct notify_plan_item		*it;
	struct buf			 key;
	char				 hash[65], target[24], *json;
	size_t				 i, k;
	int				 every, seen;
	cJSON				*p;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < open->n; i++) {
		n = notify_find_notifier(cfg, open->v[i].notifier);
		if (n == NULL || n->plugin == NULL ||
		    n->plugin->resend_s == NULL ||
		    (every = n->plugin->resend_s(n)) <= 0)
			continue;
		/* The newest failure of the notifier and target only. */
		for (k = 0, seen = 0; k < i; k++)
			seen |= strcmp(open->v[k].notifier, n->name) == 0 &&
			    open->v[k].target == open->v[i].target;
		if (seen || (p = cJSON_Parse(open->v[i].params)) == NULL)
			continue;
		cJSON_DeleteItemFromObjectCaseSensitive(p, "resend");
		cJSON_AddTrueToObject(p, "resend");
		json = cJSON_PrintUnformatted(p);
		cJSON_Delete(p);
		if (json == NULL)
			continue;
		buf_init(&key, 0);
		notify_key_add(&key, "v1");
		notify_key_add(&key, "resend");
		notify_key_add(&key, n->name);
		notify_key_add(&key, app);
		snprintf(target, sizeof(target), "%d", open->v[i].target);
		notify_key_add(&key, target);
		util_sha256_hex(key.data, key.len, hash);
		buf_free(&key);

		out->items = xreallocarray(out->items, out->n + 1,
		    sizeof(*out->items));
		it = &out->items[out->n++];
		memset(it, 0, sizeof(*it));
		it->spec.kind = JOB_NOTIFY;
		it->spec.app = notify_own(out, xstrdup(app));
		it->spec.params = notify_own(out, xstrdup(json));
		cJSON_free(json);
		it->dedup_key = xasprintf("notify:%s", hash);
		/*
		 * The pass that finds it due comes every interval too; a
		 * window a second short of it keeps the two from missing
		 * each other by a tick.
		 */
		it->repeat_after_s = every > 1 ? every - 1 : every;
	}
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
