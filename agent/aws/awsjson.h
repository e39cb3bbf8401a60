/* SPDX-License-Identifier: Apache-2.0 */
/*
 * AWS JSON protocol client (version 1.1), for KMS and SSM: POST / with X-Amz-Target and a JSON
 * body, signed with SigV4 and retried by signed_post.c; errors from the answer's __type and
 * message. The KMS and SSM calls the agent makes are small functions on top of awsjson_call().
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "aws/signed_post.h"

/* No answer of these APIs comes near this; a larger one is refused before cJSON sees it. */
#define AWSJSON_MAX_BODY (1024u * 1024u)
/* Deeper nesting than any answer has is refused (cJSON's own limit is far higher). */
#define AWSJSON_MAX_DEPTH 32

enum awsjson_service {
        AWSJSON_KMS,    /* X-Amz-Target: TrentService.OP, signing name "kms" */
        AWSJSON_SSM,    /* X-Amz-Target: AmazonSSM.OP, signing name "ssm" */
        AWSJSON_EVENTS, /* EventBridge: X-Amz-Target: AWSEvents.OP, signing name "events" */
};

struct awsjson_client_config {
        enum awsjson_service service;
        const char *region; /* required */
        /*
         * The endpoint: AWS_ENDPOINT_URL_KMS / _SSM / _EVENTS, then AWS_ENDPOINT_URL, then
         * this, then https://kms.REGION.amazonaws.com (ssm.REGION..., events.REGION...).
         */
        const char *endpoint_url;
        struct aws_transport transport; /* max_body: at most AWSJSON_MAX_BODY */
};

struct creds_provider;
struct awsjson_client;
int awsjson_client_new(const struct awsjson_client_config *cfg, struct creds_provider *creds,
                       struct awsjson_client **ret);
struct awsjson_client *awsjson_client_free(struct awsjson_client *c);
const char *awsjson_client_endpoint(const struct awsjson_client *c);
unsigned awsjson_client_last_attempts(const struct awsjson_client *c);
/* Share a region's rate limit and retry quota (budget.h); NULL: none. */
void awsjson_client_set_budget(struct awsjson_client *c, struct aws_budget *b);

/*
 * One call of operation (e.g. "DescribeKey") with request as its body (NULL: "{}"). 0 and the
 * answer's object on success (ret may be NULL). -EREMOTEIO with err filled when AWS answered with
 * an error; -EBADMSG for an answer that is not a JSON object; other errors as signed_post_call().
 */
int awsjson_call(struct awsjson_client *c, const char *operation, const cJSON *request, cJSON **ret,
                 struct aws_error *err);

/*
 * Parsers, exposed for the unit tests and the fuzz target. awsjson_parse: a JSON object, at most
 * AWSJSON_MAX_BODY bytes and AWSJSON_MAX_DEPTH deep, else -EBADMSG (-EFBIG when too big).
 * awsjson_parse_error: code from __type (or code), the part after '#' and before ':' kept;
 * message from message (or Message); -EBADMSG without a code.
 */
int awsjson_parse(const char *body, size_t len, cJSON **ret);
int awsjson_parse_error(const char *body, size_t len, struct aws_error *err);

/* KMS DescribeKey: the fields the agent looks at. */
struct kms_key {
        char *key_id;
        char *arn;
        char *key_manager; /* "AWS" or "CUSTOMER" */
        char *key_state;   /* "Enabled", "Disabled", "PendingDeletion", ... */
};
void kms_key_done(struct kms_key *k);
int kms_describe_key(struct awsjson_client *c, const char *key_id, struct kms_key *ret,
                     struct aws_error *err);
int kms_parse_describe_key(const char *body, size_t len, struct kms_key *ret);

/* The operations of the grant below (NULL-terminated). */
#define KMS_IMAGE_GRANT_OPS 6
extern const char *const kms_image_grant_ops[KMS_IMAGE_GRANT_OPS + 1];
/* The GranteePrincipal KMS holds for grantee on key_id (an account id: its root). */
int kms_grantee_principal(const char *key_id, const char *grantee, char **ret);

/*
 * KMS CreateGrant on key_id for grantee (an account id is turned into arn:aws:iam::ID:root) with
 * the operations a copy or a launch of an encrypted image needs in the grantee's account.
 * *ret_grant_id may be NULL.
 */
int kms_create_grant(struct awsjson_client *c, const char *key_id, const char *grantee,
                     const char *name, char **ret_grant_id, struct aws_error *err);
/*
 * The same CreateGrant with DryRun (KMS has it since 2023): 0 when KMS answers
 * DryRunOperationException (the call would succeed), -EPERM with err filled on
 * AccessDeniedException (or AccessDenied), -EREMOTEIO with err for any other refusal
 * (NotFoundException, a disabled key...). -EPROTO when KMS answered with success, having ignored
 * DryRun and made a grant: *ret_made_grant_id is then that grant's id (NULL when the answer had
 * none), for the caller to revoke; NULL in every other case.
 */
int kms_create_grant_dry_run(struct awsjson_client *c, const char *key_id, const char *grantee,
                             char **ret_made_grant_id, struct aws_error *err);

/*
 * SSM PutParameter of type String; data_type "aws:ec2:image" makes SSM check that value is an
 * image id. *ret_version (may be NULL) is the parameter's new version.
 */
int ssm_put_parameter(struct awsjson_client *c, const char *name, const char *value,
                      const char *data_type, bool overwrite, int64_t *ret_version,
                      struct aws_error *err);

/*
 * EventBridge PutEvents of one event on bus (a name or an ARN; NULL: the default bus) with
 * source, detail_type and detail (a JSON object's text). *ret_event_id (may be NULL) is the
 * event's id. An entry EventBridge refused (FailedEntryCount) is -EREMOTEIO with err holding the
 * entry's ErrorCode and ErrorMessage.
 */
int events_put_event(struct awsjson_client *c, const char *bus, const char *source,
                     const char *detail_type, const char *detail, char **ret_event_id,
                     struct aws_error *err);
