/*
 * bitbucket.c: Bitbucket Cloud (repo:push) and Bitbucket Data Center /
 * Server (repo:refs_changed) webhooks.
 *
 * verify: X-Hub-Signature "sha256=<hex>" HMAC-SHA256 of the raw body.  The
 * header has GitHub's SHA-1 name but carries SHA-256 here; hooks without a
 * secret send nothing and are refused.
 * parse: one push event per changed ref (deleted refs skipped).  A push of
 * several refs makes several events whose delivery ids are the request id
 * suffixed with "#<index of the change>", stable across redeliveries.
 * Neither flavour lists changed files, so events carry no paths.  Data
 * Center events also carry the project key and slug, the only names of
 * the repository when the payload has no repository.links.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "githost.h"
#include "handler.h"
#include "hookjson.h"
#include "util.h"

static const char *const bitbucket_delivery_headers[] = {
	"X-Request-UUID", "X-Request-Id", NULL
};

static const char bitbucket_zero[] = "0000000000000000000000000000000000000000";

static int
bitbucket_verify(const struct hook_request *req,
    const struct config_source *src, char *why, size_t whylen)
{
	char	 mt[128];

	if (githost_check_sig(src, hook_request_header(req, "X-Hub-Signature"),
	    "sha256=", 0, req->body, req->body_len, why, whylen) == -1)
		return 401;
	if (hook_media_type(req, mt, sizeof(mt)) == -1 ||
	    strcmp(mt, "application/json") != 0) {
		snprintf(why, whylen, "unsupported content type");
		return 415;
	}
	return 0;
}

/* Fields every event of one request shares. */
struct bitbucket_repo {
	char		*name;
	char		*clone;
	char		*ssh;
	const char	*web;
	const char	*pusher;
	char		*delivery;
	const char	*project;	/* Data Center: project key */
	const char	*slug;		/* Data Center: repository slug */
	size_t		 nchanges;
};

static void
bitbucket_repo_free(struct bitbucket_repo *r)
{
	free(r->name);
	free(r->clone);
	free(r->ssh);
	free(r->delivery);
}

/* Add one event; the caller filled ref/before/after. */
static void
bitbucket_add(struct hook_result *res, struct hook_event *ev,
    const struct bitbucket_repo *r, size_t idx)
{
	ev->repo_name = xstrdup(r->name);
	ev->clone_url = hookjson_dup(r->clone);
	ev->scm_project = hookjson_dup(r->project);
	ev->scm_slug = hookjson_dup(r->slug);
	ev->path_nocase = 1;	/* Bitbucket ignores case in repo paths */
	ev->ssh_url = hookjson_dup(r->ssh);
	ev->web_url = hookjson_dup(r->web);
	ev->pusher = hookjson_dup(r->pusher);
	if (r->nchanges > 1)
		ev->delivery = xasprintf("%s#%zu", r->delivery, idx);
	else
		ev->delivery = xstrdup(r->delivery);
	githost_summarize(ev, -1);
	*hook_result_add(res, HOOK_EVENT_PUSH) = *ev;
	memset(ev, 0, sizeof(*ev));
}

/* Bitbucket Cloud: push.changes[].{old,new}. */
static void
bitbucket_parse_cloud(const cJSON *root, struct bitbucket_repo *r,
    struct hook_result *res)
{
	struct hook_event	 ev;
	const cJSON		*changes, *c, *nw;
	const char		*type, *name, *host, *full;
	char			 what[64];
	size_t			 i = 0;

	memset(&ev, 0, sizeof(ev));
	if (hookjson_str_nonempty(root, "repository.full_name", HOOKJSON_REQUIRED,
	    &full, res) == -1 ||
	    hookjson_str_nonempty(root, "repository.links.html.href", 0, &r->web,
	    res) == -1 ||
	    hookjson_str_nonempty(root, "actor.nickname", 0, &r->pusher, res) == -1 ||
	    hookjson_array(root, "push.changes", HOOKJSON_REQUIRED, &changes,
	    res) == -1)
		goto out;
	if (r->pusher == NULL && hookjson_str_nonempty(root, "actor.display_name",
	    0, &r->pusher, res) == -1)
		goto out;
	r->name = xstrdup(full);
	/* Cloud payloads carry no clone URLs; Bitbucket's are the web URL
	 * plus ".git" and git@<host>:<full_name>.git. */
	if (r->web != NULL && strncmp(r->web, "https://", 8) == 0) {
		host = r->web + 8;
		r->clone = xasprintf("%s.git", r->web);
		r->ssh = xasprintf("git@%.*s:%s.git", (int)strcspn(host, "/"),
		    host, r->name);
	} else {
		r->clone = xasprintf("https://bitbucket.org/%s.git", r->name);
		r->ssh = xasprintf("git@bitbucket.org:%s.git", r->name);
	}
	r->nchanges = (size_t)cJSON_GetArraySize(changes);
	cJSON_ArrayForEach(c, changes) {
		memset(&ev, 0, sizeof(ev));
		ev.kind = HOOK_EVENT_PUSH;
		snprintf(what, sizeof(what), "push.changes[%zu]", i);
		if (!cJSON_IsObject(c)) {
			hook_result_setf(res, 400, "field '%s' must be an "
			    "object", what);
			goto out;
		}
		nw = cJSON_GetObjectItemCaseSensitive(c, "new");
		if (nw == NULL || cJSON_IsNull(nw)) {
			i++;		/* a deleted branch or tag */
			continue;
		}
		if (hookjson_str_nonempty(c, "new.type", HOOKJSON_REQUIRED, &type,
		    res) == -1 ||
		    hookjson_str_nonempty(c, "new.name", HOOKJSON_REQUIRED, &name,
		    res) == -1 ||
		    hookjson_commit(c, "new.target.hash", HOOKJSON_REQUIRED, &ev.after,
		    res) == -1 ||
		    hookjson_commit(c, "old.target.hash", 0, &ev.before, res) == -1) {
			/* Name the change, not just the field inside it. */
			char tmp[sizeof(res->reason)];
			memcpy(tmp, res->reason, sizeof(tmp));
			hook_result_setf(res, 400, "%s: %s", what, tmp);
			goto out;
		}
		if (strcmp(type, "branch") == 0)
			ev.ref = xasprintf("refs/heads/%s", name);
		else if (strcmp(type, "tag") == 0 ||
		    strcmp(type, "annotated_tag") == 0)
			ev.ref = xasprintf("refs/tags/%s", name);
		else {
			i++;
			hook_event_free(&ev);
			continue;
		}
		if (ev.before == NULL)
			ev.before = xstrdup(bitbucket_zero);
		(void)githost_split_ref(&ev);
		bitbucket_add(res, &ev, r, i);
		i++;
	}
out:
	hook_event_free(&ev);
}

/* Bitbucket Data Center: changes[].{ref,fromHash,toHash,type}. */
static void
bitbucket_parse_dc(const cJSON *root, struct bitbucket_repo *r,
    struct hook_result *res)
{
	struct hook_event	 ev;
	const cJSON		*changes, *clones = NULL, *c, *l;
	const char		*slug, *key, *ref, *type, *href, *lname;
	char			 what[64];
	size_t			 i = 0;

	memset(&ev, 0, sizeof(ev));
	if (hookjson_str_nonempty(root, "repository.slug", HOOKJSON_REQUIRED, &slug,
	    res) == -1 ||
	    hookjson_str_nonempty(root, "repository.project.key", HOOKJSON_REQUIRED,
	    &key, res) == -1 ||
	    hookjson_array(root, "repository.links.clone", 0, &clones,
	    res) == -1 ||
	    hookjson_str_nonempty(root, "actor.name", 0, &r->pusher, res) == -1 ||
	    hookjson_array(root, "changes", HOOKJSON_REQUIRED, &changes, res) == -1)
		goto out;
	cJSON_ArrayForEach(l, clones) {
		if (hookjson_str_nonempty(l, "href", HOOKJSON_REQUIRED, &href,
		    res) == -1 ||
		    hookjson_str_nonempty(l, "name", 0, &lname, res) == -1) {
			hook_result_setf(res, 400, "field "
			    "'repository.links.clone' must hold {href, name}");
			goto out;
		}
		if (lname != NULL && strcmp(lname, "ssh") == 0) {
			if (r->ssh == NULL)
				r->ssh = xstrdup(href);
		} else if (r->clone == NULL)
			r->clone = xstrdup(href);
	}
	if (r->clone == NULL && r->ssh != NULL)
		r->clone = xstrdup(r->ssh);
	/*
	 * Without links (Atlassian's documented example, and real servers)
	 * the router matches project and slug against the repo URL instead.
	 */
	r->project = key;
	r->slug = slug;
	/* The name the UI shows: PROJECT/repo. */
	r->name = xasprintf("%s/%s", key, slug);
	r->nchanges = (size_t)cJSON_GetArraySize(changes);
	cJSON_ArrayForEach(c, changes) {
		memset(&ev, 0, sizeof(ev));
		ev.kind = HOOK_EVENT_PUSH;
		snprintf(what, sizeof(what), "changes[%zu]", i);
		if (!cJSON_IsObject(c)) {
			hook_result_setf(res, 400, "field '%s' must be an "
			    "object", what);
			goto out;
		}
		if (hookjson_str_nonempty(c, "ref.id", HOOKJSON_REQUIRED, &ref,
		    res) == -1 ||
		    hookjson_str_nonempty(c, "type", HOOKJSON_REQUIRED, &type,
		    res) == -1 ||
		    hookjson_commit(c, "fromHash", HOOKJSON_REQUIRED, &ev.before,
		    res) == -1 ||
		    hookjson_commit(c, "toHash", HOOKJSON_REQUIRED, &ev.after,
		    res) == -1) {
			char tmp[sizeof(res->reason)];
			memcpy(tmp, res->reason, sizeof(tmp));
			hook_result_setf(res, 400, "%s: %s", what, tmp);
			goto out;
		}
		ev.ref = xstrdup(ref);
		if (strcmp(type, "DELETE") == 0 ||
		    hookjson_commit_is_zero(ev.after) ||
		    githost_split_ref(&ev) == -1) {
			hook_event_free(&ev);
			i++;
			continue;
		}
		bitbucket_add(res, &ev, r, i);
		i++;
	}
out:
	hook_event_free(&ev);
}

static void
bitbucket_parse(const struct hook_request *req,
    const struct config_source *src, struct hook_result *res)
{
	struct bitbucket_repo	 r;
	const char		*key;
	cJSON			*root;

	(void)src;
	memset(&r, 0, sizeof(r));
	if ((key = hook_request_header(req, "X-Event-Key")) == NULL) {
		hook_result_setf(res, 400, "missing X-Event-Key header");
		return;
	}
	if (strcmp(key, "diagnostics:ping") == 0) {
		hook_result_setf(res, 200, "ping");
		return;
	}
	if (strcmp(key, "repo:push") != 0 && strcmp(key, "repo:refs_changed") != 0) {
		hook_result_setf(res, 200, "ignored: event %.64s", key);
		return;
	}
	if ((root = hookjson_parse_object((const char *)req->body, req->body_len,
	    res)) == NULL)
		return;
	if ((r.delivery = githost_delivery(req, bitbucket_delivery_headers,
	    res)) == NULL)
		goto out;
	if (strcmp(key, "repo:push") == 0)
		bitbucket_parse_cloud(root, &r, res);
	else
		bitbucket_parse_dc(root, &r, res);
	if (res->status != 0) {
		/* Rejected whole: no event of a malformed request survives. */
		hook_result_free(res);
	} else if (res->nevents == 0)
		hook_result_setf(res, 200, "ignored: no branch or tag updated");
out:
	bitbucket_repo_free(&r);
	handler_json_delete(root);
}

const struct handler handler_bitbucket = {
	.type = "bitbucket",
	.verify = bitbucket_verify,
	.parse = bitbucket_parse,
};
