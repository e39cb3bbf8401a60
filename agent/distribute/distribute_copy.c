/* SPDX-License-Identifier: Apache-2.0 */
/* The copies of a run's image to the other regions (see distribute_internal.h). */
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
#include "util/backoff.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/str.h"

int dist_check_copy_keys(struct dist *d)
{
        int r = 0;

        for (size_t i = 1; r >= 0 && distribute_sharing(d->cfg) && i < d->run->n_dist; i++) {
                const char *key = dist_kms_key_for(d->cfg, d->run->dist[i].region);
                struct kms_key k = {};

                if (!key || d->run->dist[i].image_id)
                        continue;
                r = dist_check_key(&d->clients, d->run->dist[i].region, key, "the copy", true, &k,
                                   &d->why);
                kms_key_done(&k);
        }
        return r;
}

/*
 * A copy whose CopyImage answer was lost (a crash, a transport error) exists under the run's
 * name in the destination region: adopt it when it is this run's, by its run-id tag or, before
 * the tags are on, by the run id in its description.
 */
int dist_find_copy(struct dist *d, struct run_dist *rd)
{
        struct ec2_client *c = dist_clients_ec2(&d->clients, rd->region);
        struct aws_error e = {};
        struct ec2_image *ims = NULL;
        size_t n = 0;
        int r;

        r = ec2_describe_own_images(c, "name", d->run->image_name, NULL, &ims, &n, &e);
        if (r < 0)
                return dist_fail(&d->why, r, &e, "DescribeImages", rd->region);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                const char *id = image_tag(&ims[i], TAG_RUN_ID);
                bool ours = id ? streq(id, d->run->run_id)
                               : ims[i].description && strstr(ims[i].description, d->run->run_id);
                if (!ours) {
                        d->why = strprintf("an image named '%s' (%s) in %s was not made by this "
                                           "run; make [image] name unique",
                                           d->run->image_name, ims[i].image_id, rd->region);
                        r = -EEXIST;
                } else {
                        log_info("Found the copy %s in %s made before the interruption",
                                 ims[i].image_id, rd->region);
                        r = run_state_set(&rd->image_id, ims[i].image_id);
                }
        }
        ec2_images_free(ims, n);
        return r;
}

static int start_copy(struct dist *d, struct run_dist *rd)
{
        struct ec2_client *c = dist_clients_ec2(&d->clients, rd->region);
        _cleanup_free_ char *token = NULL, *desc = NULL, *id = NULL;
        struct ec2_tag tags[IMAGE_TAGS_MAX];
        struct aws_error e = {};
        int r;

        r = dist_find_copy(d, rd);
        if (r < 0 || rd->image_id)
                return r < 0 ? r : dist_save(d);
        /* The same token for the same run and region: EC2 makes one copy however often asked. */
        token = strprintf("%s-%s", d->run->run_id, rd->region);
        desc = strprintf("ec2-imaged run %s: copy of %s from %s", d->run->run_id, d->run->image_id,
                         d->run->region);
        if (!token || !desc)
                return -ENOMEM;
        r = ec2_copy_image(c,
                           &(struct ec2_copy_image_args){
                                   .source_region = d->run->region,
                                   .source_image_id = d->run->image_id,
                                   .name = d->run->image_name,
                                   .description = desc,
                                   .kms_key_id = dist_kms_key_for(d->cfg, rd->region),
                                   .copy_image_tags = true,
                                   .tags = tags,
                                   .n_tags = image_tags_build(
                                           d->cfg, d->run,
                                           distribute_lineage(d->cfg, d->run->instance_id), tags),
                                   .client_token = token,
                           },
                           &id, &e);
        if (r < 0 && streq_ptr(e.code, "InvalidAMIName.Duplicate")) {
                /*
                 * EC2 keeps AMI names unique: the name is taken, by a copy of this run that the
                 * lookup above did not see yet (eventual consistency) or by something else.
                 */
                aws_error_done(&e);
                r = dist_find_copy(d, rd);
                if (r >= 0 && !rd->image_id)
                        d->why = strprintf("CopyImage in %s: InvalidAMIName.Duplicate, and no "
                                           "image named '%s' is visible yet",
                                           rd->region, d->run->image_name);
                if (r < 0 || !rd->image_id)
                        return r < 0 ? r : -EAGAIN;
                return dist_save(d);
        }
        if (r < 0) {
                /* The copy may have been made all the same: look again next time round. */
                return dist_fail(&d->why, r, &e, "CopyImage", rd->region);
        }
        log_notice("CopyImage %s -> %s in %s", d->run->image_id, id, rd->region);
        r = run_state_set(&rd->image_id, id);
        if (r >= 0)
                r = run_state_set(&rd->state, "pending");
        return r < 0 ? r : dist_save(d);
}

/* Where the copy in rd's region stands: 1 while it is pending (or not listed yet), 0 once
 * available. */
static int poll_copy(struct dist *d, struct run_dist *rd)
{
        struct ec2_image im = {};
        int r;

        r = dist_describe_one(d, rd, &im);
        if (r == -ENOENT) { /* not visible yet: eventual consistency */
                free(d->why);
                d->why = NULL;
                return 1;
        }
        if (r < 0)
                return r;
        if (!streq_ptr(im.state, rd->state)) {
                run_state_set(&rd->state, im.state);
                r = dist_save(d);
        }
        if (r >= 0 && !streq_ptr(im.state, "available") && !streq_ptr(im.state, "pending")) {
                d->why = strprintf("the copy %s in %s is %s: %s", rd->image_id, rd->region,
                                   strna(im.state), strna(im.state_reason));
                r = -EIO;
        }
        ec2_image_done(&im);
        if (r < 0)
                return r;
        return streq_ptr(rd->state, "available") ? 0 : 1;
}

int dist_copy_all(struct dist *d)
{
        struct backoff b;

        backoff_init(&b, 2 * USEC_PER_SEC, (usec_t)d->cfg->wait_poll_max_s * USEC_PER_SEC,
                     (usec_t)d->cfg->wait_timeout_s * USEC_PER_SEC, 0);
        for (;;) {
                unsigned in_flight = 0, waiting = 0;
                int r;

                for (size_t i = 1; i < d->run->n_dist; i++) {
                        struct run_dist *rd = &d->run->dist[i];
                        if (rd->image_id && !streq_ptr(rd->state, "available"))
                                in_flight++;
                }
                for (size_t i = 1; i < d->run->n_dist; i++) {
                        struct run_dist *rd = &d->run->dist[i];

                        if (!rd->image_id && in_flight < d->cfg->dist_max_copies) {
                                r = start_copy(d, rd);
                                if (r < 0)
                                        return r;
                                in_flight++;
                        }
                        if (!rd->image_id || streq_ptr(rd->state, "available"))
                                continue;
                        r = poll_copy(d, rd);
                        if (r < 0)
                                return r;
                        waiting += r;
                }
                for (size_t i = 1; i < d->run->n_dist; i++)
                        if (!d->run->dist[i].image_id)
                                waiting++;
                if (waiting == 0)
                        return 0;
                if (backoff_sleep(&b) < 0) {
                        d->why = strprintf("copies not available after %u s ([run] "
                                           "wait_timeout_s)",
                                           d->cfg->wait_timeout_s);
                        return -ETIME;
                }
        }
}
