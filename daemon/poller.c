/*
 * poller.c: registry polling, the safety net for lost image events.
 *
 * DESIGN
 * - Thread.  One poller thread lists the tags of each app image whose
 *   poll_interval_s is above 0 (registry_list_tags, blocking libcurl), one
 *   poll at a time: never more than one request in flight per registry.
 * - Schedule.  Each image keeps a slot in its interval from a hash of app
 *   and repository, as drift syncs do; the first poll after start comes
 *   one to two intervals later (webhooks cover the meantime, and a
 *   restart does not fire every poll at once).
 * - Kindness.  Per registry host, a time before which it is not asked
 *   again: a 429's Retry-After (else 60 s doubling up to an hour), and the
 *   same when Docker Hub's RateLimit-Remaining reaches 0.  An image whose
 *   poll failed backs off exponentially from its interval up to an hour.
 *   A listing's ETag is sent back as If-None-Match.
 * - Findings.  The best tag the policy accepts (policy_best) and its
 *   digest (registry_verify_tag) go to the loop through one event_active.
 *   The loop drops a tag that is not newer than the one the app's status
 *   records, and submits the rest through queue_submit as an image event
 *   of source "poll", routed by router_route_image like a registry's
 *   event, so the jobs are the same.  Its delivery id names the image, tag
 *   and digest: the same finding again is a duplicate and makes nothing,
 *   and a webhook for a tag a poll already deployed makes an update-image
 *   job that finds the tag in Git and commits nothing.
 * - Digest policies follow one tag: the poll asks for its digest and
 *   hands it over when it differs from the recorded one.  `latest`
 *   policies are not polled: a tag list has no push order.
 * - Ownership.  The image table and findings are under one mutex; the
 *   configuration is referenced, swapped on reload by the loop.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "config.h"
#include "handler.h"
#include "job.h"
#include "log.h"
#include "metrics.h"
#include "policy.h"
#include "poller.h"
#include "queue.h"
#include "registry_client.h"
#include "replicas.h"
#include "router.h"
#include "store.h"
#include "util.h"

#define POLLER_BACKOFF_MAX_MS	(3600LL * 1000)
#define POLLER_THROTTLE_MIN_MS	(60LL * 1000)

struct poller_image {
	char			*app;
	char			*repository;	/* as configured */
	int			 interval_s;
	int64_t			 next_ms;
	int			 failures;
	char			*etag;
	int			 seen;		/* still configured (reload) */
	struct poller_status	 st;
};

struct poller_host {
	char			*host;
	int64_t			 not_before_ms;
	int			 throttles;
	struct poller_host	*next;
};

/* A tag worth handing to the queue. */
struct poller_finding {
	char			*app;
	char			*repository;
	char			*registry;	/* normalized */
	char			*repo;		/* normalized */
	char			*tag;
	char			*digest;
	struct poller_finding	*next;
};

struct poller {
	struct queue		*queue;
	struct event		*wake;
	pthread_t		 thread;
	int			 started;
	pthread_mutex_t		 mtx;
	pthread_cond_t		 cv;
	int			 stop;
	struct config		*cfg;		/* referenced */
	struct poller_image	*images;
	size_t			 nimages;
	struct poller_host	*hosts;
	struct poller_finding	*found;		/* for the loop */
	int64_t			 start_ms;
};

int64_t
poller_first_due_ms(const char *app, const char *repository, int interval_s,
    int64_t start_ms)
{
	int64_t	 period = (int64_t)interval_s * 1000, slot;
	char	*key;

	if (period <= 0)
		return INT64_MAX;
	key = xasprintf("%s\n%s", app, repository);
	slot = (int64_t)(util_hash_str(key) % (uint64_t)period);
	free(key);
	return start_ms + period + slot;
}

static void
poller_finding_free(struct poller_finding *f)
{
	free(f->app);
	free(f->repository);
	free(f->registry);
	free(f->repo);
	free(f->tag);
	free(f->digest);
	free(f);
}

static void
poller_image_clear(struct poller_image *im)
{
	free(im->app);
	free(im->repository);
	free(im->etag);
}

/* Which images are polled, keeping the state of those that stay.  Caller
 * holds the mutex. */
static void
do_poller_sync_images(struct poller *p)
{
	const struct config	*cfg = p->cfg;
	const struct config_app	*a;
	const struct config_image *ci;
	struct poller_image	*im;
	size_t			 i, k, j;
	int64_t			 now = util_now_ms();

	for (j = 0; j < p->nimages; j++)
		p->images[j].seen = 0;
	for (i = 0; i < cfg->napps; i++) {
		a = &cfg->apps[i];
		for (k = 0; k < a->nimages; k++) {
			ci = &a->images[k];
			if (ci->poll_interval_s <= 0 ||
			    ci->policy.kind == CONFIG_POLICY_LATEST)
				continue;
			for (j = 0; j < p->nimages; j++)
				if (strcmp(p->images[j].app, a->name) == 0 &&
				    strcmp(p->images[j].repository,
				    ci->repository) == 0)
					break;
			if (j == p->nimages) {
				p->images = xreallocarray(p->images,
				    p->nimages + 1, sizeof(*p->images));
				im = &p->images[p->nimages++];
				memset(im, 0, sizeof(*im));
				im->app = xstrdup(a->name);
				im->repository = xstrdup(ci->repository);
				im->next_ms = poller_first_due_ms(a->name,
				    ci->repository, ci->poll_interval_s,
				    p->start_ms > 0 ? p->start_ms : now);
			} else
				im = &p->images[j];
			if (im->interval_s != ci->poll_interval_s &&
			    im->interval_s != 0)
				im->next_ms = poller_first_due_ms(a->name,
				    ci->repository, ci->poll_interval_s, now);
			im->interval_s = ci->poll_interval_s;
			im->st.interval_s = im->interval_s;
			im->st.next_ms = im->next_ms;
			im->seen = 1;
		}
	}
	/* Keep the images still configured, in order. */
	for (j = 0, k = 0; j < p->nimages; j++) {
		if (!p->images[j].seen) {
			poller_image_clear(&p->images[j]);
			continue;
		}
		if (k != j)
			p->images[k] = p->images[j];
		k++;
	}
	p->nimages = k;
}

/* Caller holds the mutex. */
static struct poller_host *
do_poller_host(struct poller *p, const char *host)
{
	struct poller_host	*h;

	for (h = p->hosts; h != NULL; h = h->next)
		if (strcmp(h->host, host) == 0)
			return h;
	h = xcalloc(1, sizeof(*h));
	h->host = xstrdup(host);
	h->next = p->hosts;
	p->hosts = h;
	return h;
}

static const struct config_image *
poller_config_image(const struct config *cfg, const char *app,
    const char *repository)
{
	const struct config_app	*a = config_find_app(cfg, app);
	size_t			 k;

	for (k = 0; a != NULL && k < a->nimages; k++)
		if (strcmp(a->images[k].repository, repository) == 0)
			return &a->images[k];
	return NULL;
}

static void
poller_count(const char *result, double seconds)
{
	char	 labels[64];

	snprintf(labels, sizeof(labels), "kind=\"image\",result=\"%s\"",
	    result);
	metrics_counter_add("gitopsd_polls_total", labels, 1);
	metrics_observe("gitopsd_poll_duration_seconds", "kind=\"image\"",
	    seconds);
}

/*
 * Poll one image (without the mutex).  Fills st's result, tag and error,
 * *finding when a tag is worth handing over, *etag_out the listing's ETag,
 * and *wait_ms a host-wide pause (throttled) or 0.
 */
static void
poller_one(const struct config *cfg, const struct config_image *ci,
    const char *app, const char *etag, struct poller_status *st,
    struct poller_finding **finding, char **etag_out, int64_t *wait_ms,
    int throttles)
{
	struct image_ref	 ref;
	struct registry_tags	 t;
	const char		*best = NULL;
	char			*digest = NULL, err[256];
	double			 t0 = util_mono_s();
	int			 rc;

	*finding = NULL;
	*etag_out = NULL;
	*wait_ms = 0;
	memset(&t, 0, sizeof(t));
	st->tag[0] = '\0';
	st->error[0] = '\0';
	if (image_ref_parse(ci->repository, &ref, err, sizeof(err)) == -1) {
		snprintf(st->result, sizeof(st->result), "error");
		snprintf(st->error, sizeof(st->error), "%s", err);
		return;
	}
	if (ci->policy.kind == CONFIG_POLICY_DIGEST) {
		rc = registry_verify_tag(cfg, ref.registry, ref.repository,
		    ci->policy.digest_tag, &digest, err, sizeof(err));
		if (rc == 0)
			best = ci->policy.digest_tag;
	} else {
		rc = registry_list_tags(cfg, ref.registry, ref.repository,
		    etag, &t, err, sizeof(err));
		if (rc == 0 && t.not_modified) {
			snprintf(st->result, sizeof(st->result), "unchanged");
			*etag_out = etag != NULL ? xstrdup(etag) : NULL;
			goto out;
		}
		if (rc == 0 && (best = policy_best(&ci->policy, t.tags, t.n,
		    NULL)) != NULL) {
			/* Its digest, and proof that the tag is there. */
			rc = registry_verify_tag(cfg, ref.registry,
			    ref.repository, best, &digest, err, sizeof(err));
		}
		if (rc == 0 && t.etag != NULL)
			*etag_out = xstrdup(t.etag);
		if (rc == 0 && t.remaining == 0)
			*wait_ms = POLLER_THROTTLE_MIN_MS << (throttles < 6 ?
			    throttles : 6);
	}
	if (rc == REGISTRY_THROTTLED) {
		snprintf(st->result, sizeof(st->result), "throttled");
		snprintf(st->error, sizeof(st->error), "%s", err);
		*wait_ms = t.retry_after_s > 0 ?
		    (int64_t)t.retry_after_s * 1000 :
		    POLLER_THROTTLE_MIN_MS << (throttles < 6 ? throttles : 6);
		goto out;
	}
	if (rc != 0) {
		snprintf(st->result, sizeof(st->result), "error");
		snprintf(st->error, sizeof(st->error), "%s", err);
		goto out;
	}
	/* Whether best is new to the app is the loop's to say. */
	snprintf(st->result, sizeof(st->result), "ok");
	if (best == NULL)
		goto out;
	snprintf(st->tag, sizeof(st->tag), "%s", best);
	*finding = xcalloc(1, sizeof(**finding));
	(*finding)->app = xstrdup(app);
	(*finding)->repository = xstrdup(ci->repository);
	(*finding)->registry = xstrdup(ref.registry);
	(*finding)->repo = xstrdup(ref.repository);
	(*finding)->tag = xstrdup(best);
	(*finding)->digest = digest;
	digest = NULL;
out:
	poller_count(st->result, util_mono_s() - t0);
	registry_tags_clear(&t);
	free(digest);
	image_ref_free(&ref);
}

/* The due image whose host is not paused, or NULL.  Caller holds mutex. */
static struct poller_image *
do_poller_next_due(struct poller *p, int64_t now)
{
	struct poller_image	*im;
	const struct config_image *ci;
	struct image_ref	 ref;
	char			 err[64];
	size_t			 i;
	int			 paused;

	for (i = 0; i < p->nimages; i++) {
		im = &p->images[i];
		if (im->next_ms > now)
			continue;
		if ((ci = poller_config_image(p->cfg, im->app,
		    im->repository)) == NULL ||
		    image_ref_parse(ci->repository, &ref, err,
		    sizeof(err)) == -1)
			continue;
		paused = do_poller_host(p, ref.registry)->not_before_ms > now;
		image_ref_free(&ref);
		if (!paused)
			return im;
	}
	return NULL;
}

static void *
poller_main(void *arg)
{
	struct poller		*p = arg;
	struct poller_image	*im;
	const struct config_image *ci;
	struct config		*cfg;
	struct poller_finding	*f;
	struct poller_status	 st;
	struct poller_host	*h;
	struct image_ref	 ref;
	struct timespec		 ts;
	char			*app, *repository, *etag, *etag_out, err[64];
	char			 secs[32];
	int64_t			 now, wait_ms, backoff;
	int			 throttles;
	size_t			 i;

	pthread_mutex_lock(&p->mtx);
	while (!p->stop) {
		now = util_now_ms();
		/* Polls are periodic work: one replica at a time. */
		if (!replicas_periodic() ||
		    (im = do_poller_next_due(p, now)) == NULL) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&p->cv, &p->mtx, &ts);
			continue;
		}
		cfg = config_ref(p->cfg);
		ci = poller_config_image(cfg, im->app, im->repository);
		app = xstrdup(im->app);
		repository = xstrdup(im->repository);
		etag = im->etag != NULL ? xstrdup(im->etag) : NULL;
		st = im->st;
		throttles = 0;
		if (image_ref_parse(repository, &ref, err, sizeof(err)) == 0) {
			throttles = do_poller_host(p, ref.registry)->throttles;
			image_ref_free(&ref);
		}
		pthread_mutex_unlock(&p->mtx);

		poller_one(cfg, ci, app, etag, &st, &f, &etag_out, &wait_ms,
		    throttles);
		st.last_ms = util_now_ms();

		pthread_mutex_lock(&p->mtx);
		/* The table may have changed meanwhile (a reload). */
		for (im = NULL, i = 0; i < p->nimages; i++)
			if (strcmp(p->images[i].app, app) == 0 &&
			    strcmp(p->images[i].repository, repository) == 0)
				im = &p->images[i];
		if (im != NULL) {
			if (strcmp(st.result, "error") == 0) {
				im->failures++;
				backoff = (int64_t)im->interval_s * 1000 <<
				    (im->failures < 10 ? im->failures : 10);
				if (backoff > POLLER_BACKOFF_MAX_MS)
					backoff = POLLER_BACKOFF_MAX_MS;
				log_kv(LOG_LEVEL_INFO, "registry poll failed",
				    "app", app, "image", repository, "error",
				    st.error, NULL);
			} else {
				im->failures = 0;
				backoff = (int64_t)im->interval_s * 1000;
			}
			if (backoff < (int64_t)im->interval_s * 1000)
				backoff = (int64_t)im->interval_s * 1000;
			im->next_ms = st.last_ms + backoff;
			st.next_ms = im->next_ms;
			if (strcmp(st.result, "unchanged") != 0 ||
			    etag_out != NULL) {
				free(im->etag);
				im->etag = etag_out;
				etag_out = NULL;
			}
			im->st = st;
		}
		if (image_ref_parse(repository, &ref, err, sizeof(err)) == 0) {
			h = do_poller_host(p, ref.registry);
			if (wait_ms > 0) {
				h->not_before_ms = st.last_ms + wait_ms;
				h->throttles++;
				snprintf(secs, sizeof(secs), "%" PRId64,
				    wait_ms / 1000);
				log_kv(LOG_LEVEL_INFO, "registry polls paused",
				    "registry", ref.registry, "seconds", secs,
				    "error", st.error, NULL);
			} else
				h->throttles = 0;
			image_ref_free(&ref);
		}
		if (f != NULL) {
			f->next = p->found;
			p->found = f;
			event_active(p->wake, EV_READ, 0);
		}
		free(etag_out);
		free(etag);
		free(app);
		free(repository);
		config_unref(cfg);
	}
	pthread_mutex_unlock(&p->mtx);
	return NULL;
}

static void
poller_submit_cb(const struct queue_outcome *out, size_t n, void *arg)
{
	char	*delivery = arg;

	if (n > 0 && out[0].status == QUEUE_OK) {
		metrics_counter_add("gitopsd_poll_findings_total",
		    "kind=\"image\"", 1);
		log_kv(LOG_LEVEL_INFO, "registry poll found a new tag",
		    "delivery", delivery, NULL);
	}
	else if (n > 0 && out[0].status != QUEUE_DUPLICATE)
		log_kv(LOG_LEVEL_WARN, "registry poll finding not stored",
		    "delivery", delivery, NULL);
	free(delivery);
}

/* The tag the app's status records for an image, or NULL (malloc'd);
 * *unknown when the store could not be read. */
static char *
poller_recorded(struct poller *p, const char *app, const char *registry,
    const char *repo, char **digest, int *unknown)
{
	struct store		*rd;
	const struct store_ops	*ops = queue_reader(p->queue, &rd);
	struct store_app_row	 r;
	struct image_ref	 have, want;
	char			 err[256], *tag = NULL;
	size_t			 i;

	*digest = NULL;
	*unknown = 0;
	if (ops == NULL || ops->app_get(rd, app, &r, err, sizeof(err)) == -1) {
		*unknown = 1;
		return NULL;
	}
	if (image_ref_from_parts(registry, repo, &want, err,
	    sizeof(err)) == 0) {
		for (i = 0; i < r.nimages && tag == NULL; i++) {
			if (image_ref_parse(r.images[i].image, &have, err,
			    sizeof(err)) == -1)
				continue;
			if (image_ref_same_repo(&have, &want) &&
			    r.images[i].tag != NULL) {
				tag = xstrdup(r.images[i].tag);
				if (r.images[i].digest != NULL)
					*digest = xstrdup(r.images[i].digest);
			}
			image_ref_free(&have);
		}
		image_ref_free(&want);
	}
	store_app_row_clear(&r);
	return tag;
}

/* Hand one finding to the queue as the event a registry would send. */
static void
poller_hand_over(struct poller *p, const struct config *cfg,
    const struct poller_finding *f)
{
	const struct config_image *ci;
	struct hook_event	 ev;
	struct job_spec		*jobs = NULL;
	struct queue_item	 item;
	char			*tag, *digest, why[256];
	size_t			 n;
	int			 newer, unknown;

	if ((ci = poller_config_image(cfg, f->app, f->repository)) == NULL)
		return;
	tag = poller_recorded(p, f->app, f->registry, f->repo, &digest,
	    &unknown);
	/* The store is not open: the next poll finds it again. */
	if (unknown)
		return;
	if (ci->policy.kind == CONFIG_POLICY_DIGEST)
		newer = digest == NULL || f->digest == NULL ||
		    strcmp(digest, f->digest) != 0;
	else
		newer = tag == NULL || policy_newer(&ci->policy, tag, f->tag);
	free(tag);
	free(digest);
	if (!newer)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.kind = HOOK_EVENT_IMAGE;
	ev.registry = f->registry;
	ev.repository = f->repo;
	ev.tag = f->tag;
	ev.digest = f->digest;
	ev.delivery = xasprintf("poll:%s/%s:%s@%s", f->registry, f->repo,
	    f->tag, f->digest != NULL ? f->digest : "-");
	ev.summary = xasprintf("registry poll %s/%s:%s", f->registry,
	    f->repo, f->tag);
	if ((n = router_route_image(cfg, &ev, &jobs, why, sizeof(why))) == 0) {
		free(ev.delivery);
		free(ev.summary);
		return;
	}
	memset(&item, 0, sizeof(item));
	item.source = "poll";
	item.event = &ev;
	item.jobs = jobs;
	item.njobs = n;
	/* The jobs borrow the event's and the config's strings. */
	queue_submit(p->queue, &item, 1, poller_submit_cb, ev.delivery);
	free(jobs);
	free(ev.summary);
}

static void
poller_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct poller		*p = arg;
	struct poller_finding	*list, *f;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&p->mtx);
	list = p->found;
	p->found = NULL;
	pthread_mutex_unlock(&p->mtx);
	while ((f = list) != NULL) {
		list = f->next;
		/* p->cfg is only replaced on this (the loop) thread. */
		poller_hand_over(p, p->cfg, f);
		poller_finding_free(f);
	}
}

struct poller *
poller_new(struct event_base *base, struct queue *q, struct config *cfg)
{
	struct poller	*p = xcalloc(1, sizeof(*p));

	p->queue = q;
	p->cfg = config_ref(cfg);
	p->start_ms = util_now_ms();
	pthread_mutex_init(&p->mtx, NULL);
	pthread_cond_init(&p->cv, NULL);
	metrics_describe("gitopsd_polls_total", "counter",
	    "Registry and Git polls by kind and result.");
	metrics_describe("gitopsd_poll_duration_seconds", "histogram",
	    "Time one poll took, by kind.");
	metrics_describe("gitopsd_poll_findings_total", "counter",
	    "Polls that found what no event had brought, by kind.");
	if ((p->wake = event_new(base, -1, 0, poller_wake_cb, p)) == NULL)
		fatalx("event_new");
	do_poller_sync_images(p);
	if (pthread_create(&p->thread, NULL, poller_main, p) != 0)
		fatalx("pthread_create");
	p->started = 1;
	return p;
}

void
poller_reconfigure(struct poller *p, struct config *cfg)
{
	struct config	*old;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mtx);
	old = p->cfg;
	p->cfg = config_ref(cfg);
	do_poller_sync_images(p);
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mtx);
	config_unref(old);
}

void
poller_free(struct poller *p)
{
	struct poller_host	*h;
	struct poller_finding	*f;
	size_t			 i;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mtx);
	p->stop = 1;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mtx);
	if (p->started)
		pthread_join(p->thread, NULL);
	event_free(p->wake);
	for (i = 0; i < p->nimages; i++)
		poller_image_clear(&p->images[i]);
	free(p->images);
	while ((h = p->hosts) != NULL) {
		p->hosts = h->next;
		free(h->host);
		free(h);
	}
	while ((f = p->found) != NULL) {
		p->found = f->next;
		poller_finding_free(f);
	}
	config_unref(p->cfg);
	pthread_mutex_destroy(&p->mtx);
	pthread_cond_destroy(&p->cv);
	free(p);
}

int
poller_status_get(struct poller *p, const char *app, const char *repository,
    struct poller_status *st)
{
	size_t	 i;
	int	 found = 0;

	if (p == NULL)
		return 0;
	pthread_mutex_lock(&p->mtx);
	for (i = 0; i < p->nimages; i++) {
		if (strcmp(p->images[i].app, app) == 0 &&
		    strcmp(p->images[i].repository, repository) == 0) {
			*st = p->images[i].st;
			found = 1;
			break;
		}
	}
	pthread_mutex_unlock(&p->mtx);
	return found;
}
