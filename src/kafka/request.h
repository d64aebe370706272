/*
 * request: one Kafka request in flight, from its frame to its response.
 *
 * A request owns its frame (decoded strings are views into it), an arena
 * for everything its handler allocates, and the response writer.  All of
 * it is freed in one go after the response has been sent.
 *
 * A handler returns one of:
 *   KH_DONE    the response body is in req->out;
 *   KH_NORESP  no response (acks=0 produce);
 *   KH_PENDING it will call kreq_finish() later on the same loop thread
 *              (long-poll fetch, produce waiting for fsync); it sets
 *              req->cancel when it can be abandoned early;
 *   KH_CLOSE   the request was malformed: close the connection.
 * Responses leave a connection in request order whatever order the
 * handlers finish in (net/conn.c).
 */
#ifndef RUNNEL_REQUEST_H
#define RUNNEL_REQUEST_H

#include <stdbool.h>
#include <stdint.h>

#include "common/arena.h"
#include "common/kbuf.h"
#include "proto/header.h"

struct conn;
struct worker;

enum { KH_DONE, KH_NORESP, KH_PENDING, KH_CLOSE };

struct kreq {
    struct kreq *next; /* the connection's queue, in arrival order */
    struct conn *conn;
    struct worker *worker;
    uint8_t *frame; /* the request without its length prefix (owned) */
    int32_t frame_len;
    struct kreq_header hdr;
    kr_t body; /* the request body, after the header */
    arena_t arena;
    kw_t out;     /* length prefix + response header + body */
    int64_t sent; /* bytes of out already written to the socket */
    bool done;    /* response complete (or none due) */
    bool noresp;
    void *state;                    /* the handler's, while pending */
    void (*cancel)(struct kreq *r); /* abandon a pending request early */
    int64_t arrival_ns;             /* when the frame was complete (metrics) */
};

/* Completes a pending request (on its loop thread). */
void kreq_finish(struct kreq *r);

/* Dispatches a decoded frame (kafka/dispatch.c): KH_* as above. */
int kafka_dispatch(struct kreq *r);
/* Counts a request whose response is complete, in the per-API metrics
 * (kafka/dispatch.c; kreq_finish calls it for pending requests). */
void kafka_count_response(const struct kreq *r);

/* Per-request helpers for handlers. */
static inline const char *kreq_client_id(const struct kreq *r)
{
    return r->hdr.client_id.len > 0 ? r->hdr.client_id.ptr : "";
}

#endif
