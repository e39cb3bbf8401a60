/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `import IMAGE_ID [--source-region R] [--region R] [--kms-key KEY] [--name NAME]
 * [--launch-template T] [--ssm-parameter P] [--json]`: the recipient's side of sharing. Copies an
 * image that another account shared with this one into this account, encrypted with this
 * account's key (distribute/import.h). It runs anywhere the credentials chain finds credentials
 * (the environment, AWS_PROFILE and the shared files, the instance role) and asks IMDS for
 * nothing when the credentials and the region are known without it.
 */
#include "cli/cmd_import.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/sts.h"
#include "cli/output.h"
#include "core/config.h"
#include "core/context.h"
#include "distribute/distribute_aws.h"
#include "distribute/import.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/str.h"

/* This account's id, for the messages: GetCallerIdentity needs no permission. */
static char *caller_account(struct context *ctx, const char *region)
{
        struct sts_client *sts = NULL;
        struct sts_identity id = {};
        struct aws_error e = {};
        char *account = NULL;

        if (sts_client_new(&(struct sts_client_config){.region = region,
                                                       .endpoint_url = ctx->config->endpoint_url,
                                                       .transport = context_aws_transport(ctx)},
                           ctx->creds, &sts) >= 0 &&
            sts_get_caller_identity(sts, &id, &e) >= 0)
                account = TAKE_PTR(id.account);
        else
                log_debug("GetCallerIdentity: %s", strna(e.code));
        aws_error_done(&e);
        sts_identity_done(&id);
        sts_client_free(sts);
        return account;
}

/* The exit code of a failure: a refusal of the pre-flight is EXIT_CHECK, as for `check`. */
static int exit_code(int r)
{
        if (r == -EINVAL)
                return EXIT_USAGE;
        if (r == -ENOENT || r == -EACCES || r == -EPERM || r == -EEXIST)
                return EXIT_CHECK;
        return EXIT_FAILED;
}

static int finish(const struct cli *c, const struct import_request *req,
                  const struct import_result *res, const char *why, int r)
{
        struct result out;
        cJSON *t;

        if (r < 0)
                log_error("import %s: %s", c->argument, why ? why : strerror(-r));
        if (r < 0 && !c->json)
                return exit_code(r);
        result_new(&out, VIEW_IMPORT);
        t = out.tree;
        result_add_str(&out, t, "source_image_id", req->source_image_id);
        result_add_str(&out, t, "source_region", req->source_region);
        result_add_str(&out, t, "source_account", res->source_account);
        result_add_str(&out, t, "region", req->region);
        result_add_str(&out, t, "account", req->account);
        result_add_str(&out, t, "image_id", res->image_id);
        result_add_str(&out, t, "kms_key", res->kms_key_arn ? res->kms_key_arn : req->kms_key);
        result_add_bool(&out, t, "adopted", res->adopted);
        result_add_str(&out, t, "launch_template", req->launch_template);
        result_add_str(&out, t, "launch_template_version", res->lt_version);
        result_add_str(&out, t, "ssm_parameter", req->ssm_parameter);
        result_add_str(&out, t, "error", r < 0 ? (why ? why : strerror(-r)) : NULL);
        return output_finish(&out, c->json, r < 0 ? exit_code(r) : EXIT_OK);
}

int cmd_import(const struct cli *c)
{
        struct context *ctx = c->ctx;
        struct dist_clients cl = {};
        struct import_result res = {};
        _cleanup_free_ char *why = NULL, *account = NULL;
        char *regions[3] = {};
        int r, rc;

        /* The region without IMDS where it is known; the context's EC2 client serves it. */
        if (context_settle_region(ctx, c->region) < 0 || context_open_ec2(ctx) < 0)
                return EXIT_FAILED;
        regions[0] = ctx->region;
        if (c->source_region && !streq(c->source_region, ctx->region))
                regions[1] = (char *)c->source_region;
        r = dist_clients_open(&cl, ctx, regions);
        if (r < 0) {
                log_error_errno(r, "Cannot set up the AWS clients: %m");
                dist_clients_done(&cl);
                return EXIT_FAILED;
        }
        account = caller_account(ctx, ctx->region);
        struct import_request req = {
                .source_image_id = c->argument,
                .source_region = c->source_region ? c->source_region : ctx->region,
                .region = ctx->region,
                .account = account,
                .kms_key = c->kms_key,
                .name = c->name,
                .ssm_parameter = c->ssm_parameter,
                .launch_template = c->launch_template,
                .wait_timeout_s = ctx->config->wait_timeout_s,
                .wait_poll_max_s = ctx->config->wait_poll_max_s,
                .source_kms = regions[1] ? dist_clients_kms(&cl, regions[1]) : NULL,
        };
        r = import_image(dist_clients_ec2(&cl, req.source_region), ctx->ec2,
                         dist_clients_kms(&cl, ctx->region), dist_clients_ssm(&cl, ctx->region),
                         &req, &res, &why);
        rc = finish(c, &req, &res, why, r);
        import_result_done(&res);
        dist_clients_done(&cl);
        return rc;
}
