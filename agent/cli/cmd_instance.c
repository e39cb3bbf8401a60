/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `whoami`: the identity IMDS gives this instance and the credentials a run would use.
 * `check`: the pre-flight checks, each with its result, and whether a run can start.
 */
#include "cli/cmd_instance.h"

#include "aws/creds_provider.h"
#include "cli/output.h"
#include "core/config.h"
#include "core/context.h"
#include "run/preflight.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/timeutil.h"

/* When the credentials expire, in buf; NULL for none, or for keys that do not expire. */
static const char *expiration(const struct aws_credentials *creds, char buf[static 21])
{
        if (!creds || creds->expiration == 0)
                return NULL;
        format_iso8601(creds->expiration, buf);
        return buf;
}

/* Without credentials their three fields are null, which the text tells from "never". */
static void whoami_result(struct result *res, const struct context *ctx,
                          const struct aws_credentials *creds)
{
        const struct imds_identity *id = &ctx->identity;
        char exp[21];
        const char *const fields[][2] = {
                {"instance_id", id->instance_id},
                {"region", id->region},
                {"availability_zone", id->availability_zone},
                {"account_id", id->account_id},
                {"architecture", id->architecture},
                {"image_id", id->image_id},
                {"instance_type", id->instance_type},
                {"role", creds ? creds->role_name : NULL},
                {"credential_source", creds ? creds->source : NULL},
                {"credential_expiration", expiration(creds, exp)},
                {"imds_endpoint", imds_endpoint(ctx->imds)},
        };

        result_new(res, VIEW_WHOAMI);
        for (size_t i = 0; i < ELEMENTSOF(fields); i++)
                result_add_str(res, res->tree, fields[i][0], fields[i][1]);
}

int cmd_whoami(const struct cli *c)
{
        const struct aws_credentials *creds = NULL;
        struct result res;
        int r, rc = EXIT_OK;

        if (context_load_identity(c->ctx) < 0)
                return EXIT_FAILED;
        r = creds_provider_get(c->ctx->creds, &creds);
        if (r < 0) {
                log_error_errno(r, "No AWS credentials: %m");
                rc = EXIT_FAILED;
                creds = NULL;
        }
        whoami_result(&res, c->ctx, creds);
        return output_finish(&res, c->json, rc);
}

/* preflight_item.result: 0 passed, 1 skipped (an earlier item failed), -errno failed. */
static const char *check_result(int result)
{
        return result == 0 ? "ok" : result == 1 ? "skipped" : "failed";
}

int cmd_check(const struct cli *c)
{
        struct preflight p = {};
        struct result res;
        cJSON *items;
        int r;

        r = preflight_run(c->ctx, &p);
        result_new(&res, VIEW_CHECK);
        items = result_add_array(&res, res.tree, "checks");
        result_add_str(&res, res.tree, "config", c->ctx->config->path);
        for (size_t i = 0; i < p.n; i++) {
                cJSON *item = result_add_object(&res, items, NULL);
                result_add_str(&res, item, "name", p.items[i].name);
                result_add_str(&res, item, "result", check_result(p.items[i].result));
                result_add_str(&res, item, "detail", p.items[i].detail);
        }
        result_add_bool(&res, res.tree, "ok", r >= 0);
        preflight_done(&p);
        return output_finish(&res, c->json, r >= 0 ? EXIT_OK : EXIT_CHECK);
}
