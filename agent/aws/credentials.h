/* SPDX-License-Identifier: Apache-2.0 */
/* AWS credentials: from the environment first, then the instance role through IMDS. */
#pragma once

#include <stdbool.h>

#include "../util/timeutil.h"

struct imds;

struct aws_credentials {
        char *access_key_id;
        char *secret_access_key; /* secret: wiped on free, never logged */
        char *session_token;     /* secret: wiped on free, never logged; may be NULL */
        usec_t expiration;       /* CLOCK_REALTIME usec; 0 = does not expire */
        char *source;            /* "environment" or "instance-role:NAME" (safe to print) */
        char *role_name;         /* NULL for environment credentials */
};

/* Wipes the secrets, frees everything and leaves an empty struct; accepts NULL. */
void aws_credentials_done(struct aws_credentials *c);
int aws_credentials_copy(const struct aws_credentials *src, struct aws_credentials *dst);

/*
 * AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY, optional AWS_SESSION_TOKEN (empty counts as unset).
 * -ENOKEY when neither is set, -EINVAL when only one of the pair is, or a value is malformed.
 */
int aws_credentials_from_env(struct aws_credentials *ret);

struct creds_provider;

/*
 * imds may be NULL (then only the environment is consulted). The provider borrows imds; it must
 * outlive the provider. clock/userdata: a seam for tests; NULL means the real CLOCK_REALTIME.
 */
int creds_provider_new(struct imds *imds, clock_fn clock, void *clock_userdata,
                       struct creds_provider **ret);
struct creds_provider *creds_provider_free(struct creds_provider *p);

/*
 * Current credentials, refreshed from IMDS when they expire within 5 minutes. The returned
 * pointer is owned by the provider and valid until the next call or the provider's free.
 * -ENOKEY when no source has credentials (no imds, IMDS disabled, or no instance role);
 * -EINVAL for half-set environment credentials; IMDS failures (e.g. -ETIME) as imds.h returns
 * them, unless cached role credentials are still valid: then those are returned.
 */
int creds_provider_get(struct creds_provider *p, const struct aws_credentials **ret);
/* Forget cached role credentials (e.g. after an AuthFailure that suggests they were revoked). */
void creds_provider_invalidate(struct creds_provider *p);
