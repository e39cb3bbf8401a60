/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Filesystem freeze: which mounts to freeze, FIFREEZE/FITHAW in a safe order, and a thaw guard
 * process that thaws on its own when the freeze outlives its timeout or the main process dies.
 * The selection is implemented in mountinfo.c and the guard in freeze_guard.c; freeze.c is the
 * only file that issues FIFREEZE or FITHAW.
 *
 * Typical use:
 *
 *      r = freeze_select(cfg->freeze_mounts, NULL, &mounts);
 *      r = freeze_set_new(mounts, cfg->freeze_timeout_ms, &set);
 *      r = freeze_set_freeze(set);           // guard up, syncfs, FIFREEZE; all or nothing
 *      ... watch freeze_set_guard_fd(set), call freeze_set_check(set) when it fires ...
 *      r = freeze_set_thaw(set);             // FITHAW in reverse, disarm and reap the guard
 *      log_info("froze for %" PRIu64 " ms", freeze_set_window_ms(set));
 *      freeze_set_free(set);
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "host/mountinfo.h" /* FREEZE_MOUNTINFO_MAX */
/*
 * Bounds on the guard's timeout (freeze_set_new() refuses others with -ERANGE); also the bounds
 * of [freeze] timeout_ms (core/config.c).
 */
#define FREEZE_TIMEOUT_MIN_MS 1000u
#define FREEZE_TIMEOUT_MAX_MS (10u * 60u * 1000u)

/*
 * Choose the mount points to freeze, from mountinfo_path (NULL: /proc/self/mountinfo).
 *
 * configured NULL, empty or exactly {"auto"}: every read-write mount of a freezable type (ext3,
 * ext4, xfs, btrfs, f2fs, jfs, reiserfs, gfs2, ocfs2, nilfs2) whose source is a /dev/ node.
 * Otherwise a list of absolute mount point paths (symlinks are not followed): one that is not a
 * mount point fails with -EINVAL, one of another type with -EOPNOTSUPP, both logged naming it;
 * read-only ones are skipped with a notice. "auto" mixed with paths is -EINVAL.
 *
 * Either way each filesystem appears once (bind mounts share the major:minor of mountinfo), a
 * mount hidden under a later mount on the same path is left out, and the result is in freeze
 * order: a filesystem on a loop device (directly, through a partition or a device-mapper or md
 * device) before the filesystem that holds its backing file (/sys/dev/block/M:m/loop/
 * backing_file), whose freeze would otherwise block its own; where that does not decide, deepest
 * mount point first, ties in mountinfo (auto) or configured order. *ret is a NULL-terminated
 * vector, possibly empty, for strv_free(). Errors are logged here.
 */
int freeze_select(const char *const *configured, const char *mountinfo_path, char ***ret);

/*
 * FITHAW every mount freeze_select() picks (for `ec2-imaged thaw`, after a crash that the guard
 * could not cover), in the reverse of the freeze order; explicit entries that are no longer
 * freezable mount points are skipped with a warning instead of failing the rest. Log lines are
 * held (log_hold()) until every mount has been tried: the log may sit on one still frozen.
 * Returns how many were frozen and are now thawed, and if ret_thawed is not NULL their mount
 * points; or the first error, after trying every mount.
 */
int freeze_thaw_all(const char *const *configured, const char *mountinfo_path, char ***ret_thawed);

/*
 * The async-signal-safe last resort for SIGTERM/SIGINT handlers of the main process: FITHAW, on
 * descriptors opened before the freeze, of the mounts this process has frozen, last first.
 * Returns how many were thawed. Leaves the set's bookkeeping alone; the handler should _exit().
 * The fatal signals (SIGSEGV, SIGBUS, SIGABRT, SIGILL, SIGFPE) need no handler of the caller's:
 * a frozen set calls this itself before the process dies of them.
 */
int freeze_emergency_thaw(void);

struct freeze_set;

/*
 * A set of mount points, in freeze order, as freeze_select() returns them (copied; they must be
 * distinct filesystems). timeout_ms bounds the freeze: the guard thaws when it passes.
 */
int freeze_set_new(char *const *mounts, unsigned timeout_ms, struct freeze_set **ret);

/*
 * Open every mount point (each must be the root of a mount), start the guard, syncfs() each while
 * writes are still allowed, then FIFREEZE in order. From the first FIFREEZE on, log lines are held
 * in memory (log_hold()), and SIGSEGV, SIGBUS, SIGABRT, SIGILL and SIGFPE thaw first and then
 * kill the process (the previous dispositions come back with the thaw). All or nothing: on failure
 * whatever was frozen is thawed again and the error, naming the mount point, is logged and returned
 * (-EBUSY: already frozen; -EOPNOTSUPP: cannot be frozen; -ETIMEDOUT: the guard's timeout passed
 * while freezing; -ECHILD: the guard died). Only one set per process may be frozen at a time
 * (-EBUSY otherwise).
 */
int freeze_set_freeze(struct freeze_set *s);

/*
 * FITHAW in reverse order (one that is no longer frozen is fine), release held log lines, then
 * disarm and reap the guard. Returns 0, or the first error: a failed FITHAW, -ETIMEDOUT when the
 * guard's timeout passed (the guard thawed first, so the freeze did not cover the whole window),
 * or what freeze_set_check() reported earlier. A set that is not frozen returns 0.
 */
int freeze_set_thaw(struct freeze_set *s);

/*
 * The guard's end of our socket, for an event loop: it becomes readable (or hangs up) only when
 * the guard timed out or died. -1 while not frozen.
 */
int freeze_set_guard_fd(const struct freeze_set *s);

/*
 * Call while frozen when freeze_set_guard_fd() fires (cheap to call at any time). When the guard
 * timed out (-ETIMEDOUT) or died (-ECHILD), thaws everything at once and returns that error;
 * otherwise 0.
 */
int freeze_set_check(struct freeze_set *s);

/* PID of the guard while frozen, else 0 (for status and tests). */
int freeze_set_guard_pid(const struct freeze_set *s);

/* The mount points in freeze order (NULL-terminated, owned by the set) and how many there are. */
char *const *freeze_set_mounts(const struct freeze_set *s);
size_t freeze_set_size(const struct freeze_set *s);
/* How many are frozen right now, for status messages. */
size_t freeze_set_n_frozen(const struct freeze_set *s);
bool freeze_set_is_frozen(const struct freeze_set *s);

/*
 * Milliseconds (rounded up) from just before the first FIFREEZE to just after the last FITHAW,
 * so writes were blocked for at most this long; while still frozen, until now; 0 if never frozen.
 */
uint64_t freeze_set_window_ms(const struct freeze_set *s);

/* Thaws first if still frozen. Accepts NULL, returns NULL. */
struct freeze_set *freeze_set_free(struct freeze_set *s);

static inline void freeze_set_freep(struct freeze_set **s)
{
        freeze_set_free(*s);
}
#define _cleanup_freeze_set_ __attribute__((cleanup(freeze_set_freep)))
