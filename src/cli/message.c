/*
 * runnel message: single records, read through the broker's admin API.
 *
 *   get TOPIC PARTITION OFFSET      GET /v1/messages/{topic}/{partition}/{offset}
 *   get TOPIC PARTITION --at TIME   GET /v1/messages/{topic}/{partition}?at=TIME
 *   find --topic T --key K          GET /v1/messages?topic=T&key=K, page by page
 *
 * Each subcommand is one entry of `subs` below with its option table and
 * one function; the shared parts (arguments, the admin client, printing
 * a record) are here for the next one (`find`, by key) to use.
 *
 * A record prints as aligned "field value" lines, value last because it
 * may span lines.  Bytes that are not UTF-8 text come from the API as
 * base64 and print as "(base64) ..."; a null key or value as "(null)".
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/admin_client.h"
#include "cli/cli.h"
#include "cli/cli_util.h"

#define PROG "runnel message"
#define MAX_POSITIONAL 8

static const char usage_text[] =
    "usage: runnel message <command> [options]\n"
    "\n"
    "  get TOPIC PARTITION OFFSET\n"
    "        the record at OFFSET (or the next one, where compaction left a gap)\n"
    "  get TOPIC PARTITION --at TIME\n"
    "        the first record with a timestamp at or after TIME: milliseconds since\n"
    "        the epoch or YYYY-MM-DDTHH:MM:SS[.mmm]Z (or with +hh:mm / -hh:mm)\n"
    "  find --topic TOPIC --key KEY [--since TIME] [--limit N]\n"
    "        every record whose key, or a word of whose 'keys' header, is KEY, oldest\n"
    "        first (the topic needs key.index=true); --since leaves out older records,\n"
    "        --limit stops after N (default: all)\n"
    "\n"
    "prints topic, partition, offset, timestamp, key, headers and value (find: a\n"
    "blank line between records).\n"
    "  --json              print the API's JSON answer as it is (find: one record\n"
    "                      per line)\n" ADMIN_CLIENT_HELP;

enum { OPT_AT = 1, OPT_JSON, OPT_HELP, OPT_TOPIC, OPT_KEY, OPT_SINCE, OPT_LIMIT };

static const struct cli_opt get_opts[] = {
    {"at", 0, 1, OPT_AT},
    {"json", 0, 0, OPT_JSON},
    ADMIN_CLIENT_OPT,
    {"help", 'h', 0, OPT_HELP},
    {0},
};

static const struct cli_opt find_opts[] = {
    {"topic", 't', 1, OPT_TOPIC}, {"key", 'k', 1, OPT_KEY},
    {"since", 0, 1, OPT_SINCE},   {"limit", 0, 1, OPT_LIMIT},
    {"json", 0, 0, OPT_JSON},     ADMIN_CLIENT_OPT,
    {"help", 'h', 0, OPT_HELP},   {0},
};

struct message_args {
    struct admin_client ac;
    const char *pos[MAX_POSITIONAL];
    int npos;
    const char *at;
    const char *topic, *key, *since, *limit;
    bool json;
    bool help;
};

static int parse_args(struct message_args *m, const struct cli_opt *opts, int argc, char **argv)
{
    struct cli_args a;
    cli_args_init(&a, PROG, argc, argv, 2);
    const char *val;
    int id;
    while ((id = cli_next(&a, opts, &val)) != CLI_ARG_END) {
        switch (id) {
        case CLI_ARG_ERROR:
            return CLI_USAGE;
        case CLI_ARG_POSITIONAL:
            if (m->npos == MAX_POSITIONAL)
                return cli_usage_error(PROG, "too many arguments");
            m->pos[m->npos++] = val;
            break;
        case OPT_AT:
            m->at = val;
            break;
        case OPT_TOPIC:
            m->topic = val;
            break;
        case OPT_KEY:
            m->key = val;
            break;
        case OPT_SINCE:
            m->since = val;
            break;
        case OPT_LIMIT:
            m->limit = val;
            break;
        case OPT_JSON:
            m->json = true;
            break;
        case OPT_HELP:
            m->help = true;
            break;
        case CLI_OPT_ADMIN:
            m->ac.addr = val;
            break;
        }
    }
    return CLI_OK;
}

/* ---- printing a record ---- */

/* A bytes field of the API: "text", "(null)" or "(base64) ...". */
static void print_bytes(const char *label, json_t *o, const char *field)
{
    char b64[256];
    snprintf(b64, sizeof b64, "%s_b64", field);
    json_t *v = json_object_get(o, field), *b = json_object_get(o, b64);
    if (json_is_string(v)) {
        printf("%-10s ", label);
        fwrite(json_string_value(v), 1, json_string_length(v), stdout);
        putchar('\n');
    } else if (json_is_string(b)) {
        printf("%-10s (base64) %s\n", label, json_string_value(b));
    } else {
        printf("%-10s (null)\n", label);
    }
}

static void print_record(json_t *r)
{
    long long ts = (long long)json_integer_value(json_object_get(r, "timestamp"));
    char when[48] = "-";
    time_t secs = (time_t)(ts >= 0 ? ts / 1000 : (ts - 999) / 1000);
    struct tm tm;
    if (gmtime_r(&secs, &tm))
        snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (int)(ts - (long long)secs * 1000));
    const char *topic = json_string_value(json_object_get(r, "topic"));
    const char *type = json_string_value(json_object_get(r, "timestamp_type"));
    printf("%-10s %s\n", "topic", topic ? topic : "-");
    printf("%-10s %lld\n", "partition",
           (long long)json_integer_value(json_object_get(r, "partition")));
    printf("%-10s %lld\n", "offset", (long long)json_integer_value(json_object_get(r, "offset")));
    printf("%-10s %lld %s %s\n", "timestamp", ts, when, type ? type : "");
    print_bytes("key", r, "key");
    size_t i;
    json_t *h;
    json_array_foreach(json_object_get(r, "headers"), i, h)
    {
        /* "header k=v", each side printed the way print_bytes would. */
        json_t *k = json_object_get(h, "key"), *v = json_object_get(h, "value");
        printf("%-10s ", "header");
        if (json_is_string(k))
            fwrite(json_string_value(k), 1, json_string_length(k), stdout);
        else
            printf("(base64) %s", json_string_value(json_object_get(h, "key_b64")));
        putchar('=');
        if (json_is_string(v))
            fwrite(json_string_value(v), 1, json_string_length(v), stdout);
        else if (json_is_string(json_object_get(h, "value_b64")))
            printf("(base64) %s", json_string_value(json_object_get(h, "value_b64")));
        else
            printf("(null)");
        putchar('\n');
    }
    print_bytes("value", r, "value");
}

/* GETs path and prints the record (or the JSON). */
static int fetch_and_print(struct message_args *m, const char *path)
{
    json_t *r;
    int rc = admin_client_get(&m->ac, path, &r);
    if (rc)
        return rc;
    if (m->json) {
        json_dumpf(r, stdout, JSON_INDENT(2));
        putchar('\n');
    } else {
        print_record(r);
    }
    json_decref(r);
    return CLI_OK;
}

/* ---- get ---- */

static int message_get(struct message_args *m)
{
    bool by_time = m->at != NULL;
    if (m->npos != (by_time ? 2 : 3))
        return cli_usage_error(PROG, by_time ? "get --at takes TOPIC PARTITION"
                                             : "get takes TOPIC PARTITION OFFSET (or --at TIME)");
    int64_t partition, offset = 0;
    if (cli_parse_int64(PROG, "PARTITION", m->pos[1], 0, INT32_MAX, &partition) ||
        (!by_time && cli_parse_int64(PROG, "OFFSET", m->pos[2], 0, INT64_MAX, &offset)))
        return CLI_USAGE;
    char *topic = admin_client_escape(m->pos[0]);
    char *at = by_time ? admin_client_escape(m->at) : NULL;
    if (!topic || (by_time && !at)) {
        free(topic);
        free(at);
        cli_error(PROG, "out of memory");
        return CLI_FAIL;
    }
    char *path = malloc(strlen(topic) + (at ? strlen(at) : 0) + 96);
    int rc = CLI_FAIL;
    if (path) {
        if (by_time)
            sprintf(path, "/v1/messages/%s/%lld?at=%s", topic, (long long)partition, at);
        else
            sprintf(path, "/v1/messages/%s/%lld/%lld", topic, (long long)partition,
                    (long long)offset);
        rc = fetch_and_print(m, path);
    } else {
        cli_error(PROG, "out of memory");
    }
    free(path);
    free(topic);
    free(at);
    return rc;
}

/* ---- find ---- */

/* Records asked for per request: an answer stays far below the client's
 * 64 MiB cap unless records average over 64 KiB. */
#define FIND_PAGE 1000

static int message_find(struct message_args *m)
{
    if (m->npos)
        return cli_usage_error(PROG, "find takes --topic and --key, no arguments");
    if (!m->topic || !m->key)
        return cli_usage_error(PROG, "find needs --topic TOPIC and --key KEY");
    int64_t limit = INT64_MAX;
    if (m->limit && cli_parse_int64(PROG, "--limit", m->limit, 1, INT64_MAX, &limit))
        return CLI_USAGE;
    char *topic = admin_client_escape(m->topic), *key = admin_client_escape(m->key);
    char *since = m->since ? admin_client_escape(m->since) : NULL;
    size_t plen =
        (topic ? strlen(topic) : 0) + (key ? strlen(key) : 0) + (since ? strlen(since) : 0) + 256;
    char *path = malloc(plen), *after = NULL;
    int rc = CLI_OK;
    if (!topic || !key || (m->since && !since) || !path) {
        cli_error(PROG, "out of memory");
        rc = CLI_FAIL;
    }
    int64_t printed = 0;
    while (rc == CLI_OK && printed < limit) {
        int64_t want = limit - printed < FIND_PAGE ? limit - printed : FIND_PAGE;
        int n = snprintf(path, plen, "/v1/messages?topic=%s&key=%s&limit=%lld", topic, key,
                         (long long)want);
        if (since)
            n += snprintf(path + n, plen - (size_t)n, "&since=%s", since);
        if (after)
            snprintf(path + n, plen - (size_t)n, "&after=%s", after);
        json_t *r;
        if ((rc = admin_client_get(&m->ac, path, &r)) != CLI_OK)
            break;
        size_t i;
        json_t *rec;
        json_array_foreach(json_object_get(r, "messages"), i, rec)
        {
            if (m->json) {
                json_dumpf(rec, stdout, JSON_COMPACT);
                putchar('\n');
            } else {
                if (printed > 0)
                    putchar('\n');
                print_record(rec);
            }
            printed++;
        }
        const char *next = json_string_value(json_object_get(r, "next"));
        bool more = json_is_true(json_object_get(r, "truncated")) && next;
        free(after);
        after = more ? admin_client_escape(next) : NULL;
        json_decref(r);
        if (!more)
            break;
        if (!after || strlen(after) > 200) {
            cli_error(PROG, "the broker's continuation token is unusable");
            rc = CLI_FAIL;
        } else if (printed >= limit) {
            fflush(stdout);
            fprintf(stderr, "%s: more records match; printed the first %lld (--limit)\n", PROG,
                    (long long)printed);
        }
    }
    free(after);
    free(path);
    free(topic);
    free(key);
    free(since);
    return rc;
}

int cmd_message(int argc, char **argv)
{
    static const char *const names[] = {"get", "find"};
    static const struct {
        int (*fn)(struct message_args *);
        const struct cli_opt *opts;
    } subs[] = {
        {message_get, get_opts},
        {message_find, find_opts},
    };
    int rc;
    int sub =
        cli_subcommand(PROG, usage_text, names, sizeof names / sizeof names[0], argc, argv, &rc);
    if (sub < 0)
        return rc;
    struct message_args m;
    memset(&m, 0, sizeof m);
    admin_client_init(&m.ac, PROG);
    rc = parse_args(&m, subs[sub].opts, argc, argv);
    if (rc)
        return rc;
    if (m.help) {
        fputs(usage_text, stdout);
        return CLI_OK;
    }
    return cli_finish_output(PROG, subs[sub].fn(&m));
}
