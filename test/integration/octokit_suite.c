/*
 * The GitHub handler (handlers/github.c) against the published GitHub
 * example payloads (@octokit/webhooks-examples, installed under
 * test/node_modules by scripts/deps.sh): every push, ping, create and
 * package example, signed as GitHub signs them, in JSON and form mode.
 * Run from the repository root by test_cmocka_suites.py.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "handler.h"
#include "util.h"

#include "hook_treq.h"

#define OCTOKIT_INDEX \
	"test/node_modules/@octokit/webhooks-examples/api.github.com/index.json"

static const cJSON *
octokit_event(const cJSON *index, const char *name)
{
	const cJSON	*e;

	cJSON_ArrayForEach(e, index) {
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(e, "name");
		if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0)
			return cJSON_GetObjectItemCaseSensitive(e, "examples");
	}
	fail_msg("no %s examples in %s", name, OCTOKIT_INDEX);
	return NULL;
}

static const char *
jstr(const cJSON *o, const char *a, const char *b)
{
	const cJSON	*it = cJSON_GetObjectItemCaseSensitive(o, a);

	if (b != NULL)
		it = cJSON_GetObjectItemCaseSensitive(it, b);
	return cJSON_IsString(it) ? it->valuestring : NULL;
}

/* Check one octokit push example as GitHub would deliver it. */
static void
check_push_example(const cJSON *ex, const char *body, const char *ctype,
    int idx)
{
	struct config_source	 src = src_make("github", secrets1, 1);
	struct hook_result	 res;
	struct treq		 t;
	const struct hook_event	*ev;
	const cJSON		*c, *f, *p;
	const char		*ref = jstr(ex, "ref", NULL);
	const char		*after = jstr(ex, "after", NULL);
	char			 delivery[32];
	size_t			 want = 0;

	snprintf(delivery, sizeof(delivery), "octokit-%d", idx);
	treq_init(&t, body, strlen(body));
	treq_hdr(&t, "Content-Type", ctype);
	treq_hdr(&t, "X-GitHub-Event", "push");
	treq_hdr(&t, "X-GitHub-Delivery", delivery);
	treq_sign(&t, "X-Hub-Signature-256", "sha256=", "s3cret", t.body, t.len);
	assert_int_equal(run("github", &t, &src, &res), 0);
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ex, "deleted"))) {
		assert_int_equal(res.status, 200);
		assert_non_null(strstr(res.reason, "deleted"));
		assert_int_equal(res.nevents, 0);
		goto out;
	}
	if (res.status != 0)
		fail_msg("example %d: %d %s", idx, res.status, res.reason);
	assert_int_equal(res.nevents, 1);
	ev = &res.events[0];
	assert_int_equal(ev->kind, HOOK_EVENT_PUSH);
	assert_string_equal(ev->delivery, delivery);
	assert_string_equal(ev->ref, ref);
	assert_string_equal(ev->before, jstr(ex, "before", NULL));
	if (strncmp(ref, "refs/tags/", 10) == 0) {
		assert_string_equal(ev->tag, ref + 10);
		assert_null(ev->branch);
		/* The tag's commit, which head_commit names. */
		assert_string_equal(ev->after, jstr(ex, "head_commit", "id"));
	} else {
		assert_string_equal(ev->branch, ref + 11);
		assert_null(ev->tag);
		assert_string_equal(ev->after, after);
	}
	assert_string_equal(ev->repo_name, jstr(ex, "repository", "full_name"));
	assert_string_equal(ev->clone_url, jstr(ex, "repository", "clone_url"));
	assert_string_equal(ev->ssh_url, jstr(ex, "repository", "ssh_url"));
	assert_string_equal(ev->web_url, jstr(ex, "repository", "html_url"));
	assert_string_equal(ev->pusher, jstr(ex, "pusher", "name"));
	assert_non_null(ev->summary);
	assert_non_null(strstr(ev->summary, ev->repo_name));
	/* Every listed file is a changed path. */
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(ex, "commits")) {
		static const char *const k[] = { "added", "removed", "modified" };
		for (size_t i = 0; i < nitems(k); i++)
			cJSON_ArrayForEach(f,
			    cJSON_GetObjectItemCaseSensitive(c, k[i])) {
				assert_true(has_path(ev, f->valuestring));
				want++;
			}
	}
	assert_true(ev->npaths <= want);
	assert_true(want == 0 || ev->npaths > 0);
	/* A created ref has no base: its paths cannot be complete. */
	p = cJSON_GetObjectItemCaseSensitive(ex, "created");
	if (cJSON_IsTrue(p))
		assert_false(ev->paths_complete);
out:
	hook_result_free(&res);
	treq_free(&t);
}

static void
test_github_octokit_push(void **state)
{
	cJSON		*index = load_json(OCTOKIT_INDEX);
	const cJSON	*ex;
	char		*json, *pretty, *form;
	int		 i = 0, deleted = 0, tags = 0, branches = 0;

	(void)state;
	cJSON_ArrayForEach(ex, octokit_event(index, "push")) {
		json = cJSON_PrintUnformatted(ex);
		pretty = cJSON_Print(ex);
		assert_non_null(json);
		assert_non_null(pretty);
		form = form_encode(json);
		check_push_example(ex, json, "application/json", i);
		check_push_example(ex, pretty,
		    "application/json; charset=utf-8", i);
		check_push_example(ex, form,
		    "application/x-www-form-urlencoded", i);
		if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ex,
		    "deleted")))
			deleted++;
		else if (strncmp(jstr(ex, "ref", NULL), "refs/tags/", 10) == 0)
			tags++;
		else
			branches++;
		free(json);
		free(pretty);
		free(form);
		i++;
	}
	/* The package has 7: a tag create, four tag deletes, two branches. */
	assert_int_equal(i, 7);
	assert_true(deleted > 0 && tags > 0 && branches > 0);
	cJSON_Delete(index);
}

/* The signature is over the bytes received: another rendering fails. */
static void
test_github_signature_of_other_body(void **state)
{
	struct config_source	 src = src_make("github", secrets1, 1);
	struct hook_result	 res;
	struct treq		 t;
	cJSON			*index = load_json(OCTOKIT_INDEX);
	const cJSON		*ex;
	char			*json, *pretty, *form;

	(void)state;
	ex = cJSON_GetArrayItem(octokit_event(index, "push"), 4);
	json = cJSON_PrintUnformatted(ex);
	pretty = cJSON_Print(ex);
	form = form_encode(json);
	treq_init(&t, pretty, strlen(pretty));
	treq_hdr(&t, "Content-Type", "application/json");
	treq_hdr(&t, "X-GitHub-Event", "push");
	treq_sign(&t, "X-Hub-Signature-256", "sha256=", "s3cret", json,
	    strlen(json));
	assert_int_equal(run("github", &t, &src, &res), 401);
	treq_free(&t);
	/* Form mode: GitHub signs the form body, not the JSON inside. */
	treq_init(&t, form, strlen(form));
	treq_hdr(&t, "Content-Type", "application/x-www-form-urlencoded");
	treq_hdr(&t, "X-GitHub-Event", "push");
	treq_sign(&t, "X-Hub-Signature-256", "sha256=", "s3cret", json,
	    strlen(json));
	assert_int_equal(run("github", &t, &src, &res), 401);
	treq_free(&t);
	free(json);
	free(pretty);
	free(form);
	cJSON_Delete(index);
}

static void
test_github_octokit_ping_and_others(void **state)
{
	struct config_source	 src = src_make("github", secrets1, 1);
	struct hook_result	 res;
	struct treq		 t;
	cJSON			*index = load_json(OCTOKIT_INDEX);
	const cJSON		*ex;
	char			*json;
	int			 n = 0;

	(void)state;
	cJSON_ArrayForEach(ex, octokit_event(index, "ping")) {
		json = cJSON_PrintUnformatted(ex);
		treq_init(&t, json, strlen(json));
		treq_hdr(&t, "Content-Type", "application/json");
		treq_hdr(&t, "X-GitHub-Event", "ping");
		treq_sign(&t, "X-Hub-Signature-256", "sha256=", "s3cret",
		    t.body, t.len);
		assert_int_equal(run("github", &t, &src, &res), 0);
		assert_int_equal(res.status, 200);
		assert_int_equal(res.nevents, 0);
		hook_result_free(&res);
		treq_free(&t);
		free(json);
		n++;
	}
	assert_true(n > 0);
	/* create/delete are answered 200 ignored: pushes carry the change. */
	cJSON_ArrayForEach(ex, octokit_event(index, "create")) {
		json = cJSON_PrintUnformatted(ex);
		treq_init(&t, json, strlen(json));
		treq_hdr(&t, "Content-Type", "application/json");
		treq_hdr(&t, "X-GitHub-Event", "create");
		treq_sign(&t, "X-Hub-Signature-256", "sha256=", "s3cret",
		    t.body, t.len);
		assert_int_equal(run("github", &t, &src, &res), 0);
		assert_int_equal(res.status, 200);
		assert_non_null(strstr(res.reason, "ignored"));
		hook_result_free(&res);
		treq_free(&t);
		free(json);
	}
	cJSON_Delete(index);
}

static void
sign_github(struct treq *t, const char *event, const cJSON *doc)
{
	char	*json = cJSON_PrintUnformatted(doc);

	treq_init(t, json, strlen(json));
	free(json);
	treq_hdr(t, "Content-Type", "application/json");
	treq_hdr(t, "X-GitHub-Event", event);
	treq_hdr(t, "X-GitHub-Delivery", "pkg-1");
	treq_sign(t, "X-Hub-Signature-256", "sha256=", "s3cret", t->body,
	    t->len);
}

static void
test_github_octokit_package(void **state)
{
	struct config_source	 src = src_make("github", secrets1, 1);
	struct hook_result	 res;
	struct treq		 t;
	cJSON			*index = load_json(OCTOKIT_INDEX);
	cJSON			*ex, *pkg, *tag, *rp;
	const struct hook_event	*ev;

	(void)state;
	/* The examples say package_type "npm": not a container, ignored. */
	cJSON_ArrayForEach(ex, (cJSON *)octokit_event(index, "package")) {
		sign_github(&t, "package", ex);
		assert_int_equal(run("github", &t, &src, &res), 0);
		assert_int_equal(res.status, 200);
		assert_int_equal(res.nevents, 0);
		treq_free(&t);
	}
	/* The GHCR-shaped example as a container with a tag. */
	ex = cJSON_Duplicate(cJSON_GetArrayItem(octokit_event(index,
	    "package"), 1), 1);
	pkg = cJSON_GetObjectItemCaseSensitive(ex, "package");
	cJSON_ReplaceItemInObjectCaseSensitive(pkg, "package_type",
	    cJSON_CreateString("CONTAINER"));
	tag = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(pkg, "package_version"),
	    "container_metadata"), "tag");
	assert_non_null(tag);
	/* Untagged first (a child manifest of a multi-arch push): ignored. */
	sign_github(&t, "package", ex);
	assert_int_equal(run("github", &t, &src, &res), 0);
	assert_int_equal(res.status, 200);
	assert_non_null(strstr(res.reason, "untagged"));
	treq_free(&t);
	cJSON_ReplaceItemInObjectCaseSensitive(tag, "name",
	    cJSON_CreateString("v1.2.3"));
	/*
	 * The example's digest is "sha256:" and 40 hex digits, not an OCI
	 * digest: refused at ingest (400), not left for a job to die on.
	 */
	sign_github(&t, "package", ex);
	assert_int_equal(run("github", &t, &src, &res), 0);
	assert_int_equal(res.status, 400);
	assert_non_null(strstr(res.reason, "digest"));
	assert_int_equal(res.nevents, 0);
	treq_free(&t);
	cJSON_ReplaceItemInObjectCaseSensitive(tag, "digest",
	    cJSON_CreateString("sha256:6c62fb45fe66bfb1ea9a66abc38f6a0cc974292b"
	    "6c62fb45fe66bfb1ea9a66ab"));
	sign_github(&t, "package", ex);
	assert_int_equal(run("github", &t, &src, &res), 0);
	assert_int_equal(res.status, 0);
	assert_int_equal(res.nevents, 1);
	ev = &res.events[0];
	assert_int_equal(ev->kind, HOOK_EVENT_IMAGE);
	assert_string_equal(ev->registry, "ghcr.io");
	assert_string_equal(ev->repository,
	    "codertocat/hello-world/hello-world-npm");
	assert_string_equal(ev->tag, "v1.2.3");
	assert_string_equal(ev->digest,
	    "sha256:6c62fb45fe66bfb1ea9a66abc38f6a0cc974292b"
	    "6c62fb45fe66bfb1ea9a66ab");
	assert_string_equal(ev->delivery, "pkg-1");
	/* "2019-05-09T23:28:29Z" */
	assert_true(ev->pushed_at_ms == 1557444509000LL);
	hook_result_free(&res);
	treq_free(&t);
	/* The same object as a registry_package event. */
	rp = cJSON_DetachItemFromObjectCaseSensitive(ex, "package");
	cJSON_AddItemToObject(ex, "registry_package", rp);
	sign_github(&t, "registry_package", ex);
	assert_int_equal(run("github", &t, &src, &res), 0);
	assert_int_equal(res.status, 0);
	assert_int_equal(res.nevents, 1);
	assert_string_equal(res.events[0].tag, "v1.2.3");
	hook_result_free(&res);
	treq_free(&t);
	cJSON_Delete(ex);
	cJSON_Delete(index);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_github_octokit_push),
		cmocka_unit_test(test_github_signature_of_other_body),
		cmocka_unit_test(test_github_octokit_ping_and_others),
		cmocka_unit_test(test_github_octokit_package),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
