/*
 * admin_client: the commands that talk to the broker's HTTP admin API
 * (`runnel status`, `runnel message`) instead of the Kafka protocol,
 * for what Kafka has no API for.
 *
 * The address comes from --admin HOST:PORT, else $RUNNEL_ADMIN, else
 * 127.0.0.1:9644 (the broker's default admin.listener).  Requests are
 * GETs with libcurl; answers are JSON, parsed with jansson.  Errors are
 * one line on stderr: the broker not answering at all, or the message
 * of its JSON error body for a 4xx/5xx.
 */
#ifndef RUNNEL_ADMIN_CLIENT_H
#define RUNNEL_ADMIN_CLIENT_H

#include <jansson.h>

#define ADMIN_CLIENT_DEFAULT "127.0.0.1:9644"

/* Option id of --admin, below the common ids of cli_util.h. */
enum { CLI_OPT_ADMIN = 900 };

#define ADMIN_CLIENT_OPT                                                                           \
    {                                                                                              \
        "admin", 0, 1, CLI_OPT_ADMIN                                                               \
    }
#define ADMIN_CLIENT_HELP                                                                          \
    "  --admin HOST:PORT   the broker's admin API (default: $RUNNEL_ADMIN, else\n"                 \
    "                      " ADMIN_CLIENT_DEFAULT ")\n"                                            \
    "  -h, --help          show this help\n"

struct admin_client {
    const char *prog; /* "runnel status", for messages */
    const char *addr; /* HOST:PORT */
};

void admin_client_init(struct admin_client *c, const char *prog);

/*
 * GETs path (starting with "/", its parts already escaped with
 * admin_client_escape) and parses the JSON answer into *out.  Returns
 * CLI_OK, or CLI_FAIL after printing why: not reachable, an HTTP error
 * (with the broker's message), or an answer that is not JSON.
 */
int admin_client_get(struct admin_client *c, const char *path, json_t **out);

/* s %-escaped for a path segment or query value (malloc'ed; NULL if out
 * of memory). */
char *admin_client_escape(const char *s);

#endif
