/*
 * partition_follower: the doors a follower's fetcher (replica/) uses on a
 * partition it replicates from a leader elsewhere.
 *
 * Same rules as partition.h: every function takes the partition's
 * log_lock shared (plog serialises appends and truncations itself:
 * plog_truncate_* hold its swap, flush and state mutexes, so no append,
 * flush or clean runs beside one), answers a deleted partition (or one
 * this broker holds no replica of) with UNKNOWN_TOPIC_OR_PARTITION, and
 * returns Kafka error codes (common/kerr.h).
 *
 * None of them looks at the partition's leadership fields: which leader
 * a partition follows is the fetcher's business (replica_follow), and the
 * composition decides it from the cluster's state.
 *
 * The key index needs nothing after a truncation: it compares the log's
 * truncation generation on every sync and lookup and drops what it held
 * of the segments that were cut (storage/keyindex.c, reconcile).
 */
#ifndef RUNNEL_PARTITION_FOLLOWER_H
#define RUNNEL_PARTITION_FOLLOWER_H

#include <stddef.h>
#include <stdint.h>

#include "broker/partition.h"

/*
 * Appends batches fetched from the leader unchanged (plog_append_follower;
 * len 0 appends nothing), then moves the high watermark to
 * min(leader_hw, own log end) and the log start up to leader_log_start
 * when the leader's is higher (never past the own log end).  KERR_NONE,
 * UNKNOWN_TOPIC_OR_PARTITION, KERR_OFFSET_OUT_OF_RANGE when the first
 * batch starts below the log end (the follower must truncate first:
 * PLOG_ERR_OFFSET), or what kerr_from_append says of another refusal.
 */
int16_t partition_append_follower(struct partition *p, const uint8_t *batches, size_t len,
                                  int64_t leader_hw, int64_t leader_log_start);

/* plog_truncate_to: the log ends at `offset` (or the base of the batch
 * holding it); the high watermark comes down to the new log end when it
 * was above.  Wakes the partition's waiters.  KERR_NONE,
 * UNKNOWN_TOPIC_OR_PARTITION, OFFSET_OUT_OF_RANGE (offset < 0) or
 * KAFKA_STORAGE_ERROR. */
int16_t partition_truncate_to(struct partition *p, int64_t offset);

/* plog_truncate_fully_and_start_at: empty, log start = log end =
 * start_offset, high watermark there too.  Wakes the waiters.  Errors as
 * partition_truncate_to. */
int16_t partition_truncate_fully(struct partition *p, int64_t start_offset);

/* What a follower's Fetch names: the log end (fetch_offset) and the
 * latest epoch of the log (last_fetched_epoch, -1 when none).
 * KERR_NONE or UNKNOWN_TOPIC_OR_PARTITION. */
int16_t partition_fetch_position(struct partition *p, int64_t *log_end, int32_t *last_epoch);

/* A follower's own end offset for an epoch: partition_end_offset_for_epoch
 * (partition.h) with no epoch check, on any replica. */

#endif
