/*
 * DeleteRecords: move each partition's log start offset forward.  The
 * checkpoint is fsynced before the answer (done on the network thread:
 * an admin operation, rare enough not to need the flusher); whole
 * segments below the new start go at the next retention pass.
 */
#include "broker/topics.h"
#include "common/kerr.h"
#include "kafka/handlers.h"
#include "proto/gen/msgs.h"

int handle_delete_records(struct kreq *r)
{
    struct delete_records_request req;
    if (!KREQ_DECODE(r, delete_records_request, &req))
        return KH_CLOSE;
    struct delete_records_response resp;
    delete_records_response_init(&resp);
    int32_t nt = req.topics_count > 0 ? req.topics_count : 0;
    resp.topics = arena_alloc(&r->arena, (size_t)(nt ? nt : 1) * sizeof *resp.topics);
    if (!resp.topics)
        return KH_CLOSE;
    resp.topics_count = nt;
    for (int32_t i = 0; i < nt; i++) {
        struct delete_records_request_delete_records_topic *qt = &req.topics[i];
        struct delete_records_response_delete_records_topic_result *rt = &resp.topics[i];
        delete_records_response_delete_records_topic_result_init(rt);
        rt->name = qt->name;
        int32_t np = qt->partitions_count > 0 ? qt->partitions_count : 0;
        rt->partitions = arena_alloc(&r->arena, (size_t)(np ? np : 1) * sizeof *rt->partitions);
        if (!rt->partitions)
            return KH_CLOSE;
        rt->partitions_count = np;
        struct topic *t = qt->name.len > 0 ? topics_get(qt->name.ptr, (size_t)qt->name.len) : NULL;
        const char *refusal;
        int16_t refused = t ? topic_write_refusal(t, &refusal) : 0;
        for (int32_t j = 0; j < np; j++) {
            struct delete_records_response_delete_records_partition_result *rp = &rt->partitions[j];
            delete_records_response_delete_records_partition_result_init(rp);
            rp->partition_index = qt->partitions[j].partition_index;
            rp->low_watermark = -1;
            if (refused) {
                /* A view's records are its source's: deleting them is the
                 * source's business (Kafka answers POLICY_VIOLATION too
                 * when a topic's policy forbids DeleteRecords). */
                rp->error_code = refused;
                continue;
            }
            struct partition *p = t ? topic_partition(t, rp->partition_index) : NULL;
            if (!p) {
                rp->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
                continue;
            }
            rp->error_code =
                partition_delete_records(p, qt->partitions[j].offset, &rp->low_watermark);
        }
        topic_put(t);
    }
    delete_records_response_encode(&r->out, r->hdr.api_version, &resp);
    return KH_DONE;
}
