/*
 * arena: per-request scratch memory, freed in one go.
 *
 * Each request gets an arena for its decoded message (arrays of structs;
 * strings stay views into the frame) and for the scratch its handler
 * needs.  arena_free() releases everything when the response has been
 * sent, so nothing a request allocates outlives it and a long-lived
 * connection does not grow.  Not thread-safe: one request, one thread.
 */
#ifndef RUNNEL_ARENA_H
#define RUNNEL_ARENA_H

#include <stddef.h>

struct arena_chunk;

typedef struct arena {
    struct arena_chunk *head;
    size_t total; /* bytes handed out, for limits and stats */
} arena_t;

void arena_init(arena_t *a);
/* 16-byte aligned, zeroed memory; NULL only when malloc fails. */
void *arena_alloc(arena_t *a, size_t n);
/* Copies n bytes (plus a NUL) into the arena; for names that must outlive
 * the frame or be NUL-terminated. */
char *arena_strndup(arena_t *a, const char *s, size_t n);
void arena_free(arena_t *a);

#endif
