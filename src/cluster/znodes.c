/* znodes: Kafka's znode JSON (format in znodes.h), with jansson. */
#include "cluster/znodes.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dump(json_t *j)
{
    if (!j)
        return NULL;
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    return s;
}

char *znode_broker_encode(const char *host, int32_t port, const char *rack, int64_t timestamp_ms)
{
    char endpoint[300], ts[32];
    /* An IPv6 address needs brackets in an endpoint, as Kafka writes it. */
    snprintf(endpoint, sizeof endpoint,
             strchr(host, ':') ? "PLAINTEXT://[%s]:%d" : "PLAINTEXT://%s:%d", host, (int)port);
    snprintf(ts, sizeof ts, "%lld", (long long)timestamp_ms);
    json_t *j =
        json_pack("{s:{},s:{s:s},s:[s],s:i,s:i,s:s,s:i,s:s}", "features",
                  "listener_security_protocol_map", "PLAINTEXT", "PLAINTEXT", "endpoints", endpoint,
                  "jmx_port", -1, "port", (int)port, "host", host, "version", 5, "timestamp", ts);
    /* Kafka writes "rack" only for a broker that has one. */
    if (j && rack && *rack && json_object_set_new(j, "rack", json_string(rack))) {
        json_decref(j);
        return NULL;
    }
    return dump(j);
}

/* "PLAINTEXT://host:port" or "PLAINTEXT://[v6]:port". */
static int parse_endpoint(const char *ep, struct cluster_broker *out)
{
    if (strncmp(ep, "PLAINTEXT://", 12))
        return -1;
    const char *h = ep + 12;
    const char *colon = strrchr(h, ':');
    if (!colon || colon == h)
        return -1;
    size_t hl = (size_t)(colon - h);
    if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl >= sizeof out->host)
        return -1;
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno || *end || end == colon + 1 || port < 0 || port > 65535)
        return -1;
    memcpy(out->host, h, hl);
    out->host[hl] = 0;
    out->port = (int32_t)port;
    return 0;
}

int znode_broker_decode(const char *json, size_t len, struct cluster_broker *out)
{
    json_t *j = json_loadb(json, len, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        return -1;
    }
    out->host[0] = 0;
    out->port = -1;
    out->rack[0] = 0;
    int rc = -1;
    json_t *eps = json_object_get(j, "endpoints");
    size_t i;
    json_t *ep;
    json_array_foreach(eps, i, ep)
    {
        if (json_is_string(ep) && parse_endpoint(json_string_value(ep), out) == 0) {
            rc = 0;
            break;
        }
    }
    if (rc) {
        json_t *host = json_object_get(j, "host");
        json_t *port = json_object_get(j, "port");
        if (json_is_string(host) && json_is_integer(port) &&
            strlen(json_string_value(host)) < sizeof out->host) {
            snprintf(out->host, sizeof out->host, "%s", json_string_value(host));
            out->port = (int32_t)json_integer_value(port);
            rc = 0;
        }
    }
    json_t *rack = json_object_get(j, "rack");
    if (rc == 0 && json_is_string(rack))
        snprintf(out->rack, sizeof out->rack, "%s", json_string_value(rack));
    json_decref(j);
    return rc;
}

char *znode_controller_encode(int32_t broker_id, int64_t timestamp_ms)
{
    char ts[32];
    snprintf(ts, sizeof ts, "%lld", (long long)timestamp_ms);
    return dump(
        json_pack("{s:i,s:i,s:s}", "version", 1, "brokerid", (int)broker_id, "timestamp", ts));
}

int znode_controller_decode(const char *json, size_t len, int32_t *broker_id)
{
    json_t *j = json_loadb(json, len, 0, NULL);
    json_t *id = json_object_get(j, "brokerid");
    int rc = -1;
    if (json_is_integer(id) && json_integer_value(id) >= -1 &&
        json_integer_value(id) <= INT32_MAX) {
        *broker_id = (int32_t)json_integer_value(id);
        rc = 0;
    }
    json_decref(j);
    return rc;
}

char *znode_cluster_id_encode(const char *id)
{
    return dump(json_pack("{s:s,s:s}", "version", "1", "id", id));
}

int znode_cluster_id_decode(const char *json, size_t len, char *id, size_t idlen)
{
    json_t *j = json_loadb(json, len, 0, NULL);
    json_t *v = json_object_get(j, "id");
    int rc = -1;
    if (json_is_string(v) && json_string_length(v) > 0 && json_string_length(v) < idlen) {
        snprintf(id, idlen, "%s", json_string_value(v));
        rc = 0;
    }
    json_decref(j);
    return rc;
}

int znode_epoch_decode(const char *text, size_t len, int32_t *epoch)
{
    char buf[16];
    if (len == 0 || len >= sizeof buf)
        return -1;
    memcpy(buf, text, len);
    buf[len] = 0;
    char *end;
    errno = 0;
    long x = strtol(buf, &end, 10);
    if (errno || *end || x < 0 || x > INT32_MAX)
        return -1;
    *epoch = (int32_t)x;
    return 0;
}
