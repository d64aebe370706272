#include "broker/partition.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/partition_int.h"
#include "common/fsutil.h"
#include "common/kerr.h"
#include "common/rlog.h"

static void partition_release(struct partition *p)
{
    keyindex_free(p->kidx);
    free(p->replicas);
    free(p->isr);
    free(p->remotes);
    free(p->dir);
    free(p);
}

static void init_sync(struct partition *p)
{
    pthread_rwlock_init(&p->log_lock, NULL);
    pthread_mutex_init(&p->wait_mu, NULL);
    pthread_mutex_init(&p->repl_mu, NULL);
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
    /* One replica: the whole ISR has everything in the log, it is all
     * committed.  A partition that was replicated (it has a checkpoint,
     * written only then) restarts from the high watermark it had: its
     * log end may hold what the ISR never had. */
    int64_t ckpt = plog_checkpointed_hw(p->log);
    p->replicated = ckpt >= 0;
    atomic_store(&p->high_watermark, ckpt >= 0 ? ckpt : plog_log_end(p->log));
    p->epoch_start = plog_log_end(p->log);
    p->is_replica = true;
    atomic_store(&p->state_version, -1);
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
    atomic_store(&p->state_version, -1);
    init_sync(p);
    return p;
}

void partition_await_state(struct partition *p)
{
    pthread_rwlock_wrlock(&p->log_lock);
    p->leader_id = -1;
    pthread_rwlock_unlock(&p->log_lock);
}

void partition_free(struct partition *p, bool flush)
{
    if (!p)
        return;
    /* The index holds references to segments: dropped before the log. */
    keyindex_free(p->kidx);
    p->kidx = NULL;
    if (p->log) {
        /* A clean shutdown keeps the high watermark for the next start. */
        if (flush && p->replicated &&
            plog_checkpoint_hw(p->log, atomic_load(&p->high_watermark)) != PLOG_OK)
            rlog_warn("partition %s: could not checkpoint the high watermark", p->dir);
        plog_close(p->log, flush);
    }
    pthread_rwlock_destroy(&p->log_lock);
    pthread_mutex_destroy(&p->wait_mu);
    pthread_mutex_destroy(&p->repl_mu);
    partition_release(p);
}

int16_t partition_kerr_from_log(int rc)
{
    if (rc >= 0)
        return KERR_NONE;
    return rc == PLOG_ERR_OUT_OF_RANGE ? KERR_OFFSET_OUT_OF_RANGE : KERR_KAFKA_STORAGE_ERROR;
}

void partition_wake_waiters(struct partition *p)
{
    pthread_mutex_lock(&p->wait_mu);
    for (struct partition_waiter *w = p->waiters.next; w != &p->waiters; w = w->next)
        loop_wake(w->wake);
    pthread_mutex_unlock(&p->wait_mu);
}

void partition_drop_log(struct partition *p)
{
    if (!p->is_replica) {
        partition_wake_waiters(p); /* nothing on disk here */
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
    partition_wake_waiters(p);
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
        partition_wake_waiters(p);
}

/* ---- replication: leadership changes, followers, the ISR ---- */

static struct {
    partition_isr_writer_fn write;
    void *write_arg;
    partition_isr_notify_fn notify;
    void *notify_arg;
} isr_hooks;

void partition_set_isr_writer(partition_isr_writer_fn fn, void *arg)
{
    isr_hooks.write = fn;
    isr_hooks.write_arg = arg;
}

void partition_set_isr_notify(partition_isr_notify_fn fn, void *arg)
{
    isr_hooks.notify = fn;
    isr_hooks.notify_arg = arg;
}

static bool has_id(const int32_t *ids, int32_t n, int32_t id)
{
    for (int32_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

/* n_isr is also read without the lock (produce's min.insync.replicas
 * check, the append's single-replica test): stored atomically. */
static int32_t isr_size(const struct partition *p)
{
    return __atomic_load_n(&p->n_isr, __ATOMIC_RELAXED);
}

static bool same_ids(const int32_t *a, int32_t na, const int32_t *b, int32_t nb)
{
    return na == nb && (na == 0 || (a && !memcmp(a, b, (size_t)na * sizeof *a)));
}

/* Under log_lock exclusive: the arrays get their full capacity once and
 * are then copied into, never freed, so a reader that looks without the
 * lock (Metadata, before partition_leadership) never reads freed memory. */
static int set_members(struct partition *p, const int32_t *replicas, int32_t n_replicas,
                       const int32_t *isr, int32_t n_isr)
{
    if (n_replicas < 0 || n_replicas > PARTITION_MAX_REPLICAS || n_isr < 0 ||
        n_isr > PARTITION_MAX_REPLICAS)
        return -1;
    if (!p->remotes) {
        int32_t *r = malloc(PARTITION_MAX_REPLICAS * sizeof *r);
        int32_t *i = malloc(PARTITION_MAX_REPLICAS * sizeof *i);
        struct partition_remote *rm = calloc(PARTITION_MAX_REPLICAS, sizeof *rm);
        if (!r || !i || !rm) {
            free(r);
            free(i);
            free(rm);
            return -1;
        }
        if (p->replicas)
            r[0] = p->replicas[0];
        if (p->isr)
            i[0] = p->isr[0];
        free(p->replicas);
        free(p->isr);
        p->replicas = r;
        p->isr = i;
        p->remotes = rm;
    }
    memcpy(p->replicas, replicas, (size_t)n_replicas * sizeof *replicas);
    memcpy(p->isr, isr, (size_t)n_isr * sizeof *isr);
    __atomic_store_n(&p->n_replicas, n_replicas, __ATOMIC_RELAXED);
    __atomic_store_n(&p->n_isr, n_isr, __ATOMIC_RELAXED);
    return 0;
}

/* Under log_lock exclusive: one remote state per replica but this one.
 * A new leader knows nothing of the followers' logs yet (Kafka's
 * resetReplicaState): those in the ISR count as caught up now, so they
 * get a whole lag period to fetch. */
static void reset_remotes(struct partition *p, int64_t now_ms, bool keep)
{
    struct partition_remote old[PARTITION_MAX_REPLICAS];
    int32_t n_old = keep ? p->n_remotes : 0;
    memcpy(old, p->remotes, (size_t)n_old * sizeof *old);
    int32_t n = 0;
    for (int32_t i = 0; i < p->n_replicas; i++) {
        int32_t id = p->replicas[i];
        if (id == p->node_id)
            continue;
        struct partition_remote *rm = &p->remotes[n++];
        *rm = (struct partition_remote){
            .replica_id = id,
            .log_end = -1,
            .last_caught_up_ms = has_id(p->isr, p->n_isr, id) ? now_ms : 0,
            .last_fetch_leader_end = -1,
            .last_fetch_ms = 0,
        };
        for (int32_t j = 0; j < n_old; j++)
            if (old[j].replica_id == id)
                *rm = old[j];
    }
    p->n_remotes = n;
}

static struct partition_remote *find_remote(struct partition *p, int32_t id)
{
    for (int32_t i = 0; i < p->n_remotes; i++)
        if (p->remotes[i].replica_id == id)
            return &p->remotes[i];
    return NULL;
}

/*
 * Under log_lock (shared is enough), with the log there and this broker
 * leading: the high watermark is the smallest log end over the ISR
 * (Kafka's maybeIncrementLeaderHW); a member whose log end is not known
 * yet holds it where it is.
 */
static void recompute_hw(struct partition *p)
{
    int64_t hw = plog_log_end(p->log);
    pthread_mutex_lock(&p->repl_mu);
    for (int32_t i = 0; i < p->n_isr && hw >= 0; i++) {
        if (p->isr[i] == p->node_id)
            continue;
        struct partition_remote *rm = find_remote(p, p->isr[i]);
        int64_t end = rm ? rm->log_end : -1;
        if (end < hw)
            hw = end;
    }
    pthread_mutex_unlock(&p->repl_mu);
    if (hw >= 0)
        partition_advance_hw(p, hw);
}

void partition_leadership(struct partition *p, struct partition_leadership *out)
{
    pthread_rwlock_rdlock(&p->log_lock);
    out->leader_id = p->leader_id;
    out->leader_epoch = p->leader_epoch;
    out->n_replicas = p->n_replicas;
    out->n_isr = p->n_isr;
    if (out->n_replicas > 0)
        memcpy(out->replicas, p->replicas, (size_t)out->n_replicas * sizeof *out->replicas);
    if (out->n_isr > 0)
        memcpy(out->isr, p->isr, (size_t)out->n_isr * sizeof *out->isr);
    pthread_rwlock_unlock(&p->log_lock);
}

/* Under log_lock: where `epoch` started in the log (the end offset of
 * the epoch before it), or the log end when the log cannot say. */
static int64_t epoch_start_of(struct partition *p, int32_t epoch)
{
    int32_t e = -1;
    int64_t end = -1;
    if (epoch > 0)
        plog_end_offset_for_epoch(p->log, epoch - 1, &e, &end);
    else
        end = plog_log_start(p->log);
    return end >= 0 ? end : plog_log_end(p->log);
}

int16_t partition_become_leader(struct partition *p, int32_t leader_epoch, const int32_t *replicas,
                                int32_t n_replicas, const int32_t *isr, int32_t n_isr,
                                int64_t now_ms)
{
    pthread_rwlock_wrlock(&p->log_lock);
    int16_t err = KERR_NONE;
    bool same = p->leader_id == p->node_id && leader_epoch == p->leader_epoch;
    if (!p->log)
        err = KERR_UNKNOWN_TOPIC_OR_PARTITION;
    else if (leader_epoch < p->leader_epoch)
        err = KERR_FENCED_LEADER_EPOCH;
    else if (!same && plog_begin_epoch(p->log, leader_epoch) != PLOG_OK)
        /* Kafka: the new epoch starts at the log end. */
        err = KERR_KAFKA_STORAGE_ERROR;
    else if (!same || !same_ids(p->isr, p->n_isr, isr, n_isr))
        p->isr_changed_ms = now_ms;
    if (err == KERR_NONE && set_members(p, replicas, n_replicas, isr, n_isr))
        err = KERR_INVALID_REQUEST;
    if (err == KERR_NONE) {
        if (!same)
            p->epoch_start = plog_log_end(p->log);
        else if (p->n_remotes == 0)
            /* First state after a restart that found this epoch in the
             * log: it started where the one before it ended. */
            p->epoch_start = epoch_start_of(p, leader_epoch);
        p->leader_id = p->node_id;
        p->leader_epoch = leader_epoch;
        p->replicated = true;
        pthread_mutex_lock(&p->repl_mu);
        reset_remotes(p, now_ms, same);
        pthread_mutex_unlock(&p->repl_mu);
        atomic_store(&p->isr_expand_wanted, false);
        /* An ISR of this broker alone commits its whole log at once. */
        recompute_hw(p);
    }
    pthread_rwlock_unlock(&p->log_lock);
    if (err == KERR_NONE)
        partition_wake_waiters(p);
    return err;
}

int16_t partition_become_follower(struct partition *p, int32_t leader_id, int32_t leader_epoch,
                                  const int32_t *replicas, int32_t n_replicas, const int32_t *isr,
                                  int32_t n_isr)
{
    pthread_rwlock_wrlock(&p->log_lock);
    int16_t err = KERR_NONE;
    if (leader_epoch < p->leader_epoch)
        err = KERR_FENCED_LEADER_EPOCH;
    else if (set_members(p, replicas, n_replicas, isr, n_isr))
        err = KERR_INVALID_REQUEST;
    if (err == KERR_NONE) {
        /* leader_id is never this broker here: a follower takes no
         * appends, whatever the caller says of the leader. */
        p->leader_id = leader_id == p->node_id ? -1 : leader_id;
        p->leader_epoch = leader_epoch;
        p->replicated = true;
        pthread_mutex_lock(&p->repl_mu);
        p->n_remotes = 0;
        pthread_mutex_unlock(&p->repl_mu);
    }
    pthread_rwlock_unlock(&p->log_lock);
    /* acks=all produces re-check and find the leadership gone; fetches
     * re-check and answer NOT_LEADER_OR_FOLLOWER. */
    if (err == KERR_NONE)
        partition_wake_waiters(p);
    return err;
}

/*
 * Under log_lock shared, this broker leading, the log there: a
 * follower fetched from `offset` (its log end) at now_ms.  Kafka's
 * Replica.updateFetchStateOrThrow: caught up when it reached the log end
 * we have now, or the one we had at its previous fetch (then it was
 * caught up as of that fetch).
 */
static void follower_fetched(struct partition *p, struct partition_remote *rm, int64_t offset,
                             int64_t now_ms)
{
    int64_t leader_end = plog_log_end(p->log);
    pthread_mutex_lock(&p->repl_mu);
    if (offset >= leader_end) {
        if (now_ms > rm->last_caught_up_ms)
            rm->last_caught_up_ms = now_ms;
    } else if (rm->last_fetch_leader_end >= 0 && offset >= rm->last_fetch_leader_end) {
        if (rm->last_fetch_ms > rm->last_caught_up_ms)
            rm->last_caught_up_ms = rm->last_fetch_ms;
    }
    rm->log_end = offset;
    rm->last_fetch_leader_end = leader_end;
    rm->last_fetch_ms = now_ms;
    int32_t id = rm->replica_id;
    pthread_mutex_unlock(&p->repl_mu);
    if (has_id(p->isr, p->n_isr, id)) {
        recompute_hw(p);
    } else if (offset >= partition_hw(p) && offset >= p->epoch_start &&
               !atomic_exchange(&p->isr_expand_wanted, true) && isr_hooks.notify) {
        /* It could join the ISR: tell the maintenance not to wait. */
        isr_hooks.notify(isr_hooks.notify_arg, p);
    }
}

int partition_isr_maintain(struct partition *p, int64_t now_ms, int64_t lag_max_ms)
{
    if (!isr_hooks.write)
        return 0;
    atomic_store(&p->isr_expand_wanted, false);
    int32_t next[PARTITION_MAX_REPLICAS];
    int32_t n = 0;
    pthread_rwlock_rdlock(&p->log_lock);
    if (!p->log || p->leader_id != p->node_id || !p->remotes) {
        pthread_rwlock_unlock(&p->log_lock);
        return 0;
    }
    int32_t epoch = p->leader_epoch;
    int64_t hw = partition_hw(p), leader_end = plog_log_end(p->log);
    bool changed = false;
    pthread_mutex_lock(&p->repl_mu);
    /* Shrink (Kafka's getOutOfSyncReplicas): a follower not caught up
     * within the lag time leaves; the leader always stays. */
    for (int32_t i = 0; i < p->n_isr; i++) {
        int32_t id = p->isr[i];
        struct partition_remote *rm = find_remote(p, id);
        bool in_sync =
            id == p->node_id ||
            (rm && (rm->log_end == leader_end || now_ms - rm->last_caught_up_ms <= lag_max_ms));
        if (in_sync)
            next[n++] = id;
        else
            changed = true;
    }
    /* Expand (isFollowerInSync): a replica whose log end reached the high
     * watermark and the start of this leader's epoch joins, judged, as
     * Kafka does, by a fetch: one made after the ISR last changed, so a
     * follower that was put out (by this leader or an operator) and has
     * stopped fetching is not taken back on what it did before. */
    for (int32_t i = 0; i < p->n_remotes; i++) {
        struct partition_remote *rm = &p->remotes[i];
        if (has_id(p->isr, p->n_isr, rm->replica_id) || rm->log_end < 0 ||
            rm->last_fetch_ms <= p->isr_changed_ms)
            continue;
        if (rm->log_end >= hw && rm->log_end >= p->epoch_start) {
            next[n++] = rm->replica_id;
            changed = true;
        }
    }
    pthread_mutex_unlock(&p->repl_mu);
    pthread_rwlock_unlock(&p->log_lock);
    if (!changed)
        return 0;
    /* Blocking, outside every lock: appends and fetches go on. */
    int rc = isr_hooks.write(isr_hooks.write_arg, p, epoch, next, n);
    if (rc != 0) {
        if (rc < 0)
            rlog_warn("partition %s: could not write the ISR", p->dir);
        return -1;
    }
    pthread_rwlock_wrlock(&p->log_lock);
    /* Written for `epoch`: applied unless the leadership moved since. */
    if (p->log && p->leader_id == p->node_id && p->leader_epoch == epoch) {
        memcpy(p->isr, next, (size_t)n * sizeof *next);
        __atomic_store_n(&p->n_isr, n, __ATOMIC_RELAXED);
        p->isr_changed_ms = now_ms;
        /* A smaller ISR may commit more. */
        recompute_hw(p);
    }
    pthread_rwlock_unlock(&p->log_lock);
    /* acks=all produces re-check min.insync.replicas. */
    partition_wake_waiters(p);
    return 1;
}

int16_t partition_checkpoint_hw(struct partition *p)
{
    pthread_rwlock_rdlock(&p->log_lock);
    int16_t err = KERR_UNKNOWN_TOPIC_OR_PARTITION;
    if (p->log)
        err = !p->replicated || plog_checkpoint_hw(p->log, partition_hw(p)) == PLOG_OK
                  ? KERR_NONE
                  : KERR_KAFKA_STORAGE_ERROR;
    pthread_rwlock_unlock(&p->log_lock);
    return err;
}

int16_t partition_end_offset_for_epoch(struct partition *p, int32_t current_leader_epoch,
                                       int32_t epoch, bool any_replica, int32_t *out_epoch,
                                       int64_t *end_offset)
{
    *out_epoch = -1;
    *end_offset = -1;
    pthread_rwlock_rdlock(&p->log_lock);
    int16_t err = any_replica ? check_epoch(p, current_leader_epoch)
                              : partition_check_leader(p, current_leader_epoch);
    if (err == KERR_NONE && !p->log)
        err = KERR_UNKNOWN_TOPIC_OR_PARTITION;
    if (err == KERR_NONE)
        plog_end_offset_for_epoch(p->log, epoch, out_epoch, end_offset);
    pthread_rwlock_unlock(&p->log_lock);
    return err;
}

/* ---- produce ---- */

int16_t partition_append_epoch(struct partition *p, uint8_t *batches, size_t len, int64_t now_ms,
                               partition_append_result_t *res, int32_t *leader_epoch)
{
    pthread_rwlock_rdlock(&p->log_lock);
    int16_t err = partition_check_leader(p, -1);
    if (err == KERR_NONE && !p->log)
        err = KERR_UNKNOWN_TOPIC_OR_PARTITION;
    if (err == KERR_NONE) {
        *leader_epoch = p->leader_epoch;
        int rc = plog_append(p->log, batches, len, p->leader_epoch, now_ms, res);
        if (rc != PLOG_OK)
            err = kerr_from_append(rc);
        else if (isr_size(p) == 1)
            /* The ISR is this broker alone: its smallest log end is ours. */
            partition_advance_hw(p, res->last_offset + 1);
        else if (atomic_load(&p->n_waiters) > 0)
            /* Followers waiting at the log end read up to it. */
            partition_wake_waiters(p);
    }
    pthread_rwlock_unlock(&p->log_lock);
    return err;
}

int16_t partition_append(struct partition *p, uint8_t *batches, size_t len, int64_t now_ms,
                         partition_append_result_t *res)
{
    int32_t epoch;
    return partition_append_epoch(p, batches, len, now_ms, res, &epoch);
}

int16_t partition_ack_check(struct partition *p, int32_t leader_epoch, int64_t end, int32_t min_isr,
                            bool *wait)
{
    *wait = false;
    pthread_rwlock_rdlock(&p->log_lock);
    int16_t err = KERR_NONE;
    if (!p->log)
        err = KERR_UNKNOWN_TOPIC_OR_PARTITION;
    else if (p->leader_id != p->node_id || p->leader_epoch != leader_epoch)
        err = KERR_NOT_LEADER_OR_FOLLOWER;
    else if (p->n_isr < min_isr)
        /* Kafka's checkEnoughReplicasReachOffset: also when committed, an
         * ISR below the minimum is not what acks=all promised. */
        err = KERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND;
    else
        *wait = partition_hw(p) < end;
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

/*
 * A follower's fetch, under log_lock shared after the leadership check
 * (Kafka's Partition.fetchRecords for a follower): an unknown replica of
 * a replicated partition is refused; with last_fetched_epoch, a log that diverged from ours gets
 * the diverging epoch and no records (KIP-320); otherwise its fetch
 * offset is recorded as its log end.
 */
static int16_t follower_read_check(struct partition *p, struct partition_read *rd)
{
    pthread_mutex_lock(&p->repl_mu);
    struct partition_remote *rm = find_remote(p, rd->replica_id);
    pthread_mutex_unlock(&p->repl_mu);
    /* A partition that never had a cluster state (a single node) has no
     * assignment to check against: it serves any replica's fetch, as it
     * always did, and tracks none. */
    if (!rm && p->replicated)
        return KERR_NOT_LEADER_OR_FOLLOWER;
    if (rd->last_fetched_epoch >= 0) {
        int32_t e = -1;
        int64_t end = -1;
        plog_end_offset_for_epoch(p->log, rd->last_fetched_epoch, &e, &end);
        if (e < 0 || end < 0)
            return KERR_OFFSET_OUT_OF_RANGE;
        if (e < rd->last_fetched_epoch || end < rd->offset) {
            rd->diverging_epoch = e;
            rd->diverging_end_offset = end;
            return KERR_NONE;
        }
    }
    /* Only a position inside the log is one (the read refuses others). */
    if (rm && rd->offset >= plog_log_start(p->log) && rd->offset <= plog_log_end(p->log))
        follower_fetched(p, rm, rd->offset, rd->now_ms);
    return KERR_NONE;
}

int16_t partition_read(struct partition *p, struct partition_read *rd)
{
    rd->high_watermark = rd->last_stable_offset = rd->log_start_offset = -1;
    rd->diverging_epoch = -1;
    rd->diverging_end_offset = -1;
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
    if (rd->reader == PARTITION_READER_FOLLOWER) {
        err = follower_read_check(p, rd);
        if (err != KERR_NONE || rd->diverging_epoch >= 0) {
            if (err == KERR_NONE) {
                rd->high_watermark = rd->last_stable_offset = partition_hw(p);
                rd->log_start_offset = plog_log_start(p->log);
            }
            pthread_rwlock_unlock(&p->log_lock);
            return err;
        }
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
    return partition_kerr_from_log(rc);
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
        err = partition_kerr_from_log(plog_offset_for_time(p->log, ts, offset, found_ts));
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
        err = partition_kerr_from_log(plog_offset_for_time(p->log, timestamp, &off, &found));
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
        err = partition_kerr_from_log(rc);
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
        err = rc == PLOG_ERR_CORRUPT ? KERR_CORRUPT_MESSAGE : partition_kerr_from_log(rc);
    }
    pthread_rwlock_unlock(&p->log_lock);
    return err;
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
        err = partition_kerr_from_log(keyindex_find(p->kidx, p->log, key, len, since_ms, fn, arg));
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
