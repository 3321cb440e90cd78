/*
 * generic.c: "generic-hmac", for any sender that can sign a small JSON
 * document (CI jobs, scripts, self-hosted Git servers' post-receive hooks).
 *
 *   POST /hooks/<name>
 *   Content-Type: application/json
 *   X-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>
 *   X-Delivery: <optional id>
 *
 *   {"repository": "<clone url>", "ref": "refs/heads/main",
 *    "after": "<commit>", "before": "<optional commit>",
 *    "delivery": "<optional id>"}
 *
 * The delivery id is X-Delivery, else the body's "delivery", else the
 * SHA-256 of the body.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "githost.h"
#include "handler.h"
#include "hookjson.h"
#include "util.h"

static const char *const generic_delivery_headers[] = { "X-Delivery", NULL };

static int
generic_verify(const struct hook_request *req, const struct config_source *src,
    char *why, size_t whylen)
{
	char	 mt[128];

	if (githost_check_sig(src, hook_request_header(req, "X-Signature"),
	    "sha256=", 0, req->body, req->body_len, why, whylen) == -1)
		return 401;
	if (hook_media_type(req, mt, sizeof(mt)) == -1 ||
	    strcmp(mt, "application/json") != 0) {
		snprintf(why, whylen, "unsupported content type");
		return 415;
	}
	return 0;
}

static void
generic_parse(const struct hook_request *req, const struct config_source *src,
    struct hook_result *res)
{
	struct hook_event	 ev;
	const char		*repo, *ref, *delivery;
	size_t			 i, n;
	cJSON			*root;

	(void)src;
	memset(&ev, 0, sizeof(ev));
	ev.kind = HOOK_EVENT_PUSH;
	if ((root = hookjson_parse_object((const char *)req->body, req->body_len,
	    res)) == NULL)
		return;
	if (hookjson_str_nonempty(root, "repository", HOOKJSON_REQUIRED, &repo,
	    res) == -1 ||
	    hookjson_str_nonempty(root, "ref", HOOKJSON_REQUIRED, &ref, res) == -1 ||
	    hookjson_commit(root, "after", HOOKJSON_REQUIRED, &ev.after, res) == -1 ||
	    hookjson_commit(root, "before", 0, &ev.before, res) == -1 ||
	    hookjson_str_nonempty(root, "delivery", 0, &delivery, res) == -1)
		goto out;
	ev.ref = xstrdup(ref);
	if (hookjson_commit_is_zero(ev.after)) {
		hook_result_setf(res, 200, "ignored: %s deleted", ref);
		goto out;
	}
	if (githost_split_ref(&ev) == -1) {
		hook_result_setf(res, 400, "field 'ref' must be refs/heads/<branch> "
		    "or refs/tags/<tag>");
		goto out;
	}
	if (hook_request_header(req, "X-Delivery") == NULL && delivery != NULL) {
		n = strlen(delivery);
		for (i = 0; i < n; i++)
			if ((unsigned char)delivery[i] <= 0x20 ||
			    (unsigned char)delivery[i] >= 0x7f)
				break;
		if (n > 200 || i != n) {
			hook_result_setf(res, 400, "field 'delivery' must be at "
			    "most 200 printable ASCII characters");
			goto out;
		}
		ev.delivery = xstrdup(delivery);
	} else if ((ev.delivery = githost_delivery(req,
	    generic_delivery_headers, res)) == NULL)
		goto out;
	ev.repo_name = xstrdup(repo);
	ev.clone_url = xstrdup(repo);
	githost_summarize(&ev, -1);
	*hook_result_add(res, HOOK_EVENT_PUSH) = ev;
	memset(&ev, 0, sizeof(ev));
out:
	hook_event_free(&ev);
	handler_json_delete(root);
}

const struct handler handler_generic = {
	.type = "generic-hmac",
	.verify = generic_verify,
	.parse = generic_parse,
};
