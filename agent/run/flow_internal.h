/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the run's files share (flow.c: phases, hooks, resume; flow_create.c: the CreateImage
 * step; flow_thaw.c: thawing what a run left frozen): the run under way and the calls that record
 * its phases, persist it and fail it.
 */
#pragma once

#include <stdbool.h>

#include "core/state.h"
#include "util/macro.h"

struct config;
struct context;
struct hold_set;
struct hook_env;
struct hooks_opts;
struct flow_opts;
struct flow_result;

struct flow {
        struct context *ctx;
        const struct config *cfg;
        const struct flow_opts *opts;
        struct state state;
        struct run_state *run; /* == state.current while a run is under way */
        struct flow_result *result;
        int lock_fd;
};

/* Persist the state (not in a dry run); logs and returns -errno on failure. */
int flow_save(struct flow *f);
/* Enter a phase: record it and persist it before any of its work is done. */
int flow_enter(struct flow *f, enum run_phase p);
void flow_leave(struct flow *f, enum run_phase p);
/* The hooks' options and environment for phase, from the configuration and the run. */
void flow_hooks_setup(struct flow *f, const char *phase, struct hooks_opts *o,
                      struct hook_env *env);

/*
 * The held hooks (flow_hold.c, host/hold.h). flow_hold_start() starts them and waits for their
 * READY: 0 with *ret (maybe holding nothing), else the run's failure, with the holders released
 * and recorded. flow_hold_end() releases them (first thing after the thaw) and records how each
 * ended in the run; 0, or -EPROTO when one of them lost what it held, with the message in
 * *ret_message. flow_hold_notice_reboot() says that reboot mode runs none.
 */
int flow_hold_start(struct flow *f, struct hold_set **ret);
int flow_hold_end(struct flow *f, struct hold_set *s, char **ret_message);
void flow_hold_notice_reboot(struct flow *f);

/* The run failed: record the message and the phase, persist, report; returns r (or -EIO). */
int flow_fail(struct flow *f, int r, const char *fmt, ...) _printf_(3, 4);

/*
 * The CreateImage step (flow_create.c). No-reboot: freeze, one CreateImage round trip, thaw;
 * reboot: persist, CreateImage with the reboot. Both adopt the run's image after an unclear
 * answer and on a resume, and never send CreateImage twice. 0 when the run has its image (or,
 * reboot mode, result->reboot_pending), else the run's failure.
 */
int flow_create_frozen(struct flow *f);
int flow_create_rebooting(struct flow *f);

/*
 * Thaw what cur (the current run, may be NULL) left frozen in this boot (flow_thaw.c): a crash
 * the guard could not cover. Logs what it thawed.
 */
void flow_thaw_leftovers(const struct run_state *cur);
