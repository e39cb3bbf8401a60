/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The tree operations of the sanitize hook: logs truncated or removed by explicit name rules,
 * removals by pattern, the contents of a directory. Every entry is named relative to the
 * descriptor of the directory it was listed in; see safefs.h.
 */
#include "host/safefs_tree.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"
#include "util/macro.h"
#include "util/str.h"

static bool is_digit(char c)
{
        return c >= '0' && c <= '9';
}

static bool ends_with(const char *s, size_t n, const char *suffix)
{
        size_t k = strlen(suffix);

        return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

bool safefs_is_rotated_log(const char *name)
{
        static const char *const suffixes[] = {".gz", ".xz", ".bz2", ".zst", ".old"};
        size_t n = strlen(name), d = 0;

        for (size_t i = 0; i < ELEMENTSOF(suffixes); i++)
                if (ends_with(name, n, suffixes[i]))
                        return true;
        /* .N or .NN: logrotate's and savelog's numbering */
        while (d < n && d < 3 && is_digit(name[n - 1 - d]))
                d++;
        if ((d == 1 || d == 2) && n > d && name[n - 1 - d] == '.')
                return true;
        /* -YYYYMMDD: logrotate's dateext */
        if (n < 9 || name[n - 9] != '-')
                return false;
        for (size_t i = n - 8; i < n; i++)
                if (!is_digit(name[i]))
                        return false;
        return true;
}

/*
 * The top of a tree, from the root without following a symlink: a descriptor, 0 for "nothing
 * there" (missing, not a directory, behind a symlink: with a notice), or an error.
 */
static int open_top(struct safefs *fs, const char *path, int *ret)
{
        int fd = safefs_open_dir(fs, path);

        if (fd == -ENOENT || fd == -ENOTDIR)
                return 0;
        if (fd == -ELOOP || fd == -EXDEV) {
                log_notice("%s: %s not followed: a symbolic link on the way", fs->op, path);
                return 0;
        }
        if (fd < 0)
                return safefs_fail(fs, path, fd, "cannot open");
        *ret = fd;
        return 1;
}

/*
 * Truncate regular file name of dfd, opened without following a link, without blocking on a
 * FIFO swapped in, and checked after the open: a regular file with one link (a hard link to a
 * file elsewhere would empty that file), not on another mount. A dry run opens it O_PATH.
 */
static void truncate_entry(struct safefs *fs, int dfd, const char *name, const char *path)
{
        _cleanup_close_ int fd = -1;
        struct stat st;

        fd = safefs_openat(fs, dfd, name, fs->dry_run ? O_PATH : O_WRONLY | O_NONBLOCK | O_NOCTTY,
                           false);
        if (fd == -ENOENT)
                return;
        if (fd == -ELOOP || fd == -ENXIO || fd == -ETXTBSY || fd == -EISDIR || fd == -EXDEV) {
                safefs_refuse(fs, path,
                              fd == -EXDEV ? "a mount point (another filesystem)"
                                           : "no longer a regular file (replaced since it was "
                                             "listed), or in use as a program");
                return;
        }
        if (fd < 0) {
                safefs_fail(fs, path, fd, "cannot open");
                return;
        }
        if (fstat(fd, &st) < 0) {
                safefs_fail(fs, path, -errno, "cannot stat");
                return;
        }
        if (!S_ISREG(st.st_mode)) {
                safefs_refuse(fs, path, "not a regular file");
                return;
        }
        if (st.st_nlink != 1) {
                safefs_refuse(fs, path,
                              "more than one hard link: truncating it would empty the "
                              "file under its other names too");
                return;
        }
        if (st.st_size == 0)
                return;
        safefs_manifest(fs, "truncate", path);
        if (!fs->dry_run && ftruncate(fd, 0) < 0)
                safefs_fail(fs, path, -errno, "cannot truncate");
}

/* What goes, of a log file or link called name: true to remove it, false to truncate it. */
static bool log_goes(const char *name, bool in_journal, bool live_journal)
{
        if (in_journal)
                return !live_journal || strchr(name, '@') ||
                       ends_with(name, strlen(name), ".journal~");
        return safefs_is_rotated_log(name);
}

static void logs_dir(struct safefs *fs, int dfd, const char *path, bool in_journal, bool live,
                     unsigned depth);

static void logs_subdir(struct safefs *fs, int dfd, const char *name, const char *path,
                        bool in_journal, bool live, unsigned depth)
{
        _cleanup_close_ int fd = -1;

        if (depth >= SAFEFS_MAX_DEPTH) {
                safefs_refuse(fs, path, "too deep (more than " SAFEFS_MAX_DEPTH_TEXT " levels)");
                return;
        }
        fd = safefs_openat(fs, dfd, name, O_RDONLY | O_DIRECTORY, false);
        if (fd == -ENOENT)
                return;
        if (fd == -ELOOP || fd == -ENOTDIR)
                safefs_refuse(fs, path,
                              "no longer a directory (replaced by a link or a file "
                              "since it was listed)");
        else if (fd == -EXDEV)
                safefs_refuse(fs, path, "a mount point (another filesystem): not entered");
        else if (fd < 0)
                safefs_fail(fs, path, fd, "cannot open");
        else
                logs_dir(fs, fd, path, in_journal || streq(name, "journal"), live, depth + 1);
}

static void logs_dir(struct safefs *fs, int dfd, const char *path, bool in_journal, bool live,
                     unsigned depth)
{
        _cleanup_(safefs_dir_done) struct safefs_dir d = {};
        int r = safefs_dir_open(fs, dfd, path, "cannot read the directory", &d);

        while (r >= 0 && safefs_dir_next(&d, "cannot walk")) {
                struct stat st;

                if (fstatat(dfd, d.name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (errno != ENOENT)
                                safefs_fail(fs, d.path, -errno, "cannot stat");
                        continue;
                }
                if (S_ISDIR(st.st_mode))
                        logs_subdir(fs, dfd, d.name, d.path, in_journal, live, depth);
                else if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode))
                        continue;
                else if (log_goes(d.name, in_journal, live))
                        safefs_remove_entry(fs, dfd, d.name, d.path);
                else if (S_ISREG(st.st_mode))
                        truncate_entry(fs, dfd, d.name, d.path);
        }
}

int safefs_logs(struct safefs *fs, const char *tree, bool live_journal)
{
        _cleanup_close_ int fd = -1;

        if (open_top(fs, tree, &fd) > 0)
                logs_dir(fs, fd, tree, false, live_journal, 0);
        return fs->error;
}

/* Split "/a/b/c" into "/a/b" and "c"; -EINVAL for a path that is not absolute or has no name. */
static int split_path(const char *path, char **ret_dir, const char **ret_name)
{
        const char *slash = strrchr(path, '/');
        const char *name = slash ? slash + 1 : NULL;

        if (path[0] != '/' || !name || !*name || streq(name, ".") || streq(name, ".."))
                return -EINVAL;
        *ret_dir = slash == path ? strdup("/") : strndup(path, (size_t)(slash - path));
        if (!*ret_dir)
                return -ENOMEM;
        *ret_name = name;
        return 0;
}

int safefs_remove(struct safefs *fs, const char *path)
{
        _cleanup_free_ char *dir = NULL;
        _cleanup_close_ int fd = -1;
        const char *name;
        int r;

        r = split_path(path, &dir, &name);
        if (r < 0)
                return safefs_fail(fs, path, r, "not an absolute path to remove");
        if (open_top(fs, dir, &fd) > 0)
                safefs_remove_entry(fs, fd, name, path);
        return fs->error;
}

/*
 * Remove the entries of directory dir (exact, absolute inside the root) whose names match pattern
 * (fnmatch() with flags), or with keep those that do not; with no pattern, all of them.
 */
static int remove_in(struct safefs *fs, const char *dir, const char *pattern, int flags, bool keep)
{
        _cleanup_(safefs_dir_done) struct safefs_dir d = {};
        _cleanup_close_ int fd = -1;
        int r;

        if (open_top(fs, dir, &fd) <= 0)
                return fs->error;
        r = safefs_dir_open(fs, fd, dir, "cannot read the directory", &d);
        if (r < 0)
                return r;
        while (safefs_dir_next(&d, "cannot remove"))
                if (!pattern || (fnmatch(pattern, d.name, flags) != 0) == keep)
                        safefs_remove_entry(fs, fd, d.name, d.path);
        return fs->error;
}

int safefs_remove_matching(struct safefs *fs, const char *pattern)
{
        _cleanup_free_ char *dir = NULL;
        const char *glob;
        int r;

        r = split_path(pattern, &dir, &glob);
        if (r >= 0 && strpbrk(dir, "*?[\\"))
                r = -EINVAL;
        if (r < 0)
                return safefs_fail(fs, pattern, r, "not a directory and a pattern");
        return remove_in(fs, dir, glob, FNM_PERIOD, false);
}

int safefs_remove_contents(struct safefs *fs, const char *dir, const char *keep)
{
        return remove_in(fs, dir, keep, 0, true);
}
