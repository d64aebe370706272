/*
 * listen: opening a listening TCP socket, for the Kafka listener
 * (server.c) and the admin API (admin/).
 */
#ifndef RUNNEL_NET_LISTEN_H
#define RUNNEL_NET_LISTEN_H

#include <stddef.h>

struct net_listener {
    int fd;     /* non-blocking, close-on-exec */
    int port;   /* bound port: the one asked for, or the one port 0 got */
    int family; /* AF_INET or AF_INET6 */
};

/*
 * Binds host:port ("" or NULL host: every address) with SO_REUSEADDR and
 * listens with `backlog`.  `what` names the setting in error messages
 * ("listeners", "admin.listener").  0, or -1 with a message in err.
 */
int net_listen(const char *host, int port, int backlog, const char *what, struct net_listener *out,
               char *err, size_t errlen);

#endif
