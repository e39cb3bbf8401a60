/* SPDX-License-Identifier: Apache-2.0 */
/* Pre-flight of distribution (see distribute_check.h). */
#include "distribute/distribute_check.h"
#include "distribute/distribute_check_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/awsjson.h"
#include "aws/ec2_dist.h"
#include "aws/kms.h"
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
        /* Not `all` either: public sharing is never done (an encrypted image must not be). */
        for (char **w = c->dist_share_accounts; w && *w; w++)
                if (strlen(*w) != 12 || strspn(*w, "0123456789") != 12)
                        return (k->why = strprintf("[distribute] share_accounts: '%s' is not a "
                                                   "12-digit account id (public sharing is "
                                                   "never done)",
                                                   *w)),
                               -EINVAL;
        for (char **w = c->dist_share_orgs; w && *w; w++)
                if (!startswith(*w, "arn:") || !strstr(*w, ":organization/o-"))
                        return (k->why = strprintf("[distribute] share_organizations: '%s' is not "
                                                   "an organization ARN",
                                                   *w)),
                               -EINVAL;
        for (char **w = c->dist_share_ous; w && *w; w++)
                if (!startswith(*w, "arn:") || !strstr(*w, ":ou/o-"))
                        return (k->why = strprintf("[distribute] share_ous: '%s' is not an "
                                                   "organizational unit ARN",
                                                   *w)),
                               -EINVAL;
        r = check_region_words(k, c->dist_launch_template, "launch_template");
        return r < 0 ? r : check_region_words(k, c->dist_ssm_parameter, "ssm_parameter");
}

/*
 * EC2 shares no image that carries AWS Marketplace product codes with another account, and lets
 * no other account copy one: the new image would carry this instance's codes (those of the image
 * it was launched from, which DescribeInstances repeats). Refused naming the code.
 */
static int check_product_codes(struct check *k, struct ec2_client *c, const struct ec2_instance *in)
{
        const char *id = in->instance_id, *what = "instance";
        _cleanup_(ec2_image_done) struct ec2_image im = {};
        const struct ec2_product_code *pc;
        struct aws_error e = {};
        int r;

        pc = ec2_marketplace_code(in->product_codes, in->n_product_codes);
        if (!pc && in->image_id) {
                /* Gone (deregistered): the instance's own codes above are what is left. */
                r = ec2_describe_image_any_owner(c, in->image_id, &im, &e);
                if (r < 0 && r != -ENOENT)
                        return dist_fail(&k->why, r, &e, "DescribeImages (product codes)",
                                         k->ctx->region);
                pc = ec2_marketplace_code(im.product_codes, im.n_product_codes);
                what = "source image";
                id = in->image_id;
        }
        if (pc) {
                k->why = strprintf("AWS Marketplace product code %s on the %s %s: EC2 does not "
                                   "share an image with AWS Marketplace product codes with other "
                                   "accounts, organizations or OUs, nor let them copy it; remove "
                                   "share_accounts, share_organizations and share_ous",
                                   pc->code, what, id);
                return k->why ? -EPERM : -ENOMEM;
        }
        return strv_pushf(k->report,
                          "product codes: none of AWS Marketplace on instance %s or "
                          "its image %s",
                          in->instance_id, strna(in->image_id));
}

/*
 * The image CreateImage makes keeps the encryption of the instance's volumes. Without a key for
 * the run's own region (which re-encrypts it), sharing needs each of their keys to be
 * customer-managed, and create_grants a grant on each: checked now (DescribeKey, DryRun
 * CreateGrant) rather than once the image is made.
 */
static int check_volume_keys(struct check *k, struct ec2_client *c, const struct ec2_instance *in)
{
        const char *region = k->ctx->region;
        _cleanup_strv_free_ char **vols = NULL, **keys = NULL;
        struct aws_error e = {};
        int r = 0;

        if (dist_kms_key_for(k->cfg, region))
                return 0;
        for (size_t i = 0; r >= 0 && i < in->n_devices; i++)
                if (in->devices[i].volume_id)
                        r = strv_push(&vols, in->devices[i].volume_id);
        if (r < 0 || !vols)
                return r;
        r = ec2_describe_volume_keys(c, (const char *const *)vols, &keys, &e);
        if (r < 0)
                return dist_fail(&k->why, r, &e, "DescribeVolumes", region);
        for (char **key = keys; r >= 0 && *key; key++) {
                struct kms_key kk = {};

                r = dist_check_key(&k->clients, region, *key, "the image of this instance", true,
                                   &kk, &k->why);
                if (r >= 0)
                        r = strv_pushf(k->report, "KMS key %s of the instance's volumes: %s", *key,
                                       strna(kk.key_manager));
                if (r >= 0)
                        r = dist_check_grants(k, region, kk.arn ? kk.arn : *key);
                kms_key_done(&kk);
        }
        return r;
}

/* What the image will be made of, when it is to be shared: product codes, volume keys. */
static int check_source(struct check *k)
{
        struct ec2_client *c = dist_clients_ec2(&k->clients, k->ctx->region);
        _cleanup_(ec2_instance_done) struct ec2_instance in = {};
        struct aws_error e = {};
        int r;

        if (!distribute_sharing(k->cfg))
                return 0;
        r = ec2_describe_instance(c, k->ctx->identity.instance_id, &in, &e);
        if (r < 0)
                return dist_fail(&k->why, r, &e, "DescribeInstances", k->ctx->region);
        r = check_product_codes(k, c, &in);
        return r < 0 ? r : check_volume_keys(k, c, &in);
}

/* Whether word (ACCOUNT:...) names an account of target_accounts. */
static bool of_target(const struct config *c, const char *word)
{
        for (char **t = c->dist_target_accounts; t && *t; t++)
                if (strncmp(*t, word, 13) == 0)
                        return true;
        return false;
}

/*
 * The target_* words together (each one's shape was checked as it was read): the keys and
 * parameters name target accounts and regions of the run, each target account has a key in every
 * region of the run, and none is the run's own account or a share_accounts one (whose standing
 * grants the revocation after the copies would take away).
 */
static int check_targets(struct check *k, char *const *regions)
{
        const struct config *c = k->cfg;

        for (char **w = c->dist_target_kms_keys; w && *w; w++) {
                _cleanup_free_ char *region = strndup(*w + 13, strcspn(*w + 13, ":"));

                if (!region)
                        return -ENOMEM;
                if (!of_target(c, *w) || !strv_contains(regions, region))
                        return (k->why = strprintf("[distribute] target_kms_key: '%s' is not "
                                                   "ACCOUNT:REGION:KEY for an account of "
                                                   "target_accounts and a region of the run",
                                                   *w)),
                               -EINVAL;
        }
        for (char **w = c->dist_target_ssm_params; w && *w; w++)
                if (!of_target(c, *w))
                        return (k->why = strprintf("[distribute] target_ssm_parameter: '%s' "
                                                   "names no account of target_accounts",
                                                   *w)),
                               -EINVAL;
        for (char **w = c->dist_target_accounts; w && *w; w++) {
                _cleanup_free_ char *account = strndup(*w, 12);

                if (!account)
                        return -ENOMEM;
                if (strv_contains(c->dist_share_accounts, account) ||
                    streq_ptr(account, k->ctx->identity.account_id))
                        return (k->why = strprintf("[distribute] target_accounts: %s is %s", *w,
                                                   streq_ptr(account, k->ctx->identity.account_id)
                                                           ? "this instance's own account"
                                                           : "in share_accounts too (its grants "
                                                             "are revoked after its copies)")),
                               -EINVAL;
                for (char *const *s = regions; s && *s; s++)
                        if (!config_target_kms_key(c, account, *s))
                                return (k->why = strprintf("[distribute] target_kms_key: no key "
                                                           "for account %s in %s, a region of "
                                                           "the run (ACCOUNT:REGION:KEY)",
                                                           account, *s)),
                                       -EINVAL;
        }
        return 0;
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
                if (r >= 0)
                        r = dist_check_grants(k, region, kk.arn ? kk.arn : key);
                kms_key_done(&kk);
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
                r = check_targets(&k, regions);
        if (r >= 0)
                r = dist_clients_open(&k.clients, ctx, regions);
        if (r >= 0)
                r = check_source(&k);
        if (r >= 0)
                r = check_keys(&k);
        for (char **s = regions; r >= 0 && s && *s; s++)
                r = dist_check_calls(&k, *s, s == regions);
        for (char **s = regions; r >= 0 && list_ret && s && *s; s++)
                r = list_retention(&k, *s, k.lineage);
        strv_free(regions);
        dist_clients_done(&k.clients);
        ec2_image_done(&k.probe);
        if (r < 0)
                *ret_why = k.why ? TAKE_PTR(k.why) : strdup(strerror(-r));
        free(k.why);
        return r;
}
