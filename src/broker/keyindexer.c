#include "broker/keyindexer.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "broker/topics.h"
#include "common/clock.h"
#include "common/rlog.h"

static struct {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_bool stop;
    bool running;
} ki = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

/* Returns true when this partition has more rebuilding to do. */
static bool visit(struct topic *t, struct partition *p, bool indexed)
{
    bool more = false;
    if (indexed) {
        int64_t t0 = clock_mono_ms();
        int64_t n = partition_key_index_sync(p);
        int64_t ms = clock_mono_ms() - t0;
        /* Large catch-ups happen after a restart (the active segment is
         * read again) or when the topic was just switched on. */
        if (n >= 16 * 1024 * 1024)
            rlog_info("key index of %s-%d: indexed %lld MB of log in %lld ms", t->name, p->index,
                      (long long)(n >> 20), (long long)ms);
        else if (n > 0)
            rlog_debug("key index of %s-%d: indexed %lld bytes in %lld ms", t->name, p->index,
                       (long long)n, (long long)ms);
        more = partition_key_index_rebuild_one(p) == 1;
    } else if (partition_key_index_drop(p)) {
        rlog_info("key index of %s-%d: key.index is off, index files deleted", t->name, p->index);
    }
    return more;
}

bool keyindexer_round(void)
{
    struct topic **ts;
    int n;
    if (topics_list(&ts, &n))
        return false;
    bool more = false;
    for (int i = 0; i < n && !atomic_load(&ki.stop); i++) {
        /* A snapshot replaced just after this read only delays the
         * change by one round. */
        bool indexed = topic_settings(ts[i])->key_index;
        int32_t np = topic_partition_count(ts[i]);
        for (int32_t j = 0; j < np && !atomic_load(&ki.stop); j++) {
            struct partition *p = topic_partition(ts[i], j);
            if (p)
                more |= visit(ts[i], p, indexed);
        }
    }
    topics_list_free(ts, n);
    return more;
}

static void *indexer_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&ki.stop)) {
        if (keyindexer_round())
            continue;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += KEYINDEXER_INTERVAL_MS * 1000000L;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        pthread_mutex_lock(&ki.mu);
        if (!atomic_load(&ki.stop))
            pthread_cond_timedwait(&ki.cv, &ki.mu, &until);
        pthread_mutex_unlock(&ki.mu);
    }
    return NULL;
}

int keyindexer_start(void)
{
    atomic_store(&ki.stop, false);
    if (pthread_create(&ki.thread, NULL, indexer_main, NULL))
        return -1;
    ki.running = true;
    return 0;
}

void keyindexer_stop(void)
{
    if (!ki.running)
        return;
    pthread_mutex_lock(&ki.mu);
    atomic_store(&ki.stop, true);
    pthread_cond_signal(&ki.cv);
    pthread_mutex_unlock(&ki.mu);
    pthread_join(ki.thread, NULL);
    ki.running = false;
}
