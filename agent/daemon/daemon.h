/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `ec2-imaged daemon`: an sd-event loop that never blocks. Each run executes in a worker, our own
 * binary started as `ec2-imaged run --json` (or resume, or first-boot), which reports its phases
 * on a socket; the loop turns them into sd_notify STATUS= lines, answers the control socket of
 * `ec2-imaged trigger`, handles SIGUSR1 (run), SIGHUP (reload) and SIGTERM (stop, after the worker
 * thawed and stopped), and pings the watchdog.
 */
#pragma once

#include <stdbool.h>

#define DAEMON_HELPER_NAME "ec2-imaged-daemon"
#define DAEMON_LIBEXEC_DIR "/usr/libexec/ec2-imaged"

/*
 * The package's maintainer scripts leave this file in RUNTIME_DIRECTORY (default
 * DAEMON_RUNTIME_DIR) after an upgrade; the daemon then exits with DAEMON_EXIT_RESTART as soon as
 * no run is under way, and the unit's RestartForceExitStatus= starts the new version.
 */
#define DAEMON_RUNTIME_DIR    "/run/ec2-imaged"
#define DAEMON_RESTART_MARKER "restart-pending"
#define DAEMON_EXIT_RESTART   75

struct daemon_opts {
        const char *config_path; /* NULL: the default */
        bool config_explicit;
        bool verbose;              /* passed on to the workers */
        const char *worker_binary; /* the full ec2-imaged; NULL: this executable */
};

/*
 * Returns 0 after a clean stop, DAEMON_EXIT_RESTART after a stop for an upgrade (see above),
 * -EINVAL for a bad configuration, another -errno otherwise.
 */
int daemon_run(const struct daemon_opts *o);

/*
 * The loop runs best in ec2-imaged-daemon, a small executable that links none of the libraries
 * of the imaging itself (libcurl, OpenSSL, libxml2): an idle daemon stays a few MiB. Replace this
 * process (same PID, so the service manager's MAINPID holds) with the helper found next to this
 * executable or in DAEMON_LIBEXEC_DIR, telling it to start workers from this executable. Returns
 * only on failure: -ENOENT when there is no helper.
 */
int daemon_exec_helper(const struct daemon_opts *o);
