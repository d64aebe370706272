/*
 * keyindexer: the thread that keeps the key indexes (storage/keyindex.h)
 * of topics with key.index=true up to date.
 *
 * Every KEYINDEXER_INTERVAL_MS it visits every partition of those topics:
 * indexes what was appended since its last visit (reading the log behind
 * the appends, so the produce path does no indexing work at all), writes
 * the file of each segment that was sealed, and rebuilds the file of one
 * sealed segment that has none or a bad one; while rebuilds remain it
 * goes round again without waiting.  When a topic's key.index is turned
 * off, its partitions' index files are deleted.  One thread: indexing a
 * busy topic costs at most one core, and on a small machine never both.
 *
 * Its work on a partition goes through partition_key_index_*, which hold
 * the partition's log_lock shared (topic deletion waits), like the
 * cleaner thread's (compaction.c).
 */
#ifndef RUNNEL_KEYINDEXER_H
#define RUNNEL_KEYINDEXER_H

#include <stdbool.h>

#define KEYINDEXER_INTERVAL_MS 200

int keyindexer_start(void);
/* Stops between partitions (a rebuild under way finishes first). */
void keyindexer_stop(void);
/* One visit of every partition now, on the calling thread; true when
 * rebuilds remain. */
bool keyindexer_round(void);

#endif
