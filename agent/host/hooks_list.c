/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Hooks: list and vet a phase directory, entry by entry, by the rules in hooks_list.h; and the
 * dry run's account of it. Running them is hooks.c's.
 */
#include "host/hooks_list.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/str.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(DIR *, closedir);

static const char *const phases[] = {
        HOOK_PHASE_PRE_IMAGE,
        HOOK_PHASE_PRE_FREEZE,
        HOOK_PHASE_POST_THAW,
        HOOK_PHASE_POST_IMAGE,
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

/*
 * Follow a symlink hook to what it points at and vet that, and the directory it sits in (which
 * decides who could swap it). Returns 0 with *ret_st filled and *ret_reason NULL when it passes,
 * 0 with *ret_reason set when it is refused, or -ENOMEM.
 */
static int vet_symlink(int dir_fd, const char *name, const char *path, uid_t uid,
                       struct stat *ret_st, char **ret_reason)
{
        _cleanup_free_ char *target = NULL, *target_dir = NULL;
        char reason[96];
        struct stat st, dst;
        char *slash;

        *ret_reason = NULL;
        if (fstatat(dir_fd, name, &st, 0) < 0) {
                int e = errno;

                *ret_reason = e == ENOENT ? strprintf("is a dangling symlink")
                                          : strprintf("is a symlink whose target cannot be "
                                                      "reached: %s",
                                                      strerror(e));
                return *ret_reason ? 0 : -ENOMEM;
        }
        *ret_st = st;
        if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3))
                return 0; /* masked; the caller skips it */
        target = realpath(path, NULL);
        if (!target) {
                if (errno == ENOMEM)
                        return -ENOMEM;
                *ret_reason =
                        strprintf("is a symlink that cannot be resolved: %s", strerror(errno));
                return *ret_reason ? 0 : -ENOMEM;
        }
        if (!vet_stat(&st, uid, reason, sizeof(reason))) {
                *ret_reason = strprintf("is a symlink to %s, which %s", target, reason);
                return *ret_reason ? 0 : -ENOMEM;
        }
        target_dir = strdup(target);
        if (!target_dir)
                return -ENOMEM;
        slash = strrchr(target_dir, '/');
        if (slash)
                slash[slash == target_dir ? 1 : 0] = '\0'; /* "/x" -> "/", "/a/x" -> "/a" */
        if (stat(target_dir, &dst) < 0)
                *ret_reason = strprintf("is a symlink to %s, whose directory cannot be checked: %s",
                                        target, strerror(errno));
        else if (!vet_stat(&dst, uid, reason, sizeof(reason)))
                *ret_reason = strprintf("is a symlink to %s, whose directory %s %s", target,
                                        target_dir, reason);
        else
                return 0;
        return *ret_reason ? 0 : -ENOMEM;
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
        char reason[96];
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
        if (fstatat(dir_fd, e->name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                e->state = HOOK_ENTRY_REFUSED;
                e->reason = strprintf("cannot be checked: %s", strerror(errno));
                return e->reason ? 0 : -ENOMEM;
        }
        if (S_ISLNK(st.st_mode)) {
                r = vet_symlink(dir_fd, e->name, e->path, uid, &st, &e->reason);
                if (r < 0)
                        return r;
                if (e->reason) {
                        e->state = HOOK_ENTRY_REFUSED;
                        return 0;
                }
                if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3)) {
                        e->state = HOOK_ENTRY_SKIPPED;
                        e->reason = strdup("masked (symlink to /dev/null)");
                        return e->reason ? 0 : -ENOMEM;
                }
        }
        if (!S_ISREG(st.st_mode)) {
                e->state = HOOK_ENTRY_SKIPPED;
                e->reason = strdup(S_ISDIR(st.st_mode) ? "directory" : "not a regular file");
                return e->reason ? 0 : -ENOMEM;
        }
        if ((st.st_mode & 0111) == 0) {
                e->state = HOOK_ENTRY_SKIPPED;
                e->reason = strdup("not executable");
                return e->reason ? 0 : -ENOMEM;
        }
        if (!vet_stat(&st, uid, reason, sizeof(reason))) {
                e->state = HOOK_ENTRY_REFUSED;
                e->reason = strdup(reason);
                return e->reason ? 0 : -ENOMEM;
        }
        e->state = HOOK_ENTRY_RUN;
        return 0;
}

static int compare_names(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static int read_names(int dir_fd, char ***ret)
{
        _cleanup_strv_free_ char **names = NULL;
        _cleanup_(closedirp) DIR *d = NULL;
        struct dirent *de;
        int fd, r;

        fd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return -errno;
        d = fdopendir(fd);
        if (!d) {
                safe_close(fd);
                return -errno;
        }
        for (errno = 0; (de = readdir(d)); errno = 0) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                r = strv_push(&names, de->d_name);
                if (r < 0)
                        return r;
        }
        if (errno != 0)
                return -errno;
        if (names)
                qsort(names, strv_length(names), sizeof(char *), compare_names);
        *ret = TAKE_PTR(names);
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
        *l = (struct hook_list){};
}

static int open_dir(int at_fd, const char *path, int *ret_fd)
{
        int fd = openat(at_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        if (fd < 0)
                return -errno;
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
        if (r < 0)
                return r;
        if (l.dir_refusal) {
                *ret = l;
                l = (struct hook_list){};
                return 0;
        }

        r = read_names(dir_fd, &names);
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
