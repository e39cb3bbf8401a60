/* SPDX-License-Identifier: Apache-2.0 */
/* Distribution of a run's image: the steps, their order and their persistence. */
#include "distribute/distribute.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/awsjson.h"
#include "aws/ec2_dist.h"
#include "core/config.h"
#include "core/context.h"
#include "core/imagetags.h"
#include "distribute/distribute_aws.h"
#include "distribute/distribute_grants.h"
#include "distribute/distribute_internal.h"
#include "distribute/distribute_publish.h"
#include "distribute/distribute_retain.h"
#include "core/state.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/str.h"

/* Step names recorded in struct run_dist.done. */
#define STEP_TAGGED      "tagged"
#define STEP_SHARED      "shared"
#define STEP_SNAP_SHARED "snapshots-shared"
#define STEP_GRANTED     "granted"
#define STEP_DEPRECATED  "deprecated"
#define STEP_LT_DEFAULT  "launch-template"
#define STEP_SSM         "ssm-parameter"
#define STEP_RETAINED    "retained"
#define STEP_IMDS_V2     "imds-v2"
#define STEP_PROTECTED   "protected"

bool distribute_configured(const struct config *c)
{
        return c->dist_regions || c->dist_share_accounts || c->dist_share_orgs ||
               c->dist_share_ous || c->dist_deprecate_days > 0 || c->dist_keep_newest > 0 ||
               c->dist_keep_days > 0 || c->dist_launch_template || c->dist_ssm_parameter ||
               c->dist_kms_keys || c->dist_target_accounts || c->boot_check_enable;
}

bool distribute_encrypts_in_place(const struct config *c, const char *region)
{
        return region && dist_kms_key_for(c, region);
}

bool distribute_sharing(const struct config *c)
{
        return c->dist_share_accounts || c->dist_share_orgs || c->dist_share_ous ||
               c->dist_target_accounts;
}

const char *distribute_lineage(const struct config *c, const char *instance_id)
{
        return c->dist_lineage ? c->dist_lineage : instance_id;
}

static const char *lineage(const struct dist *d)
{
        return distribute_lineage(d->cfg, d->run->instance_id);
}

int dist_save(struct dist *d)
{
        int r;

        r = state_save_run(d->cfg->state_dir, d->st, d->run);
        if (r < 0)
                d->why = strprintf("cannot save the run state in %s: %s", d->cfg->state_dir,
                                   strerror(-r));
        return r;
}

int dist_describe_one(struct dist *d, struct run_dist *rd, struct ec2_image *ret)
{
        struct ec2_client *c = dist_clients_ec2(&d->clients, rd->region);
        struct aws_error e = {};
        struct ec2_image *ims = NULL;
        size_t n = 0;
        int r;

        r = ec2_describe_own_images(c, NULL, NULL, rd->image_id, &ims, &n, &e);
        /* A brand-new id may not be visible yet: EC2 is eventually consistent. */
        if (r == -EREMOTEIO && streq_ptr(e.code, "InvalidAMIID.NotFound"))
                n = 0;
        else if (r < 0)
                return dist_fail(&d->why, r, &e, "DescribeImages", rd->region);
        aws_error_done(&e);
        if (n == 0) {
                if (!d->why)
                        d->why = strprintf("image %s is not (or no longer) in %s", rd->image_id,
                                           rd->region);
                ec2_images_free(ims, n);
                return -ENOENT;
        }
        *ret = ims[0];
        ims[0] = (struct ec2_image){};
        ec2_images_free(ims, n);
        return 0;
}

/*
 * The key of the image in rd's region: the configured one for a copy; for the run's own image,
 * and for a copy without one, what DescribeImages says of its snapshots.
 */
static int image_key(struct dist *d, struct run_dist *rd, char **ret)
{
        const char *k = dist_kms_key_for(d->cfg, rd->region);
        struct ec2_image im = {};
        int r;

        if (rd != &d->run->dist[0] && k)
                return (*ret = strdup(k)) ? 0 : -ENOMEM;
        r = dist_describe_one(d, rd, &im);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(im.kms_key_id);
        ec2_image_done(&im);
        return 0;
}

/* Before sharing: no image encrypted with an AWS-managed key; grants on customer keys. */
static int check_keys_and_grant(struct dist *d, struct run_dist *rd)
{
        _cleanup_strv_free_ char **grantees = NULL;
        _cleanup_free_ char *key = NULL;
        struct kms_key k = {};
        int r;

        if (!distribute_sharing(d->cfg) || run_dist_done(rd, STEP_GRANTED))
                return 0;
        r = image_key(d, rd, &key);
        if (r < 0 || !key)
                return r;
        r = dist_check_key(&d->clients, rd->region, key, rd->image_id, true, &k, &d->why);
        if (r >= 0)
                r = dist_grantees(d->cfg, &grantees);
        /* The pre-flight DryRuns CreateGrant for the same list (distribute_check.c). */
        for (char **a = grantees; r >= 0 && a && *a; a++)
                r = dist_grant(d, rd, k.arn ? k.arn : key, *a);
        kms_key_done(&k);
        if (r >= 0 && (d->cfg->dist_create_grants || d->targets))
                r = run_dist_mark(rd, STEP_GRANTED);
        return r < 0 ? r : dist_save(d);
}

static int share(struct dist *d, struct run_dist *rd)
{
        struct ec2_client *c = dist_clients_ec2(&d->clients, rd->region);
        struct ec2_share s[170];
        struct aws_error e = {};
        size_t n = 0;
        int r = 0;

        if (!run_dist_done(rd, STEP_SHARED) && distribute_sharing(d->cfg)) {
                for (char **a = d->accounts; a && *a && n < ELEMENTSOF(s); a++)
                        s[n++] = (struct ec2_share){EC2_SHARE_ACCOUNT, *a};
                for (char **a = d->cfg->dist_share_orgs; a && *a && n < ELEMENTSOF(s); a++)
                        s[n++] = (struct ec2_share){EC2_SHARE_ORGANIZATION, *a};
                for (char **a = d->cfg->dist_share_ous; a && *a && n < ELEMENTSOF(s); a++)
                        s[n++] = (struct ec2_share){EC2_SHARE_OU, *a};
                r = ec2_add_launch_permissions(c, rd->image_id, s, n, false, &e);
                if (r < 0)
                        return dist_fail(&d->why, r, &e, "ModifyImageAttribute", rd->region);
                log_notice("Shared %s in %s with %zu principals", rd->image_id, rd->region, n);
                r = run_dist_mark(rd, STEP_SHARED);
                if (r >= 0)
                        r = dist_save(d);
        }
        if (r >= 0 && !run_dist_done(rd, STEP_SNAP_SHARED) && d->accounts) {
                struct ec2_image im = {};

                r = dist_describe_one(d, rd, &im);
                for (char **sn = im.snapshot_ids; r >= 0 && sn && *sn; sn++) {
                        r = ec2_add_create_volume_permission(
                                c, *sn, (const char *const *)d->accounts, false, &e);
                        if (r < 0)
                                r = dist_fail(&d->why, r, &e, "ModifySnapshotAttribute",
                                              rd->region);
                }
                ec2_image_done(&im);
                if (r >= 0)
                        r = run_dist_mark(rd, STEP_SNAP_SHARED);
                if (r >= 0)
                        r = dist_save(d);
        }
        return r;
}

/* Tags on every image of the run (copies get them here: not every EC2 keeps CopyImage's). */
static int tag(struct dist *d, struct run_dist *rd)
{
        struct ec2_tag tags[IMAGE_TAGS_MAX];
        struct ec2_image im = {};
        struct aws_error e = {};
        char **ids = NULL;
        int r;

        if (run_dist_done(rd, STEP_TAGGED))
                return 0;
        r = dist_describe_one(d, rd, &im);
        if (r >= 0)
                r = strv_push(&ids, rd->image_id);
        for (char **s = im.snapshot_ids; r >= 0 && s && *s; s++)
                r = strv_push(&ids, *s);
        if (r >= 0) {
                r = ec2_create_tags(dist_clients_ec2(&d->clients, rd->region),
                                    (const char *const *)ids, tags,
                                    image_tags_build(d->cfg, d->run, lineage(d), tags), false, &e);
                if (r < 0)
                        r = dist_fail(&d->why, r, &e, "CreateTags", rd->region);
        }
        strv_free(ids);
        ec2_image_done(&im);
        if (r >= 0)
                r = run_dist_mark(rd, STEP_TAGGED);
        return r < 0 ? r : dist_save(d);
}

static int deprecate(struct dist *d, struct run_dist *rd)
{
        struct aws_error e = {};
        char at[21];
        int r;

        if (d->cfg->dist_deprecate_days == 0 || run_dist_done(rd, STEP_DEPRECATED))
                return 0;
        format_iso8601(d->run->started + (usec_t)d->cfg->dist_deprecate_days * 86400 * USEC_PER_SEC,
                       at);
        r = ec2_enable_image_deprecation(dist_clients_ec2(&d->clients, rd->region), rd->image_id,
                                         at, false, &e);
        if (r < 0)
                return dist_fail(&d->why, r, &e, "EnableImageDeprecation", rd->region);
        log_info("%s in %s deprecated from %s", rd->image_id, rd->region, at);
        r = run_dist_mark(rd, STEP_DEPRECATED);
        return r < 0 ? r : dist_save(d);
}

/*
 * [image] imds_v2_only: ImdsSupport v2.0 on the image of each region, before it is shared or
 * published, so that no instance launched from it ever gets IMDSv1. EC2 cannot take it back.
 */
static int imds_v2(struct dist *d, struct run_dist *rd)
{
        struct aws_error e = {};
        int r;

        if (!d->cfg->image_imds_v2_only || run_dist_done(rd, STEP_IMDS_V2))
                return 0;
        r = ec2_set_imds_v2_only(dist_clients_ec2(&d->clients, rd->region), rd->image_id, false,
                                 &e);
        if (r < 0)
                return dist_fail(&d->why, r, &e, "ModifyImageAttribute ImdsSupport", rd->region);
        log_info("%s in %s: ImdsSupport v2.0", rd->image_id, rd->region);
        r = run_dist_mark(rd, STEP_IMDS_V2);
        return r < 0 ? r : dist_save(d);
}

/* [distribute] protect_published: deregistration protection, lifted by retention only. */
static int protect(struct dist *d, struct run_dist *rd)
{
        struct aws_error e = {};
        int r;

        if (!d->cfg->dist_protect_published || run_dist_done(rd, STEP_PROTECTED))
                return 0;
        r = ec2_set_deregistration_protection(dist_clients_ec2(&d->clients, rd->region),
                                              rd->image_id, true, false, &e);
        if (r < 0)
                return dist_fail(&d->why, r, &e, "EnableImageDeregistrationProtection", rd->region);
        log_info("%s in %s: deregistration protection on", rd->image_id, rd->region);
        r = run_dist_mark(rd, STEP_PROTECTED);
        return r < 0 ? r : dist_save(d);
}

/* A new version of the region's launch template with the region's image, made the default. */
static int publish_lt(struct dist *d, struct run_dist *rd)
{
        struct ec2_client *c = dist_clients_ec2(&d->clients, rd->region);
        const char *lt =
                dist_word_for(d->cfg->dist_launch_template, rd->region, d->run->region, false);
        _cleanup_free_ char *desc = NULL, *token = NULL;
        int r;

        if (!lt || run_dist_done(rd, STEP_LT_DEFAULT))
                return 0;
        if (!rd->lt_version) {
                desc = strprintf("ec2-imaged run %s", d->run->run_id);
                /* One version per run and region, however often the call is sent. */
                token = strprintf("%s-%s", d->run->run_id, rd->region);
                if (!desc || !token)
                        return -ENOMEM;
                r = dist_lt_version(c, rd->region, lt, d->cfg->dist_lt_source_version, rd->image_id,
                                    desc, token, &rd->lt_version, &d->why);
                if (r < 0)
                        return r;
                log_notice("Launch template %s version %s in %s uses %s", lt, rd->lt_version,
                           rd->region, rd->image_id);
                r = dist_save(d);
                if (r < 0)
                        return r;
        }
        r = dist_lt_set_default(c, rd->region, lt, rd->lt_version, &d->why);
        if (r >= 0)
                r = run_dist_mark(rd, STEP_LT_DEFAULT);
        return r < 0 ? r : dist_save(d);
}

/* The region's SSM parameter: a plain name is every region's, as before REGION:NAME words. */
static int publish_ssm(struct dist *d, struct run_dist *rd)
{
        const char *name =
                dist_word_for(d->cfg->dist_ssm_parameter, rd->region, d->run->region, true);
        int r;

        if (!name || run_dist_done(rd, STEP_SSM))
                return 0;
        r = dist_publish_ssm(dist_clients_ssm(&d->clients, rd->region), rd->region, name,
                             rd->image_id, &d->why);
        if (r >= 0)
                r = run_dist_mark(rd, STEP_SSM);
        return r < 0 ? r : dist_save(d);
}

static struct retain_opts retain_opts(const struct dist *d, const char *keep, bool dry_run)
{
        return (struct retain_opts){
                .lineage = lineage(d),
                .keep_newest = d->cfg->dist_keep_newest,
                .keep_days = d->cfg->dist_keep_days,
                .keep_image_id = keep,
                .lift_protection = d->cfg->dist_protect_published,
                .now = now_usec(CLOCK_REALTIME),
                .dry_run = dry_run,
        };
}

static int retain(struct dist *d, struct run_dist *rd)
{
        struct retain_opts o = retain_opts(d, rd->image_id, false);
        _cleanup_strv_free_ char **gone = NULL;
        char **report = NULL;
        struct aws_error e = {};
        int r;

        if (!retain_enabled(&o) || run_dist_done(rd, STEP_RETAINED))
                return 0;
        o.gone = &gone;
        r = retain_region(dist_clients_ec2(&d->clients, rd->region), &o, &report, &e);
        strv_free(report);
        if (r < 0)
                return e.code ? dist_fail(&d->why, r, &e, "retention", rd->region) : r;
        /* The grants of the images it retired go with them. */
        r = dist_grants_revoke_images(d, rd->region, gone);
        if (r < 0)
                return r;
        r = run_dist_mark(rd, STEP_RETAINED);
        return r < 0 ? r : dist_save(d);
}

/* Record the regions of the run, with nothing done yet; the run's own image is there already. */
static int plan(struct dist *d, char **regions)
{
        struct run_dist *rd;
        int r = 0;

        if (d->run->n_dist > 0)
                return 0;
        for (char **s = regions; r >= 0 && *s; s++)
                r = run_state_add_dist(d->run, *s, &rd);
        if (r >= 0)
                r = run_state_set(&d->run->dist[0].image_id, d->run->image_id);
        if (r >= 0)
                r = run_state_set(&d->run->dist[0].state, "available");
        return r < 0 ? r : dist_save(d);
}

int distribute_run(struct context *ctx, struct state *st, struct run_state *run, char **ret_why)
{
        struct dist d = {.ctx = ctx, .cfg = ctx->config, .st = st, .run = run};
        char **regions = NULL;
        int r;

        if (!distribute_configured(d.cfg))
                return 0;
        r = dist_regions(run->region, d.cfg, &regions);
        if (r >= 0)
                r = dist_target_ids(d.cfg, &d.targets, &d.accounts);
        if (r >= 0)
                r = dist_clients_open(&d.clients, ctx, regions);
        if (r < 0 && !d.why)
                d.why = strprintf("cannot set up the clients of the regions: %s", strerror(-r));
        /* First of all: every later step, copies included, works on the encrypted image. */
        if (r >= 0)
                r = dist_encrypt_in_place(&d);
        if (r >= 0)
                r = plan(&d, regions);
        strv_free(regions);
        /* Before anything makes the image reachable: copies, sharing, publishing, retention. */
        if (r >= 0)
                r = dist_boot_check(&d);
        if (r >= 0)
                r = check_keys_and_grant(&d, &run->dist[0]);
        if (r >= 0)
                r = dist_check_copy_keys(&d);
        if (r >= 0)
                r = dist_copy_all(&d);
        for (size_t i = 0; r >= 0 && i < run->n_dist; i++) {
                struct run_dist *rd = &run->dist[i];

                r = tag(&d, rd);
                if (r >= 0)
                        r = imds_v2(&d, rd);
                if (r >= 0 && i > 0)
                        r = check_keys_and_grant(&d, rd);
                if (r >= 0)
                        r = share(&d, rd);
                if (r >= 0)
                        r = deprecate(&d, rd);
                if (r >= 0)
                        r = publish_lt(&d, rd);
                if (r >= 0)
                        r = publish_ssm(&d, rd);
                if (r >= 0)
                        r = protect(&d, rd);
        }
        /* Every region shared and granted: each target account copies, then loses the keys. */
        if (r >= 0)
                r = dist_targets_push(&d);
        for (size_t i = 0; r >= 0 && i < run->n_dist; i++)
                r = retain(&d, &run->dist[i]);
        dist_clients_done(&d.clients);
        strv_free(d.targets);
        strv_free(d.accounts);
        if (r < 0)
                *ret_why = d.why ? TAKE_PTR(d.why) : strdup(strerror(-r));
        free(d.why);
        return r;
}
