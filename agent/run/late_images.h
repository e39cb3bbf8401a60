/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Images of failed runs that appeared after their run gave up. A CreateImage without a clear
 * answer may still reach EC2 after the run stopped looking for its image ([run] adopt_timeout_s):
 * the run's history entry keeps the outcome "unknown", and every later run and resume of this
 * instance looks for images tagged with that run's id first. One that appeared is tagged `crash`
 * (it was taken after the thaw, perhaps after the post-thaw hooks gave the instance its identity
 * back), recorded in the entry, and deregistered with its snapshots once it is no longer pending;
 * an entry with no image LATE_IMAGES_LOOK_S after its run failed is closed as "absent".
 */
#pragma once

struct context;
struct state;

/* How long after a failed run its image is still looked for: far past any delayed request. */
#define LATE_IMAGES_LOOK_S (24 * 3600)

/*
 * Look for the images of this instance's failed runs whose outcome is unknown or late, act on
 * them as above, and save the state when an entry changed. AWS failures are logged and leave the
 * entry for the next run; only a failure to save the state is returned.
 */
int late_images_sweep(struct context *ctx, struct state *st);
