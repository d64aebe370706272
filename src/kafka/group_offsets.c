/*
 * OffsetCommit, OffsetFetch, OffsetDelete.  The request header's
 * client.id goes to the coordinator too: in a broadcast group it names
 * the instance a request without a member id is for (group/offsets.c).
 */
#include <string.h>

#include "group/group.h"
#include "common/kerr.h"
#include "kafka/handlers.h"
#include "proto/gen/msgs.h"

int handle_offset_commit(struct kreq *r)
{
    struct offset_commit_request req;
    if (!KREQ_DECODE(r, offset_commit_request, &req))
        return KH_CLOSE;
    int16_t v = r->hdr.api_version;
    int32_t nt = req.topics_count > 0 ? req.topics_count : 0, total = 0;
    for (int32_t i = 0; i < nt; i++)
        total += req.topics[i].partitions_count > 0 ? req.topics[i].partitions_count : 0;
    struct group_offset *offs = arena_alloc(&r->arena, (size_t)(total ? total : 1) * sizeof *offs);
    struct offset_commit_response resp;
    offset_commit_response_init(&resp);
    resp.topics = arena_alloc(&r->arena, (size_t)(nt ? nt : 1) * sizeof *resp.topics);
    if (!offs || !resp.topics)
        return KH_CLOSE;
    int32_t k = 0;
    for (int32_t i = 0; i < nt; i++)
        for (int32_t j = 0; j < req.topics[i].partitions_count; j++, k++) {
            struct offset_commit_request_offset_commit_request_partition *p =
                &req.topics[i].partitions[j];
            offs[k].topic = req.topics[i].name;
            offs[k].partition = p->partition_index;
            offs[k].offset = p->committed_offset;
            offs[k].leader_epoch = v >= 6 ? p->committed_leader_epoch : -1;
            offs[k].metadata = p->committed_metadata;
        }
    /* v0 predates generations: a commit from outside the protocol. */
    int32_t generation = v >= 1 ? req.generation_id_or_member_epoch : -1;
    kstr_t member = v >= 1 ? req.member_id : (kstr_t){"", 0};
    group_commit_as(req.group_id, r->hdr.client_id, generation, member, req.group_instance_id, offs,
                    total);
    resp.topics_count = nt;
    k = 0;
    for (int32_t i = 0; i < nt; i++) {
        struct offset_commit_response_offset_commit_response_topic *t = &resp.topics[i];
        offset_commit_response_offset_commit_response_topic_init(t);
        t->name = req.topics[i].name;
        int32_t np = req.topics[i].partitions_count > 0 ? req.topics[i].partitions_count : 0;
        t->partitions = arena_alloc(&r->arena, (size_t)(np ? np : 1) * sizeof *t->partitions);
        if (!t->partitions)
            return KH_CLOSE;
        t->partitions_count = np;
        for (int32_t j = 0; j < np; j++, k++) {
            offset_commit_response_offset_commit_response_partition_init(&t->partitions[j]);
            t->partitions[j].partition_index = offs[k].partition;
            t->partitions[j].error_code = offs[k].error;
        }
    }
    offset_commit_response_encode(&r->out, v, &resp);
    return KH_DONE;
}

/* One group's answer: the asked partitions, or every committed one. */
static int fetch_group(struct kreq *r, kstr_t group, const kstr_t *topic_names,
                       int32_t *const *parts, const int32_t *parts_count, int32_t nt,
                       struct offset_fetch_response_offset_fetch_response_topics **out_topics,
                       int32_t *out_count)
{
    struct group_offset *offs;
    int32_t total = 0;
    if (nt < 0) {
        group_all_offsets_as(group, r->hdr.client_id, &r->arena, &offs, &total);
    } else {
        for (int32_t i = 0; i < nt; i++)
            total += parts_count[i] > 0 ? parts_count[i] : 0;
        offs = arena_alloc(&r->arena, (size_t)(total ? total : 1) * sizeof *offs);
        if (!offs)
            return -1;
        int32_t k = 0;
        for (int32_t i = 0; i < nt; i++)
            for (int32_t j = 0; j < parts_count[i]; j++, k++) {
                offs[k].topic = topic_names[i];
                offs[k].partition = parts[i][j];
            }
        group_fetch_offsets_as(group, r->hdr.client_id, offs, total, &r->arena);
    }
    /* Group the flat list back by topic (the list is sorted by topic). */
    struct offset_fetch_response_offset_fetch_response_topics *ts =
        arena_alloc(&r->arena, (size_t)(total ? total : 1) * sizeof *ts);
    if (!ts)
        return -1;
    int32_t n = 0;
    for (int32_t k = 0; k < total;) {
        int32_t e = k;
        while (e < total && offs[e].topic.len == offs[k].topic.len &&
               !memcmp(offs[e].topic.ptr, offs[k].topic.ptr, (size_t)offs[k].topic.len))
            e++;
        struct offset_fetch_response_offset_fetch_response_topics *t = &ts[n++];
        offset_fetch_response_offset_fetch_response_topics_init(t);
        t->name = offs[k].topic;
        t->partitions = arena_alloc(&r->arena, (size_t)(e - k) * sizeof *t->partitions);
        if (!t->partitions)
            return -1;
        t->partitions_count = e - k;
        for (int32_t j = k; j < e; j++) {
            struct offset_fetch_response_offset_fetch_response_partitions *p =
                &t->partitions[j - k];
            offset_fetch_response_offset_fetch_response_partitions_init(p);
            p->partition_index = offs[j].partition;
            p->committed_offset = offs[j].offset;
            p->committed_leader_epoch = offs[j].leader_epoch;
            p->metadata = offs[j].metadata;
            p->error_code = offs[j].error;
        }
        k = e;
    }
    *out_topics = ts;
    *out_count = n;
    return 0;
}

int handle_offset_fetch(struct kreq *r)
{
    struct offset_fetch_request req;
    if (!KREQ_DECODE(r, offset_fetch_request, &req))
        return KH_CLOSE;
    int16_t v = r->hdr.api_version;
    struct offset_fetch_response resp;
    offset_fetch_response_init(&resp);
    if (v >= 8) {
        /* Several groups in one request (KIP-709). */
        int32_t ng = req.groups_count > 0 ? req.groups_count : 0;
        resp.groups = arena_alloc(&r->arena, (size_t)(ng ? ng : 1) * sizeof *resp.groups);
        if (!resp.groups)
            return KH_CLOSE;
        resp.groups_count = ng;
        for (int32_t g = 0; g < ng; g++) {
            struct offset_fetch_request_offset_fetch_request_group *q = &req.groups[g];
            struct offset_fetch_response_offset_fetch_response_group *out = &resp.groups[g];
            offset_fetch_response_offset_fetch_response_group_init(out);
            out->group_id = q->group_id;
            int32_t nt = q->topics_count;
            kstr_t *names = arena_alloc(&r->arena, (size_t)(nt > 0 ? nt : 1) * sizeof *names);
            int32_t **parts = arena_alloc(&r->arena, (size_t)(nt > 0 ? nt : 1) * sizeof *parts);
            int32_t *counts = arena_alloc(&r->arena, (size_t)(nt > 0 ? nt : 1) * sizeof *counts);
            if (!names || !parts || !counts)
                return KH_CLOSE;
            for (int32_t i = 0; i < nt; i++) {
                names[i] = q->topics[i].name;
                parts[i] = q->topics[i].partition_indexes;
                counts[i] = q->topics[i].partition_indexes_count;
            }
            if (fetch_group(r, q->group_id, names, parts, counts, nt, &out->topics,
                            &out->topics_count))
                return KH_CLOSE;
        }
    } else {
        int32_t nt = req.topics_count;
        kstr_t *names = arena_alloc(&r->arena, (size_t)(nt > 0 ? nt : 1) * sizeof *names);
        int32_t **parts = arena_alloc(&r->arena, (size_t)(nt > 0 ? nt : 1) * sizeof *parts);
        int32_t *counts = arena_alloc(&r->arena, (size_t)(nt > 0 ? nt : 1) * sizeof *counts);
        if (!names || !parts || !counts)
            return KH_CLOSE;
        for (int32_t i = 0; i < nt; i++) {
            names[i] = req.topics[i].name;
            parts[i] = req.topics[i].partition_indexes;
            counts[i] = req.topics[i].partition_indexes_count;
        }
        struct offset_fetch_response_offset_fetch_response_topics *ts;
        int32_t n;
        if (fetch_group(r, req.group_id, names, parts, counts, nt, &ts, &n))
            return KH_CLOSE;
        /* v0-7 use a struct of the same shape under another name. */
        resp.topics = arena_alloc(&r->arena, (size_t)(n ? n : 1) * sizeof *resp.topics);
        if (!resp.topics)
            return KH_CLOSE;
        resp.topics_count = n;
        for (int32_t i = 0; i < n; i++) {
            offset_fetch_response_offset_fetch_response_topic_init(&resp.topics[i]);
            resp.topics[i].name = ts[i].name;
            resp.topics[i].partitions_count = ts[i].partitions_count;
            resp.topics[i].partitions = arena_alloc(
                &r->arena, (size_t)(ts[i].partitions_count ? ts[i].partitions_count : 1) *
                               sizeof *resp.topics[i].partitions);
            if (!resp.topics[i].partitions)
                return KH_CLOSE;
            for (int32_t j = 0; j < ts[i].partitions_count; j++) {
                struct offset_fetch_response_offset_fetch_response_partition *p =
                    &resp.topics[i].partitions[j];
                offset_fetch_response_offset_fetch_response_partition_init(p);
                p->partition_index = ts[i].partitions[j].partition_index;
                p->committed_offset = ts[i].partitions[j].committed_offset;
                p->committed_leader_epoch = ts[i].partitions[j].committed_leader_epoch;
                p->metadata = ts[i].partitions[j].metadata;
                p->error_code = ts[i].partitions[j].error_code;
            }
        }
    }
    offset_fetch_response_encode(&r->out, v, &resp);
    return KH_DONE;
}

int handle_offset_delete(struct kreq *r)
{
    struct offset_delete_request req;
    if (!KREQ_DECODE(r, offset_delete_request, &req))
        return KH_CLOSE;
    int32_t nt = req.topics_count > 0 ? req.topics_count : 0, total = 0;
    for (int32_t i = 0; i < nt; i++)
        total += req.topics[i].partitions_count > 0 ? req.topics[i].partitions_count : 0;
    struct group_offset *offs = arena_alloc(&r->arena, (size_t)(total ? total : 1) * sizeof *offs);
    struct offset_delete_response resp;
    offset_delete_response_init(&resp);
    resp.topics = arena_alloc(&r->arena, (size_t)(nt ? nt : 1) * sizeof *resp.topics);
    if (!offs || !resp.topics)
        return KH_CLOSE;
    int32_t k = 0;
    for (int32_t i = 0; i < nt; i++)
        for (int32_t j = 0; j < req.topics[i].partitions_count; j++, k++) {
            offs[k].topic = req.topics[i].name;
            offs[k].partition = req.topics[i].partitions[j].partition_index;
        }
    resp.error_code = group_delete_offsets(req.group_id, offs, total);
    resp.topics_count = nt;
    k = 0;
    for (int32_t i = 0; i < nt; i++) {
        offset_delete_response_offset_delete_response_topic_init(&resp.topics[i]);
        resp.topics[i].name = req.topics[i].name;
        int32_t np = req.topics[i].partitions_count > 0 ? req.topics[i].partitions_count : 0;
        resp.topics[i].partitions =
            arena_alloc(&r->arena, (size_t)(np ? np : 1) * sizeof *resp.topics[i].partitions);
        if (!resp.topics[i].partitions)
            return KH_CLOSE;
        resp.topics[i].partitions_count = np;
        for (int32_t j = 0; j < np; j++, k++) {
            offset_delete_response_offset_delete_response_partition_init(
                &resp.topics[i].partitions[j]);
            resp.topics[i].partitions[j].partition_index = offs[k].partition;
            resp.topics[i].partitions[j].error_code = resp.error_code ? 0 : offs[k].error;
        }
    }
    offset_delete_response_encode(&r->out, r->hdr.api_version, &resp);
    return KH_DONE;
}
