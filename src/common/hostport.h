/*
 * hostport: "host:port" and "PLAINTEXT://host:port" as settings and
 * command lines give them.  Here, below every layer, because the broker's
 * settings, the admin listener and the client commands all read them.
 */
#ifndef RUNNEL_COMMON_HOSTPORT_H
#define RUNNEL_COMMON_HOSTPORT_H

#include <stddef.h>

/* Splits v (a "SCHEME://" prefix is skipped; "[::1]:9092" loses its
 * brackets; an empty host means all addresses).  0, or -1 with a message
 * naming `what` in err. */
int hostport_parse(const char *what, const char *v, char *host, size_t hostlen, int *port,
                   char *err, size_t errlen);

#endif
