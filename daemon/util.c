/*
 * util.c: allocation wrappers, hex/HMAC, files, clocks.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "log.h"
#include "util.h"

void *
xmalloc(size_t n)
{
	void	*p;

	if (n == 0)
		n = 1;
	if ((p = malloc(n)) == NULL)
		fatalx("out of memory (%zu bytes)", n);
	return p;
}

void *
xcalloc(size_t nmemb, size_t size)
{
	void	*p;

	if (nmemb == 0 || size == 0)
		nmemb = size = 1;
	if ((p = calloc(nmemb, size)) == NULL)
		fatalx("out of memory (%zu x %zu bytes)", nmemb, size);
	return p;
}

void *
xreallocarray(void *ptr, size_t nmemb, size_t size)
{
	void	*p;

	if (nmemb == 0 || size == 0)
		nmemb = size = 1;
	if (size != 0 && nmemb > SIZE_MAX / size)
		fatalx("allocation overflow");
	if ((p = realloc(ptr, nmemb * size)) == NULL)
		fatalx("out of memory (%zu x %zu bytes)", nmemb, size);
	return p;
}

char *
xstrdup(const char *s)
{
	char	*p;

	if ((p = strdup(s)) == NULL)
		fatalx("out of memory");
	return p;
}

char *
xstrndup(const char *s, size_t n)
{
	char	*p;

	if ((p = strndup(s, n)) == NULL)
		fatalx("out of memory");
	return p;
}

char *
xvasprintf(const char *fmt, va_list ap)
{
	char	*s;

	if (vasprintf(&s, fmt, ap) == -1)
		fatalx("out of memory");
	return s;
}

char *
xasprintf(const char *fmt, ...)
{
	va_list	 ap;
	char	*s;

	va_start(ap, fmt);
	s = xvasprintf(fmt, ap);
	va_end(ap);
	return s;
}

void
util_hex(const unsigned char *p, size_t n, char *out)
{
	static const char hexd[] = "0123456789abcdef";
	size_t	 i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hexd[p[i] >> 4];
		out[2 * i + 1] = hexd[p[i] & 0xf];
	}
	out[2 * n] = '\0';
}

static int
util_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

long
util_unhex(const char *s, size_t len, unsigned char *out, size_t outlen)
{
	size_t	 i;
	int	 hi, lo;

	if (len % 2 != 0 || len / 2 > outlen)
		return -1;
	for (i = 0; i < len / 2; i++) {
		hi = util_hexval((unsigned char)s[2 * i]);
		lo = util_hexval((unsigned char)s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return (long)(len / 2);
}

int
util_ct_equal(const void *a, size_t alen, const void *b, size_t blen)
{
	if (alen != blen)
		return 0;
	if (alen == 0)
		return 1;
	return CRYPTO_memcmp(a, b, alen) == 0;
}

/*
 * HMAC() looks the HMAC algorithm and the digest up in the provider
 * tables on every call, which costs about as much as hashing a 7 KB
 * payload; the MAC is fetched once (it is shared safely between threads).
 * Keying a context fetches the digest again, so each thread keeps one
 * context with the digest and key it was last keyed with: a source's
 * webhooks all use the same secret, and a context is re-initialised with
 * its key for the next message (EVP_MAC_init with a NULL key).  The copy
 * of the key is wiped when it changes and when the thread ends.
 */
static EVP_MAC		*util_hmac_mac;
static pthread_once_t	 util_hmac_once = PTHREAD_ONCE_INIT;
static pthread_key_t	 util_hmac_tls;

struct util_hmac_cache {
	EVP_MAC_CTX	*ctx;
	const char	*digest;	/* NULL: not keyed */
	size_t		 klen;
	unsigned char	 key[128];	/* longer keys are not kept */
};

static void
util_hmac_cache_free(void *arg)
{
	struct util_hmac_cache	*c = arg;

	EVP_MAC_CTX_free(c->ctx);
	OPENSSL_cleanse(c->key, sizeof(c->key));
	free(c);
}

static void
util_hmac_fetch(void)
{
	util_hmac_mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (pthread_key_create(&util_hmac_tls, util_hmac_cache_free) != 0)
		fatalx("pthread_key_create");
}

static void
util_hmac_hex(const char *digest, const void *key, size_t klen,
    const void *msg, size_t mlen, char *out)
{
	struct util_hmac_cache	*c;
	unsigned char		 md[EVP_MAX_MD_SIZE];
	size_t			 mdlen = 0;
	OSSL_PARAM		 params[2];
	int			 ok;
	/* OpenSSL refuses a NULL key; an empty key is a valid HMAC key. */
	static const unsigned char	 nokey[1];

	pthread_once(&util_hmac_once, util_hmac_fetch);
	if (util_hmac_mac == NULL)
		fatalx("HMAC-%s unavailable", digest);
	if ((c = pthread_getspecific(util_hmac_tls)) == NULL) {
		c = xcalloc(1, sizeof(*c));
		if ((c->ctx = EVP_MAC_CTX_new(util_hmac_mac)) == NULL ||
		    pthread_setspecific(util_hmac_tls, c) != 0)
			fatalx("HMAC-%s unavailable", digest);
	}
	if (c->digest != NULL && strcmp(c->digest, digest) == 0 &&
	    klen <= sizeof(c->key) &&
	    c->klen == klen && CRYPTO_memcmp(c->key, key, klen) == 0)
		ok = EVP_MAC_init(c->ctx, NULL, 0, NULL);
	else {
		params[0] = OSSL_PARAM_construct_utf8_string(
		    OSSL_MAC_PARAM_DIGEST, (char *)digest, 0);
		params[1] = OSSL_PARAM_construct_end();
		OPENSSL_cleanse(c->key, sizeof(c->key));
		c->digest = NULL;
		ok = EVP_MAC_init(c->ctx, klen > 0 ? key : nokey, klen,
		    params);
		if (ok == 1 && klen <= sizeof(c->key)) {
			if (klen > 0)
				memcpy(c->key, key, klen);
			c->klen = klen;
			c->digest = digest;
		}
	}
	if (ok != 1 || EVP_MAC_update(c->ctx, msg, mlen) != 1 ||
	    EVP_MAC_final(c->ctx, md, &mdlen, sizeof(md)) != 1)
		fatalx("HMAC-%s failed", digest);
	util_hex(md, mdlen, out);
}

void
util_hmac_sha256_hex(const void *key, size_t klen, const void *msg,
    size_t mlen, char out[65])
{
	util_hmac_hex("SHA256", key, klen, msg, mlen, out);
}

void
util_hmac_sha1_hex(const void *key, size_t klen, const void *msg,
    size_t mlen, char out[41])
{
	util_hmac_hex("SHA1", key, klen, msg, mlen, out);
}

void
util_sha256_hex(const void *msg, size_t mlen, char out[65])
{
	unsigned char	 md[SHA256_DIGEST_LENGTH];

	SHA256(msg, mlen, md);
	util_hex(md, sizeof(md), out);
}

char *
util_read_file(const char *path, size_t cap, size_t *lenp)
{
	struct buf	 b;
	char		 tmp[65536];
	ssize_t		 n;
	int		 fd, saved;

	if (cap == 0)
		cap = 16 * 1024 * 1024;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return NULL;
	buf_init(&b, cap);
	buf_add(&b, "", 0);
	for (;;) {
		n = read(fd, tmp, sizeof(tmp));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			goto fail;
		if (n == 0)
			break;
		if (buf_add(&b, tmp, (size_t)n) == -1) {
			errno = EFBIG;
			goto fail;
		}
	}
	close(fd);
	return buf_steal(&b, lenp);
fail:
	saved = errno;
	close(fd);
	buf_free(&b);
	errno = saved;
	return NULL;
}

char *
util_read_secret(const char *path, char *err, size_t errlen)
{
	char	*s;
	size_t	 len;

	if ((s = util_read_file(path, 65536, &len)) == NULL) {
		snprintf(err, errlen, "cannot read secret file %s: %s", path,
		    strerror(errno));
		return NULL;
	}
	while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r'))
		s[--len] = '\0';
	if (len == 0) {
		snprintf(err, errlen, "secret file %s is empty", path);
		free(s);
		return NULL;
	}
	if (memchr(s, '\0', len) != NULL) {
		snprintf(err, errlen, "secret file %s holds a NUL byte", path);
		free(s);
		return NULL;
	}
	return s;
}

int
util_write_file_atomic(const char *path, const void *p, size_t n)
{
	char	*tmp;
	int	 fd, rc = -1;
	size_t	 off = 0;
	ssize_t	 w;

	tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) == -1)
		goto out;
	while (off < n) {
		w = write(fd, (const char *)p + off, n - off);
		if (w == -1 && errno == EINTR)
			continue;
		if (w == -1) {
			close(fd);
			unlink(tmp);
			goto out;
		}
		off += (size_t)w;
	}
	if (fsync(fd) == -1 || close(fd) == -1) {
		unlink(tmp);
		goto out;
	}
	if (rename(tmp, path) == -1) {
		unlink(tmp);
		goto out;
	}
	rc = 0;
out:
	free(tmp);
	return rc;
}

int
util_mkdirs(const char *path, unsigned mode)
{
	char	*p, *s;
	int	 rc = 0;

	p = xstrdup(path);
	for (s = p + 1; ; s++) {
		if (*s == '/' || *s == '\0') {
			char c = *s;

			*s = '\0';
			if (mkdir(p, (mode_t)mode) == -1 && errno != EEXIST) {
				rc = -1;
				break;
			}
			*s = c;
			if (c == '\0')
				break;
		}
	}
	free(p);
	return rc;
}

static int
util_rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

void
util_rmtree(const char *path)
{
	nftw(path, util_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

int64_t
util_now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
util_mono_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double
util_mono_s(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void
util_rfc3339(int64_t ms, char out[32])
{
	time_t		 t = (time_t)(ms / 1000);
	struct tm	 tm;

	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

long
util_urldecode(const char *in, size_t len, char *out, int plus_is_space)
{
	size_t	 i, o = 0;
	int	 hi, lo;

	for (i = 0; i < len; i++) {
		if (in[i] == '%') {
			if (i + 2 >= len)
				return -1;
			hi = util_hexval((unsigned char)in[i + 1]);
			lo = util_hexval((unsigned char)in[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			out[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else if (in[i] == '+' && plus_is_space)
			out[o++] = ' ';
		else
			out[o++] = in[i];
	}
	out[o] = '\0';
	return (long)o;
}

char *
util_form_get(const char *body, size_t len, const char *key, size_t *outlen)
{
	size_t	 klen = strlen(key), i = 0, j;
	char	*out;
	long	 n;

	while (i < len) {
		for (j = i; j < len && body[j] != '&'; j++)
			;
		if (j - i > klen && memcmp(body + i, key, klen) == 0 &&
		    body[i + klen] == '=') {
			out = xmalloc(j - i - klen);
			n = util_urldecode(body + i + klen + 1, j - i - klen - 1,
			    out, 1);
			if (n < 0) {
				free(out);
				return NULL;
			}
			if (outlen != NULL)
				*outlen = (size_t)n;
			return out;
		}
		i = j + 1;
	}
	return NULL;
}

int
util_random(void *p, size_t n)
{
	size_t	 off = 0;
	ssize_t	 r;

	while (off < n) {
		r = getrandom((char *)p + off, n - off, 0);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			return -1;
		off += (size_t)r;
	}
	return 0;
}

double
util_random_unit(void)
{
	uint64_t	 r;

	if (util_random(&r, sizeof(r)) == -1)
		r = (uint64_t)util_mono_ms() * 6364136223846793005ULL;
	return (double)(r >> 11) / (double)(1ULL << 53);
}

size_t
util_strlcpy(char *dst, const char *src, size_t size)
{
	size_t	 n = strlen(src);

	if (size > 0) {
		size_t	 c = n < size - 1 ? n : size - 1;

		memcpy(dst, src, c);
		dst[c] = '\0';
	}
	return n;
}

/* splitmix64's finaliser over FNV-1a: sequential names ("app-1",
 * "app-2", ...) differ in one byte, and plain FNV leaves that in the low
 * bits that a modulo keeps. */
uint64_t
util_hash_str(const char *s)
{
	uint64_t	 h = 0xcbf29ce484222325ULL;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return h;
}
