/*
 * fileio: the few file operations whose failure the storage layer must
 * survive, behind function pointers so a test can inject a torn write or
 * a failing fsync (in the spirit of SQLite's crash VFS).
 *
 * Production code never changes storage_io.  A test may replace members
 * before it opens a plog and restore them afterwards (not thread-safe).
 */
#ifndef RUNNEL_FILEIO_H
#define RUNNEL_FILEIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct storage_io {
    ssize_t (*pwrite)(int fd, const void *buf, size_t n, off_t off);
    int (*fsync)(int fd);
    int (*ftruncate)(int fd, off_t len);
};
extern struct storage_io storage_io;
/* The real system calls, for restoring storage_io in tests. */
extern const struct storage_io storage_io_default;

/* Writes all n bytes at off (looping over short writes): 0, or -1 with
 * errno (EIO when a write made no progress). */
int sio_pwrite_all(int fd, const void *buf, size_t n, int64_t off);
int sio_fsync(int fd);
int sio_ftruncate(int fd, int64_t len);
/* Reads up to n bytes at off, looping over short reads; bytes read or -1. */
ssize_t sio_pread_all(int fd, void *buf, size_t n, int64_t off);

/*
 * Replaces dir/name atomically and durably: writes name.tmp, fsyncs it,
 * renames it over name and fsyncs the directory.  0, or -1 with errno.
 */
int sio_write_file_atomic(int dir_fd, const char *name, const void *data, size_t len);

#endif
