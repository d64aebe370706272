/*
 * arena: chunked bump allocator (see arena.h).
 *
 * Layout: a singly linked list of chunks, newest-but-one first.  The head
 * chunk is the one being bumped; an allocation too big for a normal chunk
 * gets a chunk of its own, linked behind the head so the head's free
 * space stays usable.  Chunk sizes double from ARENA_FIRST to ARENA_MAX,
 * so a small request costs one malloc and a large one a few.
 */
#include "common/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_ALIGN 16
#define ARENA_FIRST 4096
#define ARENA_MAX (1024 * 1024)

struct arena_chunk {
    struct arena_chunk *next;
    size_t used; /* bytes of data[] handed out, a multiple of ARENA_ALIGN */
    size_t cap;  /* bytes of data[] */
    /* Keeps data[] 16-byte aligned given malloc's 16-byte alignment. */
    _Alignas(ARENA_ALIGN) unsigned char data[];
};

static size_t round_up(size_t n)
{
    return (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
}

void arena_init(arena_t *a)
{
    a->head = NULL;
    a->total = 0;
}

static struct arena_chunk *chunk_new(size_t cap)
{
    struct arena_chunk *c = malloc(sizeof(*c) + cap);
    if (!c)
        return NULL;
    c->next = NULL;
    c->used = 0;
    c->cap = cap;
    return c;
}

void *arena_alloc(arena_t *a, size_t n)
{
    if (n > SIZE_MAX / 2)
        return NULL;
    /* Zero-byte requests still get a distinct, valid pointer. */
    size_t need = round_up(n ? n : 1);
    void *p;

    /* The head is always a normal chunk, so sizes keep doubling from it. */
    if (!a->head && !(a->head = chunk_new(ARENA_FIRST)))
        return NULL;
    struct arena_chunk *h = a->head;

    if (h->cap - h->used >= need) {
        p = h->data + h->used;
        h->used += need;
    } else {
        size_t next = h->cap * 2;
        if (next > ARENA_MAX)
            next = ARENA_MAX;
        if (need > next / 4) {
            /* Large: its own chunk, behind the head, which stays current. */
            struct arena_chunk *c = chunk_new(need);
            if (!c)
                return NULL;
            c->used = need;
            c->next = h->next;
            h->next = c;
            p = c->data;
        } else {
            struct arena_chunk *c = chunk_new(next);
            if (!c)
                return NULL;
            c->next = h;
            a->head = c;
            c->used = need;
            p = c->data;
        }
    }
    a->total += n;
    /* Decoders rely on zeroed memory (arrays of structs start at zero). */
    memset(p, 0, n);
    return p;
}

char *arena_strndup(arena_t *a, const char *s, size_t n)
{
    if (n == SIZE_MAX)
        return NULL;
    char *d = arena_alloc(a, n + 1);
    if (!d)
        return NULL;
    if (n)
        memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

void arena_free(arena_t *a)
{
    struct arena_chunk *c = a->head;
    while (c) {
        struct arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    arena_init(a);
}
