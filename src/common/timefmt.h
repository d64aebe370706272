/*
 * timefmt: ISO 8601 times, as the commands take them (group reset
 * --to-datetime, message get --at, message find --since) and as the
 * admin API and the commands print them.
 */
#ifndef RUNNEL_TIMEFMT_H
#define RUNNEL_TIMEFMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * YYYY-MM-DDTHH:MM:SS[.fraction][Z|+hh:mm|-hh:mm|+hhmm], the format
 * kafka-consumer-groups.sh takes.  Without a zone: the local time zone
 * when local_if_no_zone (as Kafka's tool does), else refused (a server
 * cannot know the client's zone).  Milliseconds since the epoch in *ms;
 * 0, or -1 when s is not such a time (or is before 1970).
 */
int timefmt_parse(const char *s, bool local_if_no_zone, int64_t *ms);

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" (UTC) of ms since the epoch; size >= 32. */
void timefmt_format(int64_t ms, char *buf, size_t size);

#endif
