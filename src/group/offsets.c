/*
 * Committed offsets: OffsetCommit, OffsetFetch, OffsetDelete.  Every
 * commit is appended to __consumer_offsets (store.c) before it is
 * acknowledged and applied in memory.
 *
 * A broadcast group keeps offsets per instance (broadcast.c): a member
 * commits to and fetches from its own instance.  A request without a
 * member id reaches the instance named by its client.id (the live member
 * with that client.id, else the instance of that name); a fetch by a
 * client that names no instance (an admin tool) gets, per partition, the
 * lowest offset any instance committed, so a lag monitor sees the lag of
 * the instance furthest behind.
 */
#include <stdlib.h>
#include <string.h>

#include "broker/topics.h"
#include "common/clock.h"
#include "group/group_int.h"
#include "common/kerr.h"

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
    return group_commit_as(group_id, (kstr_t){NULL, -1}, generation, member_id, instance_id, offs,
                           n);
}

int16_t group_commit_as(kstr_t group_id, kstr_t client_id, int32_t generation, kstr_t member_id,
                        kstr_t instance_id, struct group_offset *offs, int32_t n)
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
    /* Broadcast groups: the instance the commit is for. */
    char *inst_id = NULL;
    /* Kafka's validateOffsetCommit, in its order. */
    if (generation < 0 && member_id.len <= 0 && instance_id.len < 0) {
        /* A commit from outside the group protocol (manual assignment):
         * allowed while nobody is a member -- in a broadcast group, while
         * the instance it is for (its client.id) is not a member. */
        if (!g)
            g = group_get_or_create(group_id.ptr, (size_t)group_id.len);
        if (g->model == GM_BROADCASTING) {
            struct gmember *live;
            instance_for_client(g, client_id, &live);
            if (live || client_id.len <= 0)
                err = KERR_UNKNOWN_MEMBER_ID;
            else
                inst_id = strndup(client_id.ptr, (size_t)client_id.len);
        } else if (g->n > 0) {
            err = KERR_UNKNOWN_MEMBER_ID;
        }
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
        if (err == KERR_NONE && g->model == GM_BROADCASTING)
            inst_id = strdup(member_identity(m));
    }
    if (err == KERR_NONE && g->model == GM_BROADCASTING && !inst_id)
        err = KERR_UNKNOWN_SERVER_ERROR; /* out of memory */
    if (err == KERR_NONE) {
        int64_t now = clock_wall_ms();
        int rc = inst_id ? store_instance_offsets(g, inst_id, offs, skip, n, now)
                         : store_offsets(g, offs, skip, n, now);
        if (rc) {
            err = KERR_UNKNOWN_SERVER_ERROR; /* nothing applied: retriable */
        } else {
            struct ginstance *in =
                inst_id ? instance_get_or_create(g, inst_id, strlen(inst_id)) : NULL;
            for (int32_t i = 0; i < n; i++) {
                if (skip[i])
                    continue;
                struct goffset *o =
                    in ? offsets_upsert(&in->offs, &in->n_offs, &in->cap_offs, offs[i].topic.ptr,
                                        (size_t)offs[i].topic.len, offs[i].partition)
                       : group_offset_upsert(g, offs[i].topic.ptr, (size_t)offs[i].topic.len,
                                             offs[i].partition);
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
    free(inst_id);
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

/*
 * Where a fetch in group g reads: the group's own table (clustering), one
 * instance's (*in, possibly NULL: nothing committed yet), or, with *min
 * set, the lowest offset of every instance.
 */
static void fetch_source(struct group *g, kstr_t client_id, struct ginstance **in, bool *min)
{
    *in = NULL;
    *min = false;
    if (!g || g->model != GM_BROADCASTING)
        return;
    struct gmember *live;
    *in = instance_for_client(g, client_id, &live);
    *min = !live && !*in;
}

/* The offset of (topic, partition) in the source fetch_source() chose. */
static const struct goffset *fetch_one(struct group *g, struct ginstance *in, bool min,
                                       const char *topic, size_t tlen, int32_t partition)
{
    if (!g)
        return NULL;
    if (g->model != GM_BROADCASTING)
        return offsets_find(g->offs, g->n_offs, topic, tlen, partition);
    if (!min)
        return in ? offsets_find(in->offs, in->n_offs, topic, tlen, partition) : NULL;
    const struct goffset *best = NULL;
    for (int i = 0; i < g->n_inst; i++) {
        const struct goffset *o =
            offsets_find(g->inst[i]->offs, g->inst[i]->n_offs, topic, tlen, partition);
        if (o && (!best || o->offset < best->offset))
            best = o;
    }
    return best;
}

int16_t group_fetch_offsets(kstr_t group_id, struct group_offset *offs, int32_t n, arena_t *a)
{
    return group_fetch_offsets_as(group_id, (kstr_t){NULL, -1}, offs, n, a);
}

int16_t group_fetch_offsets_as(kstr_t group_id, kstr_t client_id, struct group_offset *offs,
                               int32_t n, arena_t *a)
{
    pthread_mutex_lock(&gc.mu);
    struct group *g = group_id.len > 0 ? group_find(group_id.ptr, (size_t)group_id.len) : NULL;
    struct ginstance *in;
    bool min;
    fetch_source(g, client_id, &in, &min);
    for (int32_t i = 0; i < n; i++) {
        offs[i].offset = -1;
        offs[i].leader_epoch = -1;
        offs[i].metadata = kstr_c("");
        offs[i].error = KERR_NONE;
        if (offs[i].topic.len < 0)
            continue;
        const struct goffset *o =
            fetch_one(g, in, min, offs[i].topic.ptr, (size_t)offs[i].topic.len, offs[i].partition);
        if (o) {
            offs[i].offset = o->offset;
            offs[i].leader_epoch = o->leader_epoch;
            offs[i].metadata = acopy(a, o->metadata);
        }
    }
    pthread_mutex_unlock(&gc.mu);
    return KERR_NONE;
}

/* Copies a table into arena. */
static int copy_offsets(arena_t *a, const struct goffset *v, int n, struct group_offset **out,
                        int32_t *count)
{
    *out = NULL;
    *count = 0;
    if (n <= 0)
        return 0;
    *out = arena_alloc(a, (size_t)n * sizeof **out);
    if (!*out)
        return -1;
    for (int k = 0; k < n; k++) {
        struct group_offset *o = &(*out)[k];
        o->topic = acopy(a, v[k].topic);
        o->partition = v[k].partition;
        o->offset = v[k].offset;
        o->leader_epoch = v[k].leader_epoch;
        o->metadata = acopy(a, v[k].metadata);
        o->error = KERR_NONE;
    }
    *count = n;
    return 0;
}

int16_t group_all_offsets(kstr_t group_id, arena_t *a, struct group_offset **out, int32_t *n)
{
    return group_all_offsets_as(group_id, (kstr_t){NULL, -1}, a, out, n);
}

int16_t group_all_offsets_as(kstr_t group_id, kstr_t client_id, arena_t *a,
                             struct group_offset **out, int32_t *n)
{
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&gc.mu);
    struct group *g = group_id.len > 0 ? group_find(group_id.ptr, (size_t)group_id.len) : NULL;
    struct ginstance *in;
    bool min;
    fetch_source(g, client_id, &in, &min);
    if (!g) {
        ;
    } else if (g->model != GM_BROADCASTING) {
        copy_offsets(a, g->offs, g->n_offs, out, n);
    } else if (!min) {
        if (in)
            copy_offsets(a, in->offs, in->n_offs, out, n);
    } else {
        /* Every partition any instance committed, at its lowest offset. */
        struct goffset *v = NULL;
        int nv = 0, cap = 0;
        for (int i = 0; i < g->n_inst; i++)
            for (int k = 0; k < g->inst[i]->n_offs; k++) {
                const struct goffset *o = &g->inst[i]->offs[k];
                struct goffset *m =
                    offsets_upsert(&v, &nv, &cap, o->topic, strlen(o->topic), o->partition);
                if (m->offset < 0 || o->offset < m->offset) {
                    m->offset = o->offset;
                    m->leader_epoch = o->leader_epoch;
                    free(m->metadata);
                    m->metadata = o->metadata ? strdup(o->metadata) : NULL;
                }
            }
        copy_offsets(a, v, nv, out, n);
        offsets_free(v, nv);
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

/*
 * Deletes the partitions in del from every instance of g that has them,
 * tombstones first; an instance left without offsets is forgotten.
 * 0, or -1 when a tombstone could not be written.
 */
static int instances_drop(struct group *g, const struct group_offset *del, int32_t nd)
{
    int rc = 0;
    struct group_offset *mine = calloc((size_t)(nd > 0 ? nd : 1), sizeof *mine);
    if (!mine)
        return -1;
    for (int i = g->n_inst - 1; i >= 0; i--) {
        struct ginstance *in = g->inst[i];
        int32_t nm = 0;
        for (int32_t k = 0; k < nd; k++)
            if (offsets_find(in->offs, in->n_offs, del[k].topic.ptr, (size_t)del[k].topic.len,
                             del[k].partition))
                mine[nm++] = del[k];
        if (nm == 0)
            continue;
        if (store_instance_tombstones(g, in->id, mine, nm)) {
            rc = -1;
            continue;
        }
        for (int32_t k = 0; k < nm; k++)
            offsets_remove(in->offs, &in->n_offs, mine[k].topic.ptr, (size_t)mine[k].topic.len,
                           mine[k].partition);
        if (in->n_offs == 0)
            instance_remove(g, in);
    }
    free(mine);
    return rc;
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
        /* A broadcast group's instances lose them too. */
        if (err == KERR_NONE && nd && instances_drop(g, del, nd))
            err = KERR_UNKNOWN_SERVER_ERROR;
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
        /* Broadcast instances: every partition of the topic they have. */
        del = NULL;
        nd = 0;
        for (int x = 0; x < g->n_inst; x++)
            for (int k = 0; k < g->inst[x]->n_offs; k++) {
                const struct goffset *o = &g->inst[x]->offs[k];
                if (strlen(o->topic) != len || memcmp(o->topic, topic, len))
                    continue;
                bool seen = false;
                for (int32_t j = 0; j < nd && !seen; j++)
                    seen = del[j].partition == o->partition;
                if (seen)
                    continue;
                struct group_offset *d = realloc(del, (size_t)(nd + 1) * sizeof *del);
                if (!d)
                    break;
                del = d;
                memset(&del[nd], 0, sizeof del[nd]);
                del[nd].topic = (kstr_t){topic, (int32_t)len};
                del[nd].partition = o->partition;
                nd++;
            }
        if (nd)
            instances_drop(g, del, nd);
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
        /* The group's metadata tombstone goes last: once it is written
         * the group is gone on the next start, whatever else is left. */
        bool failed = !del || (g->n_offs && store_offset_tombstones(g, del, g->n_offs));
        for (int i = 0; !failed && i < g->n_inst; i++) {
            struct ginstance *in = g->inst[i];
            struct group_offset *d = calloc((size_t)(in->n_offs > 0 ? in->n_offs : 1), sizeof *d);
            for (int k = 0; d && k < in->n_offs; k++) {
                d[k].topic = kstr_c(in->offs[k].topic);
                d[k].partition = in->offs[k].partition;
            }
            failed = !d || (in->n_offs && store_instance_tombstones(g, in->id, d, in->n_offs));
            free(d);
        }
        if (!failed && g->model_set)
            failed = store_group_settings_tombstone(g->id) != 0;
        if (failed || store_group_tombstone(g->id))
            err = KERR_UNKNOWN_SERVER_ERROR;
        else
            group_remove(g);
        free(del);
    }
    pthread_mutex_unlock(&gc.mu);
    return err;
}
