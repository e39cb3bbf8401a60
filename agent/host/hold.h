/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Held hooks: the executables of <hooks_dir>/hold.d, which keep something quiet across the freeze
 * (a database session holding a lock) and so must keep running after they are ready, where an
 * ordinary hook must have exited. Vetted, started and supervised as the other hooks (hooks.h),
 * all at once, each with one more variable, EC2_IMAGED_READY_FD=N: its end of a Unix stream
 * socket pair, the one descriptor it inherits besides stdio.
 *
 * The protocol (the README's, which the shipped database hooks follow): the holder writes
 * optional KEY=VALUE lines (hold_parse_line()), then READY, within the ready timeout; it then
 * holds, reading the same descriptor, until end of file: the release, after which it undoes what
 * it holds and exits 0. The release is our closing of our end; whoever does not exit within the
 * grace period gets SIGTERM on its group, and SIGKILL a grace period later (supervise.h).
 *
 * Nothing here runs while filesystems are frozen but hold_lost(), which neither logs nor reads
 * a holder's output: the holders' output waits in their pipes until the release.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "host/hooks.h"
#include "util/macro.h"

#define HOLD_READY_FD_ENV "EC2_IMAGED_READY_FD"
#define HOLD_VALUES_MAX   16u  /* KEY=VALUE lines one holder may write */
#define HOLD_KEY_MAX      64u  /* bytes of a KEY: letters, digits, '_' */
#define HOLD_VALUE_MAX    256u /* bytes of a VALUE: printable ASCII */

/* How a holder ended; "released" is the one good end. */
enum holder_end {
        HOLDER_RELEASED,    /* held, then exited with status 0 after the release */
        HOLDER_EXITED,      /* exited by itself otherwise: exit_status */
        HOLDER_KILLED,      /* killed by a signal it did not get from us: signal */
        HOLDER_TIMED_OUT,   /* killed by us: no READY in time, or no exit after the release */
        HOLDER_REFUSED,     /* failed vetting right before the start */
        HOLDER_EXEC_FAILED, /* could not be started or executed: error */
        _HOLDER_END_MAX,
};

const char *holder_end_to_string(enum holder_end e);
int holder_end_from_string(const char *s);

struct holder_result {
        char *name; /* control characters escaped, as a hook's */
        enum holder_end end;
        int exit_status;
        int signal;
        long ready_ms; /* from its start to READY; -1: never ready */
        long held_ms;  /* from READY to the release; -1: never held */
        bool lost;     /* ended while it held, before the release: what it held was lost */
        char **values; /* "KEY=VALUE" lines it wrote before READY, NULL-terminated (or NULL) */
        char *message; /* NULL for a holder released with exit status 0 */
};

void holder_result_done(struct holder_result *h);

/*
 * A line a holder wrote before READY, without its newline: 1 for "READY", 0 for a valid
 * KEY=VALUE, -EBADMSG for anything else.
 */
int hold_parse_line(const char *line, size_t len);

struct hold_set;

/*
 * List and vet hold.d and start every holder. Returns 0 with *ret (no holders: an empty set), or
 * -errno with *ret_message naming the refused hook or directory (nothing is left running then).
 * o->timeout_ms is not used: a holder runs until its release.
 */
int hold_start(const struct hooks_opts *o, const struct hook_env *env, struct hold_set **ret,
               char **ret_message);

size_t hold_count(const struct hold_set *s);

/*
 * Wait until every holder said READY, each within ready_timeout_ms of its start. 0, or -ETIMEDOUT
 * (one missed it), -EPROTO (one ended, closed its descriptor or wrote a bad line) or -errno; then
 * hold_release() and hold_message() say which and how it ended.
 */
int hold_wait_ready(struct hold_set *s, unsigned ready_timeout_ms);

/*
 * The name of a holder that ended after its READY, or NULL when all still run. No log line, no
 * read of its output, no disk access: safe while frozen.
 */
const char *hold_lost(struct hold_set *s);

/*
 * Release every holder (close our ends), then watch each to its end: SIGTERM a grace period
 * after the release, SIGKILL a grace period after that; holders that were not ready get SIGTERM
 * at once. Logs how each ended. Does nothing the second time.
 */
void hold_release(struct hold_set *s);

/* After hold_release(): the result of the i-th holder (start order, i < hold_count()). */
const struct holder_result *hold_result(const struct hold_set *s, size_t i);

/*
 * After hold_release(): one line for the first holder that failed the run (missed its READY,
 * ended before or while it held), naming it and its end; NULL when none did.
 */
char *hold_message(const struct hold_set *s);

/* Releases first when that has not been done. Accepts NULL. */
struct hold_set *hold_free(struct hold_set *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct hold_set *, hold_free);
