/*
 * system_topics: the topic names the broker owns, under "__runnel.".
 *
 *   __runnel.retry.<group>   a group's records waiting for a retry
 *   __runnel.dlq.<group>     a group's dead letters
 *   __runnel.check.<group>   check-backs for a producer group's half messages
 *
 * They are created on first use (Metadata or Produce names them), with one
 * partition, whatever auto.create.topics.enable says.  Any other name under
 * the prefix is refused, so a user topic can never take one of these.
 */
#ifndef RUNNEL_SYSTEM_TOPICS_H
#define RUNNEL_SYSTEM_TOPICS_H

#include <stddef.h>

#define SYSTOPIC_PREFIX "__runnel."

enum systopic {
    SYSTOPIC_NONE = 0, /* an ordinary topic */
    SYSTOPIC_RETRY,
    SYSTOPIC_DLQ,
    SYSTOPIC_CHECK,
    SYSTOPIC_RESERVED, /* under the prefix but none of the above */
};

/* What `name` is; for the three kinds, *group / *group_len (may be NULL)
 * get the group part. */
enum systopic systopic_kind(const char *name, size_t len, const char **group, size_t *group_len);

/* Writes the topic name of `kind` for a group; the length, or -1 when it
 * would not be a legal topic name (too long or illegal characters). */
int systopic_name(enum systopic kind, const char *group, size_t group_len, char *out,
                  size_t outlen);

#endif
