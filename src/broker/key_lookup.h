/*
 * key_lookup: a topic's records by key, across its partitions, from the
 * key index (storage/keyindex.h; topic config key.index=true).  What the
 * admin API's GET /v1/messages?topic=&key= and `runnel message find`
 * answer with.
 *
 * Runs on the caller's thread (not a network thread: it reads the log).
 * Each partition is searched with partition_key_find (its log_lock
 * shared meanwhile).
 */
#ifndef RUNNEL_KEY_LOOKUP_H
#define RUNNEL_KEY_LOOKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct key_lookup_record {
    int32_t partition;
    int64_t offset;
    int64_t timestamp;
    bool log_append_time; /* timestamp is the broker's (LogAppendTime) */
    const uint8_t *key;   /* NULL when null */
    int32_t key_len;      /* -1 when null */
    const uint8_t *value;
    int32_t value_len;
    /* header_count headers, read with batch_record_header (batch.h) */
    int32_t header_count;
    const uint8_t *headers, *headers_end;
};

enum key_lookup_status {
    KEY_LOOKUP_OK = 0,
    KEY_LOOKUP_UNKNOWN_TOPIC = -1,
    KEY_LOOKUP_NOT_INDEXED = -2, /* key.index is false for the topic */
    KEY_LOOKUP_IO = -3,          /* a log could not be read, or out of memory */
};

/* A place in the answer's order, to continue after (paging). */
struct key_lookup_cursor {
    int64_t timestamp;
    int32_t partition;
    int64_t offset;
};

/*
 * Gives fn the first `limit` records (limit > 0), in (timestamp,
 * partition, offset) order, whose key or a token of whose "keys" header
 * is exactly `key`, whose timestamp is at least since_ms (-1: any) and
 * that come after `after` in that order (NULL: from the start).  *more
 * is set when more records matched; the last one given is then where
 * the next page starts.  The record is valid during the call only.
 * Memory: at most twice `limit` records are held.  Returns a
 * key_lookup_status.
 */
int key_lookup(const char *topic, size_t topic_len, const void *key, size_t key_len,
               int64_t since_ms, const struct key_lookup_cursor *after, size_t limit,
               void (*fn)(void *arg, const struct key_lookup_record *r), void *arg, bool *more);

#endif
