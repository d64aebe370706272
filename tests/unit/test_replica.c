/*
 * The storage side of replication: follower appends (the leader's
 * batches kept byte for byte, the files a follower writes identical to
 * the leader's, every refusal, gaps, rolls inside one buffer), the end
 * offset of an epoch (Kafka's endOffsetFor), truncation (within and
 * across segments, at the log end, below the log start, full restarts;
 * reopened clean and unclean; a crash at each step; a failed first
 * write), the high watermark checkpoint, and follower appends racing
 * reads, flushes and checkpoints.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/batch.h"
#include "storage/checkpoint.h"
#include "storage/fileio.h"
#include "storage/plog.h"
#include "storage/plog_int.h"
#include "tap.h"

static char root[] = "/tmp/runnel-test-replica-XXXXXX";

/* n records "v<offset>" at timestamps ts.., codec rotating with first. */
static uint8_t *make_batch(int64_t first, int n, int64_t ts, size_t pad, size_t *len)
{
    struct batch_builder b;
    batch_builder_init(&b, (int)(first % 5), ts);
    char *v = malloc(pad + 32);
    for (int i = 0; i < n; i++) {
        int vl = snprintf(v, 32, "v%lld", (long long)(first + i));
        memset(v + vl, 'x', pad);
        batch_builder_add(&b, ts + i, "key", 3, v, vl + (int32_t)pad, NULL, 0);
    }
    free(v);
    uint8_t *out;
    batch_builder_finish(&b, &out, len);
    batch_builder_free(&b);
    return out;
}

/* A batch as a leader would have stored it: offsets from `base`, epoch. */
static uint8_t *leader_batch(int64_t base, int n, int32_t epoch, int64_t ts, size_t pad,
                             size_t *len)
{
    uint8_t *b = make_batch(base, n, ts, pad, len);
    batch_put_be64(b, base);
    batch_put_be32(b + 12, epoch);
    return b;
}

static int leader_append(struct plog *l, int n, int32_t epoch, size_t pad)
{
    size_t len;
    int64_t leo = plog_log_end(l);
    uint8_t *b = make_batch(leo, n, 1000 + leo, pad, &len);
    struct plog_append_result r;
    int rc = plog_append(l, b, len, epoch, 5000, &r);
    free(b);
    return rc;
}

static int follower_append(struct plog *l, const uint8_t *b, size_t len)
{
    struct plog_append_result r;
    return plog_append_follower(l, b, len, &r);
}

static void path_of(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s", root, name);
}

static struct plog *open_log(const char *name, const struct plog_config *c, bool clean)
{
    char dir[300], err[256];
    path_of(dir, sizeof dir, name);
    struct plog *l = NULL;
    if (plog_open(dir, c, clean, &l, err, sizeof err) != 0)
        fprintf(stderr, "open %s: %s\n", dir, err);
    return l;
}

/* Every whole batch of `l` from `from` to its end, as a fetch would
 * carry them, concatenated (malloc'ed). */
static uint8_t *fetch_all(struct plog *l, int64_t from, size_t *len)
{
    uint8_t *out = NULL;
    size_t n = 0;
    int64_t off = from;
    while (off < plog_log_end(l)) {
        struct plog_range r;
        if (plog_read(l, off, 1 << 20, INT64_MAX, &r) != PLOG_OK || r.fd < 0)
            break;
        out = realloc(out, n + (size_t)r.len);
        if (pread(r.fd, out + n, (size_t)r.len, r.file_pos) != r.len)
            break;
        /* Continue after the last batch of the range. */
        size_t p = n;
        int64_t last = off;
        while (p < n + (size_t)r.len) {
            struct batch_hdr h;
            if (batch_parse_header(out + p, n + (size_t)r.len - p, INT32_MAX, &h) != PLOG_OK)
                break;
            last = batch_last_offset(&h);
            p += (size_t)batch_size(&h);
        }
        n += (size_t)r.len;
        plog_range_release(r.ref);
        off = last + 1;
    }
    *len = n;
    return out;
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    *len = 0;
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    *len = fread(b, 1, (size_t)n, f);
    b[*len] = 0;
    fclose(f);
    return b;
}

static bool file_exists(const char *dir, const char *name)
{
    char p[400];
    snprintf(p, sizeof p, "%s/%s/%s", root, dir, name);
    return access(p, F_OK) == 0;
}

/* The text of a checkpoint file of log `name` ("" when absent). */
static char *ckpt_text(const char *name, const char *file)
{
    char p[400];
    snprintf(p, sizeof p, "%s/%s/%s", root, name, file);
    size_t n;
    char *t = (char *)slurp(p, &n);
    return t ? t : strdup("");
}

/* Every file of the two directories whose name ends in ext is the same
 * (same names, same bytes).  Returns the number that differ. */
static int compare_files(const char *a, const char *b, const char *ext)
{
    char da[300], db[300];
    path_of(da, sizeof da, a);
    path_of(db, sizeof db, b);
    int bad = 0, seen = 0;
    for (int pass = 0; pass < 2; pass++) {
        DIR *d = opendir(pass ? db : da);
        struct dirent *de;
        while (d && (de = readdir(d)) != NULL) {
            size_t nl = strlen(de->d_name), el = strlen(ext);
            if (nl < el || strcmp(de->d_name + nl - el, ext))
                continue;
            char pa[600], pb[600];
            snprintf(pa, sizeof pa, "%s/%s", da, de->d_name);
            snprintf(pb, sizeof pb, "%s/%s", db, de->d_name);
            size_t la, lb;
            uint8_t *ca = slurp(pa, &la), *cb = slurp(pb, &lb);
            if (!ca || !cb || la != lb || memcmp(ca, cb, la)) {
                fprintf(stderr, "  differs: %s\n", de->d_name);
                bad++;
            }
            seen += !pass;
            free(ca);
            free(cb);
        }
        if (d)
            closedir(d);
    }
    return seen ? bad : bad + 1;
}

static int count_logs(const char *name)
{
    char dir[300];
    path_of(dir, sizeof dir, name);
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL)
        n += strlen(de->d_name) == 24 && !strcmp(de->d_name + 20, ".log");
    if (d)
        closedir(d);
    return n;
}

/* The batch serving `off` holds the record "v<off>"; counts failures. */
static int check_readable(struct plog *l, int64_t from, int64_t to)
{
    int bad = 0;
    for (int64_t off = from; off < to; off++) {
        struct plog_range r;
        if (plog_read(l, off, 1, INT64_MAX, &r) != PLOG_OK || r.fd < 0) {
            bad++;
            continue;
        }
        uint8_t *buf = malloc((size_t)r.len);
        struct batch_hdr h;
        bool ok = false;
        if (pread(r.fd, buf, (size_t)r.len, r.file_pos) == r.len &&
            batch_parse_header(buf, (size_t)r.len, r.len, &h) == PLOG_OK &&
            batch_validate(buf, (size_t)batch_size(&h), false, NULL) == PLOG_OK) {
            struct batch_records rs;
            struct batch_record rec;
            char want[32];
            int wl = snprintf(want, sizeof want, "v%lld", (long long)off);
            if (batch_records_begin(buf, &h, &rs) == PLOG_OK) {
                while (batch_records_next(&rs, &rec) == 1)
                    if (h.base_offset + rec.offset_delta == off)
                        ok = rec.value_len >= wl && !memcmp(rec.value, want, (size_t)wl);
                batch_records_end(&rs);
            }
        }
        bad += !ok;
        free(buf);
        plog_range_release(r.ref);
    }
    return bad;
}

/* The base offset of the batch a read of `off` returns (-1 none). */
static int64_t batch_at(struct plog *l, int64_t off, struct batch_hdr *out)
{
    struct plog_range r;
    if (plog_read(l, off, 1, INT64_MAX, &r) != PLOG_OK || r.fd < 0)
        return -1;
    uint8_t hb[BATCH_HEADER_SIZE];
    struct batch_hdr h;
    int64_t base = -1;
    if (pread(r.fd, hb, sizeof hb, r.file_pos) == (ssize_t)sizeof hb &&
        batch_parse_header(hb, sizeof hb, INT32_MAX, &h) == PLOG_OK) {
        base = h.base_offset;
        if (out)
            *out = h;
    }
    plog_range_release(r.ref);
    return base;
}

static void end_for(struct plog *l, int32_t epoch, int32_t *e, int64_t *off)
{
    CHECK_EQ_INT(plog_end_offset_for_epoch(l, epoch, e, off), PLOG_OK);
}

/* ---- follower appends ---- */

/* A follower fed the leader's batches in fetch-sized pieces writes the
 * same files, byte for byte: segments, both indexes, epoch history. */
static void test_follower_mirrors_leader(void)
{
    struct plog_config c;
    plog_config_defaults(&c);
    c.segment_bytes = 900;
    c.index_interval_bytes = 150;
    struct plog *ld = open_log("mirror-leader", &c, true);
    for (int i = 0; i < 40; i++)
        CHECK_EQ_INT(leader_append(ld, 1 + i % 3,
                                   i < 10   ? 1
                                   : i < 25 ? 4
                                            : 7,
                                   (size_t)(i % 50)),
                     PLOG_OK);
    int64_t leo = plog_log_end(ld);
    CHECK(count_logs("mirror-leader") >= 5);

    /* The follower: max_message_bytes and LogAppendTime must not matter. */
    struct plog_config fc = c;
    fc.max_message_bytes = 10;
    fc.log_append_time = true;
    struct plog *fl = open_log("mirror-follower", &fc, true);
    int64_t from = 0;
    int pieces = 0;
    while (from < leo) {
        /* Whole batches, at most ~1.5 segments' worth per "fetch". */
        struct plog_range r;
        CHECK_EQ_INT(plog_read(ld, from, 1300, INT64_MAX, &r), PLOG_OK);
        uint8_t *buf = malloc((size_t)r.len);
        CHECK(pread(r.fd, buf, (size_t)r.len, r.file_pos) == r.len);
        plog_range_release(r.ref);
        struct plog_append_result res;
        CHECK_EQ_INT(plog_append_follower(fl, buf, (size_t)r.len, &res), PLOG_OK);
        CHECK_EQ_INT(res.base_offset, from);
        CHECK_EQ_INT(res.log_append_time, -1);
        CHECK(res.record_count > 0);
        from = res.last_offset + 1;
        CHECK_EQ_INT(plog_log_end(fl), from);
        free(buf);
        pieces++;
    }
    CHECK(pieces > 1);
    CHECK_EQ_INT(plog_log_end(fl), leo);
    CHECK_EQ_INT(plog_leader_epoch(fl), 7);
    CHECK_EQ_INT(check_readable(fl, 0, leo), 0);
    char *et = ckpt_text("mirror-leader", CKPT_LEADER_EPOCH);
    char *ft = ckpt_text("mirror-follower", CKPT_LEADER_EPOCH);
    CHECK(!strcmp(et, ft));
    CHECK(!strncmp(ft, "0\n3\n1 0\n", 8));
    free(et);
    free(ft);
    /* Same answers to offset-for-time. */
    int wrong = 0;
    for (int64_t t = 990; t < 1000 + leo + 5; t += 3) {
        int64_t o1, t1, o2, t2;
        plog_offset_for_time(ld, t, &o1, &t1);
        plog_offset_for_time(fl, t, &o2, &t2);
        wrong += o1 != o2 || t1 != t2;
    }
    CHECK_EQ_INT(wrong, 0);
    plog_close(ld, true);
    plog_close(fl, true);
    CHECK_EQ_INT(compare_files("mirror-leader", "mirror-follower", ".log"), 0);
    CHECK_EQ_INT(compare_files("mirror-leader", "mirror-follower", ".index"), 0);
    CHECK_EQ_INT(compare_files("mirror-leader", "mirror-follower", ".timeindex"), 0);

    /* All of it in one buffer (larger than a segment) gives the same. */
    ld = open_log("mirror-leader", &c, true);
    size_t len;
    uint8_t *all = fetch_all(ld, 0, &len);
    CHECK(len > (size_t)c.segment_bytes * 4);
    struct plog *f2 = open_log("mirror-one", &fc, true);
    struct plog_append_result res;
    CHECK_EQ_INT(plog_append_follower(f2, all, len, &res), PLOG_OK);
    CHECK_EQ_INT(res.base_offset, 0);
    CHECK_EQ_INT(res.last_offset, leo - 1);
    CHECK_EQ_INT(res.record_count, leo);
    CHECK_EQ_INT(res.log_start_offset, 0);
    plog_close(f2, true);
    CHECK_EQ_INT(compare_files("mirror-leader", "mirror-one", ".log"), 0);
    CHECK_EQ_INT(compare_files("mirror-leader", "mirror-one", ".index"), 0);
    CHECK_EQ_INT(compare_files("mirror-leader", "mirror-one", ".timeindex"), 0);

    /* Reopened after a crash, the follower's indexes rebuild to the
     * same bytes, and it has the same end and epochs. */
    f2 = open_log("mirror-one", &fc, false);
    CHECK_EQ_INT(plog_log_end(f2), leo);
    CHECK_EQ_INT(plog_leader_epoch(f2), 7);
    CHECK_EQ_INT(check_readable(f2, 0, leo), 0);
    plog_close(f2, false);
    CHECK_EQ_INT(compare_files("mirror-leader", "mirror-one", ".index"), 0);
    CHECK_EQ_INT(compare_files("mirror-leader", "mirror-one", ".timeindex"), 0);
    free(all);
    plog_close(ld, true);
}

static void test_follower_refusals(void)
{
    struct plog_config c;
    plog_config_defaults(&c);
    c.segment_bytes = 2000;
    c.max_message_bytes = 50; /* not applied to followers */
    c.compact = true;         /* nor are the leader's record checks */
    struct plog *l = open_log("refuse", &c, true);
    size_t l1, l2, l3;
    uint8_t *b1 = leader_batch(0, 3, 2, 100, 20, &l1);
    uint8_t *b2 = leader_batch(3, 2, 2, 200, 20, &l2);
    uint8_t *b3 = leader_batch(10, 2, 3, 300, 20, &l3); /* after a gap */
    uint8_t *buf = malloc(l1 + l2 + l3 + 4096);

    /* Bad CRC in the second batch: nothing written. */
    memcpy(buf, b1, l1);
    memcpy(buf + l1, b2, l2);
    buf[l1 + l2 - 1] ^= 1;
    CHECK_EQ_INT(follower_append(l, buf, l1 + l2), PLOG_ERR_CORRUPT);
    CHECK_EQ_INT(plog_log_end(l), 0);
    CHECK_EQ_INT(plog_size_bytes(l), 0);
    CHECK_EQ_INT(plog_leader_epoch(l), -1);
    /* A torn tail, a length past the buffer, old magic. */
    memcpy(buf + l1, b2, l2);
    CHECK_EQ_INT(follower_append(l, buf, l1 + 20), PLOG_ERR_CORRUPT);
    CHECK_EQ_INT(follower_append(l, buf, l1 + l2 - 1), PLOG_ERR_CORRUPT);
    buf[16] = 1;
    CHECK_EQ_INT(follower_append(l, buf, l1), PLOG_ERR_UNSUPPORTED);
    buf[16] = 2;
    /* A codec that does not exist (CRC fixed: well framed, invalid). */
    uint8_t *bad = malloc(l1);
    memcpy(bad, b1, l1);
    batch_put_be16(bad + BATCH_ATTR_OFFSET, 7);
    batch_update_crc(bad, l1);
    CHECK_EQ_INT(follower_append(l, bad, l1), PLOG_ERR_INVALID);
    /* Out of order: the same batch twice, or overlapping offsets. */
    memcpy(buf + l1, b1, l1);
    CHECK_EQ_INT(follower_append(l, buf, 2 * l1), PLOG_ERR_INVALID);
    memcpy(bad, b2, l2);
    batch_put_be64(bad, 2); /* 2..3 overlaps 0..2 */
    memcpy(buf + l1, bad, l2);
    CHECK_EQ_INT(follower_append(l, buf, l1 + l2), PLOG_ERR_INVALID);
    /* A negative base offset. */
    memcpy(bad, b1, l1);
    batch_put_be64(bad, -5);
    CHECK_EQ_INT(follower_append(l, bad, l1), PLOG_ERR_INVALID);
    CHECK_EQ_INT(plog_log_end(l), 0);
    CHECK_EQ_INT(plog_size_bytes(l), 0);

    /* Good: two contiguous batches, then one after a gap, larger than
     * max_message_bytes, keys or not. */
    memcpy(buf + l1, b2, l2);
    struct plog_append_result res;
    CHECK_EQ_INT(plog_append_follower(l, buf, l1 + l2, &res), PLOG_OK);
    CHECK_EQ_INT(res.base_offset, 0);
    CHECK_EQ_INT(res.last_offset, 4);
    CHECK_EQ_INT(res.record_count, 5);
    CHECK_EQ_INT(plog_log_end(l), 5);
    /* Below the log end: the caller must truncate first. */
    CHECK_EQ_INT(follower_append(l, b2, l2), PLOG_ERR_OFFSET);
    CHECK_EQ_INT(follower_append(l, b1, l1), PLOG_ERR_OFFSET);
    CHECK_EQ_INT(plog_append_follower(l, b3, l3, &res), PLOG_OK);
    CHECK_EQ_INT(res.base_offset, 10);
    CHECK_EQ_INT(plog_log_end(l), 12);
    CHECK_EQ_INT(check_readable(l, 0, 5), 0);
    CHECK_EQ_INT(check_readable(l, 10, 12), 0);
    /* An offset in the gap reads as the next batch, as after compaction. */
    CHECK_EQ_INT(batch_at(l, 7, NULL), 10);
    /* Nothing was rewritten: epochs, timestamps, CRC as the leader's. */
    struct batch_hdr h;
    CHECK_EQ_INT(batch_at(l, 10, &h), 10);
    CHECK_EQ_INT(h.partition_leader_epoch, 3);
    CHECK_EQ_INT(h.max_timestamp, 301);
    CHECK_EQ_INT(h.crc, (uint32_t)batch_be32(b3 + BATCH_CRC_OFFSET));
    char *t = ckpt_text("refuse", CKPT_LEADER_EPOCH);
    CHECK(!strcmp(t, "0\n2\n2 0\n3 10\n"));
    free(t);

    /* The leader's own marks are kept: a delete horizon, LogAppendTime,
     * a null key in a compacted topic, an empty (compacted) batch. */
    size_t l4;
    struct batch_builder bb;
    batch_builder_init(&bb, 0, 400);
    batch_builder_add(&bb, 400, NULL, -1, "v12", 3, NULL, 0);
    batch_builder_add(&bb, 401, "k", 1, NULL, -1, NULL, 0);
    uint8_t *b4;
    batch_builder_finish(&bb, &b4, &l4);
    batch_builder_free(&bb);
    batch_put_be64(b4, 12);
    batch_put_be32(b4 + 12, 3);
    batch_put_be16(b4 + BATCH_ATTR_OFFSET, BATCH_ATTR_DELETE_HORIZON | BATCH_ATTR_LOG_APPEND_TIME);
    batch_put_be64(b4 + BATCH_MAX_TS_OFFSET, 999999);
    batch_update_crc(b4, l4);
    CHECK_EQ_INT(follower_append(l, b4, l4), PLOG_OK);
    CHECK_EQ_INT(batch_at(l, 12, &h), 12);
    CHECK_EQ_INT(h.attributes, BATCH_ATTR_DELETE_HORIZON | BATCH_ATTR_LOG_APPEND_TIME);
    CHECK_EQ_INT(h.max_timestamp, 999999);
    CHECK_EQ_INT(check_readable(l, 12, 13), 0);
    /* Records count 0 with lastOffsetDelta 4: what a cleaner may leave. */
    memcpy(bad, b1, l1);
    size_t le;
    struct batch_builder eb;
    batch_builder_init(&eb, 0, 500);
    uint8_t *empty;
    batch_builder_finish(&eb, &empty, &le);
    batch_builder_free(&eb);
    batch_put_be64(empty, 14);
    batch_put_be32(empty + 23, 4);
    batch_update_crc(empty, le);
    CHECK_EQ_INT(follower_append(l, empty, le), PLOG_OK);
    CHECK_EQ_INT(plog_log_end(l), 19);
    /* Empty input: nothing to do. */
    CHECK_EQ_INT(follower_append(l, b1, 0), PLOG_OK);
    CHECK_EQ_INT(plog_log_end(l), 19);

    /* A batch larger than a segment can hold. */
    size_t lb;
    uint8_t *big = leader_batch(20, 2, 3, 600, 1500, &lb); /* 20: uncompressed */
    batch_put_be64(big, 19);
    CHECK(lb > (size_t)c.segment_bytes);
    CHECK_EQ_INT(follower_append(l, big, lb), PLOG_ERR_TOO_LARGE);
    CHECK_EQ_INT(plog_log_end(l), 19);
    free(big);

    /* Durable across a crash, epochs included. */
    plog_close(l, false);
    l = open_log("refuse", &c, false);
    CHECK_EQ_INT(plog_log_end(l), 19);
    CHECK_EQ_INT(plog_leader_epoch(l), 3);
    CHECK_EQ_INT(check_readable(l, 0, 5), 0);
    CHECK_EQ_INT(check_readable(l, 10, 13), 0);
    CHECK_EQ_INT(batch_at(l, 7, NULL), 10);
    plog_close(l, true);
    free(empty);
    free(b4);
    free(bad);
    free(buf);
    free(b1);
    free(b2);
    free(b3);
}

/* Gaps so large that relative offsets overflow int32: the follower rolls,
 * even from an empty segment, inside one buffer too. */
static void test_follower_huge_gaps(void)
{
    struct plog_config c;
    plog_config_defaults(&c);
    struct plog *l = open_log("gaps", &c, true);
    int64_t g1 = 3000000000LL, g2 = 7000000000LL;
    size_t l1, l2, l3;
    uint8_t *b1 = leader_batch(g1, 2, 1, 100, 0, &l1);
    uint8_t *b2 = leader_batch(g1 + 2, 2, 1, 100, 0, &l2);
    uint8_t *b3 = leader_batch(g2, 2, 2, 100, 0, &l3);
    CHECK_EQ_INT(follower_append(l, b1, l1), PLOG_OK);
    CHECK_EQ_INT(plog_segment_count(l), 2); /* the empty one at 0 stays */
    uint8_t *buf = malloc(l2 + l3);
    memcpy(buf, b2, l2);
    memcpy(buf + l2, b3, l3);
    struct plog_append_result res;
    CHECK_EQ_INT(plog_append_follower(l, buf, l2 + l3, &res), PLOG_OK);
    CHECK_EQ_INT(res.base_offset, g1 + 2);
    CHECK_EQ_INT(res.last_offset, g2 + 1);
    CHECK_EQ_INT(plog_segment_count(l), 3);
    CHECK_EQ_INT(plog_log_end(l), g2 + 2);
    char name[64];
    snprintf(name, sizeof name, "%020lld.log", (long long)g2);
    CHECK(file_exists("gaps", name));
    for (int pass = 0; pass < 3; pass++) {
        CHECK_EQ_INT(batch_at(l, 0, NULL), g1);
        CHECK_EQ_INT(batch_at(l, g1 + 3, NULL), g1 + 2);
        CHECK_EQ_INT(batch_at(l, g1 + 4, NULL), g2);
        CHECK_EQ_INT(check_readable(l, g2, g2 + 2), 0);
        int32_t e;
        int64_t off;
        end_for(l, 1, &e, &off);
        CHECK_EQ_INT(e, 1);
        CHECK_EQ_INT(off, g2);
        plog_close(l, pass == 0);
        l = open_log("gaps", &c, pass == 0);
        CHECK_EQ_INT(plog_log_end(l), g2 + 2);
        CHECK_EQ_INT(plog_log_start(l), 0);
    }
    /* Truncation into the gap: the log ends where asked. */
    CHECK_EQ_INT(plog_truncate_to(l, g1 + 100), PLOG_OK);
    CHECK_EQ_INT(plog_log_end(l), g1 + 100);
    CHECK_EQ_INT(plog_leader_epoch(l), 1);
    plog_close(l, false);
    l = open_log("gaps", &c, false);
    CHECK(plog_log_end(l) >= g1 + 4 && plog_log_end(l) <= g1 + 100);
    CHECK_EQ_INT(batch_at(l, g1 + 2, NULL), g1 + 2);
    CHECK_EQ_INT(follower_append(l, b3, l3), PLOG_OK);
    CHECK_EQ_INT(plog_log_end(l), g2 + 2);
    plog_close(l, true);
    free(buf);
    free(b1);
    free(b2);
    free(b3);
}

/* ---- end offset for epoch ---- */

static void test_end_offset_for_epoch(void)
{
    struct plog_config c;
    plog_config_defaults(&c);
    c.segment_bytes = 400;
    struct plog *l = open_log("epochs", &c, true);
    int32_t e;
    int64_t off;
    /* No epoch known. */
    end_for(l, 0, &e, &off);
    CHECK_EQ_INT(e, -1);
    CHECK_EQ_INT(off, -1);
    /* epochs 1@0, 3@4, 5@6, log end 10 */
    CHECK_EQ_INT(leader_append(l, 2, 1, 30), PLOG_OK);
    CHECK_EQ_INT(leader_append(l, 2, 1, 30), PLOG_OK);
    CHECK_EQ_INT(leader_append(l, 2, 3, 30), PLOG_OK);
    CHECK_EQ_INT(leader_append(l, 2, 5, 30), PLOG_OK);
    CHECK_EQ_INT(leader_append(l, 2, 5, 30), PLOG_OK);
    static const struct {
        int32_t ask, epoch;
        int64_t end;
    } want[] = {
        {5, 5, 10},  /* latest: the log end */
        {4, 3, 6},   /* unknown: the largest below it, ending where 5 starts */
        {3, 3, 6},   /* known */
        {2, 1, 4},   /* unknown, between 1 and 3 */
        {1, 1, 4},   /* the first */
        {0, 0, 0},   /* below every epoch: Kafka answers (requested, first start) */
        {6, -1, -1}, /* above every epoch: UNDEFINED */
        {-1, -1, -1} /* UNDEFINED asked */
    };
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
            end_for(l, want[i].ask, &e, &off);
            CHECK_EQ_INT(e, want[i].epoch);
            CHECK_EQ_INT(off, want[i].end);
        }
        plog_close(l, pass == 0);
        l = open_log("epochs", &c, pass == 0);
    }
    /* The latest epoch follows the log end. */
    CHECK_EQ_INT(leader_append(l, 3, 5, 30), PLOG_OK);
    end_for(l, 5, &e, &off);
    CHECK_EQ_INT(off, 13);
    /* A new epoch begun but not yet written to: it ends at the log end,
     * and the one before it ends there too. */
    CHECK_EQ_INT(plog_begin_epoch(l, 8), PLOG_OK);
    end_for(l, 8, &e, &off);
    CHECK_EQ_INT(e, 8);
    CHECK_EQ_INT(off, 13);
    end_for(l, 7, &e, &off);
    CHECK_EQ_INT(e, 5);
    CHECK_EQ_INT(off, 13);
    /* After DeleteRecords the history below the log start collapses. */
    int64_t ls;
    CHECK_EQ_INT(plog_delete_records(l, 5, &ls), PLOG_OK);
    end_for(l, 1, &e, &off);
    CHECK_EQ_INT(e, 1);
    CHECK_EQ_INT(off, 5); /* epoch 3 now starts at the log start */
    end_for(l, 3, &e, &off);
    CHECK_EQ_INT(e, 3);
    CHECK_EQ_INT(off, 6);
    plog_close(l, true);
}

/* ---- high watermark (and what the truncation tests share) ---- */

static void spit(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(data, 1, len, f);
        fclose(f);
    }
}

/* A follower log of 4+ segments: epochs 1@0, 2@10, 3@20, end 30; ~4
 * batches of 2 per segment.  Returns it open. */
static struct plog *build_follower(const char *name, const struct plog_config *c)
{
    struct plog *l = open_log(name, c, true);
    for (int64_t o = 0; o < 30; o += 2) {
        size_t len;
        uint8_t *b = leader_batch(o, 2, o < 10 ? 1 : o < 20 ? 2 : 3, 1000 + o, 40, &len);
        CHECK_EQ_INT(follower_append(l, b, len), PLOG_OK);
        free(b);
    }
    return l;
}

static void trunc_config(struct plog_config *c)
{
    plog_config_defaults(c);
    c->segment_bytes = 500;
    c->index_interval_bytes = 100;
}

/* Every fsync fails while set. */
static int fail_fsyncs;

static int failing_fsync(int fd)
{
    if (fail_fsyncs) {
        errno = EIO;
        return -1;
    }
    return storage_io_default.fsync(fd);
}

/* A kill at each step of a truncation: the reopened log (clean or
 * unclean) is the truncated one; a kill before the redo record is
 * durable leaves the log as it was. */
static ino_t hw_inode(const char *name)
{
    char p[400];
    snprintf(p, sizeof p, "%s/%s/%s", root, name, CKPT_HIGH_WATERMARK);
    struct stat st;
    return stat(p, &st) == 0 ? st.st_ino : 0;
}

static void test_high_watermark(void)
{
    struct plog_config c;
    trunc_config(&c);
    struct plog *l = open_log("hw", &c, true);
    CHECK_EQ_INT(plog_checkpointed_hw(l), -1);
    CHECK(!file_exists("hw", CKPT_HIGH_WATERMARK));
    CHECK_EQ_INT(plog_checkpoint_hw(l, 0), PLOG_OK);
    CHECK_EQ_INT(plog_checkpointed_hw(l), 0);
    plog_close(l, true);

    l = build_follower("hw", &c);
    CHECK_EQ_INT(plog_checkpointed_hw(l), 0);
    CHECK_EQ_INT(plog_checkpoint_hw(l, -1), PLOG_ERR_OUT_OF_RANGE);
    CHECK_EQ_INT(plog_checkpoint_hw(l, 17), PLOG_OK);
    CHECK_EQ_INT(plog_checkpointed_hw(l), 17);
    char *t = ckpt_text("hw", CKPT_HIGH_WATERMARK);
    CHECK(!strcmp(t, "0\n17\n"));
    free(t);
    /* The same value again is not rewritten. */
    ino_t ino = hw_inode("hw");
    CHECK_EQ_INT(plog_checkpoint_hw(l, 17), PLOG_OK);
    CHECK(hw_inode("hw") == ino);
    /* Past the log end: clamped, as Kafka's updateHighWatermark. */
    CHECK_EQ_INT(plog_checkpoint_hw(l, 99), PLOG_OK);
    CHECK_EQ_INT(plog_checkpointed_hw(l), 30);
    t = ckpt_text("hw", CKPT_HIGH_WATERMARK);
    CHECK(!strcmp(t, "0\n30\n"));
    free(t);
    CHECK_EQ_INT(plog_checkpoint_hw(l, 20), PLOG_OK);
    for (int pass = 0; pass < 2; pass++) {
        plog_close(l, pass == 0);
        l = open_log("hw", &c, pass == 0);
        CHECK_EQ_INT(plog_checkpointed_hw(l), 20);
    }
    /* Truncated below it: clamped to the new end, now and after a crash. */
    CHECK_EQ_INT(plog_truncate_to(l, 13), PLOG_OK);
    CHECK_EQ_INT(plog_checkpointed_hw(l), 12);
    plog_close(l, false);
    l = open_log("hw", &c, false);
    CHECK_EQ_INT(plog_checkpointed_hw(l), 12);
    /* The log start moved above it: clamped up. */
    int64_t ls;
    CHECK_EQ_INT(plog_delete_records(l, 12, &ls), PLOG_OK);
    CHECK_EQ_INT(plog_checkpoint_hw(l, 3), PLOG_OK);
    CHECK_EQ_INT(plog_checkpointed_hw(l), 12);
    plog_close(l, true);
    /* A torn write cut the log below it (unsynced tail lost). */
    char p[400];
    snprintf(p, sizeof p, "%s/hw/%s", root, CKPT_HIGH_WATERMARK);
    spit(p, "0\n1000\n", 7);
    l = open_log("hw", &c, false);
    CHECK_EQ_INT(plog_checkpointed_hw(l), 12);
    plog_close(l, true);
    /* Unreadable, or negative: none. */
    spit(p, "0\n12", 4);
    l = open_log("hw", &c, true);
    CHECK_EQ_INT(plog_checkpointed_hw(l), -1);
    plog_close(l, true);
    spit(p, "0\n-1\n", 5);
    l = open_log("hw", &c, true);
    CHECK_EQ_INT(plog_checkpointed_hw(l), -1);
    CHECK_EQ_INT(plog_checkpoint_hw(l, 12), PLOG_OK);
    CHECK_EQ_INT(plog_checkpointed_hw(l), 12);
    /* A failed write makes the partition read-only, like any checkpoint. */
    size_t len;
    uint8_t *b = leader_batch(12, 2, 3, 100, 0, &len);
    CHECK_EQ_INT(follower_append(l, b, len), PLOG_OK);
    free(b);
    storage_io.fsync = failing_fsync;
    fail_fsyncs = 1;
    CHECK_EQ_INT(plog_checkpoint_hw(l, 13), PLOG_ERR_IO);
    fail_fsyncs = 0;
    storage_io = storage_io_default;
    CHECK_EQ_INT(plog_checkpointed_hw(l), 12);
    CHECK_EQ_INT(plog_checkpoint_hw(l, 12), PLOG_ERR_IO);
    plog_close(l, false);
    /* Removed with the partition. */
    l = open_log("hw", &c, true);
    CHECK_EQ_INT(plog_checkpointed_hw(l), 12);
    CHECK_EQ_INT(plog_destroy(l), 0);
}

/* ---- truncation ---- */

/* Every index entry of the log's files points below its .log's size
 * and below `leo`. */
static int check_index_files(const char *name, int64_t leo)
{
    char dir[300];
    path_of(dir, sizeof dir, name);
    DIR *d = opendir(dir);
    struct dirent *de;
    int bad = 0;
    while (d && (de = readdir(d)) != NULL) {
        long long base;
        char ext[32];
        if (sscanf(de->d_name, "%20lld.%31s", &base, ext) != 2)
            continue;
        char p[600], lp[600];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        snprintf(lp, sizeof lp, "%s/%020lld.log", dir, base);
        struct stat st;
        if (stat(lp, &st) < 0) {
            bad++;
            continue;
        }
        size_t n;
        uint8_t *b = slurp(p, &n);
        if (!strcmp(ext, "index")) {
            for (size_t k = 0; k + 8 <= n; k += 8)
                bad += base + batch_be32(b + k) >= leo || batch_be32(b + k + 4) >= st.st_size;
        } else if (!strcmp(ext, "timeindex")) {
            for (size_t k = 0; k + 12 <= n; k += 12)
                bad += base + batch_be32(b + k + 8) >= leo;
        }
        free(b);
    }
    if (d)
        closedir(d);
    return bad;
}

static void test_truncate_follower(void)
{
    struct plog_config c;
    trunc_config(&c);
    struct plog *l = build_follower("ftrunc", &c);
    int nsegs = count_logs("ftrunc");
    CHECK(nsegs >= 4);
    CHECK_EQ_INT(plog_log_end(l), 30);

    /* At the log end and past it: no data changes. */
    int64_t size = plog_size_bytes(l);
    CHECK_EQ_INT(plog_truncate_to(l, 30), PLOG_OK);
    CHECK_EQ_INT(plog_truncate_to(l, 31), PLOG_OK);
    CHECK_EQ_INT(plog_log_end(l), 30);
    CHECK_EQ_INT(plog_size_bytes(l), size);
    CHECK_EQ_INT(count_logs("ftrunc"), nsegs);
    CHECK(!file_exists("ftrunc", CKPT_TRUNCATION));
    /* ...but an epoch begun at the log end with no data goes (Kafka). */
    CHECK_EQ_INT(plog_begin_epoch(l, 9), PLOG_OK);
    CHECK_EQ_INT(plog_leader_epoch(l), 9);
    CHECK_EQ_INT(plog_truncate_to(l, 30), PLOG_OK);
    CHECK_EQ_INT(plog_leader_epoch(l), 3);
    CHECK_EQ_INT(plog_size_bytes(l), size);
    char *t = ckpt_text("ftrunc", CKPT_LEADER_EPOCH);
    CHECK(!strcmp(t, "0\n3\n1 0\n2 10\n3 20\n"));
    free(t);

    /* Into the middle of a batch of the second segment: later segments,
     * their indexes and epochs 2 and 3 go. */
    CHECK_EQ_INT(plog_truncate_to(l, 9), PLOG_OK);
    CHECK_EQ_INT(plog_log_end(l), 8);
    CHECK_EQ_INT(plog_leader_epoch(l), 1);
    CHECK(count_logs("ftrunc") < nsegs);
    CHECK_EQ_INT(check_readable(l, 0, 8), 0);
    struct plog_range r;
    CHECK_EQ_INT(plog_read(l, 8, 1, INT64_MAX, &r), PLOG_OK);
    CHECK_EQ_INT(r.fd, -1);
    CHECK_EQ_INT(check_index_files("ftrunc", 8), 0);
    t = ckpt_text("ftrunc", CKPT_LEADER_EPOCH);
    CHECK(!strcmp(t, "0\n1\n1 0\n"));
    free(t);
    CHECK(!file_exists("ftrunc", CKPT_TRUNCATION));
    int32_t e;
    int64_t off;
    end_for(l, 1, &e, &off);
    CHECK_EQ_INT(e, 1);
    CHECK_EQ_INT(off, 8);
    end_for(l, 2, &e, &off); /* gone: above every epoch now */
    CHECK_EQ_INT(e, -1);
    CHECK_EQ_INT(off, -1);
    int after = count_logs("ftrunc");

    /* Reopened clean and unclean: the same log. */
    for (int pass = 0; pass < 2; pass++) {
        plog_close(l, pass == 0);
        l = open_log("ftrunc", &c, pass == 0);
        CHECK_EQ_INT(plog_log_end(l), 8);
        CHECK_EQ_INT(plog_leader_epoch(l), 1);
        CHECK_EQ_INT(count_logs("ftrunc"), after);
        CHECK_EQ_INT(check_readable(l, 0, 8), 0);
        CHECK_EQ_INT(check_index_files("ftrunc", 8), 0);
    }

    /* The new leader's history follows: epoch 4 from 8. */
    for (int64_t o = 8; o < 20; o += 3) {
        size_t len;
        uint8_t *b = leader_batch(o, 3, 4, 2000 + o, 40, &len);
        CHECK_EQ_INT(follower_append(l, b, len), PLOG_OK);
        free(b);
    }
    CHECK_EQ_INT(plog_log_end(l), 20);
    t = ckpt_text("ftrunc", CKPT_LEADER_EPOCH);
    CHECK(!strcmp(t, "0\n2\n1 0\n4 8\n"));
    free(t);
    CHECK_EQ_INT(check_readable(l, 0, 20), 0);

    /* Exactly at a segment base: that segment and the later ones go. */
    int64_t base2 = -1;
    for (int64_t o = 1; o < 20 && base2 < 0; o++) {
        char name[64];
        snprintf(name, sizeof name, "%020lld.log", (long long)o);
        if (file_exists("ftrunc", name))
            base2 = o;
    }
    CHECK(base2 > 0);
    int before = count_logs("ftrunc");
    CHECK_EQ_INT(plog_truncate_to(l, base2), PLOG_OK);
    CHECK_EQ_INT(plog_log_end(l), base2);
    CHECK(count_logs("ftrunc") < before);
    CHECK_EQ_INT(check_readable(l, 0, base2), 0);
    CHECK_EQ_INT(check_index_files("ftrunc", base2), 0);
    plog_close(l, false);
    l = open_log("ftrunc", &c, false);
    CHECK_EQ_INT(plog_log_end(l), base2);
    CHECK_EQ_INT(check_readable(l, 0, base2), 0);
    plog_close(l, true);
}

static void test_truncate_below_start_and_fully(void)
{
    struct plog_config c;
    trunc_config(&c);
    /* Below the log start: empty there, and the log start stays there
     * after a reopen (it used to come back from the old checkpoint). */
    struct plog *l = build_follower("below", &c);
    int64_t ls;
    CHECK_EQ_INT(plog_delete_records(l, 5, &ls), PLOG_OK);
    CHECK_EQ_INT(plog_truncate_to(l, 3), PLOG_OK);
    CHECK_EQ_INT(plog_log_start(l), 3);
    CHECK_EQ_INT(plog_log_end(l), 3);
    CHECK_EQ_INT(plog_leader_epoch(l), -1);
    CHECK_EQ_INT(count_logs("below"), 1);
    size_t len;
    uint8_t *b = leader_batch(3, 4, 6, 100, 0, &len);
    CHECK_EQ_INT(follower_append(l, b, len), PLOG_OK);
    free(b);
    for (int pass = 0; pass < 2; pass++) {
        plog_close(l, pass == 0);
        l = open_log("below", &c, pass == 0);
        CHECK_EQ_INT(plog_log_start(l), 3);
        CHECK_EQ_INT(plog_log_end(l), 7);
        CHECK_EQ_INT(check_readable(l, 3, 7), 0);
    }
    /* DeleteRecords into the middle of a batch, then truncation inside
     * that batch: nothing is left, and the log start follows the end. */
    CHECK_EQ_INT(plog_delete_records(l, 5, &ls), PLOG_OK);
    CHECK_EQ_INT(plog_truncate_to(l, 6), PLOG_OK);
    CHECK_EQ_INT(plog_log_end(l), 3);
    CHECK_EQ_INT(plog_log_start(l), 3);
    plog_close(l, false);
    l = open_log("below", &c, false);
    CHECK_EQ_INT(plog_log_start(l), 3);
    CHECK_EQ_INT(plog_log_end(l), 3);
    plog_close(l, true);

    /* Fully, to each side of the log: past its end (a follower behind
     * the leader's log start), inside it, below it. */
    static const int64_t targets[] = {1000, 12, 0};
    for (size_t i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof name, "full-%zu", i);
        l = build_follower(name, &c);
        CHECK_EQ_INT(plog_checkpoint_hw(l, 25), PLOG_OK);
        int64_t x = targets[i];
        CHECK_EQ_INT(plog_truncate_fully_and_start_at(l, x), PLOG_OK);
        for (int pass = 0; pass < 3; pass++) {
            CHECK_EQ_INT(plog_log_start(l), x);
            CHECK_EQ_INT(plog_log_end(l), x);
            CHECK_EQ_INT(plog_size_bytes(l), 0);
            CHECK_EQ_INT(plog_segment_count(l), 1);
            CHECK_EQ_INT(count_logs(name), 1);
            CHECK_EQ_INT(plog_leader_epoch(l), -1);
            CHECK_EQ_INT(plog_checkpointed_hw(l), x);
            char seg[64];
            snprintf(seg, sizeof seg, "%020lld.log", (long long)x);
            CHECK(file_exists(name, seg));
            CHECK(!file_exists(name, CKPT_TRUNCATION));
            char *t = ckpt_text(name, CKPT_LEADER_EPOCH);
            CHECK(!strcmp(t, "0\n0\n"));
            free(t);
            struct plog_range r;
            CHECK_EQ_INT(plog_read(l, x, 100, INT64_MAX, &r), PLOG_OK);
            CHECK_EQ_INT(r.fd, -1);
            if (pass == 2)
                break;
            plog_close(l, pass == 0);
            l = open_log(name, &c, pass == 0);
        }
        /* The follower goes on from there. */
        b = leader_batch(x, 2, 7, 100, 0, &len);
        CHECK_EQ_INT(follower_append(l, b, len), PLOG_OK);
        free(b);
        if (x > 0) {
            b = leader_batch(x - 1, 2, 7, 100, 0, &len);
            CHECK_EQ_INT(follower_append(l, b, len), PLOG_ERR_OFFSET);
            free(b);
        }
        CHECK_EQ_INT(check_readable(l, x, x + 2), 0);
        CHECK_EQ_INT(plog_leader_epoch(l), 7);
        plog_close(l, false);
        l = open_log(name, &c, false);
        CHECK_EQ_INT(plog_log_start(l), x);
        CHECK_EQ_INT(plog_log_end(l), x + 2);
        CHECK_EQ_INT(plog_truncate_fully_and_start_at(l, -1), PLOG_ERR_OUT_OF_RANGE);
        CHECK_EQ_INT(plog_truncate_to(l, -1), PLOG_ERR_OUT_OF_RANGE);
        plog_close(l, true);
    }
}

/* What a truncation must leave, checked on a reopened log. */
struct trunc_want {
    int64_t start, end;
    int32_t epoch;
    const char *epochs; /* leader-epoch-checkpoint text */
};

static void check_state(struct plog *l, const char *name, const struct trunc_want *w)
{
    CHECK(l != NULL);
    if (!l)
        return;
    CHECK_EQ_INT(plog_log_start(l), w->start);
    CHECK_EQ_INT(plog_log_end(l), w->end);
    CHECK_EQ_INT(plog_leader_epoch(l), w->epoch);
    CHECK_EQ_INT(check_readable(l, w->start, w->end), 0);
    CHECK_EQ_INT(check_index_files(name, w->end > 0 ? w->end : 1), 0);
    CHECK(!file_exists(name, CKPT_TRUNCATION));
    char *t = ckpt_text(name, CKPT_LEADER_EPOCH);
    CHECK(!strcmp(t, w->epochs));
    if (strcmp(t, w->epochs))
        fprintf(stderr, "  %s: epochs \"%s\"\n", name, t);
    free(t);
}

static void test_truncate_crash_points(void)
{
    struct plog_config c;
    trunc_config(&c);
    static const enum plog_crash_point points[] = {
        PLOG_CRASH_TRUNC_AFTER_RECORD, PLOG_CRASH_TRUNC_AFTER_DROP, PLOG_CRASH_TRUNC_AFTER_CUT,
        PLOG_CRASH_TRUNC_BEFORE_DONE};
    const struct trunc_want to9 = {0, 8, 1, "0\n1\n1 0\n"};
    const struct trunc_want full = {500, 500, -1, "0\n0\n"};
    const struct trunc_want below = {2, 2, -1, "0\n0\n"};
    for (size_t p = 0; p < sizeof points / sizeof points[0]; p++) {
        for (int kind = 0; kind < 3; kind++) {
            for (int clean = 0; clean < 2; clean++) {
                char name[64];
                snprintf(name, sizeof name, "crash-%zu-%d-%d", p, kind, clean);
                struct plog *l = build_follower(name, &c);
                int64_t ls;
                if (kind == 2)
                    CHECK_EQ_INT(plog_delete_records(l, 4, &ls), PLOG_OK);
                plog_crash_point = points[p];
                int rc = kind == 0   ? plog_truncate_to(l, 9)
                         : kind == 1 ? plog_truncate_fully_and_start_at(l, 500)
                                     : plog_truncate_to(l, 2);
                plog_crash_point = PLOG_CRASH_NONE;
                CHECK_EQ_INT(rc, PLOG_ERR_IO);
                CHECK(file_exists(name, CKPT_TRUNCATION));
                plog_close(l, false);
                l = open_log(name, &c, clean);
                check_state(l, name, kind == 0 ? &to9 : kind == 1 ? &full : &below);
                /* Appends go on, and a second reopen keeps them. */
                int64_t end = plog_log_end(l);
                size_t len;
                uint8_t *b = leader_batch(end, 2, 8, 100, 0, &len);
                CHECK_EQ_INT(follower_append(l, b, len), PLOG_OK);
                free(b);
                plog_close(l, false);
                l = open_log(name, &c, false);
                CHECK_EQ_INT(plog_log_end(l), end + 2);
                CHECK_EQ_INT(plog_leader_epoch(l), 8);
                plog_close(l, true);
            }
        }
    }

    /* The redo record cannot be written: nothing changes, on disk or in
     * memory, and the partition is read-only. */
    struct plog *l = build_follower("crash-norecord", &c);
    storage_io.fsync = failing_fsync;
    fail_fsyncs = 1;
    CHECK_EQ_INT(plog_truncate_to(l, 9), PLOG_ERR_IO);
    fail_fsyncs = 0;
    storage_io = storage_io_default;
    CHECK_EQ_INT(plog_log_end(l), 30);
    CHECK_EQ_INT(plog_truncate_to(l, 9), PLOG_ERR_IO);
    size_t len;
    uint8_t *b = leader_batch(30, 2, 3, 100, 0, &len);
    CHECK_EQ_INT(follower_append(l, b, len), PLOG_ERR_IO);
    free(b);
    plog_close(l, false);
    l = open_log("crash-norecord", &c, false);
    const struct trunc_want untouched = {0, 30, 3, "0\n3\n1 0\n2 10\n3 20\n"};
    check_state(l, "crash-norecord", &untouched);
    plog_close(l, true);

    /* A damaged record is ignored (and removed): the log is kept. */
    l = build_follower("crash-garbled", &c);
    plog_close(l, true);
    char p[400];
    snprintf(p, sizeof p, "%s/crash-garbled/%s", root, CKPT_TRUNCATION);
    spit(p, "0\nnine\n", 7);
    l = open_log("crash-garbled", &c, false);
    check_state(l, "crash-garbled", &untouched);
    plog_close(l, true);
}

/* ---- threads ---- */

struct race {
    struct plog *l;
    atomic_int done; /* set by the main thread, read by the readers */
    atomic_int bad;
};

static void *race_reader(void *arg)
{
    struct race *rc = arg;
    unsigned seed = 11;
    while (!rc->done) {
        /* Not the last few offsets: a truncation may take them. */
        int64_t leo = plog_log_end(rc->l) - 10;
        if (leo <= 0)
            continue;
        int64_t off = rand_r(&seed) % leo;
        if (check_readable(rc->l, off, off + 1) != 0)
            rc->bad++;
        int32_t e, ask = (int32_t)(rand_r(&seed) % 12);
        int64_t end;
        plog_end_offset_for_epoch(rc->l, ask, &e, &end);
        if ((e >= 0) != (end >= 0) || e > ask)
            rc->bad++;
    }
    return NULL;
}

static void *race_flusher(void *arg)
{
    struct race *rc = arg;
    while (!rc->done) {
        if (plog_flush(rc->l) < 0)
            rc->bad++;
        if (plog_checkpoint_hw(rc->l, plog_log_end(rc->l)) != PLOG_OK)
            rc->bad++;
        plog_housekeep(rc->l, 0);
    }
    return NULL;
}

static void test_threads(void)
{
    struct plog_config c;
    plog_config_defaults(&c);
    c.segment_bytes = 3000;
    c.index_interval_bytes = 200;
    struct race rc = {open_log("race", &c, true), 0, 0};
    pthread_t t1, t2;
    pthread_create(&t1, NULL, race_reader, &rc);
    pthread_create(&t2, NULL, race_flusher, &rc);
    int fails = 0;
    int64_t next = 0;
    for (int i = 0; i < 600; i++) {
        /* A few batches per "fetch", epochs rising; every 100 a
         * truncation of the last few offsets. */
        uint8_t *buf = NULL;
        size_t n = 0;
        for (int k = 0; k < 1 + i % 4; k++) {
            size_t len;
            uint8_t *b = leader_batch(next, 1 + k, 1 + i / 60, 100 + next, (size_t)(i % 30), &len);
            buf = realloc(buf, n + len);
            memcpy(buf + n, b, len);
            n += len;
            free(b);
            next += 1 + k;
        }
        fails += follower_append(rc.l, buf, n) != PLOG_OK;
        free(buf);
        if (i % 100 == 99) {
            fails += plog_truncate_to(rc.l, next - 3) != PLOG_OK;
            next = plog_log_end(rc.l);
        }
    }
    rc.done = 1;
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    CHECK_EQ_INT(fails, 0);
    CHECK_EQ_INT(rc.bad, 0);
    int64_t leo = plog_log_end(rc.l);
    CHECK_EQ_INT(check_readable(rc.l, 0, leo), 0);
    plog_close(rc.l, true);
    struct plog *l = open_log("race", &c, false);
    CHECK_EQ_INT(plog_log_end(l), leo);
    CHECK_EQ_INT(plog_leader_epoch(l), 10);
    CHECK_EQ_INT(check_readable(l, 0, leo), 0);
    plog_close(l, true);
}

int main(void)
{
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    test_follower_mirrors_leader();
    test_follower_refusals();
    test_follower_huge_gaps();
    test_end_offset_for_epoch();
    test_high_watermark();
    test_truncate_follower();
    test_truncate_below_start_and_fully();
    test_truncate_crash_points();
    test_threads();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup failed\n");
    return tap_done();
}
