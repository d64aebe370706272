/*
 * request: one request in flight on a connection, from its frame to its
 * response.
 *
 * The connection (conn.c) allocates it when a frame is complete, queues
 * it, and hands it to the layer above through net_handlers.on_request
 * (server.h); that layer decodes the header and the body, fills `out`
 * and returns one of:
 *   NET_REQ_DONE    the response is in out (after its 4-byte length slot);
 *   NET_REQ_NORESP  no response is due (acks=0 produce);
 *   NET_REQ_PENDING it will call net_req_finish() later on the same loop
 *                   thread (long-poll fetch, produce waiting for fsync),
 *                   and sets cancel when it can be abandoned early;
 *   NET_REQ_CLOSE   the request was malformed: close the connection.
 * Responses leave a connection in request order whatever order the
 * requests finish in.
 *
 * A request owns its frame (decoded strings are views into it), an arena
 * for everything its handler allocates, and the response writer; the
 * connection frees all of it in one go once the response has been sent.
 * The Kafka request header lives here too (proto/header.h), decoded by
 * the layer above: net only frames bytes and never reads it.
 */
#ifndef RUNNEL_NET_REQUEST_H
#define RUNNEL_NET_REQUEST_H

#include <stdbool.h>
#include <stdint.h>

#include "common/arena.h"
#include "common/kbuf.h"
#include "proto/header.h"

struct conn;
struct worker;

enum { NET_REQ_DONE, NET_REQ_NORESP, NET_REQ_PENDING, NET_REQ_CLOSE };

struct kreq {
    struct kreq *next; /* the connection's queue, in arrival order */
    struct conn *conn;
    struct worker *worker;
    uint8_t *frame; /* the request without its length prefix (owned) */
    int32_t frame_len;
    struct kreq_header hdr; /* decoded by the layer above */
    kr_t body;              /* the request body, after the header */
    arena_t arena;
    kw_t out;     /* length prefix + response header + body */
    int64_t sent; /* bytes of out already written to the socket */
    bool done;    /* response complete (or none due) */
    bool noresp;
    void *state;                    /* the handler's, while pending */
    void (*cancel)(struct kreq *r); /* abandon a pending request early */
    int64_t arrival_ns;             /* when the frame was complete (metrics) */
};

/* Completes a pending request (on its loop thread): patches the length
 * prefix and sends what can be sent.  r may be freed before it returns. */
void net_req_finish(struct kreq *r);

#endif
