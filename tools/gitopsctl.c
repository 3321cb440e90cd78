/*
 * gitopsctl: command-line client of gitopsd's admin API (DESIGN.md
 * section 5; the JSON shapes are documented in docs/operations.md).
 *
 * One table of commands (ctl_cmds[]); each command makes one HTTP request
 * with libcurl and prints the answer either as the API's JSON, untouched
 * (--json, for scripts), or as aligned tables (for people).  Every string
 * the daemon sends is treated as untrusted when printed to a terminal:
 * control characters are replaced so an error message cannot move the
 * cursor or retitle the window.
 *
 * Exit status: 0 ok; 1 the daemon answered with an error (400, 401, 404,
 * 409, 5xx, or a body that is not the expected JSON); 2 usage error, a
 * token file that cannot be read, or the daemon could not be reached.
 */
#include <curl/curl.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job.h"
#include "util.h"

#define CTL_EXIT_OK		0
#define CTL_EXIT_ERROR		1
#define CTL_EXIT_USAGE		2

#define CTL_DEFAULT_URL		"http://127.0.0.1:9090"
#define CTL_MAX_RESPONSE	(64u * 1024 * 1024)
#define CTL_CONNECT_TIMEOUT_S	5L
#define CTL_DEFAULT_TIMEOUT_S	30L
#define CTL_ERROR_WIDTH		60	/* error column in list tables */
#define CTL_REV_WIDTH		12	/* short revisions in list tables */

/* Command options; a command lists the ones it accepts. */
#define CTL_OPT_APP	0x01
#define CTL_OPT_STATE	0x02
#define CTL_OPT_KIND	0x04
#define CTL_OPT_LIMIT	0x08
#define CTL_OPT_AFTER	0x10

struct ctl {
	char		*url;		/* base URL, no trailing slash */
	char		*token;		/* NULL: send no Authorization */
	int		 json;
	long		 timeout_s;
	const char	*app;
	const char	*state;
	const char	*kind;
	long		 limit;		/* 0: the daemon's default */
	long long	 after;		/* 0: from the newest */
	unsigned	 opts;		/* CTL_OPT_* given on the command line */
};

struct ctl_response {
	long		 status;
	struct buf	 body;
	cJSON		*json;
};

struct ctl_cmd {
	const char	*name;
	const char	*args;		/* usage of the positional arguments */
	int		 nargs;
	unsigned	 opts;		/* CTL_OPT_* accepted */
	int		(*exec)(struct ctl *, char **);
	const char	*help;
};

/*
 * A table of cells printed with aligned columns.  Cells are sanitized
 * copies; the column width is counted in characters, not bytes.
 */
struct ctl_table {
	size_t		 ncols;
	char		**cells;	/* row-major */
	size_t		 ncells;
	size_t		 alloc;
	int		 header;	/* first row is a header */
	const char	*indent;
};

/*
 * Copy s for display: invalid UTF-8, C0 and C1 control characters become
 * '?', tabs and newlines become spaces.  At most max characters are kept
 * (0: all); a cut string ends in "...".  Returns a malloc'd string and its
 * width in characters in *widthp.
 */
static char *
ctl_sanitize(const char *s, size_t max, size_t *widthp)
{
	const unsigned char	*p = (const unsigned char *)s;
	struct buf		 out;
	size_t			 width = 0, n, i;
	unsigned		 cp;
	char			*r;

	buf_init(&out, 0);
	while (*p != '\0') {
		if (max != 0 && width == max && max > 3) {
			/* Cut: replace the last three characters by "...". */
			size_t	cut = out.len;
			int	back = 3;

			while (cut > 0 && back > 0) {
				cut--;
				if ((out.data[cut] & 0xc0) != 0x80)
					back--;
			}
			out.len = cut;
			out.data[cut] = '\0';
			(void)buf_addstr(&out, "...");
			break;
		}
		if (*p < 0x80) {
			if (*p == '\t' || *p == '\n' || *p == '\r')
				(void)buf_add(&out, " ", 1);
			else if (*p < 0x20 || *p == 0x7f)
				(void)buf_add(&out, "?", 1);
			else
				(void)buf_add(&out, p, 1);
			p++;
			width++;
			continue;
		}
		if ((*p & 0xe0) == 0xc0) {
			n = 2;
			cp = *p & 0x1f;
		} else if ((*p & 0xf0) == 0xe0) {
			n = 3;
			cp = *p & 0x0f;
		} else if ((*p & 0xf8) == 0xf0) {
			n = 4;
			cp = *p & 0x07;
		} else
			n = 0;
		for (i = 1; n != 0 && i < n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				n = 0;
			else
				cp = (cp << 6) | (p[i] & 0x3f);
		}
		/* Overlong forms, surrogates, C1 controls, beyond U+10FFFF. */
		if (n == 0 || (n == 2 && cp < 0xa0) || (n == 3 && cp < 0x800) ||
		    (n == 4 && cp < 0x10000) || (cp >= 0xd800 && cp <= 0xdfff) ||
		    cp > 0x10ffff) {
			(void)buf_add(&out, "?", 1);
			p++;
		} else {
			(void)buf_add(&out, p, n);
			p += n;
		}
		width++;
	}
	r = buf_steal(&out, NULL);
	if (widthp != NULL) {
		/* Recount: the cut may have changed it. */
		for (width = 0, p = (const unsigned char *)r; *p != '\0'; p++)
			if ((*p & 0xc0) != 0x80)
				width++;
		*widthp = width;
	}
	return r;
}

static struct ctl_table *
ctl_table_new(size_t ncols, int header, const char *indent)
{
	struct ctl_table	*t;

	t = xcalloc(1, sizeof *t);
	t->ncols = ncols;
	t->header = header;
	t->indent = indent != NULL ? indent : "";
	return t;
}

/* Append one cell (copied and sanitized); rows fill left to right. */
static void
ctl_table_add(struct ctl_table *t, const char *s, size_t max)
{
	if (t->ncells == t->alloc) {
		t->alloc = t->alloc == 0 ? 64 : t->alloc * 2;
		t->cells = xreallocarray(t->cells, t->alloc, sizeof *t->cells);
	}
	t->cells[t->ncells++] = ctl_sanitize(s != NULL ? s : "-", max, NULL);
}

static void
ctl_table_addf(struct ctl_table *, size_t, const char *, ...)
    __attribute__((format(printf, 3, 4)));

static void
ctl_table_addf(struct ctl_table *t, size_t max, const char *fmt, ...)
{
	va_list	 ap;
	char	*s;

	va_start(ap, fmt);
	s = xvasprintf(fmt, ap);
	va_end(ap);
	ctl_table_add(t, s, max);
	free(s);
}

static size_t
ctl_width(const char *s)
{
	size_t	w = 0;

	for (; *s != '\0'; s++)
		if ((*s & 0xc0) != 0x80)
			w++;
	return w;
}

/* Rows in the table, the header included. */
static size_t
ctl_table_rows(const struct ctl_table *t)
{
	return t->ncols == 0 ? 0 : t->ncells / t->ncols;
}

/*
 * Print with two spaces between columns; the last column is not padded so
 * no line ends in blanks.  A short last row is padded with "-".
 */
static void
ctl_table_print(struct ctl_table *t, FILE *fp)
{
	size_t	*w, r, c, rows;

	while (t->ncols != 0 && t->ncells % t->ncols != 0)
		ctl_table_add(t, "-", 0);
	rows = ctl_table_rows(t);
	w = xcalloc(t->ncols, sizeof *w);
	for (r = 0; r < rows; r++)
		for (c = 0; c < t->ncols; c++) {
			size_t	cw = ctl_width(t->cells[r * t->ncols + c]);

			if (cw > w[c])
				w[c] = cw;
		}
	for (r = 0; r < rows; r++) {
		fputs(t->indent, fp);
		for (c = 0; c < t->ncols; c++) {
			const char	*cell = t->cells[r * t->ncols + c];

			fputs(cell, fp);
			if (c + 1 < t->ncols)
				fprintf(fp, "%*s", (int)(w[c] - ctl_width(cell) + 2),
				    "");
		}
		fputc('\n', fp);
	}
	free(w);
}

static void
ctl_table_free(struct ctl_table *t)
{
	size_t	i;

	if (t == NULL)
		return;
	for (i = 0; i < t->ncells; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}

/*
 * Text of a JSON value for a table cell: "-" for null or missing, integers
 * without a fraction, yes/no for booleans, compact JSON for arrays and
 * objects.  Returns a malloc'd string.
 */
static char *
ctl_value(const cJSON *v)
{
	char	*s;

	if (v == NULL || cJSON_IsNull(v))
		return xstrdup("-");
	if (cJSON_IsString(v))
		return xstrdup(v->valuestring != NULL ? v->valuestring : "");
	if (cJSON_IsBool(v))
		return xstrdup(cJSON_IsTrue(v) ? "yes" : "no");
	if (cJSON_IsNumber(v)) {
		double	d = v->valuedouble;

		if (isfinite(d) && d == floor(d) && fabs(d) < 9007199254740992.0)
			return xasprintf("%lld", (long long)d);
		return xasprintf("%g", d);
	}
	if ((s = cJSON_PrintUnformatted(v)) == NULL)
		return xstrdup("?");
	/* cJSON allocates with malloc by default: hand back as is. */
	return s;
}

static char *
ctl_field(const cJSON *obj, const char *key)
{
	return ctl_value(cJSON_GetObjectItemCaseSensitive(obj, key));
}

/* A table cell from a field; max characters (0: all). */
static void
ctl_table_field(struct ctl_table *t, const cJSON *obj, const char *key,
    size_t max)
{
	char	*s = ctl_field(obj, key);

	ctl_table_add(t, s, max);
	free(s);
}

/* "2/8" from attempts and max_attempts. */
static void
ctl_table_attempts(struct ctl_table *t, const cJSON *job)
{
	char	*a = ctl_field(job, "attempts");
	char	*m = ctl_field(job, "max_attempts");

	ctl_table_addf(t, 0, "%s/%s", a, m);
	free(a);
	free(m);
}

/* The pull request an update-image job opened or updated, else "-". */
static void
ctl_table_pr(struct ctl_table *t, const cJSON *job)
{
	const cJSON	*r = cJSON_GetObjectItemCaseSensitive(job, "result");
	const cJSON	*d = cJSON_GetObjectItemCaseSensitive(r, "detail");
	const cJSON	*u = cJSON_GetObjectItemCaseSensitive(d, "pr_url");

	ctl_table_add(t, cJSON_IsString(u) ? u->valuestring : "-", 0);
}

/*
 * What a job works on: "image:tag" (or "image@digest") for update-image,
 * the short revision for sync, "-" otherwise.
 */
static char *
ctl_job_target(const cJSON *job, int full)
{
	const cJSON	*image, *tag, *digest, *rev;

	image = cJSON_GetObjectItemCaseSensitive(job, "image");
	tag = cJSON_GetObjectItemCaseSensitive(job, "tag");
	digest = cJSON_GetObjectItemCaseSensitive(job, "digest");
	rev = cJSON_GetObjectItemCaseSensitive(job, "revision");
	if (cJSON_IsString(image)) {
		if (cJSON_IsString(tag))
			return xasprintf("%s:%s", image->valuestring,
			    tag->valuestring);
		if (cJSON_IsString(digest))
			return xasprintf("%s@%s", image->valuestring,
			    digest->valuestring);
		return xstrdup(image->valuestring);
	}
	if (cJSON_IsString(rev)) {
		if (full)
			return xstrdup(rev->valuestring);
		return xstrndup(rev->valuestring, CTL_REV_WIDTH);
	}
	return xstrdup("-");
}

/* Receive callback: append to the capped buffer; a full buffer aborts. */
static size_t
ctl_write_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct buf	*b = arg;

	if (buf_add(b, ptr, size * nmemb) == -1)
		return 0;
	return size * nmemb;
}

/*
 * Percent-encode one path segment or query value.  Returns a malloc'd
 * string.
 */
static char *
ctl_escape(const char *s)
{
	struct buf	 b;
	const char	*p;
	char		*r;

	buf_init(&b, 0);
	for (p = s; *p != '\0'; p++) {
		unsigned char	c = (unsigned char)*p;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~')
			(void)buf_add(&b, p, 1);
		else
			(void)buf_printf(&b, "%%%02X", c);
	}
	r = buf_steal(&b, NULL);
	return r;
}

static void
ctl_response_free(struct ctl_response *r)
{
	buf_free(&r->body);
	cJSON_Delete(r->json);
	r->json = NULL;
}

/* The daemon's {"error": ...} text of a failed answer, sanitized. */
static char *
ctl_error_text(const struct ctl_response *r)
{
	const cJSON	*e;

	e = cJSON_GetObjectItemCaseSensitive(r->json, "error");
	if (cJSON_IsString(e) && e->valuestring != NULL)
		return ctl_sanitize(e->valuestring, 500, NULL);
	if (r->body.len == 0)
		return xstrdup("(empty answer)");
	return ctl_sanitize(r->body.data, 200, NULL);
}

/*
 * One request to the admin API.  path starts with "/".  Returns
 * CTL_EXIT_OK with r->json set to the parsed body of a 2xx answer, or the
 * exit status after printing why.  With --json the body of any answer is
 * written to stdout as it came.  r is freed by the caller.
 */
static int
ctl_request(struct ctl *ctl, const char *method, const char *path,
    struct ctl_response *r)
{
	CURL			*curl = NULL;
	struct curl_slist	*hdrs = NULL, *h;
	char			 errbuf[CURL_ERROR_SIZE];
	char			*url = NULL, *auth = NULL, *msg = NULL;
	CURLcode		 cc;
	int			 rc = CTL_EXIT_USAGE;

	memset(r, 0, sizeof *r);
	buf_init(&r->body, CTL_MAX_RESPONSE);
	errbuf[0] = '\0';
	url = xasprintf("%s%s", ctl->url, path);
	if ((curl = curl_easy_init()) == NULL) {
		fprintf(stderr, "gitopsctl: cannot initialize libcurl\n");
		goto out;
	}
	if ((h = curl_slist_append(hdrs, "Accept: application/json")) == NULL)
		goto nomem;
	hdrs = h;
	/* No body: libcurl's default form content type the API refuses. */
	if (strcmp(method, "POST") == 0) {
		if ((h = curl_slist_append(hdrs, "Content-Type:")) == NULL)
			goto nomem;
		hdrs = h;
	}
	if (ctl->token != NULL) {
		auth = xasprintf("Authorization: Bearer %s", ctl->token);
		if ((h = curl_slist_append(hdrs, auth)) == NULL)
			goto nomem;
		hdrs = h;
	}
	if (curl_easy_setopt(curl, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https") !=
	    CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, ctl_write_cb) !=
	    CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &r->body) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT,
	    CTL_CONNECT_TIMEOUT_S) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_TIMEOUT, ctl->timeout_s) !=
	    CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_USERAGENT,
	    "gitopsctl/" GITOPSD_VERSION) != CURLE_OK) {
		fprintf(stderr, "gitopsctl: cannot set up the request to %s\n",
		    ctl->url);
		goto out;
	}
	/*
	 * Never follow redirects, and ignore http_proxy and friends: the
	 * bearer token goes to the admin address and nowhere else.
	 */
	if (curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_PROXY, "") != CURLE_OK) {
		fprintf(stderr, "gitopsctl: cannot set up the request to %s\n",
		    ctl->url);
		goto out;
	}
	if (strcmp(method, "POST") == 0) {
		if (curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "") != CURLE_OK ||
		    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, 0L) !=
		    CURLE_OK) {
			fprintf(stderr, "gitopsctl: cannot set up a POST\n");
			goto out;
		}
	}

	cc = curl_easy_perform(curl);
	if (cc == CURLE_WRITE_ERROR) {
		/* Only ctl_write_cb fails writes: the answer hit the cap. */
		fprintf(stderr, "gitopsctl: the answer from %s is larger than "
		    "%u bytes\n", ctl->url, CTL_MAX_RESPONSE);
		rc = CTL_EXIT_ERROR;
		goto out;
	}
	if (cc != CURLE_OK) {
		fprintf(stderr, "gitopsctl: cannot reach gitopsd at %s: %s "
		    "(is gitopsd running? set --url or GITOPSD_URL)\n",
		    ctl->url, errbuf[0] != '\0' ? errbuf :
		    curl_easy_strerror(cc));
		goto out;
	}
	if (curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->status) !=
	    CURLE_OK) {
		fprintf(stderr, "gitopsctl: no HTTP status from %s\n", ctl->url);
		goto out;
	}

	rc = CTL_EXIT_ERROR;
	if (r->body.len > 0)
		r->json = cJSON_ParseWithLength(r->body.data, r->body.len);
	if (ctl->json && r->body.len > 0) {
		fwrite(r->body.data, 1, r->body.len, stdout);
		if (r->body.data[r->body.len - 1] != '\n')
			fputc('\n', stdout);
	}
	if (r->status == 401) {
		msg = ctl_error_text(r);
		if (ctl->token == NULL)
			fprintf(stderr, "gitopsctl: gitopsd requires an admin "
			    "token (HTTP 401: %s); pass --token-file FILE or "
			    "set GITOPSD_TOKEN_FILE\n", msg);
		else
			fprintf(stderr, "gitopsctl: gitopsd refused the admin "
			    "token (HTTP 401: %s); check --token-file or "
			    "GITOPSD_TOKEN_FILE\n", msg);
		goto out;
	}
	if (r->status < 200 || r->status > 299) {
		msg = ctl_error_text(r);
		fprintf(stderr, "gitopsctl: %s %s: %s (HTTP %ld)\n", method, path,
		    msg, r->status);
		goto out;
	}
	if (!cJSON_IsObject(r->json)) {
		fprintf(stderr, "gitopsctl: %s %s: the answer is not a JSON "
		    "object (is %s gitopsd's admin address?)\n", method, path,
		    ctl->url);
		goto out;
	}
	rc = CTL_EXIT_OK;
	goto out;

nomem:
	fprintf(stderr, "gitopsctl: out of memory\n");
out:
	free(msg);
	if (auth != NULL) {
		/* The header held the token. */
		explicit_bzero(auth, strlen(auth));
		free(auth);
	}
	curl_slist_free_all(hdrs);
	if (curl != NULL)
		curl_easy_cleanup(curl);
	free(url);
	return rc;
}

/* The array under key of a 2xx answer, or NULL after saying why. */
static const cJSON *
ctl_array(const struct ctl_response *r, const char *key)
{
	const cJSON	*a = cJSON_GetObjectItemCaseSensitive(r->json, key);

	if (!cJSON_IsArray(a)) {
		fprintf(stderr, "gitopsctl: unexpected answer from gitopsd: no "
		    "\"%s\" array\n", key);
		return NULL;
	}
	return a;
}

/* Say how to get the next page when the daemon has more. */
static void
ctl_print_next(const struct ctl_response *r, const char *what)
{
	const cJSON	*next = cJSON_GetObjectItemCaseSensitive(r->json, "next");

	if (cJSON_IsNumber(next))
		fprintf(stderr, "(more %s: add --after %lld)\n", what,
		    (long long)next->valuedouble);
}

/* Append "&key=value" (the first one with "?") to a query string. */
static void
ctl_query_add(struct buf *q, const char *key, const char *value)
{
	char	*v = ctl_escape(value);

	(void)buf_printf(q, "%s%s=%s", q->len == 0 ? "?" : "&", key, v);
	free(v);
}

/* The query of a listing: ?app=&state=&kind=&limit=&after=. */
static char *
ctl_query(const struct ctl *ctl)
{
	struct buf	 q;
	char		 num[32];

	buf_init(&q, 0);
	if (ctl->app != NULL)
		ctl_query_add(&q, "app", ctl->app);
	if (ctl->state != NULL)
		ctl_query_add(&q, "state", ctl->state);
	if (ctl->kind != NULL)
		ctl_query_add(&q, "kind", ctl->kind);
	if (ctl->limit > 0) {
		snprintf(num, sizeof num, "%ld", ctl->limit);
		ctl_query_add(&q, "limit", num);
	}
	if (ctl->after > 0) {
		snprintf(num, sizeof num, "%lld", ctl->after);
		ctl_query_add(&q, "after", num);
	}
	return buf_steal(&q, NULL);
}

/* "ID KIND STATE" of an app's last job, or "-". */
static void
ctl_table_last_job(struct ctl_table *t, const cJSON *app)
{
	const cJSON	*last;
	char		*id, *kind, *state;

	last = cJSON_GetObjectItemCaseSensitive(app, "last_job");
	if (!cJSON_IsObject(last)) {
		ctl_table_add(t, "-", 0);
		return;
	}
	id = ctl_field(last, "id");
	kind = ctl_field(last, "kind");
	state = ctl_field(last, "state");
	ctl_table_addf(t, 0, "%s %s %s", id, kind, state);
	free(id);
	free(kind);
	free(state);
}

/* "RESULT TIME" of the last poll in o's field key, "-" when not polled. */
static void
ctl_table_poll_of(struct ctl_table *t, const cJSON *o, const char *key)
{
	const cJSON	*poll;
	char		*result, *last;

	poll = cJSON_GetObjectItemCaseSensitive(o, key);
	if (!cJSON_IsObject(poll)) {
		ctl_table_add(t, "-", 0);
		return;
	}
	result = ctl_field(poll, "result");
	last = ctl_field(poll, "last");
	if (strcmp(last, "-") == 0)
		ctl_table_add(t, "not yet", 0);
	else
		ctl_table_addf(t, 0, "%s %s", result, last);
	free(result);
	free(last);
}

/* An image's last registry poll. */
static void
ctl_table_poll(struct ctl_table *t, const cJSON *image)
{
	ctl_table_poll_of(t, image, "poll");
}

/* The last poll of an app's repo. */
static void
ctl_table_repo_poll(struct ctl_table *t, const cJSON *app)
{
	ctl_table_poll_of(t, app, "repo_poll");
}

/*
 * One column of a table, or one "label:" row of a detail view: the field
 * key, cut to max characters (0: all), or where the cell is not one field,
 * cell() adds it.
 */
struct ctl_column {
	const char	*head;
	const char	*key;
	size_t		 max;
	void		(*cell)(struct ctl_table *, const cJSON *);
};

/* The columns of one table or detail view, in order. */
struct ctl_columns {
	const struct ctl_column	*col;
	size_t			 n;
};

/* Column tables are written several short entries a line. */
#define CTL_COLUMNS(a)	{ (a), nitems(a) }
#define CTL_COL(head, key)		{ (head), (key), 0, NULL }
#define CTL_COL_CUT(head, key, max)	{ (head), (key), (max), NULL }
#define CTL_COL_FN(head, fn)		{ (head), NULL, 0, (fn) }

/* Add the cell of column c for obj. */
static void
ctl_table_cell(struct ctl_table *t, const cJSON *obj,
    const struct ctl_column *c)
{
	if (c->cell != NULL)
		c->cell(t, obj);
	else
		ctl_table_field(t, obj, c->key, c->max);
}

/* A table of the objects of array a, with a header row. */
static struct ctl_table *
ctl_table_of(const struct ctl_columns *cols, const cJSON *a,
    const char *indent)
{
	struct ctl_table	*t;
	const cJSON		*item;
	size_t			 i;

	t = ctl_table_new(cols->n, 1, indent);
	for (i = 0; i < cols->n; i++)
		ctl_table_add(t, cols->col[i].head, 0);
	cJSON_ArrayForEach(item, a)
		for (i = 0; i < cols->n; i++)
			ctl_table_cell(t, item, &cols->col[i]);
	return t;
}

/*
 * A listing command: GET path, whose answer holds the array key, and print
 * it as a table (or say none on stderr when it is empty).  A paged listing
 * takes the filter and page options (ctl_query) and hints at the next page.
 */
static int
ctl_list(struct ctl *ctl, const char *path, const char *key,
    const char *none, int paged, const struct ctl_columns *cols)
{
	struct ctl_response	 r;
	struct ctl_table	*t = NULL;
	const cJSON		*a;
	char			*query, *url;
	int			 rc;

	query = paged ? ctl_query(ctl) : xstrdup("");
	url = xasprintf("%s%s", path, query);
	rc = ctl_request(ctl, "GET", url, &r);
	free(url);
	free(query);
	if (rc != CTL_EXIT_OK)
		goto out;
	if ((a = ctl_array(&r, key)) == NULL) {
		rc = CTL_EXIT_ERROR;
		goto out;
	}
	if (ctl->json)
		goto out;
	if (cJSON_GetArraySize(a) == 0) {
		fprintf(stderr, "%s\n", none);
		goto out;
	}
	t = ctl_table_of(cols, a, NULL);
	ctl_table_print(t, stdout);
	if (paged)
		ctl_print_next(&r, key);
out:
	ctl_table_free(t);
	ctl_response_free(&r);
	return rc;
}

/*
 * A detail command: GET path and print the answer as "label:" rows, then
 * its array key, when not empty, as an indented table after "title:".
 */
static int
ctl_show(struct ctl *ctl, const char *path, const struct ctl_columns *rows,
    const char *key, const char *title, const struct ctl_columns *cols)
{
	struct ctl_response	 r;
	struct ctl_table	*t = NULL;
	const cJSON		*a;
	size_t			 i;
	int			 rc;

	if ((rc = ctl_request(ctl, "GET", path, &r)) != CTL_EXIT_OK ||
	    ctl->json)
		goto out;
	t = ctl_table_new(2, 0, NULL);
	for (i = 0; i < rows->n; i++) {
		ctl_table_addf(t, 0, "%s:", rows->col[i].head);
		ctl_table_cell(t, r.json, &rows->col[i]);
	}
	ctl_table_print(t, stdout);
	ctl_table_free(t);
	t = NULL;

	a = cJSON_GetObjectItemCaseSensitive(r.json, key);
	if (cJSON_IsArray(a) && cJSON_GetArraySize(a) > 0) {
		printf("%s:\n", title);
		t = ctl_table_of(cols, a, "  ");
		ctl_table_print(t, stdout);
	}
out:
	ctl_table_free(t);
	ctl_response_free(&r);
	return rc;
}

static int
ctl_cmd_apps(struct ctl *ctl, char **argv)
{
	static const struct ctl_column	col[] = {
		CTL_COL("NAME", "name"), CTL_COL("REPO", "repo"),
		CTL_COL("CLUSTER", "cluster"),
		CTL_COL("NAMESPACE", "namespace"),
		CTL_COL_CUT("REVISION", "revision", CTL_REV_WIDTH),
		CTL_COL("HEALTH", "health"), CTL_COL("SYNCED", "synced_at"),
		CTL_COL_FN("LAST-JOB", ctl_table_last_job),
	};
	static const struct ctl_columns	cols = CTL_COLUMNS(col);

	(void)argv;
	return ctl_list(ctl, "/api/v1/apps", "apps", "no apps configured", 0,
	    &cols);
}

static int
ctl_cmd_app(struct ctl *ctl, char **argv)
{
	static const struct ctl_column	row[] = {
		CTL_COL("name", "name"), CTL_COL("repo", "repo"),
		CTL_COL("branch", "branch"), CTL_COL("path", "path"),
		CTL_COL("cluster", "cluster"),
		CTL_COL("namespace", "namespace"),
		CTL_COL("revision", "revision"), CTL_COL("health", "health"),
		CTL_COL("synced", "synced_at"),
		CTL_COL_FN("repo polled", ctl_table_repo_poll),
		CTL_COL_FN("last job", ctl_table_last_job),
		CTL_COL("last error", "last_error"),
	};
	static const struct ctl_column	image[] = {
		CTL_COL("REPOSITORY", "repository"), CTL_COL("TAG", "tag"),
		CTL_COL("DIGEST", "digest"), CTL_COL_FN("POLLED", ctl_table_poll),
	};
	static const struct ctl_columns	rows = CTL_COLUMNS(row);
	static const struct ctl_columns	images = CTL_COLUMNS(image);
	char	*name, *path;
	int	 rc;

	name = ctl_escape(argv[0]);
	path = xasprintf("/api/v1/apps/%s", name);
	rc = ctl_show(ctl, path, &rows, "images", "images", &images);
	free(path);
	free(name);
	return rc;
}

/* The short target of a job (ctl_job_target). */
static void
ctl_table_target(struct ctl_table *t, const cJSON *job)
{
	char	*target = ctl_job_target(job, 0);

	ctl_table_add(t, target, 0);
	free(target);
}

static int
ctl_cmd_jobs(struct ctl *ctl, char **argv)
{
	static const struct ctl_column	col[] = {
		CTL_COL("ID", "id"), CTL_COL("KIND", "kind"),
		CTL_COL("STATE", "state"), CTL_COL("APP", "app"),
		CTL_COL_FN("ATTEMPTS", ctl_table_attempts),
		CTL_COL_FN("TARGET", ctl_table_target),
		CTL_COL("UPDATED", "updated"),
		CTL_COL_CUT("ERROR", "error", CTL_ERROR_WIDTH),
	};
	static const struct ctl_columns	cols = CTL_COLUMNS(col);

	(void)argv;
	return ctl_list(ctl, "/api/v1/jobs", "jobs", "no jobs found", 1,
	    &cols);
}

/* A job id argument: a positive decimal integer. */
static int
ctl_parse_id(const char *s, long long *idp)
{
	char		*end;
	long long	 v;

	errno = 0;
	if (*s < '0' || *s > '9')
		return -1;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v <= 0)
		return -1;
	*idp = v;
	return 0;
}

/*
 * The API path of the job named by the argument s of command cmd, with
 * suffix; NULL after saying why when s is not a job id.
 */
static char *
ctl_job_path(const char *cmd, const char *s, const char *suffix)
{
	long long	id;

	if (ctl_parse_id(s, &id) == -1) {
		fprintf(stderr, "gitopsctl: %s: \"%s\" is not a job id\n", cmd,
		    s);
		return NULL;
	}
	return xasprintf("/api/v1/jobs/%lld%s", id, suffix);
}

static int
ctl_cmd_job(struct ctl *ctl, char **argv)
{
	static const struct ctl_column	row[] = {
		CTL_COL("id", "id"), CTL_COL("kind", "kind"),
		CTL_COL("state", "state"), CTL_COL("app", "app"),
		CTL_COL("repo", "repo"), CTL_COL("revision", "revision"),
		CTL_COL("image", "image"), CTL_COL("tag", "tag"),
		CTL_COL("digest", "digest"),
		CTL_COL_FN("attempts", ctl_table_attempts),
		CTL_COL("created", "created"), CTL_COL("updated", "updated"),
		CTL_COL("not before", "not_before"),
		CTL_COL("event", "event_id"), CTL_COL("source", "source"),
		CTL_COL("delivery", "delivery"), CTL_COL("error", "error"),
		CTL_COL_FN("pull request", ctl_table_pr),
		CTL_COL("result", "result"),
	};
	static const struct ctl_column	attempt[] = {
		CTL_COL("N", "n"), CTL_COL("STARTED", "started"),
		CTL_COL("ENDED", "ended"), CTL_COL("OK", "ok"),
		CTL_COL("ERROR", "error"),
	};
	static const struct ctl_columns	rows = CTL_COLUMNS(row);
	static const struct ctl_columns	attempts = CTL_COLUMNS(attempt);
	char	*path;
	int	 rc;

	if ((path = ctl_job_path("job", argv[0], "")) == NULL)
		return CTL_EXIT_USAGE;
	rc = ctl_show(ctl, path, &rows, "attempts_log", "attempts log",
	    &attempts);
	free(path);
	return rc;
}

static int
ctl_cmd_retry(struct ctl *ctl, char **argv)
{
	struct ctl_response	 r;
	char			*path, *job, *state;
	int			 rc;

	if ((path = ctl_job_path("retry", argv[0], "/retry")) == NULL)
		return CTL_EXIT_USAGE;
	if ((rc = ctl_request(ctl, "POST", path, &r)) == CTL_EXIT_OK &&
	    !ctl->json) {
		job = ctl_field(r.json, "job");
		state = ctl_field(r.json, "state");
		printf("job %s: %s\n", job, state);
		free(job);
		free(state);
	}
	ctl_response_free(&r);
	free(path);
	return rc;
}

static int
ctl_cmd_sync(struct ctl *ctl, char **argv)
{
	struct ctl_response	 r;
	char			*name, *path, *job, *shown;
	int			 rc;

	name = ctl_escape(argv[0]);
	path = xasprintf("/api/v1/apps/%s/sync", name);
	if ((rc = ctl_request(ctl, "POST", path, &r)) == CTL_EXIT_OK &&
	    !ctl->json) {
		job = ctl_field(r.json, "job");
		shown = ctl_sanitize(argv[0], 0, NULL);
		printf("app %s: sync queued as job %s\n", shown, job);
		free(shown);
		free(job);
	}
	ctl_response_free(&r);
	free(path);
	free(name);
	return rc;
}

/* The ids of the jobs an event made, "1,2,3"; "-" for none. */
static void
ctl_table_event_jobs(struct ctl_table *t, const cJSON *ev)
{
	const cJSON	*jobs, *j;
	struct buf	 ids;
	char		*s;

	buf_init(&ids, 0);
	jobs = cJSON_GetObjectItemCaseSensitive(ev, "jobs");
	cJSON_ArrayForEach(j, jobs) {
		s = ctl_value(j);
		(void)buf_printf(&ids, "%s%s", ids.len > 0 ? "," : "", s);
		free(s);
	}
	ctl_table_add(t, ids.len > 0 ? ids.data : "-", 0);
	buf_free(&ids);
}

static int
ctl_cmd_events(struct ctl *ctl, char **argv)
{
	static const struct ctl_column	col[] = {
		CTL_COL("ID", "id"), CTL_COL("SOURCE", "source"),
		CTL_COL("RECEIVED", "received"), CTL_COL("KIND", "kind"),
		CTL_COL_CUT("DELIVERY", "delivery", 40),
		CTL_COL_FN("JOBS", ctl_table_event_jobs),
		CTL_COL_CUT("SUMMARY", "summary", CTL_ERROR_WIDTH),
	};
	static const struct ctl_columns	cols = CTL_COLUMNS(col);

	(void)argv;
	return ctl_list(ctl, "/api/v1/events", "events", "no events found", 1,
	    &cols);
}

/* The roles a replica holds, "periodic,..."; "-" for none. */
static void
ctl_table_roles(struct ctl_table *t, const cJSON *replica)
{
	const cJSON	*roles, *r;
	struct buf	 names;

	buf_init(&names, 0);
	roles = cJSON_GetObjectItemCaseSensitive(replica, "roles");
	cJSON_ArrayForEach(r, roles)
		if (cJSON_IsString(r) && r->valuestring != NULL)
			(void)buf_printf(&names, "%s%s",
			    names.len > 0 ? "," : "", r->valuestring);
	ctl_table_add(t, names.len > 0 ? names.data : "-", 0);
	buf_free(&names);
}

static int
ctl_cmd_replicas(struct ctl *ctl, char **argv)
{
	static const struct ctl_column	col[] = {
		CTL_COL("ID", "id"), CTL_COL("HOST", "hostname"),
		CTL_COL("VERSION", "version"), CTL_COL("STARTED", "started"),
		CTL_COL("HEARTBEAT", "heartbeat"), CTL_COL("ALIVE", "alive"),
		CTL_COL("RUNNING", "running"),
		CTL_COL_FN("ROLES", ctl_table_roles),
	};
	static const struct ctl_columns	cols = CTL_COLUMNS(col);

	(void)argv;
	return ctl_list(ctl, "/api/v1/replicas", "replicas",
	    "no replicas registered", 0, &cols);
}

static const struct ctl_cmd ctl_cmds[] = {
	{ "apps", "", 0, 0, ctl_cmd_apps,
	  "list the configured apps: revision, health, last job" },
	{ "app", "NAME", 1, 0, ctl_cmd_app,
	  "show one app: sync status, images, last error" },
	{ "jobs", "[--app A] [--state S] [--kind K] [--limit N] [--after ID]", 0,
	  CTL_OPT_APP | CTL_OPT_STATE | CTL_OPT_KIND | CTL_OPT_LIMIT |
	  CTL_OPT_AFTER, ctl_cmd_jobs, "list jobs, newest first" },
	{ "job", "ID", 1, 0, ctl_cmd_job,
	  "show one job with its attempts" },
	{ "retry", "ID", 1, 0, ctl_cmd_retry,
	  "queue a failed or dead job again" },
	{ "sync", "APP", 1, 0, ctl_cmd_sync,
	  "queue a sync of an app now" },
	{ "events", "[--limit N] [--after ID]", 0,
	  CTL_OPT_LIMIT | CTL_OPT_AFTER, ctl_cmd_events,
	  "list received events and the jobs they made" },
	{ "replicas", "", 0, 0, ctl_cmd_replicas,
	  "list the replicas sharing the state store: heartbeat, running"
	  " jobs, roles" },
};

static void
ctl_usage(FILE *fp)
{
	size_t	i;

	fprintf(fp,
	    "usage: gitopsctl [--url URL] [--token-file FILE] [--json] "
	    "[--timeout S] COMMAND [ARGS]\n"
	    "       gitopsctl --help | --version\n"
	    "\n"
	    "A client of gitopsd's admin API.\n"
	    "\n"
	    "commands:\n");
	for (i = 0; i < nitems(ctl_cmds); i++) {
		fprintf(fp, "  %s%s%s\n      %s\n", ctl_cmds[i].name,
		    ctl_cmds[i].args[0] != '\0' ? " " : "", ctl_cmds[i].args,
		    ctl_cmds[i].help);
	}
	fprintf(fp,
	    "\n"
	    "options:\n"
	    "  -u, --url URL          admin API address (GITOPSD_URL; default "
	    CTL_DEFAULT_URL ")\n"
	    "  -T, --token-file FILE  file holding the admin bearer token "
	    "(GITOPSD_TOKEN_FILE)\n"
	    "  -j, --json             print the API's JSON as received\n"
	    "      --timeout S        give up after S seconds (default %ld)\n"
	    "  -a, --app A            jobs of app A\n"
	    "  -s, --state S          queued, running, waiting, succeeded, "
	    "failed or dead\n"
	    "  -k, --kind K           update-image, sync or notify\n"
	    "  -n, --limit N          at most N rows (daemon default 50, max "
	    "1000)\n"
	    "      --after ID         rows older than ID (the next page)\n"
	    "  -h, --help             this help\n"
	    "  -V, --version          print the version\n"
	    "\n"
	    "exit status:\n"
	    "  0  success\n"
	    "  1  gitopsd answered with an error (not found, conflict, "
	    "unauthorized, bad request)\n"
	    "  2  usage error, unreadable token file, or gitopsd unreachable\n",
	    CTL_DEFAULT_TIMEOUT_S);
}

/* A positive decimal number no larger than max, or -1. */
static long long
ctl_parse_num(const char *s, long long max)
{
	long long	v;

	if (ctl_parse_id(s, &v) == -1 || v > max)
		return -1;
	return v;
}

#ifndef GITOPSCTL_NO_MAIN
/*
 * The value of the numeric option --name: 1..max, or -1 after saying what
 * the option wants.
 */
static long long
ctl_opt_num(const char *name, const char *arg, long long max,
    const char *want)
{
	long long	v;

	if ((v = ctl_parse_num(arg, max)) == -1)
		fprintf(stderr, "gitopsctl: --%s: want %s\n", name, want);
	return v;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "url", required_argument, NULL, 'u' },
		{ "token-file", required_argument, NULL, 'T' },
		{ "json", no_argument, NULL, 'j' },
		{ "timeout", required_argument, NULL, 't' },
		{ "app", required_argument, NULL, 'a' },
		{ "state", required_argument, NULL, 's' },
		{ "kind", required_argument, NULL, 'k' },
		{ "limit", required_argument, NULL, 'n' },
		{ "after", required_argument, NULL, 'A' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	struct ctl		 ctl;
	const struct ctl_cmd	*cmd = NULL;
	const char		*url, *token_file;
	char			 err[512];
	enum job_state		 st;
	enum job_kind		 kd;
	long long		 v;
	size_t			 i, len;
	int			 ch, rc = CTL_EXIT_USAGE, curl_ok = 0;

	memset(&ctl, 0, sizeof ctl);
	ctl.timeout_s = CTL_DEFAULT_TIMEOUT_S;
	url = getenv("GITOPSD_URL");
	token_file = getenv("GITOPSD_TOKEN_FILE");
	if (url != NULL && *url == '\0')
		url = NULL;
	if (token_file != NULL && *token_file == '\0')
		token_file = NULL;

	/* Options may come before or after the command (GNU permutation). */
	while ((ch = getopt_long(argc, argv, "u:T:jt:a:s:k:n:hV", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'u':
			url = optarg;
			break;
		case 'T':
			token_file = optarg;
			break;
		case 'j':
			ctl.json = 1;
			break;
		case 't':
			if ((v = ctl_opt_num("timeout", optarg, 3600,
			    "1..3600 seconds")) == -1)
				goto out;
			ctl.timeout_s = (long)v;
			break;
		case 'a':
			ctl.app = optarg;
			ctl.opts |= CTL_OPT_APP;
			break;
		case 's':
			if (job_state_parse(optarg, &st) == -1) {
				fprintf(stderr, "gitopsctl: --state: want "
				    "queued, running, waiting, succeeded, "
				    "failed or dead\n");
				goto out;
			}
			ctl.state = optarg;
			ctl.opts |= CTL_OPT_STATE;
			break;
		case 'k':
			if (job_kind_parse(optarg, &kd) == -1) {
				fprintf(stderr, "gitopsctl: --kind: want "
				    "update-image, sync or notify\n");
				goto out;
			}
			ctl.kind = optarg;
			ctl.opts |= CTL_OPT_KIND;
			break;
		case 'n':
			if ((v = ctl_opt_num("limit", optarg, 1000,
			    "1..1000")) == -1)
				goto out;
			ctl.limit = (long)v;
			ctl.opts |= CTL_OPT_LIMIT;
			break;
		case 'A':
			if ((v = ctl_opt_num("after", optarg, LLONG_MAX,
			    "a job or event id")) == -1)
				goto out;
			ctl.after = v;
			ctl.opts |= CTL_OPT_AFTER;
			break;
		case 'h':
			ctl_usage(stdout);
			rc = CTL_EXIT_OK;
			goto out;
		case 'V':
			printf("gitopsctl %s\n", GITOPSD_VERSION);
			rc = CTL_EXIT_OK;
			goto out;
		default:
			ctl_usage(stderr);
			goto out;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0) {
		ctl_usage(stderr);
		goto out;
	}
	for (i = 0; i < nitems(ctl_cmds); i++)
		if (strcmp(argv[0], ctl_cmds[i].name) == 0)
			cmd = &ctl_cmds[i];
	if (cmd == NULL) {
		fprintf(stderr, "gitopsctl: unknown command \"%s\" (try "
		    "--help)\n", argv[0]);
		goto out;
	}
	if (argc - 1 != cmd->nargs) {
		fprintf(stderr, "usage: gitopsctl %s%s%s\n", cmd->name,
		    cmd->args[0] != '\0' ? " " : "", cmd->args);
		goto out;
	}
	if ((ctl.opts & ~cmd->opts) != 0) {
		fprintf(stderr, "gitopsctl: %s takes no such option; usage: "
		    "gitopsctl %s%s%s\n", cmd->name, cmd->name,
		    cmd->args[0] != '\0' ? " " : "", cmd->args);
		goto out;
	}

	ctl.url = xstrdup(url != NULL ? url : CTL_DEFAULT_URL);
	len = strlen(ctl.url);
	while (len > 0 && ctl.url[len - 1] == '/')
		ctl.url[--len] = '\0';
	if (strncmp(ctl.url, "http://", 7) != 0 &&
	    strncmp(ctl.url, "https://", 8) != 0) {
		fprintf(stderr, "gitopsctl: --url: want http://HOST:PORT or "
		    "https://HOST:PORT\n");
		goto out;
	}
	if (token_file != NULL) {
		if ((ctl.token = util_read_secret(token_file, err,
		    sizeof err)) == NULL) {
			fprintf(stderr, "gitopsctl: %s\n", err);
			goto out;
		}
		if (strpbrk(ctl.token, "\r\n") != NULL) {
			fprintf(stderr, "gitopsctl: token file %s holds more "
			    "than one line\n", token_file);
			goto out;
		}
	}

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "gitopsctl: cannot initialize libcurl\n");
		goto out;
	}
	curl_ok = 1;
	rc = cmd->exec(&ctl, argv + 1);
	if (fflush(stdout) == EOF || ferror(stdout)) {
		fprintf(stderr, "gitopsctl: writing output: %s\n",
		    strerror(errno));
		if (rc == CTL_EXIT_OK)
			rc = CTL_EXIT_ERROR;
	}
out:
	if (curl_ok)
		curl_global_cleanup();
	if (ctl.token != NULL) {
		explicit_bzero(ctl.token, strlen(ctl.token));
		free(ctl.token);
	}
	free(ctl.url);
	return rc;
}
#endif
