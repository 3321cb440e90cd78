/*
 * ingest.c: from a raw webhook request to queue items, with no I/O.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "handler.h"
#include "ingest.h"
#include "job.h"
#include "router.h"
#include "util.h"

char *
ingest_error_json(int status, const char *msg)
{
	cJSON	*o;
	char	*s;

	if ((o = cJSON_CreateObject()) == NULL ||
	    cJSON_AddStringToObject(o, "error", msg) == NULL ||
	    cJSON_AddNumberToObject(o, "code", status) == NULL)
		abort();
	if ((s = cJSON_PrintUnformatted(o)) == NULL)
		abort();
	cJSON_Delete(o);
	return s;
}

static char *
ingest_json_kv(const char *key, const char *value)
{
	cJSON	*o;
	char	*s;

	if ((o = cJSON_CreateObject()) == NULL ||
	    cJSON_AddStringToObject(o, key, value) == NULL)
		abort();
	if ((s = cJSON_PrintUnformatted(o)) == NULL)
		abort();
	cJSON_Delete(o);
	return s;
}

static void
ingest_fail(struct ingest_result *res, int status, const char *msg)
{
	res->status = status;
	free(res->body);
	res->body = ingest_error_json(status, msg);
	util_strlcpy(res->cause, msg, sizeof(res->cause));
}

/* Source names are what config allows: letters, digits, '.', '_', '-'. */
static int
ingest_name_ok(const char *s, size_t n)
{
	size_t	 i;

	if (n == 0 || n > 128)
		return 0;
	if (n <= 2 && s[0] == '.')
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '.' &&
		    s[i] != '_' && s[i] != '-')
			return 0;
	return 1;
}

void
ingest_process(const struct config *cfg, const char *path,
    const struct hook_request *in, struct ingest_result *res)
{
	const struct config_source	*src;
	const struct handler		*h;
	struct hook_request		 req = *in;
	const char			*slash;
	char				*name = NULL, *token = NULL, why[256];
	struct job_spec			*specs;
	size_t				 i, n, namelen;
	int				 st;

	memset(res, 0, sizeof(*res));
	slash = strchr(path, '/');
	namelen = slash != NULL ? (size_t)(slash - path) : strlen(path);
	if (!ingest_name_ok(path, namelen)) {
		ingest_fail(res, 404, "unknown source");
		goto out;
	}
	name = xstrndup(path, namelen);
	if ((src = config_find_source(cfg, name)) == NULL) {
		ingest_fail(res, 404, "unknown source");
		goto out;
	}
	res->source = src;
	if ((h = handler_find(src->type)) == NULL) {
		ingest_fail(res, 500, "source type has no handler");
		goto out;
	}
	if (slash != NULL) {
		token = xstrdup(slash + 1);
		/* Only token-in-path senders have a second path segment. */
		if (!h->path_token || token[0] == '\0' ||
		    strchr(token, '/') != NULL) {
			ingest_fail(res, 404, "unknown source");
			goto out;
		}
	}
	req.path_token = token;
	if (req.method == NULL || strcmp(req.method, "POST") != 0) {
		ingest_fail(res, 405, "method not allowed; webhooks are POST");
		goto out;
	}
	why[0] = '\0';
	if ((st = h->verify(&req, src, why, sizeof(why))) != 0) {
		ingest_fail(res, st, why[0] != '\0' ? why :
		    st == 415 ? "unsupported content type" :
		    "signature or token missing or wrong");
		goto out;
	}
	res->verified = 1;
	handler_json_arena_begin();
	h->parse(&req, src, &res->hr);
	handler_json_arena_end();
	if (res->hr.status != 0) {
		if (res->hr.status == 200) {
			res->status = 200;
			res->body = ingest_json_kv("ignored", res->hr.reason);
			util_strlcpy(res->cause, res->hr.reason,
			    sizeof(res->cause));
		} else
			ingest_fail(res, res->hr.status, res->hr.reason[0] ?
			    res->hr.reason : "malformed payload");
		goto out;
	}
	if (res->hr.nevents == 0) {
		res->status = 200;
		res->body = ingest_json_kv("ignored", "no event");
		util_strlcpy(res->cause, "no event", sizeof(res->cause));
		goto out;
	}
	res->delivery = res->hr.events[0].delivery;
	res->items = xcalloc(res->hr.nevents, sizeof(*res->items));
	// NOLINTNEXTLINE(bugprone-sizeof-expression): array of pointers
	res->specs = xcalloc(res->hr.nevents, sizeof(*res->specs));
	why[0] = '\0';
	for (i = 0; i < res->hr.nevents; i++) {
		specs = NULL;
		n = router_route(cfg, &res->hr.events[i], &specs, why,
		    sizeof(why));
		if (n == 0) {
			free(specs);
			continue;
		}
		res->specs[res->nitems] = specs;
		res->items[res->nitems].source = src->name;
		res->items[res->nitems].event = &res->hr.events[i];
		res->items[res->nitems].jobs = specs;
		res->items[res->nitems].njobs = n;
		res->nitems++;
	}
	if (res->nitems == 0) {
		res->status = 200;
		res->body = ingest_json_kv("ignored", why[0] ? why : "no app");
		util_strlcpy(res->cause, why[0] ? why : "no app",
		    sizeof(res->cause));
		goto out;
	}
	res->status = 0;
out:
	free(name);
	free(token);
}

void
ingest_result_free(struct ingest_result *res)
{
	size_t	 i;

	for (i = 0; i < res->nitems; i++)
		free(res->specs[i]);
	free(res->specs);
	free(res->items);
	free(res->body);
	hook_result_free(&res->hr);
	memset(res, 0, sizeof(*res));
}
