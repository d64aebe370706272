/*
 * timer_heap: the in-memory binary min-heap of pending timer entries.
 *
 * One 16-byte slot per pending entry (due time, entry id), ordered by
 * (due, id) so entries due at the same millisecond come out in the order
 * they were stored.  The heap never looks at the disk: a slot may be
 * stale (its entry was marked done or rescheduled), and timer_store.c
 * checks each popped slot against the entry on disk.  Not thread-safe;
 * the store's mutex guards it.
 */
#ifndef RUNNEL_TIMER_HEAP_H
#define RUNNEL_TIMER_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct timer_slot {
    int64_t due_ms;
    uint64_t id;
};

struct timer_heap {
    struct timer_slot *a;
    size_t n, cap;
};

static inline bool timer_slot_before(const struct timer_slot *x, const struct timer_slot *y)
{
    return x->due_ms < y->due_ms || (x->due_ms == y->due_ms && x->id < y->id);
}

/* 0, or -ENOMEM (the heap is unchanged). */
int timer_heap_push(struct timer_heap *h, struct timer_slot s);
/* Makes room for `extra` more slots, so the pushes that follow cannot
 * fail (a caller that must not fail after writing to disk reserves
 * first).  0 or -ENOMEM. */
int timer_heap_reserve(struct timer_heap *h, size_t extra);
/* Removes the smallest slot into *out; false when empty. */
bool timer_heap_pop(struct timer_heap *h, struct timer_slot *out);
/* The smallest slot, or NULL when empty. */
static inline const struct timer_slot *timer_heap_top(const struct timer_heap *h)
{
    return h->n ? &h->a[0] : NULL;
}
/* Bulk load: append slots to a[0..n) unordered with timer_heap_append,
 * then restore the heap order in O(n) with timer_heap_build. */
int timer_heap_append(struct timer_heap *h, struct timer_slot s);
void timer_heap_build(struct timer_heap *h);
void timer_heap_free(struct timer_heap *h);

#endif
