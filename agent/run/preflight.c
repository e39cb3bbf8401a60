/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pre-flight: IMDS reachable, identity readable, credentials present and accepted by EC2, a
 * DryRun CreateImage on this very instance allowed, and every configured distribution step
 * permitted. Each item says what it found, so that an
 * operator can fix the first failure without reading logs.
 */
#include "run/preflight.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "aws/creds_provider.h"
#include "core/state.h"
#include "core/context.h"
#include "distribute/distribute.h"
#include "distribute/distribute_check.h"
#include "run/provenance.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/str.h"
#include "util/timeutil.h"

static int add(struct preflight *p, const char *name, int result, char *detail)
{
        if (p->n >= PREFLIGHT_MAX) {
                free(detail);
                return -E2BIG;
        }
        p->items[p->n++] = (struct preflight_item){name, result, detail};
        return result < 0 ? result : 0;
}

static char *aws_error_text(int r, const struct aws_error *e)
{
        if (e->code)
                return strprintf("%s: %s (request %s)", e->code, strempty(e->message),
                                 strna(e->request_id));
        return strprintf("%s", strerror(-r));
}

static int check_imds(struct context *ctx, struct preflight *p)
{
        int r = context_load_identity(ctx);
        const struct imds_identity *id = &ctx->identity;

        if (r < 0)
                return add(p, "imds", r,
                           strprintf("%s: %s", imds_endpoint(ctx->imds), strerror(-r)));
        return add(p, "imds", 0,
                   strprintf("%s: instance %s in %s (%s), account %s", imds_endpoint(ctx->imds),
                             id->instance_id, id->region, id->availability_zone, id->account_id));
}

/*
 * The image name and the tags a run would render now (run/provenance.h): a template that renders
 * to what EC2 refuses fails here as it would fail the run, before anything is changed. {run_id}
 * renders as CHECK_RUN_ID.
 */
#define CHECK_RUN_ID "00000000-0000-4000-8000-000000000000"
static int check_name_and_tags(struct context *ctx, struct preflight *p)
{
        _cleanup_(run_state_freep) struct run_state *run = NULL;
        _cleanup_free_ char *err = NULL;
        struct buf b = {};
        int r;

        r = run_state_new(ctx->config->mode, true, &run);
        if (r >= 0) /* a run id of the real length, the same in every check's output */
                r = run_state_set(&run->run_id, CHECK_RUN_ID);
        if (r < 0)
                return add(p, "name-and-tags", r, strprintf("%s", strerror(-r)));
        r = run_name_and_tags(ctx, run, &err);
        if (r < 0)
                return add(p, "name-and-tags", r, strprintf("%s", strna(err)));
        r = buf_printf(&b, "name %s", run->image_name);
        for (size_t i = 0; r >= 0 && i < run->n_tags; i++)
                r = buf_printf(&b, "; %s=%s", run->tags[i].key, run->tags[i].value);
        if (r < 0) {
                buf_free(&b);
                return add(p, "name-and-tags", r, strprintf("%s", strerror(-r)));
        }
        return add(p, "name-and-tags", 0, buf_steal(&b, NULL));
}

static int check_credentials(struct context *ctx, struct preflight *p)
{
        const struct aws_credentials *c;
        char exp[21] = "never";
        int r = creds_provider_get(ctx->creds, &c);

        if (r == -ENOKEY)
                return add(p, "credentials", r,
                           strprintf("none: no AWS_ACCESS_KEY_ID in the environment and no "
                                     "instance role (attach an instance profile)"));
        if (r < 0)
                return add(p, "credentials", r, strprintf("%s", strerror(-r)));
        if (c->expiration > 0)
                format_iso8601(c->expiration, exp);
        return add(
                p, "credentials", 0,
                strprintf("%s, access key %.4s..., expires %s", c->source, c->access_key_id, exp));
}

static int check_ec2(struct context *ctx, struct preflight *p)
{
        struct aws_error e = {};
        struct ec2_instance in = {};
        char *detail;
        int r;

        r = context_open_ec2(ctx);
        if (r < 0)
                return add(p, "ec2-access", r, strprintf("%s", strerror(-r)));
        r = ec2_describe_instance(ctx->ec2, ctx->identity.instance_id, &in, &e);
        if (r < 0) {
                _cleanup_free_ char *t = aws_error_text(r, &e);
                detail = strprintf("%s: DescribeInstances %s: %s", ec2_client_endpoint(ctx->ec2),
                                   ctx->identity.instance_id, strna(t));
        } else {
                detail = strprintf("%s: instance %s is %s, root %s (%s), %zu EBS volume(s)",
                                   ec2_client_endpoint(ctx->ec2), in.instance_id, strna(in.state),
                                   strna(in.root_device_name), strna(in.root_device_type),
                                   in.n_devices);
        }
        ec2_instance_done(&in);
        aws_error_done(&e);
        return add(p, "ec2-access", r, detail);
}

static int check_create_image(struct context *ctx, struct preflight *p)
{
        struct ec2_create_image_args a = {
                .instance_id = ctx->identity.instance_id,
                .name = "ec2-imaged-preflight",
                .no_reboot = true,
                .dry_run = true,
        };
        struct aws_error e = {};
        char *detail;
        int r;

        r = ec2_create_image(ctx->ec2, &a, NULL, &e);
        if (r < 0) {
                _cleanup_free_ char *t = aws_error_text(r, &e);
                detail = strprintf("DryRun CreateImage on %s denied: %s", a.instance_id, strna(t));
        } else {
                detail = strprintf("DryRun CreateImage on %s allowed", a.instance_id);
        }
        aws_error_done(&e);
        return add(p, "create-image", r, detail);
}

/* [distribute]: keys, configuration and a DryRun of each configured step (distribute_check.h). */
static int check_distribute(struct context *ctx, struct preflight *p)
{
        _cleanup_free_ char *why = NULL;
        struct buf b = {};
        char **lines = NULL;
        int r;

        if (!distribute_configured(ctx->config))
                return add(p, "distribute", 0, strprintf("nothing configured"));
        r = distribute_check(ctx, ctx->identity.instance_id, false, &lines, &why);
        for (char **l = lines; r >= 0 && l && *l; l++)
                r = buf_printf(&b, "%s%s", l == lines ? "" : "; ", *l);
        strv_free(lines);
        if (r < 0) {
                buf_free(&b);
                return add(p, "distribute", r, strprintf("%s", why ? why : strerror(-r)));
        }
        return add(p, "distribute", 0, buf_steal(&b, NULL));
}

int preflight_run(struct context *ctx, struct preflight *ret)
{
        struct preflight p = {};
        int r, failed = 0;

        /* Later items depend on earlier ones; once one fails the rest are reported as skipped. */
        static const struct {
                const char *name;
                int (*fn)(struct context *, struct preflight *);
        } steps[] = {
                {"imds", check_imds},
                {"name-and-tags", check_name_and_tags},
                {"credentials", check_credentials},
                {"ec2-access", check_ec2},
                {"create-image", check_create_image},
                {"distribute", check_distribute},
        };

        for (size_t i = 0; i < ELEMENTSOF(steps); i++) {
                if (failed) {
                        add(&p, steps[i].name, 1, strprintf("skipped: an earlier check failed"));
                        continue;
                }
                r = steps[i].fn(ctx, &p);
                if (r < 0)
                        failed = r;
        }
        *ret = p;
        return failed;
}

void preflight_done(struct preflight *p)
{
        for (size_t i = 0; i < p->n; i++)
                free(p->items[i].detail);
        *p = (struct preflight){};
}
