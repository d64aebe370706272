#include "net/loop.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/rlog.h"

struct loop {
    int epfd;
    struct loop_io wake_io; /* eventfd */
    atomic_bool stop;
    /* Timers: a binary min-heap on `when`. */
    struct loop_timer **heap;
    int n_heap, cap_heap;
    /* Wakes posted by other threads, a doubly linked list under mu. */
    pthread_mutex_t mu;
    struct loop_wake wake_head; /* sentinel */
};

static void wake_io_cb(struct loop_io *io, uint32_t events)
{
    (void)events;
    uint64_t n;
    /* Draining the counter is all; the wake list is run after epoll. */
    while (read(io->fd, &n, sizeof n) > 0)
        ;
}

struct loop *loop_new(void)
{
    struct loop *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->wake_io.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (l->epfd < 0 || l->wake_io.fd < 0) {
        rlog_error("loop: epoll/eventfd: %s", strerror(errno));
        if (l->epfd >= 0)
            close(l->epfd);
        if (l->wake_io.fd >= 0)
            close(l->wake_io.fd);
        free(l);
        return NULL;
    }
    l->wake_io.cb = wake_io_cb;
    pthread_mutex_init(&l->mu, NULL);
    l->wake_head.next = l->wake_head.prev = &l->wake_head;
    loop_add(l, &l->wake_io, EPOLLIN);
    return l;
}

void loop_free(struct loop *l)
{
    if (!l)
        return;
    close(l->epfd);
    close(l->wake_io.fd);
    pthread_mutex_destroy(&l->mu);
    free(l->heap);
    free(l);
}

int loop_add(struct loop *l, struct loop_io *io, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = io};
    return epoll_ctl(l->epfd, EPOLL_CTL_ADD, io->fd, &ev);
}

int loop_mod(struct loop *l, struct loop_io *io, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = io};
    return epoll_ctl(l->epfd, EPOLL_CTL_MOD, io->fd, &ev);
}

void loop_del(struct loop *l, struct loop_io *io)
{
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL);
}

/* ---- timers: min-heap ---- */

static void heap_swap(struct loop *l, int a, int b)
{
    struct loop_timer *t = l->heap[a];
    l->heap[a] = l->heap[b];
    l->heap[b] = t;
    l->heap[a]->heap_idx = a;
    l->heap[b]->heap_idx = b;
}

static void heap_up(struct loop *l, int i)
{
    while (i > 0) {
        int p = (i - 1) / 2;
        if (l->heap[p]->when <= l->heap[i]->when)
            break;
        heap_swap(l, p, i);
        i = p;
    }
}

static void heap_down(struct loop *l, int i)
{
    for (;;) {
        int c = 2 * i + 1, m = i;
        if (c < l->n_heap && l->heap[c]->when < l->heap[m]->when)
            m = c;
        if (c + 1 < l->n_heap && l->heap[c + 1]->when < l->heap[m]->when)
            m = c + 1;
        if (m == i)
            return;
        heap_swap(l, i, m);
        i = m;
    }
}

void loop_timer_init(struct loop_timer *t, void (*cb)(struct loop_timer *))
{
    t->heap_idx = -1;
    t->when = 0;
    t->cb = cb;
}

void loop_timer_arm(struct loop *l, struct loop_timer *t, int64_t when)
{
    if (t->heap_idx >= 0)
        loop_timer_cancel(l, t);
    if (l->n_heap == l->cap_heap) {
        int cap = l->cap_heap ? l->cap_heap * 2 : 64;
        struct loop_timer **h = realloc(l->heap, (size_t)cap * sizeof *h);
        if (!h)
            abort(); /* a timer we cannot arm would hang a request forever */
        l->heap = h;
        l->cap_heap = cap;
    }
    t->when = when;
    t->heap_idx = l->n_heap;
    l->heap[l->n_heap++] = t;
    heap_up(l, t->heap_idx);
}

void loop_timer_cancel(struct loop *l, struct loop_timer *t)
{
    int i = t->heap_idx;
    if (i < 0)
        return;
    l->n_heap--;
    if (i != l->n_heap) {
        l->heap[i] = l->heap[l->n_heap];
        l->heap[i]->heap_idx = i;
        heap_down(l, i);
        heap_up(l, i);
    }
    t->heap_idx = -1;
}

/* ---- wakes ---- */

void loop_wake_init(struct loop_wake *w, struct loop *l, void (*cb)(struct loop_wake *))
{
    w->prev = w->next = NULL;
    atomic_store(&w->queued, false);
    w->loop = l;
    w->cb = cb;
}

void loop_wake(struct loop_wake *w)
{
    bool expected = false;
    if (!atomic_compare_exchange_strong(&w->queued, &expected, true))
        return; /* already queued: one run serves every wake before it */
    struct loop *l = w->loop;
    pthread_mutex_lock(&l->mu);
    bool was_empty = l->wake_head.next == &l->wake_head;
    w->prev = l->wake_head.prev;
    w->next = &l->wake_head;
    l->wake_head.prev->next = w;
    l->wake_head.prev = w;
    pthread_mutex_unlock(&l->mu);
    if (was_empty) {
        uint64_t one = 1;
        ssize_t n = write(l->wake_io.fd, &one, sizeof one);
        (void)n; /* a full counter still wakes the loop */
    }
}

void loop_unwake(struct loop_wake *w)
{
    struct loop *l = w->loop;
    pthread_mutex_lock(&l->mu);
    if (atomic_load(&w->queued) && w->next) {
        w->prev->next = w->next;
        w->next->prev = w->prev;
        w->prev = w->next = NULL;
    }
    atomic_store(&w->queued, false);
    pthread_mutex_unlock(&l->mu);
}

static void run_wakes(struct loop *l)
{
    for (;;) {
        pthread_mutex_lock(&l->mu);
        struct loop_wake *w = l->wake_head.next;
        if (w == &l->wake_head) {
            pthread_mutex_unlock(&l->mu);
            return;
        }
        w->prev->next = w->next;
        w->next->prev = w->prev;
        w->prev = w->next = NULL;
        /* Cleared before the callback so a wake during it queues again. */
        atomic_store(&w->queued, false);
        pthread_mutex_unlock(&l->mu);
        w->cb(w);
    }
}

static void run_timers(struct loop *l)
{
    int64_t now = clock_mono_ms();
    while (l->n_heap > 0 && l->heap[0]->when <= now) {
        struct loop_timer *t = l->heap[0];
        loop_timer_cancel(l, t);
        t->cb(t);
    }
}

void loop_run(struct loop *l, void (*before_sleep)(void *), void *arg)
{
    struct epoll_event evs[256];
    while (!atomic_load(&l->stop)) {
        if (before_sleep)
            before_sleep(arg);
        int timeout = -1;
        if (l->n_heap > 0) {
            int64_t d = l->heap[0]->when - clock_mono_ms();
            timeout = d < 0 ? 0 : (d > 1000 ? 1000 : (int)d);
        }
        int n = epoll_wait(l->epfd, evs, 256, timeout);
        if (n < 0 && errno != EINTR) {
            rlog_error("loop: epoll_wait: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++) {
            struct loop_io *io = evs[i].data.ptr;
            io->cb(io, evs[i].events);
        }
        run_wakes(l);
        run_timers(l);
    }
}

void loop_stop(struct loop *l)
{
    atomic_store(&l->stop, true);
    uint64_t one = 1;
    ssize_t n = write(l->wake_io.fd, &one, sizeof one);
    (void)n;
}

void loop_run_pending(struct loop *l)
{
    run_wakes(l);
}
