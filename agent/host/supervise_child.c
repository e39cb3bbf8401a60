/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The child's side of supervise.c: what runs between fork() and execve() to make a clean child
 * (its own process group, default signal dispositions, an empty mask, umask 022, stdin from
 * /dev/null, stdout and stderr on one pipe, no other descriptors but one it is meant to have, cwd
 * "/") and execute the vetted file, and how its pipes are made.
 */
#include "host/supervise_child.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util/fileio.h"
#include "util/macro.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

int supervise_pipe(int *ret_read, int *ret_write)
{
        int fds[2];

        if (pipe2(fds, O_CLOEXEC) < 0)
                return -errno;
        fds[0] = fd_move_above_stdio(fds[0]);
        fds[1] = fd_move_above_stdio(fds[1]);
        if (fds[0] < 0 || fds[1] < 0) {
                int r = fds[0] < 0 ? fds[0] : fds[1];

                safe_close(fds[0]);
                safe_close(fds[1]);
                return r;
        }
        *ret_read = fds[0];
        *ret_write = fds[1];
        return 0;
}

static _Noreturn void child_fail(int err_fd)
{
        int e = errno;

        (void)!write(err_fd, &e, sizeof(e));
        _exit(127);
}

/*
 * Our descriptors are O_CLOEXEC, but libraries' may not be. Marking all but stdio close-on-exec
 * (5.11+) keeps err_fd and exec_fd usable until execve(); older kernels close all but those two
 * (which are O_CLOEXEC themselves). Runs in the child, so raw system calls only.
 */
static void close_all_but(int keep_a, int keep_b, int pass_fd, int max_fd)
{
#ifdef SYS_close_range
        if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
                return;
#endif
        for (int fd = 3; fd < max_fd; fd++)
                if (fd != keep_a && fd != keep_b && fd != pass_fd)
                        (void)close(fd);
}

/*
 * The one descriptor the child is meant to have (a held hook's ready socket) goes to
 * pass_as (3): dash, Debian's sh, takes one digit in a redirection (>&3, not >&12). What
 * sits there now (the error pipe, the file to execute) moves up first. 0 or -1 with errno.
 */
static int make_room_for_pass(struct supervise_child *c)
{
        if (c->pass_fd <= 2 || c->pass_fd == c->pass_as)
                return 0;
        if (c->err_fd == c->pass_as) {
                c->err_fd = fcntl(c->err_fd, F_DUPFD_CLOEXEC, c->pass_as + 1);
                if (c->err_fd < 0)
                        return -1;
        }
        if (c->exec_fd == c->pass_as) {
                c->exec_fd = fcntl(c->exec_fd, F_DUPFD_CLOEXEC, c->pass_as + 1);
                if (c->exec_fd < 0)
                        return -1;
        }
        return 0;
}

static int pass(const struct supervise_child *c)
{
        if (c->pass_fd <= 2)
                return 0;
        if (c->pass_fd == c->pass_as)
                return fcntl(c->pass_as, F_SETFD, 0);
        /* dup2() leaves the copy without FD_CLOEXEC; the original closes at execve(). */
        return dup2(c->pass_fd, c->pass_as) < 0 ? -1 : 0;
}

/*
 * Execute the vetted file. execveat() of the descriptor runs exactly the inode that was vetted.
 * A #! script cannot run that way: the kernel hands the interpreter /dev/fd/N, which O_CLOEXEC
 * has closed by then (ENOENT); and without O_CLOEXEC the script would see $0 = /dev/fd/N, which
 * breaks hooks that find their files next to $0. Like systemd, such a file is executed by path
 * instead, once the path is seen to name the vetted inode still (ESTALE when it does not).
 */
static void exec_vetted(const struct supervise_child *s)
{
        struct stat a, b;

        if (s->exec_fd < 0) {
                execve(s->path, s->argv, s->envp);
                return;
        }
        (void)syscall(SYS_execveat, s->exec_fd, "", s->argv, s->envp, AT_EMPTY_PATH);
        if (errno != ENOENT && errno != ENOSYS)
                return;
        if (fstat(s->exec_fd, &a) < 0 || stat(s->path, &b) < 0)
                return;
        if (a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
                errno = ESTALE;
                return;
        }
        execve(s->path, s->argv, s->envp);
}

/*
 * The child between fork() and execve(): only async-signal-safe calls, since the daemon may have
 * other threads whose locks are frozen in whatever state fork() caught them.
 */
_Noreturn void supervise_child_exec(const struct supervise_child *child)
{
        struct sigaction dfl = {.sa_handler = SIG_DFL};
        struct supervise_child c = *child, *s = &c;
        sigset_t empty;

        if (setpgid(0, 0) < 0)
                child_fail(s->err_fd);
        /* Dispositions first: once the mask is empty, an inherited handler could run. */
        for (int sig = 1; sig < _NSIG; sig++) {
                if (sig == SIGKILL || sig == SIGSTOP)
                        continue;
                /*
                 * glibc refuses sigaction() on the two real-time signals it keeps for itself
                 * (32, 33), yet an ignored disposition of them survives execve(): reset those
                 * with the raw system call (kernel struct: handler, flags, restorer, mask).
                 */
                if (sigaction(sig, &dfl, NULL) < 0) {
                        struct {
                                void *handler;
                                unsigned long flags;
                                void *restorer;
                                uint64_t mask;
                        } k = {.handler = SIG_DFL};
                        (void)syscall(SYS_rt_sigaction, sig, &k, NULL, sizeof(k.mask));
                }
        }
        sigemptyset(&empty);
        if (sigprocmask(SIG_SETMASK, &empty, NULL) < 0)
                child_fail(s->err_fd);
        if (dup2(s->null_fd, STDIN_FILENO) < 0 || dup2(s->out_fd, STDOUT_FILENO) < 0 ||
            dup2(s->out_fd, STDERR_FILENO) < 0)
                child_fail(s->err_fd);
        if (chdir("/") < 0)
                child_fail(s->err_fd);
        /*
         * The service runs with UMask=0077, which is right for our own state but not for what
         * hooks make: a package upgraded by the patch hook would install files that only root
         * can read. Children get the usual 022.
         */
        umask(022);
        if (make_room_for_pass(s) < 0)
                child_fail(child->err_fd);
        close_all_but(s->err_fd, s->exec_fd, s->pass_fd, s->max_fd);
        if (pass(s) < 0)
                child_fail(s->err_fd);
        exec_vetted(s);
        child_fail(s->err_fd);
}
