/*
 * quay.c: Quay repository push notifications ("type: quay").
 *
 * Quay cannot sign, so the secret travels in the URL path
 * (/hooks/<name>/<token>), compared in constant time.  docker_url names
 * the image ("quay.io/ns/repo", or the host of a self-hosted Quay) and
 * updated_tags lists the pushed tags (a list; very old Quay sent an object
 * keyed by tag).  There is no delivery id and no timestamp: the delivery
 * is derived from image, tag and the 10-minute window the request arrives
 * in, so a retry within the window is a duplicate while a later re-push
 * of a moving tag is a new event (a duplicate across a window edge only
 * repeats an idempotent job).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "handler.h"
#include "policy.h"
#include "registry_hooks.h"
#include "util.h"

#define QUAY_WINDOW_MS	(10 * 60 * 1000)

static const char *const quay_media_types[] = {
	"application/json",
	NULL
};

static int
quay_verify(const struct hook_request *req, const struct config_source *src,
    char *why, size_t whylen)
{
	if (handler_check_token(src, req->path_token) == -1) {
		snprintf(why, whylen, "missing or wrong token in the URL path");
		return 401;
	}
	return registry_hook_media_type(req, quay_media_types, why, whylen);
}

/* One event for a tag of image (a parsed docker_url). */
static int
quay_add(struct hook_result *res, const struct image_ref *img,
    const char *tag, const char *window, char *why, size_t whylen)
{
	const char	*parts[4];
	char		*delivery;
	int		 rc = 0;

	parts[0] = img->registry;
	parts[1] = img->repository;
	parts[2] = tag;
	parts[3] = window;
	delivery = registry_hook_delivery("quay", parts, 4);
	if (registry_hook_add(res, img->registry, img->repository, tag, NULL,
	    delivery, 0, "quay", why, whylen) == NULL)
		rc = -1;
	free(delivery);
	return rc;
}

static void
quay_parse(const struct hook_request *req, const struct config_source *src,
    struct hook_result *res)
{
	const cJSON	*url, *tags, *t;
	struct image_ref img;
	char		 why[128], window[32];
	cJSON		*root;

	(void)src;
	memset(&img, 0, sizeof(img));
	if ((root = registry_hook_parse_json(req, res)) == NULL)
		goto out;
	if (!cJSON_IsObject(root)) {
		hook_result_setf(res, 400, "JSON body is not an object");
		goto out;
	}
	url = cJSON_GetObjectItemCaseSensitive(root, "docker_url");
	tags = cJSON_GetObjectItemCaseSensitive(root, "updated_tags");
	if (!cJSON_IsString(url)) {
		hook_result_setf(res, 400, "not a Quay notification: no "
		    "docker_url");
		goto out;
	}
	if (image_ref_parse(url->valuestring, &img, why, sizeof(why)) == -1) {
		hook_result_setf(res, 400, "docker_url: %s", why);
		goto out;
	}
	if (!cJSON_IsArray(tags) && !cJSON_IsObject(tags)) {
		/* Other notification kinds (build, vulnerability). */
		hook_result_setf(res, 200, "ignored: no updated_tags");
		goto out;
	}
	snprintf(window, sizeof(window), "%lld",
	    (long long)(util_now_ms() / QUAY_WINDOW_MS));
	cJSON_ArrayForEach(t, tags) {
		/* A list of names, or (old format) an object keyed by tag. */
		const char *name = cJSON_IsArray(tags) ?
		    (cJSON_IsString(t) ? t->valuestring : NULL) : t->string;

		if (name == NULL || quay_add(res, &img, name, window, why,
		    sizeof(why)) == -1) {
			hook_result_free(res);
			hook_result_setf(res, 400, "updated_tags: %s",
			    name == NULL ? "not a string" : why);
			goto out;
		}
	}
	if (res->nevents == 0)
		hook_result_setf(res, 200, "ignored: no updated tags");
out:
	image_ref_free(&img);
	handler_json_delete(root);
}

const struct handler handler_quay = {
	.type = "quay",
	.path_token = 1,
	.verify = quay_verify,
	.parse = quay_parse,
};
