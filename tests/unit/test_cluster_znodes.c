/* Cluster mode's parsers: zookeeper.connect with a chroot, and the
 * znode JSON Kafka reads and writes (cluster/zk.c, cluster/znodes.c). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/zk.h"
#include "cluster/znodes.h"
#include "tap.h"

static int parse(const char *s, char *hosts, char *chroot)
{
    char err[256];
    return zk_parse_connect(s, hosts, 256, chroot, 256, err, sizeof err);
}

static void test_connect(void)
{
    char h[256], c[256];
    CHECK(parse("127.0.0.1:2181", h, c) == 0);
    CHECK(!strcmp(h, "127.0.0.1:2181") && !strcmp(c, ""));
    CHECK(parse("a:1,b:2,c:3/kafka", h, c) == 0);
    CHECK(!strcmp(h, "a:1,b:2,c:3") && !strcmp(c, "/kafka"));
    CHECK(parse("zk:2181/a/b-c/d_e", h, c) == 0);
    CHECK(!strcmp(h, "zk:2181") && !strcmp(c, "/a/b-c/d_e"));
    CHECK(parse("zk:2181/", h, c) == 0); /* "/" is the root: no chroot */
    CHECK(!strcmp(c, ""));

    CHECK(parse("", h, c) < 0);
    CHECK(parse("/chroot", h, c) < 0);
    CHECK(parse("zk", h, c) < 0);
    CHECK(parse("zk:", h, c) < 0);
    CHECK(parse(":2181", h, c) < 0);
    CHECK(parse("zk:21x81", h, c) < 0);
    CHECK(parse("a:1,,b:2", h, c) < 0);
    CHECK(parse("a:1,", h, c) < 0);
    CHECK(parse("zk:2181/a/", h, c) < 0);
    CHECK(parse("zk:2181/a//b", h, c) < 0);
    CHECK(parse("zk:2181/a/./b", h, c) < 0);
    CHECK(parse("zk:2181/a/..", h, c) < 0);

    char err[256], small[8];
    CHECK(zk_parse_connect("longhostname:2181", small, sizeof small, c, 256, err, sizeof err) < 0);
    CHECK(strstr(err, "too long") != NULL);
}

static void test_broker_json(void)
{
    char *s = znode_broker_encode("10.0.0.5", 9092, "", 1700000000123LL);
    CHECK(s != NULL);
    /* Kafka's v5 registration, key for key, without "rack" when none. */
    CHECK(!strcmp(s, "{\"features\":{},\"listener_security_protocol_map\":{\"PLAINTEXT\":"
                     "\"PLAINTEXT\"},\"endpoints\":[\"PLAINTEXT://10.0.0.5:9092\"],"
                     "\"jmx_port\":-1,\"port\":9092,\"host\":\"10.0.0.5\",\"version\":5,"
                     "\"timestamp\":\"1700000000123\"}"));
    struct cluster_broker b;
    CHECK(znode_broker_decode(s, strlen(s), &b) == 0);
    CHECK(!strcmp(b.host, "10.0.0.5") && b.port == 9092 && b.rack[0] == 0);
    free(s);

    s = znode_broker_encode("h", 1, "rack \"1\"", 5);
    json_t *j = json_loads(s, 0, NULL);
    CHECK(j && !strcmp(json_string_value(json_object_get(j, "rack")), "rack \"1\""));
    json_decref(j);
    CHECK(znode_broker_decode(s, strlen(s), &b) == 0);
    CHECK(!strcmp(b.rack, "rack \"1\""));
    free(s);

    s = znode_broker_encode("::1", 9092, NULL, 5);
    CHECK(strstr(s, "\"PLAINTEXT://[::1]:9092\"") != NULL);
    CHECK(znode_broker_decode(s, strlen(s), &b) == 0);
    CHECK(!strcmp(b.host, "::1") && b.port == 9092);
    free(s);

    /* What a Kafka broker writes: several listeners, the PLAINTEXT one
     * counts; an older version with only host and port. */
    const char *kafka = "{\"listener_security_protocol_map\":{\"SSL\":\"SSL\",\"PLAINTEXT\":"
                        "\"PLAINTEXT\"},\"endpoints\":[\"SSL://k1:9093\",\"PLAINTEXT://k1:9092\"],"
                        "\"rack\":\"dc1\",\"jmx_port\":-1,\"host\":\"k1\",\"timestamp\":\"1\","
                        "\"port\":9092,\"version\":4}";
    CHECK(znode_broker_decode(kafka, strlen(kafka), &b) == 0);
    CHECK(!strcmp(b.host, "k1") && b.port == 9092 && !strcmp(b.rack, "dc1"));
    const char *v1 = "{\"version\":1,\"host\":\"old\",\"port\":9091,\"jmx_port\":9999}";
    CHECK(znode_broker_decode(v1, strlen(v1), &b) == 0);
    CHECK(!strcmp(b.host, "old") && b.port == 9091);
    const char *nulls = "{\"version\":5,\"host\":null,\"port\":-1,\"endpoints\":[],\"rack\":null}";
    CHECK(znode_broker_decode(nulls, strlen(nulls), &b) < 0);
    CHECK(znode_broker_decode("[1]", 3, &b) < 0);
    CHECK(znode_broker_decode("{", 1, &b) < 0);
    const char *badport = "{\"endpoints\":[\"PLAINTEXT://h:99999\"]}";
    CHECK(znode_broker_decode(badport, strlen(badport), &b) < 0);
}

static void test_controller_and_ids(void)
{
    char *s = znode_controller_encode(3, 1700000000000LL);
    CHECK(!strcmp(s, "{\"version\":1,\"brokerid\":3,\"timestamp\":\"1700000000000\"}"));
    int32_t id = -7;
    CHECK(znode_controller_decode(s, strlen(s), &id) == 0 && id == 3);
    free(s);
    CHECK(znode_controller_decode("{\"version\":1}", 13, &id) < 0);
    CHECK(znode_controller_decode("{\"brokerid\":\"3\"}", 16, &id) < 0);

    s = znode_cluster_id_encode("AbC-123_xyz");
    CHECK(!strcmp(s, "{\"version\":\"1\",\"id\":\"AbC-123_xyz\"}"));
    char cid[64];
    CHECK(znode_cluster_id_decode(s, strlen(s), cid, sizeof cid) == 0 &&
          !strcmp(cid, "AbC-123_xyz"));
    CHECK(znode_cluster_id_decode(s, strlen(s), cid, 5) < 0); /* does not fit */
    free(s);
    CHECK(znode_cluster_id_decode("{\"id\":\"\"}", 9, cid, sizeof cid) < 0);

    int32_t e = -1;
    CHECK(znode_epoch_decode("0", 1, &e) == 0 && e == 0);
    CHECK(znode_epoch_decode("42", 2, &e) == 0 && e == 42);
    CHECK(znode_epoch_decode("", 0, &e) < 0);
    CHECK(znode_epoch_decode("4x", 2, &e) < 0);
    CHECK(znode_epoch_decode("-1", 2, &e) < 0);
    CHECK(znode_epoch_decode("99999999999", 11, &e) < 0);
}

static void test_topic_and_state_json(void)
{
    /* Kafka's Uuid.toString of 00 01 .. 0f, and back. */
    uint8_t id[16], back[16];
    for (int i = 0; i < 16; i++)
        id[i] = (uint8_t)i;
    char u[23];
    znode_uuid_encode(id, u);
    CHECK(!strcmp(u, "AAECAwQFBgcICQoLDA0ODw"));
    CHECK(znode_uuid_decode(u, back) == 0 && !memcmp(id, back, 16));
    CHECK(znode_uuid_decode("short", back) < 0);

    int32_t rf[2] = {3, 2};
    int32_t reps[2 * CLUSTER_MAX_RF] = {1, 2, 3};
    reps[CLUSTER_MAX_RF] = 2;
    reps[CLUSTER_MAX_RF + 1] = 3;
    struct znode_assignment a = {.n = 2, .rf = rf, .replicas = reps};
    char *s = znode_topic_encode(&a, id);
    CHECK(!strcmp(s, "{\"version\":3,\"partitions\":{\"0\":[1,2,3],\"1\":[2,3]},"
                     "\"adding_replicas\":{},\"removing_replicas\":{},"
                     "\"topic_id\":\"AAECAwQFBgcICQoLDA0ODw\"}"));
    struct znode_assignment d;
    int has_id;
    CHECK(znode_topic_decode(s, strlen(s), &d, back, &has_id) == 0);
    CHECK(has_id && !memcmp(back, id, 16) && d.n == 2 && d.rf[0] == 3 && d.rf[1] == 2);
    CHECK(d.replicas[2] == 3 && d.replicas[CLUSTER_MAX_RF + 1] == 3);
    znode_assignment_free(&d);
    free(s);
    /* Kafka before 2.8 wrote no topic id; a gap in the numbers is refused. */
    const char *old = "{\"version\":1,\"partitions\":{\"1\":[2],\"0\":[1]}}";
    CHECK(znode_topic_decode(old, strlen(old), &d, back, &has_id) == 0 && !has_id && d.n == 2);
    CHECK(d.replicas[CLUSTER_MAX_RF] == 2);
    znode_assignment_free(&d);
    const char *gap = "{\"version\":1,\"partitions\":{\"0\":[1],\"2\":[1]}}";
    CHECK(znode_topic_decode(gap, strlen(gap), &d, back, &has_id) < 0);

    struct znode_state st = {.leader = 2, .leader_epoch = 5, .controller_epoch = 7, .n_isr = 2};
    st.isr[0] = 2;
    st.isr[1] = 1;
    s = znode_state_encode(&st);
    CHECK(!strcmp(s, "{\"controller_epoch\":7,\"leader\":2,\"version\":1,\"leader_epoch\":5,"
                     "\"isr\":[2,1]}"));
    struct znode_state st2;
    CHECK(znode_state_decode(s, strlen(s), &st2) == 0);
    CHECK(st2.leader == 2 && st2.leader_epoch == 5 && st2.controller_epoch == 7);
    CHECK(st2.n_isr == 2 && st2.isr[0] == 2 && st2.isr[1] == 1);
    free(s);
    CHECK(znode_state_decode("{\"leader\":1}", 12, &st2) < 0);

    const char *keys[] = {"retention.ms"}, *vals[] = {"1000"};
    s = znode_config_encode(keys, vals, 1);
    CHECK(!strcmp(s, "{\"version\":1,\"config\":{\"retention.ms\":\"1000\"}}"));
    free(s);
}

int main(void)
{
    test_connect();
    test_broker_json();
    test_controller_and_ids();
    test_topic_and_state_json();
    return tap_done();
}
