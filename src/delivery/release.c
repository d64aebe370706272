/*
 * release: the timer thread, and releasing held-back records into their
 * partitions exactly once.
 *
 * The thread sleeps until the earliest due entry (or a wake-up from
 * intake.c when something earlier arrives), takes what is due from the
 * timer store in (due, arrival) order, and for each target partition
 * appends one batch.  A due half message is not released but checked
 * back: a check record goes to its producer group's check topic and the
 * entry is rescheduled, until half.check.max checks went unanswered.
 *
 * Exactly once: under release_mu, write the store's intent (which
 * partition, its log end before the append, the batch's record count and
 * the CRC of its records section), append, then mark the entries done
 * (which clears the intent).  A crash after the append and before the
 * mark leaves an intent whose batch is in the partition at or after that
 * log end; settle_intent() finds it at start and marks the entries, or,
 * when the batch is not there, lets them be released again.  The records
 * section is what an append never rewrites (it sets the base offset,
 * the leader epoch and, for LogAppendTime, the timestamps), so its CRC
 * identifies the batch.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/crc32c.h"
#include "common/kerr.h"
#include "common/rlog.h"
#include "delivery/delivery_int.h"
#include "delivery/headers.h"

struct delivery_globals dv;

static struct {
    pthread_mutex_t release_mu; /* one release into a partition at a time */
    pthread_mutex_t mu;         /* guards wake_at, stop (with cond) */
    pthread_cond_t cond;
    int64_t wake_at;
    bool stop;
    bool running;
    pthread_t thread;
} rt = {
    .release_mu = PTHREAD_MUTEX_INITIALIZER,
    .mu = PTHREAD_MUTEX_INITIALIZER,
    .cond = PTHREAD_COND_INITIALIZER,
};

/*
 * Fault injection for the exactly-once tests: RUNNEL_CRASH_AT names a
 * point of the release protocol where the broker exits at once, as
 * kill -9 would stop it there (tests/integration/test_release_crash.py).
 */
static const char *crash_at;

static void crash_point(const char *name)
{
    if (crash_at && !strcmp(crash_at, name)) {
        rlog_error("RUNNEL_CRASH_AT=%s: exiting now", name);
        _exit(86);
    }
}

struct timer_store *delivery_store(void)
{
    return dv.ts;
}

void entry_as_record(const struct timer_entry *e, int32_t offset_delta, struct batch_record *rec)
{
    memset(rec, 0, sizeof *rec);
    rec->offset_delta = offset_delta;
    rec->key = e->key;
    rec->key_len = e->key_len;
    rec->value = e->value;
    rec->value_len = e->value_len;
    rec->header_count = e->header_count;
    rec->headers = e->headers;
    rec->headers_end = e->headers + e->headers_len;
}

static void flush_if_sync(struct topic *t, struct partition *p)
{
    if (!topic_settings(t)->flush_sync)
        return;
    partition_flush(p);
}

int16_t append_batch_to(const char *name, size_t len, int32_t index, uint8_t *batch,
                        size_t batch_len, int64_t now_ms, partition_append_result_t *res)
{
    struct topic *t = NULL;
    if (topics_get_or_create(name, len, true, &t) || !t)
        return KERR_UNKNOWN_SERVER_ERROR;
    int32_t n = topic_partition_count(t);
    struct partition *p = topic_partition(t, n > 0 ? index % n : 0);
    int16_t err =
        p ? partition_append(p, batch, batch_len, now_ms, res) : KERR_UNKNOWN_TOPIC_OR_PARTITION;
    if (err == KERR_NONE)
        flush_if_sync(t, p);
    topic_put(t);
    return err;
}

static int build_batch(struct timer_entry *es, int n, uint8_t **out, size_t *out_len)
{
    struct batch_builder b;
    batch_builder_init(&b, 0, es[0].timestamp);
    for (int i = 0; i < n; i++) {
        struct batch_record rec;
        entry_as_record(&es[i], i, &rec);
        batch_builder_add_record(&b, es[i].timestamp, &rec);
    }
    int rc = batch_builder_finish(&b, out, out_len);
    batch_builder_free(&b);
    return rc;
}

/* One batch of es[0..n) into p with the intent protocol. */
static int release_batch(struct topic *t, struct partition *p, struct timer_entry *es, int n,
                         int64_t now_ms)
{
    uint8_t *batch;
    size_t blen;
    uint64_t *ids = malloc((size_t)n * sizeof *ids);
    if (!ids || build_batch(es, n, &batch, &blen)) {
        free(ids);
        return RELEASE_FAILED;
    }
    for (int i = 0; i < n; i++)
        ids[i] = es[i].id;

    pthread_mutex_lock(&rt.release_mu);
    struct partition_offsets po;
    int64_t leo = partition_offsets(p, &po) == KERR_NONE ? po.log_end : -1;
    struct timer_intent in = {
        .partition = es[0].partition,
        .log_end = leo,
        .record_count = n,
        .records_crc = crc32c(0, batch + BATCH_RECORDS_OFFSET, blen - BATCH_RECORDS_OFFSET),
        .n_ids = n,
        .ids = ids,
    };
    snprintf(in.topic, sizeof in.topic, "%s", es[0].topic);
    int rc = RELEASE_FAILED;
    /* On a flush.sync topic the released batch is fsynced right after
     * the append; the intent must be on disk before it, or a power cut
     * could keep the batch and lose the intent (a second release). */
    if (leo >= 0 && timer_store_intent_begin(dv.ts, &in) == 0 &&
        (!topic_settings(t)->flush_sync || timer_store_sync(dv.ts) == 0)) {
        partition_append_result_t res;
        crash_point("release-after-intent");
        int16_t arc = partition_append(p, batch, blen, now_ms, &res);
        if (arc == KERR_NONE) {
            crash_point("release-after-append");
            timer_store_mark(dv.ts, ids, n, TIMER_DONE);
            rc = RELEASE_OK;
        } else {
            timer_store_intent_clear(dv.ts);
            rc = arc == KERR_UNKNOWN_TOPIC_OR_PARTITION ? RELEASE_GONE
                 : arc == KERR_MESSAGE_TOO_LARGE        ? RELEASE_TOO_LARGE
                                                        : RELEASE_FAILED;
        }
    } else if (leo < 0) {
        rc = RELEASE_GONE;
    }
    pthread_mutex_unlock(&rt.release_mu);
    if (rc == RELEASE_OK)
        flush_if_sync(t, p);
    free(batch);
    free(ids);
    return rc;
}

/* An upper bound of a record's encoded size in a batch. */
static int64_t record_bytes(const struct timer_entry *e)
{
    return 40 + (e->key_len > 0 ? e->key_len : 0) + (e->value_len > 0 ? e->value_len : 0) +
           (int64_t)e->headers_len;
}

int release_to_partition(struct timer_entry *es, int n, int64_t now_ms, int *released)
{
    *released = 0;
    struct topic *t = topics_get(es[0].topic, strlen(es[0].topic));
    struct partition *p = t ? topic_partition(t, es[0].partition) : NULL;
    if (!p) {
        if (t)
            topic_put(t);
        return RELEASE_GONE;
    }
    /* Batches within the topic's max.message.bytes: many small records
     * due at once go in one batch, large ones in several. */
    int64_t limit = topic_settings(t)->log.max_message_bytes - BATCH_HEADER_SIZE;
    int rc = RELEASE_OK;
    for (int i = 0; i < n && rc == RELEASE_OK;) {
        int k = i + 1;
        int64_t bytes = record_bytes(&es[i]);
        while (k < n && bytes + record_bytes(&es[k]) <= limit)
            bytes += record_bytes(&es[k++]);
        /* A record alone over the limit fails alone (k == i + 1). */
        rc = release_batch(t, p, es + i, k - i, now_ms);
        if (rc == RELEASE_OK)
            *released = k;
        i = k;
    }
    topic_put(t);
    return rc;
}

/* ---- check-backs ---- */

static void check_back(struct timer_entry *e, int64_t now)
{
    if (e->checks >= dv.half_max) {
        rlog_warn("half message discarded after %d unanswered checks: topic %s partition %" PRId32
                  " txn id '%.*s' producer group %s",
                  e->checks, e->topic, e->partition, (int)e->txn_id_len, (const char *)e->txn_id,
                  e->producer_group);
        timer_store_mark(dv.ts, &e->id, 1, TIMER_DISCARDED);
        return;
    }
    char name[512];
    int nlen = systopic_name(SYSTOPIC_CHECK, e->producer_group, strlen(e->producer_group), name,
                             sizeof name);
    struct hdr_builder hb = {0};
    const uint8_t *h = e->headers;
    hdr_builder_copy(&hb, h, h + e->headers_len, NULL);
    hdr_builder_add(&hb, HDR_TXN_TOPIC, e->topic, (int32_t)strlen(e->topic));
    hdr_builder_add_i64(&hb, HDR_TXN_PARTITION, e->partition);
    hdr_builder_add_i64(&hb, HDR_TXN_CHECK, e->checks + 1);
    struct batch_builder b;
    batch_builder_init(&b, 0, now);
    struct batch_record rec = {
        .key = e->txn_id,
        .key_len = (int32_t)e->txn_id_len,
        .value = e->value,
        .value_len = e->value_len,
        .header_count = hb.count,
        .headers = hb.w.buf,
        .headers_end = hb.w.buf + hb.w.len,
    };
    batch_builder_add_record(&b, now, &rec);
    uint8_t *batch = NULL;
    size_t blen = 0;
    int16_t err = KERR_UNKNOWN_SERVER_ERROR;
    if (nlen > 0 && !hb.w.err && batch_builder_finish(&b, &batch, &blen) == 0) {
        partition_append_result_t res;
        err = append_batch_to(name, (size_t)nlen, 0, batch, blen, now, &res);
    }
    free(batch);
    batch_builder_free(&b);
    hdr_builder_free(&hb);
    if (err != KERR_NONE) {
        rlog_warn("cannot send check-back for half message '%.*s' of %s (%s); retrying in 1 s",
                  (int)e->txn_id_len, (const char *)e->txn_id, e->topic, kerr_name(err));
        timer_store_reschedule(dv.ts, e->id, now + 1000, -1);
        return;
    }
    timer_store_reschedule(dv.ts, e->id, now + dv.half_interval_ms, e->checks + 1);
}

/* ---- the thread ---- */

#define TAKE_MAX 512

/* Releases what was taken: per target partition, in taken order. */
static void release_taken(struct timer_entry *es, int n, int64_t now)
{
    bool *done = calloc((size_t)n, sizeof *done);
    struct timer_entry *group = malloc((size_t)n * sizeof *group);
    if (!done || !group) {
        for (int i = 0; i < n; i++)
            timer_store_reschedule(dv.ts, es[i].id, now + 1000, -1);
        free(done);
        free(group);
        return;
    }
    for (int i = 0; i < n; i++) {
        if (done[i])
            continue;
        if (es[i].kind == TIMER_HALF) {
            done[i] = true;
            check_back(&es[i], now);
            continue;
        }
        int g = 0;
        for (int j = i; j < n; j++)
            if (!done[j] && es[j].kind != TIMER_HALF && es[j].partition == es[i].partition &&
                !strcmp(es[j].topic, es[i].topic)) {
                group[g++] = es[j];
                done[j] = true;
            }
        for (int off = 0; off < g;) {
            int released;
            int rc = release_to_partition(group + off, g - off, now, &released);
            off += released;
            if (rc == RELEASE_OK)
                break;
            if (rc == RELEASE_TOO_LARGE) {
                /* The topic's max.message.bytes shrank since it was
                 * accepted: it can never be appended. */
                rlog_warn("discarding a held-back record for %s-%" PRId32
                          ": larger than the topic's max.message.bytes",
                          group[off].topic, group[off].partition);
                timer_store_mark(dv.ts, &group[off].id, 1, TIMER_DISCARDED);
                off++;
                continue;
            }
            if (rc == RELEASE_GONE) {
                rlog_warn("discarding %d held-back records: %s-%" PRId32 " is gone", g - off,
                          group[off].topic, group[off].partition);
                for (int k = off; k < g; k++)
                    timer_store_mark(dv.ts, &group[k].id, 1, TIMER_DISCARDED);
            } else {
                rlog_warn("cannot release %d records to %s-%" PRId32 "; retrying in 1 s", g - off,
                          group[off].topic, group[off].partition);
                for (int k = off; k < g; k++)
                    timer_store_reschedule(dv.ts, group[k].id, now + 1000, -1);
            }
            break;
        }
    }
    free(done);
    free(group);
}

void release_notify(int64_t due_ms)
{
    pthread_mutex_lock(&rt.mu);
    if (due_ms < rt.wake_at) {
        rt.wake_at = due_ms;
        pthread_cond_signal(&rt.cond);
    }
    pthread_mutex_unlock(&rt.mu);
}

static void *timer_thread(void *arg)
{
    (void)arg;
    struct timer_entry *es = calloc(TAKE_MAX, sizeof *es);
    int64_t next_sync = clock_wall_ms() + dv.flush_interval_ms;
    pthread_mutex_lock(&rt.mu);
    while (!rt.stop && es) {
        pthread_mutex_unlock(&rt.mu);
        int64_t now = clock_wall_ms();
        int n = timer_store_take_due(dv.ts, now, es, TAKE_MAX);
        if (n > 0) {
            release_taken(es, n, now);
            for (int i = 0; i < n; i++)
                timer_entry_free(&es[i]);
        }
        if (now >= next_sync) {
            timer_store_sync(dv.ts);
            next_sync = now + dv.flush_interval_ms;
        }
        pthread_mutex_lock(&rt.mu);
        if (n == TAKE_MAX)
            continue; /* more may be due */
        if (n < 0) {
            /* Out of memory or a read error: the entries stay pending;
             * try again shortly rather than spin. */
            rlog_warn("timer store: cannot take due entries (%s)", strerror(-n));
            struct timespec pause = {0, 100 * 1000000};
            pthread_mutex_unlock(&rt.mu);
            nanosleep(&pause, NULL);
            pthread_mutex_lock(&rt.mu);
            continue;
        }
        int64_t due = timer_store_next_due(dv.ts);
        rt.wake_at = due < next_sync ? due : next_sync;
        if (rt.wake_at <= clock_wall_ms() || rt.stop)
            continue;
        /* Due times are wall-clock: wait on CLOCK_REALTIME (the cond's
         * default), so a clock step moves the wake-up with it. */
        struct timespec until = {.tv_sec = rt.wake_at / 1000,
                                 .tv_nsec = (long)(rt.wake_at % 1000) * 1000000};
        pthread_cond_timedwait(&rt.cond, &rt.mu, &until);
    }
    pthread_mutex_unlock(&rt.mu);
    free(es);
    return NULL;
}

/* ---- start: settle a crash's intent ---- */

/* Is the batch the intent names in the partition at or after its log end? */
static bool intent_batch_present(struct partition *p, const struct timer_intent *in)
{
    bool found = false;
    struct partition_offsets po;
    if (partition_offsets(p, &po) != KERR_NONE)
        return false;
    int64_t end = po.log_end;
    int64_t off = in->log_end < po.log_start ? po.log_start : in->log_end;
    uint8_t *buf = NULL;
    while (!found && off < end) {
        /* Up to the log end: the batch may not be committed yet. */
        struct partition_read r = {.offset = off,
                                   .max_bytes = 1 << 20,
                                   .max_offset = end,
                                   .current_leader_epoch = -1,
                                   .reader = PARTITION_READER_LOCAL};
        if (partition_read(p, &r) != KERR_NONE || r.fd < 0) {
            if (r.ref)
                partition_range_release(r.ref);
            break;
        }
        uint8_t *nb = realloc(buf, (size_t)r.len);
        ssize_t got = nb ? pread(r.fd, nb, (size_t)r.len, r.file_pos) : -1;
        partition_range_release(r.ref);
        if (!nb)
            break;
        buf = nb;
        if (got != r.len)
            break;
        int64_t next = off;
        for (size_t pos = 0; pos + BATCH_HEADER_SIZE <= (size_t)got;) {
            struct batch_hdr h;
            if (batch_parse_header(buf + pos, (size_t)got - pos, INT32_MAX, &h) != PLOG_OK ||
                (size_t)batch_size(&h) > (size_t)got - pos)
                break;
            if (h.records_count == in->record_count && batch_codec(&h) == 0 &&
                crc32c(0, buf + pos + BATCH_RECORDS_OFFSET,
                       (size_t)batch_size(&h) - BATCH_RECORDS_OFFSET) == in->records_crc) {
                found = true;
                break;
            }
            next = batch_last_offset(&h) + 1;
            pos += (size_t)batch_size(&h);
        }
        if (next <= off)
            break;
        off = next;
    }
    free(buf);
    return found;
}

static void settle_intent(void)
{
    struct timer_intent in;
    if (!timer_store_open_intent(dv.ts, &in))
        return;
    struct topic *t = topics_get(in.topic, strlen(in.topic));
    struct partition *p = t ? topic_partition(t, in.partition) : NULL;
    if (p && intent_batch_present(p, &in)) {
        rlog_info("release of %d records to %s-%" PRId32 " completed before the crash", in.n_ids,
                  in.topic, in.partition);
        timer_store_mark(dv.ts, in.ids, in.n_ids, TIMER_DONE);
    } else {
        rlog_info("release of %d records to %s-%" PRId32 " did not happen; releasing again",
                  in.n_ids, in.topic, in.partition);
        timer_store_intent_clear(dv.ts);
    }
    if (t)
        topic_put(t);
    free(in.ids);
}

int delivery_start(const struct broker_config *cfg, char *err, size_t errlen)
{
    memset(&dv, 0, sizeof dv);
    dv.n_levels =
        config_parse_durations(config_string(cfg, "delay.levels"), dv.levels_ms, CONFIG_MAX_STEPS);
    dv.delay_max_ms = config_long(cfg, "delay.max.ms");
    dv.half_timeout_ms = config_long(cfg, "half.check.timeout.ms");
    dv.half_interval_ms = config_long(cfg, "half.check.interval.ms");
    dv.half_max = (int)config_long(cfg, "half.check.max");
    dv.flush_interval_ms = config_long(cfg, "timer.flush.interval.ms");
    crash_at = getenv("RUNNEL_CRASH_AT");
    if (dv.flush_interval_ms <= 0)
        dv.flush_interval_ms = 1000;
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/runnel-timer", cfg->log_dir);
    struct timer_store_config tc = {.segment_bytes = config_long(cfg, "timer.segment.bytes")};
    if (timer_store_open(dir, &tc, &dv.ts, err, errlen))
        return -1;
    settle_intent();
    struct timer_counts c;
    timer_store_counts(dv.ts, &c);
    if (c.total)
        rlog_info("timer store: %" PRId64 " held-back records (%" PRId64 " delayed, %" PRId64
                  " retries, %" PRId64 " half messages)",
                  c.total, c.pending[TIMER_DELAY], c.pending[TIMER_RETRY], c.pending[TIMER_HALF]);
    rt.stop = false;
    rt.wake_at = INT64_MAX;
    if (pthread_create(&rt.thread, NULL, timer_thread, NULL)) {
        snprintf(err, errlen, "cannot start the timer thread");
        timer_store_close(dv.ts);
        dv.ts = NULL;
        return -1;
    }
    rt.running = true;
    return 0;
}

void delivery_stop(void)
{
    if (rt.running) {
        pthread_mutex_lock(&rt.mu);
        rt.stop = true;
        pthread_cond_signal(&rt.cond);
        pthread_mutex_unlock(&rt.mu);
        pthread_join(rt.thread, NULL);
        rt.running = false;
    }
    if (dv.ts)
        timer_store_close(dv.ts);
    dv.ts = NULL;
}
