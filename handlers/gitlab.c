/*
 * gitlab.c: GitLab project, group and system hooks.
 *
 * verify: X-Gitlab-Token equals one of the source's secrets (constant
 * time; GitLab sends the token itself, there is no HMAC).
 * parse: "Push Hook", "Tag Push Hook" and "System Hook" requests are read
 * by the body's object_kind/event_name, because a system hook says
 * "System Hook" for every kind of event.  Tag pushes deploy checkout_sha
 * (the commit an annotated tag points at); deleted refs are ignored.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "githost.h"
#include "handler.h"
#include "hookjson.h"
#include "util.h"

static const char *const gitlab_delivery_headers[] = {
	"Idempotency-Key", "X-Gitlab-Event-UUID", NULL
};

static int
gitlab_verify(const struct hook_request *req, const struct config_source *src,
    char *why, size_t whylen)
{
	char		 mt[128];
	const char	*tok;

	if ((tok = hook_request_header(req, "X-Gitlab-Token")) == NULL) {
		snprintf(why, whylen, "missing X-Gitlab-Token");
		return 401;
	}
	if (src->nsecrets == 0 || handler_check_token(src, tok) != 0) {
		snprintf(why, whylen, "token mismatch");
		return 401;
	}
	if (hook_media_type(req, mt, sizeof(mt)) == -1 ||
	    strcmp(mt, "application/json") != 0) {
		snprintf(why, whylen, "unsupported content type");
		return 415;
	}
	return 0;
}

/* A project field, falling back to the deprecated repository object. */
static int
gitlab_url(const cJSON *root, const char *pkey, const char *rkey,
    const char **out, struct hook_result *res)
{
	char	 path[64];

	snprintf(path, sizeof(path), "project.%s", pkey);
	if (hookjson_str_nonempty(root, path, 0, out, res) == -1)
		return -1;
	if (*out != NULL)
		return 0;
	snprintf(path, sizeof(path), "repository.%s", rkey);
	return hookjson_str_nonempty(root, path, 0, out, res);
}

static void
gitlab_parse_push(const struct hook_request *req, const cJSON *root,
    int tagpush, struct hook_result *res)
{
	struct hook_event	 ev;
	const cJSON		*commits;
	const char		*ref, *name, *clone, *ssh, *web, *user;
	char			*checkout = NULL;
	int64_t			 total;
	long			 n;
	int			 listed;

	memset(&ev, 0, sizeof(ev));
	ev.kind = HOOK_EVENT_PUSH;
	ev.path_nocase = 1;	/* the host ignores case in repo paths */
	if (hookjson_str_nonempty(root, "ref", HOOKJSON_REQUIRED, &ref, res) == -1 ||
	    hookjson_commit(root, "before", HOOKJSON_REQUIRED, &ev.before, res) == -1 ||
	    hookjson_commit(root, "after", HOOKJSON_REQUIRED, &ev.after, res) == -1 ||
	    hookjson_commit(root, "checkout_sha", 0, &checkout, res) == -1 ||
	    hookjson_str_nonempty(root, "project.path_with_namespace",
	    HOOKJSON_REQUIRED, &name, res) == -1 ||
	    gitlab_url(root, "git_http_url", "git_http_url", &clone, res) == -1 ||
	    gitlab_url(root, "git_ssh_url", "git_ssh_url", &ssh, res) == -1 ||
	    gitlab_url(root, "web_url", "homepage", &web, res) == -1 ||
	    hookjson_str_nonempty(root, "user_username", 0, &user, res) == -1 ||
	    hookjson_int(root, "total_commits_count", 0, &total, res) == -1 ||
	    hookjson_array(root, "commits", 0, &commits, res) == -1)
		goto out;
	ev.ref = xstrdup(ref);
	/* "Checkout sha is nil when we remove branch or tag" (GitLab). */
	if (checkout == NULL || hookjson_commit_is_zero(ev.after)) {
		hook_result_setf(res, 200, "ignored: %s deleted", ref);
		goto out;
	}
	if (clone == NULL) {
		hook_result_setf(res, 400, "missing field 'project.git_http_url'");
		goto out;
	}
	if (githost_split_ref(&ev) == -1) {
		hook_result_setf(res, 200, "ignored: ref %s is not a branch "
		    "or tag", ref);
		goto out;
	}
	if ((ev.tag != NULL) != tagpush) {
		hook_result_setf(res, 400, "ref %s does not match object_kind",
		    ref);
		goto out;
	}
	if (ev.tag != NULL) {
		free(ev.after);
		ev.after = checkout;
		checkout = NULL;
	}
	if (user == NULL && hookjson_str_nonempty(root, "user_name", 0, &user,
	    res) == -1)
		goto out;
	if ((n = githost_commit_paths(&ev, commits, &listed, res)) == -1)
		goto out;
	/* GitLab lists at most 20 commits; total_commits_count is the truth.
	 * System hooks list none. */
	ev.paths_complete = n > 0 && total == n && !tagpush &&
	    listed && !hookjson_commit_is_zero(ev.before);
	ev.repo_name = xstrdup(name);
	ev.clone_url = xstrdup(clone);
	ev.ssh_url = hookjson_dup(ssh);
	ev.web_url = hookjson_dup(web);
	ev.pusher = hookjson_dup(user);
	if ((ev.delivery = githost_delivery(req, gitlab_delivery_headers,
	    res)) == NULL)
		goto out;
	githost_summarize(&ev, total > 0 ? (long)total : n);
	*hook_result_add(res, HOOK_EVENT_PUSH) = ev;
	memset(&ev, 0, sizeof(ev));
out:
	free(checkout);
	hook_event_free(&ev);
}

static void
gitlab_parse(const struct hook_request *req, const struct config_source *src,
    struct hook_result *res)
{
	const char	*hdr, *kind, *evname;
	cJSON		*root;

	(void)src;
	if ((hdr = hook_request_header(req, "X-Gitlab-Event")) == NULL) {
		hook_result_setf(res, 400, "missing X-Gitlab-Event header");
		return;
	}
	if (strcmp(hdr, "Push Hook") != 0 && strcmp(hdr, "Tag Push Hook") != 0 &&
	    strcmp(hdr, "System Hook") != 0) {
		hook_result_setf(res, 200, "ignored: event %.64s", hdr);
		return;
	}
	if ((root = hookjson_parse_object((const char *)req->body, req->body_len,
	    res)) == NULL)
		return;
	if (hookjson_str(root, "object_kind", 0, &kind, res) == -1 ||
	    hookjson_str(root, "event_name", 0, &evname, res) == -1)
		goto out;
	if (kind == NULL)
		kind = evname;
	if (kind == NULL) {
		hook_result_setf(res, 400, "missing field 'object_kind'");
		goto out;
	}
	if (strcmp(kind, "push") == 0)
		gitlab_parse_push(req, root, 0, res);
	else if (strcmp(kind, "tag_push") == 0)
		gitlab_parse_push(req, root, 1, res);
	else
		hook_result_setf(res, 200, "ignored: %.64s", kind);
out:
	handler_json_delete(root);
}

const struct handler handler_gitlab = {
	.type = "gitlab",
	.verify = gitlab_verify,
	.parse = gitlab_parse,
};
