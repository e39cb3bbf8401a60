/* SPDX-License-Identifier: Apache-2.0 */
/* Images of failed runs that appeared after their run gave up (see late_images.h). */
#include "run/late_images.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "aws/ec2_dist.h"
#include "core/context.h"
#include "core/imagetags.h"
#include "core/state.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/str.h"

/*
 * The late image and its snapshots get the failed run's tags with consistency crash: the run id
 * lets the IAM policy's DeregisterImage and DeleteSnapshot statement apply to the snapshots too.
 */
static void tag_crash(struct context *ctx, const struct history_entry *h,
                      const struct ec2_image *im)
{
        const struct ec2_tag tags[] = {
                {TAG_RUN_ID, h->run_id},
                {TAG_CONSISTENCY, consistency_to_string(CONSISTENCY_CRASH)},
                {TAG_SOURCE, h->instance_id},
        };
        _cleanup_free_ const char **ids = calloc(strv_length(im->snapshot_ids) + 2, sizeof(*ids));
        struct aws_error e = {};
        size_t n = 0;

        if (!ids)
                return;
        ids[n++] = im->image_id;
        for (char **s = im->snapshot_ids; s && *s; s++)
                ids[n++] = *s;
        if (ec2_create_tags(ctx->ec2, ids, tags, ELEMENTSOF(tags), false, &e) < 0)
                log_warning("Cannot tag the late image %s as crash-consistent: %s: %s",
                            im->image_id, strna(e.code), strempty(e.message));
        aws_error_done(&e);
}

/* One image of a failed run: tag it, record it, deregister it unless it is still pending. */
static void settle(struct context *ctx, struct history_entry *h, const struct ec2_image *im)
{
        struct aws_error e = {};
        int r;

        log_warning("Image %s '%s' of failed run %s appeared after the run gave up on it; it is "
                    "crash-consistent and nobody's: %s",
                    im->image_id, strna(im->name), h->run_id,
                    streq_ptr(im->state, "pending") ? "deregistered once it is no longer pending"
                                                    : "deregistering it with its snapshots");
        tag_crash(ctx, h, im);
        (void)run_state_set(&h->image_id, im->image_id);
        h->consistency = CONSISTENCY_CRASH;
        h->create_outcome = CREATE_LATE;
        if (streq_ptr(im->state, "pending"))
                return;
        r = ec2_deregister_image(ctx->ec2, im->image_id, true, false, &e);
        if (r < 0) {
                log_error("Cannot deregister the late image %s of failed run %s (the next run "
                          "tries again): %s: %s",
                          im->image_id, h->run_id, aws_error_describe(&e, r), strempty(e.message));
                aws_error_done(&e);
                return;
        }
        log_notice("Deregistered %s, the late image of failed run %s, with its snapshots",
                   im->image_id, h->run_id);
        h->create_outcome = CREATE_DEREGISTERED;
}

/* True when the entry changed. */
static bool sweep_one(struct context *ctx, struct history_entry *h, usec_t now)
{
        enum create_outcome before = h->create_outcome;
        struct ec2_image *ims = NULL;
        struct aws_error e = {};
        size_t n = 0;
        int r;

        r = ec2_describe_images_by_tag(ctx->ec2, TAG_RUN_ID, h->run_id, &ims, &n, &e);
        if (r < 0) {
                log_warning("Cannot look for an image of failed run %s (next run again): %s: %s",
                            h->run_id, aws_error_describe(&e, r), strempty(e.message));
                aws_error_done(&e);
                return false;
        }
        for (size_t i = 0; i < n; i++)
                settle(ctx, h, &ims[i]);
        if (n == 0 && h->create_outcome == CREATE_LATE) {
                /* Deregistered since (by retention, or by hand): nothing is left to track. */
                h->create_outcome = CREATE_DEREGISTERED;
        } else if (n == 0 && now >= h->finished + (usec_t)LATE_IMAGES_LOOK_S * USEC_PER_SEC) {
                log_info("No image of failed run %s appeared; not looking for one any longer",
                         h->run_id);
                h->create_outcome = CREATE_ABSENT;
        }
        ec2_images_free(ims, n);
        return n > 0 || h->create_outcome != before;
}

int late_images_sweep(struct context *ctx, struct state *st)
{
        const char *self = ctx->identity.instance_id;
        usec_t now = now_usec(CLOCK_REALTIME);
        bool changed = false;
        int r;

        for (size_t i = 0; i < st->n_history; i++) {
                struct history_entry *h = &st->history[i];

                /* Another instance's entries came with the image: none of ours to act on. */
                if (!history_tracks_late_image(h) || !self || !streq_ptr(h->instance_id, self))
                        continue;
                changed |= sweep_one(ctx, h, now);
        }
        if (!changed)
                return 0;
        r = state_save(ctx->config->state_dir, st);
        if (r < 0)
                return log_error_errno(r, "Cannot save the run state in %s: %m",
                                       ctx->config->state_dir);
        return 0;
}
