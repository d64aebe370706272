/*
 * The follower's doors on a partition (partition_follower.h): appends of
 * the leader's batches, truncations, and the positions a Fetch names.
 */
#include "broker/partition_follower.h"

#include "broker/partition_int.h"
#include "common/kerr.h"

/*
 * After a truncation the high watermark may be above the new log end: it
 * comes down to it, as Kafka's truncateTo lowers a follower's.  The one
 * place it moves back; only a follower's log is ever truncated, and its
 * high watermark serves no consumer (partition_check_leader).
 */
static void lower_hw(struct partition *p, int64_t end)
{
    int64_t cur = atomic_load(&p->high_watermark);
    while (cur > end && !atomic_compare_exchange_weak(&p->high_watermark, &cur, end))
        ;
}

int16_t partition_append_follower(struct partition *p, const uint8_t *batches, size_t len,
                                  int64_t leader_hw, int64_t leader_log_start)
{
    pthread_rwlock_rdlock(&p->log_lock);
    if (!p->log) {
        pthread_rwlock_unlock(&p->log_lock);
        return KERR_UNKNOWN_TOPIC_OR_PARTITION;
    }
    int16_t err = KERR_NONE;
    if (len > 0) {
        struct plog_append_result res;
        int rc = plog_append_follower(p->log, batches, len, &res);
        /* Below the log end: the fetcher's to resolve (it truncates). */
        if (rc == PLOG_ERR_OFFSET)
            err = KERR_OFFSET_OUT_OF_RANGE;
        else if (rc != PLOG_OK)
            err = kerr_from_append(rc);
    }
    if (err == KERR_NONE) {
        int64_t end = plog_log_end(p->log);
        /* The leader's log start moved (retention, DeleteRecords): ours
         * follows, as Kafka's follower does with the fetch response's. */
        if (leader_log_start > plog_log_start(p->log)) {
            int64_t start;
            int rc = plog_delete_records(p->log, leader_log_start < end ? leader_log_start : end,
                                         &start);
            if (rc != PLOG_OK)
                err = partition_kerr_from_log(rc);
        }
        if (leader_hw >= 0)
            partition_advance_hw(p, leader_hw < end ? leader_hw : end);
    }
    pthread_rwlock_unlock(&p->log_lock);
    return err;
}

static int16_t truncate_log(struct partition *p, int64_t offset, bool full)
{
    pthread_rwlock_rdlock(&p->log_lock);
    if (!p->log) {
        pthread_rwlock_unlock(&p->log_lock);
        return KERR_UNKNOWN_TOPIC_OR_PARTITION;
    }
    int rc =
        full ? plog_truncate_fully_and_start_at(p->log, offset) : plog_truncate_to(p->log, offset);
    int64_t end = plog_log_end(p->log);
    lower_hw(p, end);
    if (full)
        partition_advance_hw(p, end);
    pthread_rwlock_unlock(&p->log_lock);
    /* A fetch waiting here re-reads and finds the log shorter. */
    partition_wake_waiters(p);
    return partition_kerr_from_log(rc);
}

int16_t partition_truncate_to(struct partition *p, int64_t offset)
{
    return truncate_log(p, offset, false);
}

int16_t partition_truncate_fully(struct partition *p, int64_t start_offset)
{
    return truncate_log(p, start_offset, true);
}

int16_t partition_fetch_position(struct partition *p, int64_t *log_end, int32_t *last_epoch)
{
    pthread_rwlock_rdlock(&p->log_lock);
    int16_t err = KERR_UNKNOWN_TOPIC_OR_PARTITION;
    if (p->log) {
        *log_end = plog_log_end(p->log);
        *last_epoch = plog_leader_epoch(p->log);
        err = KERR_NONE;
    }
    pthread_rwlock_unlock(&p->log_lock);
    return err;
}
