/*
 * server: the listener and the network threads.
 *
 * num.network.threads threads, each running its own event loop (net/
 * loop.c) over its own connections; there is no thread per connection.
 * One listening socket is watched by every loop with EPOLLEXCLUSIVE, so
 * the kernel hands each new connection to one idle thread.  A connection
 * stays on the thread that accepted it for its whole life, so its state
 * needs no lock.
 */
#ifndef RUNNEL_SERVER_H
#define RUNNEL_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "net/loop.h"

struct conn;
struct kreq;

/*
 * What the layer above does with the traffic, filled in by it (the Kafka
 * dispatcher, kafka/dispatch.c) and passed to server_start() by the
 * composition (app/broker_main.c).  net/ includes nothing above itself.
 */
struct net_handlers {
    /* A complete frame, already queued on its connection (r->frame,
     * without the length prefix): decode, answer into r->out and return
     * NET_REQ_* (net/request.h).  Runs on the connection's loop thread:
     * one indirect call per request. */
    int (*on_request)(struct kreq *r);
};

/* Where and how to listen, as plain values (the broker's settings are
 * not net's business). */
struct net_params {
    const char *host;  /* "" or NULL: every address */
    int port;          /* 0: a free port (server_port() tells which) */
    const char *what;  /* the setting named in error messages, e.g. "listeners" */
    int threads;       /* event-loop threads, at least 1 */
    int32_t max_frame; /* larger frames close the connection (socket.request.max.bytes) */
};

struct worker {
    int id;
    struct loop *loop;
    struct loop_io listen_io;
    uint8_t *rbuf; /* read buffer shared by the thread's connections */
    size_t rbuf_cap;
    struct conn *conns; /* every open connection, for shutdown */
    int n_conns;
    struct conn *graveyard; /* closed, freed before the loop sleeps */
    int32_t max_frame;      /* net_params.max_frame */
    struct net_handlers h;  /* a copy: one load less per request */
};

int server_start(const struct net_params *p, const struct net_handlers *h, char *err,
                 size_t errlen);
/* The port actually bound (useful with port 0). */
int server_port(void);
/* Stops accepting, closes every connection, joins the threads. */
void server_stop(void);

#endif
