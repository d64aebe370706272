/*
 * The follower's fetcher (src/replica/) against a real leader: a runnel
 * broker process started here, fed exact batches with raw Produce
 * requests, and a local follower partition that must end up with the
 * leader's segment bytes.  Cases: plain catch-up (with a batch larger
 * than the partition's fetch size), a follower holding a never-committed
 * batch at an older epoch, a follower below the leader's log start, and
 * a leader that goes away and comes back on the same port.
 *
 * The broker binary: $RUNNEL_BIN, else runnel next to this binary's
 * tests/ folder (build/tests/x -> build/runnel).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "broker/partition.h"
#include "broker/partition_follower.h"
#include "broker/topics.h"
#include "common/arena.h"
#include "common/clock.h"
#include "common/fsutil.h"
#include "common/kbuf.h"
#include "common/kerr.h"
#include "common/rlog.h"
#include "proto/gen/msgs.h"
#include "proto/header.h"
#include "replica/replica.h"
#include "storage/batch.h"
#include "storage/plog.h"
#include "tap.h"

#define DEADLINE_MS 30000
#define LEADER_ID 1
#define FOLLOWER_ID 2
#define FAKE_ID 3 /* the scripted leader */

static char root[] = "/tmp/runnel-test-fetcher-XXXXXX";
static char bin[PATH_MAX];

/* ---- the leader process ---- */

struct broker {
    pid_t pid;
    int port;
    char data[512];
    char errlog[512];
};

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof a;
    int port = -1;
    if (fd >= 0 && !bind(fd, (struct sockaddr *)&a, sizeof a) &&
        !getsockname(fd, (struct sockaddr *)&a, &sl))
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) ? 0 : (long)st.st_size;
}

/* True once `needle` appears in path after byte `from`. */
static bool file_has(const char *path, long from, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    fseek(f, from, SEEK_SET);
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

static void pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static bool broker_start(struct broker *b)
{
    long from = file_size(b->errlog);
    char listeners[64], dirs[PATH_MAX + 16];
    snprintf(listeners, sizeof listeners, "listeners=PLAINTEXT://127.0.0.1:%d", b->port);
    snprintf(dirs, sizeof dirs, "log.dirs=%s", b->data);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(b->errlog, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 2);
            dup2(fd, 1);
        }
        execl(bin, "runnel", "broker", "--set", listeners, "--set", dirs, "--set",
              "admin.listener=127.0.0.1:0", (char *)NULL);
        _exit(127);
    }
    if (pid < 0)
        return false;
    b->pid = pid;
    int64_t end = clock_mono_ms() + DEADLINE_MS;
    while (clock_mono_ms() < end) {
        if (file_has(b->errlog, from, "listening on"))
            return true;
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            b->pid = 0;
            fprintf(stderr, "broker exited before listening (see %s)\n", b->errlog);
            return false;
        }
        pause_ms(10);
    }
    return false;
}

static void broker_stop(struct broker *b)
{
    if (b->pid <= 0)
        return;
    kill(b->pid, SIGTERM);
    int st = 0;
    waitpid(b->pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    b->pid = 0;
}

static bool broker_new(struct broker *b, const char *name)
{
    memset(b, 0, sizeof *b);
    b->port = free_port();
    snprintf(b->data, sizeof b->data, "%s/%s-leader", root, name);
    snprintf(b->errlog, sizeof b->errlog, "%s/%s-leader.stderr", root, name);
    mkdir(b->data, 0755);
    return broker_start(b);
}

/* ---- raw requests ---- */

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a)) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static int write_all(int fd, const void *buf, size_t n)
{
    const uint8_t *p = buf;
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int read_all(int fd, void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n) {
        ssize_t k = read(fd, p, n);
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* One request (header v1, a non-flexible version) with body `w` (after
 * its 4 reserved bytes and header); the answer's body after the
 * correlation id, or NULL. */
static uint8_t *rpc(int port, kw_t *w, size_t *len)
{
    kw_patch_i32(w, 0, (int32_t)(w->len - 4));
    int fd = connect_to(port);
    uint8_t hdr[4], *resp = NULL;
    if (fd < 0)
        return NULL;
    if (!w->err && !write_all(fd, w->buf, w->len) && !read_all(fd, hdr, 4)) {
        uint32_t size =
            (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
        resp = size >= 4 ? malloc(size) : NULL;
        if (resp && read_all(fd, resp, size)) {
            free(resp);
            resp = NULL;
        }
        *len = size;
    }
    close(fd);
    return resp;
}

static void header(kw_t *w, int16_t key, int16_t version)
{
    kw_init(w, 256);
    kw_i32(w, 0);
    kw_i16(w, key);
    kw_i16(w, version);
    kw_i32(w, 7);
    kw_str(w, kstr_c("test-replica-fetcher"));
}

/* Produces one batch (acks=1): its base offset, or -1.  Retried while the
 * topic is being created. */
static int64_t produce(int port, const char *topic, const uint8_t *batch, size_t len)
{
    int64_t end = clock_mono_ms() + DEADLINE_MS;
    while (clock_mono_ms() < end) {
        kw_t w;
        header(&w, PRODUCE_API_KEY, 7);
        struct produce_request q;
        produce_request_init(&q);
        struct produce_request_topic_produce_data td;
        produce_request_topic_produce_data_init(&td);
        struct produce_request_partition_produce_data pd;
        produce_request_partition_produce_data_init(&pd);
        /* The leader rewrites base offset and epoch in place: a copy. */
        uint8_t *copy = malloc(len);
        memcpy(copy, batch, len);
        pd.index = 0;
        pd.records = (krecords_t){.ptr = copy, .len = (int32_t)len, .fd = -1};
        td.name = kstr_c(topic);
        td.partition_data = &pd;
        td.partition_data_count = 1;
        q.acks = 1;
        q.timeout_ms = 5000;
        q.topic_data = &td;
        q.topic_data_count = 1;
        produce_request_encode(&w, 7, &q);
        size_t rl = 0;
        uint8_t *resp = rpc(port, &w, &rl);
        kw_free(&w);
        free(copy);
        int64_t base = -1;
        if (resp) {
            kr_t r;
            kr_init(&r, resp + 4, rl - 4);
            arena_t a;
            arena_init(&a);
            struct produce_response pr;
            produce_response_init(&pr);
            if (!produce_response_decode(&r, 7, &pr, &a) && pr.responses_count == 1 &&
                pr.responses[0].partition_responses_count == 1 &&
                pr.responses[0].partition_responses[0].error_code == KERR_NONE)
                base = pr.responses[0].partition_responses[0].base_offset;
            arena_free(&a);
            free(resp);
        }
        if (base >= 0)
            return base;
        pause_ms(20);
    }
    return -1;
}

/* DeleteRecords below `offset`: the new low watermark, or -1. */
static int64_t delete_records(int port, const char *topic, int64_t offset)
{
    kw_t w;
    header(&w, DELETE_RECORDS_API_KEY, 1);
    struct delete_records_request q;
    delete_records_request_init(&q);
    struct delete_records_request_delete_records_topic t;
    delete_records_request_delete_records_topic_init(&t);
    struct delete_records_request_delete_records_partition p;
    delete_records_request_delete_records_partition_init(&p);
    p.partition_index = 0;
    p.offset = offset;
    t.name = kstr_c(topic);
    t.partitions = &p;
    t.partitions_count = 1;
    q.topics = &t;
    q.topics_count = 1;
    q.timeout_ms = 5000;
    delete_records_request_encode(&w, 1, &q);
    size_t rl = 0;
    uint8_t *resp = rpc(port, &w, &rl);
    kw_free(&w);
    int64_t low = -1;
    if (resp) {
        kr_t r;
        kr_init(&r, resp + 4, rl - 4);
        arena_t a;
        arena_init(&a);
        struct delete_records_response dr;
        delete_records_response_init(&dr);
        if (!delete_records_response_decode(&r, 1, &dr, &a) && dr.topics_count == 1 &&
            dr.topics[0].partitions_count == 1 && dr.topics[0].partitions[0].error_code == 0)
            low = dr.topics[0].partitions[0].low_watermark;
        arena_free(&a);
        free(resp);
    }
    return low;
}

/* ---- batches and files ---- */

static uint8_t *make_batch(int n, size_t value_bytes, int64_t ts, size_t *len)
{
    struct batch_builder b;
    batch_builder_init(&b, 0, ts);
    char *v = malloc(value_bytes + 32);
    for (int i = 0; i < n; i++) {
        int vl = snprintf(v, 32, "value-%d-", i);
        memset(v + vl, 'a' + i % 26, value_bytes);
        char key[16];
        int kl = snprintf(key, sizeof key, "k%d", i);
        batch_builder_add(&b, ts + i, key, kl, v, vl + (int32_t)value_bytes, NULL, 0);
    }
    free(v);
    uint8_t *out = NULL;
    batch_builder_finish(&b, &out, len);
    batch_builder_free(&b);
    return out;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* Every .log file of dir, in offset order, concatenated (malloc'd). */
static uint8_t *log_bytes(const char *dir, size_t *len)
{
    struct dirent **names;
    int n = scandir(dir, &names, NULL, by_name);
    uint8_t *out = NULL;
    *len = 0;
    for (int i = 0; i < n; i++) {
        size_t nl = strlen(names[i]->d_name);
        if (nl > 4 && !strcmp(names[i]->d_name + nl - 4, ".log")) {
            char path[PATH_MAX];
            snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
            FILE *f = fopen(path, "rb");
            if (f) {
                fseek(f, 0, SEEK_END);
                long sz = ftell(f);
                fseek(f, 0, SEEK_SET);
                out = realloc(out, *len + (size_t)sz + 1);
                if (fread(out + *len, 1, (size_t)sz, f) == (size_t)sz)
                    *len += (size_t)sz;
                fclose(f);
            }
        }
        free(names[i]);
    }
    if (n >= 0)
        free(names);
    return out;
}

/* The follower's log bytes equal the leader's from byte `skip` on. */
static bool same_bytes(const char *leader_dir, size_t skip, const char *follower_dir)
{
    size_t ll, fl;
    uint8_t *l = log_bytes(leader_dir, &ll), *f = log_bytes(follower_dir, &fl);
    bool same = l && f && ll >= skip && ll - skip == fl && !memcmp(l + skip, f, fl);
    if (!same)
        fprintf(stderr, "log bytes differ: leader %zu (from %zu), follower %zu\n", ll, skip, fl);
    free(l);
    free(f);
    return same;
}

/* ---- the follower ---- */

static int lookup_port; /* the leader's, for the lookup below */
static int fake_port;   /* the scripted leader's (FAKE_ID) */

static int lookup(void *ctx, int32_t id, char *host, size_t hostlen, int *port)
{
    (void)ctx;
    int p = id == LEADER_ID ? lookup_port : id == FAKE_ID ? fake_port : -1;
    if (p <= 0)
        return -1;
    snprintf(host, hostlen, "127.0.0.1");
    *port = p;
    return 0;
}

struct follower {
    struct topic t;
    struct partition *p;
    char dir[PATH_MAX];
};

static bool follower_open(struct follower *f, const char *topic)
{
    memset(f, 0, sizeof *f);
    f->t.name = strdup(topic);
    atomic_store(&f->t.refs, 1); /* the test's own */
    snprintf(f->dir, sizeof f->dir, "%s/%s-follower", root, topic);
    struct plog_config cfg;
    plog_config_defaults(&cfg);
    char err[256];
    f->p = partition_open(&f->t, 0, f->dir, &cfg, FOLLOWER_ID, false, err, sizeof err);
    if (!f->p)
        fprintf(stderr, "partition_open: %s\n", err);
    return f->p != NULL;
}

static void follower_close(struct follower *f)
{
    replica_unfollow(f->p);
    CHECK_EQ_INT(atomic_load(&f->t.refs), 1); /* the fetcher let go of the topic */
    partition_free(f->p, true);
    free(f->t.name);
}

/* Waits until the follower's log end (and high watermark) reach `end`. */
static bool wait_caught_up(struct follower *f, int64_t end)
{
    int64_t until = clock_mono_ms() + DEADLINE_MS;
    struct partition_offsets o = {0};
    while (clock_mono_ms() < until) {
        if (partition_offsets(f->p, &o) == KERR_NONE && o.log_end == end && o.high_watermark == end)
            return true;
        pause_ms(10);
    }
    fprintf(stderr, "follower at log end %lld hw %lld, expected %lld\n", (long long)o.log_end,
            (long long)o.high_watermark, (long long)end);
    return false;
}

static void leader_dir(const struct broker *b, const char *topic, char *out, size_t n)
{
    snprintf(out, n, "%s/%s-0", b->data, topic);
}

/* ---- a scripted leader, for the diverging-epoch answer (KIP-320) ---- */

/*
 * Broker FAKE_ID, served by a thread of this test: its log is `log`
 * (batches as a leader stores them), with epoch 0 on [0, 5) and epoch 2
 * from 5.  It answers Fetch v12 as Kafka's leader does: a
 * last_fetched_epoch the log does not end at fetch_offset gets
 * diverging_epoch (the largest epoch <= it and that epoch's end), else
 * the batches from the one holding fetch_offset.
 */

static struct {
    int listen_fd, port;
    pthread_t thread;
    atomic_bool stop;
    const uint8_t *log;
    size_t log_len;
    int64_t log_end;
    atomic_int diverging_sent;
} fake;

static void fake_end_for(int32_t epoch, int32_t *out_epoch, int64_t *out_end)
{
    if (epoch >= 2) {
        *out_epoch = 2;
        *out_end = fake.log_end;
    } else {
        *out_epoch = 0;
        *out_end = 5;
    }
}

/* The byte position of the batch holding `offset` (log_len when none). */
static size_t fake_position(int64_t offset)
{
    size_t at = 0;
    while (at + 12 <= fake.log_len) {
        int64_t base =
            (int64_t)((uint64_t)fake.log[at] << 56 | (uint64_t)fake.log[at + 1] << 48 |
                      (uint64_t)fake.log[at + 2] << 40 | (uint64_t)fake.log[at + 3] << 32 |
                      (uint64_t)fake.log[at + 4] << 24 | (uint64_t)fake.log[at + 5] << 16 |
                      (uint64_t)fake.log[at + 6] << 8 | fake.log[at + 7]);
        size_t len = 12 + ((size_t)fake.log[at + 8] << 24 | (size_t)fake.log[at + 9] << 16 |
                           (size_t)fake.log[at + 10] << 8 | fake.log[at + 11]);
        const uint8_t *d = fake.log + at + 23; /* last offset delta */
        int64_t last = base + (int32_t)((uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 |
                                        (uint32_t)d[2] << 8 | d[3]);
        if (offset <= last)
            return at;
        at += len;
    }
    return fake.log_len;
}

static int fake_answer(int fd, const uint8_t *frame, size_t len)
{
    kr_t r;
    kr_init(&r, frame, len);
    struct kreq_header h;
    arena_t a;
    arena_init(&a);
    struct fetch_request q;
    fetch_request_init(&q);
    int rc = -1;
    if (kreq_header_decode(&r, &h, true) || h.api_key != FETCH_API_KEY || h.api_version != 12 ||
        fetch_request_decode(&r, 12, &q, &a) || q.topics_count != 1 ||
        q.topics[0].partitions_count != 1 || q.replica_id != FOLLOWER_ID) {
        arena_free(&a);
        return -1;
    }
    const struct fetch_request_fetch_partition *fp = &q.topics[0].partitions[0];
    struct fetch_response resp;
    fetch_response_init(&resp);
    struct fetch_response_fetchable_topic_response tr;
    fetch_response_fetchable_topic_response_init(&tr);
    struct fetch_response_partition_data pd;
    fetch_response_partition_data_init(&pd);
    tr.topic = q.topics[0].topic;
    tr.partitions = &pd;
    tr.partitions_count = 1;
    resp.responses = &tr;
    resp.responses_count = 1;
    pd.partition_index = fp->partition;
    pd.high_watermark = pd.last_stable_offset = fake.log_end;
    pd.log_start_offset = 0;
    pd.records = (krecords_t){.ptr = NULL, .len = 0, .fd = -1};
    int32_t e = -1;
    int64_t end = -1;
    if (fp->current_leader_epoch != 2) {
        pd.error_code =
            fp->current_leader_epoch < 2 ? KERR_FENCED_LEADER_EPOCH : KERR_UNKNOWN_LEADER_EPOCH;
    } else if (fp->last_fetched_epoch >= 0 &&
               (fake_end_for(fp->last_fetched_epoch, &e, &end),
                e != fp->last_fetched_epoch || end < fp->fetch_offset)) {
        pd.diverging_epoch.epoch = e;
        pd.diverging_epoch.end_offset = end;
        atomic_fetch_add(&fake.diverging_sent, 1);
    } else if (fp->fetch_offset > fake.log_end) {
        pd.error_code = KERR_OFFSET_OUT_OF_RANGE;
    } else {
        size_t at = fake_position(fp->fetch_offset);
        pd.records.ptr = fake.log + at;
        pd.records.len = (int32_t)(fake.log_len - at);
        if (at == fake.log_len) /* at the end: a short long poll */
            pause_ms(q.max_wait_ms < 50 ? q.max_wait_ms : 50);
    }
    kw_t w;
    kw_init(&w, 256);
    kw_i32(&w, 0);
    kw_i32(&w, h.correlation_id);
    kw_uvarint(&w, 0); /* response header v1 */
    fetch_response_encode(&w, 12, &resp);
    kw_patch_i32(&w, 0, (int32_t)(w.len - 4));
    if (!w.err && !write_all(fd, w.buf, w.len))
        rc = 0;
    kw_free(&w);
    arena_free(&a);
    return rc;
}

static void *fake_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&fake.stop)) {
        struct pollfd pf = {fake.listen_fd, POLLIN, 0};
        if (poll(&pf, 1, 50) != 1)
            continue;
        int fd = accept(fake.listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        while (!atomic_load(&fake.stop)) {
            struct pollfd cf = {fd, POLLIN, 0};
            if (poll(&cf, 1, 50) == 0)
                continue;
            uint8_t hdr[4];
            if (read_all(fd, hdr, 4))
                break;
            uint32_t size =
                (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
            uint8_t *frame = size < (1u << 20) ? malloc(size) : NULL;
            int bad = !frame || read_all(fd, frame, size) || fake_answer(fd, frame, size);
            free(frame);
            if (bad)
                break;
        }
        close(fd);
    }
    return NULL;
}

static bool fake_start(void)
{
    fake.listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof a;
    if (fake.listen_fd < 0 || bind(fake.listen_fd, (struct sockaddr *)&a, sizeof a) ||
        listen(fake.listen_fd, 4) || getsockname(fake.listen_fd, (struct sockaddr *)&a, &sl))
        return false;
    fake.port = ntohs(a.sin_port);
    atomic_store(&fake.stop, false);
    return pthread_create(&fake.thread, NULL, fake_main, NULL) == 0;
}

static void fake_stop(void)
{
    atomic_store(&fake.stop, true);
    pthread_join(fake.thread, NULL);
    close(fake.listen_fd);
}

/*
 * The follower's 5-9 are at epoch 1, which the leader never had; the
 * leader's 5-9 are at epoch 2, with the same batch boundaries, so only
 * the epochs tell the logs apart.  Fetching at 10 with last epoch 1, the
 * follower is told epoch 0 ends at 5, cuts back to it and fetches the
 * leader's 5-9.
 */
static void test_diverging_epoch(void)
{
    size_t l1, l2, lx;
    uint8_t *b1 = make_batch(5, 10, 1000, &l1), *b2 = make_batch(5, 20, 2000, &l2),
            *bx = make_batch(5, 30, 1500, &lx);
    batch_put_be64(b1, 0);
    batch_put_be32(b1 + 12, 0);
    batch_put_be64(b2, 5);
    batch_put_be32(b2 + 12, 2);
    batch_put_be64(bx, 5);
    batch_put_be32(bx + 12, 1);
    uint8_t *log = malloc(l1 + l2);
    memcpy(log, b1, l1);
    memcpy(log + l1, b2, l2);
    fake.log = log;
    fake.log_len = l1 + l2;
    fake.log_end = 10;
    atomic_store(&fake.diverging_sent, 0);
    struct follower f;
    if (fake_start() && follower_open(&f, "epochs")) {
        fake_port = fake.port;
        CHECK_EQ_INT(partition_append_follower(f.p, b1, l1, -1, -1), KERR_NONE);
        CHECK_EQ_INT(partition_append_follower(f.p, bx, lx, -1, -1), KERR_NONE);
        /* A stale epoch is fenced: the fetcher backs off, appends nothing. */
        replica_follow(f.p, FAKE_ID, 1);
        replica_follow(f.p, FAKE_ID, 2);
        int64_t until = clock_mono_ms() + DEADLINE_MS;
        int32_t epoch = -1;
        int64_t end = -1;
        while (
            clock_mono_ms() < until &&
            (partition_fetch_position(f.p, &end, &epoch) != KERR_NONE || epoch != 2 || end != 10))
            pause_ms(10);
        CHECK_EQ_INT(end, 10);
        CHECK_EQ_INT(epoch, 2);
        CHECK(atomic_load(&fake.diverging_sent) >= 1);
        size_t fl;
        uint8_t *fb = log_bytes(f.dir, &fl);
        CHECK(fb && fl == fake.log_len && !memcmp(fb, log, fl));
        free(fb);
        CHECK_EQ_INT(partition_end_offset_for_epoch(f.p, -1, 1, true, &epoch, &end), KERR_NONE);
        CHECK_EQ_INT(epoch, 0); /* epoch 1 is gone from the follower */
        CHECK_EQ_INT(end, 5);
        follower_close(&f);
        fake_stop();
    } else {
        CHECK(!"scripted leader and follower ready");
    }
    free(log);
    free(b1);
    free(b2);
    free(bx);
}

/* ---- the cases ---- */

/* Catch-up from empty, with a batch far over partition_max_bytes. */
static void test_catch_up(void)
{
    struct broker b;
    if (!broker_new(&b, "plain")) {
        CHECK(!"leader started");
        return;
    }
    lookup_port = b.port;
    size_t l1, l2, l3;
    uint8_t *b1 = make_batch(5, 10, 1000, &l1), *b2 = make_batch(1, 8192, 2000, &l2),
            *b3 = make_batch(3, 100, 3000, &l3);
    CHECK_EQ_INT(produce(b.port, "plain", b1, l1), 0);
    CHECK_EQ_INT(produce(b.port, "plain", b2, l2), 5);
    CHECK_EQ_INT(produce(b.port, "plain", b3, l3), 6);
    struct follower f;
    if (follower_open(&f, "plain")) {
        replica_follow(f.p, LEADER_ID, 0);
        replica_follow(f.p, LEADER_ID, 0); /* idempotent */
        CHECK_EQ_INT(atomic_load(&f.t.refs), 2);
        CHECK(wait_caught_up(&f, 9));
        char ld[PATH_MAX];
        leader_dir(&b, "plain", ld, sizeof ld);
        CHECK(same_bytes(ld, 0, f.dir));
        /* More while followed: a long poll answered by the append. */
        CHECK_EQ_INT(produce(b.port, "plain", b1, l1), 9);
        CHECK(wait_caught_up(&f, 14));
        CHECK(same_bytes(ld, 0, f.dir));
        follower_close(&f);
    }
    free(b1);
    free(b2);
    free(b3);
    broker_stop(&b);
}

/* The first batch of a leader's segment file (malloc'd copy). */
static uint8_t *first_batch(const char *dir, size_t *len)
{
    size_t all;
    uint8_t *bytes = log_bytes(dir, &all);
    if (!bytes || all < 12) {
        free(bytes);
        return NULL;
    }
    *len =
        12 + ((size_t)bytes[8] << 24 | (size_t)bytes[9] << 16 | (size_t)bytes[10] << 8 | bytes[11]);
    return bytes;
}

/*
 * The follower holds offsets 0-4 (epoch 0, as the leader) and 5-7 at
 * epoch 0, never committed; the leader has 5-9 at epoch 1 (written into
 * its log while it is stopped, so that it leads epoch 1 when started).  The follower
 * must cut back to 5, the end of epoch 0 on the leader, and then match.
 */
static void test_divergence(void)
{
    struct broker b;
    if (!broker_new(&b, "diverge")) {
        CHECK(!"leader started");
        return;
    }
    lookup_port = b.port;
    char ld[PATH_MAX];
    leader_dir(&b, "diverge", ld, sizeof ld);
    size_t l1, l2, lx;
    uint8_t *b1 = make_batch(5, 10, 1000, &l1), *b2 = make_batch(5, 20, 2000, &l2),
            *bx = make_batch(3, 30, 1500, &lx);
    CHECK_EQ_INT(produce(b.port, "diverge", b1, l1), 0);
    /* The leader starts epoch 1 (as after an election): stopped, its log
     * told so, started again on the same port. */
    broker_stop(&b);
    struct plog_config cfg;
    plog_config_defaults(&cfg);
    struct plog *pl;
    char err[256];
    if (plog_open(ld, &cfg, true, &pl, err, sizeof err) == 0) {
        /* An epoch only lasts in the log with a batch of it (an empty
         * one at the log end goes at open): 5-9 are written at epoch 1. */
        struct plog_append_result res;
        CHECK_EQ_INT(plog_append(pl, b2, l2, 1, clock_wall_ms(), &res), PLOG_OK);
        CHECK_EQ_INT(res.base_offset, 5);
        plog_close(pl, true);
    } else {
        CHECK(!"leader log reopened");
    }
    CHECK(broker_start(&b));

    struct follower f;
    size_t lf = 0;
    uint8_t *stored = first_batch(ld, &lf);
    if (stored && follower_open(&f, "diverge")) {
        CHECK_EQ_INT(partition_append_follower(f.p, stored, lf, -1, -1), KERR_NONE);
        batch_put_be64(bx, 5);
        batch_put_be32(bx + 12, 0);
        CHECK_EQ_INT(partition_append_follower(f.p, bx, lx, -1, -1), KERR_NONE);
        /* Below the log end: the distinct code the fetcher resolves. */
        CHECK_EQ_INT(partition_append_follower(f.p, bx, lx, -1, -1), KERR_OFFSET_OUT_OF_RANGE);
        int64_t end;
        int32_t epoch;
        CHECK_EQ_INT(partition_fetch_position(f.p, &end, &epoch), KERR_NONE);
        CHECK_EQ_INT(end, 8);
        CHECK_EQ_INT(epoch, 0);
        replica_follow(f.p, LEADER_ID, 1);
        CHECK(wait_caught_up(&f, 10));
        CHECK(same_bytes(ld, 0, f.dir));
        CHECK_EQ_INT(partition_end_offset_for_epoch(f.p, -1, 0, true, &epoch, &end), KERR_NONE);
        CHECK_EQ_INT(epoch, 0);
        CHECK_EQ_INT(end, 5);
        CHECK_EQ_INT(partition_fetch_position(f.p, &end, &epoch), KERR_NONE);
        CHECK_EQ_INT(epoch, 1);
        follower_close(&f);
    } else {
        CHECK(!"follower prepared");
    }
    free(stored);
    free(b1);
    free(b2);
    free(bx);
    broker_stop(&b);
}

/* The leader deleted records below 5; an empty follower restarts there. */
static void test_below_log_start(void)
{
    struct broker b;
    if (!broker_new(&b, "start")) {
        CHECK(!"leader started");
        return;
    }
    lookup_port = b.port;
    char ld[PATH_MAX];
    leader_dir(&b, "start", ld, sizeof ld);
    size_t l1, l2;
    uint8_t *b1 = make_batch(5, 10, 1000, &l1), *b2 = make_batch(5, 10, 2000, &l2);
    CHECK_EQ_INT(produce(b.port, "start", b1, l1), 0);
    CHECK_EQ_INT(produce(b.port, "start", b2, l2), 5);
    CHECK_EQ_INT(delete_records(b.port, "start", 5), 5);
    struct follower f;
    if (follower_open(&f, "start")) {
        replica_follow(f.p, LEADER_ID, 0);
        CHECK(wait_caught_up(&f, 10));
        struct partition_offsets o;
        CHECK_EQ_INT(partition_offsets(f.p, &o), KERR_NONE);
        CHECK_EQ_INT(o.log_start, 5);
        /* The leader's first batch (offsets 0-4) is what the follower
         * never got. */
        CHECK(same_bytes(ld, l1, f.dir));
        follower_close(&f);
    }
    free(b1);
    free(b2);
    broker_stop(&b);
}

/* The leader goes away and comes back on the same port. */
static void test_reconnect(void)
{
    struct broker b;
    if (!broker_new(&b, "again")) {
        CHECK(!"leader started");
        return;
    }
    lookup_port = b.port;
    char ld[PATH_MAX];
    leader_dir(&b, "again", ld, sizeof ld);
    size_t l1;
    uint8_t *b1 = make_batch(4, 10, 1000, &l1);
    CHECK_EQ_INT(produce(b.port, "again", b1, l1), 0);
    struct follower f;
    if (follower_open(&f, "again")) {
        replica_follow(f.p, LEADER_ID, 0);
        CHECK(wait_caught_up(&f, 4));
        broker_stop(&b);
        /* Down for a few of the fetcher's back-offs. */
        int64_t until = clock_mono_ms() + 300;
        while (clock_mono_ms() < until)
            pause_ms(20);
        CHECK(broker_start(&b));
        CHECK_EQ_INT(produce(b.port, "again", b1, l1), 4);
        CHECK(wait_caught_up(&f, 8));
        CHECK(same_bytes(ld, 0, f.dir));
        follower_close(&f);
    }
    free(b1);
    broker_stop(&b);
}

/* Unfollow with nothing followed, and follow before start, do nothing. */
static void test_idle_calls(void)
{
    struct follower f;
    if (!follower_open(&f, "idle"))
        return;
    replica_unfollow(f.p);
    CHECK_EQ_INT(atomic_load(&f.t.refs), 1);
    follower_close(&f);
}

int main(int argc, char **argv)
{
    (void)argc;
    signal(SIGPIPE, SIG_IGN);
    rlog_init_from_env();
    const char *env = getenv("RUNNEL_BIN");
    if (env && *env) {
        snprintf(bin, sizeof bin, "%s", env);
    } else {
        char self[2048];
        snprintf(self, sizeof self, "%s", argv[0]);
        char *slash = strrchr(self, '/');
        if (slash)
            *slash = '\0';
        else
            snprintf(self, sizeof self, ".");
        snprintf(bin, sizeof bin, "%s/../runnel", self);
    }
    if (access(bin, X_OK)) {
        fprintf(stderr, "no runnel binary at %s (set RUNNEL_BIN)\n", bin);
        return 1;
    }
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    struct replica_params params = {
        .node_id = FOLLOWER_ID,
        .fetch_max_bytes = 1024, /* every batch of 8 KiB must still pass */
        .fetch_response_max_bytes = 10485760,
        .fetch_wait_max_ms = 500,
        .fetch_min_bytes = 1,
        .backoff_ms = 50,
        .socket_timeout_ms = 5000,
        .client_id = "test-follower",
    };
    CHECK_EQ_INT(replica_start(&params, lookup, NULL), 0);
    CHECK_EQ_INT(replica_start(&params, lookup, NULL), -1);
    test_idle_calls();
    test_diverging_epoch();
    test_catch_up();
    test_divergence();
    test_below_log_start();
    test_reconnect();
    replica_stop();
    if (!tap_fail)
        fsutil_rm_rf(root);
    else
        fprintf(stderr, "kept %s\n", root);
    return tap_done();
}
