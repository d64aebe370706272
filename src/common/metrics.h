/*
 * metrics: the counters the Kafka path updates, cheap enough for it.
 *
 * Per API key: requests answered, request and response bytes, requests
 * that closed their connection (malformed, unsupported version), and a
 * latency histogram from the frame's arrival to its response being
 * queued (a request that went pending, a long-poll fetch or a produce
 * waiting for fsync, counts when it completes).  Per connection: open
 * and accepted.
 *
 * Only the storage lives here, below every layer that counts: kafka/
 * (dispatch.c, per request) and net/ (conn.c, per connection) update it,
 * admin/ (metrics.c, status.c) reads it and writes the Prometheus text.
 *
 * Each thread that records requests gets its own shard (allocated on its
 * first request, kept for the process's life), so the hot path never
 * shares a cache line with another thread and every counter has exactly
 * one writer: an update is a relaxed load and store, no locked
 * instruction.  A scrape (admin/metrics.c) sums the shards with relaxed
 * loads; a counter read mid-update is simply the older value.  Nothing
 * here is per record.
 */
#ifndef RUNNEL_COMMON_METRICS_H
#define RUNNEL_COMMON_METRICS_H

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#define METRICS_MAX_API 128 /* API keys 0..127; others are not counted */
#define METRICS_BUCKETS 16  /* finite histogram bounds, 100 us .. 10 s */

/* Upper bounds of the latency buckets, in nanoseconds (metrics.c). */
extern const int64_t metrics_bucket_ns[METRICS_BUCKETS];

struct metrics_api {
    /* slots[i]: requests with latency <= bucket i (and > bucket i - 1);
     * slots[METRICS_BUCKETS]: slower than the last bound.  The total is
     * the request count, so +Inf and _count always agree. */
    _Atomic uint64_t slots[METRICS_BUCKETS + 1];
    _Atomic uint64_t sum_ns;
    _Atomic uint64_t request_bytes, response_bytes;
    _Atomic uint64_t failed;
};

struct metrics_shard {
    struct metrics_api api[METRICS_MAX_API];
    struct metrics_shard *next; /* every shard, for the scrape */
};

/* The calling thread's shard; NULL until its first request. */
extern _Thread_local struct metrics_shard *metrics_tls;
/* Allocates and registers the calling thread's shard (NULL if out of memory). */
struct metrics_shard *metrics_shard_new(void);
/* The first shard; shards are only ever added, never freed. */
struct metrics_shard *metrics_shards(void);

extern _Atomic int64_t metrics_conns_open;
extern _Atomic uint64_t metrics_conns_accepted;

static inline int64_t metrics_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Single writer per shard: load + store, no read-modify-write. */
static inline void metrics_bump(_Atomic uint64_t *c, uint64_t v)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
                          memory_order_relaxed);
}

static inline struct metrics_api *metrics_api_slot(int16_t api_key)
{
    if (api_key < 0 || api_key >= METRICS_MAX_API)
        return NULL;
    struct metrics_shard *s = metrics_tls ? metrics_tls : metrics_shard_new();
    return s ? &s->api[api_key] : NULL;
}

/* A request whose response was queued (resp_bytes 0 when none is sent). */
static inline void metrics_request_done(int16_t api_key, int64_t arrival_ns, int64_t req_bytes,
                                        int64_t resp_bytes)
{
    struct metrics_api *m = metrics_api_slot(api_key);
    if (!m)
        return;
    int64_t d = metrics_now_ns() - arrival_ns;
    int i = 0;
    while (i < METRICS_BUCKETS && d > metrics_bucket_ns[i])
        i++;
    metrics_bump(&m->slots[i], 1);
    metrics_bump(&m->sum_ns, d > 0 ? (uint64_t)d : 0);
    metrics_bump(&m->request_bytes, (uint64_t)req_bytes);
    metrics_bump(&m->response_bytes, (uint64_t)resp_bytes);
}

/* A request that closed its connection instead of being answered. */
static inline void metrics_request_failed(int16_t api_key)
{
    struct metrics_api *m = metrics_api_slot(api_key);
    if (m)
        metrics_bump(&m->failed, 1);
}

/* Connections come and go rarely next to requests: shared atomics. */
static inline void metrics_conn_opened(void)
{
    atomic_fetch_add_explicit(&metrics_conns_open, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&metrics_conns_accepted, 1, memory_order_relaxed);
}

static inline void metrics_conn_closed(void)
{
    atomic_fetch_sub_explicit(&metrics_conns_open, 1, memory_order_relaxed);
}

#endif
