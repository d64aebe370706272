/*
 * DescribeConfigs, AlterConfigs, IncrementalAlterConfigs.
 *
 * Topic resources have Kafka's topic-level settings (broker/config.c);
 * overrides are stored with the topic and take effect at once.  The
 * broker resource is described (read-only): broker settings come from
 * the config file and --set and change with a restart.  Group resources
 * have the group settings (message.model, group/settings.c).
 */
#include <stdio.h>
#include <string.h>

#include "broker/topics.h"
#include "group/group.h"
#include "common/kerr.h"
#include "kafka/handlers.h"
#include "proto/gen/msgs.h"

#define RES_TOPIC 2
#define RES_BROKER 4
/*
 * Groups are resource type 32 since Kafka 3.8 (ConfigResource.Type.GROUP).
 * librdkafka (2.0, and confluent-kafka-python on it) sends its own
 * ResourceType enum, where GROUP is 3 (the ACL resource type); no config
 * resource has that number, so it is taken as a group too and answered
 * under the number it was asked with.
 */
#define RES_GROUP 32
#define RES_GROUP_LIBRDKAFKA 3
#define IS_GROUP(t) ((t) == RES_GROUP || (t) == RES_GROUP_LIBRDKAFKA)

/* ConfigSource values of Kafka's DescribeConfigs. */
#define SRC_DEFAULT_CONFIG 5
#define SRC_GROUP_CONFIG 8

enum { CT_BOOLEAN = 1, CT_STRING = 2, CT_INT = 3, CT_LONG = 5, CT_DOUBLE = 6, CT_LIST = 7 };

static int8_t config_type_code(enum config_type t)
{
    switch (t) {
    case CFG_BOOL:
        return CT_BOOLEAN;
    case CFG_INT:
        return CT_INT;
    case CFG_LONG:
        return CT_LONG;
    case CFG_LIST:
        return CT_LIST;
    case CFG_DOUBLE:
        return CT_DOUBLE;
    default:
        return CT_STRING;
    }
}

static kstr_t dup_str(struct kreq *r, const char *s)
{
    char *d = arena_strndup(&r->arena, s, strlen(s));
    return d ? kstr_c(d) : kstr_c("");
}

/* Is `key` among the keys asked for (a null list means all)? */
static bool wanted(const struct describe_configs_request_describe_configs_resource *q,
                   const char *key)
{
    if (q->configuration_keys_count < 0)
        return true;
    for (int32_t i = 0; i < q->configuration_keys_count; i++)
        if (kstr_eq(q->configuration_keys[i], key))
            return true;
    return false;
}

static void describe_topic(struct kreq *r, const struct describe_configs_request *req,
                           const struct describe_configs_request_describe_configs_resource *q,
                           struct describe_configs_response_describe_configs_result *out)
{
    const struct broker_config *cfg = topics_broker_config();
    struct topic *t = q->resource_name.len > 0
                          ? topics_get(q->resource_name.ptr, (size_t)q->resource_name.len)
                          : NULL;
    if (!t) {
        out->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
        out->error_message = kstr_c("unknown topic");
        return;
    }
    struct config_overrides o;
    if (topics_get_overrides(t, &o)) {
        topic_put(t);
        out->error_code = KERR_UNKNOWN_SERVER_ERROR;
        return;
    }
    out->configs = arena_alloc(&r->arena, (size_t)config_n_defs * sizeof *out->configs);
    out->configs_count = 0;
    for (int i = 0; out->configs && i < config_n_defs; i++) {
        const struct config_def *d = &config_defs[i];
        if (!d->topic_key || !wanted(q, d->topic_key))
            continue;
        const char *oval = config_overrides_get(&o, d->topic_key);
        if (!d->broker_key && !oval)
            continue; /* topic-only settings (view.*) show where they are set */
        struct describe_configs_response_describe_configs_resource_result *c =
            &out->configs[out->configs_count++];
        describe_configs_response_describe_configs_resource_result_init(c);
        enum config_source bsrc;
        const char *bval = config_broker_value_for_topic_key(cfg, d, &bsrc);
        c->name = kstr_c(d->topic_key);
        c->value = dup_str(r, oval ? oval : bval);
        c->config_source = (int8_t)(oval ? CFG_SRC_DYNAMIC_TOPIC : bsrc);
        c->is_default = !oval && bsrc == CFG_SRC_DEFAULT;
        c->config_type = config_type_code(d->type);
        if (req->include_documentation)
            c->documentation = kstr_c(d->doc);
        c->synonyms_count = 0;
        if (req->include_synonyms) {
            c->synonyms = arena_alloc(&r->arena, 2 * sizeof *c->synonyms);
            if (!c->synonyms)
                continue;
            if (oval) {
                describe_configs_response_describe_configs_synonym_init(&c->synonyms[0]);
                c->synonyms[0].name = c->name;
                c->synonyms[0].value = c->value;
                c->synonyms[0].source = CFG_SRC_DYNAMIC_TOPIC;
                c->synonyms_count++;
            }
            if (!d->broker_key)
                continue;
            struct describe_configs_response_describe_configs_synonym *s =
                &c->synonyms[c->synonyms_count++];
            describe_configs_response_describe_configs_synonym_init(s);
            s->name = kstr_c(d->broker_key);
            s->value = dup_str(r, bval);
            s->source = (int8_t)bsrc;
        }
    }
    config_overrides_free(&o);
    topic_put(t);
}

static void describe_broker(struct kreq *r, const struct describe_configs_request *req,
                            const struct describe_configs_request_describe_configs_resource *q,
                            struct describe_configs_response_describe_configs_result *out)
{
    const struct broker_config *cfg = topics_broker_config();
    char id[16];
    snprintf(id, sizeof id, "%d", cfg->node_id);
    if (q->resource_name.len > 0 && !kstr_eq(q->resource_name, id)) {
        out->error_code = KERR_INVALID_REQUEST;
        out->error_message = kstr_c("no such broker");
        return;
    }
    out->configs = arena_alloc(&r->arena, (size_t)config_n_defs * sizeof *out->configs);
    out->configs_count = 0;
    for (int i = 0; out->configs && i < config_n_defs; i++) {
        const struct config_def *d = &config_defs[i];
        if (!d->broker_key || !wanted(q, d->broker_key))
            continue;
        struct describe_configs_response_describe_configs_resource_result *c =
            &out->configs[out->configs_count++];
        describe_configs_response_describe_configs_resource_result_init(c);
        c->name = kstr_c(d->broker_key);
        c->value = dup_str(r, cfg->values[i]);
        c->read_only = true;
        c->config_source = (int8_t)cfg->sources[i];
        c->is_default = cfg->sources[i] == CFG_SRC_DEFAULT;
        c->config_type = config_type_code(d->type);
        if (req->include_documentation)
            c->documentation = kstr_c(d->doc);
        c->synonyms_count = 0;
    }
}

static void describe_group(struct kreq *r, const struct describe_configs_request *req,
                           const struct describe_configs_request_describe_configs_resource *q,
                           struct describe_configs_response_describe_configs_result *out)
{
    struct group_setting *gs;
    int32_t n;
    int16_t code = group_describe_settings(q->resource_name, &r->arena, &gs, &n);
    if (code) {
        out->error_code = code;
        out->error_message = kstr_c("the group id must not be empty");
        return;
    }
    out->configs = arena_alloc(&r->arena, (size_t)(n ? n : 1) * sizeof *out->configs);
    out->configs_count = 0;
    for (int32_t i = 0; out->configs && i < n; i++) {
        if (!wanted(q, gs[i].name))
            continue;
        struct describe_configs_response_describe_configs_resource_result *c =
            &out->configs[out->configs_count++];
        describe_configs_response_describe_configs_resource_result_init(c);
        c->name = kstr_c(gs[i].name);
        c->value = gs[i].value;
        c->read_only = gs[i].read_only;
        c->is_default = gs[i].is_default;
        c->config_source = (int8_t)(gs[i].is_default ? SRC_DEFAULT_CONFIG : SRC_GROUP_CONFIG);
        c->config_type = gs[i].read_only ? CT_LIST : CT_STRING;
        if (req->include_documentation)
            c->documentation = kstr_c(gs[i].doc);
        c->synonyms_count = 0;
    }
}

int handle_describe_configs(struct kreq *r)
{
    struct describe_configs_request req;
    if (!KREQ_DECODE(r, describe_configs_request, &req))
        return KH_CLOSE;
    struct describe_configs_response resp;
    describe_configs_response_init(&resp);
    int32_t n = req.resources_count > 0 ? req.resources_count : 0;
    resp.results = arena_alloc(&r->arena, (size_t)(n ? n : 1) * sizeof *resp.results);
    if (!resp.results)
        return KH_CLOSE;
    resp.results_count = n;
    for (int32_t i = 0; i < n; i++) {
        struct describe_configs_request_describe_configs_resource *q = &req.resources[i];
        struct describe_configs_response_describe_configs_result *out = &resp.results[i];
        describe_configs_response_describe_configs_result_init(out);
        out->resource_type = q->resource_type;
        out->resource_name = q->resource_name;
        out->configs_count = 0;
        if (q->resource_type == RES_TOPIC)
            describe_topic(r, &req, q, out);
        else if (q->resource_type == RES_BROKER)
            describe_broker(r, &req, q, out);
        else if (IS_GROUP(q->resource_type))
            describe_group(r, &req, q, out);
        else {
            out->error_code = KERR_INVALID_REQUEST;
            out->error_message = kstr_c("unsupported resource type");
        }
    }
    describe_configs_response_encode(&r->out, r->hdr.api_version, &resp);
    return KH_DONE;
}

/* Applies an edited override set to a topic resource. */
static int16_t apply_topic(struct kreq *r, kstr_t name, const struct config_overrides *o,
                           bool validate_only, kstr_t *msg)
{
    char err[256] = "";
    int16_t code = name.len > 0 ? topics_set_overrides(name.ptr, (size_t)name.len, o, validate_only,
                                                       err, sizeof err)
                                : KERR_UNKNOWN_TOPIC_OR_PARTITION;
    *msg = code && err[0] ? dup_str(r, err) : (kstr_t){NULL, -1};
    return code;
}

/* Applies setting changes to a group resource. */
static int16_t apply_group(struct kreq *r, kstr_t name, const struct group_setting_op *ops,
                           int32_t n, bool replace, bool validate_only, kstr_t *msg)
{
    char err[300] = "";
    int16_t code = group_alter_settings(name, ops, n, replace, validate_only, err, sizeof err);
    *msg = code && err[0] ? dup_str(r, err) : (kstr_t){NULL, -1};
    return code;
}

static int16_t not_topic(struct kreq *r, int8_t type, kstr_t *msg)
{
    *msg = dup_str(r, type == RES_BROKER
                          ? "broker settings are static: change them in the config file "
                            "or with --set and restart"
                          : "unsupported resource type");
    return KERR_INVALID_REQUEST;
}

int handle_alter_configs(struct kreq *r)
{
    struct alter_configs_request req;
    if (!KREQ_DECODE(r, alter_configs_request, &req))
        return KH_CLOSE;
    struct alter_configs_response resp;
    alter_configs_response_init(&resp);
    int32_t n = req.resources_count > 0 ? req.resources_count : 0;
    resp.responses = arena_alloc(&r->arena, (size_t)(n ? n : 1) * sizeof *resp.responses);
    if (!resp.responses)
        return KH_CLOSE;
    resp.responses_count = n;
    for (int32_t i = 0; i < n; i++) {
        struct alter_configs_request_alter_configs_resource *q = &req.resources[i];
        struct alter_configs_response_alter_configs_resource_response *out = &resp.responses[i];
        alter_configs_response_alter_configs_resource_response_init(out);
        out->resource_type = q->resource_type;
        out->resource_name = q->resource_name;
        if (IS_GROUP(q->resource_type)) {
            /* The whole set: what is not named goes back to its default. */
            int32_t nc = q->configs_count > 0 ? q->configs_count : 0;
            struct group_setting_op *ops =
                arena_alloc(&r->arena, (size_t)(nc ? nc : 1) * sizeof *ops);
            if (!ops)
                return KH_CLOSE;
            for (int32_t c = 0; c < nc; c++) {
                ops[c].name = q->configs[c].name;
                ops[c].value = q->configs[c].value;
            }
            out->error_code = apply_group(r, q->resource_name, ops, nc, true, req.validate_only,
                                          &out->error_message);
            continue;
        }
        if (q->resource_type != RES_TOPIC) {
            out->error_code = not_topic(r, q->resource_type, &out->error_message);
            continue;
        }
        /* AlterConfigs replaces the whole set of overrides. */
        struct config_overrides o = {0};
        for (int32_t c = 0; c < q->configs_count; c++) {
            kstr_t k = q->configs[c].name, v = q->configs[c].value;
            if (k.len < 0 || v.len < 0)
                continue;
            char *ks = arena_strndup(&r->arena, k.ptr, (size_t)k.len);
            char *vs = arena_strndup(&r->arena, v.ptr, (size_t)v.len);
            if (ks && vs)
                config_overrides_set(&o, ks, vs);
        }
        out->error_code =
            apply_topic(r, q->resource_name, &o, req.validate_only, &out->error_message);
        config_overrides_free(&o);
    }
    alter_configs_response_encode(&r->out, r->hdr.api_version, &resp);
    return KH_DONE;
}

enum { OP_SET = 0, OP_DELETE = 1, OP_APPEND = 2, OP_SUBTRACT = 3 };

int handle_incremental_alter_configs(struct kreq *r)
{
    struct incremental_alter_configs_request req;
    if (!KREQ_DECODE(r, incremental_alter_configs_request, &req))
        return KH_CLOSE;
    struct incremental_alter_configs_response resp;
    incremental_alter_configs_response_init(&resp);
    int32_t n = req.resources_count > 0 ? req.resources_count : 0;
    resp.responses = arena_alloc(&r->arena, (size_t)(n ? n : 1) * sizeof *resp.responses);
    if (!resp.responses)
        return KH_CLOSE;
    resp.responses_count = n;
    for (int32_t i = 0; i < n; i++) {
        struct incremental_alter_configs_request_alter_configs_resource *q = &req.resources[i];
        struct incremental_alter_configs_response_alter_configs_resource_response *out =
            &resp.responses[i];
        incremental_alter_configs_response_alter_configs_resource_response_init(out);
        out->resource_type = q->resource_type;
        out->resource_name = q->resource_name;
        if (IS_GROUP(q->resource_type)) {
            int32_t nc = q->configs_count > 0 ? q->configs_count : 0;
            struct group_setting_op *ops =
                arena_alloc(&r->arena, (size_t)(nc ? nc : 1) * sizeof *ops);
            if (!ops)
                return KH_CLOSE;
            int16_t code = KERR_NONE;
            for (int32_t c = 0; c < nc && !code; c++) {
                struct incremental_alter_configs_request_alterable_config *ac = &q->configs[c];
                ops[c].name = ac->name;
                if (ac->config_operation == OP_DELETE) {
                    ops[c].value = (kstr_t){NULL, -1};
                } else if (ac->config_operation == OP_SET && ac->value.len >= 0) {
                    ops[c].value = ac->value;
                } else {
                    code = KERR_INVALID_REQUEST;
                    out->error_message =
                        dup_str(r, ac->config_operation == OP_SET
                                       ? "SET needs a value"
                                       : "only SET and DELETE operations are supported");
                }
            }
            if (!code)
                code = apply_group(r, q->resource_name, ops, nc, false, req.validate_only,
                                   &out->error_message);
            out->error_code = code;
            continue;
        }
        if (q->resource_type != RES_TOPIC) {
            out->error_code = not_topic(r, q->resource_type, &out->error_message);
            continue;
        }
        struct topic *t = q->resource_name.len > 0
                              ? topics_get(q->resource_name.ptr, (size_t)q->resource_name.len)
                              : NULL;
        struct config_overrides o = {0};
        if (!t || topics_get_overrides(t, &o)) {
            topic_put(t);
            out->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
            continue;
        }
        topic_put(t);
        int16_t code = KERR_NONE;
        for (int32_t c = 0; c < q->configs_count && code == KERR_NONE; c++) {
            struct incremental_alter_configs_request_alterable_config *ac = &q->configs[c];
            char *k = ac->name.len >= 0
                          ? arena_strndup(&r->arena, ac->name.ptr, (size_t)ac->name.len)
                          : NULL;
            char *v = ac->value.len >= 0
                          ? arena_strndup(&r->arena, ac->value.ptr, (size_t)ac->value.len)
                          : NULL;
            if (!k) {
                code = KERR_INVALID_REQUEST;
                break;
            }
            if (ac->config_operation == OP_DELETE)
                config_overrides_unset(&o, k);
            else if (ac->config_operation == OP_SET && v)
                config_overrides_set(&o, k, v);
            else {
                /* APPEND/SUBTRACT apply to list settings only, which here
                 * is cleanup.policy; not worth the surprise of half support. */
                code = KERR_INVALID_REQUEST;
                out->error_message = dup_str(r, "only SET and DELETE operations are supported");
            }
        }
        if (code == KERR_NONE)
            code = apply_topic(r, q->resource_name, &o, req.validate_only, &out->error_message);
        out->error_code = code;
        config_overrides_free(&o);
    }
    incremental_alter_configs_response_encode(&r->out, r->hdr.api_version, &resp);
    return KH_DONE;
}
