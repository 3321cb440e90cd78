/*
 * json_ref.h: the reference for handler_json_parse(), its earlier
 * three-pass form, kept as the oracle of the differential fuzz target
 * fuzz/fuzz_json.c and of test_handler_json.c.
 *
 * A scan of the raw body (UTF-8, NUL, \u escapes, bracket depth), then
 * cJSON_ParseWithLengthOpts() itself, then a walk of the tree (duplicate
 * keys, finite numbers, depth).  It accepts exactly what the one-pass
 * reader must accept, and its tree is the one the reader must build.  Two
 * things differ from that earlier form, both on purpose: a \u escape with
 * a non-hex digit is refused (cJSON read it as U+0000), and UTF-8 is
 * checked here against the table of well-formed byte sequences of the
 * Unicode standard (table 3-7), not by decoding, so the two readers do not
 * share that code.
 *
 * Static functions in a header: included by one test and one fuzz target.
 */
#ifndef GITOPSD_TEST_JSON_REF_H
#define GITOPSD_TEST_JSON_REF_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "handler.h"

/* Bytes of the well-formed UTF-8 sequence at s, or 0 (Unicode 15, table
 * 3-7: the allowed range of each byte depends on the lead byte). */
static size_t
json_ref_utf8(const unsigned char *s, size_t left)
{
	unsigned char	 lo = 0x80, hi = 0xbf;
	size_t		 n, k;

	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	if (left < n)
		return 0;
	/* The second byte's range is narrowed by some lead bytes. */
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (k = 2; k < n; k++)
		if (s[k] < 0x80 || s[k] > 0xbf)
			return 0;
	return n;
}

static int
json_ref_xdigit(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	    (c >= 'A' && c <= 'F');
}

static int
json_ref_scan(const unsigned char *s, size_t len, char *why, size_t whylen)
{
	size_t	 i = 0, n, depth = 0, k;
	int	 in_str = 0;

	while (i < len) {
		if (s[i] >= 0x80) {
			if ((n = json_ref_utf8(s + i, len - i)) == 0) {
				snprintf(why, whylen, "body is not valid UTF-8");
				return -1;
			}
			i += n;
			continue;
		}
		switch (s[i]) {
		case '\0':
			snprintf(why, whylen, "NUL byte in body");
			return -1;
		case '"':
			in_str = !in_str;
			break;
		case '\\':
			if (!in_str || i + 1 >= len)
				break;
			if (s[i + 1] == 'u' && i + 5 < len) {
				if (memcmp(s + i + 2, "0000", 4) == 0) {
					snprintf(why, whylen, "\\u0000 in a "
					    "JSON string");
					return -1;
				}
				for (k = 2; k < 6; k++)
					if (!json_ref_xdigit(s[i + k])) {
						snprintf(why, whylen, "bad \\u");
						return -1;
					}
			}
			if (s[i + 1] < 0x80)
				i++;
			break;
		case '[':
		case '{':
			if (!in_str && ++depth > HANDLER_JSON_MAX_DEPTH) {
				snprintf(why, whylen, "nested");
				return -1;
			}
			break;
		case ']':
		case '}':
			if (!in_str && depth > 0)
				depth--;
			break;
		default:
			break;
		}
		i++;
	}
	return 0;
}

static int
json_ref_walk(const cJSON *node, int depth, char *why, size_t whylen)
{
	const cJSON	*c, *d;

	if (depth > HANDLER_JSON_MAX_DEPTH) {
		snprintf(why, whylen, "nested");
		return -1;
	}
	if (cJSON_IsNumber(node) && !isfinite(node->valuedouble)) {
		snprintf(why, whylen, "out of range");
		return -1;
	}
	/* Plain pairs: the reference may be slow. */
	if (cJSON_IsObject(node))
		for (c = node->child; c != NULL; c = c->next)
			for (d = c->next; d != NULL; d = d->next)
				if (strcmp(c->string, d->string) == 0) {
					snprintf(why, whylen, "duplicate");
					return -1;
				}
	for (c = node->child; c != NULL; c = c->next)
		if (json_ref_walk(c, depth + 1, why, whylen) == -1)
			return -1;
	return 0;
}

/* The reference parse: a tree for cJSON_Delete, or NULL with why. */
static cJSON *
json_ref_parse(const void *body, size_t len, char *why, size_t whylen)
{
	const char	*s = body, *end = NULL;
	cJSON		*root;

	if (len == 0) {
		snprintf(why, whylen, "empty body");
		return NULL;
	}
	if (json_ref_scan(body, len, why, whylen) == -1)
		return NULL;
	root = cJSON_ParseWithLengthOpts(s, len, &end, 0);
	if (root == NULL) {
		snprintf(why, whylen, "malformed JSON");
		return NULL;
	}
	for (; end != NULL && end < s + len; end++) {
		if (*end != ' ' && *end != '\t' && *end != '\n' && *end != '\r') {
			cJSON_Delete(root);
			snprintf(why, whylen, "trailing data after JSON");
			return NULL;
		}
	}
	if (json_ref_walk(root, 0, why, whylen) == -1) {
		cJSON_Delete(root);
		return NULL;
	}
	return root;
}

/*
 * 1 if trees a and b are the same, as handlers see them: types, keys and
 * strings byte for byte, numbers bit for bit (-0 is not 0) with the same
 * valueint, members in order, linked as cJSON links them.  On a difference
 * where says what.
 */
static int
json_ref_same(const cJSON *a, const cJSON *b, char *where, size_t wlen)
{
	const cJSON	*x, *y;

	if ((a->type & 0xff) != (b->type & 0xff)) {
		snprintf(where, wlen, "type %d != %d", a->type, b->type);
		return 0;
	}
	if ((a->string == NULL) != (b->string == NULL) ||
	    (a->string != NULL && strcmp(a->string, b->string) != 0)) {
		snprintf(where, wlen, "key %.40s != %.40s",
		    a->string ? a->string : "(none)",
		    b->string ? b->string : "(none)");
		return 0;
	}
	if (a->valueint != b->valueint ||
	    memcmp(&a->valuedouble, &b->valuedouble, sizeof(double)) != 0) {
		snprintf(where, wlen, "number %.17g/%d != %.17g/%d",
		    a->valuedouble, a->valueint, b->valuedouble, b->valueint);
		return 0;
	}
	if ((a->valuestring == NULL) != (b->valuestring == NULL) ||
	    (a->valuestring != NULL &&
	    strcmp(a->valuestring, b->valuestring) != 0)) {
		snprintf(where, wlen, "string \"%.40s\" != \"%.40s\"",
		    a->valuestring ? a->valuestring : "(none)",
		    b->valuestring ? b->valuestring : "(none)");
		return 0;
	}
	for (x = a->child, y = b->child; x != NULL && y != NULL;
	    x = x->next, y = y->next) {
		if (!json_ref_same(x, y, where, wlen))
			return 0;
		if (x->next == NULL && a->child->prev != x) {
			snprintf(where, wlen, "first member's prev is not the "
			    "last");
			return 0;
		}
	}
	if (x != NULL || y != NULL) {
		snprintf(where, wlen, "member count");
		return 0;
	}
	return 1;
}

#endif
