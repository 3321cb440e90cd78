/*
 * Sync tests against the Kubernetes API simulator (test/support/kubesim.py,
 * started by the group setup on 127.0.0.1) with manifests committed to a
 * real Git repository (libgit2) in a temporary directory.  Run from the
 * repository root by test_cmocka_suites.py.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <git2.h>
#include <openssl/evp.h>

#include "config.h"
#include "drift.h"
#include "job.h"
#include "kube.h"
#include "kubeconfig.h"
#include "poller.h"
#include "queue.h"
#include "store.h"
#include "sync.h"
#include "util.h"

extern char **environ;

static char	 tmpdir[256];	/* everything of this run */
static char	 simdir[300];	/* kubesim's PKI, token, kubeconfig */
static char	 kubeconfig_path[400];
static pid_t	 sim_pid = -1;
static int	 sim_port;
static int	 repo_seq;
static int	 sim_stdin = -1;

/* ---- helpers: files, processes, the simulator --------------------------- */

static void
write_file(const char *path, const char *content)
{
	char	*dir = xstrdup(path), *slash;

	if ((slash = strrchr(dir, '/')) != NULL) {
		*slash = '\0';
		assert_int_equal(util_mkdirs(dir, 0700), 0);
	}
	free(dir);
	assert_int_equal(util_write_file_atomic(path, content,
	    strlen(content)), 0);
}

static char *
read_all(const char *path)
{
	char	*s = util_read_file(path, 0, NULL);

	assert_non_null(s);
	return s;
}

/* Start kubesim and read the port it prints. */
static int
sim_start(void **state)
{
	char	*argv[] = { "/usr/bin/python3", "test/support/kubesim.py",
	    "--port", "0", "--dir", simdir, "--ready-delay", "0.3",
	    "--exit-on-stdin-eof", NULL };
	int	 p[2], in[2];
	char	 line[32];
	size_t	 n = 0;
	ssize_t	 r;
	posix_spawn_file_actions_t fa;

	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_sync-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	snprintf(simdir, sizeof(simdir), "%s/sim", tmpdir);
	snprintf(kubeconfig_path, sizeof(kubeconfig_path), "%s/kubeconfig",
	    simdir);
	/* Its stdin is a pipe we hold: if this test dies, kubesim exits. */
	if (pipe(p) == -1 || pipe2(in, O_CLOEXEC) == -1)
		return -1;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_addclose(&fa, p[0]);
	if (posix_spawn(&sim_pid, argv[0], &fa, NULL, argv, environ) != 0)
		return -1;
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	close(in[0]);
	sim_stdin = in[1];
	while (n < sizeof(line) - 1 && (r = read(p[0], line + n, 1)) == 1) {
		if (line[n] == '\n')
			break;
		n++;
	}
	line[n] = '\0';
	close(p[0]);
	sim_port = atoi(line);
	if (sim_port <= 0) {
		fprintf(stderr, "kubesim did not start\n");
		return -1;
	}
	git_libgit2_init();
	return 0;
}

static int
sim_stop(void **state)
{
	char	*argv[] = { "rm", "-rf", tmpdir, NULL };
	pid_t	 pid;
	int	 st;

	(void)state;
	if (sim_stdin != -1)
		close(sim_stdin);
	if (sim_pid > 0) {
		kill(sim_pid, SIGTERM);
		waitpid(sim_pid, &st, 0);
	}
	if (posix_spawnp(&pid, "rm", NULL, NULL, argv, environ) == 0)
		waitpid(pid, &st, 0);
	git_libgit2_shutdown();
	return 0;
}

static size_t
collect_cb(char *p, size_t size, size_t n, void *arg)
{
	buf_add(arg, p, size * n);
	return size * n;
}

/* A request to the simulator's test-only endpoints; returns parsed JSON. */
static cJSON *
sim_call(const char *method, const char *path, const char *body)
{
	CURL		*c = curl_easy_init();
	struct buf	 b;
	char		*url, *ca;
	cJSON		*j;

	buf_init(&b, 0);
	url = xasprintf("https://127.0.0.1:%d%s", sim_port, path);
	ca = xasprintf("%s/ca.crt", simdir);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CAINFO, ca);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (body != NULL)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	assert_int_equal(curl_easy_perform(c), CURLE_OK);
	curl_easy_cleanup(c);
	j = cJSON_Parse(b.data != NULL ? b.data : "null");
	buf_free(&b);
	free(url);
	free(ca);
	return j;
}

static void
sim_clear(void)
{
	cJSON_Delete(sim_call("DELETE", "/_sim/faults", NULL));
	cJSON_Delete(sim_call("DELETE", "/_sim/requests", NULL));
}

/*
 * A request through the client under test's own transport; returns the
 * status and, when json is not NULL, the parsed answer.
 */
static long
kreq(const char *method, const char *path, const char *ctype,
    const char *body, cJSON **json)
{
	struct kubeconfig	*kc;
	struct kube		*k;
	struct kube_response	 resp;
	char			 err[512];
	long			 st;

	kc = kubeconfig_load_file(kubeconfig_path, NULL, 0, err, sizeof(err));
	assert_non_null(kc);
	k = kube_new(kc, "sim", err, sizeof(err));
	assert_non_null(k);
	assert_int_equal(kube_request(k, method, path, ctype, body,
	    body != NULL ? strlen(body) : 0, &resp, err, sizeof(err)), KUBE_OK);
	st = resp.status;
	if (json != NULL) {
		*json = resp.json;
		resp.json = NULL;
	}
	kube_response_clear(&resp);
	kube_free(k);
	kubeconfig_free(kc);
	return st;
}

static cJSON *
kget(const char *path, long *status)
{
	cJSON	*j;

	*status = kreq("GET", path, NULL, NULL, &j);
	return j;
}

static cJSON *
kget_ok(const char *path)
{
	long	 st;
	cJSON	*j = kget(path, &st);

	if (st != 200)
		fail_msg("GET %s: %ld", path, st);
	return j;
}

static const char *
jstr(const cJSON *o, const char *a, const char *b)
{
	const cJSON	*v = cJSON_GetObjectItemCaseSensitive(o, a);

	if (b != NULL)
		v = cJSON_GetObjectItemCaseSensitive(v, b);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const char *
label(const cJSON *o, const char *key)
{
	return jstr(cJSON_GetObjectItemCaseSensitive(o, "metadata"), "labels",
	    key);
}

/*
 * Requests in the simulator's log since the last sim_clear(): LISTs (a GET
 * of a collection: /api/v1/<plural>, /apis/<g>/<v>/[namespaces/<ns>/]
 * <plural>), GETs of one object, and the given other method.
 */
static void
sim_count(const char *method, int *lists, int *gets, int *other)
{
	cJSON		*log, *it;
	const char	*m, *path;
	char		*copy, *seg, *save, *segs[8];
	int		 n, off;

	*lists = *gets = *other = 0;
	log = sim_call("GET", "/_sim/requests", NULL);
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(log, "requests")) {
		m = jstr(it, "method", NULL);
		path = jstr(it, "path", NULL);
		if (method != NULL && strcmp(m, method) == 0)
			(*other)++;
		if (strcmp(m, "GET") != 0)
			continue;
		copy = xstrdup(path);
		n = 0;
		for (seg = strtok_r(copy, "/", &save); seg != NULL && n < 8;
		    seg = strtok_r(NULL, "/", &save))
			segs[n++] = seg;
		/* The part after the group-version: discovery has none. */
		off = n >= 2 && strcmp(segs[0], "api") == 0 ? 2 :
		    n >= 3 && strcmp(segs[0], "apis") == 0 ? 3 : n;
		n -= off;
		if (n == 1 || (n == 3 && strcmp(segs[off], "namespaces") == 0))
			(*lists)++;
		else if (n > 0)
			(*gets)++;
		free(copy);
	}
	cJSON_Delete(log);
}

/* ---- helpers: a Git repository of manifests ----------------------------- */

struct repo {
	char	 dir[400];
};

static void
repo_init(struct repo *r)
{
	git_repository	*repo;

	snprintf(r->dir, sizeof(r->dir), "%s/repo%d", tmpdir, ++repo_seq);
	assert_int_equal(git_repository_init(&repo, r->dir, 0), 0);
	git_repository_free(repo);
}

static void
repo_put(struct repo *r, const char *rel, const char *content)
{
	char	*p = xasprintf("%s/%s", r->dir, rel);

	write_file(p, content);
	free(p);
}

static void
repo_rm(struct repo *r, const char *rel)
{
	char	*p = xasprintf("%s/%s", r->dir, rel);

	assert_int_equal(unlink(p), 0);
	free(p);
}

/* Commit the work tree as it is; returns the commit's hex (static). */
static const char *
repo_commit(struct repo *r, const char *msg)
{
	static char	 hex[GIT_OID_HEXSZ + 1];
	git_repository	*repo;
	git_index	*idx;
	git_oid		 tree_id, commit_id, parent_id;
	git_tree	*tree;
	git_signature	*sig;
	git_commit	*parent = NULL;
	char		*all = "*";
	git_strarray	 paths = { &all, 1 };

	assert_int_equal(git_repository_open(&repo, r->dir), 0);
	assert_int_equal(git_repository_index(&idx, repo), 0);
	assert_int_equal(git_index_add_all(idx, &paths, 0, NULL, NULL), 0);
	assert_int_equal(git_index_update_all(idx, &paths, NULL, NULL), 0);
	assert_int_equal(git_index_write(idx), 0);
	assert_int_equal(git_index_write_tree(&tree_id, idx), 0);
	assert_int_equal(git_tree_lookup(&tree, repo, &tree_id), 0);
	assert_int_equal(git_signature_now(&sig, "test", "test@example.com"),
	    0);
	if (git_reference_name_to_id(&parent_id, repo, "HEAD") == 0)
		assert_int_equal(git_commit_lookup(&parent, repo, &parent_id),
		    0);
	assert_int_equal(git_commit_create_v(&commit_id, repo, "HEAD", sig,
	    sig, NULL, msg, tree, parent != NULL ? 1 : 0, parent), 0);
	git_oid_tostr(hex, sizeof(hex), &commit_id);
	git_commit_free(parent);
	git_signature_free(sig);
	git_tree_free(tree);
	git_index_free(idx);
	git_repository_free(repo);
	return hex;
}

static struct config_cluster *
cluster(const char *kubeconfig)
{
	static struct config_cluster	 c;

	memset(&c, 0, sizeof(c));
	c.name = "sim";
	c.kubeconfig = (char *)(kubeconfig != NULL ? kubeconfig :
	    kubeconfig_path);
	return &c;
}

static void
app_init(struct config_app *a, const char *name, const char *ns)
{
	memset(a, 0, sizeof(*a));
	a->name = (char *)name;
	a->path = "deploy";
	a->namespace = (char *)ns;
	a->sync_timeout_s = 20;
}

/*
 * Look at a waiting sync's health again until it ends, as the queue does
 * (minus the queue): the whole sync's outcome.  The inventory is the
 * apply's, which the queue stores when the job starts waiting; a look at
 * health never has one.
 */
static void
finish_waits(const struct config_cluster *c, struct job_result *res)
{
	char	*wait, *inventory = NULL;

	while (res->wait != NULL) {
		assert_false(res->ok);
		assert_int_equal(res->err_kind, JOB_ERR_NONE);
		assert_true(res->wait_ms > 0);
		usleep((useconds_t)res->wait_ms * 1000);
		if (res->inventory != NULL) {
			free(inventory);
			inventory = res->inventory;
			res->inventory = NULL;
		}
		wait = res->wait;
		res->wait = NULL;
		job_result_clear(res);
		sync_health_recheck(c, wait, res);
		free(wait);
		assert_null(res->inventory);
	}
	if (inventory != NULL)
		res->inventory = inventory;
}

/* A sync of the branch head with the app's inventory (NULL: none). */
static void
run_sync_inv(const struct config_cluster *c, const struct config_app *a,
    struct repo *r, const char *inventory, struct job_result *res)
{
	memset(res, 0, sizeof(*res));
	sync_app_run(c, a, r->dir, NULL, "master", inventory, res);
	finish_waits(c, res);
}

static void
run_sync(const struct config_cluster *c, const struct config_app *a,
    struct repo *r, const char *revision, struct job_result *res)
{
	if (revision == NULL) {
		run_sync_inv(c, a, r, NULL, res);
		return;
	}
	memset(res, 0, sizeof(*res));
	sync_app_run(c, a, r->dir, revision, "master", NULL, res);
	finish_waits(c, res);
}

static void
sim_ready_delay(const char *seconds)
{
	char	*body = xasprintf("{\"ready_delay\": %s}", seconds);

	cJSON_Delete(sim_call("POST", "/_sim/config", body));
	free(body);
}

static void
expect_ok(struct job_result *res)
{
	if (!res->ok)
		fail_msg("sync failed: %s: %s (object %s)",
		    job_error_kind_name(res->err_kind),
		    res->error != NULL ? res->error : "",
		    res->object != NULL ? res->object : "-");
}

static void
expect_fail(struct job_result *res, enum job_error_kind kind, int permanent,
    const char *object, const char *fragment)
{
	assert_false(res->ok);
	if (res->err_kind != kind)
		fail_msg("expected %s, got %s: %s", job_error_kind_name(kind),
		    job_error_kind_name(res->err_kind),
		    res->error != NULL ? res->error : "");
	assert_int_equal(res->permanent, permanent);
	if (object != NULL) {
		assert_non_null(res->object);
		assert_string_equal(res->object, object);
	}
	if (fragment != NULL && (res->error == NULL ||
	    strstr(res->error, fragment) == NULL))
		fail_msg("error \"%s\" lacks \"%s\"",
		    res->error != NULL ? res->error : "", fragment);
}

/* A first sync's detail: n objects created, every workload healthy.
 * Returns the parsed detail (the caller deletes it). */
static cJSON *
expect_created_healthy(const char *detail, int n)
{
	cJSON	*d = cJSON_Parse(detail), *it;

	assert_non_null(d);
	assert_string_equal(jstr(d, "health", NULL), "Healthy");
	assert_int_equal(cJSON_GetObjectItem(d, "applied")->valueint, n);
	assert_int_equal(cJSON_GetObjectItem(d, "created")->valueint, n);
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(d, "objects")) {
		assert_string_equal(jstr(it, "action", NULL), "created");
		if (strcmp(jstr(it, "kind", NULL), "Deployment") == 0)
			assert_string_equal(jstr(it, "health", NULL), "Healthy");
	}
	return d;
}

#define NS(n)	"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: " n "\n"
#define CM(n, v) "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " n \
	"\ndata:\n  key: \"" v "\"\n"
#define PINNED_CM "apiVersion: v1\nkind: ConfigMap\nmetadata:\n" \
	"  name: pinned\n  annotations:\n    gitopsd.io/prune: disabled\n" \
	"data: {}\n"
#define DEPLOY(n, image) "apiVersion: apps/v1\nkind: Deployment\n" \
	"metadata:\n  name: " n "\nspec:\n  replicas: 2\n  selector:\n" \
	"    matchLabels: {app: " n "}\n  template:\n    metadata:\n" \
	"      labels: {app: " n "}\n    spec:\n      containers:\n" \
	"      - name: main\n        image: " image "\n"

/* ---- tests -------------------------------------------------------------- */

/* Create: namespaces first, namespace defaulting, labels, cluster scope. */
static void
test_sync_create(void **state)
{
	struct repo		 r;
	struct config_app	 a;
	struct job_result	 res;
	const char		*rev;
	cJSON			*o, *req, *first, *d, *it;
	int			 nfirst = 0;

	(void)state;
	sim_clear();
	repo_init(&r);
	repo_put(&r, "deploy/app.yaml", DEPLOY("web", "nginx:1.25") "---\n"
	    "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n"
	    "  selector: {app: web}\n  ports: [{port: 80}]\n");
	repo_put(&r, "deploy/config.yml", CM("web-config", "1"));
	repo_put(&r, "deploy/rbac/role.yaml", "apiVersion: "
	    "rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n"
	    "  name: web-reader\n  namespace: ignored\nrules: []\n");
	repo_put(&r, "deploy/zz-ns.yaml", NS("demo"));
	repo_put(&r, "README.md", "not a manifest\n");
	rev = repo_commit(&r, "first");
	app_init(&a, "demo", "demo");
	run_sync(cluster(NULL), &a, &r, NULL, &res);
	expect_ok(&res);
	assert_string_equal(res.revision, rev);
	d = expect_created_healthy(res.detail, 5);
	assert_int_equal(cJSON_GetObjectItem(d, "pruned")->valueint, 0);
	cJSON_Delete(d);
	job_result_clear(&res);

	o = kget_ok("/apis/apps/v1/namespaces/demo/deployments/web");
	assert_string_equal(label(o, "app.kubernetes.io/managed-by"), "gitopsd");
	assert_string_equal(label(o, "gitopsd.io/app"), "demo");
	cJSON_Delete(o);
	o = kget_ok("/apis/rbac.authorization.k8s.io/v1/clusterroles/"
	    "web-reader");
	assert_null(jstr(o, "metadata", "namespace"));
	assert_string_equal(label(o, "gitopsd.io/app"), "demo");
	cJSON_Delete(o);
	cJSON_Delete(kget_ok("/api/v1/namespaces/demo/services/web"));
	cJSON_Delete(kget_ok("/api/v1/namespaces/demo/configmaps/web-config"));

	/* Server-side apply as specified, and the Namespace went first. */
	req = sim_call("GET", "/_sim/requests", NULL);
	first = NULL;
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(req, "requests")) {
		if (strcmp(jstr(it, "method", NULL), "PATCH") != 0)
			continue;
		if (first == NULL)
			first = it;
		nfirst++;
		assert_string_equal(jstr(it, "content_type", NULL),
		    "application/apply-patch+yaml");
		assert_string_equal(jstr(it, "query", "fieldManager"),
		    "gitopsd");
		assert_string_equal(jstr(it, "query", "force"), "true");
	}
	assert_int_equal(nfirst, 5);
	assert_string_equal(jstr(first, "path", NULL), "/api/v1/namespaces/demo");
	cJSON_Delete(req);
}

/* Update: only the changed object changes. */
static void
test_sync_update_only_changed(void **state)
{
	struct repo		 r;
	struct config_app	 a;
	struct job_result	 res;
	cJSON			*cm, *dep, *cm2, *dep2;
	const char		*rev2;
	char			*cm_rv, *dep_rv;
	int			 gen;

	(void)state;
	sim_clear();
	repo_init(&r);
	repo_put(&r, "deploy/ns.yaml", NS("upd"));
	repo_put(&r, "deploy/cm.yaml", CM("settings", "a"));
	repo_put(&r, "deploy/web.yaml", DEPLOY("api", "acme/api:1.0"));
	repo_commit(&r, "v1");
	app_init(&a, "upd", "upd");
	run_sync(cluster(NULL), &a, &r, NULL, &res);
	expect_ok(&res);
	job_result_clear(&res);
	cm = kget_ok("/api/v1/namespaces/upd/configmaps/settings");
	dep = kget_ok("/apis/apps/v1/namespaces/upd/deployments/api");
	cm_rv = xstrdup(jstr(cm, "metadata", "resourceVersion"));
	gen = cJSON_GetObjectItem(cJSON_GetObjectItem(dep, "metadata"),
	    "generation")->valueint;
	assert_int_equal(gen, 1);

	/* Same manifests again: nothing changes at all. */
	run_sync(cluster(NULL), &a, &r, NULL, &res);
	expect_ok(&res);
	assert_non_null(strstr(res.detail, "\"created\":0"));
	job_result_clear(&res);
	dep2 = kget_ok("/apis/apps/v1/namespaces/upd/deployments/api");
	dep_rv = xstrdup(jstr(dep2, "metadata", "resourceVersion"));
	assert_string_equal(jstr(dep, "metadata", "resourceVersion"), dep_rv);
	cJSON_Delete(dep2);

	repo_put(&r, "deploy/web.yaml", DEPLOY("api", "acme/api:1.1"));
	rev2 = repo_commit(&r, "v2");
	run_sync(cluster(NULL), &a, &r, rev2, &res);
	expect_ok(&res);
	assert_string_equal(res.revision, rev2);
	job_result_clear(&res);
	cm2 = kget_ok("/api/v1/namespaces/upd/configmaps/settings");
	dep2 = kget_ok("/apis/apps/v1/namespaces/upd/deployments/api");
	assert_string_equal(jstr(cm2, "metadata", "resourceVersion"), cm_rv);
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(dep2,
	    "metadata"), "generation")->valueint, 2);
	assert_string_not_equal(jstr(dep2, "metadata", "resourceVersion"),
	    dep_rv);
	free(cm_rv);
	free(dep_rv);
	cJSON_Delete(cm);
	cJSON_Delete(cm2);
	cJSON_Delete(dep);
	cJSON_Delete(dep2);
}

/* Prune: removed objects go, prune-disabled and other apps' objects stay. */
static void
test_sync_prune(void **state)
{
	struct repo		 r;
	struct config_app	 a, other;
	struct job_result	 res;
	cJSON			*d, *req, *it;
	long			 st;
	int			 deletes = 0;

	(void)state;
	sim_clear();
	repo_init(&r);
	repo_put(&r, "deploy/ns.yaml", NS("pr"));
	repo_put(&r, "deploy/keep.yaml", CM("keep", "1"));
	repo_put(&r, "deploy/gone.yaml", CM("gone", "1") "---\n"
	    DEPLOY("gone-web", "nginx:1"));
	repo_put(&r, "deploy/pinned.yaml", PINNED_CM);
	repo_commit(&r, "v1");
	app_init(&a, "pr", "pr");
	a.sync_prune = 1;
	run_sync(cluster(NULL), &a, &r, NULL, &res);
	expect_ok(&res);
	job_result_clear(&res);

	/* Another app's object in the same namespace. */
	{
		struct repo	 r2;

		repo_init(&r2);
		repo_put(&r2, "deploy/x.yaml", CM("neighbour", "1"));
		repo_commit(&r2, "x");
		app_init(&other, "pr-other", "pr");
		other.sync_prune = 1;
		run_sync(cluster(NULL), &other, &r2, NULL, &res);
		expect_ok(&res);
		job_result_clear(&res);
	}

	/*
	 * What controllers make: Endpoints copying a Service's labels (no
	 * owner) and an owned object with the labels.  Neither is pruned.
	 */
	{
		struct kubeconfig	*kc;
		struct kube		*k;
		struct kube_response	 resp;
		char			 err[256];
		const char		*ep = "{\"apiVersion\":\"v1\",\"kind\":"
		    "\"Endpoints\",\"metadata\":{\"name\":\"svc\",\"labels\":"
		    "{\"gitopsd.io/app\":\"pr\",\"app.kubernetes.io/managed-by\":"
		    "\"gitopsd\"}}}";
		const char		*owned = "{\"apiVersion\":\"v1\",\"kind\":"
		    "\"ConfigMap\",\"metadata\":{\"name\":\"owned\",\"labels\":"
		    "{\"gitopsd.io/app\":\"pr\",\"app.kubernetes.io/managed-by\":"
		    "\"gitopsd\"},\"ownerReferences\":[{\"apiVersion\":\"v1\","
		    "\"kind\":\"ConfigMap\",\"name\":\"keep\",\"uid\":\"x\"}]}}";

		kc = kubeconfig_load_file(kubeconfig_path, NULL, 0, err,
		    sizeof(err));
		assert_non_null(kc);
		k = kube_new(kc, "sim", err, sizeof(err));
		assert_non_null(k);
		assert_int_equal(kube_request(k, "POST",
		    "/api/v1/namespaces/pr/endpoints", "application/json", ep,
		    strlen(ep), &resp, err, sizeof(err)), KUBE_OK);
		assert_int_equal(resp.status, 201);
		kube_response_clear(&resp);
		assert_int_equal(kube_request(k, "POST",
		    "/api/v1/namespaces/pr/configmaps", "application/json",
		    owned, strlen(owned), &resp, err, sizeof(err)), KUBE_OK);
		assert_int_equal(resp.status, 201);
		kube_response_clear(&resp);
		kube_free(k);
		kubeconfig_free(kc);
	}

	sim_clear();
	repo_rm(&r, "deploy/gone.yaml");
	repo_rm(&r, "deploy/pinned.yaml");
	repo_commit(&r, "v2");
	run_sync(cluster(NULL), &a, &r, NULL, &res);
	expect_ok(&res);
	d = cJSON_Parse(res.detail);
	assert_int_equal(cJSON_GetObjectItem(d, "pruned")->valueint, 2);
	assert_int_equal(cJSON_GetObjectItem(d, "applied")->valueint, 2);
	cJSON_Delete(d);
	job_result_clear(&res);

	cJSON_Delete(kget("/api/v1/namespaces/pr/configmaps/gone", &st));
	assert_int_equal(st, 404);
	cJSON_Delete(kget("/apis/apps/v1/namespaces/pr/deployments/gone-web",
	    &st));
	assert_int_equal(st, 404);
	cJSON_Delete(kget_ok("/api/v1/namespaces/pr/configmaps/keep"));
	cJSON_Delete(kget_ok("/api/v1/namespaces/pr/configmaps/pinned"));
	cJSON_Delete(kget_ok("/api/v1/namespaces/pr/configmaps/neighbour"));
	cJSON_Delete(kget_ok("/api/v1/namespaces/pr/endpoints/svc"));
	cJSON_Delete(kget_ok("/api/v1/namespaces/pr/configmaps/owned"));
	req = sim_call("GET", "/_sim/requests", NULL);
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(req, "requests")) {
		if (strcmp(jstr(it, "method", NULL), "DELETE") != 0)
			continue;
		deletes++;
		assert_string_equal(jstr(it, "query", "propagationPolicy"),
		    "Background");
	}
	assert_int_equal(deletes, 2);
	cJSON_Delete(req);
}

/* 1 when the inventory JSON names an object kind/name. */
static int
inv_has(const char *inv, const char *kind, const char *name)
{
	cJSON	*d = cJSON_Parse(inv), *it;
	int	 found = 0;

	assert_non_null(d);
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(d, "objects"))
		if (strcmp(jstr(it, "kind", NULL), kind) == 0 &&
		    strcmp(jstr(it, "name", NULL), name) == 0) {
			assert_non_null(jstr(it, "uid", NULL));
			found = 1;
		}
	cJSON_Delete(d);
	return found;
}

static int
detail_int(const struct job_result *res, const char *key)
{
	cJSON	*d = cJSON_Parse(res->detail);
	int	 v;

	assert_non_null(d);
	v = cJSON_GetObjectItem(d, key)->valueint;
	cJSON_Delete(d);
	return v;
}

/*
 * Prune from the inventory: an unchanged sync lists nothing and costs one
 * apply per object plus the health reads; objects removed from Git are
 * read once and deleted; a missing or unreadable inventory costs one
 * list-based prune and is rebuilt.
 */
static void
test_sync_inventory(void **state)
{
	struct repo		 r;
	struct config_app	 a;
	struct job_result	 res;
	char			*inv;
	int			 lists, gets, n;
	long			 st;
	const char		*bad[] = { "not json",
	    "{\"objects\":[{\"kind\":\"ConfigMap\"}]}", "{\"objects\":7}" };
	size_t			 i;

	(void)state;
	sim_clear();
	repo_init(&r);
	repo_put(&r, "deploy/ns.yaml", NS("inv"));
	repo_put(&r, "deploy/keep.yaml", CM("keep", "1") "---\n"
	    DEPLOY("web", "nginx:1"));
	repo_put(&r, "deploy/gone.yaml", CM("gone", "1") "---\n"
	    DEPLOY("gone-web", "nginx:1"));
	repo_put(&r, "deploy/pinned.yaml", PINNED_CM);
	repo_commit(&r, "v1");
	app_init(&a, "inv", "inv");
	a.sync_prune = 1;

	/* No inventory yet: one list-based prune, and it is built. */
	run_sync_inv(cluster(NULL), &a, &r, NULL, &res);
	expect_ok(&res);
	sim_count(NULL, &lists, &gets, &n);
	assert_true(lists > 5);
	assert_non_null(res.inventory);
	assert_true(inv_has(res.inventory, "Deployment", "gone-web"));
	assert_true(inv_has(res.inventory, "Namespace", "inv"));
	inv = res.inventory;
	res.inventory = NULL;
	job_result_clear(&res);

	/* Unchanged: six applies and the two Deployments' health reads. */
	sim_clear();
	run_sync_inv(cluster(NULL), &a, &r, inv, &res);
	expect_ok(&res);
	sim_count("PATCH", &lists, &gets, &n);
	assert_int_equal(lists, 0);
	assert_int_equal(n, 6);
	assert_int_equal(gets, 2);
	sim_count("DELETE", &lists, &gets, &n);
	assert_int_equal(n, 0);
	free(inv);
	inv = res.inventory;
	res.inventory = NULL;
	job_result_clear(&res);

	/* Removed from Git: read once each, deleted, no list. */
	repo_rm(&r, "deploy/gone.yaml");
	repo_rm(&r, "deploy/pinned.yaml");
	repo_commit(&r, "v2");
	sim_clear();
	run_sync_inv(cluster(NULL), &a, &r, inv, &res);
	expect_ok(&res);
	assert_int_equal(detail_int(&res, "pruned"), 2);
	sim_count("DELETE", &lists, &gets, &n);
	assert_int_equal(lists, 0);
	assert_int_equal(n, 2);
	assert_int_equal(gets, 3 + 1);	/* gone, gone-web, pinned; web */
	cJSON_Delete(kget("/api/v1/namespaces/inv/configmaps/gone", &st));
	assert_int_equal(st, 404);
	cJSON_Delete(kget("/apis/apps/v1/namespaces/inv/deployments/gone-web",
	    &st));
	assert_int_equal(st, 404);
	cJSON_Delete(kget_ok("/api/v1/namespaces/inv/configmaps/pinned"));
	cJSON_Delete(kget_ok("/api/v1/namespaces/inv/configmaps/keep"));
	assert_false(inv_has(res.inventory, "ConfigMap", "gone"));
	assert_false(inv_has(res.inventory, "Deployment", "gone-web"));
	/* Kept, and remembered: without the annotation it goes. */
	assert_true(inv_has(res.inventory, "ConfigMap", "pinned"));
	free(inv);
	inv = res.inventory;
	res.inventory = NULL;
	job_result_clear(&res);
	assert_int_equal(kreq("PATCH", "/api/v1/namespaces/inv/configmaps/"
	    "pinned", "application/merge-patch+json", "{\"metadata\":"
	    "{\"annotations\":{\"gitopsd.io/prune\":null}}}", NULL), 200);
	run_sync_inv(cluster(NULL), &a, &r, inv, &res);
	expect_ok(&res);
	assert_int_equal(detail_int(&res, "pruned"), 1);
	cJSON_Delete(kget("/api/v1/namespaces/inv/configmaps/pinned", &st));
	assert_int_equal(st, 404);
	free(inv);
	job_result_clear(&res);

	/* Missing, then unreadable: one list each, then none. */
	for (i = 0; i <= nitems(bad); i++) {
		sim_clear();
		run_sync_inv(cluster(NULL), &a, &r, i == 0 ? NULL : bad[i - 1],
		    &res);
		expect_ok(&res);
		sim_count(NULL, &lists, &gets, &n);
		assert_true(lists > 5);
		assert_non_null(res.inventory);
		assert_true(inv_has(res.inventory, "ConfigMap", "keep"));
		inv = res.inventory;
		res.inventory = NULL;
		job_result_clear(&res);
		sim_clear();
		run_sync_inv(cluster(NULL), &a, &r, inv, &res);
		expect_ok(&res);
		sim_count(NULL, &lists, &gets, &n);
		assert_int_equal(lists, 0);
		free(inv);
		job_result_clear(&res);
	}
}

/*
 * Ownership is read before each delete: an object whose app label was
 * removed by hand, or that was deleted and made again by someone else,
 * is left alone and leaves the inventory.
 */
static void
test_sync_inventory_ownership(void **state)
{
	struct repo		 r;
	struct config_app	 a;
	struct job_result	 res;
	char			*inv, *uid;
	int			 lists, gets, n;
	cJSON			*o;

	(void)state;
	sim_clear();
	repo_init(&r);
	repo_put(&r, "deploy/ns.yaml", NS("own"));
	repo_put(&r, "deploy/cms.yaml", CM("handoff", "1") "---\n"
	    CM("again", "1") "---\n" CM("stay", "1"));
	repo_commit(&r, "v1");
	app_init(&a, "own", "own");
	a.sync_prune = 1;
	run_sync_inv(cluster(NULL), &a, &r, NULL, &res);
	expect_ok(&res);
	inv = res.inventory;
	res.inventory = NULL;
	job_result_clear(&res);

	/* By hand: one loses the app label, one is made again (new uid). */
	assert_int_equal(kreq("PATCH", "/api/v1/namespaces/own/configmaps/"
	    "handoff", "application/merge-patch+json", "{\"metadata\":"
	    "{\"labels\":{\"gitopsd.io/app\":null}}}", NULL), 200);
	o = kget_ok("/api/v1/namespaces/own/configmaps/again");
	uid = xstrdup(jstr(o, "metadata", "uid"));
	cJSON_Delete(o);
	assert_int_equal(kreq("DELETE", "/api/v1/namespaces/own/configmaps/"
	    "again", NULL, NULL, NULL), 200);
	assert_int_equal(kreq("POST", "/api/v1/namespaces/own/configmaps",
	    "application/json", "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\","
	    "\"metadata\":{\"name\":\"again\",\"labels\":{\"gitopsd.io/app\":"
	    "\"own\",\"app.kubernetes.io/managed-by\":\"gitopsd\"}}}", NULL),
	    201);

	repo_put(&r, "deploy/cms.yaml", CM("stay", "1"));
	repo_commit(&r, "v2");
	sim_clear();
	run_sync_inv(cluster(NULL), &a, &r, inv, &res);
	expect_ok(&res);
	assert_int_equal(detail_int(&res, "pruned"), 0);
	sim_count("DELETE", &lists, &gets, &n);
	assert_int_equal(lists, 0);
	assert_int_equal(n, 0);
	cJSON_Delete(kget_ok("/api/v1/namespaces/own/configmaps/handoff"));
	o = kget_ok("/api/v1/namespaces/own/configmaps/again");
	assert_string_not_equal(jstr(o, "metadata", "uid"), uid);
	cJSON_Delete(o);
	assert_false(inv_has(res.inventory, "ConfigMap", "handoff"));
	assert_false(inv_has(res.inventory, "ConfigMap", "again"));
	assert_true(inv_has(res.inventory, "ConfigMap", "stay"));
	free(uid);
	free(inv);
	job_result_clear(&res);
}

/* A rejected object (422) fails the sync and nothing is pruned. */
static void
test_sync_rejected_no_prune(void **state)
{
	struct repo		 r;
	struct config_app	 a;
	struct job_result	 res;
	cJSON			*d;

	(void)state;
	sim_clear();
	repo_init(&r);
	repo_put(&r, "deploy/ns.yaml", NS("rej"));
	repo_put(&r, "deploy/a.yaml", CM("a", "1"));
	repo_put(&r, "deploy/b.yaml", CM("b", "1"));
	repo_commit(&r, "v1");
	app_init(&a, "rej", "rej");
	a.sync_prune = 1;
	run_sync(cluster(NULL), &a, &r, NULL, &res);
	expect_ok(&res);
	job_result_clear(&res);

	repo_rm(&r, "deploy/b.yaml");
	/* The selector does not match the template labels: 422 Invalid. */
	repo_put(&r, "deploy/bad.yaml", "apiVersion: apps/v1\nkind: Deployment\n"
	    "metadata:\n  name: bad\nspec:\n  selector:\n    matchLabels: "
	    "{app: one}\n  template:\n    metadata:\n      labels: {app: two}\n"
	    "    spec:\n      containers: [{name: c, image: nginx}]\n");
	repo_commit(&r, "v2");
	run_sync(cluster(NULL), &a, &r, NULL, &res);
	expect_fail(&res, JOB_ERR_APPLY_REJECTED, 1, "Deployment rej/bad",
	    "does not match template");
	assert_non_null(strstr(res.error, "deploy/bad.yaml"));
	assert_null(res.revision);
	d = cJSON_Parse(res.detail);
	assert_string_equal(jstr(d, "health", NULL), "Degraded");
	assert_int_equal(cJSON_GetObjectItem(d, "pruned")->valueint, 0);
	cJSON_Delete(d);
	job_result_clear(&res);
	cJSON_Delete(kget_ok("/api/v1/namespaces/rej/configmaps/b"));
}

/* A namespaced object in a namespace that does not exist: actionable 404. */
static void
test_sync_missing_namespace(void **state)
{
	struct repo		 r;
	struct config_app	 a;
	struct job_result	 res;

	(void)state;
	sim_clear();
	repo_init(&r);
	repo_put(&r, "deploy/cm.yaml", CM("x", "1"));
	repo_commit(&r, "v1");
	app_init(&a, "nons", "does-not-exist");
	run_sync(cluster(NULL), &a, &r, NULL, &res);
	expect_fail(&res, JOB_ERR_APPLY_REJECTED, 1,
	    "ConfigMap does-not-exist/x",
	    "namespaces \"does-not-exist\" not found");
	job_result_clear(&res);
}

/* Nothing listens: unreachable, retried. */
static void
test_sync_unreachable(void **state)
{
	struct repo		 r;
	struct config_app	 a;
	struct job_result	 res;
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof(sin);
	char			*kc, *path, *s, *p;
	int			 fd, port;

	(void)state;
	/* A port that was free a moment ago. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	port = ntohs(sin.sin_port);
	close(fd);
	kc = read_all(kubeconfig_path);
	p = strstr(kc, "127.0.0.1:");
	assert_non_null(p);
	p += strlen("127.0.0.1:");
	*p = '\0';
	s = xasprintf("%s%d%s", kc, port, strchr(p + 1, '\n'));
	path = xasprintf("%s/unreachable.kubeconfig", simdir);
	write_file(path, s);
	repo_init(&r);
	repo_put(&r, "deploy/cm.yaml", CM("x", "1"));
	repo_commit(&r, "v1");
	app_init(&a, "unreach", "default");
	run_sync(cluster(path), &a, &r, NULL, &res);
	expect_fail(&res, JOB_ERR_UNREACHABLE, 0, NULL, "127.0.0.1");
	job_result_clear(&res);
	free(kc);
	free(s);
	free(path);
}

/* Replace "token: X" in the simulator's kubeconfig and write it as name. */
static char *
kubeconfig_variant(const char *name, const char *from, const char *to)
{
	char	*kc = read_all(kubeconfig_path), *p, *s, *path;

	p = strstr(kc, from);
	assert_non_null(p);
	*p = '\0';
	s = xasprintf("%s%s%s", kc, to, p + strlen(from));
	path = xasprintf("%s/%s", simdir, name);
	write_file(path, s);
	free(kc);
	free(s);
	return path;
}

static void
test_sync_wrong_token(void **state)
{
	struct repo		 r;
	struct config_app	 a;
	struct job_result	 res;
	char			*path, *tok, *from;

	(void)state;
	tok = xasprintf("%s/token", simdir);
	{
		char	*t = util_read_secret(tok, NULL, 0);

		assert_non_null(t);
		from = xasprintf("token: %s", t);
		free(t);
	}
	path = kubeconfig_variant("badtoken.kubeconfig", from,
	    "token: not-the-token");
	repo_init(&r);
	repo_put(&r, "deploy/cm.yaml", CM("x", "1"));
	repo_commit(&r, "v1");
	app_init(&a, "tok", "default");
	run_sync(cluster(path), &a, &r, NULL, &res);
	expect_fail(&res, JOB_ERR_UNAUTHORIZED, 0, NULL, "Unauthorized");
	assert_null(strstr(res.error, "not-the-token"));
	job_result_clear(&res);

	/* tokenFile (relative to the kubeconfig) with the right token works. */
	free(path);
	path = kubeconfig_variant("tokenfile.kubeconfig", from,
	    "tokenFile: token");
	run_sync(cluster(path), &a, &r, NULL, &res);
	expect_ok(&res);
	job_result_clear(&res);
	free(path);
	free(from);
	free(tok);
}

/* TLS: the kubeconfig's CA verifies the server; another CA does not. */
static void
test_sync_tls_wrong_ca(void **state)
{
	struct repo		 r;
	struct config_app	 a;
	struct job_result	 res;
	char			*path, *from;

	(void)state;
	from = xasprintf("certificate-authority: %s/ca.crt", simdir);
	path = kubeconfig_variant("wrongca.kubeconfig", from,
	    "certificate-authority: /etc/ssl/certs/ca-certificates.crt");
	free(from);
	repo_init(&r);
	repo_put(&r, "deploy/cm.yaml", CM("x", "1"));
	repo_commit(&r, "v1");
	app_init(&a, "tls", "default");
	run_sync(cluster(path), &a, &r, NULL, &res);
	expect_fail(&res, JOB_ERR_UNREACHABLE, 1, NULL, "TLS");
	job_result_clear(&res);
	free(path);
}

/* client-certificate-data / client-key-data / certificate-authority-data. */
static void
test_sync_client_cert_data(void **state)
{
	struct repo		 r;
	struct config_app	 a;
	struct job_result	 res;
	char			*files[3], *b64[3], *kc, *path;
	const char		*names[3] = { "ca.crt", "client.crt",
	    "client.key" };
	int			 i;

	(void)state;
	for (i = 0; i < 3; i++) {
		char		*p = xasprintf("%s/%s", simdir, names[i]);
		size_t		 len;
		int		 n;

		files[i] = util_read_file(p, 0, &len);
		assert_non_null(files[i]);
		b64[i] = xmalloc(len * 2 + 4);
		n = EVP_EncodeBlock((unsigned char *)b64[i],
		    (const unsigned char *)files[i], (int)len);
		assert_true(n > 0);
		free(p);
	}
	kc = read_all(kubeconfig_path);
	*strstr(kc, "users:") = '\0';
	{
		char	*s = xasprintf("apiVersion: v1\nkind: Config\n"
		    "clusters:\n- name: kubesim\n  cluster:\n"
		    "    server: https://127.0.0.1:%d\n"
		    "    certificate-authority-data: %s\n"
		    "users:\n- name: cert\n  user:\n"
		    "    client-certificate-data: %s\n"
		    "    client-key-data: %s\n"
		    "contexts:\n- name: other\n  context: {cluster: nowhere, "
		    "user: nobody}\n- name: cert\n  context: {cluster: kubesim, "
		    "user: cert}\ncurrent-context: other\n", sim_port, b64[0],
		    b64[1], b64[2]);

		path = xasprintf("%s/certdata.kubeconfig", simdir);
		write_file(path, s);
		free(s);
	}
	repo_init(&r);
	repo_put(&r, "deploy/cm.yaml", CM("x", "1"));
	repo_commit(&r, "v1");
	app_init(&a, "cert", "default");
	{
		struct config_cluster	*c = cluster(path);

		c->context = "cert";
		run_sync(c, &a, &r, NULL, &res);
	}
	expect_ok(&res);
	job_result_clear(&res);

	/* The same with files, relative to the kubeconfig. */
	free(path);
	{
		char	*s = xasprintf("apiVersion: v1\nkind: Config\n"
		    "clusters:\n- name: kubesim\n  cluster:\n"
		    "    server: https://127.0.0.1:%d\n"
		    "    certificate-authority: ca.crt\n"
		    "users:\n- name: cert\n  user:\n"
		    "    client-certificate: client.crt\n"
		    "    client-key: client.key\n"
		    "contexts:\n- name: cert\n  context: {cluster: kubesim, "
		    "user: cert}\ncurrent-context: cert\n", sim_port);

		path = xasprintf("%s/certfile.kubeconfig", simdir);
		write_file(path, s);
		free(s);
	}
	run_sync(cluster(path), &a, &r, NULL, &res);
	expect_ok(&res);
	job_result_clear(&res);
	for (i = 0; i < 3; i++) {
		free(files[i]);
		free(b64[i]);
	}
	free(kc);
	free(path);
}

/* A rollout that never completes: ProgressDeadlineExceeded fails at once. */
static void
test_sync_never_ready(void **state)
{
	struct repo		 r;
	struct config_app	 a;
	struct job_result	 res;
	int64_t			 t0;

	(void)state;
	sim_clear();
	repo_init(&r);
	repo_put(&r, "deploy/ns.yaml", NS("nr"));
	repo_put(&r, "deploy/ok.yaml", DEPLOY("fine", "nginx:1"));
	repo_put(&r, "deploy/web.yaml", DEPLOY("web", "acme/web:2.0-never-ready"));
	repo_commit(&r, "v1");
	app_init(&a, "nr", "nr");
	a.sync_timeout_s = 30;
	t0 = util_mono_ms();
	run_sync(cluster(NULL), &a, &r, NULL, &res);
	expect_fail(&res, JOB_ERR_UNHEALTHY, 1, "Deployment nr/web",
	    "ProgressDeadlineExceeded");
	assert_null(strstr(res.error, "nr/fine"));
	assert_true(util_mono_ms() - t0 < 15000);
	job_result_clear(&res);
}

/* Slow rollout: TIMEOUT naming each unhealthy workload and why. */
static void
test_sync_timeout(void **state)
{
	struct repo		 r;
	struct config_app	 a;
	struct job_result	 res;

	(void)state;
	sim_clear();
	repo_init(&r);
	repo_put(&r, "deploy/ns.yaml", NS("slow"));
	repo_put(&r, "deploy/web.yaml", DEPLOY("web", "acme/web:slow-1"));
	repo_put(&r, "deploy/job.yaml", "apiVersion: batch/v1\nkind: Job\n"
	    "metadata:\n  name: migrate\nspec:\n  template:\n    spec:\n"
	    "      restartPolicy: Never\n      containers: [{name: m, "
	    "image: 'acme/migrate:slow'}]\n");
	repo_commit(&r, "v1");
	app_init(&a, "slow", "slow");
	a.sync_timeout_s = 2;
	run_sync(cluster(NULL), &a, &r, NULL, &res);
	expect_fail(&res, JOB_ERR_TIMEOUT, 0, NULL, "not healthy after 2 s");
	assert_non_null(strstr(res.error, "Deployment slow/web: Progressing"));
	assert_non_null(strstr(res.error, "Job slow/migrate: Progressing"));
	job_result_clear(&res);
}

/*
 * A rollout still running after apply: the sync does not wait on its
 * thread.  It returns at once with what to look at again (the wait state)
 * while the Deployment is not yet ready, and a look again only reads.
 */
static void
test_sync_health_waits(void **state)
{
	struct repo		 r;
	struct config_app	 a;
	struct job_result	 res;
	const char		*rev;
	cJSON			*d, *w, *chk, *o, *it, *log, *e, *rr;
	char			*wait;
	int64_t			 deadline, before;
	int			 gets = 0, others = 0;

	(void)state;
	sim_clear();
	sim_ready_delay("3");
	repo_init(&r);
	repo_put(&r, "deploy/ns.yaml", NS("hw"));
	repo_put(&r, "deploy/cm.yaml", CM("hw", "1"));
	repo_put(&r, "deploy/web.yaml", DEPLOY("web", "nginx:1.25"));
	rev = repo_commit(&r, "v1");
	app_init(&a, "hw", "hw");
	a.sync_timeout_s = 30;
	before = util_now_ms();
	memset(&res, 0, sizeof(res));
	sync_app_run(cluster(NULL), &a, r.dir, NULL, "master", NULL, &res);

	/* Returned while the rollout runs: the Deployment is not ready. */
	o = kget_ok("/apis/apps/v1/namespaces/hw/deployments/web");
	rr = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "status"),
	    "readyReplicas");
	assert_true(rr == NULL || rr->valueint == 0);
	cJSON_Delete(o);
	assert_false(res.ok);
	assert_int_equal(res.err_kind, JOB_ERR_NONE);
	assert_null(res.error);
	assert_non_null(res.wait);
	assert_int_equal(res.wait_ms, 250);
	assert_non_null(res.revision);
	assert_string_equal(res.revision, rev);
	d = cJSON_Parse(res.detail);
	assert_string_equal(jstr(d, "health", NULL), "Progressing");
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(d, "objects"))
		if (strcmp(jstr(it, "kind", NULL), "Deployment") == 0)
			assert_non_null(strstr(jstr(it, "health", NULL),
			    "Progressing: "));
	cJSON_Delete(d);

	/* The wait state names each workload and the deadline. */
	w = cJSON_Parse(res.wait);
	assert_non_null(w);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(w, "checks")),
	    1);
	chk = cJSON_GetArrayItem(cJSON_GetObjectItem(w, "checks"), 0);
	assert_string_equal(jstr(chk, "kind", NULL), "Deployment");
	assert_string_equal(jstr(chk, "apiVersion", NULL), "apps/v1");
	assert_string_equal(jstr(chk, "namespace", NULL), "hw");
	assert_string_equal(jstr(chk, "name", NULL), "web");
	assert_string_equal(jstr(chk, "health_kind", NULL), "Deployment");
	assert_string_equal(jstr(chk, "path", NULL),
	    "/apis/apps/v1/namespaces/hw/deployments/web");
	assert_string_equal(jstr(w, "revision", NULL), rev);
	deadline = (int64_t)cJSON_GetObjectItem(w, "deadline_ms")->valuedouble;
	assert_true(deadline >= before + 30000);
	assert_true(deadline <= util_now_ms() + 30000);
	cJSON_Delete(w);

	/* A look again: one GET per workload still rolling out, nothing else
	 * (no discovery, no apply), and the next look later (backoff). */
	cJSON_Delete(sim_call("DELETE", "/_sim/requests", NULL));
	wait = res.wait;
	res.wait = NULL;
	job_result_clear(&res);
	sync_health_recheck(cluster(NULL), wait, &res);
	free(wait);
	assert_non_null(res.wait);
	assert_int_equal(res.wait_ms, 500);
	log = sim_call("GET", "/_sim/requests", NULL);
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(log,
	    "requests")) {
		if (strcmp(jstr(e, "method", NULL), "GET") == 0 &&
		    strcmp(jstr(e, "path", NULL),
		    "/apis/apps/v1/namespaces/hw/deployments/web") == 0)
			gets++;
		else
			others++;
	}
	cJSON_Delete(log);
	assert_int_equal(gets, 1);
	assert_int_equal(others, 0);

	/* Until healthy: the same result a sync that waited ended with. */
	finish_waits(cluster(NULL), &res);
	expect_ok(&res);
	assert_string_equal(res.revision, rev);
	cJSON_Delete(expect_created_healthy(res.detail, 3));
	job_result_clear(&res);

	/* A wait state that does not parse: a retryable failure (the retry
	 * is a whole sync). */
	sync_health_recheck(cluster(NULL), "{\"checks\": 1}", &res);
	expect_fail(&res, JOB_ERR_INTERNAL, 0, NULL, "does not parse");
	assert_null(res.wait);
	job_result_clear(&res);
	sim_ready_delay("0.3");
}

/* ---- the queue with the real sync runner -------------------------------- */

struct qrun {
	struct event_base	*base;
	struct queue		*q;
	const char		*path;
	int64_t			 ids[2];
	enum job_state		 states[2];
	int			 seen_waiting[2];
};

static void
qrun_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

/* Run the loop until both jobs ended; note which were seen waiting. */
static int
qrun_until_done(struct qrun *qr, int timeout_ms)
{
	struct event		*tick;
	struct timeval		 tv = { 0, 5000 };
	struct store		*st;
	struct store_job_row	 row;
	char			 err[256];
	int64_t			 end = util_mono_ms() + timeout_ms;
	int			 i, done = 0;

	st = store_sqlite_ops.open(qr->path, NULL, err, sizeof(err));
	assert_non_null(st);
	tick = event_new(qr->base, -1, EV_PERSIST, qrun_tick_cb, NULL);
	event_add(tick, &tv);
	while (!done && util_mono_ms() < end) {
		event_base_loop(qr->base, EVLOOP_ONCE);
		done = 1;
		for (i = 0; i < 2; i++) {
			assert_int_equal(store_sqlite_ops.get_job(st,
			    qr->ids[i], &row, err, sizeof(err)), 1);
			qr->states[i] = row.state;
			if (row.state == JOB_WAITING)
				qr->seen_waiting[i] = 1;
			if (row.state != JOB_SUCCEEDED &&
			    row.state != JOB_DEAD && row.state != JOB_FAILED)
				done = 0;
			store_job_row_clear(&row);
		}
	}
	event_free(tick);
	store_sqlite_ops.close(st);
	return done ? 0 : -1;
}

/* Index in the simulator's request log of the first/last method+path. */
static int
log_index(const cJSON *log, const char *method, const char *path, int last)
{
	const cJSON	*e;
	int		 i = 0, found = -1;

	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(log,
	    "requests")) {
		if (strcmp(jstr(e, "method", NULL), method) == 0 &&
		    strcmp(jstr(e, "path", NULL), path) == 0) {
			found = i;
			if (!last)
				break;
		}
		i++;
	}
	return found;
}

static int
log_count(const cJSON *log, const char *method, const char *path)
{
	const cJSON	*e;
	int		 n = 0;

	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(log,
	    "requests"))
		n += strcmp(jstr(e, "method", NULL), method) == 0 &&
		    strcmp(jstr(e, "path", NULL), path) == 0;
	return n;
}

#define ROLL_A	"/apis/apps/v1/namespaces/roll-a/deployments/web"
#define ROLL_B	"/apis/apps/v1/namespaces/roll-b/deployments/web"

/*
 * One worker, two apps whose rollouts take 3 s each: the worker applies B
 * while A's rollout runs (A waits in the queue, not on the worker), so
 * both are healthy in about one rollout's time.  Asserted on the order of
 * the requests the cluster saw: B's apply before the look that found A
 * healthy.  Then a restart while a job waits: it is looked at again after
 * the restart, not applied again and not counted as an attempt.
 */
static void
test_queue_rollouts_overlap(void **state)
{
	struct repo		 r;
	struct config		 cfg;
	struct config_repo	 repo;
	struct config_app	 apps[2];
	struct job_spec		 specs[2];
	struct qrun		 qr;
	struct store		*st;
	struct store_attempt_row *att = NULL;
	struct store_job_row	 row;
	size_t			 natt = 0;
	char			 err[256], *workdir, *statepath;
	const char		*rev;
	cJSON			*log, *res;
	int			 i;

	(void)state;
	evthread_use_pthreads();
	sim_clear();
	sim_ready_delay("3");
	repo_init(&r);
	repo_put(&r, "a/ns.yaml", NS("roll-a"));
	repo_put(&r, "a/web.yaml", DEPLOY("web", "nginx:1.25"));
	repo_put(&r, "b/ns.yaml", NS("roll-b"));
	repo_put(&r, "b/web.yaml", DEPLOY("web", "nginx:1.25"));
	rev = repo_commit(&r, "v1");
	workdir = xasprintf("%s/qwork", tmpdir);
	statepath = xasprintf("%s/qstate.db", tmpdir);

	memset(&cfg, 0, sizeof(cfg));
	cfg.refs = 1000000;		/* never freed through unref */
	cfg.state.path = statepath;
	cfg.state.dedup_days = 7;
	cfg.state.keep_days = 30;
	cfg.queue.max_queued = 1000;
	cfg.queue.workers = 1;
	cfg.retry.base_s = 1;
	cfg.retry.max_s = 1;
	cfg.retry.max_attempts = 3;
	cfg.notify.max_attempts = 3;
	memset(&repo, 0, sizeof(repo));
	repo.name = "deploy";
	repo.url = r.dir;
	repo.branch = "master";
	app_init(&apps[0], "roll-a", "roll-a");
	app_init(&apps[1], "roll-b", "roll-b");
	apps[0].path = "a";
	apps[1].path = "b";
	for (i = 0; i < 2; i++) {
		apps[i].repo = "deploy";
		apps[i].cluster = "sim";
		apps[i].sync_timeout_s = 60;
		memset(&specs[i], 0, sizeof(specs[i]));
		specs[i].kind = JOB_SYNC;
		specs[i].app = apps[i].name;
		specs[i].repo = "deploy";
	}
	cfg.workdir = workdir;
	cfg.repos = &repo;
	cfg.nrepos = 1;
	cfg.clusters = cluster(NULL);
	cfg.nclusters = 1;
	cfg.apps = apps;
	cfg.napps = 2;

	memset(&qr, 0, sizeof(qr));
	qr.path = statepath;
	qr.base = event_base_new();
	qr.q = queue_open(qr.base, &cfg, err, sizeof(err));
	assert_non_null(qr.q);
	assert_int_equal(queue_start(qr.q), 0);
	assert_int_equal(queue_add_jobs(qr.q, specs, 2, qr.ids, err,
	    sizeof(err)), 0);
	assert_int_equal(qrun_until_done(&qr, 60000), 0);
	for (i = 0; i < 2; i++) {
		assert_int_equal(qr.states[i], JOB_SUCCEEDED);
		assert_true(qr.seen_waiting[i]);
	}
	log = sim_call("GET", "/_sim/requests", NULL);
	assert_true(log_index(log, "PATCH", ROLL_B, 0) >= 0);
	assert_true(log_index(log, "PATCH", ROLL_B, 0) <
	    log_index(log, "GET", ROLL_A, 1));
	/* Each applied once: the looks only read. */
	assert_int_equal(log_count(log, "PATCH", ROLL_A), 1);
	assert_int_equal(log_count(log, "PATCH", ROLL_B), 1);
	cJSON_Delete(log);

	/* One attempt each, spanning apply to healthy; the result as a sync
	 * that waited on its thread had it. */
	st = store_sqlite_ops.open(statepath, NULL, err, sizeof(err));
	assert_non_null(st);
	for (i = 0; i < 2; i++) {
		assert_int_equal(store_sqlite_ops.list_attempts(st, qr.ids[i],
		    &att, &natt, err, sizeof(err)), 0);
		assert_int_equal(natt, 1);
		assert_true(att[0].ok);
		assert_true(att[0].ended_ms - att[0].started_ms >= 2500);
		store_attempt_rows_free(att, natt);
		assert_int_equal(store_sqlite_ops.get_job(st, qr.ids[i], &row,
		    err, sizeof(err)), 1);
		res = cJSON_Parse(row.result);
		assert_string_equal(jstr(res, "revision", NULL), rev);
		assert_string_equal(jstr(res, "detail", "health"), "Healthy");
		assert_null(cJSON_GetObjectItem(res, "wait"));
		cJSON_Delete(res);
		store_job_row_clear(&row);
	}
	store_sqlite_ops.close(st);

	/* A restart while a sync waits: the look goes on after it. */
	sim_clear();
	repo_put(&r, "a/web.yaml", DEPLOY("web", "nginx:1.26"));
	repo_put(&r, "b/web.yaml", DEPLOY("web", "nginx:1.26"));
	rev = repo_commit(&r, "v2");
	memset(qr.seen_waiting, 0, sizeof(qr.seen_waiting));
	assert_int_equal(queue_add_jobs(qr.q, specs, 1, qr.ids, err,
	    sizeof(err)), 0);
	qr.ids[1] = qr.ids[0];
	st = store_sqlite_ops.open(statepath, NULL, err, sizeof(err));
	for (i = 0; i < 2000 && !qr.seen_waiting[0]; i++) {
		event_base_loop(qr.base, EVLOOP_NONBLOCK);
		usleep(5000);
		assert_int_equal(store_sqlite_ops.get_job(st, qr.ids[0], &row,
		    err, sizeof(err)), 1);
		qr.seen_waiting[0] = row.state == JOB_WAITING;
		store_job_row_clear(&row);
	}
	store_sqlite_ops.close(st);
	assert_true(qr.seen_waiting[0]);
	queue_close(qr.q, 10);
	event_base_free(qr.base);
	qr.base = event_base_new();
	qr.q = queue_open(qr.base, &cfg, err, sizeof(err));
	assert_non_null(qr.q);
	assert_int_equal(queue_start(qr.q), 0);
	assert_int_equal(qrun_until_done(&qr, 60000), 0);
	assert_int_equal(qr.states[0], JOB_SUCCEEDED);
	queue_close(qr.q, 10);
	event_base_free(qr.base);
	log = sim_call("GET", "/_sim/requests", NULL);
	assert_int_equal(log_count(log, "PATCH", ROLL_A), 1);
	assert_true(log_count(log, "GET", ROLL_A) >= 2);
	cJSON_Delete(log);
	st = store_sqlite_ops.open(statepath, NULL, err, sizeof(err));
	assert_int_equal(store_sqlite_ops.list_attempts(st, qr.ids[0], &att,
	    &natt, err, sizeof(err)), 0);
	assert_int_equal(natt, 1);
	assert_true(att[0].ok);
	store_attempt_rows_free(att, natt);
	assert_int_equal(store_sqlite_ops.get_job(st, qr.ids[0], &row, err,
	    sizeof(err)), 1);
	assert_int_equal(row.attempts, 1);
	res = cJSON_Parse(row.result);
	assert_string_equal(jstr(res, "revision", NULL), rev);
	cJSON_Delete(res);
	store_job_row_clear(&row);
	store_sqlite_ops.close(st);
	sim_ready_delay("0.3");
	free(workdir);
	free(statepath);
}

#define WORKLOAD(kind, n, image) "apiVersion: apps/v1\nkind: " kind "\n" \
	"metadata:\n  name: " n "\nspec:\n  selector:\n" \
	"    matchLabels: {app: " n "}\n  template:\n    metadata:\n" \
	"      labels: {app: " n "}\n    spec:\n      containers:\n" \
	"      - name: main\n        image: " image "\n"

/* StatefulSets, DaemonSets and Jobs are waited for too. */
static void
test_sync_workload_kinds(void **state)
{
	struct repo		 r;
	struct config_app	 a;
	struct job_result	 res;
	cJSON			*d, *it;
	int			 judged = 0;

	(void)state;
	sim_clear();
	repo_init(&r);
	repo_put(&r, "deploy/ns.yaml", NS("wk"));
	repo_put(&r, "deploy/db.yaml", WORKLOAD("StatefulSet", "db", "pg:16"));
	repo_put(&r, "deploy/agent.yaml", WORKLOAD("DaemonSet", "agent",
	    "agent:1"));
	repo_put(&r, "deploy/job.yaml", "apiVersion: batch/v1\nkind: Job\n"
	    "metadata:\n  name: once\nspec:\n  template:\n    spec:\n"
	    "      restartPolicy: Never\n      containers: [{name: m, "
	    "image: 'tool:1'}]\n");
	repo_commit(&r, "v1");
	app_init(&a, "wk", "wk");
	run_sync(cluster(NULL), &a, &r, NULL, &res);
	expect_ok(&res);
	d = cJSON_Parse(res.detail);
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(d, "objects")) {
		if (jstr(it, "health", NULL) == NULL)
			continue;
		assert_string_equal(jstr(it, "health", NULL), "Healthy");
		judged++;
	}
	assert_int_equal(judged, 3);
	cJSON_Delete(d);
	job_result_clear(&res);

	/* A DaemonSet and a StatefulSet that never finish rolling out. */
	repo_put(&r, "deploy/db.yaml", WORKLOAD("StatefulSet", "db",
	    "pg:16-slow"));
	repo_put(&r, "deploy/agent.yaml", WORKLOAD("DaemonSet", "agent",
	    "agent:2-slow"));
	repo_commit(&r, "v2");
	a.sync_timeout_s = 2;
	run_sync(cluster(NULL), &a, &r, NULL, &res);
	expect_fail(&res, JOB_ERR_TIMEOUT, 0, NULL, "StatefulSet wk/db: "
	    "Progressing");
	assert_non_null(strstr(res.error, "DaemonSet wk/agent: Progressing"));
	assert_null(strstr(res.error, "Job wk/once"));
	job_result_clear(&res);

	/* A failed Job fails at once. */
	repo_put(&r, "deploy/job.yaml", "apiVersion: batch/v1\nkind: Job\n"
	    "metadata:\n  name: broken\nspec:\n  template:\n    spec:\n"
	    "      restartPolicy: Never\n      containers: [{name: m, "
	    "image: 'tool:never-ready'}]\n");
	repo_put(&r, "deploy/db.yaml", WORKLOAD("StatefulSet", "db", "pg:16"));
	repo_put(&r, "deploy/agent.yaml", WORKLOAD("DaemonSet", "agent",
	    "agent:1"));
	repo_commit(&r, "v3");
	a.sync_timeout_s = 20;
	run_sync(cluster(NULL), &a, &r, NULL, &res);
	expect_fail(&res, JOB_ERR_UNHEALTHY, 1, "Job wk/broken",
	    "BackoffLimitExceeded");
	job_result_clear(&res);
}

/* Injected 503 and a dropped connection: unreachable, retried; then ok. */
static void
test_sync_faults(void **state)
{
	struct repo		 r;
	struct config_app	 a;
	struct job_result	 res;

	(void)state;
	sim_clear();
	repo_init(&r);
	repo_put(&r, "deploy/cm.yaml", CM("faulty", "1"));
	repo_commit(&r, "v1");
	app_init(&a, "faults", "default");
	cJSON_Delete(sim_call("POST", "/_sim/faults", "{\"method\":\"PATCH\","
	    "\"status\":503,\"count\":1,\"message\":\"etcd is down\","
	    "\"retry_after\":7}"));
	run_sync(cluster(NULL), &a, &r, NULL, &res);
	expect_fail(&res, JOB_ERR_UNREACHABLE, 0, "ConfigMap default/faulty",
	    "etcd is down");
	assert_int_equal(res.retry_after_s, 7);
	job_result_clear(&res);
	cJSON_Delete(sim_call("POST", "/_sim/faults", "{\"method\":\"PATCH\","
	    "\"drop\":true,\"count\":1}"));
	run_sync(cluster(NULL), &a, &r, NULL, &res);
	expect_fail(&res, JOB_ERR_UNREACHABLE, 0, NULL, NULL);
	job_result_clear(&res);
	cJSON_Delete(sim_call("POST", "/_sim/faults", "{\"method\":\"PATCH\","
	    "\"status\":409,\"count\":1}"));
	run_sync(cluster(NULL), &a, &r, NULL, &res);
	expect_fail(&res, JOB_ERR_APPLY_REJECTED, 0, NULL, "HTTP 409");
	job_result_clear(&res);
	cJSON_Delete(sim_call("POST", "/_sim/faults", "{\"method\":\"PATCH\","
	    "\"status\":403,\"count\":1,\"message\":\"configmaps is "
	    "forbidden: User cannot patch resource\"}"));
	run_sync(cluster(NULL), &a, &r, NULL, &res);
	expect_fail(&res, JOB_ERR_UNAUTHORIZED, 1, "ConfigMap default/faulty",
	    "forbidden");
	job_result_clear(&res);
	/* Discovery itself failing: unreachable, retried. */
	cJSON_Delete(sim_call("POST", "/_sim/faults", "{\"path\":\"^/api$\","
	    "\"status\":503,\"count\":1}"));
	{
		struct config_cluster	*c = cluster(NULL);

		c->name = "sim-fresh";	/* no discovery cached for it */
		run_sync(c, &a, &r, NULL, &res);
	}
	expect_fail(&res, JOB_ERR_UNREACHABLE, 0, NULL, "discovery");
	job_result_clear(&res);
	run_sync(cluster(NULL), &a, &r, NULL, &res);
	expect_ok(&res);
	job_result_clear(&res);
}

/* kustomization.yaml, exclude:, a CRD and its custom resource together. */
static void
test_sync_exclude_and_crd(void **state)
{
	struct repo		 r;
	struct config_app	 a;
	struct job_result	 res;
	char			*excl[] = { "secrets/*", "skip-me.yaml" };
	long			 st;

	(void)state;
	sim_clear();
	repo_init(&r);
	repo_put(&r, "deploy/kustomization.yaml", "resources: [cm.yaml]\n");
	repo_put(&r, "deploy/cm.yaml", CM("included", "1"));
	repo_put(&r, "deploy/skip-me.yaml", CM("skipped1", "1"));
	repo_put(&r, "deploy/secrets/s.yaml", CM("skipped2", "1"));
	repo_put(&r, "deploy/crd.yaml", "apiVersion: apiextensions.k8s.io/v1\n"
	    "kind: CustomResourceDefinition\nmetadata:\n"
	    "  name: widgets.acme.io\nspec:\n  group: acme.io\n"
	    "  scope: Namespaced\n  names: {plural: widgets, kind: Widget}\n"
	    "  versions: [{name: v1, served: true, storage: true}]\n");
	repo_put(&r, "deploy/widget.yaml", "apiVersion: acme.io/v1\n"
	    "kind: Widget\nmetadata:\n  name: w1\nspec:\n  size: 3\n");
	repo_commit(&r, "v1");
	app_init(&a, "crd", "default");
	a.exclude = excl;
	a.nexclude = 2;
	run_sync(cluster(NULL), &a, &r, NULL, &res);
	expect_ok(&res);
	job_result_clear(&res);
	cJSON_Delete(kget_ok("/api/v1/namespaces/default/configmaps/included"));
	cJSON_Delete(kget_ok("/apis/acme.io/v1/namespaces/default/widgets/w1"));
	cJSON_Delete(kget("/api/v1/namespaces/default/configmaps/skipped1",
	    &st));
	assert_int_equal(st, 404);
	cJSON_Delete(kget("/api/v1/namespaces/default/configmaps/skipped2",
	    &st));
	assert_int_equal(st, 404);
}

/* Bad YAML and unknown kinds fail as manifest problems, before applying. */
static void
test_sync_bad_manifests(void **state)
{
	struct repo		 r;
	struct config_app	 a;
	struct job_result	 res;

	(void)state;
	sim_clear();
	repo_init(&r);
	repo_put(&r, "deploy/ok.yaml", CM("never-applied", "1"));
	repo_put(&r, "deploy/broken.yaml", "a: [1, 2\n");
	repo_commit(&r, "v1");
	app_init(&a, "bad", "default");
	run_sync(cluster(NULL), &a, &r, NULL, &res);
	expect_fail(&res, JOB_ERR_MANIFEST, 1, NULL, "deploy/broken.yaml: line");
	job_result_clear(&res);

	repo_rm(&r, "deploy/broken.yaml");
	repo_put(&r, "deploy/alien.yaml", "apiVersion: nope.io/v1\nkind: Thing\n"
	    "metadata: {name: t}\n");
	repo_commit(&r, "v2");
	run_sync(cluster(NULL), &a, &r, NULL, &res);
	expect_fail(&res, JOB_ERR_APPLY_REJECTED, 1, "Thing t",
	    "CustomResourceDefinition installed");
	job_result_clear(&res);

	run_sync(cluster(NULL), &a, &r, "0123456789abcdef0123456789abcdef01234567",
	    &res);
	expect_fail(&res, JOB_ERR_GIT, 0, NULL, "not found");
	job_result_clear(&res);

	/* A path that is not there, and a path without manifests. */
	a.path = "nowhere";
	run_sync(cluster(NULL), &a, &r, NULL, &res);
	expect_fail(&res, JOB_ERR_MANIFEST, 1, NULL, "path nowhere is not");
	job_result_clear(&res);
	repo_put(&r, "docs/README.md", "no manifests here\n");
	repo_commit(&r, "v3");
	a.path = "./docs/";
	a.sync_prune = 1;
	run_sync(cluster(NULL), &a, &r, NULL, &res);
	expect_fail(&res, JOB_ERR_MANIFEST, 1, NULL, "no manifests under");
	job_result_clear(&res);
}

/* render: argv without a shell, in an export of the commit, with a limit. */
static void
test_sync_render(void **state)
{
	struct repo		 r;
	struct config_app	 a;
	struct job_result	 res;
	char			*cat[] = { "cat", "../shared/all.txt" };
	char			*hang[] = { "sleep", "10" };
	char			*fail[] = { "cat", "missing-file" };

	(void)state;
	sim_clear();
	repo_init(&r);
	repo_put(&r, "shared/all.txt", CM("rendered", "1") "---\n"
	    CM("rendered-too", "2"));
	repo_put(&r, "deploy/placeholder.txt", "x\n");
	repo_commit(&r, "v1");
	app_init(&a, "render", "default");
	a.render_command = cat;
	a.nrender_command = 2;
	run_sync(cluster(NULL), &a, &r, NULL, &res);
	expect_ok(&res);
	job_result_clear(&res);
	cJSON_Delete(kget_ok("/api/v1/namespaces/default/configmaps/"
	    "rendered-too"));

	/* The renderer does not see the daemon's environment. */
	{
		char	*envdump[] = { "/usr/bin/python3", "-c",
		    "import os, json; print(json.dumps({'apiVersion': 'v1', "
		    "'kind': 'ConfigMap', 'metadata': {'name': 'renderenv'}, "
		    "'data': dict(os.environ)}))" };
		cJSON	*o, *data;

		setenv("GITOPSD_TEST_SECRET", "do-not-leak", 1);
		a.render_command = envdump;
		a.nrender_command = 3;
		run_sync(cluster(NULL), &a, &r, NULL, &res);
		unsetenv("GITOPSD_TEST_SECRET");
		expect_ok(&res);
		job_result_clear(&res);
		o = kget_ok("/api/v1/namespaces/default/configmaps/renderenv");
		data = cJSON_GetObjectItem(o, "data");
		assert_non_null(cJSON_GetObjectItem(data, "PATH"));
		assert_null(cJSON_GetObjectItem(data, "GITOPSD_TEST_SECRET"));
		/* HOME is the render's own, not the service user's. */
		assert_non_null(strstr(cJSON_GetStringValue(cJSON_GetObjectItem(
		    data, "HOME")), "/gitopsd-render-"));
		assert_true(cJSON_GetArraySize(data) <= 5);
		cJSON_Delete(o);
		a.nrender_command = 2;
	}

	a.render_command = hang;
	a.render_timeout_s = 1;
	run_sync(cluster(NULL), &a, &r, NULL, &res);
	expect_fail(&res, JOB_ERR_MANIFEST, 1, NULL, "timed out after 1 s");
	job_result_clear(&res);

	a.render_command = fail;
	run_sync(cluster(NULL), &a, &r, NULL, &res);
	expect_fail(&res, JOB_ERR_MANIFEST, 1, NULL, "exited 1");
	assert_non_null(strstr(res.error, "missing-file"));
	job_result_clear(&res);
}

/* Run a shell command line; its exit status. */
static int
sh(const char *fmt, ...)
{
	va_list	 ap;
	char	*cmd, *argv[] = { "sh", "-c", NULL, NULL };
	pid_t	 pid;
	int	 st = -1;

	va_start(ap, fmt);
	cmd = xvasprintf(fmt, ap);
	va_end(ap);
	argv[2] = cmd;
	if (posix_spawnp(&pid, "sh", NULL, NULL, argv, environ) == 0)
		waitpid(pid, &st, 0);
	free(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/*
 * Point master at a commit built with plumbing: deploy/ holds cm.yaml,
 * data/cm.txt and the mktree line(s) `deploy_extra`; the root holds
 * deploy and `root_extra`.  $cm, $txt, $pw (a pwned.yaml), $sub (a tree
 * holding pwned.yaml) and $ln/$in (link targets "../../canary.yaml",
 * "data/cm.txt") are there to use.
 */
static void
repo_plumb(struct repo *r, const char *deploy_extra, const char *root_extra)
{
	assert_int_equal(sh("set -e; cd '%s'; G=git; "
	    "cm=$(printf '" CM("hostile-ok", "1") "' | $G hash-object -w "
	    "--stdin); "
	    "txt=$(printf '" CM("linked-in", "1") "' | $G hash-object -w "
	    "--stdin); "
	    "pw=$(printf '" CM("pwned", "1") "' | $G hash-object -w --stdin); "
	    "ln=$(printf '../../canary.yaml' | $G hash-object -w --stdin); "
	    "in=$(printf 'data/cm.txt' | $G hash-object -w --stdin); "
	    "sub=$(printf '100644 blob %%s\\tpwned.yaml\\n' $pw | $G mktree); "
	    "data=$(printf '100644 blob %%s\\tcm.txt\\n' $txt | $G mktree); "
	    "dep=$({ printf '100644 blob %%s\\tcm.yaml\\n' $cm; "
	    "printf '040000 tree %%s\\tdata\\n' $data; %s; } | $G mktree); "
	    "root=$({ printf '040000 tree %%s\\tdeploy\\n' $dep; %s; } | "
	    "$G mktree); "
	    "c=$(echo hostile | $G -c user.name=t -c user.email=t@localhost "
	    "commit-tree $root); $G update-ref refs/heads/master $c",
	    r->dir, deploy_extra, root_extra), 0);
}

/*
 * A hostile repository (a link out of the app, a tree entry "..", ".git",
 * ".GIT", a backslash name) neither reads nor writes outside: the canary
 * next to the render directories never reaches the cluster, nothing is
 * created beside them, the sync fails naming the entry.  A link inside the
 * app reads as its target.
 */
static void
test_sync_hostile_tree(void **state)
{
	static const struct {
		const char	*deploy_extra, *root_extra, *error;
	} cases[] = {
		{ "printf '120000 blob %s\\tleak.yaml\\n' $ln", "true",
		    "deploy/leak.yaml: symlink refused: target "
		    "\"../../canary.yaml\" leaves deploy" },
		{ "true", "printf '040000 tree %s\\t..\\n' $sub",
		    "\"..\": tree entry name refused" },
		{ "printf '040000 tree %s\\t..\\n' $sub", "true",
		    "deploy/\"..\": tree entry name refused" },
		{ "printf '040000 tree %s\\t.git\\n' $sub", "true",
		    "deploy/\".git\": tree entry name refused" },
		{ "printf '040000 tree %s\\t.GIT\\n' $sub", "true",
		    "deploy/\".GIT\": tree entry name refused" },
		{ "printf '100644 blob %s\\tx\\\\y.yaml\\n' $pw", "true",
		    "tree entry name refused" },
	};
	char			*cat[] = { "cat", "leak.yaml", "cm.yaml" };
	char			*catin[] = { "cat", "in.yaml" };
	struct repo		 r;
	struct config_app	 a;
	struct job_result	 res;
	char			*rtmp, *old;
	size_t			 i;
	int			 render;
	long			 st;

	(void)state;
	sim_clear();
	rtmp = xasprintf("%s/rtmp", tmpdir);
	assert_int_equal(sh("mkdir -p '%s' && printf '" CM("canary",
	    "secret-canary") "' > '%s/canary.yaml'", rtmp, rtmp), 0);
	old = getenv("TMPDIR") != NULL ? xstrdup(getenv("TMPDIR")) : NULL;
	setenv("TMPDIR", rtmp, 1);
	repo_init(&r);
	app_init(&a, "hostile", "default");
	for (i = 0; i < nitems(cases); i++) {
		repo_plumb(&r, cases[i].deploy_extra, cases[i].root_extra);
		for (render = 0; render < 2; render++) {
			a.render_command = render ? cat : NULL;
			a.nrender_command = render ? 3 : 0;
			run_sync(cluster(NULL), &a, &r, NULL, &res);
			/* Outside the app: only a render export sees it. */
			if (!render && strcmp(cases[i].root_extra, "true") != 0)
				expect_ok(&res);
			else
				expect_fail(&res, JOB_ERR_MANIFEST, 1, NULL,
				    cases[i].error);
			job_result_clear(&res);
			/* Nothing left beside the canary, no pwned object. */
			assert_int_equal(sh("test \"$(ls -A '%s')\" = "
			    "canary.yaml", rtmp), 0);
		}
	}
	cJSON_Delete(kget("/api/v1/namespaces/default/configmaps/canary",
	    &st));
	assert_int_equal(st, 404);
	cJSON_Delete(kget("/api/v1/namespaces/default/configmaps/pwned", &st));
	assert_int_equal(st, 404);

	/* A link inside the app: its target's content, rendered or not. */
	repo_plumb(&r, "printf '120000 blob %s\\tin.yaml\\n' $in", "true");
	a.render_command = catin;
	a.nrender_command = 2;
	run_sync(cluster(NULL), &a, &r, NULL, &res);
	expect_ok(&res);
	job_result_clear(&res);
	cJSON_Delete(kget_ok("/api/v1/namespaces/default/configmaps/"
	    "linked-in"));
	a.render_command = NULL;
	a.nrender_command = 0;
	run_sync(cluster(NULL), &a, &r, NULL, &res);
	expect_ok(&res);
	job_result_clear(&res);
	assert_int_equal(sh("test \"$(ls -A '%s')\" = canary.yaml", rtmp), 0);
	if (old != NULL)
		setenv("TMPDIR", old, 1);
	else
		unsetenv("TMPDIR");
	free(old);
	free(rtmp);
}

/* In-cluster mode against the simulator, through the overridable dir. */
static void
test_sync_in_cluster(void **state)
{
	struct repo		 r;
	struct config_app	 a;
	struct job_result	 res;
	struct config_cluster	*c;
	char			 port[16];

	(void)state;
	snprintf(port, sizeof(port), "%d", sim_port);
	setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", port, 1);
	setenv(KUBECONFIG_SA_DIR_ENV, simdir, 1);	/* token, ca.crt */
	repo_init(&r);
	repo_put(&r, "deploy/cm.yaml", CM("incluster", "1"));
	repo_commit(&r, "v1");
	app_init(&a, "incluster", "default");
	c = cluster("in-cluster");
	run_sync(c, &a, &r, NULL, &res);
	expect_ok(&res);
	job_result_clear(&res);
	unsetenv("KUBERNETES_SERVICE_HOST");
	run_sync(c, &a, &r, NULL, &res);
	expect_fail(&res, JOB_ERR_CONFIG, 1, NULL, "KUBERNETES_SERVICE_HOST");
	job_result_clear(&res);
	unsetenv("KUBERNETES_SERVICE_PORT");
	unsetenv(KUBECONFIG_SA_DIR_ENV);
}

/* The JOB_SYNC runner: config lookups, git_repo_prepare's clone, sync. */
static void
test_job_runner_sync(void **state)
{
	const struct job_runner	*jr = job_runner_find(JOB_SYNC);
	struct repo		 r;
	struct config		 cfg;
	struct config_repo	 repo;
	struct config_app	 a;
	struct job		 job;
	struct job_result	 res;
	char			*workdir;
	const char		*rev1, *rev2;
	cJSON			*o;

	(void)state;
	assert_non_null(jr);
	assert_non_null(jr->run);
	sim_clear();
	repo_init(&r);
	repo_put(&r, "deploy/ns.yaml", NS("runner"));
	repo_put(&r, "deploy/cm.yaml", CM("runner", "1"));
	rev1 = xstrdup(repo_commit(&r, "v1"));
	workdir = xasprintf("%s/work", tmpdir);

	memset(&cfg, 0, sizeof(cfg));
	memset(&repo, 0, sizeof(repo));
	repo.name = "deploy";
	repo.url = r.dir;
	repo.branch = "master";
	app_init(&a, "runner", "runner");
	a.repo = "deploy";
	a.cluster = "sim";
	cfg.workdir = workdir;
	cfg.repos = &repo;
	cfg.nrepos = 1;
	cfg.clusters = cluster(NULL);
	cfg.nclusters = 1;
	cfg.apps = &a;
	cfg.napps = 1;

	memset(&job, 0, sizeof(job));
	job.id = 42;
	job.kind = JOB_SYNC;
	job.app = "runner";
	memset(&res, 0, sizeof(res));
	jr->run(&cfg, &job, &res);
	expect_ok(&res);
	assert_string_equal(res.revision, rev1);
	job_result_clear(&res);

	/* A new commit: revision NULL means the branch head, fetched now. */
	repo_put(&r, "deploy/cm.yaml", CM("runner", "2"));
	rev2 = xstrdup(repo_commit(&r, "v2"));
	jr->run(&cfg, &job, &res);
	expect_ok(&res);
	assert_string_equal(res.revision, rev2);
	job_result_clear(&res);
	o = kget_ok("/api/v1/namespaces/runner/configmaps/runner");
	assert_string_equal(jstr(o, "data", "key"), "2");
	cJSON_Delete(o);

	/* An explicit older revision is applied as asked. */
	job.revision = (char *)rev1;
	jr->run(&cfg, &job, &res);
	expect_ok(&res);
	assert_string_equal(res.revision, rev1);
	job_result_clear(&res);
	o = kget_ok("/api/v1/namespaces/runner/configmaps/runner");
	assert_string_equal(jstr(o, "data", "key"), "1");
	cJSON_Delete(o);

	job.app = "no-such-app";
	jr->run(&cfg, &job, &res);
	expect_fail(&res, JOB_ERR_CONFIG, 1, NULL, "not configured");
	job_result_clear(&res);
	a.cluster = NULL;
	job.app = "runner";
	jr->run(&cfg, &job, &res);
	expect_fail(&res, JOB_ERR_CONFIG, 1, NULL, "no cluster");
	job_result_clear(&res);
	free((char *)rev1);
	free((char *)rev2);
	free(workdir);
}

static void
test_drift_due(void **state)
{
	struct config_app	 a;
	int64_t			 next;

	(void)state;
	memset(&a, 0, sizeof(a));
	assert_int_equal(sync_drift_due(&a, 0, 1000, &next), 0);
	assert_true(next == INT64_MAX);
	a.sync_interval_s = 60;
	assert_int_equal(sync_drift_due(&a, 0, 1000, &next), 1);
	assert_int_equal(sync_drift_due(&a, 1000, 30000, &next), 0);
	assert_true(next == 61000);
	assert_int_equal(sync_drift_due(&a, 1000, 61000, NULL), 1);
}

/* A 429 from the API server (priority and fairness) is waited out and the
 * request sent again, as client-go does; a PATCH answered 503 is not
 * repeated (it may have been applied), a sync keeps failing on it. */
static void
test_sync_throttled(void **state)
{
	struct repo		 r;
	struct config_app	 a;
	struct job_result	 res;
	cJSON			*log, *e;
	const char		*m, *path;
	int			 patches = 0;

	(void)state;
	sim_clear();
	repo_init(&r);
	repo_put(&r, "deploy/cm.yaml", CM("throttled", "1"));
	repo_commit(&r, "v1");
	app_init(&a, "throttled", "default");
	cJSON_Delete(sim_call("POST", "/_sim/faults", "{\"method\":\"PATCH\","
	    "\"path\":\"configmaps/throttled\",\"status\":429,\"count\":2,"
	    "\"message\":\"too many requests\",\"retry_after\":1}"));
	run_sync(cluster(NULL), &a, &r, NULL, &res);
	expect_ok(&res);
	job_result_clear(&res);
	log = sim_call("GET", "/_sim/requests", NULL);
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(log,
	    "requests")) {
		m = jstr(e, "method", NULL);
		path = jstr(e, "path", NULL);
		if (m != NULL && path != NULL && strcmp(m, "PATCH") == 0 &&
		    strstr(path, "/configmaps/throttled") != NULL)
			patches++;
	}
	cJSON_Delete(log);
	assert_int_equal(patches, 3);
}

/* 500 apps (drift syncs) or repos (polls) on a 30 s interval fall due
 * spread over the interval, each strictly after start and at most one
 * interval later, the same slot on every call. */
static void
test_first_due_spread(void **state)
{
	int64_t	(*const fns[])(const char *, int, int64_t) = {
		drift_first_due_ms, poller_repo_first_due_ms,
	};
	int	 buckets[30], i, used, most;
	char	 name[32];
	int64_t	 start = 1700000000000LL, due;
	size_t	 f;

	(void)state;
	for (f = 0; f < sizeof(fns) / sizeof(fns[0]); f++) {
		memset(buckets, 0, sizeof(buckets));
		used = most = 0;
		for (i = 0; i < 500; i++) {
			snprintf(name, sizeof(name), "app-%d", i);
			due = fns[f](name, 30, start);
			assert_true(due > start && due <= start + 30000);
			assert_true(due == fns[f](name, 30, start));
			buckets[(due - start - 1) / 1000]++;
		}
		for (i = 0; i < 30; i++) {
			used += buckets[i] > 0;
			if (buckets[i] > most)
				most = buckets[i];
		}
		/* Uniform would be 16.7 a second; all in one second is the
		 * bug. */
		assert_int_equal(used, 30);
		assert_true(most <= 34);
		assert_true(fns[f]("x", 0, start) == INT64_MAX);
	}
}

struct disc_arg {
	pthread_barrier_t	*barrier;
	enum kube_rc		 rc;
	char			 kind[64];
};

static void *
disc_thread(void *arg)
{
	struct disc_arg		*a = arg;
	struct kubeconfig	*kc;
	struct kube		*k;
	struct kube_resource	 r;
	char			 err[512];
	long			 st;

	a->rc = KUBE_HTTP;
	kc = kubeconfig_load_file(kubeconfig_path, NULL, 0, err, sizeof(err));
	if (kc == NULL)
		return NULL;
	if ((k = kube_new(kc, "sim-single-flight", err, sizeof(err))) != NULL) {
		pthread_barrier_wait(a->barrier);
		a->rc = kube_resource_find(k, "apps/v1", "Deployment", &r, &st,
		    err, sizeof(err));
		if (a->rc == KUBE_OK)
			snprintf(a->kind, sizeof(a->kind), "%s", r.plural);
		kube_resource_clear(&r);
		kube_free(k);
	}
	kubeconfig_free(kc);
	return NULL;
}

/* Workers that all find the discovery cache empty at once fetch it once
 * between them (every worker's first sync after start did it each). */
static void
test_discovery_single_flight(void **state)
{
	enum { NT = 4 };
	pthread_t		 t[NT];
	pthread_barrier_t	 barrier;
	struct disc_arg		 a[NT];
	cJSON			*log, *e;
	const char		*path;
	int			 i, api = 0, apis = 0, apps = 0;

	(void)state;
	sim_clear();
	pthread_barrier_init(&barrier, NULL, NT);
	for (i = 0; i < NT; i++) {
		memset(&a[i], 0, sizeof(a[i]));
		a[i].barrier = &barrier;
		assert_int_equal(pthread_create(&t[i], NULL, disc_thread,
		    &a[i]), 0);
	}
	for (i = 0; i < NT; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&barrier);
	for (i = 0; i < NT; i++) {
		assert_int_equal(a[i].rc, KUBE_OK);
		assert_string_equal(a[i].kind, "deployments");
	}
	log = sim_call("GET", "/_sim/requests", NULL);
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(log,
	    "requests")) {
		path = jstr(e, "path", NULL);
		if (path == NULL)
			continue;
		api += strcmp(path, "/api") == 0;
		apis += strcmp(path, "/apis") == 0;
		apps += strcmp(path, "/apis/apps/v1") == 0;
	}
	cJSON_Delete(log);
	assert_int_equal(api, 1);
	assert_int_equal(apis, 1);
	assert_int_equal(apps, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sync_create),
		cmocka_unit_test(test_sync_update_only_changed),
		cmocka_unit_test(test_sync_prune),
		cmocka_unit_test(test_sync_inventory),
		cmocka_unit_test(test_sync_inventory_ownership),
		cmocka_unit_test(test_sync_rejected_no_prune),
		cmocka_unit_test(test_sync_missing_namespace),
		cmocka_unit_test(test_sync_unreachable),
		cmocka_unit_test(test_sync_wrong_token),
		cmocka_unit_test(test_sync_tls_wrong_ca),
		cmocka_unit_test(test_sync_client_cert_data),
		cmocka_unit_test(test_sync_never_ready),
		cmocka_unit_test(test_sync_timeout),
		cmocka_unit_test(test_sync_health_waits),
		cmocka_unit_test(test_queue_rollouts_overlap),
		cmocka_unit_test(test_sync_workload_kinds),
		cmocka_unit_test(test_sync_faults),
		cmocka_unit_test(test_sync_exclude_and_crd),
		cmocka_unit_test(test_sync_bad_manifests),
		cmocka_unit_test(test_sync_render),
		cmocka_unit_test(test_sync_hostile_tree),
		cmocka_unit_test(test_sync_in_cluster),
		cmocka_unit_test(test_job_runner_sync),
		cmocka_unit_test(test_drift_due),
		cmocka_unit_test(test_first_due_spread),
		cmocka_unit_test(test_sync_throttled),
		cmocka_unit_test(test_discovery_single_flight),
	};

	return cmocka_run_group_tests(tests, sim_start, sim_stop);
}
