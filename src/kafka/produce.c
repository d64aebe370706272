/*
 * Produce: validate and append each partition's batches, then answer.
 *
 * The append itself is synchronous on the network thread (a write into
 * the page cache under the partition's own mutex: no global lock).  When
 * a partition must be durable before the acknowledgement (flush.sync, or
 * flush.messages / flush.ms due), the request goes pending on the
 * flusher (group commit) and is answered when its fsyncs are done.
 *
 * acks=all in a cluster: a partition whose high watermark has not passed
 * the batch yet (followers have not fetched it) is watched like a fetch
 * watches, and the request is answered when every such partition is
 * acknowledged (partition_ack_check), the ISR shrank below
 * min.insync.replicas (NOT_ENOUGH_REPLICAS_AFTER_APPEND), the leadership
 * moved (NOT_LEADER_OR_FOLLOWER) or timeout_ms passed
 * (REQUEST_TIMED_OUT), and its fsyncs, if any, are done too.  With one
 * replica the high watermark passed at the append: nothing waits.
 */
#include <stdlib.h>
#include <string.h>

#include "broker/flusher.h"
#include "broker/partition.h"
#include "broker/topics.h"
#include "common/clock.h"
#include "delivery/delivery.h"
#include "common/kerr.h"
#include "kafka/handlers.h"
#include "net/server.h"
#include "proto/gen/msgs.h"

/* One partition of an acks=all produce waiting for its followers. */
struct ack_wait {
    struct partition *p;
    struct partition_waiter w;
    int32_t leader_epoch; /* the append's */
    int64_t end;          /* its last offset + 1 */
    int32_t min_isr;
    bool done;
    struct produce_response_partition_produce_response *pr;
};

struct produce_state {
    struct kreq *req;
    struct produce_response resp;
    struct topic **topics; /* references held until the answer */
    int n_topics;
    struct flush_wait fw;
    /* Which response partition each fw.parts[i] belongs to. */
    struct produce_response_partition_produce_response **fw_resp;
    struct loop_wake wake;
    bool flush_pending;
    /* acks=all waits (arena, only allocated when one is needed). */
    struct ack_wait *acks;
    int n_acks, acks_left;
    struct loop_wake ack_wake;
    struct loop_timer ack_timer;
};

static void release_topics(struct produce_state *st)
{
    for (int i = 0; i < st->n_topics; i++)
        topic_put(st->topics[i]);
    st->n_topics = 0;
}

/* Answers once the fsyncs and the acks=all waits are all done. */
static void produce_maybe_finish(struct produce_state *st)
{
    if (st->flush_pending || st->acks_left > 0)
        return;
    release_topics(st);
    produce_response_encode(&st->req->out, st->req->hdr.api_version, &st->resp);
    kreq_finish(st->req);
}

/* The flusher is done with our partitions (on the request's loop). */
static void produce_flushed(struct loop_wake *w)
{
    struct produce_state *st =
        (struct produce_state *)((char *)w - offsetof(struct produce_state, wake));
    for (int i = 0; i < st->fw.n; i++)
        if (st->fw.failed[i]) {
            st->fw_resp[i]->error_code = KERR_KAFKA_STORAGE_ERROR;
            st->fw_resp[i]->base_offset = -1;
        }
    st->flush_pending = false;
    produce_maybe_finish(st);
}

/* Looks at every waiting partition again (on the request's loop): true
 * when none waits any more.  A timeout answers those still waiting. */
static bool acks_recheck(struct produce_state *st, bool timed_out)
{
    for (int i = 0; i < st->n_acks; i++) {
        struct ack_wait *a = &st->acks[i];
        if (a->done)
            continue;
        bool wait;
        int16_t err = partition_ack_check(a->p, a->leader_epoch, a->end, a->min_isr, &wait);
        if (wait && !timed_out)
            continue;
        /* Kafka keeps the base offset of an append whose wait failed. */
        if (a->pr->error_code == KERR_NONE)
            a->pr->error_code = wait ? KERR_REQUEST_TIMED_OUT : err;
        a->done = true;
        st->acks_left--;
        partition_unwatch(a->p, &a->w);
    }
    if (st->acks_left > 0)
        return false;
    /* Every watch is gone: no wake can come after this takes back the
     * last one. */
    loop_unwake(&st->ack_wake);
    loop_timer_cancel(st->req->worker->loop, &st->ack_timer);
    return true;
}

static void produce_ack_woken(struct loop_wake *w)
{
    struct produce_state *st =
        (struct produce_state *)((char *)w - offsetof(struct produce_state, ack_wake));
    if (acks_recheck(st, false))
        produce_maybe_finish(st);
}

static void produce_ack_timeout(struct loop_timer *t)
{
    struct produce_state *st =
        (struct produce_state *)((char *)t - offsetof(struct produce_state, ack_timer));
    acks_recheck(st, true);
    produce_maybe_finish(st);
}

/* Effective min.insync.replicas: never more than the replicas there are
 * (Kafka's rule).  n_isr/n_replicas change under the partition's lock;
 * this read is only a snapshot. */
static int32_t min_isr_of(struct topic *t, struct partition *p)
{
    int32_t min = topic_settings(t)->min_insync_replicas;
    int32_t n = __atomic_load_n(&p->n_replicas, __ATOMIC_RELAXED);
    return n > 0 && n < min ? n : min;
}

/* acks=0 with a flush due: nobody waits, the flusher cleans up. */
struct detached_flush {
    struct flush_wait fw;
    struct topic **topics;
    int n_topics;
};

static void detached_done(struct flush_wait *fw)
{
    struct detached_flush *d = (struct detached_flush *)fw;
    for (int i = 0; i < d->n_topics; i++)
        topic_put(d->topics[i]);
    free(d);
}

static void submit_detached(struct produce_state *st)
{
    size_t sz = sizeof(struct detached_flush) + (size_t)st->fw.n * (sizeof(void *) + 1) +
                (size_t)st->n_topics * sizeof(void *);
    struct detached_flush *d = calloc(1, sz);
    if (!d) {
        release_topics(st);
        return;
    }
    d->fw.parts = (struct partition **)(d + 1);
    d->topics = (struct topic **)(d->fw.parts + st->fw.n);
    d->fw.failed = (bool *)(d->topics + st->n_topics);
    memcpy(d->fw.parts, st->fw.parts, (size_t)st->fw.n * sizeof(void *));
    memcpy(d->topics, st->topics, (size_t)st->n_topics * sizeof(void *));
    d->fw.n = st->fw.n;
    d->n_topics = st->n_topics;
    d->fw.on_detached_done = detached_done;
    st->n_topics = 0; /* the references now belong to d */
    flusher_submit(&d->fw);
}

/*
 * A partition of a topic that holds records back (docs/delivery.md).
 * Fills pr; true when something was appended to p, so that the flush
 * policy applies as for a plain append.
 */
static bool held_back(struct kreq *r, struct topic *t, struct partition *p,
                      struct produce_request_partition_produce_data *pd,
                      struct produce_response_partition_produce_response *pr, int64_t now)
{
    struct delivery_outcome o;
    delivery_produce(t, p, (uint8_t *)pd->records.ptr, (size_t)pd->records.len, now, &o);
    pr->error_code = o.error_code;
    pr->base_offset = o.error_code ? -1 : o.base_offset;
    pr->log_append_time_ms = o.log_append_time;
    pr->log_start_offset = o.log_start_offset;
    if (o.message[0]) {
        size_t n = strlen(o.message);
        char *m = arena_alloc(&r->arena, n + 1);
        if (m) {
            memcpy(m, o.message, n + 1);
            pr->error_message = (kstr_t){m, (int32_t)n};
            if (o.bad_record >= 0) {
                pr->record_errors = arena_alloc(&r->arena, sizeof *pr->record_errors);
                if (pr->record_errors) {
                    pr->record_errors_count = 1;
                    pr->record_errors[0].batch_index = o.bad_record;
                    pr->record_errors[0].batch_index_error_message = pr->error_message;
                }
            }
        }
    }
    return o.appended;
}

int handle_produce(struct kreq *r)
{
    struct produce_request req;
    if (!KREQ_DECODE(r, produce_request, &req))
        return KH_CLOSE;
    struct produce_state *st = arena_alloc(&r->arena, sizeof *st);
    if (!st)
        return KH_CLOSE;
    st->req = r;
    produce_response_init(&st->resp);
    int32_t nt = req.topic_data_count > 0 ? req.topic_data_count : 0;
    int total_parts = 0;
    for (int32_t i = 0; i < nt; i++)
        total_parts +=
            req.topic_data[i].partition_data_count > 0 ? req.topic_data[i].partition_data_count : 0;
    st->resp.responses = arena_alloc(&r->arena, (size_t)(nt ? nt : 1) * sizeof *st->resp.responses);
    st->topics = arena_alloc(&r->arena, (size_t)(nt ? nt : 1) * sizeof *st->topics);
    st->fw.parts = arena_alloc(&r->arena, (size_t)(total_parts ? total_parts : 1) * sizeof(void *));
    st->fw.failed = arena_alloc(&r->arena, (size_t)(total_parts ? total_parts : 1));
    st->fw_resp = arena_alloc(&r->arena, (size_t)(total_parts ? total_parts : 1) * sizeof(void *));
    if (!st->resp.responses || !st->topics || !st->fw.parts || !st->fw.failed || !st->fw_resp)
        return KH_CLOSE;
    st->resp.responses_count = nt;

    bool acks_ok = req.acks == 0 || req.acks == 1 || req.acks == -1;
    int64_t now = clock_wall_ms();
    for (int32_t i = 0; i < nt; i++) {
        struct produce_request_topic_produce_data *td = &req.topic_data[i];
        struct produce_response_topic_produce_response *tr = &st->resp.responses[i];
        produce_response_topic_produce_response_init(tr);
        tr->name = td->name;
        int32_t np = td->partition_data_count > 0 ? td->partition_data_count : 0;
        tr->partition_responses =
            arena_alloc(&r->arena, (size_t)(np ? np : 1) * sizeof *tr->partition_responses);
        if (!tr->partition_responses)
            return KH_CLOSE;
        tr->partition_responses_count = np;
        struct topic *t = NULL;
        int16_t terr = KERR_INVALID_REQUIRED_ACKS;
        if (acks_ok) {
            terr = td->name.len < 0
                       ? KERR_INVALID_TOPIC_EXCEPTION
                       : topics_get_or_create(td->name.ptr, (size_t)td->name.len, true, &t);
            if (t)
                st->topics[st->n_topics++] = t;
        }
        /* A filtered view takes no writes: one answer for its partitions. */
        const char *refusal = NULL;
        int16_t refused = t ? topic_write_refusal(t, &refusal) : 0;
        for (int32_t j = 0; j < np; j++) {
            struct produce_request_partition_produce_data *pd = &td->partition_data[j];
            struct produce_response_partition_produce_response *pr = &tr->partition_responses[j];
            produce_response_partition_produce_response_init(pr);
            pr->index = pd->index;
            pr->base_offset = -1;
            pr->log_append_time_ms = -1;
            pr->log_start_offset = -1;
            if (!t || refused) {
                pr->error_code = t ? refused : terr;
                pr->error_message = kstr_c(refusal);
                continue;
            }
            struct partition *p = topic_partition(t, pd->index);
            if (!p) {
                pr->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
                continue;
            }
            int32_t min_isr = req.acks == -1 ? min_isr_of(t, p) : 0;
            if (req.acks == -1 && __atomic_load_n(&p->n_isr, __ATOMIC_RELAXED) < min_isr) {
                /* Kafka's rule: acks=all needs that many replicas in sync. */
                pr->error_code = KERR_NOT_ENOUGH_REPLICAS;
                continue;
            }
            if (pd->records.len <= 0) {
                pr->error_code = KERR_INVALID_RECORD;
                continue;
            }
            if (delivery_wants(t)) {
                /* Delay, transaction and retry topics read every record. */
                if (!held_back(r, t, p, pd, pr, now))
                    continue;
            } else {
                partition_append_result_t res;
                int32_t epoch = -1;
                /* The frame is ours: the log rewrites offsets in place. */
                pr->error_code = partition_append_epoch(p, (uint8_t *)pd->records.ptr,
                                                        (size_t)pd->records.len, now, &res, &epoch);
                if (pr->error_code != KERR_NONE)
                    continue;
                pr->base_offset = res.base_offset;
                pr->log_append_time_ms = res.log_append_time;
                pr->log_start_offset = res.log_start_offset;
                /* Lock-free: with one replica the append moved it past. */
                if (req.acks == -1 && partition_hw(p) < res.last_offset + 1) {
                    if (!st->acks) {
                        st->acks = arena_alloc(&r->arena, (size_t)total_parts * sizeof *st->acks);
                        if (!st->acks)
                            return KH_CLOSE;
                    }
                    st->acks[st->n_acks++] = (struct ack_wait){.p = p,
                                                               .leader_epoch = epoch,
                                                               .end = res.last_offset + 1,
                                                               .min_isr = min_isr,
                                                               .pr = pr};
                } else if (req.acks == -1 &&
                           __atomic_load_n(&p->n_isr, __ATOMIC_RELAXED) < min_isr) {
                    /* Committed by an ISR that shrank below the minimum
                     * after the check above (Kafka's rule). */
                    pr->error_code = KERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND;
                }
            }
            const struct topic_settings *ts = topic_settings(t);
            bool due = ts->flush_sync;
            /* The default (no count or time flush) skips the check. */
            if (!due && (ts->log.flush_messages > 0 || ts->log.flush_ms >= 0))
                due = partition_flush_due(p, now);
            if (due) {
                st->fw_resp[st->fw.n] = pr;
                st->fw.parts[st->fw.n++] = p;
            }
        }
    }
    if (st->fw.n > 0 && req.acks == 0) {
        submit_detached(st);
        return KH_NORESP;
    }
    if (st->n_acks > 0) {
        /* Watch, then look again: an advance in between is not missed. */
        struct loop *loop = r->worker->loop;
        loop_wake_init(&st->ack_wake, loop, produce_ack_woken);
        loop_timer_init(&st->ack_timer, produce_ack_timeout);
        st->acks_left = st->n_acks;
        for (int i = 0; i < st->n_acks; i++) {
            st->acks[i].w.wake = &st->ack_wake;
            partition_watch(st->acks[i].p, &st->acks[i].w);
        }
        if (!acks_recheck(st, false))
            loop_timer_arm(loop, &st->ack_timer,
                           clock_mono_ms() + (req.timeout_ms > 0 ? req.timeout_ms : 0));
    }
    if (st->fw.n > 0) {
        loop_wake_init(&st->wake, r->worker->loop, produce_flushed);
        st->fw.wake = &st->wake;
        st->flush_pending = true;
        flusher_submit(&st->fw);
    }
    if (st->flush_pending || st->acks_left > 0)
        return KH_PENDING;
    release_topics(st);
    if (req.acks == 0)
        return KH_NORESP;
    produce_response_encode(&r->out, r->hdr.api_version, &st->resp);
    return KH_DONE;
}
