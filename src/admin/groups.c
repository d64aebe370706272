/*
 * GET /v1/groups, GET /v1/groups/{group}, and runnel_group_lag.
 *
 * Groups come from a snapshot (group/views.c) taken under the
 * coordinator lock; high watermarks are read after it is released, as
 * the lock order requires.  Lag is computed as Kafka's tools do (and as
 * `runnel group describe`): high watermark - committed offset, which is
 * negative when the log was truncated below a commit.
 */
#include <string.h>

#include "admin/admin_int.h"
#include "broker/topics.h"
#include "group/group.h"

/* The partition's high watermark, or -1 when it does not exist. */
static int64_t high_watermark(const char *topic, int32_t partition)
{
    struct topic *t = topics_get(topic, strlen(topic));
    struct partition *p = t && !atomic_load(&t->deleted) ? topic_partition(t, partition) : NULL;
    int64_t hw = p ? partition_hw(p) : -1;
    topic_put(t);
    return hw;
}

/*
 * A consumer member's assignment (ConsumerProtocolAssignment: version
 * int16, [topic string, [partition int32]], user_data bytes) as
 * [{"topic": t, "partitions": [..]}]; NULL when the bytes are not that.
 */
static json_t *decode_assignment(const uint8_t *p, int32_t len)
{
    json_t *arr = json_array();
    if (!arr || len == 0)
        return arr;
    kr_t r;
    kr_init(&r, p, (size_t)len);
    kr_i16(&r); /* version: the layout is the same in 0-3 */
    int32_t nt = kr_i32(&r);
    for (int32_t i = 0; !r.err && i < nt; i++) {
        kstr_t topic = kr_str(&r);
        int32_t np = kr_i32(&r);
        if (r.err || topic.len < 0 || np < 0 || (size_t)np > kr_remaining(&r) / 4)
            break;
        json_t *parts = json_array();
        for (int32_t k = 0; k < np; k++)
            json_array_append_new(parts, json_integer(kr_i32(&r)));
        json_array_append_new(arr, json_pack("{s:s%, s:o}", "topic", topic.ptr, (size_t)topic.len,
                                             "partitions", parts));
    }
    if (r.err || nt < 0 || json_array_size(arr) != (size_t)nt) {
        json_decref(arr);
        return NULL;
    }
    return arr; /* user_data, if any, is the assignor's own business */
}

/* Committed offsets with high watermark and lag; adds the lags to *total. */
static json_t *offsets_json(const struct group_view_offset *offs, int32_t n, int64_t *total)
{
    json_t *offsets = json_array();
    for (int32_t i = 0; i < n; i++) {
        const struct group_view_offset *c = &offs[i];
        int64_t hw = high_watermark(c->topic, c->partition);
        json_t *oj = json_object();
        json_object_set_new(oj, "topic", json_string(c->topic));
        json_object_set_new(oj, "partition", json_integer(c->partition));
        json_object_set_new(oj, "committed_offset", json_integer(c->offset));
        json_object_set_new(oj, "high_watermark", hw >= 0 ? json_integer(hw) : json_null());
        if (hw >= 0 && c->offset >= 0) {
            json_object_set_new(oj, "lag", json_integer(hw - c->offset));
            *total += hw - c->offset;
        } else {
            json_object_set_new(oj, "lag", json_null());
        }
        json_object_set_new(oj, "metadata", json_string(c->metadata));
        json_object_set_new(oj, "commit_timestamp", json_integer(c->commit_ts));
        json_array_append_new(offsets, oj);
    }
    return offsets;
}

int admin_handle_groups(const struct admin_request *rq, json_t **body)
{
    (void)rq;
    arena_t a;
    arena_init(&a);
    struct group_view *gv;
    int32_t n;
    if (group_views(&a, NULL, 0, &gv, &n)) {
        arena_free(&a);
        *body = admin_error("out of memory");
        return 500;
    }
    json_t *arr = json_array();
    for (int32_t i = 0; i < n; i++)
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s, s:i}", "group_id",
                                             gv[i].group_id, "state", gv[i].state, "protocol_type",
                                             gv[i].protocol_type, "protocol", gv[i].protocol,
                                             "member_count", (int)gv[i].members_count));
    arena_free(&a);
    *body = json_pack("{s:o*}", "groups", arr);
    return 200;
}

int admin_handle_group(const struct admin_request *rq, json_t **body)
{
    const char *id = admin_path_param(rq, 0);
    arena_t a;
    arena_init(&a);
    struct group_view *g;
    int32_t n;
    if (group_views(&a, id, GROUP_VIEW_MEMBERS | GROUP_VIEW_OFFSETS, &g, &n)) {
        arena_free(&a);
        *body = admin_error("out of memory");
        return 500;
    }
    if (n == 0) {
        arena_free(&a);
        *body = admin_error("unknown group '%s'", id);
        return 404;
    }
    json_t *o = json_object();
    json_object_set_new(o, "group_id", json_string(g->group_id));
    json_object_set_new(o, "state", json_string(g->state));
    json_object_set_new(o, "protocol_type", json_string(g->protocol_type));
    json_object_set_new(o, "protocol", json_string(g->protocol));
    json_object_set_new(o, "generation", json_integer(g->generation));
    json_object_set_new(o, "leader", g->leader ? json_string(g->leader) : json_null());
    json_object_set_new(o, "member_count", json_integer(g->members_count));
    bool consumer = !strcmp(g->protocol_type, "consumer");
    json_t *members = json_array();
    for (int32_t i = 0; g->members && i < g->members_count; i++) {
        const struct group_view_member *m = &g->members[i];
        json_t *mj = json_object();
        json_object_set_new(mj, "member_id", json_string(m->member_id));
        json_object_set_new(mj, "group_instance_id",
                            m->group_instance_id ? json_string(m->group_instance_id) : json_null());
        json_object_set_new(mj, "client_id", json_string(m->client_id));
        json_object_set_new(mj, "host", json_string(m->client_host));
        json_t *as = consumer ? decode_assignment(m->assignment, m->assignment_len) : NULL;
        if (as)
            json_object_set_new(mj, "assignment", as);
        else /* another protocol, or bytes we cannot read: show them as they are */
            admin_json_bytes(mj, "assignment", m->assignment ? m->assignment : (const uint8_t *)"",
                             m->assignment_len);
        json_array_append_new(members, mj);
    }
    json_object_set_new(o, "members", members);
    json_object_set_new(o, "message_model",
                        json_string(g->broadcast ? "BROADCASTING" : "CLUSTERING"));
    int64_t total = 0;
    json_object_set_new(o, "offsets", offsets_json(g->offsets, g->offsets_count, &total));
    /* A broadcast group's offsets are its instances': each reads
     * everything, so the group's lag is the sum of theirs. */
    if (g->broadcast || g->instances_count > 0) {
        json_t *insts = json_array();
        for (int32_t i = 0; i < g->instances_count; i++) {
            const struct group_view_instance *in = &g->instances[i];
            int64_t lag = 0;
            json_t *offs = offsets_json(in->offsets, in->offsets_count, &lag);
            json_array_append_new(insts, json_pack("{s:s, s:o, s:I}", "instance", in->instance,
                                                   "offsets", offs, "total_lag", (json_int_t)lag));
            total += lag;
        }
        json_object_set_new(o, "instances", insts);
    }
    json_object_set_new(o, "total_lag", json_integer(total));
    arena_free(&a);
    *body = o;
    return 200;
}

static void lag_lines(struct metrics_out *o, const char *group, const char *instance,
                      const struct group_view_offset *offs, int32_t n)
{
    for (int32_t k = 0; k < n; k++) {
        const struct group_view_offset *c = &offs[k];
        int64_t hw = high_watermark(c->topic, c->partition);
        if (hw < 0 || c->offset < 0)
            continue;
        metrics_printf(o, "runnel_group_lag{group=\"");
        metrics_label(o, group);
        metrics_printf(o, "\",topic=\"");
        metrics_label(o, c->topic);
        metrics_printf(o, "\",partition=\"%d\"", c->partition);
        if (instance) {
            metrics_printf(o, ",instance=\"");
            metrics_label(o, instance);
            metrics_printf(o, "\"");
        }
        metrics_printf(o, "} %lld\n", (long long)(hw - c->offset));
    }
}

void metrics_write_groups(struct metrics_out *o)
{
    arena_t a;
    arena_init(&a);
    struct group_view *gv;
    int32_t n;
    if (group_views(&a, NULL, GROUP_VIEW_OFFSETS, &gv, &n)) {
        arena_free(&a);
        o->oom = true;
        return;
    }
    metrics_printf(o, "# HELP runnel_group_lag Records of a partition a group has not committed "
                      "(high watermark - committed offset); broadcast groups per instance.\n"
                      "# TYPE runnel_group_lag gauge\n");
    for (int32_t i = 0; i < n; i++) {
        lag_lines(o, gv[i].group_id, NULL, gv[i].offsets, gv[i].offsets_count);
        for (int32_t k = 0; k < gv[i].instances_count; k++)
            lag_lines(o, gv[i].group_id, gv[i].instances[k].instance, gv[i].instances[k].offsets,
                      gv[i].instances[k].offsets_count);
    }
    arena_free(&a);
}
