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
#include "util/backoff.h"
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
        return dist_clients_open_as(c, ctx, NULL, regions);
}

int dist_clients_open_as(struct dist_clients *c, struct context *ctx, struct creds_provider *creds,
                         char *const *regions)
{
        const struct config *cfg = ctx->config;
        int r = 0;

        *c = (struct dist_clients){.ctx = ctx, .foreign = creds != NULL};
        if (!creds)
                creds = ctx->creds;
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
                /* The run's own region has the context's client, unless in another account. */
                if (c->foreign || !streq(regions[i], ctx->region))
                        r = ec2_client_new(
                                &(struct ec2_client_config){
                                        .region = regions[i],
                                        .endpoint_url = cfg->endpoint_url,
                                        .transport = context_aws_transport(ctx),
                                },
                                creds, &c->r[c->n - 1].ec2);
                jc.service = AWSJSON_KMS;
                if (r >= 0)
                        r = awsjson_client_new(&jc, creds, &c->r[c->n - 1].kms);
                jc.service = AWSJSON_SSM;
                if (r >= 0)
                        r = awsjson_client_new(&jc, creds, &c->r[c->n - 1].ssm);
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
        if (c->ctx && c->ctx->ec2 && !c->foreign)
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
        return c->r[i].ec2 || c->foreign ? c->r[i].ec2 : c->ctx->ec2;
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

int dist_describe_key(struct awsjson_client *kms, const char *region, const char *key_id,
                      struct kms_key *ret, char **ret_why)
{
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
                                     "encrypted with it",
                                     key_id, region, k.key_state);
                kms_key_done(&k);
                return -EPERM;
        }
        *ret = k;
        return 0;
}

int dist_check_key(struct dist_clients *c, const char *region, const char *key_id,
                   const char *image_id, bool for_sharing, struct kms_key *ret, char **ret_why)
{
        struct kms_key k = {};
        int r;

        r = dist_describe_key(dist_clients_kms(c, region), region, key_id, &k, ret_why);
        if (r < 0)
                return r;
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

int dist_wait_image(struct ec2_client *c, const char *region, const char *image_id,
                    const struct dist_wait *w, char **ret_why)
{
        _cleanup_free_ char *last = NULL;
        struct backoff b;

        backoff_init(&b, 2 * USEC_PER_SEC, (usec_t)w->poll_max_s * USEC_PER_SEC,
                     (usec_t)w->timeout_s * USEC_PER_SEC, 0);
        for (;;) {
                struct ec2_image *ims = NULL;
                struct aws_error e = {};
                size_t n = 0;
                int r;

                r = ec2_describe_own_images(c, NULL, NULL, image_id, &ims, &n, &e);
                /* A brand-new id may not be visible yet: EC2 is eventually consistent. */
                if (r == -EREMOTEIO && streq_ptr(e.code, "InvalidAMIID.NotFound")) {
                        r = 0;
                        n = 0;
                }
                if (r < 0)
                        return dist_fail(ret_why, r, &e, "DescribeImages", region);
                aws_error_done(&e);
                if (n > 0 && ims[0].state && !streq_ptr(ims[0].state, last)) {
                        free(last);
                        last = strdup(ims[0].state);
                        r = !last ? -ENOMEM : w->on_state ? w->on_state(w->userdata, last) : 0;
                }
                if (r >= 0 && last && !streq(last, "available") && !streq(last, "pending")) {
                        *ret_why = strprintf("%s %s in %s is %s: %s", w->what, image_id, region,
                                             last, strna(ims[0].state_reason));
                        r = -EIO;
                }
                ec2_images_free(ims, n);
                if (r < 0 || streq_ptr(last, "available"))
                        return r;
                if (backoff_sleep(&b) < 0) {
                        *ret_why = strprintf("%s %s in %s is not available after %u s", w->what,
                                             image_id, region, w->timeout_s);
                        return -ETIME;
                }
        }
}
