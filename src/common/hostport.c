#include "common/hostport.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int hostport_parse(const char *what, const char *v, char *host, size_t hostlen, int *port,
                   char *err, size_t errlen)
{
    const char *p = strstr(v, "://");
    p = p ? p + 3 : v;
    const char *colon = strrchr(p, ':');
    if (!colon) {
        snprintf(err, errlen, "%s '%s': expected host:port", what, v);
        return -1;
    }
    size_t hl = (size_t)(colon - p);
    if (hl >= hostlen) {
        snprintf(err, errlen, "%s '%s': host too long", what, v);
        return -1;
    }
    memcpy(host, p, hl);
    host[hl] = 0;
    if (host[0] == '[' && hl >= 2 && host[hl - 1] == ']') { /* [::1] */
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = 0;
    }
    char *end;
    errno = 0;
    long x = strtol(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || x < 0 || x > 65535) {
        snprintf(err, errlen, "%s '%s': bad port", what, v);
        return -1;
    }
    *port = (int)x;
    return 0;
}
