/*
 * Internals shared by group.c (state machine), offsets.c (commits),
 * broadcast.c (broadcast groups), settings.c (group settings) and
 * store.c (persistence).
 */
#ifndef RUNNEL_GROUP_INT_H
#define RUNNEL_GROUP_INT_H

#include <pthread.h>

#include "group/group.h"

struct gproto {
    char *name;
    uint8_t *meta;
    int32_t len;
    /* What a broadcast group gives this member under this protocol: a
     * ConsumerProtocolAssignment of every partition of the topics in its
     * subscription, computed when it joined (broadcast.c).  NULL when the
     * metadata is not a consumer subscription. */
    uint8_t *bcast;
    int32_t bcast_len;
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

/*
 * A broadcast group's instance: a consumer identified by its
 * group.instance.id, else its client.id, with offsets of its own that
 * outlive its membership (broadcast.c).
 */
struct ginstance {
    char *id;
    struct goffset *offs; /* sorted by topic, partition */
    int n_offs, cap_offs;
};

/* message.model: how a group hands out partitions (settings.c). */
enum group_model { GM_CLUSTERING, GM_BROADCASTING };

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
    enum group_model model;
    bool model_set;          /* set explicitly, not the default */
    struct ginstance **inst; /* broadcast instances, sorted by id */
    int n_inst, cap_inst;
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
/* The same on any sorted offset table (a group's or an instance's). */
struct goffset *offsets_upsert(struct goffset **v, int *n, int *cap, const char *topic, size_t tlen,
                               int32_t partition);
struct goffset *offsets_find(struct goffset *v, int n, const char *topic, size_t tlen,
                             int32_t partition);
void offsets_remove(struct goffset *v, int *n, const char *topic, size_t tlen, int32_t partition);
void offsets_free(struct goffset *v, int n);
void group_remove(struct group *g);
int16_t group_validate_member(struct group *g, kstr_t member_id, kstr_t instance_id,
                              struct gmember **out, int *idx);
void group_prepare_rebalance(struct group *g, const char *why);

/* broadcast.c */
/* A member's instance identity: group.instance.id, else client.id. */
const char *member_identity(const struct gmember *m);
struct ginstance *instance_find(struct group *g, const char *id, size_t len);
struct ginstance *instance_get_or_create(struct group *g, const char *id, size_t len);
void instance_remove(struct group *g, struct ginstance *in);
void instances_free(struct group *g);
/*
 * Whose offsets a request without a member id reads or writes in a
 * broadcast group: the live member with that client.id (*live set), else
 * the instance of that name (NULL when there is none).
 */
struct ginstance *instance_for_client(struct group *g, kstr_t client_id, struct gmember **live);
/*
 * A joining member's broadcast assignment per protocol (in the order of
 * its JoinGroup), computed before gc.mu is taken because it reads the
 * topic registry.  NULL when the protocol type is not "consumer".
 */
struct bcast_prep {
    uint8_t *p; /* moved into the member's gproto when it is stored */
    int32_t len;
    bool ok; /* the metadata parsed as a ConsumerProtocolSubscription */
};
struct bcast_prep *broadcast_prepare(const struct group_join_args *a);
void broadcast_prep_free(struct bcast_prep *bp, int n);
/* Why a broadcast group refuses this join (KERR_*), 0 if it does not;
 * `self` is the member the join updates or takes over, or NULL. */
int16_t broadcast_check_join(struct group *g, const struct group_join_args *a,
                             const struct gmember *self, const struct bcast_prep *prep);
/* Why g cannot become a broadcast group with its current members (a
 * message in err), 0 if it can. */
int16_t broadcast_check_members(struct group *g, char *err, size_t errlen);
/* offsets.retention.minutes for instances that are gone (tick). */
void broadcast_expire_instances(struct group *g, int64_t wall_ms);

/* store.c: appends to __consumer_offsets (under gc.mu). 0 or -1. */
int store_open(char *err, size_t errlen);
void store_close(void);
int store_load(void);
int store_offsets(struct group *g, const struct group_offset *offs, const bool *skip, int32_t n,
                  int64_t now_ms);
int store_offset_tombstones(struct group *g, const struct group_offset *offs, int32_t n);
int store_group(struct group *g);
int store_group_tombstone(const char *group_id);
int store_instance_offsets(struct group *g, const char *instance, const struct group_offset *offs,
                           const bool *skip, int32_t n, int64_t now_ms);
int store_instance_tombstones(struct group *g, const char *instance,
                              const struct group_offset *offs, int32_t n);
int store_group_settings(struct group *g);
int store_group_settings_tombstone(const char *group_id);

/* A NUL-terminated copy of s[0..n); aborts when out of memory, since
 * coordinator state that cannot be recorded is lost state (group.c). */
char *xstrndup(const char *s, size_t n);

#endif
