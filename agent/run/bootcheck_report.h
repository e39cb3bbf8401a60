/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The clone's side of the boot check: an instance launched by a run's boot check (its user-data
 * says `#ec2-imaged: boot-check=RUN_ID`) looks at how it booted, reports by tagging its own
 * instance ec2-imaged:boot-check-result = "ok" or "failed:REASON", and powers off (the run
 * launched it with InstanceInitiatedShutdownBehavior=terminate). It does nothing else: no
 * first-boot run, no sanitization, no distribution, no AWS call but that one CreateTags.
 *
 * What "booted well" means: systemd reached its default target with no failed unit
 * (`systemctl is-system-running --wait` says "running"), every [boot_check] require_units unit is
 * active, and the local parts of `check` pass: the configuration loaded (or this would not run),
 * IMDS answered with the identity, credentials resolve (the report needs them), and no hook of any
 * phase is refused. The parts of `check` that call AWS (DescribeInstances, the DryRun CreateImage
 * and distribution calls) are left out: the clone runs with the boot check's instance profile,
 * which need not (and should not) be allowed to make or share images.
 */
#pragma once

struct context;

#define BOOT_REPORT_MAX 256 /* EC2's limit on a tag value */

struct boot_report_input {
        const char *system_state;    /* `systemctl is-system-running`: running, degraded, ... */
        char *const *failed_units;   /* systemd's failed units (NULL-terminated, may be NULL) */
        char *const *inactive_units; /* require_units that are not active, "UNIT (STATE)" */
        const char *local_check;     /* NULL when the local checks passed; else why not */
};

/*
 * The report: "ok", or "failed:" and the reasons joined by "; ", printable ASCII only and cut to
 * BOOT_REPORT_MAX bytes. NULL when out of memory.
 */
char *boot_report_verdict(const struct boot_report_input *in);

/*
 * Look, report (CreateTags on this instance only) and power off. The identity is loaded.
 * *ret_report: the tag value sent (the caller frees it). -errno when the report could not be
 * made (logged); the instance is powered off either way.
 */
int boot_check_report(struct context *ctx, const char *run_id, char **ret_report);
