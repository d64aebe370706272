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

/* ---- topics, partition states, topic configs ---- */

void znode_assignment_free(struct znode_assignment *a)
{
    free(a->rf);
    free(a->replicas);
    a->rf = a->replicas = NULL;
    a->n = 0;
}

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void znode_uuid_encode(const uint8_t id[16], char out[23])
{
    int o = 0;
    for (int i = 0; i < 16; i += 3) {
        uint32_t v = (uint32_t)id[i] << 16;
        if (i + 1 < 16)
            v |= (uint32_t)id[i + 1] << 8;
        if (i + 2 < 16)
            v |= id[i + 2];
        int chars = i + 2 < 16 ? 4 : (i + 1 < 16 ? 3 : 2);
        for (int c = 0; c < chars; c++)
            out[o++] = b64url[(v >> (18 - 6 * c)) & 63];
    }
    out[o] = 0;
}

int znode_uuid_decode(const char *s, uint8_t id[16])
{
    if (strlen(s) != 22)
        return -1;
    uint8_t buf[18] = {0};
    int bits = 0, n = 0;
    uint32_t acc = 0;
    for (int i = 0; i < 22; i++) {
        char c = s[i] == '+' ? '-' : s[i] == '/' ? '_' : s[i];
        const char *at = strchr(b64url, c);
        if (!at || !c)
            return -1;
        acc = (acc << 6) | (uint32_t)(at - b64url);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[n++] = (uint8_t)(acc >> bits);
        }
    }
    memcpy(id, buf, 16);
    return 0;
}

char *znode_topic_encode(const struct znode_assignment *a, const uint8_t id[16])
{
    json_t *parts = json_object();
    for (int32_t i = 0; parts && i < a->n; i++) {
        json_t *l = json_array();
        for (int32_t r = 0; l && r < a->rf[i]; r++)
            json_array_append_new(l, json_integer(a->replicas[i * CLUSTER_MAX_RF + r]));
        char key[16];
        snprintf(key, sizeof key, "%d", (int)i);
        json_object_set_new(parts, key, l);
    }
    char uuid[23];
    znode_uuid_encode(id, uuid);
    return dump(json_pack("{s:i,s:o,s:{},s:{},s:s}", "version", 3, "partitions", parts,
                          "adding_replicas", "removing_replicas", "topic_id", uuid));
}

int znode_topic_decode(const char *json, size_t len, struct znode_assignment *out, uint8_t id[16],
                       int *has_id)
{
    memset(out, 0, sizeof *out);
    *has_id = 0;
    json_t *j = json_loadb(json, len, 0, NULL);
    json_t *parts = j ? json_object_get(j, "partitions") : NULL;
    if (!json_is_object(parts)) {
        json_decref(j);
        return -1;
    }
    int32_t n = (int32_t)json_object_size(parts);
    out->n = n;
    out->rf = calloc((size_t)(n ? n : 1), sizeof *out->rf);
    out->replicas = calloc((size_t)(n ? n : 1) * CLUSTER_MAX_RF, sizeof *out->replicas);
    int bad = !out->rf || !out->replicas;
    const char *key;
    json_t *l;
    json_object_foreach(parts, key, l)
    {
        char *end;
        long p = strtol(key, &end, 10);
        if (bad || *end || p < 0 || p >= n || !json_is_array(l) ||
            json_array_size(l) > CLUSTER_MAX_RF) {
            bad = 1;
            break;
        }
        out->rf[p] = (int32_t)json_array_size(l);
        for (size_t r = 0; r < json_array_size(l); r++)
            out->replicas[p * CLUSTER_MAX_RF + (int32_t)r] =
                (int32_t)json_integer_value(json_array_get(l, r));
    }
    for (int32_t p = 0; !bad && p < n; p++)
        if (out->rf[p] < 1)
            bad = 1; /* a gap in the partition numbers */
    json_t *tid = json_object_get(j, "topic_id");
    if (!bad && json_is_string(tid) && !znode_uuid_decode(json_string_value(tid), id))
        *has_id = 1;
    json_decref(j);
    if (bad) {
        znode_assignment_free(out);
        return -1;
    }
    return 0;
}

char *znode_state_encode(const struct znode_state *s)
{
    json_t *isr = json_array();
    for (int32_t i = 0; isr && i < s->n_isr; i++)
        json_array_append_new(isr, json_integer(s->isr[i]));
    return dump(json_pack("{s:i,s:i,s:i,s:i,s:o}", "controller_epoch", (int)s->controller_epoch,
                          "leader", (int)s->leader, "version", 1, "leader_epoch",
                          (int)s->leader_epoch, "isr", isr));
}

int znode_state_decode(const char *json, size_t len, struct znode_state *out)
{
    memset(out, 0, sizeof *out);
    json_t *j = json_loadb(json, len, 0, NULL);
    json_t *isr = j ? json_object_get(j, "isr") : NULL;
    json_t *leader = j ? json_object_get(j, "leader") : NULL;
    json_t *le = j ? json_object_get(j, "leader_epoch") : NULL;
    json_t *ce = j ? json_object_get(j, "controller_epoch") : NULL;
    if (!json_is_array(isr) || !json_is_integer(leader) || !json_is_integer(le) ||
        json_array_size(isr) > CLUSTER_MAX_RF) {
        json_decref(j);
        return -1;
    }
    out->leader = (int32_t)json_integer_value(leader);
    out->leader_epoch = (int32_t)json_integer_value(le);
    out->controller_epoch = json_is_integer(ce) ? (int32_t)json_integer_value(ce) : 0;
    out->n_isr = (int32_t)json_array_size(isr);
    for (int32_t i = 0; i < out->n_isr; i++)
        out->isr[i] = (int32_t)json_integer_value(json_array_get(isr, (size_t)i));
    json_decref(j);
    return 0;
}

char *znode_config_encode(const char *const *keys, const char *const *values, int n)
{
    json_t *c = json_object();
    for (int i = 0; c && i < n; i++)
        json_object_set_new(c, keys[i], json_string(values[i]));
    return dump(json_pack("{s:i,s:o}", "version", 1, "config", c));
}

int znode_config_decode(const char *json, size_t len,
                        void (*fn)(void *arg, const char *key, const char *value), void *arg)
{
    json_t *j = json_loadb(json, len, 0, NULL);
    json_t *c = j ? json_object_get(j, "config") : NULL;
    if (!json_is_object(c)) {
        json_decref(j);
        return -1;
    }
    const char *key;
    json_t *v;
    json_object_foreach(c, key, v)
    {
        if (json_is_string(v))
            fn(arg, key, json_string_value(v));
    }
    json_decref(j);
    return 0;
}
