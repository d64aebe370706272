/*
 * runnel status: the broker's identity, listeners, data and load, from
 * GET /v1/status of its admin API.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli/admin_client.h"
#include "cli/cli.h"
#include "cli/cli_util.h"

#define PROG "runnel status"

static const char usage_text[] =
    "usage: runnel status [--admin HOST:PORT] [--json]\n"
    "\n"
    "  Prints the broker's status from its admin API:\n"
    "    node_id, cluster_id, version, uptime, listeners, data_dir,\n"
    "    topics, partitions, connections, data_bytes\n"
    "  --json              print the API's JSON answer as it is\n" ADMIN_CLIENT_HELP;

enum { OPT_JSON = 1, OPT_HELP };

static const struct cli_opt opts[] = {
    {"json", 0, 0, OPT_JSON},
    ADMIN_CLIENT_OPT,
    {"help", 'h', 0, OPT_HELP},
    {0},
};

/* "2d 3h 4m 5s" of milliseconds. */
static void fmt_uptime(long long ms, char *buf, size_t size)
{
    long long s = ms / 1000, d = s / 86400, h = s / 3600 % 24, m = s / 60 % 60;
    if (d)
        snprintf(buf, size, "%lldd %lldh %lldm %llds", d, h, m, s % 60);
    else if (h)
        snprintf(buf, size, "%lldh %lldm %llds", h, m, s % 60);
    else if (m)
        snprintf(buf, size, "%lldm %llds", m, s % 60);
    else
        snprintf(buf, size, "%llds", s);
}

static const char *str(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "-";
}

static long long num(json_t *o, const char *k)
{
    return (long long)json_integer_value(json_object_get(o, k));
}

int cmd_status(int argc, char **argv)
{
    struct admin_client ac;
    admin_client_init(&ac, PROG);
    struct cli_args a;
    cli_args_init(&a, PROG, argc, argv, 1);
    bool as_json = false;
    const char *val;
    int id;
    while ((id = cli_next(&a, opts, &val)) != CLI_ARG_END) {
        switch (id) {
        case CLI_ARG_ERROR:
            return CLI_USAGE;
        case CLI_ARG_POSITIONAL:
            return cli_usage_error(PROG, "unexpected argument '%s'", val);
        case OPT_JSON:
            as_json = true;
            break;
        case CLI_OPT_ADMIN:
            ac.addr = val;
            break;
        case OPT_HELP:
            fputs(usage_text, stdout);
            return CLI_OK;
        }
    }
    json_t *st;
    int rc = admin_client_get(&ac, "/v1/status", &st);
    if (rc)
        return rc;
    if (as_json) {
        json_dumpf(st, stdout, JSON_INDENT(2));
        putchar('\n');
    } else {
        char up[64];
        fmt_uptime(num(st, "uptime_ms"), up, sizeof up);
        json_t *l = json_object_get(st, "listeners");
        printf("node_id      %lld\n", num(st, "node_id"));
        printf("cluster_id   %s\n", str(st, "cluster_id"));
        printf("version      %s\n", str(st, "version"));
        printf("uptime       %s\n", up);
        printf("kafka        %s\n", str(l, "kafka"));
        printf("admin        %s\n", str(l, "admin"));
        printf("data_dir     %s\n", str(st, "data_dir"));
        printf("topics       %lld\n", num(st, "topics"));
        printf("partitions   %lld\n", num(st, "partitions"));
        printf("connections  %lld\n", num(st, "connections"));
        printf("data_bytes   %lld\n", num(st, "data_bytes"));
    }
    json_decref(st);
    return cli_finish_output(PROG, CLI_OK);
}
