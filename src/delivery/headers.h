/*
 * headers: the runnel-* control headers of a record (docs/delivery.md),
 * and rewriting a record's header section.
 */
#ifndef RUNNEL_DELIVERY_HEADERS_H
#define RUNNEL_DELIVERY_HEADERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/kbuf.h"
#include "storage/batch.h"

#define HDR_DELAY_MS "runnel-delay-ms"
#define HDR_DELIVER_AT_MS "runnel-deliver-at-ms"
#define HDR_DELAY_LEVEL "runnel-delay-level"
#define HDR_TXN "runnel-txn"
#define HDR_TXN_ID "runnel-txn-id"
#define HDR_PRODUCER_GROUP "runnel-producer-group"
#define HDR_TXN_TOPIC "runnel-txn-topic"
#define HDR_TXN_PARTITION "runnel-txn-partition"
#define HDR_TXN_CHECK "runnel-txn-check"
#define HDR_RETRY_COUNT "runnel-retry-count"
#define HDR_RETRY_FIRST_MS "runnel-retry-first-ms"
#define HDR_REDRIVE "runnel-redrive"
#define HDR_DLQ_REASON "runnel-dlq-reason"
#define HDR_DLQ_AT_MS "runnel-dlq-at-ms"

/* A header value: present or not, and its bytes (NULL when null). */
struct ctl_value {
    bool present;
    const uint8_t *v;
    int32_t len; /* -1 when null */
};

struct ctl_headers {
    struct ctl_value delay_ms, deliver_at_ms, delay_level;
    struct ctl_value txn, txn_id, producer_group;
    struct ctl_value retry_count, retry_first_ms, redrive;
    int delay_headers; /* how many of the three delay keys appeared (with repeats) */
};

/* Finds the control headers of a record (for a repeated key the last one
 * counts; delay_headers counts every delay key).  0, or PLOG_ERR_INVALID
 * on a malformed header section. */
int ctl_headers_read(const struct batch_record *rec, struct ctl_headers *out);

/* A non-negative decimal of at most 18 digits: 0 with *v, or -1. */
int ctl_decimal(const struct ctl_value *cv, int64_t *v);

/* True when the value is exactly the text s. */
bool ctl_is(const struct ctl_value *cv, const char *s);

/* Builds a record-format header section: w.buf[0..w.len), count headers;
 * w.err set when memory ran out.  A zeroed builder is ready. */
struct hdr_builder {
    kw_t w;
    int32_t count;
};
/* Copies headers [p, end) except those whose key is in `drop` (NULL-ended). */
void hdr_builder_copy(struct hdr_builder *b, const uint8_t *p, const uint8_t *end,
                      const char *const *drop);
void hdr_builder_add(struct hdr_builder *b, const char *key, const void *value, int32_t value_len);
void hdr_builder_add_i64(struct hdr_builder *b, const char *key, int64_t v);
void hdr_builder_free(struct hdr_builder *b);

#endif
