/*
 * Record batches: building, validating and iterating them for every
 * codec, and each way a batch can be wrong mapping to the right error.
 * Also the codecs on their own (round trips, both snappy framings, size
 * caps and truncated input).
 */
#include <snappy-c.h>
#include <stdlib.h>
#include <string.h>

#include "storage/batch.h"
#include "storage/compress.h"
#include "storage/plog.h"
#include "tap.h"

/* A batch of `n` records "k<i>"/"value-<i>", one header on record 0. */
static uint8_t *make_batch(int codec, int n, size_t *len)
{
    struct batch_builder b;
    batch_builder_init(&b, codec, 1000);
    for (int i = 0; i < n; i++) {
        char k[16], v[32];
        int kl = snprintf(k, sizeof k, "k%d", i);
        int vl = snprintf(v, sizeof v, "value-%d", i);
        struct batch_header_kv h = {(const uint8_t *)"hk", 2, (const uint8_t *)"hv", 2};
        batch_builder_add(&b, 1000 + i * 10, k, kl, i == 2 ? NULL : v, vl, &h, i == 0 ? 1 : 0);
    }
    uint8_t *out;
    if (batch_builder_finish(&b, &out, len) != 0)
        out = NULL;
    batch_builder_free(&b);
    return out;
}

/* Rewrites the CRC so only the intended defect remains. */
static void fix_crc(uint8_t *p, size_t len)
{
    batch_update_crc(p, len);
}

static void test_codec_batches(void)
{
    for (int codec = 0; codec <= 4; codec++) {
        size_t len;
        uint8_t *p = make_batch(codec, 5, &len);
        CHECK(p != NULL);
        struct batch_info info;
        CHECK_EQ_INT(batch_validate(p, len, true, &info), PLOG_OK);
        CHECK_EQ_INT(info.records, 5);
        CHECK_EQ_INT(info.max_record_timestamp, 1040);

        struct batch_hdr h;
        CHECK_EQ_INT(batch_parse_header(p, len, INT32_MAX, &h), PLOG_OK);
        CHECK_EQ_INT(batch_codec(&h), codec);
        CHECK_EQ_INT(h.records_count, 5);
        CHECK_EQ_INT(h.last_offset_delta, 4);
        CHECK_EQ_INT(batch_size(&h), len);
        CHECK_EQ_INT(h.max_timestamp, 1040);
        CHECK_EQ_INT(h.producer_id, -1);

        /* Iterate and check every field of every record. */
        struct batch_records rs;
        CHECK_EQ_INT(batch_records_begin(p, &h, &rs), PLOG_OK);
        struct batch_record rec;
        int i = 0, rc;
        while ((rc = batch_records_next(&rs, &rec)) == 1) {
            char k[16], v[32];
            int kl = snprintf(k, sizeof k, "k%d", i);
            int vl = snprintf(v, sizeof v, "value-%d", i);
            CHECK_EQ_INT(rec.offset_delta, i);
            CHECK_EQ_INT(rec.timestamp_delta, i * 10);
            CHECK(rec.key_len == kl && !memcmp(rec.key, k, (size_t)kl));
            if (i == 2) {
                CHECK(rec.value == NULL && rec.value_len == -1);
            } else {
                CHECK(rec.value_len == vl && !memcmp(rec.value, v, (size_t)vl));
            }
            CHECK_EQ_INT(rec.header_count, i == 0 ? 1 : 0);
            if (i == 0) {
                const uint8_t *hp = rec.headers;
                struct batch_header_kv kv;
                CHECK_EQ_INT(batch_record_header(&hp, rec.headers_end, &kv), 1);
                CHECK(kv.key_len == 2 && !memcmp(kv.key, "hk", 2));
                CHECK(kv.value_len == 2 && !memcmp(kv.value, "hv", 2));
                CHECK_EQ_INT(batch_record_header(&hp, rec.headers_end, &kv), 0);
            }
            i++;
        }
        CHECK_EQ_INT(rc, 0);
        CHECK_EQ_INT(i, 5);
        batch_records_end(&rs);

        /* A flipped byte anywhere under the CRC is CORRUPT. */
        uint8_t *q = malloc(len);
        memcpy(q, p, len);
        q[len - 1] ^= 0x40;
        CHECK_EQ_INT(batch_validate(q, len, true, NULL), PLOG_ERR_CORRUPT);
        memcpy(q, p, len);
        q[BATCH_CRC_OFFSET] ^= 1;
        CHECK_EQ_INT(batch_validate(q, len, true, NULL), PLOG_ERR_CORRUPT);

        /* Wrong record count with a correct CRC is INVALID, both ways. */
        memcpy(q, p, len);
        batch_put_be32(q + 57, 6);
        fix_crc(q, len);
        CHECK_EQ_INT(batch_validate(q, len, false, NULL), PLOG_ERR_INVALID);
        memcpy(q, p, len);
        batch_put_be32(q + 57, 4);
        batch_put_be32(q + 23, 3);
        fix_crc(q, len);
        CHECK_EQ_INT(batch_validate(q, len, false, NULL), PLOG_ERR_INVALID);

        /* lastOffsetDelta not matching the last record: INVALID. */
        memcpy(q, p, len);
        batch_put_be32(q + 23, 7);
        fix_crc(q, len);
        CHECK_EQ_INT(batch_validate(q, len, false, NULL), PLOG_ERR_INVALID);
        CHECK_EQ_INT(batch_validate(q, len, true, NULL), PLOG_ERR_INVALID);

        /* Truncated: shorter than batchLength says. */
        CHECK_EQ_INT(batch_validate(p, len - 1, true, NULL), PLOG_ERR_CORRUPT);
        CHECK_EQ_INT(batch_validate(p, 40, true, NULL), PLOG_ERR_CORRUPT);
        /* Longer buffer than the batch: must fit exactly. */
        uint8_t *r = malloc(len + 4);
        memcpy(r, p, len);
        memset(r + len, 0, 4);
        CHECK_EQ_INT(batch_validate(r, len + 4, true, NULL), PLOG_ERR_CORRUPT);
        free(r);

        /* Old message formats are refused as unsupported. */
        memcpy(q, p, len);
        q[BATCH_MAGIC_OFFSET] = 1;
        CHECK_EQ_INT(batch_validate(q, len, true, NULL), PLOG_ERR_UNSUPPORTED);
        q[BATCH_MAGIC_OFFSET] = 0;
        CHECK_EQ_INT(batch_validate(q, 20, true, NULL), PLOG_ERR_UNSUPPORTED);
        q[BATCH_MAGIC_OFFSET] = 3;
        CHECK_EQ_INT(batch_validate(q, len, true, NULL), PLOG_ERR_CORRUPT);

        /* batchLength below the header size. */
        memcpy(q, p, len);
        batch_put_be32(q + 8, 10);
        CHECK_EQ_INT(batch_validate(q, len, true, NULL), PLOG_ERR_CORRUPT);
        free(q);
        free(p);
    }
}

static void test_record_framing(void)
{
    size_t len;
    uint8_t *p = make_batch(COMPRESS_NONE, 3, &len);
    uint8_t *q = malloc(len);

    /* First record's length varint one too large: framing breaks. */
    memcpy(q, p, len);
    q[BATCH_RECORDS_OFFSET] += 2; /* zig-zag: +1 */
    fix_crc(q, len);
    CHECK_EQ_INT(batch_validate(q, len, true, NULL), PLOG_ERR_INVALID);

    /* Second record's offsetDelta equal to the first: not increasing.
     * Record 0 starts at 61: len(1) attr(1) tsDelta(1) offDelta. */
    memcpy(q, p, len);
    int rec0_len = q[BATCH_RECORDS_OFFSET] >> 1;
    size_t rec1 = BATCH_RECORDS_OFFSET + 1 + (size_t)rec0_len;
    CHECK_EQ_INT(q[rec1 + 3], 2); /* zig-zag of offsetDelta 1 */
    q[rec1 + 3] = 0;
    fix_crc(q, len);
    CHECK_EQ_INT(batch_validate(q, len, false, NULL), PLOG_ERR_INVALID);

    /* Garbage after the last record. */
    memcpy(q, p, len);
    batch_put_be32(q + 57, 2);
    batch_put_be32(q + 23, 1);
    fix_crc(q, len);
    CHECK_EQ_INT(batch_validate(q, len, false, NULL), PLOG_ERR_INVALID);

    /* strict: an empty batch is refused, lenient: accepted. */
    size_t elen;
    uint8_t *e = make_batch(COMPRESS_NONE, 0, &elen);
    CHECK_EQ_INT(batch_validate(e, elen, false, NULL), PLOG_OK);
    CHECK_EQ_INT(batch_validate(e, elen, true, NULL), PLOG_ERR_INVALID);
    free(e);

    /* Unknown codec 5 with a good CRC: INVALID. */
    memcpy(q, p, len);
    batch_put_be16(q + BATCH_ATTR_OFFSET, 5);
    fix_crc(q, len);
    CHECK_EQ_INT(batch_validate(q, len, true, NULL), PLOG_ERR_INVALID);
    free(q);
    free(p);

    /* Compressed payload that does not decompress: INVALID. */
    for (int codec = 1; codec <= 4; codec++) {
        p = make_batch(codec, 3, &len);
        q = malloc(len);
        memcpy(q, p, len);
        for (size_t i = BATCH_RECORDS_OFFSET; i < len; i++)
            q[i] ^= 0x5a;
        fix_crc(q, len);
        CHECK_EQ_INT(batch_validate(q, len, true, NULL), PLOG_ERR_INVALID);
        /* A compressed batch whose inner records lie about the count. */
        memcpy(q, p, len);
        batch_put_be32(q + 57, 4);
        batch_put_be32(q + 23, 3);
        fix_crc(q, len);
        CHECK_EQ_INT(batch_validate(q, len, true, NULL), PLOG_ERR_INVALID);
        free(q);
        free(p);
    }
}

static void test_codecs(void)
{
    size_t sizes[] = {0, 1, 100, 70000, 300000};
    for (int codec = 1; codec <= 4; codec++) {
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
            size_t n = sizes[k];
            uint8_t *in = malloc(n + 1);
            for (size_t i = 0; i < n; i++)
                in[i] = (uint8_t)((i * 31) ^ (i >> 7));
            uint8_t *c, *d;
            size_t cl, dl;
            CHECK_EQ_INT(compress_compress(codec, in, n, &c, &cl), COMPRESS_OK);
            CHECK_EQ_INT(compress_decompress(codec, c, cl, 1 << 24, &d, &dl), COMPRESS_OK);
            CHECK(dl == n && (n == 0 || !memcmp(d, in, n)));
            free(d);
            if (n >= 100) {
                /* Output cap. */
                CHECK_EQ_INT(compress_decompress(codec, c, cl, n / 2, &d, &dl),
                             COMPRESS_ERR_TOO_LARGE);
                CHECK(d == NULL);
                /* Cut input. */
                int rc = compress_decompress(codec, c, cl / 2, 1 << 24, &d, &dl);
                CHECK(rc == COMPRESS_ERR_DATA);
                free(d);
            }
            free(c);
            free(in);
        }
    }
    /* Raw snappy (what librdkafka producers send) decodes too. */
    const char *text = "raw snappy raw snappy raw snappy raw snappy";
    size_t cl = snappy_max_compressed_length(strlen(text));
    char *c = malloc(cl);
    CHECK_EQ_INT(snappy_compress(text, strlen(text), c, &cl), SNAPPY_OK);
    uint8_t *d;
    size_t dl;
    CHECK_EQ_INT(compress_decompress(COMPRESS_SNAPPY, (uint8_t *)c, cl, 1 << 20, &d, &dl),
                 COMPRESS_OK);
    CHECK(dl == strlen(text) && !memcmp(d, text, dl));
    free(d);
    free(c);
    CHECK_EQ_INT(compress_decompress(9, (const uint8_t *)"x", 1, 100, &d, &dl), COMPRESS_ERR_CODEC);
    CHECK(!strcmp(compress_codec_name(3), "lz4"));
}

/*
 * Mutation fuzzing: random byte flips, with the CRC fixed half of the
 * time so the record decoder and the decompressors see the damage too.
 * Must never crash (run under ASan/UBSan) and must never accept a batch
 * whose records do not add up.
 */
static void test_fuzz(void)
{
    uint32_t seed = 42;
    int bad_result = 0;
    for (int codec = 0; codec <= 4; codec++) {
        size_t len;
        uint8_t *p = make_batch(codec, 7, &len);
        uint8_t *q = malloc(len);
        for (int iter = 0; iter < 3000; iter++) {
            memcpy(q, p, len);
            int flips = 1 + iter % 4;
            for (int f = 0; f < flips; f++) {
                seed = seed * 1103515245u + 12345u;
                size_t at = BATCH_ATTR_OFFSET + (seed >> 8) % (len - BATCH_ATTR_OFFSET);
                seed = seed * 1103515245u + 12345u;
                q[at] ^= (uint8_t)(1 + (seed >> 16) % 255);
            }
            if (iter & 1)
                fix_crc(q, len);
            struct batch_info info;
            int rc = batch_validate(q, len, false, &info);
            if (rc == PLOG_OK) {
                /* Accepted: then iterating must agree with the header. */
                struct batch_hdr h;
                batch_parse_header(q, len, INT32_MAX, &h);
                struct batch_records rs;
                struct batch_record rec;
                int n = 0;
                if (batch_records_begin(q, &h, &rs) != PLOG_OK)
                    bad_result++;
                while (batch_records_next(&rs, &rec) == 1)
                    n++;
                batch_records_end(&rs);
                if (n != h.records_count || n != info.records)
                    bad_result++;
            } else if (rc != PLOG_ERR_CORRUPT && rc != PLOG_ERR_INVALID &&
                       rc != PLOG_ERR_UNSUPPORTED) {
                bad_result++;
            }
            /* Arbitrary bytes straight into the decompressor. */
            if (codec) {
                uint8_t *d;
                size_t dl;
                compress_decompress(codec, q + BATCH_RECORDS_OFFSET, len - BATCH_RECORDS_OFFSET,
                                    1 << 20, &d, &dl);
                free(d);
            }
        }
        free(q);
        free(p);
    }
    CHECK_EQ_INT(bad_result, 0);
}

int main(void)
{
    test_codec_batches();
    test_fuzz();
    test_record_framing();
    test_codecs();
    return tap_done();
}
