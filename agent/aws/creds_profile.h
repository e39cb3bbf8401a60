/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Credentials from the AWS shared files, as botocore finds them: the profile named by
 * AWS_PROFILE (else "default") in AWS_SHARED_CREDENTIALS_FILE (~/.aws/credentials) and
 * AWS_CONFIG_FILE (~/.aws/config), with static keys or with role_arn + source_profile (AssumeRole
 * with the source profile's credentials, which may themselves come from a role).
 */
#pragma once

#include "aws/credentials.h"
#include "aws/signed_post.h"

struct creds_provider;

/* A role assumed with a role's credentials, and so on: at most this many AssumeRole calls. */
#define CREDS_PROFILE_MAX_CHAIN 5

struct creds_profile_config {
        const char *profile;          /* NULL: $AWS_PROFILE, else "default" */
        const char *credentials_file; /* NULL: $AWS_SHARED_CREDENTIALS_FILE, ~/.aws/credentials */
        const char *config_file;      /* NULL: $AWS_CONFIG_FILE, else ~/.aws/config */
        /*
         * The region of the STS endpoint: AWS_REGION, AWS_DEFAULT_REGION, this, the profile's
         * region, us-east-1. Its endpoint: as sts.h says (AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL,
         * endpoint_url, https://sts.REGION.amazonaws.com).
         */
        const char *region;
        const char *endpoint_url;
        struct aws_transport transport; /* its clock is the one expiry is checked against */
};

/*
 * Resolve the profile now, without a cache. When no profile was named (neither cfg->profile nor
 * AWS_PROFILE), the files are optional: -ENOKEY when they do not exist, hold no "default", or
 * its "default" has no credentials of any kind, so that the chain goes on to the instance role.
 * A named profile must exist and give credentials. Errors are logged once, at the level the
 * caller gives (LOG_ERR for a user's command), with the file, line and key and never a value:
 * -EINVAL for a file or profile that is wrong (a missing profile, half a key pair, a malformed
 * key, an unsupported way such as credential_process or mfa_serial), -EFBIG for a file over
 * PROFILE_FILE_MAX, -ELOOP for a source_profile cycle or a chain longer than
 * CREDS_PROFILE_MAX_CHAIN, -EACCES when STS refused an AssumeRole (its code and message are
 * logged), otherwise what reading a file or STS returned. ret's source is "profile:NAME".
 */
int creds_profile_resolve(const struct creds_profile_config *cfg, int log_level,
                          struct aws_credentials *ret);

/*
 * The region of the profile (cfg->profile, else $AWS_PROFILE, else "default") in the config file
 * ($AWS_CONFIG_FILE, ~/.aws/config), as botocore reads it: *ret NULL when the file, the profile
 * or its region is not there. -EINVAL (logged, naming the file and line) for a value that is not
 * a region name or a file that is malformed.
 */
int creds_profile_region(const struct creds_profile_config *cfg, char **ret);

/*
 * Attach the shared files to a provider chain (creds_provider_set_source()), between the
 * environment and the instance role. cfg is copied. The profile is resolved at the first need and
 * kept: static keys until creds_provider_invalidate(), role credentials until five minutes
 * before they expire (a failed refresh keeps them while they are valid). "No profile applies" is
 * kept too, so the files are read once when they are not used. An error is logged at LOG_ERR
 * once, not again while it stays the same.
 */
int creds_profile_attach(struct creds_provider *chain, const struct creds_profile_config *cfg);
