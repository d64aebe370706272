/*
 * delivery/headers and broker/system_topics: reading the runnel-*
 * control headers of a record, rewriting header sections (what retries
 * and dead letters carry), and the broker's own topic names.
 */
#include <stdlib.h>
#include <string.h>

#include "delivery/headers.h"
#include "broker/system_topics.h"
#include "storage/plog.h"
#include "tap.h"

/* One record with the given headers, read back through the iterator so
 * the test sees exactly what intake.c sees. */
struct one {
    uint8_t *batch;
    struct batch_records rs;
    struct batch_record rec;
};

static void one_make(struct one *o, const struct batch_header_kv *h, int n)
{
    struct batch_builder b;
    batch_builder_init(&b, 0, 1000);
    batch_builder_add(&b, 1000, "k", 1, "v", 1, h, n);
    size_t len;
    CHECK_EQ_INT(batch_builder_finish(&b, &o->batch, &len), 0);
    batch_builder_free(&b);
    struct batch_hdr hdr;
    CHECK_EQ_INT(batch_parse_header(o->batch, len, INT32_MAX, &hdr), PLOG_OK);
    CHECK_EQ_INT(batch_records_begin(o->batch, &hdr, &o->rs), 0);
    CHECK_EQ_INT(batch_records_next(&o->rs, &o->rec), 1);
}

static void one_free(struct one *o)
{
    batch_records_end(&o->rs);
    free(o->batch);
}

#define KV(k, v)                                                                                   \
    {                                                                                              \
        (const uint8_t *)(k), (int32_t)strlen(k), (const uint8_t *)(v), (int32_t)strlen(v)         \
    }

static void test_read(void)
{
    struct batch_header_kv h[] = {
        KV("app", "x"),
        KV(HDR_DELAY_MS, "1500"),
        KV(HDR_TXN, "half"),
        KV(HDR_TXN_ID, "t-1"),
        {(const uint8_t *)HDR_PRODUCER_GROUP, (int32_t)strlen(HDR_PRODUCER_GROUP), NULL, -1},
        KV("runnel-unknown", "ignored"),
    };
    struct one o;
    one_make(&o, h, 6);
    struct ctl_headers c;
    CHECK_EQ_INT(ctl_headers_read(&o.rec, &c), 0);
    CHECK_EQ_INT(c.delay_headers, 1);
    int64_t v = -1;
    CHECK_EQ_INT(ctl_decimal(&c.delay_ms, &v), 0);
    CHECK_EQ_INT(v, 1500);
    CHECK(ctl_is(&c.txn, "half"));
    CHECK(!ctl_is(&c.txn, "hal"));
    CHECK(ctl_is(&c.txn_id, "t-1"));
    CHECK(c.producer_group.present);
    CHECK(c.producer_group.v == NULL);
    CHECK_EQ_INT(c.producer_group.len, -1);
    CHECK(!c.retry_count.present);
    CHECK(!c.deliver_at_ms.present);
    one_free(&o);

    /* Two delay keys, even the same one twice, are counted. */
    struct batch_header_kv two[] = {KV(HDR_DELAY_LEVEL, "3"), KV(HDR_DELAY_LEVEL, "4")};
    one_make(&o, two, 2);
    CHECK_EQ_INT(ctl_headers_read(&o.rec, &c), 0);
    CHECK_EQ_INT(c.delay_headers, 2);
    one_free(&o);
}

static void test_decimal(void)
{
    static const struct {
        const char *s;
        int ok;
        int64_t v;
    } cases[] = {
        {"0", 1, 0},
        {"42", 1, 42},
        {"999999999999999999", 1, 999999999999999999LL},
        {"1000000000000000000", 0, 0},
        {"-1", 0, 0},
        {"+1", 0, 0},
        {"1.5", 0, 0},
        {" 1", 0, 0},
        {"", 0, 0},
        {"1e3", 0, 0},
        {"0x10", 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct ctl_value cv = {true, (const uint8_t *)cases[i].s, (int32_t)strlen(cases[i].s)};
        int64_t v = -7;
        int rc = ctl_decimal(&cv, &v);
        CHECK_EQ_INT(rc, cases[i].ok ? 0 : -1);
        if (cases[i].ok)
            CHECK_EQ_INT(v, cases[i].v);
    }
    struct ctl_value null = {true, NULL, -1}, absent = {0};
    int64_t v;
    CHECK_EQ_INT(ctl_decimal(&null, &v), -1);
    CHECK_EQ_INT(ctl_decimal(&absent, &v), -1);
}

static void test_rewrite(void)
{
    struct batch_header_kv h[] = {
        KV("a", "1"),
        KV(HDR_RETRY_COUNT, "2"),
        KV("b", ""),
        KV(HDR_REDRIVE, "1"),
    };
    struct one o;
    one_make(&o, h, 4);
    static const char *const drop[] = {HDR_RETRY_COUNT, HDR_REDRIVE, NULL};
    struct hdr_builder hb = {0};
    hdr_builder_copy(&hb, o.rec.headers, o.rec.headers_end, drop);
    hdr_builder_add_i64(&hb, HDR_RETRY_COUNT, 3);
    hdr_builder_add(&hb, "n", NULL, -1);
    CHECK(!hb.w.err);
    CHECK_EQ_INT(hb.count, 4);
    /* Read the new section back: a, b, retry-count 3, n (null). */
    const uint8_t *pos = hb.w.buf, *end = hb.w.buf + hb.w.len;
    struct batch_header_kv kv;
    const char *want_k[] = {"a", "b", HDR_RETRY_COUNT, "n"};
    const char *want_v[] = {"1", "", "3", NULL};
    for (int i = 0; i < 4; i++) {
        CHECK_EQ_INT(batch_record_header(&pos, end, &kv), 1);
        CHECK(kv.key_len == (int32_t)strlen(want_k[i]) &&
              !memcmp(kv.key, want_k[i], (size_t)kv.key_len));
        if (want_v[i])
            CHECK(kv.value_len == (int32_t)strlen(want_v[i]) &&
                  !memcmp(kv.value, want_v[i], (size_t)kv.value_len));
        else
            CHECK(kv.value == NULL && kv.value_len == -1);
    }
    CHECK_EQ_INT(batch_record_header(&pos, end, &kv), 0);
    hdr_builder_free(&hb);
    one_free(&o);
}

static void test_system_topics(void)
{
    const char *g;
    size_t gl;
    CHECK_EQ_INT(systopic_kind("orders", 6, &g, &gl), SYSTOPIC_NONE);
    CHECK_EQ_INT(systopic_kind("__runnel.retry.billing", 22, &g, &gl), SYSTOPIC_RETRY);
    CHECK(gl == 7 && !memcmp(g, "billing", 7));
    CHECK_EQ_INT(systopic_kind("__runnel.dlq.b", 14, NULL, NULL), SYSTOPIC_DLQ);
    CHECK_EQ_INT(systopic_kind("__runnel.check.pg", 17, NULL, NULL), SYSTOPIC_CHECK);
    CHECK_EQ_INT(systopic_kind("__runnel.retry.", 15, NULL, NULL), SYSTOPIC_RESERVED);
    CHECK_EQ_INT(systopic_kind("__runnel.other", 14, NULL, NULL), SYSTOPIC_RESERVED);
    CHECK_EQ_INT(systopic_kind("__runnel", 8, NULL, NULL), SYSTOPIC_NONE);
    char name[512];
    CHECK_EQ_INT(systopic_name(SYSTOPIC_DLQ, "g1", 2, name, sizeof name), 15);
    CHECK(!strcmp(name, "__runnel.dlq.g1"));
    CHECK_EQ_INT(systopic_name(SYSTOPIC_RETRY, "bad group", 9, name, sizeof name), -1);
    CHECK_EQ_INT(systopic_name(SYSTOPIC_RETRY, "", 0, name, sizeof name), -1);
    char longg[260];
    memset(longg, 'g', sizeof longg);
    CHECK_EQ_INT(systopic_name(SYSTOPIC_CHECK, longg, 240, name, sizeof name), -1);
    CHECK_EQ_INT(systopic_name(SYSTOPIC_CHECK, longg, 234, name, sizeof name), 249);
}

int main(void)
{
    test_read();
    test_decimal();
    test_rewrite();
    test_system_topics();
    return tap_done();
}
