/* SPDX-License-Identifier: Apache-2.0 */
/* The pre-flight's DryRuns of the run's calls (see distribute_check_internal.h). */
#include "distribute/distribute_check_internal.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aws/awsjson.h"
#include "aws/ec2_boot.h"
#include "aws/kms.h"
#include "aws/vocab.h"
#include "core/config.h"
#include "core/context.h"
#include "core/imagetags.h"
#include "distribute/distribute.h"
#include "distribute/distribute_grants.h"
#include "distribute/distribute_internal.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/str.h"

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
 * DryRun CreateGrant of the grant the run would make on a key for an account (KMS has DryRun
 * since 2023). A KMS that ignores DryRun makes the grant: -EPROTO, named, since a pre-flight must
 * leave nothing behind and one that does cannot be trusted to have checked; the grant it made is
 * revoked.
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

/* DryRun CreateGrant on key for each account the run grants it to (dist_grantees()). */
int dist_check_grants(struct check *k, const char *region, const char *key)
{
        _cleanup_strv_free_ char **grantees = NULL;
        int r = dist_grantees(k->cfg, &grantees);

        for (char **a = grantees; r >= 0 && a && *a; a++)
                r = dry_grant(k, region, key, *a);
        return r;
}

/*
 * The image the DryRuns of DeregisterImage, ModifySnapshotAttribute, ModifyImageAttribute
 * ImdsSupport and EnableImageDeregistrationProtection name: the newest of the lineage that
 * ec2-imaged made (tagged ec2-imaged:run-id), the only kind retention deregisters and the only
 * kind the shipped IAM policy lets it deregister (a DryRun on the instance's own AMI would be
 * refused by that condition), and the only snapshots known to be this account's before
 * CreateImage. k->probe stays zero when there is none yet: then retention has nothing to do
 * either. Looked up once.
 */
static int lineage_probe(struct check *k, struct ec2_client *c, const char *region)
{
        struct ec2_image *ims = NULL;
        struct aws_error e = {};
        size_t n = 0, newest = SIZE_MAX;
        int r;

        if (k->probed)
                return 0;
        r = ec2_describe_images_by_tag(c, TAG_LINEAGE, k->lineage, &ims, &n, &e);
        if (r < 0)
                return dist_fail(&k->why, r, &e, "retention", region);
        /* CreationDate is ISO 8601 in UTC: the strings sort as the times do. */
        for (size_t i = 0; i < n; i++)
                if (image_tag(&ims[i], TAG_RUN_ID) &&
                    (newest == SIZE_MAX || strcmp(strempty(ims[i].creation_date),
                                                  strempty(ims[newest].creation_date)) > 0))
                        newest = i;
        if (newest != SIZE_MAX) {
                k->probe = ims[newest];
                ims[newest] = (struct ec2_image){};
        }
        ec2_images_free(ims, n);
        k->probed = true;
        return 0;
}

/* A DryRun that needs an image of the lineage, before its first: said so, and passed. */
static int not_tried(struct check *k, const char *what, const char *region)
{
        return strv_pushf(k->report,
                          "DryRun %s in %s: not tried, no image of lineage %s made by ec2-imaged "
                          "yet",
                          what, region, k->lineage);
}

static int dry_deregister(struct check *k, struct ec2_client *c, const char *region)
{
        struct aws_error e = {};
        int r = lineage_probe(k, c, region);

        if (r < 0)
                return r;
        if (!k->probe.image_id)
                return not_tried(k, "DeregisterImage", region);
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
 * [image] imds_v2_only and [distribute] protect_published act on the run's image, which does not
 * exist yet: their DryRuns name the lineage's newest image (lineage_probe()) instead.
 */
static int dry_image_settings(struct check *k, struct ec2_client *c, const char *region)
{
        static const char imds[] = "ModifyImageAttribute ImdsSupport",
                          protect[] = "EnableImageDeregistrationProtection";
        struct aws_error e = {};
        const char *im;
        int r = 0;

        if (!k->cfg->image_imds_v2_only && !k->cfg->dist_protect_published)
                return 0;
        r = lineage_probe(k, c, region);
        im = k->probe.image_id;
        if (r >= 0 && k->cfg->image_imds_v2_only)
                r = im ? dry(k, ec2_set_imds_v2_only(c, im, true, &e), &e, imds, region)
                       : not_tried(k, imds, region);
        if (r >= 0 && k->cfg->dist_protect_published)
                r = im ? dry(k, ec2_set_deregistration_protection(c, im, true, true, &e), &e,
                             protect, region)
                       : not_tried(k, protect, region);
        return r;
}

/*
 * [boot_check]: RunInstances as the check sends it (dist_boot_check_launch()), of this
 * instance's own AMI, the new image not existing yet; not tried when that image is gone
 * (deregistered since the instance was launched). An EC2 that ignored DryRun and launched an
 * instance: it is terminated, and -EPROTO, named.
 */
static int dry_boot_check(struct check *k, struct ec2_client *c, const char *region)
{
        const char *ami = k->ctx->identity.image_id;
        _cleanup_free_ char *made = NULL;
        struct aws_error e = {};
        int r;

        if (!k->cfg->boot_check_enable)
                return 0;
        r = dist_boot_check_launch(c, k->cfg, ami, "preflight", true, &made, &e);
        if (r == -EREMOTEIO && startswith(strempty(e.code), "InvalidAMIID.")) {
                r = strv_pushf(k->report,
                               "DryRun RunInstances in %s: not tried, this instance's image %s "
                               "is gone (%s)",
                               region, ami, e.code);
                aws_error_done(&e);
                return r;
        }
        if (r >= 0 && made) {
                r = ec2_terminate_instance(c, made, &e);
                aws_error_done(&e);
                if (!k->why)
                        k->why = strprintf("DryRun RunInstances in %s: EC2 launched %s (it "
                                           "ignored DryRun)%s",
                                           region, made,
                                           r < 0 ? "; cannot terminate it" : ", terminated");
                return -EPROTO;
        }
        return dry(k, r, &e, "RunInstances", region);
}

/* Launch template words (REGION:NAME, or NAME for the run's region): a version, the default. */
static int dry_launch_template(struct check *k, struct ec2_client *c, const char *region)
{
        const char *lt = dist_word_for(k->cfg->dist_launch_template, region, k->ctx->region, false);
        struct aws_error e = {};
        int64_t v;
        int r;

        if (!lt)
                return 0;
        /*
         * The stand-in image may not exist in another region: EC2 does not check a launch
         * template's parameters until an instance is launched from it.
         */
        r = dry(k,
                ec2_create_launch_template_version(c, lt, NULL, k->ctx->identity.image_id, NULL,
                                                   NULL, true, &v, &e),
                &e, "CreateLaunchTemplateVersion", region);
        if (r >= 0)
                r = dry(k, ec2_set_launch_template_default(c, lt, 1, true, &e), &e,
                        "ModifyLaunchTemplate", region);
        return r;
}

/*
 * The DryRun calls. Most name the instance's own AMI, which exists in the run's region only:
 * there every step is tried; in a destination region, CopyImage (its source is in the run's
 * region) and the launch template's. IAM permissions rarely differ between regions.
 */
int dist_check_calls(struct check *k, const char *region, bool own)
{
        struct ec2_client *c = dist_clients_ec2(&k->clients, region);
        const char *probe = k->ctx->identity.image_id; /* an image EC2 knows of */
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
        if (r >= 0 && !own)
                r = dry_launch_template(k, c, region);
        if (!own || r < 0)
                return r;
        r = dry_boot_check(k, c, region);
        if (r >= 0)
                r = dry_image_settings(k, c, region);
        if (r >= 0 && distribute_sharing(k->cfg)) {
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
        if (r >= 0)
                r = dry_launch_template(k, c, region);
        return r;
}
