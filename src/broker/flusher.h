/*
 * flusher: group commit.
 *
 * Produces that must not be acknowledged before their data is on disk
 * (flush.sync=true, or flush.messages/flush.ms due) hand a flush_wait to
 * the flusher thread and go pending.  The thread takes everything queued
 * since its last round, fsyncs each partition involved once, and wakes
 * all those requests together: one fsync serves every produce that
 * arrived while the previous one ran (RocketMQ's GroupCommitService,
 * Redis's AOF flush in beforeSleep).
 *
 * Thread: one, started by the broker.  Lock: the queue's mutex, held
 * only to link or swap the list, never across an fsync.
 */
#ifndef RUNNEL_FLUSHER_H
#define RUNNEL_FLUSHER_H

#include <stdbool.h>

#include "net/loop.h"

struct partition;

struct flush_wait {
    struct flush_wait *next;
    struct partition **parts; /* to fsync; kept alive by the submitter */
    bool *failed;             /* per part, set by the flusher */
    int n;
    /* Attached: woken on its loop when done.  Detached (acks=0): NULL,
     * and on_detached_done runs on the flusher thread instead. */
    struct loop_wake *wake;
    void (*on_detached_done)(struct flush_wait *fw);
};

int flusher_start(void);
/* Finishes what is queued, then stops the thread. */
void flusher_stop(void);
void flusher_submit(struct flush_wait *fw);

#endif
