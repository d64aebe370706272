/*
 * views: read-only snapshots of groups for the admin API and /metrics.
 *
 * One pass under gc.mu copies what a reader needs into its arena, so the
 * coordinator lock is held only for the copy and never while the caller
 * looks up topics (the registry lock is never taken under gc.mu).
 */
#include <string.h>

#include "group/group_int.h"

static const char *acopy(arena_t *a, const char *s)
{
    return s ? arena_strndup(a, s, strlen(s)) : NULL;
}

static int copy_offsets(arena_t *a, const struct goffset *offs, int n,
                        struct group_view_offset **out, int32_t *out_n)
{
    *out = NULL;
    *out_n = 0;
    if (n <= 0)
        return 0;
    *out = arena_alloc(a, (size_t)n * sizeof **out);
    if (!*out)
        return -1;
    for (int k = 0; k < n; k++) {
        const struct goffset *o = &offs[k];
        struct group_view_offset *d = &(*out)[k];
        d->topic = acopy(a, o->topic);
        d->partition = o->partition;
        d->offset = o->offset;
        d->leader_epoch = o->leader_epoch;
        d->metadata = acopy(a, o->metadata ? o->metadata : "");
        d->commit_ts = o->commit_ts;
    }
    *out_n = n;
    return 0;
}

static int copy_group(arena_t *a, const struct group *g, int what, struct group_view *v)
{
    memset(v, 0, sizeof *v);
    v->group_id = acopy(a, g->id);
    v->state = group_state_name(g->state);
    v->protocol_type = acopy(a, g->protocol_type ? g->protocol_type : "");
    v->protocol = acopy(a, g->protocol ? g->protocol : "");
    v->leader = acopy(a, g->leader);
    v->generation = g->generation;
    v->members_count = g->n;
    if (!v->group_id || !v->protocol_type || !v->protocol)
        return -1;
    if ((what & GROUP_VIEW_MEMBERS) && g->n > 0) {
        v->members = arena_alloc(a, (size_t)g->n * sizeof *v->members);
        if (!v->members)
            return -1;
        for (int i = 0; i < g->n; i++) {
            const struct gmember *m = g->m[i];
            struct group_view_member *d = &v->members[i];
            d->member_id = acopy(a, m->id);
            d->group_instance_id = acopy(a, m->instance_id);
            d->client_id = acopy(a, m->client_id ? m->client_id : "");
            d->client_host = acopy(a, m->client_host ? m->client_host : "");
            d->assignment_len = m->assignment_len > 0 ? m->assignment_len : 0;
            if (d->assignment_len > 0) {
                uint8_t *c = arena_alloc(a, (size_t)d->assignment_len);
                if (!c)
                    return -1;
                memcpy(c, m->assignment, (size_t)d->assignment_len);
                d->assignment = c;
            }
        }
    }
    if ((what & GROUP_VIEW_OFFSETS) &&
        copy_offsets(a, g->offs, g->n_offs, &v->offsets, &v->offsets_count))
        return -1;
    v->broadcast = g->model == GM_BROADCASTING;
    if ((what & GROUP_VIEW_OFFSETS) && g->n_inst > 0) {
        v->instances = arena_alloc(a, (size_t)g->n_inst * sizeof *v->instances);
        if (!v->instances)
            return -1;
        for (int i = 0; i < g->n_inst; i++) {
            struct group_view_instance *d = &v->instances[i];
            d->instance = acopy(a, g->inst[i]->id);
            if (!d->instance || copy_offsets(a, g->inst[i]->offs, g->inst[i]->n_offs, &d->offsets,
                                             &d->offsets_count))
                return -1;
        }
        v->instances_count = g->n_inst;
    }
    return 0;
}

int group_views(arena_t *a, const char *group_id, int what, struct group_view **out, int32_t *n)
{
    *out = NULL;
    *n = 0;
    int rc = 0;
    pthread_mutex_lock(&gc.mu);
    if (group_id) {
        struct group *g = group_find(group_id, strlen(group_id));
        if (g) {
            *out = arena_alloc(a, sizeof **out);
            rc = *out ? copy_group(a, g, what, *out) : -1;
            *n = rc ? 0 : 1;
        }
    } else if (gc.n > 0) {
        *out = arena_alloc(a, (size_t)gc.n * sizeof **out);
        rc = *out ? 0 : -1;
        for (int i = 0; !rc && i < gc.n; i++)
            rc = copy_group(a, gc.g[i], what, &(*out)[i]);
        *n = rc ? 0 : gc.n;
    }
    pthread_mutex_unlock(&gc.mu);
    return rc;
}
