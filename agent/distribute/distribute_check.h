/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pre-flight of [distribute], changing nothing: the configuration holds together (no public
 * sharing), an image to be shared carries no AWS Marketplace product code (this instance's and its
 * source image's), every KMS key exists (DescribeKey) and none that is to be shared is
 * AWS-managed, and each configured step is permitted (DryRun CopyImage in each destination
 * region, RunInstances of the boot check, ModifyImageAttribute (sharing, ImdsSupport),
 * ModifySnapshotAttribute, EnableImageDeprecation, EnableImageDeregistrationProtection,
 * CreateLaunchTemplateVersion and ModifyLaunchTemplate in each launch template word's region,
 * DeregisterImage for retention, KMS CreateGrant for each account the run grants a key to:
 * distribute_check_calls.c). Run by `ec2-imaged check` and at the start of every run, before
 * anything disruptive (freeze, reboot).
 */
#pragma once

#include <stdbool.h>

struct context;

/*
 * 0 when everything passed; else -errno and *ret_why (freed by the caller) naming the first
 * failure. One line per check is appended to *report (may be NULL). With list_retention (run
 * --dry-run), the images that retention would deregister once the new image exists are listed
 * too. lineage is the default lineage (the instance id) when [distribute] lineage is unset.
 */
int distribute_check(struct context *ctx, const char *lineage, bool list_retention, char ***report,
                     char **ret_why);
