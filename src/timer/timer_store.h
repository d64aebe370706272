/*
 * timer_store: the durable store of records held back until a time.
 *
 * Delayed records, records waiting for their next retry and transactional
 * half messages all wait here (src/delivery/ decides what goes in and what
 * a due entry turns into).  Each entry is the whole record (topic,
 * partition, timestamp, key, value, headers) appended to a segmented log
 * under <log.dirs>/runnel-timer/; memory holds only a 16-byte heap slot
 * per pending entry (due time, id), plus a small index of half messages
 * by (topic, txn id).  The file format is the table at the top of
 * timer_store.c.
 *
 * Entries are immutable except for a few mutable fields (state, checks,
 * due) rewritten in place, so releasing an entry costs one small pwrite.
 * A segment whose entries are all done is deleted.
 *
 * Exactly-once release across a crash: whoever appends entries to a
 * partition first writes an intent (timer_store_intent_begin), then
 * appends, then marks the entries done (timer_store_mark, which also
 * clears the intent).  After a crash between the two, the intent left
 * behind says which batch to look for; the caller checks the partition
 * (delivery/release.c) and marks or leaves the entries.
 *
 * Threads and locks: one mutex inside guards everything; every call is
 * thread-safe.  Disk reads of entry bodies happen outside it, and so do
 * the fsyncs of timer_store_sync (a second mutex keeps syncs one at a
 * time).  Callbacks (counts_by_topic, list) run without the lock.
 *
 * Errors: a failed write or fsync makes the store read-only (every call
 * that writes returns -EIO from then on; reads still work), as the
 * partition log does.  See src/timer/README.md.
 */
#ifndef RUNNEL_TIMER_STORE_H
#define RUNNEL_TIMER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum timer_kind {
    TIMER_DELAY = 1, /* delayed or scheduled record */
    TIMER_RETRY = 2, /* a consumer group's retry, waiting for its backoff */
    TIMER_HALF = 3,  /* transactional half message */
};
#define TIMER_KIND_COUNT 4 /* index bound for per-kind arrays */

enum timer_state {
    TIMER_PENDING = 0,
    TIMER_DONE = 1,      /* released, or committed and released */
    TIMER_DISCARDED = 2, /* rolled back, unanswered, or target gone */
};

/* What to store (all pointers are copied; nothing kept). */
struct timer_entry_in {
    enum timer_kind kind;
    int64_t due_ms;     /* wall clock, Unix ms */
    int64_t created_ms; /* when the broker accepted it */
    const char *topic;
    size_t topic_len;
    int32_t partition;
    int64_t timestamp; /* the record's own timestamp */
    const uint8_t *key;
    int32_t key_len; /* -1: null */
    const uint8_t *value;
    int32_t value_len; /* -1: null */
    int32_t header_count;
    const uint8_t *headers; /* record-format headers, as in a batch */
    size_t headers_len;
    /* TIMER_HALF only (else NULL / 0). */
    const char *producer_group;
    size_t producer_group_len;
    const uint8_t *txn_id;
    size_t txn_id_len;
};

/* An entry read back; every pointer points into `buf` (owned). */
struct timer_entry {
    uint64_t id; /* its global position: stable, unique, increasing */
    enum timer_kind kind;
    enum timer_state state;
    int checks; /* TIMER_HALF: check requests sent so far */
    int64_t due_ms;
    int64_t created_ms;
    const char *topic; /* NUL-terminated */
    int32_t partition;
    int64_t timestamp;
    const uint8_t *key;
    int32_t key_len;
    const uint8_t *value;
    int32_t value_len;
    int32_t header_count;
    const uint8_t *headers;
    size_t headers_len;
    const char *producer_group; /* NUL-terminated, "" when none */
    const uint8_t *txn_id;
    size_t txn_id_len;
    uint8_t *buf;
};
void timer_entry_free(struct timer_entry *e); /* frees buf; e itself is the caller's */

struct timer_store_config {
    int64_t segment_bytes; /* roll after this many bytes (default 64 MiB) */
};

struct timer_store;

/*
 * Opens (creating) the store in `dir` and recovers: checks every entry's
 * CRC, truncates a torn tail of the last segment, rebuilds the heap from
 * the pending entries and the half index, deletes segments with nothing
 * pending.  0, or -1 with a message.
 */
int timer_store_open(const char *dir, const struct timer_store_config *cfg,
                     struct timer_store **out, char *err, size_t errlen);
/* fsyncs and closes. */
void timer_store_close(struct timer_store *ts);

/*
 * Appends a pending entry (written to the page cache; durable after the
 * next timer_store_sync).  TIMER_HALF needs a txn id that no pending or
 * remembered half of the same topic has (else -EEXIST).  0 or -errno:
 * -EINVAL for bad input (no topic, lengths out of range, a half without
 * a txn id), -EMSGSIZE above 1 GiB, -EIO when read-only.
 */
int timer_store_add(struct timer_store *ts, const struct timer_entry_in *in, uint64_t *id_out);
/*
 * Appends n entries (none TIMER_HALF) with as few writes as the segment
 * size allows; ids (may be NULL) get their ids.  On an error some of the
 * first entries may have been added (their ids are set); 0 or -errno.
 */
int timer_store_add_many(struct timer_store *ts, const struct timer_entry_in *in, int n,
                         uint64_t *ids);
/* Syncs what was appended or rewritten since the last call (segments,
 * the intent file, then the directory after a file was created or
 * deleted).  0, or -EIO (the store is then read-only). */
int timer_store_sync(struct timer_store *ts);

/* Earliest due time of a pending entry; INT64_MAX when none.  May be the
 * time of a stale slot (an entry since marked or moved): take_due then
 * returns nothing and drops that slot. */
int64_t timer_store_next_due(struct timer_store *ts);

/*
 * Takes up to `max` pending entries due at or before now_ms, in (due, id)
 * order, out of the heap and reads them into out[0..n).  Entries no longer
 * pending, or whose due time moved (timer_store_reschedule), are
 * skipped, and so are halves claimed at that moment (unclaim puts them
 * back).  Taken entries stay pending on disk: the caller must mark them
 * (done / discarded) or reschedule them; until then they are out of the
 * heap (and of timer_store_list), and a restart brings them back.
 * Returns n, or -errno.
 */
int timer_store_take_due(struct timer_store *ts, int64_t now_ms, struct timer_entry *out, int max);

/* Puts a taken (or any pending) entry back with a new due time and check
 * count (checks < 0: unchanged; saturates at 255).  Does nothing unless
 * it is pending (an unknown id included).  0 or -errno. */
int timer_store_reschedule(struct timer_store *ts, uint64_t id, int64_t due_ms, int checks);

/*
 * Sets the state of entries (TIMER_DONE or TIMER_DISCARDED); entries not
 * pending, and ids that name no entry, are left alone.  Clears the intent
 * if one is open.  A segment whose last pending entry this was (and that
 * is not being written) is deleted.  0 or -errno.
 */
int timer_store_mark(struct timer_store *ts, const uint64_t *ids, int n, enum timer_state state);

/*
 * The intent written before appending entries to a partition; see the
 * top of this file.  `records_crc` is the CRC-32C of the batch's records
 * section (what plog_append never rewrites), `log_end` the partition's
 * log end offset read just before the append (the batch lands at or
 * after it).
 *
 * The intent is written to the page cache like everything else: if the
 * batch can reach the disk before the next timer_store_sync (a partition
 * with flush.sync), call timer_store_sync between intent_begin and the
 * append, or a power loss can keep the batch and lose the intent.
 */
struct timer_intent {
    char topic[256];
    int32_t partition;
    int64_t log_end;
    int32_t record_count;
    uint32_t records_crc;
    int n_ids;
    uint64_t *ids; /* malloc'ed by timer_store_open's recovery */
};
/* 0, -EINVAL (topic empty or not NUL-terminated in 255, n_ids outside
 * 0..1048576), or -EIO. */
int timer_store_intent_begin(struct timer_store *ts, const struct timer_intent *in);
/* The intent left open by a crash, if any (true); the caller frees ids.
 * It stays until resolved (mark, intent_clear, or a new intent_begin). */
bool timer_store_open_intent(struct timer_store *ts, struct timer_intent *out);
/* Forgets the open intent without marking anything (batch not found). */
int timer_store_intent_clear(struct timer_store *ts);

/*
 * Half messages by (topic, txn id).  Claim atomically moves a pending
 * half to "claimed" (so a concurrent commit, rollback or check cannot
 * also act on it) and reads it into *out; the caller then releases it and
 * marks it done, or marks it discarded.  Returns 0, -ENOENT (never seen,
 * or forgotten), or -EALREADY with *state_out the final state it reached
 * (or TIMER_PENDING when another caller holds the claim).  out may be
 * NULL (claim only), and so may state_out.  A decided half is remembered
 * until its segment is deleted (once nothing in it is pending).
 */
int timer_store_claim_half(struct timer_store *ts, const char *topic, size_t topic_len,
                           const uint8_t *txn_id, size_t txn_id_len, struct timer_entry *out,
                           enum timer_state *state_out);
/* Looks a half message up without claiming it: 0 with its state
 * (TIMER_PENDING also while claimed), or -ENOENT. */
int timer_store_half_state(struct timer_store *ts, const char *topic, size_t topic_len,
                           const uint8_t *txn_id, size_t txn_id_len, enum timer_state *state_out);
/* Gives a claim back without a decision (e.g. the append failed). */
void timer_store_unclaim_half(struct timer_store *ts, uint64_t id);

/* ---- views for the admin API and the CLI ---- */

struct timer_counts {
    int64_t pending[TIMER_KIND_COUNT]; /* indexed by enum timer_kind */
    int64_t total;
    int64_t segments;
    int64_t disk_bytes;
};
void timer_store_counts(struct timer_store *ts, struct timer_counts *out);

/* Pending entries per topic and kind: calls fn once per (topic, kind). */
void timer_store_counts_by_topic(struct timer_store *ts,
                                 void (*fn)(void *arg, const char *topic, enum timer_kind kind,
                                            int64_t count),
                                 void *arg);

/*
 * The first `limit` pending entries in (due, id) order, optionally only
 * of one topic (NULL: all) and one kind (0: all); fn gets each read
 * entry (valid during the call).  Returns the number listed or -errno.
 * Copies the heap (16 bytes per pending entry): meant for admin views.
 */
int timer_store_list(struct timer_store *ts, const char *topic, enum timer_kind kind, int limit,
                     void (*fn)(void *arg, const struct timer_entry *e), void *arg);

#endif
