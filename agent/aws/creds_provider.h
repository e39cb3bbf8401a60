/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The credentials provider chain: the environment first, then an attached source (the shared
 * files), then the instance role through IMDS.
 */
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

/*
 * A source consulted after the environment and before the instance role, as botocore consults the
 * shared credentials and config files (creds_profile_attach() in creds_profile.h sets it: it signs
 * its own STS calls through a provider, so this file cannot call it). get answers -ENOKEY when the
 * source has nothing, and the chain goes on to the role; any other error stops the chain. The
 * pointer it returns stays the source's. free releases userdata with the provider.
 */
struct creds_source {
        int (*get)(void *userdata, const struct aws_credentials **ret);
        void (*invalidate)(void *userdata);
        void (*free)(void *userdata);
        void *userdata;
};
/* Takes the source over, replacing (and freeing) any earlier one. */
void creds_provider_set_source(struct creds_provider *p, const struct creds_source *s);

/*
 * A provider of one fixed set of credentials (a copy of c), neither the environment nor IMDS:
 * what signs an AssumeRole with a source profile's keys, or the calls made in another account.
 */
int creds_provider_new_static(const struct aws_credentials *c, struct creds_provider **ret);
