/*
 * index: a segment's sparse offset index (.index) and time index
 * (.timeindex).  Formats: the tables at the top of index.c.
 *
 * The index of the active segment lives in a malloc'ed array that is
 * written through to the file entry by entry; a sealed segment's index is
 * an mmap of its file (read-only, shared with the page cache).  Entries
 * are kept in file (big-endian) form so either source reads the same way.
 *
 * Not thread-safe: the owning plog's mutex protects it.
 */
#ifndef RUNNEL_INDEX_H
#define RUNNEL_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum index_kind { INDEX_OFFSET = 0, INDEX_TIME = 1 };

#define INDEX_OFFSET_ENTRY 8
#define INDEX_TIME_ENTRY 12

struct index {
    int kind;
    size_t esize;
    int64_t base_offset;
    int fd; /* -1 once a sealed index has been synced and mapped */
    uint8_t *buf;
    size_t n;   /* entries */
    size_t cap; /* entries allocated, when not mapped */
    bool mapped;
    size_t map_len;
    size_t max_entries;
    bool existed; /* the file was there when opened */
    bool ragged;  /* its size was not a multiple of the entry size */
    char *path;
};

/* Opens or creates the file and loads it (mmap).  The index holds at most
 * max_bytes / entry size entries (at least 2).  0 or -1 with errno. */
int index_open(struct index *ix, const char *path, int kind, int64_t base_offset, size_t max_bytes);
/* Makes the index appendable (copies a mapped index into memory, reopens
 * the file for writing).  0 or -1. */
int index_make_writable(struct index *ix);
/* fsyncs the file if it is open. */
int index_sync(struct index *ix);
/* For a sealed, synced index: trade the memory copy for a mapping and
 * close the file.  0 or -1 (the index stays usable either way). */
int index_release(struct index *ix);
void index_close(struct index *ix);
/* The file was renamed (the cleaner's swap): later reopens use `path`.
 * 0 or -1 (out of memory; the old name is kept). */
int index_set_path(struct index *ix, const char *path);
/* New capacity (segment.index.bytes changed); takes effect for appends. */
void index_set_max_bytes(struct index *ix, size_t max_bytes);

static inline bool index_full(const struct index *ix)
{
    return ix->n >= ix->max_entries;
}

/* Entry accessors (absolute offsets). */
int64_t index_offset_at(const struct index *ix, size_t i);
int32_t index_position_at(const struct index *ix, size_t i);  /* offset index */
int64_t index_timestamp_at(const struct index *ix, size_t i); /* time index */
/* Time index: last timestamp, or -1 when empty (Kafka's empty entry). */
int64_t index_last_timestamp(const struct index *ix);

/* Offset index: the greatest entry with offset <= target, or -1. */
long index_lookup(const struct index *ix, int64_t target);
/* Time index: the greatest entry with timestamp < ts, or -1. */
long index_lookup_time_before(const struct index *ix, int64_t ts);

/* Appends (write-through).  Silently skip when the index is full, since
 * a sparser index is still a correct one.  0 or -1 on a write error. */
int index_append_offset(struct index *ix, int64_t offset, int32_t position);
int index_append_time(struct index *ix, int64_t timestamp, int64_t offset);
/* The entry that seals a segment; may use the slot appends leave free. */
int index_append_time_final(struct index *ix, int64_t timestamp, int64_t offset);
/* Keeps the first n entries, in memory and in the file.  0 or -1. */
int index_truncate(struct index *ix, size_t n);

/*
 * Sanity check after an unclean shutdown: no ragged tail; offsets (and
 * positions / timestamps) strictly increasing; offset index positions
 * inside the log (< log_size); relative offsets >= 0 and below
 * next_offset (pass INT64_MAX when unknown).
 */
bool index_check(const struct index *ix, int64_t log_size, int64_t next_offset);

#endif
