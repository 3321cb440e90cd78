/*
 * The webhook case runner: every file test/fixtures/cases/[*\/]*.case is
 * one request and what gitopsd must answer, run through ingest_process()
 * (the function the HTTP server calls), so what is tested is what is served.
 *
 * CASE FILE FORMAT
 *
 * A header block of "key: value" lines, then a blank line, then the
 * request body verbatim (bytes up to the end of the file; a body may
 * instead come from body-file).  Lines starting with '#' are comments.
 *
 *   Source and config (the config is built in memory):
 *     source: <type>                 handler type (github, gitlab, ...)
 *     name: <source name>            default: the type
 *     secret: <value>                repeatable: two = rotation [new, old]
 *     allow-sha1: yes                config_source.allow_sha1
 *     repo: <name> <url> [<branch>]  repeatable; branch default "main"
 *     app: <name> <repo> [<path> [<cluster>]]
 *                                    repeatable; path default ".", cluster
 *                                    default "prod" ("-": none, Git only)
 *     image: <app> <repository>      repeatable; an image the app deploys
 *   Request:
 *     path: <after /hooks/>          default: the source name
 *     method: <method>               default POST
 *     header: <Name>: <value>        repeatable, sent in order
 *     body-file: <path>              relative to the case file
 *     body-form: <field>             send "<field>=<urlencoded body>" instead
 *     body-fill: <token> <bytes>     replace token with 'x's up to that size
 *     sign: <Header> <prefix|-> <secret> [json]
 *                                    add Header: prefix + hex HMAC-SHA256 of
 *                                    the final body ("json": of the body
 *                                    before body-form encoding, as Gitea)
 *     sign-sha1: <Header> <prefix|-> <secret>
 *   Expectations:
 *     expect-status: <code>          202 means ingest produced queue items
 *     expect-body: <text>            substring of the JSON answer (non-202)
 *     expect-event: k=v ...          the next event has these fields; keys:
 *                                    kind delivery ref branch tag before after
 *                                    repo clone_url ssh_url web_url pusher
 *                                    paths (comma list) paths_complete
 *                                    registry repository digest; "-" = unset
 *     expect-events: <n>             number of events
 *     expect-job: <kind> k=v ...     the next job (in item order); keys: app
 *                                    repo revision image tag digest
 *     expect-jobs: <n>               number of jobs (default when any
 *                                    expect-job: their count)
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <ctype.h>
#include <errno.h>
#include <glob.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"
#include "handler.h"
#include "ingest.h"
#include "job.h"
#include "queue.h"
#include "util.h"

#define CASES_DIR	"test/fixtures/cases"
#define MAX_LIST	16

struct wcase {
	const char		*file;
	/* config */
	struct config		 cfg;
	struct config_source	 src;
	char			*secrets[2];
	struct config_repo	 repos[MAX_LIST];
	struct config_app	 apps[MAX_LIST];
	struct config_image	 images[MAX_LIST][4];
	/* request */
	char			*path;
	char			*method;
	struct hook_header	 hdrs[MAX_LIST];
	size_t			 nhdrs;
	char			*body;
	size_t			 body_len;
	/* expectations */
	int			 status;
	char			*expect_body[MAX_LIST];
	size_t			 nexpect_body;
	char			*events[MAX_LIST];
	size_t			 nevents;
	long			 want_events;
	char			*jobs[MAX_LIST];
	size_t			 njobs;
	long			 want_jobs;
	/* every string above, freed at the end */
	char			**owned;
	size_t			 nowned;
};

static char *
wc_own(struct wcase *c, char *s)
{
	c->owned = xreallocarray(c->owned, c->nowned + 1, sizeof(char *));
	c->owned[c->nowned++] = s;
	return s;
}

static void
wc_free(struct wcase *c)
{
	size_t	 i;

	for (i = 0; i < c->nowned; i++)
		free(c->owned[i]);
	free(c->owned);
	free(c->body);
}

/* Split s at whitespace into at most max words (in place). */
static size_t
wc_words(char *s, char **w, size_t max)
{
	size_t	 n = 0;

	while (n < max) {
		while (isspace((unsigned char)*s))
			s++;
		if (*s == '\0')
			break;
		w[n++] = s;
		while (*s != '\0' && !isspace((unsigned char)*s))
			s++;
		if (*s != '\0')
			*s++ = '\0';
	}
	return n;
}

static char *
wc_urlencode(const char *in, size_t len, size_t *outlen)
{
	struct buf	 b;
	size_t		 i;

	buf_init(&b, 0);
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)in[i];
		if (isalnum(ch) || strchr("-_.*", ch) != NULL)
			assert_int_equal(buf_add(&b, &in[i], 1), 0);
		else if (ch == ' ')
			assert_int_equal(buf_addstr(&b, "+"), 0);
		else
			assert_int_equal(buf_printf(&b, "%%%02X", ch), 0);
	}
	return buf_steal(&b, outlen);
}

struct wc_sign {
	char	*header;
	char	*prefix;
	char	*secret;
	int	 over_json;
	int	 sha1;
};

static void
wc_load(struct wcase *c, const char *file)
{
	char		*text, *p, *line, *nl, *val, *w[8], *dir, *tmp;
	char		*bodyfile = NULL, *form = NULL, *filltok = NULL;
	size_t		 len, n, i, fillsize = 0, nrepos = 0, napps = 0;
	struct wc_sign	 signs[4];
	size_t		 nsigns = 0;
	char		*json = NULL;
	size_t		 json_len = 0;

	memset(c, 0, sizeof(*c));
	c->file = file;
	c->want_events = -1;
	c->want_jobs = -1;
	if ((text = util_read_file(file, 0, &len)) == NULL)
		fail_msg("%s: %s", file, strerror(errno));
	wc_own(c, text);
	tmp = wc_own(c, xstrdup(file));
	dir = dirname(tmp);
	c->src.allow_sha1 = 0;
	c->src.verify_tag = 1;
	p = text;
	for (;;) {
		if (*p == '\0')
			break;
		nl = strchr(p, '\n');
		line = p;
		if (nl != NULL) {
			*nl = '\0';
			p = nl + 1;
		} else
			p += strlen(p);
		if (line[0] == '\0' || strcmp(line, "\r") == 0)
			break;		/* the body follows */
		if (line[0] == '#')
			continue;
		if ((val = strchr(line, ':')) == NULL)
			fail_msg("%s: bad line \"%s\"", file, line);
		*val++ = '\0';
		while (*val == ' ' || *val == '\t')
			val++;
		if (strcmp(line, "source") == 0)
			c->src.type = val;
		else if (strcmp(line, "name") == 0)
			c->src.name = val;
		else if (strcmp(line, "secret") == 0) {
			assert_true(c->src.nsecrets < 2);
			c->secrets[c->src.nsecrets++] = val;
		} else if (strcmp(line, "allow-sha1") == 0)
			c->src.allow_sha1 = strcmp(val, "yes") == 0;
		else if (strcmp(line, "repo") == 0) {
			n = wc_words(val, w, 3);
			assert_true(n >= 2 && nrepos < MAX_LIST);
			c->repos[nrepos].name = w[0];
			c->repos[nrepos].url = w[1];
			c->repos[nrepos].branch = n > 2 ? w[2] : "main";
			nrepos++;
		} else if (strcmp(line, "app") == 0) {
			n = wc_words(val, w, 4);
			assert_true(n >= 2 && napps < MAX_LIST);
			c->apps[napps].name = w[0];
			c->apps[napps].repo = w[1];
			c->apps[napps].path = n > 2 ? w[2] : ".";
			c->apps[napps].cluster = n < 4 ? "prod" :
			    strcmp(w[3], "-") == 0 ? NULL : w[3];
			napps++;
		} else if (strcmp(line, "image") == 0) {
			n = wc_words(val, w, 2);
			assert_true(n == 2);
			for (i = 0; i < napps; i++)
				if (strcmp(c->apps[i].name, w[0]) == 0)
					break;
			if (i == napps)
				fail_msg("%s: image for unknown app %s", file,
				    w[0]);
			assert_true(c->apps[i].nimages < 4);
			c->apps[i].images = c->images[i];
			c->images[i][c->apps[i].nimages++].repository = w[1];
		} else if (strcmp(line, "path") == 0)
			c->path = val;
		else if (strcmp(line, "method") == 0)
			c->method = val;
		else if (strcmp(line, "header") == 0) {
			char *hv = strchr(val, ':');
			assert_non_null(hv);
			assert_true(c->nhdrs < MAX_LIST);
			*hv++ = '\0';
			while (*hv == ' ')
				hv++;
			c->hdrs[c->nhdrs].name = val;
			c->hdrs[c->nhdrs].value = hv;
			c->nhdrs++;
		} else if (strcmp(line, "body-file") == 0)
			bodyfile = val;
		else if (strcmp(line, "body-form") == 0)
			form = val;
		else if (strcmp(line, "body-fill") == 0) {
			n = wc_words(val, w, 2);
			assert_true(n == 2);
			filltok = w[0];
			fillsize = strtoul(w[1], NULL, 10);
		} else if (strcmp(line, "sign") == 0 ||
		    strcmp(line, "sign-sha1") == 0) {
			n = wc_words(val, w, 4);
			assert_true(n >= 3 && nsigns < nitems(signs));
			signs[nsigns].header = w[0];
			signs[nsigns].prefix = strcmp(w[1], "-") == 0 ? "" : w[1];
			signs[nsigns].secret = w[2];
			signs[nsigns].over_json = n > 3 && strcmp(w[3], "json") == 0;
			signs[nsigns].sha1 = strcmp(line, "sign-sha1") == 0;
			nsigns++;
		} else if (strcmp(line, "expect-status") == 0)
			c->status = atoi(val);
		else if (strcmp(line, "expect-body") == 0) {
			assert_true(c->nexpect_body < MAX_LIST);
			c->expect_body[c->nexpect_body++] = val;
		} else if (strcmp(line, "expect-event") == 0) {
			assert_true(c->nevents < MAX_LIST);
			c->events[c->nevents++] = val;
		} else if (strcmp(line, "expect-events") == 0)
			c->want_events = atol(val);
		else if (strcmp(line, "expect-job") == 0) {
			assert_true(c->njobs < MAX_LIST);
			c->jobs[c->njobs++] = val;
		} else if (strcmp(line, "expect-jobs") == 0)
			c->want_jobs = atol(val);
		else
			fail_msg("%s: unknown key \"%s\"", file, line);
	}
	if (c->src.type == NULL || c->status == 0)
		fail_msg("%s: needs source: and expect-status:", file);
	if (c->src.name == NULL)
		c->src.name = c->src.type;
	c->src.secrets = c->secrets;
	if (c->path == NULL)
		c->path = c->src.name;
	if (c->method == NULL)
		c->method = "POST";
	c->cfg.sources = &c->src;
	c->cfg.nsources = 1;
	c->cfg.repos = c->repos;
	c->cfg.nrepos = nrepos;
	c->cfg.apps = c->apps;
	c->cfg.napps = napps;
	c->cfg.server.max_body_bytes = 8 << 20;

	/* The body: the file's rest, or body-file. */
	if (bodyfile != NULL) {
		char *bp = xasprintf("%s/%s", dir, bodyfile);
		json = util_read_file(bp, 32 << 20, &json_len);
		if (json == NULL)
			fail_msg("%s: %s: %s", file, bp, strerror(errno));
		free(bp);
	} else {
		json_len = (size_t)(text + len - p);
		json = xmalloc(json_len + 1);
		memcpy(json, p, json_len);
		json[json_len] = '\0';
	}
	if (filltok != NULL) {
		char *at = strstr(json, filltok);
		size_t tl = strlen(filltok), fl;
		struct buf b;

		assert_non_null(at);
		fl = fillsize > json_len - tl ? fillsize - (json_len - tl) : 0;
		buf_init(&b, 0);
		assert_int_equal(buf_add(&b, json, (size_t)(at - json)), 0);
		for (i = 0; i < fl; i++)
			assert_int_equal(buf_add(&b, "x", 1), 0);
		assert_int_equal(buf_addstr(&b, at + tl), 0);
		free(json);
		json = buf_steal(&b, &json_len);
	}
	if (form != NULL) {
		size_t el;
		char *enc = wc_urlencode(json, json_len, &el);
		c->body = xasprintf("%s=%s", form, enc);
		c->body_len = strlen(c->body);
		free(enc);
	} else {
		c->body = xmalloc(json_len + 1);
		memcpy(c->body, json, json_len + 1);
		c->body_len = json_len;
	}
	for (i = 0; i < nsigns; i++) {
		char hex[65];
		const char *m = signs[i].over_json ? json : c->body;
		size_t ml = signs[i].over_json ? json_len : c->body_len;

		if (signs[i].sha1)
			util_hmac_sha1_hex(signs[i].secret,
			    strlen(signs[i].secret), m, ml, hex);
		else
			util_hmac_sha256_hex(signs[i].secret,
			    strlen(signs[i].secret), m, ml, hex);
		assert_true(c->nhdrs < MAX_LIST);
		c->hdrs[c->nhdrs].name = signs[i].header;
		c->hdrs[c->nhdrs].value = wc_own(c, xasprintf("%s%s",
		    signs[i].prefix, hex));
		c->nhdrs++;
	}
	free(json);
}

static const char *
wc_event_field(const struct hook_event *ev, const char *k, char *tmp,
    size_t tmplen)
{
	size_t	 i, o = 0;

	if (strcmp(k, "kind") == 0)
		return ev->kind == HOOK_EVENT_PUSH ? "push" :
		    ev->kind == HOOK_EVENT_IMAGE ? "image" : "?";
	if (strcmp(k, "delivery") == 0) return ev->delivery;
	if (strcmp(k, "ref") == 0) return ev->ref;
	if (strcmp(k, "branch") == 0) return ev->branch;
	if (strcmp(k, "tag") == 0) return ev->tag;
	if (strcmp(k, "before") == 0) return ev->before;
	if (strcmp(k, "after") == 0) return ev->after;
	if (strcmp(k, "repo") == 0) return ev->repo_name;
	if (strcmp(k, "clone_url") == 0) return ev->clone_url;
	if (strcmp(k, "ssh_url") == 0) return ev->ssh_url;
	if (strcmp(k, "web_url") == 0) return ev->web_url;
	if (strcmp(k, "pusher") == 0) return ev->pusher;
	if (strcmp(k, "registry") == 0) return ev->registry;
	if (strcmp(k, "repository") == 0) return ev->repository;
	if (strcmp(k, "digest") == 0) return ev->digest;
	if (strcmp(k, "paths_complete") == 0)
		return ev->paths_complete ? "1" : "0";
	if (strcmp(k, "paths") == 0) {
		tmp[0] = '\0';
		for (i = 0; i < ev->npaths; i++)
			o += (size_t)snprintf(tmp + o, o < tmplen ? tmplen - o : 0,
			    "%s%s", i ? "," : "", ev->paths[i]);
		return ev->npaths ? tmp : NULL;
	}
	fail_msg("unknown event key %s", k);
	return NULL;
}

static const char *
wc_job_field(const struct job_spec *j, const char *k)
{
	if (strcmp(k, "app") == 0) return j->app;
	if (strcmp(k, "repo") == 0) return j->repo;
	if (strcmp(k, "revision") == 0) return j->revision;
	if (strcmp(k, "image") == 0) return j->image;
	if (strcmp(k, "tag") == 0) return j->tag;
	if (strcmp(k, "digest") == 0) return j->digest;
	fail_msg("unknown job key %s", k);
	return NULL;
}

/* Check "k=v k=v" against a getter; "-" means unset. */
static void
wc_match(const char *file, const char *what, size_t idx, const char *spec,
    const char *(*get)(const void *, const char *, char *, size_t),
    const void *obj)
{
	char	*copy = xstrdup(spec), *w[24], *eq, tmp[4096];
	size_t	 n, i;
	const char *got;

	n = wc_words(copy, w, nitems(w));
	for (i = 0; i < n; i++) {
		if ((eq = strchr(w[i], '=')) == NULL)
			continue;	/* the job kind word */
		*eq++ = '\0';
		got = get(obj, w[i], tmp, sizeof(tmp));
		if (strcmp(eq, "-") == 0 ? got != NULL :
		    got == NULL || strcmp(got, eq) != 0) {
			fail_msg("%s: %s %zu: %s is \"%s\", want \"%s\"", file,
			    what, idx, w[i], got ? got : "(unset)", eq);
		}
	}
	free(copy);
}

static const char *
wc_get_event(const void *o, const char *k, char *tmp, size_t tl)
{
	return wc_event_field(o, k, tmp, tl);
}

static const char *
wc_get_job(const void *o, const char *k, char *tmp, size_t tl)
{
	(void)tmp;
	(void)tl;
	return wc_job_field(o, k);
}

static void
wc_run(void **state)
{
	const char		*file = *state;
	struct wcase		 c;
	struct hook_request	 req;
	struct ingest_result	 res;
	size_t			 i, k, jn = 0;
	int			 status;
	enum job_kind		 kind;
	char			 kw[32];

	wc_load(&c, file);
	memset(&req, 0, sizeof(req));
	req.method = c.method;
	req.headers = c.hdrs;
	req.nheaders = c.nhdrs;
	req.body = (const unsigned char *)c.body;
	req.body_len = c.body_len;
	ingest_process(&c.cfg, c.path, &req, &res);
	status = res.status == 0 ? 202 : res.status;
	if (status != c.status)
		fail_msg("%s: status %d (%s), want %d", file, status,
		    res.body ? res.body : res.cause, c.status);
	for (i = 0; i < c.nexpect_body; i++)
		if (res.body == NULL || strstr(res.body, c.expect_body[i]) == NULL)
			fail_msg("%s: answer %s lacks \"%s\"", file,
			    res.body ? res.body : "(none)", c.expect_body[i]);
	if (c.want_events >= 0 && (size_t)c.want_events != res.hr.nevents)
		fail_msg("%s: %zu events, want %ld", file, res.hr.nevents,
		    c.want_events);
	if (c.nevents > res.hr.nevents)
		fail_msg("%s: %zu events, want at least %zu", file,
		    res.hr.nevents, c.nevents);
	for (i = 0; i < c.nevents; i++)
		wc_match(file, "event", i, c.events[i], wc_get_event,
		    &res.hr.events[i]);
	for (i = 0; i < res.nitems; i++) {
		for (k = 0; k < res.items[i].njobs; k++, jn++) {
			const struct job_spec *j = &res.items[i].jobs[k];
			if (jn >= c.njobs)
				continue;
			if (sscanf(c.jobs[jn], "%31s", kw) != 1 ||
			    job_kind_parse(kw, &kind) == -1)
				fail_msg("%s: bad expect-job \"%s\"", file,
				    c.jobs[jn]);
			if (j->kind != kind)
				fail_msg("%s: job %zu is %s, want %s", file, jn,
				    job_kind_name(j->kind), kw);
			wc_match(file, "job", jn, c.jobs[jn], wc_get_job, j);
		}
	}
	if (c.want_jobs < 0 && c.njobs > 0)
		c.want_jobs = (long)c.njobs;
	if (c.want_jobs >= 0 && (size_t)c.want_jobs != jn)
		fail_msg("%s: %zu jobs, want %ld", file, jn, c.want_jobs);
	if (status == 202 && jn == 0)
		fail_msg("%s: 202 without jobs", file);
	if (status != 202)
		assert_int_equal(res.nitems, 0);
	ingest_result_free(&res);
	wc_free(&c);
}

int
main(void)
{
	glob_t			 g;
	struct CMUnitTest	*tests;
	size_t			 i;
	int			 rc;

	memset(&g, 0, sizeof(g));
	(void)glob(CASES_DIR "/*.case", 0, NULL, &g);
	(void)glob(CASES_DIR "/*/*.case", g.gl_pathc > 0 ? GLOB_APPEND : 0,
	    NULL, &g);
	if (g.gl_pathc == 0) {
		fprintf(stderr, "no cases under %s\n", CASES_DIR);
		globfree(&g);
		return 1;
	}
	tests = xcalloc(g.gl_pathc, sizeof(*tests));
	for (i = 0; i < g.gl_pathc; i++) {
		tests[i].name = g.gl_pathv[i] + strlen(CASES_DIR) + 1;
		tests[i].test_func = wc_run;
		tests[i].initial_state = g.gl_pathv[i];
	}
	rc = _cmocka_run_group_tests("webhook_cases", tests, g.gl_pathc, NULL,
	    NULL);
	free(tests);
	globfree(&g);
	return rc;
}
