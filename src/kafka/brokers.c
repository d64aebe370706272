/* brokers: what Metadata and DescribeCluster say about the cluster. */
#include "kafka/brokers.h"

#include <string.h>

#include "cluster/cluster.h"

static kstr_t copy(arena_t *a, const char *s)
{
    size_t n = strlen(s);
    char *c = arena_strndup(a, s, n);
    return c ? (kstr_t){c, (int32_t)n} : (kstr_t){"", 0};
}

int kafka_brokers_get(arena_t *a, const struct broker_config *cfg, struct kafka_brokers *out)
{
    const struct cluster_snapshot *s = cluster_snapshot_get();
    int32_t n = s ? s->n : 0;
    bool self_listed = false;
    for (int32_t i = 0; i < n; i++)
        self_listed |= s->b[i].id == cfg->node_id;
    out->b = arena_alloc(a, (size_t)(n + 1) * sizeof *out->b);
    if (!out->b) {
        cluster_snapshot_put(s);
        return -1;
    }
    out->n = 0;
    out->controller_id = s ? s->controller_id : cfg->node_id;
    /* The strings are copied: the snapshot may be freed before encoding. */
    for (int32_t i = 0; i < n; i++) {
        struct kafka_broker *b = &out->b[out->n++];
        b->id = s->b[i].id;
        b->host = copy(a, s->b[i].host);
        b->port = s->b[i].port;
        b->rack = s->b[i].rack[0] ? copy(a, s->b[i].rack) : (kstr_t){NULL, -1};
    }
    cluster_snapshot_put(s);
    if (!self_listed) {
        struct kafka_broker *b = &out->b[out->n++];
        b->id = cfg->node_id;
        b->host = kstr_c(cfg->advertised_host);
        b->port = cfg->advertised_port;
        const char *rack = config_string(cfg, "broker.rack");
        b->rack = *rack ? kstr_c(rack) : (kstr_t){NULL, -1};
    }
    return 0;
}
