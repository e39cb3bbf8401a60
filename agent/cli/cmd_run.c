/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The run's commands. `run` images this instance now, `resume` continues an unfinished run,
 * `first-boot` runs when the user-data asks for it (the daemon's first worker); each prints the
 * run as it ended. `status` prints the state file's view of the run under way or the last one,
 * `thaw` thaws what an interrupted run left frozen.
 */
#include "cli/cmd_run.h"

#include <errno.h>

#include "cli/output.h"
#include "core/config.h"
#include "core/context.h"
#include "core/state.h"
#include "daemon/control.h"
#include "run/bootcheck_report.h"
#include "run/firstboot.h"
#include "run/flow.h"
#include "util/log.h"
#include "util/str.h"

/* The exit code of a run the flow started, resumed or refused. */
static int run_exit_code(int r, const struct flow_result *fr)
{
        if (fr->nothing_to_resume)
                return EXIT_OK;
        /*
         * Only a refusal before any run started means "busy" or "unfinished": a run that failed
         * with EBUSY (a filesystem already frozen) or EEXIST (an image of that name) failed.
         */
        if (r == -EBUSY && !fr->run)
                return EXIT_BUSY;
        if (r == -EEXIST && !fr->run)
                return EXIT_UNFINISHED;
        return r < 0 ? EXIT_FAILED : EXIT_OK;
}

/* Print what the flow did (a run, or that there was none to resume) and return the exit code. */
static int flow_exit(const struct cli *c, int r, const struct flow_result *fr)
{
        struct result res;

        if (fr->nothing_to_resume) {
                result_new(&res, VIEW_NO_RESUME);
                result_add_bool(&res, res.tree, "resumed", false);
                if (fr->inherited_run_id)
                        result_add_str(&res, res.tree, "inherited", fr->inherited_run_id);
        } else if (fr->run) {
                result_take(&res, VIEW_RUN, run_state_to_json(fr->run));
                if (fr->dry_run_report)
                        result_add_strv(&res, res.tree, "dry_run_report", fr->dry_run_report);
        } else {
                return run_exit_code(r, fr);
        }
        return output_finish(&res, c->json, run_exit_code(r, fr));
}

/* Under the daemon, each phase change is reported on the socket it handed us. */
static void report_phase(const struct run_state *run, void *userdata)
{
        progress_send(*(int *)userdata, run);
}

/* Run or resume (fo->action), the result printed; the identity is loaded. */
static int execute(const struct cli *c, struct flow_opts *fo)
{
        struct flow_result fr = {};
        int r, progress_fd = progress_fd_from_env();

        if (progress_fd >= 0) {
                fo->on_phase = report_phase;
                fo->on_phase_userdata = &progress_fd;
        }
        r = flow_execute(c->ctx, fo, &fr);
        r = flow_exit(c, r, &fr);
        flow_result_done(&fr);
        return r;
}

static int execute_run(const struct cli *c, enum run_mode mode)
{
        struct flow_opts fo = {.action = FLOW_RUN, .dry_run = c->dry_run, .mode = mode};

        return execute(c, &fo);
}

int cmd_run(const struct cli *c)
{
        int mode;

        mode = c->mode ? run_mode_from_string(c->mode) : (int)c->ctx->config->mode;
        if (mode < 0) {
                log_error("--mode must be no-reboot or reboot, not '%s'", c->mode);
                return EXIT_USAGE;
        }
        if (context_load_identity(c->ctx) < 0)
                return EXIT_FAILED;
        return execute_run(c, (enum run_mode)mode);
}

int cmd_resume(const struct cli *c)
{
        struct flow_opts fo = {.action = FLOW_RESUME};

        if (context_load_identity(c->ctx) < 0)
                return EXIT_FAILED;
        return execute(c, &fo);
}

/*
 * The daemon's first worker with [daemon] user_data = yes or [boot_check] enable = yes: a run if
 * the user-data asks for one, or the report of an instance a boot check launched.
 */
int cmd_first_boot(const struct cli *c)
{
        char boot_check[USERDATA_RUN_ID_MAX + 1] = "";
        _cleanup_free_ char *report = NULL;
        const char *reason = NULL;
        enum run_mode mode = MODE_NO_REBOOT;
        struct result res;
        int r;

        if (context_load_identity(c->ctx) < 0)
                return EXIT_FAILED;
        r = first_boot_decide(c->ctx, &mode, boot_check, &reason);
        if (r < 0)
                return EXIT_FAILED;
        if (r == FIRST_BOOT_RUN)
                return execute_run(c, mode);
        if (r == FIRST_BOOT_BOOT_CHECK && boot_check_report(c->ctx, boot_check, &report) < 0)
                return EXIT_FAILED;
        log_info("No first-boot run: %s", reason);
        result_new(&res, VIEW_NO_FIRST_BOOT);
        result_add_bool(&res, res.tree, "first_boot_run", false);
        result_add_str(&res, res.tree, "reason", reason);
        if (report) {
                result_add_str(&res, res.tree, "boot_check_run_id", boot_check);
                result_add_str(&res, res.tree, "boot_check_report", report);
        }
        return output_finish(&res, c->json, EXIT_OK);
}

int cmd_status(const struct cli *c)
{
        const char *dir = c->ctx->config->state_dir;
        struct state st = {};
        struct result res;
        int r;

        r = state_load(dir, &st);
        if (r < 0) {
                log_error_errno(r, "%s/state.json: %m", dir);
                return EXIT_FAILED;
        }
        result_take(&res, VIEW_STATUS, state_to_json(&st));
        state_done(&st);
        return output_finish(&res, c->json, EXIT_OK);
}

int cmd_thaw(const struct cli *c)
{
        _cleanup_strv_free_ char **thawed = NULL;
        struct result res;
        int r = flow_thaw(c->ctx, c->all, &thawed);

        /* Everything is thawed: the lines held since main() may go out now. */
        log_hold(false);
        if (r < 0) {
                log_error_errno(r, "Thaw failed: %m");
                return EXIT_FAILED;
        }
        result_new(&res, VIEW_THAWED);
        result_add_strv(&res, res.tree, "thawed", thawed);
        return output_finish(&res, c->json, EXIT_OK);
}
