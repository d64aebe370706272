/*
 * cluster: membership and controller election through ZooKeeper, in
 * Kafka's ZooKeeper-mode layout (docs/cluster.md, src/cluster/README.md).
 *
 * Off (every function a no-op, cluster_snapshot_get() NULL) unless
 * zookeeper.connect is set.  Start-up order, from app/broker_main.c:
 *   cluster_open()            session (fails within zookeeper.connection.timeout.ms)
 *   cluster_sync_cluster_id() /cluster/id against meta.properties
 *   cluster_join()            /brokers/ids/<id>, the broker list, the election
 *   ...                       serve
 *   cluster_close()           closes the session: the znodes go at once
 *
 * The snapshot and the controller state are readable from any thread.
 * The callbacks run on the cluster thread (and on_deposed once more from
 * cluster_close(), after that thread ended), never on a network thread.
 */
#ifndef RUNNEL_CLUSTER_H
#define RUNNEL_CLUSTER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/config.h"

/* One live broker, from its /brokers/ids/<id> znode. */
struct cluster_broker {
    int32_t id;
    char host[256];
    int32_t port;
    char rack[128]; /* "" when the broker has none */
};

/* The live brokers (sorted by id) and the controller, as one immutable
 * value: replaced whole on every change, freed with its last reference. */
struct cluster_snapshot {
    atomic_int refs;
    int32_t controller_id; /* -1 while there is none */
    int32_t n;
    struct cluster_broker b[];
};

#define CLUSTER_MAX_RF 16

/* A partition's state znode, with its replicas from the assignment. */
struct cluster_partition_state {
    int32_t leader, leader_epoch, controller_epoch, zk_version;
    int32_t n_replicas, n_isr;
    int32_t replicas[CLUSTER_MAX_RF], isr[CLUSTER_MAX_RF];
};

struct topic;

struct cluster_callbacks {
    /* This broker won the election; epoch and the zkVersion of
     * /controller_epoch that every controller write must check. */
    void (*on_elected)(void *ctx, int32_t epoch, int32_t epoch_zkversion);
    /* It is no longer the controller (another won, or its session ended). */
    void (*on_deposed)(void *ctx);
    /* The live broker set or the controller changed. */
    void (*on_brokers_changed)(void *ctx, const struct cluster_snapshot *s);
    /* A partition's state znode as read (also at start, for every
     * partition): in znode-version order per partition.  t is a counted
     * reference held for the call. */
    void (*on_partition_state)(void *ctx, struct topic *t, int32_t partition,
                               const struct cluster_partition_state *st);
    void *ctx;
};

/* Whether zookeeper.connect is set (valid after config_finish). */
bool cluster_configured(const struct broker_config *cfg);
/* Whether cluster_open() succeeded and cluster_close() did not run. */
bool cluster_enabled(void);

int cluster_open(const struct broker_config *cfg, char *err, size_t errlen);
/*
 * Kafka's cluster id check.  /cluster/id is created with `local` when
 * absent.  0: ZooKeeper holds `local`.  1: it holds another id, written
 * to zk_id, which a new data directory (local_is_new) must adopt.  -1:
 * another id and the data directory has its own (Kafka's
 * InconsistentClusterIdException), or ZooKeeper failed; message in err.
 */
int cluster_sync_cluster_id(const char *local, bool local_is_new, char *zk_id, size_t zk_idlen,
                            char *err, size_t errlen);
/* Before cluster_join(); the callbacks are called on the cluster thread. */
void cluster_set_callbacks(const struct cluster_callbacks *cb);
/* Registers this broker (refused when its id is taken by a live broker),
 * reads the broker list, runs the first election, starts the thread. */
int cluster_join(char *err, size_t errlen);
void cluster_close(void);

/* A counted reference to the current snapshot, NULL when not clustered. */
const struct cluster_snapshot *cluster_snapshot_get(void);
void cluster_snapshot_put(const struct cluster_snapshot *s);

/* The controller's broker id, -1 when none is known. */
int32_t cluster_controller_id(void);
/* True when this broker is the controller, with its epoch and the
 * zkVersion of /controller_epoch it wrote. */
bool cluster_is_controller(int32_t *epoch, int32_t *epoch_zkversion);

/*
 * The session, for the controller's later writes (partition state):
 * each must go in a zk_multi() that starts with
 * zoo_check_op_init(op, "/controller_epoch", epoch_zkversion), so a
 * deposed controller's write fails with ZBADVERSION.  Cluster thread
 * only (callbacks); NULL when not clustered.
 */
struct zk;
struct zk *cluster_zk(void);

/*
 * The leader's ISR change: a setData of the partition's state znode on
 * condition of expected_zk_version, keeping controller_epoch as read.
 * 0 written (*new_zk_version set), 1 the version moved (ZBADVERSION:
 * re-read the state), -1 error.  Any thread but a network thread.
 */
int cluster_write_isr(const char *topic, int32_t partition, int32_t leader, int32_t leader_epoch,
                      const int32_t *isr, int32_t n_isr, int32_t expected_zk_version,
                      int32_t *new_zk_version);

/*
 * Topic creation and new partitions in cluster mode, for
 * topics_set_create_hook / topics_set_partitions_hook (broker/topics.h):
 * writes /config/topics/T and /brokers/topics/T with an assignment over
 * the live brokers (Kafka's AdminUtils.assignReplicasToBrokers, rack
 * aware when every live broker has a rack).  Kafka error codes.
 */
struct topics_create_request;
int16_t cluster_create_topic(void *ctx, const struct topics_create_request *rq, char *err,
                             size_t errlen);
int16_t cluster_add_partitions(void *ctx, struct topic *t, int32_t total, char *err, size_t errlen);

#endif
