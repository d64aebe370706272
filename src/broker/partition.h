/*
 * partition: the broker's state for one partition, and the only door to
 * its log.
 *
 * Every access to a partition's log goes through the functions here (the
 * Kafka handlers, the flusher, the cleaner and key indexer threads, the
 * timer thread, the group store, the admin API), so that leadership, the
 * high watermark and the waiters woken by new data are decided in one
 * place.  With one replica this broker leads the partition and the high
 * watermark follows the log end after every append; replicated, the
 * leader's high watermark is the smallest log end of the ISR, moved as
 * followers fetch (Kafka's Partition.scala).
 *
 * Every function that touches the log takes `log_lock` itself and answers
 * a partition whose topic was deleted with UNKNOWN_TOPIC_OR_PARTITION.
 * Errors are Kafka error codes (common/kerr.h), never plog codes.
 *
 * Locks: `log_lock` (rwlock) guards the `log` pointer: everything here
 * takes it shared (plog has its own mutexes inside), topic deletion
 * takes it exclusive to close the log.  The leadership fields are set at
 * open and changed by partition_become_leader/follower and the ISR
 * maintenance under `log_lock` exclusive, so the checks made inside
 * these functions see them consistent with the log; readers outside
 * take a copy with partition_leadership.  `repl_mu` (under log_lock)
 * guards what the leader knows of its followers; `wait_mu` guards the
 * waiter list (taken last).
 */
#ifndef RUNNEL_PARTITION_H
#define RUNNEL_PARTITION_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "net/loop.h"
#include "storage/keyindex.h"
#include "storage/plog.h"

struct topic;

/* A fetch (or anything else) waiting for data on a partition.  Woken
 * when the high watermark moves, when the log end moves while a
 * replicated partition has waiters (followers read up to it), and when
 * the ISR or the leadership changes (acks=all produces re-check). */
struct partition_waiter {
    struct partition_waiter *prev, *next;
    struct loop_wake *wake; /* woken when the high watermark moves */
};

/* The most replicas a partition may have (Kafka has no limit; a bound
 * keeps the leadership copy and the ISR maintenance allocation-free). */
#define PARTITION_MAX_REPLICAS 32

/*
 * What the leader knows of one follower (Kafka's Replica state),
 * guarded by the partition's repl_mu.  Reset when this broker becomes
 * leader: the log end is unknown (-1) until the follower fetches.
 */
struct partition_remote {
    int32_t replica_id;
    int64_t log_end;               /* its last fetch offset, -1 unknown */
    int64_t last_caught_up_ms;     /* Kafka's lastCaughtUpTimeMs */
    int64_t last_fetch_leader_end; /* the leader's log end at its previous fetch */
    int64_t last_fetch_ms;         /* when that fetch came */
};

struct partition {
    struct topic *topic;
    int32_t index;
    char *dir;
    /* log_lock, log and kidx are private to partition.c: use the
     * functions below, never these fields. */
    pthread_rwlock_t log_lock;
    struct plog *log; /* NULL once the topic is deleted, or when !is_replica */
    /* False for a partition of which this broker holds no replica (cluster
     * mode): it exists for Metadata's sake, with only the leadership
     * fields meaningful; every door function answers as a non-leader. */
    bool is_replica;
    /* Lookups by key (key.index): used like log, under log_lock shared
     * with log non-NULL; empty until the indexer syncs. */
    struct keyindex *kidx;
    /* Leadership, set at open to "this broker, alone" (see above).
     * Readers outside may read them directly (Metadata) while they are
     * fixed; partition_check_leader is the rule. */
    int32_t node_id;   /* this broker */
    int32_t leader_id; /* the leader's node id; -1 while none is known */
    int32_t leader_epoch;
    int32_t *replicas, n_replicas;  /* the assigned replicas, leader first */
    int32_t *isr, n_isr;            /* in-sync replicas (the leader among them) */
    _Atomic int64_t high_watermark; /* moved by partition_advance_hw only */
    /* Replication, private to partition.c.  `replicated`: set once
     * partition_become_leader/follower ran (or n_replicas > 1): the high
     * watermark is checkpointed and restored.  `epoch_start`: the log end
     * when this broker began leading leader_epoch.  remotes[] (one per
     * replica but this broker, n_remotes) under repl_mu, which is taken
     * under log_lock (shared) and never across I/O. */
    bool replicated;
    int64_t epoch_start;
    pthread_mutex_t repl_mu;
    struct partition_remote *remotes;
    int32_t n_remotes;
    atomic_bool isr_expand_wanted; /* a follower caught up: expand soon */
    int64_t isr_changed_ms;        /* now_ms of the last ISR change (under log_lock) */
    /* Cluster mode: the version of the partition state znode this
     * leadership came from, which an ISR change by this leader must name
     * (set by the composition with each state it applies; -1 before). */
    _Atomic int32_t state_version;
    pthread_mutex_t wait_mu;
    struct partition_waiter waiters; /* sentinel */
    atomic_int n_waiters;            /* lets appends skip wait_mu when nobody waits */
};

/* Opens the log in `dir`; this broker (node_id) leads it, alone. */
struct partition *partition_open(struct topic *t, int32_t index, const char *dir,
                                 const struct plog_config *cfg, int32_t node_id, bool clean,
                                 char *err, size_t errlen);
/* A partition this broker holds no replica of (cluster mode): no log, no
 * directory; leader unknown (-1) until the cluster's state says. */
struct partition *partition_open_remote(struct topic *t, int32_t index, int32_t node_id);
/* Cluster mode: a partition just opened leads nothing (leader unknown)
 * until the cluster's state for it is applied with become_leader or
 * become_follower, so it never takes an append as the sole replica of a
 * replicated partition. */
void partition_await_state(struct partition *p);
/* Closes the log (flushing when asked) and frees. */
void partition_free(struct partition *p, bool flush);
/* Closes the log and deletes its files; the struct lives on until freed. */
void partition_drop_log(struct partition *p);

/* ---- leadership and the high watermark ---- */

/*
 * Kafka's rule (Partition.localLogWithEpochOrThrow) for a request to the
 * leader: unless current_leader_epoch is -1 (or any negative: no check;
 * old request versions send it, and so does the broker itself),
 * FENCED_LEADER_EPOCH when it is older than ours (the client's metadata
 * is stale) and UNKNOWN_LEADER_EPOCH when newer (ours is); then
 * NOT_LEADER_OR_FOLLOWER when this broker does not lead the partition.
 * KERR_NONE otherwise.  Takes no lock (see the leadership fields); the
 * functions below call it under log_lock.
 */
int16_t partition_check_leader(const struct partition *p, int32_t current_leader_epoch);

/*
 * Moves the high watermark forward to `hw` (never back) and wakes the
 * waiters when it moved.  The one place it changes: today
 * partition_append calls it with the new log end while the ISR is this
 * broker alone; replication will call it with the minimum log end of
 * the ISR, once followers report their fetch positions.
 */
void partition_advance_hw(struct partition *p, int64_t hw);

/* Lock-free: the high watermark, also of a deleted partition (its last). */
static inline int64_t partition_hw(struct partition *p)
{
    /* seq_cst: pairs with n_waiters in partition_advance_hw (see there). */
    return atomic_load(&p->high_watermark);
}

/*
 * A copy of the leadership fields, consistent (taken under log_lock).
 * The fields themselves change under log_lock exclusive; readers that
 * may run while they change (Metadata in a cluster) use this.
 */
struct partition_leadership {
    int32_t leader_id, leader_epoch;
    int32_t n_replicas, n_isr;
    int32_t replicas[PARTITION_MAX_REPLICAS];
    int32_t isr[PARTITION_MAX_REPLICAS];
};
void partition_leadership(struct partition *p, struct partition_leadership *out);

/*
 * This broker leads the partition from `leader_epoch` with these
 * replicas and ISR (each at most PARTITION_MAX_REPLICAS; the ISR should
 * hold this broker).  A newer epoch starts at the log end
 * (plog_begin_epoch) and resets what is known of the followers (log end
 * unknown; those in the ISR count as caught up now); the same epoch
 * only takes the new replicas and ISR (a state update).  The high
 * watermark is kept: it advances as followers report.  Wakes every
 * waiter.  KERR_NONE, KERR_FENCED_LEADER_EPOCH (older than the epoch
 * held), UNKNOWN_TOPIC_OR_PARTITION (no log here), INVALID_REQUEST (too
 * many replicas) or KAFKA_STORAGE_ERROR (the epoch checkpoint).
 */
int16_t partition_become_leader(struct partition *p, int32_t leader_epoch, const int32_t *replicas,
                                int32_t n_replicas, const int32_t *isr, int32_t n_isr,
                                int64_t now_ms);
/*
 * `leader_id` (-1: none known) leads from `leader_epoch`: appends are
 * refused (NOT_LEADER_OR_FOLLOWER) from now on, waiting acks=all
 * produces are answered NOT_LEADER_OR_FOLLOWER, fetch waiters are woken.
 * Nothing is truncated (the fetcher truncates by epoch).  Also for a
 * partition this broker holds no replica of (only the fields change).
 * KERR_NONE, KERR_FENCED_LEADER_EPOCH (older than held) or
 * INVALID_REQUEST (too many replicas).
 */
int16_t partition_become_follower(struct partition *p, int32_t leader_id, int32_t leader_epoch,
                                  const int32_t *replicas, int32_t n_replicas, const int32_t *isr,
                                  int32_t n_isr);

/*
 * Writes an ISR change of a partition this broker leads to the cluster
 * state (the partition state znode, conditional on its version), and
 * blocks until done.  0: written (the partition applies it), 1: a
 * conflict (the state moved: the partition leaves its ISR as is and the
 * new state will come through become_leader/follower), -1: failed.
 */
typedef int (*partition_isr_writer_fn)(void *arg, struct partition *p, int32_t leader_epoch,
                                       const int32_t *isr, int32_t n_isr);
/* Called (from a network thread, cheaply, never blocking) when a follower
 * caught up and could join the ISR: partition_isr_maintain should run soon. */
typedef void (*partition_isr_notify_fn)(void *arg, struct partition *p);
/* Process-wide, set once at start before any partition is replicated. */
void partition_set_isr_writer(partition_isr_writer_fn fn, void *arg);
void partition_set_isr_notify(partition_isr_notify_fn fn, void *arg);

/*
 * ISR maintenance, from a thread that may block (not a network thread):
 * every lag_max_ms / 2, and when notified.  When this broker leads:
 * drops from the ISR the followers not caught up within lag_max_ms
 * (replica.lag.time.max.ms), adds those whose log end reached the high
 * watermark and the start of the current epoch, writes the new ISR
 * through the writer (outside log_lock) and applies it when written (0).
 * Then the high watermark is recomputed and waiters woken.  Returns 1
 * when the ISR changed, 0 when nothing was to change (or no writer, or
 * not leader), -1 when the write failed or conflicted.
 */
int partition_isr_maintain(struct partition *p, int64_t now_ms, int64_t lag_max_ms);

/*
 * The high watermark checkpoint of a replicated partition (`high-watermark`
 * file): from the main thread's periodic work every
 * replica.high.watermark.checkpoint.interval.ms, and at partition_free
 * with flush.  No-op for a single-node partition.  KERR_NONE,
 * UNKNOWN_TOPIC_OR_PARTITION or KAFKA_STORAGE_ERROR.
 */
int16_t partition_checkpoint_hw(struct partition *p);

/*
 * OffsetForLeaderEpoch for one partition (Kafka's
 * Partition.lastOffsetForLeaderEpoch): current_leader_epoch is checked
 * like a read's (leader only unless `any_replica`, as for replica_id -2
 * debug requests), then plog_end_offset_for_epoch answers (-1, -1 for an
 * unknown epoch).  KERR_NONE, a leadership error or
 * UNKNOWN_TOPIC_OR_PARTITION.
 */
int16_t partition_end_offset_for_epoch(struct partition *p, int32_t current_leader_epoch,
                                       int32_t epoch, bool any_replica, int32_t *out_epoch,
                                       int64_t *end_offset);

/* ---- produce ---- */

/* What an append assigned (storage/plog.h). */
typedef struct plog_append_result partition_append_result_t;

/*
 * Appends batches (modified in place, see plog_append) when this broker
 * leads the partition, then advances the high watermark, which wakes the
 * waiters.  Returns a Kafka error: KERR_NONE, NOT_LEADER_OR_FOLLOWER,
 * UNKNOWN_TOPIC_OR_PARTITION (deleted meanwhile) or what
 * kerr_from_append says of the log's refusal.  The hot path: one shared
 * lock, the log's append, an atomic, a wake only when someone waits.
 */
int16_t partition_append(struct partition *p, uint8_t *batches, size_t len, int64_t now_ms,
                         partition_append_result_t *res);
/* The same, also saying the leader epoch the batches were appended in
 * (for partition_ack_check). */
int16_t partition_append_epoch(struct partition *p, uint8_t *batches, size_t len, int64_t now_ms,
                               partition_append_result_t *res, int32_t *leader_epoch);

/*
 * acks=all: where a produce stands that appended up to `end` (its last
 * offset + 1) in `leader_epoch` and needs `min_isr` replicas in sync.
 * KERR_NONE with *wait false: acknowledged (the high watermark passed
 * it); with *wait true: still waiting (watch the partition and call
 * again when woken).  NOT_LEADER_OR_FOLLOWER: the leadership moved
 * meanwhile; NOT_ENOUGH_REPLICAS_AFTER_APPEND: the ISR shrank below
 * min_isr; UNKNOWN_TOPIC_OR_PARTITION: deleted.  Lock-free when the high
 * watermark already passed (the single-node case).
 */
int16_t partition_ack_check(struct partition *p, int32_t leader_epoch, int64_t end, int32_t min_isr,
                            bool *wait);

/* ---- fetch ---- */

/* Kafka's isolation_level values. */
enum partition_isolation {
    PARTITION_READ_UNCOMMITTED = 0,
    PARTITION_READ_COMMITTED = 1, /* below the last stable offset */
};

/* Who reads, which decides the bound and whether only the leader serves. */
enum partition_reader {
    PARTITION_READER_CONSUMER, /* replica_id -1: the leader, below the HW (or the LSO) */
    PARTITION_READER_FOLLOWER, /* replica_id >= 0: the leader, up to the log end */
    PARTITION_READER_DEBUG,    /* replica_id -2, the admin API: any replica, below the HW */
    PARTITION_READER_LOCAL,    /* the broker's own scans: any replica, up to the log end */
};

/* The reader kind a Fetch or ListOffsets replica_id names. */
enum partition_reader partition_reader_of(int32_t replica_id);

/*
 * One read.  The bound is the reader's: the high watermark (consumers,
 * debug; with READ_COMMITTED the last stable offset, which without
 * transactions is the high watermark) or the log end (followers, local).
 */
struct partition_read {
    /* In. */
    int64_t offset;
    int32_t max_bytes;  /* whole batches up to this, at least one; 0: offsets only */
    int64_t max_offset; /* -1, or an extra exclusive bound (a scan that keeps its first HW) */
    int32_t current_leader_epoch; /* -1: no epoch check */
    enum partition_reader reader;
    enum partition_isolation isolation;
    /* Followers only (reader FOLLOWER): who fetches, the epoch of its
     * last batch (-1: none, or a Fetch before v12), and the time. */
    int32_t replica_id;
    int32_t last_fetched_epoch;
    int64_t now_ms;
    /* Out, followers: the diverging epoch (KIP-320) when the follower's
     * log diverged from ours (no records then); -1, -1 otherwise. */
    int32_t diverging_epoch;
    int64_t diverging_end_offset;
    /* Out: -1 until the leadership check passed and the log was there. */
    int64_t high_watermark;
    int64_t last_stable_offset;
    int64_t log_start_offset;
    /* The records: a range of one segment file, which stays readable
     * until partition_range_release(ref) (meant for krecords_t.release).
     * fd -1 and len 0 when there is nothing (ref may still need release). */
    int fd;
    int64_t file_pos;
    int32_t len;
    void *ref;
};

/*
 * Finds whole batches from the one holding rd->offset, as plog_read
 * does, without copying anything.  Returns KERR_NONE (maybe with no
 * records: at the bound, or max_bytes 0), FENCED_LEADER_EPOCH /
 * UNKNOWN_LEADER_EPOCH / NOT_LEADER_OR_FOLLOWER (partition_check_leader;
 * debug and local readers read any replica, so only the epoch is
 * checked for them), UNKNOWN_TOPIC_OR_PARTITION (deleted),
 * OFFSET_OUT_OF_RANGE (below
 * the log start or past the bound) or KAFKA_STORAGE_ERROR.  The hot
 * path: one shared lock, no allocation.  A follower's read also records
 * its fetch offset as its log end (Kafka's updateFollowerFetchState),
 * which may advance the high watermark, unless its log diverged
 * (rd->diverging_epoch >= 0); NOT_LEADER_OR_FOLLOWER for a replica_id
 * that is not one of the partition's replicas.
 */
int16_t partition_read(struct partition *p, struct partition_read *rd);
void partition_range_release(void *ref);

/* ---- offsets ---- */

struct partition_offsets {
    int64_t log_start;
    int64_t high_watermark;
    int64_t last_stable; /* the high watermark until there are transactions */
    int64_t log_end;     /* the next offset the log assigns */
    int32_t leader_epoch;
};
/* All at one moment.  KERR_NONE or UNKNOWN_TOPIC_OR_PARTITION. */
int16_t partition_offsets(struct partition *p, struct partition_offsets *o);

/* The first offset whose batch's newest record is at or after ts
 * (plog_offset_for_time): *offset -1 when none is that recent.
 * KERR_NONE, UNKNOWN_TOPIC_OR_PARTITION or KAFKA_STORAGE_ERROR. */
int16_t partition_offset_for_time(struct partition *p, int64_t ts, int64_t *offset,
                                  int64_t *found_ts);

/*
 * ListOffsets for one partition: timestamp -1 (latest: the reader's
 * bound), -2 (earliest: the log start), -3 (the record with the largest
 * timestamp) or >= 0 (the first offset whose batch reaches that time,
 * *offset -1 when none).  After partition_check_leader; *leader_epoch is
 * the partition's.  KERR_NONE, a leadership error,
 * UNKNOWN_TOPIC_OR_PARTITION, INVALID_REQUEST (another negative
 * timestamp) or KAFKA_STORAGE_ERROR.
 */
int16_t partition_list_offset(struct partition *p, int64_t timestamp, int32_t current_leader_epoch,
                              enum partition_reader reader, enum partition_isolation isolation,
                              int64_t *offset, int64_t *found_timestamp, int32_t *leader_epoch);

/*
 * DeleteRecords: moves the log start to `offset` (-1: the high
 * watermark), durably.  *low_watermark is the new log start.  KERR_NONE,
 * NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION, OFFSET_OUT_OF_RANGE
 * (past the high watermark) or KAFKA_STORAGE_ERROR.
 */
int16_t partition_delete_records(struct partition *p, int64_t offset, int64_t *low_watermark);

/* ---- durability, retention, compaction, configuration ---- */

/* fsyncs what is unflushed.  KERR_NONE, UNKNOWN_TOPIC_OR_PARTITION
 * (nothing left to make durable) or KAFKA_STORAGE_ERROR. */
int16_t partition_flush(struct partition *p);
/* flush.messages / flush.ms say it is time (false once deleted). */
bool partition_flush_due(struct partition *p, int64_t now_ms);
/* The periodic work: retention when asked (returns the segments it
 * deleted), then a flush when flush.ms / flush.messages are due. */
int partition_housekeep(struct partition *p, int64_t now_ms, bool retention);

/* A clean's request and figures (storage/plog.h). */
typedef struct plog_clean_stats partition_clean_stats_t;
/* Compacts when the dirty ratio says so (plog_clean).  KERR_NONE,
 * UNKNOWN_TOPIC_OR_PARTITION, KAFKA_STORAGE_ERROR, or CORRUPT_MESSAGE (a
 * batch on disk is unreadable: the partition cannot be cleaned). */
int16_t partition_clean(struct partition *p, int64_t now_ms, partition_clean_stats_t *st);

/* New topic configs (AlterConfigs), at once. */
void partition_set_config(struct partition *p, const struct plog_config *cfg);

struct partition_stats {
    int64_t log_start, high_watermark, log_end;
    int64_t flushed; /* every offset below is fsynced */
    int64_t size_bytes;
    int32_t segments, leader_epoch;
};
/* For the admin API.  KERR_NONE or UNKNOWN_TOPIC_OR_PARTITION. */
int16_t partition_stats(struct partition *p, struct partition_stats *st);

/* ---- the key index (key.index; broker/keyindexer.c, key_lookup.c) ---- */

/* Indexes what was appended since the last call (keyindex_sync): bytes
 * of log indexed, 0 when deleted, or -1 when the log could not be read. */
int64_t partition_key_index_sync(struct partition *p);
/* Writes the file of one sealed segment that lacks it: 1 when it wrote
 * one (call again), 0 when none is missing or deleted, -1 on error. */
int partition_key_index_rebuild_one(struct partition *p);
/* key.index is off: deletes the index files.  True when it deleted the
 * files of a live index (worth a log line); otherwise it removes what an
 * earlier run may have left (cheap when nothing is there). */
bool partition_key_index_drop(struct partition *p);
/* Every record of `key` since since_ms (keyindex_find).  KERR_NONE,
 * UNKNOWN_TOPIC_OR_PARTITION or KAFKA_STORAGE_ERROR. */
int16_t partition_key_find(struct partition *p, const void *key, size_t len, int64_t since_ms,
                           keyindex_found_fn fn, void *arg);

/* ---- waiting for data ---- */

void partition_watch(struct partition *p, struct partition_waiter *w);
void partition_unwatch(struct partition *p, struct partition_waiter *w);

/* ---- cluster state of a partition (cluster mode) ---- */
/* The Kafka error for a refusal of plog_append (also for the same
 * checks made before an append: delivery/intake.c). */
int16_t kerr_from_append(int rc);

#endif
