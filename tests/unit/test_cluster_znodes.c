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

int main(void)
{
    test_connect();
    test_broker_json();
    test_controller_and_ids();
    return tap_done();
}
