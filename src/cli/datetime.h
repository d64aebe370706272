/*
 * datetime: the timestamps `runnel group reset --to-datetime` takes.
 */
#ifndef RUNNEL_CLI_DATETIME_H
#define RUNNEL_CLI_DATETIME_H

#include <stdint.h>

/*
 * YYYY-MM-DDTHH:MM:SS[.fraction][Z|+hh:mm|-hh:mm|+hhmm], the format
 * kafka-consumer-groups.sh takes; without a zone the local time zone
 * applies.  Milliseconds since the epoch in *ms; 0, or -1 when s is not
 * such a time.
 */
int cli_parse_datetime(const char *s, int64_t *ms);

#endif
