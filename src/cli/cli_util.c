/*
 * cli_util.c: option parsing, client set-up and error printing shared by
 * the topic, produce and consume commands (see cli_util.h).
 */
#include "cli/cli_util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How long the first metadata request may take before the broker counts
 * as unreachable; each try is shorter so that a refused connection,
 * reported through the error callback, ends the wait early. */
#define CLI_REACH_TIMEOUT_MS 5000
#define CLI_REACH_TRY_MS 500
#define CLI_RETRY_MS 100

/* Admin requests: the broker's own deadline, and ours on top of it. */
#define CLI_ADMIN_TIMEOUT_MS 15000

volatile sig_atomic_t cli_stop;

void cli_error(const char *prog, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int cli_usage_error(const char *prog, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see %s --help)\n", prog);
    return CLI_USAGE;
}

void cli_args_init(struct cli_args *a, const char *prog, int argc, char **argv, int first)
{
    a->prog = prog;
    a->argc = argc;
    a->argv = argv;
    a->i = first;
    a->only_positional = 0;
}

static const struct cli_opt *find_long(const struct cli_opt *opts, const char *name, size_t len)
{
    for (; opts->name; opts++)
        if (strlen(opts->name) == len && !strncmp(opts->name, name, len))
            return opts;
    return NULL;
}

static const struct cli_opt *find_short(const struct cli_opt *opts, char c)
{
    for (; opts->name; opts++)
        if (opts->short_name && opts->short_name == c)
            return opts;
    return NULL;
}

int cli_next(struct cli_args *a, const struct cli_opt *opts, const char **val)
{
    *val = NULL;
    if (a->i >= a->argc)
        return CLI_ARG_END;
    char *arg = a->argv[a->i++];

    /* "-" alone is a positional (conventionally stdin); "--" ends options. */
    if (a->only_positional || arg[0] != '-' || arg[1] == '\0') {
        *val = arg;
        return CLI_ARG_POSITIONAL;
    }
    if (!strcmp(arg, "--")) {
        a->only_positional = 1;
        return cli_next(a, opts, val);
    }

    const struct cli_opt *o;
    const char *attached = NULL; /* value glued on: --name=value or -bvalue */
    if (arg[1] == '-') {
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        o = find_long(opts, name, eq ? (size_t)(eq - name) : strlen(name));
        if (o && eq)
            attached = eq + 1;
    } else {
        o = find_short(opts, arg[1]);
        if (o && arg[2] != '\0') {
            if (!o->has_arg)
                o = NULL; /* "-vx": bundled flags are not supported */
            else
                attached = arg + 2;
        }
    }
    if (!o) {
        cli_usage_error(a->prog, "bad flag %s", arg);
        return CLI_ARG_ERROR;
    }
    if (!o->has_arg) {
        if (attached) {
            cli_usage_error(a->prog, "flag --%s takes no value", o->name);
            return CLI_ARG_ERROR;
        }
        return o->id;
    }
    if (attached) {
        *val = attached;
        return o->id;
    }
    if (a->i >= a->argc) {
        cli_usage_error(a->prog, "flag --%s needs a value", o->name);
        return CLI_ARG_ERROR;
    }
    *val = a->argv[a->i++];
    return o->id;
}

int cli_parse_int64(const char *prog, const char *opt, const char *s, int64_t min, int64_t max,
                    int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < min || v > max) {
        cli_usage_error(prog, "bad value '%s' for %s (a whole number from %lld to %lld)", s, opt,
                        (long long)min, (long long)max);
        return -1;
    }
    *out = v;
    return 0;
}

char *cli_split_kv(const char *prog, const char *opt, const char *s, const char **value)
{
    const char *eq = strchr(s, '=');
    if (!eq || eq == s) {
        cli_usage_error(prog, "bad value '%s' for %s (expected KEY=VALUE)", s, opt);
        return NULL;
    }
    char *key = strndup(s, (size_t)(eq - s));
    if (!key) {
        cli_error(prog, "out of memory");
        return NULL;
    }
    *value = eq + 1;
    return key;
}

void cli_client_init(struct cli_client *c, const char *prog)
{
    memset(c, 0, sizeof *c);
    c->prog = prog;
    const char *env = getenv("RUNNEL_BOOTSTRAP");
    c->bootstrap = env && *env ? env : "127.0.0.1:9092";
}

int cli_common_opt(struct cli_client *c, int id, const char *val)
{
    switch (id) {
    case CLI_OPT_BOOTSTRAP:
        if (!*val) {
            cli_usage_error(c->prog, "empty --bootstrap-server");
            return CLI_ARG_ERROR;
        }
        c->bootstrap = val;
        return 1;
    case CLI_OPT_VERBOSE:
        c->verbose = 1;
        return 1;
    case CLI_OPT_PROPERTY:
        if (!strchr(val, '=') || val[0] == '=') {
            cli_usage_error(c->prog, "bad value '%s' for --property (expected KEY=VALUE)", val);
            return CLI_ARG_ERROR;
        }
        if (c->nprops == CLI_MAX_PROPS) {
            cli_usage_error(c->prog, "too many --property flags (at most %d)", CLI_MAX_PROPS);
            return CLI_ARG_ERROR;
        }
        c->props[c->nprops++] = val;
        return 1;
    default:
        return 0;
    }
}

/* librdkafka logs from its own threads; only `verbose` is read here, and
 * it never changes after start-up. */
static void quiet_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    const struct cli_client *c = rd_kafka_opaque(rk);
    (void)level;
    if (c && c->verbose)
        fprintf(stderr, "%s: [%s] %s\n", c->prog, fac, buf);
}

/* Served on the application thread by rd_kafka_poll(). */
static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct cli_client *c = opaque;
    (void)rk;
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
        c->all_brokers_down = 1;
    if (c->verbose)
        fprintf(stderr, "%s: client error: %s\n", c->prog, reason);
}

int cli_conf_set(struct cli_client *c, rd_kafka_conf_t *conf, const char *name, const char *value)
{
    char errstr[512];
    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
        cli_error(c->prog, "cannot set %s=%s: %s", name, value, errstr);
        return -1;
    }
    return 0;
}

rd_kafka_conf_t *cli_conf_new(struct cli_client *c)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_opaque(conf, c);
    rd_kafka_conf_set_log_cb(conf, quiet_log_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    if (cli_conf_set(c, conf, "bootstrap.servers", c->bootstrap) ||
        cli_conf_set(c, conf, "client.id", "runnel-cli") ||
        /* A closed idle connection is routine, not worth a line. */
        cli_conf_set(c, conf, "log.connection.close", "false"))
        goto fail;
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

int cli_client_start(struct cli_client *c, rd_kafka_type_t type, rd_kafka_conf_t *conf)
{
    char errstr[512];
    /* -X comes last so that it overrides the command's own settings. */
    for (int i = 0; i < c->nprops; i++) {
        const char *eq = strchr(c->props[i], '=');
        char name[256];
        size_t n = (size_t)(eq - c->props[i]);
        if (n >= sizeof name) {
            cli_error(c->prog, "property name too long: %s", c->props[i]);
            goto fail;
        }
        memcpy(name, c->props[i], n);
        name[n] = '\0';
        if (cli_conf_set(c, conf, name, eq + 1))
            goto fail;
    }
    /* rd_kafka_new() owns conf only when it succeeds. */
    c->rk = rd_kafka_new(type, conf, errstr, sizeof errstr);
    if (!c->rk) {
        rd_kafka_conf_destroy(conf);
        cli_error(c->prog, "cannot create client: %s", errstr);
        return CLI_FAIL;
    }
    return CLI_OK;
fail:
    /* A property the library rejects is a mistake on the command line. */
    rd_kafka_conf_destroy(conf);
    return CLI_USAGE;
}

void cli_client_close(struct cli_client *c)
{
    if (c->rk)
        rd_kafka_destroy(c->rk);
    c->rk = NULL;
}

int cli_metadata(struct cli_client *c, const char *topic, const struct rd_kafka_metadata **md)
{
    rd_kafka_topic_t *rkt = NULL;
    if (topic) {
        rkt = rd_kafka_topic_new(c->rk, topic, NULL);
        if (!rkt) {
            cli_error(c->prog, "bad topic name '%s': %s", topic,
                      rd_kafka_err2str(rd_kafka_last_error()));
            return CLI_FAIL;
        }
    }
    int64_t deadline = cli_now_ms() + CLI_REACH_TIMEOUT_MS;
    rd_kafka_resp_err_t err;
    for (;;) {
        err = rd_kafka_metadata(c->rk, topic ? 0 : 1, rkt, md, CLI_REACH_TRY_MS);
        if (!err) {
            /* A topic being auto-created may first come back without a
             * leader (Kafka answers LEADER_NOT_AVAILABLE until it has one);
             * ask again rather than report a topic that is on its way. */
            const rd_kafka_metadata_topic_t *t = topic ? cli_find_topic(*md, topic) : NULL;
            if (!t || t->err != RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE || cli_now_ms() >= deadline)
                break;
            rd_kafka_metadata_destroy(*md);
            rd_kafka_poll(c->rk, CLI_RETRY_MS);
            continue;
        }
        /* Serves the error callback, which tells a refused connection. */
        rd_kafka_poll(c->rk, 0);
        if (c->all_brokers_down || cli_now_ms() >= deadline)
            break;
        if (err != RD_KAFKA_RESP_ERR__TRANSPORT && err != RD_KAFKA_RESP_ERR__TIMED_OUT)
            break;
    }
    if (rkt)
        rd_kafka_topic_destroy(rkt);
    if (!err)
        return CLI_OK;
    if (err == RD_KAFKA_RESP_ERR__TRANSPORT || err == RD_KAFKA_RESP_ERR__TIMED_OUT ||
        c->all_brokers_down)
        cli_error(c->prog, "broker %s not reachable", c->bootstrap);
    else
        cli_error(c->prog, "metadata request to %s failed: %s", c->bootstrap,
                  rd_kafka_err2str(err));
    return CLI_FAIL;
}

const rd_kafka_metadata_topic_t *cli_find_topic(const struct rd_kafka_metadata *md,
                                                const char *topic)
{
    for (int i = 0; i < md->topic_cnt; i++)
        if (!strcmp(md->topics[i].topic, topic))
            return &md->topics[i];
    return NULL;
}

int cli_require_topic(struct cli_client *c, const struct rd_kafka_metadata *md, const char *topic,
                      const rd_kafka_metadata_topic_t **out)
{
    const rd_kafka_metadata_topic_t *t = cli_find_topic(md, topic);
    if (!t || t->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
        cli_error(c->prog, "unknown topic '%s'", topic);
        return CLI_FAIL;
    }
    /* LEADER_NOT_AVAILABLE right after auto-creation still has partitions. */
    if (t->err && !(t->err == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE && t->partition_cnt > 0)) {
        cli_error(c->prog, "topic '%s': %s", topic, rd_kafka_err2str(t->err));
        return CLI_FAIL;
    }
    if (t->partition_cnt <= 0) {
        cli_error(c->prog, "topic '%s' has no partitions", topic);
        return CLI_FAIL;
    }
    if (out)
        *out = t;
    return CLI_OK;
}

rd_kafka_AdminOptions_t *cli_admin_options(struct cli_client *c, rd_kafka_admin_op_t op)
{
    char errstr[256];
    rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(c->rk, op);
    rd_kafka_AdminOptions_set_request_timeout(o, CLI_ADMIN_TIMEOUT_MS, errstr, sizeof errstr);
    /* Only topic operations carry a broker-side operation timeout. */
    if (op == RD_KAFKA_ADMIN_OP_CREATETOPICS || op == RD_KAFKA_ADMIN_OP_DELETETOPICS ||
        op == RD_KAFKA_ADMIN_OP_CREATEPARTITIONS)
        rd_kafka_AdminOptions_set_operation_timeout(o, CLI_ADMIN_TIMEOUT_MS - 5000, errstr,
                                                    sizeof errstr);
    return o;
}

rd_kafka_event_t *cli_admin_wait(struct cli_client *c, rd_kafka_queue_t *q,
                                 rd_kafka_event_type_t type, const char *what)
{
    int64_t deadline = cli_now_ms() + CLI_ADMIN_TIMEOUT_MS + 2000;
    for (;;) {
        int64_t left = deadline - cli_now_ms();
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, left > 0 ? (int)left : 0);
        if (!ev) {
            cli_error(c->prog, "%s: no answer from broker %s", what, c->bootstrap);
            return NULL;
        }
        if (rd_kafka_event_type(ev) != type) {
            /* Only our own request's result is routed to this queue. */
            rd_kafka_event_destroy(ev);
            continue;
        }
        if (rd_kafka_event_error(ev)) {
            cli_error(c->prog, "%s: %s", what, rd_kafka_event_error_string(ev));
            rd_kafka_event_destroy(ev);
            return NULL;
        }
        return ev;
    }
}

static void on_signal(int sig)
{
    (void)sig;
    cli_stop = 1;
}

void cli_catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    /* No SA_RESTART: a blocked read of stdin must return on ^C. */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int64_t cli_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cli_connect_admin(struct cli_client *c, const struct rd_kafka_metadata **md)
{
    rd_kafka_conf_t *conf = cli_conf_new(c);
    if (!conf)
        return CLI_FAIL;
    int rc = cli_client_start(c, RD_KAFKA_PRODUCER, conf);
    if (rc)
        return rc;
    const struct rd_kafka_metadata *m;
    if (cli_metadata(c, NULL, &m))
        return CLI_FAIL;
    if (md)
        *md = m;
    else
        rd_kafka_metadata_destroy(m);
    return CLI_OK;
}

int cli_subcommand(const char *prog, const char *usage, const char *const *names, size_t n,
                   int argc, char **argv, int *rc)
{
    if (argc < 2) {
        fputs(usage, stderr);
        *rc = CLI_USAGE;
        return -1;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        fputs(usage, stdout);
        *rc = CLI_OK;
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (!strcmp(argv[1], names[i]))
            return (int)i;
    *rc = cli_usage_error(prog, "unknown command '%s'", argv[1]);
    return -1;
}

int cli_finish_output(const char *prog, int rc)
{
    if (fflush(stdout) && !rc) {
        cli_error(prog, "cannot write output");
        return CLI_FAIL;
    }
    return rc;
}
