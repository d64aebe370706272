/*
 * JoinGroup, SyncGroup, Heartbeat, LeaveGroup: thin shells over the
 * coordinator (group/).  Join and Sync may wait for other members: the
 * request goes pending and the coordinator wakes it on this loop.
 */
#include <stdio.h>
#include <string.h>

#include "group/group.h"
#include "common/kerr.h"
#include "kafka/handlers.h"
#include "net/conn.h"
#include "net/server.h"
#include "proto/gen/msgs.h"

struct membership_req {
    struct kreq *req;
    struct group_wait w;
};

static struct membership_req *state_new(struct kreq *r, void (*cb)(struct loop_wake *))
{
    struct membership_req *st = arena_alloc(&r->arena, sizeof *st);
    if (!st)
        return NULL;
    st->req = r;
    st->w.arena = &r->arena;
    loop_wake_init(&st->w.wake, r->worker->loop, cb);
    return st;
}

static void cancel_wait(struct kreq *r)
{
    struct membership_req *st = r->state;
    group_cancel_wait(&st->w);
}

/* Kafka reports the client's address as "/host". */
static kstr_t client_host(struct kreq *r)
{
    const char *peer = r->conn->peer;
    const char *colon = strrchr(peer, ':');
    size_t n = colon ? (size_t)(colon - peer) : strlen(peer);
    char *s = arena_alloc(&r->arena, n + 2);
    if (!s)
        return kstr_c("");
    s[0] = '/';
    memcpy(s + 1, peer, n);
    s[n + 1] = 0;
    return kstr_c(s);
}

/* ---- JoinGroup ---- */

static void join_encode(struct kreq *r, struct group_wait *w)
{
    struct join_group_response resp;
    join_group_response_init(&resp);
    resp.error_code = w->error;
    resp.generation_id = w->generation;
    resp.protocol_type = w->protocol_type;
    resp.protocol_name = w->protocol_name;
    resp.leader = w->leader.len >= 0 ? w->leader : kstr_c("");
    resp.member_id = w->member_id.len >= 0 ? w->member_id : kstr_c("");
    resp.members_count = 0;
    if (w->error == KERR_NONE && w->members_count > 0) {
        resp.members = arena_alloc(&r->arena, (size_t)w->members_count * sizeof *resp.members);
        for (int32_t i = 0; resp.members && i < w->members_count; i++) {
            join_group_response_join_group_response_member_init(&resp.members[i]);
            resp.members[i].member_id = w->members[i].member_id;
            resp.members[i].group_instance_id = w->members[i].group_instance_id;
            resp.members[i].metadata = w->members[i].metadata;
            resp.members_count++;
        }
    }
    /* Versions before 7 have no nullable protocol name. */
    if (r->hdr.api_version < 7 && resp.protocol_name.len < 0)
        resp.protocol_name = kstr_c("");
    join_group_response_encode(&r->out, r->hdr.api_version, &resp);
}

static void join_woken(struct loop_wake *wk)
{
    struct membership_req *st =
        (struct membership_req *)((char *)wk - offsetof(struct membership_req, w.wake));
    join_encode(st->req, &st->w);
    kreq_finish(st->req);
}

int handle_join_group(struct kreq *r)
{
    struct join_group_request req;
    if (!KREQ_DECODE(r, join_group_request, &req))
        return KH_CLOSE;
    struct membership_req *st = state_new(r, join_woken);
    int32_t np = req.protocols_count > 0 ? req.protocols_count : 0;
    struct group_protocol *protos = arena_alloc(&r->arena, (size_t)(np ? np : 1) * sizeof *protos);
    if (!st || !protos)
        return KH_CLOSE;
    for (int32_t i = 0; i < np; i++) {
        protos[i].name = req.protocols[i].name;
        protos[i].metadata = req.protocols[i].metadata;
    }
    struct group_join_args a = {
        .group_id = req.group_id,
        .member_id = req.member_id,
        .group_instance_id = req.group_instance_id,
        .protocol_type = req.protocol_type,
        .client_id = r->hdr.client_id.len >= 0 ? r->hdr.client_id : kstr_c(""),
        .client_host = client_host(r),
        .session_timeout_ms = req.session_timeout_ms,
        /* v0 has no rebalance timeout: Kafka uses the session timeout. */
        .rebalance_timeout_ms =
            r->hdr.api_version >= 1 ? req.rebalance_timeout_ms : req.session_timeout_ms,
        .protocols = protos,
        .protocols_count = np,
        .require_known_member = r->hdr.api_version >= 4,
    };
    if (group_join(&a, &st->w) == 0) {
        /* Answered at once; a wake queued while answering is ours. */
        loop_unwake(&st->w.wake);
        join_encode(r, &st->w);
        return KH_DONE;
    }
    r->state = st;
    r->cancel = cancel_wait;
    return KH_PENDING;
}

/* ---- SyncGroup ---- */

static void sync_encode(struct kreq *r, struct group_wait *w)
{
    struct sync_group_response resp;
    sync_group_response_init(&resp);
    resp.error_code = w->error;
    resp.assignment = w->error == KERR_NONE ? w->assignment : (kbytes_t){(const uint8_t *)"", 0};
    sync_group_response_encode(&r->out, r->hdr.api_version, &resp);
}

static void sync_woken(struct loop_wake *wk)
{
    struct membership_req *st =
        (struct membership_req *)((char *)wk - offsetof(struct membership_req, w.wake));
    sync_encode(st->req, &st->w);
    kreq_finish(st->req);
}

int handle_sync_group(struct kreq *r)
{
    struct sync_group_request req;
    if (!KREQ_DECODE(r, sync_group_request, &req))
        return KH_CLOSE;
    struct membership_req *st = state_new(r, sync_woken);
    int32_t n = req.assignments_count > 0 ? req.assignments_count : 0;
    struct group_assignment *as = arena_alloc(&r->arena, (size_t)(n ? n : 1) * sizeof *as);
    if (!st || !as)
        return KH_CLOSE;
    for (int32_t i = 0; i < n; i++) {
        as[i].member_id = req.assignments[i].member_id;
        as[i].assignment = req.assignments[i].assignment;
    }
    if (group_sync(req.group_id, req.generation_id, req.member_id, req.group_instance_id, as, n,
                   &st->w) == 0) {
        loop_unwake(&st->w.wake);
        sync_encode(r, &st->w);
        return KH_DONE;
    }
    r->state = st;
    r->cancel = cancel_wait;
    return KH_PENDING;
}

/* ---- Heartbeat, LeaveGroup ---- */

int handle_heartbeat(struct kreq *r)
{
    struct heartbeat_request req;
    if (!KREQ_DECODE(r, heartbeat_request, &req))
        return KH_CLOSE;
    struct heartbeat_response resp;
    heartbeat_response_init(&resp);
    resp.error_code =
        group_heartbeat(req.group_id, req.generation_id, req.member_id, req.group_instance_id);
    heartbeat_response_encode(&r->out, r->hdr.api_version, &resp);
    return KH_DONE;
}

int handle_leave_group(struct kreq *r)
{
    struct leave_group_request req;
    if (!KREQ_DECODE(r, leave_group_request, &req))
        return KH_CLOSE;
    struct leave_group_response resp;
    leave_group_response_init(&resp);
    if (r->hdr.api_version < 3) {
        resp.error_code = group_leave(req.group_id, req.member_id, (kstr_t){NULL, -1});
    } else {
        /* Batched (KIP-345): an answer per member. */
        int32_t n = req.members_count > 0 ? req.members_count : 0;
        resp.members = arena_alloc(&r->arena, (size_t)(n ? n : 1) * sizeof *resp.members);
        if (!resp.members)
            return KH_CLOSE;
        resp.members_count = n;
        for (int32_t i = 0; i < n; i++) {
            struct leave_group_response_member_response *m = &resp.members[i];
            leave_group_response_member_response_init(m);
            m->member_id = req.members[i].member_id;
            m->group_instance_id = req.members[i].group_instance_id;
            m->error_code = group_leave(req.group_id, req.members[i].member_id,
                                        req.members[i].group_instance_id);
        }
    }
    leave_group_response_encode(&r->out, r->hdr.api_version, &resp);
    return KH_DONE;
}
