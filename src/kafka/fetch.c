/*
 * Fetch: record data straight from the segment files.
 *
 * Each partition's answer is a file range (storage/plog.h) that the
 * connection sends with sendfile, so record bytes never pass through
 * user space.  When fewer than min_bytes are available the request waits
 * (long poll): it watches every partition it asked for and is woken by
 * the first append to any of them, or by its max_wait_ms timer,
 * whichever comes first.  Watches are registered before the second look
 * at the logs, so an append between the two looks is never missed.
 *
 * Fetch sessions (KIP-227) are not kept: every answer says session 0,
 * which tells a client to go on sending full fetch requests.
 *
 * A filtered view's partitions (broker/view.h) take the one branch to
 * fetch_view.c: their records are read, filtered and sent from memory,
 * and they count toward min_bytes only once something matched.  Their
 * waits watch the source partition.  Plain topics never take it.
 */
#include <string.h>

#include "broker/topics.h"
#include "common/clock.h"
#include "common/kerr.h"
#include "kafka/fetch_view.h"
#include "kafka/handlers.h"
#include "net/server.h"
#include "proto/gen/msgs.h"

struct fetch_state {
    struct kreq *req;
    struct fetch_request q;
    struct topic **topics; /* per request topic, NULL when unknown */
    struct partition_waiter *waiters;
    struct partition **watched; /* the partition of each waiter */
    int n_waiters;
    struct loop_wake wake;
    struct loop_timer timer;
    struct fetch_response resp;
    enum partition_reader reader; /* from replica_id */
    enum partition_isolation isolation;
    bool any_view;  /* some records may be in memory (fetch_view.c) */
    bool view_more; /* a view partition has more to scan: answer now */
    bool diverged;  /* a follower must truncate first: answer now */
};

/* Drops the records found: file ranges unless `memory_only`, and the
 * in-memory records of views. */
static void release_records(struct fetch_state *st, bool memory_only)
{
    for (int32_t i = 0; i < st->resp.responses_count; i++) {
        struct fetch_response_fetchable_topic_response *tr = &st->resp.responses[i];
        for (int32_t j = 0; j < tr->partitions_count; j++) {
            krecords_t *rec = &tr->partitions[j].records;
            if (rec->release && (rec->fd < 0 || !memory_only))
                rec->release(rec->release_arg);
            rec->fd = -1;
            rec->release = NULL;
        }
    }
}

static void release_ranges(struct fetch_state *st)
{
    release_records(st, false);
}

/* Reads every partition; returns the record bytes found. */
static int64_t fetch_collect(struct fetch_state *st)
{
    struct fetch_request *q = &st->q;
    int64_t total = 0;
    st->view_more = false;
    st->diverged = false;
    int64_t budget = q->max_bytes > 0 ? q->max_bytes : INT32_MAX;
    /* Only a follower's read uses it (its fetch time): once per pass. */
    int64_t now_ms = st->reader == PARTITION_READER_FOLLOWER ? clock_wall_ms() : 0;
    for (int32_t i = 0; i < q->topics_count; i++) {
        struct fetch_request_fetch_topic *ft = &q->topics[i];
        struct fetch_response_fetchable_topic_response *tr = &st->resp.responses[i];
        struct topic *t = st->topics[i];
        for (int32_t j = 0; j < ft->partitions_count; j++) {
            struct fetch_request_fetch_partition *fp = &ft->partitions[j];
            struct fetch_response_partition_data *pr = &tr->partitions[j];
            fetch_response_partition_data_init(pr);
            pr->partition_index = fp->partition;
            pr->aborted_transactions_count = -1;
            pr->records = (krecords_t){.ptr = NULL, .len = 0, .fd = -1};
            if (t && topic_is_view(t)) {
                struct fetch_view_io io = {.limit = fp->partition_max_bytes,
                                           .marker = st->isolation == PARTITION_READ_COMMITTED};
                if (io.limit > budget)
                    io.limit = (int32_t)budget;
                io.may_read = io.limit > 0 || total == 0;
                total += fetch_view_partition(t, fp, pr, &io);
                budget -= io.scanned;
                st->view_more |= io.more;
                continue;
            }
            struct partition *p = t ? topic_partition(t, fp->partition) : NULL;
            if (!p) {
                pr->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
                pr->high_watermark = pr->last_stable_offset = pr->log_start_offset = -1;
                continue;
            }
            int32_t limit = fp->partition_max_bytes;
            if (limit > budget)
                limit = (int32_t)budget;
            /* Once the budget is spent, only the offsets; but the first
             * records found get through, however large their batch. */
            if (limit <= 0)
                limit = total == 0 ? 1 : 0;
            struct partition_read rd = {
                .offset = fp->fetch_offset,
                .max_bytes = limit,
                .max_offset = -1,
                .current_leader_epoch = fp->current_leader_epoch,
                .reader = st->reader,
                .isolation = st->isolation,
                .replica_id = q->replica_id,
                .last_fetched_epoch = st->req->hdr.api_version >= 12 ? fp->last_fetched_epoch : -1,
                .now_ms = now_ms,
            };
            pr->error_code = partition_read(p, &rd);
            if (rd.diverging_epoch >= 0) {
                /* The follower truncates to this before fetching on. */
                pr->diverging_epoch.epoch = rd.diverging_epoch;
                pr->diverging_epoch.end_offset = rd.diverging_end_offset;
                st->diverged = true;
            }
            if (rd.high_watermark >= 0) {
                pr->high_watermark = rd.high_watermark;
                pr->last_stable_offset = rd.last_stable_offset;
                pr->log_start_offset = rd.log_start_offset;
            }
            if (pr->error_code != KERR_NONE)
                continue;
            if (rd.fd >= 0 && rd.len > 0) {
                pr->records.fd = rd.fd;
                pr->records.file_off = rd.file_pos;
                pr->records.len = rd.len;
                pr->records.release = partition_range_release;
                pr->records.release_arg = rd.ref;
                total += rd.len;
                budget -= rd.len;
            } else if (rd.ref) {
                partition_range_release(rd.ref);
            }
        }
    }
    return total;
}

static void fetch_cleanup(struct fetch_state *st)
{
    /* Unwatch first: after this no append can wake us, so the unwake
     * below takes back the last possible wake. */
    for (int i = 0; i < st->n_waiters; i++)
        partition_unwatch(st->watched[i], &st->waiters[i]);
    st->n_waiters = 0;
    loop_unwake(&st->wake);
    loop_timer_cancel(st->req->worker->loop, &st->timer);
    for (int32_t i = 0; i < st->q.topics_count; i++)
        topic_put(st->topics[i]);
    st->q.topics_count = 0;
}

static void fetch_respond(struct fetch_state *st)
{
    /* Ownership of the ranges passes to the response writer; records in
     * memory (views) were copied into the response. */
    fetch_response_encode(&st->req->out, st->req->hdr.api_version, &st->resp);
    if (st->any_view)
        release_records(st, true);
    st->resp.responses_count = 0;
}

/* Woken by an append or by the timer: look again. */
static void fetch_recheck(struct fetch_state *st, bool timed_out)
{
    int64_t got = fetch_collect(st);
    if (got >= st->q.min_bytes || st->view_more || st->diverged || timed_out) {
        fetch_respond(st);
        fetch_cleanup(st);
        kreq_finish(st->req);
        return;
    }
    release_ranges(st);
}

static void fetch_woken(struct loop_wake *w)
{
    fetch_recheck((struct fetch_state *)((char *)w - offsetof(struct fetch_state, wake)), false);
}

static void fetch_timeout(struct loop_timer *t)
{
    fetch_recheck((struct fetch_state *)((char *)t - offsetof(struct fetch_state, timer)), true);
}

static void fetch_cancel(struct kreq *r)
{
    struct fetch_state *st = r->state;
    release_ranges(st);
    fetch_cleanup(st);
}

int handle_fetch(struct kreq *r)
{
    struct fetch_state *st = arena_alloc(&r->arena, sizeof *st);
    if (!st || !KREQ_DECODE(r, fetch_request, &st->q))
        return KH_CLOSE;
    st->req = r;
    struct fetch_request *q = &st->q;
    st->reader = partition_reader_of(q->replica_id);
    st->isolation = q->isolation_level == 1 ? PARTITION_READ_COMMITTED : PARTITION_READ_UNCOMMITTED;
    if (q->topics_count < 0)
        q->topics_count = 0;
    fetch_response_init(&st->resp);
    st->resp.session_id = 0;
    int32_t nt = q->topics_count;
    st->topics = arena_alloc(&r->arena, (size_t)(nt ? nt : 1) * sizeof *st->topics);
    st->resp.responses = arena_alloc(&r->arena, (size_t)(nt ? nt : 1) * sizeof *st->resp.responses);
    if (!st->topics || !st->resp.responses)
        return KH_CLOSE;
    st->resp.responses_count = nt;
    int total_parts = 0;
    for (int32_t i = 0; i < nt; i++) {
        struct fetch_request_fetch_topic *ft = &q->topics[i];
        if (ft->partitions_count < 0)
            ft->partitions_count = 0;
        struct fetch_response_fetchable_topic_response *tr = &st->resp.responses[i];
        fetch_response_fetchable_topic_response_init(tr);
        tr->topic = ft->topic;
        tr->partitions =
            arena_alloc(&r->arena, (size_t)(ft->partitions_count ? ft->partitions_count : 1) *
                                       sizeof *tr->partitions);
        if (!tr->partitions)
            return KH_CLOSE;
        tr->partitions_count = ft->partitions_count;
        total_parts += ft->partitions_count;
        st->topics[i] = ft->topic.len > 0 ? topics_get(ft->topic.ptr, (size_t)ft->topic.len) : NULL;
        st->any_view |= st->topics[i] && topic_is_view(st->topics[i]);
    }
    int64_t got = fetch_collect(st);
    if (got >= q->min_bytes || st->view_more || st->diverged || q->max_wait_ms <= 0 ||
        total_parts == 0) {
        fetch_respond(st);
        for (int32_t i = 0; i < nt; i++)
            topic_put(st->topics[i]);
        return KH_DONE;
    }
    release_ranges(st);
    /* Long poll: watch, then look once more before sleeping. */
    struct loop *loop = r->worker->loop;
    loop_wake_init(&st->wake, loop, fetch_woken);
    loop_timer_init(&st->timer, fetch_timeout);
    st->waiters = arena_alloc(&r->arena, (size_t)total_parts * sizeof *st->waiters);
    st->watched = arena_alloc(&r->arena, (size_t)total_parts * sizeof *st->watched);
    if (!st->waiters || !st->watched) {
        for (int32_t i = 0; i < nt; i++)
            topic_put(st->topics[i]);
        return KH_CLOSE;
    }
    for (int32_t i = 0; i < nt; i++) {
        if (!st->topics[i])
            continue;
        for (int32_t j = 0; j < q->topics[i].partitions_count; j++) {
            /* A view waits on its source's partition. */
            struct partition *p =
                topic_read_partition(st->topics[i], q->topics[i].partitions[j].partition);
            if (!p)
                continue;
            st->watched[st->n_waiters] = p;
            struct partition_waiter *w = &st->waiters[st->n_waiters++];
            w->wake = &st->wake;
            partition_watch(p, w);
        }
    }
    r->state = st;
    r->cancel = fetch_cancel;
    got = fetch_collect(st);
    if (got >= q->min_bytes || st->view_more || st->diverged) {
        fetch_respond(st);
        fetch_cleanup(st);
        r->cancel = NULL;
        return KH_DONE;
    }
    release_ranges(st);
    loop_timer_arm(loop, &st->timer, clock_mono_ms() + q->max_wait_ms);
    return KH_PENDING;
}
