/*
 * Log compaction (storage/cleaner.c) through the plog API: the last
 * record of every key at its original offset, tombstones and their
 * delete horizon, the active segment left alone, every codec, null keys
 * refused, the dirty ratio and forced cleans, min compaction lag, the
 * key map's budget, reads that land in gaps, ranges held across a clean,
 * retention and truncation alongside, a crash at each step of the swap,
 * and appends and reads racing cleans.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "storage/batch.h"
#include "storage/cleaner.h"
#include "storage/plog.h"
#include "tap.h"

static char root[] = "/tmp/runnel-test-cleaner-XXXXXX";

#define NKEYS 300
#define RETENTION 1000 /* delete_retention_ms of the tests */

/* One record as appended, or as read back. */
struct rec {
    int64_t off;
    int key, ver; /* key -1: null key */
    bool tomb;
    int64_t ts;
};

/* Everything appended to one log, in offset order. */
struct model {
    struct rec *r;
    int n, cap;
    int ver[NKEYS];
    uint64_t rnd;
    int64_t ts;
};

/* m must be zeroed or initialised before. */
static void model_init(struct model *m, uint64_t seed)
{
    free(m->r);
    memset(m, 0, sizeof *m);
    m->rnd = seed;
    m->ts = 1000000;
}

static uint32_t rnd(struct model *m)
{
    m->rnd = m->rnd * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(m->rnd >> 33);
}

static void model_add(struct model *m, struct rec r)
{
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 1024;
        m->r = realloc(m->r, (size_t)m->cap * sizeof *m->r);
    }
    m->r[m->n++] = r;
}

static struct plog *open_log(const char *name, const struct plog_config *c, bool clean)
{
    char dir[300], err[256];
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    struct plog *l = NULL;
    if (plog_open(dir, c, clean, &l, err, sizeof err) != 0)
        fprintf(stderr, "open %s: %s\n", dir, err);
    return l;
}

static void config(struct plog_config *c)
{
    plog_config_defaults(c);
    c->compact = true;
    c->segment_bytes = 4096;
    c->index_interval_bytes = 256;
    c->delete_retention_ms = RETENTION;
    c->segment_ms = -1;
    c->retention_ms = -1;
}

/* Appends one batch of n records (random keys, 1 in 8 a tombstone). */
static int append_random(struct plog *l, struct model *m, int codec, int n)
{
    struct batch_builder b;
    batch_builder_init(&b, codec < 0 ? (int)(rnd(m) % 5) : codec, m->ts);
    struct rec rs[16];
    for (int i = 0; i < n; i++) {
        char k[32], v[64];
        rs[i].key = (int)(rnd(m) % NKEYS);
        rs[i].ver = ++m->ver[rs[i].key];
        rs[i].tomb = rnd(m) % 8 == 0;
        rs[i].ts = m->ts + i;
        int kl = snprintf(k, sizeof k, "key-%d", rs[i].key);
        int vl = snprintf(v, sizeof v, "k%d-v%d-padding-padding", rs[i].key, rs[i].ver);
        batch_builder_add(&b, rs[i].ts, k, kl, rs[i].tomb ? NULL : v, vl, NULL, 0);
    }
    uint8_t *buf;
    size_t len;
    batch_builder_finish(&b, &buf, &len);
    batch_builder_free(&b);
    struct plog_append_result res;
    int rc = plog_append(l, buf, len, 0, m->ts, &res);
    free(buf);
    if (rc != PLOG_OK)
        return rc;
    for (int i = 0; i < n; i++) {
        rs[i].off = res.base_offset + i;
        model_add(m, rs[i]);
    }
    m->ts += 10;
    return PLOG_OK;
}

static int fill(struct plog *l, struct model *m, int codec, int records)
{
    int bad = 0;
    for (int done = 0; done < records;) {
        int n = 1 + (int)(rnd(m) % 5);
        bad += append_random(l, m, codec, n) != PLOG_OK;
        done += n;
    }
    return bad;
}

/* Parses "key-<k>" / "k<k>-v<ver>...". */
static bool decode(const struct batch_record *rec, struct rec *out)
{
    char tmp[80];
    out->key = -1;
    if (rec->key) {
        if (rec->key_len >= (int)sizeof tmp)
            return false;
        memcpy(tmp, rec->key, (size_t)rec->key_len);
        tmp[rec->key_len] = 0;
        if (sscanf(tmp, "key-%d", &out->key) != 1)
            return false;
    }
    out->tomb = !rec->value;
    out->ver = -1;
    if (rec->value) {
        int k;
        if (rec->value_len >= (int)sizeof tmp)
            return false;
        memcpy(tmp, rec->value, (size_t)rec->value_len);
        tmp[rec->value_len] = 0;
        if (sscanf(tmp, "k%d-v%d", &k, &out->ver) != 2 || k != out->key)
            return false;
    }
    return true;
}

/*
 * Reads the whole log with plog_read, checking every batch, into out[]
 * (records) and, when wanted, the batches' base and last offsets.  Returns
 * the number of records, or -1 when anything is wrong (unreadable batch,
 * offsets not increasing).
 */
static int read_log(struct plog *l, struct rec *out, int max, int64_t *bases, int64_t *lasts,
                    int *nb, int64_t *max_ts)
{
    int64_t off = plog_log_start(l), end = plog_log_end(l), prev = -1;
    int n = 0, batches = 0;
    while (off < end) {
        struct plog_range r;
        int rc = plog_read(l, off, 1 << 20, INT64_MAX, &r);
        if (rc == PLOG_ERR_OUT_OF_RANGE && off < plog_log_start(l)) {
            off = plog_log_start(l); /* retention ran meanwhile */
            continue;
        }
        if (rc != PLOG_OK)
            return -1;
        if (r.fd < 0)
            break;
        uint8_t *buf = malloc((size_t)r.len);
        bool ok = pread(r.fd, buf, (size_t)r.len, r.file_pos) == r.len;
        int64_t pos = 0;
        while (ok && pos < r.len) {
            struct batch_hdr h;
            ok = batch_parse_header(buf + pos, (size_t)(r.len - pos), r.len - pos - 12, &h) ==
                     PLOG_OK &&
                 batch_validate(buf + pos, (size_t)batch_size(&h), false, NULL) == PLOG_OK &&
                 h.base_offset > prev && batch_last_offset(&h) >= off;
            if (!ok)
                break;
            if (bases && batches < max) {
                bases[batches] = h.base_offset;
                lasts[batches] = batch_last_offset(&h);
                max_ts[batches] = h.max_timestamp;
            }
            batches++;
            struct batch_records rs;
            struct batch_record rec;
            ok = batch_records_begin(buf + pos, &h, &rs) == PLOG_OK;
            int rr = 0;
            while (ok && (rr = batch_records_next(&rs, &rec)) == 1) {
                struct rec x;
                x.off = h.base_offset + rec.offset_delta;
                x.ts = h.base_timestamp + rec.timestamp_delta;
                ok = decode(&rec, &x) && x.off > prev && n < max;
                if (ok)
                    out[n++] = x;
                prev = x.off;
            }
            if (ok)
                ok = rr == 0;
            batch_records_end(&rs);
            off = batch_last_offset(&h) + 1;
            pos += batch_size(&h);
        }
        free(buf);
        plog_range_release(r.ref);
        if (!ok)
            return -1;
    }
    if (nb)
        *nb = batches;
    return n;
}

/*
 * What a clean of everything below `upto` leaves: there, the last
 * record of each key among those below `upto` (tombstones only when
 * `tombs`); from `upto` on, everything.  Records without a key stay.
 */
static int expect(const struct model *m, int64_t upto, bool tombs, struct rec *out)
{
    int64_t *last = malloc(NKEYS * sizeof *last);
    for (int k = 0; k < NKEYS; k++)
        last[k] = -1;
    for (int i = 0; i < m->n; i++)
        if (m->r[i].off < upto && m->r[i].key >= 0)
            last[m->r[i].key] = m->r[i].off;
    int n = 0;
    for (int i = 0; i < m->n; i++) {
        const struct rec *r = &m->r[i];
        if (r->off < upto && r->key >= 0 && (last[r->key] != r->off || (r->tomb && !tombs)))
            continue;
        out[n++] = *r;
    }
    free(last);
    return n;
}

/* Compares what was read with what was expected; counts differences. */
static int diff(const struct rec *got, int ngot, const struct rec *want, int nwant)
{
    if (ngot != nwant) {
        fprintf(stderr, "  read %d records, expected %d\n", ngot, nwant);
        return 1 + abs(ngot - nwant);
    }
    int bad = 0;
    for (int i = 0; i < ngot; i++) {
        if (got[i].off != want[i].off || got[i].key != want[i].key || got[i].tomb != want[i].tomb ||
            (!got[i].tomb && got[i].ver != want[i].ver)) {
            if (bad < 3)
                fprintf(stderr,
                        "  at %d: read off %lld key %d ver %d tomb %d, expected %lld %d %d %d\n", i,
                        (long long)got[i].off, got[i].key, got[i].ver, got[i].tomb,
                        (long long)want[i].off, want[i].key, want[i].ver, want[i].tomb);
            bad++;
        }
    }
    return bad;
}

/* Every key's last value in the whole log is the last one appended
 * (for the keys last appended at or after `from`). */
static int last_values_bad_from(const struct model *m, const struct rec *got, int ngot,
                                int64_t from)
{
    int want[NKEYS], have[NKEYS];
    bool wtomb[NKEYS], htomb[NKEYS];
    for (int k = 0; k < NKEYS; k++)
        want[k] = have[k] = -2;
    for (int i = 0; i < m->n; i++)
        if (m->r[i].key >= 0) {
            want[m->r[i].key] = m->r[i].ver;
            wtomb[m->r[i].key] = m->r[i].tomb;
        }
    for (int i = 0; i < ngot; i++)
        if (got[i].key >= 0) {
            have[got[i].key] = got[i].ver;
            htomb[got[i].key] = got[i].tomb;
        }
    int64_t last_off[NKEYS];
    for (int i = 0; i < m->n; i++)
        if (m->r[i].key >= 0)
            last_off[m->r[i].key] = m->r[i].off;
    int bad = 0;
    for (int k = 0; k < NKEYS; k++) {
        if (want[k] == -2 || last_off[k] < from)
            continue;
        /* A key whose last record was a tombstone may be gone entirely. */
        if (wtomb[k] ? (have[k] != -2 && !(htomb[k] && have[k] == -1)) : have[k] != want[k])
            bad++;
    }
    return bad;
}

static int last_values_bad(const struct model *m, const struct rec *got, int ngot)
{
    return last_values_bad_from(m, got, ngot, 0);
}

static int count_suffix(const char *name, const char *suffix)
{
    char dir[300];
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    size_t m = strlen(suffix);
    while (d && (de = readdir(d)) != NULL) {
        size_t k = strlen(de->d_name);
        n += k >= m && !strcmp(de->d_name + k - m, suffix);
    }
    if (d)
        closedir(d);
    return n;
}

/* The bytes of every segment file with the given extension, names
 * included, as one malloc'ed blob (for comparing two directories). */
static char *snapshot(const char *name, const char *ext, size_t *len)
{
    char dir[300];
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    struct dirent **list;
    int n = scandir(dir, &list, NULL, alphasort);
    char *out = NULL;
    size_t cap = 0;
    *len = 0;
    for (int i = 0; i < n; i++) {
        const char *nm = list[i]->d_name;
        size_t k = strlen(nm);
        if (k == 20 + strlen(ext) && !strcmp(nm + 20, ext)) {
            char p[600];
            snprintf(p, sizeof p, "%s/%s", dir, nm);
            FILE *f = fopen(p, "rb");
            struct stat st;
            if (f && fstat(fileno(f), &st) == 0) {
                size_t need = *len + k + (size_t)st.st_size + 1;
                if (need > cap) {
                    cap = need * 2;
                    out = realloc(out, cap);
                }
                memcpy(out + *len, nm, k);
                *len += k;
                *len += fread(out + *len, 1, (size_t)st.st_size, f);
            }
            if (f)
                fclose(f);
        }
        free(list[i]);
    }
    free(list);
    return out;
}

/* The active (last) segment's .log bytes. */
static char *active_bytes(const char *name, size_t *len)
{
    char dir[300];
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    struct dirent **list;
    int n = scandir(dir, &list, NULL, alphasort);
    char last[300] = "";
    for (int i = 0; i < n; i++) {
        const char *nm = list[i]->d_name;
        if (strlen(nm) == 24 && !strcmp(nm + 20, ".log"))
            snprintf(last, sizeof last, "%s", nm);
        free(list[i]);
    }
    free(list);
    char p[700];
    snprintf(p, sizeof p, "%s/%s", dir, last);
    FILE *f = fopen(p, "rb");
    char *out = NULL;
    *len = 0;
    struct stat st;
    if (f && fstat(fileno(f), &st) == 0) {
        out = malloc((size_t)st.st_size + 1);
        *len = fread(out, 1, (size_t)st.st_size, f);
    }
    if (f)
        fclose(f);
    return out;
}

static int64_t active_base(const char *name)
{
    char dir[300];
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    struct dirent **list;
    int n = scandir(dir, &list, NULL, alphasort);
    long long base = -1;
    for (int i = 0; i < n; i++) {
        const char *nm = list[i]->d_name;
        if (strlen(nm) == 24 && !strcmp(nm + 20, ".log"))
            sscanf(nm, "%20lld", &base);
        free(list[i]);
    }
    free(list);
    return base;
}

/* The base offsets of the segments, ascending. */
static int seg_bases(const char *name, int64_t *out, int max)
{
    char dir[300];
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    struct dirent **list;
    int n = scandir(dir, &list, NULL, alphasort), k = 0;
    for (int i = 0; i < n; i++) {
        const char *nm = list[i]->d_name;
        long long base;
        if (strlen(nm) == 24 && !strcmp(nm + 20, ".log") && k < max &&
            sscanf(nm, "%20lld", &base) == 1)
            out[k++] = base;
        free(list[i]);
    }
    free(list);
    return k;
}

#define MAXR 20000
static struct rec got[MAXR], want[MAXR], before[MAXR];

/* ---- tests ---- */

static void test_compaction(void)
{
    struct plog_config c;
    config(&c);
    struct plog *l = open_log("basic", &c, true);
    CHECK(l != NULL);
    struct model m = {0};
    model_init(&m, 1);
    CHECK_EQ_INT(fill(l, &m, 0, 3000), 0);
    int segs = count_suffix("basic", ".log");
    CHECK(segs > 10);
    int64_t start = plog_log_start(l), end = plog_log_end(l), upto = active_base("basic");
    CHECK(upto > 0 && upto < end);
    size_t alen, alen2;
    char *act = active_bytes("basic", &alen);
    int64_t size_before = plog_size_bytes(l);

    /* Before any clean the log reads back exactly as written. */
    int n = read_log(l, got, MAXR, NULL, NULL, NULL, NULL);
    CHECK_EQ_INT(diff(got, n, m.r, m.n), 0);

    int64_t now = m.ts + 100;
    struct plog_clean_stats st = {.force = false};
    CHECK_EQ_INT(plog_clean(l, now, &st), PLOG_OK);
    CHECK(st.cleaned);
    CHECK(st.dirty_ratio == 1.0); /* never cleaned: all dirty */
    CHECK_EQ_INT(st.first_dirty_offset, 0);
    CHECK_EQ_INT(st.end_offset, upto);
    CHECK(st.records_removed > 1000);
    CHECK(st.keys > 0 && st.keys <= NKEYS);
    CHECK_EQ_INT(st.segments_read, segs - 1);
    CHECK(st.segments_written <= st.segments_read);
    CHECK(plog_size_bytes(l) < size_before);
    CHECK_EQ_INT(plog_log_start(l), start);
    CHECK_EQ_INT(plog_log_end(l), end);
    char *act2 = active_bytes("basic", &alen2);
    CHECK(alen == alen2 && act && act2 && !memcmp(act, act2, alen));
    free(act2);
    CHECK_EQ_INT(count_suffix("basic", ".cleaned") + count_suffix("basic", ".swap"), 0);

    /* Last record per key below the active segment, at its offset;
     * tombstones still there; the active segment as written. */
    n = read_log(l, got, MAXR, NULL, NULL, NULL, NULL);
    int nw = expect(&m, upto, true, want);
    CHECK(nw < m.n / 2);
    CHECK_EQ_INT(diff(got, n, want, nw), 0);
    CHECK_EQ_INT(last_values_bad(&m, got, n), 0);
    int tombs = 0;
    for (int i = 0; i < n; i++)
        tombs += got[i].tomb && got[i].off < upto;
    CHECK(tombs > 0);
    /* Record timestamps survive the delete horizon in the batch. */
    int ts_bad = 0;
    for (int i = 0; i < n; i++)
        ts_bad += got[i].ts != want[i].ts;
    CHECK_EQ_INT(ts_bad, 0);

    /* Nothing dirty: nothing to do, unless forced. */
    CHECK_EQ_INT(plog_clean(l, now + 1, &st), PLOG_OK);
    CHECK(!st.cleaned);
    CHECK(st.dirty_ratio == 0.0);
    CHECK(plog_dirty_ratio(l, now) == 0.0);

    /* Forced before the horizon: the tombstones stay, and the small
     * compacted segments merge. */
    int segs1 = count_suffix("basic", ".log");
    st = (struct plog_clean_stats){.force = true};
    CHECK_EQ_INT(plog_clean(l, now + RETENTION - 1, &st), PLOG_OK);
    CHECK_EQ_INT(st.tombstones_removed, 0);
    CHECK(st.cleaned);
    CHECK(st.segments_written < st.segments_read);
    CHECK(count_suffix("basic", ".log") < segs1);
    CHECK_EQ_INT(count_suffix("basic", ".deleted"), 0);
    n = read_log(l, got, MAXR, NULL, NULL, NULL, NULL);
    CHECK_EQ_INT(diff(got, n, want, nw), 0);

    /* Past the horizon a clean is due by itself and drops them. */
    st = (struct plog_clean_stats){0};
    CHECK_EQ_INT(plog_clean(l, now + RETENTION, &st), PLOG_OK);
    CHECK(st.cleaned);
    CHECK_EQ_INT(st.tombstones_removed, tombs);
    n = read_log(l, got, MAXR, NULL, NULL, NULL, NULL);
    nw = expect(&m, upto, false, want);
    CHECK_EQ_INT(diff(got, n, want, nw), 0);
    CHECK_EQ_INT(last_values_bad(&m, got, n), 0);
    CHECK_EQ_INT(plog_log_start(l), start);
    CHECK_EQ_INT(plog_log_end(l), end);

    /* And it all survives a restart, clean or not. */
    plog_close(l, true);
    l = open_log("basic", &c, false);
    CHECK(l != NULL);
    n = read_log(l, got, MAXR, NULL, NULL, NULL, NULL);
    CHECK_EQ_INT(diff(got, n, want, nw), 0);
    CHECK_EQ_INT(plog_log_end(l), end);
    /* The checkpoint kept the clean offset: nothing is dirty. */
    CHECK(plog_dirty_ratio(l, now) == 0.0);
    st = (struct plog_clean_stats){0};
    CHECK_EQ_INT(plog_clean(l, now + 5 * RETENTION, &st), PLOG_OK);
    CHECK(!st.cleaned);

    /* New data after it: still the last value of every key. */
    CHECK_EQ_INT(fill(l, &m, 0, 1500), 0);
    int64_t upto2 = active_base("basic");
    st = (struct plog_clean_stats){.force = true};
    CHECK_EQ_INT(plog_clean(l, m.ts, &st), PLOG_OK);
    CHECK(st.cleaned);
    CHECK_EQ_INT(st.first_dirty_offset, upto);
    n = read_log(l, got, MAXR, NULL, NULL, NULL, NULL);
    CHECK(n > 0);
    CHECK_EQ_INT(last_values_bad(&m, got, n), 0);
    /* Every record as written at its offset; below upto2 each key's
     * value at most once. */
    int offs_bad = 0, j = 0;
    for (int i = 0; i < n; i++) {
        while (j < m.n && m.r[j].off < got[i].off)
            j++;
        offs_bad += j == m.n || m.r[j].off != got[i].off || m.r[j].key != got[i].key ||
                    m.r[j].tomb != got[i].tomb;
    }
    CHECK_EQ_INT(offs_bad, 0);
    int seen[NKEYS] = {0}, dup = 0;
    for (int i = 0; i < n; i++)
        if (got[i].off < upto2 && !got[i].tomb && ++seen[got[i].key] > 1)
            dup++;
    CHECK_EQ_INT(dup, 0);
    free(act);
    plog_close(l, true);
    free(m.r);
}

static void test_codecs(void)
{
    for (int codec = -1; codec <= 4; codec++) {
        char name[32];
        snprintf(name, sizeof name, "codec%d", codec + 1);
        struct plog_config c;
        config(&c);
        struct plog *l = open_log(name, &c, true);
        CHECK(l != NULL);
        struct model m = {0};
        model_init(&m, 7 + (uint64_t)codec);
        CHECK_EQ_INT(fill(l, &m, codec, 2000), 0);
        int64_t upto = active_base(name);
        struct plog_clean_stats st = {.force = true};
        CHECK_EQ_INT(plog_clean(l, m.ts, &st), PLOG_OK);
        CHECK(st.cleaned);
        CHECK(st.records_removed > 0);
        int n = read_log(l, got, MAXR, NULL, NULL, NULL, NULL);
        int nw = expect(&m, upto, true, want);
        CHECK_EQ_INT(diff(got, n, want, nw), 0);
        /* Rebuilt batches keep their codec. */
        struct plog_range r;
        int codec_bad = 0;
        for (int64_t off = 0; off < upto; off += 97) {
            CHECK_EQ_INT(plog_read(l, off, 1, INT64_MAX, &r), PLOG_OK);
            uint8_t hb[BATCH_HEADER_SIZE];
            struct batch_hdr h;
            if (r.fd < 0 || pread(r.fd, hb, sizeof hb, r.file_pos) != (ssize_t)sizeof hb ||
                batch_parse_header(hb, sizeof hb, INT32_MAX, &h) != PLOG_OK ||
                (codec >= 0 && batch_codec(&h) != codec))
                codec_bad++;
            plog_range_release(r.ref);
        }
        CHECK_EQ_INT(codec_bad, 0);
        /* Past the horizon: tombstones gone, in every codec. */
        st = (struct plog_clean_stats){.force = true};
        CHECK_EQ_INT(plog_clean(l, m.ts + RETENTION, &st), PLOG_OK);
        n = read_log(l, got, MAXR, NULL, NULL, NULL, NULL);
        nw = expect(&m, upto, false, want);
        CHECK_EQ_INT(diff(got, n, want, nw), 0);
        plog_close(l, true);
        free(m.r);
    }
}

static void test_log_append_time(void)
{
    struct plog_config c;
    config(&c);
    c.log_append_time = true;
    struct plog *l = open_log("append-time", &c, true);
    struct model m = {0};
    model_init(&m, 3);
    CHECK_EQ_INT(fill(l, &m, 2, 1500), 0);
    int64_t upto = active_base("append-time");
    struct plog_clean_stats st = {.force = true};
    CHECK_EQ_INT(plog_clean(l, m.ts, &st), PLOG_OK);
    static int64_t bases[MAXR], lasts[MAXR], max_ts[MAXR];
    int nb = 0;
    int n = read_log(l, got, MAXR, bases, lasts, &nb, max_ts);
    CHECK_EQ_INT(diff(got, n, want, expect(&m, upto, true, want)), 0);
    /* maxTimestamp is still each batch's append time (the model's ts of
     * its first record: append_random appends at m->ts). */
    int bad = 0, j = 0;
    for (int b = 0; b < nb; b++) {
        while (j < m.n && m.r[j].off < bases[b])
            j++;
        bad += j == m.n || max_ts[b] != m.r[j].ts;
    }
    CHECK_EQ_INT(bad, 0);
    plog_close(l, true);
    free(m.r);
}

static void test_refused(void)
{
    struct plog_config c;
    config(&c);
    struct plog *l = open_log("refused", &c, true);
    struct model m = {0};
    model_init(&m, 5);
    CHECK_EQ_INT(fill(l, &m, 0, 20), 0);
    int64_t end = plog_log_end(l), size = plog_size_bytes(l);

    /* A null key among keyed records: the whole append is refused. */
    struct batch_builder b;
    batch_builder_init(&b, 0, 5000);
    batch_builder_add(&b, 5000, "key-1", 5, "x", 1, NULL, 0);
    batch_builder_add(&b, 5000, NULL, -1, "y", 1, NULL, 0);
    uint8_t *buf;
    size_t len;
    batch_builder_finish(&b, &buf, &len);
    batch_builder_free(&b);
    struct plog_append_result res;
    CHECK_EQ_INT(plog_append(l, buf, len, 0, 5000, &res), PLOG_ERR_INVALID);
    free(buf);
    CHECK_EQ_INT(plog_log_end(l), end);
    CHECK_EQ_INT(plog_size_bytes(l), size);

    /* The delete horizon is the cleaner's to set. */
    batch_builder_init(&b, 0, 5000);
    b.attributes = BATCH_ATTR_DELETE_HORIZON;
    batch_builder_add(&b, 5000, "key-1", 5, NULL, -1, NULL, 0);
    batch_builder_finish(&b, &buf, &len);
    batch_builder_free(&b);
    CHECK_EQ_INT(plog_append(l, buf, len, 0, 5000, &res), PLOG_ERR_INVALID);
    free(buf);
    CHECK_EQ_INT(plog_log_end(l), end);

    /* Not compacted: a null key is fine, and plog_clean does nothing. */
    c.compact = false;
    plog_set_config(l, &c);
    batch_builder_init(&b, 0, 5000);
    batch_builder_add(&b, 5000, NULL, -1, "y", 1, NULL, 0);
    batch_builder_finish(&b, &buf, &len);
    batch_builder_free(&b);
    CHECK_EQ_INT(plog_append(l, buf, len, 0, 5000, &res), PLOG_OK);
    free(buf);
    CHECK_EQ_INT(plog_log_end(l), end + 1);
    struct plog_clean_stats st = {.force = true};
    CHECK_EQ_INT(plog_clean(l, 6000, &st), PLOG_OK);
    CHECK(!st.cleaned);
    CHECK(plog_dirty_ratio(l, 6000) == 0.0);
    plog_close(l, true);
    free(m.r);
}

static void test_dirty_ratio(void)
{
    struct plog_config c;
    config(&c);
    struct plog *l = open_log("ratio", &c, true);
    struct model m = {0};
    model_init(&m, 11);
    CHECK_EQ_INT(fill(l, &m, 0, 3000), 0);
    struct plog_clean_stats st = {0};
    CHECK_EQ_INT(plog_clean(l, m.ts, &st), PLOG_OK);
    CHECK(st.cleaned);
    /* Roll a couple of new segments: a little dirty. */
    int64_t base = active_base("ratio");
    while (active_base("ratio") == base)
        CHECK_EQ_INT(fill(l, &m, 0, 5), 0);
    double r = plog_dirty_ratio(l, m.ts);
    CHECK(r > 0.0 && r < 1.0);

    /* Just above the ratio: not due. */
    c.min_cleanable_dirty_ratio = r + 0.001;
    plog_set_config(l, &c);
    size_t len1, len2;
    char *before = snapshot("ratio", ".log", &len1);
    st = (struct plog_clean_stats){0};
    CHECK_EQ_INT(plog_clean(l, m.ts, &st), PLOG_OK);
    CHECK(!st.cleaned);
    CHECK(st.dirty_ratio == r);
    char *after = snapshot("ratio", ".log", &len2);
    CHECK(len1 == len2 && !memcmp(before, after, len1));
    free(after);
    /* Exactly the ratio: due. */
    c.min_cleanable_dirty_ratio = r;
    plog_set_config(l, &c);
    st = (struct plog_clean_stats){0};
    CHECK_EQ_INT(plog_clean(l, m.ts, &st), PLOG_OK);
    CHECK(st.cleaned);
    free(before);

    /* Forced below the ratio. */
    base = active_base("ratio");
    while (active_base("ratio") == base)
        CHECK_EQ_INT(fill(l, &m, 0, 5), 0);
    c.min_cleanable_dirty_ratio = 0.99;
    plog_set_config(l, &c);
    st = (struct plog_clean_stats){0};
    CHECK_EQ_INT(plog_clean(l, m.ts, &st), PLOG_OK);
    CHECK(!st.cleaned);
    st = (struct plog_clean_stats){.force = true};
    CHECK_EQ_INT(plog_clean(l, m.ts, &st), PLOG_OK);
    CHECK(st.cleaned);
    int n = read_log(l, got, MAXR, NULL, NULL, NULL, NULL);
    CHECK_EQ_INT(last_values_bad(&m, got, n), 0);
    plog_close(l, true);
    free(m.r);
}

static void test_lag(void)
{
    struct plog_config c;
    config(&c);
    struct plog *l = open_log("lag", &c, true);
    struct model m = {0};
    model_init(&m, 13);
    CHECK_EQ_INT(fill(l, &m, 0, 3000), 0);
    int64_t now = m.ts;

    /* Everything younger than the lag: nothing cleaned. */
    c.min_compaction_lag_ms = now;
    plog_set_config(l, &c);
    struct plog_clean_stats st = {.force = true};
    CHECK_EQ_INT(plog_clean(l, now, &st), PLOG_OK);
    CHECK(!st.cleaned);

    /* Records newer than the cut-off are all still there. */
    int64_t cutoff = m.r[m.n / 2].ts;
    c.min_compaction_lag_ms = now - cutoff;
    plog_set_config(l, &c);
    st = (struct plog_clean_stats){.force = true};
    CHECK_EQ_INT(plog_clean(l, now, &st), PLOG_OK);
    CHECK(st.cleaned);
    CHECK(st.end_offset <= m.r[m.n / 2].off + 1);
    int n = read_log(l, got, MAXR, NULL, NULL, NULL, NULL);
    int missing = 0, j = 0;
    for (int i = 0; i < m.n; i++) {
        if (m.r[i].ts <= cutoff)
            continue;
        while (j < n && got[j].off < m.r[i].off)
            j++;
        missing += j == n || got[j].off != m.r[i].off;
    }
    CHECK_EQ_INT(missing, 0);
    CHECK(n < m.n);
    CHECK_EQ_INT(last_values_bad(&m, got, n), 0);
    plog_close(l, true);
    free(m.r);
}

static void test_map_budget(void)
{
    struct plog_config c;
    config(&c);
    struct plog *l = open_log("budget", &c, true);
    struct model m = {0};
    model_init(&m, 17);
    CHECK_EQ_INT(fill(l, &m, 0, 3000), 0);
    int64_t upto = active_base("budget");
    int segs = count_suffix("budget", ".log") - 1;
    /* A map too small for anything: one dirty segment per clean. */
    int rounds = 0;
    int64_t prev_end = -1;
    bool progress = true;
    for (;;) {
        struct plog_clean_stats st = {.force = true, .max_map_bytes = 1};
        CHECK_EQ_INT(plog_clean(l, m.ts, &st), PLOG_OK);
        progress &= st.end_offset > prev_end;
        prev_end = st.end_offset;
        rounds++;
        if (st.end_offset >= upto || rounds > 100)
            break;
    }
    CHECK(progress);
    CHECK_EQ_INT(rounds, segs);
    int n = read_log(l, got, MAXR, NULL, NULL, NULL, NULL);
    CHECK_EQ_INT(diff(got, n, want, expect(&m, upto, true, want)), 0);
    plog_close(l, true);
    free(m.r);
}

static void test_gaps(void)
{
    struct plog_config c;
    config(&c);
    struct plog *l = open_log("gaps", &c, true);
    struct model m = {0};
    model_init(&m, 19);
    CHECK_EQ_INT(fill(l, &m, -1, 3000), 0);
    struct plog_clean_stats st = {.force = true};
    CHECK_EQ_INT(plog_clean(l, m.ts, &st), PLOG_OK);
    static int64_t bases[MAXR], lasts[MAXR], max_ts[MAXR];
    int nb = 0;
    CHECK(read_log(l, got, MAXR, bases, lasts, &nb, max_ts) > 0);
    /* Every offset, removed or not, reads as the first batch whose last
     * offset reaches it. */
    int bad = 0, b = 0, gaps = 0;
    for (int64_t off = plog_log_start(l); off < plog_log_end(l); off++) {
        while (b < nb && lasts[b] < off)
            b++;
        gaps += off < bases[b];
        struct plog_range r;
        uint8_t hb[BATCH_HEADER_SIZE];
        struct batch_hdr h;
        if (plog_read(l, off, 1, INT64_MAX, &r) != PLOG_OK || r.fd < 0 ||
            pread(r.fd, hb, sizeof hb, r.file_pos) != (ssize_t)sizeof hb ||
            batch_parse_header(hb, sizeof hb, INT32_MAX, &h) != PLOG_OK ||
            h.base_offset != bases[b])
            bad++;
        plog_range_release(r.ref);
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(gaps > 1000);

    /* The high watermark still bounds a read that starts in a gap. */
    int64_t gap = -1;
    for (int i = 1; i < nb && gap < 0; i++)
        if (bases[i] > lasts[i - 1] + 1)
            gap = lasts[i - 1] + 1;
    CHECK(gap > 0);
    struct plog_range r;
    CHECK_EQ_INT(plog_read(l, gap, 1 << 20, gap + 1, &r), PLOG_OK);
    CHECK_EQ_INT(r.fd, -1);

    /* Truncating into the gap at the end of a segment ends the log right
     * there (the segment covers offsets up to the next one's base). */
    int64_t segb[256];
    int nsegb = seg_bases("gaps", segb, 256), b1 = -1;
    int64_t tail = -1;
    for (int s = nsegb - 2; s > 0 && tail < 0; s--)
        for (b1 = nb - 1; b1 > 0; b1--)
            if (bases[b1] < segb[s]) {
                if (lasts[b1] + 1 < segb[s])
                    tail = segb[s] - 1;
                break;
            }
    CHECK(tail > 0);
    CHECK_EQ_INT(plog_truncate_to(l, tail), PLOG_OK);
    CHECK_EQ_INT(plog_log_end(l), tail);
    int n = read_log(l, got, MAXR, NULL, NULL, NULL, NULL);
    CHECK(n > 0 && got[n - 1].off < tail);
    /* And into a gap between two batches, not at its start. */
    gap = -1;
    for (int i = 1; i < nb && bases[i] < tail; i++)
        if (bases[i] > lasts[i - 1] + 2)
            gap = bases[i] - 1;
    CHECK(gap > 0);
    CHECK_EQ_INT(plog_truncate_to(l, gap), PLOG_OK);
    CHECK_EQ_INT(plog_log_end(l), gap);
    n = read_log(l, got, MAXR, NULL, NULL, NULL, NULL);
    CHECK(n > 0 && got[n - 1].off < gap);
    /* Appends carry on from there, and a later clean sees them. */
    int64_t keep = m.n;
    for (int i = 0; i < m.n; i++)
        if (m.r[i].off >= gap) {
            keep = i;
            break;
        }
    m.n = (int)keep;
    CHECK_EQ_INT(fill(l, &m, 0, 2000), 0);
    CHECK_EQ_INT(m.r[keep].off, gap);
    st = (struct plog_clean_stats){.force = true};
    CHECK_EQ_INT(plog_clean(l, m.ts, &st), PLOG_OK);
    CHECK(st.cleaned);
    n = read_log(l, got, MAXR, NULL, NULL, NULL, NULL);
    /* Keys written again after the cut have their last value; the others
     * may have lost theirs with the cut, as any truncation does. */
    CHECK_EQ_INT(last_values_bad_from(&m, got, n, gap), 0);
    /* What came after the cut was compacted too (the clean offset went
     * down with the truncation): one value per key below the active
     * segment. */
    int seen[NKEYS] = {0}, dup = 0;
    int64_t upto = active_base("gaps");
    for (int i = 0; i < n; i++)
        dup += got[i].off < upto && !got[i].tomb && ++seen[got[i].key] > 1;
    CHECK_EQ_INT(dup, 0);
    plog_close(l, true);
    free(m.r);
}

static void test_range_held(void)
{
    struct plog_config c;
    config(&c);
    struct plog *l = open_log("held", &c, true);
    struct model m = {0};
    model_init(&m, 23);
    CHECK_EQ_INT(fill(l, &m, 0, 3000), 0);
    /* Ranges in the first and a middle segment, taken before the clean. */
    struct plog_range r1, r2;
    CHECK_EQ_INT(plog_read(l, 0, 1 << 16, INT64_MAX, &r1), PLOG_OK);
    CHECK_EQ_INT(plog_read(l, m.r[m.n / 3].off, 1 << 16, INT64_MAX, &r2), PLOG_OK);
    uint8_t *b1 = malloc((size_t)r1.len), *b2 = malloc((size_t)r2.len);
    CHECK(pread(r1.fd, b1, (size_t)r1.len, r1.file_pos) == r1.len);
    CHECK(pread(r2.fd, b2, (size_t)r2.len, r2.file_pos) == r2.len);
    struct plog_clean_stats st = {.force = true};
    CHECK_EQ_INT(plog_clean(l, m.ts, &st), PLOG_OK);
    CHECK(st.cleaned);
    /* The old segments are gone from the directory and the list, but the
     * ranges read the very same bytes. */
    uint8_t *c1 = malloc((size_t)r1.len), *c2 = malloc((size_t)r2.len);
    CHECK(pread(r1.fd, c1, (size_t)r1.len, r1.file_pos) == r1.len);
    CHECK(pread(r2.fd, c2, (size_t)r2.len, r2.file_pos) == r2.len);
    CHECK(!memcmp(b1, c1, (size_t)r1.len));
    CHECK(!memcmp(b2, c2, (size_t)r2.len));
    struct batch_hdr h;
    CHECK_EQ_INT(batch_parse_header(c2, (size_t)r2.len, r2.len, &h), PLOG_OK);
    CHECK_EQ_INT(batch_validate(c2, (size_t)batch_size(&h), false, NULL), PLOG_OK);
    plog_range_release(r1.ref);
    plog_range_release(r2.ref);
    free(b1);
    free(b2);
    free(c1);
    free(c2);
    plog_close(l, true);
    free(m.r);
}

static void test_retention(void)
{
    /* compact,delete: retention by size after compaction. */
    struct plog_config c;
    config(&c);
    struct plog *l = open_log("retention", &c, true);
    struct model m = {0};
    model_init(&m, 29);
    CHECK_EQ_INT(fill(l, &m, 0, 3000), 0);
    struct plog_clean_stats st = {.force = true};
    CHECK_EQ_INT(plog_clean(l, m.ts, &st), PLOG_OK);
    CHECK_EQ_INT(fill(l, &m, 0, 1500), 0);
    int before = count_suffix("retention", ".log");
    c.retention_bytes = plog_size_bytes(l) / 2;
    plog_set_config(l, &c);
    int deleted = plog_housekeep(l, m.ts);
    CHECK(deleted > 0);
    CHECK_EQ_INT(count_suffix("retention", ".log"), before - deleted);
    int64_t start = plog_log_start(l);
    CHECK(start > 0);
    st = (struct plog_clean_stats){.force = true};
    CHECK_EQ_INT(plog_clean(l, m.ts, &st), PLOG_OK);
    CHECK(st.cleaned);
    CHECK_EQ_INT(plog_log_start(l), start);
    int n = read_log(l, got, MAXR, NULL, NULL, NULL, NULL);
    CHECK(n > 0 && got[0].off >= start);
    /* Each key at most once below the active segment (bar tombstones). */
    int seen[NKEYS] = {0}, dup = 0;
    int64_t upto = active_base("retention");
    for (int i = 0; i < n; i++)
        dup += got[i].off < upto && ++seen[got[i].key] > 1;
    CHECK_EQ_INT(dup, 0);
    /* DeleteRecords past a whole compacted segment, then housekeeping. */
    int64_t nls;
    CHECK_EQ_INT(plog_delete_records(l, got[n / 2].off, &nls), PLOG_OK);
    CHECK(plog_housekeep(l, m.ts) >= 0);
    CHECK_EQ_INT(plog_log_start(l), got[n / 2].off);
    st = (struct plog_clean_stats){.force = true};
    CHECK_EQ_INT(plog_clean(l, m.ts, &st), PLOG_OK);
    struct plog_range r;
    CHECK_EQ_INT(plog_read(l, got[n / 2].off, 1, INT64_MAX, &r), PLOG_OK);
    CHECK(r.fd >= 0);
    plog_range_release(r.ref);
    plog_close(l, true);
    free(m.r);
}

/* Builds the same log under `name` every time. */
static struct plog *build(const char *name, struct model *m)
{
    struct plog_config c;
    config(&c);
    struct plog *l = open_log(name, &c, true);
    model_init(m, 31);
    CHECK_EQ_INT(fill(l, m, -1, 3000), 0);
    /* A first clean leaves small segments, which the next one merges. */
    struct plog_clean_stats st = {.force = true};
    CHECK_EQ_INT(plog_clean(l, m->ts, &st), PLOG_OK);
    CHECK_EQ_INT(fill(l, m, -1, 600), 0);
    plog_flush(l);
    return l;
}

static void test_crash(void)
{
    struct plog_config c;
    config(&c);
    struct model m = {0};
    int64_t now;

    /* The reference: cleaned without a crash, reopened. */
    struct plog *l = build("crash-ref", &m);
    now = m.ts;
    int64_t end = plog_log_end(l);
    struct plog_clean_stats st = {.force = true};
    CHECK_EQ_INT(plog_clean(l, now, &st), PLOG_OK);
    CHECK(st.segments_written < st.segments_read);
    plog_close(l, false);
    l = open_log("crash-ref", &c, false);
    int nref = read_log(l, want, MAXR, NULL, NULL, NULL, NULL);
    plog_close(l, false);
    CHECK_EQ_INT(last_values_bad(&m, want, nref), 0);
    size_t rlen;
    char *ref = snapshot("crash-ref", ".log", &rlen);

    /* Crash with every .cleaned written: the old log, untouched. */
    l = build("crash-cleaned", &m);
    int nbefore = read_log(l, before, MAXR, NULL, NULL, NULL, NULL);
    size_t olen;
    char *orig = snapshot("crash-cleaned", ".log", &olen);
    cleaner_crash_point = CLEANER_CRASH_AFTER_CLEANED;
    st = (struct plog_clean_stats){.force = true};
    CHECK_EQ_INT(plog_clean(l, now, &st), PLOG_OK);
    cleaner_crash_point = CLEANER_CRASH_NONE;
    CHECK(count_suffix("crash-cleaned", ".log.cleaned") > 0);
    CHECK(count_suffix("crash-cleaned", ".index.cleaned") > 0);
    plog_close(l, false);
    l = open_log("crash-cleaned", &c, false);
    CHECK(l != NULL);
    CHECK_EQ_INT(count_suffix("crash-cleaned", ".cleaned"), 0);
    int n = read_log(l, got, MAXR, NULL, NULL, NULL, NULL);
    CHECK_EQ_INT(diff(got, n, before, nbefore), 0);
    CHECK_EQ_INT(plog_log_end(l), end);
    size_t len;
    char *snap = snapshot("crash-cleaned", ".log", &len);
    CHECK(len == olen && !memcmp(snap, orig, len));
    free(snap);
    /* The partition cleans normally afterwards, to the same result. */
    st = (struct plog_clean_stats){.force = true};
    CHECK_EQ_INT(plog_clean(l, now, &st), PLOG_OK);
    CHECK(st.cleaned);
    plog_close(l, false);
    snap = snapshot("crash-cleaned", ".log", &len);
    CHECK(len == rlen && !memcmp(snap, ref, len));
    free(snap);

    /* Half-way through the renames to .swap: index files renamed, the
     * .log not: undecided, so the old log stays. */
    l = build("crash-half", &m);
    cleaner_crash_point = CLEANER_CRASH_AFTER_CLEANED;
    st = (struct plog_clean_stats){.force = true};
    CHECK_EQ_INT(plog_clean(l, now, &st), PLOG_OK);
    cleaner_crash_point = CLEANER_CRASH_NONE;
    plog_close(l, false);
    char from[400], to[400];
    snprintf(from, sizeof from, "%s/crash-half/%020d.index.cleaned", root, 0);
    snprintf(to, sizeof to, "%s/crash-half/%020d.index.swap", root, 0);
    CHECK_EQ_INT(rename(from, to), 0);
    snprintf(from, sizeof from, "%s/crash-half/%020d.timeindex.cleaned", root, 0);
    snprintf(to, sizeof to, "%s/crash-half/%020d.timeindex.swap", root, 0);
    CHECK_EQ_INT(rename(from, to), 0);
    l = open_log("crash-half", &c, false);
    CHECK_EQ_INT(count_suffix("crash-half", ".cleaned") + count_suffix("crash-half", ".swap"), 0);
    n = read_log(l, got, MAXR, NULL, NULL, NULL, NULL);
    CHECK_EQ_INT(diff(got, n, before, nbefore), 0);
    snap = snapshot("crash-half", ".log", &len);
    CHECK(len == olen && !memcmp(snap, orig, len));
    free(snap);
    plog_close(l, false);
    free(orig);

    /* Crash once the .swap files exist (decided), and once the replaced
     * segments are deleted too: the open completes the swap. */
    static const struct {
        const char *name;
        enum cleaner_crash_point at;
        bool index_in_place; /* and the first .index.swap already renamed */
    } cases[] = {{"crash-swap", CLEANER_CRASH_AFTER_SWAP, false},
                 {"crash-delete", CLEANER_CRASH_AFTER_DELETE, false},
                 {"crash-renaming", CLEANER_CRASH_AFTER_DELETE, true}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *name = cases[i].name;
        l = build(name, &m);
        int logs = count_suffix(name, ".log");
        cleaner_crash_point = cases[i].at;
        st = (struct plog_clean_stats){.force = true};
        CHECK_EQ_INT(plog_clean(l, now, &st), PLOG_OK);
        cleaner_crash_point = CLEANER_CRASH_NONE;
        CHECK(count_suffix(name, ".log.swap") > 0);
        CHECK(count_suffix(name, ".index.swap") > 0);
        CHECK_EQ_INT(count_suffix(name, ".cleaned"), 0);
        if (cases[i].at == CLEANER_CRASH_AFTER_DELETE)
            CHECK(count_suffix(name, ".log") < logs);
        else
            CHECK_EQ_INT(count_suffix(name, ".log"), logs);
        plog_close(l, false);
        if (cases[i].index_in_place) {
            snprintf(from, sizeof from, "%s/%s/%020d.index.swap", root, name, 0);
            snprintf(to, sizeof to, "%s/%s/%020d.index", root, name, 0);
            CHECK_EQ_INT(rename(from, to), 0);
        }
        l = open_log(name, &c, false);
        CHECK(l != NULL);
        CHECK_EQ_INT(count_suffix(name, ".swap") + count_suffix(name, ".cleaned"), 0);
        n = read_log(l, got, MAXR, NULL, NULL, NULL, NULL);
        CHECK_EQ_INT(diff(got, n, want, nref), 0);
        CHECK_EQ_INT(plog_log_end(l), end);
        CHECK_EQ_INT(plog_log_start(l), 0);
        snap = snapshot(name, ".log", &len);
        CHECK(len == rlen && !memcmp(snap, ref, len));
        free(snap);
        /* The indexes serve reads (they came from the .swap files). */
        struct plog_range r;
        CHECK_EQ_INT(plog_read(l, want[nref / 2].off, 1, INT64_MAX, &r), PLOG_OK);
        CHECK(r.fd >= 0);
        plog_range_release(r.ref);
        plog_close(l, false);
        /* A clean open trusts what the recovery left. */
        l = open_log(name, &c, true);
        n = read_log(l, got, MAXR, NULL, NULL, NULL, NULL);
        CHECK_EQ_INT(diff(got, n, want, nref), 0);
        plog_close(l, false);
    }
    free(ref);
    free(m.r);
}

/* ---- racing ---- */

struct race {
    struct plog *l;
    struct model m;
    pthread_mutex_t mu;
    atomic_int stop, stop_appends, appended;
    int append_bad, read_bad, reads;
};

#define RACE_APPENDS 50000

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *race_appender(void *arg)
{
    struct race *r = arg;
    /* Until the cleaner has had a few goes at it (bounded all the same). */
    for (int i = 0; !r->stop_appends && i < RACE_APPENDS; i++) {
        pthread_mutex_lock(&r->mu);
        r->append_bad += append_random(r->l, &r->m, i % 5, 1 + i % 4) != PLOG_OK;
        pthread_mutex_unlock(&r->mu);
        r->appended++;
    }
    return NULL;
}

static void *race_reader(void *arg)
{
    struct race *r = arg;
    static struct rec buf[MAXR];
    while (!r->stop) {
        if (read_log(r->l, buf, MAXR, NULL, NULL, NULL, NULL) < 0)
            r->read_bad++;
        r->reads++;
    }
    return NULL;
}

/* Retention on its own thread, as the broker's housekeeping runs. */
static void *race_housekeeper(void *arg)
{
    struct race *r = arg;
    while (!r->stop) {
        pthread_mutex_lock(&r->mu);
        int64_t now = r->m.ts;
        pthread_mutex_unlock(&r->mu);
        plog_housekeep(r->l, now);
    }
    return NULL;
}

static void test_race(void)
{
    struct plog_config c;
    config(&c);
    c.min_cleanable_dirty_ratio = 0.1;
    c.retention_bytes = 48 * 1024;
    struct race r;
    memset(&r, 0, sizeof r);
    r.l = open_log("race", &c, true);
    model_init(&r.m, 37);
    pthread_mutex_init(&r.mu, NULL);
    pthread_t a, b, h;
    pthread_create(&a, NULL, race_appender, &r);
    pthread_create(&b, NULL, race_reader, &r);
    pthread_create(&h, NULL, race_housekeeper, &r);
    /* Bounded by time, not by rounds: on a busy machine the appender may
     * get little CPU, and cheap no-op cleans would use up any round count
     * before there is anything to clean. */
    int cleans = 0, errors = 0;
    int64_t deadline = mono_ms() + 60000;
    while (mono_ms() < deadline && (cleans < 5 || r.appended < 1500) &&
           !(cleans > 0 && r.appended >= RACE_APPENDS)) {
        struct plog_clean_stats st = {0};
        pthread_mutex_lock(&r.mu);
        int64_t now = r.m.ts;
        pthread_mutex_unlock(&r.mu);
        errors += plog_clean(r.l, now, &st) != PLOG_OK;
        cleans += st.cleaned;
    }
    r.stop_appends = 1;
    pthread_join(a, NULL);
    r.stop = 1;
    pthread_join(b, NULL);
    pthread_join(h, NULL);
    CHECK_EQ_INT(r.append_bad, 0);
    CHECK_EQ_INT(r.read_bad, 0);
    CHECK_EQ_INT(errors, 0);
    CHECK(cleans > 0);
    CHECK(r.reads > 0);
    /* Whatever retention left: every record is the one appended at its
     * offset, and the last record of every key still in range is there. */
    struct plog_clean_stats st = {.force = true};
    CHECK_EQ_INT(plog_clean(r.l, r.m.ts, &st), PLOG_OK);
    int n = read_log(r.l, got, MAXR, NULL, NULL, NULL, NULL);
    CHECK(n > 0);
    int bad = 0, j = 0;
    for (int i = 0; i < n; i++) {
        while (j < r.m.n && r.m.r[j].off < got[i].off)
            j++;
        bad += j == r.m.n || r.m.r[j].off != got[i].off || r.m.r[j].key != got[i].key ||
               r.m.r[j].tomb != got[i].tomb || (!got[i].tomb && r.m.r[j].ver != got[i].ver);
    }
    CHECK_EQ_INT(bad, 0);
    int64_t start = plog_log_start(r.l);
    int last[NKEYS];
    for (int k = 0; k < NKEYS; k++)
        last[k] = -1;
    for (int i = 0; i < r.m.n; i++)
        if (r.m.r[i].off >= start)
            last[r.m.r[i].key] = i;
    int lost = 0;
    j = 0;
    for (int k = 0; k < NKEYS; k++) {
        if (last[k] < 0 || r.m.r[last[k]].tomb)
            continue;
        bool found = false;
        for (int i = 0; i < n && !found; i++)
            found = got[i].off == r.m.r[last[k]].off;
        lost += !found;
    }
    CHECK_EQ_INT(lost, 0);
    plog_close(r.l, true);
    pthread_mutex_destroy(&r.mu);
    free(r.m.r);
}

static int rm_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return -1;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *de;
        while (d && (de = readdir(d)) != NULL) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                continue;
            char p[1024];
            snprintf(p, sizeof p, "%s/%s", path, de->d_name);
            rm_tree(p);
        }
        if (d)
            closedir(d);
        return rmdir(path);
    }
    return unlink(path);
}

int main(void)
{
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    test_compaction();
    test_codecs();
    test_log_append_time();
    test_refused();
    test_dirty_ratio();
    test_lag();
    test_map_budget();
    test_gaps();
    test_range_held();
    test_retention();
    test_crash();
    test_race();
    if (rm_tree(root) < 0)
        fprintf(stderr, "cleanup of %s failed\n", root);
    return tap_done();
}
