/*
 * Broadcast groups (message.model=BROADCASTING, RocketMQ's BROADCASTING
 * mode): every member receives every partition of the topics it
 * subscribes to, and offsets belong to the member's *instance*, not to
 * the group, so each instance reads the whole stream at its own pace and
 * a restarted instance resumes where it stopped.
 *
 * Clients do not know any of this: they join with the classic protocol,
 * their leader computes an assignment as usual, and the coordinator
 * replaces it in SyncGroup with one built here.  The assignment is built
 * when the member joins, from the ConsumerProtocolSubscription in its
 * JoinGroup metadata, because it needs partition counts from the topic
 * registry, whose lock is never taken under gc.mu.  A partition count
 * that changes later reaches the group through the clients: each one
 * rejoins when its metadata shows a subscribed topic changed, and the
 * rejoin computes the assignment again.
 *
 * An instance is named by the member's group.instance.id, else by its
 * client.id.  Requests that carry no member id (OffsetFetch before v9,
 * commits from outside the group protocol) find the instance through the
 * request header's client.id, which is why two live members of one
 * broadcast group may share neither an instance name nor a client.id.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/name_table.h"
#include "broker/topics.h"
#include "common/rlog.h"
#include "group/group_int.h"
#include "common/kerr.h"
#include "storage/batch.h"

/* Versions of ConsumerProtocolAssignment this coordinator writes: its
 * layout is the same in 0-3, only the version number differs. */
#define ASSIGNMENT_MAX_VERSION 3

static bool streq(kstr_t a, const char *b)
{
    return a.len >= 0 && b && strlen(b) == (size_t)a.len && !memcmp(a.ptr, b, (size_t)a.len);
}

/* ---- identities and instances ---- */

const char *member_identity(const struct gmember *m)
{
    if (m->instance_id)
        return m->instance_id;
    return m->client_id ? m->client_id : "";
}

static const char *instance_id_at(const void *table, int i)
{
    return ((struct ginstance *const *)table)[i]->id;
}

static int instance_idx(struct group *g, const char *id, size_t len, bool *found)
{
    return name_table_find(g->inst, g->n_inst, instance_id_at, id, len, found);
}

struct ginstance *instance_find(struct group *g, const char *id, size_t len)
{
    bool found;
    int i = instance_idx(g, id, len, &found);
    return found ? g->inst[i] : NULL;
}

struct ginstance *instance_get_or_create(struct group *g, const char *id, size_t len)
{
    bool found;
    int i = instance_idx(g, id, len, &found);
    if (found)
        return g->inst[i];
    if (g->n_inst == g->cap_inst) {
        g->cap_inst = g->cap_inst ? g->cap_inst * 2 : 8;
        g->inst = realloc(g->inst, (size_t)g->cap_inst * sizeof *g->inst);
        if (!g->inst)
            abort();
    }
    struct ginstance *in = calloc(1, sizeof *in);
    if (!in)
        abort();
    in->id = xstrndup(id, len);
    memmove(&g->inst[i + 1], &g->inst[i], (size_t)(g->n_inst - i) * sizeof *g->inst);
    g->inst[i] = in;
    g->n_inst++;
    return in;
}

static void instance_free(struct ginstance *in)
{
    offsets_free(in->offs, in->n_offs);
    free(in->id);
    free(in);
}

void instance_remove(struct group *g, struct ginstance *in)
{
    bool found;
    int i = instance_idx(g, in->id, strlen(in->id), &found);
    if (!found || g->inst[i] != in)
        return;
    memmove(&g->inst[i], &g->inst[i + 1], (size_t)(g->n_inst - i - 1) * sizeof *g->inst);
    g->n_inst--;
    instance_free(in);
}

void instances_free(struct group *g)
{
    for (int i = 0; i < g->n_inst; i++)
        instance_free(g->inst[i]);
    free(g->inst);
    g->inst = NULL;
    g->n_inst = g->cap_inst = 0;
}

struct ginstance *instance_for_client(struct group *g, kstr_t client_id, struct gmember **live)
{
    *live = NULL;
    if (client_id.len < 0)
        return NULL;
    for (int i = 0; i < g->n; i++)
        if (streq(client_id, g->m[i]->client_id)) {
            *live = g->m[i];
            const char *id = member_identity(g->m[i]);
            return instance_find(g, id, strlen(id));
        }
    return instance_find(g, client_id.ptr, (size_t)client_id.len);
}

/* ---- the assignment ---- */

/*
 * Parses a ConsumerProtocolSubscription (int16 version, then in every
 * version: topics [string], ...; later versions only add fields after
 * the topics, and a version above 3 is read as 3, as Kafka's own
 * ConsumerProtocol does) and encodes the Assignment of every partition
 * of those topics, in the subscription's version (at most 3), with empty
 * user data.  Topics that do not exist are left out.  -1 when the
 * metadata is not a subscription.
 */
static int build_assignment(const uint8_t *meta, int32_t len, uint8_t **out, int32_t *out_len)
{
    kr_t r;
    kr_init(&r, meta, len > 0 ? (size_t)len : 0);
    int16_t version = kr_i16(&r);
    int32_t n = kr_i32(&r);
    if (r.err || version < 0 || n < 0 || (size_t)n > kr_remaining(&r) / 2)
        return -1;
    /* The topic names, as views into meta. */
    kstr_t *names = calloc((size_t)(n ? n : 1), sizeof *names);
    if (!names)
        abort();
    int32_t nn = 0;
    for (int32_t i = 0; i < n; i++) {
        kstr_t name = kr_str(&r);
        if (r.err || name.len <= 0) {
            free(names);
            return -1;
        }
        bool dup = false;
        for (int32_t k = 0; k < nn && !dup; k++)
            dup = names[k].len == name.len && !memcmp(names[k].ptr, name.ptr, (size_t)name.len);
        if (!dup)
            names[nn++] = name;
    }
    kw_t w;
    kw_init(&w, 128);
    kw_i16(&w, version > ASSIGNMENT_MAX_VERSION ? ASSIGNMENT_MAX_VERSION : version);
    size_t count_at = kw_reserve(&w, 4);
    int32_t topics = 0;
    for (int32_t i = 0; i < nn; i++) {
        struct topic *t = topics_get(names[i].ptr, (size_t)names[i].len);
        if (!t)
            continue;
        int32_t np = topic_partition_count(t);
        topic_put(t);
        kw_str(&w, names[i]);
        kw_i32(&w, np);
        for (int32_t p = 0; p < np; p++)
            kw_i32(&w, p);
        topics++;
    }
    kw_i32(&w, 0); /* user_data: empty */
    kw_patch_i32(&w, count_at, topics);
    free(names);
    if (w.err) {
        kw_free(&w);
        abort(); /* out of memory, as everywhere in the coordinator */
    }
    *out = w.buf; /* handed over: freed with free() */
    *out_len = (int32_t)w.len;
    return 0;
}

struct bcast_prep *broadcast_prepare(const struct group_join_args *a)
{
    if (!streq(a->protocol_type, "consumer") || a->protocols_count <= 0)
        return NULL;
    struct bcast_prep *bp = calloc((size_t)a->protocols_count, sizeof *bp);
    if (!bp)
        abort();
    for (int32_t i = 0; i < a->protocols_count; i++) {
        kbytes_t md = a->protocols[i].metadata;
        bp[i].ok = build_assignment(md.ptr, md.len, &bp[i].p, &bp[i].len) == 0;
    }
    return bp;
}

void broadcast_prep_free(struct bcast_prep *bp, int n)
{
    for (int i = 0; bp && i < n; i++)
        free(bp[i].p);
    free(bp);
}

/* ---- who may join ---- */

int16_t broadcast_check_join(struct group *g, const struct group_join_args *a,
                             const struct gmember *self, const struct bcast_prep *prep)
{
    if (g->model != GM_BROADCASTING)
        return KERR_NONE;
    /* Only the consumer protocol says which topics a member reads. */
    if (!prep)
        return KERR_INCONSISTENT_GROUP_PROTOCOL;
    for (int32_t i = 0; i < a->protocols_count; i++)
        if (!prep[i].ok)
            return KERR_INCONSISTENT_GROUP_PROTOCOL;
    kstr_t identity = a->group_instance_id.len >= 0 ? a->group_instance_id : a->client_id;
    if (identity.len <= 0)
        return KERR_INVALID_REQUEST; /* nothing to keep its offsets under */
    /* A second live holder of an instance name or a client.id would share
     * (and overwrite) the first one's offsets: it waits until the first
     * leaves or expires.  A static member taking its own place back is
     * not a second holder.  Names and client.ids are one name space, as
     * a request without a member id names its instance by client.id. */
    for (int i = 0; i < g->n; i++) {
        const struct gmember *m = g->m[i];
        if (m == self)
            continue;
        const char *mid = member_identity(m);
        if (streq(identity, mid) || streq(identity, m->client_id) || streq(a->client_id, mid) ||
            streq(a->client_id, m->client_id)) {
            rlog_info("group %s: refused a member as '%.*s': instance in use by member %s", g->id,
                      (int)identity.len, identity.ptr, m->id);
            return KERR_UNRELEASED_INSTANCE_ID;
        }
    }
    return KERR_NONE;
}

int16_t broadcast_check_members(struct group *g, char *err, size_t errlen)
{
    for (int i = 0; i < g->n; i++) {
        const struct gmember *m = g->m[i];
        if (!m->protocol_type || strcmp(m->protocol_type, "consumer")) {
            snprintf(err, errlen,
                     "group %s has members of protocol type '%s'; only consumer groups can be "
                     "BROADCASTING",
                     g->id, m->protocol_type ? m->protocol_type : "");
            return KERR_INVALID_CONFIG;
        }
        for (int p = 0; p < m->n_protos; p++)
            if (!m->protos[p].bcast) {
                snprintf(err, errlen, "member %s of group %s sent no consumer subscription", m->id,
                         g->id);
                return KERR_INVALID_CONFIG;
            }
        const char *id = member_identity(m);
        if (!*id) {
            snprintf(err, errlen,
                     "member %s of group %s has neither a group.instance.id nor a "
                     "client.id",
                     m->id, g->id);
            return KERR_INVALID_CONFIG;
        }
        const char *mc = m->client_id ? m->client_id : "";
        for (int k = 0; k < i; k++) {
            const struct gmember *o = g->m[k];
            const char *oid = member_identity(o), *oc = o->client_id ? o->client_id : "";
            const char *clash = !strcmp(id, oid) || !strcmp(id, oc)   ? id
                                : !strcmp(mc, oid) || !strcmp(mc, oc) ? mc
                                                                      : NULL;
            if (clash) {
                snprintf(err, errlen,
                         "members %s and %s of group %s share the name '%s' (group.instance.id "
                         "or client.id); broadcast members need distinct ones",
                         o->id, m->id, g->id, clash);
                return KERR_INVALID_CONFIG;
            }
        }
    }
    return KERR_NONE;
}

/* ---- retention ---- */

void broadcast_expire_instances(struct group *g, int64_t wall_ms)
{
    if (gc.retention_ms <= 0)
        return;
    for (int i = g->n_inst - 1; i >= 0; i--) {
        struct ginstance *in = g->inst[i];
        /* Cheap test first: this runs on every tick. */
        bool stale = true;
        for (int k = 0; k < in->n_offs && stale; k++)
            stale = wall_ms - in->offs[k].commit_ts > gc.retention_ms;
        bool live = false;
        for (int k = 0; stale && k < g->n && !live; k++)
            live = !strcmp(member_identity(g->m[k]), in->id);
        if (!stale || live)
            continue;
        size_t nd = in->n_offs > 0 ? (size_t)in->n_offs : 1;
        struct group_offset *del = calloc(nd, sizeof *del);
        if (!del)
            continue;
        for (int k = 0; k < in->n_offs; k++) {
            del[k].topic = kstr_c(in->offs[k].topic);
            del[k].partition = in->offs[k].partition;
        }
        /* Tombstones first: an instance forgotten in memory only would
         * come back on the next start. */
        if (in->n_offs == 0 || store_instance_tombstones(g, in->id, del, in->n_offs) == 0) {
            rlog_info("group %s: committed offsets of instance %s expired", g->id, in->id);
            instance_remove(g, in);
        }
        free(del);
    }
}
