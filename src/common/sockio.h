/*
 * sockio: blocking-style client I/O on a non-blocking TCP socket, every
 * wait bounded: what the replica fetcher and the client commands that
 * speak the Kafka protocol themselves (runnel cluster describe) need.
 * The broker's own connections use net/'s event loops instead.
 */
#ifndef RUNNEL_COMMON_SOCKIO_H
#define RUNNEL_COMMON_SOCKIO_H

#include <stdbool.h>
#include <stddef.h>

/* A connected, non-blocking socket (TCP_NODELAY) to host:port within
 * timeout_ms, trying each address the name resolves to; -1 when none
 * answers. */
int sockio_dial(const char *host, int port, int timeout_ms);
/* Writes (writing) or reads exactly n bytes, each wait at most
 * timeout_ms.  0, or -1 on a timeout, an error or the peer's close. */
int sockio_full(int fd, void *buf, size_t n, bool writing, int timeout_ms);

#endif
