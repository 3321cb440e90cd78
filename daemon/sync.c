/*
 * sync.c: apply an app's manifests, prune, wait for health.
 *
 * DESIGN
 * - Threads: everything here runs on one worker thread per job, with its
 *   own struct kube (one libcurl easy handle).  The only shared state is
 *   kube.c's discovery cache.
 * - Reading: manifests come from the Git object database at the commit
 *   (git.c's tree walk, under its per-repository lock), never from a
 *   checkout, so two jobs of one repo never race on a work tree.  git.c
 *   refuses hostile entry names and out-of-bounds symlinks.  A renderer
 *   (kustomize...) gets a private temporary export of the commit's tree
 *   and runs without a shell, with a built environment and its own HOME.
 * - Ordering: a stable sort by kind rank (Namespaces and CRDs, then
 *   ServiceAccounts, RBAC, ConfigMaps/Secrets, Services, workloads, the
 *   rest); within a rank, file order.  A kind unknown to discovery right
 *   after a CRD was applied is looked up again for a few seconds (the API
 *   serves a new CRD once it is established).
 * - All or nothing: every object is validated (apiVersion, kind, name, no
 *   duplicates) before the first request; the first rejected apply stops
 *   the sync, and prune only ever runs after every object applied.
 * - Prune: from the app's inventory (what its syncs applied, kept in the
 *   store and handed in by the queue with the job): what this sync did
 *   not apply is read once and deleted if it still has the app's labels
 *   and the uid applied, no owner, and no gitopsd.io/prune: disabled.
 *   Listing every kind by label on every sync was most of the API
 *   traffic of an unchanged fleet; it is now only the fallback when the
 *   inventory is missing or unreadable, once, and rebuilds it.  There an
 *   object is kept when its uid is one just applied, when it has
 *   ownerReferences (its owner manages it; EndpointSlices copy a Service's
 *   labels), or when annotated gitopsd.io/prune: disabled.  Core Endpoints
 *   are never pruned: the endpoints controller copies a Service's labels
 *   onto them without an owner.
 * - Health: looked at once after apply and prune, never slept on.  Still
 *   rolling out, the result carries a wait state (each workload's API
 *   path and health kind, the deadline on the wall clock, the backoff, the
 *   revision and the detail), the job waits in the queue, and a worker
 *   looks again later (sync_health_recheck) with that state alone, so a
 *   restart in between loses nothing and workers apply other apps while
 *   rollouts run.
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "gitrepo.h"
#include "job.h"
#include "kube.h"
#include "kubeconfig.h"
#include "log.h"
#include "sync.h"
#include "util.h"
#include "yaml_json.h"

#define SYNC_MAX_FILE		(8u * 1024 * 1024)
#define SYNC_MAX_TOTAL		(64u * 1024 * 1024)
#define SYNC_MAX_OBJECTS	10000
#define SYNC_RENDER_MAX_OUT	(64u * 1024 * 1024)
#define SYNC_CRD_WAIT_S		10
/*
 * Health looks: the first right after apply, then 250 ms later, doubling
 * up to 4 s (most rollouts finish in seconds; hundreds of apps waiting at
 * once must not turn into a storm of GETs and store rounds).
 */
#define SYNC_POLL_FIRST_MS	250
#define SYNC_POLL_MAX_MS	4000

/* ---- manifests from Git ------------------------------------------------ */

void
sync_manifests_free(struct sync_manifests *m)
{
	size_t	 i;

	for (i = 0; i < m->n; i++) {
		cJSON_Delete(m->objs[i]);
		free(m->origins[i]);
	}
	free(m->objs);
	free(m->origins);
	memset(m, 0, sizeof(*m));
}

static void
sync_manifests_add(struct sync_manifests *m, cJSON *obj, const char *origin)
{
	// NOLINTNEXTLINE(bugprone-sizeof-expression): array of pointers
	m->objs = xreallocarray(m->objs, m->n + 1, sizeof(*m->objs));
	m->origins = xreallocarray(m->origins, m->n + 1, sizeof(*m->origins));
	m->objs[m->n] = obj;
	m->origins[m->n] = xstrdup(origin);
	m->n++;
}

/* Parse one file's YAML documents into m; a v1 List contributes its items. */
static int
sync_manifests_parse(struct sync_manifests *m, const char *buf, size_t len,
    const char *origin, char *err, size_t errlen)
{
	cJSON		**docs, *items, *it, *kind;
	size_t		 n, i;
	char		 sub[256];

	if (yaml_json_parse(buf, len, NULL, &docs, &n, sub, sizeof(sub)) ==
	    -1) {
		snprintf(err, errlen, "%s: %s", origin, sub);
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (!cJSON_IsObject(docs[i])) {
			snprintf(err, errlen, "%s: document %zu is not a mapping",
			    origin, i + 1);
			yaml_json_free(docs, n);
			return -1;
		}
	}
	for (i = 0; i < n; i++) {
		kind = cJSON_GetObjectItemCaseSensitive(docs[i], "kind");
		items = cJSON_GetObjectItemCaseSensitive(docs[i], "items");
		if (cJSON_IsString(kind) && strcmp(kind->valuestring, "List") ==
		    0 && cJSON_IsArray(items)) {
			while ((it = cJSON_DetachItemFromArray(items, 0)) != NULL)
				sync_manifests_add(m, it, origin);
			cJSON_Delete(docs[i]);
		} else
			sync_manifests_add(m, docs[i], origin);
		docs[i] = NULL;
	}
	free(docs);
	if (m->n > SYNC_MAX_OBJECTS) {
		snprintf(err, errlen, "more than %d objects", SYNC_MAX_OBJECTS);
		return -1;
	}
	return 0;
}

static int
sync_is_manifest_name(const char *name)
{
	size_t	 n = strlen(name);

	if (strcmp(name, "kustomization.yaml") == 0 ||
	    strcmp(name, "kustomization.yml") == 0 ||
	    strcmp(name, "Kustomization") == 0)
		return 0;
	return (n > 5 && strcmp(name + n - 5, ".yaml") == 0) ||
	    (n > 4 && strcmp(name + n - 4, ".yml") == 0);
}

/*
 * exclude: fnmatch(3) patterns relative to the app path ("secrets/x.yaml");
 * "**" is not special; a pattern without / also matches a file name.
 */
static int
sync_is_excluded(const struct config_app *app, const char *rel,
    const char *name)
{
	size_t	 i;

	for (i = 0; i < app->nexclude; i++) {
		if (fnmatch(app->exclude[i], rel, FNM_PATHNAME) == 0)
			return 1;
		if (strchr(app->exclude[i], '/') == NULL &&
		    fnmatch(app->exclude[i], name, 0) == 0)
			return 1;
	}
	return 0;
}

struct sync_walk {
	const struct config_app	*app;
	const char		*base;		/* app path, for messages */
	struct sync_manifests	*m;
	size_t			 total;
	char			*err;
	size_t			 errlen;
};

/* git_repo_walk filter: manifests, not excluded (rel: under the app). */
static int
sync_walk_want(const char *rel, void *arg)
{
	struct sync_walk	*w = arg;
	const char		*slash = strrchr(rel, '/');
	const char		*name = slash != NULL ? slash + 1 : rel;

	return sync_is_manifest_name(name) && !sync_is_excluded(w->app, rel,
	    name);
}

static int
sync_walk_cb(const char *rel, const char *data, size_t len, void *arg)
{
	struct sync_walk	*w = arg;
	char			*origin;
	int			 rc = -1;

	origin = w->base[0] != '\0' && strcmp(w->base, ".") != 0 ?
	    xasprintf("%s/%s", w->base, rel) : xstrdup(rel);
	if (data == NULL || (w->total += len) > SYNC_MAX_TOTAL) {
		snprintf(w->err, w->errlen, "%s: manifests too large (file limit "
		    "%u bytes, total %u)", origin, SYNC_MAX_FILE, SYNC_MAX_TOTAL);
		goto out;
	}
	if (sync_manifests_parse(w->m, data, len, origin, w->err, w->errlen)
	    == -1)
		goto out;
	rc = 0;
out:
	free(origin);
	return rc;
}

/* ---- renderer ---------------------------------------------------------- */

#define SYNC_RENDER_NENV	5

/* One render's private directory, <TMPDIR>/gitopsd-render-XXXXXX. */
struct sync_render_dir {
	char	*top;		/* 0700, removed afterwards */
	char	*src;		/* top/src: the commit's tree */
	char	*home;		/* top/home: HOME */
	char	*tmp;		/* top/tmp: TMPDIR */
};

/*
 * The renderer's environment is built, not inherited: PATH (the daemon's,
 * or a default), HOME and TMPDIR inside the render's own directory, and
 * LANG/LC_ALL when set.  The daemon's environment may hold secrets given
 * as *_env, its HOME may hold credentials (~/.git-credentials, ~/.kube,
 * ~/.ssh), and a renderer may run plugins from the repository.
 */
static void
sync_render_env(char **env, char (*buf)[1024], size_t len,
    const struct sync_render_dir *rd)
{
	static const char *const keep[] = { "PATH", "HOME", "TMPDIR", "LANG",
	    "LC_ALL" };
	const char	*v;
	size_t		 i, n = 0;

	for (i = 0; i < nitems(keep); i++) {
		if (strcmp(keep[i], "HOME") == 0)
			v = rd->home;
		else if (strcmp(keep[i], "TMPDIR") == 0)
			v = rd->tmp;
		else if ((v = getenv(keep[i])) == NULL &&
		    strcmp(keep[i], "PATH") == 0)
			v = "/usr/local/bin:/usr/bin:/bin";
		if (v == NULL)
			continue;
		if ((size_t)snprintf(buf[n], len, "%s=%s", keep[i], v) >= len)
			continue;	/* absurdly long: leave it out */
		env[n] = buf[n];
		n++;
	}
	env[n] = NULL;
}

/*
 * Run argv in dir with a time limit; its stdout (capped) is returned in
 * *out.  stderr's tail goes into the error message on failure.
 */
static int
sync_render_run(char *const argv[], const struct sync_render_dir *rd,
    const char *dir, int timeout_s, struct buf *out, char *err, size_t errlen)
{
	posix_spawn_file_actions_t	 fa;
	posix_spawnattr_t		 sa;
	struct pollfd			 pfd[2];
	struct buf			 eb;
	int				 opipe[2] = { -1, -1 }, epipe[2] = { -1, -1 };
	int				 rc = -1, status, fa_ok = 0, sa_ok = 0;
	int				 nfds, i;
	int64_t				 deadline;
	pid_t				 pid = -1;
	char				 tmp[8192];
	char				*env[SYNC_RENDER_NENV + 1];
	char				 envbuf[SYNC_RENDER_NENV][1024];
	ssize_t				 n;

	buf_init(&eb, 4096);
	if (pipe2(opipe, O_CLOEXEC) == -1 || pipe2(epipe, O_CLOEXEC) == -1) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		goto out;
	}
	if (posix_spawn_file_actions_init(&fa) != 0) {
		snprintf(err, errlen, "posix_spawn_file_actions_init failed");
		goto out;
	}
	fa_ok = 1;
	if (posix_spawn_file_actions_adddup2(&fa, opipe[1], 1) != 0 ||
	    posix_spawn_file_actions_adddup2(&fa, epipe[1], 2) != 0 ||
	    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)
	    != 0 ||
	    posix_spawn_file_actions_addchdir_np(&fa, dir) != 0) {
		snprintf(err, errlen, "posix_spawn_file_actions failed");
		goto out;
	}
	/* Its own process group: a timeout kills what it started too. */
	if (posix_spawnattr_init(&sa) != 0) {
		snprintf(err, errlen, "posix_spawnattr_init failed");
		goto out;
	}
	sa_ok = 1;
	if (posix_spawnattr_setflags(&sa, POSIX_SPAWN_SETPGROUP) != 0 ||
	    posix_spawnattr_setpgroup(&sa, 0) != 0) {
		snprintf(err, errlen, "posix_spawnattr failed");
		goto out;
	}
	sync_render_env(env, envbuf, sizeof(envbuf[0]), rd);
	if ((errno = posix_spawnp(&pid, argv[0], &fa, &sa, argv, env)) != 0) {
		snprintf(err, errlen, "render: cannot run %.100s: %s", argv[0],
		    strerror(errno));
		pid = -1;
		goto out;
	}
	close(opipe[1]);
	close(epipe[1]);
	opipe[1] = epipe[1] = -1;
	deadline = util_mono_ms() + (int64_t)timeout_s * 1000;
	pfd[0].fd = opipe[0];
	pfd[1].fd = epipe[0];
	for (;;) {
		int64_t	 left = deadline - util_mono_ms();

		nfds = 0;
		for (i = 0; i < 2; i++) {
			pfd[i].events = pfd[i].fd >= 0 ? POLLIN : 0;
			if (pfd[i].fd >= 0)
				nfds++;
		}
		if (nfds == 0)
			break;
		if (left <= 0) {
			snprintf(err, errlen, "render: %.100s timed out after %d s",
			    argv[0], timeout_s);
			goto out;
		}
		if (poll(pfd, 2, (int)(left > 1000 ? 1000 : left)) == -1) {
			if (errno == EINTR)
				continue;
			snprintf(err, errlen, "poll: %s", strerror(errno));
			goto out;
		}
		for (i = 0; i < 2; i++) {
			if (pfd[i].fd < 0 || pfd[i].revents == 0)
				continue;
			n = read(pfd[i].fd, tmp, sizeof(tmp));
			if (n == -1 && errno == EINTR)
				continue;
			if (n <= 0) {
				close(pfd[i].fd);
				pfd[i].fd = -1;
				if (i == 0)
					opipe[0] = -1;
				else
					epipe[0] = -1;
				continue;
			}
			if (i == 0 && buf_add(out, tmp, (size_t)n) == -1) {
				snprintf(err, errlen, "render: output over %u "
				    "bytes", SYNC_RENDER_MAX_OUT);
				goto out;
			}
			if (i == 1 && buf_add(&eb, tmp, (size_t)n) == -1) {
				/* Keep the tail: drop the head. */
				buf_reset(&eb);
				buf_add(&eb, tmp, (size_t)n);
			}
		}
	}
	while (waitpid(pid, &status, 0) == -1) {
		if (errno != EINTR) {
			snprintf(err, errlen, "waitpid: %s", strerror(errno));
			goto out;
		}
	}
	pid = -1;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		char	 esc[600];

		while (eb.len > 0 && (eb.data[eb.len - 1] == '\n'))
			eb.data[--eb.len] = '\0';
		log_escape(eb.data != NULL ? eb.data : "", eb.len > 500 ? 500 :
		    eb.len, esc, sizeof(esc));
		if (WIFEXITED(status))
			snprintf(err, errlen, "render: %.100s exited %d: %s",
			    argv[0], WEXITSTATUS(status), esc);
		else
			snprintf(err, errlen, "render: %.100s killed by signal "
			    "%d", argv[0], WTERMSIG(status));
		goto out;
	}
	rc = 0;
out:
	if (pid > 0) {
		kill(-pid, SIGKILL);
		while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
			;
	}
	if (fa_ok)
		posix_spawn_file_actions_destroy(&fa);
	if (sa_ok)
		posix_spawnattr_destroy(&sa);
	for (i = 0; i < 2; i++) {
		if (opipe[i] >= 0)
			close(opipe[i]);
		if (epipe[i] >= 0)
			close(epipe[i]);
	}
	buf_free(&eb);
	return rc;
}

static void
sync_render_dir_free(struct sync_render_dir *rd)
{
	if (rd->top != NULL)
		util_rmtree(rd->top);
	free(rd->top);
	free(rd->src);
	free(rd->home);
	free(rd->tmp);
	memset(rd, 0, sizeof(*rd));
}

/* A fresh private directory for one render (src is left to the export). */
static int
sync_render_dir_new(struct sync_render_dir *rd, char *err, size_t errlen)
{
	const char	*tmpdir;
	char		*tmpl;

	memset(rd, 0, sizeof(*rd));
	if ((tmpdir = getenv("TMPDIR")) == NULL || tmpdir[0] == '\0')
		tmpdir = "/tmp";
	tmpl = xasprintf("%s/gitopsd-render-XXXXXX", tmpdir);
	if (mkdtemp(tmpl) == NULL) {
		snprintf(err, errlen, "mkdtemp %s: %s", tmpl, strerror(errno));
		free(tmpl);
		return -1;
	}
	rd->top = tmpl;
	rd->src = xasprintf("%s/src", tmpl);
	rd->home = xasprintf("%s/home", tmpl);
	rd->tmp = xasprintf("%s/tmp", tmpl);
	if (mkdir(rd->home, 0700) == -1 || mkdir(rd->tmp, 0700) == -1) {
		snprintf(err, errlen, "mkdir %s: %s", tmpl, strerror(errno));
		sync_render_dir_free(rd);
		return -1;
	}
	return 0;
}

/* Run the renderer in the exported tree at the app's path. */
static int
sync_render(const struct sync_render_dir *rd, const struct config_app *app,
    struct sync_manifests *m, char *err, size_t errlen)
{
	struct buf	 out;
	char		*cwd, **argv;
	size_t		 i;
	int		 rc;

	buf_init(&out, SYNC_RENDER_MAX_OUT);
	cwd = app->path != NULL && app->path[0] != '\0' ?
	    xasprintf("%s/%s", rd->src, app->path) : xstrdup(rd->src);
	argv = xcalloc(app->nrender_command + 1, sizeof(*argv));
	for (i = 0; i < app->nrender_command; i++)
		argv[i] = app->render_command[i];
	rc = sync_render_run(argv, rd, cwd, app->render_timeout_s > 0 ?
	    app->render_timeout_s : 60, &out, err, errlen);
	free(argv);
	if (rc == 0)
		rc = sync_manifests_parse(m, out.data != NULL ? out.data : "",
		    out.len, "render output", err, errlen);
	buf_free(&out);
	free(cwd);
	return rc;
}

/*
 * Everything read from the clone happens under git.c's per-repository
 * lock (git_repo_open_path); a renderer runs after the lock is released,
 * on its private export, so a slow one does not hold up update jobs.
 */
int
sync_manifests_read(const char *repo_path, const char *revision,
    const char *branch, const struct config_app *app,
    struct sync_manifests *m, char **commit_out, int *kind, char *err,
    size_t errlen)
{
	struct git_repo		*g = NULL;
	struct git_repo_walk	 gw;
	struct sync_walk	 w;
	struct sync_render_dir	 rd;
	char			 hex[41];
	int			 rc = -1;

	memset(m, 0, sizeof(*m));
	memset(&rd, 0, sizeof(rd));
	*commit_out = NULL;
	*kind = JOB_ERR_GIT;
	if (git_repo_open_path(repo_path, &g, err, errlen) != GIT_REPO_OK)
		goto out;
	if (git_repo_resolve(g, revision, branch, hex, err,
	    errlen) == -1)
		goto out;
	/* The commit is fixed: a bad tree or missing path will not heal. */
	*kind = JOB_ERR_MANIFEST;
	if (app->render_command != NULL && app->nrender_command > 0) {
		if (sync_render_dir_new(&rd, err, errlen) == -1 ||
		    git_repo_export(g, hex, app->path, rd.src,
		    SYNC_MAX_TOTAL * 4, err, errlen) == -1)
			goto out;
		git_repo_close(g);
		g = NULL;
		if (sync_render(&rd, app, m, err, errlen) == -1)
			goto out;
	} else {
		memset(&w, 0, sizeof(w));
		w.app = app;
		w.base = app->path != NULL ? app->path : "";
		w.m = m;
		w.err = err;
		w.errlen = errlen;
		memset(&gw, 0, sizeof(gw));
		gw.dir = app->path;
		gw.max_bytes = SYNC_MAX_FILE;
		gw.links = 1;
		gw.want = sync_walk_want;
		gw.cb = sync_walk_cb;
		gw.arg = &w;
		if (git_repo_walk(g, hex, &gw, err, errlen) != 0)
			goto out;
	}
	/*
	 * An empty set would apply nothing and prune everything the app
	 * has: far more often a wrong path than an intent.
	 */
	if (m->n == 0) {
		snprintf(err, errlen, "no manifests %s %s at %.12s", app->
		    render_command != NULL ? "from the renderer for" : "under",
		    app->path != NULL && app->path[0] != '\0' ? app->path : ".",
		    hex);
		goto out;
	}
	*commit_out = xstrdup(hex);
	rc = 0;
out:
	if (rc == -1)
		sync_manifests_free(m);
	git_repo_close(g);
	sync_render_dir_free(&rd);
	return rc;
}

/* ---- apply ------------------------------------------------------------- */

enum sync_health_kind {
	SYNC_HK_NONE = 0,
	SYNC_HK_DEPLOYMENT,
	SYNC_HK_STATEFULSET,
	SYNC_HK_DAEMONSET,
	SYNC_HK_JOB,
};

/* One object to apply, and what applying it told us. */
struct sync_obj {
	cJSON			*manifest;	/* borrowed from the manifests */
	const char		*origin;
	const char		*api_version;
	const char		*kind;
	const char		*name;
	char			*ns;		/* after defaulting; NULL: cluster */
	char			*desc;		/* "Deployment web/api" */
	int			 rank;
	size_t			 index;		/* file order, for a stable sort */
	struct kube_resource	 res;
	char			*uid;		/* from the apply answer */
	int			 created;	/* 201: it did not exist */
	enum sync_health_kind	 hk;
	char			*health;	/* NULL until checked */
	int			 healthy;
	char			*path;		/* workloads: GET for health */
	int			 dindex;	/* its place in detail.objects */
};

struct sync_run {
	struct kube			*kube;
	const struct sync_request	*req;
	struct sync_obj			*objs;
	size_t				 n;
	size_t				 applied;
	size_t				 pruned;
	cJSON				*pruned_list;
	struct job_result		*res;
	int				 crd_applied;
	struct sync_inv			*inv;	/* the previous inventory */
	size_t				 ninv;
	int				 inv_known; /* read, or rebuilt */
	/* Health: looked at once per run; the job waits between looks. */
	int64_t				 deadline_ms;	/* wall clock */
	int				 timeout_s;
	int				 poll_ms;	/* backoff after this look */
	int				 fixed_poll;
	int				 wait_ms;	/* when to look again */
};

static int
sync_rank(const char *api_version, const char *kind)
{
	static const struct {
		const char	*kind;
		int		 rank;
	} ranks[] = {
		{ "Namespace", 0 }, { "CustomResourceDefinition", 0 },
		{ "ServiceAccount", 1 },
		{ "ClusterRole", 2 }, { "Role", 2 },
		{ "ClusterRoleBinding", 2 }, { "RoleBinding", 2 },
		{ "ConfigMap", 3 }, { "Secret", 3 },
		{ "PersistentVolume", 3 }, { "PersistentVolumeClaim", 3 },
		{ "Service", 4 },
		{ "Deployment", 5 }, { "StatefulSet", 5 }, { "DaemonSet", 5 },
		{ "ReplicaSet", 5 }, { "Job", 5 }, { "CronJob", 5 },
		{ "Pod", 5 },
	};
	size_t	 i;

	(void)api_version;
	for (i = 0; i < nitems(ranks); i++)
		if (strcmp(kind, ranks[i].kind) == 0)
			return ranks[i].rank;
	return 6;
}

static enum sync_health_kind
sync_health_kind(const struct kube_resource *r)
{
	if (strcmp(r->group, "apps") == 0) {
		if (strcmp(r->kind, "Deployment") == 0)
			return SYNC_HK_DEPLOYMENT;
		if (strcmp(r->kind, "StatefulSet") == 0)
			return SYNC_HK_STATEFULSET;
		if (strcmp(r->kind, "DaemonSet") == 0)
			return SYNC_HK_DAEMONSET;
	}
	if (strcmp(r->group, "batch") == 0 && strcmp(r->kind, "Job") == 0)
		return SYNC_HK_JOB;
	return SYNC_HK_NONE;
}

static int
sync_obj_cmp(const void *a, const void *b)
{
	const struct sync_obj	*x = a, *y = b;

	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

static const char *
sync_str(const cJSON *o, const char *key)
{
	const cJSON	*v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) && v->valuestring[0] != '\0' ?
	    v->valuestring : NULL;
}

static cJSON *
sync_obj_child(cJSON *o, const char *key)
{
	cJSON	*v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (v == NULL || !cJSON_IsObject(v)) {
		cJSON_DeleteItemFromObjectCaseSensitive(o, key);
		v = cJSON_AddObjectToObject(o, key);
	}
	return v;
}

static void
sync_set_str(cJSON *o, const char *key, const char *val)
{
	cJSON_DeleteItemFromObjectCaseSensitive(o, key);
	cJSON_AddStringToObject(o, key, val);
}

/* Detail JSON for the result, success or not. */
static void
sync_detail(struct sync_run *s, const char *health)
{
	cJSON	*d = cJSON_CreateObject(), *arr, *o;
	size_t	 i, ncreated;

	cJSON_AddStringToObject(d, "health", health);
	cJSON_AddNumberToObject(d, "applied", (double)s->applied);
	cJSON_AddNumberToObject(d, "pruned", (double)s->pruned);
	for (i = 0, ncreated = 0; i < s->applied && i < s->n; i++)
		ncreated += s->objs[i].created;
	cJSON_AddNumberToObject(d, "created", (double)ncreated);
	arr = cJSON_AddArrayToObject(d, "objects");
	for (i = 0; i < s->applied && i < s->n; i++) {
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "apiVersion", s->objs[i].api_version);
		cJSON_AddStringToObject(o, "kind", s->objs[i].kind);
		if (s->objs[i].ns != NULL)
			cJSON_AddStringToObject(o, "namespace", s->objs[i].ns);
		cJSON_AddStringToObject(o, "name", s->objs[i].name);
		cJSON_AddStringToObject(o, "action", s->objs[i].created ?
		    "created" : "applied");
		if (s->objs[i].hk != SYNC_HK_NONE)
			cJSON_AddStringToObject(o, "health",
			    s->objs[i].healthy ? "Healthy" :
			    s->objs[i].health != NULL ? s->objs[i].health :
			    "Unknown");
		cJSON_AddItemToArray(arr, o);
	}
	if (s->pruned_list != NULL)
		cJSON_AddItemReferenceToObject(d, "prunedObjects",
		    s->pruned_list);
	free(s->res->detail);
	s->res->detail = cJSON_PrintUnformatted(d);
	cJSON_Delete(d);
}

static void
sync_set_object(struct sync_run *s, const char *desc)
{
	free(s->res->object);
	s->res->object = desc != NULL ? xstrdup(desc) : NULL;
}

/*
 * Map a failed answer to a structured failure.  Decisions (docs):
 * 401 unauthorized, retried (tokens rotate); 403 unauthorized, permanent
 * (RBAC needs a person); 400/404/405/415/422 rejected, permanent; 409
 * rejected, retried (a concurrent change or a terminating namespace);
 * 429 and 5xx unreachable, retried.
 */
static void
sync_fail_http(struct sync_run *s, const char *what, const char *desc,
    const struct kube_response *resp)
{
	char			 msg[512];
	long			 st = resp->status;
	enum job_error_kind	 kind;
	int			 permanent;

	kube_response_message(resp, msg, sizeof(msg));
	if (st == 401 || st == 403) {
		kind = JOB_ERR_UNAUTHORIZED;
		permanent = st == 403;
	} else if (st == 429 || st >= 500) {
		kind = JOB_ERR_UNREACHABLE;
		permanent = 0;
	} else {
		kind = JOB_ERR_APPLY_REJECTED;
		permanent = st != 409;
	}
	sync_set_object(s, desc);
	job_result_fail(s->res, kind, permanent, "%s%s%s: %s (HTTP %ld)",
	    what, desc != NULL ? " " : "", desc != NULL ? desc : "", msg, st);
	if (resp->retry_after_s > 0)
		s->res->retry_after_s = (int)resp->retry_after_s;
}

static void
sync_fail_transport(struct sync_run *s, enum kube_rc rc, const char *desc,
    const char *err)
{
	sync_set_object(s, desc);
	if (rc == KUBE_TLS)
		job_result_fail(s->res, JOB_ERR_UNREACHABLE, 1,
		    "TLS: %s (check certificate-authority in the kubeconfig)",
		    err);
	else
		job_result_fail(s->res, JOB_ERR_UNREACHABLE, 0, "%s", err);
}

/* Check every object and fill in what apply needs, before any request. */
static int
sync_prepare(struct sync_run *s, struct sync_manifests *m)
{
	struct sync_obj	*o;
	size_t		 i, j;

	s->objs = xcalloc(m->n, sizeof(*s->objs));
	for (i = 0; i < m->n; i++) {
		o = &s->objs[s->n++];
		o->manifest = m->objs[i];
		o->origin = m->origins[i];
		o->index = i;
		o->api_version = sync_str(o->manifest, "apiVersion");
		o->kind = sync_str(o->manifest, "kind");
		o->name = sync_str(cJSON_GetObjectItemCaseSensitive(o->manifest,
		    "metadata"), "name");
		if (o->api_version == NULL || o->kind == NULL || o->name == NULL) {
			job_result_fail(s->res, JOB_ERR_MANIFEST, 1,
			    "%s: an object without %s", o->origin,
			    o->api_version == NULL ? "apiVersion" :
			    o->kind == NULL ? "kind" : "metadata.name");
			return -1;
		}
		o->rank = sync_rank(o->api_version, o->kind);
	}
	/* Same apiVersion group, kind, namespace and name twice. */
	for (i = 0; i < s->n; i++) {
		const char	*nsi = sync_str(cJSON_GetObjectItemCaseSensitive(
		    s->objs[i].manifest, "metadata"), "namespace");

		for (j = i + 1; j < s->n; j++) {
			const char *nsj = sync_str(cJSON_GetObjectItemCaseSensitive(
			    s->objs[j].manifest, "metadata"), "namespace");

			if (strcmp(s->objs[i].kind, s->objs[j].kind) == 0 &&
			    strcmp(s->objs[i].name, s->objs[j].name) == 0 &&
			    strcmp(s->objs[i].api_version,
			    s->objs[j].api_version) == 0 &&
			    ((nsi == NULL && nsj == NULL) || (nsi != NULL &&
			    nsj != NULL && strcmp(nsi, nsj) == 0))) {
				job_result_fail(s->res, JOB_ERR_MANIFEST, 1,
				    "%s %s is defined twice (%s and %s)",
				    s->objs[i].kind, s->objs[i].name,
				    s->objs[i].origin, s->objs[j].origin);
				return -1;
			}
		}
	}
	qsort(s->objs, s->n, sizeof(*s->objs), sync_obj_cmp);
	return 0;
}

/* Discovery for one object, waiting briefly for a CRD applied just now. */
static int
sync_find_resource(struct sync_run *s, struct sync_obj *o)
{
	char		 err[512];
	enum kube_rc	 rc;
	long		 st;
	int		 tries = 0;
	struct kube_response fake;

	for (;;) {
		rc = kube_resource_find(s->kube, o->api_version, o->kind, &o->res,
		    &st, err, sizeof(err));
		if (rc == KUBE_OK)
			return 0;
		if (rc != KUBE_NO_KIND || !s->crd_applied ||
		    tries++ >= SYNC_CRD_WAIT_S)
			break;
		sleep(1);
	}
	free(o->desc);
	o->desc = kube_describe(o->kind, o->ns, o->name);
	if (rc == KUBE_NO_KIND) {
		sync_set_object(s, o->desc);
		job_result_fail(s->res, JOB_ERR_APPLY_REJECTED, 1, "%s (%s): %s",
		    o->desc, o->origin, err);
	} else if (rc == KUBE_HTTP) {
		memset(&fake, 0, sizeof(fake));
		fake.status = st;
		sync_fail_http(s, "discovery for", o->desc, &fake);
		free(s->res->error);
		s->res->error = xasprintf("discovery: %s", err);
	} else
		sync_fail_transport(s, rc, o->desc, err);
	return -1;
}

/* Server-side apply of one object; 0 or -1 with s->res filled. */
static int
sync_apply_one(struct sync_run *s, struct sync_obj *o)
{
	struct kube_response	 resp;
	cJSON			*md, *labels;
	char			*path = NULL, *full = NULL, *body = NULL;
	char			 err[512];
	const char		*ns, *uid;
	enum kube_rc		 rc;
	int			 ret = -1, refreshed = 0;

	memset(&resp, 0, sizeof(resp));
	if (sync_find_resource(s, o) == -1)
		return -1;
	md = sync_obj_child(o->manifest, "metadata");
	ns = sync_str(md, "namespace");
	if (o->res.namespaced) {
		if (ns == NULL) {
			ns = s->req->namespace != NULL ? s->req->namespace :
			    "default";
			sync_set_str(md, "namespace", ns);
		}
		o->ns = xstrdup(ns);
	} else if (ns != NULL)
		cJSON_DeleteItemFromObjectCaseSensitive(md, "namespace");
	free(o->desc);
	o->desc = kube_describe(o->kind, o->ns, o->name);
	labels = sync_obj_child(md, "labels");
	sync_set_str(labels, SYNC_LABEL_MANAGED_BY, "gitopsd");
	sync_set_str(labels, SYNC_LABEL_APP, s->req->app);
	o->hk = sync_health_kind(&o->res);
	if ((body = cJSON_PrintUnformatted(o->manifest)) == NULL) {
		job_result_fail(s->res, JOB_ERR_INTERNAL, 0, "out of memory");
		goto out;
	}
again:
	free(path);
	free(full);
	path = kube_path(&o->res, o->ns, o->name);
	full = xasprintf("%s?fieldManager=%s&force=true", path,
	    SYNC_FIELD_MANAGER);
	rc = kube_request(s->kube, "PATCH", full,
	    "application/apply-patch+yaml", body, strlen(body), &resp, err,
	    sizeof(err));
	if (rc != KUBE_OK) {
		sync_fail_transport(s, rc, o->desc, err);
		goto out;
	}
	if (resp.status == 404 && !refreshed &&
	    strcmp(kube_response_reason(&resp), "NotFound") == 0) {
		const cJSON *dk = cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(resp.json, "details"),
		    "kind");

		/* A missing namespace is the manifest's problem; any other
		 * 404 may be stale discovery (a CRD replaced): look again. */
		if (!cJSON_IsString(dk) ||
		    strcmp(dk->valuestring, "namespaces") != 0) {
			refreshed = 1;
			kube_response_clear(&resp);
			kube_discovery_invalidate(s->kube);
			kube_resource_clear(&o->res);
			if (sync_find_resource(s, o) == -1)
				goto out;
			goto again;
		}
	}
	if (resp.status != 200 && resp.status != 201) {
		sync_fail_http(s, "apply", o->desc, &resp);
		free(s->res->error);
		{
			char	 msg[512];

			kube_response_message(&resp, msg, sizeof(msg));
			s->res->error = xasprintf("%s (%s): %s (HTTP %ld)",
			    o->desc, o->origin, msg, resp.status);
		}
		goto out;
	}
	uid = sync_str(cJSON_GetObjectItemCaseSensitive(resp.json, "metadata"),
	    "uid");
	o->uid = uid != NULL ? xstrdup(uid) : NULL;
	o->created = resp.status == 201;
	if (strcmp(o->kind, "CustomResourceDefinition") == 0)
		s->crd_applied = 1;
	log_debug("sync %s: applied %s (HTTP %ld)", s->req->app, o->desc,
	    resp.status);
	ret = 0;
out:
	kube_response_clear(&resp);
	free(body);
	free(path);
	free(full);
	return ret;
}

/* ---- inventory --------------------------------------------------------- */

/*
 * What an app's syncs applied, as the store keeps it between syncs:
 * {"objects":[{"apiVersion","kind","namespace","name","uid"}]}.
 */
struct sync_inv {
	char	*api_version, *kind, *ns, *name, *uid;
	int	 keep;	/* still ours: into the next inventory */
};

static void
sync_inv_add(struct sync_run *s, const char *api_version, const char *kind,
    const char *ns, const char *name, const char *uid)
{
	struct sync_inv	*v;

	s->inv = xreallocarray(s->inv, s->ninv + 1, sizeof(*s->inv));
	v = &s->inv[s->ninv++];
	v->api_version = xstrdup(api_version);
	v->kind = xstrdup(kind);
	v->ns = ns != NULL ? xstrdup(ns) : NULL;
	v->name = xstrdup(name);
	v->uid = uid != NULL ? xstrdup(uid) : NULL;
	v->keep = 1;
}

static void
sync_inv_free(struct sync_run *s)
{
	size_t	 i;

	for (i = 0; i < s->ninv; i++) {
		free(s->inv[i].api_version);
		free(s->inv[i].kind);
		free(s->inv[i].ns);
		free(s->inv[i].name);
		free(s->inv[i].uid);
	}
	free(s->inv);
	s->inv = NULL;
	s->ninv = 0;
}

/* 0 with s->inv filled, -1 when there is none or it cannot be read. */
static int
sync_inv_parse(struct sync_run *s, const char *text)
{
	cJSON		*doc;
	const cJSON	*arr, *it;
	const char	*av, *kind, *name;

	if (text == NULL)
		return -1;
	doc = cJSON_Parse(text);
	arr = cJSON_GetObjectItemCaseSensitive(doc, "objects");
	if (!cJSON_IsArray(arr))
		goto bad;
	cJSON_ArrayForEach(it, arr) {
		av = sync_str(it, "apiVersion");
		kind = sync_str(it, "kind");
		name = sync_str(it, "name");
		if (av == NULL || kind == NULL || name == NULL)
			goto bad;
		sync_inv_add(s, av, kind, sync_str(it, "namespace"), name,
		    sync_str(it, "uid"));
	}
	cJSON_Delete(doc);
	return 0;
bad:
	log_warnx("sync %s: the stored inventory cannot be read; pruning "
	    "by listing every kind, once", s->req->app);
	cJSON_Delete(doc);
	sync_inv_free(s);
	return -1;
}

/* "apps" of "apps/v1", "" of "v1". */
static int
sync_same_group(const char *av1, const char *av2)
{
	const char	*a = strchr(av1, '/'), *b = strchr(av2, '/');
	size_t		 la = a != NULL ? (size_t)(a - av1) : 0;
	size_t		 lb = b != NULL ? (size_t)(b - av2) : 0;

	return la == lb && strncmp(av1, av2, la) == 0;
}

/* One of the objects applied in this sync (any version of its group). */
static int
sync_inv_applied(const struct sync_run *s, const struct sync_inv *v)
{
	const struct sync_obj	*o;
	size_t			 i;

	for (i = 0; i < s->applied; i++) {
		o = &s->objs[i];
		if (v->uid != NULL && o->uid != NULL &&
		    strcmp(v->uid, o->uid) == 0)
			return 1;
		if (strcmp(o->kind, v->kind) == 0 &&
		    strcmp(o->name, v->name) == 0 &&
		    sync_same_group(o->api_version, v->api_version) &&
		    ((o->ns == NULL && v->ns == NULL) || (o->ns != NULL &&
		    v->ns != NULL && strcmp(o->ns, v->ns) == 0)))
			return 1;
	}
	return 0;
}

static void
sync_inv_json_add(cJSON *arr, const char *av, const char *kind,
    const char *ns, const char *name, const char *uid)
{
	cJSON	*o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "apiVersion", av);
	cJSON_AddStringToObject(o, "kind", kind);
	if (ns != NULL)
		cJSON_AddStringToObject(o, "namespace", ns);
	cJSON_AddStringToObject(o, "name", name);
	if (uid != NULL)
		cJSON_AddStringToObject(o, "uid", uid);
	cJSON_AddItemToArray(arr, o);
}

/*
 * The next inventory: what was applied now, and what earlier syncs
 * applied that is still ours (not pruned: prune off or disabled on the
 * object, a failed sync, a failed delete).  Only when the previous one
 * was known (or rebuilt by listing): otherwise objects left over from
 * before would be forgotten.
 */
static void
sync_inv_result(struct sync_run *s)
{
	cJSON	*doc, *arr;
	size_t	 i;

	if (!s->inv_known || s->applied == 0)
		return;
	doc = cJSON_CreateObject();
	arr = cJSON_AddArrayToObject(doc, "objects");
	for (i = 0; i < s->applied; i++)
		sync_inv_json_add(arr, s->objs[i].api_version, s->objs[i].kind,
		    s->objs[i].ns, s->objs[i].name, s->objs[i].uid);
	for (i = 0; i < s->ninv; i++)
		if (s->inv[i].keep && !sync_inv_applied(s, &s->inv[i]))
			sync_inv_json_add(arr, s->inv[i].api_version,
			    s->inv[i].kind, s->inv[i].ns, s->inv[i].name,
			    s->inv[i].uid);
	free(s->res->inventory);
	s->res->inventory = cJSON_PrintUnformatted(doc);
	cJSON_Delete(doc);
}

/* ---- prune ------------------------------------------------------------- */

struct sync_victim {
	struct kube_resource	*res;	/* borrowed */
	char			*ns;
	char			*name;
	char			*uid;	/* precondition, or NULL */
	struct sync_inv		*inv;	/* its inventory entry, or NULL */
	int			 rank;
};

static int
sync_is_applied_uid(const struct sync_run *s, const char *uid)
{
	size_t	 i;

	for (i = 0; i < s->n; i++)
		if (s->objs[i].uid != NULL && strcmp(s->objs[i].uid, uid) == 0)
			return 1;
	return 0;
}

static int
sync_victim_cmp(const void *a, const void *b)
{
	const struct sync_victim	*x = a, *y = b;

	/* Reverse dependency order: workloads before their namespace. */
	return x->rank > y->rank ? -1 : x->rank < y->rank;
}

static void
sync_victims_free(struct sync_victim *v, size_t nv)
{
	size_t	 i;

	for (i = 0; i < nv; i++) {
		free(v[i].ns);
		free(v[i].name);
		free(v[i].uid);
	}
	free(v);
}

/*
 * Delete the victims, last rank first.  The uid is a precondition: an
 * object deleted and made again by someone else since it was read is
 * not ours to delete (409).
 */
static int
sync_delete_victims(struct sync_run *s, struct sync_victim *v, size_t nv)
{
	struct kube_response	 resp;
	char			 err[512], *path, *full, *desc, *body;
	enum kube_rc		 rc;
	size_t			 i;

	memset(&resp, 0, sizeof(resp));
	if (nv > 0)
		qsort(v, nv, sizeof(*v), sync_victim_cmp);
	s->pruned_list = cJSON_CreateArray();
	for (i = 0; i < nv; i++) {
		path = kube_path(v[i].res, v[i].ns, v[i].name);
		full = xasprintf("%s?propagationPolicy=Background", path);
		free(path);
		desc = kube_describe(v[i].res->kind, v[i].ns, v[i].name);
		body = v[i].uid != NULL ? xasprintf("{\"apiVersion\":\"v1\","
		    "\"kind\":\"DeleteOptions\",\"propagationPolicy\":"
		    "\"Background\",\"preconditions\":{\"uid\":\"%s\"}}",
		    v[i].uid) : NULL;
		rc = kube_request(s->kube, "DELETE", full, body != NULL ?
		    "application/json" : NULL, body, body != NULL ?
		    strlen(body) : 0, &resp, err, sizeof(err));
		free(full);
		free(body);
		if (rc != KUBE_OK) {
			sync_fail_transport(s, rc, desc, err);
			free(desc);
			return -1;
		}
		/* 404: gone already (its namespace went first). */
		if (resp.status == 409 && v[i].uid != NULL)
			log_info("sync %s: not pruning %s: it was made again "
			    "since (uid is not %s)", s->req->app, desc,
			    v[i].uid);
		else if (resp.status != 200 && resp.status != 202 &&
		    resp.status != 404) {
			sync_fail_http(s, "prune", desc, &resp);
			kube_response_clear(&resp);
			free(desc);
			return -1;
		}
		if (resp.status == 200 || resp.status == 202) {
			log_info("sync %s: pruned %s", s->req->app, desc);
			cJSON_AddItemToArray(s->pruned_list,
			    cJSON_CreateString(desc));
			s->pruned++;
		}
		if (v[i].inv != NULL)
			v[i].inv->keep = 0;
		free(desc);
		kube_response_clear(&resp);
	}
	return 0;
}

/*
 * Prune from the inventory: each object an earlier sync applied and this
 * one did not is read once; it goes only while it still carries this
 * app's labels, has the uid that was applied, no owner, and no
 * gitopsd.io/prune: disabled.  No list of any kind.
 */
static int
sync_prune_inventory(struct sync_run *s)
{
	struct kube_resource	*res = NULL;
	struct sync_victim	*v = NULL;
	struct kube_response	 resp;
	struct sync_inv		*iv;
	size_t			 nres = 0, nv = 0, i;
	const cJSON		*md, *labels;
	const char		*mb, *app, *uid, *pa;
	char			 err[512], *path, *desc = NULL;
	enum kube_rc		 rc;
	long			 st;
	int			 ret = -1;

	memset(&resp, 0, sizeof(resp));
	/* One resource per inventory entry: victims point into res. */
	res = xcalloc(s->ninv + 1, sizeof(*res));
	for (i = 0; i < s->ninv; i++) {
		iv = &s->inv[i];
		if (sync_inv_applied(s, iv))
			continue;
		free(desc);
		desc = kube_describe(iv->kind, iv->ns, iv->name);
		rc = kube_resource_find(s->kube, iv->api_version, iv->kind,
		    &res[nres], &st, err, sizeof(err));
		if (rc != KUBE_OK)
			kube_resource_clear(&res[nres]);
		if (rc == KUBE_NO_KIND) {
			/* Its kind (a CRD) is gone, and with it the object. */
			iv->keep = 0;
			continue;
		}
		if (rc == KUBE_HTTP) {
			resp.status = st;
			sync_fail_http(s, "prune: discovery for", desc, &resp);
			goto out;
		}
		if (rc != KUBE_OK) {
			sync_fail_transport(s, rc, desc, err);
			goto out;
		}
		nres++;
		if (res[nres - 1].namespaced && iv->ns == NULL) {
			/* Not something an apply wrote: the path would be
			 * a list of every namespace's objects. */
			iv->keep = 0;
			continue;
		}
		path = kube_path(&res[nres - 1], iv->ns, iv->name);
		rc = kube_request(s->kube, "GET", path, NULL, NULL, 0, &resp,
		    err, sizeof(err));
		free(path);
		if (rc != KUBE_OK) {
			sync_fail_transport(s, rc, desc, err);
			goto out;
		}
		if (resp.status == 404) {
			iv->keep = 0;
			kube_response_clear(&resp);
			continue;
		}
		if (resp.status != 200) {
			sync_fail_http(s, "prune: read", desc, &resp);
			goto out;
		}
		md = cJSON_GetObjectItemCaseSensitive(resp.json, "metadata");
		labels = cJSON_GetObjectItemCaseSensitive(md, "labels");
		mb = sync_str(labels, SYNC_LABEL_MANAGED_BY);
		app = sync_str(labels, SYNC_LABEL_APP);
		uid = sync_str(md, "uid");
		pa = sync_str(cJSON_GetObjectItemCaseSensitive(md,
		    "annotations"), SYNC_ANNOTATION_PRUNE);
		if (mb == NULL || strcmp(mb, "gitopsd") != 0 || app == NULL ||
		    strcmp(app, s->req->app) != 0) {
			/* Someone took it over by hand: theirs now. */
			log_info("sync %s: not pruning %s: it no longer has "
			    "the labels %s=%s and %s=gitopsd", s->req->app,
			    desc, SYNC_LABEL_APP, s->req->app,
			    SYNC_LABEL_MANAGED_BY);
			iv->keep = 0;
		} else if (iv->uid != NULL && uid != NULL &&
		    strcmp(iv->uid, uid) != 0) {
			log_info("sync %s: not pruning %s: it was made again "
			    "since (uid %s, applied %s)", s->req->app, desc,
			    uid, iv->uid);
			iv->keep = 0;
		} else if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(
		    md, "ownerReferences")) > 0) {
			iv->keep = 0;	/* its owner manages it now */
		} else if (pa != NULL && strcmp(pa, "disabled") == 0) {
			/* Kept, and kept in the inventory: removing the
			 * annotation later lets a sync prune it. */
			log_info("sync %s: keeping %s (prune disabled)",
			    s->req->app, desc);
		} else {
			v = xreallocarray(v, nv + 1, sizeof(*v));
			v[nv].res = &res[nres - 1];
			v[nv].ns = iv->ns != NULL && res[nres - 1].namespaced ?
			    xstrdup(iv->ns) : NULL;
			v[nv].name = xstrdup(iv->name);
			v[nv].uid = uid != NULL ? xstrdup(uid) : NULL;
			v[nv].inv = iv;
			v[nv].rank = sync_rank("", iv->kind);
			nv++;
		}
		kube_response_clear(&resp);
	}
	ret = sync_delete_victims(s, v, nv);
out:
	kube_response_clear(&resp);
	free(desc);
	sync_victims_free(v, nv);
	kube_resources_free(res, nres);
	return ret;
}

/*
 * Without an inventory (the first sync with prune, or one that cannot be
 * read): list every kind by the app's label, and rebuild it from there.
 */
static int
sync_prune_list(struct sync_run *s)
{
	struct kube_resource	*all = NULL;
	struct sync_victim	*v = NULL;
	struct kube_response	 resp;
	size_t			 nall = 0, nv = 0, i;
	const cJSON		*it, *md, *ann;
	char			 err[512], *path, *full, *sel, *av;
	const char		*uid, *name, *ns, *pa;
	enum kube_rc		 rc;
	long			 st;
	int			 ret = -1;

	memset(&resp, 0, sizeof(resp));
	rc = kube_resources_all(s->kube, &all, &nall, &st, err, sizeof(err));
	if (rc != KUBE_OK) {
		if (rc == KUBE_HTTP) {
			resp.status = st;
			sync_fail_http(s, "prune: discovery", NULL, &resp);
		} else
			sync_fail_transport(s, rc, NULL, err);
		return -1;
	}
	sel = xasprintf("labelSelector=%s%%3D%s,%s%%3Dgitopsd", SYNC_LABEL_APP,
	    s->req->app, SYNC_LABEL_MANAGED_BY);
	for (i = 0; i < nall; i++) {
		/*
		 * The endpoints controller copies a Service's labels onto its
		 * Endpoints without an ownerReference; pruning them would only
		 * make the controller put them back (and drop traffic).
		 */
		if (all[i].group[0] == '\0' &&
		    strcmp(all[i].kind, "Endpoints") == 0)
			continue;
		path = kube_path(&all[i], NULL, NULL);
		full = xasprintf("%s?%s", path, sel);
		rc = kube_request(s->kube, "GET", full, NULL, NULL, 0, &resp,
		    err, sizeof(err));
		free(path);
		free(full);
		if (rc != KUBE_OK) {
			sync_fail_transport(s, rc, NULL, err);
			goto out;
		}
		/* Some kinds cannot be listed cluster-wide by us; skip 403/404
		 * /405 there rather than fail a sync that applied fine. */
		if (resp.status == 403 || resp.status == 404 ||
		    resp.status == 405) {
			kube_response_clear(&resp);
			continue;
		}
		if (resp.status != 200) {
			sync_fail_http(s, "prune: list", all[i].plural, &resp);
			goto out;
		}
		cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(
		    resp.json, "items")) {
			md = cJSON_GetObjectItemCaseSensitive(it, "metadata");
			uid = sync_str(md, "uid");
			name = sync_str(md, "name");
			ns = sync_str(md, "namespace");
			ann = cJSON_GetObjectItemCaseSensitive(md, "annotations");
			pa = sync_str(ann, SYNC_ANNOTATION_PRUNE);
			if (name == NULL || (uid != NULL &&
			    sync_is_applied_uid(s, uid)))
				continue;
			if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(
			    md, "ownerReferences")) > 0)
				continue;
			if (pa != NULL && strcmp(pa, "disabled") == 0) {
				log_info("sync %s: keeping %s %s (prune "
				    "disabled)", s->req->app, all[i].kind, name);
				av = all[i].group[0] != '\0' ?
				    xasprintf("%s/%s", all[i].group,
				    all[i].version) : xstrdup(all[i].version);
				sync_inv_add(s, av, all[i].kind,
				    all[i].namespaced ? ns : NULL, name, uid);
				free(av);
				continue;
			}
			v = xreallocarray(v, nv + 1, sizeof(*v));
			v[nv].res = &all[i];
			v[nv].ns = ns != NULL && all[i].namespaced ?
			    xstrdup(ns) : NULL;
			v[nv].name = xstrdup(name);
			v[nv].uid = uid != NULL ? xstrdup(uid) : NULL;
			v[nv].inv = NULL;
			v[nv].rank = sync_rank("", all[i].kind);
			nv++;
		}
		kube_response_clear(&resp);
	}
	if (sync_delete_victims(s, v, nv) == -1)
		goto out;
	s->inv_known = 1;
	ret = 0;
out:
	kube_response_clear(&resp);
	sync_victims_free(v, nv);
	free(sel);
	kube_resources_free(all, nall);
	return ret;
}

/* ---- health ------------------------------------------------------------ */

enum sync_health {
	SYNC_HEALTHY = 0,
	SYNC_PROGRESSING,
	SYNC_DEGRADED,		/* failed: waiting will not help */
};

static long
sync_num(const cJSON *o, const char *key, long dflt)
{
	const cJSON	*v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsNumber(v) ? (long)v->valuedouble : dflt;
}

static const cJSON *
sync_condition(const cJSON *status, const char *type)
{
	const cJSON	*c;
	const char	*t;

	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(status,
	    "conditions")) {
		if ((t = sync_str(c, "type")) != NULL && strcmp(t, type) == 0)
			return c;
	}
	return NULL;
}

/* Judge one workload from its live object; why gets the reason. */
static enum sync_health
sync_judge(enum sync_health_kind hk, const cJSON *obj, char *why,
    size_t whylen)
{
	const cJSON	*md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	const cJSON	*spec = cJSON_GetObjectItemCaseSensitive(obj, "spec");
	const cJSON	*st = cJSON_GetObjectItemCaseSensitive(obj, "status");
	const cJSON	*c;
	const char	*cs, *reason, *msg;
	long		 gen = sync_num(md, "generation", 0);
	long		 og = sync_num(st, "observedGeneration", -1);
	long		 want, upd, ready, avail;

	if (hk != SYNC_HK_JOB && og < gen) {
		snprintf(why, whylen, "waiting for the controller to observe "
		    "generation %ld", gen);
		return SYNC_PROGRESSING;
	}
	switch (hk) {
	case SYNC_HK_DEPLOYMENT:
		c = sync_condition(st, "Progressing");
		cs = sync_str(c, "status");
		reason = sync_str(c, "reason");
		if (cs != NULL && strcmp(cs, "False") == 0 && reason != NULL &&
		    strcmp(reason, "ProgressDeadlineExceeded") == 0) {
			msg = sync_str(c, "message");
			snprintf(why, whylen, "ProgressDeadlineExceeded: %s",
			    msg != NULL ? msg : "rollout stalled");
			return SYNC_DEGRADED;
		}
		want = sync_num(spec, "replicas", 1);
		upd = sync_num(st, "updatedReplicas", 0);
		ready = sync_num(st, "readyReplicas", 0);
		avail = sync_num(st, "availableReplicas", 0);
		if (upd < want || ready < want || avail < want ||
		    sync_num(st, "replicas", 0) > upd) {
			snprintf(why, whylen, "%ld/%ld updated, %ld ready, %ld "
			    "available", upd, want, ready, avail);
			return SYNC_PROGRESSING;
		}
		return SYNC_HEALTHY;
	case SYNC_HK_STATEFULSET: {
		const cJSON	*ru = cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(spec, "updateStrategy"),
		    "rollingUpdate");
		long		 partition = sync_num(ru, "partition", 0);
		const char	*cur, *updrev;

		want = sync_num(spec, "replicas", 1);
		ready = sync_num(st, "readyReplicas", 0);
		upd = sync_num(st, "updatedReplicas", 0);
		cur = sync_str(st, "currentRevision");
		updrev = sync_str(st, "updateRevision");
		if (ready < want || upd < want - partition) {
			snprintf(why, whylen, "%ld/%ld ready, %ld updated", ready,
			    want, upd);
			return SYNC_PROGRESSING;
		}
		if (partition == 0 && cur != NULL && updrev != NULL &&
		    strcmp(cur, updrev) != 0) {
			snprintf(why, whylen, "revision %s not yet current",
			    updrev);
			return SYNC_PROGRESSING;
		}
		return SYNC_HEALTHY;
	}
	case SYNC_HK_DAEMONSET:
		want = sync_num(st, "desiredNumberScheduled", 0);
		upd = sync_num(st, "updatedNumberScheduled", 0);
		avail = sync_num(st, "numberAvailable", 0);
		ready = sync_num(st, "numberReady", 0);
		if (upd < want || avail < want || ready < want) {
			snprintf(why, whylen, "%ld/%ld updated, %ld ready, %ld "
			    "available", upd, want, ready, avail);
			return SYNC_PROGRESSING;
		}
		return SYNC_HEALTHY;
	case SYNC_HK_JOB:
		c = sync_condition(st, "Failed");
		if ((cs = sync_str(c, "status")) != NULL &&
		    strcmp(cs, "True") == 0) {
			reason = sync_str(c, "reason");
			msg = sync_str(c, "message");
			snprintf(why, whylen, "failed: %s%s%s",
			    reason != NULL ? reason : "Failed",
			    msg != NULL ? ": " : "", msg != NULL ? msg : "");
			return SYNC_DEGRADED;
		}
		c = sync_condition(st, "Complete");
		if ((cs = sync_str(c, "status")) != NULL &&
		    strcmp(cs, "True") == 0)
			return SYNC_HEALTHY;
		snprintf(why, whylen, "not complete (%ld active, %ld "
		    "succeeded)", sync_num(st, "active", 0),
		    sync_num(st, "succeeded", 0));
		return SYNC_PROGRESSING;
	default:
		return SYNC_HEALTHY;
	}
}

/* Name every unhealthy workload and why, in one message. */
static void
sync_fail_health(struct sync_run *s, enum job_error_kind kind, int permanent,
    const char *lead, int degraded_only)
{
	struct buf	 b;
	size_t		 i, n = 0;
	const char	*first = NULL;
	char		*msg;

	buf_init(&b, 16384);
	for (i = 0; i < s->n; i++) {
		struct sync_obj	*o = &s->objs[i];

		if (o->hk == SYNC_HK_NONE || o->healthy)
			continue;
		if (degraded_only && (o->health == NULL ||
		    strncmp(o->health, "Degraded", 8) != 0))
			continue;
		if (first == NULL)
			first = o->desc;
		buf_printf(&b, "%s%s: %s", n++ > 0 ? "; " : "", o->desc,
		    o->health != NULL ? o->health : "not checked");
	}
	msg = buf_steal(&b, NULL);
	sync_set_object(s, first);
	job_result_fail(s->res, kind, permanent, "%s: %s", lead,
	    msg != NULL ? msg : "");
	free(msg);
}

/*
 * One look at every workload not yet healthy.  -1 on a failure (in s->res:
 * unreachable, refused, or a workload degraded); else how many are still
 * progressing.
 */
static long
sync_look(struct sync_run *s)
{
	struct kube_response	 resp;
	char			 err[512], why[400];
	size_t			 i;
	long			 pending = 0, degraded = 0;
	enum sync_health	 h;
	enum kube_rc		 rc;

	for (i = 0; i < s->n; i++) {
		struct sync_obj	*o = &s->objs[i];

		if (o->hk == SYNC_HK_NONE || o->healthy)
			continue;
		rc = kube_request(s->kube, "GET", o->path, NULL, NULL, 0,
		    &resp, err, sizeof(err));
		if (rc != KUBE_OK) {
			sync_fail_transport(s, rc, o->desc, err);
			return -1;
		}
		free(o->health);
		o->health = NULL;
		if (resp.status == 404) {
			o->health = xstrdup("Missing: deleted after apply");
			degraded++;
		} else if (resp.status != 200) {
			sync_fail_http(s, "health check of", o->desc, &resp);
			kube_response_clear(&resp);
			return -1;
		} else {
			h = sync_judge(o->hk, resp.json, why, sizeof(why));
			if (h == SYNC_HEALTHY)
				o->healthy = 1;
			else if (h == SYNC_DEGRADED) {
				o->health = xasprintf("Degraded: %s", why);
				degraded++;
			} else {
				o->health = xasprintf("Progressing: %s", why);
				pending++;
			}
		}
		kube_response_clear(&resp);
	}
	if (degraded > 0) {
		sync_fail_health(s, JOB_ERR_UNHEALTHY, 1, "unhealthy", 1);
		return -1;
	}
	return pending;
}

enum sync_step {
	SYNC_STEP_HEALTHY,
	SYNC_STEP_WAIT,		/* look again after s->wait_ms */
	SYNC_STEP_FAILED,
};

/*
 * Look at health once and decide: healthy, failed (degraded, or still
 * progressing at the deadline: the timeout failure), or look again later.
 * No sleeping here: the job waits in the queue, not on this thread.
 */
static enum sync_step
sync_health_step(struct sync_run *s)
{
	long	 pending = sync_look(s);
	int64_t	 left;
	char	 lead[64];

	if (pending < 0)
		return SYNC_STEP_FAILED;
	if (pending == 0)
		return SYNC_STEP_HEALTHY;
	left = s->deadline_ms - util_now_ms();
	if (left <= 0) {
		snprintf(lead, sizeof(lead), "not healthy after %d s",
		    s->timeout_s);
		sync_fail_health(s, JOB_ERR_TIMEOUT, 0, lead, 0);
		return SYNC_STEP_FAILED;
	}
	/* The last look is at the deadline, not a backoff past it. */
	s->wait_ms = s->poll_ms < left ? s->poll_ms : (int)left;
	return SYNC_STEP_WAIT;
}

static const char *const sync_hk_names[] = {
	[SYNC_HK_DEPLOYMENT] = "Deployment",
	[SYNC_HK_STATEFULSET] = "StatefulSet",
	[SYNC_HK_DAEMONSET] = "DaemonSet",
	[SYNC_HK_JOB] = "Job",
};

static enum sync_health_kind
sync_hk_parse(const char *name)
{
	size_t	 i;

	for (i = 1; name != NULL && i < nitems(sync_hk_names); i++)
		if (strcmp(name, sync_hk_names[i]) == 0)
			return (enum sync_health_kind)i;
	return SYNC_HK_NONE;
}

/*
 * What the next look needs, kept with the job while it waits (the queue
 * stores it in the job's result as "wait"), so that a restart loses
 * nothing: the deadline (wall clock), the backoff, the revision and the
 * detail of the apply, and each workload still to check.  detail is
 * consumed.
 */
static char *
sync_wait_json(const struct sync_run *s, const char *revision, cJSON *detail)
{
	cJSON	*w = cJSON_CreateObject(), *arr, *o;
	char	*out;
	size_t	 i;

	cJSON_AddNumberToObject(w, "deadline_ms", (double)s->deadline_ms);
	cJSON_AddNumberToObject(w, "timeout_s", s->timeout_s);
	cJSON_AddNumberToObject(w, "poll_ms", s->wait_ms);
	cJSON_AddBoolToObject(w, "fixed_poll", s->fixed_poll);
	if (revision != NULL)
		cJSON_AddStringToObject(w, "revision", revision);
	if (detail != NULL)
		cJSON_AddItemToObject(w, "detail", detail);
	arr = cJSON_AddArrayToObject(w, "checks");
	for (i = 0; i < s->n; i++) {
		const struct sync_obj	*so = &s->objs[i];

		if (so->hk == SYNC_HK_NONE || so->healthy)
			continue;
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "apiVersion", so->api_version);
		cJSON_AddStringToObject(o, "kind", so->kind);
		if (so->ns != NULL)
			cJSON_AddStringToObject(o, "namespace", so->ns);
		cJSON_AddStringToObject(o, "name", so->name);
		cJSON_AddStringToObject(o, "path", so->path);
		cJSON_AddStringToObject(o, "health_kind",
		    sync_hk_names[so->hk]);
		cJSON_AddNumberToObject(o, "index", (double)so->dindex);
		cJSON_AddItemToArray(arr, o);
	}
	out = cJSON_PrintUnformatted(w);
	cJSON_Delete(w);
	return out;
}

/* The result's detail after a look: each workload's and the app's health. */
static void
sync_detail_update(struct sync_run *s, cJSON *detail, const char *health)
{
	cJSON	*objs = cJSON_GetObjectItemCaseSensitive(detail, "objects");
	cJSON	*it;
	size_t	 i;

	for (i = 0; i < s->n; i++) {
		const struct sync_obj	*o = &s->objs[i];

		if ((it = cJSON_GetArrayItem(objs, o->dindex)) == NULL)
			continue;
		sync_set_str(it, "health", o->healthy ? "Healthy" :
		    o->health != NULL ? o->health : "Unknown");
	}
	sync_set_str(detail, "health", health);
	free(s->res->detail);
	s->res->detail = cJSON_PrintUnformatted(detail);
}

/* The health an unfinished sync shows, from how it failed. */
static const char *
sync_failed_health(const struct job_result *res)
{
	return res->err_kind == JOB_ERR_TIMEOUT ? "Progressing" : "Degraded";
}

/* Label values: at most 63 of [A-Za-z0-9._-], alphanumeric at both ends. */
static int
sync_valid_label_value(const char *v)
{
	size_t	 n = strlen(v), i;

	if (n == 0 || n > 63)
		return 0;
	for (i = 0; i < n; i++) {
		char	 c = v[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
			return 0;
	}
	return v[0] != '-' && v[0] != '_' && v[0] != '.' &&
	    v[n - 1] != '-' && v[n - 1] != '_' && v[n - 1] != '.';
}

static void
sync_run_clear(struct sync_run *s)
{
	size_t	 i;

	for (i = 0; i < s->n; i++) {
		kube_resource_clear(&s->objs[i].res);
		free(s->objs[i].ns);
		free(s->objs[i].desc);
		free(s->objs[i].uid);
		free(s->objs[i].health);
		free(s->objs[i].path);
	}
	free(s->objs);
	s->objs = NULL;
	s->n = 0;
	cJSON_Delete(s->pruned_list);
	s->pruned_list = NULL;
}

void
sync_apply(struct kube *k, const struct sync_request *req,
    struct sync_manifests *m, struct job_result *res)
{
	struct sync_run	 s;
	size_t		 i;
	const char	*health = "Unknown";
	int		 waiting = 0;

	memset(&s, 0, sizeof(s));
	s.kube = k;
	s.req = req;
	s.res = res;
	res->ok = 0;
	if (!sync_valid_label_value(req->app)) {
		job_result_fail(res, JOB_ERR_CONFIG, 1, "app name \"%.80s\" is "
		    "not a valid label value (63 characters of [A-Za-z0-9._-])",
		    req->app);
		goto out;
	}
	if (sync_prepare(&s, m) == -1)
		goto out;
	s.inv_known = sync_inv_parse(&s, req->inventory) == 0;
	for (i = 0; i < s.n; i++) {
		if (sync_apply_one(&s, &s.objs[i]) == -1) {
			health = "Degraded";
			goto out;
		}
		s.applied++;
	}
	/* Only after every object applied: a half-applied set never prunes. */
	if (req->prune && (s.inv_known ? sync_prune_inventory(&s) :
	    sync_prune_list(&s)) == -1)
		goto out;
	if (req->timeout_s > 0) {
		s.timeout_s = req->timeout_s;
		s.deadline_ms = util_now_ms() + (int64_t)req->timeout_s * 1000;
		s.fixed_poll = req->poll_ms > 0;
		s.poll_ms = s.fixed_poll ? req->poll_ms : SYNC_POLL_FIRST_MS;
		for (i = 0; i < s.n; i++) {
			s.objs[i].dindex = (int)i;
			if (s.objs[i].hk != SYNC_HK_NONE)
				s.objs[i].path = kube_path(&s.objs[i].res,
				    s.objs[i].ns, s.objs[i].name);
		}
		switch (sync_health_step(&s)) {
		case SYNC_STEP_FAILED:
			health = sync_failed_health(res);
			goto out;
		case SYNC_STEP_WAIT:
			health = "Progressing";
			waiting = 1;
			goto out;
		case SYNC_STEP_HEALTHY:
			break;
		}
	}
	health = "Healthy";
	res->ok = 1;
	res->err_kind = JOB_ERR_NONE;
	res->permanent = 0;
out:
	sync_detail(&s, health);
	/* A sync that waits hands its inventory back too: it applied. */
	sync_inv_result(&s);
	sync_inv_free(&s);
	if (waiting) {
		free(res->wait);
		res->wait = sync_wait_json(&s, req->revision,
		    cJSON_Parse(res->detail));
		res->wait_ms = s.wait_ms;
	}
	sync_run_clear(&s);
}

/* A client for cl, rate-limited as configured; NULL with res failed. */
static struct kube *
sync_kube_new(const struct config_cluster *cl, const struct kubeconfig *kc,
    struct job_result *res)
{
	struct kube	*k;
	char		 err[1024];

	if ((k = kube_new(kc, cl->name, err, sizeof(err))) == NULL) {
		job_result_fail(res, JOB_ERR_INTERNAL, 0, "%s", err);
		return NULL;
	}
	kube_set_rate(k, cl->qps, cl->burst);
	return k;
}

void
sync_app_run(const struct config_cluster *cl, const struct config_app *app,
    const char *repo_path, const char *revision, const char *branch,
    const char *inventory, struct job_result *res)
{
	struct sync_manifests	 m;
	struct sync_request	 req;
	struct kubeconfig	*kc = NULL;
	struct kube		*k = NULL;
	char			 err[1024], *commit = NULL;
	int			 kind;

	memset(&m, 0, sizeof(m));
	if ((kc = kubeconfig_load(cl, err, sizeof(err))) == NULL) {
		job_result_fail(res, JOB_ERR_CONFIG, 1, "cluster %s: %s",
		    cl->name, err);
		goto out;
	}
	if (sync_manifests_read(repo_path, revision, branch, app, &m, &commit,
	    &kind, err, sizeof(err)) == -1) {
		/* A bad manifest needs a new commit; a missing one a fetch. */
		job_result_fail(res, (enum job_error_kind)kind,
		    kind == JOB_ERR_MANIFEST, "%s", err);
		goto out;
	}
	if ((k = sync_kube_new(cl, kc, res)) == NULL)
		goto out;
	memset(&req, 0, sizeof(req));
	req.app = app->name;
	req.revision = commit;
	req.namespace = app->namespace != NULL ? app->namespace : kc->namespace;
	req.prune = app->sync_prune;
	req.inventory = inventory;
	req.timeout_s = app->sync_timeout_s;
	log_info("sync %s: applying %zu objects at %.12s to %s", app->name, m.n,
	    commit, cl->name);
	sync_apply(k, &req, &m, res);
	if (res->ok || res->wait != NULL) {
		free(res->revision);
		res->revision = commit;
		commit = NULL;
	}
out:
	sync_manifests_free(&m);
	kube_free(k);
	kubeconfig_free(kc);
	free(commit);
}

int
sync_drift_due(const struct config_app *app, int64_t last_ms, int64_t now_ms,
    int64_t *next_ms)
{
	int64_t	 next;

	if (app->sync_interval_s <= 0) {
		if (next_ms != NULL)
			*next_ms = INT64_MAX;
		return 0;
	}
	next = last_ms + (int64_t)app->sync_interval_s * 1000;
	if (next_ms != NULL)
		*next_ms = last_ms == 0 ? now_ms : next;
	return last_ms == 0 || now_ms >= next;
}

/* The workloads a waiting sync still has to check, from its wait state. */
static int
sync_wait_load(struct sync_run *s, cJSON *w)
{
	const cJSON	*c;
	struct sync_obj	*o;
	const cJSON	*checks = cJSON_GetObjectItemCaseSensitive(w, "checks");
	const cJSON	*idx;
	int		 n = cJSON_GetArraySize(checks);

	s->deadline_ms = (int64_t)sync_num(w, "deadline_ms", 0);
	s->timeout_s = (int)sync_num(w, "timeout_s", 0);
	s->poll_ms = (int)sync_num(w, "poll_ms", SYNC_POLL_FIRST_MS);
	s->fixed_poll = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(w,
	    "fixed_poll"));
	if (!s->fixed_poll)
		s->poll_ms = s->poll_ms >= SYNC_POLL_MAX_MS / 2 ?
		    SYNC_POLL_MAX_MS : s->poll_ms * 2;
	if (s->poll_ms < 1)
		s->poll_ms = SYNC_POLL_FIRST_MS;
	if (!cJSON_IsArray(checks) || s->deadline_ms <= 0)
		return -1;
	s->objs = xcalloc((size_t)n + 1, sizeof(*s->objs));
	cJSON_ArrayForEach(c, checks) {
		o = &s->objs[s->n++];
		o->api_version = sync_str(c, "apiVersion");
		o->kind = sync_str(c, "kind");
		o->name = sync_str(c, "name");
		o->hk = sync_hk_parse(sync_str(c, "health_kind"));
		idx = cJSON_GetObjectItemCaseSensitive(c, "index");
		o->dindex = cJSON_IsNumber(idx) ? idx->valueint : -1;
		if (o->kind == NULL || o->name == NULL ||
		    sync_str(c, "path") == NULL || o->hk == SYNC_HK_NONE)
			return -1;
		o->path = xstrdup(sync_str(c, "path"));
		if (sync_str(c, "namespace") != NULL)
			o->ns = xstrdup(sync_str(c, "namespace"));
		o->desc = kube_describe(o->kind, o->ns, o->name);
	}
	return 0;
}

void
sync_health_recheck(const struct config_cluster *cl, const char *wait,
    struct job_result *res)
{
	struct sync_run		 s;
	struct kubeconfig	*kc = NULL;
	cJSON			*w, *detail;
	const char		*revision;
	char			 err[1024];
	enum sync_step		 step;

	memset(&s, 0, sizeof(s));
	s.res = res;
	res->ok = 0;
	if ((w = cJSON_Parse(wait != NULL ? wait : "")) == NULL ||
	    sync_wait_load(&s, w) == -1) {
		/* Retried as a whole sync: it applies and looks afresh. */
		job_result_fail(res, JOB_ERR_INTERNAL, 0, "the state of the "
		    "health wait does not parse");
		goto out;
	}
	if ((kc = kubeconfig_load(cl, err, sizeof(err))) == NULL) {
		job_result_fail(res, JOB_ERR_CONFIG, 1, "cluster %s: %s",
		    cl->name, err);
		goto out;
	}
	if ((s.kube = sync_kube_new(cl, kc, res)) == NULL)
		goto out;
	revision = sync_str(w, "revision");
	detail = cJSON_GetObjectItemCaseSensitive(w, "detail");
	if (!cJSON_IsObject(detail))
		detail = cJSON_AddObjectToObject(w, "detail");
	step = sync_health_step(&s);
	if (step == SYNC_STEP_HEALTHY) {
		res->ok = 1;
		res->err_kind = JOB_ERR_NONE;
		res->permanent = 0;
	}
	sync_detail_update(&s, detail, step == SYNC_STEP_HEALTHY ? "Healthy" :
	    step == SYNC_STEP_WAIT ? "Progressing" : sync_failed_health(res));
	/* The same result as a sync that waited on its thread: a revision
	 * once it is healthy (and while it waits), not when it failed. */
	if (step != SYNC_STEP_FAILED && revision != NULL) {
		free(res->revision);
		res->revision = xstrdup(revision);
	}
	if (step == SYNC_STEP_WAIT) {
		free(res->wait);
		res->wait = sync_wait_json(&s, revision,
		    cJSON_DetachItemViaPointer(w, detail));
		res->wait_ms = s.wait_ms;
	}
out:
	sync_run_clear(&s);
	kube_free(s.kube);
	kubeconfig_free(kc);
	cJSON_Delete(w);
}
