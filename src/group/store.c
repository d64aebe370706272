/*
 * Group persistence: records in the internal topic __consumer_offsets
 * (one partition), in the key/value formats Kafka itself writes there,
 * so tools that know Kafka's formats can read them.  All integers are
 * big-endian; "string" is int16 length + bytes (-1 = null), "bytes" is
 * int32 length + bytes.
 *
 * Offset commit, key version 1:
 *   int16 version (1) | string group | string topic | int32 partition
 * Offset commit, value version 3 (a null value is a tombstone: deleted):
 *   int16 version (3) | int64 offset | int32 leader_epoch |
 *   string metadata | int64 commit_timestamp
 * Group metadata, key version 2:
 *   int16 version (2) | string group
 * Group metadata, value version 3 (null value: the group was deleted):
 *   int16 version (3) | string protocol_type | int32 generation |
 *   string protocol (nullable) | string leader (nullable) |
 *   int64 current_state_timestamp | int32 member count, each:
 *     string member_id | string group_instance_id (nullable) |
 *     string client_id | string client_host | int32 rebalance_timeout |
 *     int32 session_timeout | bytes subscription | bytes assignment
 *
 * Two record types are Runnel's own, under key versions far above the
 * ones Kafka numbers upward from 0 (0-2 for the classic protocol, a few
 * dozen more for its newer group types), so they never collide with one.
 * Readers of this topic skip key versions they do not know: Burrow logs
 * "failed to decode" (reason "key version") and moves on, and Kafka's own
 * reader (GroupMetadataManager.readMessageKey) returns an UnknownKey,
 * which its loader ignores ("It could be a left over from an aborted
 * upgrade").
 *
 * Group settings (message.model), key version 0x7201 (29185):
 *   int16 version (0x7201) | string group
 * value version 0 (a null value: back to the defaults):
 *   int16 version (0) | int32 count, each: string name | string value
 *
 * A broadcast instance's committed offset, key version 0x7202 (29186):
 *   int16 version (0x7202) | string group | string instance |
 *   string topic | int32 partition
 * value: as an offset commit's (version 3 above; null: deleted).
 *
 * The last record for a key wins when the topic is read back on start.
 * Members are written for inspection but not restored: after a broker
 * restart consumers rejoin (their heartbeats get UNKNOWN_MEMBER_ID) and
 * resume from their committed offsets.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/topics.h"
#include "common/clock.h"
#include "common/kerr.h"
#include "common/rlog.h"
#include "group/group_int.h"
#include "storage/batch.h"

enum {
    KEY_OFFSET = 1,
    KEY_GROUP = 2,
    KEY_SETTINGS = 0x7201,
    KEY_INSTANCE_OFFSET = 0x7202,
};

static struct topic *offsets_topic;

/* ---- encoding ---- */

struct buf {
    uint8_t *p;
    size_t len, cap;
};

static void put(struct buf *b, const void *src, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->len + n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p)
            abort();
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void put16(struct buf *b, int16_t v)
{
    uint8_t x[2];
    batch_put_be16(x, v);
    put(b, x, 2);
}

static void put32(struct buf *b, int32_t v)
{
    uint8_t x[4];
    batch_put_be32(x, v);
    put(b, x, 4);
}

static void put64(struct buf *b, int64_t v)
{
    uint8_t x[8];
    batch_put_be64(x, v);
    put(b, x, 8);
}

static void putstr(struct buf *b, const char *s, int32_t len)
{
    if (!s) {
        put16(b, -1);
        return;
    }
    if (len < 0)
        len = (int32_t)strlen(s);
    put16(b, (int16_t)len);
    put(b, s, (size_t)len);
}

static void putbytes(struct buf *b, const uint8_t *p, int32_t len)
{
    put32(b, len);
    if (len > 0)
        put(b, p, (size_t)len);
}

/* Appends one batch to the offsets partition. */
static int append_batch(struct batch_builder *bb)
{
    if (!offsets_topic)
        return -1;
    uint8_t *out;
    size_t out_len;
    if (bb->count == 0) {
        batch_builder_free(bb);
        return 0;
    }
    if (batch_builder_finish(bb, &out, &out_len)) {
        batch_builder_free(bb);
        return -1;
    }
    batch_builder_free(bb);
    struct partition *p = topic_partition(offsets_topic, 0);
    partition_append_result_t res;
    int16_t err = p ? partition_append(p, out, out_len, clock_wall_ms(), &res)
                    : KERR_UNKNOWN_TOPIC_OR_PARTITION;
    free(out);
    if (err != KERR_NONE)
        rlog_error("cannot write to %s (%s)", GROUP_OFFSETS_TOPIC, kerr_name(err));
    return err != KERR_NONE ? -1 : 0;
}

/* The group's offset key, or with an instance its instance's. */
static void offset_key(struct buf *k, const char *group, const char *instance, kstr_t topic,
                       int32_t partition)
{
    k->len = 0;
    put16(k, instance ? KEY_INSTANCE_OFFSET : KEY_OFFSET);
    putstr(k, group, -1);
    if (instance)
        putstr(k, instance, -1);
    putstr(k, topic.ptr, topic.len);
    put32(k, partition);
}

static int put_offsets(struct group *g, const char *instance, const struct group_offset *offs,
                       const bool *skip, int32_t n, int64_t now_ms)
{
    struct batch_builder bb;
    batch_builder_init(&bb, 0, now_ms);
    struct buf k = {0}, v = {0};
    for (int32_t i = 0; i < n; i++) {
        if (skip && skip[i])
            continue;
        offset_key(&k, g->id, instance, offs[i].topic, offs[i].partition);
        v.len = 0;
        put16(&v, 3);
        put64(&v, offs[i].offset);
        put32(&v, offs[i].leader_epoch);
        putstr(&v, offs[i].metadata.len > 0 ? offs[i].metadata.ptr : "",
               offs[i].metadata.len > 0 ? offs[i].metadata.len : 0);
        put64(&v, now_ms);
        batch_builder_add(&bb, now_ms, k.p, (int32_t)k.len, v.p, (int32_t)v.len, NULL, 0);
    }
    free(k.p);
    free(v.p);
    return bb.oom ? (batch_builder_free(&bb), -1) : append_batch(&bb);
}

int store_offsets(struct group *g, const struct group_offset *offs, const bool *skip, int32_t n,
                  int64_t now_ms)
{
    return put_offsets(g, NULL, offs, skip, n, now_ms);
}

int store_instance_offsets(struct group *g, const char *instance, const struct group_offset *offs,
                           const bool *skip, int32_t n, int64_t now_ms)
{
    return put_offsets(g, instance, offs, skip, n, now_ms);
}

static int put_tombstones(struct group *g, const char *instance, const struct group_offset *offs,
                          int32_t n)
{
    int64_t now = clock_wall_ms();
    struct batch_builder bb;
    batch_builder_init(&bb, 0, now);
    struct buf k = {0};
    for (int32_t i = 0; i < n; i++) {
        offset_key(&k, g->id, instance, offs[i].topic, offs[i].partition);
        batch_builder_add(&bb, now, k.p, (int32_t)k.len, NULL, -1, NULL, 0);
    }
    free(k.p);
    return bb.oom ? (batch_builder_free(&bb), -1) : append_batch(&bb);
}

int store_offset_tombstones(struct group *g, const struct group_offset *offs, int32_t n)
{
    return put_tombstones(g, NULL, offs, n);
}

int store_instance_tombstones(struct group *g, const char *instance,
                              const struct group_offset *offs, int32_t n)
{
    return put_tombstones(g, instance, offs, n);
}

static void group_key(struct buf *k, int16_t version, const char *group)
{
    k->len = 0;
    put16(k, version);
    putstr(k, group, -1);
}

int store_group(struct group *g)
{
    int64_t now = clock_wall_ms();
    struct buf k = {0}, v = {0};
    group_key(&k, KEY_GROUP, g->id);
    put16(&v, 3);
    putstr(&v, g->protocol_type ? g->protocol_type : "", -1);
    put32(&v, g->generation);
    putstr(&v, g->protocol, -1);
    putstr(&v, g->leader, -1);
    put64(&v, now);
    put32(&v, g->n);
    for (int i = 0; i < g->n; i++) {
        struct gmember *m = g->m[i];
        putstr(&v, m->id, -1);
        putstr(&v, m->instance_id, -1);
        putstr(&v, m->client_id ? m->client_id : "", -1);
        putstr(&v, m->client_host ? m->client_host : "", -1);
        put32(&v, m->rebalance_timeout_ms);
        put32(&v, m->session_timeout_ms);
        const struct gproto *p = NULL;
        for (int j = 0; g->protocol && j < m->n_protos; j++)
            if (!strcmp(m->protos[j].name, g->protocol))
                p = &m->protos[j];
        putbytes(&v, p ? p->meta : NULL, p ? p->len : 0);
        putbytes(&v, m->assignment, m->assignment_len);
    }
    struct batch_builder bb;
    batch_builder_init(&bb, 0, now);
    batch_builder_add(&bb, now, k.p, (int32_t)k.len, v.p, (int32_t)v.len, NULL, 0);
    free(k.p);
    free(v.p);
    return bb.oom ? (batch_builder_free(&bb), -1) : append_batch(&bb);
}

/* A record with a null value under one of the group keys. */
static int group_key_tombstone(int16_t version, const char *group_id)
{
    int64_t now = clock_wall_ms();
    struct buf k = {0};
    group_key(&k, version, group_id);
    struct batch_builder bb;
    batch_builder_init(&bb, 0, now);
    batch_builder_add(&bb, now, k.p, (int32_t)k.len, NULL, -1, NULL, 0);
    free(k.p);
    return bb.oom ? (batch_builder_free(&bb), -1) : append_batch(&bb);
}

int store_group_tombstone(const char *group_id)
{
    return group_key_tombstone(KEY_GROUP, group_id);
}

int store_group_settings_tombstone(const char *group_id)
{
    return group_key_tombstone(KEY_SETTINGS, group_id);
}

int store_group_settings(struct group *g)
{
    /* Only what was set explicitly: a default stays a default, so a
     * later release with another default changes it. */
    if (!g->model_set)
        return store_group_settings_tombstone(g->id);
    int64_t now = clock_wall_ms();
    struct buf k = {0}, v = {0};
    group_key(&k, KEY_SETTINGS, g->id);
    put16(&v, 0);
    put32(&v, 1);
    putstr(&v, "message.model", -1);
    putstr(&v, g->model == GM_BROADCASTING ? "BROADCASTING" : "CLUSTERING", -1);
    struct batch_builder bb;
    batch_builder_init(&bb, 0, now);
    batch_builder_add(&bb, now, k.p, (int32_t)k.len, v.p, (int32_t)v.len, NULL, 0);
    free(k.p);
    free(v.p);
    return bb.oom ? (batch_builder_free(&bb), -1) : append_batch(&bb);
}

/* ---- loading ---- */

/* A bounds-checked cursor over one key or value. */
struct cur {
    const uint8_t *p, *end;
    bool bad;
};

static int64_t get(struct cur *c, int n)
{
    if (c->bad || c->end - c->p < n) {
        c->bad = true;
        return 0;
    }
    int64_t v = n == 2 ? batch_be16(c->p) : n == 4 ? batch_be32(c->p) : batch_be64(c->p);
    c->p += n;
    return v;
}

static kstr_t getstr(struct cur *c)
{
    int16_t len = (int16_t)get(c, 2);
    if (c->bad || len < 0)
        return (kstr_t){NULL, -1};
    if (c->end - c->p < len) {
        c->bad = true;
        return (kstr_t){NULL, -1};
    }
    kstr_t s = {(const char *)c->p, len};
    c->p += len;
    return s;
}

static void apply_record(const struct batch_record *rec)
{
    if (!rec->key || rec->key_len < 2)
        return;
    struct cur k = {rec->key, rec->key + rec->key_len, false};
    int16_t version = (int16_t)get(&k, 2);
    kstr_t group = getstr(&k);
    if (k.bad || group.len <= 0)
        return;
    if (version == 0 || version == 1 || version == KEY_INSTANCE_OFFSET) {
        kstr_t instance = version == KEY_INSTANCE_OFFSET ? getstr(&k) : (kstr_t){NULL, -1};
        kstr_t topic = getstr(&k);
        int32_t partition = (int32_t)get(&k, 4);
        if (k.bad || topic.len <= 0 || (version == KEY_INSTANCE_OFFSET && instance.len <= 0))
            return;
        if (!rec->value) {
            struct group *g = group_find(group.ptr, (size_t)group.len);
            struct ginstance *in =
                g && instance.len > 0 ? instance_find(g, instance.ptr, (size_t)instance.len) : NULL;
            if (in) {
                offsets_remove(in->offs, &in->n_offs, topic.ptr, (size_t)topic.len, partition);
                if (in->n_offs == 0)
                    instance_remove(g, in);
            } else if (g && instance.len < 0) {
                group_offset_remove(g, topic.ptr, (size_t)topic.len, partition);
            }
            return;
        }
        struct cur v = {rec->value, rec->value + rec->value_len, false};
        int16_t vv = (int16_t)get(&v, 2);
        int64_t offset = get(&v, 8);
        int32_t epoch = vv >= 3 ? (int32_t)get(&v, 4) : -1;
        kstr_t meta = getstr(&v);
        int64_t ts = get(&v, 8);
        if (v.bad)
            return;
        struct group *g = group_get_or_create(group.ptr, (size_t)group.len);
        struct goffset *o;
        if (instance.len > 0) {
            struct ginstance *in = instance_get_or_create(g, instance.ptr, (size_t)instance.len);
            o = offsets_upsert(&in->offs, &in->n_offs, &in->cap_offs, topic.ptr, (size_t)topic.len,
                               partition);
        } else {
            o = group_offset_upsert(g, topic.ptr, (size_t)topic.len, partition);
        }
        o->offset = offset;
        o->leader_epoch = epoch;
        free(o->metadata);
        o->metadata = meta.len > 0 ? strndup(meta.ptr, (size_t)meta.len) : NULL;
        o->commit_ts = ts;
    } else if (version == 2) {
        struct group *g = group_find(group.ptr, (size_t)group.len);
        if (!rec->value) {
            if (g)
                group_remove(g);
            return;
        }
        struct cur v = {rec->value, rec->value + rec->value_len, false};
        get(&v, 2);
        kstr_t ptype = getstr(&v);
        int32_t generation = (int32_t)get(&v, 4);
        int64_t state_ts = 0;
        getstr(&v);
        getstr(&v);
        state_ts = get(&v, 8);
        if (v.bad)
            return;
        if (!g)
            g = group_get_or_create(group.ptr, (size_t)group.len);
        g->generation = generation;
        free(g->protocol_type);
        g->protocol_type = ptype.len > 0 ? strndup(ptype.ptr, (size_t)ptype.len) : NULL;
        g->empty_since = state_ts > 0 ? state_ts : clock_wall_ms();
    } else if (version == KEY_SETTINGS) {
        struct group *g = group_find(group.ptr, (size_t)group.len);
        if (!rec->value) {
            if (g) {
                g->model = GM_CLUSTERING;
                g->model_set = false;
            }
            return;
        }
        struct cur v = {rec->value, rec->value + rec->value_len, false};
        if (get(&v, 2) != 0)
            return; /* a settings format this release does not know */
        int32_t n = (int32_t)get(&v, 4);
        for (int32_t i = 0; i < n && !v.bad; i++) {
            kstr_t name = getstr(&v), value = getstr(&v);
            if (v.bad || !kstr_eq(name, "message.model"))
                continue;
            if (!g)
                g = group_get_or_create(group.ptr, (size_t)group.len);
            g->model = kstr_eq(value, "BROADCASTING") ? GM_BROADCASTING : GM_CLUSTERING;
            g->model_set = true;
        }
    }
}

int store_load(void)
{
    struct partition *p = topic_partition(offsets_topic, 0);
    if (!p)
        return -1;
    struct partition_offsets po;
    if (partition_offsets(p, &po) != KERR_NONE)
        return -1;
    /* Everything in the log, committed or not yet, as Kafka loads it. */
    int64_t off = po.log_start, end = po.log_end;
    int64_t records = 0;
    int rc = 0;
    while (off < end && rc == 0) {
        struct partition_read rg = {.offset = off,
                                    .max_bytes = 1 << 20,
                                    .max_offset = end,
                                    .current_leader_epoch = -1,
                                    .reader = PARTITION_READER_LOCAL};
        if (partition_read(p, &rg) != KERR_NONE || rg.fd < 0) {
            if (rg.ref)
                partition_range_release(rg.ref);
            rc = -1;
            break;
        }
        uint8_t *buf = malloc((size_t)rg.len);
        if (!buf || pread(rg.fd, buf, (size_t)rg.len, rg.file_pos) != rg.len) {
            free(buf);
            partition_range_release(rg.ref);
            rc = -1;
            break;
        }
        partition_range_release(rg.ref);
        size_t pos = 0;
        int64_t next = off;
        while (pos < (size_t)rg.len) {
            struct batch_hdr h;
            if (batch_parse_header(buf + pos, (size_t)rg.len - pos, rg.len, &h)) {
                rc = -1;
                break;
            }
            struct batch_records rs;
            if (batch_records_begin(buf + pos, &h, &rs) == 0) {
                struct batch_record rec;
                while (batch_records_next(&rs, &rec) == 1) {
                    if (h.base_offset + rec.offset_delta >= off)
                        apply_record(&rec);
                    records++;
                }
                batch_records_end(&rs);
            }
            next = batch_last_offset(&h) + 1;
            pos += (size_t)batch_size(&h);
        }
        free(buf);
        if (next <= off)
            break; /* no progress: stop rather than loop */
        off = next;
    }
    int broadcasting = 0;
    for (int i = 0; i < gc.n; i++)
        broadcasting += gc.g[i]->model == GM_BROADCASTING;
    rlog_info("%s: loaded %lld records, %d groups (%d broadcasting)", GROUP_OFFSETS_TOPIC,
              (long long)records, gc.n, broadcasting);
    return rc;
}

int store_open(char *err, size_t errlen)
{
    /* Compacted, as Kafka's: the last commit per key stays forever, the
     * older ones go, so the topic (and the load on start) stays small. */
    struct config_overrides o = {0};
    config_overrides_set(&o, "cleanup.policy", "compact");
    config_overrides_set(&o, "segment.bytes", "104857600");
    struct topic *t = topics_get(GROUP_OFFSETS_TOPIC, strlen(GROUP_OFFSETS_TOPIC));
    int16_t code = 0;
    if (!t)
        code = topics_create(GROUP_OFFSETS_TOPIC, strlen(GROUP_OFFSETS_TOPIC), 1, &o, false, &t,
                             err, errlen);
    else if (!topic_settings(t)->compact)
        /* Written by a release without compaction: compact it from now on. */
        code = topics_set_overrides(GROUP_OFFSETS_TOPIC, strlen(GROUP_OFFSETS_TOPIC), &o, false,
                                    err, errlen);
    config_overrides_free(&o);
    if (code) {
        topic_put(t);
        return -1;
    }
    offsets_topic = t;
    return 0;
}

void store_close(void)
{
    topic_put(offsets_topic);
    offsets_topic = NULL;
}
