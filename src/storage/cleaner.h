/*
 * cleaner: log compaction of one partition (Kafka's LogCleaner).
 *
 * The public entry points, plog_clean and plog_dirty_ratio, are declared
 * in plog.h.  This header is the part the plog files need (recovery of
 * an interrupted clean and the cleaner checkpoint when a partition is
 * opened, plog_open.c; truncation, plog_truncate.c) plus the crash
 * points the tests use.  The algorithm, the
 * file names and the swap protocol are described at the top of
 * cleaner.c.
 */
#ifndef RUNNEL_CLEANER_H
#define RUNNEL_CLEANER_H

#include <stdint.h>

struct plog;

/* Per partition directory: where the last clean ended and its earliest
 * delete horizon (format at the top of cleaner.c). */
#define CLEANER_CHECKPOINT "cleaner-checkpoint"

/*
 * Called by plog_open before it lists the segments: deletes what an
 * unfinished clean left (*.cleaned, and .swap index files whose .log is
 * not yet .swap) and completes every decided swap (a <base>.log.swap):
 * removes the segments it replaces and renames its files into place.
 * 0, or -1 with errno.
 */
int cleaner_recover(int dir_fd, const char *dir);

/* Called by plog_open once the segments are loaded: reads the cleaner
 * checkpoint into l->clean_offset / l->clean_horizon_ms (nothing counts
 * as cleaned when it is missing or unreadable). */
void cleaner_load_checkpoint(struct plog *l);

/*
 * Called by plog_truncate_to, holding swap_mu, flush_mu and mu, before
 * it cuts the log at `offset`: lowers the clean offset to it and writes
 * the checkpoint, so that records appended after the cut are never
 * taken for compacted ones.  0, or -1 when the checkpoint write failed.
 */
int cleaner_truncating(struct plog *l, int64_t offset);

/*
 * Crash points for tests: when set, plog_clean returns right after that
 * step as if the process had died there, leaving the files as they are
 * and the segment list untouched; the test then drops the plog with
 * plog_close(l, false) and opens the directory again.  Production code
 * never sets it.
 */
enum cleaner_crash_point {
    CLEANER_CRASH_NONE = 0,
    CLEANER_CRASH_AFTER_CLEANED, /* every .cleaned file written and fsynced */
    CLEANER_CRASH_AFTER_SWAP,    /* renamed to .swap, directory fsynced */
    CLEANER_CRASH_AFTER_DELETE,  /* the replaced segments' files deleted too */
};
extern enum cleaner_crash_point cleaner_crash_point;

#endif
