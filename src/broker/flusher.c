#include "broker/flusher.h"

#include <pthread.h>
#include <stdlib.h>

#include "broker/partition.h"
#include "common/kerr.h"
#include "common/rlog.h"

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct flush_wait *head, *tail;
    bool stop;
    bool running;
    pthread_t thread;
} fl = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

void flusher_submit(struct flush_wait *fw)
{
    fw->next = NULL;
    pthread_mutex_lock(&fl.mu);
    if (fl.tail)
        fl.tail->next = fw;
    else
        fl.head = fw;
    fl.tail = fw;
    pthread_cond_signal(&fl.cv);
    pthread_mutex_unlock(&fl.mu);
}

static int cmp_ptr(const void *a, const void *b)
{
    const struct partition *x = *(struct partition *const *)a, *y = *(struct partition *const *)b;
    return x < y ? -1 : x > y;
}

/* One round: fsync every partition named in the batch once. */
static void flush_round(struct flush_wait *batch)
{
    int total = 0;
    for (struct flush_wait *f = batch; f; f = f->next)
        total += f->n;
    struct partition **uniq = malloc((size_t)(total ? total : 1) * sizeof *uniq);
    bool *bad = calloc((size_t)(total ? total : 1), sizeof *bad);
    int n = 0;
    if (uniq && bad) {
        for (struct flush_wait *f = batch; f; f = f->next)
            for (int i = 0; i < f->n; i++)
                uniq[n++] = f->parts[i];
        qsort(uniq, (size_t)n, sizeof *uniq, cmp_ptr);
        int m = 0;
        for (int i = 0; i < n; i++)
            if (m == 0 || uniq[m - 1] != uniq[i])
                uniq[m++] = uniq[i];
        n = m;
        for (int i = 0; i < n; i++) {
            struct partition *p = uniq[i];
            /* A deleted partition has nothing left to make durable. */
            int16_t err = partition_flush(p);
            if (err != KERR_NONE && err != KERR_UNKNOWN_TOPIC_OR_PARTITION) {
                bad[i] = true;
                rlog_error("fsync failed for partition %s", p->dir);
            }
        }
    }
    for (struct flush_wait *f = batch, *next; f; f = next) {
        next = f->next;
        for (int i = 0; i < f->n; i++) {
            if (!uniq || !bad) {
                f->failed[i] = true;
                continue;
            }
            struct partition **hit = bsearch(&f->parts[i], uniq, (size_t)n, sizeof *uniq, cmp_ptr);
            f->failed[i] = hit ? bad[hit - uniq] : true;
        }
        if (f->wake)
            loop_wake(f->wake);
        else
            f->on_detached_done(f);
    }
    free(uniq);
    free(bad);
}

static void *flusher_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&fl.mu);
    for (;;) {
        while (!fl.head && !fl.stop)
            pthread_cond_wait(&fl.cv, &fl.mu);
        if (!fl.head && fl.stop)
            break;
        struct flush_wait *batch = fl.head;
        fl.head = fl.tail = NULL;
        pthread_mutex_unlock(&fl.mu);
        flush_round(batch);
        pthread_mutex_lock(&fl.mu);
    }
    pthread_mutex_unlock(&fl.mu);
    return NULL;
}

int flusher_start(void)
{
    fl.stop = false;
    if (pthread_create(&fl.thread, NULL, flusher_main, NULL))
        return -1;
    fl.running = true;
    return 0;
}

void flusher_stop(void)
{
    if (!fl.running)
        return;
    pthread_mutex_lock(&fl.mu);
    fl.stop = true;
    pthread_cond_signal(&fl.cv);
    pthread_mutex_unlock(&fl.mu);
    pthread_join(fl.thread, NULL);
    fl.running = false;
}
