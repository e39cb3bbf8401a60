/* SPDX-License-Identifier: Apache-2.0 */
/*
 * KMS grants and key policies over awsjson_call(): ListGrants read page by page up to a ceiling,
 * RevokeGrant, RetireGrant, GetKeyPolicy and PutKeyPolicy.
 */
#include "aws/kms.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/json.h"
#include "util/macro.h"
#include "util/str.h"

static void grant_done(struct kms_grant *g)
{
        free(g->grant_id);
        free(g->key_id);
        free(g->name);
        free(g->grantee_principal);
        free(g->retiring_principal);
        free(g->issuing_account);
        strv_free(g->operations);
        *g = (struct kms_grant){};
}

void kms_grants_free(struct kms_grant *g, size_t n)
{
        for (size_t i = 0; g && i < n; i++)
                grant_done(&g[i]);
        free(g);
}

/* The string member name of o, copied; NULL (and 0) when it is missing or not a string. */
static int member(const cJSON *o, const char *name, char **ret)
{
        const cJSON *i = cJSON_GetObjectItemCaseSensitive(o, name);

        *ret = cJSON_IsString(i) ? strdup(i->valuestring) : NULL;
        return cJSON_IsString(i) && !*ret ? -ENOMEM : 0;
}

static int grant_from_json(const cJSON *o, struct kms_grant *g)
{
        const cJSON *ops = cJSON_GetObjectItemCaseSensitive(o, "Operations");
        const cJSON *date = cJSON_GetObjectItemCaseSensitive(o, "CreationDate");
        const cJSON *op;
        int r;

        if (!cJSON_IsObject(o))
                return -EBADMSG;
        r = member(o, "GrantId", &g->grant_id);
        if (r >= 0)
                r = member(o, "KeyId", &g->key_id);
        if (r >= 0)
                r = member(o, "Name", &g->name);
        if (r >= 0)
                r = member(o, "GranteePrincipal", &g->grantee_principal);
        if (r >= 0)
                r = member(o, "RetiringPrincipal", &g->retiring_principal);
        if (r >= 0)
                r = member(o, "IssuingAccount", &g->issuing_account);
        for (op = cJSON_IsArray(ops) ? ops->child : NULL; op && r >= 0; op = op->next)
                if (cJSON_IsString(op))
                        r = strv_push(&g->operations, op->valuestring);
        if (r < 0)
                return r;
        /* Seconds since the epoch, with a fraction; a grant without one is no less a grant. */
        if (cJSON_IsNumber(date) && date->valuedouble > 0 && date->valuedouble < 1e11)
                g->creation_date = (usec_t)(date->valuedouble * (double)USEC_PER_SEC);
        if (!g->grant_id || !*g->grant_id || !g->key_id || !g->grantee_principal)
                return -EBADMSG;
        return 0;
}

/* Append the grants of one answer to *grants; *ret_marker: NextMarker while Truncated. */
static int grants_from_json(const cJSON *ans, struct kms_grant **grants, size_t *n,
                            char **ret_marker)
{
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(ans, "Grants");
        const cJSON *item;
        char *marker = NULL;
        int r;

        if (!cJSON_IsArray(list))
                return -EBADMSG;
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ans, "Truncated"))) {
                r = member(ans, "NextMarker", &marker);
                if (r < 0)
                        return r;
                if (!marker || !*marker) {
                        free(marker);
                        return -EBADMSG;
                }
        }
        cJSON_ArrayForEach(item, list)
        {
                struct kms_grant *v = reallocarray(*grants, *n + 1, sizeof(*v));

                if (!v) {
                        free(marker);
                        return -ENOMEM;
                }
                *grants = v;
                v[*n] = (struct kms_grant){};
                r = grant_from_json(item, &v[(*n)++]);
                if (r < 0) {
                        free(marker);
                        return r;
                }
        }
        *ret_marker = marker;
        return 0;
}

int kms_parse_grants_page(const char *body, size_t len, struct kms_grant **grants, size_t *n,
                          char **ret_marker)
{
        _cleanup_json_ cJSON *j = NULL;
        int r = awsjson_parse(body, len, &j);

        if (r < 0)
                return r;
        return grants_from_json(j, grants, n, ret_marker);
}

/* A request {"KeyId": key_id}, which every call here starts from. */
static cJSON *key_request(const char *key_id)
{
        cJSON *req;

        if (!key_id || !*key_id)
                return NULL;
        req = cJSON_CreateObject();
        if (req && !cJSON_AddStringToObject(req, "KeyId", key_id)) {
                cJSON_Delete(req);
                return NULL;
        }
        return req;
}

/* One page of ListGrants, after marker (NULL: the first). */
static int list_page(struct awsjson_client *c, const char *key_id, const char *grantee,
                     const char *marker, struct kms_grant **grants, size_t *n, char **ret_marker,
                     struct aws_error *err)
{
        _cleanup_json_ cJSON *req = key_request(key_id), *ans = NULL;
        int r;

        if (!req || !cJSON_AddNumberToObject(req, "Limit", KMS_GRANTS_PAGE) ||
            (marker && !cJSON_AddStringToObject(req, "Marker", marker)) ||
            (grantee && !cJSON_AddStringToObject(req, "GranteePrincipal", grantee)))
                return -ENOMEM;
        r = awsjson_call(c, "ListGrants", req, &ans, err);
        if (r < 0)
                return r;
        return grants_from_json(ans, grants, n, ret_marker);
}

/* Keep only the grants of grantee (in place). */
static void keep_grantee(struct kms_grant *g, size_t *n, const char *grantee)
{
        size_t k = 0;

        for (size_t i = 0; i < *n; i++) {
                if (streq(g[i].grantee_principal, grantee))
                        g[k++] = g[i];
                else
                        grant_done(&g[i]);
        }
        *n = k;
}

int kms_list_grants(struct awsjson_client *c, const char *key_id, const char *grantee,
                    struct kms_grant **ret, size_t *ret_n, struct aws_error *err)
{
        _cleanup_free_ char *marker = NULL;
        struct kms_grant *grants = NULL;
        size_t n = 0;
        int r = 0;

        if (!key_id || !*key_id || (grantee && !*grantee))
                return -EINVAL;
        for (unsigned page = 0;; page++) {
                char *next = NULL;

                if (page == KMS_GRANTS_MAX_PAGES) {
                        /* As for the EC2 listings: the message names what was listed. */
                        aws_error_done(err);
                        err->message = strprintf("grants of key %s: more than %u pages of "
                                                 "results (Truncated still set); not listing "
                                                 "further",
                                                 key_id, KMS_GRANTS_MAX_PAGES);
                        r = -E2BIG;
                        break;
                }
                r = list_page(c, key_id, grantee, marker, &grants, &n, &next, err);
                free(marker);
                marker = next;
                if (r < 0 || !marker)
                        break;
        }
        if (r < 0) {
                kms_grants_free(grants, n);
                return r;
        }
        if (grantee)
                keep_grantee(grants, &n, grantee);
        *ret = grants;
        *ret_n = n;
        return 0;
}

/* A call whose request is the key and at most one more string, and whose answer is not read. */
static int key_call(struct awsjson_client *c, const char *operation, const char *key_id,
                    const char *name, const char *value, cJSON **ret, struct aws_error *err)
{
        _cleanup_json_ cJSON *req = key_request(key_id);

        if (!req || (name && !cJSON_AddStringToObject(req, name, value)))
                return key_id && *key_id ? -ENOMEM : -EINVAL;
        return awsjson_call(c, operation, req, ret, err);
}

int kms_revoke_grant(struct awsjson_client *c, const char *key_id, const char *grant_id,
                     struct aws_error *err)
{
        if (!grant_id || !*grant_id)
                return -EINVAL;
        return key_call(c, "RevokeGrant", key_id, "GrantId", grant_id, NULL, err);
}

int kms_retire_grant(struct awsjson_client *c, const char *key_id, const char *grant_id,
                     struct aws_error *err)
{
        if (!grant_id || !*grant_id)
                return -EINVAL;
        return key_call(c, "RetireGrant", key_id, "GrantId", grant_id, NULL, err);
}

int kms_get_key_policy(struct awsjson_client *c, const char *key_id, char **ret,
                       struct aws_error *err)
{
        _cleanup_json_ cJSON *ans = NULL;
        char *policy = NULL;
        int r;

        r = key_call(c, "GetKeyPolicy", key_id, "PolicyName", "default", &ans, err);
        if (r < 0)
                return r;
        r = member(ans, "Policy", &policy);
        if (r < 0)
                return r;
        if (!policy)
                return -EBADMSG;
        *ret = policy;
        return 0;
}

int kms_put_key_policy(struct awsjson_client *c, const char *key_id, const char *policy,
                       struct aws_error *err)
{
        _cleanup_json_ cJSON *req = key_request(key_id);

        if (!policy || !*policy || !key_id || !*key_id)
                return -EINVAL;
        if (!req || !cJSON_AddStringToObject(req, "PolicyName", "default") ||
            !cJSON_AddStringToObject(req, "Policy", policy))
                return -ENOMEM;
        return awsjson_call(c, "PutKeyPolicy", req, NULL, err);
}
