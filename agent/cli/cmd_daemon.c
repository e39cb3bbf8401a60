/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `daemon`: the systemd service's loop, in ec2-imaged-daemon when it is installed. `trigger`: ask
 * that daemon for a run over its control socket; with --wait, print the run's result as the
 * daemon's worker gave it.
 */
#include "cli/cmd_daemon.h"

#include <errno.h>
#include <string.h>

#include "cli/output.h"
#include "core/config.h"
#include "core/context.h"
#include "daemon/control.h"
#include "daemon/daemon.h"
#include "util/log.h"
#include "util/macro.h"

int cmd_daemon(const struct cli *c)
{
        struct daemon_opts d = {
                .config_path = c->common.config_path,
                .config_explicit = c->common.config_explicit,
                .verbose = c->common.verbose,
        };
        int r;

        /* The small helper when it is installed; else the same loop in this (larger) process. */
        r = daemon_exec_helper(&d);
        log_debug("No %s to run the loop in (%s); running it here", DAEMON_HELPER_NAME,
                  strerror(-r));
        r = daemon_run(&d);

        return r == -EINVAL ? EXIT_USAGE : r < 0 ? EXIT_FAILED : EXIT_OK;
}

/* The exit code for a request the daemon did not take, after saying why. */
static int trigger_refused(int r, const char *path, const char *msg)
{
        if (r == -EBUSY) {
                log_error("Not started: %s", strna(msg));
                return EXIT_BUSY;
        }
        if (r == -ENOENT || r == -ECONNREFUSED)
                log_error("No ec2-imaged daemon listens on %s", path);
        else if (r == -EPERM)
                log_error("The daemon refused: %s", strna(msg));
        else
                log_error_errno(r, "%s: %m", path);
        return EXIT_FAILED;
}

int cmd_trigger(const struct cli *c)
{
        const char *path = c->ctx->config->control_socket;
        _cleanup_free_ char *out = NULL, *msg = NULL;
        struct result res;
        int r, status = 0;

        r = control_trigger(path, c->wait, &status, &out, &msg);
        if (r < 0)
                return trigger_refused(r, path, msg);
        if (!c->wait) {
                result_new(&res, VIEW_STARTED);
                result_add_bool(&res, res.tree, "started", true);
                return output_finish(&res, c->json, EXIT_OK);
        }
        if (status > 128)
                log_error("The run's worker was stopped by signal %d; the run resumes when the "
                          "daemon starts again",
                          status - 128);
        /* The worker's exit code is ours: it is the run's. */
        result_worker_answer(&res, out);
        return output_finish(&res, c->json, status);
}
