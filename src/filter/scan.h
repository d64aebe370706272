/*
 * scan: a filter applied to stored record batches, for a view's Fetch.
 *
 * The source partition's batches are fed in log order (filter_scan_feed,
 * any number of times, each call with whole batches as partition_read returns
 * them); the output is record batches a Kafka consumer reads as it reads
 * a compacted log:
 *
 *   - a batch whose records all match (and are at or after the fetch
 *     offset) is copied as it is, compressed or not;
 *   - a batch with some matches is rebuilt with only those records, each
 *     keeping its offset delta and timestamp, under the same base
 *     offset, codec, attributes and lastOffsetDelta, so a consumer that
 *     honours lastOffsetDelta steps past its trailing non-matching
 *     records;
 *   - a batch without a match, and every control batch (transaction
 *     markers; the broker has no transactions yet), is left out: the
 *     offsets it held are a gap, as after compaction;
 *   - filter_scan_finish(marker) can end the output with a transaction
 *     marker (a control batch holding one COMMIT record) that covers
 *     every offset examined after the last batch sent, its record at the
 *     last of them: a consumer then moves past a non-matching stretch
 *     even when nothing in it was sent.  Consumers skip such markers
 *     without showing them: librdkafka and the Java client by the batch's
 *     last offset, kafkajs by the marker record's offset.  Only
 *     READ_COMMITTED consumers get it (fetch_view.c says why).
 *
 * Nothing here trusts the bytes: framing and records are checked as they
 * are read (batch.c), and bad data ends the scan with PLOG_ERR_CORRUPT.
 *
 * Threads: a scan belongs to one caller; the filter may be shared.
 */
#ifndef RUNNEL_FILTER_SCAN_H
#define RUNNEL_FILTER_SCAN_H

#include <stddef.h>
#include <stdint.h>

#include "filter/filter.h"

struct batch_record;

struct filter_scan {
    /* In. */
    const struct filter *f;
    int64_t fetch_offset; /* records below it are never sent */
    /* Out: the batches to send (malloc'ed; the caller frees `out`). */
    uint8_t *out;
    size_t out_len, out_cap;
    int64_t next_offset;  /* one past the last source offset examined */
    int64_t covered;      /* one past the last offset inside a batch sent */
    int64_t first_sent;   /* offset of the first record sent; -1 none */
    int64_t records_read; /* records examined */
    int64_t records_sent; /* records sent */
    size_t marker_bytes;  /* size of the closing marker batch (0 none) */
    /* Scratch, reused across batches. */
    struct batch_record *recs;
    size_t n_recs, cap_recs;
    int32_t last_epoch;
    int64_t last_max_ts;
};

void filter_scan_init(struct filter_scan *s, const struct filter *f, int64_t fetch_offset);
/* Filters the whole batches in buf[0..len).  PLOG_OK, PLOG_ERR_CORRUPT
 * (bad framing or records) or PLOG_ERR_IO (out of memory). */
int filter_scan_feed(struct filter_scan *s, const uint8_t *buf, size_t len);
/* With `marker`, appends the marker batch over [covered, next_offset)
 * when that is not empty.  PLOG_OK or PLOG_ERR_IO. */
int filter_scan_finish(struct filter_scan *s, bool marker);
/* Frees the scratch (not `out`, which the caller now owns). */
void filter_scan_release(struct filter_scan *s);

/* True when the record's headers make the filter match.  Header keys the
 * filter does not name are skipped; of repeated keys the last counts
 * (Kafka's Headers.lastHeader). */
bool filter_match_record(const struct filter *f, const struct batch_record *rec);

#endif
