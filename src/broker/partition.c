#include "broker/partition.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fsutil.h"
#include "common/kerr.h"
#include "common/rlog.h"

static void partition_release(struct partition *p)
{
    keyindex_free(p->kidx);
    free(p->replicas);
    free(p->isr);
    free(p->dir);
    free(p);
}

static void init_sync(struct partition *p)
{
    pthread_rwlock_init(&p->log_lock, NULL);
    pthread_mutex_init(&p->wait_mu, NULL);
    p->waiters.next = p->waiters.prev = &p->waiters;
}

struct partition *partition_open(struct topic *t, int32_t index, const char *dir,
                                 const struct plog_config *cfg, int32_t node_id, bool clean,
                                 char *err, size_t errlen)
{
    struct partition *p = calloc(1, sizeof *p);
    if (!p || !(p->dir = strdup(dir)) || !(p->kidx = keyindex_new()) ||
        !(p->replicas = malloc(sizeof *p->replicas)) || !(p->isr = malloc(sizeof *p->isr))) {
        if (p)
            partition_release(p);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (plog_open(dir, cfg, clean, &p->log, err, errlen)) {
        partition_release(p);
        return NULL;
    }
    p->topic = t;
    p->index = index;
    /* One broker: it is the partition's only replica, in sync and leader. */
    p->node_id = p->leader_id = node_id;
    p->replicas[0] = p->isr[0] = node_id;
    p->n_replicas = p->n_isr = 1;
    p->leader_epoch = plog_leader_epoch(p->log);
    if (p->leader_epoch < 0) {
        /* A new partition: this broker leads it from epoch 0. */
        p->leader_epoch = 0;
        if (plog_begin_epoch(p->log, 0)) {
            snprintf(err, errlen, "%s: cannot write the leader epoch checkpoint", dir);
            plog_close(p->log, false);
            partition_release(p);
            return NULL;
        }
    }
    /* The whole ISR has everything in the log: it is all committed. */
    atomic_store(&p->high_watermark, plog_log_end(p->log));
    p->is_replica = true;
    init_sync(p);
    return p;
}

struct partition *partition_open_remote(struct topic *t, int32_t index, int32_t node_id)
{
    struct partition *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->topic = t;
    p->index = index;
    p->node_id = node_id;
    p->leader_id = -1;
    p->leader_epoch = -1;
    atomic_store(&p->high_watermark, -1);
    init_sync(p);
    return p;
}

void partition_free(struct partition *p, bool flush)
{
    if (!p)
        return;
    /* The index holds references to segments: dropped before the log. */
    keyindex_free(p->kidx);
    p->kidx = NULL;
    if (p->log)
        plog_close(p->log, flush);
    pthread_rwlock_destroy(&p->log_lock);
    pthread_mutex_destroy(&p->wait_mu);
    partition_release(p);
}

/* The Kafka error for a failed read or other log call (not appends). */
static int16_t kerr_from_log(int rc)
{
    if (rc >= 0)
        return KERR_NONE;
    return rc == PLOG_ERR_OUT_OF_RANGE ? KERR_OFFSET_OUT_OF_RANGE : KERR_KAFKA_STORAGE_ERROR;
}

static void wake_waiters(struct partition *p)
{
    pthread_mutex_lock(&p->wait_mu);
    for (struct partition_waiter *w = p->waiters.next; w != &p->waiters; w = w->next)
        loop_wake(w->wake);
    pthread_mutex_unlock(&p->wait_mu);
}

void partition_drop_log(struct partition *p)
{
    if (!p->is_replica) {
        wake_waiters(p); /* nothing on disk here */
        return;
    }
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
    wake_waiters(p);
}

/* ---- leadership and the high watermark ---- */

/* The epoch half of the rule, which every reader gets. */
static int16_t check_epoch(const struct partition *p, int32_t current_leader_epoch)
{
    /* Any negative value is "none", as clients send -1 for it. */
    if (current_leader_epoch < 0 || current_leader_epoch == p->leader_epoch)
        return KERR_NONE;
    return current_leader_epoch < p->leader_epoch ? KERR_FENCED_LEADER_EPOCH
                                                  : KERR_UNKNOWN_LEADER_EPOCH;
}

int16_t partition_check_leader(const struct partition *p, int32_t current_leader_epoch)
{
    int16_t err = check_epoch(p, current_leader_epoch);
    if (err == KERR_NONE && p->leader_id != p->node_id)
        err = KERR_NOT_LEADER_OR_FOLLOWER;
    return err;
}

/* Consumers and followers are served by the leader only. */
static bool leader_only(enum partition_reader r)
{
    return r == PARTITION_READER_CONSUMER || r == PARTITION_READER_FOLLOWER;
}

static int16_t check_reader(const struct partition *p, enum partition_reader r,
                            int32_t current_leader_epoch)
{
    return leader_only(r) ? partition_check_leader(p, current_leader_epoch)
                          : check_epoch(p, current_leader_epoch);
}

void partition_advance_hw(struct partition *p, int64_t hw)
{
    /* Two appenders may come here out of order: only move forward.  The
     * one whose store wins wakes the waiters. */
    int64_t cur = atomic_load(&p->high_watermark);
    bool moved = false;
    while (cur < hw && !(moved = atomic_compare_exchange_strong(&p->high_watermark, &cur, hw)))
        ;
    /*
     * The high watermark was stored (seq_cst) before n_waiters is read; a
     * fetch increments n_waiters before its second look at the high
     * watermark.  So either we see its watch and wake it, or it sees our
     * data: skipping the mutex when nobody waits loses no wake-up.
     */
    if (moved && atomic_load(&p->n_waiters) > 0)
        wake_waiters(p);
}

/* ---- produce ---- */

int16_t partition_append(struct partition *p, uint8_t *batches, size_t len, int64_t now_ms,
                         partition_append_result_t *res)
{
    pthread_rwlock_rdlock(&p->log_lock);
    int16_t err = partition_check_leader(p, -1);
    if (err == KERR_NONE && !p->log)
        err = KERR_UNKNOWN_TOPIC_OR_PARTITION;
    if (err == KERR_NONE) {
        int rc = plog_append(p->log, batches, len, p->leader_epoch, now_ms, res);
        if (rc != PLOG_OK)
            err = kerr_from_append(rc);
        else if (p->n_isr == 1)
            /* The ISR is this broker alone: its smallest log end is ours. */
            partition_advance_hw(p, res->last_offset + 1);
    }
    pthread_rwlock_unlock(&p->log_lock);
    return err;
}

/* ---- fetch ---- */

enum partition_reader partition_reader_of(int32_t replica_id)
{
    if (replica_id >= 0)
        return PARTITION_READER_FOLLOWER;
    return replica_id == -2 ? PARTITION_READER_DEBUG : PARTITION_READER_CONSUMER;
}

/* The reader's bound, under log_lock with the log there. */
static int64_t read_bound(struct partition *p, enum partition_reader r,
                          enum partition_isolation iso, int64_t hw)
{
    if (r == PARTITION_READER_FOLLOWER || r == PARTITION_READER_LOCAL)
        return plog_log_end(p->log);
    /* READ_COMMITTED stops at the last stable offset, which without
     * transactions is the high watermark. */
    (void)iso;
    return hw;
}

int16_t partition_read(struct partition *p, struct partition_read *rd)
{
    rd->high_watermark = rd->last_stable_offset = rd->log_start_offset = -1;
    rd->fd = -1;
    rd->file_pos = 0;
    rd->len = 0;
    rd->ref = NULL;
    pthread_rwlock_rdlock(&p->log_lock);
    int16_t err = check_reader(p, rd->reader, rd->current_leader_epoch);
    if (err == KERR_NONE && !p->log)
        err = KERR_UNKNOWN_TOPIC_OR_PARTITION;
    if (err != KERR_NONE) {
        pthread_rwlock_unlock(&p->log_lock);
        return err;
    }
    int64_t hw = partition_hw(p);
    rd->high_watermark = hw;
    rd->last_stable_offset = hw; /* no transactions yet */
    rd->log_start_offset = plog_log_start(p->log);
    int64_t bound = read_bound(p, rd->reader, rd->isolation, hw);
    if (rd->max_offset >= 0 && rd->max_offset < bound)
        bound = rd->max_offset;
    int rc = PLOG_OK;
    if (rd->offset != bound && rd->max_bytes > 0) {
        struct plog_range rg;
        rc = plog_read(p->log, rd->offset, rd->max_bytes, bound, &rg);
        rd->fd = rg.fd;
        rd->file_pos = rg.file_pos;
        rd->len = rg.len;
        rd->ref = rg.ref;
    } else if (rd->offset > bound || rd->offset < rd->log_start_offset) {
        rc = PLOG_ERR_OUT_OF_RANGE;
    }
    pthread_rwlock_unlock(&p->log_lock);
    return kerr_from_log(rc);
}

void partition_range_release(void *ref)
{
    plog_range_release(ref);
}

/* ---- offsets ---- */

int16_t partition_offsets(struct partition *p, struct partition_offsets *o)
{
    pthread_rwlock_rdlock(&p->log_lock);
    if (!p->log) {
        pthread_rwlock_unlock(&p->log_lock);
        return KERR_UNKNOWN_TOPIC_OR_PARTITION;
    }
    o->log_start = plog_log_start(p->log);
    o->high_watermark = o->last_stable = partition_hw(p);
    o->log_end = plog_log_end(p->log);
    o->leader_epoch = p->leader_epoch;
    pthread_rwlock_unlock(&p->log_lock);
    return KERR_NONE;
}

int16_t partition_offset_for_time(struct partition *p, int64_t ts, int64_t *offset,
                                  int64_t *found_ts)
{
    pthread_rwlock_rdlock(&p->log_lock);
    int16_t err = KERR_UNKNOWN_TOPIC_OR_PARTITION;
    if (p->log)
        err = kerr_from_log(plog_offset_for_time(p->log, ts, offset, found_ts));
    pthread_rwlock_unlock(&p->log_lock);
    return err;
}

#define TS_LATEST (-1)
#define TS_EARLIEST (-2)
#define TS_MAX (-3)

int16_t partition_list_offset(struct partition *p, int64_t timestamp, int32_t current_leader_epoch,
                              enum partition_reader reader, enum partition_isolation isolation,
                              int64_t *offset, int64_t *found_timestamp, int32_t *leader_epoch)
{
    pthread_rwlock_rdlock(&p->log_lock);
    int16_t err = check_reader(p, reader, current_leader_epoch);
    if (err == KERR_NONE && !p->log)
        err = KERR_UNKNOWN_TOPIC_OR_PARTITION;
    if (err != KERR_NONE) {
        pthread_rwlock_unlock(&p->log_lock);
        return err;
    }
    *leader_epoch = p->leader_epoch;
    *found_timestamp = -1;
    if (timestamp == TS_LATEST) {
        *offset = read_bound(p, reader, isolation, partition_hw(p));
    } else if (timestamp == TS_EARLIEST) {
        *offset = plog_log_start(p->log);
    } else if (timestamp >= 0 || timestamp == TS_MAX) {
        int64_t off = -1, found = -1;
        err = kerr_from_log(plog_offset_for_time(p->log, timestamp, &off, &found));
        *offset = off;
        *found_timestamp = off >= 0 ? found : -1;
    } else {
        err = KERR_INVALID_REQUEST;
    }
    pthread_rwlock_unlock(&p->log_lock);
    return err;
}

int16_t partition_delete_records(struct partition *p, int64_t offset, int64_t *low_watermark)
{
    *low_watermark = -1;
    pthread_rwlock_rdlock(&p->log_lock);
    int16_t err = partition_check_leader(p, -1);
    if (err == KERR_NONE && !p->log)
        err = KERR_UNKNOWN_TOPIC_OR_PARTITION;
    int64_t hw = partition_hw(p);
    if (err == KERR_NONE && (offset == -1 || (offset >= 0 && offset <= hw))) {
        int64_t start = -1;
        int rc = plog_delete_records(p->log, offset == -1 ? hw : offset, &start);
        err = kerr_from_log(rc);
        if (rc == PLOG_OK)
            *low_watermark = start;
    } else if (err == KERR_NONE) {
        err = KERR_OFFSET_OUT_OF_RANGE;
    }
    pthread_rwlock_unlock(&p->log_lock);
    return err;
}

/* ---- durability, retention, compaction, configuration ---- */

int16_t partition_flush(struct partition *p)
{
    pthread_rwlock_rdlock(&p->log_lock);
    int16_t err = KERR_UNKNOWN_TOPIC_OR_PARTITION;
    if (p->log)
        err = plog_flush(p->log) < 0 ? KERR_KAFKA_STORAGE_ERROR : KERR_NONE;
    pthread_rwlock_unlock(&p->log_lock);
    return err;
}

bool partition_flush_due(struct partition *p, int64_t now_ms)
{
    pthread_rwlock_rdlock(&p->log_lock);
    bool due = p->log && plog_flush_due(p->log, now_ms);
    pthread_rwlock_unlock(&p->log_lock);
    return due;
}

int partition_housekeep(struct partition *p, int64_t now_ms, bool retention)
{
    int deleted = 0;
    pthread_rwlock_rdlock(&p->log_lock);
    if (p->log) {
        if (retention)
            deleted = plog_housekeep(p->log, now_ms);
        if (plog_flush_due(p->log, now_ms))
            plog_flush(p->log);
    }
    pthread_rwlock_unlock(&p->log_lock);
    return deleted;
}

int16_t partition_clean(struct partition *p, int64_t now_ms, partition_clean_stats_t *st)
{
    pthread_rwlock_rdlock(&p->log_lock);
    int16_t err = KERR_UNKNOWN_TOPIC_OR_PARTITION;
    if (p->log) {
        int rc = plog_clean(p->log, now_ms, st);
        err = rc == PLOG_ERR_CORRUPT ? KERR_CORRUPT_MESSAGE : kerr_from_log(rc);
    }
    pthread_rwlock_unlock(&p->log_lock);
    return err;
}

double partition_dirty_ratio(struct partition *p, int64_t now_ms)
{
    pthread_rwlock_rdlock(&p->log_lock);
    double r = p->log ? plog_dirty_ratio(p->log, now_ms) : 0;
    pthread_rwlock_unlock(&p->log_lock);
    return r;
}

void partition_set_config(struct partition *p, const struct plog_config *cfg)
{
    pthread_rwlock_rdlock(&p->log_lock);
    if (p->log)
        plog_set_config(p->log, cfg);
    pthread_rwlock_unlock(&p->log_lock);
}

int16_t partition_stats(struct partition *p, struct partition_stats *st)
{
    memset(st, 0, sizeof *st);
    pthread_rwlock_rdlock(&p->log_lock);
    if (!p->log) {
        pthread_rwlock_unlock(&p->log_lock);
        return KERR_UNKNOWN_TOPIC_OR_PARTITION;
    }
    st->log_start = plog_log_start(p->log);
    st->log_end = plog_log_end(p->log);
    st->flushed = plog_flushed_offset(p->log);
    st->size_bytes = plog_size_bytes(p->log);
    st->segments = plog_segment_count(p->log);
    st->leader_epoch = p->leader_epoch;
    st->high_watermark = partition_hw(p);
    pthread_rwlock_unlock(&p->log_lock);
    return KERR_NONE;
}

/* ---- the key index ---- */

int64_t partition_key_index_sync(struct partition *p)
{
    pthread_rwlock_rdlock(&p->log_lock);
    int64_t n = p->log ? keyindex_sync(p->kidx, p->log) : 0;
    pthread_rwlock_unlock(&p->log_lock);
    return n < 0 ? -1 : n;
}

int partition_key_index_rebuild_one(struct partition *p)
{
    pthread_rwlock_rdlock(&p->log_lock);
    int rc = p->log ? keyindex_rebuild_one(p->kidx, p->log) : 0;
    pthread_rwlock_unlock(&p->log_lock);
    return rc < 0 ? -1 : rc;
}

bool partition_key_index_drop(struct partition *p)
{
    bool dropped = false;
    pthread_rwlock_rdlock(&p->log_lock);
    if (p->log) {
        struct keyindex_stats st;
        keyindex_stats(p->kidx, &st);
        if (st.segments > 0) {
            keyindex_reset(p->kidx, true);
            dropped = true;
        } else {
            keyindex_sweep(p->kidx, p->log);
        }
    }
    pthread_rwlock_unlock(&p->log_lock);
    return dropped;
}

int16_t partition_key_find(struct partition *p, const void *key, size_t len, int64_t since_ms,
                           keyindex_found_fn fn, void *arg)
{
    pthread_rwlock_rdlock(&p->log_lock);
    int16_t err = KERR_UNKNOWN_TOPIC_OR_PARTITION;
    if (p->log)
        err = kerr_from_log(keyindex_find(p->kidx, p->log, key, len, since_ms, fn, arg));
    pthread_rwlock_unlock(&p->log_lock);
    return err;
}

/* ---- waiting for data ---- */

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
    default:
        return KERR_KAFKA_STORAGE_ERROR;
    }
}

/* ---- cluster state of a partition (cluster mode) ---- */

/*
 * Arrays replaced by partition_set_remote_state: Metadata may still be
 * encoding from them, without a lock, so they are never freed (state
 * changes are rare: elections and ISR changes).  A list keeps them
 * reachable.
 */
static struct retired_ids {
    struct retired_ids *next;
    int32_t *ids;
} * retired_ids;
static pthread_mutex_t retired_mu = PTHREAD_MUTEX_INITIALIZER;

static void retire_ids(int32_t *ids)
{
    struct retired_ids *r = ids ? malloc(sizeof *r) : NULL;
    if (!r)
        return; /* nothing, or out of memory: then it leaks */
    r->ids = ids;
    pthread_mutex_lock(&retired_mu);
    r->next = retired_ids;
    retired_ids = r;
    pthread_mutex_unlock(&retired_mu);
}

static bool same_ids(const int32_t *a, int32_t na, const int32_t *b, int32_t nb)
{
    return na == nb && (!na || !memcmp(a, b, (size_t)na * sizeof *a));
}

void partition_set_remote_state(struct partition *p, int32_t leader, int32_t leader_epoch,
                                const int32_t *replicas, int32_t n_replicas, const int32_t *isr,
                                int32_t n_isr)
{
    if (n_replicas > PARTITION_STATE_MAX)
        n_replicas = PARTITION_STATE_MAX;
    if (n_isr > PARTITION_STATE_MAX)
        n_isr = PARTITION_STATE_MAX;
    int32_t *nr = NULL, *ni = NULL;
    bool new_r = !same_ids(p->replicas, p->n_replicas, replicas, n_replicas);
    bool new_i = !same_ids(p->isr, p->n_isr, isr, n_isr);
    if (new_r && (nr = malloc((size_t)(n_replicas ? n_replicas : 1) * sizeof *nr)))
        memcpy(nr, replicas, (size_t)n_replicas * sizeof *nr);
    if (new_i && (ni = malloc((size_t)(n_isr ? n_isr : 1) * sizeof *ni)))
        memcpy(ni, isr, (size_t)n_isr * sizeof *ni);
    pthread_rwlock_wrlock(&p->log_lock);
    p->leader_id = leader;
    p->leader_epoch = leader_epoch;
    if (nr) {
        /* The count first when shrinking, the pointer first when growing,
         * so a reader never indexes past an array. */
        p->n_replicas = n_replicas < p->n_replicas ? n_replicas : p->n_replicas;
        retire_ids(p->replicas);
        p->replicas = nr;
        p->n_replicas = n_replicas;
    }
    if (ni) {
        p->n_isr = n_isr < p->n_isr ? n_isr : p->n_isr;
        retire_ids(p->isr);
        p->isr = ni;
        p->n_isr = n_isr;
    }
    pthread_rwlock_unlock(&p->log_lock);
    wake_waiters(p); /* fetches waiting here re-check who leads */
}
