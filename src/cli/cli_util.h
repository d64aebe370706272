/*
 * cli_util.h: what `runnel topic`, `runnel produce` and `runnel consume`
 * share.  They are thin shells over librdkafka's C API; this file keeps
 * the parts that must behave the same in all three:
 *
 *   - option parsing (--long, --long=value, -s value, "--" ends options),
 *     with usage errors printed as one line and exit status 2;
 *   - the client handle: bootstrap server (-b, else $RUNNEL_BOOTSTRAP,
 *     else 127.0.0.1:9092), -X librdkafka properties, librdkafka's own log
 *     lines silenced unless --verbose;
 *   - the first metadata request, which doubles as the reachability check
 *     so that a dead broker is reported in about a second instead of after
 *     librdkafka's long retry timeouts;
 *   - one-line errors on stderr ("runnel topic: unknown topic 'x'").
 *
 * Everything runs on the calling thread; librdkafka's callbacks (log,
 * error) are served from rd_kafka_poll() on that same thread, so the
 * state below needs no locks.
 */
#ifndef RUNNEL_CLI_UTIL_H
#define RUNNEL_CLI_UTIL_H

#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>

/* Process exit statuses shared by every subcommand (see cli.h). */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* One accepted option.  `id` is what cli_next() returns for it (> 0). */
struct cli_opt {
    const char *name; /* long name, without the leading "--" */
    char short_name;  /* single-letter alias, 0 when none */
    int has_arg;      /* 1 when the option takes a value */
    int id;
};

/* Ids of the options every subcommand accepts; command ids stay below. */
enum {
    CLI_OPT_BOOTSTRAP = 1000,
    CLI_OPT_VERBOSE,
    CLI_OPT_HELP,
    CLI_OPT_PROPERTY,
};

/* Spliced at the end of each command's option table, before the {0}. */
#define CLI_COMMON_OPTS                                                                            \
    {"bootstrap-server", 'b', 1, CLI_OPT_BOOTSTRAP}, {"verbose", 'v', 0, CLI_OPT_VERBOSE},         \
        {"help", 'h', 0, CLI_OPT_HELP},                                                            \
    {                                                                                              \
        "property", 'X', 1, CLI_OPT_PROPERTY                                                       \
    }

/* Help text for the common options, appended to each command's usage. */
#define CLI_COMMON_HELP                                                                            \
    "common options:\n"                                                                            \
    "  -b, --bootstrap-server HOST:PORT  broker to talk to (default: $RUNNEL_BOOTSTRAP,\n"         \
    "                                    else 127.0.0.1:9092)\n"                                   \
    "  -X, --property KEY=VALUE          set a librdkafka client property\n"                       \
    "  -v, --verbose                     show the client library's own log lines\n"                \
    "  -h, --help                        show this help\n"

/* Return values of cli_next() besides option ids. */
enum { CLI_ARG_END = -1, CLI_ARG_ERROR = -2, CLI_ARG_POSITIONAL = 0 };

/* Cursor over argv.  Positional arguments may be mixed with options. */
struct cli_args {
    const char *prog; /* "runnel topic create", for messages */
    int argc;
    char **argv;
    int i;
    int only_positional; /* set after "--" */
};

void cli_args_init(struct cli_args *a, const char *prog, int argc, char **argv, int first);

/*
 * Next argument: an option id (with *val set to its value or NULL), or
 * CLI_ARG_POSITIONAL (*val is the argument), CLI_ARG_END, or CLI_ARG_ERROR
 * after printing a usage error (unknown flag, missing value).
 */
int cli_next(struct cli_args *a, const struct cli_opt *opts, const char **val);

/* Maximum -X properties; far more than anyone types on a command line. */
#define CLI_MAX_PROPS 32

/* The client every subcommand builds; see the top of this file. */
struct cli_client {
    const char *prog;
    const char *bootstrap;
    int verbose;
    const char *props[CLI_MAX_PROPS];
    int nprops;
    rd_kafka_t *rk;
    /* Set by the error callback; all brokers down means nothing answers. */
    int all_brokers_down;
};

void cli_client_init(struct cli_client *c, const char *prog);

/*
 * Handles one of the CLI_OPT_* common options.  Returns 1 when handled,
 * 0 when `id` is not common, and CLI_ARG_ERROR after a usage error.
 */
int cli_common_opt(struct cli_client *c, int id, const char *val);

/*
 * A configuration with bootstrap.servers and the quiet log and error
 * callbacks; NULL after printing an error.  The caller may set more
 * properties before cli_client_start(), which applies -X last.
 */
rd_kafka_conf_t *cli_conf_new(struct cli_client *c);

/* Sets one property or prints why not; returns 0 or -1. */
int cli_conf_set(struct cli_client *c, rd_kafka_conf_t *conf, const char *name, const char *value);

/*
 * Applies the -X properties and creates c->rk from conf, which it consumes.
 * Returns CLI_OK, CLI_USAGE (a rejected -X property) or CLI_FAIL.
 */
int cli_client_start(struct cli_client *c, rd_kafka_type_t type, rd_kafka_conf_t *conf);

/* Destroys c->rk, if any. */
void cli_client_close(struct cli_client *c);

/*
 * Metadata for all topics (topic == NULL) or for one topic, waiting at
 * most ~5 s for the broker.  This is the reachability check: on failure it
 * prints "broker HOST:PORT not reachable" and returns CLI_FAIL.  Release
 * *md with rd_kafka_metadata_destroy().
 */
int cli_metadata(struct cli_client *c, const char *topic, const struct rd_kafka_metadata **md);

/*
 * Starts an admin client (a producer handle, which admin calls need) and
 * checks the broker answers.  *md (when md is not NULL) gets the cluster
 * metadata, to be freed with rd_kafka_metadata_destroy().
 */
int cli_connect_admin(struct cli_client *c, const struct rd_kafka_metadata **md);

/*
 * The first step of a command with subcommands (`runnel topic create`):
 * finds argv[1] among names and returns its index.  Returns -1 when the
 * command is already answered, with the exit status in *rc: no
 * subcommand (usage on stderr, CLI_USAGE), --help (usage on stdout,
 * CLI_OK), an unknown one (one-line usage error).
 */
int cli_subcommand(const char *prog, const char *usage, const char *const *names, size_t n,
                   int argc, char **argv, int *rc);

/* Ends a command that printed results: a failed write to stdout (a full
 * disk, a closed pipe) is an error, not a silent loss. */
int cli_finish_output(const char *prog, int rc);

/* The topic's metadata entry, or NULL when absent. */
const rd_kafka_metadata_topic_t *cli_find_topic(const struct rd_kafka_metadata *md,
                                                const char *topic);

/*
 * Checks that `topic` exists in md: prints "unknown topic 'x'" (or the
 * broker's error for it) and returns CLI_FAIL when it does not.
 */
int cli_require_topic(struct cli_client *c, const struct rd_kafka_metadata *md, const char *topic,
                      const rd_kafka_metadata_topic_t **out);

/*
 * Waits for the admin result event of type `type` on queue q.  Prints an
 * error and returns NULL on timeout or a request-level failure.  Release
 * the event with rd_kafka_event_destroy().
 */
rd_kafka_event_t *cli_admin_wait(struct cli_client *c, rd_kafka_queue_t *q,
                                 rd_kafka_event_type_t type, const char *what);

/* Admin options with the request timeout every admin call uses. */
rd_kafka_AdminOptions_t *cli_admin_options(struct cli_client *c, rd_kafka_admin_op_t op);

/* Prints "PROG: message" as one line on stderr. */
void cli_error(const char *prog, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints "PROG: message (see PROG --help)" and returns CLI_USAGE. */
int cli_usage_error(const char *prog, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parses a whole decimal integer within [min, max]; usage error if not. */
int cli_parse_int64(const char *prog, const char *opt, const char *s, int64_t min, int64_t max,
                    int64_t *out);

/*
 * Splits "key=value" at the first '='.  Returns a malloc'd copy of the key
 * and points *value into s; NULL (after a usage error) when there is no
 * '=' or the key is empty.
 */
char *cli_split_kv(const char *prog, const char *opt, const char *s, const char **value);

/* Set to 1 by SIGINT/SIGTERM once cli_catch_signals() ran. */
extern volatile sig_atomic_t cli_stop;

/* SIGINT and SIGTERM set cli_stop, without SA_RESTART so reads return. */
void cli_catch_signals(void);

/* Milliseconds of a monotonic clock. */
int64_t cli_now_ms(void);

#endif
