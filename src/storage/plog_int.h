/*
 * plog_int: the inside of a struct plog, shared by the files of the
 * partition (plog.c, plog_open.c, plog_epochs.c, plog_retention.c,
 * plog_truncate.c, plog_hw.c, plog_offsets.c; the top of plog.c says
 * which holds what, and the invariants), the log cleaner (cleaner.c),
 * which swaps compacted segments into the list, and the key indexer
 * (keyindex.c).  Outside storage/ only the unit tests include this;
 * the broker uses plog.h.
 *
 * Locks, outermost first (plog.c and cleaner.c say who takes which):
 *   clean_mu  one plog_clean at a time; held across the whole clean;
 *   swap_mu   the cleaner's swap of files and segments vs truncation;
 *   flush_mu  one fsync-er, one writer of the offset checkpoints;
 *   mu        everything in memory below.
 */
#ifndef RUNNEL_PLOG_INT_H
#define RUNNEL_PLOG_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "storage/checkpoint.h"
#include "storage/plog.h"
#include "storage/segment.h"

struct plog {
    pthread_mutex_t mu;
    pthread_mutex_t flush_mu;
    pthread_mutex_t swap_mu;
    pthread_mutex_t clean_mu;
    char *dir;
    int dir_fd;
    struct plog_config cfg;

    struct segment **segs;
    int nsegs, cap_segs;

    int64_t log_start;
    int64_t leo;
    int64_t flushed;
    int64_t recovery_point;
    int64_t size_bytes;
    int64_t unflushed_records;
    int64_t oldest_unflushed_ms; /* -1 when nothing is unflushed */
    bool read_only;
    bool dir_dirty; /* files were created since the directory was fsynced */

    struct epoch_entry *epochs;
    int nepochs, cap_epochs;

    /* Compaction (cleaner.c).  Segments wholly below clean_offset were
     * compacted by a clean that completed durably; clean_horizon_ms is
     * the earliest delete horizon of a tombstone among them (-1: none
     * known).  Both are also in the cleaner checkpoint file, written
     * under swap_mu. */
    int64_t clean_offset;
    int64_t clean_horizon_ms;
    /* Bumped by every truncation, so a clean that read segments while a
     * truncation changed them notices and gives up. */
    uint64_t trunc_gen;

    /* The high watermark last written to (or read at open from) the
     * `high-watermark` checkpoint, -1 none.  Written under flush_mu and
     * mu, read under mu. */
    int64_t hw_ckpt;
};

/*
 * Crash points for the unit tests, as cleaner_crash_point: when set,
 * plog_truncate_to / plog_truncate_fully_and_start_at return
 * PLOG_ERR_IO right after that step as if the process had died there,
 * leaving the files as they are; the test drops the plog with
 * plog_close(l, false) and opens the directory again.  Production code
 * never sets it.
 */
enum plog_crash_point {
    PLOG_CRASH_NONE = 0,
    PLOG_CRASH_TRUNC_AFTER_RECORD, /* the truncation checkpoint written, nothing cut */
    PLOG_CRASH_TRUNC_AFTER_DROP,   /* the last segment deleted (there may be more to go) */
    PLOG_CRASH_TRUNC_AFTER_CUT,    /* the data cut (full: every segment gone), not fsynced,
                                      no other checkpoint written */
    PLOG_CRASH_TRUNC_BEFORE_DONE,  /* everything durable but the record still there */
};
extern enum plog_crash_point plog_crash_point;

/* ---- plog.c ---- */

/* The active segment (the last; the list is never empty).  Under mu. */
static inline struct segment *plog_active(struct plog *l)
{
    return l->segs[l->nsegs - 1];
}
/* Marks the partition read-only after a failed write or fsync (logs it
 * once, with errno).  Under mu. */
void plog_set_read_only(struct plog *l, const char *what);
/* The largest segment a roll allows: segment_bytes, at most 2 GiB. */
int64_t plog_roll_bytes(const struct plog_config *c);
/* Appends s to the segment list, which takes over the caller's
 * reference.  0, or -1 out of memory.  Under mu. */
int plog_push_segment(struct plog *l, struct segment *s);
/* Removes segs[i] from the list, deletes its files and drops the list's
 * reference (a fetch range may still hold it open).  Under mu. */
void plog_drop_segment(struct plog *l, int i);
/* Index of the last segment whose base offset <= offset (or 0).  Under
 * mu. */
int plog_find_segment(struct plog *l, int64_t offset);
/* Seals the active segment and starts one named `base`.  PLOG_OK, or
 * PLOG_ERR_IO with the partition read-only.  Under mu. */
int plog_roll(struct plog *l, int64_t base, int64_t now_ms);
/* Wall-clock time in milliseconds. */
int64_t plog_wall_ms(void);

/* ---- plog_epochs.c, all under mu (or alone in plog_open) ---- */

/* Adds `epoch` starting at `start` if it is newer than the latest
 * (Kafka's assign); *added tells whether it was.  0, or -1 out of
 * memory.  Does not write the checkpoint. */
int plog_epochs_assign(struct plog *l, int32_t epoch, int64_t start, bool *added);
/* Drops entries that start at or after `end`.  True when changed. */
bool plog_epochs_truncate_end(struct plog *l, int64_t end);
/* Entries wholly below the log start collapse into one starting there,
 * as Kafka's truncateFromStart does.  True when changed. */
bool plog_epochs_truncate_start(struct plog *l, int64_t start);
/* Rebuilds the history from the batch headers (checkpoint unreadable).
 * 0, or -1 out of memory. */
int plog_epochs_rebuild(struct plog *l);

/* ---- plog_retention.c ---- */

/* The largest timestamp of a segment, or its file's mtime when it has
 * none (retention and min_compaction_lag_ms).  Under mu. */
int64_t plog_segment_largest_ts(const struct segment *s);

/* ---- plog_truncate.c ---- */

/* Deletes every segment and starts an empty one at `offset`, which
 * becomes the log start and end.  0, or -1.  Under mu (or
 * alone in plog_open). */
int plog_restart_at(struct plog *l, int64_t offset, int64_t now_ms);
/* Truncates to `offset` (full: empties the log and restarts it there),
 * holding swap_mu, flush_mu and mu, or alone during plog_open.  `redo`:
 * the truncation record already exists (plog_open found it). */
int plog_truncate_locked(struct plog *l, int64_t offset, bool full, bool redo);

#endif
