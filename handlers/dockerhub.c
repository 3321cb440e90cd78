/*
 * dockerhub.c: Docker Hub repository webhooks ("type: dockerhub").
 *
 * Docker Hub cannot sign or send a header, so the secret travels in the
 * URL path (/hooks/<name>/<token>) and is compared in constant time.  The
 * body names the repository and the pushed tag; there is no digest and no
 * delivery id, so the delivery is derived from repository, tag and
 * push_data.pushed_at (a redelivery of one push has the same three).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "handler.h"
#include "registry_hooks.h"
#include "util.h"

static const char *const dockerhub_media_types[] = {
	"application/json",
	NULL
};

static int
dockerhub_verify(const struct hook_request *req,
    const struct config_source *src, char *why, size_t whylen)
{
	if (handler_check_token(src, req->path_token) == -1) {
		snprintf(why, whylen, "missing or wrong token in the URL path");
		return 401;
	}
	return registry_hook_media_type(req, dockerhub_media_types, why,
	    whylen);
}

static void
dockerhub_parse(const struct hook_request *req,
    const struct config_source *src, struct hook_result *res)
{
	const cJSON	*push, *repo, *tag, *name, *at;
	const char	*parts[3];
	char		 why[128], pushed[32], *delivery;
	cJSON		*root;
	int64_t		 pushed_ms = 0;

	(void)src;
	if ((root = registry_hook_parse_json(req, res)) == NULL)
		goto out;
	if (!cJSON_IsObject(root)) {
		hook_result_setf(res, 400, "JSON body is not an object");
		goto out;
	}
	push = cJSON_GetObjectItemCaseSensitive(root, "push_data");
	repo = cJSON_GetObjectItemCaseSensitive(root, "repository");
	tag = cJSON_GetObjectItemCaseSensitive(push, "tag");
	name = cJSON_GetObjectItemCaseSensitive(repo, "repo_name");
	if (!cJSON_IsObject(push) || !cJSON_IsObject(repo) ||
	    !cJSON_IsString(name) || name->valuestring[0] == '\0') {
		hook_result_setf(res, 400, "not a Docker Hub push: no "
		    "push_data or repository.repo_name");
		goto out;
	}
	if (!cJSON_IsString(tag) || tag->valuestring[0] == '\0') {
		/* A push by digest only: nothing to deploy by tag. */
		hook_result_setf(res, 200, "ignored: push without a tag");
		goto out;
	}
	at = cJSON_GetObjectItemCaseSensitive(push, "pushed_at");
	pushed[0] = '\0';
	if (cJSON_IsNumber(at) && isfinite(at->valuedouble) &&
	    at->valuedouble > 0 && at->valuedouble < 1e11) {
		pushed_ms = (int64_t)(at->valuedouble * 1000.0);
		snprintf(pushed, sizeof(pushed), "%lld", (long long)pushed_ms);
	}
	parts[0] = name->valuestring;
	parts[1] = tag->valuestring;
	parts[2] = pushed;
	delivery = registry_hook_delivery("dockerhub", parts, 3);
	if (registry_hook_add(res, "docker.io", name->valuestring,
	    tag->valuestring, NULL, delivery, pushed_ms, "dockerhub", why,
	    sizeof(why)) == NULL)
		hook_result_setf(res, 400, "%s", why);
	free(delivery);
out:
	handler_json_delete(root);
}

const struct handler handler_dockerhub = {
	.type = "dockerhub",
	.path_token = 1,
	.verify = dockerhub_verify,
	.parse = dockerhub_parse,
};
