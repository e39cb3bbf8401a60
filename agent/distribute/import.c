/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The recipient's import of a shared image (see import.h): the pre-flight that says what is
 * missing, the copy made once (adopted after a lost answer), the wait, the tags and publishing.
 */
#include "distribute/import.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "aws/awsjson.h"
#include "aws/ec2_dist.h"
#include "aws/sigv4.h"
#include "distribute/distribute_aws.h"
#include "distribute/distribute_publish.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/str.h"

/* The ClientToken: "import-" and the first 40 hex digits of a SHA-256 (EC2 takes 64 at most). */
#define TOKEN_HEX 40

struct import {
        struct ec2_client *src_ec2, *ec2;
        struct awsjson_client *kms, *ssm;
        const struct import_request *req;
        struct ec2_image source; /* DescribeImages' answer for the source image */
        char *from;              /* TAG_IMPORTED_FROM's value: "ACCOUNT/IMAGE_ID" */
        const char *name;        /* of the copy */
        struct kms_key key;      /* this account's key */
        struct import_result res;
        char *why;
};

/* The copy's tags: TAG_IMPORTED_FROM, then the request's own (a run's rendered tags). */
static size_t copy_tags(const struct import *im, struct ec2_tag tags[static IMPORT_TAGS_MAX])
{
        size_t n = 0;

        tags[n++] = (struct ec2_tag){TAG_IMPORTED_FROM, im->from};
        for (size_t i = 0; i < im->req->n_tags && n < IMPORT_TAGS_MAX; i++)
                tags[n++] = im->req->tags[i];
        return n;
}

void import_result_done(struct import_result *r)
{
        if (!r)
                return;
        free(r->image_id);
        free(r->source_account);
        free(r->kms_key_arn);
        free(r->lt_version);
        *r = (struct import_result){};
}

static const char *account(const struct import *im)
{
        return im->req->account ? im->req->account : "this account";
}

/* The source image as this account sees it: -ENOENT when it is not shared with it. */
static int find_source(struct import *im)
{
        const struct import_request *req = im->req;
        struct aws_error e = {};
        int r;

        /* EC2 answers an image it does not show this account as one it does not know. */
        r = ec2_describe_image_any_owner(im->src_ec2, req->source_image_id, &im->source, &e);
        if (r == -ENOENT) {
                im->why = strprintf("image %s in %s is not shared with %s (or does not exist); "
                                    "ask its owner to share it (launch permission) with this "
                                    "account",
                                    req->source_image_id, req->source_region, account(im));
                return im->why ? -ENOENT : -ENOMEM;
        }
        if (r < 0)
                return dist_fail(&im->why, r, &e, "DescribeImages (the source image)",
                                 req->source_region);
        return 0;
}

/*
 * The key that encrypts the source's snapshots must be usable by this account: with a grant or
 * a key policy that allows it, DescribeKey answers. Checked with a client of the key's region.
 */
static int check_source_key(struct import *im)
{
        const struct import_request *req = im->req;
        struct awsjson_client *kms = req->source_kms;
        struct kms_key k = {};
        struct aws_error e = {};
        int r;

        if (!im->source.kms_key_id)
                return 0;
        if (!kms && streq(req->source_region, req->region))
                kms = im->kms;
        if (!kms) {
                log_info("The key %s of %s is not checked: no KMS client of %s",
                         im->source.kms_key_id, req->source_image_id, req->source_region);
                return 0;
        }
        r = kms_describe_key(kms, im->source.kms_key_id, &k, &e);
        kms_key_done(&k);
        if (r == -EREMOTEIO) {
                im->why = strprintf("the KMS key %s that encrypts %s's snapshots grants %s no "
                                    "access (DescribeKey: %s%s%s); ask the image's owner for a "
                                    "grant or a key policy statement for this account",
                                    im->source.kms_key_id, req->source_image_id, account(im),
                                    strna(e.code), e.message ? ": " : "", strempty(e.message));
                aws_error_done(&e);
                return -EACCES;
        }
        if (r < 0)
                return dist_fail(&im->why, r, &e, "KMS DescribeKey (the source key)",
                                 req->source_region);
        return 0;
}

/* This account's key: it must exist, be Enabled and be a customer-managed key. */
static int check_own_key(struct import *im)
{
        const struct import_request *req = im->req;
        int r;

        r = dist_describe_key(im->kms, req->region, req->kms_key, &im->key, &im->why);
        if (r < 0)
                return r;
        if (dist_key_is_aws_managed(req->kms_key, &im->key)) {
                im->why = strprintf("the KMS key %s (%s) in %s is AWS-managed: its copies cannot "
                                    "be shared on or granted to anyone; give --kms-key a "
                                    "customer-managed key of %s",
                                    req->kms_key, strna(im->key.arn), req->region, account(im));
                return -EPERM;
        }
        return 0;
}

static int preflight(struct import *im)
{
        const struct import_request *req = im->req;
        int r;

        r = find_source(im);
        if (r < 0)
                return r;
        im->res.source_account =
                strdup(req->source_account ? req->source_account : strempty(im->source.owner_id));
        im->from = strprintf("%s/%s", im->res.source_account, req->source_image_id);
        im->name = req->name ? req->name : im->source.name;
        if (!im->res.source_account || !im->from)
                return -ENOMEM;
        if (!*im->res.source_account) {
                im->why = strprintf("DescribeImages in %s names no owner of %s", req->source_region,
                                    req->source_image_id);
                return -EBADMSG;
        }
        if (!im->name || !*im->name) {
                im->why = strprintf("%s has no name; give the copy one (--name)",
                                    req->source_image_id);
                return -EINVAL;
        }
        r = check_source_key(im);
        if (r >= 0)
                r = check_own_key(im);
        return r;
}

/* Whether an image of this account is the copy of this source (by tag, else description). */
static bool is_ours(const struct import *im, const struct ec2_image *i)
{
        const char *from = NULL;

        for (size_t k = 0; k < i->n_tags; k++)
                if (streq(i->tags[k].key, TAG_IMPORTED_FROM))
                        from = i->tags[k].value;
        if (from)
                return streq(from, im->from);
        return i->description && strstr(i->description, im->from);
}

/*
 * An earlier import (whose CopyImage answer may have been lost) left the copy under the name:
 * adopt it (1). 0 when the name is free; -EEXIST when another image holds it.
 */
static int find_copy(struct import *im)
{
        const struct import_request *req = im->req;
        struct ec2_image *ims = NULL;
        struct aws_error e = {};
        size_t n = 0;
        int r;

        r = ec2_describe_own_images(im->ec2, "name", im->name, NULL, &ims, &n, &e);
        if (r < 0)
                return dist_fail(&im->why, r, &e, "DescribeImages", req->region);
        for (size_t i = 0; r == 0 && i < n; i++) {
                if (!is_ours(im, &ims[i])) {
                        im->why = strprintf("an image named '%s' (%s) in %s was not imported "
                                            "from %s; give the copy another name (--name)",
                                            im->name, ims[i].image_id, req->region, im->from);
                        r = -EEXIST;
                } else {
                        log_info("Found %s in %s, imported from %s before", ims[i].image_id,
                                 req->region, im->from);
                        im->res.image_id = strdup(ims[i].image_id);
                        r = im->res.image_id ? 1 : -ENOMEM;
                }
        }
        ec2_images_free(ims, n);
        return r;
}

/* "import-" and a digest of what makes a copy this copy: the same import, the same token. */
static int client_token(const struct import *im, const char *suffix, char **ret)
{
        const struct import_request *req = im->req;
        _cleanup_free_ char *what = NULL;
        char hex[65];
        int r;

        what = strprintf("%s\n%s\n%s\n%s\n%s", req->source_image_id, req->source_region,
                         req->region, im->key.arn ? im->key.arn : req->kms_key, suffix);
        if (!what)
                return -ENOMEM;
        r = sigv4_sha256_hex(what, strlen(what), hex);
        if (r < 0)
                return r;
        hex[TOKEN_HEX] = '\0';
        *ret = strprintf("import-%s", hex);
        return *ret ? 0 : -ENOMEM;
}

static int copy(struct import *im)
{
        const struct import_request *req = im->req;
        _cleanup_free_ char *token = NULL, *desc = NULL;
        struct ec2_tag tags[IMPORT_TAGS_MAX];
        struct aws_error e = {};
        int r;

        r = find_copy(im);
        if (r != 0) {
                im->res.adopted = r > 0;
                return r < 0 ? r : 0;
        }
        r = client_token(im, "copy", &token);
        desc = strprintf("ec2-imaged import of %s from %s", im->from, req->source_region);
        if (r < 0 || !desc)
                return r < 0 ? r : -ENOMEM;
        r = ec2_copy_image(im->ec2,
                           &(struct ec2_copy_image_args){
                                   .source_region = req->source_region,
                                   .source_image_id = req->source_image_id,
                                   .name = im->name,
                                   .description = desc,
                                   .encrypted = true,
                                   .kms_key_id = req->kms_key,
                                   .tags = tags,
                                   .n_tags = copy_tags(im, tags),
                                   .client_token = token,
                           },
                           &im->res.image_id, &e);
        if (r < 0 && streq_ptr(e.code, "InvalidAMIName.Duplicate")) {
                /* Taken since the look above, by our copy (not listed yet) or another image. */
                aws_error_done(&e);
                r = find_copy(im);
                if (r == 0)
                        im->why = strprintf("CopyImage in %s: InvalidAMIName.Duplicate, and no "
                                            "image named '%s' is visible yet; try again",
                                            req->region, im->name);
                im->res.adopted = r > 0;
                return r < 0 ? r : r == 0 ? -EAGAIN : 0;
        }
        if (r < 0) /* made all the same? The next import finds it by name and adopts it. */
                return dist_fail(&im->why, r, &e, "CopyImage", req->region);
        log_notice("CopyImage %s (%s) from %s -> %s in %s", req->source_image_id, im->from,
                   req->source_region, im->res.image_id, req->region);
        return 0;
}

/* The tag on the copy's snapshots too (and again on the copy: not every EC2 keeps CopyImage's). */
static int tag(struct import *im)
{
        const struct import_request *req = im->req;
        struct ec2_tag tags[IMPORT_TAGS_MAX];
        struct ec2_image *ims = NULL;
        struct aws_error e = {};
        char **ids = NULL;
        size_t n = 0;
        int r;

        r = ec2_describe_own_images(im->ec2, NULL, NULL, im->res.image_id, &ims, &n, &e);
        if (r < 0)
                return dist_fail(&im->why, r, &e, "DescribeImages", req->region);
        r = strv_push(&ids, im->res.image_id);
        for (char **s = n > 0 ? ims[0].snapshot_ids : NULL; r >= 0 && s && *s; s++)
                r = strv_push(&ids, *s);
        ec2_images_free(ims, n);
        if (r >= 0) {
                r = ec2_create_tags(im->ec2, (const char *const *)ids, tags, copy_tags(im, tags),
                                    false, &e);
                if (r < 0)
                        r = dist_fail(&im->why, r, &e, "CreateTags", req->region);
        }
        strv_free(ids);
        return r;
}

static int publish(struct import *im)
{
        const struct import_request *req = im->req;
        _cleanup_free_ char *token = NULL, *desc = NULL;
        int r = 0;

        if (req->launch_template) {
                r = client_token(im, "launch-template", &token);
                desc = strprintf("ec2-imaged import of %s", im->from);
                if (r >= 0 && !desc)
                        r = -ENOMEM;
                if (r >= 0)
                        r = dist_lt_version(
                                im->ec2, req->region, req->launch_template,
                                req->lt_source_version ? req->lt_source_version : "$Default",
                                im->res.image_id, desc, token, &im->res.lt_version, &im->why);
                if (r >= 0)
                        r = dist_lt_set_default(im->ec2, req->region, req->launch_template,
                                                im->res.lt_version, &im->why);
                if (r >= 0)
                        log_notice("Launch template %s version %s uses %s (the default now)",
                                   req->launch_template, im->res.lt_version, im->res.image_id);
        }
        if (r >= 0 && req->ssm_parameter)
                r = dist_publish_ssm(im->ssm, req->region, req->ssm_parameter, im->res.image_id,
                                     &im->why);
        return r;
}

static int check_request(const struct import_request *req, struct ec2_client *src_ec2,
                         struct ec2_client *ec2, struct awsjson_client *kms,
                         struct awsjson_client *ssm, char **why)
{
        if (!req || !req->source_image_id || !req->source_region || !req->region)
                return -EINVAL;
        if (!src_ec2 || !ec2 || !kms || (req->ssm_parameter && !ssm))
                return -EINVAL;
        if (!req->kms_key || !*req->kms_key) {
                *why = strprintf("no KMS key for the copy in %s: give one of this account's "
                                 "customer-managed keys (--kms-key)",
                                 req->region);
                return -EINVAL;
        }
        if (!startswith(req->source_image_id, "ami-")) {
                *why = strprintf("'%s' is not an image id (ami-...)", req->source_image_id);
                return -EINVAL;
        }
        return 0;
}

int import_image(struct ec2_client *src_ec2, struct ec2_client *ec2, struct awsjson_client *kms,
                 struct awsjson_client *ssm, const struct import_request *req,
                 struct import_result *ret, char **ret_why)
{
        struct import im = {.src_ec2 = src_ec2, .ec2 = ec2, .kms = kms, .ssm = ssm, .req = req};
        int r;

        r = check_request(req, src_ec2, ec2, kms, ssm, &im.why);
        if (r >= 0)
                r = preflight(&im);
        if (r >= 0)
                r = copy(&im);
        if (r >= 0)
                r = dist_wait_image(
                        ec2, req->region, im.res.image_id,
                        &(struct dist_wait){
                                .timeout_s = req->wait_timeout_s ? req->wait_timeout_s : 3600,
                                .poll_max_s = req->wait_poll_max_s ? req->wait_poll_max_s : 60,
                                .what = "the imported copy",
                        },
                        &im.why);
        if (r >= 0)
                r = tag(&im);
        if (r >= 0)
                r = publish(&im);
        if (r >= 0 && im.key.arn && !(im.res.kms_key_arn = strdup(im.key.arn)))
                r = -ENOMEM;
        if (r >= 0) {
                *ret = im.res;
                im.res = (struct import_result){};
        } else {
                *ret_why = im.why ? TAKE_PTR(im.why) : strdup(strerror(-r));
        }
        import_result_done(&im.res);
        ec2_image_done(&im.source);
        kms_key_done(&im.key);
        free(im.from);
        free(im.why);
        return r;
}
