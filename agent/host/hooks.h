/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Hooks: find, vet, spawn, time out, capture and classify the operator's hook executables.
 *
 * Which entries of <hooks_dir>/<phase>.d run, are skipped or are refused, and in which order:
 * hooks_list.h, which this header includes. Each hook is vetted again right before it runs, and
 * the descriptor that vetting opened is what is executed (supervise.h, which runs it and says how
 * it ended; struct hook_result is that end in a hook's terms).
 *
 * Each hook runs with: its own process group, an empty signal mask and default dispositions,
 * stdin from /dev/null, stdout and stderr on one pipe that we read, no other file descriptors,
 * working directory "/", umask 022 (not the service's 0077: what a hook installs must be as
 * readable as if an administrator had installed it), argv = { path }, and only this environment:
 *   PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin  LANG=C.UTF-8
 *   EC2_IMAGED_PHASE  EC2_IMAGED_RUN_ID  INSTANCE_ID  REGION  IMAGE_NAME  EC2_IMAGED_MODE
 *   IMAGE_ID (only when known)  EC2_IMAGED_DRY_RUN=1 (only for dry runs)
 *   EC2_IMAGED_READY_FD=3 (only held hooks, hold.h; descriptor 3 is their one more descriptor)
 * (a variable whose value is NULL is left out). Nothing else is inherited, AWS_* least of all.
 *
 * Process group policy. When the timeout passes, SIGTERM goes to the whole group; if the main
 * process or anything else in the group is still alive kill_grace_ms later, SIGKILL goes to the
 * group. A hook must not leave processes behind either: when its main process exits and other
 * members of its group are still alive (a forgotten `daemon &`), they get the same treatment,
 * SIGTERM then SIGKILL after the grace period, with a warning; the hook's own result stands.
 * We are about to freeze filesystems or snapshot disks, and a stray writer would be worse than a
 * killed one. The main process is reaped only after the group is empty, so the group id cannot
 * be reused by an unrelated process while we signal it. Processes that leave the group on
 * purpose (setsid, setpgid, a double fork) do not escape: while a hook runs, we are a child
 * subreaper, so every orphan of its tree becomes our child, and those get the same SIGTERM and
 * SIGKILL (and their groups, when they lead one), and are reaped (leftovers.h).
 *
 * Output is logged line by line at LOG_INFO as "<name>: <line>" with the journald field
 * HOOK=<name>. Lines longer than SUPERVISE_LINE_MAX are split (the logger formats a record
 * into 4 KiB, name included, so a chunk must leave room for it); after SUPERVISE_OUTPUT_MAX bytes
 * the rest is read and discarded, with a note. The last SUPERVISE_TAIL_LINES lines are kept in the
 * result.
 *
 * The functions here block until the phase is done; they do not touch signal handlers or any
 * other process-wide state.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "host/hooks_list.h"
#include "host/supervise.h"
#include "util/timeutil.h"

#define HOOKS_DEFAULT_TIMEOUT_MS    (5u * 60u * 1000u)
#define HOOKS_DEFAULT_KILL_GRACE_MS (10u * 1000u)

#define HOOK_PATH_ENV "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

enum hooks_mode {
        HOOKS_MODE_NO_REBOOT, /* EC2_IMAGED_MODE=no-reboot */
        HOOKS_MODE_REBOOT,    /* EC2_IMAGED_MODE=reboot */
};

/* What hooks are told about the run. Strings are borrowed; NULL or "" leaves a variable out. */
struct hook_env {
        const char *run_id;
        const char *instance_id;
        const char *region;
        const char *image_name;
        const char *image_id;    /* known from CreateImage on; NULL before */
        const char *config_path; /* the configuration file the run read; EC2_IMAGED_CONFIG when
                                  * absolute, so the shipped hooks read the same file */
        enum hooks_mode mode;
        bool dry_run;
};

/* A hook's environment (above) for phase: a NULL-terminated vector, or NULL when out of memory. */
char **hooks_build_env(const char *phase, const struct hook_env *env);

struct hooks_opts {
        const char *hooks_dir;  /* NULL: HOOKS_DEFAULT_DIR */
        uid_t required_uid;     /* owner required of hooks and their directories: 0 (root) */
        unsigned timeout_ms;    /* per hook; 0: HOOKS_DEFAULT_TIMEOUT_MS */
        unsigned kill_grace_ms; /* SIGTERM to SIGKILL; 0: HOOKS_DEFAULT_KILL_GRACE_MS */
        bool continue_on_error; /* run the rest after a failure (the phase still fails) */
};

/* ---- running ---- */

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
        /* Last SUPERVISE_TAIL_LINES output lines, oldest first, NULL-terminated (maybe NULL). */
        char **tail;
        size_t output_bytes;   /* everything the hook wrote, discarded bytes included */
        bool output_truncated; /* more than SUPERVISE_OUTPUT_MAX bytes: the rest was discarded */
        bool left_processes;   /* its group outlived the main process and was killed */
};

void hook_result_done(struct hook_result *h);
/* 0 for HOOK_SUCCESS, else -EPERM (refused), -ETIMEDOUT, the exec error, or -EPROTO. */
int hook_result_errno(const struct hook_result *h);

/*
 * Run one hook of phase under supervision (supervise.h) and fill *res in with how it ended; the
 * caller has set res->name and res->path. exec_fd is the vetted file (hook_open_vetted()), or -1
 * to execute res->path. Returns 0 with *res filled in (a failure to start is HOOK_EXEC_FAILED),
 * or -ENOMEM.
 */
int hook_run(const char *phase, char *const argv[], char **envp, int exec_fd, unsigned timeout_ms,
             unsigned grace_ms, struct hook_result *res);

struct hooks_phase_result {
        char *phase;
        char *dir;
        struct hook_result *hooks; /* the hooks that ran or were refused, in order */
        size_t n_hooks;
        size_t n_failed;
        /* NULL when the phase passed; else one line naming every failure (or the directory). */
        char *message;
};

/*
 * Run the hooks of one phase. Unless continue_on_error, a refusal fails the phase before any
 * hook runs (the operator's setup is broken; better not to run half of it), and the phase stops
 * at the first failed hook. With continue_on_error every runnable hook runs and the failures are
 * recorded; the phase still fails, and the caller decides whether that is fatal.
 *
 * Returns 0 when every hook succeeded (or there were none). Otherwise, for the first failure:
 * -EPERM (refused, also for a refused directory), -ETIMEDOUT (timed out), -EPROTO (non-zero exit
 * or killed by a signal), the exec error (could not be executed), or -errno (directory unreadable,
 * out of memory). Unlike most out-parameters, *ret is filled in on failure as well, because it
 * is the explanation of the failure; release it with hooks_phase_result_done() in every case.
 * Each hook's outcome is logged here with HOOK=; the phase verdict is left to the caller.
 */
int hooks_run_phase(const struct hooks_opts *opts, const char *phase, const struct hook_env *env,
                    struct hooks_phase_result *ret);
void hooks_phase_result_done(struct hooks_phase_result *r);

/*
 * Run a helper program that is not a hook (no vetting: argv[0] is an absolute path we chose),
 * with a hook's treatment: its own process group, stdin from /dev/null, output logged under
 * HOOK=<name>, only PATH and LANG in its environment, SIGTERM then SIGKILL to its group after
 * timeout_ms. purpose words its messages: "helper cloud-init (first-boot wait) exited with
 * status 1". Returns 0 when it exited with status 0, else as a hook's failure (-ETIMEDOUT,
 * -EPROTO, the exec error); *ret is filled in either way, release it with hook_result_done().
 */
int hooks_run_helper(const char *name, const char *purpose, char *const argv[], unsigned timeout_ms,
                     struct hook_result *ret);

/*
 * Dry run: what hooks_run_phase would do, without running anything. *ret_text gets one line
 * per entry ("pre-image: 10-stop-db would run", "pre-image: 20-x REFUSED: /etc/.../20-x is
 * world-writable (mode 0777)", "pre-image: 10-a.dpkg-old skipped: package manager leftover")
 * or one line saying there are no hooks. Returns the number of refusals (>= 0; a refused
 * directory counts as one, and means the phase would fail) or -errno as hooks_list().
 */
int hooks_dry_run_phase(const struct hooks_opts *opts, const char *phase, char **ret_text);
