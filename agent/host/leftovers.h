/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What a supervised child (a hook, a helper) leaves behind when its main process exits: the other
 * members of its process group, and the processes that left the group on purpose (setsid, a
 * double fork) to outlive it. For the second kind the supervising process makes itself a child
 * subreaper (PR_SET_CHILD_SUBREAPER) while the child runs: an orphan anywhere in the child's tree
 * is then re-parented to us instead of to init, where it can be found (its parent is us, and it
 * is none of the children we had before) and killed, and where its pid cannot be reused before we
 * reap it.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define LEFTOVERS_TRACK_MAX 128u /* orphans remembered as already signalled */

struct leftovers {
        pid_t leader; /* the child's pid, which is its process group */
        pid_t *known; /* our children before the child was started (the thaw guard, ...) */
        size_t n_known;
        bool adopting;      /* we are a subreaper, and know which children were ours before */
        bool was_subreaper; /* restored by leftovers_end() */
        pid_t sent_pid[LEFTOVERS_TRACK_MAX];
        int sent_sig[LEFTOVERS_TRACK_MAX];
        size_t n_sent;
};

/*
 * Before the fork: remember our children and become a subreaper. When /proc cannot be read the
 * orphans are not adopted (l->adopting stays false) and only the process group is looked after.
 */
void leftovers_begin(struct leftovers *l);
void leftovers_set_leader(struct leftovers *l, pid_t leader);

/*
 * Once the leader has exited (and is still unreaped, which keeps its group id from being
 * reused): count the live members of its group (the leader aside) and the live orphans we
 * adopted, reaping the adopted ones that are dead. With sig != 0, each adopted orphan that has not
 * had sig yet gets it, and so does its process group when it leads one (the group is the caller's
 * to signal). Returns the number alive, or -errno when /proc cannot be read.
 */
int leftovers_sweep(struct leftovers *l, int sig);

/* Give the subreaper setting back as it was, and free what begin() took. */
void leftovers_end(struct leftovers *l);
