/*
 * seen.c: the delivery ids of the dedup window (include/seen.h).
 *
 * 64 open-addressing tables with linear probing (a hash's top six bits
 * pick one), each at most three quarters full.  A table grows by doubling
 * and, while it rehashes, holds the old and the new array: 64 small ones
 * keep that moment's extra memory and time to a 64th (one table of
 * 200,000 ids held 12 MB twice and stalled the store thread for
 * milliseconds).
 *
 * A slot is 16 bytes: the hash, and one word packing the event id (38
 * bits) over the minute of receipt since 2020 (26 bits, to the year
 * 2147); a zero word marks a free slot (event ids start at 1).  Minutes
 * are enough for a window counted in days, and 16 bytes instead of 24 is
 * a third less memory per remembered id.
 *
 * Removal (a rolled-back transaction) shifts the rest of the probe run
 * back, so lookups never need tombstones.  Pending entries are listed by
 * (hash, event id) rather than by slot, since a growth moves slots.
 */
#include <stdlib.h>
#include <string.h>

#include "seen.h"
#include "util.h"

#define SEEN_PART_BITS	6
#define SEEN_PARTS	(1 << SEEN_PART_BITS)
#define SEEN_MIN_SLOTS	16		/* per part */
#define SEEN_MIN_BITS	26
#define SEEN_MIN_MAX	((1ULL << SEEN_MIN_BITS) - 1)
#define SEEN_ID_MAX	((1LL << (64 - SEEN_MIN_BITS)) - 1)
#define SEEN_EPOCH_MS	1577836800000LL		/* 2020-01-01T00:00Z */

struct seen_slot {
	uint64_t	 h;
	uint64_t	 v;		/* id << SEEN_MIN_BITS | minute; 0: free */
};

struct seen_ref {
	uint64_t	 h;
	int64_t		 event_id;
};

struct seen_part {
	struct seen_slot *slots;
	size_t		  nslots;	/* a power of two */
	size_t		  count;
};

struct seen {
	unsigned char	  key[16];
	struct seen_part  parts[SEEN_PARTS];
	size_t		  count;
	struct seen_ref	 *pending;
	size_t		  npending, pending_cap;
};

/* The minute of a time, counted from SEEN_EPOCH_MS and clamped. */
static uint64_t
seen_minute(int64_t ms)
{
	uint64_t	 m;

	if (ms <= SEEN_EPOCH_MS)
		return 0;
	m = (uint64_t)(ms - SEEN_EPOCH_MS) / 60000;
	return m > SEEN_MIN_MAX ? SEEN_MIN_MAX : m;
}

/* The table of a hash: by its top bits, the low ones index its slots. */
static struct seen_part *
seen_part(const struct seen *sn, uint64_t h)
{
	return (struct seen_part *)&sn->parts[h >> (64 - SEEN_PART_BITS)];
}

static int64_t
seen_slot_id(const struct seen_slot *e)
{
	return (int64_t)(e->v >> SEEN_MIN_BITS);
}

/* SipHash-2-4, fed in pieces (a key is source, NUL, delivery id). */
struct seen_sip {
	uint64_t	 v0, v1, v2, v3;
	uint64_t	 tail;
	size_t		 ntail, len;
};

#define SEEN_ROTL(x, b)	(((x) << (b)) | ((x) >> (64 - (b))))

static void
seen_sip_round(struct seen_sip *s)
{
	s->v0 += s->v1;
	s->v1 = SEEN_ROTL(s->v1, 13);
	s->v1 ^= s->v0;
	s->v0 = SEEN_ROTL(s->v0, 32);
	s->v2 += s->v3;
	s->v3 = SEEN_ROTL(s->v3, 16);
	s->v3 ^= s->v2;
	s->v0 += s->v3;
	s->v3 = SEEN_ROTL(s->v3, 21);
	s->v3 ^= s->v0;
	s->v2 += s->v1;
	s->v1 = SEEN_ROTL(s->v1, 17);
	s->v1 ^= s->v2;
	s->v2 = SEEN_ROTL(s->v2, 32);
}

static uint64_t
seen_le64(const unsigned char *p)
{
	uint64_t	 v = 0;
	int		 i;

	for (i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static void
seen_sip_init(struct seen_sip *s, const unsigned char key[16])
{
	uint64_t	 k0 = seen_le64(key), k1 = seen_le64(key + 8);

	s->v0 = k0 ^ 0x736f6d6570736575ULL;
	s->v1 = k1 ^ 0x646f72616e646f6dULL;
	s->v2 = k0 ^ 0x6c7967656e657261ULL;
	s->v3 = k1 ^ 0x7465646279746573ULL;
	s->tail = 0;
	s->ntail = 0;
	s->len = 0;
}

static void
seen_sip_word(struct seen_sip *s, uint64_t m)
{
	s->v3 ^= m;
	seen_sip_round(s);
	seen_sip_round(s);
	s->v0 ^= m;
}

static void
seen_sip_update(struct seen_sip *s, const void *msg, size_t len)
{
	const unsigned char	*p = msg;

	s->len += len;
	while (len > 0 && s->ntail > 0) {
		s->tail |= (uint64_t)*p++ << (8 * s->ntail);
		len--;
		if (++s->ntail == 8) {
			seen_sip_word(s, s->tail);
			s->tail = 0;
			s->ntail = 0;
		}
	}
	for (; len >= 8; p += 8, len -= 8)
		seen_sip_word(s, seen_le64(p));
	for (; len > 0; len--)
		s->tail |= (uint64_t)*p++ << (8 * s->ntail++);
}

static uint64_t
seen_sip_final(struct seen_sip *s)
{
	seen_sip_word(s, s->tail | ((uint64_t)(s->len & 0xff) << 56));
	s->v2 ^= 0xff;
	seen_sip_round(s);
	seen_sip_round(s);
	seen_sip_round(s);
	seen_sip_round(s);
	return s->v0 ^ s->v1 ^ s->v2 ^ s->v3;
}

uint64_t
seen_siphash(const unsigned char key[16], const void *msg, size_t len)
{
	struct seen_sip	 s;

	seen_sip_init(&s, key);
	seen_sip_update(&s, msg, len);
	return seen_sip_final(&s);
}

struct seen *
seen_new_keyed(const unsigned char key[16])
{
	struct seen	*sn;
	size_t		 i;

	sn = xcalloc(1, sizeof(*sn));
	memcpy(sn->key, key, sizeof(sn->key));
	for (i = 0; i < SEEN_PARTS; i++) {
		sn->parts[i].nslots = SEEN_MIN_SLOTS;
		sn->parts[i].slots = xcalloc(SEEN_MIN_SLOTS,
		    sizeof(*sn->parts[i].slots));
	}
	return sn;
}

struct seen *
seen_new(void)
{
	unsigned char	 key[16];

	if (util_random(key, sizeof(key)) == -1)
		return NULL;
	return seen_new_keyed(key);
}

void
seen_free(struct seen *sn)
{
	size_t	 i;

	if (sn == NULL)
		return;
	for (i = 0; i < SEEN_PARTS; i++)
		free(sn->parts[i].slots);
	free(sn->pending);
	free(sn);
}

uint64_t
seen_hash(const struct seen *sn, const char *source, const char *delivery)
{
	struct seen_sip	 s;

	seen_sip_init(&s, sn->key);
	seen_sip_update(&s, source, strlen(source) + 1);
	seen_sip_update(&s, delivery, strlen(delivery));
	return seen_sip_final(&s);
}

/* Put a slot's contents into a table that has room (no duplicate check). */
static void
seen_place(struct seen_slot *slots, size_t nslots, const struct seen_slot *e)
{
	size_t	 mask = nslots - 1, i = (size_t)e->h & mask;

	while (slots[i].v != 0)
		i = (i + 1) & mask;
	slots[i] = *e;
}

static void
seen_resize(struct seen_part *pt, size_t nslots)
{
	struct seen_slot	*slots;
	size_t			 i;

	slots = xcalloc(nslots, sizeof(*slots));
	for (i = 0; i < pt->nslots; i++)
		if (pt->slots[i].v != 0)
			seen_place(slots, nslots, &pt->slots[i]);
	free(pt->slots);
	pt->slots = slots;
	pt->nslots = nslots;
}

int
seen_find(const struct seen *sn, uint64_t h,
    int (*match)(void *, int64_t), void *arg)
{
	const struct seen_part	*pt = seen_part(sn, h);
	size_t			 mask = pt->nslots - 1, i = (size_t)h & mask;
	int			 r;

	for (; pt->slots[i].v != 0; i = (i + 1) & mask) {
		if (pt->slots[i].h != h)
			continue;
		if ((r = match(arg, seen_slot_id(&pt->slots[i]))) != 0)
			return r;
	}
	return 0;
}

/* Put an entry in, growing the table when it would pass 3/4 full. */
static void
seen_insert(struct seen *sn, uint64_t h, int64_t event_id,
    int64_t received_ms)
{
	struct seen_part	*pt = seen_part(sn, h);
	struct seen_slot	 e;

	e.h = h;
	e.v = (uint64_t)event_id << SEEN_MIN_BITS | seen_minute(received_ms);
	if (pt->count + 1 > pt->nslots - pt->nslots / 4)
		seen_resize(pt, pt->nslots * 2);
	seen_place(pt->slots, pt->nslots, &e);
	pt->count++;
	sn->count++;
}

void
seen_add(struct seen *sn, uint64_t h, int64_t event_id, int64_t received_ms)
{
	if (event_id <= 0 || event_id > SEEN_ID_MAX)
		return;
	seen_insert(sn, h, event_id, received_ms);
	if (sn->npending == sn->pending_cap) {
		sn->pending_cap = sn->pending_cap ? sn->pending_cap * 2 : 64;
		sn->pending = xreallocarray(sn->pending, sn->pending_cap,
		    sizeof(*sn->pending));
	}
	sn->pending[sn->npending].h = h;
	sn->pending[sn->npending].event_id = event_id;
	sn->npending++;
}

void
seen_load(struct seen *sn, uint64_t h, int64_t event_id, int64_t received_ms)
{
	if (event_id > 0 && event_id <= SEEN_ID_MAX)
		seen_insert(sn, h, event_id, received_ms);
}

size_t
seen_pending(const struct seen *sn)
{
	return sn->npending;
}

void
seen_commit(struct seen *sn)
{
	sn->npending = 0;
}

/* Take one entry out, shifting back the probe run behind it. */
static void
seen_remove(struct seen *sn, uint64_t h, int64_t event_id)
{
	struct seen_part	*pt = seen_part(sn, h);
	struct seen_slot	*sl = pt->slots;
	size_t			 mask = pt->nslots - 1, i = (size_t)h & mask;
	size_t			 j, home;

	for (;; i = (i + 1) & mask) {
		if (sl[i].v == 0)
			return;		/* pruned meanwhile */
		if (sl[i].h == h && seen_slot_id(&sl[i]) == event_id)
			break;
	}
	pt->count--;
	sn->count--;
	/*
	 * Slot i is the hole.  An entry further along the run may move into
	 * it unless its home lies cyclically after the hole (then moving it
	 * would put it before its home, out of its own probe path).
	 */
	for (j = (i + 1) & mask; sl[j].v != 0; j = (j + 1) & mask) {
		home = (size_t)sl[j].h & mask;
		if (((j - home) & mask) >= ((j - i) & mask)) {
			sl[i] = sl[j];
			i = j;
		}
	}
	memset(&sl[i], 0, sizeof(sl[i]));
}

void
seen_rollback_to(struct seen *sn, size_t mark)
{
	while (sn->npending > mark) {
		sn->npending--;
		seen_remove(sn, sn->pending[sn->npending].h,
		    sn->pending[sn->npending].event_id);
	}
}

/* One table's part of seen_prune. */
static size_t
seen_prune_part(struct seen_part *pt, uint64_t cut)
{
	struct seen_slot	*old = pt->slots;
	size_t			 i, keep = 0, nslots = SEEN_MIN_SLOTS, gone;

#define SEEN_KEEP(e)	((e)->v != 0 && ((e)->v & SEEN_MIN_MAX) >= cut)
	for (i = 0; i < pt->nslots; i++)
		if (SEEN_KEEP(&old[i]))
			keep++;
	gone = pt->count - keep;
	if (gone == 0)
		return 0;
	/* Rebuilt at twice what stays: room to grow before the next prune. */
	while (nslots / 2 < keep)
		nslots *= 2;
	pt->slots = xcalloc(nslots, sizeof(*pt->slots));
	for (i = 0; i < pt->nslots; i++)
		if (SEEN_KEEP(&old[i]))
			seen_place(pt->slots, nslots, &old[i]);
#undef SEEN_KEEP
	free(old);
	pt->nslots = nslots;
	pt->count = keep;
	return gone;
}

size_t
seen_prune(struct seen *sn, int64_t before_ms)
{
	uint64_t	 cut = seen_minute(before_ms);
	size_t		 i, gone = 0;

	for (i = 0; i < SEEN_PARTS; i++)
		gone += seen_prune_part(&sn->parts[i], cut);
	sn->count -= gone;
	return gone;
}

size_t
seen_count(const struct seen *sn)
{
	return sn->count;
}
