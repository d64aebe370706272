/*
 * scan: filtering stored record batches for a view (see scan.h).
 *
 * The marker batch this file writes to close an answer (a record batch
 * v2, layout in storage/batch.c; the record as Kafka's transaction
 * markers, ControlRecordType COMMIT):
 *
 * | offset | size | field                | value                                  |
 * | ---    | ---  | ---                  | ---                                    |
 * | 0      | 8    | baseOffset           | first offset not yet covered           |
 * | 8      | 4    | batchLength          | bytes after this field                 |
 * | 12     | 4    | partitionLeaderEpoch | that of the last source batch read     |
 * | 16     | 1    | magic                | 2                                      |
 * | 17     | 4    | crc                  | CRC-32C of bytes 21..end               |
 * | 21     | 2    | attributes           | 0x30: transactional, control           |
 * | 23     | 4    | lastOffsetDelta      | last offset examined - baseOffset (N)  |
 * | 27     | 8    | baseTimestamp        | maxTimestamp of the last batch read    |
 * | 35     | 8    | maxTimestamp         | the same                               |
 * | 43     | 8    | producerId           | -1                                     |
 * | 51     | 2    | producerEpoch        | -1                                     |
 * | 53     | 4    | baseSequence         | -1                                     |
 * | 57     | 4    | records count        | 1                                      |
 * | 61     | ...  | record               | attributes 0, timestampDelta 0,        |
 * |        |      |                      | offsetDelta N, key int16 version 0 +   |
 * |        |      |                      | int16 type 1 (COMMIT), value int16     |
 * |        |      |                      | version 0 + int32 coordinator epoch 0, |
 * |        |      |                      | no headers                             |
 */
#include "filter/scan.h"

#include <stdlib.h>
#include <string.h>

#include "storage/batch.h"
#include "storage/plog.h"

void filter_scan_init(struct filter_scan *s, const struct filter *f, int64_t fetch_offset)
{
    memset(s, 0, sizeof *s);
    s->f = f;
    s->fetch_offset = fetch_offset;
    s->next_offset = fetch_offset;
    s->covered = fetch_offset;
    s->first_sent = -1;
    s->last_epoch = -1;
    s->last_max_ts = -1;
}

void filter_scan_release(struct filter_scan *s)
{
    free(s->recs);
    s->recs = NULL;
    s->n_recs = s->cap_recs = 0;
}

static int out_append(struct filter_scan *s, const uint8_t *p, size_t len)
{
    if (s->out_len + len > s->out_cap) {
        size_t cap = s->out_cap ? s->out_cap : 4096;
        while (cap < s->out_len + len)
            cap *= 2;
        uint8_t *np = realloc(s->out, cap);
        if (!np)
            return PLOG_ERR_IO;
        s->out = np;
        s->out_cap = cap;
    }
    memcpy(s->out + s->out_len, p, len);
    s->out_len += len;
    return PLOG_OK;
}

bool filter_match_record(const struct filter *f, const struct batch_record *rec)
{
    if (filter_matches_all(f))
        return true;
    struct filter_value vals[FILTER_MAX_SLOTS];
    int n = filter_slot_count(f);
    for (int i = 0; i < n; i++)
        vals[i] = (struct filter_value){NULL, -1};
    const uint8_t *pos = rec->headers;
    struct batch_header_kv kv;
    for (int32_t i = 0; i < rec->header_count; i++) {
        if (batch_record_header(&pos, rec->headers_end, &kv) != 1)
            break; /* validated by batch_records_next; never here */
        int slot = filter_slot(f, kv.key, (size_t)kv.key_len);
        if (slot >= 0)
            vals[slot] = (struct filter_value){kv.value, kv.value ? kv.value_len : -1};
    }
    return filter_match(f, vals);
}

static int keep(struct filter_scan *s, const struct batch_record *rec)
{
    if (s->n_recs == s->cap_recs) {
        size_t cap = s->cap_recs ? s->cap_recs * 2 : 64;
        struct batch_record *np = realloc(s->recs, cap * sizeof *np);
        if (!np)
            return PLOG_ERR_IO;
        s->recs = np;
        s->cap_recs = cap;
    }
    s->recs[s->n_recs++] = *rec;
    return PLOG_OK;
}

/* The batch at p, its records s->recs[0..n_recs), rebuilt into out. */
static int rebuild(struct filter_scan *s, const struct batch_hdr *h)
{
    struct batch_builder b;
    batch_builder_init(&b, batch_codec(h), h->base_timestamp);
    b.attributes = (int16_t)(h->attributes & ~BATCH_ATTR_CODEC_MASK);
    b.producer_id = h->producer_id;
    b.producer_epoch = h->producer_epoch;
    b.base_sequence = h->base_sequence;
    b.partition_leader_epoch = h->partition_leader_epoch;
    b.base_offset = h->base_offset;
    for (size_t i = 0; i < s->n_recs; i++)
        batch_builder_add_record(
            &b, (int64_t)((uint64_t)h->base_timestamp + (uint64_t)s->recs[i].timestamp_delta),
            &s->recs[i]);
    uint8_t *nb;
    size_t nlen;
    int rc = batch_builder_finish(&b, &nb, &nlen);
    batch_builder_free(&b);
    if (rc < 0)
        return PLOG_ERR_IO;
    /* The source's last offset, so a consumer steps past the records
     * left out at the end; with LogAppendTime the batch's time is the
     * append time whatever its records say. */
    batch_put_be32(nb + 23, h->last_offset_delta);
    if (h->attributes & BATCH_ATTR_LOG_APPEND_TIME)
        batch_put_be64(nb + BATCH_MAX_TS_OFFSET, h->max_timestamp);
    batch_update_crc(nb, nlen);
    rc = out_append(s, nb, nlen);
    free(nb);
    return rc;
}

/* One whole batch of `size` bytes at p. */
static int scan_batch(struct filter_scan *s, const uint8_t *p, const struct batch_hdr *h)
{
    int64_t last = batch_last_offset(h);
    s->last_epoch = h->partition_leader_epoch;
    s->last_max_ts = h->max_timestamp;
    if (last < s->fetch_offset || (h->attributes & BATCH_ATTR_CONTROL))
        return PLOG_OK;
    if (filter_matches_all(s->f) && h->base_offset >= s->fetch_offset && h->records_count > 0) {
        /* `*` or TRUE: the batch as stored, not even decompressed. */
        int rc = out_append(s, p, (size_t)batch_size(h));
        if (rc == PLOG_OK) {
            if (s->first_sent < 0)
                s->first_sent = h->base_offset; /* at or before its first record */
            s->records_read += h->records_count;
            s->records_sent += h->records_count;
            if (last + 1 > s->covered)
                s->covered = last + 1;
        }
        return rc;
    }
    struct batch_records rs;
    if (batch_records_begin(p, h, &rs) != PLOG_OK)
        return PLOG_ERR_CORRUPT;
    s->n_recs = 0;
    int32_t total = 0;
    int rc = PLOG_OK;
    struct batch_record rec;
    int more;
    while ((more = batch_records_next(&rs, &rec)) == 1) {
        total++;
        int64_t off = h->base_offset + rec.offset_delta;
        if (off < s->fetch_offset || !filter_match_record(s->f, &rec))
            continue;
        if ((rc = keep(s, &rec)) != PLOG_OK)
            break;
    }
    if (more < 0)
        rc = PLOG_ERR_CORRUPT;
    s->records_read += total;
    if (rc == PLOG_OK && s->n_recs > 0) {
        if (s->first_sent < 0)
            s->first_sent = h->base_offset + s->recs[0].offset_delta;
        s->records_sent += (int64_t)s->n_recs;
        rc = s->n_recs == (size_t)total ? out_append(s, p, (size_t)batch_size(h)) : rebuild(s, h);
        if (rc == PLOG_OK && last + 1 > s->covered)
            s->covered = last + 1;
    }
    batch_records_end(&rs);
    s->n_recs = 0;
    return rc;
}

int filter_scan_feed(struct filter_scan *s, const uint8_t *buf, size_t len)
{
    size_t pos = 0;
    while (pos < len) {
        struct batch_hdr h;
        if (batch_parse_header(buf + pos, len - pos, INT32_MAX, &h) != PLOG_OK ||
            batch_size(&h) > (int64_t)(len - pos))
            return PLOG_ERR_CORRUPT;
        int rc = scan_batch(s, buf + pos, &h);
        if (rc != PLOG_OK)
            return rc;
        if (batch_last_offset(&h) + 1 > s->next_offset)
            s->next_offset = batch_last_offset(&h) + 1;
        pos += (size_t)batch_size(&h);
    }
    return PLOG_OK;
}

static size_t put_varint(uint8_t *p, int64_t v)
{
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    size_t n = 0;
    while (z >= 0x80) {
        p[n++] = (uint8_t)(z | 0x80);
        z >>= 7;
    }
    p[n++] = (uint8_t)z;
    return n;
}

int filter_scan_finish(struct filter_scan *s, bool marker)
{
    if (!marker || s->next_offset <= s->covered)
        return PLOG_OK;
    int64_t span = s->next_offset - 1 - s->covered;
    /* One batch says at most 2^31 offsets; the next fetch covers the rest. */
    if (span > INT32_MAX)
        span = INT32_MAX;
    static const uint8_t key[4] = {0, 0, 0, 1};         /* version 0, COMMIT */
    static const uint8_t value[6] = {0, 0, 0, 0, 0, 0}; /* version 0, epoch 0 */
    uint8_t body[32];
    size_t n = 0;
    body[n++] = 0; /* attributes */
    n += put_varint(body + n, 0);
    n += put_varint(body + n, span);
    n += put_varint(body + n, sizeof key);
    memcpy(body + n, key, sizeof key);
    n += sizeof key;
    n += put_varint(body + n, sizeof value);
    memcpy(body + n, value, sizeof value);
    n += sizeof value;
    n += put_varint(body + n, 0); /* headers */
    uint8_t b[BATCH_RECORDS_OFFSET + 48];
    memset(b, 0, BATCH_RECORDS_OFFSET);
    size_t total = BATCH_RECORDS_OFFSET;
    total += put_varint(b + total, (int64_t)n);
    memcpy(b + total, body, n);
    total += n;
    batch_put_be64(b, s->covered);
    batch_put_be32(b + 8, (int32_t)(total - BATCH_LOG_OVERHEAD));
    batch_put_be32(b + 12, s->last_epoch);
    b[16] = 2;
    batch_put_be16(b + 21, BATCH_ATTR_TRANSACTIONAL | BATCH_ATTR_CONTROL);
    batch_put_be32(b + 23, (int32_t)span);
    batch_put_be64(b + 27, s->last_max_ts);
    batch_put_be64(b + 35, s->last_max_ts);
    batch_put_be64(b + 43, -1);
    batch_put_be16(b + 51, -1);
    batch_put_be32(b + 53, -1);
    batch_put_be32(b + 57, 1);
    batch_update_crc(b, total);
    int rc = out_append(s, b, total);
    if (rc == PLOG_OK) {
        s->marker_bytes = total;
        s->covered += span + 1;
    }
    return rc;
}
