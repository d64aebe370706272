/*
 * brokers: the broker list and controller that Metadata and
 * DescribeCluster report.  A single node: this broker, its own
 * controller.  In a cluster (zookeeper.connect): the live brokers of
 * /brokers/ids and the controller, from cluster/'s snapshot, with this
 * broker added should the snapshot lack it (it leads its partitions).
 */
#ifndef RUNNEL_KAFKA_BROKERS_H
#define RUNNEL_KAFKA_BROKERS_H

#include <stdint.h>

#include "broker/config.h"
#include "common/arena.h"
#include "common/kbuf.h"

struct kafka_broker {
    int32_t id;
    kstr_t host;
    int32_t port;
    kstr_t rack; /* null when none */
};

struct kafka_brokers {
    struct kafka_broker *b; /* in the request's arena */
    int32_t n;
    int32_t controller_id;
};

/* 0, or -1 when out of memory. */
int kafka_brokers_get(arena_t *a, const struct broker_config *cfg, struct kafka_brokers *out);

#endif
