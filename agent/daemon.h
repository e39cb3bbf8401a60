/*
 * `ec2-imaged daemon`: an sd-event loop that never blocks. Each run executes in a worker, our own
 * binary started as `ec2-imaged run --json` (or resume, or first-boot), which reports its phases
 * on a socket; the loop turns them into sd_notify STATUS= lines, answers the control socket of
 * `ec2-imaged trigger`, handles SIGUSR1 (run), SIGHUP (reload) and SIGTERM (stop, after the worker
 * thawed and stopped), and pings the watchdog.
 */
#pragma once

#include <stdbool.h>

struct daemon_opts {
        const char *config_path; /* NULL: the default */
        bool config_explicit;
        bool verbose; /* passed on to the workers */
};

/* Returns 0 after a clean stop, -EINVAL for a bad configuration, another -errno otherwise. */
int daemon_run(const struct daemon_opts *o);
