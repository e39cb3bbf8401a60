/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What distribute.c (the steps, their order and their persistence) and distribute_copy.c (the
 * copies to other regions) share: the distribution under way and the calls that save it and
 * describe its images.
 */
#pragma once

#include "distribute/distribute_aws.h"

struct aws_error;
struct config;
struct context;
struct ec2_client;
struct ec2_image;
struct kms_key;
struct run_dist;
struct run_state;
struct state;

struct dist {
        struct context *ctx;
        const struct config *cfg;
        struct state *st;
        struct run_state *run;
        struct dist_clients clients;
        char **targets;  /* the account ids of [distribute] target_accounts (NULL: none) */
        char **accounts; /* those the image is shared with: share_accounts, then targets */
        char *why;
};

/* Save the run state after a step (never in a dry run); on failure d->why says so. */
int dist_save(struct dist *d);
/* One image of rd's region by id, or -ENOENT (with d->why) when EC2 does not list it. */
int dist_describe_one(struct dist *d, struct run_dist *rd, struct ec2_image *ret);

/*
 * Target accounts (distribute_target.c): the account ids of target_accounts (*ret_targets) and
 * every account the image is shared with, share_accounts first (*ret_accounts); NULL for none.
 */
int dist_target_ids(const struct config *cfg, char ***ret_targets, char ***ret_accounts);
/*
 * Push a copy into each target account, in each region of the run (AssumeRole, then what
 * `ec2-imaged import` does, recorded in run->targets), and once all of an account's copies are
 * available revoke its grants on the owner's keys. Resumed, it asks again only for what is not
 * recorded available, and revokes what still stands.
 */
int dist_targets_push(struct dist *d);

/* Refuse early, before any copy, when a configured key of a copy is AWS-managed. */
int dist_check_copy_keys(struct dist *d);
/*
 * The copies: start them (adopting one made before an interruption), at most [distribute]
 * max_copies_in_flight at once, and wait until all of them are available.
 */
int dist_copy_all(struct dist *d);

/*
 * A copy of the run's image in rd->region whose CopyImage answer was lost: found by the run's
 * image name and adopted (rd->image_id set) when it is this run's; -EEXIST (d->why) when an image
 * of that name is someone else's.
 */
int dist_find_copy(struct dist *d, struct run_dist *rd);
/*
 * Encryption in place (distribute_encrypt.c), when the run's image was made under a name of its
 * own for it (run_state.create_name) and a key is configured for the run's region: copy it there
 * encrypted with that key, wait for the copy, make it the run's image, deregister the original
 * with its snapshots. Each step is saved before the next; resumed, none is done twice.
 */
int dist_encrypt_in_place(struct dist *d);
/*
 * The boot check (distribute_bootcheck.c), with [boot_check] enable = yes (or one under way):
 * launch one instance from the run's image, wait for its report (its tag
 * ec2-imaged:boot-check-result), terminate it. 0 when it passed; -EIO (d->why: the clone's reason,
 * or "no report within N s") when it failed, the image then tagged ec2-imaged:boot-check=failed
 * and, with on_failure = deregister, deregistered. Resumed, nothing is done twice.
 */
int dist_boot_check(struct dist *d);
/*
 * RunInstances of the boot check's instance of image_id for run_id (its tags, user-data and
 * ClientToken, and the [boot_check] settings of cfg) with c; with dry_run a DryRun, which the
 * pre-flight sends (ec2_run_instance()).
 */
int dist_boot_check_launch(struct ec2_client *c, const struct config *cfg, const char *image_id,
                           const char *run_id, bool dry_run, char **ret_instance_id,
                           struct aws_error *err);
/*
 * Whether image_key (the KmsKeyId DescribeImages gives an image's snapshot: an ARN) is the key k
 * (DescribeKey's answer for the configured id, ARN or alias).
 */
bool dist_image_key_matches(const char *image_key, const struct kms_key *k);
