/*
 * view: filtered view topics (docs/filtered-views.md).
 *
 * A view is a topic created with `view.source=<topic>` and
 * `view.filter=<expression>` (`view.filter.type` TAG or SQL92).  It has
 * no log of its own: its partitions are its source's (topics.h,
 * topic_read_partition), its offsets are the source's offsets, and a
 * Fetch of it sends only the source records the filter matches
 * (kafka/fetch_view.c).  Groups commit on the view's name as on any
 * topic.  Produce, DeleteRecords and CreatePartitions on a view are
 * refused; its source cannot be deleted while the view exists.
 *
 * This file holds a view's state beside its struct topic: the source,
 * the compiled filter (replaced whole when AlterConfigs changes it), and
 * per partition the spans of source offsets known to hold no matching
 * record.  Every fetch of the view adds what it scanned without a match;
 * spans that touch are merged, so one span grows as consumers move
 * through a non-matching stretch.  A fetch from inside a span starts
 * scanning at its end: a consumer that fetches the same offset again
 * (one that was not told to move, see fetch_view.c) continues where the
 * last fetch stopped instead of rescanning, which is what guarantees it
 * progress.  Spans stay valid because a log below its high watermark
 * only ever loses records (retention, compaction); a new filter clears
 * them.
 *
 * Locks: `mu` guards `filter` and the spans; it is a leaf (nothing else
 * is taken under it) and held for a binary search or a small memmove.  A
 * fetch holds a counted reference on the filter it works with, so
 * AlterConfigs never frees a filter in use.
 */
#ifndef RUNNEL_VIEW_H
#define RUNNEL_VIEW_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "broker/config.h"
#include "filter/filter.h"

struct topic;

#define VIEW_SOURCE_KEY "view.source"
#define VIEW_FILTER_KEY "view.filter"
#define VIEW_FILTER_TYPE_KEY "view.filter.type"

/* A compiled filter and its generation (spans are only valid for it). */
struct view_filter {
    atomic_int refs;
    uint64_t gen;
    struct filter *f;
};

/* [from, to) holds no record the current filter matches. */
struct view_span {
    int64_t from, to;
    uint64_t used; /* for dropping the least recently used when full */
};
/* A partition's spans: sorted, disjoint, never touching. */
struct view_spans {
    struct view_span *v;
    int n, cap;
};
/* Most spans kept per partition (24 KiB): only consumers parked in that
 * many different non-matching stretches of one partition could need more. */
#define VIEW_MAX_SPANS 1024

struct topic_view {
    struct topic *source; /* counted reference; NULL when missing (damaged metadata) */
    pthread_mutex_t mu;
    struct view_filter *filter; /* NULL only when the stored expression no longer compiles */
    uint64_t next_gen;
    struct view_spans *spans; /* per partition, grown on demand */
    int32_t n_parts;
    uint64_t clock;
};

struct topic_view *view_new(void);
/* Drops the source reference and the filter. */
void view_free(struct topic_view *v);

/*
 * Checks the view.* keys of a topic's overrides.  *is_view tells whether
 * they describe a view (view.source set).  For a view, only view.* keys
 * are allowed, view.filter is required, and it must compile: *out gets
 * the compiled filter (caller owns it, view_filter_put).  A plain topic
 * may not carry view.filter or view.filter.type.  Returns 0 or
 * KERR_INVALID_CONFIG with a message in err.
 */
int16_t view_check_overrides(const struct config_overrides *o, bool *is_view,
                             struct view_filter **out, char *err, size_t errlen);

/* Installs a new filter (taking the caller's reference) and forgets the
 * old one's spans. */
void view_set_filter(struct topic_view *v, struct view_filter *vf);
/* The current filter, referenced, or NULL. */
struct view_filter *view_filter_get(struct topic_view *v);
void view_filter_put(struct view_filter *vf);

/* Where a scan from `offset` can start: the end of the span holding it,
 * else offset.  Spans reaching past `hw` are dropped (the log was cut). */
int64_t view_skip(struct topic_view *v, int32_t part, int64_t offset, int64_t hw, uint64_t gen);
/* Records that [from, to) holds no match for filter generation gen (a
 * scan with an older filter is ignored). */
void view_note(struct topic_view *v, int32_t part, int64_t from, int64_t to, uint64_t gen);

#endif
