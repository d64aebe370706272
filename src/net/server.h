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
};

int server_start(const struct net_params *p, char *err, size_t errlen);
/* The port actually bound (useful with port 0). */
int server_port(void);
/* Stops accepting, closes every connection, joins the threads. */
void server_stop(void);

#endif
