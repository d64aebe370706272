/*
 * Checkpoint files of a partition directory.  All are ASCII text, one
 * value per line, lines ending in '\n', numbers in decimal.
 *
 * leader-epoch-checkpoint (Kafka's own format, so its tools read it):
 *
 *   line   content
 *   1      version, "0"
 *   2      N, the number of entries
 *   3..    N lines "epoch start_offset": from start_offset on, batches
 *          were appended by the leader of that epoch; epochs and offsets
 *          strictly increase
 *
 * log-start-offset (first offset still readable, moved by DeleteRecords):
 *
 *   line   content
 *   1      version, "0"
 *   2      the log start offset
 *
 * recovery-point (every segment ending at or below this offset has been
 * fsynced, so recovery after a crash need not rescan it):
 *
 *   line   content
 *   1      version, "0"
 *   2      the recovery point offset
 *
 * high-watermark (Kafka keeps the high watermarks of all partitions of a
 * log directory in one replication-offset-checkpoint; here each
 * partition has its own, see storage/README.md).  Offsets below it were
 * replicated to the whole ISR; read at open and clamped to the log:
 *
 *   line   content
 *   1      version, "0"
 *   2      the high watermark
 *
 * truncation (present only while a truncation runs: the redo record of
 * plog_truncate.c; plog_open finishes the truncation it describes, then
 * removes it):
 *
 *   line   content
 *   1      version, "0"
 *   2      the offset to truncate to
 *   3      "0": remove the batches holding offsets >= it (plog_truncate_to);
 *          "1": delete everything and restart the log empty there
 *          (plog_truncate_fully_and_start_at)
 *
 * Each is replaced by writing <name>.tmp, fsync, rename over <name>,
 * fsync of the directory; a leftover *.tmp is removed on open.  The
 * truncation record is removed by unlink and an fsync of the directory.
 */
#include "storage/checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/fileio.h"

#define CKPT_MAX_FILE (1024 * 1024)

int ckpt_write_offset(int dir_fd, const char *name, int64_t value)
{
    char buf[64];
    int n = snprintf(buf, sizeof buf, "0\n%" PRId64 "\n", value);
    return sio_write_file_atomic(dir_fd, name, buf, (size_t)n);
}

/* Reads the whole file into a NUL-terminated buffer. 0, 1 absent, -1. */
static int read_text(int dir_fd, const char *name, char **out)
{
    int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 1 : -1;
    char *buf = malloc(CKPT_MAX_FILE + 1);
    if (!buf) {
        close(fd);
        return -1;
    }
    ssize_t n = sio_pread_all(fd, buf, CKPT_MAX_FILE, 0);
    close(fd);
    if (n < 0) {
        free(buf);
        return -1;
    }
    buf[n] = 0;
    *out = buf;
    return 0;
}

/* Parses one decimal integer that must be followed by `term`. */
static int parse_i64(char **p, char term, int64_t *v)
{
    char *end;
    if (**p == 0 || **p == ' ' || **p == '\n')
        return -1;
    errno = 0;
    long long x = strtoll(*p, &end, 10);
    if (errno || end == *p || *end != term)
        return -1;
    *v = x;
    *p = end + 1;
    return 0;
}

int ckpt_read_offset(int dir_fd, const char *name, int64_t *value)
{
    char *buf;
    int rc = read_text(dir_fd, name, &buf);
    if (rc != 0)
        return rc;
    char *p = buf;
    int64_t version;
    rc = -1;
    if (parse_i64(&p, '\n', &version) == 0 && version == 0 && parse_i64(&p, '\n', value) == 0 &&
        *p == 0)
        rc = 0;
    free(buf);
    return rc;
}

int ckpt_write_epochs(int dir_fd, const struct epoch_entry *e, int n)
{
    size_t cap = 32 + (size_t)n * 40;
    char *buf = malloc(cap);
    if (!buf)
        return -1;
    size_t len = (size_t)snprintf(buf, cap, "0\n%d\n", n);
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%" PRId32 " %" PRId64 "\n", e[i].epoch,
                                e[i].start_offset);
    int rc = sio_write_file_atomic(dir_fd, CKPT_LEADER_EPOCH, buf, len);
    free(buf);
    return rc;
}

int ckpt_read_epochs(int dir_fd, struct epoch_entry **out, int *out_n)
{
    *out = NULL;
    *out_n = 0;
    char *buf;
    int rc = read_text(dir_fd, CKPT_LEADER_EPOCH, &buf);
    if (rc != 0)
        return rc;
    char *p = buf;
    int64_t version, count;
    struct epoch_entry *e = NULL;
    rc = -1;
    if (parse_i64(&p, '\n', &version) < 0 || version != 0 || parse_i64(&p, '\n', &count) < 0 ||
        count < 0 || count > CKPT_MAX_FILE / 4)
        goto out;
    if (count > 0 && !(e = malloc((size_t)count * sizeof *e)))
        goto out;
    for (int64_t i = 0; i < count; i++) {
        int64_t ep, off;
        if (parse_i64(&p, ' ', &ep) < 0 || parse_i64(&p, '\n', &off) < 0 || ep < 0 ||
            ep > INT32_MAX || off < 0)
            goto out;
        if (i > 0 && (ep <= e[i - 1].epoch || off < e[i - 1].start_offset))
            goto out;
        e[i].epoch = (int32_t)ep;
        e[i].start_offset = off;
    }
    if (*p != 0)
        goto out;
    *out = e;
    *out_n = (int)count;
    e = NULL;
    rc = 0;
out:
    free(e);
    free(buf);
    return rc;
}

int ckpt_write_truncation(int dir_fd, int64_t offset, bool full)
{
    char buf[64];
    int n = snprintf(buf, sizeof buf, "0\n%" PRId64 "\n%d\n", offset, full ? 1 : 0);
    return sio_write_file_atomic(dir_fd, CKPT_TRUNCATION, buf, (size_t)n);
}

int ckpt_read_truncation(int dir_fd, int64_t *offset, bool *full)
{
    char *buf;
    int rc = read_text(dir_fd, CKPT_TRUNCATION, &buf);
    if (rc != 0)
        return rc;
    char *p = buf;
    int64_t version, off, mode;
    rc = -1;
    if (parse_i64(&p, '\n', &version) == 0 && version == 0 && parse_i64(&p, '\n', &off) == 0 &&
        off >= 0 && parse_i64(&p, '\n', &mode) == 0 && (mode == 0 || mode == 1) && *p == 0) {
        *offset = off;
        *full = mode == 1;
        rc = 0;
    }
    free(buf);
    return rc;
}

int ckpt_remove(int dir_fd, const char *name)
{
    if (unlinkat(dir_fd, name, 0) < 0)
        return errno == ENOENT ? 0 : -1;
    return sio_fsync(dir_fd);
}
