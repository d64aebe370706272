/*
 * runnel-bench: the load generator behind bench/run.
 *
 * Subcommands (`runnel-bench <command> --help` lists each one's options):
 *   produce      K tuned librdkafka producers, N records of S bytes over P
 *                partitions; every delivery report is awaited and a failed
 *                delivery fails the run.
 *   create-topic creates a topic with P partitions and waits for its leaders.
 *   consume      one consumer reading all P partitions from the beginning
 *                (legacy assignment: consume_start_queue, no group) until
 *                N records; checks that offsets arrive without gaps.
 *   latency      a producer at a fixed rate with its send time in each value
 *                and a consumer thread reading from the end; prints
 *                end-to-end percentiles.
 *   connections  opens N TCP connections (optionally after one ApiVersions
 *                round trip each) and holds them until stdin closes.
 *   probe        waits until a restarting broker serves a topic's last
 *                record; prints the wall-clock time it first did.
 *   redis-xread  reads a Redis stream from its start with XREAD COUNT c
 *                (the Redis side of the comparison in bench/run).
 *
 * Output: human-readable lines, then one line "RESULT key=value ..." that
 * bench/run parses.  Exit status: 0 ok, 1 the run failed (a failed
 * delivery, a gap, a timeout), 2 bad usage.  Every run is bounded by
 * --timeout seconds (default 600): past it the process exits with 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

/* ------------------------------------------------------------------ */
/* Small utilities                                                    */
/* ------------------------------------------------------------------ */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_ns(int64_t ns)
{
    if (ns <= 0)
        return;
    struct timespec ts = {.tv_sec = ns / 1000000000LL, .tv_nsec = ns % 1000000000LL};
    while (nanosleep(&ts, &ts) && errno == EINTR)
        ;
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("runnel-bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* xorshift64*: cheap per-thread randomness for partitions and payloads. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* CPU seconds (user + system) of this whole process so far. */
static double client_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void on_timeout(int sig)
{
    (void)sig;
    static const char msg[] = "runnel-bench: timed out (--timeout)\n";
    ssize_t r = write(2, msg, sizeof msg - 1);
    (void)r;
    _exit(1);
}

/* ------------------------------------------------------------------ */
/* Options: every option is "--name value"; each command names the    */
/* ones it accepts so a typo is an error, not a silent default.       */
/* ------------------------------------------------------------------ */

struct opts {
    int n;
    const char *name[64];
    const char *value[64];
};

static void opts_parse(struct opts *o, int argc, char **argv, const char *const *allowed,
                       const char *usage)
{
    o->n = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage, stdout);
            exit(0);
        }
        if (strncmp(argv[i], "--", 2) || i + 1 >= argc) {
            fprintf(stderr, "runnel-bench: expected --option value, got '%s'\n%s", argv[i], usage);
            exit(2);
        }
        int ok = !strcmp(argv[i] + 2, "timeout");
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = !strcmp(argv[i] + 2, *a);
        if (!ok || o->n == 64) {
            fprintf(stderr, "runnel-bench: unknown option '%s'\n%s", argv[i], usage);
            exit(2);
        }
        o->name[o->n] = argv[i] + 2;
        o->value[o->n] = argv[i + 1];
        o->n++;
        i++;
    }
}

static const char *opt_str(const struct opts *o, const char *name, const char *def)
{
    for (int i = o->n - 1; i >= 0; i--)
        if (!strcmp(o->name[i], name))
            return o->value[i];
    return def;
}

static int64_t opt_long(const struct opts *o, const char *name, int64_t def)
{
    const char *v = opt_str(o, name, NULL);
    if (!v)
        return def;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end || x < 0) {
        fprintf(stderr, "runnel-bench: --%s: '%s' is not a non-negative whole number\n", name, v);
        exit(2);
    }
    return x;
}

static const char *opt_need(const struct opts *o, const char *name)
{
    const char *v = opt_str(o, name, NULL);
    if (!v) {
        fprintf(stderr, "runnel-bench: --%s is required\n", name);
        exit(2);
    }
    return v;
}

static void arm_timeout(const struct opts *o)
{
    int64_t t = opt_long(o, "timeout", 600);
    signal(SIGALRM, on_timeout);
    alarm((unsigned)t);
}

/* ------------------------------------------------------------------ */
/* librdkafka utilities                                               */
/* ------------------------------------------------------------------ */

static void conf_set(rd_kafka_conf_t *conf, const char *key, const char *value)
{
    char err[512];
    if (rd_kafka_conf_set(conf, key, value, err, sizeof err) != RD_KAFKA_CONF_OK)
        die("config %s=%s: %s", key, value, err);
}

static void conf_setl(rd_kafka_conf_t *conf, const char *key, int64_t value)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRId64, value);
    conf_set(conf, key, buf);
}

/* Client errors are printed once each, not once per retry. */
static void on_client_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    (void)opaque;
    static _Atomic int printed;
    if (atomic_fetch_add(&printed, 1) < 5)
        fprintf(stderr, "runnel-bench: client error: %s: %s\n",
                rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static rd_kafka_conf_t *base_conf(const char *bootstrap)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    conf_set(conf, "bootstrap.servers", bootstrap);
    conf_set(conf, "client.id", "runnel-bench");
    conf_set(conf, "log_level", "3");
    /* RUNNEL_BENCH_DEBUG=fetch,protocol: librdkafka's debug contexts. */
    const char *debug = getenv("RUNNEL_BENCH_DEBUG");
    if (debug && *debug) {
        conf_set(conf, "debug", debug);
        conf_set(conf, "log_level", "7");
    }
    rd_kafka_conf_set_error_cb(conf, on_client_error);
    return conf;
}

static rd_kafka_t *client_new(rd_kafka_type_t type, rd_kafka_conf_t *conf)
{
    char err[512];
    rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof err);
    if (!rk)
        die("rd_kafka_new: %s", err);
    return rk;
}

/* Returns the topic's partition count per the broker, or -1. */
static int topic_partitions(rd_kafka_t *rk, const char *topic, int timeout_ms)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    int n = -1;
    if (rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            n = md->topics[0].partition_cnt;
            for (int i = 0; i < md->topics[0].partition_cnt; i++)
                if (md->topics[0].partitions[i].leader < 0)
                    n = -1;
        }
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(rkt);
    return n;
}

/*
 * Creates the topic with `partitions` partitions (an existing topic is
 * fine if it has that many) and waits until metadata shows every
 * partition with a leader.
 */
static void ensure_topic(const char *bootstrap, const char *topic, int partitions)
{
    rd_kafka_conf_t *conf = base_conf(bootstrap);
    rd_kafka_t *rk = client_new(RD_KAFKA_PRODUCER, conf);
    char err[512];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, 1, err, sizeof err);
    if (!nt)
        die("NewTopic: %s", err);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *ao = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_operation_timeout(ao, 30000, err, sizeof err);
    rd_kafka_CreateTopics(rk, &nt, 1, ao, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 60000);
    if (!ev)
        die("CreateTopics %s: no answer in 60 s", topic);
    if (rd_kafka_event_error(ev))
        die("CreateTopics %s: %s", topic, rd_kafka_event_error_string(ev));
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    size_t cnt = 0;
    const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &cnt);
    for (size_t i = 0; i < cnt; i++) {
        rd_kafka_resp_err_t e = rd_kafka_topic_result_error(tr[i]);
        if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
            die("CreateTopics %s: %s (%s)", topic, rd_kafka_err2name(e),
                rd_kafka_topic_result_error_string(tr[i])
                    ? rd_kafka_topic_result_error_string(tr[i])
                    : "");
    }
    rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_queue_destroy(q);

    int64_t deadline = now_ns() + 30 * 1000000000LL;
    int have;
    while ((have = topic_partitions(rk, topic, 5000)) != partitions) {
        if (now_ns() > deadline)
            die("topic %s: metadata shows %d partitions, wanted %d", topic, have, partitions);
        sleep_ns(50 * 1000000LL);
    }
    rd_kafka_destroy(rk);
}

/* ------------------------------------------------------------------ */
/* produce                                                            */
/* ------------------------------------------------------------------ */

enum { PART_RR, PART_RANDOM, PART_STICKY };

struct produce_job {
    /* inputs */
    const char *bootstrap, *topic, *acks;
    int64_t records;
    int size, partitions, partitioner, linger_ms, batch_size, index;
    const char *header_name, *header_value; /* --header: on every record, or NULL */
    pthread_barrier_t *ready;
    /* outputs (touched only by the job's own thread: delivery reports run
     * inside its rd_kafka_poll/flush calls) */
    int64_t delivered, failed;
    char first_error[256];
    int64_t end_ns;
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    struct produce_job *j = opaque;
    if (m->err) {
        if (!j->failed++)
            snprintf(j->first_error, sizeof j->first_error, "%s", rd_kafka_err2str(m->err));
    } else {
        j->delivered++;
    }
}

static void *produce_thread(void *arg)
{
    struct produce_job *j = arg;
    rd_kafka_conf_t *conf = base_conf(j->bootstrap);
    conf_set(conf, "acks", j->acks);
    conf_setl(conf, "linger.ms", j->linger_ms);
    conf_setl(conf, "batch.size", j->batch_size);
    conf_setl(conf, "batch.num.messages", 1000000);
    conf_setl(conf, "message.max.bytes", j->batch_size > 1000000 ? j->batch_size + 4096 : 1000000);
    conf_setl(conf, "queue.buffering.max.messages", 2000000);
    conf_setl(conf, "queue.buffering.max.kbytes", 1048576);
    conf_set(conf, "compression.codec", "none");
    conf_set(conf, "enable.idempotence", "false");
    conf_set(conf, "socket.nagle.disable", "true");
    conf_setl(conf, "message.timeout.ms", 120000);
    if (j->partitioner == PART_STICKY) {
        conf_set(conf, "partitioner", "random");
        conf_setl(conf, "sticky.partitioning.linger.ms", j->linger_ms > 0 ? 2 * j->linger_ms : 10);
    }
    rd_kafka_conf_set_opaque(conf, j);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_t *rk = client_new(RD_KAFKA_PRODUCER, conf);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, j->topic, NULL);

    /* One payload, sent N times without copying: librdkafka neither copies
     * nor frees it (flags 0), and it outlives every delivery report. */
    char *payload = malloc((size_t)j->size + 1);
    uint64_t seed = 0x9E3779B97F4A7C15ULL * (uint64_t)(j->index + 1);
    for (int i = 0; i < j->size; i++)
        payload[i] = (char)('a' + rng_next(&seed) % 26);

    /* Connect and learn the leaders before the clock starts. */
    if (topic_partitions(rk, j->topic, 10000) < 0)
        die("producer %d: no metadata for %s", j->index, j->topic);
    pthread_barrier_wait(j->ready);

    int32_t part = j->index % j->partitions;
    for (int64_t i = 0; i < j->records; i++) {
        int32_t p;
        if (j->partitioner == PART_RR) {
            p = part;
            if (++part == j->partitions)
                part = 0;
        } else if (j->partitioner == PART_RANDOM) {
            p = (int32_t)(rng_next(&seed) % (uint64_t)j->partitions);
        } else {
            p = RD_KAFKA_PARTITION_UA;
        }
        for (;;) {
            rd_kafka_resp_err_t e;
            if (!j->header_name) {
                if (rd_kafka_produce(rkt, p, 0, payload, (size_t)j->size, NULL, 0, NULL) == 0)
                    break;
                e = rd_kafka_last_error();
            } else {
                e = rd_kafka_producev(rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(p),
                                      RD_KAFKA_V_VALUE(payload, (size_t)j->size),
                                      RD_KAFKA_V_HEADER(j->header_name, j->header_value,
                                                        (ssize_t)strlen(j->header_value)),
                                      RD_KAFKA_V_END);
                if (!e)
                    break;
            }
            if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                die("producer %d: produce: %s", j->index, rd_kafka_err2str(e));
            rd_kafka_poll(rk, 1);
        }
        if ((i & 1023) == 0)
            rd_kafka_poll(rk, 0);
    }
    /* flush() serves delivery reports until the queue is empty. */
    while (rd_kafka_outq_len(rk) > 0)
        rd_kafka_flush(rk, 1000);
    j->end_ns = now_ns();
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    free(payload);
    return NULL;
}

static const char produce_usage[] =
    "usage: runnel-bench produce --bootstrap HOST:PORT --topic T --records N [--size 100]\n"
    "         [--partitions 1] [--acks 1|all|0] [--producers 1] [--linger-ms 5]\n"
    "         [--batch-size 1000000] [--partitioner rr|random|sticky] [--create 1]\n"
    "         [--header NAME=VALUE] [--timeout 600]\n"
    "  --partitioner rr     each producer cycles over the partitions record by record\n"
    "  --header N=V         put this header on every record (e.g. runnel-delay-ms=60000)\n"
    "  --create 1           create the topic with --partitions partitions first\n";

static int cmd_produce(int argc, char **argv)
{
    static const char *const allowed[] = {
        "bootstrap", "topic",      "records",     "size",   "partitions", "acks", "producers",
        "linger-ms", "batch-size", "partitioner", "create", "header",     NULL};
    struct opts o;
    opts_parse(&o, argc, argv, allowed, produce_usage);
    arm_timeout(&o);
    const char *bootstrap = opt_need(&o, "bootstrap");
    const char *topic = opt_need(&o, "topic");
    int64_t records = opt_long(&o, "records", 1000000);
    int size = (int)opt_long(&o, "size", 100);
    int partitions = (int)opt_long(&o, "partitions", 1);
    int producers = (int)opt_long(&o, "producers", 1);
    const char *acks = opt_str(&o, "acks", "1");
    const char *pname = opt_str(&o, "partitioner", "rr");
    int partitioner = !strcmp(pname, "rr")       ? PART_RR
                      : !strcmp(pname, "random") ? PART_RANDOM
                      : !strcmp(pname, "sticky") ? PART_STICKY
                                                 : -1;
    if (partitioner < 0 || partitions < 1 || producers < 1 || size < 1 || records < 1) {
        fputs(produce_usage, stderr);
        return 2;
    }
    if (opt_long(&o, "create", 1))
        ensure_topic(bootstrap, topic, partitions);
    char *header = NULL, *header_value = NULL;
    if (opt_str(&o, "header", NULL)) {
        header = strdup(opt_str(&o, "header", NULL));
        header_value = header ? strchr(header, '=') : NULL;
        if (!header_value || header_value == header) {
            fputs(produce_usage, stderr);
            return 2;
        }
        *header_value++ = 0;
    }

    struct produce_job *jobs = calloc((size_t)producers, sizeof *jobs);
    pthread_t *tids = calloc((size_t)producers, sizeof *tids);
    pthread_barrier_t ready;
    pthread_barrier_init(&ready, NULL, (unsigned)producers + 1);
    for (int i = 0; i < producers; i++) {
        struct produce_job *j = &jobs[i];
        j->bootstrap = bootstrap;
        j->topic = topic;
        j->acks = acks;
        j->records = records / producers + (i < records % producers);
        j->size = size;
        j->partitions = partitions;
        j->partitioner = partitioner;
        j->linger_ms = (int)opt_long(&o, "linger-ms", 5);
        j->batch_size = (int)opt_long(&o, "batch-size", 1000000);
        j->index = i;
        j->header_name = header;
        j->header_value = header_value;
        j->ready = &ready;
        pthread_create(&tids[i], NULL, produce_thread, j);
    }
    pthread_barrier_wait(&ready);
    int64_t t0 = now_ns();
    int64_t delivered = 0, failed = 0, t1 = t0;
    for (int i = 0; i < producers; i++) {
        pthread_join(tids[i], NULL);
        delivered += jobs[i].delivered;
        failed += jobs[i].failed;
        if (jobs[i].end_ns > t1)
            t1 = jobs[i].end_ns;
        if (jobs[i].failed)
            fprintf(stderr, "runnel-bench: producer %d: %" PRId64 " failed deliveries, first: %s\n",
                    i, jobs[i].failed, jobs[i].first_error);
    }
    double secs = (double)(t1 - t0) / 1e9;
    double rps = (double)delivered / secs;
    double mbps = rps * size / 1e6;
    printf("produce: %" PRId64 " records of %d B, %d partitions, acks=%s, %d producers: "
           "%.3f s, %.0f records/s, %.1f MB/s, %" PRId64 " failed\n",
           delivered, size, partitions, acks, producers, secs, rps, mbps, failed);
    printf("RESULT records=%" PRId64 " seconds=%.6f rps=%.0f mbps=%.2f failed=%" PRId64
           " client_cpu_s=%.3f\n",
           delivered, secs, rps, mbps, failed, client_cpu_s());
    free(jobs);
    free(tids);
    free(header);
    return failed || delivered != records ? 1 : 0;
}

static const char create_usage[] =
    "usage: runnel-bench create-topic --bootstrap HOST:PORT --topic T [--partitions 1]\n"
    "         [--timeout 600]\n"
    "  Creates the topic (an existing one with as many partitions is fine) and waits\n"
    "  until metadata shows a leader for every partition.\n";

static int cmd_create_topic(int argc, char **argv)
{
    static const char *const allowed[] = {"bootstrap", "topic", "partitions", NULL};
    struct opts o;
    opts_parse(&o, argc, argv, allowed, create_usage);
    arm_timeout(&o);
    int64_t t0 = now_ns();
    int partitions = (int)opt_long(&o, "partitions", 1);
    ensure_topic(opt_need(&o, "bootstrap"), opt_need(&o, "topic"), partitions);
    double secs = (double)(now_ns() - t0) / 1e9;
    printf("create-topic: %d partitions ready in %.3f s\n", partitions, secs);
    printf("RESULT seconds=%.6f\n", secs);
    return 0;
}

/* ------------------------------------------------------------------ */
/* consume                                                            */
/* ------------------------------------------------------------------ */

static rd_kafka_conf_t *consumer_conf(const char *bootstrap, int64_t partition_fetch_bytes)
{
    rd_kafka_conf_t *conf = base_conf(bootstrap);
    conf_setl(conf, "fetch.message.max.bytes", partition_fetch_bytes);
    conf_setl(conf, "fetch.max.bytes", 64 << 20);
    conf_setl(conf, "receive.message.max.bytes", (64 << 20) + (1 << 20));
    /* librdkafka 2.0 stops fetching while more than queued.min.messages
     * wait in its queue and looks again only on its next 1 s tick, so this
     * must stay well above one fetch's worth (16 MiB is ~150,000 records
     * of 100 B): at the default 100,000, reading runs at ~150,000 records/s
     * whatever the broker does. */
    conf_setl(conf, "queued.min.messages", 1000000);
    conf_setl(conf, "queued.max.messages.kbytes", 1048576);
    conf_set(conf, "enable.partition.eof", "false");
    conf_set(conf, "check.crcs", "false");
    conf_set(conf, "socket.nagle.disable", "true");
    return conf;
}

static const char consume_usage[] =
    "usage: runnel-bench consume --bootstrap HOST:PORT --topic T --records N [--partitions P]\n"
    "         [--fetch-bytes 16777216] [--timeout 600]\n"
    "  Reads every partition from the beginning until N records arrived.\n"
    "  --fetch-bytes: fetch.message.max.bytes, the most one partition returns per fetch.\n"
    "  --partitions 0 (default) asks the broker how many there are.\n";

static int cmd_consume(int argc, char **argv)
{
    static const char *const allowed[] = {"bootstrap",  "topic",       "records",
                                          "partitions", "fetch-bytes", NULL};
    struct opts o;
    opts_parse(&o, argc, argv, allowed, consume_usage);
    arm_timeout(&o);
    const char *bootstrap = opt_need(&o, "bootstrap");
    const char *topic = opt_need(&o, "topic");
    int64_t records = opt_long(&o, "records", 1000000);
    int partitions = (int)opt_long(&o, "partitions", 0);

    rd_kafka_t *rk = client_new(RD_KAFKA_CONSUMER,
                                consumer_conf(bootstrap, opt_long(&o, "fetch-bytes", 16 << 20)));
    int have = topic_partitions(rk, topic, 10000);
    if (have < 1)
        die("consume: no metadata for topic %s", topic);
    if (partitions == 0)
        partitions = have;
    if (partitions != have)
        die("consume: topic %s has %d partitions, not %d", topic, have, partitions);

    /* Let librdkafka hand the partition from the bootstrap connection to
     * the leader's before starting: an offset query caught in that move is
     * retried only after 500 ms (rd_kafka_toppar_broker_migrate), a client
     * stall that would otherwise land in the measurement now and then. */
    sleep_ns(200 * 1000000LL);

    /* next[p]: the offset expected next in partition p (gap/dup check). */
    int64_t *next = calloc((size_t)partitions, sizeof *next);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    int64_t t0 = now_ns();
    for (int p = 0; p < partitions; p++)
        if (rd_kafka_consume_start_queue(rkt, p, RD_KAFKA_OFFSET_BEGINNING, q) == -1)
            die("consume_start %s/%d: %s", topic, p, rd_kafka_err2str(rd_kafka_last_error()));

    enum { BATCH = 10000 };
    rd_kafka_message_t **msgs = malloc(BATCH * sizeof *msgs);
    int64_t count = 0, bytes = 0, gaps = 0, errors = 0, first_ns = 0;
    while (count < records) {
        /* The batch call waits until its batch is full or the timeout
         * passes, so never ask for more than is still missing. */
        size_t want = records - count < BATCH ? (size_t)(records - count) : BATCH;
        ssize_t n = rd_kafka_consume_batch_queue(q, 1000, msgs, want);
        for (ssize_t i = 0; i < n; i++) {
            rd_kafka_message_t *m = msgs[i];
            if (m->err) {
                if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF && errors++ < 5)
                    fprintf(stderr, "runnel-bench: consume error: %s\n",
                            rd_kafka_message_errstr(m));
            } else {
                if (!first_ns)
                    first_ns = now_ns();
                if (m->offset != next[m->partition])
                    gaps++;
                next[m->partition] = m->offset + 1;
                count++;
                bytes += (int64_t)m->len;
            }
            rd_kafka_message_destroy(m);
        }
    }
    int64_t t1 = now_ns();
    for (int p = 0; p < partitions; p++)
        rd_kafka_consume_stop(rkt, p);
    rd_kafka_queue_destroy(q);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    free(msgs);
    free(next);

    double secs = (double)(t1 - t0) / 1e9;
    double rps = (double)count / secs;
    double mbps = (double)bytes / secs / 1e6;
    printf("consume: %" PRId64 " records, %d partitions: %.3f s (first record after %.1f ms), "
           "%.0f records/s, %.1f MB/s, %" PRId64 " offset gaps, %" PRId64 " errors\n",
           count, partitions, secs, (double)(first_ns - t0) / 1e6, rps, mbps, gaps, errors);
    printf("RESULT records=%" PRId64 " seconds=%.6f rps=%.0f mbps=%.2f gaps=%" PRId64
           " errors=%" PRId64 " client_cpu_s=%.3f\n",
           count, secs, rps, mbps, gaps, errors, client_cpu_s());
    return gaps ? 1 : 0;
}

/* ------------------------------------------------------------------ */
/* latency                                                            */
/* ------------------------------------------------------------------ */

/* Value layout: [0..8) sequence number, [8..16) send time (CLOCK_MONOTONIC
 * ns), then filler up to --size. */
struct latency_run {
    const char *bootstrap, *topic;
    int partitions, fetch_wait_ms;
    int64_t warmup, measured; /* record counts */
    int64_t *lat;             /* lat[seq - warmup], -1 until received */
    int64_t received, dups;
    int64_t *ack; /* ack[seq - warmup]: produce to delivery report */
    _Atomic int consumer_ready;
    _Atomic int producer_done;
    int64_t producer_done_ns;
};

/* Delivery reports run in the sending thread (inside rd_kafka_poll). */
static void on_latency_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    struct latency_run *r = opaque;
    if (m->err || m->len < 16)
        return;
    int64_t seq, sent;
    memcpy(&seq, m->payload, 8);
    memcpy(&sent, (char *)m->payload + 8, 8);
    if (seq >= r->warmup && seq < r->warmup + r->measured)
        r->ack[seq - r->warmup] = now_ns() - sent;
}

static void *latency_consumer(void *arg)
{
    struct latency_run *r = arg;
    rd_kafka_conf_t *conf = consumer_conf(r->bootstrap, 1 << 20);
    conf_setl(conf, "fetch.wait.max.ms", r->fetch_wait_ms);
    conf_setl(conf, "fetch.error.backoff.ms", 10);
    rd_kafka_t *rk = client_new(RD_KAFKA_CONSUMER, conf);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, r->topic, NULL);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    for (int p = 0; p < r->partitions; p++)
        if (rd_kafka_consume_start_queue(rkt, p, RD_KAFKA_OFFSET_END, q) == -1)
            die("consume_start: %s", rd_kafka_err2str(rd_kafka_last_error()));
    atomic_store(&r->consumer_ready, 1);

    /* One message per call: the batch call would wait to fill its batch,
     * which is exactly the delay this measures. */
    int64_t total = r->warmup + r->measured;
    for (;;) {
        rd_kafka_message_t *m = rd_kafka_consume_queue(q, 50);
        int64_t now = now_ns();
        if (m) {
            if (!m->err && m->len >= 16) {
                int64_t seq, sent;
                memcpy(&seq, m->payload, 8);
                memcpy(&sent, (char *)m->payload + 8, 8);
                if (seq >= r->warmup && seq < total) {
                    int64_t *slot = &r->lat[seq - r->warmup];
                    if (*slot >= 0) {
                        r->dups++;
                    } else {
                        *slot = now - sent;
                        r->received++;
                    }
                }
            }
            rd_kafka_message_destroy(m);
        }
        if (r->received == r->measured)
            break;
        /* Stragglers get 5 s after the last send, then count as lost. */
        if (atomic_load(&r->producer_done) && now - r->producer_done_ns > 5000000000LL)
            break;
    }
    for (int p = 0; p < r->partitions; p++)
        rd_kafka_consume_stop(rkt, p);
    rd_kafka_queue_destroy(q);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double pct_us(const int64_t *sorted, int64_t n, double q)
{
    if (n == 0)
        return 0;
    int64_t i = (int64_t)(q * (double)n + 0.999999) - 1;
    if (i < 0)
        i = 0;
    if (i >= n)
        i = n - 1;
    return (double)sorted[i] / 1000.0;
}

static const char latency_usage[] =
    "usage: runnel-bench latency --bootstrap HOST:PORT --topic T [--rate 50000] [--seconds 20]\n"
    "         [--warmup-seconds 2] [--linger-ms 0] [--size 100] [--acks 1] [--partitions 1]\n"
    "         [--fetch-wait-ms 100] [--tick-us 100] [--timeout 600]\n"
    "  Sends --rate records/s for warm-up + --seconds; only the latter are measured.\n"
    "  The sender wakes at most every --tick-us and sends every record then due; each\n"
    "  record carries its actual send time.\n";

static int cmd_latency(int argc, char **argv)
{
    static const char *const allowed[] = {"bootstrap",      "topic",         "rate",    "seconds",
                                          "warmup-seconds", "linger-ms",     "size",    "acks",
                                          "partitions",     "fetch-wait-ms", "tick-us", NULL};
    struct opts o;
    opts_parse(&o, argc, argv, allowed, latency_usage);
    arm_timeout(&o);
    struct latency_run r = {0};
    r.bootstrap = opt_need(&o, "bootstrap");
    r.topic = opt_need(&o, "topic");
    r.partitions = (int)opt_long(&o, "partitions", 1);
    r.fetch_wait_ms = (int)opt_long(&o, "fetch-wait-ms", 100);
    int64_t rate = opt_long(&o, "rate", 50000);
    int64_t seconds = opt_long(&o, "seconds", 20);
    int size = (int)opt_long(&o, "size", 100);
    if (size < 16 || rate < 1 || seconds < 1 || r.partitions < 1) {
        fputs(latency_usage, stderr);
        return 2;
    }
    r.warmup = rate * opt_long(&o, "warmup-seconds", 2);
    r.measured = rate * seconds;
    r.lat = malloc((size_t)r.measured * sizeof *r.lat);
    memset(r.lat, 0xff, (size_t)r.measured * sizeof *r.lat); /* all -1 */
    r.ack = malloc((size_t)r.measured * sizeof *r.ack);
    memset(r.ack, 0xff, (size_t)r.measured * sizeof *r.ack);
    ensure_topic(r.bootstrap, r.topic, r.partitions);

    rd_kafka_conf_t *conf = base_conf(r.bootstrap);
    conf_set(conf, "acks", opt_str(&o, "acks", "1"));
    conf_setl(conf, "linger.ms", opt_long(&o, "linger-ms", 0));
    conf_set(conf, "compression.codec", "none");
    conf_set(conf, "enable.idempotence", "false");
    conf_set(conf, "socket.nagle.disable", "true");
    conf_setl(conf, "queue.buffering.max.messages", 2000000);
    rd_kafka_conf_set_opaque(conf, &r);
    rd_kafka_conf_set_dr_msg_cb(conf, on_latency_delivery);
    rd_kafka_t *rk = client_new(RD_KAFKA_PRODUCER, conf);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, r.topic, NULL);
    if (topic_partitions(rk, r.topic, 10000) < 0)
        die("latency: no metadata for %s", r.topic);

    pthread_t ctid;
    pthread_create(&ctid, NULL, latency_consumer, &r);
    while (!atomic_load(&r.consumer_ready))
        sleep_ns(1000000);

    /* Pace by schedule: record i is due at t0 + i/rate.  The thread sleeps
     * to the next due time (timer slack 1 us) and sends whatever is due. */
    prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
    char *value = calloc(1, (size_t)size);
    memset(value + 16, 'x', (size_t)size - 16);
    int64_t total = r.warmup + r.measured;
    int64_t t0 = now_ns();
    int64_t late_max = 0;
    int64_t tick_ns = opt_long(&o, "tick-us", 100) * 1000;
    int32_t part = 0;
    for (int64_t i = 0; i < total;) {
        int64_t due = t0 + (int64_t)((double)i * 1e9 / (double)rate);
        int64_t now = now_ns();
        if (now < due) {
            /* Long waits serve delivery reports meanwhile, so the ack
             * times are not stretched by the pacing at low rates.  Short
             * ones sleep at least one tick: waking for every record
             * (every 20 us at 50k/s) costs the shared cores more than the
             * broker's own work does. */
            if (due - now > 1500000)
                rd_kafka_poll(rk, (int)((due - now) / 1000000) - 1);
            else
                sleep_ns(due - now > tick_ns ? due - now : tick_ns);
            continue;
        }
        if (now - due > late_max)
            late_max = now - due;
        int64_t sent = now_ns();
        memcpy(value, &i, 8);
        memcpy(value + 8, &sent, 8);
        while (rd_kafka_produce(rkt, part, RD_KAFKA_MSG_F_COPY, value, (size_t)size, NULL, 0,
                                NULL) == -1) {
            if (rd_kafka_last_error() != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                die("latency: produce: %s", rd_kafka_err2str(rd_kafka_last_error()));
            rd_kafka_poll(rk, 1);
        }
        if (++part == r.partitions)
            part = 0;
        i++;
        rd_kafka_poll(rk, 0);
    }
    double send_secs = (double)(now_ns() - t0) / 1e9;
    r.producer_done_ns = now_ns();
    atomic_store(&r.producer_done, 1);
    pthread_join(ctid, NULL);
    while (rd_kafka_outq_len(rk) > 0)
        rd_kafka_flush(rk, 1000);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);

    int64_t n = 0;
    for (int64_t i = 0; i < r.measured; i++)
        if (r.lat[i] >= 0)
            r.lat[n++] = r.lat[i];
    qsort(r.lat, (size_t)n, sizeof *r.lat, cmp_i64);
    int64_t na = 0;
    for (int64_t i = 0; i < r.measured; i++)
        if (r.ack[i] >= 0)
            r.ack[na++] = r.ack[i];
    qsort(r.ack, (size_t)na, sizeof *r.ack, cmp_i64);
    double p50 = pct_us(r.lat, n, 0.50), p99 = pct_us(r.lat, n, 0.99);
    double p999 = pct_us(r.lat, n, 0.999), max = n ? (double)r.lat[n - 1] / 1000.0 : 0;
    double achieved = (double)total / send_secs;
    printf("latency: %" PRId64 " records measured at %" PRId64 "/s (achieved %.0f/s, sender at "
           "most %.1f ms behind schedule): p50 %.0f us, p90 %.0f us, p99 %.0f us, p99.9 %.0f us, "
           "max %.0f us; %" PRId64 " lost, %" PRId64 " duplicates\n",
           n, rate, achieved, (double)late_max / 1e6, p50, pct_us(r.lat, n, 0.90), p99, p999, max,
           r.measured - n, r.dups);
    printf("latency: produce acknowledged (send to delivery report): p50 %.0f us, p99 %.0f us, "
           "p99.9 %.0f us, max %.0f us\n",
           pct_us(r.ack, na, 0.50), pct_us(r.ack, na, 0.99), pct_us(r.ack, na, 0.999),
           na ? (double)r.ack[na - 1] / 1000.0 : 0);
    printf("RESULT records=%" PRId64 " rps=%.0f p50_us=%.0f p99_us=%.0f p999_us=%.0f max_us=%.0f "
           "lost=%" PRId64 " ack_p50_us=%.0f ack_p99_us=%.0f client_cpu_s=%.3f\n",
           n, achieved, p50, p99, p999, max, r.measured - n, pct_us(r.ack, na, 0.50),
           pct_us(r.ack, na, 0.99), client_cpu_s());
    free(r.lat);
    free(r.ack);
    free(value);
    return n == r.measured ? 0 : 1;
}

/* ------------------------------------------------------------------ */
/* connections                                                        */
/* ------------------------------------------------------------------ */

static volatile sig_atomic_t stop_requested;
static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static int read_full(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

static int write_full(int fd, const void *buf, size_t n)
{
    size_t put = 0;
    while (put < n) {
        ssize_t r = write(fd, (const char *)buf + put, n - put);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        put += (size_t)r;
    }
    return 0;
}

/* One ApiVersions v0 round trip, as every Kafka client makes first. */
static int api_versions_round_trip(int fd, int32_t corr)
{
    unsigned char req[4 + 2 + 2 + 4 + 2 + 12];
    static const char client_id[] = "runnel-bench"; /* 12 bytes */
    uint32_t len = htonl(sizeof req - 4);
    uint16_t key = htons(18), ver = htons(0), idlen = htons(12);
    uint32_t c = htonl((uint32_t)corr);
    memcpy(req, &len, 4);
    memcpy(req + 4, &key, 2);
    memcpy(req + 6, &ver, 2);
    memcpy(req + 8, &c, 4);
    memcpy(req + 12, &idlen, 2);
    memcpy(req + 14, client_id, 12);
    if (write_full(fd, req, sizeof req))
        return -1;
    uint32_t rlen;
    if (read_full(fd, &rlen, 4))
        return -1;
    rlen = ntohl(rlen);
    if (rlen < 4 || rlen > (1 << 20))
        return -1;
    char *body = malloc(rlen);
    int rc = read_full(fd, body, rlen);
    uint32_t rcorr = 0;
    if (!rc)
        memcpy(&rcorr, body, 4);
    free(body);
    return rc || ntohl(rcorr) != (uint32_t)corr ? -1 : 0;
}

static const char connections_usage[] =
    "usage: runnel-bench connections --bootstrap-host 127.0.0.1 --port P [--count 10000]\n"
    "         [--handshake 1] [--timeout 600]\n"
    "  Opens --count connections, prints a line when all are open and holds them until\n"
    "  stdin reaches end of file or SIGTERM/SIGINT arrives.  --handshake 1 makes one\n"
    "  ApiVersions round trip on each connection first (as a real client would).\n";

static int cmd_connections(int argc, char **argv)
{
    static const char *const allowed[] = {"bootstrap-host", "port", "count", "handshake", NULL};
    struct opts o;
    opts_parse(&o, argc, argv, allowed, connections_usage);
    const char *host = opt_str(&o, "bootstrap-host", "127.0.0.1");
    int port = (int)opt_long(&o, "port", 9092);
    int count = (int)opt_long(&o, "count", 10000);
    int handshake = (int)opt_long(&o, "handshake", 1);
    /* The timeout bounds the opening only; holding lasts until told. */
    arm_timeout(&o);

    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rlim_t want = (rlim_t)count + 256;
    if (rl.rlim_cur < want) {
        rl.rlim_cur = want;
        if (rl.rlim_max < want)
            rl.rlim_max = want;
        if (setrlimit(RLIMIT_NOFILE, &rl))
            die("connections: cannot raise RLIMIT_NOFILE to %lu: %s", (unsigned long)want,
                strerror(errno));
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        die("connections: '%s' is not an IPv4 address", host);

    int *fds = malloc((size_t)count * sizeof *fds);
    int64_t t0 = now_ns();
    for (int i = 0; i < count; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            die("connections: socket %d: %s", i, strerror(errno));
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa))
            die("connections: connect %d of %d: %s", i + 1, count, strerror(errno));
        if (handshake && api_versions_round_trip(fd, i))
            die("connections: ApiVersions on connection %d failed", i + 1);
        fds[i] = fd;
    }
    double secs = (double)(now_ns() - t0) / 1e9;
    alarm(0);
    printf("connections: %d open to %s:%d in %.2f s%s\n", count, host, port, secs,
           handshake ? " (one ApiVersions round trip each)" : "");
    printf("RESULT open=%d seconds=%.3f\n", count, secs);
    fflush(stdout);

    struct sigaction sa_stop = {.sa_handler = on_stop};
    sigaction(SIGTERM, &sa_stop, NULL);
    sigaction(SIGINT, &sa_stop, NULL);
    while (!stop_requested) {
        struct pollfd pfd = {.fd = 0, .events = POLLIN};
        int r = poll(&pfd, 1, 1000);
        if (r > 0) {
            char buf[256];
            ssize_t n = read(0, buf, sizeof buf);
            if (n <= 0 && !(n < 0 && errno == EINTR))
                break;
        }
    }
    /* Did the broker close any of them while they were idle? */
    int closed = 0;
    for (int i = 0; i < count; i++) {
        char c;
        ssize_t n = recv(fds[i], &c, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
            closed++;
        close(fds[i]);
    }
    printf("connections: closed; %d had been closed by the broker\n", closed);
    printf("RESULT closed_by_peer=%d\n", closed);
    free(fds);
    return 0;
}

/* ------------------------------------------------------------------ */
/* probe: how soon a restarting broker serves                         */
/* ------------------------------------------------------------------ */

static const char probe_usage[] =
    "usage: runnel-bench probe --bootstrap HOST:PORT --topic T --expect N [--timeout 600]\n"
    "  Retries until partition 0 of T has high watermark >= N and its last record can be\n"
    "  fetched; prints that moment as CLOCK_REALTIME ns (ready_ns), the moment the port\n"
    "  first accepted a connection (listening_ns) and the moment ListOffsets first showed\n"
    "  the high watermark (offsets_ns).  Start it with the broker.\n";

static int cmd_probe(int argc, char **argv)
{
    static const char *const allowed[] = {"bootstrap", "topic", "expect", NULL};
    struct opts o;
    opts_parse(&o, argc, argv, allowed, probe_usage);
    arm_timeout(&o);
    const char *topic = opt_need(&o, "topic");
    const char *bootstrap = opt_need(&o, "bootstrap");
    int64_t expect = opt_long(&o, "expect", 1);

    /* First the port: a plain connect every millisecond until one is
     * accepted, so the client below never sits in a reconnect backoff. */
    char host[256];
    snprintf(host, sizeof host, "%s", bootstrap);
    char *colon = strrchr(host, ':');
    if (!colon)
        die("probe: --bootstrap needs host:port");
    *colon = 0;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        die("probe: '%s' is not an IPv4 address", host);
    for (;;) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int ok = fd >= 0 && !connect(fd, (struct sockaddr *)&sa, sizeof sa);
        if (fd >= 0)
            close(fd);
        if (ok)
            break;
        sleep_ns(1000000);
    }
    int64_t listening = realtime_ns();

    rd_kafka_conf_t *conf = consumer_conf(bootstrap, 1 << 20);
    /* The broker is not up yet: retry the connection every few ms. */
    conf_setl(conf, "reconnect.backoff.ms", 2);
    conf_setl(conf, "reconnect.backoff.max.ms", 10);
    conf_setl(conf, "fetch.error.backoff.ms", 5);
    conf_set(conf, "log_level", "0");
    rd_kafka_t *rk = client_new(RD_KAFKA_CONSUMER, conf);
    int64_t lo = -1, hi = -1;
    for (;;) {
        if (rd_kafka_query_watermark_offsets(rk, topic, 0, &lo, &hi, 50) ==
                RD_KAFKA_RESP_ERR_NO_ERROR &&
            hi >= expect)
            break;
        sleep_ns(2000000);
    }
    int64_t offsets = realtime_ns();
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (rd_kafka_consume_start(rkt, 0, hi - 1) == -1)
        die("probe: consume_start: %s", rd_kafka_err2str(rd_kafka_last_error()));
    for (;;) {
        rd_kafka_message_t *m = rd_kafka_consume(rkt, 0, 1000);
        if (!m)
            continue;
        int ok = !m->err && m->offset == hi - 1;
        rd_kafka_message_destroy(m);
        if (ok)
            break;
    }
    int64_t ready = realtime_ns();
    rd_kafka_consume_stop(rkt, 0);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    printf("probe: %s high watermark %" PRId64 ", last record fetched\n", topic, hi);
    printf("RESULT listening_ns=%" PRId64 " offsets_ns=%" PRId64 " ready_ns=%" PRId64
           " hwm=%" PRId64 "\n",
           listening, offsets, ready, hi);
    return 0;
}

/* ------------------------------------------------------------------ */
/* redis-xread: sequential XREAD over a Redis stream                  */
/* ------------------------------------------------------------------ */

/* A reply buffer and a cursor; parse functions return 0 when a complete
 * element was consumed, 1 when more bytes are needed, -1 on bad input. */
struct resp {
    char *buf;
    size_t len, cap, pos;
};

static int resp_line(struct resp *r, char *type, int64_t *num, const char **text, size_t *tlen)
{
    char *start = r->buf + r->pos;
    char *end = memchr(start, '\n', r->len - r->pos);
    if (!end)
        return 1;
    if (end == start || end[-1] != '\r')
        return -1;
    *type = start[0];
    *text = start + 1;
    *tlen = (size_t)(end - 1 - (start + 1));
    *num = strtoll(start + 1, NULL, 10);
    r->pos = (size_t)(end + 1 - r->buf);
    return 0;
}

/* Bulk string: sets *s and *n to its bytes (NULL for a null bulk). */
static int resp_bulk(struct resp *r, const char **s, int64_t *n)
{
    char t;
    const char *txt;
    size_t tl;
    int rc = resp_line(r, &t, n, &txt, &tl);
    if (rc)
        return rc;
    if (t != '$')
        return -1;
    if (*n < 0) {
        *s = NULL;
        return 0;
    }
    if (r->len - r->pos < (size_t)*n + 2)
        return 1;
    *s = r->buf + r->pos;
    r->pos += (size_t)*n + 2;
    return 0;
}

static int resp_array(struct resp *r, int64_t *n)
{
    char t;
    const char *txt;
    size_t tl;
    int rc = resp_line(r, &t, n, &txt, &tl);
    if (rc)
        return rc;
    if (t == '-') {
        fprintf(stderr, "runnel-bench: redis: %.*s\n", (int)tl, txt);
        return -1;
    }
    return t == '*' ? 0 : -1;
}

/*
 * XREAD reply: *1 [ *2 [ $name, *k [ *2 [ $id, *2f [ $field, $value ... ] ] ... ] ] ],
 * or a null array when nothing is left.  Counts entries and value bytes and
 * copies the last id into `last`.
 */
static int parse_xread(struct resp *r, int64_t *entries, int64_t *bytes, char *last, size_t lastcap)
{
    int64_t n, k, pair, f, len;
    const char *s;
    int rc;
    *entries = 0;
    *bytes = 0;
    if ((rc = resp_array(r, &n)))
        return rc;
    if (n < 0)
        return 0;
    for (int64_t a = 0; a < n; a++) {
        if ((rc = resp_array(r, &k)) || k != 2)
            return rc ? rc : -1;
        if ((rc = resp_bulk(r, &s, &len)))
            return rc;
        if ((rc = resp_array(r, &k)))
            return rc;
        for (int64_t e = 0; e < k; e++) {
            if ((rc = resp_array(r, &pair)) || pair != 2)
                return rc ? rc : -1;
            if ((rc = resp_bulk(r, &s, &len)))
                return rc;
            if (s && (size_t)len < lastcap) {
                memcpy(last, s, (size_t)len);
                last[len] = 0;
            }
            if ((rc = resp_array(r, &f)))
                return rc;
            for (int64_t i = 0; i < f; i++) {
                if ((rc = resp_bulk(r, &s, &len)))
                    return rc;
                if (i % 2 == 1 && len > 0)
                    *bytes += len;
            }
            (*entries)++;
        }
    }
    return 0;
}

static const char xread_usage[] =
    "usage: runnel-bench redis-xread --port P --stream S --records N [--count 1000]\n"
    "         [--host 127.0.0.1] [--timeout 600]\n"
    "  One client reading the stream from its start with XREAD COUNT c, each request\n"
    "  continuing after the last id of the previous reply, until N entries.\n";

static int cmd_redis_xread(int argc, char **argv)
{
    static const char *const allowed[] = {"host", "port", "stream", "records", "count", NULL};
    struct opts o;
    opts_parse(&o, argc, argv, allowed, xread_usage);
    arm_timeout(&o);
    const char *host = opt_str(&o, "host", "127.0.0.1");
    int port = (int)opt_long(&o, "port", 6379);
    const char *stream = opt_need(&o, "stream");
    int64_t records = opt_long(&o, "records", 1000000);
    int64_t count = opt_long(&o, "count", 1000);

    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        die("redis-xread: '%s' is not an IPv4 address", host);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa))
        die("redis-xread: connect %s:%d: %s", host, port, strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

    struct resp r = {.cap = 1 << 20};
    r.buf = malloc(r.cap);
    char last[64] = "0-0", cnt[24], req[512];
    snprintf(cnt, sizeof cnt, "%" PRId64, count);
    int64_t total = 0, bytes = 0, calls = 0;
    int64_t t0 = now_ns();
    while (total < records) {
        int n = snprintf(req, sizeof req,
                         "*6\r\n$5\r\nXREAD\r\n$5\r\nCOUNT\r\n$%zu\r\n%s\r\n$7\r\nSTREAMS\r\n"
                         "$%zu\r\n%s\r\n$%zu\r\n%s\r\n",
                         strlen(cnt), cnt, strlen(stream), stream, strlen(last), last);
        if (write_full(fd, req, (size_t)n))
            die("redis-xread: write: %s", strerror(errno));
        r.len = 0;
        int64_t e, b;
        for (;;) {
            r.pos = 0;
            int rc = r.len ? parse_xread(&r, &e, &b, last, sizeof last) : 1;
            if (rc == 0)
                break;
            if (rc < 0)
                die("redis-xread: unexpected reply");
            if (r.len == r.cap) {
                r.cap *= 2;
                r.buf = realloc(r.buf, r.cap);
            }
            ssize_t got = read(fd, r.buf + r.len, r.cap - r.len);
            if (got <= 0)
                die("redis-xread: read: connection closed");
            r.len += (size_t)got;
        }
        calls++;
        if (e == 0)
            break; /* the stream holds fewer than N entries */
        total += e;
        bytes += b;
    }
    double secs = (double)(now_ns() - t0) / 1e9;
    close(fd);
    free(r.buf);
    double rps = (double)total / secs;
    printf("redis-xread: %" PRId64 " entries in %" PRId64 " XREAD COUNT %" PRId64
           " calls: %.3f s, %.0f records/s, %.1f MB/s of values\n",
           total, calls, count, secs, rps, (double)bytes / secs / 1e6);
    printf("RESULT records=%" PRId64 " seconds=%.6f rps=%.0f mbps=%.2f\n", total, secs, rps,
           (double)bytes / secs / 1e6);
    return total >= records ? 0 : 1;
}

/* ------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(int, char **);
        const char *what;
    } cmds[] = {
        {"produce", cmd_produce, "produce N records as fast as the broker takes them"},
        {"create-topic", cmd_create_topic, "create a topic with P partitions"},
        {"consume", cmd_consume, "consume N records from the beginning"},
        {"latency", cmd_latency, "end-to-end latency at a fixed rate"},
        {"connections", cmd_connections, "open and hold N idle connections"},
        {"probe", cmd_probe, "wait until a (re)starting broker serves a topic"},
        {"redis-xread", cmd_redis_xread, "read a Redis stream with XREAD"},
    };
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 2)
        for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
            if (!strcmp(argv[1], cmds[i].name))
                return cmds[i].fn(argc - 2, argv + 2);
    fprintf(stderr, "usage: runnel-bench <command> [--option value]...\n");
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        fprintf(stderr, "  %-12s %s\n", cmds[i].name, cmds[i].what);
    return 2;
}
