/*
 * plog_epochs: the leader epoch history of a partition (Kafka's
 * LeaderEpochFileCache), l->epochs: which leader epoch wrote the
 * batches from which offset on.  Kept in memory under mu and written
 * whole, under mu, to `leader-epoch-checkpoint` (Kafka's format; the
 * table is at the top of checkpoint.c) whenever it changes: by an
 * append that starts an epoch (plog.c), plog_begin_epoch (here),
 * plog_open (rebuilt or trimmed) and truncation (plog_truncate.c).
 *
 * Here: the list operations the other plog files use (assign, trim at
 * either end, rebuild from the batch headers when the checkpoint is
 * unreadable), plog_begin_epoch, plog_leader_epoch and
 * plog_end_offset_for_epoch (OffsetForLeaderEpoch, Fetch's diverging
 * epoch).  Entries strictly increase in both epoch and start offset.
 */
#include "storage/plog.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "storage/batch.h"
#include "storage/checkpoint.h"
#include "storage/plog_int.h"
#include "storage/segment.h"

/* ---- the list ---- */

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
bool plog_epochs_truncate_end(struct plog *l, int64_t end)
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
bool plog_epochs_truncate_start(struct plog *l, int64_t start)
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
int plog_epochs_rebuild(struct plog *l)
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

/* Adds `epoch` starting at `start` to the history if it is newer than
 * the latest (Kafka's assign); true when added.  Under mu. */
int plog_epochs_assign(struct plog *l, int32_t epoch, int64_t start, bool *added)
{
    *added = false;
    if (epoch < 0 || (l->nepochs > 0 && epoch <= l->epochs[l->nepochs - 1].epoch))
        return 0;
    if (epochs_add(l, epoch, start) < 0)
        return -1;
    *added = true;
    return 0;
}

/* ---- public ---- */

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

/* ---- end offset of an epoch ---- */

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
