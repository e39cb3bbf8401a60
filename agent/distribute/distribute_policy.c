/* SPDX-License-Identifier: Apache-2.0 */
/* Key-policy statements for organizations and OUs (see distribute_policy.h). */
#include "distribute/distribute_policy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "aws/awsjson.h"
#include "aws/kms.h"
#include "core/config.h"
#include "distribute/distribute_aws.h"
#include "util/json.h"
#include "util/macro.h"
#include "util/str.h"

#define SID_ORGS "ec2-imaged-share-organizations"
#define SID_OUS  "ec2-imaged-share-ous"

/* The organization id of an organization ARN (...:organization/o-x), or the word as given. */
static const char *org_id(const char *arn)
{
        const char *s = strrchr(arn, '/');

        return s ? s + 1 : arn;
}

/* The aws:PrincipalOrgPaths pattern of an OU ARN (...:ou/o-x/ou-y): "o-x/STAR/ou-y/STAR". */
static int push_ou_path(char ***v, const char *arn)
{
        const char *s = strstr(arn, ":ou/");
        const char *slash = s ? strchr(s + 4, '/') : NULL;

        if (!slash)
                return strv_pushf(v, "%s/*", s ? s + 4 : arn);
        return strv_pushf(v, "%.*s/*/%s/*", (int)(slash - (s + 4)), s + 4, slash + 1);
}

/* The values of the condition key: the organization ids, or the OU paths. */
static int condition_values(const struct config *cfg, bool ous, char ***ret)
{
        char **v = NULL;
        int r = 0;

        for (char **w = ous ? cfg->dist_share_ous : cfg->dist_share_orgs; r >= 0 && w && *w; w++)
                r = ous ? push_ou_path(&v, *w) : strv_push(&v, org_id(*w));
        if (r < 0)
                strv_free(v);
        else
                *ret = v;
        return r;
}

/* "kms:" and each operation a recipient's CopyImage needs (the grants' own). */
static cJSON *actions(void)
{
        cJSON *a = cJSON_CreateArray();

        for (size_t i = 0; a && i < KMS_IMAGE_GRANT_OPS; i++) {
                _cleanup_free_ char *s = strprintf("kms:%s", kms_image_grant_ops[i]);
                cJSON *item = s ? cJSON_CreateString(s) : NULL;

                if (!item) {
                        cJSON_Delete(a);
                        return NULL;
                }
                cJSON_AddItemToArray(a, item);
        }
        return a;
}

/*
 * The condition: through EC2 of region, and (StringEquals) a principal of the organizations or
 * (ForAnyValue:StringLike) a principal under the OUs.
 */
static cJSON *condition(const char *region, bool ous, char **vals)
{
        _cleanup_free_ char *via = strprintf("ec2.%s.amazonaws.com", region);
        cJSON *cond = cJSON_CreateObject(), *eq, *who, *list;

        eq = cond ? cJSON_AddObjectToObject(cond, "StringEquals") : NULL;
        who = ous && cond ? cJSON_AddObjectToObject(cond, "ForAnyValue:StringLike") : eq;
        list = cJSON_CreateStringArray((const char *const *)vals, (int)strv_length(vals));
        if (!via || !eq || !who || !list || json_add_str(eq, "kms:ViaService", via) < 0 ||
            !cJSON_AddItemToObject(who, ous ? "aws:PrincipalOrgPaths" : "aws:PrincipalOrgID",
                                   list)) {
                cJSON_Delete(cond);
                return NULL;
        }
        return cond;
}

static cJSON *statement(const struct config *cfg, const char *region, bool ous)
{
        _cleanup_strv_free_ char **vals = NULL;
        cJSON *st = cJSON_CreateObject(), *princ, *a = actions(), *cond = NULL;
        int e = 0;

        if (st && a && condition_values(cfg, ous, &vals) >= 0 && vals)
                cond = condition(region, ous, vals);
        if (!st || !a || !cond) {
                cJSON_Delete(st);
                cJSON_Delete(a);
                cJSON_Delete(cond);
                return NULL;
        }
        e |= json_add_str(st, "Sid", ous ? SID_OUS : SID_ORGS);
        e |= json_add_str(st, "Effect", "Allow");
        princ = cJSON_AddObjectToObject(st, "Principal");
        e |= !princ || json_add_str(princ, "AWS", "*") < 0;
        cJSON_AddItemToObject(st, "Action", a);
        e |= json_add_str(st, "Resource", "*");
        cJSON_AddItemToObject(st, "Condition", cond);
        if (e) {
                cJSON_Delete(st);
                return NULL;
        }
        return st;
}

int dist_policy_statements(const struct config *cfg, const char *region, cJSON **ret)
{
        cJSON *arr;

        *ret = NULL;
        if (!cfg->dist_share_orgs && !cfg->dist_share_ous)
                return 0;
        arr = cJSON_CreateArray();
        for (int ous = 0; arr && ous <= 1; ous++) {
                cJSON *st;

                if (!(ous ? cfg->dist_share_ous : cfg->dist_share_orgs))
                        continue;
                st = statement(cfg, region, ous);
                if (!st) {
                        cJSON_Delete(arr);
                        return -ENOMEM;
                }
                cJSON_AddItemToArray(arr, st);
        }
        if (!arr)
                return -ENOMEM;
        *ret = arr;
        return 0;
}

/* Whether v (a string or an array of strings) holds s. */
static bool holds(const cJSON *v, const char *s)
{
        const cJSON *i;

        if (cJSON_IsString(v))
                return streq(v->valuestring, s);
        cJSON_ArrayForEach(i, v) if (cJSON_IsString(i) && streq(i->valuestring, s)) return true;
        return false;
}

/* The value of condition key k under any operator of cond, or NULL. */
static const cJSON *condition_key(const cJSON *cond, const char *k)
{
        const cJSON *op, *v;

        cJSON_ArrayForEach(op, cond) if ((v = cJSON_GetObjectItemCaseSensitive(op, k))) return v;
        return NULL;
}

/* Whether st allows every action and condition value that want (our statement) asks for. */
static bool covers(const cJSON *st, const cJSON *want, bool ous)
{
        const cJSON *act = cJSON_GetObjectItemCaseSensitive(st, "Action"), *a, *have, *w;
        const char *k = ous ? "aws:PrincipalOrgPaths" : "aws:PrincipalOrgID";

        if (!holds(cJSON_GetObjectItemCaseSensitive(st, "Effect"), "Allow"))
                return false;
        cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(
                                      want, "Action")) if (!holds(act, a->valuestring) &&
                                                           !holds(act, "kms:*") &&
                                                           !holds(act, "*")) return false;
        have = condition_key(cJSON_GetObjectItemCaseSensitive(st, "Condition"), k);
        w = condition_key(cJSON_GetObjectItemCaseSensitive(want, "Condition"), k);
        if (!have)
                return false;
        cJSON_ArrayForEach(a, w) if (!holds(have, a->valuestring)) return false;
        return true;
}

int dist_policy_check(const struct config *cfg, const char *key, const char *policy, char **ret_why)
{
        _cleanup_json_ cJSON *doc = NULL, *want = NULL;
        const cJSON *w, *st;
        int r;

        /* The region does not matter here: kms:ViaService only narrows what is allowed. */
        r = dist_policy_statements(cfg, "any", &want);
        if (r < 0 || !want)
                return r;
        doc = cJSON_Parse(policy);
        if (!doc) {
                *ret_why = strprintf("KMS key %s: its key policy is not JSON", key);
                return -EBADMSG;
        }
        cJSON_ArrayForEach(w, want)
        {
                const char *sid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(w, "Sid"));
                bool ous = streq(sid, SID_OUS), found = false;

                cJSON_ArrayForEach(st, cJSON_GetObjectItemCaseSensitive(doc, "Statement")) found =
                        found || covers(st, w, ous);
                if (!found) {
                        *ret_why = strprintf(
                                "KMS key %s: its key policy does not allow the configured %s "
                                "(missing statement %s; `ec2-imaged kms-policy` prints it)",
                                key, ous ? "share_ous" : "share_organizations", sid);
                        return -EPERM;
                }
        }
        return 0;
}

int dist_check_key_policy(struct dist_clients *c, const struct config *cfg, const char *region,
                          const char *key, char **ret_why)
{
        _cleanup_free_ char *policy = NULL;
        struct aws_error e = {};
        int r;

        if (!cfg->dist_share_orgs && !cfg->dist_share_ous)
                return 0;
        r = kms_get_key_policy(dist_clients_kms(c, region), key, &policy, &e);
        if (r < 0)
                return dist_fail(ret_why, r, &e, "KMS GetKeyPolicy", region);
        return dist_policy_check(cfg, key, policy, ret_why);
}
