/* SPDX-License-Identifier: Apache-2.0 */
/* EC2 image operations of a run, on top of the EC2 client. */
#include "run/flow_image.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/context.h"
#include "run/imagename.h"
#include "core/state.h"
#include "util/backoff.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/str.h"

static char *description(const struct config *cfg, const struct run_state *run)
{
        struct template_fields f = {
                .instance_id = run->instance_id,
                .region = run->region,
                .run_id = run->run_id,
                .mode = run_mode_to_string(run->mode),
                .now = (time_t)(run->started / USEC_PER_SEC),
        };
        _cleanup_free_ char *err = NULL;
        char *d = NULL;

        if (template_render(cfg->image_description, &f, &d, &err) < 0)
                return NULL;
        if (strlen(d) > 255)
                d[255] = '\0'; /* EC2's limit on descriptions */
        return d;
}

int flow_image_dry_run(struct context *ctx, struct run_state *run, const struct config *cfg,
                       struct aws_error *err)
{
        struct ec2_tag tags[IMAGE_TAGS_MAX];
        struct ec2_create_image_args a = {
                .instance_id = run->instance_id,
                .name = run_state_create_name(run),
                .no_reboot = run->mode == MODE_NO_REBOOT,
                .tags = tags,
                .n_tags = image_tags_build(cfg, run, NULL, tags),
                .no_snapshot_tags = true,
                .dry_run = true,
        };

        return ec2_create_image(ctx->ec2, &a, NULL, err);
}

int flow_image_find(struct context *ctx, struct run_state *run, struct aws_error *err)
{
        struct ec2_image *ims = NULL;
        size_t n = 0;
        int r;

        r = ec2_describe_own_images(ctx->ec2, "name", run_state_create_name(run), NULL, &ims, &n,
                                    err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n && r == 0; i++) {
                const char *id = image_tag(&ims[i], TAG_RUN_ID);
                if (!streq_ptr(id, run->run_id)) {
                        log_error("An image named '%s' already exists (%s) and was not made by "
                                  "this run; choose an [image] name template that is unique, "
                                  "e.g. with {date:%%Y%%m%%d-%%H%%M%%S} or {run_id}",
                                  run_state_create_name(run), ims[i].image_id);
                        r = -EEXIST;
                        break;
                }
                log_notice("Image %s '%s' of this run already exists; not creating another",
                           ims[i].image_id, run_state_create_name(run));
                r = run_state_set(&run->image_id, ims[i].image_id);
                if (r >= 0) {
                        int c = consistency_from_string(image_tag(&ims[i], TAG_CONSISTENCY));
                        if (c >= 0)
                                run->consistency = (enum consistency)c;
                }
        }
        ec2_images_free(ims, n);
        return r;
}

int flow_image_create(struct context *ctx, struct run_state *run, const struct config *cfg,
                      bool no_reboot, struct aws_error *err)
{
        _cleanup_free_ char *desc = description(cfg, run);
        struct ec2_tag tags[IMAGE_TAGS_MAX];
        struct ec2_create_image_args a = {
                .instance_id = run->instance_id,
                .name = run_state_create_name(run),
                .description = desc,
                .no_reboot = no_reboot,
                .tags = tags,
                .n_tags = image_tags_build(cfg, run, NULL, tags),
                /* snapshots are tagged once DescribeImages lists them (flow_image_wait) */
                .no_snapshot_tags = true,
        };
        char *id = NULL;
        int r;

        /*
         * CreateImage has no idempotency token: never repeat it after a failure that may have
         * reached EC2 (the flow looks the name up instead), and while frozen keep all attempts
         * inside the freeze timeout.
         */
        ec2_client_limit_next_call(ctx->ec2, true, no_reboot ? cfg->freeze_timeout_ms / 4 * 3 : 0);
        r = ec2_create_image(ctx->ec2, &a, &id, err);
        if (r < 0)
                return r;
        free(run->image_id);
        run->image_id = id;
        return 0;
}

bool flow_image_outcome_unknown(int r, const struct aws_error *err)
{
        /* EC2 said no (an error answer other than a taken name): nothing was made. */
        return !(r == -EREMOTEIO && !streq_ptr(err->code, "InvalidAMIName.Duplicate"));
}

int flow_image_adopt(struct context *ctx, struct run_state *run, const struct config *cfg,
                     char **ret_why)
{
        usec_t now = now_usec(CLOCK_REALTIME);
        usec_t end = run->unknown_since + (usec_t)cfg->adopt_timeout_s * USEC_PER_SEC;
        struct backoff b;
        unsigned looks = 0;
        int r;

        /* A short first pause: EC2 lists a new image within seconds; then up to 15 s apart. */
        backoff_init(&b, 2 * USEC_PER_SEC, 15 * USEC_PER_SEC, end > now ? end - now : 0, 0);
        for (;;) {
                struct aws_error e = {};

                looks++;
                r = flow_image_find(ctx, run, &e);
                if (r == -EEXIST) {
                        aws_error_done(&e);
                        *ret_why = strprintf("an image named '%s' was made by something else",
                                             run_state_create_name(run));
                        return r;
                }
                if (r < 0)
                        log_warning("DescribeImages while looking for '%s': %s: %s",
                                    run_state_create_name(run), aws_error_describe(&e, r),
                                    strempty(e.message));
                aws_error_done(&e);
                if (r >= 0 && run->image_id) {
                        log_notice("Found image %s '%s' of this run (look %u): adopted",
                                   run->image_id, run_state_create_name(run), looks);
                        return 0;
                }
                if (backoff_sleep(&b) < 0)
                        break;
        }
        *ret_why = strprintf("no image named '%s' with this run's id appeared within %u s ([run] "
                             "adopt_timeout_s, %u looks); later runs look for it by the run id",
                             run_state_create_name(run), cfg->adopt_timeout_s, looks);
        return -ETIME;
}

int flow_image_retag_consistency(struct context *ctx, struct run_state *run)
{
        struct ec2_tag t = {TAG_CONSISTENCY, consistency_to_string(run->consistency)};
        const char *ids[] = {run->image_id, NULL};
        struct aws_error e = {};
        int r;

        r = ec2_create_tags(ctx->ec2, ids, &t, 1, false, &e);
        if (r < 0)
                log_error("Cannot re-tag %s as %s: %s", run->image_id,
                          consistency_to_string(run->consistency), aws_error_describe(&e, r));
        aws_error_done(&e);
        return r;
}

/*
 * The snapshots get the image's tags as EC2 lists them: those it was made with (and a consistency
 * re-tag since), not the configuration's of the moment, which may have changed before a resume.
 * Keys in aws: are EC2's own and cannot be set.
 */
static int tag_snapshots(struct context *ctx, const struct ec2_image *im)
{
        struct ec2_tag tags[IMAGE_TAGS_MAX];
        struct aws_error e = {};
        size_t n = 0;
        int r;

        if (!im->snapshot_ids || !*im->snapshot_ids)
                return 0;
        for (size_t i = 0; i < im->n_tags && n < IMAGE_TAGS_MAX; i++)
                if (im->tags[i].key && !startswith(im->tags[i].key, "aws:"))
                        tags[n++] = (struct ec2_tag){im->tags[i].key, strempty(im->tags[i].value)};
        if (n == 0)
                return 0;
        r = ec2_create_tags(ctx->ec2, (const char *const *)im->snapshot_ids, tags, n, false, &e);
        if (r < 0)
                log_warning("Cannot tag the snapshots of %s: %s: %s", im->image_id,
                            aws_error_describe(&e, r), strempty(e.message));
        aws_error_done(&e);
        return r;
}

int flow_image_wait(struct context *ctx, struct run_state *run, const struct config *cfg,
                    char **ret_why)
{
        struct backoff b;
        usec_t start = now_usec(CLOCK_MONOTONIC);
        int r;

        backoff_init(&b, 2 * USEC_PER_SEC, (usec_t)cfg->wait_poll_max_s * USEC_PER_SEC,
                     (usec_t)cfg->wait_timeout_s * USEC_PER_SEC, 0);
        for (;;) {
                struct ec2_image *ims = NULL;
                struct aws_error e = {};
                size_t n = 0;

                r = ec2_describe_own_images(ctx->ec2, NULL, NULL, run->image_id, &ims, &n, &e);
                if (r < 0) {
                        /* A brand-new id may not be visible yet: EC2 is eventually consistent. */
                        if (!streq_ptr(e.code, "InvalidAMIID.NotFound")) {
                                *ret_why =
                                        strprintf("DescribeImages: %s: %s",
                                                  aws_error_describe(&e, r), strempty(e.message));
                                aws_error_done(&e);
                                return r;
                        }
                } else if (n > 0) {
                        const char *state = ims[0].state;
                        run_state_set(&run->image_state, state);
                        if (streq_ptr(state, "available")) {
                                tag_snapshots(ctx, &ims[0]);
                                ec2_images_free(ims, n);
                                return 0;
                        }
                        if (!streq_ptr(state, "pending")) {
                                *ret_why = strprintf("image is %s: %s", strna(state),
                                                     strna(ims[0].state_reason));
                                ec2_images_free(ims, n);
                                return -EIO;
                        }
                }
                aws_error_done(&e);
                ec2_images_free(ims, n);
                log_info("Waiting for %s (%llus)", run->image_id,
                         (unsigned long long)((now_usec(CLOCK_MONOTONIC) - start) / USEC_PER_SEC));
                r = backoff_sleep(&b);
                if (r < 0) {
                        *ret_why = strprintf("still %s after %u s ([run] wait_timeout_s)",
                                             strna(run->image_state), cfg->wait_timeout_s);
                        return -ETIME;
                }
        }
}
