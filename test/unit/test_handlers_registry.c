/*
 * Unit tests for the registry handlers (registry, dockerhub, harbor,
 * quay) over test/fixtures/registry/: the distribution-*.json files are
 * notifications captured from Debian's docker-registry 2.8.2
 * (test/support/registry_capture.py); the others are the senders'
 * documented examples.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"
#include "handler.h"
#include "job.h"
#include "router.h"
#include "registry_hooks.h"
#include "util.h"

#define FIXTURES	"test/fixtures/registry/"
#define SECRET		"s3cret-token-for-tests"
#define CT_V1		"application/vnd.docker.distribution.events.v1+json"
#define MANIFEST_DIGEST	"sha256:2268117ffabaa078a91eb0e96fc18a48a98525f1359735b1043610571cbc9f24"

static char *secrets_one[] = { SECRET };
static char *secrets_two[] = { "new-secret-value", SECRET };
static char *secrets_header[] = { "Bearer " SECRET };

static struct config_source source = {
	.name = "reg", .type = "registry", .secrets = secrets_one,
	.nsecrets = 1, .verify_tag = 1,
};

struct call {
	struct hook_header	 headers[4];
	struct hook_request	 req;
	struct hook_result	 res;
	char			*body;
	int			 verify;	/* verify()'s answer */
	char			 why[256];
};

static char *
fixture(const char *name, size_t *lenp)
{
	char	 path[256];
	char	*data;

	snprintf(path, sizeof(path), FIXTURES "%s", name);
	data = util_read_file(path, 0, lenp);
	if (data == NULL)
		fail_msg("cannot read %s", path);
	return data;
}

/*
 * Run a handler the way the server does: verify, then parse if verified.
 * body_name is a fixture file, or a literal body when it starts with '{'
 * or is not a file name.
 */
static void
call_run(struct call *c, const char *type, const struct config_source *src,
    const char *content_type, const char *auth, const char *path_token,
    const char *body_name)
{
	const struct handler	*h;
	size_t			 len, nh = 0;

	memset(c, 0, sizeof(*c));
	assert_non_null(h = handler_find(type));
	if (strstr(body_name, ".json") != NULL && body_name[0] != '{')
		c->body = fixture(body_name, &len);
	else {
		c->body = xstrdup(body_name);
		len = strlen(body_name);
	}
	if (content_type != NULL) {
		c->headers[nh].name = "Content-Type";
		c->headers[nh++].value = content_type;
	}
	if (auth != NULL) {
		c->headers[nh].name = "Authorization";
		c->headers[nh++].value = auth;
	}
	c->headers[nh].name = "User-Agent";
	c->headers[nh++].value = "Go-http-client/1.1";
	c->req.method = "POST";
	c->req.path_token = path_token;
	c->req.headers = c->headers;
	c->req.nheaders = nh;
	c->req.body = (const unsigned char *)c->body;
	c->req.body_len = len;
	c->verify = h->verify(&c->req, src, c->why, sizeof(c->why));
	if (c->verify == 0)
		h->parse(&c->req, src, &c->res);
}

static void
call_free(struct call *c)
{
	hook_result_free(&c->res);
	free(c->body);
}

static void
assert_image(const struct hook_event *ev, const char *registry,
    const char *repository, const char *tag, const char *digest)
{
	assert_int_equal(ev->kind, HOOK_EVENT_IMAGE);
	assert_string_equal(ev->registry, registry);
	assert_string_equal(ev->repository, repository);
	assert_string_equal(ev->tag, tag);
	if (digest == NULL)
		assert_null(ev->digest);
	else
		assert_string_equal(ev->digest, digest);
	assert_non_null(ev->delivery);
	assert_non_null(ev->summary);
}

static void
test_registry_manifest_push(void **state)
{
	struct call	 c;

	(void)state;
	call_run(&c, "registry", &source, CT_V1, "Bearer " SECRET, NULL,
	    "distribution-push-manifest.json");
	assert_int_equal(c.verify, 0);
	assert_int_equal(c.res.status, 0);
	assert_int_equal(c.res.nevents, 1);
	assert_image(&c.res.events[0], "127.0.0.1:41753", "acme/web", "1.2.3",
	    MANIFEST_DIGEST);
	/* The event id: the registry reuses it on every retry. */
	assert_string_equal(c.res.events[0].delivery,
	    "399dd390-8993-41c5-8e52-650ed3f49a16");
	/* 2026-11-26T06:31:32.047739529Z */
	assert_int_equal(c.res.events[0].pushed_at_ms, 1795674692047LL);
	call_free(&c);
}

static void
test_registry_auth(void **state)
{
	struct config_source	 two = source;
	struct call		 c;

	(void)state;
	call_run(&c, "registry", &source, CT_V1, "Bearer presented-value", NULL,
	    "distribution-push-manifest.json");
	assert_int_equal(c.verify, 401);
	assert_null(strstr(c.why, SECRET));
	assert_null(strstr(c.why, "presented-value"));
	call_free(&c);
	call_run(&c, "registry", &source, CT_V1, NULL, NULL,
	    "distribution-push-manifest.json");
	assert_int_equal(c.verify, 401);
	call_free(&c);
	call_run(&c, "registry", &source, CT_V1, "Bearer " SECRET "x", NULL,
	    "distribution-push-manifest.json");
	assert_int_equal(c.verify, 401);
	call_free(&c);
	call_run(&c, "registry", &source, CT_V1, "Bearer", NULL,
	    "distribution-push-manifest.json");
	assert_int_equal(c.verify, 401);
	call_free(&c);
	/* The scheme is case-insensitive. */
	call_run(&c, "registry", &source, CT_V1, "bearer " SECRET, NULL,
	    "distribution-push-manifest.json");
	assert_int_equal(c.verify, 0);
	call_free(&c);
	/* Basic: the password is the secret; "gitopsd:s3cret-token-for-tests". */
	call_run(&c, "registry", &source, CT_V1,
	    "Basic Z2l0b3BzZDpzM2NyZXQtdG9rZW4tZm9yLXRlc3Rz", NULL,
	    "distribution-push-manifest.json");
	assert_int_equal(c.verify, 0);
	call_free(&c);
	/* "gitopsd:s3cret-token-for-test" (one byte short) */
	call_run(&c, "registry", &source, CT_V1,
	    "Basic Z2l0b3BzZDpzM2NyZXQtdG9rZW4tZm9yLXRlc3Q=", NULL,
	    "distribution-push-manifest.json");
	assert_int_equal(c.verify, 401);
	call_free(&c);
	call_run(&c, "registry", &source, CT_V1, "Basic !!!!", NULL,
	    "distribution-push-manifest.json");
	assert_int_equal(c.verify, 401);
	call_free(&c);
	/* Rotation: the old secret still verifies while listed. */
	two.secrets = secrets_two;
	two.nsecrets = 2;
	call_run(&c, "registry", &two, CT_V1, "Bearer " SECRET, NULL,
	    "distribution-push-manifest.json");
	assert_int_equal(c.verify, 0);
	call_free(&c);
	call_run(&c, "registry", &two, CT_V1, "Bearer new-secret-value", NULL,
	    "distribution-push-manifest.json");
	assert_int_equal(c.verify, 0);
	call_free(&c);
	/* The check itself, directly. */
	assert_int_equal(registry_hook_check_auth(&source, SECRET), 0);
	assert_int_equal(registry_hook_check_auth(&source, "Basic " SECRET), -1);
	assert_int_equal(registry_hook_check_auth(&source, "Basic ="), -1);
	assert_int_equal(registry_hook_check_auth(&source, "Basic ===="), -1);
	/* A secret file holding the whole header value. */
	two.secrets = secrets_header;
	two.nsecrets = 1;
	assert_int_equal(registry_hook_check_auth(&two, "Bearer " SECRET), 0);
	assert_int_equal(registry_hook_check_auth(&two, SECRET), -1);
	assert_int_equal(registry_hook_check_auth(&source, ""), -1);
	assert_int_equal(registry_hook_check_auth(&source, NULL), -1);
}

/* Blob pushes, pulls and deletes: 200, so the registry does not retry. */
static void
test_registry_ignored(void **state)
{
	static const char *const names[] = {
		"distribution-push-blob.json", "distribution-push-blob2.json",
		"distribution-pull-manifest.json",
		"distribution-delete-digest.json",
		"distribution-delete-tag.json",
	};
	struct call	 c;
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		call_run(&c, "registry", &source, CT_V1, "Bearer " SECRET,
		    NULL, names[i]);
		assert_int_equal(c.verify, 0);
		assert_int_equal(c.res.status, 200);
		assert_int_equal(c.res.nevents, 0);
		assert_non_null(strstr(c.res.reason, "ignored"));
		call_free(&c);
	}
	/* A manifest pushed by digest (no tag): child of a multi-arch index. */
	call_run(&c, "registry", &source, CT_V1, "Bearer " SECRET, NULL,
	    "{\"events\":[{\"id\":\"x\",\"action\":\"push\",\"target\":"
	    "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
	    "\"digest\":\"" MANIFEST_DIGEST "\",\"repository\":\"acme/web\"},"
	    "\"request\":{\"host\":\"r.example.com\"}}]}");
	assert_int_equal(c.res.status, 200);
	call_free(&c);
	call_run(&c, "registry", &source, CT_V1, "Bearer " SECRET, NULL,
	    "{\"events\":[]}");
	assert_int_equal(c.res.status, 200);
	call_free(&c);
}

static void
test_registry_multi(void **state)
{
	struct call	 c;

	(void)state;
	call_run(&c, "registry", &source, CT_V1, "Bearer " SECRET, NULL,
	    "distribution-multi.json");
	assert_int_equal(c.verify, 0);
	assert_int_equal(c.res.status, 0);
	assert_int_equal(c.res.nevents, 2);
	assert_image(&c.res.events[0], "127.0.0.1:41753", "acme/web", "1.2.3",
	    MANIFEST_DIGEST);
	assert_image(&c.res.events[1], "127.0.0.1:41753", "acme/api", "1.3.0",
	    MANIFEST_DIGEST);
	assert_string_equal(c.res.events[0].delivery,
	    "399dd390-8993-41c5-8e52-650ed3f49a16");
	assert_string_equal(c.res.events[1].delivery,
	    "6c0f5c2e-4b1d-4f3e-9a77-2d1f0e8b9a11");
	call_free(&c);
}

static void
test_registry_host_from_url(void **state)
{
	struct call	 c;

	(void)state;
	/* No request.host: the host of target.url, normalized. */
	call_run(&c, "registry", &source, CT_V1, "Bearer " SECRET, NULL,
	    "{\"events\":[{\"action\":\"push\",\"target\":{\"mediaType\":"
	    "\"application/vnd.docker.distribution.manifest.v2+json\","
	    "\"digest\":\"" MANIFEST_DIGEST "\",\"repository\":\"nginx\","
	    "\"tag\":\"v1\",\"url\":\"https://Index.Docker.IO/v2/nginx/"
	    "manifests/" MANIFEST_DIGEST "\"}}]}");
	assert_int_equal(c.res.status, 0);
	assert_int_equal(c.res.nevents, 1);
	assert_image(&c.res.events[0], "docker.io", "library/nginx", "v1",
	    MANIFEST_DIGEST);
	/* No id: a stable derived one. */
	assert_non_null(strstr(c.res.events[0].delivery, "registry-"));
	call_free(&c);
}

static void
test_registry_bad_payloads(void **state)
{
	static const char *const bad[] = {
		"{\"events\": [",
		"not json",
		"{\"events\": {}}",
		"[]",
		"{\"events\": [1]}",
		"{\"events\": []} trailing",
		/* a tag push with a bad repository name */
		"{\"events\":[{\"id\":\"a\",\"action\":\"push\",\"target\":"
		"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
		"\"repository\":\"Acme/Web\",\"tag\":\"1\"},"
		"\"request\":{\"host\":\"r.example.com\"}}]}",
		/* a tag push that names no host */
		"{\"events\":[{\"id\":\"a\",\"action\":\"push\",\"target\":"
		"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
		"\"repository\":\"acme/web\",\"tag\":\"1\"}}]}",
	};
	struct call	 c;
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		call_run(&c, "registry", &source, CT_V1, "Bearer " SECRET,
		    NULL, bad[i]);
		assert_int_equal(c.verify, 0);
		if (c.res.status != 400)
			fail_msg("body %zu: status %d (%s)", i, c.res.status,
			    c.res.reason);
		assert_int_equal(c.res.nevents, 0);
		assert_true(c.res.reason[0] != '\0');
		call_free(&c);
	}
}

static void
test_registry_content_type(void **state)
{
	struct call	 c;

	(void)state;
	call_run(&c, "registry", &source, "text/plain", "Bearer " SECRET, NULL,
	    "distribution-push-manifest.json");
	assert_int_equal(c.verify, 415);
	call_free(&c);
	call_run(&c, "registry", &source, NULL, "Bearer " SECRET, NULL,
	    "distribution-push-manifest.json");
	assert_int_equal(c.verify, 415);
	call_free(&c);
	/* Auth is checked first: no hint about content types to strangers. */
	call_run(&c, "registry", &source, "text/plain", "Bearer nope", NULL,
	    "distribution-push-manifest.json");
	assert_int_equal(c.verify, 401);
	call_free(&c);
	/* The 3.x media type, and parameters after the type. */
	call_run(&c, "registry", &source,
	    "application/vnd.docker.distribution.events.v2+json",
	    "Bearer " SECRET, NULL, "distribution-push-manifest.json");
	assert_int_equal(c.verify, 0);
	assert_int_equal(c.res.nevents, 1);
	call_free(&c);
	call_run(&c, "registry", &source, "Application/Vnd.Docker.Distribution"
	    ".Events.V1+JSON ; charset=utf-8", "Bearer " SECRET, NULL,
	    "distribution-push-manifest.json");
	assert_int_equal(c.verify, 0);
	assert_int_equal(c.res.nevents, 1);
	call_free(&c);
}

static void
test_dockerhub(void **state)
{
	struct config_source	 hub = source;
	struct call		 c, d;

	(void)state;
	hub.type = "dockerhub";
	assert_int_equal(handler_find("dockerhub")->path_token, 1);
	call_run(&c, "dockerhub", &hub, "application/json", NULL, SECRET,
	    "dockerhub-push.json");
	assert_int_equal(c.verify, 0);
	assert_int_equal(c.res.status, 0);
	assert_int_equal(c.res.nevents, 1);
	assert_image(&c.res.events[0], "docker.io", "svendowideit/testhook",
	    "latest", NULL);
	assert_int_equal(c.res.events[0].pushed_at_ms, 1417566161000LL);
	/* Derived delivery: the same push gives the same id. */
	call_run(&d, "dockerhub", &hub, "application/json", NULL, SECRET,
	    "dockerhub-push.json");
	assert_string_equal(c.res.events[0].delivery, d.res.events[0].delivery);
	assert_int_equal(strncmp(d.res.events[0].delivery, "dockerhub-", 10), 0);
	call_free(&d);
	/* Official images: repo_name "nginx" is library/nginx. */
	call_run(&d, "dockerhub", &hub, "application/json", NULL, SECRET,
	    "dockerhub-push-official.json");
	assert_int_equal(d.res.nevents, 1);
	assert_image(&d.res.events[0], "docker.io", "library/nginx", "1.27.3",
	    NULL);
	assert_string_not_equal(c.res.events[0].delivery,
	    d.res.events[0].delivery);
	call_free(&d);
	call_free(&c);

	call_run(&c, "dockerhub", &hub, "application/json", NULL, "wrong",
	    "dockerhub-push.json");
	assert_int_equal(c.verify, 401);
	call_free(&c);
	call_run(&c, "dockerhub", &hub, "application/json", NULL, NULL,
	    "dockerhub-push.json");
	assert_int_equal(c.verify, 401);
	call_free(&c);
	call_run(&c, "dockerhub", &hub, "text/html", NULL, SECRET,
	    "dockerhub-push.json");
	assert_int_equal(c.verify, 415);
	call_free(&c);
	call_run(&c, "dockerhub", &hub, "application/json", NULL, SECRET,
	    "{\"push_data\": {\"tag\": \"1\"}}");
	assert_int_equal(c.res.status, 400);
	call_free(&c);
	call_run(&c, "dockerhub", &hub, "application/json", NULL, SECRET,
	    "{\"push_data\":");
	assert_int_equal(c.res.status, 400);
	call_free(&c);
}

static void
test_harbor(void **state)
{
	struct config_source	 hb = source;
	struct call		 c, d;

	(void)state;
	hb.type = "harbor";
	assert_int_equal(handler_find("harbor")->path_token, 0);
	/* Harbor sends its "Auth Header" setting verbatim. */
	call_run(&c, "harbor", &hb, "application/json", SECRET, NULL,
	    "harbor-push.json");
	assert_int_equal(c.verify, 0);
	assert_int_equal(c.res.status, 0);
	assert_int_equal(c.res.nevents, 1);
	assert_image(&c.res.events[0], "hub.harbor.com", "test-webhook/debian",
	    "latest", "sha256:8a9e9863dbb6e10edb5adfe917c00da84e1700fa76e7ed0"
	    "2476aa6e6fb8ee0d8");
	assert_int_equal(c.res.events[0].pushed_at_ms, 1586922308000LL);
	assert_int_equal(strncmp(c.res.events[0].delivery, "harbor-", 7), 0);
	call_run(&d, "harbor", &hb, "application/json", "Bearer " SECRET, NULL,
	    "harbor-push.json");
	assert_int_equal(d.verify, 0);
	assert_string_equal(c.res.events[0].delivery, d.res.events[0].delivery);
	call_free(&d);
	call_free(&c);

	call_run(&c, "harbor", &hb, "application/json", NULL, SECRET,
	    "harbor-push.json");
	assert_int_equal(c.verify, 401);	/* a path token is no auth here */
	call_free(&c);
	call_run(&c, "harbor", &hb, "application/json", "Bearer x", NULL,
	    "harbor-push.json");
	assert_int_equal(c.verify, 401);
	call_free(&c);
	call_run(&c, "harbor", &hb, "application/json", SECRET, NULL,
	    "harbor-pull.json");
	assert_int_equal(c.res.status, 200);
	assert_int_equal(c.res.nevents, 0);
	call_free(&c);
	call_run(&c, "harbor", &hb, "application/json", SECRET, NULL,
	    "{\"type\":\"PUSH_ARTIFACT\",\"event_data\":{}}");
	assert_int_equal(c.res.status, 400);
	call_free(&c);
	call_run(&c, "harbor", &hb, "application/xml", SECRET, NULL,
	    "harbor-push.json");
	assert_int_equal(c.verify, 415);
	call_free(&c);
}

static void
test_quay(void **state)
{
	struct config_source	 q = source;
	struct call		 c;

	(void)state;
	q.type = "quay";
	assert_int_equal(handler_find("quay")->path_token, 1);
	call_run(&c, "quay", &q, "application/json", NULL, SECRET,
	    "quay-push.json");
	assert_int_equal(c.verify, 0);
	assert_int_equal(c.res.status, 0);
	assert_int_equal(c.res.nevents, 2);
	assert_image(&c.res.events[0], "quay.io", "mynamespace/repository",
	    "latest", NULL);
	assert_image(&c.res.events[1], "quay.io", "mynamespace/repository",
	    "v1.4.0", NULL);
	assert_string_not_equal(c.res.events[0].delivery,
	    c.res.events[1].delivery);
	assert_int_equal(strncmp(c.res.events[0].delivery, "quay-", 5), 0);
	call_free(&c);
	/* The old format: updated_tags as an object keyed by tag. */
	call_run(&c, "quay", &q, "application/json", NULL, SECRET,
	    "{\"docker_url\":\"quay.example.com:8443/ns/app\","
	    "\"updated_tags\":{\"2.0.1\":\"abc\"}}");
	assert_int_equal(c.res.nevents, 1);
	assert_image(&c.res.events[0], "quay.example.com:8443", "ns/app",
	    "2.0.1", NULL);
	call_free(&c);
	call_run(&c, "quay", &q, "application/json", NULL, "bad",
	    "quay-push.json");
	assert_int_equal(c.verify, 401);
	call_free(&c);
	call_run(&c, "quay", &q, "application/json", NULL, SECRET,
	    "{\"docker_url\":\"quay.io/ns/app\",\"updated_tags\":[7]}");
	assert_int_equal(c.res.status, 400);
	call_free(&c);
	call_run(&c, "quay", &q, "application/json", NULL, SECRET,
	    "{\"docker_url\":\"quay.io/ns/app\",\"build_id\":\"x\"}");
	assert_int_equal(c.res.status, 200);
	call_free(&c);
}

static void
test_rfc3339(void **state)
{
	(void)state;
	assert_int_equal(registry_hook_rfc3339_ms("1970-01-01T00:00:00Z"), 0);
	assert_int_equal(registry_hook_rfc3339_ms("2026-11-26T06:31:32.5Z"),
	    1795674692500LL);
	assert_int_equal(registry_hook_rfc3339_ms(
	    "2026-11-26T07:31:32+01:00"), 1795674692000LL);
	assert_int_equal(registry_hook_rfc3339_ms("2026-11-26"), -1);
	assert_int_equal(registry_hook_rfc3339_ms("2026-13-26T06:31:32Z"), -1);
	assert_int_equal(registry_hook_rfc3339_ms(NULL), -1);
}

/* Handler output through router_route_image() to update-image jobs. */
static void
test_route_image(void **state)
{
	struct config_image	 web[] = {
		{ .repository = "127.0.0.1:41753/acme/web",
		  .policy = { .kind = CONFIG_POLICY_SEMVER,
			      .semver = ">=1.0.0 <2.0.0" } },
	};
	struct config_image	 web2[] = {
		{ .repository = "127.0.0.1:41753/acme/web",
		  .policy = { .kind = CONFIG_POLICY_SEMVER,
			      .semver = ">=2.0.0" } },
	};
	struct config_image	 other[] = {
		{ .repository = "127.0.0.1:41753/acme/other",
		  .policy = { .kind = CONFIG_POLICY_LATEST } },
		{ .repository = "index.docker.io/nginx",
		  .policy = { .kind = CONFIG_POLICY_LATEST } },
	};
	struct config_app	 apps[] = {
		{ .name = "web", .repo = "deploy", .images = web, .nimages = 1 },
		{ .name = "web-v2", .repo = "deploy", .images = web2,
		  .nimages = 1 },
		{ .name = "other", .repo = "infra", .images = other,
		  .nimages = 2 },
	};
	struct config		 cfg = { .apps = apps, .napps = 3 };
	struct config_source	 hub = source;
	struct job_spec		*jobs;
	struct call		 c;
	char			 why[256];

	(void)state;
	call_run(&c, "registry", &source, CT_V1, "Bearer " SECRET, NULL,
	    "distribution-push-manifest.json");
	assert_int_equal(c.res.nevents, 1);
	assert_int_equal(router_route_image(&cfg, &c.res.events[0], &jobs, why,
	    sizeof(why)), 1);
	assert_int_equal(jobs[0].kind, JOB_UPDATE_IMAGE);
	assert_string_equal(jobs[0].app, "web");
	assert_string_equal(jobs[0].repo, "deploy");
	assert_string_equal(jobs[0].image, "127.0.0.1:41753/acme/web");
	assert_string_equal(jobs[0].tag, "1.2.3");
	assert_string_equal(jobs[0].digest, MANIFEST_DIGEST);
	assert_null(jobs[0].revision);
	free(jobs);

	/* The policy of every app using the image refuses 3.0.0-rc.1. */
	free(c.res.events[0].tag);
	c.res.events[0].tag = xstrdup("3.0.0-rc.1");
	assert_int_equal(router_route_image(&cfg, &c.res.events[0], &jobs, why,
	    sizeof(why)), 0);
	assert_null(jobs);
	assert_non_null(strstr(why, "not accepted"));
	/* 2.1.0 goes to web-v2 only. */
	free(c.res.events[0].tag);
	c.res.events[0].tag = xstrdup("2.1.0");
	assert_int_equal(router_route_image(&cfg, &c.res.events[0], &jobs, why,
	    sizeof(why)), 1);
	assert_string_equal(jobs[0].app, "web-v2");
	free(jobs);
	call_free(&c);

	/* Docker Hub's "nginx" is the config's index.docker.io/nginx. */
	hub.type = "dockerhub";
	call_run(&c, "dockerhub", &hub, "application/json", NULL, SECRET,
	    "dockerhub-push-official.json");
	assert_int_equal(router_route_image(&cfg, &c.res.events[0], &jobs, why,
	    sizeof(why)), 1);
	assert_string_equal(jobs[0].app, "other");
	assert_string_equal(jobs[0].image, "docker.io/library/nginx");
	assert_null(jobs[0].digest);
	free(jobs);
	call_free(&c);

	/* An image no app uses. */
	hub.type = "quay";
	call_run(&c, "quay", &hub, "application/json", NULL, SECRET,
	    "quay-push.json");
	assert_int_equal(router_route_image(&cfg, &c.res.events[0], &jobs, why,
	    sizeof(why)), 0);
	assert_string_equal(why, "no app uses image "
	    "quay.io/mynamespace/repository");
	call_free(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_registry_manifest_push),
		cmocka_unit_test(test_registry_auth),
		cmocka_unit_test(test_registry_ignored),
		cmocka_unit_test(test_registry_multi),
		cmocka_unit_test(test_registry_host_from_url),
		cmocka_unit_test(test_registry_bad_payloads),
		cmocka_unit_test(test_registry_content_type),
		cmocka_unit_test(test_dockerhub),
		cmocka_unit_test(test_harbor),
		cmocka_unit_test(test_quay),
		cmocka_unit_test(test_rfc3339),
		cmocka_unit_test(test_route_image),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
