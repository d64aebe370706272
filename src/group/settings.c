/*
 * Group settings: what DescribeConfigs, AlterConfigs and
 * IncrementalAlterConfigs read and change on a GROUP resource, and what
 * `runnel group config` shows.
 *
 *   message.model        CLUSTERING (default): members share the
 *                        partitions, as in any Kafka group;
 *                        BROADCASTING: every member gets every partition
 *                        and its own offsets (broadcast.c).  RocketMQ's
 *                        names; values are taken in any case.
 *   broadcast.instances  read-only: the instances that have committed
 *                        offsets, comma-separated, '%' and ',' in a name
 *                        written %25 and %2C.
 *
 * Settings are durable as a record in __consumer_offsets (store.c), so
 * they survive a restart and go with the group when it is deleted.  A
 * group can be configured before its first member joins.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/rlog.h"
#include "group/group_int.h"
#include "common/kerr.h"

#define MODEL_KEY "message.model"
#define INSTANCES_KEY "broadcast.instances"

static const char model_doc[] =
    "How the group hands out partitions: CLUSTERING (members share them) or BROADCASTING "
    "(every member receives every partition and keeps its own offsets).";
static const char instances_doc[] =
    "The instances of a BROADCASTING group that have committed offsets (read-only).";

static const char *model_name(enum group_model m)
{
    return m == GM_BROADCASTING ? "BROADCASTING" : "CLUSTERING";
}

static int parse_model(kstr_t v, enum group_model *out)
{
    if (v.len == 10 && !strncasecmp(v.ptr, "CLUSTERING", 10))
        *out = GM_CLUSTERING;
    else if (v.len == 12 && !strncasecmp(v.ptr, "BROADCASTING", 12))
        *out = GM_BROADCASTING;
    else
        return -1;
    return 0;
}

/* The instance names, escaped and comma-separated, in arena. */
static kstr_t instance_list(struct group *g, arena_t *a)
{
    size_t cap = 1;
    for (int i = 0; g && i < g->n_inst; i++)
        cap += strlen(g->inst[i]->id) * 3 + 1;
    char *s = arena_alloc(a, cap);
    if (!s)
        return kstr_c("");
    size_t n = 0;
    for (int i = 0; g && i < g->n_inst; i++) {
        if (i)
            s[n++] = ',';
        for (const char *p = g->inst[i]->id; *p; p++) {
            if (*p == '%' || *p == ',') {
                n += (size_t)snprintf(s + n, cap - n, "%%%02X", (unsigned char)*p);
            } else {
                s[n++] = *p;
            }
        }
    }
    s[n] = 0;
    return (kstr_t){s, (int32_t)n};
}

int16_t group_describe_settings(kstr_t group_id, arena_t *a, struct group_setting **out, int32_t *n)
{
    *out = NULL;
    *n = 0;
    if (group_id.len <= 0)
        return KERR_INVALID_GROUP_ID;
    struct group_setting *s = arena_alloc(a, 2 * sizeof *s);
    if (!s)
        return KERR_UNKNOWN_SERVER_ERROR;
    pthread_mutex_lock(&gc.mu);
    struct group *g = group_find(group_id.ptr, (size_t)group_id.len);
    s[0] = (struct group_setting){
        .name = MODEL_KEY,
        .value = kstr_c(model_name(g ? g->model : GM_CLUSTERING)),
        .is_default = !g || !g->model_set,
        .doc = model_doc,
    };
    s[1] = (struct group_setting){
        .name = INSTANCES_KEY,
        .value = instance_list(g, a),
        .is_default = !g || g->n_inst == 0,
        .read_only = true,
        .doc = instances_doc,
    };
    pthread_mutex_unlock(&gc.mu);
    *out = s;
    *n = 2;
    return KERR_NONE;
}

int16_t group_alter_settings(kstr_t group_id, const struct group_setting_op *ops, int32_t n,
                             bool replace, bool validate_only, char *err, size_t errlen)
{
    err[0] = 0;
    if (group_id.len <= 0) {
        snprintf(err, errlen, "the group id must not be empty");
        return KERR_INVALID_GROUP_ID;
    }
    bool touched = false, set = false;
    enum group_model model = GM_CLUSTERING;
    for (int32_t i = 0; i < n; i++) {
        kstr_t k = ops[i].name, v = ops[i].value;
        if (kstr_eq(k, MODEL_KEY)) {
            touched = true;
            set = v.len >= 0;
            model = GM_CLUSTERING;
            if (set && parse_model(v, &model)) {
                snprintf(err, errlen, "invalid value '%.*s' for %s: CLUSTERING or BROADCASTING",
                         v.len > 100 ? 100 : (int)v.len, v.ptr, MODEL_KEY);
                return KERR_INVALID_CONFIG;
            }
        } else if (kstr_eq(k, INSTANCES_KEY)) {
            snprintf(err, errlen, "%s is read-only", INSTANCES_KEY);
            return KERR_INVALID_CONFIG;
        } else {
            snprintf(err, errlen, "unknown group config '%.*s' (groups have %s)",
                     k.len > 100 ? 100 : (k.len < 0 ? 0 : (int)k.len), k.len > 0 ? k.ptr : "",
                     MODEL_KEY);
            return KERR_INVALID_CONFIG;
        }
    }
    pthread_mutex_lock(&gc.mu);
    int16_t code = KERR_NONE;
    struct group *g = group_find(group_id.ptr, (size_t)group_id.len);
    enum group_model old_model = g ? g->model : GM_CLUSTERING;
    bool old_set = g && g->model_set;
    if (!touched && !replace) {
        set = old_set;
        model = old_model;
    }
    if (g && model == GM_BROADCASTING && old_model != GM_BROADCASTING)
        code = broadcast_check_members(g, err, errlen);
    if (code || validate_only || (model == old_model && set == old_set) || (!g && !set))
        goto out;
    if (!g)
        g = group_get_or_create(group_id.ptr, (size_t)group_id.len);
    g->model = model;
    g->model_set = set;
    if (store_group_settings(g)) {
        g->model = old_model;
        g->model_set = old_set;
        snprintf(err, errlen, "cannot write to %s", GROUP_OFFSETS_TOPIC);
        code = KERR_UNKNOWN_SERVER_ERROR;
        goto out;
    }
    rlog_info("group %s: %s=%s%s", g->id, MODEL_KEY, model_name(model), set ? "" : " (default)");
    if (model != old_model && g->n > 0)
        group_prepare_rebalance(g, MODEL_KEY " changed");
    /* A group that existed only for its setting goes with it. */
    if (!set && g->n == 0 && g->n_pending == 0 && g->n_offs == 0 && g->n_inst == 0 &&
        g->generation == 0)
        group_remove(g);
out:
    pthread_mutex_unlock(&gc.mu);
    return code;
}
