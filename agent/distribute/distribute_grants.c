/* SPDX-License-Identifier: Apache-2.0 */
/* KMS grants recorded, reused and revoked (see distribute_grants.h). */
#include "distribute/distribute_grants.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "aws/awsjson.h"
#include "aws/kms.h"
#include "core/config.h"
#include "core/context.h"
#include "core/state.h"
#include "distribute/distribute_aws.h"
#include "distribute/distribute_internal.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/str.h"

#define USEC_PER_DAY (86400ULL * USEC_PER_SEC)

usec_t grant_expires(const struct config *c, const struct grant_record *g)
{
        if (c->dist_grant_ttl_days == 0)
                return 0;
        return g->created + c->dist_grant_ttl_days * USEC_PER_DAY;
}

bool grant_expired(const struct config *c, const struct grant_record *g, usec_t now)
{
        usec_t e = grant_expires(c, g);

        return g->revoked == 0 && e != 0 && now >= e;
}

/*
 * RevokeGrant of g as the key's owner; recorded as revoked at now (a grant KMS no longer knows
 * is revoked as well). AWS failures are logged and returned.
 */
static int revoke_one(struct awsjson_client *kms, struct grant_record *g, usec_t now)
{
        struct aws_error e = {};
        int r;

        if (!kms) {
                log_warning("Cannot revoke grant %s on %s: no KMS client for %s", g->grant_id,
                            g->key_arn, g->region);
                return -ENOENT;
        }
        r = kms_revoke_grant(kms, g->key_arn, g->grant_id, &e);
        if (r < 0 && !streq_ptr(e.code, "NotFoundException")) {
                log_warning("Cannot revoke grant %s on %s for %s in %s: %s%s%s", g->grant_id,
                            g->key_arn, g->grantee, g->region, aws_error_describe(&e, r),
                            e.message ? ": " : "", strempty(e.message));
                aws_error_done(&e);
                return r;
        }
        aws_error_done(&e);
        g->revoked = now;
        log_notice("Revoked KMS grant %s on %s for %s in %s (image %s)", g->grant_id, g->key_arn,
                   g->grantee, g->region, strna(g->image_id));
        return 0;
}

/* The regions of st's standing grants, ctx's own first (dist_clients_open's order). */
static int grant_regions(struct context *ctx, const struct state *st, char ***ret)
{
        char **v = NULL;
        int r = strv_push(&v, ctx->region);

        for (size_t i = 0; r >= 0 && i < st->n_grants; i++)
                if (st->grants[i].revoked == 0 && !strv_contains(v, st->grants[i].region))
                        r = strv_push(&v, st->grants[i].region);
        if (r < 0) {
                strv_free(v);
                return r;
        }
        *ret = v;
        return 0;
}

int grants_revoke_expired(struct context *ctx, struct state *st, usec_t now, unsigned *ret_revoked,
                          unsigned *ret_failed)
{
        const struct config *cfg = ctx->config;
        struct dist_clients cl = {};
        _cleanup_strv_free_ char **regions = NULL;
        unsigned revoked = 0, failed = 0;
        bool any = false;
        int r;

        for (size_t i = 0; i < st->n_grants; i++)
                any = any || grant_expired(cfg, &st->grants[i], now);
        if (!any)
                goto out;
        /* The clients of the own region share its EC2 client's budget. */
        r = ctx->ec2 ? 0 : context_open_ec2(ctx);
        if (r >= 0)
                r = grant_regions(ctx, st, &regions);
        if (r >= 0)
                r = dist_clients_open(&cl, ctx, regions);
        if (r < 0) {
                dist_clients_done(&cl);
                return log_error_errno(r, "Cannot set up the KMS clients: %m");
        }
        for (size_t i = 0; r >= 0 && i < st->n_grants; i++) {
                struct grant_record *g = &st->grants[i];

                if (!grant_expired(cfg, g, now))
                        continue;
                if (revoke_one(dist_clients_kms(&cl, g->region), g, now) < 0) {
                        failed++;
                        continue;
                }
                revoked++;
                r = state_save(cfg->state_dir, st);
                if (r < 0)
                        log_error_errno(r, "%s: cannot save the run state: %m", cfg->state_dir);
        }
        dist_clients_done(&cl);
        if (r < 0)
                return r;
out:
        if (ret_revoked)
                *ret_revoked = revoked;
        if (ret_failed)
                *ret_failed = failed;
        return 0;
}

int dist_grants_revoke_images(struct dist *d, const char *region, char *const *gone)
{
        usec_t now = now_usec(CLOCK_REALTIME);
        int r = 0;

        for (size_t i = 0; r >= 0 && i < d->st->n_grants; i++) {
                struct grant_record *g = &d->st->grants[i];

                if (g->revoked != 0 || !streq(g->region, region) || !g->image_id ||
                    !strv_contains(gone, g->image_id))
                        continue;
                if (revoke_one(dist_clients_kms(&d->clients, region), g, now) >= 0)
                        r = dist_save(d);
        }
        return r;
}

int dist_grantees(const struct config *cfg, char ***ret)
{
        char **v = NULL;
        int r = 0;

        for (char **a = cfg->dist_share_accounts; r >= 0 && cfg->dist_create_grants && a && *a; a++)
                r = strv_push(&v, *a);
        for (char **t = cfg->dist_target_accounts; r >= 0 && t && *t; t++) {
                _cleanup_free_ char *id = strndup(*t, 12); /* ACCOUNT:ROLE_NAME, checked */

                r = !id ? -ENOMEM : strv_contains(v, id) ? 0 : strv_push(&v, id);
        }
        if (r < 0) {
                strv_free(v);
                return r;
        }
        *ret = v;
        return 0;
}

/* Whether g is one of ours with every operation a copy needs. */
static bool reusable(const struct kms_grant *g)
{
        if (!g->name || !startswith(g->name, GRANT_NAME_PREFIX))
                return false;
        for (size_t i = 0; i < KMS_IMAGE_GRANT_OPS; i++)
                if (!strv_contains(g->operations, kms_image_grant_ops[i]))
                        return false;
        return true;
}

/* Record grant_id (new, or standing again for this run's image) and save. */
static int record(struct dist *d, struct run_dist *rd, const char *key_arn, const char *grantee,
                  const char *grant_id)
{
        struct grant_record *g = state_find_grant(d->st, grant_id);
        struct grant_record n = {
                .grant_id = (char *)grant_id,
                .key_arn = (char *)key_arn,
                .grantee = (char *)grantee,
                .image_id = rd->image_id,
                .region = rd->region,
                .run_id = d->run->run_id,
                .created = now_usec(CLOCK_REALTIME),
        };
        int r = 0;

        if (!g)
                r = state_add_grant(d->st, &n);
        else {
                /* Reused: it now serves this run's image, and its lifetime starts again. */
                r = run_state_set(&g->image_id, rd->image_id);
                if (r >= 0)
                        r = run_state_set(&g->run_id, d->run->run_id);
                g->created = n.created;
                g->revoked = 0;
        }
        if (r < 0) {
                d->why = strprintf("cannot record KMS grant %s: %s", grant_id, strerror(-r));
                return r;
        }
        return dist_save(d);
}

/* A standing grant of ours on key_arn for grantee with the operations needed, or NULL. */
static int find_reusable(struct dist *d, struct awsjson_client *kms, const char *region,
                         const char *key_arn, const char *grantee, char **ret)
{
        _cleanup_free_ char *principal = NULL;
        struct kms_grant *gs = NULL;
        struct aws_error e = {};
        size_t n = 0;
        int r;

        *ret = NULL;
        r = kms_grantee_principal(key_arn, grantee, &principal);
        if (r < 0)
                return r;
        r = kms_list_grants(kms, key_arn, principal, &gs, &n, &e);
        if (r < 0)
                return dist_fail(&d->why, r, &e, "KMS ListGrants", region);
        for (size_t i = 0; i < n && !*ret; i++)
                if (reusable(&gs[i]) && !(*ret = strdup(gs[i].grant_id)))
                        r = -ENOMEM;
        kms_grants_free(gs, n);
        return r;
}

int dist_grant(struct dist *d, struct run_dist *rd, const char *key_arn, const char *grantee)
{
        struct awsjson_client *kms = dist_clients_kms(&d->clients, rd->region);
        _cleanup_free_ char *id = NULL, *name = NULL;
        struct aws_error e = {};
        int r;

        r = find_reusable(d, kms, rd->region, key_arn, grantee, &id);
        if (r < 0)
                return r;
        if (id) {
                log_info("KMS grant %s on %s for %s in %s reused", id, key_arn, grantee,
                         rd->region);
                return record(d, rd, key_arn, grantee, id);
        }
        name = strprintf(GRANT_NAME_PREFIX "%s", d->run->run_id);
        if (!name)
                return -ENOMEM;
        r = kms_create_grant(kms, key_arn, grantee, name, &id, &e);
        if (r < 0)
                return dist_fail(&d->why, r, &e, "KMS CreateGrant", rd->region);
        log_info("KMS grant %s on %s for %s in %s", id, key_arn, grantee, rd->region);
        return record(d, rd, key_arn, grantee, id);
}

/* Whether image_id is one of the run's images (its own or a copy in a region of the run). */
static bool run_image(const struct run_state *run, const char *image_id)
{
        for (size_t i = 0; image_id && i < run->n_dist; i++)
                if (streq_ptr(run->dist[i].image_id, image_id))
                        return true;
        return false;
}

int dist_grants_revoke_grantee(struct dist *d, const char *grantee)
{
        usec_t now = now_usec(CLOCK_REALTIME);
        int r = 0;

        for (size_t i = 0; r >= 0 && i < d->st->n_grants; i++) {
                struct grant_record *g = &d->st->grants[i];

                if (g->revoked != 0 || !streq(g->grantee, grantee) ||
                    !run_image(d->run, g->image_id))
                        continue;
                r = revoke_one(dist_clients_kms(&d->clients, g->region), g, now);
                if (r < 0)
                        d->why = strprintf("KMS RevokeGrant %s on %s for %s in %s failed (logged); "
                                           "resume tries again",
                                           g->grant_id, g->key_arn, grantee, g->region);
                else
                        r = dist_save(d);
        }
        return r;
}
