/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The recipient's side of encrypted sharing: copy an image that another account shared with this
 * one into this account, encrypted with this account's KMS key, wait until it is available, and
 * publish it (launch template, SSM parameter) when asked. `ec2-imaged import` calls it with the
 * clients of the caller's credentials; a run that pushes into a target account (target_accounts)
 * calls it with clients that carry the credentials of the role it assumed there. It reads no
 * configuration and never asks IMDS for anything: every client, region and key is given.
 *
 * Pre-flight first, each failure named precisely (-errno and *ret_why): the source image is not
 * visible to this account (not shared, or no such image: -ENOENT), its snapshots' KMS key cannot
 * be described by this account (no grant or key policy for it: -EACCES, naming the key), this
 * account's key is AWS-managed (-EPERM) or not Enabled (-EPERM), or does not exist. Then, once:
 * an image of this account named req->name (or the source's name) that carries the
 * ec2-imaged:imported-from tag of this source is adopted (a CopyImage whose answer was lost);
 * otherwise CopyImage with Encrypted, the key and a ClientToken made of the source image, the
 * region and the key (so EC2 makes one copy however often it is asked). An image of that name
 * imported from elsewhere, or not by ec2-imaged, is refused (-EEXIST).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct awsjson_client;
struct ec2_client;

/* The tag every imported image carries: "SOURCE_ACCOUNT/SOURCE_IMAGE_ID". */
#define TAG_IMPORTED_FROM "ec2-imaged:imported-from"
/* EC2's limit of tags on a resource: TAG_IMPORTED_FROM and the request's tags. */
#define IMPORT_TAGS_MAX 50

struct ec2_tag;

struct import_request {
        const char *source_image_id;   /* required */
        const char *source_region;     /* required: where the shared image is */
        const char *source_account;    /* NULL: DescribeImages' OwnerId of the source image */
        const char *region;            /* required: where the copy is made (ec2's, kms's region) */
        const char *account;           /* NULL: not known; this account's id, for the messages */
        const char *kms_key;           /* required: this account's key (id, ARN or alias) */
        const char *name;              /* NULL: the source image's name */
        const char *ssm_parameter;     /* NULL: none; the copy's id is put there (aws:ec2:image) */
        const char *launch_template;   /* NULL: none; a new version with the copy, made default */
        const char *lt_source_version; /* NULL: "$Default"; what the new version is made from */
        /* More tags for the copy and its snapshots (a run's rendered [image] tags); n_tags 0: none
         */
        const struct ec2_tag *tags;
        size_t n_tags;
        unsigned wait_timeout_s;  /* 0: 3600; how long the copy may stay pending */
        unsigned wait_poll_max_s; /* 0: 60; the longest pause between two looks */
        /*
         * A KMS client of source_region, to check that this account may use the source image's
         * key; NULL: kms when the regions are the same, else the check is left to CopyImage.
         */
        struct awsjson_client *source_kms;
};

struct import_result {
        char *image_id;       /* the copy in req->region */
        char *source_account; /* the source image's owner */
        char *kms_key_arn;    /* DescribeKey's ARN of req->kms_key */
        char *lt_version;     /* the launch template version made (or reused); NULL: none */
        bool adopted;         /* the copy existed already (an earlier import), none was made */
};
void import_result_done(struct import_result *r);

/*
 * Import req->source_image_id. src_ec2: an EC2 client of req->source_region (may be ec2 itself
 * when the regions are the same); ec2, kms, ssm: clients of req->region, all with this account's
 * credentials (ssm may be NULL without req->ssm_parameter). On success 0 and *ret filled (the
 * caller frees it with import_result_done()); on failure -errno and *ret_why (freed by the
 * caller) says what is missing or what AWS answered, with the AWS error code.
 */
int import_image(struct ec2_client *src_ec2, struct ec2_client *ec2, struct awsjson_client *kms,
                 struct awsjson_client *ssm, const struct import_request *req,
                 struct import_result *ret, char **ret_why);
