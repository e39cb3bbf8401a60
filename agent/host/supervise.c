/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Supervised children: start a program in a clean child (its own process group, default signal
 * dispositions, an empty mask, umask 022, stdin from /dev/null, stdout and stderr on one pipe,
 * no other descriptors, cwd "/"), log its output line by line, kill its group at the deadline,
 * and classify how it ended. The policy is described in hooks.h, its main user.
 */
#include "host/supervise.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host/leftovers.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/str.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* How often we look again when there is nothing to wait on (no pidfd, leftover processes). */
#define HOOK_TICK_MS 20

const char *hook_status_to_string(enum hook_status s)
{
        static const char *const names[] = {
                [HOOK_SUCCESS] = "success", [HOOK_EXITED] = "exited",
                [HOOK_KILLED] = "killed",   [HOOK_TIMED_OUT] = "timed-out",
                [HOOK_REFUSED] = "refused", [HOOK_EXEC_FAILED] = "exec-failed",
        };
        return (unsigned)s < ELEMENTSOF(names) ? names[s] : "unknown";
}

static int make_pipe(int *ret_read, int *ret_write)
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

struct spawn {
        const char *path;
        int exec_fd; /* the vetted file to execute, or -1: execve(path) */
        char *const *argv;
        char **envp;
        int null_fd, out_fd, err_fd;
        int max_fd;
};

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
static void close_all_but(int keep_a, int keep_b, int max_fd)
{
#ifdef SYS_close_range
        if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
                return;
#endif
        for (int fd = 3; fd < max_fd; fd++)
                if (fd != keep_a && fd != keep_b)
                        (void)close(fd);
}

/*
 * Execute the vetted file. execveat() of the descriptor runs exactly the inode that was vetted.
 * A #! script cannot run that way: the kernel hands the interpreter /dev/fd/N, which O_CLOEXEC
 * has closed by then (ENOENT); and without O_CLOEXEC the script would see $0 = /dev/fd/N, which
 * breaks hooks that find their files next to $0. Like systemd, such a file is executed by path
 * instead, once the path is seen to name the vetted inode still (ESTALE when it does not).
 */
static void exec_vetted(const struct spawn *s)
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
static _Noreturn void child_exec(const struct spawn *s)
{
        struct sigaction dfl = {.sa_handler = SIG_DFL};
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
        close_all_but(s->err_fd, s->exec_fd, s->max_fd);
        exec_vetted(s);
        child_fail(s->err_fd);
}

/* The state of one running hook, its output and its tail. */
struct run {
        const char *kind, *name, *phase; /* "hook" or "helper" */
        char *fields;                    /* "HOOK=<name>\n" */
        char line[HOOK_LINE_MAX + 1];
        size_t line_len;
        size_t logged, total;
        bool truncated;
        char *tail[HOOK_TAIL_LINES];
        size_t tail_next, tail_n;
};

static void run_done(struct run *r)
{
        free(r->fields);
        for (size_t i = 0; i < HOOK_TAIL_LINES; i++)
                free(r->tail[i]);
}

static void emit_line(struct run *r)
{
        size_t n = r->line_len;
        char *copy;

        if (n > 0 && r->line[n - 1] == '\r')
                n--;
        /* A NUL would cut the line short in the log; show it instead. */
        for (size_t i = 0; i < n; i++)
                if (r->line[i] == '\0')
                        r->line[i] = '?';
        r->line[n] = '\0';
        r->line_len = 0;
        log_struct(LOG_INFO, r->fields, "%s: %s", r->name, r->line);

        copy = strdup(r->line);
        if (!copy)
                return; /* the tail is a courtesy; the line is in the log */
        free(r->tail[r->tail_next]);
        r->tail[r->tail_next] = copy;
        r->tail_next = (r->tail_next + 1) % HOOK_TAIL_LINES;
        if (r->tail_n < HOOK_TAIL_LINES)
                r->tail_n++;
}

static void feed_output(struct run *r, const char *p, size_t n)
{
        size_t keep;

        r->total += n;
        keep = HOOK_OUTPUT_MAX - r->logged < n ? HOOK_OUTPUT_MAX - r->logged : n;
        if (keep < n && !r->truncated) {
                r->truncated = true;
                log_struct(LOG_NOTICE, r->fields,
                           "%s: output exceeds %u bytes, discarding the rest", r->name,
                           HOOK_OUTPUT_MAX);
        }
        r->logged += keep;
        while (keep > 0) {
                const char *nl = memchr(p, '\n', keep);
                size_t chunk = nl ? (size_t)(nl - p) : keep;
                size_t room = HOOK_LINE_MAX - r->line_len;

                if (chunk > room) {
                        /* Too long for one record: log what fits, go on with the rest. */
                        memcpy(r->line + r->line_len, p, room);
                        r->line_len += room;
                        emit_line(r);
                        p += room;
                        keep -= room;
                        continue;
                }
                memcpy(r->line + r->line_len, p, chunk);
                r->line_len += chunk;
                p += chunk;
                keep -= chunk;
                if (nl) {
                        emit_line(r);
                        p++;
                        keep--;
                }
        }
}

/* Read what is there; returns false at EOF or on a read error (the pipe is done then). */
static bool drain(struct run *r, int fd)
{
        char b[16384];

        for (;;) {
                ssize_t n = read(fd, b, sizeof(b));

                if (n > 0) {
                        feed_output(r, b, (size_t)n);
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                return n < 0 && errno == EAGAIN;
        }
}

static int pidfd_open_compat(pid_t pid)
{
#ifdef SYS_pidfd_open
        return (int)syscall(SYS_pidfd_open, pid, 0);
#else
        errno = ENOSYS;
        return -1;
#endif
}

static void format_ms(unsigned ms, char *b, size_t size)
{
        if (ms % 1000 == 0)
                snprintf(b, size, "%u s", ms / 1000);
        else if (ms > 1000)
                snprintf(b, size, "%.1f s", ms / 1000.0);
        else
                snprintf(b, size, "%u ms", ms);
}

/* The main process has been started; wait for it and its group under the deadline. */
static void supervise(struct run *run, struct leftovers *lo, pid_t pid, int out_fd,
                      unsigned timeout_ms, unsigned grace_ms, struct hook_result *res)
{
        _cleanup_close_ int pidfd = pidfd_open_compat(pid);
        enum { RUNNING, TERMINATING, KILLED } state = RUNNING;
        usec_t deadline = now_usec(CLOCK_MONOTONIC) + (usec_t)timeout_ms * USEC_PER_MSEC;
        usec_t kill_at = USEC_INFINITY;
        bool exited = false, timed_out = false, lost = false;
        char tbuf[32], gbuf[32];
        siginfo_t si = {};

        format_ms(timeout_ms, tbuf, sizeof(tbuf));
        format_ms(grace_ms, gbuf, sizeof(gbuf));
        for (;;) {
                usec_t now = now_usec(CLOCK_MONOTONIC), wake;
                struct pollfd p[2] = {{.fd = out_fd, .events = POLLIN}, {.fd = -1}};
                int t, r;

                if (!exited && state == RUNNING && now >= deadline) {
                        timed_out = true;
                        log_struct(LOG_WARNING, run->fields,
                                   "%s %s (%s) timed out after %s, sending SIGTERM to its "
                                   "process group",
                                   run->kind, run->name, run->phase, tbuf);
                        (void)kill(-pid, SIGTERM);
                        state = TERMINATING;
                        kill_at = now + (usec_t)grace_ms * USEC_PER_MSEC;
                }
                if (exited) {
                        /*
                         * The main process is a zombie we have not reaped, so its pid, which is
                         * the group's id, cannot be reused: signalling the group is safe. The
                         * orphans we adopted get what the group got (once each).
                         */
                        r = leftovers_sweep(lo, state == RUNNING       ? 0
                                                : state == TERMINATING ? SIGTERM
                                                                       : SIGKILL);
                        if (r == 0)
                                break;
                        if (r < 0) {
                                (void)kill(-pid, SIGKILL); /* cannot tell: make sure */
                                break;
                        }
                        if (state == RUNNING) {
                                res->left_processes = true;
                                log_struct(LOG_WARNING, run->fields,
                                           "%s %s (%s) left processes behind, sending SIGTERM "
                                           "to them",
                                           run->kind, run->name, run->phase);
                                (void)kill(-pid, SIGTERM);
                                (void)leftovers_sweep(lo, SIGTERM);
                                state = TERMINATING;
                                kill_at = now + (usec_t)grace_ms * USEC_PER_MSEC;
                        }
                }
                if (state == TERMINATING && now >= kill_at) {
                        log_struct(LOG_WARNING, run->fields,
                                   "%s %s (%s) still running %s after SIGTERM, sending SIGKILL "
                                   "to its processes",
                                   run->kind, run->name, run->phase, gbuf);
                        (void)kill(-pid, SIGKILL);
                        if (exited)
                                (void)leftovers_sweep(lo, SIGKILL);
                        state = KILLED;
                        kill_at = now + (usec_t)grace_ms * USEC_PER_MSEC;
                } else if (state == KILLED && now >= kill_at) {
                        /* Only uninterruptible sleep survives SIGKILL; we cannot do more. */
                        log_struct(LOG_WARNING, run->fields,
                                   "%s %s (%s): processes survive SIGKILL for %s, still %s",
                                   run->kind, run->name, run->phase, gbuf,
                                   exited ? "giving up on them" : "waiting for it");
                        if (exited)
                                break;
                        kill_at = USEC_INFINITY;
                }

                wake = state == RUNNING && !exited ? deadline : kill_at;
                t = wake == USEC_INFINITY ? -1
                                          : (int)((wake - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC);
                if ((exited || pidfd < 0) && (t < 0 || t > HOOK_TICK_MS))
                        t = HOOK_TICK_MS;
                else if (t > 60000)
                        t = 60000; /* just look again; keeps huge timeouts within an int */
                if (!exited)
                        p[1].fd = pidfd;
                p[1].events = POLLIN;
                if (poll(p, 2, t) < 0 && errno != EINTR) {
                        log_error_errno(errno, "poll() on hook %s failed, killing it: %m",
                                        run->name);
                        (void)kill(-pid, SIGKILL);
                        break;
                }
                if (out_fd >= 0 && p[0].revents && !drain(run, out_fd))
                        out_fd = -1; /* EOF: poll() ignores negative descriptors */
                if (!exited) {
                        si.si_pid = 0;
                        r = waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT);
                        if (r == 0 && si.si_pid == pid)
                                exited = true;
                        else if (r < 0 && errno != EINTR) {
                                /* ECHILD: someone else reaped it (a waitpid(-1) elsewhere). */
                                lost = true;
                                res->error = -errno;
                                (void)kill(-pid, SIGKILL);
                                break;
                        }
                }
        }
        if (out_fd >= 0)
                (void)drain(run, out_fd);
        if (run->line_len > 0)
                emit_line(run); /* the last line had no newline */

        while (!lost && waitid(P_PID, (id_t)pid, &si, WEXITED) < 0 && errno == EINTR)
                ;
        if (lost) {
                res->status = HOOK_EXEC_FAILED;
                res->message = strprintf("%s %s (%s): lost track of its process: %s", run->kind,
                                         run->name, run->phase, strerror(-res->error));
        } else if (timed_out) {
                res->status = HOOK_TIMED_OUT;
                res->signal = si.si_code == CLD_EXITED ? 0 : si.si_status;
                res->message = state == KILLED
                                       ? strprintf("%s %s (%s) timed out after %s and was "
                                                   "killed (SIGKILL after %s)",
                                                   run->kind, run->name, run->phase, tbuf, gbuf)
                                       : strprintf("%s %s (%s) timed out after %s and was killed",
                                                   run->kind, run->name, run->phase, tbuf);
        } else if (si.si_code == CLD_EXITED && si.si_status == 0) {
                res->status = HOOK_SUCCESS;
        } else if (si.si_code == CLD_EXITED) {
                res->status = HOOK_EXITED;
                res->exit_status = si.si_status;
                res->message = strprintf("%s %s (%s) exited with status %d", run->kind, run->name,
                                         run->phase, si.si_status);
        } else {
                res->status = HOOK_KILLED;
                res->signal = si.si_status;
                res->message = strprintf("%s %s (%s) was killed by signal SIG%s%s", run->kind,
                                         run->name, run->phase, strna(sigabbrev_np(si.si_status)),
                                         si.si_code == CLD_DUMPED ? " (core dumped)" : "");
        }
}

static char **tail_take(struct run *r)
{
        char **v = calloc(r->tail_n + 1, sizeof(char *));
        size_t first = (r->tail_next + HOOK_TAIL_LINES - r->tail_n) % HOOK_TAIL_LINES;

        if (!v)
                return NULL;
        for (size_t i = 0; i < r->tail_n; i++)
                v[i] = TAKE_PTR(r->tail[(first + i) % HOOK_TAIL_LINES]);
        return v;
}

static int exec_failed(struct hook_result *res, const char *kind, const char *phase,
                       const char *what, int error)
{
        res->status = HOOK_EXEC_FAILED;
        res->error = -abs(error);
        /* The file was there when we vetted it, so ENOENT from execve means the #! interpreter. */
        res->message = strprintf("%s %s (%s) could not be %s: %s%s", kind, res->name, phase, what,
                                 strerror(abs(error)),
                                 abs(error) == ENOENT   ? " (missing interpreter?)"
                                 : abs(error) == ESTALE ? " (it was replaced after it was vetted)"
                                                        : "");
        return 0;
}

int hook_result_errno(const struct hook_result *h)
{
        switch (h->status) {
        case HOOK_SUCCESS:
                return 0;
        case HOOK_REFUSED:
                return -EPERM;
        case HOOK_TIMED_OUT:
                return -ETIMEDOUT;
        case HOOK_EXEC_FAILED:
                return h->error < 0 ? h->error : -ENOEXEC;
        default:
                return -EPROTO;
        }
}

int supervise_run(const char *kind, const char *phase, char *const argv[], char **envp, int exec_fd,
                  unsigned timeout_ms, unsigned grace_ms, struct hook_result *res)
{
        _cleanup_close_ int out_r = -1, out_w = -1, err_r = -1, err_w = -1, null_fd = -1;
        _cleanup_(run_done) struct run run = {.kind = kind, .name = res->name, .phase = phase};
        struct spawn s = {.path = res->path, .exec_fd = exec_fd, .argv = argv, .envp = envp};
        struct leftovers lo;
        usec_t start = now_usec(CLOCK_MONOTONIC);
        struct rlimit rl;
        int r, e = 0;
        ssize_t n;
        pid_t pid;

        run.fields = strprintf("HOOK=%s\n", res->name);
        if (!run.fields)
                return -ENOMEM;
        log_struct(LOG_INFO, run.fields, "Running %s %s (%s)", kind, res->name, phase);

        r = make_pipe(&out_r, &out_w);
        if (r >= 0)
                r = make_pipe(&err_r, &err_w);
        if (r >= 0) {
                null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                r = null_fd = null_fd < 0 ? -errno : fd_move_above_stdio(null_fd);
        }
        if (r >= 0 && fcntl(out_r, F_SETFL, O_NONBLOCK) < 0)
                r = -errno;
        if (r < 0)
                return exec_failed(res, kind, phase, "started", r);
        s.null_fd = null_fd;
        s.out_fd = out_w;
        s.err_fd = err_w;
        s.max_fd = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536 ? (int)rl.rlim_cur
                                                                             : 65536;

        leftovers_begin(&lo);
        pid = fork();
        if (pid < 0) {
                leftovers_end(&lo);
                return exec_failed(res, kind, phase, "started", errno);
        }
        if (pid == 0)
                child_exec(&s);
        leftovers_set_leader(&lo, pid);

        /* Set the group from this side too, so that kill(-pid) works whoever runs first. */
        (void)setpgid(pid, pid);
        out_w = safe_close(out_w);
        err_w = safe_close(err_w);
        null_fd = safe_close(null_fd);

        /* The error pipe closes on a successful execve(), or carries its errno. */
        do
                n = read(err_r, &e, sizeof(e));
        while (n < 0 && errno == EINTR);
        if (n == (ssize_t)sizeof(e)) {
                (void)waitpid(pid, NULL, 0);
                exec_failed(res, kind, phase, "executed", e);
        } else {
                supervise(&run, &lo, pid, out_r, timeout_ms, grace_ms, res);
        }
        leftovers_end(&lo);
        res->duration_usec = now_usec(CLOCK_MONOTONIC) - start;
        res->tail = tail_take(&run);
        res->output_bytes = run.total;
        res->output_truncated = run.truncated;
        if (run.truncated)
                log_struct(LOG_NOTICE, run.fields, "%s: %zu bytes of output were discarded",
                           res->name, run.total - run.logged);
        if (res->status == HOOK_SUCCESS)
                log_struct(LOG_INFO, run.fields, "%s %s (%s) succeeded in %.1f s", kind, res->name,
                           phase, res->duration_usec / (double)USEC_PER_SEC);
        else
                log_struct(LOG_ERR, run.fields, "%s", strna(res->message));
        return 0;
}

void hook_result_done(struct hook_result *h)
{
        free(h->name);
        free(h->path);
        free(h->message);
        strv_free(h->tail);
        *h = (struct hook_result){};
}
