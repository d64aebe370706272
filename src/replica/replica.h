/*
 * replica: the follower's fetchers.  For every partition this broker
 * follows, a fetcher thread per leader broker fetches from the leader
 * with the Kafka Fetch API (v12, replica_id = this broker) and appends
 * what it gets unchanged (broker/partition_follower.h), truncating where
 * the leader says the logs diverge.  See src/replica/README.md.
 */
#ifndef RUNNEL_REPLICA_H
#define RUNNEL_REPLICA_H

#include <stddef.h>
#include <stdint.h>

struct partition;

struct replica_params {
    int32_t node_id;                  /* this broker: the Fetch's replica_id */
    int32_t fetch_max_bytes;          /* replica.fetch.max.bytes 1048576 (per partition) */
    int32_t fetch_response_max_bytes; /* replica.fetch.response.max.bytes 10485760 */
    int32_t fetch_wait_max_ms;        /* replica.fetch.wait.max.ms 500 */
    int32_t fetch_min_bytes;          /* replica.fetch.min.bytes 1 */
    int32_t backoff_ms;               /* replica.fetch.backoff.ms 1000 */
    int32_t socket_timeout_ms;        /* replica.socket.timeout.ms 30000 */
    const char *client_id;            /* copied */
};

/* The address of a broker: 0 and host/port filled, or non-zero when the
 * broker is not known (the fetcher backs off and asks again). */
typedef int (*replica_lookup_fn)(void *ctx, int32_t broker_id, char *host, size_t hostlen,
                                 int *port);

/* Keeps the parameters and the lookup; starts no thread yet.  0, or -1
 * (already started, or out of memory). */
int replica_start(const struct replica_params *params, replica_lookup_fn lookup, void *ctx);

/*
 * Fetches `p` from leader_id with leader_epoch as its current_leader_epoch:
 * starts, or moves it from another leader (waiting as replica_unfollow
 * does), or only takes the new epoch (and forgets a back-off).
 * Idempotent.  Holds a reference to p's topic while the partition is
 * followed.  The fetcher does not look at the partition's own leadership
 * fields: the caller decides who leads.
 */
void replica_follow(struct partition *p, int32_t leader_id, int32_t leader_epoch);

/*
 * Stops fetching `p`.  Returns once no fetch including it is in flight
 * (or after socket_timeout_ms + fetch_wait_max_ms when one hangs: the
 * fetcher then drops its answer), so the caller may make it leader.
 * No-op for a partition not followed.
 */
void replica_unfollow(struct partition *p);

/* Ends every fetcher thread and drops every partition (and its topic
 * reference).  replica_start may be called again afterwards. */
void replica_stop(void);

#endif
