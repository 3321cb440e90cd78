/*
 * buf.c: capped growable buffers (include/buf.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"

/*
 * The logger builds its lines here, so out of memory cannot be logged:
 * say it on stderr as plainly as possible and stop, as xmalloc would.
 */
static void __attribute__((noreturn))
buf_oom(size_t n)
{
	char	 msg[96];
	int	 len;

	len = snprintf(msg, sizeof(msg), "fatal: out of memory (%zu bytes)\n",
	    n);
	if (len > 0)
		(void)!write(STDERR_FILENO, msg, (size_t)len);
	abort();
}

void
buf_init(struct buf *b, size_t cap)
{
	memset(b, 0, sizeof(*b));
	b->cap = cap;
}

static int
buf_grow(struct buf *b, size_t need)
{
	size_t	 n;
	char	*p;

	if (b->cap != 0 && b->len + need > b->cap)
		return -1;
	/* data is NULL exactly when alloc is 0 (said for the analyzer). */
	if (b->data != NULL && b->len + need + 1 <= b->alloc)
		return 0;
	n = b->alloc ? b->alloc : 256;
	while (n < b->len + need + 1)
		n *= 2;
	if ((p = realloc(b->data, n)) == NULL)
		buf_oom(n);
	b->data = p;
	b->alloc = n;
	return 0;
}

int
buf_reserve(struct buf *b, size_t n)
{
	return buf_grow(b, n);
}

int
buf_add(struct buf *b, const void *p, size_t n)
{
	if (buf_grow(b, n) == -1)
		return -1;
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int
buf_addstr(struct buf *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}

int
buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	char	*s;
	int	 rc;

	if (vasprintf(&s, fmt, ap) == -1)
		buf_oom(0);
	rc = buf_addstr(b, s);
	free(s);
	return rc;
}

int
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list	 ap;
	int	 rc;

	va_start(ap, fmt);
	rc = buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

void
buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->alloc = 0;
}

char *
buf_steal(struct buf *b, size_t *lenp)
{
	char	*p;

	if (b->data == NULL)
		buf_add(b, "", 0);
	p = b->data;
	if (lenp != NULL)
		*lenp = b->len;
	b->data = NULL;
	b->len = b->alloc = 0;
	return p;
}
