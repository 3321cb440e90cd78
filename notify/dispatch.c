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
 *   started   a sync attempt began, on its resolved commit
 *             (notify_plan_started, from the sync's worker); on:
 *             started only (all does not include it)
 *
 * A NOTIFIER_STATUS type (commit-status) ignores `on`: it gets the
 * started event and every result of syncs only, keyed like results, so a
 * success after a success on another commit is sent too.  Its pending
 * status has one attempt: retried late it would overwrite the result.
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
#include "pr.h"
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

/*
 * A link to the job under links.base_url (or admin.public_url): where "/api/v1/jobs/" (the API)
 * or "/#/jobs/" (the status page), then the id.
 */
static char *
notify_link(const struct config *cfg, const char *where, int64_t id)
{
	const char	*base = config_links_base(cfg);
	size_t		 len;

	if (base == NULL)
		return NULL;
	len = strlen(base);
	while (len > 0 && base[len - 1] == '/')
		len--;
	return xasprintf("%.*s%s%" PRId64, (int)len, base, where, id);
}

/* 1 when s is a full commit id (SHA-1 or SHA-256): what a status is on. */
static int
notify_is_commit(const char *s)
{
	size_t	 n = s != NULL ? strspn(s, "0123456789abcdef") : 0;

	return s != NULL && s[n] == '\0' && (n == 40 || n == 64);
}

/* What every alert of one job attempt shares. */
struct notify_src {
	const struct config	*cfg;
	const struct config_app	*app;
	const struct job	*j;
	const struct job_result	*res;		/* NULL: sync.started */
	const char		*state;
	const char		*rev;
	char			*reason, *link, *page, *pr_url;
	char			*owner, *name;	/* the app's repo path */
	char			 idtext[24], attempt[16];
	int64_t			 now;
};

static void
notify_src_init(struct notify_src *x, const struct config *cfg,
    const struct job *j, const struct job_result *res, const char *state,
    const char *rev)
{
	const struct config_repo	*repo;

	memset(x, 0, sizeof(*x));
	x->cfg = cfg;
	x->app = notify_find_app(cfg, j->app);
	x->j = j;
	x->res = res;
	x->state = state;
	x->rev = rev;
	x->now = util_now_ms();
	if (res != NULL && res->error != NULL) {
		x->reason = xstrdup(res->error);
		if (strlen(x->reason) > NOTIFY_REASON_MAX) {
			size_t m = NOTIFY_REASON_MAX;

			while (m > 0 &&
			    ((unsigned char)x->reason[m] & 0xc0) == 0x80)
				m--;
			x->reason[m] = '\0';
		}
	}
	x->link = notify_link(cfg, "/api/v1/jobs/", j->id);
	x->page = notify_link(cfg, "/#/jobs/", j->id);
	x->pr_url = res != NULL ? notify_pr_url(res) : NULL;
	if (x->app != NULL && x->app->repo != NULL &&
	    (repo = config_find_repo(cfg, x->app->repo)) != NULL &&
	    repo->url != NULL)
		(void)pr_repo_path(repo->url, &x->owner, &x->name);
	snprintf(x->attempt, sizeof(x->attempt), "%d", j->attempts + 1);
	snprintf(x->idtext, sizeof(x->idtext), "%" PRId64, j->id);
}

static void
notify_src_free(struct notify_src *x)
{
	free(x->reason);
	free(x->link);
	free(x->page);
	free(x->pr_url);
	free(x->owner);
	free(x->name);
}

/* The names of the notifiers of j's app (apps[].notify, else the default). */
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

/*
 * Plan the alert event of class cls ("failure", "recovery", "result",
 * "started") to notifier n: one notify job per target.  incident: the
 * failure reason it opens or resolves on a type with an incident per
 * reason, else NULL.
 */
static void
notify_plan_add(const struct notify_src *x, const struct config_notifier *n,
    const char *event, const char *cls, const char *incident,
    struct notify_plan *out)
{
	const struct job		*j = x->j;
	const struct job_result		*res = x->res;
	int				 status = n->plugin != NULL &&
					    (n->plugin->flags & NOTIFIER_STATUS);
	size_t				 t, ntargets;
	char				 hash[65], alert_id[33], target[24];
	char				*json;
	struct buf			 key;
	struct notify_plan_item		*it;
	cJSON				*o;

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
			notify_key_add(&key, job_error_kind_name(res->err_kind));
			notify_key_add(&key, res->object);
			notify_key_add(&key, x->rev);
			notify_key_add(&key, j->image);
			notify_key_add(&key, j->tag);
		} else {
			notify_key_add(&key, x->idtext);
			if (strcmp(cls, "recovery") != 0) {
				notify_key_add(&key, x->attempt);
				notify_key_add(&key, x->state);
			}
			if (incident != NULL)	/* one resolve per reason */
				notify_key_add(&key, incident);
		}
		util_sha256_hex(key.data, key.len, hash);
		buf_free(&key);
		/* The alert id (stable across retries): half the key hash. */
		memcpy(alert_id, hash, 32);
		alert_id[32] = '\0';

		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "notifier", n->name);
		cJSON_AddStringToObject(o, "event", event);
		cJSON_AddStringToObject(o, "alert_id", alert_id);
		notify_json_str(o, "app", j->app);
		notify_json_str(o, "cluster", x->app != NULL ?
		    x->app->cluster : NULL);
		if (ntargets > 1)
			cJSON_AddNumberToObject(o, "target", (double)t);
		cJSON_AddNumberToObject(o, "job", (double)j->id);
		cJSON_AddStringToObject(o, "kind", job_kind_name(j->kind));
		cJSON_AddStringToObject(o, "state", x->state);
		if (res != NULL && !res->ok) {
			notify_json_str(o, "reason", x->reason);
			cJSON_AddStringToObject(o, "reason_kind",
			    job_error_kind_name(res->err_kind));
		}
		notify_json_str(o, "incident", incident);
		notify_json_str(o, "object", res != NULL ? res->object : NULL);
		notify_json_str(o, "revision", x->rev);
		notify_json_str(o, "image", j->image);
		notify_json_str(o, "tag", j->tag);
		notify_json_str(o, "delivery", j->delivery);
		cJSON_AddNumberToObject(o, "attempts", j->attempts + 1);
		notify_json_str(o, "url", x->link);
		notify_json_str(o, "page_url", x->page);
		notify_json_str(o, "pr_url", x->pr_url);
		if (status) {
			notify_json_str(o, "repo_owner", x->owner);
			notify_json_str(o, "repo_name", x->name);
		}
		cJSON_AddNumberToObject(o, "time", (double)x->now);
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
		/* A status report names the repo it reports to: the store runs
		 * one per app at a time, so pending goes before the result. */
		if (status && x->app != NULL && x->app->repo != NULL)
			it->spec.repo = notify_own(out, xstrdup(x->app->repo));
		it->dedup_key = xasprintf("notify:%s", hash);
		/* 0 is "never again" (as long as the key is kept). */
		it->repeat_after_s = x->cfg->notify.repeat_after_s > 0 ?
		    x->cfg->notify.repeat_after_s : INT_MAX;
		/*
		 * A pending status is sent once: retried late, it would
		 * overwrite the result of the sync it announced.
		 */
		if (status && res == NULL)
			it->max_attempts = 1;
	}
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

/* The failure reason of an incident: "<job kind>/<error kind>". */
static char *
notify_incident_of(const struct job *j, const struct job_result *res)
{
	return xasprintf("%s/%s", job_kind_name(j->kind),
	    job_error_kind_name(res->err_kind));
}

/*
 * A recovery (or with on: [all], any success) on a notifier with an
 * incident per reason: one resolve for each reason the outbox has open
 * there; none known (opened before
 * reasons were kept, or the rows are gone): one without a reason, which
 * resolves what an older gitopsd opened.
 */
static void
notify_plan_resolves(const struct notify_src *x,
    const struct config_notifier *n, const char *event, const char *cls,
    const struct notify_open_set *open, struct notify_plan *out)
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
		notify_plan_add(x, n, event, cls, open->v[i].incident, out);
		planned++;
	}
	if (planned == 0)
		notify_plan_add(x, n, event, cls, NULL, out);
}

void
notify_plan(const struct config *cfg, const struct job *j,
    const struct job_result *res, enum job_state final, int app_was_failing,
    const struct notify_open_set *open, struct notify_plan *out)
{
	const struct config_notifier	*n;
	struct notify_src		 x;
	char *const			*names;
	size_t				 nnames, i;
	const char			*event, *cls;
	char				*incident = NULL;
	unsigned			 on;
	int				 failure;

	memset(out, 0, sizeof(*out));
	if (j->kind == JOB_NOTIFY)
		return;		/* alerts never make alerts */
	names = notify_names(cfg, notify_find_app(cfg, j->app), &nnames);
	if (nnames == 0)
		return;

	failure = !res->ok && (final == JOB_DEAD || (j->kind == JOB_SYNC &&
	    (res->err_kind == JOB_ERR_UNHEALTHY ||
	    res->err_kind == JOB_ERR_TIMEOUT)));
	notify_src_init(&x, cfg, j, res, job_state_name(final),
	    notify_revision(j, res));
	if (!res->ok)
		incident = notify_incident_of(j, res);
	for (i = 0; i < nnames; i++) {
		if ((n = notify_find_notifier(cfg, names[i])) == NULL)
			continue;	/* config checks refuse this */
		on = n->on != 0 ? n->on : CONFIG_ON_FAILURE;
		event = cls = NULL;
		if (n->plugin != NULL && (n->plugin->flags & NOTIFIER_STATUS)) {
			/* Every sync attempt's result, on its commit. */
			if (j->kind != JOB_SYNC || !notify_is_commit(x.rev))
				continue;
			event = res->ok ? "job.succeeded" : "job.failed";
			cls = "result";
		} else if (failure) {
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
		/* Every alert but a failure resolves (notifier.h). */
		if (res->ok && n->plugin != NULL && n->plugin->per_reason)
			notify_plan_resolves(&x, n, event, cls, open, out);
		else
			notify_plan_add(&x, n, event, cls, incident, out);
	}
	free(incident);
	notify_src_free(&x);
}

void
notify_plan_started(const struct config *cfg, const struct job *j,
    const char *revision, struct notify_plan *out)
{
	const struct config_notifier	*n;
	struct notify_src		 x;
	char *const			*names;
	size_t				 nnames, i;
	int				 status;

	memset(out, 0, sizeof(*out));
	if (j->kind != JOB_SYNC)
		return;
	names = notify_names(cfg, notify_find_app(cfg, j->app), &nnames);
	if (nnames == 0)
		return;
	notify_src_init(&x, cfg, j, NULL, job_state_name(JOB_RUNNING),
	    revision);
	for (i = 0; i < nnames; i++) {
		if ((n = notify_find_notifier(cfg, names[i])) == NULL)
			continue;
		status = n->plugin != NULL &&
		    (n->plugin->flags & NOTIFIER_STATUS);
		/* Other sinks only when asked: a start is no news in chat. */
		if (status ? !notify_is_commit(revision) :
		    !(n->on & CONFIG_ON_STARTED))
			continue;
		notify_plan_add(&x, n, "sync.started", "started", NULL, out);
	}
	notify_src_free(&x);
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

int
notify_app_resends(const struct config *cfg, const char *app)
{
	const struct config_notifier	*n;
	char *const			*names;
	size_t				 nnames, i;

	names = notify_names(cfg, notify_find_app(cfg, app), &nnames);
	for (i = 0; i < nnames; i++) {
		n = notify_find_notifier(cfg, names[i]);
		if (n != NULL && n->plugin != NULL &&
		    n->plugin->resend_s != NULL && n->plugin->resend_s(n) > 0)
			return 1;
	}
	return 0;
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
