/*
 * name_table: binary search over a table kept sorted by a name (topics in
 * the registry, groups in the coordinator, a broadcast group's
 * instances).  The key is a byte range (a wire string, not NUL-ended);
 * the names are C strings.
 */
#ifndef RUNNEL_NAME_TABLE_H
#define RUNNEL_NAME_TABLE_H

#include <stdbool.h>
#include <stddef.h>

/* The name of entry i of `table`. */
typedef const char *(*name_at_fn)(const void *table, int i);

/*
 * Index of the entry named key[0..len) (*found true), or where it would
 * be inserted to keep the order (*found false).  Names sort as strcmp
 * does, a name that is a prefix of another first.
 */
int name_table_find(const void *table, int n, name_at_fn name_at, const char *key, size_t len,
                    bool *found);

#endif
