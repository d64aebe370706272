/*
 * runnel produce: one record per line of standard input, sent with
 * librdkafka's producer.  The command waits for every delivery report
 * before it exits, so exit status 0 means the broker acknowledged every
 * line (with the requested acks), and anything else names the first
 * failure.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_util.h"

#define PROG "runnel produce"

/* How long a record may wait for delivery before it counts as failed;
 * librdkafka's default of five minutes is too long for a command line. */
#define PRODUCE_MESSAGE_TIMEOUT "30000"

static const char usage_text[] =
    "usage: runnel produce TOPIC [options] < lines\n"
    "\n"
    "Sends each line of standard input (without its newline) as one record\n"
    "and waits until the broker has acknowledged all of them.\n"
    "\n"
    "options:\n"
    "  -K, --key-separator SEP   the text before the first SEP is the key; lines\n"
    "                            without SEP get a null key\n"
    "  -H, --header K=V          add this header to every record (repeatable)\n"
    "  -p, --partition N         send to partition N (default: the partitioner)\n"
    "  -z, --compression CODEC   none, gzip, snappy, lz4 or zstd (default none)\n"
    "      --acks 0|1|all        acknowledgement level (default all)\n"
    "      --timestamp MS        record timestamp in ms since the epoch (default now)\n"
    "      --linger-ms N         batch records for up to N ms (default 5)\n"
    "\n" CLI_COMMON_HELP;

enum {
    OPT_KEY_SEP = 1,
    OPT_HEADER,
    OPT_PARTITION,
    OPT_COMPRESSION,
    OPT_ACKS,
    OPT_TIMESTAMP,
    OPT_LINGER,
};

static const struct cli_opt produce_opts[] = {
    {"key-separator", 'K', 1, OPT_KEY_SEP},
    {"header", 'H', 1, OPT_HEADER},
    {"partition", 'p', 1, OPT_PARTITION},
    {"compression", 'z', 1, OPT_COMPRESSION},
    {"acks", 0, 1, OPT_ACKS},
    {"timestamp", 0, 1, OPT_TIMESTAMP},
    {"linger-ms", 0, 1, OPT_LINGER},
    CLI_COMMON_OPTS,
    {0},
};

/* Delivery outcomes, updated by the report callback on this thread. */
struct produce_stats {
    long delivered;
    long failed;
    rd_kafka_resp_err_t first_err;
};

/* Each record carries the counters as its opaque (m->_private). */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct produce_stats *st = m->_private;
    (void)rk;
    (void)opaque;
    if (!m->err) {
        st->delivered++;
        return;
    }
    if (!st->failed)
        st->first_err = m->err;
    st->failed++;
}

struct produce_args {
    struct cli_client client;
    const char *topic;
    const char *key_sep;
    size_t key_sep_len;
    rd_kafka_headers_t *headers; /* template copied into every record */
    struct produce_stats *stats;
    int32_t partition;
    int64_t timestamp;
    const char *compression;
    const char *acks;
    const char *linger;
    int help;
};

static int parse_produce_args(struct produce_args *pa, int argc, char **argv)
{
    struct cli_args a;
    const char *val;
    int id;
    int64_t n;
    cli_args_init(&a, PROG, argc, argv, 1);
    while ((id = cli_next(&a, produce_opts, &val)) != CLI_ARG_END) {
        switch (id) {
        case CLI_ARG_ERROR:
            return CLI_USAGE;
        case CLI_ARG_POSITIONAL:
            if (pa->topic)
                return cli_usage_error(PROG, "unexpected argument '%s'", val);
            pa->topic = val;
            break;
        case OPT_KEY_SEP:
            if (!*val)
                return cli_usage_error(PROG, "empty --key-separator");
            pa->key_sep = val;
            pa->key_sep_len = strlen(val);
            break;
        case OPT_HEADER: {
            const char *v;
            char *k = cli_split_kv(PROG, "--header", val, &v);
            if (!k)
                return CLI_USAGE;
            rd_kafka_header_add(pa->headers, k, -1, v, -1);
            free(k);
            break;
        }
        case OPT_PARTITION:
            if (cli_parse_int64(PROG, "--partition", val, 0, INT32_MAX, &n))
                return CLI_USAGE;
            pa->partition = (int32_t)n;
            break;
        case OPT_COMPRESSION:
            if (strcmp(val, "none") && strcmp(val, "gzip") && strcmp(val, "snappy") &&
                strcmp(val, "lz4") && strcmp(val, "zstd"))
                return cli_usage_error(PROG, "bad value '%s' for --compression", val);
            pa->compression = val;
            break;
        case OPT_ACKS:
            if (strcmp(val, "0") && strcmp(val, "1") && strcmp(val, "all") && strcmp(val, "-1"))
                return cli_usage_error(PROG, "bad value '%s' for --acks (0, 1 or all)", val);
            pa->acks = val;
            break;
        case OPT_TIMESTAMP:
            if (cli_parse_int64(PROG, "--timestamp", val, 0, INT64_MAX, &pa->timestamp))
                return CLI_USAGE;
            break;
        case OPT_LINGER:
            if (cli_parse_int64(PROG, "--linger-ms", val, 0, 900000, &n))
                return CLI_USAGE;
            pa->linger = val;
            break;
        case CLI_OPT_HELP:
            pa->help = 1;
            break;
        default:
            if (cli_common_opt(&pa->client, id, val) < 0)
                return CLI_USAGE;
        }
    }
    if (!pa->help && !pa->topic)
        return cli_usage_error(PROG, "missing TOPIC");
    return CLI_OK;
}

/*
 * Queues one record, waiting for room when librdkafka's queue is full.
 * Returns 0, or the error that refused the record outright.
 */
static rd_kafka_resp_err_t send_line(struct produce_args *pa, char *line, size_t len)
{
    const char *key = NULL, *value = line;
    size_t key_len = 0, value_len = len;
    if (pa->key_sep) {
        char *sep = memmem(line, len, pa->key_sep, pa->key_sep_len);
        if (sep) {
            key = line;
            key_len = (size_t)(sep - line);
            value = sep + pa->key_sep_len;
            value_len = len - key_len - pa->key_sep_len;
        }
    }
    for (;;) {
        /* producev takes the headers only when it succeeds. */
        rd_kafka_headers_t *hdrs =
            rd_kafka_header_cnt(pa->headers) ? rd_kafka_headers_copy(pa->headers) : NULL;
        rd_kafka_resp_err_t err = rd_kafka_producev(
            pa->client.rk, RD_KAFKA_V_TOPIC(pa->topic), RD_KAFKA_V_PARTITION(pa->partition),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, key_len),
            RD_KAFKA_V_VALUE((void *)value, value_len), RD_KAFKA_V_TIMESTAMP(pa->timestamp),
            RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(pa->stats), RD_KAFKA_V_END);
        if (!err)
            return 0;
        if (hdrs)
            rd_kafka_headers_destroy(hdrs);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || cli_stop)
            return err;
        /* Delivery reports free queue room; serve them and try again. */
        rd_kafka_poll(pa->client.rk, 100);
    }
}

static int produce_run(struct produce_args *pa)
{
    struct produce_stats *st = pa->stats;
    struct cli_client *c = &pa->client;
    rd_kafka_conf_t *conf = cli_conf_new(c);
    if (!conf)
        return CLI_FAIL;
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    if (cli_conf_set(c, conf, "message.timeout.ms", PRODUCE_MESSAGE_TIMEOUT) ||
        (pa->compression && cli_conf_set(c, conf, "compression.codec", pa->compression)) ||
        (pa->acks && cli_conf_set(c, conf, "acks", pa->acks)) ||
        (pa->linger && cli_conf_set(c, conf, "linger.ms", pa->linger))) {
        rd_kafka_conf_destroy(conf);
        return CLI_FAIL;
    }
    int rc = cli_client_start(c, RD_KAFKA_PRODUCER, conf);
    if (rc)
        return rc;

    /* A producer's metadata request auto-creates the topic where the
     * broker allows it, as kafka-console-producer does. */
    const struct rd_kafka_metadata *md;
    const rd_kafka_metadata_topic_t *t;
    if (cli_metadata(c, pa->topic, &md))
        return CLI_FAIL;
    rc = cli_require_topic(c, md, pa->topic, &t);
    if (!rc && pa->partition != RD_KAFKA_PARTITION_UA && pa->partition >= t->partition_cnt) {
        cli_error(PROG, "topic '%s' has no partition %d (it has %d)", pa->topic, (int)pa->partition,
                  t->partition_cnt);
        rc = CLI_FAIL;
    }
    rd_kafka_metadata_destroy(md);
    if (rc)
        return rc;

    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long sent = 0;
    rd_kafka_resp_err_t local_err = 0;
    while (!cli_stop && (len = getline(&line, &cap, stdin)) >= 0) {
        if (len > 0 && line[len - 1] == '\n')
            len--;
        rd_kafka_resp_err_t err = send_line(pa, line, (size_t)len);
        if (err) {
            if (!st->failed && !local_err)
                local_err = err;
            st->failed++;
        }
        sent++;
        rd_kafka_poll(c->rk, 0);
    }
    int read_err = ferror(stdin) && !cli_stop ? errno : 0;
    free(line);

    /* Wait for every report; on ^C drop what is still queued, which
     * reports those records as failed rather than pretending. */
    while (rd_kafka_outq_len(c->rk) > 0) {
        if (cli_stop)
            rd_kafka_purge(c->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_flush(c->rk, 200);
    }
    rd_kafka_poll(c->rk, 0);

    fprintf(stderr, "produced %ld record%s to %s\n", st->delivered, st->delivered == 1 ? "" : "s",
            pa->topic);
    if (read_err) {
        cli_error(PROG, "cannot read standard input: %s", strerror(read_err));
        return CLI_FAIL;
    }
    if (st->failed) {
        rd_kafka_resp_err_t first = local_err ? local_err : st->first_err;
        cli_error(PROG, "%ld of %ld records failed, first: %s", st->failed, sent,
                  rd_kafka_err2str(first));
        return CLI_FAIL;
    }
    return CLI_OK;
}

int cmd_produce(int argc, char **argv)
{
    struct produce_args pa;
    struct produce_stats st;
    memset(&pa, 0, sizeof pa);
    memset(&st, 0, sizeof st);
    cli_client_init(&pa.client, PROG);
    pa.partition = RD_KAFKA_PARTITION_UA;
    pa.headers = rd_kafka_headers_new(4);

    int rc = parse_produce_args(&pa, argc, argv);
    if (!rc && pa.help) {
        fputs(usage_text, stdout);
    } else if (!rc) {
        cli_catch_signals();
        pa.stats = &st;
        rc = produce_run(&pa);
    }
    cli_client_close(&pa.client);
    rd_kafka_headers_destroy(pa.headers);
    return rc;
}
