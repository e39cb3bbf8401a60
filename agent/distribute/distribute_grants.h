/* SPDX-License-Identifier: Apache-2.0 */
/*
 * KMS grants with a lifetime. A run grants each shared account the use of each customer key
 * (create_grants): one grant already standing for the account and key with the operations a copy
 * needs, named by ec2-imaged, is reused; otherwise CreateGrant, its name carrying the run id.
 * Either way the grant is recorded in the state (struct grant_record) and saved at once; a crash
 * between CreateGrant and that save leaves a grant the next ListGrants finds and records. A
 * recorded grant is revoked (RevokeGrant, as the key's owner) once [distribute] grant_ttl_days
 * have passed since the last run that created or reused it, and when retention retires its image.
 */
#pragma once

#include <stdbool.h>

#include "util/timeutil.h"

struct config;
struct context;
struct dist;
struct grant_record;
struct run_dist;
struct state;

/* Grant names start with this, then the run id. */
#define GRANT_NAME_PREFIX "ec2-imaged-"

/* When g expires under c's grant_ttl_days; 0: never (ttl 0). */
usec_t grant_expires(const struct config *c, const struct grant_record *g);
/* Whether g stands and has expired at now. */
bool grant_expired(const struct config *c, const struct grant_record *g, usec_t now);

/*
 * Revoke every standing grant of st that has expired at now, each recorded as revoked and st
 * saved to [run] state_dir after it. A grant KMS no longer has counts as revoked. AWS failures
 * are logged and leave the record for the next time (*ret_failed counts them, may be NULL); only
 * a failure to save the state (or to make the clients) is returned. *ret_revoked (may be NULL):
 * how many were revoked.
 */
int grants_revoke_expired(struct context *ctx, struct state *st, usec_t now, unsigned *ret_revoked,
                          unsigned *ret_failed);

/*
 * The accounts a run grants each customer key of its images to, and the pre-flight DryRuns
 * CreateGrant for: share_accounts with create_grants, then each account of target_accounts (its
 * copy needs the key whatever create_grants says; its grants are revoked after its copies), each
 * once. *ret NULL-terminated, NULL for none.
 */
int dist_grantees(const struct config *cfg, char ***ret);
/* In a run: the grant of key_arn for grantee in rd's region, reused or created, and recorded. */
int dist_grant(struct dist *d, struct run_dist *rd, const char *key_arn, const char *grantee);
/*
 * In a run: revoke the standing grants recorded for grantee on the run's images (a target
 * account's, once its copies are made), each saved as revoked; the first failure ends it (d->why).
 */
int dist_grants_revoke_grantee(struct dist *d, const char *grantee);
/* In a run: revoke the standing grants recorded for the images in gone (region's), logged. */
int dist_grants_revoke_images(struct dist *d, const char *region, char *const *gone);
