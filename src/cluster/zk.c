/*
 * zk: sessions and synchronous calls over zookeeper_mt (zk.h).
 *
 * Locks: z->mu guards the session state the watcher writes and
 * zk_connect()/zk_reconnect() wait on.  The handle itself is replaced
 * only by zk_reconnect(), on the thread that owns the struct zk, after
 * the old session expired; the client's own calls are thread-safe.
 */
#include "cluster/zk.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/rlog.h"

struct zk {
    zhandle_t *zh;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int state; /* last ZOO_*_STATE seen by the watcher, 0 before any */
    char connect[1600];
    char hosts[1024];
    char chroot[512];
    int session_timeout_ms, connection_timeout_ms;
    zk_event_fn fn;
    void *ctx;
};

int zk_parse_connect(const char *connect, char *hosts, size_t hostslen, char *chroot,
                     size_t chrootlen, char *err, size_t errlen)
{
    const char *slash = strchr(connect, '/');
    size_t hl = slash ? (size_t)(slash - connect) : strlen(connect);
    if (hl == 0) {
        snprintf(err, errlen, "zookeeper.connect '%s': expected host:port[,host:port]/chroot",
                 connect);
        return -1;
    }
    if (hl >= hostslen) {
        snprintf(err, errlen, "zookeeper.connect '%s': too long", connect);
        return -1;
    }
    /* Every host needs a port: the C client assumes none. */
    for (const char *p = connect;;) {
        size_t n = strcspn(p, ",");
        if (n > (size_t)(connect + hl - p))
            n = (size_t)(connect + hl - p);
        const char *colon = memchr(p, ':', n);
        if (n == 0 || !colon || colon == p || colon + 1 == p + n) {
            snprintf(err, errlen, "zookeeper.connect '%s': '%.*s' is not host:port", connect,
                     (int)n, p);
            return -1;
        }
        for (const char *d = colon + 1; d < p + n; d++)
            if (*d < '0' || *d > '9') {
                snprintf(err, errlen, "zookeeper.connect '%s': bad port in '%.*s'", connect, (int)n,
                         p);
                return -1;
            }
        if (p + n >= connect + hl)
            break;
        p += n + 1; /* past the ',': a trailing one leaves an empty host */
    }
    memcpy(hosts, connect, hl);
    hosts[hl] = 0;
    const char *c = slash ? slash : "";
    if (!strcmp(c, "/"))
        c = "";
    if (strlen(c) >= chrootlen) {
        snprintf(err, errlen, "zookeeper.connect '%s': chroot too long", connect);
        return -1;
    }
    if (*c) {
        if (c[strlen(c) - 1] == '/') {
            snprintf(err, errlen, "zookeeper.connect '%s': the chroot must not end with '/'",
                     connect);
            return -1;
        }
        for (const char *p = c + 1;;) {
            size_t n = strcspn(p, "/");
            if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) {
                snprintf(err, errlen, "zookeeper.connect '%s': bad chroot path '%s'", connect, c);
                return -1;
            }
            if (!p[n])
                break;
            p += n + 1;
        }
    }
    snprintf(chroot, chrootlen, "%s", c);
    return 0;
}

/*
 * The client's own log lines, through ours, without its timestamp and
 * thread prefix.  While no server answers it logs every few hundred
 * milliseconds: one line per LOG_EVERY_MS gets through (with the count
 * of those held back), the rest go to the debug level.
 */
#define LOG_EVERY_MS 5000
static void zk_log(const char *message)
{
    static _Atomic int64_t last_ms;
    static atomic_int held_back;
    const char *m = strstr(message, "):ZOO_");
    m = m ? m + 2 : message;
    size_t n = strcspn(m, "\n");
    int64_t now = clock_mono_ms(), last = atomic_load(&last_ms);
    if (now - last < LOG_EVERY_MS || !atomic_compare_exchange_strong(&last_ms, &last, now)) {
        atomic_fetch_add(&held_back, 1);
        rlog_debug("zookeeper client: %.*s", (int)n, m);
        return;
    }
    int held = atomic_exchange(&held_back, 0);
    if (held)
        rlog_warn("zookeeper client: %.*s (and %d more lines like it)", (int)n, m, held);
    else
        rlog_warn("zookeeper client: %.*s", (int)n, m);
}

static void watcher(zhandle_t *zh, int type, int state, const char *path, void *wctx)
{
    (void)zh;
    struct zk *z = wctx;
    if (type == ZOO_SESSION_EVENT) {
        pthread_mutex_lock(&z->mu);
        z->state = state;
        pthread_cond_broadcast(&z->cv);
        pthread_mutex_unlock(&z->mu);
        if (!z->fn)
            return;
        if (state == ZOO_CONNECTED_STATE)
            z->fn(z->ctx, ZK_EV_CONNECTED, "");
        else if (state == ZOO_EXPIRED_SESSION_STATE || state == ZOO_AUTH_FAILED_STATE)
            z->fn(z->ctx, ZK_EV_EXPIRED, "");
        else if (state == ZOO_CONNECTING_STATE || state == ZOO_ASSOCIATING_STATE)
            z->fn(z->ctx, ZK_EV_DISCONNECTED, "");
        return;
    }
    if (!z->fn)
        return;
    enum zk_event ev;
    if (type == ZOO_CREATED_EVENT)
        ev = ZK_EV_CREATED;
    else if (type == ZOO_DELETED_EVENT)
        ev = ZK_EV_DELETED;
    else if (type == ZOO_CHANGED_EVENT)
        ev = ZK_EV_CHANGED;
    else if (type == ZOO_CHILD_EVENT)
        ev = ZK_EV_CHILD;
    else
        return;
    z->fn(z->ctx, ev, path ? path : "");
}

/* One session to `hosts` (with the chroot appended when given); waits
 * for it until the connection timeout. */
static int open_session(struct zk *z, const char *hosts, char *err, size_t errlen)
{
    pthread_mutex_lock(&z->mu);
    z->state = 0;
    pthread_mutex_unlock(&z->mu);
    zoo_set_debug_level(rlog_threshold <= RLOG_DEBUG ? ZOO_LOG_LEVEL_INFO : ZOO_LOG_LEVEL_WARN);
    z->zh = zookeeper_init2(hosts, watcher, z->session_timeout_ms, NULL, z, 0, zk_log);
    if (!z->zh) {
        snprintf(err, errlen, "ZooKeeper client for '%s': %s", hosts, strerror(errno));
        return -1;
    }
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += z->connection_timeout_ms / 1000;
    until.tv_nsec += (long)(z->connection_timeout_ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&z->mu);
    while (z->state != ZOO_CONNECTED_STATE && z->state != ZOO_EXPIRED_SESSION_STATE &&
           z->state != ZOO_AUTH_FAILED_STATE)
        if (pthread_cond_timedwait(&z->cv, &z->mu, &until) == ETIMEDOUT)
            break;
    int state = z->state;
    pthread_mutex_unlock(&z->mu);
    if (state == ZOO_CONNECTED_STATE)
        return 0;
    if (state == ZOO_AUTH_FAILED_STATE)
        snprintf(err, errlen, "ZooKeeper at %s refused authentication", z->hosts);
    else
        snprintf(err, errlen,
                 "cannot connect to ZooKeeper at %s within zookeeper.connection.timeout.ms "
                 "(%d ms)",
                 z->hosts, z->connection_timeout_ms);
    zookeeper_close(z->zh);
    z->zh = NULL;
    return -1;
}

/* Kafka creates a missing chroot with a client that has none. */
static int ensure_chroot(struct zk *z, char *err, size_t errlen)
{
    if (!z->chroot[0])
        return 0;
    zk_event_fn fn = z->fn;
    z->fn = NULL; /* this short session reports nothing */
    int rc = open_session(z, z->hosts, err, errlen);
    if (rc == 0) {
        int zrc = zk_create_parents(z, z->chroot);
        if (zrc != ZOK) {
            snprintf(err, errlen, "cannot create the chroot %s in ZooKeeper: %s", z->chroot,
                     zerror(zrc));
            rc = -1;
        }
        zookeeper_close(z->zh);
        z->zh = NULL;
    }
    z->fn = fn;
    return rc;
}

struct zk *zk_connect(const char *connect, int session_timeout_ms, int connection_timeout_ms,
                      zk_event_fn fn, void *ctx, char *err, size_t errlen)
{
    struct zk *z = calloc(1, sizeof *z);
    if (!z) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (zk_parse_connect(connect, z->hosts, sizeof z->hosts, z->chroot, sizeof z->chroot, err,
                         errlen)) {
        free(z);
        return NULL;
    }
    snprintf(z->connect, sizeof z->connect, "%s%s", z->hosts, z->chroot);
    pthread_mutex_init(&z->mu, NULL);
    pthread_cond_init(&z->cv, NULL);
    z->session_timeout_ms = session_timeout_ms;
    z->connection_timeout_ms = connection_timeout_ms;
    z->fn = fn;
    z->ctx = ctx;
    if (ensure_chroot(z, err, errlen) || open_session(z, z->connect, err, errlen)) {
        pthread_mutex_destroy(&z->mu);
        pthread_cond_destroy(&z->cv);
        free(z);
        return NULL;
    }
    return z;
}

int zk_reconnect(struct zk *z, char *err, size_t errlen)
{
    if (z->zh) {
        zookeeper_close(z->zh);
        z->zh = NULL;
    }
    return ensure_chroot(z, err, errlen) || open_session(z, z->connect, err, errlen) ? -1 : 0;
}

void zk_close(struct zk *z)
{
    if (!z)
        return;
    if (z->zh)
        zookeeper_close(z->zh);
    pthread_mutex_destroy(&z->mu);
    pthread_cond_destroy(&z->cv);
    free(z);
}

int64_t zk_session_id(struct zk *z)
{
    const clientid_t *id = z->zh ? zoo_client_id(z->zh) : NULL;
    return id ? id->client_id : 0;
}

const char *zk_chroot(const struct zk *z)
{
    return z->chroot;
}

int zk_create(struct zk *z, const char *path, const char *data, int len, bool ephemeral)
{
    if (!z->zh)
        return ZINVALIDSTATE;
    return zoo_create(z->zh, path, data, data ? len : -1, &ZOO_OPEN_ACL_UNSAFE,
                      ephemeral ? ZOO_EPHEMERAL : ZOO_PERSISTENT, NULL, 0);
}

int zk_create_parents(struct zk *z, const char *path)
{
    char buf[1024];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return ZBADARGUMENTS;
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p)
            continue;
        char c = *p;
        *p = 0;
        int rc = zk_create(z, buf, NULL, 0, false);
        if (rc != ZOK && rc != ZNODEEXISTS)
            return rc;
        if (!c)
            return ZOK;
        *p = c;
    }
}

int zk_get(struct zk *z, const char *path, bool watch, char **data, int *len, struct Stat *st)
{
    *data = NULL;
    *len = 0;
    if (!z->zh)
        return ZINVALIDSTATE;
    struct Stat local;
    if (!st)
        st = &local;
    int cap = 4096;
    for (;;) {
        char *buf = malloc((size_t)cap + 1);
        if (!buf)
            return ZSYSTEMERROR;
        int n = cap;
        int rc = zoo_get(z->zh, path, watch, buf, &n, st);
        if (rc != ZOK) {
            free(buf);
            return rc;
        }
        if (st->dataLength > cap) { /* grew, or larger than the first guess */
            free(buf);
            cap = st->dataLength;
            continue;
        }
        if (n < 0) {
            free(buf);
            return ZOK;
        }
        buf[n] = 0;
        *data = buf;
        *len = n;
        return ZOK;
    }
}

int zk_set(struct zk *z, const char *path, const char *data, int len, int version, struct Stat *st)
{
    if (!z->zh)
        return ZINVALIDSTATE;
    return st ? zoo_set2(z->zh, path, data, len, version, st)
              : zoo_set(z->zh, path, data, len, version);
}

int zk_delete(struct zk *z, const char *path, int version)
{
    return z->zh ? zoo_delete(z->zh, path, version) : ZINVALIDSTATE;
}

int zk_exists(struct zk *z, const char *path, bool watch, struct Stat *st)
{
    struct Stat local;
    return z->zh ? zoo_exists(z->zh, path, watch, st ? st : &local) : ZINVALIDSTATE;
}

int zk_children(struct zk *z, const char *path, bool watch, char ***names, int *n)
{
    *names = NULL;
    *n = 0;
    if (!z->zh)
        return ZINVALIDSTATE;
    struct String_vector sv = {0, NULL};
    int rc = zoo_get_children(z->zh, path, watch, &sv);
    if (rc != ZOK)
        return rc;
    char **out = calloc((size_t)(sv.count ? sv.count : 1), sizeof *out);
    if (!out) {
        deallocate_String_vector(&sv);
        return ZSYSTEMERROR;
    }
    for (int i = 0; i < sv.count; i++)
        if (!(out[i] = strdup(sv.data[i]))) {
            zk_free_names(out, i);
            deallocate_String_vector(&sv);
            return ZSYSTEMERROR;
        }
    *names = out;
    *n = sv.count;
    deallocate_String_vector(&sv);
    return ZOK;
}

void zk_free_names(char **names, int n)
{
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

int zk_multi(struct zk *z, int n, const zoo_op_t *ops, zoo_op_result_t *results)
{
    return z->zh ? zoo_multi(z->zh, n, ops, results) : ZINVALIDSTATE;
}
