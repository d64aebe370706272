/*
 * OffsetForLeaderEpoch (KIP-101/279): for each partition, the end offset
 * of a leader epoch as the leader's log knows it, which a follower (or a
 * consumer after a leader change, KIP-320) truncates to.  The rules are
 * the partition's (partition_end_offset_for_epoch): current_leader_epoch
 * is checked as for a Fetch, an epoch the log does not know is answered
 * with -1 / -1 and no error, and only a debug request (replica_id -2,
 * also what versions 0-2 mean, as they carry no replica_id) may be
 * served by a replica that does not lead.
 */
#include "broker/topics.h"
#include "common/kerr.h"
#include "kafka/handlers.h"
#include "proto/gen/msgs.h"

int handle_offset_for_leader_epoch(struct kreq *r)
{
    struct offset_for_leader_epoch_request req;
    if (!KREQ_DECODE(r, offset_for_leader_epoch_request, &req))
        return KH_CLOSE;
    /* Kafka's rule: only the debugging replica id reads any replica. */
    bool any_replica = req.replica_id == -2;
    struct offset_for_leader_epoch_response resp;
    offset_for_leader_epoch_response_init(&resp);
    int32_t nt = req.topics_count > 0 ? req.topics_count : 0;
    resp.topics = arena_alloc(&r->arena, (size_t)(nt ? nt : 1) * sizeof *resp.topics);
    if (!resp.topics)
        return KH_CLOSE;
    resp.topics_count = nt;
    for (int32_t i = 0; i < nt; i++) {
        struct offset_for_leader_epoch_request_offset_for_leader_topic *qt = &req.topics[i];
        struct offset_for_leader_epoch_response_offset_for_leader_topic_result *rt =
            &resp.topics[i];
        offset_for_leader_epoch_response_offset_for_leader_topic_result_init(rt);
        rt->topic = qt->topic;
        int32_t np = qt->partitions_count > 0 ? qt->partitions_count : 0;
        rt->partitions = arena_alloc(&r->arena, (size_t)(np ? np : 1) * sizeof *rt->partitions);
        if (!rt->partitions)
            return KH_CLOSE;
        rt->partitions_count = np;
        struct topic *t =
            qt->topic.len > 0 ? topics_get(qt->topic.ptr, (size_t)qt->topic.len) : NULL;
        for (int32_t j = 0; j < np; j++) {
            struct offset_for_leader_epoch_request_offset_for_leader_partition *qp =
                &qt->partitions[j];
            struct offset_for_leader_epoch_response_epoch_end_offset *rp = &rt->partitions[j];
            offset_for_leader_epoch_response_epoch_end_offset_init(rp);
            rp->partition = qp->partition;
            rp->leader_epoch = -1;
            rp->end_offset = -1;
            /* A view has no log of its own, and no epochs to answer for. */
            struct partition *p = t && !topic_is_view(t) ? topic_partition(t, qp->partition) : NULL;
            if (!p) {
                rp->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
                continue;
            }
            rp->error_code =
                partition_end_offset_for_epoch(p, qp->current_leader_epoch, qp->leader_epoch,
                                               any_replica, &rp->leader_epoch, &rp->end_offset);
        }
        topic_put(t);
    }
    offset_for_leader_epoch_response_encode(&r->out, r->hdr.api_version, &resp);
    return KH_DONE;
}
