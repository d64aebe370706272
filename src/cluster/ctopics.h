/*
 * ctopics: topics and partition states in ZooKeeper (inside cluster/;
 * cluster.c drives it).  Every broker learns /brokers/topics and each
 * partition's state znode through watches and applies them; the
 * controller creates missing states and elects leaders
 * (docs/cluster.md, src/cluster/README.md).
 */
#ifndef RUNNEL_CTOPICS_H
#define RUNNEL_CTOPICS_H

#include <stdbool.h>
#include <stdint.h>

#include "cluster/cluster.h"
#include "cluster/zk.h"

void ctopics_init(struct zk *zk, int32_t self, const struct broker_config *cfg,
                  const struct cluster_callbacks *cb);
/* Watcher (completion thread): whether the event is ours; records it. */
bool ctopics_note(enum zk_event ev, const char *path);
/* Everything again (first run, new session: the watches are gone). */
void ctopics_resync(void);

enum {
    CTOPICS_RETRY = 1,  /* a ZooKeeper call failed: run again later */
    CTOPICS_FENCED = 2, /* a controller write found /controller_epoch moved */
};
/* Cluster thread: applies what changed, then (when this broker is the
 * controller) fixes partition states against the live brokers b[0..nb). */
int ctopics_run(const struct cluster_broker *b, int nb);
void ctopics_close(void);

#endif
