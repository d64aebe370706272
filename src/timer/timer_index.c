/*
 * The half index and the per-topic counts (see timer_index.h).
 */
#include "timer/timer_index.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MIN_BUCKETS 64

/* FNV-1a, continued from h. */
static uint32_t fnv(uint32_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 16777619u;
    }
    return h;
}

static uint32_t key_hash(const char *topic, size_t tl, const uint8_t *txn, size_t xl)
{
    /* The topic length goes in too, so ("ab","c") and ("a","bc") differ. */
    uint32_t h = fnv(2166136261u, topic, tl);
    uint16_t l = (uint16_t)tl;
    h = fnv(h, &l, sizeof l);
    return fnv(h, txn, xl);
}

/* Ids are byte positions, so their low bits are far from uniform. */
static size_t id_bucket(uint64_t id, size_t nbuckets)
{
    id ^= id >> 33;
    id *= 0xff51afd7ed558ccdULL;
    id ^= id >> 33;
    return (size_t)(id & (nbuckets - 1));
}

static int halves_grow(struct timer_halves *h)
{
    size_t nb = h->nbuckets ? h->nbuckets * 2 : MIN_BUCKETS;
    struct timer_half **bk = calloc(nb, sizeof *bk), **bi = calloc(nb, sizeof *bi);
    if (!bk || !bi) {
        free(bk);
        free(bi);
        return -ENOMEM;
    }
    for (size_t i = 0; i < h->nbuckets; i++) {
        for (struct timer_half *x = h->by_key[i], *next; x; x = next) {
            next = x->next_key;
            size_t j = x->hash & (nb - 1);
            x->next_key = bk[j];
            bk[j] = x;
        }
        for (struct timer_half *x = h->by_id[i], *next; x; x = next) {
            next = x->next_id;
            size_t j = id_bucket(x->id, nb);
            x->next_id = bi[j];
            bi[j] = x;
        }
    }
    free(h->by_key);
    free(h->by_id);
    h->by_key = bk;
    h->by_id = bi;
    h->nbuckets = nb;
    return 0;
}

struct timer_half *timer_halves_find(const struct timer_halves *h, const char *topic,
                                     size_t topic_len, const uint8_t *txn, size_t txn_len)
{
    if (!h->nbuckets)
        return NULL;
    uint32_t hash = key_hash(topic, topic_len, txn, txn_len);
    for (struct timer_half *x = h->by_key[hash & (h->nbuckets - 1)]; x; x = x->next_key)
        if (x->hash == hash && x->topic_len == topic_len && x->txn_len == txn_len &&
            !memcmp(x->key, topic, topic_len) && !memcmp(x->key + topic_len, txn, txn_len))
            return x;
    return NULL;
}

struct timer_half *timer_halves_find_id(const struct timer_halves *h, uint64_t id)
{
    if (!h->nbuckets)
        return NULL;
    for (struct timer_half *x = h->by_id[id_bucket(id, h->nbuckets)]; x; x = x->next_id)
        if (x->id == id)
            return x;
    return NULL;
}

struct timer_half *timer_halves_add(struct timer_halves *h, uint64_t id, const char *topic,
                                    size_t topic_len, const uint8_t *txn, size_t txn_len)
{
    if (topic_len > UINT16_MAX || txn_len > UINT16_MAX)
        return NULL;
    if (h->n >= h->nbuckets && halves_grow(h) < 0 && !h->nbuckets)
        return NULL; /* a failed grow is fine while there are buckets */
    struct timer_half *x = malloc(sizeof *x + topic_len + txn_len);
    if (!x)
        return NULL;
    x->id = id;
    x->hash = key_hash(topic, topic_len, txn, txn_len);
    x->state = TIMER_PENDING;
    x->claimed = false;
    x->lost_slot = false;
    x->topic_len = (uint16_t)topic_len;
    x->txn_len = (uint16_t)txn_len;
    memcpy(x->key, topic, topic_len);
    if (txn_len)
        memcpy(x->key + topic_len, txn, txn_len);
    size_t k = x->hash & (h->nbuckets - 1), i = id_bucket(id, h->nbuckets);
    x->next_key = h->by_key[k];
    h->by_key[k] = x;
    x->next_id = h->by_id[i];
    h->by_id[i] = x;
    h->n++;
    return x;
}

void timer_halves_remove(struct timer_halves *h, struct timer_half *x)
{
    struct timer_half **p = &h->by_key[x->hash & (h->nbuckets - 1)];
    while (*p != x)
        p = &(*p)->next_key;
    *p = x->next_key;
    p = &h->by_id[id_bucket(x->id, h->nbuckets)];
    while (*p != x)
        p = &(*p)->next_id;
    *p = x->next_id;
    h->n--;
    free(x);
}

size_t timer_halves_forget(struct timer_halves *h, uint64_t lo, uint64_t hi)
{
    size_t removed = 0;
    for (size_t i = 0; i < h->nbuckets; i++) {
        for (struct timer_half *x = h->by_id[i], *next; x; x = next) {
            next = x->next_id;
            if (x->id >= lo && x->id < hi) {
                timer_halves_remove(h, x);
                removed++;
            }
        }
    }
    return removed;
}

void timer_halves_free(struct timer_halves *h)
{
    for (size_t i = 0; i < h->nbuckets; i++)
        for (struct timer_half *x = h->by_key[i], *next; x; x = next) {
            next = x->next_key;
            free(x);
        }
    free(h->by_key);
    free(h->by_id);
    memset(h, 0, sizeof *h);
}

static int topics_grow(struct timer_topics *t)
{
    size_t nb = t->nbuckets ? t->nbuckets * 2 : MIN_BUCKETS;
    struct timer_topic **b = calloc(nb, sizeof *b);
    if (!b)
        return -ENOMEM;
    for (size_t i = 0; i < t->nbuckets; i++)
        for (struct timer_topic *x = t->b[i], *next; x; x = next) {
            next = x->next;
            x->next = b[x->hash & (nb - 1)];
            b[x->hash & (nb - 1)] = x;
        }
    free(t->b);
    t->b = b;
    t->nbuckets = nb;
    return 0;
}

int timer_topics_add(struct timer_topics *t, const char *topic, size_t len, enum timer_kind kind,
                     int64_t delta)
{
    if ((int)kind < 0 || (int)kind >= TIMER_KIND_COUNT)
        return -EINVAL;
    uint32_t hash = fnv(2166136261u, topic, len);
    struct timer_topic **p = NULL, *x = NULL;
    if (t->nbuckets) {
        for (p = &t->b[hash & (t->nbuckets - 1)]; (x = *p); p = &x->next)
            if (x->hash == hash && x->len == len && !memcmp(x->name, topic, len))
                break;
    }
    if (!x) {
        if (delta <= 0)
            return 0; /* nothing counted for it: nothing to take away */
        if (t->n >= t->nbuckets && topics_grow(t) < 0 && !t->nbuckets)
            return -ENOMEM;
        x = calloc(1, sizeof *x + len + 1);
        if (!x)
            return -ENOMEM;
        x->hash = hash;
        x->len = len;
        memcpy(x->name, topic, len);
        size_t i = hash & (t->nbuckets - 1);
        x->next = t->b[i];
        t->b[i] = x;
        t->n++;
        p = NULL;
    }
    x->pending[kind] += delta;
    if (x->pending[kind] < 0)
        x->pending[kind] = 0;
    for (int k = 0; k < TIMER_KIND_COUNT; k++)
        if (x->pending[k])
            return 0;
    /* All zero: unlink it. */
    if (!p)
        for (p = &t->b[hash & (t->nbuckets - 1)]; *p != x; p = &(*p)->next)
            ;
    *p = x->next;
    t->n--;
    free(x);
    return 0;
}

void timer_topics_each(const struct timer_topics *t,
                       void (*fn)(void *arg, const struct timer_topic *tp), void *arg)
{
    for (size_t i = 0; i < t->nbuckets; i++)
        for (const struct timer_topic *x = t->b[i]; x; x = x->next)
            fn(arg, x);
}

void timer_topics_free(struct timer_topics *t)
{
    for (size_t i = 0; i < t->nbuckets; i++)
        for (struct timer_topic *x = t->b[i], *next; x; x = next) {
            next = x->next;
            free(x);
        }
    free(t->b);
    memset(t, 0, sizeof *t);
}
