/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The thaw guard: a child process, started before the first freeze, that thaws on its own when
 * the freeze outlives its timeout or the main process dies (even by SIGKILL). Only freeze.c uses
 * it. The thaw itself is passed in (guard_thaw_fn), so that freeze.c stays the only file that
 * issues FIFREEZE or FITHAW.
 *
 * Typical use, from freeze.c:
 *
 *      r = freeze_guard_start(&g, fds, n, timeout_ms, thaw_fds);
 *      ... lock g.shared->lock, check state is GUARD_ARMED, count in n_frozen, freeze, unlock ...
 *      r = freeze_guard_poll(&g);            // when g.fd fires: -ETIMEDOUT or -ECHILD
 *      ... thaw ...
 *      freeze_guard_reap(&g);                // disarm, reap, unmap
 */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/types.h>

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

/*
 * Thaw fds[n-1] down to fds[0], ignoring errors. Runs in the guard after fork(), so it must be
 * async-signal-safe: no malloc, no logging, no disk.
 */
typedef void (*guard_thaw_fn)(const int *fds, size_t n);

/* The parent's handle on a guard; {.fd = -1} when there is none. */
struct freeze_guard {
        pid_t pid;                   /* 0 when not running */
        int fd;                      /* our end of the socket, -1 when none */
        struct guard_shared *shared; /* NULL when none */
};

/*
 * Start a guard over the n mount handles fds (open, above stdio (fd_move_above_stdio()), kept open
 * by the caller until freeze_guard_reap()), armed for timeout_ms, that calls thaw on
 * fds[0..n_frozen) when it fires. Returns once the guard is ready, 0, or a logged -errno (nothing
 * is left running then).
 */
int freeze_guard_start(struct freeze_guard *g, const int *fds, size_t n, unsigned timeout_ms,
                       guard_thaw_fn thaw);

/* Non-blocking look at the guard: 0 while it is armed, -ETIMEDOUT or -ECHILD once it is not. */
int freeze_guard_poll(struct freeze_guard *g);

/* Disarm the guard (we have thawed, or never froze) and reap it. Safe on a guard never started. */
void freeze_guard_reap(struct freeze_guard *g);
