/* SPDX-License-Identifier: Apache-2.0 */
/* Builds the IMDS, credentials and EC2 clients from the configuration. */
#include "core/context.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "aws/creds_profile.h"
#include "aws/creds_provider.h"
#include "aws/vocab.h"
#include "util/log.h"
#include "util/macro.h"

int context_new(const struct config *config, struct context **ret)
{
        struct imds_config ic = {
                .endpoint = config->imds_endpoint,
                .endpoint_mode = imds_endpoint_mode_to_string(config->imds_endpoint_mode),
                .token_ttl_s = config->imds_token_ttl,
                .connect_timeout_ms = config->imds_connect_timeout_ms,
                .timeout_ms = config->imds_timeout_ms,
                .retry_deadline_ms = config->imds_retry_deadline_ms,
                .allow_imdsv1 = config->imds_allow_imdsv1,
                .disabled = config->imds_disabled,
        };
        _cleanup_(context_freep) struct context *ctx = calloc(1, sizeof(*ctx));
        int r;

        if (!ctx)
                return log_error_errno(-ENOMEM, "Out of memory");
        ctx->config = config;
        r = imds_new(&ic, &ctx->imds);
        if (r < 0)
                return log_error_errno(r, "Invalid instance metadata settings: %m");
        r = creds_provider_new(ctx->imds, NULL, NULL, &ctx->creds);
        if (r >= 0)
                r = creds_profile_attach(
                        ctx->creds,
                        &(struct creds_profile_config){.region = config->region,
                                                       .endpoint_url = config->endpoint_url,
                                                       .transport = context_aws_transport(ctx)});
        if (r < 0)
                return log_error_errno(r, "Cannot set up the credentials provider: %m");
        *ret = TAKE_PTR(ctx);
        return 0;
}

struct context *context_free(struct context *ctx)
{
        if (!ctx)
                return NULL;
        ec2_client_free(ctx->ec2);
        creds_provider_free(ctx->creds);
        imds_free(ctx->imds);
        imds_identity_done(&ctx->identity);
        free(ctx->region);
        free(ctx);
        return NULL;
}

int context_load_identity(struct context *ctx)
{
        int r;

        if (ctx->identity.instance_id)
                return 0;
        r = imds_identity(ctx->imds, &ctx->identity);
        if (r < 0)
                return log_error_errno(r, "Cannot read the instance identity from IMDS at %s: %m",
                                       imds_endpoint(ctx->imds));
        ctx->region = strdup(ctx->config->region ? ctx->config->region : ctx->identity.region);
        if (!ctx->region)
                return log_error_errno(-ENOMEM, "Out of memory");
        return 0;
}

struct aws_transport context_aws_transport(const struct context *ctx)
{
        const struct config *c = ctx->config;

        return (struct aws_transport){
                .connect_timeout_ms = c->aws_connect_timeout_ms,
                .timeout_ms = c->aws_timeout_ms,
                .retry_deadline_ms = c->aws_retry_deadline_ms,
                .max_attempts = c->aws_max_attempts,
        };
}

int context_open_ec2(struct context *ctx)
{
        const struct config *c = ctx->config;
        struct ec2_client_config ec;
        int r;

        if (ctx->ec2)
                return 0;
        /* A region settled without IMDS (context_settle_region()) needs no identity. */
        r = ctx->region ? 0 : context_load_identity(ctx);
        if (r < 0)
                return r;
        ec = (struct ec2_client_config){
                .region = ctx->region,
                .endpoint_url = c->endpoint_url,
                .transport = context_aws_transport(ctx),
        };
        r = ec2_client_new(&ec, ctx->creds, &ctx->ec2);
        if (r < 0)
                return log_error_errno(r, "Cannot set up the EC2 client: %m");
        return 0;
}

int context_settle_region(struct context *ctx, const char *given)
{
        const char *env = getenv("AWS_REGION");
        _cleanup_free_ char *profile = NULL;
        const char *pick;
        int r;

        if (ctx->region)
                return 0;
        if (!env || !*env)
                env = getenv("AWS_DEFAULT_REGION");
        pick = given ? given : env && *env ? env : NULL;
        if (!pick) {
                r = creds_profile_region(&(struct creds_profile_config){}, &profile);
                if (r < 0)
                        return r;
                pick = profile ? profile : ctx->config->region;
        }
        /* Nothing but the instance knows: on EC2, IMDS says where it is. */
        if (!pick) {
                log_info("No region given (--region, AWS_REGION, AWS_DEFAULT_REGION, the AWS "
                         "profile, [aws] region): asking IMDS");
                return context_load_identity(ctx);
        }
        if (!aws_region_valid(pick))
                return log_error_errno(-EINVAL, "'%s' is not a region name", pick);
        ctx->region = strdup(pick);
        if (!ctx->region)
                return log_error_errno(-ENOMEM, "Out of memory");
        return 0;
}
