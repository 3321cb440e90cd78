/*
 * Unit tests for the Git host handlers (handlers/github.c, gitlab.c,
 * gitea.c, bitbucket.c, generic.c): signatures as each sender computes
 * them, GitLab's documented payloads (test/fixtures/gitlab/), and malformed
 * payloads.  The published GitHub examples (@octokit/webhooks-examples, an
 * npm fixture) are test/integration/octokit_suite.c.  Run from the
 * repository root (test/run.sh does).
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
#include "hookjson.h"
#include "util.h"

#include "hook_treq.h"


#define ZERO40	"0000000000000000000000000000000000000000"

/* GitHub's documented test vector. */
static void
test_github_vector(void **state)
{
	char			*sec[] = { "It's a Secret to Everybody" };
	struct config_source	 src = src_make("github", sec, 1);
	struct hook_request	 r;
	struct treq		 t;
	char			 why[256];

	(void)state;
	treq_init(&t, "Hello, World!", 13);
	treq_hdr(&t, "Content-Type", "application/json");
	treq_hdr(&t, "X-Hub-Signature-256", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
	r = treq_req(&t);
	assert_int_equal(handler_find("github")->verify(&r, &src, why,
	    sizeof(why)), 0);
	/* Truncated by one digit. */
	t.h[1].value = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1";
	r = treq_req(&t);
	assert_int_equal(handler_find("github")->verify(&r, &src, why,
	    sizeof(why)), 401);
	assert_null(strstr(why, "757107"));
	/* Uppercase hex is the same digest. */
	t.h[1].value = "sha256=757107EA0EB2509FC211221CCE984B8A37570B6D7586C22C46F4379C8B043E17";
	r = treq_req(&t);
	assert_int_equal(handler_find("github")->verify(&r, &src, why,
	    sizeof(why)), 0);
	treq_free(&t);
}

static void
test_github_sha1(void **state)
{
	struct config_source	 src = src_make("github", secrets1, 1);
	struct hook_request	 r;
	struct treq		 t;
	char			 why[256], hex[41], *sig;
	const char		*body = "{\"zen\":\"x\"}";

	(void)state;
	util_hmac_sha1_hex("s3cret", 6, body, strlen(body), hex);
	sig = xasprintf("sha1=%s", hex);
	treq_init(&t, body, strlen(body));
	treq_hdr(&t, "Content-Type", "application/json");
	treq_hdr(&t, "X-Hub-Signature", sig);
	r = treq_req(&t);
	assert_int_equal(handler_find("github")->verify(&r, &src, why,
	    sizeof(why)), 401);
	src.allow_sha1 = 1;
	assert_int_equal(handler_find("github")->verify(&r, &src, why,
	    sizeof(why)), 0);
	/* A present but wrong SHA-256 signature never falls back to SHA-1. */
	treq_hdr(&t, "X-Hub-Signature-256", "sha256=" ZERO40 "000000000000000000000000");
	r = treq_req(&t);
	assert_int_equal(handler_find("github")->verify(&r, &src, why,
	    sizeof(why)), 401);
	treq_free(&t);
	free(sig);
}

/* Two secrets (rotation): either verifies, nothing else does. */
static void
test_secret_rotation(void **state)
{
	struct config_source	 src;
	struct hook_result	 res;
	struct treq		 t;
	const char		*types[] = { "github", "generic-hmac",
				    "bitbucket" };
	const char		*hdrs[] = { "X-Hub-Signature-256", "X-Signature",
				    "X-Hub-Signature" };
	const char		*keys[] = { "new-secret", "old-secret", "other" };
	const char		*body = "{}";
	size_t			 i, k;

	(void)state;
	for (i = 0; i < nitems(types); i++) {
		src = src_make(types[i], secrets2, 2);
		for (k = 0; k < nitems(keys); k++) {
			treq_init(&t, body, strlen(body));
			treq_hdr(&t, "Content-Type", "application/json");
			treq_sign(&t, hdrs[i], "sha256=", keys[k], body, 2);
			assert_int_equal(run(types[i], &t, &src, &res),
			    k < 2 ? 0 : 401);
			hook_result_free(&res);
			treq_free(&t);
		}
	}
	/* GitLab tokens too. */
	src = src_make("gitlab", secrets2, 2);
	for (k = 0; k < nitems(keys); k++) {
		treq_init(&t, body, strlen(body));
		treq_hdr(&t, "Content-Type", "application/json");
		treq_hdr(&t, "X-Gitlab-Token", keys[k]);
		assert_int_equal(run("gitlab", &t, &src, &res), k < 2 ? 0 : 401);
		hook_result_free(&res);
		treq_free(&t);
	}
}

static void
gitlab_req(struct treq *t, const char *file, const char *event,
    const char *token)
{
	char	*text;
	size_t	 len;

	assert_non_null(text = util_read_file(file, 0, &len));
	treq_init(t, text, len);
	free(text);
	treq_hdr(t, "Content-Type", "application/json");
	treq_hdr(t, "X-Gitlab-Event", event);
	treq_hdr(t, "X-Gitlab-Token", token);
}

static void
test_gitlab_documented(void **state)
{
	struct config_source	 src = src_make("gitlab", secrets1, 1);
	struct hook_result	 res;
	struct treq		 t;
	const struct hook_event	*ev;

	(void)state;
	gitlab_req(&t, "test/fixtures/gitlab/push.json", "Push Hook", "s3cret");
	treq_hdr(&t, "Idempotency-Key", "idem-1");
	treq_hdr(&t, "X-Gitlab-Event-UUID", "uuid-1");
	assert_int_equal(run("gitlab", &t, &src, &res), 0);
	assert_int_equal(res.status, 0);
	assert_int_equal(res.nevents, 1);
	ev = &res.events[0];
	assert_string_equal(ev->delivery, "idem-1");
	assert_string_equal(ev->ref, "refs/heads/master");
	assert_string_equal(ev->branch, "master");
	assert_string_equal(ev->before, "95790bf891e76fee5e1747ab589903a6a1f80f22");
	assert_string_equal(ev->after, "da1560886d4f094c3e6c9ef40349f7d38b5d27d7");
	assert_string_equal(ev->repo_name, "mike/diaspora");
	assert_string_equal(ev->clone_url, "http://example.com/mike/diaspora.git");
	assert_string_equal(ev->ssh_url, "git@example.com:mike/diaspora.git");
	assert_string_equal(ev->web_url, "http://example.com/mike/diaspora");
	assert_string_equal(ev->pusher, "jsmith");
	assert_int_equal(ev->npaths, 2);
	assert_true(has_path(ev, "CHANGELOG"));
	assert_true(has_path(ev, "app/controller/application.rb"));
	/* 2 commits listed of total_commits_count 4. */
	assert_false(ev->paths_complete);
	hook_result_free(&res);
	treq_free(&t);

	/* Without Idempotency-Key the event UUID is the delivery id. */
	gitlab_req(&t, "test/fixtures/gitlab/push.json", "Push Hook", "s3cret");
	treq_hdr(&t, "X-Gitlab-Event-UUID", "uuid-1");
	assert_int_equal(run("gitlab", &t, &src, &res), 0);
	assert_string_equal(res.events[0].delivery, "uuid-1");
	hook_result_free(&res);
	treq_free(&t);

	gitlab_req(&t, "test/fixtures/gitlab/tag_push.json", "Tag Push Hook",
	    "s3cret");
	assert_int_equal(run("gitlab", &t, &src, &res), 0);
	assert_int_equal(res.status, 0);
	ev = &res.events[0];
	assert_string_equal(ev->tag, "v1.0.0");
	assert_null(ev->branch);
	assert_string_equal(ev->after, "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7");
	assert_string_equal(ev->pusher, "John Smith");
	assert_int_equal(strncmp(ev->delivery, "sha256:", 7), 0);
	hook_result_free(&res);
	treq_free(&t);

	/* System hooks: same header for every kind; the body decides. */
	gitlab_req(&t, "test/fixtures/gitlab/system_push.json", "System Hook",
	    "s3cret");
	assert_int_equal(run("gitlab", &t, &src, &res), 0);
	assert_int_equal(res.status, 0);
	ev = &res.events[0];
	assert_string_equal(ev->branch, "master");
	assert_string_equal(ev->after, "da1560886d4f094c3e6c9ef40349f7d38b5d27d7");
	/* "commits are never displayed" with their files: not complete. */
	assert_false(ev->paths_complete);
	hook_result_free(&res);
	treq_free(&t);

	gitlab_req(&t, "test/fixtures/gitlab/system_tag_push.json",
	    "System Hook", "s3cret");
	assert_int_equal(run("gitlab", &t, &src, &res), 0);
	assert_int_equal(res.status, 0);
	/* The annotated tag's commit (checkout_sha), not the tag object. */
	assert_string_equal(res.events[0].after,
	    "5937ac0a7beb003549fc5fd26fc247adbce4a52e");
	hook_result_free(&res);
	treq_free(&t);

	gitlab_req(&t, "test/fixtures/gitlab/system_repository_update.json",
	    "System Hook", "s3cret");
	assert_int_equal(run("gitlab", &t, &src, &res), 0);
	assert_int_equal(res.status, 200);
	hook_result_free(&res);
	treq_free(&t);

	gitlab_req(&t, "test/fixtures/gitlab/push.json", "Push Hook", "wrong");
	assert_int_equal(run("gitlab", &t, &src, &res), 401);
	treq_free(&t);
	gitlab_req(&t, "test/fixtures/gitlab/push.json", "Push Hook", "s3cre");
	assert_int_equal(run("gitlab", &t, &src, &res), 401);
	treq_free(&t);
}

static void
test_gitlab_deleted_and_complete(void **state)
{
	struct config_source	 src = src_make("gitlab", secrets1, 1);
	struct hook_result	 res;
	struct treq		 t;
	cJSON			*doc = load_json("test/fixtures/gitlab/push.json");
	char			*json;

	(void)state;
	/* Every commit listed: the paths are the whole change. */
	cJSON_ReplaceItemInObjectCaseSensitive(doc, "total_commits_count",
	    cJSON_CreateNumber(2));
	json = cJSON_PrintUnformatted(doc);
	treq_init(&t, json, strlen(json));
	free(json);
	treq_hdr(&t, "Content-Type", "application/json");
	treq_hdr(&t, "X-Gitlab-Event", "Push Hook");
	treq_hdr(&t, "X-Gitlab-Token", "s3cret");
	assert_int_equal(run("gitlab", &t, &src, &res), 0);
	assert_int_equal(res.status, 0);
	assert_true(res.events[0].paths_complete);
	hook_result_free(&res);
	treq_free(&t);

	/* A deleted branch: checkout_sha null, after zeros. */
	cJSON_ReplaceItemInObjectCaseSensitive(doc, "checkout_sha",
	    cJSON_CreateNull());
	cJSON_ReplaceItemInObjectCaseSensitive(doc, "after",
	    cJSON_CreateString(ZERO40));
	json = cJSON_PrintUnformatted(doc);
	treq_init(&t, json, strlen(json));
	free(json);
	treq_hdr(&t, "Content-Type", "application/json");
	treq_hdr(&t, "X-Gitlab-Event", "Push Hook");
	treq_hdr(&t, "X-Gitlab-Token", "s3cret");
	assert_int_equal(run("gitlab", &t, &src, &res), 0);
	assert_int_equal(res.status, 200);
	assert_int_equal(res.nevents, 0);
	treq_free(&t);
	cJSON_Delete(doc);
}

static const char gitea_push[] =
    "{\n  \"ref\": \"refs/heads/main\",\n"
    "  \"before\": \"1111111111111111111111111111111111111111\",\n"
    "  \"after\": \"2222222222222222222222222222222222222222\",\n"
    "  \"total_commits\": 1,\n"
    "  \"commits\": [{\"id\": \"2222222222222222222222222222222222222222\","
    " \"message\": \"d\\u00e9ploiement \\u2713\", \"added\": [],"
    " \"removed\": [], \"modified\": [\"apps/web/deploy.yaml\"]}],\n"
    "  \"repository\": {\"full_name\": \"acme/deploy\","
    " \"clone_url\": \"https://gitea.example/acme/deploy.git\","
    " \"ssh_url\": \"git@gitea.example:acme/deploy.git\","
    " \"html_url\": \"https://gitea.example/acme/deploy\"},\n"
    "  \"pusher\": {\"login\": \"alice\"}\n}";

static void
test_gitea(void **state)
{
	struct config_source	 src = src_make("gitea", secrets1, 1);
	struct hook_result	 res;
	struct treq		 t;
	char			*form, *hex;

	(void)state;
	treq_init(&t, gitea_push, strlen(gitea_push));
	treq_hdr(&t, "Content-Type", "application/json");
	treq_hdr(&t, "X-Gitea-Event", "push");
	treq_hdr(&t, "X-Gitea-Delivery", "gd-1");
	treq_sign(&t, "X-Gitea-Signature", "", "s3cret", gitea_push,
	    strlen(gitea_push));
	assert_int_equal(run("gitea", &t, &src, &res), 0);
	assert_int_equal(res.status, 0);
	assert_string_equal(res.events[0].branch, "main");
	assert_string_equal(res.events[0].pusher, "alice");
	assert_string_equal(res.events[0].delivery, "gd-1");
	assert_true(res.events[0].paths_complete);
	assert_true(has_path(&res.events[0], "apps/web/deploy.yaml"));
	hook_result_free(&res);
	treq_free(&t);

	/* Form mode: the signature covers the decoded JSON. */
	form = form_encode(gitea_push);
	treq_init(&t, form, strlen(form));
	treq_hdr(&t, "Content-Type", "application/x-www-form-urlencoded");
	treq_hdr(&t, "X-Forgejo-Event", "push");
	treq_sign(&t, "X-Forgejo-Signature", "", "s3cret", gitea_push,
	    strlen(gitea_push));
	assert_int_equal(run("gitea", &t, &src, &res), 0);
	assert_int_equal(res.status, 0);
	assert_string_equal(res.events[0].after,
	    "2222222222222222222222222222222222222222");
	hook_result_free(&res);
	treq_free(&t);
	/* ...so a signature of the form body is wrong. */
	treq_init(&t, form, strlen(form));
	treq_hdr(&t, "Content-Type", "application/x-www-form-urlencoded");
	treq_hdr(&t, "X-Gitea-Event", "push");
	treq_sign(&t, "X-Gitea-Signature", "", "s3cret", form, strlen(form));
	assert_int_equal(run("gitea", &t, &src, &res), 401);
	treq_free(&t);
	/* GitHub-style prefixed value in the Gitea header: malformed. */
	treq_init(&t, gitea_push, strlen(gitea_push));
	treq_hdr(&t, "Content-Type", "application/json");
	treq_hdr(&t, "X-Gitea-Event", "push");
	treq_sign(&t, "X-Gitea-Signature", "sha256=", "s3cret", gitea_push,
	    strlen(gitea_push));
	assert_int_equal(run("gitea", &t, &src, &res), 401);
	treq_free(&t);
	free(form);
	(void)hex;
}

static const char bb_cloud[] =
    "{\"actor\": {\"display_name\": \"Alice\", \"nickname\": \"alice\"},"
    " \"repository\": {\"full_name\": \"acme/deploy\", \"name\": \"deploy\","
    "  \"links\": {\"html\": {\"href\": \"https://bitbucket.org/acme/deploy\"}}},"
    " \"push\": {\"changes\": ["
    "  {\"new\": {\"type\": \"branch\", \"name\": \"main\","
    "    \"target\": {\"hash\": \"2222222222222222222222222222222222222222\"}},"
    "   \"old\": {\"type\": \"branch\", \"name\": \"main\","
    "    \"target\": {\"hash\": \"1111111111111111111111111111111111111111\"}},"
    "   \"created\": false, \"closed\": false, \"truncated\": false,"
    "   \"commits\": []},"
    "  {\"new\": null, \"old\": {\"type\": \"branch\", \"name\": \"gone\","
    "    \"target\": {\"hash\": \"3333333333333333333333333333333333333333\"}},"
    "   \"closed\": true},"
    "  {\"new\": {\"type\": \"tag\", \"name\": \"v1.0.0\","
    "    \"target\": {\"hash\": \"4444444444444444444444444444444444444444\"}},"
    "   \"old\": null, \"created\": true}"
    " ]}}";

static const char bb_dc[] =
    "{\"eventKey\": \"repo:refs_changed\", \"date\": \"2019-06-17T19:37:57+1000\","
    " \"actor\": {\"name\": \"john\", \"displayName\": \"John\"},"
    " \"repository\": {\"slug\": \"test-repo\", \"name\": \"test-repo\","
    "  \"project\": {\"key\": \"MYPROJECT\"},"
    "  \"links\": {\"clone\": ["
    "   {\"href\": \"ssh://git@bitbucketserver:7999/myproject/test-repo.git\", \"name\": \"ssh\"},"
    "   {\"href\": \"https://bitbucketserver/scm/myproject/test-repo.git\", \"name\": \"http\"}]}},"
    " \"changes\": [{\"ref\": {\"id\": \"refs/heads/master\", \"displayId\": \"master\","
    "  \"type\": \"BRANCH\"}, \"refId\": \"refs/heads/master\","
    "  \"fromHash\": \"f09c8889a2d234985734958795a31589cd91ffda\","
    "  \"toHash\": \"22671f0349857934857983457983475ec39f196b\", \"type\": \"UPDATE\"}]}";

static void
test_bitbucket(void **state)
{
	struct config_source	 src = src_make("bitbucket", secrets1, 1);
	struct hook_result	 res;
	struct treq		 t;

	(void)state;
	treq_init(&t, bb_cloud, strlen(bb_cloud));
	treq_hdr(&t, "Content-Type", "application/json");
	treq_hdr(&t, "X-Event-Key", "repo:push");
	treq_hdr(&t, "X-Request-UUID", "req-1");
	treq_sign(&t, "X-Hub-Signature", "sha256=", "s3cret", bb_cloud,
	    strlen(bb_cloud));
	assert_int_equal(run("bitbucket", &t, &src, &res), 0);
	assert_int_equal(res.status, 0);
	/* Three changes, one a deleted branch: two events. */
	assert_int_equal(res.nevents, 2);
	assert_string_equal(res.events[0].delivery, "req-1#0");
	assert_string_equal(res.events[0].branch, "main");
	assert_string_equal(res.events[0].before,
	    "1111111111111111111111111111111111111111");
	assert_string_equal(res.events[0].clone_url,
	    "https://bitbucket.org/acme/deploy.git");
	assert_string_equal(res.events[0].ssh_url,
	    "git@bitbucket.org:acme/deploy.git");
	assert_string_equal(res.events[0].pusher, "alice");
	assert_string_equal(res.events[1].delivery, "req-1#2");
	assert_string_equal(res.events[1].tag, "v1.0.0");
	assert_string_equal(res.events[1].before, ZERO40);
	assert_string_equal(res.events[1].after,
	    "4444444444444444444444444444444444444444");
	hook_result_free(&res);
	treq_free(&t);

	treq_init(&t, bb_dc, strlen(bb_dc));
	treq_hdr(&t, "Content-Type", "application/json; charset=UTF-8");
	treq_hdr(&t, "X-Event-Key", "repo:refs_changed");
	treq_hdr(&t, "X-Request-Id", "dc-1");
	treq_sign(&t, "X-Hub-Signature", "sha256=", "s3cret", bb_dc,
	    strlen(bb_dc));
	assert_int_equal(run("bitbucket", &t, &src, &res), 0);
	assert_int_equal(res.status, 0);
	assert_int_equal(res.nevents, 1);
	assert_string_equal(res.events[0].delivery, "dc-1");
	assert_string_equal(res.events[0].repo_name, "MYPROJECT/test-repo");
	assert_string_equal(res.events[0].clone_url,
	    "https://bitbucketserver/scm/myproject/test-repo.git");
	assert_string_equal(res.events[0].ssh_url,
	    "ssh://git@bitbucketserver:7999/myproject/test-repo.git");
	assert_string_equal(res.events[0].after,
	    "22671f0349857934857983457983475ec39f196b");
	assert_string_equal(res.events[0].pusher, "john");
	hook_result_free(&res);
	treq_free(&t);

	/* GitHub's SHA-1 under the same header name is not accepted. */
	{
		char hex[41], *sig;

		util_hmac_sha1_hex("s3cret", 6, bb_dc, strlen(bb_dc), hex);
		sig = xasprintf("sha1=%s", hex);
		treq_init(&t, bb_dc, strlen(bb_dc));
		treq_hdr(&t, "Content-Type", "application/json");
		treq_hdr(&t, "X-Event-Key", "repo:refs_changed");
		treq_hdr(&t, "X-Hub-Signature", sig);
		assert_int_equal(run("bitbucket", &t, &src, &res), 401);
		treq_free(&t);
		free(sig);
	}
}

/* Parse body as type with a valid signature; returns the result status. */
static int
parse_signed(const char *type, const char *event_hdr, const char *event,
    const char *body, struct hook_result *res)
{
	struct config_source	 src = src_make(type, secrets1, 1);
	struct treq		 t;
	const char		*sigh = strcmp(type, "github") == 0 ?
				    "X-Hub-Signature-256" : "X-Signature";
	int			 st;

	treq_init(&t, body, strlen(body));
	treq_hdr(&t, "Content-Type", "application/json");
	if (event_hdr != NULL)
		treq_hdr(&t, event_hdr, event);
	treq_sign(&t, sigh, "sha256=", "s3cret", body, strlen(body));
	assert_int_equal(run(type, &t, &src, res), 0);
	st = res->status;
	treq_free(&t);
	return st;
}

static void
test_wrong_types(void **state)
{
	static const struct {
		const char	*body;
		const char	*field;
	} cases[] = {
		{ "{\"ref\": 1, \"before\": \"" ZERO40 "\"}", "'ref'" },
		{ "{\"ref\": \"refs/heads/main\", \"before\": 5}", "'before'" },
		{ "{\"ref\": \"refs/heads/main\", \"before\": \"" ZERO40 "\","
		  " \"after\": \"nothex\"}", "'after'" },
		{ "{\"ref\": \"refs/heads/main\", \"before\": \"" ZERO40 "\","
		  " \"after\": \"1111111111111111111111111111111111111111\","
		  " \"deleted\": \"no\"}", "'deleted'" },
		{ "{\"ref\": \"refs/heads/main\", \"before\": \"" ZERO40 "\","
		  " \"after\": \"1111111111111111111111111111111111111111\","
		  " \"repository\": {\"full_name\": \"a/b\", \"clone_url\": []}}",
		  "'repository.clone_url'" },
		{ "{\"ref\": \"refs/heads/main\", \"before\": \"" ZERO40 "\","
		  " \"after\": \"1111111111111111111111111111111111111111\","
		  " \"repository\": {\"full_name\": \"a/b\","
		  " \"clone_url\": \"https://h/a/b\"}, \"commits\": {}}",
		  "'commits'" },
		{ "{\"ref\": \"refs/heads/main\", \"before\": \"" ZERO40 "\","
		  " \"after\": \"1111111111111111111111111111111111111111\","
		  " \"repository\": {\"full_name\": \"a/b\","
		  " \"clone_url\": \"https://h/a/b\"},"
		  " \"commits\": [{\"added\": [7]}]}", "commits[0].added" },
		{ "{\"ref\": \"refs/heads/main\", \"before\": \"" ZERO40 "\","
		  " \"after\": \"1111111111111111111111111111111111111111\"}",
		  "'repository.full_name'" },
		{ "[1, 2]", "object" },
		{ "{\"ref\": \"x\"} trailing", "JSON" },
		{ "not json", "JSON" },
	};
	struct hook_result	 res;
	size_t			 i;

	(void)state;
	for (i = 0; i < nitems(cases); i++) {
		assert_int_equal(parse_signed("github", "X-GitHub-Event",
		    "push", cases[i].body, &res), 400);
		if (strstr(res.reason, cases[i].field) == NULL)
			fail_msg("case %zu: reason \"%s\" lacks %s", i,
			    res.reason, cases[i].field);
		assert_int_equal(res.nevents, 0);
		hook_result_free(&res);
	}
	assert_int_equal(parse_signed("generic-hmac", NULL, NULL,
	    "{\"repository\": \"https://h/a/b\", \"ref\": 3,"
	    " \"after\": \"1111111111111111111111111111111111111111\"}", &res),
	    400);
	assert_non_null(strstr(res.reason, "'ref'"));
	hook_result_free(&res);
}

static void
test_generic(void **state)
{
	struct config_source	 src = src_make("generic-hmac", secrets1, 1);
	struct hook_result	 res;
	struct treq		 t;
	const char		*body = "{\"repository\": \"https://git.example/acme/deploy.git\","
	    " \"ref\": \"refs/heads/main\","
	    " \"after\": \"ABCDEF0123456789ABCDEF0123456789ABCDEF01\","
	    " \"delivery\": \"body-id\"}";
	char			 hex[65];

	(void)state;
	assert_int_equal(parse_signed("generic-hmac", NULL, NULL, body, &res),
	    0);
	assert_int_equal(res.nevents, 1);
	assert_string_equal(res.events[0].delivery, "body-id");
	assert_string_equal(res.events[0].clone_url,
	    "https://git.example/acme/deploy.git");
	assert_string_equal(res.events[0].after,
	    "abcdef0123456789abcdef0123456789abcdef01");
	hook_result_free(&res);

	/* X-Delivery wins over the body. */
	treq_init(&t, body, strlen(body));
	treq_hdr(&t, "Content-Type", "application/json");
	treq_hdr(&t, "X-Delivery", "hdr-id");
	treq_sign(&t, "X-Signature", "sha256=", "s3cret", body, strlen(body));
	assert_int_equal(run("generic-hmac", &t, &src, &res), 0);
	assert_string_equal(res.events[0].delivery, "hdr-id");
	hook_result_free(&res);
	treq_free(&t);

	/* Neither: the body's SHA-256. */
	body = "{\"repository\": \"https://git.example/acme/deploy.git\","
	    " \"ref\": \"refs/tags/v1\","
	    " \"after\": \"abcdef0123456789abcdef0123456789abcdef01\"}";
	assert_int_equal(parse_signed("generic-hmac", NULL, NULL, body, &res),
	    0);
	util_sha256_hex(body, strlen(body), hex);
	assert_string_equal(res.events[0].delivery + 7, hex);
	assert_string_equal(res.events[0].tag, "v1");
	hook_result_free(&res);

	/* A ref that is neither a branch nor a tag is a client error here. */
	body = "{\"repository\": \"r\", \"ref\": \"main\","
	    " \"after\": \"abcdef0123456789abcdef0123456789abcdef01\"}";
	assert_int_equal(parse_signed("generic-hmac", NULL, NULL, body, &res),
	    400);
	hook_result_free(&res);
}

static void
test_content_types(void **state)
{
	struct config_source	 src;
	struct hook_result	 res;
	struct treq		 t;
	const char		*types[] = { "github", "gitlab", "gitea",
				    "bitbucket", "generic-hmac" };
	size_t			 i;

	(void)state;
	static const char *const sigh[] = { "X-Hub-Signature-256",
	    "X-Gitlab-Token", "X-Gitea-Signature", "X-Hub-Signature",
	    "X-Signature" };
	static const char *const prefix[] = { "sha256=", NULL, "", "sha256=",
	    "sha256=" };

	for (i = 0; i < nitems(types); i++) {
		src = src_make(types[i], secrets1, 1);
		/* Authenticated, but a type the sender does not use: 415. */
		treq_init(&t, "{}", 2);
		treq_hdr(&t, "Content-Type", "text/plain");
		if (prefix[i] == NULL)
			treq_hdr(&t, sigh[i], "s3cret");
		else
			treq_sign(&t, sigh[i], prefix[i], "s3cret", "{}", 2);
		assert_int_equal(run(types[i], &t, &src, &res), 415);
		treq_free(&t);
		treq_init(&t, "{}", 2);
		if (prefix[i] == NULL)
			treq_hdr(&t, sigh[i], "s3cret");
		else
			treq_sign(&t, sigh[i], prefix[i], "s3cret", "{}", 2);
		assert_int_equal(run(types[i], &t, &src, &res), 415);
		treq_free(&t);
		/* Unauthenticated comes first, whatever the type. */
		treq_init(&t, "{}", 2);
		treq_hdr(&t, "Content-Type", "text/plain");
		assert_int_equal(run(types[i], &t, &src, &res), 401);
		treq_free(&t);
		treq_init(&t, "{}", 2);
		assert_int_equal(run(types[i], &t, &src, &res), 401);
		treq_free(&t);
		/* Right type, no signature or token at all. */
		treq_init(&t, "{}", 2);
		treq_hdr(&t, "Content-Type", "application/json");
		assert_int_equal(run(types[i], &t, &src, &res), 401);
		treq_free(&t);
	}
}

static void
test_hookjson_time(void **state)
{
	(void)state;
	assert_true(hookjson_time_ms("1970-01-01T00:00:00Z") == 0);
	assert_true(hookjson_time_ms("2019-05-09T23:28:29Z") == 1557444509000LL);
	assert_true(hookjson_time_ms("2019-05-09T23:28:29.25Z") == 1557444509250LL);
	assert_true(hookjson_time_ms("2019-05-10T01:28:29+02:00") == 1557444509000LL);
	assert_true(hookjson_time_ms("2019-05-09T20:28:29-03:00") == 1557444509000LL);
	assert_true(hookjson_time_ms("2019-05-09 23:28:29") == -1);
	assert_true(hookjson_time_ms("2019-05-09T23:28:29") == -1);
	assert_true(hookjson_time_ms("2019-05-09T23:28:29Zjunk") == -1);
	assert_true(hookjson_time_ms("2019-05-09T23:28:29+2:00") == -1);
	assert_true(hookjson_time_ms(NULL) == -1);
}

/*
 * Signed, mutated payloads through every handler: whatever the bytes, the
 * answer is an event list or a status with a reason, never a crash or a
 * leak (ASan/UBSan watch).  A deterministic generator keeps it repeatable.
 */
static void
test_mutated_payloads(void **state)
{
	static const struct {
		const char	*type;
		const char	*evh;
		const char	*ev;
		const char	*sigh;
		const char	*prefix;
		const char	*body;
	} seeds[] = {
		{ "gitea", "X-Gitea-Event", "push", "X-Gitea-Signature", "",
		    gitea_push },
		{ "bitbucket", "X-Event-Key", "repo:push", "X-Hub-Signature",
		    "sha256=", bb_cloud },
		{ "bitbucket", "X-Event-Key", "repo:refs_changed",
		    "X-Hub-Signature", "sha256=", bb_dc },
	};
	struct config_source	 src;
	struct hook_result	 res;
	struct treq		 t;
	uint64_t		 x = 0x9e3779b97f4a7c15ULL;
	char			*buf, *gl;
	size_t			 i, k, len, gllen, m;
	int			 st, outcomes[600] = { 0 };

	(void)state;
	assert_non_null(gl = util_read_file("test/fixtures/gitlab/push.json", 0,
	    &gllen));
	for (i = 0; i < nitems(seeds) + 1; i++) {
		const char *body = i < nitems(seeds) ? seeds[i].body : gl;
		const char *type = i < nitems(seeds) ? seeds[i].type : "gitlab";

		len = i < nitems(seeds) ? strlen(body) : gllen;
		src = src_make(type, secrets1, 1);
		for (k = 0; k < 1500; k++) {
			buf = xmalloc(len + 1);
			memcpy(buf, body, len + 1);
			for (m = 0; m < 1 + k % 4; m++) {
				x ^= x << 13;
				x ^= x >> 7;
				x ^= x << 17;
				size_t at = (size_t)(x % len);
				static const char junk[] = "{}[]\",:0 \"\\n1e9-";
				buf[at] = (x >> 32) & 1 ? junk[(x >> 40) %
				    (sizeof(junk) - 1)] : (char)(x >> 48);
			}
			treq_init(&t, buf, len);
			treq_hdr(&t, "Content-Type", "application/json");
			if (i < nitems(seeds)) {
				treq_hdr(&t, seeds[i].evh, seeds[i].ev);
				treq_sign(&t, seeds[i].sigh, seeds[i].prefix,
				    "s3cret", buf, len);
			} else {
				treq_hdr(&t, "X-Gitlab-Event", "Push Hook");
				treq_hdr(&t, "X-Gitlab-Token", "s3cret");
			}
			st = run(type, &t, &src, &res);
			assert_int_equal(st, 0);
			if (res.status != 0)
				assert_true(res.reason[0] != '\0' &&
				    res.nevents == 0);
			else
				assert_true(res.nevents > 0 &&
				    res.events[0].after != NULL &&
				    res.events[0].delivery != NULL);
			outcomes[res.status]++;
			hook_result_free(&res);
			treq_free(&t);
			free(buf);
		}
	}
	/* The mutations reach both outcomes, so the test does test parsing. */
	assert_true(outcomes[0] > 0 && outcomes[400] > 0);
	free(gl);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_github_vector),
		cmocka_unit_test(test_github_sha1),
		cmocka_unit_test(test_secret_rotation),
		cmocka_unit_test(test_gitlab_documented),
		cmocka_unit_test(test_gitlab_deleted_and_complete),
		cmocka_unit_test(test_gitea),
		cmocka_unit_test(test_bitbucket),
		cmocka_unit_test(test_wrong_types),
		cmocka_unit_test(test_generic),
		cmocka_unit_test(test_content_types),
		cmocka_unit_test(test_hookjson_time),
		cmocka_unit_test(test_mutated_payloads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
