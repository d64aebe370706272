#include "broker/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/hostport.h"

/*
 * Every setting Runnel knows.  Defaults are Kafka's where Kafka has the
 * setting; "-1" stands for Kafka's Long.MAX_VALUE ("never") in the flush
 * settings.  log.flush.sync / flush.sync are Runnel's own: RocketMQ's
 * SYNC_FLUSH, a produce acknowledged only after its data is fsynced.
 */
const struct config_def config_defs[] = {
    {"listeners", NULL, CFG_STRING, "PLAINTEXT://127.0.0.1:9092", "host:port to listen on"},
    {"advertised.listeners", NULL, CFG_STRING, "",
     "host:port given to clients (default: listeners)"},
    {"log.dirs", NULL, CFG_STRING, "/tmp/runnel-logs", "data directory"},
    {"node.id", NULL, CFG_INT, "1", "this broker's id (set it explicitly in a cluster)"},
    /* Cluster mode (docs/cluster.md): Kafka's ZooKeeper settings. */
    {"zookeeper.connect", NULL, CFG_STRING, "",
     "ZooKeeper host:port[,host:port]/chroot (empty: a single node, no ZooKeeper)"},
    {"zookeeper.session.timeout.ms", NULL, CFG_INT, "18000",
     "ZooKeeper session timeout: how long a dead broker stays registered"},
    {"zookeeper.connection.timeout.ms", NULL, CFG_INT, "",
     "longest wait for the ZooKeeper session at start (empty: the session timeout)"},
    {"broker.rack", NULL, CFG_STRING, "", "this broker's rack (empty: none)"},
    {"num.partitions", NULL, CFG_INT, "1", "partitions of auto-created topics"},
    {"auto.create.topics.enable", NULL, CFG_BOOL, "true", "create topics on first use"},
    {"default.replication.factor", NULL, CFG_INT, "1", "replicas of new topics"},
    {"socket.request.max.bytes", NULL, CFG_INT, "104857600", "largest request frame"},
    {"num.network.threads", NULL, CFG_INT, "0", "event loop threads (0: one per core)"},
    {"log.retention.check.interval.ms", NULL, CFG_LONG, "300000", "how often retention runs"},
    {"replica.lag.time.max.ms", NULL, CFG_LONG, "30000",
     "a follower not caught up for this long leaves the ISR"},
    {"replica.fetch.max.bytes", NULL, CFG_INT, "1048576",
     "bytes a follower asks for per partition (at least one whole batch comes)"},
    {"replica.fetch.response.max.bytes", NULL, CFG_INT, "10485760",
     "bytes a follower asks for per fetch, over all partitions"},
    {"replica.fetch.wait.max.ms", NULL, CFG_INT, "500", "a follower's fetch long-poll"},
    {"replica.fetch.min.bytes", NULL, CFG_INT, "1", "bytes a follower's fetch waits for"},
    {"replica.fetch.backoff.ms", NULL, CFG_INT, "1000", "a follower's pause after a fetch error"},
    {"replica.socket.timeout.ms", NULL, CFG_INT, "30000",
     "a follower's connect and I/O timeout towards the leader"},
    {"replica.high.watermark.checkpoint.interval.ms", NULL, CFG_LONG, "5000",
     "how often replicated partitions checkpoint their high watermark"},
    {"group.min.session.timeout.ms", NULL, CFG_INT, "6000", "shortest session a member may ask"},
    {"group.max.session.timeout.ms", NULL, CFG_INT, "1800000", "longest session a member may ask"},
    {"group.initial.rebalance.delay.ms", NULL, CFG_INT, "3000",
     "an empty group waits this long for more members"},
    {"offsets.retention.minutes", NULL, CFG_LONG, "10080", "offsets of an empty group expire"},
    {"offset.metadata.max.bytes", NULL, CFG_INT, "4096", "longest commit metadata"},
    {"log.segment.bytes", "segment.bytes", CFG_INT, "1073741824", "segment size"},
    {"log.roll.ms", "segment.ms", CFG_LONG, "604800000", "segment age before rolling"},
    {"log.retention.ms", "retention.ms", CFG_LONG, "604800000", "keep data this long (-1 forever)"},
    {"log.retention.bytes", "retention.bytes", CFG_LONG, "-1", "keep this much per partition"},
    {"log.flush.interval.messages", "flush.messages", CFG_LONG, "-1", "fsync every N records"},
    {"log.flush.interval.ms", "flush.ms", CFG_LONG, "-1", "fsync data older than this"},
    {"log.flush.sync", "flush.sync", CFG_BOOL, "false", "ack produces only after fsync"},
    {"log.index.interval.bytes", "index.interval.bytes", CFG_INT, "4096",
     "bytes between index entries"},
    {"log.index.size.max.bytes", "segment.index.bytes", CFG_INT, "10485760", "index file size"},
    {"log.message.timestamp.type", "message.timestamp.type", CFG_STRING, "CreateTime",
     "CreateTime or LogAppendTime"},
    {"message.max.bytes", "max.message.bytes", CFG_INT, "1048588", "largest record batch"},
    {"log.cleanup.policy", "cleanup.policy", CFG_LIST, "delete", "delete, compact, or both"},
    {"log.cleaner.delete.retention.ms", "delete.retention.ms", CFG_LONG, "86400000",
     "how long a compacted topic keeps tombstones"},
    {"log.cleaner.min.compaction.lag.ms", "min.compaction.lag.ms", CFG_LONG, "0",
     "records younger than this are not compacted"},
    {"log.cleaner.min.cleanable.ratio", "min.cleanable.dirty.ratio", CFG_DOUBLE, "0.5",
     "compact when this share of the log is uncompacted"},
    {"log.cleaner.backoff.ms", NULL, CFG_LONG, "15000", "how often the cleaner looks for work"},
    {"log.cleaner.dedupe.buffer.size", NULL, CFG_LONG, "67108864",
     "memory for the cleaner's key map"},
    {"compression.type", "compression.type", CFG_STRING, "producer", "producer: keep as sent"},
    {"min.insync.replicas", "min.insync.replicas", CFG_INT, "1", "replicas for acks=all"},
    {"unclean.leader.election.enable", "unclean.leader.election.enable", CFG_BOOL, "false",
     "cluster mode: elect a replica outside the ISR when none is left (may lose data)"},
    /* Held-back records (docs/delivery.md), RocketMQ's semantics. */
    {"message.type", "message.type", CFG_STRING, "normal",
     "normal, delay, transaction or mixed: which runnel-* headers produce reads"},
    {"delay.levels", NULL, CFG_STRING, "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h",
     "delays of runnel-delay-level 1..N"},
    {"delay.max.ms", NULL, CFG_LONG, "3456000000", "longest delay accepted (40 days)"},
    {"retry.max.attempts", "retry.max.attempts", CFG_INT, "16",
     "retries before a record goes to the dead-letter topic"},
    {"retry.backoff.schedule", "retry.backoff.schedule", CFG_STRING,
     "10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h",
     "backoff of retry 1..N (last repeats)"},
    {"half.check.timeout.ms", NULL, CFG_LONG, "6000", "first check-back of a half message"},
    {"half.check.interval.ms", NULL, CFG_LONG, "60000", "later check-backs"},
    {"half.check.max", NULL, CFG_INT, "15", "unanswered check-backs before discarding"},
    {"timer.flush.interval.ms", NULL, CFG_LONG, "1000", "fsync the timer store this often"},
    {"timer.segment.bytes", NULL, CFG_LONG, "67108864", "timer store segment size"},
    {"admin.listener", NULL, CFG_STRING, "127.0.0.1:9644",
     "host:port of the HTTP admin API and /metrics (empty: off)"},
    {"admin.allow.remote", NULL, CFG_BOOL, "false",
     "serve admin requests from non-loopback addresses"},
    /* Filtered views (broker/view.h): topic-only, checked there. */
    {NULL, "view.source", CFG_STRING, "", "a filtered view: the topic it reads (set at creation)"},
    {NULL, "view.filter", CFG_STRING, "", "a filtered view: the records it passes"},
    {NULL, "view.filter.type", CFG_STRING, "TAG", "a filtered view: TAG or SQL92"},
    {"log.key.index", "key.index", CFG_BOOL, "false",
     "index record keys and the keys header for lookups by key"},
};
const int config_n_defs = (int)(sizeof config_defs / sizeof config_defs[0]);

static int find_broker_key(const char *key)
{
    for (int i = 0; i < config_n_defs; i++)
        if (config_defs[i].broker_key && !strcmp(config_defs[i].broker_key, key))
            return i;
    return -1;
}

const struct config_def *config_find_topic_key(const char *key)
{
    for (int i = 0; i < config_n_defs; i++)
        if (config_defs[i].topic_key && !strcmp(config_defs[i].topic_key, key))
            return &config_defs[i];
    return NULL;
}

static int parse_long(const char *v, int64_t *out)
{
    if (!*v)
        return -1;
    errno = 0;
    char *end;
    long long x = strtoll(v, &end, 10);
    if (errno || *end)
        return -1;
    *out = x;
    return 0;
}

/* Checks a value against its type and the rules Kafka applies. */
int config_parse_message_type(const char *v)
{
    if (!strcmp(v, "normal"))
        return 0;
    if (!strcmp(v, "delay"))
        return MSG_TYPE_DELAY;
    if (!strcmp(v, "transaction"))
        return MSG_TYPE_TRANSACTION;
    if (!strcmp(v, "mixed"))
        return MSG_TYPE_DELAY | MSG_TYPE_TRANSACTION;
    return -1;
}

int config_parse_durations(const char *v, int64_t *out, int max)
{
    int n = 0;
    for (const char *p = v;;) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p)
            break;
        if (!isdigit((unsigned char)*p) || n == max)
            return -1;
        char *end;
        errno = 0;
        long long x = strtoll(p, &end, 10);
        int64_t unit;
        if (!strncmp(end, "ms", 2)) {
            unit = 1;
            end += 2;
        } else if (*end == 's') {
            unit = 1000;
            end++;
        } else if (*end == 'm') {
            unit = 60000;
            end++;
        } else if (*end == 'h') {
            unit = 3600000;
            end++;
        } else if (*end == 'd') {
            unit = 86400000;
            end++;
        } else
            return -1;
        if (errno || x <= 0 || x > INT64_MAX / unit / 1000 || (*end && *end != ' ' && *end != ','))
            return -1;
        out[n++] = (int64_t)x * unit;
        p = end;
    }
    return n;
}

static int check_value(const struct config_def *d, const char *key, const char *v, char *err,
                       size_t errlen)
{
    int64_t x;
    switch (d->type) {
    case CFG_INT:
    case CFG_LONG:
        if (parse_long(v, &x) || (d->type == CFG_INT && (x < -2147483648LL || x > 2147483647LL))) {
            snprintf(err, errlen, "%s: '%s' is not a whole number", key, v);
            return -1;
        }
        if ((!strcmp(key, "segment.bytes") || !strcmp(key, "log.segment.bytes")) && x < 1024) {
            snprintf(err, errlen, "%s: must be at least 1024", key);
            return -1;
        }
        if ((strstr(key, "partitions") || strstr(key, "max.bytes") || strstr(key, "index.bytes") ||
             strstr(key, "max.message")) &&
            x < 1) {
            snprintf(err, errlen, "%s: must be positive", key);
            return -1;
        }
        return 0;
    case CFG_DOUBLE: {
        char *end;
        errno = 0;
        double d = strtod(v, &end);
        if (errno || end == v || *end || d < 0 || d > 1) {
            snprintf(err, errlen, "%s: '%s' is not a number between 0 and 1", key, v);
            return -1;
        }
        return 0;
    }
    case CFG_BOOL:
        if (strcmp(v, "true") && strcmp(v, "false")) {
            snprintf(err, errlen, "%s: '%s' is not true or false", key, v);
            return -1;
        }
        return 0;
    case CFG_LIST:
        /* cleanup.policy: delete, compact, or both. */
        for (const char *p = v; *p;) {
            size_t n = strcspn(p, ",");
            if (!((n == 6 && !strncmp(p, "delete", 6)) || (n == 7 && !strncmp(p, "compact", 7)))) {
                snprintf(err, errlen, "%s: '%s' is not delete or compact", key, v);
                return -1;
            }
            p += n + (p[n] == ',');
        }
        return 0;
    case CFG_STRING:
        if (strstr(key, "timestamp.type") && strcmp(v, "CreateTime") &&
            strcmp(v, "LogAppendTime")) {
            snprintf(err, errlen, "%s: '%s' is not CreateTime or LogAppendTime", key, v);
            return -1;
        }
        if (!strcmp(key, "message.type") && config_parse_message_type(v) < 0) {
            snprintf(err, errlen, "%s: '%s' is not normal, delay, transaction or mixed", key, v);
            return -1;
        }
        if (!strcmp(key, "delay.levels") || !strcmp(key, "retry.backoff.schedule")) {
            int64_t steps[CONFIG_MAX_STEPS];
            if (config_parse_durations(v, steps, CONFIG_MAX_STEPS) <= 0) {
                snprintf(err, errlen,
                         "%s: '%s' is not a list of 1 to %d durations like '500ms 10s 1m 2h 1d'",
                         key, v, CONFIG_MAX_STEPS);
                return -1;
            }
        }
        if (!strcmp(key, "compression.type") && strcmp(v, "producer")) {
            /* Recompressing on the broker is not implemented; say so
             * rather than accept a setting that would be ignored. */
            snprintf(err, errlen, "%s: only 'producer' is supported (batches are kept as sent)",
                     key);
            return -1;
        }
        return 0;
    }
    return 0;
}

int config_validate_topic(const char *key, const char *value, char *err, size_t errlen)
{
    const struct config_def *d = config_find_topic_key(key);
    if (!d) {
        snprintf(err, errlen, "unknown topic config '%s'", key);
        return -1;
    }
    if (!value) {
        snprintf(err, errlen, "%s: null value", key);
        return -1;
    }
    return check_value(d, key, value, err, errlen);
}

int config_init(struct broker_config *c)
{
    memset(c, 0, sizeof *c);
    c->values = calloc((size_t)config_n_defs, sizeof *c->values);
    c->sources = calloc((size_t)config_n_defs, sizeof *c->sources);
    if (!c->values || !c->sources)
        return -1;
    for (int i = 0; i < config_n_defs; i++) {
        c->values[i] = strdup(config_defs[i].def);
        c->sources[i] = CFG_SRC_DEFAULT;
        if (!c->values[i])
            return -1;
    }
    return 0;
}

void config_free(struct broker_config *c)
{
    if (c->values)
        for (int i = 0; i < config_n_defs; i++)
            free(c->values[i]);
    free(c->values);
    free(c->sources);
    c->values = NULL;
    c->sources = NULL;
}

/* Kafka's hour/minute spellings map onto the millisecond keys. */
static const struct {
    const char *key, *target;
    int64_t mult;
} aliases[] = {
    {"log.retention.hours", "log.retention.ms", 3600000},
    {"log.retention.minutes", "log.retention.ms", 60000},
    {"log.roll.hours", "log.roll.ms", 3600000},
    {"log.dir", "log.dirs", 0},
    {"broker.id", "node.id", 0},
};

int config_set(struct broker_config *c, const char *key, const char *value, char *err,
               size_t errlen)
{
    char buf[32];
    for (size_t a = 0; a < sizeof aliases / sizeof aliases[0]; a++) {
        if (strcmp(key, aliases[a].key))
            continue;
        if (aliases[a].mult) {
            int64_t x;
            if (parse_long(value, &x)) {
                snprintf(err, errlen, "%s: '%s' is not a whole number", key, value);
                return -1;
            }
            snprintf(buf, sizeof buf, "%lld", (long long)(x * aliases[a].mult));
            value = buf;
        }
        key = aliases[a].target;
        break;
    }
    int i = find_broker_key(key);
    if (i < 0) {
        snprintf(err, errlen, "unknown setting '%s'", key);
        return -1;
    }
    if (check_value(&config_defs[i], key, value, err, errlen))
        return -1;
    char *v = strdup(value);
    if (!v) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    free(c->values[i]);
    c->values[i] = v;
    c->sources[i] = CFG_SRC_STATIC_BROKER;
    return 0;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = 0;
    return s;
}

int config_load_file(struct broker_config *c, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot open config file %s: %s", path, strerror(errno));
        return -1;
    }
    char line[8192];
    int lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#' || *s == '!')
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            snprintf(err, errlen, "%s:%d: expected key=value", path, lineno);
            fclose(f);
            return -1;
        }
        *eq = 0;
        char e2[256];
        if (config_set(c, trim(s), trim(eq + 1), e2, sizeof e2)) {
            snprintf(err, errlen, "%s:%d: %s", path, lineno, e2);
            fclose(f);
            return -1;
        }
    }
    fclose(f);
    return 0;
}

static const char *value_of(const struct broker_config *c, const char *key)
{
    return c->values[find_broker_key(key)];
}

static int parse_listener(const char *v, char *host, size_t hostlen, int *port, char *err,
                          size_t errlen)
{
    if (!strncmp(v, "SSL", 3) || !strncmp(v, "SASL", 4)) {
        snprintf(err, errlen, "listener '%s': only PLAINTEXT is supported", v);
        return -1;
    }
    return hostport_parse("listener", v, host, hostlen, port, err, errlen);
}

static int64_t long_of(const struct broker_config *c, const char *key)
{
    int64_t x = 0;
    parse_long(value_of(c, key), &x);
    return x;
}

const char *config_string(const struct broker_config *c, const char *key)
{
    return find_broker_key(key) < 0 ? "" : value_of(c, key);
}

int64_t config_long(const struct broker_config *c, const char *key)
{
    return find_broker_key(key) < 0 ? 0 : long_of(c, key);
}

int config_finish(struct broker_config *c, char *err, size_t errlen)
{
    const char *l = value_of(c, "listeners");
    if (strchr(l, ',')) {
        snprintf(err, errlen, "listeners: only one listener is supported");
        return -1;
    }
    if (parse_listener(l, c->listen_host, sizeof c->listen_host, &c->listen_port, err, errlen))
        return -1;
    const char *adv = value_of(c, "advertised.listeners");
    if (*adv) {
        if (parse_listener(adv, c->advertised_host, sizeof c->advertised_host, &c->advertised_port,
                           err, errlen))
            return -1;
    } else {
        snprintf(c->advertised_host, sizeof c->advertised_host, "%s",
                 *c->listen_host && strcmp(c->listen_host, "0.0.0.0") ? c->listen_host
                                                                      : "127.0.0.1");
        c->advertised_port = c->listen_port;
    }
    const char *dirs = value_of(c, "log.dirs");
    if (strchr(dirs, ',')) {
        snprintf(err, errlen, "log.dirs: only one data directory is supported");
        return -1;
    }
    if (strlen(dirs) >= sizeof c->log_dir - 300) {
        snprintf(err, errlen, "log.dirs: path too long");
        return -1;
    }
    snprintf(c->log_dir, sizeof c->log_dir, "%s", dirs);
    c->num_partitions = (int32_t)long_of(c, "num.partitions");
    c->auto_create_topics = !strcmp(value_of(c, "auto.create.topics.enable"), "true");
    c->socket_request_max_bytes = (int32_t)long_of(c, "socket.request.max.bytes");
    c->num_network_threads = (int32_t)long_of(c, "num.network.threads");
    if (c->num_network_threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        c->num_network_threads = n > 0 ? (int32_t)n : 1;
    }
    c->retention_check_interval_ms = long_of(c, "log.retention.check.interval.ms");
    if (c->retention_check_interval_ms < 10)
        c->retention_check_interval_ms = 10;
    c->replica_lag_time_max_ms = long_of(c, "replica.lag.time.max.ms");
    if (c->replica_lag_time_max_ms < 10)
        c->replica_lag_time_max_ms = 10;
    c->replica_hw_checkpoint_interval_ms =
        long_of(c, "replica.high.watermark.checkpoint.interval.ms");
    if (c->replica_hw_checkpoint_interval_ms < 10)
        c->replica_hw_checkpoint_interval_ms = 10;
    c->node_id = (int32_t)long_of(c, "node.id");
    if (*value_of(c, "zookeeper.connect")) {
        /* Kafka would take an id from /brokers/seqid; Runnel asks for one,
         * since the id names the broker's znode and its replicas. */
        if (c->sources[find_broker_key("node.id")] == CFG_SRC_DEFAULT) {
            snprintf(err, errlen,
                     "node.id (broker.id) must be set when zookeeper.connect is set: each "
                     "broker of a cluster needs its own id");
            return -1;
        }
        if (c->node_id < 0) {
            snprintf(err, errlen, "node.id: must be 0 or more in a cluster");
            return -1;
        }
        if (long_of(c, "zookeeper.session.timeout.ms") <= 0) {
            snprintf(err, errlen, "zookeeper.session.timeout.ms: must be positive");
            return -1;
        }
    }
    struct config_overrides none = {0};
    return config_resolve_topic(c, &none, &c->topic_defaults, err, errlen);
}

const char *config_broker_value_for_topic_key(const struct broker_config *c,
                                              const struct config_def *d, enum config_source *src)
{
    int i = (int)(d - config_defs);
    if (src)
        *src = c->sources[i];
    return c->values[i];
}

const char *config_overrides_get(const struct config_overrides *o, const char *key)
{
    for (int i = 0; i < o->n; i++)
        if (!strcmp(o->kv[i].key, key))
            return o->kv[i].value;
    return NULL;
}

int config_resolve_topic(const struct broker_config *c, const struct config_overrides *o,
                         struct topic_settings *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    plog_config_defaults(&out->log);
    for (int i = 0; i < config_n_defs; i++) {
        const struct config_def *d = &config_defs[i];
        if (!d->topic_key)
            continue;
        const char *v = config_overrides_get(o, d->topic_key);
        if (v && check_value(d, d->topic_key, v, err, errlen))
            return -1;
        if (!v)
            v = c->values[i];
        int64_t x = 0;
        parse_long(v, &x);
        const char *k = d->topic_key;
        if (!strcmp(k, "segment.bytes"))
            out->log.segment_bytes = x;
        else if (!strcmp(k, "segment.ms"))
            out->log.segment_ms = x;
        else if (!strcmp(k, "retention.ms"))
            out->log.retention_ms = x;
        else if (!strcmp(k, "retention.bytes"))
            out->log.retention_bytes = x;
        else if (!strcmp(k, "flush.messages"))
            out->log.flush_messages = x;
        else if (!strcmp(k, "flush.ms"))
            out->log.flush_ms = x;
        else if (!strcmp(k, "flush.sync"))
            out->flush_sync = !strcmp(v, "true");
        else if (!strcmp(k, "index.interval.bytes"))
            out->log.index_interval_bytes = (int32_t)x;
        else if (!strcmp(k, "segment.index.bytes"))
            out->log.segment_index_bytes = (int32_t)x;
        else if (!strcmp(k, "message.timestamp.type"))
            out->log.log_append_time = !strcmp(v, "LogAppendTime");
        else if (!strcmp(k, "max.message.bytes"))
            out->log.max_message_bytes = (int32_t)x;
        else if (!strcmp(k, "cleanup.policy")) {
            out->compact = strstr(v, "compact") != NULL;
            out->delete_policy = strstr(v, "delete") != NULL;
        } else if (!strcmp(k, "delete.retention.ms"))
            out->log.delete_retention_ms = x;
        else if (!strcmp(k, "min.compaction.lag.ms"))
            out->log.min_compaction_lag_ms = x;
        else if (!strcmp(k, "min.cleanable.dirty.ratio"))
            out->log.min_cleanable_dirty_ratio = strtod(v, NULL);
        else if (!strcmp(k, "min.insync.replicas"))
            out->min_insync_replicas = (int32_t)x;
        else if (!strcmp(k, "message.type"))
            out->message_type = (uint8_t)config_parse_message_type(v);
        else if (!strcmp(k, "retry.max.attempts"))
            out->retry_max_attempts = (int32_t)x;
        else if (!strcmp(k, "retry.backoff.schedule"))
            out->retry_backoff_n =
                config_parse_durations(v, out->retry_backoff_ms, CONFIG_MAX_STEPS);
        else if (!strcmp(k, "key.index"))
            out->key_index = !strcmp(v, "true");
    }
    out->log.compact = out->compact;
    /* compact alone keeps every key's last record forever: no time or
     * size retention (compact,delete applies both). */
    if (out->compact && !out->delete_policy) {
        out->log.retention_ms = -1;
        out->log.retention_bytes = -1;
    }
    return 0;
}

int config_overrides_set(struct config_overrides *o, const char *key, const char *value)
{
    for (int i = 0; i < o->n; i++)
        if (!strcmp(o->kv[i].key, key)) {
            char *v = strdup(value);
            if (!v)
                return -1;
            free(o->kv[i].value);
            o->kv[i].value = v;
            return 0;
        }
    struct config_kv *kv = realloc(o->kv, (size_t)(o->n + 1) * sizeof *kv);
    if (!kv)
        return -1;
    o->kv = kv;
    kv[o->n].key = strdup(key);
    kv[o->n].value = strdup(value);
    if (!kv[o->n].key || !kv[o->n].value) {
        free(kv[o->n].key);
        free(kv[o->n].value);
        return -1;
    }
    o->n++;
    return 0;
}

void config_overrides_unset(struct config_overrides *o, const char *key)
{
    for (int i = 0; i < o->n; i++)
        if (!strcmp(o->kv[i].key, key)) {
            free(o->kv[i].key);
            free(o->kv[i].value);
            o->kv[i] = o->kv[--o->n];
            return;
        }
}

void config_overrides_free(struct config_overrides *o)
{
    for (int i = 0; i < o->n; i++) {
        free(o->kv[i].key);
        free(o->kv[i].value);
    }
    free(o->kv);
    o->kv = NULL;
    o->n = 0;
}

int config_overrides_copy(struct config_overrides *dst, const struct config_overrides *src)
{
    memset(dst, 0, sizeof *dst);
    for (int i = 0; i < src->n; i++)
        if (config_overrides_set(dst, src->kv[i].key, src->kv[i].value)) {
            config_overrides_free(dst);
            return -1;
        }
    return 0;
}
