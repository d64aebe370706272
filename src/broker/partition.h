/*
 * partition: the broker's state for one partition.
 *
 * Every access to a partition's log goes through here, so that the high
 * watermark, the leader epoch and the waiters woken by new data stay in
 * one place (replication will move the high watermark below the log end;
 * today, with one replica, it follows the log end after every append).
 *
 * Locks: `log_lock` (rwlock) guards the `log` pointer: appends and reads
 * take it shared (plog has its own mutex inside), topic deletion takes
 * it exclusive to close the log.  `wait_mu` guards the waiter list.
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

/* A fetch (or anything else) waiting for data on a partition. */
struct partition_waiter {
    struct partition_waiter *prev, *next;
    struct loop_wake *wake; /* woken after every append */
};

struct partition {
    struct topic *topic;
    int32_t index;
    char *dir;
    pthread_rwlock_t log_lock;
    struct plog *log; /* NULL once the topic is deleted */
    /* Lookups by key (key.index): used, like log, under log_lock shared
     * with log non-NULL; empty until the indexer thread syncs it. */
    struct keyindex *kidx;
    int32_t leader_epoch;
    _Atomic int64_t high_watermark;
    pthread_mutex_t wait_mu;
    struct partition_waiter waiters; /* sentinel */
    atomic_int n_waiters;            /* lets appends skip wait_mu when nobody waits */
};

struct partition *partition_open(struct topic *t, int32_t index, const char *dir,
                                 const struct plog_config *cfg, bool clean, char *err,
                                 size_t errlen);
/* Closes the log (flushing when asked) and frees. */
void partition_free(struct partition *p, bool flush);
/* Closes the log and deletes its files; the struct lives on until freed. */
void partition_drop_log(struct partition *p);

/*
 * Appends batches (modified in place, see plog_append), advances the
 * high watermark and wakes the waiters.  Returns a plog_err; -100 when
 * the topic was deleted meanwhile.
 */
int partition_append(struct partition *p, uint8_t *batches, size_t len, int64_t now_ms,
                     struct plog_append_result *res);

void partition_watch(struct partition *p, struct partition_waiter *w);
void partition_unwatch(struct partition *p, struct partition_waiter *w);

static inline int64_t partition_hw(struct partition *p)
{
    /* seq_cst: pairs with n_waiters in partition_append (see there). */
    return atomic_load(&p->high_watermark);
}

#define PARTITION_DELETED (-100)

/* The Kafka error for a failed partition_append: a plog_err, or
 * PARTITION_DELETED when the topic went meanwhile. */
int16_t kerr_from_append(int rc);

#endif
