/*
 * delivery: RocketMQ's held-back records on the Kafka produce path
 * (docs/delivery.md): delayed and scheduled records, retries with backoff
 * then a dead-letter topic, transactional half messages with check-back.
 *
 * The produce handler calls delivery_produce() instead of appending
 * directly for topics whose message.type asks for it and for retry topics
 * (delivery_wants); every other topic never comes here.  Held-back
 * records wait in the timer store (timer/timer_store.h); one thread
 * (release.c) releases them when due and sends check-backs.
 *
 *   headers.c   reading and rewriting the runnel-* control headers
 *   intake.c    what produce does with each record of such a topic
 *   release.c   the timer thread, exactly-once release, check-backs
 *
 * Threads and locks: delivery_produce runs on the network threads; the
 * timer thread is the only other one.  Every release into a partition
 * (timer thread, or a commit on a network thread) holds release_mu, so
 * the store's single intent slot is never shared (release.c).
 */
#ifndef RUNNEL_DELIVERY_H
#define RUNNEL_DELIVERY_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/config.h"
#include "broker/topics.h"
#include "broker/system_topics.h"
#include "timer/timer_store.h"

/* Opens the timer store, settles an intent left by a crash, starts the
 * timer thread.  After topics_open. */
int delivery_start(const struct broker_config *cfg, char *err, size_t errlen);
/* Stops the thread and closes the store (fsynced). */
void delivery_stop(void);

/* The store, for the admin views (NULL before start). */
struct timer_store *delivery_store(void);

static inline bool delivery_wants(const struct topic *t)
{
    return topic_settings(t)->message_type != 0 || t->systopic == SYSTOPIC_RETRY;
}

/* What delivery_produce did with one partition's records. */
struct delivery_outcome {
    int16_t error_code;       /* Kafka error; nothing of the batch is kept unless 0 */
    int32_t bad_record;       /* index of the offending record, or -1 */
    char message[256];        /* for the response's error_message ("" when none) */
    int64_t base_offset;      /* -1 when any record was held back */
    int64_t log_append_time;  /* -1 unless appended with LogAppendTime */
    int64_t log_start_offset; /* -1 unless appended */
    bool appended;            /* something went to `p`: the flush check applies */
};

/* Handles the records a producer sent to partition p of t (a topic for
 * which delivery_wants is true). */
void delivery_produce(struct topic *t, struct partition *p, uint8_t *records, size_t len,
                      int64_t now_ms, struct delivery_outcome *out);

#endif
