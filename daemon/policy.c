/*
 * policy.c: image references and tag policies.
 *
 * DESIGN
 * - Image references follow the distribution reference grammar: a first
 *   component is a registry host only if it contains '.' or ':' or is
 *   "localhost"; docker.io, index.docker.io, registry-1.docker.io and no
 *   host are one registry ("docker.io"), where single-name repositories get
 *   "library/".  Hosts are lowercased; repositories must already be
 *   lowercase (the registry rejects anything else).
 * - Semver ranges use the npm / Masterminds grammar: comparators separated
 *   by spaces or commas are ANDed, `||` separates alternatives, partial
 *   versions and x-ranges (1, 1.2, 1.x, *), caret, tilde and hyphen ranges.
 *   A derived upper bound (^1.2 -> <2.0.0-0) and an explicit `<2.0.0`
 *   both exclude 2.0.0's pre-releases.  Pre-releases are refused unless
 *   the policy says `prerelease: true`.  Build metadata is ignored.
 * - Ranges and regexes are parsed per call (they are short); nothing is
 *   cached in the config, so a reload needs no hook here.
 * - policy_newer() is the downgrade guard: a candidate must be accepted and
 *   strictly newer than the current tag by the policy's own order.
 */
#include <ctype.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "policy.h"
#include "util.h"

#define POLICY_TAG_MAX		128
#define POLICY_NUM_DIGITS	18	/* fits uint64_t without overflow */

/* ---------------------------------------------------------------- */
/* Image references                                                  */

/* Tag grammar of the distribution spec: [\w][\w.-]{0,127}. */
static int
policy_tag_valid(const char *s, size_t n)
{
	size_t	 i;

	if (n == 0 || n > POLICY_TAG_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (isalnum(c) || c == '_')
			continue;
		if (i > 0 && (c == '.' || c == '-'))
			continue;
		return 0;
	}
	return 1;
}

/*
 * OCI image-spec digest grammar: algorithm ":" encoded, algorithm being
 * [a-z0-9]+ components joined by single [+._-], encoded [a-zA-Z0-9=_-]+.
 * The registered algorithms fix their encoding: sha256 and blake3 are 64
 * lowercase hex digits, sha512 128.  Anything else that passed the grammar
 * reaches a registry URL only, where [a-zA-Z0-9=_-] needs no escaping.
 */
static int
policy_digest_valid(const char *s)
{
	static const struct {
		const char	*alg;
		size_t		 hexlen;
	} registered[] = {
		{ "sha256", 64 }, { "sha512", 128 }, { "blake3", 64 },
	};
	const char	*colon, *p;
	size_t		 n, i;

	if ((colon = strchr(s, ':')) == NULL || colon == s)
		return 0;
	for (p = s; p < colon; p++) {
		if (islower((unsigned char)*p) || isdigit((unsigned char)*p))
			continue;
		/* A separator sits between two components. */
		if (strchr("+._-", *p) == NULL || p == s || p + 1 == colon ||
		    strchr("+._-", p[1]) != NULL)
			return 0;
	}
	n = strlen(colon + 1);
	if (n == 0)
		return 0;
	for (i = 0; i < nitems(registered); i++) {
		if (strlen(registered[i].alg) != (size_t)(colon - s) ||
		    strncmp(s, registered[i].alg, (size_t)(colon - s)) != 0)
			continue;
		if (n != registered[i].hexlen)
			return 0;
		for (p = colon + 1; *p != '\0'; p++)
			if (!isdigit((unsigned char)*p) &&
			    !(*p >= 'a' && *p <= 'f'))
				return 0;
		return 1;
	}
	for (p = colon + 1; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && strchr("=_-", *p) == NULL)
			return 0;
	return 1;
}

/*
 * One path component: [a-z0-9]+ with single separators ".", "_", "__" or
 * runs of "-" between alphanumerics.
 */
static int
policy_component_valid(const char *s, size_t n)
{
	size_t	 i = 0, sep;

	if (n == 0)
		return 0;
	for (;;) {
		if (i >= n || !(islower((unsigned char)s[i]) ||
		    isdigit((unsigned char)s[i])))
			return 0;
		while (i < n && (islower((unsigned char)s[i]) ||
		    isdigit((unsigned char)s[i])))
			i++;
		if (i == n)
			return 1;
		sep = i;
		if (s[i] == '.')
			i++;
		else if (s[i] == '_')
			i += (i + 1 < n && s[i + 1] == '_') ? 2 : 1;
		else if (s[i] == '-')
			while (i < n && s[i] == '-')
				i++;
		if (i == sep)
			return 0;
	}
}

/* host[:port] with a DNS name or IPv4/bracketed IPv6 literal. */
static int
policy_host_valid(const char *s, size_t n)
{
	size_t	 i, hostlen = n;
	const char *colon;

	if (n == 0)
		return 0;
	if (s[0] == '[') {
		const char *rb = memchr(s, ']', n);

		if (rb == NULL)
			return 0;
		hostlen = (size_t)(rb - s) + 1;
		for (i = 1; i + 1 < hostlen; i++)
			if (!isxdigit((unsigned char)s[i]) && s[i] != ':' &&
			    s[i] != '.')
				return 0;
	} else {
		if ((colon = memchr(s, ':', n)) != NULL)
			hostlen = (size_t)(colon - s);
		if (hostlen == 0)
			return 0;
		/* Dot-separated labels of [A-Za-z0-9-], no empty label. */
		for (i = 0; i < hostlen; i++) {
			if (s[i] == '.') {
				if (i == 0 || s[i - 1] == '.' || s[i - 1] == '-' ||
				    i + 1 == hostlen || s[i + 1] == '-')
					return 0;
			} else if (s[i] == '-') {
				if (i == 0 || i + 1 == hostlen)
					return 0;
			} else if (!isalnum((unsigned char)s[i]))
				return 0;
		}
	}
	if (hostlen < n) {
		if (s[hostlen] != ':' || hostlen + 1 == n || n - hostlen - 1 > 5)
			return 0;
		for (i = hostlen + 1; i < n; i++)
			if (!isdigit((unsigned char)s[i]))
				return 0;
	}
	return 1;
}

/* Lowercased host with the Docker Hub aliases folded into "docker.io". */
static char *
policy_host_normalize(const char *host, size_t n)
{
	char	*h;
	size_t	 i;

	h = xstrndup(host, n);
	for (i = 0; i < n; i++)
		h[i] = (char)tolower((unsigned char)h[i]);
	if (strcmp(h, "index.docker.io") == 0 ||
	    strcmp(h, "registry-1.docker.io") == 0 ||
	    strcmp(h, "registry.hub.docker.com") == 0) {
		free(h);
		h = xstrdup("docker.io");
	}
	return h;
}

/* Check and store a repository path under a normalized host. */
static int
policy_set_repository(struct image_ref *ref, const char *name, size_t n,
    char *err, size_t errlen)
{
	const char	*p, *slash, *end = name + n;

	if (n == 0 || n > 255) {
		snprintf(err, errlen, "bad repository name in image reference");
		return -1;
	}
	for (p = name; ; p = slash + 1) {
		if ((slash = memchr(p, '/', (size_t)(end - p))) == NULL)
			slash = end;
		if (!policy_component_valid(p, (size_t)(slash - p))) {
			snprintf(err, errlen, "bad repository name in image "
			    "reference (lowercase letters, digits, separators)");
			return -1;
		}
		if (slash == end)
			break;
	}
	if (strcmp(ref->registry, "docker.io") == 0 &&
	    memchr(name, '/', n) == NULL)
		ref->repository = xasprintf("library/%.*s", (int)n, name);
	else
		ref->repository = xstrndup(name, n);
	return 0;
}

int
image_tag_valid(const char *tag)
{
	return tag != NULL && policy_tag_valid(tag, strlen(tag));
}

int
image_digest_valid(const char *digest)
{
	return digest != NULL && policy_digest_valid(digest);
}

int
image_ref_from_parts(const char *host, const char *repository,
    struct image_ref *ref, char *err, size_t errlen)
{
	memset(ref, 0, sizeof(*ref));
	if (host == NULL || *host == '\0')
		host = "docker.io";
	if (!policy_host_valid(host, strlen(host))) {
		snprintf(err, errlen, "bad registry host");
		return -1;
	}
	ref->registry = policy_host_normalize(host, strlen(host));
	if (repository == NULL || policy_set_repository(ref, repository,
	    strlen(repository), err, errlen) == -1) {
		if (repository == NULL)
			snprintf(err, errlen, "missing repository name");
		image_ref_free(ref);
		return -1;
	}
	return 0;
}

int
image_ref_parse(const char *in, struct image_ref *ref, char *err,
    size_t errlen)
{
	const char	*at, *name, *slash, *lastslash, *colon, *end, *p;

	memset(ref, 0, sizeof(*ref));
	if (in == NULL || *in == '\0') {
		snprintf(err, errlen, "empty image reference");
		return -1;
	}
	if (strstr(in, "://") != NULL) {
		snprintf(err, errlen, "image reference must not have a scheme");
		return -1;
	}
	end = in + strlen(in);
	if ((at = strchr(in, '@')) != NULL) {
		if (!policy_digest_valid(at + 1)) {
			snprintf(err, errlen, "bad digest in image reference");
			goto bad;
		}
		ref->digest = xstrdup(at + 1);
		end = at;
	}

	/* A tag is a ':' after the last '/'. */
	lastslash = NULL;
	for (p = in; p < end; p++)
		if (*p == '/')
			lastslash = p;
	colon = NULL;
	for (p = lastslash != NULL ? lastslash : in; p < end; p++)
		if (*p == ':')
			colon = p;
	if (colon != NULL) {
		if (!policy_tag_valid(colon + 1, (size_t)(end - colon - 1))) {
			snprintf(err, errlen, "bad tag in image reference");
			goto bad;
		}
		ref->tag = xstrndup(colon + 1, (size_t)(end - colon - 1));
		end = colon;
	}

	/* The first component is a host only if it looks like one. */
	name = in;
	slash = memchr(in, '/', (size_t)(end - in));
	if (slash != NULL && (memchr(in, '.', (size_t)(slash - in)) != NULL ||
	    memchr(in, ':', (size_t)(slash - in)) != NULL ||
	    (slash - in == 9 && strncmp(in, "localhost", 9) == 0) ||
	    in[0] == '[')) {
		if (!policy_host_valid(in, (size_t)(slash - in))) {
			snprintf(err, errlen, "bad registry host in image "
			    "reference");
			goto bad;
		}
		ref->registry = policy_host_normalize(in, (size_t)(slash - in));
		name = slash + 1;
	} else
		ref->registry = xstrdup("docker.io");
	if (policy_set_repository(ref, name, (size_t)(end - name), err,
	    errlen) == -1)
		goto bad;
	return 0;
bad:
	image_ref_free(ref);
	return -1;
}

void
image_ref_free(struct image_ref *ref)
{
	free(ref->registry);
	free(ref->repository);
	free(ref->tag);
	free(ref->digest);
	memset(ref, 0, sizeof(*ref));
}

char *
image_ref_name(const struct image_ref *ref)
{
	return xasprintf("%s/%s", ref->registry, ref->repository);
}

int
image_ref_same_repo(const struct image_ref *a, const struct image_ref *b)
{
	if (a->registry == NULL || b->registry == NULL ||
	    a->repository == NULL || b->repository == NULL)
		return 0;
	return strcmp(a->registry, b->registry) == 0 &&
	    strcmp(a->repository, b->repository) == 0;
}

/* ---------------------------------------------------------------- */
/* Semantic versions                                                 */

struct semver {
	uint64_t	 v[3];
	char		 pre[POLICY_TAG_MAX + 1];	/* "" when none */
};

/* A partial version in a range: components may be missing or wildcards. */
struct semver_partial {
	uint64_t	 v[3];
	int		 nset;		/* leading numeric components given */
	char		 pre[POLICY_TAG_MAX + 1];
};

/* Digits without a leading zero (unless "0"); advances *sp. */
static int
semver_number(const char **sp, uint64_t *out)
{
	const char	*s = *sp;
	size_t		 n = 0;
	uint64_t	 v = 0;

	while (isdigit((unsigned char)s[n])) {
		if (n == POLICY_NUM_DIGITS)
			return -1;
		v = v * 10 + (uint64_t)(s[n] - '0');
		n++;
	}
	if (n == 0 || (n > 1 && s[0] == '0'))
		return -1;
	*sp = s + n;
	*out = v;
	return 0;
}

/* Dot-separated [0-9A-Za-z-]+ identifiers, numeric ones without leading 0. */
static int
semver_idents(const char **sp, char *out, size_t outlen, int numeric_rule)
{
	const char	*s = *sp, *id;
	size_t		 n, i;
	int		 alldigit;

	for (;;) {
		id = s;
		alldigit = 1;
		while (isalnum((unsigned char)*s) || *s == '-') {
			if (!isdigit((unsigned char)*s))
				alldigit = 0;
			s++;
		}
		n = (size_t)(s - id);
		if (n == 0)
			return -1;
		if (numeric_rule && alldigit && n > 1 && id[0] == '0')
			return -1;
		if (*s != '.')
			break;
		s++;
	}
	n = (size_t)(s - *sp);
	if (out != NULL) {
		if (n >= outlen)
			return -1;
		for (i = 0; i < n; i++)
			out[i] = (*sp)[i];
		out[n] = '\0';
	}
	*sp = s;
	return 0;
}

/*
 * Parse a tag as a version: optional "v", 1 to 3 numeric components
 * (missing ones are 0), optional -prerelease and +build.  The whole string
 * must be consumed.
 */
static int
semver_parse(const char *s, struct semver *ver)
{
	int	 i;

	memset(ver, 0, sizeof(*ver));
	if (s == NULL)
		return -1;
	if (*s == 'v' || *s == 'V')
		s++;
	for (i = 0; i < 3; i++) {
		if (semver_number(&s, &ver->v[i]) == -1)
			return -1;
		if (*s != '.')
			break;
		s++;
		if (i == 2)
			return -1;
	}
	if (*s == '-') {
		s++;
		if (semver_idents(&s, ver->pre, sizeof(ver->pre), 1) == -1)
			return -1;
	}
	/* Tags cannot hold '+': "1.2.3_build.5" carries build metadata. */
	if (*s == '+' || *s == '_') {
		s++;
		if (semver_idents(&s, NULL, 0, 0) == -1)
			return -1;
	}
	return *s == '\0' ? 0 : -1;
}

static int
semver_is_num(const char *s, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return 0;
	return n > 0;
}

/* Pre-release precedence (semver 2.0.0 section 11); both non-empty. */
static int
semver_cmp_pre(const char *a, const char *b)
{
	size_t	 na, nb;
	int	 c;

	for (;;) {
		na = strcspn(a, ".");
		nb = strcspn(b, ".");
		if (semver_is_num(a, na) && semver_is_num(b, nb)) {
			/* No leading zeros: longer is larger. */
			if (na != nb)
				return na < nb ? -1 : 1;
			if ((c = memcmp(a, b, na)) != 0)
				return c < 0 ? -1 : 1;
		} else if (semver_is_num(a, na))
			return -1;
		else if (semver_is_num(b, nb))
			return 1;
		else {
			c = memcmp(a, b, na < nb ? na : nb);
			if (c != 0)
				return c < 0 ? -1 : 1;
			if (na != nb)
				return na < nb ? -1 : 1;
		}
		a += na;
		b += nb;
		if (*a == '\0' && *b == '\0')
			return 0;
		if (*a == '\0')
			return -1;
		if (*b == '\0')
			return 1;
		a++;
		b++;
	}
}

static int
semver_cmp(const struct semver *a, const struct semver *b)
{
	int	 i;

	for (i = 0; i < 3; i++)
		if (a->v[i] != b->v[i])
			return a->v[i] < b->v[i] ? -1 : 1;
	if (a->pre[0] == '\0' && b->pre[0] == '\0')
		return 0;
	if (a->pre[0] == '\0')
		return 1;
	if (b->pre[0] == '\0')
		return -1;
	return semver_cmp_pre(a->pre, b->pre);
}

enum semver_op {
	SEMVER_GE = 1,
	SEMVER_GT,
	SEMVER_LT,
	SEMVER_LE,
	SEMVER_EQ,
	SEMVER_NE,
};

struct semver_cmp {
	enum semver_op	 op;
	struct semver	 ver;
	int		 alt;		/* alternative (|| group) index */
};

struct semver_range {
	struct semver_cmp *c;
	size_t		 n;
	int		 nalt;
};

static void
semver_range_add(struct semver_range *r, enum semver_op op,
    const struct semver *v)
{
	r->c = xreallocarray(r->c, r->n + 1, sizeof(*r->c));
	r->c[r->n].op = op;
	r->c[r->n].ver = *v;
	r->c[r->n].alt = r->nalt;
	r->n++;
}

/* The lowest version of a release line: V-0 sorts before every V-pre. */
static void
semver_floor(struct semver *v)
{
	util_strlcpy(v->pre, "0", sizeof(v->pre));
}

/*
 * A partial version: "1", "1.2", "1.2.3", "1.x", "1.2.*", "*", with an
 * optional "v", -pre and +build (ignored).  nset counts the numeric
 * components before the first wildcard or the end.
 */
static int
semver_partial_parse(const char **sp, struct semver_partial *pv)
{
	const char	*s = *sp;
	int		 i, wild = 0;

	memset(pv, 0, sizeof(*pv));
	if (*s == 'v' || *s == 'V')
		s++;
	for (i = 0; i < 3; i++) {
		if (*s == 'x' || *s == 'X' || *s == '*') {
			wild = 1;
			s++;
		} else if (wild)
			return -1;	/* 1.x.3 */
		else {
			if (semver_number(&s, &pv->v[i]) == -1)
				return -1;
			pv->nset = i + 1;
		}
		if (*s != '.')
			break;
		s++;
		if (i == 2)
			return -1;
	}
	if (*s == '-') {
		if (pv->nset != 3)
			return -1;
		s++;
		if (semver_idents(&s, pv->pre, sizeof(pv->pre), 1) == -1)
			return -1;
	}
	if (*s == '+') {
		s++;
		if (semver_idents(&s, NULL, 0, 0) == -1)
			return -1;
	}
	*sp = s;
	return 0;
}

static void
semver_from_partial(const struct semver_partial *pv, struct semver *v)
{
	memset(v, 0, sizeof(*v));
	memcpy(v->v, pv->v, sizeof(v->v));
	util_strlcpy(v->pre, pv->pre, sizeof(v->pre));
}

/* The first version past a partial: 1.2 -> 1.3.0-0, 1 -> 2.0.0-0. */
static void
semver_partial_next(const struct semver_partial *pv, int level,
    struct semver *v)
{
	memset(v, 0, sizeof(*v));
	if (level >= 1)
		v->v[0] = pv->v[0];
	if (level >= 2)
		v->v[1] = pv->v[1];
	/* Every caller passes 1..3 (nset > 0 is checked first). */
	/* cppcheck-suppress negativeIndex */
	v->v[level - 1]++;
	semver_floor(v);
}

/* Add ">=lo <next" for an x-range such as "1.2" or "1.x"; "*" adds >=0. */
static void
semver_add_xrange(struct semver_range *r, const struct semver_partial *pv)
{
	struct semver	 lo, hi;

	semver_from_partial(pv, &lo);
	if (pv->nset == 3) {
		semver_range_add(r, SEMVER_EQ, &lo);
		return;
	}
	semver_range_add(r, SEMVER_GE, &lo);
	if (pv->nset > 0) {
		semver_partial_next(pv, pv->nset, &hi);
		semver_range_add(r, SEMVER_LT, &hi);
	}
}

static int
semver_add_op(struct semver_range *r, const char *op,
    const struct semver_partial *pv)
{
	struct semver	 v, hi;
	int		 level;

	semver_from_partial(pv, &v);
	if (strcmp(op, "") == 0 || strcmp(op, "=") == 0 ||
	    strcmp(op, "==") == 0) {
		semver_add_xrange(r, pv);
	} else if (strcmp(op, "!=") == 0) {
		if (pv->nset != 3)
			return -1;
		semver_range_add(r, SEMVER_NE, &v);
	} else if (strcmp(op, ">=") == 0) {
		semver_range_add(r, SEMVER_GE, &v);
	} else if (strcmp(op, ">") == 0) {
		if (pv->nset == 0)
			return -1;	/* ">*" matches nothing: refuse it */
		if (pv->nset == 3)
			semver_range_add(r, SEMVER_GT, &v);
		else {
			/* >1.2 is >=1.3.0 */
			semver_partial_next(pv, pv->nset, &hi);
			hi.pre[0] = '\0';
			semver_range_add(r, SEMVER_GE, &hi);
		}
	} else if (strcmp(op, "<") == 0) {
		if (pv->nset == 0)
			return -1;
		/* <2.0.0 also excludes 2.0.0's pre-releases. */
		if (v.pre[0] == '\0')
			semver_floor(&v);
		semver_range_add(r, SEMVER_LT, &v);
	} else if (strcmp(op, "<=") == 0) {
		if (pv->nset == 3)
			semver_range_add(r, SEMVER_LE, &v);
		else if (pv->nset > 0) {
			semver_partial_next(pv, pv->nset, &hi);
			semver_range_add(r, SEMVER_LT, &hi);
		}
		/* "<=*" is any version: nothing to add. */
	} else if (strcmp(op, "~") == 0 || strcmp(op, "~>") == 0) {
		/* ~1.2.3 := >=1.2.3 <1.3.0; ~1.2 := <1.3.0; ~1 := <2.0.0 */
		semver_range_add(r, SEMVER_GE, &v);
		if (pv->nset == 0)
			return 0;
		level = pv->nset >= 2 ? 2 : 1;
		semver_partial_next(pv, level, &hi);
		semver_range_add(r, SEMVER_LT, &hi);
	} else if (strcmp(op, "^") == 0) {
		/* Bump the first non-zero component among those given. */
		semver_range_add(r, SEMVER_GE, &v);
		if (pv->nset == 0)
			return 0;
		if (pv->v[0] != 0 || pv->nset == 1)
			level = 1;
		else if (pv->v[1] != 0 || pv->nset == 2)
			level = 2;
		else
			level = 3;
		semver_partial_next(pv, level, &hi);
		semver_range_add(r, SEMVER_LT, &hi);
	} else
		return -1;
	return 0;
}

static void
semver_range_free(struct semver_range *r)
{
	free(r->c);
	memset(r, 0, sizeof(*r));
}

/* Parse a range; on error err says where. */
static int
semver_range_parse(const char *text, struct semver_range *r, char *err,
    size_t errlen)
{
	struct semver_partial	 pv, pv2;
	struct semver		 lo, hi;
	const char		*s = text, *start;
	char			 op[3];
	size_t			 n;
	int			 incomp = 0;	/* comparators in this alternative */

	memset(r, 0, sizeof(*r));
	if (text == NULL)
		return 0;		/* no range: any version */
	for (;;) {
		while (*s == ' ' || *s == '\t' || *s == ',')
			s++;
		if (*s == '\0')
			break;
		if (s[0] == '|' && s[1] == '|') {
			if (incomp == 0)
				goto bad;
			s += 2;
			r->nalt++;
			incomp = 0;
			continue;
		}
		start = s;
		n = 0;
		while (n < 2 && *s != '\0' && strchr("<>=!~^", *s) != NULL)
			op[n++] = *s++;
		op[n] = '\0';
		if (*s == ' ' && n > 0)
			while (*s == ' ')
				s++;	/* ">= 1.2.3" */
		if (semver_partial_parse(&s, &pv) == -1 ||
		    (*s != '\0' && *s != ' ' && *s != '\t' && *s != ',' &&
		    *s != '|')) {
			s = start;
			goto bad;
		}
		/* Hyphen range "A - B". */
		if (n == 0 && strncmp(s, " - ", 3) == 0) {
			s += 3;
			while (*s == ' ')
				s++;
			if (semver_partial_parse(&s, &pv2) == -1 ||
			    (*s != '\0' && *s != ' ' && *s != ',' &&
			    *s != '|')) {
				s = start;
				goto bad;
			}
			semver_from_partial(&pv, &lo);
			semver_range_add(r, SEMVER_GE, &lo);
			if (pv2.nset == 3) {
				semver_from_partial(&pv2, &hi);
				semver_range_add(r, SEMVER_LE, &hi);
			} else if (pv2.nset > 0) {
				semver_partial_next(&pv2, pv2.nset, &hi);
				semver_range_add(r, SEMVER_LT, &hi);
			}
			incomp++;
			continue;
		}
		if (semver_add_op(r, op, &pv) == -1) {
			s = start;
			goto bad;
		}
		incomp++;
	}
	if (incomp == 0 && r->nalt > 0) {
		s = text + strlen(text);
		goto bad;
	}
	r->nalt++;
	return 0;
bad:
	snprintf(err, errlen, "bad semver range \"%s\" at offset %zu (\"%.*s\")",
	    text, (size_t)(s - text), (int)strcspn(s, " ,\t"), s);
	semver_range_free(r);
	return -1;
}

static int
semver_cmp_ok(const struct semver_cmp *c, const struct semver *v)
{
	int	 d = semver_cmp(v, &c->ver);

	switch (c->op) {
	case SEMVER_GE:	return d >= 0;
	case SEMVER_GT:	return d > 0;
	case SEMVER_LT:	return d < 0;
	case SEMVER_LE:	return d <= 0;
	case SEMVER_EQ:	return d == 0;
	case SEMVER_NE:	return d != 0;
	}
	return 0;
}

/* An empty range (no comparators) is any version. */
static int
semver_range_match(const struct semver_range *r, const struct semver *v)
{
	size_t	 i;
	int	 alt, ok;

	if (r->n == 0)
		return 1;
	for (alt = 0; alt < r->nalt; alt++) {
		ok = 1;
		for (i = 0; i < r->n; i++)
			if (r->c[i].alt == alt && !semver_cmp_ok(&r->c[i], v))
				ok = 0;
		if (ok)
			return 1;
	}
	return 0;
}

/* ---------------------------------------------------------------- */
/* Pattern policies                                                  */

#define PATTERN_MAX_LEN		512
#define PATTERN_MAX_COST	4096
#define PATTERN_MAX_DEPTH	32

/*
 * An upper estimate of the size glibc's regcomp() expands a pattern to
 * (or more than PATTERN_MAX_COST for patterns it cannot handle well):
 * it copies a sub-expression once per counted repetition ({n,m}) and once
 * more for '+', so nested or stacked repetitions grow exponentially
 * ("a++++..." or "(a{100}){100}").  Returns the estimate, capped just
 * above PATTERN_MAX_COST.
 */
static unsigned long
pattern_cost(const char *re)
{
	unsigned long	 sum[PATTERN_MAX_DEPTH + 1], last = 0, mult, a, b;
	const char	*p = re;
	int		 depth = 0, rep = 0, was_rep;

	sum[0] = 0;
	while (*p != '\0') {
		/* Reset per token so no case can use a stale factor. */
		// NOLINTNEXTLINE(clang-analyzer-deadcode.DeadStores)
		mult = 0;
		/*
		 * Adjacent repetition operators ("a+*", "a?+") are undefined
		 * in POSIX EREs, and glibc's closure computation explodes on
		 * stacks of them: refuse any.
		 */
		was_rep = rep;
		rep = (*p == '+' || *p == '*' || *p == '?' ||
		    (*p == '{' && p[1] >= '0' && p[1] <= '9'));
		if (rep && was_rep)
			return PATTERN_MAX_COST + 1;
		switch (*p) {
		case '\\':
			p += p[1] != '\0' ? 2 : 1;
			last = 1;
			sum[depth] += last;
			continue;
		case '[':
			p++;
			if (*p == '^')
				p++;
			if (*p == ']')
				p++;
			while (*p != '\0' && *p != ']') {
				if (*p == '[' && (p[1] == ':' || p[1] == '.' ||
				    p[1] == '=')) {
					char close = p[1];

					p += 2;
					while (*p != '\0' &&
					    !(p[0] == close && p[1] == ']'))
						p++;
					if (*p != '\0')
						p++;
				}
				if (*p != '\0')
					p++;
			}
			if (*p == ']')
				p++;
			last = 1;
			sum[depth] += last;
			continue;
		case '(':
			if (depth == PATTERN_MAX_DEPTH)
				return PATTERN_MAX_COST + 1;
			sum[++depth] = 0;
			p++;
			continue;
		case ')':
			if (depth > 0) {
				last = sum[depth] > 0 ? sum[depth] : 1;
				depth--;
				sum[depth] += last;
			}
			p++;
			continue;
		case '+':
			mult = 2;
			p++;
			break;
		case '*':
		case '?':
			p++;
			continue;
		case '{':
			a = b = 0;
			p++;
			while (*p >= '0' && *p <= '9' && a <= PATTERN_MAX_COST)
				a = a * 10 + (unsigned long)(*p++ - '0');
			if (*p == ',') {
				p++;
				if (*p >= '0' && *p <= '9') {
					while (*p >= '0' && *p <= '9' &&
					    b <= PATTERN_MAX_COST)
						b = b * 10 +
						    (unsigned long)(*p++ - '0');
				} else
					b = a + 1;
			}
			while (*p != '\0' && *p != '}')
				p++;
			if (*p == '}')
				p++;
			mult = a > b ? a : b;
			if (mult == 0)
				mult = 1;
			break;
		default:
			last = 1;
			sum[depth] += last;
			p++;
			continue;
		}
		/* A repetition multiplies the atom just before it. */
		if (last > PATTERN_MAX_COST || mult > PATTERN_MAX_COST)
			return PATTERN_MAX_COST + 1;
		sum[depth] += last * (mult - 1);
		last *= mult;
		if (sum[depth] > PATTERN_MAX_COST)
			return PATTERN_MAX_COST + 1;
	}
	while (depth > 0) {
		last = sum[depth--];
		sum[depth] += last;
	}
	return sum[0] > PATTERN_MAX_COST ? PATTERN_MAX_COST + 1 : sum[0];
}

/* Patterns regcomp() may be given: bounded length and expansion. */
static int
pattern_tame(const char *re)
{
	return strlen(re) <= PATTERN_MAX_LEN &&
	    pattern_cost(re) <= PATTERN_MAX_COST;
}

/*
 * Expand an extract template ("$1", "${2}", "build-$1") over a match into
 * out.  Returns 0, or -1 if a group does not exist or did not take part.
 */
static int
pattern_extract(const char *tmpl, const char *tag, const regmatch_t *m,
    size_t nmatch, struct buf *out)
{
	const char	*t = tmpl;
	size_t		 g;
	int		 braced;

	while (*t != '\0') {
		if (*t != '$') {
			if (buf_add(out, t, 1) == -1)
				return -1;
			t++;
			continue;
		}
		t++;
		braced = (*t == '{');
		if (braced)
			t++;
		if (!isdigit((unsigned char)*t))
			return -1;
		g = 0;
		while (isdigit((unsigned char)*t)) {
			g = g * 10 + (size_t)(*t - '0');
			if (g >= nmatch)
				return -1;
			t++;
		}
		if (braced && *t++ != '}')
			return -1;
		if (m[g].rm_so == -1)
			return -1;
		if (buf_add(out, tag + m[g].rm_so,
		    (size_t)(m[g].rm_eo - m[g].rm_so)) == -1)
			return -1;
	}
	return 0;
}

/* Highest $N an extract template refers to, or -1 if malformed. */
static long
pattern_extract_maxgroup(const char *t)
{
	long	 max = 0, g;
	int	 braced;

	while (*t != '\0') {
		if (*t++ != '$')
			continue;
		braced = (*t == '{');
		if (braced)
			t++;
		if (!isdigit((unsigned char)*t))
			return -1;
		g = 0;
		while (isdigit((unsigned char)*t)) {
			g = g * 10 + (*t - '0');
			if (g > 99)
				return -1;
			t++;
		}
		if (braced && *t++ != '}')
			return -1;
		if (g > max)
			max = g;
	}
	return max;
}

/* A decimal number: optional '-', digits, optional '.' digits. */
static int
pattern_is_number(const char *s)
{
	if (*s == '-')
		s++;
	if (!isdigit((unsigned char)*s))
		return 0;
	while (isdigit((unsigned char)*s))
		s++;
	if (*s == '.') {
		s++;
		if (!isdigit((unsigned char)*s))
			return 0;
		while (isdigit((unsigned char)*s))
			s++;
	}
	return *s == '\0';
}

/* Exact comparison of two pattern_is_number() strings of any length. */
static int
pattern_cmp_number(const char *a, const char *b)
{
	int		 nega = (*a == '-'), negb = (*b == '-'), sign, c;
	size_t		 ia, ib;
	const char	*fa, *fb;

	if (nega)
		a++;
	if (negb)
		b++;
	while (*a == '0' && isdigit((unsigned char)a[1]))
		a++;
	while (*b == '0' && isdigit((unsigned char)b[1]))
		b++;
	ia = strspn(a, "0123456789");
	ib = strspn(b, "0123456789");
	fa = a[ia] == '.' ? a + ia + 1 : "";
	fb = b[ib] == '.' ? b + ib + 1 : "";
	/* -0 and 0 are equal. */
	if (ia == 1 && *a == '0' && strspn(fa, "0") == strlen(fa))
		nega = 0;
	if (ib == 1 && *b == '0' && strspn(fb, "0") == strlen(fb))
		negb = 0;
	if (nega != negb)
		return nega ? -1 : 1;
	sign = nega ? -1 : 1;
	if (ia != ib)
		return ia < ib ? -sign : sign;
	if ((c = memcmp(a, b, ia)) != 0)
		return c < 0 ? -sign : sign;
	for (;;) {
		char da = *fa != '\0' ? *fa++ : '0';
		char db = *fb != '\0' ? *fb++ : '0';

		if (da != db)
			return da < db ? -sign : sign;
		if (*fa == '\0' && *fb == '\0')
			return 0;
	}
}

/*
 * Match tag against the policy's pattern and compute its sort key into
 * key (the extract expansion or the whole tag).  0, or -1 if the tag does
 * not match, the regex does not compile, or a numerical key is no number.
 */
static int
pattern_key(const struct config_policy *p, const char *tag, struct buf *key)
{
	regex_t		 re;
	regmatch_t	 m[10];
	int		 rc = -1;

	if (p->pattern == NULL || tag == NULL || !pattern_tame(p->pattern))
		return -1;
	if (regcomp(&re, p->pattern, REG_EXTENDED) != 0)
		return -1;
	if (regexec(&re, tag, nitems(m), m, 0) != 0)
		goto out;
	if (buf_add(key, "", 0) == -1)		/* data is never NULL */
		goto out;
	if (p->extract != NULL) {
		if (pattern_extract(p->extract, tag, m,
		    re.re_nsub + 1 < nitems(m) ? re.re_nsub + 1 : nitems(m),
		    key) == -1)
			goto out;
	} else if (buf_addstr(key, tag) == -1)
		goto out;
	if (p->order == CONFIG_ORDER_NUMERICAL && !pattern_is_number(key->data))
		goto out;
	rc = 0;
out:
	regfree(&re);
	return rc;
}

/* ---------------------------------------------------------------- */
/* Policies                                                          */

int
policy_validate(const struct config_policy *p, char *err, size_t errlen)
{
	struct semver_range	 r;
	regex_t			 re;
	char			 rerr[128];
	long			 maxg;
	int			 rc;

	switch (p->kind) {
	case CONFIG_POLICY_SEMVER:
		if (semver_range_parse(p->semver, &r, err, errlen) == -1)
			return -1;
		semver_range_free(&r);
		return 0;
	case CONFIG_POLICY_PATTERN:
		if (p->pattern == NULL || *p->pattern == '\0') {
			snprintf(err, errlen, "pattern policy needs a pattern");
			return -1;
		}
		if (!pattern_tame(p->pattern)) {
			snprintf(err, errlen, "pattern \"%.64s%s\" is too long "
			    "or repeats too much (at most %d bytes; nested or "
			    "large {n,m} repetitions expand)", p->pattern,
			    strlen(p->pattern) > 64 ? "..." : "",
			    PATTERN_MAX_LEN);
			return -1;
		}
		if ((rc = regcomp(&re, p->pattern, REG_EXTENDED)) != 0) {
			regerror(rc, &re, rerr, sizeof(rerr));
			snprintf(err, errlen, "bad pattern \"%s\": %s",
			    p->pattern, rerr);
			return -1;
		}
		if (p->extract != NULL) {
			maxg = pattern_extract_maxgroup(p->extract);
			if (maxg < 0 || strchr(p->extract, '$') == NULL) {
				snprintf(err, errlen, "bad extract \"%s\": use "
				    "$1..$9 to name a group of the pattern",
				    p->extract);
				regfree(&re);
				return -1;
			}
			if ((size_t)maxg > re.re_nsub || maxg > 9) {
				snprintf(err, errlen, "extract \"%s\" names "
				    "group $%ld but the pattern has %zu group%s",
				    p->extract, maxg, re.re_nsub,
				    re.re_nsub == 1 ? "" : "s");
				regfree(&re);
				return -1;
			}
		}
		regfree(&re);
		return 0;
	case CONFIG_POLICY_LATEST:
		return 0;
	case CONFIG_POLICY_DIGEST:
		if (p->digest_tag == NULL || !policy_tag_valid(p->digest_tag,
		    strlen(p->digest_tag))) {
			snprintf(err, errlen, "digest policy needs a valid tag "
			    "to follow");
			return -1;
		}
		return 0;
	}
	snprintf(err, errlen, "unknown policy kind");
	return -1;
}

/* Version of a tag under a semver policy: parsed, allowed pre-release. */
static int
policy_semver_of(const struct config_policy *p, const char *tag,
    struct semver *v)
{
	if (semver_parse(tag, v) == -1)
		return -1;
	if (v->pre[0] != '\0' && !p->prerelease)
		return -1;
	return 0;
}

int
policy_accepts(const struct config_policy *p, const char *tag)
{
	struct semver_range	 r;
	struct semver		 v;
	struct buf		 key;
	char			 err[160];
	int			 ok;

	if (tag == NULL || !policy_tag_valid(tag, strlen(tag)))
		return 0;
	switch (p->kind) {
	case CONFIG_POLICY_SEMVER:
		if (policy_semver_of(p, tag, &v) == -1)
			return 0;
		if (semver_range_parse(p->semver, &r, err, sizeof(err)) == -1)
			return 0;
		ok = semver_range_match(&r, &v);
		semver_range_free(&r);
		return ok;
	case CONFIG_POLICY_PATTERN:
		buf_init(&key, POLICY_TAG_MAX * 4);
		ok = pattern_key(p, tag, &key) == 0;
		buf_free(&key);
		return ok;
	case CONFIG_POLICY_LATEST:
		return 1;
	case CONFIG_POLICY_DIGEST:
		return p->digest_tag != NULL && strcmp(tag, p->digest_tag) == 0;
	}
	return 0;
}

int
policy_newer(const struct config_policy *p, const char *current,
    const char *candidate)
{
	struct semver	 vc, vn;
	struct buf	 kc, kn;
	int		 newer;

	if (!policy_accepts(p, candidate))
		return 0;
	switch (p->kind) {
	case CONFIG_POLICY_SEMVER:
		/*
		 * A current tag that is a version is ordered even if it is a
		 * pre-release or outside the range: never go below it.
		 */
		if (semver_parse(current, &vc) == -1)
			return 1;
		(void)policy_semver_of(p, candidate, &vn);
		return semver_cmp(&vn, &vc) > 0;
	case CONFIG_POLICY_PATTERN:
		buf_init(&kc, POLICY_TAG_MAX * 4);
		buf_init(&kn, POLICY_TAG_MAX * 4);
		if (current == NULL || pattern_key(p, current, &kc) == -1)
			newer = 1;
		else if (pattern_key(p, candidate, &kn) == -1)
			newer = 0;
		else if (p->order == CONFIG_ORDER_NUMERICAL)
			newer = pattern_cmp_number(kn.data, kc.data) > 0;
		else
			newer = strcmp(kn.data, kc.data) > 0;
		buf_free(&kc);
		buf_free(&kn);
		return newer;
	case CONFIG_POLICY_LATEST:
		/* Newest push wins: the event itself is the newer one. */
		return 1;
	case CONFIG_POLICY_DIGEST:
		/*
		 * The followed tag moved; the caller compares the pinned
		 * digest with the pushed one.
		 */
		return 1;
	}
	return 0;
}

const char *
policy_best(const struct config_policy *p, char *const *tags, size_t n,
    const char *current)
{
	const char	*best = NULL;
	size_t		 i;

	/* Push order is not in a tag list; the followed tag has no rival. */
	if (p->kind == CONFIG_POLICY_LATEST || p->kind == CONFIG_POLICY_DIGEST)
		return NULL;
	for (i = 0; i < n; i++) {
		if (!policy_accepts(p, tags[i]))
			continue;
		if (best == NULL || policy_newer(p, best, tags[i]))
			best = tags[i];
	}
	if (best != NULL && current != NULL && !policy_newer(p, current, best))
		return NULL;
	return best;
}
