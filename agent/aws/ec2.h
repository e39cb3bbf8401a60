/* SPDX-License-Identifier: Apache-2.0 */
/*
 * EC2 Query API client: form-encoded POSTs signed with SigV4, XML answers parsed with libxml2,
 * retries for throttling and 5xx. Each API call is one small function on top of ec2_call().
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <libxml/tree.h>

#include "util/macro.h"
#include "util/timeutil.h"
#include "aws/signed_post.h"

struct creds_provider;
struct ec2_tag;

struct ec2_client_config {
        const char *region;       /* required */
        const char *endpoint_url; /* config key; env AWS_ENDPOINT_URL_EC2, AWS_ENDPOINT_URL win */
        struct aws_transport transport;
};

struct ec2_client;
int ec2_client_new(const struct ec2_client_config *cfg, struct creds_provider *creds,
                   struct ec2_client **ret);
struct ec2_client *ec2_client_free(struct ec2_client *c);
const char *ec2_client_endpoint(const struct ec2_client *c);
const char *ec2_client_region(const struct ec2_client *c);
/* Share a region's rate limit and retry quota (budget.h); NULL: none. */
void ec2_client_set_budget(struct ec2_client *c, struct aws_budget *b);
/* Attempts made by the most recent ec2_call() (1 when the first one settled it; 0 before any). */
unsigned ec2_client_last_attempts(const struct ec2_client *c);

/* Query parameters, kept in insertion order; encoded and sorted when sent. */
struct ec2_params;
int ec2_params_new(struct ec2_params **ret);
struct ec2_params *ec2_params_free(struct ec2_params *p);
int ec2_params_add(struct ec2_params *p, const char *name, const char *value);
int ec2_params_addf(struct ec2_params *p, const char *value, const char *name_fmt, ...)
        __attribute__((format(printf, 3, 4)));
/*
 * A new list with the name, value pairs up to a NULL name; a pair whose value is NULL is left out
 * (an optional parameter not given). *ret is set only on success.
 */
int ec2_params_build(struct ec2_params **ret, ...) __attribute__((sentinel));
/* Like ec2_params_add, but a name already there gets the new value (NextToken of a next page). */
int ec2_params_set(struct ec2_params *p, const char *name, const char *value);
/*
 * The request body: "Action=A&Version=2016-11-15&" then the parameters sorted by name (bytewise),
 * names and values percent-encoded with AWS's rules except that a space is '+' (byte for byte what
 * botocore sends). p may be NULL. -EINVAL for an action that is not alphanumeric. Exposed for the
 * unit tests.
 */
int ec2_params_encode(const struct ec2_params *p, const char *action, char **ret, size_t *ret_len);

/*
 * One call. 0 and the parsed answer on success (its root is <ActionResponse>; ret_doc may be
 * NULL). -EREMOTEIO when AWS answered with an error (err filled with its code, message and request
 * id). -EBADMSG for an answer that is not the XML we expect (err->http_status kept); a 2xx one is
 * never retried, since the call may have taken effect. -ETIME when the attempts or the deadline
 * ran out (err holds the last AWS answer, if any). -EFBIG for an answer over max_body. -ENOKEY
 * (or the provider's error) without credentials. Other transport errors as in http.h.
 * Throttling codes, 500/502/503/504 and transient transport errors are retried with full-jitter
 * backoff; every attempt is signed afresh. ec2_client_last_attempts() tells how many were made.
 */
int ec2_call(struct ec2_client *c, const char *action, struct ec2_params *params, xmlDoc **ret_doc,
             struct aws_error *err);
/*
 * The same Query protocol for another service (STS): a client whose signing name and host are
 * service (https://SERVICE.REGION.amazonaws.com) and whose endpoint variable is
 * AWS_ENDPOINT_URL_<env_name>, and a call with that service's API version (STS: 2011-06-15). The
 * answer's root must be <ActionResponse>, errors as above. secret_answer: the answer carries
 * credentials, so its body is wiped once parsed (the caller wipes the document's text).
 */
int ec2_query_client_new(const char *service, const char *env_name,
                         const struct ec2_client_config *cfg, struct creds_provider *creds,
                         struct ec2_client **ret);
int ec2_query_call(struct ec2_client *c, const char *version, const char *action,
                   struct ec2_params *params, bool secret_answer, xmlDoc **ret_doc,
                   struct aws_error *err);
/* Limits for the next call only: see signed_post_limit_next() in signed_post.h. */
void ec2_client_limit_next_call(struct ec2_client *c, bool once, unsigned deadline_ms);

/*
 * For the call files (ec2_calls.c, ec2_dist.c): run a mutating call, with DryRun=true added under
 * dry_run, mapping DryRunOperation to 0 and UnauthorizedOperation under dry_run to -EPERM (err
 * filled); the same for a call that answers with a new <imageId> (CreateImage, CopyImage), which
 * sets *ret_image_id to NULL under a permitted dry_run; and add prefix.N.Key/Value for each tag,
 * N from 1.
 */
int ec2_call_mutating(struct ec2_client *c, const char *action, struct ec2_params *p, bool dry_run,
                      xmlDoc **ret_doc, struct aws_error *err);
int ec2_call_image_id(struct ec2_client *c, const char *action, struct ec2_params *p, bool dry_run,
                      char **ret_image_id, struct aws_error *err);
int ec2_params_add_tags(struct ec2_params *p, const char *prefix, const struct ec2_tag *tags,
                        size_t n);
/* Parse body and check that its root element is root_name (e.g. "CopyImageResponse"). */
int ec2_parse_answer(const char *body, size_t len, const char *root_name, xmlDoc **ret);
/* The non-empty <imageId> of a CreateImage or CopyImage answer (root_name) in body. */
int ec2_parse_image_id(const char *body, size_t len, const char *root_name, char **ret);
/* Parsers treat a missing required element as a malformed answer. */
static inline int ec2_required(int r)
{
        return r == -ENOENT ? -EBADMSG : r;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(struct ec2_params *, ec2_params_free);
#define _cleanup_params_ _cleanup_(ec2_params_freep)

/*
 * DryRun helpers: mutating calls take dry_run; with it they return 0 when AWS says
 * DryRunOperation (allowed) and -EPERM with err filled on UnauthorizedOperation.
 */

struct ec2_block_device {
        char *device_name;
        char *volume_id; /* NULL for instance-store */
};

/*
 * A product code of an instance or an image (DescribeInstances, DescribeImages productCodes):
 * type "marketplace" for AWS Marketplace (EC2 refuses to share such an image with another
 * account or to let another account copy it), "devpay" for the old DevPay.
 */
struct ec2_product_code {
        char *code;
        char *type; /* NULL when not given */
};
void ec2_product_codes_free(struct ec2_product_code *pc, size_t n);
/* The first code of type marketplace among pc, or NULL. */
const struct ec2_product_code *ec2_marketplace_code(const struct ec2_product_code *pc, size_t n);

struct ec2_instance {
        char *instance_id;
        char *state;
        char *root_device_name;
        char *root_device_type;
        char *image_id;
        char *architecture;
        struct ec2_block_device *devices;
        size_t n_devices;
        struct ec2_product_code *product_codes;
        size_t n_product_codes;
};
void ec2_instance_done(struct ec2_instance *i);

struct ec2_tag {
        const char *key;
        const char *value;
};

struct ec2_image_tag {
        char *key;
        char *value;
};

struct ec2_image {
        char *image_id;
        char *owner_id; /* the account that owns it; NULL when not given */
        char *name;
        char *description;
        char *state; /* pending, available, failed, error, ... */
        char *state_reason;
        char *creation_date;
        char *deprecation_time;          /* NULL when not deprecated */
        char *deregistration_protection; /* "disabled", "enabled...", or NULL when not given */
        char **snapshot_ids;             /* NULL-terminated */
        char *kms_key_id; /* of the first encrypted snapshot; NULL when none is encrypted */
        struct ec2_image_tag *tags;
        size_t n_tags;
        struct ec2_product_code *product_codes;
        size_t n_product_codes;
};
void ec2_image_done(struct ec2_image *im);
void ec2_images_free(struct ec2_image *ims, size_t n);

struct ec2_create_image_args {
        const char *instance_id;
        const char *name;
        const char *description;
        bool no_reboot;
        const struct ec2_tag *tags; /* applied to the image and its snapshots (TagSpecification) */
        size_t n_tags;
        /*
         * Tag only the image here; the caller tags the snapshots with ec2_create_tags() once
         * DescribeImages lists them. moto (5.x) answers a snapshot TagSpecification in CreateImage
         * with HTTP 500 (NotImplementedError), which EC2 itself accepts.
         */
        bool no_snapshot_tags;
        bool dry_run;
};

/* The instance's description; -ENOENT when AWS answered with no instance at all. */
int ec2_describe_instance(struct ec2_client *c, const char *instance_id, struct ec2_instance *ret,
                          struct aws_error *err);
/* With dry_run, a permitted call returns 0 and sets *ret_image_id to NULL. */
int ec2_create_image(struct ec2_client *c, const struct ec2_create_image_args *a,
                     char **ret_image_id, struct aws_error *err);
/*
 * DescribeImages of one image whoever owns it (public, shared with this account, or its own):
 * the image an instance was launched from. -ENOENT when EC2 lists none or answers
 * InvalidAMIID.NotFound / InvalidAMIID.Unavailable (a deregistered image).
 */
int ec2_describe_image_any_owner(struct ec2_client *c, const char *image_id, struct ec2_image *ret,
                                 struct aws_error *err);
/*
 * DescribeImages of this account's images, with one filter (NULL: none), e.g. "name" or
 * "tag:KEY", whose value is value, and/or one image id (NULL: any); -EINVAL for a filter without
 * a value.
 */
int ec2_describe_own_images(struct ec2_client *c, const char *filter, const char *value,
                            const char *image_id, struct ec2_image **ret, size_t *ret_n,
                            struct aws_error *err);
int ec2_create_tags(struct ec2_client *c, const char *const *resource_ids,
                    const struct ec2_tag *tags, size_t n_tags, bool dry_run, struct aws_error *err);
/*
 * With delete_snapshots, the image's snapshots are looked up first, DeleteAssociatedSnapshots is
 * asked for, and each snapshot is then deleted explicitly (InvalidSnapshot.NotFound, meaning EC2
 * already did it, is fine): not every EC2 implementation honours the parameter.
 */
int ec2_deregister_image(struct ec2_client *c, const char *image_id, bool delete_snapshots,
                         bool dry_run, struct aws_error *err);
int ec2_delete_snapshot(struct ec2_client *c, const char *snapshot_id, bool dry_run,
                        struct aws_error *err);

/*
 * Parsers of EC2 XML, exposed for the fuzz targets and unit tests. -EBADMSG for a body that is not
 * well-formed, carries a DTD, has another root element or lacks a required element; -EFBIG past
 * XML_MAX_BODY (xml.h); ec2_parse_instance: -ENOENT for an answer without instances.
 */
int ec2_parse_error(const char *body, size_t len, struct aws_error *err);
int ec2_parse_instance(const char *body, size_t len, struct ec2_instance *ret);
int ec2_parse_images(const char *body, size_t len, struct ec2_image **ret, size_t *ret_n);
int ec2_parse_create_image(const char *body, size_t len, char **ret_image_id);
