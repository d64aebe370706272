/*
 * ctopics: topics and partition states in ZooKeeper (ctopics.h).
 *
 * The table of topics below belongs to the cluster thread.  The watcher
 * (the client's completion thread) only queues paths under q_mu; the
 * creation hook and cluster_write_isr run on other threads and touch
 * ZooKeeper only, never the table.
 *
 *   /brokers/topics                       children watch: new topics
 *   /brokers/topics/T                     data watch: the assignment
 *   /brokers/topics/T/partitions/P/state  data (or exists) watch: the state
 */
#include "cluster/ctopics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "broker/system_topics.h"
#include "broker/topics.h"
#include "cluster/znodes.h"
#include "common/rlog.h"

struct cpart {
    int32_t version; /* zkVersion of the state last read; -1: none */
    struct znode_state st;
};

struct ctopic {
    char *name;
    uint8_t id[16];
    struct znode_assignment a;
    struct cpart *p; /* a.n */
    int unclean;     /* the topic's unclean.leader.election.enable: -1 unset */
    bool gone_logged;
};

static struct {
    struct zk *zk;
    int32_t self;
    const struct broker_config *cfg;
    const struct cluster_callbacks *cb;
    pthread_mutex_t q_mu;
    char **q; /* paths to re-read */
    int nq, capq;
    bool full;   /* re-list /brokers/topics */
    bool resync; /* and re-read every topic and state (new session) */
    /* Cluster thread only. */
    struct ctopic **t;
    int nt;
    const struct cluster_broker *live;
    int nlive;
    bool local_checked;
} ct = {.q_mu = PTHREAD_MUTEX_INITIALIZER, .full = true};

void ctopics_init(struct zk *zk, int32_t self, const struct broker_config *cfg,
                  const struct cluster_callbacks *cb)
{
    ct.zk = zk;
    ct.self = self;
    ct.cfg = cfg;
    ct.cb = cb;
}

bool ctopics_note(enum zk_event ev, const char *path)
{
    size_t pl = strlen(ZNODE_TOPICS);
    if (strncmp(path, ZNODE_TOPICS, pl) || (path[pl] && path[pl] != '/'))
        return false;
    pthread_mutex_lock(&ct.q_mu);
    if (!path[pl] || ev == ZK_EV_CHILD)
        ct.full = true;
    else {
        if (ct.nq == ct.capq) {
            int cap = ct.capq ? ct.capq * 2 : 16;
            char **nq = realloc(ct.q, (size_t)cap * sizeof *nq);
            if (nq) {
                ct.q = nq;
                ct.capq = cap;
            }
        }
        char *s = ct.nq < ct.capq ? strdup(path) : NULL;
        if (s)
            ct.q[ct.nq++] = s;
        else
            ct.full = true;
    }
    pthread_mutex_unlock(&ct.q_mu);
    return true;
}

void ctopics_resync(void)
{
    pthread_mutex_lock(&ct.q_mu);
    ct.full = ct.resync = true;
    pthread_mutex_unlock(&ct.q_mu);
}

/* ---- the table ---- */

static struct ctopic *find_topic(const char *name)
{
    for (int i = 0; i < ct.nt; i++)
        if (!strcmp(ct.t[i]->name, name))
            return ct.t[i];
    return NULL;
}

static void free_topic(struct ctopic *t)
{
    znode_assignment_free(&t->a);
    free(t->p);
    free(t->name);
    free(t);
}

static bool is_live(int32_t id)
{
    for (int i = 0; i < ct.nlive; i++)
        if (ct.live[i].id == id)
            return true;
    return false;
}

static const int32_t *replicas_of(const struct ctopic *t, int32_t p)
{
    return &t->a.replicas[p * CLUSTER_MAX_RF];
}

static bool in_list(const int32_t *l, int32_t n, int32_t id)
{
    for (int32_t i = 0; i < n; i++)
        if (l[i] == id)
            return true;
    return false;
}

/* ---- reading ---- */

static void deliver(struct ctopic *t, int32_t p)
{
    if (!ct.cb->on_partition_state)
        return;
    struct topic *lt = topics_get(t->name, strlen(t->name));
    if (!lt)
        return;
    struct cluster_partition_state s;
    memset(&s, 0, sizeof s);
    s.leader = t->p[p].st.leader;
    s.leader_epoch = t->p[p].st.leader_epoch;
    s.controller_epoch = t->p[p].st.controller_epoch;
    s.zk_version = t->p[p].version;
    s.n_replicas = t->a.rf[p];
    memcpy(s.replicas, replicas_of(t, p), (size_t)s.n_replicas * sizeof s.replicas[0]);
    s.n_isr = t->p[p].st.n_isr;
    memcpy(s.isr, t->p[p].st.isr, (size_t)s.n_isr * sizeof s.isr[0]);
    ct.cb->on_partition_state(ct.cb->ctx, lt, p, &s);
    topic_put(lt);
}

static void state_path(char *out, size_t len, const char *topic, int32_t p)
{
    snprintf(out, len, "%s/%s/partitions/%d/state", ZNODE_TOPICS, topic, (int)p);
}

/* Reads one state znode (re-setting its watch); delivers it when newer.
 * 0, or -1 to retry. */
static int read_state(struct ctopic *t, int32_t p)
{
    char path[512], *data;
    int len;
    struct Stat st;
    state_path(path, sizeof path, t->name, p);
    int rc = zk_get(ct.zk, path, true, &data, &len, &st);
    if (rc == ZNONODE) {
        /* Not yet created (the controller will): watch for it. */
        rc = zk_exists(ct.zk, path, true, NULL);
        if (rc == ZOK)
            return read_state(t, p); /* created just now */
        return rc == ZNONODE ? 0 : -1;
    }
    if (rc != ZOK) {
        rlog_warn("cluster: reading %s: %s", path, zerror(rc));
        return -1;
    }
    struct znode_state s;
    int bad = !data || znode_state_decode(data, (size_t)len, &s);
    free(data);
    if (bad) {
        rlog_warn("cluster: %s holds no partition state Runnel can read; ignored", path);
        return 0;
    }
    if (st.version <= t->p[p].version && t->p[p].version >= 0)
        return 0;
    t->p[p].version = st.version;
    t->p[p].st = s;
    deliver(t, p);
    return 0;
}

struct cfg_collect {
    struct config_overrides o;
    int unclean;
};

static void collect_config(void *arg, const char *key, const char *value)
{
    struct cfg_collect *c = arg;
    char err[256];
    if (!strcmp(key, "unclean.leader.election.enable"))
        c->unclean = !strcmp(value, "true");
    if (config_validate_topic(key, value, err, sizeof err)) {
        rlog_warn("cluster: topic config %s=%s from ZooKeeper ignored: %s", key, value, err);
        return;
    }
    config_overrides_set(&c->o, key, value);
}

/* Reads /brokers/topics/T (re-setting its watch) and its configs,
 * applies them to the registry, then reads new partitions' states. */
static int read_topic(const char *name, bool all_states)
{
    char path[512], *data;
    int len;
    snprintf(path, sizeof path, "%s/%s", ZNODE_TOPICS, name);
    int rc = zk_get(ct.zk, path, true, &data, &len, NULL);
    if (rc == ZNONODE)
        return 0; /* the children listing says it is gone */
    if (rc != ZOK) {
        rlog_warn("cluster: reading %s: %s", path, zerror(rc));
        return -1;
    }
    struct znode_assignment a;
    uint8_t id[16] = {0};
    int has_id;
    int bad = !data || znode_topic_decode(data, (size_t)len, &a, id, &has_id);
    free(data);
    if (bad) {
        rlog_warn("cluster: %s holds no assignment Runnel can read; ignored", path);
        return 0;
    }
    struct cfg_collect cc = {.unclean = -1};
    snprintf(path, sizeof path, "%s/%s", ZNODE_CONFIG_TOPICS, name);
    rc = zk_get(ct.zk, path, false, &data, &len, NULL);
    if (rc == ZOK && data && znode_config_decode(data, (size_t)len, collect_config, &cc))
        rlog_warn("cluster: %s holds no topic configs Runnel can read; ignored", path);
    free(data);
    if (rc != ZOK && rc != ZNONODE) {
        znode_assignment_free(&a);
        config_overrides_free(&cc.o);
        return -1;
    }
    struct ctopic *t = find_topic(name);
    if (!t) {
        t = calloc(1, sizeof *t);
        struct ctopic **nt = t ? realloc(ct.t, (size_t)(ct.nt + 1) * sizeof *nt) : NULL;
        if (!nt || !(t->name = strdup(name))) {
            free(t);
            znode_assignment_free(&a);
            config_overrides_free(&cc.o);
            return -1;
        }
        ct.t = nt;
        ct.t[ct.nt++] = t;
    }
    if (!has_id) /* Kafka before 2.8: the id is the controller's to add */
        memcpy(id, t->id, 16);
    memcpy(t->id, id, 16);
    t->unclean = cc.unclean;
    int32_t old_n = t->a.n;
    if (a.n < old_n) {
        rlog_warn("cluster: %s has fewer partitions than before; ignored", name);
        znode_assignment_free(&a);
        config_overrides_free(&cc.o);
        return 0;
    }
    struct cpart *np = realloc(t->p, (size_t)(a.n ? a.n : 1) * sizeof *np);
    bool *local = malloc((size_t)(a.n ? a.n : 1) * sizeof *local);
    if (!np || !local) {
        if (np)
            t->p = np;
        free(local);
        znode_assignment_free(&a);
        config_overrides_free(&cc.o);
        return -1;
    }
    t->p = np;
    for (int32_t i = old_n; i < a.n; i++) {
        t->p[i].version = -1;
        memset(&t->p[i].st, 0, sizeof t->p[i].st);
    }
    znode_assignment_free(&t->a);
    t->a = a;
    for (int32_t i = 0; i < a.n; i++)
        local[i] = in_list(replicas_of(t, i), a.rf[i], ct.self);
    kuuid_t kid;
    memcpy(kid.b, id, 16);
    char err[512];
    rc = topics_apply_cluster(name, kid, a.n, local, &cc.o, err, sizeof err);
    free(local);
    config_overrides_free(&cc.o);
    if (rc) {
        rlog_error("cluster: topic %s: %s", name, err);
        return -1;
    }
    int failed = 0;
    for (int32_t i = 0; i < a.n; i++)
        if ((all_states || t->p[i].version < 0) && read_state(t, i))
            failed = -1;
    return failed;
}

/* Lists /brokers/topics (re-setting the child watch), reads new topics. */
static int read_all(bool resync)
{
    int rc = zk_create_parents(ct.zk, ZNODE_TOPICS);
    char **names;
    int n;
    if (rc == ZOK)
        rc = zk_children(ct.zk, ZNODE_TOPICS, true, &names, &n);
    if (rc != ZOK) {
        rlog_warn("cluster: listing %s: %s", ZNODE_TOPICS, zerror(rc));
        return -1;
    }
    int failed = 0;
    for (int i = 0; i < n; i++) {
        struct ctopic *t = find_topic(names[i]);
        if (!t || resync) {
            if (read_topic(names[i], resync))
                failed = -1;
            continue;
        }
    }
    /* A topic ZooKeeper no longer has: deletion comes later; kept. */
    for (int i = 0; i < ct.nt; i++) {
        bool there = false;
        for (int j = 0; j < n && !there; j++)
            there = !strcmp(names[j], ct.t[i]->name);
        if (!there && !ct.t[i]->gone_logged) {
            rlog_warn("cluster: topic %s is gone from ZooKeeper; its local copy is kept",
                      ct.t[i]->name);
            ct.t[i]->gone_logged = true;
        }
    }
    /* Local topics ZooKeeper never had (made before this broker joined
     * a cluster, or deleted meanwhile): served as they are, said once. */
    struct topic **lt;
    int nl;
    if (!ct.local_checked && !topics_list(&lt, &nl)) {
        ct.local_checked = true;
        for (int i = 0; i < nl; i++) {
            bool there = lt[i]->systopic != SYSTOPIC_NONE || topic_is_view(lt[i]);
            for (int j = 0; j < n && !there; j++)
                there = !strcmp(names[j], lt[i]->name);
            if (!there)
                rlog_warn("cluster: local topic %s is not in ZooKeeper; kept as it is",
                          lt[i]->name);
        }
        topics_list_free(lt, nl);
    }
    zk_free_names(names, n);
    return failed;
}

/* One queued path: a topic's znode or a partition's state. */
static int read_path(const char *path)
{
    const char *rest = path + strlen(ZNODE_TOPICS) + 1;
    const char *slash = strchr(rest, '/');
    char name[256];
    size_t nl = slash ? (size_t)(slash - rest) : strlen(rest);
    if (nl == 0 || nl >= sizeof name)
        return 0;
    memcpy(name, rest, nl);
    name[nl] = 0;
    if (!slash)
        return read_topic(name, false);
    int p;
    char tail[16];
    if (sscanf(slash, "/partitions/%d/%15s", &p, tail) != 2 || strcmp(tail, "state"))
        return 0;
    struct ctopic *t = find_topic(name);
    if (!t)
        return read_topic(name, false);
    if (p < 0 || p >= t->a.n)
        return 0;
    return read_state(t, p);
}

/* ---- the controller ---- */

static bool unclean_allowed(const struct ctopic *t)
{
    if (t->unclean >= 0)
        return t->unclean;
    return !strcmp(config_string(ct.cfg, "unclean.leader.election.enable"), "true");
}

/*
 * The state a partition should have given the live brokers, from the
 * one it has (Kafka's controller: OfflinePartitionLeaderElectionStrategy
 * on a lost leader, removal from the ISR of a lost follower).  False
 * when nothing is to change.
 */
static bool desired_state(const struct ctopic *t, int32_t p, struct znode_state *out, bool *unclean)
{
    const struct znode_state *cur = &t->p[p].st;
    const int32_t *reps = replicas_of(t, p);
    int32_t rf = t->a.rf[p];
    *out = *cur;
    *unclean = false;
    if (cur->leader >= 0 && is_live(cur->leader)) {
        /* Followers that are gone leave the ISR. */
        out->n_isr = 0;
        for (int32_t i = 0; i < cur->n_isr; i++)
            if (is_live(cur->isr[i]) || cur->isr[i] == cur->leader)
                out->isr[out->n_isr++] = cur->isr[i];
        if (out->n_isr == cur->n_isr)
            return false;
        out->leader_epoch = cur->leader_epoch + 1;
        return true;
    }
    /* No live leader: the first live replica in the ISR, in assignment order. */
    int32_t leader = -1;
    for (int32_t i = 0; i < rf && leader < 0; i++)
        if (is_live(reps[i]) && in_list(cur->isr, cur->n_isr, reps[i]))
            leader = reps[i];
    if (leader >= 0) {
        out->leader = leader;
        out->leader_epoch = cur->leader_epoch + 1;
        out->n_isr = 0;
        for (int32_t i = 0; i < cur->n_isr; i++)
            if (is_live(cur->isr[i]))
                out->isr[out->n_isr++] = cur->isr[i];
        return true;
    }
    if (unclean_allowed(t)) {
        for (int32_t i = 0; i < rf && leader < 0; i++)
            if (is_live(reps[i]))
                leader = reps[i];
        if (leader >= 0) {
            *unclean = true;
            out->leader = leader;
            out->leader_epoch = cur->leader_epoch + 1;
            out->n_isr = 1;
            out->isr[0] = leader;
            return true;
        }
    }
    if (cur->leader == -1)
        return false; /* offline already */
    /* Offline: Kafka keeps the ISR (the last leader stays in it). */
    out->leader = -1;
    out->leader_epoch = cur->leader_epoch + 1;
    return true;
}

/* A fenced write: check /controller_epoch, then the op.  ZOK, ZBADVERSION
 * / ZNODEEXISTS (the state moved: re-read), or -2 when fenced. */
static int fenced_write(const char *path, const char *json, int32_t version, bool create,
                        int32_t epoch_zkversion)
{
    zoo_op_t ops[2];
    zoo_op_result_t res[2];
    memset(res, 0, sizeof res);
    struct Stat st;
    zoo_check_op_init(&ops[0], ZNODE_CONTROLLER_EPOCH, epoch_zkversion);
    if (create)
        zoo_create_op_init(&ops[1], path, json, (int)strlen(json), &ZOO_OPEN_ACL_UNSAFE, 0, NULL,
                           0);
    else
        zoo_set_op_init(&ops[1], path, json, (int)strlen(json), version, &st);
    int rc = zk_multi(ct.zk, 2, ops, res);
    if (rc == ZOK)
        return ZOK;
    if (res[0].err == ZBADVERSION || res[0].err == ZNONODE)
        return -2;
    if (res[1].err == ZBADVERSION || res[1].err == ZNODEEXISTS || res[1].err == ZNONODE)
        return res[1].err == ZNONODE ? ZBADVERSION : res[1].err;
    return rc;
}

/* Creates missing states and fixes those the live set invalidated. */
static int reconcile(void)
{
    int32_t epoch, epoch_zkv;
    if (!cluster_is_controller(&epoch, &epoch_zkv))
        return 0;
    int failed = 0;
    for (int i = 0; i < ct.nt; i++) {
        struct ctopic *t = ct.t[i];
        for (int32_t p = 0; p < t->a.n; p++) {
            for (int attempt = 0; attempt < 3; attempt++) {
                char path[512];
                state_path(path, sizeof path, t->name, p);
                struct znode_state want;
                bool create = t->p[p].version < 0, unclean = false;
                if (create) {
                    const int32_t *reps = replicas_of(t, p);
                    memset(&want, 0, sizeof want);
                    want.leader = -1;
                    for (int32_t r = 0; r < t->a.rf[p]; r++)
                        if (is_live(reps[r])) {
                            if (want.leader < 0)
                                want.leader = reps[r];
                            want.isr[want.n_isr++] = reps[r];
                        }
                    if (want.leader < 0) /* none is live: all in the ISR, offline */
                        for (int32_t r = 0; r < t->a.rf[p]; r++)
                            want.isr[want.n_isr++] = reps[r];
                    char parent[512];
                    snprintf(parent, sizeof parent, "%s/%s/partitions/%d", ZNODE_TOPICS, t->name,
                             (int)p);
                    if (zk_create_parents(ct.zk, parent) != ZOK) {
                        failed |= CTOPICS_RETRY;
                        break;
                    }
                } else if (!desired_state(t, p, &want, &unclean))
                    break;
                want.controller_epoch = epoch;
                char *json = znode_state_encode(&want);
                if (!json) {
                    failed |= CTOPICS_RETRY;
                    break;
                }
                int rc = fenced_write(path, json, t->p[p].version, create, epoch_zkv);
                free(json);
                if (rc == -2) {
                    rlog_error("cluster: controller write to %s refused: %s moved since this "
                               "broker was elected with epoch %d (another controller?); "
                               "re-reading it",
                               path, ZNODE_CONTROLLER_EPOCH, (int)epoch);
                    return failed | CTOPICS_FENCED;
                }
                if (rc == ZOK) {
                    if (unclean)
                        rlog_warn("cluster: %s-%d: unclean leader election: broker %d was not "
                                  "in the ISR; records may be lost",
                                  t->name, (int)p, (int)want.leader);
                    else if (!create)
                        rlog_info("cluster: %s-%d: leader %d, epoch %d, isr of %d", t->name, (int)p,
                                  (int)want.leader, (int)want.leader_epoch, (int)want.n_isr);
                    read_state(t, p); /* its watch would tell too; now is sooner */
                    break;
                }
                if (rc == ZBADVERSION || rc == ZNODEEXISTS) {
                    if (read_state(t, p)) { /* someone else moved it: redo from there */
                        failed |= CTOPICS_RETRY;
                        break;
                    }
                    continue;
                }
                rlog_warn("cluster: writing %s: %s", path, zerror(rc));
                failed |= CTOPICS_RETRY;
                break;
            }
        }
    }
    return failed;
}

int ctopics_run(const struct cluster_broker *b, int nb)
{
    ct.live = b;
    ct.nlive = nb;
    pthread_mutex_lock(&ct.q_mu);
    bool full = ct.full, resync = ct.resync;
    ct.full = ct.resync = false;
    char **q = ct.q;
    int nq = ct.nq;
    ct.q = NULL;
    ct.nq = ct.capq = 0;
    pthread_mutex_unlock(&ct.q_mu);
    int failed = 0;
    if (full && read_all(resync))
        failed = CTOPICS_RETRY;
    for (int i = 0; i < nq; i++) {
        if (read_path(q[i]))
            failed = CTOPICS_RETRY;
        free(q[i]);
    }
    free(q);
    if (failed)
        ctopics_resync();
    failed |= reconcile();
    return failed;
}

void ctopics_close(void)
{
    for (int i = 0; i < ct.nt; i++)
        free_topic(ct.t[i]);
    free(ct.t);
    ct.t = NULL;
    ct.nt = 0;
    pthread_mutex_lock(&ct.q_mu);
    for (int i = 0; i < ct.nq; i++)
        free(ct.q[i]);
    free(ct.q);
    ct.q = NULL;
    ct.nq = ct.capq = 0;
    ct.full = true;
    pthread_mutex_unlock(&ct.q_mu);
    ct.local_checked = false;
}

/* ---- cluster_write_isr (any thread but a network thread) ---- */

int cluster_write_isr(const char *topic, int32_t partition, int32_t leader, int32_t leader_epoch,
                      const int32_t *isr, int32_t n_isr, int32_t expected_zk_version,
                      int32_t *new_zk_version)
{
    struct zk *z = cluster_zk();
    if (!z || n_isr < 0 || n_isr > CLUSTER_MAX_RF)
        return -1;
    char path[512], *data;
    int len;
    struct Stat st;
    state_path(path, sizeof path, topic, partition);
    int rc = zk_get(z, path, false, &data, &len, &st);
    if (rc != ZOK) {
        rlog_warn("cluster: reading %s: %s", path, zerror(rc));
        return -1;
    }
    struct znode_state s;
    int bad = !data || znode_state_decode(data, (size_t)len, &s);
    free(data);
    if (bad)
        return -1;
    if (st.version != expected_zk_version)
        return 1;
    s.leader = leader;
    s.leader_epoch = leader_epoch;
    s.n_isr = n_isr;
    memcpy(s.isr, isr, (size_t)n_isr * sizeof *isr);
    char *json = znode_state_encode(&s);
    if (!json)
        return -1;
    rc = zk_set(z, path, json, (int)strlen(json), expected_zk_version, &st);
    free(json);
    if (rc == ZBADVERSION)
        return 1;
    if (rc != ZOK) {
        rlog_warn("cluster: writing %s: %s", path, zerror(rc));
        return -1;
    }
    if (new_zk_version)
        *new_zk_version = st.version;
    return 0;
}

/* ---- topic creation (network threads, through topics' hook) ---- */

static uint32_t rnd(uint32_t n)
{
    uint32_t x = 0;
    if (getrandom(&x, sizeof x, 0) != (ssize_t)sizeof x)
        x = (uint32_t)rand();
    return n ? x % n : 0;
}

static int replica_index(int first, int shift, int j, int n)
{
    int s = 1 + (shift + j) % (n - 1);
    return (first + s) % n;
}

static int cmp_rack_id(const void *a, const void *b)
{
    const struct cluster_broker *x = a, *y = b;
    int c = strcmp(x->rack, y->rack);
    return c ? c : (x->id < y->id ? -1 : x->id > y->id);
}

/*
 * Kafka's AdminUtils.assignReplicasToBrokers over the live brokers b
 * (sorted by id): rack aware when every broker has a rack.  out gets
 * nparts * rf ids, partition i at i * CLUSTER_MAX_RF.  start_partition
 * > 0 continues an existing assignment (CreatePartitions).
 */
static void assign(const struct cluster_broker *b, int n, int32_t nparts, int32_t rf,
                   int32_t start_partition, int32_t *out)
{
    bool racks = n > 0;
    for (int i = 0; i < n; i++)
        racks = racks && b[i].rack[0];
    int32_t *arranged = malloc((size_t)n * sizeof *arranged);
    char(*rackof)[128] = malloc((size_t)n * sizeof *rackof);
    int nracks = 0;
    if (!arranged || !rackof) {
        free(arranged);
        free(rackof);
        for (int32_t p = 0; p < nparts; p++)
            for (int32_t r = 0; r < rf; r++)
                out[p * CLUSTER_MAX_RF + r] = b[(p + r) % n].id;
        return;
    }
    if (!racks) {
        for (int i = 0; i < n; i++)
            arranged[i] = b[i].id;
    } else {
        /* getRackAlternatedBrokerList: racks in order, brokers by id,
         * one of each rack in turn. */
        struct cluster_broker *s = malloc((size_t)n * sizeof *s);
        int *start = calloc((size_t)n + 1, sizeof *start);
        int *next = calloc((size_t)n + 1, sizeof *next);
        if (!s || !start || !next) {
            for (int i = 0; i < n; i++)
                arranged[i] = b[i].id;
            racks = false;
        } else {
            memcpy(s, b, (size_t)n * sizeof *s);
            qsort(s, (size_t)n, sizeof *s, cmp_rack_id);
            for (int i = 0; i < n; i++)
                if (!i || strcmp(s[i].rack, s[i - 1].rack))
                    start[nracks++] = i;
            start[nracks] = n;
            for (int r = 0; r < nracks; r++)
                next[r] = start[r];
            int k = 0;
            for (int r = 0; k < n; r = (r + 1) % nracks)
                if (next[r] < start[r + 1]) {
                    snprintf(rackof[k], sizeof rackof[k], "%s", s[next[r]].rack);
                    arranged[k++] = s[next[r]++].id;
                }
        }
        free(s);
        free(start);
        free(next);
    }
    int start_index = (int)rnd((uint32_t)n);
    int shift = (int)rnd((uint32_t)n);
    for (int32_t p = 0; p < nparts; p++) {
        int32_t cur = start_partition + p;
        if (cur > 0 && cur % n == 0)
            shift++;
        int first = (int)((cur + start_index) % n);
        int32_t *o = &out[p * CLUSTER_MAX_RF];
        o[0] = arranged[first];
        if (!racks) {
            for (int32_t j = 0; j < rf - 1; j++)
                o[j + 1] = arranged[replica_index(first, shift, j, n)];
            continue;
        }
        int chosen[CLUSTER_MAX_RF]; /* indices into arranged */
        chosen[0] = first;
        int32_t have = 1;
        for (int k = 0; have < rf; k++) {
            int idx = replica_index(first, shift * nracks, k, n);
            int racks_used = 0;
            bool rack_used = false, broker_used = false;
            for (int32_t h = 0; h < have; h++) {
                broker_used = broker_used || chosen[h] == idx;
                rack_used = rack_used || !strcmp(rackof[chosen[h]], rackof[idx]);
                bool earlier = false;
                for (int32_t g = 0; g < h; g++)
                    earlier = earlier || !strcmp(rackof[chosen[g]], rackof[chosen[h]]);
                racks_used += !earlier;
            }
            if ((!rack_used || racks_used == nracks) && (!broker_used || have == n)) {
                chosen[have] = idx;
                o[have++] = arranged[idx];
            }
        }
    }
    free(arranged);
    free(rackof);
}

static int16_t live_brokers(struct cluster_broker **out, int *n, char *err, size_t errlen)
{
    const struct cluster_snapshot *s = cluster_snapshot_get();
    if (!s || s->n == 0) {
        cluster_snapshot_put(s);
        snprintf(err, errlen, "no live brokers known yet");
        return KERR_INVALID_REPLICATION_FACTOR;
    }
    *out = malloc((size_t)s->n * sizeof **out);
    if (!*out) {
        cluster_snapshot_put(s);
        return KERR_UNKNOWN_SERVER_ERROR;
    }
    memcpy(*out, s->b, (size_t)s->n * sizeof **out);
    *n = s->n;
    cluster_snapshot_put(s);
    return KERR_NONE;
}

int16_t cluster_create_topic(void *ctx, const struct topics_create_request *rq, char *err,
                             size_t errlen)
{
    (void)ctx;
    struct zk *z = cluster_zk();
    if (!z) {
        snprintf(err, errlen, "not connected to the cluster");
        return KERR_UNKNOWN_SERVER_ERROR;
    }
    char name[256];
    snprintf(name, sizeof name, "%.*s", (int)rq->len, rq->name);
    struct cluster_broker *b = NULL;
    int nb = 0;
    int16_t code = live_brokers(&b, &nb, err, errlen);
    if (code)
        return code;
    int32_t nparts = rq->partitions;
    struct znode_assignment a = {.n = nparts};
    a.rf = calloc((size_t)nparts, sizeof *a.rf);
    a.replicas = calloc((size_t)nparts * CLUSTER_MAX_RF, sizeof *a.replicas);
    if (!a.rf || !a.replicas) {
        free(b);
        znode_assignment_free(&a);
        return KERR_UNKNOWN_SERVER_ERROR;
    }
    if (rq->assignment) {
        int32_t rf = rq->assignment_rf;
        if (rf < 1 || rf > CLUSTER_MAX_RF) {
            snprintf(err, errlen, "a replica list must have 1 to %d brokers", CLUSTER_MAX_RF);
            code = KERR_INVALID_REPLICA_ASSIGNMENT;
        }
        for (int32_t p = 0; !code && p < nparts; p++) {
            a.rf[p] = rf;
            for (int32_t r = 0; !code && r < rf; r++) {
                int32_t id = rq->assignment[p * rf + r];
                bool known = false;
                for (int i = 0; i < nb; i++)
                    known = known || b[i].id == id;
                for (int32_t q = 0; q < r; q++)
                    if (a.replicas[p * CLUSTER_MAX_RF + q] == id)
                        known = false;
                if (!known) {
                    snprintf(err, errlen,
                             "partition %d: broker %d is not a live broker or is listed twice",
                             (int)p, (int)id);
                    code = KERR_INVALID_REPLICA_ASSIGNMENT;
                }
                a.replicas[p * CLUSTER_MAX_RF + r] = id;
            }
        }
    } else {
        int32_t rf = rq->replication_factor;
        if (rf == -1)
            rf = (int32_t)config_long(ct.cfg, "default.replication.factor");
        if (rf < 1 || rf > nb || rf > CLUSTER_MAX_RF) {
            snprintf(err, errlen, "replication factor %d is larger than the %d live brokers",
                     (int)rf, nb);
            if (rf < 1)
                snprintf(err, errlen, "replication factor must be at least 1");
            code = KERR_INVALID_REPLICATION_FACTOR;
        } else {
            for (int32_t p = 0; p < nparts; p++)
                a.rf[p] = rf;
            assign(b, nb, nparts, rf, 0, a.replicas);
        }
    }
    free(b);
    if (code || rq->validate_only) {
        znode_assignment_free(&a);
        return code;
    }
    uint8_t id[16];
    if (getrandom(id, sizeof id, 0) != (ssize_t)sizeof id) {
        znode_assignment_free(&a);
        return KERR_UNKNOWN_SERVER_ERROR;
    }
    id[6] = (uint8_t)((id[6] & 0x0f) | 0x40);
    id[8] = (uint8_t)((id[8] & 0x3f) | 0x80);
    char *topic_json = znode_topic_encode(&a, id);
    znode_assignment_free(&a);
    int no = rq->overrides ? rq->overrides->n : 0;
    const char **keys = calloc((size_t)no + 1, sizeof *keys);
    const char **vals = calloc((size_t)no + 1, sizeof *vals);
    for (int i = 0; keys && vals && i < no; i++) {
        keys[i] = rq->overrides->kv[i].key;
        vals[i] = rq->overrides->kv[i].value;
    }
    char *config_json = keys && vals ? znode_config_encode(keys, vals, no) : NULL;
    free(keys);
    free(vals);
    if (!topic_json || !config_json) {
        free(topic_json);
        free(config_json);
        return KERR_UNKNOWN_SERVER_ERROR;
    }
    char tpath[512], cpath[512];
    snprintf(tpath, sizeof tpath, "%s/%s", ZNODE_TOPICS, name);
    snprintf(cpath, sizeof cpath, "%s/%s", ZNODE_CONFIG_TOPICS, name);
    int rc = zk_create_parents(z, ZNODE_TOPICS);
    if (rc == ZOK)
        rc = zk_create_parents(z, ZNODE_CONFIG_TOPICS);
    if (rc == ZOK && zk_exists(z, tpath, false, NULL) == ZOK)
        rc = ZNODEEXISTS;
    /* Kafka's order: the configs first, so a broker that learns the
     * topic finds them. */
    if (rc == ZOK) {
        rc = zk_create(z, cpath, config_json, (int)strlen(config_json), false);
        if (rc == ZNODEEXISTS) /* left by an earlier topic of this name */
            rc = zk_set(z, cpath, config_json, (int)strlen(config_json), -1, NULL);
    }
    if (rc == ZOK)
        rc = zk_create(z, tpath, topic_json, (int)strlen(topic_json), false);
    free(topic_json);
    free(config_json);
    if (rc == ZNODEEXISTS) {
        snprintf(err, errlen, "topic '%s' already exists", name);
        return KERR_TOPIC_ALREADY_EXISTS;
    }
    if (rc != ZOK) {
        snprintf(err, errlen, "cannot write %s to ZooKeeper: %s", tpath, zerror(rc));
        return KERR_UNKNOWN_SERVER_ERROR;
    }
    rlog_info("cluster: wrote %s with %d partitions", tpath, (int)nparts);
    return KERR_NONE;
}

int16_t cluster_add_partitions(void *ctx, struct topic *t, int32_t total, char *err, size_t errlen)
{
    (void)ctx;
    struct zk *z = cluster_zk();
    if (!z) {
        snprintf(err, errlen, "not connected to the cluster");
        return KERR_UNKNOWN_SERVER_ERROR;
    }
    char path[512], *data;
    int len;
    struct Stat st;
    snprintf(path, sizeof path, "%s/%s", ZNODE_TOPICS, t->name);
    int rc = zk_get(z, path, false, &data, &len, &st);
    if (rc == ZNONODE) {
        snprintf(err, errlen, "topic '%s' is not in ZooKeeper", t->name);
        return KERR_UNKNOWN_TOPIC_OR_PARTITION;
    }
    if (rc != ZOK) {
        snprintf(err, errlen, "reading %s: %s", path, zerror(rc));
        return KERR_UNKNOWN_SERVER_ERROR;
    }
    struct znode_assignment a;
    uint8_t id[16];
    int has_id;
    int bad = !data || znode_topic_decode(data, (size_t)len, &a, id, &has_id);
    free(data);
    if (bad) {
        snprintf(err, errlen, "%s holds no assignment Runnel can read", path);
        return KERR_UNKNOWN_SERVER_ERROR;
    }
    if (!has_id)
        memcpy(id, t->id.b, 16);
    if (total <= a.n) {
        snprintf(err, errlen, "topic has %d partitions; the new count must be larger", (int)a.n);
        znode_assignment_free(&a);
        return KERR_INVALID_PARTITIONS;
    }
    struct cluster_broker *b = NULL;
    int nb = 0;
    int16_t code = live_brokers(&b, &nb, err, errlen);
    int32_t rf = a.rf[0];
    int32_t *nrf = realloc(a.rf, (size_t)total * sizeof *nrf);
    if (nrf)
        a.rf = nrf;
    int32_t *nrep = nrf ? realloc(a.replicas, (size_t)total * CLUSTER_MAX_RF * sizeof *nrep) : NULL;
    if (nrep)
        a.replicas = nrep;
    if (!code && (!nrf || !nrep))
        code = KERR_UNKNOWN_SERVER_ERROR;
    if (!code && rf > nb) {
        snprintf(err, errlen, "replication factor %d is larger than the %d live brokers", (int)rf,
                 nb);
        code = KERR_INVALID_REPLICATION_FACTOR;
    }
    if (code) {
        free(b);
        znode_assignment_free(&a);
        return code;
    }
    int32_t old = a.n;
    for (int32_t p = old; p < total; p++)
        a.rf[p] = rf;
    assign(b, nb, total - old, rf, old, &a.replicas[old * CLUSTER_MAX_RF]);
    free(b);
    a.n = total;
    char *json = znode_topic_encode(&a, id);
    znode_assignment_free(&a);
    if (!json)
        return KERR_UNKNOWN_SERVER_ERROR;
    rc = zk_set(z, path, json, (int)strlen(json), st.version, NULL);
    free(json);
    if (rc == ZBADVERSION) {
        snprintf(err, errlen, "the assignment of '%s' changed meanwhile; try again", t->name);
        return KERR_INVALID_REQUEST;
    }
    if (rc != ZOK) {
        snprintf(err, errlen, "writing %s: %s", path, zerror(rc));
        return KERR_UNKNOWN_SERVER_ERROR;
    }
    return KERR_NONE;
}
