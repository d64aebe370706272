/* DescribeCluster: this broker is the cluster and its controller. */
#include "broker/topics.h"
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
    struct describe_cluster_response_describe_cluster_broker self;
    describe_cluster_response_describe_cluster_broker_init(&self);
    self.broker_id = cfg->node_id;
    self.host = kstr_c(cfg->advertised_host);
    self.port = cfg->advertised_port;
    resp.brokers = &self;
    resp.brokers_count = 1;
    resp.cluster_id = kstr_c(topics_cluster_id());
    resp.controller_id = cfg->node_id;
    resp.endpoint_type = req.endpoint_type;
    describe_cluster_response_encode(&r->out, r->hdr.api_version, &resp);
    return KH_DONE;
}
