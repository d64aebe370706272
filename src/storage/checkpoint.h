/*
 * checkpoint: the small text files of a partition directory that record
 * the leader epoch history, the log start offset, the recovery point,
 * the high watermark and a truncation in progress.
 * Formats: the tables at the top of checkpoint.c.  Every write replaces
 * the file atomically and durably (tmp, fsync, rename, fsync dir).
 */
#ifndef RUNNEL_CHECKPOINT_H
#define RUNNEL_CHECKPOINT_H

#include <stdbool.h>
#include <stdint.h>

#define CKPT_LEADER_EPOCH "leader-epoch-checkpoint"
#define CKPT_LOG_START "log-start-offset"
#define CKPT_RECOVERY_POINT "recovery-point"
#define CKPT_HIGH_WATERMARK "high-watermark"
#define CKPT_TRUNCATION "truncation"

struct epoch_entry {
    int32_t epoch;
    int64_t start_offset;
};

/* 0 written, -1 with errno. */
int ckpt_write_offset(int dir_fd, const char *name, int64_t value);
/* 0 read, 1 file absent, -1 unreadable or malformed. */
int ckpt_read_offset(int dir_fd, const char *name, int64_t *value);

int ckpt_write_epochs(int dir_fd, const struct epoch_entry *e, int n);
/* *e is malloc'ed (NULL when n == 0).  0, 1 absent, -1 malformed. */
int ckpt_read_epochs(int dir_fd, struct epoch_entry **e, int *n);

/* The redo record of a truncation in progress (plog_truncate.c): the
 * target and whether the log is emptied and restarted there.  0
 * written, -1. */
int ckpt_write_truncation(int dir_fd, int64_t offset, bool full);
/* 0 read, 1 absent, -1 unreadable or malformed. */
int ckpt_read_truncation(int dir_fd, int64_t *offset, bool *full);

/* Removes dir/name durably (unlink, fsync of the directory); absent is
 * fine.  0, or -1 with errno. */
int ckpt_remove(int dir_fd, const char *name);

#endif
