#include "broker/partition.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fsutil.h"
#include "common/kerr.h"
#include "common/rlog.h"

struct partition *partition_open(struct topic *t, int32_t index, const char *dir,
                                 const struct plog_config *cfg, bool clean, char *err,
                                 size_t errlen)
{
    struct partition *p = calloc(1, sizeof *p);
    if (!p || !(p->dir = strdup(dir)) || !(p->kidx = keyindex_new())) {
        if (p)
            free(p->dir);
        free(p);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (plog_open(dir, cfg, clean, &p->log, err, errlen)) {
        keyindex_free(p->kidx);
        free(p->dir);
        free(p);
        return NULL;
    }
    p->topic = t;
    p->index = index;
    p->leader_epoch = plog_leader_epoch(p->log);
    if (p->leader_epoch < 0) {
        /* A new partition: this broker leads it from epoch 0. */
        p->leader_epoch = 0;
        if (plog_begin_epoch(p->log, 0)) {
            snprintf(err, errlen, "%s: cannot write the leader epoch checkpoint", dir);
            plog_close(p->log, false);
            keyindex_free(p->kidx);
            free(p->dir);
            free(p);
            return NULL;
        }
    }
    /* One replica: everything in the log is committed. */
    atomic_store(&p->high_watermark, plog_log_end(p->log));
    pthread_rwlock_init(&p->log_lock, NULL);
    pthread_mutex_init(&p->wait_mu, NULL);
    p->waiters.next = p->waiters.prev = &p->waiters;
    return p;
}

void partition_free(struct partition *p, bool flush)
{
    if (!p)
        return;
    /* The index holds references to segments: dropped before the log. */
    keyindex_free(p->kidx);
    if (p->log)
        plog_close(p->log, flush);
    pthread_rwlock_destroy(&p->log_lock);
    pthread_mutex_destroy(&p->wait_mu);
    free(p->dir);
    free(p);
}

void partition_drop_log(struct partition *p)
{
    pthread_rwlock_wrlock(&p->log_lock);
    struct plog *l = p->log;
    p->log = NULL;
    pthread_rwlock_unlock(&p->log_lock);
    /* The directory is the partition's alone: whatever the log did not
     * remove (a file it did not know of) goes with it. */
    /* No indexer or lookup uses the index without the log (log_lock). */
    keyindex_reset(p->kidx, false);
    if ((l && plog_destroy(l)) || fsutil_rm_rf(p->dir))
        rlog_warn("partition %s: could not delete all files", p->dir);
    /* Waiters re-check and find the partition gone. */
    pthread_mutex_lock(&p->wait_mu);
    for (struct partition_waiter *w = p->waiters.next; w != &p->waiters; w = w->next)
        loop_wake(w->wake);
    pthread_mutex_unlock(&p->wait_mu);
}

int partition_append(struct partition *p, uint8_t *batches, size_t len, int64_t now_ms,
                     struct plog_append_result *res)
{
    pthread_rwlock_rdlock(&p->log_lock);
    if (!p->log) {
        pthread_rwlock_unlock(&p->log_lock);
        return PARTITION_DELETED;
    }
    int rc = plog_append(p->log, batches, len, p->leader_epoch, now_ms, res);
    if (rc == PLOG_OK) {
        /* Appends to one partition are serialised inside plog, but two
         * threads may return here out of order: only move forward. */
        int64_t leo = res->last_offset + 1;
        int64_t cur = atomic_load(&p->high_watermark);
        while (cur < leo && !atomic_compare_exchange_strong(&p->high_watermark, &cur, leo))
            ;
    }
    pthread_rwlock_unlock(&p->log_lock);
    /*
     * The high watermark was stored (seq_cst) before n_waiters is read; a
     * fetch increments n_waiters before its second look at the high
     * watermark.  So either we see its watch and wake it, or it sees our
     * data: skipping the mutex when nobody waits loses no wake-up.
     */
    if (rc == PLOG_OK && atomic_load(&p->n_waiters) > 0) {
        pthread_mutex_lock(&p->wait_mu);
        for (struct partition_waiter *w = p->waiters.next; w != &p->waiters; w = w->next)
            loop_wake(w->wake);
        pthread_mutex_unlock(&p->wait_mu);
    }
    return rc;
}

void partition_watch(struct partition *p, struct partition_waiter *w)
{
    pthread_mutex_lock(&p->wait_mu);
    w->next = &p->waiters;
    w->prev = p->waiters.prev;
    p->waiters.prev->next = w;
    p->waiters.prev = w;
    atomic_fetch_add(&p->n_waiters, 1);
    pthread_mutex_unlock(&p->wait_mu);
}

void partition_unwatch(struct partition *p, struct partition_waiter *w)
{
    pthread_mutex_lock(&p->wait_mu);
    if (w->next) {
        w->prev->next = w->next;
        w->next->prev = w->prev;
        w->next = w->prev = NULL;
        atomic_fetch_sub(&p->n_waiters, 1);
    }
    pthread_mutex_unlock(&p->wait_mu);
}

int16_t kerr_from_append(int rc)
{
    switch (rc) {
    case PLOG_OK:
        return KERR_NONE;
    case PLOG_ERR_CORRUPT:
        return KERR_CORRUPT_MESSAGE;
    case PLOG_ERR_INVALID:
        return KERR_INVALID_RECORD;
    case PLOG_ERR_TOO_LARGE:
        return KERR_MESSAGE_TOO_LARGE;
    case PLOG_ERR_UNSUPPORTED:
        return KERR_UNSUPPORTED_FOR_MESSAGE_FORMAT;
    case PARTITION_DELETED:
        return KERR_UNKNOWN_TOPIC_OR_PARTITION;
    default:
        return KERR_KAFKA_STORAGE_ERROR;
    }
}
