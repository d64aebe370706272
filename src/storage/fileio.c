/*
 * File operations with injectable failure points (see fileio.h).
 */
#include "storage/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static ssize_t sys_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    return pwrite(fd, buf, n, off);
}

static int sys_fsync(int fd)
{
    return fsync(fd);
}

static int sys_ftruncate(int fd, off_t len)
{
    return ftruncate(fd, len);
}

const struct storage_io storage_io_default = {sys_pwrite, sys_fsync, sys_ftruncate};
struct storage_io storage_io = {sys_pwrite, sys_fsync, sys_ftruncate};

int sio_pwrite_all(int fd, const void *buf, size_t n, int64_t off)
{
    const uint8_t *p = buf;
    while (n > 0) {
        ssize_t w = storage_io.pwrite(fd, p, n, (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (w == 0) {
            errno = EIO;
            return -1;
        }
        p += w;
        n -= (size_t)w;
        off += w;
    }
    return 0;
}

int sio_fsync(int fd)
{
    return storage_io.fsync(fd);
}

int sio_ftruncate(int fd, int64_t len)
{
    return storage_io.ftruncate(fd, (off_t)len);
}

ssize_t sio_pread_all(int fd, void *buf, size_t n, int64_t off)
{
    uint8_t *p = buf;
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, p + got, n - got, (off_t)(off + (int64_t)got));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

int sio_write_file_atomic(int dir_fd, const char *name, const void *data, size_t len)
{
    char tmp[512];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", name) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    if (sio_pwrite_all(fd, data, len, 0) < 0 || sio_fsync(fd) < 0) {
        int e = errno;
        close(fd);
        unlinkat(dir_fd, tmp, 0);
        errno = e;
        return -1;
    }
    if (close(fd) < 0 || renameat(dir_fd, tmp, dir_fd, name) < 0) {
        int e = errno;
        unlinkat(dir_fd, tmp, 0);
        errno = e;
        return -1;
    }
    return sio_fsync(dir_fd);
}
