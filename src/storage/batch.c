/*
 * Record batches, magic 2 (Kafka's RecordBatch v2).  All integers are
 * big-endian; a .log file is these batches back to back, exactly as they
 * travel in Produce and Fetch.
 *
 *   offset  size  field
 *   0       8     baseOffset            int64, first offset of the batch
 *   8       4     batchLength           int32, bytes after this field
 *   12      4     partitionLeaderEpoch  int32
 *   16      1     magic                 int8, 2
 *   17      4     crc                   uint32, CRC-32C of bytes 21..end
 *   21      2     attributes            int16: bits 0-2 codec (0 none,
 *                                       1 gzip, 2 snappy, 3 lz4, 4 zstd),
 *                                       3 timestamp type (1 LogAppendTime),
 *                                       4 transactional, 5 control,
 *                                       6 has delete horizon (then
 *                                       baseTimestamp is that horizon;
 *                                       only the cleaner sets it)
 *   23      4     lastOffsetDelta       int32
 *   27      8     baseTimestamp         int64
 *   35      8     maxTimestamp          int64
 *   43      8     producerId            int64
 *   51      2     producerEpoch         int16
 *   53      4     baseSequence          int32
 *   57      4     recordsCount          int32
 *   61      ...   records (compressed as a whole when codec != 0)
 *
 * A record (sizes are zig-zag varints unless noted):
 *
 *   length          varint, bytes after this field
 *   attributes      int8 (unused, 0)
 *   timestampDelta  varlong, from baseTimestamp
 *   offsetDelta     varint, from baseOffset
 *   keyLength       varint (-1 = null), then key bytes
 *   valueLength     varint (-1 = null), then value bytes
 *   headersCount    varint, then per header: keyLength varint (>= 0),
 *                   key, valueLength varint (-1 = null), value
 *
 * The legacy formats (magic 0 and 1) put their magic byte at offset 16
 * too, which is how they are recognised and refused.
 */
#include "storage/batch.h"

#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "storage/compress.h"
#include "storage/plog.h"

int batch_parse_header(const uint8_t *p, size_t len, int64_t max_len, struct batch_hdr *h)
{
    /* The magic byte decides how to read the rest, so look at it as soon
     * as it is there: a short legacy message is still "unsupported". */
    if (len > BATCH_MAGIC_OFFSET && p[BATCH_MAGIC_OFFSET] < 2)
        return PLOG_ERR_UNSUPPORTED;
    if (len < BATCH_HEADER_SIZE)
        return PLOG_ERR_CORRUPT;
    h->base_offset = batch_be64(p);
    h->batch_length = batch_be32(p + 8);
    h->partition_leader_epoch = batch_be32(p + 12);
    h->magic = (int8_t)p[16];
    h->crc = (uint32_t)batch_be32(p + 17);
    h->attributes = batch_be16(p + 21);
    h->last_offset_delta = batch_be32(p + 23);
    h->base_timestamp = batch_be64(p + 27);
    h->max_timestamp = batch_be64(p + 35);
    h->producer_id = batch_be64(p + 43);
    h->producer_epoch = batch_be16(p + 51);
    h->base_sequence = batch_be32(p + 53);
    h->records_count = batch_be32(p + 57);
    if (h->magic != 2)
        return PLOG_ERR_CORRUPT;
    if (h->batch_length < BATCH_MIN_LENGTH || (int64_t)h->batch_length > max_len)
        return PLOG_ERR_CORRUPT;
    if (h->last_offset_delta < 0 || h->records_count < 0)
        return PLOG_ERR_CORRUPT;
    return PLOG_OK;
}

uint32_t batch_compute_crc(const uint8_t *p, size_t size)
{
    return crc32c(0, p + BATCH_ATTR_OFFSET, size - BATCH_ATTR_OFFSET);
}

void batch_update_crc(uint8_t *p, size_t size)
{
    batch_put_be32(p + BATCH_CRC_OFFSET, (int32_t)batch_compute_crc(p, size));
}

/* ---- varints: zig-zag, at most 5 (int32) or 10 (int64) bytes ---- */

static bool read_uvarint(const uint8_t **pp, const uint8_t *end, int max_bytes, uint64_t *out)
{
    const uint8_t *p = *pp;
    uint64_t v = 0;
    for (int i = 0; i < max_bytes; i++) {
        if (p >= end)
            return false;
        uint8_t b = *p++;
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *pp = p;
            *out = v;
            return true;
        }
    }
    return false;
}

static bool read_varint(const uint8_t **pp, const uint8_t *end, int32_t *out)
{
    uint64_t u;
    if (!read_uvarint(pp, end, 5, &u) || u > UINT32_MAX)
        return false;
    uint32_t z = (uint32_t)u;
    *out = (int32_t)((z >> 1) ^ -(z & 1));
    return true;
}

static bool read_varlong(const uint8_t **pp, const uint8_t *end, int64_t *out)
{
    uint64_t u;
    if (!read_uvarint(pp, end, 10, &u))
        return false;
    *out = (int64_t)((u >> 1) ^ -(u & 1));
    return true;
}

/* Reads a varint length and that many bytes; -1 (null) only if allowed. */
static bool read_varbytes(const uint8_t **pp, const uint8_t *end, bool nullable,
                          const uint8_t **data, int32_t *len)
{
    int32_t n;
    if (!read_varint(pp, end, &n))
        return false;
    if (n < 0) {
        if (n != -1 || !nullable)
            return false;
        *data = NULL;
        *len = -1;
        return true;
    }
    if ((size_t)(end - *pp) < (size_t)n)
        return false;
    *data = *pp;
    *len = n;
    *pp += n;
    return true;
}

/* ---- records ---- */

int batch_records_begin(const uint8_t *p, const struct batch_hdr *h, struct batch_records *rs)
{
    memset(rs, 0, sizeof *rs);
    rs->left = h->records_count;
    rs->prev_offset_delta = -1;
    const uint8_t *recs = p + BATCH_RECORDS_OFFSET;
    size_t recs_len = (size_t)batch_size(h) - BATCH_RECORDS_OFFSET;
    int codec = batch_codec(h);
    if (codec == COMPRESS_NONE) {
        rs->p = recs;
        rs->end = recs + recs_len;
        return PLOG_OK;
    }
    size_t out_len;
    if (compress_decompress(codec, recs, recs_len, BATCH_MAX_DECOMPRESSED, &rs->owned, &out_len) !=
        COMPRESS_OK)
        return PLOG_ERR_INVALID;
    rs->p = rs->owned;
    rs->end = rs->owned + out_len;
    return PLOG_OK;
}

int batch_records_next(struct batch_records *rs, struct batch_record *rec)
{
    if (rs->left == 0)
        return rs->p == rs->end ? 0 : PLOG_ERR_INVALID;
    int32_t len;
    if (!read_varint(&rs->p, rs->end, &len) || len < 0 || (size_t)(rs->end - rs->p) < (size_t)len)
        return PLOG_ERR_INVALID;
    const uint8_t *p = rs->p, *end = rs->p + len;
    memset(rec, 0, sizeof *rec);
    rec->length = len;
    if (p >= end)
        return PLOG_ERR_INVALID;
    rec->attributes = (int8_t)*p++;
    if (!read_varlong(&p, end, &rec->timestamp_delta) ||
        !read_varint(&p, end, &rec->offset_delta) ||
        !read_varbytes(&p, end, true, &rec->key, &rec->key_len) ||
        !read_varbytes(&p, end, true, &rec->value, &rec->value_len) ||
        !read_varint(&p, end, &rec->header_count) || rec->header_count < 0)
        return PLOG_ERR_INVALID;
    rec->headers = p;
    for (int32_t i = 0; i < rec->header_count; i++) {
        struct batch_header_kv kv;
        if (batch_record_header(&p, end, &kv) != 1)
            return PLOG_ERR_INVALID;
    }
    rec->headers_end = p;
    /* The record must use exactly the bytes its length announced. */
    if (p != end)
        return PLOG_ERR_INVALID;
    if (rec->offset_delta <= rs->prev_offset_delta)
        return PLOG_ERR_INVALID;
    rs->prev_offset_delta = rec->offset_delta;
    rs->p = end;
    rs->left--;
    rs->read++;
    return 1;
}

int batch_record_header(const uint8_t **pos, const uint8_t *end, struct batch_header_kv *kv)
{
    if (*pos >= end)
        return 0;
    if (!read_varbytes(pos, end, false, &kv->key, &kv->key_len) ||
        !read_varbytes(pos, end, true, &kv->value, &kv->value_len))
        return PLOG_ERR_INVALID;
    return 1;
}

void batch_records_end(struct batch_records *rs)
{
    free(rs->owned);
    rs->owned = NULL;
}

int batch_validate_header(const uint8_t *p, size_t len, bool strict, struct batch_hdr *h)
{
    int rc = batch_parse_header(p, len, INT32_MAX, h);
    if (rc != PLOG_OK)
        return rc;
    if ((uint64_t)batch_size(h) != len)
        return PLOG_ERR_CORRUPT;
    if (batch_compute_crc(p, len) != h->crc)
        return PLOG_ERR_CORRUPT;
    if (batch_codec(h) > COMPRESS_ZSTD)
        return PLOG_ERR_INVALID;
    if (strict && (h->records_count <= 0 || h->last_offset_delta != h->records_count - 1))
        return PLOG_ERR_INVALID;
    return PLOG_OK;
}

int batch_validate(const uint8_t *p, size_t len, bool strict, struct batch_info *info)
{
    struct batch_hdr h;
    int rc = batch_validate_header(p, len, strict, &h);
    if (rc != PLOG_OK)
        return rc;

    struct batch_records rs;
    rc = batch_records_begin(p, &h, &rs);
    if (rc != PLOG_OK)
        return rc;
    struct batch_record rec;
    int64_t max_ts = -1;
    int32_t last_delta = -1, null_keys = 0;
    bool control = h.attributes & BATCH_ATTR_CONTROL;
    while ((rc = batch_records_next(&rs, &rec)) == 1) {
        int64_t ts = h.base_timestamp + rec.timestamp_delta;
        if (ts > max_ts)
            max_ts = ts;
        last_delta = rec.offset_delta;
        null_keys += !control && !rec.key;
    }
    batch_records_end(&rs);
    if (rc < 0)
        return rc;
    if (rs.read != h.records_count)
        return PLOG_ERR_INVALID;
    if (rs.read > 0 && last_delta != h.last_offset_delta)
        return PLOG_ERR_INVALID;
    if (info) {
        info->max_record_timestamp = max_ts;
        info->records = rs.read;
        info->null_keys = null_keys;
    }
    return PLOG_OK;
}

/* ---- builder ---- */

void batch_builder_init(struct batch_builder *b, int codec, int64_t base_timestamp)
{
    memset(b, 0, sizeof *b);
    b->codec = codec;
    b->base_timestamp = base_timestamp;
    b->max_timestamp = -1;
    b->producer_id = -1;
    b->producer_epoch = -1;
    b->base_sequence = -1;
    b->partition_leader_epoch = -1;
}

static void bb_reserve(struct batch_builder *b, size_t n)
{
    if (b->oom || b->cap - b->len >= n)
        return;
    size_t ncap = b->cap ? b->cap * 2 : 256;
    while (ncap - b->len < n)
        ncap *= 2;
    uint8_t *np = realloc(b->recs, ncap);
    if (!np) {
        b->oom = true;
        return;
    }
    b->recs = np;
    b->cap = ncap;
}

static size_t put_uvarint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

static size_t put_varlong(uint8_t *p, int64_t v)
{
    return put_uvarint(p, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

void batch_builder_add(struct batch_builder *b, int64_t timestamp, const void *key, int32_t key_len,
                       const void *value, int32_t value_len, const struct batch_header_kv *headers,
                       int header_count)
{
    if (!key)
        key_len = -1;
    if (!value)
        value_len = -1;
    /* Body first into a scratch area past the length slot, then move. */
    size_t need = 1 + 10 + 5 + 5 + (key_len > 0 ? (size_t)key_len : 0) + 5 +
                  (value_len > 0 ? (size_t)value_len : 0) + 5;
    for (int i = 0; i < header_count; i++)
        need += 10 + (size_t)headers[i].key_len +
                (headers[i].value_len > 0 ? (size_t)headers[i].value_len : 0);
    bb_reserve(b, need + 5);
    if (b->oom)
        return;
    uint8_t *body = b->recs + b->len + 5;
    size_t n = 0;
    body[n++] = 0; /* attributes */
    n += put_varlong(body + n, timestamp - b->base_timestamp);
    n += put_varlong(body + n, b->count);
    n += put_varlong(body + n, key_len);
    if (key_len > 0) {
        memcpy(body + n, key, (size_t)key_len);
        n += (size_t)key_len;
    }
    n += put_varlong(body + n, value_len);
    if (value_len > 0) {
        memcpy(body + n, value, (size_t)value_len);
        n += (size_t)value_len;
    }
    n += put_varlong(body + n, header_count);
    for (int i = 0; i < header_count; i++) {
        n += put_varlong(body + n, headers[i].key_len);
        memcpy(body + n, headers[i].key, (size_t)headers[i].key_len);
        n += (size_t)headers[i].key_len;
        int32_t vl = headers[i].value ? headers[i].value_len : -1;
        n += put_varlong(body + n, vl);
        if (vl > 0) {
            memcpy(body + n, headers[i].value, (size_t)vl);
            n += (size_t)vl;
        }
    }
    uint8_t lenbuf[5];
    size_t ln = put_varlong(lenbuf, (int64_t)n);
    memcpy(b->recs + b->len, lenbuf, ln);
    memmove(b->recs + b->len + ln, body, n);
    b->len += ln + n;
    b->last_offset_delta = b->count;
    b->count++;
    if (timestamp > b->max_timestamp)
        b->max_timestamp = timestamp;
}

void batch_builder_add_record(struct batch_builder *b, int64_t timestamp,
                              const struct batch_record *rec)
{
    size_t hlen = (size_t)(rec->headers_end - rec->headers);
    size_t need = 1 + 10 + 5 + 5 + (rec->key_len > 0 ? (size_t)rec->key_len : 0) + 5 +
                  (rec->value_len > 0 ? (size_t)rec->value_len : 0) + 5 + hlen;
    bb_reserve(b, need + 5);
    if (b->oom)
        return;
    uint8_t *body = b->recs + b->len + 5;
    size_t n = 0;
    body[n++] = (uint8_t)rec->attributes;
    /* Wrapping arithmetic: the timestamps come from disk and may be
     * anything; what matters is that base + delta gives them back. */
    n += put_varlong(body + n, (int64_t)((uint64_t)timestamp - (uint64_t)b->base_timestamp));
    n += put_varlong(body + n, rec->offset_delta);
    n += put_varlong(body + n, rec->key ? rec->key_len : -1);
    if (rec->key && rec->key_len > 0) {
        memcpy(body + n, rec->key, (size_t)rec->key_len);
        n += (size_t)rec->key_len;
    }
    n += put_varlong(body + n, rec->value ? rec->value_len : -1);
    if (rec->value && rec->value_len > 0) {
        memcpy(body + n, rec->value, (size_t)rec->value_len);
        n += (size_t)rec->value_len;
    }
    n += put_varlong(body + n, rec->header_count);
    if (hlen) {
        memcpy(body + n, rec->headers, hlen);
        n += hlen;
    }
    uint8_t lenbuf[5];
    size_t ln = put_varlong(lenbuf, (int64_t)n);
    memcpy(b->recs + b->len, lenbuf, ln);
    memmove(b->recs + b->len + ln, body, n);
    b->len += ln + n;
    b->last_offset_delta = rec->offset_delta;
    b->count++;
    if (timestamp > b->max_timestamp)
        b->max_timestamp = timestamp;
}

int batch_builder_finish(struct batch_builder *b, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (b->oom)
        return -1;
    const uint8_t *payload = b->recs;
    size_t payload_len = b->len;
    uint8_t *compressed = NULL;
    if (b->codec != COMPRESS_NONE) {
        if (compress_compress(b->codec, b->recs ? b->recs : (const uint8_t *)"", b->len,
                              &compressed, &payload_len) != COMPRESS_OK)
            return -1;
        payload = compressed;
    }
    size_t total = BATCH_RECORDS_OFFSET + payload_len;
    uint8_t *p = malloc(total);
    if (!p) {
        free(compressed);
        return -1;
    }
    batch_put_be64(p, b->base_offset);
    batch_put_be32(p + 8, (int32_t)(total - BATCH_LOG_OVERHEAD));
    batch_put_be32(p + 12, b->partition_leader_epoch);
    p[16] = 2;
    int16_t attrs = (int16_t)((b->attributes & ~BATCH_ATTR_CODEC_MASK) | (b->codec & 7));
    batch_put_be16(p + 21, attrs);
    batch_put_be32(p + 23, b->count > 0 ? b->last_offset_delta : 0);
    batch_put_be64(p + 27, b->base_timestamp);
    batch_put_be64(p + 35, b->count > 0 ? b->max_timestamp : b->base_timestamp);
    batch_put_be64(p + 43, b->producer_id);
    batch_put_be16(p + 51, b->producer_epoch);
    batch_put_be32(p + 53, b->base_sequence);
    batch_put_be32(p + 57, b->count);
    if (payload_len)
        memcpy(p + BATCH_RECORDS_OFFSET, payload, payload_len);
    free(compressed);
    batch_update_crc(p, total);
    *out = p;
    *out_len = total;
    return 0;
}

void batch_builder_free(struct batch_builder *b)
{
    free(b->recs);
    memset(b, 0, sizeof *b);
}
