/*
 * Admin routes for held-back records (docs/delivery.md):
 *
 *   GET /v1/delayed/count[?topic=T]          pending counts by kind and topic
 *   GET /v1/delayed[?topic=T][&kind=K][&limit=N]   the first N pending, due first
 *   GET /v1/dlq                              dead letters per consumer group
 *
 * and their Prometheus families (runnel_held_back, runnel_timer_store_bytes,
 * runnel_dlq_records).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_int.h"
#include "broker/topics.h"
#include "common/kerr.h"
#include "delivery/delivery.h"

static const char *const kind_names[TIMER_KIND_COUNT] = {
    [TIMER_DELAY] = "delay",
    [TIMER_RETRY] = "retry",
    [TIMER_HALF] = "half",
};

static int parse_kind(const char *s)
{
    if (!s)
        return 0;
    for (int k = 1; k < TIMER_KIND_COUNT; k++)
        if (!strcmp(s, kind_names[k]))
            return k;
    return -1;
}

struct by_topic {
    json_t *topics; /* object: topic -> {delay, retry, half} */
    const char *only;
};

static void count_topic(void *arg, const char *topic, enum timer_kind kind, int64_t count)
{
    struct by_topic *bt = arg;
    if (bt->only && strcmp(bt->only, topic))
        return;
    json_t *o = json_object_get(bt->topics, topic);
    if (!o) {
        o = json_pack("{s:I,s:I,s:I}", "delay", (json_int_t)0, "retry", (json_int_t)0, "half",
                      (json_int_t)0);
        json_object_set_new(bt->topics, topic, o);
    }
    if (kind > 0 && kind < TIMER_KIND_COUNT)
        json_object_set_new(o, kind_names[kind], json_integer(count));
}

int admin_handle_delayed_count(const struct admin_request *rq, json_t **body)
{
    struct timer_store *ts = delivery_store();
    if (!ts) {
        *body = admin_error("the timer store is not open");
        return 503;
    }
    struct timer_counts c;
    timer_store_counts(ts, &c);
    struct by_topic bt = {json_object(), admin_query(rq, "topic")};
    timer_store_counts_by_topic(ts, count_topic, &bt);
    json_t *list = json_array();
    const char *name;
    json_t *o;
    json_int_t total = 0;
    json_object_foreach(bt.topics, name, o)
    {
        json_t *e = json_deep_copy(o);
        json_object_set_new(e, "topic", json_string(name));
        for (int k = 1; k < TIMER_KIND_COUNT; k++)
            total += json_integer_value(json_object_get(o, kind_names[k]));
        json_array_append_new(list, e);
    }
    json_decref(bt.topics);
    if (bt.only) {
        *body = json_pack("{s:s,s:I,s:o}", "topic", bt.only, "total", total, "topics", list);
        return 200;
    }
    *body =
        json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:o}", "total", (json_int_t)c.total, "delay",
                  (json_int_t)c.pending[TIMER_DELAY], "retry", (json_int_t)c.pending[TIMER_RETRY],
                  "half", (json_int_t)c.pending[TIMER_HALF], "segments", (json_int_t)c.segments,
                  "disk_bytes", (json_int_t)c.disk_bytes, "topics", list);
    return 200;
}

static void list_one(void *arg, const struct timer_entry *e)
{
    json_t *a = arg;
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer((json_int_t)e->id));
    json_object_set_new(o, "kind", json_string(kind_names[e->kind]));
    json_object_set_new(o, "topic", json_string(e->topic));
    json_object_set_new(o, "partition", json_integer(e->partition));
    json_object_set_new(o, "due_ms", json_integer(e->due_ms));
    json_object_set_new(o, "created_ms", json_integer(e->created_ms));
    json_object_set_new(o, "timestamp", json_integer(e->timestamp));
    admin_json_bytes(o, "key", e->key, e->key_len);
    admin_json_bytes(o, "value", e->value, e->value_len);
    json_object_set_new(o, "headers",
                        admin_json_headers(e->headers, e->headers_len, e->header_count));
    if (e->kind == TIMER_HALF) {
        admin_json_bytes(o, "txn_id", e->txn_id, (int32_t)e->txn_id_len);
        json_object_set_new(o, "producer_group", json_string(e->producer_group));
        json_object_set_new(o, "checks", json_integer(e->checks));
    }
    json_array_append_new(a, o);
}

int admin_handle_delayed_list(const struct admin_request *rq, json_t **body)
{
    struct timer_store *ts = delivery_store();
    if (!ts) {
        *body = admin_error("the timer store is not open");
        return 503;
    }
    int kind = parse_kind(admin_query(rq, "kind"));
    if (kind < 0) {
        *body = admin_error("kind must be delay, retry or half");
        return 400;
    }
    long limit = 100;
    const char *ls = admin_query(rq, "limit");
    if (ls) {
        char *end;
        errno = 0;
        limit = strtol(ls, &end, 10);
        if (errno || *end || end == ls || limit < 0 || limit > 100000) {
            *body = admin_error("limit must be a number from 0 to 100000");
            return 400;
        }
    }
    json_t *a = json_array();
    int n = timer_store_list(ts, admin_query(rq, "topic"), (enum timer_kind)kind, (int)limit,
                             list_one, a);
    if (n < 0) {
        json_decref(a);
        *body = admin_error("cannot read the timer store: %s", strerror(-n));
        return 500;
    }
    *body = json_pack("{s:o}", "entries", a);
    return 200;
}

/* The dead-letter topics (__runnel.dlq.<group>) and what they hold. */
struct dlq_row {
    const char *group;
    int64_t records, log_start, high_watermark;
};

static int dlq_rows(struct topic ***ts, int *n, struct dlq_row **rows)
{
    if (topics_list(ts, n))
        return -1;
    *rows = calloc((size_t)(*n ? *n : 1), sizeof **rows);
    if (!*rows) {
        topics_list_free(*ts, *n);
        return -1;
    }
    int k = 0;
    for (int i = 0; i < *n; i++) {
        struct topic *t = (*ts)[i];
        const char *group;
        size_t glen;
        if (t->systopic != SYSTOPIC_DLQ)
            continue;
        systopic_kind(t->name, strlen(t->name), &group, &glen);
        struct dlq_row *r = &(*rows)[k++];
        r->group = group; /* the rest of t->name: NUL-terminated */
        for (int32_t p = 0; p < topic_partition_count(t); p++) {
            struct partition_stats st;
            if (partition_stats(topic_partition(t, p), &st) == KERR_NONE) {
                r->records += st.high_watermark - st.log_start;
                r->log_start += st.log_start;
                r->high_watermark += st.high_watermark;
            }
        }
    }
    return k;
}

int admin_handle_dlq(const struct admin_request *rq, json_t **body)
{
    (void)rq;
    struct topic **ts;
    int n;
    struct dlq_row *rows;
    int k = dlq_rows(&ts, &n, &rows);
    if (k < 0) {
        *body = admin_error("out of memory");
        return 500;
    }
    json_t *a = json_array();
    for (int i = 0; i < k; i++)
        json_array_append_new(a, json_pack("{s:s,s:s+,s:I,s:I,s:I}", "group", rows[i].group,
                                           "topic", SYSTOPIC_PREFIX "dlq.", rows[i].group,
                                           "records", (json_int_t)rows[i].records,
                                           "log_start_offset", (json_int_t)rows[i].log_start,
                                           "high_watermark", (json_int_t)rows[i].high_watermark));
    free(rows);
    topics_list_free(ts, n);
    *body = json_pack("{s:o}", "groups", a);
    return 200;
}

static void write_topic_kind(void *arg, const char *topic, enum timer_kind kind, int64_t count)
{
    struct metrics_out *o = arg;
    if (kind <= 0 || kind >= TIMER_KIND_COUNT)
        return;
    metrics_printf(o, "runnel_held_back{topic=\"");
    metrics_label(o, topic);
    metrics_printf(o, "\",kind=\"%s\"} %lld\n", kind_names[kind], (long long)count);
}

void metrics_write_delayed(struct metrics_out *o)
{
    struct timer_store *ts = delivery_store();
    if (ts) {
        struct timer_counts c;
        timer_store_counts(ts, &c);
        metrics_printf(o, "# HELP runnel_held_back Records held back in the timer store "
                          "(delayed, waiting for a retry, half messages).\n"
                          "# TYPE runnel_held_back gauge\n");
        timer_store_counts_by_topic(ts, write_topic_kind, o);
        metrics_printf(o,
                       "# HELP runnel_timer_store_bytes Bytes of the timer store's segments.\n"
                       "# TYPE runnel_timer_store_bytes gauge\nrunnel_timer_store_bytes %lld\n",
                       (long long)c.disk_bytes);
    }
    struct topic **tl;
    int n;
    struct dlq_row *rows;
    int k = dlq_rows(&tl, &n, &rows);
    if (k < 0) {
        o->oom = true;
        return;
    }
    metrics_printf(o, "# HELP runnel_dlq_records Dead letters kept for a consumer group.\n"
                      "# TYPE runnel_dlq_records gauge\n");
    for (int i = 0; i < k; i++) {
        metrics_printf(o, "runnel_dlq_records{group=\"");
        metrics_label(o, rows[i].group);
        metrics_printf(o, "\"} %lld\n", (long long)rows[i].records);
    }
    free(rows);
    topics_list_free(tl, n);
}
