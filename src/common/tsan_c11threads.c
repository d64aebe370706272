/*
 * ThreadSanitizer builds only (make TSAN=1): C11 threads on top of
 * pthreads, so that TSan sees them.
 *
 * librdkafka (the CLI's Kafka client) creates its threads with
 * thrd_create and locks with mtx_lock / cnd_wait.  glibc implements those
 * by calling its internal pthread functions directly, past the pthread
 * interceptors of gcc 12's libtsan, which has none for C11 threads:
 * a thread it never saw starting crashes in TSan's allocator on its first
 * malloc (the CLI dies with SIGSEGV), and locks it never saw taken would
 * make every hand-over between librdkafka's threads look like a race.
 *
 * These definitions in the executable take precedence over glibc's for
 * librdkafka (symbols an executable defines are looked up first) and do
 * what glibc does, through the public, intercepted pthread calls.  glibc's
 * mtx_t, cnd_t and once_flag are its pthread_mutex_t, pthread_cond_t and
 * pthread_once_t under another name (it casts between them itself), which
 * the static asserts check.  Runnel's own code uses pthreads only.
 */
#if defined(__SANITIZE_THREAD__)

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <threads.h>

_Static_assert(sizeof(mtx_t) == sizeof(pthread_mutex_t), "mtx_t is a pthread mutex");
_Static_assert(sizeof(cnd_t) == sizeof(pthread_cond_t), "cnd_t is a pthread condition");
_Static_assert(sizeof(once_flag) == sizeof(pthread_once_t), "once_flag is a pthread once");
_Static_assert(sizeof(thrd_t) == sizeof(pthread_t), "thrd_t is a pthread_t");

static int thrd_result(int rc)
{
    return rc == 0        ? thrd_success
           : rc == ENOMEM ? thrd_nomem
           : rc == EBUSY  ? thrd_busy
                          : thrd_error;
}

struct c11_start {
    thrd_start_t fn;
    void *arg;
};

static void *c11_trampoline(void *p)
{
    struct c11_start s = *(struct c11_start *)p;
    free(p);
    return (void *)(intptr_t)s.fn(s.arg);
}

int thrd_create(thrd_t *thr, thrd_start_t fn, void *arg)
{
    struct c11_start *s = malloc(sizeof *s);
    if (!s)
        return thrd_nomem;
    s->fn = fn;
    s->arg = arg;
    pthread_t t;
    int rc = pthread_create(&t, NULL, c11_trampoline, s);
    if (rc) {
        free(s);
        return thrd_result(rc);
    }
    *thr = (thrd_t)t;
    return thrd_success;
}

int thrd_join(thrd_t thr, int *res)
{
    void *ret;
    int rc = pthread_join((pthread_t)thr, &ret);
    if (rc == 0 && res)
        *res = (int)(intptr_t)ret;
    return thrd_result(rc);
}

int thrd_detach(thrd_t thr)
{
    return thrd_result(pthread_detach((pthread_t)thr));
}

int mtx_init(mtx_t *m, int type)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    if (type & mtx_recursive)
        pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    int rc = pthread_mutex_init((pthread_mutex_t *)m, &a);
    pthread_mutexattr_destroy(&a);
    return thrd_result(rc);
}

int mtx_lock(mtx_t *m)
{
    return thrd_result(pthread_mutex_lock((pthread_mutex_t *)m));
}

int mtx_trylock(mtx_t *m)
{
    return thrd_result(pthread_mutex_trylock((pthread_mutex_t *)m));
}

int mtx_timedlock(mtx_t *restrict m, const struct timespec *restrict ts)
{
    int rc = pthread_mutex_timedlock((pthread_mutex_t *)m, ts);
    return rc == ETIMEDOUT ? thrd_timedout : thrd_result(rc);
}

int mtx_unlock(mtx_t *m)
{
    return thrd_result(pthread_mutex_unlock((pthread_mutex_t *)m));
}

void mtx_destroy(mtx_t *m)
{
    pthread_mutex_destroy((pthread_mutex_t *)m);
}

int cnd_init(cnd_t *c)
{
    return thrd_result(pthread_cond_init((pthread_cond_t *)c, NULL));
}

int cnd_signal(cnd_t *c)
{
    return thrd_result(pthread_cond_signal((pthread_cond_t *)c));
}

int cnd_broadcast(cnd_t *c)
{
    return thrd_result(pthread_cond_broadcast((pthread_cond_t *)c));
}

int cnd_wait(cnd_t *c, mtx_t *m)
{
    return thrd_result(pthread_cond_wait((pthread_cond_t *)c, (pthread_mutex_t *)m));
}

int cnd_timedwait(cnd_t *restrict c, mtx_t *restrict m, const struct timespec *restrict ts)
{
    int rc = pthread_cond_timedwait((pthread_cond_t *)c, (pthread_mutex_t *)m, ts);
    return rc == ETIMEDOUT ? thrd_timedout : thrd_result(rc);
}

void cnd_destroy(cnd_t *c)
{
    pthread_cond_destroy((pthread_cond_t *)c);
}

void call_once(once_flag *flag, void (*fn)(void))
{
    pthread_once((pthread_once_t *)flag, fn);
}

#else
/* ISO C wants at least one declaration in a translation unit. */
typedef int tsan_c11threads_unused;
#endif
