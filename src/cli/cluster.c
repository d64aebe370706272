/*
 * runnel cluster describe: the cluster id, the controller and the live
 * brokers (id, host:port, rack), as the broker reports them in
 * DescribeCluster (KIP-700).
 *
 * One DescribeCluster v0 request over a plain socket, with Runnel's own
 * codecs (proto/gen): librdkafka 2.0 (Debian 12's) has no DescribeCluster
 * call and its Metadata API does not expose racks.  -b may list several
 * brokers; the first that answers is asked.
 */
#include <errno.h>
#include <stdbool.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/hostport.h"
#include "cli/cli.h"
#include "cli/cli_util.h"
#include "cli/table.h"
#include "common/arena.h"
#include "common/kbuf.h"
#include "common/sockio.h"
#include "proto/gen/msgs.h"

#define PROG "runnel cluster"
#define API_DESCRIBE_CLUSTER 60
#define IO_TIMEOUT_MS 5000
#define MAX_RESPONSE (16 << 20)

static const char usage_text[] =
    "usage: runnel cluster describe [-b HOST:PORT[,HOST:PORT...]]\n"
    "\n"
    "  Prints the cluster id, the controller and every live broker with its\n"
    "  host:port and rack, as the broker answers DescribeCluster.\n"
    "\n"
    "  -b, --bootstrap-server HOST:PORT  broker to ask (default: $RUNNEL_BOOTSTRAP,\n"
    "                                    else 127.0.0.1:9092)\n"
    "  -h, --help                        show this help\n";

enum { OPT_BOOTSTRAP = 1, OPT_HELP };

static const struct cli_opt opts[] = {
    {"bootstrap-server", 'b', 1, OPT_BOOTSTRAP},
    {"help", 'h', 0, OPT_HELP},
    {0},
};

/* Connects to host:port within IO_TIMEOUT_MS; fd or -1. */
static int dial(const char *hostport)
{
    char host[256], err[300];
    int port;
    if (hostport_parse("broker", hostport, host, sizeof host, &port, err, sizeof err))
        return -1;
    return sockio_dial(host, port, IO_TIMEOUT_MS);
}

/* Sends DescribeCluster v0 and reads the answer: the body (after the
 * response header) in *body, or NULL. */
static uint8_t *describe_cluster(int fd, size_t *body_len)
{
    kw_t w;
    kw_init(&w, 64);
    kw_i32(&w, 0); /* frame size, filled in below */
    /* Request header v2 (DescribeCluster is flexible from v0). */
    kw_i16(&w, API_DESCRIBE_CLUSTER);
    kw_i16(&w, 0);
    kw_i32(&w, 1);
    kw_str(&w, kstr_c("runnel-cli"));
    kw_uvarint(&w, 0);
    struct describe_cluster_request req;
    describe_cluster_request_init(&req);
    describe_cluster_request_encode(&w, 0, &req);
    uint8_t *resp = NULL;
    if (w.err)
        goto out;
    uint32_t size = (uint32_t)(w.len - 4);
    w.buf[0] = (uint8_t)(size >> 24);
    w.buf[1] = (uint8_t)(size >> 16);
    w.buf[2] = (uint8_t)(size >> 8);
    w.buf[3] = (uint8_t)size;
    uint8_t hdr[4];
    if (sockio_full(fd, w.buf, w.len, true, IO_TIMEOUT_MS) ||
        sockio_full(fd, hdr, 4, false, IO_TIMEOUT_MS))
        goto out;
    size = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
    if (size < 4 || size > MAX_RESPONSE || !(resp = malloc(size)))
        goto out;
    if (sockio_full(fd, resp, size, false, IO_TIMEOUT_MS)) {
        free(resp);
        resp = NULL;
        goto out;
    }
    *body_len = size;
out:
    kw_free(&w);
    return resp;
}

static int cmp_broker(const void *a, const void *b)
{
    const struct describe_cluster_response_describe_cluster_broker *x = a, *y = b;
    return x->broker_id < y->broker_id ? -1 : x->broker_id > y->broker_id;
}

static int print_cluster(const uint8_t *frame, size_t len)
{
    kr_t r;
    kr_init(&r, frame, len);
    if (kr_i32(&r) != 1) { /* correlation id */
        cli_error(PROG, "the broker's answer does not match the request");
        return CLI_FAIL;
    }
    kr_skip_tags(&r);
    arena_t a;
    arena_init(&a);
    struct describe_cluster_response resp;
    describe_cluster_response_init(&resp);
    int rc = CLI_FAIL;
    if (describe_cluster_response_decode(&r, 0, &resp, &a) || r.err) {
        cli_error(PROG, "cannot decode the broker's DescribeCluster answer");
        goto out;
    }
    if (resp.error_code) {
        cli_error(PROG, "DescribeCluster failed: error %d%s%.*s", resp.error_code,
                  resp.error_message.len > 0 ? ": " : "",
                  resp.error_message.len > 0 ? (int)resp.error_message.len : 0,
                  resp.error_message.len > 0 ? resp.error_message.ptr : "");
        goto out;
    }
    qsort(resp.brokers, (size_t)resp.brokers_count, sizeof *resp.brokers, cmp_broker);
    printf("Cluster id: %.*s\n", (int)resp.cluster_id.len, resp.cluster_id.ptr);
    if (resp.controller_id >= 0)
        printf("Controller: %d\n", (int)resp.controller_id);
    else
        printf("Controller: none\n");
    printf("Brokers:    %d\n\n", (int)resp.brokers_count);
    struct table t;
    table_init(&t, 4);
    table_add(&t, "BROKER", "HOST:PORT", "RACK", "ROLE");
    for (int32_t i = 0; i < resp.brokers_count; i++) {
        const struct describe_cluster_response_describe_cluster_broker *b = &resp.brokers[i];
        char id[16], addr[300], rack[256];
        snprintf(id, sizeof id, "%d", (int)b->broker_id);
        int hl = b->host.len > 0 ? (int)b->host.len : 0;
        bool v6 = hl && memchr(b->host.ptr, ':', (size_t)hl);
        snprintf(addr, sizeof addr, v6 ? "[%.*s]:%d" : "%.*s:%d", hl, hl ? b->host.ptr : "",
                 (int)b->port);
        if (b->rack.len >= 0)
            snprintf(rack, sizeof rack, "%.*s", (int)b->rack.len, b->rack.ptr);
        table_add(&t, id, addr, b->rack.len >= 0 ? rack : NULL,
                  b->broker_id == resp.controller_id ? "controller" : NULL);
    }
    table_print(&t);
    table_free(&t);
    rc = CLI_OK;
out:
    arena_free(&a);
    return rc;
}

static int cluster_describe(const char *bootstrap)
{
    char list[1024];
    snprintf(list, sizeof list, "%s", bootstrap);
    for (char *save, *hp = strtok_r(list, ",", &save); hp; hp = strtok_r(NULL, ",", &save)) {
        int fd = dial(hp);
        if (fd < 0)
            continue;
        size_t len = 0;
        uint8_t *resp = describe_cluster(fd, &len);
        close(fd);
        if (!resp) {
            cli_error(PROG, "broker %s did not answer DescribeCluster", hp);
            return CLI_FAIL;
        }
        int rc = print_cluster(resp, len);
        free(resp);
        return rc;
    }
    cli_error(PROG, "broker %s not reachable", bootstrap);
    return CLI_FAIL;
}

int cmd_cluster(int argc, char **argv)
{
    static const char *const names[] = {"describe"};
    int rc;
    int sub =
        cli_subcommand(PROG, usage_text, names, sizeof names / sizeof names[0], argc, argv, &rc);
    if (sub < 0)
        return rc;
    const char *env = getenv("RUNNEL_BOOTSTRAP");
    const char *bootstrap = env && *env ? env : "127.0.0.1:9092";
    struct cli_args a;
    cli_args_init(&a, "runnel cluster describe", argc, argv, 2);
    const char *val;
    int id;
    while ((id = cli_next(&a, opts, &val)) != CLI_ARG_END) {
        switch (id) {
        case CLI_ARG_ERROR:
            return CLI_USAGE;
        case CLI_ARG_POSITIONAL:
            return cli_usage_error(PROG, "unexpected argument '%s'", val);
        case OPT_BOOTSTRAP:
            if (!*val)
                return cli_usage_error(PROG, "empty --bootstrap-server");
            bootstrap = val;
            break;
        case OPT_HELP:
            fputs(usage_text, stdout);
            return CLI_OK;
        }
    }
    return cli_finish_output(PROG, cluster_describe(bootstrap));
}
