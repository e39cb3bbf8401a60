/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Safe file operations on trees other users can write: opening beneath the root without
 * symlinks, removing entries and whole trees relative to directory descriptors, the manifest.
 * The tree walks (logs, patterns, contents) are in safefs_tree.c, the per-user files of the
 * homes in safefs_home.c. See safefs.h for the rules.
 */
#include "host/safefs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util/log.h"
#include "util/macro.h"
#include "util/str.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(DIR *, closedir);

/* How often a tree is walked again while a racing writer keeps filling it. */
#define REMOVE_TRIES 3

int safefs_open(const char *root, const char *op, bool dry_run, FILE *manifest, struct safefs *fs)
{
        int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        if (fd < 0)
                return log_error_errno(errno, "%s: %m", root);
        *fs = (struct safefs){.root_fd = fd, .op = op, .dry_run = dry_run, .manifest = manifest};
        return 0;
}

void safefs_close(struct safefs *fs)
{
        fs->root_fd = safe_close(fs->root_fd);
}

char *safefs_escape(const char *path)
{
        char *out = malloc(strlen(path) * 4 + 1), *o = out;

        if (!out)
                return NULL;
        for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
                if (*p == '\\' || *p == '\n' || *p == '\t') {
                        *o++ = '\\';
                        *o++ = *p == '\n' ? 'n' : *p == '\t' ? 't' : '\\';
                } else if (*p < 0x20 || *p == 0x7f) {
                        snprintf(o, 5, "\\x%02x", *p);
                        o += 4;
                } else {
                        *o++ = (char)*p;
                }
        }
        *o = '\0';
        return out;
}

void safefs_manifest(struct safefs *fs, const char *action, const char *path)
{
        _cleanup_free_ char *e = safefs_escape(path);

        fprintf(fs->manifest, "%s\t%s\t%s\n", fs->op, action, e ? e : "(out of memory)");
        fflush(fs->manifest);
}

void safefs_refuse(struct safefs *fs, const char *path, const char *why)
{
        _cleanup_free_ char *e = safefs_escape(path);

        fs->n_refused++;
        log_warning("%s: %s left alone: %s", fs->op, strna(e), why);
}

int safefs_fail(struct safefs *fs, const char *path, int r, const char *what)
{
        _cleanup_free_ char *e = safefs_escape(path);

        log_error_errno(r, "%s: %s: %s: %m", fs->op, strna(e), what);
        if (fs->error == 0)
                fs->error = r;
        return r;
}

/*
 * The mount a descriptor is on, from /proc/self/fdinfo (mnt_id, Linux 3.15): st_dev alone
 * does not tell a bind mount of the same filesystem. -errno when /proc is not there.
 */
static int fd_mount_id(int fd, int *ret)
{
        char path[64], buf[512];
        _cleanup_close_ int f = -1;
        ssize_t n;
        const char *p;

        snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
        f = open(path, O_RDONLY | O_CLOEXEC);
        if (f < 0)
                return -errno;
        n = read(f, buf, sizeof(buf) - 1);
        if (n < 0)
                return -errno;
        buf[n] = '\0';
        p = strstr(buf, "mnt_id:");
        if (!p)
                return -ENODATA;
        *ret = (int)strtol(p + 7, NULL, 10);
        return 0;
}

/* True when fd is on the same mount as dirfd (by mount id, else by device). */
static bool same_mount(int dirfd, int fd)
{
        struct stat a, b;
        int ma, mb;

        if (fd_mount_id(dirfd, &ma) == 0 && fd_mount_id(fd, &mb) == 0)
                return ma == mb;
        return fstat(dirfd, &a) == 0 && fstat(fd, &b) == 0 && a.st_dev == b.st_dev;
}

/*
 * openat2()'s rules without openat2 (Linux before 5.6): one component at a time with
 * O_NOFOLLOW, ".." refused, each step checked to be on dirfd's mount unless xdev.
 */
static int open_by_components(int dirfd, const char *path, int flags, bool xdev)
{
        _cleanup_free_ char *copy = strdup(path);
        _cleanup_close_ int cur = -1;
        char *c, *next;

        if (!copy)
                return -ENOMEM;
        for (c = copy; c; c = next) {
                bool last;
                int fd, at = cur >= 0 ? cur : dirfd;

                next = strchr(c, '/');
                if (next)
                        *next++ = '\0';
                while (next && *next == '/')
                        next++;
                last = !next || !*next;
                if (!*c && !last)
                        continue;
                if (streq(c, ".."))
                        return -EXDEV;
                fd = openat(at, *c ? c : ".",
                            (last ? flags : O_PATH | O_DIRECTORY) | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (fd < 0) {
                        struct stat st;
                        int r = -errno;

                        if (r == -ENOTDIR && fstatat(at, c, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                            S_ISLNK(st.st_mode))
                                r = -ELOOP;
                        return r;
                }
                safe_close(cur);
                cur = fd;
                if (!xdev && !same_mount(dirfd, cur))
                        return -EXDEV;
                if (last)
                        break;
        }
        return TAKE_FD(cur);
}

static int openat_raw(struct safefs *fs, int dirfd, const char *path, int flags, bool xdev)
{
        struct open_how how = {
                .flags = (uint64_t)(flags | O_NOFOLLOW | O_CLOEXEC),
                .mode = (flags & O_CREAT) ? 0600 : 0,
                .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
                           (xdev ? 0 : RESOLVE_NO_XDEV),
        };
        long fd;

        if (!fs->no_openat2) {
                fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
                if (fd >= 0)
                        return (int)fd;
                if (errno != ENOSYS)
                        return -errno;
                log_debug("openat2() is not available: resolving one component at a time");
                fs->no_openat2 = true;
        }
        return open_by_components(dirfd, path, flags, xdev);
}

int safefs_openat(struct safefs *fs, int dirfd, const char *path, int flags, bool xdev)
{
        int fd = openat_raw(fs, dirfd, path, flags, xdev);

        /*
         * O_DIRECTORY | O_NOFOLLOW on a symlink gives ENOTDIR, not ELOOP: tell "a symlink" (which
         * is reported) from "a file" by opening the link itself (O_PATH | O_NOFOLLOW).
         */
        if (fd == -ENOTDIR && (flags & O_DIRECTORY)) {
                _cleanup_close_ int l = openat_raw(fs, dirfd, path, O_PATH, xdev);
                struct stat st;

                if (l >= 0 && fstat(l, &st) == 0 && S_ISLNK(st.st_mode))
                        return -ELOOP;
        }
        return fd;
}

int safefs_open_dir(struct safefs *fs, const char *path)
{
        while (*path == '/')
                path++;
        return safefs_openat(fs, fs->root_fd, *path ? path : ".", O_RDONLY | O_DIRECTORY, true);
}

static int cmp_names(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

int safefs_list(int dfd, char ***ret)
{
        _cleanup_strv_free_ char **v = NULL;
        _cleanup_(closedirp) DIR *d = NULL;
        struct dirent *de;
        int fd;

        /* A descriptor of our own: fdopendir() takes it, and its offset is not dfd's. */
        fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        d = fdopendir(fd);
        if (!d) {
                safe_close(fd);
                return -errno;
        }
        v = calloc(1, sizeof(char *));
        if (!v)
                return -ENOMEM;
        for (errno = 0; (de = readdir(d)); errno = 0) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (strv_push(&v, de->d_name) < 0)
                        return -ENOMEM;
        }
        if (errno != 0)
                return -errno;
        qsort(v, strv_length(v), sizeof(char *), cmp_names);
        *ret = TAKE_PTR(v);
        return 0;
}

int safefs_dir_open(struct safefs *fs, int dfd, const char *path, const char *what,
                    struct safefs_dir *ret)
{
        char **names = NULL;
        int r = safefs_list(dfd, &names);

        if (r < 0)
                return safefs_fail(fs, path, r, what);
        *ret = (struct safefs_dir){.fs = fs, .dir = path, .names = names};
        return 0;
}

bool safefs_dir_next(struct safefs_dir *d, const char *what)
{
        free(d->path);
        d->path = NULL;
        d->name = d->names ? d->names[d->next] : NULL;
        if (!d->name)
                return false;
        d->next++;
        d->path = strprintf("%s/%s", streq(d->dir, "/") ? "" : d->dir, d->name);
        if (!d->path) {
                safefs_fail(d->fs, d->dir, -ENOMEM, what);
                d->names = strv_free(d->names); /* the walk ends here */
                return false;
        }
        return true;
}

void safefs_dir_done(struct safefs_dir *d)
{
        strv_free(d->names);
        free(d->path);
        *d = (struct safefs_dir){};
}

static int remove_child(struct safefs *fs, int dfd, const char *name, const char *path,
                        unsigned depth);

/*
 * Empty directory fd (shown as path): every entry listed is removed. One pass: what a racing
 * writer adds meanwhile makes the removal of the directory fail with ENOTEMPTY, and the whole
 * tree is walked again from its top (safefs_remove_entry), so the work stays linear in the size
 * of the tree however deep it is.
 */
static void empty_dir(struct safefs *fs, int fd, const char *path, unsigned depth)
{
        _cleanup_(safefs_dir_done) struct safefs_dir d = {};
        int r = safefs_dir_open(fs, fd, path, "cannot read the directory", &d);

        while (r >= 0 && safefs_dir_next(&d, "cannot remove"))
                remove_child(fs, fd, d.name, d.path, depth + 1);
}

/*
 * Remove directory name of dfd with all in it. It is opened beneath dfd without following a
 * symlink or entering another mount, so what is emptied is the directory that is there now; if
 * it has been swapped for something else since, that (a symlink, a file) is what goes.
 * -ENOTEMPTY, not reported, when a racing writer got in the way: the directory is still not
 * empty though nothing inside was refused, or the name changed between directory and link.
 */
static int remove_dir(struct safefs *fs, int dfd, const char *name, const char *path,
                      unsigned depth)
{
        _cleanup_close_ int fd = -1;
        unsigned refused = fs->n_refused;

        if (depth > SAFEFS_MAX_DEPTH) {
                safefs_refuse(fs, path, "too deep (more than " SAFEFS_MAX_DEPTH_TEXT " levels)");
                return 0;
        }
        fd = safefs_openat(fs, dfd, name, O_RDONLY | O_DIRECTORY, false);
        if (fd == -ENOENT)
                return 0;
        if (fd == -ELOOP || fd == -ENOTDIR) {
                /* Replaced by a symlink or a file since it was seen: that goes, as a name. */
                if (unlinkat(dfd, name, 0) >= 0 || errno == ENOENT)
                        return 0;
                return errno == EISDIR ? -ENOTEMPTY
                                       : safefs_fail(fs, path, -errno, "cannot remove");
        }
        if (fd == -EXDEV) {
                safefs_refuse(fs, path, "a mount point (another filesystem): not entered");
                return 0;
        }
        if (fd < 0)
                return safefs_fail(fs, path, fd, "cannot open");
        empty_dir(fs, fd, path, depth);
        if (unlinkat(dfd, name, AT_REMOVEDIR) >= 0 || errno == ENOENT)
                return 0;
        if (errno == EBUSY) {
                safefs_refuse(fs, path, "a mount point");
                return 0;
        }
        if (errno == ENOTEMPTY || errno == EEXIST)
                /* What stays inside was reported already, or a writer is filling it. */
                return fs->n_refused == refused ? -ENOTEMPTY : 0;
        if (errno == ENOTDIR)
                return -ENOTEMPTY; /* swapped for a link or a file meanwhile */
        return safefs_fail(fs, path, -errno, "cannot remove");
}

/* Remove entry name of dfd: a file or symlink as a name (unlinkat never follows), else a tree. */
static int remove_child(struct safefs *fs, int dfd, const char *name, const char *path,
                        unsigned depth)
{
        if (unlinkat(dfd, name, 0) >= 0 || errno == ENOENT)
                return 0;
        if (errno == EISDIR)
                return remove_dir(fs, dfd, name, path, depth);
        if (errno == EBUSY) {
                safefs_refuse(fs, path, "a mount point");
                return 0;
        }
        return safefs_fail(fs, path, -errno, "cannot remove");
}

int safefs_remove_entry(struct safefs *fs, int dfd, const char *name, const char *path)
{
        _cleanup_close_ int fd = -1;

        /* Checked before the manifest line, so that a dry run lists what a real run removes. */
        fd = safefs_openat(fs, dfd, name, O_PATH, false);
        if (fd == -ENOENT)
                return 0;
        if (fd == -EXDEV) {
                safefs_refuse(fs, path, "a mount point (another filesystem)");
                return 0;
        }
        if (fd < 0 && fd != -ELOOP)
                return safefs_fail(fs, path, fd, "cannot open");
        safefs_manifest(fs, "remove", path);
        if (fs->dry_run)
                return 0;
        for (unsigned i = 0; i < REMOVE_TRIES; i++)
                if (remove_child(fs, dfd, name, path, 0) != -ENOTEMPTY)
                        return 0;
        safefs_refuse(fs, path, "a writer keeps changing it while it is removed");
        return 0;
}
