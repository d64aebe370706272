/*
 * table: rows printed with their columns aligned, two spaces apart, the
 * last column unpadded -- the layout of kafka-consumer-groups.sh, which
 * `runnel group` follows.  Cells are copied, so callers may pass stack
 * buffers; a NULL cell prints as "-".
 */
#ifndef RUNNEL_CLI_TABLE_H
#define RUNNEL_CLI_TABLE_H

#include <stddef.h>

struct table {
    int ncols;
    char **cells; /* rows * ncols */
    size_t nrows, cap;
    int failed; /* out of memory: nothing more is added */
};

void table_init(struct table *t, int ncols);
/* Adds a row of exactly ncols strings. */
void table_add(struct table *t, ...);
void table_print(const struct table *t);
void table_free(struct table *t);

#endif
