/* SPDX-License-Identifier: Apache-2.0 */
/* Pre-flight of distribution (see distribute_check.h). */
#include "distribute/distribute_check.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/awsjson.h"
#include "aws/ec2_dist.h"
#include "aws/vocab.h"
#include "core/config.h"
#include "core/context.h"
#include "core/imagetags.h"
#include "distribute/distribute.h"
#include "distribute/distribute_aws.h"
#include "distribute/distribute_policy.h"
#include "distribute/distribute_retain.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/str.h"

struct check {
        struct context *ctx;
        const struct config *cfg;
        const char *lineage;
        struct dist_clients clients;
        char ***report; /* never NULL: a scratch vector when the caller wants no report */
        char *why;
};

/* NAME, or REGION:NAME for a region of the run (launch_template, ssm_parameter). */
static int check_region_words(struct check *k, char *const *words, const char *key)
{
        for (char *const *w = words; w && *w; w++) {
                const char *colon = strchr(*w, ':');
                _cleanup_free_ char *region = colon ? strndup(*w, (size_t)(colon - *w)) : NULL;

                if (colon && (!region || !colon[1] ||
                              (!strv_contains(k->cfg->dist_regions, region) &&
                               !streq(region, k->ctx->region))))
                        return (k->why = strprintf("[distribute] %s: '%s' is not NAME or "
                                                   "REGION:NAME for a region of the run",
                                                   key, *w)),
                               -EINVAL;
        }
        return 0;
}

/* Configuration that no call could catch: words of the wrong shape, keys of unknown regions. */
static int check_config(struct check *k)
{
        const struct config *c = k->cfg;
        int r;

        for (char **w = c->dist_regions; w && *w; w++)
                if (!aws_region_valid(*w))
                        return (k->why = strprintf("[distribute] regions: '%s' is not a region",
                                                   *w)),
                               -EINVAL;
        for (char **w = c->dist_kms_keys; w && *w; w++) {
                const char *colon = strchr(*w, ':');
                _cleanup_free_ char *region = colon ? strndup(*w, (size_t)(colon - *w)) : NULL;

                if (!region || !colon[1] ||
                    (!strv_contains(c->dist_regions, region) && !streq(region, k->ctx->region)))
                        return (k->why = strprintf("[distribute] kms_key: '%s' is not "
                                                   "REGION:KEY for a region of the run",
                                                   *w)),
                               -EINVAL;
        }
        for (char **w = c->dist_share_accounts; w && *w; w++)
                if (strlen(*w) != 12 || strspn(*w, "0123456789") != 12)
                        return (k->why = strprintf("[distribute] share_accounts: '%s' is not a "
                                                   "12-digit account id",
                                                   *w)),
                               -EINVAL;
        r = check_region_words(k, c->dist_launch_template, "launch_template");
        return r < 0 ? r : check_region_words(k, c->dist_ssm_parameter, "ssm_parameter");
}

static int check_keys(struct check *k)
{
        int r = 0;

        for (char **w = k->cfg->dist_kms_keys; r >= 0 && w && *w; w++) {
                const char *key = strchr(*w, ':') + 1;
                _cleanup_free_ char *region = strndup(*w, (size_t)(key - 1 - *w));
                struct kms_key kk = {};

                if (!region)
                        return -ENOMEM;
                r = dist_check_key(&k->clients, region, key, "the copy", distribute_sharing(k->cfg),
                                   &kk, &k->why);
                if (r >= 0)
                        r = dist_check_key_policy(&k->clients, k->cfg, region,
                                                  kk.arn ? kk.arn : key, &k->why);
                if (r >= 0)
                        r = strv_pushf(k->report, "KMS key %s in %s: %s, %s", key, region,
                                       strna(kk.arn), strna(kk.key_manager));
                kms_key_done(&kk);
        }
        return r;
}

/* A DryRun answered: 0 allowed, else the first failure is recorded. */
static int dry(struct check *k, int r, struct aws_error *e, const char *what, const char *region)
{
        if (r < 0) {
                if (!k->why)
                        k->why = strprintf("DryRun %s in %s %s: %s%s%s", what, region,
                                           r == -EPERM ? "is not permitted" : "failed",
                                           aws_error_describe(e, r), e->message ? ": " : "",
                                           strempty(e->message));
                aws_error_done(e);
                return r;
        }
        aws_error_done(e);
        return strv_pushf(k->report, "DryRun %s in %s: allowed", what, region);
}

/*
 * The image a DryRun DeregisterImage names: one of the lineage that ec2-imaged made (tagged
 * ec2-imaged:run-id), the only kind retention deregisters and the only kind the shipped IAM
 * policy lets it deregister (a DryRun on the instance's own AMI would be refused by that
 * condition). *ret is NULL when there is none yet: then retention has nothing to do either.
 */
static int retention_probe(struct check *k, struct ec2_client *c, char **ret, struct aws_error *e)
{
        struct ec2_image *ims = NULL;
        size_t n = 0;
        int r;

        *ret = NULL;
        r = ec2_describe_images_by_tag(c, TAG_LINEAGE, k->lineage, &ims, &n, e);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n && !*ret; i++)
                if (image_tag(&ims[i], TAG_RUN_ID)) {
                        *ret = strdup(ims[i].image_id);
                        if (!*ret)
                                r = -ENOMEM;
                }
        ec2_images_free(ims, n);
        return r;
}

static int dry_deregister(struct check *k, struct ec2_client *c, const char *region)
{
        _cleanup_free_ char *probe = NULL;
        struct aws_error e = {};
        int r;

        r = retention_probe(k, c, &probe, &e);
        if (r < 0)
                return dist_fail(&k->why, r, &e, "retention", region);
        if (!probe)
                return strv_pushf(k->report,
                                  "DryRun DeregisterImage in %s: not tried, no image of lineage %s "
                                  "made by ec2-imaged yet",
                                  region, k->lineage);
        return dry(k, ec2_deregister_image(c, probe, false, true, &e), &e, "DeregisterImage",
                   region);
}

/*
 * The DryRun calls. They name the instance's own AMI, which exists in the run's region only:
 * there every step is tried; in a destination region, CopyImage (its source is in the run's
 * region). IAM permissions rarely differ between regions.
 */
static int check_calls(struct check *k, const char *region, bool own)
{
        struct ec2_client *c = dist_clients_ec2(&k->clients, region);
        const char *probe = k->ctx->identity.image_id; /* an image EC2 knows of */
        const char *lt;
        struct aws_error e = {};
        int r = 0;

        /* A copy to another region, or in the run's own for encryption in place. */
        if (!own || dist_kms_key_for(k->cfg, region))
                r = dry(k,
                        ec2_copy_image(c,
                                       &(struct ec2_copy_image_args){
                                               .source_region = k->ctx->region,
                                               .source_image_id = probe,
                                               .name = "ec2-imaged-preflight",
                                               .kms_key_id = dist_kms_key_for(k->cfg, region),
                                               .dry_run = true},
                                       NULL, &e),
                        &e, "CopyImage", region);
        if (!own || r < 0)
                return r;
        if (distribute_sharing(k->cfg)) {
                struct ec2_share s = {EC2_SHARE_ACCOUNT, "000000000000"};
                r = dry(k, ec2_add_launch_permissions(c, probe, &s, 1, true, &e), &e,
                        "ModifyImageAttribute", region);
        }
        if (r >= 0 && k->cfg->dist_deprecate_days > 0)
                r = dry(k, ec2_enable_image_deprecation(c, probe, "2100-01-01T00:00:00Z", true, &e),
                        &e, "EnableImageDeprecation", region);
        if (r >= 0 && (k->cfg->dist_keep_newest > 0 || k->cfg->dist_keep_days > 0))
                r = dry_deregister(k, c, region);
        lt = dist_word_for(k->cfg->dist_launch_template, region, region, false);
        if (r >= 0 && lt) {
                int64_t v;
                r = dry(k,
                        ec2_create_launch_template_version(c, lt, NULL, probe, NULL, NULL, true, &v,
                                                           &e),
                        &e, "CreateLaunchTemplateVersion", region);
                if (r >= 0)
                        r = dry(k, ec2_set_launch_template_default(c, lt, 1, true, &e), &e,
                                "ModifyLaunchTemplate", region);
        }
        return r;
}

static int list_retention(struct check *k, const char *region, const char *lineage)
{
        struct retain_opts o = {
                .lineage = lineage,
                .keep_newest = k->cfg->dist_keep_newest,
                .keep_days = k->cfg->dist_keep_days,
                /* The image the run would make is the newest: no existing image is it. */
                .keep_image_id = "(the new image)",
                .now = now_usec(CLOCK_REALTIME),
                .dry_run = true,
        };
        struct aws_error e = {};
        char **lines = NULL;
        int r;

        if (!retain_enabled(&o))
                return 0;
        r = retain_region(dist_clients_ec2(&k->clients, region), &o, &lines, &e);
        if (r < 0)
                return dist_fail(&k->why, r, &e, "retention", region);
        if (!lines)
                r = strv_pushf(k->report, "retention in %s: nothing would be deregistered", region);
        for (char **s = lines; r >= 0 && s && *s; s++)
                r = strv_pushf(k->report, "retention: %s", *s);
        strv_free(lines);
        return r;
}

int distribute_check(struct context *ctx, const char *lineage, bool list_ret, char ***report,
                     char **ret_why)
{
        struct check k = {.ctx = ctx,
                          .cfg = ctx->config,
                          .lineage = distribute_lineage(ctx->config, lineage),
                          .report = report};
        _cleanup_strv_free_ char **scratch = NULL;
        char **regions = NULL;
        int r;

        if (!k.report)
                k.report = &scratch;
        if (!distribute_configured(k.cfg))
                return 0;
        r = check_config(&k);
        if (r >= 0)
                r = dist_regions(ctx->region, k.cfg, &regions);
        if (r >= 0)
                r = dist_clients_open(&k.clients, ctx, regions);
        if (r >= 0)
                r = check_keys(&k);
        for (char **s = regions; r >= 0 && s && *s; s++)
                r = check_calls(&k, *s, s == regions);
        for (char **s = regions; r >= 0 && list_ret && s && *s; s++)
                r = list_retention(&k, *s, k.lineage);
        strv_free(regions);
        dist_clients_done(&k.clients);
        if (r < 0)
                *ret_why = k.why ? TAKE_PTR(k.why) : strdup(strerror(-r));
        free(k.why);
        return r;
}
