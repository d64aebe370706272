/*
 * The group state machine: joins, syncs, heartbeats, leaves, timeouts.
 * The rules follow Kafka's GroupCoordinator for the classic protocol;
 * each error code is returned where Kafka returns it, because clients
 * decide what to do next from it (rejoin, drop the generation, retry).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "common/name_table.h"
#include "broker/config.h"
#include "common/clock.h"
#include "common/rlog.h"
#include "group/group_int.h"
#include "common/kerr.h"

struct coordinator gc = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* How long an id handed out with MEMBER_ID_REQUIRED waits for its join. */
#define PENDING_MEMBER_MS 300000

const char *group_state_name(enum group_state s)
{
    switch (s) {
    case GS_EMPTY:
        return "Empty";
    case GS_PREPARING:
        return "PreparingRebalance";
    case GS_COMPLETING:
        return "CompletingRebalance";
    case GS_STABLE:
        return "Stable";
    default:
        return "Dead";
    }
}

char *xstrndup(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d)
        abort(); /* coordinator state that cannot be recorded is lost state */
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

static char *kdup(kstr_t s)
{
    return s.len < 0 ? NULL : xstrndup(s.ptr, (size_t)s.len);
}

static bool keq(kstr_t a, const char *b)
{
    if (a.len < 0)
        return b == NULL;
    return b && strlen(b) == (size_t)a.len && !memcmp(a.ptr, b, (size_t)a.len);
}

static kstr_t acopy(arena_t *a, const char *s)
{
    if (!s)
        return (kstr_t){NULL, -1};
    char *d = arena_strndup(a, s, strlen(s));
    return d ? kstr_c(d) : (kstr_t){"", 0};
}

static kbytes_t acopy_bytes(arena_t *a, const uint8_t *p, int32_t len)
{
    if (len <= 0)
        return (kbytes_t){(const uint8_t *)"", 0};
    uint8_t *d = arena_alloc(a, (size_t)len);
    if (!d)
        return (kbytes_t){(const uint8_t *)"", 0};
    memcpy(d, p, (size_t)len);
    return (kbytes_t){d, len};
}

/* ---- groups table ---- */

static const char *group_id_at(const void *table, int i)
{
    return ((struct group *const *)table)[i]->id;
}

static int group_idx(const char *id, size_t len, bool *found)
{
    return name_table_find(gc.g, gc.n, group_id_at, id, len, found);
}

struct group *group_find(const char *id, size_t len)
{
    bool found;
    int i = group_idx(id, len, &found);
    return found ? gc.g[i] : NULL;
}

struct group *group_get_or_create(const char *id, size_t len)
{
    bool found;
    int i = group_idx(id, len, &found);
    if (found)
        return gc.g[i];
    if (gc.n == gc.cap) {
        gc.cap = gc.cap ? gc.cap * 2 : 16;
        gc.g = realloc(gc.g, (size_t)gc.cap * sizeof *gc.g);
        if (!gc.g)
            abort();
    }
    struct group *g = calloc(1, sizeof *g);
    if (!g)
        abort();
    g->id = xstrndup(id, len);
    g->state = GS_EMPTY;
    g->empty_since = clock_wall_ms();
    memmove(&gc.g[i + 1], &gc.g[i], (size_t)(gc.n - i) * sizeof *gc.g);
    gc.g[i] = g;
    gc.n++;
    return g;
}

static void member_free(struct gmember *m)
{
    free(m->id);
    free(m->instance_id);
    free(m->client_id);
    free(m->client_host);
    free(m->protocol_type);
    for (int i = 0; i < m->n_protos; i++) {
        free(m->protos[i].name);
        free(m->protos[i].meta);
        free(m->protos[i].bcast);
    }
    free(m->protos);
    free(m->assignment);
    free(m);
}

void group_remove(struct group *g)
{
    bool found;
    int i = group_idx(g->id, strlen(g->id), &found);
    if (found) {
        memmove(&gc.g[i], &gc.g[i + 1], (size_t)(gc.n - i - 1) * sizeof *gc.g);
        gc.n--;
    }
    for (int k = 0; k < g->n; k++)
        member_free(g->m[k]);
    free(g->m);
    for (int k = 0; k < g->n_pending; k++)
        free(g->pending[k].id);
    free(g->pending);
    offsets_free(g->offs, g->n_offs);
    instances_free(g);
    free(g->id);
    free(g->protocol_type);
    free(g->protocol);
    free(g->leader);
    free(g);
}

/* ---- offsets, sorted by (topic, partition) ---- */

static int offset_cmp(const struct goffset *o, const char *topic, size_t tlen, int32_t part)
{
    int c = strncmp(o->topic, topic, tlen);
    if (c == 0)
        c = o->topic[tlen] ? 1 : 0;
    if (c == 0)
        c = o->partition < part ? -1 : o->partition > part;
    return c;
}

static int offset_idx(const struct goffset *v, int n, const char *topic, size_t tlen, int32_t part,
                      bool *found)
{
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        int c = offset_cmp(&v[mid], topic, tlen, part);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

struct goffset *offsets_upsert(struct goffset **v, int *n, int *cap, const char *topic, size_t tlen,
                               int32_t partition)
{
    bool found;
    int i = offset_idx(*v, *n, topic, tlen, partition, &found);
    if (found)
        return &(*v)[i];
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        *v = realloc(*v, (size_t)*cap * sizeof **v);
        if (!*v)
            abort();
    }
    memmove(&(*v)[i + 1], &(*v)[i], (size_t)(*n - i) * sizeof **v);
    (*n)++;
    struct goffset *o = &(*v)[i];
    memset(o, 0, sizeof *o);
    o->topic = xstrndup(topic, tlen);
    o->partition = partition;
    o->offset = -1;
    o->leader_epoch = -1;
    return o;
}

struct goffset *offsets_find(struct goffset *v, int n, const char *topic, size_t tlen,
                             int32_t partition)
{
    bool found;
    int i = offset_idx(v, n, topic, tlen, partition, &found);
    return found ? &v[i] : NULL;
}

void offsets_remove(struct goffset *v, int *n, const char *topic, size_t tlen, int32_t partition)
{
    bool found;
    int i = offset_idx(v, *n, topic, tlen, partition, &found);
    if (!found)
        return;
    free(v[i].topic);
    free(v[i].metadata);
    memmove(&v[i], &v[i + 1], (size_t)(*n - i - 1) * sizeof *v);
    (*n)--;
}

void offsets_free(struct goffset *v, int n)
{
    for (int k = 0; k < n; k++) {
        free(v[k].topic);
        free(v[k].metadata);
    }
    free(v);
}

struct goffset *group_offset_upsert(struct group *g, const char *topic, size_t tlen,
                                    int32_t partition)
{
    return offsets_upsert(&g->offs, &g->n_offs, &g->cap_offs, topic, tlen, partition);
}

void group_offset_remove(struct group *g, const char *topic, size_t tlen, int32_t partition)
{
    offsets_remove(g->offs, &g->n_offs, topic, tlen, partition);
}

/* ---- members ---- */

static struct gmember *member_find(struct group *g, kstr_t id, int *idx)
{
    for (int i = 0; i < g->n; i++)
        if (keq(id, g->m[i]->id)) {
            if (idx)
                *idx = i;
            return g->m[i];
        }
    return NULL;
}

static struct gmember *member_by_instance(struct group *g, kstr_t instance)
{
    if (instance.len < 0)
        return NULL;
    for (int i = 0; i < g->n; i++)
        if (g->m[i]->instance_id && keq(instance, g->m[i]->instance_id))
            return g->m[i];
    return NULL;
}

/*
 * Kafka's validateCurrentMember: with an instance id, that instance must
 * exist and be mapped to member_id (another id means this one was
 * replaced: FENCED_INSTANCE_ID, which clients treat as fatal rather than
 * rejoining and pushing the new instance out); without, member_id must
 * be a member.
 */
int16_t group_validate_member(struct group *g, kstr_t member_id, kstr_t instance_id,
                              struct gmember **out, int *idx)
{
    *out = NULL;
    if (!g)
        return KERR_UNKNOWN_MEMBER_ID;
    if (instance_id.len >= 0) {
        struct gmember *m = member_by_instance(g, instance_id);
        if (!m)
            return KERR_UNKNOWN_MEMBER_ID;
        if (!keq(member_id, m->id))
            return KERR_FENCED_INSTANCE_ID;
        *out = member_find(g, member_id, idx);
        return KERR_NONE;
    }
    *out = member_find(g, member_id, idx);
    return *out ? KERR_NONE : KERR_UNKNOWN_MEMBER_ID;
}

static char *new_member_id(kstr_t prefix)
{
    uint8_t r[16];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
        memset(r, 0, sizeof r);
    char buf[400];
    int n = snprintf(buf, sizeof buf, "%.*s-",
                     prefix.len > 0 ? (prefix.len > 200 ? 200 : prefix.len) : 6,
                     prefix.len > 0 ? prefix.ptr : "member");
    for (int i = 0; i < 16; i++) {
        n += snprintf(buf + n, sizeof buf - (size_t)n, "%02x", r[i]);
        if (i == 3 || i == 5 || i == 7 || i == 9)
            buf[n++] = '-';
    }
    buf[n] = 0;
    return xstrndup(buf, (size_t)n);
}

/* Takes the broadcast assignments out of prep (which may be NULL). */
static void member_set_protocols(struct gmember *m, const struct group_join_args *a,
                                 struct bcast_prep *prep)
{
    for (int i = 0; i < m->n_protos; i++) {
        free(m->protos[i].name);
        free(m->protos[i].meta);
        free(m->protos[i].bcast);
    }
    free(m->protos);
    m->n_protos = a->protocols_count;
    m->protos = calloc((size_t)(a->protocols_count ? a->protocols_count : 1), sizeof *m->protos);
    if (!m->protos)
        abort();
    for (int i = 0; i < a->protocols_count; i++) {
        m->protos[i].name = kdup(a->protocols[i].name);
        if (!m->protos[i].name)
            m->protos[i].name = xstrndup("", 0);
        m->protos[i].len = a->protocols[i].metadata.len > 0 ? a->protocols[i].metadata.len : 0;
        m->protos[i].meta = malloc((size_t)m->protos[i].len + 1);
        if (!m->protos[i].meta)
            abort();
        if (m->protos[i].len)
            memcpy(m->protos[i].meta, a->protocols[i].metadata.ptr, (size_t)m->protos[i].len);
        if (prep && prep[i].ok) {
            m->protos[i].bcast = prep[i].p;
            m->protos[i].bcast_len = prep[i].len;
            prep[i].p = NULL;
        }
    }
    m->session_timeout_ms = a->session_timeout_ms;
    m->rebalance_timeout_ms = a->rebalance_timeout_ms;
}

static bool protocols_equal(const struct gmember *m, const struct group_join_args *a)
{
    if (m->n_protos != a->protocols_count)
        return false;
    for (int i = 0; i < m->n_protos; i++) {
        kbytes_t md = a->protocols[i].metadata;
        int32_t len = md.len > 0 ? md.len : 0;
        if (!keq(a->protocols[i].name, m->protos[i].name) || len != m->protos[i].len ||
            (len && memcmp(md.ptr, m->protos[i].meta, (size_t)len)))
            return false;
    }
    return true;
}

static struct gproto *member_proto(struct gmember *m, const char *name)
{
    for (int i = 0; i < m->n_protos; i++)
        if (!strcmp(m->protos[i].name, name))
            return &m->protos[i];
    return NULL;
}

static struct gmember *member_add(struct group *g, const char *id, const struct group_join_args *a,
                                  struct bcast_prep *prep)
{
    struct gmember *m = calloc(1, sizeof *m);
    if (!m)
        abort();
    m->id = xstrndup(id, strlen(id));
    m->instance_id = kdup(a->group_instance_id);
    m->client_id = kdup(a->client_id);
    m->client_host = kdup(a->client_host);
    m->protocol_type = kdup(a->protocol_type);
    member_set_protocols(m, a, prep);
    m->last_seen = clock_mono_ms();
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 8;
        g->m = realloc(g->m, (size_t)g->cap * sizeof *g->m);
        if (!g->m)
            abort();
    }
    g->m[g->n++] = m;
    if (!g->protocol_type)
        g->protocol_type = kdup(a->protocol_type);
    return m;
}

/* ---- answering parked requests ---- */

static void wait_answer(struct group_wait *w, int16_t error)
{
    w->error = error;
    w->done = true;
    w->g = NULL;
    w->m = NULL;
    loop_wake(&w->wake);
}

static void fill_join(struct group *g, struct gmember *m, struct group_wait *w)
{
    w->generation = g->generation;
    w->protocol_type = acopy(w->arena, g->protocol_type);
    w->protocol_name = acopy(w->arena, g->protocol);
    w->leader = acopy(w->arena, g->leader);
    w->member_id = acopy(w->arena, m->id);
    w->members_count = 0;
    if (g->leader && !strcmp(g->leader, m->id) && g->protocol) {
        w->members = arena_alloc(w->arena, (size_t)g->n * sizeof *w->members);
        for (int i = 0; w->members && i < g->n; i++) {
            struct gproto *p = member_proto(g->m[i], g->protocol);
            w->members[w->members_count].member_id = acopy(w->arena, g->m[i]->id);
            w->members[w->members_count].group_instance_id = acopy(w->arena, g->m[i]->instance_id);
            w->members[w->members_count].metadata =
                p ? acopy_bytes(w->arena, p->meta, p->len) : acopy_bytes(w->arena, NULL, 0);
            w->members_count++;
        }
    }
}

/* Removes member i, failing its parked requests. */
static void member_remove_at(struct group *g, int i, int16_t error)
{
    struct gmember *m = g->m[i];
    if (m->join_wait)
        wait_answer(m->join_wait, error);
    if (m->sync_wait)
        wait_answer(m->sync_wait, error);
    if (g->leader && !strcmp(g->leader, m->id)) {
        free(g->leader);
        g->leader = NULL;
    }
    member_free(m);
    memmove(&g->m[i], &g->m[i + 1], (size_t)(g->n - i - 1) * sizeof *g->m);
    g->n--;
}

/* The protocol every member supports that most members like best. */
static char *select_protocol(struct group *g)
{
    if (g->n == 0)
        return NULL;
    struct gmember *first = g->m[0];
    int best = -1, best_votes = -1;
    for (int c = 0; c < first->n_protos; c++) {
        const char *name = first->protos[c].name;
        bool all = true;
        for (int i = 1; i < g->n && all; i++)
            all = member_proto(g->m[i], name) != NULL;
        if (!all)
            continue;
        int votes = 0;
        for (int i = 0; i < g->n; i++) {
            /* A member votes for its first choice among the candidates. */
            for (int k = 0; k < g->m[i]->n_protos; k++) {
                const char *pn = g->m[i]->protos[k].name;
                bool cand = member_proto(first, pn) != NULL;
                for (int j = 0; j < g->n && cand; j++)
                    cand = member_proto(g->m[j], pn) != NULL;
                if (cand) {
                    votes += !strcmp(pn, name);
                    break;
                }
            }
        }
        if (votes > best_votes) {
            best = c;
            best_votes = votes;
        }
    }
    return best < 0 ? NULL : xstrndup(first->protos[best].name, strlen(first->protos[best].name));
}

static void to_empty(struct group *g)
{
    g->state = GS_EMPTY;
    g->empty_since = clock_wall_ms();
    free(g->protocol);
    g->protocol = NULL;
    free(g->leader);
    g->leader = NULL;
}

/* The join phase is over: a new generation for whoever rejoined. */
static void complete_join(struct group *g)
{
    for (int i = g->n - 1; i >= 0; i--)
        if (!g->m[i]->rejoined) {
            rlog_info("group %s: member %s did not rejoin in time", g->id, g->m[i]->id);
            member_remove_at(g, i, KERR_UNKNOWN_MEMBER_ID);
        }
    g->generation++;
    if (g->n == 0) {
        to_empty(g);
        store_group(g);
        return;
    }
    free(g->protocol);
    g->protocol = select_protocol(g);
    if (!g->leader) {
        g->leader = xstrndup(g->m[0]->id, strlen(g->m[0]->id));
    }
    g->state = GS_COMPLETING;
    int64_t now = clock_mono_ms();
    for (int i = 0; i < g->n; i++) {
        struct gmember *m = g->m[i];
        free(m->assignment);
        m->assignment = NULL;
        m->assignment_len = 0;
        m->rejoined = false;
        m->last_seen = now; /* the session timer restarts with the new generation */
        if (m->join_wait) {
            struct group_wait *w = m->join_wait;
            m->join_wait = NULL;
            fill_join(g, m, w);
            wait_answer(w, KERR_NONE);
        }
    }
    rlog_info("group %s: generation %d with %d members, protocol %s, leader %s", g->id,
              g->generation, g->n, g->protocol ? g->protocol : "-", g->leader);
}

static void maybe_complete_join(struct group *g)
{
    if (g->state != GS_PREPARING || clock_mono_ms() < g->join_delay_until)
        return;
    for (int i = 0; i < g->n; i++)
        if (!g->m[i]->rejoined)
            return;
    complete_join(g);
}

void group_prepare_rebalance(struct group *g, const char *why)
{
    if (g->state == GS_COMPLETING)
        /* Members waiting for an assignment of a generation that is now
         * void: they rejoin. */
        for (int i = 0; i < g->n; i++)
            if (g->m[i]->sync_wait) {
                struct group_wait *w = g->m[i]->sync_wait;
                g->m[i]->sync_wait = NULL;
                wait_answer(w, KERR_REBALANCE_IN_PROGRESS);
            }
    int64_t now = clock_mono_ms();
    if (g->state != GS_PREPARING) {
        int32_t timeout = 0;
        for (int i = 0; i < g->n; i++)
            if (g->m[i]->rebalance_timeout_ms > timeout)
                timeout = g->m[i]->rebalance_timeout_ms;
        g->rebalance_deadline = now + timeout;
        /* An empty group waits a little for more members, so a fleet of
         * consumers starting together rebalances once, not once each. */
        g->join_delay_until = g->state == GS_EMPTY ? now + gc.initial_delay_ms : 0;
        if (g->join_delay_until > g->rebalance_deadline)
            g->join_delay_until = g->rebalance_deadline;
        for (int i = 0; i < g->n; i++)
            g->m[i]->rejoined = g->m[i]->join_wait != NULL;
        g->state = GS_PREPARING;
        rlog_info("group %s: rebalancing (%s)", g->id, why);
    }
}

/* ---- JoinGroup ---- */

static int park_join(struct group *g, struct gmember *m, struct group_wait *w)
{
    if (m->join_wait && m->join_wait != w)
        /* A newer join from the same member replaces the old one. */
        wait_answer(m->join_wait, KERR_UNKNOWN_MEMBER_ID);
    m->join_wait = w;
    m->rejoined = true;
    m->last_seen = clock_mono_ms();
    w->g = g;
    w->m = m;
    maybe_complete_join(g);
    return w->done ? 0 : 1;
}

static int answer_now(struct group_wait *w, int16_t error)
{
    w->error = error;
    w->done = true;
    return 0;
}

int group_join(const struct group_join_args *a, struct group_wait *w)
{
    w->done = false;
    w->generation = -1;
    w->protocol_type = w->protocol_name = w->leader = (kstr_t){NULL, -1};
    w->member_id = a->member_id.len >= 0 ? a->member_id : kstr_c("");
    w->members_count = 0;
    if (a->group_id.len <= 0)
        return answer_now(w, KERR_INVALID_GROUP_ID);
    if (a->session_timeout_ms < gc.min_session_ms || a->session_timeout_ms > gc.max_session_ms)
        return answer_now(w, KERR_INVALID_SESSION_TIMEOUT);
    if (a->protocol_type.len <= 0 || a->protocols_count <= 0)
        return answer_now(w, KERR_INCONSISTENT_GROUP_PROTOCOL);
    /* What a broadcast group would assign this member: built before the
     * lock because it reads the topic registry (broadcast.c). */
    struct bcast_prep *prep = broadcast_prepare(a);
    pthread_mutex_lock(&gc.mu);
    int rc;
    struct group *g = group_find(a->group_id.ptr, (size_t)a->group_id.len);
    bool known_id = a->member_id.len > 0;
    if (!g && known_id) {
        rc = answer_now(w, KERR_UNKNOWN_MEMBER_ID);
        goto out;
    }
    if (!g)
        g = group_get_or_create(a->group_id.ptr, (size_t)a->group_id.len);
    /* Every member must speak the group's protocol type and share at
     * least one protocol with the others. */
    if (g->n > 0 && g->protocol_type && !keq(a->protocol_type, g->protocol_type)) {
        rc = answer_now(w, KERR_INCONSISTENT_GROUP_PROTOCOL);
        goto out;
    }
    if (g->n > 0) {
        bool shared = false;
        for (int p = 0; p < a->protocols_count && !shared; p++) {
            char *name = kdup(a->protocols[p].name);
            bool all = name != NULL;
            for (int i = 0; i < g->n && all; i++)
                all = keq(a->member_id, g->m[i]->id) || member_proto(g->m[i], name);
            shared = all;
            free(name);
        }
        if (!shared) {
            rc = answer_now(w, KERR_INCONSISTENT_GROUP_PROTOCOL);
            goto out;
        }
    }
    int16_t berr = broadcast_check_join(g, a,
                                        known_id ? member_find(g, a->member_id, NULL)
                                                 : member_by_instance(g, a->group_instance_id),
                                        prep);
    if (berr) {
        rc = answer_now(w, berr);
        goto out;
    }
    if (!known_id) {
        struct gmember *old = member_by_instance(g, a->group_instance_id);
        if (old) {
            /* A static member back under a new member id: it takes over
             * the old identity, and the old instance is fenced. */
            char *id = new_member_id(a->group_instance_id);
            if (old->join_wait) {
                wait_answer(old->join_wait, KERR_FENCED_INSTANCE_ID);
                old->join_wait = NULL;
            }
            if (old->sync_wait) {
                wait_answer(old->sync_wait, KERR_FENCED_INSTANCE_ID);
                old->sync_wait = NULL;
            }
            char *old_leader = NULL;
            if (g->leader && !strcmp(g->leader, old->id)) {
                old_leader = g->leader;
                g->leader = xstrndup(id, strlen(id));
            }
            free(old->id);
            old->id = id;
            /* The new instance may come from another host or under another
             * client.id, which is how requests without a member id find
             * a broadcast member. */
            free(old->client_id);
            old->client_id = kdup(a->client_id);
            free(old->client_host);
            old->client_host = kdup(a->client_host);
            old->last_seen = clock_mono_ms();
            member_set_protocols(old, a, prep);
            if (g->state == GS_STABLE) {
                /* Kafka: a static member returning to a stable group does
                 * not rebalance unless the group's protocol would change.
                 * The answer names the old leader id, so a returning
                 * leader does not compute an assignment the stable group
                 * would never hand out; SyncGroup returns the one it had. */
                char *sel = select_protocol(g);
                bool changed = !sel || !g->protocol || strcmp(sel, g->protocol);
                free(sel);
                if (!changed) {
                    fill_join(g, old, w);
                    w->members_count = 0;
                    if (old_leader)
                        w->leader = acopy(w->arena, old_leader);
                    free(old_leader);
                    rlog_info("group %s: static member %s is back as %s, no rebalance", g->id,
                              old->instance_id, old->id);
                    rc = answer_now(w, KERR_NONE);
                    goto out;
                }
            }
            free(old_leader);
            group_prepare_rebalance(g, "static member rejoined");
            rc = park_join(g, old, w);
            goto out;
        }
        char *id = new_member_id(a->client_id);
        if (a->require_known_member && a->group_instance_id.len < 0) {
            /* KIP-394: hand out the id first; the member joins with it. */
            g->pending = realloc(g->pending, (size_t)(g->n_pending + 1) * sizeof *g->pending);
            if (!g->pending)
                abort();
            g->pending[g->n_pending].id = id;
            g->pending[g->n_pending].since = clock_mono_ms();
            g->n_pending++;
            w->member_id = acopy(w->arena, id);
            rc = answer_now(w, KERR_MEMBER_ID_REQUIRED);
            goto out;
        }
        struct gmember *m = member_add(g, id, a, prep);
        free(id);
        group_prepare_rebalance(g, "new member joined");
        rc = park_join(g, m, w);
        goto out;
    }
    for (int i = 0; i < g->n_pending; i++)
        if (keq(a->member_id, g->pending[i].id)) {
            struct gmember *m = member_add(g, g->pending[i].id, a, prep);
            free(g->pending[i].id);
            g->pending[i] = g->pending[--g->n_pending];
            group_prepare_rebalance(g, "new member joined");
            rc = park_join(g, m, w);
            goto out;
        }
    struct gmember *m;
    int16_t verr = group_validate_member(g, a->member_id, a->group_instance_id, &m, NULL);
    if (verr) {
        rc = answer_now(w, verr);
        goto out;
    }
    m->last_seen = clock_mono_ms();
    bool same = protocols_equal(m, a);
    bool is_leader = g->leader && !strcmp(g->leader, m->id);
    if ((g->state == GS_STABLE && same && !is_leader) || (g->state == GS_COMPLETING && same)) {
        /* A member that missed the join response asks again. */
        fill_join(g, m, w);
        rc = answer_now(w, KERR_NONE);
        goto out;
    }
    member_set_protocols(m, a, prep);
    group_prepare_rebalance(g, same ? "leader rejoined" : "member changed its subscription");
    rc = park_join(g, m, w);
out:
    pthread_mutex_unlock(&gc.mu);
    broadcast_prep_free(prep, a->protocols_count);
    return rc;
}

/* ---- SyncGroup ---- */

int group_sync(kstr_t group_id, int32_t generation, kstr_t member_id, kstr_t instance_id,
               const struct group_assignment *as, int32_t n, struct group_wait *w)
{
    w->done = false;
    w->assignment = (kbytes_t){(const uint8_t *)"", 0};
    pthread_mutex_lock(&gc.mu);
    int rc;
    struct group *g = group_id.len > 0 ? group_find(group_id.ptr, (size_t)group_id.len) : NULL;
    struct gmember *m;
    int16_t verr = group_validate_member(g, member_id, instance_id, &m, NULL);
    if (verr) {
        rc = answer_now(w, verr);
        goto out;
    }
    if (generation != g->generation) {
        rc = answer_now(w, KERR_ILLEGAL_GENERATION);
        goto out;
    }
    m->last_seen = clock_mono_ms();
    if (g->state == GS_PREPARING) {
        rc = answer_now(w, KERR_REBALANCE_IN_PROGRESS);
        goto out;
    }
    if (g->state == GS_STABLE) {
        w->assignment = acopy_bytes(w->arena, m->assignment, m->assignment_len);
        rc = answer_now(w, KERR_NONE);
        goto out;
    }
    /* CompletingRebalance: wait for the leader's assignment. */
    if (m->sync_wait && m->sync_wait != w)
        wait_answer(m->sync_wait, KERR_REBALANCE_IN_PROGRESS);
    m->sync_wait = w;
    w->g = g;
    w->m = m;
    if (g->leader && !strcmp(g->leader, m->id)) {
        for (int i = 0; i < g->n; i++) {
            struct gmember *x = g->m[i];
            free(x->assignment);
            x->assignment = NULL;
            x->assignment_len = 0;
            if (g->model == GM_BROADCASTING) {
                /* The leader's assignment is ignored: each member gets
                 * every partition it subscribes to. */
                struct gproto *p = g->protocol ? member_proto(x, g->protocol) : NULL;
                if (p && p->bcast_len > 0) {
                    x->assignment = malloc((size_t)p->bcast_len);
                    if (!x->assignment)
                        abort();
                    memcpy(x->assignment, p->bcast, (size_t)p->bcast_len);
                    x->assignment_len = p->bcast_len;
                }
                continue;
            }
            for (int32_t k = 0; k < n; k++)
                if (keq(as[k].member_id, x->id) && as[k].assignment.len > 0) {
                    x->assignment = malloc((size_t)as[k].assignment.len);
                    if (!x->assignment)
                        abort();
                    memcpy(x->assignment, as[k].assignment.ptr, (size_t)as[k].assignment.len);
                    x->assignment_len = as[k].assignment.len;
                }
        }
        g->state = GS_STABLE;
        store_group(g);
        for (int i = 0; i < g->n; i++) {
            struct gmember *x = g->m[i];
            if (x->sync_wait) {
                struct group_wait *sw = x->sync_wait;
                x->sync_wait = NULL;
                sw->assignment = acopy_bytes(sw->arena, x->assignment, x->assignment_len);
                wait_answer(sw, KERR_NONE);
            }
        }
        rlog_info("group %s: generation %d is stable%s", g->id, g->generation,
                  g->model == GM_BROADCASTING ? " (broadcasting)" : "");
    }
    rc = w->done ? 0 : 1;
out:
    pthread_mutex_unlock(&gc.mu);
    return rc;
}

void group_cancel_wait(struct group_wait *w)
{
    pthread_mutex_lock(&gc.mu);
    if (!w->done && w->m) {
        if (w->m->join_wait == w)
            w->m->join_wait = NULL;
        if (w->m->sync_wait == w)
            w->m->sync_wait = NULL;
    }
    w->done = true;
    pthread_mutex_unlock(&gc.mu);
    loop_unwake(&w->wake);
}

/* ---- Heartbeat, LeaveGroup ---- */

int16_t group_heartbeat(kstr_t group_id, int32_t generation, kstr_t member_id, kstr_t instance_id)
{
    pthread_mutex_lock(&gc.mu);
    int16_t err = KERR_NONE;
    struct group *g = group_id.len > 0 ? group_find(group_id.ptr, (size_t)group_id.len) : NULL;
    struct gmember *m;
    err = group_validate_member(g, member_id, instance_id, &m, NULL);
    if (err)
        ;
    else if (generation != g->generation)
        err = KERR_ILLEGAL_GENERATION;
    else {
        m->last_seen = clock_mono_ms();
        if (g->state == GS_PREPARING)
            err = KERR_REBALANCE_IN_PROGRESS;
    }
    pthread_mutex_unlock(&gc.mu);
    return err;
}

int16_t group_leave(kstr_t group_id, kstr_t member_id, kstr_t instance_id)
{
    pthread_mutex_lock(&gc.mu);
    int16_t err = KERR_NONE;
    struct group *g = group_id.len > 0 ? group_find(group_id.ptr, (size_t)group_id.len) : NULL;
    int idx = -1;
    struct gmember *m = NULL;
    if (g && member_id.len <= 0 && instance_id.len >= 0) {
        /* LeaveGroup v3+ may name a static member by instance only. */
        m = member_by_instance(g, instance_id);
        if (m)
            member_find(g, kstr_c(m->id), &idx);
        err = m ? KERR_NONE : KERR_UNKNOWN_MEMBER_ID;
    } else {
        err = group_validate_member(g, member_id, instance_id, &m, &idx);
    }
    if (!err) {
        rlog_info("group %s: member %s left", g->id, m->id);
        member_remove_at(g, idx, KERR_UNKNOWN_MEMBER_ID);
        if (g->n == 0 && g->state != GS_PREPARING) {
            g->generation++;
            to_empty(g);
            store_group(g);
        } else if (g->state == GS_PREPARING) {
            maybe_complete_join(g);
        } else {
            group_prepare_rebalance(g, "member left");
        }
    }
    pthread_mutex_unlock(&gc.mu);
    return err;
}

/* ---- timers (main thread) ---- */

void groups_tick(void)
{
    pthread_mutex_lock(&gc.mu);
    int64_t now = clock_mono_ms();
    int64_t wall = clock_wall_ms();
    for (int gi = 0; gi < gc.n; gi++) {
        struct group *g = gc.g[gi];
        for (int i = g->n_pending - 1; i >= 0; i--)
            if (now - g->pending[i].since > PENDING_MEMBER_MS) {
                free(g->pending[i].id);
                g->pending[i] = g->pending[--g->n_pending];
            }
        bool removed = false;
        for (int i = g->n - 1; i >= 0; i--) {
            struct gmember *m = g->m[i];
            /* A member parked in JoinGroup is alive: its request is the
             * heartbeat until the rebalance ends. */
            if (m->join_wait)
                continue;
            if (now - m->last_seen > m->session_timeout_ms) {
                rlog_info("group %s: member %s expired (no heartbeat for %d ms)", g->id, m->id,
                          m->session_timeout_ms);
                member_remove_at(g, i, KERR_UNKNOWN_MEMBER_ID);
                removed = true;
            }
        }
        if (g->state == GS_PREPARING) {
            if (now >= g->rebalance_deadline)
                complete_join(g);
            else
                maybe_complete_join(g);
        } else if (removed) {
            if (g->n == 0) {
                g->generation++;
                to_empty(g);
                store_group(g);
            } else {
                group_prepare_rebalance(g, "member expired");
            }
        }
        broadcast_expire_instances(g, wall);
        /* offsets.retention.minutes: an empty group's offsets expire. */
        if (g->state == GS_EMPTY && g->n_offs > 0 && gc.retention_ms > 0 &&
            wall - g->empty_since > gc.retention_ms) {
            bool stale = true;
            for (int k = 0; k < g->n_offs && stale; k++)
                stale = wall - g->offs[k].commit_ts > gc.retention_ms;
            if (stale) {
                rlog_info("group %s: committed offsets expired", g->id);
                struct group_offset *del = calloc((size_t)g->n_offs, sizeof *del);
                if (del) {
                    for (int k = 0; k < g->n_offs; k++) {
                        del[k].topic = kstr_c(g->offs[k].topic);
                        del[k].partition = g->offs[k].partition;
                    }
                    store_offset_tombstones(g, del, g->n_offs);
                    free(del);
                }
                while (g->n_offs > 0)
                    group_offset_remove(g, g->offs[0].topic, strlen(g->offs[0].topic),
                                        g->offs[0].partition);
            }
        }
    }
    pthread_mutex_unlock(&gc.mu);
}
