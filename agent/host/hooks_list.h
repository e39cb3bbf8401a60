/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Hooks: find and vet the hooks of a phase, and say what a dry run would do. hooks.h, which
 * includes this header, runs them.
 *
 * Layout: <hooks_dir>/<phase>.d/<name>, phases pre-image, pre-freeze, hold, post-thaw, post-image.
 * Entries run one after another in byte order of their names (what alphasort gives in the C
 * locale, independent of LANG). A missing hooks directory or phase directory means no hooks.
 *
 * Skipped (logged, never run, never an error): names starting with '.', ending in '~',
 * containing ".dpkg-" or ".ucf-", ending in ".rpmsave", ".rpmnew", ".rpmorig" or ".disabled";
 * directories; anything that is not a regular file; regular files without any execute bit; and
 * symlinks to /dev/null ("masked", as systemd does it).
 *
 * Refused (the phase fails, a refused hook is never skipped silently: an operator put it there
 * for a reason): a hook not owned by required_uid or writable by group or others; a symlink whose
 * target, or the target's directory, fails those checks or does not exist, or one of the
 * directories above the target's fails the rule below; a name containing control characters;
 * and every hook of a phase whose phase directory or hooks directory is not owned by
 * required_uid or is group/world-writable, or one of the directories above the hooks directory
 * (up to "/") fails the rule below.
 *
 * The directories above (walked by "..", from the open directory: the chain checked is the real
 * one, whatever symlinks the configured path goes through): owned by root or required_uid, and
 * writable by group or others only when sticky. In a sticky directory (as /tmp is) others may add
 * names, but not rename or remove root's; without the sticky bit anyone who may write there could
 * move the tree aside and put another in its place, between the vetting and the exec.
 *
 * The vetting is done once more right before each hook is executed (hook_open_vetted), and what
 * is executed is the descriptor it opened, not the path (supervise.h).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define HOOKS_DEFAULT_DIR "/etc/ec2-imaged/hooks"

#define HOOK_PHASE_PRE_IMAGE  "pre-image"
#define HOOK_PHASE_PRE_FREEZE "pre-freeze"
#define HOOK_PHASE_HOLD       "hold" /* held hooks: hold.h runs them, hooks_run_phase() does not */
#define HOOK_PHASE_POST_THAW  "post-thaw"
#define HOOK_PHASE_POST_IMAGE "post-image"

/* True for the five phase names above. */
bool hooks_phase_is_valid(const char *phase);

/* ---- listing and vetting ---- */

enum hook_entry_state {
        HOOK_ENTRY_RUN,     /* vetted, would run */
        HOOK_ENTRY_REFUSED, /* fails the phase; reason says why */
        HOOK_ENTRY_SKIPPED, /* ignored by the rules above; reason says which */
};

struct hook_entry {
        char *name; /* file name inside the phase directory */
        char *path; /* <hooks_dir>/<phase>.d/<name>, what is executed */
        enum hook_entry_state state;
        char *reason; /* NULL for HOOK_ENTRY_RUN, e.g. "is world-writable (mode 0777)" */
};

struct hook_list {
        char *dir;         /* <hooks_dir>/<phase>.d */
        int dir_fd;        /* that directory, open (> 2) when there are entries; else 0 */
        bool dir_missing;  /* the hooks or phase directory does not exist: no hooks */
        char *dir_refusal; /* "hooks directory <d> is group-writable (mode 0775)": all refused */
        struct hook_entry *entries; /* in run order, skipped ones included; none if dir_refusal */
        size_t n_entries, n_run, n_refused;
};

/*
 * List and vet the hooks of one phase. Returns 0 with *ret filled in (refusals are recorded in
 * it, not returned), -EINVAL for an unknown phase, -ENOMEM, or -errno when a directory exists
 * but cannot be read. Skipped entries are logged at debug (names) or notice (files that look
 * like hooks but are not executable, masked hooks).
 */
int hooks_list(const char *hooks_dir, const char *phase, uid_t required_uid, struct hook_list *ret);
void hook_list_done(struct hook_list *l);

/*
 * Vet the hook `name` in the open phase directory dir_fd (its file, the target of a symlink, and
 * the directories above either, by the rules above) and open it for execution: 0 with *ret_fd
 * (O_PATH, O_CLOEXEC) and *ret_reason NULL when it passes, 0 with *ret_reason ("is world-writable
 * (mode 0777)") and no descriptor when it is refused, or -errno.
 */
int hook_open_vetted(int dir_fd, const char *name, uid_t uid, int *ret_fd, char **ret_reason);

/*
 * A name fit for messages and journald fields: control characters as C escapes, so that a name
 * cannot add fields ("x\nPRIORITY=0") or forge log lines. Returns NULL when out of memory.
 */
char *hook_name_escape(const char *s);

/*
 * What hooks_dry_run_phase() (hooks.h) reports: hooks_list() put into one line per entry, or one
 * line saying there are no hooks. Returns the number of refusals or -errno, as that does.
 */
int hooks_list_dry_run(const char *hooks_dir, const char *phase, uid_t required_uid,
                       char **ret_text);
