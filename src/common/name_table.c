#include "common/name_table.h"

#include <string.h>

int name_table_find(const void *table, int n, name_at_fn name_at, const char *key, size_t len,
                    bool *found)
{
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        const char *m = name_at(table, mid);
        int c = strncmp(m, key, len);
        if (c == 0)
            c = m[len] ? 1 : 0; /* m is longer than the key: it sorts after */
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}
