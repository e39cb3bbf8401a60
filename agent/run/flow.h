/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The imaging run as a state machine: pre-image hooks; then no-reboot (pre-freeze hooks, freeze,
 * CreateImage, thaw, post-thaw hooks) or reboot (persist, CreateImage with reboot, resume after
 * the boot); then wait for the image, tag its snapshots, post-image hooks. Every phase is saved
 * before it starts, so that a crash or a reboot resumes where the run stopped, and the image name
 * is saved before CreateImage and looked up before any retry, so that one run makes one image.
 */
#pragma once

#include <stdbool.h>

#include "core/state.h"

struct context;

enum flow_action {
        FLOW_RUN,    /* start a new run; refused while an unfinished one exists */
        FLOW_RESUME, /* continue the unfinished run; nothing to do when there is none */
};

struct flow_opts {
        enum flow_action action;
        enum run_mode mode; /* FLOW_RUN */
        bool dry_run;
        /*
         * Optional: called on every phase change (after the phase is saved, before its work) and
         * when the run ends, e.g. to report progress to a supervising daemon. It must not block
         * and must not write to disk: the next phase may be the freeze.
         */
        void (*on_phase)(const struct run_state *run, void *userdata);
        void *on_phase_userdata;
};

struct flow_result {
        struct run_state *run; /* the run as it ended (or stands, for a pending reboot) */
        char **dry_run_report; /* dry run: what would happen, one line each */
        bool reboot_pending;   /* reboot mode: CreateImage sent, EC2 is about to stop us */
        bool nothing_to_resume;
        char *inherited_run_id; /* another instance's run found in the state and filed away */
};

/*
 * Errors: -EBUSY another run holds the lock; -EEXIST an unfinished run must be resumed first
 * (FLOW_RUN); otherwise the failure of the run, which is also recorded in result->run->error.
 * The result is filled whenever a run was started or resumed, also on failure.
 */
int flow_execute(struct context *ctx, const struct flow_opts *o, struct flow_result *ret);
void flow_result_done(struct flow_result *r);

/*
 * Thaw what a run of ours left frozen: the mounts the run state recorded before its freeze, when
 * the run stopped in the frozen window (phase freezing or creating). A freeze of anything else
 * (a backup tool's) is left alone. With all (by hand: `thaw --all`), also every mount that
 * [freeze] mounts selects, whoever froze it. Log lines are held until everything has been tried.
 * Returns how many were thawed and their mount points in *ret_thawed, or an error when nothing
 * could be thawed.
 */
int flow_thaw(struct context *ctx, bool all, char ***ret_thawed);
