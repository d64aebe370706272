/*
 * GET /v1/status: who this broker is, where it listens and stores, and
 * how much it holds.
 */
#include <stdatomic.h>

#include "admin/admin_int.h"
#include "broker/config.h"
#include "broker/topics.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "common/version.h"

int admin_handle_status(const struct admin_request *rq, json_t **body)
{
    (void)rq;
    const struct broker_config *cfg = admin_config();
    int topics, partitions;
    int64_t bytes;
    admin_topics_totals(&topics, &partitions, &bytes);
    *body =
        json_pack("{s:i, s:s, s:s, s:I, s:{s:s, s:s}, s:s, s:i, s:i, s:I, s:I}", "node_id",
                  (int)cfg->node_id, "cluster_id", topics_cluster_id(), "version", RUNNEL_VERSION,
                  "uptime_ms", (json_int_t)(clock_mono_ms() - admin_started_ms()), "listeners",
                  "kafka", admin_kafka_listener(), "admin", admin_listener(), "data_dir",
                  cfg->log_dir, "topics", topics, "partitions", partitions, "connections",
                  (json_int_t)atomic_load_explicit(&metrics_conns_open, memory_order_relaxed),
                  "data_bytes", (json_int_t)bytes);
    if (!*body) {
        *body = admin_error("cannot build the status");
        return 500;
    }
    return 200;
}
