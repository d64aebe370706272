/*
 * Offset and time indexes: lookups (exact, between entries, before the
 * first, after the last, empty), persistence through the file, the
 * capacity limit, truncation and the sanity check used by recovery.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/index.h"
#include "tap.h"

static char dir[] = "/tmp/runnel-test-index-XXXXXX";

static off_t file_size(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 ? st.st_size : -1;
}

static void test_offset_index(void)
{
    char path[256];
    snprintf(path, sizeof path, "%s/00000000000000001000.index", dir);
    struct index ix;
    CHECK_EQ_INT(index_open(&ix, path, INDEX_OFFSET, 1000, 1024), 0);
    CHECK(!ix.existed);
    CHECK_EQ_INT(ix.n, 0);
    /* Empty: nothing to find. */
    CHECK_EQ_INT(index_lookup(&ix, 1000), -1);
    CHECK_EQ_INT(index_lookup(&ix, 99999), -1);

    /* Entries: offsets 1010, 1020, ... 1100 at positions 100, 200, ... */
    for (int i = 1; i <= 10; i++)
        CHECK_EQ_INT(index_append_offset(&ix, 1000 + i * 10, i * 100), 0);
    CHECK_EQ_INT(ix.n, 10);
    CHECK_EQ_INT(file_size(path), 80);

    long e = index_lookup(&ix, 1050); /* exact */
    CHECK_EQ_INT(e, 4);
    CHECK_EQ_INT(index_offset_at(&ix, (size_t)e), 1050);
    CHECK_EQ_INT(index_position_at(&ix, (size_t)e), 500);
    e = index_lookup(&ix, 1057); /* between */
    CHECK_EQ_INT(index_offset_at(&ix, (size_t)e), 1050);
    CHECK_EQ_INT(index_lookup(&ix, 1009), -1); /* before the first */
    CHECK_EQ_INT(index_lookup(&ix, 1000), -1);
    e = index_lookup(&ix, 5000); /* after the last */
    CHECK_EQ_INT(e, 9);
    CHECK_EQ_INT(index_position_at(&ix, (size_t)e), 1000);
    CHECK(index_check(&ix, 1001, 1101));
    CHECK(!index_check(&ix, 1000, 1101)); /* last position past the log */
    CHECK(!index_check(&ix, 2000, 1100)); /* entry at/after next offset */

    /* Big-endian on disk, relative to the base: entry 0 = {10, 100}. */
    int fd = open(path, O_RDONLY);
    uint8_t raw[8];
    CHECK_EQ_INT(pread(fd, raw, 8, 0), 8);
    close(fd);
    CHECK(raw[0] == 0 && raw[1] == 0 && raw[2] == 0 && raw[3] == 10);
    CHECK(raw[4] == 0 && raw[5] == 0 && raw[6] == 0 && raw[7] == 100);

    CHECK_EQ_INT(index_truncate(&ix, 5), 0);
    CHECK_EQ_INT(file_size(path), 40);
    CHECK_EQ_INT(index_offset_at(&ix, (size_t)index_lookup(&ix, 5000)), 1050);
    index_close(&ix);

    /* Reopen: the entries come back from the file (mapped). */
    CHECK_EQ_INT(index_open(&ix, path, INDEX_OFFSET, 1000, 1024), 0);
    CHECK(ix.existed);
    CHECK_EQ_INT(ix.n, 5);
    CHECK(ix.mapped);
    CHECK_EQ_INT(index_offset_at(&ix, (size_t)index_lookup(&ix, 1033)), 1030);
    /* Appending to a mapped index makes it writable first. */
    CHECK_EQ_INT(index_append_offset(&ix, 1060, 600), 0);
    CHECK_EQ_INT(ix.n, 6);
    CHECK_EQ_INT(file_size(path), 48);
    CHECK_EQ_INT(index_sync(&ix), 0);
    CHECK_EQ_INT(index_release(&ix), 0);
    CHECK(ix.mapped && ix.fd < 0);
    CHECK_EQ_INT(index_position_at(&ix, 5), 600);
    index_close(&ix);

    /* Damage: not increasing, ragged tail. */
    fd = open(path, O_WRONLY);
    uint8_t bad[8] = {0, 0, 0, 5, 0, 0, 0, 1};
    CHECK_EQ_INT(pwrite(fd, bad, 8, 40), 8); /* entry 5 below entry 4 */
    close(fd);
    CHECK_EQ_INT(index_open(&ix, path, INDEX_OFFSET, 1000, 1024), 0);
    CHECK(!index_check(&ix, 100000, 100000));
    index_close(&ix);
    fd = open(path, O_WRONLY);
    CHECK_EQ_INT(ftruncate(fd, 43), 0);
    close(fd);
    CHECK_EQ_INT(index_open(&ix, path, INDEX_OFFSET, 1000, 1024), 0);
    CHECK(ix.ragged);
    CHECK_EQ_INT(ix.n, 5);
    CHECK(!index_check(&ix, 100000, 100000));
    index_close(&ix);

    /* Capacity: 24 bytes = 3 entries; further appends are skipped. */
    unlink(path);
    CHECK_EQ_INT(index_open(&ix, path, INDEX_OFFSET, 1000, 24), 0);
    for (int i = 1; i <= 5; i++)
        CHECK_EQ_INT(index_append_offset(&ix, 1000 + i, i * 10), 0);
    CHECK_EQ_INT(ix.n, 3);
    CHECK(index_full(&ix));
    index_close(&ix);
}

static void test_time_index(void)
{
    char path[256];
    snprintf(path, sizeof path, "%s/00000000000000000000.timeindex", dir);
    struct index ix;
    CHECK_EQ_INT(index_open(&ix, path, INDEX_TIME, 0, 1200), 0);
    CHECK_EQ_INT(index_last_timestamp(&ix), -1);
    CHECK_EQ_INT(index_lookup_time_before(&ix, 5000), -1);
    /* timestamps 1000, 2000, 3000 at offsets 5, 9, 20 */
    CHECK_EQ_INT(index_append_time(&ix, 1000, 5), 0);
    CHECK_EQ_INT(index_append_time(&ix, 2000, 9), 0);
    CHECK_EQ_INT(index_append_time(&ix, 3000, 20), 0);
    CHECK_EQ_INT(file_size(path), 36);
    CHECK_EQ_INT(index_last_timestamp(&ix), 3000);
    CHECK_EQ_INT(index_lookup_time_before(&ix, 1000), -1); /* strictly before */
    CHECK_EQ_INT(index_lookup_time_before(&ix, 1001), 0);
    CHECK_EQ_INT(index_lookup_time_before(&ix, 2000), 0);
    CHECK_EQ_INT(index_lookup_time_before(&ix, 2500), 1);
    CHECK_EQ_INT(index_lookup_time_before(&ix, 99999), 2);
    CHECK_EQ_INT(index_offset_at(&ix, 1), 9);
    CHECK_EQ_INT(index_timestamp_at(&ix, 2), 3000);
    CHECK(index_check(&ix, 0, 21));
    CHECK(!index_check(&ix, 0, 20));
    index_close(&ix);

    CHECK_EQ_INT(index_open(&ix, path, INDEX_TIME, 0, 1200), 0);
    CHECK_EQ_INT(ix.n, 3);
    CHECK_EQ_INT(index_timestamp_at(&ix, 0), 1000);
    /* Time going backwards is damage. */
    CHECK_EQ_INT(index_append_time(&ix, 500, 30), 0);
    CHECK(!index_check(&ix, 0, 100));
    index_close(&ix);
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_offset_index();
    test_time_index();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup failed\n");
    return tap_done();
}
