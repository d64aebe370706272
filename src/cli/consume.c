/*
 * runnel consume: print the records of a topic.
 *
 * Without --group, partitions are assigned by hand (rd_kafka_assign with
 * start offsets), so no consumer group is joined and nothing is
 * committed; librdkafka still insists on a group.id for assign(), so a
 * fixed one is set and auto-commit is off.  Start positions given as a
 * timestamp are resolved to offsets with ListOffsets
 * (rd_kafka_offsets_for_times) first.
 *
 * With --group G the consumer joins group G (rd_kafka_subscribe) and the
 * group's leader decides which partitions it reads.  A partition starts
 * at the group's committed offset, or, without one, at the beginning
 * (--from-beginning) or the end.  Only records that were printed are
 * committed: each one's offset is stored after it is written out, the
 * auto-commit timer and every rebalance commit the stored offsets, and
 * so does the exit, before the consumer leaves the group.  --no-commit
 * turns all of that off.
 *
 * Output, one record per line:
 *   text  the value, or with --print-* flags the tab-separated fields
 *         partition:offset, timestamp, key, headers (k=v,k=v), value,
 *         each present only when asked for, always in that order;
 *   json  {"topic","partition","offset","timestamp","key","value",
 *         "headers":[{"key","value"}]}, null for a null key or value; bytes
 *         that are not UTF-8 are escaped as \u00XX.
 */
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_util.h"

#define PROG "runnel consume"

/* ListOffsets by timestamp; answered from the broker's time index. */
#define OFFSETS_FOR_TIMES_TIMEOUT_MS 10000

/* Poll slice: how late --timeout-ms and ^C are noticed at most. */
#define POLL_MS 100

/* With --group and --timeout-ms: how long joining the group may take
 * before the idle timeout starts counting anyway. */
#define GROUP_JOIN_MS 30000

static const char usage_text[] =
    "usage: runnel consume TOPIC [options]\n"
    "\n"
    "Prints records of TOPIC, one per line, without joining a consumer group\n"
    "unless --group is given.\n"
    "\n"
    "options:\n"
    "  -p, --partition N       read partition N only (default: all partitions)\n"
    "      --from-beginning    start at the earliest offset\n"
    "  -o, --offset N          start at offset N; a negative N starts N records\n"
    "                          before the end\n"
    "      --timestamp MS      start at the first record with timestamp >= MS\n"
    "                          (default start: the end, i.e. only new records)\n"
    "  -g, --group GROUP       join consumer group GROUP: read the partitions the\n"
    "                          group assigns, from its committed offsets (where it\n"
    "                          has none: the end, or the start with\n"
    "                          --from-beginning), and commit what was printed;\n"
    "                          -p, -o and --timestamp do not apply\n"
    "      --no-commit         with --group: commit nothing\n"
    "  -c, --count N           exit after N records\n"
    "      --timeout-ms N      exit after N ms without a record (default: wait);\n"
    "                          with --group the wait starts once partitions are\n"
    "                          assigned\n"
    "  -f, --format FORMAT     text (default) or json\n"
    "      --print-offset      text: print partition:offset first\n"
    "      --print-timestamp   text: print the timestamp (ms)\n"
    "      --print-key         text: print the key (empty when null)\n"
    "      --print-headers     text: print headers as k=v,k=v\n"
    "\n"
    "Text fields are tab-separated in the order partition:offset, timestamp,\n"
    "key, headers, value. JSON lines carry every field:\n"
    "  {\"topic\",\"partition\",\"offset\",\"timestamp\",\"key\",\"value\",\n"
    "   \"headers\":[{\"key\",\"value\"}]}\n"
    "\n" CLI_COMMON_HELP;

enum {
    OPT_PARTITION = 1,
    OPT_FROM_BEGINNING,
    OPT_OFFSET,
    OPT_TIMESTAMP,
    OPT_COUNT,
    OPT_TIMEOUT,
    OPT_FORMAT,
    OPT_PRINT_OFFSET,
    OPT_PRINT_TIMESTAMP,
    OPT_PRINT_KEY,
    OPT_PRINT_HEADERS,
    OPT_GROUP,
    OPT_NO_COMMIT,
};

static const struct cli_opt consume_opts[] = {
    {"partition", 'p', 1, OPT_PARTITION},
    {"from-beginning", 0, 0, OPT_FROM_BEGINNING},
    {"offset", 'o', 1, OPT_OFFSET},
    {"timestamp", 0, 1, OPT_TIMESTAMP},
    {"count", 'c', 1, OPT_COUNT},
    {"timeout-ms", 0, 1, OPT_TIMEOUT},
    {"format", 'f', 1, OPT_FORMAT},
    {"print-offset", 0, 0, OPT_PRINT_OFFSET},
    {"print-timestamp", 0, 0, OPT_PRINT_TIMESTAMP},
    {"print-key", 0, 0, OPT_PRINT_KEY},
    {"print-headers", 0, 0, OPT_PRINT_HEADERS},
    {"group", 'g', 1, OPT_GROUP},
    {"no-commit", 0, 0, OPT_NO_COMMIT},
    CLI_COMMON_OPTS,
    {0},
};

enum start_kind { START_END, START_BEGINNING, START_OFFSET, START_TIMESTAMP };

struct consume_args {
    struct cli_client client;
    const char *topic;
    int32_t partition; /* -1: all */
    enum start_kind start;
    int64_t start_value; /* offset or timestamp */
    int starts_given;
    int64_t count;      /* -1: unlimited */
    int64_t timeout_ms; /* -1: wait forever */
    int json;
    int print_offset, print_timestamp, print_key, print_headers;
    const char *group; /* NULL: no group, manual assignment */
    int no_commit;
    int help;
};

static int parse_consume_args(struct consume_args *ca, int argc, char **argv)
{
    struct cli_args a;
    const char *val;
    int id;
    int64_t n;
    cli_args_init(&a, PROG, argc, argv, 1);
    while ((id = cli_next(&a, consume_opts, &val)) != CLI_ARG_END) {
        switch (id) {
        case CLI_ARG_ERROR:
            return CLI_USAGE;
        case CLI_ARG_POSITIONAL:
            if (ca->topic)
                return cli_usage_error(PROG, "unexpected argument '%s'", val);
            ca->topic = val;
            break;
        case OPT_PARTITION:
            if (cli_parse_int64(PROG, "--partition", val, 0, INT32_MAX, &n))
                return CLI_USAGE;
            ca->partition = (int32_t)n;
            break;
        case OPT_FROM_BEGINNING:
            ca->start = START_BEGINNING;
            ca->starts_given++;
            break;
        case OPT_OFFSET:
            if (cli_parse_int64(PROG, "--offset", val, -INT32_MAX, INT64_MAX, &ca->start_value))
                return CLI_USAGE;
            ca->start = START_OFFSET;
            ca->starts_given++;
            break;
        case OPT_TIMESTAMP:
            if (cli_parse_int64(PROG, "--timestamp", val, 0, INT64_MAX, &ca->start_value))
                return CLI_USAGE;
            ca->start = START_TIMESTAMP;
            ca->starts_given++;
            break;
        case OPT_COUNT:
            if (cli_parse_int64(PROG, "--count", val, 1, INT64_MAX, &ca->count))
                return CLI_USAGE;
            break;
        case OPT_TIMEOUT:
            if (cli_parse_int64(PROG, "--timeout-ms", val, 0, INT64_MAX, &ca->timeout_ms))
                return CLI_USAGE;
            break;
        case OPT_FORMAT:
            if (!strcmp(val, "json"))
                ca->json = 1;
            else if (strcmp(val, "text"))
                return cli_usage_error(PROG, "bad value '%s' for --format (text or json)", val);
            break;
        case OPT_PRINT_OFFSET:
            ca->print_offset = 1;
            break;
        case OPT_PRINT_TIMESTAMP:
            ca->print_timestamp = 1;
            break;
        case OPT_PRINT_KEY:
            ca->print_key = 1;
            break;
        case OPT_PRINT_HEADERS:
            ca->print_headers = 1;
            break;
        case OPT_GROUP:
            if (!*val)
                return cli_usage_error(PROG, "empty --group");
            ca->group = val;
            break;
        case OPT_NO_COMMIT:
            ca->no_commit = 1;
            break;
        case CLI_OPT_HELP:
            ca->help = 1;
            break;
        default:
            if (cli_common_opt(&ca->client, id, val) < 0)
                return CLI_USAGE;
        }
    }
    if (ca->help)
        return CLI_OK;
    if (!ca->topic)
        return cli_usage_error(PROG, "missing TOPIC");
    if (ca->starts_given > 1)
        return cli_usage_error(PROG, "give at most one of --from-beginning, --offset, --timestamp");
    if (ca->group &&
        (ca->partition >= 0 || ca->start == START_OFFSET || ca->start == START_TIMESTAMP))
        return cli_usage_error(PROG, "--group takes no --partition, --offset or --timestamp "
                                     "(the group assigns partitions and keeps offsets)");
    if (ca->no_commit && !ca->group)
        return cli_usage_error(PROG, "--no-commit needs --group");
    return CLI_OK;
}

/*
 * Length of the well-formed UTF-8 sequence at s (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF), or 0 when it is not one.
 */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the 2nd byte */
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return len;
}

/* A JSON string literal of the bytes, or null when p is NULL. */
static void json_string(FILE *f, const void *p, size_t n)
{
    if (!p) {
        fputs("null", f);
        return;
    }
    const unsigned char *s = p;
    putc('"', f);
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        if (c == '"' || c == '\\') {
            putc('\\', f);
            putc(c, f);
            i++;
        } else if (c < 0x20) {
            switch (c) {
            case '\n':
                fputs("\\n", f);
                break;
            case '\r':
                fputs("\\r", f);
                break;
            case '\t':
                fputs("\\t", f);
                break;
            case '\b':
                fputs("\\b", f);
                break;
            case '\f':
                fputs("\\f", f);
                break;
            default:
                fprintf(f, "\\u%04x", c);
            }
            i++;
        } else if (c < 0x80) {
            putc(c, f);
            i++;
        } else {
            size_t len = utf8_len(s + i, n - i);
            if (len) {
                fwrite(s + i, 1, len, f);
                i += len;
            } else {
                /* Not UTF-8: keep the byte's value visible rather than
                 * emit invalid JSON or drop it. */
                fprintf(f, "\\u%04x", c);
                i++;
            }
        }
    }
    putc('"', f);
}

static int64_t record_timestamp(const rd_kafka_message_t *m)
{
    rd_kafka_timestamp_type_t type;
    int64_t ts = rd_kafka_message_timestamp(m, &type);
    return type == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? -1 : ts;
}

static void print_json(const struct consume_args *ca, const rd_kafka_message_t *m)
{
    printf("{\"topic\":");
    json_string(stdout, ca->topic, strlen(ca->topic));
    printf(",\"partition\":%d,\"offset\":%lld,\"timestamp\":%lld,\"key\":", (int)m->partition,
           (long long)m->offset, (long long)record_timestamp(m));
    json_string(stdout, m->key, m->key_len);
    printf(",\"value\":");
    json_string(stdout, m->payload, m->len);
    printf(",\"headers\":[");
    rd_kafka_headers_t *hdrs;
    if (!rd_kafka_message_headers(m, &hdrs)) {
        const char *name;
        const void *v;
        size_t vlen;
        for (size_t i = 0; !rd_kafka_header_get_all(hdrs, i, &name, &v, &vlen); i++) {
            printf("%s{\"key\":", i ? "," : "");
            json_string(stdout, name, strlen(name));
            printf(",\"value\":");
            json_string(stdout, v, vlen);
            putchar('}');
        }
    }
    printf("]}\n");
}

static void print_text(const struct consume_args *ca, const rd_kafka_message_t *m)
{
    if (ca->print_offset)
        printf("%d:%lld\t", (int)m->partition, (long long)m->offset);
    if (ca->print_timestamp)
        printf("%lld\t", (long long)record_timestamp(m));
    if (ca->print_key) {
        if (m->key)
            fwrite(m->key, 1, m->key_len, stdout);
        putchar('\t');
    }
    if (ca->print_headers) {
        rd_kafka_headers_t *hdrs;
        if (!rd_kafka_message_headers(m, &hdrs)) {
            const char *name;
            const void *v;
            size_t vlen;
            for (size_t i = 0; !rd_kafka_header_get_all(hdrs, i, &name, &v, &vlen); i++) {
                printf("%s%s=", i ? "," : "", name);
                if (v)
                    fwrite(v, 1, vlen, stdout);
            }
        }
        putchar('\t');
    }
    if (m->payload)
        fwrite(m->payload, 1, m->len, stdout);
    putchar('\n');
}

/*
 * The partitions to read with their start offsets, timestamps already
 * resolved; NULL after printing an error.
 */
static rd_kafka_topic_partition_list_t *start_positions(struct consume_args *ca,
                                                        const rd_kafka_metadata_topic_t *t)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(t->partition_cnt);
    for (int32_t p = 0; p < t->partition_cnt; p++) {
        if (ca->partition >= 0 && p != ca->partition)
            continue;
        int64_t off = RD_KAFKA_OFFSET_END;
        if (ca->start == START_BEGINNING)
            off = RD_KAFKA_OFFSET_BEGINNING;
        else if (ca->start == START_OFFSET)
            off = ca->start_value >= 0 ? ca->start_value : RD_KAFKA_OFFSET_TAIL(-ca->start_value);
        else if (ca->start == START_TIMESTAMP)
            off = ca->start_value; /* a timestamp until resolved below */
        rd_kafka_topic_partition_list_add(l, ca->topic, p)->offset = off;
    }
    if (ca->start != START_TIMESTAMP)
        return l;

    rd_kafka_resp_err_t err =
        rd_kafka_offsets_for_times(ca->client.rk, l, OFFSETS_FOR_TIMES_TIMEOUT_MS);
    for (int i = 0; !err && i < l->cnt; i++) {
        err = l->elems[i].err;
        /* -1: no record that late; start at the end like Kafka's tools. */
        if (!err && l->elems[i].offset < 0)
            l->elems[i].offset = RD_KAFKA_OFFSET_END;
    }
    if (err) {
        cli_error(PROG, "cannot look up offsets for timestamp %lld: %s", (long long)ca->start_value,
                  rd_kafka_err2str(err));
        rd_kafka_topic_partition_list_destroy(l);
        return NULL;
    }
    return l;
}

/* Errors after which there is nothing left to wait for. */
static int is_fatal_consume_error(rd_kafka_resp_err_t err)
{
    return err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
           err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC || err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION ||
           err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED || err == RD_KAFKA_RESP_ERR__FATAL;
}

/*
 * Group mode: when the latest rebalance handed this consumer partitions,
 * -1 before the first.  Written by rebalance_cb, which
 * rd_kafka_consumer_poll() serves on this same thread.
 */
static int64_t assigned_at = -1;

static void print_partitions(const struct cli_client *c, const char *what,
                             const rd_kafka_topic_partition_list_t *parts)
{
    fprintf(stderr, "%s: %s", c->prog, what);
    for (int i = 0; i < parts->cnt; i++)
        fprintf(stderr, "%s%s-%d", i ? "," : " ", parts->elems[i].topic,
                (int)parts->elems[i].partition);
    fputc('\n', stderr);
}

/*
 * Takes what the group leader assigned.  The cooperative protocol hands
 * out and takes back partitions a few at a time (incremental_*), the
 * eager one replaces the whole assignment.  Offsets of revoked partitions
 * are committed by librdkafka itself before they go (auto-commit).
 */
static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct cli_client *c = opaque;
    const char *proto = rd_kafka_rebalance_protocol(rk);
    int coop = proto && !strcmp(proto, "COOPERATIVE");
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t aerr = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        if (c->verbose)
            print_partitions(c, "assigned", parts);
        if (coop)
            error = rd_kafka_incremental_assign(rk, parts);
        else
            aerr = rd_kafka_assign(rk, parts);
        assigned_at = cli_now_ms();
    } else {
        if (c->verbose)
            print_partitions(c, rd_kafka_assignment_lost(rk) ? "lost" : "revoked", parts);
        if (coop)
            error = rd_kafka_incremental_unassign(rk, parts);
        else
            aerr = rd_kafka_assign(rk, NULL);
    }
    if (error) {
        aerr = rd_kafka_error_code(error);
        rd_kafka_error_destroy(error);
    }
    if (aerr)
        cli_error(c->prog, "cannot take the group's assignment: %s", rd_kafka_err2str(aerr));
}

static int consume_loop(struct consume_args *ca)
{
    rd_kafka_t *rk = ca->client.rk;
    int64_t got = 0;
    int64_t start = cli_now_ms();
    int64_t last = start;
    int commit = ca->group && !ca->no_commit;
    while (!cli_stop && (ca->count < 0 || got < ca->count)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, POLL_MS);
        if (!m) {
            /* Idle: let a reader of a pipe see what we have so far. */
            fflush(stdout);
            int64_t since = last;
            /* A group member is idle only once it has partitions: joining
             * can take the broker's initial rebalance delay, or longer. */
            if (ca->group && assigned_at < 0)
                since = start + GROUP_JOIN_MS;
            else if (ca->group && assigned_at > since)
                since = assigned_at;
            if (ca->timeout_ms >= 0 && cli_now_ms() - since >= ca->timeout_ms)
                break;
            continue;
        }
        if (m->err) {
            rd_kafka_resp_err_t err = m->err;
            if (is_fatal_consume_error(err)) {
                cli_error(PROG, "cannot consume '%s': %s", ca->topic, rd_kafka_message_errstr(m));
                rd_kafka_message_destroy(m);
                return CLI_FAIL;
            }
            /* Transient (a broker restarting): librdkafka retries. */
            if (ca->client.verbose)
                cli_error(PROG, "%s", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        if (ca->json)
            print_json(ca, m);
        else
            print_text(ca, m);
        /* Printed, so it may be committed: the next commit (timer,
         * rebalance or exit) covers it.  A partition revoked meanwhile
         * refuses the store; its new owner reads the record again. */
        if (commit)
            rd_kafka_offset_store(m->rkt, m->partition, m->offset);
        rd_kafka_message_destroy(m);
        got++;
        last = cli_now_ms();
    }
    if (fflush(stdout)) {
        cli_error(PROG, "cannot write output");
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* Joins the group and subscribes; the group assigns the partitions. */
static int consume_group(struct consume_args *ca)
{
    struct cli_client *c = &ca->client;
    rd_kafka_conf_t *conf = cli_conf_new(c);
    if (!conf)
        return CLI_FAIL;
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    if (cli_conf_set(c, conf, "group.id", ca->group) ||
        cli_conf_set(c, conf, "enable.auto.commit", ca->no_commit ? "false" : "true") ||
        /* Offsets are stored by hand once a record is printed. */
        cli_conf_set(c, conf, "enable.auto.offset.store", "false") ||
        cli_conf_set(c, conf, "auto.offset.reset",
                     ca->start == START_BEGINNING ? "earliest" : "latest")) {
        rd_kafka_conf_destroy(conf);
        return CLI_FAIL;
    }
    int rc = cli_client_start(c, RD_KAFKA_CONSUMER, conf);
    if (rc)
        return rc;

    const struct rd_kafka_metadata *md;
    if (cli_metadata(c, ca->topic, &md))
        return CLI_FAIL;
    rc = cli_require_topic(c, md, ca->topic, NULL);
    rd_kafka_metadata_destroy(md);
    if (rc)
        return rc;

    rd_kafka_poll_set_consumer(c->rk);
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, ca->topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(c->rk, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (err) {
        cli_error(PROG, "cannot subscribe to '%s': %s", ca->topic, rd_kafka_err2str(err));
        return CLI_FAIL;
    }
    rc = consume_loop(ca);
    if (!ca->no_commit) {
        /* What was printed last is committed before leaving. */
        err = rd_kafka_commit(c->rk, NULL, 0);
        if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET && !rc) {
            cli_error(PROG, "cannot commit offsets of group '%s': %s", ca->group,
                      rd_kafka_err2str(err));
            rc = CLI_FAIL;
        }
    }
    /* Revokes the assignment and sends LeaveGroup. */
    rd_kafka_consumer_close(c->rk);
    return rc;
}

static int consume_run(struct consume_args *ca)
{
    struct cli_client *c = &ca->client;
    if (ca->group)
        return consume_group(ca);
    rd_kafka_conf_t *conf = cli_conf_new(c);
    if (!conf)
        return CLI_FAIL;
    if (cli_conf_set(c, conf, "group.id", "runnel-consume") ||
        cli_conf_set(c, conf, "enable.auto.commit", "false") ||
        cli_conf_set(c, conf, "enable.auto.offset.store", "false") ||
        /* An --offset past the end waits for new records. */
        cli_conf_set(c, conf, "auto.offset.reset", "latest")) {
        rd_kafka_conf_destroy(conf);
        return CLI_FAIL;
    }
    int rc = cli_client_start(c, RD_KAFKA_CONSUMER, conf);
    if (rc)
        return rc;

    const struct rd_kafka_metadata *md;
    const rd_kafka_metadata_topic_t *t;
    if (cli_metadata(c, ca->topic, &md))
        return CLI_FAIL;
    rc = cli_require_topic(c, md, ca->topic, &t);
    if (!rc && ca->partition >= t->partition_cnt) {
        cli_error(PROG, "topic '%s' has no partition %d (it has %d)", ca->topic, (int)ca->partition,
                  t->partition_cnt);
        rc = CLI_FAIL;
    }
    rd_kafka_topic_partition_list_t *l = rc ? NULL : start_positions(ca, t);
    rd_kafka_metadata_destroy(md);
    if (!l)
        return CLI_FAIL;

    /* From here on errors and logs arrive through rd_kafka_consumer_poll. */
    rd_kafka_poll_set_consumer(c->rk);
    rd_kafka_resp_err_t err = rd_kafka_assign(c->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (err) {
        cli_error(PROG, "cannot assign partitions: %s", rd_kafka_err2str(err));
        return CLI_FAIL;
    }
    rc = consume_loop(ca);
    rd_kafka_assign(c->rk, NULL);
    rd_kafka_consumer_close(c->rk);
    return rc;
}

int cmd_consume(int argc, char **argv)
{
    struct consume_args ca;
    memset(&ca, 0, sizeof ca);
    cli_client_init(&ca.client, PROG);
    ca.partition = -1;
    ca.count = -1;
    ca.timeout_ms = -1;

    int rc = parse_consume_args(&ca, argc, argv);
    if (!rc && ca.help) {
        fputs(usage_text, stdout);
    } else if (!rc) {
        cli_catch_signals();
        rc = consume_run(&ca);
    }
    cli_client_close(&ca.client);
    return rc;
}
