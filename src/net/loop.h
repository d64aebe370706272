/*
 * loop: one epoll event loop per network thread.
 *
 * A loop watches file descriptors, runs timers, and runs "wakes" posted
 * to it from other threads (a partition that got data wakes the fetches
 * waiting on it; the flusher wakes the produces whose data it fsynced).
 *
 * Everything except loop_wake() and loop_stop() must be called on the
 * loop's own thread.  loop_wake() takes the loop's wake mutex only long
 * enough to link an item; an eventfd gets the loop out of epoll_wait.
 */
#ifndef RUNNEL_LOOP_H
#define RUNNEL_LOOP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct loop;

/* A watched fd; the caller owns the struct (usually embedded). */
struct loop_io {
    int fd;
    void (*cb)(struct loop_io *io, uint32_t events);
};

struct loop_timer {
    int64_t when; /* monotonic ms */
    int heap_idx; /* -1 when not armed */
    void (*cb)(struct loop_timer *t);
};

/*
 * A wake: an item another thread hands to the loop to run cb on the
 * loop's thread.  Waking an item that is already queued does nothing, so
 * a burst of appends costs the waiter one wake.  loop_unwake() (on the
 * loop's thread) takes a queued item back before its owner frees it.
 */
struct loop_wake {
    struct loop_wake *prev, *next;
    atomic_bool queued;
    struct loop *loop;
    void (*cb)(struct loop_wake *w);
};

struct loop *loop_new(void);
void loop_free(struct loop *l);
int loop_add(struct loop *l, struct loop_io *io, uint32_t events);
int loop_mod(struct loop *l, struct loop_io *io, uint32_t events);
void loop_del(struct loop *l, struct loop_io *io);

void loop_timer_init(struct loop_timer *t, void (*cb)(struct loop_timer *));
void loop_timer_arm(struct loop *l, struct loop_timer *t, int64_t when_mono_ms);
void loop_timer_cancel(struct loop *l, struct loop_timer *t);
static inline bool loop_timer_armed(const struct loop_timer *t)
{
    return t->heap_idx >= 0;
}

void loop_wake_init(struct loop_wake *w, struct loop *l, void (*cb)(struct loop_wake *));
void loop_wake(struct loop_wake *w); /* any thread */
void loop_unwake(struct loop_wake *w);

/* Runs until loop_stop(); before_sleep runs before every epoll_wait. */
void loop_run(struct loop *l, void (*before_sleep)(void *), void *arg);
void loop_stop(struct loop *l); /* any thread */
/* Runs the wakes queued so far; for shutdown, once the loop thread is gone. */
void loop_run_pending(struct loop *l);

#endif
