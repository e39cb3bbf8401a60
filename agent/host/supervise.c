/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Supervised children: start a program in a clean child (its own process group, default signal
 * dispositions, an empty mask, umask 022, stdin from /dev/null, stdout and stderr on one pipe,
 * no other descriptors, cwd "/"), log its output line by line, walk the kill ladder (SIGTERM to
 * its group at the deadline, SIGKILL after the grace period, the same for what it leaves behind),
 * and describe how it ended. The policy is described in hooks.h, its main user.
 */
#include "host/supervise.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host/leftovers.h"
#include "host/supervise_child.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/str.h"

/* How often we look again when there is nothing to wait on (no pidfd, leftover processes). */
#define SUPERVISE_TICK_MS 20

/* ------------------------------------------------------------------ output */

/* A child's output as it comes: logged line by line, its last lines kept. */
struct output {
        const char *name, *fields; /* borrowed from the opts */
        char line[SUPERVISE_LINE_MAX + 1];
        size_t line_len;
        size_t logged, total;
        bool truncated;
        char *tail[SUPERVISE_TAIL_LINES];
        size_t tail_next, tail_n;
};

static void output_done(struct output *o)
{
        for (size_t i = 0; i < SUPERVISE_TAIL_LINES; i++)
                free(o->tail[i]);
}

static void emit_line(struct output *o)
{
        size_t n = o->line_len;
        char *copy;

        if (n > 0 && o->line[n - 1] == '\r')
                n--;
        /* A NUL would cut the line short in the log; show it instead. */
        for (size_t i = 0; i < n; i++)
                if (o->line[i] == '\0')
                        o->line[i] = '?';
        o->line[n] = '\0';
        o->line_len = 0;
        log_struct(LOG_INFO, o->fields, "%s: %s", o->name, o->line);

        copy = strdup(o->line);
        if (!copy)
                return; /* the tail is a courtesy; the line is in the log */
        free(o->tail[o->tail_next]);
        o->tail[o->tail_next] = copy;
        o->tail_next = (o->tail_next + 1) % SUPERVISE_TAIL_LINES;
        if (o->tail_n < SUPERVISE_TAIL_LINES)
                o->tail_n++;
}

static void feed_output(struct output *o, const char *p, size_t n)
{
        size_t keep;

        o->total += n;
        keep = SUPERVISE_OUTPUT_MAX - o->logged < n ? SUPERVISE_OUTPUT_MAX - o->logged : n;
        if (keep < n && !o->truncated) {
                o->truncated = true;
                log_struct(LOG_NOTICE, o->fields,
                           "%s: output exceeds %u bytes, discarding the rest", o->name,
                           SUPERVISE_OUTPUT_MAX);
        }
        o->logged += keep;
        while (keep > 0) {
                const char *nl = memchr(p, '\n', keep);
                size_t chunk = nl ? (size_t)(nl - p) : keep;
                size_t room = SUPERVISE_LINE_MAX - o->line_len;

                if (chunk > room) {
                        /* Too long for one record: log what fits, go on with the rest. */
                        memcpy(o->line + o->line_len, p, room);
                        o->line_len += room;
                        emit_line(o);
                        p += room;
                        keep -= room;
                        continue;
                }
                memcpy(o->line + o->line_len, p, chunk);
                o->line_len += chunk;
                p += chunk;
                keep -= chunk;
                if (nl) {
                        emit_line(o);
                        p++;
                        keep--;
                }
        }
}

/* Read what is there; returns false at EOF or on a read error (the pipe is done then). */
static bool drain(struct output *o, int fd)
{
        char b[16384];

        for (;;) {
                ssize_t n = read(fd, b, sizeof(b));

                if (n > 0) {
                        feed_output(o, b, (size_t)n);
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                return n < 0 && errno == EAGAIN;
        }
}

static char **tail_take(struct output *o)
{
        char **v = calloc(o->tail_n + 1, sizeof(char *));
        size_t first = (o->tail_next + SUPERVISE_TAIL_LINES - o->tail_n) % SUPERVISE_TAIL_LINES;

        if (!v)
                return NULL;
        for (size_t i = 0; i < o->tail_n; i++)
                v[i] = TAKE_PTR(o->tail[(first + i) % SUPERVISE_TAIL_LINES]);
        return v;
}

/* ------------------------------------------------------------------ the kill ladder */

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

struct supervised {
        struct supervise_opts o;
        struct output out;
        int out_fd;   /* the read end of the output pipe */
        bool out_eof; /* read to its end (or to an error) */
        struct leftovers lo;
        bool lo_begun;
        usec_t start; /* CLOCK_MONOTONIC, as the deadlines */
        pid_t pid;    /* 0 when it did not start: end and error say why */
        enum supervise_end end;
        int error;

        /* The ladder: RUNNING until the deadline or the main process's exit with others left. */
        enum { RUNNING, TERMINATING, KILLED } state;
        usec_t deadline, kill_at;
        bool exited, timed_out, left_processes;
        int lost;     /* -errno once the main process was reaped by someone else */
        siginfo_t si; /* how the main process ended */
        char tbuf[32], gbuf[32];
};

/*
 * One step of the ladder at time now: SIGTERM to the group at the deadline, or when the main
 * process exited and left others behind; SIGKILL a grace period later; give up a grace period
 * after that. Returns true when the watch is over: the group is gone, or nothing more can be done.
 */
static bool ladder_step(struct supervised *s, usec_t now)
{
        usec_t grace = (usec_t)s->o.grace_ms * USEC_PER_MSEC;
        int r;

        if (!s->exited && s->state == RUNNING && now >= s->deadline) {
                s->timed_out = true;
                log_struct(LOG_WARNING, s->o.fields,
                           "%s timed out after %s, sending SIGTERM to its process group",
                           s->o.label, s->tbuf);
                (void)kill(-s->pid, SIGTERM);
                s->state = TERMINATING;
                s->kill_at = now + grace;
        }
        if (s->exited) {
                /*
                 * The main process is a zombie we have not reaped, so its pid, which is the
                 * group's id, cannot be reused: signalling the group is safe. The orphans we
                 * adopted get what the group got (once each).
                 */
                r = leftovers_sweep(&s->lo, s->state == RUNNING       ? 0
                                            : s->state == TERMINATING ? SIGTERM
                                                                      : SIGKILL);
                if (r == 0)
                        return true;
                if (r < 0) {
                        (void)kill(-s->pid, SIGKILL); /* cannot tell: make sure */
                        return true;
                }
                if (s->state == RUNNING) {
                        s->left_processes = true;
                        log_struct(LOG_WARNING, s->o.fields,
                                   "%s left processes behind, sending SIGTERM to them", s->o.label);
                        (void)kill(-s->pid, SIGTERM);
                        (void)leftovers_sweep(&s->lo, SIGTERM);
                        s->state = TERMINATING;
                        s->kill_at = now + grace;
                }
        }
        if (s->state == TERMINATING && now >= s->kill_at) {
                log_struct(LOG_WARNING, s->o.fields,
                           "%s still running %s after SIGTERM, sending SIGKILL to its processes",
                           s->o.label, s->gbuf);
                (void)kill(-s->pid, SIGKILL);
                if (s->exited)
                        (void)leftovers_sweep(&s->lo, SIGKILL);
                s->state = KILLED;
                s->kill_at = now + grace;
        } else if (s->state == KILLED && now >= s->kill_at) {
                /* Only uninterruptible sleep survives SIGKILL; we cannot do more. */
                log_struct(LOG_WARNING, s->o.fields,
                           "%s: processes survive SIGKILL for %s, still %s", s->o.label, s->gbuf,
                           s->exited ? "giving up on them" : "waiting for it");
                if (s->exited)
                        return true;
                s->kill_at = USEC_INFINITY;
        }
        return false;
}

/* How long poll() may sleep at time now: until the ladder's next step, in ticks when blind. */
static int ladder_wait_ms(const struct supervised *s, usec_t now, bool have_pidfd)
{
        usec_t wake = s->state == RUNNING && !s->exited ? s->deadline : s->kill_at;
        int t = wake == USEC_INFINITY ? -1
                                      : (int)((wake - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC);

        /* Without a pidfd, or once only leftovers remain, nothing wakes us: look again. */
        if ((s->exited || !have_pidfd) && (t < 0 || t > SUPERVISE_TICK_MS))
                t = SUPERVISE_TICK_MS;
        else if (t > 60000)
                t = 60000; /* just look again; keeps huge timeouts within an int */
        return t;
}

/* Watch the started child, its output and its group, until the ladder says it is over. */
static void watch(struct supervised *s)
{
        _cleanup_close_ int pidfd = pidfd_open_compat(s->pid);

        for (;;) {
                usec_t now = now_usec(CLOCK_MONOTONIC);
                struct pollfd p[2] = {{.fd = s->out_eof ? -1 : s->out_fd, .events = POLLIN},
                                      {.fd = s->exited ? -1 : pidfd, .events = POLLIN}};
                int r;

                if (ladder_step(s, now))
                        return;
                if (poll(p, 2, ladder_wait_ms(s, now, pidfd >= 0)) < 0 && errno != EINTR) {
                        log_error_errno(errno, "poll() on %s failed, killing it: %m", s->o.label);
                        (void)kill(-s->pid, SIGKILL);
                        return;
                }
                if (!s->out_eof && p[0].revents && !drain(&s->out, s->out_fd))
                        s->out_eof = true; /* EOF: poll() ignores negative descriptors */
                if (s->exited)
                        continue;
                s->si.si_pid = 0;
                r = waitid(P_PID, (id_t)s->pid, &s->si, WEXITED | WNOHANG | WNOWAIT);
                if (r == 0 && s->si.si_pid == s->pid) {
                        s->exited = true;
                } else if (r < 0 && errno != EINTR) {
                        /* ECHILD: someone else reaped it (a waitpid(-1) elsewhere). */
                        s->lost = -errno;
                        (void)kill(-s->pid, SIGKILL);
                        return;
                }
        }
}

/* ------------------------------------------------------------------ the end */

/* How the main process ended and what the ladder had to do, in supervise's terms. */
static void classify(const struct supervised *s, struct supervise_result *res)
{
        res->left_processes = s->left_processes;
        if (s->lost < 0) {
                res->end = SUPERVISE_LOST;
                res->error = s->lost;
        } else if (s->timed_out) {
                res->end = SUPERVISE_TIMED_OUT;
                res->signal = s->si.si_code == CLD_EXITED ? 0 : s->si.si_status;
                res->sigkilled = s->state == KILLED;
        } else if (s->si.si_code == CLD_EXITED) {
                res->end = SUPERVISE_EXITED;
                res->code = s->si.si_status;
        } else {
                res->end = SUPERVISE_SIGNALED;
                res->signal = s->si.si_status;
                res->core_dumped = s->si.si_code == CLD_DUMPED;
        }
}

/* The one-line message of an end, worded with the label; NULL for an exit with status 0. */
static char *describe(const struct supervised *s, const struct supervise_result *res)
{
        const char *label = s->o.label;
        int e = -res->error;

        switch (res->end) {
        case SUPERVISE_EXITED:
                return res->code == 0 ? NULL
                                      : strprintf("%s exited with status %d", label, res->code);
        case SUPERVISE_SIGNALED:
                return strprintf("%s was killed by signal SIG%s%s", label,
                                 strna(sigabbrev_np(res->signal)),
                                 res->core_dumped ? " (core dumped)" : "");
        case SUPERVISE_TIMED_OUT:
                if (res->sigkilled)
                        return strprintf("%s timed out after %s and was killed (SIGKILL after %s)",
                                         label, s->tbuf, s->gbuf);
                return strprintf("%s timed out after %s and was killed", label, s->tbuf);
        case SUPERVISE_LOST:
                return strprintf("%s: lost track of its process: %s", label, strerror(e));
        default:
                /* The file was there when it was vetted, so ENOENT from execve means the #!
                 * interpreter. */
                return strprintf("%s could not be %s: %s%s", label,
                                 res->end == SUPERVISE_NOT_STARTED ? "started" : "executed",
                                 strerror(e),
                                 e == ENOENT   ? " (missing interpreter?)"
                                 : e == ESTALE ? " (it was replaced after it was vetted)"
                                               : "");
        }
}

/* ------------------------------------------------------------------ start and finish */

static struct supervised *supervised_free(struct supervised *s)
{
        if (!s)
                return NULL;
        if (s->lo_begun)
                leftovers_end(&s->lo);
        output_done(&s->out);
        safe_close(s->out_fd);
        free(s);
        return NULL;
}

/* Fork the clean child and wait for its execve(); s->pid, or s->end and s->error when it failed. */
static int spawn(struct supervised *s)
{
        _cleanup_close_ int out_w = -1, err_r = -1, err_w = -1, null_fd = -1;
        struct supervise_child sp = {.path = s->o.path,
                                     .exec_fd = s->o.exec_fd,
                                     .argv = s->o.argv,
                                     .envp = s->o.envp,
                                     .pass_fd = s->o.pass_fd,
                                     .pass_as = SUPERVISE_PASS_FD};
        struct rlimit rl;
        int r, e = 0;
        ssize_t n;
        pid_t pid;

        r = supervise_pipe(&s->out_fd, &out_w);
        if (r >= 0)
                r = supervise_pipe(&err_r, &err_w);
        if (r >= 0) {
                null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                r = null_fd = null_fd < 0 ? -errno : fd_move_above_stdio(null_fd);
        }
        if (r >= 0 && fcntl(s->out_fd, F_SETFL, O_NONBLOCK) < 0)
                r = -errno;
        if (r < 0)
                return r;
        sp.null_fd = null_fd;
        sp.out_fd = out_w;
        sp.err_fd = err_w;
        sp.max_fd = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536 ? (int)rl.rlim_cur
                                                                              : 65536;

        leftovers_begin(&s->lo);
        s->lo_begun = true;
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0)
                supervise_child_exec(&sp);
        leftovers_set_leader(&s->lo, pid);

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
                s->end = SUPERVISE_NOT_EXECUTED;
                s->error = -abs(e);
                return 0;
        }
        s->pid = pid;
        return 0;
}

int supervise_start(const struct supervise_opts *opts, struct supervised **ret)
{
        struct supervised *s = calloc(1, sizeof(*s));
        int r;

        if (!s)
                return -ENOMEM;
        *s = (struct supervised){
                .o = *opts,
                .out = {.name = opts->name, .fields = opts->fields},
                .out_fd = -1,
                .start = now_usec(CLOCK_MONOTONIC),
                .kill_at = USEC_INFINITY,
        };
        format_ms(opts->timeout_ms, s->tbuf, sizeof(s->tbuf));
        format_ms(opts->grace_ms, s->gbuf, sizeof(s->gbuf));
        log_struct(LOG_INFO, opts->fields, "Running %s", opts->label);
        r = spawn(s);
        if (r < 0) {
                if (s->lo_begun)
                        leftovers_end(&s->lo);
                s->lo_begun = false;
                s->end = SUPERVISE_NOT_STARTED;
                s->error = -abs(r);
        }
        /* The deadline counts from the moment it runs. */
        s->deadline = now_usec(CLOCK_MONOTONIC) + (usec_t)opts->timeout_ms * USEC_PER_MSEC;
        *ret = s;
        return 0;
}

pid_t supervise_pid(const struct supervised *s)
{
        return s->pid;
}

void supervise_finish(struct supervised *s, struct supervise_result *ret)
{
        struct supervise_result res = {.end = s->end, .error = s->error};

        if (s->pid > 0) {
                watch(s);
                if (!s->out_eof)
                        (void)drain(&s->out, s->out_fd);
                if (s->out.line_len > 0)
                        emit_line(&s->out); /* the last line had no newline */
                while (s->lost == 0 && waitid(P_PID, (id_t)s->pid, &s->si, WEXITED) < 0 &&
                       errno == EINTR)
                        ;
                classify(s, &res);
        }
        if (s->lo_begun)
                leftovers_end(&s->lo);
        s->lo_begun = false;
        res.duration_usec = now_usec(CLOCK_MONOTONIC) - s->start;
        res.message = describe(s, &res);
        res.tail = tail_take(&s->out);
        res.output_bytes = s->out.total;
        res.output_truncated = s->out.truncated;
        if (s->out.truncated)
                log_struct(LOG_NOTICE, s->o.fields, "%s: %zu bytes of output were discarded",
                           s->o.name, s->out.total - s->out.logged);
        if (res.end == SUPERVISE_EXITED && res.code == 0)
                log_struct(LOG_INFO, s->o.fields, "%s succeeded in %.1f s", s->o.label,
                           res.duration_usec / (double)USEC_PER_SEC);
        else
                log_struct(LOG_ERR, s->o.fields, "%s", strna(res.message));
        supervised_free(s);
        *ret = res;
}

/* Whether the main process has exited, seen by waitid(WNOWAIT): it stays unreaped. */
bool supervise_exited(struct supervised *s)
{
        int r;

        if (s->pid <= 0 || s->exited || s->lost < 0)
                return true;
        s->si.si_pid = 0;
        r = waitid(P_PID, (id_t)s->pid, &s->si, WEXITED | WNOHANG | WNOWAIT);
        if (r == 0 && s->si.si_pid == s->pid)
                s->exited = true;
        else if (r < 0 && errno != EINTR)
                s->lost = -errno; /* ECHILD: reaped by someone else; supervise_finish() says so */
        return s->exited || s->lost < 0;
}

int supervise_wait_readable(struct supervised *s, int fd, usec_t deadline)
{
        _cleanup_close_ int pidfd = s->pid > 0 ? pidfd_open_compat(s->pid) : -1;

        for (;;) {
                usec_t now = now_usec(CLOCK_MONOTONIC);
                struct pollfd p[3] = {{.fd = fd, .events = POLLIN},
                                      {.fd = s->out_eof ? -1 : s->out_fd, .events = POLLIN},
                                      {.fd = pidfd, .events = POLLIN}};
                usec_t left;
                int t;

                if (supervise_exited(s))
                        return -ECHILD;
                if (now >= deadline)
                        return 0;
                left = (deadline - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC;
                t = left > 60000 ? 60000 : (int)left;
                if (pidfd < 0 && t > SUPERVISE_TICK_MS)
                        t = SUPERVISE_TICK_MS; /* nothing tells us of its exit: look again */
                if (poll(p, 3, t) < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (!s->out_eof && p[1].revents && !drain(&s->out, s->out_fd))
                        s->out_eof = true;
                if (p[0].revents)
                        return 1;
        }
}

void supervise_set_timeout(struct supervised *s, unsigned timeout_ms)
{
        s->deadline = now_usec(CLOCK_MONOTONIC) + (usec_t)timeout_ms * USEC_PER_MSEC;
        format_ms(timeout_ms, s->tbuf, sizeof(s->tbuf));
}

int supervise_run(const struct supervise_opts *opts, struct supervise_result *ret)
{
        struct supervised *s;
        int r;

        r = supervise_start(opts, &s);
        if (r < 0)
                return r;
        supervise_finish(s, ret);
        return 0;
}

void supervise_result_done(struct supervise_result *r)
{
        free(r->message);
        strv_free(r->tail);
        *r = (struct supervise_result){};
}
