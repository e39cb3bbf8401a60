/* SPDX-License-Identifier: Apache-2.0 */
/* Per-region clients and KMS key checks for distribution (see distribute_aws.h). */
#include "distribute/distribute_aws.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "aws/awsjson.h"
#include "aws/ec2.h"
#include "core/config.h"
#include "core/context.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/str.h"

/* Calls per second a region's clients make at most together, and the burst allowed. */
#define DIST_MAX_RATE 10.0
#define DIST_BURST    20.0

int dist_regions(const char *own, const struct config *cfg, char ***ret)
{
        char **v = NULL;
        int r = strv_push(&v, own);

        for (char **s = cfg->dist_regions; r >= 0 && s && *s; s++)
                if (!strv_contains(v, *s))
                        r = strv_push(&v, *s);
        if (r < 0) {
                strv_free(v);
                return r;
        }
        *ret = v;
        return 0;
}

int dist_fail(char **why, int r, struct aws_error *e, const char *what, const char *region)
{
        if (!*why)
                *why = strprintf("%s in %s: %s%s%s", what, region, aws_error_describe(e, r),
                                 e->message ? ": " : "", strempty(e->message));
        aws_error_done(e);
        return r;
}

int dist_clients_open(struct dist_clients *c, struct context *ctx, char *const *regions)
{
        const struct config *cfg = ctx->config;
        int r = 0;

        *c = (struct dist_clients){.ctx = ctx};
        for (size_t i = 0; r >= 0 && regions && regions[i]; i++) {
                struct awsjson_client_config jc = {
                        .region = regions[i],
                        .endpoint_url = cfg->endpoint_url,
                        .transport = context_aws_transport(ctx),
                };

                if (c->n >= RUN_DIST_MAX)
                        return -E2BIG;
                c->r[c->n].region = strdup(regions[i]);
                if (!c->r[c->n].region)
                        return -ENOMEM;
                c->n++;
                if (!streq(regions[i], ctx->region))
                        r = ec2_client_new(
                                &(struct ec2_client_config){
                                        .region = regions[i],
                                        .endpoint_url = cfg->endpoint_url,
                                        .transport = context_aws_transport(ctx),
                                },
                                ctx->creds, &c->r[c->n - 1].ec2);
                jc.service = AWSJSON_KMS;
                if (r >= 0)
                        r = awsjson_client_new(&jc, ctx->creds, &c->r[c->n - 1].kms);
                jc.service = AWSJSON_SSM;
                if (r >= 0)
                        r = awsjson_client_new(&jc, ctx->creds, &c->r[c->n - 1].ssm);
                if (r >= 0) {
                        struct aws_budget *b = &c->r[c->n - 1].budget;

                        aws_budget_init(b, DIST_MAX_RATE, DIST_BURST);
                        ec2_client_set_budget(dist_clients_ec2(c, regions[i]), b);
                        awsjson_client_set_budget(c->r[c->n - 1].kms, b);
                        awsjson_client_set_budget(c->r[c->n - 1].ssm, b);
                }
        }
        return r;
}

void dist_clients_done(struct dist_clients *c)
{
        /* The context's client outlives the budgets. */
        if (c->ctx && c->ctx->ec2)
                ec2_client_set_budget(c->ctx->ec2, NULL);
        for (size_t i = 0; i < c->n; i++) {
                free(c->r[i].region);
                ec2_client_free(c->r[i].ec2);
                awsjson_client_free(c->r[i].kms);
                awsjson_client_free(c->r[i].ssm);
        }
        *c = (struct dist_clients){};
}

static ssize_t find(const struct dist_clients *c, const char *region)
{
        for (size_t i = 0; region && i < c->n; i++)
                if (streq(c->r[i].region, region))
                        return (ssize_t)i;
        return -1;
}

struct ec2_client *dist_clients_ec2(struct dist_clients *c, const char *region)
{
        ssize_t i = find(c, region);

        if (i < 0)
                return NULL;
        return c->r[i].ec2 ? c->r[i].ec2 : c->ctx->ec2;
}

struct awsjson_client *dist_clients_kms(struct dist_clients *c, const char *region)
{
        ssize_t i = find(c, region);

        return i < 0 ? NULL : c->r[i].kms;
}

struct awsjson_client *dist_clients_ssm(struct dist_clients *c, const char *region)
{
        ssize_t i = find(c, region);

        return i < 0 ? NULL : c->r[i].ssm;
}

const char *dist_word_for(char *const *words, const char *region, const char *own,
                          bool plain_everywhere)
{
        size_t n = strlen(region);

        for (char *const *w = words; w && *w; w++)
                if (strncmp(*w, region, n) == 0 && (*w)[n] == ':' && (*w)[n + 1])
                        return *w + n + 1;
        if (!plain_everywhere && !streq(region, own))
                return NULL;
        for (char *const *w = words; w && *w; w++)
                if (!strchr(*w, ':'))
                        return *w;
        return NULL;
}

const char *dist_kms_key_for(const struct config *cfg, const char *region)
{
        size_t n = strlen(region);

        for (char **w = cfg->dist_kms_keys; w && *w; w++)
                if (strncmp(*w, region, n) == 0 && (*w)[n] == ':' && (*w)[n + 1])
                        return *w + n + 1;
        return NULL;
}

bool dist_key_is_aws_managed(const char *key_id, const struct kms_key *k)
{
        if (key_id && (startswith(key_id, "alias/aws/") || strstr(key_id, ":alias/aws/")))
                return true;
        return k && streq_ptr(k->key_manager, "AWS");
}

int dist_check_key(struct dist_clients *c, const char *region, const char *key_id,
                   const char *image_id, bool for_sharing, struct kms_key *ret, char **ret_why)
{
        struct awsjson_client *kms = dist_clients_kms(c, region);
        struct kms_key k = {};
        struct aws_error e = {};
        int r;

        if (!kms)
                return -EINVAL;
        r = kms_describe_key(kms, key_id, &k, &e);
        if (r < 0) {
                *ret_why = strprintf("KMS DescribeKey %s in %s: %s%s%s", key_id, region,
                                     aws_error_describe(&e, r), e.message ? ": " : "",
                                     strempty(e.message));
                aws_error_done(&e);
                return r;
        }
        if (k.key_state && !streq(k.key_state, "Enabled")) {
                *ret_why = strprintf("KMS key %s in %s is %s, not Enabled: no image can be "
                                     "encrypted with it ([distribute] kms_key)",
                                     key_id, region, k.key_state);
                kms_key_done(&k);
                return -EPERM;
        }
        if (for_sharing && dist_key_is_aws_managed(key_id, &k)) {
                *ret_why = strprintf(
                        "%s in %s is encrypted with the AWS-managed KMS key %s (%s), which "
                        "cannot be shared with other accounts; set [distribute] kms_key = "
                        "%s:<a customer-managed key> so that the copy is re-encrypted with a key "
                        "you can share, or stop sharing this image",
                        image_id ? image_id : "the image", region, key_id, strna(k.arn), region);
                kms_key_done(&k);
                return -EPERM;
        }
        *ret = k;
        return 0;
}
