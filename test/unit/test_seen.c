/*
 * Unit tests for seen.c: SipHash-2-4 against the reference vectors, the
 * hash of a (source, delivery) key fed in pieces, and the table against a
 * plain list under random adds, commits, rollbacks and prunes -- with hash
 * values crowded into a few slots so that probe runs wrap around the end
 * of the table and removals must shift entries back.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "seen.h"

/* 2027-01-15T08:00Z, on a minute. */
#define TEST_T0	1800000000000LL

static const unsigned char test_key[16] = {
	0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
};

/* The paper's example and the first vector of the reference code. */
static void
test_siphash_vectors(void **state)
{
	unsigned char	 msg[15];
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(msg); i++)
		msg[i] = (unsigned char)i;
	assert_true(seen_siphash(test_key, msg, 15) == 0xa129ca6149be45e5ULL);
	assert_true(seen_siphash(test_key, msg, 0) == 0x726fdb47dd0e0e31ULL);
}

/* seen_hash feeds source, NUL, delivery: the same as one message. */
static void
test_hash_pieces(void **state)
{
	struct seen	*sn;
	char		 src[24], del[24], whole[48];
	size_t		 a, b;

	(void)state;
	sn = seen_new_keyed(test_key);
	assert_non_null(sn);
	for (a = 0; a < 20; a++) {
		memset(src, 0, sizeof(src));
		memset(src, 'a' + (int)(a % 7), a);
		for (b = 0; b < 20; b++) {
			memset(del, 0, sizeof(del));
			memset(del, '0' + (int)(b % 10), b);
			memcpy(whole, src, a + 1);
			memcpy(whole + a + 1, del, b);
			assert_true(seen_hash(sn, src, del) ==
			    seen_siphash(test_key, whole, a + 1 + b));
		}
	}
	/* The separator keeps "ab"+"c" apart from "a"+"bc". */
	assert_true(seen_hash(sn, "ab", "c") != seen_hash(sn, "a", "bc"));
	seen_free(sn);
	/* Two sets draw two keys. */
	sn = seen_new();
	assert_non_null(sn);
	assert_true(seen_hash(sn, "github", "d") !=
	    seen_siphash(test_key, "github\0d", 8));
	seen_free(sn);
}

struct model_entry {
	uint64_t	 h;
	int64_t		 id, received;
};

struct found {
	int64_t		 ids[4096];
	size_t		 n;
	int64_t		 want;		/* > 0: stop with 1 on this id */
};

static int
test_collect_cb(void *arg, int64_t id)
{
	struct found	*f = arg;

	if (f->want > 0)
		return id == f->want ? 1 : 0;
	assert_true(f->n < 4096);
	f->ids[f->n++] = id;
	return 0;
}

static int
test_cmp_id(const void *a, const void *b)
{
	int64_t	 x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* Every hash value in use finds exactly the model's entries. */
static void
test_check(struct seen *sn, const struct model_entry *m, size_t n,
    const uint64_t *hs, size_t nh)
{
	struct found	 f;
	int64_t		 want[4096];
	size_t		 i, k, nw;

	assert_int_equal(seen_count(sn), n);
	for (k = 0; k < nh; k++) {
		memset(&f, 0, sizeof(f));
		assert_int_equal(seen_find(sn, hs[k], test_collect_cb, &f), 0);
		for (nw = 0, i = 0; i < n; i++)
			if (m[i].h == hs[k])
				want[nw++] = m[i].id;
		assert_int_equal(f.n, nw);
		qsort(f.ids, f.n, sizeof(f.ids[0]), test_cmp_id);
		qsort(want, nw, sizeof(want[0]), test_cmp_id);
		for (i = 0; i < nw; i++)
			assert_true(f.ids[i] == want[i]);
	}
}

static void
test_table_model(void **state)
{
	static struct model_entry m[8192];
	struct seen	*sn;
	struct found	 f;
	uint64_t	 hs[40];
	size_t		 n = 0, npend = 0, i, j, mark;
	/* Receipt times a minute apart: the table keeps minutes. */
	int64_t		 next_id = 1, now = TEST_T0, cut;
	unsigned	 seed = 12345;
	int		 step, op;

	(void)state;
	/*
	 * Hash values crowd the table's first and last slots (1024 slots at
	 * first; the high bits vary so growth spreads them): probe runs wrap.
	 */
	for (i = 0; i < 40; i++)
		hs[i] = ((uint64_t)(i % 5) << 40) |
		    (i < 20 ? 1020 + i % 8 : i % 8);
	sn = seen_new_keyed(test_key);
	for (step = 0; step < 6000; step++) {
		op = rand_r(&seed) % 100;
		if (op < 70 && n < 1500) {
			m[n].h = hs[(size_t)rand_r(&seed) % 40];
			m[n].id = next_id++;
			m[n].received = now;
			now += 60000;
			seen_add(sn, m[n].h, m[n].id, m[n].received);
			n++;
			npend++;
			assert_int_equal(seen_pending(sn), npend);
		} else if (op < 82) {
			seen_commit(sn);
			npend = 0;
		} else if (op < 94) {
			/* Back to a random mark among the pending ones. */
			mark = npend > 0 ? (size_t)rand_r(&seed) % (npend + 1) :
			    0;
			seen_rollback_to(sn, mark);
			/* Pending entries are always the tail of m. */
			n -= npend - mark;
			npend = mark;
		} else {
			seen_commit(sn);
			npend = 0;
			cut = now - (int64_t)(rand_r(&seed) % 400) * 60000;
			for (i = j = 0; i < n; i++)
				if (m[i].received >= cut)
					m[j++] = m[i];
			assert_int_equal(seen_prune(sn, cut), n - j);
			n = j;
		}
		if (step % 97 == 0 || op >= 82)
			test_check(sn, m, n, hs, 40);
	}
	test_check(sn, m, n, hs, 40);
	/* A confirmed match stops the search. */
	if (n > 0) {
		memset(&f, 0, sizeof(f));
		f.want = m[n / 2].id;
		assert_int_equal(seen_find(sn, m[n / 2].h, test_collect_cb, &f),
		    1);
	}
	seen_free(sn);
}

/*
 * Rolled back after the table grew mid-transaction: growth re-places
 * entries in slot order, not in the order they came, so the entries
 * taken out are no longer the last of their probe runs and the ones
 * behind them must be shifted back to stay findable.
 */
static void
test_rollback_after_growth(void **state)
{
	static struct model_entry m[2048];
	struct seen	*sn;
	uint64_t	 hs[12];
	size_t		 n = 0, i, marks[] = { 150, 90, 40, 0 }, k, base;
	unsigned	 seed = 7;

	(void)state;
	for (i = 0; i < 12; i++)
		hs[i] = ((uint64_t)(i % 2) << 10) | (1022 + i / 2) % 1024;
	sn = seen_new_keyed(test_key);
	/* 700 committed entries anywhere, then crowded pending ones. */
	for (; n < 700; n++) {
		m[n].h = ((uint64_t)rand_r(&seed) << 32) | (uint64_t)rand_r(&seed);
		m[n].id = (int64_t)n + 1;
		m[n].received = 1;
		seen_add(sn, m[n].h, m[n].id, 1);
	}
	seen_commit(sn);
	base = n;
	for (; n < base + 200; n++) {
		m[n].h = hs[(size_t)rand_r(&seed) % 12];
		m[n].id = (int64_t)n + 1;
		m[n].received = 2;
		seen_add(sn, m[n].h, m[n].id, 2);
	}
	test_check(sn, m, n, hs, 12);
	for (k = 0; k < sizeof(marks) / sizeof(marks[0]); k++) {
		seen_rollback_to(sn, marks[k]);
		n = base + marks[k];
		test_check(sn, m, n, hs, 12);
		for (i = 0; i < base; i += 50)
			test_check(sn, m, n, &m[i].h, 1);
	}
	seen_free(sn);
}

/* Many entries: the table grows, a prune of most shrinks it. */
static void
test_grow_and_prune(void **state)
{
	struct seen	*sn;
	struct found	 f;
	char		 d[32];
	int64_t		 i;

	(void)state;
	sn = seen_new_keyed(test_key);
	for (i = 1; i <= 100000; i++) {
		snprintf(d, sizeof(d), "delivery-%lld", (long long)i);
		seen_add(sn, seen_hash(sn, "github", d), i, TEST_T0 + i * 60000);
		if (i % 1000 == 0)
			seen_commit(sn);
	}
	seen_commit(sn);
	assert_int_equal(seen_count(sn), 100000);
	assert_int_equal(seen_prune(sn, TEST_T0 + 99001LL * 60000), 99000);
	assert_int_equal(seen_count(sn), 1000);
	for (i = 1; i <= 100000; i += 7) {
		snprintf(d, sizeof(d), "delivery-%lld", (long long)i);
		memset(&f, 0, sizeof(f));
		f.want = i;
		assert_int_equal(seen_find(sn, seen_hash(sn, "github", d),
		    test_collect_cb, &f), i > 99000 ? 1 : 0);
	}
	seen_free(sn);
}

/*
 * Receipt is kept to the minute: an entry is never forgotten before
 * before_ms, at most within the same minute after it.  Times before
 * 2020 count as the first minute; ids past 2^38 are not held.
 */
static void
test_minutes_and_limits(void **state)
{
	struct seen	*sn;
	struct found	 f;

	(void)state;
	sn = seen_new_keyed(test_key);
	seen_add(sn, 1, 1, TEST_T0 + 10 * 1000);	/* 08:00:10 */
	seen_add(sn, 2, 2, TEST_T0 + 59 * 1000);	/* 08:00:59 */
	seen_add(sn, 3, 3, TEST_T0 + 60 * 1000);	/* 08:01:00 */
	seen_add(sn, 4, 4, 1000);			/* 1970 */
	seen_add(sn, 5, 1LL << 38, TEST_T0);
	seen_add(sn, 6, (1LL << 38) - 1, TEST_T0 + 120 * 1000);
	seen_commit(sn);
	assert_int_equal(seen_count(sn), 5);
	/* Both of 08:00 stay for a cut at 08:00:30... */
	assert_int_equal(seen_prune(sn, TEST_T0 + 30 * 1000), 1);
	assert_int_equal(seen_count(sn), 4);
	/* ...and go at 08:01:00 exactly, the 08:01 one stays. */
	assert_int_equal(seen_prune(sn, TEST_T0 + 60 * 1000), 2);
	memset(&f, 0, sizeof(f));
	assert_int_equal(seen_find(sn, 3, test_collect_cb, &f), 0);
	assert_int_equal(f.n, 1);
	assert_true(f.ids[0] == 3);
	/* The largest id held comes back whole. */
	memset(&f, 0, sizeof(f));
	assert_int_equal(seen_find(sn, 6, test_collect_cb, &f), 0);
	assert_int_equal(f.n, 1);
	assert_true(f.ids[0] == (1LL << 38) - 1);
	seen_free(sn);
}

static int
test_error_cb(void *arg, int64_t id)
{
	(void)arg;
	(void)id;
	return -1;
}

static void
test_match_error(void **state)
{
	struct seen	*sn;

	(void)state;
	sn = seen_new_keyed(test_key);
	seen_add(sn, 7, 1, 1);
	assert_int_equal(seen_find(sn, 7, test_error_cb, NULL), -1);
	assert_int_equal(seen_find(sn, 8, test_error_cb, NULL), 0);
	/* Ids of 0 or less are not events: never stored. */
	seen_add(sn, 9, 0, 1);
	seen_load(sn, 9, -1, 1);
	assert_int_equal(seen_count(sn), 1);
	/* Loaded entries are committed: a rollback leaves them. */
	seen_commit(sn);
	seen_load(sn, 10, 2, 1);
	seen_add(sn, 11, 3, 1);
	assert_int_equal(seen_pending(sn), 1);
	seen_rollback_to(sn, 0);
	assert_int_equal(seen_count(sn), 2);
	assert_int_equal(seen_find(sn, 10, test_error_cb, NULL), -1);
	assert_int_equal(seen_find(sn, 11, test_error_cb, NULL), 0);
	seen_free(sn);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_siphash_vectors),
		cmocka_unit_test(test_hash_pieces),
		cmocka_unit_test(test_table_model),
		cmocka_unit_test(test_rollback_after_growth),
		cmocka_unit_test(test_grow_and_prune),
		cmocka_unit_test(test_minutes_and_limits),
		cmocka_unit_test(test_match_error),
	};

	return cmocka_run_group_tests_name("seen", tests, NULL, NULL);
}
