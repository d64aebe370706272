/* ISO 8601 times (see timefmt.h). */
#include "common/timefmt.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static int days_in_month(int year, int month)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (month == 2 && ((year % 4 == 0 && year % 100 != 0) || year % 400 == 0))
        return 29;
    return days[month - 1];
}

/* n decimal digits at *p, advancing it; -1 when they are not digits. */
static int take_digits(const char **p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    return v;
}

/* Expects the character c at *p and steps over it. */
static int take_char(const char **p, char c)
{
    if (**p != c)
        return -1;
    (*p)++;
    return 0;
}

int timefmt_parse(const char *s, bool local_if_no_zone, int64_t *ms)
{
    const char *p = s;
    int year, mon, day, hour, min, sec, frac_ms = 0;
    if ((year = take_digits(&p, 4)) < 0 || take_char(&p, '-') || (mon = take_digits(&p, 2)) < 0 ||
        take_char(&p, '-') || (day = take_digits(&p, 2)) < 0 ||
        (take_char(&p, 'T') && take_char(&p, 't')) || (hour = take_digits(&p, 2)) < 0 ||
        take_char(&p, ':') || (min = take_digits(&p, 2)) < 0 || take_char(&p, ':') ||
        (sec = take_digits(&p, 2)) < 0)
        return -1;
    if (year < 1970 || mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon) ||
        hour > 23 || min > 59 || sec > 59)
        return -1;
    if (*p == '.') {
        p++;
        int digits = 0, scale = 100;
        while (isdigit((unsigned char)*p)) {
            if (digits < 3)
                frac_ms += (*p - '0') * scale;
            scale /= 10;
            digits++;
            p++;
        }
        if (!digits)
            return -1;
    }
    int has_zone = 0, zone_min = 0;
    if (*p == 'Z' || *p == 'z') {
        has_zone = 1;
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        p++;
        int zh = take_digits(&p, 2);
        if (zh < 0)
            return -1;
        if (*p == ':')
            p++;
        int zm = take_digits(&p, 2);
        if (zm < 0 || zh > 23 || zm > 59)
            return -1;
        has_zone = 1;
        zone_min = sign * (zh * 60 + zm);
    }
    if (*p || (!has_zone && !local_if_no_zone))
        return -1;

    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = year - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = min;
    tm.tm_sec = sec;
    time_t t;
    if (has_zone) {
        t = timegm(&tm) - (time_t)zone_min * 60;
    } else {
        tm.tm_isdst = -1; /* let the zone rules decide */
        t = mktime(&tm);
    }
    if (t == (time_t)-1 || t < 0)
        return -1;
    *ms = (int64_t)t * 1000 + frac_ms;
    return 0;
}

void timefmt_format(int64_t ms, char *buf, size_t size)
{
    time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(buf, size, "?");
        return;
    }
    int frac = (int)(ms - (int64_t)t * 1000);
    snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}
