/*
 * CreateTopics, DeleteTopics, CreatePartitions: topic lifecycle.
 *
 * A filtered view (broker/view.h) is created like any topic, with
 * view.source and view.filter among its configs and -1 (or its source's
 * count) partitions.  A topic with views cannot be deleted before them
 * (POLICY_VIOLATION); a view gets no partitions of its own.
 */
#include <stdio.h>
#include <string.h>

#include "broker/topics.h"
#include "cluster/cluster.h"
#include "group/group.h"
#include "common/kerr.h"
#include "kafka/handlers.h"
#include "proto/gen/msgs.h"

static kstr_t err_msg(struct kreq *r, int16_t code, const char *msg)
{
    if (code == KERR_NONE || !msg || !*msg)
        return (kstr_t){NULL, -1};
    char *s = arena_strndup(&r->arena, msg, strlen(msg));
    return s ? kstr_c(s) : (kstr_t){NULL, -1};
}

/* Every replica list must name exactly this broker: we have one. */
static bool assignment_ok(const int32_t *ids, int32_t n, int32_t node_id)
{
    return n == 1 && ids[0] == node_id;
}

int handle_create_topics(struct kreq *r)
{
    struct create_topics_request req;
    if (!KREQ_DECODE(r, create_topics_request, &req))
        return KH_CLOSE;
    const struct broker_config *cfg = topics_broker_config();
    struct create_topics_response resp;
    create_topics_response_init(&resp);
    int32_t nt = req.topics_count > 0 ? req.topics_count : 0;
    resp.topics = arena_alloc(&r->arena, (size_t)(nt ? nt : 1) * sizeof *resp.topics);
    if (!resp.topics)
        return KH_CLOSE;
    resp.topics_count = nt;
    for (int32_t i = 0; i < nt; i++) {
        struct create_topics_request_creatable_topic *qt = &req.topics[i];
        struct create_topics_response_creatable_topic_result *rt = &resp.topics[i];
        create_topics_response_creatable_topic_result_init(rt);
        rt->name = qt->name;
        rt->num_partitions = -1;
        rt->replication_factor = -1;
        rt->configs_count = -1 + 1; /* an empty list: nothing beyond what was asked */
        char err[256] = "";
        int16_t code = KERR_NONE;
        int32_t nparts = qt->num_partitions;
        bool clustered = cluster_enabled();
        int32_t *assignment = NULL, assignment_rf = 0;
        if (clustered && qt->assignments_count > 0) {
            /* Checked against the live brokers by the cluster. */
            nparts = qt->assignments_count;
            assignment_rf = qt->assignments[0].broker_ids_count;
            assignment = arena_alloc(
                &r->arena, (size_t)nparts * (size_t)(assignment_rf > 0 ? assignment_rf : 1) *
                               sizeof *assignment);
            if (!assignment)
                return KH_CLOSE;
            for (int32_t a = 0; a < nparts && code == KERR_NONE; a++) {
                if (qt->assignments[a].broker_ids_count != assignment_rf || assignment_rf < 1 ||
                    qt->assignments[a].partition_index != a) {
                    code = KERR_INVALID_REPLICA_ASSIGNMENT;
                    snprintf(err, sizeof err,
                             "partitions 0..%d, each with the same number of replicas",
                             (int)nparts - 1);
                    break;
                }
                memcpy(&assignment[a * assignment_rf], qt->assignments[a].broker_ids,
                       (size_t)assignment_rf * sizeof *assignment);
            }
        } else if (clustered) {
            /* The cluster checks the factor against the live brokers. */
        } else if (qt->assignments_count > 0) {
            for (int32_t a = 0; a < qt->assignments_count; a++)
                if (!assignment_ok(qt->assignments[a].broker_ids,
                                   qt->assignments[a].broker_ids_count, cfg->node_id)) {
                    code = KERR_INVALID_REPLICA_ASSIGNMENT;
                    snprintf(err, sizeof err, "replicas must be [%d]: this is a single broker",
                             cfg->node_id);
                }
            nparts = qt->assignments_count;
        } else if (qt->replication_factor != -1 && qt->replication_factor != 1) {
            code = KERR_INVALID_REPLICATION_FACTOR;
            snprintf(err, sizeof err, "replication factor %d is larger than the 1 broker",
                     qt->replication_factor);
        }
        struct config_overrides o = {0};
        for (int32_t c = 0; code == KERR_NONE && c < qt->configs_count; c++) {
            kstr_t k = qt->configs[c].name, v = qt->configs[c].value;
            if (k.len < 0 || v.len < 0)
                continue; /* a null value means "the default" */
            char *ks = arena_strndup(&r->arena, k.ptr, (size_t)k.len);
            char *vs = arena_strndup(&r->arena, v.ptr, (size_t)v.len);
            if (!ks || !vs || config_overrides_set(&o, ks, vs))
                code = KERR_UNKNOWN_SERVER_ERROR;
        }
        struct topic *t = NULL;
        if (code == KERR_NONE && qt->name.len < 0)
            code = KERR_INVALID_TOPIC_EXCEPTION;
        if (code == KERR_NONE)
            code = topics_create_replicated(qt->name.ptr, (size_t)qt->name.len, nparts,
                                            qt->replication_factor, assignment, assignment_rf, &o,
                                            req.validate_only, req.validate_only ? NULL : &t, err,
                                            sizeof err);
        config_overrides_free(&o);
        rt->error_code = code;
        rt->error_message = err_msg(r, code, err);
        if (code == KERR_NONE) {
            rt->num_partitions =
                t ? topic_read_partition_count(t) : (nparts > 0 ? nparts : cfg->num_partitions);
            /* As the partitions have it; a validated one would have one. */
            struct partition *p0 = t ? topic_read_partition(t, 0) : NULL;
            rt->replication_factor = p0 && p0->n_replicas > 0 ? (int16_t)p0->n_replicas : 1;
            if (clustered && !(p0 && p0->n_replicas > 0))
                rt->replication_factor =
                    assignment ? (int16_t)assignment_rf
                    : qt->replication_factor > 0
                        ? qt->replication_factor
                        : (int16_t)config_long(cfg, "default.replication.factor");
            if (t)
                rt->topic_id = t->id;
        }
        topic_put(t);
    }
    create_topics_response_encode(&r->out, r->hdr.api_version, &resp);
    return KH_DONE;
}

/* A topic by id (DeleteTopics v6 may name topics only by id). */
static struct topic *find_by_id(kuuid_t id)
{
    struct topic **ts;
    int n;
    struct topic *found = NULL;
    if (topics_list(&ts, &n))
        return NULL;
    for (int i = 0; i < n && !found; i++)
        if (!memcmp(ts[i]->id.b, id.b, 16)) {
            found = ts[i];
            atomic_fetch_add(&found->refs, 1);
        }
    topics_list_free(ts, n);
    return found;
}

int handle_delete_topics(struct kreq *r)
{
    struct delete_topics_request req;
    if (!KREQ_DECODE(r, delete_topics_request, &req))
        return KH_CLOSE;
    struct delete_topics_response resp;
    delete_topics_response_init(&resp);
    int16_t v = r->hdr.api_version;
    int32_t n = v >= 6 ? req.topics_count : req.topic_names_count;
    if (n < 0)
        n = 0;
    resp.responses = arena_alloc(&r->arena, (size_t)(n ? n : 1) * sizeof *resp.responses);
    if (!resp.responses)
        return KH_CLOSE;
    resp.responses_count = n;
    for (int32_t i = 0; i < n; i++) {
        struct delete_topics_response_deletable_topic_result *rt = &resp.responses[i];
        delete_topics_response_deletable_topic_result_init(rt);
        kstr_t name = v >= 6 ? req.topics[i].name : req.topic_names[i];
        if (name.len < 0 && v >= 6) {
            struct topic *t = find_by_id(req.topics[i].topic_id);
            rt->topic_id = req.topics[i].topic_id;
            if (!t) {
                rt->error_code = KERR_UNKNOWN_TOPIC_ID;
                continue;
            }
            char *s = arena_strndup(&r->arena, t->name, strlen(t->name));
            topic_put(t);
            name = s ? kstr_c(s) : name;
        }
        rt->name = name;
        if (name.len < 0) {
            rt->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
            continue;
        }
        struct topic *t = topics_get(name.ptr, (size_t)name.len);
        if (t) {
            rt->topic_id = t->id;
            topic_put(t);
        }
        char err[256];
        rt->error_code = topics_delete(name.ptr, (size_t)name.len, err, sizeof err);
        rt->error_message = err_msg(r, rt->error_code, err);
        if (rt->error_code == KERR_NONE)
            groups_forget_topic(name.ptr, (size_t)name.len);
    }
    delete_topics_response_encode(&r->out, v, &resp);
    return KH_DONE;
}

int handle_create_partitions(struct kreq *r)
{
    struct create_partitions_request req;
    if (!KREQ_DECODE(r, create_partitions_request, &req))
        return KH_CLOSE;
    const struct broker_config *cfg = topics_broker_config();
    struct create_partitions_response resp;
    create_partitions_response_init(&resp);
    int32_t nt = req.topics_count > 0 ? req.topics_count : 0;
    resp.results = arena_alloc(&r->arena, (size_t)(nt ? nt : 1) * sizeof *resp.results);
    if (!resp.results)
        return KH_CLOSE;
    resp.results_count = nt;
    for (int32_t i = 0; i < nt; i++) {
        struct create_partitions_request_create_partitions_topic *qt = &req.topics[i];
        struct create_partitions_response_create_partitions_topic_result *rt = &resp.results[i];
        create_partitions_response_create_partitions_topic_result_init(rt);
        rt->name = qt->name;
        char err[256] = "";
        int16_t code = KERR_NONE;
        /* Cluster mode: the cluster assigns the new partitions (an
         * explicit assignment is not supported yet and is ignored). */
        for (int32_t a = 0; !cluster_enabled() && a < qt->assignments_count; a++)
            if (!assignment_ok(qt->assignments[a].broker_ids, qt->assignments[a].broker_ids_count,
                               cfg->node_id)) {
                code = KERR_INVALID_REPLICA_ASSIGNMENT;
                snprintf(err, sizeof err, "replicas must be [%d]: this is a single broker",
                         cfg->node_id);
            }
        if (code == KERR_NONE && qt->name.len < 0)
            code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
        if (code == KERR_NONE)
            code = topics_add_partitions(qt->name.ptr, (size_t)qt->name.len, qt->count,
                                         req.validate_only, err, sizeof err);
        rt->error_code = code;
        rt->error_message = err_msg(r, code, err);
    }
    create_partitions_response_encode(&r->out, r->hdr.api_version, &resp);
    return KH_DONE;
}
