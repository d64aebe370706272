/*
 * group: the group coordinator (Kafka's classic rebalance protocol) and
 * committed offsets.
 *
 * This broker coordinates every group.  A group moves through Kafka's
 * states: Empty -> PreparingRebalance (members (re)join; the coordinator
 * waits for every known member or the rebalance timeout) ->
 * CompletingRebalance (the new generation is out; the leader computes
 * the assignment) -> Stable (SyncGroup handed every member its share).
 * Members that stop heartbeating for session.timeout.ms are removed and
 * the group rebalances.  Static members (group.instance.id) keep their
 * assignment across a restart within the session timeout.
 *
 * Committed offsets and group metadata are records in the internal
 * topic __consumer_offsets, in Kafka's own key/value formats (store.c),
 * and are read back on start.
 *
 * A group may be declared broadcast (setting message.model=BROADCASTING,
 * settings.c): every member then gets every partition it subscribes to,
 * and offsets are kept per member instance (broadcast.c).
 *
 * Threads and locks: one coordinator mutex guards every group.  Handlers
 * call in from network threads; JoinGroup and SyncGroup may have to wait
 * for other members, so they park a group_wait; whoever completes the
 * step (another member's request, or the main thread's tick on a
 * timeout) fills the wait's answer under the mutex and wakes the
 * request's own loop, which encodes and sends it.
 */
#ifndef RUNNEL_GROUP_H
#define RUNNEL_GROUP_H

#include <stdbool.h>
#include <stdint.h>

#include "common/arena.h"
#include "common/kbuf.h"
#include "net/loop.h"

struct broker_config;

enum group_state { GS_EMPTY, GS_PREPARING, GS_COMPLETING, GS_STABLE, GS_DEAD };
const char *group_state_name(enum group_state s);

struct group_protocol {
    kstr_t name;
    kbytes_t metadata;
};

/* A member as JoinGroup's leader sees it. */
struct group_member_info {
    kstr_t member_id;
    kstr_t group_instance_id;
    kbytes_t metadata;
};

/*
 * A parked JoinGroup or SyncGroup.  The handler sets wake (with its
 * request's loop and callback) and arena; the coordinator fills the rest
 * (strings copied into arena) before waking.  `done` is set then.
 */
struct group_wait {
    struct loop_wake wake;
    arena_t *arena;
    bool done;
    int16_t error;
    /* JoinGroup answer */
    int32_t generation;
    kstr_t protocol_type, protocol_name, leader, member_id;
    struct group_member_info *members; /* for the leader only */
    int32_t members_count;
    /* SyncGroup answer */
    kbytes_t assignment;
    /* private to the coordinator */
    struct group *g;
    struct gmember *m;
};

struct group_join_args {
    kstr_t group_id, member_id, group_instance_id, protocol_type;
    kstr_t client_id, client_host;
    int32_t session_timeout_ms, rebalance_timeout_ms;
    const struct group_protocol *protocols;
    int32_t protocols_count;
    bool require_known_member; /* JoinGroup v4+: MEMBER_ID_REQUIRED round trip */
};

/* Returns 0 when answered at once (w->done), 1 when parked. */
int group_join(const struct group_join_args *a, struct group_wait *w);

struct group_assignment {
    kstr_t member_id;
    kbytes_t assignment;
};
int group_sync(kstr_t group_id, int32_t generation, kstr_t member_id, kstr_t instance_id,
               const struct group_assignment *as, int32_t n, struct group_wait *w);
/* Takes a parked wait back (its connection closed). */
void group_cancel_wait(struct group_wait *w);

int16_t group_heartbeat(kstr_t group_id, int32_t generation, kstr_t member_id, kstr_t instance_id);
/* One member leaving (LeaveGroup v0-2 member_id, v3+ identities). */
int16_t group_leave(kstr_t group_id, kstr_t member_id, kstr_t instance_id);

/* ---- offsets ---- */

struct group_offset {
    kstr_t topic;
    int32_t partition;
    int64_t offset;
    int32_t leader_epoch;
    kstr_t metadata;
    int16_t error; /* out */
};
/* Validates membership, stores durably, fills each error. */
int16_t group_commit(kstr_t group_id, int32_t generation, kstr_t member_id, kstr_t instance_id,
                     struct group_offset *offs, int32_t n);
/* Fills offset/epoch/metadata (-1/"" when none committed); strings copied
 * into arena.  Returns a group-level error (0). */
int16_t group_fetch_offsets(kstr_t group_id, struct group_offset *offs, int32_t n, arena_t *a);
/* Every committed offset of a group, for OffsetFetch with null topics and
 * for `runnel group describe`: *out in arena. */
int16_t group_all_offsets(kstr_t group_id, arena_t *a, struct group_offset **out, int32_t *n);
/*
 * The same for a request whose header carries client_id: in a broadcast
 * group that names the instance a request without a member id is for
 * (offsets.c).  The functions above are these with no client id: in a
 * broadcast group they read the lowest offset of any instance.
 */
int16_t group_commit_as(kstr_t group_id, kstr_t client_id, int32_t generation, kstr_t member_id,
                        kstr_t instance_id, struct group_offset *offs, int32_t n);
int16_t group_fetch_offsets_as(kstr_t group_id, kstr_t client_id, struct group_offset *offs,
                               int32_t n, arena_t *a);
int16_t group_all_offsets_as(kstr_t group_id, kstr_t client_id, arena_t *a,
                             struct group_offset **out, int32_t *n);
/* OffsetDelete: removes the offsets of partitions no member subscribes to. */
int16_t group_delete_offsets(kstr_t group_id, struct group_offset *offs, int32_t n);

/* A deleted topic's committed offsets go from every group (as in Kafka),
 * so a topic re-created under the name starts without them. */
void groups_forget_topic(const char *topic, size_t len);

/* ---- admin ---- */

struct group_summary {
    kstr_t group_id, protocol_type, state;
};
int group_list(arena_t *a, struct group_summary **out, int32_t *n);

struct group_member_desc {
    kstr_t member_id, group_instance_id, client_id, client_host;
    kbytes_t metadata, assignment;
};
struct group_desc {
    int16_t error;
    kstr_t group_id, state, protocol_type, protocol;
    struct group_member_desc *members;
    int32_t members_count;
};
void group_describe(kstr_t group_id, arena_t *a, struct group_desc *out);
int16_t group_delete(kstr_t group_id);

/* ---- group settings (DescribeConfigs/AlterConfigs on GROUP, settings.c) ---- */

struct group_setting {
    const char *name;
    kstr_t value;
    bool is_default, read_only;
    const char *doc;
};
/* Every setting of a group; a group the coordinator does not know has
 * the defaults.  *out in arena; KERR_INVALID_GROUP_ID for an empty id. */
int16_t group_describe_settings(kstr_t group_id, arena_t *a, struct group_setting **out,
                                int32_t *n);
struct group_setting_op {
    kstr_t name;
    kstr_t value; /* null: back to the default */
};
/*
 * Applies ops (IncrementalAlterConfigs SET/DELETE), or with replace=true
 * makes them the whole set, the rest back to defaults (AlterConfigs).
 * Returns a Kafka error code with a message in err (INVALID_CONFIG for an
 * unknown name or value).  A change of message.model makes a group with
 * members rebalance.
 */
int16_t group_alter_settings(kstr_t group_id, const struct group_setting_op *ops, int32_t n,
                             bool replace, bool validate_only, char *err, size_t errlen);

/* ---- lifetime ---- */

/* Creates/opens __consumer_offsets and loads what it holds. */
int groups_open(const struct broker_config *cfg, char *err, size_t errlen);
void groups_close(void);
/* Session and rebalance timeouts, offset retention: every ~100 ms. */
void groups_tick(void);

/* ---- views (views.c): snapshots for the admin API and metrics ---- */

struct group_view_member {
    const char *member_id, *group_instance_id; /* group_instance_id NULL when dynamic */
    const char *client_id, *client_host;
    const uint8_t *assignment; /* as SyncGroup handed it out; NULL when none */
    int32_t assignment_len;
};
struct group_view_offset {
    const char *topic;
    int32_t partition;
    int64_t offset;
    int32_t leader_epoch;
    const char *metadata;
    int64_t commit_ts; /* wall ms */
};
/* A broadcast group's instance and its own offsets. */
struct group_view_instance {
    const char *instance;
    struct group_view_offset *offsets; /* by topic, partition */
    int32_t offsets_count;
};
struct group_view {
    const char *group_id, *state, *protocol_type, *protocol;
    const char *leader; /* NULL when none */
    int32_t generation;
    int32_t members_count;
    bool broadcast;                    /* message.model=BROADCASTING */
    struct group_view_member *members; /* with GROUP_VIEW_MEMBERS */
    struct group_view_offset *offsets; /* with GROUP_VIEW_OFFSETS, by topic, partition */
    int32_t offsets_count;
    struct group_view_instance *instances; /* with GROUP_VIEW_OFFSETS, broadcast groups */
    int32_t instances_count;
};
enum { GROUP_VIEW_MEMBERS = 1, GROUP_VIEW_OFFSETS = 2 };
/*
 * Copies every group (group_id NULL) or the one named (*n 0 when
 * unknown) into arena a, sorted by id, with the parts `what` asks for.
 * One pass under the coordinator lock.  0, or -1 when out of memory.
 */
int group_views(arena_t *a, const char *group_id, int what, struct group_view **out, int32_t *n);

#define GROUP_OFFSETS_TOPIC "__consumer_offsets"

#endif
