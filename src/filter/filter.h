/*
 * filter: the expression language of filtered views (RocketMQ's message
 * filters over a record's headers).
 *
 * Two languages, as RocketMQ's ExpressionType:
 *   TAG    `*`, `TagA`, `TagA || TagB || TagC`: the record's `tag` header
 *          equals one of the tags (`*`: every record);
 *   SQL92  RocketMQ's SQL subset over header values: AND OR NOT, ( ),
 *          = <> != < <= > >=, [NOT] BETWEEN a AND b, [NOT] IN (...),
 *          IS [NOT] NULL, TRUE, FALSE, 'strings' ('' escapes), numbers
 *          (-12, 3.5), identifiers naming headers ("quoted" for any key).
 *
 * An expression is compiled once (filter_compile) into a small tree that
 * is then evaluated per record with the values of the headers it names.
 * A header that is absent (or has a null value) is NULL, and as in SQL a
 * comparison with NULL is unknown: NOT unknown is unknown, and a record
 * matches only when the whole expression is TRUE.  See README.md for the
 * comparison rules (strings vs numbers).
 *
 * Threads: a compiled filter is immutable; any number of threads may
 * evaluate it at once.  No locks, no global state.
 */
#ifndef RUNNEL_FILTER_H
#define RUNNEL_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum filter_type { FILTER_TAG = 0, FILTER_SQL92 = 1 };

/* Longest expression accepted, in bytes. */
#define FILTER_MAX_LEN 4096
/* Most distinct headers one expression may name. */
#define FILTER_MAX_SLOTS 64

/* "TAG" or "SQL92" (any case): 0, else -1. */
int filter_type_parse(const char *s, enum filter_type *out);
const char *filter_type_name(enum filter_type t);

struct filter_error {
    int position; /* 1-based byte position of the problem; 0 when none */
    char message[192];
};

struct filter;

/* Compiles `len` bytes of `expr`; NULL with *err filled when it is not a
 * valid expression (the message includes the position). */
struct filter *filter_compile(enum filter_type type, const char *expr, size_t len,
                              struct filter_error *err);
void filter_free(struct filter *f);

/* True when every record matches (`*`, TRUE): no need to read headers. */
bool filter_matches_all(const struct filter *f);

/*
 * The headers the filter reads are numbered 0..filter_slot_count()-1.
 * filter_slot() gives the slot of a header key, or -1 when the filter does
 * not name it, so a caller walks a record's headers once and files each
 * value it needs under its slot.
 */
int filter_slot_count(const struct filter *f);
int filter_slot(const struct filter *f, const void *key, size_t len);

/* One header value; len < 0 is NULL (absent or a null value). */
struct filter_value {
    const uint8_t *p;
    int32_t len;
};

/* vals has filter_slot_count() entries.  True only when the expression is
 * TRUE (FALSE and unknown do not match). */
bool filter_match(const struct filter *f, const struct filter_value *vals);

#endif
