/*
 * libFuzzer target: manifest edits.  Input: one selector byte (file name:
 * plain or kustomization; whether a digest is set), then the YAML bytes.
 * Checks the edit's invariants:
 *  - the edited file parses, and editing it a second time changes nothing
 *    (the edit is idempotent);
 *  - it differs from the input only in the replaced bytes: both files are
 *    run through libyaml here, and every byte outside the scalars (keys'
 *    punctuation, comments, indentation, line ends, other documents) is
 *    the same, every scalar is byte for byte the same except edited ones,
 *    whose new value holds the new tag or digest; the only additions
 *    allowed are kustomize "newTag: <tag>" pairs.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "manifest.h"
#include "util.h"

/* A scalar: its bytes [start, end) in the file, and its value. */
struct fuzz_scalar {
	size_t	 start, end;
	char	*val;
};

static void
fuzz_scalars_free(struct fuzz_scalar *s, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		free(s[i].val);
	free(s);
}

/*
 * The scalars of buf, with libyaml's character indexes mapped to bytes
 * (UTF-8; a BOM is not counted).  -1 when buf does not parse.
 */
static int
fuzz_scalars(const char *buf, size_t len, struct fuzz_scalar **out,
    size_t *np)
{
	yaml_parser_t		 p;
	yaml_event_t		 e;
	struct fuzz_scalar	*s = NULL;
	size_t			*map, i, n = 0, nmap = 0, bom = 0;
	int			 rc = -1, done = 0;

	if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
		bom = 3;
	map = xcalloc(len + 1, sizeof(*map));
	for (i = bom; i < len; nmap++) {
		unsigned char	 b = (unsigned char)buf[i];

		map[nmap] = i;
		i += b < 0x80 ? 1 : (b & 0xe0) == 0xc0 ? 2 :
		    (b & 0xf0) == 0xe0 ? 3 : 4;
	}
	map[nmap] = len;
	if (!yaml_parser_initialize(&p))
		abort();
	yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
	while (!done) {
		if (!yaml_parser_parse(&p, &e))
			goto out;
		/*
		 * An implicit empty value (a key with nothing after it) has
		 * no bytes, and libyaml places it at the next token, which an
		 * added line moves: only scalars with text are compared.
		 */
		if (e.type == YAML_SCALAR_EVENT && e.data.scalar.length == 0 &&
		    e.start_mark.index == e.end_mark.index) {
			yaml_event_delete(&e);
			continue;
		}
		if (e.type == YAML_SCALAR_EVENT) {
			s = xreallocarray(s, n + 1, sizeof(*s));
			s[n].start = map[e.start_mark.index > nmap ? nmap :
			    e.start_mark.index];
			s[n].end = map[e.end_mark.index > nmap ? nmap :
			    e.end_mark.index];
			s[n].val = xstrndup((const char *)e.data.scalar.value,
			    e.data.scalar.length);
			n++;
		}
		done = e.type == YAML_STREAM_END_EVENT;
		yaml_event_delete(&e);
	}
	rc = 0;
out:
	yaml_parser_delete(&p);
	free(map);
	if (rc == -1) {
		fuzz_scalars_free(s, n);
		s = NULL;
		n = 0;
	}
	*out = s;
	*np = n;
	return rc;
}

static int
fuzz_same(const char *a, size_t alen, const char *b, size_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

/* in (an input region) is out (an output region) less one inserted run. */
static int
fuzz_less_one_run(const char *in, size_t inlen, const char *out,
    size_t outlen)
{
	size_t	 pre = 0, suf = 0;

	if (outlen <= inlen)
		return 0;
	while (pre < inlen && in[pre] == out[pre])
		pre++;
	while (suf < inlen - pre && in[inlen - 1 - suf] ==
	    out[outlen - 1 - suf])
		suf++;
	return pre + suf == inlen;
}

/*
 * Does out's scalar k (with the bytes before it since pout) stand for in's
 * scalar i (or the end when i == na) and the bytes since pin?  ins: the
 * output has kustomize newTag pairs inserted before k.
 */
static int
fuzz_step_ok(const char *in, size_t inlen, const char *out, size_t outlen,
    const struct fuzz_scalar *a, size_t na, const struct fuzz_scalar *b,
    size_t nb, size_t i, size_t k, size_t pin, size_t pout, int ins,
    const struct manifest_target *t)
{
	size_t	 ie = i < na ? a[i].start : inlen;
	size_t	 oe = k < nb ? b[k].start : outlen;

	if (ie < pin || oe < pout)
		return 0;
	if (ins ? !fuzz_less_one_run(in + pin, ie - pin, out + pout,
	    oe - pout) : !fuzz_same(in + pin, ie - pin, out + pout, oe - pout))
		return 0;	/* bytes between scalars changed */
	if (i == na)
		return k == nb;	/* else a scalar was added */
	if (k >= nb)
		return 0;	/* a scalar went missing */
	if (fuzz_same(in + a[i].start, a[i].end - a[i].start,
	    out + b[k].start, b[k].end - b[k].start))
		return 1;
	if (strcmp(a[i].val, b[k].val) == 0)
		return 0;	/* rewritten, same value */
	/* An edited scalar holds the new tag or digest. */
	return (t->tag != NULL && strstr(b[k].val, t->tag) != NULL) ||
	    (t->digest != NULL && strstr(b[k].val, t->digest) != NULL);
}

/* out differs from in only in edited scalars and added newTag pairs. */
static void
fuzz_check_splices(const char *in, size_t inlen, const char *out,
    size_t outlen, const struct manifest_target *t)
{
	struct fuzz_scalar	*a, *b;
	size_t			 na, nb, i, j = 0, k, pin = 0, pout = 0;

	if (fuzz_scalars(in, inlen, &a, &na) == -1)
		return;		/* accepted by the editor, not by plain libyaml */
	if (fuzz_scalars(out, outlen, &b, &nb) == -1)
		abort();	/* the output does not parse */
	for (i = 0; i <= na; i++) {
		k = j;
		if (!fuzz_step_ok(in, inlen, out, outlen, a, na, b, nb, i, k,
		    pin, pout, 0, t)) {
			/* Else kustomize newTag pairs were added here. */
			while (t->tag != NULL && k + 1 < nb &&
			    strcmp(b[k].val, "newTag") == 0 &&
			    strcmp(b[k + 1].val, t->tag) == 0)
				k += 2;
			if (k == j || !fuzz_step_ok(in, inlen, out, outlen, a,
			    na, b, nb, i, k, pin, pout, 1, t))
				abort();
		}
		if (i == na)
			break;
		pin = a[i].end;
		pout = b[k].end;
		j = k + 1;
	}
	fuzz_scalars_free(a, na);
	fuzz_scalars_free(b, nb);
}

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct manifest_target	 t;
	struct manifest_result	 r1, r2;
	char			 err[512];
	const char		*name;

	if (size < 1)
		return 0;
	memset(&t, 0, sizeof(t));
	t.image = "registry.acme.io/acme/web";
	t.marker = "web:web";
	t.tag = "1.3.0";
	if (data[0] & 1)
		t.digest = "sha256:"
		    "2222222222222222222222222222222222222222222222222222222222222222";
	name = (data[0] & 2) ? "kustomization.yaml" : "deploy.yaml";
	if (manifest_update(name, (const char *)data + 1, size - 1, &t, &r1,
	    err, sizeof(err)) == -1)
		return 0;
	if (r1.out != NULL) {
		if (r1.changed == 0 || fuzz_same(r1.out, r1.outlen,
		    (const char *)data + 1, size - 1))
			abort();	/* an output that is no edit */
		fuzz_check_splices((const char *)data + 1, size - 1, r1.out,
		    r1.outlen, &t);
		if (manifest_update(name, r1.out, r1.outlen, &t, &r2, err,
		    sizeof(err)) == -1)
			abort();	/* an edit broke the file */
		if (r2.out != NULL)
			abort();	/* not idempotent */
		manifest_result_free(&r2);
	}
	manifest_result_free(&r1);
	return 0;
}
