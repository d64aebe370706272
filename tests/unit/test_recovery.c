/*
 * Recovery after an unclean shutdown: torn and corrupt tails are cut at
 * the last whole batch, damaged or missing indexes are rebuilt to what
 * appends had written, a clean open reads only the tail, leftovers of
 * interrupted operations are removed, the recovery point limits the
 * rescan, and injected write/fsync failures make the partition
 * read-only.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/batch.h"
#include "storage/checkpoint.h"
#include "storage/fileio.h"
#include "storage/plog.h"
#include "storage/segment.h"
#include "tap.h"

static char root[] = "/tmp/runnel-test-recovery-XXXXXX";

static uint8_t *make_batch(int64_t first, int n, int64_t ts, size_t pad, size_t *len)
{
    struct batch_builder b;
    batch_builder_init(&b, 0, ts);
    char *v = malloc(pad + 32);
    for (int i = 0; i < n; i++) {
        int vl = snprintf(v, 32, "v%lld", (long long)(first + i));
        memset(v + vl, 'x', pad);
        batch_builder_add(&b, ts + i, NULL, 0, v, vl + (int32_t)pad, NULL, 0);
    }
    free(v);
    uint8_t *out;
    batch_builder_finish(&b, &out, len);
    batch_builder_free(&b);
    return out;
}

static int append(struct plog *l, int n, size_t pad, int32_t epoch)
{
    size_t len;
    uint8_t *b = make_batch(plog_log_end(l), n, 1000 + plog_log_end(l), pad, &len);
    struct plog_append_result r;
    int rc = plog_append(l, b, len, epoch, 5000, &r);
    free(b);
    return rc;
}

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
        bool ok = pread(r.fd, buf, (size_t)r.len, r.file_pos) == r.len &&
                  batch_parse_header(buf, (size_t)r.len, r.len, &h) == PLOG_OK &&
                  batch_validate(buf, (size_t)r.len, false, NULL) == PLOG_OK &&
                  h.base_offset <= off && batch_last_offset(&h) >= off;
        if (ok) {
            struct batch_records rs;
            struct batch_record rec;
            char want[32];
            int wl = snprintf(want, sizeof want, "v%lld", (long long)off);
            ok = false;
            batch_records_begin(buf, &h, &rs);
            while (batch_records_next(&rs, &rec) == 1)
                if (h.base_offset + rec.offset_delta == off)
                    ok = rec.value_len >= wl && !memcmp(rec.value, want, (size_t)wl);
            batch_records_end(&rs);
        }
        bad += !ok;
        free(buf);
        plog_range_release(r.ref);
    }
    return bad;
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        *len = 0;
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    *len = fread(b, 1, (size_t)n, f);
    fclose(f);
    return b;
}

static void spit(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(data, 1, len, f);
        fclose(f);
    }
}

static off_t fsize(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

static void trunc_file(const char *path, off_t len)
{
    if (truncate(path, len) != 0)
        perror("truncate");
}

/* Positions of the batches in a .log file. */
static int batch_positions(const char *path, int64_t *pos, int max)
{
    size_t len;
    uint8_t *b = slurp(path, &len);
    int n = 0;
    size_t off = 0;
    while (b && off + BATCH_HEADER_SIZE <= len && n < max) {
        struct batch_hdr h;
        if (batch_parse_header(b + off, len - off, (int64_t)(len - off) - 12, &h) != PLOG_OK)
            break;
        pos[n++] = (int64_t)off;
        off += (size_t)batch_size(&h);
    }
    free(b);
    return n;
}

static void seg_path(char *buf, size_t n, const char *dir, int64_t base, const char *ext)
{
    snprintf(buf, n, "%s/%020lld%s", dir, (long long)base, ext);
}

static void test_torn_tail_and_garbled_index(void)
{
    char dir[300], logp[400], idxp[400], tidxp[400];
    snprintf(dir, sizeof dir, "%s/torn", root);
    seg_path(logp, sizeof logp, dir, 0, ".log");
    seg_path(idxp, sizeof idxp, dir, 0, ".index");
    seg_path(tidxp, sizeof tidxp, dir, 0, ".timeindex");
    struct plog_config c;
    plog_config_defaults(&c);
    c.index_interval_bytes = 200;
    struct plog *l;
    char err[256];
    CHECK_EQ_INT(plog_open(dir, &c, true, &l, err, sizeof err), 0);
    for (int i = 0; i < 20; i++)
        CHECK_EQ_INT(append(l, 2, (size_t)(i * 7 % 60), 1), PLOG_OK);
    CHECK_EQ_INT(plog_log_end(l), 40);
    plog_close(l, false); /* a crash: no flush */

    size_t idx_len, tidx_len;
    uint8_t *idx_orig = slurp(idxp, &idx_len);
    uint8_t *tidx_orig = slurp(tidxp, &tidx_len);
    CHECK(idx_len >= 16);
    CHECK(tidx_len >= 24);
    int64_t pos[64];
    CHECK_EQ_INT(batch_positions(logp, pos, 64), 20);
    off_t log_len = fsize(logp);

    /* Chop the last batch in half and garble the offset index. */
    trunc_file(logp, pos[19] + (log_len - pos[19]) / 2);
    uint8_t *garbage = malloc(idx_len);
    for (size_t i = 0; i < idx_len; i++)
        garbage[i] = (uint8_t)(0xA5 ^ (i * 13));
    spit(idxp, garbage, idx_len);
    free(garbage);

    uint64_t scans = segment_scan_count();
    CHECK_EQ_INT(plog_open(dir, &c, false, &l, err, sizeof err), 0);
    CHECK_EQ_INT(segment_scan_count() - scans, 19);
    CHECK_EQ_INT(plog_log_end(l), 38);
    CHECK_EQ_INT(fsize(logp), pos[19]);
    CHECK_EQ_INT(check_readable(l, 0, 38), 0);
    struct plog_range r;
    CHECK_EQ_INT(plog_read(l, 38, 1000, INT64_MAX, &r), PLOG_OK);
    CHECK_EQ_INT(r.fd, -1);
    CHECK_EQ_INT(plog_read(l, 39, 1000, INT64_MAX, &r), PLOG_ERR_OUT_OF_RANGE);

    /* The rebuilt indexes are what appends wrote, minus entries for the
     * lost batch. */
    size_t idx_new_len, tidx_new_len;
    uint8_t *idx_new = slurp(idxp, &idx_new_len);
    uint8_t *tidx_new = slurp(tidxp, &tidx_new_len);
    size_t keep = 0;
    while (keep + 8 <= idx_len && batch_be32(idx_orig + keep + 4) < pos[19])
        keep += 8;
    CHECK_EQ_INT(idx_new_len, keep);
    CHECK(keep > 0 && !memcmp(idx_new, idx_orig, keep));
    size_t tkeep = 0;
    while (tkeep + 12 <= tidx_len && batch_be32(tidx_orig + tkeep + 8) < 38)
        tkeep += 12;
    CHECK_EQ_INT(tidx_new_len, tkeep);
    CHECK(tkeep > 0 && !memcmp(tidx_new, tidx_orig, tkeep));
    free(idx_new);
    free(tidx_new);

    /* Appends continue at the recovered end. */
    CHECK_EQ_INT(append(l, 2, 5, 1), PLOG_OK);
    CHECK_EQ_INT(plog_log_end(l), 40);
    CHECK_EQ_INT(check_readable(l, 0, 40), 0);
    plog_close(l, true);
    free(idx_orig);
    free(tidx_orig);
}

static void test_clean_open_reads_only_tail(void)
{
    char dir[300], idxp[400], tidxp[400], logp[400];
    snprintf(dir, sizeof dir, "%s/clean", root);
    seg_path(idxp, sizeof idxp, dir, 0, ".index");
    seg_path(tidxp, sizeof tidxp, dir, 0, ".timeindex");
    seg_path(logp, sizeof logp, dir, 0, ".log");
    struct plog_config c;
    plog_config_defaults(&c);
    c.index_interval_bytes = 500;
    struct plog *l;
    char err[256];
    CHECK_EQ_INT(plog_open(dir, &c, true, &l, err, sizeof err), 0);
    for (int i = 0; i < 100; i++)
        CHECK_EQ_INT(append(l, 1, 40, 2), PLOG_OK);
    plog_close(l, true);
    size_t idx_len;
    uint8_t *idx = slurp(idxp, &idx_len);
    struct stat before;
    stat(idxp, &before);
    CHECK(idx_len >= 8 * 5);

    uint64_t scans = segment_scan_count();
    CHECK_EQ_INT(plog_open(dir, &c, true, &l, err, sizeof err), 0);
    uint64_t tail = segment_scan_count() - scans;
    CHECK(tail >= 1 && tail <= 6); /* ~500 bytes of ~100-byte batches */
    CHECK_EQ_INT(plog_log_end(l), 100);
    CHECK_EQ_INT(check_readable(l, 0, 100), 0);
    plog_close(l, true);
    size_t idx2_len;
    uint8_t *idx2 = slurp(idxp, &idx2_len);
    struct stat after;
    stat(idxp, &after);
    CHECK(idx2_len == idx_len && !memcmp(idx, idx2, idx_len));
    CHECK(after.st_mtim.tv_sec == before.st_mtim.tv_sec &&
          after.st_mtim.tv_nsec == before.st_mtim.tv_nsec);
    free(idx2);

    /* The unclean open of the same log reads every batch. */
    scans = segment_scan_count();
    CHECK_EQ_INT(plog_open(dir, &c, false, &l, err, sizeof err), 0);
    CHECK_EQ_INT(segment_scan_count() - scans, 100);
    plog_close(l, true);

    /* A missing index is rebuilt even after a clean shutdown. */
    unlink(idxp);
    unlink(tidxp);
    CHECK_EQ_INT(plog_open(dir, &c, true, &l, err, sizeof err), 0);
    CHECK_EQ_INT(plog_log_end(l), 100);
    CHECK_EQ_INT(check_readable(l, 0, 100), 0);
    plog_close(l, true);
    idx2 = slurp(idxp, &idx2_len);
    CHECK(idx2_len == idx_len && idx2 && !memcmp(idx, idx2, idx_len));
    free(idx2);
    CHECK(fsize(tidxp) > 0);

    /* An index whose last entry points past the log is not trusted. */
    trunc_file(logp, batch_be32(idx + idx_len - 4)); /* the log ends where it pointed */
    CHECK_EQ_INT(plog_open(dir, &c, true, &l, err, sizeof err), 0);
    CHECK(plog_log_end(l) < 100);
    int64_t leo = plog_log_end(l);
    CHECK_EQ_INT(check_readable(l, 0, leo), 0);
    plog_close(l, true);
    size_t n;
    uint8_t *i3 = slurp(idxp, &n);
    CHECK(n < idx_len);
    for (size_t k = 0; k + 8 <= n; k += 8)
        CHECK(batch_be32(i3 + k + 4) < fsize(logp));
    free(i3);
    free(idx);
}

static void test_corrupt_middle_and_zero_tail(void)
{
    char dir[300], logp[400];
    snprintf(dir, sizeof dir, "%s/corrupt", root);
    seg_path(logp, sizeof logp, dir, 0, ".log");
    struct plog_config c;
    plog_config_defaults(&c);
    c.index_interval_bytes = 100;
    struct plog *l;
    char err[256];
    CHECK_EQ_INT(plog_open(dir, &c, true, &l, err, sizeof err), 0);
    for (int i = 0; i < 10; i++)
        CHECK_EQ_INT(append(l, 3, 20, 1), PLOG_OK);
    plog_close(l, false);
    int64_t pos[16];
    CHECK_EQ_INT(batch_positions(logp, pos, 16), 10);

    /* Zeros after the last batch (a file extended but never written). */
    off_t len = fsize(logp);
    trunc_file(logp, len + 4096);
    CHECK_EQ_INT(plog_open(dir, &c, false, &l, err, sizeof err), 0);
    CHECK_EQ_INT(plog_log_end(l), 30);
    CHECK_EQ_INT(fsize(logp), len);
    plog_close(l, false);

    /* One flipped byte in batch 6 (offsets 18..20): cut there. */
    size_t n;
    uint8_t *b = slurp(logp, &n);
    b[pos[6] + 70] ^= 0x10;
    spit(logp, b, n);
    free(b);
    CHECK_EQ_INT(plog_open(dir, &c, false, &l, err, sizeof err), 0);
    CHECK_EQ_INT(plog_log_end(l), 18);
    CHECK_EQ_INT(fsize(logp), pos[6]);
    CHECK_EQ_INT(check_readable(l, 0, 18), 0);
    plog_close(l, true);
}

static void test_leftovers(void)
{
    char dir[300], p[400];
    snprintf(dir, sizeof dir, "%s/leftover", root);
    struct plog_config c;
    plog_config_defaults(&c);
    struct plog *l;
    char err[256];
    CHECK_EQ_INT(plog_open(dir, &c, true, &l, err, sizeof err), 0);
    CHECK_EQ_INT(append(l, 1, 0, 0), PLOG_OK);
    plog_close(l, true);
    const char *junk[] = {"00000000000000000000.log.deleted", "00000000000000000005.index.deleted",
                          "leader-epoch-checkpoint.tmp",      "00000000000000000000.log.cleaned",
                          "00000000000000009999.index",       "00000000000000009999.timeindex"};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, junk[i]);
        spit(p, "junk", 4);
    }
    CHECK_EQ_INT(plog_open(dir, &c, false, &l, err, sizeof err), 0);
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, junk[i]);
        CHECK_EQ_INT(fsize(p), -1);
    }
    CHECK_EQ_INT(plog_log_end(l), 1);
    plog_close(l, true);
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

static void test_multi_segment(void)
{
    char dir[300], p[400];
    snprintf(dir, sizeof dir, "%s/multi", root);
    struct plog_config c;
    plog_config_defaults(&c);
    c.segment_bytes = 700;
    c.index_interval_bytes = 100;
    struct plog *l;
    char err[256];
    CHECK_EQ_INT(plog_open(dir, &c, true, &l, err, sizeof err), 0);
    /* ~200-byte batches of 2: 3 per segment, 4 segments: 0, 6, 12, 18. */
    for (int i = 0; i < 10; i++)
        CHECK_EQ_INT(append(l, 2, 70, 0), PLOG_OK);
    CHECK_EQ_INT(count_logs(dir), 4);
    plog_close(l, false); /* never flushed: no recovery point */

    /* Tear the middle of the second segment: everything after it goes. */
    seg_path(p, sizeof p, dir, 6, ".log");
    int64_t pos[8];
    CHECK_EQ_INT(batch_positions(p, pos, 8), 3);
    trunc_file(p, pos[2] + 10);
    CHECK_EQ_INT(plog_open(dir, &c, false, &l, err, sizeof err), 0);
    CHECK_EQ_INT(plog_log_end(l), 10);
    CHECK_EQ_INT(count_logs(dir), 2);
    CHECK_EQ_INT(check_readable(l, 0, 10), 0);
    /* The cut segment is active again: appends go on in it. */
    CHECK_EQ_INT(append(l, 2, 70, 0), PLOG_OK);
    CHECK_EQ_INT(check_readable(l, 0, 12), 0);
    for (int i = 0; i < 6; i++)
        CHECK_EQ_INT(append(l, 2, 70, 0), PLOG_OK);
    CHECK(count_logs(dir) >= 4);
    int64_t leo = plog_log_end(l);

    /* After a flush the sealed segments are below the recovery point, so
     * an unclean open rescans only the active one. */
    CHECK(plog_flush(l) == leo);
    plog_close(l, false);
    int64_t rp = -1;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    CHECK_EQ_INT(ckpt_read_offset(dfd, CKPT_RECOVERY_POINT, &rp), 0);
    close(dfd);
    CHECK(rp > 0 && rp < leo);
    seg_path(p, sizeof p, dir, rp, ".log");
    int active_batches = batch_positions(p, pos, 8);
    uint64_t scans = segment_scan_count();
    CHECK_EQ_INT(plog_open(dir, &c, false, &l, err, sizeof err), 0);
    CHECK_EQ_INT(segment_scan_count() - scans, active_batches);
    CHECK_EQ_INT(plog_log_end(l), leo);
    CHECK_EQ_INT(check_readable(l, 0, leo), 0);
    plog_close(l, true);
}

/* ---- fault injection ---- */

static int fail_log_writes;
static int fail_index_writes;
static int fail_fsync;
static int fail_ftruncate;

static ssize_t torn_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    if (fail_log_writes && n > 30) {
        /* Half the bytes reach the file, then the device fails. */
        ssize_t w = storage_io_default.pwrite(fd, buf, n / 2, off);
        (void)w;
        errno = EIO;
        return -1;
    }
    if (fail_index_writes && (n == 8 || n == 12)) {
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

static int bad_ftruncate(int fd, off_t len)
{
    if (fail_ftruncate) {
        errno = EIO;
        return -1;
    }
    return storage_io_default.ftruncate(fd, len);
}

static void test_injected_failures(void)
{
    char dir[300], logp[400];
    snprintf(dir, sizeof dir, "%s/inject", root);
    seg_path(logp, sizeof logp, dir, 0, ".log");
    storage_io.pwrite = torn_pwrite;
    storage_io.fsync = bad_fsync;
    storage_io.ftruncate = bad_ftruncate;
    struct plog_config c;
    plog_config_defaults(&c);
    struct plog *l;
    char err[256];
    CHECK_EQ_INT(plog_open(dir, &c, true, &l, err, sizeof err), 0);
    for (int i = 0; i < 5; i++)
        CHECK_EQ_INT(append(l, 2, 30, 0), PLOG_OK);
    off_t good = fsize(logp);

    /* A torn write: the append fails, the partition turns read-only, and
     * the half batch stays on disk because cleaning it up fails too. */
    fail_log_writes = fail_ftruncate = 1;
    CHECK_EQ_INT(append(l, 2, 30, 0), PLOG_ERR_IO);
    fail_log_writes = fail_ftruncate = 0;
    CHECK(fsize(logp) > good);
    CHECK_EQ_INT(plog_log_end(l), 10);
    CHECK_EQ_INT(append(l, 2, 30, 0), PLOG_ERR_IO); /* not retried: read-only */
    CHECK_EQ_INT(plog_flush(l), PLOG_ERR_IO);
    CHECK_EQ_INT(check_readable(l, 0, 10), 0); /* reads still work */
    plog_close(l, false);

    CHECK_EQ_INT(plog_open(dir, &c, false, &l, err, sizeof err), 0);
    CHECK_EQ_INT(plog_log_end(l), 10);
    CHECK_EQ_INT(fsize(logp), good);
    CHECK_EQ_INT(append(l, 2, 30, 0), PLOG_OK);
    CHECK_EQ_INT(plog_flush(l), 12);
    CHECK_EQ_INT(plog_flushed_offset(l), 12);

    /* A failed fsync: flush reports it, nothing counts as durable, and
     * appends are refused from then on. */
    CHECK_EQ_INT(append(l, 2, 30, 0), PLOG_OK);
    fail_fsync = 1;
    CHECK_EQ_INT(plog_flush(l), PLOG_ERR_IO);
    fail_fsync = 0;
    CHECK_EQ_INT(plog_flushed_offset(l), 12);
    CHECK_EQ_INT(append(l, 2, 30, 0), PLOG_ERR_IO);
    CHECK_EQ_INT(plog_flush(l), PLOG_ERR_IO);
    plog_close(l, false);

    /* An index write failing: the batch is in the log and readable, the
     * append reports the failure, the partition turns read-only, and
     * recovery rebuilds the index. */
    snprintf(dir, sizeof dir, "%s/inject-index", root);
    c.index_interval_bytes = 1;
    CHECK_EQ_INT(plog_open(dir, &c, true, &l, err, sizeof err), 0);
    CHECK_EQ_INT(append(l, 2, 30, 0), PLOG_OK);
    fail_index_writes = 1;
    CHECK_EQ_INT(append(l, 2, 30, 0), PLOG_ERR_IO);
    fail_index_writes = 0;
    CHECK_EQ_INT(plog_log_end(l), 4);
    CHECK_EQ_INT(check_readable(l, 0, 4), 0);
    CHECK_EQ_INT(append(l, 2, 30, 0), PLOG_ERR_IO);
    plog_close(l, false);
    CHECK_EQ_INT(plog_open(dir, &c, false, &l, err, sizeof err), 0);
    CHECK_EQ_INT(plog_log_end(l), 4);
    CHECK_EQ_INT(append(l, 2, 30, 0), PLOG_OK);
    CHECK_EQ_INT(check_readable(l, 0, 6), 0);
    plog_close(l, true);
    storage_io = storage_io_default;
}

static void test_epoch_checkpoint_rebuild(void)
{
    char dir[300], p[400];
    snprintf(dir, sizeof dir, "%s/epochs", root);
    snprintf(p, sizeof p, "%s/%s", dir, CKPT_LEADER_EPOCH);
    struct plog_config c;
    plog_config_defaults(&c);
    struct plog *l;
    char err[256];
    CHECK_EQ_INT(plog_open(dir, &c, true, &l, err, sizeof err), 0);
    CHECK_EQ_INT(plog_leader_epoch(l), -1);
    CHECK_EQ_INT(append(l, 2, 0, 1), PLOG_OK);
    CHECK_EQ_INT(append(l, 2, 0, 1), PLOG_OK);
    CHECK_EQ_INT(append(l, 2, 0, 3), PLOG_OK);
    CHECK_EQ_INT(append(l, 2, 0, 5), PLOG_OK);
    CHECK_EQ_INT(plog_leader_epoch(l), 5);
    plog_close(l, true);
    size_t n;
    char *text = (char *)slurp(p, &n);
    text[n] = 0;
    CHECK(!strcmp(text, "0\n3\n1 0\n3 4\n5 6\n"));
    spit(p, "0\n3\n1 0\ngarbage", 15);
    CHECK_EQ_INT(plog_open(dir, &c, false, &l, err, sizeof err), 0);
    CHECK_EQ_INT(plog_leader_epoch(l), 5);
    plog_close(l, true);
    free(text);
    text = (char *)slurp(p, &n);
    text[n] = 0;
    CHECK(!strcmp(text, "0\n3\n1 0\n3 4\n5 6\n"));
    free(text);
}

int main(void)
{
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    test_torn_tail_and_garbled_index();
    test_clean_open_reads_only_tail();
    test_corrupt_middle_and_zero_tail();
    test_leftovers();
    test_multi_segment();
    test_injected_failures();
    test_epoch_checkpoint_rebuild();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup failed\n");
    return tap_done();
}
