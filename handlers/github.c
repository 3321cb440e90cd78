/*
 * github.c: GitHub (and GitHub Enterprise Server) webhooks.
 *
 * verify: X-Hub-Signature-256 ("sha256=" + hex HMAC-SHA256 of the raw body,
 * form bodies included); X-Hub-Signature (SHA-1) only when the source sets
 * allow_sha1, and never as a fallback from a bad SHA-256 signature, so a
 * forger cannot downgrade.
 * parse: push (branch and tag pushes), ping, and GHCR container image
 * pushes (registry_package / package events) as image events.  Every other
 * event is answered 200 "ignored".
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "githost.h"
#include "handler.h"
#include "hookjson.h"
#include "policy.h"
#include "util.h"

/* GitHub truncates commits[] at this many entries in webhook deliveries. */
#define GITHUB_MAX_COMMITS	2048

static const char *const github_delivery_headers[] = {
	"X-GitHub-Delivery", NULL
};

static int
github_verify(const struct hook_request *req, const struct config_source *src,
    char *why, size_t whylen)
{
	char		 mt[128];
	const char	*sig;

	/* The HMAC covers the bytes received, form encoding included, so it
	 * is checked first: an unauthenticated request learns nothing else. */
	if ((sig = hook_request_header(req, "X-Hub-Signature-256")) != NULL) {
		if (githost_check_sig(src, sig, "sha256=", 0, req->body,
		    req->body_len, why, whylen) == -1)
			return 401;
	} else if ((sig = hook_request_header(req, "X-Hub-Signature")) != NULL) {
		if (!src->allow_sha1) {
			snprintf(why, whylen,
			    "SHA-1 signature refused (allow_sha1 is off)");
			return 401;
		}
		if (githost_check_sig(src, sig, "sha1=", 1, req->body,
		    req->body_len, why, whylen) == -1)
			return 401;
	} else {
		snprintf(why, whylen, "missing X-Hub-Signature-256");
		return 401;
	}
	if (hook_media_type(req, mt, sizeof(mt)) == -1 ||
	    (strcmp(mt, "application/json") != 0 &&
	    strcmp(mt, "application/x-www-form-urlencoded") != 0)) {
		snprintf(why, whylen, "unsupported content type");
		return 415;
	}
	return 0;
}

/* The JSON document of the request: the body, or the form's payload=. */
static cJSON *
github_document(const struct hook_request *req, struct hook_result *res)
{
	char	 mt[128];
	char	*json;
	size_t	 len = 0;
	cJSON	*root;

	if (hook_media_type(req, mt, sizeof(mt)) == 0 &&
	    strcmp(mt, "application/x-www-form-urlencoded") == 0) {
		if ((json = githost_form_payload(req, &len)) == NULL) {
			hook_result_setf(res, 400,
			    "form body has no valid payload field");
			return NULL;
		}
		root = hookjson_parse_object(json, len, res);
		free(json);
		return root;
	}
	return hookjson_parse_object((const char *)req->body, req->body_len, res);
}

static void
github_parse_push(const struct hook_request *req, const cJSON *root,
    struct hook_result *res)
{
	struct hook_event	 ev;
	const cJSON		*commits, *last;
	const char		*ref, *name, *clone, *ssh, *web, *pusher;
	char			*head = NULL;
	int			 deleted, created, forced;
	long			 n;
	int			 listed;

	memset(&ev, 0, sizeof(ev));
	ev.kind = HOOK_EVENT_PUSH;
	ev.path_nocase = 1;	/* the host ignores case in repo paths */
	if (hookjson_str_nonempty(root, "ref", HOOKJSON_REQUIRED, &ref, res) == -1 ||
	    hookjson_commit(root, "before", HOOKJSON_REQUIRED, &ev.before, res) == -1 ||
	    hookjson_commit(root, "after", HOOKJSON_REQUIRED, &ev.after, res) == -1 ||
	    hookjson_bool(root, "deleted", 0, &deleted, res) == -1 ||
	    hookjson_bool(root, "created", 0, &created, res) == -1 ||
	    hookjson_bool(root, "forced", 0, &forced, res) == -1 ||
	    hookjson_str_nonempty(root, "repository.full_name", HOOKJSON_REQUIRED,
	    &name, res) == -1 ||
	    hookjson_str_nonempty(root, "repository.clone_url", HOOKJSON_REQUIRED,
	    &clone, res) == -1 ||
	    hookjson_str_nonempty(root, "repository.ssh_url", 0, &ssh, res) == -1 ||
	    hookjson_str_nonempty(root, "repository.html_url", 0, &web, res) == -1 ||
	    hookjson_str(root, "pusher.name", 0, &pusher, res) == -1 ||
	    hookjson_commit(root, "head_commit.id", 0, &head, res) == -1 ||
	    hookjson_array(root, "commits", 0, &commits, res) == -1)
		goto out;
	ev.ref = xstrdup(ref);
	if (deleted || hookjson_commit_is_zero(ev.after)) {
		hook_result_setf(res, 200, "ignored: %s deleted", ref);
		goto out;
	}
	if (githost_split_ref(&ev) == -1) {
		hook_result_setf(res, 200, "ignored: ref %s is not a branch "
		    "or tag", ref);
		goto out;
	}
	if (pusher == NULL && hookjson_str(root, "sender.login", 0, &pusher,
	    res) == -1)
		goto out;
	if ((n = githost_commit_paths(&ev, commits, &listed, res)) == -1)
		goto out;
	/*
	 * For an annotated tag "after" is the tag object; head_commit is the
	 * commit it points at, which is what a deploy checks out.
	 */
	if (ev.tag != NULL && head != NULL) {
		free(ev.after);
		ev.after = head;
		head = NULL;
	}
	/*
	 * The paths cover the whole change only when commits[] holds every
	 * commit between before and after: not for a new ref (no base) or a
	 * force push (dropped commits changed files too), not when GitHub
	 * truncated the list, and its last entry must be the pushed head.
	 */
	last = commits != NULL ? cJSON_GetArrayItem(commits,
	    cJSON_GetArraySize(commits) - 1) : NULL;
	ev.paths_complete = !created && !forced && n > 0 &&
	    n < GITHUB_MAX_COMMITS && listed &&
	    !hookjson_commit_is_zero(ev.before) && last != NULL &&
	    cJSON_IsString(cJSON_GetObjectItemCaseSensitive(last, "id")) &&
	    strcasecmp(cJSON_GetObjectItemCaseSensitive(last, "id")->valuestring,
	    ev.after) == 0;
	ev.repo_name = xstrdup(name);
	ev.clone_url = xstrdup(clone);
	ev.ssh_url = hookjson_dup(ssh);
	ev.web_url = hookjson_dup(web);
	ev.pusher = hookjson_dup(pusher);
	if ((ev.delivery = githost_delivery(req, github_delivery_headers,
	    res)) == NULL)
		goto out;
	githost_summarize(&ev, n);
	*hook_result_add(res, HOOK_EVENT_PUSH) = ev;
	memset(&ev, 0, sizeof(ev));
out:
	free(head);
	hook_event_free(&ev);
}

/*
 * GHCR image pushes.  The package object is "registry_package" or
 * "package" after the event name; only container packages with a tag make
 * an event (GitHub sends one per manifest, untagged children included).
 */
static void
github_parse_package(const struct hook_request *req, const char *evname,
    const cJSON *root, struct hook_result *res)
{
	struct hook_event	 ev;
	const cJSON		*pkg;
	const char		*action, *type, *ns, *name, *tag, *digest;
	const char		*vname, *when;
	char			 path[96];
	int64_t			 ms = -1;
	size_t			 i;

	memset(&ev, 0, sizeof(ev));
	ev.kind = HOOK_EVENT_IMAGE;
	if (hookjson_str(root, "action", HOOKJSON_REQUIRED, &action, res) == -1 ||
	    hookjson_object(root, evname, HOOKJSON_REQUIRED, &pkg, res) == -1)
		goto out;
	if (strcmp(action, "published") != 0 && strcmp(action, "updated") != 0) {
		hook_result_setf(res, 200, "ignored: %s action %s", evname,
		    action);
		goto out;
	}
	snprintf(path, sizeof(path), "%s.package_type", evname);
	if (hookjson_str(root, path, HOOKJSON_REQUIRED, &type, res) == -1)
		goto out;
	if (strcasecmp(type, "container") != 0) {
		hook_result_setf(res, 200, "ignored: not a container package");
		goto out;
	}
	snprintf(path, sizeof(path), "%s.namespace", evname);
	if (hookjson_str_nonempty(root, path, HOOKJSON_REQUIRED, &ns, res) == -1)
		goto out;
	snprintf(path, sizeof(path), "%s.name", evname);
	if (hookjson_str_nonempty(root, path, HOOKJSON_REQUIRED, &name, res) == -1)
		goto out;
	snprintf(path, sizeof(path),
	    "%s.package_version.container_metadata.tag.name", evname);
	if (hookjson_str(root, path, 0, &tag, res) == -1)
		goto out;
	if (tag == NULL || *tag == '\0') {
		hook_result_setf(res, 200, "ignored: untagged image version");
		goto out;
	}
	snprintf(path, sizeof(path),
	    "%s.package_version.container_metadata.tag.digest", evname);
	if (hookjson_str_nonempty(root, path, 0, &digest, res) == -1)
		goto out;
	snprintf(path, sizeof(path), "%s.package_version.name", evname);
	if (hookjson_str(root, path, 0, &vname, res) == -1)
		goto out;
	if (digest == NULL && vname != NULL && strncmp(vname, "sha256:", 7) == 0)
		digest = vname;
	/* Version times may be the zero time "0001-01-01T00:00:00Z". */
	snprintf(path, sizeof(path), "%s.package_version.updated_at", evname);
	if (hookjson_str(root, path, 0, &when, res) == -1)
		goto out;
	if (when == NULL || (ms = hookjson_time_ms(when)) <= 0) {
		snprintf(path, sizeof(path), "%s.updated_at", evname);
		if (hookjson_str(root, path, 0, &when, res) == -1)
			goto out;
		ms = when != NULL ? hookjson_time_ms(when) : -1;
	}
	/* Refused here, with the reason, rather than by a dead job later. */
	if (!image_tag_valid(tag)) {
		hook_result_setf(res, 400, "field '%s.package_version."
		    "container_metadata.tag.name' is not a valid image tag",
		    evname);
		goto out;
	}
	if (digest != NULL && !image_digest_valid(digest)) {
		hook_result_setf(res, 400, "%s digest is not algorithm:hex "
		    "(sha256: and 64 lowercase hex digits)", evname);
		goto out;
	}
	ev.pushed_at_ms = ms > 0 ? ms : 0;
	ev.registry = xstrdup("ghcr.io");
	ev.repository = xasprintf("%s/%s", ns, name);
	for (i = 0; ev.repository[i] != '\0'; i++)
		ev.repository[i] = (char)tolower((unsigned char)ev.repository[i]);
	ev.tag = xstrdup(tag);
	ev.digest = hookjson_dup(digest);
	if ((ev.delivery = githost_delivery(req, github_delivery_headers,
	    res)) == NULL)
		goto out;
	ev.summary = xasprintf("image ghcr.io/%s:%s%s%s", ev.repository,
	    ev.tag, ev.digest != NULL ? "@" : "",
	    ev.digest != NULL ? ev.digest : "");
	*hook_result_add(res, HOOK_EVENT_IMAGE) = ev;
	memset(&ev, 0, sizeof(ev));
out:
	hook_event_free(&ev);
}

static void
github_parse(const struct hook_request *req, const struct config_source *src,
    struct hook_result *res)
{
	const char	*evname;
	cJSON		*root = NULL;

	(void)src;
	if ((evname = hook_request_header(req, "X-GitHub-Event")) == NULL) {
		hook_result_setf(res, 400, "missing X-GitHub-Event header");
		return;
	}
	if (strcmp(evname, "push") != 0 && strcmp(evname, "ping") != 0 &&
	    strcmp(evname, "registry_package") != 0 &&
	    strcmp(evname, "package") != 0) {
		hook_result_setf(res, 200, "ignored: event %.64s", evname);
		return;
	}
	if ((root = github_document(req, res)) == NULL)
		return;
	if (strcmp(evname, "ping") == 0)
		hook_result_setf(res, 200, "ping");
	else if (strcmp(evname, "push") == 0)
		github_parse_push(req, root, res);
	else
		github_parse_package(req, evname, root, res);
	handler_json_delete(root);
}

const struct handler handler_github = {
	.type = "github",
	.verify = github_verify,
	.parse = github_parse,
};
