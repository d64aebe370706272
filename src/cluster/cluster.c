/*
 * cluster: membership and controller election (cluster.h, README.md).
 *
 * Threads: the caller of cluster_open/join/close (the main thread), the
 * cluster thread, and the ZooKeeper client's two threads.  The watch
 * callback (client completion thread) only sets bits in `pending` and
 * wakes the cluster thread, which makes every ZooKeeper call: the
 * client's synchronous calls would deadlock on the completion thread.
 *
 * Locks, none held across a ZooKeeper call except ctl_mu never:
 *   mu       pending bits, stop flag (cluster thread <-> watcher, close)
 *   snap_mu  the current snapshot pointer (any thread)
 *   ctl_mu   the controller epoch and its zkVersion (any thread)
 * The broker list and `registered` belong to the cluster thread (and to
 * cluster_join before the thread starts).
 */
#include "cluster/cluster.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster/ctopics.h"
#include "cluster/zk.h"
#include "cluster/znodes.h"
#include "common/clock.h"
#include "common/rlog.h"

enum {
    P_BROKERS = 1,    /* re-read /brokers/ids (and re-set its watch) */
    P_CONTROLLER = 2, /* re-read /controller, elect when absent */
    P_EXPIRED = 4,    /* the session expired: a new one, register again */
    P_REGISTER = 8,   /* (re-)create /brokers/ids/<self> */
    P_TOPICS = 16,    /* topics or partition states changed (ctopics.c) */
};

/* Backoff of a failed step (connection lost, no quorum). */
#define RETRY_MS 500

static struct {
    atomic_bool on;
    const struct broker_config *cfg;
    struct zk *zk;
    int32_t self;
    char host[256];
    int32_t port;
    char rack[128];
    char path[64]; /* /brokers/ids/<self> */

    pthread_t thread;
    bool thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned pending;
    bool stop;

    pthread_mutex_t snap_mu;
    struct cluster_snapshot *snap;

    _Atomic int32_t controller_id;
    pthread_mutex_t ctl_mu;
    bool is_controller;
    int32_t epoch, epoch_zkversion;

    struct cluster_callbacks cb;
    /* Cluster thread only. */
    struct cluster_broker *brokers;
    int nbrokers;
} cl = {
    .mu = PTHREAD_MUTEX_INITIALIZER,
    .cv = PTHREAD_COND_INITIALIZER,
    .snap_mu = PTHREAD_MUTEX_INITIALIZER,
    .ctl_mu = PTHREAD_MUTEX_INITIALIZER,
    .controller_id = -1,
};

bool cluster_configured(const struct broker_config *cfg)
{
    return *config_string(cfg, "zookeeper.connect") != 0;
}

bool cluster_enabled(void)
{
    return atomic_load(&cl.on);
}

/* ---- snapshot ---- */

const struct cluster_snapshot *cluster_snapshot_get(void)
{
    pthread_mutex_lock(&cl.snap_mu);
    struct cluster_snapshot *s = cl.snap;
    if (s)
        atomic_fetch_add(&s->refs, 1);
    pthread_mutex_unlock(&cl.snap_mu);
    return s;
}

void cluster_snapshot_put(const struct cluster_snapshot *s)
{
    struct cluster_snapshot *m = (struct cluster_snapshot *)s;
    if (m && atomic_fetch_sub(&m->refs, 1) == 1)
        free(m);
}

static void swap_snapshot(struct cluster_snapshot *s)
{
    pthread_mutex_lock(&cl.snap_mu);
    struct cluster_snapshot *old = cl.snap;
    cl.snap = s;
    pthread_mutex_unlock(&cl.snap_mu);
    cluster_snapshot_put(old);
}

/* A new snapshot from the cluster thread's broker list and controller. */
static void publish(void)
{
    struct cluster_snapshot *s =
        malloc(sizeof *s + (size_t)cl.nbrokers * sizeof(struct cluster_broker));
    if (!s) {
        rlog_error("cluster: out of memory for the broker list");
        return;
    }
    atomic_init(&s->refs, 1);
    s->controller_id = atomic_load(&cl.controller_id);
    s->n = cl.nbrokers;
    if (cl.nbrokers)
        memcpy(s->b, cl.brokers, (size_t)cl.nbrokers * sizeof *s->b);
    swap_snapshot(s);
    if (cl.cb.on_brokers_changed)
        cl.cb.on_brokers_changed(cl.cb.ctx, s);
}

/* ---- controller state ---- */

int32_t cluster_controller_id(void)
{
    return atomic_load(&cl.controller_id);
}

bool cluster_is_controller(int32_t *epoch, int32_t *epoch_zkversion)
{
    pthread_mutex_lock(&cl.ctl_mu);
    bool yes = cl.is_controller;
    if (epoch)
        *epoch = cl.epoch;
    if (epoch_zkversion)
        *epoch_zkversion = cl.epoch_zkversion;
    pthread_mutex_unlock(&cl.ctl_mu);
    return yes;
}

static void set_controller_id(int32_t id)
{
    if (atomic_exchange(&cl.controller_id, id) != id) {
        if (id >= 0)
            rlog_info("cluster: broker %d is the controller", (int)id);
        publish();
    }
}

static void become_controller(int32_t epoch, int32_t zkversion)
{
    pthread_mutex_lock(&cl.ctl_mu);
    cl.is_controller = true;
    cl.epoch = epoch;
    cl.epoch_zkversion = zkversion;
    pthread_mutex_unlock(&cl.ctl_mu);
    rlog_info("cluster: this broker (%d) is the controller, epoch %d", (int)cl.self, (int)epoch);
    set_controller_id(cl.self);
    if (cl.cb.on_elected)
        cl.cb.on_elected(cl.cb.ctx, epoch, zkversion);
}

static void resign(const char *why)
{
    pthread_mutex_lock(&cl.ctl_mu);
    bool was = cl.is_controller;
    cl.is_controller = false;
    pthread_mutex_unlock(&cl.ctl_mu);
    if (!was)
        return;
    rlog_info("cluster: this broker is no longer the controller (%s)", why);
    if (cl.cb.on_deposed)
        cl.cb.on_deposed(cl.cb.ctx);
}

/* ---- ZooKeeper steps (cluster thread, or cluster_join before it) ---- */

static void on_event(void *ctx, enum zk_event ev, const char *path)
{
    (void)ctx;
    unsigned bits = 0;
    if (path && ev != ZK_EV_EXPIRED && ctopics_note(ev, path))
        bits = P_TOPICS;
    else if (ev == ZK_EV_EXPIRED)
        bits = P_EXPIRED;
    else if (ev == ZK_EV_CHILD && !strcmp(path, ZNODE_BROKER_IDS))
        bits = P_BROKERS;
    else if ((ev == ZK_EV_CREATED || ev == ZK_EV_DELETED || ev == ZK_EV_CHANGED) &&
             !strcmp(path, ZNODE_CONTROLLER))
        bits = P_CONTROLLER;
    else if (ev == ZK_EV_DISCONNECTED)
        rlog_warn("cluster: lost the ZooKeeper connection, reconnecting");
    pthread_mutex_lock(&cl.mu);
    cl.pending |= bits;
    pthread_cond_signal(&cl.cv); /* a reconnect also retries failed steps */
    pthread_mutex_unlock(&cl.mu);
}

/* 0, 1 retry later, -1 refused (message in err). */
static int register_broker(char *err, size_t errlen)
{
    int rc = zk_create_parents(cl.zk, ZNODE_BROKER_IDS);
    if (rc != ZOK) {
        snprintf(err, errlen, "cannot create %s in ZooKeeper: %s", ZNODE_BROKER_IDS, zerror(rc));
        return zk_retriable(rc) ? 1 : -1;
    }
    char *json = znode_broker_encode(cl.host, cl.port, cl.rack, clock_wall_ms());
    if (!json) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    rc = zk_create(cl.zk, cl.path, json, (int)strlen(json), true);
    free(json);
    if (rc == ZNODEEXISTS) {
        /* Ours when a create was retried after a lost connection. */
        struct Stat st;
        int rc2 = zk_exists(cl.zk, cl.path, false, &st);
        if (rc2 == ZOK && st.ephemeralOwner == zk_session_id(cl.zk))
            rc = ZOK;
        else if (rc2 == ZOK) {
            snprintf(err, errlen,
                     "broker.id %d is already registered by a live broker (%s%s is held by "
                     "ZooKeeper session 0x%llx)",
                     (int)cl.self, zk_chroot(cl.zk), cl.path,
                     (unsigned long long)st.ephemeralOwner);
            return -1;
        } else {
            snprintf(err, errlen, "registering %s: %s", cl.path, zerror(rc2));
            return 1; /* it went away meanwhile: try again */
        }
    }
    if (rc != ZOK) {
        snprintf(err, errlen, "cannot register %s in ZooKeeper: %s", cl.path, zerror(rc));
        return zk_retriable(rc) ? 1 : -1;
    }
    rlog_info("cluster: registered %s%s (%s:%d)", zk_chroot(cl.zk), cl.path, cl.host, (int)cl.port);
    return 0;
}

static int cmp_broker(const void *a, const void *b)
{
    const struct cluster_broker *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Lists /brokers/ids (re-setting the child watch) and reads each. */
static int refresh_brokers(void)
{
    char **names;
    int n;
    int rc = zk_children(cl.zk, ZNODE_BROKER_IDS, true, &names, &n);
    if (rc != ZOK) {
        rlog_warn("cluster: listing %s: %s", ZNODE_BROKER_IDS, zerror(rc));
        return -1;
    }
    struct cluster_broker *b = calloc((size_t)(n ? n : 1), sizeof *b);
    if (!b) {
        zk_free_names(names, n);
        return -1;
    }
    int nb = 0;
    for (int i = 0; i < n; i++) {
        char *end;
        long id = strtol(names[i], &end, 10);
        if (*end || end == names[i] || id < 0 || id > INT32_MAX)
            continue;
        char path[300], *data;
        int len;
        snprintf(path, sizeof path, "%s/%s", ZNODE_BROKER_IDS, names[i]);
        rc = zk_get(cl.zk, path, false, &data, &len, NULL);
        if (rc == ZNONODE)
            continue; /* gone since the listing; its child event follows */
        if (rc != ZOK) {
            free(data);
            free(b);
            zk_free_names(names, n);
            rlog_warn("cluster: reading %s: %s", path, zerror(rc));
            return -1;
        }
        if (!data || znode_broker_decode(data, (size_t)len, &b[nb])) {
            rlog_warn("cluster: %s holds no registration Runnel can read; ignored", path);
            free(data);
            continue;
        }
        free(data);
        b[nb++].id = (int32_t)id;
    }
    zk_free_names(names, n);
    qsort(b, (size_t)nb, sizeof *b, cmp_broker);
    bool changed = nb != cl.nbrokers || (nb && memcmp(b, cl.brokers, (size_t)nb * sizeof *b));
    free(cl.brokers);
    cl.brokers = b;
    cl.nbrokers = nb;
    if (changed || !cl.snap) {
        char ids[512] = "";
        for (int i = 0, o = 0; i < nb && o < (int)sizeof ids - 12; i++)
            o += snprintf(ids + o, sizeof ids - (size_t)o, "%s%d", i ? "," : "", (int)b[i].id);
        rlog_info("cluster: live brokers [%s]", ids);
        publish();
    }
    return 0;
}

/* Reads /controller_epoch (created with 0 when absent, as Kafka does). */
static int read_epoch(int32_t *epoch, int32_t *version)
{
    for (int tries = 0; tries < 3; tries++) {
        char *data;
        int len;
        struct Stat st;
        int rc = zk_get(cl.zk, ZNODE_CONTROLLER_EPOCH, false, &data, &len, &st);
        if (rc == ZNONODE) {
            rc = zk_create(cl.zk, ZNODE_CONTROLLER_EPOCH, "0", 1, false);
            if (rc != ZOK && rc != ZNODEEXISTS)
                return rc;
            continue;
        }
        if (rc != ZOK)
            return rc;
        int bad = !data || znode_epoch_decode(data, (size_t)len, epoch);
        free(data);
        if (bad) {
            rlog_error("cluster: %s does not hold a number", ZNODE_CONTROLLER_EPOCH);
            return ZDATAINCONSISTENCY;
        }
        *version = st.version;
        return ZOK;
    }
    return ZCONNECTIONLOSS;
}

/*
 * Kafka's election: one multi that creates the ephemeral /controller and
 * sets /controller_epoch to epoch+1 on condition of the zkVersion just
 * read.  Two brokers can never both succeed: the second finds either
 * /controller or a newer /controller_epoch version.  0 won, 1 lost, -1
 * failed (retry).
 */
static int try_elect(void)
{
    int32_t epoch, version;
    int rc = read_epoch(&epoch, &version);
    if (rc != ZOK) {
        rlog_warn("cluster: reading %s: %s", ZNODE_CONTROLLER_EPOCH, zerror(rc));
        return -1;
    }
    char *json = znode_controller_encode(cl.self, clock_wall_ms());
    if (!json)
        return -1;
    char next[16];
    snprintf(next, sizeof next, "%d", (int)epoch + 1);
    struct Stat st;
    zoo_op_t ops[2];
    zoo_op_result_t res[2];
    memset(res, 0, sizeof res);
    zoo_create_op_init(&ops[0], ZNODE_CONTROLLER, json, (int)strlen(json), &ZOO_OPEN_ACL_UNSAFE,
                       ZOO_EPHEMERAL, NULL, 0);
    zoo_set_op_init(&ops[1], ZNODE_CONTROLLER_EPOCH, next, (int)strlen(next), version, &st);
    rc = zk_multi(cl.zk, 2, ops, res);
    free(json);
    if (rc == ZOK) {
        become_controller(epoch + 1, st.version);
        return 0;
    }
    if (res[0].err == ZNODEEXISTS || res[1].err == ZBADVERSION || rc == ZNODEEXISTS ||
        rc == ZBADVERSION)
        return 1;
    rlog_warn("cluster: election: %s", zerror(rc));
    return -1;
}

/* Learns the controller (re-setting the watch on /controller) and runs
 * an election when there is none.  0, or -1 to retry later. */
static int elect(void)
{
    for (int round = 0; round < 8; round++) {
        char *data;
        int len;
        struct Stat st;
        int rc = zk_get(cl.zk, ZNODE_CONTROLLER, true, &data, &len, &st);
        if (rc == ZOK) {
            int32_t id = -1;
            if (!data || znode_controller_decode(data, (size_t)len, &id))
                rlog_warn("cluster: %s holds no broker id", ZNODE_CONTROLLER);
            free(data);
            bool mine = id == cl.self && st.ephemeralOwner == zk_session_id(cl.zk);
            if (!mine)
                resign(id >= 0 ? "another broker is the controller" : "/controller changed");
            else if (!cluster_is_controller(NULL, NULL)) {
                /* Our multi went through but its answer was lost. */
                int32_t epoch, version;
                if (read_epoch(&epoch, &version) != ZOK)
                    return -1;
                become_controller(epoch, version);
            }
            set_controller_id(id);
            return 0;
        }
        if (rc != ZNONODE) {
            free(data);
            rlog_warn("cluster: reading %s: %s", ZNODE_CONTROLLER, zerror(rc));
            return -1;
        }
        resign("/controller is gone");
        set_controller_id(-1);
        int won = try_elect();
        if (won < 0)
            return -1;
        if (won == 0) {
            /* Watch our own znode: deleted by hand, we resign. */
            rc = zk_exists(cl.zk, ZNODE_CONTROLLER, true, NULL);
            return rc == ZOK || rc == ZNONODE ? 0 : -1;
        }
    }
    return -1;
}

/* A new session after expiry: everything of the old one is gone. */
static unsigned renew_session(void)
{
    resign("ZooKeeper session expired");
    rlog_warn("cluster: ZooKeeper session expired; opening a new one");
    char err[512];
    if (zk_reconnect(cl.zk, err, sizeof err)) {
        rlog_warn("cluster: %s", err);
        return P_EXPIRED;
    }
    rlog_info("cluster: new ZooKeeper session 0x%llx", (unsigned long long)zk_session_id(cl.zk));
    ctopics_resync(); /* the old session's watches are gone */
    return P_REGISTER | P_BROKERS | P_CONTROLLER | P_TOPICS;
}

static unsigned run_steps(unsigned bits)
{
    unsigned failed = 0;
    if (bits & P_EXPIRED) {
        unsigned next = renew_session();
        if (next & P_EXPIRED)
            return bits; /* no new session yet: all of it again later */
        bits = (bits & ~(unsigned)P_EXPIRED) | next;
    }
    if (bits & P_REGISTER) {
        char err[512];
        int rc = register_broker(err, sizeof err);
        if (rc) {
            /* A live broker took our id while we were away: keep trying,
             * loudly; it may be a session that is about to expire. */
            rlog_error("cluster: %s", err);
            failed |= P_REGISTER;
        }
    }
    if ((bits & P_BROKERS) && refresh_brokers())
        failed |= P_BROKERS;
    if ((bits & P_CONTROLLER) && elect())
        failed |= P_CONTROLLER;
    if (bits & (P_TOPICS | P_BROKERS | P_CONTROLLER | P_REGISTER)) {
        int rc = ctopics_run(cl.brokers, cl.nbrokers);
        if (rc & CTOPICS_RETRY)
            failed |= P_TOPICS;
        if (rc & CTOPICS_FENCED) {
            /* Re-read /controller and /controller_epoch before any more
             * controller writes (elect() does, on the retry). */
            resign("a controller write found /controller_epoch moved");
            failed |= P_CONTROLLER;
        }
    }
    return failed;
}

static void *cluster_thread(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&cl.mu);
    int64_t retry_at = 0;
    unsigned retry = 0;
    while (!cl.stop) {
        int64_t now = clock_mono_ms();
        if (retry && now >= retry_at) {
            cl.pending |= retry;
            retry = 0;
        }
        if (!cl.pending) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            int64_t wait_ms = retry ? retry_at - now : 1000;
            until.tv_sec += wait_ms / 1000;
            until.tv_nsec += (long)(wait_ms % 1000) * 1000000;
            if (until.tv_nsec >= 1000000000) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&cl.cv, &cl.mu, &until);
            continue;
        }
        unsigned bits = cl.pending;
        cl.pending = 0;
        pthread_mutex_unlock(&cl.mu);
        unsigned failed = run_steps(bits);
        pthread_mutex_lock(&cl.mu);
        if (failed) {
            retry |= failed;
            retry_at = clock_mono_ms() + RETRY_MS;
        }
    }
    pthread_mutex_unlock(&cl.mu);
    return NULL;
}

struct zk *cluster_zk(void)
{
    return cluster_enabled() ? cl.zk : NULL;
}

/* ---- start / stop ---- */

int cluster_open(const struct broker_config *cfg, char *err, size_t errlen)
{
    if (!cluster_configured(cfg))
        return 0;
    cl.cfg = cfg;
    cl.self = cfg->node_id;
    snprintf(cl.host, sizeof cl.host, "%s", cfg->advertised_host);
    cl.port = cfg->advertised_port;
    snprintf(cl.rack, sizeof cl.rack, "%s", config_string(cfg, "broker.rack"));
    snprintf(cl.path, sizeof cl.path, "%s/%d", ZNODE_BROKER_IDS, (int)cl.self);
    int session_ms = (int)config_long(cfg, "zookeeper.session.timeout.ms");
    int conn_ms = (int)config_long(cfg, "zookeeper.connection.timeout.ms");
    if (conn_ms <= 0)
        conn_ms = session_ms; /* Kafka's default: the session timeout */
    const char *connect = config_string(cfg, "zookeeper.connect");
    int64_t t0 = clock_mono_ms();
    cl.zk = zk_connect(connect, session_ms, conn_ms, on_event, NULL, err, errlen);
    if (!cl.zk)
        return -1;
    ctopics_init(cl.zk, cl.self, cfg, &cl.cb);
    rlog_info("cluster: ZooKeeper session 0x%llx with %s in %lld ms",
              (unsigned long long)zk_session_id(cl.zk), connect, (long long)(clock_mono_ms() - t0));
    atomic_store(&cl.on, true);
    return 0;
}

int cluster_sync_cluster_id(const char *local, bool local_is_new, char *zk_id, size_t zk_idlen,
                            char *err, size_t errlen)
{
    if (!cluster_enabled())
        return 0;
    for (int tries = 0; tries < 3; tries++) {
        char *data;
        int len;
        int rc = zk_get(cl.zk, ZNODE_CLUSTER_ID, false, &data, &len, NULL);
        if (rc == ZNONODE) {
            char *json = znode_cluster_id_encode(local);
            rc = zk_create_parents(cl.zk, "/cluster");
            if (rc == ZOK && json)
                rc = zk_create(cl.zk, ZNODE_CLUSTER_ID, json, (int)strlen(json), false);
            free(json);
            if (rc == ZOK) {
                rlog_info("cluster: created %s%s with cluster id %s", zk_chroot(cl.zk),
                          ZNODE_CLUSTER_ID, local);
                snprintf(zk_id, zk_idlen, "%s", local);
                return 0;
            }
            if (rc == ZNODEEXISTS)
                continue; /* another broker was first: read its id */
        }
        if (rc != ZOK) {
            free(data);
            snprintf(err, errlen, "reading %s from ZooKeeper: %s", ZNODE_CLUSTER_ID, zerror(rc));
            return -1;
        }
        int bad = !data || znode_cluster_id_decode(data, (size_t)len, zk_id, zk_idlen);
        free(data);
        if (bad) {
            snprintf(err, errlen, "%s%s in ZooKeeper holds no cluster id", zk_chroot(cl.zk),
                     ZNODE_CLUSTER_ID);
            return -1;
        }
        if (!strcmp(zk_id, local))
            return 0;
        if (local_is_new)
            return 1;
        snprintf(err, errlen,
                 "the cluster id %s in ZooKeeper (%s%s) doesn't match cluster.id %s in "
                 "%s/meta.properties: this broker is trying to join the wrong cluster "
                 "(zookeeper.connect may be wrong)",
                 zk_id, zk_chroot(cl.zk), ZNODE_CLUSTER_ID, local, cl.cfg->log_dir);
        return -1;
    }
    snprintf(err, errlen, "reading %s from ZooKeeper: it keeps changing", ZNODE_CLUSTER_ID);
    return -1;
}

void cluster_set_callbacks(const struct cluster_callbacks *cb)
{
    cl.cb = *cb;
}

int cluster_join(char *err, size_t errlen)
{
    if (!cluster_enabled())
        return 0;
    int rc = register_broker(err, errlen);
    if (rc)
        return -1;
    if (refresh_brokers()) {
        snprintf(err, errlen, "cannot read %s from ZooKeeper", ZNODE_BROKER_IDS);
        return -1;
    }
    /* A failed first election is retried by the thread. */
    unsigned retry = elect() ? P_CONTROLLER : 0;
    /* Every topic and partition state before clients connect, so a
     * restarted broker answers with the cluster's leaders at once. */
    int trc = ctopics_run(cl.brokers, cl.nbrokers);
    if (trc & CTOPICS_RETRY)
        retry |= P_TOPICS;
    if (trc & CTOPICS_FENCED)
        retry |= P_CONTROLLER;
    pthread_mutex_lock(&cl.mu);
    cl.pending |= retry;
    cl.stop = false;
    pthread_mutex_unlock(&cl.mu);
    if (pthread_create(&cl.thread, NULL, cluster_thread, NULL)) {
        snprintf(err, errlen, "cannot start the cluster thread");
        return -1;
    }
    cl.thread_started = true;
    return 0;
}

void cluster_close(void)
{
    if (!cluster_enabled())
        return;
    if (cl.thread_started) {
        pthread_mutex_lock(&cl.mu);
        cl.stop = true;
        pthread_cond_signal(&cl.cv);
        pthread_mutex_unlock(&cl.mu);
        pthread_join(cl.thread, NULL);
        cl.thread_started = false;
    }
    resign("shutting down");
    ctopics_close();
    /* Closing the session deletes /brokers/ids/<self> (and /controller
     * when it is ours) now, not a session timeout later. */
    zk_close(cl.zk);
    cl.zk = NULL;
    atomic_store(&cl.on, false);
    atomic_store(&cl.controller_id, -1);
    swap_snapshot(NULL);
    free(cl.brokers);
    cl.brokers = NULL;
    cl.nbrokers = 0;
    rlog_info("cluster: left the cluster (ZooKeeper session closed)");
}
