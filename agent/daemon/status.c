/* SPDX-License-Identifier: Apache-2.0 */
/* STATUS= for the service manager: the run under way, or how the last one ended. */
#include "daemon/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>

#include "core/state.h"
#include "util/str.h"

void status_notify(const char *fmt, ...)
{
        char text[1024];
        va_list ap;

        va_start(ap, fmt);
        (void)vsnprintf(text, sizeof(text), fmt, ap);
        va_end(ap);
        for (char *p = text; *p; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f)
                        *p = ' ';
        sd_notifyf(0, "STATUS=%s", text);
}

void status_idle(const char *state_dir)
{
        struct state st = {};

        if (state_load(state_dir, &st) < 0) {
                status_notify("Idle; the run state cannot be read");
                return;
        }
        if (st.current) {
                status_notify("Idle; run %s is unfinished (phase %s)", st.current->run_id,
                              run_phase_to_string(st.current->phase));
        } else if (st.n_history > 0) {
                const struct history_entry *h = &st.history[0];
                if (streq_ptr(h->result, "success"))
                        status_notify("Idle; last run %s succeeded: %s", h->run_id,
                                      strna(h->image_id));
                else if (streq_ptr(h->result, "inherited"))
                        status_notify("Idle; run %s of %s came with the image, not resumed",
                                      h->run_id, strna(h->instance_id));
                else
                        status_notify("Idle; last run %s failed: %s", h->run_id, strna(h->error));
        } else {
                status_notify("Idle; no run yet");
        }
        state_done(&st);
}

void status_run(enum worker_job job, const struct progress *p, usec_t phase_since)
{
        usec_t t = (now_usec(CLOCK_MONOTONIC) - phase_since) / USEC_PER_SEC;

        if (!p) {
                status_notify("%s (%s)",
                              job == WORKER_THAW ? "Thawing what an interrupted run left frozen"
                                                 : "Starting a run",
                              worker_job_to_string(job));
                return;
        }
        switch (p->phase) {
        case PHASE_PREFLIGHT:
                status_notify("Run %s: pre-flight checks", p->run_id);
                break;
        case PHASE_PRE_IMAGE:
        case PHASE_PRE_FREEZE:
        case PHASE_POST_THAW:
        case PHASE_POST_IMAGE:
                status_notify("Run %s: running %s hooks", p->run_id, run_phase_to_string(p->phase));
                break;
        case PHASE_FREEZING:
        case PHASE_CREATING:
                status_notify("Freezing %u filesystem%s for CreateImage", p->n_mounts,
                              p->n_mounts == 1 ? "" : "s");
                break;
        case PHASE_REBOOTING:
                status_notify("Creating the image with a reboot (run %s)", p->run_id);
                break;
        case PHASE_WAITING:
                status_notify("Waiting for %s (%llum%02llus)", p->image_id,
                              (unsigned long long)t / 60, (unsigned long long)t % 60);
                break;
        default:
                status_notify("Run %s: %s", p->run_id, run_phase_to_string(p->phase));
                break;
        }
}
