/*
 * plog_truncate: follower truncation (plog_truncate_to, KIP-101/279)
 * and full restarts (plog_truncate_fully_and_start_at, Kafka's
 * truncateFullyAndStartAt; plog_restart_at, which plog_open also uses
 * for an empty or wholly deleted log), and the redo of a truncation
 * that a crash interrupted (plog_truncate_locked, called by plog_open).
 *
 * Crash safety.  A truncation cuts several files (later segments
 * deleted from the last, the active one cut, then the epoch, recovery
 * point and log start checkpoints), so a kill in the middle would leave
 * a log longer than asked, or none at all.  Hence a redo record: the
 * `truncation` checkpoint holds the target and is written, durably,
 * before the first cut; the cut is fsynced (segment and directory) and
 * the checkpoints written; only then is the record removed (unlink,
 * fsync of the directory).  plog_open redoes a truncation whose record
 * it finds, so a crash leaves the log as it was or as the truncation
 * makes it.  Everything runs under mu, fsyncs included, so no append
 * can land between the cut and the removal of the record (a redo would
 * cut it away); truncations are rare.
 *
 * Files written here (formats: the table at the top of checkpoint.c):
 * `truncation` (line 2 the target offset, line 3 `1` for a full
 * restart), `leader-epoch-checkpoint`, `recovery-point`,
 * `log-start-offset`, and through cleaner_truncating the
 * `cleaner-checkpoint` (cleaner.c).
 *
 * Locks: swap_mu, flush_mu, mu, in that order, for the whole
 * truncation (truncate_public); none during plog_open.
 */
#include "storage/plog.h"

#include <pthread.h>
#include <stdbool.h>

#include "storage/checkpoint.h"
#include "storage/cleaner.h"
#include "storage/fileio.h"
#include "storage/plog_int.h"
#include "storage/segment.h"

enum plog_crash_point plog_crash_point = PLOG_CRASH_NONE;

/* A test's simulated crash at `p` (plog_int.h). */
static bool crash_at(enum plog_crash_point p)
{
    return plog_crash_point == p;
}

static int write_epochs(struct plog *l)
{
    if (ckpt_write_epochs(l->dir_fd, l->epochs, l->nepochs) < 0) {
        plog_set_read_only(l, "writing the leader epoch checkpoint");
        return PLOG_ERR_IO;
    }
    return PLOG_OK;
}

/* Deletes every segment and starts an empty one at `offset`. */
int plog_restart_at(struct plog *l, int64_t offset, int64_t now_ms)
{
    while (l->nsegs > 0)
        plog_drop_segment(l, l->nsegs - 1);
    struct segment *s;
    if (segment_create(l->dir, offset, (size_t)l->cfg.segment_index_bytes, now_ms, &s) < 0)
        return -1;
    if (plog_push_segment(l, s) < 0) {
        segment_unref(s);
        return -1;
    }
    l->dir_dirty = true;
    l->size_bytes = 0;
    l->leo = offset;
    l->log_start = offset;
    return 0;
}

/*
 * Truncates to `offset` (full: empties the log and restarts it there),
 * holding swap_mu, flush_mu and mu, or alone during plog_open.  `redo`:
 * the truncation record already exists (plog_open found it).
 */
int plog_truncate_locked(struct plog *l, int64_t offset, bool full, bool redo)
{
    if (!full && offset >= l->leo) {
        /* No data goes, but an epoch starting at the log end does, as
         * Kafka's truncateTo does: a leader's plog_begin_epoch that no
         * append followed would otherwise claim the batches a follower
         * is about to fetch there. */
        if (plog_epochs_truncate_end(l, l->leo) && write_epochs(l) != PLOG_OK)
            return PLOG_ERR_IO;
        goto done;
    }
    /* A clean reading the segments now must not swap in what it made
     * of them. */
    l->trunc_gen++;
    if (!redo && ckpt_write_truncation(l->dir_fd, offset, full) < 0) {
        plog_set_read_only(l, "writing the truncation checkpoint");
        return PLOG_ERR_IO;
    }
    if (crash_at(PLOG_CRASH_TRUNC_AFTER_RECORD))
        return PLOG_ERR_IO;
    /* What gets appended after the cut was never compacted: lower the
     * clean offset durably before cutting (cleaner.c relies on it). */
    if (cleaner_truncating(l, offset) < 0) {
        plog_set_read_only(l, "writing the cleaner checkpoint");
        return PLOG_ERR_IO;
    }
    int64_t old_rp = l->recovery_point, old_start = l->log_start;
    bool old_epochs = l->nepochs > 0;
    if (full || offset <= l->segs[0]->base_offset || offset < l->log_start) {
        /* Kafka's truncateFullyAndStartAt: nothing is left, not even the
         * epoch history (clearAndFlush). */
        while (l->nsegs > 0) {
            plog_drop_segment(l, l->nsegs - 1);
            if (crash_at(PLOG_CRASH_TRUNC_AFTER_DROP))
                return PLOG_ERR_IO;
        }
        if (crash_at(PLOG_CRASH_TRUNC_AFTER_CUT))
            return PLOG_ERR_IO;
        if (plog_restart_at(l, offset, plog_wall_ms()) < 0) {
            plog_set_read_only(l, "truncating");
            return PLOG_ERR_IO;
        }
        l->nepochs = 0;
        l->flushed = offset;
        l->unflushed_records = 0;
        l->oldest_unflushed_ms = -1;
    } else {
        /* Later segments go from the last, so the log is a prefix of
         * itself at every step. */
        while (plog_active(l)->base_offset >= offset) {
            plog_drop_segment(l, l->nsegs - 1);
            if (crash_at(PLOG_CRASH_TRUNC_AFTER_DROP))
                return PLOG_ERR_IO;
        }
        struct segment *a = plog_active(l);
        int64_t before = a->size;
        if (segment_unseal(a) != PLOG_OK ||
            segment_truncate(a, offset, l->cfg.index_interval_bytes) != PLOG_OK) {
            plog_set_read_only(l, "truncating");
            return PLOG_ERR_IO;
        }
        l->size_bytes -= before - a->size;
        l->leo = a->next_offset;
        /* The batch holding `offset` may have begun below the log start
         * (DeleteRecords into its middle): nothing is left above it. */
        if (l->log_start > l->leo)
            l->log_start = l->leo;
        if (crash_at(PLOG_CRASH_TRUNC_AFTER_CUT))
            return PLOG_ERR_IO;
    }
    if (l->flushed > l->leo)
        l->flushed = l->leo;
    if (l->recovery_point > plog_active(l)->base_offset)
        l->recovery_point = plog_active(l)->base_offset;
    plog_active(l)->needs_sync = true;
    /* The cut is durable before the checkpoints describe it. */
    if (segment_sync(plog_active(l)) < 0 || sio_fsync(l->dir_fd) < 0) {
        plog_set_read_only(l, "fsync after truncating");
        return PLOG_ERR_IO;
    }
    l->dir_dirty = false;
    bool epochs_changed = plog_epochs_truncate_end(l, l->leo) || (old_epochs && l->nepochs == 0);
    if (epochs_changed && write_epochs(l) != PLOG_OK)
        return PLOG_ERR_IO;
    if (l->recovery_point != old_rp &&
        ckpt_write_offset(l->dir_fd, CKPT_RECOVERY_POINT, l->recovery_point) < 0) {
        plog_set_read_only(l, "writing the recovery point");
        return PLOG_ERR_IO;
    }
    if (l->log_start != old_start &&
        ckpt_write_offset(l->dir_fd, CKPT_LOG_START, l->log_start) < 0) {
        plog_set_read_only(l, "writing the log start offset");
        return PLOG_ERR_IO;
    }
    if (crash_at(PLOG_CRASH_TRUNC_BEFORE_DONE))
        return PLOG_ERR_IO;
    redo = true;
done:
    if (redo && ckpt_remove(l->dir_fd, CKPT_TRUNCATION) < 0) {
        plog_set_read_only(l, "removing the truncation checkpoint");
        return PLOG_ERR_IO;
    }
    return PLOG_OK;
}

static int truncate_public(struct plog *l, int64_t offset, bool full)
{
    if (offset < 0)
        return PLOG_ERR_OUT_OF_RANGE;
    pthread_mutex_lock(&l->swap_mu);
    pthread_mutex_lock(&l->flush_mu);
    pthread_mutex_lock(&l->mu);
    int rc = l->read_only ? PLOG_ERR_IO : plog_truncate_locked(l, offset, full, false);
    pthread_mutex_unlock(&l->mu);
    pthread_mutex_unlock(&l->flush_mu);
    pthread_mutex_unlock(&l->swap_mu);
    return rc;
}

int plog_truncate_to(struct plog *l, int64_t offset)
{
    return truncate_public(l, offset, false);
}

int plog_truncate_fully_and_start_at(struct plog *l, int64_t offset)
{
    return truncate_public(l, offset, true);
}
