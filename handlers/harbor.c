/*
 * harbor.c: Harbor webhooks, "Default" payload format ("type: harbor").
 *
 * Harbor sends the policy's "Auth Header" setting verbatim as the
 * Authorization header (checked in constant time; see
 * registry_hook_check_auth for the accepted forms).  A PUSH_ARTIFACT event
 * lists the pushed artifacts in event_data.resources[] (tag, digest,
 * resource_url "<harbor host>/<project>/<repo>:<tag>"); one image event per
 * tagged resource.  Harbor sends no delivery id: it is derived from host,
 * repository, tag, digest and occur_at, which a Harbor retry repeats.
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

static const char *const harbor_media_types[] = {
	"application/json",
	NULL
};

static int
harbor_verify(const struct hook_request *req, const struct config_source *src,
    char *why, size_t whylen)
{
	if (registry_hook_check_auth(src,
	    hook_request_header(req, "Authorization")) == -1) {
		snprintf(why, whylen, "missing or wrong Authorization");
		return 401;
	}
	return registry_hook_media_type(req, harbor_media_types, why, whylen);
}

static const char *
harbor_str(const cJSON *obj, const char *key)
{
	const cJSON	*v = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsString(v) && v->valuestring[0] != '\0' ?
	    v->valuestring : NULL;
}

static void
harbor_parse(const struct hook_request *req, const struct config_source *src,
    struct hook_result *res)
{
	const cJSON	*data, *resources, *r, *repo, *at;
	const char	*type, *full, *tag, *digest, *url, *parts[5];
	char		 host[256], occur[32], why[128], *delivery;
	cJSON		*root;
	int64_t		 occur_ms = 0;
	size_t		 n, i = 0;

	(void)src;
	if ((root = registry_hook_parse_json(req, res)) == NULL)
		goto out;
	if (!cJSON_IsObject(root)) {
		hook_result_setf(res, 400, "JSON body is not an object");
		goto out;
	}
	if ((type = harbor_str(root, "type")) == NULL) {
		hook_result_setf(res, 400, "not a Harbor event: no type");
		goto out;
	}
	/* "pushImage" is the Harbor 1.9/1.10 name of the same event. */
	if (strcmp(type, "PUSH_ARTIFACT") != 0 &&
	    strcmp(type, "pushImage") != 0) {
		hook_result_setf(res, 200, "ignored: Harbor %.64s event", type);
		goto out;
	}
	data = cJSON_GetObjectItemCaseSensitive(root, "event_data");
	resources = cJSON_GetObjectItemCaseSensitive(data, "resources");
	repo = cJSON_GetObjectItemCaseSensitive(data, "repository");
	if (!cJSON_IsArray(resources) || !cJSON_IsObject(repo) ||
	    (full = harbor_str(repo, "repo_full_name")) == NULL) {
		hook_result_setf(res, 400, "PUSH_ARTIFACT without "
		    "event_data.resources or repository.repo_full_name");
		goto out;
	}
	at = cJSON_GetObjectItemCaseSensitive(root, "occur_at");
	occur[0] = '\0';
	if (cJSON_IsNumber(at) && isfinite(at->valuedouble) &&
	    at->valuedouble > 0 && at->valuedouble < 1e11) {
		occur_ms = (int64_t)at->valuedouble * 1000;
		snprintf(occur, sizeof(occur), "%lld", (long long)occur_ms);
	}
	cJSON_ArrayForEach(r, resources) {
		i++;
		if (!cJSON_IsObject(r))
			continue;
		/* A push by digest only has no tag: nothing to deploy. */
		if ((tag = harbor_str(r, "tag")) == NULL)
			continue;
		digest = harbor_str(r, "digest");
		/* resource_url starts with Harbor's own host[:port]. */
		if ((url = harbor_str(r, "resource_url")) == NULL ||
		    (n = strcspn(url, "/")) == 0 || url[n] != '/' ||
		    n >= sizeof(host)) {
			hook_result_free(res);
			hook_result_setf(res, 400, "resources[%zu]: no "
			    "host in resource_url", i - 1);
			goto out;
		}
		memcpy(host, url, n);
		host[n] = '\0';
		parts[0] = host;
		parts[1] = full;
		parts[2] = tag;
		parts[3] = digest;
		parts[4] = occur;
		delivery = registry_hook_delivery("harbor", parts, 5);
		if (registry_hook_add(res, host, full, tag, digest, delivery,
		    occur_ms, "harbor", why, sizeof(why)) == NULL) {
			free(delivery);
			hook_result_free(res);
			hook_result_setf(res, 400, "resources[%zu]: %s", i - 1,
			    why);
			goto out;
		}
		free(delivery);
	}
	if (res->nevents == 0)
		hook_result_setf(res, 200, "ignored: no tagged artifact");
out:
	handler_json_delete(root);
}

const struct handler handler_harbor = {
	.type = "harbor",
	.path_token = 0,
	.verify = harbor_verify,
	.parse = harbor_parse,
};
