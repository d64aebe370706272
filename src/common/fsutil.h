/* Small file-system helpers shared by the broker's metadata writers. */
#ifndef RUNNEL_FSUTIL_H
#define RUNNEL_FSUTIL_H

#include <stddef.h>

/* fsync of a directory, so a rename or unlink in it is durable. */
int fsutil_fsync_dir(const char *dir);
/*
 * Replaces dir/name with data atomically: a temporary file (".tmp-<pid>-
 * <n>", short so a 249-character topic name still fits the 255-byte name
 * limit) is written, fsynced and renamed over name, then the directory
 * is fsynced.  A crash leaves the old or the new file, never a mix; a
 * leftover temporary is recognised by fsutil_is_temp().
 */
int fsutil_write_atomic(const char *dir, const char *name, const void *data, size_t len);
int fsutil_is_temp(const char *name);
/* Removes a file or a directory tree; missing is not an error. */
int fsutil_rm_rf(const char *path);

#endif
