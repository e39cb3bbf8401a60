/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Supervised children, for the hooks (hooks.h describes the policy: process group, deadline,
 * SIGTERM then SIGKILL to the group, leftover processes, output logged line by line under
 * HOOK=<name>, the last lines kept) and for helpers such as `cloud-init status --wait`.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "util/timeutil.h"

#define HOOK_LINE_MAX   3800u           /* bytes of one logged output line */
#define HOOK_OUTPUT_MAX (1024u * 1024u) /* bytes of output logged per hook */
#define HOOK_TAIL_LINES 20u             /* lines kept in struct hook_result */

enum hook_status {
        HOOK_SUCCESS,     /* exited with status 0 */
        HOOK_EXITED,      /* exited with a non-zero status: exit_status */
        HOOK_KILLED,      /* killed by a signal it did not get from us: signal */
        HOOK_TIMED_OUT,   /* ran past timeout_ms; signal is what finally ended it */
        HOOK_REFUSED,     /* not run: failed vetting (see struct hook_entry.reason) */
        HOOK_EXEC_FAILED, /* could not be started or executed (or, ECHILD, was reaped by
                           * someone else's waitpid(-1)): error (-errno) */
};

const char *hook_status_to_string(enum hook_status s);

struct hook_result {
        char *name; /* control characters C-escaped: it goes into messages and HOOK= */
        char *path; /* as executed */
        enum hook_status status;
        int exit_status; /* HOOK_EXITED */
        int signal;      /* HOOK_KILLED, HOOK_TIMED_OUT (0 when it exited by itself meanwhile) */
        int error;       /* HOOK_EXEC_FAILED: -errno */
        usec_t duration_usec;
        /* One line: "hook 10-cleanup (pre-image) exited with status 3". */
        char *message;
        /* Last HOOK_TAIL_LINES output lines, oldest first, NULL-terminated (maybe NULL if none). */
        char **tail;
        size_t output_bytes;   /* everything the hook wrote, discarded bytes included */
        bool output_truncated; /* more than HOOK_OUTPUT_MAX bytes: the rest was discarded */
        bool left_processes;   /* its group outlived the main process and was killed */
};

void hook_result_done(struct hook_result *h);
/* 0 for HOOK_SUCCESS, else -EPERM (refused), -ETIMEDOUT, the exec error, or -EPROTO. */
int hook_result_errno(const struct hook_result *h);

/*
 * Run argv with envp to the end under supervision, and classify the outcome into *res, whose name
 * and path the caller has set. exec_fd >= 0 (a vetted hook, hook_open_vetted()) is the file
 * executed: execveat() of the descriptor, or, for a #! script, execve() of res->path once it is
 * seen to name the same inode (else HOOK_EXEC_FAILED with -ESTALE); exec_fd -1 executes
 * res->path. kind ("hook", "helper") and phase only word the messages: "hook 10-x (pre-image)
 * exited with status 3". grace_ms: from SIGTERM to SIGKILL. Returns 0 with *res filled in (a
 * failure to start is HOOK_EXEC_FAILED), or -ENOMEM.
 */
int supervise_run(const char *kind, const char *phase, char *const argv[], char **envp, int exec_fd,
                  unsigned timeout_ms, unsigned grace_ms, struct hook_result *res);
