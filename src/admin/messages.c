/*
 * GET /v1/messages/{topic}/{partition}/{offset}: the record at an offset
 * (or the next one, when compaction left a gap there);
 * GET /v1/messages/{topic}/{partition}?at=TIME: the first record whose
 * timestamp is at or after TIME.
 *
 * Records are read like a fetch reads them: partition_read finds the
 * batch holding the offset (below the high watermark, so nothing a
 * consumer could not see), the batch is read from its segment file and its
 * records iterated, decompressing when needed.  Control batches are not
 * records a producer wrote and are skipped.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin/admin_int.h"
#include "broker/topics.h"
#include "common/kerr.h"
#include "storage/batch.h"

/* Batches read looking for a record before giving up; a search stops in
 * the first batch unless compaction emptied batch tails. */
#define MAX_BATCHES_SCANNED 10000

struct found {
    int status; /* 200 when a record was found */
    json_t *body;
};

static int read_fully(int fd, uint8_t *buf, size_t len, int64_t pos)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(fd, buf + done, len - done, (off_t)(pos + (int64_t)done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        done += (size_t)n;
    }
    return 0;
}

static json_t *record_json(const char *topic, int32_t partition, const struct batch_hdr *h,
                           const struct batch_record *rec)
{
    bool append_time = h->attributes & BATCH_ATTR_LOG_APPEND_TIME;
    int64_t ts = append_time ? h->max_timestamp : h->base_timestamp + rec->timestamp_delta;
    json_t *o = json_object();
    json_object_set_new(o, "topic", json_string(topic));
    json_object_set_new(o, "partition", json_integer(partition));
    json_object_set_new(o, "offset", json_integer(h->base_offset + rec->offset_delta));
    json_object_set_new(o, "timestamp", json_integer(ts));
    json_object_set_new(o, "timestamp_type",
                        json_string(append_time ? "LogAppendTime" : "CreateTime"));
    admin_json_bytes(o, "key", rec->key, rec->key_len);
    json_t *hs = admin_json_headers(rec->headers, (size_t)(rec->headers_end - rec->headers),
                                    rec->header_count);
    if (!hs) {
        json_decref(o);
        return NULL;
    }
    json_object_set_new(o, "headers", hs);
    admin_json_bytes(o, "value", rec->value, rec->value_len);
    return o;
}

/*
 * Looks through the batches in buf for the first record at or after
 * `offset` with a timestamp >= min_ts (-1: any).  Returns 1 with *out
 * set, 0 when none is in buf (*next: where to look next), -1 when the
 * bytes are corrupt.
 */
static int scan_batches(const char *topic, int32_t partition, const uint8_t *buf, size_t len,
                        int64_t offset, int64_t min_ts, json_t **out, int64_t *next)
{
    size_t pos = 0;
    while (pos + BATCH_HEADER_SIZE <= len) {
        struct batch_hdr h;
        if (batch_parse_header(buf + pos, len - pos, (int64_t)(len - pos), &h) != 0)
            return -1;
        const uint8_t *b = buf + pos;
        pos += (size_t)batch_size(&h);
        *next = batch_last_offset(&h) + 1;
        if (batch_last_offset(&h) < offset || (h.attributes & BATCH_ATTR_CONTROL))
            continue;
        if (min_ts >= 0 && h.max_timestamp < min_ts)
            continue;
        struct batch_records rs;
        if (batch_records_begin(b, &h, &rs) != 0)
            return -1;
        struct batch_record rec;
        int rc;
        while ((rc = batch_records_next(&rs, &rec)) == 1) {
            int64_t ts = h.attributes & BATCH_ATTR_LOG_APPEND_TIME
                             ? h.max_timestamp
                             : h.base_timestamp + rec.timestamp_delta;
            if (h.base_offset + rec.offset_delta < offset || (min_ts >= 0 && ts < min_ts))
                continue;
            *out = record_json(topic, partition, &h, &rec);
            batch_records_end(&rs);
            return *out ? 1 : -1;
        }
        batch_records_end(&rs);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static struct found fail(int status, json_t *err)
{
    return (struct found){status, err};
}

/* The first record at or after offset (and at or after min_ts, when >= 0). */
static struct found find_record(struct topic *t, struct partition *p, int64_t offset,
                                int64_t min_ts)
{
    int32_t partition = p->index;
    int64_t asked = offset;
    for (int scanned = 0; scanned < MAX_BATCHES_SCANNED; scanned++) {
        struct partition_offsets po;
        if (partition_offsets(p, &po) != KERR_NONE)
            return fail(404, admin_error("topic '%s' was deleted", t->name));
        int64_t start = po.log_start, hw = po.high_watermark;
        if (offset < start && min_ts >= 0)
            offset = start; /* retention moved past the time's first record */
        if (offset < start || offset >= hw) {
            if (min_ts >= 0)
                return fail(404, admin_error("no record in %s-%d has a timestamp at or after "
                                             "the time asked",
                                             t->name, partition));
            if (scanned > 0)
                return fail(404, admin_error("no record at or after offset %lld in %s-%d",
                                             (long long)asked, t->name, partition));
            if (start >= hw)
                return fail(404, admin_error("offset %lld is out of range: %s-%d holds no "
                                             "records (log start and end offset %lld)",
                                             (long long)offset, t->name, partition, (long long)hw));
            return fail(404, admin_error("offset %lld is out of range: %s-%d holds offsets "
                                         "%lld to %lld",
                                         (long long)offset, t->name, partition, (long long)start,
                                         (long long)hw - 1));
        }
        struct partition_read r = {.offset = offset,
                                   .max_bytes = 1,
                                   .max_offset = hw,
                                   .current_leader_epoch = -1,
                                   .reader = PARTITION_READER_DEBUG};
        int16_t err = partition_read(p, &r);
        if (err == KERR_OFFSET_OUT_OF_RANGE)
            continue; /* retention ran between the two looks: check again */
        if (err == KERR_UNKNOWN_TOPIC_OR_PARTITION)
            return fail(404, admin_error("topic '%s' was deleted", t->name));
        if (err != KERR_NONE)
            return fail(500, admin_error("cannot read %s-%d", t->name, partition));
        if (r.fd < 0) {
            partition_range_release(r.ref);
            return fail(404, admin_error("no record at or after offset %lld in %s-%d",
                                         (long long)asked, t->name, partition));
        }
        uint8_t *buf = malloc((size_t)r.len);
        int io = buf ? read_fully(r.fd, buf, (size_t)r.len, r.file_pos) : -1;
        partition_range_release(r.ref);
        if (io) {
            free(buf);
            return fail(500, admin_error("cannot read %s-%d: %s", t->name, partition,
                                         buf ? strerror(errno) : "out of memory"));
        }
        json_t *rec = NULL;
        int64_t next = offset;
        int found =
            scan_batches(t->name, partition, buf, (size_t)r.len, offset, min_ts, &rec, &next);
        free(buf);
        if (found < 0)
            return fail(500, admin_error("corrupt record batch in %s-%d near offset %lld", t->name,
                                         partition, (long long)offset));
        if (found)
            return (struct found){200, rec};
        if (next <= offset)
            next = offset + 1;
        offset = next;
    }
    return fail(404, admin_error("no record found within %d batches", MAX_BATCHES_SCANNED));
}

/* Resolves {topic} and {partition}: 0, or an error status with *body set. */
static int lookup(const struct admin_request *rq, struct topic **t, struct partition **p,
                  json_t **body)
{
    const char *name = admin_path_param(rq, 0), *ps = admin_path_param(rq, 1);
    int64_t pi;
    if (admin_parse_i64(ps, 0, INT32_MAX, &pi)) {
        *body = admin_error("partition '%s' is not a whole number >= 0", ps);
        return 400;
    }
    *t = topics_get(name, strlen(name));
    if (!*t || atomic_load(&(*t)->deleted)) {
        *body = admin_error("unknown topic '%s'", name);
        return 404;
    }
    *p = topic_partition(*t, (int32_t)pi);
    if (!*p) {
        *body = admin_error("topic '%s' has no partition %lld (it has %d)", name, (long long)pi,
                            topic_partition_count(*t));
        return 404;
    }
    return 0;
}

int admin_handle_message_at(const struct admin_request *rq, json_t **body)
{
    const char *os = admin_path_param(rq, 2);
    int64_t offset;
    if (admin_parse_i64(os, 0, INT64_MAX, &offset)) {
        *body = admin_error("offset '%s' is not a whole number >= 0", os);
        return 400;
    }
    struct topic *t = NULL;
    struct partition *p = NULL;
    int status = lookup(rq, &t, &p, body);
    if (status) {
        topic_put(t);
        return status;
    }
    struct found f = find_record(t, p, offset, -1);
    topic_put(t);
    *body = f.body;
    return f.status;
}

int admin_handle_message_by_time(const struct admin_request *rq, json_t **body)
{
    const char *at = admin_query(rq, "at");
    int64_t ts;
    if (!at) {
        *body = admin_error("give the time as ?at=MILLISECONDS or ?at=YYYY-MM-DDTHH:MM:SSZ");
        return 400;
    }
    if (admin_parse_time(at, &ts)) {
        *body = admin_error("at='%s' is not milliseconds since the epoch or an ISO 8601 time "
                            "with a zone (2026-11-22T10:00:00Z)",
                            at);
        return 400;
    }
    struct topic *t = NULL;
    struct partition *p = NULL;
    int status = lookup(rq, &t, &p, body);
    if (status) {
        topic_put(t);
        return status;
    }
    /* The time index finds the first batch whose newest record is that
     * recent; the scan then picks the record inside it. */
    int64_t offset = -1, found_ts = -1;
    int16_t err = partition_offset_for_time(p, ts, &offset, &found_ts);
    struct found f;
    if (err != KERR_NONE)
        f = fail(500, admin_error("cannot search %s-%d by time", t->name, p->index));
    else if (offset < 0)
        f = fail(404, admin_error("no record in %s-%d has a timestamp at or after %s", t->name,
                                  p->index, at));
    else
        f = find_record(t, p, offset, ts);
    topic_put(t);
    *body = f.body;
    return f.status;
}
