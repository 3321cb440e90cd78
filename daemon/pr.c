/*
 * pr.c: templated branch names and the pull/merge request clients.
 *
 * Each Git host is one row of pr_providers: its default API, auth header,
 * endpoints and the JSON field names of its pull request objects.  The
 * flow is the same for all: look the open PR up by its source branch
 * (following pagination), update it if found, else create it; a create
 * refused because one exists (GitHub 422, GitLab and Gitea 409) is
 * resolved by looking it up again.  The token goes only into the auth
 * header, which is wiped after the call; error texts carry the host's
 * message, never a header.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "config.h"
#include "config_schema.h"
#include "http_client.h"
#include "pr.h"
#include "template.h"
#include "util.h"

#define PR_TIMEOUT_S		30
#define PR_CONNECT_TIMEOUT_S	10
#define PR_BODY_CAP		(4u << 20)
#define PR_MAX_PAGES		20
/* GitHub: a secondary rate limit without headers: "wait at least one
 * minute"; the same pause for a 429 without Retry-After. */
#define PR_RATE_DEFAULT_S	60

/* ---- templates ---------------------------------------------------------- */

int
pr_render(const char *tmpl, pr_var_fn *fn, void *arg, struct buf *out,
    char *err, size_t errlen)
{
	const char	*p = tmpl, *open, *close, *val;
	char		 name[32];
	size_t		 n;

	while ((open = strstr(p, "{{")) != NULL) {
		if ((close = strstr(open + 2, "}}")) == NULL) {
			snprintf(err, errlen, "column %zu: \"{{\" without "
			    "\"}}\"", (size_t)(open - tmpl) + 1);
			return -1;
		}
		if (buf_add(out, p, (size_t)(open - p)) == -1)
			goto full;
		open += 2;
		while (*open == ' ')
			open++;
		n = (size_t)(close - open);
		while (n > 0 && open[n - 1] == ' ')
			n--;
		if (n == 0 || n >= sizeof(name)) {
			snprintf(err, errlen, "column %zu: empty or long "
			    "variable name", (size_t)(open - tmpl) + 1);
			return -1;
		}
		memcpy(name, open, n);
		name[n] = '\0';
		if ((val = fn(name, arg)) == NULL) {
			snprintf(err, errlen, "column %zu: unknown variable "
			    "\"%s\"", (size_t)(open - tmpl) + 1, name);
			return -1;
		}
		if (buf_addstr(out, val) == -1)
			goto full;
		p = close + 2;
	}
	if (buf_addstr(out, p) == -1)
		goto full;
	return 0;
full:
	snprintf(err, errlen, "rendered text too long");
	return -1;
}

int
pr_is_template(const char *s)
{
	return s != NULL && strstr(s, "{{") != NULL;
}

/* git check-ref-format, applied to refs/heads/<name>. */
int
pr_branch_name_ok(const char *name)
{
	const char	*c, *comp;
	size_t		 n = strlen(name);

	if (n == 0 || n > 200 || name[0] == '/' || name[n - 1] == '/' ||
	    name[n - 1] == '.' || name[0] == '-' || strcmp(name, "@") == 0)
		return 0;
	if (n >= 5 && strcmp(name + n - 5, ".lock") == 0)
		return 0;
	for (comp = name, c = name; *c != '\0'; c++) {
		unsigned char	 ch = (unsigned char)*c;

		if (ch < 0x20 || ch == 0x7f || ch == ' ' || ch == '~' ||
		    ch == '^' || ch == ':' || ch == '?' || ch == '*' ||
		    ch == '[' || ch == '\\')
			return 0;
		if (c[0] == '.' && c[1] == '.')
			return 0;
		if (c[0] == '@' && c[1] == '{')
			return 0;
		if (ch == '/') {
			if (c == comp || comp[0] == '.' || (c - comp >= 5 &&
			    strncmp(c - 5, ".lock", 5) == 0))
				return 0;
			comp = c + 1;
		}
	}
	return comp[0] != '.';
}

static const char *const pr_branch_names[] = {
	"app", "image", "tag", "short_sha", NULL
};
static const char *const pr_text_names[] = {
	"app", "image", "repository", "old", "new", "tag", "digest", "event",
	"repo", "branch", "job", NULL
};

/* For checks: every known name renders as a sample value. */
static const char *
pr_sample_var(const char *name, void *arg)
{
	const char *const	*names = arg;
	size_t			 i;

	for (i = 0; names[i] != NULL; i++)
		if (strcmp(names[i], name) == 0)
			return strcmp(name, "short_sha") == 0 ? "0a1b2c3" :
			    "x1.0";
	return NULL;
}

int
pr_check_branch(const char *tmpl, char *err, size_t errlen)
{
	struct buf	 b;
	int		 rc = -1;

	buf_init(&b, 1024);
	if (pr_render(tmpl, pr_sample_var, (void *)pr_branch_names, &b, err,
	    errlen) == -1)
		goto out;
	if (!pr_branch_name_ok(b.data)) {
		snprintf(err, errlen, "\"%s\" is not a valid branch name "
		    "(git check-ref-format)", b.data);
		goto out;
	}
	rc = 0;
out:
	buf_free(&b);
	return rc;
}

int
pr_check_text(const char *tmpl, char *err, size_t errlen)
{
	struct buf	 b;
	int		 rc;

	buf_init(&b, 65536);
	rc = pr_render(tmpl, pr_sample_var, (void *)pr_text_names, &b, err,
	    errlen);
	buf_free(&b);
	return rc;
}

static const char *
pr_branch_var(const char *name, void *arg)
{
	const struct pr_branch_vars	*v = arg;
	const char			*s = NULL;

	if (strcmp(name, "app") == 0)
		s = v->app;
	else if (strcmp(name, "image") == 0)
		s = v->image;
	else if (strcmp(name, "tag") == 0)
		s = v->tag;
	else if (strcmp(name, "short_sha") == 0)
		s = v->short_sha;
	else
		return NULL;
	return s != NULL ? s : "";
}

char *
pr_branch_expand(const char *tmpl, const struct pr_branch_vars *v,
    char *err, size_t errlen)
{
	struct buf	 b;

	buf_init(&b, 1024);
	if (pr_render(tmpl, pr_branch_var, (void *)v, &b, err, errlen) == -1)
		goto bad;
	if (!pr_branch_name_ok(b.data)) {
		snprintf(err, errlen, "push_branch \"%s\" is not a valid "
		    "branch name (git check-ref-format)", b.data);
		goto bad;
	}
	return buf_steal(&b, NULL);
bad:
	buf_free(&b);
	return NULL;
}

char *
pr_branch_pattern(const char *tmpl, const struct pr_branch_vars *v,
    char *err, size_t errlen)
{
	struct pr_branch_vars	 g = *v;
	struct buf		 b;

	g.tag = g.short_sha = "*";
	buf_init(&b, 1024);
	if (pr_render(tmpl, pr_branch_var, &g, &b, err, errlen) == -1) {
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b, NULL);
}

/* ---- repository path ---------------------------------------------------- */

int
pr_repo_path(const char *url, char **owner, char **name)
{
	const char	*p = url, *s, *last;
	char		*path;
	size_t		 n;

	*owner = *name = NULL;
	if ((s = strstr(url, "://")) != NULL) {
		p = s + 3;
		if ((p = strchr(p, '/')) == NULL)
			return -1;
		if (strncmp(url, "file://", 7) == 0)
			p = url + 7;
	} else if (url[0] != '/' && (s = strchr(url, ':')) != NULL &&
	    (strchr(url, '/') == NULL || strchr(url, '/') > s))
		p = s + 1;		/* scp-like user@host:path */
	while (*p == '/')
		p++;
	path = xstrdup(p);
	n = strlen(path);
	while (n > 0 && path[n - 1] == '/')
		path[--n] = '\0';
	if (n > 4 && strcmp(path + n - 4, ".git") == 0)
		path[n - 4] = '\0';
	if ((last = strrchr(path, '/')) == NULL || last == path ||
	    last[1] == '\0') {
		free(path);
		return -1;
	}
	*name = xstrdup(last + 1);
	*owner = xstrndup(path, (size_t)(last - path));
	free(path);
	return 0;
}

/* ---- providers ---------------------------------------------------------- */

const struct config_enum pr_provider_enums[] = {
	{ "github", CONFIG_PR_GITHUB },
	{ "gitlab", CONFIG_PR_GITLAB },
	{ "gitea", CONFIG_PR_GITEA },
	{ "bitbucket", CONFIG_PR_BITBUCKET },
	{ NULL, 0 },
};

enum pr_labels {
	PR_LABELS_NONE,		/* Bitbucket Cloud has no labels */
	PR_LABELS_ISSUE,	/* POST .../issues/N/labels {"labels": [..]} */
	PR_LABELS_CSV,		/* "labels": "a,b" on the MR itself */
};

enum pr_next {
	PR_NEXT_LINK,		/* Link: <...>; rel="next" */
	PR_NEXT_BODY,		/* {"values": [...], "next": "url"} */
};

struct pr_provider {
	const char	*name;
	const char	*api;		/* default API base */
	const char	*auth;		/* header before the token */
	const char	*accept;
	int		 nested;	/* owner is a group path (GitLab) */
	int		 owner_in_head;	/* list filter is owner:branch */
	const char	*repos;		/* repository collection */
	const char	*pulls;		/* collection under the repository */
	const char	*list_query;	/* filters, then the head branch */
	const char	*list_tail;	/* after it; NULL: no head filter */
	const char	*closed_query;	/* the same for closed ones */
	const char	*merged_path;	/* closed and this null or false:
					 * declined; NULL: every closed one */
	const char	*all_query;	/* every open one, no filter */
	const char	*close_method;	/* closing (declining) one */
	const char	*close_suffix;	/* after .../pulls/N */
	const char	*close_key;	/* JSON field; NULL: no body */
	const char	*close_value;
	const char	*update_method;
	const char	*head_key;	/* create; NULL: Bitbucket's */
	const char	*base_key;	/* source/destination objects */
	const char	*body_key;
	const char	*number_key;
	const char	*url_key;	/* dotted path */
	const char	*head_path;	/* dotted path in a listed item */
	const char	*items_key;	/* NULL: the answer is an array */
	const char	*error_key;	/* dotted path of the error text */
	enum pr_next	 next;
	enum pr_labels	 labels;
};

/*
 * Documented endpoints: GitHub REST "Pulls" (head=owner:branch filter),
 * GitLab "Merge requests" (project id is the URL-encoded path), Gitea
 * /api/v1 "repository" pulls (no head filter: the list is paged through),
 * Bitbucket Cloud 2.0 "pullrequests" (BBQL filter on source.branch.name).
 */
static const struct pr_provider pr_providers[] = {
	[CONFIG_PR_GITHUB] = {
		.name = "github", .api = "https://api.github.com",
		.auth = "Authorization: Bearer ",
		.accept = "Accept: application/vnd.github+json",
		.repos = "repos", .pulls = "pulls",
		.list_query = "?state=open&per_page=100&head=", .list_tail = "",
		.closed_query = "?state=closed&per_page=100&head=",
		.merged_path = "merged_at",
		.all_query = "?state=open&per_page=100",
		.close_method = "PATCH", .close_suffix = "",
		.close_key = "state", .close_value = "closed",
		.update_method = "PATCH", .head_key = "head",
		.base_key = "base", .body_key = "body", .number_key = "number",
		.url_key = "html_url", .head_path = "head.ref",
		.error_key = "message", .next = PR_NEXT_LINK,
		.labels = PR_LABELS_ISSUE, .owner_in_head = 1,
	},
	[CONFIG_PR_GITLAB] = {
		.name = "gitlab", .api = "https://gitlab.com/api/v4",
		.auth = "PRIVATE-TOKEN: ",
		.accept = "Accept: application/json",
		.nested = 1, .repos = "projects", .pulls = "merge_requests",
		.list_query = "?state=opened&per_page=100&source_branch=",
		.list_tail = "",
		/* GitLab's "closed" is closed without merge ("merged" apart). */
		.closed_query = "?state=closed&per_page=100&source_branch=",
		.all_query = "?state=opened&per_page=100",
		.close_method = "PUT", .close_suffix = "",
		.close_key = "state_event", .close_value = "close",
		.update_method = "PUT", .head_key = "source_branch",
		.base_key = "target_branch", .body_key = "description",
		.number_key = "iid", .url_key = "web_url",
		.head_path = "source_branch", .error_key = "message",
		.next = PR_NEXT_LINK, .labels = PR_LABELS_CSV,
	},
	[CONFIG_PR_GITEA] = {
		.name = "gitea", .api = "https://gitea.com/api/v1",
		.auth = "Authorization: token ",
		.accept = "Accept: application/json",
		.repos = "repos", .pulls = "pulls",
		.list_query = "?state=open&limit=50", .list_tail = NULL,
		.closed_query = "?state=closed&limit=50", .merged_path = "merged",
		.all_query = "?state=open&limit=50",
		.close_method = "PATCH", .close_suffix = "",
		.close_key = "state", .close_value = "closed",
		.update_method = "PATCH", .head_key = "head",
		.base_key = "base", .body_key = "body", .number_key = "number",
		.url_key = "html_url", .head_path = "head.ref",
		.error_key = "message", .next = PR_NEXT_LINK,
		.labels = PR_LABELS_ISSUE,
	},
	[CONFIG_PR_BITBUCKET] = {
		.name = "bitbucket", .api = "https://api.bitbucket.org/2.0",
		.auth = "Authorization: Bearer ",
		.accept = "Accept: application/json",
		.repos = "repositories", .pulls = "pullrequests",
		.list_query = "?state=OPEN&pagelen=50&q=source.branch.name%3D%22",
		.list_tail = "%22",
		.closed_query = "?state=DECLINED&pagelen=50"
		    "&q=source.branch.name%3D%22",
		.all_query = "?state=OPEN&pagelen=50",
		.close_method = "POST", .close_suffix = "/decline",
		.update_method = "PUT", .body_key = "description",
		.number_key = "id", .url_key = "links.html.href",
		.head_path = "source.branch.name", .items_key = "values",
		.error_key = "error.message", .next = PR_NEXT_BODY,
		.labels = PR_LABELS_NONE,
	},
};

/* One call's context. */
struct pr_ctx {
	const struct pr_provider	*p;
	const struct config_repo	*repo;
	char				*base_url;	/* .../repos/o/n */
	char				*authz;		/* wiped */
	char				*head_filter;	/* list query value */
};

struct pr_reply {
	long		 status;
	struct buf	 body;
	int		 retry_after_s;
	int		 rl_exhausted;
	long long	 rl_reset;
	char		*next;
};

static void
pr_reply_reset(struct pr_reply *r)
{
	buf_free(&r->body);
	free(r->next);
	memset(r, 0, sizeof(*r));
}

static size_t
pr_body_cb(char *data, size_t size, size_t nitems, void *arg)
{
	struct pr_reply	*r = arg;

	if (buf_add(&r->body, data, size * nitems) == -1)
		return 0;
	return size * nitems;
}

/* The value of header name in line, trimmed, or NULL. */
static char *
pr_header(const char *line, size_t n, const char *name)
{
	size_t	 k = strlen(name);

	if (n <= k || strncasecmp(line, name, k) != 0 || line[k] != ':')
		return NULL;
	line += k + 1;
	n -= k + 1;
	while (n > 0 && (*line == ' ' || *line == '\t'))
		line++, n--;
	while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == '\n' ||
	    line[n - 1] == ' '))
		n--;
	return xstrndup(line, n);
}

/* The rel="next" target of a Link header value. */
static char *
pr_link_next(const char *v)
{
	const char	*lt, *gt, *semi;

	for (lt = strchr(v, '<'); lt != NULL; lt = strchr(gt, '<')) {
		if ((gt = strchr(lt, '>')) == NULL)
			return NULL;
		semi = gt + 1;
		while (*semi != '\0' && *semi != '<') {
			if (strncmp(semi, "rel=\"next\"", 10) == 0 ||
			    strncmp(semi, "rel=next", 8) == 0)
				return xstrndup(lt + 1, (size_t)(gt - lt - 1));
			semi++;
		}
	}
	return NULL;
}

static size_t
pr_header_cb(char *line, size_t size, size_t nitems, void *arg)
{
	struct pr_reply	*r = arg;
	size_t		 n = size * nitems;
	char		*v;

	if ((v = pr_header(line, n, "Retry-After")) != NULL) {
		r->retry_after_s = http_client_parse_retry_after(v,
		    (long long)time(NULL));
		if (r->retry_after_s == 0)
			r->retry_after_s = 1;
	} else if ((v = pr_header(line, n, "X-RateLimit-Remaining")) != NULL)
		r->rl_exhausted = strcmp(v, "0") == 0;
	else if ((v = pr_header(line, n, "X-RateLimit-Reset")) != NULL)
		r->rl_reset = strtoll(v, NULL, 10);
	else if ((v = pr_header(line, n, "Link")) != NULL) {
		free(r->next);
		r->next = pr_link_next(v);
	}
	free(v);
	return n;
}

/* One request; 0 with r filled (any status), -1 on transport errors. */
static int
pr_http(const struct pr_ctx *c, const char *method, const char *url,
    const cJSON *json, struct pr_reply *r, char *err, size_t errlen)
{
	struct curl_slist	*h = NULL, *tmp;
	CURL			*curl;
	CURLcode		 cc;
	char			*body = NULL;
	const char		*hdrs[3];
	size_t			 i;
	int			 rc = -1;

	memset(r, 0, sizeof(*r));
	buf_init(&r->body, PR_BODY_CAP);
	if ((curl = curl_easy_init()) == NULL) {
		snprintf(err, errlen, "cannot create a curl handle");
		return -1;
	}
	hdrs[0] = c->authz;
	hdrs[1] = c->p->accept;
	hdrs[2] = json != NULL ? "Content-Type: application/json" : NULL;
	for (i = 0; i < nitems(hdrs); i++) {
		if (hdrs[i] == NULL)
			continue;
		if ((tmp = curl_slist_append(h, hdrs[i])) == NULL) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		h = tmp;
	}
	if (json != NULL && (body = cJSON_PrintUnformatted(json)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (curl_easy_setopt(curl, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https") !=
	    CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_TIMEOUT, (long)PR_TIMEOUT_S) !=
	    CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT,
	    (long)PR_CONNECT_TIMEOUT_S) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_USERAGENT,
	    "gitopsd/" GITOPSD_VERSION) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, pr_header_cb) !=
	    CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_HEADERDATA, r) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, pr_body_cb) !=
	    CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_WRITEDATA, r) != CURLE_OK ||
	    (body != NULL && curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body) !=
	    CURLE_OK)) {
		snprintf(err, errlen, "cannot set up the request");
		goto out;
	}
	if ((cc = curl_easy_perform(curl)) != CURLE_OK) {
		snprintf(err, errlen, "%s %s: %s", method, c->p->name,
		    cc == CURLE_WRITE_ERROR ? "response too large" :
		    curl_easy_strerror(cc));
		goto out;
	}
	if (curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->status) !=
	    CURLE_OK) {
		snprintf(err, errlen, "no HTTP status");
		goto out;
	}
	rc = 0;
out:
	if (rc == -1)
		pr_reply_reset(r);
	curl_slist_free_all(h);
	cJSON_free(body);
	curl_easy_cleanup(curl);
	return rc;
}

/* The item at a dotted path ("links.html.href"). */
static const cJSON *
pr_get(const cJSON *o, const char *path)
{
	char		 part[64];
	const char	*dot;
	size_t		 n;

	while (o != NULL && *path != '\0') {
		dot = strchr(path, '.');
		n = dot != NULL ? (size_t)(dot - path) : strlen(path);
		if (n >= sizeof(part))
			return NULL;
		memcpy(part, path, n);
		part[n] = '\0';
		o = cJSON_GetObjectItemCaseSensitive(o, part);
		path += n + (dot != NULL);
	}
	return o;
}

/* The host's own words for a failed reply, capped; never headers. */
static void
pr_host_message(const struct pr_provider *p, long status, const char *body,
    char *out, size_t outlen)
{
	cJSON		*j = cJSON_Parse(body != NULL ? body : "");
	const cJSON	*m = j != NULL ? pr_get(j, p->error_key) : NULL;
	char		*s = NULL;

	if (m != NULL && cJSON_IsString(m))
		snprintf(out, outlen, "%s", m->valuestring);
	else if (m != NULL && (s = cJSON_PrintUnformatted(m)) != NULL)
		snprintf(out, outlen, "%s", s);	/* GitLab: arrays, objects */
	else
		snprintf(out, outlen, "HTTP %ld", status);
	cJSON_free(s);
	cJSON_Delete(j);
	template_utf8_truncate(out, 300);
}

/* Percent-encode everything but RFC 3986 unreserved characters. */
static char *
pr_escape(const char *s)
{
	struct buf	 b;

	buf_init(&b, 0);
	for (; *s != '\0'; s++) {
		if (isalnum((unsigned char)*s) || strchr("-._~", *s) != NULL)
			buf_add(&b, s, 1);
		else
			buf_printf(&b, "%%%02X", (unsigned char)*s);
	}
	return buf_steal(&b, NULL);
}

int
pr_answer_fail(int provider, const char *where, const struct pr_answer *a,
    const char *what, struct pr_outcome *out, char *err, size_t errlen)
{
	const struct pr_provider *p = &pr_providers[provider];
	char		 msg[400];
	long long	 now = (long long)time(NULL);
	long		 st = a->status;
	int		 wait;

	pr_host_message(p, st, a->body, msg, sizeof(msg));
	/* GitHub answers rate limits with 403 or 429: Retry-After first,
	 * then an exhausted X-RateLimit-Remaining until its reset, else
	 * (a secondary limit) at least a minute. */
	if (st == 429 || (st == 403 && (a->retry_after_s > 0 ||
	    a->rl_exhausted || strcasestr(msg, "rate limit") != NULL))) {
		wait = a->retry_after_s;
		if (wait <= 0 && a->rl_exhausted && a->rl_reset > now)
			wait = (int)(a->rl_reset - now < 86400 ?
			    a->rl_reset - now : 86400);
		if (wait <= 0)
			wait = PR_RATE_DEFAULT_S;
		out->retry_after_s = wait;
		snprintf(err, errlen, "%s %s: rate limited (HTTP %ld), retry "
		    "in %d s: %s", p->name, what, st, wait, msg);
	} else if (st == 401 || st == 403) {
		out->auth = out->permanent = 1;
		snprintf(err, errlen, "%s %s: the token was refused (HTTP %ld): "
		    "%s", p->name, what, st, msg);
	} else if (st == 404) {
		out->permanent = 1;
		snprintf(err, errlen, "%s %s: not found (HTTP 404) under %s: "
		    "check api_url, that the repository exists there and that "
		    "the token may read it: %s", p->name, what, where, msg);
	} else {
		out->permanent = st >= 400 && st < 500 && st != 408;
		snprintf(err, errlen, "%s %s: HTTP %ld: %s", p->name, what,
		    st, msg);
	}
	return -1;
}

/* Turn a refused reply into a failure (always -1). */
static int
pr_fail(const struct pr_ctx *c, const struct pr_reply *r, const char *what,
    struct pr_outcome *out, char *err, size_t errlen)
{
	struct pr_answer a = { r->status, r->body.data, r->retry_after_s,
			    r->rl_exhausted, r->rl_reset };

	return pr_answer_fail((int)(c->p - pr_providers), c->base_url, &a,
	    what, out, err, errlen);
}

/* The scheme://host[:port] of u, for keeping the token on that host. */
static size_t
pr_origin_len(const char *u)
{
	const char	*s = strstr(u, "://"), *e;

	if (s == NULL)
		return 0;
	e = strchr(s + 3, '/');
	return e != NULL ? (size_t)(e - u) : strlen(u);
}

/* Called for each listed PR; nonzero stops the listing (returned). */
typedef int pr_visit_fn(const struct pr_ctx *, const cJSON *item, void *arg);

/*
 * List PRs with query (then the head filter and the provider's tail when
 * filter is set), following pagination on the configured host only.
 * 0 when every item was visited, visit's value when it stopped, -1 on
 * failure.
 */
static int
pr_list(const struct pr_ctx *c, const char *query, int filter,
    pr_visit_fn *visit, void *arg, struct pr_outcome *out, char *err,
    size_t errlen)
{
	struct pr_reply	 r;
	cJSON		*j = NULL, *item;
	const cJSON	*items, *nx;
	char		*url, *q;
	size_t		 olen = pr_origin_len(c->base_url);
	int		 page, rc = -1;

	q = filter && c->p->list_tail != NULL ? xasprintf("%s%s%s", query,
	    c->head_filter, c->p->list_tail) : xstrdup(query);
	url = xasprintf("%s/%s%s", c->base_url, c->p->pulls, q);
	free(q);
	memset(&r, 0, sizeof(r));
	for (page = 0; url != NULL && page < PR_MAX_PAGES; page++) {
		if (pr_http(c, "GET", url, NULL, &r, err, errlen) == -1)
			goto out;
		if (r.status != 200) {
			pr_fail(c, &r, "listing pull requests", out, err,
			    errlen);
			goto out;
		}
		cJSON_Delete(j);
		if ((j = cJSON_Parse(r.body.data)) == NULL ||
		    !cJSON_IsArray(items = c->p->items_key != NULL ?
		    pr_get(j, c->p->items_key) : j)) {
			snprintf(err, errlen, "%s: listing pull requests: "
			    "not a list", c->p->name);
			goto out;
		}
		cJSON_ArrayForEach(item, items)
			if ((rc = visit(c, item, arg)) != 0)
				goto out;
		rc = -1;
		free(url);
		url = NULL;
		if (c->p->next == PR_NEXT_LINK && r.next != NULL)
			url = xstrdup(r.next);
		else if (c->p->next == PR_NEXT_BODY &&
		    cJSON_IsString(nx = cJSON_GetObjectItem(j, "next")))
			url = xstrdup(nx->valuestring);
		/* The token is sent to the configured host only. */
		if (url != NULL && (pr_origin_len(url) != olen ||
		    strncmp(url, c->base_url, olen) != 0)) {
			snprintf(err, errlen, "%s: the next page is on another "
			    "host; not following it", c->p->name);
			goto out;
		}
		pr_reply_reset(&r);
	}
	rc = 0;
out:
	free(url);
	cJSON_Delete(j);
	pr_reply_reset(&r);
	return rc;
}

/* The head branch of a listed PR, or NULL. */
static const char *
pr_head_of(const struct pr_ctx *c, const cJSON *item)
{
	const cJSON	*h = pr_get(item, c->p->head_path);

	return cJSON_IsString(h) ? h->valuestring : NULL;
}

struct pr_match {
	const char	*head;
	int		 closed;
	cJSON		*found;
};

static int
pr_match_cb(const struct pr_ctx *c, const cJSON *item, void *arg)
{
	struct pr_match	*m = arg;
	const char	*h = pr_head_of(c, item);
	const cJSON	*merged;

	if (m->closed && c->p->merged_path != NULL &&
	    (merged = pr_get(item, c->p->merged_path)) != NULL &&
	    !cJSON_IsNull(merged) && !cJSON_IsFalse(merged))
		return 0;	/* merged, not declined */
	if (h == NULL || strcmp(h, m->head) != 0)
		return 0;
	m->found = cJSON_Duplicate(item, 1);
	return 1;
}

/*
 * The open (closed: closed without merge) PR whose source branch is head:
 * *found (a detached item) or NULL.  0, or -1 on failure.
 */
static int
pr_find(const struct pr_ctx *c, const char *head, int closed,
    cJSON **found, struct pr_outcome *out, char *err, size_t errlen)
{
	struct pr_match	 m = { head, closed, NULL };

	*found = NULL;
	if (pr_list(c, closed ? c->p->closed_query : c->p->list_query, 1,
	    pr_match_cb, &m, out, err, errlen) == -1) {
		cJSON_Delete(m.found);
		return -1;
	}
	*found = m.found;
	return 0;
}

struct pr_text {
	const struct pr_change	*ch;
	const struct config_repo *repo;
	const char		*branch;
	char			 job[32];
};

static const char *
pr_text_var(const char *name, void *arg)
{
	struct pr_text		*t = arg;
	const struct pr_change	*c = t->ch;
	const char		*s;

	if (strcmp(name, "app") == 0)
		s = c->app;
	else if (strcmp(name, "image") == 0)
		s = c->image;
	else if (strcmp(name, "repository") == 0)
		s = c->repository;
	else if (strcmp(name, "old") == 0)
		s = c->old != NULL ? c->old : "(none)";
	else if (strcmp(name, "new") == 0 || strcmp(name, "tag") == 0)
		s = c->new_tag;
	else if (strcmp(name, "digest") == 0)
		s = c->digest;
	else if (strcmp(name, "event") == 0)
		s = c->event;
	else if (strcmp(name, "repo") == 0)
		s = t->repo->name;
	else if (strcmp(name, "branch") == 0)
		s = t->branch;
	else if (strcmp(name, "job") == 0) {
		snprintf(t->job, sizeof(t->job), "%lld", c->job);
		s = t->job;
	} else
		return NULL;
	return s != NULL ? s : "";
}

#define PR_DEFAULT_TITLE	"deploy({{app}}): {{image}} {{old}} -> {{new}}"

/* Title and body of the PR; -1 with err on a template failure. */
static int
pr_texts(const struct config_repo *repo, const char *head, const char *base,
    const struct pr_change *ch, size_t n, char **title, char **body,
    char *err, size_t errlen)
{
	const struct config_pull_request *pr = &repo->pull_request;
	struct pr_text	 t;
	struct buf	 tb, bb;
	size_t		 i;

	memset(&t, 0, sizeof(t));
	t.ch = &ch[0];
	t.repo = repo;
	t.branch = head;
	buf_init(&tb, 1024);
	buf_init(&bb, 65536);
	if (n > 1 && pr->title == NULL)
		buf_printf(&tb, "deploy: %zu image updates", n);
	else if (pr_render(pr->title != NULL ? pr->title : PR_DEFAULT_TITLE,
	    pr_text_var, &t, &tb, err, errlen) == -1)
		goto bad;
	if (pr->body != NULL) {
		if (pr_render(pr->body, pr_text_var, &t, &bb, err, errlen) ==
		    -1)
			goto bad;
		buf_addstr(&bb, "\n\n");
	}
	buf_addstr(&bb, "Image updates:\n\n");
	for (i = 0; i < n; i++)
		buf_printf(&bb, "- `%s` (app `%s`): `%s` -> `%s`\n"
		    "  - digest: %s\n  - event: %s (job %lld)\n",
		    ch[i].repository, ch[i].app, ch[i].old != NULL ?
		    ch[i].old : "(none)", ch[i].new_tag, ch[i].digest != NULL ?
		    ch[i].digest : "(not known)", ch[i].event != NULL ?
		    ch[i].event : "(none)", ch[i].job);
	if (buf_printf(&bb, "\nBranch `%s`, from `%s`. Merging it deploys "
	    "the update.\n", head, base) == -1) {
		snprintf(err, errlen, "pull request body too long");
		goto bad;
	}
	*title = buf_steal(&tb, NULL);
	*body = buf_steal(&bb, NULL);
	return 0;
bad:
	buf_free(&tb);
	buf_free(&bb);
	return -1;
}

static char *
pr_labels_csv(const struct config_pull_request *pr)
{
	struct buf	 b;
	size_t		 i;

	buf_init(&b, 0);
	for (i = 0; i < pr->nlabels; i++)
		buf_printf(&b, "%s%s", i > 0 ? "," : "", pr->labels[i]);
	return buf_steal(&b, NULL);
}

/* Record url and number of a PR object; -1 when they are missing. */
static int
pr_take(const struct pr_ctx *c, const cJSON *item, struct pr_outcome *out,
    char *err, size_t errlen)
{
	const cJSON	*u = pr_get(item, c->p->url_key);
	const cJSON	*num = pr_get(item, c->p->number_key);

	if (!cJSON_IsString(u) || !cJSON_IsNumber(num)) {
		snprintf(err, errlen, "%s: the pull request has no %s or %s",
		    c->p->name, c->p->url_key, c->p->number_key);
		return -1;
	}
	free(out->url);
	out->url = xstrdup(u->valuestring);
	out->number = (long long)num->valuedouble;
	return 0;
}

/* Send json with method to url; expects 2xx; *item: the answer. */
static int
pr_send(const struct pr_ctx *c, const char *method, const char *url,
    const cJSON *json, const char *what, cJSON **item, long *status,
    struct pr_outcome *out, char *err, size_t errlen)
{
	struct pr_reply	 r;
	int		 rc = -1;

	if (item != NULL)
		*item = NULL;
	if (pr_http(c, method, url, json, &r, err, errlen) == -1)
		return -1;
	*status = r.status;
	if (r.status < 200 || r.status > 299) {
		pr_fail(c, &r, what, out, err, errlen);
		goto out;
	}
	if (item != NULL && (*item = cJSON_Parse(r.body.data)) == NULL) {
		snprintf(err, errlen, "%s %s: the answer is not JSON",
		    c->p->name, what);
		goto out;
	}
	rc = 0;
out:
	pr_reply_reset(&r);
	return rc;
}

/* The fields create and update share: title, body, GitLab's labels. */
static cJSON *
pr_payload(const struct pr_ctx *c, const char *title, const char *body,
    const char *labels_key)
{
	cJSON	*j = cJSON_CreateObject();
	char	*csv;

	cJSON_AddStringToObject(j, "title", title);
	cJSON_AddStringToObject(j, c->p->body_key, body);
	if (c->p->labels == PR_LABELS_CSV && c->repo->pull_request.nlabels) {
		csv = pr_labels_csv(&c->repo->pull_request);
		cJSON_AddStringToObject(j, labels_key, csv);
		free(csv);
	}
	return j;
}

/* Send j, take the PR from the answer; *st the HTTP status.  Frees j. */
static int
pr_write(const struct pr_ctx *c, const char *method, char *url, cJSON *j,
    const char *what, long *st, struct pr_outcome *out, char *err,
    size_t errlen)
{
	cJSON	*item = NULL;
	int	 rc;

	rc = pr_send(c, method, url, j, what, &item, st, out, err, errlen);
	if (rc == 0)
		rc = pr_take(c, item, out, err, errlen);
	free(url);
	cJSON_Delete(item);
	cJSON_Delete(j);
	return rc;
}

static int
pr_update(const struct pr_ctx *c, const char *title, const char *body,
    struct pr_outcome *out, char *err, size_t errlen)
{
	long	 st;

	/* add_labels: GitLab keeps labels people set meanwhile. */
	return pr_write(c, c->p->update_method, xasprintf("%s/%s/%lld",
	    c->base_url, c->p->pulls, out->number), pr_payload(c, title, body,
	    "add_labels"), "updating the pull request", &st, out, err, errlen);
}

/* 0 opened, 1 the host says one exists (look it up), -1 failed. */
static int
pr_create(const struct pr_ctx *c, const char *head, const char *base,
    const char *title, const char *body, struct pr_outcome *out,
    char *err, size_t errlen)
{
	cJSON	*j = pr_payload(c, title, body, "labels"), *o;
	long	 st = 0;

	if (c->p->head_key != NULL) {
		cJSON_AddStringToObject(j, c->p->head_key, head);
		cJSON_AddStringToObject(j, c->p->base_key, base);
	} else {
		o = cJSON_AddObjectToObject(cJSON_AddObjectToObject(j,
		    "source"), "branch");
		cJSON_AddStringToObject(o, "name", head);
		o = cJSON_AddObjectToObject(cJSON_AddObjectToObject(j,
		    "destination"), "branch");
		cJSON_AddStringToObject(o, "name", base);
	}
	if (pr_write(c, "POST", xasprintf("%s/%s", c->base_url, c->p->pulls),
	    j, "opening the pull request", &st, out, err, errlen) == 0) {
		out->created = 1;
		return 0;
	}
	return st == 409 || st == 422 ? 1 : -1;
}

/* GitHub and Gitea label PRs as issues; adding is idempotent. */
static int
pr_add_labels(const struct pr_ctx *c, struct pr_outcome *out, char *err,
    size_t errlen)
{
	const struct config_pull_request *pr = &c->repo->pull_request;
	cJSON	*j, *a;
	char	*url;
	long	 st;
	size_t	 i;
	int	 rc;

	if (c->p->labels != PR_LABELS_ISSUE || pr->nlabels == 0)
		return 0;
	j = cJSON_CreateObject();
	a = cJSON_AddArrayToObject(j, "labels");
	for (i = 0; i < pr->nlabels; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(pr->labels[i]));
	url = xasprintf("%s/issues/%lld/labels", c->base_url, out->number);
	rc = pr_send(c, "POST", url, j, "labelling the pull request", NULL,
	    &st, out, err, errlen);
	free(url);
	cJSON_Delete(j);
	return rc;
}

char *
pr_repo_api_url(int provider, const char *api_url, const char *owner,
    const char *name)
{
	const struct pr_provider *p = &pr_providers[provider];
	const char	*api = api_url != NULL ? api_url : p->api, *own;
	char		*e1, *e2, *url;
	size_t		 alen = strlen(api);

	while (alen > 0 && api[alen - 1] == '/')
		alen--;
	if (p->nested) {
		e2 = xasprintf("%s/%s", owner, name);
		e1 = pr_escape(e2);
		url = xasprintf("%.*s/%s/%s", (int)alen, api, p->repos, e1);
	} else {
		/* GitHub, Gitea, Bitbucket: the last two path parts. */
		own = strrchr(owner, '/') != NULL ? strrchr(owner, '/') + 1 :
		    owner;
		e1 = pr_escape(own);
		e2 = pr_escape(name);
		url = xasprintf("%.*s/%s/%s/%s", (int)alen, api, p->repos, e1,
		    e2);
	}
	free(e1);
	free(e2);
	return url;
}

const char *
pr_provider_auth(int provider)
{
	return pr_providers[provider].auth;
}

const char *
pr_provider_accept(int provider)
{
	return pr_providers[provider].accept;
}

static void
pr_ctx_free(struct pr_ctx *c)
{
	if (c->authz != NULL) {
		explicit_bzero(c->authz, strlen(c->authz));
		free(c->authz);
	}
	free(c->base_url);
	free(c->head_filter);
	memset(c, 0, sizeof(*c));
}

/* The provider, repository URL and head filter of repo; -1 with err. */
static int
pr_ctx_init(struct pr_ctx *c, const struct config_repo *repo,
    const char *head, struct pr_outcome *out, char *err, size_t errlen)
{
	const struct config_pull_request *pr = &repo->pull_request;
	char		*owner = NULL, *name = NULL, *filter = NULL;
	const char	*own;

	memset(out, 0, sizeof(*out));
	memset(c, 0, sizeof(*c));
	out->permanent = 1;
	if (pr->provider <= CONFIG_PR_NONE ||
	    pr->provider >= (int)nitems(pr_providers) || pr->token == NULL) {
		snprintf(err, errlen, "pull_request is not configured");
		return -1;
	}
	c->p = &pr_providers[pr->provider];
	c->repo = repo;
	if (pr_repo_path(repo->url, &owner, &name) == -1) {
		snprintf(err, errlen, "%s: no owner/name in the repository "
		    "URL's path", c->p->name);
		return -1;
	}
	out->permanent = 0;
	c->base_url = pr_repo_api_url(pr->provider, pr->api_url, owner, name);
	if (c->p->owner_in_head) {
		own = strrchr(owner, '/') != NULL ? strrchr(owner, '/') + 1 :
		    owner;
		filter = xasprintf("%s:%s", own, head);
	}
	c->head_filter = pr_escape(filter != NULL ? filter : head);
	c->authz = xasprintf("%s%s", c->p->auth, pr->token);
	free(filter);
	free(owner);
	free(name);
	return 0;
}

int
pr_declined(const struct config_repo *repo, const char *head,
    struct pr_outcome *out, char *err, size_t errlen)
{
	struct pr_ctx	 c;
	cJSON		*found = NULL;
	int		 rc = -1;

	if (pr_ctx_init(&c, repo, head, out, err, errlen) == -1)
		goto out;
	if (pr_find(&c, head, 1, &found, out, err, errlen) == -1)
		goto out;
	rc = 0;
	if (found != NULL && (rc = pr_take(&c, found, out, err, errlen)) == 0)
		rc = 1;
out:
	cJSON_Delete(found);
	pr_ctx_free(&c);
	return rc;
}

int
pr_ensure(const struct config_repo *repo, const char *head, const char *base,
    const struct pr_change *ch, size_t n, struct pr_outcome *out, char *err,
    size_t errlen)
{
	struct pr_ctx	 c;
	cJSON		*found = NULL;
	char		*title = NULL, *body = NULL;
	int		 rc = -1, step;

	if (pr_ctx_init(&c, repo, head, out, err, errlen) == -1)
		goto out;
	if (n == 0 || pr_texts(repo, head, base, ch, n, &title, &body, err,
	    errlen) == -1) {
		out->permanent = 1;
		goto out;
	}
	for (step = 0; step < 2; step++) {
		if (pr_find(&c, head, 0, &found, out, err, errlen) == -1)
			goto out;
		if (found != NULL) {
			if (pr_take(&c, found, out, err, errlen) == -1 ||
			    pr_update(&c, title, body, out, err, errlen) == -1)
				goto out;
			break;
		}
		if (step == 1) {
			snprintf(err, errlen, "%s: the host says a pull "
			    "request for %s exists, but none is open", c.p->name,
			    head);
			goto out;
		}
		if ((rc = pr_create(&c, head, base, title, body, out, err,
		    errlen)) == -1)
			goto out;
		rc = -1;
		if (out->created)
			break;
		memset(out, 0, sizeof(*out));
	}
	if (pr_add_labels(&c, out, err, errlen) == -1)
		goto out;
	rc = 0;
out:
	cJSON_Delete(found);
	pr_ctx_free(&c);
	free(title);
	free(body);
	return rc;
}

struct pr_stale {
	const char	*head;
	pr_stale_fn	*stale;
	void		*arg;
	long long	*numbers;
	char		**urls;
	size_t		 n;
};

static int
pr_stale_cb(const struct pr_ctx *c, const cJSON *item, void *arg)
{
	struct pr_stale	*st = arg;
	const char	*h = pr_head_of(c, item);
	const cJSON	*u = pr_get(item, c->p->url_key);
	const cJSON	*num = pr_get(item, c->p->number_key);

	if (h == NULL || strcmp(h, st->head) == 0 || !st->stale(h, st->arg) ||
	    !cJSON_IsString(u) ||
	    !cJSON_IsNumber(num) || st->n >= 100)
		return 0;
	st->numbers = xreallocarray(st->numbers, st->n + 1,
	    sizeof(*st->numbers));
	st->urls = xreallocarray(st->urls, st->n + 1, sizeof(*st->urls));
	st->numbers[st->n] = (long long)num->valuedouble;
	st->urls[st->n++] = xstrdup(u->valuestring);
	return 0;
}

int
pr_close_stale(const struct config_repo *repo, const char *head,
    pr_stale_fn *stale, void *arg, char ***urls, size_t *nurls,
    struct pr_outcome *out, char *err, size_t errlen)
{
	struct pr_ctx	 c;
	struct pr_stale	 st;
	cJSON		*j;
	char		*url;
	long		 status;
	size_t		 i;
	int		 rc = -1;

	*urls = NULL;
	*nurls = 0;
	memset(&st, 0, sizeof(st));
	st.head = head;
	st.stale = stale;
	st.arg = arg;
	if (pr_ctx_init(&c, repo, head, out, err, errlen) == -1 ||
	    pr_list(&c, c.p->all_query, 0, pr_stale_cb, &st, out, err,
	    errlen) == -1)
		goto out;
	for (i = 0; i < st.n; i++) {
		j = NULL;
		if (c.p->close_key != NULL) {
			j = cJSON_CreateObject();
			cJSON_AddStringToObject(j, c.p->close_key,
			    c.p->close_value);
		}
		url = xasprintf("%s/%s/%lld%s", c.base_url, c.p->pulls,
		    st.numbers[i], c.p->close_suffix);
		rc = pr_send(&c, c.p->close_method, url, j, "closing a stale "
		    "pull request", NULL, &status, out, err, errlen);
		free(url);
		cJSON_Delete(j);
		if (rc == -1)
			goto out;
		(*urls) = xreallocarray(*urls, *nurls + 1, sizeof(**urls));
		(*urls)[(*nurls)++] = st.urls[i];
		st.urls[i] = NULL;
	}
	rc = 0;
out:
	for (i = 0; i < st.n; i++)
		free(st.urls[i]);
	free(st.urls);
	free(st.numbers);
	pr_ctx_free(&c);
	return rc;
}

void
pr_outcome_free(struct pr_outcome *o)
{
	free(o->url);
	o->url = NULL;
}
