/*
 * The key index of one partition (keyindex.h): hash of a record key (or
 * of a token of its "keys" header) -> offset, per segment.
 *
 * <base>.keyidx, one per sealed segment, little-endian, written whole to
 * <base>.keyidx.tmp, fsynced and renamed into place, never changed after:
 *
 *   offset  size  field
 *   0       8     magic "RNKEYIDX"
 *   8       4     version, 1
 *   12      4     entry size, 8
 *   16      8     base offset of the segment (the number in the name)
 *   24      8     size in bytes of the .log the entries were built from
 *   32      8     inode number of that .log
 *   40      8     N, the number of entries
 *   48      4     CRC-32C of the N entries (bytes 56..end)
 *   52      4     CRC-32C of bytes 0..51
 *   56      8*N   entries: u64 (hash << 32 | offset - base offset),
 *                 sorted ascending, so by hash and then by offset
 *
 * A file is used only when all of it checks out against the segment it
 * sits beside: magic, version, entry size, base, the .log's size and
 * inode, N against the file size, both CRCs.  The inode is what tells a
 * segment the cleaner rewrote (a new file renamed over the old name, of
 * whatever size) from the one the index was built from; the size catches
 * truncation.  Anything else (no file, a torn or stale one) makes the
 * segment "missing": lookups scan it and keyindex_rebuild_one writes a
 * new file.  A file whose segment is gone is an orphan that the next
 * plog_open removes, like an orphan .index.
 *
 * Entries of the active segment are kept in memory in the same u64 form,
 * appended in offset order as keyindex_sync reads the new batches, and
 * sorted in runs of KI_RUN entries as each run fills, so a lookup binary
 * searches the full runs and reads only the last, partial run entry by
 * entry.  When the segment is sealed the runs are merged and written as
 * its file.  A record contributes one entry per distinct key it carries;
 * control batches none.
 *
 * Why 32-bit hashes and no timestamps: an entry is 8 bytes, so the index
 * of a segment of 100-byte records is 8% of its size, in memory as on
 * disk.  A hash collision only costs reading a record that then fails the
 * key comparison (with 10^8 entries, a lookup meets one about every 40th
 * time).  A --since lookup skips what is too old with the segment's time
 * index instead (every record up to a time entry below `since` is too
 * old), and the exact comparison is done on the record read anyway.
 *
 * Locks, outermost first: `work_mu` makes keyindex_sync, keyindex_reset
 * and keyindex_sweep run one at a time; only they add or remove the
 * index's segments (`segs`), so they may read that list without `mu`.
 * The plog's `mu` may be taken under work_mu, never under `mu`; `mu`
 * guards the segments' state and entries and is held for in-memory work
 * only, never across file I/O.  keyindex_rebuild_one runs without
 * work_mu (a rebuild does not hold up the active segment's indexing)
 * and finds its segment again by id when done; keyindex_find takes the
 * plog's mutex and `mu` in turn, never both.
 */
#include "storage/keyindex.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/crc32c.h"
#include "common/rlog.h"
#include "storage/fileio.h"
#include "storage/index.h"
#include "storage/plog_int.h"
#include "storage/segment.h"

#define KI_MAGIC "RNKEYIDX"
#define KI_VERSION 1
#define KI_HEADER 56
#define KI_ENTRY 8
/* Entries sorted at a time while the active segment grows. */
#define KI_RUN 65536
/* Bytes read at once when scanning a segment, and when verifying hits. */
#define KI_SCAN_CHUNK (1 << 20)
#define KI_VERIFY_CHUNK (16 << 10)
/* keyindex_sync publishes its entries every this many bytes of log. */
#define KI_SYNC_STEP (4 << 20)

enum kseg_state {
    KS_ACTIVE,  /* not sealed when first seen: entries in memory, growing */
    KS_MEMORY,  /* sealed, sorted in memory (no file, or not yet) */
    KS_FILE,    /* sealed, entries in the mapped file */
    KS_MISSING, /* sealed, no valid file: lookups scan it */
};

struct kseg {
    uint64_t id;
    struct segment *seg; /* a reference */
    int64_t base;
    int64_t size;      /* log bytes indexed (KS_ACTIVE: so far; else all of it) */
    int64_t seen_size; /* the segment's size at the last sync (stats) */
    enum kseg_state state;
    uint64_t *e; /* KS_ACTIVE, KS_MEMORY: entries, host order */
    size_t n, cap;
    size_t sorted;         /* KS_ACTIVE: [0, sorted) are sorted runs of KI_RUN */
    const uint64_t *map_e; /* KS_FILE: entries in the mapping, little-endian */
    void *map;
    size_t map_len;
    bool tried_file; /* KS_MISSING: the file was looked at */
    bool rebuilding; /* KS_MISSING: keyindex_rebuild_one works on it */
    bool failed;     /* its log could not be read: no more attempts */
    const char *why; /* KS_MISSING: what was wrong with the file */
};

struct keyindex {
    pthread_mutex_t work_mu;
    pthread_mutex_t mu;
    struct kseg **segs; /* sorted by base offset */
    int n, cap;
    uint64_t trunc_gen; /* the plog's when segs were last reconciled */
    bool synced;        /* reconciled at least once since new / reset */
    bool swept;         /* keyindex_sweep looked for leftover files */
    uint64_t next_id;
};

uint32_t keyindex_hash(const void *key, size_t len)
{
    const uint8_t *p = key;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return (uint32_t)(h ^ (h >> 32));
}

/* ---- growable arrays ---- */

struct u64vec {
    uint64_t *v;
    size_t n, cap;
};

static int u64_push(struct u64vec *a, uint64_t x)
{
    if (a->n == a->cap) {
        size_t ncap = a->cap ? a->cap * 2 : 1024;
        uint64_t *nv = realloc(a->v, ncap * sizeof *nv);
        if (!nv)
            return -1;
        a->v = nv;
        a->cap = ncap;
    }
    a->v[a->n++] = x;
    return 0;
}

struct i64vec {
    int64_t *v;
    size_t n, cap;
};

static int i64_push(struct i64vec *a, int64_t x)
{
    if (a->n == a->cap) {
        size_t ncap = a->cap ? a->cap * 2 : 64;
        int64_t *nv = realloc(a->v, ncap * sizeof *nv);
        if (!nv)
            return -1;
        a->v = nv;
        a->cap = ncap;
    }
    a->v[a->n++] = x;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void merge(const uint64_t *a, size_t na, const uint64_t *b, size_t nb, uint64_t *out)
{
    size_t i = 0, j = 0, k = 0;
    while (i < na && j < nb)
        out[k++] = b[j] < a[i] ? b[j++] : a[i++];
    while (i < na)
        out[k++] = a[i++];
    while (j < nb)
        out[k++] = b[j++];
}

/* Sorts a[0..n); a[0..presorted) is already sorted runs of KI_RUN. */
static void sort_entries(uint64_t *a, size_t n, size_t presorted)
{
    for (size_t i = presorted; i < n; i += KI_RUN)
        qsort(a + i, n - i < KI_RUN ? n - i : KI_RUN, sizeof *a, cmp_u64);
    if (n <= KI_RUN)
        return;
    uint64_t *tmp = malloc(n * sizeof *a);
    if (!tmp) {
        qsort(a, n, sizeof *a, cmp_u64);
        return;
    }
    uint64_t *src = a, *dst = tmp;
    for (size_t w = KI_RUN; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            merge(src + lo, mid - lo, src + mid, hi - mid, dst + lo);
        }
        uint64_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != a)
        memcpy(a, src, n * sizeof *a);
    free(tmp);
}

/* ---- what a record contributes ---- */

static bool is_keys_header(const struct batch_header_kv *kv)
{
    return kv->key_len == 4 && !strncasecmp((const char *)kv->key, "keys", 4) && kv->value;
}

/* Calls fn for each space-separated token of a "keys" header value. */
#define FOR_EACH_TOKEN(v, vlen, tok, tlen, body)                                                   \
    for (int32_t i_ = 0; i_ < (vlen);) {                                                           \
        while (i_ < (vlen) && (v)[i_] == ' ')                                                      \
            i_++;                                                                                  \
        int32_t s_ = i_;                                                                           \
        while (i_ < (vlen) && (v)[i_] != ' ')                                                      \
            i_++;                                                                                  \
        if (i_ > s_) {                                                                             \
            const uint8_t *tok = (v) + s_;                                                         \
            size_t tlen = (size_t)(i_ - s_);                                                       \
            body                                                                                   \
        }                                                                                          \
    }

bool keyindex_record_has_key(const struct batch_record *r, const void *key, size_t len)
{
    if (r->key && (size_t)r->key_len == len && !memcmp(r->key, key, len))
        return true;
    const uint8_t *p = r->headers;
    struct batch_header_kv kv;
    while (batch_record_header(&p, r->headers_end, &kv) == 1) {
        if (!is_keys_header(&kv))
            continue;
        FOR_EACH_TOKEN(kv.value, kv.value_len, tok, tlen, {
            if (tlen == len && !memcmp(tok, key, len))
                return true;
        })
    }
    return false;
}

/* Adds the record's entries, each distinct key once. */
static int record_entries(const struct batch_record *r, uint32_t rel, struct u64vec *out)
{
    size_t first = out->n;
    if (r->key && u64_push(out, (uint64_t)keyindex_hash(r->key, (size_t)r->key_len) << 32 | rel))
        return -1;
    const uint8_t *p = r->headers;
    struct batch_header_kv kv;
    while (batch_record_header(&p, r->headers_end, &kv) == 1) {
        if (!is_keys_header(&kv))
            continue;
        FOR_EACH_TOKEN(kv.value, kv.value_len, tok, tlen, {
            uint64_t e = (uint64_t)keyindex_hash(tok, tlen) << 32 | rel;
            bool dup = false;
            /* A duplicate only costs space (lookups drop repeated
             * offsets), so look back a little, not quadratically. */
            for (size_t j = out->n; j > first && j + 16 > out->n && !dup; j--)
                dup = out->v[j - 1] == e;
            if (!dup && u64_push(out, e))
                return -1;
        })
    }
    return 0;
}

static int64_t record_timestamp(const struct batch_hdr *h, const struct batch_record *r)
{
    return h->attributes & BATCH_ATTR_LOG_APPEND_TIME ? h->max_timestamp
                                                      : h->base_timestamp + r->timestamp_delta;
}

/* ---- reading a segment ---- */

struct reader {
    const struct segment *s;
    size_t chunk;
    uint8_t *buf;
    size_t cap;
    int64_t start; /* file position of buf[0] */
    size_t len;    /* bytes valid in buf */
};

static int reader_fill(struct reader *r, int64_t pos, int64_t limit, int64_t need)
{
    int64_t want = (int64_t)r->chunk > need ? (int64_t)r->chunk : need;
    if (want > limit - pos)
        want = limit - pos;
    if ((size_t)want > r->cap) {
        uint8_t *nb = realloc(r->buf, (size_t)want);
        if (!nb)
            return PLOG_ERR_IO;
        r->buf = nb;
        r->cap = (size_t)want;
    }
    ssize_t got = sio_pread_all(r->s->log_fd, r->buf, (size_t)want, pos);
    if (got < 0)
        return PLOG_ERR_IO;
    r->start = pos;
    r->len = (size_t)got;
    return got < need ? PLOG_ERR_CORRUPT : PLOG_OK;
}

/* Makes the whole batch at pos (< limit) readable at *p, header in h. */
static int reader_batch(struct reader *r, int64_t pos, int64_t limit, const uint8_t **p,
                        struct batch_hdr *h)
{
    if (limit - pos < BATCH_HEADER_SIZE)
        return PLOG_ERR_CORRUPT;
    int rc;
    if (pos < r->start || pos + BATCH_HEADER_SIZE > r->start + (int64_t)r->len) {
        if ((rc = reader_fill(r, pos, limit, BATCH_HEADER_SIZE)) != PLOG_OK)
            return rc;
    }
    rc = batch_parse_header(r->buf + (pos - r->start), BATCH_HEADER_SIZE,
                            limit - pos - BATCH_LOG_OVERHEAD, h);
    if (rc != PLOG_OK)
        return rc == PLOG_ERR_UNSUPPORTED ? PLOG_ERR_CORRUPT : rc;
    if (pos + batch_size(h) > r->start + (int64_t)r->len &&
        (rc = reader_fill(r, pos, limit, batch_size(h))) != PLOG_OK)
        return rc;
    *p = r->buf + (pos - r->start);
    return PLOG_OK;
}

/*
 * Adds the entries of whole batches from `pos` while pos < soft_end (and
 * < limit).  A batch whose records cannot be decoded is skipped (counted
 * in *skipped); one whose header is bad ends the range with an error.
 * Returns the position reached, or a PLOG_ERR.
 */
static int64_t index_range(struct reader *r, int64_t base, int64_t pos, int64_t limit,
                           int64_t soft_end, struct u64vec *out, int64_t *skipped)
{
    while (pos < limit && pos < soft_end) {
        const uint8_t *b;
        struct batch_hdr h;
        int rc = reader_batch(r, pos, limit, &b, &h);
        if (rc != PLOG_OK)
            return rc;
        if (!(h.attributes & BATCH_ATTR_CONTROL)) {
            struct batch_records rs;
            struct batch_record rec;
            size_t before = out->n;
            rc = batch_records_begin(b, &h, &rs);
            while (rc == PLOG_OK && (rc = batch_records_next(&rs, &rec)) == 1) {
                int64_t rel = h.base_offset + rec.offset_delta - base;
                if (rel < 0 || rel > UINT32_MAX)
                    rc = PLOG_ERR_CORRUPT;
                else if (record_entries(&rec, (uint32_t)rel, out) < 0) {
                    batch_records_end(&rs);
                    return PLOG_ERR_IO; /* out of memory */
                } else
                    rc = PLOG_OK;
            }
            batch_records_end(&rs);
            if (rc < 0) {
                out->n = before;
                (*skipped)++;
            }
        }
        pos += batch_size(&h);
    }
    return pos;
}

/* ---- files ---- */

static void put_le32(uint8_t *p, uint32_t v)
{
    v = htole32(v);
    memcpy(p, &v, 4);
}
static void put_le64(uint8_t *p, uint64_t v)
{
    v = htole64(v);
    memcpy(p, &v, 8);
}
static uint32_t get_le32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return le32toh(v);
}
static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return le64toh(v);
}

static void file_name(char *buf, size_t len, const struct segment *s, const char *tail)
{
    snprintf(buf, len, "%s" KEYINDEX_SUFFIX "%s", s->path, tail);
}

/* Writes the sorted entries of s (built from `size` bytes of its log) as
 * its .keyidx.  0, or -1 with errno. */
static int write_file(const struct segment *s, int64_t size, const uint64_t *e, size_t n)
{
    struct stat st;
    if (fstat(s->log_fd, &st) < 0)
        return -1;
    char tmp[4200], path[4200];
    file_name(tmp, sizeof tmp, s, ".tmp");
    file_name(path, sizeof path, s, "");
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    enum { BUF = 8192 };
    uint8_t *buf = malloc(BUF * KI_ENTRY);
    uint32_t crc = 0;
    int rc = buf ? 0 : -1;
    int64_t off = KI_HEADER;
    for (size_t i = 0; rc == 0 && i < n; i += BUF) {
        size_t m = n - i < BUF ? n - i : BUF;
        for (size_t j = 0; j < m; j++)
            put_le64(buf + j * KI_ENTRY, e[i + j]);
        crc = crc32c(crc, buf, m * KI_ENTRY);
        rc = sio_pwrite_all(fd, buf, m * KI_ENTRY, off);
        off += (int64_t)(m * KI_ENTRY);
    }
    free(buf);
    uint8_t h[KI_HEADER];
    memcpy(h, KI_MAGIC, 8);
    put_le32(h + 8, KI_VERSION);
    put_le32(h + 12, KI_ENTRY);
    put_le64(h + 16, (uint64_t)s->base_offset);
    put_le64(h + 24, (uint64_t)size);
    put_le64(h + 32, (uint64_t)st.st_ino);
    put_le64(h + 40, n);
    put_le32(h + 48, crc);
    put_le32(h + 52, crc32c(0, h, 52));
    if (rc == 0)
        rc = sio_pwrite_all(fd, h, sizeof h, 0);
    if (rc == 0)
        rc = sio_fsync(fd);
    int e2 = errno;
    if (close(fd) < 0 && rc == 0) {
        rc = -1;
        e2 = errno;
    }
    if (rc == 0 && rename(tmp, path) < 0) {
        rc = -1;
        e2 = errno;
    }
    if (rc < 0) {
        unlink(tmp);
        errno = e2;
    }
    return rc;
}

int keyindex_file_open(const char *path, struct keyindex_file *f, const char **why)
{
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *why = errno == ENOENT ? "no file" : "file unreadable";
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        close(fd);
        *why = "file unreadable";
        return -1;
    }
    if (st.st_size < KI_HEADER) {
        close(fd);
        *why = "file shorter than its header";
        return -1;
    }
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED) {
        *why = "file cannot be mapped";
        return -1;
    }
    const uint8_t *h = m;
    uint64_t n = get_le64(h + 40);
    *why = NULL;
    if (memcmp(h, KI_MAGIC, 8) || get_le32(h + 8) != KI_VERSION || get_le32(h + 12) != KI_ENTRY)
        *why = "not a version 1 key index file";
    else if (get_le32(h + 52) != crc32c(0, h, 52))
        *why = "file header checksum mismatch";
    else if (n > ((uint64_t)st.st_size - KI_HEADER) / KI_ENTRY ||
             KI_HEADER + n * KI_ENTRY != (uint64_t)st.st_size)
        *why = "file torn: its size does not match its entry count";
    else if (crc32c(0, h + KI_HEADER, n * KI_ENTRY) != get_le32(h + 48))
        *why = "file entries checksum mismatch";
    if (*why) {
        munmap(m, (size_t)st.st_size);
        return -1;
    }
    f->map = m;
    f->map_len = (size_t)st.st_size;
    f->base_offset = (int64_t)get_le64(h + 16);
    f->log_size = (int64_t)get_le64(h + 24);
    f->log_inode = get_le64(h + 32);
    f->entries = (const uint64_t *)(h + KI_HEADER);
    f->n = (size_t)n;
    return 0;
}

void keyindex_file_close(struct keyindex_file *f)
{
    if (f->map)
        munmap(f->map, f->map_len);
    memset(f, 0, sizeof *f);
}

uint64_t keyindex_file_entry(const struct keyindex_file *f, size_t i)
{
    return le64toh(f->entries[i]);
}

/* Maps s's .keyidx and checks it, then against the segment (`size`
 * bytes of log).  0 with *f, or -1 with *why ("no file": none). */
static int load_file(const struct segment *s, int64_t size, struct keyindex_file *f,
                     const char **why)
{
    char path[4200];
    file_name(path, sizeof path, s, "");
    if (keyindex_file_open(path, f, why) < 0)
        return -1;
    struct stat lst;
    if (fstat(s->log_fd, &lst) < 0)
        *why = "segment unreadable";
    else if (f->base_offset != s->base_offset)
        *why = "file made for another segment";
    else if (f->log_size != size || f->log_inode != (uint64_t)lst.st_ino)
        *why = "file made for an earlier version of the segment";
    if (*why) {
        keyindex_file_close(f);
        return -1;
    }
    return 0;
}

/* ---- the plog's segments, seen under its mutex ---- */

struct view {
    struct segment *s; /* a reference */
    int64_t base, size;
    bool sealed;
    /* For lookups: no record below min_offset can match (log start,
     * time index); since_pos is a batch position at or before it. */
    int64_t min_offset;
    int64_t since_pos;
    bool skip; /* nothing in it can match */
};

struct snap {
    struct view *v;
    int n;
    uint64_t trunc_gen;
};

static int snap_take(struct plog *l, int64_t since_ms, struct snap *sn)
{
    pthread_mutex_lock(&l->mu);
    sn->v = calloc((size_t)l->nsegs, sizeof *sn->v);
    if (!sn->v) {
        pthread_mutex_unlock(&l->mu);
        return -1;
    }
    sn->n = l->nsegs;
    sn->trunc_gen = l->trunc_gen;
    for (int i = 0; i < l->nsegs; i++) {
        struct segment *s = l->segs[i];
        struct view *v = &sn->v[i];
        segment_ref(s);
        v->s = s;
        v->base = s->base_offset;
        v->size = s->size;
        v->sealed = s->sealed;
        v->min_offset = l->log_start > s->base_offset ? l->log_start : s->base_offset;
        v->skip = s->next_offset <= l->log_start || s->size == 0;
        if (since_ms >= 0) {
            if (s->max_ts < since_ms)
                v->skip = true;
            /* Every record up to a time entry's offset is no newer than
             * its timestamp (time index rule, segment.c). */
            long t = index_lookup_time_before(&s->tidx, since_ms);
            if (t >= 0 && index_offset_at(&s->tidx, (size_t)t) + 1 > v->min_offset)
                v->min_offset = index_offset_at(&s->tidx, (size_t)t) + 1;
        }
        long ix = index_lookup(&s->oidx, v->min_offset);
        v->since_pos = ix >= 0 ? index_position_at(&s->oidx, (size_t)ix) : 0;
    }
    pthread_mutex_unlock(&l->mu);
    return 0;
}

static void snap_release(struct snap *sn)
{
    for (int i = 0; i < sn->n; i++)
        segment_unref(sn->v[i].s);
    free(sn->v);
    sn->v = NULL;
    sn->n = 0;
}

/* ---- the index's segments ---- */

struct keyindex *keyindex_new(void)
{
    struct keyindex *k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    pthread_mutex_init(&k->work_mu, NULL);
    pthread_mutex_init(&k->mu, NULL);
    return k;
}

static void kseg_free(struct kseg *ks)
{
    if (ks->map)
        munmap(ks->map, ks->map_len);
    free(ks->e);
    segment_unref(ks->seg);
    free(ks);
}

/* `fresh`: the segment appeared since the last sync (a roll, a
 * compaction's output), so no file of it can be valid: it is indexed
 * like the active segment, from its first batch, sealed or not.  At the
 * first sync sealed segments look for their files instead. */
static struct kseg *kseg_new(struct keyindex *k, const struct view *v, bool fresh)
{
    struct kseg *ks = calloc(1, sizeof *ks);
    if (!ks)
        return NULL;
    ks->id = ++k->next_id;
    segment_ref(v->s);
    ks->seg = v->s;
    ks->base = v->base;
    if (v->sealed && !fresh) {
        ks->state = KS_MISSING;
        ks->size = v->size;
    } else {
        ks->state = KS_ACTIVE;
        ks->size = 0;
    }
    return ks;
}

/* The index's entry for the segment the view shows, or NULL.  Under mu. */
static struct kseg *kseg_for(struct keyindex *k, const struct segment *s)
{
    int lo = 0, hi = k->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if (k->segs[mid]->base < s->base_offset)
            lo = mid + 1;
        else if (k->segs[mid]->base > s->base_offset)
            hi = mid - 1;
        else
            return k->segs[mid]->seg == s ? k->segs[mid] : NULL;
    }
    return NULL;
}

static struct kseg *kseg_by_id(struct keyindex *k, uint64_t id)
{
    for (int i = 0; i < k->n; i++)
        if (k->segs[i]->id == id)
            return k->segs[i];
    return NULL;
}

/*
 * Makes segs follow the snapshot: one entry per segment, same order;
 * entries of segments gone are dropped, new segments get one.  After a
 * truncation (trunc_gen moved) an entry survives only if its segment is
 * still sealed at the size it was indexed at.  Under work_mu and mu.
 */
static int reconcile(struct keyindex *k, const struct snap *sn)
{
    struct kseg **nsegs = calloc((size_t)(sn->n ? sn->n : 1), sizeof *nsegs);
    if (!nsegs)
        return -1;
    bool truncated = sn->trunc_gen != k->trunc_gen;
    int j = 0;
    for (int i = 0; i < sn->n; i++) {
        const struct view *v = &sn->v[i];
        while (j < k->n && k->segs[j]->base < v->base)
            kseg_free(k->segs[j++]);
        struct kseg *ks = NULL;
        if (j < k->n && k->segs[j]->seg == v->s) {
            ks = k->segs[j++];
            if (truncated && (ks->state == KS_ACTIVE || !v->sealed || v->size != ks->size)) {
                kseg_free(ks);
                ks = NULL;
            }
        } else if (j < k->n && k->segs[j]->base == v->base) {
            kseg_free(k->segs[j++]); /* replaced (compaction) */
        }
        if (!ks && !(ks = kseg_new(k, v, k->synced))) {
            for (int m = 0; m < i; m++)
                if (nsegs[m])
                    kseg_free(nsegs[m]);
            /* What is left of the old list is dropped too: the next sync
             * starts over. */
            while (j < k->n)
                kseg_free(k->segs[j++]);
            free(nsegs);
            free(k->segs);
            k->segs = NULL;
            k->n = k->cap = 0;
            k->synced = false;
            return -1;
        }
        ks->seen_size = v->size;
        nsegs[i] = ks;
    }
    while (j < k->n)
        kseg_free(k->segs[j++]);
    free(k->segs);
    k->segs = nsegs;
    k->n = k->cap = sn->n;
    k->trunc_gen = sn->trunc_gen;
    k->synced = true;
    return 0;
}

/* Appends new entries of an active segment.  Under mu. */
static int active_append(struct kseg *ks, const struct u64vec *add, int64_t new_size)
{
    if (add->n == 0) {
        ks->size = new_size;
        return 0;
    }
    if (ks->n + add->n > ks->cap) {
        size_t ncap = ks->cap ? ks->cap : 4096;
        while (ncap < ks->n + add->n)
            ncap *= 2;
        uint64_t *ne = realloc(ks->e, ncap * sizeof *ne);
        if (!ne)
            return -1;
        ks->e = ne;
        ks->cap = ncap;
    }
    memcpy(ks->e + ks->n, add->v, add->n * sizeof *add->v);
    ks->n += add->n;
    while (ks->n - ks->sorted >= KI_RUN) {
        qsort(ks->e + ks->sorted, KI_RUN, sizeof *ks->e, cmp_u64);
        ks->sorted += KI_RUN;
    }
    ks->size = new_size;
    return 0;
}

/* Indexes the active segment from ks->size up to v->size.  Under
 * work_mu; takes mu to publish.  Bytes indexed, or a PLOG_ERR. */
static int64_t catch_up(struct keyindex *k, struct plog *l, struct kseg *ks, const struct view *v)
{
    struct reader r = {.s = ks->seg, .chunk = KI_SCAN_CHUNK};
    struct u64vec add = {0};
    int64_t pos = ks->size, start = pos, skipped = 0;
    int64_t rc = 0;
    while (pos < v->size) {
        add.n = 0;
        int64_t np = index_range(&r, ks->base, pos, v->size, pos + KI_SYNC_STEP, &add, &skipped);
        if (np < 0) {
            rc = np;
            break;
        }
        pthread_mutex_lock(&k->mu);
        int arc = active_append(ks, &add, np);
        pthread_mutex_unlock(&k->mu);
        if (arc < 0) {
            rc = PLOG_ERR_IO;
            break;
        }
        pos = np;
    }
    free(add.v);
    free(r.buf);
    if (skipped)
        rlog_warn("partition %s: key index: %lld batch(es) of segment %020lld have undecodable "
                  "records; their keys are not indexed",
                  l->dir, (long long)skipped, (long long)ks->base);
    if (rc < 0) {
        rlog_error("partition %s: key index: cannot read segment %020lld at position %lld; "
                   "lookups scan it",
                   l->dir, (long long)ks->base, (long long)pos);
        pthread_mutex_lock(&k->mu);
        ks->failed = true;
        pthread_mutex_unlock(&k->mu);
        return rc;
    }
    return pos - start;
}

/* The active segment was sealed and is fully indexed: sort its entries
 * and write its file.  Under work_mu. */
static void finish_sealed(struct keyindex *k, struct plog *l, struct kseg *ks)
{
    /* Only this thread changes ks->e now, so it can be read without mu. */
    uint64_t *sorted = malloc((ks->n ? ks->n : 1) * sizeof *sorted);
    if (!sorted)
        return; /* stays in memory unsorted runs; tried again next sync */
    if (ks->n)
        memcpy(sorted, ks->e, ks->n * sizeof *sorted);
    sort_entries(sorted, ks->n, ks->sorted);
    pthread_mutex_lock(&k->mu);
    free(ks->e);
    ks->e = sorted;
    ks->cap = ks->n;
    ks->sorted = ks->n;
    ks->state = KS_MEMORY;
    pthread_mutex_unlock(&k->mu);

    struct keyindex_file f;
    const char *why;
    if (write_file(ks->seg, ks->size, ks->e, ks->n) < 0) {
        rlog_warn("partition %s: key index: writing the file of segment %020lld: %s (kept in "
                  "memory)",
                  l->dir, (long long)ks->base, strerror(errno));
        return;
    }
    if (load_file(ks->seg, ks->size, &f, &why) < 0) {
        rlog_warn("partition %s: key index: the file just written for segment %020lld: %s "
                  "(kept in memory)",
                  l->dir, (long long)ks->base, why);
        return;
    }
    pthread_mutex_lock(&k->mu);
    free(ks->e);
    ks->e = NULL;
    ks->n = ks->cap = ks->sorted = 0;
    ks->map = f.map;
    ks->map_len = f.map_len;
    ks->map_e = f.entries;
    ks->n = f.n;
    ks->state = KS_FILE;
    pthread_mutex_unlock(&k->mu);
}

/* True when the log has the same segments as the index and nothing was
 * appended since the last sync: an idle partition costs one look under
 * the plog's mutex, no allocation.  Under work_mu (segs cannot change). */
static bool unchanged(struct keyindex *k, struct plog *l)
{
    if (!k->synced || k->n == 0)
        return false;
    pthread_mutex_lock(&k->mu);
    const struct kseg *last = k->segs[k->n - 1];
    bool active = last->state == KS_ACTIVE;
    int64_t size = last->size;
    pthread_mutex_unlock(&k->mu);
    if (!active)
        return false;
    pthread_mutex_lock(&l->mu);
    bool same =
        l->nsegs == k->n && l->trunc_gen == k->trunc_gen && l->segs[l->nsegs - 1]->size == size;
    for (int i = 0; same && i < k->n; i++)
        same = l->segs[i] == k->segs[i]->seg;
    pthread_mutex_unlock(&l->mu);
    return same;
}

int64_t keyindex_sync(struct keyindex *k, struct plog *l)
{
    pthread_mutex_lock(&k->work_mu);
    if (unchanged(k, l)) {
        pthread_mutex_unlock(&k->work_mu);
        return 0;
    }
    struct snap sn;
    if (snap_take(l, -1, &sn) < 0) {
        pthread_mutex_unlock(&k->work_mu);
        return PLOG_ERR_IO;
    }
    pthread_mutex_lock(&k->mu);
    int rc = reconcile(k, &sn);
    pthread_mutex_unlock(&k->mu);
    int64_t indexed = 0;
    if (rc < 0) {
        indexed = PLOG_ERR_IO;
        goto out;
    }
    /* segs matches sn.v one to one now; only this thread (work_mu) can
     * change that, so the pointers stay valid without mu. */
    for (int i = 0; i < k->n; i++) {
        struct kseg *ks = k->segs[i];
        const struct view *v = &sn.v[i];
        pthread_mutex_lock(&k->mu);
        bool try_file = ks->state == KS_MISSING && !ks->tried_file && !ks->rebuilding;
        bool grow = ks->state == KS_ACTIVE && !ks->failed && ks->size < v->size;
        /* A file beside a segment that is still written to is stale (it
         * was sealed once, then a crash lost its successor); it must not
         * be taken for this segment's later. */
        bool unlink_stale = ks->state == KS_ACTIVE && !ks->tried_file;
        ks->tried_file |= unlink_stale;
        pthread_mutex_unlock(&k->mu);
        if (unlink_stale) {
            char p[4200];
            file_name(p, sizeof p, ks->seg, "");
            unlink(p);
        }
        if (try_file) {
            struct keyindex_file f;
            const char *why;
            int lrc = load_file(ks->seg, ks->size, &f, &why);
            pthread_mutex_lock(&k->mu);
            ks->tried_file = true;
            if (lrc == 0) {
                ks->map = f.map;
                ks->map_len = f.map_len;
                ks->map_e = f.entries;
                ks->n = f.n;
                ks->state = KS_FILE;
            } else {
                ks->why = why;
            }
            pthread_mutex_unlock(&k->mu);
        }
        if (grow) {
            int64_t got = catch_up(k, l, ks, v);
            if (got > 0)
                indexed += got;
        }
        pthread_mutex_lock(&k->mu);
        bool done = ks->state == KS_ACTIVE && v->sealed && ks->size == v->size;
        if (ks->state == KS_ACTIVE && v->sealed && ks->failed) {
            /* A bad batch stopped it: lookups scan it from now on. */
            ks->state = KS_MISSING;
            ks->size = v->size;
            ks->tried_file = true;
            ks->why = "log unreadable";
            free(ks->e);
            ks->e = NULL;
            ks->n = ks->cap = ks->sorted = 0;
        }
        pthread_mutex_unlock(&k->mu);
        if (done)
            finish_sealed(k, l, ks);
    }
out:
    snap_release(&sn);
    pthread_mutex_unlock(&k->work_mu);
    return indexed;
}

int keyindex_rebuild_one(struct keyindex *k, struct plog *l)
{
    pthread_mutex_lock(&k->mu);
    struct kseg *ks = NULL;
    for (int i = 0; i < k->n && !ks; i++)
        if (k->segs[i]->state == KS_MISSING && k->segs[i]->tried_file && !k->segs[i]->rebuilding &&
            !k->segs[i]->failed)
            ks = k->segs[i];
    if (!ks) {
        pthread_mutex_unlock(&k->mu);
        return 0;
    }
    ks->rebuilding = true;
    uint64_t id = ks->id;
    struct segment *s = ks->seg;
    segment_ref(s);
    int64_t base = ks->base, size = ks->size;
    const char *why = ks->why ? ks->why : "no file";
    pthread_mutex_unlock(&k->mu);

    int64_t t0 = clock_mono_ms();
    struct reader r = {.s = s, .chunk = KI_SCAN_CHUNK};
    struct u64vec e = {0};
    int64_t skipped = 0;
    int64_t end = index_range(&r, base, 0, size, INT64_MAX, &e, &skipped);
    free(r.buf);
    int rc = 1;
    struct keyindex_file f = {0};
    bool mapped = false;
    if (end != size) {
        rlog_error("partition %s: key index: cannot read segment %020lld to rebuild its index; "
                   "lookups scan it",
                   l->dir, (long long)base);
        rc = end < 0 && end != PLOG_ERR_IO ? PLOG_ERR_CORRUPT : PLOG_ERR_IO;
    } else {
        sort_entries(e.v, e.n, 0);
        const char *bad;
        if (write_file(s, size, e.v, e.n) < 0)
            rlog_warn("partition %s: key index: writing the file of segment %020lld: %s (kept "
                      "in memory)",
                      l->dir, (long long)base, strerror(errno));
        else if (load_file(s, size, &f, &bad) < 0)
            rlog_warn("partition %s: key index: the file just written for segment %020lld: %s",
                      l->dir, (long long)base, bad);
        else
            mapped = true;
        /* A damaged or stale file is worth a line; a segment that never
         * had one (key.index just turned on, or rolled before the first
         * sync) is routine. */
        if (strcmp(why, "no file"))
            rlog_info("partition %s: key index of segment %020lld rebuilt (%s): %zu keys in "
                      "%lld ms",
                      l->dir, (long long)base, why, e.n, (long long)(clock_mono_ms() - t0));
        else
            rlog_debug("partition %s: key index of segment %020lld built: %zu keys in %lld ms",
                       l->dir, (long long)base, e.n, (long long)(clock_mono_ms() - t0));
    }

    pthread_mutex_lock(&k->mu);
    struct kseg *cur = kseg_by_id(k, id);
    bool installed = false;
    if (cur && cur->state == KS_MISSING) {
        cur->rebuilding = false;
        if (rc < 0) {
            cur->failed = true;
        } else if (mapped) {
            cur->map = f.map;
            cur->map_len = f.map_len;
            cur->map_e = f.entries;
            cur->n = f.n;
            cur->state = KS_FILE;
            installed = true;
        } else {
            cur->e = e.v;
            cur->n = cur->cap = cur->sorted = e.n;
            e.v = NULL;
            cur->state = KS_MEMORY;
            installed = true;
        }
    }
    bool base_known = false;
    for (int i = 0; i < k->n && !base_known; i++)
        base_known = k->segs[i]->base == base;
    pthread_mutex_unlock(&k->mu);
    if (!installed && mapped) {
        munmap(f.map, f.map_len);
        /* The segment went meanwhile (retention): do not leave an orphan. */
        if (!base_known) {
            char p[4200];
            file_name(p, sizeof p, s, "");
            unlink(p);
        }
    }
    free(e.v);
    segment_unref(s);
    return rc;
}

void keyindex_reset(struct keyindex *k, bool delete_files)
{
    pthread_mutex_lock(&k->work_mu);
    pthread_mutex_lock(&k->mu);
    struct kseg **segs = k->segs;
    int n = k->n;
    k->segs = NULL;
    k->n = k->cap = 0;
    k->synced = false;
    k->swept |= delete_files;
    pthread_mutex_unlock(&k->mu);
    /* Lookups copy what they need under mu: nothing refers to these now. */
    for (int i = 0; i < n; i++) {
        if (delete_files) {
            char p[4200];
            file_name(p, sizeof p, segs[i]->seg, "");
            unlink(p);
        }
        kseg_free(segs[i]);
    }
    free(segs);
    pthread_mutex_unlock(&k->work_mu);
}

void keyindex_sweep(struct keyindex *k, struct plog *l)
{
    pthread_mutex_lock(&k->work_mu);
    if (k->swept || k->synced) {
        pthread_mutex_unlock(&k->work_mu);
        return;
    }
    k->swept = true;
    struct snap sn;
    if (snap_take(l, -1, &sn) < 0) {
        pthread_mutex_unlock(&k->work_mu);
        return;
    }
    /* Files are written for every sealed segment while indexing is on,
     * so the oldest or the newest sealed one has one if any does; the
     * common case (never indexed) costs two failed lookups. */
    char p[4200], q[4200];
    int sealed = sn.n - 1; /* the last segment is the active one */
    bool any = false;
    if (sealed > 0) {
        file_name(p, sizeof p, sn.v[0].s, "");
        file_name(q, sizeof q, sn.v[sealed - 1].s, "");
        any = access(p, F_OK) == 0 || access(q, F_OK) == 0;
    }
    int removed = 0;
    for (int i = 0; any && i < sn.n; i++) {
        file_name(p, sizeof p, sn.v[i].s, "");
        removed += unlink(p) == 0;
    }
    if (removed)
        rlog_info("partition %s: key.index is off: removed %d key index file(s)", l->dir, removed);
    snap_release(&sn);
    pthread_mutex_unlock(&k->work_mu);
}

void keyindex_free(struct keyindex *k)
{
    if (!k)
        return;
    keyindex_reset(k, false);
    pthread_mutex_destroy(&k->mu);
    pthread_mutex_destroy(&k->work_mu);
    free(k);
}

void keyindex_stats(struct keyindex *k, struct keyindex_stats *st)
{
    memset(st, 0, sizeof *st);
    pthread_mutex_lock(&k->mu);
    st->segments = k->n;
    for (int i = 0; i < k->n; i++) {
        const struct kseg *ks = k->segs[i];
        st->files += ks->state == KS_FILE;
        st->missing += ks->state == KS_MISSING;
        st->entries += (int64_t)ks->n;
        if (ks->state == KS_ACTIVE)
            st->unindexed += ks->seen_size - ks->size;
        else if (ks->state == KS_MISSING)
            st->unindexed += ks->size;
    }
    pthread_mutex_unlock(&k->mu);
}

/* ---- lookups ---- */

/* Offsets of entries with hash h and offset >= min_off, from a sorted
 * array (`le`: little-endian, as in a file). */
static int collect_sorted(const uint64_t *a, size_t n, bool le, uint32_t h, int64_t base,
                          int64_t min_off, struct i64vec *out)
{
    int64_t from = min_off - base;
    uint64_t key = (uint64_t)h << 32 | (uint64_t)(from < 0            ? 0
                                                  : from > UINT32_MAX ? UINT32_MAX
                                                                      : from);
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint64_t x = le ? le64toh(a[mid]) : a[mid];
        if (x < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; lo < n; lo++) {
        uint64_t x = le ? le64toh(a[lo]) : a[lo];
        if ((uint32_t)(x >> 32) != h)
            break;
        if (i64_push(out, base + (uint32_t)x) < 0)
            return -1;
    }
    return 0;
}

/* What one lookup does with one segment. */
struct plan {
    struct segment *s; /* the snapshot's reference */
    int64_t size;      /* bytes of it to consider */
    int64_t min_offset;
    struct i64vec cand; /* offsets to verify, ascending, distinct */
    int64_t scan_from;  /* then scan [scan_from, size); -1: nothing to scan */
};

/* Under k->mu: candidates from the index, or what must be scanned. */
static int plan_segment(struct keyindex *k, const struct snap *sn, const struct view *v, uint32_t h,
                        struct plan *p)
{
    p->s = v->s;
    p->size = v->size;
    p->min_offset = v->min_offset;
    p->scan_from = v->since_pos;
    struct kseg *ks = sn->trunc_gen == k->trunc_gen ? kseg_for(k, v->s) : NULL;
    if (!ks)
        return 0;
    int rc = 0;
    /* The index may be ahead of the snapshot: hits past v->size are cut
     * off when verified. */
    if ((ks->state == KS_FILE || ks->state == KS_MEMORY) && ks->size >= v->size) {
        rc = collect_sorted(ks->state == KS_FILE ? ks->map_e : ks->e, ks->n, ks->state == KS_FILE,
                            h, ks->base, v->min_offset, &p->cand);
        p->scan_from = -1;
    } else if (ks->state == KS_ACTIVE) {
        for (size_t r = 0; rc == 0 && r < ks->sorted; r += KI_RUN)
            rc = collect_sorted(ks->e + r, KI_RUN, false, h, ks->base, v->min_offset, &p->cand);
        for (size_t i = ks->sorted; rc == 0 && i < ks->n; i++)
            if ((uint32_t)(ks->e[i] >> 32) == h && ks->base + (uint32_t)ks->e[i] >= v->min_offset)
                rc = i64_push(&p->cand, ks->base + (uint32_t)ks->e[i]);
        /* Whatever is not indexed yet is scanned. */
        p->scan_from =
            ks->size < v->size ? (ks->size > v->since_pos ? ks->size : v->since_pos) : -1;
    }
    return rc;
}

/* Where to start reading for `off`: a batch position at or before it. */
static int64_t position_for(struct plog *l, const struct segment *s, int64_t off)
{
    pthread_mutex_lock(&l->mu);
    long ix = index_lookup(&s->oidx, off);
    int64_t pos = ix >= 0 ? index_position_at(&s->oidx, (size_t)ix) : 0;
    pthread_mutex_unlock(&l->mu);
    return pos;
}

struct find {
    const void *key;
    size_t len;
    int64_t since_ms;
    keyindex_found_fn fn;
    void *arg;
    bool stop;
};

/* Reports the records of the batch that match; only the offsets in
 * cand[*ci..] when cand is given, every record otherwise. */
static int match_batch(struct find *fd, const uint8_t *b, const struct batch_hdr *h,
                       int64_t min_offset, const struct i64vec *cand, size_t *ci)
{
    if ((h->attributes & BATCH_ATTR_CONTROL) || batch_last_offset(h) < min_offset ||
        (fd->since_ms >= 0 && h->max_timestamp < fd->since_ms))
        return PLOG_OK;
    struct batch_records rs;
    struct batch_record rec;
    int rc = batch_records_begin(b, h, &rs);
    while (rc == PLOG_OK && !fd->stop && (rc = batch_records_next(&rs, &rec)) == 1) {
        rc = PLOG_OK;
        int64_t off = h->base_offset + rec.offset_delta;
        if (cand) {
            while (*ci < cand->n && cand->v[*ci] < off)
                (*ci)++;
            if (*ci == cand->n)
                break;
            if (cand->v[*ci] != off)
                continue;
        }
        if (off < min_offset || !keyindex_record_has_key(&rec, fd->key, fd->len))
            continue;
        struct keyindex_match m = {off, record_timestamp(h, &rec),
                                   (h->attributes & BATCH_ATTR_LOG_APPEND_TIME) != 0, &rec};
        if (fd->since_ms >= 0 && m.timestamp < fd->since_ms)
            continue;
        if (fd->fn(fd->arg, &m))
            fd->stop = true;
    }
    batch_records_end(&rs);
    /* A batch the broker accepted but cannot decode now is reported as
     * corrupt rather than silently skipped. */
    return rc < 0 ? PLOG_ERR_CORRUPT : PLOG_OK;
}

static int run_plan(struct plog *l, struct find *fd, struct plan *p)
{
    int rc = PLOG_OK;
    struct reader r = {.s = p->s, .chunk = KI_VERIFY_CHUNK};
    size_t ci = 0;
    int64_t pos = 0;
    while (rc == PLOG_OK && !fd->stop && ci < p->cand.n) {
        int64_t off = p->cand.v[ci];
        int64_t at = position_for(l, p->s, off);
        if (at < pos)
            at = pos;
        const uint8_t *b;
        struct batch_hdr h;
        /* The batch holding off (or the next one, after compaction). */
        for (;;) {
            if (at >= p->size) {
                ci = p->cand.n;
                break;
            }
            if ((rc = reader_batch(&r, at, p->size, &b, &h)) != PLOG_OK)
                break;
            if (batch_last_offset(&h) >= off)
                break;
            at += batch_size(&h);
        }
        if (rc != PLOG_OK || ci == p->cand.n)
            break;
        rc = match_batch(fd, b, &h, p->min_offset, &p->cand, &ci);
        while (ci < p->cand.n && p->cand.v[ci] <= batch_last_offset(&h))
            ci++;
        pos = at + batch_size(&h);
    }
    if (rc == PLOG_OK && !fd->stop && p->scan_from >= 0) {
        r.chunk = KI_SCAN_CHUNK;
        for (int64_t at = p->scan_from; rc == PLOG_OK && !fd->stop && at < p->size;) {
            const uint8_t *b;
            struct batch_hdr h;
            if ((rc = reader_batch(&r, at, p->size, &b, &h)) != PLOG_OK)
                break;
            rc = match_batch(fd, b, &h, p->min_offset, NULL, NULL);
            at += batch_size(&h);
        }
    }
    free(r.buf);
    return rc;
}

int keyindex_find(struct keyindex *k, struct plog *l, const void *key, size_t len, int64_t since_ms,
                  keyindex_found_fn fn, void *arg)
{
    struct snap sn;
    if (snap_take(l, since_ms, &sn) < 0)
        return PLOG_ERR_IO;
    struct plan *plans = calloc((size_t)(sn.n ? sn.n : 1), sizeof *plans);
    if (!plans) {
        snap_release(&sn);
        return PLOG_ERR_IO;
    }
    uint32_t h = keyindex_hash(key, len);
    int rc = PLOG_OK;
    pthread_mutex_lock(&k->mu);
    for (int i = 0; i < sn.n && rc == PLOG_OK; i++)
        if (!sn.v[i].skip && plan_segment(k, &sn, &sn.v[i], h, &plans[i]) < 0)
            rc = PLOG_ERR_IO;
    pthread_mutex_unlock(&k->mu);

    struct find fd = {key, len, since_ms, fn, arg, false};
    for (int i = 0; i < sn.n && rc == PLOG_OK && !fd.stop; i++) {
        struct plan *p = &plans[i];
        if (sn.v[i].skip)
            continue;
        /* Runs give ascending offsets each; a record may be listed once
         * per key it carries. */
        if (p->cand.n > 1) {
            qsort(p->cand.v, p->cand.n, sizeof *p->cand.v, cmp_i64);
            size_t m = 1;
            for (size_t j = 1; j < p->cand.n; j++)
                if (p->cand.v[j] != p->cand.v[m - 1])
                    p->cand.v[m++] = p->cand.v[j];
            p->cand.n = m;
        }
        rc = run_plan(l, &fd, p);
        if (rc == PLOG_ERR_CORRUPT)
            rlog_error("partition %s: key lookup: unreadable batch in segment %s", l->dir,
                       p->s->path);
    }
    for (int i = 0; i < sn.n; i++)
        free(plans[i].cand.v);
    free(plans);
    snap_release(&sn);
    return rc;
}
