/*
 * segment: one .log file of a partition and its two indexes.
 *
 * A segment is named by its base offset (20 digits).  The last segment
 * of a partition is the active one: appends go to it, its indexes are in
 * memory and written through.  Earlier segments are sealed (immutable,
 * indexes mapped).  Segments are reference counted: the plog holds one
 * reference, every fetch range another, so a segment deleted by retention
 * stays readable until the last range is released; the last unref closes
 * the files.
 *
 * Not thread-safe except segment_ref/segment_unref: the plog mutex
 * protects the rest.  Reads of sealed data (segment_read_header) may run
 * without the mutex on a referenced segment.
 */
#ifndef RUNNEL_SEGMENT_H
#define RUNNEL_SEGMENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "storage/batch.h"
#include "storage/index.h"

struct segment {
    int64_t base_offset;
    int64_t next_offset; /* one past the last offset held (base when empty) */
    int64_t size;        /* bytes of whole batches in the .log */
    int log_fd;
    struct index oidx, tidx;
    int64_t max_ts;           /* largest batch maxTimestamp, -1 none */
    int64_t offset_of_max_ts; /* lastOffset of the batch that had it */
    int64_t bytes_since_index;
    int64_t roll_base_ms; /* segment_ms counts from here (first append) */
    bool needs_sync;      /* written since the last fsync */
    bool sealed;
    bool cleaning; /* being compacted (cleaner.c): retention leaves it alone */
    atomic_int refs;
    char *path; /* dir/<20 digits>, no extension */
};

/* Number of batches read by recovery and tail scans since start, so tests
 * can tell a full rescan from a tail read. */
uint64_t segment_scan_count(void);

/* "dir/00000000000000000042" + ext into buf. */
void segment_file_name(char *buf, size_t len, const char *dir, int64_t base, const char *ext);

/* Creates a new, empty active segment.  0 or -1 with errno. */
int segment_create(const char *dir, int64_t base, size_t max_index_bytes, int64_t now_ms,
                   struct segment **out);
/*
 * Creates an empty, writable segment whose three files carry `suffix`
 * after their usual names (<base>.log.cleaned ...), replacing leftovers
 * of that name.  s->path is still dir/<base>, so once the files are
 * renamed to their plain names (segment_rename_files) the segment is
 * like any other.  For the cleaner.  0 or -1 with errno.
 */
int segment_create_at(const char *dir, int64_t base, const char *suffix, size_t max_index_bytes,
                      int64_t now_ms, struct segment **out);
/*
 * Renames the three files from <name><from> to <name><to>: .index,
 * .timeindex, then .log last, so that the .log rename is the step that
 * counts (the cleaner's swap protocol, cleaner.c).  Open fds are not
 * affected.  0, or -1 with errno at the first failure.
 */
int segment_rename_files(struct segment *s, const char *from, const char *to);
/* Opens an existing segment; indexes loaded as found (not checked). */
int segment_open(const char *dir, int64_t base, size_t max_index_bytes, struct segment **out);

/*
 * Re-reads the log from the start, validating each batch's framing and
 * CRC, and rebuilds both indexes.  Cuts the file at the first torn or
 * corrupt batch.  Returns the number of bytes cut (>= 0), or PLOG_ERR_IO.
 */
int64_t segment_recover(struct segment *s, int32_t index_interval);
/*
 * After a clean shutdown: trusts the indexes and reads forward from the
 * last offset index entry to find the end of the log (cutting a bad tail
 * all the same).  Returns bytes cut, or PLOG_ERR_IO.
 */
int64_t segment_load_tail(struct segment *s, int32_t index_interval);
/* For a sealed segment opened without a scan: next_offset comes from the
 * following segment, max timestamp from the last time index entry. */
void segment_load_sealed(struct segment *s, int64_t next_offset);

/*
 * Appends `len` bytes of validated batches (offsets already assigned) at
 * the end of the log with one write, then indexes them.  PLOG_OK or
 * PLOG_ERR_IO (nothing is counted as written then).
 */
int segment_append(struct segment *s, const uint8_t *buf, size_t len, int32_t index_interval,
                   int64_t now_ms);

/* Reads and parses the batch header at pos (must be < s->size).  PLOG_OK,
 * PLOG_ERR_CORRUPT, or PLOG_ERR_IO. */
int segment_read_header(const struct segment *s, int64_t pos, int64_t limit, struct batch_hdr *h);
/*
 * Finds the first batch whose lastOffset >= offset, reading at most up to
 * `limit` bytes: 1 with *pos and *h, 0 when no such batch, or an error.
 */
int segment_find(const struct segment *s, int64_t offset, int64_t limit, int64_t *pos,
                 struct batch_hdr *h);

/* Seals an active segment (final time index entry). 0 or PLOG_ERR_IO. */
int segment_seal(struct segment *s);
/* Makes a sealed segment active again (after truncation reaches it). */
int segment_unseal(struct segment *s);
/* fsyncs the log and index files. 0 or -1. */
int segment_sync(struct segment *s);
/* Removes every batch with lastOffset >= offset.  PLOG_OK or PLOG_ERR_IO. */
int segment_truncate(struct segment *s, int64_t offset, int32_t index_interval);
void segment_set_max_index_bytes(struct segment *s, size_t max_bytes);

/* Renames the files to *.deleted and unlinks them (the fds stay open). */
int segment_delete_files(struct segment *s);

void segment_ref(struct segment *s);
void segment_unref(struct segment *s);

#endif
