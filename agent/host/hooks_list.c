/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Hooks: list and vet a phase directory, entry by entry, by the rules in hooks_list.h; and the
 * dry run's account of it. Running them is hooks.c's.
 */
#include "host/hooks_list.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "host/safefs.h"
#include "util/buf.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/str.h"

static const char *const phases[] = {
        HOOK_PHASE_PRE_IMAGE, HOOK_PHASE_PRE_FREEZE, HOOK_PHASE_HOLD,
        HOOK_PHASE_POST_THAW, HOOK_PHASE_POST_IMAGE,
};

bool hooks_phase_is_valid(const char *phase)
{
        for (size_t i = 0; phase && i < ELEMENTSOF(phases); i++)
                if (streq(phase, phases[i]))
                        return true;
        return false;
}

static bool endswith(const char *s, const char *suffix)
{
        size_t n = strlen(s), m = strlen(suffix);

        return n >= m && streq(s + n - m, suffix);
}

/* The name-based skip rules; returns why, or NULL when the name may be a hook. */
static const char *skip_reason_for_name(const char *name)
{
        static const char *const leftovers[] = {".rpmsave", ".rpmnew", ".rpmorig"};

        if (name[0] == '.')
                return "hidden file";
        if (endswith(name, "~"))
                return "backup file";
        if (strstr(name, ".dpkg-") || strstr(name, ".ucf-"))
                return "package manager leftover";
        for (size_t i = 0; i < ELEMENTSOF(leftovers); i++)
                if (endswith(name, leftovers[i]))
                        return "package manager leftover";
        if (endswith(name, ".disabled"))
                return "disabled";
        return NULL;
}

/*
 * The ownership and mode checks shared by hooks, symlink targets and directories. Writes why
 * the object fails them into reason and returns false, or returns true.
 */
static bool vet_stat(const struct stat *st, uid_t uid, char *reason, size_t size)
{
        if (st->st_uid != uid) {
                snprintf(reason, size, "is owned by uid %u, not %u", (unsigned)st->st_uid,
                         (unsigned)uid);
                return false;
        }
        if (st->st_mode & S_IWOTH) {
                snprintf(reason, size, "is world-writable (mode %04o)",
                         (unsigned)(st->st_mode & 07777));
                return false;
        }
        if (st->st_mode & S_IWGRP) {
                snprintf(reason, size, "is group-writable (mode %04o)",
                         (unsigned)(st->st_mode & 07777));
                return false;
        }
        return true;
}

static int vet_dir_fd(int fd, const char *path, uid_t uid, char **ret_refusal)
{
        char reason[96];
        struct stat st;

        if (fstat(fd, &st) < 0)
                return -errno;
        if (vet_stat(&st, uid, reason, sizeof(reason))) {
                *ret_refusal = NULL;
                return 0;
        }
        *ret_refusal = strprintf("hooks directory %s %s", path, reason);
        return *ret_refusal ? 0 : -ENOMEM;
}

/* The directories above the hooks directory, up to "/": a refusal of all hooks when one fails. */
static int vet_ancestors(int root_fd, const char *path, uid_t uid, char **ret_refusal);

/*
 * The rule for the directories above a hook's own directory and the hooks directory, up to "/":
 * owned by root or by uid, and writable by nobody else unless sticky. In a sticky directory (the
 * way /tmp is) others may add names but not rename or remove the ones root owns, and the next
 * directory down is checked in its turn; without the sticky bit, anyone who may write there
 * could move the whole tree aside and put another in its place.
 */
static bool vet_ancestor_stat(const struct stat *st, uid_t uid, char *reason, size_t size)
{
        if (st->st_uid != 0 && st->st_uid != uid) {
                snprintf(reason, size, "is owned by uid %u, neither root nor %u",
                         (unsigned)st->st_uid, (unsigned)uid);
                return false;
        }
        if ((st->st_mode & (S_IWGRP | S_IWOTH)) && !(st->st_mode & S_ISVTX)) {
                snprintf(reason, size, "is %s-writable (mode %04o) and not sticky",
                         st->st_mode & S_IWOTH ? "world" : "group",
                         (unsigned)(st->st_mode & 07777));
                return false;
        }
        return true;
}

/* The path of an open directory, for messages: /proc's name for it, or a stand-in. */
static char *fd_path(int fd, unsigned level)
{
        char proc[64], buf[4096];
        ssize_t n;

        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
        n = readlink(proc, buf, sizeof(buf) - 1);
        if (n <= 0)
                return strprintf("the directory %u level%s up", level, level == 1 ? "" : "s");
        buf[n] = '\0';
        return hook_name_escape(buf);
}

/*
 * Vet the directory dir_fd and every directory above it, walking ".." from the descriptor (so the
 * chain vetted is the one the open directory is in, whatever symlinks its path went through), up
 * to "/" (or the root of a chroot): the first `strict` of them by vet_stat(), the rest by
 * vet_ancestor_stat(). Returns 0 with *ret_reason NULL when all pass, 0 with *ret_reason
 * ("/srv is world-writable (mode 0777) and not sticky") when one fails, or -errno.
 */
static int vet_chain(int dir_fd, unsigned strict, uid_t uid, char **ret_reason)
{
        _cleanup_close_ int fd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 3);
        struct stat st, up;
        char reason[96];

        *ret_reason = NULL;
        if (fd < 0)
                return -errno;
        for (unsigned level = 0; level < 4096; level++) {
                _cleanup_free_ char *name = NULL;
                int parent;

                if (fstat(fd, &st) < 0)
                        return -errno;
                if (level < strict ? !vet_stat(&st, uid, reason, sizeof(reason))
                                   : !vet_ancestor_stat(&st, uid, reason, sizeof(reason))) {
                        name = fd_path(fd, level);
                        *ret_reason = name ? strprintf("%s %s", name, reason) : NULL;
                        return *ret_reason ? 0 : -ENOMEM;
                }
                parent = openat(fd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (parent < 0)
                        return -errno;
                if (fstat(parent, &up) < 0) {
                        safe_close(parent);
                        return -errno;
                }
                safe_close(fd);
                fd = parent;
                if (up.st_dev == st.st_dev && up.st_ino == st.st_ino)
                        return 0; /* ".." of "/" is "/" */
        }
        return -ELOOP;
}

/*
 * A symlink hook: the file it points at, vetted with its directory (which decides who could swap
 * it) and everything above. Returns 0 with *ret_fd (O_PATH) and *ret_reason NULL when it passes,
 * 0 with *ret_reason set when it is refused, or -errno.
 */
static int open_symlink_target(int dir_fd, const char *name, uid_t uid, int *ret_fd,
                               char **ret_reason)
{
        _cleanup_close_ int fd = -1, tdir = -1;
        _cleanup_free_ char *target = NULL, *chain = NULL;
        char reason[96];
        struct stat st, again;
        char *slash;
        int r;

        *ret_reason = NULL;
        fd = openat(dir_fd, name, O_PATH | O_CLOEXEC);
        if (fd < 0) {
                int e = errno;

                *ret_reason = e == ENOENT ? strprintf("is a dangling symlink")
                                          : strprintf("is a symlink whose target cannot be "
                                                      "reached: %s",
                                                      strerror(e));
                return *ret_reason ? 0 : -ENOMEM;
        }
        if (fstat(fd, &st) < 0)
                return -errno;
        target = fd_path(fd, 0);
        if (!target)
                return -ENOMEM;
        if (!vet_stat(&st, uid, reason, sizeof(reason))) {
                *ret_reason = strprintf("is a symlink to %s, which %s", target, reason);
                return *ret_reason ? 0 : -ENOMEM;
        }
        /* The target's directory, made sure to be the one that holds the inode we opened. */
        slash = strrchr(target, '/');
        if (target[0] != '/' || !slash) {
                *ret_reason =
                        strprintf("is a symlink to %s, whose directory cannot be found", target);
                return *ret_reason ? 0 : -ENOMEM;
        }
        *slash = '\0';
        tdir = open(slash == target ? "/" : target, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (tdir < 0 || fstatat(tdir, slash + 1, &again, AT_SYMLINK_NOFOLLOW) < 0 ||
            again.st_dev != st.st_dev || again.st_ino != st.st_ino) {
                *slash = '/';
                *ret_reason =
                        strprintf("is a symlink to %s, which moved while it was checked", target);
                return *ret_reason ? 0 : -ENOMEM;
        }
        r = vet_chain(tdir, 1, uid, &chain);
        if (r < 0)
                return r;
        if (chain) {
                *slash = '/';
                *ret_reason = strprintf("is a symlink to %s, and %s", target, chain);
                return *ret_reason ? 0 : -ENOMEM;
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static int vet_ancestors(int root_fd, const char *path, uid_t uid, char **ret_refusal)
{
        _cleanup_free_ char *chain = NULL;
        int r;

        *ret_refusal = NULL;
        r = vet_chain(root_fd, 1, uid, &chain);
        if (r < 0 || !chain)
                return r;
        *ret_refusal = strprintf("hooks directory %s: %s", path, chain);
        return *ret_refusal ? 0 : -ENOMEM;
}

int hook_open_vetted(int dir_fd, const char *name, uid_t uid, int *ret_fd, char **ret_reason)
{
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *chain = NULL;
        char reason[96];
        struct stat st;
        int r;

        *ret_reason = NULL;
        /* The hook's own directory and the hooks directory above it, then on up to "/". */
        r = vet_chain(dir_fd, 2, uid, &chain);
        if (r < 0)
                return r;
        if (chain) {
                *ret_reason = strprintf("is in a directory that is not safe: %s", chain);
                return *ret_reason ? 0 : -ENOMEM;
        }
        fd = openat(dir_fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0) {
                *ret_reason = strprintf("cannot be checked: %s", strerror(errno));
                return *ret_reason ? 0 : -ENOMEM;
        }
        if (S_ISLNK(st.st_mode)) {
                fd = safe_close(fd);
                r = open_symlink_target(dir_fd, name, uid, &fd, ret_reason);
                if (r < 0 || *ret_reason)
                        return r;
                if (fstat(fd, &st) < 0)
                        return -errno;
        } else if (!vet_stat(&st, uid, reason, sizeof(reason))) {
                *ret_reason = strdup(reason);
                return *ret_reason ? 0 : -ENOMEM;
        }
        if (!S_ISREG(st.st_mode) || (st.st_mode & 0111) == 0) {
                *ret_reason = strdup("is no longer an executable file");
                return *ret_reason ? 0 : -ENOMEM;
        }
        /* The child's stdio is set up with dup2(): the descriptor must not be 0, 1 or 2. */
        r = fd_move_above_stdio(TAKE_FD(fd));
        if (r < 0)
                return r;
        *ret_fd = r;
        return 0;
}

static bool has_control_chars(const char *s)
{
        for (; *s; s++)
                if ((unsigned char)*s < 0x20 || *s == 0x7f)
                        return true;
        return false;
}

char *hook_name_escape(const char *s)
{
        struct buf b = {};

        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;
                int r = c == '\n'               ? buf_append(&b, "\\n", 2)
                        : c < 0x20 || c == 0x7f ? buf_printf(&b, "\\x%02x", c)
                                                : buf_append(&b, s, 1);

                if (r < 0) {
                        buf_free(&b);
                        return NULL;
                }
        }
        return buf_steal(&b, NULL);
}

/* Decide about one directory entry; fills e->state and e->reason. */
static int classify_entry(int dir_fd, uid_t uid, struct hook_entry *e)
{
        _cleanup_close_ int fd = -1;
        const char *skip;
        struct stat st;
        int r;

        skip = skip_reason_for_name(e->name);
        if (skip) {
                e->state = HOOK_ENTRY_SKIPPED;
                e->reason = strdup(skip);
                return e->reason ? 0 : -ENOMEM;
        }
        if (has_control_chars(e->name)) {
                /* It would end up in journald fields and in messages; nobody means that. */
                e->state = HOOK_ENTRY_REFUSED;
                e->reason = strdup("has control characters in its name");
                return e->reason ? 0 : -ENOMEM;
        }
        /* What it is decides whether it is skipped; a dangling symlink is the vetting's to say. */
        if (fstatat(dir_fd, e->name, &st, 0) < 0 &&
            fstatat(dir_fd, e->name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                e->state = HOOK_ENTRY_REFUSED;
                e->reason = strprintf("cannot be checked: %s", strerror(errno));
                return e->reason ? 0 : -ENOMEM;
        }
        if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3)) {
                e->state = HOOK_ENTRY_SKIPPED;
                e->reason = strdup("masked (symlink to /dev/null)");
                return e->reason ? 0 : -ENOMEM;
        }
        if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode)) {
                e->state = HOOK_ENTRY_SKIPPED;
                e->reason = strdup(S_ISDIR(st.st_mode) ? "directory" : "not a regular file");
                return e->reason ? 0 : -ENOMEM;
        }
        if (S_ISREG(st.st_mode) && (st.st_mode & 0111) == 0) {
                e->state = HOOK_ENTRY_SKIPPED;
                e->reason = strdup("not executable");
                return e->reason ? 0 : -ENOMEM;
        }
        /* The same vetting the run does right before it executes the hook (hooks.c). */
        r = hook_open_vetted(dir_fd, e->name, uid, &fd, &e->reason);
        if (r < 0)
                return r;
        e->state = e->reason ? HOOK_ENTRY_REFUSED : HOOK_ENTRY_RUN;
        return 0;
}

void hook_list_done(struct hook_list *l)
{
        for (size_t i = 0; i < l->n_entries; i++) {
                free(l->entries[i].name);
                free(l->entries[i].path);
                free(l->entries[i].reason);
        }
        free(l->entries);
        free(l->dir);
        free(l->dir_refusal);
        if (l->dir_fd > STDERR_FILENO)
                safe_close(l->dir_fd);
        *l = (struct hook_list){};
}

static int open_dir(int at_fd, const char *path, int *ret_fd)
{
        int fd = openat(at_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        if (fd < 0)
                return -errno;
        /* Kept in the list; 0, 1 and 2 would be taken for "none" or clash with stdio. */
        fd = fd_move_above_stdio(fd);
        if (fd < 0)
                return fd;
        *ret_fd = fd;
        return 0;
}

int hooks_list(const char *hooks_dir, const char *phase, uid_t required_uid, struct hook_list *ret)
{
        _cleanup_(hook_list_done) struct hook_list l = {};
        _cleanup_strv_free_ char **names = NULL;
        _cleanup_close_ int root_fd = -1, dir_fd = -1;
        _cleanup_free_ char *sub = NULL;
        size_t n;
        int r;

        if (!hooks_phase_is_valid(phase))
                return -EINVAL;
        if (!hooks_dir)
                hooks_dir = HOOKS_DEFAULT_DIR;
        sub = strprintf("%s.d", phase);
        l.dir = strprintf("%s/%s", hooks_dir, sub ? sub : "");
        if (!sub || !l.dir)
                return -ENOMEM;

        r = open_dir(AT_FDCWD, hooks_dir, &root_fd);
        if (r >= 0)
                r = open_dir(root_fd, sub, &dir_fd);
        if (r == -ENOENT) {
                l.dir_missing = true;
                *ret = l;
                l = (struct hook_list){};
                return 0;
        }
        if (r < 0)
                return r;

        r = vet_dir_fd(root_fd, hooks_dir, required_uid, &l.dir_refusal);
        if (r >= 0 && !l.dir_refusal)
                r = vet_dir_fd(dir_fd, l.dir, required_uid, &l.dir_refusal);
        if (r >= 0 && !l.dir_refusal)
                r = vet_ancestors(root_fd, hooks_dir, required_uid, &l.dir_refusal);
        if (r < 0)
                return r;
        if (l.dir_refusal) {
                *ret = l;
                l = (struct hook_list){};
                return 0;
        }

        r = safefs_list(dir_fd, &names);
        if (r < 0)
                return r;
        n = strv_length(names);
        l.entries = calloc(n ? n : 1, sizeof(struct hook_entry));
        if (!l.entries)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                struct hook_entry *e = &l.entries[l.n_entries++];

                _cleanup_free_ char *shown = NULL;

                e->name = TAKE_PTR(names[i]);
                e->path = strprintf("%s/%s", l.dir, e->name);
                shown = hook_name_escape(e->name);
                if (!e->path || !shown)
                        return -ENOMEM;
                r = classify_entry(dir_fd, required_uid, e);
                if (r < 0)
                        return r;
                if (e->state == HOOK_ENTRY_RUN)
                        l.n_run++;
                else if (e->state == HOOK_ENTRY_REFUSED)
                        l.n_refused++;
                else
                        log_full(streq(e->reason, "not executable") ||
                                                 startswith(e->reason, "masked")
                                         ? LOG_NOTICE
                                         : LOG_DEBUG,
                                 "Skipping %s/%s: %s", l.dir, strna(shown), e->reason);
        }
        l.dir_fd = TAKE_FD(dir_fd);
        *ret = l;
        l = (struct hook_list){};
        return 0;
}

/* ---- dry run ---- */

int hooks_list_dry_run(const char *hooks_dir, const char *phase, uid_t required_uid,
                       char **ret_text)
{
        _cleanup_(hook_list_done) struct hook_list l = {};
        _cleanup_(buf_free) struct buf b = {};
        int r;

        r = hooks_list(hooks_dir, phase, required_uid, &l);
        if (r < 0)
                return r;
        if (l.dir_missing)
                r = buf_printf(&b, "%s: no hooks (%s does not exist)\n", phase, l.dir);
        else if (l.dir_refusal)
                r = buf_printf(&b, "%s: all hooks REFUSED: %s\n", phase, l.dir_refusal);
        else if (l.n_entries == 0)
                r = buf_printf(&b, "%s: no hooks (%s is empty)\n", phase, l.dir);
        for (size_t i = 0; r >= 0 && i < l.n_entries; i++) {
                const struct hook_entry *e = &l.entries[i];
                _cleanup_free_ char *name = hook_name_escape(e->name);

                if (!name)
                        r = -ENOMEM;
                else if (e->state == HOOK_ENTRY_RUN)
                        r = buf_printf(&b, "%s: %s would run\n", phase, name);
                else if (e->state == HOOK_ENTRY_REFUSED)
                        r = buf_printf(&b, "%s: %s REFUSED: %s/%s %s\n", phase, name, l.dir, name,
                                       e->reason);
                else
                        r = buf_printf(&b, "%s: %s skipped: %s\n", phase, name, e->reason);
        }
        if (r < 0)
                return r;
        *ret_text = buf_steal(&b, NULL);
        if (!*ret_text)
                return -ENOMEM;
        return (int)l.n_refused + (l.dir_refusal ? 1 : 0);
}
