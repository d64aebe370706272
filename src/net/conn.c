#include "net/conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/metrics.h"
#include "common/rlog.h"
#include "net/request.h"
#include "net/server.h"

/* Past these, stop reading until responses drain (see conn.h). */
#define MAX_INFLIGHT 256
#define MAX_UNSENT_BYTES (64 << 20)

static void conn_io_cb(struct loop_io *io, uint32_t events);
static void conn_flush(struct conn *c);

static void conn_set_events(struct conn *c, uint32_t ev)
{
    if (c->closed || ev == c->events)
        return;
    c->events = ev;
    loop_mod(c->w->loop, &c->io, ev);
}

void conn_accept(struct worker *w, int fd, const char *peer)
{
    struct conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    c->io.fd = fd;
    c->io.cb = conn_io_cb;
    c->w = w;
    c->events = EPOLLIN;
    snprintf(c->peer, sizeof c->peer, "%s", peer);
    if (loop_add(w->loop, &c->io, c->events)) {
        close(fd);
        free(c);
        return;
    }
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->n_conns++;
    metrics_conn_opened();
    rlog_debug("connection from %s", peer);
}

static void req_free(struct kreq *r)
{
    kw_free(&r->out);
    arena_free(&r->arena);
    free(r->frame);
    free(r);
}

/*
 * A closed connection with nothing in flight goes to the thread's
 * graveyard, freed before the loop sleeps: callers up the stack may
 * still look at it after conn_close() returns.
 */
static void conn_free_if_idle(struct conn *c)
{
    if (!c->closed || c->head || c->buried)
        return;
    c->buried = true;
    c->next = c->w->graveyard;
    c->w->graveyard = c;
}

void conn_bury_dead(struct worker *w)
{
    while (w->graveyard) {
        struct conn *c = w->graveyard;
        w->graveyard = c->next;
        free(c->frame);
        free(c);
    }
}

void conn_close(struct conn *c, const char *why)
{
    if (c->closed)
        return;
    if (why)
        rlog_info("closing connection from %s: %s", c->peer, why);
    c->closed = true;
    loop_del(c->w->loop, &c->io);
    close(c->io.fd);
    c->io.fd = -1;
    struct worker *w = c->w;
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->n_conns--;
    metrics_conn_closed();
    /* Drop what is done; cancel what can be; the rest finishes on its own. */
    struct kreq **pp = &c->head;
    c->tail = NULL;
    while (*pp) {
        struct kreq *r = *pp;
        if (!r->done && r->cancel) {
            r->cancel(r);
            r->done = true;
        }
        if (r->done) {
            *pp = r->next;
            c->n_inflight--;
            req_free(r);
        } else {
            c->tail = r;
            pp = &r->next;
        }
    }
    conn_free_if_idle(c);
}

/* Queues one complete frame and hands it to the layer above (on_request). */
static bool conn_handle_frame(struct conn *c, uint8_t *frame, int32_t len)
{
    struct kreq *r = calloc(1, sizeof *r);
    if (!r) {
        free(frame);
        conn_close(c, "out of memory");
        return false;
    }
    r->conn = c;
    r->worker = c->w;
    r->frame = frame;
    r->frame_len = len;
    arena_init(&r->arena);
    kw_init(&r->out, 256);
    /* Queue first: responses must leave in arrival order. */
    if (c->tail)
        c->tail->next = r;
    else
        c->head = r;
    c->tail = r;
    c->n_inflight++;
    int rc = c->w->h.on_request(r);
    switch (rc) {
    case NET_REQ_DONE:
        r->done = true;
        kw_patch_i32(&r->out, 0, (int32_t)(kw_total(&r->out) - 4));
        break;
    case NET_REQ_NORESP:
        r->done = true;
        r->noresp = true;
        break;
    case NET_REQ_PENDING:
        break;
    default:
        /* The request stays queued and is freed with the connection. */
        r->done = true;
        r->noresp = true;
        conn_close(c, "malformed request");
        return false;
    }
    return true;
}

/* Consumes bytes from the read buffer; false when the connection closed. */
static bool conn_feed(struct conn *c, const uint8_t *p, size_t n)
{
    while (n > 0 && !c->closed) {
        if (!c->frame) {
            while (c->lenbuf_n < 4 && n > 0) {
                c->lenbuf[c->lenbuf_n++] = *p++;
                n--;
            }
            if (c->lenbuf_n < 4)
                return true;
            int32_t len = (int32_t)((uint32_t)c->lenbuf[0] << 24 | (uint32_t)c->lenbuf[1] << 16 |
                                    (uint32_t)c->lenbuf[2] << 8 | c->lenbuf[3]);
            c->lenbuf_n = 0;
            /* Checked before any allocation. */
            if (len <= 0 || len > c->w->max_frame) {
                char why[96];
                snprintf(why, sizeof why, "frame length %d outside 1..%d", len, c->w->max_frame);
                conn_close(c, why);
                return false;
            }
            c->frame = malloc((size_t)len);
            if (!c->frame) {
                conn_close(c, "out of memory for frame");
                return false;
            }
            c->frame_len = len;
            c->frame_filled = 0;
        }
        size_t take = (size_t)(c->frame_len - c->frame_filled);
        if (take > n)
            take = n;
        memcpy(c->frame + c->frame_filled, p, take);
        c->frame_filled += (int32_t)take;
        p += take;
        n -= take;
        if (c->frame_filled == c->frame_len) {
            uint8_t *f = c->frame;
            c->frame = NULL;
            if (!conn_handle_frame(c, f, c->frame_len))
                return false;
        }
    }
    return !c->closed;
}

static int64_t conn_unsent(struct conn *c)
{
    int64_t t = 0;
    for (struct kreq *r = c->head; r; r = r->next)
        if (r->done && !r->noresp)
            t += kw_total(&r->out) - r->sent;
    return t;
}

static void conn_read(struct conn *c)
{
    struct worker *w = c->w;
    /* A bounded number of reads per wakeup keeps one busy client from
     * starving the others; level-triggered epoll brings us back. */
    for (int i = 0; i < 8 && !c->closed; i++) {
        if (c->n_inflight >= MAX_INFLIGHT)
            break;
        ssize_t n;
        if (c->frame && c->frame_len - c->frame_filled >= (int32_t)w->rbuf_cap) {
            /* A large frame: read straight into it. */
            n = read(c->io.fd, c->frame + c->frame_filled,
                     (size_t)(c->frame_len - c->frame_filled));
            if (n > 0) {
                c->frame_filled += (int32_t)n;
                if (c->frame_filled == c->frame_len) {
                    uint8_t *f = c->frame;
                    c->frame = NULL;
                    if (!conn_handle_frame(c, f, c->frame_len))
                        return;
                }
                continue;
            }
        } else {
            n = read(c->io.fd, w->rbuf, w->rbuf_cap);
            if (n > 0) {
                if (!conn_feed(c, w->rbuf, (size_t)n))
                    return;
                if ((size_t)n < w->rbuf_cap)
                    break;
                continue;
            }
        }
        if (n == 0) {
            conn_close(c, NULL);
            return;
        }
        if (errno == EAGAIN || errno == EINTR)
            break;
        conn_close(c, strerror(errno));
        return;
    }
}

static void conn_update_interest(struct conn *c)
{
    if (c->closed)
        return;
    bool want_out = c->head && c->head->done && !c->head->noresp;
    bool want_in = c->n_inflight < MAX_INFLIGHT && conn_unsent(c) < MAX_UNSENT_BYTES;
    conn_set_events(c, (want_in ? EPOLLIN : 0) | (want_out ? EPOLLOUT : 0));
}

static void conn_io_cb(struct loop_io *io, uint32_t events)
{
    struct conn *c = (struct conn *)io;
    if (events & (EPOLLERR | EPOLLHUP) && !(events & EPOLLIN)) {
        conn_close(c, NULL);
        return;
    }
    if (events & EPOLLOUT)
        conn_flush(c);
    if (!c->closed && (events & EPOLLIN))
        conn_read(c);
    if (!c->closed) {
        conn_flush(c);
        conn_update_interest(c);
    }
}

/*
 * The piece of response r at logical position pos: memory (*mem, *len)
 * or a file range (*fd, *off, *len).  A response is its memory bytes with
 * each external range spliced in at ext[i].at.
 */
static void piece_at(const struct kreq *r, int64_t pos, const uint8_t **mem, int *fd, int64_t *off,
                     int64_t *len)
{
    const kw_t *w = &r->out;
    int64_t mem_pos = 0, logical = 0;
    for (int i = 0; i < w->n_ext; i++) {
        int64_t mem_len = (int64_t)w->ext[i].at - mem_pos;
        if (pos < logical + mem_len) {
            *mem = w->buf + mem_pos + (pos - logical);
            *len = mem_len - (pos - logical);
            *fd = -1;
            return;
        }
        logical += mem_len;
        mem_pos = (int64_t)w->ext[i].at;
        if (pos < logical + w->ext[i].len) {
            *mem = NULL;
            *fd = w->ext[i].fd;
            *off = w->ext[i].off + (pos - logical);
            *len = w->ext[i].len - (pos - logical);
            return;
        }
        logical += w->ext[i].len;
    }
    *mem = w->buf + mem_pos + (pos - logical);
    *len = (int64_t)w->len - mem_pos - (pos - logical);
    *fd = -1;
}

/* Pops finished responses off the head. */
static void conn_pop_sent(struct conn *c)
{
    while (c->head && c->head->done &&
           (c->head->noresp || c->head->sent >= kw_total(&c->head->out))) {
        struct kreq *r = c->head;
        c->head = r->next;
        if (!c->head)
            c->tail = NULL;
        c->n_inflight--;
        req_free(r);
    }
}

static void conn_flush(struct conn *c)
{
    for (;;) {
        conn_pop_sent(c);
        if (c->closed || !c->head || !c->head->done)
            return;
        /* Gather the memory pieces of consecutive finished responses. */
        struct iovec iov[64];
        int niov = 0;
        struct kreq *r = c->head;
        int64_t pos = r->sent;
        const uint8_t *mem;
        int fd;
        int64_t off, len;
        while (r && r->done && niov < 64) {
            if (r->noresp || pos >= kw_total(&r->out)) {
                r = r->next;
                pos = r ? r->sent : 0;
                continue;
            }
            piece_at(r, pos, &mem, &fd, &off, &len);
            if (fd >= 0)
                break;
            iov[niov].iov_base = (void *)mem;
            iov[niov].iov_len = (size_t)len;
            niov++;
            pos += len;
        }
        ssize_t n;
        if (niov > 0) {
            n = writev(c->io.fd, iov, niov);
        } else {
            piece_at(c->head, c->head->sent, &mem, &fd, &off, &len);
            if (fd < 0)
                return;
            size_t chunk = len > (1 << 30) ? (1 << 30) : (size_t)len;
            n = sendfile(c->io.fd, fd, &off, chunk);
            if (n == 0) {
                /* The file is shorter than the range promised: the
                 * segment was truncated under us; the response cannot be
                 * completed, so the client must reconnect. */
                conn_close(c, "segment shorter than the fetched range");
                return;
            }
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                conn_update_interest(c);
                return;
            }
            conn_close(c, strerror(errno));
            return;
        }
        /* Account the bytes written across the responses. */
        int64_t left = n;
        for (r = c->head; r && left > 0; r = r->next) {
            if (!r->done)
                break;
            if (r->noresp)
                continue;
            int64_t rem = kw_total(&r->out) - r->sent;
            int64_t take = rem < left ? rem : left;
            r->sent += take;
            left -= take;
        }
    }
}

void conn_request_done(struct conn *c)
{
    if (c->closed) {
        conn_pop_sent(c);
        /* A closed connection sends nothing: drop finished requests. */
        struct kreq **pp = &c->head;
        c->tail = NULL;
        while (*pp) {
            struct kreq *r = *pp;
            if (r->done) {
                *pp = r->next;
                c->n_inflight--;
                req_free(r);
            } else {
                c->tail = r;
                pp = &r->next;
            }
        }
        conn_free_if_idle(c);
        return;
    }
    conn_flush(c);
    conn_update_interest(c);
}

void net_req_finish(struct kreq *r)
{
    r->done = true;
    if (!r->noresp)
        kw_patch_i32(&r->out, 0, (int32_t)(kw_total(&r->out) - 4));
    r->cancel = NULL;
    conn_request_done(r->conn);
}
