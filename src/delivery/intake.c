/*
 * intake: what produce does with the records of a delay, transaction or
 * mixed topic, or of a retry topic (docs/delivery.md).
 *
 * Two passes over the partition's batches.  The first decides each
 * record's fate and checks every rule, storing nothing, so a bad header
 * rejects the whole batch with nothing kept (as Kafka's INVALID_RECORD
 * does).  The second acts: records that go to the log now are appended
 * as one batch (the producer's own batch, untouched, when nothing was
 * held back), the others go to the timer store, to the dead-letter topic,
 * or resolve a half message.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rlog.h"
#include "delivery/delivery_int.h"
#include "delivery/headers.h"
#include "common/kerr.h"

enum fate {
    FATE_APPEND,   /* to the log now */
    FATE_DELAY,    /* timer store until due */
    FATE_HALF,     /* timer store until commit, rollback or check-back */
    FATE_COMMIT,   /* releases a half message; not stored itself */
    FATE_ROLLBACK, /* discards a half message; not stored itself */
    FATE_RETRY,    /* retry topic: held for the backoff of its attempt */
    FATE_DLQ,      /* retry topic: attempts exhausted, to the dead-letter topic */
    FATE_REDRIVE,  /* retry topic: a re-driven dead letter, to the log now */
};

struct plan {
    enum fate fate;
    int64_t due_ms;
    int64_t retry_count; /* runnel-retry-count as received */
};

#define TXN_ID_MAX 255

static int fail(struct delivery_outcome *out, int16_t code, int32_t record, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(struct delivery_outcome *out, int16_t code, int32_t record, const char *fmt, ...)
{
    out->error_code = code;
    out->bad_record = record;
    int n = record >= 0 ? snprintf(out->message, sizeof out->message, "record %d: ", record) : 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->message + n, sizeof out->message - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static bool group_name_ok(const struct ctl_value *v)
{
    char name[512];
    return v->v && v->len > 0 &&
           systopic_name(SYSTOPIC_CHECK, (const char *)v->v, (size_t)v->len, name, sizeof name) > 0;
}

static int plan_delay(const struct ctl_headers *c, int64_t now, int32_t idx, struct plan *pl,
                      struct delivery_outcome *out)
{
    if (c->delay_headers > 1)
        return fail(out, KERR_INVALID_RECORD, idx,
                    "more than one of " HDR_DELAY_MS ", " HDR_DELIVER_AT_MS ", " HDR_DELAY_LEVEL);
    int64_t v, due;
    if (c->delay_ms.present) {
        if (ctl_decimal(&c->delay_ms, &v))
            return fail(out, KERR_INVALID_RECORD, idx,
                        HDR_DELAY_MS " must be a non-negative decimal number");
        due = v > dv.delay_max_ms ? INT64_MAX : now + v;
    } else if (c->deliver_at_ms.present) {
        if (ctl_decimal(&c->deliver_at_ms, &due))
            return fail(out, KERR_INVALID_RECORD, idx,
                        HDR_DELIVER_AT_MS " must be a non-negative decimal number (Unix ms)");
    } else {
        if (ctl_decimal(&c->delay_level, &v) || v < 1 || v > dv.n_levels)
            return fail(out, KERR_INVALID_RECORD, idx,
                        "unknown " HDR_DELAY_LEVEL " (levels are 1 to %d)", dv.n_levels);
        due = now + dv.levels_ms[v - 1];
    }
    if (due > now && due - now > dv.delay_max_ms)
        return fail(out, KERR_INVALID_RECORD, idx, "delay beyond delay.max.ms (%" PRId64 " ms)",
                    dv.delay_max_ms);
    pl->fate = due > now ? FATE_DELAY : FATE_APPEND;
    pl->due_ms = due;
    return 0;
}

static int plan_txn(struct topic *t, const struct ctl_headers *c, int32_t idx, struct plan *pl,
                    struct delivery_outcome *out)
{
    const struct ctl_value *id = &c->txn_id;
    if (!id->present || !id->v || id->len < 1 || id->len > TXN_ID_MAX)
        return fail(out, KERR_INVALID_RECORD, idx, HDR_TXN_ID " must be 1 to %d bytes", TXN_ID_MAX);
    if (ctl_is(&c->txn, "half")) {
        if (!c->producer_group.present || !group_name_ok(&c->producer_group))
            return fail(out, KERR_INVALID_RECORD, idx,
                        "a half message needs " HDR_PRODUCER_GROUP
                        " (1-240 characters of [a-zA-Z0-9._-])");
        enum timer_state st;
        if (timer_store_half_state(dv.ts, t->name, strlen(t->name), id->v, (size_t)id->len, &st) ==
            0)
            return fail(out, KERR_INVALID_RECORD, idx,
                        HDR_TXN_ID " '%.*s' is already used in this topic", id->len,
                        (const char *)id->v);
        pl->fate = FATE_HALF;
        return 0;
    }
    bool commit = ctl_is(&c->txn, "commit");
    if (!commit && !ctl_is(&c->txn, "rollback"))
        return fail(out, KERR_INVALID_RECORD, idx, HDR_TXN " must be half, commit or rollback");
    enum timer_state st;
    if (timer_store_half_state(dv.ts, t->name, strlen(t->name), id->v, (size_t)id->len, &st))
        return fail(out, KERR_INVALID_RECORD, idx, "unknown half message '%.*s'", id->len,
                    (const char *)id->v);
    if ((commit && st == TIMER_DISCARDED) || (!commit && st == TIMER_DONE))
        return fail(out, KERR_INVALID_RECORD, idx, "half message '%.*s' was already %s", id->len,
                    (const char *)id->v, commit ? "rolled back or discarded" : "committed");
    pl->fate = commit ? FATE_COMMIT : FATE_ROLLBACK;
    return 0;
}

static int plan_retry(struct topic *t, const struct ctl_headers *c, int64_t now, int32_t idx,
                      struct plan *pl, struct delivery_outcome *out)
{
    if (c->redrive.present) {
        pl->fate = FATE_REDRIVE;
        return 0;
    }
    int64_t n = 0;
    if (c->retry_count.present && ctl_decimal(&c->retry_count, &n))
        return fail(out, KERR_INVALID_RECORD, idx,
                    HDR_RETRY_COUNT " must be a non-negative decimal number");
    pl->retry_count = n;
    /* One snapshot: the count and the schedule must agree. */
    const struct topic_settings *ts = topic_settings(t);
    if (n >= ts->retry_max_attempts) {
        pl->fate = FATE_DLQ;
        return 0;
    }
    int steps = ts->retry_backoff_n;
    pl->fate = FATE_RETRY;
    pl->due_ms = now + ts->retry_backoff_ms[n < steps ? n : steps - 1];
    return 0;
}

static int plan_record(struct topic *t, const struct batch_record *rec, int64_t now, int32_t idx,
                       struct plan *pl, struct delivery_outcome *out)
{
    struct ctl_headers c;
    pl->fate = FATE_APPEND;
    if (ctl_headers_read(rec, &c))
        return fail(out, KERR_INVALID_RECORD, idx, "malformed headers");
    if (t->systopic == SYSTOPIC_RETRY)
        return plan_retry(t, &c, now, idx, pl, out);
    uint8_t message_type = topic_settings(t)->message_type;
    bool delay = (message_type & MSG_TYPE_DELAY) && c.delay_headers > 0;
    bool txn = (message_type & MSG_TYPE_TRANSACTION) && c.txn.present;
    if (delay && txn)
        return fail(out, KERR_INVALID_RECORD, idx,
                    "a record cannot be both delayed and a half message");
    if (txn)
        return plan_txn(t, &c, idx, pl, out);
    if (delay)
        return plan_delay(&c, now, idx, pl, out);
    return 0;
}

/* Calls fn for every record of every batch in [buf, buf+len). */
typedef int (*record_fn)(void *arg, const struct batch_hdr *h, const struct batch_record *rec,
                         int32_t idx);
/* Called after each batch's records, while they are still readable. */
typedef int (*batch_end_fn)(void *arg);

static int for_each_record(uint8_t *buf, size_t len, record_fn fn, batch_end_fn end, void *arg)
{
    int32_t idx = 0;
    for (size_t off = 0; off < len;) {
        struct batch_hdr h;
        if (batch_parse_header(buf + off, len - off, INT32_MAX, &h) != PLOG_OK)
            return -1; /* validated before: cannot happen */
        struct batch_records rs;
        if (batch_records_begin(buf + off, &h, &rs))
            return -1;
        struct batch_record rec;
        int rc;
        bool stop = false;
        while (!stop && (rc = batch_records_next(&rs, &rec)) == 1)
            stop = fn(arg, &h, &rec, idx++) != 0;
        /* Even after a failure: what was queued was already decided. */
        if (end && end(arg))
            stop = true;
        batch_records_end(&rs);
        if (stop)
            return 1;
        if (rc < 0)
            return -1;
        off += (size_t)batch_size(&h);
    }
    return 0;
}

struct intake {
    struct topic *t;
    struct partition *p;
    int64_t now;
    struct delivery_outcome *out;
    struct plan *plans;
    int32_t n_plans;
    bool held;         /* anything but FATE_APPEND */
    int64_t first_due; /* earliest due time added to the store */
    int first_codec;   /* of the first batch: the rebuilt batch keeps it */
    int64_t first_base_ts;
    struct batch_builder now_b; /* records for p now */
    struct batch_builder dlq_b; /* records for the dead-letter topic */
    int32_t now_n, dlq_n;
    /* Delayed and retry entries of the current batch, added to the store
     * in one write at the batch's end (their bytes live until then). */
    struct timer_entry_in *pend;
    struct hdr_builder *pend_hb; /* rewritten headers they point into */
    int n_pend, cap_pend;
    /* First pass: the current batch's last offsetDelta, seen and announced. */
    int32_t last_delta, want_last_delta;
};

static int plan_one(void *arg, const struct batch_hdr *h, const struct batch_record *rec,
                    int32_t idx)
{
    struct intake *in = arg;
    if (idx == 0) {
        in->first_codec = batch_codec(h);
        in->first_base_ts = h->base_timestamp;
    }
    if (idx >= in->n_plans)
        return fail(in->out, KERR_INVALID_RECORD, idx, "more records than the batch header says");
    in->last_delta = rec->offset_delta;
    in->want_last_delta = h->last_offset_delta;
    if (plan_record(in->t, rec, in->now, idx, &in->plans[idx], in->out))
        return 1;
    if (in->plans[idx].fate != FATE_APPEND)
        in->held = true;
    return 0;
}

/* The one check of batch_validate that iterating the records leaves. */
static int plan_batch_end(void *arg)
{
    struct intake *in = arg;
    bool bad = !in->out->error_code && in->last_delta != in->want_last_delta;
    in->last_delta = in->want_last_delta = -1;
    return bad ? fail(in->out, KERR_INVALID_RECORD, -1, "malformed records") : 0;
}

static void add_now(struct batch_builder *b, int32_t *n, int64_t ts, const struct batch_record *rec,
                    const struct hdr_builder *hb)
{
    struct batch_record r = *rec;
    r.offset_delta = (*n)++;
    if (hb) {
        r.headers = hb->w.buf;
        r.headers_end = hb->w.buf + hb->w.len;
        r.header_count = hb->count;
    }
    batch_builder_add_record(b, ts, &r);
}

static int flush_pending(void *arg)
{
    struct intake *in = arg;
    int rc = in->n_pend ? timer_store_add_many(dv.ts, in->pend, in->n_pend, NULL) : 0;
    for (int i = 0; i < in->n_pend; i++) {
        if (in->pend[i].due_ms < in->first_due)
            in->first_due = in->pend[i].due_ms;
        hdr_builder_free(&in->pend_hb[i]);
    }
    in->n_pend = 0;
    if (rc)
        return fail(in->out, KERR_KAFKA_STORAGE_ERROR, -1, "timer store: %s", strerror(-rc));
    return 0;
}

/* Queues a delayed or retry entry; takes over *hb (when given). */
static int queue_entry(struct intake *in, const struct timer_entry_in *e, struct hdr_builder *hb)
{
    if (in->n_pend == in->cap_pend) {
        int cap = in->cap_pend ? 2 * in->cap_pend : 64;
        struct timer_entry_in *np = realloc(in->pend, (size_t)cap * sizeof *np);
        if (np)
            in->pend = np;
        struct hdr_builder *nh = realloc(in->pend_hb, (size_t)cap * sizeof *nh);
        if (nh)
            in->pend_hb = nh;
        if (!np || !nh)
            return fail(in->out, KERR_UNKNOWN_SERVER_ERROR, -1, "out of memory");
        in->cap_pend = cap;
    }
    in->pend[in->n_pend] = *e;
    in->pend_hb[in->n_pend] = hb ? *hb : (struct hdr_builder){0};
    if (hb)
        *hb = (struct hdr_builder){0};
    in->n_pend++;
    return 0;
}

static int store_entry(struct intake *in, enum timer_kind kind, int64_t due, int64_t ts,
                       const struct batch_record *rec, struct hdr_builder *hb,
                       const struct ctl_headers *c, int32_t idx)
{
    struct timer_entry_in e = {
        .kind = kind,
        .due_ms = due,
        .created_ms = in->now,
        .topic = in->t->name,
        .topic_len = strlen(in->t->name),
        .partition = in->p->index,
        .timestamp = ts,
        .key = rec->key,
        .key_len = rec->key ? rec->key_len : -1,
        .value = rec->value,
        .value_len = rec->value ? rec->value_len : -1,
        .header_count = hb ? hb->count : rec->header_count,
        .headers = hb ? hb->w.buf : rec->headers,
        .headers_len = hb ? hb->w.len : (size_t)(rec->headers_end - rec->headers),
    };
    if (kind != TIMER_HALF)
        return queue_entry(in, &e, hb);
    e.producer_group = (const char *)c->producer_group.v;
    e.producer_group_len = (size_t)c->producer_group.len;
    e.txn_id = c->txn_id.v;
    e.txn_id_len = (size_t)c->txn_id.len;
    uint64_t id;
    int rc = timer_store_add(dv.ts, &e, &id);
    if (rc == -EEXIST)
        return fail(in->out, KERR_INVALID_RECORD, idx, HDR_TXN_ID " '%.*s' is already used",
                    c->txn_id.len, (const char *)c->txn_id.v);
    if (rc)
        return fail(in->out, KERR_KAFKA_STORAGE_ERROR, idx, "timer store: %s", strerror(-rc));
    if (due < in->first_due)
        in->first_due = due;
    return 0;
}

static int resolve_half(struct intake *in, const struct ctl_headers *c, bool commit, int32_t idx)
{
    struct timer_entry e;
    enum timer_state st;
    int rc = timer_store_claim_half(dv.ts, in->t->name, strlen(in->t->name), c->txn_id.v,
                                    (size_t)c->txn_id.len, &e, &st);
    if (rc == -EALREADY) {
        if (st == (commit ? TIMER_DONE : TIMER_DISCARDED))
            return 0; /* the same decision again: nothing to do */
        if (st == TIMER_PENDING)
            return fail(in->out, KERR_INVALID_RECORD, idx,
                        "half message '%.*s' is being resolved by another request", c->txn_id.len,
                        (const char *)c->txn_id.v);
        return fail(in->out, KERR_INVALID_RECORD, idx, "half message '%.*s' was already %s",
                    c->txn_id.len, (const char *)c->txn_id.v,
                    commit ? "rolled back or discarded" : "committed");
    }
    if (rc)
        return fail(in->out, KERR_INVALID_RECORD, idx, "unknown half message '%.*s'", c->txn_id.len,
                    (const char *)c->txn_id.v);
    if (!commit) {
        rc = timer_store_mark(dv.ts, &e.id, 1, TIMER_DISCARDED);
        timer_entry_free(&e);
        return rc ? fail(in->out, KERR_KAFKA_STORAGE_ERROR, idx, "timer store: %s", strerror(-rc))
                  : 0;
    }
    int released;
    rc = release_to_partition(&e, 1, in->now, &released);
    uint64_t id = e.id;
    timer_entry_free(&e);
    if (rc == RELEASE_OK)
        return 0;
    timer_store_unclaim_half(dv.ts, id);
    if (rc == RELEASE_TOO_LARGE)
        return fail(in->out, KERR_MESSAGE_TOO_LARGE, idx,
                    "the half message is larger than the topic's max.message.bytes now");
    return fail(in->out, KERR_KAFKA_STORAGE_ERROR, idx, "could not append the half message");
}

static int act_one(void *arg, const struct batch_hdr *h, const struct batch_record *rec,
                   int32_t idx)
{
    struct intake *in = arg;
    const struct plan *pl = &in->plans[idx];
    int64_t ts = (int64_t)((uint64_t)h->base_timestamp + (uint64_t)rec->timestamp_delta);
    struct ctl_headers c;
    ctl_headers_read(rec, &c); /* checked by the first pass */
    struct hdr_builder hb = {0};
    static const char *const retry_drop[] = {HDR_RETRY_COUNT, HDR_REDRIVE, NULL};
    int rc = 0;
    switch (pl->fate) {
    case FATE_APPEND:
        add_now(&in->now_b, &in->now_n, ts, rec, NULL);
        break;
    case FATE_DELAY:
        rc = store_entry(in, TIMER_DELAY, pl->due_ms, ts, rec, NULL, &c, idx);
        break;
    case FATE_HALF:
        rc = store_entry(in, TIMER_HALF, in->now + dv.half_timeout_ms, ts, rec, NULL, &c, idx);
        break;
    case FATE_COMMIT:
    case FATE_ROLLBACK:
        rc = resolve_half(in, &c, pl->fate == FATE_COMMIT, idx);
        break;
    case FATE_RETRY:
        hdr_builder_copy(&hb, rec->headers, rec->headers_end, retry_drop);
        hdr_builder_add_i64(&hb, HDR_RETRY_COUNT, pl->retry_count + 1);
        if (!c.retry_first_ms.present)
            hdr_builder_add_i64(&hb, HDR_RETRY_FIRST_MS, in->now);
        rc = hb.w.err ? fail(in->out, KERR_UNKNOWN_SERVER_ERROR, idx, "out of memory")
                      : store_entry(in, TIMER_RETRY, pl->due_ms, ts, rec, &hb, &c, idx);
        break;
    case FATE_DLQ: {
        char reason[96];
        int n = snprintf(reason, sizeof reason, "retries exhausted (%" PRId64 " of %d)",
                         pl->retry_count, topic_settings(in->t)->retry_max_attempts);
        hdr_builder_copy(&hb, rec->headers, rec->headers_end, NULL);
        hdr_builder_add(&hb, HDR_DLQ_REASON, reason, n);
        hdr_builder_add_i64(&hb, HDR_DLQ_AT_MS, in->now);
        add_now(&in->dlq_b, &in->dlq_n, ts, rec, &hb);
        break;
    }
    case FATE_REDRIVE:
        hdr_builder_copy(&hb, rec->headers, rec->headers_end, retry_drop);
        hdr_builder_add_i64(&hb, HDR_RETRY_COUNT, 0);
        add_now(&in->now_b, &in->now_n, ts, rec, &hb);
        break;
    }
    hdr_builder_free(&hb);
    return rc ? 1 : 0;
}

/* Appends a finished builder to p (or to the dead-letter topic). */
static int append_built(struct intake *in, struct batch_builder *b, bool dlq,
                        partition_append_result_t *res)
{
    uint8_t *batch;
    size_t blen;
    if (batch_builder_finish(b, &batch, &blen))
        return fail(in->out, KERR_UNKNOWN_SERVER_ERROR, -1, "out of memory");
    int16_t err;
    if (dlq) {
        const char *group;
        size_t glen;
        char name[512];
        systopic_kind(in->t->name, strlen(in->t->name), &group, &glen);
        int n = systopic_name(SYSTOPIC_DLQ, group, glen, name, sizeof name);
        err = n < 0 ? KERR_UNKNOWN_SERVER_ERROR
                    : append_batch_to(name, (size_t)n, in->p->index, batch, blen, in->now, res);
    } else {
        err = partition_append(in->p, batch, blen, in->now, res);
    }
    free(batch);
    if (err != KERR_NONE)
        return fail(in->out, err, -1, "%s",
                    dlq ? "cannot append to the dead-letter topic" : "append failed");
    return 0;
}

void delivery_produce(struct topic *t, struct partition *p, uint8_t *records, size_t len,
                      int64_t now, struct delivery_outcome *out)
{
    memset(out, 0, sizeof *out);
    out->bad_record = -1;
    out->base_offset = -1;
    out->log_append_time = -1;
    out->log_start_offset = -1;
    struct intake in = {.t = t, .p = p, .now = now, .out = out, .first_due = INT64_MAX};

    /* Whole-batch checks first, as the log's append would make them; the
     * records themselves are checked by the first pass, which reads them
     * anyway, so a batch is decoded once before it is stored. */
    int32_t total = 0;
    for (size_t off = 0; off < len;) {
        struct batch_hdr h;
        int rc = batch_parse_header(records + off, len - off, INT32_MAX, &h);
        if (rc == PLOG_OK && (uint64_t)batch_size(&h) > len - off)
            rc = PLOG_ERR_CORRUPT;
        if (rc == PLOG_OK && batch_size(&h) > topic_settings(t)->log.max_message_bytes)
            rc = PLOG_ERR_TOO_LARGE;
        if (rc == PLOG_OK)
            rc = batch_validate_header(records + off, (size_t)batch_size(&h), true, &h);
        if (rc == PLOG_OK && (h.attributes & (BATCH_ATTR_CONTROL | BATCH_ATTR_TRANSACTIONAL)))
            rc = PLOG_ERR_UNSUPPORTED;
        if (rc != PLOG_OK) {
            fail(out, kerr_from_append(rc), -1, "invalid record batch");
            return;
        }
        total += h.records_count;
        off += (size_t)batch_size(&h);
    }
    if (total <= 0) {
        fail(out, KERR_INVALID_RECORD, -1, "no records");
        return;
    }
    in.plans = calloc((size_t)total, sizeof *in.plans);
    if (!in.plans) {
        fail(out, KERR_UNKNOWN_SERVER_ERROR, -1, "out of memory");
        return;
    }
    in.n_plans = total;
    in.last_delta = in.want_last_delta = -1;
    int rc = for_each_record(records, len, plan_one, plan_batch_end, &in);
    if (rc) {
        if (rc < 0)
            fail(out, KERR_INVALID_RECORD, -1, "malformed records");
        free(in.plans);
        return;
    }
    partition_append_result_t res;
    if (!in.held) {
        /* Nothing held back: the producer's batches go in as sent. */
        int16_t err = partition_append(p, records, len, now, &res);
        free(in.plans);
        if (err != KERR_NONE) {
            fail(out, err, -1, "append failed");
            return;
        }
        out->appended = true;
        out->base_offset = res.base_offset;
        out->log_append_time = res.log_append_time;
        out->log_start_offset = res.log_start_offset;
        return;
    }
    batch_builder_init(&in.now_b, in.first_codec, in.first_base_ts);
    batch_builder_init(&in.dlq_b, 0, in.first_base_ts);
    rc = for_each_record(records, len, act_one, flush_pending, &in);
    /* Records acted on before a failure stay done; what was meant for the
     * log now goes there too, so nothing already taken is lost. */
    if (in.now_n > 0 && append_built(&in, &in.now_b, false, &res) == 0) {
        out->appended = true;
        out->log_start_offset = res.log_start_offset;
        out->log_append_time = res.log_append_time;
    }
    if (in.dlq_n > 0)
        append_built(&in, &in.dlq_b, true, &res);
    batch_builder_free(&in.now_b);
    batch_builder_free(&in.dlq_b);
    free(in.pend);
    free(in.pend_hb);
    free(in.plans);
    if (rc < 0 && !out->error_code)
        fail(out, KERR_INVALID_RECORD, -1, "malformed records");
    if (in.first_due != INT64_MAX)
        release_notify(in.first_due);
}
