/*
 * replication: cluster mode's parts put together (decision 0014).
 *
 * The cluster's partition states (cluster/, from ZooKeeper's watches)
 * make each local replica leader or follower (broker/partition) and
 * start or stop its fetcher (replica/); a leader's ISR changes go back
 * to ZooKeeper through cluster_write_isr; a thread of its own runs the
 * ISR checks and the high-watermark checkpoints.  Nothing here runs
 * without zookeeper.connect.
 */
#ifndef RUNNEL_APP_REPLICATION_H
#define RUNNEL_APP_REPLICATION_H

#include <stddef.h>
#include <stdint.h>

#include "broker/config.h"
#include "cluster/cluster.h"

struct topic;

/* Before cluster_join: the ISR hooks, the fetcher's parameters and the
 * maintenance thread.  0, or -1 with a message. */
int replication_start(const struct broker_config *cfg, char *err, size_t errlen);
/* cluster_callbacks.on_partition_state. */
void replication_on_partition_state(void *ctx, struct topic *t, int32_t partition,
                                    const struct cluster_partition_state *st);
/* After the network stopped and before cluster_close: fetchers and the
 * maintenance thread end; a last high-watermark checkpoint is written. */
void replication_stop(void);

#endif
