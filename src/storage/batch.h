/*
 * batch: Kafka record batches (magic 2), as on the wire and on disk.
 *
 * Parses and validates batch headers, checks the CRC, iterates the
 * records (decompressing when the batch is compressed) and builds
 * batches (for tests, control records and tools).  The layout is the
 * table at the top of batch.c.
 *
 * Nothing here trusts its input: every length is checked against the
 * buffer, and errors are PLOG_ERR_* codes (storage/plog.h).
 */
#ifndef RUNNEL_BATCH_H
#define RUNNEL_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BATCH_LOG_OVERHEAD 12 /* baseOffset + batchLength */
#define BATCH_HEADER_SIZE 61  /* up to and including the records count */
#define BATCH_MAGIC_OFFSET 16 /* same place in the legacy message formats */
#define BATCH_CRC_OFFSET 17
#define BATCH_ATTR_OFFSET 21 /* CRC covers from here to the end */
#define BATCH_MAX_TS_OFFSET 35
#define BATCH_RECORDS_OFFSET 61
#define BATCH_MIN_LENGTH (BATCH_HEADER_SIZE - BATCH_LOG_OVERHEAD) /* batchLength floor */

/* attributes */
#define BATCH_ATTR_CODEC_MASK 0x07
#define BATCH_ATTR_LOG_APPEND_TIME 0x08
#define BATCH_ATTR_TRANSACTIONAL 0x10
#define BATCH_ATTR_CONTROL 0x20
#define BATCH_ATTR_DELETE_HORIZON 0x40

/* Largest decompressed batch we are willing to materialise. */
#define BATCH_MAX_DECOMPRESSED (64 * 1024 * 1024)

struct batch_hdr {
    int64_t base_offset;
    int32_t batch_length; /* bytes after this field */
    int32_t partition_leader_epoch;
    int8_t magic;
    uint32_t crc;
    int16_t attributes;
    int32_t last_offset_delta;
    int64_t base_timestamp;
    int64_t max_timestamp;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t base_sequence;
    int32_t records_count;
};

static inline int64_t batch_size(const struct batch_hdr *h)
{
    return BATCH_LOG_OVERHEAD + (int64_t)h->batch_length;
}
static inline int64_t batch_last_offset(const struct batch_hdr *h)
{
    return h->base_offset + h->last_offset_delta;
}
static inline int batch_codec(const struct batch_hdr *h)
{
    return h->attributes & BATCH_ATTR_CODEC_MASK;
}

/*
 * Decodes the header from `len` bytes (at least BATCH_HEADER_SIZE are
 * needed; with fewer, PLOG_ERR_CORRUPT).  Checks magic (< 2:
 * PLOG_ERR_UNSUPPORTED, > 2: PLOG_ERR_CORRUPT) and that batchLength is at
 * least the header and at most `max_len` (pass INT32_MAX for no limit).
 * Does not look at the CRC or the records.
 */
int batch_parse_header(const uint8_t *p, size_t len, int64_t max_len, struct batch_hdr *h);

/* CRC-32C of attributes..end of the batch of `size` bytes at p. */
uint32_t batch_compute_crc(const uint8_t *p, size_t size);
/* Rewrites the CRC field after the covered bytes changed. */
void batch_update_crc(uint8_t *p, size_t size);

/* What validating a batch learned, for the append path. */
struct batch_info {
    int64_t max_record_timestamp; /* -1 when no records */
    int32_t records;
    int32_t null_keys; /* records with a null key (control batches not counted) */
};

/*
 * Full validation of the one batch that is exactly `len` bytes at p:
 * header (batch_parse_header), size == len (else PLOG_ERR_CORRUPT), CRC
 * (PLOG_ERR_CORRUPT), then every record, decompressing first when the
 * batch is compressed: framing, offsetDelta strictly increasing with the
 * last equal to lastOffsetDelta, count == records count (else
 * PLOG_ERR_INVALID).  With `strict` (batches from producers) it also
 * requires records count > 0 and lastOffsetDelta == count - 1, as Kafka
 * does for client appends.  `info` may be NULL.
 */
int batch_validate(const uint8_t *p, size_t len, bool strict, struct batch_info *info);
/* batch_validate's checks that need no record: header, size, CRC, codec
 * and (strict) the count.  Iterating the records (batch_records_next)
 * checks their framing, count and order; what is left is that the last
 * offsetDelta is the header's lastOffsetDelta. */
int batch_validate_header(const uint8_t *p, size_t len, bool strict, struct batch_hdr *h);

/* ---- records ---- */

struct batch_record {
    int32_t length; /* bytes after the length varint */
    int8_t attributes;
    int64_t timestamp_delta;
    int32_t offset_delta;
    const uint8_t *key; /* NULL when null */
    int32_t key_len;    /* -1 when null */
    const uint8_t *value;
    int32_t value_len;
    int32_t header_count;
    const uint8_t *headers; /* header_count headers, for batch_record_header */
    const uint8_t *headers_end;
};

struct batch_header_kv {
    const uint8_t *key;
    int32_t key_len;
    const uint8_t *value; /* NULL when null */
    int32_t value_len;    /* -1 when null */
};

/* Iterates the records of one batch; decompresses into `owned` if needed. */
struct batch_records {
    const uint8_t *p, *end;
    int32_t left; /* records still to read per the header count */
    int32_t read;
    int64_t prev_offset_delta;
    uint8_t *owned;
};

/* Prepares iteration over the batch at p (whole batch, header parsed
 * into h).  Returns 0 or PLOG_ERR_INVALID (decompression failed). */
int batch_records_begin(const uint8_t *p, const struct batch_hdr *h, struct batch_records *rs);
/* 1 with *rec filled, 0 at the end (all counted records read and no bytes
 * left), PLOG_ERR_INVALID on any framing error. */
int batch_records_next(struct batch_records *rs, struct batch_record *rec);
void batch_records_end(struct batch_records *rs);

/* Reads header `*pos` of a record's headers section: 1 ok, 0 no more,
 * PLOG_ERR_INVALID. */
int batch_record_header(const uint8_t **pos, const uint8_t *end, struct batch_header_kv *kv);

/* ---- building batches ---- */

struct batch_builder {
    uint8_t *recs; /* encoded records, uncompressed */
    size_t len, cap;
    int32_t count;
    int codec;
    int16_t attributes; /* transactional / control bits; codec from `codec` */
    int64_t base_timestamp;
    int64_t max_timestamp;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t base_sequence;
    int32_t partition_leader_epoch;
    int64_t base_offset;
    int32_t last_offset_delta; /* of the last record added */
    bool oom;
};

/* Zeroes b and sets producer id/epoch/sequence to -1 (none). */
void batch_builder_init(struct batch_builder *b, int codec, int64_t base_timestamp);
/* Adds one record; key/value NULL for null.  offsetDelta = record index. */
void batch_builder_add(struct batch_builder *b, int64_t timestamp, const void *key, int32_t key_len,
                       const void *value, int32_t value_len, const struct batch_header_kv *headers,
                       int header_count);
/*
 * Adds a copy of a record read from another batch (batch_records_next):
 * same attributes, key, value and headers (copied as they are), same
 * offsetDelta, which must be larger than the last one added, so a batch
 * rebuilt without some of its records keeps every offset.  `timestamp`
 * is absolute; its delta is taken from the builder's base_timestamp.
 */
void batch_builder_add_record(struct batch_builder *b, int64_t timestamp,
                              const struct batch_record *rec);
/* Produces the batch (malloc'ed, CRC set).  0, or -1 on allocation or
 * compression failure.  The builder can then be freed. */
int batch_builder_finish(struct batch_builder *b, uint8_t **out, size_t *out_len);
void batch_builder_free(struct batch_builder *b);

/* Big-endian helpers shared by the storage files. */
static inline int16_t batch_be16(const uint8_t *p)
{
    return (int16_t)((uint16_t)p[0] << 8 | p[1]);
}
static inline int32_t batch_be32(const uint8_t *p)
{
    return (int32_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
}
static inline int64_t batch_be64(const uint8_t *p)
{
    return (int64_t)((uint64_t)(uint32_t)batch_be32(p) << 32 | (uint32_t)batch_be32(p + 4));
}
static inline void batch_put_be16(uint8_t *p, int16_t v)
{
    p[0] = (uint8_t)((uint16_t)v >> 8);
    p[1] = (uint8_t)v;
}
static inline void batch_put_be32(uint8_t *p, int32_t v)
{
    uint32_t u = (uint32_t)v;
    p[0] = (uint8_t)(u >> 24);
    p[1] = (uint8_t)(u >> 16);
    p[2] = (uint8_t)(u >> 8);
    p[3] = (uint8_t)u;
}
static inline void batch_put_be64(uint8_t *p, int64_t v)
{
    batch_put_be32(p, (int32_t)((uint64_t)v >> 32));
    batch_put_be32(p + 4, (int32_t)(uint64_t)v);
}

#endif
