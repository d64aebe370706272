/* Settings: defaults, file and --set precedence, aliases, topic overrides. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/config.h"
#include "tap.h"

static const char *value(struct broker_config *c, const char *key)
{
    for (int i = 0; i < config_n_defs; i++)
        if (config_defs[i].broker_key && !strcmp(config_defs[i].broker_key, key))
            return c->values[i];
    return NULL;
}

int main(void)
{
    char err[256];
    struct broker_config c;
    CHECK(config_init(&c) == 0);
    CHECK(config_finish(&c, err, sizeof err) == 0);
    CHECK(!strcmp(c.listen_host, "127.0.0.1"));
    CHECK_EQ_INT(c.listen_port, 9092);
    CHECK_EQ_INT(c.num_partitions, 1);
    CHECK(c.auto_create_topics);
    CHECK_EQ_INT(c.topic_defaults.log.segment_bytes, 1073741824);
    CHECK_EQ_INT(c.topic_defaults.log.retention_ms, 604800000);
    CHECK(!c.topic_defaults.flush_sync);

    /* A file, then --set on top. */
    char path[] = "/tmp/runnel-test-config-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    const char *text = "# comment\n"
                       "listeners=PLAINTEXT://0.0.0.0:19092\n"
                       "num.partitions = 3\n"
                       "log.retention.hours=2\n"
                       "log.flush.sync=true\n";
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    CHECK(config_load_file(&c, path, err, sizeof err) == 0);
    CHECK(config_set(&c, "num.partitions", "5", err, sizeof err) == 0);
    CHECK(config_finish(&c, err, sizeof err) == 0);
    CHECK_EQ_INT(c.listen_port, 19092);
    CHECK(!strcmp(c.advertised_host, "127.0.0.1")); /* 0.0.0.0 is not dialable */
    CHECK_EQ_INT(c.num_partitions, 5);
    CHECK_EQ_INT(c.topic_defaults.log.retention_ms, 7200000);
    CHECK(!strcmp(value(&c, "log.retention.ms"), "7200000"));
    CHECK(c.topic_defaults.flush_sync);
    unlink(path);

    /* Bad input is refused with a message naming the key. */
    CHECK(config_set(&c, "no.such.key", "1", err, sizeof err) == -1);
    CHECK(strstr(err, "no.such.key") != NULL);
    CHECK(config_set(&c, "num.partitions", "many", err, sizeof err) == -1);
    CHECK(config_set(&c, "num.partitions", "0", err, sizeof err) == -1);
    CHECK(config_set(&c, "auto.create.topics.enable", "yes", err, sizeof err) == -1);
    CHECK(config_set(&c, "log.segment.bytes", "10", err, sizeof err) == -1);
    CHECK(config_load_file(&c, "/nonexistent/runnel.properties", err, sizeof err) == -1);
    CHECK(config_set(&c, "listeners", "SSL://h:1", err, sizeof err) == 0);
    CHECK(config_finish(&c, err, sizeof err) == -1);
    CHECK(config_set(&c, "listeners", "PLAINTEXT://h:99999", err, sizeof err) == 0);
    CHECK(config_finish(&c, err, sizeof err) == -1);
    CHECK(config_set(&c, "listeners", "PLAINTEXT://[::1]:9093", err, sizeof err) == 0);
    CHECK(config_finish(&c, err, sizeof err) == 0);
    CHECK(!strcmp(c.listen_host, "::1"));
    CHECK_EQ_INT(c.listen_port, 9093);

    /* Topic overrides resolve on top of the broker's values. */
    struct config_overrides o = {0};
    CHECK(config_overrides_set(&o, "retention.ms", "1000") == 0);
    CHECK(config_overrides_set(&o, "segment.bytes", "4096") == 0);
    CHECK(config_overrides_set(&o, "message.timestamp.type", "LogAppendTime") == 0);
    struct topic_settings ts;
    CHECK(config_resolve_topic(&c, &o, &ts, err, sizeof err) == 0);
    CHECK_EQ_INT(ts.log.retention_ms, 1000);
    CHECK_EQ_INT(ts.log.segment_bytes, 4096);
    CHECK(ts.log.log_append_time);
    CHECK(ts.flush_sync); /* from the broker's log.flush.sync */
    CHECK(!strcmp(config_overrides_get(&o, "retention.ms"), "1000"));
    config_overrides_unset(&o, "retention.ms");
    CHECK(config_overrides_get(&o, "retention.ms") == NULL);
    CHECK(config_validate_topic("retention.ms", "x", err, sizeof err) == -1);
    CHECK(config_validate_topic("bogus.key", "1", err, sizeof err) == -1);
    CHECK(config_validate_topic("cleanup.policy", "compact,delete", err, sizeof err) == 0);
    CHECK(config_validate_topic("cleanup.policy", "shred", err, sizeof err) == -1);
    CHECK(config_validate_topic("compression.type", "gzip", err, sizeof err) == -1);
    CHECK(config_find_topic_key("segment.bytes") != NULL);
    CHECK(config_find_topic_key("log.segment.bytes") == NULL);
    config_overrides_free(&o);
    config_free(&c);

    /* Cluster mode: Kafka's defaults; node.id must be given. */
    CHECK(config_init(&c) == 0);
    CHECK_EQ_INT(config_long(&c, "zookeeper.session.timeout.ms"), 18000);
    CHECK(!strcmp(config_string(&c, "zookeeper.connect"), ""));
    CHECK(!strcmp(config_string(&c, "broker.rack"), ""));
    CHECK(config_set(&c, "zookeeper.connect", "127.0.0.1:2181/runnel", err, sizeof err) == 0);
    CHECK(config_finish(&c, err, sizeof err) == -1);
    CHECK(strstr(err, "node.id") != NULL);
    CHECK(config_set(&c, "broker.id", "3", err, sizeof err) == 0);
    CHECK(config_finish(&c, err, sizeof err) == 0);
    CHECK_EQ_INT(c.node_id, 3);
    CHECK(config_set(&c, "zookeeper.connection.timeout.ms", "soon", err, sizeof err) == -1);
    config_free(&c);
    return tap_done();
}
