/*
 * drift.c: a one-second timer on the loop that queues a sync of the
 * branch head for every app whose sync.interval_s has passed since its
 * last drift sync.  A queued sync absorbs later ones (queue.c), so a slow
 * cluster never piles up drift jobs.  The schedule is kept in memory.
 *
 * Apps do not all fall due in the same second: each app's drift syncs sit
 * at its own phase within the interval, taken from a hash of its name
 * (drift_first_due_ms), so five hundred apps on a 30 s interval become
 * about seventeen syncs a second instead of a burst of five hundred every
 * thirty seconds.  A hash rather than a random draw keeps an app's slot
 * the same across restarts and reloads, and on every replica.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "config.h"
#include "drift.h"
#include "job.h"
#include "log.h"
#include "queue.h"
#include "replicas.h"
#include "sync.h"
#include "util.h"

int64_t
drift_first_due_ms(const char *app, int interval_s, int64_t start_ms)
{
	int64_t	 period = (int64_t)interval_s * 1000;

	if (period <= 0)
		return INT64_MAX;
	/* Strictly after start, at most one interval later. */
	return start_ms + 1 + (int64_t)(util_hash_str(app) % (uint64_t)period);
}

struct drift_app {
	char		*name;
	int64_t		 last_ms;	/* last drift sync queued (or start) */
};

struct drift {
	struct queue		*queue;
	struct config		*cfg;
	struct event		*tick;
	struct drift_app	*apps;
	size_t			 napps;
};

/* The app's schedule; a new app's "last" sync is set one interval before
 * its first due time, so sync_drift_due keeps the phase. */
static struct drift_app *
drift_app(struct drift *d, const char *name, int interval_s)
{
	size_t	 i;

	for (i = 0; i < d->napps; i++)
		if (strcmp(d->apps[i].name, name) == 0)
			return &d->apps[i];
	d->apps = xreallocarray(d->apps, d->napps + 1, sizeof(*d->apps));
	d->apps[d->napps].name = xstrdup(name);
	d->apps[d->napps].last_ms = drift_first_due_ms(name, interval_s,
	    util_now_ms()) - (int64_t)interval_s * 1000;
	return &d->apps[d->napps++];
}

static void
drift_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct drift		*d = arg;
	const struct config_app	*app;
	struct drift_app	*da;
	struct job_spec		 spec;
	int64_t			 now = util_now_ms(), id;
	char			 err[256], ids[32];
	size_t			 i;

	(void)fd;
	(void)what;
	/* Another replica holds the periodic role and queues them. */
	if (!replicas_periodic())
		return;
	for (i = 0; i < d->cfg->napps; i++) {
		app = &d->cfg->apps[i];
		if (app->sync_interval_s <= 0 || app->cluster == NULL)
			continue;
		da = drift_app(d, app->name, app->sync_interval_s);
		if (!sync_drift_due(app, da->last_ms, now, NULL))
			continue;
		/* Advance by whole intervals from the slot, not from now, so
		 * a late tick (a busy loop) does not drift the phase. */
		da->last_ms += (int64_t)app->sync_interval_s * 1000 *
		    ((now - da->last_ms) / ((int64_t)app->sync_interval_s *
		    1000));
		memset(&spec, 0, sizeof(spec));
		spec.kind = JOB_SYNC;
		spec.app = app->name;
		spec.repo = app->repo;
		spec.params = "{\"trigger\":\"drift\"}";
		if (queue_add_jobs(d->queue, &spec, 1, &id, err,
		    sizeof(err)) == -1) {
			log_kv(LOG_LEVEL_WARN, "drift sync not queued", "app",
			    app->name, "error", err, NULL);
			continue;
		}
		snprintf(ids, sizeof(ids), "%lld", (long long)id);
		log_kv(LOG_LEVEL_DEBUG, "drift sync queued", "app", app->name,
		    "job", ids, NULL);
	}
}

struct drift *
drift_new(struct event_base *base, struct queue *q, struct config *cfg)
{
	struct drift	*d;
	struct timeval	 tv = { 1, 0 };

	d = xcalloc(1, sizeof(*d));
	d->queue = q;
	d->cfg = config_ref(cfg);
	if ((d->tick = event_new(base, -1, EV_PERSIST, drift_tick_cb, d)) == NULL)
		fatalx("event_new");
	event_add(d->tick, &tv);
	return d;
}

void
drift_reconfigure(struct drift *d, struct config *cfg)
{
	if (d == NULL)
		return;
	config_unref(d->cfg);
	d->cfg = config_ref(cfg);
}

void
drift_free(struct drift *d)
{
	size_t	 i;

	if (d == NULL)
		return;
	event_free(d->tick);
	for (i = 0; i < d->napps; i++)
		free(d->apps[i].name);
	free(d->apps);
	config_unref(d->cfg);
	free(d);
}
