/* SPDX-License-Identifier: Apache-2.0 */
/* The thaw guard: a child process that thaws when the freeze outlives its timeout or we die. */
#include "host/freeze_guard.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/fileio.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/timeutil.h"

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

/* ------------------------------------------------------------------ the guard process */

/* Everything the guard needs, prepared before fork() so that the guard allocates nothing. */
struct guard_ctx {
        const int *fds;
        int sock, devnull;
        const int *keep; /* fds to keep open, ascending, all >= 3 */
        size_t n_keep;
        usec_t deadline; /* CLOCK_MONOTONIC */
        struct guard_shared *shared;
        guard_thaw_fn thaw;
};

static void guard_thaw_pass(const struct guard_ctx *g)
{
        g->thaw(g->fds, atomic_load(&g->shared->n_frozen));
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
        /* A copy of the parent's memory, credentials included, that must never reach a core file;
         * and a dump onto a frozen filesystem would keep the guard from thawing it. */
        (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
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

/* ------------------------------------------------------------------ the parent's side */

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

void freeze_guard_reap(struct freeze_guard *g)
{
        int status = 0, r;

        if (g->pid > 0) {
                (void)send(g->fd, (char[]){GUARD_MSG_DISARM}, 1, MSG_NOSIGNAL);
                /* Drain until EOF: the guard exits right after reading the disarm byte. */
                do
                        r = guard_recv(g->fd, GUARD_STOP_TIMEOUT_MS);
                while (r > 0);
                if (r < 0) {
                        /* Only ever reached after our own thaw, so no freeze is left unguarded. */
                        log_warning_errno(r, "Thaw guard %d did not exit, killing it: %m",
                                          (int)g->pid);
                        (void)kill(g->pid, SIGKILL);
                }
                while (waitpid(g->pid, &status, 0) < 0 && errno == EINTR)
                        ;
                /* Killed or failed: the freeze was unguarded for a while, though we thawed. */
                if (WIFSIGNALED(status))
                        log_warning("Thaw guard %d was killed by signal %d", (int)g->pid,
                                    WTERMSIG(status));
                else if (WEXITSTATUS(status) != GUARD_EXIT_DISARMED &&
                         WEXITSTATUS(status) != GUARD_EXIT_EXPIRED)
                        log_warning("Thaw guard %d exited with status %d", (int)g->pid,
                                    WEXITSTATUS(status));
                else
                        log_debug("Thaw guard %d exited with status %d", (int)g->pid,
                                  WEXITSTATUS(status));
        }
        g->pid = 0;
        g->fd = safe_close(g->fd);
        if (g->shared) {
                pthread_mutex_destroy(&g->shared->lock);
                munmap(g->shared, sizeof(*g->shared));
                g->shared = NULL;
        }
}

/* The page shared with the guard, its robust lock initialized, armed; a logged -errno. */
static int guard_shared_new(struct freeze_guard *g)
{
        pthread_mutexattr_t attr;
        int r;

        g->shared = mmap(NULL, sizeof(*g->shared), PROT_READ | PROT_WRITE,
                         MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (g->shared == MAP_FAILED) {
                g->shared = NULL;
                return log_error_errno(errno, "Failed to map the guard's shared page: %m");
        }
        pthread_mutexattr_init(&attr);
        pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
        pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
        r = pthread_mutex_init(&g->shared->lock, &attr);
        pthread_mutexattr_destroy(&attr);
        if (r != 0) {
                munmap(g->shared, sizeof(*g->shared));
                g->shared = NULL;
                return log_error_errno(r, "Failed to set up the guard's lock: %m");
        }
        atomic_init(&g->shared->state, GUARD_ARMED);
        atomic_init(&g->shared->n_frozen, 0);
        return 0;
}

/* The socket between us and the guard, both ends above stdio: ours in g->fd, the guard's in
 * *ret_peer. A logged -errno, with the shared page released, on failure. */
static int guard_socket_new(struct freeze_guard *g, int *ret_peer)
{
        int sv[2], r;

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
                r = log_error_errno(errno, "Failed to create the guard's socket: %m");
                freeze_guard_reap(g);
                return r;
        }
        g->fd = sv[0] = fd_move_above_stdio(sv[0]);
        sv[1] = fd_move_above_stdio(sv[1]);
        if (sv[0] < 0 || sv[1] < 0) {
                r = log_error_errno(sv[0] < 0 ? sv[0] : sv[1],
                                    "Failed to create the guard's socket: %m");
                safe_close(sv[1]);
                freeze_guard_reap(g);
                return r;
        }
        *ret_peer = sv[1];
        return 0;
}

int freeze_guard_start(struct freeze_guard *g, const int *fds, size_t n, unsigned timeout_ms,
                       guard_thaw_fn thaw)
{
        _cleanup_close_ int devnull = -1;
        _cleanup_free_ int *keep = NULL;
        struct guard_ctx ctx;
        sigset_t all, old;
        int peer = -1, r;
        pid_t pid;

        devnull = open("/dev/null", O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (devnull < 0)
                return log_error_errno(errno, "Failed to open /dev/null: %m");
        keep = calloc(n + 1, sizeof(int));
        if (!keep)
                return log_error_errno(ENOMEM, "Out of memory");
        r = guard_shared_new(g);
        if (r < 0)
                return r;
        r = guard_socket_new(g, &peer);
        if (r < 0)
                return r;

        memcpy(keep, fds, n * sizeof(int));
        keep[n] = peer;
        qsort(keep, n + 1, sizeof(int), cmp_int);
        ctx = (struct guard_ctx){
                .fds = fds,
                .sock = peer,
                .devnull = devnull,
                .keep = keep,
                .n_keep = n + 1,
                .deadline = now_usec(CLOCK_MONOTONIC) + (usec_t)timeout_ms * USEC_PER_MSEC,
                .shared = g->shared,
                .thaw = thaw,
        };

        /* No handler of ours may run in the child before it has set its own dispositions. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        pid = fork();
        if (pid == 0)
                guard_main(&ctx);
        r = pid < 0 ? -errno : 0;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        close(peer);
        if (r < 0) {
                freeze_guard_reap(g);
                return log_error_errno(r, "Failed to start the thaw guard: %m");
        }
        g->pid = pid;

        r = guard_recv(g->fd, GUARD_READY_TIMEOUT_MS);
        if (r != GUARD_MSG_READY) {
                (void)kill(pid, SIGKILL);
                freeze_guard_reap(g);
                return log_error_errno(r < 0 ? r : ECHILD, "Thaw guard did not start: %s",
                                       r < 0 ? strerror(-r) : "it exited");
        }
        log_debug("Thaw guard %d armed for %u ms", (int)pid, timeout_ms);
        return 0;
}

int freeze_guard_poll(struct freeze_guard *g)
{
        int r;

        if (g->fd < 0)
                return 0;
        r = guard_recv(g->fd, 0);
        if (r == -ETIMEDOUT)
                return 0;
        if (r == GUARD_MSG_EXPIRED)
                return -ETIMEDOUT;
        return -ECHILD; /* EOF or an error: the guard is gone */
}
