/* SPDX-License-Identifier: Apache-2.0 */
/* Atomic file replacement and bounded reads. */
#include "util/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/macro.h"
#include "util/str.h"

static int write_all(int fd, const void *data, size_t len)
{
        const char *p = data;

        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
        _cleanup_free_ char *copy = strdup(path), *tmp = NULL;
        _cleanup_close_ int fd = -1, dfd = -1;
        const char *dir;
        int r;

        if (!copy)
                return -ENOMEM;
        dir = dirname(copy);
        tmp = strprintf("%s.tmp.XXXXXX", path);
        if (!tmp)
                return -ENOMEM;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fchmod(fd, mode) < 0) {
                r = -errno;
                goto fail;
        }
        r = write_all(fd, data, len);
        if (r < 0)
                goto fail;
        if (fsync(fd) < 0) {
                r = -errno;
                goto fail;
        }
        if (rename(tmp, path) < 0) {
                r = -errno;
                goto fail;
        }
        /* The rename is durable only once the directory entry itself is on disk. */
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        if (fsync(dfd) < 0)
                return -errno;
        return 0;
fail:
        unlink(tmp);
        return r;
}

int read_file_bounded(const char *path, size_t max, char **ret, size_t *ret_len)
{
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        size_t len = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        if ((size_t)st.st_size > max)
                return -EFBIG;
        buf = malloc(max + 1);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t n = read(fd, buf + len, max + 1 - len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
                if (len > max)
                        return -EFBIG; /* grew while we read it */
        }
        buf[len] = '\0';
        *ret = TAKE_PTR(buf);
        if (ret_len)
                *ret_len = len;
        return 0;
}

int read_file_in(const char *dir, const char *name, size_t max, char **ret, size_t *ret_len)
{
        _cleanup_free_ char *path = strprintf("%s/%s", dir, name);
        int r;

        if (!path)
                return -ENOMEM;
        r = read_file_bounded(path, max, ret, ret_len);
        if (r == -ENOENT) {
                *ret = NULL;
                return 0;
        }
        return r;
}

int mkdir_parents(const char *path, mode_t mode)
{
        _cleanup_free_ char *copy = strdup(path);

        if (!copy)
                return -ENOMEM;
        for (char *p = copy + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = '\0';
                if (mkdir(copy, mode) < 0 && errno != EEXIST)
                        return -errno;
                *p = '/';
        }
        if (mkdir(copy, mode) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

int find_executable(const char *name, const char *search_path, char **ret)
{
        const char *p = search_path;

        while (p && *p) {
                size_t len = strcspn(p, ":");
                struct stat st;

                if (len > 0 && p[0] == '/') {
                        _cleanup_free_ char *path = strprintf("%.*s/%s", (int)len, p, name);

                        if (!path)
                                return -ENOMEM;
                        if (stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
                            access(path, X_OK) == 0) {
                                *ret = TAKE_PTR(path);
                                return 0;
                        }
                }
                p += len;
                if (*p == ':')
                        p++;
        }
        return -ENOENT;
}

int fd_move_above_stdio(int fd)
{
        int moved;

        if (fd < 0 || fd > STDERR_FILENO)
                return fd;
        moved = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
        if (moved < 0)
                moved = -errno;
        safe_close(fd);
        return moved;
}
