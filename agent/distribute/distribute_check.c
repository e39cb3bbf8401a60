/* SPDX-License-Identifier: Apache-2.0 */
/* Pre-flight of distribution (see distribute_check.h). */
#include "distribute/distribute_check.h"

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

struct check {
        struct context *ctx;
        const struct config *cfg;
        const char *lineage;
        struct dist_clients clients;
        char ***report; /* never NULL: a scratch vector when the caller wants no report */
        char *why;
        bool probed;            /* the lineage was looked up (lineage_probe) */
        struct ec2_image probe; /* an image of the lineage that ec2-imaged made; zero: none */
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
 * The grant a KMS that ignores DryRun made for the pre-flight, revoked at once: ", and grant G
 * was revoked", or what names it for a revoke by hand when that fails too.
 */
static char *revoke_made(struct check *k, const char *region, const char *key, const char *made)
{
        _cleanup_(aws_error_done) struct aws_error e = {};
        int r;

        if (!made)
                return strdup("; its answer named no grant: look for grants named "
                              "ec2-imaged-preflight on the key and revoke them");
        r = kms_revoke_grant(dist_clients_kms(&k->clients, region), key, made, &e);
        if (r >= 0 || (r == -EREMOTEIO && streq_ptr(e.code, "NotFoundException")))
                return strprintf("; grant %s was revoked", made);
        return strprintf("; grant %s is left on %s, revoking it failed (%s): revoke it by hand",
                         made, key, aws_error_describe(&e, r));
}

/*
 * DryRun CreateGrant of the grant create_grants would make on a key for a shared account (KMS
 * has DryRun since 2023). A KMS that ignores DryRun makes the grant: -EPROTO, named, since a
 * pre-flight must leave nothing behind and one that does cannot be trusted to have checked; the
 * grant it made is revoked.
 */
static int dry_grant(struct check *k, const char *region, const char *key, const char *account)
{
        _cleanup_free_ char *what = strprintf("KMS CreateGrant on %s for %s", key, account);
        _cleanup_free_ char *made = NULL, *revoked = NULL;
        struct aws_error e = {};
        int r;

        if (!what)
                return -ENOMEM;
        r = kms_create_grant_dry_run(dist_clients_kms(&k->clients, region), key, account, &made,
                                     &e);
        if (r == -EPROTO)
                revoked = revoke_made(k, region, key, made);
        if (r == -EPROTO && !k->why)
                k->why = strprintf("DryRun %s in %s: KMS made the grant (it ignored DryRun)%s",
                                   what, region, strempty(revoked));
        return dry(k, r, &e, what, region);
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
                for (char **a = k->cfg->dist_share_accounts;
                     r >= 0 && k->cfg->dist_create_grants && a && *a; a++)
                        r = dry_grant(k, region, kk.arn ? kk.arn : *key, *a);
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
                for (char **a = k->cfg->dist_share_accounts;
                     r >= 0 && k->cfg->dist_create_grants && a && *a; a++)
                        r = dry_grant(k, region, kk.arn ? kk.arn : key, *a);
                kms_key_done(&kk);
        }
        return r;
}

/*
 * The image the DryRuns of DeregisterImage and ModifySnapshotAttribute name: one of the lineage
 * that ec2-imaged made (tagged ec2-imaged:run-id), the only kind retention deregisters and the
 * only kind the shipped IAM policy lets it deregister (a DryRun on the instance's own AMI would
 * be refused by that condition), and the only snapshots known to be this account's before
 * CreateImage. k->probe stays zero when there is none yet: then retention has nothing to do
 * either. Looked up once.
 */
static int lineage_probe(struct check *k, struct ec2_client *c, const char *region)
{
        struct ec2_image *ims = NULL;
        struct aws_error e = {};
        size_t n = 0;
        int r;

        if (k->probed)
                return 0;
        r = ec2_describe_images_by_tag(c, TAG_LINEAGE, k->lineage, &ims, &n, &e);
        if (r < 0)
                return dist_fail(&k->why, r, &e, "retention", region);
        for (size_t i = 0; i < n; i++)
                if (image_tag(&ims[i], TAG_RUN_ID)) {
                        k->probe = ims[i];
                        ims[i] = (struct ec2_image){};
                        break;
                }
        ec2_images_free(ims, n);
        k->probed = true;
        return 0;
}

static int dry_deregister(struct check *k, struct ec2_client *c, const char *region)
{
        struct aws_error e = {};
        int r = lineage_probe(k, c, region);

        if (r < 0)
                return r;
        if (!k->probe.image_id)
                return strv_pushf(k->report,
                                  "DryRun DeregisterImage in %s: not tried, no image of lineage %s "
                                  "made by ec2-imaged yet",
                                  region, k->lineage);
        return dry(k, ec2_deregister_image(c, k->probe.image_id, false, true, &e), &e,
                   "DeregisterImage", region);
}

/*
 * Sharing gives the accounts createVolumePermission on the image's snapshots, which do not exist
 * before CreateImage: the DryRun names a snapshot of the lineage's image instead.
 */
static int dry_snapshot(struct check *k, struct ec2_client *c, const char *region)
{
        const char *snap;
        struct aws_error e = {};
        int r = lineage_probe(k, c, region);

        if (r < 0)
                return r;
        snap = k->probe.snapshot_ids ? k->probe.snapshot_ids[0] : NULL;
        if (!snap)
                return strv_pushf(k->report,
                                  "DryRun ModifySnapshotAttribute in %s: not tried, no snapshot "
                                  "of an image of lineage %s made by ec2-imaged yet",
                                  region, k->lineage);
        return dry(k,
                   ec2_add_create_volume_permission(
                           c, snap, (const char *const *)k->cfg->dist_share_accounts, true, &e),
                   &e, "ModifySnapshotAttribute", region);
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
        if (r >= 0 && k->cfg->dist_share_accounts)
                r = dry_snapshot(k, c, region);
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
                r = check_targets(&k, regions);
        if (r >= 0)
                r = dist_clients_open(&k.clients, ctx, regions);
        if (r >= 0)
                r = check_source(&k);
        if (r >= 0)
                r = check_keys(&k);
        for (char **s = regions; r >= 0 && s && *s; s++)
                r = check_calls(&k, *s, s == regions);
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
