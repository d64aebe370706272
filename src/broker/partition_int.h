/*
 * partition_int: what partition.c shares with partition_follower.c, the
 * other half of the door to a partition's log.  Not for other files.
 */
#ifndef RUNNEL_PARTITION_INT_H
#define RUNNEL_PARTITION_INT_H

#include <stdint.h>

struct partition;

/* The Kafka error for a failed read or other log call (not appends). */
int16_t partition_kerr_from_log(int rc);
/* Wakes every fetch or produce waiting on the partition (takes wait_mu). */
void partition_wake_waiters(struct partition *p);

#endif
