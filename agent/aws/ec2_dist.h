/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The EC2 actions of distribution and lifecycle: copying an image to another region, sharing it
 * and its snapshots, deprecating it, finding a lineage's images by tag, and publishing an image
 * id in a launch template. Each is a small function on top of ec2_call() (ec2.h); the client is
 * per region, so a copy is made by a client of the destination region.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/ec2.h"

struct ec2_copy_image_args {
        const char *source_region;   /* required */
        const char *source_image_id; /* required */
        const char *name;            /* required */
        const char *description;
        bool encrypted;
        const char *kms_key_id;     /* key id, ARN or alias in the destination region; implies
                                       Encrypted */
        bool copy_image_tags;       /* CopyImageTags: the source image's own tags */
        const struct ec2_tag *tags; /* TagSpecification on the new image */
        size_t n_tags;
        const char *client_token; /* idempotency: the same token never makes a second copy */
        bool dry_run;
};

/* CopyImage in c's region. With dry_run, a permitted call sets *ret_image_id to NULL. */
int ec2_copy_image(struct ec2_client *c, const struct ec2_copy_image_args *a, char **ret_image_id,
                   struct aws_error *err);

enum ec2_share_kind {
        EC2_SHARE_ACCOUNT,      /* UserId */
        EC2_SHARE_ORGANIZATION, /* OrganizationArn */
        EC2_SHARE_OU,           /* OrganizationalUnitArn */
};

struct ec2_share {
        enum ec2_share_kind kind;
        const char *value;
};

/* ModifyImageAttribute: add launch permissions (LaunchPermission.Add.N.*). n must be > 0. */
int ec2_add_launch_permissions(struct ec2_client *c, const char *image_id,
                               const struct ec2_share *shares, size_t n, bool dry_run,
                               struct aws_error *err);
/* ModifySnapshotAttribute createVolumePermission add, for NULL-terminated account ids. */
int ec2_add_create_volume_permission(struct ec2_client *c, const char *snapshot_id,
                                     const char *const *account_ids, bool dry_run,
                                     struct aws_error *err);
/* EnableImageDeprecation at deprecate_at, an ISO 8601 UTC time ("2027-01-01T00:00:00Z"). */
int ec2_enable_image_deprecation(struct ec2_client *c, const char *image_id,
                                 const char *deprecate_at, bool dry_run, struct aws_error *err);
/* Images owned by this account carrying tag key=value. */
/* ModifyImageAttribute ImdsSupport=v2.0: instances launched from it require IMDSv2 tokens. */
int ec2_set_imds_v2_only(struct ec2_client *c, const char *image_id, bool dry_run,
                         struct aws_error *err);
/* Enable (without cooldown) or Disable ImageDeregistrationProtection. */
int ec2_set_deregistration_protection(struct ec2_client *c, const char *image_id, bool enable,
                                      bool dry_run, struct aws_error *err);
int ec2_describe_images_by_tag(struct ec2_client *c, const char *key, const char *value,
                               struct ec2_image **ret, size_t *ret_n, struct aws_error *err);

/*
 * Launch templates are named by id ("lt-" followed by hex digits) or by name; these calls send
 * LaunchTemplateId or LaunchTemplateName accordingly.
 */
struct ec2_lt_version {
        char *template_id;
        int64_t version;
        bool is_default;
        char *image_id; /* NULL when the version sets none */
};
void ec2_lt_versions_free(struct ec2_lt_version *v, size_t n);

/*
 * CreateLaunchTemplateVersion: a new version copied from source_version (NULL: none) with only
 * LaunchTemplateData.ImageId changed. *ret_version is the new version's number.
 */
int ec2_create_launch_template_version(struct ec2_client *c, const char *template,
                                       const char *source_version, const char *image_id,
                                       const char *description, const char *client_token,
                                       bool dry_run, int64_t *ret_version, struct aws_error *err);
/* ModifyLaunchTemplate: make version the default. */
int ec2_set_launch_template_default(struct ec2_client *c, const char *template, int64_t version,
                                    bool dry_run, struct aws_error *err);
/*
 * DescribeLaunchTemplateVersions. With template NULL, every template of the account (the
 * versions must then be "$Default" and/or "$Latest"); versions is NULL-terminated (NULL: all).
 */
int ec2_describe_launch_template_versions(struct ec2_client *c, const char *template,
                                          const char *const *versions, struct ec2_lt_version **ret,
                                          size_t *ret_n, struct aws_error *err);
/* DescribeLaunchTemplates: the ids of every launch template of the account (NULL-terminated). */
int ec2_describe_launch_template_ids(struct ec2_client *c, char ***ret, struct aws_error *err);

/*
 * DescribeVolumes of volume_ids (NULL-terminated, at least one): the KMS keys (as EC2 names them,
 * usually ARNs) of those that are encrypted, each once, NULL-terminated (empty when none is).
 */
int ec2_describe_volume_keys(struct ec2_client *c, const char *const *volume_ids, char ***ret,
                             struct aws_error *err);

/* Parsers of the answers, exposed for the unit tests and the fuzzer (errors as in ec2.h). */
int ec2_parse_copy_image(const char *body, size_t len, char **ret_image_id);
int ec2_parse_create_lt_version(const char *body, size_t len, int64_t *ret_version);
int ec2_parse_lt_versions(const char *body, size_t len, struct ec2_lt_version **ret, size_t *ret_n);
int ec2_parse_lt_ids(const char *body, size_t len, char ***ret);
int ec2_parse_volume_keys(const char *body, size_t len, char ***ret);
/* The <return> of answers like EnableImageDeprecation: -EBADMSG unless it is "true". */
int ec2_parse_return_true(const char *body, size_t len, const char *root_name);
