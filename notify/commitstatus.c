/*
 * commitstatus.c: every sync reported back to the Git host as a commit
 * status (type commit-status).
 *
 * A NOTIFIER_STATUS type: it gets sync.started (pending) and the result of
 * each sync attempt (success or failure) on the commit the sync applied,
 * under the context gitopsd/<app>, with a link to the job on the status
 * page when links.base_url is set.  Documented endpoints:
 *
 *   github     POST {api}/repos/O/N/statuses/SHA {state: pending|success|
 *              failure|error, target_url, description (140), context};
 *              Authorization: Bearer
 *   gitlab     POST {api}/projects/<url-encoded path>/statuses/SHA {state:
 *              pending|running|success|failed|canceled, name, target_url,
 *              description}; PRIVATE-TOKEN
 *   gitea      POST {api}/repos/O/N/statuses/SHA {state: pending|success|
 *              error|failure|warning, context, target_url, description};
 *              Authorization: token
 *   bitbucket  POST {api}/repositories/W/S/commit/SHA/statuses/build {state:
 *              INPROGRESS|SUCCESSFUL|FAILED|STOPPED, key (40), name, url
 *              (required), description}; Authorization: Bearer
 *
 * The owner and repository come from the app's repo URL (pr_repo_path),
 * the API base, auth header and error handling from the pull request
 * clients (daemon/pr.c).  The token goes only into the auth header.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "config_schema.h"
#include "notifier.h"
#include "pr.h"
#include "template.h"
#include "util.h"

#define CS_DESC_MAX	140	/* GitHub's limit; the strictest */
#define CS_KEY_MAX	40	/* Bitbucket's key */

struct cs_opts {
	int	 provider;		/* enum config_pr_provider */
	char	*api_url;
	char	*token_file;
	char	*token_env;
	char	*token;			/* from either */
	char	*ca_file;
};

#define O(field)	offsetof(struct cs_opts, field)

static const struct config_key cs_keys[] = {
	{ "provider", T_ENUM,
	  .off = O(provider), .enums = pr_provider_enums,
	  .help = "commit-status: github, gitlab, gitea or bitbucket "
	    "(Cloud)" },
	{ "api_url", T_STR,
	  .off = O(api_url),
	  .help = "commit-status: REST API base for self-hosted hosts; "
	    "unset: the public one" },
	{ "token_file", T_SECRET_FILE,
	  .off = O(token_file), .off2 = O(token),
	  .help = "commit-status: file holding the API token" },
	{ "token_env", T_SECRET_ENV,
	  .off = O(token_env), .off2 = O(token),
	  .help = "commit-status: environment variable holding the API "
	    "token" },
	NOTIFIER_KEY_CA_FILE(O(ca_file)),
};

static void
cs_config_check(struct config_walk *w, void *opts,
    const struct config_node *map, const struct config_node *at)
{
	(void)opts;
	if (!config_node_has(map, "provider"))
		config_walk_error(w, at, "provider", "missing required key "
		    "(commit-status needs github, gitlab, gitea or "
		    "bitbucket)");
	notifier_require_secret(w, map, at, "commit-status", "token");
}

static const struct config_plugin cs_config =
    CONFIG_PLUGIN(struct cs_opts, cs_keys, cs_config_check);

static int
cs_check(const struct config *cfg, const struct config_notifier *n,
    size_t index, struct config_errors *errs)
{
	const struct cs_opts	*o = n->opts;
	char			 key[64];
	size_t			 before = errs->n;

	snprintf(key, sizeof(key), "notifiers[%zu].api_url", index);
	if (o != NULL)
		notifier_check_http_url(cfg, errs, key, o->api_url);
	/* Bitbucket refuses a build status without its url. */
	snprintf(key, sizeof(key), "notifiers[%zu].provider", index);
	if (o != NULL && o->provider == CONFIG_PR_BITBUCKET &&
	    config_links_base(cfg) == NULL)
		config_error_at(cfg, errs, key, "bitbucket build statuses need "
		    "a url: set admin.public_url or links.base_url");
	return (int)(errs->n - before);
}

/* The host's word for the alert's state. */
static const char *
cs_state(int provider, const struct notify_alert *a)
{
	static const char *const words[][3] = {
		/* pending, success, failure */
		[CONFIG_PR_GITHUB] = { "pending", "success", "failure" },
		[CONFIG_PR_GITLAB] = { "running", "success", "failed" },
		[CONFIG_PR_GITEA] = { "pending", "success", "failure" },
		[CONFIG_PR_BITBUCKET] = { "INPROGRESS", "SUCCESSFUL",
		    "FAILED" },
	};
	int	 i;

	if (strcmp(a->event, "sync.started") == 0)
		i = 0;
	else if (strcmp(a->event, "job.failed") == 0)
		i = 2;
	else
		i = 1;
	return words[provider][i];
}

static char *
cs_description(const struct notify_alert *a)
{
	char	*s;

	if (strcmp(a->event, "sync.started") == 0)
		s = xasprintf("gitopsd: sync job %lld applying",
		    (long long)a->job_id);
	else if (strcmp(a->event, "job.failed") == 0)
		s = xasprintf("gitopsd: sync failed (%s): %s",
		    a->reason_kind != NULL ? a->reason_kind : "error",
		    a->reason != NULL ? a->reason : "");
	else
		s = xasprintf("gitopsd: synced%s%s and healthy",
		    a->cluster != NULL ? " to " : "",
		    a->cluster != NULL ? a->cluster : "");
	notifier_one_line(s);
	template_utf8_truncate(s, CS_DESC_MAX);
	return s;
}

/* Bitbucket's key: gitopsd/<app>, or its hash when that is too long. */
static char *
cs_key(const char *app)
{
	char	 hex[65];

	if (strlen("gitopsd/") + strlen(app) <= CS_KEY_MAX)
		return xasprintf("gitopsd/%s", app);
	util_sha256_hex(app, strlen(app), hex);
	hex[CS_KEY_MAX - strlen("gitopsd/")] = '\0';
	return xasprintf("gitopsd/%s", hex);
}

static int
cs_render(const struct config_notifier *n, const struct notify_alert *a,
    struct notify_request *req, char *err, size_t errlen)
{
	const struct cs_opts	*o = n->opts;
	const char		*hdrs[3];
	char			*base = NULL, *url = NULL, *desc = NULL;
	char			*context = NULL, *key = NULL;
	cJSON			*doc = NULL;
	int			 p, rc = -1;

	memset(req, 0, sizeof(*req));
	hdrs[0] = hdrs[1] = hdrs[2] = NULL;
	if (o == NULL || o->token == NULL || o->provider <= CONFIG_PR_NONE ||
	    o->provider > CONFIG_PR_BITBUCKET) {
		snprintf(err, errlen, "no provider or token");
		goto out;
	}
	p = o->provider;
	if (a->app == NULL || a->revision == NULL || a->repo_owner == NULL ||
	    a->repo_name == NULL) {
		snprintf(err, errlen, "no app, commit or owner/name in the "
		    "repository URL's path to set a status on");
		goto out;
	}
	if (p == CONFIG_PR_BITBUCKET && a->page_url == NULL) {
		snprintf(err, errlen, "bitbucket needs a url: set "
		    "links.base_url");
		goto out;
	}
	base = pr_repo_api_url(p, o->api_url, a->repo_owner, a->repo_name);
	url = p == CONFIG_PR_BITBUCKET ?
	    xasprintf("%s/commit/%s/statuses/build", base, a->revision) :
	    xasprintf("%s/statuses/%s", base, a->revision);
	context = xasprintf("gitopsd/%s", a->app);
	desc = cs_description(a);
	doc = cJSON_CreateObject();
	cJSON_AddStringToObject(doc, "state", cs_state(p, a));
	if (p == CONFIG_PR_BITBUCKET) {
		key = cs_key(a->app);
		cJSON_AddStringToObject(doc, "key", key);
		cJSON_AddStringToObject(doc, "name", context);
		cJSON_AddStringToObject(doc, "url", a->page_url);
	} else {
		cJSON_AddStringToObject(doc, p == CONFIG_PR_GITLAB ? "name" :
		    "context", context);
		if (a->page_url != NULL)
			cJSON_AddStringToObject(doc, "target_url", a->page_url);
	}
	cJSON_AddStringToObject(doc, "description", desc);
	hdrs[0] = xasprintf("%s%s", pr_provider_auth(p), o->token);
	hdrs[1] = pr_provider_accept(p);
	if (notifier_json_request(req, url, doc, hdrs, o->ca_file, err,
	    errlen) == -1)
		goto out;
	req->variant = p;
	rc = 0;
out:
	if (hdrs[0] != NULL) {
		explicit_bzero((char *)hdrs[0], strlen(hdrs[0]));
		free((char *)hdrs[0]);
	}
	cJSON_Delete(doc);
	free(base);
	free(url);
	free(desc);
	free(context);
	free(key);
	return rc;
}

static void
cs_refused(int variant, const char *url, long status, const char *body,
    int *permanent, int *retry_after_s, char *out, size_t outlen)
{
	struct pr_answer	 ans = { status, body, *retry_after_s, 0, 0 };
	struct pr_outcome	 oc;

	memset(&oc, 0, sizeof(oc));
	if (variant <= CONFIG_PR_NONE || variant > CONFIG_PR_BITBUCKET) {
		snprintf(out, outlen, "HTTP %ld", status);
		return;
	}
	(void)pr_answer_fail(variant, url, &ans, "commit status", &oc, out,
	    outlen);
	if (oc.retry_after_s > 0) {
		*permanent = 0;
		*retry_after_s = oc.retry_after_s;
	} else
		*permanent = oc.permanent;
}

const struct notifier notifier_commit_status = {
	.type = "commit-status",
	.config = &cs_config,
	.check = cs_check,
	.render = cs_render,
	.flags = NOTIFIER_STATUS,
	.refused = cs_refused,
};
