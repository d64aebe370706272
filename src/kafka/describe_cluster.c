/* DescribeCluster: the brokers and the controller (kafka/brokers.c). */
#include "broker/topics.h"
#include "kafka/brokers.h"
#include "kafka/handlers.h"
#include "proto/gen/msgs.h"

int handle_describe_cluster(struct kreq *r)
{
    struct describe_cluster_request req;
    if (!KREQ_DECODE(r, describe_cluster_request, &req))
        return KH_CLOSE;
    const struct broker_config *cfg = topics_broker_config();
    struct describe_cluster_response resp;
    describe_cluster_response_init(&resp);
    struct kafka_brokers kb;
    if (kafka_brokers_get(&r->arena, cfg, &kb))
        return KH_CLOSE;
    resp.brokers = arena_alloc(&r->arena, (size_t)kb.n * sizeof *resp.brokers);
    if (!resp.brokers)
        return KH_CLOSE;
    for (int32_t i = 0; i < kb.n; i++) {
        describe_cluster_response_describe_cluster_broker_init(&resp.brokers[i]);
        resp.brokers[i].broker_id = kb.b[i].id;
        resp.brokers[i].host = kb.b[i].host;
        resp.brokers[i].port = kb.b[i].port;
        resp.brokers[i].rack = kb.b[i].rack;
    }
    resp.brokers_count = kb.n;
    resp.cluster_id = kstr_c(topics_cluster_id());
    resp.controller_id = kb.controller_id;
    resp.endpoint_type = req.endpoint_type;
    describe_cluster_response_encode(&r->out, r->hdr.api_version, &resp);
    return KH_DONE;
}
