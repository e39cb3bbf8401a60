/* SPDX-License-Identifier: Apache-2.0 */
/* The credentials provider chain: the environment first, then the instance role through IMDS. */
#pragma once

#include "aws/credentials.h"
#include "util/timeutil.h"

struct imds;
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
