/*
 * config_schema.c: key tables driven into structs (DESIGN.md section 6).
 *
 * The walk fills a struct from a mapping with a table of keys: every key
 * converted by its type, unknown and inline secret keys reported, missing
 * required keys reported, defaults applied, then the table's cross-key
 * check.  Entries of a plug-in list (config_family) also take their
 * plug-in's keys.  The same rows free what they filled and list the schema
 * (config_keys, docs/config.md), so a key exists in one place.  Every
 * problem is collected; the walk never stops at the first.
 *
 * Secrets: `*_file` keys are read here (util_read_secret) and `*_env`
 * keys looked up in the environment; messages name the file or variable,
 * never the contents.  A value is never echoed for a key that could hold
 * a secret.
 */
#include <sys/stat.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "config_schema.h"
#include "config_yaml.h"
#include "util.h"

#define CONFIG_MAX_SECRETS	2

/* Keys that hold a secret inline; the *_file / *_env keys replace them. */
static const char *const config_schema_inline_secrets[] = {
	"secret", "secrets", "token", "tokens", "password", "passwords",
	"passphrase", "ssh_passphrase", "ssh_key", "private_key", "api_key",
};

static void
config_schema_strv_push(char ***v, size_t *n, char *s)
{
	*v = xreallocarray(*v, *n + 1, sizeof(**v));
	(*v)[(*n)++] = s;
}

static void config_walk_vdiag(struct config_walk *, int,
    const struct config_node *, const char *, const char *, va_list)
    __attribute__((format(printf, 5, 0)));

static void
config_walk_vdiag(struct config_walk *ctx, int warning,
    const struct config_node *at, const char *path, const char *fmt,
    va_list ap)
{
	config_diags_vadd(warning ? &ctx->warnings : &ctx->errors, ctx->file,
	    at ? at->line : 1, at ? at->col : 1, path, fmt, ap);
}

void
config_walk_error(struct config_walk *ctx, const struct config_node *at,
    const char *sub, const char *fmt, ...)
{
	va_list	 ap;
	char	*p;

	if (sub == NULL)
		p = xstrdup(ctx->path.data);
	else if (ctx->path.len > 0)
		p = xasprintf("%s.%s", ctx->path.data, sub);
	else
		p = xstrdup(sub);
	va_start(ap, fmt);
	config_walk_vdiag(ctx, 0, at, p, fmt, ap);
	va_end(ap);
	free(p);
}

void
config_walk_warning(struct config_walk *ctx, const struct config_node *at,
    const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	config_walk_vdiag(ctx, 1, at, ctx->path.data, fmt, ap);
	va_end(ap);
}

void
config_walk_error_at(struct config_walk *ctx, const char *keypath,
    const char *fmt, ...)
{
	struct config_node	n = { .kind = CONFIG_NODE_SCALAR };
	va_list			ap;

	config_marks_find(ctx->marks, keypath, &n.line, &n.col);
	va_start(ap, fmt);
	config_walk_vdiag(ctx, 0, &n, keypath, fmt, ap);
	va_end(ap);
}

/* Path stack: push returns the length to restore with config_walk_pop. */
static size_t
config_walk_push_key(struct config_walk *ctx, const char *key)
{
	size_t	old = ctx->path.len;

	if (old > 0)
		buf_addstr(&ctx->path, ".");
	buf_addstr(&ctx->path, key);
	return old;
}

static size_t
config_walk_push_index(struct config_walk *ctx, size_t i)
{
	size_t	old = ctx->path.len;

	buf_printf(&ctx->path, "[%zu]", i);
	return old;
}

static void
config_walk_pop(struct config_walk *ctx, size_t old)
{
	ctx->path.len = old;
	ctx->path.data[old] = '\0';
}

static void
config_walk_mark(struct config_walk *ctx, const struct config_node *at)
{
	if (at != NULL)
		config_marks_add(ctx->marks, ctx->path.data, at->line, at->col);
}

/* Lexically clean an absolute path: no "//", "." or "x/..". */
char *
config_schema_path_clean(const char *in)
{
	char	*out, *seg, *save = NULL, *tmp;
	size_t	 len = 0;

	out = xmalloc(strlen(in) + 2);
	out[0] = '\0';
	tmp = xstrdup(in);
	for (seg = strtok_r(tmp, "/", &save); seg != NULL;
	    seg = strtok_r(NULL, "/", &save)) {
		if (strcmp(seg, ".") == 0)
			continue;
		if (strcmp(seg, "..") == 0) {
			while (len > 0 && out[len - 1] != '/')
				len--;
			if (len > 0)
				len--;
			out[len] = '\0';
			continue;
		}
		out[len++] = '/';
		memcpy(out + len, seg, strlen(seg));
		len += strlen(seg);
		out[len] = '\0';
	}
	if (len == 0) {
		out[0] = '/';
		out[1] = '\0';
	}
	free(tmp);
	return out;
}

/* An absolute, cleaned path: relative ones resolve against ctx->basedir. */
static char *
config_schema_path_resolve(const struct config_walk *ctx, const char *p)
{
	char	*joined, *out;

	if (p[0] == '/')
		return config_schema_path_clean(p);
	joined = xasprintf("%s/%s", ctx->basedir, p);
	out = config_schema_path_clean(joined);
	free(joined);
	return out;
}

/* ---- typed values */

/* A string value; no NUL bytes. */
static const char *
config_schema_value_str(struct config_walk *ctx, const struct config_node *v)
{
	if (v->kind != CONFIG_NODE_SCALAR) {
		config_walk_error(ctx, v, NULL, "expected a string, got %s",
		    config_node_kind_name(v));
		return NULL;
	}
	if (strlen(v->str) != v->len) {
		config_walk_error(ctx, v, NULL, "string holds a NUL byte");
		return NULL;
	}
	return v->str;
}

static int
config_schema_value_int(struct config_walk *ctx, const struct config_key *k,
    const struct config_node *v,
    long long *out)
{
	char		*end;
	long long	 x;

	if (v->kind != CONFIG_NODE_SCALAR || !v->plain) {
		config_walk_error(ctx, v, NULL, "expected an integer, got %s",
		    config_node_kind_name(v));
		return -1;
	}
	errno = 0;
	x = strtoll(v->str, &end, 10);
	if (v->len == 0 || *end != '\0' || isspace((unsigned char)v->str[0])) {
		config_walk_error(ctx, v, NULL,
		    "expected an integer, got \"%s\"", v->str);
		return -1;
	}
	if (errno == ERANGE || x < k->min || x > k->max) {
		config_walk_error(ctx, v, NULL,
		    "%s is out of range (%lld..%lld)", v->str,
		    k->min, k->max);
		return -1;
	}
	*out = x;
	return 0;
}

/* A byte count: digits with an optional k/K/KiB, M/MiB, G/GiB suffix. */
static int
config_schema_value_size(struct config_walk *ctx, const struct config_key *k,
    const struct config_node *v,
    long long *out)
{
	char		*end;
	long long	 x, mul = 1;

	if (v->kind != CONFIG_NODE_SCALAR || !v->plain) {
		config_walk_error(ctx, v, NULL, "expected a size, got %s",
		    config_node_kind_name(v));
		return -1;
	}
	errno = 0;
	x = strtoll(v->str, &end, 10);
	if (end == v->str || v->str[0] == '-' || v->str[0] == '+')
		goto bad;
	if (strcmp(end, "") == 0)
		mul = 1;
	else if (strcmp(end, "k") == 0 || strcmp(end, "K") == 0 ||
	    strcmp(end, "KiB") == 0)
		mul = 1024;
	else if (strcmp(end, "M") == 0 || strcmp(end, "MiB") == 0)
		mul = 1024 * 1024;
	else if (strcmp(end, "G") == 0 || strcmp(end, "GiB") == 0)
		mul = 1024LL * 1024 * 1024;
	else
		goto bad;
	if (errno == ERANGE || x > LLONG_MAX / mul || x * mul < k->min ||
	    x * mul > k->max) {
		config_walk_error(ctx, v, NULL,
		    "%s is out of range (%lld..%lld)", v->str,
		    k->min, k->max);
		return -1;
	}
	*out = x * mul;
	return 0;
bad:
	config_walk_error(ctx, v, NULL,
	    "expected a size (bytes, or with K, M, G suffix), got \"%s\"",
	    v->str);
	return -1;
}

int
config_schema_value_bool(struct config_walk *ctx, const struct config_node *v,
    int *out)
{
	static const char *const yes[] = { "true", "True", "TRUE", "yes",
	    "Yes", "YES", "on", "On", "ON" };
	static const char *const no[] = { "false", "False", "FALSE", "no",
	    "No", "NO", "off", "Off", "OFF" };
	size_t	i;

	if (v->kind == CONFIG_NODE_SCALAR && v->plain) {
		for (i = 0; i < nitems(yes); i++) {
			if (strcmp(v->str, yes[i]) == 0) {
				*out = 1;
				return 0;
			}
			if (strcmp(v->str, no[i]) == 0) {
				*out = 0;
				return 0;
			}
		}
	}
	if (v->kind == CONFIG_NODE_SCALAR)
		config_walk_error(ctx, v, NULL,
		    "expected true or false, got %s\"%s\"",
		    v->plain ? "" : "quoted ", v->str);
	else
		config_walk_error(ctx, v, NULL,
		    "expected true or false, got %s",
		    config_node_kind_name(v));
	return -1;
}

static int
config_schema_value_double(struct config_walk *ctx, const struct config_key *k,
    const struct config_node *v,
    double *out)
{
	char	*end;
	double	 x;

	if (v->kind != CONFIG_NODE_SCALAR || !v->plain) {
		config_walk_error(ctx, v, NULL, "expected a number, got %s",
		    config_node_kind_name(v));
		return -1;
	}
	errno = 0;
	x = strtod(v->str, &end);
	if (v->len == 0 || *end != '\0' || isspace((unsigned char)v->str[0]) ||
	    !isfinite(x)) {
		config_walk_error(ctx, v, NULL, "expected a number, got \"%s\"",
		    v->str);
		return -1;
	}
	if (x < (double)k->min || x > (double)k->max) {
		config_walk_error(ctx, v, NULL,
		    "%s is out of range (%lld..%lld)", v->str,
		    k->min, k->max);
		return -1;
	}
	*out = x;
	return 0;
}

/*
 * "host:port" or "[v6]:port"; host an IPv4/IPv6 literal or "localhost";
 * port 0..65535 (0: the kernel picks a free port, for tests).
 */
static int
config_schema_listen_parse(const char *s, struct config_listen *out, char *why,
    size_t whylen)
{
	const char	*colon, *p;
	char		*host, *end;
	unsigned char	 addr[16];
	long		 port;
	int		 v6 = 0;

	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (rb == NULL || rb[1] != ':') {
			snprintf(why, whylen, "expected [IPv6]:PORT");
			return -1;
		}
		host = xstrndup(s + 1, (size_t)(rb - s - 1));
		colon = rb + 1;
		v6 = 1;
	} else {
		if ((colon = strrchr(s, ':')) == NULL) {
			snprintf(why, whylen, "expected HOST:PORT");
			return -1;
		}
		if (memchr(s, ':', (size_t)(colon - s)) != NULL) {
			snprintf(why, whylen,
			    "an IPv6 address needs brackets: [ADDR]:PORT");
			return -1;
		}
		host = xstrndup(s, (size_t)(colon - s));
	}
	if (*host == '\0') {
		snprintf(why, whylen, "missing host");
		goto bad;
	}
	if (v6) {
		if (inet_pton(AF_INET6, host, addr) != 1) {
			snprintf(why, whylen, "not an IPv6 address");
			goto bad;
		}
	} else if (strcmp(host, "localhost") != 0 &&
	    inet_pton(AF_INET, host, addr) != 1) {
		snprintf(why, whylen,
		    "host must be an IP address or localhost");
		goto bad;
	}
	p = colon + 1;
	if (*p == '\0' || !isdigit((unsigned char)*p)) {
		snprintf(why, whylen, "missing or bad port");
		goto bad;
	}
	errno = 0;
	port = strtol(p, &end, 10);
	if (*end != '\0' || errno == ERANGE || port < 0 || port > 65535) {
		snprintf(why, whylen, "port must be 0..65535");
		goto bad;
	}
	free(out->host);
	out->host = host;
	out->port = (int)port;
	return 0;
bad:
	free(host);
	return -1;
}

static int
config_schema_name_ok(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && *s != '.' && *s != '_' &&
		    *s != '-')
			return 0;
	return 1;
}

/* RFC 7230 token characters of a header name. */
static int
config_schema_header_name_ok(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && strchr("!#$%&'*+-.^_`|~", *s) == NULL)
			return 0;
	return 1;
}

/* A repo URL is a local path unless it has a scheme or is scp-like. */
static int
config_schema_url_is_local(const char *u)
{
	const char	*colon, *slash;

	if (strstr(u, "://") != NULL)
		return 0;
	colon = strchr(u, ':');
	slash = strchr(u, '/');
	/* git's rule: host:path has its colon before the first slash. */
	if (colon != NULL && (slash == NULL || colon < slash))
		return 0;
	return 1;
}

/*
 * A secret other users can read is warned about (as OpenSSH does for keys),
 * at gitopsd -t and at every (re)load.  Group read is fine when the group
 * is the one gitopsd runs as: the documented root:gitopsd 0640 layout and
 * a Kubernetes secret volume (0440, group fsGroup) are read that way.
 */
static void
config_schema_secret_mode(struct config_walk *ctx, const struct config_node *v,
    const char *path)
{
	struct stat	 st;
	int		 grp, oth;

	if (stat(path, &st) == -1)
		return;
	oth = (st.st_mode & S_IROTH) != 0;
	grp = (st.st_mode & S_IRGRP) != 0 && st.st_gid != getegid();
	if (oth || grp)
		config_walk_warning(ctx, v,
		    "secret file %s has mode %04o: readable by "
		    "%s; make it 0600, or 0640 with gitopsd's group (gid %u)",
		    path, (unsigned)(st.st_mode & 07777), oth && grp ?
		    "group and others" : oth ? "others" : "its group",
		    (unsigned)getegid());
}

/* Read one secret file into *contents; *pathp is the resolved path. */
static int
config_schema_secret_file(struct config_walk *ctx, const struct config_node *v,
    const char *path,
    char **contents)
{
	char	 err[PATH_MAX + 128];
	char	*s;

	if ((s = util_read_secret(path, err, sizeof(err))) == NULL) {
		config_walk_error(ctx, v, NULL, "%s", err);
		return -1;
	}
	config_schema_secret_mode(ctx, v, path);
	*contents = s;
	return 0;
}

static int
config_schema_secret_env(struct config_walk *ctx, const struct config_node *v,
    const char *var,
    char **contents)
{
	const char	*val;

	if (!config_schema_name_ok(var) || strchr(var, '.') != NULL) {
		config_walk_error(ctx, v, NULL,
		    "\"%s\" is not an environment variable name",
		    var);
		return -1;
	}
	if ((val = getenv(var)) == NULL) {
		config_walk_error(ctx, v, NULL,
		    "environment variable %s is not set", var);
		return -1;
	}
	if (*val == '\0') {
		config_walk_error(ctx, v, NULL,
		    "environment variable %s is empty", var);
		return -1;
	}
	*contents = xstrdup(val);
	return 0;
}

static void
config_schema_secret_free(char *s)
{
	if (s != NULL) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

static void	config_schema_walk_list(struct config_walk *,
    const struct config_key *, void *obj,
		    const struct config_node *v);

/* A list of scalars as strings; NULL after an error. */
static char **
config_schema_strlist(struct config_walk *ctx, const struct config_node *v,
    size_t *np)
{
	char	**out = NULL;
	size_t	  i, n = 0, old;
	int	  bad = 0;

	if (v->kind != CONFIG_NODE_SEQ) {
		config_walk_error(ctx, v, NULL,
		    "expected a list of strings, got %s",
		    config_node_kind_name(v));
		return NULL;
	}
	for (i = 0; i < v->nkids; i++) {
		const struct config_node *it = v->kids[i];
		const char *s;

		old = config_walk_push_index(ctx, i);
		config_walk_mark(ctx, it);
		if (it->kind == CONFIG_NODE_SCALAR && it->null) {
			config_walk_error(ctx, it, NULL, "empty list item");
			bad = 1;
		} else if ((s = config_schema_value_str(ctx, it)) == NULL)
			bad = 1;
		else if (!bad)
			config_schema_strv_push(&out, &n, xstrdup(s));
		config_walk_pop(ctx, old);
	}
	if (bad) {
		for (i = 0; i < n; i++)
			free(out[i]);
		free(out);
		return NULL;
	}
	*np = n;
	return out;
}

/* Append one secret of a source (contents + where it came from). */
static int
config_schema_source_secret_add(struct config_walk *ctx,
    const struct config_key *k, void *obj,
    const struct config_node *v, char *secret, char *where)
{
	char	***sv = CONFIG_FIELD(obj, k->off, char **);
	size_t	 *n = CONFIG_FIELD(obj, k->off2, size_t);
	char	***pv = CONFIG_FIELD(obj, k->off3, char **);
	size_t	  np;

	if (*n >= CONFIG_MAX_SECRETS) {
		config_walk_error(ctx, v, NULL,
		    "at most %d secrets per source (new, old)",
		    CONFIG_MAX_SECRETS);
		config_schema_secret_free(secret);
		free(where);
		return -1;
	}
	np = *n;
	config_schema_strv_push(pv, &np, where);
	config_schema_strv_push(sv, n, secret);
	return 0;
}

/*
 * ---- converters: one per key type (config_schema_types[] below).  Each
 * converts node v for key k and stores it in obj; ctx->path names the key.
 * Defaults come through here too, as synthetic plain scalars.
 */

/* T_STR, T_NAME */
static void
config_schema_set_str(struct config_walk *ctx, const struct config_key *k,
    void *obj, const struct config_node *v)
{
	const char	*s;

	if ((s = config_schema_value_str(ctx, v)) == NULL)
		return;
	if (k->type == T_NAME && !config_schema_name_ok(s)) {
		config_walk_error(ctx, v, NULL, "name \"%s\" may only contain "
		    "letters, digits, '.', '_' and '-'", s);
		return;
	}
	free(*CONFIG_FIELD(obj, k->off, char *));
	*CONFIG_FIELD(obj, k->off, char *) = xstrdup(s);
}

/* T_PATH, T_KUBECONFIG, T_REPO_URL, T_FILE */
static void
config_schema_set_path(struct config_walk *ctx, const struct config_key *k,
    void *obj, const struct config_node *v)
{
	const char	*s;
	char		*p;

	if ((s = config_schema_value_str(ctx, v)) == NULL)
		return;
	if (*s == '\0') {
		config_walk_error(ctx, v, NULL, "empty path");
		return;
	}
	if ((k->type == T_KUBECONFIG && strcmp(s, "in-cluster") == 0) ||
	    (k->type == T_REPO_URL && !config_schema_url_is_local(s)))
		p = xstrdup(s);
	else
		p = config_schema_path_resolve(ctx, s);
	if (k->type == T_FILE && access(p, R_OK) == -1) {
		config_walk_error(ctx, v, NULL, "cannot read %s: %s", p,
		    strerror(errno));
		free(p);
		return;
	}
	if (k->flags & KEY_PRIVATE)
		config_schema_secret_mode(ctx, v, p);
	free(*CONFIG_FIELD(obj, k->off, char *));
	*CONFIG_FIELD(obj, k->off, char *) = p;
}

static void
config_schema_set_int(struct config_walk *ctx, const struct config_key *k,
    void *obj, const struct config_node *v)
{
	long long	ll;

	if (config_schema_value_int(ctx, k, v, &ll) == 0)
		*CONFIG_FIELD(obj, k->off, int) = (int)ll;
}

static void
config_schema_set_size(struct config_walk *ctx, const struct config_key *k,
    void *obj, const struct config_node *v)
{
	long long	ll;

	if (config_schema_value_size(ctx, k, v, &ll) == 0)
		*CONFIG_FIELD(obj, k->off, size_t) = (size_t)ll;
}

static void
config_schema_set_bool(struct config_walk *ctx, const struct config_key *k,
    void *obj, const struct config_node *v)
{
	int	b;

	if (config_schema_value_bool(ctx, v, &b) == 0 &&
	    !(k->flags & KEY_NOSTORE))
		*CONFIG_FIELD(obj, k->off, int) = b;
}

static void
config_schema_set_double(struct config_walk *ctx, const struct config_key *k,
    void *obj, const struct config_node *v)
{
	double	d;

	if (config_schema_value_double(ctx, k, v, &d) == 0)
		*CONFIG_FIELD(obj, k->off, double) = d;
}

static void
config_schema_set_listen(struct config_walk *ctx, const struct config_key *k,
    void *obj, const struct config_node *v)
{
	const char	*s;
	char		 why[128];

	if ((s = config_schema_value_str(ctx, v)) == NULL)
		return;
	if (config_schema_listen_parse(s, CONFIG_FIELD(obj, k->off,
	    struct config_listen), why, sizeof(why)) == -1)
		config_walk_error(ctx, v, NULL, "bad listen address \"%s\": %s",
		    s, why);
}

/* The value of name in k's enums; an error naming them all otherwise. */
static int
config_schema_enum_value(struct config_walk *ctx, const struct config_key *k,
    const struct config_node *at, const char *name, int *out)
{
	const struct config_enum	*e;
	struct buf			 names;

	for (e = k->enums; e->name != NULL; e++)
		if (strcmp(e->name, name) == 0) {
			*out = e->value;
			return 0;
		}
	buf_init(&names, 0);
	for (e = k->enums; e->name != NULL; e++)
		buf_printf(&names, "%s%s", names.len ? ", " : "", e->name);
	config_walk_error(ctx, at, NULL, "unknown value \"%s\" (expected one "
	    "of: %s)", name, names.data);
	buf_free(&names);
	return -1;
}

static void
config_schema_set_enum(struct config_walk *ctx, const struct config_key *k,
    void *obj, const struct config_node *v)
{
	const char	*s;
	int		 val = 0;

	if ((s = config_schema_value_str(ctx, v)) == NULL)
		return;
	if (config_schema_enum_value(ctx, k, v, s, &val) == 0)
		*CONFIG_FIELD(obj, k->off, int) = val;
}

static void
config_schema_set_flags(struct config_walk *ctx, const struct config_key *k,
    void *obj, const struct config_node *v)
{
	unsigned	  bits = 0;
	size_t		  i, n = 0, old;
	char		**items;
	int		  bad = 0, val = 0;

	if ((items = config_schema_strlist(ctx, v, &n)) == NULL)
		return;
	for (i = 0; i < n; i++) {
		old = config_walk_push_index(ctx, i);
		if (config_schema_enum_value(ctx, k, v->kids[i], items[i],
		    &val) == 0)
			bits |= (unsigned)val;
		else
			bad = 1;
		config_walk_pop(ctx, old);
		free(items[i]);
	}
	free(items);
	if (n == 0) {
		config_walk_error(ctx, v, NULL, "empty list");
		return;
	}
	if (!bad)
		*CONFIG_FIELD(obj, k->off, unsigned) = bits;
}

static void
config_schema_set_strlist(struct config_walk *ctx, const struct config_key *k,
    void *obj, const struct config_node *v)
{
	char	**items;
	size_t	  n = 0;
	struct config_node one, item, *kids[1];

	if ((k->flags & KEY_ONE_OR_LIST) && v->kind == CONFIG_NODE_SCALAR &&
	    !v->null) {
		item = *v;
		one = *v;
		kids[0] = &item;
		one.kind = CONFIG_NODE_SEQ;
		one.kids = kids;
		one.nkids = 1;
		v = &one;
	}
	if ((items = config_schema_strlist(ctx, v, &n)) == NULL)
		return;
	*CONFIG_FIELD(obj, k->off, char **) = items;
	*CONFIG_FIELD(obj, k->off2, size_t) = n;
}

static void
config_schema_set_table(struct config_walk *ctx, const struct config_key *k,
    void *obj, const struct config_node *v)
{
	if (v->kind != CONFIG_NODE_MAP) {
		config_walk_error(ctx, v, NULL, "expected a mapping, got %s",
		    config_node_kind_name(v));
		return;
	}
	config_schema_walk_table(ctx, k->sub, (char *)obj + k->off, v, v);
}

static void
config_schema_set_headers(struct config_walk *ctx, const struct config_key *k,
    void *obj, const struct config_node *v)
{
	struct config_header	**hv = CONFIG_FIELD(obj, k->off,
				    struct config_header *);
	size_t			 *hn = CONFIG_FIELD(obj, k->off2, size_t);
	size_t			  i, old;

	if (v->kind != CONFIG_NODE_MAP) {
		config_walk_error(ctx, v, NULL, "expected a mapping of header: "
		    "value, got %s", config_node_kind_name(v));
		return;
	}
	for (i = 0; i + 1 < v->nkids; i += 2) {
		const struct config_node *hk = v->kids[i],
		    *hval = v->kids[i + 1];
		const char *val;

		old = config_walk_push_key(ctx, hk->str);
		config_walk_mark(ctx, hk);
		if (!config_schema_header_name_ok(hk->str))
			config_walk_error(ctx, hk, NULL,
			    "not a valid header name");
		else if (hval->kind == CONFIG_NODE_SCALAR && hval->null)
			config_walk_error(ctx, hval, NULL,
			    "empty header value");
		else if ((val = config_schema_value_str(ctx, hval)) == NULL)
			;	/* reported */
		else if (strpbrk(val, "\r\n") != NULL)
			config_walk_error(ctx, hval, NULL,
			    "header value holds a line break");
		else {
			*hv = xreallocarray(*hv, *hn + 1, sizeof(**hv));
			(*hv)[*hn].name = xstrdup(hk->str);
			(*hv)[*hn].value = xstrdup(val);
			(*hn)++;
		}
		config_walk_pop(ctx, old);
	}
}

/* "more than one of X_file and X_env" when the secret is already set. */
static int
config_schema_secret_once(struct config_walk *ctx, const struct config_key *k,
    void *obj, const struct config_node *v, size_t suffix)
{
	int	len = (int)(strlen(k->name) - suffix);

	if (*CONFIG_FIELD(obj, k->off2, char *) == NULL)
		return 0;
	config_walk_error(ctx, v, NULL, "more than one of %.*s_file and "
	    "%.*s_env", len, k->name, len, k->name);
	return -1;
}

static void
config_schema_set_secret_file(struct config_walk *ctx,
    const struct config_key *k, void *obj, const struct config_node *v)
{
	const char	*s;
	char		*p, *sec;

	if ((s = config_schema_value_str(ctx, v)) == NULL)
		return;
	if (*s == '\0') {
		config_walk_error(ctx, v, NULL, "empty path");
		return;
	}
	if (config_schema_secret_once(ctx, k, obj, v, strlen("_file")) == -1)
		return;
	p = config_schema_path_resolve(ctx, s);
	free(*CONFIG_FIELD(obj, k->off, char *));
	*CONFIG_FIELD(obj, k->off, char *) = p;
	if (config_schema_secret_file(ctx, v, p, &sec) == 0)
		*CONFIG_FIELD(obj, k->off2, char *) = sec;
}

static void
config_schema_set_secret_env(struct config_walk *ctx,
    const struct config_key *k, void *obj, const struct config_node *v)
{
	const char	*s;
	char		*sec;

	if ((s = config_schema_value_str(ctx, v)) == NULL)
		return;
	if (config_schema_secret_once(ctx, k, obj, v, strlen("_env")) == -1)
		return;
	free(*CONFIG_FIELD(obj, k->off, char *));
	*CONFIG_FIELD(obj, k->off, char *) = xstrdup(s);
	if (config_schema_secret_env(ctx, v, s, &sec) == 0)
		*CONFIG_FIELD(obj, k->off2, char *) = sec;
}

/* One secret file of a source, read and appended. */
static void
config_schema_src_secret_path(struct config_walk *ctx,
    const struct config_key *k, void *obj, const struct config_node *v,
    const char *path)
{
	char	*p, *sec;

	p = config_schema_path_resolve(ctx, path);
	if (config_schema_secret_file(ctx, v, p, &sec) == 0)
		config_schema_source_secret_add(ctx, k, obj, v, sec, p);
	else
		free(p);
}

static void
config_schema_set_src_secret_file(struct config_walk *ctx,
    const struct config_key *k, void *obj, const struct config_node *v)
{
	const char	*s;

	if ((s = config_schema_value_str(ctx, v)) == NULL)
		return;
	if (*s == '\0') {
		config_walk_error(ctx, v, NULL, "empty path");
		return;
	}
	config_schema_src_secret_path(ctx, k, obj, v, s);
}

static void
config_schema_set_src_secret_files(struct config_walk *ctx,
    const struct config_key *k, void *obj, const struct config_node *v)
{
	char	**items;
	size_t	  i, n = 0, old;

	if ((items = config_schema_strlist(ctx, v, &n)) == NULL)
		return;
	if (n == 0)
		config_walk_error(ctx, v, NULL, "empty list");
	if (n > CONFIG_MAX_SECRETS)
		config_walk_error(ctx, v, NULL, "at most %d secret files (new, "
		    "old)", CONFIG_MAX_SECRETS);
	for (i = 0; i < n; i++) {
		if (n <= CONFIG_MAX_SECRETS) {
			old = config_walk_push_index(ctx, i);
			config_schema_src_secret_path(ctx, k, obj, v->kids[i],
			    items[i]);
			config_walk_pop(ctx, old);
		}
		free(items[i]);
	}
	free(items);
}

static void
config_schema_set_src_secret_env(struct config_walk *ctx,
    const struct config_key *k, void *obj, const struct config_node *v)
{
	const char	*s;
	char		*sec;

	if ((s = config_schema_value_str(ctx, v)) == NULL)
		return;
	if (config_schema_secret_env(ctx, v, s, &sec) == 0)
		config_schema_source_secret_add(ctx, k, obj, v, sec,
		    xasprintf("$%s", s));
}

/* ---- freeing: what a converter stored */

/* Also T_SECRET_ENV: its contents are freed by the *_file key. */
static void
config_schema_free_str(const struct config_key *k, void *obj)
{
	free(*CONFIG_FIELD(obj, k->off, char *));
}

static void
config_schema_free_secret(const struct config_key *k, void *obj)
{
	free(*CONFIG_FIELD(obj, k->off, char *));
	config_schema_secret_free(*CONFIG_FIELD(obj, k->off2, char *));
}

static void
config_schema_free_listen(const struct config_key *k, void *obj)
{
	free(CONFIG_FIELD(obj, k->off, struct config_listen)->host);
}

static void
config_schema_free_strlist(const struct config_key *k, void *obj)
{
	char	**v = *CONFIG_FIELD(obj, k->off, char **);
	size_t	  j, n = *CONFIG_FIELD(obj, k->off2, size_t);

	for (j = 0; j < n; j++)
		free(v[j]);
	free(v);
}

static void
config_schema_free_headers(const struct config_key *k, void *obj)
{
	struct config_header	*h = *CONFIG_FIELD(obj, k->off,
				    struct config_header *);
	size_t			 j, n = *CONFIG_FIELD(obj, k->off2, size_t);

	for (j = 0; j < n; j++) {
		free(h[j].name);
		free(h[j].value);
	}
	free(h);
}

static void
config_schema_free_sub(const struct config_key *k, void *obj)
{
	config_schema_free_table(k->sub, (char *)obj + k->off);
}

static void
config_schema_free_list(const struct config_key *k, void *obj)
{
	char	*arr = *CONFIG_FIELD(obj, k->off, char *);
	size_t	 j, n = *CONFIG_FIELD(obj, k->off2, size_t);

	for (j = 0; arr != NULL && j < n; j++)
		config_schema_free_table(k->sub, arr + j * k->sub->size);
	free(arr);
}

/* A source's secrets: several keys fill them, one (KEY_FREE_SHARED) frees. */
static void
config_schema_free_src_secrets(const struct config_key *k, void *obj)
{
	char	**sv = *CONFIG_FIELD(obj, k->off, char **);
	char	**pv = *CONFIG_FIELD(obj, k->off3, char **);
	size_t	  j, n = *CONFIG_FIELD(obj, k->off2, size_t);

	if (!(k->flags & KEY_FREE_SHARED))
		return;
	for (j = 0; j < n; j++) {
		config_schema_secret_free(sv[j]);
		free(pv[j]);
	}
	free(sv);
	free(pv);
}

typedef void	config_schema_set_fn(struct config_walk *,
		    const struct config_key *, void *obj,
		    const struct config_node *);
typedef void	config_schema_free_fn(const struct config_key *, void *obj);

/* What each key type is called in the schema, converts with and frees. */
static const struct config_schema_type {
	const char		*name;
	config_schema_set_fn	*set;
	config_schema_free_fn	*free;		/* NULL: nothing allocated */
} config_schema_types[] = {
	[T_STR] = { "string", config_schema_set_str, config_schema_free_str },
	[T_NAME] = { "name", config_schema_set_str, config_schema_free_str },
	[T_PATH] = { "path", config_schema_set_path, config_schema_free_str },
	[T_KUBECONFIG] = { "path or in-cluster", config_schema_set_path,
	    config_schema_free_str },
	[T_REPO_URL] = { "URL or path", config_schema_set_path,
	    config_schema_free_str },
	[T_FILE] = { "file path", config_schema_set_path,
	    config_schema_free_str },
	[T_INT] = { "integer", config_schema_set_int, NULL },
	[T_SIZE] = { "size", config_schema_set_size, NULL },
	[T_BOOL] = { "bool", config_schema_set_bool, NULL },
	[T_DOUBLE] = { "number", config_schema_set_double, NULL },
	[T_LISTEN] = { "listen address", config_schema_set_listen,
	    config_schema_free_listen },
	[T_STRLIST] = { "list of strings", config_schema_set_strlist,
	    config_schema_free_strlist },
	[T_FLAGS] = { "list of", config_schema_set_flags, NULL },
	[T_ENUM] = { "one of", config_schema_set_enum, NULL },
	[T_TABLE] = { "mapping", config_schema_set_table,
	    config_schema_free_sub },
	[T_LIST] = { "list of mappings", config_schema_walk_list,
	    config_schema_free_list },
	[T_HEADERS] = { "map of strings", config_schema_set_headers,
	    config_schema_free_headers },
	[T_SECRET_FILE] = { "secret file path", config_schema_set_secret_file,
	    config_schema_free_secret },
	[T_SECRET_ENV] = { "environment variable name",
	    config_schema_set_secret_env, config_schema_free_str },
	[T_SRC_SECRET_FILE] = { "secret file path",
	    config_schema_set_src_secret_file, config_schema_free_src_secrets },
	[T_SRC_SECRET_FILES] = { "list of secret file paths",
	    config_schema_set_src_secret_files,
	    config_schema_free_src_secrets },
	[T_SRC_SECRET_ENV] = { "environment variable name",
	    config_schema_set_src_secret_env, config_schema_free_src_secrets },
};

static void
config_schema_set_value(struct config_walk *ctx, const struct config_key *k,
    void *obj, const struct config_node *v)
{
	config_schema_types[k->type].set(ctx, k, obj, v);
}

static const struct config_key *
config_schema_table_key(const struct config_table *t, const char *name)
{
	size_t	i;

	for (i = 0; i < t->nkeys; i++)
		if (strcmp(t->keys[i].name, name) == 0)
			return &t->keys[i];
	return NULL;
}

/* The keys an entry takes: its table's, and its plug-in's (if any). */
struct config_schema_keys {
	const struct config_table	*t;
	const struct config_plugin	*p;
	void				*opts;
};

static const struct config_key *
config_schema_keys_find(const struct config_schema_keys *wk, const char *name,
    void **target,
    void *obj)
{
	const struct config_key	*k;
	size_t			 i;

	if ((k = config_schema_table_key(wk->t, name)) != NULL) {
		if (target != NULL)
			*target = obj;
		return k;
	}
	for (i = 0; wk->p != NULL && i < wk->p->nkeys; i++)
		if (strcmp(wk->p->keys[i].name, name) == 0) {
			if (target != NULL)
				*target = wk->opts;
			return &wk->p->keys[i];
		}
	return NULL;
}

/* "use secret_file or secret_env" for an inline key of an entry. */
static void
config_schema_inline_secret_error(struct config_walk *ctx,
    const struct config_schema_keys *wk,
    const struct config_node *at, const char *name)
{
	char	 base[64], f[80], e[80];
	size_t	 len = strlen(name);

	if (len >= sizeof(base))
		len = sizeof(base) - 1;
	memcpy(base, name, len);
	base[len] = '\0';
	if (len > 1 && base[len - 1] == 's')
		base[len - 1] = '\0';
	if (strcmp(base, "passphrase") == 0)
		snprintf(base, sizeof(base), "ssh_passphrase");
	snprintf(f, sizeof(f), "%s_file", base);
	snprintf(e, sizeof(e), "%s_env", base);
	if (config_schema_keys_find(wk, f, NULL, NULL) == NULL &&
	    config_schema_keys_find(wk, "secret_file", NULL, NULL) != NULL &&
	    strcmp(base, "token") != 0) {
		snprintf(f, sizeof(f), "secret_file");
		snprintf(e, sizeof(e), "secret_env");
	}
	if (config_schema_keys_find(wk, f, NULL, NULL) != NULL &&
	    config_schema_keys_find(wk, e, NULL, NULL) != NULL)
		config_walk_error(ctx, at, NULL,
		    "inline secrets are not allowed; use %s or %s",
		    f, e);
	else if (config_schema_keys_find(wk, f, NULL, NULL) != NULL)
		config_walk_error(ctx, at, NULL,
		    "inline secrets are not allowed; use %s", f);
	else
		config_walk_error(ctx, at, NULL,
		    "inline secrets are not allowed; use a *_file "
		    "or *_env key");
}

/* The type of a plug-in entry, when it is a string. */
static const char *
config_schema_plugin_type(const struct config_family *f,
    const struct config_node *map)
{
	const struct config_node *v = config_node_get(map, f->type_key);

	if (v == NULL || v->kind != CONFIG_NODE_SCALAR || v->null ||
	    strlen(v->str) != v->len)
		return NULL;
	return v->str;
}

/* Whether some plug-in of the family declares key name. */
static int
config_schema_family_declares(const struct config_family *f, const char *name)
{
	const struct config_plugin	*p;
	const char			*type;
	size_t				 i, j;

	for (i = 0; (p = f->nth(i, &type)) != NULL; i++)
		for (j = 0; j < p->nkeys; j++)
			if (strcmp(p->keys[j].name, name) == 0)
				return 1;
	return 0;
}

/* A key of no table: inline secret, another plug-in's, or unknown. */
static void
config_schema_unknown_key(struct config_walk *ctx,
    const struct config_schema_keys *wk,
    const struct config_node *key, const char *type)
{
	const struct config_family	*f = wk->t->family;
	size_t				 n;

	for (n = 0; n < nitems(config_schema_inline_secrets); n++)
		if (strcmp(key->str, config_schema_inline_secrets[n]) == 0) {
			config_schema_inline_secret_error(ctx, wk, key,
			    key->str);
			return;
		}
	if (f != NULL && config_schema_family_declares(f, key->str)) {
		/* An unknown type has its own error (check.c). */
		if (wk->p != NULL)
			config_walk_error(ctx, key, NULL, "not used by type %s",
			    type);
		return;
	}
	config_walk_error(ctx, key, NULL, "unknown key");
}

/* Absent keys of one key array: required ones are errors, the rest get
 * defaults. */
static void
config_schema_defaults(struct config_walk *ctx, const struct config_key *keys,
    size_t nkeys, void *obj, const unsigned char *seen,
    const struct config_node *const *nullkey, const struct config_node *at)
{
	const struct config_key	*k;
	size_t			 i, old;

	for (i = 0; i < nkeys; i++) {
		struct config_node def = { .kind = CONFIG_NODE_SCALAR,
		    .plain = 1 };

		k = &keys[i];
		if (seen[i])
			continue;
		old = config_walk_push_key(ctx, k->name);
		if ((k->flags & KEY_REQUIRED) && nullkey[i] != NULL)
			config_walk_error(ctx, nullkey[i], NULL,
			    "missing value");
		else if (k->flags & KEY_REQUIRED)
			config_walk_error(ctx, at, NULL,
			    "missing required key");
		else if (k->type == T_TABLE)
			config_schema_walk_table(ctx, k->sub,
			    (char *)obj + k->off, NULL, at);
		else if (k->def != NULL) {
			def.line = at ? at->line : 1;
			def.col = at ? at->col : 1;
			if (k->type == T_FLAGS) {
				/* A default flag list is one flag name. */
				struct config_node item = def,
				    *kids[1] = { &item };

				item.str = (char *)k->def;
				item.len = strlen(k->def);
				def.kind = CONFIG_NODE_SEQ;
				def.kids = kids;
				def.nkids = 1;
				config_schema_set_value(ctx, k, obj, &def);
			} else {
				def.str = (char *)k->def;
				def.len = strlen(k->def);
				config_schema_set_value(ctx, k, obj, &def);
			}
		}
		config_walk_pop(ctx, old);
	}
}

#define CONFIG_SCHEMA_MAX_KEYS	64

/*
 * Fill obj from map with table t: every key converted, unknown and inline
 * secret keys reported, missing required keys reported at `at` (the map,
 * or its parent when the table is absent), defaults applied, then the
 * table's cross-key check.  map may be NULL (absent table: defaults only).
 * An entry of a plug-in list also takes its plug-in's keys, into the
 * options struct the plug-in declares.
 */
void
config_schema_walk_table(struct config_walk *ctx, const struct config_table *t,
    void *obj,
    const struct config_node *map, const struct config_node *at)
{
	const struct config_key	*k;
	struct config_schema_keys	 wk = { .t = t };
	const char		*type = NULL;
	void			*target;
	size_t			 i, j, old;
	unsigned char		 seen[CONFIG_SCHEMA_MAX_KEYS],
	    pseen[CONFIG_SCHEMA_MAX_KEYS];
	const struct config_node *nullkey[CONFIG_SCHEMA_MAX_KEYS];
	const struct config_node *pnullkey[CONFIG_SCHEMA_MAX_KEYS];

	memset(seen, 0, sizeof(seen));
	memset(pseen, 0, sizeof(pseen));
	memset(nullkey, 0, sizeof(nullkey));
	memset(pnullkey, 0, sizeof(pnullkey));
	if (t->family != NULL && (type = config_schema_plugin_type(t->family,
	    map))
	    != NULL) {
		const void *desc = NULL;

		if ((wk.p = t->family->find(type, &desc)) != NULL) {
			wk.opts = wk.p->size > 0 ? xcalloc(1, wk.p->size) :
			    NULL;
			*CONFIG_FIELD(obj, t->family->desc_off,
			    const void *) = desc;
			*CONFIG_FIELD(obj, t->family->opts_off, void *) =
			    wk.opts;
		}
	}
	for (i = 0; map != NULL && i + 1 < map->nkids; i += 2) {
		const struct config_node *key = map->kids[i],
		    *val = map->kids[i + 1];
		int dup = 0;

		old = config_walk_push_key(ctx, key->str);
		for (j = 0; j < i; j += 2) {
			if (strcmp(map->kids[j]->str, key->str) == 0) {
				config_walk_error(ctx, key, NULL,
				    "duplicate key (first at line %d)",
				    map->kids[j]->line);
				dup = 1;
				break;
			}
		}
		if (dup) {
			config_walk_pop(ctx, old);
			continue;
		}
		config_walk_mark(ctx, key);
		if ((k = config_schema_keys_find(&wk, key->str, &target,
		    obj)) == NULL)
			config_schema_unknown_key(ctx, &wk, key, type);
		else if (k->flags & KEY_REFUSED)
			;	/* the check says why */
		else if (!(val->kind == CONFIG_NODE_SCALAR && val->null)) {
			if (target == obj)
				seen[k - t->keys] = 1;
			else
				pseen[k - wk.p->keys] = 1;
			config_schema_set_value(ctx, k, target, val);
		} else if (target == obj)
			nullkey[k - t->keys] = key;
		else
			pnullkey[k - wk.p->keys] = key;
		config_walk_pop(ctx, old);
	}
	config_schema_defaults(ctx, t->keys, t->nkeys, obj, seen, nullkey, at);
	if (wk.p != NULL)
		config_schema_defaults(ctx, wk.p->keys, wk.p->nkeys, wk.opts,
		    pseen,
		    pnullkey, at);
	if (t->check != NULL)
		t->check(ctx, obj, map, at);
	if (wk.p != NULL && wk.p->check != NULL)
		wk.p->check(ctx, wk.opts, map, at);
}

/* A list of tables: a malloc'd array of t->size elements. */
static void
config_schema_walk_list(struct config_walk *ctx, const struct config_key *k,
    void *obj,
    const struct config_node *v)
{
	const struct config_table	*t = k->sub;
	char			*arr;
	size_t			 i, old;

	if (v->kind != CONFIG_NODE_SEQ) {
		config_walk_error(ctx, v, NULL, "expected a list, got %s",
		    config_node_kind_name(v));
		return;
	}
	arr = xcalloc(v->nkids ? v->nkids : 1, t->size);
	*CONFIG_FIELD(obj, k->off, void *) = arr;
	*CONFIG_FIELD(obj, k->off2, size_t) = v->nkids;
	for (i = 0; i < v->nkids; i++) {
		const struct config_node *it = v->kids[i];

		old = config_walk_push_index(ctx, i);
		config_walk_mark(ctx, it);
		if (it->kind != CONFIG_NODE_MAP)
			config_walk_error(ctx, it, NULL,
			    "expected a mapping, got %s",
			    config_node_kind_name(it));
		else
			config_schema_walk_table(ctx, t, arr + i * t->size, it,
			    it);
		config_walk_pop(ctx, old);
	}
}

/* ---- freeing, driven by the same tables */

static void
config_schema_free_keys(const struct config_key *keys, size_t nkeys, void *obj)
{
	const struct config_key	*k;
	size_t			 i;

	for (i = 0; i < nkeys; i++) {
		k = &keys[i];
		if (k->flags & (KEY_NOSTORE | KEY_REFUSED))
			continue;	/* nothing stored at off */
		if (config_schema_types[k->type].free != NULL)
			config_schema_types[k->type].free(k, obj);
	}
}

/* An entry's keys, and its plug-in's options (found by type again). */
void
config_schema_free_table(const struct config_table *t, void *obj)
{
	const struct config_family	*f = t->family;
	const struct config_plugin	*p;
	const void			*desc;
	void				*opts;
	const char			*type;

	if (f != NULL && (opts = *CONFIG_FIELD(obj, f->opts_off, void *)) !=
	    NULL) {
		type = *CONFIG_FIELD(obj, f->type_off, char *);
		if (type != NULL && (p = f->find(type, &desc)) != NULL)
			config_schema_free_keys(p->keys, p->nkeys, opts);
		free(opts);
	}
	config_schema_free_keys(t->keys, t->nkeys, obj);
}

/* ---- loading */

/* Every required key of every entry holds a value (see config.h). */
int
config_schema_complete(const struct config_table *t, const void *obj)
{
	const struct config_key	*k;
	size_t			 i, j, n;

	for (i = 0; i < t->nkeys; i++) {
		k = &t->keys[i];
		if (k->type == T_TABLE && !config_schema_complete(k->sub,
		    (const char *)obj + k->off))
			return 0;
		if (k->type == T_LIST) {
			const char *arr = *CONFIG_FIELD(obj, k->off, char *);

			n = *CONFIG_FIELD(obj, k->off2, size_t);
			for (j = 0; j < n; j++)
				if (!config_schema_complete(k->sub,
				    arr + j * k->sub->size))
					return 0;
		}
		if ((k->flags & KEY_REQUIRED) &&
		    *CONFIG_FIELD(obj, k->off, char *) == NULL)
			return 0;
	}
	return 1;
}

/* ---- schema export */

static void	config_schema_list_tree(const struct config_table *,
    struct buf *,
		    config_schema_cb *, void *);

/* The type text of one key: "integer, 0..600", "one of: a, b". */
static char *
config_schema_type_text(const struct config_key *k)
{
	char	*type, *req;

	if (k->type == T_INT || k->type == T_SIZE || k->type == T_DOUBLE)
		type = xasprintf("%s, %lld..%lld",
		    config_schema_types[k->type].name,
		    k->min, k->max);
	else if (k->type == T_ENUM || k->type == T_FLAGS) {
		const struct config_enum *e;
		struct buf names;

		buf_init(&names, 0);
		for (e = k->enums; e->name != NULL; e++)
			buf_printf(&names, "%s%s", names.len ? ", " : "",
			    e->name);
		type = xasprintf("%s: %s", config_schema_types[k->type].name,
		    names.data);
		buf_free(&names);
	} else
		type = xstrdup(config_schema_types[k->type].name);
	if (k->flags & KEY_REQUIRED) {
		req = xasprintf("%s, required", type);
		free(type);
		type = req;
	}
	return type;
}

/* A family's type key: its help names every plug-in. */
static char *
config_schema_type_help(const struct config_family *f, const char *help)
{
	const char	*type;
	struct buf	 b;
	size_t		 i;

	buf_init(&b, 0);
	buf_printf(&b, "%s:", help);
	for (i = 0; f->nth(i, &type) != NULL; i++)
		buf_printf(&b, "%s %s", i > 0 ? "," : "", type);
	return buf_steal(&b, NULL);
}

/* Whether keys[0..n) already named name (a key two plug-ins share). */
static int
config_schema_seen(const struct config_key *keys, size_t n, const char *name)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (!(keys[i].flags & KEY_REFUSED) &&
		    strcmp(keys[i].name, name) == 0)
			return 1;
	return 0;
}

static void
config_schema_list_key(const struct config_key *k,
    const struct config_family *f,
    struct buf *path, config_schema_cb *cb, void *arg)
{
	size_t	 old = path->len;
	char	*type, *help = NULL;

	if (old > 0)
		buf_addstr(path, ".");
	buf_addstr(path, k->name);
	type = config_schema_type_text(k);
	if (f != NULL && strcmp(k->name, f->type_key) == 0)
		help = config_schema_type_help(f, k->help);
	cb(path->data, type, k->def, help != NULL ? help : k->help, arg);
	free(help);
	free(type);
	if (k->type == T_TABLE || k->type == T_LIST) {
		if (k->type == T_LIST)
			buf_addstr(path, "[]");
		config_schema_list_tree(k->sub, path, cb, arg);
	}
	path->len = old;
	path->data[old] = '\0';
}

/*
 * A table's keys, then those of each of its plug-ins; a key two plug-ins
 * share is listed once, with the first one's help.
 */
static void
config_schema_list_tree(const struct config_table *t, struct buf *path,
    config_schema_cb *cb,
    void *arg)
{
	const struct config_plugin	*p, *q;
	const char			*type;
	size_t				 i, j, pi, qi;

	for (i = 0; i < t->nkeys; i++)
		config_schema_list_key(&t->keys[i], t->family, path, cb, arg);
	for (pi = 0; t->family != NULL &&
	    (p = t->family->nth(pi, &type)) != NULL; pi++) {
		for (i = 0; i < p->nkeys; i++) {
			const struct config_key *k = &p->keys[i];
			int dup = (k->flags & KEY_REFUSED) ||
			    config_schema_seen(t->keys, t->nkeys, k->name) ||
			    config_schema_seen(p->keys, i, k->name);

			for (qi = 0; !dup && qi < pi; qi++) {
				q = t->family->nth(qi, &type);
				for (j = 0; !dup && j < q->nkeys; j++)
					dup = config_schema_seen(&q->keys[j], 1,
					    k->name);
			}
			if (!dup)
				config_schema_list_key(k, NULL, path, cb, arg);
		}
	}
}

void
config_schema_list_table(const struct config_table *t, config_schema_cb *cb,
    void *arg)
{
	struct buf	path;

	buf_init(&path, 0);
	buf_addstr(&path, "");
	config_schema_list_tree(t, &path, cb, arg);
	buf_free(&path);
}

int
config_schema_is_inline_secret(const char *name)
{
	size_t	i;

	for (i = 0; i < nitems(config_schema_inline_secrets); i++)
		if (strcmp(name, config_schema_inline_secrets[i]) == 0)
			return 1;
	return 0;
}

