/*
 * test_codec: golden byte vectors for the generated codecs and the
 * hand-written headers.  Every vector is worked out by hand from the Kafka
 * protocol guide, independently of the generator, so a generator bug that
 * the round-trip test (test_codec_gen.c) cannot see -- encoder and
 * decoder agreeing on a wrong layout -- fails here.
 */
#include <string.h>

#include "common/arena.h"
#include "common/kbuf.h"
#include "proto/gen/msgs.h"
#include "proto/header.h"
#include "tap.h"

static int same(const kw_t *w, const uint8_t *want, size_t n)
{
    if (w->len == n && (n == 0 || memcmp(w->buf, want, n) == 0))
        return 1;
    fprintf(stderr, "  got %zu bytes:", w->len);
    for (size_t i = 0; i < w->len; i++)
        fprintf(stderr, " %02x", w->buf[i]);
    fprintf(stderr, "\n");
    return 0;
}

/* Encodes msg with fn at version v and compares with the listed bytes. */
#define ENCODES_TO(fn, v, msg, ...)                                                                \
    do {                                                                                           \
        static const uint8_t want_[] = {__VA_ARGS__};                                              \
        kw_t w_;                                                                                   \
        kw_init(&w_, 0);                                                                           \
        fn(&w_, (v), (msg));                                                                       \
        CHECK(same(&w_, want_, sizeof(want_)));                                                    \
        kw_free(&w_);                                                                              \
    } while (0)

static void test_api_versions(void)
{
    arena_t a;
    arena_init(&a);
    struct api_versions_request req;
    kr_t r;

    /* v0 request: an empty body. */
    api_versions_request_init(&req);
    kw_t w;
    kw_init(&w, 0);
    api_versions_request_encode(&w, 0, &req);
    CHECK_EQ_INT(w.len, 0);
    kw_free(&w);
    kr_init(&r, NULL, 0);
    CHECK_EQ_INT(api_versions_request_decode(&r, 0, &req, &a), 0);

    /* v3 request: two compact strings and an empty tagged section. */
    api_versions_request_init(&req);
    req.client_software_name = kstr_c("a");
    req.client_software_version = kstr_c("1");
    ENCODES_TO(api_versions_request_encode, 3, &req, 0x02, 0x61, 0x02, 0x31, 0x00);

    /* Decoding skips an unknown tag (99, two bytes). */
    static const uint8_t tagged[] = {0x02, 0x61, 0x02, 0x31, 0x01, 0x63, 0x02, 0xaa, 0xbb};
    kr_init(&r, tagged, sizeof(tagged));
    CHECK_EQ_INT(api_versions_request_decode(&r, 3, &req, &a), 0);
    CHECK(kstr_eq(req.client_software_name, "a"));
    CHECK(kstr_eq(req.client_software_version, "1"));
    CHECK_EQ_INT(kr_remaining(&r), 0);

    /* The names are not nullable: a compact null (00) is malformed. */
    static const uint8_t null_name[] = {0x00, 0x02, 0x31, 0x00};
    kr_init(&r, null_name, sizeof(null_name));
    CHECK_EQ_INT(api_versions_request_decode(&r, 3, &req, &a), -1);
    CHECK_EQ_INT(r.err, KR_ERR_INVALID);

    /* A version outside 0..3 is refused. */
    kr_init(&r, tagged, sizeof(tagged));
    CHECK_EQ_INT(api_versions_request_decode(&r, 4, &req, &a), -1);

    struct api_versions_response resp;
    struct api_versions_response_api_version keys[1];
    api_versions_response_init(&resp);
    api_versions_response_api_version_init(&keys[0]);
    keys[0].api_key = 0;
    keys[0].min_version = 3;
    keys[0].max_version = 9;
    resp.api_keys = keys;
    resp.api_keys_count = 1;
    /* v0: error, classic array of (key, min, max); no throttle. */
    ENCODES_TO(api_versions_response_encode, 0, &resp, 0, 0, 0, 0, 0, 1, 0, 0, 0, 3, 0, 9);
    /* v1 adds the throttle time. */
    resp.throttle_time_ms = 7;
    ENCODES_TO(api_versions_response_encode, 1, &resp, 0, 0, 0, 0, 0, 1, 0, 0, 0, 3, 0, 9, 0, 0, 0,
               7);
    /* v3: compact array, per-element tags, top-level tags; defaults omitted. */
    ENCODES_TO(api_versions_response_encode, 3, &resp, 0, 0, 0x02, 0, 0, 0, 3, 0, 9, 0x00, 0, 0, 0,
               7, 0x00);
    /* Tagged fields set away from their defaults go out in tag order. */
    resp.zk_migration_ready = true;
    resp.finalized_features_epoch = 5;
    ENCODES_TO(api_versions_response_encode, 3, &resp, 0, 0, 0x02, 0, 0, 0, 3, 0, 9, 0x00, 0, 0, 0,
               7, 0x02, 0x01, 0x08, 0, 0, 0, 0, 0, 0, 0, 5, 0x03, 0x01, 0x01);

    /* And they decode back; absent ones keep their defaults. */
    static const uint8_t v3[] = {0, 0, 0x01, 0, 0, 0, 0, 0x01, 0x03, 0x01, 0x01};
    kr_init(&r, v3, sizeof(v3));
    CHECK_EQ_INT(api_versions_response_decode(&r, 3, &resp, &a), 0);
    CHECK(resp.zk_migration_ready == true);
    CHECK_EQ_INT(resp.finalized_features_epoch, -1);
    CHECK_EQ_INT(resp.api_keys_count, 0);
    CHECK_EQ_INT(resp.supported_features_count, 0);
    arena_free(&a);
}

static void test_metadata(void)
{
    arena_t a;
    arena_init(&a);
    kr_t r;
    struct metadata_request req;
    struct metadata_request_metadata_request_topic t;
    metadata_request_init(&req);
    metadata_request_metadata_request_topic_init(&t);
    t.name = kstr_c("t");
    req.topics = &t;
    req.topics_count = 1;
    ENCODES_TO(metadata_request_encode, 0, &req, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x74);

    /* v4 adds allow_auto_topic_creation, default true. */
    ENCODES_TO(metadata_request_encode, 4, &req, 0, 0, 0, 1, 0, 1, 0x74, 0x01);

    /* Null topics (all topics) exist from v1; v0 gets an empty array. */
    req.topics_count = -1;
    ENCODES_TO(metadata_request_encode, 1, &req, 0xff, 0xff, 0xff, 0xff);
    ENCODES_TO(metadata_request_encode, 0, &req, 0, 0, 0, 0);

    static const uint8_t null_topics[] = {0xff, 0xff, 0xff, 0xff};
    kr_init(&r, null_topics, sizeof(null_topics));
    CHECK_EQ_INT(metadata_request_decode(&r, 1, &req, &a), 0);
    CHECK_EQ_INT(req.topics_count, -1);
    kr_init(&r, null_topics, sizeof(null_topics));
    CHECK_EQ_INT(metadata_request_decode(&r, 0, &req, &a), -1);
    CHECK_EQ_INT(r.err, KR_ERR_INVALID);

    /* A topic name is never null in v0..v9. */
    static const uint8_t null_name[] = {0, 0, 0, 1, 0xff, 0xff};
    kr_init(&r, null_name, sizeof(null_name));
    CHECK_EQ_INT(metadata_request_decode(&r, 0, &req, &a), -1);
    CHECK_EQ_INT(r.err, KR_ERR_INVALID);

    /* A count of a million topics in a 6-byte frame is refused up front. */
    static const uint8_t huge[] = {0x00, 0x0f, 0x42, 0x40, 0x00, 0x01};
    kr_init(&r, huge, sizeof(huge));
    CHECK_EQ_INT(metadata_request_decode(&r, 0, &req, &a), -1);
    CHECK_EQ_INT(r.err, KR_ERR_INVALID);

    /* Decoding a v0 request fills later fields with their defaults. */
    static const uint8_t v0[] = {0, 0, 0, 1, 0, 1, 0x74};
    kr_init(&r, v0, sizeof(v0));
    CHECK_EQ_INT(metadata_request_decode(&r, 0, &req, &a), 0);
    CHECK_EQ_INT(req.topics_count, 1);
    CHECK(kstr_eq(req.topics[0].name, "t"));
    CHECK(req.allow_auto_topic_creation == true);
    arena_free(&a);
}

static void test_produce(void)
{
    arena_t a;
    arena_init(&a);
    kr_t r;
    struct produce_request req;
    struct produce_request_topic_produce_data td;
    struct produce_request_partition_produce_data pd;
    produce_request_init(&req);
    produce_request_topic_produce_data_init(&td);
    produce_request_partition_produce_data_init(&pd);
    CHECK_EQ_INT(req.transactional_id.len, -1); /* default "null" */
    CHECK_EQ_INT(pd.records.fd, -1);
    req.acks = -1;
    req.timeout_ms = 1000;
    td.name = kstr_c("t");
    td.partition_data = &pd;
    td.partition_data_count = 1;
    pd.index = 0;
    pd.records.ptr = (const uint8_t *)"abc";
    pd.records.len = 3;
    req.topic_data = &td;
    req.topic_data_count = 1;

    ENCODES_TO(produce_request_encode, 3, &req, 0xff, 0xff, 0xff, 0xff, 0, 0, 0x03, 0xe8, 0, 0, 0,
               1, 0, 1, 0x74, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 3, 0x61, 0x62, 0x63);
    ENCODES_TO(produce_request_encode, 9, &req, 0x00, 0xff, 0xff, 0, 0, 0x03, 0xe8, 0x02, 0x02,
               0x74, 0x02, 0, 0, 0, 0, 0x04, 0x61, 0x62, 0x63, 0x00, 0x00, 0x00);

    /* The records are a view into the frame after decoding. */
    static const uint8_t v9[] = {0x00, 0xff, 0xff, 0, 0,    0x03, 0xe8, 0x02, 0x02, 0x74, 0x02,
                                 0,    0,    0,    0, 0x04, 0x61, 0x62, 0x63, 0x00, 0x00, 0x00};
    kr_init(&r, v9, sizeof(v9));
    CHECK_EQ_INT(produce_request_decode(&r, 9, &req, &a), 0);
    CHECK_EQ_INT(req.acks, -1);
    CHECK_EQ_INT(req.topic_data_count, 1);
    CHECK_EQ_INT(req.topic_data[0].partition_data_count, 1);
    CHECK(req.topic_data[0].partition_data[0].records.ptr == v9 + 16);
    CHECK_EQ_INT(req.topic_data[0].partition_data[0].records.len, 3);

    /* A null topic name from a careless handler goes out as "". */
    produce_request_init(&req);
    req.acks = -1;
    req.timeout_ms = 1000;
    req.topic_data = &td;
    req.topic_data_count = 1;
    td.name = kstr_c(NULL);
    ENCODES_TO(produce_request_encode, 3, &req, 0xff, 0xff, 0xff, 0xff, 0, 0, 0x03, 0xe8, 0, 0, 0,
               1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 3, 0x61, 0x62, 0x63);
    arena_free(&a);
}

static int released;

static void release_cb(void *arg)
{
    (void)arg;
    released++;
}

static void test_fetch(void)
{
    struct fetch_response resp;
    struct fetch_response_fetchable_topic_response tr;
    struct fetch_response_partition_data pd;
    fetch_response_init(&resp);
    fetch_response_fetchable_topic_response_init(&tr);
    fetch_response_partition_data_init(&pd);
    CHECK_EQ_INT(pd.last_stable_offset, -1);
    CHECK_EQ_INT(pd.preferred_read_replica, -1);
    CHECK_EQ_INT(pd.diverging_epoch.epoch, -1);
    tr.topic = kstr_c("t");
    tr.partitions = &pd;
    tr.partitions_count = 1;
    resp.responses = &tr;
    resp.responses_count = 1;
    pd.high_watermark = 5;
    pd.last_stable_offset = 5;
    pd.log_start_offset = 0;
    pd.aborted_transactions_count = -1;
    /* Record bytes from a file: they become an external range. */
    pd.records = (krecords_t){NULL, 100, 9, 4096, release_cb, NULL};

    /* v12: everything compact; diverging_epoch (tag 0) is set. */
    pd.diverging_epoch.epoch = 2;
    pd.diverging_epoch.end_offset = 3;
    kw_t w;
    kw_init(&w, 0);
    fetch_response_encode(&w, 12, &resp);
    static const uint8_t want[] = {
        0,    0,    0,    0,                /* throttle_time_ms */
        0,    0,                            /* error_code */
        0,    0,    0,    0,                /* session_id */
        0x02,                               /* one topic */
        0x02, 0x74,                         /* "t" */
        0x02,                               /* one partition */
        0,    0,    0,    0,                /* partition_index */
        0,    0,                            /* error_code */
        0,    0,    0,    0,    0, 0, 0, 5, /* high_watermark */
        0,    0,    0,    0,    0, 0, 0, 5, /* last_stable_offset */
        0,    0,    0,    0,    0, 0, 0, 0, /* log_start_offset */
        0x00,                               /* aborted_transactions: null */
        0xff, 0xff, 0xff, 0xff,             /* preferred_read_replica */
        0x65,                               /* records: 100 bytes, then the file range */
        0x01,                               /* one tagged field */
        0x00, 0x0d,                         /* tag 0, 13 bytes */
        0,    0,    0,    2,                /* epoch */
        0,    0,    0,    0,    0, 0, 0, 3, /* end_offset */
        0x00,                               /* its own empty tagged section */
        0x00,                               /* topic tags */
        0x00,                               /* response tags */
    };
    CHECK(same(&w, want, sizeof(want)));
    CHECK_EQ_INT(w.n_ext, 1);
    CHECK_EQ_INT(w.ext[0].at, 50);
    CHECK_EQ_INT(w.ext[0].fd, 9);
    CHECK_EQ_INT(w.ext[0].off, 4096);
    CHECK_EQ_INT(kw_total(&w), (int64_t)sizeof(want) + 100);
    CHECK_EQ_INT(released, 0);
    kw_free(&w);
    CHECK_EQ_INT(released, 1);

    /* The tagged struct decodes back from a memory copy of the bytes. */
    pd.records = (krecords_t){(const uint8_t *)"rec", 3, -1, 0, NULL, NULL};
    kw_init(&w, 0);
    fetch_response_encode(&w, 12, &resp);
    arena_t a;
    arena_init(&a);
    kr_t r;
    kr_init(&r, w.buf, w.len);
    struct fetch_response d;
    CHECK_EQ_INT(fetch_response_decode(&r, 12, &d, &a), 0);
    CHECK_EQ_INT(d.responses[0].partitions[0].diverging_epoch.epoch, 2);
    CHECK_EQ_INT(d.responses[0].partitions[0].diverging_epoch.end_offset, 3);
    CHECK_EQ_INT(d.responses[0].partitions[0].current_leader.leader_id, -1);
    CHECK_EQ_INT(d.responses[0].partitions[0].aborted_transactions_count, -1);
    CHECK_EQ_INT(d.responses[0].partitions[0].records.len, 3);
    kw_free(&w);
    arena_free(&a);
}

static void test_list_offsets(void)
{
    struct list_offsets_request req;
    struct list_offsets_request_list_offsets_topic t;
    struct list_offsets_request_list_offsets_partition p;
    list_offsets_request_init(&req);
    list_offsets_request_list_offsets_topic_init(&t);
    list_offsets_request_list_offsets_partition_init(&p);
    req.replica_id = -1;
    t.name = kstr_c("t");
    t.partitions = &p;
    t.partitions_count = 1;
    p.partition_index = 0;
    p.timestamp = -2; /* earliest */
    req.topics = &t;
    req.topics_count = 1;
    /* v1: replica_id, topics[name, partitions[index, timestamp]]. */
    ENCODES_TO(list_offsets_request_encode, 1, &req, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 0, 1, 0x74,
               0, 0, 0, 1, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe);
}

static void test_headers(void)
{
    /* Request header v1: key 3, version 1, correlation 7, client "ab". */
    static const uint8_t v1[] = {0, 3, 0, 1, 0, 0, 0, 7, 0, 2, 'a', 'b', 0x99};
    struct kreq_header h;
    kr_t r;
    kr_init(&r, v1, sizeof(v1));
    CHECK_EQ_INT(kreq_header_decode(&r, &h, false), 0);
    CHECK_EQ_INT(h.api_key, 3);
    CHECK_EQ_INT(h.api_version, 1);
    CHECK_EQ_INT(h.correlation_id, 7);
    CHECK(kstr_eq(h.client_id, "ab"));
    CHECK_EQ_INT(kr_i8(&r), (int8_t)0x99); /* the body follows */

    /* v2: null client_id (still int16 -1), then a tagged section. */
    static const uint8_t v2[] = {0, 18, 0, 3, 0, 0, 0, 1, 0xff, 0xff, 0x01, 0x05, 0x01, 0xee};
    kr_init(&r, v2, sizeof(v2));
    CHECK_EQ_INT(kreq_header_decode(&r, &h, true), 0);
    CHECK_EQ_INT(h.client_id.len, -1);
    CHECK_EQ_INT(kr_remaining(&r), 0);

    kr_init(&r, v2, 9);
    CHECK_EQ_INT(kreq_header_decode(&r, &h, false), -1);

    kw_t w;
    kw_init(&w, 0);
    kresp_header_encode(&w, 0x01020304, false);
    kresp_header_encode(&w, 0x01020304, true);
    static const uint8_t want[] = {1, 2, 3, 4, 1, 2, 3, 4, 0};
    CHECK(same(&w, want, sizeof(want)));
    kw_free(&w);

    CHECK(kapi_is_flexible(PRODUCE_API_KEY, 9));
    CHECK(!kapi_is_flexible(PRODUCE_API_KEY, 8));
    CHECK(kapi_is_flexible(API_VERSIONS_API_KEY, 3));
    CHECK(!kapi_is_flexible(API_VERSIONS_API_KEY, 2));
    CHECK(kapi_is_flexible(DESCRIBE_CLUSTER_API_KEY, 0));
    CHECK(!kapi_is_flexible(OFFSET_DELETE_API_KEY, 0));
    CHECK(kapi_is_flexible(FETCH_API_KEY, 12));
    CHECK(!kapi_is_flexible(999, 0));
    CHECK(!kapi_is_flexible(-1, 0));
    CHECK_EQ_INT(PRODUCE_API_KEY, 0);
    CHECK_EQ_INT(PRODUCE_MIN_VERSION, 0); /* see docs/decisions/0006 */
    CHECK_EQ_INT(PRODUCE_MAX_VERSION, 9);
    CHECK_EQ_INT(PRODUCE_FLEXIBLE_VERSION, 9);
    CHECK_EQ_INT(METADATA_API_KEY, 3);
    CHECK_EQ_INT(FETCH_MAX_VERSION, 12);
}

/* A truncated frame fails cleanly at every cut, including inside tags. */
static void test_truncation(void)
{
    static const uint8_t full[] = {0x02, 0x61, 0x02, 0x31, 0x01, 0x63, 0x02, 0xaa, 0xbb};
    int ok = 1;
    for (size_t n = 0; n < sizeof(full); n++) {
        arena_t a;
        arena_init(&a);
        struct api_versions_request req;
        kr_t r;
        kr_init(&r, full, n);
        ok &= api_versions_request_decode(&r, 3, &req, &a) == -1 && r.err == KR_ERR_SHORT;
        arena_free(&a);
    }
    CHECK(ok);
}

int main(void)
{
    test_api_versions();
    test_metadata();
    test_produce();
    test_fetch();
    test_list_offsets();
    test_headers();
    test_truncation();
    return tap_done();
}
