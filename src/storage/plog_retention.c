/*
 * plog_retention: what removes data from the start of the log.
 * plog_housekeep (called periodically by the broker) rolls the active
 * segment once segment_ms old and deletes the oldest sealed segments
 * wholly below the log start, over retention_bytes or older than
 * retention_ms (rules in storage/README.md); plog_delete_records
 * (DeleteRecords) moves the log start forward.  Both trim the epoch
 * history from the start (plog_epochs.c).
 *
 * Files written: `log-start-offset` by plog_delete_records, under
 * flush_mu, which truncation, its other writer, holds too (format: the
 * table at the top of checkpoint.c); segment files are renamed to
 * `.deleted` and unlinked by segment.c.  Retention runs under mu and stops at a
 * segment the cleaner has pinned (segment->cleaning).
 */
#include "storage/plog.h"

#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>

#include "storage/checkpoint.h"
#include "storage/plog_int.h"
#include "storage/segment.h"

int64_t plog_segment_largest_ts(const struct segment *s)
{
    if (s->max_ts >= 0)
        return s->max_ts;
    /* No timestamps at all: fall back to the file's age, as Kafka does. */
    struct stat st;
    if (fstat(s->log_fd, &st) < 0)
        return INT64_MAX;
    return (int64_t)st.st_mtime * 1000;
}

/* ---- retention ---- */

int plog_housekeep(struct plog *l, int64_t now_ms)
{
    pthread_mutex_lock(&l->mu);
    struct segment *a = plog_active(l);
    if (!l->read_only && a->size > 0 && l->cfg.segment_ms >= 0 &&
        now_ms - a->roll_base_ms >= l->cfg.segment_ms)
        plog_roll(l, l->leo, now_ms);
    int deleted = 0;
    while (l->nsegs > 1) {
        struct segment *s = l->segs[0];
        /* The cleaner is rewriting it: its turn comes after the swap. */
        if (s->cleaning)
            break;
        bool del = s->next_offset <= l->log_start;
        /* By size, Kafka's way: only while what is left still holds at
         * least retention_bytes. */
        if (!del && l->cfg.retention_bytes >= 0)
            del = l->size_bytes - s->size >= l->cfg.retention_bytes;
        if (!del && l->cfg.retention_ms >= 0)
            del = now_ms - plog_segment_largest_ts(s) > l->cfg.retention_ms;
        if (!del)
            break;
        plog_drop_segment(l, 0);
        deleted++;
    }
    if (deleted) {
        if (l->log_start < l->segs[0]->base_offset)
            l->log_start = l->segs[0]->base_offset;
        plog_epochs_truncate_start(l, l->log_start);
    }
    pthread_mutex_unlock(&l->mu);
    return deleted;
}

/* ---- DeleteRecords ---- */

int plog_delete_records(struct plog *l, int64_t offset, int64_t *new_log_start)
{
    pthread_mutex_lock(&l->flush_mu);
    pthread_mutex_lock(&l->mu);
    if (offset == -1)
        offset = l->leo;
    if (offset < 0 || offset > l->leo) {
        *new_log_start = l->log_start;
        pthread_mutex_unlock(&l->mu);
        pthread_mutex_unlock(&l->flush_mu);
        return PLOG_ERR_OUT_OF_RANGE;
    }
    bool changed = offset > l->log_start;
    if (changed) {
        l->log_start = offset;
        plog_epochs_truncate_start(l, offset);
    }
    int64_t value = l->log_start;
    *new_log_start = value;
    bool ro = l->read_only;
    pthread_mutex_unlock(&l->mu);

    int rc = ro ? PLOG_ERR_IO : PLOG_OK;
    if (changed && !ro && ckpt_write_offset(l->dir_fd, CKPT_LOG_START, value) < 0) {
        pthread_mutex_lock(&l->mu);
        plog_set_read_only(l, "writing the log start offset");
        pthread_mutex_unlock(&l->mu);
        rc = PLOG_ERR_IO;
    }
    pthread_mutex_unlock(&l->flush_mu);
    return rc;
}
