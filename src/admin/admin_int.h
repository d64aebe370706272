/*
 * admin_int: what the files of admin/ share and nothing outside includes:
 * the route table, the parsed request, the handlers of each family and
 * the built-in metric writers.
 */
#ifndef RUNNEL_ADMIN_INT_H
#define RUNNEL_ADMIN_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "admin/admin.h"

/* routes.c */
extern const struct admin_route admin_routes[];
extern const int admin_n_routes;

#define ADMIN_MAX_SEGMENTS 16
#define ADMIN_MAX_QUERY 16
#define ADMIN_MAX_BODY (1 << 20)

struct admin_query_arg {
    char *name, *value; /* decoded, owned */
};

/* One HTTP request, from its raw URI to the handler (admin.c). */
struct admin_request {
    char *uri;          /* as received, owned */
    const char *method; /* libmicrohttpd's, valid for the request */
    char *segs[ADMIN_MAX_SEGMENTS];
    int nsegs;
    const char *params[ADMIN_MAX_SEGMENTS]; /* the segments {x} matched */
    int nparams;
    struct admin_query_arg query[ADMIN_MAX_QUERY];
    int nquery;
    char *body;
    size_t body_len, body_cap;
    bool body_too_large;
    bool started;
};

/*
 * Splits rq->uri into decoded path segments and query arguments.
 * 0, or -1 with a message in err (a bad %-escape, %00, too many
 * segments or arguments).
 */
int admin_parse_uri(struct admin_request *rq, char *err, size_t errlen);
void admin_request_free(struct admin_request *rq);

/*
 * Finds the route for method and rq's segments, filling rq->params.
 * Returns the route, or NULL with *path_known set when some route has
 * the path but not the method (405) and clear when none has it (404).
 */
const struct admin_route *admin_route_find(struct admin_request *rq, const char *method,
                                           bool *path_known);

/* Parsers for path and query values: 0, or -1 when s is not a whole
 * number in [min, max]. */
int admin_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);
/* Milliseconds since the epoch, or ISO 8601 UTC "2026-11-22T10:00:00[.123]Z"
 * (or with a +hh:mm / -hh:mm offset): 0, or -1. */
int admin_parse_time(const char *s, int64_t *ms);

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" of ms since the epoch (buf >= 32 bytes). */
void admin_format_time(int64_t ms, char *buf, size_t size);

/* The handlers, one family per file. */
int admin_handle_status(const struct admin_request *rq, json_t **body);     /* status.c */
int admin_handle_topics(const struct admin_request *rq, json_t **body);     /* topics.c */
int admin_handle_topic(const struct admin_request *rq, json_t **body);      /* topics.c */
int admin_handle_groups(const struct admin_request *rq, json_t **body);     /* groups.c */
int admin_handle_group(const struct admin_request *rq, json_t **body);      /* groups.c */
int admin_handle_message_at(const struct admin_request *rq, json_t **body); /* messages.c */
int admin_handle_message_by_time(const struct admin_request *rq, json_t **body);
/* find.c */
int admin_handle_messages_by_key(const struct admin_request *rq, json_t **body);
int admin_handle_delayed_count(const struct admin_request *rq, json_t **body); /* delayed.c */
int admin_handle_delayed_list(const struct admin_request *rq, json_t **body);
int admin_handle_dlq(const struct admin_request *rq, json_t **body);

/* Kafka's convention: names starting with "__" are the broker's own. */
bool admin_topic_internal(const char *name);
/* Live topics, their partitions and the bytes of their logs (topics.c). */
void admin_topics_totals(int *topics, int *partitions, int64_t *bytes);

/* The listeners as host:port, for /v1/status (admin.c). */
const char *admin_kafka_listener(void);
const char *admin_listener(void);
/* Monotonic ms when admin_start ran (uptime). */
int64_t admin_started_ms(void);
const struct broker_config *admin_config(void);

/* Metrics (metrics.c) and the built-in families written by each file. */
struct metrics_out {
    char *buf;
    size_t len, cap;
    bool oom;
};
/* The whole scrape: built-in families, then every collector. */
void metrics_scrape(struct metrics_out *o);
void metrics_write_topics(struct metrics_out *o);  /* topics.c: partitions, log sizes */
void metrics_write_groups(struct metrics_out *o);  /* groups.c: lag */
void metrics_write_delayed(struct metrics_out *o); /* delayed.c: held back, dead letters */

#endif
