/*
 * Broadcast groups: the assignment built from a member's JoinGroup
 * metadata (a ConsumerProtocolSubscription from the network), for every
 * version, for bad metadata, and against real topics in a registry.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/config.h"
#include "broker/topics.h"
#include "group/group_int.h"
#include "tap.h"

struct b {
    uint8_t p[512];
    size_t n;
};

static void put16(struct b *b, int v)
{
    b->p[b->n++] = (uint8_t)(v >> 8);
    b->p[b->n++] = (uint8_t)v;
}

static void put32(struct b *b, int32_t v)
{
    for (int s = 24; s >= 0; s -= 8)
        b->p[b->n++] = (uint8_t)((uint32_t)v >> s);
}

static void putstr(struct b *b, const char *s)
{
    put16(b, (int)strlen(s));
    memcpy(b->p + b->n, s, strlen(s));
    b->n += strlen(s);
}

/* A subscription of the given version to topics (NULL-terminated). */
static struct b subscription(int version, const char *const *topics)
{
    struct b b = {.n = 0};
    put16(&b, version);
    int n = 0;
    while (topics[n])
        n++;
    put32(&b, n);
    for (int i = 0; i < n; i++)
        putstr(&b, topics[i]);
    put32(&b, -1); /* user data */
    if (version >= 1)
        put32(&b, 0); /* owned partitions */
    if (version >= 2)
        put32(&b, 7); /* generation */
    if (version >= 3)
        putstr(&b, "rack"); /* rack */
    return b;
}

/* broadcast_prepare() on one protocol with this metadata. */
static struct bcast_prep *prepare(const char *protocol_type, const uint8_t *md, int32_t len)
{
    struct group_protocol proto = {.name = kstr_c("range"), .metadata = {md, len}};
    struct group_join_args a = {
        .protocol_type = kstr_c(protocol_type), .protocols = &proto, .protocols_count = 1};
    return broadcast_prepare(&a);
}

/* Expected assignment: version, then (topic, partition count) pairs. */
static struct b assignment(int version, const char *t1, int n1, const char *t2, int n2)
{
    struct b b = {.n = 0};
    put16(&b, version);
    put32(&b, (t1 != NULL) + (t2 != NULL));
    const char *ts[2] = {t1, t2};
    int ns[2] = {n1, n2};
    for (int i = 0; i < 2; i++) {
        if (!ts[i])
            continue;
        putstr(&b, ts[i]);
        put32(&b, ns[i]);
        for (int p = 0; p < ns[i]; p++)
            put32(&b, p);
    }
    put32(&b, 0); /* empty user data */
    return b;
}

static int same(const struct bcast_prep *bp, const struct b *want)
{
    return bp && bp->ok && bp->len == (int32_t)want->n && !memcmp(bp->p, want->p, want->n);
}

int main(void)
{
    char err[256], dir[] = "/tmp/runnel-test-broadcast-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    struct broker_config cfg;
    CHECK(config_init(&cfg) == 0);
    CHECK(config_set(&cfg, "log.dirs", dir, err, sizeof err) == 0);
    CHECK(config_finish(&cfg, err, sizeof err) == 0);
    CHECK(topics_open(&cfg, false, err, sizeof err) == 0);
    struct config_overrides none = {0};
    CHECK(topics_create("orders", 6, 3, &none, false, NULL, err, sizeof err) == 0);
    CHECK(topics_create("audit", 5, 1, &none, false, NULL, err, sizeof err) == 0);

    /* Every version: every partition of each existing topic, in the
     * subscription's order, once; a missing topic is left out. */
    const char *const topics[] = {"orders", "missing", "audit", "orders", NULL};
    for (int v = 0; v <= 3; v++) {
        struct b sub = subscription(v, topics);
        struct bcast_prep *bp = prepare("consumer", sub.p, (int32_t)sub.n);
        struct b want = assignment(v, "orders", 3, "audit", 1);
        CHECK(same(bp, &want));
        broadcast_prep_free(bp, 1);
    }
    /* A later version is read as far as version 3 knows it and answered
     * in version 3, as Kafka's ConsumerProtocol does. */
    struct b sub = subscription(3, topics);
    sub.p[1] = 9;
    struct bcast_prep *bp = prepare("consumer", sub.p, (int32_t)sub.n);
    struct b want = assignment(3, "orders", 3, "audit", 1);
    CHECK(same(bp, &want));
    broadcast_prep_free(bp, 1);
    /* No topics at all: an empty assignment. */
    const char *const no_topics[] = {NULL};
    sub = subscription(0, no_topics);
    bp = prepare("consumer", sub.p, (int32_t)sub.n);
    want = assignment(0, NULL, 0, NULL, 0);
    CHECK(same(bp, &want));
    broadcast_prep_free(bp, 1);

    /* Not a consumer protocol: nothing to build. */
    sub = subscription(0, topics);
    CHECK(prepare("connect", sub.p, (int32_t)sub.n) == NULL);

    /* Bad metadata is refused (ok=false), never read past its end. */
    const int cuts[] = {0, 1, 2, 5, 7, 8, 15};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        uint8_t *cut = malloc((size_t)cuts[i] + 1); /* ASan sees a read past cuts[i] */
        memcpy(cut, sub.p, (size_t)cuts[i]);
        bp = prepare("consumer", cut, cuts[i]);
        CHECK(bp && !bp->ok && !bp->p);
        broadcast_prep_free(bp, 1);
        free(cut);
    }
    struct b bad = sub;
    bad.p[0] = 0xff; /* negative version */
    bp = prepare("consumer", bad.p, (int32_t)bad.n);
    CHECK(bp && !bp->ok);
    broadcast_prep_free(bp, 1);
    bad = sub;
    bad.p[2] = 0x7f; /* a topic count far beyond the bytes */
    bp = prepare("consumer", bad.p, (int32_t)bad.n);
    CHECK(bp && !bp->ok);
    broadcast_prep_free(bp, 1);
    bad = sub;
    bad.p[6] = 0xff; /* a negative topic name length */
    bad.p[7] = 0xff;
    bp = prepare("consumer", bad.p, (int32_t)bad.n);
    CHECK(bp && !bp->ok);
    broadcast_prep_free(bp, 1);
    bad = sub;
    bad.p[7] = 0; /* an empty topic name */
    bp = prepare("consumer", bad.p, (int32_t)bad.n);
    CHECK(bp && !bp->ok);
    broadcast_prep_free(bp, 1);

    topics_close(false);
    config_free(&cfg);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return tap_done();
}
