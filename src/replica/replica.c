/*
 * The follower's fetchers (replica.h; threads and locks in README.md).
 *
 * One fetcher per leader broker, created when the first partition
 * follows that broker and kept, idle and disconnected, when the last one
 * leaves (replica_stop ends them all).  A fetcher's loop: pick the
 * partitions that are not backing off and mark them in flight, connect
 * when not connected, send one Fetch v12 naming them all, read the
 * answer, apply it partition by partition, clear the in-flight marks.
 *
 * What an answer does to a partition (Kafka's ReplicaFetcherThread and
 * AbstractFetcherThread):
 *   - NONE with a diverging epoch (KIP-320): truncate to
 *     min(diverging end offset, own end offset for that epoch) and fetch
 *     again, which validates the next older epoch if they still differ;
 *   - NONE with records: append them unchanged, then the high watermark
 *     and log start from the answer.  A first batch below the own log end
 *     means the batch boundaries differ, so the logs diverge there: the
 *     log is cut at that batch's base and the leader's batches appended
 *     (the leader holds everything from there, so nothing committed is
 *     lost).  This also catches a divergence that a leader without
 *     diverging-epoch support would leave unreported when boundaries
 *     differ;
 *   - OFFSET_OUT_OF_RANGE: below the leader's log start, restart empty
 *     there; above the leader's end, truncate to the leader's high
 *     watermark (at most its log end; what lies between is fetched
 *     again);
 *   - a leadership error or an unknown partition: back off backoff_ms
 *     (a replica_follow with another leader or epoch ends it at once);
 *   - anything else: back off and say so in the log.
 * A connection error closes the connection; the fetcher backs off and
 * reconnects, asking the lookup for the address each time.
 */
#include "replica/replica.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "broker/partition.h"
#include "broker/partition_follower.h"
#include "broker/topics.h"
#include "common/arena.h"
#include "common/clock.h"
#include "common/kbuf.h"
#include "common/kerr.h"
#include "common/rlog.h"
#include "common/sockio.h"
#include "proto/gen/msgs.h"

#define FETCH_VERSION 12
/* Record batch header: base offset (8), batch length (4), then the rest. */
#define BATCH_LOG_OVERHEAD 12
#define BATCH_MIN_SIZE 61

struct fetcher;

/* One followed partition.  Every field is under R.mu. */
struct rpart {
    struct rpart *next;
    struct fetcher *f;
    struct partition *p;
    int32_t leader_epoch;  /* sent as current_leader_epoch */
    int32_t sent_epoch;    /* the epoch of the request in flight */
    int64_t delayed_until; /* clock_mono_ms; 0 = not backing off */
    bool in_flight;        /* named by the request in flight */
    bool removed;          /* unfollowed: answers for it are dropped */
    bool abandoned;        /* its unfollow gave up waiting: the fetcher frees it */
};

struct fetcher {
    struct fetcher *next;
    int32_t leader_id;
    pthread_t thread;
    struct rpart *parts;
    int fd;       /* -1 when not connected; set and closed under R.mu */
    bool stop;    /* replica_stop */
    bool kicked;  /* a partition was added or re-epoched: ends a back-off */
    int32_t corr; /* correlation ids of this connection */
};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cond; /* in-flight marks cleared, partitions added, stop */
    bool started;
    struct replica_params params;
    char *client_id;
    replica_lookup_fn lookup;
    void *ctx;
    struct fetcher *fetchers;
} R = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* ---- waiting ---- */

static void deadline_in(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

/* Under R.mu: waits on R.cond at most ms (woken earlier by any change). */
static void wait_ms(int64_t ms)
{
    struct timespec ts;
    deadline_in(&ts, ms > 0 ? ms : 1);
    pthread_cond_timedwait(&R.cond, &R.mu, &ts);
}

/* ---- the connection ---- */

static uint32_t get_be32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static int64_t get_be64(const uint8_t *b)
{
    return (int64_t)((uint64_t)get_be32(b) << 32 | get_be32(b + 4));
}

/* ---- one round ---- */

/* Under R.mu: a partition's slot, or NULL. */
static struct rpart *find_rpart(struct partition *p)
{
    for (struct fetcher *f = R.fetchers; f; f = f->next)
        for (struct rpart *rp = f->parts; rp; rp = rp->next)
            if (rp->p == p && !rp->removed)
                return rp;
    return NULL;
}

static void rpart_free(struct rpart *rp)
{
    topic_put(rp->p->topic);
    free(rp);
}

/* Under R.mu: unlinks and frees the slots whose unfollow gave up. */
static void reap_abandoned(struct fetcher *f)
{
    for (struct rpart **pp = &f->parts; *pp;) {
        struct rpart *rp = *pp;
        if (rp->abandoned && !rp->in_flight) {
            *pp = rp->next;
            rpart_free(rp);
        } else {
            pp = &rp->next;
        }
    }
}

static void delay(struct rpart *rp)
{
    pthread_mutex_lock(&R.mu);
    rp->delayed_until = clock_mono_ms() + R.params.backoff_ms;
    pthread_mutex_unlock(&R.mu);
}

/* True when the answer for rp still applies (not unfollowed, same epoch). */
static bool still_current(struct rpart *rp)
{
    pthread_mutex_lock(&R.mu);
    bool ok = !rp->removed && rp->leader_epoch == rp->sent_epoch;
    pthread_mutex_unlock(&R.mu);
    return ok;
}

/* The whole batches at the front of recs (a leader may end a response
 * with a partial one, as Kafka's does). */
static size_t whole_batches(const uint8_t *b, size_t len)
{
    size_t at = 0;
    while (len - at >= BATCH_LOG_OVERHEAD) {
        uint32_t blen = get_be32(b + at + 8);
        if (blen < BATCH_MIN_SIZE - BATCH_LOG_OVERHEAD ||
            (size_t)blen > len - at - BATCH_LOG_OVERHEAD)
            break;
        at += BATCH_LOG_OVERHEAD + blen;
    }
    return at;
}

static const char *tname(const struct rpart *rp)
{
    return rp->p->topic->name;
}

/* KIP-320: the leader says our log diverges after `div`. */
static void apply_diverging(struct rpart *rp, const struct fetch_response_epoch_end_offset *div)
{
    struct partition *p = rp->p;
    int64_t log_end = -1, own_end = -1;
    int32_t last_epoch = -1, own_epoch = -1;
    if (partition_fetch_position(p, &log_end, &last_epoch) != KERR_NONE ||
        partition_end_offset_for_epoch(p, -1, div->epoch, true, &own_epoch, &own_end) !=
            KERR_NONE) {
        delay(rp);
        return;
    }
    /* Ours for the leader's epoch (or, when we never had it, for the
     * largest one below: the next fetch validates that one in turn). */
    int64_t to = own_end >= 0 ? own_end : log_end;
    if (div->end_offset >= 0 && div->end_offset < to)
        to = div->end_offset;
    rlog_info("replica %s-%d: diverges from leader %d at epoch %d offset %lld, truncating "
              "from %lld to %lld",
              tname(rp), (int)p->index, (int)rp->f->leader_id, (int)div->epoch,
              (long long)div->end_offset, (long long)log_end, (long long)to);
    if (partition_truncate_to(p, to) != KERR_NONE)
        delay(rp);
}

static void apply_records(struct rpart *rp, const struct fetch_response_partition_data *pd)
{
    struct partition *p = rp->p;
    const uint8_t *recs = pd->records.len > 0 ? pd->records.ptr : NULL;
    size_t len = recs ? whole_batches(recs, (size_t)pd->records.len) : 0;
    int16_t err = partition_append_follower(p, recs, len, pd->high_watermark, pd->log_start_offset);
    if (err == KERR_OFFSET_OUT_OF_RANGE && len > 0) {
        /* The leader's batch holding our log end starts below it: our
         * batches there are not the leader's (see the top). */
        int64_t base = get_be64(recs), log_end = -1;
        int32_t last_epoch;
        if (partition_fetch_position(p, &log_end, &last_epoch) == KERR_NONE && base < log_end) {
            rlog_info("replica %s-%d: the leader's batch at %lld spans our log end %lld, "
                      "truncating to it",
                      tname(rp), (int)p->index, (long long)base, (long long)log_end);
            err = partition_truncate_to(p, base);
            if (err == KERR_NONE)
                err = partition_append_follower(p, recs, len, pd->high_watermark,
                                                pd->log_start_offset);
        }
    }
    if (err != KERR_NONE) {
        rlog_warn("replica %s-%d: cannot append what leader %d sent: %s", tname(rp), (int)p->index,
                  (int)rp->f->leader_id, kerr_name(err));
        delay(rp);
    }
}

static void apply_out_of_range(struct rpart *rp, const struct fetch_response_partition_data *pd)
{
    struct partition *p = rp->p;
    int64_t log_end = -1;
    int32_t last_epoch;
    if (partition_fetch_position(p, &log_end, &last_epoch) != KERR_NONE) {
        delay(rp);
        return;
    }
    int16_t err = KERR_OFFSET_OUT_OF_RANGE;
    if (pd->log_start_offset >= 0 && log_end < pd->log_start_offset) {
        rlog_info("replica %s-%d: log end %lld below the leader's log start %lld, restarting "
                  "there",
                  tname(rp), (int)p->index, (long long)log_end, (long long)pd->log_start_offset);
        err = partition_truncate_fully(p, pd->log_start_offset);
    } else if (pd->high_watermark >= 0 && log_end > pd->high_watermark) {
        rlog_info("replica %s-%d: log end %lld past the leader's, truncating to its high "
                  "watermark %lld",
                  tname(rp), (int)p->index, (long long)log_end, (long long)pd->high_watermark);
        err = partition_truncate_to(p, pd->high_watermark);
    }
    if (err != KERR_NONE)
        delay(rp);
}

static void apply_partition(struct rpart *rp, const struct fetch_response_partition_data *pd)
{
    if (!still_current(rp))
        return;
    switch (pd->error_code) {
    case KERR_NONE:
        if (pd->diverging_epoch.epoch >= 0)
            apply_diverging(rp, &pd->diverging_epoch);
        else
            apply_records(rp, pd);
        break;
    case KERR_OFFSET_OUT_OF_RANGE:
        apply_out_of_range(rp, pd);
        break;
    case KERR_NOT_LEADER_OR_FOLLOWER:
    case KERR_FENCED_LEADER_EPOCH:
    case KERR_UNKNOWN_LEADER_EPOCH:
    case KERR_UNKNOWN_TOPIC_OR_PARTITION:
        rlog_debug("replica %s-%d: leader %d answers %s", tname(rp), (int)rp->p->index,
                   (int)rp->f->leader_id, kerr_name(pd->error_code));
        delay(rp);
        break;
    default:
        rlog_warn("replica %s-%d: leader %d answers %s", tname(rp), (int)rp->p->index,
                  (int)rp->f->leader_id, kerr_name(pd->error_code));
        delay(rp);
        break;
    }
}

/* Builds the Fetch for parts[0..n) into w (frame size prefix included). */
static int build_fetch(struct fetcher *f, struct rpart **parts, int n, kw_t *w, arena_t *a)
{
    struct fetch_request q;
    fetch_request_init(&q);
    q.replica_id = R.params.node_id;
    q.max_wait_ms = R.params.fetch_wait_max_ms;
    q.min_bytes = R.params.fetch_min_bytes;
    q.max_bytes = R.params.fetch_response_max_bytes;
    q.isolation_level = 0;
    q.session_id = 0;
    q.session_epoch = -1; /* a full fetch, no session */
    q.topics = arena_alloc(a, sizeof *q.topics * (size_t)n);
    struct fetch_request_fetch_partition *fps = arena_alloc(a, sizeof *fps * (size_t)n);
    if (!q.topics || !fps)
        return -1;
    /* Partitions of one topic go in one topic entry (same topic object). */
    q.topics_count = 0;
    int used = 0;
    for (int i = 0; i < n; i++) {
        struct topic *t = parts[i]->p->topic;
        bool seen = false;
        for (int j = 0; j < i && !seen; j++)
            seen = parts[j]->p->topic == t;
        if (seen)
            continue;
        struct fetch_request_fetch_topic *ft = &q.topics[q.topics_count++];
        fetch_request_fetch_topic_init(ft);
        ft->topic = kstr_c(t->name);
        ft->partitions = &fps[used];
        ft->partitions_count = 0;
        for (int j = i; j < n; j++) {
            if (parts[j]->p->topic != t)
                continue;
            struct partition *p = parts[j]->p;
            struct fetch_request_fetch_partition *fp = &fps[used++];
            fetch_request_fetch_partition_init(fp);
            int64_t log_end = 0;
            int32_t last_epoch = -1;
            struct partition_offsets o;
            if (partition_fetch_position(p, &log_end, &last_epoch) != KERR_NONE ||
                partition_offsets(p, &o) != KERR_NONE)
                o.log_start = -1; /* deleted: the leader's answer is dropped */
            fp->partition = p->index;
            fp->current_leader_epoch = parts[j]->sent_epoch;
            fp->fetch_offset = log_end;
            fp->last_fetched_epoch = last_epoch;
            fp->log_start_offset = o.log_start;
            fp->partition_max_bytes = R.params.fetch_max_bytes;
            ft->partitions_count++;
        }
    }
    kw_i32(w, 0); /* frame size, patched below */
    /* Request header v2 (Fetch is flexible from v12). */
    kw_i16(w, FETCH_API_KEY);
    kw_i16(w, FETCH_VERSION);
    kw_i32(w, ++f->corr);
    kw_str(w, kstr_c(R.client_id));
    kw_uvarint(w, 0);
    fetch_request_encode(w, FETCH_VERSION, &q);
    if (w->err)
        return -1;
    kw_patch_i32(w, 0, (int32_t)(w->len - 4));
    return 0;
}

/* Sends the request in w and reads the answer's frame; NULL on failure. */
static uint8_t *exchange(struct fetcher *f, int fd, kw_t *w, size_t *len)
{
    int tmo = R.params.socket_timeout_ms;
    uint8_t hdr[4];
    if (sockio_full(fd, w->buf, w->len, true, tmo) || sockio_full(fd, hdr, 4, false, tmo))
        return NULL;
    uint32_t size = get_be32(hdr);
    /* A response may pass max_bytes by one batch per partition (the
     * first one found is always whole); this bounds what we allocate. */
    uint64_t cap = (uint64_t)R.params.fetch_response_max_bytes + (256u << 20);
    uint8_t *resp;
    if (size < 4 || size > cap || !(resp = malloc(size)))
        return NULL;
    if (sockio_full(fd, resp, size, false, tmo) || (int32_t)get_be32(resp) != f->corr) {
        free(resp);
        return NULL;
    }
    *len = size;
    return resp;
}

/* Applies a decoded answer to the partitions in flight. */
static void apply_response(struct rpart **parts, int n, const struct fetch_response *resp)
{
    for (int32_t i = 0; i < resp->responses_count; i++) {
        const struct fetch_response_fetchable_topic_response *tr = &resp->responses[i];
        for (int32_t j = 0; j < tr->partitions_count; j++) {
            const struct fetch_response_partition_data *pd = &tr->partitions[j];
            for (int k = 0; k < n; k++) {
                struct rpart *rp = parts[k];
                if (rp->p->index == pd->partition_index && kstr_eq(tr->topic, tname(rp))) {
                    apply_partition(rp, pd);
                    break;
                }
            }
        }
    }
}

/* One round trip for parts[0..n): 0, or -1 when the connection failed. */
static int fetch_round(struct fetcher *f, int fd, struct rpart **parts, int n)
{
    kw_t w;
    kw_init(&w, 256);
    arena_t a;
    arena_init(&a);
    int rc = -1;
    size_t len = 0;
    uint8_t *frame = NULL;
    if (build_fetch(f, parts, n, &w, &a) || !(frame = exchange(f, fd, &w, &len)))
        goto out;
    kr_t r;
    kr_init(&r, frame + 4, len - 4);
    kr_skip_tags(&r); /* response header v1 */
    struct fetch_response resp;
    fetch_response_init(&resp);
    if (fetch_response_decode(&r, FETCH_VERSION, &resp, &a) || r.err) {
        rlog_warn("replica: cannot decode the Fetch answer of broker %d", (int)f->leader_id);
        goto out;
    }
    if (resp.error_code != KERR_NONE) {
        rlog_warn("replica: broker %d answers Fetch with %s", (int)f->leader_id,
                  kerr_name(resp.error_code));
        goto out;
    }
    apply_response(parts, n, &resp);
    rc = 0;
out:
    free(frame);
    arena_free(&a);
    kw_free(&w);
    return rc;
}

/* Under R.mu, released while connecting: the fetcher's connection, or -1. */
static int ensure_connected(struct fetcher *f)
{
    if (f->fd >= 0)
        return f->fd;
    pthread_mutex_unlock(&R.mu);
    char host[256];
    int port = 0, fd = -1;
    if (R.lookup(R.ctx, f->leader_id, host, sizeof host, &port) == 0)
        fd = sockio_dial(host, port, R.params.socket_timeout_ms);
    pthread_mutex_lock(&R.mu);
    if (fd >= 0 && f->stop) {
        close(fd);
        fd = -1;
    }
    if (fd < 0)
        rlog_debug("replica: broker %d not reachable", (int)f->leader_id);
    f->fd = fd;
    f->corr = 0;
    return fd;
}

static void disconnect(struct fetcher *f)
{
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
}

/* Under R.mu: waits backoff_ms after a connection failure.  The
 * condition variable is shared, so other fetchers' rounds wake it: the
 * deadline is kept; only a stop or a change of this fetcher's partitions
 * ends it early. */
static void backoff(struct fetcher *f)
{
    int64_t until = clock_mono_ms() + R.params.backoff_ms, now;
    f->kicked = false;
    while (!f->stop && !f->kicked && (now = clock_mono_ms()) < until)
        wait_ms(until - now);
}

static void *fetcher_main(void *arg)
{
    struct fetcher *f = arg;
    struct rpart **parts = NULL;
    int cap = 0;
    pthread_mutex_lock(&R.mu);
    while (!f->stop) {
        reap_abandoned(f);
        int64_t now = clock_mono_ms(), next_due = -1;
        int n = 0, total = 0;
        for (struct rpart *rp = f->parts; rp; rp = rp->next) {
            if (rp->removed)
                continue;
            total++;
            if (rp->delayed_until > now) {
                if (next_due < 0 || rp->delayed_until < next_due)
                    next_due = rp->delayed_until;
                continue;
            }
            if (n == cap) {
                int ncap = cap ? 2 * cap : 16;
                struct rpart **np = realloc(parts, sizeof *np * (size_t)ncap);
                if (!np)
                    break;
                parts = np;
                cap = ncap;
            }
            rp->delayed_until = 0;
            /* In flight from here: an unfollow waits until it is back. */
            rp->in_flight = true;
            rp->sent_epoch = rp->leader_epoch;
            parts[n++] = rp;
        }
        if (n == 0) {
            /* Idle: nobody to fetch, or everyone backing off. */
            if (total == 0)
                disconnect(f);
            wait_ms(next_due < 0 ? 1000 : next_due - now);
            continue;
        }
        int fd = ensure_connected(f);
        if (fd < 0 || f->stop) {
            for (int i = 0; i < n; i++)
                parts[i]->in_flight = false;
            pthread_cond_broadcast(&R.cond);
            backoff(f);
            continue;
        }
        /* Answers for partitions unfollowed or re-epoched meanwhile are
         * dropped (still_current); new ones wait for the next round. */
        int sent = n;
        pthread_mutex_unlock(&R.mu);
        int rc = fetch_round(f, fd, parts, sent);
        pthread_mutex_lock(&R.mu);
        for (int i = 0; i < sent; i++)
            parts[i]->in_flight = false;
        pthread_cond_broadcast(&R.cond);
        if (rc) {
            rlog_debug("replica: connection to broker %d failed, backing off", (int)f->leader_id);
            disconnect(f);
            backoff(f);
        }
    }
    disconnect(f);
    pthread_mutex_unlock(&R.mu);
    free(parts);
    return NULL;
}

/* ---- the public side ---- */

int replica_start(const struct replica_params *params, replica_lookup_fn lookup, void *ctx)
{
    pthread_mutex_lock(&R.mu);
    if (R.started) {
        pthread_mutex_unlock(&R.mu);
        return -1;
    }
    R.params = *params;
    R.client_id = strdup(params->client_id ? params->client_id : "runnel-replica");
    if (!R.client_id) {
        pthread_mutex_unlock(&R.mu);
        return -1;
    }
    R.params.client_id = R.client_id;
    if (R.params.fetch_max_bytes <= 0)
        R.params.fetch_max_bytes = 1048576;
    if (R.params.fetch_response_max_bytes <= 0)
        R.params.fetch_response_max_bytes = 10485760;
    if (R.params.fetch_wait_max_ms < 0)
        R.params.fetch_wait_max_ms = 500;
    if (R.params.backoff_ms <= 0)
        R.params.backoff_ms = 1000;
    if (R.params.socket_timeout_ms <= 0)
        R.params.socket_timeout_ms = 30000;
    R.lookup = lookup;
    R.ctx = ctx;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&R.cond, &ca);
    pthread_condattr_destroy(&ca);
    R.started = true;
    pthread_mutex_unlock(&R.mu);
    return 0;
}

/* Under R.mu: takes rp out of its fetcher once no request includes it. */
static void detach(struct rpart *rp)
{
    rp->removed = true;
    struct timespec ts;
    deadline_in(&ts, (int64_t)R.params.socket_timeout_ms + R.params.fetch_wait_max_ms);
    while (rp->in_flight)
        if (pthread_cond_timedwait(&R.cond, &R.mu, &ts) == ETIMEDOUT)
            break;
    if (rp->in_flight) {
        /* The fetcher drops the answer (removed) and frees the slot. */
        rlog_warn("replica %s-%d: a fetch from broker %d is still in flight after %d ms", tname(rp),
                  (int)rp->p->index, (int)rp->f->leader_id,
                  (int)(R.params.socket_timeout_ms + R.params.fetch_wait_max_ms));
        rp->abandoned = true;
        return;
    }
    for (struct rpart **pp = &rp->f->parts; *pp; pp = &(*pp)->next) {
        if (*pp == rp) {
            *pp = rp->next;
            break;
        }
    }
    rpart_free(rp);
}

static struct fetcher *fetcher_for(int32_t leader_id)
{
    for (struct fetcher *f = R.fetchers; f; f = f->next)
        if (f->leader_id == leader_id)
            return f;
    struct fetcher *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->leader_id = leader_id;
    f->fd = -1;
    if (pthread_create(&f->thread, NULL, fetcher_main, f)) {
        free(f);
        return NULL;
    }
    f->next = R.fetchers;
    R.fetchers = f;
    return f;
}

void replica_follow(struct partition *p, int32_t leader_id, int32_t leader_epoch)
{
    pthread_mutex_lock(&R.mu);
    if (!R.started) {
        pthread_mutex_unlock(&R.mu);
        return;
    }
    struct rpart *rp = find_rpart(p);
    if (rp && rp->f->leader_id == leader_id) {
        if (rp->leader_epoch != leader_epoch) {
            rp->leader_epoch = leader_epoch;
            rp->delayed_until = 0;
            rp->f->kicked = true;
            pthread_cond_broadcast(&R.cond);
        }
        pthread_mutex_unlock(&R.mu);
        return;
    }
    if (rp)
        detach(rp); /* another leader: never two fetches of one partition */
    struct fetcher *f = fetcher_for(leader_id);
    if (!f || !(rp = calloc(1, sizeof *rp))) {
        rlog_error("replica %s-%d: cannot follow broker %d: out of resources", p->topic->name,
                   (int)p->index, (int)leader_id);
        pthread_mutex_unlock(&R.mu);
        return;
    }
    atomic_fetch_add(&p->topic->refs, 1);
    rp->p = p;
    rp->f = f;
    rp->leader_epoch = leader_epoch;
    rp->next = f->parts;
    f->parts = rp;
    f->kicked = true;
    pthread_cond_broadcast(&R.cond);
    pthread_mutex_unlock(&R.mu);
}

void replica_unfollow(struct partition *p)
{
    pthread_mutex_lock(&R.mu);
    struct rpart *rp = R.started ? find_rpart(p) : NULL;
    if (rp)
        detach(rp);
    pthread_mutex_unlock(&R.mu);
}

void replica_stop(void)
{
    pthread_mutex_lock(&R.mu);
    if (!R.started) {
        pthread_mutex_unlock(&R.mu);
        return;
    }
    for (struct fetcher *f = R.fetchers; f; f = f->next) {
        f->stop = true;
        /* Ends a blocked connect or read at once (the fd is closed only
         * under R.mu, so it is still this connection's). */
        if (f->fd >= 0)
            shutdown(f->fd, SHUT_RDWR);
    }
    pthread_cond_broadcast(&R.cond);
    struct fetcher *fs = R.fetchers;
    R.fetchers = NULL;
    pthread_mutex_unlock(&R.mu);
    while (fs) {
        struct fetcher *f = fs;
        fs = f->next;
        pthread_join(f->thread, NULL);
        while (f->parts) {
            struct rpart *rp = f->parts;
            f->parts = rp->next;
            rpart_free(rp);
        }
        free(f);
    }
    pthread_mutex_lock(&R.mu);
    free(R.client_id);
    R.client_id = NULL;
    pthread_cond_destroy(&R.cond);
    R.started = false;
    pthread_mutex_unlock(&R.mu);
}
