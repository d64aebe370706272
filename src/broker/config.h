/*
 * config: broker settings and per-topic overrides, by Kafka's names.
 *
 * One table (config.c) lists every setting: its broker key, its
 * topic-level name where Kafka has one (log.retention.ms <->
 * retention.ms), its type and default.  The broker's values come from
 * the defaults, then the config file, then --set flags; a topic's
 * effective values are the broker's with the topic's overrides on top
 * (config_resolve_topic).  DescribeConfigs walks the same table.
 */
#ifndef RUNNEL_CONFIG_H
#define RUNNEL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/plog.h"

enum config_type { CFG_INT, CFG_LONG, CFG_BOOL, CFG_STRING, CFG_LIST, CFG_DOUBLE };

/* Kafka's DescribeConfigs config sources. */
enum config_source {
    CFG_SRC_DYNAMIC_TOPIC = 1,
    CFG_SRC_STATIC_BROKER = 4,
    CFG_SRC_DEFAULT = 5,
};

struct config_def {
    const char *broker_key; /* NULL for topic-only keys */
    const char *topic_key;  /* NULL for broker-only keys */
    enum config_type type;
    const char *def; /* default value as text */
    const char *doc;
};

/* Key=value overrides of one topic; strings are owned (malloc). */
struct config_kv {
    char *key;
    char *value;
};
struct config_overrides {
    struct config_kv *kv;
    int n;
};

/* message.type bits (docs/delivery.md). */
#define MSG_TYPE_DELAY 0x01
#define MSG_TYPE_TRANSACTION 0x02
/* Longest delay.levels / retry.backoff.schedule list. */
#define CONFIG_MAX_STEPS 32

/* What a partition needs, resolved from broker values and topic overrides. */
struct topic_settings {
    struct plog_config log;
    bool flush_sync;    /* ack only after fsync (group commit) */
    bool compact;       /* cleanup.policy contains compact */
    bool delete_policy; /* cleanup.policy contains delete */
    int32_t min_insync_replicas;
    uint8_t message_type; /* MSG_TYPE_* bits: which runnel-* headers produce reads */
    int32_t retry_max_attempts;
    int retry_backoff_n;
    int64_t retry_backoff_ms[CONFIG_MAX_STEPS];
    bool key_index; /* key.index: keep a key index (broker/keyindexer.c) */
};

struct broker_config {
    /* Values of every table entry with a broker key, as text (owned). */
    char **values;
    enum config_source *sources; /* DEFAULT or STATIC_BROKER */
    /* Parsed copies of what the broker reads often. */
    char listen_host[256];
    int listen_port;
    char advertised_host[256];
    int advertised_port;
    char log_dir[4096];
    int32_t num_partitions;
    bool auto_create_topics;
    int32_t socket_request_max_bytes;
    int32_t num_network_threads;
    int64_t retention_check_interval_ms;
    int64_t replica_lag_time_max_ms;           /* replica.lag.time.max.ms */
    int64_t replica_hw_checkpoint_interval_ms; /* replica.high.watermark.checkpoint.interval.ms */
    int32_t node_id;
    struct topic_settings topic_defaults;
};

extern const struct config_def config_defs[];
extern const int config_n_defs;

int config_init(struct broker_config *c);
void config_free(struct broker_config *c);
/* Sets one broker key (file line or --set).  Unknown keys are an error:
 * a typo in a setting should not be silently ignored. */
int config_set(struct broker_config *c, const char *key, const char *value, char *err,
               size_t errlen);
int config_load_file(struct broker_config *c, const char *path, char *err, size_t errlen);
/* Parses the derived fields after all sets. */
int config_finish(struct broker_config *c, char *err, size_t errlen);

const struct config_def *config_find_topic_key(const char *key);
/* message.type: MSG_TYPE_* bits, or -1 when not a known type. */
int config_parse_message_type(const char *v);
/* "500ms 10s 1m 2h 1d" -> milliseconds; the count (>= 1), or -1. */
int config_parse_durations(const char *v, int64_t *out, int max);
/* A broker setting's text by key ("" when unknown). */
const char *config_string(const struct broker_config *c, const char *key);
/* A numeric broker setting by key (0 when unknown). */
int64_t config_long(const struct broker_config *c, const char *key);
/* The broker's current value of a topic key's synonym. */
const char *config_broker_value_for_topic_key(const struct broker_config *c,
                                              const struct config_def *d, enum config_source *src);
/* Checks a topic-level key and value: 0, or -1 with a message. */
int config_validate_topic(const char *key, const char *value, char *err, size_t errlen);
int config_resolve_topic(const struct broker_config *c, const struct config_overrides *o,
                         struct topic_settings *out, char *err, size_t errlen);

const char *config_overrides_get(const struct config_overrides *o, const char *key);
int config_overrides_set(struct config_overrides *o, const char *key, const char *value);
void config_overrides_unset(struct config_overrides *o, const char *key);
void config_overrides_free(struct config_overrides *o);
int config_overrides_copy(struct config_overrides *dst, const struct config_overrides *src);

#endif
