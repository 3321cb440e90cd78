/*
 * json_parse.c: handler_json_parse(), the strict reader of every webhook
 * payload, in one pass.
 *
 * It builds the tree cJSON_ParseWithLengthOpts() would build (handlers read
 * it with the cJSON API and free it with cJSON_Delete or
 * handler_json_delete), from the same allocator, and checks on the way
 * what cJSON does not: valid UTF-8, no NUL byte and no \u0000 (either would
 * cut a string short), nesting at most HANDLER_JSON_MAX_DEPTH, no duplicate
 * key in an object, finite numbers, nothing but JSON whitespace after the
 * value.  Those checks used to be a scan of the body before cJSON and a
 * walk of the tree after it: three passes, and a third of the event loop's
 * time per webhook.  test/unit/json_ref.h keeps that path as the oracle of
 * the differential fuzz target fuzz_json and of the unit tests.
 *
 * Where cJSON is lax this reader is lax the same way, so what was accepted
 * stays accepted: any byte 0x01-0x20 separates tokens, control bytes may
 * stand raw inside strings, a number is what strtod() reads of the run of
 * [0-9+-.eE] it starts (so "01", "1." and "-0" pass), and a UTF-8 byte
 * order mark is skipped at the start of a body of five bytes or more.  One
 * laxity is gone: a \u escape with a non-hex digit, which cJSON decoded as
 * U+0000 and so cut the string there, is refused like \u0000 itself.
 */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "handler.h"
#include "util.h"

struct jp {
	const unsigned char	*base;
	const unsigned char	*p;	/* next byte to read */
	const unsigned char	*end;
	int			 depth;	/* containers open */
	char			*why;
	size_t			 whylen;
};

/* Where a string's copy loop must stop and look: NUL, quote, backslash,
 * and every byte of a multi-byte UTF-8 sequence. */
static const unsigned char jp_stop[256] = {
	[0] = 1, ['"'] = 1, ['\\'] = 1,
	[0x80 ... 0xff] = 1,
};

#define JP_ONES		0x0101010101010101ULL
#define JP_HIGHS	0x8080808080808080ULL

/*
 * Nonzero if a byte of w is one jp_stop[] stops at (NUL, quote, backslash,
 * 0x80 and up).  A byte equal to c is a zero byte of w ^ (c * JP_ONES);
 * (x - JP_ONES) & ~x & JP_HIGHS is nonzero exactly when x has a zero byte.
 */
static uint64_t
jp_stop_word(uint64_t w)
{
	uint64_t	 q = w ^ (JP_ONES * '"'), b = w ^ (JP_ONES * '\\');

	return (((w - JP_ONES) & ~w) | ((q - JP_ONES) & ~q) |
	    ((b - JP_ONES) & ~b) | w) & JP_HIGHS;
}

static int	jp_err(struct jp *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));

static int
jp_err(struct jp *j, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(j->why, j->whylen, fmt, ap);
	va_end(ap);
	return -1;
}

/* A byte that does not belong where it is (or the end of the body). */
static int
jp_syntax(struct jp *j)
{
	if (j->p >= j->end)
		return jp_err(j, "malformed JSON (the body ends early)");
	if (*j->p == '\0')
		return jp_err(j, "NUL byte in body");
	return jp_err(j, "malformed JSON at byte %zu",
	    (size_t)(j->p - j->base));
}

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF) of at most left bytes, or 0. */
static size_t
jp_utf8_seq(const unsigned char *s, size_t left)
{
	size_t	 n, k;
	uint32_t cp;

	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 1;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 2;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 3;
		cp = s[0] & 0x07;
	} else
		return 0;
	if (n >= left)
		return 0;
	for (k = 1; k <= n; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[k] & 0x3f);
	}
	if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n + 1;
}

/* Whitespace as cJSON skips it between tokens: every byte 0x01-0x20. */
static void
jp_ws(struct jp *j)
{
	while (j->p < j->end && (unsigned)(*j->p - 1) < 0x20u)
		j->p++;
}

static void *
jp_alloc(struct jp *j, size_t n)
{
	void	*p;

	if ((p = handler_json_alloc(n)) == NULL)
		jp_err(j, "out of memory reading JSON");
	return p;
}

/* Four hex digits at s (all readable), or -1. */
static long
jp_hex4(const unsigned char *s)
{
	long	 v = 0;
	int	 i, d;

	for (i = 0; i < 4; i++) {
		if (s[i] >= '0' && s[i] <= '9')
			d = s[i] - '0';
		else if ((s[i] | 0x20) >= 'a' && (s[i] | 0x20) <= 'f')
			d = (s[i] | 0x20) - 'a' + 10;
		else
			return -1;
		v = v << 4 | d;
	}
	return v;
}

/*
 * The escape at q (a backslash inside a string): its length in the body
 * (2, 6, or 12 for a surrogate pair), or 0 with why set.
 */
static size_t
jp_escape(struct jp *j, const unsigned char *q)
{
	long	 hi, lo;

	if (j->end - q < 2)
		goto bad;
	switch (q[1]) {
	case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r':
	case 't':
		return 2;
	case 'u':
		break;
	default:
		goto bad;
	}
	if (j->end - q < 6 || (hi = jp_hex4(q + 2)) == -1)
		goto bad;
	if (hi == 0) {
		jp_err(j, "\\u0000 in a JSON string");
		return 0;
	}
	if (hi >= 0xdc00 && hi <= 0xdfff)
		goto bad;	/* a low surrogate first */
	if (hi < 0xd800 || hi > 0xdbff)
		return 6;
	/* A high surrogate: the low half must follow as its own escape. */
	if (j->end - q < 12 || q[6] != '\\' || q[7] != 'u' ||
	    (lo = jp_hex4(q + 8)) < 0xdc00 || lo > 0xdfff)
		goto bad;
	return 12;
bad:
	j->p = q;
	jp_err(j, "malformed escape in a JSON string at byte %zu",
	    (size_t)(q - j->base));
	return 0;
}

/* Decode the (checked) string body [s, e) with escapes into out; returns
 * the end of what it wrote (where the NUL went). */
static char *
jp_unescape(const unsigned char *s, const unsigned char *e, char *out)
{
	const unsigned char	*b;
	unsigned long		 cp;
	size_t			 n;

	while (s < e) {
		if (*s != '\\') {
			b = memchr(s, '\\', (size_t)(e - s));
			n = (size_t)((b != NULL ? b : e) - s);
			memcpy(out, s, n);
			out += n;
			s += n;
			continue;
		}
		switch (s[1]) {
		case 'b': *out++ = '\b'; break;
		case 'f': *out++ = '\f'; break;
		case 'n': *out++ = '\n'; break;
		case 'r': *out++ = '\r'; break;
		case 't': *out++ = '\t'; break;
		case 'u':
			cp = (unsigned long)jp_hex4(s + 2);
			if (cp >= 0xd800 && cp <= 0xdbff) {
				cp = 0x10000 + ((cp & 0x3ff) << 10 |
				    ((unsigned long)jp_hex4(s + 8) & 0x3ff));
				s += 6;
			}
			if (cp < 0x80)
				*out++ = (char)cp;
			else if (cp < 0x800) {
				*out++ = (char)(0xc0 | cp >> 6);
				*out++ = (char)(0x80 | (cp & 0x3f));
			} else if (cp < 0x10000) {
				*out++ = (char)(0xe0 | cp >> 12);
				*out++ = (char)(0x80 | (cp >> 6 & 0x3f));
				*out++ = (char)(0x80 | (cp & 0x3f));
			} else {
				*out++ = (char)(0xf0 | cp >> 18);
				*out++ = (char)(0x80 | (cp >> 12 & 0x3f));
				*out++ = (char)(0x80 | (cp >> 6 & 0x3f));
				*out++ = (char)(0x80 | (cp & 0x3f));
			}
			s += 4;
			break;
		default:	/* the character itself: " \ / */
			*out++ = (char)s[1];
			break;
		}
		s += 2;
	}
	*out = '\0';
	return out;
}

/*
 * The string at j->p (a quote), checked and decoded into a new string of
 * *lenp bytes; j->p moves past its closing quote.  NULL with why set.
 */
static char *
jp_string(struct jp *j, size_t *lenp)
{
	const unsigned char	*s = j->p + 1, *q = s, *end = j->end;
	size_t			 n;
	char			*out;
	int			 esc = 0;

	for (;;) {
		/* Most bytes need no look: skip them a word at a time while
		 * no byte of the word is one to stop at, then bytewise. */
		while (end - q >= 8) {
			uint64_t	 w;

			memcpy(&w, q, 8);
			if (jp_stop_word(w))
				break;
			q += 8;
		}
		while (q < end && !jp_stop[*q])
			q++;
		if (q >= end) {
			j->p = end;
			jp_err(j, "malformed JSON (a string is not closed)");
			return NULL;
		}
		if (*q == '"')
			break;
		if (*q == '\\') {
			if ((n = jp_escape(j, q)) == 0)
				return NULL;
			q += n;
			esc = 1;
		} else if (*q == '\0') {
			j->p = q;
			jp_err(j, "NUL byte in body");
			return NULL;
		} else {
			if ((n = jp_utf8_seq(q, (size_t)(end - q))) == 0) {
				j->p = q;
				jp_err(j, "body is not valid UTF-8 (byte %zu)",
				    (size_t)(q - j->base));
				return NULL;
			}
			q += n;
		}
	}
	n = (size_t)(q - s);
	if ((out = jp_alloc(j, n + 1)) == NULL)
		return NULL;
	if (esc)
		*lenp = (size_t)(jp_unescape(s, q, out) - out);
	else {
		memcpy(out, s, n);
		out[n] = '\0';
		*lenp = n;
	}
	j->p = q + 1;
	return out;
}

static int
jp_numchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.' ||
	    c == 'e' || c == 'E';
}

/*
 * A number: what strtod() reads of the run of number characters here, as
 * cJSON 1.7.15 reads it (the whole run, however long).  A plain integer of
 * at most 16 characters, the usual case, is converted without strtod: it
 * is exact in 64 bits, and converting that to double rounds to nearest
 * as strtod does (fuzz_json compares the bits).
 */
static int
jp_number(struct jp *j, cJSON *item)
{
	const unsigned char	*s = j->p;
	char			 sbuf[64], *buf = sbuf, *after;
	size_t			 i, n;
	double			 d;
	uint64_t		 v = 0;
	int			 neg = 0, plain = 1;

	for (n = 0; s + n < j->end && jp_numchar(s[n]); n++) {
		if (n >= 16)
			plain = 0;	/* long: leave it to strtod */
		else if (s[n] >= '0' && s[n] <= '9')
			v = v * 10 + (uint64_t)(s[n] - '0');
		else if (n == 0 && s[n] == '-')
			neg = 1;
		else
			plain = 0;
	}
	if (plain && n > (size_t)neg) {
		d = neg ? -(double)v : (double)v;
		j->p = s + n;
	} else {
		if (n >= sizeof(sbuf) && (buf = malloc(n + 1)) == NULL)
			return jp_err(j, "out of memory reading JSON");
		for (i = 0; i < n; i++)
			buf[i] = (char)s[i];
		buf[n] = '\0';
		d = strtod(buf, &after);
		i = (size_t)(after - buf);
		if (buf != sbuf)
			free(buf);
		if (i == 0)
			return jp_syntax(j);
		j->p = s + i;
	}
	if (!isfinite(d))
		return jp_err(j, "JSON number out of range");
	item->type = cJSON_Number;
	item->valuedouble = d;
	if (d >= INT_MAX)
		item->valueint = INT_MAX;
	else if (d <= (double)INT_MIN)
		item->valueint = INT_MIN;
	else
		item->valueint = (int)d;
	return 0;
}

static int
jp_key_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The n keys of a big object, first is its first member: no two alike
 * (sorted, O(n log n)). */
static int
jp_dupkeys(struct jp *j, const cJSON *first, size_t n)
{
	const cJSON	*c;
	const char	**keys;
	size_t		 i;
	int		 rc = 0;

	if ((keys = malloc(n * sizeof(*keys))) == NULL)
		return jp_err(j, "out of memory reading JSON");
	for (i = 0, c = first; c != NULL; c = c->next)
		keys[i++] = c->string;
	qsort(keys, n, sizeof(*keys), jp_key_cmp);
	for (i = 1; i < n; i++)
		if (strcmp(keys[i - 1], keys[i]) == 0) {
			rc = jp_err(j, "duplicate JSON key \"%.64s\"", keys[i]);
			break;
		}
	free(keys);
	return rc;
}

static int	jp_value(struct jp *, cJSON *);

/* A new member of container item, linked as cJSON links them (the first
 * member's prev is the last one), so a tree cut short by an error is
 * still whole for cJSON_Delete. */
static cJSON *
jp_member(struct jp *j, cJSON *item, cJSON **last)
{
	cJSON	*c;

	if ((c = jp_alloc(j, sizeof(*c))) == NULL)
		return NULL;
	memset(c, 0, sizeof(*c));
	if (*last == NULL)
		item->child = c;
	else {
		(*last)->next = c;
		c->prev = *last;
	}
	item->child->prev = c;
	*last = c;
	return c;
}

/*
 * The first JP_SMALL keys of an object are checked for repeats as they
 * are read, by a signature (length, first and last byte) first: equal
 * keys have equal signatures, and most different keys of a payload
 * ("added", "author") differ in it, so few pairs need a strcmp.  Past
 * JP_SMALL keys, the object is checked whole at its end, sorted.
 */
#define JP_SMALL	16

static uint32_t
jp_sig(const char *k, size_t len)
{
	return (uint32_t)len << 16 | (uint32_t)(unsigned char)k[0] << 8 |
	    (unsigned char)(len > 0 ? k[len - 1] : 0);
}

/* An array or object at j->p; close is ']' or '}'. */
static int
jp_container(struct jp *j, cJSON *item, unsigned char close)
{
	cJSON		*c, *last = NULL;
	const char	*keys[JP_SMALL];
	uint32_t	 sig[JP_SMALL];
	size_t		 n = 0, i, klen;

	item->type = close == '}' ? cJSON_Object : cJSON_Array;
	if (++j->depth > HANDLER_JSON_MAX_DEPTH)
		return jp_err(j, "JSON nested deeper than %d",
		    HANDLER_JSON_MAX_DEPTH);
	j->p++;
	jp_ws(j);
	if (j->p < j->end && *j->p == close)
		goto done;
	for (;;) {
		if ((c = jp_member(j, item, &last)) == NULL)
			return -1;
		if (close == '}') {
			if (j->p >= j->end || *j->p != '"')
				return jp_syntax(j);
			if ((c->string = jp_string(j, &klen)) == NULL)
				return -1;
			if (n < JP_SMALL) {
				sig[n] = jp_sig(c->string, klen);
				for (i = 0; i < n; i++)
					if (sig[i] == sig[n] &&
					    strcmp(keys[i], c->string) == 0)
						return jp_err(j, "duplicate "
						    "JSON key \"%.64s\"",
						    c->string);
				keys[n] = c->string;
			}
			jp_ws(j);
			if (j->p >= j->end || *j->p != ':')
				return jp_syntax(j);
			j->p++;
			jp_ws(j);
		}
		if (jp_value(j, c) == -1)
			return -1;
		n++;
		jp_ws(j);
		if (j->p < j->end && *j->p == ',') {
			j->p++;
			jp_ws(j);
			continue;
		}
		if (j->p < j->end && *j->p == close)
			break;
		return jp_syntax(j);
	}
done:
	j->p++;
	j->depth--;
	return close == '}' && n > JP_SMALL ? jp_dupkeys(j, item->child, n) :
	    0;
}

static int
jp_literal(struct jp *j, const char *word, size_t n)
{
	if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0)
		return jp_syntax(j);
	j->p += n;
	return 0;
}

/* The value at j->p into item. */
static int
jp_value(struct jp *j, cJSON *item)
{
	size_t	 len;

	if (j->p >= j->end)
		return jp_syntax(j);
	switch (*j->p) {
	case '"':
		if ((item->valuestring = jp_string(j, &len)) == NULL)
			return -1;
		item->type = cJSON_String;
		return 0;
	case '{':
		return jp_container(j, item, '}');
	case '[':
		return jp_container(j, item, ']');
	case 'n':
		item->type = cJSON_NULL;
		return jp_literal(j, "null", 4);
	case 't':
		item->type = cJSON_True;
		item->valueint = 1;
		return jp_literal(j, "true", 4);
	case 'f':
		item->type = cJSON_False;
		return jp_literal(j, "false", 5);
	default:
		if (*j->p == '-' || (*j->p >= '0' && *j->p <= '9'))
			return jp_number(j, item);
		return jp_syntax(j);
	}
}

struct cJSON *
handler_json_parse(const void *body, size_t len, char *why, size_t whylen)
{
	struct jp	 j;
	cJSON		*root;

	if (len == 0) {
		snprintf(why, whylen, "empty body");
		return NULL;
	}
	j.base = j.p = body;
	j.end = j.p + len;
	j.depth = 0;
	j.why = why;
	j.whylen = whylen;
	if (len >= 5 && memcmp(j.p, "\xef\xbb\xbf", 3) == 0)
		j.p += 3;	/* cJSON skips a byte order mark, so do we */
	jp_ws(&j);
	if ((root = jp_alloc(&j, sizeof(*root))) == NULL)
		return NULL;
	memset(root, 0, sizeof(*root));
	if (jp_value(&j, root) == -1)
		goto fail;
	while (j.p < j.end && (*j.p == ' ' || *j.p == '\t' || *j.p == '\n' ||
	    *j.p == '\r'))
		j.p++;
	if (j.p < j.end) {
		if (*j.p == '\0')
			jp_err(&j, "NUL byte in body");
		else
			jp_err(&j, "trailing data after JSON (byte %zu)",
			    (size_t)(j.p - j.base));
		goto fail;
	}
	return root;
fail:
	handler_json_delete(root);
	return NULL;
}
