/*
 * The key index (storage/keyindex.c) against a real partition log: every
 * lookup is compared with the answer computed from what was appended.
 * Keys and "keys" header tokens, every codec, the active segment in
 * memory (more than one sorted run), files written when segments roll,
 * read back after a reopen, torn / damaged / stale / deleted files
 * rejected and rebuilt (lookups right before and after), 32-bit hash
 * collisions, --since, retention, DeleteRecords, compaction, truncation,
 * and lookups racing appends and indexing on threads.
 */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/batch.h"
#include "storage/keyindex.h"
#include "storage/plog.h"
#include "tap.h"

static char root[] = "/tmp/runnel-test-keyindex-XXXXXX";

/* What was appended, to compute the expected answers. */
struct rec {
    int64_t offset, ts;
    size_t number; /* the value is "value-<number>" */
    char key[32];  /* "" with has_key false: null key */
    bool has_key;
    char keys[64]; /* "keys" header value, "" when none */
};
static struct rec *recs;
static size_t nrecs, caprecs;

static size_t numbered;

static void remember(const struct rec *r)
{
    if (nrecs == caprecs) {
        caprecs = caprecs ? caprecs * 2 : 1024;
        recs = realloc(recs, caprecs * sizeof *recs);
    }
    recs[nrecs] = *r;
    recs[nrecs++].number = numbered++;
}

static bool rec_has(const struct rec *r, const char *k)
{
    if (r->has_key && !strcmp(r->key, k))
        return true;
    size_t n = strlen(k);
    for (const char *p = r->keys; *p;) {
        while (*p == ' ')
            p++;
        const char *s = p;
        while (*p && *p != ' ')
            p++;
        if ((size_t)(p - s) == n && n && !memcmp(s, k, n))
            return true;
    }
    return false;
}

/* Key of record number i: 37 keys, a null key every 11th, a "keys"
 * header every 5th ("o<i> b<i/100>", sometimes repeating the key). */
static void make_rec(size_t i, int64_t ts, struct rec *r)
{
    memset(r, 0, sizeof *r);
    r->ts = ts;
    r->has_key = i % 11 != 0;
    if (r->has_key)
        snprintf(r->key, sizeof r->key, "k%zu", i % 37);
    if (i % 5 == 0)
        snprintf(r->keys, sizeof r->keys, i % 10 == 0 ? "o%zu  b%zu k%zu" : "o%zu b%zu", i, i / 100,
                 i % 37);
}

static int codec_of_batch;

/* Appends n records as one batch; returns the plog error. */
static int append_n(struct plog *l, size_t n, int64_t ts0)
{
    struct batch_builder b;
    batch_builder_init(&b, codec_of_batch++ % 5, ts0);
    int64_t first = plog_log_end(l);
    struct rec *batch = calloc(n, sizeof *batch);
    for (size_t j = 0; j < n; j++) {
        size_t i = nrecs + j;
        make_rec(i, ts0 + (int64_t)j, &batch[j]);
        batch[j].offset = first + (int64_t)j;
        char val[48];
        int vl = snprintf(val, sizeof val, "value-%zu", numbered + j);
        struct batch_header_kv h[2] = {
            {(const uint8_t *)"trace", 5, (const uint8_t *)"x", 1},
            {(const uint8_t *)(i % 20 == 0 ? "KEYS" : "keys"), 4, (const uint8_t *)batch[j].keys,
             (int32_t)strlen(batch[j].keys)},
        };
        batch_builder_add(&b, batch[j].ts, batch[j].has_key ? batch[j].key : NULL,
                          batch[j].has_key ? (int32_t)strlen(batch[j].key) : -1, val, vl, h,
                          batch[j].keys[0] ? 2 : 1);
    }
    uint8_t *buf;
    size_t len;
    batch_builder_finish(&b, &buf, &len);
    batch_builder_free(&b);
    struct plog_append_result res;
    int rc = plog_append(l, buf, len, 0, 1000, &res);
    free(buf);
    if (rc == PLOG_OK)
        for (size_t j = 0; j < n; j++)
            remember(&batch[j]);
    free(batch);
    return rc;
}

static int64_t next_ts = 1000000;

static void append_many(struct plog *l, size_t records)
{
    while (records > 0) {
        size_t n = 1 + (size_t)(rand() % 60);
        if (n > records)
            n = records;
        CHECK_EQ_INT(append_n(l, n, next_ts), PLOG_OK);
        next_ts += (int64_t)n;
        records -= n;
    }
}

/* ---- lookups compared with the expected answer ---- */

struct got {
    int64_t *off;
    size_t n, cap;
    bool bad; /* a reported record does not hold the key / out of order */
    const char *key;
    size_t stop_after;
};

static int on_found(void *arg, const struct keyindex_match *m)
{
    struct got *g = arg;
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 64;
        g->off = realloc(g->off, g->cap * sizeof *g->off);
    }
    if (!keyindex_record_has_key(m->record, g->key, strlen(g->key)))
        g->bad = true;
    if (g->n > 0 && g->off[g->n - 1] >= m->offset)
        g->bad = true;
    /* The value names the record number: it must be the one at offset. */
    char want[48];
    size_t lo = 0, hi = nrecs; /* recs are in offset order */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (recs[mid].offset < m->offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t idx = lo < nrecs && recs[lo].offset == m->offset ? lo : nrecs;
    int wl = snprintf(want, sizeof want, "value-%zu", idx < nrecs ? recs[idx].number : 0);
    if (idx == nrecs || m->record->value_len != wl || memcmp(m->record->value, want, (size_t)wl) ||
        m->timestamp != recs[idx].ts)
        g->bad = true;
    g->off[g->n++] = m->offset;
    return g->stop_after && g->n >= g->stop_after;
}

/* True when find(key, since) gives exactly the expected offsets. */
static bool lookup_ok(struct keyindex *k, struct plog *l, const char *key, int64_t since)
{
    struct got g = {.key = key};
    int rc = keyindex_find(k, l, key, strlen(key), since, on_found, &g);
    int64_t start = plog_log_start(l);
    size_t j = 0;
    bool ok = rc == PLOG_OK && !g.bad;
    for (size_t i = 0; ok && i < nrecs; i++) {
        if (recs[i].offset < start || recs[i].ts < since || !rec_has(&recs[i], key))
            continue;
        ok = j < g.n && g.off[j] == recs[i].offset;
        j++;
    }
    ok = ok && j == g.n;
    if (!ok)
        fprintf(stderr, "  lookup of '%s' since %lld: rc %d, %zu found, %zu expected, bad %d\n",
                key, (long long)since, rc, g.n, j, g.bad);
    free(g.off);
    return ok;
}

static size_t expected_count(struct plog *l, const char *key)
{
    int64_t start = plog_log_start(l);
    size_t n = 0;
    for (size_t i = 0; i < nrecs; i++)
        n += recs[i].offset >= start && rec_has(&recs[i], key);
    return n;
}

/* A spread of keys: hot record keys, header tokens, a key that is in a
 * header only, absent ones. */
static bool lookups_ok(struct keyindex *k, struct plog *l)
{
    static const char *keys[] = {"k0",  "k5",    "k36",  "b3",  "b0", "o0",
                                 "o35", "o1005", "nope", "k37", "o"};
    bool ok = true;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        ok &= lookup_ok(k, l, keys[i], -1);
    char o[32];
    snprintf(o, sizeof o, "o%zu", (nrecs - 1) / 5 * 5);
    ok &= lookup_ok(k, l, o, -1);
    return ok;
}

/* ---- files ---- */

static int count_files(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    size_t sl = strlen(suffix);
    while (d && (e = readdir(d))) {
        size_t nl = strlen(e->d_name);
        n += nl > sl && !strcmp(e->d_name + nl - sl, suffix);
    }
    if (d)
        closedir(d);
    return n;
}

static void file_of(char *buf, size_t len, const char *dir, int64_t base)
{
    snprintf(buf, len, "%s/%020lld.keyidx", dir, (long long)base);
}

static struct plog *open_log(const char *dir, const struct plog_config *c, bool clean)
{
    struct plog *l = NULL;
    char err[256];
    if (plog_open(dir, c, clean, &l, err, sizeof err)) {
        fprintf(stderr, "plog_open: %s\n", err);
        exit(1);
    }
    return l;
}

static void reset_recs(void)
{
    nrecs = 0;
    numbered = 0;
    next_ts = 1000000;
}

/* ---- the tests ---- */

static void test_hash(void)
{
    /* FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c; folded: high ^ low. */
    CHECK_EQ_INT(keyindex_hash("a", 1), 0xaf63dc4cu ^ 0x8601ec8cu);
    CHECK_EQ_INT(keyindex_hash("", 0), 0xcbf29ce4u ^ 0x84222325u);
    CHECK(keyindex_hash("k1", 2) != keyindex_hash("k2", 2));
}

static void test_active_and_files(void)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/p0", root);
    struct plog_config c;
    plog_config_defaults(&c);
    c.segment_bytes = 8 * 1024;
    struct plog *l = open_log(dir, &c, true);
    struct keyindex *k = keyindex_new();
    reset_recs();

    /* Nothing indexed yet: lookups scan, and are right. */
    CHECK_EQ_INT(keyindex_sync(k, l), 0);
    append_many(l, 3000);
    CHECK(lookups_ok(k, l));
    /* Segments that rolled since the last sync are indexed by the next
     * one, like the active segment. */
    CHECK(keyindex_sync(k, l) > 0);
    CHECK(lookups_ok(k, l));
    struct keyindex_stats st;
    keyindex_stats(k, &st);
    CHECK(st.segments > 3);
    CHECK_EQ_INT(st.files, st.segments - 1); /* every sealed one has its file */
    CHECK_EQ_INT(st.missing, 0);
    CHECK_EQ_INT(count_files(dir, ".keyidx"), st.segments - 1);
    CHECK_EQ_INT(st.unindexed, 0);

    /* A file on its own: its header names its segment, entries sorted,
     * offsets inside the segment. */
    {
        char f[600], lp[600];
        file_of(f, sizeof f, dir, 0);
        struct keyindex_file kf;
        const char *why = NULL;
        CHECK_EQ_INT(keyindex_file_open(f, &kf, &why), 0);
        snprintf(lp, sizeof lp, "%s/%020d.log", dir, 0);
        struct stat ls;
        stat(lp, &ls);
        CHECK_EQ_INT(kf.base_offset, 0);
        CHECK_EQ_INT(kf.log_size, ls.st_size);
        CHECK_EQ_INT(kf.log_inode, ls.st_ino);
        CHECK(kf.n > 10);
        bool sorted = true, inside = true;
        for (size_t i = 0; i < kf.n; i++) {
            uint64_t e = keyindex_file_entry(&kf, i);
            sorted &= i == 0 || keyindex_file_entry(&kf, i - 1) < e;
            inside &= (uint32_t)e < (uint32_t)recs[nrecs - 1].offset;
        }
        CHECK(sorted);
        CHECK(inside);
        /* The first record's key is in it. */
        bool found = false;
        for (size_t i = 0; i < kf.n; i++) {
            uint64_t e = keyindex_file_entry(&kf, i);
            found |= (uint32_t)(e >> 32) == keyindex_hash(recs[1].key, strlen(recs[1].key)) &&
                     (uint32_t)e == 1;
        }
        CHECK(found);
        keyindex_file_close(&kf);
    }

    /* Appended after the sync: the tail is scanned. */
    append_many(l, 500);
    CHECK(lookups_ok(k, l));
    CHECK(lookup_ok(k, l, "k3", next_ts - 400));
    CHECK(lookup_ok(k, l, "b5", (int64_t)1000000 + 500));
    CHECK(lookup_ok(k, l, "k3", next_ts + 1000)); /* nothing that new */
    keyindex_sync(k, l);
    CHECK(lookups_ok(k, l));

    /* Stop early. */
    struct got g = {.key = "k1", .stop_after = 3};
    CHECK_EQ_INT(keyindex_find(k, l, "k1", 2, -1, on_found, &g), PLOG_OK);
    CHECK_EQ_INT(g.n, 3);
    CHECK(!g.bad);
    free(g.off);

    /* Reopened: files are read back, the active segment re-indexed. */
    keyindex_free(k);
    plog_close(l, true);
    l = open_log(dir, &c, true);
    k = keyindex_new();
    CHECK(lookups_ok(k, l));
    keyindex_sync(k, l);
    keyindex_stats(k, &st);
    CHECK_EQ_INT(st.files, st.segments - 1);
    CHECK_EQ_INT(st.missing, 0);
    CHECK_EQ_INT(keyindex_rebuild_one(k, l), 0);
    CHECK(lookups_ok(k, l));
    keyindex_free(k);
    plog_close(l, true);
}

/* Damages the files of the first segments in different ways: each is
 * rejected, lookups stay right, and a rebuild restores a valid file. */
static void test_bad_files(void)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/p0", root); /* the log of the last test */
    struct plog_config c;
    plog_config_defaults(&c);
    c.segment_bytes = 8 * 1024;
    struct plog *l = open_log(dir, &c, true);
    struct keyindex *k = keyindex_new();
    keyindex_sync(k, l);
    struct keyindex_stats st;
    keyindex_stats(k, &st);
    int sealed = st.segments - 1;
    CHECK(sealed >= 5);
    keyindex_free(k);
    plog_close(l, true);

    /* Segment bases, from the file names. */
    int64_t bases[64];
    int nb = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while ((e = readdir(d)) && nb < 64)
        if (strlen(e->d_name) == 27 && !strcmp(e->d_name + 20, ".keyidx"))
            bases[nb++] = atoll(e->d_name);
    closedir(d);
    for (int i = 0; i < nb; i++)
        for (int j = i + 1; j < nb; j++)
            if (bases[j] < bases[i]) {
                int64_t t = bases[i];
                bases[i] = bases[j];
                bases[j] = t;
            }
    CHECK_EQ_INT(nb, sealed);
    char p[600], q[600];
    struct stat sb;
    /* 0: deleted.  1: torn (cut short).  2: an entry flipped.  3: the
     * file of another segment.  4: header damaged. */
    file_of(p, sizeof p, dir, bases[0]);
    CHECK_EQ_INT(unlink(p), 0);
    file_of(p, sizeof p, dir, bases[1]);
    stat(p, &sb);
    CHECK_EQ_INT(truncate(p, sb.st_size - 5), 0);
    file_of(p, sizeof p, dir, bases[2]);
    int fd = open(p, O_RDWR);
    uint8_t byte;
    pread(fd, &byte, 1, 60);
    byte ^= 0x40;
    pwrite(fd, &byte, 1, 60);
    close(fd);
    file_of(p, sizeof p, dir, bases[3]);
    file_of(q, sizeof q, dir, bases[4]);
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", q, p);
    CHECK_EQ_INT(system(cmd), 0);
    fd = open(q, O_RDWR);
    pwrite(fd, "X", 1, 0);
    close(fd);

    l = open_log(dir, &c, true);
    k = keyindex_new();
    keyindex_sync(k, l);
    keyindex_stats(k, &st);
    CHECK_EQ_INT(st.missing, 5);
    CHECK_EQ_INT(st.files, sealed - 5);
    CHECK(lookups_ok(k, l)); /* scanning the five */
    int rebuilt = 0;
    while (keyindex_rebuild_one(k, l) == 1)
        rebuilt++;
    CHECK_EQ_INT(rebuilt, 5);
    keyindex_stats(k, &st);
    CHECK_EQ_INT(st.missing, 0);
    CHECK_EQ_INT(st.files, sealed);
    CHECK(lookups_ok(k, l));
    file_of(p, sizeof p, dir, bases[0]);
    CHECK_EQ_INT(access(p, F_OK), 0);
    keyindex_free(k);
    plog_close(l, true);

    /* The rebuilt files are accepted as they are on the next open. */
    l = open_log(dir, &c, true);
    k = keyindex_new();
    keyindex_sync(k, l);
    keyindex_stats(k, &st);
    CHECK_EQ_INT(st.missing, 0);
    CHECK_EQ_INT(st.files, sealed);
    CHECK(lookups_ok(k, l));

    /* A file the log no longer has a segment for is an orphan: removed
     * by the next open. */
    file_of(p, sizeof p, dir, 999999999);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", q, p);
    CHECK_EQ_INT(system(cmd), 0);
    keyindex_free(k);
    plog_close(l, true);
    l = open_log(dir, &c, true);
    CHECK(access(p, F_OK) != 0);
    plog_close(l, true);
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

/* Two different keys with the same 32-bit hash. */
static void find_collision(char *a, char *b, size_t len)
{
    size_t n = 1 << 19;
    uint64_t *v = malloc(n * sizeof *v);
    char s[32];
    for (size_t i = 0; i < n; i++) {
        snprintf(s, sizeof s, "c%zu", i);
        v[i] = (uint64_t)keyindex_hash(s, strlen(s)) << 32 | i;
    }
    qsort(v, n, sizeof *v, cmp_u64);
    for (size_t i = 1; i < n; i++)
        if (v[i] >> 32 == v[i - 1] >> 32) {
            snprintf(a, len, "c%u", (unsigned)v[i - 1]);
            snprintf(b, len, "c%u", (unsigned)v[i]);
            break;
        }
    free(v);
}

static void append_keyed(struct plog *l, const char *key, int n)
{
    for (int i = 0; i < n; i++) {
        struct batch_builder b;
        batch_builder_init(&b, 0, next_ts);
        struct rec r = {.ts = next_ts, .has_key = true, .offset = plog_log_end(l)};
        snprintf(r.key, sizeof r.key, "%s", key);
        char val[48];
        int vl = snprintf(val, sizeof val, "value-%zu", numbered);
        batch_builder_add(&b, next_ts++, key, (int32_t)strlen(key), val, vl, NULL, 0);
        uint8_t *buf;
        size_t len;
        batch_builder_finish(&b, &buf, &len);
        batch_builder_free(&b);
        struct plog_append_result res;
        CHECK_EQ_INT(plog_append(l, buf, len, 0, 1000, &res), PLOG_OK);
        free(buf);
        remember(&r);
    }
}

static void test_collisions(void)
{
    char a[32] = "", b[32] = "";
    find_collision(a, b, sizeof a);
    CHECK(a[0] && b[0] && strcmp(a, b));
    CHECK_EQ_INT(keyindex_hash(a, strlen(a)), keyindex_hash(b, strlen(b)));
    char dir[512];
    snprintf(dir, sizeof dir, "%s/coll", root);
    struct plog_config c;
    plog_config_defaults(&c);
    c.segment_bytes = 2048;
    struct plog *l = open_log(dir, &c, true);
    struct keyindex *k = keyindex_new();
    reset_recs();
    keyindex_sync(k, l);
    for (int round = 0; round < 20; round++) {
        append_keyed(l, a, 3);
        append_keyed(l, b, 2);
        append_keyed(l, "other", 1);
    }
    keyindex_sync(k, l);
    struct keyindex_stats st;
    keyindex_stats(k, &st);
    CHECK(st.files >= 2);
    CHECK(lookup_ok(k, l, a, -1));
    CHECK(lookup_ok(k, l, b, -1));
    CHECK_EQ_INT(expected_count(l, a), 60);
    CHECK_EQ_INT(expected_count(l, b), 40);
    keyindex_free(k);
    plog_close(l, true);
}

/* The active segment holds more than one sorted run (65536 entries). */
static void test_runs(void)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/runs", root);
    struct plog_config c;
    plog_config_defaults(&c);
    struct plog *l = open_log(dir, &c, true);
    struct keyindex *k = keyindex_new();
    reset_recs();
    append_many(l, 150000);
    keyindex_sync(k, l);
    struct keyindex_stats st;
    keyindex_stats(k, &st);
    CHECK_EQ_INT(st.segments, 1);
    CHECK(st.entries > 2 * 65536);
    CHECK(lookups_ok(k, l));
    CHECK(lookup_ok(k, l, "k7", 1000000 + 70000));
    /* Sealing it merges the runs into one sorted file. */
    c.segment_bytes = 1024;
    plog_set_config(l, &c);
    append_many(l, 10);
    keyindex_sync(k, l);
    keyindex_stats(k, &st);
    CHECK_EQ_INT(st.files, st.segments - 1);
    CHECK(lookups_ok(k, l));
    keyindex_free(k);
    plog_close(l, true);
}

static void test_retention_and_delete_records(void)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/ret", root);
    struct plog_config c;
    plog_config_defaults(&c);
    c.segment_bytes = 8 * 1024;
    struct plog *l = open_log(dir, &c, true);
    struct keyindex *k = keyindex_new();
    reset_recs();
    keyindex_sync(k, l);
    append_many(l, 4000);
    keyindex_sync(k, l);
    int before = count_files(dir, ".keyidx");
    CHECK(before > 4);
    size_t all = expected_count(l, "k4");

    c.retention_bytes = plog_size_bytes(l) / 2;
    plog_set_config(l, &c);
    int deleted = plog_housekeep(l, 2000);
    CHECK(deleted > 0);
    CHECK_EQ_INT(count_files(dir, ".keyidx"), before - deleted);
    CHECK(expected_count(l, "k4") < all);
    CHECK(lookups_ok(k, l)); /* the index still has the deleted ones */
    keyindex_sync(k, l);
    struct keyindex_stats st;
    keyindex_stats(k, &st);
    CHECK_EQ_INT(st.files, st.segments - 1);
    CHECK(lookups_ok(k, l));

    /* DeleteRecords into the middle of a segment. */
    int64_t ls;
    CHECK_EQ_INT(plog_delete_records(l, plog_log_start(l) + 123, &ls), PLOG_OK);
    CHECK(lookups_ok(k, l));
    keyindex_free(k);
    plog_close(l, true);
}

static void test_truncation(void)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/trunc", root);
    struct plog_config c;
    plog_config_defaults(&c);
    c.segment_bytes = 8 * 1024;
    struct plog *l = open_log(dir, &c, true);
    struct keyindex *k = keyindex_new();
    reset_recs();
    keyindex_sync(k, l);
    append_many(l, 3000);
    keyindex_sync(k, l);
    /* Cut into a sealed segment: it becomes the active one again, and
     * its file goes. */
    int files = count_files(dir, ".keyidx");
    int64_t cut = recs[nrecs / 2].offset;
    CHECK_EQ_INT(plog_truncate_to(l, cut), PLOG_OK);
    size_t keep = 0;
    while (keep < nrecs && recs[keep].offset < plog_log_end(l))
        keep++;
    nrecs = keep;
    CHECK(count_files(dir, ".keyidx") < files);
    CHECK(lookups_ok(k, l));
    /* Re-appended records take the cut offsets. */
    append_many(l, 700);
    CHECK(lookups_ok(k, l));
    keyindex_sync(k, l);
    CHECK(lookups_ok(k, l));
    append_many(l, 2000);
    keyindex_sync(k, l);
    CHECK(lookups_ok(k, l));
    keyindex_free(k);
    plog_close(l, true);
    l = open_log(dir, &c, true);
    k = keyindex_new();
    keyindex_sync(k, l);
    struct keyindex_stats st;
    keyindex_stats(k, &st);
    CHECK_EQ_INT(st.missing, 0);
    CHECK(lookups_ok(k, l));
    keyindex_free(k);
    plog_close(l, true);
}

static void test_compaction(void)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/compact", root);
    struct plog_config c;
    plog_config_defaults(&c);
    c.segment_bytes = 8 * 1024;
    c.compact = true;
    c.retention_ms = -1;
    struct plog *l = open_log(dir, &c, true);
    struct keyindex *k = keyindex_new();
    reset_recs();
    keyindex_sync(k, l);
    for (int r = 0; r < 30; r++)
        for (int i = 0; i < 10; i++) {
            char key[16];
            snprintf(key, sizeof key, "u%d", i);
            append_keyed(l, key, 1);
        }
    keyindex_sync(k, l);
    int64_t end = plog_log_end(l);
    struct plog_clean_stats cs = {.force = true};
    CHECK_EQ_INT(plog_clean(l, 5000, &cs), PLOG_OK);
    CHECK(cs.cleaned);
    CHECK(cs.records_removed > 0);
    /* Remove from the expectation what the cleaner dropped: read back
     * which offsets are left. */
    size_t keep = 0;
    for (size_t i = 0; i < nrecs; i++) {
        struct plog_range rg;
        bool present = false;
        if (plog_read(l, recs[i].offset, 1, end, &rg) == PLOG_OK && rg.fd >= 0) {
            uint8_t *buf = malloc((size_t)rg.len);
            struct batch_hdr h;
            if (pread(rg.fd, buf, (size_t)rg.len, rg.file_pos) == rg.len &&
                batch_parse_header(buf, (size_t)rg.len, INT32_MAX, &h) == PLOG_OK) {
                struct batch_records rs;
                struct batch_record rec;
                batch_records_begin(buf, &h, &rs);
                while (batch_records_next(&rs, &rec) == 1)
                    present |= h.base_offset + rec.offset_delta == recs[i].offset;
                batch_records_end(&rs);
            }
            free(buf);
            plog_range_release(rg.ref);
        }
        if (present)
            recs[keep++] = recs[i];
    }
    CHECK(keep < nrecs);
    nrecs = keep;
    /* Right before the index saw the swap (scans the new segments)... */
    CHECK(lookup_ok(k, l, "u3", -1));
    /* ...and after: the replaced segments' files are rebuilt. */
    keyindex_sync(k, l);
    while (keyindex_rebuild_one(k, l) == 1)
        ;
    CHECK(lookup_ok(k, l, "u3", -1));
    CHECK(lookup_ok(k, l, "u9", -1));
    keyindex_free(k);
    plog_close(l, true);
    /* The stale file of the first replaced segment (same name, other
     * inode) is not taken for the new one. */
    l = open_log(dir, &c, true);
    k = keyindex_new();
    keyindex_sync(k, l);
    struct keyindex_stats st;
    keyindex_stats(k, &st);
    CHECK_EQ_INT(st.missing, 0);
    CHECK(lookup_ok(k, l, "u3", -1));

    /* Compacted again while no index watched (the broker stopped right
     * after): the old file of the first segment has the right name but
     * describes the segment before the clean. */
    for (int r = 0; r < 30; r++)
        for (int i = 0; i < 10; i++) {
            char key[16];
            snprintf(key, sizeof key, "u%d", i);
            append_keyed(l, key, 1);
        }
    keyindex_sync(k, l);
    keyindex_free(k);
    end = plog_log_end(l);
    cs = (struct plog_clean_stats){.force = true};
    CHECK_EQ_INT(plog_clean(l, 5000, &cs), PLOG_OK);
    CHECK(cs.cleaned);
    plog_close(l, true);
    l = open_log(dir, &c, true);
    keep = 0;
    for (size_t i = 0; i < nrecs; i++) {
        struct plog_range rg;
        bool present = false;
        if (plog_read(l, recs[i].offset, 1, end, &rg) == PLOG_OK && rg.fd >= 0) {
            uint8_t *buf = malloc((size_t)rg.len);
            struct batch_hdr h;
            if (pread(rg.fd, buf, (size_t)rg.len, rg.file_pos) == rg.len &&
                batch_parse_header(buf, (size_t)rg.len, INT32_MAX, &h) == PLOG_OK) {
                struct batch_records rs;
                struct batch_record rec;
                batch_records_begin(buf, &h, &rs);
                while (batch_records_next(&rs, &rec) == 1)
                    present |= h.base_offset + rec.offset_delta == recs[i].offset;
                batch_records_end(&rs);
            }
            free(buf);
            plog_range_release(rg.ref);
        }
        if (present)
            recs[keep++] = recs[i];
    }
    nrecs = keep;
    k = keyindex_new();
    keyindex_sync(k, l);
    keyindex_stats(k, &st);
    CHECK(st.missing >= 1);
    CHECK(lookup_ok(k, l, "u3", -1));
    while (keyindex_rebuild_one(k, l) == 1)
        ;
    keyindex_stats(k, &st);
    CHECK_EQ_INT(st.missing, 0);
    CHECK(lookup_ok(k, l, "u3", -1));
    CHECK(lookup_ok(k, l, "u0", -1));
    keyindex_free(k);
    plog_close(l, true);
}

/* Reset with file deletion: key.index turned off. */
static void test_reset(void)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/reset", root);
    struct plog_config c;
    plog_config_defaults(&c);
    c.segment_bytes = 8 * 1024;
    struct plog *l = open_log(dir, &c, true);
    struct keyindex *k = keyindex_new();
    reset_recs();
    keyindex_sync(k, l);
    append_many(l, 1000);
    keyindex_sync(k, l);
    CHECK(count_files(dir, ".keyidx") > 0);
    keyindex_reset(k, true);
    CHECK_EQ_INT(count_files(dir, ".keyidx"), 0);
    CHECK(lookups_ok(k, l));
    keyindex_sync(k, l);
    CHECK(count_files(dir, ".keyidx") == 0); /* missing until rebuilt */
    while (keyindex_rebuild_one(k, l) == 1)
        ;
    CHECK(count_files(dir, ".keyidx") > 0);
    CHECK(lookups_ok(k, l));
    /* A sweep does nothing to an index in use... */
    keyindex_sweep(k, l);
    CHECK(count_files(dir, ".keyidx") > 0);
    keyindex_free(k);
    plog_close(l, true);

    /* ...and removes what a run with the index on left, for a partition
     * that has it off now. */
    l = open_log(dir, &c, true);
    k = keyindex_new();
    keyindex_sweep(k, l);
    CHECK_EQ_INT(count_files(dir, ".keyidx"), 0);
    CHECK(lookups_ok(k, l));
    keyindex_free(k);
    plog_close(l, true);
}

/* ---- threads: appends, indexing and lookups at once ---- */

struct race {
    struct plog *l;
    struct keyindex *k;
    _Atomic bool done;
    _Atomic int bad;
    _Atomic int lookups;
};

static void *indexer(void *arg)
{
    struct race *r = arg;
    while (!r->done) {
        keyindex_sync(r->k, r->l);
        keyindex_rebuild_one(r->k, r->l);
    }
    return NULL;
}

struct seen {
    const char *key;
    int64_t last;
    bool bad;
};

static int on_seen(void *arg, const struct keyindex_match *m)
{
    struct seen *s = arg;
    if (!keyindex_record_has_key(m->record, s->key, strlen(s->key)) || m->offset <= s->last)
        s->bad = true;
    s->last = m->offset;
    return 0;
}

static void *finder(void *arg)
{
    struct race *r = arg;
    static const char *keys[] = {"k1", "k2", "b4", "k30"};
    for (int i = 0; !r->done; i++) {
        struct seen s = {keys[i % 4], -1, false};
        if (keyindex_find(r->k, r->l, s.key, strlen(s.key), -1, on_seen, &s) != PLOG_OK || s.bad)
            r->bad++;
        r->lookups++;
    }
    return NULL;
}

static void test_threads(void)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/race", root);
    struct plog_config c;
    plog_config_defaults(&c);
    c.segment_bytes = 32 * 1024;
    struct plog *l = open_log(dir, &c, true);
    struct race r = {.l = l, .k = keyindex_new()};
    reset_recs();
    pthread_t ti, tf;
    pthread_create(&ti, NULL, indexer, &r);
    pthread_create(&tf, NULL, finder, &r);
    for (int i = 0; i < 40; i++) {
        append_many(l, 300);
        if (i % 10 == 5) {
            c.retention_bytes = plog_size_bytes(l) * 2 / 3;
            plog_set_config(l, &c);
            plog_housekeep(l, 2000);
        }
    }
    while (r.lookups < 20)
        usleep(1000);
    r.done = true;
    pthread_join(ti, NULL);
    pthread_join(tf, NULL);
    CHECK_EQ_INT(r.bad, 0);
    CHECK(lookups_ok(r.k, l));
    keyindex_sync(r.k, l);
    CHECK(lookups_ok(r.k, l));
    keyindex_free(r.k);
    plog_close(l, true);
}

int main(void)
{
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    srand(7);
    test_hash();
    test_active_and_files();
    test_bad_files();
    test_collisions();
    test_runs();
    test_retention_and_delete_records();
    test_truncation();
    test_compaction();
    test_reset();
    test_threads();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", root);
    free(recs);
    return tap_done();
}
