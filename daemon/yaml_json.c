/*
 * yaml_json.c: libyaml event stream to cJSON trees, with caps.
 *
 * The parser keeps an explicit stack of open collections; each event either
 * opens one, closes one, or adds a scalar to the top.  Nothing is attached
 * to the result until the whole stream has parsed, so an error anywhere
 * rejects the input whole.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <yaml.h>

#include "util.h"
#include "yaml_json.h"

#define YJ_MAX_BYTES	(8u * 1024 * 1024)
#define YJ_MAX_DOCS	10000
#define YJ_MAX_DEPTH	64
#define YJ_MAX_NODES	1000000
/* Integers beyond 2^53 do not survive a double; they are kept as digits. */
#define YJ_EXACT_INT	9007199254740992LL

struct yj_frame {
	cJSON	*node;
	char	*key;		/* mapping: key waiting for its value */
};

struct yj_parse {
	struct yj_frame	*stack;
	size_t		 depth;
	size_t		 max_depth;
	size_t		 nodes;
	size_t		 max_nodes;
	cJSON		*root;
	char		*err;
	size_t		 errlen;
};

static void
yj_error(struct yj_parse *p, const yaml_mark_t *m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "line L, column C: message" (1-based, as editors count). */
static void
yj_error(struct yj_parse *p, const yaml_mark_t *m, const char *fmt, ...)
{
	va_list	 ap;
	int	 n;

	n = snprintf(p->err, p->errlen, "line %zu, column %zu: ",
	    m->line + 1, m->column + 1);
	if (n < 0 || (size_t)n >= p->errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

static int
yj_all(const char *s, const char *set)
{
	if (*s == '\0')
		return 0;
	return strspn(s, set) == strlen(s);
}

/* YAML 1.2 core schema integer; returns 1 and sets *out when s is one. */
static int
yj_parse_int(const char *s, cJSON **out, int *overflow)
{
	const char	*d = s;
	long long	 v;
	char		*end;
	int		 neg = 0;

	*overflow = 0;
	if (strncmp(s, "0o", 2) == 0 && yj_all(s + 2, "01234567")) {
		errno = 0;
		v = strtoll(s + 2, &end, 8);
		goto number;
	}
	if (strncmp(s, "0x", 2) == 0 && yj_all(s + 2, "0123456789abcdefABCDEF")) {
		errno = 0;
		v = strtoll(s + 2, &end, 16);
		goto number;
	}
	if (*d == '-' || *d == '+') {
		neg = *d == '-';
		d++;
	}
	if (!yj_all(d, "0123456789"))
		return 0;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno == ERANGE || v > YJ_EXACT_INT || v < -YJ_EXACT_INT) {
		/* Keep the exact digits, without sign noise or leading zeros. */
		char	*raw;

		while (d[0] == '0' && d[1] != '\0')
			d++;
		raw = xasprintf("%s%s", neg ? "-" : "", d);
		*out = cJSON_CreateRaw(raw);
		free(raw);
		return 1;
	}
	*out = cJSON_CreateNumber((double)v);
	return 1;
number:
	if (errno == ERANGE || v > YJ_EXACT_INT) {
		*overflow = 1;
		return 0;
	}
	*out = cJSON_CreateNumber((double)v);
	return 1;
}

/* YAML 1.2 core schema float (no .inf/.nan: JSON has none). */
static int
yj_is_float(const char *s)
{
	const char	*p = s;
	size_t		 digits = 0;

	if (*p == '-' || *p == '+')
		p++;
	while (*p >= '0' && *p <= '9') {
		p++;
		digits++;
	}
	if (*p == '.') {
		p++;
		while (*p >= '0' && *p <= '9') {
			p++;
			digits++;
		}
	}
	if (digits == 0)
		return 0;
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '-' || *p == '+')
			p++;
		if (!(*p >= '0' && *p <= '9'))
			return 0;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	return *p == '\0';
}

static int
yj_is_special_float(const char *s)
{
	static const char *const names[] = {
		".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF",
		"-.inf", "-.Inf", "-.INF", ".nan", ".NaN", ".NAN",
	};
	size_t	 i;

	for (i = 0; i < nitems(names); i++)
		if (strcmp(s, names[i]) == 0)
			return 1;
	return 0;
}

static int
yj_is_null(const char *s)
{
	return *s == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
	    strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

static int
yj_bool(const char *s, int *v)
{
	if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 ||
	    strcmp(s, "TRUE") == 0) {
		*v = 1;
		return 1;
	}
	if (strcmp(s, "false") == 0 || strcmp(s, "False") == 0 ||
	    strcmp(s, "FALSE") == 0) {
		*v = 0;
		return 1;
	}
	return 0;
}

/* Turn a scalar event into a typed cJSON value, or NULL with p->err set. */
static cJSON *
yj_scalar(struct yj_parse *p, const yaml_event_t *ev)
{
	const char	*s = (const char *)ev->data.scalar.value;
	const char	*tag = (const char *)ev->data.scalar.tag;
	cJSON		*v = NULL;
	int		 b, overflow = 0, plain;

	if (strlen(s) != ev->data.scalar.length) {
		yj_error(p, &ev->start_mark, "NUL byte in a scalar");
		return NULL;
	}
	plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	if (tag != NULL && strcmp(tag, "!") != 0) {
		if (strcmp(tag, YAML_STR_TAG) == 0)
			return cJSON_CreateString(s);
		if (strcmp(tag, YAML_NULL_TAG) == 0 && yj_is_null(s))
			return cJSON_CreateNull();
		if (strcmp(tag, YAML_BOOL_TAG) == 0 && yj_bool(s, &b))
			return cJSON_CreateBool(b);
		if (strcmp(tag, YAML_INT_TAG) == 0 &&
		    yj_parse_int(s, &v, &overflow))
			return v;
		if (strcmp(tag, YAML_FLOAT_TAG) == 0 && yj_is_float(s))
			return cJSON_CreateNumber(strtod(s, NULL));
		if (strcmp(tag, YAML_NULL_TAG) == 0 ||
		    strcmp(tag, YAML_BOOL_TAG) == 0 ||
		    strcmp(tag, YAML_INT_TAG) == 0 ||
		    strcmp(tag, YAML_FLOAT_TAG) == 0) {
			/* No value in messages: it may be a secret. */
			yj_error(p, &ev->start_mark, "not a valid %s", tag);
			return NULL;
		}
		/* Other tags (!!binary, application tags): the text as is. */
		return cJSON_CreateString(s);
	}
	if (!plain || tag != NULL)
		return cJSON_CreateString(s);
	if (yj_is_null(s))
		return cJSON_CreateNull();
	if (yj_bool(s, &b))
		return cJSON_CreateBool(b);
	if (yj_parse_int(s, &v, &overflow))
		return v;
	if (overflow) {
		yj_error(p, &ev->start_mark, "integer out of range");
		return NULL;
	}
	if (yj_is_float(s))
		return cJSON_CreateNumber(strtod(s, NULL));
	if (yj_is_special_float(s)) {
		yj_error(p, &ev->start_mark,
		    "%s cannot be represented in JSON", s);
		return NULL;
	}
	return cJSON_CreateString(s);
}

/* Attach a finished node to the collection on top (or make it the root). */
static int
yj_attach(struct yj_parse *p, cJSON *v, const yaml_mark_t *m)
{
	struct yj_frame	*top;

	if (p->depth == 0) {
		p->root = v;
		return 0;
	}
	top = &p->stack[p->depth - 1];
	if (cJSON_IsArray(top->node)) {
		cJSON_AddItemToArray(top->node, v);
		return 0;
	}
	if (top->key == NULL) {
		yj_error(p, m, "a mapping key must be a scalar");
		cJSON_Delete(v);
		return -1;
	}
	cJSON_AddItemToObject(top->node, top->key, v);
	free(top->key);
	top->key = NULL;
	return 0;
}

static int
yj_count(struct yj_parse *p, const yaml_mark_t *m)
{
	if (++p->nodes > p->max_nodes) {
		yj_error(p, m, "document too large (over %zu nodes)",
		    p->max_nodes);
		return -1;
	}
	return 0;
}

/* A scalar: a mapping key when the mapping on top waits for one. */
static int
yj_on_scalar(struct yj_parse *p, const yaml_event_t *ev)
{
	struct yj_frame	*top;
	cJSON		*v;
	const char	*s = (const char *)ev->data.scalar.value;

	if (yj_count(p, &ev->start_mark) == -1)
		return -1;
	top = p->depth > 0 ? &p->stack[p->depth - 1] : NULL;
	if (top != NULL && cJSON_IsObject(top->node) && top->key == NULL) {
		if (strlen(s) != ev->data.scalar.length) {
			yj_error(p, &ev->start_mark, "NUL byte in a key");
			return -1;
		}
		if (cJSON_GetObjectItemCaseSensitive(top->node, s) != NULL) {
			yj_error(p, &ev->start_mark, "duplicate key \"%.80s\"",
			    s);
			return -1;
		}
		top->key = xstrdup(s);
		return 0;
	}
	if ((v = yj_scalar(p, ev)) == NULL) {
		if (p->err[0] == '\0')
			yj_error(p, &ev->start_mark, "out of memory");
		return -1;
	}
	return yj_attach(p, v, &ev->start_mark);
}

static int
yj_on_open(struct yj_parse *p, const yaml_event_t *ev, int is_map)
{
	cJSON	*v;

	if (yj_count(p, &ev->start_mark) == -1)
		return -1;
	if (p->depth > 0 && cJSON_IsObject(p->stack[p->depth - 1].node) &&
	    p->stack[p->depth - 1].key == NULL) {
		yj_error(p, &ev->start_mark, "a mapping key must be a scalar");
		return -1;
	}
	if (p->depth >= p->max_depth) {
		yj_error(p, &ev->start_mark, "nesting deeper than %zu",
		    p->max_depth);
		return -1;
	}
	v = is_map ? cJSON_CreateObject() : cJSON_CreateArray();
	if (v == NULL) {
		yj_error(p, &ev->start_mark, "out of memory");
		return -1;
	}
	if (yj_attach(p, v, &ev->start_mark) == -1)
		return -1;
	p->stack[p->depth].node = v;
	p->stack[p->depth].key = NULL;
	p->depth++;
	return 0;
}

static void
yj_reset(struct yj_parse *p)
{
	size_t	 i;

	for (i = 0; i < p->depth; i++)
		free(p->stack[i].key);
	p->depth = 0;
	/* Every open collection hangs off the root. */
	cJSON_Delete(p->root);
	p->root = NULL;
}

void
yaml_json_free(cJSON **docs, size_t ndocs)
{
	size_t	 i;

	if (docs == NULL)
		return;
	for (i = 0; i < ndocs; i++)
		cJSON_Delete(docs[i]);
	free(docs);
}

int
yaml_json_parse(const char *buf, size_t len,
    const struct yaml_json_limits *limits, cJSON ***docsp, size_t *ndocsp,
    char *err, size_t errlen)
{
	struct yaml_json_limits	 lim = { 0 };
	struct yj_parse		 p;
	yaml_parser_t		 parser;
	yaml_event_t		 ev;
	cJSON			**docs = NULL;
	size_t			 ndocs = 0;
	int			 rc = -1, done = 0, have_event = 0;

	*docsp = NULL;
	*ndocsp = 0;
	if (errlen > 0)
		err[0] = '\0';
	if (limits != NULL)
		lim = *limits;
	if (lim.max_bytes == 0)
		lim.max_bytes = YJ_MAX_BYTES;
	if (lim.max_docs == 0)
		lim.max_docs = YJ_MAX_DOCS;
	if (lim.max_depth == 0)
		lim.max_depth = YJ_MAX_DEPTH;
	if (lim.max_nodes == 0)
		lim.max_nodes = YJ_MAX_NODES;
	if (len > lim.max_bytes) {
		snprintf(err, errlen, "%zu bytes, over the limit of %zu", len,
		    lim.max_bytes);
		return -1;
	}
	memset(&p, 0, sizeof(p));
	p.max_depth = lim.max_depth;
	p.max_nodes = lim.max_nodes;
	p.stack = xcalloc(lim.max_depth, sizeof(*p.stack));
	p.err = err;
	p.errlen = errlen;

	if (!yaml_parser_initialize(&parser)) {
		snprintf(err, errlen, "cannot initialize the YAML parser");
		free(p.stack);
		return -1;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	while (!done) {
		if (!yaml_parser_parse(&parser, &ev)) {
			snprintf(err, errlen, "line %zu, column %zu: %s%s%s",
			    parser.problem_mark.line + 1,
			    parser.problem_mark.column + 1,
			    parser.problem != NULL ? parser.problem : "syntax error",
			    parser.context != NULL ? " " : "",
			    parser.context != NULL ? parser.context : "");
			goto out;
		}
		have_event = 1;
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = 1;
			break;
		case YAML_DOCUMENT_START_EVENT:
			p.root = NULL;
			break;
		case YAML_DOCUMENT_END_EVENT:
			if (p.root == NULL || cJSON_IsNull(p.root)) {
				cJSON_Delete(p.root);
				p.root = NULL;
				break;
			}
			if (ndocs >= lim.max_docs) {
				yj_error(&p, &ev.start_mark,
				    "more than %zu documents", lim.max_docs);
				goto out;
			}
			// NOLINTNEXTLINE(bugprone-sizeof-expression): pointers
			docs = xreallocarray(docs, ndocs + 1, sizeof(*docs));
			docs[ndocs++] = p.root;
			p.root = NULL;
			break;
		case YAML_ALIAS_EVENT:
			yj_error(&p, &ev.start_mark,
			    "aliases (*%.40s) are not supported",
			    (const char *)ev.data.alias.anchor);
			goto out;
		case YAML_SCALAR_EVENT:
			if (yj_on_scalar(&p, &ev) == -1)
				goto out;
			break;
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			if (yj_on_open(&p, &ev,
			    ev.type == YAML_MAPPING_START_EVENT) == -1)
				goto out;
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			if (p.depth == 0) {
				yj_error(&p, &ev.start_mark, "unbalanced end");
				goto out;
			}
			p.depth--;
			free(p.stack[p.depth].key);
			p.stack[p.depth].key = NULL;
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
		have_event = 0;
	}
	*docsp = docs;
	*ndocsp = ndocs;
	docs = NULL;
	ndocs = 0;
	rc = 0;
out:
	if (have_event)
		yaml_event_delete(&ev);
	yaml_parser_delete(&parser);
	yj_reset(&p);
	free(p.stack);
	yaml_json_free(docs, ndocs);
	return rc;
}

cJSON *
yaml_json_parse_one(const char *buf, size_t len, char *err, size_t errlen)
{
	cJSON	**docs;
	cJSON	*one;
	size_t	 n;

	if (yaml_json_parse(buf, len, NULL, &docs, &n, err, errlen) == -1)
		return NULL;
	if (n > 1) {
		snprintf(err, errlen, "expected one YAML document, found %zu", n);
		yaml_json_free(docs, n);
		return NULL;
	}
	if (n == 0) {
		free(docs);
		return cJSON_CreateObject();
	}
	one = docs[0];
	free(docs);
	return one;
}
