/*
 * timer_index: the two small in-memory tables of the timer store besides
 * the heap.
 *
 * - The half index: every transactional half message in a live segment,
 *   pending or decided, by (topic, txn id) and by entry id.  It answers
 *   "is this transaction's half still pending, claimed, or how did it
 *   end" without touching the disk, and forgets a half when its segment
 *   is deleted.
 * - Pending counts per (topic, kind), for the admin views.
 *
 * Chained hash tables that double at load factor 1.  Not thread-safe;
 * the store's mutex guards them.
 */
#ifndef RUNNEL_TIMER_INDEX_H
#define RUNNEL_TIMER_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "timer/timer_store.h"

struct timer_half {
    struct timer_half *next_key, *next_id; /* bucket chains */
    uint64_t id;
    uint32_t hash; /* of the key */
    uint8_t state; /* enum timer_state */
    bool claimed;
    bool lost_slot; /* its heap slot was dropped while claimed: unclaim pushes one */
    uint16_t topic_len, txn_len;
    uint8_t key[]; /* topic bytes, then txn id bytes */
};

struct timer_halves {
    struct timer_half **by_key, **by_id;
    size_t nbuckets, n;
};

struct timer_half *timer_halves_find(const struct timer_halves *h, const char *topic,
                                     size_t topic_len, const uint8_t *txn, size_t txn_len);
struct timer_half *timer_halves_find_id(const struct timer_halves *h, uint64_t id);
/* A new half (pending, unclaimed); NULL when out of memory.  The caller
 * has checked the key is not present.  Lengths are at most UINT16_MAX. */
struct timer_half *timer_halves_add(struct timer_halves *h, uint64_t id, const char *topic,
                                    size_t topic_len, const uint8_t *txn, size_t txn_len);
void timer_halves_remove(struct timer_halves *h, struct timer_half *x);
/* Removes every half whose id is in [lo, hi); returns how many. */
size_t timer_halves_forget(struct timer_halves *h, uint64_t lo, uint64_t hi);
void timer_halves_free(struct timer_halves *h);

struct timer_topic {
    struct timer_topic *next;
    uint32_t hash;
    int64_t pending[TIMER_KIND_COUNT]; /* indexed by enum timer_kind */
    size_t len;
    char name[]; /* NUL-terminated */
};

struct timer_topics {
    struct timer_topic **b;
    size_t nbuckets, n;
};

/*
 * Adds delta to (topic, kind); a topic whose counts all reach 0 is
 * removed.  0, or -ENOMEM (only when a topic had to be created).
 */
int timer_topics_add(struct timer_topics *t, const char *topic, size_t len, enum timer_kind kind,
                     int64_t delta);
void timer_topics_each(const struct timer_topics *t,
                       void (*fn)(void *arg, const struct timer_topic *tp), void *arg);
void timer_topics_free(struct timer_topics *t);

#endif
