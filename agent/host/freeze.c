/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Filesystem freeze: FIFREEZE/FITHAW in order, all or nothing, under the thaw guard. The mounts
 * are chosen in mountinfo.c and the guard process lives in freeze_guard.c; this file is the only
 * one that issues FIFREEZE or FITHAW (the guard's thaw pass is thaw_fds() below, passed in).
 */
#include "host/freeze.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/freeze_guard.h"
#include "host/mountinfo.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/str.h"
#include "util/timeutil.h"

/* ------------------------------------------------------------------ selection */

int freeze_select(const char *const *configured, const char *mountinfo_path, char ***ret)
{
        return mountinfo_select(configured, mountinfo_path, NULL, false, ret);
}

/* ------------------------------------------------------------------ mount point handles */

/* The mount ID of a file, for kernels without STATX_ATTR_MOUNT_ROOT (before 5.8). */
static int mount_id_at(int dirfd, const char *name, int flags, int *ret)
{
        union {
                struct file_handle h;
                char buf[sizeof(struct file_handle) + MAX_HANDLE_SZ];
        } fh = {};
        int id;

        fh.h.handle_bytes = MAX_HANDLE_SZ;
        if (name_to_handle_at(dirfd, name, &fh.h, &id, flags) < 0)
                return -errno;
        *ret = id;
        return 0;
}

/*
 * Open a mount point for FIFREEZE/FITHAW. It must be the root of a mount: had the filesystem
 * been unmounted since it was selected, the directory left behind belongs to the parent
 * filesystem (perhaps the root), which must not be frozen in its place.
 */
static int open_mount_root(const char *path, int *ret)
{
        _cleanup_close_ int fd = -1;
        struct statx sx = {};

        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        fd = fd_move_above_stdio(fd);
        if (fd < 0)
                return fd;
        if (statx(fd, "", AT_EMPTY_PATH, STATX_TYPE, &sx) < 0)
                return -errno;
        if (sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) {
                if (!(sx.stx_attributes & STATX_ATTR_MOUNT_ROOT))
                        return -ENOTBLK;
        } else {
                struct stat self, parent;
                int id_self = 0, id_parent = 0, r;

                if (fstat(fd, &self) < 0 || fstatat(fd, "..", &parent, 0) < 0)
                        return -errno;
                /* ".." of the namespace root is itself, and it is a mount root. */
                if (self.st_dev != parent.st_dev || self.st_ino != parent.st_ino) {
                        r = mount_id_at(fd, "", AT_EMPTY_PATH, &id_self);
                        if (r >= 0)
                                r = mount_id_at(fd, "..", 0, &id_parent);
                        if (r < 0)
                                return r;
                        if (id_self == id_parent)
                                return -ENOTBLK;
                }
        }
        *ret = TAKE_FD(fd);
        return 0;
}

static const char *open_error_hint(int r)
{
        return r == -ENOTBLK ? "it is no longer a mount point" : strerror(-r);
}

/* ------------------------------------------------------------------ emergency thaw */

/*
 * What a signal handler may thaw: the handles of the frozen set and how many of them (a prefix)
 * this process froze. The count is raised just before each FIFREEZE (lowered again if it fails)
 * and cleared before the handles are closed, so the handler never touches a stale descriptor.
 */
static int *volatile emergency_fds;
static volatile sig_atomic_t emergency_n;

int freeze_emergency_thaw(void)
{
        int saved = errno, thawed = 0;
        int *fds = emergency_fds;
        sig_atomic_t n = emergency_n;

        for (sig_atomic_t i = fds ? n : 0; i > 0; i--)
                if (ioctl(fds[i - 1], FITHAW, 0) == 0)
                        thawed++;
        errno = saved;
        return thawed;
}

/* ------------------------------------------------------------------ fatal signals */

/*
 * A crash in the frozen window (a fault, an abort()) must not leave the filesystems frozen until
 * the process is gone: the guard acts only then, and dying can take long (a core dump written to
 * a frozen filesystem waits for its thaw). While frozen, these signals thaw first, on the handles
 * opened before the freeze, then kill the process by their default action: SA_RESETHAND restores
 * it on entry and SA_NODEFER lets the raise() through at once. They run on a stack of their own,
 * so that a stack overflow reaches the handler too. SIGTERM and SIGINT are the caller's to decide.
 */
static const int fatal_signals[] = {SIGSEGV, SIGBUS, SIGABRT, SIGILL, SIGFPE};
static struct sigaction fatal_saved[ELEMENTSOF(fatal_signals)];
static bool fatal_installed, fatal_own_stack;
static char fatal_stack[64 * 1024];

static void on_fatal_signal(int sig)
{
        (void)freeze_emergency_thaw();
        (void)raise(sig);
}

static void fatal_signals_install(void)
{
        struct sigaction sa = {
                .sa_handler = on_fatal_signal,
                .sa_flags = SA_RESETHAND | SA_NODEFER | SA_ONSTACK,
        };
        stack_t ss = {.ss_sp = fatal_stack, .ss_size = sizeof(fatal_stack)}, old;

        /* An alternate stack someone else set up (a sanitizer's) is kept. */
        fatal_own_stack = sigaltstack(NULL, &old) == 0 && (old.ss_flags & SS_DISABLE) &&
                          sigaltstack(&ss, NULL) == 0;
        sigemptyset(&sa.sa_mask);
        for (size_t i = 0; i < ELEMENTSOF(fatal_signals); i++)
                (void)sigaction(fatal_signals[i], &sa, &fatal_saved[i]);
        fatal_installed = true;
}

static void fatal_signals_restore(void)
{
        stack_t off = {.ss_flags = SS_DISABLE};

        if (!fatal_installed)
                return;
        for (size_t i = 0; i < ELEMENTSOF(fatal_signals); i++)
                (void)sigaction(fatal_signals[i], &fatal_saved[i], NULL);
        if (fatal_own_stack)
                (void)sigaltstack(&off, NULL);
        fatal_installed = fatal_own_stack = false;
}

/* ------------------------------------------------------------------ the guard's thaw */

/* What the guard calls, in its own process, to thaw what we froze (see guard_thaw_fn). */
static void thaw_fds(const int *fds, size_t n)
{
        for (size_t i = n; i > 0; i--)
                (void)ioctl(fds[i - 1], FITHAW, 0);
}

/* ------------------------------------------------------------------ the set */

struct freeze_set {
        char **mounts; /* freeze order */
        size_t n;
        unsigned timeout_ms;
        int *fds;        /* open from freeze until thaw */
        size_t n_frozen; /* mounts[0..n_frozen) are frozen by us */
        bool frozen;
        int error; /* reported by freeze_set_check(), returned by the next thaw */

        struct freeze_guard guard;

        usec_t freeze_start, thaw_end;
};

static struct freeze_set *active_set;

int freeze_set_new(char *const *mounts, unsigned timeout_ms, struct freeze_set **ret)
{
        struct freeze_set *s;
        size_t n = strv_length(mounts);

        if (timeout_ms < FREEZE_TIMEOUT_MIN_MS || timeout_ms > FREEZE_TIMEOUT_MAX_MS)
                return -ERANGE;
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        *s = (struct freeze_set){.timeout_ms = timeout_ms, .guard = {.fd = -1}};
        s->mounts = calloc(n + 1, sizeof(char *));
        s->fds = malloc((n + 1) * sizeof(int));
        if (!s->mounts || !s->fds) {
                freeze_set_free(s);
                return -ENOMEM;
        }
        s->n = n;
        for (size_t i = 0; i < n; i++)
                s->fds[i] = -1;
        for (size_t i = 0; i < n; i++) {
                s->mounts[i] = strdup(mounts[i]);
                if (!s->mounts[i]) {
                        freeze_set_free(s);
                        return -ENOMEM;
                }
        }
        *ret = s;
        return 0;
}

static void close_mount_fds(struct freeze_set *s)
{
        for (size_t i = 0; i < s->n; i++)
                s->fds[i] = safe_close(s->fds[i]);
}

/* FITHAW ours in reverse. Returns the first unexpected error; *ret_expired tells whether the
 * guard had claimed the thaw (its timeout passed, or it saw us as dead) before we got here. */
static int thaw_frozen(struct freeze_set *s, size_t *ret_failed, bool *ret_expired)
{
        int first = 0;

        *ret_expired = s->guard.shared &&
                       atomic_exchange(&s->guard.shared->state, GUARD_STANDDOWN) == GUARD_EXPIRED;
        for (size_t i = s->n_frozen; i > 0; i--) {
                /* EINVAL: not frozen any more (the guard or a handler was here first). */
                if (ioctl(s->fds[i - 1], FITHAW, 0) < 0 && errno != EINVAL && first == 0) {
                        first = -errno;
                        *ret_failed = i - 1;
                }
        }
        s->thaw_end = now_usec(CLOCK_MONOTONIC);
        emergency_n = 0;
        atomic_signal_fence(memory_order_seq_cst);
        emergency_fds = NULL;
        fatal_signals_restore();
        s->n_frozen = 0;
        s->frozen = false;
        if (active_set == s)
                active_set = NULL;
        return first;
}

/* Thaw, let go of the held log lines and the guard; then report, since we may write again. */
static int unfreeze(struct freeze_set *s, int cause)
{
        size_t failed = 0;
        bool expired;
        int r;

        r = thaw_frozen(s, &failed, &expired);
        log_hold(false);
        freeze_guard_reap(&s->guard);
        close_mount_fds(s);
        if (r < 0)
                log_error_errno(r, "Failed to thaw %s: %m", s->mounts[failed]);
        if (expired && cause == 0) {
                cause = log_error_errno(ETIMEDOUT,
                                        "The freeze outlasted its timeout of %u ms; the thaw "
                                        "guard thawed the filesystems first",
                                        s->timeout_ms);
        }
        return r < 0 ? r : cause;
}

static const char *freeze_error_hint(int r)
{
        switch (r) {
        case -EBUSY:
                return "it is already frozen";
        case -EOPNOTSUPP:
        case -ENOTTY:
                return "the filesystem does not support freezing";
        default:
                return strerror(-r);
        }
}

/*
 * Open every mount point and flush it, before anything is frozen. Logged -errno, with no handle
 * left open, on failure.
 */
static int open_and_sync(struct freeze_set *s)
{
        int r;

        /* Path lookups on a frozen filesystem can block, so every handle is opened now. */
        for (size_t i = 0; i < s->n; i++) {
                r = open_mount_root(s->mounts[i], &s->fds[i]);
                if (r < 0) {
                        close_mount_fds(s);
                        return log_error_errno(r, "Cannot freeze %s: %s", s->mounts[i],
                                               open_error_hint(r));
                }
        }
        /* Flush while writes are allowed, so FIFREEZE's own flush is short. */
        for (size_t i = 0; i < s->n; i++)
                if (syncfs(s->fds[i]) < 0) {
                        r = -errno;
                        close_mount_fds(s);
                        return log_error_errno(r, "Failed to sync %s: %m", s->mounts[i]);
                }
        return 0;
}

/*
 * FIFREEZE mount i, under the guard's lock and only while the guard is armed (freeze_guard.h).
 * Returns 0, -ECHILD when the guard died holding the lock, -ETIMEDOUT when it is no longer armed,
 * or the error of the lock or of FIFREEZE. Nothing is logged: the log is held.
 */
static int freeze_one(struct freeze_set *s, size_t i)
{
        struct guard_shared *g = s->guard.shared;
        int r = 0, lr = pthread_mutex_lock(&g->lock);

        if (lr == EOWNERDEAD) {
                pthread_mutex_consistent(&g->lock);
                pthread_mutex_unlock(&g->lock);
                return -ECHILD;
        }
        if (lr != 0)
                return -lr;
        if (atomic_load(&g->state) != GUARD_ARMED) {
                pthread_mutex_unlock(&g->lock);
                return -ETIMEDOUT;
        }
        if (i == 0)
                s->freeze_start = now_usec(CLOCK_MONOTONIC);
        /* Counted before the FIFREEZE: were we killed right after it, the guard and the
         * handler must still thaw this one. A FITHAW too many is harmless. */
        atomic_store(&g->n_frozen, i + 1);
        emergency_n = (sig_atomic_t)(i + 1);
        if (ioctl(s->fds[i], FIFREEZE, 0) < 0) {
                r = -errno;
                /* Not ours to thaw: it may be someone else's freeze (EBUSY). */
                emergency_n = (sig_atomic_t)i;
                atomic_store(&g->n_frozen, i);
        } else {
                s->n_frozen = i + 1;
        }
        pthread_mutex_unlock(&g->lock);
        return r;
}

/* All or nothing: thaw what was frozen (the log is let go then), and say why mount i was not. */
static int freeze_failed(struct freeze_set *s, size_t i, int r)
{
        const char *what = i < s->n ? s->mounts[i] : "the filesystems";

        (void)unfreeze(s, r);
        switch (r) {
        case -ETIMEDOUT:
                return log_error_errno(r,
                                       "Failed to freeze %s: the timeout of %u ms passed while "
                                       "freezing",
                                       what, s->timeout_ms);
        case -ECHILD:
                return log_error_errno(r, "Failed to freeze %s: the thaw guard died", what);
        default:
                return log_error_errno(r, "Failed to freeze %s: %s", what, freeze_error_hint(r));
        }
}

int freeze_set_freeze(struct freeze_set *s)
{
        size_t i;
        int r;

        if (s->frozen || active_set)
                return log_error_errno(EBUSY, "Another freeze is in progress");
        s->error = 0;
        s->freeze_start = s->thaw_end = 0;
        if (s->n == 0)
                return 0;

        r = open_and_sync(s);
        if (r < 0)
                return r;
        r = freeze_guard_start(&s->guard, s->fds, s->n, s->timeout_ms, thaw_fds);
        if (r < 0) {
                close_mount_fds(s);
                return r;
        }

        active_set = s;
        s->frozen = true;
        emergency_fds = s->fds;
        fatal_signals_install();
        log_hold(true);
        for (i = 0; i < s->n; i++) {
                r = freeze_one(s, i);
                if (r < 0)
                        break;
        }
        /* The guard may have died or timed out while we were freezing. */
        if (r == 0)
                r = freeze_guard_poll(&s->guard);
        if (r < 0)
                return freeze_failed(s, i, r);
        return 0;
}

int freeze_set_check(struct freeze_set *s)
{
        int r;

        if (!s->frozen)
                return 0;
        r = freeze_guard_poll(&s->guard);
        if (r == 0)
                return 0;
        (void)unfreeze(s, r);
        if (r == -ETIMEDOUT)
                r = log_error_errno(r,
                                    "The freeze timeout of %u ms passed; the thaw guard "
                                    "thawed the filesystems",
                                    s->timeout_ms);
        else
                r = log_error_errno(r, "The thaw guard died while frozen; thawed at once");
        s->error = r;
        return r;
}

int freeze_set_thaw(struct freeze_set *s)
{
        int r = 0;

        if (s->frozen)
                r = unfreeze(s, 0);
        if (s->error < 0 && r == 0)
                r = s->error;
        s->error = 0;
        return r;
}

int freeze_set_guard_fd(const struct freeze_set *s)
{
        return s->frozen ? s->guard.fd : -1;
}

int freeze_set_guard_pid(const struct freeze_set *s)
{
        return s->frozen ? (int)s->guard.pid : 0;
}

char *const *freeze_set_mounts(const struct freeze_set *s)
{
        return s->mounts;
}

size_t freeze_set_size(const struct freeze_set *s)
{
        return s->n;
}

size_t freeze_set_n_frozen(const struct freeze_set *s)
{
        return s->n_frozen;
}

bool freeze_set_is_frozen(const struct freeze_set *s)
{
        return s->frozen;
}

uint64_t freeze_set_window_ms(const struct freeze_set *s)
{
        usec_t end;

        if (s->freeze_start == 0)
                return 0;
        end = s->frozen ? now_usec(CLOCK_MONOTONIC) : s->thaw_end;
        return (end - s->freeze_start + USEC_PER_MSEC - 1) / USEC_PER_MSEC;
}

struct freeze_set *freeze_set_free(struct freeze_set *s)
{
        if (!s)
                return NULL;
        if (s->frozen)
                (void)freeze_set_thaw(s);
        if (s->fds)
                close_mount_fds(s);
        strv_free(s->mounts);
        free(s->fds);
        free(s);
        return NULL;
}

/* ------------------------------------------------------------------ thaw everything */

static int thaw_all_held(const char *const *configured, const char *mountinfo_path,
                         char ***ret_thawed)
{
        _cleanup_strv_free_ char **mounts = NULL;
        _cleanup_strv_free_ char **thawed = NULL;
        size_t n;
        int r, first = 0, count = 0;

        /* A saved list may name mounts that are gone by now; the others still need thawing. */
        r = mountinfo_select(configured, mountinfo_path, NULL, true, &mounts);
        if (r < 0)
                return r;
        thawed = calloc(1, sizeof(char *));
        if (!thawed)
                return log_error_errno(ENOMEM, "Out of memory");
        /* Parents first, the reverse of the freeze order, as a normal thaw would go. */
        for (n = strv_length(mounts); n > 0; n--) {
                const char *path = mounts[n - 1];
                _cleanup_close_ int fd = -1;

                r = open_mount_root(path, &fd);
                if (r < 0) {
                        r = log_error_errno(r, "Cannot thaw %s: %s", path, open_error_hint(r));
                        first = first ?: r;
                        continue;
                }
                if (ioctl(fd, FITHAW, 0) < 0) {
                        r = -errno;
                        if (r == -EINVAL) {
                                log_debug("%s was not frozen", path);
                                continue;
                        }
                        r = log_error_errno(r, "Failed to thaw %s: %m", path);
                        first = first ?: r;
                        continue;
                }
                log_notice("Thawed %s, which was frozen", path);
                count++;
                if (strv_push(&thawed, path) < 0) {
                        r = log_error_errno(ENOMEM, "Out of memory");
                        first = first ?: r;
                }
        }
        if (first < 0)
                return first;
        if (ret_thawed)
                *ret_thawed = TAKE_PTR(thawed);
        return count;
}

int freeze_thaw_all(const char *const *configured, const char *mountinfo_path, char ***ret_thawed)
{
        bool was_held = log_is_held();
        int r;

        /*
         * Every filesystem is thawed before any line is written: the log's destination (journald's
         * socket with its queue full, a file, a pipe) may wait on one of them that is still
         * frozen, and the thaw of the rest would wait behind it. As in the frozen window, the
         * lines are held until the end.
         */
        log_hold(true);
        r = thaw_all_held(configured, mountinfo_path, ret_thawed);
        if (!was_held)
                log_hold(false);
        return r;
}
