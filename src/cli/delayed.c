/*
 * runnel delayed: what the timer store holds back (docs/delivery.md),
 * from the broker's admin API (GET /v1/delayed/count, GET /v1/delayed):
 * the Kafka protocol has no API for it.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/admin_client.h"
#include "cli/cli.h"
#include "cli/cli_util.h"
#include "common/timefmt.h"

#define PROG "runnel delayed"

static const char usage_text[] =
    "usage: runnel delayed <command> [options]\n"
    "\n"
    "  count [--topic T]\n"
    "        held-back records by kind (delay, retry, half) and by topic\n"
    "  list [--topic T] [--kind delay|retry|half] [--limit N]\n"
    "        the next N (default 100) to fall due, due first: due time (UTC), kind,\n"
    "        topic-partition, key, value; half messages also their txn id and checks\n"
    "\n"
    "  --json              print the API's JSON answer as it is\n" ADMIN_CLIENT_HELP;

enum { OPT_TOPIC = 1, OPT_KIND, OPT_LIMIT, OPT_JSON, OPT_HELP };

static const struct cli_opt opts[] = {
    {"topic", 't', 1, OPT_TOPIC},
    {"kind", 0, 1, OPT_KIND},
    {"limit", 'n', 1, OPT_LIMIT},
    {"json", 0, 0, OPT_JSON},
    ADMIN_CLIENT_OPT,
    {"help", 'h', 0, OPT_HELP},
    {0},
};

struct delayed_args {
    struct admin_client ac;
    const char *topic, *kind;
    int64_t limit;
    bool json;
};

static long long num(json_t *o, const char *k)
{
    return (long long)json_integer_value(json_object_get(o, k));
}

static void print_time(long long ms)
{
    char buf[40];
    timefmt_format(ms, buf, sizeof buf);
    fputs(buf, stdout);
}

/* A value printed by admin_json_bytes: text escaped, or base64 marked. */
static void print_bytes(json_t *o, const char *field)
{
    char b64[64];
    snprintf(b64, sizeof b64, "%s_b64", field);
    json_t *v = json_object_get(o, field);
    if (json_is_string(v)) {
        for (const unsigned char *s = (const unsigned char *)json_string_value(v); *s; s++)
            if (*s >= 0x20 && *s != 0x7f && *s != '\\')
                putchar(*s);
            else
                printf("\\x%02x", *s);
    } else if (json_is_string(json_object_get(o, b64))) {
        printf("base64:%s", json_string_value(json_object_get(o, b64)));
    } else {
        fputs("(null)", stdout);
    }
}

static int do_count(struct delayed_args *a, json_t *r)
{
    (void)a;
    json_t *topics = json_object_get(r, "topics");
    if (!a->topic) {
        printf("KIND\tPENDING\n");
        printf("delay\t%lld\nretry\t%lld\nhalf\t%lld\ntotal\t%lld\n", num(r, "delay"),
               num(r, "retry"), num(r, "half"), num(r, "total"));
        if (json_array_size(topics))
            putchar('\n');
    }
    if (json_array_size(topics) || a->topic)
        printf("TOPIC\tDELAY\tRETRY\tHALF\n");
    size_t i;
    json_t *t;
    bool any = false;
    json_array_foreach(topics, i, t)
    {
        printf("%s\t%lld\t%lld\t%lld\n", json_string_value(json_object_get(t, "topic")),
               num(t, "delay"), num(t, "retry"), num(t, "half"));
        any = true;
    }
    if (a->topic && !any)
        printf("%s\t0\t0\t0\n", a->topic);
    return CLI_OK;
}

static int do_list(struct delayed_args *a, json_t *r)
{
    (void)a;
    printf("DUE\tKIND\tTOPIC-PARTITION\tKEY\tVALUE\n");
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(r, "entries"), i, e)
    {
        print_time(num(e, "due_ms"));
        printf("\t%s\t%s-%lld\t", json_string_value(json_object_get(e, "kind")),
               json_string_value(json_object_get(e, "topic")), num(e, "partition"));
        print_bytes(e, "key");
        putchar('\t');
        print_bytes(e, "value");
        if (json_object_get(e, "producer_group")) {
            fputs("\ttxn-id=", stdout);
            print_bytes(e, "txn_id");
            printf(" producer-group=%s checks=%lld",
                   json_string_value(json_object_get(e, "producer_group")), num(e, "checks"));
        }
        putchar('\n');
    }
    return CLI_OK;
}

int cmd_delayed(int argc, char **argv)
{
    static const char *const names[] = {"count", "list"};
    int rc;
    int which = cli_subcommand(PROG, usage_text, names, 2, argc, argv, &rc);
    if (which < 0)
        return rc;
    const char *prog = which == 0 ? PROG " count" : PROG " list";
    struct delayed_args a = {.limit = -1};
    admin_client_init(&a.ac, prog);
    struct cli_args ca;
    cli_args_init(&ca, prog, argc, argv, 2);
    const char *val;
    int id;
    while ((id = cli_next(&ca, opts, &val)) != CLI_ARG_END) {
        switch (id) {
        case CLI_ARG_ERROR:
            return CLI_USAGE;
        case CLI_ARG_POSITIONAL:
            return cli_usage_error(prog, "unexpected argument '%s'", val);
        case OPT_TOPIC:
            a.topic = val;
            break;
        case OPT_KIND:
            if (which != 1 || (strcmp(val, "delay") && strcmp(val, "retry") && strcmp(val, "half")))
                return cli_usage_error(prog, "--kind is delay, retry or half (list only)");
            a.kind = val;
            break;
        case OPT_LIMIT:
            if (which != 1)
                return cli_usage_error(prog, "--limit is for list");
            if (cli_parse_int64(prog, "--limit", val, 0, 100000, &a.limit))
                return CLI_USAGE;
            break;
        case OPT_JSON:
            a.json = true;
            break;
        case CLI_OPT_ADMIN:
            a.ac.addr = val;
            break;
        case OPT_HELP:
            fputs(usage_text, stdout);
            return CLI_OK;
        }
    }
    char path[1024];
    char *topic = a.topic ? admin_client_escape(a.topic) : NULL;
    if (a.topic && !topic) {
        cli_error(prog, "out of memory");
        return CLI_FAIL;
    }
    int n = snprintf(path, sizeof path, "/v1/delayed%s?limit=%lld", which == 0 ? "/count" : "",
                     (long long)(a.limit >= 0 ? a.limit : 100));
    if (topic)
        n += snprintf(path + n, sizeof path - (size_t)n, "&topic=%s", topic);
    if (a.kind)
        snprintf(path + n, sizeof path - (size_t)n, "&kind=%s", a.kind);
    free(topic);
    json_t *r;
    rc = admin_client_get(&a.ac, path, &r);
    if (rc)
        return rc;
    if (a.json) {
        json_dumpf(r, stdout, JSON_INDENT(2));
        putchar('\n');
    } else {
        rc = which == 0 ? do_count(&a, r) : do_list(&a, r);
    }
    json_decref(r);
    return cli_finish_output(prog, rc);
}
