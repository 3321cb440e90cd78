/*
 * config_yaml.c: the configuration's YAML as a node tree with positions,
 * and the diagnostics about it (DESIGN.md section 6).
 *
 * libyaml events are built into a small tree that keeps the 1-based line
 * and column of every key and value.  Aliases are refused (no billion
 * laughs), nesting is capped at CONFIG_YAML_MAX_DEPTH.  A syntax error
 * stops the parse: libyaml cannot resume after one.
 *
 * Diagnostics are collected, sorted by position, and formatted
 * "FILE:LINE:COLUMN: key.path: message".  The marks keep the position of
 * every key path seen, so that checks made after the walk (daemon/check.c)
 * report in the same form.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "config.h"
#include "config_schema.h"
#include "config_yaml.h"
#include "util.h"

#define CONFIG_YAML_MAX_DEPTH	64

/* ---- diagnostics */

static void
config_diags_add(struct config_diags *d, int line, int col, size_t seq,
    char *msg)
{
	if (d->n == d->alloc) {
		d->alloc = d->alloc ? d->alloc * 2 : 16;
		d->v = xreallocarray(d->v, d->alloc, sizeof(*d->v));
	}
	d->v[d->n].line = line;
	d->v[d->n].col = col;
	d->v[d->n].seq = seq;
	d->v[d->n].msg = msg;
	d->n++;
}

void
config_diags_free(struct config_diags *d)
{
	size_t	i;

	for (i = 0; i < d->n; i++)
		free(d->v[i].msg);
	free(d->v);
	memset(d, 0, sizeof(*d));
}

static int
config_diag_cmp(const void *a, const void *b)
{
	const struct config_diag *x = a, *y = b;

	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	if (x->col != y->col)
		return x->col < y->col ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void
config_yaml_strv_push(char ***v, size_t *n, char *s)
{
	*v = xreallocarray(*v, *n + 1, sizeof(**v));
	(*v)[(*n)++] = s;
}

/* Formats one message; path NULL or "" leaves the key part out. */
char *
config_diag_format(const char *file, int line, int col, const char *path,
    const char *fmt, va_list ap)
{
	char	*msg, *s;

	msg = xvasprintf(fmt, ap);
	if (path != NULL && *path != '\0')
		s = xasprintf("%s:%d:%d: %s: %s", file, line, col, path, msg);
	else
		s = xasprintf("%s:%d:%d: %s", file, line, col, msg);
	free(msg);
	return s;
}

void
config_marks_add(struct config_marks *m, const char *path, int line, int col)
{
	if (m->n == m->alloc) {
		m->alloc = m->alloc ? m->alloc * 2 : 64;
		m->v = xreallocarray(m->v, m->alloc, sizeof(*m->v));
	}
	m->v[m->n].path = xstrdup(path);
	m->v[m->n].line = line;
	m->v[m->n].col = col;
	m->n++;
	m->sorted = 0;
}

static int
config_marks_cmp(const void *a, const void *b)
{
	const struct config_mark *x = a, *y = b;

	return strcmp(x->path, y->path);
}

void
config_marks_free(struct config_marks *m)
{
	size_t	i;

	if (m == NULL)
		return;
	for (i = 0; i < m->n; i++)
		free(m->v[i].path);
	free(m->v);
	free(m->file);
	free(m);
}

/*
 * Position of keypath, or of its nearest recorded parent; 1:1 when none.
 * "a[2].b.c" falls back to "a[2].b", "a[2]", "a".
 */
void
config_marks_find(const struct config_marks *m, const char *keypath, int *line,
    int *col)
{
	struct config_mark	 key, *hit;
	char		*p, *cut;

	*line = 1;
	*col = 1;
	if (m == NULL || m->n == 0 || keypath == NULL)
		return;
	p = xstrdup(keypath);
	memset(&key, 0, sizeof(key));
	for (;;) {
		key.path = p;
		if (m->sorted)
			hit = bsearch(&key, m->v, m->n, sizeof(*m->v),
			    config_marks_cmp);
		else {
			size_t	i;

			hit = NULL;
			for (i = 0; i < m->n && hit == NULL; i++)
				if (strcmp(m->v[i].path, p) == 0)
					hit = &m->v[i];
		}
		if (hit != NULL) {
			*line = hit->line;
			*col = hit->col;
			break;
		}
		if (*p == '\0')
			break;
		cut = strrchr(p, '.');
		if (p[strlen(p) - 1] == ']') {
			char	*br = strrchr(p, '[');

			if (br != NULL && (cut == NULL || br > cut))
				cut = br;
		}
		if (cut == NULL)
			*p = '\0';
		else
			*cut = '\0';
	}
	free(p);
}

/* ---- YAML to node tree */

void
config_node_free(struct config_node *n)
{
	size_t	i;

	if (n == NULL)
		return;
	for (i = 0; i < n->nkids; i++)
		config_node_free(n->kids[i]);
	free(n->kids);
	free(n->str);
	free(n);
}

static void
config_node_add(struct config_node *parent, struct config_node *kid)
{
	if (parent->nkids == parent->allockids) {
		parent->allockids = parent->allockids ? parent->allockids * 2 : 8;
		parent->kids = xreallocarray(parent->kids, parent->allockids,
		// NOLINTNEXTLINE(bugprone-sizeof-expression): array of pointers
		    sizeof(*parent->kids));
	}
	parent->kids[parent->nkids++] = kid;
}

static int
config_yaml_is_null(const char *s, size_t len)
{
	return len == 0 || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
	    strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

/*
 * The key path of the innermost open collection, for syntax errors (the
 * walker's path does not exist yet while parsing).
 */
static char *
config_yaml_stack_path(struct config_node **stack, size_t depth)
{
	struct buf	b;
	size_t		i;

	buf_init(&b, 0);
	buf_addstr(&b, "");
	for (i = 0; i < depth; i++) {
		struct config_node *n = stack[i];

		if (n->kind == CONFIG_NODE_SEQ) {
			/* Inner levels: the open item; innermost: the next one. */
			buf_printf(&b, "[%zu]", i + 1 < depth ? n->nkids - 1 :
			    n->nkids);
		} else if (n->kind == CONFIG_NODE_MAP && n->nkids > 0) {
			struct config_node *k;

			/* Odd: a key waits for its value; even: between pairs. */
			if (n->nkids % 2 == 1)
				k = n->kids[n->nkids - 1];
			else if (i + 1 < depth)
				k = n->kids[n->nkids - 2];
			else
				break;
			if (k->kind != CONFIG_NODE_SCALAR)
				break;
			if (b.len > 0)
				buf_addstr(&b, ".");
			buf_addstr(&b, k->str);
		}
	}
	return buf_steal(&b, NULL);
}

static void
config_yaml_error(const char *file, struct config_diags *errs,
    struct config_node **stack, size_t depth, int line, int col,
    const char *fmt, ...) __attribute__((format(printf, 7, 8)));
static void
config_yaml_error(const char *file, struct config_diags *errs,
    struct config_node **stack, size_t depth, int line, int col,
    const char *fmt, ...)
{
	char		*path;
	va_list		 ap;

	path = config_yaml_stack_path(stack, depth);
	va_start(ap, fmt);
	config_diags_vadd(errs, file, line, col, path, fmt, ap);
	va_end(ap);
	free(path);
}

static int
config_yaml_tag_ok(const char *tag, const char *want)
{
	static const char prefix[] = "tag:yaml.org,2002:";

	return strncmp(tag, prefix, sizeof(prefix) - 1) == 0 &&
	    strcmp(tag + sizeof(prefix) - 1, want) == 0;
}

/*
 * Parse buf into a node tree.  Returns the root (a null scalar for an empty
 * document) or NULL after recording the error.
 */
struct config_node *
config_yaml_parse(const char *file, struct config_diags *errs, const char *buf,
    size_t len)
{
	yaml_parser_t	 parser;
	yaml_event_t	 ev;
	struct config_node	*stack[CONFIG_YAML_MAX_DEPTH + 1];
	struct config_node	*root = NULL, *n;
	size_t		 depth = 0;
	int		 done = 0, ok = 0, ndocs = 0;

	if (!yaml_parser_initialize(&parser)) {
		config_yaml_error(file, errs, stack, 0, 1, 1,
		    "cannot initialize the YAML parser");
		return NULL;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	while (!done) {
		if (!yaml_parser_parse(&parser, &ev)) {
			char	 ctxbuf[128] = "";

			if (parser.context != NULL)
				snprintf(ctxbuf, sizeof(ctxbuf), " (%s)",
				    parser.context);
			config_yaml_error(file, errs, stack, depth,
			    (int)parser.problem_mark.line + 1,
			    (int)parser.problem_mark.column + 1,
			    "syntax error: %s%s", parser.problem ?
			    parser.problem : "invalid YAML", ctxbuf);
			goto out;
		}
		n = NULL;
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = 1;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (++ndocs > 1) {
				config_yaml_error(file, errs, stack, 0,
				    (int)ev.start_mark.line + 1,
				    (int)ev.start_mark.column + 1,
				    "only one YAML document is allowed");
				yaml_event_delete(&ev);
				goto out;
			}
			break;
		case YAML_ALIAS_EVENT:
			config_yaml_error(file, errs, stack, depth,
			    (int)ev.start_mark.line + 1,
			    (int)ev.start_mark.column + 1,
			    "aliases (*%s) are not allowed in the configuration",
			    (const char *)ev.data.alias.anchor);
			yaml_event_delete(&ev);
			goto out;
		case YAML_SCALAR_EVENT:
			n = xcalloc(1, sizeof(*n));
			n->kind = CONFIG_NODE_SCALAR;
			n->str = xstrndup((const char *)ev.data.scalar.value,
			    ev.data.scalar.length);
			n->len = ev.data.scalar.length;
			n->plain = ev.data.scalar.plain_implicit &&
			    ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
			if (ev.data.scalar.tag != NULL) {
				const char *t = (const char *)ev.data.scalar.tag;

				if (config_yaml_tag_ok(t, "null"))
					n->null = 1;
				else if (config_yaml_tag_ok(t, "str"))
					n->plain = 0;
				else if (!config_yaml_tag_ok(t,
				    "int") && !config_yaml_tag_ok(t, "bool") &&
				    !config_yaml_tag_ok(t, "float")) {
					config_yaml_error(file, errs, stack,
					    depth,
					    (int)ev.start_mark.line + 1,
					    (int)ev.start_mark.column + 1,
					    "YAML tag %s is not supported", t);
					free(n->str);
					free(n);
					yaml_event_delete(&ev);
					goto out;
				} else
					n->plain = 1;
			}
			if (n->plain && config_yaml_is_null(n->str, n->len))
				n->null = 1;
			break;
		case YAML_MAPPING_START_EVENT:
		case YAML_SEQUENCE_START_EVENT:
			n = xcalloc(1, sizeof(*n));
			n->kind = ev.type == YAML_MAPPING_START_EVENT ?
			    CONFIG_NODE_MAP : CONFIG_NODE_SEQ;
			break;
		case YAML_MAPPING_END_EVENT:
		case YAML_SEQUENCE_END_EVENT:
			/* libyaml pairs ends with starts; never wrap anyway. */
			if (depth > 0)
				depth--;
			break;
		default:
			break;
		}
		if (n != NULL) {
			n->line = (int)ev.start_mark.line + 1;
			n->col = (int)ev.start_mark.column + 1;
			if (n->kind != CONFIG_NODE_SCALAR && depth == CONFIG_YAML_MAX_DEPTH) {
				config_yaml_error(file, errs, stack, depth,
				    n->line, n->col,
				    "nesting deeper than %d levels",
				    CONFIG_YAML_MAX_DEPTH);
				config_node_free(n);
				yaml_event_delete(&ev);
				goto out;
			}
			if (depth > 0) {
				struct config_node *top = stack[depth - 1];

				if (top->kind == CONFIG_NODE_MAP && top->nkids % 2 == 0 &&
				    n->kind != CONFIG_NODE_SCALAR) {
					config_yaml_error(file, errs, stack,
					    depth, n->line,
					    n->col, "mapping keys must be scalars");
					config_node_free(n);
					yaml_event_delete(&ev);
					goto out;
				}
				config_node_add(top, n);
			} else
				root = n;
			if (n->kind != CONFIG_NODE_SCALAR)
				stack[depth++] = n;
		}
		yaml_event_delete(&ev);
	}
	ok = 1;
out:
	yaml_parser_delete(&parser);
	if (!ok) {
		config_node_free(root);
		return NULL;
	}
	if (root == NULL) {
		/* An empty file is an empty configuration. */
		root = xcalloc(1, sizeof(*root));
		root->kind = CONFIG_NODE_SCALAR;
		root->str = xstrdup("");
		root->null = 1;
		root->plain = 1;
		root->line = root->col = 1;
	}
	return root;
}

const char *
config_node_kind_name(const struct config_node *v)
{
	if (v->kind == CONFIG_NODE_MAP)
		return "a mapping";
	if (v->kind == CONFIG_NODE_SEQ)
		return "a list";
	return v->plain ? "a scalar" : "a quoted string";
}

const struct config_node *
config_node_get(const struct config_node *map, const char *key)
{
	size_t	i;

	if (map == NULL || map->kind != CONFIG_NODE_MAP)
		return NULL;
	for (i = 0; i + 1 < map->nkids; i += 2)
		if (strcmp(map->kids[i]->str, key) == 0)
			return map->kids[i + 1];
	return NULL;
}

const struct config_node *
config_node_get_key(const struct config_node *map, const char *key)
{
	size_t	i;

	if (map == NULL || map->kind != CONFIG_NODE_MAP)
		return NULL;
	for (i = 0; i + 1 < map->nkids; i += 2)
		if (strcmp(map->kids[i]->str, key) == 0)
			return map->kids[i];
	return NULL;
}

/* Present and not null. */
int
config_node_has(const struct config_node *map, const char *key)
{
	const struct config_node *v = config_node_get(map, key);

	return v != NULL && !(v->kind == CONFIG_NODE_SCALAR && v->null);
}

/* Move the messages, sorted by position, to the end of *v. */
void
config_diags_flush(struct config_diags *d, char ***v, size_t *n)
{
	size_t	i;

	if (d->n > 0)
		qsort(d->v, d->n, sizeof(*d->v), config_diag_cmp);
	for (i = 0; i < d->n; i++) {
		config_yaml_strv_push(v, n, d->v[i].msg);
		d->v[i].msg = NULL;
	}
}

void
config_diags_vadd(struct config_diags *d, const char *file, int line, int col,
    const char *path, const char *fmt, va_list ap)
{
	config_diags_add(d, line, col, d->seq++,
	    config_diag_format(file, line, col, path, fmt, ap));
}

void
config_marks_sort(struct config_marks *m)
{
	if (m->n > 0)
		qsort(m->v, m->n, sizeof(*m->v), config_marks_cmp);
	m->sorted = 1;
}

