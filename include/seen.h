/*
 * seen.h: the delivery ids of the dedup window, held in memory.
 *
 * A set of (source, delivery id) keys, each with the id of the stored event
 * that carries it and the time it was received.  An index on disk keyed by
 * delivery id puts every new id on a random page, so each delivery of a
 * group commit dirtied a page of its own; the set keeps that index off the
 * disk, and the events themselves are the durable record it is rebuilt
 * from at start.
 *
 * Keys are kept as 64-bit SipHash-2-4 values under a random key drawn per
 * set, so a match is only a candidate: the caller confirms it against the
 * stored event (seen_find's match callback).  Entries added inside a
 * transaction stay pending until seen_commit() keeps them or
 * seen_rollback_to() takes them out again, so the set follows exactly
 * what was committed.  Not thread-safe: one owner (the store's writer).
 */
#ifndef GITOPSD_SEEN_H
#define GITOPSD_SEEN_H

#include <stddef.h>
#include <stdint.h>

struct seen;

/* A new empty set; NULL if the kernel gave no random key. */
struct seen	*seen_new(void);
/* A new empty set hashing under the given key (tests, reproducible runs). */
struct seen	*seen_new_keyed(const unsigned char key[16]);
void		 seen_free(struct seen *);

/* The set's hash of a key. */
uint64_t	 seen_hash(const struct seen *, const char *source,
		    const char *delivery);
/*
 * Call match(arg, event_id) for each entry whose hash is h until one
 * returns 1 (a confirmed match: returns 1) or -1 (an error: returns -1).
 * Returns 0 when no entry matched.
 */
int		 seen_find(const struct seen *, uint64_t h,
		    int (*match)(void *arg, int64_t event_id), void *arg);
/*
 * Add an entry, pending until seen_commit().  Event ids must be 1 to
 * 2^38 - 1; others are not held (a store reaches 2^38 after 274 billion
 * events).
 */
void		 seen_add(struct seen *, uint64_t h, int64_t event_id,
		    int64_t received_ms);
/* Add an entry already committed (a set built from the store). */
void		 seen_load(struct seen *, uint64_t h, int64_t event_id,
		    int64_t received_ms);
/* Pending entries so far: a mark for seen_rollback_to(). */
size_t		 seen_pending(const struct seen *);
/* Keep every pending entry. */
void		 seen_commit(struct seen *);
/* Remove the entries added after mark (0: every pending entry). */
void		 seen_rollback_to(struct seen *, size_t mark);
/*
 * Forget entries received in a minute before before_ms's minute (never
 * one received at or after before_ms); returns how many went.
 */
size_t		 seen_prune(struct seen *, int64_t before_ms);
/* Entries held, pending ones included. */
size_t		 seen_count(const struct seen *);

/* SipHash-2-4 of msg under a 16-byte key (the reference's byte order). */
uint64_t	 seen_siphash(const unsigned char key[16], const void *msg,
		    size_t len);

#endif
