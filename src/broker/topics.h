/*
 * topics: the registry of topics and their partitions.
 *
 * Owns the topic metadata files under <log.dirs>/runnel-topics/ (format
 * in topics.c) and the lifetime of every struct topic and partition.
 *
 * Locks: one rwlock over the name table and every topic's overrides;
 * lookups take it shared and return a counted reference (topic_put()
 * when done), so a handler's topic stays valid even if it is deleted
 * meanwhile.  A topic's partition array is replaced whole (never changed
 * in place) when partitions are added, so readers need no lock for it.
 *
 * Settings follow the same rule: a topic's resolved settings are an
 * immutable snapshot behind an atomic pointer.  topics_set_overrides
 * builds a new one and publishes it (release store, under the registry
 * write lock, which only orders writers); readers call topic_settings(t)
 * with no lock, an acquire load, and see either the old or the new
 * snapshot, never a mix.  Old snapshots are kept on retired_next and
 * freed with the topic, so a pointer from topic_settings() stays valid
 * as long as the caller's topic reference (an AlterConfigs costs one
 * snapshot, ~400 bytes, for the topic's life: configs change rarely, and
 * freeing earlier would need to know that no reader is left).  A reader
 * that needs several fields to agree (retry_backoff_n with
 * retry_backoff_ms) loads the pointer once.  Never write through it.
 */
#ifndef RUNNEL_TOPICS_H
#define RUNNEL_TOPICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "broker/config.h"
#include "broker/partition.h"
#include "broker/view.h"
#include "common/kbuf.h"
#include "common/kerr.h"

struct partition_set {
    int32_t n;
    struct partition_set *retired_next; /* older sets, freed with the topic */
    struct partition *p[];
};

/* One version of a topic's settings (see the top of this file). */
struct topic_settings_snap {
    struct topic_settings s;
    struct topic_settings_snap *retired_next; /* older versions, freed with the topic */
};

struct topic {
    char *name;
    kuuid_t id;
    atomic_int refs;
    atomic_bool deleted;
    uint8_t systopic; /* enum systopic (broker/system_topics.h), from the name */
    struct partition_set *_Atomic parts;
    struct config_overrides overrides; /* under the registry lock */
    /* Replaced whole, never changed in place: read with topic_settings(). */
    struct topic_settings_snap *_Atomic settings;
    /* A filtered view (view.h): no partitions of its own (parts is an
     * empty set), reads go to view->source.  NULL for a plain topic; set
     * before the topic is in the registry and never changed. */
    struct topic_view *view;
};

int topics_open(const struct broker_config *cfg, bool clean, char *err, size_t errlen);
/* A new data directory joining a cluster takes the cluster's id
 * (rewrites meta.properties); before any client connects. */
int topics_adopt_cluster_id(const char *id, char *err, size_t errlen);
/* Closes every partition; flush=true on a clean shutdown. */
void topics_close(bool flush);

/* Kafka's rule: 1-249 of [a-zA-Z0-9._-], not "." or "..". */
bool topics_valid_name(const char *name, size_t len);

/* A counted reference, or NULL. */
struct topic *topics_get(const char *name, size_t len);
void topic_put(struct topic *t);
static inline struct partition *topic_partition(struct topic *t, int32_t idx)
{
    struct partition_set *s = atomic_load_explicit(&t->parts, memory_order_acquire);
    return idx >= 0 && idx < s->n ? s->p[idx] : NULL;
}
static inline int32_t topic_partition_count(struct topic *t)
{
    return atomic_load_explicit(&t->parts, memory_order_acquire)->n;
}

/* The topic's current settings, without a lock; valid while t is held. */
static inline const struct topic_settings *topic_settings(const struct topic *t)
{
    return &atomic_load_explicit(&t->settings, memory_order_acquire)->s;
}

static inline bool topic_is_view(const struct topic *t)
{
    return t->view != NULL;
}

/*
 * For reads (Metadata, ListOffsets, Fetch, offset commits): a plain
 * topic's own partitions, a view's source's.  topic_partition() itself
 * gives nothing for a view, so no write path can reach a source through
 * one by mistake.
 */
static inline struct partition *topic_read_partition(struct topic *t, int32_t idx)
{
    if (t->view)
        t = t->view->source;
    return t ? topic_partition(t, idx) : NULL;
}
static inline int32_t topic_read_partition_count(struct topic *t)
{
    if (t->view)
        t = t->view->source;
    return t ? topic_partition_count(t) : 0;
}

/*
 * Writes a topic refuses: KERR_POLICY_VIOLATION with a message for a
 * view (Produce, DeleteRecords), else 0.  The message is static.
 */
static inline int16_t topic_write_refusal(const struct topic *t, const char **msg)
{
    if (!t->view)
        return 0;
    *msg = "a filtered view is read-only: write to its source topic (view.source)";
    return KERR_POLICY_VIOLATION;
}

/*
 * Creates a topic.  Returns a Kafka error code (0, TOPIC_ALREADY_EXISTS,
 * INVALID_TOPIC_EXCEPTION, INVALID_PARTITIONS, INVALID_CONFIG, ...) with
 * a message in err; *out (if given) gets a reference.  With view.source
 * among the overrides it creates a filtered view of that topic instead
 * (view.h): `partitions` must then be -1 or the source's count.
 */
int16_t topics_create(const char *name, size_t len, int32_t partitions,
                      const struct config_overrides *o, bool validate_only, struct topic **out,
                      char *err, size_t errlen);
/*
 * The same with a replication factor (-1: default.replication.factor)
 * and, when `assignment` is not NULL, an explicit assignment of
 * `partitions` lists of `assignment_rf` broker ids each (partition i at
 * i * assignment_rf).  Without a creation hook (a single node) the
 * factor must be 1 or -1 and an assignment is refused by the caller.
 */
int16_t topics_create_replicated(const char *name, size_t len, int32_t partitions,
                                 int16_t replication_factor, const int32_t *assignment,
                                 int32_t assignment_rf, const struct config_overrides *o,
                                 bool validate_only, struct topic **out, char *err, size_t errlen);

/*
 * Cluster mode: who really creates a topic.  Set by app/ before the
 * network listens.  topics_create*() and topics_get_or_create() check
 * the request as for a local topic (name, configs, partition count),
 * then call the hook instead of creating the topic here; after KERR_NONE
 * they wait (up to TOPICS_CREATE_WAIT_MS) until the topic exists in
 * this broker's registry, which happens when the cluster learns it
 * (topics_apply_cluster), so the client's next request finds it.  The
 * broker's own topics (__consumer_offsets, __runnel.*) and filtered
 * views stay local and never reach the hook.  The hook runs on the
 * caller's thread (a network thread) and may block on ZooKeeper.
 */
struct topics_create_request {
    const char *name;
    size_t len;
    int32_t partitions;         /* >= 1 */
    int16_t replication_factor; /* -1: default.replication.factor */
    const int32_t *assignment;  /* NULL, or partitions * assignment_rf ids */
    int32_t assignment_rf;
    const struct config_overrides *overrides;
    bool validate_only;
};
typedef int16_t (*topics_create_hook_fn)(void *ctx, const struct topics_create_request *rq,
                                         char *err, size_t errlen);
/* More partitions in cluster mode: the hook writes the new assignment;
 * topics_add_partitions then waits for the count, as for creation. */
typedef int16_t (*topics_partitions_hook_fn)(void *ctx, struct topic *t, int32_t total, char *err,
                                             size_t errlen);
#define TOPICS_CREATE_WAIT_MS 10000
void topics_set_create_hook(topics_create_hook_fn fn, void *ctx);
void topics_set_partitions_hook(topics_partitions_hook_fn fn, void *ctx);

/*
 * A topic as the cluster has it (cluster/, on its thread): creates it
 * with this id and overrides when missing, partitions [0, n) of which
 * local[i] says whether this broker holds a replica (a log in the data
 * directory) or not (partition_open_remote); adds partitions when n is
 * larger than the count it has.  0, or -1 with a message.
 */
int topics_apply_cluster(const char *name, kuuid_t id, int32_t n, const bool *local,
                         const struct config_overrides *o, char *err, size_t errlen);

/* Looks up, creating with the defaults when auto-create is on. */
int16_t topics_get_or_create(const char *name, size_t len, bool allow_create, struct topic **out);
/* POLICY_VIOLATION (with a message) for a topic that views read. */
int16_t topics_delete(const char *name, size_t len, char *err, size_t errlen);
/* POLICY_VIOLATION for a view: it has its source's partitions. */
int16_t topics_add_partitions(const char *name, size_t len, int32_t total, bool validate_only,
                              char *err, size_t errlen);
/* Replaces the overrides (AlterConfigs) or edits them (incremental).  A
 * view keeps its view.source and takes only view.* keys; a new
 * view.filter is compiled (INVALID_CONFIG with the position of an error)
 * and used by the next fetch. */
int16_t topics_set_overrides(const char *name, size_t len, const struct config_overrides *o,
                             bool validate_only, char *err, size_t errlen);
/* Copies a topic's overrides under the lock. */
int topics_get_overrides(struct topic *t, struct config_overrides *out);

/* A snapshot of all topics (each referenced); free with topics_list_free. */
int topics_list(struct topic ***out, int *n);
void topics_list_free(struct topic **ts, int n);

/* Retention and periodic flush over every partition (housekeeping thread). */
void topics_housekeep(int64_t now_ms, bool retention);

const struct broker_config *topics_broker_config(void);
const char *topics_cluster_id(void);

#endif
