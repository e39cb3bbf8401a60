/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The KMS calls of encrypted sharing, on the AWS JSON client (awsjson.h): the grants of a key
 * (listed, revoked by the key's owner, retired by their grantee) and its key policy. DescribeKey
 * and CreateGrant are awsjson.h's (kms_describe_key, kms_create_grant).
 */
#pragma once

#include <stddef.h>

#include "aws/awsjson.h"
#include "util/timeutil.h"

/* ListGrants: grants asked for per page (KMS's maximum), and the pages read at most. */
#define KMS_GRANTS_PAGE      100
#define KMS_GRANTS_MAX_PAGES 100

struct kms_grant {
        char *grant_id;
        char *key_id; /* the key's ARN, as KMS lists it */
        char *name;   /* NULL when the grant has none */
        char *grantee_principal;
        char *retiring_principal; /* NULL when none */
        char *issuing_account;    /* NULL when not given */
        char **operations;        /* NULL-terminated */
        usec_t creation_date;     /* 0 when not given */
};
void kms_grants_free(struct kms_grant *g, size_t n);

/*
 * Every grant of key_id, all pages read. grantee (NULL: all) keeps the grants of one principal,
 * compared with GranteePrincipal as KMS holds it (kms_create_grant turns an account id into
 * arn:PARTITION:iam::ID:root); it is also sent as ListGrants' own filter, which not every KMS
 * honours (moto ignores it). -E2BIG, with err->message naming the key, when the listing still
 * goes on after KMS_GRANTS_MAX_PAGES pages: a part of the grants is never returned as if it were
 * all of them.
 */
int kms_list_grants(struct awsjson_client *c, const char *key_id, const char *grantee,
                    struct kms_grant **ret, size_t *ret_n, struct aws_error *err);

/* RevokeGrant: the key's owner takes the grant back. NotFoundException when it is gone. */
int kms_revoke_grant(struct awsjson_client *c, const char *key_id, const char *grant_id,
                     struct aws_error *err);
/* RetireGrant: the grantee (or the retiring principal) gives it up. */
int kms_retire_grant(struct awsjson_client *c, const char *key_id, const char *grant_id,
                     struct aws_error *err);

/* GetKeyPolicy / PutKeyPolicy of the key's one policy ("default"); *ret: the policy's JSON text. */
int kms_get_key_policy(struct awsjson_client *c, const char *key_id, char **ret,
                       struct aws_error *err);
int kms_put_key_policy(struct awsjson_client *c, const char *key_id, const char *policy,
                       struct aws_error *err);

/*
 * One page of a ListGrants answer, exposed for the fuzz target and the unit tests: the grants
 * appended to *grants (n counts them), *ret_marker the NextMarker when Truncated, else NULL.
 * -EBADMSG for an answer without a Grants list or with a grant lacking GrantId, KeyId or
 * GranteePrincipal, or Truncated without NextMarker.
 */
int kms_parse_grants_page(const char *body, size_t len, struct kms_grant **grants, size_t *n,
                          char **ret_marker);
