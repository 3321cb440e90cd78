/*
 * router.c: which apps a push event concerns (router.h).
 *
 * An app matches a push when its repo's URL names the pushed repository
 * (router_url_equal against the event's clone and ssh URLs) and the pushed
 * ref is the repo's branch.  A tag push matches only an app whose repo
 * "branch" is literally that tag (a repo that tracks a release tag); other
 * tag pushes sync nothing, since apps follow branches.  When the payload
 * listed every changed path and none is under the app's path, the app is
 * skipped.  Each remaining app gets one sync job at the pushed commit.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int
router_url_equal(const char *a, const char *b)
{
	char	*na, *nb;
	int	 eq;

	if (a == NULL || b == NULL)
		return 0;
	na = router_url_normalize(a);
	nb = router_url_normalize(b);
	eq = na != NULL && nb != NULL && na[0] != '\0' && strcmp(na, nb) == 0;
	free(na);
	free(nb);
	return eq;
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
	const char			*want;
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
		if (!router_url_equal(repo->url, ev->clone_url) &&
		    !router_url_equal(repo->url, ev->ssh_url))
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
