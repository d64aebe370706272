/*
 * Metadata: the brokers (kafka/brokers.c: this one, or the cluster's live
 * ones), and every requested topic with each partition's leader, leader
 * epoch, replicas and in-sync replicas as the partition has them
 * (broker/partition.h).  Unknown topics are
 * created when auto-creation is on and the client allows it (v4+ asks;
 * earlier versions always allow, as in Kafka).
 */
#include <string.h>

#include "broker/topics.h"
#include "cluster/cluster.h"
#include "common/kerr.h"
#include "kafka/brokers.h"
#include "kafka/handlers.h"
#include "proto/gen/msgs.h"

static bool live(const struct cluster_snapshot *s, int32_t id)
{
    for (int32_t i = 0; i < s->n; i++)
        if (s->b[i].id == id)
            return true;
    return false;
}

/* s: the cluster's live brokers, NULL on a single node. */
static void fill_topic(struct kreq *r, struct metadata_response_metadata_response_topic *out,
                       struct topic *t, const struct cluster_snapshot *s)
{
    out->name = (kstr_t){t->name, (int32_t)strlen(t->name)};
    out->topic_id = t->id;
    out->is_internal = t->name[0] == '_' && t->name[1] == '_';
    /* A view lists its source's partitions (it reads them). */
    int32_t n = topic_read_partition_count(t);
    if (t->view && n == 0) {
        out->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION; /* its source is missing */
        return;
    }
    out->partitions = arena_alloc(&r->arena, (size_t)n * sizeof *out->partitions);
    if (!out->partitions) {
        out->error_code = KERR_UNKNOWN_SERVER_ERROR;
        return;
    }
    out->partitions_count = n;
    for (int32_t i = 0; i < n; i++) {
        struct metadata_response_metadata_response_partition *p = &out->partitions[i];
        metadata_response_metadata_response_partition_init(p);
        struct partition *pt = topic_read_partition(t, i);
        p->partition_index = i;
        p->offline_replicas_count = 0;
        if (!pt) {
            /* Cannot be (partitions are only added), but says so if it were. */
            p->error_code = KERR_LEADER_NOT_AVAILABLE;
            p->leader_id = -1;
            continue;
        }
        /* A consistent copy: replication changes the leadership (and
         * the ISR arrays in place) while we answer. */
        struct partition_leadership ld;
        partition_leadership(pt, &ld);
        int32_t *ids = arena_alloc(&r->arena, (size_t)(ld.n_replicas + ld.n_isr + 1) * sizeof *ids);
        if (!ids) {
            p->error_code = KERR_UNKNOWN_SERVER_ERROR;
            continue;
        }
        memcpy(ids, ld.replicas, (size_t)ld.n_replicas * sizeof *ids);
        memcpy(ids + ld.n_replicas, ld.isr, (size_t)ld.n_isr * sizeof *ids);
        p->leader_id = ld.leader_id;
        p->leader_epoch = ld.leader_epoch;
        p->replica_nodes = ids;
        p->replica_nodes_count = ld.n_replicas;
        p->isr_nodes = ids + ld.n_replicas;
        p->isr_nodes_count = ld.n_isr;
        if (!s)
            continue;
        /* Kafka's answer for a partition without a leader. */
        if (p->leader_id < 0)
            p->error_code = KERR_LEADER_NOT_AVAILABLE;
        int32_t n_off = 0;
        for (int32_t k = 0; k < p->replica_nodes_count; k++)
            n_off += !live(s, p->replica_nodes[k]);
        if (n_off) {
            int32_t *off = arena_alloc(&r->arena, (size_t)n_off * sizeof *off);
            if (off) {
                n_off = 0;
                for (int32_t k = 0; k < p->replica_nodes_count; k++)
                    if (!live(s, p->replica_nodes[k]))
                        off[n_off++] = p->replica_nodes[k];
                p->offline_replicas = off;
                p->offline_replicas_count = n_off;
            }
        }
    }
}

int handle_metadata(struct kreq *r)
{
    struct metadata_request req;
    if (!KREQ_DECODE(r, metadata_request, &req))
        return KH_CLOSE;
    const struct broker_config *cfg = topics_broker_config();
    int16_t v = r->hdr.api_version;

    struct metadata_response resp;
    metadata_response_init(&resp);
    struct kafka_brokers kb;
    if (kafka_brokers_get(&r->arena, cfg, &kb))
        return KH_CLOSE;
    resp.brokers = arena_alloc(&r->arena, (size_t)kb.n * sizeof *resp.brokers);
    if (!resp.brokers)
        return KH_CLOSE;
    for (int32_t i = 0; i < kb.n; i++) {
        metadata_response_metadata_response_broker_init(&resp.brokers[i]);
        resp.brokers[i].node_id = kb.b[i].id;
        resp.brokers[i].host = kb.b[i].host;
        resp.brokers[i].port = kb.b[i].port;
        resp.brokers[i].rack = kb.b[i].rack;
    }
    resp.brokers_count = kb.n;
    resp.cluster_id = kstr_c(topics_cluster_id());
    resp.controller_id = kb.controller_id;
    const struct cluster_snapshot *snap = cluster_snapshot_get();

    /* All topics: v0 sends an empty list, v1+ a null one. */
    bool all = req.topics_count < 0 || (v == 0 && req.topics_count == 0);
    struct topic **held;
    int n_held = 0;
    if (all) {
        if (topics_list(&held, &n_held)) {
            cluster_snapshot_put(snap);
            return KH_CLOSE;
        }
        resp.topics = arena_alloc(&r->arena, (size_t)(n_held ? n_held : 1) * sizeof *resp.topics);
        if (!resp.topics) {
            topics_list_free(held, n_held);
            cluster_snapshot_put(snap);
            return KH_CLOSE;
        }
        resp.topics_count = n_held;
        for (int i = 0; i < n_held; i++) {
            metadata_response_metadata_response_topic_init(&resp.topics[i]);
            fill_topic(r, &resp.topics[i], held[i], snap);
        }
    } else {
        int32_t n = req.topics_count;
        held = arena_alloc(&r->arena, (size_t)(n ? n : 1) * sizeof *held);
        resp.topics = arena_alloc(&r->arena, (size_t)(n ? n : 1) * sizeof *resp.topics);
        if (!held || !resp.topics) {
            cluster_snapshot_put(snap);
            return KH_CLOSE;
        }
        resp.topics_count = n;
        bool allow_create = v < 4 || req.allow_auto_topic_creation;
        for (int32_t i = 0; i < n; i++) {
            struct metadata_response_metadata_response_topic *out = &resp.topics[i];
            metadata_response_metadata_response_topic_init(out);
            kstr_t name = req.topics[i].name;
            out->name = name;
            if (name.len < 0) {
                /* v10+ may name topics by id only; we look up by name. */
                out->error_code = KERR_UNKNOWN_TOPIC_ID;
                out->topic_id = req.topics[i].topic_id;
                continue;
            }
            struct topic *t = NULL;
            out->error_code = topics_get_or_create(name.ptr, (size_t)name.len, allow_create, &t);
            if (t) {
                held[n_held++] = t;
                fill_topic(r, out, t, snap);
            }
        }
    }
    metadata_response_encode(&r->out, v, &resp);
    cluster_snapshot_put(snap);
    /* The names in the response point into the topics: encode first. */
    if (all)
        topics_list_free(held, n_held);
    else
        for (int i = 0; i < n_held; i++)
            topic_put(held[i]);
    return KH_DONE;
}
