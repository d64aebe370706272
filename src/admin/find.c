/*
 * GET /v1/messages?topic=T&key=K: a topic's records by key, from its key
 * index (topic config key.index=true; broker/key_lookup.h).
 *
 *   topic     the topic (required)
 *   key       the key as text, or
 *   key_b64   the key in standard base64, for one that is not text
 *   since     only records with a timestamp at or after it: milliseconds
 *             since the epoch or ISO 8601 (admin_parse_time)
 *   limit     records per answer, 1..10000 (default 1000)
 *   after     continue after this place: the `next` of the previous answer
 *
 * Answer: {"topic", "key", "messages": [...], "truncated": bool, "next"}:
 * matches in (timestamp, partition, offset) order, each as
 * GET /v1/messages/{topic}/{partition}/{offset} gives a record; `next`
 * ("TIMESTAMP:PARTITION:OFFSET" of the last one) only when truncated.
 * A record matches when its key, or a space-separated token of its
 * "keys" header (RocketMQ's KEYS, any case), is exactly the key.
 *
 * Errors: 400 bad or missing parameter, 404 unknown topic, 409 no key
 * index on the topic, 500 the log could not be read.  The search runs on
 * the admin thread; a key found in every batch of a large topic reads
 * all those batches (narrow it with since).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_int.h"
#include "broker/key_lookup.h"

#define FIND_DEFAULT_LIMIT 1000
#define FIND_MAX_LIMIT 10000

struct page {
    json_t *messages;
    const char *topic;
    struct key_lookup_cursor last;
    bool oom;
};

static void add_record(void *arg, const struct key_lookup_record *r)
{
    struct page *pg = arg;
    json_t *o = json_object();
    json_t *hs =
        admin_json_headers(r->headers, (size_t)(r->headers_end - r->headers), r->header_count);
    if (!o || !hs) {
        json_decref(o);
        json_decref(hs);
        pg->oom = true;
        return;
    }
    json_object_set_new(o, "topic", json_string(pg->topic));
    json_object_set_new(o, "partition", json_integer(r->partition));
    json_object_set_new(o, "offset", json_integer(r->offset));
    json_object_set_new(o, "timestamp", json_integer(r->timestamp));
    json_object_set_new(o, "timestamp_type",
                        json_string(r->log_append_time ? "LogAppendTime" : "CreateTime"));
    admin_json_bytes(o, "key", r->key, r->key_len);
    json_object_set_new(o, "headers", hs);
    admin_json_bytes(o, "value", r->value, r->value_len);
    if (json_array_append_new(pg->messages, o))
        pg->oom = true;
    pg->last.timestamp = r->timestamp;
    pg->last.partition = r->partition;
    pg->last.offset = r->offset;
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Standard base64, padding optional: the bytes (malloc'ed) or NULL. */
static uint8_t *b64_decode(const char *s, size_t *len)
{
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '=')
        n--;
    if (n % 4 == 1)
        return NULL;
    uint8_t *out = malloc(n / 4 * 3 + 3);
    if (!out)
        return NULL;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value(s[i]);
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    *len = o;
    return out;
}

/* "TIMESTAMP:PARTITION:OFFSET" */
static int parse_cursor(const char *s, struct key_lookup_cursor *c)
{
    char buf[96];
    if (strlen(s) >= sizeof buf)
        return -1;
    strcpy(buf, s);
    char *p1 = strchr(buf, ':'), *p2 = p1 ? strchr(p1 + 1, ':') : NULL;
    if (!p2)
        return -1;
    *p1 = *p2 = 0;
    int64_t part;
    if (admin_parse_i64(buf, INT64_MIN, INT64_MAX, &c->timestamp) ||
        admin_parse_i64(p1 + 1, 0, INT32_MAX, &part) ||
        admin_parse_i64(p2 + 1, -1, INT64_MAX, &c->offset))
        return -1;
    c->partition = (int32_t)part;
    return 0;
}

int admin_handle_messages_by_key(const struct admin_request *rq, json_t **body)
{
    const char *topic = admin_query(rq, "topic");
    const char *key = admin_query(rq, "key"), *key_b64 = admin_query(rq, "key_b64");
    const char *since_s = admin_query(rq, "since"), *limit_s = admin_query(rq, "limit");
    const char *after_s = admin_query(rq, "after");
    if (!topic || !*topic) {
        *body = admin_error("give the topic as ?topic=NAME");
        return 400;
    }
    if (!key == !key_b64) {
        *body = admin_error("give the key as ?key=TEXT or ?key_b64=BASE64 (one of the two)");
        return 400;
    }
    int64_t since = -1, limit = FIND_DEFAULT_LIMIT;
    if (since_s && admin_parse_time(since_s, &since)) {
        *body = admin_error("since='%s' is not milliseconds since the epoch or an ISO 8601 time "
                            "(YYYY-MM-DDTHH:MM:SSZ)",
                            since_s);
        return 400;
    }
    if (limit_s && admin_parse_i64(limit_s, 1, FIND_MAX_LIMIT, &limit)) {
        *body =
            admin_error("limit='%s' is not a whole number from 1 to %d", limit_s, FIND_MAX_LIMIT);
        return 400;
    }
    struct key_lookup_cursor after;
    if (after_s && parse_cursor(after_s, &after)) {
        *body = admin_error("after='%s' is not TIMESTAMP:PARTITION:OFFSET (the 'next' of an "
                            "earlier answer)",
                            after_s);
        return 400;
    }
    uint8_t *kb = NULL;
    size_t klen = key ? strlen(key) : 0;
    if (key_b64 && !(kb = b64_decode(key_b64, &klen))) {
        *body = admin_error("key_b64 is not base64");
        return 400;
    }
    const void *k = kb ? (const void *)kb : (const void *)key;

    struct page pg = {.messages = json_array(), .topic = topic};
    bool more = false;
    int rc = pg.messages ? key_lookup(topic, strlen(topic), k, klen, since, after_s ? &after : NULL,
                                      (size_t)limit, add_record, &pg, &more)
                         : KEY_LOOKUP_IO;
    int status = 200;
    if (rc == KEY_LOOKUP_UNKNOWN_TOPIC) {
        *body = admin_error("unknown topic '%s'", topic);
        status = 404;
    } else if (rc == KEY_LOOKUP_NOT_INDEXED) {
        *body = admin_error("topic '%s' has no key index; set key.index=true (runnel topic alter "
                            "%s --config key.index=true)",
                            topic, topic);
        status = 409;
    } else if (rc != KEY_LOOKUP_OK || pg.oom) {
        *body = admin_error("looking up the key failed: the log could not be read (see the "
                            "broker's log)");
        status = 500;
    } else {
        json_t *o = json_object();
        json_object_set_new(o, "topic", json_string(topic));
        admin_json_bytes(o, "key", k, (int32_t)klen);
        json_object_set(o, "messages", pg.messages);
        json_object_set_new(o, "truncated", json_boolean(more));
        if (more) {
            char next[96];
            snprintf(next, sizeof next, "%lld:%d:%lld", (long long)pg.last.timestamp,
                     pg.last.partition, (long long)pg.last.offset);
            json_object_set_new(o, "next", json_string(next));
        }
        *body = o;
    }
    json_decref(pg.messages);
    free(kb);
    return status;
}
