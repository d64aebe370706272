/*
 * GET /metrics: the Prometheus text format, version 0.0.4.
 *
 * Families written here: the per-API request counters and latency
 * histograms (summed over the threads' shards, see common/metrics.h), the
 * connection counters and the uptime.  topics.c adds the partition and
 * log families, groups.c the group lag; then every collector registered
 * with metrics_add_collector() adds its own.  Each family is one
 * "# HELP" line, one "# TYPE" line and its samples, together.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_int.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "kafka/handlers.h"

/* The bounds of metrics_bucket_ns (common/metrics.c), as Prometheus labels. */
static const char *const bucket_le[METRICS_BUCKETS] = {
    "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
    "0.05",   "0.1",     "0.25",   "0.5",   "1",      "2.5",   "5",    "10",
};

/* ---- collectors ---- */

#define MAX_COLLECTORS 32
static struct {
    pthread_mutex_t mu;
    struct {
        void (*fn)(struct metrics_out *o, void *arg);
        void *arg;
    } c[MAX_COLLECTORS];
    int n;
} collectors = {.mu = PTHREAD_MUTEX_INITIALIZER};

void metrics_add_collector(void (*fn)(struct metrics_out *o, void *arg), void *arg)
{
    pthread_mutex_lock(&collectors.mu);
    if (collectors.n < MAX_COLLECTORS) {
        collectors.c[collectors.n].fn = fn;
        collectors.c[collectors.n].arg = arg;
        collectors.n++;
    }
    pthread_mutex_unlock(&collectors.mu);
}

/* ---- the text buffer ---- */

static void out_reserve(struct metrics_out *o, size_t more)
{
    if (o->oom || o->len + more + 1 <= o->cap)
        return;
    size_t cap = o->cap ? o->cap : 16384;
    while (cap < o->len + more + 1)
        cap *= 2;
    char *b = realloc(o->buf, cap);
    if (!b) {
        o->oom = true;
        return;
    }
    o->buf = b;
    o->cap = cap;
}

void metrics_printf(struct metrics_out *o, const char *fmt, ...)
{
    if (o->oom)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf ? o->buf + o->len : NULL, o->buf ? o->cap - o->len : 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (!o->buf || o->len + (size_t)n + 1 > o->cap) {
        out_reserve(o, (size_t)n);
        if (o->oom)
            return;
        va_start(ap, fmt);
        vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
    }
    o->len += (size_t)n;
}

void metrics_label(struct metrics_out *o, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            metrics_printf(o, "\\\\");
        else if (*s == '"')
            metrics_printf(o, "\\\"");
        else if (*s == '\n')
            metrics_printf(o, "\\n");
        else {
            out_reserve(o, 1);
            if (o->oom)
                return;
            o->buf[o->len++] = *s;
            o->buf[o->len] = 0;
        }
    }
}

/* ---- the request families ---- */

/* "list_offsets" -> "ListOffsets": Kafka's own API names. */
static void api_label(const char *snake, char *buf, size_t size)
{
    size_t n = 0;
    bool up = true;
    for (; *snake && n + 1 < size; snake++) {
        if (*snake == '_') {
            up = true;
            continue;
        }
        buf[n++] = up && *snake >= 'a' && *snake <= 'z' ? (char)(*snake - 'a' + 'A') : *snake;
        up = false;
    }
    buf[n] = 0;
}

struct api_sum {
    uint64_t slots[METRICS_BUCKETS + 1];
    uint64_t sum_ns, request_bytes, response_bytes, failed, count;
};

static void sum_api(int16_t key, struct api_sum *t)
{
    memset(t, 0, sizeof *t);
    if (key < 0 || key >= METRICS_MAX_API)
        return;
    for (struct metrics_shard *s = metrics_shards(); s; s = s->next) {
        const struct metrics_api *m = &s->api[key];
        for (int i = 0; i <= METRICS_BUCKETS; i++)
            t->slots[i] += atomic_load_explicit(&m->slots[i], memory_order_relaxed);
        t->sum_ns += atomic_load_explicit(&m->sum_ns, memory_order_relaxed);
        t->request_bytes += atomic_load_explicit(&m->request_bytes, memory_order_relaxed);
        t->response_bytes += atomic_load_explicit(&m->response_bytes, memory_order_relaxed);
        t->failed += atomic_load_explicit(&m->failed, memory_order_relaxed);
    }
    for (int i = 0; i <= METRICS_BUCKETS; i++)
        t->count += t->slots[i];
}

static void write_requests(struct metrics_out *o)
{
    struct api_sum *sums = calloc((size_t)kapi_count, sizeof *sums);
    if (!sums) {
        o->oom = true;
        return;
    }
    for (int i = 0; i < kapi_count; i++)
        sum_api(kapi_table[i].key, &sums[i]);
    static const struct {
        const char *name, *help;
        size_t field;
    } counters[] = {
        {"runnel_requests_total", "Kafka requests answered (or taken, with acks=0), by API.",
         offsetof(struct api_sum, count)},
        {"runnel_request_bytes_total", "Bytes of Kafka requests answered, by API.",
         offsetof(struct api_sum, request_bytes)},
        {"runnel_response_bytes_total", "Bytes of Kafka responses queued, by API.",
         offsetof(struct api_sum, response_bytes)},
        {"runnel_request_errors_total",
         "Kafka requests that closed their connection (malformed, unsupported version), by API.",
         offsetof(struct api_sum, failed)},
    };
    char api[64];
    for (size_t c = 0; c < sizeof counters / sizeof counters[0]; c++) {
        metrics_printf(o, "# HELP %s %s\n# TYPE %s counter\n", counters[c].name, counters[c].help,
                       counters[c].name);
        for (int i = 0; i < kapi_count; i++) {
            api_label(kapi_table[i].name, api, sizeof api);
            uint64_t v = *(const uint64_t *)((const char *)&sums[i] + counters[c].field);
            metrics_printf(o, "%s{api=\"%s\"} %llu\n", counters[c].name, api,
                           (unsigned long long)v);
        }
    }
    const char *h = "runnel_request_duration_seconds";
    metrics_printf(o,
                   "# HELP %s Time from a Kafka request's arrival to its response being queued, "
                   "by API.\n# TYPE %s histogram\n",
                   h, h);
    for (int i = 0; i < kapi_count; i++) {
        api_label(kapi_table[i].name, api, sizeof api);
        uint64_t cum = 0;
        for (int b = 0; b < METRICS_BUCKETS; b++) {
            cum += sums[i].slots[b];
            metrics_printf(o, "%s_bucket{api=\"%s\",le=\"%s\"} %llu\n", h, api, bucket_le[b],
                           (unsigned long long)cum);
        }
        metrics_printf(o, "%s_bucket{api=\"%s\",le=\"+Inf\"} %llu\n", h, api,
                       (unsigned long long)sums[i].count);
        metrics_printf(o, "%s_sum{api=\"%s\"} %.9f\n", h, api, (double)sums[i].sum_ns / 1e9);
        metrics_printf(o, "%s_count{api=\"%s\"} %llu\n", h, api, (unsigned long long)sums[i].count);
    }
    free(sums);
}

void metrics_scrape(struct metrics_out *o)
{
    write_requests(o);
    metrics_printf(o,
                   "# HELP runnel_connections Open Kafka client connections.\n"
                   "# TYPE runnel_connections gauge\nrunnel_connections %lld\n",
                   (long long)atomic_load_explicit(&metrics_conns_open, memory_order_relaxed));
    metrics_printf(
        o,
        "# HELP runnel_connections_accepted_total Kafka client connections accepted.\n"
        "# TYPE runnel_connections_accepted_total counter\nrunnel_connections_accepted_total "
        "%llu\n",
        (unsigned long long)atomic_load_explicit(&metrics_conns_accepted, memory_order_relaxed));
    metrics_printf(o,
                   "# HELP runnel_uptime_seconds Seconds since the broker started serving.\n"
                   "# TYPE runnel_uptime_seconds gauge\nrunnel_uptime_seconds %.3f\n",
                   (double)(clock_mono_ms() - admin_started_ms()) / 1000.0);
    metrics_write_topics(o);
    metrics_write_groups(o);
    metrics_write_delayed(o);
    pthread_mutex_lock(&collectors.mu);
    int n = collectors.n;
    pthread_mutex_unlock(&collectors.mu);
    /* Entries below n never change once written. */
    for (int i = 0; i < n; i++)
        collectors.c[i].fn(o, collectors.c[i].arg);
}
