#include "broker/compaction.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "broker/topics.h"
#include "common/clock.h"
#include "common/kerr.h"
#include "common/rlog.h"

static struct {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_bool stop;
    bool running;
    int64_t backoff_ms, map_bytes;
} cl = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void clean_partition(struct topic *t, struct partition *p)
{
    partition_clean_stats_t st = {.max_map_bytes = cl.map_bytes};
    int16_t err = partition_clean(p, clock_wall_ms(), &st);
    if (err == KERR_UNKNOWN_TOPIC_OR_PARTITION)
        return; /* deleted meanwhile */
    if (err != KERR_NONE)
        rlog_warn("compaction of %s-%d failed (%s); will retry", t->name, p->index, kerr_name(err));
    else if (st.cleaned)
        rlog_info("compacted %s-%d: %lld of %lld records removed (%lld tombstones), "
                  "%lld -> %lld bytes",
                  t->name, p->index, (long long)st.records_removed, (long long)st.records_read,
                  (long long)st.tombstones_removed, (long long)st.bytes_read,
                  (long long)st.bytes_written);
}

void compaction_round(void)
{
    struct topic **ts;
    int n;
    if (topics_list(&ts, &n))
        return;
    for (int i = 0; i < n && !atomic_load(&cl.stop); i++) {
        /* A snapshot published just after this read only delays a
         * clean by one round. */
        if (!topic_settings(ts[i])->compact)
            continue;
        int32_t np = topic_partition_count(ts[i]);
        for (int32_t j = 0; j < np && !atomic_load(&cl.stop); j++) {
            struct partition *p = topic_partition(ts[i], j);
            if (p)
                clean_partition(ts[i], p);
        }
    }
    topics_list_free(ts, n);
}

static void *cleaner_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&cl.stop)) {
        compaction_round();
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += cl.backoff_ms / 1000;
        until.tv_nsec += (cl.backoff_ms % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        pthread_mutex_lock(&cl.mu);
        if (!atomic_load(&cl.stop))
            pthread_cond_timedwait(&cl.cv, &cl.mu, &until);
        pthread_mutex_unlock(&cl.mu);
    }
    return NULL;
}

int compaction_start(int64_t backoff_ms, int64_t map_bytes)
{
    cl.backoff_ms = backoff_ms > 10 ? backoff_ms : 10;
    cl.map_bytes = map_bytes;
    atomic_store(&cl.stop, false);
    if (pthread_create(&cl.thread, NULL, cleaner_main, NULL))
        return -1;
    cl.running = true;
    return 0;
}

void compaction_stop(void)
{
    if (!cl.running)
        return;
    pthread_mutex_lock(&cl.mu);
    atomic_store(&cl.stop, true);
    pthread_cond_signal(&cl.cv);
    pthread_mutex_unlock(&cl.mu);
    pthread_join(cl.thread, NULL);
    cl.running = false;
}
