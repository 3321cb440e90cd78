/*
 * manifest.c: byte-exact image tag edits in YAML manifests.
 *
 * DESIGN: libyaml's event parser is run over the file only to find the
 * scalars to change and their positions; the output is the input with a
 * few byte ranges replaced (splices), so comments, quoting, key order,
 * anchors, CRLF line ends and other documents are kept as they were.
 * libyaml reports positions as character indexes (a CRLF counts two, a
 * multi-byte UTF-8 sequence one, the BOM none): they are mapped to byte
 * offsets before splicing, and every splice checks that the bytes it
 * replaces are the scalar libyaml saw.
 *
 * Places recognised (docs/image-updates.md):
 *  - `image:` in a mapping that is an item of a `containers`,
 *    `initContainers` or `ephemeralContainers` sequence, at any depth (so
 *    every workload kind and custom resources with pod templates);
 *  - kustomization files: `images:` entries (`newTag` set or added);
 *  - any scalar followed on its line by `# {"$imagepolicy": "<app>:<image>"}`
 *    (whole reference), with `:tag`, `:name` or `:digest` for parts.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <yaml.h>
#include <regex.h>

#include "manifest.h"
#include "policy.h"
#include "util.h"

enum manifest_frame_type {
	FRAME_MAPPING,
	FRAME_SEQUENCE,
};

/* A scalar seen in a kustomize images entry. */
struct manifest_span {
	int		 set;
	int		 editable;		/* start/end valid */
	size_t		 start, end;		/* byte offsets of the value */
	yaml_scalar_style_t style;
	char		*value;
};

struct manifest_frame {
	enum manifest_frame_type type;
	int		 want_key;		/* mapping: next node is a key */
	int		 flow;
	char		 in_parent[32];		/* key in parent, "[]" in a sequence */
	char		 key[32];		/* mapping: key of the value being read */
	size_t		 start;			/* byte offset of the node */
	size_t		 key_col;		/* column (chars) of the first key */
	int		 have_key_col;
	size_t		 last_end;		/* byte end of the last value */
	size_t		 content_end;		/* end of the last scalar, alias or
						 * flow bracket inside */
	int		 kust_entry;		/* a kustomize images entry */
	struct manifest_span name, new_name, new_tag, digest;
	char		**keys;			/* mapping: scalar keys seen */
	size_t		 nkeys;
};

/* Keys one mapping may hold; more is refused, not searched. */
#define MANIFEST_MAX_KEYS	4096

struct manifest_splice {
	size_t		 off;
	size_t		 del;
	char		*ins;
};

struct manifest_ctx {
	const char		*name;
	const char		*buf;
	size_t			 len;
	size_t			 bom;		/* bytes of BOM skipped by libyaml */
	uint32_t		*map;		/* char index -> byte offset, or NULL */
	size_t			 nmap;
	const struct manifest_target *t;
	char			*want;		/* normalized target image */
	int			 kustomization;
	struct manifest_frame	 stack[MANIFEST_MAX_DEPTH + 1];
	int			 depth;
	int			 aliases;
	struct manifest_splice	*splices;
	size_t			 nsplices;
	struct manifest_result	*res;
	char			*err;
	size_t			 errlen;
};

static void
manifest_span_clear(struct manifest_span *s)
{
	free(s->value);
	memset(s, 0, sizeof(*s));
}

static void
manifest_frame_clear(struct manifest_frame *f)
{
	size_t	 i;

	for (i = 0; i < f->nkeys; i++)
		free(f->keys[i]);
	free(f->keys);
	f->keys = NULL;
	f->nkeys = 0;
	manifest_span_clear(&f->name);
	manifest_span_clear(&f->new_name);
	manifest_span_clear(&f->new_tag);
	manifest_span_clear(&f->digest);
}

void
manifest_result_free(struct manifest_result *r)
{
	free(r->out);
	free(r->old_tag);
	free(r->note);
	memset(r, 0, sizeof(*r));
}

static void
manifest_note(struct manifest_ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
manifest_note(struct manifest_ctx *c, const char *fmt, ...)
{
	va_list	 ap;

	if (c->res->note != NULL)
		return;
	va_start(ap, fmt);
	c->res->note = xvasprintf(fmt, ap);
	va_end(ap);
}

const char *
manifest_marker_image(const char *repository)
{
	const char	*s = strrchr(repository, '/');

	return s != NULL ? s + 1 : repository;
}

/* Byte span of the name part, tag and digest in a reference text. */
struct manifest_refparts {
	size_t	 name_end;		/* end of "host/path" */
	int	 has_tag;
	size_t	 tag_start, tag_end;
	int	 has_digest;
	size_t	 digest_start, digest_end;	/* after '@' */
};

static int
manifest_ref_split(const char *s, size_t n, struct manifest_refparts *p)
{
	const char	*at, *slash, *colon;
	size_t		 i, base;

	memset(p, 0, sizeof(*p));
	if (n == 0)
		return -1;
	for (i = 0; i < n; i++)
		if (isspace((unsigned char)s[i]) || s[i] == '\0')
			return -1;
	at = memchr(s, '@', n);
	base = at != NULL ? (size_t)(at - s) : n;
	if (at != NULL) {
		p->has_digest = 1;
		p->digest_start = base + 1;
		p->digest_end = n;
	}
	slash = NULL;
	for (i = 0; i < base; i++)
		if (s[i] == '/')
			slash = s + i;
	colon = NULL;
	for (i = slash != NULL ? (size_t)(slash - s) : 0; i < base; i++)
		if (s[i] == ':')
			colon = s + i;
	if (colon != NULL) {
		p->has_tag = 1;
		p->tag_start = (size_t)(colon - s) + 1;
		p->tag_end = base;
		p->name_end = (size_t)(colon - s);
	} else
		p->name_end = base;
	return p->name_end > 0 ? 0 : -1;
}

/* Normalized through policy.c, the one place that knows Docker Hub rules. */
char *
manifest_image_name(const char *ref)
{
	struct image_ref	 r;
	char			 err[128], *name;

	if (ref == NULL || image_ref_parse(ref, &r, err, sizeof(err)) == -1)
		return NULL;
	name = image_ref_name(&r);
	image_ref_free(&r);
	return name;
}

/* Build the char-index -> byte map when the input is not plain ASCII. */
static int
manifest_map_init(struct manifest_ctx *c)
{
	size_t	 i, n = 0;
	int	 ascii = 1;

	if (c->len >= 3 && memcmp(c->buf, "\xef\xbb\xbf", 3) == 0)
		c->bom = 3;
	for (i = c->bom; i < c->len; i++) {
		if ((unsigned char)c->buf[i] >= 0x80) {
			ascii = 0;
			break;
		}
	}
	if (ascii && c->bom == 0)
		return 0;
	c->map = xcalloc(c->len + 1, sizeof(*c->map));
	for (i = c->bom; i < c->len; ) {
		unsigned char	 b = (unsigned char)c->buf[i];
		size_t		 w = b < 0x80 ? 1 : (b & 0xe0) == 0xc0 ? 2 :
		    (b & 0xf0) == 0xe0 ? 3 : (b & 0xf8) == 0xf0 ? 4 : 0;

		if (w == 0 || i + w > c->len)
			return -1;
		c->map[n++] = (uint32_t)i;
		i += w;
	}
	c->map[n++] = (uint32_t)c->len;
	c->nmap = n;
	return 0;
}

static size_t
manifest_off(const struct manifest_ctx *c, size_t index)
{
	if (c->map == NULL)
		return index;
	if (index >= c->nmap)
		return c->len;
	return c->map[index];
}

static void
manifest_splice_add(struct manifest_ctx *c, size_t off, size_t del,
    const char *ins)
{
	size_t	 i;

	/* Two places can name the same bytes (marker on a container image). */
	for (i = 0; i < c->nsplices; i++)
		if (c->splices[i].off == off && c->splices[i].del == del)
			return;
	c->splices = xreallocarray(c->splices, c->nsplices + 1,
	    sizeof(*c->splices));
	c->splices[c->nsplices].off = off;
	c->splices[c->nsplices].del = del;
	c->splices[c->nsplices].ins = xstrdup(ins);
	c->nsplices++;
}

/*
 * Bytes of a scalar's content: plain and quoted styles only, and only when
 * the source text equals the value (no escapes or folding), so replacing
 * bytes replaces exactly the value.
 */
static int
manifest_scalar_content(struct manifest_ctx *c, const yaml_event_t *e,
    size_t *sp, size_t *ep)
{
	size_t	 en = manifest_off(c, e->end_mark.index);
	size_t	 vlen = e->data.scalar.length;
	char	 q;

	/*
	 * The node may start with an anchor or a tag, so go back from its
	 * end: the value's bytes, then (quoted styles) the closing quote.
	 */
	switch (e->data.scalar.style) {
	case YAML_PLAIN_SCALAR_STYLE:
		/* An empty plain scalar (null) has no bytes of its own. */
		if (vlen == 0)
			return -1;
		break;
	case YAML_SINGLE_QUOTED_SCALAR_STYLE:
	case YAML_DOUBLE_QUOTED_SCALAR_STYLE:
		q = e->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ?
		    '\'' : '"';
		if (en < 2 || c->buf[en - 1] != q)
			return -1;
		en--;
		if (en < vlen + 1 || c->buf[en - vlen - 1] != q)
			return -1;
		break;
	default:
		return -1;
	}
	if (en < vlen || memcmp(c->buf + en - vlen, e->data.scalar.value,
	    vlen) != 0)
		return -1;
	*sp = en - vlen;
	*ep = en;
	return 0;
}

/* Would a plain scalar with this text resolve to something not a string? */
static int
manifest_plain_unsafe(const char *s)
{
	static const char *const words[] = { "true", "false", "yes", "no",
	    "on", "off", "y", "n", "null", "~", ".inf", "-.inf", "+.inf",
	    ".nan" };
	/* YAML 1.1 and 1.2 ints and floats (1, 1.10, 1e3, 0x1f, 0o17, 1_000). */
	static const char *const number =
	    "^([-+]?(\\.[0-9]+|[0-9][0-9_]*(\\.[0-9_]*)?)([eE][-+]?[0-9]+)?"
	    "|0[xX][0-9a-fA-F_]+|0[oO]?[0-7_]+|0[bB][01_]+)$";
	regex_t	 re;
	size_t	 i;
	int	 m;

	for (i = 0; i < nitems(words); i++)
		if (strcasecmp(s, words[i]) == 0)
			return 1;
	if (*s == '\0')
		return 1;
	if (regcomp(&re, number, REG_EXTENDED | REG_NOSUB) != 0)
		return 1;	/* quoting is always safe */
	m = regexec(&re, s, 0, NULL, 0) == 0;
	regfree(&re);
	return m;
}

/* Text to write for a bare value in a scalar of this style. */
static char *
manifest_scalar_text(yaml_scalar_style_t style, const char *v)
{
	if (style == YAML_PLAIN_SCALAR_STYLE && manifest_plain_unsafe(v))
		return xasprintf("\"%s\"", v);
	return xstrdup(v);
}

static void
manifest_set_old(struct manifest_ctx *c, const char *s, size_t n)
{
	if (c->res->old_tag == NULL && s != NULL)
		c->res->old_tag = xstrndup(s, n);
}

/*
 * Decide on one found reference whose current tag is cur (NULL: none) and
 * digest curd.  Returns 1 to edit, 0 to leave.
 */
static int
manifest_decide(struct manifest_ctx *c, const char *cur, size_t curlen,
    const char *curd, size_t curdlen)
{
	const struct manifest_target	*t = c->t;
	char				*ctag;
	int				 tag_same, dig_same;

	c->res->found++;
	tag_same = t->tag == NULL || (cur != NULL && strlen(t->tag) == curlen &&
	    memcmp(cur, t->tag, curlen) == 0);
	/* A reference without a digest gets none: only pins move. */
	dig_same = t->digest == NULL || curd == NULL ||
	    (strlen(t->digest) == curdlen && memcmp(curd, t->digest,
	    curdlen) == 0);
	if (tag_same && dig_same) {
		c->res->already++;
		manifest_set_old(c, cur, curlen);
		return 0;
	}
	if (!tag_same && t->newer != NULL) {
		ctag = cur != NULL ? xstrndup(cur, curlen) : NULL;
		if (!t->newer(t->arg, ctag, t->tag)) {
			c->res->skipped++;
			manifest_note(c, "%s: current tag %s is not older than %s",
			    c->name, ctag != NULL ? ctag : "(none)", t->tag);
			manifest_set_old(c, cur, curlen);
			free(ctag);
			return 0;
		}
		free(ctag);
	}
	manifest_set_old(c, cur, curlen);
	return 1;
}

/* A whole reference in scalar e (container image, whole-ref marker). */
static void
manifest_edit_ref(struct manifest_ctx *c, const yaml_event_t *e, int marker)
{
	struct manifest_refparts	 p;
	const char			*v = (const char *)e->data.scalar.value;
	size_t				 s, en;
	char				*name;
	int				 same;

	if (manifest_ref_split(v, e->data.scalar.length, &p) == -1)
		return;
	name = manifest_image_name(v);
	same = name != NULL && strcmp(name, c->want) == 0;
	free(name);
	if (!same) {
		if (marker)
			manifest_note(c, "%s:%zu: marker names %s but the "
			    "value is another image", c->name,
			    (size_t)e->start_mark.line + 1, c->t->marker);
		return;
	}
	if (manifest_scalar_content(c, e, &s, &en) == -1) {
		c->res->found++;
		c->res->unsupported++;
		manifest_note(c, "%s:%zu: image value uses escapes or a block "
		    "style; not edited", c->name, (size_t)e->start_mark.line + 1);
		return;
	}
	if (p.has_digest && c->t->digest == NULL && c->t->tag != NULL &&
	    !(p.has_tag && strlen(c->t->tag) == p.tag_end - p.tag_start &&
	    memcmp(v + p.tag_start, c->t->tag, p.tag_end - p.tag_start) == 0)) {
		/* The digest would keep pinning the old image. */
		c->res->found++;
		c->res->unsupported++;
		manifest_note(c, "%s:%zu: reference is pinned by digest and the "
		    "event has no digest; not edited", c->name,
		    (size_t)e->start_mark.line + 1);
		return;
	}
	if (!manifest_decide(c, p.has_tag ? v + p.tag_start : NULL,
	    p.tag_end - p.tag_start, p.has_digest ? v + p.digest_start : NULL,
	    p.digest_end - p.digest_start))
		return;
	if (c->t->tag != NULL) {
		if (p.has_tag)
			manifest_splice_add(c, s + p.tag_start,
			    p.tag_end - p.tag_start, c->t->tag);
		else {
			char *ins = xasprintf(":%s", c->t->tag);

			manifest_splice_add(c, s + p.name_end, 0, ins);
			free(ins);
		}
	}
	if (c->t->digest != NULL && p.has_digest)
		manifest_splice_add(c, s + p.digest_start,
		    p.digest_end - p.digest_start, c->t->digest);
	c->res->changed++;
}

/* A scalar holding only a tag or only a digest (marker :tag / :digest). */
static void
manifest_edit_part(struct manifest_ctx *c, const yaml_event_t *e,
    int is_digest)
{
	const char	*v = (const char *)e->data.scalar.value;
	const char	*want = is_digest ? c->t->digest : c->t->tag;
	size_t		 s, en, vlen = e->data.scalar.length;
	char		*txt;

	if (want == NULL)
		return;
	if (manifest_scalar_content(c, e, &s, &en) == -1) {
		c->res->found++;
		c->res->unsupported++;
		manifest_note(c, "%s:%zu: marked value uses escapes or a block "
		    "style; not edited", c->name, (size_t)e->start_mark.line + 1);
		return;
	}
	if (is_digest) {
		c->res->found++;
		if (vlen == strlen(want) && memcmp(v, want, vlen) == 0) {
			c->res->already++;
			return;
		}
	} else if (!manifest_decide(c, vlen > 0 ? v : NULL, vlen, NULL, 0))
		return;
	else if (vlen == strlen(want) && memcmp(v, want, vlen) == 0)
		return;		/* tag right already; only a digest moves */
	txt = manifest_scalar_text(e->data.scalar.style, want);
	manifest_splice_add(c, s, en - s, txt);
	free(txt);
	c->res->changed++;
}

/*
 * The `# {"$imagepolicy": "..."}` marker after a scalar on its line:
 * returns 0 none/other, 1 whole reference, 2 tag, 3 name, 4 digest.
 */
static int
manifest_marker(struct manifest_ctx *c, size_t end)
{
	size_t		 i = end, eol, mlen;
	char		*text;
	cJSON		*j, *v;
	const char	*s;
	int		 kind = 0;

	while (i < c->len && (c->buf[i] == ' ' || c->buf[i] == '\t'))
		i++;
	if (i >= c->len || c->buf[i] != '#')
		return 0;
	for (eol = i; eol < c->len && c->buf[eol] != '\n' && c->buf[eol] != '\r';
	    eol++)
		;
	i++;
	while (i < eol && (c->buf[i] == ' ' || c->buf[i] == '\t'))
		i++;
	if (i >= eol || c->buf[i] != '{')
		return 0;
	text = xstrndup(c->buf + i, eol - i);
	j = cJSON_Parse(text);
	free(text);
	if (j == NULL)
		return 0;
	v = cJSON_GetObjectItemCaseSensitive(j, "$imagepolicy");
	if (cJSON_IsString(v) && c->t->marker != NULL) {
		s = v->valuestring;
		mlen = strlen(c->t->marker);
		if (strncmp(s, c->t->marker, mlen) == 0) {
			if (s[mlen] == '\0')
				kind = 1;
			else if (strcmp(s + mlen, ":tag") == 0)
				kind = 2;
			else if (strcmp(s + mlen, ":name") == 0)
				kind = 3;
			else if (strcmp(s + mlen, ":digest") == 0)
				kind = 4;
		}
	}
	cJSON_Delete(j);
	return kind;
}

static int
manifest_is_container_key(const char *k)
{
	return strcmp(k, "containers") == 0 ||
	    strcmp(k, "initContainers") == 0 ||
	    strcmp(k, "ephemeralContainers") == 0;
}

/* A value scalar: container image by position, or a marked scalar. */
static void
manifest_on_value(struct manifest_ctx *c, const yaml_event_t *e)
{
	struct manifest_frame	*f = &c->stack[c->depth - 1];
	size_t			 end = manifest_off(c, e->end_mark.index);
	int			 kind, by_place = 0;

	if (f->type == FRAME_MAPPING && strcmp(f->key, "image") == 0 &&
	    strcmp(f->in_parent, "[]") == 0 && c->depth >= 2 &&
	    c->stack[c->depth - 2].type == FRAME_SEQUENCE &&
	    manifest_is_container_key(c->stack[c->depth - 2].in_parent)) {
		by_place = 1;
		manifest_edit_ref(c, e, 0);
	}
	kind = manifest_marker(c, end);
	if (kind == 1 && !by_place)
		manifest_edit_ref(c, e, 1);
	else if (kind == 2)
		manifest_edit_part(c, e, 0);
	else if (kind == 4)
		manifest_edit_part(c, e, 1);
}

static void
manifest_span_set(struct manifest_ctx *c, struct manifest_span *sp,
    const yaml_event_t *e)
{
	manifest_span_clear(sp);
	sp->set = 1;
	sp->editable = manifest_scalar_content(c, e, &sp->start, &sp->end) == 0;
	sp->style = e->data.scalar.style;
	sp->value = xstrndup((const char *)e->data.scalar.value,
	    e->data.scalar.length);
}

/*
 * Length of the line break at byte i (CRLF, CR, LF, and the NEL, LS and PS
 * characters libyaml also takes as breaks), or 0.
 */
static size_t
manifest_break_len(const struct manifest_ctx *c, size_t i)
{
	const unsigned char	*b = (const unsigned char *)c->buf + i;
	size_t			 left = c->len - i;

	if (left >= 2 && b[0] == '\r' && b[1] == '\n')
		return 2;
	if (b[0] == '\r' || b[0] == '\n')
		return 1;
	if (left >= 2 && b[0] == 0xc2 && b[1] == 0x85)
		return 2;
	if (left >= 3 && b[0] == 0xe2 && b[1] == 0x80 &&
	    (b[2] == 0xa8 || b[2] == 0xa9))
		return 3;
	return 0;
}

/*
 * The line break ending the line that holds byte off: *at is where it
 * starts (c->len when the file ends first), the return value its bytes
 * (malloc'd; the file's first break, or "\n", when the line has none).
 */
static char *
manifest_eol_at(const struct manifest_ctx *c, size_t off, size_t *at)
{
	size_t	 i, n;

	for (i = off; i < c->len; i++)
		if ((n = manifest_break_len(c, i)) > 0) {
			*at = i;
			return xstrndup(c->buf + i, n);
		}
	*at = c->len;
	for (i = 0; i < c->len; i++)
		if ((n = manifest_break_len(c, i)) > 0)
			return xstrndup(c->buf + i, n);
	return xstrdup("\n");
}

/* A kustomize images entry ended: set or add newTag (and digest). */
static void
manifest_kust_entry(struct manifest_ctx *c, struct manifest_frame *f)
{
	struct manifest_span	*img = f->new_name.set ? &f->new_name : &f->name;
	char			*n, *txt, *ins;
	size_t			 off;
	int			 same;

	if (!img->set)
		return;
	n = manifest_image_name(img->value);
	same = n != NULL && strcmp(n, c->want) == 0;
	free(n);
	if (!same)
		return;
	if (f->digest.set && c->t->digest == NULL) {
		c->res->found++;
		c->res->unsupported++;
		manifest_note(c, "%s: kustomize entry %s is pinned by digest and "
		    "the event has no digest; not edited", c->name, img->value);
		return;
	}
	if (!manifest_decide(c, f->new_tag.set ? f->new_tag.value : NULL,
	    f->new_tag.set ? strlen(f->new_tag.value) : 0,
	    f->digest.set ? f->digest.value : NULL,
	    f->digest.set ? strlen(f->digest.value) : 0))
		return;
	if ((c->t->digest != NULL && f->digest.set && !f->digest.editable) ||
	    (c->t->tag != NULL && f->new_tag.set && !f->new_tag.editable)) {
		c->res->unsupported++;
		manifest_note(c, "%s: images entry %s uses escapes or a block "
		    "style; not edited", c->name, img->value);
		return;
	}
	if (c->t->digest != NULL && f->digest.set) {
		txt = manifest_scalar_text(f->digest.style, c->t->digest);
		manifest_splice_add(c, f->digest.start,
		    f->digest.end - f->digest.start, txt);
		free(txt);
	}
	if (c->t->tag == NULL) {
		c->res->changed++;
		return;
	}
	if (f->new_tag.set) {
		txt = manifest_scalar_text(f->new_tag.style, c->t->tag);
		manifest_splice_add(c, f->new_tag.start,
		    f->new_tag.end - f->new_tag.start, txt);
		free(txt);
		c->res->changed++;
		return;
	}
	/* Add newTag after the entry's last value, in the entry's style. */
	txt = manifest_scalar_text(YAML_PLAIN_SCALAR_STYLE, c->t->tag);
	if (f->flow) {
		ins = xasprintf(", newTag: %s", txt);
		manifest_splice_add(c, f->last_end, 0, ins);
	} else {
		size_t		 at;
		char		*eol = manifest_eol_at(c, f->content_end, &at);
		char		*pad = xmalloc(f->key_col + 1);

		memset(pad, ' ', f->key_col);
		pad[f->key_col] = '\0';
		if (at < c->len) {
			ins = xasprintf("%snewTag: %s%s", pad, txt, eol);
			off = at + strlen(eol);
		} else {
			ins = xasprintf("%s%snewTag: %s", eol, pad, txt);
			off = c->len;
		}
		free(eol);
		manifest_splice_add(c, off, 0, ins);
		free(pad);
	}
	free(ins);
	free(txt);
	c->res->changed++;
}

static int
manifest_push(struct manifest_ctx *c, enum manifest_frame_type type,
    const yaml_event_t *e, int flow)
{
	struct manifest_frame	*f, *parent;

	if (c->depth >= MANIFEST_MAX_DEPTH) {
		snprintf(c->err, c->errlen, "%s:%zu:%zu: nesting deeper than %d",
		    c->name, (size_t)e->start_mark.line + 1,
		    (size_t)e->start_mark.column + 1, MANIFEST_MAX_DEPTH);
		return -1;
	}
	parent = c->depth > 0 ? &c->stack[c->depth - 1] : NULL;
	f = &c->stack[c->depth++];
	memset(f, 0, sizeof(*f));
	f->type = type;
	f->want_key = 1;
	f->flow = flow;
	f->start = manifest_off(c, e->start_mark.index);
	if (parent != NULL && parent->type == FRAME_MAPPING)
		snprintf(f->in_parent, sizeof(f->in_parent), "%s", parent->key);
	else if (parent != NULL)
		snprintf(f->in_parent, sizeof(f->in_parent), "[]");
	/* images: [ {name, newName, newTag, digest} ] at the top level. */
	if (c->kustomization && type == FRAME_MAPPING && c->depth == 3 &&
	    c->stack[1].type == FRAME_SEQUENCE &&
	    strcmp(c->stack[1].in_parent, "images") == 0 &&
	    c->stack[0].type == FRAME_MAPPING)
		f->kust_entry = 1;
	return 0;
}

/* A node (scalar, alias or collection) finished inside the top frame. */
static void
manifest_node_done(struct manifest_ctx *c, size_t end)
{
	struct manifest_frame	*f;

	if (c->depth == 0)
		return;
	f = &c->stack[c->depth - 1];
	if (end > f->content_end)
		f->content_end = end;
	if (f->type == FRAME_MAPPING) {
		if (!f->want_key)
			f->last_end = end;
		f->want_key = !f->want_key;
	}
}

static int
manifest_event(struct manifest_ctx *c, const yaml_event_t *e)
{
	struct manifest_frame	*f = c->depth > 0 ? &c->stack[c->depth - 1] :
				    NULL;
	size_t			 end = manifest_off(c, e->end_mark.index);

	switch (e->type) {
	case YAML_DOCUMENT_START_EVENT:
		while (c->depth > 0)
			manifest_frame_clear(&c->stack[--c->depth]);
		break;
	case YAML_MAPPING_START_EVENT:
	case YAML_SEQUENCE_START_EVENT:
		if (f != NULL && f->type == FRAME_MAPPING && f->want_key) {
			/* A complex key: nothing of ours lives under it. */
			f->key[0] = '\0';
		}
		if (manifest_push(c, e->type == YAML_MAPPING_START_EVENT ?
		    FRAME_MAPPING : FRAME_SEQUENCE, e,
		    e->type == YAML_MAPPING_START_EVENT ?
		    e->data.mapping_start.style == YAML_FLOW_MAPPING_STYLE :
		    e->data.sequence_start.style == YAML_FLOW_SEQUENCE_STYLE) == -1)
			return -1;
		break;
	case YAML_MAPPING_END_EVENT:
	case YAML_SEQUENCE_END_EVENT:
		if (f == NULL)
			break;
		if (f->kust_entry)
			manifest_kust_entry(c, f);
		/*
		 * A block collection's end mark lies at the next token,
		 * lines past its last content: hand the parent the end of
		 * that content instead.
		 */
		if (!f->flow)
			end = f->content_end > f->start ? f->content_end : end;
		manifest_frame_clear(f);
		c->depth--;
		manifest_node_done(c, end);
		break;
	case YAML_ALIAS_EVENT:
		if (++c->aliases > MANIFEST_MAX_ALIASES) {
			snprintf(c->err, c->errlen, "%s:%zu:%zu: more than %d "
			    "aliases", c->name, (size_t)e->start_mark.line + 1,
			    (size_t)e->start_mark.column + 1,
			    MANIFEST_MAX_ALIASES);
			return -1;
		}
		if (f != NULL && f->type == FRAME_MAPPING && f->want_key)
			f->key[0] = '\0';
		manifest_node_done(c, end);
		break;
	case YAML_SCALAR_EVENT:
		if (f != NULL && f->type == FRAME_MAPPING && f->want_key) {
			size_t	 i;

			/*
			 * YAML requires unique keys, and the API server's
			 * strict decoding refuses duplicates: which of two
			 * `images:` would we edit?  Refuse the file instead.
			 */
			for (i = 0; i < f->nkeys; i++)
				if (strcmp(f->keys[i], (const char *)
				    e->data.scalar.value) == 0)
					break;
			if (i < f->nkeys || f->nkeys >= MANIFEST_MAX_KEYS) {
				snprintf(c->err, c->errlen, "%s:%zu:%zu: %s",
				    c->name, (size_t)e->start_mark.line + 1,
				    (size_t)e->start_mark.column + 1,
				    i < f->nkeys ? "duplicate key in a mapping" :
				    "too many keys in one mapping");
				return -1;
			}
			f->keys = xreallocarray(f->keys, f->nkeys + 1,
			    sizeof(*f->keys));
			f->keys[f->nkeys++] = xstrdup((const char *)
			    e->data.scalar.value);
			snprintf(f->key, sizeof(f->key), "%.*s",
			    (int)e->data.scalar.length,
			    (const char *)e->data.scalar.value);
			if (strlen((const char *)e->data.scalar.value) !=
			    e->data.scalar.length)
				f->key[0] = '\0';
			if (!f->have_key_col) {
				f->key_col = e->start_mark.column;
				f->have_key_col = 1;
			}
		} else if (f != NULL) {
			if (f->kust_entry) {
				if (strcmp(f->key, "name") == 0)
					manifest_span_set(c, &f->name, e);
				else if (strcmp(f->key, "newName") == 0)
					manifest_span_set(c, &f->new_name, e);
				else if (strcmp(f->key, "newTag") == 0)
					manifest_span_set(c, &f->new_tag, e);
				else if (strcmp(f->key, "digest") == 0)
					manifest_span_set(c, &f->digest, e);
			}
			manifest_on_value(c, e);
		}
		/*
		 * An implicit empty value (`key:` and nothing) has no bytes,
		 * and libyaml marks it at the next token, which in block
		 * style can be lines further, in the next list item: it does
		 * not extend the content, or a newTag line would be added
		 * after that item's first line.  In flow style the next
		 * token (`,` or `}`) is where an added pair belongs.
		 */
		if (f != NULL && !f->flow && e->data.scalar.length == 0 &&
		    e->start_mark.index == e->end_mark.index)
			end = f->content_end;
		manifest_node_done(c, end);
		break;
	default:
		break;
	}
	return 0;
}

static int
manifest_splice_cmp(const void *a, const void *b)
{
	const struct manifest_splice	*x = a, *y = b;

	if (x->off != y->off)
		return x->off < y->off ? -1 : 1;
	return 0;
}

static int
manifest_is_kustomization(const char *name)
{
	const char	*base = strrchr(name, '/');

	base = base != NULL ? base + 1 : name;
	return strcmp(base, "kustomization.yaml") == 0 ||
	    strcmp(base, "kustomization.yml") == 0;
}

int
manifest_update(const char *name, const char *buf, size_t len,
    const struct manifest_target *t, struct manifest_result *res, char *err,
    size_t errlen)
{
	struct manifest_ctx	 c;
	yaml_parser_t		 parser;
	yaml_event_t		 e;
	struct buf		 out;
	size_t			 i, pos;
	int			 rc = -1, done = 0;

	memset(res, 0, sizeof(*res));
	memset(&c, 0, sizeof(c));
	c.name = name;
	c.buf = buf;
	c.len = len;
	c.t = t;
	c.res = res;
	c.err = err;
	c.errlen = errlen;
	c.kustomization = manifest_is_kustomization(name);
	if (len > MANIFEST_MAX_BYTES) {
		snprintf(err, errlen, "%s:1:1: file larger than %d bytes", name,
		    MANIFEST_MAX_BYTES);
		return -1;
	}
	if ((len >= 2 && (((unsigned char)buf[0] == 0xfe &&
	    (unsigned char)buf[1] == 0xff) || ((unsigned char)buf[0] == 0xff &&
	    (unsigned char)buf[1] == 0xfe))) || memchr(buf, '\0', len) != NULL) {
		snprintf(err, errlen, "%s:1:1: not UTF-8 text", name);
		return -1;
	}
	if ((c.want = manifest_image_name(t->image)) == NULL) {
		snprintf(err, errlen, "%s: bad image repository", name);
		return -1;
	}
	if (t->tag == NULL && t->digest == NULL) {
		snprintf(err, errlen, "%s: nothing to set", name);
		free(c.want);
		return -1;
	}
	if (manifest_map_init(&c) == -1) {
		snprintf(err, errlen, "%s:1:1: invalid UTF-8", name);
		free(c.map);
		free(c.want);
		return -1;
	}
	if (!yaml_parser_initialize(&parser)) {
		snprintf(err, errlen, "%s: yaml parser init failed", name);
		goto out;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	while (!done) {
		if (!yaml_parser_parse(&parser, &e)) {
			if (parser.context != NULL)
				snprintf(err, errlen, "%s:%zu:%zu: %s %s "
				    "started at line %zu column %zu", name,
				    (size_t)parser.problem_mark.line + 1,
				    (size_t)parser.problem_mark.column + 1,
				    parser.problem != NULL ? parser.problem :
				    "does not parse", parser.context,
				    (size_t)parser.context_mark.line + 1,
				    (size_t)parser.context_mark.column + 1);
			else
				snprintf(err, errlen, "%s:%zu:%zu: %s", name,
				    (size_t)parser.problem_mark.line + 1,
				    (size_t)parser.problem_mark.column + 1,
				    parser.problem != NULL ? parser.problem :
				    "does not parse");
			yaml_parser_delete(&parser);
			goto out;
		}
		done = e.type == YAML_STREAM_END_EVENT;
		if (manifest_event(&c, &e) == -1) {
			yaml_event_delete(&e);
			yaml_parser_delete(&parser);
			goto out;
		}
		yaml_event_delete(&e);
	}
	yaml_parser_delete(&parser);

	if (c.nsplices > 0) {
		qsort(c.splices, c.nsplices, sizeof(*c.splices),
		    manifest_splice_cmp);
		buf_init(&out, 0);
		for (pos = 0, i = 0; i < c.nsplices; i++) {
			if (c.splices[i].off < pos ||
			    c.splices[i].off + c.splices[i].del > len) {
				snprintf(err, errlen, "%s: overlapping edits",
				    name);
				buf_free(&out);
				goto out;
			}
			if (buf_add(&out, buf + pos, c.splices[i].off - pos) == -1 ||
			    buf_addstr(&out, c.splices[i].ins) == -1) {
				buf_free(&out);
				goto out;
			}
			pos = c.splices[i].off + c.splices[i].del;
		}
		if (buf_add(&out, buf + pos, len - pos) == -1) {
			buf_free(&out);
			goto out;
		}
		if (out.len != len || memcmp(out.data, buf, len) != 0)
			res->out = buf_steal(&out, &res->outlen);
		buf_free(&out);
	}
	rc = 0;
out:
	while (c.depth > 0)
		manifest_frame_clear(&c.stack[--c.depth]);
	for (i = 0; i < c.nsplices; i++)
		free(c.splices[i].ins);
	free(c.splices);
	free(c.map);
	free(c.want);
	if (rc == -1) {
		free(res->old_tag);
		free(res->note);
		memset(res, 0, sizeof(*res));
	}
	return rc;
}
