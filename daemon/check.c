/*
 * check.c: configuration checks that live beside the modules they concern,
 * reported in config.c's `FILE:LINE:COLUMN: key: message` form.
 */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "config.h"
#include "handler.h"
#include "kubeconfig.h"
#include "notifier.h"
#include "policy.h"

int
check_config(const struct config *cfg, struct config_errors *errs)
{
	const struct handler	*h;
	const struct notifier	*nt;
	char			 key[128], err[512];
	size_t			 i, j, before = errs->n;

	for (i = 0; i < cfg->nsources; i++) {
		const struct config_source *src = &cfg->sources[i];

		snprintf(key, sizeof(key), "sources[%zu].type", i);
		if ((h = handler_find(src->type)) == NULL) {
			config_error_at(cfg, errs, key, "unknown source type "
			    "\"%s\"", src->type);
			continue;
		}
		if (h->path_token)
			config_warning_at(cfg, errs, key, "%s senders cannot "
			    "sign requests: the token travels in the URL path "
			    "(/hooks/%s/<token>), which proxies and logs may "
			    "record; this is weaker than an HMAC signature",
			    src->type, src->name);
	}
	for (i = 0; i < cfg->nnotifiers; i++) {
		const struct config_notifier *n = &cfg->notifiers[i];

		snprintf(key, sizeof(key), "notifiers[%zu].type", i);
		if ((nt = notifier_find(n->type)) == NULL) {
			config_error_at(cfg, errs, key, "unknown notifier type "
			    "\"%s\"", n->type);
			continue;
		}
		if (nt->check != NULL)
			nt->check(cfg, n, i, errs);
	}
	for (i = 0; i < cfg->napps; i++) {
		const struct config_app *app = &cfg->apps[i];

		for (j = 0; j < app->nimages; j++) {
			struct image_ref	 ref;

			/* A name that cannot be parsed would never match. */
			snprintf(key, sizeof(key),
			    "apps[%zu].images[%zu].repository", i, j);
			memset(&ref, 0, sizeof(ref));
			if (image_ref_parse(app->images[j].repository, &ref, err,
			    sizeof(err)) == -1)
				config_error_at(cfg, errs, key, "%s", err);
			else if (ref.tag != NULL || ref.digest != NULL)
				config_error_at(cfg, errs, key, "an image "
				    "repository has no tag or digest (the policy "
				    "chooses them)");
			image_ref_free(&ref);
			snprintf(key, sizeof(key), "apps[%zu].images[%zu].policy",
			    i, j);
			if (policy_validate(&app->images[j].policy, err,
			    sizeof(err)) == -1)
				config_error_at(cfg, errs, key, "%s", err);
		}
	}
	for (i = 0; i < cfg->nclusters; i++) {
		snprintf(key, sizeof(key), "clusters[%zu].kubeconfig", i);
		if (kubeconfig_check(&cfg->clusters[i], err, sizeof(err)) == -1)
			config_error_at(cfg, errs, key, "%s", err);
	}
	return (int)(errs->n - before);
}
