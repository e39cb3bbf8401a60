/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Supervised children: a program started in a clean child (its own process group, default signal
 * dispositions, an empty mask, umask 022, stdin from /dev/null, stdout and stderr on one pipe, no
 * other descriptors, cwd "/"), its output logged line by line with the caller's journald fields,
 * its group killed at the deadline (SIGTERM, then SIGKILL after a grace period), processes it
 * leaves behind killed too (leftovers.h), and its end described in struct supervise_result. The
 * hooks (hooks.h, which states the policy) and helpers such as `cloud-init status --wait` run
 * this way; hooks.c maps the end to a hook's result.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "util/timeutil.h"

#define SUPERVISE_LINE_MAX   3800u           /* bytes of one logged output line */
#define SUPERVISE_OUTPUT_MAX (1024u * 1024u) /* bytes of output logged per child */
#define SUPERVISE_TAIL_LINES 20u             /* lines kept in struct supervise_result */
#define SUPERVISE_PASS_FD    3               /* where the child finds opts.pass_fd */

/* How a supervised child ended. */
enum supervise_end {
        SUPERVISE_EXITED,       /* its main process exited by itself: code (0 is success) */
        SUPERVISE_SIGNALED,     /* killed by a signal it did not get from us: signal */
        SUPERVISE_TIMED_OUT,    /* ran past timeout_ms; signal is what finally ended it */
        SUPERVISE_NOT_STARTED,  /* could not be started (pipes, fork): error */
        SUPERVISE_NOT_EXECUTED, /* execve() refused it: error (-ESTALE: a vetted file swapped) */
        SUPERVISE_LOST,         /* reaped by someone else (a waitpid(-1) elsewhere): error */
};

struct supervise_opts {
        const char *label;  /* words the log lines: "hook 10-x (pre-image)" */
        const char *name;   /* prefixes each output line: "10-x: <line>" */
        const char *fields; /* journald fields of every line logged: "HOOK=10-x\n" */
        const char *path;   /* the file to execute, as named in argv[0] */
        char *const *argv;
        char **envp;
        /*
         * >= 0: the file to execute, opened (and vetted) earlier: execveat() of the descriptor,
         * or, for a #! script, execve() of path once path is seen to name the same inode (else
         * SUPERVISE_NOT_EXECUTED with -ESTALE). -1: execve() of path.
         */
        int exec_fd;
        /*
         * > 2: a descriptor the child gets as SUPERVISE_PASS_FD (a held hook's ready socket,
         * hold.h); the caller tells the child its number. 0: none.
         */
        int pass_fd;
        unsigned timeout_ms; /* from the start to SIGTERM */
        unsigned grace_ms;   /* from SIGTERM to SIGKILL, and from SIGKILL to giving up */
};

struct supervise_result {
        enum supervise_end end;
        int code;            /* SUPERVISE_EXITED */
        int signal;          /* SUPERVISE_SIGNALED; SUPERVISE_TIMED_OUT (0: it exited meanwhile) */
        bool core_dumped;    /* SUPERVISE_SIGNALED */
        bool sigkilled;      /* SUPERVISE_TIMED_OUT: SIGTERM was not enough */
        int error;           /* SUPERVISE_NOT_STARTED, _NOT_EXECUTED, _LOST: -errno */
        bool left_processes; /* its group outlived the main process and was killed */
        usec_t duration_usec;
        /* One line, NULL after an exit with status 0: "hook 10-x (pre-image) exited with status 3".
         */
        char *message;
        /* The last SUPERVISE_TAIL_LINES output lines, oldest first, NULL-terminated (or NULL). */
        char **tail;
        size_t output_bytes;   /* everything it wrote, discarded bytes included */
        bool output_truncated; /* more than SUPERVISE_OUTPUT_MAX bytes: the rest was discarded */
};

void supervise_result_done(struct supervise_result *r);

struct supervised;

/*
 * Start the child of opts; the deadline counts from here. Returns 0 with *ret, or -ENOMEM. A child
 * that could not be started still gets a handle, and supervise_finish() says what went wrong. The
 * strings of opts are borrowed until supervise_finish().
 *
 * Until supervise_finish() nobody reads the child's output (a child that writes more than the
 * pipe holds waits), and, since we are a subreaper for its orphans (leftovers.h), every child
 * this process starts meanwhile would be taken for one of its leftovers: start none, or reap it
 * before supervise_finish() (the thaw guard of a freeze while held hooks run), or finish the
 * children last started first (each knows those started before it, and leftovers_end() gives the
 * subreaper setting back in that order: hold.c).
 */
int supervise_start(const struct supervise_opts *opts, struct supervised **ret);

/* The child's pid, which is its process group; 0 when it could not be started. */
pid_t supervise_pid(const struct supervised *s);

/*
 * Watch the child to its end, its output logged and its group killed at the deadline, reap it,
 * describe the end in *ret (logged too: an error unless it exited with status 0), and free s.
 */
void supervise_finish(struct supervised *s, struct supervise_result *ret);

/*
 * For a child that keeps running while the caller goes on (a held hook, hold.h): wait until fd
 * (>= 0; -1: none) is readable (1), the main process has exited (-ECHILD; it is not reaped) or
 * deadline (CLOCK_MONOTONIC) passes (0), logging the child's output meanwhile. No kill ladder runs
 * here: the child's own deadline is only walked by supervise_finish(). -errno when poll() fails.
 */
int supervise_wait_readable(struct supervised *s, int fd, usec_t deadline);

/*
 * Whether the main process has exited (or cannot be watched any more), without reaping it,
 * reading its output or logging: safe while filesystems are frozen.
 */
bool supervise_exited(struct supervised *s);

/* Move the deadline to timeout_ms from now (0: now); supervise_finish() walks the ladder from it.
 */
void supervise_set_timeout(struct supervised *s, unsigned timeout_ms);

/* supervise_start() and supervise_finish(): 0 with *ret filled in, or -ENOMEM. */
int supervise_run(const struct supervise_opts *opts, struct supervise_result *ret);
