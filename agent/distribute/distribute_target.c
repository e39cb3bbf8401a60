/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pushing the run's image into target accounts ([distribute] target_accounts, see
 * distribute_internal.h): the image was shared and its keys granted to each account with the
 * other recipients; here the run assumes the account's role, copies the image in each region of
 * the run as `ec2-imaged import` does (import.h), and once all of the account's copies are
 * available revokes its grants. The role's credentials live in memory only, for one account at a
 * time, and are wiped when its copies are made.
 */
#include "distribute/distribute_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "aws/creds_provider.h"
#include "aws/error.h"
#include "aws/sts.h"
#include "core/config.h"
#include "core/context.h"
#include "core/state.h"
#include "distribute/distribute_aws.h"
#include "distribute/distribute_grants.h"
#include "distribute/import.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/str.h"

#define TARGET_COPYING   "copying"
#define TARGET_AVAILABLE "available"

int dist_target_ids(const struct config *cfg, char ***ret_targets, char ***ret_accounts)
{
        char **t = NULL, **a = NULL;
        int r = 0;

        for (char **w = cfg->dist_share_accounts; r >= 0 && w && *w; w++)
                r = strv_push(&a, *w);
        for (char **w = cfg->dist_target_accounts; r >= 0 && w && *w; w++) {
                _cleanup_free_ char *id = strndup(*w, 12); /* ACCOUNT:ROLE_NAME, checked */

                r = id ? strv_push(&t, id) : -ENOMEM;
                if (r >= 0 && !strv_contains(a, id))
                        r = strv_push(&a, id);
        }
        if (r < 0) {
                strv_free(t);
                strv_free(a);
                return r;
        }
        *ret_targets = t;
        *ret_accounts = a;
        return 0;
}

/* The partition of region's ARNs (the role's): aws-cn and aws-us-gov have their own. */
static const char *partition(const char *region)
{
        if (startswith(region, "cn-"))
                return "aws-cn";
        if (startswith(region, "us-gov-"))
                return "aws-us-gov";
        return "aws";
}

/*
 * AssumeRole of the role of word (ACCOUNT:ROLE_NAME) with the run's credentials, the run id in
 * the session name and target_external_id; *ret signs with the role's credentials only.
 */
static int assume(struct dist *d, const char *word, struct creds_provider **ret)
{
        _cleanup_free_ char *arn =
                strprintf("arn:%s:iam::%.12s:role/%s", partition(d->run->region), word, word + 13);
        _cleanup_free_ char *session = strprintf("ec2-imaged-%s", d->run->run_id);
        struct sts_client_config sc = {
                .region = d->run->region,
                .endpoint_url = d->cfg->endpoint_url,
                .transport = context_aws_transport(d->ctx),
        };
        struct sts_assume_role_args a = {
                .role_arn = arn,
                .session_name = session,
                .external_id = d->cfg->dist_target_external_id,
        };
        struct aws_credentials cr = {};
        struct sts_client *sts = NULL;
        struct aws_error e = {};
        int r;

        if (!arn || !session)
                return -ENOMEM;
        r = sts_client_new(&sc, d->ctx->creds, &sts);
        if (r >= 0)
                r = sts_assume_role(sts, &a, &cr, &e);
        sts_client_free(sts);
        if (r < 0) {
                d->why = strprintf("STS AssumeRole of %s ([distribute] target_accounts %s): %s%s%s",
                                   arn, word, aws_error_describe(&e, r), e.message ? ": " : "",
                                   strempty(e.message));
                aws_error_done(&e);
                return r;
        }
        r = creds_provider_new_static(&cr, ret);
        aws_credentials_done(&cr); /* wiped: the provider holds the only copy */
        if (r >= 0)
                log_notice("Assumed %s for the copies into account %.12s", arn, word);
        return r;
}

static int target_set(struct dist *d, struct run_target *t, const char *image_id, const char *state)
{
        int r = image_id ? run_state_set(&t->image_id, image_id) : 0;

        if (r >= 0)
                r = run_state_set(&t->state, state);
        return r < 0 ? r : dist_save(d);
}

/* The copy of rd's image into account in rd's region, with tc (that account's clients). */
static int push_one(struct dist *d, struct dist_clients *tc, const char *account,
                    struct run_dist *rd)
{
        struct ec2_client *ec2 = dist_clients_ec2(tc, rd->region);
        struct ec2_tag tags[RUN_TAGS_MAX];
        /* The copy carries the run's rendered tags too: the same provenance in every account. */
        struct import_request q = {
                .tags = tags,
                .n_tags = d->run->n_tags, /* at most RUN_TAGS_MAX */
                .source_image_id = rd->image_id,
                .source_region = rd->region,
                .region = rd->region,
                .account = account,
                .kms_key = config_target_kms_key(d->cfg, account, rd->region),
                .ssm_parameter = config_target_ssm_parameter(d->cfg, account),
                .wait_timeout_s = d->cfg->wait_timeout_s,
                .wait_poll_max_s = d->cfg->wait_poll_max_s,
        };
        _cleanup_free_ char *why = NULL;
        struct import_result res = {};
        struct run_target *t;
        int r;

        for (size_t i = 0; i < q.n_tags; i++)
                tags[i] = (struct ec2_tag){d->run->tags[i].key, d->run->tags[i].value};
        r = run_state_target(d->run, account, rd->region, &t);
        if (r < 0 || streq_ptr(t->state, TARGET_AVAILABLE))
                return r;
        /* Recorded before CopyImage: a resumed run asks again, and import adopts a lost copy. */
        if (!t->state && (r = target_set(d, t, NULL, TARGET_COPYING)) < 0)
                return r;
        r = import_image(ec2, ec2, dist_clients_kms(tc, rd->region),
                         dist_clients_ssm(tc, rd->region), &q, &res, &why);
        if (r < 0) {
                d->why = strprintf("copy of %s into account %s in %s: %s", rd->image_id, account,
                                   rd->region, why ? why : strerror(-r));
                return r;
        }
        log_notice("Copy %s of %s in account %s in %s is available%s", res.image_id, rd->image_id,
                   account, rd->region, res.adopted ? " (made before an interruption)" : "");
        r = target_set(d, t, res.image_id, TARGET_AVAILABLE);
        import_result_done(&res);
        return r;
}

static bool all_available(const struct dist *d, const char *account)
{
        for (size_t i = 0; i < d->run->n_dist; i++) {
                bool found = false;

                for (size_t j = 0; j < d->run->n_targets && !found; j++) {
                        const struct run_target *t = &d->run->targets[j];

                        found = streq(t->account, account) &&
                                streq(t->region, d->run->dist[i].region) &&
                                streq_ptr(t->state, TARGET_AVAILABLE);
                }
                if (!found)
                        return false;
        }
        return true;
}

/* Every copy of word's account (ACCOUNT:ROLE_NAME), under its role's credentials. */
static int push_account(struct dist *d, const char *word, const char *account)
{
        struct creds_provider *creds = NULL;
        struct dist_clients tc = {};
        char **regions = NULL;
        int r;

        r = assume(d, word, &creds);
        for (size_t i = 0; r >= 0 && i < d->run->n_dist; i++)
                r = strv_push(&regions, d->run->dist[i].region);
        if (r >= 0)
                r = dist_clients_open_as(&tc, d->ctx, creds, regions);
        if (r < 0 && !d->why)
                d->why = strprintf("cannot set up the clients of account %s: %s", account,
                                   strerror(-r));
        for (size_t i = 0; r >= 0 && i < d->run->n_dist; i++)
                r = push_one(d, &tc, account, &d->run->dist[i]);
        dist_clients_done(&tc);
        creds_provider_free(creds); /* wipes the role's credentials */
        strv_free(regions);
        return r;
}

int dist_targets_push(struct dist *d)
{
        int r = 0;

        for (char **w = d->cfg->dist_target_accounts; r >= 0 && w && *w; w++) {
                char account[13];

                memcpy(account, *w, 12); /* ACCOUNT:ROLE_NAME, checked as read */
                account[12] = '\0';
                if (!all_available(d, account))
                        r = push_account(d, *w, account);
                /* Its copies are made: the owner's keys are no longer its business. */
                if (r >= 0)
                        r = dist_grants_revoke_grantee(d, account);
        }
        return r;
}
