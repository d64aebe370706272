/*
 * One handler per Kafka API (or small family), each in its own file,
 * all reached through the table in dispatch.c.  A handler decodes the
 * body with the generated codec, does the work, and encodes its response
 * into req->out (see request.h for the return values).
 */
#ifndef RUNNEL_HANDLERS_H
#define RUNNEL_HANDLERS_H

#include "kafka/request.h"

int handle_api_versions(struct kreq *r);              /* api_versions.c */
int handle_metadata(struct kreq *r);                  /* metadata.c */
int handle_produce(struct kreq *r);                   /* produce.c */
int handle_fetch(struct kreq *r);                     /* fetch.c */
int handle_list_offsets(struct kreq *r);              /* list_offsets.c */
int handle_offset_for_leader_epoch(struct kreq *r);   /* offset_for_leader_epoch.c */
int handle_create_topics(struct kreq *r);             /* topic_admin.c */
int handle_delete_topics(struct kreq *r);             /* topic_admin.c */
int handle_create_partitions(struct kreq *r);         /* topic_admin.c */
int handle_describe_configs(struct kreq *r);          /* configs.c */
int handle_alter_configs(struct kreq *r);             /* configs.c */
int handle_incremental_alter_configs(struct kreq *r); /* configs.c */
int handle_delete_records(struct kreq *r);            /* delete_records.c */
int handle_describe_cluster(struct kreq *r);          /* describe_cluster.c */
int handle_find_coordinator(struct kreq *r);          /* group_admin.c */
int handle_list_groups(struct kreq *r);               /* group_admin.c */
int handle_describe_groups(struct kreq *r);           /* group_admin.c */
int handle_delete_groups(struct kreq *r);             /* group_admin.c */
int handle_join_group(struct kreq *r);                /* group_membership.c */
int handle_sync_group(struct kreq *r);                /* group_membership.c */
int handle_heartbeat(struct kreq *r);                 /* group_membership.c */
int handle_leave_group(struct kreq *r);               /* group_membership.c */
int handle_offset_commit(struct kreq *r);             /* group_offsets.c */
int handle_offset_fetch(struct kreq *r);              /* group_offsets.c */
int handle_offset_delete(struct kreq *r);             /* group_offsets.c */

/* The dispatch table, for ApiVersions. */
struct kapi {
    int16_t key;
    int16_t min_version, max_version;
    const char *name;
    int (*handle)(struct kreq *r);
};
extern const struct kapi kapi_table[];
extern const int kapi_count;

/* Decodes the body with a generated decoder; KH_CLOSE on malformed input. */
#define KREQ_DECODE(r, name, msg)                                                                  \
    (name##_decode(&(r)->body, (r)->hdr.api_version, (msg), &(r)->arena) == 0 && (r)->body.err == 0)

#endif
