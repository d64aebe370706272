/*
 * conn: one client connection: frames in, responses out, in order.
 *
 * Reading: bytes land in the thread's shared read buffer; each complete
 * frame is copied into its own buffer (a large frame is read straight
 * into its buffer once its length is known), so an idle connection holds
 * no buffer at all.  A frame longer than socket.request.max.bytes, or a
 * length <= 0, closes the connection before anything is allocated.
 *
 * Writing: responses go out in request order.  The memory parts of the
 * responses at the head of the queue are sent with one writev; record
 * data that lives in segment files goes with sendfile.
 *
 * Backpressure: with too many requests in flight or too many bytes
 * unsent, the connection stops reading until the queue drains.
 *
 * Closing: pending requests with a cancel hook are cancelled; the others
 * (a produce waiting for fsync) finish normally and the connection is
 * freed when its last request is.
 */
#ifndef RUNNEL_CONN_H
#define RUNNEL_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include "net/loop.h"

struct worker;
struct kreq;

struct conn {
    struct loop_io io;
    struct worker *w;
    struct conn *prev, *next;
    uint32_t events;
    uint8_t lenbuf[4]; /* a frame length split across reads */
    int lenbuf_n;
    uint8_t *frame; /* frame being read */
    int32_t frame_len, frame_filled;
    struct kreq *head, *tail;
    int n_inflight;
    bool closed;
    bool buried; /* in the graveyard */
    char peer[64];
};

void conn_accept(struct worker *w, int fd, const char *peer);
void conn_close(struct conn *c, const char *why);
/* Called when a request completed; sends what can be sent. */
void conn_request_done(struct conn *c);
/* Frees connections closed during this loop iteration. */
void conn_bury_dead(struct worker *w);

#endif
