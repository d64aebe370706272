#include "common/rlog.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum rlog_level rlog_threshold = RLOG_INFO;

void rlog_init_from_env(void)
{
    const char *v = getenv("RUNNEL_LOG");
    if (!v)
        return;
    if (!strcmp(v, "debug"))
        rlog_threshold = RLOG_DEBUG;
    else if (!strcmp(v, "warn"))
        rlog_threshold = RLOG_WARN;
    else if (!strcmp(v, "error"))
        rlog_threshold = RLOG_ERROR;
}

void rlog_write(enum rlog_level lvl, const char *fmt, ...)
{
    static const char *names[] = {"DEBUG", "INFO ", "WARN ", "ERROR"};
    if (lvl < rlog_threshold)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    /* One fprintf so concurrent lines do not interleave. */
    fprintf(stderr, "%s.%03ldZ %s %s\n", when, ts.tv_nsec / 1000000, names[lvl], msg);
}
