/*
 * plog: one partition's durable log (a directory of segments).
 *
 * Owns the segment files (.log), their sparse offset indexes (.index),
 * time indexes (.timeindex), the leader-epoch checkpoint and the
 * log-start-offset checkpoint of one partition directory.  See
 * storage/README.md for the formats and segment.c/index.c for the
 * offset/size tables of each file.
 *
 * Threads and locks: a plog has one mutex.  plog_append, plog_read,
 * plog_flush, retention and truncation may be called from any thread;
 * each takes the mutex for the in-memory state only (appends hold it
 * across the write(2) into the page cache so batches never interleave).
 * fsync runs without the mutex held on the fd it captured, so a slow disk
 * never blocks appends to the same partition (group commit: the flusher
 * thread calls plog_flush once for many appends).
 *
 * A failed write or fsync is not retried: the plog becomes read-only
 * (plog_append returns PLOG_ERR_IO ever after) and says so in the log.
 */
#ifndef RUNNEL_PLOG_H
#define RUNNEL_PLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct plog;

struct plog_config {
    int64_t segment_bytes;        /* roll when the active segment would pass this */
    int64_t segment_ms;           /* roll when the active segment is older (-1 never) */
    int64_t retention_ms;         /* -1 = forever */
    int64_t retention_bytes;      /* -1 = unlimited */
    int64_t flush_messages;       /* fsync after this many records (-1/0 = never by count) */
    int64_t flush_ms;             /* fsync when the oldest unflushed append is this old */
    int32_t index_interval_bytes; /* an index entry at least every this many bytes (4096) */
    int32_t segment_index_bytes;  /* max size of an .index file; roll when full (10 MiB) */
    bool log_append_time;         /* message.timestamp.type=LogAppendTime */
    int32_t max_message_bytes;    /* largest batch accepted (1 MiB + overhead) */
    /* Compaction (cleanup.policy contains "compact"; see plog_clean).
     * Retention is separate: retention_ms / retention_bytes apply
     * whatever the policy, so for "compact" alone set both to -1. */
    bool compact;                  /* null keys refused, plog_clean works */
    int64_t delete_retention_ms;   /* tombstones kept this long after their first clean (1 day) */
    int64_t min_compaction_lag_ms; /* segments with younger records are not cleaned (0) */
    double min_cleanable_dirty_ratio; /* clean when dirty / cleanable bytes reach it (0.5) */
};
void plog_config_defaults(struct plog_config *c);

/* Error returns (negative); Kafka error codes are mapped by the caller. */
enum plog_err {
    PLOG_OK = 0,
    PLOG_ERR_IO = -1,           /* disk failure; partition now read-only */
    PLOG_ERR_CORRUPT = -2,      /* batch framing or CRC wrong (CORRUPT_MESSAGE) */
    PLOG_ERR_INVALID = -3,      /* batch well framed but invalid (INVALID_RECORD) */
    PLOG_ERR_TOO_LARGE = -4,    /* batch over max_message_bytes (MESSAGE_TOO_LARGE) */
    PLOG_ERR_OUT_OF_RANGE = -5, /* offset outside [log_start, log_end] */
    PLOG_ERR_UNSUPPORTED = -6,  /* magic < 2 (UNSUPPORTED_FOR_MESSAGE_FORMAT) */
    PLOG_ERR_OFFSET = -7,       /* follower append below the log end: truncate first */
};

/*
 * Opens (creating if absent) the partition directory `dir`.  If
 * `clean` is false (the broker did not shut down cleanly), the segments
 * after the recovery point are rescanned: a torn or corrupt tail is
 * truncated to the last valid batch, and indexes that are missing,
 * damaged or shorter than the log are rebuilt.  When clean, only the
 * last segment's tail past its last index entry is read.
 * Returns 0, or -1 with a message in err.
 */
int plog_open(const char *dir, const struct plog_config *cfg, bool clean, struct plog **out,
              char *err, size_t errlen);
/* Flushes (when `flush`), closes and frees. */
void plog_close(struct plog *l, bool flush);
/* Deletes every file of the partition and the directory, then frees. */
int plog_destroy(struct plog *l);
/* Replaces the configuration (topic configs altered at runtime). */
void plog_set_config(struct plog *l, const struct plog_config *cfg);

struct plog_append_result {
    int64_t base_offset;     /* first offset assigned */
    int64_t last_offset;     /* last offset assigned */
    int64_t log_append_time; /* -1 unless log_append_time */
    int64_t log_start_offset;
    int32_t record_count;
};

/*
 * Validates and appends `len` bytes of magic-2 record batches, as they
 * came in a Produce request.  The buffer is modified in place: base
 * offsets (and with log_append_time the timestamps and CRC) are
 * rewritten, partition leader epoch set to `leader_epoch`.  All batches
 * are validated before anything is written: on error nothing is written.
 * PLOG_ERR_INVALID also for a record without a key when `compact` is set
 * and for a batch with the delete-horizon attribute (the cleaner's).
 */
int plog_append(struct plog *l, uint8_t *batches, size_t len, int32_t leader_epoch, int64_t now_ms,
                struct plog_append_result *res);

/*
 * Appends batches fetched from the leader exactly as the leader wrote
 * them (Kafka's appendAsFollower): offsets, partition leader epochs,
 * timestamps and attributes are kept, nothing is rewritten.  Every batch
 * is checked before anything is written: framing (PLOG_ERR_CORRUPT, or
 * PLOG_ERR_UNSUPPORTED for magic < 2), CRC (PLOG_ERR_CORRUPT), codec
 * (PLOG_ERR_INVALID), size at most what a segment can hold
 * (PLOG_ERR_TOO_LARGE; max_message_bytes is not applied: the leader
 * accepted the batch) and offsets: each batch's base offset must be
 * above the previous batch's last offset (PLOG_ERR_INVALID), and the
 * first base offset >= the log end, else PLOG_ERR_OFFSET (the caller
 * must truncate first).  Gaps are allowed (a compacted leader log has
 * them).  Records are not decompressed.  A batch whose leader epoch is
 * larger than the latest known one starts that epoch at its base offset
 * (Kafka's LeaderEpochFileCache.assign); the epoch checkpoint is written
 * durably before the data.  Smaller epochs and -1 change nothing.
 * Segments roll and indexes grow as for plog_append; a buffer larger
 * than a segment is spread over several.  res: base_offset and
 * last_offset are the first and last offsets of the batches,
 * record_count the sum of their records counts, log_append_time -1.
 */
int plog_append_follower(struct plog *l, const uint8_t *batches, size_t len,
                         struct plog_append_result *res);

/*
 * A byte range of one segment file to serve to a fetcher.  While the
 * range is held the segment file stays open (and readable even if
 * retention deletes it); plog_range_release(arg) drops it.  It is meant
 * for krecords_t.release / release_arg.
 */
struct plog_range {
    int fd; /* -1 when there is nothing to read */
    int64_t file_pos;
    int32_t len;
    void *ref; /* pass to plog_range_release */
};
void plog_range_release(void *ref);

/*
 * Finds whole batches starting with the one that contains `offset`, up
 * to `max_bytes` (but always at least one whole batch, so a consumer can
 * make progress past a large batch), never past `max_offset` (exclusive,
 * the high watermark).  PLOG_ERR_OUT_OF_RANGE when offset < log start or
 * > log end.  An offset == log end gives an empty range (fd -1).
 */
int plog_read(struct plog *l, int64_t offset, int32_t max_bytes, int64_t max_offset,
              struct plog_range *out);

/* Offsets. */
int64_t plog_log_start(struct plog *l);
int64_t plog_log_end(struct plog *l); /* next offset to be assigned (LEO) */
int64_t plog_size_bytes(struct plog *l);
int plog_segment_count(struct plog *l);
int64_t plog_flushed_offset(struct plog *l); /* every offset below is fsynced */

/*
 * The first offset whose batch max timestamp is >= ts (Kafka's
 * ListOffsets by timestamp): *offset and *found_ts, or *offset = -1 when
 * no record is that recent.  ts = -3 (MAX_TIMESTAMP) gives the offset of
 * the record with the largest timestamp.
 */
int plog_offset_for_time(struct plog *l, int64_t ts, int64_t *offset, int64_t *found_ts);

/*
 * fsyncs the active segment and its indexes if anything is unflushed.
 * Safe to call from a flusher thread while appends continue.
 * Returns the offset up to which everything is now durable, or
 * PLOG_ERR_IO.
 */
int64_t plog_flush(struct plog *l);
/* True when flush_messages/flush_ms say it is time to flush. */
bool plog_flush_due(struct plog *l, int64_t now_ms);

/* Moves the log start offset forward (DeleteRecords); durable on return.
 * offset -1 means the high watermark (log end). */
int plog_delete_records(struct plog *l, int64_t offset, int64_t *new_log_start);

/* Deletes whole segments past retention (time/bytes) or wholly below the
 * log start offset; rolls the active segment when segment_ms has passed.
 * Returns the number of segments deleted. */
int plog_housekeep(struct plog *l, int64_t now_ms);

/*
 * Log compaction (cleaner.c), Kafka's cleanup.policy=compact: keeps the
 * last record of every key.  Offsets never change: surviving records
 * keep theirs, so a compacted log has gaps, and plog_read of an offset
 * in a gap returns the next batch.  Only sealed segments, fsynced and
 * not younger than min_compaction_lag_ms, are cleaned; the active one
 * never.  A tombstone (null value) goes delete_retention_ms after the
 * first clean that kept it.  Crash-safe at every step; appends, reads,
 * flushes and retention continue meanwhile (the mutex is taken only to
 * choose the segments and to swap them).
 *
 * plog_clean does nothing (PLOG_OK, cleaned false) unless `compact` is
 * set and either the dirty ratio (bytes written since the last clean /
 * bytes of the cleanable segments) reaches min_cleanable_dirty_ratio, a
 * tombstone's delete horizon has passed, or `force` is set.  It is
 * cheap when there is nothing to do.  One clean at a time per plog (a
 * second caller waits); plog_close and plog_destroy must not run
 * concurrently with it.
 */
struct plog_clean_stats {
    /* In: zero means the default. */
    bool force;            /* clean whatever the dirty ratio */
    int64_t max_map_bytes; /* memory for the key -> offset map (64 MiB) */
    /* Out. */
    bool cleaned;               /* segments were replaced */
    double dirty_ratio;         /* when the clean started */
    int64_t first_dirty_offset; /* the part cleaned for the first time began here */
    int64_t end_offset;         /* cleaned up to here (the next clean's first dirty) */
    int32_t segments_read, segments_written;
    int64_t bytes_read, bytes_written;
    int64_t records_read, records_removed, tombstones_removed;
    int64_t keys; /* distinct keys in the dirty part */
};
/* Returns PLOG_OK, PLOG_ERR_IO (a read, write or fsync failed; after the
 * point of no return that also makes the partition read-only), or
 * PLOG_ERR_CORRUPT (a batch on disk is unreadable: that partition cannot
 * be cleaned until it is repaired).  `st` may be NULL. */
int plog_clean(struct plog *l, int64_t now_ms, struct plog_clean_stats *st);
/* The dirty ratio plog_clean would see now (0 when not compacted), to
 * clean the dirtiest partition first. */
double plog_dirty_ratio(struct plog *l, int64_t now_ms);

/* Leader epoch bookkeeping and follower truncation (replication). */
int32_t plog_leader_epoch(struct plog *l);
/*
 * Records that `epoch` starts at the log end (Kafka does this when a
 * replica becomes leader), writing the checkpoint now rather than on the
 * first append, whose producer would otherwise wait for its fsync.  No-op
 * for an epoch not newer than the last one.
 */
int plog_begin_epoch(struct plog *l, int32_t epoch);
/*
 * Kafka's LeaderEpochFileCache.endOffsetFor (OffsetForLeaderEpoch, and
 * Fetch's diverging epoch): for the requested epoch,
 *   - the latest known epoch: (that epoch, log end);
 *   - an older one: (the largest known epoch <= requested, the start
 *     offset of the first known epoch above requested);
 *   - below every known epoch: (requested, start offset of the first
 *     known epoch), since the history before it was removed with the
 *     data (Kafka does exactly this);
 *   - -1 (UNDEFINED), above every known epoch, or no epoch known:
 *     (-1, -1).
 * Always PLOG_OK.
 */
int plog_end_offset_for_epoch(struct plog *l, int32_t epoch, int32_t *out_epoch,
                              int64_t *out_end_offset);

/*
 * Follower truncation (KIP-101/279).  Removes every batch that holds an
 * offset >= `offset` (the batch containing it too, so the new log end
 * is that batch's base offset, or `offset` itself in a compaction gap),
 * whole later segments, their index entries and the epochs that start
 * at or after the new log end.  At or below the first segment, or below
 * the log start, it becomes plog_truncate_fully_and_start_at(offset).
 * With offset >= log end no data changes, but epochs starting at the
 * log end (a leader's plog_begin_epoch that saw no append) go, as in
 * Kafka.  Durable on return and crash-safe: a `truncation` checkpoint
 * is written first and removed last, and plog_open finishes a
 * truncation it finds, so after a crash the log is as before or as
 * after, never in between.  PLOG_ERR_OUT_OF_RANGE for offset < 0.
 */
int plog_truncate_to(struct plog *l, int64_t offset);
/*
 * Deletes every segment and restarts the log empty at `offset` (log
 * start = log end = offset): a follower whose log end is below the
 * leader's log start.  Clears the epoch history (Kafka's
 * clearAndFlush), writes the log start offset; durable and crash-safe
 * like plog_truncate_to.  PLOG_ERR_OUT_OF_RANGE for offset < 0.
 */
int plog_truncate_fully_and_start_at(struct plog *l, int64_t offset);

/*
 * The high watermark checkpoint (the `high-watermark` file of the
 * partition directory; Kafka's replication-offset-checkpoint).
 * plog_checkpoint_hw writes `hw` clamped to [log start, log end], as
 * Kafka's updateHighWatermark clamps, atomically and durably; it does
 * nothing when that value is the one last written.  PLOG_OK,
 * PLOG_ERR_OUT_OF_RANGE for hw < 0, or PLOG_ERR_IO (read-only, as after
 * any failed checkpoint write).  plog_checkpointed_hw returns the value
 * last written, or read at open, clamped to [log start, log end] now;
 * -1 when there is none (no file, or an unreadable one).
 */
int plog_checkpoint_hw(struct plog *l, int64_t hw);
int64_t plog_checkpointed_hw(struct plog *l);

#endif
