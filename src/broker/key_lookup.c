#include "broker/key_lookup.h"

#include <stdlib.h>
#include <string.h>

#include "broker/topics.h"
#include "common/kerr.h"
#include "storage/keyindex.h"

/* A match copied out of its batch (which is gone once the partition's
 * search moves on): the record fields point into `data`. */
struct found {
    struct key_lookup_record r;
    uint8_t *data;
};

struct collect {
    struct found *v;
    size_t n, cap;
    size_t limit;
    const struct key_lookup_cursor *after;
    int32_t partition;
    bool more;
    bool oom;
};

static int cmp_order(int64_t ts1, int32_t p1, int64_t o1, int64_t ts2, int32_t p2, int64_t o2)
{
    if (ts1 != ts2)
        return ts1 < ts2 ? -1 : 1;
    if (p1 != p2)
        return p1 < p2 ? -1 : 1;
    return o1 < o2 ? -1 : o1 > o2;
}

static int cmp_found(const void *a, const void *b)
{
    const struct key_lookup_record *x = &((const struct found *)a)->r,
                                   *y = &((const struct found *)b)->r;
    return cmp_order(x->timestamp, x->partition, x->offset, y->timestamp, y->partition, y->offset);
}

/* Keeps the first `limit` (sorted); frees the rest. */
static void trim(struct collect *c)
{
    if (c->n > 1)
        qsort(c->v, c->n, sizeof *c->v, cmp_found);
    for (size_t i = c->limit; i < c->n; i++)
        free(c->v[i].data);
    if (c->n > c->limit) {
        c->more = true;
        c->n = c->limit;
    }
}

static int on_match(void *arg, const struct keyindex_match *m)
{
    struct collect *c = arg;
    const struct batch_record *rec = m->record;
    if (c->after && cmp_order(m->timestamp, c->partition, m->offset, c->after->timestamp,
                              c->after->partition, c->after->offset) <= 0)
        return 0;
    if (c->n == c->cap) {
        /* Bounded memory: never more than twice the limit held. */
        if (c->n >= 2 * c->limit)
            trim(c);
        if (c->n == c->cap) {
            size_t ncap = c->cap ? c->cap * 2 : 64;
            struct found *nv = realloc(c->v, ncap * sizeof *nv);
            if (!nv) {
                c->oom = true;
                return 1;
            }
            c->v = nv;
            c->cap = ncap;
        }
    }
    size_t klen = rec->key ? (size_t)rec->key_len : 0;
    size_t vlen = rec->value ? (size_t)rec->value_len : 0;
    size_t hlen = (size_t)(rec->headers_end - rec->headers);
    uint8_t *d = malloc(klen + vlen + hlen + 1);
    if (!d) {
        c->oom = true;
        return 1;
    }
    struct found *f = &c->v[c->n++];
    f->data = d;
    f->r.partition = c->partition;
    f->r.offset = m->offset;
    f->r.timestamp = m->timestamp;
    f->r.log_append_time = m->log_append_time;
    f->r.key = rec->key ? memcpy(d, rec->key, klen) : NULL;
    f->r.key_len = rec->key ? rec->key_len : -1;
    f->r.value = rec->value ? memcpy(d + klen, rec->value, vlen) : NULL;
    f->r.value_len = rec->value ? rec->value_len : -1;
    f->r.header_count = rec->header_count;
    f->r.headers = memcpy(d + klen + vlen, rec->headers, hlen);
    f->r.headers_end = f->r.headers + hlen;
    return 0;
}

int key_lookup(const char *topic, size_t topic_len, const void *key, size_t key_len,
               int64_t since_ms, const struct key_lookup_cursor *after, size_t limit,
               void (*fn)(void *arg, const struct key_lookup_record *r), void *arg, bool *more)
{
    *more = false;
    if (limit == 0)
        limit = 1;
    /* Nothing before the cursor's timestamp can come after it. */
    if (after && after->timestamp > since_ms)
        since_ms = after->timestamp;
    struct topic *t = topics_get(topic, topic_len);
    if (!t)
        return KEY_LOOKUP_UNKNOWN_TOPIC;
    /* A snapshot replaced just after this read only answers as it
     * would have a moment ago. */
    if (!topic_settings(t)->key_index) {
        topic_put(t);
        return KEY_LOOKUP_NOT_INDEXED;
    }
    struct collect c = {.limit = limit, .after = after};
    int rc = KEY_LOOKUP_OK;
    int32_t np = topic_partition_count(t);
    for (int32_t i = 0; i < np && rc == KEY_LOOKUP_OK; i++) {
        struct partition *p = topic_partition(t, i);
        if (!p)
            continue;
        c.partition = i;
        /* A partition deleted meanwhile has nothing to find. */
        int16_t err = partition_key_find(p, key, key_len, since_ms, on_match, &c);
        if (err != KERR_NONE && err != KERR_UNKNOWN_TOPIC_OR_PARTITION)
            rc = KEY_LOOKUP_IO;
        if (c.oom)
            rc = KEY_LOOKUP_IO;
    }
    topic_put(t);
    if (rc == KEY_LOOKUP_OK) {
        trim(&c);
        for (size_t i = 0; i < c.n; i++)
            fn(arg, &c.v[i].r);
        *more = c.more;
    }
    for (size_t i = 0; i < c.n; i++)
        free(c.v[i].data);
    free(c.v);
    return rc;
}
