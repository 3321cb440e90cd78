/*
 * libFuzzer target: the alert template language (notify/template.c).
 *
 * Input: NUL-separated fields: the template, then values for app, reason,
 * tag, image and url; byte 0 of the template field is a selector (output
 * cap, attempts).  Invariants:
 *  - template_check accepts exactly the templates template_render renders
 *    (with room to spare);
 *  - a rendering equals a reference substitution written here
 *    independently: literal text kept byte for byte, "{{ name }}"
 *    replaced by the variable's value;
 *  - with a small cap, rendering fails or fits, never overruns;
 *  - template_header_clean leaves no control character and keeps length;
 *  - template_utf8_truncate yields a prefix of at most max bytes that does
 *    not end inside a UTF-8 sequence.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "notifier.h"
#include "template.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* The next NUL-separated field of [*p, end) (malloc'd, NUL-terminated). */
static char *
fuzz_field(const uint8_t **p, const uint8_t *end)
{
	const uint8_t	*s = *p, *e = s;

	while (e < end && *e != '\0')
		e++;
	*p = e < end ? e + 1 : e;
	return xstrndup((const char *)s, (size_t)(e - s));
}

/* Reference renderer: 0 and out filled, or -1 on an invalid template. */
static int
fuzz_reference(const char *t, const struct notify_alert *a, struct buf *out)
{
	const char	*p = t, *close, *s, *e, *v;
	char		 tmp[32];

	while (*p != '\0') {
		if (p[0] != '{' || p[1] != '{') {
			buf_add(out, p, 1);
			p++;
			continue;
		}
		if ((close = strstr(p + 2, "}}")) == NULL)
			return -1;
		for (s = p + 2; s < close && (*s == ' ' || *s == '\t'); s++)
			;
		for (e = close; e > s && (e[-1] == ' ' || e[-1] == '\t'); e--)
			;
		if (e == s)
			return -1;
		if ((v = template_value(a, s, (size_t)(e - s), tmp)) == NULL)
			return -1;
		buf_addstr(out, v);
		p = close + 2;
	}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t		*p = data, *end = data + size;
	struct notify_alert	 a;
	struct buf		 out, ref, small;
	char			 err[256], *t, *f[5], *clean, *cut;
	size_t			 i, cap, max, len;
	int			 ok, r;

	if (size < 1)
		return 0;
	cap = 1 + (data[0] & 0x3f);
	p++;
	t = fuzz_field(&p, end);
	for (i = 0; i < 5; i++)
		f[i] = fuzz_field(&p, end);

	memset(&a, 0, sizeof(a));
	a.event = "job.failed";
	a.app = f[0];
	a.job_id = (int64_t)size * 7919 - 1000;
	a.kind = "update-image";
	a.reason = f[1];
	a.tag = f[2];
	a.image = f[3];
	a.url = f[4];
	a.attempts = (int)(data[0] >> 6) - 1;
	a.time_ms = (int64_t)size * 1000003;

	ok = template_check(t, err, sizeof(err)) == 0;
	if (!ok && err[0] == '\0')
		abort();	/* a refusal says why */

	buf_init(&out, 0);
	buf_init(&ref, 0);
	r = template_render(t, &a, NULL, &out);
	if ((r == 0) != ok)
		abort();	/* check and render disagree */
	if ((fuzz_reference(t, &a, &ref) == 0) != ok)
		abort();	/* accepts what the reference refuses */
	if (ok && (out.len != ref.len || (out.len > 0 &&
	    memcmp(out.data, ref.data, out.len) != 0)))
		abort();	/* renders something else */

	buf_init(&small, cap);
	r = template_render(t, &a, NULL, &small);
	if (small.len > cap)
		abort();
	if (r == 0 && (!ok || small.len != out.len || (small.len > 0 &&
	    memcmp(small.data, out.data, small.len) != 0)))
		abort();

	clean = template_header_clean(t);
	if (strlen(clean) != strlen(t))
		abort();
	for (i = 0; clean[i] != '\0'; i++)
		if ((unsigned char)clean[i] < 0x20 || clean[i] == 0x7f)
			abort();

	cut = xstrdup(f[1]);
	len = strlen(cut);
	max = cap & 0x1f;
	template_utf8_truncate(cut, max);
	if (strlen(cut) > max || strncmp(cut, f[1], strlen(cut)) != 0)
		abort();
	/* Cut before a continuation byte: inside a sequence (a cut to ""
	 * is fine: input may start with stray continuation bytes). */
	if (len > max && strlen(cut) > 0 && strlen(cut) < len &&
	    ((unsigned char)f[1][strlen(cut)] & 0xc0) == 0x80)
		abort();

	free(cut);
	free(clean);
	buf_free(&small);
	buf_free(&ref);
	buf_free(&out);
	for (i = 0; i < 5; i++)
		free(f[i]);
	free(t);
	return 0;
}
