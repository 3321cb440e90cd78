/*
 * json_arena.c: a per-thread bump allocator under cJSON while a handler
 * parses a payload.
 *
 * A 7 KB GitHub push is about 500 cJSON nodes and as many key and value
 * strings: a thousand malloc/free pairs per webhook were the largest single
 * cost of ingest.  Between handler_json_arena_begin() and _end() on a
 * thread, cJSON's allocations on that thread come from one reused buffer
 * (plus larger overflow chunks for big documents, freed at the end), and
 * frees of those pointers do nothing.  Other threads, and this thread
 * outside the bracket, get plain malloc/free.  The contract for handlers:
 * nothing cJSON allocated during parse() may outlive it; they copy what
 * they keep (xstrdup) and hand their trees to handler_json_delete(), which
 * leaves an arena tree to _end() and deletes any other.
 *
 * Under AddressSanitizer the arena poisons what it hands back at _end(),
 * so a pointer kept past the bracket is still reported as a use after
 * free.
 */
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "handler.h"
#include "util.h"

#if defined(__SANITIZE_ADDRESS__)
#define JSON_ARENA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define JSON_ARENA_ASAN 1
#endif
#endif
#ifdef JSON_ARENA_ASAN
#include <sanitizer/asan_interface.h>
#define JA_POISON(p, n)		ASAN_POISON_MEMORY_REGION((p), (n))
#define JA_UNPOISON(p, n)	ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define JA_POISON(p, n)		((void)(p), (void)(n))
#define JA_UNPOISON(p, n)	((void)(p), (void)(n))
#endif

#define JA_ALIGN	16
#define JA_FIRST	(64 * 1024)	/* the reused buffer, to start */
#define JA_KEEP_MAX	(512 * 1024)	/* largest buffer kept between uses */

struct ja_chunk {
	struct ja_chunk	*next;
	size_t		 cap, used;
	/* data follows, JA_ALIGN-aligned */
};

struct ja_state {
	struct ja_chunk	*keep;		/* reused from one parse to the next */
	struct ja_chunk	*extra;		/* overflow of this parse, newest first */
	size_t		 want;		/* bytes this parse asked for */
	int		 active;
};

static _Thread_local struct ja_state ja;
static pthread_once_t ja_once = PTHREAD_ONCE_INIT;

#define JA_HDR	((sizeof(struct ja_chunk) + JA_ALIGN - 1) & ~(size_t)(JA_ALIGN - 1))

static char *
ja_data(struct ja_chunk *c)
{
	return (char *)c + JA_HDR;
}

static struct ja_chunk *
ja_chunk_new(size_t cap)
{
	struct ja_chunk	*c;

	if ((c = malloc(JA_HDR + cap)) == NULL)
		return NULL;
	c->next = NULL;
	c->cap = cap;
	c->used = 0;
	JA_POISON(ja_data(c), cap);
	return c;
}

static void *
ja_take(struct ja_chunk *c, size_t n)
{
	void	*p;

	if (c == NULL || c->cap - c->used < n)
		return NULL;
	p = ja_data(c) + c->used;
	c->used += n;
	JA_UNPOISON(p, n);
	return p;
}

static int
ja_owns(const struct ja_chunk *c, const void *p)
{
	const char	*d = (const char *)c + JA_HDR;

	return (const char *)p >= d && (const char *)p < d + c->cap;
}

static void *
ja_malloc(size_t n)
{
	struct ja_chunk	*c;
	void		*p;
	size_t		 cap;

	if (!ja.active)
		return malloc(n);
	if (n > SIZE_MAX / 2)
		return NULL;
	n = (n + JA_ALIGN - 1) & ~(size_t)(JA_ALIGN - 1);
	ja.want += n;
	if ((p = ja_take(ja.keep, n)) != NULL ||
	    (p = ja_take(ja.extra, n)) != NULL)
		return p;
	/* Overflow chunks double, so a big document needs few of them. */
	cap = ja.extra != NULL ? ja.extra->cap * 2 :
	    ja.keep != NULL ? ja.keep->cap : JA_FIRST;
	if (cap < n)
		cap = n;
	if ((c = ja_chunk_new(cap)) == NULL)
		return NULL;
	c->next = ja.extra;
	ja.extra = c;
	return ja_take(c, n);
}

static void
ja_free(void *p)
{
	if (p != NULL && !handler_json_arena_owns(p))
		free(p);
}

void *
handler_json_alloc(size_t n)
{
	return ja_malloc(n);
}

int
handler_json_arena_owns(const void *p)
{
	const struct ja_chunk	*c;

	if (!ja.active || p == NULL)
		return 0;
	if (ja.keep != NULL && ja_owns(ja.keep, p))
		return 1;
	for (c = ja.extra; c != NULL; c = c->next)
		if (ja_owns(c, p))
			return 1;
	return 0;
}

void
handler_json_delete(cJSON *root)
{
	/* The root's nodes all came from the arena it is in. */
	if (root != NULL && !handler_json_arena_owns(root))
		cJSON_Delete(root);
}

static void
ja_install(void)
{
	cJSON_Hooks	 h = { ja_malloc, ja_free };

	cJSON_InitHooks(&h);
}

void
handler_json_init(void)
{
	pthread_once(&ja_once, ja_install);
}

void
handler_json_arena_begin(void)
{
	handler_json_init();
	if (ja.keep == NULL)
		ja.keep = ja_chunk_new(JA_FIRST);	/* NULL: overflow only */
	ja.want = 0;
	ja.active = 1;
}

void
handler_json_arena_end(void)
{
	struct ja_chunk	*c, *next;
	size_t		 cap;

	ja.active = 0;
	for (c = ja.extra; c != NULL; c = next) {
		next = c->next;
		free(c);
	}
	ja.extra = NULL;
	if (ja.keep == NULL)
		return;
	JA_POISON(ja_data(ja.keep), ja.keep->cap);
	ja.keep->used = 0;
	/* Grow the kept buffer to what this parse needed, within bounds, so
	 * the usual payload of this installation fits in one buffer. */
	if (ja.want > ja.keep->cap && ja.keep->cap < JA_KEEP_MAX) {
		cap = ja.want < JA_KEEP_MAX ? ja.want : JA_KEEP_MAX;
		if ((c = ja_chunk_new(cap)) != NULL) {
			free(ja.keep);
			ja.keep = c;
		}
	}
}
