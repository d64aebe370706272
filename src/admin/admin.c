/*
 * The admin HTTP server: the listener, libmicrohttpd's daemon, the life
 * of a request (raw URI -> decoded segments -> route -> JSON answer),
 * the loopback check and GET /metrics.
 *
 * libmicrohttpd parses HTTP and runs one internal polling thread
 * (epoll); every handler runs on it, one request at a time.  We open
 * the listening socket ourselves and hand it over, so that the address
 * syntax, port 0 and the bound port are the same as the Kafka
 * listener's.
 *
 * The path is taken from the raw URI (libmicrohttpd's URI log callback
 * sees it before any decoding) and split at '/' before %-decoding, so a
 * group id containing "/" can be addressed as %2F.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "admin/admin_int.h"
#include "broker/config.h"
#include "common/clock.h"
#include "common/hostport.h"
#include "common/rlog.h"
#include "net/listen.h"
#include "net/server.h"

#define ADMIN_CONNECTION_LIMIT 64
#define ADMIN_CONNECTION_TIMEOUT_S 30

static struct {
    struct MHD_Daemon *d;
    const struct broker_config *cfg;
    int port;
    bool allow_remote;
    int64_t started_ms;
    char listener[300];       /* host:port actually bound */
    char kafka_listener[300]; /* host:port of the Kafka listener */
} adm;

const char *admin_kafka_listener(void)
{
    return adm.kafka_listener;
}

const char *admin_listener(void)
{
    return adm.listener;
}

int64_t admin_started_ms(void)
{
    return adm.started_ms;
}

const struct broker_config *admin_config(void)
{
    return adm.cfg;
}

int admin_port(void)
{
    return adm.d ? adm.port : 0;
}

/* ---- requests ---- */

const char *admin_query(const struct admin_request *rq, const char *name)
{
    for (int i = 0; i < rq->nquery; i++)
        if (!strcmp(rq->query[i].name, name))
            return rq->query[i].value;
    return NULL;
}

const char *admin_path_param(const struct admin_request *rq, int i)
{
    return i >= 0 && i < rq->nparams ? rq->params[i] : NULL;
}

const char *admin_body(const struct admin_request *rq, size_t *len)
{
    *len = rq->body_len;
    return rq->body ? rq->body : "";
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes n bytes of s (%XX, and '+' as a space when plus is set) into a
 * new string; NULL on a bad escape or %00 (sets *bad) or no memory. */
static char *url_decode(const char *s, size_t n, bool plus, bool *bad)
{
    char *out = malloc(n + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
            int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                free(out);
                *bad = true;
                return NULL;
            }
            *o++ = (char)(hi << 4 | lo);
            i += 2;
        } else if (plus && s[i] == '+') {
            *o++ = ' ';
        } else {
            *o++ = s[i];
        }
    }
    *o = 0;
    return out;
}

int admin_parse_uri(struct admin_request *rq, char *err, size_t errlen)
{
    const char *u = rq->uri;
    size_t plen = strcspn(u, "?#");
    const char *q = u[plen] == '?' ? u + plen + 1 : NULL;
    if (plen == 0 || u[0] != '/') {
        snprintf(err, errlen, "request target must be a path starting with '/'");
        return -1;
    }
    /* "/v1/topics/" is "/v1/topics"; the root has no segments. */
    size_t end = plen;
    if (end > 1 && u[end - 1] == '/')
        end--;
    bool bad = false;
    for (size_t pos = 1; pos < end;) {
        size_t n = strcspn(u + pos, "/?#");
        if (pos + n > end)
            n = end - pos;
        if (rq->nsegs == ADMIN_MAX_SEGMENTS) {
            snprintf(err, errlen, "path has too many segments");
            return -1;
        }
        char *seg = url_decode(u + pos, n, false, &bad);
        if (!seg) {
            snprintf(err, errlen, bad ? "bad %%-escape in path" : "out of memory");
            return -1;
        }
        rq->segs[rq->nsegs++] = seg;
        pos += n + 1;
    }
    while (q && *q && *q != '#') {
        size_t n = strcspn(q, "&#");
        if (n > 0) {
            if (rq->nquery == ADMIN_MAX_QUERY) {
                snprintf(err, errlen, "too many query arguments");
                return -1;
            }
            const char *eq = memchr(q, '=', n);
            size_t kl = eq ? (size_t)(eq - q) : n;
            struct admin_query_arg *a = &rq->query[rq->nquery];
            a->name = url_decode(q, kl, true, &bad);
            a->value =
                a->name ? url_decode(eq ? eq + 1 : "", eq ? n - kl - 1 : 0, true, &bad) : NULL;
            if (!a->name || !a->value) {
                free(a->name);
                free(a->value);
                snprintf(err, errlen, bad ? "bad %%-escape in query" : "out of memory");
                return -1;
            }
            rq->nquery++;
        }
        q += n;
        if (*q == '&')
            q++;
    }
    return 0;
}

void admin_request_free(struct admin_request *rq)
{
    if (!rq)
        return;
    for (int i = 0; i < rq->nsegs; i++)
        free(rq->segs[i]);
    for (int i = 0; i < rq->nquery; i++) {
        free(rq->query[i].name);
        free(rq->query[i].value);
    }
    free(rq->body);
    free(rq->uri);
    free(rq);
}

/* Does the pattern match rq's segments?  Fills rq->params when it does. */
static bool pattern_matches(struct admin_request *rq, const char *pattern)
{
    int seg = 0, nparams = 0;
    const char *p = pattern;
    while (*p == '/')
        p++;
    while (*p) {
        size_t n = strcspn(p, "/");
        if (seg >= rq->nsegs)
            return false;
        const char *s = rq->segs[seg];
        if (n >= 2 && p[0] == '{' && p[n - 1] == '}') {
            if (!*s)
                return false;
            rq->params[nparams++] = s;
        } else if (strlen(s) != n || strncmp(s, p, n)) {
            return false;
        }
        seg++;
        p += n;
        while (*p == '/')
            p++;
    }
    if (seg != rq->nsegs)
        return false;
    rq->nparams = nparams;
    return true;
}

const struct admin_route *admin_route_find(struct admin_request *rq, const char *method,
                                           bool *path_known)
{
    *path_known = false;
    if (!strcmp(method, "HEAD"))
        method = "GET";
    for (int i = 0; i < admin_n_routes; i++) {
        if (!pattern_matches(rq, admin_routes[i].pattern))
            continue;
        *path_known = true;
        if (!strcmp(admin_routes[i].method, method))
            return &admin_routes[i];
    }
    rq->nparams = 0;
    return NULL;
}

/* ---- responses ---- */

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status, char *text, size_t len,
                                 const char *type, const char *allow)
{
    struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback(len, text, free);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (allow)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Sends body (consumed) as JSON; a body that cannot be written is a 500. */
static enum MHD_Result send_json(struct MHD_Connection *c, int status, json_t *body,
                                 const char *allow)
{
    char *text = body ? json_dumps(body, JSON_INDENT(2) | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(body);
    if (!text) {
        static const char oom[] = "{\"error\": \"out of memory\"}\n";
        char *t = strdup(oom);
        return t ? send_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, t, sizeof oom - 1,
                             "application/json", NULL)
                 : MHD_NO;
    }
    size_t len = strlen(text);
    /* A trailing newline, for people reading it in a terminal. */
    char *t = realloc(text, len + 2);
    if (t) {
        text = t;
        text[len++] = '\n';
        text[len] = 0;
    }
    return send_text(c, (unsigned)status, text, len, "application/json", allow);
}

static enum MHD_Result send_error(struct MHD_Connection *c, int status, const char *allow,
                                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static enum MHD_Result send_error(struct MHD_Connection *c, int status, const char *allow,
                                  const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return send_json(c, status, admin_error("%s", msg), allow);
}

/* The methods some route serves for rq's path, "GET, HEAD" style. */
static void allowed_methods(struct admin_request *rq, char *buf, size_t size)
{
    buf[0] = 0;
    size_t len = 0;
    for (int i = 0; i < admin_n_routes; i++) {
        if (!pattern_matches(rq, admin_routes[i].pattern) || strstr(buf, admin_routes[i].method))
            continue;
        len += (size_t)snprintf(buf + len, len < size ? size - len : 0, "%s%s", len ? ", " : "",
                                admin_routes[i].method);
        if (!strcmp(admin_routes[i].method, "GET"))
            len += (size_t)snprintf(buf + len, len < size ? size - len : 0, ", HEAD");
    }
    rq->nparams = 0;
}

static bool peer_is_loopback(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr)
        return false;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        /* ::1, or an IPv4 loopback address seen through a dual-stack socket. */
        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return false;
}

static enum MHD_Result serve_metrics(struct MHD_Connection *c)
{
    struct metrics_out o = {0};
    metrics_scrape(&o);
    if (o.oom) {
        free(o.buf);
        return send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, "out of memory");
    }
    if (!o.buf) {
        o.buf = strdup("");
        if (!o.buf)
            return MHD_NO;
    }
    return send_text(c, MHD_HTTP_OK, o.buf, o.len, "text/plain; version=0.0.4; charset=utf-8",
                     NULL);
}

/* ---- libmicrohttpd callbacks ---- */

/* Called first for each request, with the URI as it came: our request
 * object starts here and ends in request_completed(). */
static void *uri_log(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void)cls;
    (void)c;
    struct admin_request *rq = calloc(1, sizeof *rq);
    if (rq) {
        rq->uri = strdup(uri ? uri : "");
        if (!rq->uri) {
            free(rq);
            rq = NULL;
        }
    }
    return rq;
}

static void request_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                              enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    admin_request_free(*req_cls);
    *req_cls = NULL;
}

static enum MHD_Result access_handler(void *cls, struct MHD_Connection *c, const char *url,
                                      const char *method, const char *version,
                                      const char *upload_data, size_t *upload_data_size,
                                      void **req_cls)
{
    (void)cls;
    (void)url;
    (void)version;
    struct admin_request *rq = *req_cls;
    if (!rq)
        return MHD_NO; /* out of memory in uri_log: drop the connection */
    if (!rq->started) {
        /* Headers are in; a body (if any) follows in later calls. */
        rq->started = true;
        rq->method = method;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (rq->body_too_large || rq->body_len + n > ADMIN_MAX_BODY) {
            rq->body_too_large = true;
            return MHD_YES;
        }
        if (rq->body_len + n + 1 > rq->body_cap) {
            size_t cap = rq->body_cap ? rq->body_cap * 2 : 4096;
            while (cap < rq->body_len + n + 1)
                cap *= 2;
            char *b = realloc(rq->body, cap);
            if (!b)
                return MHD_NO;
            rq->body = b;
            rq->body_cap = cap;
        }
        memcpy(rq->body + rq->body_len, upload_data, n);
        rq->body_len += n;
        rq->body[rq->body_len] = 0;
        return MHD_YES;
    }

    /* The whole request is in: answer it. */
    if (!adm.allow_remote && !peer_is_loopback(c))
        return send_error(c, MHD_HTTP_FORBIDDEN, NULL,
                          "the admin API accepts only local clients (loopback addresses); set "
                          "admin.allow.remote=true to serve others");
    if (rq->body_too_large)
        return send_error(c, MHD_HTTP_CONTENT_TOO_LARGE, NULL, "request body over %d bytes",
                          ADMIN_MAX_BODY);
    char err[128];
    if (admin_parse_uri(rq, err, sizeof err))
        return send_error(c, MHD_HTTP_BAD_REQUEST, NULL, "%s", err);
    bool get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    if (rq->nsegs == 1 && !strcmp(rq->segs[0], "metrics")) {
        if (!get)
            return send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "GET, HEAD",
                              "method %s not allowed on /metrics (allowed: GET, HEAD)", method);
        return serve_metrics(c);
    }
    bool known;
    const struct admin_route *route = admin_route_find(rq, method, &known);
    if (!route) {
        if (known) {
            char allow[128];
            allowed_methods(rq, allow, sizeof allow);
            return send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, allow,
                              "method %s not allowed on this path (allowed: %s)", method, allow);
        }
        return send_error(c, MHD_HTTP_NOT_FOUND, NULL, "no such endpoint: %s %.*s", method,
                          (int)strcspn(rq->uri, "?#"), rq->uri);
    }
    json_t *body = NULL;
    int status = route->fn(rq, &body);
    if (status < 100 || status > 599) {
        json_decref(body);
        rlog_warn("admin: handler for %s returned status %d", route->pattern, status);
        return send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, "internal error");
    }
    if (!body)
        body = status < 400 ? json_object() : admin_error("request failed");
    return send_json(c, status, body, NULL);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n')
        msg[--n] = 0;
    rlog_debug("admin http: %s", msg);
}

/* ---- start and stop ---- */

/* "host:port" or "[v6]:port"; an empty host means every address. */
static int open_listener(const char *host, int port, int *family, char *err, size_t errlen)
{
    struct net_listener l;
    if (net_listen(host, port, 64, "admin.listener", &l, err, errlen))
        return -1;
    *family = l.family;
    adm.port = l.port;
    return l.fd;
}

/* host:port with brackets around an IPv6 host; "0.0.0.0" for all. */
static void format_listener(char *buf, size_t size, const char *host, int port)
{
    if (strchr(host, ':'))
        snprintf(buf, size, "[%s]:%d", host, port);
    else
        snprintf(buf, size, "%s:%d", host[0] ? host : "0.0.0.0", port);
}

int admin_start(const struct broker_config *cfg, char *err, size_t errlen)
{
    adm.cfg = cfg;
    adm.started_ms = clock_mono_ms();
    format_listener(adm.kafka_listener, sizeof adm.kafka_listener, cfg->listen_host, server_port());
    const char *listener = "", *allow = "false";
    for (int i = 0; i < config_n_defs; i++) {
        const char *k = config_defs[i].broker_key;
        if (k && !strcmp(k, "admin.listener"))
            listener = cfg->values[i];
        else if (k && !strcmp(k, "admin.allow.remote"))
            allow = cfg->values[i];
    }
    adm.allow_remote = !strcmp(allow, "true");
    if (!*listener) {
        rlog_info("admin API disabled (admin.listener is empty)");
        return 0;
    }
    char host[256];
    int port, family = AF_INET;
    if (hostport_parse("admin.listener", listener, host, sizeof host, &port, err, errlen))
        return -1;
    int fd = open_listener(host, port, &family, err, errlen);
    if (fd < 0)
        return -1;
    /* Everything the handlers read of adm (listener, kafka_listener, cfg,
     * started_ms, allow_remote) is written before MHD_start_daemon starts
     * the polling thread and never after, so they read it without a lock. */
    format_listener(adm.listener, sizeof adm.listener, host, adm.port);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
    if (family == AF_INET6)
        flags |= MHD_USE_IPv6;
    adm.d = MHD_start_daemon(flags, 0, NULL, NULL, access_handler, NULL, MHD_OPTION_EXTERNAL_LOGGER,
                             mhd_log, NULL, MHD_OPTION_LISTEN_SOCKET, fd,
                             MHD_OPTION_CONNECTION_LIMIT, (unsigned)ADMIN_CONNECTION_LIMIT,
                             MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)ADMIN_CONNECTION_TIMEOUT_S,
                             MHD_OPTION_URI_LOG_CALLBACK, uri_log, NULL,
                             MHD_OPTION_NOTIFY_COMPLETED, request_completed, NULL, MHD_OPTION_END);
    if (!adm.d) {
        close(fd);
        snprintf(err, errlen, "cannot start the admin HTTP server on %s", listener);
        return -1;
    }
    /* Tests read the port from this line when admin.listener has port 0;
     * it must not contain "listening on", which marks the Kafka
     * listener ready. */
    rlog_info("admin API on http://%s (%s)", adm.listener,
              adm.allow_remote ? "any client" : "local clients only");
    return 0;
}

void admin_stop(void)
{
    if (adm.d) {
        /* Closes the listening socket and joins the polling thread. */
        MHD_stop_daemon(adm.d);
        adm.d = NULL;
    }
}
