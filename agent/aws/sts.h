/* SPDX-License-Identifier: Apache-2.0 */
/*
 * STS client: AssumeRole (credentials of a role, possibly in another account) and
 * GetCallerIdentity, in the Query protocol of ec2.c (version 2011-06-15) on signed_post.c.
 */
#pragma once

#include <stddef.h>

#include "aws/credentials.h"
#include "aws/signed_post.h"

struct creds_provider;

struct sts_client_config {
        const char *region; /* required: the signing region and the regional endpoint's */
        /*
         * The endpoint: AWS_ENDPOINT_URL_STS, then AWS_ENDPOINT_URL, then this, then
         * https://sts.REGION.amazonaws.com (the SDKs' regional endpoints).
         */
        const char *endpoint_url;
        struct aws_transport transport;
};

struct sts_client;
/* creds signs the calls: for AssumeRole, the credentials that are allowed to assume the role. */
int sts_client_new(const struct sts_client_config *cfg, struct creds_provider *creds,
                   struct sts_client **ret);
struct sts_client *sts_client_free(struct sts_client *c);
const char *sts_client_endpoint(const struct sts_client *c);

/* Durations AssumeRole accepts (a role's own maximum may be lower, up to 12 hours). */
#define STS_DURATION_MIN_S 900u
#define STS_DURATION_MAX_S 43200u

struct sts_assume_role_args {
        const char *role_arn;     /* arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME */
        const char *session_name; /* [\w+=,.@-]{2,64} */
        const char *external_id;  /* NULL: none; [\w+=,.@:/-]{2,1224} */
        unsigned duration_s;      /* 0: STS's default (one hour) */
};

/*
 * AssumeRole. On success ret holds the role's temporary credentials with their expiry, source
 * "assumed-role:ROLE_ARN" and role_name the role's name (so that a signer that meets an expired
 * token asks again). -EINVAL for arguments STS would refuse; -EREMOTEIO with err filled when STS
 * answered with an error (AccessDenied: the role's trust policy does not allow the caller or the
 * external id); -EBADMSG for an answer without complete credentials; other errors as
 * signed_post_call(). The answer's body and document are wiped: they held the secret key.
 */
int sts_assume_role(struct sts_client *c, const struct sts_assume_role_args *a,
                    struct aws_credentials *ret, struct aws_error *err);

struct sts_identity {
        char *account; /* 12 digits */
        char *arn;     /* the caller: arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION, ... */
        char *user_id;
};
void sts_identity_done(struct sts_identity *id);
/* GetCallerIdentity: who the signing credentials are (no permission is needed for it). */
int sts_get_caller_identity(struct sts_client *c, struct sts_identity *ret, struct aws_error *err);

/* The shapes AssumeRole takes, for the callers that read them from a file. */
bool sts_role_arn_valid(const char *s);
bool sts_session_name_valid(const char *s);
bool sts_external_id_valid(const char *s);

/*
 * Parser of an AssumeRoleResponse, exposed for the fuzz target: -EBADMSG for a body that is not
 * one or lacks a credential field or has a malformed one, -EFBIG past XML_MAX_BODY.
 */
int sts_parse_assume_role(const char *body, size_t len, const char *role_arn,
                          struct aws_credentials *ret);
