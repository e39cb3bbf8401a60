/* SPDX-License-Identifier: Apache-2.0 */
/* The clients one command needs (IMDS, credentials, EC2), built once from the configuration. */
#pragma once

#include "aws/credentials.h"
#include "aws/ec2.h"
#include "core/config.h"
#include "aws/imds.h"
#include "util/macro.h"

struct context {
        const struct config *config; /* borrowed */
        struct imds *imds;
        struct creds_provider *creds;
        struct ec2_client *ec2; /* created by context_open_ec2() */
        struct imds_identity identity;
        char *region; /* [aws] region, else the instance's region from IMDS */
};

/* Create the IMDS client and the credentials provider. Talks to nobody yet. */
int context_new(const struct config *config, struct context **ret);
struct context *context_free(struct context *ctx);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct context *, context_free)
/* Read this instance's identity from IMDS (once) and settle the region. Logs its own errors. */
int context_load_identity(struct context *ctx);
/*
 * Settle the region without IMDS where possible (for commands that may run off EC2, `import`):
 * given (a command line's), else AWS_REGION, AWS_DEFAULT_REGION, the region of the AWS profile
 * in the config file (creds_profile_region()), [aws] region; only when none names one, the
 * instance's region from IMDS. Logs its own errors.
 */
int context_settle_region(struct context *ctx, const char *given);
/*
 * Create the EC2 client for the settled region (loads the identity first when no region is
 * settled yet).
 */
int context_open_ec2(struct context *ctx);
/* The [aws] keys that shape every AWS call: for EC2, KMS and SSM clients alike. */
struct aws_transport context_aws_transport(const struct context *ctx);
