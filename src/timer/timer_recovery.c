/*
 * timer_recovery: the scan of the timer store's segments at open.
 *
 * Every segment is scanned in order; each entry's framing and CRC are
 * checked.  An entry that is framed but corrupt and followed by a valid
 * entry is dropped alone (logged).  Otherwise the scan of that segment
 * ends there: the last segment is cut at that point (a torn tail), a
 * sealed one keeps what was read before it (logged as an error: nothing
 * is ever appended to a sealed segment, so its end is not torn).  The heap,
 * the counts and the half index are rebuilt from what was read, and
 * sealed segments with nothing pending are deleted.
 *
 * The entry format is the table at the top of timer_store.c.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/rlog.h"
#include "storage/fileio.h"
#include "timer/timer_int.h"

/* Scan state shared by the segments of one open. */
struct scan {
    struct timer_store *ts;
    int64_t entries, dropped;
    uint64_t cut_end; /* where the last segment ended before its tail was cut, or 0 */
};

/* Adds a valid entry found by the scan to the in-memory state. */
static int scan_record(struct scan *sc, struct timer_seg *s, uint64_t id, const uint8_t *p,
                       const struct timer_fields *f)
{
    struct timer_store *ts = sc->ts;
    sc->entries++;
    if (f->state == TIMER_PENDING) {
        if (timer_heap_append(&ts->heap, (struct timer_slot){f->due_ms, id}) < 0)
            return -ENOMEM;
        s->pending++;
        timer_count_pending(ts, p, f, 1);
    }
    if (f->kind == TIMER_HALF) {
        const char *topic = (const char *)p + f->topic_off;
        const uint8_t *txn = p + f->txn_off;
        /* Only damage could leave two halves with one key (add refuses
         * the second while the first is remembered): the later wins. */
        struct timer_half *old =
            timer_halves_find(&ts->halves, topic, f->topic_len, txn, f->txn_len);
        if (old) {
            rlog_warn("timer store %s: two halves of one transaction (%" PRIu64 ", %" PRIu64
                      "); keeping the later",
                      ts->dir, old->id, id);
            timer_halves_remove(&ts->halves, old);
        }
        struct timer_half *h =
            timer_halves_add(&ts->halves, id, topic, f->topic_len, txn, f->txn_len);
        if (!h)
            return -ENOMEM;
        h->state = (uint8_t)f->state;
    }
    return 0;
}

/* The entry at pos of a mapped segment: 0 valid, 1 framed but invalid
 * (*total is its size), -1 not even framed. */
static int scan_check(const uint8_t *map, int64_t size, int64_t pos, struct timer_fields *f,
                      uint64_t *total)
{
    if (size - pos < E_MIN_SIZE)
        return -1;
    *total = (uint64_t)get32(map + pos) + 4;
    if (*total < E_MIN_SIZE || *total > E_MAX_SIZE || *total > (uint64_t)(size - pos))
        return -1;
    return timer_entry_parse(map + pos, (uint32_t)*total, f) ? 1 : 0;
}

static int scan_segment(struct scan *sc, struct timer_seg *s, bool last, char *err, size_t errlen)
{
    struct timer_store *ts = sc->ts;
    if (s->size == 0)
        return 0;
    char name[64];
    timer_seg_name(name, sizeof name, s->base);
    uint8_t *map = mmap(NULL, (size_t)s->size, PROT_READ, MAP_PRIVATE, s->fd, 0);
    if (map == MAP_FAILED) {
        snprintf(err, errlen, "timer store %s: mapping %s: %s", ts->dir, name, strerror(errno));
        return -1;
    }
    int64_t pos = 0;
    int rc = 0;
    while (pos < s->size) {
        struct timer_fields f;
        uint64_t total = 0;
        int r = scan_check(map, s->size, pos, &f, &total);
        if (r == 0) {
            if (scan_record(sc, s, s->base + (uint64_t)pos, map + pos, &f) < 0) {
                snprintf(err, errlen, "timer store %s: out of memory", ts->dir);
                rc = -1;
                break;
            }
            pos += (int64_t)total;
            continue;
        }
        if (r == 1) {
            /* Framed but corrupt: if a valid entry follows, only this
             * one is damaged (a flipped bit), so drop it alone. */
            int64_t next = pos + (int64_t)total;
            struct timer_fields nf;
            uint64_t nt;
            if (next < s->size && scan_check(map, s->size, next, &nf, &nt) == 0) {
                rlog_error("timer store %s: %s: entry %" PRIu64 " is corrupt; dropped", ts->dir,
                           name, s->base + (uint64_t)pos);
                sc->dropped++;
                pos = next;
                continue;
            }
        }
        if (last) {
            rlog_warn("timer store %s: %s: cutting an invalid tail of %" PRId64
                      " bytes at position %" PRId64 " (a torn write)",
                      ts->dir, name, s->size - pos, pos);
            munmap(map, (size_t)s->size);
            map = NULL;
            sc->cut_end = s->base + (uint64_t)s->size;
            if (sio_ftruncate(s->fd, pos) < 0) {
                snprintf(err, errlen, "timer store %s: truncating %s: %s", ts->dir, name,
                         strerror(errno));
                return -1;
            }
            ts->disk_bytes -= s->size - pos;
            s->size = s->file_bytes = pos;
            s->dirty = true;
        } else {
            /* Nothing from pos on can be looked up: an id there is not
             * counted as pending, so it must not be marked either. */
            rlog_error("timer store %s: %s: invalid entry at position %" PRId64 "; the %" PRId64
                       " bytes from there on are ignored",
                       ts->dir, name, pos, s->size - pos);
            s->size = pos;
        }
        break;
    }
    if (map)
        munmap(map, (size_t)s->size);
    return rc;
}

static int base_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The bases of the segment files in the directory, sorted. */
static int list_segments(struct timer_store *ts, uint64_t **out, size_t *n, char *err,
                         size_t errlen)
{
    int fd = dup(ts->dir_fd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        snprintf(err, errlen, "timer store %s: %s", ts->dir, strerror(errno));
        return -1;
    }
    uint64_t *bases = NULL;
    size_t cnt = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *nm = de->d_name;
        if (strlen(nm) != SEG_DIGITS + strlen(SEG_SUFFIX) || strcmp(nm + SEG_DIGITS, SEG_SUFFIX))
            continue;
        uint64_t base = 0;
        bool ok = true;
        for (int i = 0; i < SEG_DIGITS && ok; i++) {
            ok = nm[i] >= '0' && nm[i] <= '9' && base <= (UINT64_MAX - 9) / 10;
            base = base * 10 + (uint64_t)(nm[i] - '0');
        }
        if (!ok) {
            rlog_warn("timer store %s: ignoring %s", ts->dir, nm);
            continue;
        }
        if (cnt == cap) {
            cap = cap ? cap * 2 : 16;
            uint64_t *a = realloc(bases, cap * sizeof *a);
            if (!a) {
                free(bases);
                closedir(d);
                snprintf(err, errlen, "timer store %s: out of memory", ts->dir);
                return -1;
            }
            bases = a;
        }
        bases[cnt++] = base;
    }
    closedir(d);
    if (cnt)
        qsort(bases, cnt, sizeof *bases, base_cmp);
    *out = bases;
    *n = cnt;
    return 0;
}

static int load_segments(struct timer_store *ts, char *err, size_t errlen)
{
    uint64_t *bases;
    size_t n;
    if (list_segments(ts, &bases, &n, err, errlen) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char name[64];
        timer_seg_name(name, sizeof name, bases[i]);
        int fd = openat(ts->dir_fd, name, O_RDWR | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0) {
            snprintf(err, errlen, "timer store %s: opening %s: %s", ts->dir, name, strerror(errno));
            if (fd >= 0)
                close(fd);
            free(bases);
            return -1;
        }
        struct timer_seg *s = timer_seg_new(bases[i], fd, st.st_size);
        if (!s || timer_segs_push(ts, s) < 0) {
            free(s);
            close(fd);
            free(bases);
            snprintf(err, errlen, "timer store %s: out of memory", ts->dir);
            return -1;
        }
        ts->disk_bytes += s->file_bytes;
    }
    free(bases);
    /* Segments never overlap (each starts where the one before ended);
     * if damage made one reach into the next, its extra bytes are
     * ignored so that every id maps to one place. */
    for (size_t i = 0; i + 1 < ts->nsegs; i++) {
        struct timer_seg *s = ts->segs[i], *next = ts->segs[i + 1];
        if (s->base + (uint64_t)s->size > next->base) {
            rlog_error("timer store %s: segment %" PRIu64 " overlaps segment %" PRIu64
                       "; ignoring its bytes from %" PRIu64 " on",
                       ts->dir, s->base, next->base, next->base);
            s->size = (int64_t)(next->base - s->base);
        }
    }
    if (ts->nsegs == 0) {
        char name[64];
        timer_seg_name(name, sizeof name, 0);
        int fd = openat(ts->dir_fd, name, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        struct timer_seg *s = fd >= 0 ? timer_seg_new(0, fd, 0) : NULL;
        if (!s || timer_segs_push(ts, s) < 0) {
            snprintf(err, errlen, "timer store %s: creating %s: %s", ts->dir, name,
                     s ? "out of memory" : strerror(errno));
            free(s);
            if (fd >= 0)
                close(fd);
            return -1;
        }
        ts->dir_dirty = true;
    }
    return 0;
}

int timer_recover(struct timer_store *ts, int64_t *entries, int64_t *dropped, char *err,
                  size_t errlen)
{
    if (load_segments(ts, err, errlen) < 0)
        return -1;
    struct scan sc = {ts, 0, 0, 0};
    for (size_t i = 0; i < ts->nsegs; i++)
        if (scan_segment(&sc, ts->segs[i], i + 1 == ts->nsegs, err, errlen) < 0)
            return -1;
    timer_heap_build(&ts->heap);
    /* A cut tail may have held entries whose ids were handed out (the
     * intent names some): appends resume after the old end, in a new
     * segment, so no id ever names two entries. */
    if (sc.cut_end && timer_seg_roll_at(ts, sc.cut_end) < 0) {
        snprintf(err, errlen, "timer store %s: cannot start a segment after the cut tail", ts->dir);
        return -1;
    }
    /* Sealed segments with nothing pending: their halves are forgotten
     * with them. */
    for (size_t i = 0; i + 1 < ts->nsegs;) {
        if (ts->segs[i]->pending == 0)
            timer_seg_drop(ts, i);
        else
            i++;
    }
    *entries = sc.entries;
    *dropped = sc.dropped;
    return 0;
}
