/*
 * keyindex: lookup of a partition's records by key (topic config
 * key.index=true).
 *
 * Indexed are the record key and every space-separated token of a header
 * named "keys" in any case (RocketMQ's KEYS property, several keys of one
 * message).  Each as a 32-bit hash -> the record's offset; a hit is
 * verified by reading the record, so a hash collision costs one read and
 * never gives a wrong answer.
 *
 * Per segment: a sealed segment's entries are in <base>.keyidx (format
 * and its offset/size table at the top of keyindex.c), written once when
 * the segment is sealed and mapped; the active segment's entries are in
 * memory, appended as the log grows by whoever calls keyindex_sync (the
 * broker's indexer thread), and rebuilt by scanning the active segment
 * after a restart.  A sealed segment without a valid file (crash, deleted
 * or torn file, compaction replaced the segment) is rebuilt by
 * keyindex_rebuild_one; until then a lookup scans that segment, so
 * answers are right at every moment, only slower.
 *
 * Nothing here runs on the append path: plog_append does not know the
 * key index exists.  The index follows the log by looking at its segment
 * list; segment files deleted by retention take their .keyidx with them
 * (segment.c), truncation deletes the file of the segment it cuts.
 *
 * Threads and locks: every function may be called from any thread.
 * keyindex_sync and keyindex_rebuild_one do the indexing work (one sync
 * at a time; a rebuild runs beside it); keyindex_find only reads.  The
 * index's own mutex is never held while the plog's is, nor across file
 * I/O of the log.  The caller keeps the plog open during every call
 * (the broker holds the partition's log_lock shared).
 */
#ifndef RUNNEL_KEYINDEX_H
#define RUNNEL_KEYINDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/batch.h"

struct plog;
struct keyindex;

/* The hash stored in the index (FNV-1a 64, folded to 32 bits). */
uint32_t keyindex_hash(const void *key, size_t len);

struct keyindex *keyindex_new(void);
/* Forgets everything (mappings, memory, segment references); with
 * delete_files also removes the .keyidx files it knows of (key.index was
 * turned off).  The index can be synced again afterwards. */
void keyindex_reset(struct keyindex *k, bool delete_files);
void keyindex_free(struct keyindex *k);
/* For a partition without key.index: once per index object, deletes the
 * .keyidx files an earlier run left (the broker's default was switched
 * off while it was down).  Cheap when there are none. */
void keyindex_sweep(struct keyindex *k, struct plog *l);

/*
 * Brings the index up to date with the log: forgets segments the log no
 * longer has, loads the .keyidx files of sealed segments it has not seen
 * yet (checking them), indexes what was appended to the active segment
 * since the last call, and writes the file of a segment that was sealed
 * meanwhile.  Returns the number of bytes of log it indexed (>= 0), or
 * PLOG_ERR_IO when the log could not be read.
 */
int64_t keyindex_sync(struct keyindex *k, struct plog *l);
/*
 * Builds the file of one sealed segment that has none (or an invalid
 * one), by scanning the segment.  1 when it built one, 0 when none is
 * missing, or PLOG_ERR_IO.
 */
int keyindex_rebuild_one(struct keyindex *k, struct plog *l);

struct keyindex_stats {
    int32_t segments;  /* segments the index knows of */
    int32_t files;     /* sealed ones served from a .keyidx file */
    int32_t missing;   /* sealed ones without a valid file (scanned) */
    int64_t entries;   /* in files and memory */
    int64_t unindexed; /* bytes of log known but not yet indexed */
};
void keyindex_stats(struct keyindex *k, struct keyindex_stats *st);

/* One record found (valid during the callback only). */
struct keyindex_match {
    int64_t offset;
    int64_t timestamp;    /* the record's, or the batch's LogAppendTime */
    bool log_append_time; /* which of the two */
    const struct batch_record *record;
};
/* Return non-zero to stop the search. */
typedef int (*keyindex_found_fn)(void *arg, const struct keyindex_match *m);

/*
 * Calls fn, in offset order, for every record at or above the log start
 * whose key, or a token of whose "keys" header, is exactly `key`, and
 * whose timestamp is at least since_ms (pass -1 for all).  Answers from
 * the index where it has the segment, scanning the rest.  Returns PLOG_OK,
 * or PLOG_ERR_IO / PLOG_ERR_CORRUPT when the log could not be read.
 */
int keyindex_find(struct keyindex *k, struct plog *l, const void *key, size_t len, int64_t since_ms,
                  keyindex_found_fn fn, void *arg);

/* A .keyidx file on its own (the loader, runnel dump-log). */
struct keyindex_file {
    int64_t base_offset; /* of the segment it was made for */
    int64_t log_size;    /* bytes of that segment's .log */
    uint64_t log_inode;  /* and its inode */
    size_t n;            /* entries */
    const uint64_t *entries;
    void *map;
    size_t map_len;
};
/* Maps the file and checks what it can by itself (magic, version, size
 * against the entry count, both checksums): 0, or -1 with *why. */
int keyindex_file_open(const char *path, struct keyindex_file *f, const char **why);
void keyindex_file_close(struct keyindex_file *f);
/* Entry i: hash << 32 | offset relative to base_offset. */
uint64_t keyindex_file_entry(const struct keyindex_file *f, size_t i);

/* True when the record's key or a token of a "keys" header is `key`. */
bool keyindex_record_has_key(const struct batch_record *r, const void *key, size_t len);

/* The file name suffix, for segment.c (deletes) and plog_open.c (orphans). */
#define KEYINDEX_SUFFIX ".keyidx"

#endif
