/*
 * runnel dlq: a consumer group's dead letters (docs/delivery.md).
 *
 *   list GROUP      prints the records of __runnel.dlq.GROUP with their
 *                   history headers
 *   redrive GROUP   produces every dead letter not yet re-driven to
 *                   __runnel.retry.GROUP with the header runnel-redrive,
 *                   which the broker appends at once with a fresh retry
 *                   count
 *
 * Progress of redrive is the committed offset of the group
 * __runnel.redrive.GROUP on the dead-letter topic, committed only after
 * every re-driven record was acknowledged, so a run that fails half way
 * re-drives the rest (and possibly some again: at least once) next time.
 * Both read the topic up to its high watermark as it was when they
 * started, and stop there.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_util.h"

#define PROG "runnel dlq"
#define WAIT_MS 10000

static const char usage_text[] =
    "usage: runnel dlq <command> GROUP [options]\n"
    "\n"
    "  list GROUP [--limit N]\n"
    "        the dead letters of GROUP (topic __runnel.dlq.GROUP), oldest first: offset,\n"
    "        time, retries, where the record came from, why it was given up, key, value;\n"
    "        a '*' before the offset marks records already re-driven\n"
    "  redrive GROUP\n"
    "        send every dead letter not yet re-driven back to __runnel.retry.GROUP with a\n"
    "        fresh retry count; prints how many\n"
    "\n" CLI_COMMON_HELP;

enum { OPT_LIMIT = 1 };

static const struct cli_opt opts[] = {{"limit", 'n', 1, OPT_LIMIT}, CLI_COMMON_OPTS, {0}};

struct dlq_args {
    struct cli_client client;
    const char *group;
    int64_t limit;
    char dlq[512], retry[512], redrive_group[512];
    bool exists; /* the dead-letter topic exists (the group ever gave up a record) */
};

static int parse(struct dlq_args *a, const char *prog, int argc, char **argv)
{
    cli_client_init(&a->client, prog);
    a->limit = -1;
    struct cli_args ca;
    cli_args_init(&ca, prog, argc, argv, 1);
    const char *val;
    int id;
    while ((id = cli_next(&ca, opts, &val)) != CLI_ARG_END) {
        if (id == CLI_ARG_ERROR)
            return CLI_USAGE;
        if (id == CLI_OPT_HELP) {
            fputs(usage_text, stdout);
            return -1;
        }
        int c = cli_common_opt(&a->client, id, val);
        if (c == CLI_ARG_ERROR)
            return CLI_USAGE;
        if (c)
            continue;
        if (id == OPT_LIMIT) {
            if (cli_parse_int64(prog, "--limit", val, 0, INT64_MAX, &a->limit))
                return CLI_USAGE;
        } else if (id == CLI_ARG_POSITIONAL && !a->group) {
            a->group = val;
        } else {
            return cli_usage_error(prog, "unexpected argument '%s'", val);
        }
    }
    if (!a->group || !a->group[0])
        return cli_usage_error(prog, "which group?");
    snprintf(a->dlq, sizeof a->dlq, "__runnel.dlq.%s", a->group);
    snprintf(a->retry, sizeof a->retry, "__runnel.retry.%s", a->group);
    snprintf(a->redrive_group, sizeof a->redrive_group, "__runnel.redrive.%s", a->group);
    return 0;
}

/* Escapes what a terminal should not get raw. */
static void print_bytes(const void *p, size_t n)
{
    const unsigned char *s = p;
    if (!p) {
        fputs("(null)", stdout);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\\')
            putchar(s[i]);
        else
            printf("\\x%02x", s[i]);
    }
}

static void print_header(rd_kafka_headers_t *h, const char *name)
{
    const void *v = NULL;
    size_t n = 0;
    if (h && !rd_kafka_header_get_last(h, name, &v, &n) && v)
        print_bytes(v, n);
    else
        putchar('-');
}

/* A consumer of the dead-letter topic in the redrive group. */
static int start_consumer(struct dlq_args *a)
{
    rd_kafka_conf_t *conf = cli_conf_new(&a->client);
    if (!conf)
        return CLI_FAIL;
    if (cli_conf_set(&a->client, conf, "group.id", a->redrive_group) ||
        cli_conf_set(&a->client, conf, "enable.auto.commit", "false") ||
        cli_conf_set(&a->client, conf, "enable.auto.offset.store", "false") ||
        cli_conf_set(&a->client, conf, "auto.offset.reset", "earliest")) {
        rd_kafka_conf_destroy(conf);
        return CLI_FAIL;
    }
    int rc = cli_client_start(&a->client, RD_KAFKA_CONSUMER, conf);
    if (rc)
        return rc;
    /* All topics, without naming ours: naming a broker-owned topic
     * creates it, and a mistyped group should not get one. */
    const struct rd_kafka_metadata *md;
    if (cli_metadata(&a->client, NULL, &md))
        return CLI_FAIL;
    a->exists = cli_find_topic(md, a->dlq) != NULL;
    rd_kafka_metadata_destroy(md);
    rd_kafka_poll_set_consumer(a->client.rk);
    return CLI_OK;
}

/* The redrive group's committed offset (or 0) and the high watermark. */
static int positions(struct dlq_args *a, int64_t *committed, int64_t *low, int64_t *high)
{
    rd_kafka_resp_err_t err =
        rd_kafka_query_watermark_offsets(a->client.rk, a->dlq, 0, low, high, WAIT_MS);
    if (err) {
        cli_error(PROG, "cannot read the offsets of %s: %s", a->dlq, rd_kafka_err2str(err));
        return CLI_FAIL;
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, a->dlq, 0);
    err = rd_kafka_committed(a->client.rk, l, WAIT_MS);
    *committed = err || l->elems[0].offset < 0 ? 0 : l->elems[0].offset;
    rd_kafka_topic_partition_list_destroy(l);
    if (err) {
        cli_error(PROG, "cannot read the redrive progress: %s", rd_kafka_err2str(err));
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* Reads [from, high) calling fn for each record; CLI_OK or CLI_FAIL. */
static int read_range(struct dlq_args *a, int64_t from, int64_t high,
                      int (*fn)(struct dlq_args *a, rd_kafka_message_t *m, void *arg), void *arg)
{
    if (from >= high)
        return CLI_OK;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, a->dlq, 0)->offset = from;
    rd_kafka_resp_err_t err = rd_kafka_assign(a->client.rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (err) {
        cli_error(PROG, "cannot read %s: %s", a->dlq, rd_kafka_err2str(err));
        return CLI_FAIL;
    }
    int64_t last_seen = cli_now_ms();
    int rc = CLI_OK;
    while (!cli_stop && rc == CLI_OK) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(a->client.rk, 200);
        if (!m) {
            if (cli_now_ms() - last_seen > WAIT_MS) {
                cli_error(PROG, "timed out reading %s", a->dlq);
                rc = CLI_FAIL;
            }
            continue;
        }
        last_seen = cli_now_ms();
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                cli_error(PROG, "cannot read %s: %s", a->dlq, rd_kafka_message_errstr(m));
                rc = CLI_FAIL;
            }
            rd_kafka_message_destroy(m);
            continue;
        }
        int64_t off = m->offset;
        int stop = fn(a, m, arg);
        rd_kafka_message_destroy(m);
        if (stop < 0)
            rc = CLI_FAIL;
        if (stop || off + 1 >= high)
            break;
    }
    rd_kafka_assign(a->client.rk, NULL);
    return rc;
}

struct list_state {
    int64_t redriven_below;
    int64_t printed;
};

static int list_one(struct dlq_args *a, rd_kafka_message_t *m, void *arg)
{
    struct list_state *st = arg;
    rd_kafka_headers_t *h = NULL;
    rd_kafka_message_headers(m, &h);
    rd_kafka_timestamp_type_t tt;
    printf("%s%" PRId64 "\t%" PRId64 "\t", m->offset < st->redriven_below ? "*" : "", m->offset,
           rd_kafka_message_timestamp(m, &tt));
    print_header(h, "runnel-retry-count");
    putchar('\t');
    print_header(h, "runnel-original-topic");
    putchar('/');
    print_header(h, "runnel-original-partition");
    putchar('@');
    print_header(h, "runnel-original-offset");
    putchar('\t');
    print_header(h, "runnel-dlq-reason");
    putchar('\t');
    print_bytes(m->key, m->key_len);
    putchar('\t');
    print_bytes(m->payload, m->len);
    putchar('\n');
    st->printed++;
    return a->limit >= 0 && st->printed >= a->limit;
}

static int cmd_list(struct dlq_args *a)
{
    int rc = start_consumer(a);
    if (rc)
        return rc;
    printf("OFFSET\tTIMESTAMP\tRETRIES\tFROM\tREASON\tKEY\tVALUE\n");
    int64_t committed, low, high;
    if (!a->exists || (rc = positions(a, &committed, &low, &high))) {
        rd_kafka_consumer_close(a->client.rk);
        return rc;
    }
    struct list_state st = {.redriven_below = committed};
    if (a->limit != 0)
        rc = read_range(a, low, high, list_one, &st);
    rd_kafka_consumer_close(a->client.rk);
    return rc;
}

struct redrive_state {
    rd_kafka_t *producer;
    int64_t sent;
    int64_t failed;
    int64_t next; /* offset after the last record handed to the producer */
};

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    struct redrive_state *st = opaque;
    if (m->err)
        st->failed++;
}

static int redrive_one(struct dlq_args *a, rd_kafka_message_t *m, void *arg)
{
    struct redrive_state *st = arg;
    rd_kafka_headers_t *h = NULL;
    rd_kafka_headers_t *copy =
        rd_kafka_message_headers(m, &h) ? rd_kafka_headers_new(1) : rd_kafka_headers_copy(h);
    rd_kafka_header_add(copy, "runnel-redrive", -1, "1", 1);
    rd_kafka_resp_err_t err;
    do {
        err = rd_kafka_producev(
            st->producer, RD_KAFKA_V_TOPIC(a->retry), RD_KAFKA_V_PARTITION(0),
            RD_KAFKA_V_KEY(m->key, m->key_len), RD_KAFKA_V_VALUE(m->payload, m->len),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(copy), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(st->producer, 100);
    } while (err == RD_KAFKA_RESP_ERR__QUEUE_FULL);
    if (err) {
        rd_kafka_headers_destroy(copy);
        cli_error(PROG, "cannot produce to %s: %s", a->retry, rd_kafka_err2str(err));
        return -1;
    }
    st->sent++;
    st->next = m->offset + 1;
    rd_kafka_poll(st->producer, 0);
    return 0;
}

static int cmd_redrive(struct dlq_args *a)
{
    int rc = start_consumer(a);
    if (rc)
        return rc;
    if (!a->exists) {
        printf("re-drove 0 records (group %s has no dead letters)\n", a->group);
        rd_kafka_consumer_close(a->client.rk);
        return CLI_OK;
    }
    int64_t committed, low, high;
    if ((rc = positions(a, &committed, &low, &high)))
        return rc;
    struct redrive_state st = {.next = committed > low ? committed : low};
    struct cli_client pc;
    cli_client_init(&pc, PROG);
    pc.bootstrap = a->client.bootstrap;
    pc.verbose = a->client.verbose;
    rd_kafka_conf_t *conf = cli_conf_new(&pc);
    if (!conf)
        return CLI_FAIL;
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_conf_set_opaque(conf, &st);
    if (cli_conf_set(&pc, conf, "linger.ms", "5") || cli_conf_set(&pc, conf, "acks", "all")) {
        rd_kafka_conf_destroy(conf);
        return CLI_FAIL;
    }
    if ((rc = cli_client_start(&pc, RD_KAFKA_PRODUCER, conf)))
        return rc;
    st.producer = pc.rk;
    int64_t from = st.next;
    rc = read_range(a, from, high, redrive_one, &st);
    rd_kafka_flush(st.producer, WAIT_MS);
    if (rd_kafka_outq_len(st.producer) > 0 || st.failed) {
        cli_error(PROG,
                  "%" PRId64 " of %" PRId64 " records were not accepted by %s; "
                  "nothing committed, run again",
                  st.failed + rd_kafka_outq_len(st.producer), st.sent, a->retry);
        rc = CLI_FAIL;
    } else if (st.next > from) {
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, a->dlq, 0)->offset = st.next;
        rd_kafka_resp_err_t err = rd_kafka_commit(a->client.rk, l, 0);
        rd_kafka_topic_partition_list_destroy(l);
        if (err) {
            cli_error(PROG, "re-drove %" PRId64 " records but cannot record it: %s", st.sent,
                      rd_kafka_err2str(err));
            rc = CLI_FAIL;
        }
    }
    if (rc == CLI_OK)
        printf("re-drove %" PRId64 " records from %s to %s\n", st.sent, a->dlq, a->retry);
    cli_client_close(&pc);
    rd_kafka_consumer_close(a->client.rk);
    return rc;
}

int cmd_dlq(int argc, char **argv)
{
    static const char *const names[] = {"list", "redrive"};
    int rc;
    int which = cli_subcommand(PROG, usage_text, names, 2, argc, argv, &rc);
    if (which < 0)
        return rc;
    struct dlq_args a = {0};
    const char *prog = which == 0 ? PROG " list" : PROG " redrive";
    rc = parse(&a, prog, argc - 1, argv + 1);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    rc = which == 0 ? cmd_list(&a) : cmd_redrive(&a);
    cli_client_close(&a.client);
    return cli_finish_output(prog, rc);
}
