/*
 * router.c: which apps a push event concerns (router.h).
 *
 * An app matches a push when its repo's URL names the pushed repository
 * (router_url_same against the event's clone and ssh URLs; a Bitbucket
 * Data Center payload without links by project key and slug) and the
 * pushed ref is the repo's branch.  A tag push matches only an app whose repo
 * "branch" is literally that tag (a repo that tracks a release tag); other
 * tag pushes sync nothing, since apps follow branches.  When the payload
 * listed every changed path and none is under the app's path, the app is
 * skipped.  Each remaining app that has a cluster gets one sync job at
 * the pushed commit; an app without one is kept in Git only.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "handler.h"
#include "job.h"
#include "router.h"
#include "util.h"

/* Default ports dropped per scheme, so https://h:443/x equals https://h/x. */
static const struct {
	const char	*scheme;
	const char	*port;
} router_default_ports[] = {
	{ "https", "443" }, { "http", "80" }, { "ssh", "22" },
	{ "git+ssh", "22" }, { "ssh+git", "22" }, { "git", "9418" },
};

char *
router_url_normalize(const char *url)
{
	const char	*p, *sep, *host, *hostend, *path, *at, *colon;
	char		 scheme[16];
	char		*out, *q;
	size_t		 n, i, hlen, plen, portlen = 0;
	const char	*port = NULL;

	if (url == NULL)
		return NULL;
	while (isspace((unsigned char)*url))
		url++;
	scheme[0] = '\0';
	if ((sep = strstr(url, "://")) != NULL &&
	    (size_t)(sep - url) < sizeof(scheme) &&
	    strcspn(url, "/@:") == (size_t)(sep - url)) {
		n = (size_t)(sep - url);
		for (i = 0; i < n; i++)
			scheme[i] = (char)tolower((unsigned char)url[i]);
		scheme[n] = '\0';
		p = sep + 3;
		if (strcmp(scheme, "file") == 0) {
			/* file:///srv/git/x.git is the local path /srv/git/x. */
			host = hostend = p;
			path = p;
			goto haspath;
		}
		hostend = p + strcspn(p, "/?#");
		path = hostend;
		/* userinfo ends at the last '@' before the path. */
		host = p;
		for (at = p; at < hostend; at++)
			if (*at == '@')
				host = at + 1;
		/* host[:port]; a bracketed IPv6 literal keeps its colons. */
		if (*host == '[') {
			const char *rb = memchr(host, ']', (size_t)(hostend - host));
			colon = rb != NULL && rb + 1 < hostend && rb[1] == ':' ?
			    rb + 1 : NULL;
		} else
			colon = memchr(host, ':', (size_t)(hostend - host));
		if (colon != NULL) {
			port = colon + 1;
			portlen = (size_t)(hostend - port);
			for (i = 0; i < nitems(router_default_ports); i++) {
				if (strcmp(scheme,
				    router_default_ports[i].scheme) == 0 &&
				    strlen(router_default_ports[i].port) == portlen &&
				    memcmp(port, router_default_ports[i].port,
				    portlen) == 0) {
					port = NULL;
					break;
				}
			}
			if (portlen == 0)
				port = NULL;
			hostend = colon;
		}
	} else if (url[0] != '/' && (colon = strchr(url, ':')) != NULL &&
	    memchr(url, '/', (size_t)(colon - url)) == NULL) {
		/* scp-like: [user@]host:path */
		host = url;
		for (at = url; at < colon; at++)
			if (*at == '@')
				host = at + 1;
		hostend = colon;
		path = colon + 1;
	} else {
		/* A local path. */
		host = hostend = url;
		path = url;
	}
haspath:
	hlen = (size_t)(hostend - host);
	plen = strcspn(path, "?#");
	out = xmalloc(hlen + 1 + portlen + 1 + plen + 2);
	q = out;
	for (i = 0; i < hlen; i++)
		*q++ = (char)tolower((unsigned char)host[i]);
	if (port != NULL) {
		*q++ = ':';
		memcpy(q, port, portlen);
		q += portlen;
	}
	if (hlen > 0 && (plen == 0 || path[0] != '/'))
		*q++ = '/';
	/* Collapse repeated slashes, so "host//a" equals "host/a". */
	for (i = 0; i < plen; i++) {
		if (path[i] == '/' && q > out && q[-1] == '/')
			continue;
		*q++ = path[i];
	}
	*q = '\0';
	/* Trailing "/" and ".git" in any order: "x.git/", "x/". */
	for (;;) {
		n = strlen(out);
		if (n > 1 && out[n - 1] == '/')
			out[n - 1] = '\0';
		else if (n > 4 && strcmp(out + n - 4, ".git") == 0)
			out[n - 4] = '\0';
		else
			break;
	}
	return out;
}

/*
 * Hosts whose repository paths ignore case whatever the source type: a
 * generic-hmac sender naming github.com/Acme/Web means acme/web.
 */
static const char *const router_nocase_hosts[] = {
	"github.com", "gitlab.com", "bitbucket.org", "codeberg.org",
};

/* Length of the host[:port] of a normalized URL; 0 for a local path. */
static size_t
router_host_len(const char *n)
{
	return n[0] == '/' ? 0 : strcspn(n, "/");
}

static int
router_host_public(const char *n, size_t hlen)
{
	size_t	 i;

	for (i = 0; i < nitems(router_nocase_hosts); i++)
		if (strlen(router_nocase_hosts[i]) == hlen &&
		    memcmp(n, router_nocase_hosts[i], hlen) == 0)
			return 1;
	return 0;
}

int
router_url_same(const char *a, const char *b, int nocase)
{
	char	*na, *nb;
	size_t	 ha;
	int	 eq = 0;

	if (a == NULL || b == NULL)
		return 0;
	na = router_url_normalize(a);
	nb = router_url_normalize(b);
	if (na == NULL || nb == NULL || na[0] == '\0')
		goto out;
	if (strcmp(na, nb) == 0) {
		eq = 1;
		goto out;
	}
	/* Hosts always compare exactly (lowercased); local paths too. */
	ha = router_host_len(na);
	if (ha == 0 || ha != router_host_len(nb) || memcmp(na, nb, ha) != 0)
		goto out;
	if (nocase || router_host_public(na, ha))
		eq = strcasecmp(na + ha, nb + ha) == 0;
out:
	free(na);
	free(nb);
	return eq;
}

int
router_url_equal(const char *a, const char *b)
{
	return router_url_same(a, b, 0);
}

/* 1 if path component [s, s+n) equals want, ignoring case. */
static int
router_comp_is(const char *s, size_t n, const char *want)
{
	return strlen(want) == n && strncasecmp(s, want, n) == 0;
}

int
router_bbdc_match(const char *url, const char *key, const char *slug)
{
	const char	*comp[5], *p, *raw;
	size_t		 len[5], k = 0, hlen;
	char		*n;
	int		 ssh, ok = 0;

	if (url == NULL || key == NULL || slug == NULL)
		return 0;
	for (raw = url; isspace((unsigned char)*raw); raw++)
		;
	/* ssh://, or scp-like host:path (a ':' before any '/', no "://"). */
	ssh = strncasecmp(raw, "ssh://", 6) == 0 ||
	    strncasecmp(raw, "git+ssh://", 10) == 0 ||
	    strncasecmp(raw, "ssh+git://", 10) == 0 ||
	    (strstr(raw, "://") == NULL && raw[0] != '/' &&
	    strcspn(raw, ":") < strcspn(raw, "/"));
	if ((n = router_url_normalize(url)) == NULL)
		return 0;
	hlen = router_host_len(n);
	/* Bitbucket Cloud and the other public hosts are not Data Center. */
	if (hlen == 0 || router_host_public(n, hlen))
		goto out;
	/* The last five path components, oldest first. */
	for (p = n + hlen; *p != '\0'; ) {
		while (*p == '/')
			p++;
		if (*p == '\0')
			break;
		if (k == nitems(comp)) {
			memmove(comp, comp + 1, sizeof(comp[0]) * (k - 1));
			memmove(len, len + 1, sizeof(len[0]) * (k - 1));
			k--;
		}
		comp[k] = p;
		len[k] = strcspn(p, "/");
		p += len[k];
		k++;
	}
#define ROUTER_COMP_IS(i, w)	router_comp_is(comp[i], len[i], (w))
	if (k < 2 || !ROUTER_COMP_IS(k - 1, slug))
		goto out;
	if (ROUTER_COMP_IS(k - 2, key))
		/* ssh://git@host:7999/key/slug.git, or .../scm/KEY/slug.git
		 * under any context path. */
		ok = (ssh && k == 2) || (k >= 3 && ROUTER_COMP_IS(k - 3, "scm"));
	else if (k >= 4 && ROUTER_COMP_IS(k - 2, "repos") &&
	    ROUTER_COMP_IS(k - 3, key) && ROUTER_COMP_IS(k - 4, "projects"))
		ok = 1;		/* .../projects/KEY/repos/slug, the web UI */
#undef ROUTER_COMP_IS
out:
	free(n);
	return ok;
}

/* 1 if path p is dir or under it ("." and "" mean the whole repo). */
static int
router_path_under(const char *p, const char *dir)
{
	size_t	 n;

	while (dir[0] == '.' && dir[1] == '/')
		dir += 2;
	while (*dir == '/')
		dir++;
	if (*dir == '\0' || strcmp(dir, ".") == 0)
		return 1;
	while (p[0] == '.' && p[1] == '/')
		p += 2;
	while (*p == '/')
		p++;
	n = strlen(dir);
	while (n > 0 && dir[n - 1] == '/')
		n--;
	return strncmp(p, dir, n) == 0 && (p[n] == '\0' || p[n] == '/');
}

/* The repo an app names (a loop of our own: router works on any config). */
static const struct config_repo *
router_find_repo(const struct config *cfg, const char *name)
{
	size_t	 i;

	for (i = 0; i < cfg->nrepos; i++)
		if (cfg->repos[i].name != NULL &&
		    strcmp(cfg->repos[i].name, name) == 0)
			return &cfg->repos[i];
	return NULL;
}

static int
router_touches(const struct hook_event *ev, const char *dir)
{
	size_t	 i;

	if (!ev->paths_complete)
		return 1;
	for (i = 0; i < ev->npaths; i++)
		if (router_path_under(ev->paths[i], dir))
			return 1;
	return 0;
}

size_t
router_route(const struct config *cfg, const struct hook_event *ev,
    struct job_spec **out, char *why, size_t whylen)
{
	const struct config_app		*app;
	const struct config_repo	*repo;
	struct job_spec			*jobs = NULL;
	const char			*want, *gitonly = NULL;
	size_t				 i, n = 0, repo_hits = 0, ref_hits = 0;

	*out = NULL;
	if (ev->kind == HOOK_EVENT_IMAGE)
		return router_route_image(cfg, ev, out, why, whylen);
	if (ev->kind != HOOK_EVENT_PUSH) {
		snprintf(why, whylen, "unknown event kind");
		return 0;
	}
	for (i = 0; i < cfg->napps; i++) {
		app = &cfg->apps[i];
		if (app->repo == NULL ||
		    (repo = router_find_repo(cfg, app->repo)) == NULL)
			continue;
		if (!router_url_same(repo->url, ev->clone_url,
		    ev->path_nocase) &&
		    !router_url_same(repo->url, ev->ssh_url, ev->path_nocase) &&
		    (ev->clone_url != NULL || !router_bbdc_match(repo->url,
		    ev->scm_project, ev->scm_slug)))
			continue;
		repo_hits++;
		want = repo->branch;
		if (ev->branch != NULL) {
			if (strcmp(want, ev->branch) != 0)
				continue;
		} else if (ev->tag != NULL) {
			if (strcmp(want, ev->tag) != 0 &&
			    (ev->ref == NULL || strcmp(want, ev->ref) != 0))
				continue;
		} else
			continue;
		ref_hits++;
		if (!router_touches(ev, app->path))
			continue;
		/* Git only: its updates are the deployment, nothing to sync. */
		if (app->cluster == NULL) {
			if (gitonly == NULL)
				gitonly = app->name;
			continue;
		}
		jobs = xreallocarray(jobs, n + 1, sizeof(*jobs));
		memset(&jobs[n], 0, sizeof(jobs[n]));
		jobs[n].kind = JOB_SYNC;
		jobs[n].app = app->name;
		jobs[n].repo = repo->name;
		jobs[n].revision = ev->after;
		n++;
	}
	if (n == 0) {
		free(jobs);
		jobs = NULL;
		if (repo_hits == 0)
			snprintf(why, whylen, "no app");
		else if (gitonly != NULL)
			snprintf(why, whylen, "no app: app %s has no cluster "
			    "(updated in Git only)", gitonly);
		else if (ref_hits == 0)
			snprintf(why, whylen, "no app: no app follows %s",
			    ev->ref != NULL ? ev->ref : "this ref");
		else
			snprintf(why, whylen, "no app: no changed path under "
			    "an app's path");
	}
	*out = jobs;
	return n;
}

/* The public hosts whose commit pages are known, and where the commit
 * goes in their URLs. */
static const struct {
	const char	*host;
	const char	*commit;
} router_web_hosts[] = {
	{ "github.com", "/commit/" },
	{ "gitlab.com", "/-/commit/" },
	{ "bitbucket.org", "/commits/" },
	{ "codeberg.org", "/commit/" },
};

char *
router_commit_url(const char *repo_url, const char *sha)
{
	char	*n, *out = NULL;
	size_t	 i, hl;

	if (sha == NULL || strspn(sha, "0123456789abcdef") != strlen(sha) ||
	    strlen(sha) < 7 || (n = router_url_normalize(repo_url)) == NULL)
		return NULL;
	for (i = 0; i < nitems(router_web_hosts); i++) {
		hl = strlen(router_web_hosts[i].host);
		/* host/owner/...: at least one path segment after the host. */
		if (strncmp(n, router_web_hosts[i].host, hl) == 0 &&
		    n[hl] == '/' && n[hl + 1] != '\0') {
			out = xasprintf("https://%s%s%s", n,
			    router_web_hosts[i].commit, sha);
			break;
		}
	}
	free(n);
	return out;
}
