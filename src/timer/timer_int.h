/*
 * timer_int.h: what the timer store's files share (timer_store.c, the
 * appends, reads and API; timer_recovery.c, the scan at open;
 * timer_intent.c, the intent file).  Not for use outside src/timer.
 */
#ifndef RUNNEL_TIMER_INT_H
#define RUNNEL_TIMER_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "timer/timer_heap.h"
#include "timer/timer_index.h"
#include "timer/timer_store.h"

/* Entry field offsets (the table at the top of timer_store.c). */
#define E_CRC 4
#define E_STATE 8
#define E_CHECKS 9
#define E_DUE 12
#define E_IMMUTABLE 20
#define E_KIND 20
#define E_VERSION 21
#define E_TOPIC_LEN 22
#define E_PARTITION 24
#define E_CREATED 28
#define E_TIMESTAMP 36
#define E_TOPIC 44
#define E_MIN_SIZE (E_TOPIC + 4 + 4 + 4 + 4 + 2 + 2)
/* Far above any record the broker accepts; bounds what a damaged length
 * field can make a reader allocate. */
#define E_MAX_SIZE (1u << 30)
#define ENTRY_VERSION 1

#define SEG_SUFFIX ".timer"
#define SEG_DIGITS 20
#define DEFAULT_SEGMENT_BYTES ((int64_t)64 << 20)

/* Big-endian helpers. */

static inline uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) << 32 | get32(p + 4);
}

static inline void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)(v >> 32));
    put32(p + 4, (uint32_t)v);
}

struct timer_seg {
    uint64_t base; /* global position of its first byte; its file name */
    int fd;
    int64_t size;       /* bytes of entries that may be read (appends go at size) */
    int64_t file_bytes; /* its length on disk, for the counts */
    int64_t pending;    /* pending entries in it */
    int refs;           /* the list's one plus readers'; under mu */
    bool dirty;         /* written since the last sync */
    bool dead;          /* unlinked */
};

struct timer_store {
    pthread_mutex_t mu;
    pthread_mutex_t sync_mu; /* before mu; held by timer_store_sync */
    char *dir;
    int dir_fd;
    int64_t segment_bytes;

    struct timer_seg **segs; /* by base; the last one is active */
    size_t nsegs, segs_cap;

    struct timer_heap heap;
    struct timer_halves halves;
    struct timer_topics topics;
    int64_t pending[TIMER_KIND_COUNT];
    int64_t disk_bytes;
    uint64_t gen; /* bumped by every rewrite of a mutable field */
    int failed;   /* -EIO after a failed write or sync: read-only from then on */
    bool dir_dirty;

    int intent_fd;
    bool intent_open; /* the file's open flag is set */
    bool intent_dirty;
    bool has_recovered; /* the intent found open at open time, until resolved */
    struct timer_intent recovered;
};

/* Where the parts of a parsed entry are, as offsets from its start. */
struct timer_fields {
    uint32_t total;
    enum timer_kind kind;
    enum timer_state state;
    int checks;
    int64_t due_ms, created_ms, timestamp;
    int32_t partition;
    uint32_t topic_off, topic_len;
    int32_t key_len, value_len, header_count;
    uint32_t key_off, value_off, headers_off, headers_len;
    uint32_t pg_off, pg_len, txn_off, txn_len;
};

/* A bounds-checked cursor over an entry: a read past the end sets bad. */
struct cur {
    const uint8_t *p;
    uint64_t o, end;
    bool bad;
};

static inline uint64_t cur_take(struct cur *c, uint64_t n)
{
    uint64_t at = c->o;
    if (c->bad || n > c->end - c->o) {
        c->bad = true;
        return c->end;
    }
    c->o += n;
    return at;
}

static inline int32_t cur_i32(struct cur *c)
{
    uint64_t at = cur_take(c, 4);
    return c->bad ? 0 : (int32_t)get32(c->p + at);
}

static inline int16_t cur_i16(struct cur *c)
{
    uint64_t at = cur_take(c, 2);
    return c->bad ? 0 : (int16_t)get16(c->p + at);
}

/* timer_store.c */
/* Checks an entry of `total` bytes at p (framing, CRC, every length) and
 * fills f.  0, or -EBADMSG. */
int timer_entry_parse(const uint8_t *p, uint32_t total, struct timer_fields *f);
void timer_seg_name(char *out, size_t n, uint64_t base);
struct timer_seg *timer_seg_new(uint64_t base, int fd, int64_t size);
/* Appends to ts->segs.  0 or -ENOMEM. */
int timer_segs_push(struct timer_store *ts, struct timer_seg *s);
/* Under mu: unlinks sealed segment i (nothing in it is pending). */
void timer_seg_drop(struct timer_store *ts, size_t i);
/* Under mu: starts a new active segment at base. */
int timer_seg_roll_at(struct timer_store *ts, uint64_t base);
/* Under mu: adds delta to the pending counts of the entry's kind and topic. */
void timer_count_pending(struct timer_store *ts, const uint8_t *p, const struct timer_fields *f,
                         int64_t delta);
/* A write or sync failed: the store turns read-only.  Returns -EIO. */
int timer_store_fail(struct timer_store *ts, const char *what, int e);

/* timer_recovery.c */
/*
 * At open: lists and scans the segments, cuts a torn tail, rebuilds the
 * heap, the counts and the half index, and deletes sealed segments with
 * nothing pending.  Counts what it read into *entries and *dropped.  0,
 * or -1 with a message.
 */
int timer_recover(struct timer_store *ts, int64_t *entries, int64_t *dropped, char *err,
                  size_t errlen);

/* timer_intent.c */
/* At open: the intent left open, if any, into ts->recovered. */
int timer_intent_recover(struct timer_store *ts, char *err, size_t errlen);
/* Under mu: clears the open flag on disk and forgets the recovered one. */
int timer_intent_close(struct timer_store *ts);
void timer_intent_free(struct timer_intent *in);

#endif
