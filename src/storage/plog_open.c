/*
 * plog_open: bringing a partition directory up and down.  plog_open
 * lists the directory, removes what interrupted operations left
 * (`*.tmp`, `*.deleted`, compaction leftovers once cleaner_recover has
 * finished or undone an interrupted clean, index files without a log),
 * loads and recovers the segments by the rules in plog.h and
 * storage/README.md (after a crash, whatever may not have reached the
 * disk whole is rescanned and cut at the first bad batch), reads the
 * checkpoints, and finishes a truncation a crash interrupted
 * (plog_truncate.c).  plog_close and plog_destroy are here too.
 *
 * Files written: `leader-epoch-checkpoint` when it was unreadable
 * (rebuilt from the batch headers) or reaches outside the recovered log
 * (format: the table at the top of checkpoint.c); finishing a
 * truncation writes what plog_truncate.c writes; segment files are cut
 * by segment.c.  plog_open takes no lock: nothing else can see the plog
 * until it returns.
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
#include "storage/keyindex.h"
#include "storage/plog_int.h"
#include "storage/segment.h"

/* ---- listing the directory ---- */

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

/* ---- loading the segments ---- */

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
    if (plog_push_segment(l, s) < 0) {
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

/* ---- open ---- */

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

    int64_t now = plog_wall_ms();
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
            if (segment_unseal(plog_active(l)) != PLOG_OK) {
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
        if (plog_restart_at(l, ckpt_start, now) < 0) {
            errf(err, errlen, "%s: creating segment: %s", dir, strerror(errno));
            plog_free(l);
            return -1;
        }
    } else {
        struct segment *a = plog_active(l);
        l->leo = a->next_offset;
        l->log_start = l->segs[0]->base_offset;
        if (ckpt_start > l->log_start)
            l->log_start = ckpt_start;
        if (l->log_start > l->leo) {
            /* DeleteRecords went further than the data that survived. */
            if (plog_restart_at(l, l->log_start, now) < 0) {
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
    if (l->recovery_point > plog_active(l)->base_offset)
        l->recovery_point = plog_active(l)->base_offset;
    l->flushed = clean ? l->leo : l->recovery_point;

    struct epoch_entry *e;
    int ne;
    rc = ckpt_read_epochs(l->dir_fd, &e, &ne);
    bool write_epochs = false;
    if (rc < 0) {
        rlog_warn("partition %s: unreadable %s, rebuilding it from the log", dir,
                  CKPT_LEADER_EPOCH);
        if (plog_epochs_rebuild(l) < 0) {
            errf(err, errlen, "%s: out of memory", dir);
            plog_free(l);
            return -1;
        }
        write_epochs = true;
    } else {
        l->epochs = e;
        l->nepochs = l->cap_epochs = ne;
    }
    write_epochs |= plog_epochs_truncate_end(l, l->leo);
    write_epochs |= plog_epochs_truncate_start(l, l->log_start);
    cleaner_load_checkpoint(l);
    if (write_epochs && ckpt_write_epochs(l->dir_fd, l->epochs, l->nepochs) < 0) {
        errf(err, errlen, "%s: writing %s: %s", dir, CKPT_LEADER_EPOCH, strerror(errno));
        plog_free(l);
        return -1;
    }

    /* A truncation interrupted by a crash is finished now (the record
     * is described at the top of plog_truncate.c). */
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
        if (plog_truncate_locked(l, trunc_to, trunc_full, true) != PLOG_OK) {
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

/* ---- close / destroy ---- */

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
        plog_drop_segment(l, l->nsegs - 1);
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
