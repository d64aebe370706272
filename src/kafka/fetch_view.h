/*
 * fetch_view: the Fetch of a filtered view's partition (broker/view.h).
 *
 * Only fetch.c calls it, for partitions of topics that are views; plain
 * topics never come here and keep their zero-copy path.
 */
#ifndef RUNNEL_FETCH_VIEW_H
#define RUNNEL_FETCH_VIEW_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/topics.h"
#include "proto/gen/msgs.h"

/* What a view partition's fetch may do, and what it did. */
struct fetch_view_io {
    /* In. */
    int32_t limit; /* source bytes it may read (at least one batch when may_read) */
    bool may_read; /* false: watermarks only (the request's budget is spent) */
    bool marker;   /* READ_COMMITTED: close the answer with a marker batch */
    /* Out. */
    int64_t scanned; /* source bytes read, for the request's budget */
    bool more;       /* stopped before the high watermark: answer now */
};

/*
 * Fills `pr` (partition index and defaults already set) for partition
 * fp->partition of `view`: watermarks and errors as a plain partition's,
 * and records read from the source log from fp->fetch_offset, filtered
 * (filter/scan.h), held in memory that pr->records.release frees.  The
 * work is bounded by io->limit source bytes whatever the filter keeps.
 *
 * Returns the bytes that count toward the request's min_bytes: the
 * output when it holds a matching record, else 0, so a consumer that is
 * caught up waits (long poll) exactly as on an idle topic.  io->more
 * asks for an answer now even without a match: the scan stopped at its
 * limit, and the consumer should come back for the next stretch at once.
 */
int64_t fetch_view_partition(struct topic *view, const struct fetch_request_fetch_partition *fp,
                             struct fetch_response_partition_data *pr, struct fetch_view_io *io);

#endif
