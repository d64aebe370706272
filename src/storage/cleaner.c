/*
 * The log cleaner: compaction of one partition (cleanup.policy=compact),
 * after Kafka's LogCleaner.  Entry points: plog_clean and
 * plog_dirty_ratio (plog.h); recovery of an interrupted clean when a
 * partition is opened, and the cleaner checkpoint (cleaner.h).
 *
 * WHAT IS CLEANED.  The cleanable range is the sealed segments from the
 * first one holding offsets at or above the log start up to, not
 * including, the first that is the active segment, is not fsynced yet
 * (plog_clean flushes first, so only a failed flush stops there: a
 * record that may vanish in a crash must not justify dropping older
 * ones), or holds a record younger than min_compaction_lag_ms (segment
 * granularity, as Kafka: that segment and all later ones stay as they
 * are).  The range has two parts:
 *   clean part  the segments wholly below clean_offset, compacted by an
 *               earlier clean that completed;
 *   dirty part  the rest, written since.
 * dirty ratio = dirty bytes / (clean + dirty bytes).
 *
 * ALGORITHM.
 *  1. Under the mutex: choose the range, pin its segments (retention
 *     leaves pinned segments alone) and take references.  All the rest
 *     runs without the mutex: sealed segments never change, except by
 *     truncation, which bumps trunc_gen so that the swap gives up.
 *  2. Key map: key -> offset of the key's last record, over the dirty
 *     part only (exact keys in a SipHash table).  The map has a memory
 *     budget; when it is full, the range ends before the segment being
 *     read (the first dirty segment is always taken whole, so every clean
 *     makes progress).  Entries from the segment where it filled up are
 *     harmless: they name records that stay in the log.
 *  3. Filter a group of adjacent segments at a time into one new
 *     segment named by the group's first base offset.  A group takes the
 *     next segment while its output so far plus that segment's size fits
 *     in segment_bytes (and offsets stay within int32 of its base), so
 *     small compacted segments merge.  A record is dropped when
 *       - the map has a later offset for its key (superseded), or
 *       - it is a tombstone (key, null value) in the clean part whose
 *         batch's delete horizon has passed.
 *     Everything else stays: records without a key (nothing supersedes
 *     them), records whose later versions lie beyond the range (in the
 *     active segment or in younger segments -- the map does not look
 *     there, which is simpler than also scanning the active segment and
 *     just as correct; a later clean drops them), and transactional and
 *     control batches, copied whole (there are no transactions yet).
 *     A batch keeping every record is copied byte for byte, one keeping
 *     none is left out, any other is rebuilt: same base offset, producer
 *     fields, leader epoch and codec (recompressed), its records keeping
 *     their offset deltas -- offsets never change, gaps appear.  The new
 *     segment's indexes are built as appends build them.  A group of one
 *     segment in which nothing changed is left alone.
 *  4. Swap (the protocol below), then advance clean_offset to the end of
 *     the range.
 *
 * TOMBSTONES.  As in Kafka 3.x, the first clean that keeps a tombstone
 * marks its batch with a delete horizon: attribute bit 6 set and the
 * batch's baseTimestamp = now + delete_retention_ms (record timestamp
 * deltas are rewritten against it, so record timestamps do not change).
 * A later clean drops the tombstone once the horizon has passed, and only
 * from the clean part: the clean that first saw it has by then durably
 * removed every earlier record of its key, so no crash can bring one
 * back.  A rebuilt batch that keeps no tombstone loses the mark.
 *
 * FILES AND THE SWAP PROTOCOL (Kafka's).  For a group whose first
 * segment has base offset B:
 *
 *   file                  meaning
 *   B.log.cleaned         output being written (an unfinished clean: the
 *   B.index.cleaned         next open deletes them, the old segments
 *   B.timeindex.cleaned     are intact)
 *   B.index.swap          finished output, renamed before the .log
 *   B.timeindex.swap
 *   B.log.swap            THE DECISION: the group's old segments go
 *
 *  a. write the .cleaned files and fsync them;
 *  b. rename .index and .timeindex, then .log, from .cleaned to .swap;
 *     fsync the directory: the decision is durable before anything old
 *     is touched;
 *  c. delete the group's old segments but the first (rename to .deleted,
 *     unlink);
 *  d. rename the .swap files to their plain names (.log last), which
 *     replaces the first old segment's files; swap the segment list
 *     under the mutex; fsync the directory; write the cleaner checkpoint.
 *
 * Recovery when the partition is opened (cleaner_recover), before the
 * segments are listed: every *.cleaned file is deleted; an .index.swap or
 * .timeindex.swap without its B.log.swap is undecided and deleted; each
 * B.log.swap is completed: it replaces every segment whose base offset is
 * in [B, last offset in B.log.swap + 1) (B alone when it is empty); those
 * are deleted and the .swap files renamed into place (an index that never
 * became .swap is deleted, and rebuilt when the segment is loaded).  For
 * that rule to name exactly the group, a group ends with the last of its
 * segments that kept anything; the segments after it kept nothing and
 * lead the next group instead (at the end of the range each is replaced
 * by an empty segment, which a later clean merges into its neighbours).
 * Every step is idempotent, so a crash during
 * recovery is recovered the same way.  Groups need not be swapped
 * atomically together: each group's drops are justified by records that
 * stay in the log whichever other groups were swapped.
 *
 * cleaner-checkpoint (text, replaced atomically: tmp, fsync, rename,
 * fsync of the directory):
 *
 *   line   content
 *   1      version, "0"
 *   2      clean offset: segments wholly below it were compacted by a
 *          clean that completed (-1: none)
 *   3      the earliest delete horizon among their tombstones (-1: none),
 *          so that a clean runs when it passes even if nothing is dirty
 *
 * Truncation lowers the clean offset (cleaner_truncating) before it cuts.
 * A missing or older file only makes the next clean do more work.
 *
 * THREADS AND LOCKS.  plog_clean holds clean_mu throughout (one clean per
 * plog); takes mu briefly to choose and pin the segments; reads and
 * writes without locks; and for the swap holds swap_mu (truncation takes
 * it too, so the two never interleave) with mu only while the segment
 * list changes.  No fsync runs under mu.  A reader holding a range of an
 * old segment keeps reading it: the file is renamed over or unlinked,
 * but its fd stays open until the last reference goes.
 */
#include "storage/cleaner.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/rlog.h"
#include "storage/batch.h"
#include "storage/fileio.h"
#include "storage/keyindex.h"
#include "storage/plog_int.h"
#include "storage/segment.h"

enum cleaner_crash_point cleaner_crash_point = CLEANER_CRASH_NONE;

#define MAP_DEFAULT_BYTES (64LL * 1024 * 1024)
#define MAP_MIN_SLOTS 1024
#define KEY_CHUNK (256 * 1024)

/* ---- key -> last offset map ---- */

static uint64_t rotl64(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = rotl64(v1, 13);                                                                       \
        v1 ^= v0;                                                                                  \
        v0 = rotl64(v0, 32);                                                                       \
        v2 += v3;                                                                                  \
        v3 = rotl64(v3, 16);                                                                       \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = rotl64(v3, 21);                                                                       \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = rotl64(v1, 17);                                                                       \
        v1 ^= v2;                                                                                  \
        v2 = rotl64(v2, 32);                                                                       \
    } while (0)

/* SipHash-2-4 under a random key per clean: keys come from producers, and
 * with a fixed hash one could make the table degenerate on purpose. */
static uint64_t siphash(const uint8_t *in, size_t len, uint64_t k0, uint64_t k1)
{
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
    size_t whole = len - len % 8;
    for (size_t i = 0; i < whole; i += 8) {
        uint64_t m = le64(in + i);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t b = (uint64_t)len << 56;
    for (size_t i = 0; i < len % 8; i++)
        b |= (uint64_t)in[whole + i] << (8 * i);
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

struct kslot {
    const uint8_t *key; /* NULL: a free slot */
    uint64_t hash;
    int64_t offset;
    uint32_t key_len;
};

/* Keys are copied into chunks freed together with the map. */
struct kchunk {
    struct kchunk *next;
    size_t used, cap;
    uint8_t data[];
};

/* Open addressing, linear probing, at most 3/4 full. */
struct kmap {
    struct kslot *slots;
    size_t cap; /* a power of two */
    size_t n;
    struct kchunk *chunks;
    size_t bytes; /* slots + chunks, what counts against the budget */
    size_t limit;
    uint64_t k0, k1;
};

static int kmap_init(struct kmap *m, size_t limit)
{
    memset(m, 0, sizeof *m);
    m->limit = limit;
    m->cap = MAP_MIN_SLOTS;
    m->slots = calloc(m->cap, sizeof *m->slots);
    if (!m->slots)
        return -1;
    m->bytes = m->cap * sizeof *m->slots;
    uint64_t k[2];
    if (getrandom(k, sizeof k, GRND_NONBLOCK) != (ssize_t)sizeof k) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        k[0] = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL ^ (uint64_t)getpid();
        k[1] = (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)m;
    }
    m->k0 = k[0];
    m->k1 = k[1];
    return 0;
}

static void kmap_free(struct kmap *m)
{
    free(m->slots);
    while (m->chunks) {
        struct kchunk *c = m->chunks;
        m->chunks = c->next;
        free(c);
    }
    memset(m, 0, sizeof *m);
}

static struct kslot *kmap_slot(const struct kmap *m, const uint8_t *key, uint32_t len, uint64_t h)
{
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        struct kslot *s = &m->slots[i];
        if (!s->key || (s->hash == h && s->key_len == len && !memcmp(s->key, key, len)))
            return s;
    }
}

static int kmap_grow(struct kmap *m)
{
    size_t ncap = m->cap * 2;
    struct kslot *ns = calloc(ncap, sizeof *ns);
    if (!ns)
        return -1;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->slots[i].key)
            continue;
        size_t j = m->slots[i].hash & (ncap - 1);
        while (ns[j].key)
            j = (j + 1) & (ncap - 1);
        ns[j] = m->slots[i];
    }
    free(m->slots);
    m->bytes += (ncap - m->cap) * sizeof *ns;
    m->slots = ns;
    m->cap = ncap;
    return 0;
}

static const uint8_t *kmap_copy_key(struct kmap *m, const uint8_t *key, uint32_t len)
{
    struct kchunk *c = m->chunks;
    if (!c || c->cap - c->used < len) {
        size_t cap = len > KEY_CHUNK ? len : KEY_CHUNK;
        c = malloc(sizeof *c + cap);
        if (!c)
            return NULL;
        c->next = m->chunks;
        c->used = 0;
        c->cap = cap;
        m->chunks = c;
        m->bytes += sizeof *c + cap;
    }
    uint8_t *p = c->data + c->used;
    if (len)
        memcpy(p, key, len);
    c->used += len;
    return p; /* never NULL, even for an empty key */
}

/* Records `offset` as the last record of `key` (offsets only grow).
 * 1 done; 0 the map is full: over its budget, unless `may_exceed`;
 * -1 out of memory. */
static int kmap_put(struct kmap *m, const uint8_t *key, uint32_t len, int64_t offset,
                    bool may_exceed)
{
    uint64_t h = siphash(key, len, m->k0, m->k1);
    struct kslot *s = kmap_slot(m, key, len, h);
    if (s->key) {
        s->offset = offset;
        return 1;
    }
    bool grow = (m->n + 1) * 4 > m->cap * 3;
    size_t extra = len + (grow ? m->cap * sizeof *m->slots : 0);
    if (!may_exceed && m->bytes + extra > m->limit)
        return 0;
    const uint8_t *copy = kmap_copy_key(m, key, len);
    if (!copy)
        return -1;
    if (grow) {
        if (kmap_grow(m) < 0)
            return -1;
        s = kmap_slot(m, key, len, h);
    }
    s->key = copy;
    s->key_len = len;
    s->hash = h;
    s->offset = offset;
    m->n++;
    return 1;
}

/* The last offset of key in the dirty part, or -1. */
static int64_t kmap_get(const struct kmap *m, const uint8_t *key, uint32_t len)
{
    const struct kslot *s = kmap_slot(m, key, len, siphash(key, len, m->k0, m->k1));
    return s->key ? s->offset : -1;
}

/* ---- one clean ---- */

struct cseg {
    struct segment *s;   /* referenced and pinned */
    int64_t size;        /* captured under mu: the bytes of a sealed segment */
    int64_t next_offset; /* one past the offsets it covers */
    bool changed;        /* filtering left out or rebuilt a batch */
    bool kept;           /* filtering kept at least one batch */
};

struct cgroup {
    int first, last;     /* job segs[first..last] become `out` */
    struct segment *out; /* one reference, until it joins the list */
    bool committed;      /* its .log.swap exists */
};

struct job {
    struct plog *l;
    struct plog_config cfg;
    int64_t now;
    uint64_t gen; /* l->trunc_gen when the segments were chosen */
    struct cseg *segs;
    int npinned;        /* segments pinned and referenced */
    int nrange;         /* the first nrange of them are cleaned */
    int nclean;         /* the first nclean of those are the clean part */
    int64_t end_offset; /* the range ends here */
    struct kmap map;
    struct cgroup *groups;
    int ngroups;
    int64_t min_horizon; /* earliest delete horizon left in the range, -1 */
    uint8_t *buf;        /* the batch being read */
    size_t buf_cap;
    struct batch_record *recs; /* the records a batch keeps */
    size_t recs_cap;
    struct segment **old; /* the replaced segments, unreferenced after the swap */
    int nold;
    struct plog_clean_stats *st;
};

struct range {
    int first, end, nclean;
    int64_t clean_bytes, dirty_bytes;
};

/* Under mu: the cleanable range l->segs[first, end) (top of file). */
static void cleanable_range(struct plog *l, int64_t now, bool durable_only, struct range *r)
{
    memset(r, 0, sizeof *r);
    int i = 0;
    while (i < l->nsegs - 1 && l->segs[i]->next_offset <= l->log_start)
        i++;
    r->first = i;
    int64_t lag = l->cfg.min_compaction_lag_ms;
    int64_t young = lag > 0 && now > INT64_MIN + lag ? now - lag : INT64_MIN;
    bool dirty = false;
    for (; i < l->nsegs - 1; i++) {
        struct segment *s = l->segs[i];
        if (durable_only && s->next_offset > l->flushed)
            break;
        if (lag > 0 && plog_segment_largest_ts(s) > young)
            break;
        if (!dirty && s->next_offset <= l->clean_offset) {
            r->nclean++;
            r->clean_bytes += s->size;
        } else {
            dirty = true;
            r->dirty_bytes += s->size;
        }
    }
    r->end = i;
}

static double ratio_of(const struct range *r)
{
    int64_t total = r->clean_bytes + r->dirty_bytes;
    return total > 0 ? (double)r->dirty_bytes / (double)total : 0.0;
}

double plog_dirty_ratio(struct plog *l, int64_t now_ms)
{
    struct range r;
    pthread_mutex_lock(&l->mu);
    bool compact = l->cfg.compact;
    if (compact)
        cleanable_range(l, now_ms, false, &r);
    pthread_mutex_unlock(&l->mu);
    return compact ? ratio_of(&r) : 0.0;
}

/* Chooses, pins and references the segments.  0 (j->npinned may be 0:
 * nothing to clean) or PLOG_ERR_IO. */
static int capture(struct job *j)
{
    struct plog *l = j->l;
    int rc = PLOG_OK;
    pthread_mutex_lock(&l->mu);
    struct range r;
    cleanable_range(l, j->now, true, &r);
    int n = r.end - r.first;
    if (n <= 0 || !l->cfg.compact || l->read_only)
        goto out;
    j->segs = calloc((size_t)n, sizeof *j->segs);
    j->old = calloc((size_t)n, sizeof *j->old);
    if (!j->segs || !j->old) {
        rc = PLOG_ERR_IO;
        goto out;
    }
    for (int k = 0; k < n; k++) {
        struct segment *s = l->segs[r.first + k];
        segment_ref(s);
        s->cleaning = true;
        j->segs[k].s = s;
        j->segs[k].size = s->size;
        j->segs[k].next_offset = s->next_offset;
    }
    j->npinned = j->nrange = n;
    j->nclean = r.nclean;
    j->end_offset = l->segs[r.end]->base_offset;
    j->cfg = l->cfg;
    j->gen = l->trunc_gen;
    j->st->dirty_ratio = ratio_of(&r);
    j->st->first_dirty_offset = r.nclean < n ? j->segs[r.nclean].s->base_offset : j->end_offset;
out:
    pthread_mutex_unlock(&l->mu);
    return rc;
}

/* Reads the batch at pos of a captured segment into j->buf and checks
 * it: framing, offsets increasing (from `next`) and within the segment,
 * CRC.  PLOG_OK, PLOG_ERR_CORRUPT or PLOG_ERR_IO. */
static int read_batch(struct job *j, const struct cseg *cs, int64_t pos, int64_t next,
                      struct batch_hdr *h)
{
    int rc = segment_read_header(cs->s, pos, cs->size, h);
    if (rc != PLOG_OK)
        return rc;
    if (h->base_offset < next || h->base_offset >= cs->next_offset ||
        batch_last_offset(h) >= cs->next_offset)
        return PLOG_ERR_CORRUPT;
    size_t size = (size_t)batch_size(h);
    if (size > j->buf_cap) {
        uint8_t *nb = realloc(j->buf, size);
        if (!nb)
            return PLOG_ERR_IO;
        j->buf = nb;
        j->buf_cap = size;
    }
    ssize_t r = sio_pread_all(cs->s->log_fd, j->buf, size, pos);
    if (r < 0)
        return PLOG_ERR_IO;
    if ((size_t)r != size || batch_compute_crc(j->buf, size) != h->crc)
        return PLOG_ERR_CORRUPT;
    return PLOG_OK;
}

static bool batch_is_kept_whole(const struct batch_hdr *h)
{
    return h->attributes & (BATCH_ATTR_TRANSACTIONAL | BATCH_ATTR_CONTROL);
}

/* Step 2 (top of file). */
static int build_map(struct job *j)
{
    for (int k = j->nclean; k < j->nrange; k++) {
        const struct cseg *cs = &j->segs[k];
        int64_t pos = 0, next = cs->s->base_offset;
        while (pos < cs->size) {
            struct batch_hdr h;
            int rc = read_batch(j, cs, pos, next, &h);
            if (rc != PLOG_OK)
                return rc;
            if (!batch_is_kept_whole(&h)) {
                struct batch_records rs;
                if (batch_records_begin(j->buf, &h, &rs) != PLOG_OK)
                    return PLOG_ERR_CORRUPT;
                struct batch_record rec;
                int r;
                while ((r = batch_records_next(&rs, &rec)) == 1) {
                    if (rec.offset_delta > h.last_offset_delta) {
                        r = PLOG_ERR_INVALID;
                        break;
                    }
                    if (!rec.key)
                        continue;
                    int p = kmap_put(&j->map, rec.key, (uint32_t)rec.key_len,
                                     h.base_offset + rec.offset_delta, k == j->nclean);
                    if (p == 0) {
                        /* Full: this segment and the later ones wait
                         * for the next clean. */
                        batch_records_end(&rs);
                        j->nrange = k;
                        j->end_offset = cs->s->base_offset;
                        return PLOG_OK;
                    }
                    if (p < 0) {
                        batch_records_end(&rs);
                        return PLOG_ERR_IO;
                    }
                }
                batch_records_end(&rs);
                if (r < 0)
                    return PLOG_ERR_CORRUPT;
            }
            next = batch_last_offset(&h) + 1;
            pos += batch_size(&h);
        }
    }
    return PLOG_OK;
}

static int64_t record_ts(const struct batch_hdr *h, const struct batch_record *r)
{
    /* Wrapping: bytes from disk may hold any timestamps. */
    return (int64_t)((uint64_t)h->base_timestamp + (uint64_t)r->timestamp_delta);
}

static void note_horizon(struct job *j, int64_t horizon)
{
    if (horizon < 0)
        horizon = 0;
    if (j->min_horizon < 0 || horizon < j->min_horizon)
        j->min_horizon = horizon;
}

/* Rebuilds the batch in j->buf with the nkept records in j->recs. */
static int rebuild(struct job *j, const struct batch_hdr *h, size_t nkept, bool marked, bool mark,
                   uint8_t **out, size_t *out_len)
{
    int64_t base_ts = h->base_timestamp;
    if (mark && !marked) {
        int64_t keep = j->cfg.delete_retention_ms > 0 ? j->cfg.delete_retention_ms : 0;
        base_ts = j->now > INT64_MAX - keep ? INT64_MAX : j->now + keep;
    } else if (!mark && marked) {
        /* The horizon goes with the last tombstone. */
        base_ts = record_ts(h, &j->recs[0]);
    }
    struct batch_builder b;
    batch_builder_init(&b, batch_codec(h), base_ts);
    b.attributes =
        (int16_t)((h->attributes & ~(BATCH_ATTR_CODEC_MASK | BATCH_ATTR_DELETE_HORIZON)) |
                  (mark ? BATCH_ATTR_DELETE_HORIZON : 0));
    b.producer_id = h->producer_id;
    b.producer_epoch = h->producer_epoch;
    b.base_sequence = h->base_sequence;
    b.partition_leader_epoch = h->partition_leader_epoch;
    b.base_offset = h->base_offset;
    for (size_t i = 0; i < nkept; i++)
        batch_builder_add_record(&b, record_ts(h, &j->recs[i]), &j->recs[i]);
    int rc = batch_builder_finish(&b, out, out_len);
    batch_builder_free(&b);
    if (rc < 0) {
        errno = ENOMEM;
        return PLOG_ERR_IO;
    }
    if (h->attributes & BATCH_ATTR_LOG_APPEND_TIME) {
        /* The batch's time is its append time, whatever its records say. */
        batch_put_be64(*out + BATCH_MAX_TS_OFFSET, h->max_timestamp);
        batch_update_crc(*out, *out_len);
    }
    if (mark)
        note_horizon(j, base_ts);
    return PLOG_OK;
}

/*
 * Step 3 for the batch in j->buf: *verbatim (keep it as it is), or a
 * rebuilt batch in *out (malloc'ed), or neither (*out_len 0: left out).
 */
static int filter_batch(struct job *j, const struct batch_hdr *h, bool clean_part, bool *verbatim,
                        uint8_t **out, size_t *out_len)
{
    *verbatim = true;
    *out = NULL;
    *out_len = 0;
    if (batch_is_kept_whole(h))
        return PLOG_OK;
    bool marked = h->attributes & BATCH_ATTR_DELETE_HORIZON;
    bool expired = marked && clean_part && h->base_timestamp <= j->now;
    struct batch_records rs;
    if (batch_records_begin(j->buf, h, &rs) != PLOG_OK)
        return PLOG_ERR_CORRUPT;
    size_t nkept = 0, total = 0, tombs = 0;
    struct batch_record rec;
    int r;
    while ((r = batch_records_next(&rs, &rec)) == 1) {
        total++;
        if (rec.offset_delta > h->last_offset_delta) {
            r = PLOG_ERR_INVALID;
            break;
        }
        j->st->records_read++;
        bool tomb = rec.key && !rec.value;
        if (rec.key) {
            int64_t latest = kmap_get(&j->map, rec.key, (uint32_t)rec.key_len);
            if (latest > h->base_offset + rec.offset_delta || (tomb && expired)) {
                j->st->records_removed++;
                j->st->tombstones_removed += tomb;
                continue;
            }
        }
        tombs += tomb;
        if (nkept == j->recs_cap) {
            size_t ncap = j->recs_cap ? j->recs_cap * 2 : 256;
            struct batch_record *nr = realloc(j->recs, ncap * sizeof *nr);
            if (!nr) {
                batch_records_end(&rs);
                return PLOG_ERR_IO;
            }
            j->recs = nr;
            j->recs_cap = ncap;
        }
        j->recs[nkept++] = rec;
    }
    if (r < 0) {
        batch_records_end(&rs);
        return PLOG_ERR_CORRUPT;
    }
    bool mark = tombs > 0;
    int rc = PLOG_OK;
    if (nkept == total && mark == marked) {
        if (mark)
            note_horizon(j, h->base_timestamp);
    } else {
        *verbatim = false;
        if (nkept > 0)
            rc = rebuild(j, h, nkept, marked, mark, out, out_len);
    }
    /* The kept records point into the iterator's buffer: end it last. */
    batch_records_end(&rs);
    return rc;
}

/* Filters segment m of the job into `out`. */
static int filter_segment(struct job *j, int m, struct segment *out)
{
    struct cseg *cs = &j->segs[m];
    bool clean_part = m < j->nclean;
    int64_t pos = 0, next = cs->s->base_offset;
    j->st->segments_read++;
    while (pos < cs->size) {
        struct batch_hdr h;
        int rc = read_batch(j, cs, pos, next, &h);
        if (rc != PLOG_OK)
            return rc;
        bool verbatim;
        uint8_t *nb;
        size_t nlen;
        rc = filter_batch(j, &h, clean_part, &verbatim, &nb, &nlen);
        if (rc != PLOG_OK)
            return rc;
        const uint8_t *w = verbatim ? j->buf : nb;
        size_t wlen = verbatim ? (size_t)batch_size(&h) : nlen;
        cs->changed |= !verbatim;
        if (wlen > 0) {
            /* Positions in the index are int32; a rebuilt batch can be a
             * little larger than the original. */
            if (out->size + (int64_t)wlen > INT32_MAX) {
                free(nb);
                errno = EFBIG;
                return PLOG_ERR_IO;
            }
            rc = segment_append(out, w, wlen, j->cfg.index_interval_bytes, j->now);
            if (rc != PLOG_OK) {
                free(nb);
                return PLOG_ERR_IO;
            }
            cs->kept = true;
        }
        free(nb);
        j->st->bytes_read += batch_size(&h);
        next = batch_last_offset(&h) + 1;
        pos += batch_size(&h);
    }
    return PLOG_OK;
}

/* Deletes what an unswapped output left and drops it. */
static void discard_output(struct segment *out)
{
    static const char *names[] = {".log.cleaned", ".index.cleaned", ".timeindex.cleaned",
                                  ".index.swap", ".timeindex.swap"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char p[4200];
        snprintf(p, sizeof p, "%s%s", out->path, names[i]);
        if (unlink(p) < 0 && errno != ENOENT)
            rlog_warn("cleaner: removing %s: %s", p, strerror(errno));
    }
    segment_unref(out);
}

static int new_output(struct job *j, int m, struct segment **out)
{
    if (segment_create_at(j->l->dir, j->segs[m].s->base_offset, ".cleaned",
                          (size_t)j->cfg.segment_index_bytes, j->now, out) < 0)
        return PLOG_ERR_IO;
    return PLOG_OK;
}

/* Completes an output that replaces segs[..last]: step a. */
static int finish_output(struct job *j, struct segment *out, int last)
{
    /* Kafka keeps the last old segment's modification time: retention of
     * a segment without timestamps goes by it. */
    struct stat st;
    if (fstat(j->segs[last].s->log_fd, &st) == 0) {
        struct timespec ts[2] = {{0, UTIME_OMIT}, st.st_mtim};
        (void)futimens(out->log_fd, ts);
    }
    if (segment_seal(out) != PLOG_OK || segment_sync(out) < 0)
        return PLOG_ERR_IO;
    out->needs_sync = false;
    /* It covers what the old segments covered; the tail may be a gap. */
    out->next_offset = j->segs[last].next_offset;
    index_release(&out->oidx);
    index_release(&out->tidx);
    j->st->segments_written++;
    j->st->bytes_written += out->size;
    return PLOG_OK;
}

static int add_group(struct job *j, int first, int last, struct segment *out)
{
    /* At most one group per segment: allocated for all of them at once. */
    if (!j->groups && !(j->groups = calloc((size_t)j->npinned, sizeof *j->groups)))
        return PLOG_ERR_IO;
    j->groups[j->ngroups].first = first;
    j->groups[j->ngroups].last = last;
    j->groups[j->ngroups].out = out;
    j->ngroups++;
    return PLOG_OK;
}

/* Whether segment m may join the group being written into `out`. */
static bool fits(const struct job *j, const struct segment *out, int m, int64_t base)
{
    return m < j->nrange && out->size + j->segs[m].size <= plog_roll_bytes(&j->cfg) &&
           j->segs[m].next_offset - 1 - base <= INT32_MAX;
}

/*
 * Step 3 over the range, a group at a time.  A group takes the next
 * segment while what it has written so far plus that segment's size fits
 * in segment_bytes (so its output does too), so small compacted segments
 * merge.  It ends with the last of its segments that kept anything, so
 * that recovery can tell its extent from the output alone; the segments
 * after that one kept nothing and lead the next group, or, at the end of
 * the range, are each replaced by an empty segment.
 */
static int clean_range(struct job *j)
{
    int filtered = -1; /* segments up to here are filtered already */
    for (int i = 0; i < j->nrange;) {
        int leader = i, m = i, kept_last = -1;
        int64_t base = j->segs[leader].s->base_offset;
        struct segment *out;
        int rc = new_output(j, leader, &out);
        if (rc != PLOG_OK)
            return rc;
        for (;; m++) {
            if (m > filtered) {
                if ((rc = filter_segment(j, m, out)) != PLOG_OK) {
                    discard_output(out);
                    return rc;
                }
                filtered = m;
            }
            if (j->segs[m].kept)
                kept_last = m;
            if (!fits(j, out, m + 1, base))
                break;
        }
        int end = kept_last > leader ? kept_last : leader;
        if (end == leader && !j->segs[leader].changed) {
            discard_output(out); /* nothing gained: that segment stays */
        } else if ((rc = finish_output(j, out, end)) != PLOG_OK ||
                   (rc = add_group(j, leader, end, out)) != PLOG_OK) {
            discard_output(out);
            return rc;
        }
        if (end < m && m + 1 < j->nrange) {
            i = end + 1; /* those that kept nothing lead the next group */
            continue;
        }
        for (int t = end + 1; t <= m; t++) {
            if (!j->segs[t].changed)
                continue; /* it was empty already */
            if ((rc = new_output(j, t, &out)) != PLOG_OK)
                return rc;
            if ((rc = finish_output(j, out, t)) != PLOG_OK ||
                (rc = add_group(j, t, t, out)) != PLOG_OK) {
                discard_output(out);
                return rc;
            }
        }
        i = m + 1;
    }
    return PLOG_OK;
}

static int write_checkpoint(int dir_fd, int64_t clean_offset, int64_t horizon)
{
    char buf[80];
    int n = snprintf(buf, sizeof buf, "0\n%" PRId64 "\n%" PRId64 "\n", clean_offset, horizon);
    return sio_write_file_atomic(dir_fd, CLEANER_CHECKPOINT, buf, (size_t)n);
}

static void set_read_only(struct plog *l, const char *what)
{
    int e = errno;
    pthread_mutex_lock(&l->mu);
    errno = e;
    plog_set_read_only(l, what);
    pthread_mutex_unlock(&l->mu);
}

/* Forgets the outputs without touching their files (a swap that must be
 * completed by the next open, or a simulated crash). */
static void drop_outputs(struct job *j)
{
    for (int g = 0; g < j->ngroups; g++) {
        if (j->groups[g].out)
            segment_unref(j->groups[g].out);
        j->groups[g].out = NULL;
    }
}

/* Step 4: the protocol at the top of the file, steps b to d. */
static int swap_in(struct job *j)
{
    struct plog *l = j->l;
    int rc = PLOG_OK;
    pthread_mutex_lock(&l->swap_mu);
    pthread_mutex_lock(&l->mu);
    bool ok = l->trunc_gen == j->gen && !l->read_only;
    pthread_mutex_unlock(&l->mu);
    if (!ok)
        goto out; /* truncated meanwhile: the outputs are discarded */
    if (cleaner_crash_point == CLEANER_CRASH_AFTER_CLEANED)
        goto crash;

    int committed = 0;
    for (int g = 0; g < j->ngroups; g++) {
        if (segment_rename_files(j->groups[g].out, ".cleaned", ".swap") < 0) {
            rlog_error("partition %s: cleaner: renaming %s.*.cleaned: %s", l->dir,
                       j->groups[g].out->path, strerror(errno));
            rc = PLOG_ERR_IO;
            break; /* the groups before it go ahead */
        }
        j->groups[g].committed = true;
        committed++;
    }
    if (committed == 0)
        goto out;
    if (sio_fsync(l->dir_fd) < 0) {
        /* Whether the decision reached the disk is unknown: touch nothing
         * old; the next open completes the swap. */
        set_read_only(l, "fsync of the directory (cleaner)");
        rc = PLOG_ERR_IO;
        goto keep_old;
    }
    if (cleaner_crash_point == CLEANER_CRASH_AFTER_SWAP)
        goto crash;
    for (int g = 0; g < j->ngroups && j->groups[g].committed; g++) {
        for (int m = j->groups[g].first + 1; m <= j->groups[g].last; m++) {
            if (segment_delete_files(j->segs[m].s) < 0) {
                set_read_only(l, "deleting a compacted segment");
                rc = PLOG_ERR_IO;
                goto keep_old;
            }
        }
    }
    if (cleaner_crash_point == CLEANER_CRASH_AFTER_DELETE)
        goto crash;
    for (int g = 0; g < j->ngroups && j->groups[g].committed; g++) {
        if (segment_rename_files(j->groups[g].out, ".swap", "") < 0) {
            /* The old files are gone: serve the new segment all the
             * same; the next open finishes the renames. */
            set_read_only(l, "renaming a compacted segment into place");
            rc = PLOG_ERR_IO;
        }
    }

    int nold = 0;
    pthread_mutex_lock(&l->mu);
    for (int g = 0; g < j->ngroups && j->groups[g].committed; g++) {
        struct cgroup *gr = &j->groups[g];
        int cnt = gr->last - gr->first + 1;
        int k = 0;
        while (k < l->nsegs && l->segs[k] != j->segs[gr->first].s)
            k++;
        /* Pinned, and truncation waits for swap_mu: still in place. */
        assert(k + cnt < l->nsegs);
        for (int t = 0; t < cnt; t++) {
            assert(l->segs[k + t] == j->segs[gr->first + t].s);
            l->size_bytes -= l->segs[k + t]->size;
            j->old[nold++] = l->segs[k + t];
        }
        l->segs[k] = gr->out;
        memmove(&l->segs[k + 1], &l->segs[k + cnt], (size_t)(l->nsegs - k - cnt) * sizeof *l->segs);
        l->nsegs -= cnt - 1;
        l->size_bytes += gr->out->size;
        gr->out = NULL; /* the list's reference now */
    }
    bool advanced = rc == PLOG_OK && committed == j->ngroups;
    if (advanced) {
        l->clean_offset = j->end_offset;
        l->clean_horizon_ms = j->min_horizon;
    }
    pthread_mutex_unlock(&l->mu);
    j->st->cleaned = true;

    if (sio_fsync(l->dir_fd) < 0) {
        set_read_only(l, "fsync of the directory (cleaner)");
        rc = PLOG_ERR_IO;
    } else if (advanced && write_checkpoint(l->dir_fd, j->end_offset, j->min_horizon) < 0) {
        /* Only costs the next clean more work. */
        rlog_warn("partition %s: writing %s: %s", l->dir, CLEANER_CHECKPOINT, strerror(errno));
    }
    pthread_mutex_unlock(&l->swap_mu);
    for (int i = 0; i < nold; i++)
        segment_unref(j->old[i]); /* the list's; readers may hold more */
    j->nold = nold;
    return rc;

keep_old:
    for (int g = 0; g < j->ngroups && j->groups[g].committed; g++) {
        segment_unref(j->groups[g].out);
        j->groups[g].out = NULL;
    }
    goto out;
crash:
    drop_outputs(j);
out:
    pthread_mutex_unlock(&l->swap_mu);
    return rc;
}

/* Unpins and drops everything the job holds; outputs still held were not
 * swapped in and are deleted. */
static void release(struct job *j)
{
    for (int g = 0; g < j->ngroups; g++)
        if (j->groups[g].out)
            discard_output(j->groups[g].out);
    if (j->npinned) {
        pthread_mutex_lock(&j->l->mu);
        for (int k = 0; k < j->npinned; k++)
            j->segs[k].s->cleaning = false;
        pthread_mutex_unlock(&j->l->mu);
    }
    for (int k = 0; k < j->npinned; k++)
        segment_unref(j->segs[k].s);
    free(j->segs);
    free(j->old);
    free(j->groups);
    free(j->buf);
    free(j->recs);
    kmap_free(&j->map);
}

static int clean_locked(struct plog *l, int64_t now_ms, bool force, int64_t map_bytes,
                        struct plog_clean_stats *st)
{
    struct range r;
    pthread_mutex_lock(&l->mu);
    if (!l->cfg.compact || l->read_only) {
        pthread_mutex_unlock(&l->mu);
        return PLOG_OK;
    }
    cleanable_range(l, now_ms, false, &r);
    st->dirty_ratio = ratio_of(&r);
    bool due = force ||
               (r.dirty_bytes > 0 && st->dirty_ratio >= l->cfg.min_cleanable_dirty_ratio) ||
               (r.nclean > 0 && l->clean_horizon_ms >= 0 && l->clean_horizon_ms <= now_ms);
    bool unsynced = l->flushed < l->segs[l->nsegs - 1]->base_offset;
    pthread_mutex_unlock(&l->mu);
    if (!due || r.end == r.first)
        return PLOG_OK;
    /* Only durable records may justify dropping older ones. */
    if (unsynced && plog_flush(l) < 0)
        return PLOG_ERR_IO;

    struct job j;
    memset(&j, 0, sizeof j);
    j.l = l;
    j.now = now_ms;
    j.st = st;
    j.min_horizon = -1;
    if (kmap_init(&j.map, (size_t)map_bytes) < 0)
        return PLOG_ERR_IO;
    int rc = capture(&j);
    if (rc == PLOG_OK && j.nrange > 0) {
        rc = build_map(&j);
        st->keys = (int64_t)j.map.n;
        st->end_offset = j.end_offset;
        if (rc == PLOG_OK)
            rc = clean_range(&j);
        if (rc != PLOG_OK) {
            int e = errno;
            pthread_mutex_lock(&l->mu);
            bool truncated = l->trunc_gen != j.gen;
            pthread_mutex_unlock(&l->mu);
            if (truncated) {
                rc = PLOG_OK; /* what it read was being cut: try another time */
            } else if (rc == PLOG_ERR_CORRUPT) {
                rlog_error("partition %s: cleaner: a batch on disk is corrupt; not cleaned",
                           l->dir);
            } else {
                rlog_error("partition %s: cleaner: %s; not cleaned", l->dir, strerror(e));
            }
        } else {
            rc = swap_in(&j);
        }
        if (rc == PLOG_OK && cleaner_crash_point == CLEANER_CRASH_NONE && st->cleaned)
            rlog_info("partition %s: compacted up to offset %lld: %d segment(s) replaced by "
                      "%d, %lld of %lld records removed",
                      l->dir, (long long)j.end_offset, j.nold, st->segments_written,
                      (long long)st->records_removed, (long long)st->records_read);
    }
    if (cleaner_crash_point != CLEANER_CRASH_NONE)
        drop_outputs(&j); /* a crash leaves every file where it is */
    release(&j);
    return rc;
}

int plog_clean(struct plog *l, int64_t now_ms, struct plog_clean_stats *st)
{
    struct plog_clean_stats none;
    if (!st) {
        memset(&none, 0, sizeof none);
        st = &none;
    }
    bool force = st->force;
    int64_t max_map = st->max_map_bytes;
    memset(st, 0, sizeof *st);
    st->force = force;
    st->max_map_bytes = max_map;
    st->first_dirty_offset = st->end_offset = -1;
    pthread_mutex_lock(&l->clean_mu);
    int rc = clean_locked(l, now_ms, force, max_map > 0 ? max_map : MAP_DEFAULT_BYTES, st);
    pthread_mutex_unlock(&l->clean_mu);
    return rc;
}

/* ---- checkpoint ---- */

void cleaner_load_checkpoint(struct plog *l)
{
    l->clean_offset = -1;
    l->clean_horizon_ms = -1;
    int fd = openat(l->dir_fd, CLEANER_CHECKPOINT, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT)
            rlog_warn("partition %s: %s: %s", l->dir, CLEANER_CHECKPOINT, strerror(errno));
        return;
    }
    char buf[128];
    ssize_t n = sio_pread_all(fd, buf, sizeof buf - 1, 0);
    close(fd);
    long long version, off, hz;
    char tail;
    if (n < 0 ||
        (buf[n] = 0, sscanf(buf, "%lld\n%lld\n%lld\n%c", &version, &off, &hz, &tail)) != 3 ||
        version != 0 || off < -1 || hz < -1) {
        rlog_warn("partition %s: unreadable %s: everything counts as dirty", l->dir,
                  CLEANER_CHECKPOINT);
        return;
    }
    /* A crash may have cut the log below it (unsynced data only, which
     * is never cleaned, but be safe). */
    l->clean_offset = off < l->leo ? off : l->leo;
    l->clean_horizon_ms = hz;
}

int cleaner_truncating(struct plog *l, int64_t offset)
{
    if (l->clean_offset <= offset)
        return 0;
    l->clean_offset = offset;
    return write_checkpoint(l->dir_fd, l->clean_offset, l->clean_horizon_ms);
}

/* ---- recovery at open ---- */

/* "<20 digits><suffix>" -> *base. */
static bool parse_name(const char *name, const char *suffix, int64_t *base)
{
    if (strlen(name) != 20 + strlen(suffix) || strcmp(name + 20, suffix) != 0)
        return false;
    int64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9' || v > (INT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (name[i] - '0');
    }
    *base = v;
    return true;
}

static bool has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && !strcmp(s + n - m, suf);
}

static int unlink_name(int dir_fd, const char *name)
{
    return unlinkat(dir_fd, name, 0) < 0 && errno != ENOENT ? -1 : 0;
}

/* One past the last offset in a .log.swap (base + 1 when it holds no
 * batch), reading batch headers up to the first that does not parse. */
static int64_t swap_end(int dir_fd, const char *name, int64_t base)
{
    int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    int64_t pos = 0, last = -1;
    uint8_t hb[BATCH_HEADER_SIZE];
    while (st.st_size - pos >= BATCH_HEADER_SIZE) {
        struct batch_hdr h;
        if (sio_pread_all(fd, hb, sizeof hb, pos) != (ssize_t)sizeof hb ||
            batch_parse_header(hb, sizeof hb, st.st_size - pos - BATCH_LOG_OVERHEAD, &h) !=
                PLOG_OK ||
            h.base_offset < base || h.base_offset > INT64_MAX - INT32_MAX || h.base_offset <= last)
            break;
        last = batch_last_offset(&h);
        pos += batch_size(&h);
    }
    close(fd);
    return last >= base ? last + 1 : base + 1;
}

struct dir_names {
    char **v;
    int n, cap;
};

static int names_add(struct dir_names *d, const char *s)
{
    if (d->n == d->cap) {
        int ncap = d->cap ? d->cap * 2 : 64;
        char **nv = realloc(d->v, (size_t)ncap * sizeof *nv);
        if (!nv)
            return -1;
        d->v = nv;
        d->cap = ncap;
    }
    if (!(d->v[d->n] = strdup(s)))
        return -1;
    d->n++;
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int cleaner_recover(int dir_fd, const char *dir)
{
    struct dir_names names = {0};
    int dfd = dup(dir_fd);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!d) {
        if (dfd >= 0)
            close(dfd);
        return -1;
    }
    rewinddir(d); /* the dup shares its offset with dir_fd */
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if ((has_suffix(de->d_name, ".cleaned") || has_suffix(de->d_name, ".swap") ||
             has_suffix(de->d_name, ".log")) &&
            names_add(&names, de->d_name) < 0)
            rc = -1;
    closedir(d);
    /* 20-digit names sort by base offset, and each group's files by
     * kind, which is all the order the steps below need. */
    if (names.n > 1)
        qsort(names.v, (size_t)names.n, sizeof *names.v, cmp_names);
    bool changed = false;
    for (int i = 0; rc == 0 && i < names.n; i++) {
        const char *nm = names.v[i];
        int64_t b, ignored;
        char p[64];
        if (has_suffix(nm, ".cleaned")) {
            /* Undecided: the old segments are intact. */
            rc = unlink_name(dir_fd, nm);
            changed = true;
        } else if (parse_name(nm, ".index.swap", &b) || parse_name(nm, ".timeindex.swap", &b)) {
            snprintf(p, sizeof p, "%020" PRId64 ".log.swap", b);
            if (faccessat(dir_fd, p, F_OK, 0) < 0) {
                rc = unlink_name(dir_fd, nm); /* undecided too */
                changed = true;
            }
        } else if (has_suffix(nm, ".swap") && !parse_name(nm, ".log.swap", &ignored)) {
            rc = unlink_name(dir_fd, nm); /* not ours to complete */
            changed = true;
        }
    }
    for (int i = 0; rc == 0 && i < names.n; i++) {
        int64_t b;
        if (!parse_name(names.v[i], ".log.swap", &b))
            continue;
        int64_t end = swap_end(dir_fd, names.v[i], b);
        if (end < 0) {
            rc = -1;
            break;
        }
        /* The segments it replaces, but its own base (renamed over). */
        for (int k = 0; rc == 0 && k < names.n; k++) {
            int64_t x;
            if (!parse_name(names.v[k], ".log", &x) || x <= b || x >= end)
                continue;
            char p[64];
            static const char *exts[] = {".log", ".index", ".timeindex", KEYINDEX_SUFFIX};
            for (size_t e = 0; rc == 0 && e < 4; e++) {
                snprintf(p, sizeof p, "%020" PRId64 "%s", x, exts[e]);
                rc = unlink_name(dir_fd, p);
            }
        }
        static const char *idx[] = {".index", ".timeindex"};
        for (size_t e = 0; rc == 0 && e < 2; e++) {
            char from[64], to[64];
            snprintf(from, sizeof from, "%020" PRId64 "%s.swap", b, idx[e]);
            snprintf(to, sizeof to, "%020" PRId64 "%s", b, idx[e]);
            if (renameat(dir_fd, from, dir_fd, to) < 0)
                /* It never became .swap: the old segment's index would be
                 * wrong for the new log; the load rebuilds a missing one. */
                rc = errno == ENOENT ? unlink_name(dir_fd, to) : -1;
        }
        char to[64];
        snprintf(to, sizeof to, "%020" PRId64 ".log", b);
        if (rc == 0 && renameat(dir_fd, names.v[i], dir_fd, to) < 0)
            rc = -1;
        if (rc == 0)
            rlog_info("partition %s: completed the interrupted compaction of segment %020" PRId64
                      " (up to offset %" PRId64 ")",
                      dir, b, end);
        changed = true;
    }
    int e = errno;
    for (int i = 0; i < names.n; i++)
        free(names.v[i]);
    free(names.v);
    if (rc == 0 && changed && sio_fsync(dir_fd) < 0)
        return -1;
    errno = e;
    return rc;
}
