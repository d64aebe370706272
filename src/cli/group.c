/*
 * runnel group: list, describe, reset and delete consumer groups through
 * librdkafka's admin API (ListGroups, DescribeGroups, OffsetFetch,
 * OffsetCommit, DeleteGroups), with log end offsets from ListOffsets.
 * The output follows kafka-consumer-groups.sh so that people who know
 * that tool can read it at a glance.
 *
 * Lag of a partition = its log end offset (ListOffsets "latest", the high
 * watermark) minus the group's committed offset; "-" when either is
 * unknown (nothing committed yet, or the topic is gone).  It counts the
 * records the group has not committed, not the ones its members hold in
 * memory, exactly as Kafka's tool does.
 *
 * `reset` refuses a group that has members, as Kafka's tool does: members
 * keep their positions in memory and would commit over the reset.  It is
 * a dry run unless --execute is given.
 *
 * A broadcast group (message.model=BROADCASTING, see docs/broadcast.md)
 * keeps offsets per instance.  The broker answers OffsetFetch and
 * OffsetCommit without a member id for the instance named by the
 * request's client.id, so `describe` and `reset --instance` read and
 * commit an instance's offsets through a client whose client.id is that
 * instance's name; the instances come from the read-only group setting
 * broadcast.instances and the live members.  `config` reads and changes
 * the group's settings (DescribeConfigs/AlterConfigs on resource GROUP).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/cli.h"
#include "cli/cli_util.h"
#include "common/timefmt.h"
#include "cli/table.h"

#define PROG "runnel group"

/* ListOffsets per partition (watermarks, timestamps). */
#define OFFSETS_TIMEOUT_MS 10000

static const char usage_text[] =
    "usage: runnel group <command> [options]\n"
    "\n"
    "  list [--state]\n"
    "        group ids, one per line, sorted; --state adds each group's state\n"
    "  describe GROUP [--members]\n"
    "        the group's state and, per partition, its committed offset, the log end\n"
    "        offset, the lag between them and the member the partition is assigned to;\n"
    "        --members lists the members and their assignments instead.  A broadcast\n"
    "        group has a row per instance and partition (column INSTANCE)\n"
    "  config GROUP [--set KEY=VALUE]... [--delete KEY]...\n"
    "        show the group's settings, or change them: message.model=CLUSTERING\n"
    "        (members share the partitions, the default) or BROADCASTING (every member\n"
    "        receives every partition and keeps its own offsets)\n"
    "  reset GROUP [--instance NAME] (--topic TOPIC[:P,P...]... | --all-topics) SPEC [--execute]\n"
    "        compute new committed offsets and print them; --execute applies them.\n"
    "        Only a group without members (state Empty, or unknown) can be reset; in a\n"
    "        broadcast group, one instance (--instance, required there) that is not\n"
    "        a member.\n"
    "        SPEC is one of:\n"
    "          --to-earliest            the log start offset\n"
    "          --to-latest              the log end offset\n"
    "          --to-offset N            offset N (kept within the log's bounds)\n"
    "          --to-datetime DATETIME   the first record at or after DATETIME,\n"
    "                                   YYYY-MM-DDTHH:MM:SS[.mmm][Z|+hh:mm|-hh:mm]\n"
    "                                   (no zone: local time)\n"
    "          --shift-by N             the committed offset plus N (may be negative)\n"
    "        --all-topics takes every topic the group has committed offsets for.\n"
    "  delete GROUP...\n"
    "        delete groups without members, with their committed offsets\n"
    "\n"
    "describe prints, like kafka-consumer-groups --describe:\n"
    "  GROUP g  STATE Stable  PROTOCOL range  MEMBERS 2\n"
    "\n"
    "  GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID\n"
    "LAG is LOG-END-OFFSET - CURRENT-OFFSET; \"-\" marks what is unknown or unassigned.\n"
    "\n" CLI_COMMON_HELP;

enum {
    OPT_STATE = 1,
    OPT_MEMBERS,
    OPT_TOPIC,
    OPT_ALL_TOPICS,
    OPT_TO_EARLIEST,
    OPT_TO_LATEST,
    OPT_TO_OFFSET,
    OPT_TO_DATETIME,
    OPT_SHIFT_BY,
    OPT_EXECUTE,
    OPT_SET,
    OPT_DELETE,
    OPT_INSTANCE,
};

static const struct cli_opt list_opts[] = {
    {"state", 0, 0, OPT_STATE},
    CLI_COMMON_OPTS,
    {0},
};
static const struct cli_opt describe_opts[] = {
    {"members", 0, 0, OPT_MEMBERS},
    CLI_COMMON_OPTS,
    {0},
};
static const struct cli_opt config_opts[] = {
    {"set", 0, 1, OPT_SET},
    {"delete", 0, 1, OPT_DELETE},
    CLI_COMMON_OPTS,
    {0},
};
static const struct cli_opt reset_opts[] = {
    {"instance", 0, 1, OPT_INSTANCE},
    {"topic", 't', 1, OPT_TOPIC},
    {"all-topics", 0, 0, OPT_ALL_TOPICS},
    {"to-earliest", 0, 0, OPT_TO_EARLIEST},
    {"to-latest", 0, 0, OPT_TO_LATEST},
    {"to-offset", 0, 1, OPT_TO_OFFSET},
    {"to-datetime", 0, 1, OPT_TO_DATETIME},
    {"shift-by", 0, 1, OPT_SHIFT_BY},
    {"execute", 0, 0, OPT_EXECUTE},
    CLI_COMMON_OPTS,
    {0},
};
static const struct cli_opt delete_opts[] = {
    CLI_COMMON_OPTS,
    {0},
};

enum reset_kind {
    RESET_NONE,
    RESET_EARLIEST,
    RESET_LATEST,
    RESET_OFFSET,
    RESET_DATETIME,
    RESET_SHIFT
};

/* Options and positional names of one group subcommand. */
struct group_args {
    struct cli_client client;
    const char **names; /* group ids */
    int nnames;
    const char **topics; /* "T" or "T:P,P" */
    int ntopics;
    int all_topics;
    enum reset_kind reset;
    int nresets;
    int64_t reset_value; /* offset, shift or timestamp (ms) */
    int execute;
    int state;
    int members;
    int help;
    const char **sets; /* config --set "K=V" */
    int nsets;
    const char **deletes; /* config --delete K */
    int ndeletes;
    const char *instance; /* reset --instance */
};

/* ---- small utilities ---- */

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p)
        cli_error(PROG, "out of memory");
    return p;
}

/* "%lld" of an offset, or "-" when it is not known (negative). */
static const char *fmt_offset(char *buf, size_t size, int64_t off)
{
    if (off < 0)
        return "-";
    snprintf(buf, size, "%lld", (long long)off);
    return buf;
}

/* ---- argument parsing ---- */

static void set_reset(struct group_args *ga, enum reset_kind kind)
{
    ga->reset = kind;
    ga->nresets++;
}

static int parse_group_args(struct group_args *ga, const struct cli_opt *opts, int argc,
                            char **argv)
{
    struct cli_args a;
    const char *val;
    int id;
    ga->names = calloc((size_t)argc + 1, sizeof *ga->names);
    ga->topics = calloc((size_t)argc + 1, sizeof *ga->topics);
    ga->sets = calloc((size_t)argc + 1, sizeof *ga->sets);
    ga->deletes = calloc((size_t)argc + 1, sizeof *ga->deletes);
    if (!ga->names || !ga->topics || !ga->sets || !ga->deletes) {
        cli_error(PROG, "out of memory");
        return CLI_FAIL;
    }
    cli_args_init(&a, PROG, argc, argv, 2);
    while ((id = cli_next(&a, opts, &val)) != CLI_ARG_END) {
        switch (id) {
        case CLI_ARG_ERROR:
            return CLI_USAGE;
        case CLI_ARG_POSITIONAL:
            if (!*val)
                return cli_usage_error(PROG, "empty group id");
            ga->names[ga->nnames++] = val;
            break;
        case OPT_STATE:
            ga->state = 1;
            break;
        case OPT_MEMBERS:
            ga->members = 1;
            break;
        case OPT_TOPIC:
            if (!*val || *val == ':')
                return cli_usage_error(PROG, "bad value '%s' for --topic", val);
            ga->topics[ga->ntopics++] = val;
            break;
        case OPT_ALL_TOPICS:
            ga->all_topics = 1;
            break;
        case OPT_TO_EARLIEST:
            set_reset(ga, RESET_EARLIEST);
            break;
        case OPT_TO_LATEST:
            set_reset(ga, RESET_LATEST);
            break;
        case OPT_TO_OFFSET:
            if (cli_parse_int64(PROG, "--to-offset", val, 0, INT64_MAX, &ga->reset_value))
                return CLI_USAGE;
            set_reset(ga, RESET_OFFSET);
            break;
        case OPT_TO_DATETIME:
            if (timefmt_parse(val, true, &ga->reset_value))
                return cli_usage_error(PROG,
                                       "bad value '%s' for --to-datetime "
                                       "(YYYY-MM-DDTHH:MM:SS[.mmm][Z|+hh:mm])",
                                       val);
            set_reset(ga, RESET_DATETIME);
            break;
        case OPT_SHIFT_BY:
            if (cli_parse_int64(PROG, "--shift-by", val, -INT64_MAX, INT64_MAX, &ga->reset_value))
                return CLI_USAGE;
            set_reset(ga, RESET_SHIFT);
            break;
        case OPT_EXECUTE:
            ga->execute = 1;
            break;
        case OPT_SET:
            if (!strchr(val, '=') || *val == '=')
                return cli_usage_error(PROG, "bad value '%s' for --set (expected KEY=VALUE)", val);
            ga->sets[ga->nsets++] = val;
            break;
        case OPT_DELETE:
            if (!*val)
                return cli_usage_error(PROG, "empty --delete");
            ga->deletes[ga->ndeletes++] = val;
            break;
        case OPT_INSTANCE:
            if (!*val)
                return cli_usage_error(PROG, "empty --instance");
            ga->instance = val;
            break;
        case CLI_OPT_HELP:
            ga->help = 1;
            break;
        default:
            if (cli_common_opt(&ga->client, id, val) < 0)
                return CLI_USAGE;
        }
    }
    return CLI_OK;
}

/* ---- admin requests ---- */

/* An admin client with the broker known to answer; CLI_OK or CLI_FAIL. */
/* "WHAT: NAME (description)[: broker message]", one line. */
static void print_kafka_error(const char *what, rd_kafka_resp_err_t err, const char *msg)
{
    /* librdkafka repeats err2str as the message when the broker sent none. */
    if (msg && (!*msg || !strcmp(msg, rd_kafka_err2str(err))))
        msg = NULL;
    cli_error(PROG, "%s: %s (%s)%s%s", what, rd_kafka_err2name(err), rd_kafka_err2str(err),
              msg ? ": " : "", msg ? msg : "");
}

/* The group's description (valid while *ev lives) or NULL after an error. */
static const rd_kafka_ConsumerGroupDescription_t *
describe_one(struct cli_client *c, const char *group, rd_kafka_event_t **ev)
{
    rd_kafka_queue_t *q = rd_kafka_queue_new(c->rk);
    rd_kafka_AdminOptions_t *opts = cli_admin_options(c, RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS);
    const char *groups[1] = {group};
    rd_kafka_DescribeConsumerGroups(c->rk, groups, 1, opts, q);
    *ev = cli_admin_wait(c, q, RD_KAFKA_EVENT_DESCRIBECONSUMERGROUPS_RESULT, "describe group");
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_queue_destroy(q);
    if (!*ev)
        return NULL;
    size_t cnt;
    const rd_kafka_ConsumerGroupDescription_t **d = rd_kafka_DescribeConsumerGroups_result_groups(
        rd_kafka_event_DescribeConsumerGroups_result(*ev), &cnt);
    if (cnt != 1) {
        cli_error(PROG, "describe group: broker answered for %zu groups, not 1", cnt);
    } else if (rd_kafka_ConsumerGroupDescription_error(d[0])) {
        const rd_kafka_error_t *e = rd_kafka_ConsumerGroupDescription_error(d[0]);
        char what[300];
        snprintf(what, sizeof what, "cannot describe group '%s'", group);
        print_kafka_error(what, rd_kafka_error_code(e), rd_kafka_error_string(e));
    } else {
        return d[0];
    }
    rd_kafka_event_destroy(*ev);
    *ev = NULL;
    return NULL;
}

/*
 * The group's committed offsets, every partition it has one for: a copy
 * the caller destroys, or NULL after an error.
 */
static rd_kafka_topic_partition_list_t *committed_offsets(struct cli_client *c, const char *group)
{
    rd_kafka_ListConsumerGroupOffsets_t *req = rd_kafka_ListConsumerGroupOffsets_new(group, NULL);
    rd_kafka_queue_t *q = rd_kafka_queue_new(c->rk);
    rd_kafka_AdminOptions_t *opts =
        cli_admin_options(c, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS);
    rd_kafka_ListConsumerGroupOffsets(c->rk, &req, 1, opts, q);
    rd_kafka_event_t *ev =
        cli_admin_wait(c, q, RD_KAFKA_EVENT_LISTCONSUMERGROUPOFFSETS_RESULT, "fetch offsets");
    rd_kafka_topic_partition_list_t *out = NULL;
    if (ev) {
        size_t cnt;
        const rd_kafka_group_result_t **gr = rd_kafka_ListConsumerGroupOffsets_result_groups(
            rd_kafka_event_ListConsumerGroupOffsets_result(ev), &cnt);
        const rd_kafka_error_t *e = cnt == 1 ? rd_kafka_group_result_error(gr[0]) : NULL;
        if (cnt != 1) {
            cli_error(PROG, "fetch offsets: broker answered for %zu groups, not 1", cnt);
        } else if (e) {
            char what[300];
            snprintf(what, sizeof what, "cannot fetch offsets of group '%s'", group);
            print_kafka_error(what, rd_kafka_error_code(e), rd_kafka_error_string(e));
        } else {
            const rd_kafka_topic_partition_list_t *l = rd_kafka_group_result_partitions(gr[0]);
            out = l ? rd_kafka_topic_partition_list_copy(l) : rd_kafka_topic_partition_list_new(0);
            /* A partition-level error means that partition's offset is
             * unknown, not that the whole answer is wrong. */
            for (int i = 0; i < out->cnt; i++)
                if (out->elems[i].err)
                    out->elems[i].offset = RD_KAFKA_OFFSET_INVALID;
        }
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_queue_destroy(q);
    rd_kafka_ListConsumerGroupOffsets_destroy(req);
    return out;
}

/* ---- group settings ---- */

/* One entry of DescribeConfigs on the group resource. */
struct gsetting {
    char *name, *value;
    int is_default, read_only;
};

struct gsettings {
    struct gsetting *v;
    size_t n;
};

static void gsettings_free(struct gsettings *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i].name);
        free(s->v[i].value);
    }
    free(s->v);
    memset(s, 0, sizeof *s);
}

static const struct gsetting *gsetting_find(const struct gsettings *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->v[i].name, name))
            return &s->v[i];
    return NULL;
}

static int is_broadcast(const struct gsettings *s)
{
    const struct gsetting *m = gsetting_find(s, "message.model");
    return m && !strcasecmp(m->value, "BROADCASTING");
}

/* The group's settings; CLI_OK, or CLI_FAIL after printing why. */
static int read_settings(struct cli_client *c, const char *group, struct gsettings *out)
{
    memset(out, 0, sizeof *out);
    rd_kafka_ConfigResource_t *res = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_GROUP, group);
    rd_kafka_queue_t *q = rd_kafka_queue_new(c->rk);
    rd_kafka_AdminOptions_t *opts = cli_admin_options(c, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
    rd_kafka_DescribeConfigs(c->rk, &res, 1, opts, q);
    rd_kafka_event_t *ev =
        cli_admin_wait(c, q, RD_KAFKA_EVENT_DESCRIBECONFIGS_RESULT, "read group settings");
    int rc = CLI_FAIL;
    if (ev) {
        size_t cnt;
        const rd_kafka_ConfigResource_t **rres = rd_kafka_DescribeConfigs_result_resources(
            rd_kafka_event_DescribeConfigs_result(ev), &cnt);
        if (cnt != 1) {
            cli_error(PROG, "read group settings: broker answered for %zu resources, not 1", cnt);
        } else if (rd_kafka_ConfigResource_error(rres[0])) {
            char what[300];
            snprintf(what, sizeof what, "cannot read settings of group '%s'", group);
            print_kafka_error(what, rd_kafka_ConfigResource_error(rres[0]),
                              rd_kafka_ConfigResource_error_string(rres[0]));
        } else {
            size_t ecnt;
            const rd_kafka_ConfigEntry_t **e = rd_kafka_ConfigResource_configs(rres[0], &ecnt);
            out->v = xcalloc(ecnt, sizeof *out->v);
            rc = out->v ? CLI_OK : CLI_FAIL;
            for (size_t i = 0; out->v && i < ecnt; i++) {
                const char *v = rd_kafka_ConfigEntry_value(e[i]);
                struct gsetting *g = &out->v[out->n++];
                g->name = strdup(rd_kafka_ConfigEntry_name(e[i]));
                g->value = strdup(v ? v : "");
                g->is_default = rd_kafka_ConfigEntry_is_default(e[i]);
                g->read_only = rd_kafka_ConfigEntry_is_read_only(e[i]);
                if (!g->name || !g->value) {
                    cli_error(PROG, "out of memory");
                    rc = CLI_FAIL;
                    break;
                }
            }
        }
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_queue_destroy(q);
    rd_kafka_ConfigResource_destroy(res);
    if (rc)
        gsettings_free(out);
    return rc;
}

/* A list of distinct strings. */
struct strlist {
    char **v;
    size_t n, cap;
};

static int strlist_add(struct strlist *l, const char *s, size_t len)
{
    for (size_t i = 0; i < l->n; i++)
        if (strlen(l->v[i]) == len && !memcmp(l->v[i], s, len))
            return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        char **v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n] = strndup(s, len);
    return l->v[l->n++] ? 0 : -1;
}

static void strlist_free(struct strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int strp_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds the names of broadcast.instances: comma-separated, with '%' and
 * ',' in a name written as %25 and %2C. */
static int add_instances(struct strlist *l, const char *s)
{
    while (s && *s) {
        const char *end = strchr(s, ',');
        size_t n = end ? (size_t)(end - s) : strlen(s);
        char *name = malloc(n + 1);
        if (!name)
            return -1;
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            unsigned int x;
            if (s[i] == '%' && i + 2 < n + 1 && sscanf(s + i + 1, "%2x", &x) == 1) {
                name[k++] = (char)x;
                i += 2;
            } else {
                name[k++] = s[i];
            }
        }
        int rc = k ? strlist_add(l, name, k) : 0;
        free(name);
        if (rc)
            return -1;
        s = end ? end + 1 : NULL;
    }
    return 0;
}

/* A broadcast member's instance name: group.instance.id, else client.id. */
static const char *member_instance(const rd_kafka_MemberDescription_t *m)
{
    const char *id = rd_kafka_MemberDescription_group_instance_id(m);
    return id && *id ? id : rd_kafka_MemberDescription_client_id(m);
}

/* The live member that is this instance, or NULL. */
static const rd_kafka_MemberDescription_t *
instance_member(const rd_kafka_ConsumerGroupDescription_t *d, const char *instance)
{
    size_t n = rd_kafka_ConsumerGroupDescription_member_count(d);
    for (size_t i = 0; i < n; i++) {
        const rd_kafka_MemberDescription_t *m = rd_kafka_ConsumerGroupDescription_member(d, i);
        const char *cid = rd_kafka_MemberDescription_client_id(m);
        if (!strcmp(member_instance(m), instance) || (cid && !strcmp(cid, instance)))
            return m;
    }
    return NULL;
}

/*
 * An admin client like c whose client.id is `instance`, so that a
 * broadcast group answers its offset requests for that instance.  *prop
 * holds the property string until the client is closed.
 */
static int connect_as_instance(const struct cli_client *c, const char *instance,
                               struct cli_client *out, char **prop)
{
    *out = *c;
    out->rk = NULL;
    out->all_brokers_down = 0;
    *prop = NULL;
    if (out->nprops == CLI_MAX_PROPS) {
        cli_error(PROG, "too many -X properties to add client.id=%s", instance);
        return CLI_FAIL;
    }
    size_t len = strlen(instance) + sizeof "client.id=";
    *prop = malloc(len);
    if (!*prop) {
        cli_error(PROG, "out of memory");
        return CLI_FAIL;
    }
    snprintf(*prop, len, "client.id=%s", instance);
    out->props[out->nprops++] = *prop; /* -X comes last: it wins */
    return cli_connect_admin(out, NULL);
}

/* An instance's committed offsets (see committed_offsets). */
static rd_kafka_topic_partition_list_t *instance_offsets(const struct cli_client *c,
                                                         const char *group, const char *instance)
{
    struct cli_client ic;
    char *prop;
    rd_kafka_topic_partition_list_t *l = NULL;
    if (connect_as_instance(c, instance, &ic, &prop) == CLI_OK)
        l = committed_offsets(&ic, group);
    cli_client_close(&ic);
    free(prop);
    return l;
}

/* ---- list ---- */

struct listing {
    const char *id;
    const char *state;
};

static int listing_cmp(const void *a, const void *b)
{
    return strcmp(((const struct listing *)a)->id, ((const struct listing *)b)->id);
}

static int group_list(struct group_args *ga)
{
    struct cli_client *c = &ga->client;
    if (ga->nnames)
        return cli_usage_error(PROG, "list takes no group ids");
    if (cli_connect_admin(c, NULL))
        return CLI_FAIL;
    rd_kafka_queue_t *q = rd_kafka_queue_new(c->rk);
    rd_kafka_AdminOptions_t *opts = cli_admin_options(c, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPS);
    rd_kafka_ListConsumerGroups(c->rk, opts, q);
    rd_kafka_event_t *ev =
        cli_admin_wait(c, q, RD_KAFKA_EVENT_LISTCONSUMERGROUPS_RESULT, "list groups");
    int rc = CLI_FAIL;
    if (ev) {
        const rd_kafka_ListConsumerGroups_result_t *res =
            rd_kafka_event_ListConsumerGroups_result(ev);
        size_t nerr, n;
        const rd_kafka_error_t **errs = rd_kafka_ListConsumerGroups_result_errors(res, &nerr);
        const rd_kafka_ConsumerGroupListing_t **gl =
            rd_kafka_ListConsumerGroups_result_valid(res, &n);
        if (nerr) {
            print_kafka_error("cannot list groups", rd_kafka_error_code(errs[0]),
                              rd_kafka_error_string(errs[0]));
        } else {
            struct listing *ls = xcalloc(n, sizeof *ls);
            if (ls) {
                for (size_t i = 0; i < n; i++) {
                    ls[i].id = rd_kafka_ConsumerGroupListing_group_id(gl[i]);
                    ls[i].state = rd_kafka_consumer_group_state_name(
                        rd_kafka_ConsumerGroupListing_state(gl[i]));
                }
                qsort(ls, n, sizeof *ls, listing_cmp);
                struct table t;
                table_init(&t, ga->state ? 2 : 1);
                if (ga->state)
                    table_add(&t, "GROUP", "STATE");
                for (size_t i = 0; i < n; i++)
                    table_add(&t, ls[i].id, ls[i].state);
                if (t.failed) {
                    cli_error(PROG, "out of memory");
                } else {
                    table_print(&t);
                    rc = CLI_OK;
                }
                table_free(&t);
                free(ls);
            }
        }
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_queue_destroy(q);
    return rc;
}

/* ---- describe ---- */

/* One row of describe: a partition the group (or in a broadcast group,
 * an instance) has an offset for or owns. */
struct prow {
    const char *instance; /* broadcast groups only */
    const char *topic;    /* points into the offsets list or an assignment */
    int32_t partition;
    int64_t committed; /* < 0: none */
    const rd_kafka_MemberDescription_t *member;
};

static int prow_cmp(const void *a, const void *b)
{
    const struct prow *x = a, *y = b;
    int c = x->instance && y->instance ? strcmp(x->instance, y->instance) : 0;
    if (!c)
        c = strcmp(x->topic, y->topic);
    if (c)
        return c;
    return x->partition < y->partition ? -1 : x->partition > y->partition;
}

static struct prow *prow_find(struct prow *rows, size_t n, const char *instance, const char *topic,
                              int32_t partition)
{
    for (size_t i = 0; i < n; i++)
        if (rows[i].partition == partition && !strcmp(rows[i].topic, topic) &&
            rows[i].instance == instance)
            return &rows[i];
    return NULL;
}

static int is_unknown_group(const rd_kafka_ConsumerGroupDescription_t *d)
{
    /* Kafka describes a group it does not know as Dead without members. */
    return rd_kafka_ConsumerGroupDescription_state(d) == RD_KAFKA_CONSUMER_GROUP_STATE_DEAD;
}

static void print_group_header(const char *group, const rd_kafka_ConsumerGroupDescription_t *d,
                               int broadcast)
{
    const char *proto = rd_kafka_ConsumerGroupDescription_partition_assignor(d);
    printf("GROUP %s  STATE %s  PROTOCOL %s  MEMBERS %zu%s\n\n", group,
           rd_kafka_consumer_group_state_name(rd_kafka_ConsumerGroupDescription_state(d)),
           proto && *proto ? proto : "-", rd_kafka_ConsumerGroupDescription_member_count(d),
           broadcast ? "  MODEL BROADCASTING" : "");
}

/* "topic(0,1,2),other(3)" of an assignment sorted by topic and partition. */
static char *assignment_string(const rd_kafka_topic_partition_list_t *l)
{
    if (!l || l->cnt == 0)
        return strdup("-");
    rd_kafka_topic_partition_list_t *s = rd_kafka_topic_partition_list_copy(l);
    rd_kafka_topic_partition_list_sort(s, NULL, NULL);
    size_t cap = 64, len = 0;
    char *out = malloc(cap);
    for (int i = 0; out && i < s->cnt; i++) {
        const char *topic = s->elems[i].topic;
        int first = i == 0 || strcmp(s->elems[i - 1].topic, topic);
        int last = i == s->cnt - 1 || strcmp(s->elems[i + 1].topic, topic);
        size_t need = strlen(topic) + 32;
        if (len + need >= cap) {
            cap = (len + need) * 2;
            char *o = realloc(out, cap);
            if (!o) {
                free(out);
                out = NULL;
                break;
            }
            out = o;
        }
        len += (size_t)snprintf(out + len, cap - len, "%s%s%s%d%s", first && i ? "," : "",
                                first ? topic : "", first ? "(" : ",", (int)s->elems[i].partition,
                                last ? ")" : "");
    }
    rd_kafka_topic_partition_list_destroy(s);
    return out;
}

static int describe_members(const rd_kafka_ConsumerGroupDescription_t *d)
{
    struct table t;
    table_init(&t, 5);
    table_add(&t, "CONSUMER-ID", "HOST", "CLIENT-ID", "#PARTITIONS", "ASSIGNMENT");
    size_t n = rd_kafka_ConsumerGroupDescription_member_count(d);
    for (size_t i = 0; i < n; i++) {
        const rd_kafka_MemberDescription_t *m = rd_kafka_ConsumerGroupDescription_member(d, i);
        const rd_kafka_topic_partition_list_t *l =
            rd_kafka_MemberAssignment_partitions(rd_kafka_MemberDescription_assignment(m));
        char count[16];
        snprintf(count, sizeof count, "%d", l ? l->cnt : 0);
        char *as = assignment_string(l);
        table_add(&t, rd_kafka_MemberDescription_consumer_id(m), rd_kafka_MemberDescription_host(m),
                  rd_kafka_MemberDescription_client_id(m), count, as ? as : "?");
        free(as);
    }
    int rc = CLI_OK;
    if (t.failed) {
        cli_error(PROG, "out of memory");
        rc = CLI_FAIL;
    } else {
        table_print(&t);
    }
    table_free(&t);
    return rc;
}

/* The partition, offset and lag cells of a row. */
struct pcells {
    char part[16], cur_buf[24], end_buf[24], lag[24];
    const char *cur, *end;
};

static void row_cells(struct cli_client *c, const struct prow *r, struct pcells *x)
{
    int64_t lo, hi;
    rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(c->rk, r->topic, r->partition, &lo,
                                                               &hi, OFFSETS_TIMEOUT_MS);
    if (err)
        hi = -1; /* a deleted topic keeps its commits: show them anyway */
    snprintf(x->part, sizeof x->part, "%d", (int)r->partition);
    /* A commit past the end (the log was truncated or the topic made
     * anew) shows as a negative lag, as in Kafka's tool. */
    if (r->committed >= 0 && hi >= 0)
        snprintf(x->lag, sizeof x->lag, "%lld", (long long)(hi - r->committed));
    else
        snprintf(x->lag, sizeof x->lag, "-");
    x->cur = fmt_offset(x->cur_buf, sizeof x->cur_buf, r->committed);
    x->end = fmt_offset(x->end_buf, sizeof x->end_buf, hi);
}

static int describe_offsets(struct cli_client *c, const char *group,
                            const rd_kafka_ConsumerGroupDescription_t *d,
                            const rd_kafka_topic_partition_list_t *committed)
{
    size_t nmembers = rd_kafka_ConsumerGroupDescription_member_count(d);
    size_t cap = (size_t)committed->cnt;
    for (size_t i = 0; i < nmembers; i++) {
        const rd_kafka_topic_partition_list_t *l = rd_kafka_MemberAssignment_partitions(
            rd_kafka_MemberDescription_assignment(rd_kafka_ConsumerGroupDescription_member(d, i)));
        cap += l ? (size_t)l->cnt : 0;
    }
    struct prow *rows = xcalloc(cap, sizeof *rows);
    if (!rows)
        return CLI_FAIL;
    size_t n = 0;
    for (int i = 0; i < committed->cnt; i++) {
        const rd_kafka_topic_partition_t *p = &committed->elems[i];
        /* OffsetFetch for all partitions may list some without a commit. */
        if (p->offset < 0)
            continue;
        rows[n++] = (struct prow){NULL, p->topic, p->partition, p->offset, NULL};
    }
    for (size_t i = 0; i < nmembers; i++) {
        const rd_kafka_MemberDescription_t *m = rd_kafka_ConsumerGroupDescription_member(d, i);
        const rd_kafka_topic_partition_list_t *l =
            rd_kafka_MemberAssignment_partitions(rd_kafka_MemberDescription_assignment(m));
        for (int k = 0; l && k < l->cnt; k++) {
            struct prow *r = prow_find(rows, n, NULL, l->elems[k].topic, l->elems[k].partition);
            if (!r) {
                r = &rows[n++];
                *r = (struct prow){NULL, l->elems[k].topic, l->elems[k].partition, -1, NULL};
            }
            r->member = m;
        }
    }
    if (n)
        qsort(rows, n, sizeof *rows, prow_cmp);

    struct table t;
    table_init(&t, 9);
    table_add(&t, "GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG",
              "CONSUMER-ID", "HOST", "CLIENT-ID");
    for (size_t i = 0; i < n; i++) {
        const struct prow *r = &rows[i];
        struct pcells x;
        row_cells(c, r, &x);
        table_add(&t, group, r->topic, x.part, x.cur, x.end, x.lag,
                  r->member ? rd_kafka_MemberDescription_consumer_id(r->member) : "-",
                  r->member ? rd_kafka_MemberDescription_host(r->member) : "-",
                  r->member ? rd_kafka_MemberDescription_client_id(r->member) : "-");
    }
    int rc = CLI_OK;
    if (t.failed) {
        cli_error(PROG, "out of memory");
        rc = CLI_FAIL;
    } else {
        table_print(&t);
    }
    table_free(&t);
    free(rows);
    return rc;
}

/*
 * Per instance and partition: the instance's committed offset, the log
 * end, the lag, and the member that is the instance now (if any).
 */
static int describe_broadcast(struct cli_client *c, const char *group,
                              const rd_kafka_ConsumerGroupDescription_t *d,
                              const struct gsettings *gs)
{
    struct strlist names = {0};
    const struct gsetting *inst = gsetting_find(gs, "broadcast.instances");
    int rc = CLI_FAIL;
    size_t nmembers = rd_kafka_ConsumerGroupDescription_member_count(d);
    if (add_instances(&names, inst ? inst->value : NULL))
        goto oom;
    for (size_t i = 0; i < nmembers; i++) {
        const char *id = member_instance(rd_kafka_ConsumerGroupDescription_member(d, i));
        if (strlist_add(&names, id, strlen(id)))
            goto oom;
    }
    if (names.n)
        qsort(names.v, names.n, sizeof *names.v, strp_cmp);
    rd_kafka_topic_partition_list_t **lists = xcalloc(names.n, sizeof *lists);
    if (!lists)
        goto out;
    size_t cap = 0, n = 0;
    struct prow *rows = NULL;
    for (size_t i = 0; i < names.n; i++) {
        lists[i] = instance_offsets(c, group, names.v[i]);
        if (!lists[i])
            goto out_lists;
        const rd_kafka_MemberDescription_t *m = instance_member(d, names.v[i]);
        const rd_kafka_topic_partition_list_t *as =
            m ? rd_kafka_MemberAssignment_partitions(rd_kafka_MemberDescription_assignment(m))
              : NULL;
        size_t need = n + (size_t)lists[i]->cnt + (as ? (size_t)as->cnt : 0);
        if (need > cap) {
            struct prow *r = realloc(rows, (need > 2 * cap ? need : 2 * cap) * sizeof *rows);
            if (!r)
                goto oom_lists;
            rows = r;
            cap = need > 2 * cap ? need : 2 * cap;
        }
        for (int k = 0; k < lists[i]->cnt; k++) {
            const rd_kafka_topic_partition_t *p = &lists[i]->elems[k];
            if (p->offset >= 0)
                rows[n++] = (struct prow){names.v[i], p->topic, p->partition, p->offset, m};
        }
        for (int k = 0; as && k < as->cnt; k++)
            if (!prow_find(rows, n, names.v[i], as->elems[k].topic, as->elems[k].partition))
                rows[n++] =
                    (struct prow){names.v[i], as->elems[k].topic, as->elems[k].partition, -1, m};
    }
    if (n)
        qsort(rows, n, sizeof *rows, prow_cmp);
    /* The header once every instance's offsets are in: an error leaves
     * no half answer behind. */
    print_group_header(group, d, 1);
    struct table t;
    table_init(&t, 10);
    table_add(&t, "GROUP", "INSTANCE", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET",
              "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID");
    for (size_t i = 0; i < n; i++) {
        const struct prow *r = &rows[i];
        struct pcells x;
        row_cells(c, r, &x);
        table_add(&t, group, r->instance, r->topic, x.part, x.cur, x.end, x.lag,
                  r->member ? rd_kafka_MemberDescription_consumer_id(r->member) : "-",
                  r->member ? rd_kafka_MemberDescription_host(r->member) : "-",
                  r->member ? rd_kafka_MemberDescription_client_id(r->member) : "-");
    }
    if (t.failed)
        cli_error(PROG, "out of memory");
    else {
        table_print(&t);
        rc = CLI_OK;
    }
    table_free(&t);
    goto out_lists;
oom_lists:
    cli_error(PROG, "out of memory");
out_lists:
    free(rows);
    for (size_t i = 0; i < names.n; i++)
        if (lists[i])
            rd_kafka_topic_partition_list_destroy(lists[i]);
    free(lists);
    goto out;
oom:
    cli_error(PROG, "out of memory");
out:
    strlist_free(&names);
    return rc;
}

static int group_describe(struct group_args *ga)
{
    struct cli_client *c = &ga->client;
    if (ga->nnames != 1)
        return cli_usage_error(PROG, "describe takes exactly one group id");
    const char *group = ga->names[0];
    if (cli_connect_admin(c, NULL))
        return CLI_FAIL;
    rd_kafka_event_t *ev;
    const rd_kafka_ConsumerGroupDescription_t *d = describe_one(c, group, &ev);
    if (!d)
        return CLI_FAIL;
    int rc = CLI_FAIL;
    rd_kafka_topic_partition_list_t *committed = NULL;
    struct gsettings gs = {0};
    if (is_unknown_group(d)) {
        cli_error(PROG, "unknown group '%s'", group);
        goto out;
    }
    if (read_settings(c, group, &gs))
        goto out;
    int broadcast = is_broadcast(&gs);
    if (ga->members) {
        print_group_header(group, d, broadcast);
        rc = describe_members(d);
        goto out;
    }
    if (broadcast) {
        rc = describe_broadcast(c, group, d, &gs);
        goto out;
    }
    committed = committed_offsets(c, group);
    if (!committed)
        goto out;
    print_group_header(group, d, broadcast);
    rc = describe_offsets(c, group, d, committed);
out:
    if (committed)
        rd_kafka_topic_partition_list_destroy(committed);
    gsettings_free(&gs);
    rd_kafka_event_destroy(ev);
    return rc;
}

/* ---- reset ---- */

/*
 * Adds the partitions named by one --topic value ("T" or "T:P,P,...") to
 * l, checking them against the metadata.  CLI_OK, CLI_USAGE or CLI_FAIL.
 */
static int add_topic_spec(struct cli_client *c, const struct rd_kafka_metadata *md,
                          const char *spec, rd_kafka_topic_partition_list_t *l)
{
    const char *colon = strchr(spec, ':');
    size_t tlen = colon ? (size_t)(colon - spec) : strlen(spec);
    char *topic = strndup(spec, tlen);
    if (!topic) {
        cli_error(PROG, "out of memory");
        return CLI_FAIL;
    }
    const rd_kafka_metadata_topic_t *t;
    int rc = cli_require_topic(c, md, topic, &t);
    if (rc)
        goto out;
    if (!colon) {
        for (int32_t p = 0; p < t->partition_cnt; p++)
            if (!rd_kafka_topic_partition_list_find(l, topic, p))
                rd_kafka_topic_partition_list_add(l, topic, p);
        goto out;
    }
    const char *s = colon + 1;
    for (;;) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || !isdigit((unsigned char)*s) || (*end && *end != ',') || v > INT32_MAX) {
            rc = cli_usage_error(PROG, "bad value '%s' for --topic (TOPIC or TOPIC:P,P,...)", spec);
            goto out;
        }
        if (v >= t->partition_cnt) {
            cli_error(PROG, "topic '%s' has no partition %ld (it has %d)", topic, v,
                      t->partition_cnt);
            rc = CLI_FAIL;
            goto out;
        }
        if (!rd_kafka_topic_partition_list_find(l, topic, (int32_t)v))
            rd_kafka_topic_partition_list_add(l, topic, (int32_t)v);
        if (!*end)
            break;
        s = end + 1;
    }
out:
    free(topic);
    return rc;
}

/* Fills each partition's offset in l with the offset the reset asks for. */
static int compute_reset(struct group_args *ga, rd_kafka_topic_partition_list_t *l,
                         const rd_kafka_topic_partition_list_t *committed, const char *group)
{
    struct cli_client *c = &ga->client;
    if (ga->reset == RESET_DATETIME) {
        rd_kafka_topic_partition_list_t *ts = rd_kafka_topic_partition_list_copy(l);
        for (int i = 0; i < ts->cnt; i++)
            ts->elems[i].offset = ga->reset_value;
        rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(c->rk, ts, OFFSETS_TIMEOUT_MS);
        for (int i = 0; !err && i < ts->cnt; i++) {
            err = ts->elems[i].err;
            l->elems[i].offset = ts->elems[i].offset; /* -1: no record that late */
        }
        rd_kafka_topic_partition_list_destroy(ts);
        if (err) {
            cli_error(PROG, "cannot look up offsets by time: %s", rd_kafka_err2str(err));
            return CLI_FAIL;
        }
    }
    for (int i = 0; i < l->cnt; i++) {
        rd_kafka_topic_partition_t *p = &l->elems[i];
        int64_t lo, hi;
        rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(c->rk, p->topic, p->partition,
                                                                   &lo, &hi, OFFSETS_TIMEOUT_MS);
        if (err) {
            cli_error(PROG, "cannot read offsets of %s-%d: %s", p->topic, (int)p->partition,
                      rd_kafka_err2str(err));
            return CLI_FAIL;
        }
        int64_t target;
        switch (ga->reset) {
        case RESET_EARLIEST:
            target = lo;
            break;
        case RESET_LATEST:
            target = hi;
            break;
        case RESET_OFFSET:
            target = ga->reset_value;
            break;
        case RESET_DATETIME:
            /* Nothing at or after that time: the end, as Kafka's tool does. */
            target = p->offset >= 0 ? p->offset : hi;
            break;
        case RESET_SHIFT: {
            const rd_kafka_topic_partition_t *cur =
                rd_kafka_topic_partition_list_find(committed, p->topic, p->partition);
            if (!cur || cur->offset < 0) {
                cli_error(PROG,
                          "cannot shift the offset of %s-%d: group '%s' has no committed "
                          "offset for it",
                          p->topic, (int)p->partition, group);
                return CLI_FAIL;
            }
            /* Clamped below; saturate rather than overflow on the way. */
            if (ga->reset_value > 0 && cur->offset > INT64_MAX - ga->reset_value)
                target = INT64_MAX;
            else
                target = cur->offset + ga->reset_value;
            break;
        }
        default:
            target = hi;
        }
        /* Kafka's tool keeps new offsets within the log. */
        if (target < lo)
            target = lo;
        if (target > hi)
            target = hi;
        p->offset = target;
    }
    return CLI_OK;
}

/* Commits l's offsets for the group; CLI_OK or CLI_FAIL. */
static int alter_offsets(struct cli_client *c, const char *group,
                         const rd_kafka_topic_partition_list_t *l)
{
    rd_kafka_AlterConsumerGroupOffsets_t *req = rd_kafka_AlterConsumerGroupOffsets_new(group, l);
    rd_kafka_queue_t *q = rd_kafka_queue_new(c->rk);
    rd_kafka_AdminOptions_t *opts =
        cli_admin_options(c, RD_KAFKA_ADMIN_OP_ALTERCONSUMERGROUPOFFSETS);
    rd_kafka_AlterConsumerGroupOffsets(c->rk, &req, 1, opts, q);
    rd_kafka_event_t *ev =
        cli_admin_wait(c, q, RD_KAFKA_EVENT_ALTERCONSUMERGROUPOFFSETS_RESULT, "commit offsets");
    int rc = CLI_FAIL;
    if (ev) {
        size_t cnt;
        const rd_kafka_group_result_t **gr = rd_kafka_AlterConsumerGroupOffsets_result_groups(
            rd_kafka_event_AlterConsumerGroupOffsets_result(ev), &cnt);
        char what[300];
        snprintf(what, sizeof what, "cannot commit offsets of group '%s'", group);
        if (cnt != 1) {
            cli_error(PROG, "commit offsets: broker answered for %zu groups, not 1", cnt);
        } else if (rd_kafka_group_result_error(gr[0])) {
            const rd_kafka_error_t *e = rd_kafka_group_result_error(gr[0]);
            print_kafka_error(what, rd_kafka_error_code(e), rd_kafka_error_string(e));
        } else {
            const rd_kafka_topic_partition_list_t *res = rd_kafka_group_result_partitions(gr[0]);
            rc = CLI_OK;
            for (int i = 0; res && i < res->cnt; i++)
                if (res->elems[i].err) {
                    char w[400];
                    snprintf(w, sizeof w, "%s (%s-%d)", what, res->elems[i].topic,
                             (int)res->elems[i].partition);
                    print_kafka_error(w, res->elems[i].err, NULL);
                    rc = CLI_FAIL;
                    break;
                }
        }
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_queue_destroy(q);
    rd_kafka_AlterConsumerGroupOffsets_destroy(req);
    return rc;
}

static int group_reset(struct group_args *ga)
{
    struct cli_client *c = &ga->client;
    if (ga->nnames != 1)
        return cli_usage_error(PROG, "reset takes exactly one group id");
    if (!ga->ntopics && !ga->all_topics)
        return cli_usage_error(PROG, "reset needs --topic or --all-topics");
    if (ga->ntopics && ga->all_topics)
        return cli_usage_error(PROG, "give --topic or --all-topics, not both");
    if (ga->nresets != 1)
        return cli_usage_error(PROG, "reset needs exactly one of --to-earliest, --to-latest, "
                                     "--to-offset, --to-datetime, --shift-by");
    const char *group = ga->names[0];
    const struct rd_kafka_metadata *md;
    if (cli_connect_admin(c, &md))
        return CLI_FAIL;

    int rc = CLI_FAIL;
    rd_kafka_event_t *ev = NULL;
    rd_kafka_topic_partition_list_t *committed = NULL;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(16);
    struct gsettings gs = {0};
    /* Where offsets are read and committed: the group, or in a broadcast
     * group a client named after the instance. */
    struct cli_client ic = {0};
    struct cli_client *oc = c;
    char *prop = NULL;
    const rd_kafka_ConsumerGroupDescription_t *d = describe_one(c, group, &ev);
    if (!d || read_settings(c, group, &gs))
        goto out;
    rd_kafka_consumer_group_state_t st = rd_kafka_ConsumerGroupDescription_state(d);
    if (is_broadcast(&gs)) {
        if (!ga->instance) {
            cli_error(PROG,
                      "group '%s' is BROADCASTING: its offsets belong to its instances; name one "
                      "with --instance (runnel group describe %s lists them)",
                      group, group);
            goto out;
        }
        /* Only the instance must be stopped; the others keep reading. */
        if (instance_member(d, ga->instance)) {
            cli_error(PROG,
                      "cannot reset offsets of instance '%s' of group '%s': it is a member; "
                      "stop it first",
                      ga->instance, group);
            goto out;
        }
        if (connect_as_instance(c, ga->instance, &ic, &prop))
            goto out;
        oc = &ic;
    } else if (ga->instance) {
        cli_error(PROG, "group '%s' is not BROADCASTING: --instance applies to broadcast groups",
                  group);
        goto out;
    } else if (st != RD_KAFKA_CONSUMER_GROUP_STATE_EMPTY &&
               st != RD_KAFKA_CONSUMER_GROUP_STATE_DEAD) {
        cli_error(PROG,
                  "cannot reset offsets of group '%s': it has active members (state %s); "
                  "stop them first",
                  group, rd_kafka_consumer_group_state_name(st));
        goto out;
    }
    committed = committed_offsets(oc, group);
    if (!committed)
        goto out;
    if (ga->all_topics) {
        for (int i = 0; i < committed->cnt; i++) {
            const rd_kafka_topic_partition_t *p = &committed->elems[i];
            if (p->offset >= 0 && !rd_kafka_topic_partition_list_find(l, p->topic, p->partition))
                rd_kafka_topic_partition_list_add(l, p->topic, p->partition);
        }
        if (l->cnt == 0) {
            cli_error(PROG, "group '%s' has no committed offsets to reset", group);
            goto out;
        }
    }
    for (int i = 0; i < ga->ntopics; i++)
        if ((rc = add_topic_spec(c, md, ga->topics[i], l)) != CLI_OK)
            goto out;
    rc = CLI_FAIL;
    rd_kafka_topic_partition_list_sort(l, NULL, NULL);
    if (compute_reset(ga, l, committed, group))
        goto out;
    if (ga->execute && alter_offsets(oc, group, l))
        goto out;

    struct table t;
    table_init(&t, 3);
    table_add(&t, "TOPIC", "PARTITION", "NEW-OFFSET");
    for (int i = 0; i < l->cnt; i++) {
        char part[16], off[24];
        snprintf(part, sizeof part, "%d", (int)l->elems[i].partition);
        snprintf(off, sizeof off, "%lld", (long long)l->elems[i].offset);
        table_add(&t, l->elems[i].topic, part, off);
    }
    if (t.failed) {
        cli_error(PROG, "out of memory");
    } else {
        table_print(&t);
        rc = CLI_OK;
    }
    table_free(&t);
    if (!rc && !ga->execute)
        fprintf(stderr, "%s: dry run, nothing changed (add --execute to commit these offsets)\n",
                PROG);
out:
    if (ev)
        rd_kafka_event_destroy(ev);
    if (committed)
        rd_kafka_topic_partition_list_destroy(committed);
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_metadata_destroy(md);
    gsettings_free(&gs);
    cli_client_close(&ic);
    free(prop);
    return rc;
}

/* ---- config ---- */

static int print_settings(const struct gsettings *gs)
{
    struct table t;
    table_init(&t, 3);
    table_add(&t, "NAME", "VALUE", "SOURCE");
    for (size_t i = 0; i < gs->n; i++) {
        const struct gsetting *g = &gs->v[i];
        table_add(&t, g->name, *g->value ? g->value : "-",
                  g->read_only    ? "read-only"
                  : g->is_default ? "default"
                                  : "group");
    }
    int rc = CLI_OK;
    if (t.failed) {
        cli_error(PROG, "out of memory");
        rc = CLI_FAIL;
    } else {
        table_print(&t);
    }
    table_free(&t);
    return rc;
}

/*
 * AlterConfigs replaces the group's whole set of settings, so the new set
 * is what is set now, minus --delete, plus --set.  librdkafka 2.0 has no
 * IncrementalAlterConfigs.
 */
static int alter_settings(struct group_args *ga, const char *group, const struct gsettings *gs)
{
    struct cli_client *c = &ga->client;
    for (int i = 0; i < ga->ndeletes; i++)
        if (!gsetting_find(gs, ga->deletes[i])) {
            cli_error(PROG, "unknown group config '%s'", ga->deletes[i]);
            return CLI_FAIL;
        }
    rd_kafka_ConfigResource_t *res = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_GROUP, group);
    for (size_t i = 0; i < gs->n; i++) {
        const struct gsetting *g = &gs->v[i];
        int deleted = 0;
        for (int k = 0; k < ga->ndeletes && !deleted; k++)
            deleted = !strcmp(ga->deletes[k], g->name);
        if (!g->is_default && !g->read_only && !deleted)
            rd_kafka_ConfigResource_set_config(res, g->name, g->value);
    }
    int rc = CLI_FAIL;
    for (int i = 0; i < ga->nsets; i++) {
        const char *v;
        char *k = cli_split_kv(PROG, "--set", ga->sets[i], &v);
        if (!k)
            goto out;
        rd_kafka_ConfigResource_set_config(res, k, v); /* replaces an earlier value */
        free(k);
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(c->rk);
    rd_kafka_AdminOptions_t *opts = cli_admin_options(c, RD_KAFKA_ADMIN_OP_ALTERCONFIGS);
    rd_kafka_AlterConfigs(c->rk, &res, 1, opts, q);
    rd_kafka_event_t *ev =
        cli_admin_wait(c, q, RD_KAFKA_EVENT_ALTERCONFIGS_RESULT, "change group settings");
    if (ev) {
        size_t cnt;
        const rd_kafka_ConfigResource_t **rres =
            rd_kafka_AlterConfigs_result_resources(rd_kafka_event_AlterConfigs_result(ev), &cnt);
        if (cnt != 1) {
            cli_error(PROG, "change group settings: broker answered for %zu resources, not 1", cnt);
        } else if (rd_kafka_ConfigResource_error(rres[0])) {
            char what[300];
            snprintf(what, sizeof what, "cannot change settings of group '%s'", group);
            print_kafka_error(what, rd_kafka_ConfigResource_error(rres[0]),
                              rd_kafka_ConfigResource_error_string(rres[0]));
        } else {
            rc = CLI_OK;
        }
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_queue_destroy(q);
out:
    rd_kafka_ConfigResource_destroy(res);
    return rc;
}

static int group_config(struct group_args *ga)
{
    struct cli_client *c = &ga->client;
    if (ga->nnames != 1)
        return cli_usage_error(PROG, "config takes exactly one group id");
    const char *group = ga->names[0];
    if (cli_connect_admin(c, NULL))
        return CLI_FAIL;
    struct gsettings gs;
    if (read_settings(c, group, &gs))
        return CLI_FAIL;
    int rc = CLI_OK;
    if (ga->nsets || ga->ndeletes) {
        rc = alter_settings(ga, group, &gs);
        gsettings_free(&gs);
        if (rc || read_settings(c, group, &gs))
            return CLI_FAIL;
    }
    rc = print_settings(&gs);
    gsettings_free(&gs);
    return rc;
}

/* ---- delete ---- */

static int group_delete(struct group_args *ga)
{
    struct cli_client *c = &ga->client;
    if (!ga->nnames)
        return cli_usage_error(PROG, "delete needs at least one group id");
    if (cli_connect_admin(c, NULL))
        return CLI_FAIL;
    rd_kafka_DeleteGroup_t **dg = xcalloc((size_t)ga->nnames, sizeof *dg);
    if (!dg)
        return CLI_FAIL;
    for (int i = 0; i < ga->nnames; i++)
        dg[i] = rd_kafka_DeleteGroup_new(ga->names[i]);
    rd_kafka_queue_t *q = rd_kafka_queue_new(c->rk);
    rd_kafka_AdminOptions_t *opts = cli_admin_options(c, RD_KAFKA_ADMIN_OP_DELETEGROUPS);
    rd_kafka_DeleteGroups(c->rk, dg, (size_t)ga->nnames, opts, q);
    rd_kafka_event_t *ev =
        cli_admin_wait(c, q, RD_KAFKA_EVENT_DELETEGROUPS_RESULT, "delete groups");
    int rc = CLI_FAIL;
    if (ev) {
        size_t cnt;
        const rd_kafka_group_result_t **gr =
            rd_kafka_DeleteGroups_result_groups(rd_kafka_event_DeleteGroups_result(ev), &cnt);
        rc = CLI_OK;
        for (size_t i = 0; i < cnt; i++) {
            const char *name = rd_kafka_group_result_name(gr[i]);
            const rd_kafka_error_t *e = rd_kafka_group_result_error(gr[i]);
            if (!e) {
                printf("deleted group %s\n", name);
                continue;
            }
            char what[300];
            snprintf(what, sizeof what, "cannot delete group '%s'", name);
            print_kafka_error(what, rd_kafka_error_code(e), rd_kafka_error_string(e));
            rc = CLI_FAIL;
        }
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_queue_destroy(q);
    rd_kafka_DeleteGroup_destroy_array(dg, (size_t)ga->nnames);
    free(dg);
    return rc;
}

int cmd_group(int argc, char **argv)
{
    static const char *const names[] = {"list", "describe", "config", "reset", "delete"};
    static const struct {
        int (*fn)(struct group_args *);
        const struct cli_opt *opts;
    } subs[] = {
        {group_list, list_opts},   {group_describe, describe_opts}, {group_config, config_opts},
        {group_reset, reset_opts}, {group_delete, delete_opts},
    };
    int rc;
    int sub =
        cli_subcommand(PROG, usage_text, names, sizeof names / sizeof names[0], argc, argv, &rc);
    if (sub < 0)
        return rc;
    struct group_args ga;
    memset(&ga, 0, sizeof ga);
    cli_client_init(&ga.client, PROG);
    rc = parse_group_args(&ga, subs[sub].opts, argc, argv);
    if (!rc && ga.help)
        fputs(usage_text, stdout);
    else if (!rc)
        rc = cli_finish_output(PROG, subs[sub].fn(&ga));
    cli_client_close(&ga.client);
    free(ga.names);
    free(ga.topics);
    free(ga.sets);
    free(ga.deletes);
    return rc;
}
