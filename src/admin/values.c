/*
 * Numbers and times in paths and query arguments.  Anything that is not
 * exactly a number (or a time) is refused, so "5x" is a 400, never 5.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_int.h"
#include "common/timefmt.h"

int admin_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (!s || !*s || isspace((unsigned char)*s))
        return -1;
    errno = 0;
    char *end;
    long long x = strtoll(s, &end, 10);
    if (errno || *end || x < min || x > max)
        return -1;
    *out = x;
    return 0;
}

int admin_parse_time(const char *s, int64_t *ms)
{
    if (!s || !*s)
        return -1;
    /* All digits: milliseconds since the epoch. */
    if (strspn(s, "0123456789") == strlen(s))
        return admin_parse_i64(s, 0, INT64_MAX, ms);
    /* ISO 8601 with a zone: the server cannot know the client's. */
    return timefmt_parse(s, false, ms);
}

void admin_format_time(int64_t ms, char *buf, size_t size)
{
    timefmt_format(ms, buf, size);
}
