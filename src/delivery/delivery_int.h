/* What intake.c and release.c share (not for other modules). */
#ifndef RUNNEL_DELIVERY_INT_H
#define RUNNEL_DELIVERY_INT_H

#include "delivery/delivery.h"
#include "storage/batch.h"

struct delivery_globals {
    struct timer_store *ts;
    int64_t levels_ms[CONFIG_MAX_STEPS]; /* delay.levels */
    int n_levels;
    int64_t delay_max_ms;
    int64_t half_timeout_ms;
    int64_t half_interval_ms;
    int half_max;
    int64_t flush_interval_ms;
};
extern struct delivery_globals dv;

/* release_to_partition's outcomes. */
#define RELEASE_OK 0
#define RELEASE_GONE (-1)      /* the target topic or partition no longer exists */
#define RELEASE_FAILED (-2)    /* the append failed (storage): try again later */
#define RELEASE_TOO_LARGE (-3) /* a record alone exceeds the topic's max.message.bytes */

/*
 * Appends entries that all target one topic and partition, in the given
 * order, exactly once (intent, append, mark done), in as few batches as
 * the topic's max.message.bytes allows.  *released counts the entries
 * appended and marked done (all of them on RELEASE_OK); on an error the
 * rest are untouched, es[*released] first among them (alone the cause
 * when RELEASE_TOO_LARGE).
 */
int release_to_partition(struct timer_entry *es, int n, int64_t now_ms, int *released);

/* Tells the timer thread an entry is due at due_ms (wakes it if earlier
 * than it planned). */
void release_notify(int64_t due_ms);

/*
 * Appends a built batch to partition `index` (modulo the partition count)
 * of topic `name`, creating it when it is one of the broker's own topics;
 * fsyncs when the topic asks for flush.sync.  A Kafka error (that of
 * partition_append), UNKNOWN_SERVER_ERROR when the topic cannot be had.
 */
int16_t append_batch_to(const char *name, size_t len, int32_t index, uint8_t *batch,
                        size_t batch_len, int64_t now_ms, partition_append_result_t *res);

/* Record view of an entry, for batch_builder_add_record. */
void entry_as_record(const struct timer_entry *e, int32_t offset_delta, struct batch_record *rec);

#endif
