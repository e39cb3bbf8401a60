/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The daemon's STATUS= line for the service manager (`systemctl status ec2-imaged`): what the
 * worker under way is doing, from its last progress message, or, when idle, how the last run
 * ended, from the state file.
 */
#pragma once

#include "daemon/control.h"
#include "daemon/worker.h"
#include "util/macro.h"
#include "util/timeutil.h"

/*
 * The one way STATUS= is sent. The text is built from what the state file and the worker say,
 * and sd_notify's message is newline-separated assignments: every control character becomes a
 * space, so that an error text cannot say READY=1 or MAINPID=...; the text is cut at 1 KiB.
 */
void status_notify(const char *fmt, ...) _printf_(1, 2);

/* Idle: the unfinished run, or the last one, as the state in state_dir tells. */
void status_idle(const char *state_dir);

/*
 * A worker for job is under way: p is its last progress message (NULL before the first one),
 * phase_since when that phase began (CLOCK_MONOTONIC).
 */
void status_run(enum worker_job job, const struct progress *p, usec_t phase_since);
