/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Safe file operations, as root, on trees that other users can write (/var/log, /tmp, /var/tmp,
 * the mail and cron spools, crash directories, /home): what the sanitize hook removes, truncates,
 * stashes and restores there.
 *
 * The root of the image is opened once. Every path below it is reached from that descriptor
 * with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS): a symlink in any
 * component is refused, never followed. Inside a tree each entry is named relative to its
 * directory's descriptor (fstatat(AT_SYMLINK_NOFOLLOW), unlinkat, openat2 of one component), so
 * a directory swapped for a symlink between the listing and the action is met as a symlink: the
 * link itself may be removed (it is inside the tree), what it points to never. Paths are never
 * turned into text to be split again; they are printed only in the manifest, escaped.
 *
 * This header holds the rules and the pieces; the operations are in safefs_tree.h (logs,
 * patterns, contents of a directory) and safefs_home.h (per-user files of /root and /home).
 *
 * Mount points: the top of a tree (and a home directory) may be a mount point of its own (/tmp as
 * a tmpfs, /home or /var/log on their own volume); below the top nothing on another mount is
 * entered, truncated or removed (RESOLVE_NO_XDEV, which also sees bind mounts): a user's FUSE
 * mount in /tmp, or a separate /var/log/audit, is left as it is and reported. Why: what is
 * mounted below a tree is not the tree's (a bind mount shows a directory from elsewhere, a FUSE
 * mount someone else's files), and the shell version did not cross either (find -xdev).
 *
 * Refused, reported (log_warning) and left in place, without failing the operation: an entry
 * reached through a symlink, a file to truncate that is not a regular file of one link (a hard
 * link would truncate a file elsewhere), a mount point, a tree deeper than SAFEFS_MAX_DEPTH, a
 * directory that a racing writer keeps filling. Anything else that fails (EIO, EROFS, ENOMEM) is
 * an error: the operation goes on with the next entry and returns the first error.
 *
 * Manifest: one line per path acted on, "OPERATION<TAB>ACTION<TAB>PATH", PATH as inside the
 * image, with a backslash, tab, newline and every other control character written as \\, \t,
 * \n, \xHH. It is printed just before the action, and in a dry run (which changes nothing) the
 * same lines are printed.
 */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#define SAFEFS_MAX_DEPTH      128
#define SAFEFS_MAX_DEPTH_TEXT "128"

struct safefs {
        int root_fd;        /* the image's root, opened once */
        const char *op;     /* the OPERATION of the manifest lines */
        bool dry_run;       /* print the manifest, change nothing */
        FILE *manifest;     /* where the manifest lines go */
        bool no_openat2;    /* resolve component by component (kernels before 5.6; tests) */
        unsigned n_refused; /* entries refused and reported */
        int error;          /* the first error (-errno), 0 when none */
};

/* Open root (a directory) for operation op; out: fs. */
int safefs_open(const char *root, const char *op, bool dry_run, FILE *manifest, struct safefs *fs);
void safefs_close(struct safefs *fs);

/*
 * Open path (absolute inside the root, "/var/log") as a directory, without following a symlink
 * in any component. -ENOENT when it is not there, -ELOOP when a component is a symlink,
 * -ENOTDIR when it is not a directory.
 */
int safefs_open_dir(struct safefs *fs, const char *path);

/* The manifest form of a path (escaped as above), or NULL when memory ran out. */
char *safefs_escape(const char *path);

/* ---- the pieces safefs_tree.c and safefs_home.c are made of ---- */

/* Report an entry left alone for the reason given; counts it. */
void safefs_refuse(struct safefs *fs, const char *path, const char *why);
/* Record error r (negative) for path, logged; returns r. */
int safefs_fail(struct safefs *fs, const char *path, int r, const char *what);
/* Print a manifest line. */
void safefs_manifest(struct safefs *fs, const char *action, const char *path);
/*
 * openat2(dirfd, path, flags) beneath dirfd, no symlinks, no magic links; xdev: may cross into
 * another mount. Returns the fd or -errno.
 */
int safefs_openat(struct safefs *fs, int dirfd, const char *path, int flags, bool xdev);
/* Remove entry name of directory dfd (shown as path), a directory with all in it. */
int safefs_remove_entry(struct safefs *fs, int dfd, const char *name, const char *path);
/* The names in directory dfd but "." and "..", sorted bytewise; a NULL-terminated vector. */
int safefs_list(int dfd, char ***ret);

/*
 * One pass over the entries of a directory, as a tree walk needs them:
 *
 *      _cleanup_(safefs_dir_done) struct safefs_dir d = {};
 *
 *      r = safefs_dir_open(fs, fd, path, "cannot read the directory", &d);
 *      while (r >= 0 && safefs_dir_next(&d, "cannot remove"))
 *              ... d.name (relative to fd), d.path (as shown: path/name) ...
 *
 * The names are listed once, sorted (safefs_list()). safefs_dir_open() reports a directory that
 * cannot be read (safefs_fail(), with what) and returns its error; safefs_dir_next() returns
 * false after the last entry, or when memory runs out (reported with what: the walk stops).
 */
struct safefs_dir {
        struct safefs *fs;
        const char *dir; /* the directory's path, as shown */
        char **names;
        size_t next;
        const char *name; /* the current entry */
        char *path;       /* dir/name ("/name" when dir is "/") */
};

int safefs_dir_open(struct safefs *fs, int dfd, const char *path, const char *what,
                    struct safefs_dir *ret);
bool safefs_dir_next(struct safefs_dir *d, const char *what);
void safefs_dir_done(struct safefs_dir *d);
