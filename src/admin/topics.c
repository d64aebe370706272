/*
 * GET /v1/topics, GET /v1/topics/{topic}, and the partition and log
 * families of /metrics.
 *
 * Reads go through the registry (counted topic references) and the
 * partition's functions, exactly as the Kafka handlers do, so a topic
 * deleted meanwhile is skipped, never touched after free.
 */
#include <stdlib.h>
#include <string.h>

#include "admin/admin_int.h"
#include "broker/topics.h"
#include "common/kerr.h"

bool admin_topic_internal(const char *name)
{
    return !strncmp(name, "__", 2);
}

static int cmp_kv(const void *a, const void *b)
{
    return strcmp(((const struct config_kv *)a)->key, ((const struct config_kv *)b)->key);
}

/* The topic's overrides as {"retention.ms": "60000", ...}, sorted. */
static json_t *topic_configs(struct topic *t)
{
    struct config_overrides o;
    json_t *cfg = json_object();
    if (!cfg || topics_get_overrides(t, &o)) {
        json_decref(cfg);
        return NULL;
    }
    if (o.n > 1)
        qsort(o.kv, (size_t)o.n, sizeof *o.kv, cmp_kv);
    for (int i = 0; i < o.n; i++)
        json_object_set_new(cfg, o.kv[i].key, json_string(o.kv[i].value));
    config_overrides_free(&o);
    return cfg;
}

/* Kafka prints topic ids as URL-safe base64 without padding. */
static void topic_id_text(const kuuid_t *id, char out[23])
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    int n = 0;
    for (int i = 0; i < 16; i += 3) {
        uint32_t v = (uint32_t)id->b[i] << 16;
        if (i + 1 < 16)
            v |= (uint32_t)id->b[i + 1] << 8;
        if (i + 2 < 16)
            v |= id->b[i + 2];
        out[n++] = tab[v >> 18];
        out[n++] = tab[(v >> 12) & 63];
        if (i + 1 < 16)
            out[n++] = tab[(v >> 6) & 63];
        if (i + 2 < 16)
            out[n++] = tab[v & 63];
    }
    out[n] = 0;
}

static int cmp_topic(const void *a, const void *b)
{
    return strcmp((*(struct topic *const *)a)->name, (*(struct topic *const *)b)->name);
}

/* Every live topic, referenced and sorted by name. */
static int sorted_topics(struct topic ***ts, int *n)
{
    if (topics_list(ts, n))
        return -1;
    qsort(*ts, (size_t)*n, sizeof **ts, cmp_topic);
    return 0;
}

int admin_handle_topics(const struct admin_request *rq, json_t **body)
{
    (void)rq;
    struct topic **ts;
    int n;
    if (sorted_topics(&ts, &n)) {
        *body = admin_error("out of memory");
        return 500;
    }
    json_t *arr = json_array();
    for (int i = 0; arr && i < n; i++) {
        if (atomic_load(&ts[i]->deleted))
            continue;
        json_t *t = json_object();
        json_object_set_new(t, "name", json_string(ts[i]->name));
        json_object_set_new(t, "internal", json_boolean(admin_topic_internal(ts[i]->name)));
        json_object_set_new(t, "partitions", json_integer(topic_partition_count(ts[i])));
        json_t *cfg = topic_configs(ts[i]);
        json_object_set_new(t, "configs", cfg ? cfg : json_object());
        json_array_append_new(arr, t);
    }
    topics_list_free(ts, n);
    *body = json_pack("{s:o*}", "topics", arr);
    return 200;
}

int admin_handle_topic(const struct admin_request *rq, json_t **body)
{
    const char *name = admin_path_param(rq, 0);
    struct topic *t = topics_get(name, strlen(name));
    if (!t || atomic_load(&t->deleted)) {
        topic_put(t);
        *body = admin_error("unknown topic '%s'", name);
        return 404;
    }
    char id[23];
    topic_id_text(&t->id, id);
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(t->name));
    json_object_set_new(o, "topic_id", json_string(id));
    json_object_set_new(o, "internal", json_boolean(admin_topic_internal(t->name)));
    json_t *cfg = topic_configs(t);
    json_object_set_new(o, "configs", cfg ? cfg : json_object());
    json_t *parts = json_array();
    int32_t np = topic_partition_count(t);
    int64_t total = 0;
    for (int32_t i = 0; i < np; i++) {
        struct partition *p = topic_partition(t, i);
        struct partition_stats st;
        if (!p || partition_stats(p, &st) != KERR_NONE)
            continue;
        total += st.size_bytes;
        json_array_append_new(parts, json_pack("{s:i, s:I, s:I, s:I, s:I, s:i, s:i}", "partition",
                                               (int)i, "log_start_offset", (json_int_t)st.log_start,
                                               "high_watermark", (json_int_t)st.high_watermark,
                                               "log_end_offset", (json_int_t)st.log_end,
                                               "size_bytes", (json_int_t)st.size_bytes, "segments",
                                               st.segments, "leader_epoch", (int)st.leader_epoch));
    }
    json_object_set_new(o, "size_bytes", json_integer(total));
    json_object_set_new(o, "partitions", parts);
    topic_put(t);
    *body = o;
    return 200;
}

void admin_topics_totals(int *topics, int *partitions, int64_t *bytes)
{
    *topics = *partitions = 0;
    *bytes = 0;
    struct topic **ts;
    int n;
    if (topics_list(&ts, &n))
        return;
    for (int i = 0; i < n; i++) {
        if (atomic_load(&ts[i]->deleted))
            continue;
        (*topics)++;
        int32_t np = topic_partition_count(ts[i]);
        for (int32_t p = 0; p < np; p++) {
            struct partition_stats st;
            struct partition *pt = topic_partition(ts[i], p);
            if (pt && partition_stats(pt, &st) == KERR_NONE) {
                (*partitions)++;
                *bytes += st.size_bytes;
            }
        }
    }
    topics_list_free(ts, n);
}

/* ---- metrics ---- */

struct part_row {
    const char *topic;
    int32_t partition;
    struct partition_stats st;
};

static void write_family(struct metrics_out *o, const char *name, const char *help,
                         const struct part_row *rows, int n, size_t field)
{
    metrics_printf(o, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
    for (int i = 0; i < n; i++) {
        int64_t v = *(const int64_t *)((const char *)&rows[i].st + field);
        metrics_printf(o, "%s{topic=\"", name);
        metrics_label(o, rows[i].topic);
        metrics_printf(o, "\",partition=\"%d\"} %lld\n", rows[i].partition, (long long)v);
    }
}

void metrics_write_topics(struct metrics_out *o)
{
    struct topic **ts;
    int n;
    if (sorted_topics(&ts, &n)) {
        o->oom = true;
        return;
    }
    int cap = 0, rows_n = 0;
    for (int i = 0; i < n; i++)
        cap += topic_partition_count(ts[i]);
    struct part_row *rows = calloc((size_t)(cap ? cap : 1), sizeof *rows);
    if (!rows) {
        topics_list_free(ts, n);
        o->oom = true;
        return;
    }
    for (int i = 0; i < n; i++) {
        if (atomic_load(&ts[i]->deleted))
            continue;
        int32_t np = topic_partition_count(ts[i]);
        for (int32_t p = 0; p < np && rows_n < cap; p++) {
            struct partition *pt = topic_partition(ts[i], p);
            if (pt && partition_stats(pt, &rows[rows_n].st) == KERR_NONE) {
                rows[rows_n].topic = ts[i]->name;
                rows[rows_n].partition = p;
                rows_n++;
            }
        }
    }
    metrics_printf(o,
                   "# HELP runnel_partitions Partitions of every topic, internal ones "
                   "included.\n# TYPE runnel_partitions gauge\nrunnel_partitions %d\n",
                   rows_n);
    write_family(o, "runnel_log_size_bytes", "Bytes of a partition's segment files.", rows, rows_n,
                 offsetof(struct partition_stats, size_bytes));
    write_family(o, "runnel_log_end_offset", "The offset the next record of a partition gets.",
                 rows, rows_n, offsetof(struct partition_stats, log_end));
    write_family(o, "runnel_log_start_offset", "The first offset a partition still holds.", rows,
                 rows_n, offsetof(struct partition_stats, log_start));
    free(rows);
    topics_list_free(ts, n);
}
