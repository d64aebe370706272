/*
 * The partition log through its public interface: append and read
 * (across segments, inside batches, byte and offset limits, out of
 * range), delete-records and its checkpoint, retention by bytes and by
 * time, offset-for-time, truncation, fetch ranges outliving deleted
 * segments, log-append time, flush policy, and appends, reads and
 * flushes racing on threads.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/batch.h"
#include "storage/checkpoint.h"
#include "storage/plog.h"
#include "tap.h"

static char root[] = "/tmp/runnel-test-plog-XXXXXX";

/* Codec of the batches built: fixed, or -1 to rotate through all five. */
static int codec_mode = 0;

/* n records "v<offset>" (padded with 'x'), timestamps ts, ts+1, ... */
static uint8_t *make_batch(int64_t first, int n, int64_t ts, size_t pad, size_t *len)
{
    struct batch_builder b;
    batch_builder_init(&b, codec_mode < 0 ? (int)(first % 5) : codec_mode, ts);
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

static int append_ts(struct plog *l, int n, int64_t ts, size_t pad, int32_t epoch,
                     struct plog_append_result *res)
{
    size_t len;
    uint8_t *b = make_batch(plog_log_end(l), n, ts, pad, &len);
    struct plog_append_result r;
    int rc = plog_append(l, b, len, epoch, 99999, res ? res : &r);
    free(b);
    return rc;
}

static int append(struct plog *l, int n, size_t pad)
{
    return append_ts(l, n, 1000 + plog_log_end(l), pad, 0, NULL);
}

/* Reads the range into memory and returns the batch headers in it. */
static int range_batches(const struct plog_range *r, struct batch_hdr *hs, int max)
{
    if (r->fd < 0)
        return 0;
    uint8_t *buf = malloc((size_t)r->len);
    int n = 0;
    if (pread(r->fd, buf, (size_t)r->len, r->file_pos) == r->len) {
        int64_t off = 0;
        while (off < r->len && n < max) {
            if (batch_parse_header(buf + off, (size_t)(r->len - off), r->len - off - 12, &hs[n]) !=
                    PLOG_OK ||
                batch_validate(buf + off, (size_t)batch_size(&hs[n]), false, NULL) != PLOG_OK) {
                n = -1;
                break;
            }
            off += batch_size(&hs[n]);
            n++;
        }
    }
    free(buf);
    return n;
}

/* The value of the record at `off` in the range's first batch matches. */
static bool range_has(const struct plog_range *r, int64_t off)
{
    if (r->fd < 0)
        return false;
    uint8_t *buf = malloc((size_t)r->len);
    bool ok = false;
    struct batch_hdr h;
    if (pread(r->fd, buf, (size_t)r->len, r->file_pos) == r->len &&
        batch_parse_header(buf, (size_t)r->len, r->len, &h) == PLOG_OK &&
        batch_size(&h) <= r->len) {
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
    free(buf);
    return ok;
}

static int check_readable(struct plog *l, int64_t from, int64_t to)
{
    int bad = 0;
    for (int64_t off = from; off < to; off++) {
        struct plog_range r;
        if (plog_read(l, off, 1, INT64_MAX, &r) != PLOG_OK) {
            bad++;
            continue;
        }
        bad += !range_has(&r, off);
        plog_range_release(r.ref);
    }
    return bad;
}

static int count_logs(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL)
        n += strlen(de->d_name) == 24 && !strcmp(de->d_name + 20, ".log");
    if (d)
        closedir(d);
    return n;
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

static void test_append_read(void)
{
    struct plog_config c;
    plog_config_defaults(&c);
    struct plog *l = open_log("basic", &c, true);
    CHECK(l != NULL);
    CHECK_EQ_INT(plog_log_start(l), 0);
    CHECK_EQ_INT(plog_log_end(l), 0);
    struct plog_range r;
    CHECK_EQ_INT(plog_read(l, 0, 100, INT64_MAX, &r), PLOG_OK); /* empty log */
    CHECK_EQ_INT(r.fd, -1);

    struct plog_append_result res;
    CHECK_EQ_INT(append_ts(l, 3, 500, 0, 7, &res), PLOG_OK);
    CHECK_EQ_INT(res.base_offset, 0);
    CHECK_EQ_INT(res.last_offset, 2);
    CHECK_EQ_INT(res.record_count, 3);
    CHECK_EQ_INT(res.log_append_time, -1);
    CHECK_EQ_INT(res.log_start_offset, 0);
    for (int i = 0; i < 9; i++)
        CHECK_EQ_INT(append(l, 3, 20), PLOG_OK); /* batches at 3, 6, ..., 27 */
    CHECK_EQ_INT(plog_log_end(l), 30);
    CHECK(plog_size_bytes(l) > 0);
    CHECK_EQ_INT(check_readable(l, 0, 30), 0);

    /* Inside a batch: the whole batch that holds the offset. */
    struct batch_hdr hs[16];
    CHECK_EQ_INT(plog_read(l, 7, 1, INT64_MAX, &r), PLOG_OK);
    CHECK_EQ_INT(range_batches(&r, hs, 16), 1);
    CHECK_EQ_INT(hs[0].base_offset, 6);
    CHECK_EQ_INT(hs[0].partition_leader_epoch, 0);
    int32_t one = r.len;
    plog_range_release(r.ref);

    /* max_bytes: whole batches only, at least one. */
    CHECK_EQ_INT(plog_read(l, 6, 0, INT64_MAX, &r), PLOG_OK);
    CHECK_EQ_INT(range_batches(&r, hs, 16), 1);
    plog_range_release(r.ref);
    CHECK_EQ_INT(plog_read(l, 6, one * 2 + 5, INT64_MAX, &r), PLOG_OK);
    CHECK_EQ_INT(range_batches(&r, hs, 16), 2);
    CHECK_EQ_INT(hs[1].base_offset, 9);
    plog_range_release(r.ref);
    CHECK_EQ_INT(plog_read(l, 6, 1 << 20, INT64_MAX, &r), PLOG_OK);
    CHECK_EQ_INT(range_batches(&r, hs, 16), 8);
    plog_range_release(r.ref);

    /* max_offset (high watermark), exclusive. */
    CHECK_EQ_INT(plog_read(l, 6, 1 << 20, 12, &r), PLOG_OK);
    CHECK_EQ_INT(range_batches(&r, hs, 16), 2);
    CHECK_EQ_INT(hs[1].base_offset + hs[1].last_offset_delta, 11);
    plog_range_release(r.ref);
    CHECK_EQ_INT(plog_read(l, 12, 1 << 20, 12, &r), PLOG_OK);
    CHECK_EQ_INT(r.fd, -1);

    /* Out of range and log end. */
    CHECK_EQ_INT(plog_read(l, 30, 100, INT64_MAX, &r), PLOG_OK);
    CHECK_EQ_INT(r.fd, -1);
    CHECK_EQ_INT(plog_read(l, 31, 100, INT64_MAX, &r), PLOG_ERR_OUT_OF_RANGE);
    CHECK_EQ_INT(plog_read(l, -1, 100, INT64_MAX, &r), PLOG_ERR_OUT_OF_RANGE);

    /* The epoch became the partition's and went into every batch. */
    CHECK_EQ_INT(plog_leader_epoch(l), 7);
    plog_close(l, true);
}

static void test_bad_appends(void)
{
    struct plog_config c;
    plog_config_defaults(&c);
    c.max_message_bytes = 300;
    struct plog *l = open_log("bad", &c, true);
    CHECK_EQ_INT(append(l, 2, 10), PLOG_OK);
    int64_t size = plog_size_bytes(l);

    /* Too large. */
    CHECK_EQ_INT(append(l, 2, 400), PLOG_ERR_TOO_LARGE);
    /* Two batches, the second corrupt: nothing at all is written. */
    size_t l1, l2;
    uint8_t *b1 = make_batch(2, 2, 1, 5, &l1);
    uint8_t *b2 = make_batch(4, 2, 1, 5, &l2);
    uint8_t *both = malloc(l1 + l2);
    memcpy(both, b1, l1);
    memcpy(both + l1, b2, l2);
    both[l1 + l2 - 1] ^= 1;
    struct plog_append_result res;
    CHECK_EQ_INT(plog_append(l, both, l1 + l2, 0, 1, &res), PLOG_ERR_CORRUPT);
    CHECK_EQ_INT(plog_log_end(l), 2);
    CHECK_EQ_INT(plog_size_bytes(l), size);
    /* A trailing partial batch is corrupt too. */
    memcpy(both + l1, b2, l2);
    CHECK_EQ_INT(plog_append(l, both, l1 + 30, 0, 1, &res), PLOG_ERR_CORRUPT);
    CHECK_EQ_INT(plog_log_end(l), 2);
    /* Old magic. */
    b1[16] = 1;
    CHECK_EQ_INT(plog_append(l, b1, l1, 0, 1, &res), PLOG_ERR_UNSUPPORTED);
    /* Both good: one append, contiguous offsets. */
    memcpy(both, b2, l2);
    memcpy(both + l2, b2, l2);
    CHECK_EQ_INT(plog_append(l, both, 2 * l2, 0, 1, &res), PLOG_OK);
    CHECK_EQ_INT(res.base_offset, 2);
    CHECK_EQ_INT(res.last_offset, 5);
    CHECK_EQ_INT(res.record_count, 4);
    /* Empty input: nothing to do. */
    CHECK_EQ_INT(plog_append(l, both, 0, 0, 1, &res), PLOG_OK);
    CHECK_EQ_INT(plog_log_end(l), 6);

    /* A wrong maxTimestamp is replaced by the records' real maximum. */
    size_t lt;
    uint8_t *bt = make_batch(6, 3, 5000, 0, &lt);
    batch_put_be64(bt + BATCH_MAX_TS_OFFSET, 1);
    batch_update_crc(bt, lt);
    CHECK_EQ_INT(plog_append(l, bt, lt, 0, 1, &res), PLOG_OK);
    CHECK_EQ_INT(batch_be64(bt + BATCH_MAX_TS_OFFSET), 5002);
    CHECK_EQ_INT(batch_validate(bt, lt, true, NULL), PLOG_OK);
    struct plog_range r;
    struct batch_hdr hs[2];
    CHECK_EQ_INT(plog_read(l, 6, 1, INT64_MAX, &r), PLOG_OK);
    CHECK_EQ_INT(range_batches(&r, hs, 2), 1);
    CHECK_EQ_INT(hs[0].max_timestamp, 5002);
    plog_range_release(r.ref);
    free(bt);
    free(b1);
    free(b2);
    free(both);
    plog_close(l, true);
}

static void test_log_append_time(void)
{
    struct plog_config c;
    plog_config_defaults(&c);
    c.log_append_time = true;
    struct plog *l = open_log("lat", &c, true);
    size_t len;
    uint8_t *b = make_batch(0, 2, 5, 0, &len);
    struct plog_append_result res;
    CHECK_EQ_INT(plog_append(l, b, len, 0, 777777, &res), PLOG_OK);
    CHECK_EQ_INT(res.log_append_time, 777777);
    struct plog_range r;
    struct batch_hdr hs[2];
    CHECK_EQ_INT(plog_read(l, 0, 1, INT64_MAX, &r), PLOG_OK);
    CHECK_EQ_INT(range_batches(&r, hs, 2), 1); /* includes a CRC check */
    CHECK(hs[0].attributes & BATCH_ATTR_LOG_APPEND_TIME);
    CHECK_EQ_INT(hs[0].max_timestamp, 777777);
    plog_range_release(r.ref);
    int64_t off, ts;
    CHECK_EQ_INT(plog_offset_for_time(l, 777000, &off, &ts), PLOG_OK);
    CHECK_EQ_INT(off, 0);
    CHECK_EQ_INT(ts, 777777);
    free(b);
    plog_close(l, true);
}

static void test_segments_and_delete_records(void)
{
    struct plog_config c;
    plog_config_defaults(&c);
    c.segment_bytes = 600;
    c.index_interval_bytes = 50;
    struct plog *l = open_log("delrec", &c, true);
    for (int i = 0; i < 15; i++)
        CHECK_EQ_INT(append(l, 2, 60), PLOG_OK);
    CHECK_EQ_INT(plog_log_end(l), 30);
    char dir[300];
    snprintf(dir, sizeof dir, "%s/delrec", root);
    int nsegs = count_logs(dir);
    CHECK(nsegs >= 4);
    CHECK_EQ_INT(check_readable(l, 0, 30), 0);

    int64_t ls;
    CHECK_EQ_INT(plog_delete_records(l, 31, &ls), PLOG_ERR_OUT_OF_RANGE);
    CHECK_EQ_INT(plog_delete_records(l, 5, &ls), PLOG_OK);
    CHECK_EQ_INT(ls, 5);
    CHECK_EQ_INT(plog_delete_records(l, 3, &ls), PLOG_OK); /* never backwards */
    CHECK_EQ_INT(ls, 5);
    struct plog_range r;
    CHECK_EQ_INT(plog_read(l, 4, 100, INT64_MAX, &r), PLOG_ERR_OUT_OF_RANGE);
    CHECK_EQ_INT(plog_read(l, 5, 1, INT64_MAX, &r), PLOG_OK);
    CHECK(range_has(&r, 5));
    plog_range_release(r.ref);
    plog_close(l, false);

    /* Durable: survives a crash. */
    l = open_log("delrec", &c, false);
    CHECK_EQ_INT(plog_log_start(l), 5);
    CHECK_EQ_INT(check_readable(l, 5, 30), 0);

    /* Move into the third segment; housekeeping deletes the two below. */
    CHECK_EQ_INT(plog_delete_records(l, 17, &ls), PLOG_OK);
    int deleted = plog_housekeep(l, 0);
    CHECK(deleted >= 2);
    CHECK_EQ_INT(count_logs(dir), nsegs - deleted);
    CHECK_EQ_INT(plog_log_start(l), 17);
    CHECK_EQ_INT(check_readable(l, 17, 30), 0);
    CHECK_EQ_INT(plog_delete_records(l, -1, &ls), PLOG_OK); /* to the end */
    CHECK_EQ_INT(ls, 30);
    CHECK_EQ_INT(plog_read(l, 29, 100, INT64_MAX, &r), PLOG_ERR_OUT_OF_RANGE);
    CHECK_EQ_INT(plog_read(l, 30, 100, INT64_MAX, &r), PLOG_OK);
    CHECK_EQ_INT(r.fd, -1);
    plog_housekeep(l, 0);
    CHECK_EQ_INT(count_logs(dir), 1); /* only the active one stays */
    CHECK_EQ_INT(append(l, 1, 0), PLOG_OK);
    CHECK_EQ_INT(check_readable(l, 30, 31), 0);
    plog_close(l, true);
    l = open_log("delrec", &c, true);
    CHECK_EQ_INT(plog_log_start(l), 30);
    CHECK_EQ_INT(plog_log_end(l), 31);
    plog_close(l, true);
}

static void test_read_ref_outlives_delete(void)
{
    struct plog_config c;
    plog_config_defaults(&c);
    c.segment_bytes = 400;
    struct plog *l = open_log("ref", &c, true);
    for (int i = 0; i < 6; i++)
        CHECK_EQ_INT(append(l, 2, 60), PLOG_OK);
    struct plog_range r;
    CHECK_EQ_INT(plog_read(l, 0, 1 << 20, INT64_MAX, &r), PLOG_OK);
    CHECK(r.fd >= 0);
    int64_t ls;
    CHECK_EQ_INT(plog_delete_records(l, plog_log_end(l), &ls), PLOG_OK);
    CHECK(plog_housekeep(l, 0) >= 1);
    char p[400];
    snprintf(p, sizeof p, "%s/ref/00000000000000000000.log", root);
    struct stat st;
    CHECK(stat(p, &st) < 0); /* unlinked */
    CHECK(range_has(&r, 0)); /* but the range still reads */
    CHECK(range_has(&r, 1));
    plog_range_release(r.ref);
    plog_close(l, true);
}

static void test_retention(void)
{
    struct plog_config c;
    plog_config_defaults(&c);
    c.segment_bytes = 500;
    c.retention_ms = -1;
    struct plog *l = open_log("retbytes", &c, true);
    /* Timestamps far in the past: time retention must not be what acts. */
    for (int i = 0; i < 12; i++)
        CHECK_EQ_INT(append(l, 2, 80), PLOG_OK);
    char dir[300];
    snprintf(dir, sizeof dir, "%s/retbytes", root);
    int nsegs = count_logs(dir);
    CHECK(nsegs >= 5);
    int64_t total = plog_size_bytes(l);
    /* Keep at least total - 2.5 segments: exactly 2 go (Kafka's rule:
     * delete while what remains is still >= retention.bytes). */
    int64_t first_sizes[3];
    {
        /* sizes of the first three segments from the files */
        for (int i = 0, k = 0; k < 3; i++) {
            char p[400];
            snprintf(p, sizeof p, "%s/%020d.log", dir, i);
            struct stat st;
            if (stat(p, &st) == 0)
                first_sizes[k++] = st.st_size;
            if (i > 100)
                break;
        }
    }
    c.retention_bytes = total - first_sizes[0] - first_sizes[1] - first_sizes[2] / 2;
    plog_set_config(l, &c);
    CHECK_EQ_INT(plog_housekeep(l, 0), 2);
    CHECK_EQ_INT(count_logs(dir), nsegs - 2);
    CHECK_EQ_INT(plog_size_bytes(l), total - first_sizes[0] - first_sizes[1]);
    CHECK(plog_log_start(l) > 0);
    CHECK_EQ_INT(check_readable(l, plog_log_start(l), plog_log_end(l)), 0);
    CHECK_EQ_INT(plog_housekeep(l, 0), 0);
    /* retention.bytes 0 empties everything but the active segment. */
    c.retention_bytes = 0;
    plog_set_config(l, &c);
    CHECK_EQ_INT(plog_housekeep(l, 0), nsegs - 3);
    CHECK_EQ_INT(count_logs(dir), 1);
    plog_close(l, true);

    /* By time: segment max timestamps 1xxx, 2xxx, 3xxx (active). */
    plog_config_defaults(&c);
    c.segment_bytes = 300;
    c.retention_ms = 1500;
    l = open_log("rettime", &c, true);
    CHECK_EQ_INT(append_ts(l, 2, 1000, 80, 0, NULL), PLOG_OK);
    CHECK_EQ_INT(append_ts(l, 2, 1100, 80, 0, NULL), PLOG_OK); /* ~250 bytes: rolls */
    snprintf(dir, sizeof dir, "%s/rettime", root);
    int before = count_logs(dir);
    CHECK_EQ_INT(append_ts(l, 2, 2000, 80, 0, NULL), PLOG_OK);
    CHECK_EQ_INT(append_ts(l, 2, 3000, 80, 0, NULL), PLOG_OK);
    int nseg = count_logs(dir);
    CHECK(nseg >= before + 1);
    /* now 2500: cutoff 1000, no segment is wholly older. */
    CHECK_EQ_INT(plog_housekeep(l, 2500), 0);
    /* now 2700: cutoff 1200, the segments with max 1001 and 1101 go. */
    int d = plog_housekeep(l, 2700);
    CHECK_EQ_INT(d, before);
    CHECK_EQ_INT(plog_log_start(l), 4);
    CHECK_EQ_INT(check_readable(l, 4, 8), 0);
    /* Never the active segment, however old. */
    CHECK_EQ_INT(plog_housekeep(l, 1000000), nseg - before - 1);
    CHECK_EQ_INT(count_logs(dir), 1);
    CHECK_EQ_INT(plog_log_start(l), 6);
    CHECK_EQ_INT(check_readable(l, 6, 8), 0);
    plog_close(l, true);
}

static void test_offset_for_time(void)
{
    struct plog_config c;
    plog_config_defaults(&c);
    c.segment_bytes = 700;
    c.index_interval_bytes = 100;
    struct plog *l = open_log("oft", &c, true);
    int64_t off, ts;
    CHECK_EQ_INT(plog_offset_for_time(l, 0, &off, &ts), PLOG_OK);
    CHECK_EQ_INT(off, -1);
    CHECK_EQ_INT(plog_offset_for_time(l, -3, &off, &ts), PLOG_OK);
    CHECK_EQ_INT(off, -1);
    /* Batch i (offsets 4i..4i+3) has timestamps 1000i + 0..3. */
    for (int i = 0; i < 20; i++)
        CHECK_EQ_INT(append_ts(l, 4, 1000 * i, 50, 0, NULL), PLOG_OK);
    char dir[300];
    snprintf(dir, sizeof dir, "%s/oft", root);
    CHECK(count_logs(dir) >= 3);
    for (int pass = 0; pass < 2; pass++) {
        CHECK_EQ_INT(plog_offset_for_time(l, 0, &off, &ts), PLOG_OK);
        CHECK_EQ_INT(off, 0);
        CHECK_EQ_INT(ts, 0);
        CHECK_EQ_INT(plog_offset_for_time(l, 7002, &off, &ts), PLOG_OK);
        CHECK_EQ_INT(off, 30); /* record-level: the third record of batch 7 */
        CHECK_EQ_INT(ts, 7002);
        CHECK_EQ_INT(plog_offset_for_time(l, 7004, &off, &ts), PLOG_OK);
        CHECK_EQ_INT(off, 32);
        CHECK_EQ_INT(ts, 8000);
        CHECK_EQ_INT(plog_offset_for_time(l, 15500, &off, &ts), PLOG_OK);
        CHECK_EQ_INT(off, 64);
        CHECK_EQ_INT(plog_offset_for_time(l, 19003, &off, &ts), PLOG_OK);
        CHECK_EQ_INT(off, 79);
        CHECK_EQ_INT(plog_offset_for_time(l, 19004, &off, &ts), PLOG_OK);
        CHECK_EQ_INT(off, -1);
        CHECK_EQ_INT(ts, -1);
        CHECK_EQ_INT(plog_offset_for_time(l, -1, &off, &ts), PLOG_OK);
        CHECK_EQ_INT(off, 80);
        CHECK_EQ_INT(plog_offset_for_time(l, -2, &off, &ts), PLOG_OK);
        CHECK_EQ_INT(off, 0);
        CHECK_EQ_INT(plog_offset_for_time(l, -3, &off, &ts), PLOG_OK);
        CHECK_EQ_INT(off, 79);
        CHECK_EQ_INT(ts, 19003);
        /* Every timestamp maps to the right offset, from every segment. */
        int wrong = 0;
        for (int64_t t = 0; t < 20000; t += 250) {
            int64_t want = t > 19003 ? -1 : (t / 1000) * 4 + (t % 1000 <= 3 ? t % 1000 : 4);
            plog_offset_for_time(l, t, &off, &ts);
            wrong += off != want;
        }
        CHECK_EQ_INT(wrong, 0);
        /* Same answers after a clean reopen (sealed indexes from files). */
        plog_close(l, true);
        l = open_log("oft", &c, true);
    }
    /* Below the log start, the answer starts at the log start. */
    int64_t ls;
    CHECK_EQ_INT(plog_delete_records(l, 10, &ls), PLOG_OK);
    CHECK_EQ_INT(plog_offset_for_time(l, 0, &off, &ts), PLOG_OK);
    CHECK_EQ_INT(off, 10);
    CHECK_EQ_INT(ts, 2002);
    plog_close(l, true);

    /* Out-of-order timestamps: the first batch whose max reaches ts. */
    plog_config_defaults(&c);
    l = open_log("oft2", &c, true);
    CHECK_EQ_INT(append_ts(l, 2, 5000, 0, 0, NULL), PLOG_OK); /* 0,1: 5000,5001 */
    CHECK_EQ_INT(append_ts(l, 2, 1000, 0, 0, NULL), PLOG_OK); /* 2,3 */
    CHECK_EQ_INT(append_ts(l, 2, 9000, 0, 0, NULL), PLOG_OK); /* 4,5 */
    CHECK_EQ_INT(append_ts(l, 2, 9001, 0, 0, NULL), PLOG_OK); /* 6,7: 9001,9002 */
    CHECK_EQ_INT(plog_offset_for_time(l, 2000, &off, &ts), PLOG_OK);
    CHECK_EQ_INT(off, 0);
    CHECK_EQ_INT(plog_offset_for_time(l, 6000, &off, &ts), PLOG_OK);
    CHECK_EQ_INT(off, 4);
    CHECK_EQ_INT(plog_offset_for_time(l, -3, &off, &ts), PLOG_OK);
    CHECK_EQ_INT(off, 7);
    CHECK_EQ_INT(ts, 9002);
    plog_close(l, true);
}

static void test_truncate(void)
{
    struct plog_config c;
    plog_config_defaults(&c);
    c.segment_bytes = 500;
    c.index_interval_bytes = 60;
    struct plog *l = open_log("trunc", &c, true);
    for (int i = 0; i < 12; i++)
        CHECK_EQ_INT(append_ts(l, 2, 1000 + i, 60, i < 6 ? 1 : 2, NULL), PLOG_OK);
    CHECK_EQ_INT(plog_leader_epoch(l), 2);
    char dir[300];
    snprintf(dir, sizeof dir, "%s/trunc", root);
    int nsegs = count_logs(dir);
    CHECK(nsegs >= 4);

    CHECK_EQ_INT(plog_truncate_to(l, 100), PLOG_OK); /* past the end: nothing */
    CHECK_EQ_INT(plog_log_end(l), 24);
    /* Inside the batch 14..15: that whole batch goes. */
    CHECK_EQ_INT(plog_truncate_to(l, 15), PLOG_OK);
    CHECK_EQ_INT(plog_log_end(l), 14);
    CHECK_EQ_INT(plog_leader_epoch(l), 2);
    CHECK_EQ_INT(check_readable(l, 0, 14), 0);
    struct plog_range r;
    CHECK_EQ_INT(plog_read(l, 15, 1, INT64_MAX, &r), PLOG_ERR_OUT_OF_RANGE);
    /* Down into epoch 1's range: epoch 2 leaves the checkpoint. */
    CHECK_EQ_INT(plog_truncate_to(l, 12), PLOG_OK);
    CHECK_EQ_INT(plog_log_end(l), 12);
    CHECK_EQ_INT(plog_leader_epoch(l), 1);
    int64_t off, ts;
    CHECK_EQ_INT(plog_offset_for_time(l, -3, &off, &ts), PLOG_OK);
    CHECK_EQ_INT(off, 11);
    CHECK_EQ_INT(ts, 1006);
    CHECK(count_logs(dir) < nsegs);
    /* Appends continue from there, into a working segment. */
    CHECK_EQ_INT(append_ts(l, 2, 5000, 60, 3, NULL), PLOG_OK);
    CHECK_EQ_INT(plog_log_end(l), 14);
    CHECK_EQ_INT(check_readable(l, 0, 14), 0);
    plog_close(l, false);
    l = open_log("trunc", &c, false);
    CHECK_EQ_INT(plog_log_end(l), 14);
    CHECK_EQ_INT(plog_leader_epoch(l), 3);
    CHECK_EQ_INT(check_readable(l, 0, 14), 0);
    /* Truncating exactly at a segment base removes that segment. */
    int64_t base2 = -1;
    for (int64_t o = 1; o < 14 && base2 < 0; o++) {
        char p[400];
        snprintf(p, sizeof p, "%s/%020lld.log", dir, (long long)o);
        if (access(p, F_OK) == 0)
            base2 = o;
    }
    CHECK(base2 > 0);
    int before = count_logs(dir);
    int64_t leo_before = plog_log_end(l);
    CHECK_EQ_INT(plog_truncate_to(l, base2), PLOG_OK);
    CHECK_EQ_INT(plog_log_end(l), base2);
    CHECK(count_logs(dir) < before);
    CHECK(leo_before > base2);
    CHECK_EQ_INT(check_readable(l, 0, base2), 0);
    /* Below everything: an empty log starting there. */
    CHECK_EQ_INT(plog_truncate_to(l, 0), PLOG_OK);
    CHECK_EQ_INT(plog_log_end(l), 0);
    CHECK_EQ_INT(plog_leader_epoch(l), -1);
    CHECK_EQ_INT(count_logs(dir), 1);
    CHECK_EQ_INT(append(l, 2, 0), PLOG_OK);
    CHECK_EQ_INT(check_readable(l, 0, 2), 0);
    plog_close(l, true);
}

static void test_flush_policy(void)
{
    struct plog_config c;
    plog_config_defaults(&c);
    c.flush_messages = 5;
    c.flush_ms = 1000;
    struct plog *l = open_log("flush", &c, true);
    CHECK(!plog_flush_due(l, 0));
    size_t len;
    uint8_t *b = make_batch(0, 2, 1, 0, &len);
    struct plog_append_result res;
    CHECK_EQ_INT(plog_append(l, b, len, 0, 100, &res), PLOG_OK);
    free(b);
    CHECK(!plog_flush_due(l, 100));
    CHECK(!plog_flush_due(l, 1099));
    CHECK(plog_flush_due(l, 1100)); /* oldest unflushed append is 1000 ms old */
    CHECK_EQ_INT(plog_flushed_offset(l), 0);
    CHECK_EQ_INT(plog_flush(l), 2);
    CHECK_EQ_INT(plog_flushed_offset(l), 2);
    CHECK(!plog_flush_due(l, 5000));
    for (int i = 0; i < 2; i++)
        CHECK_EQ_INT(append(l, 2, 0), PLOG_OK);
    CHECK(!plog_flush_due(l, 0));
    CHECK_EQ_INT(append(l, 1, 0), PLOG_OK); /* 5 unflushed records */
    CHECK(plog_flush_due(l, 0));
    CHECK_EQ_INT(plog_flush(l), 7);
    CHECK(!plog_flush_due(l, 0));
    CHECK_EQ_INT(plog_flush(l), 7); /* nothing to do */
    CHECK_EQ_INT(plog_destroy(l), 0);
    char dir[300];
    snprintf(dir, sizeof dir, "%s/flush", root);
    CHECK(access(dir, F_OK) != 0);
}

/* ---- threads ---- */

/* done and bad are shared by the appending main thread and both workers:
 * atomics, since volatile orders nothing between threads. */
struct race {
    struct plog *l;
    atomic_int done;
    atomic_int bad;
};

static void *race_reader(void *arg)
{
    struct race *rc = arg;
    unsigned seed = 7;
    while (!atomic_load(&rc->done)) {
        int64_t leo = plog_log_end(rc->l);
        if (leo == 0)
            continue;
        int64_t off = rand_r(&seed) % leo;
        struct plog_range r;
        if (plog_read(rc->l, off, 2000, INT64_MAX, &r) != PLOG_OK || !range_has(&r, off))
            atomic_fetch_add(&rc->bad, 1);
        plog_range_release(r.ref);
    }
    return NULL;
}

static void *race_flusher(void *arg)
{
    struct race *rc = arg;
    while (!atomic_load(&rc->done)) {
        if (plog_flush(rc->l) < 0)
            atomic_fetch_add(&rc->bad, 1);
        plog_housekeep(rc->l, 0);
    }
    return NULL;
}

static void test_threads(void)
{
    struct plog_config c;
    plog_config_defaults(&c);
    c.segment_bytes = 4000;
    c.index_interval_bytes = 300;
    c.retention_bytes = -1;
    codec_mode = -1;
    struct race rc = {open_log("race", &c, true), 0, 0};
    pthread_t t1, t2;
    pthread_create(&t1, NULL, race_reader, &rc);
    pthread_create(&t2, NULL, race_flusher, &rc);
    int fails = 0;
    for (int i = 0; i < 1500; i++)
        fails += append(rc.l, 1 + i % 3, (size_t)(i % 40)) != PLOG_OK;
    atomic_store(&rc.done, 1);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    CHECK_EQ_INT(fails, 0);
    CHECK_EQ_INT(atomic_load(&rc.bad), 0);
    int64_t leo = plog_log_end(rc.l);
    CHECK_EQ_INT(check_readable(rc.l, 0, leo), 0);
    plog_close(rc.l, true);
    struct plog *l = open_log("race", &c, false);
    CHECK_EQ_INT(plog_log_end(l), leo);
    plog_close(l, true);
}

int main(void)
{
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    codec_mode = -1; /* every codec through the read path */
    test_append_read();
    codec_mode = 0;
    test_bad_appends();
    test_log_append_time();
    test_segments_and_delete_records();
    test_read_ref_outlives_delete();
    test_retention();
    test_offset_for_time();
    test_truncate();
    test_flush_policy();
    test_threads();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup failed\n");
    return tap_done();
}
