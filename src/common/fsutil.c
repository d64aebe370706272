#define _XOPEN_SOURCE 700
#include "common/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define TEMP_PREFIX ".tmp-"

int fsutil_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int fsutil_is_temp(const char *name)
{
    return !strncmp(name, TEMP_PREFIX, strlen(TEMP_PREFIX));
}

int fsutil_write_atomic(const char *dir, const char *name, const void *data, size_t len)
{
    static atomic_uint counter;
    char path[4608], tmp[4608];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path ||
        (size_t)snprintf(tmp, sizeof tmp, "%s/" TEMP_PREFIX "%d-%u", dir, (int)getpid(),
                         atomic_fetch_add(&counter, 1)) >= sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    ssize_t w = write(fd, data, len);
    if (w != (ssize_t)len || fsync(fd)) {
        int e = errno;
        close(fd);
        unlink(tmp);
        errno = w >= 0 && w != (ssize_t)len ? EIO : e;
        return -1;
    }
    close(fd);
    if (rename(tmp, path)) {
        int e = errno;
        unlink(tmp);
        errno = e;
        return -1;
    }
    return fsutil_fsync_dir(dir);
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path) && errno != ENOENT ? -1 : 0;
}

int fsutil_rm_rf(const char *path)
{
    int rc = nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return rc && errno != ENOENT ? -1 : 0;
}
