/*
 * Topic registry and its metadata files.
 *
 * <log.dirs>/meta.properties (text, written once when the directory is new):
 *   version=1
 *   cluster.id=<22 characters, random>
 *   node.id=<int>
 *
 * <log.dirs>/runnel-topics/<topic>.topic (text, one per topic), rewritten
 * whole on every change by fsutil_write_atomic (temporary file, fsync,
 * rename, fsync dir), so a crash leaves the old or the new file:
 *   version=1
 *   id=<32 hex digits: the topic id (uuid)>
 *   partitions=<int>
 *   remote=<i>,<j>,...                     (cluster mode: partitions this broker
 *                                           holds no replica of; absent: none)
 *   config.<topic config key>=<value>     (zero or more overrides)
 *
 * A filtered view (view.h) has the same file: view.source among its
 * config lines makes it a view.  Its partitions line holds its source's
 * count when the file was written and is not used (a view always has its
 * source's partitions); it has no partition directories.
 *
 * Partition data lives in <log.dirs>/<topic>-<partition>/ (storage/).
 * A deleted topic's metadata file goes first, then its partition
 * directories; on start, partition directories no topic file claims are
 * leftovers of an interrupted delete and are removed.
 */
#define _XOPEN_SOURCE 700
#include "broker/topics.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "common/name_table.h"
#include "common/rlog.h"
#include "broker/system_topics.h"
#include "common/kerr.h"

static struct {
    pthread_rwlock_t lock;
    const struct broker_config *cfg;
    struct topic **t; /* sorted by name */
    int n, cap;
    char meta_dir[4200];
    char cluster_id[32];
    topics_create_hook_fn create_hook;
    void *create_ctx;
    topics_partitions_hook_fn parts_hook;
    void *parts_ctx;
} reg = {.lock = PTHREAD_RWLOCK_INITIALIZER};

void topics_set_create_hook(topics_create_hook_fn fn, void *ctx)
{
    reg.create_hook = fn;
    reg.create_ctx = ctx;
}

void topics_set_partitions_hook(topics_partitions_hook_fn fn, void *ctx)
{
    reg.parts_hook = fn;
    reg.parts_ctx = ctx;
}

const struct broker_config *topics_broker_config(void)
{
    return reg.cfg;
}

const char *topics_cluster_id(void)
{
    return reg.cluster_id;
}

bool topics_valid_name(const char *name, size_t len)
{
    if (len == 0 || len > 249)
        return false;
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* ---- files ---- */

static void uuid_hex(kuuid_t id, char out[33])
{
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", id.b[i]);
}

static int save_topic(struct topic *t)
{
    char buf[65536];
    char hex[33];
    uuid_hex(t->id, hex);
    int32_t nparts = topic_read_partition_count(t);
    int n = snprintf(buf, sizeof buf, "version=1\nid=%s\npartitions=%d\n", hex,
                     nparts > 0 ? nparts : 1);
    struct partition_set *ps = atomic_load(&t->parts);
    for (int32_t i = 0, first = 1; i < ps->n && n < (int)sizeof buf; i++)
        if (!ps->p[i]->is_replica) {
            n += snprintf(buf + n, sizeof buf - (size_t)n, "%s%d", first ? "remote=" : ",", (int)i);
            first = 0;
        }
    if (n < (int)sizeof buf && n > 0 && buf[n - 1] != '\n')
        n += snprintf(buf + n, sizeof buf - (size_t)n, "\n");
    for (int i = 0; i < t->overrides.n && n < (int)sizeof buf; i++)
        n += snprintf(buf + n, sizeof buf - (size_t)n, "config.%s=%s\n", t->overrides.kv[i].key,
                      t->overrides.kv[i].value);
    if (n >= (int)sizeof buf)
        return -1;
    char fname[300];
    snprintf(fname, sizeof fname, "%s.topic", t->name);
    return fsutil_write_atomic(reg.meta_dir, fname, buf, (size_t)n);
}

/* ---- table ---- */

static const char *topic_name_at(const void *table, int i)
{
    return ((struct topic *const *)table)[i]->name;
}

static int find_idx(const char *name, size_t len, bool *found)
{
    return name_table_find(reg.t, reg.n, topic_name_at, name, len, found);
}

static int table_insert(struct topic *t)
{
    bool found;
    int i = find_idx(t->name, strlen(t->name), &found);
    if (found)
        return -1;
    if (reg.n == reg.cap) {
        int cap = reg.cap ? reg.cap * 2 : 16;
        struct topic **nt = realloc(reg.t, (size_t)cap * sizeof *nt);
        if (!nt)
            return -1;
        reg.t = nt;
        reg.cap = cap;
    }
    memmove(&reg.t[i + 1], &reg.t[i], (size_t)(reg.n - i) * sizeof *reg.t);
    reg.t[i] = t;
    reg.n++;
    return 0;
}

static void partition_dir(char *out, size_t outlen, const char *topic, int32_t idx)
{
    snprintf(out, outlen, "%s/%s-%d", reg.cfg->log_dir, topic, idx);
}

/* Frees a topic whose last reference is gone. */
static void topic_free(struct topic *t, bool flush)
{
    struct partition_set *s = atomic_load(&t->parts);
    for (int32_t i = 0; s && i < s->n; i++)
        partition_free(s->p[i], flush);
    while (s) {
        struct partition_set *next = s->retired_next;
        free(s);
        s = next;
    }
    struct topic_settings_snap *st = atomic_load(&t->settings);
    while (st) {
        struct topic_settings_snap *next = st->retired_next;
        free(st);
        st = next;
    }
    view_free(t->view);
    config_overrides_free(&t->overrides);
    free(t->name);
    free(t);
}

void topic_put(struct topic *t)
{
    if (t && atomic_fetch_sub(&t->refs, 1) == 1)
        topic_free(t, true);
}

static struct topic *topic_new(const char *name, size_t len)
{
    struct topic *t = calloc(1, sizeof *t);
    if (!t || !(t->name = strndup(name, len))) {
        free(t);
        return NULL;
    }
    atomic_store(&t->refs, 1); /* the registry's reference */
    t->systopic = (uint8_t)systopic_kind(t->name, len, NULL, NULL);
    return t;
}

/* A topic's first settings snapshot, from its overrides; before the topic
 * is shared, so a plain store.  0, or -1 with a message. */
static int init_settings(struct topic *t, char *err, size_t errlen)
{
    struct topic_settings_snap *st = calloc(1, sizeof *st);
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (config_resolve_topic(reg.cfg, &t->overrides, &st->s, err, errlen)) {
        free(st);
        return -1;
    }
    atomic_store_explicit(&t->settings, st, memory_order_relaxed);
    return 0;
}

/* Whether the cluster's state decides who leads t's partitions: cluster
 * mode (zookeeper.connect), an ordinary topic.  The broker's own
 * __runnel.* topics and filtered views stay local, as in topics_create,
 * and so does __consumer_offsets for now: the group store opens it before
 * the broker joins the cluster, and each broker coordinates from its own
 * copy (README, cluster mode). */
static bool cluster_led(const struct topic *t)
{
    return *config_string(reg.cfg, "zookeeper.connect") && !t->view &&
           t->systopic == SYSTOPIC_NONE && strcmp(t->name, "__consumer_offsets") != 0;
}

/* Opens partitions [from, to) into a new set that keeps the old ones;
 * local[i] false (local non-NULL): partition i without a log here. */
static struct partition_set *open_partitions(struct topic *t, struct partition_set *old, int32_t to,
                                             const bool *local, bool clean, char *err,
                                             size_t errlen)
{
    int32_t from = old ? old->n : 0;
    struct partition_set *s = calloc(1, sizeof *s + (size_t)to * sizeof s->p[0]);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->n = to;
    for (int32_t i = 0; i < from; i++)
        s->p[i] = old->p[i];
    for (int32_t i = from; i < to; i++) {
        char dir[4608];
        partition_dir(dir, sizeof dir, t->name, i);
        if (local && !local[i]) {
            s->p[i] = partition_open_remote(t, i, reg.cfg->node_id);
            if (!s->p[i])
                snprintf(err, errlen, "out of memory");
        } else
            s->p[i] = partition_open(t, i, dir, &topic_settings(t)->log, reg.cfg->node_id, clean,
                                     err, errlen);
        if (!s->p[i]) {
            for (int32_t j = from; j < i; j++)
                partition_free(s->p[j], false);
            free(s);
            return NULL;
        }
        if (cluster_led(t))
            partition_await_state(s->p[i]);
    }
    s->retired_next = old;
    return s;
}

/* A view's partition set: empty, its reads go to the source's. */
static struct partition_set *no_partitions(void)
{
    return calloc(1, sizeof(struct partition_set));
}

/* ---- open / close ---- */

static int load_cluster_id(char *err, size_t errlen)
{
    char path[4608];
    snprintf(path, sizeof path, "%s/meta.properties", reg.cfg->log_dir);
    FILE *f = fopen(path, "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f))
            if (!strncmp(line, "cluster.id=", 11)) {
                line[strcspn(line, "\r\n")] = 0;
                snprintf(reg.cluster_id, sizeof reg.cluster_id, "%.31s", line + 11);
            }
        fclose(f);
        if (reg.cluster_id[0])
            return 0;
    }
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint8_t rnd[22];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
        snprintf(err, errlen, "getrandom: %s", strerror(errno));
        return -1;
    }
    for (int i = 0; i < 22; i++)
        reg.cluster_id[i] = alphabet[rnd[i] & 63];
    reg.cluster_id[22] = 0;
    char buf[256];
    int n = snprintf(buf, sizeof buf, "version=1\ncluster.id=%s\nnode.id=%d\n", reg.cluster_id,
                     reg.cfg->node_id);
    if (fsutil_write_atomic(reg.cfg->log_dir, "meta.properties", buf, (size_t)n)) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

int topics_adopt_cluster_id(const char *id, char *err, size_t errlen)
{
    char buf[256];
    int n =
        snprintf(buf, sizeof buf, "version=1\ncluster.id=%s\nnode.id=%d\n", id, reg.cfg->node_id);
    if (n >= (int)sizeof buf - 1 || strlen(id) >= sizeof reg.cluster_id) {
        snprintf(err, errlen, "cluster id '%s' is too long", id);
        return -1;
    }
    if (fsutil_write_atomic(reg.cfg->log_dir, "meta.properties", buf, (size_t)n)) {
        snprintf(err, errlen, "cannot write %s/meta.properties: %s", reg.cfg->log_dir,
                 strerror(errno));
        return -1;
    }
    pthread_rwlock_wrlock(&reg.lock);
    snprintf(reg.cluster_id, sizeof reg.cluster_id, "%s", id);
    pthread_rwlock_unlock(&reg.lock);
    return 0;
}

static int load_topic_file(const char *fname, bool clean, char *err, size_t errlen)
{
    size_t flen = strlen(fname);
    if (flen < 7 || strcmp(fname + flen - 6, ".topic"))
        return 0;
    char path[4608];
    snprintf(path, sizeof path, "%s/%s", reg.meta_dir, fname);
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    struct topic *t = topic_new(fname, flen - 6);
    if (!t) {
        fclose(f);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int32_t nparts = -1;
    char remote[8192] = "";
    char line[8192];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        char *eq = strchr(line, '=');
        if (!eq)
            continue;
        *eq = 0;
        const char *v = eq + 1;
        if (!strcmp(line, "partitions"))
            nparts = atoi(v);
        else if (!strcmp(line, "remote"))
            snprintf(remote, sizeof remote, "%s", v);
        else if (!strcmp(line, "id") && strlen(v) == 32) {
            for (int i = 0; i < 16; i++) {
                unsigned x;
                sscanf(v + 2 * i, "%2x", &x);
                t->id.b[i] = (uint8_t)x;
            }
        } else if (!strncmp(line, "config.", 7))
            config_overrides_set(&t->overrides, line + 7, v);
    }
    fclose(f);
    if (nparts < 1 || !topics_valid_name(t->name, strlen(t->name))) {
        snprintf(err, errlen, "%s: damaged topic file (no valid partition count or name)", path);
        topic_free(t, false);
        return -1;
    }
    if (init_settings(t, err, errlen)) {
        topic_free(t, false);
        return -1;
    }
    bool is_view = config_overrides_get(&t->overrides, VIEW_SOURCE_KEY) != NULL;
    if (is_view && !(t->view = view_new())) {
        snprintf(err, errlen, "out of memory");
        topic_free(t, false);
        return -1;
    }
    bool *local = NULL;
    if (remote[0] && !is_view && (local = malloc((size_t)nparts * sizeof *local))) {
        for (int32_t i = 0; i < nparts; i++)
            local[i] = true;
        for (char *c = remote; *c;) {
            char *end;
            long i = strtol(c, &end, 10);
            if (end == c)
                break;
            if (i >= 0 && i < nparts)
                local[i] = false;
            c = *end == ',' ? end + 1 : end;
        }
    }
    struct partition_set *s =
        is_view ? no_partitions() : open_partitions(t, NULL, nparts, local, clean, err, errlen);
    free(local);
    if (!s) {
        if (is_view)
            snprintf(err, errlen, "out of memory");
        topic_free(t, false);
        return -1;
    }
    atomic_store(&t->parts, s);
    if (table_insert(t)) {
        topic_free(t, false);
        snprintf(err, errlen, "duplicate topic %s", fname);
        return -1;
    }
    return 0;
}

/*
 * Gives each loaded view its source and filter, once every topic file is
 * read (files come in directory order).  A view whose source is missing
 * or whose filter no longer compiles (the files were edited by hand) is
 * kept, with an error in the log: its reads answer
 * UNKNOWN_TOPIC_OR_PARTITION until it is deleted or altered.
 */
static void link_views(void)
{
    for (int i = 0; i < reg.n; i++) {
        struct topic *t = reg.t[i];
        if (!t->view)
            continue;
        const char *src = config_overrides_get(&t->overrides, VIEW_SOURCE_KEY);
        bool found;
        int j = find_idx(src, strlen(src), &found);
        if (found && !reg.t[j]->view && j != i) {
            t->view->source = reg.t[j];
            atomic_fetch_add(&reg.t[j]->refs, 1);
        } else {
            rlog_error("view %s: its source topic '%s' is missing", t->name, src);
        }
        bool is_view;
        struct view_filter *vf;
        char err[256];
        if (view_check_overrides(&t->overrides, &is_view, &vf, err, sizeof err))
            rlog_error("view %s: %s", t->name, err);
        else
            view_set_filter(t->view, vf);
    }
}

/* Removes partition directories that no topic claims (interrupted deletes). */
static void remove_orphans(void)
{
    DIR *d = opendir(reg.cfg->log_dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *dash = strrchr(e->d_name, '-');
        if (!dash || dash == e->d_name || e->d_name[0] == '.')
            continue;
        char path[4608];
        snprintf(path, sizeof path, "%s/%s", reg.cfg->log_dir, e->d_name);
        if (!strcmp(dash, "-delete")) {
            fsutil_rm_rf(path);
            continue;
        }
        char *end;
        long idx = strtol(dash + 1, &end, 10);
        if (*end || end == dash + 1)
            continue;
        bool found;
        int i = find_idx(e->d_name, (size_t)(dash - e->d_name), &found);
        if (found && idx < topic_partition_count(reg.t[i]))
            continue;
        struct stat st;
        if (stat(path, &st) || !S_ISDIR(st.st_mode))
            continue;
        rlog_warn("removing partition directory %s: no topic owns it", path);
        fsutil_rm_rf(path);
    }
    closedir(d);
}

int topics_open(const struct broker_config *cfg, bool clean, char *err, size_t errlen)
{
    reg.cfg = cfg;
    snprintf(reg.meta_dir, sizeof reg.meta_dir, "%s/runnel-topics", cfg->log_dir);
    if (mkdir(reg.meta_dir, 0755) && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", reg.meta_dir, strerror(errno));
        return -1;
    }
    if (load_cluster_id(err, errlen))
        return -1;
    DIR *d = opendir(reg.meta_dir);
    if (!d) {
        snprintf(err, errlen, "cannot open %s: %s", reg.meta_dir, strerror(errno));
        return -1;
    }
    struct dirent *e;
    int rc = 0;
    while (!rc && (e = readdir(d))) {
        if (fsutil_is_temp(e->d_name)) {
            char p[4608];
            snprintf(p, sizeof p, "%s/%s", reg.meta_dir, e->d_name);
            unlink(p); /* an interrupted rewrite; the old file stands */
            continue;
        }
        rc = load_topic_file(e->d_name, clean, err, errlen);
    }
    closedir(d);
    if (rc)
        return -1;
    link_views();
    remove_orphans();
    return 0;
}

void topics_close(bool flush)
{
    pthread_rwlock_wrlock(&reg.lock);
    for (int i = 0; i < reg.n; i++) {
        struct topic *t = reg.t[i];
        if (atomic_fetch_sub(&t->refs, 1) == 1)
            topic_free(t, flush);
    }
    free(reg.t);
    reg.t = NULL;
    reg.n = reg.cap = 0;
    pthread_rwlock_unlock(&reg.lock);
}

/* ---- lookups and changes ---- */

struct topic *topics_get(const char *name, size_t len)
{
    pthread_rwlock_rdlock(&reg.lock);
    bool found;
    int i = find_idx(name, len, &found);
    struct topic *t = NULL;
    if (found) {
        t = reg.t[i];
        atomic_fetch_add(&t->refs, 1);
    }
    pthread_rwlock_unlock(&reg.lock);
    return t;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Cluster mode: the hook wrote the topic; it is ours once the cluster
 * thread learnt it.  REQUEST_TIMED_OUT when that takes too long. */
static int16_t wait_created(const char *name, size_t len, int32_t min_partitions,
                            struct topic **out, char *err, size_t errlen)
{
    for (int waited = 0;; waited += 10) {
        struct topic *t = topics_get(name, len);
        if (t && topic_partition_count(t) >= min_partitions) {
            if (out)
                *out = t;
            else
                topic_put(t);
            return KERR_NONE;
        }
        topic_put(t);
        if (waited >= TOPICS_CREATE_WAIT_MS) {
            snprintf(err, errlen, "topic '%.*s' was written to ZooKeeper but has not arrived here",
                     (int)len, name);
            return KERR_REQUEST_TIMED_OUT;
        }
        sleep_ms(10);
    }
}

int16_t topics_create(const char *name, size_t len, int32_t partitions,
                      const struct config_overrides *o, bool validate_only, struct topic **out,
                      char *err, size_t errlen)
{
    return topics_create_replicated(name, len, partitions, -1, NULL, 0, o, validate_only, out, err,
                                    errlen);
}

int16_t topics_create_replicated(const char *name, size_t len, int32_t partitions,
                                 int16_t replication_factor, const int32_t *assignment,
                                 int32_t assignment_rf, const struct config_overrides *o,
                                 bool validate_only, struct topic **out, char *err, size_t errlen)
{
    err[0] = 0;
    if (!topics_valid_name(name, len)) {
        snprintf(err, errlen,
                 "topic name is illegal: 1-249 characters of [a-zA-Z0-9._-], "
                 "not '.' or '..'");
        return KERR_INVALID_TOPIC_EXCEPTION;
    }
    enum systopic sys = systopic_kind(name, len, NULL, NULL);
    if (sys == SYSTOPIC_RESERVED) {
        snprintf(err, errlen,
                 "topic names starting with " SYSTOPIC_PREFIX " are reserved for the broker");
        return KERR_INVALID_TOPIC_EXCEPTION;
    }
    struct config_overrides none = {0};
    if (!o)
        o = &none;
    for (int i = 0; i < o->n; i++)
        if (config_validate_topic(o->kv[i].key, o->kv[i].value, err, errlen))
            return KERR_INVALID_CONFIG;
    bool is_view;
    struct view_filter *vf;
    int16_t code = view_check_overrides(o, &is_view, &vf, err, errlen);
    if (code)
        return code;
    if (is_view && sys != SYSTOPIC_NONE) {
        view_filter_put(vf);
        snprintf(err, errlen, "the broker's own topics cannot be views");
        return KERR_INVALID_CONFIG;
    }
    if (!is_view) {
        if (partitions == -1)
            partitions = sys != SYSTOPIC_NONE ? 1 : reg.cfg->num_partitions;
        if (partitions < 1 || partitions > 100000) {
            snprintf(err, errlen, "number of partitions must be between 1 and 100000");
            return KERR_INVALID_PARTITIONS;
        }
    }
    if (reg.create_hook && !is_view && sys == SYSTOPIC_NONE) {
        struct topic *had = topics_get(name, len);
        if (had) {
            topic_put(had);
            snprintf(err, errlen, "topic '%.*s' already exists", (int)len, name);
            return KERR_TOPIC_ALREADY_EXISTS;
        }
        struct topics_create_request rq = {
            .name = name,
            .len = len,
            .partitions = partitions,
            .replication_factor = replication_factor,
            .assignment = assignment,
            .assignment_rf = assignment_rf,
            .overrides = o,
            .validate_only = validate_only,
        };
        code = reg.create_hook(reg.create_ctx, &rq, err, errlen);
        if (code || validate_only)
            return code;
        return wait_created(name, len, 1, out, err, errlen);
    }
    struct topic *t = topic_new(name, len);
    if (!t || (is_view && !(t->view = view_new()))) {
        view_filter_put(vf);
        if (t)
            topic_free(t, false);
        snprintf(err, errlen, "out of memory");
        return KERR_UNKNOWN_SERVER_ERROR;
    }
    if (config_overrides_copy(&t->overrides, o) || init_settings(t, err, errlen)) {
        view_filter_put(vf);
        topic_free(t, false);
        return KERR_INVALID_CONFIG;
    }
    pthread_rwlock_wrlock(&reg.lock);
    bool found;
    find_idx(name, len, &found);
    if (found) {
        pthread_rwlock_unlock(&reg.lock);
        view_filter_put(vf);
        topic_free(t, false);
        snprintf(err, errlen, "topic '%.*s' already exists", (int)len, name);
        return KERR_TOPIC_ALREADY_EXISTS;
    }
    struct topic *src = NULL;
    if (is_view) {
        const char *sname = config_overrides_get(o, VIEW_SOURCE_KEY);
        int si = find_idx(sname, strlen(sname), &found);
        src = found ? reg.t[si] : NULL;
        if (!src) {
            code = KERR_INVALID_CONFIG;
            snprintf(err, errlen, "%s: there is no topic '%s'", VIEW_SOURCE_KEY, sname);
        } else if (src->view) {
            code = KERR_INVALID_CONFIG;
            snprintf(err, errlen, "%s: '%s' is itself a view; make a view of its source '%s'",
                     VIEW_SOURCE_KEY, sname,
                     config_overrides_get(&src->overrides, VIEW_SOURCE_KEY));
        } else if (partitions != -1 && partitions != topic_partition_count(src)) {
            code = KERR_INVALID_PARTITIONS;
            snprintf(err, errlen,
                     "a view has the partitions of its source: '%s' has %d (ask for %d or -1)",
                     sname, topic_partition_count(src), topic_partition_count(src));
        }
        if (code) {
            pthread_rwlock_unlock(&reg.lock);
            view_filter_put(vf);
            topic_free(t, false);
            return code;
        }
    }
    if (validate_only) {
        pthread_rwlock_unlock(&reg.lock);
        view_filter_put(vf);
        topic_free(t, false);
        return KERR_NONE;
    }
    getrandom(t->id.b, sizeof t->id.b, 0);
    /* Version 4 uuid bits, as Kafka's Uuid.randomUuid does. */
    t->id.b[6] = (uint8_t)((t->id.b[6] & 0x0f) | 0x40);
    t->id.b[8] = (uint8_t)((t->id.b[8] & 0x3f) | 0x80);
    struct partition_set *s =
        is_view ? no_partitions() : open_partitions(t, NULL, partitions, NULL, true, err, errlen);
    if (!s) {
        pthread_rwlock_unlock(&reg.lock);
        view_filter_put(vf);
        topic_free(t, false);
        if (is_view)
            snprintf(err, errlen, "out of memory");
        return KERR_KAFKA_STORAGE_ERROR;
    }
    atomic_store(&t->parts, s);
    if (is_view) {
        t->view->source = src;
        atomic_fetch_add(&src->refs, 1);
        view_set_filter(t->view, vf);
        partitions = topic_partition_count(src);
    }
    if (save_topic(t) || table_insert(t)) {
        pthread_rwlock_unlock(&reg.lock);
        snprintf(err, errlen, "cannot write topic metadata: %s", strerror(errno));
        for (int32_t i = 0; i < s->n; i++)
            partition_drop_log(s->p[i]);
        topic_free(t, false);
        return KERR_KAFKA_STORAGE_ERROR;
    }
    if (out) {
        atomic_fetch_add(&t->refs, 1);
        *out = t;
    }
    pthread_rwlock_unlock(&reg.lock);
    if (is_view)
        rlog_info("created view %s of %s (%s)", t->name, t->view->source->name,
                  config_overrides_get(o, VIEW_FILTER_KEY));
    else
        rlog_info("created topic %s with %d partitions", t->name, partitions);
    return KERR_NONE;
}

int16_t topics_get_or_create(const char *name, size_t len, bool allow_create, struct topic **out)
{
    *out = topics_get(name, len);
    if (*out)
        return KERR_NONE;
    if (!topics_valid_name(name, len))
        return KERR_INVALID_TOPIC_EXCEPTION;
    /* The broker's own retry/dead-letter/check topics exist as soon as
     * anything names them: a consumer subscribes before the first failure. */
    enum systopic sys = systopic_kind(name, len, NULL, NULL);
    if (sys == SYSTOPIC_RESERVED)
        return KERR_INVALID_TOPIC_EXCEPTION;
    if (sys == SYSTOPIC_NONE && (!allow_create || !reg.cfg->auto_create_topics))
        return KERR_UNKNOWN_TOPIC_OR_PARTITION;
    char err[256];
    int16_t rc = topics_create(name, len, -1, NULL, false, out, err, sizeof err);
    if (rc == KERR_TOPIC_ALREADY_EXISTS) { /* lost a race with another creator */
        *out = topics_get(name, len);
        if (!*out && reg.create_hook) /* another broker's: it is on its way here */
            return wait_created(name, len, 1, out, err, sizeof err);
        return *out ? KERR_NONE : KERR_UNKNOWN_TOPIC_OR_PARTITION;
    }
    return rc;
}

/* Names the views of t in err (under the registry lock): 0 when none. */
static int views_of(const struct topic *t, char *err, size_t errlen)
{
    int n = 0;
    size_t used = 0;
    err[0] = 0;
    for (int i = 0; i < reg.n; i++) {
        if (!reg.t[i]->view || reg.t[i]->view->source != t)
            continue;
        if (used < errlen)
            used +=
                (size_t)snprintf(err + used, errlen - used, "%s%s", n ? ", " : "", reg.t[i]->name);
        n++;
    }
    return n;
}

int16_t topics_delete(const char *name, size_t len, char *err, size_t errlen)
{
    err[0] = 0;
    pthread_rwlock_wrlock(&reg.lock);
    bool found;
    int i = find_idx(name, len, &found);
    if (!found) {
        pthread_rwlock_unlock(&reg.lock);
        return KERR_UNKNOWN_TOPIC_OR_PARTITION;
    }
    struct topic *t = reg.t[i];
    char names[200];
    if (views_of(t, names, sizeof names)) {
        pthread_rwlock_unlock(&reg.lock);
        /* Views would silently lose their data; make the order explicit. */
        snprintf(err, errlen, "topic '%s' is the source of views (%s): delete them first", t->name,
                 names);
        return KERR_POLICY_VIOLATION;
    }
    memmove(&reg.t[i], &reg.t[i + 1], (size_t)(reg.n - i - 1) * sizeof *reg.t);
    reg.n--;
    atomic_store(&t->deleted, true);
    char path[4608];
    snprintf(path, sizeof path, "%s/%s.topic", reg.meta_dir, t->name);
    unlink(path);
    fsutil_fsync_dir(reg.meta_dir);
    pthread_rwlock_unlock(&reg.lock);
    /* Files go now; the structs stay until the last reference is put. */
    struct partition_set *s = atomic_load(&t->parts);
    for (int32_t p = 0; p < s->n; p++)
        partition_drop_log(s->p[p]);
    rlog_info("deleted %s %s", t->view ? "view" : "topic", t->name);
    topic_put(t);
    return KERR_NONE;
}

int16_t topics_add_partitions(const char *name, size_t len, int32_t total, bool validate_only,
                              char *err, size_t errlen)
{
    err[0] = 0;
    pthread_rwlock_wrlock(&reg.lock);
    bool found;
    int i = find_idx(name, len, &found);
    if (!found) {
        pthread_rwlock_unlock(&reg.lock);
        snprintf(err, errlen, "unknown topic");
        return KERR_UNKNOWN_TOPIC_OR_PARTITION;
    }
    struct topic *t = reg.t[i];
    if (t->view) {
        pthread_rwlock_unlock(&reg.lock);
        snprintf(err, errlen,
                 "'%s' is a view: it has the partitions of its source '%s' and gets more "
                 "when they are added there",
                 t->name, config_overrides_get(&t->overrides, VIEW_SOURCE_KEY));
        return KERR_POLICY_VIOLATION;
    }
    struct partition_set *old = atomic_load(&t->parts);
    if (total <= old->n || total > 100000) {
        pthread_rwlock_unlock(&reg.lock);
        snprintf(err, errlen, "topic has %d partitions; the new count must be larger", old->n);
        return KERR_INVALID_PARTITIONS;
    }
    if (validate_only) {
        pthread_rwlock_unlock(&reg.lock);
        return KERR_NONE;
    }
    if (reg.parts_hook && t->systopic == SYSTOPIC_NONE) {
        atomic_fetch_add(&t->refs, 1);
        pthread_rwlock_unlock(&reg.lock);
        int16_t code = reg.parts_hook(reg.parts_ctx, t, total, err, errlen);
        topic_put(t);
        return code ? code : wait_created(name, len, total, NULL, err, errlen);
    }
    struct partition_set *s = open_partitions(t, old, total, NULL, true, err, errlen);
    if (!s) {
        pthread_rwlock_unlock(&reg.lock);
        return KERR_KAFKA_STORAGE_ERROR;
    }
    atomic_store_explicit(&t->parts, s, memory_order_release);
    int rc = save_topic(t);
    pthread_rwlock_unlock(&reg.lock);
    if (rc) {
        snprintf(err, errlen, "cannot write topic metadata: %s", strerror(errno));
        return KERR_KAFKA_STORAGE_ERROR;
    }
    rlog_info("topic %s now has %d partitions", t->name, total);
    return KERR_NONE;
}

int16_t topics_set_overrides(const char *name, size_t len, const struct config_overrides *o,
                             bool validate_only, char *err, size_t errlen)
{
    err[0] = 0;
    for (int i = 0; i < o->n; i++)
        if (config_validate_topic(o->kv[i].key, o->kv[i].value, err, errlen))
            return KERR_INVALID_CONFIG;
    struct topic_settings st;
    if (config_resolve_topic(reg.cfg, o, &st, err, errlen))
        return KERR_INVALID_CONFIG;
    bool is_view;
    struct view_filter *vf;
    int16_t code = view_check_overrides(o, &is_view, &vf, err, errlen);
    if (code)
        return code;
    pthread_rwlock_wrlock(&reg.lock);
    bool found;
    int i = find_idx(name, len, &found);
    if (!found) {
        pthread_rwlock_unlock(&reg.lock);
        view_filter_put(vf);
        snprintf(err, errlen, "unknown topic");
        return KERR_UNKNOWN_TOPIC_OR_PARTITION;
    }
    struct topic *t = reg.t[i];
    const char *had = config_overrides_get(&t->overrides, VIEW_SOURCE_KEY);
    const char *wants = config_overrides_get(o, VIEW_SOURCE_KEY);
    if (t->view && (!wants || strcmp(had, wants))) {
        snprintf(err, errlen, "%s of view '%s' is '%s' and cannot be changed or removed",
                 VIEW_SOURCE_KEY, t->name, had);
        code = KERR_INVALID_CONFIG;
    } else if (!t->view && is_view) {
        snprintf(err, errlen,
                 "'%s' is a topic with a log: it cannot become a view (create a new topic "
                 "with %s)",
                 t->name, VIEW_SOURCE_KEY);
        code = KERR_INVALID_CONFIG;
    }
    if (code || validate_only) {
        pthread_rwlock_unlock(&reg.lock);
        view_filter_put(vf);
        return code;
    }
    struct config_overrides copy;
    struct topic_settings_snap *snap = malloc(sizeof *snap);
    if (!snap || config_overrides_copy(&copy, o)) {
        pthread_rwlock_unlock(&reg.lock);
        free(snap);
        view_filter_put(vf);
        return KERR_UNKNOWN_SERVER_ERROR;
    }
    config_overrides_free(&t->overrides);
    t->overrides = copy;
    /* Readers hold no lock (topics.h): publish a new snapshot whole and
     * keep the old one until the topic goes, as someone may still read it. */
    snap->s = st;
    snap->retired_next = atomic_load_explicit(&t->settings, memory_order_relaxed);
    atomic_store_explicit(&t->settings, snap, memory_order_release);
    if (t->view)
        view_set_filter(t->view, vf); /* the next fetch filters with it */
    struct partition_set *s = atomic_load(&t->parts);
    for (int32_t p = 0; p < s->n; p++)
        partition_set_config(s->p[p], &st.log);
    int rc = save_topic(t);
    pthread_rwlock_unlock(&reg.lock);
    if (rc) {
        snprintf(err, errlen, "cannot write topic metadata: %s", strerror(errno));
        return KERR_KAFKA_STORAGE_ERROR;
    }
    return KERR_NONE;
}

int topics_get_overrides(struct topic *t, struct config_overrides *out)
{
    pthread_rwlock_rdlock(&reg.lock);
    int rc = config_overrides_copy(out, &t->overrides);
    pthread_rwlock_unlock(&reg.lock);
    return rc;
}

int topics_list(struct topic ***out, int *n)
{
    pthread_rwlock_rdlock(&reg.lock);
    struct topic **ts = malloc((size_t)(reg.n ? reg.n : 1) * sizeof *ts);
    if (!ts) {
        pthread_rwlock_unlock(&reg.lock);
        return -1;
    }
    for (int i = 0; i < reg.n; i++) {
        ts[i] = reg.t[i];
        atomic_fetch_add(&ts[i]->refs, 1);
    }
    *n = reg.n;
    pthread_rwlock_unlock(&reg.lock);
    *out = ts;
    return 0;
}

void topics_list_free(struct topic **ts, int n)
{
    for (int i = 0; i < n; i++)
        topic_put(ts[i]);
    free(ts);
}

void topics_housekeep(int64_t now_ms, bool retention)
{
    struct topic **ts;
    int n;
    if (topics_list(&ts, &n))
        return;
    for (int i = 0; i < n; i++) {
        struct partition_set *s = atomic_load(&ts[i]->parts);
        for (int32_t p = 0; p < s->n; p++) {
            if (partition_housekeep(s->p[p], now_ms, retention) > 0)
                rlog_info("retention: deleted segments of %s-%d", ts[i]->name, p);
        }
    }
    topics_list_free(ts, n);
}

int topics_apply_cluster(const char *name, kuuid_t id, int32_t n, const bool *local,
                         const struct config_overrides *o, char *err, size_t errlen)
{
    size_t len = strlen(name);
    if (!topics_valid_name(name, len) || n < 1 || n > 100000) {
        snprintf(err, errlen, "topic '%s' in ZooKeeper: bad name or partition count %d", name,
                 (int)n);
        return -1;
    }
    pthread_rwlock_wrlock(&reg.lock);
    bool found;
    int i = find_idx(name, len, &found);
    if (found) {
        struct topic *t = reg.t[i];
        int rc = 0;
        struct partition_set *old = atomic_load(&t->parts);
        if (memcmp(t->id.b, id.b, 16))
            rlog_warn("topic %s: the local topic id differs from ZooKeeper's; keeping the local "
                      "one",
                      name);
        if (!t->view && n > old->n) {
            struct partition_set *s = open_partitions(t, old, n, local, true, err, errlen);
            if (!s)
                rc = -1;
            else {
                atomic_store_explicit(&t->parts, s, memory_order_release);
                if (save_topic(t))
                    rlog_warn("topic %s: cannot write topic metadata: %s", name, strerror(errno));
                rlog_info("topic %s now has %d partitions (from ZooKeeper)", name, (int)n);
            }
        }
        pthread_rwlock_unlock(&reg.lock);
        return rc;
    }
    struct topic *t = topic_new(name, len);
    if (!t) {
        pthread_rwlock_unlock(&reg.lock);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    t->id = id;
    if (o && config_overrides_copy(&t->overrides, o)) {
        pthread_rwlock_unlock(&reg.lock);
        topic_free(t, false);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (init_settings(t, err, errlen)) {
        /* Configs this broker does not know: it still serves the topic. */
        rlog_warn("topic %s: configs from ZooKeeper ignored: %s", name, err);
        config_overrides_free(&t->overrides);
        if (init_settings(t, err, errlen)) {
            pthread_rwlock_unlock(&reg.lock);
            topic_free(t, false);
            return -1;
        }
    }
    struct partition_set *s = open_partitions(t, NULL, n, local, true, err, errlen);
    if (!s) {
        pthread_rwlock_unlock(&reg.lock);
        topic_free(t, false);
        return -1;
    }
    atomic_store(&t->parts, s);
    if (save_topic(t) || table_insert(t)) {
        pthread_rwlock_unlock(&reg.lock);
        snprintf(err, errlen, "cannot write topic metadata: %s", strerror(errno));
        for (int32_t p = 0; p < s->n; p++)
            partition_drop_log(s->p[p]);
        topic_free(t, false);
        return -1;
    }
    pthread_rwlock_unlock(&reg.lock);
    int nlocal = 0;
    for (int32_t p = 0; p < n; p++)
        nlocal += !local || local[p];
    rlog_info("created topic %s with %d partitions (%d here) from ZooKeeper", name, (int)n, nlocal);
    return 0;
}
