/* SPDX-License-Identifier: Apache-2.0 */
/*
 * First boot from user-data: when [daemon] user_data = yes, the daemon's first worker asks this
 * module whether the instance's user-data holds an ec2-imaged directive asking for a first-boot
 * run, and whether this instance id was imaged that way already (STATE_DIR/first-boot).
 *
 * The directive is a comment line that every user-data format cloud-init knows leaves alone
 * (shell scripts, #cloud-config YAML, text parts of MIME multipart):
 *
 *   #ec2-imaged: run=first-boot mode=reboot
 *
 * Keys: run (first-boot: image the instance once, on its first boot with this instance id),
 * mode (no-reboot or reboot; default: [run] mode) and boot-check (RUN_ID: the instance was
 * launched by that run's boot check; it only reports how it booted, see bootcheck_report.h, and
 * never runs the first-boot directive). Several directive lines are merged in order.
 * Gzip-compressed user-data and base64-encoded MIME parts are not looked into.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "core/state.h"

#define USERDATA_MAX            (64u * 1024u) /* EC2 allows 16 KiB; IMDS serves it decoded */
#define USERDATA_PREFIX         "#ec2-imaged:"
#define USERDATA_DIRECTIVES_MAX 16
#define USERDATA_LINE_MAX       1024
#define USERDATA_RUN_ID_MAX     64

struct userdata_directive {
        bool found;      /* at least one directive line */
        bool first_boot; /* run=first-boot */
        bool has_mode;   /* mode= given; else the configured [run] mode */
        enum run_mode mode;
        unsigned line;                            /* the (last) directive line */
        char boot_check[USERDATA_RUN_ID_MAX + 1]; /* boot-check=RUN_ID; "" when not given */
};

/*
 * Parse user-data of len bytes (not NUL-terminated). 0 with *ret filled (found may be false);
 * -EFBIG over USERDATA_MAX, -EINVAL for a bad directive (then *ret_line and *ret_message, a
 * static string, say which and why). Bytes outside directive lines are never interpreted.
 */
int userdata_parse(const char *data, size_t len, struct userdata_directive *ret, unsigned *ret_line,
                   const char **ret_message);

struct context;

enum first_boot_decision {
        FIRST_BOOT_NONE,        /* no user-data, no directive, or no run=first-boot in it */
        FIRST_BOOT_DONE_BEFORE, /* this instance id already had its first-boot run */
        FIRST_BOOT_RUN,         /* run now; the instance id is recorded already */
        FIRST_BOOT_BOOT_CHECK,  /* launched by a run's boot check: report, nothing else */
};

/*
 * Decide. For run=first-boot, wait for cloud-init to finish ([daemon] cloud_init_wait_s), then
 * record the instance id before anything else happens, so that a run that reboots (or fails, or
 * was refused because cloud-init failed or did not finish) is never started again by the same
 * instance. The identity must be
 * loaded. *ret_mode: the directive's mode, else [run] mode. *ret_reason: a static explanation.
 * A boot-check directive wins over everything (FIRST_BOOT_BOOT_CHECK, its run id in
 * ret_boot_check, USERDATA_RUN_ID_MAX + 1 bytes); without one, run=first-boot is acted on only
 * with [daemon] user_data = yes. -EINVAL for a bad directive (logged with its line), other -errno
 * when IMDS or the state dir fails.
 */
int first_boot_decide(struct context *ctx, enum run_mode *ret_mode, char *ret_boot_check,
                      const char **ret_reason);
