/*
 * znodes: the JSON of the znodes Runnel reads and writes, byte-compatible
 * with Kafka's (core/src/main/scala/kafka/zk/ZkData.scala), so Kafka's
 * tools read a Runnel cluster's ZooKeeper.  Pure functions, no I/O.
 *
 *   /brokers/ids/<id>  {"features":{},"listener_security_protocol_map":{"PLAINTEXT":"PLAINTEXT"},
 *                       "endpoints":["PLAINTEXT://host:port"],"jmx_port":-1,"port":port,
 *                       "host":"host","version":5,"timestamp":"<ms>"[,"rack":"r"]}
 *   /controller        {"version":1,"brokerid":N,"timestamp":"<ms>"}
 *   /controller_epoch  N (decimal text)
 *   /cluster/id        {"version":"1","id":"<cluster id>"}
 */
#ifndef RUNNEL_ZNODES_H
#define RUNNEL_ZNODES_H

#include <stddef.h>
#include <stdint.h>

#include "cluster/cluster.h"

#define ZNODE_BROKER_IDS "/brokers/ids"
#define ZNODE_CONTROLLER "/controller"
#define ZNODE_CONTROLLER_EPOCH "/controller_epoch"
#define ZNODE_CLUSTER_ID "/cluster/id"

/* Each encoder returns malloc'd text, NULL when out of memory. */
char *znode_broker_encode(const char *host, int32_t port, const char *rack, int64_t timestamp_ms);
/* host, port and rack of a registration (any version Kafka wrote: the
 * first PLAINTEXT endpoint, else the top-level host and port); 0 or -1. */
int znode_broker_decode(const char *json, size_t len, struct cluster_broker *out);

char *znode_controller_encode(int32_t broker_id, int64_t timestamp_ms);
int znode_controller_decode(const char *json, size_t len, int32_t *broker_id);

char *znode_cluster_id_encode(const char *id);
int znode_cluster_id_decode(const char *json, size_t len, char *id, size_t idlen);

/* /controller_epoch's decimal text; 0 or -1. */
int znode_epoch_decode(const char *text, size_t len, int32_t *epoch);

#endif
