/*
 * router_image.c: image events to update-image jobs.
 *
 * An app is concerned when one of its images names the event's
 * repository (registry and repository equal after normalizing, so
 * "nginx", "docker.io/library/nginx" and "index.docker.io/nginx" are one)
 * and that image's policy accepts the pushed tag.  Whether the tag is
 * newer than what the manifests hold is decided later by the update-image
 * job (policy_newer), because only it reads the manifests.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "handler.h"
#include "job.h"
#include "policy.h"
#include "router.h"
#include "util.h"

/* The app's image entry for ref, or NULL; *named says one had the repo. */
static const struct config_image *
router_image_find(const struct config_app *app, const struct image_ref *ref,
    const char *tag, int *named)
{
	struct image_ref	 have;
	char			 err[128];
	size_t			 i;
	int			 same;

	for (i = 0; i < app->nimages; i++) {
		if (image_ref_parse(app->images[i].repository, &have, err,
		    sizeof(err)) == -1)
			continue;	/* refused by config checks already */
		same = image_ref_same_repo(&have, ref);
		image_ref_free(&have);
		if (!same)
			continue;
		*named = 1;
		if (policy_accepts(&app->images[i].policy, tag))
			return &app->images[i];
	}
	return NULL;
}

size_t
router_route_image(const struct config *cfg, const struct hook_event *ev,
    struct job_spec **out, char *why, size_t whylen)
{
	struct image_ref	 ref;
	struct job_spec		*jobs;
	const struct config_app	*first_named = NULL;
	char			*repo = NULL, *name = NULL, err[128], *p;
	size_t			 i, n = 0, k, namelen;
	int			 named;

	*out = NULL;
	memset(&ref, 0, sizeof(ref));
	if (ev->kind != HOOK_EVENT_IMAGE || ev->repository == NULL ||
	    ev->tag == NULL) {
		snprintf(why, whylen, "not an image push");
		return 0;
	}
	/* Registries are case-insensitive about owners (GHCR namespaces). */
	repo = xstrdup(ev->repository);
	for (p = repo; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	if (image_ref_from_parts(ev->registry, repo, &ref, err,
	    sizeof(err)) == -1) {
		snprintf(why, whylen, "bad image name: %s", err);
		goto out;
	}
	name = image_ref_name(&ref);

	for (i = 0; i < cfg->napps; i++) {
		named = 0;
		if (router_image_find(&cfg->apps[i], &ref, ev->tag,
		    &named) != NULL)
			n++;
		else if (named && first_named == NULL)
			first_named = &cfg->apps[i];
	}
	if (n == 0) {
		if (first_named != NULL)
			snprintf(why, whylen, "tag %s of %s not accepted by the "
			    "image policy of app %s", ev->tag, name,
			    first_named->name);
		else
			snprintf(why, whylen, "no app uses image %s", name);
		goto out;
	}

	/*
	 * One allocation holds the jobs and, after them, the normalized
	 * image name they point to: the caller's free(*out) frees both.
	 */
	namelen = strlen(name) + 1;
	jobs = xmalloc(n * sizeof(*jobs) + namelen);
	p = (char *)(jobs + n);
	memcpy(p, name, namelen);
	for (i = 0, k = 0; i < cfg->napps && k < n; i++) {
		named = 0;
		if (router_image_find(&cfg->apps[i], &ref, ev->tag,
		    &named) == NULL)
			continue;
		memset(&jobs[k], 0, sizeof(jobs[k]));
		jobs[k].kind = JOB_UPDATE_IMAGE;
		jobs[k].app = cfg->apps[i].name;
		jobs[k].repo = cfg->apps[i].repo;
		jobs[k].image = p;
		jobs[k].tag = ev->tag;
		jobs[k].digest = ev->digest;
		k++;
	}
	*out = jobs;
out:
	free(repo);
	free(name);
	image_ref_free(&ref);
	return n;
}
