/* SPDX-License-Identifier: Apache-2.0 */
/* Thawing what a run of ours left frozen: when a run starts, and by hand (`ec2-imaged thaw`). */
#include "run/flow.h"
#include "run/flow_internal.h"

#include <errno.h>
#include <stdlib.h>

#include "core/context.h"
#include "core/state.h"
#include "host/freeze.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/str.h"

/*
 * A run left frozen by a crash the guard could not cover (e.g. SIGKILL of the whole service), in
 * this boot: after a reboot nothing is frozen, and a freeze recorded by another boot (the state in
 * an image) is none of ours to undo.
 */
void flow_thaw_leftovers(const struct run_state *cur)
{
        char **thawed = NULL;
        int r;

        if (!run_state_frozen_in_this_boot(cur))
                return;
        r = freeze_thaw_all((const char *const *)cur->frozen_mounts, NULL, &thawed);
        if (r > 0)
                log_warning("Thawed %d filesystem(s) left frozen by an interrupted run", r);
        strv_free(thawed);
}

/* Thaw CONFIGURED (freeze_thaw_all()), adding what was thawed to *thawed and *n. */
static int thaw_list(char *const *configured, char ***thawed, int *n)
{
        char **more = NULL;
        int r;

        r = freeze_thaw_all((const char *const *)configured, NULL, &more);
        if (r > 0)
                *n += r;
        for (char **m = more; m && *m; m++)
                if (strv_push(thawed, *m) < 0)
                        r = -ENOMEM;
        strv_free(more);
        return r;
}

int flow_thaw(struct context *ctx, bool all, char ***ret_thawed)
{
        struct state st = {};
        char **thawed = calloc(1, sizeof(char *));
        bool was_held = log_is_held();
        int r, first = 0, n = 0;

        if (!thawed)
                return log_error_errno(ENOMEM, "Out of memory");
        /* Nothing is logged before everything is thawed: the log may wait on a frozen mount. */
        log_hold(true);
        /*
         * Ours is what the run state recorded before its freeze, while the run stands in the
         * frozen window of this boot (a reboot thaws everything, and the state an image carries is
         * another instance's). The state is never written while frozen, so this list is the one
         * the freeze used. A freeze made by anything else (a backup tool's) is not ours to undo.
         */
        r = state_load(ctx->config->state_dir, &st);
        if (r < 0)
                first = log_error_errno(r, "%s/state.json: cannot tell what a run froze: %m",
                                        ctx->config->state_dir);
        else if (run_state_frozen_in_this_boot(st.current) && st.current->frozen_mounts) {
                r = thaw_list(st.current->frozen_mounts, &thawed, &n);
                if (r < 0)
                        first = r;
        }
        state_done(&st);
        /* By hand: whatever [freeze] mounts selects, whoever froze it. */
        if (all) {
                r = thaw_list(ctx->config->freeze_mounts, &thawed, &n);
                if (r < 0 && first == 0)
                        first = r;
        }
        if (!was_held)
                log_hold(false);
        if (first < 0 && n == 0) {
                strv_free(thawed);
                return first;
        }
        *ret_thawed = thawed;
        return n;
}
