/*
 * buf.h: a growable byte buffer with a hard cap (daemon/buf.c).
 *
 * It depends on nothing of gitopsd's, so the logger can build its lines
 * with it while util.c's allocation wrappers report through the logger.
 * Running out of memory aborts, as xmalloc does.
 */
#ifndef GITOPSD_BUF_H
#define GITOPSD_BUF_H

#include <stdarg.h>
#include <stddef.h>

/*
 * A growable byte buffer with a hard cap; appends past the cap fail with -1
 * and leave the buffer as it was.  Always NUL-terminated for convenience.
 */
struct buf {
	char	*data;
	size_t	 len;
	size_t	 alloc;
	size_t	 cap;		/* 0: no cap */
};

void	 buf_init(struct buf *, size_t cap);
int	 buf_add(struct buf *, const void *, size_t);
/* Room for n more bytes now (within the cap): -1 if over the cap. */
int	 buf_reserve(struct buf *, size_t n);
int	 buf_addstr(struct buf *, const char *);
int	 buf_printf(struct buf *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
int	 buf_vprintf(struct buf *, const char *, va_list)
	    __attribute__((format(printf, 2, 0)));
void	 buf_reset(struct buf *);
void	 buf_free(struct buf *);
/* Hands the data to the caller (free()); the buffer is reset. */
char	*buf_steal(struct buf *, size_t *lenp);

#endif
