/*
 * util.h: allocation wrappers, hex/HMAC helpers, files, clocks (the capped
 * buffers are buf.h, which util.h includes for its callers).  Shared by every module; nothing here touches the event loop.
 */
#ifndef GITOPSD_UTIL_H
#define GITOPSD_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define nitems(a)	(sizeof(a) / sizeof((a)[0]))

/* Allocation that aborts on out-of-memory, so callers only handle real errors. */
void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xreallocarray(void *, size_t, size_t);
char	*xstrdup(const char *);
char	*xstrndup(const char *, size_t);
char	*xasprintf(const char *, ...) __attribute__((format(printf, 1, 2)));
char	*xvasprintf(const char *, va_list) __attribute__((format(printf, 1, 0)));

/* Lowercase hex of n bytes into out (2n+1 bytes). */
void	 util_hex(const unsigned char *, size_t n, char *out);
/* Decode hex; returns bytes written or -1 on bad input or overflow. */
long	 util_unhex(const char *, size_t len, unsigned char *out, size_t outlen);

/* Constant-time equality of two byte strings (length leaks, content not). */
int	 util_ct_equal(const void *, size_t, const void *, size_t);

/* HMAC-SHA256 / SHA1 of msg as lowercase hex (65 / 41 bytes). */
void	 util_hmac_sha256_hex(const void *key, size_t klen,
	    const void *msg, size_t mlen, char out[65]);
void	 util_hmac_sha1_hex(const void *key, size_t klen,
	    const void *msg, size_t mlen, char out[41]);
void	 util_sha256_hex(const void *msg, size_t mlen, char out[65]);

/*
 * Read a whole file (at most cap bytes; 0 = 16 MiB).  Returns a malloc'd
 * NUL-terminated buffer, or NULL with errno set (EFBIG when over cap).
 */
char	*util_read_file(const char *path, size_t cap, size_t *lenp);
/* Read a secret file: trailing CR/LF stripped; NULL if missing or empty. */
char	*util_read_secret(const char *path, char *err, size_t errlen);
/* Write a whole file atomically (tmp + fsync + rename). */
int	 util_write_file_atomic(const char *path, const void *, size_t);
/* mkdir -p */
int	 util_mkdirs(const char *path, unsigned mode);
/* rm -r without following links; best effort. */
void	 util_rmtree(const char *path);

/* Clocks. */
int64_t	 util_now_ms(void);		/* CLOCK_REALTIME */
int64_t	 util_mono_ms(void);		/* CLOCK_MONOTONIC */
double	 util_mono_s(void);
/* RFC 3339 UTC "2026-11-26T06:21:37Z" of a unix time in ms. */
void	 util_rfc3339(int64_t ms, char out[32]);

/* URL-decode (application/x-www-form-urlencoded); returns new length or -1. */
long	 util_urldecode(const char *in, size_t len, char *out, int plus_is_space);
/* Look up one form field, URL-decoded; malloc'd or NULL. */
char	*util_form_get(const char *body, size_t len, const char *key,
	    size_t *outlen);

/* Random bytes from the kernel; 0 on success. */
int	 util_random(void *, size_t);
/* A uniformly random double in [0,1). */
double	 util_random_unit(void);

/* strlcpy semantics. */
size_t	 util_strlcpy(char *dst, const char *src, size_t size);
/* A well-mixed 64-bit hash of a string, the same in every process (for
 * spreading schedules, not for security). */
uint64_t util_hash_str(const char *);

#endif
