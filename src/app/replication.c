/*
 * replication: cluster mode's parts put together (replication.h).
 *
 * Threads: the cluster thread calls replication_on_partition_state (in
 * znode-version order per partition); the maintenance thread started
 * here runs partition_isr_maintain over every local partition every
 * replica.lag.time.max.ms / 2, and at once when a network thread says a
 * follower caught up (a flag and a condition variable, never a blocking
 * call on the network thread), plus the high-watermark checkpoints every
 * replica.high.watermark.checkpoint.interval.ms.  The ISR writer blocks
 * on a ZooKeeper round trip, so it runs only on that thread.
 *
 * Lock: `mu` guards `wanted` and `stop` (leaf; nothing is called under it).
 */
#include "app/replication.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "broker/partition.h"
#include "broker/topics.h"
#include "common/clock.h"
#include "common/rlog.h"
#include "replica/replica.h"

static struct {
    int32_t node_id;
    int64_t lag_max_ms;
    int64_t hw_interval_ms;
    pthread_t thread;
    bool running;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool wanted; /* a follower caught up somewhere: check the ISRs now */
    bool stop;
} rs = {.mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

/* ---- the hooks the partitions and the fetcher call ---- */

static int write_isr(void *arg, struct partition *p, int32_t leader_epoch, const int32_t *isr,
                     int32_t n_isr)
{
    (void)arg;
    int32_t expected = atomic_load(&p->state_version);
    int32_t nv = -1;
    int rc = cluster_write_isr(p->topic->name, p->index, rs.node_id, leader_epoch, isr, n_isr,
                               expected, &nv);
    if (rc == 0) {
        /* The watch brings the same state back; until then this is it. */
        int32_t cur = expected;
        atomic_compare_exchange_strong(&p->state_version, &cur, nv);
        rlog_info("partition %s-%d: ISR now has %d replica(s) (epoch %d)", p->topic->name,
                  (int)p->index, (int)n_isr, (int)leader_epoch);
    }
    return rc;
}

static void isr_notify(void *arg, struct partition *p)
{
    (void)arg;
    (void)p;
    pthread_mutex_lock(&rs.mu);
    rs.wanted = true;
    pthread_cond_signal(&rs.cond);
    pthread_mutex_unlock(&rs.mu);
}

static int lookup(void *ctx, int32_t broker_id, char *host, size_t hostlen, int *port)
{
    (void)ctx;
    const struct cluster_snapshot *s = cluster_snapshot_get();
    int rc = -1;
    for (int32_t i = 0; s && i < s->n; i++)
        if (s->b[i].id == broker_id) {
            snprintf(host, hostlen, "%s", s->b[i].host);
            *port = s->b[i].port;
            rc = 0;
            break;
        }
    cluster_snapshot_put(s);
    return rc;
}

/* ---- the cluster's states ---- */

void replication_on_partition_state(void *ctx, struct topic *t, int32_t partition,
                                    const struct cluster_partition_state *st)
{
    (void)ctx;
    struct partition *p = topic_partition(t, partition);
    if (!p)
        return;
    int16_t err;
    if (!p->is_replica) {
        /* Only what Metadata reports. */
        err = partition_become_follower(p, st->leader, st->leader_epoch, st->replicas,
                                        st->n_replicas, st->isr, st->n_isr);
    } else if (st->leader == rs.node_id) {
        /* No fetch of ours may land after we lead (replica_unfollow waits
         * for one in flight). */
        replica_unfollow(p);
        err = partition_become_leader(p, st->leader_epoch, st->replicas, st->n_replicas, st->isr,
                                      st->n_isr, clock_wall_ms());
    } else {
        err = partition_become_follower(p, st->leader, st->leader_epoch, st->replicas,
                                        st->n_replicas, st->isr, st->n_isr);
        if (err == KERR_NONE) {
            if (st->leader >= 0)
                replica_follow(p, st->leader, st->leader_epoch);
            else
                replica_unfollow(p); /* offline: nobody to fetch from */
        }
    }
    if (err == KERR_NONE)
        atomic_store(&p->state_version, st->zk_version);
    else
        rlog_warn("partition %s-%d: state (leader %d, epoch %d) not applied: %s", t->name,
                  (int)partition, (int)st->leader, (int)st->leader_epoch, kerr_name(err));
}

/* ---- maintenance ---- */

static void each_partition(void (*fn)(struct partition *p, int64_t now))
{
    struct topic **ts;
    int n;
    if (topics_list(&ts, &n))
        return;
    int64_t now = clock_wall_ms();
    for (int i = 0; i < n; i++)
        for (int32_t k = 0; k < topic_partition_count(ts[i]); k++) {
            struct partition *p = topic_partition(ts[i], k);
            if (p && p->is_replica)
                fn(p, now);
        }
    topics_list_free(ts, n);
}

static void maintain_one(struct partition *p, int64_t now)
{
    partition_isr_maintain(p, now, rs.lag_max_ms);
}

static void checkpoint_one(struct partition *p, int64_t now)
{
    (void)now;
    partition_checkpoint_hw(p);
}

static void *maintenance_main(void *arg)
{
    (void)arg;
    int64_t period = rs.lag_max_ms / 2 > 0 ? rs.lag_max_ms / 2 : 1;
    int64_t next_isr = clock_mono_ms() + period;
    int64_t next_hw = clock_mono_ms() + rs.hw_interval_ms;
    pthread_mutex_lock(&rs.mu);
    while (!rs.stop) {
        int64_t now = clock_mono_ms();
        bool isr_due = rs.wanted || now >= next_isr, hw_due = now >= next_hw;
        if (!isr_due && !hw_due) {
            int64_t until = next_isr < next_hw ? next_isr : next_hw;
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            int64_t ns = ts.tv_nsec + (until - now) * 1000000;
            ts.tv_sec += ns / 1000000000;
            ts.tv_nsec = ns % 1000000000;
            pthread_cond_timedwait(&rs.cond, &rs.mu, &ts);
            continue;
        }
        rs.wanted = false;
        pthread_mutex_unlock(&rs.mu);
        if (isr_due) {
            each_partition(maintain_one);
            next_isr = clock_mono_ms() + period;
        }
        if (hw_due) {
            each_partition(checkpoint_one);
            next_hw = clock_mono_ms() + rs.hw_interval_ms;
        }
        pthread_mutex_lock(&rs.mu);
    }
    pthread_mutex_unlock(&rs.mu);
    return NULL;
}

int replication_start(const struct broker_config *cfg, char *err, size_t errlen)
{
    rs.node_id = cfg->node_id;
    rs.lag_max_ms = cfg->replica_lag_time_max_ms;
    rs.hw_interval_ms = cfg->replica_hw_checkpoint_interval_ms;
    partition_set_isr_writer(write_isr, NULL);
    partition_set_isr_notify(isr_notify, NULL);
    struct replica_params rp = {
        .node_id = cfg->node_id,
        .fetch_max_bytes = (int32_t)config_long(cfg, "replica.fetch.max.bytes"),
        .fetch_response_max_bytes = (int32_t)config_long(cfg, "replica.fetch.response.max.bytes"),
        .fetch_wait_max_ms = (int32_t)config_long(cfg, "replica.fetch.wait.max.ms"),
        .fetch_min_bytes = (int32_t)config_long(cfg, "replica.fetch.min.bytes"),
        .backoff_ms = (int32_t)config_long(cfg, "replica.fetch.backoff.ms"),
        .socket_timeout_ms = (int32_t)config_long(cfg, "replica.socket.timeout.ms"),
        .client_id = "runnel-replica-fetcher",
    };
    if (replica_start(&rp, lookup, NULL)) {
        snprintf(err, errlen, "cannot start the replica fetchers");
        return -1;
    }
    rs.stop = false;
    if (pthread_create(&rs.thread, NULL, maintenance_main, NULL)) {
        replica_stop();
        snprintf(err, errlen, "cannot start the replication thread");
        return -1;
    }
    rs.running = true;
    return 0;
}

void replication_stop(void)
{
    if (!rs.running)
        return;
    pthread_mutex_lock(&rs.mu);
    rs.stop = true;
    pthread_cond_signal(&rs.cond);
    pthread_mutex_unlock(&rs.mu);
    pthread_join(rs.thread, NULL);
    rs.running = false;
    replica_stop();
    each_partition(checkpoint_one);
}
