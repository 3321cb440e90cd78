/*
 * poller.c: registry and Git polling, the safety net for lost events.
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
 * - Repos.  The same thread asks each repo with poll_interval_s (and an
 *   app with a cluster) for its branch head: git_repo_remote_head, a
 *   fetch's connect and ref listing under the clone's lock, no objects.
 *   A head other than the last handled one is fetched (unless the clone
 *   has it) and diffed against it; the loop stores it as a push event of
 *   source "poll" (delivery poll:<repo>:<branch>@<head>) routed by
 *   router_route, so the syncs are a push webhook's.  Slots are a hash of
 *   the name within one interval of the start (poller_repo_first_due_ms).
 * - Last handled head.  Derived, not recorded: the newest revision among
 *   the repo's apps' sync jobs in the store, read when a repo enters the
 *   table, then kept in memory; set when a poll hands a head over and
 *   when a webhook's syncs of it are stored (poller_repo_note, from
 *   server.c), which also drops a webhook's syncs of a head already
 *   handled (poller_repo_handled).  A head whose sync jobs exist already
 *   (an image update's own commit) is taken as handled.
 * - Ownership.  The image and repo tables and findings are under one
 *   mutex; the configuration is referenced, swapped on reload by the
 *   loop.  A repo finding's store callback reaches the poller through a
 *   link the poller clears when it is freed (drain comes first).
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
#include "gitrepo.h"
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
/* A poll's diff listing more paths than this syncs every app. */
#define POLLER_REPO_MAX_PATHS	10000

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

struct poller_repo {
	char			*name;
	int			 interval_s;
	int64_t			 next_ms;
	int			 failures;
	char			 known[41];	/* last head handled; "" unknown */
	int			 seen;		/* still configured (reload) */
	struct poller_status	 st;
};

/* A repo head that moved, for the loop. */
struct poller_repo_finding {
	char			*repo;
	char			 old[41];	/* "" unknown */
	char			 head[41];
	struct git_repo_paths	 paths;
	struct poller_repo_finding *next;
};

/*
 * What a repo finding's store callback needs: the poller may be freed
 * (drain) before the store answers, so callbacks reach it through this
 * link, which the poller clears when it goes.  Loop thread only.
 */
struct poller_link {
	struct poller		*p;
	int			 refs;
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
	struct poller_repo	*repos;
	size_t			 nrepos;
	struct poller_repo_finding *found_repos; /* for the loop */
	struct poller_link	*link;
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

int64_t
poller_repo_first_due_ms(const char *repo, int interval_s, int64_t start_ms)
{
	int64_t	 period = (int64_t)interval_s * 1000;
	char	*key;
	uint64_t h;

	if (period <= 0)
		return INT64_MAX;
	key = xasprintf("repo\n%s", repo);
	h = util_hash_str(key);
	free(key);
	return start_ms + 1 + (int64_t)(h % (uint64_t)period);
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
poller_count(const char *kind, const char *result, double seconds)
{
	char	 labels[64];

	snprintf(labels, sizeof(labels), "kind=\"%s\",result=\"%s\"",
	    kind, result);
	metrics_counter_add("gitopsd_polls_total", labels, 1);
	snprintf(labels, sizeof(labels), "kind=\"%s\"", kind);
	metrics_observe("gitopsd_poll_duration_seconds", labels, seconds);
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
	poller_count("image", st->result, util_mono_s() - t0);
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

/*
 * What the store says of repo's heads, on the loop: the revision of the
 * newest sync job of any of its apps that names one (*newest, "" when
 * none), and whether some recent sync job of them is at `want`.  Sync
 * jobs are where every handled push leaves its head (a webhook's, a
 * poll's, an image update's own commit), so the last handled head needs
 * no record of its own.  -1 when the store cannot be read.
 */
static int
poller_repo_store(struct poller *p, const struct config *cfg,
    const char *repo, const char *want, char newest[41], int *has_want)
{
	struct store		*rd;
	const struct store_ops	*ops = queue_reader(p->queue, &rd);
	struct store_job_filter	 f;
	struct store_job_row	*rows;
	char			 err[256];
	int64_t			 next, best = 0;
	size_t			 i, k, n;

	newest[0] = '\0';
	*has_want = 0;
	if (ops == NULL)
		return -1;
	for (i = 0; i < cfg->napps; i++) {
		if (cfg->apps[i].repo == NULL || cfg->apps[i].cluster == NULL ||
		    strcmp(cfg->apps[i].repo, repo) != 0)
			continue;
		memset(&f, 0, sizeof(f));
		f.app = cfg->apps[i].name;
		f.kind = JOB_SYNC;
		f.limit = 20;
		if (ops->list_jobs(rd, &f, &rows, &n, &next, err,
		    sizeof(err)) == -1) {
			log_kv(LOG_LEVEL_WARN, "repo poll: store not read",
			    "repo", repo, "error", err, NULL);
			return -1;
		}
		for (k = 0; k < n; k++) {
			if (rows[k].revision == NULL ||
			    strlen(rows[k].revision) != 40 ||
			    (rows[k].repo != NULL &&
			    strcmp(rows[k].repo, repo) != 0))
				continue;
			if (want != NULL && strcmp(rows[k].revision, want) == 0)
				*has_want = 1;
			if (rows[k].id > best) {
				best = rows[k].id;
				memcpy(newest, rows[k].revision, 41);
			}
		}
		store_job_rows_free(rows, n);
	}
	return 0;
}

/* 1 when some app with a cluster syncs from repo: else polling it could
 * never queue anything. */
static int
poller_repo_synced(const struct config *cfg, const char *repo)
{
	size_t	 i;

	for (i = 0; i < cfg->napps; i++)
		if (cfg->apps[i].repo != NULL && cfg->apps[i].cluster != NULL &&
		    strcmp(cfg->apps[i].repo, repo) == 0)
			return 1;
	return 0;
}

/* Which repos are polled, keeping the state of those that stay; a new
 * one's last handled head comes from the store.  Caller holds the mutex
 * (on the loop thread). */
static void
do_poller_sync_repos(struct poller *p)
{
	const struct config	*cfg = p->cfg;
	const struct config_repo *r;
	struct poller_repo	*rp;
	size_t			 i, j, k;
	int64_t			 now = util_now_ms();
	int			 has;

	for (j = 0; j < p->nrepos; j++)
		p->repos[j].seen = 0;
	for (i = 0; i < cfg->nrepos; i++) {
		r = &cfg->repos[i];
		if (r->poll_interval_s <= 0 || !poller_repo_synced(cfg,
		    r->name))
			continue;
		for (j = 0; j < p->nrepos; j++)
			if (strcmp(p->repos[j].name, r->name) == 0)
				break;
		if (j == p->nrepos) {
			p->repos = xreallocarray(p->repos, p->nrepos + 1,
			    sizeof(*p->repos));
			rp = &p->repos[p->nrepos++];
			memset(rp, 0, sizeof(*rp));
			rp->name = xstrdup(r->name);
			rp->next_ms = poller_repo_first_due_ms(r->name,
			    r->poll_interval_s, p->start_ms > 0 ? p->start_ms :
			    now);
			(void)poller_repo_store(p, cfg, r->name, NULL,
			    rp->known, &has);
		} else
			rp = &p->repos[j];
		if (rp->interval_s != r->poll_interval_s &&
		    rp->interval_s != 0)
			rp->next_ms = poller_repo_first_due_ms(r->name,
			    r->poll_interval_s, now);
		rp->interval_s = r->poll_interval_s;
		rp->st.interval_s = rp->interval_s;
		rp->st.next_ms = rp->next_ms;
		rp->seen = 1;
	}
	for (j = 0, k = 0; j < p->nrepos; j++) {
		if (!p->repos[j].seen) {
			free(p->repos[j].name);
			continue;
		}
		if (k != j)
			p->repos[k] = p->repos[j];
		k++;
	}
	p->nrepos = k;
}

/* Caller holds the mutex. */
static struct poller_repo *
do_poller_repo_find(struct poller *p, const char *name)
{
	size_t	 i;

	for (i = 0; i < p->nrepos; i++)
		if (strcmp(p->repos[i].name, name) == 0)
			return &p->repos[i];
	return NULL;
}

static void
poller_repo_finding_free(struct poller_repo_finding *f)
{
	free(f->repo);
	git_repo_paths_clear(&f->paths);
	free(f);
}

/*
 * Poll one repo (without the mutex): ask for the head; when it is not the
 * known one, fetch unless the clone has it already, and list the paths
 * changed since the known head.  Fills st and *finding.
 */
static void
poller_repo_one(const struct config *cfg, const struct config_repo *r,
    const char *known, struct poller_status *st,
    struct poller_repo_finding **finding)
{
	struct git_repo		*g = NULL;
	struct git_repo_paths	 paths;
	enum git_repo_status	 rc;
	char			 head[41], local[41], err[512];
	double			 t0 = util_mono_s();

	*finding = NULL;
	memset(&paths, 0, sizeof(paths));
	st->error[0] = '\0';
	if (git_repo_remote_head(cfg, r, head, local, err,
	    sizeof(err)) != GIT_REPO_OK)
		goto fail;
	snprintf(st->head, sizeof(st->head), "%s", head);
	if (strcmp(head, known) == 0) {
		snprintf(st->result, sizeof(st->result), "unchanged");
		goto out;
	}
	rc = strcmp(head, local) == 0 ?
	    git_repo_open_nofetch(cfg, r, &g, err, sizeof(err)) :
	    git_repo_open(cfg, r, &g, err, sizeof(err));
	if (rc != GIT_REPO_OK)
		goto fail;
	/* The branch may have moved again between the two requests. */
	if (git_repo_head(g, head) == -1) {
		snprintf(err, sizeof(err), "fetch: no branch %s in the clone",
		    r->branch);
		goto fail;
	}
	snprintf(st->head, sizeof(st->head), "%s", head);
	paths.max = POLLER_REPO_MAX_PATHS;
	if (known[0] != '\0' && git_repo_changed_paths(g, known, head, &paths,
	    err, sizeof(err)) == -1)
		log_kv(LOG_LEVEL_INFO, "repo poll: no diff, every app syncs",
		    "repo", r->name, "error", err, NULL);
	snprintf(st->result, sizeof(st->result), "ok");
	*finding = xcalloc(1, sizeof(**finding));
	(*finding)->repo = xstrdup(r->name);
	snprintf((*finding)->old, sizeof((*finding)->old), "%s", known);
	snprintf((*finding)->head, sizeof((*finding)->head), "%s", head);
	(*finding)->paths = paths;
	memset(&paths, 0, sizeof(paths));
	goto out;
fail:
	snprintf(st->result, sizeof(st->result), "error");
	util_strlcpy(st->error, err, sizeof(st->error));
out:
	git_repo_close(g);
	git_repo_paths_clear(&paths);
	poller_count("repo", st->result, util_mono_s() - t0);
}

/* The due repo, or NULL.  Caller holds the mutex. */
static struct poller_repo *
do_poller_next_repo(struct poller *p, int64_t now)
{
	size_t	 i;

	for (i = 0; i < p->nrepos; i++)
		if (p->repos[i].next_ms <= now)
			return &p->repos[i];
	return NULL;
}

/* One repo poll from the thread's loop: the mutex is held on entry and
 * on return, not during the network round. */
static void
do_poller_repo_round(struct poller *p, struct poller_repo *rp)
{
	struct config			*cfg = config_ref(p->cfg);
	const struct config_repo	*r;
	struct poller_repo_finding	*f = NULL;
	struct poller_status		 st = rp->st;
	char				*name = xstrdup(rp->name);
	char				 known[41];
	int64_t				 backoff;

	memcpy(known, rp->known, sizeof(known));
	r = config_find_repo(cfg, name);
	pthread_mutex_unlock(&p->mtx);
	if (r != NULL)
		poller_repo_one(cfg, r, known, &st, &f);
	else {
		snprintf(st.result, sizeof(st.result), "error");
		snprintf(st.error, sizeof(st.error), "not configured");
	}
	st.last_ms = util_now_ms();
	pthread_mutex_lock(&p->mtx);
	/* The table may have changed meanwhile (a reload). */
	if ((rp = do_poller_repo_find(p, name)) != NULL) {
		backoff = (int64_t)rp->interval_s * 1000;
		if (strcmp(st.result, "error") == 0) {
			rp->failures++;
			backoff <<= rp->failures < 10 ? rp->failures : 10;
			if (backoff > POLLER_BACKOFF_MAX_MS)
				backoff = POLLER_BACKOFF_MAX_MS;
			if (backoff < (int64_t)rp->interval_s * 1000)
				backoff = (int64_t)rp->interval_s * 1000;
			log_kv(LOG_LEVEL_INFO, "repo poll failed", "repo", name,
			    "error", st.error, NULL);
		} else
			rp->failures = 0;
		rp->next_ms = st.last_ms + backoff;
		st.next_ms = rp->next_ms;
		rp->st = st;
	}
	if (f != NULL) {
		f->next = p->found_repos;
		p->found_repos = f;
		event_active(p->wake, EV_READ, 0);
	}
	free(name);
	config_unref(cfg);
}

static void *
poller_main(void *arg)
{
	struct poller		*p = arg;
	struct poller_image	*im;
	struct poller_repo	*rp;
	const struct config_image *ci;
	struct config		*cfg;
	struct poller_finding	*f;
	struct poller_status	 st;
	struct poller_host	*h;
	struct image_ref	 ref;
	struct timespec		 ts;
	char			*app, *repository, *etag, *etag_out, err[64];
	char			 secs[32];
	int64_t		 now, wait_ms, backoff;
	int			 periodic;
	int			 throttles;
	size_t			 i;

	pthread_mutex_lock(&p->mtx);
	while (!p->stop) {
		now = util_now_ms();
		/* Polls are periodic work: one replica at a time. */
		periodic = replicas_periodic();
		if (!periodic || (im = do_poller_next_due(p, now)) == NULL) {
			if (periodic &&
			    (rp = do_poller_next_repo(p, now)) != NULL) {
				do_poller_repo_round(p, rp);
				continue;
			}
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

struct poller_repo_sub {
	struct poller_link	*link;
	char			*repo;
	char			 head[41];
	char			 prev[41];
	char			*delivery;
};

static void
poller_link_drop(struct poller_link *l)
{
	if (--l->refs == 0)
		free(l);
}

static void
poller_repo_submit_cb(const struct queue_outcome *out, size_t n, void *arg)
{
	struct poller_repo_sub	*sub = arg;
	struct poller		*p = sub->link->p;
	struct poller_repo	*rp;

	if (n > 0 && out[0].status == QUEUE_OK) {
		metrics_counter_add("gitopsd_poll_findings_total",
		    "kind=\"repo\"", 1);
		log_kv(LOG_LEVEL_INFO, "repo poll found a new head", "repo",
		    sub->repo, "head", sub->head, "delivery", sub->delivery,
		    NULL);
	} else if (n > 0 && out[0].status != QUEUE_DUPLICATE) {
		log_kv(LOG_LEVEL_WARN, "repo poll finding not stored", "repo",
		    sub->repo, "delivery", sub->delivery, NULL);
		/* Not handled after all: the next poll hands it over again. */
		if (p != NULL) {
			pthread_mutex_lock(&p->mtx);
			if ((rp = do_poller_repo_find(p, sub->repo)) != NULL &&
			    strcmp(rp->known, sub->head) == 0)
				memcpy(rp->known, sub->prev, sizeof(rp->known));
			pthread_mutex_unlock(&p->mtx);
		}
	}
	poller_link_drop(sub->link);
	free(sub->repo);
	free(sub->delivery);
	free(sub);
}

/* Record head as repo's last handled one; *prev gets the one before. */
static void
poller_repo_set_known(struct poller *p, const char *repo, const char *head,
    char prev[41])
{
	struct poller_repo	*rp;

	if (prev != NULL)
		prev[0] = '\0';
	pthread_mutex_lock(&p->mtx);
	if ((rp = do_poller_repo_find(p, repo)) != NULL) {
		if (prev != NULL)
			memcpy(prev, rp->known, 41);
		snprintf(rp->known, sizeof(rp->known), "%s", head);
	}
	pthread_mutex_unlock(&p->mtx);
}

/*
 * Hand a moved head to the queue as the push a Git host would have sent:
 * routed by router_route (the repo's URL and branch, the diff's paths
 * against each app's path), stored as an event of source "poll".
 */
static void
poller_repo_hand_over(struct poller *p, const struct config *cfg,
    const struct poller_repo_finding *f)
{
	const struct config_repo *r;
	struct poller_repo	*rp;
	struct poller_repo_sub	*sub;
	struct hook_event	 ev;
	struct job_spec		*jobs = NULL;
	struct queue_item	 item;
	char			 newest[41], why[256];
	size_t			 n;
	int			 done, has;

	if ((r = config_find_repo(cfg, f->repo)) == NULL)
		return;
	pthread_mutex_lock(&p->mtx);
	done = (rp = do_poller_repo_find(p, f->repo)) == NULL ||
	    strcmp(rp->known, f->head) == 0;
	pthread_mutex_unlock(&p->mtx);
	/* A webhook brought it meanwhile. */
	if (done)
		return;
	/* Handled without this poll's knowledge: gitopsd's own image
	 * update commit, whose syncs its job queued. */
	if (poller_repo_store(p, cfg, f->repo, f->head, newest, &has) == 0 &&
	    has) {
		poller_repo_set_known(p, f->repo, f->head, NULL);
		return;
	}
	memset(&ev, 0, sizeof(ev));
	ev.kind = HOOK_EVENT_PUSH;
	ev.clone_url = xstrdup(r->url);
	ev.branch = xstrdup(r->branch);
	ev.ref = xasprintf("refs/heads/%s", r->branch);
	ev.before = f->old[0] != '\0' ? xstrdup(f->old) : NULL;
	ev.after = xstrdup(f->head);
	ev.paths = f->paths.paths;
	ev.npaths = f->paths.n;
	ev.paths_complete = f->paths.complete;
	ev.delivery = xasprintf("poll:%s:%s@%s", r->name, r->branch, f->head);
	ev.summary = xasprintf("git poll %s %s %.12s", r->name, r->branch,
	    f->head);
	n = router_route(cfg, &ev, &jobs, why, sizeof(why));
	if (n == 0) {
		poller_repo_set_known(p, f->repo, f->head, NULL);
		log_kv(LOG_LEVEL_DEBUG, "repo poll: nothing to sync", "repo",
		    r->name, "head", f->head, "why", why, NULL);
		goto out;
	}
	sub = xcalloc(1, sizeof(*sub));
	sub->link = p->link;
	p->link->refs++;
	sub->repo = xstrdup(r->name);
	memcpy(sub->head, f->head, sizeof(sub->head));
	sub->delivery = xstrdup(ev.delivery);
	/* Handled from now on, so that a webhook for it adds nothing. */
	poller_repo_set_known(p, f->repo, f->head, sub->prev);
	memset(&item, 0, sizeof(item));
	item.source = "poll";
	item.event = &ev;
	item.jobs = jobs;
	item.njobs = n;
	queue_submit(p->queue, &item, 1, poller_repo_submit_cb, sub);
out:
	free(jobs);
	free(ev.clone_url);
	free(ev.branch);
	free(ev.ref);
	free(ev.before);
	free(ev.after);
	free(ev.delivery);
	free(ev.summary);
}

static void
poller_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct poller		*p = arg;
	struct poller_finding	*list, *f;
	struct poller_repo_finding *rlist, *rf;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&p->mtx);
	list = p->found;
	p->found = NULL;
	rlist = p->found_repos;
	p->found_repos = NULL;
	pthread_mutex_unlock(&p->mtx);
	while ((rf = rlist) != NULL) {
		rlist = rf->next;
		poller_repo_hand_over(p, p->cfg, rf);
		poller_repo_finding_free(rf);
	}
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
	p->link = xcalloc(1, sizeof(*p->link));
	p->link->p = p;
	p->link->refs = 1;
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
	do_poller_sync_repos(p);
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
	do_poller_sync_repos(p);
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mtx);
	config_unref(old);
}

void
poller_free(struct poller *p)
{
	struct poller_host	*h;
	struct poller_finding	*f;
	struct poller_repo_finding *rf;
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
	for (i = 0; i < p->nrepos; i++)
		free(p->repos[i].name);
	free(p->repos);
	while ((rf = p->found_repos) != NULL) {
		p->found_repos = rf->next;
		poller_repo_finding_free(rf);
	}
	p->link->p = NULL;
	poller_link_drop(p->link);
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

int
poller_repo_status_get(struct poller *p, const char *repo,
    struct poller_status *st)
{
	struct poller_repo	*rp;
	int			 found = 0;

	if (p == NULL)
		return 0;
	pthread_mutex_lock(&p->mtx);
	if ((rp = do_poller_repo_find(p, repo)) != NULL) {
		*st = rp->st;
		found = 1;
	}
	pthread_mutex_unlock(&p->mtx);
	return found;
}

int
poller_repo_handled(struct poller *p, const char *repo, const char *revision)
{
	struct poller_repo	*rp;
	int			 handled = 0;

	if (p == NULL || repo == NULL || revision == NULL)
		return 0;
	pthread_mutex_lock(&p->mtx);
	if ((rp = do_poller_repo_find(p, repo)) != NULL)
		handled = rp->known[0] != '\0' &&
		    strcmp(rp->known, revision) == 0;
	pthread_mutex_unlock(&p->mtx);
	return handled;
}

void
poller_repo_note(struct poller *p, const char *repo, const char *revision)
{
	/* Only a full commit id can be the head a poll reads. */
	if (p == NULL || repo == NULL || revision == NULL ||
	    strlen(revision) != 40)
		return;
	poller_repo_set_known(p, repo, revision, NULL);
}
