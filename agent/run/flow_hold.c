/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The held hooks in a run (see flow_internal.h; the holders themselves: host/hold.h): started
 * after the pre-freeze hooks, ready before the freeze, released right after the thaw, and what
 * they did recorded in the run.
 */
#include "run/flow_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "host/hold.h"
#include "host/hooks.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/str.h"

/* The holders' results into the run (what run --json and status --json report). */
static int record(struct flow *f, const struct hold_set *s)
{
        run_state_clear_holders(f->run);
        for (size_t i = 0; i < hold_count(s); i++) {
                const struct holder_result *h = hold_result(s, i);
                struct run_holder *rh;
                int r = run_state_add_holder(f->run, &rh);

                if (r < 0)
                        return r;
                rh->name = strdup(strna(h->name));
                rh->end = strdup(strna(holder_end_to_string(h->end)));
                rh->exit_status = h->exit_status;
                rh->signal = h->signal;
                rh->ready_ms = h->ready_ms;
                rh->held_ms = h->held_ms;
                rh->lost = h->lost;
                rh->message = h->message ? strdup(h->message) : NULL;
                for (char **v = h->values; v && *v; v++)
                        if (strv_push(&rh->values, *v) < 0)
                                return -ENOMEM;
                if (!rh->name || !rh->end || (h->message && !rh->message))
                        return -ENOMEM;
        }
        return 0;
}

int flow_hold_end(struct flow *f, struct hold_set *s, char **ret_message)
{
        int r;

        if (!s)
                return 0;
        hold_release(s);
        r = record(f, s);
        if (r < 0)
                log_error_errno(r, "Cannot record the held hooks' results: %m");
        *ret_message = hold_message(s);
        return *ret_message ? -EPROTO : 0;
}

int flow_hold_start(struct flow *f, struct hold_set **ret)
{
        _cleanup_(hold_freep) struct hold_set *s = NULL;
        _cleanup_free_ char *msg = NULL;
        struct hooks_opts o;
        struct hook_env env;
        int r;

        flow_hooks_setup(f, HOOK_PHASE_HOLD, &o, &env);
        r = hold_start(&o, &env, &s, &msg);
        if (r < 0)
                return flow_fail(f, r, "%s, nothing was frozen", strna(msg));
        if (hold_count(s) == 0) {
                *ret = NULL;
                return 0;
        }
        r = hold_wait_ready(s, f->cfg->hook_hold_ready_timeout_s * 1000);
        if (r < 0) {
                /* Release the others; the failed one's message says how it ended. */
                (void)flow_hold_end(f, s, &msg);
                return flow_fail(f, r, "%s; nothing was frozen",
                                 msg ? msg : "the held hooks failed");
        }
        log_notice("%zu held hook(s) ready", hold_count(s));
        *ret = TAKE_PTR(s);
        return 0;
}

void flow_hold_notice_reboot(struct flow *f)
{
        _cleanup_(hook_list_done) struct hook_list l = {};

        if (hooks_list(f->cfg->hooks_dir, HOOK_PHASE_HOLD, 0, &l) >= 0 && l.n_run + l.n_refused > 0)
                log_notice("%zu held hook(s) in %s are not run in reboot mode: EC2 shuts the "
                           "instance down for the image, which stops the applications cleanly",
                           l.n_run + l.n_refused, l.dir);
}
