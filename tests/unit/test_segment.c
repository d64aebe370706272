/*
 * Segments: rolling by size, by time and by a full index (segment count,
 * base offsets in the new file names, data readable across the rolls),
 * and the segment API itself (append, find, seal, truncate).
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "storage/batch.h"
#include "storage/fileio.h"
#include "storage/plog.h"
#include "storage/segment.h"
#include "tap.h"

static char root[] = "/tmp/runnel-test-segment-XXXXXX";

/* A batch of n records whose values are "v<offset>" given the offset the
 * plog will assign to the first one. */
static uint8_t *make_batch(int64_t first, int n, int64_t ts, size_t pad, size_t *len)
{
    struct batch_builder b;
    batch_builder_init(&b, 0, ts);
    char *v = malloc(pad + 32);
    for (int i = 0; i < n; i++) {
        int vl = snprintf(v, 32, "v%lld", (long long)(first + i));
        memset(v + vl, 'x', pad);
        batch_builder_add(&b, ts, NULL, 0, v, vl + (int32_t)pad, NULL, 0);
    }
    free(v);
    uint8_t *out;
    batch_builder_finish(&b, &out, len);
    batch_builder_free(&b);
    return out;
}

static int append(struct plog *l, int n, int64_t ts, size_t pad, int64_t now)
{
    size_t len;
    uint8_t *b = make_batch(plog_log_end(l), n, ts, pad, &len);
    struct plog_append_result r;
    int rc = plog_append(l, b, len, 0, now, &r);
    free(b);
    return rc;
}

/* Sorted base offsets of the .log files in dir. */
static int list_logs(const char *dir, int64_t *bases, int max)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l == 24 && !strcmp(de->d_name + 20, ".log") && n < max)
            bases[n++] = strtoll(de->d_name, NULL, 10);
    }
    if (d)
        closedir(d);
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && bases[j - 1] > bases[j]; j--) {
            int64_t t = bases[j];
            bases[j] = bases[j - 1];
            bases[j - 1] = t;
        }
    return n;
}

/* Every offset in [from, to) reads back as a batch holding it, with the
 * record carrying "v<offset>". */
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
        bool ok = pread(r.fd, buf, (size_t)r.len, r.file_pos) == r.len;
        struct batch_hdr h;
        ok = ok && batch_parse_header(buf, (size_t)r.len, r.len, &h) == PLOG_OK &&
             batch_size(&h) == r.len && h.base_offset <= off && batch_last_offset(&h) >= off &&
             batch_validate(buf, (size_t)r.len, false, NULL) == PLOG_OK;
        if (ok) {
            struct batch_records rs;
            struct batch_record rec;
            char want[32];
            snprintf(want, sizeof want, "v%lld", (long long)off);
            bool found = false;
            batch_records_begin(buf, &h, &rs);
            while (batch_records_next(&rs, &rec) == 1)
                if (h.base_offset + rec.offset_delta == off)
                    found =
                        rec.value_len >= (int32_t)strlen(want) &&
                        !memcmp(rec.value, want, strlen(want)) &&
                        (rec.value_len == (int32_t)strlen(want) || rec.value[strlen(want)] == 'x');
            batch_records_end(&rs);
            ok = found;
        }
        if (!ok)
            bad++;
        free(buf);
        plog_range_release(r.ref);
    }
    return bad;
}

static void test_roll_by_size(void)
{
    char dir[300];
    snprintf(dir, sizeof dir, "%s/size", root);
    struct plog_config c;
    plog_config_defaults(&c);
    c.segment_bytes = 1000;
    struct plog *l;
    char err[256];
    CHECK_EQ_INT(plog_open(dir, &c, true, &l, err, sizeof err), 0);
    /* Batches of 3 records with ~100-byte values: about 390 bytes each,
     * so two fit in a segment and the third rolls. */
    for (int i = 0; i < 7; i++)
        CHECK_EQ_INT(append(l, 3, 1000 + i, 100, 5000), PLOG_OK);
    int64_t bases[32];
    int n = list_logs(dir, bases, 32);
    CHECK_EQ_INT(n, 4);
    CHECK_EQ_INT(bases[0], 0);
    CHECK_EQ_INT(bases[1], 6);
    CHECK_EQ_INT(bases[2], 12);
    CHECK_EQ_INT(bases[3], 18);
    CHECK_EQ_INT(plog_log_end(l), 21);
    CHECK_EQ_INT(check_readable(l, 0, 21), 0);
    /* A read never spans two segments: from offset 3 with room for all,
     * only the rest of the first segment comes back. */
    struct plog_range r;
    CHECK_EQ_INT(plog_read(l, 3, 1 << 20, INT64_MAX, &r), PLOG_OK);
    struct batch_hdr h;
    uint8_t hb[BATCH_HEADER_SIZE];
    CHECK_EQ_INT(pread(r.fd, hb, sizeof hb, r.file_pos), BATCH_HEADER_SIZE);
    CHECK_EQ_INT(batch_parse_header(hb, sizeof hb, INT32_MAX, &h), PLOG_OK);
    CHECK_EQ_INT(h.base_offset, 3);
    char p0[400];
    struct stat st;
    snprintf(p0, sizeof p0, "%s/00000000000000000000.log", dir);
    CHECK_EQ_INT(stat(p0, &st), 0);
    CHECK_EQ_INT(r.file_pos + r.len, st.st_size); /* up to the end of segment 0 */
    int64_t first_seg_size = r.file_pos + r.len;
    plog_range_release(r.ref);
    CHECK_EQ_INT(plog_read(l, 6, 1 << 20, INT64_MAX, &r), PLOG_OK);
    CHECK_EQ_INT(r.file_pos, 0); /* second segment starts at its file's start */
    plog_range_release(r.ref);

    plog_close(l, true);
    /* Reopened, same segments and data. */
    CHECK_EQ_INT(plog_open(dir, &c, true, &l, err, sizeof err), 0);
    CHECK_EQ_INT(plog_log_end(l), 21);
    CHECK_EQ_INT(check_readable(l, 0, 21), 0);
    CHECK(first_seg_size <= 1000);
    /* Appending after reopen continues in the last segment until full. */
    CHECK_EQ_INT(append(l, 3, 2000, 100, 6000), PLOG_OK);
    CHECK_EQ_INT(list_logs(dir, bases, 32), 4);
    CHECK_EQ_INT(append(l, 3, 2001, 100, 6000), PLOG_OK);
    CHECK_EQ_INT(list_logs(dir, bases, 32), 5);
    CHECK_EQ_INT(bases[4], 24);
    CHECK_EQ_INT(check_readable(l, 0, 27), 0);
    plog_close(l, true);
}

static void test_roll_by_time(void)
{
    char dir[300];
    snprintf(dir, sizeof dir, "%s/time", root);
    struct plog_config c;
    plog_config_defaults(&c);
    c.segment_ms = 1000;
    struct plog *l;
    char err[256];
    CHECK_EQ_INT(plog_open(dir, &c, true, &l, err, sizeof err), 0);
    int64_t bases[32];
    CHECK_EQ_INT(append(l, 2, 1, 0, 10000), PLOG_OK);
    CHECK_EQ_INT(append(l, 2, 1, 0, 10500), PLOG_OK);
    CHECK_EQ_INT(list_logs(dir, bases, 32), 1);
    /* 1000 ms after the segment's first append: the next append rolls. */
    CHECK_EQ_INT(append(l, 2, 1, 0, 11000), PLOG_OK);
    CHECK_EQ_INT(list_logs(dir, bases, 32), 2);
    CHECK_EQ_INT(bases[1], 4);
    /* Housekeeping rolls an old, non-empty active segment... */
    CHECK_EQ_INT(plog_housekeep(l, 11999), 0);
    CHECK_EQ_INT(list_logs(dir, bases, 32), 2);
    CHECK_EQ_INT(plog_housekeep(l, 12000), 0);
    CHECK_EQ_INT(list_logs(dir, bases, 32), 3);
    CHECK_EQ_INT(bases[2], 6);
    /* ...but never an empty one. */
    CHECK_EQ_INT(plog_housekeep(l, 50000), 0);
    CHECK_EQ_INT(list_logs(dir, bases, 32), 3);
    CHECK_EQ_INT(append(l, 1, 1, 0, 50000), PLOG_OK);
    CHECK_EQ_INT(check_readable(l, 0, 7), 0);
    plog_close(l, true);
}

static void test_roll_by_index(void)
{
    char dir[300];
    snprintf(dir, sizeof dir, "%s/index", root);
    struct plog_config c;
    plog_config_defaults(&c);
    c.index_interval_bytes = 1; /* an entry for (nearly) every batch */
    c.segment_index_bytes = 32; /* 4 offset entries, 2 time entries */
    struct plog *l;
    char err[256];
    CHECK_EQ_INT(plog_open(dir, &c, true, &l, err, sizeof err), 0);
    for (int i = 0; i < 12; i++)
        CHECK_EQ_INT(append(l, 1, 100 + i, 0, 1), PLOG_OK);
    int64_t bases[32];
    int n = list_logs(dir, bases, 32);
    CHECK(n >= 3);
    for (int i = 1; i < n; i++)
        CHECK(bases[i] > bases[i - 1]);
    CHECK_EQ_INT(check_readable(l, 0, 12), 0);
    plog_close(l, true);
}

static void test_segment_api(void)
{
    char dir[300];
    snprintf(dir, sizeof dir, "%s/api", root);
    mkdir(dir, 0755);
    struct segment *s;
    CHECK_EQ_INT(segment_create(dir, 100, 4096, 7, &s), 0);
    CHECK_EQ_INT(s->base_offset, 100);
    CHECK_EQ_INT(s->next_offset, 100);
    int64_t positions[10];
    for (int i = 0; i < 10; i++) {
        size_t len;
        uint8_t *b = make_batch(100 + i * 2, 2, 1000 + i, 50, &len);
        batch_put_be64(b, 100 + i * 2);
        positions[i] = s->size;
        CHECK_EQ_INT(segment_append(s, b, len, 100, 7), PLOG_OK);
        free(b);
    }
    CHECK_EQ_INT(s->next_offset, 120);
    CHECK(s->oidx.n > 0);
    CHECK_EQ_INT(s->max_ts, 1009);
    int64_t pos;
    struct batch_hdr h;
    for (int64_t off = 100; off < 120; off++) {
        CHECK_EQ_INT(segment_find(s, off, s->size, &pos, &h), 1);
        CHECK_EQ_INT(pos, positions[(off - 100) / 2]);
    }
    CHECK_EQ_INT(segment_find(s, 120, s->size, &pos, &h), 0);
    /* Truncation inside a batch removes that whole batch. */
    CHECK_EQ_INT(segment_truncate(s, 111, 100), PLOG_OK);
    CHECK_EQ_INT(s->next_offset, 110);
    CHECK_EQ_INT(s->size, positions[5]);
    CHECK_EQ_INT(s->max_ts, 1004);
    for (size_t i = 0; i < s->oidx.n; i++)
        CHECK(index_position_at(&s->oidx, i) < s->size);
    CHECK_EQ_INT(segment_seal(s), PLOG_OK);
    CHECK(s->sealed);
    CHECK_EQ_INT(index_last_timestamp(&s->tidx), 1004);
    CHECK_EQ_INT(segment_sync(s), 0);
    segment_unref(s);

    /* Opened again and recovered: the same state. */
    CHECK_EQ_INT(segment_open(dir, 100, 4096, &s), 0);
    CHECK_EQ_INT(segment_unseal(s), PLOG_OK);
    CHECK_EQ_INT(segment_recover(s, 100), 0);
    CHECK_EQ_INT(s->next_offset, 110);
    CHECK_EQ_INT(s->size, positions[5]);
    CHECK_EQ_INT(segment_delete_files(s), 0);
    segment_unref(s);
    int64_t bases[4];
    CHECK_EQ_INT(list_logs(dir, bases, 4), 0);
}

/* Runs `runnel dump-log` with stdout and stderr captured into files;
 * returns its exit status and the captured text (malloc'ed). */
static int run_dump(char **argv, int argc, char **out, char **err)
{
    char op[400], ep[400];
    snprintf(op, sizeof op, "%s/dump.out", root);
    snprintf(ep, sizeof ep, "%s/dump.err", root);
    fflush(stdout);
    fflush(stderr);
    int so = dup(1), se = dup(2);
    int fo = open(op, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int fe = open(ep, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fo, 1);
    dup2(fe, 2);
    int rc = cmd_dump_log(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    close(fo);
    close(fe);
    const char *paths[2] = {op, ep};
    char **dst[2] = {out, err};
    for (int i = 0; i < 2; i++) {
        FILE *f = fopen(paths[i], "rb");
        char *b = calloc(1, 1 << 20);
        size_t n = f ? fread(b, 1, (1 << 20) - 1, f) : 0;
        b[n] = 0;
        if (f)
            fclose(f);
        *dst[i] = b;
    }
    return rc;
}

static int count_lines(const char *text, const char *prefix)
{
    int n = 0;
    for (const char *p = text; p && *p;) {
        if (!strncmp(p, prefix, strlen(prefix)))
            n++;
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return n;
}

static void test_dump_log(void)
{
    char dir[300], logp[400], idxp[400], tidxp[400];
    snprintf(dir, sizeof dir, "%s/dump", root);
    snprintf(logp, sizeof logp, "%s/00000000000000000000.log", dir);
    snprintf(idxp, sizeof idxp, "%s/00000000000000000000.index", dir);
    snprintf(tidxp, sizeof tidxp, "%s/00000000000000000000.timeindex", dir);
    struct plog_config c;
    plog_config_defaults(&c);
    c.index_interval_bytes = 100;
    struct plog *l;
    char err[256];
    CHECK_EQ_INT(plog_open(dir, &c, true, &l, err, sizeof err), 0);
    for (int i = 0; i < 6; i++)
        CHECK_EQ_INT(append(l, 3, 2000 + i, 40, 1), PLOG_OK);
    plog_close(l, true);

    char *out, *errs;
    char *a1[] = {"dump-log", logp};
    CHECK_EQ_INT(run_dump(a1, 2, &out, &errs), 0);
    CHECK_EQ_INT(count_lines(out, "baseOffset: "), 6);
    CHECK_EQ_INT(count_lines(out, "| offset: "), 0);
    CHECK(strstr(out, "baseOffset: 3 lastOffset: 5 count: 3 ") != NULL);
    CHECK(strstr(out, "compresscodec: none") != NULL);
    CHECK(strstr(out, "isvalid: true") != NULL);
    CHECK(strstr(out, "isvalid: false") == NULL);
    CHECK(strstr(out, "CreateTime: 2005") != NULL);
    CHECK_EQ_INT(strlen(errs), 0);
    free(out);
    free(errs);

    char *a2[] = {"dump-log", "--deep-iteration", logp};
    CHECK_EQ_INT(run_dump(a2, 3, &out, &errs), 0);
    CHECK_EQ_INT(count_lines(out, "| offset: "), 18);
    CHECK(strstr(out, "| offset: 4 CreateTime: 2001 keySize: -1 valueSize: 42 ") != NULL);
    CHECK(strstr(out, "payload:") == NULL);
    free(out);
    free(errs);

    char *a3[] = {"dump-log", "--print-data", logp, idxp, tidxp};
    CHECK_EQ_INT(run_dump(a3, 5, &out, &errs), 0);
    CHECK_EQ_INT(count_lines(out, "| offset: "), 18);
    CHECK(strstr(out, "payload: v17xxxx") != NULL);
    CHECK(count_lines(out, "offset: ") >= 1);    /* .index entries */
    CHECK(count_lines(out, "timestamp: ") >= 1); /* .timeindex entries */
    CHECK(strstr(out, "position: ") != NULL);
    free(out);
    free(errs);

    /* A corrupt batch: reported with its position, nothing after it. */
    int64_t pos2 = -1;
    {
        struct segment *s;
        CHECK_EQ_INT(segment_open(dir, 0, 4096, &s), 0);
        struct batch_hdr h;
        int64_t p;
        CHECK_EQ_INT(segment_find(s, 6, s->size, &p, &h), 1);
        pos2 = p;
        segment_unref(s);
    }
    int fd = open(logp, O_RDWR);
    uint8_t byte;
    CHECK_EQ_INT(pread(fd, &byte, 1, pos2 + 80), 1);
    byte ^= 0xff;
    CHECK_EQ_INT(pwrite(fd, &byte, 1, pos2 + 80), 1);
    close(fd);
    CHECK_EQ_INT(run_dump(a1, 2, &out, &errs), 1);
    CHECK_EQ_INT(count_lines(out, "baseOffset: "), 3);
    CHECK(strstr(out, "isvalid: false") != NULL);
    char want[64];
    snprintf(want, sizeof want, "corrupt batch at position %lld", (long long)pos2);
    CHECK(strstr(errs, want) != NULL);
    CHECK_EQ_INT(count_lines(errs, "runnel dump-log: "), 1);
    free(out);
    free(errs);

    /* Missing file, not a segment file, no file at all. */
    char missing[400];
    snprintf(missing, sizeof missing, "%s/00000000000000000099.log", dir);
    char *a4[] = {"dump-log", missing};
    CHECK_EQ_INT(run_dump(a4, 2, &out, &errs), 1);
    CHECK_EQ_INT(count_lines(errs, "runnel dump-log: "), 1);
    free(out);
    free(errs);
    char *a5[] = {"dump-log", "/etc/hostname"};
    CHECK_EQ_INT(run_dump(a5, 2, &out, &errs), 1);
    CHECK(strstr(errs, "not a segment file") != NULL);
    free(out);
    free(errs);
    char *a6[] = {"dump-log"};
    CHECK_EQ_INT(run_dump(a6, 1, &out, &errs), 2);
    free(out);
    free(errs);
}

int main(void)
{
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    test_roll_by_size();
    test_roll_by_time();
    test_roll_by_index();
    test_segment_api();
    test_dump_log();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup failed\n");
    return tap_done();
}
