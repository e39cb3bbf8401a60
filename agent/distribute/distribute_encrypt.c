/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Encryption in place (see distribute_internal.h): the run's image, made unencrypted under a name
 * of its own (run_state.create_name), is copied in its own region encrypted with the key
 * [distribute] kms_key names for that region and under the configured name; the copy becomes the
 * run's image (run_state.image_id) and the original is deregistered with its snapshots.
 *
 * The run state says how far it got, and is saved before each step that cannot be undone:
 * unencrypted_image_id set (with its snapshots) before CopyImage is sent; image_id != that id once
 * the copy is known (answered, or found again by its name and run id); unencrypted_deregistered
 * once the original and its snapshots are gone. CopyImage carries a ClientToken of the run id and
 * "encrypt", so that EC2 makes one copy however often it is asked; a second DeregisterImage or
 * DeleteSnapshot of what is already gone is taken as done.
 */
#include "distribute/distribute_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "aws/awsjson.h"
#include "aws/ec2_dist.h"
#include "core/config.h"
#include "core/context.h"
#include "core/imagetags.h"
#include "core/state.h"
#include "distribute/distribute.h"
#include "distribute/distribute_aws.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/str.h"

static struct ec2_client *own_ec2(struct dist *d)
{
        return dist_clients_ec2(&d->clients, d->run->region);
}

/* One image of the run's region by id; 0 with ret zeroed when EC2 does not list it (yet). */
static int describe(struct dist *d, const char *id, struct ec2_image *ret)
{
        struct ec2_image *ims = NULL;
        struct aws_error e = {};
        size_t n = 0;
        int r;

        *ret = (struct ec2_image){};
        r = ec2_describe_own_images(own_ec2(d), NULL, NULL, id, &ims, &n, &e);
        if (r == -EREMOTEIO && streq_ptr(e.code, "InvalidAMIID.NotFound"))
                n = 0; /* a brand-new id: EC2 is eventually consistent */
        else if (r < 0)
                return dist_fail(&d->why, r, &e, "DescribeImages", d->run->region);
        aws_error_done(&e);
        if (n > 0) {
                *ret = ims[0];
                ims[0] = (struct ec2_image){};
        }
        ec2_images_free(ims, n);
        return 0;
}

/*
 * Whether the image's snapshots are encrypted with the key k (DescribeKey of the configured
 * key): EC2 names the key of a snapshot by its ARN, the configuration may name it by id, ARN or
 * alias.
 */
bool dist_image_key_matches(const char *image_key, const struct kms_key *k)
{
        size_t n, m;

        if (!image_key)
                return false;
        if (streq_ptr(image_key, k->arn) || streq_ptr(image_key, k->key_id))
                return true;
        if (!k->key_id)
                return false;
        /* An ARN ending in key/<id> against the key's id. */
        n = strlen(image_key);
        m = strlen(k->key_id);
        return n > m && image_key[n - m - 1] == '/' && streq(image_key + n - m, k->key_id);
}

/*
 * Before the copy: record the original and its snapshots, or, when CreateImage made it encrypted
 * with the key already (the instance's volumes are), say so: 1 when there is nothing to do.
 */
static int record_original(struct dist *d, const char *key)
{
        struct run_state *run = d->run;
        struct ec2_image im = {};
        struct kms_key k = {};
        int r;

        r = dist_check_key(&d->clients, run->region, key, run->image_id, distribute_sharing(d->cfg),
                           &k, &d->why);
        if (r >= 0)
                r = describe(d, run->image_id, &im);
        if (r >= 0 && !im.image_id) {
                d->why = strprintf("image %s is not (or no longer) in %s", run->image_id,
                                   run->region);
                r = -ENOENT;
        }
        if (r >= 0 && dist_image_key_matches(im.kms_key_id, &k)) {
                log_notice("Image %s is encrypted with %s already: not copied", run->image_id, key);
                r = 1;
        } else if (r >= 0) {
                strv_free(run->unencrypted_snapshot_ids);
                run->unencrypted_snapshot_ids = TAKE_PTR(im.snapshot_ids);
                r = run_state_set(&run->unencrypted_image_id, run->image_id);
                if (r >= 0)
                        r = dist_save(d);
        }
        ec2_image_done(&im);
        kms_key_done(&k);
        return r;
}

/* The copy became the run's image (answered or found again): record it before anything else. */
static int take_copy(struct dist *d, const char *id)
{
        int r;

        log_notice("Encrypted copy %s of %s in %s", id, d->run->unencrypted_image_id,
                   d->run->region);
        r = run_state_set(&d->run->image_id, id);
        if (r >= 0)
                r = run_state_set(&d->run->image_state, "pending");
        return r < 0 ? r : dist_save(d);
}

/* A copy made before an interruption, under the configured name: 1 when found and taken. */
static int find_copy(struct dist *d)
{
        _cleanup_free_ char *id = NULL;
        struct run_dist rd = {.region = d->run->region};
        int r;

        r = dist_find_copy(d, &rd);
        id = rd.image_id;
        if (r < 0 || !id)
                return r;
        r = take_copy(d, id);
        return r < 0 ? r : 1;
}

static int copy(struct dist *d, const char *key)
{
        struct run_state *run = d->run;
        _cleanup_free_ char *token = NULL, *desc = NULL, *id = NULL;
        struct ec2_tag tags[IMAGE_TAGS_MAX];
        struct aws_error e = {};
        int r;

        r = find_copy(d);
        if (r != 0)
                return r < 0 ? r : 0;
        /* The same token for the same run: EC2 makes one copy however often asked. */
        token = strprintf("%s-encrypt", run->run_id);
        desc = strprintf("ec2-imaged run %s: %s encrypted with %s", run->run_id,
                         run->unencrypted_image_id, key);
        if (!token || !desc)
                return -ENOMEM;
        r = ec2_copy_image(
                own_ec2(d),
                &(struct ec2_copy_image_args){
                        .source_region = run->region,
                        .source_image_id = run->unencrypted_image_id,
                        .name = run->image_name,
                        .description = desc,
                        .encrypted = true,
                        .kms_key_id = key,
                        .tags = tags,
                        .n_tags = image_tags_build(
                                d->cfg, run, distribute_lineage(d->cfg, run->instance_id), tags),
                        .client_token = token,
                },
                &id, &e);
        if (r < 0 && streq_ptr(e.code, "InvalidAMIName.Duplicate")) {
                /* The name is taken: by this run's copy not listed yet, or by something else. */
                aws_error_done(&e);
                r = find_copy(d);
                if (r == 0)
                        d->why = strprintf("CopyImage in %s: InvalidAMIName.Duplicate, and no "
                                           "image named '%s' is visible yet",
                                           run->region, run->image_name);
                return r < 0 ? r : r == 0 ? -EAGAIN : 0;
        }
        if (r < 0) /* the copy may have been made all the same: looked for on the next try */
                return dist_fail(&d->why, r, &e, "CopyImage (encryption)", run->region);
        return take_copy(d, id);
}

/* A new state of the copy (the run's image now) is recorded as it is seen. */
static int copy_state(void *userdata, const char *state)
{
        struct dist *d = userdata;
        int r = run_state_set(&d->run->image_state, state);

        return r < 0 ? r : dist_save(d);
}

/* Wait until the copy (the run's image now) is available. */
static int wait_copy(struct dist *d)
{
        if (streq_ptr(d->run->image_state, "available"))
                return 0;
        return dist_wait_image(own_ec2(d), d->run->region, d->run->image_id,
                               &(struct dist_wait){.timeout_s = d->cfg->wait_timeout_s,
                                                   .poll_max_s = d->cfg->wait_poll_max_s,
                                                   .what = "the encrypted copy",
                                                   .on_state = copy_state,
                                                   .userdata = d},
                               &d->why);
}

/* EC2 says the image or snapshot is gone already (a second try after an interruption). */
static bool gone(int r, const struct aws_error *e)
{
        return r == -EREMOTEIO && (streq_ptr(e->code, "InvalidAMIID.NotFound") ||
                                   streq_ptr(e->code, "InvalidAMIID.Unavailable") ||
                                   streq_ptr(e->code, "InvalidSnapshot.NotFound"));
}

/* The original and its snapshots: DeleteAssociatedSnapshots, then each recorded one. */
static int deregister_original(struct dist *d)
{
        struct run_state *run = d->run;
        struct aws_error e = {};
        int r;

        r = ec2_deregister_image(own_ec2(d), run->unencrypted_image_id, true, false, &e);
        if (r < 0 && !gone(r, &e))
                return dist_fail(&d->why, r, &e, "DeregisterImage (the unencrypted original)",
                                 run->region);
        aws_error_done(&e);
        for (char **s = run->unencrypted_snapshot_ids; s && *s; s++) {
                r = ec2_delete_snapshot(own_ec2(d), *s, false, &e);
                if (r < 0 && !gone(r, &e))
                        return dist_fail(&d->why, r, &e, "DeleteSnapshot", run->region);
                aws_error_done(&e);
        }
        log_notice("Deregistered the unencrypted original %s and its snapshots in %s",
                   run->unencrypted_image_id, run->region);
        run->unencrypted_deregistered = true;
        return dist_save(d);
}

int dist_encrypt_in_place(struct dist *d)
{
        struct run_state *run = d->run;
        const char *key = dist_kms_key_for(d->cfg, run->region);
        int r;

        /* Decided before CreateImage (the name), done before the regions are planned. */
        if (!run->create_name || run->unencrypted_deregistered || run->n_dist > 0)
                return 0;
        if (!run->unencrypted_image_id) {
                if (!key) {
                        log_warning("[distribute] kms_key no longer names a key for %s: %s is "
                                    "left unencrypted, under the name '%s'",
                                    run->region, run->image_id, run->create_name);
                        return 0;
                }
                r = record_original(d, key);
                if (r != 0)
                        return r < 0 ? r : 0;
        }
        if (streq_ptr(run->image_id, run->unencrypted_image_id)) {
                if (!key) {
                        d->why = strprintf("[distribute] kms_key no longer names a key for %s, "
                                           "and the encrypted copy of %s is not made yet",
                                           run->region, run->image_id);
                        return -EINVAL;
                }
                r = copy(d, key);
                if (r < 0)
                        return r;
        }
        r = wait_copy(d);
        if (r >= 0)
                r = deregister_original(d);
        return r;
}
