/*
 * request: one Kafka request in flight, from its frame to its response.
 *
 * The request itself is the connection's (struct kreq, net/request.h):
 * its frame, decoded header, arena and response writer, all freed in one
 * go after the response has been sent.  net/ hands every complete frame
 * to kafka_dispatch through kafka_net_handlers, which app/broker_main.c
 * passes to server_start().
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

#include "net/request.h"

struct net_handlers;

enum {
    KH_DONE = NET_REQ_DONE,
    KH_NORESP = NET_REQ_NORESP,
    KH_PENDING = NET_REQ_PENDING,
    KH_CLOSE = NET_REQ_CLOSE,
};

/* Completes a pending request (on its loop thread): counts it in the
 * per-API metrics, then hands it back to its connection. */
void kreq_finish(struct kreq *r);

/* Dispatches a decoded frame (kafka/dispatch.c): KH_* as above. */
int kafka_dispatch(struct kreq *r);
/* What the network layer calls for each request: kafka_dispatch. */
extern const struct net_handlers kafka_net_handlers;

/* Per-request helpers for handlers. */
static inline const char *kreq_client_id(const struct kreq *r)
{
    return r->hdr.client_id.len > 0 ? r->hdr.client_id.ptr : "";
}

#endif
