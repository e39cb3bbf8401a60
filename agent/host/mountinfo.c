/* SPDX-License-Identifier: Apache-2.0 */
/* Mount selection: parse mountinfo and choose which mount points to freeze, in freeze order. */
#include "host/mountinfo.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/fileio.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/str.h"

#define MOUNTINFO_DEFAULT "/proc/self/mountinfo"
#define SYSFS_DEFAULT     "/sys"

/* A loop device's backing_file attribute is one page at most; device stacks are shallow. */
#define BACKING_FILE_MAX  8192u
#define BACKING_DEPTH_MAX 8u
#define BACKING_FILES_MAX 64u

static const char *const freezable_types[] = {
        "ext3", "ext4", "xfs", "btrfs", "f2fs", "jfs", "reiserfs", "gfs2", "ocfs2", "nilfs2",
};

/* ------------------------------------------------------------------ mountinfo */

struct mount_entry {
        unsigned major, minor;
        bool fs_root; /* mounts the root of its filesystem, not a bind mount of a subdirectory */
        bool ro;      /* the mount or its superblock is read-only */
        const char *path, *fstype, *source; /* unescaped, inside mount_table.buf */
};

struct mount_table {
        char *buf;
        struct mount_entry *entries;
        size_t n;
};

static void mount_table_done(struct mount_table *t)
{
        free(t->buf);
        free(t->entries);
}

/* Fields are separated by exactly one space; an empty source shows up as an empty field. */
static char *next_field(char **p)
{
        char *s = *p, *e;

        if (!s)
                return NULL;
        e = strchr(s, ' ');
        if (e) {
                *e = '\0';
                *p = e + 1;
        } else {
                *p = NULL;
        }
        return s;
}

/* The kernel writes space, tab, newline and backslash in paths as \ooo (octal). */
static int unescape_octal(char *s)
{
        char *w = s;

        for (const char *r = s; *r;) {
                if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
                    r[3] >= '0' && r[3] <= '7') {
                        int v = (r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0');

                        if (v == 0)
                                return -EBADMSG;
                        *w++ = (char)v;
                        r += 4;
                } else {
                        *w++ = *r++;
                }
        }
        *w = '\0';
        return 0;
}

static bool has_option(const char *opts, const char *opt)
{
        size_t len = strlen(opt);

        for (const char *p = opts; p && *p;) {
                const char *e = strchrnul(p, ',');

                if ((size_t)(e - p) == len && strncmp(p, opt, len) == 0)
                        return true;
                p = *e ? e + 1 : e;
        }
        return false;
}

/* One line: ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS */
static int parse_mount_line(char *line, struct mount_entry *ret)
{
        char *p = line, *f[6], *sep, *fstype, *source, *superopts;
        struct mount_entry e = {};
        int n = 0;

        for (size_t i = 0; i < ELEMENTSOF(f); i++) {
                f[i] = next_field(&p);
                if (!f[i] || !*f[i])
                        return -EBADMSG;
        }
        do
                sep = next_field(&p);
        while (sep && !streq(sep, "-"));
        fstype = next_field(&p);
        source = next_field(&p);
        superopts = next_field(&p);
        if (!sep || !fstype || !source || !superopts || !*fstype)
                return -EBADMSG;
        if (sscanf(f[2], "%u:%u%n", &e.major, &e.minor, &n) != 2 || f[2][n] != '\0')
                return -EBADMSG;
        if (unescape_octal(f[3]) < 0 || unescape_octal(f[4]) < 0 || unescape_octal(fstype) < 0 ||
            unescape_octal(source) < 0 || f[4][0] != '/')
                return -EBADMSG;
        e.fs_root = streq(f[3], "/");
        e.ro = has_option(f[5], "ro") || has_option(superopts, "ro");
        e.path = f[4];
        e.fstype = fstype;
        e.source = source;
        *ret = e;
        return 0;
}

static int mount_table_load(const char *path, struct mount_table *ret)
{
        struct mount_table t = {};
        size_t cap = 0, line_no = 0;
        char *p;
        int r;

        r = read_file_bounded(path, FREEZE_MOUNTINFO_MAX, &t.buf, NULL);
        if (r == -EFBIG)
                return log_error_errno(r, "%s is larger than %u bytes, refusing it", path,
                                       FREEZE_MOUNTINFO_MAX);
        if (r < 0)
                return log_error_errno(r, "Failed to read %s: %m", path);

        for (p = t.buf; p && *p;) {
                char *line = p, *nl = strchr(p, '\n');

                if (nl)
                        *nl = '\0';
                p = nl ? nl + 1 : NULL;
                line_no++;
                if (!*line)
                        continue;
                if (t.n == cap) {
                        size_t ncap = cap ? cap * 2 : 64;
                        struct mount_entry *ne = reallocarray(t.entries, ncap, sizeof(*ne));

                        if (!ne) {
                                mount_table_done(&t);
                                return log_error_errno(ENOMEM, "Out of memory");
                        }
                        t.entries = ne;
                        cap = ncap;
                }
                r = parse_mount_line(line, &t.entries[t.n]);
                if (r < 0) {
                        mount_table_done(&t);
                        return log_error_errno(r, "%s:%zu: malformed mount entry", path, line_no);
                }
                t.n++;
        }
        *ret = t;
        return 0;
}

/* ------------------------------------------------------------------ selection */

static bool is_freezable_type(const char *fstype)
{
        for (size_t i = 0; i < ELEMENTSOF(freezable_types); i++)
                if (streq(fstype, freezable_types[i]))
                        return true;
        return false;
}

/* Absolute, no "." or "..", single slashes, no trailing slash: the form mountinfo uses. */
static int normalize_path(const char *in, char **ret)
{
        _cleanup_free_ char *out = NULL;
        char *w;

        if (!in || in[0] != '/')
                return -EINVAL;
        out = malloc(strlen(in) + 2);
        if (!out)
                return -ENOMEM;
        w = out;
        for (const char *p = in; *p;) {
                const char *e;

                if (*p == '/') {
                        p++;
                        continue;
                }
                e = strchrnul(p, '/');
                if (streq(p, ".") || streq(p, "..") || startswith(p, "./") || startswith(p, "../"))
                        return -EINVAL;
                *w++ = '/';
                memcpy(w, p, (size_t)(e - p));
                w += e - p;
                p = e;
        }
        if (w == out)
                *w++ = '/';
        *w = '\0';
        *ret = TAKE_PTR(out);
        return 0;
}

static unsigned path_depth(const char *path)
{
        unsigned d = 0;

        for (const char *p = path; *p; p++)
                if (*p == '/' && p[1] != '\0')
                        d++;
        return d;
}

/* Only the last of several mounts on one path can be reached through that path. */
static bool is_shadowed(const struct mount_table *t, size_t i)
{
        for (size_t j = i + 1; j < t->n; j++)
                if (streq(t->entries[j].path, t->entries[i].path))
                        return true;
        return false;
}

static const struct mount_entry *find_visible(const struct mount_table *t, const char *path)
{
        for (size_t i = t->n; i > 0; i--)
                if (streq(t->entries[i - 1].path, path))
                        return &t->entries[i - 1];
        return NULL;
}

struct pick {
        const struct mount_entry *e;
        size_t rank; /* order among equals */
        unsigned depth;
};

static struct pick *find_pick_by_dev(struct pick *picks, size_t n, const struct mount_entry *e)
{
        for (size_t i = 0; i < n; i++)
                if (picks[i].e->major == e->major && picks[i].e->minor == e->minor)
                        return &picks[i];
        return NULL;
}

static int pick_cmp(const void *a, const void *b)
{
        const struct pick *x = a, *y = b;

        /* Deeper mount points first, where no backing file says otherwise (see order_picks()). */
        if (x->depth != y->depth)
                return x->depth > y->depth ? -1 : 1;
        return x->rank < y->rank ? -1 : x->rank > y->rank;
}

static bool is_auto(const char *const *configured)
{
        return !configured || !configured[0] || (streq(configured[0], "auto") && !configured[1]);
}

static void select_auto(const struct mount_table *t, struct pick *picks, size_t *n)
{
        for (size_t i = 0; i < t->n; i++) {
                const struct mount_entry *e = &t->entries[i];
                struct pick *dup;

                if (!is_freezable_type(e->fstype) || !startswith(e->source, "/dev/") || e->ro ||
                    is_shadowed(t, i))
                        continue;
                dup = find_pick_by_dev(picks, *n, e);
                if (dup) {
                        /* A bind mount of a subdirectory may be a file; the filesystem's own
                         * root is the better handle for the same superblock. */
                        if (!dup->e->fs_root && e->fs_root)
                                *dup = (struct pick){e, dup->rank, path_depth(e->path)};
                        continue;
                }
                picks[(*n)++] = (struct pick){e, i, path_depth(e->path)};
        }
}

/* An explicit entry we cannot use: an error, or when thawing (lenient) a warning and a skip. */
_printf_(3, 4) static int reject(bool lenient, int error, const char *format, ...)
{
        char msg[512];
        va_list ap;

        va_start(ap, format);
        vsnprintf(msg, sizeof(msg), format, ap);
        va_end(ap);
        if (lenient) {
                log_warning("%s; skipping it", msg);
                return 0;
        }
        return log_error_errno(error, "%s", msg);
}

static int select_explicit(const struct mount_table *t, const char *const *configured, bool lenient,
                           struct pick *picks, size_t *n)
{
        for (size_t k = 0; configured[k]; k++) {
                _cleanup_free_ char *path = NULL;
                const struct mount_entry *e;
                struct pick *dup;
                int r;

                if (streq(configured[k], "auto"))
                        return log_error_errno(EINVAL, "\"auto\" cannot be combined with mount "
                                                       "points in the freeze list");
                r = normalize_path(configured[k], &path);
                if (r == -ENOMEM)
                        return log_error_errno(r, "Out of memory");
                if (r < 0) {
                        r = reject(lenient, r,
                                   "Cannot freeze \"%s\": not an absolute path without . or .. "
                                   "components",
                                   configured[k]);
                        if (r < 0)
                                return r;
                        continue;
                }
                e = find_visible(t, path);
                if (!e) {
                        r = reject(lenient, EINVAL, "Cannot freeze %s: not a mount point",
                                   configured[k]);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (!is_freezable_type(e->fstype)) {
                        r = reject(lenient, EOPNOTSUPP,
                                   "Cannot freeze %s: it is a %s filesystem, which does not "
                                   "support freezing",
                                   configured[k], e->fstype);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (e->ro) {
                        log_notice("Not freezing %s: it is mounted read-only", configured[k]);
                        continue;
                }
                dup = find_pick_by_dev(picks, *n, e);
                if (dup) {
                        log_notice("%s is the same filesystem as %s; freezing it once",
                                   configured[k], dup->e->path);
                        continue;
                }
                picks[(*n)++] = (struct pick){e, k, path_depth(e->path)};
        }
        return 0;
}

/* ------------------------------------------------------------------ backing files */

static void closedirp(DIR **d)
{
        if (*d)
                closedir(*d);
}

/*
 * Add to *paths the backing files of the loop devices that the block device whose sysfs directory
 * is dir is built on: its own loop/backing_file; its whole disk's when it is a partition (dir/..,
 * which sysfs resolves from the device's real directory); and those of the devices under it
 * (slaves/, for device-mapper and md). Attributes that are missing or unreadable mean "none".
 */
static int collect_backing(const char *dir, unsigned depth, char ***paths)
{
        _cleanup_free_ char *attr = NULL, *part = NULL, *slaves = NULL, *buf = NULL;
        _cleanup_(closedirp) DIR *d = NULL;
        struct dirent *de;
        size_t len = 0;
        int r;

        if (depth > BACKING_DEPTH_MAX || strv_length(*paths) >= BACKING_FILES_MAX)
                return 0;
        attr = strprintf("%s/loop/backing_file", dir);
        part = strprintf("%s/partition", dir);
        slaves = strprintf("%s/slaves", dir);
        if (!attr || !part || !slaves)
                return -ENOMEM;
        if (read_file_bounded(attr, BACKING_FILE_MAX, &buf, &len) >= 0 && len > 0) {
                /* One trailing newline is the attribute's; the rest is the path as it is. */
                if (buf[len - 1] == '\n')
                        buf[--len] = '\0';
                if (buf[0] == '/' && strv_push(paths, buf) < 0)
                        return -ENOMEM;
        }
        if (access(part, F_OK) == 0) {
                _cleanup_free_ char *disk = strprintf("%s/..", dir);

                if (!disk)
                        return -ENOMEM;
                r = collect_backing(disk, depth + 1, paths);
                if (r < 0)
                        return r;
        }
        d = opendir(slaves);
        while (d && (de = readdir(d))) {
                _cleanup_free_ char *sub = NULL;

                if (de->d_name[0] == '.')
                        continue;
                sub = strprintf("%s/%s", slaves, de->d_name);
                if (!sub)
                        return -ENOMEM;
                r = collect_backing(sub, depth + 1, paths);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Whether mount point m is path or one of its parents. */
static bool mount_covers(const char *m, const char *path)
{
        size_t n = strlen(m);

        if (streq(m, "/"))
                return true;
        return strncmp(path, m, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* The mount a path is on: the longest mount point above it, the later of two on one path. */
static const struct mount_entry *holder_of(const struct mount_table *t, const char *path)
{
        const struct mount_entry *best = NULL;

        for (size_t i = 0; i < t->n; i++) {
                const struct mount_entry *e = &t->entries[i];

                if (mount_covers(e->path, path) && (!best || strlen(e->path) >= strlen(best->path)))
                        best = e;
        }
        return best;
}

/* edge[i * n + k]: picks[i] must be frozen before picks[k], which holds one of its backing files.
 */
static int backing_edges(const struct mount_table *t, const char *sysfs, const struct pick *picks,
                         size_t n, bool *edge, size_t *indeg)
{
        for (size_t i = 0; i < n; i++) {
                _cleanup_strv_free_ char **files = calloc(1, sizeof(char *));
                _cleanup_free_ char *dir = strprintf("%s/dev/block/%u:%u", sysfs, picks[i].e->major,
                                                     picks[i].e->minor);
                int r;

                if (!files || !dir)
                        return -ENOMEM;
                r = collect_backing(dir, 0, &files);
                if (r < 0)
                        return r;
                for (char **f = files; *f; f++) {
                        const struct mount_entry *h = holder_of(t, *f);
                        struct pick *j = h ? find_pick_by_dev((struct pick *)picks, n, h) : NULL;
                        size_t k = j ? (size_t)(j - picks) : i;

                        if (k == i || edge[i * n + k])
                                continue;
                        edge[i * n + k] = true;
                        indeg[k]++;
                        log_debug("%s is on a loop device backed by %s on %s: frozen before it",
                                  picks[i].e->path, *f, j->e->path);
                }
        }
        return 0;
}

/*
 * Put the picks in freeze order. A filesystem on a loop device writes into its backing file, and
 * freezing it flushes its journal and superblock there: were the filesystem that holds that file
 * frozen already, the freeze would wait for its thaw (the guard's timeout). So each filesystem
 * comes before those that hold its backing files, and is thawed after them (the thaw goes in
 * reverse). Where no backing file decides: deeper mount points first, then mountinfo (auto) or
 * configured order. A cycle, which a real system cannot have, is broken in that same order.
 */
static int order_picks(const struct mount_table *t, const char *sysfs, struct pick *picks, size_t n)
{
        _cleanup_free_ bool *edge = NULL, *placed = NULL;
        _cleanup_free_ size_t *indeg = NULL;
        _cleanup_free_ struct pick *out = NULL;
        int r;

        qsort(picks, n, sizeof(*picks), pick_cmp);
        if (n < 2)
                return 0;
        if (n > SIZE_MAX / n)
                return -ENOMEM;
        edge = calloc(n * n, sizeof(*edge));
        placed = calloc(n, sizeof(*placed));
        indeg = calloc(n, sizeof(*indeg));
        out = calloc(n, sizeof(*out));
        if (!edge || !placed || !indeg || !out)
                return -ENOMEM;
        r = backing_edges(t, sysfs, picks, n, edge, indeg);
        if (r < 0)
                return r;
        for (size_t m = 0; m < n; m++) {
                size_t next = n;

                for (size_t i = 0; i < n && next == n; i++)
                        if (!placed[i] && indeg[i] == 0)
                                next = i;
                if (next == n) {
                        for (size_t i = 0; i < n && next == n; i++)
                                if (!placed[i])
                                        next = i;
                        log_warning("%s and the filesystems holding its backing files form a "
                                    "cycle; freezing it first",
                                    picks[next].e->path);
                }
                placed[next] = true;
                out[m] = picks[next];
                for (size_t k = 0; k < n; k++)
                        if (edge[next * n + k] && !placed[k])
                                indeg[k]--;
        }
        memcpy(picks, out, n * sizeof(*picks));
        return 0;
}

int mountinfo_select(const char *const *configured, const char *mountinfo_path,
                     const char *sysfs_path, bool lenient, char ***ret)
{
        _cleanup_(mount_table_done) struct mount_table t = {};
        _cleanup_free_ struct pick *picks = NULL;
        _cleanup_strv_free_ char **out = NULL;
        size_t n = 0;
        int r;

        r = mount_table_load(mountinfo_path ?: MOUNTINFO_DEFAULT, &t);
        if (r < 0)
                return r;
        /* Never more picks than entries (auto) or configured paths (explicit). */
        picks = calloc(t.n + strv_length((char *const *)configured) + 1, sizeof(*picks));
        out = calloc(1, sizeof(char *));
        if (!picks || !out)
                return log_error_errno(ENOMEM, "Out of memory");

        if (is_auto(configured)) {
                select_auto(&t, picks, &n);
        } else {
                r = select_explicit(&t, configured, lenient, picks, &n);
                if (r < 0)
                        return r;
        }
        r = order_picks(&t, sysfs_path ?: SYSFS_DEFAULT, picks, n);
        if (r < 0)
                return log_error_errno(r, "Out of memory");
        for (size_t i = 0; i < n; i++)
                if (strv_push(&out, picks[i].e->path) < 0)
                        return log_error_errno(ENOMEM, "Out of memory");
        *ret = TAKE_PTR(out);
        return 0;
}
