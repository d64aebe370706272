/*
 * plog_offsets: what a partition answers about its offsets without
 * serving records: log start and end, size, segment count, flushed
 * offset, and plog_offset_for_time (ListOffsets by timestamp, including
 * EARLIEST, LATEST and MAX_TIMESTAMP), which narrows the search with
 * the segments' largest timestamps and time indexes under mu, then
 * reads batch headers (and, for the matching batch, its records)
 * without it, like plog_read.  Writes no file.
 */
#include "storage/plog.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "storage/batch.h"
#include "storage/fileio.h"
#include "storage/index.h"
#include "storage/plog_int.h"
#include "storage/segment.h"

/* ---- offsets ---- */

int64_t plog_log_start(struct plog *l)
{
    pthread_mutex_lock(&l->mu);
    int64_t v = l->log_start;
    pthread_mutex_unlock(&l->mu);
    return v;
}

int64_t plog_log_end(struct plog *l)
{
    pthread_mutex_lock(&l->mu);
    int64_t v = l->leo;
    pthread_mutex_unlock(&l->mu);
    return v;
}

int64_t plog_size_bytes(struct plog *l)
{
    pthread_mutex_lock(&l->mu);
    int64_t v = l->size_bytes;
    pthread_mutex_unlock(&l->mu);
    return v;
}

int plog_segment_count(struct plog *l)
{
    pthread_mutex_lock(&l->mu);
    int n = l->nsegs;
    pthread_mutex_unlock(&l->mu);
    return n;
}

int64_t plog_flushed_offset(struct plog *l)
{
    pthread_mutex_lock(&l->mu);
    int64_t v = l->flushed;
    pthread_mutex_unlock(&l->mu);
    return v;
}

/* ---- offset for a timestamp ---- */

/* Reads the whole batch at pos into memory (malloc'ed). */
static uint8_t *read_batch(const struct segment *s, int64_t pos, const struct batch_hdr *h)
{
    size_t size = (size_t)batch_size(h);
    uint8_t *b = malloc(size);
    if (b && sio_pread_all(s->log_fd, b, size, pos) != (ssize_t)size) {
        free(b);
        b = NULL;
    }
    return b;
}

/*
 * In the batch at pos, the first record at or after min_offset whose
 * timestamp is >= ts (exact == ts when `exact`).  Falls back to the
 * batch's own first offset and max timestamp when the records cannot be
 * read.  Returns true when found.
 */
static bool search_batch(const struct segment *s, int64_t pos, const struct batch_hdr *h,
                         int64_t ts, bool exact, int64_t min_offset, int64_t *offset,
                         int64_t *found_ts)
{
    if (h->attributes & BATCH_ATTR_LOG_APPEND_TIME) {
        /* Every record carries the batch's append time. */
        *offset = h->base_offset > min_offset ? h->base_offset : min_offset;
        *found_ts = h->max_timestamp;
        return true;
    }
    uint8_t *b = read_batch(s, pos, h);
    struct batch_records rs;
    bool found = false;
    if (b && batch_records_begin(b, h, &rs) == PLOG_OK) {
        struct batch_record rec;
        while (batch_records_next(&rs, &rec) == 1) {
            int64_t rts = h->base_timestamp + rec.timestamp_delta;
            int64_t roff = h->base_offset + rec.offset_delta;
            if (roff >= min_offset && (exact ? rts == ts : rts >= ts)) {
                *offset = roff;
                *found_ts = rts;
                found = true;
                break;
            }
        }
        batch_records_end(&rs);
    }
    if (!b || (!found && h->max_timestamp >= ts && !exact)) {
        *offset = h->base_offset > min_offset ? h->base_offset : min_offset;
        *found_ts = h->max_timestamp;
        found = true;
    }
    free(b);
    return found;
}

int plog_offset_for_time(struct plog *l, int64_t ts, int64_t *offset, int64_t *found_ts)
{
    *offset = -1;
    *found_ts = -1;
    pthread_mutex_lock(&l->mu);
    if (ts == -1) { /* LATEST */
        *offset = l->leo;
        pthread_mutex_unlock(&l->mu);
        return PLOG_OK;
    }
    if (ts == -2) { /* EARLIEST */
        *offset = l->log_start;
        pthread_mutex_unlock(&l->mu);
        return PLOG_OK;
    }
    bool max_mode = ts == -3;
    int64_t min_offset = l->log_start;
    int i = 0;
    if (max_mode) {
        /* The (first) segment holding the largest timestamp. */
        int best = -1;
        for (int k = 0; k < l->nsegs; k++)
            if (l->segs[k]->next_offset > min_offset && l->segs[k]->max_ts >= 0 &&
                (best < 0 || l->segs[k]->max_ts > l->segs[best]->max_ts))
                best = k;
        if (best < 0) {
            pthread_mutex_unlock(&l->mu);
            return PLOG_OK;
        }
        i = best;
        ts = l->segs[best]->max_ts;
    }
    for (; i < l->nsegs; i++) {
        struct segment *s = l->segs[i];
        if (s->next_offset <= min_offset || s->max_ts < ts || s->size == 0)
            continue;
        /* Narrow down: every batch up to a time entry with a smaller
         * timestamp is too old; start from the batch indexed there. */
        int64_t from = min_offset;
        long t = index_lookup_time_before(&s->tidx, ts);
        if (t >= 0 && index_offset_at(&s->tidx, (size_t)t) > from)
            from = index_offset_at(&s->tidx, (size_t)t);
        long ix = index_lookup(&s->oidx, from);
        int64_t pos = ix >= 0 ? index_position_at(&s->oidx, (size_t)ix) : 0;
        int64_t limit = s->size;
        segment_ref(s);
        pthread_mutex_unlock(&l->mu);

        bool found = false;
        int rc = PLOG_OK;
        while (pos < limit && !found) {
            struct batch_hdr h;
            rc = segment_read_header(s, pos, limit, &h);
            if (rc != PLOG_OK)
                break;
            if (batch_last_offset(&h) >= min_offset &&
                (max_mode ? h.max_timestamp == ts : h.max_timestamp >= ts))
                found = search_batch(s, pos, &h, ts, max_mode, min_offset, offset, found_ts);
            pos += batch_size(&h);
        }
        int64_t searched_base = s->base_offset;
        segment_unref(s);
        if (found)
            return PLOG_OK;
        if (rc == PLOG_ERR_IO)
            return PLOG_ERR_IO;
        if (max_mode)
            return PLOG_OK;
        pthread_mutex_lock(&l->mu);
        /* The list may have changed while unlocked: continue after the
         * segment just searched. */
        i = plog_find_segment(l, searched_base);
        if (l->segs[i]->base_offset > searched_base)
            i--;
    }
    pthread_mutex_unlock(&l->mu);
    return PLOG_OK;
}
