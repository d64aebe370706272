/*
 * metrics: the counters' storage (see metrics.h); admin/metrics.c
 * formats them for GET /metrics.
 */
#include "common/metrics.h"

#include <stdlib.h>

/* 100 us .. 10 s, the 1-2.5-5 steps Prometheus clients use; the "le"
 * labels of admin/metrics.c name the same bounds. */
const int64_t metrics_bucket_ns[METRICS_BUCKETS] = {
    100000,   250000,    500000,    1000000,   2500000,    5000000,    10000000,   25000000,
    50000000, 100000000, 250000000, 500000000, 1000000000, 2500000000, 5000000000, 10000000000,
};

_Thread_local struct metrics_shard *metrics_tls;
static struct metrics_shard *_Atomic shards;
_Atomic int64_t metrics_conns_open;
_Atomic uint64_t metrics_conns_accepted;

struct metrics_shard *metrics_shard_new(void)
{
    struct metrics_shard *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    /* Push onto the list; the scrape walks it without a lock. */
    struct metrics_shard *head = atomic_load(&shards);
    do
        s->next = head;
    while (!atomic_compare_exchange_weak(&shards, &head, s));
    metrics_tls = s;
    return s;
}

struct metrics_shard *metrics_shards(void)
{
    return atomic_load(&shards);
}
