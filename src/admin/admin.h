/*
 * admin: the broker's HTTP admin API (JSON) and its Prometheus metrics.
 *
 * One listener (`admin.listener`, default 127.0.0.1:9644), served by
 * libmicrohttpd's own polling thread, separate from the Kafka network
 * threads: a slow admin request never delays a produce.  Requests from
 * a peer that is not a loopback address get 403 unless
 * `admin.allow.remote=true`.  docs/admin-api.md lists every endpoint.
 *
 * Adding an endpoint: write a handler (in the file of its family, e.g.
 * admin/topics.c) and add one line to the route table in admin/routes.c:
 *
 *     { "GET", "/v1/topics/{topic}", handle_topic },
 *
 * Patterns are matched segment by segment; `{name}` matches any one
 * non-empty segment, given to the handler URL-decoded by
 * admin_path_param() (0 for the first {x}, 1 for the second, ...).  An
 * unknown path gets 404, a known path with another method 405, both
 * with a JSON error body.
 *
 * A handler runs on the admin thread, may block briefly (disk reads),
 * and must not hold locks the Kafka path needs for long.  It returns the
 * HTTP status and sets *body to the JSON value to send; the server sends
 * and frees it (json_decref).  Errors: `*body = admin_error(...)` with a
 * 4xx/5xx status.
 *
 * Metrics: GET /metrics writes the Prometheus text format (0.0.4).  The
 * hot-path counters are in common/metrics.h; other modules add their own
 * lines with metrics_add_collector(), called on every scrape.
 */
#ifndef RUNNEL_ADMIN_H
#define RUNNEL_ADMIN_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct broker_config;

struct admin_request; /* opaque */

/* URL query argument `name` (decoded; the first when repeated), NULL if absent. */
const char *admin_query(const struct admin_request *rq, const char *name);
/* The i-th {x} of the route pattern, URL-decoded; NULL past the last. */
const char *admin_path_param(const struct admin_request *rq, int i);
/* The request body (POST/PUT/DELETE), len 0 when none; at most 1 MiB. */
const char *admin_body(const struct admin_request *rq, size_t *len);

/* A handler returns the HTTP status and sets *body to a JSON value the
 * server sends and frees. */
typedef int (*admin_handler_fn)(const struct admin_request *rq, json_t **body);

/* {"error": "..."}; use with 400/404/409/500.  Never NULL unless out of
 * memory, which the server answers with a bare 500. */
json_t *admin_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * JSON for bytes (keys, values, header values): obj[field] = string when
 * the bytes are valid UTF-8 without NUL, null when p == NULL, else
 * obj[field "_b64"] = standard base64 (and no obj[field]).
 */
void admin_json_bytes(json_t *obj, const char *field, const uint8_t *p, int32_t len);

/*
 * Array of {"key": ..., "value": ...} (value via admin_json_bytes; a key
 * that is not valid UTF-8 becomes "key_b64") from `count` headers in the
 * record format (varint key length, key, varint value length, value).
 * NULL when the bytes are malformed.
 */
json_t *admin_json_headers(const uint8_t *headers, size_t len, int32_t count);

struct admin_route {
    const char *method; /* "GET", "POST", ... (HEAD is served as GET) */
    const char *pattern;
    admin_handler_fn fn;
};

/* Extra Prometheus text from other modules, appended on every scrape. */
struct metrics_out; /* opaque text buffer */
void metrics_printf(struct metrics_out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Registers fn, called on the admin thread for every scrape with its own
 * lines to add (# HELP, # TYPE, samples).  Up to 32 collectors; call at
 * start-up.  Label values must be escaped: metrics_label() below. */
void metrics_add_collector(void (*fn)(struct metrics_out *o, void *arg), void *arg);
/* Writes s as a Prometheus label value (without the quotes): \\, \" and
 * \n escaped. */
void metrics_label(struct metrics_out *o, const char *s);

/* Starts the listener and its thread (from broker_main); 0, or -1 with a
 * message.  An empty admin.listener starts nothing and returns 0. */
int admin_start(const struct broker_config *cfg, char *err, size_t errlen);
/* Stops serving (waits for the request in progress); safe when not started. */
void admin_stop(void);
/* The bound port (useful with port 0), 0 when not running. */
int admin_port(void);

#endif
