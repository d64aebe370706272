/*
 * plog: one partition's log, a directory of segments (segment.c) plus
 * checkpoint files (formats: checkpoint.c):
 *
 *   file                                   written by
 *   <20-digit base>.log/.index/.timeindex  segment.c, index.c
 *   leader-epoch-checkpoint                plog_append, plog_append_follower
 *                                          (new epoch), plog_begin_epoch,
 *                                          truncation
 *   log-start-offset                       plog_delete_records, truncation
 *                                          below the log start or full
 *   recovery-point                         plog_flush (after a segment rolled),
 *                                          truncation
 *   cleaner-checkpoint                     plog_clean (cleaner.c), truncation
 *   high-watermark                         plog_checkpoint_hw
 *   truncation                             truncation, while it runs (the
 *                                          redo record, see truncate_locked)
 *
 * The struct itself is in plog_int.h, shared with the log cleaner.
 *
 * In-memory invariants, under l->mu:
 *   - segs[] is sorted by base offset, never empty; segs[nsegs-1] is the
 *     active segment, the others are sealed;
 *   - segs[i]->next_offset <= segs[i+1]->base_offset (a compacted
 *     segment may hold no batch up to its next_offset: offsets in a gap
 *     read as the next batch there is);
 *   - log_start <= leo == active->next_offset;
 *   - flushed <= leo; recovery_point <= active->base_offset.
 *
 * Locks: `mu` guards everything in memory and is held across the write
 * into the page cache.  `flush_mu` is taken first (never while holding mu)
 * by whoever fsyncs or writes the log-start / recovery-point checkpoints,
 * so those files have one writer at a time and fsync never holds mu.
 * The leader epoch checkpoint is written under mu (it changes rarely).
 * Truncation also takes `swap_mu` (before flush_mu) so that it never
 * runs while the cleaner swaps files; retention skips segments the
 * cleaner has pinned (segment->cleaning).
 */
#include "storage/plog.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/rlog.h"
#include "storage/batch.h"
#include "storage/checkpoint.h"
#include "storage/cleaner.h"
#include "storage/fileio.h"
#include "storage/keyindex.h"
#include "storage/plog_int.h"
#include "storage/segment.h"

void plog_config_defaults(struct plog_config *c)
{
    c->segment_bytes = 1024 * 1024 * 1024;
    c->segment_ms = 7LL * 24 * 3600 * 1000;
    c->retention_ms = 7LL * 24 * 3600 * 1000;
    c->retention_bytes = -1;
    c->flush_messages = -1;
    c->flush_ms = -1;
    c->index_interval_bytes = 4096;
    c->segment_index_bytes = 10 * 1024 * 1024;
    c->log_append_time = false;
    c->max_message_bytes = 1048588; /* Kafka's message.max.bytes default */
    c->compact = false;
    c->delete_retention_ms = 24LL * 3600 * 1000;
    c->min_compaction_lag_ms = 0;
    c->min_cleanable_dirty_ratio = 0.5;
}

static int truncate_locked(struct plog *l, int64_t offset, bool full, bool redo);

static struct segment *active(struct plog *l)
{
    return l->segs[l->nsegs - 1];
}

int64_t plog_roll_bytes(const struct plog_config *c)
{
    /* Index positions are int32, so no segment may pass 2 GiB. */
    return c->segment_bytes > 0 && c->segment_bytes < INT32_MAX ? c->segment_bytes : INT32_MAX;
}

void plog_set_read_only(struct plog *l, const char *what)
{
    if (!l->read_only)
        rlog_error("partition %s: %s failed (%s); the partition is now read-only", l->dir, what,
                   strerror(errno));
    l->read_only = true;
}

static int push_segment(struct plog *l, struct segment *s)
{
    if (l->nsegs == l->cap_segs) {
        int ncap = l->cap_segs ? l->cap_segs * 2 : 8;
        struct segment **n = realloc(l->segs, (size_t)ncap * sizeof *n);
        if (!n)
            return -1;
        l->segs = n;
        l->cap_segs = ncap;
    }
    l->segs[l->nsegs++] = s;
    return 0;
}

/* Removes segs[i] from the list, deletes its files and drops the list's
 * reference (a fetch range may still hold it open). */
static void drop_segment(struct plog *l, int i)
{
    struct segment *s = l->segs[i];
    memmove(&l->segs[i], &l->segs[i + 1], (size_t)(l->nsegs - i - 1) * sizeof *l->segs);
    l->nsegs--;
    l->size_bytes -= s->size;
    if (segment_delete_files(s) < 0)
        rlog_warn("partition %s: deleting segment %s: %s", l->dir, s->path, strerror(errno));
    segment_unref(s);
}

/* ---- leader epochs ---- */

static int epochs_add(struct plog *l, int32_t epoch, int64_t start)
{
    if (l->nepochs == l->cap_epochs) {
        int ncap = l->cap_epochs ? l->cap_epochs * 2 : 8;
        struct epoch_entry *n = realloc(l->epochs, (size_t)ncap * sizeof *n);
        if (!n)
            return -1;
        l->epochs = n;
        l->cap_epochs = ncap;
    }
    l->epochs[l->nepochs].epoch = epoch;
    l->epochs[l->nepochs].start_offset = start;
    l->nepochs++;
    return 0;
}

/* Drops entries that start at or after `end`.  True when changed. */
static bool epochs_truncate_end(struct plog *l, int64_t end)
{
    int n = l->nepochs;
    while (n > 0 && l->epochs[n - 1].start_offset >= end)
        n--;
    bool changed = n != l->nepochs;
    l->nepochs = n;
    return changed;
}

/* Entries wholly below the log start collapse into one starting there,
 * as Kafka's truncateFromStart does.  True when changed. */
static bool epochs_truncate_start(struct plog *l, int64_t start)
{
    int k = 0; /* number of entries starting at or before `start` */
    while (k < l->nepochs && l->epochs[k].start_offset <= start)
        k++;
    if (k == 0 || (k == 1 && l->epochs[0].start_offset == start))
        return false;
    l->epochs[k - 1].start_offset = start;
    memmove(&l->epochs[0], &l->epochs[k - 1], (size_t)(l->nepochs - k + 1) * sizeof *l->epochs);
    l->nepochs -= k - 1;
    return true;
}

/* Rebuilds the epoch history from batch headers (checkpoint unreadable). */
static int epochs_rebuild(struct plog *l)
{
    l->nepochs = 0;
    for (int i = 0; i < l->nsegs; i++) {
        struct segment *s = l->segs[i];
        int64_t pos = 0;
        while (pos < s->size) {
            struct batch_hdr h;
            if (segment_read_header(s, pos, s->size, &h) != PLOG_OK)
                break;
            int32_t e = h.partition_leader_epoch;
            if (e >= 0 && (l->nepochs == 0 || e > l->epochs[l->nepochs - 1].epoch) &&
                epochs_add(l, e, h.base_offset) < 0)
                return -1;
            pos += batch_size(&h);
        }
    }
    return 0;
}

/* ---- open ---- */

static bool has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && !strcmp(s + n - m, suf);
}

/* Parses "<20 digits><ext>" into *base. */
static bool parse_segment_name(const char *name, const char *ext, int64_t *base)
{
    if (strlen(name) != 20 + strlen(ext) || strcmp(name + 20, ext) != 0)
        return false;
    int64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9')
            return false;
        if (v > (INT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (name[i] - '0');
    }
    *base = v;
    return true;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static bool base_in(const int64_t *bases, int n, int64_t b)
{
    return bsearch(&b, bases, (size_t)n, sizeof *bases, cmp_i64) != NULL;
}

/*
 * Lists the segment base offsets (sorted) and removes what interrupted
 * operations left behind: temporary files, files being deleted, and
 * index files whose log is gone.
 */
static int list_segments(struct plog *l, int64_t **out, int *out_n)
{
    int dfd = dup(l->dir_fd);
    if (dfd < 0)
        return -1;
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return -1;
    }
    rewinddir(d); /* the dup shares its offset with dir_fd */
    int64_t *bases = NULL;
    int n = 0, cap = 0;
    char **orphans = NULL;
    int norph = 0, caporph = 0;
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        int64_t base;
        if (has_suffix(name, ".tmp") || has_suffix(name, ".deleted") ||
            has_suffix(name, ".cleaned") || has_suffix(name, ".swap")) {
            if (unlinkat(l->dir_fd, name, 0) < 0)
                rlog_warn("partition %s: removing %s: %s", l->dir, name, strerror(errno));
            continue;
        }
        if (parse_segment_name(name, ".log", &base)) {
            if (n == cap) {
                cap = cap ? cap * 2 : 16;
                int64_t *nb = realloc(bases, (size_t)cap * sizeof *nb);
                if (!nb) {
                    rc = -1;
                    break;
                }
                bases = nb;
            }
            bases[n++] = base;
        } else if (parse_segment_name(name, ".index", &base) ||
                   parse_segment_name(name, ".timeindex", &base) ||
                   parse_segment_name(name, KEYINDEX_SUFFIX, &base)) {
            if (norph == caporph) {
                caporph = caporph ? caporph * 2 : 16;
                char **no = realloc(orphans, (size_t)caporph * sizeof *no);
                if (!no) {
                    rc = -1;
                    break;
                }
                orphans = no;
            }
            if (!(orphans[norph] = strdup(name))) {
                rc = -1;
                break;
            }
            norph++;
        }
    }
    closedir(d);
    if (rc == 0 && n > 1)
        qsort(bases, (size_t)n, sizeof *bases, cmp_i64);
    for (int i = 0; i < norph; i++) {
        int64_t base = -1;
        if (!parse_segment_name(orphans[i], ".index", &base) &&
            !parse_segment_name(orphans[i], ".timeindex", &base))
            parse_segment_name(orphans[i], KEYINDEX_SUFFIX, &base);
        if (rc == 0 && !base_in(bases, n, base))
            unlinkat(l->dir_fd, orphans[i], 0);
        free(orphans[i]);
    }
    free(orphans);
    if (rc < 0) {
        free(bases);
        return -1;
    }
    *out = bases;
    *out_n = n;
    return 0;
}

static void errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static bool indexes_sane(const struct segment *s, int64_t next_offset)
{
    return index_check(&s->oidx, s->size, next_offset) &&
           index_check(&s->tidx, s->size, next_offset);
}

/* Loads segment i of bases[] per the rules in plog.h.  Returns the number
 * of bytes cut from it (> 0 means later segments must go), or < 0. */
static int64_t load_segment(struct plog *l, const int64_t *bases, int n, int i, bool clean,
                            char *err, size_t errlen)
{
    struct segment *s;
    if (segment_open(l->dir, bases[i], (size_t)l->cfg.segment_index_bytes, &s) < 0) {
        errf(err, errlen, "%s: opening segment %020lld: %s", l->dir, (long long)bases[i],
             strerror(errno));
        return -1;
    }
    if (push_segment(l, s) < 0) {
        segment_unref(s);
        errf(err, errlen, "%s: out of memory", l->dir);
        return -1;
    }
    bool last = i == n - 1;
    bool missing = !s->oidx.existed || !s->tidx.existed;
    int32_t interval = l->cfg.index_interval_bytes;
    int64_t cut = 0;
    if (last) {
        /* The active segment is always rescanned after a crash; after a
         * clean stop only a damaged or missing index forces it. */
        bool sane = !s->oidx.ragged && !s->tidx.ragged &&
                    (s->oidx.n == 0 || index_position_at(&s->oidx, s->oidx.n - 1) < s->size);
        if (!clean || missing || !sane) {
            if (segment_unseal(s) != PLOG_OK)
                goto io;
            cut = segment_recover(s, interval);
        } else {
            cut = segment_load_tail(s, interval);
        }
    } else {
        int64_t next_base = bases[i + 1];
        /* A sealed segment that may hold data above the recovery point
         * might not have reached the disk whole. */
        bool unsynced = !clean && next_base > l->recovery_point;
        if (missing || unsynced || (!clean && !indexes_sane(s, next_base))) {
            if (segment_unseal(s) != PLOG_OK)
                goto io;
            cut = segment_recover(s, interval);
            if (cut == 0 && segment_seal(s) != PLOG_OK)
                goto io;
        } else {
            segment_load_sealed(s, next_base);
        }
    }
    if (cut < 0)
        goto io;
    if (cut > 0)
        rlog_warn("partition %s: segment %020lld: cut %lld bytes of torn or corrupt data", l->dir,
                  (long long)bases[i], (long long)cut);
    if (missing || !clean)
        s->needs_sync = true;
    l->size_bytes += s->size;
    return cut;
io:
    errf(err, errlen, "%s: recovering segment %020lld: %s", l->dir, (long long)bases[i],
         strerror(errno));
    return -1;
}

static void plog_free(struct plog *l)
{
    for (int i = 0; i < l->nsegs; i++)
        segment_unref(l->segs[i]);
    free(l->segs);
    free(l->epochs);
    if (l->dir_fd >= 0)
        close(l->dir_fd);
    pthread_mutex_destroy(&l->mu);
    pthread_mutex_destroy(&l->flush_mu);
    pthread_mutex_destroy(&l->swap_mu);
    pthread_mutex_destroy(&l->clean_mu);
    free(l->dir);
    free(l);
}

/* Deletes every segment and starts an empty one at `offset`. */
static int restart_at(struct plog *l, int64_t offset, int64_t now_ms)
{
    while (l->nsegs > 0)
        drop_segment(l, l->nsegs - 1);
    struct segment *s;
    if (segment_create(l->dir, offset, (size_t)l->cfg.segment_index_bytes, now_ms, &s) < 0)
        return -1;
    if (push_segment(l, s) < 0) {
        segment_unref(s);
        return -1;
    }
    l->dir_dirty = true;
    l->size_bytes = 0;
    l->leo = offset;
    l->log_start = offset;
    return 0;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int plog_open(const char *dir, const struct plog_config *cfg, bool clean, struct plog **out,
              char *err, size_t errlen)
{
    *out = NULL;
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        errf(err, errlen, "%s: mkdir: %s", dir, strerror(errno));
        return -1;
    }
    struct plog *l = calloc(1, sizeof *l);
    if (!l) {
        errf(err, errlen, "%s: out of memory", dir);
        return -1;
    }
    pthread_mutex_init(&l->mu, NULL);
    pthread_mutex_init(&l->flush_mu, NULL);
    pthread_mutex_init(&l->swap_mu, NULL);
    pthread_mutex_init(&l->clean_mu, NULL);
    l->cfg = *cfg;
    l->oldest_unflushed_ms = -1;
    l->clean_offset = -1;
    l->clean_horizon_ms = -1;
    l->hw_ckpt = -1;
    l->dir = strdup(dir);
    l->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (!l->dir || l->dir_fd < 0) {
        errf(err, errlen, "%s: open: %s", dir, strerror(errno));
        plog_free(l);
        return -1;
    }

    /* A clean interrupted by a crash is finished or undone before the
     * segments are listed (the protocol is at the top of cleaner.c). */
    if (cleaner_recover(l->dir_fd, dir) < 0) {
        errf(err, errlen, "%s: completing an interrupted clean: %s", dir, strerror(errno));
        plog_free(l);
        return -1;
    }
    int64_t *bases = NULL;
    int n = 0;
    if (list_segments(l, &bases, &n) < 0) {
        errf(err, errlen, "%s: listing: %s", dir, strerror(errno));
        plog_free(l);
        return -1;
    }
    int64_t ckpt_start = 0;
    int rc = ckpt_read_offset(l->dir_fd, CKPT_LOG_START, &ckpt_start);
    if (rc < 0) {
        rlog_warn("partition %s: unreadable %s, using the first segment", dir, CKPT_LOG_START);
        ckpt_start = 0;
    }
    /* Without a recovery point every segment is suspect after a crash. */
    if (ckpt_read_offset(l->dir_fd, CKPT_RECOVERY_POINT, &l->recovery_point) != 0)
        l->recovery_point = 0;

    int64_t now = wall_ms();
    for (int i = 0; i < n; i++) {
        int64_t cut = load_segment(l, bases, n, i, clean, err, errlen);
        if (cut < 0) {
            free(bases);
            plog_free(l);
            return -1;
        }
        if (cut > 0 && i < n - 1) {
            /* Offsets after a hole cannot be trusted to follow on: drop
             * the later segments, as Kafka's recovery does. */
            for (int j = i + 1; j < n; j++) {
                struct segment tmp;
                memset(&tmp, 0, sizeof tmp);
                char p[4096];
                segment_file_name(p, sizeof p, dir, bases[j], "");
                tmp.path = p;
                segment_delete_files(&tmp);
            }
            rlog_warn("partition %s: dropped %d segment(s) after the cut", dir, n - i - 1);
            if (segment_unseal(active(l)) != PLOG_OK) {
                errf(err, errlen, "%s: %s", dir, strerror(errno));
                free(bases);
                plog_free(l);
                return -1;
            }
            break;
        }
    }
    free(bases);

    if (l->nsegs == 0) {
        if (restart_at(l, ckpt_start, now) < 0) {
            errf(err, errlen, "%s: creating segment: %s", dir, strerror(errno));
            plog_free(l);
            return -1;
        }
    } else {
        struct segment *a = active(l);
        l->leo = a->next_offset;
        l->log_start = l->segs[0]->base_offset;
        if (ckpt_start > l->log_start)
            l->log_start = ckpt_start;
        if (l->log_start > l->leo) {
            /* DeleteRecords went further than the data that survived. */
            if (restart_at(l, l->log_start, now) < 0) {
                errf(err, errlen, "%s: creating segment: %s", dir, strerror(errno));
                plog_free(l);
                return -1;
            }
        } else if (a->size > 0) {
            /* segment_ms counts from the first batch's timestamp, as
             * Kafka's rollingBasedTimestamp does. */
            struct batch_hdr h;
            if (segment_read_header(a, 0, a->size, &h) == PLOG_OK && h.max_timestamp >= 0)
                a->roll_base_ms = h.max_timestamp;
        }
    }
    if (l->recovery_point > active(l)->base_offset)
        l->recovery_point = active(l)->base_offset;
    l->flushed = clean ? l->leo : l->recovery_point;

    struct epoch_entry *e;
    int ne;
    rc = ckpt_read_epochs(l->dir_fd, &e, &ne);
    bool write_epochs = false;
    if (rc < 0) {
        rlog_warn("partition %s: unreadable %s, rebuilding it from the log", dir,
                  CKPT_LEADER_EPOCH);
        if (epochs_rebuild(l) < 0) {
            errf(err, errlen, "%s: out of memory", dir);
            plog_free(l);
            return -1;
        }
        write_epochs = true;
    } else {
        l->epochs = e;
        l->nepochs = l->cap_epochs = ne;
    }
    write_epochs |= epochs_truncate_end(l, l->leo);
    write_epochs |= epochs_truncate_start(l, l->log_start);
    cleaner_load_checkpoint(l);
    if (write_epochs && ckpt_write_epochs(l->dir_fd, l->epochs, l->nepochs) < 0) {
        errf(err, errlen, "%s: writing %s: %s", dir, CKPT_LEADER_EPOCH, strerror(errno));
        plog_free(l);
        return -1;
    }

    /* A truncation interrupted by a crash is finished now (the record
     * is described above truncate_locked). */
    int64_t trunc_to;
    bool trunc_full;
    rc = ckpt_read_truncation(l->dir_fd, &trunc_to, &trunc_full);
    if (rc < 0) {
        /* Cannot be torn (atomic replace): damaged on disk.  The log is
         * a prefix of itself whatever step was reached; keep it. */
        rlog_warn("partition %s: unreadable %s, ignoring it", dir, CKPT_TRUNCATION);
        if (ckpt_remove(l->dir_fd, CKPT_TRUNCATION) < 0) {
            errf(err, errlen, "%s: removing %s: %s", dir, CKPT_TRUNCATION, strerror(errno));
            plog_free(l);
            return -1;
        }
    } else if (rc == 0) {
        rlog_warn("partition %s: finishing an interrupted truncation to %lld", dir,
                  (long long)trunc_to);
        if (truncate_locked(l, trunc_to, trunc_full, true) != PLOG_OK) {
            errf(err, errlen, "%s: finishing a truncation: %s", dir, strerror(errno));
            plog_free(l);
            return -1;
        }
    }

    /* The high watermark (clamped when asked for: recovery may have
     * cut the log below it). */
    int64_t hw = -1;
    rc = ckpt_read_offset(l->dir_fd, CKPT_HIGH_WATERMARK, &hw);
    if (rc < 0)
        rlog_warn("partition %s: unreadable %s, no high watermark", dir, CKPT_HIGH_WATERMARK);
    l->hw_ckpt = rc == 0 && hw >= 0 ? hw : -1;
    *out = l;
    return 0;
}

/* ---- append ---- */

/* Seals the active segment and starts one named `base`: the log end
 * for leader appends, the first incoming offset for a follower's (after
 * a gap in the leader's log the two differ). */
static int roll(struct plog *l, int64_t base, int64_t now_ms)
{
    struct segment *a = active(l), *s;
    if (segment_seal(a) != PLOG_OK) {
        plog_set_read_only(l, "sealing a segment");
        return PLOG_ERR_IO;
    }
    if (segment_create(l->dir, base, (size_t)l->cfg.segment_index_bytes, now_ms, &s) < 0) {
        plog_set_read_only(l, "creating a segment");
        return PLOG_ERR_IO;
    }
    if (push_segment(l, s) < 0) {
        segment_delete_files(s);
        segment_unref(s);
        errno = ENOMEM;
        plog_set_read_only(l, "rolling");
        return PLOG_ERR_IO;
    }
    l->dir_dirty = true;
    return PLOG_OK;
}

/* Whether `len` bytes of batches ending at last_offset need a new
 * segment.  Relative offsets are int32, so even an empty segment rolls
 * when they would not fit (only a follower's batch after a gap of 2^31
 * offsets can do that; the empty segment stays, sealed, as in Kafka). */
static bool should_roll(struct plog *l, size_t len, int64_t last_offset, int64_t now_ms)
{
    struct segment *a = active(l);
    if (last_offset - a->base_offset > INT32_MAX)
        return true;
    if (a->size == 0)
        return false;
    return a->size + (int64_t)len > plog_roll_bytes(&l->cfg) || index_full(&a->oidx) ||
           a->tidx.n + 1 >= a->tidx.max_entries ||
           (l->cfg.segment_ms >= 0 && now_ms - a->roll_base_ms >= l->cfg.segment_ms);
}

/*
 * The write shared by leader and follower appends, under mu: rolls when
 * needed, writes `len` bytes of validated batches whose offsets are
 * final (first_offset..last_offset) with one pwrite, indexes them and
 * counts them.  On a failed write the partition is read-only; when only
 * an index write failed the batches are in the log and readable, so the
 * log end follows the file, but the failure is still returned.
 */
static int write_batches(struct plog *l, const uint8_t *batches, size_t len, int64_t first_offset,
                         int64_t last_offset, int64_t records, int64_t now_ms)
{
    int rc;
    if (should_roll(l, len, last_offset, now_ms) && (rc = roll(l, first_offset, now_ms)) != PLOG_OK)
        return rc;
    struct segment *a = active(l);
    rc = segment_append(a, batches, len, l->cfg.index_interval_bytes, now_ms);
    if (rc != PLOG_OK) {
        plog_set_read_only(l, "writing to the log");
        if (a->next_offset != last_offset + 1)
            return rc;
    }
    l->leo = last_offset + 1;
    l->size_bytes += (int64_t)len;
    l->unflushed_records += records;
    if (l->oldest_unflushed_ms < 0)
        l->oldest_unflushed_ms = now_ms;
    return rc;
}

/* Adds `epoch` starting at `start` to the history if it is newer than
 * the latest (Kafka's assign); true when added.  Under mu. */
static int epochs_assign(struct plog *l, int32_t epoch, int64_t start, bool *added)
{
    *added = false;
    if (epoch < 0 || (l->nepochs > 0 && epoch <= l->epochs[l->nepochs - 1].epoch))
        return 0;
    if (epochs_add(l, epoch, start) < 0)
        return -1;
    *added = true;
    return 0;
}

int plog_append(struct plog *l, uint8_t *batches, size_t len, int32_t leader_epoch, int64_t now_ms,
                struct plog_append_result *res)
{
    memset(res, 0, sizeof *res);
    res->base_offset = res->last_offset = res->log_append_time = -1;

    pthread_mutex_lock(&l->mu);
    int64_t max_bytes = l->cfg.max_message_bytes;
    int64_t seg_bytes = plog_roll_bytes(&l->cfg);
    bool append_time = l->cfg.log_append_time;
    bool compact = l->cfg.compact;
    pthread_mutex_unlock(&l->mu);

    /* Validate everything before anything is written (no mutex needed:
     * the buffer is the caller's). */
    size_t nb = len / BATCH_HEADER_SIZE + 1;
    int64_t *max_ts = malloc(nb * sizeof *max_ts);
    if (!max_ts)
        return PLOG_ERR_IO;
    size_t off = 0, count = 0;
    int64_t records = 0;
    int rc = PLOG_OK;
    if ((int64_t)len > seg_bytes)
        rc = PLOG_ERR_TOO_LARGE;
    while (rc == PLOG_OK && off < len) {
        struct batch_hdr h;
        rc = batch_parse_header(batches + off, len - off, (int64_t)(len - off) - BATCH_LOG_OVERHEAD,
                                &h);
        if (rc != PLOG_OK)
            break;
        if (batch_size(&h) > max_bytes) {
            rc = PLOG_ERR_TOO_LARGE;
            break;
        }
        /* The delete horizon is the cleaner's own mark (cleaner.c): a
         * producer's would let tombstones go before their time. */
        if (h.attributes & BATCH_ATTR_DELETE_HORIZON) {
            rc = PLOG_ERR_INVALID;
            break;
        }
        struct batch_info info;
        rc = batch_validate(batches + off, (size_t)batch_size(&h), true, &info);
        if (rc != PLOG_OK)
            break;
        /* Kafka: "Compacted topic cannot accept message without key". */
        if (compact && info.null_keys > 0) {
            rc = PLOG_ERR_INVALID;
            break;
        }
        max_ts[count++] = info.max_record_timestamp;
        records += info.records;
        off += (size_t)batch_size(&h);
    }
    if (rc != PLOG_OK || count == 0) {
        free(max_ts);
        return rc;
    }

    pthread_mutex_lock(&l->mu);
    if (l->read_only) {
        rc = PLOG_ERR_IO;
        goto out;
    }
    bool added;
    if (epochs_assign(l, leader_epoch, l->leo, &added) < 0 ||
        (added && ckpt_write_epochs(l->dir_fd, l->epochs, l->nepochs) < 0)) {
        plog_set_read_only(l, "writing the leader epoch checkpoint");
        rc = PLOG_ERR_IO;
        goto out;
    }

    /* Assign offsets (outside the CRC) and fix timestamps (inside it). */
    int64_t next = l->leo;
    off = 0;
    for (size_t i = 0; i < count; i++) {
        uint8_t *b = batches + off;
        size_t size = BATCH_LOG_OVERHEAD + (size_t)batch_be32(b + 8);
        batch_put_be64(b, next);
        batch_put_be32(b + 12, leader_epoch);
        int16_t attrs = batch_be16(b + BATCH_ATTR_OFFSET);
        if (append_time) {
            batch_put_be16(b + BATCH_ATTR_OFFSET, (int16_t)(attrs | BATCH_ATTR_LOG_APPEND_TIME));
            batch_put_be64(b + BATCH_MAX_TS_OFFSET, now_ms);
            batch_update_crc(b, size);
        } else if (batch_be64(b + BATCH_MAX_TS_OFFSET) != max_ts[i] || (attrs & 8)) {
            /* The batch's maxTimestamp is what the time index and
             * retention trust, so make it the records' real maximum. */
            batch_put_be16(b + BATCH_ATTR_OFFSET, (int16_t)(attrs & ~BATCH_ATTR_LOG_APPEND_TIME));
            batch_put_be64(b + BATCH_MAX_TS_OFFSET, max_ts[i]);
            batch_update_crc(b, size);
        }
        next += batch_be32(b + 23) + 1;
        off += size;
    }
    int64_t base = l->leo;
    rc = write_batches(l, batches, len, base, next - 1, records, now_ms);
    if (l->leo == next) {
        res->base_offset = base;
        res->last_offset = next - 1;
        res->log_append_time = append_time ? now_ms : -1;
        res->record_count = (int32_t)records;
    }
out:
    res->log_start_offset = l->log_start;
    pthread_mutex_unlock(&l->mu);
    free(max_ts);
    return rc;
}

/* One batch of a follower append, as validated. */
struct fbatch {
    size_t pos, size;
    int64_t base, last;
    int32_t epoch, records;
};

int plog_append_follower(struct plog *l, const uint8_t *batches, size_t len,
                         struct plog_append_result *res)
{
    memset(res, 0, sizeof *res);
    res->base_offset = res->last_offset = res->log_append_time = -1;

    pthread_mutex_lock(&l->mu);
    int64_t seg_bytes = plog_roll_bytes(&l->cfg);
    pthread_mutex_unlock(&l->mu);

    /* Everything is checked before anything is written, without the
     * mutex (the buffer is the caller's).  Records are not decompressed:
     * the leader validated them, the CRC says they arrived intact. */
    struct fbatch *fb = malloc((len / BATCH_HEADER_SIZE + 1) * sizeof *fb);
    if (!fb)
        return PLOG_ERR_IO;
    size_t off = 0, count = 0;
    int rc = PLOG_OK;
    while (off < len) {
        struct batch_hdr h;
        rc = batch_parse_header(batches + off, len - off, (int64_t)(len - off) - BATCH_LOG_OVERHEAD,
                                &h);
        if (rc != PLOG_OK)
            break;
        if (batch_size(&h) > seg_bytes) {
            rc = PLOG_ERR_TOO_LARGE;
            break;
        }
        rc = batch_validate_header(batches + off, (size_t)batch_size(&h), false, &h);
        if (rc != PLOG_OK)
            break;
        /* Offsets increase from batch to batch, and stay int64. */
        if (h.base_offset < 0 || h.base_offset > INT64_MAX - 1 - h.last_offset_delta ||
            (count > 0 && h.base_offset <= fb[count - 1].last)) {
            rc = PLOG_ERR_INVALID;
            break;
        }
        struct fbatch *f = &fb[count];
        f->pos = off;
        f->size = (size_t)batch_size(&h);
        f->base = h.base_offset;
        f->last = batch_last_offset(&h);
        f->epoch = h.partition_leader_epoch;
        f->records = h.records_count;
        count++;
        off += (size_t)batch_size(&h);
    }
    if (rc != PLOG_OK || count == 0) {
        free(fb);
        return rc;
    }

    int64_t now_ms = wall_ms(), records = 0;
    pthread_mutex_lock(&l->mu);
    if (l->read_only) {
        rc = PLOG_ERR_IO;
        goto out;
    }
    if (fb[0].base < l->leo) {
        rc = PLOG_ERR_OFFSET;
        goto out;
    }
    /* The epochs the batches start, made durable before the data: once
     * a fetcher reports the offsets, OffsetForLeaderEpoch answers from
     * them. */
    bool changed = false;
    for (size_t i = 0; i < count; i++) {
        bool added;
        if (epochs_assign(l, fb[i].epoch, fb[i].base, &added) < 0) {
            errno = ENOMEM;
            rc = PLOG_ERR_IO;
            break;
        }
        changed |= added;
    }
    if (rc != PLOG_OK || (changed && ckpt_write_epochs(l->dir_fd, l->epochs, l->nepochs) < 0)) {
        plog_set_read_only(l, "writing the leader epoch checkpoint");
        rc = PLOG_ERR_IO;
        goto out;
    }
    /* Runs of batches that fit the active segment, one write each; the
     * segment rolls between runs as it would between leader appends. */
    for (size_t i = 0; i < count;) {
        if (should_roll(l, fb[i].size, fb[i].last, now_ms) &&
            (rc = roll(l, fb[i].base, now_ms)) != PLOG_OK)
            goto out;
        struct segment *a = active(l);
        size_t j = i + 1, run = fb[i].size;
        int64_t run_records = fb[i].records;
        while (j < count && a->size + (int64_t)(run + fb[j].size) <= seg_bytes &&
               fb[j].last - a->base_offset <= INT32_MAX) {
            run += fb[j].size;
            run_records += fb[j].records;
            j++;
        }
        rc = write_batches(l, batches + fb[i].pos, run, fb[i].base, fb[j - 1].last, run_records,
                           now_ms);
        if (l->leo != fb[j - 1].last + 1)
            goto out;
        records += run_records;
        res->last_offset = fb[j - 1].last;
        if (rc != PLOG_OK)
            goto out;
        i = j;
    }
out:
    if (res->last_offset >= 0) {
        res->base_offset = fb[0].base;
        res->record_count = (int32_t)records;
    }
    res->log_start_offset = l->log_start;
    pthread_mutex_unlock(&l->mu);
    free(fb);
    return rc;
}

/* ---- read ---- */

void plog_range_release(void *ref)
{
    if (ref)
        segment_unref(ref);
}

/* Index of the last segment whose base offset <= offset (or 0). */
static int find_segment(struct plog *l, int64_t offset)
{
    int lo = 0, hi = l->nsegs - 1, found = 0;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if (l->segs[mid]->base_offset <= offset) {
            found = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return found;
}

static int read_empty(struct plog_range *out)
{
    out->fd = -1;
    out->file_pos = 0;
    out->len = 0;
    out->ref = NULL;
    return PLOG_OK;
}

int plog_read(struct plog *l, int64_t offset, int32_t max_bytes, int64_t max_offset,
              struct plog_range *out)
{
    read_empty(out);
    pthread_mutex_lock(&l->mu);
    if (offset < l->log_start || offset > l->leo) {
        pthread_mutex_unlock(&l->mu);
        return PLOG_ERR_OUT_OF_RANGE;
    }
    struct segment *s;
    int64_t pos, limit;
    struct batch_hdr h;
    int rc = PLOG_OK;
    for (;;) { /* mu held here */
        if (offset >= l->leo || offset >= max_offset) {
            pthread_mutex_unlock(&l->mu);
            return PLOG_OK;
        }
        int i = find_segment(l, offset);
        while (i < l->nsegs && offset >= l->segs[i]->next_offset)
            i++;
        if (i == l->nsegs) {
            pthread_mutex_unlock(&l->mu);
            return PLOG_OK;
        }
        s = l->segs[i];
        long ix = index_lookup(&s->oidx, offset);
        pos = ix >= 0 ? index_position_at(&s->oidx, (size_t)ix) : 0;
        limit = s->size; /* never past what is wholly written */
        int64_t seg_end = s->next_offset;
        segment_ref(s);
        pthread_mutex_unlock(&l->mu);

        /* File reads without the mutex: bytes below `limit` do not change. */
        bool found = false;
        while (pos < limit) {
            rc = segment_read_header(s, pos, limit, &h);
            if (rc != PLOG_OK)
                goto fail;
            if (batch_last_offset(&h) >= offset) {
                found = true;
                break;
            }
            pos += batch_size(&h);
        }
        if (found)
            break;
        segment_unref(s);
        /* Nothing at or after `offset` here: compaction removed the end
         * of this segment (cleaner.c), so the answer is the first batch
         * of a later one.  Each round moves offset forward. */
        if (seg_end <= offset)
            return PLOG_OK; /* cannot be (offset < next_offset); keeps it finite */
        offset = seg_end;
        pthread_mutex_lock(&l->mu);
    }
    int64_t start = pos, total = 0;
    for (;;) {
        if (batch_last_offset(&h) >= max_offset)
            break;
        if (total > 0 && total + batch_size(&h) > max_bytes)
            break;
        total += batch_size(&h);
        pos += batch_size(&h);
        if (pos >= limit)
            break;
        rc = segment_read_header(s, pos, limit, &h);
        if (rc != PLOG_OK) {
            if (total > 0)
                break; /* serve what is good; the next read reports it */
            goto fail;
        }
    }
    if (total == 0) {
        segment_unref(s);
        return PLOG_OK;
    }
    out->fd = s->log_fd;
    out->file_pos = start;
    out->len = (int32_t)total;
    out->ref = s;
    return PLOG_OK;
fail:
    if (rc == PLOG_ERR_CORRUPT)
        rlog_error("partition %s: segment %s: bad batch header at position %lld", l->dir, s->path,
                   (long long)pos);
    segment_unref(s);
    return rc;
}

/* ---- offsets ---- */

int64_t plog_log_start(struct plog *l)
{
    pthread_mutex_lock(&l->mu);
    int64_t v = l->log_start;
    pthread_mutex_unlock(&l->mu);
    return v;
}

int64_t plog_log_end(struct plog *l)
{
    pthread_mutex_lock(&l->mu);
    int64_t v = l->leo;
    pthread_mutex_unlock(&l->mu);
    return v;
}

int64_t plog_size_bytes(struct plog *l)
{
    pthread_mutex_lock(&l->mu);
    int64_t v = l->size_bytes;
    pthread_mutex_unlock(&l->mu);
    return v;
}

int plog_segment_count(struct plog *l)
{
    pthread_mutex_lock(&l->mu);
    int n = l->nsegs;
    pthread_mutex_unlock(&l->mu);
    return n;
}

int64_t plog_flushed_offset(struct plog *l)
{
    pthread_mutex_lock(&l->mu);
    int64_t v = l->flushed;
    pthread_mutex_unlock(&l->mu);
    return v;
}

int plog_begin_epoch(struct plog *l, int32_t epoch)
{
    pthread_mutex_lock(&l->mu);
    int rc = PLOG_OK;
    if (l->read_only)
        rc = PLOG_ERR_IO;
    else if (epoch >= 0 && (l->nepochs == 0 || epoch > l->epochs[l->nepochs - 1].epoch) &&
             (epochs_add(l, epoch, l->leo) < 0 ||
              ckpt_write_epochs(l->dir_fd, l->epochs, l->nepochs) < 0)) {
        plog_set_read_only(l, "writing the leader epoch checkpoint");
        rc = PLOG_ERR_IO;
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

int32_t plog_leader_epoch(struct plog *l)
{
    pthread_mutex_lock(&l->mu);
    int32_t v = l->nepochs ? l->epochs[l->nepochs - 1].epoch : -1;
    pthread_mutex_unlock(&l->mu);
    return v;
}

/* ---- flush ---- */

int64_t plog_flush(struct plog *l)
{
    pthread_mutex_lock(&l->flush_mu);
    pthread_mutex_lock(&l->mu);
    if (l->read_only) {
        pthread_mutex_unlock(&l->mu);
        pthread_mutex_unlock(&l->flush_mu);
        return PLOG_ERR_IO;
    }
    /* Capture what to sync; appends may continue meanwhile. */
    int n = 0;
    struct segment **todo = malloc((size_t)l->nsegs * sizeof *todo);
    bool *sealed = malloc((size_t)l->nsegs * sizeof *sealed);
    if (!todo || !sealed) {
        free(todo);
        free(sealed);
        pthread_mutex_unlock(&l->mu);
        pthread_mutex_unlock(&l->flush_mu);
        return l->flushed;
    }
    for (int i = 0; i < l->nsegs; i++) {
        struct segment *s = l->segs[i];
        if (!s->needs_sync)
            continue;
        s->needs_sync = false;
        sealed[n] = s->sealed;
        segment_ref(s);
        todo[n++] = s;
    }
    int64_t target = l->leo;
    int64_t records = l->unflushed_records;
    int64_t new_rp = active(l)->base_offset;
    bool dir_dirty = l->dir_dirty;
    l->dir_dirty = false;
    pthread_mutex_unlock(&l->mu);

    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++)
        rc = segment_sync(todo[i]);
    if (rc == 0 && dir_dirty)
        rc = sio_fsync(l->dir_fd);

    pthread_mutex_lock(&l->mu);
    int64_t result;
    if (rc < 0) {
        plog_set_read_only(l, "fsync");
        result = PLOG_ERR_IO;
    } else {
        if (target > l->flushed)
            l->flushed = target;
        l->unflushed_records -= records;
        if (l->unflushed_records <= 0) {
            l->unflushed_records = 0;
            l->oldest_unflushed_ms = -1;
        }
        /* Synced sealed segments give their index memory back to the
         * page cache. */
        for (int i = 0; i < n; i++) {
            if (sealed[i] && todo[i]->sealed) {
                index_release(&todo[i]->oidx);
                index_release(&todo[i]->tidx);
            }
        }
        result = l->flushed;
    }
    bool write_rp = rc == 0 && new_rp > l->recovery_point;
    pthread_mutex_unlock(&l->mu);

    if (write_rp) {
        if (ckpt_write_offset(l->dir_fd, CKPT_RECOVERY_POINT, new_rp) < 0) {
            pthread_mutex_lock(&l->mu);
            plog_set_read_only(l, "writing the recovery point");
            pthread_mutex_unlock(&l->mu);
            result = PLOG_ERR_IO;
        } else {
            pthread_mutex_lock(&l->mu);
            /* Truncation, the only thing that lowers it, takes flush_mu,
             * so nothing changed it since it was captured. */
            l->recovery_point = new_rp;
            pthread_mutex_unlock(&l->mu);
        }
    }
    for (int i = 0; i < n; i++)
        segment_unref(todo[i]);
    free(todo);
    free(sealed);
    pthread_mutex_unlock(&l->flush_mu);
    return result;
}

bool plog_flush_due(struct plog *l, int64_t now_ms)
{
    pthread_mutex_lock(&l->mu);
    bool due = !l->read_only && l->unflushed_records > 0 &&
               ((l->cfg.flush_messages > 0 && l->unflushed_records >= l->cfg.flush_messages) ||
                (l->cfg.flush_ms >= 0 && l->oldest_unflushed_ms >= 0 &&
                 now_ms - l->oldest_unflushed_ms >= l->cfg.flush_ms));
    pthread_mutex_unlock(&l->mu);
    return due;
}

/* ---- close / destroy / config ---- */

void plog_close(struct plog *l, bool flush)
{
    if (!l)
        return;
    if (flush)
        plog_flush(l);
    plog_free(l);
}

int plog_destroy(struct plog *l)
{
    int rc = 0;
    pthread_mutex_lock(&l->mu);
    while (l->nsegs > 0)
        drop_segment(l, l->nsegs - 1);
    pthread_mutex_unlock(&l->mu);
    /* Whatever else is in the directory is ours too (checkpoints). */
    int dfd = dup(l->dir_fd);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (d) {
        struct dirent *de;
        rewinddir(d); /* the dup shares its offset with dir_fd */
        while ((de = readdir(d)) != NULL) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                continue;
            if (unlinkat(l->dir_fd, de->d_name, 0) < 0)
                rc = -1;
        }
        closedir(d);
    } else {
        if (dfd >= 0)
            close(dfd);
        rc = -1;
    }
    if (rmdir(l->dir) < 0)
        rc = -1;
    plog_free(l);
    return rc;
}

void plog_set_config(struct plog *l, const struct plog_config *cfg)
{
    pthread_mutex_lock(&l->mu);
    l->cfg = *cfg;
    segment_set_max_index_bytes(active(l), (size_t)cfg->segment_index_bytes);
    pthread_mutex_unlock(&l->mu);
}

/* ---- retention ---- */

int64_t plog_segment_largest_ts(const struct segment *s)
{
    if (s->max_ts >= 0)
        return s->max_ts;
    /* No timestamps at all: fall back to the file's age, as Kafka does. */
    struct stat st;
    if (fstat(s->log_fd, &st) < 0)
        return INT64_MAX;
    return (int64_t)st.st_mtime * 1000;
}

int plog_housekeep(struct plog *l, int64_t now_ms)
{
    pthread_mutex_lock(&l->mu);
    struct segment *a = active(l);
    if (!l->read_only && a->size > 0 && l->cfg.segment_ms >= 0 &&
        now_ms - a->roll_base_ms >= l->cfg.segment_ms)
        roll(l, l->leo, now_ms);
    int deleted = 0;
    while (l->nsegs > 1) {
        struct segment *s = l->segs[0];
        /* The cleaner is rewriting it: its turn comes after the swap. */
        if (s->cleaning)
            break;
        bool del = s->next_offset <= l->log_start;
        /* By size, Kafka's way: only while what is left still holds at
         * least retention_bytes. */
        if (!del && l->cfg.retention_bytes >= 0)
            del = l->size_bytes - s->size >= l->cfg.retention_bytes;
        if (!del && l->cfg.retention_ms >= 0)
            del = now_ms - plog_segment_largest_ts(s) > l->cfg.retention_ms;
        if (!del)
            break;
        drop_segment(l, 0);
        deleted++;
    }
    if (deleted) {
        if (l->log_start < l->segs[0]->base_offset)
            l->log_start = l->segs[0]->base_offset;
        epochs_truncate_start(l, l->log_start);
    }
    pthread_mutex_unlock(&l->mu);
    return deleted;
}

int plog_delete_records(struct plog *l, int64_t offset, int64_t *new_log_start)
{
    pthread_mutex_lock(&l->flush_mu);
    pthread_mutex_lock(&l->mu);
    if (offset == -1)
        offset = l->leo;
    if (offset < 0 || offset > l->leo) {
        *new_log_start = l->log_start;
        pthread_mutex_unlock(&l->mu);
        pthread_mutex_unlock(&l->flush_mu);
        return PLOG_ERR_OUT_OF_RANGE;
    }
    bool changed = offset > l->log_start;
    if (changed) {
        l->log_start = offset;
        epochs_truncate_start(l, offset);
    }
    int64_t value = l->log_start;
    *new_log_start = value;
    bool ro = l->read_only;
    pthread_mutex_unlock(&l->mu);

    int rc = ro ? PLOG_ERR_IO : PLOG_OK;
    if (changed && !ro && ckpt_write_offset(l->dir_fd, CKPT_LOG_START, value) < 0) {
        pthread_mutex_lock(&l->mu);
        plog_set_read_only(l, "writing the log start offset");
        pthread_mutex_unlock(&l->mu);
        rc = PLOG_ERR_IO;
    }
    pthread_mutex_unlock(&l->flush_mu);
    return rc;
}

/* ---- truncation ----
 *
 * Crash safety.  A truncation cuts several files (later segments
 * deleted from the last, the active one cut, then the epoch, recovery
 * point and log start checkpoints), so a kill in the middle would leave
 * a log longer than asked, or none at all.  Hence a redo record: the
 * `truncation` checkpoint (checkpoint.c) holds the target and is
 * written, durably, before the first cut; the cut is fsynced (segment
 * and directory) and the checkpoints written; only then is the record
 * removed (unlink, fsync of the directory).  plog_open redoes a
 * truncation whose record it finds, so a crash leaves the log as it
 * was or as the truncation makes it.  Everything runs under mu, fsyncs
 * included, so no append can land between the cut and the removal of
 * the record (a redo would cut it away); truncations are rare.
 */

enum plog_crash_point plog_crash_point = PLOG_CRASH_NONE;

/* A test's simulated crash at `p` (plog_int.h). */
static bool crash_at(enum plog_crash_point p)
{
    return plog_crash_point == p;
}

static int write_epochs(struct plog *l)
{
    if (ckpt_write_epochs(l->dir_fd, l->epochs, l->nepochs) < 0) {
        plog_set_read_only(l, "writing the leader epoch checkpoint");
        return PLOG_ERR_IO;
    }
    return PLOG_OK;
}

/*
 * Truncates to `offset` (full: empties the log and restarts it there),
 * holding swap_mu, flush_mu and mu, or alone during plog_open.  `redo`:
 * the truncation record already exists (plog_open found it).
 */
static int truncate_locked(struct plog *l, int64_t offset, bool full, bool redo)
{
    if (!full && offset >= l->leo) {
        /* No data goes, but an epoch starting at the log end does, as
         * Kafka's truncateTo does: a leader's plog_begin_epoch that no
         * append followed would otherwise claim the batches a follower
         * is about to fetch there. */
        if (epochs_truncate_end(l, l->leo) && write_epochs(l) != PLOG_OK)
            return PLOG_ERR_IO;
        goto done;
    }
    /* A clean reading the segments now must not swap in what it made
     * of them. */
    l->trunc_gen++;
    if (!redo && ckpt_write_truncation(l->dir_fd, offset, full) < 0) {
        plog_set_read_only(l, "writing the truncation checkpoint");
        return PLOG_ERR_IO;
    }
    if (crash_at(PLOG_CRASH_TRUNC_AFTER_RECORD))
        return PLOG_ERR_IO;
    /* What gets appended after the cut was never compacted: lower the
     * clean offset durably before cutting (cleaner.c relies on it). */
    if (cleaner_truncating(l, offset) < 0) {
        plog_set_read_only(l, "writing the cleaner checkpoint");
        return PLOG_ERR_IO;
    }
    int64_t old_rp = l->recovery_point, old_start = l->log_start;
    bool old_epochs = l->nepochs > 0;
    if (full || offset <= l->segs[0]->base_offset || offset < l->log_start) {
        /* Kafka's truncateFullyAndStartAt: nothing is left, not even the
         * epoch history (clearAndFlush). */
        while (l->nsegs > 0) {
            drop_segment(l, l->nsegs - 1);
            if (crash_at(PLOG_CRASH_TRUNC_AFTER_DROP))
                return PLOG_ERR_IO;
        }
        if (crash_at(PLOG_CRASH_TRUNC_AFTER_CUT))
            return PLOG_ERR_IO;
        if (restart_at(l, offset, wall_ms()) < 0) {
            plog_set_read_only(l, "truncating");
            return PLOG_ERR_IO;
        }
        l->nepochs = 0;
        l->flushed = offset;
        l->unflushed_records = 0;
        l->oldest_unflushed_ms = -1;
    } else {
        /* Later segments go from the last, so the log is a prefix of
         * itself at every step. */
        while (active(l)->base_offset >= offset) {
            drop_segment(l, l->nsegs - 1);
            if (crash_at(PLOG_CRASH_TRUNC_AFTER_DROP))
                return PLOG_ERR_IO;
        }
        struct segment *a = active(l);
        int64_t before = a->size;
        if (segment_unseal(a) != PLOG_OK ||
            segment_truncate(a, offset, l->cfg.index_interval_bytes) != PLOG_OK) {
            plog_set_read_only(l, "truncating");
            return PLOG_ERR_IO;
        }
        l->size_bytes -= before - a->size;
        l->leo = a->next_offset;
        /* The batch holding `offset` may have begun below the log start
         * (DeleteRecords into its middle): nothing is left above it. */
        if (l->log_start > l->leo)
            l->log_start = l->leo;
        if (crash_at(PLOG_CRASH_TRUNC_AFTER_CUT))
            return PLOG_ERR_IO;
    }
    if (l->flushed > l->leo)
        l->flushed = l->leo;
    if (l->recovery_point > active(l)->base_offset)
        l->recovery_point = active(l)->base_offset;
    active(l)->needs_sync = true;
    /* The cut is durable before the checkpoints describe it. */
    if (segment_sync(active(l)) < 0 || sio_fsync(l->dir_fd) < 0) {
        plog_set_read_only(l, "fsync after truncating");
        return PLOG_ERR_IO;
    }
    l->dir_dirty = false;
    bool epochs_changed = epochs_truncate_end(l, l->leo) || (old_epochs && l->nepochs == 0);
    if (epochs_changed && write_epochs(l) != PLOG_OK)
        return PLOG_ERR_IO;
    if (l->recovery_point != old_rp &&
        ckpt_write_offset(l->dir_fd, CKPT_RECOVERY_POINT, l->recovery_point) < 0) {
        plog_set_read_only(l, "writing the recovery point");
        return PLOG_ERR_IO;
    }
    if (l->log_start != old_start &&
        ckpt_write_offset(l->dir_fd, CKPT_LOG_START, l->log_start) < 0) {
        plog_set_read_only(l, "writing the log start offset");
        return PLOG_ERR_IO;
    }
    if (crash_at(PLOG_CRASH_TRUNC_BEFORE_DONE))
        return PLOG_ERR_IO;
    redo = true;
done:
    if (redo && ckpt_remove(l->dir_fd, CKPT_TRUNCATION) < 0) {
        plog_set_read_only(l, "removing the truncation checkpoint");
        return PLOG_ERR_IO;
    }
    return PLOG_OK;
}

static int truncate_public(struct plog *l, int64_t offset, bool full)
{
    if (offset < 0)
        return PLOG_ERR_OUT_OF_RANGE;
    pthread_mutex_lock(&l->swap_mu);
    pthread_mutex_lock(&l->flush_mu);
    pthread_mutex_lock(&l->mu);
    int rc = l->read_only ? PLOG_ERR_IO : truncate_locked(l, offset, full, false);
    pthread_mutex_unlock(&l->mu);
    pthread_mutex_unlock(&l->flush_mu);
    pthread_mutex_unlock(&l->swap_mu);
    return rc;
}

int plog_truncate_to(struct plog *l, int64_t offset)
{
    return truncate_public(l, offset, false);
}

int plog_truncate_fully_and_start_at(struct plog *l, int64_t offset)
{
    return truncate_public(l, offset, true);
}

/* ---- leader epochs: end offset ---- */

int plog_end_offset_for_epoch(struct plog *l, int32_t epoch, int32_t *out_epoch,
                              int64_t *out_end_offset)
{
    *out_epoch = -1;
    *out_end_offset = -1;
    pthread_mutex_lock(&l->mu);
    int n = l->nepochs;
    if (epoch >= 0 && n > 0 && epoch <= l->epochs[n - 1].epoch) {
        if (epoch == l->epochs[n - 1].epoch) {
            /* Still being written to (or the leader's current epoch). */
            *out_epoch = epoch;
            *out_end_offset = l->leo;
        } else {
            /* lo: the first entry with an epoch above the requested one
             * (exists: the latest is above it). */
            int lo = 0, hi = n - 1;
            while (lo < hi) {
                int mid = lo + (hi - lo) / 2;
                if (l->epochs[mid].epoch > epoch)
                    hi = mid;
                else
                    lo = mid + 1;
            }
            *out_epoch = lo > 0 ? l->epochs[lo - 1].epoch : epoch;
            *out_end_offset = l->epochs[lo].start_offset;
        }
    }
    pthread_mutex_unlock(&l->mu);
    return PLOG_OK;
}

/* ---- high watermark checkpoint ---- */

static int64_t clamp_hw(const struct plog *l, int64_t hw)
{
    return hw < l->log_start ? l->log_start : hw > l->leo ? l->leo : hw;
}

int plog_checkpoint_hw(struct plog *l, int64_t hw)
{
    if (hw < 0)
        return PLOG_ERR_OUT_OF_RANGE;
    /* flush_mu: one writer of the offset checkpoints at a time. */
    pthread_mutex_lock(&l->flush_mu);
    pthread_mutex_lock(&l->mu);
    bool ro = l->read_only;
    hw = clamp_hw(l, hw);
    bool same = hw == l->hw_ckpt;
    pthread_mutex_unlock(&l->mu);
    int rc = ro ? PLOG_ERR_IO : PLOG_OK;
    if (!ro && !same) {
        int w = ckpt_write_offset(l->dir_fd, CKPT_HIGH_WATERMARK, hw);
        pthread_mutex_lock(&l->mu);
        if (w < 0) {
            plog_set_read_only(l, "writing the high watermark");
            rc = PLOG_ERR_IO;
        } else {
            l->hw_ckpt = hw;
        }
        pthread_mutex_unlock(&l->mu);
    }
    pthread_mutex_unlock(&l->flush_mu);
    return rc;
}

int64_t plog_checkpointed_hw(struct plog *l)
{
    pthread_mutex_lock(&l->mu);
    int64_t v = l->hw_ckpt >= 0 ? clamp_hw(l, l->hw_ckpt) : -1;
    pthread_mutex_unlock(&l->mu);
    return v;
}

/* ---- offset for time ---- */

/* Reads the whole batch at pos into memory (malloc'ed). */
static uint8_t *read_batch(const struct segment *s, int64_t pos, const struct batch_hdr *h)
{
    size_t size = (size_t)batch_size(h);
    uint8_t *b = malloc(size);
    if (b && sio_pread_all(s->log_fd, b, size, pos) != (ssize_t)size) {
        free(b);
        b = NULL;
    }
    return b;
}

/*
 * In the batch at pos, the first record at or after min_offset whose
 * timestamp is >= ts (exact == ts when `exact`).  Falls back to the
 * batch's own first offset and max timestamp when the records cannot be
 * read.  Returns true when found.
 */
static bool search_batch(const struct segment *s, int64_t pos, const struct batch_hdr *h,
                         int64_t ts, bool exact, int64_t min_offset, int64_t *offset,
                         int64_t *found_ts)
{
    if (h->attributes & BATCH_ATTR_LOG_APPEND_TIME) {
        /* Every record carries the batch's append time. */
        *offset = h->base_offset > min_offset ? h->base_offset : min_offset;
        *found_ts = h->max_timestamp;
        return true;
    }
    uint8_t *b = read_batch(s, pos, h);
    struct batch_records rs;
    bool found = false;
    if (b && batch_records_begin(b, h, &rs) == PLOG_OK) {
        struct batch_record rec;
        while (batch_records_next(&rs, &rec) == 1) {
            int64_t rts = h->base_timestamp + rec.timestamp_delta;
            int64_t roff = h->base_offset + rec.offset_delta;
            if (roff >= min_offset && (exact ? rts == ts : rts >= ts)) {
                *offset = roff;
                *found_ts = rts;
                found = true;
                break;
            }
        }
        batch_records_end(&rs);
    }
    if (!b || (!found && h->max_timestamp >= ts && !exact)) {
        *offset = h->base_offset > min_offset ? h->base_offset : min_offset;
        *found_ts = h->max_timestamp;
        found = true;
    }
    free(b);
    return found;
}

int plog_offset_for_time(struct plog *l, int64_t ts, int64_t *offset, int64_t *found_ts)
{
    *offset = -1;
    *found_ts = -1;
    pthread_mutex_lock(&l->mu);
    if (ts == -1) { /* LATEST */
        *offset = l->leo;
        pthread_mutex_unlock(&l->mu);
        return PLOG_OK;
    }
    if (ts == -2) { /* EARLIEST */
        *offset = l->log_start;
        pthread_mutex_unlock(&l->mu);
        return PLOG_OK;
    }
    bool max_mode = ts == -3;
    int64_t min_offset = l->log_start;
    int i = 0;
    if (max_mode) {
        /* The (first) segment holding the largest timestamp. */
        int best = -1;
        for (int k = 0; k < l->nsegs; k++)
            if (l->segs[k]->next_offset > min_offset && l->segs[k]->max_ts >= 0 &&
                (best < 0 || l->segs[k]->max_ts > l->segs[best]->max_ts))
                best = k;
        if (best < 0) {
            pthread_mutex_unlock(&l->mu);
            return PLOG_OK;
        }
        i = best;
        ts = l->segs[best]->max_ts;
    }
    for (; i < l->nsegs; i++) {
        struct segment *s = l->segs[i];
        if (s->next_offset <= min_offset || s->max_ts < ts || s->size == 0)
            continue;
        /* Narrow down: every batch up to a time entry with a smaller
         * timestamp is too old; start from the batch indexed there. */
        int64_t from = min_offset;
        long t = index_lookup_time_before(&s->tidx, ts);
        if (t >= 0 && index_offset_at(&s->tidx, (size_t)t) > from)
            from = index_offset_at(&s->tidx, (size_t)t);
        long ix = index_lookup(&s->oidx, from);
        int64_t pos = ix >= 0 ? index_position_at(&s->oidx, (size_t)ix) : 0;
        int64_t limit = s->size;
        segment_ref(s);
        pthread_mutex_unlock(&l->mu);

        bool found = false;
        int rc = PLOG_OK;
        while (pos < limit && !found) {
            struct batch_hdr h;
            rc = segment_read_header(s, pos, limit, &h);
            if (rc != PLOG_OK)
                break;
            if (batch_last_offset(&h) >= min_offset &&
                (max_mode ? h.max_timestamp == ts : h.max_timestamp >= ts))
                found = search_batch(s, pos, &h, ts, max_mode, min_offset, offset, found_ts);
            pos += batch_size(&h);
        }
        int64_t searched_base = s->base_offset;
        segment_unref(s);
        if (found)
            return PLOG_OK;
        if (rc == PLOG_ERR_IO)
            return PLOG_ERR_IO;
        if (max_mode)
            return PLOG_OK;
        pthread_mutex_lock(&l->mu);
        /* The list may have changed while unlocked: continue after the
         * segment just searched. */
        i = find_segment(l, searched_base);
        if (l->segs[i]->base_offset > searched_base)
            i--;
    }
    pthread_mutex_unlock(&l->mu);
    return PLOG_OK;
}
