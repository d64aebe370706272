/*
 * Offset and time indexes of a segment, in Kafka's on-disk formats.
 * Offsets are stored relative to the segment's base offset (the number
 * in the file name).  Both files are arrays of fixed-size big-endian
 * entries, sorted, with no header; an entry is added at most once per
 * index.interval.bytes of log (see segment.c), so they are sparse.
 *
 * .index, 8 bytes per entry:
 *
 *   offset  size  field
 *   0       4     relativeOffset  int32, lastOffset of the indexed batch
 *                                 minus the base offset
 *   4       4     position        int32, byte position of that batch in
 *                                 the .log file
 *
 * .timeindex, 12 bytes per entry:
 *
 *   offset  size  field
 *   0       8     timestamp       int64, the largest batch maxTimestamp
 *                                 of the segment up to this point
 *   8       4     relativeOffset  int32, lastOffset of the batch that
 *                                 carried that timestamp, minus the base
 *
 * Both are strictly increasing in every field (a time entry is only
 * added when its timestamp is larger than the last).  When a segment is
 * sealed, one last time entry records its largest timestamp, so the
 * last time entry of a sealed segment is the segment's max timestamp.
 * Files are written through entry by entry with pwrite and never
 * preallocated, so their size is always a whole number of entries
 * unless a write was torn.
 */
#include "storage/index.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/batch.h"
#include "storage/fileio.h"

static int load_map(struct index *ix)
{
    ix->buf = NULL;
    ix->mapped = false;
    ix->map_len = 0;
    ix->cap = 0;
    if (ix->n == 0)
        return 0;
    size_t len = ix->n * ix->esize;
    void *m = mmap(NULL, len, PROT_READ, MAP_SHARED, ix->fd, 0);
    if (m == MAP_FAILED)
        return -1;
    ix->buf = m;
    ix->mapped = true;
    ix->map_len = len;
    return 0;
}

int index_open(struct index *ix, const char *path, int kind, int64_t base_offset, size_t max_bytes)
{
    memset(ix, 0, sizeof *ix);
    ix->fd = -1;
    ix->kind = kind;
    ix->esize = kind == INDEX_OFFSET ? INDEX_OFFSET_ENTRY : INDEX_TIME_ENTRY;
    ix->base_offset = base_offset;
    index_set_max_bytes(ix, max_bytes);
    ix->path = strdup(path);
    if (!ix->path)
        return -1;
    ix->existed = true;
    ix->fd = open(path, O_RDWR | O_CLOEXEC);
    if (ix->fd < 0 && errno == ENOENT) {
        ix->existed = false;
        ix->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    }
    if (ix->fd < 0)
        goto fail;
    struct stat st;
    if (fstat(ix->fd, &st) < 0)
        goto fail;
    ix->n = (size_t)st.st_size / ix->esize;
    ix->ragged = (size_t)st.st_size % ix->esize != 0;
    if (load_map(ix) < 0)
        goto fail;
    return 0;
fail:;
    int e = errno;
    index_close(ix);
    errno = e;
    return -1;
}

int index_make_writable(struct index *ix)
{
    if (ix->fd < 0) {
        ix->fd = open(ix->path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (ix->fd < 0)
            return -1;
    }
    if (!ix->mapped && ix->buf)
        return 0;
    size_t cap = ix->n < 64 ? 64 : ix->n;
    uint8_t *b = malloc(cap * ix->esize);
    if (!b)
        return -1;
    if (ix->n)
        memcpy(b, ix->buf, ix->n * ix->esize);
    if (ix->mapped)
        munmap(ix->buf, ix->map_len);
    ix->buf = b;
    ix->cap = cap;
    ix->mapped = false;
    ix->map_len = 0;
    return 0;
}

int index_sync(struct index *ix)
{
    if (ix->fd < 0)
        return 0;
    return sio_fsync(ix->fd);
}

int index_release(struct index *ix)
{
    if (ix->fd < 0)
        return 0;
    if (!ix->mapped) {
        uint8_t *old = ix->buf;
        if (load_map(ix) < 0) {
            /* Keep the memory copy; the file stays open for the retry. */
            ix->buf = old;
            ix->cap = ix->n;
            return -1;
        }
        free(old);
    }
    close(ix->fd);
    ix->fd = -1;
    return 0;
}

void index_close(struct index *ix)
{
    if (ix->mapped)
        munmap(ix->buf, ix->map_len);
    else
        free(ix->buf);
    if (ix->fd >= 0)
        close(ix->fd);
    free(ix->path);
    memset(ix, 0, sizeof *ix);
    ix->fd = -1;
}

int index_set_path(struct index *ix, const char *path)
{
    char *p = strdup(path);
    if (!p)
        return -1;
    free(ix->path);
    ix->path = p;
    return 0;
}

void index_set_max_bytes(struct index *ix, size_t max_bytes)
{
    ix->max_entries = max_bytes / ix->esize;
    if (ix->max_entries < 2)
        ix->max_entries = 2;
}

int64_t index_offset_at(const struct index *ix, size_t i)
{
    const uint8_t *e = ix->buf + i * ix->esize;
    return ix->base_offset + batch_be32(ix->kind == INDEX_OFFSET ? e : e + 8);
}

int32_t index_position_at(const struct index *ix, size_t i)
{
    return batch_be32(ix->buf + i * ix->esize + 4);
}

int64_t index_timestamp_at(const struct index *ix, size_t i)
{
    return batch_be64(ix->buf + i * ix->esize);
}

int64_t index_last_timestamp(const struct index *ix)
{
    return ix->n ? index_timestamp_at(ix, ix->n - 1) : -1;
}

long index_lookup(const struct index *ix, int64_t target)
{
    long lo = 0, hi = (long)ix->n - 1, found = -1;
    while (lo <= hi) {
        long mid = lo + (hi - lo) / 2;
        if (index_offset_at(ix, (size_t)mid) <= target) {
            found = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return found;
}

long index_lookup_time_before(const struct index *ix, int64_t ts)
{
    long lo = 0, hi = (long)ix->n - 1, found = -1;
    while (lo <= hi) {
        long mid = lo + (hi - lo) / 2;
        if (index_timestamp_at(ix, (size_t)mid) < ts) {
            found = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return found;
}

static int append_entry(struct index *ix, const uint8_t *e)
{
    if (index_make_writable(ix) < 0)
        return -1;
    if (ix->n == ix->cap) {
        size_t ncap = ix->cap * 2;
        uint8_t *nb = realloc(ix->buf, ncap * ix->esize);
        if (!nb)
            return -1;
        ix->buf = nb;
        ix->cap = ncap;
    }
    if (sio_pwrite_all(ix->fd, e, ix->esize, (int64_t)(ix->n * ix->esize)) < 0)
        return -1;
    memcpy(ix->buf + ix->n * ix->esize, e, ix->esize);
    ix->n++;
    return 0;
}

int index_append_offset(struct index *ix, int64_t offset, int32_t position)
{
    if (index_full(ix))
        return 0;
    uint8_t e[INDEX_OFFSET_ENTRY];
    batch_put_be32(e, (int32_t)(offset - ix->base_offset));
    batch_put_be32(e + 4, position);
    return append_entry(ix, e);
}

int index_append_time(struct index *ix, int64_t timestamp, int64_t offset)
{
    if (index_full(ix))
        return 0;
    uint8_t e[INDEX_TIME_ENTRY];
    batch_put_be64(e, timestamp);
    batch_put_be32(e + 8, (int32_t)(offset - ix->base_offset));
    return append_entry(ix, e);
}

int index_append_time_final(struct index *ix, int64_t timestamp, int64_t offset)
{
    uint8_t e[INDEX_TIME_ENTRY];
    batch_put_be64(e, timestamp);
    batch_put_be32(e + 8, (int32_t)(offset - ix->base_offset));
    return append_entry(ix, e);
}

int index_truncate(struct index *ix, size_t n)
{
    if (n > ix->n)
        n = ix->n;
    if (index_make_writable(ix) < 0)
        return -1;
    if (sio_ftruncate(ix->fd, (int64_t)(n * ix->esize)) < 0)
        return -1;
    ix->n = n;
    ix->ragged = false;
    return 0;
}

bool index_check(const struct index *ix, int64_t log_size, int64_t next_offset)
{
    if (ix->ragged)
        return false;
    for (size_t i = 0; i < ix->n; i++) {
        const uint8_t *e = ix->buf + i * ix->esize;
        int32_t rel = batch_be32(ix->kind == INDEX_OFFSET ? e : e + 8);
        if (rel < 0 || ix->base_offset + rel >= next_offset)
            return false;
        if (ix->kind == INDEX_OFFSET) {
            int32_t pos = batch_be32(e + 4);
            if (pos < 0 || pos >= log_size)
                return false;
            if (i > 0 && (rel <= batch_be32(e - 8) || pos <= batch_be32(e - 4)))
                return false;
        } else if (i > 0) {
            if (batch_be64(e) <= batch_be64(e - 12) || rel < batch_be32(e - 4))
                return false;
        }
    }
    return true;
}
