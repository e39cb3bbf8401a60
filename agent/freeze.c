/* Filesystem freeze: mount selection, FIFREEZE/FITHAW in order, and the thaw guard process. */
#include "freeze.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/fileio.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/str.h"
#include "util/timeutil.h"

#define MOUNTINFO_DEFAULT "/proc/self/mountinfo"

/* How long the guard may take to set itself up, and to exit once disarmed. */
#define GUARD_READY_TIMEOUT_MS 5000
#define GUARD_STOP_TIMEOUT_MS  5000

/* Bytes on the guard socket: R(eady) and T(imed out, thawed) from the guard, D(isarm) to it. */
#define GUARD_MSG_READY   'R'
#define GUARD_MSG_EXPIRED 'T'
#define GUARD_MSG_DISARM  'D'

enum {
        GUARD_EXIT_DISARMED = 0,
        GUARD_EXIT_SETUP = 1,
        GUARD_EXIT_ORPHANED = 2, /* the parent went away: thawed */
        GUARD_EXIT_EXPIRED = 3,  /* the timeout passed: thawed */
};

static const char *const freezable_types[] = {
        "ext3", "ext4", "xfs", "btrfs", "f2fs", "jfs", "reiserfs", "gfs2", "ocfs2", "nilfs2",
};

static inline void strv_freep(char ***v)
{
        strv_free(*v);
}

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

        /* Children before parents: a filesystem whose backing file lives on another one must be
         * frozen first, or its own freeze (which flushes into that file) would block. */
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

static int select_mounts(const char *const *configured, const char *mountinfo_path, bool lenient,
                         char ***ret)
{
        _cleanup_(mount_table_done) struct mount_table t = {};
        _cleanup_free_ struct pick *picks = NULL;
        _cleanup_(strv_freep) char **out = NULL;
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
        qsort(picks, n, sizeof(*picks), pick_cmp);
        for (size_t i = 0; i < n; i++)
                if (strv_push(&out, picks[i].e->path) < 0)
                        return log_error_errno(ENOMEM, "Out of memory");
        *ret = TAKE_PTR(out);
        return 0;
}

int freeze_select(const char *const *configured, const char *mountinfo_path, char ***ret)
{
        return select_mounts(configured, mountinfo_path, false, ret);
}

/* ------------------------------------------------------------------ mount point handles */

/* The guard maps /dev/null onto 0-2, so every descriptor it keeps must be above them. */
static int fd_above_stdio(int fd)
{
        int moved;

        if (fd < 0 || fd >= 3)
                return fd;
        moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (moved < 0)
                moved = -errno;
        safe_close(fd);
        return moved;
}

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
        fd = fd_above_stdio(fd);
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

/* ------------------------------------------------------------------ the guard */

enum {
        GUARD_ARMED,
        GUARD_EXPIRED,   /* the guard claimed the thaw: the timeout passed or the parent died */
        GUARD_STANDDOWN, /* the parent is thawing */
};

/*
 * Shared between the parent and the guard (MAP_SHARED). The parent holds the lock across each
 * FIFREEZE and freezes only while the state is ARMED; the guard takes it for its final thaw pass,
 * so no FIFREEZE can slip in after the guard has thawed. The lock is robust: if its holder dies,
 * the other side gets EOWNERDEAD instead of waiting forever.
 */
struct guard_shared {
        pthread_mutex_t lock;
        atomic_int state;
        atomic_size_t n_frozen; /* the parent has frozen fds[0..n_frozen) */
};

/* Everything the guard needs, prepared before fork() so that the guard allocates nothing. */
struct guard_ctx {
        const int *fds;
        int sock, devnull;
        const int *keep; /* fds to keep open, ascending, all >= 3 */
        size_t n_keep;
        usec_t deadline; /* CLOCK_MONOTONIC */
        struct guard_shared *shared;
};

static void guard_thaw_pass(const struct guard_ctx *g)
{
        for (size_t i = atomic_load(&g->shared->n_frozen); i > 0; i--)
                (void)ioctl(g->fds[i - 1], FITHAW, 0);
}

static _Noreturn void guard_finish(const struct guard_ctx *g, int code)
{
        int expected = GUARD_ARMED, r;
        bool claimed = atomic_compare_exchange_strong(&g->shared->state, &expected, GUARD_EXPIRED);

        /* At once, without waiting for a parent that may be stuck inside a FIFREEZE. */
        guard_thaw_pass(g);
        /* Again under the lock: a FIFREEZE that was in flight is complete now, and the parent
         * will not start another one since the state is no longer ARMED. */
        r = pthread_mutex_lock(&g->shared->lock);
        guard_thaw_pass(g);
        if (r == 0 || r == EOWNERDEAD)
                (void)pthread_mutex_unlock(&g->shared->lock);
        if (claimed && code == GUARD_EXIT_EXPIRED)
                (void)send(g->sock, (char[]){GUARD_MSG_EXPIRED}, 1, MSG_NOSIGNAL);
        _exit(code);
}

static void guard_close_others(const struct guard_ctx *g)
{
        unsigned next = 3;

        /* Best effort (close_range() needs Linux 5.9): a descriptor kept by mistake would only
         * keep a pipe of the parent's open a little longer. */
        for (size_t i = 0; i < g->n_keep; i++) {
                if ((unsigned)g->keep[i] > next)
                        (void)close_range(next, (unsigned)g->keep[i] - 1, 0);
                next = (unsigned)g->keep[i] + 1;
        }
        (void)close_range(next, ~0U, 0);
}

/*
 * The guard: no malloc, no logging, no disk. It thaws when the deadline passes or when the socket
 * reports EOF (the parent is gone, even by SIGKILL), and exits quietly when disarmed.
 */
static _Noreturn void guard_main(const struct guard_ctx *g)
{
        static const int ignored[] = {SIGINT,  SIGTERM, SIGHUP,  SIGPIPE,
                                      SIGQUIT, SIGTSTP, SIGTTIN, SIGTTOU};
        sigset_t none;
        int fd;

        /* Out of the parent's process group, so a ^C or a group-wide kill does not reach us. */
        (void)setpgid(0, 0);
        (void)prctl(PR_SET_NAME, "ec2-imaged-guard", 0, 0, 0);
        /* The parent's handlers are not ours (one may _exit() before thawing); the signals that
         * terminals and service managers send to whole groups are ignored outright. */
        for (int sig = 1; sig < NSIG; sig++) {
                struct sigaction sa = {.sa_handler = SIG_DFL};

                if (sig == SIGKILL || sig == SIGSTOP)
                        continue;
                for (size_t i = 0; i < ELEMENTSOF(ignored); i++)
                        if (sig == ignored[i])
                                sa.sa_handler = SIG_IGN;
                (void)sigaction(sig, &sa, NULL);
        }
        sigemptyset(&none);
        (void)sigprocmask(SIG_SETMASK, &none, NULL);

        if (dup2(g->devnull, STDIN_FILENO) < 0 || dup2(g->devnull, STDOUT_FILENO) < 0 ||
            dup2(g->devnull, STDERR_FILENO) < 0)
                _exit(GUARD_EXIT_SETUP);
        guard_close_others(g);

        /* Paged out, we might need the disk to come back and thaw it. MCL_ONFAULT locks the
         * pages we use without populating every mapping inherited from the parent. Best effort,
         * like the OOM exemption below: failing them (ASan builds, no CAP_SYS_RESOURCE) only
         * weakens the guard, and a guard that refused to run would protect nothing. */
        (void)mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT);
        fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
        if (fd >= 0) {
                (void)!write(fd, "-1000", 5);
                close(fd);
        }

        if (send(g->sock, (char[]){GUARD_MSG_READY}, 1, MSG_NOSIGNAL) != 1)
                guard_finish(g, GUARD_EXIT_ORPHANED);

        for (;;) {
                struct pollfd p = {.fd = g->sock, .events = POLLIN};
                usec_t now = now_usec(CLOCK_MONOTONIC);
                usec_t left_ms;
                char c;
                ssize_t k;
                int r;

                if (now >= g->deadline)
                        guard_finish(g, GUARD_EXIT_EXPIRED);
                left_ms = (g->deadline - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC;
                r = poll(&p, 1, left_ms > INT_MAX ? INT_MAX : (int)left_ms);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        guard_finish(g, GUARD_EXIT_ORPHANED); /* cannot watch: thaw now */
                if (r == 0)
                        continue;
                k = recv(g->sock, &c, 1, 0);
                if (k < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (k == 1 && c == GUARD_MSG_DISARM)
                        _exit(GUARD_EXIT_DISARMED);
                if (k == 1)
                        continue;
                guard_finish(g, GUARD_EXIT_ORPHANED);
        }
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

        pid_t guard_pid;
        int guard_fd;
        struct guard_shared *shared;

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
        *s = (struct freeze_set){.timeout_ms = timeout_ms, .guard_fd = -1};
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

static int cmp_int(const void *a, const void *b)
{
        int x = *(const int *)a, y = *(const int *)b;

        return (x > y) - (x < y);
}

/* Wait up to timeout_ms for one byte from the guard: the byte, 0 on EOF, or -errno. */
static int guard_recv(int fd, int timeout_ms)
{
        usec_t deadline = now_usec(CLOCK_MONOTONIC) + (usec_t)timeout_ms * USEC_PER_MSEC;

        for (;;) {
                struct pollfd p = {.fd = fd, .events = POLLIN};
                usec_t now = now_usec(CLOCK_MONOTONIC);
                unsigned char c;
                ssize_t k;
                int r;

                r = poll(&p, 1, now >= deadline ? 0 : (int)((deadline - now) / USEC_PER_MSEC));
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -errno;
                if (r == 0)
                        return -ETIMEDOUT;
                k = recv(fd, &c, 1, MSG_DONTWAIT);
                if (k < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (k < 0)
                        return -errno;
                return k == 0 ? 0 : c;
        }
}

/* Disarm the guard (we have thawed, or never froze) and reap it. */
static void guard_reap(struct freeze_set *s)
{
        int status = 0, r;

        if (s->guard_pid > 0) {
                (void)send(s->guard_fd, (char[]){GUARD_MSG_DISARM}, 1, MSG_NOSIGNAL);
                /* Drain until EOF: the guard exits right after reading the disarm byte. */
                do
                        r = guard_recv(s->guard_fd, GUARD_STOP_TIMEOUT_MS);
                while (r > 0);
                if (r < 0) {
                        /* Only ever reached after our own thaw, so no freeze is left unguarded. */
                        log_warning_errno(r, "Thaw guard %d did not exit, killing it: %m",
                                          (int)s->guard_pid);
                        (void)kill(s->guard_pid, SIGKILL);
                }
                while (waitpid(s->guard_pid, &status, 0) < 0 && errno == EINTR)
                        ;
                /* Killed or failed: the freeze was unguarded for a while, though we thawed. */
                if (WIFSIGNALED(status))
                        log_warning("Thaw guard %d was killed by signal %d", (int)s->guard_pid,
                                    WTERMSIG(status));
                else if (WEXITSTATUS(status) != GUARD_EXIT_DISARMED &&
                         WEXITSTATUS(status) != GUARD_EXIT_EXPIRED)
                        log_warning("Thaw guard %d exited with status %d", (int)s->guard_pid,
                                    WEXITSTATUS(status));
                else
                        log_debug("Thaw guard %d exited with status %d", (int)s->guard_pid,
                                  WEXITSTATUS(status));
        }
        s->guard_pid = 0;
        s->guard_fd = safe_close(s->guard_fd);
        if (s->shared) {
                pthread_mutex_destroy(&s->shared->lock);
                munmap(s->shared, sizeof(*s->shared));
                s->shared = NULL;
        }
}

static int guard_start(struct freeze_set *s)
{
        _cleanup_close_ int devnull = -1;
        _cleanup_free_ int *keep = NULL;
        pthread_mutexattr_t attr;
        struct guard_ctx g;
        sigset_t all, old;
        int sv[2], r;
        pid_t pid;

        devnull = open("/dev/null", O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (devnull < 0)
                return log_error_errno(errno, "Failed to open /dev/null: %m");
        keep = calloc(s->n + 1, sizeof(int));
        if (!keep)
                return log_error_errno(ENOMEM, "Out of memory");
        s->shared = mmap(NULL, sizeof(*s->shared), PROT_READ | PROT_WRITE,
                         MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (s->shared == MAP_FAILED) {
                s->shared = NULL;
                return log_error_errno(errno, "Failed to map the guard's shared page: %m");
        }
        pthread_mutexattr_init(&attr);
        pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
        pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
        r = pthread_mutex_init(&s->shared->lock, &attr);
        pthread_mutexattr_destroy(&attr);
        if (r != 0) {
                munmap(s->shared, sizeof(*s->shared));
                s->shared = NULL;
                return log_error_errno(r, "Failed to set up the guard's lock: %m");
        }
        atomic_init(&s->shared->state, GUARD_ARMED);
        atomic_init(&s->shared->n_frozen, 0);

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
                r = log_error_errno(errno, "Failed to create the guard's socket: %m");
                guard_reap(s);
                return r;
        }
        s->guard_fd = sv[0] = fd_above_stdio(sv[0]);
        sv[1] = fd_above_stdio(sv[1]);
        if (sv[0] < 0 || sv[1] < 0) {
                r = log_error_errno(sv[0] < 0 ? sv[0] : sv[1],
                                    "Failed to create the guard's socket: %m");
                safe_close(sv[1]);
                guard_reap(s);
                return r;
        }

        memcpy(keep, s->fds, s->n * sizeof(int));
        keep[s->n] = sv[1];
        qsort(keep, s->n + 1, sizeof(int), cmp_int);
        g = (struct guard_ctx){
                .fds = s->fds,
                .sock = sv[1],
                .devnull = devnull,
                .keep = keep,
                .n_keep = s->n + 1,
                .deadline = now_usec(CLOCK_MONOTONIC) + (usec_t)s->timeout_ms * USEC_PER_MSEC,
                .shared = s->shared,
        };

        /* No handler of ours may run in the child before it has set its own dispositions. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        pid = fork();
        if (pid == 0)
                guard_main(&g);
        r = pid < 0 ? -errno : 0;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        close(sv[1]);
        if (r < 0) {
                guard_reap(s);
                return log_error_errno(r, "Failed to start the thaw guard: %m");
        }
        s->guard_pid = pid;

        r = guard_recv(s->guard_fd, GUARD_READY_TIMEOUT_MS);
        if (r != GUARD_MSG_READY) {
                (void)kill(pid, SIGKILL);
                guard_reap(s);
                return log_error_errno(r < 0 ? r : ECHILD, "Thaw guard did not start: %s",
                                       r < 0 ? strerror(-r) : "it exited");
        }
        log_debug("Thaw guard %d armed for %u ms", (int)pid, s->timeout_ms);
        return 0;
}

/* Non-blocking look at the guard: 0 while it is armed, -ETIMEDOUT or -ECHILD once it is not. */
static int guard_poll(struct freeze_set *s)
{
        int r;

        if (s->guard_fd < 0)
                return 0;
        r = guard_recv(s->guard_fd, 0);
        if (r == -ETIMEDOUT)
                return 0;
        if (r == GUARD_MSG_EXPIRED)
                return -ETIMEDOUT;
        return -ECHILD; /* EOF or an error: the guard is gone */
}

/* FITHAW ours in reverse. Returns the first unexpected error; *ret_expired tells whether the
 * guard had claimed the thaw (its timeout passed, or it saw us as dead) before we got here. */
static int thaw_frozen(struct freeze_set *s, size_t *ret_failed, bool *ret_expired)
{
        int first = 0;

        *ret_expired =
                s->shared && atomic_exchange(&s->shared->state, GUARD_STANDDOWN) == GUARD_EXPIRED;
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
        guard_reap(s);
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

int freeze_set_freeze(struct freeze_set *s)
{
        size_t i;
        int r = 0;

        if (s->frozen || active_set)
                return log_error_errno(EBUSY, "Another freeze is in progress");
        s->error = 0;
        s->freeze_start = s->thaw_end = 0;
        if (s->n == 0)
                return 0;

        /* Path lookups on a frozen filesystem can block, so every handle is opened now. */
        for (i = 0; i < s->n; i++) {
                r = open_mount_root(s->mounts[i], &s->fds[i]);
                if (r < 0) {
                        close_mount_fds(s);
                        return log_error_errno(r, "Cannot freeze %s: %s", s->mounts[i],
                                               open_error_hint(r));
                }
        }
        /* Flush while writes are allowed, so FIFREEZE's own flush is short. */
        for (i = 0; i < s->n; i++)
                if (syncfs(s->fds[i]) < 0) {
                        r = -errno;
                        close_mount_fds(s);
                        return log_error_errno(r, "Failed to sync %s: %m", s->mounts[i]);
                }
        r = guard_start(s);
        if (r < 0) {
                close_mount_fds(s);
                return r;
        }

        active_set = s;
        s->frozen = true;
        emergency_fds = s->fds;
        log_hold(true);
        for (i = 0; i < s->n; i++) {
                int lr = pthread_mutex_lock(&s->shared->lock);

                if (lr == EOWNERDEAD) {
                        pthread_mutex_consistent(&s->shared->lock);
                        pthread_mutex_unlock(&s->shared->lock);
                        r = -ECHILD;
                        break;
                }
                if (lr != 0) {
                        r = -lr;
                        break;
                }
                if (atomic_load(&s->shared->state) != GUARD_ARMED) {
                        pthread_mutex_unlock(&s->shared->lock);
                        r = -ETIMEDOUT;
                        break;
                }
                if (i == 0)
                        s->freeze_start = now_usec(CLOCK_MONOTONIC);
                /* Counted before the FIFREEZE: were we killed right after it, the guard and the
                 * handler must still thaw this one. A FITHAW too many is harmless. */
                atomic_store(&s->shared->n_frozen, i + 1);
                emergency_n = (sig_atomic_t)(i + 1);
                if (ioctl(s->fds[i], FIFREEZE, 0) < 0) {
                        r = -errno;
                        /* Not ours to thaw: it may be someone else's freeze (EBUSY). */
                        emergency_n = (sig_atomic_t)i;
                        atomic_store(&s->shared->n_frozen, i);
                } else {
                        s->n_frozen = i + 1;
                }
                pthread_mutex_unlock(&s->shared->lock);
                if (r < 0)
                        break;
        }
        /* The guard may have died or timed out while we were freezing. */
        if (r == 0)
                r = guard_poll(s);
        if (r < 0) {
                const char *what = i < s->n ? s->mounts[i] : "the filesystems";

                (void)unfreeze(s, r);
                switch (r) {
                case -ETIMEDOUT:
                        return log_error_errno(r,
                                               "Failed to freeze %s: the timeout of %u ms "
                                               "passed while freezing",
                                               what, s->timeout_ms);
                case -ECHILD:
                        return log_error_errno(r, "Failed to freeze %s: the thaw guard died", what);
                default:
                        return log_error_errno(r, "Failed to freeze %s: %s", what,
                                               freeze_error_hint(r));
                }
        }
        return 0;
}

int freeze_set_check(struct freeze_set *s)
{
        int r;

        if (!s->frozen)
                return 0;
        r = guard_poll(s);
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
        return s->frozen ? s->guard_fd : -1;
}

int freeze_set_guard_pid(const struct freeze_set *s)
{
        return s->frozen ? (int)s->guard_pid : 0;
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

int freeze_thaw_all(const char *const *configured, const char *mountinfo_path, char ***ret_thawed)
{
        _cleanup_(strv_freep) char **mounts = NULL;
        _cleanup_(strv_freep) char **thawed = NULL;
        size_t n;
        int r, first = 0, count = 0;

        /* A saved list may name mounts that are gone by now; the others still need thawing. */
        r = select_mounts(configured, mountinfo_path, true, &mounts);
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
