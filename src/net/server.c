#include "net/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/rlog.h"
#include "net/conn.h"
#include "net/listen.h"

#define RBUF_SIZE (256 * 1024)

static struct {
    int listen_fd;
    int port;
    int n;
    struct worker *workers;
    pthread_t *threads;
} srv = {.listen_fd = -1};

static void accept_cb(struct loop_io *io, uint32_t events)
{
    (void)events;
    struct worker *w = (struct worker *)((char *)io - offsetof(struct worker, listen_io));
    /* A few per wakeup, so one thread does not take a whole burst. */
    for (int i = 0; i < 16; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(io->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                rlog_warn("accept: %s", strerror(errno));
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        char host[INET6_ADDRSTRLEN] = "?", peer[64];
        int port = 0;
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
            port = ntohs(a->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
            port = ntohs(a->sin6_port);
        }
        snprintf(peer, sizeof peer, "%s:%d", host, port);
        conn_accept(w, fd, peer);
    }
}

static void before_sleep(void *arg)
{
    conn_bury_dead(arg);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    loop_run(w->loop, before_sleep, w);
    return NULL;
}

static int open_listener(const struct net_params *p, char *err, size_t errlen)
{
    struct net_listener l;
    if (net_listen(p->host, p->port, 1024, p->what, &l, err, errlen))
        return -1;
    srv.port = l.port;
    return l.fd;
}

int server_start(const struct net_params *p, const struct net_handlers *h, char *err, size_t errlen)
{
    if (p->threads < 1 || !h->on_request) {
        snprintf(err, errlen, p->threads < 1 ? "no network thread" : "no request handler");
        return -1;
    }
    srv.listen_fd = open_listener(p, err, errlen);
    if (srv.listen_fd < 0)
        return -1;
    srv.n = p->threads;
    srv.workers = calloc((size_t)srv.n, sizeof *srv.workers);
    srv.threads = calloc((size_t)srv.n, sizeof *srv.threads);
    if (!srv.workers || !srv.threads) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < srv.n; i++) {
        struct worker *w = &srv.workers[i];
        w->id = i;
        w->loop = loop_new();
        w->rbuf_cap = RBUF_SIZE;
        w->rbuf = malloc(RBUF_SIZE);
        w->max_frame = p->max_frame;
        w->h = *h;
        if (!w->loop || !w->rbuf) {
            snprintf(err, errlen, "cannot create network thread %d", i);
            return -1;
        }
        w->listen_io.fd = srv.listen_fd;
        w->listen_io.cb = accept_cb;
        /* Every loop watches the one socket; EPOLLEXCLUSIVE wakes one. */
        if (loop_add(w->loop, &w->listen_io, EPOLLIN | EPOLLEXCLUSIVE)) {
            snprintf(err, errlen, "epoll: %s", strerror(errno));
            return -1;
        }
    }
    for (int i = 0; i < srv.n; i++)
        if (pthread_create(&srv.threads[i], NULL, worker_main, &srv.workers[i])) {
            snprintf(err, errlen, "cannot start network thread %d", i);
            srv.n = i;
            return -1;
        }
    return 0;
}

int server_port(void)
{
    return srv.port;
}

void server_stop(void)
{
    for (int i = 0; i < srv.n; i++)
        loop_stop(srv.workers[i].loop);
    for (int i = 0; i < srv.n; i++)
        pthread_join(srv.threads[i], NULL);
    if (srv.listen_fd >= 0)
        close(srv.listen_fd);
    for (int i = 0; srv.workers && i < srv.n; i++) {
        struct worker *w = &srv.workers[i];
        /* Completions posted after the loop stopped (the flusher's last
         * round) still free their requests. */
        loop_run_pending(w->loop);
        while (w->conns)
            conn_close(w->conns, NULL);
        conn_bury_dead(w);
        loop_free(w->loop);
        free(w->rbuf);
    }
    free(srv.workers);
    free(srv.threads);
    srv.workers = NULL;
    srv.threads = NULL;
}
