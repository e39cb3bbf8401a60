/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `grants [--revoke-expired]`: every KMS grant recorded in the state, with its key, grantee,
 * image, region, when it was created (or last reused), when it expires and whether it stands;
 * with --revoke-expired the expired ones are revoked first, under the run lock.
 * `kms-policy [--region R]`: for each configured customer key (of region R), the statements its
 * key policy needs for share_organizations and share_ous (distribute_policy.h).
 */
#include "cli/cmd_grants.h"

#include <errno.h>
#include <unistd.h>

#include "cli/output.h"
#include "core/config.h"
#include "core/context.h"
#include "core/state.h"
#include "distribute/distribute_grants.h"
#include "distribute/distribute_policy.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/timeutil.h"

static const char *grant_state(const struct config *cfg, const struct grant_record *g, usec_t now)
{
        if (g->revoked != 0)
                return "revoked";
        return grant_expired(cfg, g, now) ? "expired" : "active";
}

static void add_time(struct result *res, cJSON *o, const char *key, usec_t t)
{
        char buf[21];

        if (t == 0) {
                result_add_str(res, o, key, NULL);
                return;
        }
        format_iso8601(t, buf);
        result_add_str(res, o, key, buf);
}

static void grants_result(struct result *res, const struct config *cfg, const struct state *st,
                          usec_t now)
{
        cJSON *arr = result_add_array(res, res->tree, "grants");

        for (size_t i = 0; i < st->n_grants; i++) {
                const struct grant_record *g = &st->grants[i];
                cJSON *o = result_add(res, arr, NULL, grant_record_to_json(g));

                add_time(res, o, "created", g->created);
                add_time(res, o, "expires", grant_expires(cfg, g));
                add_time(res, o, "revoked", g->revoked);
                result_add_str(res, o, "state", grant_state(cfg, g, now));
        }
}

/*
 * Revoke the expired grants under the run lock: EXIT_OK with *ret_failed set when KMS refused
 * some (they are listed as expired still), else the exit code of the failure.
 */
static int revoke_expired(const struct cli *c, struct state *st, usec_t now, struct result *res,
                          bool *ret_failed)
{
        const char *dir = c->ctx->config->state_dir;
        unsigned revoked = 0, failed = 0;
        int fd, r;

        fd = state_lock(dir);
        if (fd == -EBUSY) {
                log_error("Another run holds the lock in %s; try again when it is done", dir);
                return EXIT_BUSY;
        }
        if (fd < 0) {
                log_error_errno(fd, "%s: cannot take the run lock: %m", dir);
                return EXIT_FAILED;
        }
        /* Read under the lock: a run may have recorded grants since. */
        state_done(st);
        r = state_load(dir, st);
        if (r < 0)
                log_error_errno(r, "%s/state.json: %m", dir);
        else
                r = grants_revoke_expired(c->ctx, st, now, &revoked, &failed);
        (void)close(fd);
        if (r < 0)
                return EXIT_FAILED;
        result_add(res, res->tree, "revoked", cJSON_CreateNumber(revoked));
        result_add(res, res->tree, "revoke_failed", cJSON_CreateNumber(failed));
        *ret_failed = failed > 0;
        return EXIT_OK;
}

int cmd_grants(const struct cli *c)
{
        const char *dir = c->ctx->config->state_dir;
        usec_t now = now_usec(CLOCK_REALTIME);
        struct state st = {};
        struct result res;
        bool failed = false;
        int r, rc = EXIT_OK;

        r = state_load(dir, &st);
        if (r < 0) {
                log_error_errno(r, "%s/state.json: %m", dir);
                return EXIT_FAILED;
        }
        result_new(&res, VIEW_GRANTS);
        if (c->revoke_expired)
                rc = revoke_expired(c, &st, now, &res, &failed);
        if (rc != EXIT_OK) {
                result_done(&res);
                state_done(&st);
                return rc;
        }
        grants_result(&res, c->ctx->config, &st, now);
        state_done(&st);
        return output_finish(&res, c->json, failed ? EXIT_FAILED : EXIT_OK);
}

int cmd_kms_policy(const struct cli *c)
{
        const struct config *cfg = c->ctx->config;
        struct result res;
        cJSON *keys;

        if (!cfg->dist_share_orgs && !cfg->dist_share_ous) {
                log_error("Neither [distribute] share_organizations nor share_ous is set: "
                          "no key policy is needed");
                return EXIT_USAGE;
        }
        result_new(&res, VIEW_KMS_POLICY);
        keys = result_add_array(&res, res.tree, "keys");
        for (char **w = cfg->dist_kms_keys; w && *w; w++) {
                const char *key = strchr(*w, ':');
                _cleanup_free_ char *region = key ? strndup(*w, (size_t)(key - *w)) : NULL;
                cJSON *o, *st = NULL;

                if (!region || (c->region && !streq(region, c->region)))
                        continue;
                if (dist_policy_statements(cfg, region, &st) < 0)
                        res.error = -ENOMEM;
                o = result_add_object(&res, keys, NULL);
                result_add_str(&res, o, "region", region);
                result_add_str(&res, o, "key", key + 1);
                result_add(&res, o, "statements", st);
        }
        return output_finish(&res, c->json, EXIT_OK);
}
