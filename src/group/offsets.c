/*
 * Committed offsets: OffsetCommit, OffsetFetch, OffsetDelete.  Every
 * commit is appended to __consumer_offsets (store.c) before it is
 * acknowledged and applied in memory.
 */
#include <stdlib.h>
#include <string.h>

#include "broker/topics.h"
#include "common/clock.h"
#include "group/group_int.h"
#include "kafka/errors.h"

static bool partition_exists(kstr_t topic, int32_t partition)
{
    if (topic.len <= 0)
        return false;
    struct topic *t = topics_get(topic.ptr, (size_t)topic.len);
    bool ok = t && topic_read_partition(t, partition) != NULL; /* views too */
    topic_put(t);
    return ok;
}

int16_t group_commit(kstr_t group_id, int32_t generation, kstr_t member_id, kstr_t instance_id,
                     struct group_offset *offs, int32_t n)
{
    if (group_id.len <= 0)
        return KERR_INVALID_GROUP_ID;
    bool *skip = calloc((size_t)(n > 0 ? n : 1), sizeof *skip);
    if (!skip)
        return KERR_UNKNOWN_SERVER_ERROR;
    /* Partition checks need the topic registry: before the coordinator
     * lock, which is never held around the registry's. */
    for (int32_t i = 0; i < n; i++) {
        offs[i].error = KERR_NONE;
        if (!partition_exists(offs[i].topic, offs[i].partition))
            offs[i].error = KERR_UNKNOWN_TOPIC_OR_PARTITION;
        else if (offs[i].metadata.len > gc.metadata_max)
            offs[i].error = KERR_OFFSET_METADATA_TOO_LARGE;
        skip[i] = offs[i].error != KERR_NONE;
    }
    pthread_mutex_lock(&gc.mu);
    int16_t err = KERR_NONE;
    struct group *g = group_find(group_id.ptr, (size_t)group_id.len);
    /* Kafka's validateOffsetCommit, in its order. */
    if (generation < 0 && member_id.len <= 0 && instance_id.len < 0) {
        /* A commit from outside the group protocol (manual assignment):
         * allowed while nobody is a member. */
        if (!g)
            g = group_get_or_create(group_id.ptr, (size_t)group_id.len);
        if (g->n > 0)
            err = KERR_UNKNOWN_MEMBER_ID;
    } else if (!g) {
        /* A generation for a group that does not exist comes from an
         * older incarnation of it. */
        err = generation >= 0 ? KERR_ILLEGAL_GENERATION : KERR_UNKNOWN_MEMBER_ID;
    } else {
        struct gmember *m;
        err = group_validate_member(g, member_id, instance_id, &m, NULL);
        if (err == KERR_NONE && generation != g->generation)
            err = KERR_ILLEGAL_GENERATION;
        else if (err == KERR_NONE && g->state == GS_COMPLETING)
            err = KERR_REBALANCE_IN_PROGRESS;
        else if (err == KERR_NONE)
            m->last_seen = clock_mono_ms();
    }
    if (err == KERR_NONE) {
        int64_t now = clock_wall_ms();
        if (store_offsets(g, offs, skip, n, now)) {
            err = KERR_UNKNOWN_SERVER_ERROR; /* nothing applied: retriable */
        } else {
            for (int32_t i = 0; i < n; i++) {
                if (skip[i])
                    continue;
                struct goffset *o = group_offset_upsert(
                    g, offs[i].topic.ptr, (size_t)offs[i].topic.len, offs[i].partition);
                o->offset = offs[i].offset;
                o->leader_epoch = offs[i].leader_epoch;
                free(o->metadata);
                o->metadata = NULL;
                if (offs[i].metadata.len > 0) {
                    o->metadata = strndup(offs[i].metadata.ptr, (size_t)offs[i].metadata.len);
                }
                o->commit_ts = now;
            }
        }
    }
    pthread_mutex_unlock(&gc.mu);
    if (err != KERR_NONE)
        for (int32_t i = 0; i < n; i++)
            if (!skip[i])
                offs[i].error = err;
    free(skip);
    return err;
}

static kstr_t acopy(arena_t *a, const char *s)
{
    if (!s)
        return kstr_c("");
    char *d = arena_strndup(a, s, strlen(s));
    return d ? kstr_c(d) : kstr_c("");
}

int16_t group_fetch_offsets(kstr_t group_id, struct group_offset *offs, int32_t n, arena_t *a)
{
    pthread_mutex_lock(&gc.mu);
    struct group *g = group_id.len > 0 ? group_find(group_id.ptr, (size_t)group_id.len) : NULL;
    for (int32_t i = 0; i < n; i++) {
        offs[i].offset = -1;
        offs[i].leader_epoch = -1;
        offs[i].metadata = kstr_c("");
        offs[i].error = KERR_NONE;
        if (!g || offs[i].topic.len < 0)
            continue;
        for (int k = 0; k < g->n_offs; k++) {
            struct goffset *o = &g->offs[k];
            if (o->partition == offs[i].partition &&
                strlen(o->topic) == (size_t)offs[i].topic.len &&
                !memcmp(o->topic, offs[i].topic.ptr, (size_t)offs[i].topic.len)) {
                offs[i].offset = o->offset;
                offs[i].leader_epoch = o->leader_epoch;
                offs[i].metadata = acopy(a, o->metadata);
                break;
            }
        }
    }
    pthread_mutex_unlock(&gc.mu);
    return KERR_NONE;
}

int16_t group_all_offsets(kstr_t group_id, arena_t *a, struct group_offset **out, int32_t *n)
{
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&gc.mu);
    struct group *g = group_id.len > 0 ? group_find(group_id.ptr, (size_t)group_id.len) : NULL;
    if (g && g->n_offs > 0) {
        *out = arena_alloc(a, (size_t)g->n_offs * sizeof **out);
        for (int k = 0; *out && k < g->n_offs; k++) {
            struct group_offset *o = &(*out)[k];
            o->topic = acopy(a, g->offs[k].topic);
            o->partition = g->offs[k].partition;
            o->offset = g->offs[k].offset;
            o->leader_epoch = g->offs[k].leader_epoch;
            o->metadata = acopy(a, g->offs[k].metadata);
            o->error = KERR_NONE;
        }
        if (*out)
            *n = g->n_offs;
    }
    pthread_mutex_unlock(&gc.mu);
    return KERR_NONE;
}

/* Does any member's subscription (consumer protocol) name this topic? */
static bool subscribed(struct group *g, kstr_t topic)
{
    for (int i = 0; i < g->n; i++)
        for (int p = 0; p < g->m[i]->n_protos; p++) {
            /* ConsumerProtocolSubscription: version int16, topics
             * [string]; a substring check on the encoded names is exact
             * enough because each name is length-prefixed. */
            const uint8_t *md = g->m[i]->protos[p].meta;
            int32_t len = g->m[i]->protos[p].len;
            if (len < 6)
                continue;
            int32_t cnt = (int32_t)((uint32_t)md[2] << 24 | (uint32_t)md[3] << 16 |
                                    (uint32_t)md[4] << 8 | md[5]);
            int32_t pos = 6;
            for (int32_t t = 0; t < cnt && pos + 2 <= len; t++) {
                int32_t sl = (int16_t)(md[pos] << 8 | md[pos + 1]);
                pos += 2;
                if (sl < 0 || pos + sl > len)
                    break;
                if (sl == topic.len && !memcmp(md + pos, topic.ptr, (size_t)sl))
                    return true;
                pos += sl;
            }
        }
    return false;
}

int16_t group_delete_offsets(kstr_t group_id, struct group_offset *offs, int32_t n)
{
    pthread_mutex_lock(&gc.mu);
    struct group *g = group_id.len > 0 ? group_find(group_id.ptr, (size_t)group_id.len) : NULL;
    int16_t err = g ? KERR_NONE : KERR_GROUP_ID_NOT_FOUND;
    if (g) {
        for (int32_t i = 0; i < n; i++)
            offs[i].error = g->state != GS_EMPTY && subscribed(g, offs[i].topic)
                                ? KERR_GROUP_SUBSCRIBED_TO_TOPIC
                                : KERR_NONE;
        /* Tombstones first: an offset deleted in memory only would come
         * back on the next start. */
        struct group_offset *del = calloc((size_t)(n > 0 ? n : 1), sizeof *del);
        int32_t nd = 0;
        for (int32_t i = 0; del && i < n; i++)
            if (offs[i].error == KERR_NONE && offs[i].topic.len > 0)
                del[nd++] = offs[i];
        if (!del || (nd && store_offset_tombstones(g, del, nd)))
            err = KERR_UNKNOWN_SERVER_ERROR;
        else
            for (int32_t i = 0; i < nd; i++)
                group_offset_remove(g, del[i].topic.ptr, (size_t)del[i].topic.len,
                                    del[i].partition);
        free(del);
    }
    pthread_mutex_unlock(&gc.mu);
    return err;
}

void groups_forget_topic(const char *topic, size_t len)
{
    pthread_mutex_lock(&gc.mu);
    for (int i = 0; i < gc.n; i++) {
        struct group *g = gc.g[i];
        struct group_offset *del = NULL;
        int32_t nd = 0;
        for (int k = 0; k < g->n_offs; k++)
            if (strlen(g->offs[k].topic) == len && !memcmp(g->offs[k].topic, topic, len)) {
                struct group_offset *d = realloc(del, (size_t)(nd + 1) * sizeof *del);
                if (!d)
                    break;
                del = d;
                memset(&del[nd], 0, sizeof del[nd]);
                del[nd].topic = (kstr_t){g->offs[k].topic, (int32_t)len};
                del[nd].partition = g->offs[k].partition;
                nd++;
            }
        /* Tombstones first, so the offsets stay gone after a restart. */
        if (nd && store_offset_tombstones(g, del, nd) == 0)
            for (int32_t k = nd - 1; k >= 0; k--)
                group_offset_remove(g, topic, len, del[k].partition);
        free(del);
    }
    pthread_mutex_unlock(&gc.mu);
}

/* ---- ListGroups, DescribeGroups, DeleteGroups ---- */

int group_list(arena_t *a, struct group_summary **out, int32_t *n)
{
    pthread_mutex_lock(&gc.mu);
    *out = arena_alloc(a, (size_t)(gc.n ? gc.n : 1) * sizeof **out);
    *n = 0;
    for (int i = 0; *out && i < gc.n; i++) {
        struct group *g = gc.g[i];
        (*out)[*n].group_id = acopy(a, g->id);
        (*out)[*n].protocol_type = acopy(a, g->protocol_type);
        (*out)[*n].state = kstr_c(group_state_name(g->state));
        (*n)++;
    }
    pthread_mutex_unlock(&gc.mu);
    return *out ? 0 : -1;
}

void group_describe(kstr_t group_id, arena_t *a, struct group_desc *out)
{
    memset(out, 0, sizeof *out);
    out->group_id = group_id;
    out->protocol_type = kstr_c("");
    out->protocol = kstr_c("");
    pthread_mutex_lock(&gc.mu);
    struct group *g = group_id.len > 0 ? group_find(group_id.ptr, (size_t)group_id.len) : NULL;
    if (!g) {
        /* Kafka describes an unknown group as Dead with no members. */
        out->state = kstr_c("Dead");
        pthread_mutex_unlock(&gc.mu);
        return;
    }
    out->state = kstr_c(group_state_name(g->state));
    out->protocol_type = acopy(a, g->protocol_type);
    out->protocol = acopy(a, g->protocol);
    out->members = arena_alloc(a, (size_t)(g->n ? g->n : 1) * sizeof *out->members);
    for (int i = 0; out->members && i < g->n; i++) {
        struct gmember *m = g->m[i];
        struct group_member_desc *d = &out->members[out->members_count++];
        d->member_id = acopy(a, m->id);
        d->group_instance_id = m->instance_id ? acopy(a, m->instance_id) : (kstr_t){NULL, -1};
        d->client_id = acopy(a, m->client_id);
        d->client_host = acopy(a, m->client_host);
        d->metadata = (kbytes_t){(const uint8_t *)"", 0};
        for (int p = 0; g->protocol && p < m->n_protos; p++)
            if (!strcmp(m->protos[p].name, g->protocol) && m->protos[p].len > 0) {
                uint8_t *c = arena_alloc(a, (size_t)m->protos[p].len);
                if (c) {
                    memcpy(c, m->protos[p].meta, (size_t)m->protos[p].len);
                    d->metadata = (kbytes_t){c, m->protos[p].len};
                }
            }
        d->assignment = (kbytes_t){(const uint8_t *)"", 0};
        if (m->assignment_len > 0) {
            uint8_t *c = arena_alloc(a, (size_t)m->assignment_len);
            if (c) {
                memcpy(c, m->assignment, (size_t)m->assignment_len);
                d->assignment = (kbytes_t){c, m->assignment_len};
            }
        }
    }
    pthread_mutex_unlock(&gc.mu);
}

int16_t group_delete(kstr_t group_id)
{
    pthread_mutex_lock(&gc.mu);
    struct group *g = group_id.len > 0 ? group_find(group_id.ptr, (size_t)group_id.len) : NULL;
    int16_t err = KERR_NONE;
    if (!g)
        err = KERR_GROUP_ID_NOT_FOUND;
    else if (g->n > 0)
        err = KERR_NON_EMPTY_GROUP;
    else {
        struct group_offset *del = calloc((size_t)(g->n_offs ? g->n_offs : 1), sizeof *del);
        for (int k = 0; del && k < g->n_offs; k++) {
            del[k].topic = kstr_c(g->offs[k].topic);
            del[k].partition = g->offs[k].partition;
        }
        if (!del || (g->n_offs && store_offset_tombstones(g, del, g->n_offs)) ||
            store_group_tombstone(g->id))
            err = KERR_UNKNOWN_SERVER_ERROR;
        else
            group_remove(g);
        free(del);
    }
    pthread_mutex_unlock(&gc.mu);
    return err;
}
