/*
 * plog: one partition's log, a directory of segments (segment.c) plus
 * checkpoint files (formats: the table at the top of checkpoint.c).
 *
 * The code is split by concern; the files share the struct and a few
 * helpers through plog_int.h:
 *
 *   plog.c            this file: the configuration, the segment list
 *                     helpers, appends (leader and follower) and the rolls
 *                     they make, reads, flush and the recovery point
 *   plog_open.c       open and recovery of the directory, close, destroy
 *   plog_epochs.c     the leader epoch history, plog_begin_epoch, the end
 *                     offset of an epoch
 *   plog_retention.c  retention (housekeeping) and DeleteRecords
 *   plog_truncate.c   follower truncation and full restarts, crash-safe
 *                     through the `truncation` redo record
 *   plog_hw.c         the high watermark checkpoint
 *   plog_offsets.c    offsets and sizes, the offset for a timestamp
 *   cleaner.c         compaction (plog_clean)
 *
 *   file                                   written by
 *   <20-digit base>.log/.index/.timeindex  segment.c, index.c
 *   leader-epoch-checkpoint                appends starting an epoch (here),
 *                                          plog_begin_epoch (plog_epochs.c),
 *                                          plog_open (rebuilt), truncation
 *   log-start-offset                       plog_delete_records
 *                                          (plog_retention.c), truncation
 *                                          below the log start or full
 *   recovery-point                         plog_flush (here, after a segment
 *                                          rolled), truncation
 *   cleaner-checkpoint                     plog_clean (cleaner.c), truncation
 *   high-watermark                         plog_checkpoint_hw (plog_hw.c)
 *   truncation                             truncation, while it runs (the
 *                                          redo record: plog_truncate.c)
 *
 * In-memory invariants, under l->mu:
 *   - segs[] is sorted by base offset, never empty; segs[nsegs-1] is the
 *     active segment, the others are sealed;
 *   - segs[i]->next_offset <= segs[i+1]->base_offset (a compacted
 *     segment may hold no batch up to its next_offset: offsets in a gap
 *     read as the next batch there is);
 *   - log_start <= leo == active->next_offset;
 *   - flushed <= leo; recovery_point <= active->base_offset.
 *
 * Locks: `mu` guards everything in memory and is held across the write
 * into the page cache.  `flush_mu` is taken first (never while holding mu)
 * by whoever fsyncs or writes the log-start / recovery-point checkpoints,
 * so those files have one writer at a time and fsync never holds mu.
 * The leader epoch checkpoint is written under mu (it changes rarely).
 * Truncation also takes `swap_mu` (before flush_mu) so that it never
 * runs while the cleaner swaps files; retention skips segments the
 * cleaner has pinned (segment->cleaning).
 */
#include "storage/plog.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/rlog.h"
#include "storage/batch.h"
#include "storage/checkpoint.h"
#include "storage/fileio.h"
#include "storage/plog_int.h"
#include "storage/segment.h"

void plog_config_defaults(struct plog_config *c)
{
    c->segment_bytes = 1024 * 1024 * 1024;
    c->segment_ms = 7LL * 24 * 3600 * 1000;
    c->retention_ms = 7LL * 24 * 3600 * 1000;
    c->retention_bytes = -1;
    c->flush_messages = -1;
    c->flush_ms = -1;
    c->index_interval_bytes = 4096;
    c->segment_index_bytes = 10 * 1024 * 1024;
    c->log_append_time = false;
    c->max_message_bytes = 1048588; /* Kafka's message.max.bytes default */
    c->compact = false;
    c->delete_retention_ms = 24LL * 3600 * 1000;
    c->min_compaction_lag_ms = 0;
    c->min_cleanable_dirty_ratio = 0.5;
}

void plog_set_config(struct plog *l, const struct plog_config *cfg)
{
    pthread_mutex_lock(&l->mu);
    l->cfg = *cfg;
    segment_set_max_index_bytes(plog_active(l), (size_t)cfg->segment_index_bytes);
    pthread_mutex_unlock(&l->mu);
}

/* ---- helpers the plog files share (plog_int.h) ---- */

int64_t plog_roll_bytes(const struct plog_config *c)
{
    /* Index positions are int32, so no segment may pass 2 GiB. */
    return c->segment_bytes > 0 && c->segment_bytes < INT32_MAX ? c->segment_bytes : INT32_MAX;
}

void plog_set_read_only(struct plog *l, const char *what)
{
    if (!l->read_only)
        rlog_error("partition %s: %s failed (%s); the partition is now read-only", l->dir, what,
                   strerror(errno));
    l->read_only = true;
}

int plog_push_segment(struct plog *l, struct segment *s)
{
    if (l->nsegs == l->cap_segs) {
        int ncap = l->cap_segs ? l->cap_segs * 2 : 8;
        struct segment **n = realloc(l->segs, (size_t)ncap * sizeof *n);
        if (!n)
            return -1;
        l->segs = n;
        l->cap_segs = ncap;
    }
    l->segs[l->nsegs++] = s;
    return 0;
}

/* Removes segs[i] from the list, deletes its files and drops the list's
 * reference (a fetch range may still hold it open). */
void plog_drop_segment(struct plog *l, int i)
{
    struct segment *s = l->segs[i];
    memmove(&l->segs[i], &l->segs[i + 1], (size_t)(l->nsegs - i - 1) * sizeof *l->segs);
    l->nsegs--;
    l->size_bytes -= s->size;
    if (segment_delete_files(s) < 0)
        rlog_warn("partition %s: deleting segment %s: %s", l->dir, s->path, strerror(errno));
    segment_unref(s);
}

int64_t plog_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- append ---- */

/* Seals the active segment and starts one named `base`: the log end
 * for leader appends, the first incoming offset for a follower's (after
 * a gap in the leader's log the two differ). */
int plog_roll(struct plog *l, int64_t base, int64_t now_ms)
{
    struct segment *a = plog_active(l), *s;
    if (segment_seal(a) != PLOG_OK) {
        plog_set_read_only(l, "sealing a segment");
        return PLOG_ERR_IO;
    }
    if (segment_create(l->dir, base, (size_t)l->cfg.segment_index_bytes, now_ms, &s) < 0) {
        plog_set_read_only(l, "creating a segment");
        return PLOG_ERR_IO;
    }
    if (plog_push_segment(l, s) < 0) {
        segment_delete_files(s);
        segment_unref(s);
        errno = ENOMEM;
        plog_set_read_only(l, "rolling");
        return PLOG_ERR_IO;
    }
    l->dir_dirty = true;
    return PLOG_OK;
}

/* Whether `len` bytes of batches ending at last_offset need a new
 * segment.  Relative offsets are int32, so even an empty segment rolls
 * when they would not fit (only a follower's batch after a gap of 2^31
 * offsets can do that; the empty segment stays, sealed, as in Kafka). */
static bool should_roll(struct plog *l, size_t len, int64_t last_offset, int64_t now_ms)
{
    struct segment *a = plog_active(l);
    if (last_offset - a->base_offset > INT32_MAX)
        return true;
    if (a->size == 0)
        return false;
    return a->size + (int64_t)len > plog_roll_bytes(&l->cfg) || index_full(&a->oidx) ||
           a->tidx.n + 1 >= a->tidx.max_entries ||
           (l->cfg.segment_ms >= 0 && now_ms - a->roll_base_ms >= l->cfg.segment_ms);
}

/*
 * The write shared by leader and follower appends, under mu: rolls when
 * needed, writes `len` bytes of validated batches whose offsets are
 * final (first_offset..last_offset) with one pwrite, indexes them and
 * counts them.  On a failed write the partition is read-only; when only
 * an index write failed the batches are in the log and readable, so the
 * log end follows the file, but the failure is still returned.
 */
static int write_batches(struct plog *l, const uint8_t *batches, size_t len, int64_t first_offset,
                         int64_t last_offset, int64_t records, int64_t now_ms)
{
    int rc;
    if (should_roll(l, len, last_offset, now_ms) &&
        (rc = plog_roll(l, first_offset, now_ms)) != PLOG_OK)
        return rc;
    struct segment *a = plog_active(l);
    rc = segment_append(a, batches, len, l->cfg.index_interval_bytes, now_ms);
    if (rc != PLOG_OK) {
        plog_set_read_only(l, "writing to the log");
        if (a->next_offset != last_offset + 1)
            return rc;
    }
    l->leo = last_offset + 1;
    l->size_bytes += (int64_t)len;
    l->unflushed_records += records;
    if (l->oldest_unflushed_ms < 0)
        l->oldest_unflushed_ms = now_ms;
    return rc;
}

int plog_append(struct plog *l, uint8_t *batches, size_t len, int32_t leader_epoch, int64_t now_ms,
                struct plog_append_result *res)
{
    memset(res, 0, sizeof *res);
    res->base_offset = res->last_offset = res->log_append_time = -1;

    pthread_mutex_lock(&l->mu);
    int64_t max_bytes = l->cfg.max_message_bytes;
    int64_t seg_bytes = plog_roll_bytes(&l->cfg);
    bool append_time = l->cfg.log_append_time;
    bool compact = l->cfg.compact;
    pthread_mutex_unlock(&l->mu);

    /* Validate everything before anything is written (no mutex needed:
     * the buffer is the caller's). */
    size_t nb = len / BATCH_HEADER_SIZE + 1;
    int64_t *max_ts = malloc(nb * sizeof *max_ts);
    if (!max_ts)
        return PLOG_ERR_IO;
    size_t off = 0, count = 0;
    int64_t records = 0;
    int rc = PLOG_OK;
    if ((int64_t)len > seg_bytes)
        rc = PLOG_ERR_TOO_LARGE;
    while (rc == PLOG_OK && off < len) {
        struct batch_hdr h;
        rc = batch_parse_header(batches + off, len - off, (int64_t)(len - off) - BATCH_LOG_OVERHEAD,
                                &h);
        if (rc != PLOG_OK)
            break;
        if (batch_size(&h) > max_bytes) {
            rc = PLOG_ERR_TOO_LARGE;
            break;
        }
        /* The delete horizon is the cleaner's own mark (cleaner.c): a
         * producer's would let tombstones go before their time. */
        if (h.attributes & BATCH_ATTR_DELETE_HORIZON) {
            rc = PLOG_ERR_INVALID;
            break;
        }
        struct batch_info info;
        rc = batch_validate(batches + off, (size_t)batch_size(&h), true, &info);
        if (rc != PLOG_OK)
            break;
        /* Kafka: "Compacted topic cannot accept message without key". */
        if (compact && info.null_keys > 0) {
            rc = PLOG_ERR_INVALID;
            break;
        }
        max_ts[count++] = info.max_record_timestamp;
        records += info.records;
        off += (size_t)batch_size(&h);
    }
    if (rc != PLOG_OK || count == 0) {
        free(max_ts);
        return rc;
    }

    pthread_mutex_lock(&l->mu);
    if (l->read_only) {
        rc = PLOG_ERR_IO;
        goto out;
    }
    bool added;
    if (plog_epochs_assign(l, leader_epoch, l->leo, &added) < 0 ||
        (added && ckpt_write_epochs(l->dir_fd, l->epochs, l->nepochs) < 0)) {
        plog_set_read_only(l, "writing the leader epoch checkpoint");
        rc = PLOG_ERR_IO;
        goto out;
    }

    /* Assign offsets (outside the CRC) and fix timestamps (inside it). */
    int64_t next = l->leo;
    off = 0;
    for (size_t i = 0; i < count; i++) {
        uint8_t *b = batches + off;
        size_t size = BATCH_LOG_OVERHEAD + (size_t)batch_be32(b + 8);
        batch_put_be64(b, next);
        batch_put_be32(b + 12, leader_epoch);
        int16_t attrs = batch_be16(b + BATCH_ATTR_OFFSET);
        if (append_time) {
            batch_put_be16(b + BATCH_ATTR_OFFSET, (int16_t)(attrs | BATCH_ATTR_LOG_APPEND_TIME));
            batch_put_be64(b + BATCH_MAX_TS_OFFSET, now_ms);
            batch_update_crc(b, size);
        } else if (batch_be64(b + BATCH_MAX_TS_OFFSET) != max_ts[i] || (attrs & 8)) {
            /* The batch's maxTimestamp is what the time index and
             * retention trust, so make it the records' real maximum. */
            batch_put_be16(b + BATCH_ATTR_OFFSET, (int16_t)(attrs & ~BATCH_ATTR_LOG_APPEND_TIME));
            batch_put_be64(b + BATCH_MAX_TS_OFFSET, max_ts[i]);
            batch_update_crc(b, size);
        }
        next += batch_be32(b + 23) + 1;
        off += size;
    }
    int64_t base = l->leo;
    rc = write_batches(l, batches, len, base, next - 1, records, now_ms);
    if (l->leo == next) {
        res->base_offset = base;
        res->last_offset = next - 1;
        res->log_append_time = append_time ? now_ms : -1;
        res->record_count = (int32_t)records;
    }
out:
    res->log_start_offset = l->log_start;
    pthread_mutex_unlock(&l->mu);
    free(max_ts);
    return rc;
}

/* One batch of a follower append, as validated. */
struct fbatch {
    size_t pos, size;
    int64_t base, last;
    int32_t epoch, records;
};

int plog_append_follower(struct plog *l, const uint8_t *batches, size_t len,
                         struct plog_append_result *res)
{
    memset(res, 0, sizeof *res);
    res->base_offset = res->last_offset = res->log_append_time = -1;

    pthread_mutex_lock(&l->mu);
    int64_t seg_bytes = plog_roll_bytes(&l->cfg);
    pthread_mutex_unlock(&l->mu);

    /* Everything is checked before anything is written, without the
     * mutex (the buffer is the caller's).  Records are not decompressed:
     * the leader validated them, the CRC says they arrived intact. */
    struct fbatch *fb = malloc((len / BATCH_HEADER_SIZE + 1) * sizeof *fb);
    if (!fb)
        return PLOG_ERR_IO;
    size_t off = 0, count = 0;
    int rc = PLOG_OK;
    while (off < len) {
        struct batch_hdr h;
        rc = batch_parse_header(batches + off, len - off, (int64_t)(len - off) - BATCH_LOG_OVERHEAD,
                                &h);
        if (rc != PLOG_OK)
            break;
        if (batch_size(&h) > seg_bytes) {
            rc = PLOG_ERR_TOO_LARGE;
            break;
        }
        rc = batch_validate_header(batches + off, (size_t)batch_size(&h), false, &h);
        if (rc != PLOG_OK)
            break;
        /* Offsets increase from batch to batch, and stay int64. */
        if (h.base_offset < 0 || h.base_offset > INT64_MAX - 1 - h.last_offset_delta ||
            (count > 0 && h.base_offset <= fb[count - 1].last)) {
            rc = PLOG_ERR_INVALID;
            break;
        }
        struct fbatch *f = &fb[count];
        f->pos = off;
        f->size = (size_t)batch_size(&h);
        f->base = h.base_offset;
        f->last = batch_last_offset(&h);
        f->epoch = h.partition_leader_epoch;
        f->records = h.records_count;
        count++;
        off += (size_t)batch_size(&h);
    }
    if (rc != PLOG_OK || count == 0) {
        free(fb);
        return rc;
    }

    int64_t now_ms = plog_wall_ms(), records = 0;
    pthread_mutex_lock(&l->mu);
    if (l->read_only) {
        rc = PLOG_ERR_IO;
        goto out;
    }
    if (fb[0].base < l->leo) {
        rc = PLOG_ERR_OFFSET;
        goto out;
    }
    /* The epochs the batches start, made durable before the data: once
     * a fetcher reports the offsets, OffsetForLeaderEpoch answers from
     * them. */
    bool changed = false;
    for (size_t i = 0; i < count; i++) {
        bool added;
        if (plog_epochs_assign(l, fb[i].epoch, fb[i].base, &added) < 0) {
            errno = ENOMEM;
            rc = PLOG_ERR_IO;
            break;
        }
        changed |= added;
    }
    if (rc != PLOG_OK || (changed && ckpt_write_epochs(l->dir_fd, l->epochs, l->nepochs) < 0)) {
        plog_set_read_only(l, "writing the leader epoch checkpoint");
        rc = PLOG_ERR_IO;
        goto out;
    }
    /* Runs of batches that fit the active segment, one write each; the
     * segment rolls between runs as it would between leader appends. */
    for (size_t i = 0; i < count;) {
        if (should_roll(l, fb[i].size, fb[i].last, now_ms) &&
            (rc = plog_roll(l, fb[i].base, now_ms)) != PLOG_OK)
            goto out;
        struct segment *a = plog_active(l);
        size_t j = i + 1, run = fb[i].size;
        int64_t run_records = fb[i].records;
        while (j < count && a->size + (int64_t)(run + fb[j].size) <= seg_bytes &&
               fb[j].last - a->base_offset <= INT32_MAX) {
            run += fb[j].size;
            run_records += fb[j].records;
            j++;
        }
        rc = write_batches(l, batches + fb[i].pos, run, fb[i].base, fb[j - 1].last, run_records,
                           now_ms);
        if (l->leo != fb[j - 1].last + 1)
            goto out;
        records += run_records;
        res->last_offset = fb[j - 1].last;
        if (rc != PLOG_OK)
            goto out;
        i = j;
    }
out:
    if (res->last_offset >= 0) {
        res->base_offset = fb[0].base;
        res->record_count = (int32_t)records;
    }
    res->log_start_offset = l->log_start;
    pthread_mutex_unlock(&l->mu);
    free(fb);
    return rc;
}

/* ---- read ---- */

void plog_range_release(void *ref)
{
    if (ref)
        segment_unref(ref);
}

/* Index of the last segment whose base offset <= offset (or 0). */
int plog_find_segment(struct plog *l, int64_t offset)
{
    int lo = 0, hi = l->nsegs - 1, found = 0;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if (l->segs[mid]->base_offset <= offset) {
            found = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return found;
}

static int read_empty(struct plog_range *out)
{
    out->fd = -1;
    out->file_pos = 0;
    out->len = 0;
    out->ref = NULL;
    return PLOG_OK;
}

int plog_read(struct plog *l, int64_t offset, int32_t max_bytes, int64_t max_offset,
              struct plog_range *out)
{
    read_empty(out);
    pthread_mutex_lock(&l->mu);
    if (offset < l->log_start || offset > l->leo) {
        pthread_mutex_unlock(&l->mu);
        return PLOG_ERR_OUT_OF_RANGE;
    }
    struct segment *s;
    int64_t pos, limit;
    struct batch_hdr h;
    int rc = PLOG_OK;
    for (;;) { /* mu held here */
        if (offset >= l->leo || offset >= max_offset) {
            pthread_mutex_unlock(&l->mu);
            return PLOG_OK;
        }
        int i = plog_find_segment(l, offset);
        while (i < l->nsegs && offset >= l->segs[i]->next_offset)
            i++;
        if (i == l->nsegs) {
            pthread_mutex_unlock(&l->mu);
            return PLOG_OK;
        }
        s = l->segs[i];
        long ix = index_lookup(&s->oidx, offset);
        pos = ix >= 0 ? index_position_at(&s->oidx, (size_t)ix) : 0;
        limit = s->size; /* never past what is wholly written */
        int64_t seg_end = s->next_offset;
        segment_ref(s);
        pthread_mutex_unlock(&l->mu);

        /* File reads without the mutex: bytes below `limit` do not change. */
        bool found = false;
        while (pos < limit) {
            rc = segment_read_header(s, pos, limit, &h);
            if (rc != PLOG_OK)
                goto fail;
            if (batch_last_offset(&h) >= offset) {
                found = true;
                break;
            }
            pos += batch_size(&h);
        }
        if (found)
            break;
        segment_unref(s);
        /* Nothing at or after `offset` here: compaction removed the end
         * of this segment (cleaner.c), so the answer is the first batch
         * of a later one.  Each round moves offset forward. */
        if (seg_end <= offset)
            return PLOG_OK; /* cannot be (offset < next_offset); keeps it finite */
        offset = seg_end;
        pthread_mutex_lock(&l->mu);
    }
    int64_t start = pos, total = 0;
    for (;;) {
        if (batch_last_offset(&h) >= max_offset)
            break;
        if (total > 0 && total + batch_size(&h) > max_bytes)
            break;
        total += batch_size(&h);
        pos += batch_size(&h);
        if (pos >= limit)
            break;
        rc = segment_read_header(s, pos, limit, &h);
        if (rc != PLOG_OK) {
            if (total > 0)
                break; /* serve what is good; the next read reports it */
            goto fail;
        }
    }
    if (total == 0) {
        segment_unref(s);
        return PLOG_OK;
    }
    out->fd = s->log_fd;
    out->file_pos = start;
    out->len = (int32_t)total;
    out->ref = s;
    return PLOG_OK;
fail:
    if (rc == PLOG_ERR_CORRUPT)
        rlog_error("partition %s: segment %s: bad batch header at position %lld", l->dir, s->path,
                   (long long)pos);
    segment_unref(s);
    return rc;
}

/* ---- flush ---- */

int64_t plog_flush(struct plog *l)
{
    pthread_mutex_lock(&l->flush_mu);
    pthread_mutex_lock(&l->mu);
    if (l->read_only) {
        pthread_mutex_unlock(&l->mu);
        pthread_mutex_unlock(&l->flush_mu);
        return PLOG_ERR_IO;
    }
    /* Capture what to sync; appends may continue meanwhile. */
    int n = 0;
    struct segment **todo = malloc((size_t)l->nsegs * sizeof *todo);
    bool *sealed = malloc((size_t)l->nsegs * sizeof *sealed);
    if (!todo || !sealed) {
        free(todo);
        free(sealed);
        pthread_mutex_unlock(&l->mu);
        pthread_mutex_unlock(&l->flush_mu);
        return l->flushed;
    }
    for (int i = 0; i < l->nsegs; i++) {
        struct segment *s = l->segs[i];
        if (!s->needs_sync)
            continue;
        s->needs_sync = false;
        sealed[n] = s->sealed;
        segment_ref(s);
        todo[n++] = s;
    }
    int64_t target = l->leo;
    int64_t records = l->unflushed_records;
    int64_t new_rp = plog_active(l)->base_offset;
    bool dir_dirty = l->dir_dirty;
    l->dir_dirty = false;
    pthread_mutex_unlock(&l->mu);

    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++)
        rc = segment_sync(todo[i]);
    if (rc == 0 && dir_dirty)
        rc = sio_fsync(l->dir_fd);

    pthread_mutex_lock(&l->mu);
    int64_t result;
    if (rc < 0) {
        plog_set_read_only(l, "fsync");
        result = PLOG_ERR_IO;
    } else {
        if (target > l->flushed)
            l->flushed = target;
        l->unflushed_records -= records;
        if (l->unflushed_records <= 0) {
            l->unflushed_records = 0;
            l->oldest_unflushed_ms = -1;
        }
        /* Synced sealed segments give their index memory back to the
         * page cache. */
        for (int i = 0; i < n; i++) {
            if (sealed[i] && todo[i]->sealed) {
                index_release(&todo[i]->oidx);
                index_release(&todo[i]->tidx);
            }
        }
        result = l->flushed;
    }
    bool write_rp = rc == 0 && new_rp > l->recovery_point;
    pthread_mutex_unlock(&l->mu);

    if (write_rp) {
        if (ckpt_write_offset(l->dir_fd, CKPT_RECOVERY_POINT, new_rp) < 0) {
            pthread_mutex_lock(&l->mu);
            plog_set_read_only(l, "writing the recovery point");
            pthread_mutex_unlock(&l->mu);
            result = PLOG_ERR_IO;
        } else {
            pthread_mutex_lock(&l->mu);
            /* Truncation, the only thing that lowers it, takes flush_mu,
             * so nothing changed it since it was captured. */
            l->recovery_point = new_rp;
            pthread_mutex_unlock(&l->mu);
        }
    }
    for (int i = 0; i < n; i++)
        segment_unref(todo[i]);
    free(todo);
    free(sealed);
    pthread_mutex_unlock(&l->flush_mu);
    return result;
}

bool plog_flush_due(struct plog *l, int64_t now_ms)
{
    pthread_mutex_lock(&l->mu);
    bool due = !l->read_only && l->unflushed_records > 0 &&
               ((l->cfg.flush_messages > 0 && l->unflushed_records >= l->cfg.flush_messages) ||
                (l->cfg.flush_ms >= 0 && l->oldest_unflushed_ms >= 0 &&
                 now_ms - l->oldest_unflushed_ms >= l->cfg.flush_ms));
    pthread_mutex_unlock(&l->mu);
    return due;
}
