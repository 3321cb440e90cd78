/*
 * gitea.c: Gitea, Forgejo (and Gogs) webhooks.
 *
 * verify: X-Gitea-Signature / X-Forgejo-Signature / X-Gogs-Signature, a
 * bare hex HMAC-SHA256 of the JSON document.  Unlike GitHub, in form mode
 * (payload=<urlencoded JSON>) the HMAC covers the decoded JSON, not the
 * bytes on the wire, so verify decodes the form first.
 * parse: push events (branches and tags) in GitHub's shape; a push whose
 * "after" is all zeros is a deleted ref and is ignored.
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

static const char *const gitea_sig_headers[] = {
	"X-Forgejo-Signature", "X-Gitea-Signature", "X-Gogs-Signature", NULL
};
static const char *const gitea_event_headers[] = {
	"X-Forgejo-Event", "X-Gitea-Event", "X-Gogs-Event", NULL
};
static const char *const gitea_delivery_headers[] = {
	"X-Forgejo-Delivery", "X-Gitea-Delivery", "X-Gogs-Delivery", NULL
};

/* 1 form body, 0 JSON body, -1 anything else. */
static int
gitea_is_form(const struct hook_request *req)
{
	char	 mt[128];

	if (hook_media_type(req, mt, sizeof(mt)) == -1)
		return -1;
	if (strcmp(mt, "application/json") == 0)
		return 0;
	if (strcmp(mt, "application/x-www-form-urlencoded") == 0)
		return 1;
	return -1;
}

static const char *
gitea_header(const struct hook_request *req, const char *const *names)
{
	const char	*v;

	for (; *names != NULL; names++)
		if ((v = hook_request_header(req, *names)) != NULL)
			return v;
	return NULL;
}

static int
gitea_verify(const struct hook_request *req, const struct config_source *src,
    char *why, size_t whylen)
{
	const char	*sig;
	char		*json = NULL;
	size_t		 len = 0;
	int		 form, rc = 401;

	/* What was signed depends on the content type, so a missing
	 * signature is refused first and the type checked before the HMAC. */
	if ((sig = gitea_header(req, gitea_sig_headers)) == NULL) {
		snprintf(why, whylen, "missing X-Gitea-Signature");
		return 401;
	}
	if ((form = gitea_is_form(req)) == -1) {
		snprintf(why, whylen, "unsupported content type");
		return 415;
	}
	if (form) {
		if ((json = githost_form_payload(req, &len)) == NULL) {
			snprintf(why, whylen, "signature mismatch");
			return 401;
		}
		if (githost_check_sig(src, sig, "", 0, json, len, why,
		    whylen) == 0)
			rc = 0;
		free(json);
		return rc;
	}
	if (githost_check_sig(src, sig, "", 0, req->body, req->body_len, why,
	    whylen) == -1)
		return 401;
	return 0;
}

static void
gitea_parse_push(const struct hook_request *req, const cJSON *root,
    struct hook_result *res)
{
	struct hook_event	 ev;
	const cJSON		*commits;
	const char		*ref, *name, *clone, *ssh, *web, *pusher;
	int64_t			 total;
	long			 n;
	int			 listed;

	memset(&ev, 0, sizeof(ev));
	ev.kind = HOOK_EVENT_PUSH;
	ev.path_nocase = 1;	/* the host ignores case in repo paths */
	if (hookjson_str_nonempty(root, "ref", HOOKJSON_REQUIRED, &ref, res) == -1 ||
	    hookjson_commit(root, "before", HOOKJSON_REQUIRED, &ev.before, res) == -1 ||
	    hookjson_commit(root, "after", HOOKJSON_REQUIRED, &ev.after, res) == -1 ||
	    hookjson_str_nonempty(root, "repository.full_name", HOOKJSON_REQUIRED,
	    &name, res) == -1 ||
	    hookjson_str_nonempty(root, "repository.clone_url", HOOKJSON_REQUIRED,
	    &clone, res) == -1 ||
	    hookjson_str_nonempty(root, "repository.ssh_url", 0, &ssh, res) == -1 ||
	    hookjson_str_nonempty(root, "repository.html_url", 0, &web, res) == -1 ||
	    hookjson_str_nonempty(root, "pusher.login", 0, &pusher, res) == -1 ||
	    hookjson_int(root, "total_commits", 0, &total, res) == -1 ||
	    hookjson_array(root, "commits", 0, &commits, res) == -1)
		goto out;
	ev.ref = xstrdup(ref);
	if (hookjson_commit_is_zero(ev.after)) {
		hook_result_setf(res, 200, "ignored: %s deleted", ref);
		goto out;
	}
	if (githost_split_ref(&ev) == -1) {
		hook_result_setf(res, 200, "ignored: ref %s is not a branch "
		    "or tag", ref);
		goto out;
	}
	if (pusher == NULL && hookjson_str_nonempty(root, "pusher.username", 0,
	    &pusher, res) == -1)
		goto out;
	if ((n = githost_commit_paths(&ev, commits, &listed, res)) == -1)
		goto out;
	/* Gitea lists a capped number of commits; total_commits is the count. */
	ev.paths_complete = n > 0 && total == n && listed &&
	    !hookjson_commit_is_zero(ev.before);
	ev.repo_name = xstrdup(name);
	ev.clone_url = xstrdup(clone);
	ev.ssh_url = hookjson_dup(ssh);
	ev.web_url = hookjson_dup(web);
	ev.pusher = hookjson_dup(pusher);
	if ((ev.delivery = githost_delivery(req, gitea_delivery_headers,
	    res)) == NULL)
		goto out;
	githost_summarize(&ev, total > 0 ? (long)total : n);
	*hook_result_add(res, HOOK_EVENT_PUSH) = ev;
	memset(&ev, 0, sizeof(ev));
out:
	hook_event_free(&ev);
}

static void
gitea_parse(const struct hook_request *req, const struct config_source *src,
    struct hook_result *res)
{
	const char	*evname;
	char		*json = NULL;
	size_t		 len = 0;
	cJSON		*root;

	(void)src;
	if ((evname = gitea_header(req, gitea_event_headers)) == NULL) {
		hook_result_setf(res, 400, "missing X-Gitea-Event header");
		return;
	}
	if (strcmp(evname, "push") != 0) {
		hook_result_setf(res, 200, "ignored: event %.64s", evname);
		return;
	}
	if (gitea_is_form(req) == 1) {
		if ((json = githost_form_payload(req, &len)) == NULL) {
			hook_result_setf(res, 400,
			    "form body has no valid payload field");
			return;
		}
		root = hookjson_parse_object(json, len, res);
		free(json);
	} else
		root = hookjson_parse_object((const char *)req->body,
		    req->body_len, res);
	if (root == NULL)
		return;
	gitea_parse_push(req, root, res);
	handler_json_delete(root);
}

const struct handler handler_gitea = {
	.type = "gitea",
	.verify = gitea_verify,
	.parse = gitea_parse,
};
