/*
 * compaction: the cleaner thread.  Every log.cleaner.backoff.ms it visits
 * the partitions of compacted topics (cleanup.policy contains compact)
 * and lets storage compact those whose dirty ratio calls for it
 * (partition_clean, storage/cleaner.c).  One thread, so a clean never
 * competes with another for the disk; partition_clean holds the
 * partition's log_lock shared while cleaning, which keeps topic deletion
 * from closing the log under it while appends and fetches go on.
 */
#ifndef RUNNEL_COMPACTION_H
#define RUNNEL_COMPACTION_H

#include <stdint.h>

int compaction_start(int64_t backoff_ms, int64_t map_bytes);
/* Stops between partitions (a clean under way finishes first). */
void compaction_stop(void);
/* Runs one round now (tests, admin); on the calling thread. */
void compaction_round(void);

#endif
