/*
 * ListOffsets: earliest (-2), latest (-1), max timestamp (-3, v7+) or
 * the first offset at or after a timestamp, per partition.  A filtered
 * view answers with its source's offsets, which are its own: any of them
 * is a position a consumer of the view can fetch from.  The rules (which
 * bound "latest" is for the requester, the leader epoch check of v4+)
 * are the partition's (partition_list_offset).
 */
#include "broker/topics.h"
#include "common/kerr.h"
#include "kafka/handlers.h"
#include "proto/gen/msgs.h"

int handle_list_offsets(struct kreq *r)
{
    struct list_offsets_request req;
    if (!KREQ_DECODE(r, list_offsets_request, &req))
        return KH_CLOSE;
    enum partition_reader reader = partition_reader_of(req.replica_id);
    enum partition_isolation iso =
        req.isolation_level == 1 ? PARTITION_READ_COMMITTED : PARTITION_READ_UNCOMMITTED;
    struct list_offsets_response resp;
    list_offsets_response_init(&resp);
    int32_t nt = req.topics_count > 0 ? req.topics_count : 0;
    resp.topics = arena_alloc(&r->arena, (size_t)(nt ? nt : 1) * sizeof *resp.topics);
    if (!resp.topics)
        return KH_CLOSE;
    resp.topics_count = nt;
    for (int32_t i = 0; i < nt; i++) {
        struct list_offsets_request_list_offsets_topic *qt = &req.topics[i];
        struct list_offsets_response_list_offsets_topic_response *rt = &resp.topics[i];
        list_offsets_response_list_offsets_topic_response_init(rt);
        rt->name = qt->name;
        int32_t np = qt->partitions_count > 0 ? qt->partitions_count : 0;
        rt->partitions = arena_alloc(&r->arena, (size_t)(np ? np : 1) * sizeof *rt->partitions);
        if (!rt->partitions)
            return KH_CLOSE;
        rt->partitions_count = np;
        struct topic *t = qt->name.len > 0 ? topics_get(qt->name.ptr, (size_t)qt->name.len) : NULL;
        for (int32_t j = 0; j < np; j++) {
            struct list_offsets_response_list_offsets_partition_response *rp = &rt->partitions[j];
            list_offsets_response_list_offsets_partition_response_init(rp);
            rp->partition_index = qt->partitions[j].partition_index;
            rp->offset = -1;
            rp->timestamp = -1;
            struct partition *p = t ? topic_read_partition(t, rp->partition_index) : NULL;
            if (!p) {
                rp->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
                continue;
            }
            rp->error_code = partition_list_offset(
                p, qt->partitions[j].timestamp, qt->partitions[j].current_leader_epoch, reader, iso,
                &rp->offset, &rp->timestamp, &rp->leader_epoch);
        }
        topic_put(t);
    }
    list_offsets_response_encode(&r->out, r->hdr.api_version, &resp);
    return KH_DONE;
}
