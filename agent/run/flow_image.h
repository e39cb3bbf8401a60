/* SPDX-License-Identifier: Apache-2.0 */
/* The EC2 image operations of a run: dry run, lookup by name, create, wait, tags. */
#pragma once

#include <stdbool.h>

struct aws_error;
struct config;
struct context;
struct run_state;

#include "core/imagetags.h"

/* DryRun CreateImage on the run's instance: 0 when permitted. */
int flow_image_dry_run(struct context *ctx, struct run_state *run, const struct config *cfg,
                       struct aws_error *err);
/*
 * Look the run's image name up (DescribeImages, owner self). Found and tagged with this run's id:
 * the run adopts it (run->image_id set), 0. Found but made by something else: -EEXIST, since AMI
 * names are unique and CreateImage could never succeed. Not found: 0, image_id untouched.
 */
int flow_image_find(struct context *ctx, struct run_state *run, struct aws_error *err);
/* CreateImage with the run's name, description and tags; sets run->image_id. */
int flow_image_create(struct context *ctx, struct run_state *run, const struct config *cfg,
                      bool no_reboot, struct aws_error *err);
/*
 * After CreateImage failed with r: whether the failure leaves open that EC2 made (or will make)
 * the image: a transport error, retries that ran out, an unreadable answer, and
 * InvalidAMIName.Duplicate (the name is taken, maybe by this very request). False only for an
 * error answer that says nothing was done.
 */
bool flow_image_outcome_unknown(int r, const struct aws_error *err);
/*
 * The outcome of the run's CreateImage is unknown since run->unknown_since: look the name up with
 * backoff until [run] adopt_timeout_s after that (at least once). 0 with run->image_id set when
 * the run's image appeared; -ETIME when none did, -EEXIST when the name is someone else's, with
 * *ret_why saying so.
 */
int flow_image_adopt(struct context *ctx, struct run_state *run, const struct config *cfg,
                     char **ret_why);
/* Re-tag the image's consistency after the fact (the guard thawed too early). */
int flow_image_retag_consistency(struct context *ctx, struct run_state *run);
/*
 * Wait until the image is available (backoff up to [run] wait_poll_max_s, deadline
 * wait_timeout_s), then tag its snapshots. Fails at once on failed/error with EC2's StateReason.
 */
int flow_image_wait(struct context *ctx, struct run_state *run, const struct config *cfg,
                    char **ret_why);
