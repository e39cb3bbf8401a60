/*
 * First boot from user-data: when [daemon] user_data = yes, the daemon's first worker asks this
 * module whether the instance's user-data holds `#ec2-imaged: run=first-boot` (see userdata.h)
 * and whether this instance id was imaged that way already (STATE_DIR/first-boot).
 */
#pragma once

#include "state.h"

struct context;

enum first_boot_decision {
        FIRST_BOOT_NONE,        /* no user-data, no directive, or no run=first-boot in it */
        FIRST_BOOT_DONE_BEFORE, /* this instance id already had its first-boot run */
        FIRST_BOOT_RUN,         /* run now; the instance id is recorded already */
};

/*
 * Decide, and for FIRST_BOOT_RUN record the instance id before anything else happens, so that a
 * run that reboots (or fails) is never started again by the same instance. The identity must be
 * loaded. *ret_mode: the directive's mode, else [run] mode. *ret_reason: a static explanation.
 * -EINVAL for a bad directive (logged with its line), other -errno when IMDS or the state dir
 * fails.
 */
int first_boot_decide(struct context *ctx, enum run_mode *ret_mode, const char **ret_reason);
