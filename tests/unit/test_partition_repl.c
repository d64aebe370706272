/*
 * The leader side of replication, on real partitions and real logs:
 * becoming leader (a new epoch at the log end, followers unknown, the
 * high watermark kept), followers' fetches moving the high watermark to
 * the ISR's minimum, the diverging epoch, an unknown replica, a stale
 * epoch, acks=all checks, ISR shrink and expansion through a recording
 * writer (and a conflicting one), becoming follower, OffsetForLeaderEpoch's
 * answers and the high watermark checkpoint across a reopen.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/partition.h"
#include "common/fsutil.h"
#include "common/kerr.h"
#include "storage/batch.h"
#include "tap.h"

static char root[] = "/tmp/runnel-test-partition-repl-XXXXXX";

static struct partition *open_part(const char *name)
{
    char dir[512], err[256];
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    struct plog_config c;
    plog_config_defaults(&c);
    struct partition *p = partition_open(NULL, 0, dir, &c, 1, false, err, sizeof err);
    if (!p)
        fprintf(stderr, "open %s: %s\n", dir, err);
    return p;
}

/* Appends n records as the leader; returns the error. */
static int16_t append(struct partition *p, int n, int64_t *last)
{
    struct batch_builder b;
    batch_builder_init(&b, 0, 1000);
    for (int i = 0; i < n; i++)
        batch_builder_add(&b, 1000 + i, "k", 1, "value", 5, NULL, 0);
    uint8_t *out;
    size_t len;
    batch_builder_finish(&b, &out, &len);
    batch_builder_free(&b);
    partition_append_result_t res;
    int16_t err = partition_append(p, out, len, 1000, &res);
    if (err == KERR_NONE && last)
        *last = res.last_offset;
    free(out);
    return err;
}

/* A follower's fetch from `offset`. */
static int16_t follower_fetch(struct partition *p, int32_t id, int64_t offset, int32_t epoch,
                              int32_t last_epoch, int64_t now, struct partition_read *rd)
{
    *rd = (struct partition_read){
        .offset = offset,
        .max_bytes = 1 << 20,
        .max_offset = -1,
        .current_leader_epoch = epoch,
        .reader = PARTITION_READER_FOLLOWER,
        .replica_id = id,
        .last_fetched_epoch = last_epoch,
        .now_ms = now,
    };
    int16_t err = partition_read(p, rd);
    if (rd->ref)
        partition_range_release(rd->ref);
    return err;
}

/* The ISR writer: records what it was asked, answers `rc`. */
static struct {
    int calls, rc;
    int32_t epoch, isr[PARTITION_MAX_REPLICAS], n;
} wr;

static int record_writer(void *arg, struct partition *p, int32_t epoch, const int32_t *isr,
                         int32_t n)
{
    (void)arg;
    (void)p;
    wr.calls++;
    wr.epoch = epoch;
    wr.n = n;
    memcpy(wr.isr, isr, (size_t)n * sizeof *isr);
    return wr.rc;
}

static int notified;
static void record_notify(void *arg, struct partition *p)
{
    (void)arg;
    (void)p;
    notified++;
}

static const int32_t all3[] = {1, 2, 3};

static void test_leader_and_hw(void)
{
    struct partition *p = open_part("hw");
    CHECK(p != NULL);
    if (!p)
        return;
    int64_t last = -1;
    CHECK_EQ_INT(append(p, 5, &last), KERR_NONE);
    CHECK_EQ_INT(partition_hw(p), 5); /* alone: the log end */
    CHECK_EQ_INT(partition_become_leader(p, 3, all3, 3, all3, 3, 10000), KERR_NONE);
    struct partition_leadership ld;
    partition_leadership(p, &ld);
    CHECK_EQ_INT(ld.leader_id, 1);
    CHECK_EQ_INT(ld.leader_epoch, 3);
    CHECK_EQ_INT(ld.n_isr, 3);
    CHECK_EQ_INT(ld.n_replicas, 3);
    CHECK_EQ_INT(partition_hw(p), 5); /* kept */
    /* Epoch 3 starts at the log end. */
    int32_t e;
    int64_t end;
    CHECK_EQ_INT(partition_end_offset_for_epoch(p, 3, 0, false, &e, &end), KERR_NONE);
    CHECK_EQ_INT(e, 0);
    CHECK_EQ_INT(end, 5);
    CHECK_EQ_INT(partition_end_offset_for_epoch(p, 3, 3, false, &e, &end), KERR_NONE);
    CHECK_EQ_INT(e, 3);
    CHECK_EQ_INT(end, 5);
    CHECK_EQ_INT(partition_end_offset_for_epoch(p, 3, 7, false, &e, &end), KERR_NONE);
    CHECK_EQ_INT(e, -1);
    CHECK_EQ_INT(end, -1);
    CHECK_EQ_INT(partition_end_offset_for_epoch(p, 2, 3, false, &e, &end),
                 KERR_FENCED_LEADER_EPOCH);
    CHECK_EQ_INT(partition_end_offset_for_epoch(p, 4, 3, false, &e, &end),
                 KERR_UNKNOWN_LEADER_EPOCH);

    CHECK_EQ_INT(append(p, 5, &last), KERR_NONE);
    CHECK_EQ_INT(last, 9);
    CHECK_EQ_INT(partition_hw(p), 5); /* followers have not fetched */
    bool wait;
    CHECK_EQ_INT(partition_ack_check(p, 3, 10, 2, &wait), KERR_NONE);
    CHECK(wait);

    struct partition_read rd;
    CHECK_EQ_INT(follower_fetch(p, 2, 7, 3, 3, 10100, &rd), KERR_NONE);
    CHECK_EQ_INT(partition_hw(p), 5); /* 3 still unknown */
    CHECK_EQ_INT(follower_fetch(p, 3, 6, 3, 3, 10100, &rd), KERR_NONE);
    CHECK_EQ_INT(partition_hw(p), 6); /* min(10, 7, 6) */
    CHECK_EQ_INT(rd.high_watermark, 6);
    CHECK(rd.len > 0); /* up to the log end */
    CHECK_EQ_INT(follower_fetch(p, 3, 10, 3, 3, 10200, &rd), KERR_NONE);
    CHECK_EQ_INT(partition_hw(p), 7);
    CHECK_EQ_INT(follower_fetch(p, 2, 10, 3, 3, 10200, &rd), KERR_NONE);
    CHECK_EQ_INT(partition_hw(p), 10);
    CHECK_EQ_INT(partition_ack_check(p, 3, 10, 2, &wait), KERR_NONE);
    CHECK(!wait);

    /* A stale epoch is fenced as for consumers; an unknown replica refused. */
    CHECK_EQ_INT(follower_fetch(p, 2, 10, 2, 3, 10300, &rd), KERR_FENCED_LEADER_EPOCH);
    CHECK_EQ_INT(rd.diverging_epoch, -1); /* an error says nothing of divergence */
    CHECK_EQ_INT(follower_fetch(p, 9, 10, 3, 3, 10300, &rd), KERR_NOT_LEADER_OR_FOLLOWER);

    /* A follower that wrote epoch 2 up to 8: diverged at 5 (epoch 0's end). */
    CHECK_EQ_INT(follower_fetch(p, 2, 8, 3, 2, 10300, &rd), KERR_NONE);
    CHECK_EQ_INT(rd.diverging_epoch, 0);
    CHECK_EQ_INT(rd.diverging_end_offset, 5);
    CHECK_EQ_INT(rd.len, 0);
    /* Epoch 0 past its end: diverged too. */
    CHECK_EQ_INT(follower_fetch(p, 2, 7, 3, 0, 10300, &rd), KERR_NONE);
    CHECK_EQ_INT(rd.diverging_epoch, 0);
    CHECK_EQ_INT(rd.diverging_end_offset, 5);
    /* Epoch 0 within it: no divergence. */
    CHECK_EQ_INT(follower_fetch(p, 2, 5, 3, 0, 10300, &rd), KERR_NONE);
    CHECK_EQ_INT(rd.diverging_epoch, -1);
    CHECK_EQ_INT(partition_hw(p), 10); /* never back */

    /* Becoming follower: no appends, waiting produces fail. */
    CHECK_EQ_INT(append(p, 1, &last), KERR_NONE);
    CHECK_EQ_INT(partition_ack_check(p, 3, 11, 2, &wait), KERR_NONE);
    CHECK(wait);
    CHECK_EQ_INT(partition_become_follower(p, 2, 4, all3, 3, all3, 3), KERR_NONE);
    CHECK_EQ_INT(partition_ack_check(p, 3, 11, 2, &wait), KERR_NOT_LEADER_OR_FOLLOWER);
    CHECK(!wait);
    CHECK_EQ_INT(append(p, 1, NULL), KERR_NOT_LEADER_OR_FOLLOWER);
    CHECK_EQ_INT(follower_fetch(p, 3, 10, 4, -1, 10400, &rd), KERR_NOT_LEADER_OR_FOLLOWER);
    partition_leadership(p, &ld);
    CHECK_EQ_INT(ld.leader_id, 2);
    CHECK_EQ_INT(ld.leader_epoch, 4);
    /* An older epoch never moves it back. */
    CHECK_EQ_INT(partition_become_leader(p, 3, all3, 3, all3, 3, 10500), KERR_FENCED_LEADER_EPOCH);
    CHECK_EQ_INT(partition_become_follower(p, 3, 3, all3, 3, all3, 3), KERR_FENCED_LEADER_EPOCH);
    /* Leader again at 5: the log end (11) starts it. */
    CHECK_EQ_INT(partition_become_leader(p, 5, all3, 3, all3, 3, 10600), KERR_NONE);
    CHECK_EQ_INT(partition_end_offset_for_epoch(p, 5, 3, false, &e, &end), KERR_NONE);
    CHECK_EQ_INT(e, 3);
    CHECK_EQ_INT(end, 11);
    /* Becoming leader of an ISR of one commits the whole log. */
    const int32_t me[] = {1};
    CHECK_EQ_INT(partition_become_leader(p, 5, all3, 3, me, 1, 10700), KERR_NONE);
    CHECK_EQ_INT(partition_hw(p), 11);
    partition_free(p, true);
}

static void test_isr(void)
{
    struct partition *p = open_part("isr");
    if (!p)
        return;
    partition_set_isr_writer(record_writer, NULL);
    partition_set_isr_notify(record_notify, NULL);
    memset(&wr, 0, sizeof wr);
    notified = 0;
    const int64_t lag = 30000;
    int64_t t = 100000;
    CHECK_EQ_INT(append(p, 4, NULL), KERR_NONE);
    CHECK_EQ_INT(partition_become_leader(p, 1, all3, 3, all3, 3, t), KERR_NONE);
    CHECK_EQ_INT(append(p, 4, NULL), KERR_NONE); /* log end 8 */
    struct partition_read rd;
    CHECK_EQ_INT(follower_fetch(p, 2, 8, 1, 1, t + 100, &rd), KERR_NONE);
    CHECK_EQ_INT(follower_fetch(p, 3, 4, 1, 0, t + 100, &rd), KERR_NONE);
    CHECK_EQ_INT(partition_hw(p), 4);
    /* Nobody lags yet. */
    CHECK_EQ_INT(partition_isr_maintain(p, t + 1000, lag), 0);
    CHECK_EQ_INT(wr.calls, 0);
    /* 2 keeps up, 3 stays at 4: after the lag time 3 leaves. */
    CHECK_EQ_INT(follower_fetch(p, 2, 8, 1, 1, t + lag, &rd), KERR_NONE);
    CHECK_EQ_INT(partition_isr_maintain(p, t + lag + 1, lag), 1);
    CHECK_EQ_INT(wr.calls, 1);
    CHECK_EQ_INT(wr.epoch, 1);
    CHECK_EQ_INT(wr.n, 2);
    CHECK_EQ_INT(wr.isr[0], 1);
    CHECK_EQ_INT(wr.isr[1], 2);
    struct partition_leadership ld;
    partition_leadership(p, &ld);
    CHECK_EQ_INT(ld.n_isr, 2);
    CHECK_EQ_INT(partition_hw(p), 8); /* the smaller ISR commits more */
    bool wait;
    CHECK_EQ_INT(partition_ack_check(p, 1, 9, 3, &wait), KERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND);

    /* 3 catches up: the fetch signals, maintenance adds it back. */
    CHECK_EQ_INT(notified, 0);
    CHECK_EQ_INT(follower_fetch(p, 3, 8, 1, 1, t + lag + 10, &rd), KERR_NONE);
    CHECK_EQ_INT(notified, 1);
    CHECK_EQ_INT(follower_fetch(p, 3, 8, 1, 1, t + lag + 20, &rd), KERR_NONE);
    CHECK_EQ_INT(notified, 1); /* once until maintenance ran */
    CHECK_EQ_INT(partition_isr_maintain(p, t + lag + 30, lag), 1);
    CHECK_EQ_INT(wr.calls, 2);
    CHECK_EQ_INT(wr.n, 3);
    CHECK_EQ_INT(wr.isr[2], 3);
    partition_leadership(p, &ld);
    CHECK_EQ_INT(ld.n_isr, 3);

    /* Followers at the log end are in sync however long ago they fetched. */
    CHECK_EQ_INT(partition_isr_maintain(p, t + 3 * lag, lag), 0);
    /* New data they do not fetch: both lag; a conflicting write leaves
     * the ISR as it is. */
    CHECK_EQ_INT(append(p, 1, NULL), KERR_NONE);
    wr.rc = 1;
    CHECK_EQ_INT(partition_isr_maintain(p, t + 3 * lag, lag), -1);
    CHECK_EQ_INT(wr.calls, 3);
    CHECK_EQ_INT(wr.n, 1);
    partition_leadership(p, &ld);
    CHECK_EQ_INT(ld.n_isr, 3);
    CHECK_EQ_INT(partition_hw(p), 8);
    wr.rc = 0;
    partition_free(p, true);
    partition_set_isr_writer(NULL, NULL);
    partition_set_isr_notify(NULL, NULL);
}

static void test_checkpoint(void)
{
    struct partition *p = open_part("ckpt");
    if (!p)
        return;
    CHECK_EQ_INT(append(p, 3, NULL), KERR_NONE);
    CHECK_EQ_INT(partition_become_leader(p, 1, all3, 3, all3, 3, 1000), KERR_NONE);
    CHECK_EQ_INT(append(p, 3, NULL), KERR_NONE);
    CHECK_EQ_INT(partition_hw(p), 3);
    CHECK_EQ_INT(partition_checkpoint_hw(p), KERR_NONE);
    partition_free(p, true);
    /* Reopened: the checkpoint, not the log end. */
    p = open_part("ckpt");
    CHECK(p != NULL);
    if (!p)
        return;
    CHECK_EQ_INT(partition_hw(p), 3);
    partition_free(p, true);
    /* A single-node partition writes none and restarts at the log end. */
    p = open_part("single");
    CHECK_EQ_INT(append(p, 2, NULL), KERR_NONE);
    CHECK_EQ_INT(partition_checkpoint_hw(p), KERR_NONE);
    partition_free(p, true);
    p = open_part("single");
    CHECK_EQ_INT(partition_hw(p), 2);
    partition_free(p, true);
}

/* A leader restarted in the same epoch: followers must reach where the
 * epoch began, not the log end at the restart. */
static void test_same_epoch_restart(void)
{
    struct partition *p = open_part("restart");
    if (!p)
        return;
    CHECK_EQ_INT(append(p, 2, NULL), KERR_NONE);
    const int32_t two[] = {1, 2};
    CHECK_EQ_INT(partition_become_leader(p, 2, all3, 3, two, 2, 1000), KERR_NONE);
    CHECK_EQ_INT(append(p, 2, NULL), KERR_NONE); /* epoch 2: offsets 2, 3 */
    CHECK_EQ_INT(partition_hw(p), 2);
    partition_free(p, true);
    p = open_part("restart");
    if (!p)
        return;
    CHECK_EQ_INT(partition_hw(p), 2); /* from the checkpoint */
    partition_set_isr_notify(record_notify, NULL);
    notified = 0;
    CHECK_EQ_INT(partition_become_leader(p, 2, all3, 3, two, 2, 2000), KERR_NONE);
    struct partition_read rd;
    CHECK_EQ_INT(follower_fetch(p, 3, 3, 2, 2, 2100, &rd), KERR_NONE);
    CHECK_EQ_INT(notified, 1);        /* 3 >= HW 2 and >= epoch 2's start 2 */
    CHECK_EQ_INT(partition_hw(p), 2); /* 2, in the ISR, has not fetched */
    CHECK_EQ_INT(follower_fetch(p, 2, 4, 2, 2, 2100, &rd), KERR_NONE);
    CHECK_EQ_INT(partition_hw(p), 4);
    partition_set_isr_notify(NULL, NULL);
    partition_free(p, true);
}

/*
 * Appends, two followers' fetches, the ISR maintenance and a state
 * update race: the high watermark never goes back, never passes the
 * log end, and ends at the log end once both followers reached it.
 */
static struct partition *race_p;
static atomic_bool race_done;
static atomic_int race_bad;

static int ok_writer(void *arg, struct partition *p, int32_t epoch, const int32_t *isr, int32_t n)
{
    (void)arg, (void)p, (void)epoch, (void)isr, (void)n;
    return 0;
}

static void *race_appender(void *arg)
{
    (void)arg;
    for (int i = 0; i < 2000; i++)
        if (append(race_p, 1 + i % 3, NULL) != KERR_NONE)
            atomic_fetch_add(&race_bad, 1);
    atomic_store(&race_done, true);
    return NULL;
}

static void *race_follower(void *arg)
{
    int32_t id = (int32_t)(intptr_t)arg;
    int64_t now = 1000, last_hw = 0;
    for (;;) {
        bool done = atomic_load(&race_done);
        struct partition_offsets o;
        partition_offsets(race_p, &o);
        struct partition_read rd;
        if (follower_fetch(race_p, id, o.log_end, 1, 1, now++, &rd) != KERR_NONE)
            atomic_fetch_add(&race_bad, 1);
        int64_t hw = partition_hw(race_p);
        if (hw < last_hw || hw > o.log_end + 1000000)
            atomic_fetch_add(&race_bad, 1);
        last_hw = hw;
        if (done)
            break;
    }
    return NULL;
}

static void *race_maintainer(void *arg)
{
    (void)arg;
    int64_t now = 1000;
    while (!atomic_load(&race_done)) {
        partition_isr_maintain(race_p, now, 5);
        /* The cluster state's echo: the same epoch, the ISR as written. */
        struct partition_leadership ld;
        partition_leadership(race_p, &ld);
        partition_become_leader(race_p, 1, ld.replicas, ld.n_replicas, ld.isr, ld.n_isr, now);
        now += 3;
    }
    return NULL;
}

static void test_race(void)
{
    race_p = open_part("race");
    if (!race_p)
        return;
    partition_set_isr_writer(ok_writer, NULL);
    CHECK_EQ_INT(partition_become_leader(race_p, 1, all3, 3, all3, 3, 1000), KERR_NONE);
    pthread_t th[4];
    pthread_create(&th[0], NULL, race_appender, NULL);
    pthread_create(&th[1], NULL, race_follower, (void *)(intptr_t)2);
    pthread_create(&th[2], NULL, race_follower, (void *)(intptr_t)3);
    pthread_create(&th[3], NULL, race_maintainer, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    CHECK_EQ_INT(atomic_load(&race_bad), 0);
    /* Both followers at the end, then the ISR made whole again. */
    struct partition_offsets o;
    partition_offsets(race_p, &o);
    struct partition_read rd;
    follower_fetch(race_p, 2, o.log_end, 1, 1, 1 << 30, &rd);
    follower_fetch(race_p, 3, o.log_end, 1, 1, 1 << 30, &rd);
    partition_isr_maintain(race_p, 1 << 30, 5);
    CHECK_EQ_INT(partition_hw(race_p), o.log_end);
    partition_set_isr_writer(NULL, NULL);
    partition_free(race_p, true);
}

int main(void)
{
    if (!mkdtemp(root))
        return 1;
    test_leader_and_hw();
    test_isr();
    test_checkpoint();
    test_same_epoch_restart();
    test_race();
    fsutil_rm_rf(root);
    return tap_done();
}
