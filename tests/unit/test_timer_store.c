/*
 * The timer store through its public interface: take order by (due, id),
 * reschedule and stale heap slots, marks, counts and listing, half
 * messages and their claims, recovery after reopen (states, checks, due
 * times, the half index), torn tails, corrupt entries, segment rolling and
 * deletion, the intent, injected write and fsync failures, takers racing
 * on threads, and a million entries through a reopen.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "storage/fileio.h"
#include "tap.h"
#include "timer/timer_store.h"

static char root[] = "/tmp/runnel-test-timer-XXXXXX";

static void path_of(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", root, name);
}

static struct timer_store *open_store(const char *dir, int64_t segment_bytes)
{
    struct timer_store_config c = {segment_bytes};
    struct timer_store *ts = NULL;
    char err[256];
    if (timer_store_open(dir, &c, &ts, err, sizeof err) < 0) {
        fprintf(stderr, "open %s: %s\n", dir, err);
        return NULL;
    }
    return ts;
}

/* A record whose value is "v<n>" (plus pad bytes of 'x'). */
static uint64_t add_full(struct timer_store *ts, enum timer_kind kind, const char *topic,
                         int64_t due, int n, size_t pad, const char *txn, int *rc_out)
{
    char value[4096];
    int vl = snprintf(value, sizeof value, "v%d", n);
    memset(value + vl, 'x', pad);
    static const uint8_t hdrs[] = {0x06, 'h', '1', 0x04, 'a', 'b'}; /* one record header */
    struct timer_entry_in in = {
        .kind = kind,
        .due_ms = due,
        .created_ms = 1000 + n,
        .topic = topic,
        .topic_len = strlen(topic),
        .partition = n % 3,
        .timestamp = 5000 + n,
        .key = (n % 2) ? (const uint8_t *)"key" : NULL,
        .key_len = (n % 2) ? 3 : -1,
        .value = (const uint8_t *)value,
        .value_len = vl + (int32_t)pad,
        .header_count = 1,
        .headers = hdrs,
        .headers_len = sizeof hdrs,
        .producer_group = txn ? "pg" : NULL,
        .producer_group_len = txn ? 2 : 0,
        .txn_id = (const uint8_t *)txn,
        .txn_id_len = txn ? strlen(txn) : 0,
    };
    uint64_t id = UINT64_MAX;
    int rc = timer_store_add(ts, &in, &id);
    if (rc_out)
        *rc_out = rc;
    return id;
}

static uint64_t add(struct timer_store *ts, const char *topic, int64_t due, int n)
{
    return add_full(ts, TIMER_DELAY, topic, due, n, 0, NULL, NULL);
}

/* The n of a record made by add_full, from its value. */
static int value_n(const struct timer_entry *e)
{
    return e->value && e->value_len > 1 ? atoi((const char *)e->value + 1) : -1;
}

static void free_all(struct timer_entry *e, int n)
{
    for (int i = 0; i < n; i++)
        timer_entry_free(&e[i]);
}

static int count_files(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        size_t l = strlen(de->d_name), s = strlen(suffix);
        if (l > s && !strcmp(de->d_name + l - s, suffix))
            n++;
    }
    if (d)
        closedir(d);
    return n;
}

static off_t fsize(const char *p)
{
    struct stat st;
    return stat(p, &st) ? -1 : st.st_size;
}

static void seg_path(char *out, size_t n, const char *dir, uint64_t base)
{
    snprintf(out, n, "%s/%020llu.timer", dir, (unsigned long long)base);
}

static void test_take_order(void)
{
    char dir[300];
    path_of(dir, sizeof dir, "order");
    struct timer_store *ts = open_store(dir, 0);
    CHECK(ts != NULL);
    CHECK_EQ_INT(timer_store_next_due(ts), INT64_MAX);
    uint64_t id[5];
    int64_t dues[5] = {30, 10, 20, 10, 10};
    for (int i = 0; i < 5; i++)
        id[i] = add(ts, "orders", dues[i], i);
    CHECK(id[0] < id[1] && id[1] < id[2] && id[2] < id[3] && id[3] < id[4]);
    CHECK_EQ_INT(timer_store_next_due(ts), 10);

    struct timer_entry e[8];
    CHECK_EQ_INT(timer_store_take_due(ts, 9, e, 8), 0);
    int n = timer_store_take_due(ts, 25, e, 8);
    CHECK_EQ_INT(n, 4);
    /* Ties at 10 come out in id order. */
    int want[] = {1, 3, 4, 2};
    for (int i = 0; i < n && i < 4; i++) {
        CHECK_EQ_INT(e[i].id, id[want[i]]);
        CHECK_EQ_INT(value_n(&e[i]), want[i]);
        CHECK_EQ_INT(e[i].due_ms, dues[want[i]]);
    }
    /* Every field comes back. */
    const struct timer_entry *x = &e[0]; /* n = 1 */
    CHECK(!strcmp(x->topic, "orders"));
    CHECK_EQ_INT(x->kind, TIMER_DELAY);
    CHECK_EQ_INT(x->state, TIMER_PENDING);
    CHECK_EQ_INT(x->checks, 0);
    CHECK_EQ_INT(x->partition, 1);
    CHECK_EQ_INT(x->created_ms, 1001);
    CHECK_EQ_INT(x->timestamp, 5001);
    CHECK(x->key_len == 3 && !memcmp(x->key, "key", 3));
    CHECK(x->value_len == 2 && !memcmp(x->value, "v1", 2));
    CHECK_EQ_INT(x->header_count, 1);
    CHECK(x->headers_len == 6 && !memcmp(x->headers,
                                         "\x06h1\x04"
                                         "ab",
                                         6));
    CHECK(!strcmp(x->producer_group, ""));
    CHECK_EQ_INT(x->txn_id_len, 0);
    CHECK(e[1].key_len == 3);                      /* n = 3: a key */
    CHECK(e[2].key == NULL && e[2].key_len == -1); /* n = 4: a null key */
    free_all(e, n);

    /* Taken entries are out of the heap, the rest stays. */
    CHECK_EQ_INT(timer_store_next_due(ts), 30);
    CHECK_EQ_INT(timer_store_take_due(ts, 25, e, 8), 0);
    /* max limits a take. */
    uint64_t a = add(ts, "orders", 5, 10), b = add(ts, "orders", 6, 11);
    CHECK_EQ_INT(timer_store_take_due(ts, 100, e, 1), 1);
    CHECK_EQ_INT(e[0].id, a);
    timer_entry_free(&e[0]);
    CHECK_EQ_INT(timer_store_take_due(ts, 100, e, 1), 1);
    CHECK_EQ_INT(e[0].id, b);
    timer_entry_free(&e[0]);
    CHECK_EQ_INT(timer_store_take_due(ts, 100, e, 8), 1);
    CHECK_EQ_INT(e[0].id, id[0]);
    timer_entry_free(&e[0]);

    /* Bad input is refused. */
    struct timer_entry_in bad = {.kind = TIMER_DELAY, .topic = "", .topic_len = 0};
    CHECK_EQ_INT(timer_store_add(ts, &bad, NULL), -EINVAL);
    bad = (struct timer_entry_in){.kind = 9, .topic = "t", .topic_len = 1};
    CHECK_EQ_INT(timer_store_add(ts, &bad, NULL), -EINVAL);
    bad = (struct timer_entry_in){.kind = TIMER_HALF, .topic = "t", .topic_len = 1};
    CHECK_EQ_INT(timer_store_add(ts, &bad, NULL), -EINVAL); /* a half needs a txn id */
    bad = (struct timer_entry_in){.kind = TIMER_DELAY, .topic = "t", .topic_len = 1, .key_len = 4};
    CHECK_EQ_INT(timer_store_add(ts, &bad, NULL), -EINVAL); /* key length without a key */
    CHECK_EQ_INT(timer_store_mark(ts, &a, 1, TIMER_PENDING), -EINVAL);
    timer_store_close(ts);
}

static void test_reschedule(void)
{
    char dir[300];
    path_of(dir, sizeof dir, "resched");
    struct timer_store *ts = open_store(dir, 0);
    struct timer_entry e[4];
    uint64_t a = add(ts, "t", 100, 1);
    CHECK_EQ_INT(timer_store_take_due(ts, 100, e, 4), 1);
    timer_entry_free(&e[0]);
    /* A taken entry put back later. */
    CHECK_EQ_INT(timer_store_reschedule(ts, a, 500, -1), 0);
    CHECK_EQ_INT(timer_store_next_due(ts), 500);
    CHECK_EQ_INT(timer_store_take_due(ts, 499, e, 4), 0);
    CHECK_EQ_INT(timer_store_take_due(ts, 500, e, 4), 1);
    CHECK_EQ_INT(e[0].id, a);
    CHECK_EQ_INT(e[0].due_ms, 500);
    timer_entry_free(&e[0]);

    /* A pending entry still in the heap moved later: its old slot is
     * stale and skipped. */
    uint64_t b = add(ts, "t", 100, 2);
    CHECK_EQ_INT(timer_store_reschedule(ts, b, 300, 2), 0);
    CHECK_EQ_INT(timer_store_take_due(ts, 200, e, 4), 0);
    CHECK_EQ_INT(timer_store_take_due(ts, 300, e, 4), 1);
    CHECK_EQ_INT(e[0].id, b);
    CHECK_EQ_INT(e[0].checks, 2);
    timer_entry_free(&e[0]);

    /* Moved to the same time, or away and back: taken once. */
    uint64_t c = add(ts, "t", 50, 3);
    CHECK_EQ_INT(timer_store_reschedule(ts, c, 50, -1), 0);
    uint64_t d = add(ts, "t", 60, 4);
    CHECK_EQ_INT(timer_store_reschedule(ts, d, 70, -1), 0);
    CHECK_EQ_INT(timer_store_reschedule(ts, d, 60, 300), 0); /* checks saturate at 255 */
    CHECK_EQ_INT(timer_store_take_due(ts, 1000, e, 4), 2);
    CHECK_EQ_INT(e[0].id, c);
    CHECK_EQ_INT(e[1].id, d);
    CHECK_EQ_INT(e[1].checks, 255);
    free_all(e, 2);
    CHECK_EQ_INT(timer_store_take_due(ts, 1000, e, 4), 0);

    /* Only pending entries are rescheduled. */
    CHECK_EQ_INT(timer_store_mark(ts, &c, 1, TIMER_DONE), 0);
    CHECK_EQ_INT(timer_store_reschedule(ts, c, 2000, -1), 0);
    CHECK_EQ_INT(timer_store_take_due(ts, 3000, e, 4), 0);
    /* Unknown ids and ids inside an entry are ignored. */
    CHECK_EQ_INT(timer_store_reschedule(ts, 1u << 30, 2000, -1), 0);
    CHECK_EQ_INT(timer_store_reschedule(ts, d + 7, 2000, -1), 0);
    CHECK_EQ_INT(timer_store_take_due(ts, 3000, e, 4), 0);
    timer_store_close(ts);
}

struct topic_seen {
    char topic[32];
    enum timer_kind kind;
    int64_t count;
};

struct topics {
    struct topic_seen s[16];
    int n;
};

static void on_topic(void *arg, const char *topic, enum timer_kind kind, int64_t count)
{
    struct topics *t = arg;
    if (t->n < 16) {
        snprintf(t->s[t->n].topic, sizeof t->s[t->n].topic, "%s", topic);
        t->s[t->n].kind = kind;
        t->s[t->n].count = count;
        t->n++;
    }
}

static int64_t topic_count(const struct topics *t, const char *topic, enum timer_kind kind)
{
    for (int i = 0; i < t->n; i++)
        if (!strcmp(t->s[i].topic, topic) && t->s[i].kind == kind)
            return t->s[i].count;
    return 0;
}

struct listed {
    uint64_t id[64];
    int n;
};

static void on_entry(void *arg, const struct timer_entry *e)
{
    struct listed *l = arg;
    if (l->n < 64)
        l->id[l->n++] = e->id;
}

static void test_mark_counts_list(void)
{
    char dir[300];
    path_of(dir, sizeof dir, "counts");
    struct timer_store *ts = open_store(dir, 0);
    uint64_t a = add_full(ts, TIMER_DELAY, "t1", 40, 1, 0, NULL, NULL);
    uint64_t b = add_full(ts, TIMER_DELAY, "t1", 30, 2, 0, NULL, NULL);
    uint64_t c = add_full(ts, TIMER_RETRY, "t1", 20, 3, 0, NULL, NULL);
    uint64_t d = add_full(ts, TIMER_HALF, "t2", 10, 4, 0, "tx", NULL);
    uint64_t e5 = add_full(ts, TIMER_DELAY, "t2", 50, 5, 0, NULL, NULL);

    struct timer_counts k;
    timer_store_counts(ts, &k);
    CHECK_EQ_INT(k.pending[TIMER_DELAY], 3);
    CHECK_EQ_INT(k.pending[TIMER_RETRY], 1);
    CHECK_EQ_INT(k.pending[TIMER_HALF], 1);
    CHECK_EQ_INT(k.total, 5);
    CHECK_EQ_INT(k.segments, 1);
    CHECK(k.disk_bytes > 5 * 64);
    struct topics t = {0};
    timer_store_counts_by_topic(ts, on_topic, &t);
    CHECK_EQ_INT(t.n, 4);
    CHECK_EQ_INT(topic_count(&t, "t1", TIMER_DELAY), 2);
    CHECK_EQ_INT(topic_count(&t, "t1", TIMER_RETRY), 1);
    CHECK_EQ_INT(topic_count(&t, "t2", TIMER_HALF), 1);
    CHECK_EQ_INT(topic_count(&t, "t2", TIMER_DELAY), 1);

    /* Listing: (due, id) order, filters, limit. */
    struct listed l = {0};
    CHECK_EQ_INT(timer_store_list(ts, NULL, 0, 10, on_entry, &l), 5);
    uint64_t all[] = {d, c, b, a, e5};
    for (int i = 0; i < 5; i++)
        CHECK_EQ_INT(l.id[i], all[i]);
    l.n = 0;
    CHECK_EQ_INT(timer_store_list(ts, "t1", 0, 10, on_entry, &l), 3);
    CHECK(l.id[0] == c && l.id[1] == b && l.id[2] == a);
    l.n = 0;
    CHECK_EQ_INT(timer_store_list(ts, NULL, TIMER_DELAY, 2, on_entry, &l), 2);
    CHECK(l.id[0] == b && l.id[1] == a);
    l.n = 0;
    CHECK_EQ_INT(timer_store_list(ts, "t2", TIMER_RETRY, 10, on_entry, &l), 0);
    CHECK_EQ_INT(timer_store_list(ts, "nope", 0, 10, on_entry, &l), 0);

    /* Marks: done and discarded leave the heap, counts and listings. */
    uint64_t m[] = {b, c, b}; /* a repeat is harmless */
    CHECK_EQ_INT(timer_store_mark(ts, m, 2, TIMER_DONE), 0);
    CHECK_EQ_INT(timer_store_mark(ts, &e5, 1, TIMER_DISCARDED), 0);
    CHECK_EQ_INT(timer_store_mark(ts, m, 3, TIMER_DISCARDED), 0); /* no longer pending: kept */
    uint64_t junk[] = {1u << 30, a + 3};
    CHECK_EQ_INT(timer_store_mark(ts, junk, 2, TIMER_DONE), 0); /* unknown / mid-entry ids */
    timer_store_counts(ts, &k);
    CHECK_EQ_INT(k.pending[TIMER_DELAY], 1);
    CHECK_EQ_INT(k.pending[TIMER_RETRY], 0);
    CHECK_EQ_INT(k.total, 2);
    t.n = 0;
    timer_store_counts_by_topic(ts, on_topic, &t);
    CHECK_EQ_INT(t.n, 2);
    CHECK_EQ_INT(topic_count(&t, "t1", TIMER_DELAY), 1);
    CHECK_EQ_INT(topic_count(&t, "t1", TIMER_RETRY), 0);
    CHECK_EQ_INT(topic_count(&t, "t2", TIMER_HALF), 1);
    l.n = 0;
    CHECK_EQ_INT(timer_store_list(ts, NULL, 0, 10, on_entry, &l), 2);
    CHECK(l.id[0] == d && l.id[1] == a);
    /* A rescheduled entry is listed once, at its new time. */
    CHECK_EQ_INT(timer_store_reschedule(ts, d, 45, 1), 0);
    l.n = 0;
    CHECK_EQ_INT(timer_store_list(ts, NULL, 0, 10, on_entry, &l), 2);
    CHECK(l.id[0] == a && l.id[1] == d);

    struct timer_entry e[8];
    int n = timer_store_take_due(ts, 100, e, 8);
    CHECK_EQ_INT(n, 2);
    CHECK(e[0].id == a && e[1].id == d);
    free_all(e, n);
    timer_store_close(ts);
}

static void test_halves(void)
{
    char dir[300];
    path_of(dir, sizeof dir, "halves");
    struct timer_store *ts = open_store(dir, 0);
    int rc;
    uint64_t h1 = add_full(ts, TIMER_HALF, "pay", 100, 1, 0, "tx-1", &rc);
    CHECK_EQ_INT(rc, 0);
    add_full(ts, TIMER_HALF, "pay", 100, 2, 0, "tx-1", &rc);
    CHECK_EQ_INT(rc, -EEXIST);
    uint64_t h2 = add_full(ts, TIMER_HALF, "other", 100, 3, 0, "tx-1", &rc); /* other topic */
    CHECK_EQ_INT(rc, 0);
    uint64_t h3 = add_full(ts, TIMER_HALF, "pay", 100, 4, 0, "tx-3", &rc);
    CHECK_EQ_INT(rc, 0);

    struct timer_entry e, t[4];
    enum timer_state st = 99;
    CHECK_EQ_INT(timer_store_claim_half(ts, "pay", 3, (const uint8_t *)"tx-1", 4, &e, &st), 0);
    CHECK_EQ_INT(e.id, h1);
    CHECK_EQ_INT(e.kind, TIMER_HALF);
    CHECK(!strcmp(e.producer_group, "pg"));
    CHECK(e.txn_id_len == 4 && !memcmp(e.txn_id, "tx-1", 4));
    CHECK_EQ_INT(value_n(&e), 1);
    timer_entry_free(&e);
    CHECK_EQ_INT(timer_store_claim_half(ts, "pay", 3, (const uint8_t *)"tx-1", 4, &e, &st),
                 -EALREADY);
    CHECK_EQ_INT(st, TIMER_PENDING);

    /* A claimed half is not taken when due; given back, it is. */
    int n = timer_store_take_due(ts, 100, t, 4);
    CHECK_EQ_INT(n, 2);
    CHECK(t[0].id == h2 && t[1].id == h3);
    free_all(t, n);
    timer_store_unclaim_half(ts, h1);
    n = timer_store_take_due(ts, 100, t, 4);
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_INT(t[0].id, h1);
    timer_entry_free(&t[0]);
    CHECK_EQ_INT(timer_store_reschedule(ts, h1, 200, 1), 0); /* a check was sent */

    /* Claim, then decide. */
    CHECK_EQ_INT(timer_store_claim_half(ts, "pay", 3, (const uint8_t *)"tx-1", 4, NULL, &st), 0);
    CHECK_EQ_INT(timer_store_mark(ts, &h1, 1, TIMER_DONE), 0);
    CHECK_EQ_INT(timer_store_claim_half(ts, "pay", 3, (const uint8_t *)"tx-1", 4, &e, &st),
                 -EALREADY);
    CHECK_EQ_INT(st, TIMER_DONE);
    CHECK_EQ_INT(timer_store_take_due(ts, 1000, t, 4), 0); /* its rescheduled slot is stale */
    CHECK_EQ_INT(timer_store_mark(ts, &h3, 1, TIMER_DISCARDED), 0);
    CHECK_EQ_INT(timer_store_claim_half(ts, "pay", 3, (const uint8_t *)"tx-3", 4, &e, &st),
                 -EALREADY);
    CHECK_EQ_INT(st, TIMER_DISCARDED);
    /* Decided halves are remembered: the same txn id is still refused. */
    add_full(ts, TIMER_HALF, "pay", 100, 5, 0, "tx-1", &rc);
    CHECK_EQ_INT(rc, -EEXIST);
    CHECK_EQ_INT(timer_store_claim_half(ts, "pay", 3, (const uint8_t *)"tx-9", 4, &e, &st),
                 -ENOENT);
    CHECK_EQ_INT(timer_store_claim_half(ts, "pa", 2, (const uint8_t *)"ytx-1", 5, &e, &st),
                 -ENOENT);
    timer_store_unclaim_half(ts, 12345); /* unknown: nothing happens */
    timer_store_close(ts);
}

static void test_reopen(void)
{
    char dir[300];
    path_of(dir, sizeof dir, "reopen");
    struct timer_store *ts = open_store(dir, 0);
    uint64_t a = add_full(ts, TIMER_DELAY, "t1", 300, 1, 10, NULL, NULL);
    uint64_t b = add_full(ts, TIMER_RETRY, "t1", 100, 2, 0, NULL, NULL);
    uint64_t c = add_full(ts, TIMER_HALF, "t2", 200, 3, 0, "tx-c", NULL);
    uint64_t d = add_full(ts, TIMER_HALF, "t2", 200, 4, 0, "tx-d", NULL);
    uint64_t e5 = add_full(ts, TIMER_DELAY, "t2", 50, 5, 0, NULL, NULL);
    CHECK_EQ_INT(timer_store_mark(ts, &d, 1, TIMER_DONE), 0);
    CHECK_EQ_INT(timer_store_mark(ts, &e5, 1, TIMER_DISCARDED), 0);
    CHECK_EQ_INT(timer_store_reschedule(ts, c, 250, 3), 0);
    struct timer_counts k0;
    timer_store_counts(ts, &k0);
    CHECK_EQ_INT(timer_store_sync(ts), 0);
    timer_store_close(ts);

    ts = open_store(dir, 0);
    CHECK(ts != NULL);
    struct timer_counts k;
    timer_store_counts(ts, &k);
    CHECK_EQ_INT(k.total, 3);
    CHECK_EQ_INT(k.pending[TIMER_DELAY], 1);
    CHECK_EQ_INT(k.pending[TIMER_RETRY], 1);
    CHECK_EQ_INT(k.pending[TIMER_HALF], 1);
    CHECK_EQ_INT(k.disk_bytes, k0.disk_bytes);
    struct topics t = {0};
    timer_store_counts_by_topic(ts, on_topic, &t);
    CHECK_EQ_INT(topic_count(&t, "t1", TIMER_DELAY), 1);
    CHECK_EQ_INT(topic_count(&t, "t1", TIMER_RETRY), 1);
    CHECK_EQ_INT(topic_count(&t, "t2", TIMER_HALF), 1);
    CHECK_EQ_INT(topic_count(&t, "t2", TIMER_DELAY), 0);

    enum timer_state st;
    struct timer_entry e[8];
    CHECK_EQ_INT(timer_store_claim_half(ts, "t2", 2, (const uint8_t *)"tx-d", 4, NULL, &st),
                 -EALREADY);
    CHECK_EQ_INT(st, TIMER_DONE);
    int n = timer_store_take_due(ts, 1000, e, 8);
    CHECK_EQ_INT(n, 3);
    if (n == 3) {
        CHECK(e[0].id == b && e[0].due_ms == 100 && e[0].kind == TIMER_RETRY);
        CHECK(e[1].id == c && e[1].due_ms == 250 && e[1].checks == 3 && e[1].kind == TIMER_HALF);
        CHECK(e[2].id == a && e[2].due_ms == 300 && e[2].value_len == 12);
        CHECK(!strcmp(e[1].producer_group, "pg"));
    }
    free_all(e, n);
    CHECK_EQ_INT(timer_store_claim_half(ts, "t2", 2, (const uint8_t *)"tx-c", 4, e, &st), 0);
    CHECK_EQ_INT(e[0].checks, 3);
    timer_entry_free(&e[0]);
    /* Appends continue after the last entry. */
    uint64_t f = add(ts, "t1", 1, 6);
    CHECK(f > e5);
    timer_store_close(ts);
}

static void test_torn_tail(void)
{
    char dir[300], seg[400];
    path_of(dir, sizeof dir, "torn");
    seg_path(seg, sizeof seg, dir, 0);
    struct timer_store *ts = open_store(dir, 0);
    uint64_t id[5];
    for (int i = 0; i < 5; i++)
        id[i] = add_full(ts, TIMER_DELAY, "t", 10 + i, i, 20, NULL, NULL);
    timer_store_close(ts);
    off_t full = fsize(seg);

    /* The last entry cut in the middle. */
    CHECK_EQ_INT(truncate(seg, (off_t)id[4] + 30), 0);
    ts = open_store(dir, 0);
    CHECK(ts != NULL);
    CHECK_EQ_INT(fsize(seg), (off_t)id[4]);
    struct timer_entry e[8];
    int n = timer_store_take_due(ts, 100, e, 8);
    CHECK_EQ_INT(n, 4);
    for (int i = 0; i < n; i++)
        CHECK_EQ_INT(value_n(&e[i]), i);
    free_all(e, n);
    /* Ids are never reused: appends go on in a new segment after the
     * old end. */
    uint64_t again = add_full(ts, TIMER_DELAY, "t", 14, 4, 20, NULL, NULL);
    CHECK_EQ_INT(again, id[4] + 30);
    timer_store_close(ts);
    CHECK_EQ_INT(fsize(seg), (off_t)id[4]);
    seg_path(seg, sizeof seg, dir, again);
    CHECK_EQ_INT(fsize(seg), full - (off_t)id[4]); /* the same entry 4 again */

    /* Garbage after the last entry: short, long, and with a plausible
     * length field. */
    const uint8_t tails[][12] = {
        {0xde, 0xad, 0xbe, 0xef, 1, 2, 3},
        {0x00, 0x00, 0x00, 0x50, 0, 0, 0, 0, 0, 0, 0, 0},
        {0x7f, 0xff, 0xff, 0xff, 9, 9, 9, 9, 9, 9, 9, 9},
    };
    for (int r = 0; r < 3; r++) {
        char name[32];
        snprintf(name, sizeof name, "garbage-%d", r);
        path_of(dir, sizeof dir, name);
        seg_path(seg, sizeof seg, dir, 0);
        ts = open_store(dir, 0);
        for (int i = 0; i < 3; i++)
            add_full(ts, TIMER_DELAY, "t", 10 + i, i, 20, NULL, NULL);
        timer_store_close(ts);
        full = fsize(seg);
        int fd = open(seg, O_WRONLY | O_APPEND);
        uint8_t junk[200];
        memset(junk, 0xa5, sizeof junk);
        memcpy(junk, tails[r], sizeof tails[r]);
        size_t g = r == 0 ? 7 : sizeof junk;
        CHECK_EQ_INT(write(fd, junk, g), (ssize_t)g);
        close(fd);
        ts = open_store(dir, 0);
        CHECK(ts != NULL);
        CHECK_EQ_INT(fsize(seg), full);
        n = timer_store_take_due(ts, 100, e, 8);
        CHECK_EQ_INT(n, 3);
        for (int i = 0; i < n; i++)
            CHECK_EQ_INT(value_n(&e[i]), i);
        free_all(e, n);
        CHECK_EQ_INT(add(ts, "t", 1, 9), (uint64_t)full + g);
        timer_store_close(ts);
    }
}

static void test_corrupt_entry(void)
{
    char dir[300], seg[400];
    path_of(dir, sizeof dir, "corrupt");
    seg_path(seg, sizeof seg, dir, 0);
    struct timer_store *ts = open_store(dir, 0);
    uint64_t id[4];
    for (int i = 0; i < 4; i++)
        id[i] = add_full(ts, TIMER_DELAY, "t", 10 + i, i, 20, NULL, NULL);
    timer_store_close(ts);

    /* Flip a byte of entry 1's value (immutable, under the CRC). */
    int fd = open(seg, O_RDWR);
    uint8_t byte;
    CHECK_EQ_INT(pread(fd, &byte, 1, (off_t)id[1] + 60), 1);
    byte ^= 0x40;
    CHECK_EQ_INT(pwrite(fd, &byte, 1, (off_t)id[1] + 60), 1);
    close(fd);
    off_t before = fsize(seg);
    ts = open_store(dir, 0);
    CHECK(ts != NULL);
    CHECK_EQ_INT(fsize(seg), before); /* dropped alone, nothing cut */
    struct timer_counts k;
    timer_store_counts(ts, &k);
    CHECK_EQ_INT(k.total, 3);
    CHECK_EQ_INT(timer_store_mark(ts, &id[1], 1, TIMER_DONE), 0); /* not readable: ignored */
    timer_store_counts(ts, &k);
    CHECK_EQ_INT(k.total, 3);
    struct timer_entry e[8];
    int n = timer_store_take_due(ts, 100, e, 8);
    CHECK_EQ_INT(n, 3);
    if (n == 3)
        CHECK(e[0].id == id[0] && e[1].id == id[2] && e[2].id == id[3]);
    free_all(e, n);
    timer_store_close(ts);

    /* The same damage in the last entry is a torn tail: cut. */
    fd = open(seg, O_RDWR);
    CHECK_EQ_INT(pread(fd, &byte, 1, (off_t)id[3] + 50), 1);
    byte ^= 0x01;
    CHECK_EQ_INT(pwrite(fd, &byte, 1, (off_t)id[3] + 50), 1);
    /* And an invalid state byte (mutable, not under the CRC) in entry 2. */
    byte = 7;
    CHECK_EQ_INT(pwrite(fd, &byte, 1, (off_t)id[2] + 8), 1);
    close(fd);
    ts = open_store(dir, 0);
    CHECK(ts != NULL);
    /* Entry 1 is no longer followed by a valid entry, so the tail is cut
     * from there. */
    CHECK_EQ_INT(fsize(seg), (off_t)id[1]);
    n = timer_store_take_due(ts, 100, e, 8);
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_INT(e[0].id, id[0]);
    free_all(e, n);
    timer_store_close(ts);
}

static void test_segments(void)
{
    char dir[300], p[400];
    path_of(dir, sizeof dir, "segments");
    /* Entries of 113-122 bytes (topic "t", value "v<n>" + 40 pad, 6
     * header bytes, a key when n is odd): two per 250-byte segment. */
    struct timer_store *ts = open_store(dir, 250);
    uint64_t id[9];
    for (int i = 0; i < 9; i++)
        id[i] = add_full(ts, TIMER_DELAY, "t", 100 + i, i, 40, NULL, NULL);
    for (int i = 1; i < 9; i++)
        CHECK(id[i] > id[i - 1]);
    struct timer_counts k;
    timer_store_counts(ts, &k);
    CHECK_EQ_INT(k.segments, 5);
    CHECK_EQ_INT(count_files(dir, ".timer"), 5);
    seg_path(p, sizeof p, dir, id[2]);
    CHECK(fsize(p) > 0); /* segments are named by their first id */
    seg_path(p, sizeof p, dir, id[0]);
    CHECK_EQ_INT(id[0], 0);

    /* Both entries of the first segment decided: it goes. */
    CHECK_EQ_INT(timer_store_mark(ts, &id[0], 1, TIMER_DONE), 0);
    CHECK(fsize(p) > 0);
    CHECK_EQ_INT(timer_store_mark(ts, &id[1], 1, TIMER_DISCARDED), 0);
    CHECK_EQ_INT(fsize(p), -1);
    timer_store_counts(ts, &k);
    CHECK_EQ_INT(k.segments, 4);
    /* Stale heap slots pointing into it are skipped. */
    CHECK_EQ_INT(timer_store_reschedule(ts, id[0], 1, -1), 0);

    /* A half in a segment that goes is forgotten. */
    int rc;
    uint64_t h = add_full(ts, TIMER_HALF, "t", 100, 9, 40, "tx", &rc);
    CHECK_EQ_INT(rc, 0);
    add_full(ts, TIMER_DELAY, "t", 100, 10, 40, NULL, NULL); /* rolls: h's segment is sealed */
    add_full(ts, TIMER_DELAY, "t", 100, 11, 40, NULL, NULL);
    enum timer_state st;
    CHECK_EQ_INT(timer_store_claim_half(ts, "t", 1, (const uint8_t *)"tx", 2, NULL, &st), 0);
    seg_path(p, sizeof p, dir, id[8]);
    CHECK(fsize(p) > 0); /* h shares the segment of entry 8 */
    uint64_t two[] = {h, id[8]};
    CHECK_EQ_INT(timer_store_mark(ts, two, 2, TIMER_DONE), 0);
    CHECK_EQ_INT(fsize(p), -1);
    CHECK_EQ_INT(timer_store_claim_half(ts, "t", 1, (const uint8_t *)"tx", 2, NULL, &st), -ENOENT);
    add_full(ts, TIMER_HALF, "t", 100, 12, 40, "tx", &rc);
    CHECK_EQ_INT(rc, 0);

    /* Everything decided: only the active segment stays. */
    struct timer_entry e[16];
    int n = timer_store_take_due(ts, 1000, e, 16);
    CHECK_EQ_INT(n, 9);
    uint64_t ids[16];
    for (int i = 0; i < n; i++)
        ids[i] = e[i].id;
    free_all(e, n);
    CHECK_EQ_INT(timer_store_mark(ts, ids, n, TIMER_DONE), 0);
    timer_store_counts(ts, &k);
    CHECK_EQ_INT(k.total, 0);
    CHECK_EQ_INT(k.segments, 1);
    CHECK_EQ_INT(count_files(dir, ".timer"), 1);
    timer_store_close(ts);

    /* Reopened: the same; a sealed segment with nothing pending left by
     * a crash is deleted at open.  (100-byte segments: one entry each.) */
    ts = open_store(dir, 100);
    timer_store_counts(ts, &k);
    CHECK_EQ_INT(k.segments, 1);
    uint64_t x = add_full(ts, TIMER_DELAY, "t", 100, 13, 40, NULL, NULL);
    uint64_t y = add_full(ts, TIMER_DELAY, "t", 100, 14, 40, NULL, NULL);
    add_full(ts, TIMER_DELAY, "t", 100, 15, 40, NULL, NULL);
    timer_store_counts(ts, &k);
    int segs = (int)k.segments;
    timer_store_close(ts);
    /* Mark x and y done behind the store's back, as if the process died
     * after the marks but before deleting the segment. */
    seg_path(p, sizeof p, dir, x);
    int fd = open(p, O_RDWR);
    uint8_t done = TIMER_DONE;
    CHECK(fd >= 0);
    CHECK_EQ_INT(pwrite(fd, &done, 1, 8), 1);
    close(fd);
    seg_path(p, sizeof p, dir, y);
    fd = open(p, O_RDWR);
    CHECK(fd >= 0);
    CHECK_EQ_INT(pwrite(fd, &done, 1, 8), 1);
    close(fd);
    ts = open_store(dir, 100);
    timer_store_counts(ts, &k);
    CHECK_EQ_INT(k.total, 1);
    CHECK_EQ_INT(segs, 3); /* the one of entry 12 went when it was sealed */
    CHECK_EQ_INT(k.segments, 1);
    seg_path(p, sizeof p, dir, x);
    CHECK_EQ_INT(fsize(p), -1);
    timer_store_close(ts);

    /* An entry bigger than a segment gets a segment of its own. */
    ts = open_store(dir, 100);
    CHECK(ts != NULL);
    uint64_t big = add_full(ts, TIMER_DELAY, "t", 100, 16, 500, NULL, &rc);
    CHECK_EQ_INT(rc, 0);
    seg_path(p, sizeof p, dir, big);
    CHECK(fsize(p) > 500);
    timer_store_close(ts);
}

static void test_sealed_damage(void)
{
    char dir[300], p[400];
    path_of(dir, sizeof dir, "sealed");
    struct timer_store *ts = open_store(dir, 350);
    uint64_t id[6];
    for (int i = 0; i < 6; i++)
        id[i] = add_full(ts, TIMER_DELAY, "t", 100 + i, i, 40, NULL, NULL);
    timer_store_close(ts);
    /* Three entries per segment; break the length field of the second
     * entry of the first (sealed) one. */
    seg_path(p, sizeof p, dir, 0);
    off_t before = fsize(p);
    int fd = open(p, O_RDWR);
    uint8_t ff[4] = {0xff, 0xff, 0xff, 0xff};
    CHECK_EQ_INT(pwrite(fd, ff, 4, (off_t)id[1]), 4);
    close(fd);
    ts = open_store(dir, 350);
    CHECK(ts != NULL);
    CHECK_EQ_INT(fsize(p), before); /* a sealed segment is never cut */
    struct timer_counts k;
    timer_store_counts(ts, &k);
    CHECK_EQ_INT(k.total, 4); /* entries 1 and 2 are beyond the damage */
    /* Entry 2's bytes are intact but unreachable: marking it changes nothing. */
    CHECK_EQ_INT(timer_store_mark(ts, &id[2], 1, TIMER_DONE), 0);
    timer_store_counts(ts, &k);
    CHECK_EQ_INT(k.total, 4);
    struct timer_entry e[8];
    int n = timer_store_take_due(ts, 1000, e, 8);
    CHECK_EQ_INT(n, 4);
    if (n == 4)
        CHECK(e[0].id == id[0] && e[1].id == id[3] && e[2].id == id[4] && e[3].id == id[5]);
    free_all(e, n);
    timer_store_close(ts);
}

static void test_intent(void)
{
    char dir[300], p[400];
    path_of(dir, sizeof dir, "intent");
    struct timer_store *ts = open_store(dir, 0);
    struct timer_intent in = {0}, got;
    CHECK(!timer_store_open_intent(ts, &got));
    uint64_t a = add(ts, "t", 1, 1), b = add(ts, "t", 2, 2);
    uint64_t ids[] = {a, b};
    snprintf(in.topic, sizeof in.topic, "orders");
    in.partition = 7;
    in.log_end = 123456789012LL;
    in.record_count = 2;
    in.records_crc = 0xdeadbeef;
    in.n_ids = 2;
    in.ids = ids;
    CHECK_EQ_INT(timer_store_intent_begin(ts, &in), 0);
    CHECK(!timer_store_open_intent(ts, &got)); /* ours, not left by a crash */
    timer_store_close(ts);

    ts = open_store(dir, 0);
    CHECK(timer_store_open_intent(ts, &got));
    CHECK(!strcmp(got.topic, "orders"));
    CHECK_EQ_INT(got.partition, 7);
    CHECK_EQ_INT(got.log_end, 123456789012LL);
    CHECK_EQ_INT(got.record_count, 2);
    CHECK_EQ_INT(got.records_crc, 0xdeadbeef);
    CHECK_EQ_INT(got.n_ids, 2);
    CHECK(got.ids && got.ids[0] == a && got.ids[1] == b);
    free(got.ids);
    CHECK(timer_store_open_intent(ts, &got)); /* still open until resolved */
    free(got.ids);
    CHECK_EQ_INT(timer_store_mark(ts, ids, 2, TIMER_DONE), 0);
    CHECK(!timer_store_open_intent(ts, &got));
    timer_store_close(ts);
    ts = open_store(dir, 0);
    CHECK(!timer_store_open_intent(ts, &got));

    /* Cleared without marking; and a shorter intent over a longer one. */
    in.n_ids = 0;
    in.ids = NULL;
    CHECK_EQ_INT(timer_store_intent_begin(ts, &in), 0);
    CHECK_EQ_INT(timer_store_intent_clear(ts), 0);
    timer_store_close(ts);
    ts = open_store(dir, 0);
    CHECK(!timer_store_open_intent(ts, &got));
    in.n_ids = 2;
    in.ids = ids;
    CHECK_EQ_INT(timer_store_intent_begin(ts, &in), 0);
    snprintf(in.topic, sizeof in.topic, "o");
    in.n_ids = 1;
    CHECK_EQ_INT(timer_store_intent_begin(ts, &in), 0);
    timer_store_close(ts);
    ts = open_store(dir, 0);
    CHECK(timer_store_open_intent(ts, &got));
    CHECK(!strcmp(got.topic, "o") && got.n_ids == 1 && got.ids[0] == a);
    free(got.ids);
    CHECK_EQ_INT(timer_store_intent_clear(ts), 0);
    CHECK(!timer_store_open_intent(ts, &got));

    /* Bad input. */
    memset(in.topic, 'x', sizeof in.topic); /* not terminated */
    CHECK_EQ_INT(timer_store_intent_begin(ts, &in), -EINVAL);
    in.topic[0] = 0;
    CHECK_EQ_INT(timer_store_intent_begin(ts, &in), -EINVAL);
    snprintf(in.topic, sizeof in.topic, "o");
    in.n_ids = -1;
    CHECK_EQ_INT(timer_store_intent_begin(ts, &in), -EINVAL);
    in.n_ids = 2;
    CHECK_EQ_INT(timer_store_intent_begin(ts, &in), 0);
    timer_store_close(ts);

    /* A torn intent (a byte of the body changed, or the file cut) is no
     * intent. */
    path_of(p, sizeof p, "intent/intent");
    int fd = open(p, O_RDWR);
    uint8_t byte;
    CHECK_EQ_INT(pread(fd, &byte, 1, 20), 1);
    byte ^= 1;
    CHECK_EQ_INT(pwrite(fd, &byte, 1, 20), 1);
    close(fd);
    ts = open_store(dir, 0);
    CHECK(ts != NULL);
    CHECK(!timer_store_open_intent(ts, &got));
    CHECK_EQ_INT(timer_store_intent_begin(ts, &in), 0);
    timer_store_close(ts);
    CHECK_EQ_INT(truncate(p, 30), 0);
    ts = open_store(dir, 0);
    CHECK(ts != NULL);
    CHECK(!timer_store_open_intent(ts, &got));
    timer_store_close(ts);
}

/* ---- injected failures ---- */

static int fail_writes, fail_fsync;

static ssize_t bad_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    if (fail_writes) {
        /* Part of it reaches the file, then the device fails. */
        if (n > 8)
            (void)storage_io_default.pwrite(fd, buf, n / 2, off);
        errno = EIO;
        return -1;
    }
    return storage_io_default.pwrite(fd, buf, n, off);
}

static int bad_fsync(int fd)
{
    if (fail_fsync) {
        errno = EIO;
        return -1;
    }
    return storage_io_default.fsync(fd);
}

static void test_injected_failures(void)
{
    char dir[300], seg[400];
    path_of(dir, sizeof dir, "inject");
    seg_path(seg, sizeof seg, dir, 0);
    storage_io.pwrite = bad_pwrite;
    storage_io.fsync = bad_fsync;
    struct timer_store *ts = open_store(dir, 0);
    uint64_t a = add(ts, "t", 1, 1);
    CHECK_EQ_INT(timer_store_sync(ts), 0);
    off_t good = fsize(seg);

    /* A failed append: refused, cut back, and the store is read-only. */
    fail_writes = 1;
    int rc;
    add_full(ts, TIMER_DELAY, "t", 2, 2, 0, NULL, &rc);
    fail_writes = 0;
    CHECK_EQ_INT(rc, -EIO);
    CHECK_EQ_INT(fsize(seg), good);
    add_full(ts, TIMER_DELAY, "t", 2, 2, 0, NULL, &rc);
    CHECK_EQ_INT(rc, -EIO);
    CHECK_EQ_INT(timer_store_mark(ts, &a, 1, TIMER_DONE), -EIO);
    CHECK_EQ_INT(timer_store_sync(ts), -EIO);
    struct timer_entry e[4];
    CHECK_EQ_INT(timer_store_take_due(ts, 10, e, 4), 1); /* reads still work */
    timer_entry_free(&e[0]);
    timer_store_close(ts);

    ts = open_store(dir, 0);
    struct timer_counts k;
    timer_store_counts(ts, &k);
    CHECK_EQ_INT(k.total, 1);
    /* A failed mark write. */
    fail_writes = 1;
    CHECK_EQ_INT(timer_store_mark(ts, &a, 1, TIMER_DONE), -EIO);
    fail_writes = 0;
    CHECK_EQ_INT(timer_store_reschedule(ts, a, 5, -1), -EIO);
    timer_store_close(ts);

    /* A failed fsync: reported, then read-only. */
    ts = open_store(dir, 0);
    add(ts, "t", 3, 3);
    fail_fsync = 1;
    CHECK_EQ_INT(timer_store_sync(ts), -EIO);
    fail_fsync = 0;
    add_full(ts, TIMER_DELAY, "t", 2, 2, 0, NULL, &rc);
    CHECK_EQ_INT(rc, -EIO);
    struct timer_intent in = {.topic = "t", .n_ids = 0};
    CHECK_EQ_INT(timer_store_intent_begin(ts, &in), -EIO);
    timer_store_close(ts);
    storage_io = storage_io_default;

    ts = open_store(dir, 0);
    timer_store_counts(ts, &k);
    CHECK_EQ_INT(k.total, 2);
    timer_store_close(ts);
}

/* ---- threads ---- */

#define RACE_N 20000

static struct timer_store *race_ts;
static _Atomic int race_seen[RACE_N];

static void *race_taker(void *arg)
{
    (void)arg;
    struct timer_entry e[64];
    uint64_t ids[64];
    int idle = 0;
    while (idle < 3) {
        int n = timer_store_take_due(race_ts, 1 << 30, e, 64);
        if (n <= 0) {
            idle++;
            continue;
        }
        idle = 0;
        for (int i = 0; i < n; i++) {
            int v = value_n(&e[i]);
            if (v >= 0 && v < RACE_N)
                race_seen[v]++;
            ids[i] = e[i].id;
            /* Every third one goes round again. */
            if (v % 3 == 0 && e[i].checks == 0)
                timer_store_reschedule(race_ts, e[i].id, e[i].due_ms + 1, 1);
            else
                timer_store_mark(race_ts, &ids[i], 1, TIMER_DONE);
        }
        free_all(e, n);
    }
    return NULL;
}

static void *race_adder(void *arg)
{
    (void)arg;
    for (int i = RACE_N / 2; i < RACE_N; i++)
        add(race_ts, "race", i % 100, i);
    return NULL;
}

static void test_threads(void)
{
    char dir[300];
    path_of(dir, sizeof dir, "threads");
    race_ts = open_store(dir, 64 << 10);
    for (int i = 0; i < RACE_N / 2; i++)
        add(race_ts, "race", i % 100, i);
    pthread_t th[3];
    pthread_create(&th[0], NULL, race_adder, NULL);
    pthread_create(&th[1], NULL, race_taker, NULL);
    pthread_create(&th[2], NULL, race_taker, NULL);
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    /* The adder may finish after the takers gave up: drain. */
    race_taker(NULL);
    int wrong = 0;
    for (int i = 0; i < RACE_N; i++)
        if (race_seen[i] != (i % 3 == 0 ? 2 : 1))
            wrong++;
    CHECK_EQ_INT(wrong, 0);
    struct timer_counts k;
    timer_store_counts(race_ts, &k);
    CHECK_EQ_INT(k.total, 0);
    CHECK_EQ_INT(k.segments, 1);
    timer_store_close(race_ts);
}

/* ---- a million entries ---- */

#define BIG_N 1000000

static int64_t big_due(int i)
{
    return 1000000 + (BIG_N - 1 - i) / 1000;
}

static void test_million(void)
{
    char dir[300];
    path_of(dir, sizeof dir, "million");
    struct timer_store *ts = open_store(dir, 0);
    /* 1000 runs of 1000 entries due at the same time, the runs stored
     * latest first: the heap must reverse the runs and keep each run in
     * id order.  (Within a run the entries are adjacent on disk, as with
     * a fixed delay, so the take reads sequentially and the test stays
     * quick under the sanitizers.) */
    int rc = 0;
    for (int i = 0; i < BIG_N && !rc; i++) {
        char v[4];
        memcpy(v, &i, 4);
        struct timer_entry_in in = {
            .kind = TIMER_DELAY,
            .due_ms = big_due(i),
            .topic = "big",
            .topic_len = 3,
            .key_len = -1,
            .value = (const uint8_t *)v,
            .value_len = 4,
        };
        rc = timer_store_add(ts, &in, NULL);
    }
    CHECK_EQ_INT(rc, 0);
    timer_store_close(ts);

    ts = open_store(dir, 0);
    CHECK(ts != NULL);
    struct timer_counts k;
    timer_store_counts(ts, &k);
    CHECK_EQ_INT(k.total, BIG_N);
    static struct timer_entry e[4096];
    int64_t last_due = INT64_MIN, count = 0, bad = 0;
    uint64_t last_id = 0;
    int n;
    while ((n = timer_store_take_due(ts, INT64_MAX, e, 4096)) > 0) {
        for (int i = 0; i < n; i++) {
            int v;
            memcpy(&v, e[i].value, 4);
            if (e[i].due_ms < last_due || (e[i].due_ms == last_due && e[i].id <= last_id) ||
                e[i].due_ms != big_due(v))
                bad++;
            last_due = e[i].due_ms;
            last_id = e[i].id;
            timer_entry_free(&e[i]);
        }
        count += n;
    }
    CHECK_EQ_INT(n, 0);
    CHECK_EQ_INT(count, BIG_N);
    CHECK_EQ_INT(bad, 0);
    timer_store_close(ts);
}

/* add_many: one write per run that fits a segment; same entries as add. */
static void test_add_many(void)
{
    char dir[512];
    path_of(dir, sizeof dir, "many");
    struct timer_store *ts = open_store(dir, 600); /* a few entries per segment */
    CHECK(ts != NULL);
    if (!ts)
        return;
    enum { N = 20 };
    char values[N][8];
    struct timer_entry_in in[N];
    for (int i = 0; i < N; i++) {
        int vl = snprintf(values[i], sizeof values[i], "v%d", i);
        in[i] = (struct timer_entry_in){
            .kind = i % 2 ? TIMER_RETRY : TIMER_DELAY,
            .due_ms = 100 + (N - i) / 2, /* pairs tie: id order decides */
            .created_ms = 1,
            .topic = "many",
            .topic_len = 4,
            .partition = 0,
            .timestamp = 7,
            .key_len = -1,
            .value = (const uint8_t *)values[i],
            .value_len = vl,
        };
    }
    uint64_t ids[N];
    CHECK_EQ_INT(timer_store_add_many(ts, in, N, ids), 0);
    for (int i = 1; i < N; i++)
        CHECK(ids[i] > ids[i - 1]);
    struct timer_counts c;
    timer_store_counts(ts, &c);
    CHECK_EQ_INT(c.pending[TIMER_DELAY], N / 2);
    CHECK_EQ_INT(c.pending[TIMER_RETRY], N / 2);
    CHECK(c.segments > 1);
    struct timer_entry_in half = in[0];
    half.kind = TIMER_HALF;
    CHECK_EQ_INT(timer_store_add_many(ts, &half, 1, NULL), -EINVAL);
    timer_store_close(ts);

    /* Reopened, they come back in (due, id) order. */
    ts = open_store(dir, 600);
    CHECK(ts != NULL);
    if (!ts)
        return;
    struct timer_entry out[N];
    int n = timer_store_take_due(ts, 1000, out, N);
    CHECK_EQ_INT(n, N);
    /* Expected: by due time, ties by position (= index k). */
    int want[N], w = 0;
    for (int64_t due = 100; due <= 100 + N / 2; due++)
        for (int k = 0; k < N; k++)
            if (in[k].due_ms == due)
                want[w++] = k;
    CHECK_EQ_INT(w, N);
    for (int i = 0; i < n; i++)
        CHECK_EQ_INT(value_n(&out[i]), want[i]);
    free_all(out, n);
    timer_store_close(ts);
}

int main(void)
{
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    test_take_order();
    test_reschedule();
    test_mark_counts_list();
    test_halves();
    test_reopen();
    test_torn_tail();
    test_corrupt_entry();
    test_segments();
    test_sealed_damage();
    test_intent();
    test_injected_failures();
    test_threads();
    test_add_many();
    test_million();
    fsutil_rm_rf(root);
    return tap_done();
}
