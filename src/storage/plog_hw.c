/*
 * plog_hw: the high watermark checkpoint of a partition, the
 * `high-watermark` file beside its segments (one per partition rather
 * than Kafka's one replication-offset-checkpoint per log directory: why
 * in storage/README.md; format: the table at the top of checkpoint.c).
 * plog_open reads it into l->hw_ckpt; plog_checkpoint_hw writes it,
 * under flush_mu (one writer of the offset checkpoints) without mu,
 * and skips the write when the value has not changed.  The value is
 * clamped to [log start, log end] when written and when read, so a
 * truncation or recovery that cut the log below it needs no rewrite.
 */
#include "storage/plog.h"

#include <pthread.h>
#include <stdbool.h>

#include "storage/checkpoint.h"
#include "storage/plog_int.h"

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
