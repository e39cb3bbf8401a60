/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Per-user files of the homes: removed, stashed with everything needed to put them back, and
 * restored by rename over the name. See safefs_home.h.
 */
#include "host/safefs_home.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "util/log.h"
#include "util/macro.h"
#include "util/str.h"

typedef void (*home_fn)(struct safefs *fs, int home_fd, const char *home, void *userdata);

static void with_home(struct safefs *fs, int dfd, const char *name, const char *home, home_fn fn,
                      void *userdata)
{
        /* A home may be a mount of its own (xdev): what is below it may not. */
        _cleanup_close_ int fd = safefs_openat(fs, dfd, name, O_RDONLY | O_DIRECTORY, true);

        if (fd == -ENOENT || fd == -ENOTDIR)
                return;
        if (fd == -ELOOP)
                log_notice("%s: %s not followed: a symbolic link", fs->op, home);
        else if (fd < 0)
                safefs_fail(fs, home, fd, "cannot open");
        else
                fn(fs, fd, home, userdata);
}

/* Call fn for /root and for every directory in /home not named with a leading dot. */
static int for_each_home(struct safefs *fs, home_fn fn, void *userdata)
{
        _cleanup_strv_free_ char **names = NULL;
        _cleanup_close_ int home_fd = -1;
        int r;

        with_home(fs, fs->root_fd, "root", "/root", fn, userdata);
        home_fd = safefs_open_dir(fs, "/home");
        if (home_fd == -ENOENT || home_fd == -ENOTDIR)
                return 0;
        if (home_fd < 0)
                return safefs_fail(fs, "/home", home_fd, "cannot open");
        r = safefs_list(home_fd, &names);
        if (r < 0)
                return safefs_fail(fs, "/home", r, "cannot read the directory");
        for (char **n = names; *n; n++) {
                _cleanup_free_ char *home = NULL;
                struct stat st;

                if ((*n)[0] == '.' || fstatat(home_fd, *n, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
                    !S_ISDIR(st.st_mode))
                        continue;
                home = strprintf("/home/%s", *n);
                if (!home)
                        return safefs_fail(fs, "/home", -ENOMEM, "cannot walk");
                with_home(fs, home_fd, *n, home, fn, userdata);
        }
        return 0;
}

/*
 * The directory of file (relative to the home) and its last name: 1 with *ret_fd open, 0 when
 * there is nothing to do (missing; refused and reported: a symlink or a mount on the way).
 */
static int open_parent(struct safefs *fs, int home_fd, const char *path, const char *file,
                       int *ret_fd, const char **ret_name)
{
        const char *slash = strrchr(file, '/');
        _cleanup_free_ char *dir = NULL;
        int fd;

        if (!slash) {
                fd = fcntl(home_fd, F_DUPFD_CLOEXEC, 3);
                if (fd < 0)
                        return safefs_fail(fs, path, -errno, "cannot open");
                *ret_fd = fd;
                *ret_name = file;
                return 1;
        }
        dir = strndup(file, (size_t)(slash - file));
        if (!dir)
                return safefs_fail(fs, path, -ENOMEM, "cannot open");
        fd = safefs_openat(fs, home_fd, dir, O_RDONLY | O_DIRECTORY, false);
        if (fd == -ENOENT || fd == -ENOTDIR)
                return 0;
        if (fd == -ELOOP || fd == -EXDEV) {
                safefs_refuse(fs, path,
                              fd == -ELOOP ? "a symbolic link on the way (not followed)"
                                           : "another filesystem on the way (not entered)");
                return 0;
        }
        if (fd < 0)
                return safefs_fail(fs, path, fd, "cannot open");
        *ret_fd = fd;
        *ret_name = slash + 1;
        return 1;
}

struct home_job {
        char *const *files;
        bool stash;   /* stash before the removal */
        int stash_fd; /* the stash (-1 in a dry run) */
};

/* ---- stash ---- */

/* Copy the data of src to dst, at most SAFEFS_STASH_MAX bytes (-EFBIG beyond). */
static int copy_data(int src, int dst)
{
        char buf[16384];
        size_t total = 0;
        ssize_t n;

        while ((n = read(src, buf, sizeof(buf))) != 0) {
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                total += (size_t)n;
                if (total > SAFEFS_STASH_MAX)
                        return -EFBIG;
                for (ssize_t off = 0; off < n;) {
                        ssize_t w = write(dst, buf + off, (size_t)(n - off));
                        if (w < 0 && errno != EINTR)
                                return -errno;
                        off += w > 0 ? w : 0;
                }
        }
        return 0;
}

/* The extended attributes of src onto dst (SELinux labels: ssh_home_t); best effort. */
static void copy_xattrs(int src, int dst)
{
        char names[4096], value[4096];
        ssize_t n = flistxattr(src, names, sizeof(names));

        for (ssize_t i = 0; i < n; i += (ssize_t)strlen(names + i) + 1) {
                ssize_t v = fgetxattr(src, names + i, value, sizeof(value));
                if (v >= 0 && fsetxattr(dst, names + i, value, (size_t)v, 0) < 0)
                        log_debug("cannot copy the attribute %s: %m", names + i);
        }
}

/* Owner, mode, extended attributes and times of st (and src's attributes) onto fd. */
static int copy_meta(int src, int fd, const struct stat *st)
{
        struct timespec ts[2] = {st->st_atim, st->st_mtim};

        if (fchown(fd, st->st_uid, st->st_gid) < 0 || fchmod(fd, st->st_mode & 07777) < 0)
                return -errno;
        copy_xattrs(src, fd);
        return futimens(fd, ts) < 0 ? -errno : 0;
}

/* A copy of regular file src (st) as name in dfd: created anew, data, owner, mode, times. */
static int write_copy(struct safefs *fs, int src, const struct stat *st, int dfd, const char *name)
{
        _cleanup_close_ int fd = -1;
        int r;

        fd = safefs_openat(fs, dfd, name, O_WRONLY | O_CREAT | O_EXCL, false);
        if (fd < 0)
                return fd;
        r = copy_data(src, fd);
        if (r >= 0)
                r = copy_meta(src, fd, st);
        if (r < 0)
                (void)unlinkat(dfd, name, 0);
        return r;
}

/* A copy of the symlink name of sdfd (st) as new in dfd, with its owner and times. */
static int write_link_copy(int sdfd, const char *name, const struct stat *st, int dfd,
                           const char *new)
{
        char target[4096];
        struct timespec ts[2] = {st->st_atim, st->st_mtim};
        ssize_t n = readlinkat(sdfd, name, target, sizeof(target) - 1);

        if (n < 0)
                return -errno;
        target[n] = '\0';
        if (symlinkat(target, dfd, new) < 0)
                return -errno;
        if (fchownat(dfd, new, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) < 0 ||
            utimensat(dfd, new, ts, AT_SYMLINK_NOFOLLOW) < 0) {
                int r = -errno;
                (void)unlinkat(dfd, new, 0);
                return r;
        }
        return 0;
}

/* stash/user/<path's directories>, made as needed (the stash is root's own tmpfs). */
static int stash_dir_for(struct safefs *fs, int stash_fd, const char *path, const char **ret_name)
{
        _cleanup_free_ char *copy = strprintf("user%s", path);
        _cleanup_close_ int cur = -1;
        char *c, *slash;

        if (!copy)
                return -ENOMEM;
        cur = fcntl(stash_fd, F_DUPFD_CLOEXEC, 3);
        for (c = copy; cur >= 0 && (slash = strchr(c, '/')); c = slash + 1) {
                int fd;

                *slash = '\0';
                if (mkdirat(cur, c, 0700) < 0 && errno != EEXIST)
                        return -errno;
                fd = safefs_openat(fs, cur, c, O_RDONLY | O_DIRECTORY, false);
                if (fd < 0)
                        return fd;
                safe_close(cur);
                cur = fd;
        }
        if (cur < 0)
                return -errno;
        /* The last component, in path (copy is "user" followed by path). */
        *ret_name = path + (c - copy) - strlen("user");
        return TAKE_FD(cur);
}

/*
 * Stash name of pfd (shown as path) and remove it. The file is opened without following a link
 * and checked after the open; anything but a regular file of one link or a symlink stays.
 */
static void stash_one(struct safefs *fs, int stash_fd, int pfd, const char *name, const char *path)
{
        _cleanup_close_ int src = -1, sdir = -1;
        const char *sname = NULL;
        struct stat st;
        int r;

        if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                if (errno != ENOENT)
                        safefs_fail(fs, path, -errno, "cannot stat");
                return;
        }
        if (S_ISREG(st.st_mode)) {
                src = safefs_openat(fs, pfd, name, O_RDONLY | O_NONBLOCK | O_NOCTTY, false);
                if (src >= 0 && fstat(src, &st) < 0)
                        src = -errno;
                if (src == -ENOENT)
                        return;
                if (src < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1 ||
                    st.st_size > SAFEFS_STASH_MAX) {
                        safefs_refuse(fs, path,
                                      "not a regular file of one link and at most 1 MiB "
                                      "(or replaced since): not stashed, not removed");
                        return;
                }
        } else if (!S_ISLNK(st.st_mode)) {
                safefs_refuse(fs, path, "not a file or a symbolic link: not stashed, not removed");
                return;
        }
        safefs_manifest(fs, "stash", path);
        if (!fs->dry_run) {
                sdir = stash_dir_for(fs, stash_fd, path, &sname);
                r = sdir < 0              ? sdir
                    : S_ISREG(st.st_mode) ? write_copy(fs, src, &st, sdir, sname)
                                          : write_link_copy(pfd, name, &st, sdir, sname);
                if (r < 0) {
                        safefs_fail(fs, path, r, "cannot stash (left in place)");
                        return;
                }
        }
        safefs_remove_entry(fs, pfd, name, path);
}

static void home_files(struct safefs *fs, int home_fd, const char *home, void *userdata)
{
        const struct home_job *job = userdata;

        for (char *const *f = job->files; *f; f++) {
                _cleanup_free_ char *path = strprintf("%s/%s", home, *f);
                _cleanup_close_ int pfd = -1;
                const char *name = NULL;

                if (!path) {
                        safefs_fail(fs, home, -ENOMEM, "cannot walk");
                        return;
                }
                if (open_parent(fs, home_fd, path, *f, &pfd, &name) <= 0)
                        continue;
                if (job->stash)
                        stash_one(fs, job->stash_fd, pfd, name, path);
                else
                        safefs_remove_entry(fs, pfd, name, path);
        }
}

static int check_files(struct safefs *fs, char *const *files)
{
        for (char *const *f = files; *f; f++)
                if (!**f || (*f)[0] == '/' || strstr(*f, "..") || (*f)[strlen(*f) - 1] == '/')
                        return safefs_fail(fs, *f, -EINVAL, "not a plain path inside a home");
        return 0;
}

int safefs_home_remove(struct safefs *fs, char *const *files)
{
        struct home_job job = {.files = files, .stash_fd = -1};

        if (check_files(fs, files) < 0)
                return fs->error;
        for_each_home(fs, home_files, &job);
        return fs->error;
}

int safefs_home_stash(struct safefs *fs, const char *stash_dir, char *const *files)
{
        _cleanup_close_ int sfd = -1;
        struct home_job job = {.files = files, .stash = true, .stash_fd = -1};

        if (check_files(fs, files) < 0)
                return fs->error;
        /* A dry run needs no stash (there may be none). */
        if (!fs->dry_run) {
                sfd = open(stash_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (sfd < 0)
                        return safefs_fail(fs, stash_dir, -errno, "cannot open the stash");
                job.stash_fd = sfd;
        }
        for_each_home(fs, home_files, &job);
        return fs->error;
}

/* ---- restore ---- */

/*
 * Put stashed name of sdfd back as name in lfd (shown as path): a new file (or link) with a
 * temporary name, renamed over the name, so that whatever the name is now (a symlink to root's
 * files included) is replaced and never written through.
 */
static void restore_one(struct safefs *fs, int sdfd, const char *name, int lfd, const char *path)
{
        static unsigned counter;
        _cleanup_close_ int src = -1;
        char tmp[64];
        struct stat st;
        int r = -EEXIST;

        if (fstatat(sdfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                safefs_fail(fs, path, -errno, "cannot read the stash");
                return;
        }
        if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode))
                return;
        if (fs->dry_run) {
                safefs_manifest(fs, "restore", path);
                return;
        }
        if (S_ISREG(st.st_mode)) {
                src = openat(sdfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
                if (src < 0) {
                        safefs_fail(fs, path, -errno, "cannot read the stash");
                        return;
                }
        }
        for (unsigned i = 0; i < 16 && r == -EEXIST; i++) {
                snprintf(tmp, sizeof(tmp), ".ec2-imaged-restore.%d.%u", (int)getpid(), counter++);
                r = S_ISREG(st.st_mode) ? write_copy(fs, src, &st, lfd, tmp)
                                        : write_link_copy(sdfd, name, &st, lfd, tmp);
        }
        if (r < 0) {
                safefs_fail(fs, path, r, "cannot restore");
                return;
        }
        safefs_manifest(fs, "restore", path);
        if (renameat(lfd, tmp, lfd, name) < 0) {
                r = -errno;
                (void)unlinkat(lfd, tmp, 0);
                if (r == -EISDIR || r == -ENOTEMPTY || r == -EBUSY)
                        safefs_refuse(fs, path, "a directory or a mount point now: not restored");
                else
                        safefs_fail(fs, path, r, "cannot restore");
        }
}

static void restore_tree(struct safefs *fs, int sdfd, int lfd, const char *path, unsigned depth)
{
        _cleanup_(safefs_dir_done) struct safefs_dir d = {};
        int r = safefs_dir_open(fs, sdfd, path, "cannot read the stash", &d);

        while (r >= 0 && safefs_dir_next(&d, "cannot restore")) {
                _cleanup_close_ int s = -1, l = -1;
                struct stat st;

                if (fstatat(sdfd, d.name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode)) {
                        restore_one(fs, sdfd, d.name, lfd, d.path);
                        continue;
                }
                if (depth >= SAFEFS_MAX_DEPTH)
                        continue;
                s = openat(sdfd, d.name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                l = safefs_openat(fs, lfd, d.name, O_RDONLY | O_DIRECTORY, false);
                if (s < 0)
                        safefs_fail(fs, d.path, -errno, "cannot read the stash");
                else if (l == -ELOOP)
                        safefs_refuse(fs, d.path,
                                      "a symbolic link now (not followed): what was "
                                      "stashed below it is not restored");
                else if (l == -ENOENT || l == -ENOTDIR || l == -EXDEV)
                        safefs_refuse(fs, d.path,
                                      "gone, not a directory or another filesystem "
                                      "now: what was stashed below it is not restored");
                else if (l < 0)
                        safefs_fail(fs, d.path, l, "cannot open");
                else
                        restore_tree(fs, s, l, d.path, depth + 1);
        }
}

/* The stashed tree of one home (sname in sdfd) back into home. */
static void restore_home(struct safefs *fs, int sdfd, const char *sname, const char *home)
{
        _cleanup_close_ int s =
                openat(sdfd, sname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        _cleanup_close_ int l = -1;

        if (s < 0)
                return;
        l = safefs_open_dir(fs, home);
        if (l < 0)
                safefs_refuse(fs, home,
                              "gone or reached through a symbolic link now: its stashed "
                              "files are not restored");
        else
                restore_tree(fs, s, l, home, 0);
}

int safefs_home_restore(struct safefs *fs, const char *stash_dir)
{
        _cleanup_strv_free_ char **names = NULL;
        _cleanup_close_ int sfd = -1, ufd = -1, hfd = -1;

        sfd = open(stash_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sfd >= 0)
                ufd = openat(sfd, "user", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (ufd < 0)
                return errno == ENOENT ? 0 : safefs_fail(fs, stash_dir, -errno, "cannot open");
        restore_home(fs, ufd, "root", "/root");
        hfd = openat(ufd, "home", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (hfd < 0 || safefs_list(hfd, &names) < 0)
                return fs->error;
        for (char **n = names; *n; n++) {
                _cleanup_free_ char *home = strprintf("/home/%s", *n);

                if (!home)
                        return safefs_fail(fs, "/home", -ENOMEM, "cannot restore");
                restore_home(fs, hfd, *n, home);
        }
        return fs->error;
}
