#include "broker/system_topics.h"

#include <stdio.h>
#include <string.h>

#include "broker/topics.h"

static const struct {
    enum systopic kind;
    const char *prefix;
} prefixes[] = {
    {SYSTOPIC_RETRY, SYSTOPIC_PREFIX "retry."},
    {SYSTOPIC_DLQ, SYSTOPIC_PREFIX "dlq."},
    {SYSTOPIC_CHECK, SYSTOPIC_PREFIX "check."},
};

enum systopic systopic_kind(const char *name, size_t len, const char **group, size_t *group_len)
{
    size_t plen = sizeof SYSTOPIC_PREFIX - 1;
    if (len < plen || memcmp(name, SYSTOPIC_PREFIX, plen))
        return SYSTOPIC_NONE;
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        size_t n = strlen(prefixes[i].prefix);
        if (len > n && !memcmp(name, prefixes[i].prefix, n)) {
            if (group)
                *group = name + n;
            if (group_len)
                *group_len = len - n;
            return prefixes[i].kind;
        }
    }
    return SYSTOPIC_RESERVED;
}

int systopic_name(enum systopic kind, const char *group, size_t group_len, char *out, size_t outlen)
{
    const char *prefix = NULL;
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (prefixes[i].kind == kind)
            prefix = prefixes[i].prefix;
    if (!prefix || group_len == 0 || group_len > 249)
        return -1;
    int n = snprintf(out, outlen, "%s%.*s", prefix, (int)group_len, group);
    if (n < 0 || (size_t)n >= outlen || !topics_valid_name(out, (size_t)n))
        return -1;
    return n;
}
