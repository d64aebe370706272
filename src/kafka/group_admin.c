/* FindCoordinator, ListGroups, DescribeGroups, DeleteGroups. */
#include <string.h>

#include "broker/topics.h"
#include "group/group.h"
#include "common/kerr.h"
#include "kafka/brokers.h"
#include "kafka/handlers.h"
#include "proto/gen/msgs.h"

#define KEY_TYPE_GROUP 0

int handle_find_coordinator(struct kreq *r)
{
    struct find_coordinator_request req;
    if (!KREQ_DECODE(r, find_coordinator_request, &req))
        return KH_CLOSE;
    const struct broker_config *cfg = topics_broker_config();
    struct find_coordinator_response resp;
    find_coordinator_response_init(&resp);
    /* Groups: on one node this broker.  In a cluster every broker names
     * the same one, the live broker with the smallest id, so that all
     * members of a group meet at one coordinator: __consumer_offsets is
     * not replicated yet (README, cluster mode), so the choice is a
     * fixed rule rather than a partition's leader.  Transactions are not
     * coordinated yet. */
    int16_t err = req.key_type == KEY_TYPE_GROUP ? KERR_NONE : KERR_COORDINATOR_NOT_AVAILABLE;
    struct kafka_brokers bs;
    if (kafka_brokers_get(&r->arena, cfg, &bs))
        return KH_CLOSE;
    const struct kafka_broker *co = &bs.b[0];
    for (int32_t i = 1; i < bs.n; i++)
        if (bs.b[i].id < co->id)
            co = &bs.b[i];
    if (r->hdr.api_version >= 4) {
        int32_t n = req.coordinator_keys_count > 0 ? req.coordinator_keys_count : 0;
        resp.coordinators = arena_alloc(&r->arena, (size_t)(n ? n : 1) * sizeof *resp.coordinators);
        if (!resp.coordinators)
            return KH_CLOSE;
        resp.coordinators_count = n;
        for (int32_t i = 0; i < n; i++) {
            struct find_coordinator_response_coordinator *c = &resp.coordinators[i];
            find_coordinator_response_coordinator_init(c);
            c->key = req.coordinator_keys[i];
            c->error_code = err;
            c->node_id = err ? -1 : co->id;
            c->host = err ? kstr_c("") : co->host;
            c->port = err ? -1 : co->port;
        }
    } else {
        resp.error_code = err;
        resp.node_id = err ? -1 : co->id;
        resp.host = err ? kstr_c("") : co->host;
        resp.port = err ? -1 : co->port;
    }
    find_coordinator_response_encode(&r->out, r->hdr.api_version, &resp);
    return KH_DONE;
}

int handle_list_groups(struct kreq *r)
{
    struct list_groups_request req;
    if (!KREQ_DECODE(r, list_groups_request, &req))
        return KH_CLOSE;
    struct list_groups_response resp;
    list_groups_response_init(&resp);
    struct group_summary *gs;
    int32_t n;
    if (group_list(&r->arena, &gs, &n))
        return KH_CLOSE;
    resp.groups = arena_alloc(&r->arena, (size_t)(n ? n : 1) * sizeof *resp.groups);
    if (!resp.groups)
        return KH_CLOSE;
    resp.groups_count = 0;
    for (int32_t i = 0; i < n; i++) {
        /* v4 may filter by state (case-insensitive, as Kafka does). */
        bool keep = req.states_filter_count <= 0;
        for (int32_t f = 0; f < req.states_filter_count && !keep; f++)
            keep = req.states_filter[f].len == gs[i].state.len &&
                   !strncasecmp(req.states_filter[f].ptr, gs[i].state.ptr, (size_t)gs[i].state.len);
        if (!keep)
            continue;
        struct list_groups_response_listed_group *g = &resp.groups[resp.groups_count++];
        list_groups_response_listed_group_init(g);
        g->group_id = gs[i].group_id;
        g->protocol_type = gs[i].protocol_type;
        g->group_state = gs[i].state;
    }
    list_groups_response_encode(&r->out, r->hdr.api_version, &resp);
    return KH_DONE;
}

int handle_describe_groups(struct kreq *r)
{
    struct describe_groups_request req;
    if (!KREQ_DECODE(r, describe_groups_request, &req))
        return KH_CLOSE;
    struct describe_groups_response resp;
    describe_groups_response_init(&resp);
    int32_t n = req.groups_count > 0 ? req.groups_count : 0;
    resp.groups = arena_alloc(&r->arena, (size_t)(n ? n : 1) * sizeof *resp.groups);
    if (!resp.groups)
        return KH_CLOSE;
    resp.groups_count = n;
    for (int32_t i = 0; i < n; i++) {
        struct describe_groups_response_described_group *out = &resp.groups[i];
        describe_groups_response_described_group_init(out);
        struct group_desc d;
        group_describe(req.groups[i], &r->arena, &d);
        out->error_code = d.error;
        out->group_id = req.groups[i];
        out->group_state = d.state;
        out->protocol_type = d.protocol_type;
        out->protocol_data = d.protocol;
        out->members = arena_alloc(&r->arena, (size_t)(d.members_count ? d.members_count : 1) *
                                                  sizeof *out->members);
        if (!out->members)
            return KH_CLOSE;
        out->members_count = d.members_count;
        for (int32_t m = 0; m < d.members_count; m++) {
            struct describe_groups_response_described_group_member *x = &out->members[m];
            describe_groups_response_described_group_member_init(x);
            x->member_id = d.members[m].member_id;
            x->group_instance_id = d.members[m].group_instance_id;
            x->client_id = d.members[m].client_id;
            x->client_host = d.members[m].client_host;
            x->member_metadata = d.members[m].metadata;
            x->member_assignment = d.members[m].assignment;
        }
    }
    describe_groups_response_encode(&r->out, r->hdr.api_version, &resp);
    return KH_DONE;
}

int handle_delete_groups(struct kreq *r)
{
    struct delete_groups_request req;
    if (!KREQ_DECODE(r, delete_groups_request, &req))
        return KH_CLOSE;
    struct delete_groups_response resp;
    delete_groups_response_init(&resp);
    int32_t n = req.groups_names_count > 0 ? req.groups_names_count : 0;
    resp.results = arena_alloc(&r->arena, (size_t)(n ? n : 1) * sizeof *resp.results);
    if (!resp.results)
        return KH_CLOSE;
    resp.results_count = n;
    for (int32_t i = 0; i < n; i++) {
        delete_groups_response_deletable_group_result_init(&resp.results[i]);
        resp.results[i].group_id = req.groups_names[i];
        resp.results[i].error_code = group_delete(req.groups_names[i]);
    }
    delete_groups_response_encode(&r->out, r->hdr.api_version, &resp);
    return KH_DONE;
}
