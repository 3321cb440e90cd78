/*
 * job_update_image.c: the update-image job runner (worker thread).
 *
 * DESIGN: fetch the repository's bare clone, read the YAML files under each
 * concerned app's path at the branch head, edit the tags in memory
 * (manifest.c), write one commit from blobs and trees, and push it without
 * force.  A push that loses a race (the branch moved) is retried from a new
 * fetch, up to git.push_retries times with jittered backoff: the edit is
 * idempotent, so re-applying it to the new head never loses the other
 * commit and never edits twice.  Merged jobs (job->merged, same repository)
 * become one commit.  Nothing is committed when every tag is already set
 * or would not move forward by the image's policy.
 */
#include <fnmatch.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "gitrepo.h"
#include "job.h"
#include "log.h"
#include "manifest.h"
#include "metrics.h"
#include "policy.h"
#include "pr.h"
#include "registry_client.h"
#include "util.h"

#define UPDATE_DEFAULT_MESSAGE	"deploy({{app}}): {{image}} {{old}} -> {{new}}"

/* One requested change: a job (or a merged one) for one app's image. */
struct update_item {
	const struct job		*job;
	const struct config_app		*app;
	const struct config_policy	*policy;
	char				*marker;
	char				*image_short;	/* marker/message name */
	/* Outcome at the last attempt. */
	int				 found, changed, already, skipped;
	int				 unsupported;
	char				*old;
	char				*base_old;	/* on the followed branch */
	char				*note;
	char				*verified_digest; /* from the registry */
};

/* A file edited in memory during one attempt. */
struct update_file {
	char	*path;
	char	*data;
	size_t	 len;
	int	 changed;
};

struct update_run {
	const struct config	*cfg;
	const struct config_repo *repo;
	struct update_item	*items;
	size_t			 nitems;
	struct update_file	*files;
	size_t			 nfiles;
	struct update_item	*cur;		/* item being applied */
	char			**errors;	/* files that do not parse */
	size_t			 nerrors;
	struct pr_outcome	 pr;		/* the pull request, if any */
	const char		*pr_state;	/* opened, updated, declined */
	char			**stale;	/* older PRs closed */
	size_t			 nstale;
};

static pthread_once_t	 update_metrics_once = PTHREAD_ONCE_INIT;

static void
update_metrics_init(void)
{
	metrics_describe("gitopsd_git_push_retries_total", "counter",
	    "Pushes retried after the branch moved (non-fast-forward).");
}

static void
update_metrics_declare(void)
{
	pthread_once(&update_metrics_once, update_metrics_init);
}

static int
update_newer_cb(void *arg, const char *current, const char *candidate)
{
	const struct config_policy	*p = arg;

	return policy_newer(p, current, candidate);
}

/* Tags and digests go into YAML and commit messages: check their form. */
static int
update_valid_tag(const char *t)
{
	size_t	 i, n = strlen(t);

	if (n == 0 || n > 128 || t[0] == '.' || t[0] == '-')
		return 0;
	for (i = 0; i < n; i++)
		if (!((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= 'A' &&
		    t[i] <= 'Z') || (t[i] >= '0' && t[i] <= '9') ||
		    t[i] == '_' || t[i] == '.' || t[i] == '-'))
			return 0;
	return 1;
}

static int
update_valid_digest(const char *d)
{
	size_t	 i;

	if (strncmp(d, "sha256:", 7) != 0 || strlen(d) != 71)
		return 0;
	for (i = 7; i < 71; i++)
		if (!((d[i] >= '0' && d[i] <= '9') || (d[i] >= 'a' &&
		    d[i] <= 'f')))
			return 0;
	return 1;
}

static void
update_items_free(struct update_item *items, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++) {
		free(items[i].marker);
		free(items[i].image_short);
		free(items[i].verified_digest);
		free(items[i].old);
		free(items[i].base_old);
		free(items[i].note);
	}
	free(items);
}

static void
update_files_reset(struct update_run *u)
{
	size_t	 i;

	for (i = 0; i < u->nfiles; i++) {
		free(u->files[i].path);
		free(u->files[i].data);
	}
	free(u->files);
	u->files = NULL;
	u->nfiles = 0;
	for (i = 0; i < u->nerrors; i++)
		free(u->errors[i]);
	free(u->errors);
	u->errors = NULL;
	u->nerrors = 0;
}

/* The config entry of the job's image in its app (policy, marker name). */
static const struct config_image *
update_find_image(const struct config_app *app, const char *image)
{
	struct image_ref	 want, have;
	char			 err[128];
	const struct config_image *found = NULL;
	size_t			 i;

	if (image_ref_parse(image, &want, err, sizeof(err)) == -1)
		return NULL;
	for (i = 0; i < app->nimages && found == NULL; i++) {
		if (image_ref_parse(app->images[i].repository, &have, err,
		    sizeof(err)) == -1)
			continue;
		if (image_ref_same_repo(&want, &have))
			found = &app->images[i];
		image_ref_free(&have);
	}
	image_ref_free(&want);
	return found;
}

/* Build the items of job and its merged jobs; -1 with res failed. */
static int
update_items_build(const struct config *cfg, struct job *job,
    struct update_run *u, struct job_result *res)
{
	const struct config_image	*img;
	const struct config_app		*app;
	struct job			*j;
	size_t				 i, n = 1 + job->nmerged;

	u->items = xcalloc(n, sizeof(*u->items));
	for (i = 0; i < n; i++) {
		j = i == 0 ? job : job->merged[i - 1];
		if (j->app == NULL || (app = config_find_app(cfg, j->app)) ==
		    NULL) {
			job_result_fail(res, JOB_ERR_CONFIG, 1,
			    "app %s is no longer configured",
			    j->app != NULL ? j->app : "(none)");
			return -1;
		}
		if (u->repo == NULL &&
		    (u->repo = config_find_repo(cfg, app->repo)) == NULL) {
			job_result_fail(res, JOB_ERR_CONFIG, 1,
			    "repo %s of app %s is no longer configured",
			    app->repo, app->name);
			return -1;
		}
		if (strcmp(app->repo, u->repo->name) != 0) {
			job_result_fail(res, JOB_ERR_INTERNAL, 1,
			    "merged job %lld is for repo %s, not %s",
			    (long long)j->id, app->repo, u->repo->name);
			return -1;
		}
		if (j->image == NULL || (j->tag == NULL && j->digest == NULL)) {
			job_result_fail(res, JOB_ERR_INTERNAL, 1,
			    "job %lld has no image or tag", (long long)j->id);
			return -1;
		}
		if ((j->tag != NULL && !update_valid_tag(j->tag)) ||
		    (j->digest != NULL && !update_valid_digest(j->digest))) {
			job_result_fail(res, JOB_ERR_INTERNAL, 1,
			    "job %lld: malformed tag or digest",
			    (long long)j->id);
			return -1;
		}
		img = update_find_image(app, j->image);
		u->items[i].job = j;
		u->items[i].app = app;
		u->items[i].policy = img != NULL ? &img->policy : NULL;
		u->items[i].image_short = xstrdup(manifest_marker_image(
		    img != NULL ? img->repository : j->image));
		u->items[i].marker = xasprintf("%s:%s", app->name,
		    u->items[i].image_short);
		u->nitems++;
	}
	return 0;
}

static void	update_backoff(int);

/*
 * verify_tag: ask the registry whether each pushed tag exists before the
 * manifests name it.  Jobs without a tag (digest events) or from a source
 * with verify_tag: false trust the event.  The distribution registry
 * sends its push notification when the manifest is stored, before the tag
 * points at it, so "no such tag" is asked again a few times (about 1.5 s
 * in all) and then retried by the queue like other registry failures: an
 * event whose tag never appears ends dead after retry.max_attempts.
 */
static int
update_verify_tags(const struct config *cfg, struct update_run *u,
    struct job_result *res)
{
	const struct config_source	*src;
	const struct job		*j;
	struct image_ref		 ref;
	char				*digest, err[512];
	size_t				 i;
	int				 rc, try;

	for (i = 0; i < u->nitems; i++) {
		j = u->items[i].job;
		if (j->tag == NULL || j->source == NULL ||
		    (src = config_find_source(cfg, j->source)) == NULL ||
		    !src->verify_tag)
			continue;
		if (image_ref_parse(j->image, &ref, err, sizeof(err)) == -1) {
			image_ref_free(&ref);
			job_result_fail(res, JOB_ERR_REGISTRY, 1, "image %s: %s",
			    j->image, err);
			return -1;
		}
		for (try = 0;; try++) {
			digest = NULL;
			rc = registry_verify_tag(cfg, ref.registry,
			    ref.repository, j->tag, &digest, err, sizeof(err));
			if (rc != 1 || try >= 4)
				break;
			update_backoff(try);
		}
		image_ref_free(&ref);
		if (rc == 0 && j->digest != NULL && digest != NULL &&
		    strcmp(digest, j->digest) != 0)
			log_info("job %lld: %s:%s names %s now, not %s as the "
			    "event said (pushed again)", (long long)j->id,
			    j->image, j->tag, digest, j->digest);
		/* Recorded in the result; a digest policy pins it. */
		if (rc == 0) {
			free(u->items[i].verified_digest);
			u->items[i].verified_digest = digest;
		} else
			free(digest);
		if (rc != 0) {
			job_result_fail(res, JOB_ERR_REGISTRY, 0, "registry: %s",
			    err);
			return -1;
		}
	}
	return 0;
}

static struct update_file *
update_file_find(struct update_run *u, const char *path)
{
	size_t	 i;

	for (i = 0; i < u->nfiles; i++)
		if (strcmp(u->files[i].path, path) == 0)
			return &u->files[i];
	return NULL;
}

/* Is path (repository-relative) excluded by the app's patterns? */
static int
update_excluded(const struct config_app *app, const char *path)
{
	const char	*rel = path, *base;
	size_t		 i, n;
	const char	*dir = app->path;

	while (dir[0] == '.' && dir[1] == '/')
		dir += 2;
	n = strlen(dir);
	while (n > 0 && dir[n - 1] == '/')
		n--;
	if (strcmp(dir, ".") != 0 && n > 0 && strncmp(path, dir, n) == 0 &&
	    path[n] == '/')
		rel = path + n + 1;
	base = strrchr(rel, '/') != NULL ? strrchr(rel, '/') + 1 : rel;
	/* As sync reads them: relative to the app path; a pattern without
	 * a slash also matches the file name in any folder. */
	for (i = 0; i < app->nexclude; i++)
		if (fnmatch(app->exclude[i], rel, FNM_PATHNAME) == 0 ||
		    (strchr(app->exclude[i], '/') == NULL &&
		    fnmatch(app->exclude[i], base, 0) == 0))
			return 1;
	return 0;
}

/* git_repo_read_files callback: apply the current item to one file. */
static int
update_file_cb(const char *path, const char *data, size_t len, void *arg)
{
	struct update_run	*u = arg;
	struct update_item	*it = u->cur;
	struct update_file	*f;
	struct manifest_target	 t;
	struct manifest_result	 r;
	char			 err[512];

	if (update_excluded(it->app, path))
		return 0;
	if ((f = update_file_find(u, path)) != NULL) {
		data = f->data;
		len = f->len;
	}
	if (data == NULL) {
		err[0] = '\0';
		snprintf(err, sizeof(err), "%s:1:1: file larger than %d bytes",
		    path, MANIFEST_MAX_BYTES);
		goto bad;
	}
	memset(&t, 0, sizeof(t));
	t.image = it->job->image;
	t.marker = it->marker;
	t.tag = it->job->tag;
	t.digest = it->job->digest;
	/* A digest-pinning policy pins what the registry confirmed when the
	 * event carried no digest (Docker Hub, Quay). */
	if (t.digest == NULL && it->policy != NULL &&
	    it->policy->kind == CONFIG_POLICY_DIGEST)
		t.digest = it->verified_digest;
	if (it->policy != NULL && it->job->tag != NULL) {
		t.newer = update_newer_cb;
		t.arg = (void *)it->policy;
	}
	if (manifest_update(path, data, len, &t, &r, err, sizeof(err)) == -1)
		goto bad;
	it->found += r.found;
	it->changed += r.changed;
	it->already += r.already;
	it->skipped += r.skipped;
	it->unsupported += r.unsupported;
	if (it->old == NULL && r.old_tag != NULL)
		it->old = xstrdup(r.old_tag);
	if (it->note == NULL && r.note != NULL)
		it->note = xstrdup(r.note);
	if (r.out != NULL) {
		if (f == NULL) {
			u->files = xreallocarray(u->files, u->nfiles + 1,
			    sizeof(*u->files));
			f = &u->files[u->nfiles++];
			f->path = xstrdup(path);
			f->data = NULL;
		}
		free(f->data);
		f->data = r.out;
		f->len = r.outlen;
		f->changed = 1;
		r.out = NULL;
	}
	manifest_result_free(&r);
	return 0;
bad:
	/* Left alone; reported.  Same error from two items counts once. */
	if (u->nerrors < 50) {
		size_t i;

		for (i = 0; i < u->nerrors; i++)
			if (strcmp(u->errors[i], err) == 0)
				return 0;
		u->errors = xreallocarray(u->errors, u->nerrors + 1,
		    sizeof(*u->errors));
		u->errors[u->nerrors++] = xstrdup(err);
	}
	return 0;
}

/* "{{name}}" substitution for the commit message template. */
static void
update_render(struct buf *b, const char *tmpl, const struct update_item *it)
{
	const char	*p = tmpl, *open, *close, *val;
	char		 name[32], id[32];
	size_t		 n;

	while ((open = strstr(p, "{{")) != NULL &&
	    (close = strstr(open + 2, "}}")) != NULL) {
		buf_add(b, p, (size_t)(open - p));
		open += 2;
		while (*open == ' ')
			open++;
		n = (size_t)(close - open);
		while (n > 0 && open[n - 1] == ' ')
			n--;
		snprintf(name, sizeof(name), "%.*s", (int)n, open);
		snprintf(id, sizeof(id), "%lld", (long long)it->job->id);
		if (strcmp(name, "app") == 0)
			val = it->app->name;
		else if (strcmp(name, "image") == 0)
			val = it->image_short;
		else if (strcmp(name, "repository") == 0)
			val = it->job->image;
		else if (strcmp(name, "old") == 0)
			val = it->old != NULL ? it->old : "(none)";
		else if (strcmp(name, "new") == 0 || strcmp(name, "tag") == 0)
			val = it->job->tag != NULL ? it->job->tag :
			    it->job->digest;
		else if (strcmp(name, "digest") == 0)
			val = it->job->digest != NULL ? it->job->digest : "";
		else if (strcmp(name, "repo") == 0)
			val = it->app->repo;
		else if (strcmp(name, "job") == 0)
			val = id;
		else
			val = "";
		buf_addstr(b, val);
		p = close + 2;
	}
	buf_addstr(b, p);
}

/* The commit message: one subject per changed item, then the trailers. */
static char *
update_message(const struct update_run *u)
{
	const char	*tmpl = u->repo->commit_message != NULL ?
			    u->repo->commit_message :
			    u->cfg->git.commit_message != NULL ?
			    u->cfg->git.commit_message : UPDATE_DEFAULT_MESSAGE;
	struct buf	 b;
	size_t		 i, nchanged = 0;

	buf_init(&b, 0);
	for (i = 0; i < u->nitems; i++)
		if (u->items[i].changed > 0)
			nchanged++;
	if (nchanged > 1)
		buf_printf(&b, "deploy: %zu image updates\n\n", nchanged);
	for (i = 0; i < u->nitems; i++) {
		if (u->items[i].changed == 0)
			continue;
		if (nchanged > 1)
			buf_addstr(&b, "- ");
		update_render(&b, tmpl, &u->items[i]);
		buf_addstr(&b, "\n");
	}
	buf_addstr(&b, "\n");
	for (i = 0; i < u->nitems; i++)
		buf_printf(&b, "Gitopsd-Job: %lld\n",
		    (long long)u->items[i].job->id);
	for (i = 0; i < u->nitems; i++)
		if (u->items[i].job->delivery != NULL)
			buf_printf(&b, "Gitopsd-Event: %s\n",
			    u->items[i].job->delivery);
	return buf_steal(&b, NULL);
}

/* Does an app use the changed files (same repo, path over a file)? */
static int
update_app_touched(const struct config_app *app, const struct update_run *u)
{
	const char	*dir = app->path;
	size_t		 i, n;

	while (dir[0] == '.' && dir[1] == '/')
		dir += 2;
	n = strlen(dir);
	while (n > 0 && dir[n - 1] == '/')
		n--;
	if (strcmp(dir, ".") == 0 || n == 0)
		return 1;
	for (i = 0; i < u->nfiles; i++)
		if (u->files[i].changed && strncmp(u->files[i].path, dir, n) ==
		    0 && u->files[i].path[n] == '/')
			return 1;
	return 0;
}

static char *
update_detail(const struct update_run *u, const char *commit,
    const char *branch, int retries, const char *summary)
{
	cJSON	*o = cJSON_CreateObject(), *files, *items, *it, *errs;
	char	*s;
	size_t	 i;

	cJSON_AddItemToObject(o, "commit", commit != NULL ?
	    cJSON_CreateString(commit) : cJSON_CreateNull());
	files = cJSON_AddArrayToObject(o, "files");
	for (i = 0; i < u->nfiles; i++)
		if (u->files[i].changed)
			cJSON_AddItemToArray(files,
			    cJSON_CreateString(u->files[i].path));
	if (u->nitems > 0) {
		const char *old = u->items[0].base_old != NULL ?
		    u->items[0].base_old : u->items[0].old;

		cJSON_AddItemToObject(o, "old", old != NULL ?
		    cJSON_CreateString(old) : cJSON_CreateNull());
		cJSON_AddStringToObject(o, "new", u->items[0].job->tag != NULL ?
		    u->items[0].job->tag : u->items[0].job->digest);
	}
	cJSON_AddStringToObject(o, "branch", branch);
	cJSON_AddNumberToObject(o, "push_retries", retries);
	if (summary != NULL)
		cJSON_AddStringToObject(o, "result", summary);
	items = cJSON_AddArrayToObject(o, "images");
	for (i = 0; i < u->nitems; i++) {
		const struct update_item *x = &u->items[i];

		it = cJSON_CreateObject();
		cJSON_AddNumberToObject(it, "job", (double)x->job->id);
		cJSON_AddStringToObject(it, "app", x->app->name);
		cJSON_AddStringToObject(it, "image", x->job->image);
		if (x->base_old != NULL || x->old != NULL)
			cJSON_AddStringToObject(it, "old", x->base_old != NULL ?
			    x->base_old : x->old);
		if (x->job->tag != NULL)
			cJSON_AddStringToObject(it, "new", x->job->tag);
		if (x->job->digest != NULL)
			cJSON_AddStringToObject(it, "digest", x->job->digest);
		if (x->verified_digest != NULL)
			cJSON_AddStringToObject(it, "verified_digest",
			    x->verified_digest);
		cJSON_AddNumberToObject(it, "found", x->found);
		cJSON_AddNumberToObject(it, "changed", x->changed);
		cJSON_AddNumberToObject(it, "already", x->already);
		cJSON_AddNumberToObject(it, "not_newer", x->skipped);
		if (x->unsupported > 0)
			cJSON_AddNumberToObject(it, "unsupported",
			    x->unsupported);
		if (x->note != NULL)
			cJSON_AddStringToObject(it, "note", x->note);
		cJSON_AddItemToArray(items, it);
	}
	if (u->pr.url != NULL) {
		cJSON_AddStringToObject(o, "pr_url", u->pr.url);
		cJSON_AddNumberToObject(o, "pr_number", (double)u->pr.number);
		cJSON_AddStringToObject(o, "pr", u->pr_state != NULL ?
		    u->pr_state : u->pr.created ? "opened" : "updated");
	}
	if (u->nstale > 0) {
		errs = cJSON_AddArrayToObject(o, "pr_closed");
		for (i = 0; i < u->nstale; i++)
			cJSON_AddItemToArray(errs,
			    cJSON_CreateString(u->stale[i]));
	}
	if (u->nerrors > 0) {
		errs = cJSON_AddArrayToObject(o, "errors");
		for (i = 0; i < u->nerrors; i++)
			cJSON_AddItemToArray(errs,
			    cJSON_CreateString(u->errors[i]));
	}
	s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return s != NULL ? s : xstrdup("{}");
}

/* Jittered exponential backoff between push attempts. */
static void
update_backoff(int attempt)
{
	double		 ms = 100.0 * (double)(1 << (attempt < 6 ? attempt : 6));
	struct timespec	 ts;

	ms *= 0.5 + util_random_unit();
	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)((ms - (double)ts.tv_sec * 1000) * 1e6);
	nanosleep(&ts, NULL);
}

static enum job_error_kind
update_git_kind(enum git_repo_status st)
{
	return st == GIT_REPO_AUTH ? JOB_ERR_GIT_AUTH : JOB_ERR_GIT;
}

static void
update_no_branch(const struct update_run *u, struct job_result *res)
{
	job_result_fail(res, JOB_ERR_GIT, 1, "repo %s: branch %s not found on "
	    "the remote", u->repo->name, u->repo->branch);
}

/* Read and edit every item's files at head: n files changed, found refs. */
static int
update_apply(struct update_run *u, struct git_repo *g, const char *head,
    size_t *nchanged, int *found, struct job_result *res)
{
	char	 err[1024];
	size_t	 i;

	update_files_reset(u);
	for (i = 0; i < u->nitems; i++) {
		u->items[i].found = u->items[i].changed = 0;
		u->items[i].already = u->items[i].skipped = 0;
		u->items[i].unsupported = 0;
		free(u->items[i].old);
		u->items[i].old = NULL;
		free(u->items[i].note);
		u->items[i].note = NULL;
	}
	for (i = 0; i < u->nitems; i++) {
		u->cur = &u->items[i];
		if (git_repo_read_files(g, head, u->items[i].app->path,
		    MANIFEST_MAX_BYTES, update_file_cb, u, err,
		    sizeof(err)) != 0) {
			job_result_fail(res, JOB_ERR_GIT, 0, "repo %s: %s",
			    u->repo->name, err);
			return -1;
		}
	}
	for (i = 0, *nchanged = 0; i < u->nfiles; i++)
		if (u->files[i].changed)
			(*nchanged)++;
	for (i = 0, *found = 0; i < u->nitems; i++)
		*found += u->items[i].found;
	return 0;
}

/* Nothing to commit: succeed (already set, not newer) or fail (not found,
 * unparsable files).  Always ends the job. */
static void
update_no_change(struct update_run *u, int found, const char *branch,
    int retries, struct job_result *res)
{
	if (found == 0 && u->nerrors > 0) {
		job_result_fail(res, JOB_ERR_MANIFEST, 1, "%s", u->errors[0]);
		res->detail = update_detail(u, NULL, branch, retries, "error");
		return;
	}
	if (found == 0) {
		job_result_fail(res, JOB_ERR_MANIFEST, 1, "image %s is not "
		    "referenced under %s of repo %s", u->items[0].job->image,
		    u->items[0].app->path, u->repo->name);
		res->detail = update_detail(u, NULL, branch, retries,
		    "not found");
		return;
	}
	res->ok = 1;
	res->detail = update_detail(u, NULL, branch, retries,
	    u->items[0].skipped > 0 ? "not newer: no change" :
	    "already set: no change");
}

/*
 * A push_branch template names one branch per update.  Its values come
 * from the first item; short_sha is a short hash of every item's image,
 * tag and digest (as Argo CD Image Updater's {{.SHA256}}), so the same
 * update always names the same branch and a retry finds it again.
 */
static char *
update_branch_name(const struct update_run *u, int pattern, char *err,
    size_t errlen)
{
	struct pr_branch_vars	 v;
	const struct job	*j;
	struct buf		 b;
	char			 hex[65];
	size_t			 i;

	buf_init(&b, 0);
	for (i = 0; i < u->nitems; i++) {
		j = u->items[i].job;
		buf_printf(&b, "%s %s %s %s\n", u->items[i].app->name, j->image,
		    j->tag != NULL ? j->tag : "", j->digest != NULL ?
		    j->digest : "");
	}
	util_sha256_hex(b.data, b.len, hex);
	buf_free(&b);
	hex[7] = '\0';
	j = u->items[0].job;
	v.app = u->items[0].app->name;
	v.image = u->items[0].image_short;
	v.tag = j->tag != NULL ? j->tag : hex;
	v.short_sha = hex;
	return pattern ? pr_branch_pattern(u->repo->push_branch, &v, err,
	    errlen) : pr_branch_expand(u->repo->push_branch, &v, err, errlen);
}

/* A Git host API failure: auth or not, permanent or not, Retry-After. */
static void
update_pr_fail(const struct update_run *u, const char *err,
    struct job_result *res)
{
	job_result_fail(res, u->pr.auth ? JOB_ERR_GIT_AUTH : JOB_ERR_GIT,
	    u->pr.permanent, "repo %s: %s", u->repo->name, err);
	res->retry_after_s = u->pr.retry_after_s;
}

/* Open or update the pull request for branch; fails res on error. */
static int
update_pull_request(struct update_run *u, const char *branch,
    struct job_result *res)
{
	struct pr_change	*ch;
	const struct update_item *x;
	char			 err[1024];
	size_t			 i, n = 0;
	int			 rc;

	ch = xcalloc(u->nitems, sizeof(*ch));
	for (i = 0; i < u->nitems; i++) {
		x = &u->items[i];
		ch[n].app = x->app->name;
		ch[n].image = x->image_short;
		ch[n].repository = x->job->image;
		ch[n].old = x->base_old != NULL ? x->base_old : x->old;
		ch[n].new_tag = x->job->tag != NULL ? x->job->tag :
		    x->job->digest;
		ch[n].digest = x->job->digest != NULL ? x->job->digest :
		    x->verified_digest;
		ch[n].event = x->job->delivery;
		ch[n].job = (long long)x->job->id;
		n++;
	}
	rc = pr_ensure(u->repo, branch, u->repo->branch, ch, n, &u->pr, err,
	    sizeof(err));
	free(ch);
	if (rc == -1)
		update_pr_fail(u, err, res);
	return rc;
}

/* A branch of the same template around another tag, e.g.
 * "gitopsd/web-" + "1.2.0" + "": stale when the new tag is newer by the
 * image's policy (so "gitopsd/web-worker-1.0" is not web's). */
struct update_stale {
	const char		*prefix, *suffix, *tag;
	const struct config_policy *policy;
};

static int
update_stale_cb(const char *branch, void *arg)
{
	const struct update_stale	*s = arg;
	size_t				 n = strlen(branch);
	size_t				 pl = strlen(s->prefix);
	size_t				 sl = strlen(s->suffix);
	char				*old;
	int				 stale;

	if (n <= pl + sl || strncmp(branch, s->prefix, pl) != 0 ||
	    strcmp(branch + n - sl, s->suffix) != 0)
		return 0;
	old = xstrndup(branch + pl, n - pl - sl);
	/* policy_newer counts a tag it cannot order as older: only tags
	 * the policy accepts are this image's. */
	stale = update_valid_tag(old) && strcmp(old, s->tag) != 0 &&
	    policy_accepts(s->policy, old) == 1 &&
	    policy_newer(s->policy, old, s->tag) == 1;
	free(old);
	return stale;
}

/*
 * close_stale: the open PRs of this update's older tags are closed once
 * the newer one is open.  Only for a template naming {{tag}} once and no
 * {{short_sha}} (the tag must be read back from a branch name).  A
 * failure here is logged, not fatal: the new PR stands and the next
 * update tries again.
 */
static void
update_close_stale(struct update_run *u, const struct job *job,
    const char *branch)
{
	struct pr_outcome	 o;
	struct update_stale	 s;
	char			 err[1024], *pattern, *star;
	size_t			 i;

	memset(&o, 0, sizeof(o));
	if (u->items[0].policy == NULL || u->items[0].job->tag == NULL ||
	    strstr(u->repo->push_branch, "short_sha") != NULL ||
	    (pattern = update_branch_name(u, 1, err, sizeof(err))) == NULL)
		return;
	if ((star = strchr(pattern, '*')) == NULL ||
	    strchr(star + 1, '*') != NULL) {
		free(pattern);
		return;
	}
	*star = '\0';
	s.prefix = pattern;
	s.suffix = star + 1;
	s.tag = u->items[0].job->tag;
	s.policy = u->items[0].policy;
	if (pr_close_stale(u->repo, branch, update_stale_cb, &s, &u->stale,
	    &u->nstale, &o, err, sizeof(err)) == -1)
		log_warnx("job %lld: repo %s: older pull requests left open: "
		    "%s", (long long)job->id, u->repo->name, err);
	for (i = 0; i < u->nstale; i++)
		log_info("job %lld: closed %s (superseded by %s)",
		    (long long)job->id, u->stale[i], branch);
	pr_outcome_free(&o);
	free(pattern);
}

static void
update_image_run(const struct config *cfg, struct job *job,
    struct job_result *res)
{
	struct update_run	 u;
	struct git_repo		*g = NULL;
	struct git_repo_change	*ch = NULL;
	enum git_repo_status	 st;
	const char		*branch, *author, *email;
	char			 head[41], commit[41], err[1024], *msg = NULL;
	char			 labels[256], esc[200], *per_update = NULL;
	int			 attempt, retries = 0, max_retries, found;
	int			 reused = 0, review;
	size_t			 i, n = 0;

	pthread_once(&update_metrics_once, update_metrics_init);
	memset(&u, 0, sizeof(u));
	u.cfg = cfg;
	if (update_items_build(cfg, job, &u, res) == -1 ||
	    update_verify_tags(cfg, &u, res) == -1)
		goto out;
	/* Defaults (branch, author, push_retries) are config.c's alone. */
	/* update_items_build sets repo or fails (it has 1 + nmerged items). */
	// NOLINTNEXTLINE(clang-analyzer-core.NullDereference)
	branch = u.repo->push_branch != NULL ? u.repo->push_branch :
	    u.repo->branch;
	author = u.repo->author_name;
	email = u.repo->author_email;
	max_retries = cfg->git.push_retries;
	metrics_label_escape(u.repo->name, esc, sizeof(esc));
	snprintf(labels, sizeof(labels), "repo=\"%s\"", esc);
	/* The repository's series exists (at 0) from its first update on. */
	metrics_counter_add("gitopsd_git_push_retries_total", labels, 0);

	if ((st = git_repo_open(cfg, u.repo, &g, err, sizeof(err))) !=
	    GIT_REPO_OK) {
		job_result_fail(res, update_git_kind(st), st == GIT_REPO_AUTH,
		    "repo %s: %s", u.repo->name, err);
		goto out;
	}
	/* A branch for review: per update (a template) or for a PR. */
	review = pr_is_template(u.repo->push_branch) ||
	    u.repo->pull_request.provider != CONFIG_PR_NONE;
	if (review) {
		/* Measured against the followed branch: nothing to propose
		 * when it has the tag (a merged PR), and the old tags the
		 * pull request shows. */
		if (git_repo_head(g, head) == -1) {
			update_no_branch(&u, res);
			goto out;
		}
		if (update_apply(&u, g, head, &n, &found, res) == -1)
			goto out;
		if (n == 0) {
			update_no_change(&u, found, u.repo->branch, retries,
			    res);
			goto out;
		}
		for (i = 0; i < u.nitems; i++)
			u.items[i].base_old = u.items[i].old != NULL ?
			    xstrdup(u.items[i].old) : NULL;
	}
	if (review && pr_is_template(u.repo->push_branch)) {
		if ((per_update = update_branch_name(&u, 0, err,
		    sizeof(err))) == NULL) {
			job_result_fail(res, JOB_ERR_CONFIG, 1, "repo %s: %s",
			    u.repo->name, err);
			goto out;
		}
		branch = per_update;
		/* A PR of this very update closed without merge: a person
		 * said no; a newer tag makes another branch and PR. */
		if (u.repo->pull_request.provider != CONFIG_PR_NONE) {
			int	declined = pr_declined(u.repo, branch, &u.pr, err,
				    sizeof(err));

			if (declined == -1) {
				update_pr_fail(&u, err, res);
				goto out;
			}
			if (declined == 1) {
				u.pr_state = "declined";
				res->ok = 1;
				res->detail = update_detail(&u, NULL, branch,
				    retries, "declined: not proposed again");
				log_info("job %lld: %s was closed without "
				    "merge (%s); not proposed again",
				    (long long)job->id, branch, u.pr.url);
				goto out;
			}
		}
		if ((st = git_repo_fetch_branch(g, branch, err,
		    sizeof(err))) != GIT_REPO_OK) {
			job_result_fail(res, update_git_kind(st),
			    st == GIT_REPO_AUTH, "repo %s: %s", u.repo->name,
			    err);
			goto out;
		}
	}
	for (attempt = 0;; attempt++) {
		/* Build on push_branch when it exists (it may hold earlier
		 * updates, or this one from an earlier attempt), else on the
		 * branch. */
		if ((u.repo->push_branch == NULL || git_repo_head_of(g,
		    branch, head) == -1) && git_repo_head(g, head) == -1) {
			update_no_branch(&u, res);
			goto out;
		}
		if (update_apply(&u, g, head, &n, &found, res) == -1)
			goto out;
		if (n == 0 && review && found > 0) {
			/* This update's branch holds it already (a crash
			 * after the push, a retry, a duplicate event). */
			memcpy(commit, head, sizeof(commit));
			reused = 1;
			break;
		}
		if (n == 0) {
			update_no_change(&u, found, branch, retries, res);
			goto out;
		}
		ch = xreallocarray(NULL, n, sizeof(*ch));
		for (i = 0, n = 0; i < u.nfiles; i++) {
			if (!u.files[i].changed)
				continue;
			ch[n].path = u.files[i].path;
			ch[n].data = u.files[i].data;
			ch[n].len = u.files[i].len;
			n++;
		}
		free(msg);
		msg = update_message(&u);
		if (git_repo_commit(g, head, ch, n, author, email, msg, commit,
		    err, sizeof(err)) == -1) {
			job_result_fail(res, JOB_ERR_GIT, 0, "repo %s: %s",
			    u.repo->name, err);
			goto out;
		}
		free(ch);
		ch = NULL;
		st = git_repo_push(g, commit, branch, err, sizeof(err));
		if (st == GIT_REPO_OK)
			break;
		if (st != GIT_REPO_REJECTED) {
			job_result_fail(res, update_git_kind(st),
			    st == GIT_REPO_AUTH, "repo %s: %s", u.repo->name,
			    err);
			goto out;
		}
		if (attempt >= max_retries) {
			job_result_fail(res, JOB_ERR_GIT, 0, "repo %s: push "
			    "still rejected after %d retries: %s",
			    u.repo->name, retries, err);
			goto out;
		}
		retries++;
		metrics_counter_add("gitopsd_git_push_retries_total", labels, 1);
		log_info("job %lld: push to %s rejected (%s); fetching and "
		    "retrying (%d/%d)", (long long)job->id, u.repo->name, err,
		    retries, max_retries);
		update_backoff(attempt);
		st = per_update != NULL ? git_repo_fetch_branch(g, branch, err,
		    sizeof(err)) : git_repo_fetch(g, err, sizeof(err));
		if (st != GIT_REPO_OK) {
			job_result_fail(res, update_git_kind(st),
			    st == GIT_REPO_AUTH, "repo %s: %s", u.repo->name,
			    err);
			goto out;
		}
	}

	if (u.repo->pull_request.provider != CONFIG_PR_NONE &&
	    update_pull_request(&u, branch, res) == -1) {
		res->detail = update_detail(&u, commit, branch, retries,
		    reused ? "branch reused" : "pushed");
		goto out;
	}
	if (per_update != NULL && u.repo->pull_request.close_stale)
		update_close_stale(&u, job, branch);
	res->ok = 1;
	res->commit = reused ? NULL : xstrdup(commit);
	res->detail = update_detail(&u, commit, branch, retries,
	    reused ? "branch reused" : "pushed");
	res->object = u.pr.url != NULL ? xasprintf("repo %s branch %s, %s",
	    u.repo->name, branch, u.pr.url) :
	    xasprintf("repo %s branch %s", u.repo->name, branch);
	/* A commit on a separate push_branch is not what clusters track. */
	if (u.repo->push_branch == NULL || strcmp(branch,
	    u.repo->branch) == 0) {
		for (i = 0; i < cfg->napps; i++) {
			struct job_spec	 s;

			/* An app without a cluster lives in Git only. */
			if (strcmp(cfg->apps[i].repo, u.repo->name) != 0 ||
			    cfg->apps[i].cluster == NULL ||
			    !update_app_touched(&cfg->apps[i], &u))
				continue;
			memset(&s, 0, sizeof(s));
			s.kind = JOB_SYNC;
			s.app = cfg->apps[i].name;
			s.repo = u.repo->name;
			s.revision = commit;
			job_result_add_followup(res, &s);
		}
	}
	if (reused)
		log_info("job %lld: %s/%s already holds this update at %s; "
		    "no new commit", (long long)job->id, u.repo->name, branch,
		    commit);
	else
		log_info("job %lld: pushed %s to %s/%s (%zu files, %d retries)",
		    (long long)job->id, commit, u.repo->name, branch, n,
		    retries);
	if (u.pr.url != NULL)
		log_info("job %lld: pull request %s %s", (long long)job->id,
		    u.pr.url, u.pr.created ? "opened" : "updated");
out:
	free(ch);
	free(msg);
	free(per_update);
	pr_outcome_free(&u.pr);
	for (i = 0; i < u.nstale; i++)
		free(u.stale[i]);
	free(u.stale);
	git_repo_close(g);
	update_files_reset(&u);
	update_items_free(u.items, u.nitems);
}

const struct job_runner job_runner_update_image = {
	.kind = JOB_UPDATE_IMAGE,
	.run = update_image_run,
	.init = update_metrics_declare,
};
