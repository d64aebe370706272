/*
 * A segment: <base>.log, <base>.index, <base>.timeindex, where <base> is
 * the first offset the segment may hold, printed as 20 decimal digits
 * (00000000000000000000.log).  The .log file is record batches back to
 * back (format: batch.c), the indexes are described in index.c.
 *
 *   file                    content
 *   <base>.log              magic-2 record batches, offsets increasing
 *   <base>.index            8-byte {relativeOffset, position} entries
 *   <base>.timeindex        12-byte {timestamp, relativeOffset} entries
 *   <base>.<ext>.deleted    a file being deleted (removed on open)
 *   <base>.<ext>.cleaned    the cleaner's output being written (cleaner.c)
 *   <base>.<ext>.swap       the cleaner's output, decided (cleaner.c)
 *
 * Indexing rule, as Kafka's: before appending a batch, if more than
 * index_interval bytes were appended since the last offset index entry,
 * add {batch lastOffset, batch position}, and a time index entry
 * {largest maxTimestamp so far, lastOffset of the batch that had it} if
 * that timestamp is larger than the last time entry.  The first batch of
 * a segment is never indexed (position 0 is where a lookup starts
 * anyway).  Recovery re-runs exactly this rule, so a rebuilt index is
 * identical to the one appends produced.
 */
#include "storage/segment.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "storage/fileio.h"
#include "storage/keyindex.h"
#include "storage/plog.h"

static atomic_uint_fast64_t scan_count;

uint64_t segment_scan_count(void)
{
    return atomic_load(&scan_count);
}

void segment_file_name(char *buf, size_t len, const char *dir, int64_t base, const char *ext)
{
    snprintf(buf, len, "%s/%020lld%s", dir, (long long)base, ext);
}

static struct segment *segment_alloc(const char *dir, int64_t base)
{
    struct segment *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    size_t n = strlen(dir) + 32;
    s->path = malloc(n);
    if (!s->path) {
        free(s);
        return NULL;
    }
    segment_file_name(s->path, n, dir, base, "");
    s->base_offset = base;
    s->next_offset = base;
    s->log_fd = -1;
    s->oidx.fd = -1;
    s->tidx.fd = -1;
    s->max_ts = -1;
    s->offset_of_max_ts = -1;
    atomic_init(&s->refs, 1);
    return s;
}

static void segment_free(struct segment *s)
{
    if (s->log_fd >= 0)
        close(s->log_fd);
    index_close(&s->oidx);
    index_close(&s->tidx);
    free(s->path);
    free(s);
}

static int open_indexes(struct segment *s, size_t max_bytes, const char *suffix)
{
    char p[4096];
    snprintf(p, sizeof p, "%s.index%s", s->path, suffix);
    if (index_open(&s->oidx, p, INDEX_OFFSET, s->base_offset, max_bytes) < 0)
        return -1;
    snprintf(p, sizeof p, "%s.timeindex%s", s->path, suffix);
    if (index_open(&s->tidx, p, INDEX_TIME, s->base_offset, max_bytes) < 0)
        return -1;
    return 0;
}

int segment_create(const char *dir, int64_t base, size_t max_index_bytes, int64_t now_ms,
                   struct segment **out)
{
    struct segment *s = segment_alloc(dir, base);
    if (!s)
        return -1;
    char p[4096];
    snprintf(p, sizeof p, "%s.log", s->path);
    s->log_fd = open(p, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (s->log_fd < 0 && errno == EEXIST) {
        /* An empty leftover (e.g. a roll interrupted before any write) is
         * harmless; anything with data in it is not ours to overwrite. */
        struct stat st;
        s->log_fd = open(p, O_RDWR | O_CLOEXEC);
        if (s->log_fd >= 0 && (fstat(s->log_fd, &st) < 0 || st.st_size != 0)) {
            close(s->log_fd);
            s->log_fd = -1;
            errno = EEXIST;
        }
    }
    if (s->log_fd < 0 || open_indexes(s, max_index_bytes, "") < 0 ||
        index_truncate(&s->oidx, 0) < 0 || index_truncate(&s->tidx, 0) < 0 ||
        index_make_writable(&s->oidx) < 0 || index_make_writable(&s->tidx) < 0) {
        int e = errno;
        segment_free(s);
        errno = e;
        return -1;
    }
    s->roll_base_ms = now_ms;
    s->needs_sync = true;
    *out = s;
    return 0;
}

int segment_create_at(const char *dir, int64_t base, const char *suffix, size_t max_index_bytes,
                      int64_t now_ms, struct segment **out)
{
    struct segment *s = segment_alloc(dir, base);
    if (!s)
        return -1;
    char p[4096];
    snprintf(p, sizeof p, "%s.log%s", s->path, suffix);
    s->log_fd = open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (s->log_fd < 0 || open_indexes(s, max_index_bytes, suffix) < 0 ||
        index_truncate(&s->oidx, 0) < 0 || index_truncate(&s->tidx, 0) < 0 ||
        index_make_writable(&s->oidx) < 0 || index_make_writable(&s->tidx) < 0) {
        int e = errno;
        segment_free(s);
        errno = e;
        return -1;
    }
    s->roll_base_ms = now_ms;
    s->needs_sync = true;
    *out = s;
    return 0;
}

int segment_rename_files(struct segment *s, const char *from, const char *to)
{
    static const char *exts[] = {".index", ".timeindex", ".log"};
    struct index *ix[] = {&s->oidx, &s->tidx, NULL};
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
        char a[4096], b[4096];
        snprintf(a, sizeof a, "%s%s%s", s->path, exts[i], from);
        snprintf(b, sizeof b, "%s%s%s", s->path, exts[i], to);
        if (rename(a, b) < 0)
            return -1;
        /* An index reopens its file by name when made writable again. */
        if (ix[i] && index_set_path(ix[i], b) < 0)
            return -1;
    }
    return 0;
}

int segment_open(const char *dir, int64_t base, size_t max_index_bytes, struct segment **out)
{
    struct segment *s = segment_alloc(dir, base);
    if (!s)
        return -1;
    char p[4096];
    snprintf(p, sizeof p, "%s.log", s->path);
    struct stat st;
    s->log_fd = open(p, O_RDWR | O_CLOEXEC);
    if (s->log_fd < 0 || fstat(s->log_fd, &st) < 0 || open_indexes(s, max_index_bytes, "") < 0) {
        int e = errno;
        segment_free(s);
        errno = e;
        return -1;
    }
    s->size = st.st_size;
    s->roll_base_ms = (int64_t)st.st_mtime * 1000;
    s->sealed = true;
    *out = s;
    return 0;
}

/* Applies the indexing rule (top of file) to the batch at pos. */
static int index_batch(struct segment *s, int64_t pos, int64_t size, int64_t last_offset,
                       int64_t max_ts, int32_t interval)
{
    if (max_ts > s->max_ts) {
        s->max_ts = max_ts;
        s->offset_of_max_ts = last_offset;
    }
    if (s->bytes_since_index > interval) {
        if (index_append_offset(&s->oidx, last_offset, (int32_t)pos) < 0)
            return PLOG_ERR_IO;
        /* One time slot stays free for the entry that seals the segment. */
        if (s->max_ts > index_last_timestamp(&s->tidx) && s->tidx.n + 1 < s->tidx.max_entries &&
            index_append_time(&s->tidx, s->max_ts, s->offset_of_max_ts) < 0)
            return PLOG_ERR_IO;
        s->bytes_since_index = 0;
    }
    s->bytes_since_index += size;
    return PLOG_OK;
}

/* Streams the CRC of the batch at pos without holding it in memory. */
static int check_crc_at(const struct segment *s, int64_t pos, const struct batch_hdr *h,
                        uint8_t *buf, size_t buflen)
{
    int64_t off = pos + BATCH_ATTR_OFFSET, end = pos + batch_size(h);
    uint32_t crc = 0;
    while (off < end) {
        size_t n = (size_t)(end - off) < buflen ? (size_t)(end - off) : buflen;
        ssize_t r = sio_pread_all(s->log_fd, buf, n, off);
        if (r < 0)
            return PLOG_ERR_IO;
        if ((size_t)r != n)
            return PLOG_ERR_CORRUPT;
        crc = crc32c(crc, buf, n);
        off += (int64_t)n;
    }
    return crc == h->crc ? PLOG_OK : PLOG_ERR_CORRUPT;
}

/*
 * Reads batches from pos (a batch boundary, with the index state already
 * matching everything before it) to the end of the file, validating
 * framing, offsets and CRC and indexing each batch.  Cuts the file at the
 * first bad batch.  Returns bytes cut or PLOG_ERR_IO.
 */
static int64_t scan_from(struct segment *s, int64_t pos, int32_t interval)
{
    struct stat st;
    if (fstat(s->log_fd, &st) < 0)
        return PLOG_ERR_IO;
    int64_t file_size = st.st_size;
    size_t buflen = 64 * 1024;
    uint8_t *buf = malloc(buflen);
    if (!buf)
        return PLOG_ERR_IO;
    int rc = PLOG_OK;
    while (pos < file_size) {
        struct batch_hdr h;
        rc = segment_read_header(s, pos, file_size, &h);
        if (rc != PLOG_OK)
            break;
        /* Offsets must increase and stay addressable from the base. */
        if (h.base_offset < s->next_offset || batch_last_offset(&h) - s->base_offset > INT32_MAX ||
            pos > INT32_MAX) {
            rc = PLOG_ERR_CORRUPT;
            break;
        }
        rc = check_crc_at(s, pos, &h, buf, buflen);
        if (rc != PLOG_OK)
            break;
        atomic_fetch_add(&scan_count, 1);
        rc = index_batch(s, pos, batch_size(&h), batch_last_offset(&h), h.max_timestamp, interval);
        if (rc != PLOG_OK)
            break;
        s->next_offset = batch_last_offset(&h) + 1;
        pos += batch_size(&h);
    }
    free(buf);
    if (rc == PLOG_ERR_IO)
        return PLOG_ERR_IO;
    s->size = pos;
    if (pos < file_size) {
        if (sio_ftruncate(s->log_fd, pos) < 0)
            return PLOG_ERR_IO;
        s->needs_sync = true;
    }
    return file_size - pos;
}

int64_t segment_recover(struct segment *s, int32_t index_interval)
{
    if (index_truncate(&s->oidx, 0) < 0 || index_truncate(&s->tidx, 0) < 0)
        return PLOG_ERR_IO;
    s->max_ts = -1;
    s->offset_of_max_ts = -1;
    s->bytes_since_index = 0;
    s->next_offset = s->base_offset;
    s->needs_sync = true;
    return scan_from(s, 0, index_interval);
}

/* Restores the in-memory state from the indexes and scans the rest. */
static int64_t scan_tail(struct segment *s, int32_t index_interval)
{
    int64_t pos = 0;
    if (s->oidx.n > 0)
        pos = index_position_at(&s->oidx, s->oidx.n - 1);
    if (s->tidx.n > 0) {
        s->max_ts = index_last_timestamp(&s->tidx);
        s->offset_of_max_ts = index_offset_at(&s->tidx, s->tidx.n - 1);
    } else {
        s->max_ts = -1;
        s->offset_of_max_ts = -1;
    }
    s->bytes_since_index = 0;
    s->next_offset = s->base_offset;
    return scan_from(s, pos, index_interval);
}

int64_t segment_load_tail(struct segment *s, int32_t index_interval)
{
    if (index_make_writable(&s->oidx) < 0 || index_make_writable(&s->tidx) < 0)
        return PLOG_ERR_IO;
    s->sealed = false;
    return scan_tail(s, index_interval);
}

void segment_load_sealed(struct segment *s, int64_t next_offset)
{
    s->next_offset = next_offset;
    if (s->tidx.n > 0) {
        s->max_ts = index_last_timestamp(&s->tidx);
        s->offset_of_max_ts = index_offset_at(&s->tidx, s->tidx.n - 1);
    }
    s->sealed = true;
}

int segment_append(struct segment *s, const uint8_t *buf, size_t len, int32_t index_interval,
                   int64_t now_ms)
{
    if (sio_pwrite_all(s->log_fd, buf, len, s->size) < 0) {
        /* Best effort: do not leave half a batch where the next append
         * (there will be none: the plog is read-only now) or a reader
         * could see it. */
        (void)sio_ftruncate(s->log_fd, s->size);
        return PLOG_ERR_IO;
    }
    if (s->size == 0)
        s->roll_base_ms = now_ms;
    s->needs_sync = true;
    int rc = PLOG_OK;
    size_t off = 0;
    while (off + BATCH_HEADER_SIZE <= len) {
        const uint8_t *b = buf + off;
        int64_t size = BATCH_LOG_OVERHEAD + (int64_t)batch_be32(b + 8);
        int64_t last = batch_be64(b) + batch_be32(b + 23);
        int64_t max_ts = batch_be64(b + BATCH_MAX_TS_OFFSET);
        if (rc == PLOG_OK)
            rc = index_batch(s, s->size + (int64_t)off, size, last, max_ts, index_interval);
        s->next_offset = last + 1;
        off += (size_t)size;
    }
    s->size += (int64_t)len;
    return rc;
}

int segment_read_header(const struct segment *s, int64_t pos, int64_t limit, struct batch_hdr *h)
{
    uint8_t hb[BATCH_HEADER_SIZE];
    if (limit - pos < BATCH_HEADER_SIZE)
        return PLOG_ERR_CORRUPT;
    ssize_t r = sio_pread_all(s->log_fd, hb, sizeof hb, pos);
    if (r < 0)
        return PLOG_ERR_IO;
    if (r != (ssize_t)sizeof hb)
        return PLOG_ERR_CORRUPT;
    int rc = batch_parse_header(hb, sizeof hb, limit - pos - BATCH_LOG_OVERHEAD, h);
    /* An old-format message inside our log is corruption, not a request
     * for an unsupported format. */
    return rc == PLOG_ERR_UNSUPPORTED ? PLOG_ERR_CORRUPT : rc;
}

int segment_find(const struct segment *s, int64_t offset, int64_t limit, int64_t *pos,
                 struct batch_hdr *h)
{
    long i = index_lookup(&s->oidx, offset);
    int64_t p = i >= 0 ? index_position_at(&s->oidx, (size_t)i) : 0;
    while (p < limit) {
        int rc = segment_read_header(s, p, limit, h);
        if (rc != PLOG_OK)
            return rc;
        if (batch_last_offset(h) >= offset) {
            *pos = p;
            return 1;
        }
        p += batch_size(h);
    }
    return 0;
}

int segment_seal(struct segment *s)
{
    if (s->sealed)
        return PLOG_OK;
    if (s->max_ts > index_last_timestamp(&s->tidx) &&
        index_append_time_final(&s->tidx, s->max_ts, s->offset_of_max_ts) < 0)
        return PLOG_ERR_IO;
    s->sealed = true;
    s->needs_sync = true;
    return PLOG_OK;
}

int segment_unseal(struct segment *s)
{
    if (index_make_writable(&s->oidx) < 0 || index_make_writable(&s->tidx) < 0)
        return PLOG_ERR_IO;
    s->sealed = false;
    return PLOG_OK;
}

int segment_sync(struct segment *s)
{
    if (sio_fsync(s->log_fd) < 0 || index_sync(&s->oidx) < 0 || index_sync(&s->tidx) < 0)
        return -1;
    return 0;
}

int segment_truncate(struct segment *s, int64_t offset, int32_t index_interval)
{
    int64_t pos;
    struct batch_hdr h;
    int rc = segment_find(s, offset, s->size, &pos, &h);
    if (rc < 0)
        return rc == PLOG_ERR_IO ? PLOG_ERR_IO : PLOG_ERR_CORRUPT;
    if (rc == 0) {
        /* Nothing at or past offset: only a compacted segment's gap
         * (cleaner.c) can lie there; the log now ends at offset. */
        if (offset < s->next_offset)
            s->next_offset = offset;
        return PLOG_OK;
    }
    if (segment_unseal(s) != PLOG_OK)
        return PLOG_ERR_IO;
    /* A key index file describes the segment as it was (keyindex.c). */
    char kp[4200];
    snprintf(kp, sizeof kp, "%s" KEYINDEX_SUFFIX, s->path);
    if (unlink(kp) < 0 && errno != ENOENT)
        return PLOG_ERR_IO;
    size_t n = s->oidx.n;
    while (n > 0 && index_position_at(&s->oidx, n - 1) >= pos)
        n--;
    size_t tn = s->tidx.n;
    while (tn > 0 && index_offset_at(&s->tidx, tn - 1) >= h.base_offset)
        tn--;
    if (index_truncate(&s->oidx, n) < 0 || index_truncate(&s->tidx, tn) < 0 ||
        sio_ftruncate(s->log_fd, pos) < 0)
        return PLOG_ERR_IO;
    s->size = pos;
    s->needs_sync = true;
    /* Re-derive next offset, max timestamp and the bytes since the last
     * index entry from what is left. */
    int64_t cut = scan_tail(s, index_interval);
    if (cut < 0)
        return PLOG_ERR_IO;
    /* After compaction the batches before the cut may end below it (a
     * gap): the log ends where the removed batch began, or at `offset`
     * when that lies in the gap before it. */
    int64_t end = h.base_offset < offset ? h.base_offset : offset;
    if (s->next_offset < end)
        s->next_offset = end;
    return PLOG_OK;
}

void segment_set_max_index_bytes(struct segment *s, size_t max_bytes)
{
    index_set_max_bytes(&s->oidx, max_bytes);
    index_set_max_bytes(&s->tidx, max_bytes);
}

int segment_delete_files(struct segment *s)
{
    static const char *exts[] = {".log", ".index", ".timeindex", KEYINDEX_SUFFIX};
    int rc = 0;
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
        char from[4096], to[4200];
        snprintf(from, sizeof from, "%s%s", s->path, exts[i]);
        snprintf(to, sizeof to, "%s.deleted", from);
        /* Rename first: a crash between the two steps leaves a *.deleted
         * file that the next open removes, never a half-deleted segment
         * that looks live. */
        if (rename(from, to) < 0) {
            if (errno != ENOENT)
                rc = -1;
            continue;
        }
        if (unlink(to) < 0)
            rc = -1;
    }
    return rc;
}

void segment_ref(struct segment *s)
{
    atomic_fetch_add(&s->refs, 1);
}

void segment_unref(struct segment *s)
{
    if (atomic_fetch_sub(&s->refs, 1) == 1)
        segment_free(s);
}
