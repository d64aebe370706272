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
 *   /brokers/topics/T  {"version":3,"partitions":{"0":[1,2,3],...},"adding_replicas":{},
 *                       "removing_replicas":{},"topic_id":"<22 chars: base64url uuid>"}
 *   /brokers/topics/T/partitions/P/state
 *                      {"controller_epoch":E,"leader":L,"version":1,"leader_epoch":N,"isr":[...]}
 *   /config/topics/T   {"version":1,"config":{"key":"value",...}}
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
#define ZNODE_TOPICS "/brokers/topics"
#define ZNODE_CONFIG_TOPICS "/config/topics"

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

/* A topic's assignment: n partitions of rf[i] replicas each. */
struct znode_assignment {
    int32_t n;
    int32_t *rf;       /* n counts */
    int32_t *replicas; /* n * CLUSTER_MAX_RF, partition i at i * CLUSTER_MAX_RF */
};
void znode_assignment_free(struct znode_assignment *a);
/* id: the topic id (16 bytes); written as Kafka's Uuid.toString. */
char *znode_topic_encode(const struct znode_assignment *a, const uint8_t id[16]);
/* 0 or -1; *has_id false for a znode without "topic_id" (Kafka < 2.8). */
int znode_topic_decode(const char *json, size_t len, struct znode_assignment *out, uint8_t id[16],
                       int *has_id);

/* Kafka's Uuid.toString: base64url of the 16 bytes, no padding (22 chars). */
void znode_uuid_encode(const uint8_t id[16], char out[23]);
int znode_uuid_decode(const char *s, uint8_t id[16]);

/* A partition's state znode (LeaderAndIsr). */
struct znode_state {
    int32_t leader, leader_epoch, controller_epoch;
    int32_t n_isr;
    int32_t isr[CLUSTER_MAX_RF];
};
char *znode_state_encode(const struct znode_state *s);
int znode_state_decode(const char *json, size_t len, struct znode_state *out);

/* /config/topics/T from n key/value pairs, and back: calls fn per pair. */
char *znode_config_encode(const char *const *keys, const char *const *values, int n);
int znode_config_decode(const char *json, size_t len,
                        void (*fn)(void *arg, const char *key, const char *value), void *arg);

#endif
