/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Distribution and lifecycle of a run's image, after it is available ([distribute]): copies to
 * other regions (KMS key per region, a ClientToken from the run id and the region, a cap on
 * copies in flight), launch and volume permissions, KMS grants, deprecation, a launch template
 * version and an SSM parameter, and retention per lineage. Each step is recorded per region in
 * the run state and saved before the next, so a crash or a reboot resumes where it stopped and a
 * step is never done twice (a lost CopyImage answer is found again by name and run id).
 */
#pragma once

#include <stdbool.h>

struct config;
struct context;
struct run_state;
struct state;

/* Whether [distribute] asks for anything at all. */
bool distribute_configured(const struct config *c);
/*
 * Whether [distribute] kms_key names a key for region, the run's own: the image is then copied
 * there encrypted with it and the unencrypted original deregistered (distribute_encrypt.c).
 */
bool distribute_encrypts_in_place(const struct config *c, const char *region);
/* Whether [distribute] shares the images with accounts (targets too), organizations or OUs. */
bool distribute_sharing(const struct config *c);
/* The lineage retention counts images in: [distribute] lineage, else the instance's id. */
const char *distribute_lineage(const struct config *c, const char *instance_id);

/*
 * Distribute run's image (PHASE_DISTRIBUTING). The state st (holding run) is saved to
 * [run] state_dir after each step. On failure -errno and *ret_why (freed by the caller) says what
 * failed; an image encrypted with an AWS-managed key that is to be shared is refused (-EPERM)
 * with a message naming the key and what to do.
 */
int distribute_run(struct context *ctx, struct state *st, struct run_state *run, char **ret_why);
