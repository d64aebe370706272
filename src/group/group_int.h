/* Internals shared by group.c (state machine) and store.c (persistence). */
#ifndef RUNNEL_GROUP_INT_H
#define RUNNEL_GROUP_INT_H

#include <pthread.h>

#include "group/group.h"

struct gproto {
    char *name;
    uint8_t *meta;
    int32_t len;
};

struct gmember {
    char *id, *instance_id, *client_id, *client_host, *protocol_type;
    int32_t session_timeout_ms, rebalance_timeout_ms;
    struct gproto *protos;
    int n_protos;
    uint8_t *assignment;
    int32_t assignment_len;
    int64_t last_seen; /* monotonic ms of the last join/sync/heartbeat */
    struct group_wait *join_wait, *sync_wait;
    bool rejoined; /* has joined during the current rebalance */
};

struct goffset {
    char *topic;
    int32_t partition;
    int64_t offset;
    int32_t leader_epoch;
    char *metadata;
    int64_t commit_ts; /* wall ms */
};

struct gpending {
    char *id;
    int64_t since; /* monotonic ms */
};

struct group {
    char *id;
    enum group_state state;
    int32_t generation;
    char *protocol_type, *protocol, *leader;
    struct gmember **m;
    int n, cap;
    struct gpending *pending; /* ids handed out with MEMBER_ID_REQUIRED */
    int n_pending;
    int64_t rebalance_deadline; /* monotonic ms, in PREPARING */
    int64_t join_delay_until;   /* initial rebalance delay of an empty group */
    struct goffset *offs;       /* sorted by topic, partition */
    int n_offs, cap_offs;
    int64_t empty_since; /* wall ms; for offsets.retention.minutes */
};

/* The coordinator's state; `mu` guards all of it. */
struct coordinator {
    pthread_mutex_t mu;
    struct group **g; /* sorted by id */
    int n, cap;
    const struct broker_config *cfg;
    int32_t min_session_ms, max_session_ms, initial_delay_ms, metadata_max;
    int64_t retention_ms;
};
extern struct coordinator gc;

struct group *group_find(const char *id, size_t len);
struct group *group_get_or_create(const char *id, size_t len);
struct goffset *group_offset_upsert(struct group *g, const char *topic, size_t tlen,
                                    int32_t partition);
void group_offset_remove(struct group *g, const char *topic, size_t tlen, int32_t partition);
void group_remove(struct group *g);
int16_t group_validate_member(struct group *g, kstr_t member_id, kstr_t instance_id,
                              struct gmember **out, int *idx);

/* store.c: appends to __consumer_offsets (under gc.mu). 0 or -1. */
int store_open(char *err, size_t errlen);
void store_close(void);
int store_load(void);
int store_offsets(struct group *g, const struct group_offset *offs, const bool *skip, int32_t n,
                  int64_t now_ms);
int store_offset_tombstones(struct group *g, const struct group_offset *offs, int32_t n);
int store_group(struct group *g);
int store_group_tombstone(const char *group_id);

#endif
