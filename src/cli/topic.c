/*
 * runnel topic: create, list, describe, alter and delete topics through
 * librdkafka's admin API (CreateTopics, Metadata, DescribeConfigs,
 * ListOffsets, CreatePartitions, AlterConfigs, DeleteTopics).
 *
 * librdkafka 2.0 has no IncrementalAlterConfigs, and AlterConfigs
 * replaces a topic's whole set of overrides, so `alter --config` reads
 * the current overrides first and sends the merged set.  Two concurrent
 * alters can therefore lose one of the changes; that is the price of the
 * older API and the same as kafka-configs.sh against old brokers.
 */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_util.h"

#define PROG "runnel topic"

/* Watermark queries in describe; the broker answers from memory. */
#define WATERMARK_TIMEOUT_MS 10000

static const char usage_text[] =
    "usage: runnel topic <command> [options]\n"
    "\n"
    "  create NAME [--partitions N] [--replication-factor 1] [--config K=V]... [--if-not-exists]\n"
    "        create a topic (partitions default to the broker's num.partitions)\n"
    "  list [--all]\n"
    "        topic names, one per line, sorted; --all includes internal \"__\" topics\n"
    "  describe [NAME]... [--all]\n"
    "        partitions, leaders, offsets and the topic's own configs (all topics by default)\n"
    "  alter NAME [--partitions N] [--config K=V]... [--delete-config K]...\n"
    "        grow the partition count, set or remove topic configs\n"
    "  delete NAME...\n"
    "        delete topics\n"
    "\n" CLI_COMMON_HELP;

enum {
    OPT_PARTITIONS = 1,
    OPT_REPLICATION,
    OPT_CONFIG,
    OPT_DELETE_CONFIG,
    OPT_IF_NOT_EXISTS,
    OPT_ALL,
};

/* Each subcommand accepts only the options that mean something to it. */
static const struct cli_opt create_opts[] = {
    {"partitions", 'p', 1, OPT_PARTITIONS},
    {"replication-factor", 'r', 1, OPT_REPLICATION},
    {"config", 'c', 1, OPT_CONFIG},
    {"if-not-exists", 0, 0, OPT_IF_NOT_EXISTS},
    CLI_COMMON_OPTS,
    {0},
};
static const struct cli_opt list_opts[] = {
    {"all", 'a', 0, OPT_ALL},
    CLI_COMMON_OPTS,
    {0},
};
static const struct cli_opt alter_opts[] = {
    {"partitions", 'p', 1, OPT_PARTITIONS},
    {"config", 'c', 1, OPT_CONFIG},
    {"delete-config", 0, 1, OPT_DELETE_CONFIG},
    CLI_COMMON_OPTS,
    {0},
};
static const struct cli_opt delete_opts[] = {
    CLI_COMMON_OPTS,
    {0},
};

/* A small growable list of key/value strings: topic config overrides. */
struct kv {
    char *key;
    char *value; /* NULL for a null config value */
};

struct kv_list {
    struct kv *items;
    size_t n, cap;
};

static int kv_set(struct kv_list *l, const char *key, const char *value)
{
    char *v = value ? strdup(value) : NULL;
    if (value && !v)
        return -1;
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->items[i].key, key)) {
            free(l->items[i].value);
            l->items[i].value = v;
            return 0;
        }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        struct kv *items = realloc(l->items, cap * sizeof *items);
        if (!items) {
            free(v);
            return -1;
        }
        l->items = items;
        l->cap = cap;
    }
    char *k = strdup(key);
    if (!k) {
        free(v);
        return -1;
    }
    l->items[l->n].key = k;
    l->items[l->n].value = v;
    l->n++;
    return 0;
}

static void kv_del(struct kv_list *l, const char *key)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->items[i].key, key)) {
            free(l->items[i].key);
            free(l->items[i].value);
            l->items[i] = l->items[--l->n];
            return;
        }
}

static void kv_free(struct kv_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i].key);
        free(l->items[i].value);
    }
    free(l->items);
    memset(l, 0, sizeof *l);
}

static int kv_cmp(const void *a, const void *b)
{
    return strcmp(((const struct kv *)a)->key, ((const struct kv *)b)->key);
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Options and positional names of one topic subcommand. */
struct topic_args {
    struct cli_client client;
    const char **names;
    int nnames;
    int64_t partitions; /* -1: not given */
    int64_t replication;
    const char **sets; /* "K=V" strings, validated */
    int nsets;
    const char **deletes;
    int ndeletes;
    int if_not_exists;
    int all;
    int help;
};

static int parse_topic_args(struct topic_args *ta, const struct cli_opt *opts, int argc,
                            char **argv)
{
    struct cli_args a;
    const char *val;
    int id;
    /* argv holds at most argc names, sets or deletes. */
    ta->names = calloc((size_t)argc + 1, sizeof *ta->names);
    ta->sets = calloc((size_t)argc + 1, sizeof *ta->sets);
    ta->deletes = calloc((size_t)argc + 1, sizeof *ta->deletes);
    if (!ta->names || !ta->sets || !ta->deletes) {
        cli_error(PROG, "out of memory");
        return CLI_FAIL;
    }
    ta->partitions = -1;
    ta->replication = -1;
    cli_args_init(&a, PROG, argc, argv, 2);
    while ((id = cli_next(&a, opts, &val)) != CLI_ARG_END) {
        switch (id) {
        case CLI_ARG_ERROR:
            return CLI_USAGE;
        case CLI_ARG_POSITIONAL:
            ta->names[ta->nnames++] = val;
            break;
        case OPT_PARTITIONS:
            if (cli_parse_int64(PROG, "--partitions", val, 1, 1000000, &ta->partitions))
                return CLI_USAGE;
            break;
        case OPT_REPLICATION:
            if (cli_parse_int64(PROG, "--replication-factor", val, 1, 32767, &ta->replication))
                return CLI_USAGE;
            break;
        case OPT_CONFIG: {
            const char *v;
            char *k = cli_split_kv(PROG, "--config", val, &v);
            if (!k)
                return CLI_USAGE;
            free(k);
            ta->sets[ta->nsets++] = val;
            break;
        }
        case OPT_DELETE_CONFIG:
            if (!*val)
                return cli_usage_error(PROG, "empty --delete-config");
            ta->deletes[ta->ndeletes++] = val;
            break;
        case OPT_IF_NOT_EXISTS:
            ta->if_not_exists = 1;
            break;
        case OPT_ALL:
            ta->all = 1;
            break;
        case CLI_OPT_HELP:
            ta->help = 1;
            break;
        default:
            if (cli_common_opt(&ta->client, id, val) < 0)
                return CLI_USAGE;
        }
    }
    return CLI_OK;
}

static void free_topic_args(struct topic_args *ta)
{
    free(ta->names);
    free(ta->sets);
    free(ta->deletes);
}

/* An admin client with the broker known to answer; CLI_OK or CLI_FAIL. */
/* A topic's own overrides, not broker or built-in defaults.  Brokers
 * answering DescribeConfigs v0 give no source, only is_default. */
static int is_topic_override(const rd_kafka_ConfigEntry_t *e)
{
    rd_kafka_ConfigSource_t src = rd_kafka_ConfigEntry_source(e);
    if (src == RD_KAFKA_CONFIG_SOURCE_DYNAMIC_TOPIC_CONFIG)
        return 1;
    return src == RD_KAFKA_CONFIG_SOURCE_UNKNOWN_CONFIG && !rd_kafka_ConfigEntry_is_default(e);
}

/* The config overrides of each named topic, into out[0..n). */
static int describe_overrides(struct cli_client *c, const char **names, int n, struct kv_list *out)
{
    int rc = CLI_FAIL;
    rd_kafka_ConfigResource_t **res = calloc((size_t)n, sizeof *res);
    if (!res) {
        cli_error(PROG, "out of memory");
        return CLI_FAIL;
    }
    for (int i = 0; i < n; i++)
        res[i] = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, names[i]);
    rd_kafka_queue_t *q = rd_kafka_queue_new(c->rk);
    rd_kafka_AdminOptions_t *opts = cli_admin_options(c, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
    rd_kafka_DescribeConfigs(c->rk, res, (size_t)n, opts, q);
    rd_kafka_event_t *ev =
        cli_admin_wait(c, q, RD_KAFKA_EVENT_DESCRIBECONFIGS_RESULT, "describe configs");
    if (!ev)
        goto out;

    size_t cnt;
    const rd_kafka_ConfigResource_t **rres =
        rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev), &cnt);
    for (size_t j = 0; j < cnt; j++) {
        const char *name = rd_kafka_ConfigResource_name(rres[j]);
        rd_kafka_resp_err_t err = rd_kafka_ConfigResource_error(rres[j]);
        if (err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
            cli_error(PROG, "unknown topic '%s'", name);
            goto out_ev;
        }
        if (err) {
            const char *msg = rd_kafka_ConfigResource_error_string(rres[j]);
            cli_error(PROG, "cannot describe configs of '%s': %s%s%s", name, rd_kafka_err2str(err),
                      msg ? ": " : "", msg ? msg : "");
            goto out_ev;
        }
        int i = 0;
        while (i < n && strcmp(names[i], name))
            i++;
        if (i == n)
            continue; /* not a resource we asked about */
        size_t ecnt;
        const rd_kafka_ConfigEntry_t **entries = rd_kafka_ConfigResource_configs(rres[j], &ecnt);
        for (size_t e = 0; e < ecnt; e++) {
            if (!is_topic_override(entries[e]))
                continue;
            if (kv_set(&out[i], rd_kafka_ConfigEntry_name(entries[e]),
                       rd_kafka_ConfigEntry_value(entries[e]))) {
                cli_error(PROG, "out of memory");
                goto out_ev;
            }
        }
        if (out[i].n) /* items is NULL while empty, and qsort wants a pointer */
            qsort(out[i].items, out[i].n, sizeof *out[i].items, kv_cmp);
    }
    rc = CLI_OK;
out_ev:
    rd_kafka_event_destroy(ev);
out:
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_queue_destroy(q);
    rd_kafka_ConfigResource_destroy_array(res, (size_t)n);
    free(res);
    return rc;
}

/* Prints a per-topic admin error; returns CLI_OK when there was none. */
static int topic_result(const char *verb, const rd_kafka_topic_result_t *r, int if_exists_ok)
{
    rd_kafka_resp_err_t err = rd_kafka_topic_result_error(r);
    const char *name = rd_kafka_topic_result_name(r);
    if (!err)
        return CLI_OK;
    if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS && if_exists_ok)
        return CLI_OK;
    if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        cli_error(PROG, "topic '%s' already exists", name);
        return CLI_FAIL;
    }
    if (err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
        cli_error(PROG, "unknown topic '%s'", name);
        return CLI_FAIL;
    }
    const char *msg = rd_kafka_topic_result_error_string(r);
    /* librdkafka repeats err2str as the message when the broker sent none. */
    if (msg && !strcmp(msg, rd_kafka_err2str(err)))
        msg = NULL;
    cli_error(PROG, "cannot %s topic '%s': %s%s%s", verb, name, rd_kafka_err2str(err),
              msg ? ": " : "", msg ? msg : "");
    return CLI_FAIL;
}

static int topic_create(struct topic_args *ta)
{
    struct cli_client *c = &ta->client;
    if (ta->nnames != 1)
        return cli_usage_error(PROG, "create takes exactly one topic name");
    const struct rd_kafka_metadata *md;
    if (cli_connect_admin(c, &md))
        return CLI_FAIL;
    rd_kafka_metadata_destroy(md);

    char errstr[512];
    /* -1 asks the broker for its default count (CreateTopics v4+). */
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(ta->names[0], (int)ta->partitions,
                                                    (int)ta->replication, errstr, sizeof errstr);
    if (!nt) {
        cli_error(PROG, "cannot create topic '%s': %s", ta->names[0], errstr);
        return CLI_FAIL;
    }
    for (int i = 0; i < ta->nsets; i++) {
        const char *v;
        char *k = cli_split_kv(PROG, "--config", ta->sets[i], &v);
        if (!k) {
            rd_kafka_NewTopic_destroy(nt);
            return CLI_USAGE;
        }
        rd_kafka_NewTopic_set_config(nt, k, v);
        free(k);
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(c->rk);
    rd_kafka_AdminOptions_t *opts = cli_admin_options(c, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_CreateTopics(c->rk, &nt, 1, opts, q);
    rd_kafka_event_t *ev = cli_admin_wait(c, q, RD_KAFKA_EVENT_CREATETOPICS_RESULT, "create topic");
    int rc = CLI_FAIL;
    if (ev) {
        size_t cnt;
        const rd_kafka_topic_result_t **tr =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
        if (cnt != 1) {
            cli_error(PROG, "create topic: broker answered for %zu topics, not 1", cnt);
        } else {
            rc = topic_result("create", tr[0], ta->if_not_exists);
            if (!rc && !rd_kafka_topic_result_error(tr[0]))
                printf("created topic %s\n", ta->names[0]);
        }
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    return rc;
}

/* Sorted names of md's topics, internal ones only with `all`. */
static const char **sorted_topics(const struct rd_kafka_metadata *md, int all, int *n)
{
    const char **names = calloc((size_t)md->topic_cnt + 1, sizeof *names);
    if (!names) {
        cli_error(PROG, "out of memory");
        return NULL;
    }
    *n = 0;
    for (int i = 0; i < md->topic_cnt; i++)
        if (all || strncmp(md->topics[i].topic, "__", 2))
            names[(*n)++] = md->topics[i].topic;
    qsort(names, (size_t)*n, sizeof *names, str_cmp);
    return names;
}

static int topic_list(struct topic_args *ta)
{
    if (ta->nnames)
        return cli_usage_error(PROG, "list takes no topic names");
    const struct rd_kafka_metadata *md;
    if (cli_connect_admin(&ta->client, &md))
        return CLI_FAIL;
    int n;
    const char **names = sorted_topics(md, ta->all, &n);
    if (names) {
        for (int i = 0; i < n; i++)
            printf("%s\n", names[i]);
    }
    free(names);
    rd_kafka_metadata_destroy(md);
    return names ? CLI_OK : CLI_FAIL;
}

static void print_id_list(const char *label, const int32_t *ids, int n)
{
    printf("\t%s: ", label);
    for (int i = 0; i < n; i++)
        printf("%s%d", i ? "," : "", (int)ids[i]);
}

static int print_topic(struct cli_client *c, const rd_kafka_metadata_topic_t *t,
                       const struct kv_list *cfg)
{
    printf("Topic: %s\tPartitionCount: %d\tReplicationFactor: %d\tConfigs: ", t->topic,
           t->partition_cnt, t->partition_cnt ? t->partitions[0].replica_cnt : 0);
    for (size_t i = 0; i < cfg->n; i++)
        printf("%s%s=%s", i ? "," : "", cfg->items[i].key,
               cfg->items[i].value ? cfg->items[i].value : "");
    printf("\n");

    /* Metadata lists partitions in the broker's order; print by id. */
    for (int32_t id = 0; id < t->partition_cnt; id++) {
        const rd_kafka_metadata_partition_t *p = NULL;
        for (int i = 0; i < t->partition_cnt; i++)
            if (t->partitions[i].id == id)
                p = &t->partitions[i];
        if (!p) {
            cli_error(PROG, "topic '%s': metadata lacks partition %d", t->topic, (int)id);
            return CLI_FAIL;
        }
        int64_t lo, hi;
        rd_kafka_resp_err_t err =
            rd_kafka_query_watermark_offsets(c->rk, t->topic, id, &lo, &hi, WATERMARK_TIMEOUT_MS);
        if (err) {
            cli_error(PROG, "cannot read offsets of %s-%d: %s", t->topic, (int)id,
                      rd_kafka_err2str(err));
            return CLI_FAIL;
        }
        printf("\tTopic: %s\tPartition: %d\tLeader: %d", t->topic, (int)id, (int)p->leader);
        print_id_list("Replicas", p->replicas, p->replica_cnt);
        print_id_list("Isr", p->isrs, p->isr_cnt);
        printf("\tLogStartOffset: %lld\tLogEndOffset: %lld\n", (long long)lo, (long long)hi);
    }
    return CLI_OK;
}

static int topic_describe(struct topic_args *ta)
{
    struct cli_client *c = &ta->client;
    const struct rd_kafka_metadata *md;
    if (cli_connect_admin(c, &md))
        return CLI_FAIL;

    int rc = CLI_FAIL, n = ta->nnames;
    const char **names = ta->names;
    const char **all_names = NULL;
    struct kv_list *cfg = NULL;
    if (!n) {
        all_names = sorted_topics(md, ta->all, &n);
        if (!all_names)
            goto out;
        names = all_names;
    }
    /* Check every name before printing anything. */
    for (int i = 0; i < n; i++)
        if (cli_require_topic(c, md, names[i], NULL))
            goto out;
    if (!n) {
        rc = CLI_OK;
        goto out;
    }
    cfg = calloc((size_t)n, sizeof *cfg);
    if (!cfg) {
        cli_error(PROG, "out of memory");
        goto out;
    }
    if (describe_overrides(c, names, n, cfg))
        goto out;
    for (int i = 0; i < n; i++)
        if (print_topic(c, cli_find_topic(md, names[i]), &cfg[i]))
            goto out;
    rc = CLI_OK;
out:
    if (cfg)
        for (int i = 0; i < n; i++)
            kv_free(&cfg[i]);
    free(cfg);
    free(all_names);
    rd_kafka_metadata_destroy(md);
    return rc;
}

static int alter_partitions(struct cli_client *c, const char *name, int64_t count)
{
    char errstr[512];
    rd_kafka_NewPartitions_t *np =
        rd_kafka_NewPartitions_new(name, (size_t)count, errstr, sizeof errstr);
    if (!np) {
        cli_error(PROG, "cannot alter topic '%s': %s", name, errstr);
        return CLI_FAIL;
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(c->rk);
    rd_kafka_AdminOptions_t *opts = cli_admin_options(c, RD_KAFKA_ADMIN_OP_CREATEPARTITIONS);
    rd_kafka_CreatePartitions(c->rk, &np, 1, opts, q);
    rd_kafka_event_t *ev =
        cli_admin_wait(c, q, RD_KAFKA_EVENT_CREATEPARTITIONS_RESULT, "create partitions");
    int rc = CLI_FAIL;
    if (ev) {
        size_t cnt;
        const rd_kafka_topic_result_t **tr = rd_kafka_CreatePartitions_result_topics(
            rd_kafka_event_CreatePartitions_result(ev), &cnt);
        if (cnt != 1)
            cli_error(PROG, "create partitions: broker answered for %zu topics, not 1", cnt);
        else
            rc = topic_result("add partitions to", tr[0], 0);
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewPartitions_destroy(np);
    return rc;
}

/* AlterConfigs replaces the topic's whole override set with `cfg`. */
static int alter_configs(struct cli_client *c, const char *name, const struct kv_list *cfg)
{
    rd_kafka_ConfigResource_t *res = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, name);
    for (size_t i = 0; i < cfg->n; i++)
        rd_kafka_ConfigResource_set_config(res, cfg->items[i].key, cfg->items[i].value);
    rd_kafka_queue_t *q = rd_kafka_queue_new(c->rk);
    rd_kafka_AdminOptions_t *opts = cli_admin_options(c, RD_KAFKA_ADMIN_OP_ALTERCONFIGS);
    rd_kafka_AlterConfigs(c->rk, &res, 1, opts, q);
    rd_kafka_event_t *ev =
        cli_admin_wait(c, q, RD_KAFKA_EVENT_ALTERCONFIGS_RESULT, "alter configs");
    int rc = CLI_FAIL;
    if (ev) {
        size_t cnt;
        const rd_kafka_ConfigResource_t **rres =
            rd_kafka_AlterConfigs_result_resources(rd_kafka_event_AlterConfigs_result(ev), &cnt);
        if (cnt != 1) {
            cli_error(PROG, "alter configs: broker answered for %zu resources, not 1", cnt);
        } else if (rd_kafka_ConfigResource_error(rres[0])) {
            rd_kafka_resp_err_t err = rd_kafka_ConfigResource_error(rres[0]);
            const char *msg = rd_kafka_ConfigResource_error_string(rres[0]);
            cli_error(PROG, "cannot alter configs of '%s': %s%s%s", name, rd_kafka_err2str(err),
                      msg ? ": " : "", msg ? msg : "");
        } else {
            rc = CLI_OK;
        }
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_queue_destroy(q);
    rd_kafka_ConfigResource_destroy(res);
    return rc;
}

static int topic_alter(struct topic_args *ta)
{
    struct cli_client *c = &ta->client;
    if (ta->nnames != 1)
        return cli_usage_error(PROG, "alter takes exactly one topic name");
    if (ta->partitions < 0 && !ta->nsets && !ta->ndeletes)
        return cli_usage_error(PROG, "alter needs --partitions, --config or --delete-config");
    const char *name = ta->names[0];
    const struct rd_kafka_metadata *md;
    if (cli_connect_admin(c, &md))
        return CLI_FAIL;
    int rc = cli_require_topic(c, md, name, NULL);
    rd_kafka_metadata_destroy(md);
    if (rc)
        return rc;

    if (ta->partitions >= 0 && (rc = alter_partitions(c, name, ta->partitions)))
        return rc;
    if (ta->nsets || ta->ndeletes) {
        struct kv_list cfg = {0};
        rc = describe_overrides(c, &name, 1, &cfg);
        for (int i = 0; !rc && i < ta->ndeletes; i++)
            kv_del(&cfg, ta->deletes[i]);
        for (int i = 0; !rc && i < ta->nsets; i++) {
            const char *v;
            char *k = cli_split_kv(PROG, "--config", ta->sets[i], &v);
            if (!k || kv_set(&cfg, k, v))
                rc = CLI_FAIL;
            free(k);
        }
        if (!rc)
            rc = alter_configs(c, name, &cfg);
        kv_free(&cfg);
    }
    if (!rc)
        printf("altered topic %s\n", name);
    return rc;
}

static int topic_delete(struct topic_args *ta)
{
    struct cli_client *c = &ta->client;
    if (!ta->nnames)
        return cli_usage_error(PROG, "delete needs at least one topic name");
    const struct rd_kafka_metadata *md;
    if (cli_connect_admin(c, &md))
        return CLI_FAIL;
    int rc = CLI_OK;
    for (int i = 0; !rc && i < ta->nnames; i++)
        rc = cli_require_topic(c, md, ta->names[i], NULL);
    rd_kafka_metadata_destroy(md);
    if (rc)
        return rc;

    rd_kafka_DeleteTopic_t **dt = calloc((size_t)ta->nnames, sizeof *dt);
    if (!dt) {
        cli_error(PROG, "out of memory");
        return CLI_FAIL;
    }
    for (int i = 0; i < ta->nnames; i++)
        dt[i] = rd_kafka_DeleteTopic_new(ta->names[i]);
    rd_kafka_queue_t *q = rd_kafka_queue_new(c->rk);
    rd_kafka_AdminOptions_t *opts = cli_admin_options(c, RD_KAFKA_ADMIN_OP_DELETETOPICS);
    rd_kafka_DeleteTopics(c->rk, dt, (size_t)ta->nnames, opts, q);
    rd_kafka_event_t *ev =
        cli_admin_wait(c, q, RD_KAFKA_EVENT_DELETETOPICS_RESULT, "delete topics");
    rc = CLI_FAIL;
    if (ev) {
        size_t cnt;
        const rd_kafka_topic_result_t **tr =
            rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &cnt);
        rc = CLI_OK;
        for (size_t i = 0; i < cnt; i++) {
            if (topic_result("delete", tr[i], 0))
                rc = CLI_FAIL;
            else
                printf("deleted topic %s\n", rd_kafka_topic_result_name(tr[i]));
        }
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_queue_destroy(q);
    rd_kafka_DeleteTopic_destroy_array(dt, (size_t)ta->nnames);
    free(dt);
    return rc;
}

int cmd_topic(int argc, char **argv)
{
    static const char *const names[] = {"create", "list", "describe", "alter", "delete"};
    static const struct {
        int (*fn)(struct topic_args *);
        const struct cli_opt *opts;
    } subs[] = {
        {topic_create, create_opts}, {topic_list, list_opts},     {topic_describe, list_opts},
        {topic_alter, alter_opts},   {topic_delete, delete_opts},
    };
    int rc;
    int sub =
        cli_subcommand(PROG, usage_text, names, sizeof names / sizeof names[0], argc, argv, &rc);
    if (sub < 0)
        return rc;
    struct topic_args ta;
    memset(&ta, 0, sizeof ta);
    cli_client_init(&ta.client, PROG);
    rc = parse_topic_args(&ta, subs[sub].opts, argc, argv);
    if (!rc && ta.help)
        fputs(usage_text, stdout);
    else if (!rc)
        rc = cli_finish_output(PROG, subs[sub].fn(&ta));
    cli_client_close(&ta.client);
    free_topic_args(&ta);
    return rc;
}
