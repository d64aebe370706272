/*
 * The dispatch table: every API Runnel serves, with the versions it
 * accepts.  Version checks happen here and only here; ApiVersions
 * advertises exactly this table, so a client never sees an API that is
 * not implemented.
 */
#include <stdbool.h>
#include <stdio.h>

#include "common/metrics.h"
#include "common/rlog.h"
#include "common/kerr.h"
#include "kafka/handlers.h"
#include "net/server.h"
#include "proto/gen/msgs.h"

#define API(NAME, name)                                                                            \
    {                                                                                              \
        NAME##_API_KEY, NAME##_MIN_VERSION, NAME##_MAX_VERSION, #name, handle_##name               \
    }

const struct kapi kapi_table[] = {
    API(PRODUCE, produce),
    API(FETCH, fetch),
    API(LIST_OFFSETS, list_offsets),
    API(OFFSET_FOR_LEADER_EPOCH, offset_for_leader_epoch),
    API(METADATA, metadata),
    API(API_VERSIONS, api_versions),
    API(CREATE_TOPICS, create_topics),
    API(DELETE_TOPICS, delete_topics),
    API(DELETE_RECORDS, delete_records),
    API(DESCRIBE_CONFIGS, describe_configs),
    API(ALTER_CONFIGS, alter_configs),
    API(CREATE_PARTITIONS, create_partitions),
    API(INCREMENTAL_ALTER_CONFIGS, incremental_alter_configs),
    API(DESCRIBE_CLUSTER, describe_cluster),
    API(OFFSET_COMMIT, offset_commit),
    API(OFFSET_FETCH, offset_fetch),
    API(FIND_COORDINATOR, find_coordinator),
    API(JOIN_GROUP, join_group),
    API(HEARTBEAT, heartbeat),
    API(LEAVE_GROUP, leave_group),
    API(SYNC_GROUP, sync_group),
    API(DESCRIBE_GROUPS, describe_groups),
    API(LIST_GROUPS, list_groups),
    API(DELETE_GROUPS, delete_groups),
    API(OFFSET_DELETE, offset_delete),
};
const int kapi_count = (int)(sizeof kapi_table / sizeof kapi_table[0]);

static const struct kapi *find_api(int16_t key)
{
    for (int i = 0; i < kapi_count; i++)
        if (kapi_table[i].key == key)
            return &kapi_table[i];
    return NULL;
}

static int dispatch(struct kreq *r, const struct kapi **found)
{
    kr_t rd;
    kr_init(&rd, r->frame, (size_t)r->frame_len);
    if (r->frame_len < 8)
        return KH_CLOSE;
    int16_t key = (int16_t)(r->frame[0] << 8 | r->frame[1]);
    int16_t version = (int16_t)(r->frame[2] << 8 | r->frame[3]);
    const struct kapi *api = find_api(key);
    *found = api;
    if (!api) {
        /* Kafka closes the connection on an API key it does not know. */
        rlog_info("unknown API key %d from %s", key, "client");
        return KH_CLOSE;
    }
    bool supported = version >= api->min_version && version <= api->max_version;
    /*
     * An ApiVersions request of a version we do not know is answered in
     * v0 form with UNSUPPORTED_VERSION and our table, so the client can
     * retry with a version we speak; its header is read as v1 (the body
     * of an unknown version cannot be parsed and is ignored).
     */
    if (!supported && key != API_VERSIONS_API_KEY) {
        rlog_info("unsupported version %d of API %s", version, api->name);
        return KH_CLOSE;
    }
    bool flexible = supported && kapi_is_flexible(key, version);
    if (kreq_header_decode(&rd, &r->hdr, flexible) || rd.err)
        return KH_CLOSE;
    r->body = rd;
    /* Length prefix at position 0, patched by the connection when the
     * response is complete (net/conn.c). */
    kw_reserve(&r->out, 4);
    /* ApiVersions responses always carry header v0 (see header.h). */
    kresp_header_encode(&r->out, r->hdr.correlation_id, flexible && key != API_VERSIONS_API_KEY);
    if (!supported)
        return handle_api_versions(r); /* sees the bad version, answers v0 */
    return api->handle(r);
}

/* Request bytes are the frame and its length prefix. */
static void count_done(const struct kreq *r, int16_t key, bool answered)
{
    metrics_request_done(key, r->arrival_ns, (int64_t)r->frame_len + 4,
                         answered ? kw_total(&r->out) : 0);
}

/* Counted before the connection sees it: it may free r at once. */
void kreq_finish(struct kreq *r)
{
    count_done(r, r->hdr.api_key, !r->noresp);
    net_req_finish(r);
}

/* Runs the handler and counts the request: answered now, or failed
 * (the connection closes); a pending one is counted by kreq_finish. */
int kafka_dispatch(struct kreq *r)
{
    r->arrival_ns = metrics_now_ns();
    const struct kapi *api = NULL;
    int rc = dispatch(r, &api);
    if (!api)
        return rc;
    if (rc == KH_DONE || rc == KH_NORESP)
        count_done(r, api->key, rc == KH_DONE);
    else if (rc == KH_CLOSE)
        metrics_request_failed(api->key);
    return rc;
}

const struct net_handlers kafka_net_handlers = {.on_request = kafka_dispatch};
