/*
 * timer_store: the durable store of held-back records (see timer_store.h).
 *
 * Files in the store's directory
 * ------------------------------
 *
 *   00000000000000000000.timer   entries, appended back to back
 *   00000000000067108913.timer   next segment: named by its first global position
 *   intent                       the release intent (one record, rewritten in place)
 *
 * An entry's id is its global byte position: the segment's base (its name)
 * plus the entry's offset in the segment.  A new segment starts where the
 * previous one ended, so ids are unique and increasing for the life of
 * the directory, and finding an entry is a binary search over the bases.
 *
 * Entry (all integers big-endian)
 * -------------------------------
 *
 * | offset | size | field |
 * | --- | --- | --- |
 * | 0 | 4 | length of the rest of the entry (total - 4) |
 * | 4 | 4 | CRC-32C of bytes 20..end (the immutable part) |
 * | 8 | 1 | state: 0 pending, 1 done, 2 discarded (mutable) |
 * | 9 | 1 | checks: half-message check requests sent, saturating at 255 (mutable) |
 * | 10 | 2 | reserved, 0 (mutable) |
 * | 12 | 8 | due_ms: wall clock, Unix ms (mutable) |
 * | 20 | 1 | kind: 1 delay, 2 retry, 3 half |
 * | 21 | 1 | format version: 1 |
 * | 22 | 2 | topic length T (1..32767) |
 * | 24 | 4 | partition |
 * | 28 | 8 | created_ms |
 * | 36 | 8 | timestamp: the record's own |
 * | 44 | T | topic |
 * | 44+T | 4 | key length K (-1: null) |
 * | ... | K | key |
 * | ... | 4 | value length V (-1: null) |
 * | ... | V | value |
 * | ... | 4 | header count |
 * | ... | 4 | headers length H |
 * | ... | H | headers, in the record format of a batch, copied as-is |
 * | ... | 2 | producer group length G |
 * | ... | G | producer group |
 * | ... | 2 | txn id length X |
 * | ... | X | txn id |
 *
 * The smallest entry is 64 bytes.  The mutable fields sit outside the CRC
 * and are rewritten in place with pwrite: a one-byte state write when an
 * entry is marked, bytes 9..20 when it is rescheduled.  A one-byte write
 * cannot tear; the 11-byte reschedule write can only tear across a sector
 * boundary on power loss, and then the worst outcome is a due time that
 * mixes the old and the new one (see docs/decisions/0007-timer-store.md).
 *
 * The intent file's format is at the top of timer_intent.c.
 *
 * Recovery at open (scan, torn tails, corrupt entries) is timer_recovery.c.
 *
 * Locks
 * -----
 *
 * `mu` guards all in-memory state (segment list, heap, half index,
 * counts, intent flags) and every write to the files, so appends never
 * interleave and a mutable field is only written under it.  Entry bodies
 * are read without it: a caller takes a reference on the segment under
 * `mu` (segment_ref), reads (bytes below the size captured under `mu`
 * never change except the mutable fields), then takes `mu` again and
 * re-reads the mutable fields if any were rewritten meanwhile (`gen`).
 * A segment is unlinked only when nothing in it is pending; a reference
 * keeps its file descriptor open until the last reader is done.
 * `sync_mu` is taken before `mu` by timer_store_sync only: one fsync-er
 * at a time, and no fsync under `mu`.
 */
#include "timer/timer_store.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/rlog.h"
#include "storage/fileio.h"
#include "timer/timer_int.h"

/* Entries read together when their positions are at most READ_GAP apart,
 * in one pread of at most READ_SPAN bytes plus READ_AHEAD past the start
 * of the last one.  Entries with a fixed delay come due in the order they
 * were stored, so taking them reads the segment almost sequentially. */
#define READ_GAP 16384
#define READ_AHEAD 2048
#define READ_SPAN (1 << 20)
/* Candidates handled per round of take_due, mark and list. */
#define BATCH_MAX 1024

/* ---- segments and the store ---- */

void timer_seg_name(char *out, size_t n, uint64_t base)
{
    snprintf(out, n, "%0*" PRIu64 SEG_SUFFIX, SEG_DIGITS, base);
}

static void seg_unref(struct timer_seg *s)
{
    if (--s->refs == 0) {
        close(s->fd);
        free(s);
    }
}

/* The index of the last segment starting at or before id, or n. */
static size_t seg_index(struct timer_seg *const *segs, size_t n, uint64_t id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (segs[mid]->base <= id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo ? lo - 1 : n;
}

/* Under mu: the segment holding position id, or NULL. */
static struct timer_seg *seg_find(struct timer_seg **segs, size_t n, uint64_t id)
{
    size_t i = seg_index(segs, n, id);
    if (i == n)
        return NULL;
    return id - segs[i]->base < (uint64_t)segs[i]->size ? segs[i] : NULL;
}

static struct timer_seg *active_seg(struct timer_store *ts)
{
    return ts->segs[ts->nsegs - 1];
}

int timer_segs_push(struct timer_store *ts, struct timer_seg *s)
{
    if (ts->nsegs == ts->segs_cap) {
        size_t cap = ts->segs_cap ? ts->segs_cap * 2 : 8;
        struct timer_seg **a = realloc(ts->segs, cap * sizeof *a);
        if (!a)
            return -ENOMEM;
        ts->segs = a;
        ts->segs_cap = cap;
    }
    ts->segs[ts->nsegs++] = s;
    return 0;
}

/* Unlinks sealed segment i (nothing in it is pending) and forgets the
 * halves it held.  Readers holding a reference keep the file open. */
void timer_seg_drop(struct timer_store *ts, size_t i)
{
    struct timer_seg *s = ts->segs[i];
    char name[64];
    timer_seg_name(name, sizeof name, s->base);
    if (unlinkat(ts->dir_fd, name, 0) < 0 && errno != ENOENT)
        rlog_warn("timer store %s: cannot delete %s: %s", ts->dir, name, strerror(errno));
    size_t forgot = timer_halves_forget(&ts->halves, s->base, s->base + (uint64_t)s->size);
    rlog_debug("timer store %s: deleted %s (%zu halves forgotten)", ts->dir, name, forgot);
    ts->disk_bytes -= s->file_bytes;
    memmove(&ts->segs[i], &ts->segs[i + 1], (ts->nsegs - i - 1) * sizeof *ts->segs);
    ts->nsegs--;
    ts->dir_dirty = true;
    s->dead = true;
    seg_unref(s);
}

/* Called when s's pending count may have reached 0. */
static void seg_maybe_drop(struct timer_store *ts, struct timer_seg *s)
{
    if (s->pending > 0 || s->dead || s == active_seg(ts))
        return;
    for (size_t i = 0; i + 1 < ts->nsegs; i++)
        if (ts->segs[i] == s) {
            timer_seg_drop(ts, i);
            return;
        }
}

struct timer_seg *timer_seg_new(uint64_t base, int fd, int64_t size)
{
    struct timer_seg *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->base = base;
    s->fd = fd;
    s->size = s->file_bytes = size;
    s->refs = 1;
    return s;
}

/* A write or sync failed: like the partition log, the store turns
 * read-only instead of retrying, since the page cache's state after a
 * failed write-back is unknown. */
int timer_store_fail(struct timer_store *ts, const char *what, int e)
{
    if (!ts->failed)
        rlog_error("timer store %s: %s failed (%s); the store is read-only until restarted",
                   ts->dir, what, strerror(e));
    ts->failed = -EIO;
    return -EIO;
}

/* Starts a new active segment at base (at or after the current one's
 * end). */
int timer_seg_roll_at(struct timer_store *ts, uint64_t base)
{
    struct timer_seg *old = active_seg(ts);
    char name[64];
    timer_seg_name(name, sizeof name, base);
    int fd = openat(ts->dir_fd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return timer_store_fail(ts, "creating a segment", errno);
    struct timer_seg *s = timer_seg_new(base, fd, 0);
    if (!s || timer_segs_push(ts, s) < 0) {
        free(s);
        close(fd);
        unlinkat(ts->dir_fd, name, 0);
        return -ENOMEM;
    }
    ts->dir_dirty = true;
    seg_maybe_drop(ts, old);
    return 0;
}

static int seg_roll(struct timer_store *ts)
{
    struct timer_seg *old = active_seg(ts);
    return timer_seg_roll_at(ts, old->base + (uint64_t)old->size);
}

/* ---- the entry format ---- */

/* Checks an entry of `total` bytes at p (framing, CRC, every length) and
 * fills f.  0, or -EBADMSG. */
int timer_entry_parse(const uint8_t *p, uint32_t total, struct timer_fields *f)
{
    if (total < E_MIN_SIZE || total > E_MAX_SIZE || get32(p) != total - 4)
        return -EBADMSG;
    if (crc32c(0, p + E_IMMUTABLE, total - E_IMMUTABLE) != get32(p + E_CRC))
        return -EBADMSG;
    if (p[E_STATE] > TIMER_DISCARDED || p[E_KIND] < TIMER_DELAY || p[E_KIND] > TIMER_HALF ||
        p[E_VERSION] != ENTRY_VERSION)
        return -EBADMSG;
    f->total = total;
    f->kind = p[E_KIND];
    f->state = p[E_STATE];
    f->checks = p[E_CHECKS];
    f->due_ms = (int64_t)get64(p + E_DUE);
    f->partition = (int32_t)get32(p + E_PARTITION);
    f->created_ms = (int64_t)get64(p + E_CREATED);
    f->timestamp = (int64_t)get64(p + E_TIMESTAMP);

    struct cur c = {p, E_TOPIC_LEN, total, false};
    int16_t tl = cur_i16(&c);
    c.o = E_TOPIC;
    if (tl < 1)
        return -EBADMSG;
    f->topic_len = (uint32_t)tl;
    f->topic_off = (uint32_t)cur_take(&c, (uint64_t)tl);
    f->key_len = cur_i32(&c);
    if (f->key_len < -1)
        return -EBADMSG;
    f->key_off = (uint32_t)cur_take(&c, f->key_len > 0 ? (uint64_t)f->key_len : 0);
    f->value_len = cur_i32(&c);
    if (f->value_len < -1)
        return -EBADMSG;
    f->value_off = (uint32_t)cur_take(&c, f->value_len > 0 ? (uint64_t)f->value_len : 0);
    f->header_count = cur_i32(&c);
    int32_t hl = cur_i32(&c);
    if (f->header_count < 0 || hl < 0)
        return -EBADMSG;
    f->headers_len = (uint32_t)hl;
    f->headers_off = (uint32_t)cur_take(&c, (uint64_t)hl);
    int16_t gl = cur_i16(&c);
    if (gl < 0)
        return -EBADMSG;
    f->pg_len = (uint32_t)gl;
    f->pg_off = (uint32_t)cur_take(&c, (uint64_t)gl);
    int16_t xl = cur_i16(&c);
    if (xl < 0)
        return -EBADMSG;
    f->txn_len = (uint32_t)xl;
    f->txn_off = (uint32_t)cur_take(&c, (uint64_t)xl);
    return c.bad || c.o != total ? -EBADMSG : 0;
}

/* Checks what the caller asked to store; the entry's size in *total. */
static int entry_check_in(const struct timer_entry_in *in, uint32_t *total)
{
    if (in->kind < TIMER_DELAY || in->kind > TIMER_HALF || !in->topic || in->topic_len < 1 ||
        in->topic_len > INT16_MAX || in->key_len < -1 || in->value_len < -1 ||
        in->header_count < 0 || in->headers_len > INT32_MAX || in->producer_group_len > INT16_MAX ||
        in->txn_id_len > INT16_MAX)
        return -EINVAL;
    if ((in->key_len > 0 && !in->key) || (in->value_len > 0 && !in->value) ||
        (in->headers_len && !in->headers) || (in->producer_group_len && !in->producer_group) ||
        (in->txn_id_len && !in->txn_id))
        return -EINVAL;
    if (in->kind == TIMER_HALF && in->txn_id_len == 0)
        return -EINVAL;
    uint64_t n = (uint64_t)E_MIN_SIZE + in->topic_len + (in->key_len > 0 ? in->key_len : 0) +
                 (in->value_len > 0 ? in->value_len : 0) + in->headers_len +
                 in->producer_group_len + in->txn_id_len;
    if (n > E_MAX_SIZE)
        return -EMSGSIZE;
    *total = (uint32_t)n;
    return 0;
}

static uint8_t *put_bytes(uint8_t *w, const void *src, size_t n)
{
    if (n)
        memcpy(w, src, n);
    return w + n;
}

static void entry_encode(const struct timer_entry_in *in, uint8_t *buf, uint32_t total)
{
    put32(buf, total - 4);
    buf[E_STATE] = TIMER_PENDING;
    buf[E_CHECKS] = 0;
    put16(buf + 10, 0);
    put64(buf + E_DUE, (uint64_t)in->due_ms);
    buf[E_KIND] = (uint8_t)in->kind;
    buf[E_VERSION] = ENTRY_VERSION;
    put16(buf + E_TOPIC_LEN, (uint16_t)in->topic_len);
    put32(buf + E_PARTITION, (uint32_t)in->partition);
    put64(buf + E_CREATED, (uint64_t)in->created_ms);
    put64(buf + E_TIMESTAMP, (uint64_t)in->timestamp);
    uint8_t *w = put_bytes(buf + E_TOPIC, in->topic, in->topic_len);
    put32(w, (uint32_t)in->key_len);
    w = put_bytes(w + 4, in->key, in->key_len > 0 ? (size_t)in->key_len : 0);
    put32(w, (uint32_t)in->value_len);
    w = put_bytes(w + 4, in->value, in->value_len > 0 ? (size_t)in->value_len : 0);
    put32(w, (uint32_t)in->header_count);
    put32(w + 4, (uint32_t)in->headers_len);
    w = put_bytes(w + 8, in->headers, in->headers_len);
    put16(w, (uint16_t)in->producer_group_len);
    w = put_bytes(w + 2, in->producer_group, in->producer_group_len);
    put16(w, (uint16_t)in->txn_id_len);
    w = put_bytes(w + 2, in->txn_id, in->txn_id_len);
    put32(buf + E_CRC, crc32c(0, buf + E_IMMUTABLE, total - E_IMMUTABLE));
}

/* Copies a parsed entry into e (one allocation: the entry bytes, then
 * the NUL-terminated topic and producer group).  0 or -ENOMEM. */
static int entry_materialize(uint64_t id, const uint8_t *p, const struct timer_fields *f,
                             struct timer_entry *e)
{
    uint8_t *buf = malloc((size_t)f->total + f->topic_len + f->pg_len + 2);
    if (!buf)
        return -ENOMEM;
    memcpy(buf, p, f->total);
    char *topic = (char *)buf + f->total, *pg = topic + f->topic_len + 1;
    memcpy(topic, p + f->topic_off, f->topic_len);
    topic[f->topic_len] = 0;
    memcpy(pg, p + f->pg_off, f->pg_len);
    pg[f->pg_len] = 0;
    *e = (struct timer_entry){
        .id = id,
        .kind = f->kind,
        .state = f->state,
        .checks = f->checks,
        .due_ms = f->due_ms,
        .created_ms = f->created_ms,
        .topic = topic,
        .partition = f->partition,
        .timestamp = f->timestamp,
        .key = f->key_len >= 0 ? buf + f->key_off : NULL,
        .key_len = f->key_len,
        .value = f->value_len >= 0 ? buf + f->value_off : NULL,
        .value_len = f->value_len,
        .header_count = f->header_count,
        .headers = buf + f->headers_off,
        .headers_len = f->headers_len,
        .producer_group = pg,
        .txn_id = buf + f->txn_off,
        .txn_id_len = f->txn_len,
        .buf = buf,
    };
    return 0;
}

void timer_entry_free(struct timer_entry *e)
{
    if (!e)
        return;
    free(e->buf);
    e->buf = NULL;
}

/* ---- batched reads outside the lock ---- */

/* One entry to read: filled by the caller under mu (slot, seg with a
 * reference, limit), then by batch_read without it (p, f, err). */
struct cand {
    struct timer_slot slot; /* for mark and reschedule only slot.id counts */
    struct timer_seg *seg;  /* referenced; NULL when the id has no segment */
    int64_t limit;          /* the segment's size when referenced */
    const uint8_t *p;       /* the entry's bytes, in one of the batch's buffers */
    struct timer_fields f;
    int err; /* 0, or -EBADMSG (no valid entry there), -EIO */
};

struct batch {
    struct cand *c;
    size_t n;
    uint8_t **bufs;
    size_t nbufs, bufs_cap;
};

static int batch_keep(struct batch *b, uint8_t *buf)
{
    if (b->nbufs == b->bufs_cap) {
        size_t cap = b->bufs_cap ? b->bufs_cap * 2 : 16;
        uint8_t **a = realloc(b->bufs, cap * sizeof *a);
        if (!a) {
            free(buf);
            return -ENOMEM;
        }
        b->bufs = a;
        b->bufs_cap = cap;
    }
    b->bufs[b->nbufs++] = buf;
    return 0;
}

static void batch_release_bufs(struct batch *b)
{
    for (size_t i = 0; i < b->nbufs; i++)
        free(b->bufs[i]);
    b->nbufs = 0;
}

/* Reads bytes [pos, pos+n) of a segment into a buffer the batch keeps. */
static const uint8_t *batch_pread(struct batch *b, const struct timer_seg *s, int64_t pos, size_t n,
                                  size_t *got)
{
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf || batch_keep(b, buf) < 0)
        return NULL;
    ssize_t r = sio_pread_all(s->fd, buf, n, pos);
    if (r < 0)
        return NULL;
    *got = (size_t)r;
    return buf;
}

/* Finds and checks the entry of c, given a window of the segment's bytes
 * [wpos, wpos + wlen) that usually holds it whole. */
static void cand_load(struct batch *b, struct cand *c, const uint8_t *w, int64_t wpos, size_t wlen)
{
    int64_t pos = (int64_t)(c->slot.id - c->seg->base);
    if (pos + E_MIN_SIZE > c->limit) {
        c->err = -EBADMSG;
        return;
    }
    size_t off = w ? (size_t)(pos - wpos) : 0;
    uint8_t lb[4];
    const uint8_t *lp = w ? w + off : NULL;
    if (!w || off + 4 > wlen) {
        if (sio_pread_all(c->seg->fd, lb, 4, pos) != 4) {
            c->err = -EIO;
            return;
        }
        lp = lb;
    }
    uint64_t total = (uint64_t)get32(lp) + 4;
    if (total < E_MIN_SIZE || total > E_MAX_SIZE || pos + (int64_t)total > c->limit) {
        c->err = -EBADMSG;
        return;
    }
    const uint8_t *p = w ? w + off : NULL;
    if (!w || off + total > wlen) {
        size_t got = 0;
        p = batch_pread(b, c->seg, pos, (size_t)total, &got);
        if (!p || got != total) {
            c->err = -EIO;
            return;
        }
    }
    c->p = p;
    c->err = timer_entry_parse(p, (uint32_t)total, &c->f);
}

struct ord {
    uint64_t id;
    size_t i;
};

static int ord_cmp(const void *a, const void *b)
{
    uint64_t x = ((const struct ord *)a)->id, y = ((const struct ord *)b)->id;
    return x < y ? -1 : x > y;
}

/*
 * Reads every candidate's entry (without mu).  Candidates are visited in
 * position order and nearby ones share one pread, so a batch of entries
 * stored one after another costs a few system calls, not one each.
 */
static void batch_read(struct batch *b)
{
    size_t n = b->n;
    struct ord *ord = malloc((n ? n : 1) * sizeof *ord);
    if (!ord) {
        for (size_t i = 0; i < n; i++)
            if (b->c[i].seg)
                b->c[i].err = -ENOMEM;
        return;
    }
    for (size_t i = 0; i < n; i++)
        ord[i] = (struct ord){b->c[i].slot.id, i};
    qsort(ord, n, sizeof *ord, ord_cmp);

    for (size_t i = 0; i < n;) {
        struct cand *first = &b->c[ord[i].i];
        if (!first->seg || first->err) {
            i++;
            continue;
        }
        size_t j = i + 1;
        uint64_t last = first->slot.id;
        while (j < n) {
            const struct cand *x = &b->c[ord[j].i];
            if (x->seg != first->seg || x->err || x->slot.id - last > READ_GAP ||
                x->slot.id - first->slot.id > READ_SPAN)
                break;
            last = x->slot.id;
            j++;
        }
        int64_t wpos = (int64_t)(first->slot.id - first->seg->base);
        int64_t wend = (int64_t)(last - first->seg->base) + READ_AHEAD;
        if (wend > first->limit)
            wend = first->limit;
        size_t wlen = 0;
        const uint8_t *w =
            wend > wpos ? batch_pread(b, first->seg, wpos, (size_t)(wend - wpos), &wlen) : NULL;
        for (size_t k = i; k < j; k++)
            cand_load(b, &b->c[ord[k].i], w, wpos, w ? wlen : 0);
        i = j;
    }
    free(ord);
}

/* Under mu: the current state and due of a candidate's entry, re-read
 * because a mutable field may have been rewritten since batch_read. */
static int cand_refresh(struct cand *c)
{
    uint8_t m[E_IMMUTABLE - E_STATE];
    int64_t pos = (int64_t)(c->slot.id - c->seg->base);
    if (sio_pread_all(c->seg->fd, m, sizeof m, pos + E_STATE) != (ssize_t)sizeof m)
        return -EIO;
    if (m[0] > TIMER_DISCARDED)
        return -EBADMSG;
    c->f.state = m[0];
    c->f.checks = m[E_CHECKS - E_STATE];
    c->f.due_ms = (int64_t)get64(m + (E_DUE - E_STATE));
    return 0;
}

/* Under mu: drops the candidates' segment references. */
static void batch_unref(struct batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        if (b->c[i].seg) {
            seg_unref(b->c[i].seg);
            b->c[i].seg = NULL;
        }
    b->n = 0;
}

/* Under mu: points c at the segment holding id (with a reference). */
static void cand_bind(struct timer_store *ts, struct cand *c, uint64_t id)
{
    memset(c, 0, sizeof *c);
    c->slot.id = id;
    struct timer_seg *s = seg_find(ts->segs, ts->nsegs, id);
    if (!s) {
        c->err = -ENOENT;
        return;
    }
    s->refs++;
    c->seg = s;
    c->limit = s->size;
}

void timer_count_pending(struct timer_store *ts, const uint8_t *p, const struct timer_fields *f,
                         int64_t delta)
{
    ts->pending[f->kind] += delta;
    /* Only a new topic can fail (out of memory): its count is then just
     * missing from the per-topic view. */
    if (timer_topics_add(&ts->topics, (const char *)p + f->topic_off, f->topic_len, f->kind,
                         delta) < 0)
        rlog_warn("timer store %s: out of memory counting per topic", ts->dir);
}

/* ---- open and close ---- */

static void store_free(struct timer_store *ts)
{
    for (size_t i = 0; i < ts->nsegs; i++)
        seg_unref(ts->segs[i]);
    free(ts->segs);
    timer_heap_free(&ts->heap);
    timer_halves_free(&ts->halves);
    timer_topics_free(&ts->topics);
    if (ts->has_recovered)
        timer_intent_free(&ts->recovered);
    if (ts->intent_fd >= 0)
        close(ts->intent_fd);
    if (ts->dir_fd >= 0)
        close(ts->dir_fd);
    pthread_mutex_destroy(&ts->mu);
    pthread_mutex_destroy(&ts->sync_mu);
    free(ts->dir);
    free(ts);
}

int timer_store_open(const char *dir, const struct timer_store_config *cfg,
                     struct timer_store **out, char *err, size_t errlen)
{
    int64_t seg_bytes = cfg && cfg->segment_bytes ? cfg->segment_bytes : DEFAULT_SEGMENT_BYTES;
    if (seg_bytes < E_MIN_SIZE) {
        snprintf(err, errlen, "timer store %s: segment_bytes must be at least %d", dir, E_MIN_SIZE);
        return -1;
    }
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "timer store %s: %s", dir, strerror(errno));
        return -1;
    }
    struct timer_store *ts = calloc(1, sizeof *ts);
    if (!ts || !(ts->dir = strdup(dir))) {
        free(ts);
        snprintf(err, errlen, "timer store %s: out of memory", dir);
        return -1;
    }
    pthread_mutex_init(&ts->mu, NULL);
    pthread_mutex_init(&ts->sync_mu, NULL);
    ts->segment_bytes = seg_bytes;
    ts->intent_fd = -1;
    ts->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (ts->dir_fd < 0) {
        snprintf(err, errlen, "timer store %s: %s", dir, strerror(errno));
        store_free(ts);
        return -1;
    }
    int64_t entries, dropped;
    if (timer_recover(ts, &entries, &dropped, err, errlen) < 0 ||
        timer_intent_recover(ts, err, errlen) < 0) {
        store_free(ts);
        return -1;
    }
    rlog_info("timer store %s: %" PRId64 " entries, %zu pending, %zu segments%s", dir, entries,
              ts->heap.n, ts->nsegs, dropped ? ", some corrupt entries dropped" : "");
    *out = ts;
    return 0;
}

void timer_store_close(struct timer_store *ts)
{
    if (!ts)
        return;
    if (!ts->failed && timer_store_sync(ts) < 0)
        rlog_error("timer store %s: the final sync failed", ts->dir);
    store_free(ts);
}

/* ---- append, sync ---- */

int timer_store_add(struct timer_store *ts, const struct timer_entry_in *in, uint64_t *id_out)
{
    uint32_t total;
    int rc = entry_check_in(in, &total);
    if (rc < 0)
        return rc;
    uint8_t *buf = malloc(total);
    if (!buf)
        return -ENOMEM;
    entry_encode(in, buf, total);

    pthread_mutex_lock(&ts->mu);
    struct timer_half *half = NULL;
    if ((rc = ts->failed))
        goto out;
    if (in->kind == TIMER_HALF &&
        timer_halves_find(&ts->halves, in->topic, in->topic_len, in->txn_id, in->txn_id_len)) {
        rc = -EEXIST;
        goto out;
    }
    struct timer_seg *s = active_seg(ts);
    if (s->size > 0 && s->size + (int64_t)total > ts->segment_bytes) {
        if ((rc = seg_roll(ts)) < 0)
            goto out;
        s = active_seg(ts);
    }
    /* Everything that can fail for lack of memory happens before the
     * write, so memory and disk never disagree about this entry. */
    if (timer_heap_reserve(&ts->heap, 1) < 0) {
        rc = -ENOMEM;
        goto out;
    }
    uint64_t id = s->base + (uint64_t)s->size;
    if (in->kind == TIMER_HALF &&
        !(half = timer_halves_add(&ts->halves, id, in->topic, in->topic_len, in->txn_id,
                                  in->txn_id_len))) {
        rc = -ENOMEM;
        goto out;
    }
    if (sio_pwrite_all(s->fd, buf, total, s->size) < 0) {
        int e = errno;
        /* Best effort: no half entry left where recovery would see it as
         * a torn tail anyway. */
        (void)sio_ftruncate(s->fd, s->size);
        if (half)
            timer_halves_remove(&ts->halves, half);
        rc = timer_store_fail(ts, "appending an entry", e);
        goto out;
    }
    s->size += total;
    s->file_bytes += total;
    s->pending++;
    s->dirty = true;
    ts->disk_bytes += total;
    struct timer_fields f = {
        .kind = in->kind, .topic_off = E_TOPIC, .topic_len = (uint32_t)in->topic_len};
    timer_count_pending(ts, buf, &f, 1);
    (void)timer_heap_push(&ts->heap, (struct timer_slot){in->due_ms, id});
    if (id_out)
        *id_out = id;
out:
    pthread_mutex_unlock(&ts->mu);
    free(buf);
    return rc;
}

int timer_store_add_many(struct timer_store *ts, const struct timer_entry_in *in, int n,
                         uint64_t *ids)
{
    if (n <= 0)
        return 0;
    uint32_t *sizes = malloc((size_t)n * sizeof *sizes);
    size_t total = 0;
    int rc = sizes ? 0 : -ENOMEM;
    for (int i = 0; !rc && i < n; i++) {
        if (in[i].kind == TIMER_HALF)
            rc = -EINVAL; /* halves need the duplicate check of timer_store_add */
        else if ((rc = entry_check_in(&in[i], &sizes[i])) == 0)
            total += sizes[i];
    }
    uint8_t *buf = rc ? NULL : malloc(total);
    if (!rc && !buf)
        rc = -ENOMEM;
    if (rc) {
        free(sizes);
        return rc;
    }
    for (int i = 0, off = 0; i < n; off += (int)sizes[i++])
        entry_encode(&in[i], buf + off, sizes[i]);

    pthread_mutex_lock(&ts->mu);
    if ((rc = ts->failed))
        goto out;
    if (timer_heap_reserve(&ts->heap, (size_t)n) < 0) {
        rc = -ENOMEM;
        goto out;
    }
    /* Runs of entries that fit the active segment, one pwrite each. */
    size_t off = 0;
    for (int i = 0; i < n;) {
        struct timer_seg *s = active_seg(ts);
        if (s->size > 0 && s->size + (int64_t)sizes[i] > ts->segment_bytes) {
            if ((rc = seg_roll(ts)) < 0)
                goto out;
            s = active_seg(ts);
        }
        int j = i;
        size_t run = 0;
        while (j < n && (run == 0 || s->size + (int64_t)(run + sizes[j]) <= ts->segment_bytes))
            run += sizes[j++];
        if (sio_pwrite_all(s->fd, buf + off, run, s->size) < 0) {
            int e = errno;
            (void)sio_ftruncate(s->fd, s->size);
            rc = timer_store_fail(ts, "appending entries", e);
            goto out;
        }
        size_t at = 0;
        for (int k = i; k < j; k++) {
            uint64_t id = s->base + (uint64_t)s->size + at;
            struct timer_fields f = {
                .kind = in[k].kind, .topic_off = E_TOPIC, .topic_len = (uint32_t)in[k].topic_len};
            timer_count_pending(ts, buf + off + at, &f, 1);
            (void)timer_heap_push(&ts->heap, (struct timer_slot){in[k].due_ms, id});
            if (ids)
                ids[k] = id;
            at += sizes[k];
        }
        s->size += (int64_t)run;
        s->file_bytes += (int64_t)run;
        s->pending += j - i;
        s->dirty = true;
        ts->disk_bytes += (int64_t)run;
        off += run;
        i = j;
    }
out:
    pthread_mutex_unlock(&ts->mu);
    free(buf);
    free(sizes);
    return rc;
}

int timer_store_sync(struct timer_store *ts)
{
    pthread_mutex_lock(&ts->sync_mu);
    pthread_mutex_lock(&ts->mu);
    int rc = ts->failed;
    size_t n = 0;
    struct timer_seg **todo = NULL;
    bool intent = false, dir = false;
    if (!rc) {
        todo = malloc((ts->nsegs ? ts->nsegs : 1) * sizeof *todo);
        if (!todo)
            rc = -ENOMEM;
    }
    if (!rc) {
        for (size_t i = 0; i < ts->nsegs; i++)
            if (ts->segs[i]->dirty) {
                ts->segs[i]->dirty = false;
                ts->segs[i]->refs++;
                todo[n++] = ts->segs[i];
            }
        intent = ts->intent_dirty;
        dir = ts->dir_dirty;
        ts->intent_dirty = ts->dir_dirty = false;
    }
    pthread_mutex_unlock(&ts->mu);

    /* fsync rather than fdatasync: the injectable I/O layer has fsync,
     * and once a second the extra inode write does not matter. */
    const char *what = NULL;
    int e = 0;
    for (size_t i = 0; i < n && !what; i++)
        if (sio_fsync(todo[i]->fd) < 0)
            what = "syncing a segment", e = errno;
    if (!what && intent && sio_fsync(ts->intent_fd) < 0)
        what = "syncing the intent", e = errno;
    /* The directory last, so a new segment's name is durable only with
     * (or after) its contents, and an unlink after the states that
     * emptied the segment. */
    if (!what && dir && sio_fsync(ts->dir_fd) < 0)
        what = "syncing the directory", e = errno;

    pthread_mutex_lock(&ts->mu);
    for (size_t i = 0; i < n; i++)
        seg_unref(todo[i]);
    if (what)
        rc = timer_store_fail(ts, what, e);
    pthread_mutex_unlock(&ts->mu);
    pthread_mutex_unlock(&ts->sync_mu);
    free(todo);
    return rc;
}

int64_t timer_store_next_due(struct timer_store *ts)
{
    pthread_mutex_lock(&ts->mu);
    const struct timer_slot *top = timer_heap_top(&ts->heap);
    int64_t due = top ? top->due_ms : INT64_MAX;
    pthread_mutex_unlock(&ts->mu);
    return due;
}

/* ---- take, reschedule, mark ---- */

/* Under mu: pops the smallest slot and any identical copies of it (a
 * reschedule to the same due time pushes one). */
static bool pop_slot(struct timer_heap *h, struct timer_slot *s)
{
    if (!timer_heap_pop(h, s))
        return false;
    const struct timer_slot *top;
    struct timer_slot dup;
    while ((top = timer_heap_top(h)) && top->due_ms == s->due_ms && top->id == s->id)
        timer_heap_pop(h, &dup);
    return true;
}

int timer_store_take_due(struct timer_store *ts, int64_t now_ms, struct timer_entry *out, int max)
{
    if (max <= 0)
        return 0;
    struct batch b = {0};
    b.c = malloc((size_t)(max < BATCH_MAX ? max : BATCH_MAX) * sizeof *b.c);
    if (!b.c)
        return -ENOMEM;
    int n = 0, rc = 0;
    bool more = true;
    while (more && n < max && !rc) {
        size_t want = (size_t)(max - n < BATCH_MAX ? max - n : BATCH_MAX);
        pthread_mutex_lock(&ts->mu);
        uint64_t gen = ts->gen;
        const struct timer_slot *top;
        while (b.n < want && (top = timer_heap_top(&ts->heap)) && top->due_ms <= now_ms) {
            struct timer_slot s;
            pop_slot(&ts->heap, &s);
            struct timer_half *h = ts->halves.n ? timer_halves_find_id(&ts->halves, s.id) : NULL;
            if (h && h->claimed) {
                h->lost_slot = true; /* unclaim puts it back */
                continue;
            }
            if (h && h->state != TIMER_PENDING)
                continue;
            struct cand *c = &b.c[b.n];
            cand_bind(ts, c, s.id);
            c->slot = s;
            if (c->seg)
                b.n++; /* no segment: it was deleted, so nothing was pending */
        }
        more = b.n == want;
        pthread_mutex_unlock(&ts->mu);
        if (!b.n)
            break;

        batch_read(&b);

        pthread_mutex_lock(&ts->mu);
        bool moved = ts->gen != gen;
        for (size_t i = 0; i < b.n; i++) {
            struct cand *c = &b.c[i];
            if (c->err) {
                rlog_error("timer store %s: entry %" PRIu64 " cannot be read (%s); skipped until "
                           "the next restart",
                           ts->dir, c->slot.id, strerror(-c->err));
                continue;
            }
            if (moved && cand_refresh(c) < 0)
                continue;
            if (c->f.state != TIMER_PENDING || c->f.due_ms != c->slot.due_ms)
                continue; /* marked, or rescheduled (a newer slot exists) */
            if (c->f.kind == TIMER_HALF) {
                struct timer_half *h = timer_halves_find_id(&ts->halves, c->slot.id);
                if (h && h->claimed) {
                    h->lost_slot = true;
                    continue;
                }
            }
            if (rc || entry_materialize(c->slot.id, c->p, &c->f, &out[n]) < 0) {
                /* Out of memory: put it back for a later call. */
                rc = -ENOMEM;
                if (timer_heap_push(&ts->heap, c->slot) < 0)
                    rlog_error("timer store %s: entry %" PRIu64 " lost from the heap until the "
                               "next restart (out of memory)",
                               ts->dir, c->slot.id);
                continue;
            }
            n++;
        }
        batch_unref(&b);
        pthread_mutex_unlock(&ts->mu);
        batch_release_bufs(&b);
    }
    free(b.c);
    free(b.bufs);
    return n ? n : rc;
}

static int id_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int timer_store_mark(struct timer_store *ts, const uint64_t *ids, int n, enum timer_state state)
{
    if (n < 0 || (n && !ids) || (state != TIMER_DONE && state != TIMER_DISCARDED))
        return -EINVAL;
    /* Sorted and without repeats, so each entry is written once and the
     * reads run in position order. */
    uint64_t *sorted = malloc((size_t)(n ? n : 1) * sizeof *sorted);
    struct batch b = {0};
    b.c = malloc((size_t)(n < BATCH_MAX ? (n ? n : 1) : BATCH_MAX) * sizeof *b.c);
    if (!sorted || !b.c) {
        free(sorted);
        free(b.c);
        return -ENOMEM;
    }
    if (n)
        memcpy(sorted, ids, (size_t)n * sizeof *ids);
    qsort(sorted, (size_t)n, sizeof *sorted, id_cmp);

    int rc = 0, i = 0;
    uint8_t sb = (uint8_t)state;
    do {
        pthread_mutex_lock(&ts->mu);
        if ((rc = ts->failed)) {
            pthread_mutex_unlock(&ts->mu);
            break;
        }
        uint64_t gen = ts->gen;
        for (; i < n && b.n < BATCH_MAX; i++) {
            if (i > 0 && sorted[i] == sorted[i - 1])
                continue;
            cand_bind(ts, &b.c[b.n], sorted[i]);
            if (b.c[b.n].seg)
                b.n++;
        }
        pthread_mutex_unlock(&ts->mu);

        batch_read(&b);

        pthread_mutex_lock(&ts->mu);
        bool moved = ts->gen != gen, wrote = false;
        for (size_t k = 0; k < b.n && !rc; k++) {
            struct cand *c = &b.c[k];
            if (c->err) {
                rlog_warn("timer store %s: mark: no readable entry at %" PRIu64 " (%s)", ts->dir,
                          c->slot.id, strerror(-c->err));
                continue;
            }
            if (moved && cand_refresh(c) < 0)
                continue;
            if (c->f.state != TIMER_PENDING || ts->failed)
                continue;
            int64_t pos = (int64_t)(c->slot.id - c->seg->base);
            if (sio_pwrite_all(c->seg->fd, &sb, 1, pos + E_STATE) < 0) {
                rc = timer_store_fail(ts, "marking an entry", errno);
                break;
            }
            wrote = true;
            c->seg->dirty = true;
            c->seg->pending--;
            timer_count_pending(ts, c->p, &c->f, -1);
            if (c->f.kind == TIMER_HALF) {
                struct timer_half *h = timer_halves_find_id(&ts->halves, c->slot.id);
                if (h) {
                    h->state = sb;
                    h->claimed = false;
                    h->lost_slot = false;
                }
            }
            seg_maybe_drop(ts, c->seg);
        }
        if (wrote)
            ts->gen++;
        batch_unref(&b);
        if (i >= n && !rc)
            rc = timer_intent_close(ts);
        pthread_mutex_unlock(&ts->mu);
        batch_release_bufs(&b);
    } while (i < n && !rc);
    free(sorted);
    free(b.c);
    free(b.bufs);
    return rc;
}

int timer_store_reschedule(struct timer_store *ts, uint64_t id, int64_t due_ms, int checks)
{
    struct cand c;
    struct batch b = {.c = &c};
    pthread_mutex_lock(&ts->mu);
    int rc = ts->failed;
    uint64_t gen = ts->gen;
    if (!rc) {
        cand_bind(ts, &c, id);
        b.n = c.seg ? 1 : 0;
    }
    pthread_mutex_unlock(&ts->mu);
    if (rc || !b.n)
        return rc;

    batch_read(&b);

    pthread_mutex_lock(&ts->mu);
    bool ok = !c.err && (ts->gen == gen || cand_refresh(&c) == 0);
    if (c.err)
        rlog_warn("timer store %s: reschedule: no readable entry at %" PRIu64 " (%s)", ts->dir, id,
                  strerror(-c.err));
    if (ok && c.f.state == TIMER_PENDING && !(rc = ts->failed)) {
        int nc = checks < 0 ? c.f.checks : checks > 255 ? 255 : checks;
        uint8_t m[E_IMMUTABLE - E_CHECKS];
        m[0] = (uint8_t)nc;
        m[1] = m[2] = 0;
        put64(m + (E_DUE - E_CHECKS), (uint64_t)due_ms);
        if (timer_heap_reserve(&ts->heap, 1) < 0)
            rc = -ENOMEM;
        else if (sio_pwrite_all(c.seg->fd, m, sizeof m, (int64_t)(id - c.seg->base) + E_CHECKS) < 0)
            rc = timer_store_fail(ts, "rescheduling an entry", errno);
        else {
            ts->gen++;
            c.seg->dirty = true;
            (void)timer_heap_push(&ts->heap, (struct timer_slot){due_ms, id});
            if (c.f.kind == TIMER_HALF) {
                struct timer_half *h = timer_halves_find_id(&ts->halves, id);
                if (h)
                    h->lost_slot = false;
            }
        }
    }
    batch_unref(&b);
    pthread_mutex_unlock(&ts->mu);
    batch_release_bufs(&b);
    free(b.bufs);
    return rc;
}

/* ---- halves ---- */

int timer_store_claim_half(struct timer_store *ts, const char *topic, size_t topic_len,
                           const uint8_t *txn_id, size_t txn_id_len, struct timer_entry *out,
                           enum timer_state *state_out)
{
    struct cand c;
    struct batch b = {.c = &c};
    pthread_mutex_lock(&ts->mu);
    struct timer_half *h = timer_halves_find(&ts->halves, topic, topic_len, txn_id, txn_id_len);
    int rc = 0;
    if (!h)
        rc = -ENOENT;
    else if (h->state != TIMER_PENDING || h->claimed) {
        if (state_out)
            *state_out = h->state;
        rc = -EALREADY;
    } else {
        h->claimed = true;
        if (state_out)
            *state_out = TIMER_PENDING;
        if (out) {
            cand_bind(ts, &c, h->id);
            b.n = c.seg ? 1 : 0;
        }
    }
    uint64_t id = h ? h->id : 0;
    pthread_mutex_unlock(&ts->mu);
    if (rc || !out)
        return rc;

    if (b.n)
        batch_read(&b);
    if (!b.n || c.err || (rc = entry_materialize(id, c.p, &c.f, out)) < 0) {
        if (!rc) {
            rlog_error("timer store %s: half %" PRIu64 " cannot be read", ts->dir, id);
            rc = -EIO;
        }
    }
    pthread_mutex_lock(&ts->mu);
    batch_unref(&b);
    pthread_mutex_unlock(&ts->mu);
    batch_release_bufs(&b);
    free(b.bufs);
    if (rc)
        timer_store_unclaim_half(ts, id);
    else
        out->state = TIMER_PENDING; /* the index, not a read that may race a mark, decides */
    return rc;
}

int timer_store_half_state(struct timer_store *ts, const char *topic, size_t topic_len,
                           const uint8_t *txn_id, size_t txn_id_len, enum timer_state *state_out)
{
    pthread_mutex_lock(&ts->mu);
    struct timer_half *h = timer_halves_find(&ts->halves, topic, topic_len, txn_id, txn_id_len);
    if (h && state_out)
        *state_out = (enum timer_state)h->state;
    pthread_mutex_unlock(&ts->mu);
    return h ? 0 : -ENOENT;
}

void timer_store_unclaim_half(struct timer_store *ts, uint64_t id)
{
    pthread_mutex_lock(&ts->mu);
    struct timer_half *h = timer_halves_find_id(&ts->halves, id);
    if (h && h->claimed) {
        h->claimed = false;
        /* take_due dropped its slot while it was claimed: put one back,
         * at the due time on disk. */
        struct timer_seg *s = seg_find(ts->segs, ts->nsegs, id);
        uint8_t d[8];
        if (h->lost_slot && h->state == TIMER_PENDING && s &&
            sio_pread_all(s->fd, d, 8, (int64_t)(id - s->base) + E_DUE) == 8) {
            if (timer_heap_push(&ts->heap, (struct timer_slot){(int64_t)get64(d), id}) == 0)
                h->lost_slot = false;
            else
                rlog_error("timer store %s: half %" PRIu64 " lost from the heap until the next "
                           "restart (out of memory)",
                           ts->dir, id);
        }
    }
    pthread_mutex_unlock(&ts->mu);
}

/* ---- views ---- */

void timer_store_counts(struct timer_store *ts, struct timer_counts *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&ts->mu);
    for (int k = 0; k < TIMER_KIND_COUNT; k++) {
        out->pending[k] = ts->pending[k];
        out->total += ts->pending[k];
    }
    out->segments = (int64_t)ts->nsegs;
    out->disk_bytes = ts->disk_bytes;
    pthread_mutex_unlock(&ts->mu);
}

struct topic_snap {
    char **names;
    int64_t (*counts)[TIMER_KIND_COUNT];
    size_t n, cap;
    bool oom;
};

static void topic_snap_add(void *arg, const struct timer_topic *tp)
{
    struct topic_snap *s = arg;
    if (s->oom || s->n == s->cap)
        return;
    if (!(s->names[s->n] = strdup(tp->name))) {
        s->oom = true;
        return;
    }
    memcpy(s->counts[s->n], tp->pending, sizeof tp->pending);
    s->n++;
}

void timer_store_counts_by_topic(struct timer_store *ts,
                                 void (*fn)(void *arg, const char *topic, enum timer_kind kind,
                                            int64_t count),
                                 void *arg)
{
    /* A snapshot, so fn runs without the lock and may call the store. */
    struct topic_snap s = {0};
    pthread_mutex_lock(&ts->mu);
    s.cap = ts->topics.n;
    s.names = malloc((s.cap ? s.cap : 1) * sizeof *s.names);
    s.counts = malloc((s.cap ? s.cap : 1) * sizeof *s.counts);
    if (s.names && s.counts)
        timer_topics_each(&ts->topics, topic_snap_add, &s);
    pthread_mutex_unlock(&ts->mu);
    if (!s.names || !s.counts || s.oom)
        rlog_error("timer store %s: out of memory listing counts per topic", ts->dir);
    for (size_t i = 0; i < s.n; i++) {
        for (int k = TIMER_DELAY; k <= TIMER_HALF; k++)
            if (s.counts[i][k])
                fn(arg, s.names[i], (enum timer_kind)k, s.counts[i][k]);
        free(s.names[i]);
    }
    free(s.names);
    free(s.counts);
}

int timer_store_list(struct timer_store *ts, const char *topic, enum timer_kind kind, int limit,
                     void (*fn)(void *arg, const struct timer_entry *e), void *arg)
{
    if ((int)kind < 0 || kind > TIMER_HALF)
        return -EINVAL;
    if (limit <= 0)
        return 0;
    /*
     * A copy of the heap (16 bytes per pending entry) popped in order
     * outside the lock, with a reference on every segment so none is
     * unlinked while it is read.  Meant for the admin views: the copy is
     * proportional to what is pending.
     */
    struct timer_heap h = {0};
    struct timer_seg **segs = NULL;
    int64_t *sizes = NULL;
    size_t nsegs = 0;
    int rc = 0;
    pthread_mutex_lock(&ts->mu);
    h.n = h.cap = ts->heap.n;
    h.a = malloc((h.n ? h.n : 1) * sizeof *h.a);
    segs = malloc(ts->nsegs * sizeof *segs);
    sizes = malloc(ts->nsegs * sizeof *sizes);
    if (h.a && segs && sizes) {
        memcpy(h.a, ts->heap.a, h.n * sizeof *h.a);
        nsegs = ts->nsegs;
        for (size_t i = 0; i < nsegs; i++) {
            segs[i] = ts->segs[i];
            segs[i]->refs++;
            sizes[i] = segs[i]->size;
        }
    } else
        rc = -ENOMEM;
    pthread_mutex_unlock(&ts->mu);

    struct batch b = {0};
    b.c = rc ? NULL : malloc(BATCH_MAX * sizeof *b.c);
    if (!rc && !b.c)
        rc = -ENOMEM;
    size_t tl = topic ? strlen(topic) : 0;
    int listed = 0;
    while (!rc && listed < limit) {
        /* Enough candidates for what is left to list; a filter may need
         * more rounds. */
        size_t want = (size_t)(limit - listed) < BATCH_MAX ? (size_t)(limit - listed) : BATCH_MAX;
        if (topic || kind)
            want = BATCH_MAX;
        struct timer_slot s;
        while (b.n < want && pop_slot(&h, &s)) {
            struct cand *c = &b.c[b.n];
            memset(c, 0, sizeof *c);
            c->slot = s;
            size_t si = seg_index(segs, nsegs, s.id);
            if (si < nsegs && s.id - segs[si]->base < (uint64_t)sizes[si]) {
                c->seg = segs[si];
                c->limit = sizes[si];
                b.n++;
            }
        }
        if (!b.n)
            break;
        batch_read(&b);
        for (size_t i = 0; i < b.n && listed < limit; i++) {
            struct cand *c = &b.c[i];
            if (c->err || c->f.state != TIMER_PENDING || c->f.due_ms != c->slot.due_ms)
                continue;
            if ((kind && c->f.kind != kind) ||
                (topic && (c->f.topic_len != tl || memcmp(c->p + c->f.topic_off, topic, tl))))
                continue;
            struct timer_entry e;
            if (entry_materialize(c->slot.id, c->p, &c->f, &e) < 0) {
                rc = -ENOMEM;
                break;
            }
            fn(arg, &e);
            timer_entry_free(&e);
            listed++;
        }
        b.n = 0; /* the references are the snapshot's, dropped below */
        batch_release_bufs(&b);
    }
    free(b.c);
    free(b.bufs);
    free(h.a);
    pthread_mutex_lock(&ts->mu);
    for (size_t i = 0; i < nsegs; i++)
        seg_unref(segs[i]);
    pthread_mutex_unlock(&ts->mu);
    free(segs);
    free(sizes);
    return rc ? rc : listed;
}
