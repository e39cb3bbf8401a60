/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The KMS and SSM calls the agent makes (DescribeKey, CreateGrant, PutParameter), each on top of
 * awsjson_call(), and the parsers of their answers.
 */
#include "aws/awsjson.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/json.h"
#include "util/macro.h"

/* Copy the string member name of o into *ret; a missing or non-string member leaves NULL. */
static int dup_str(const cJSON *o, const char *name, char **ret)
{
        const cJSON *i = cJSON_GetObjectItemCaseSensitive(o, name);

        *ret = NULL;
        if (!cJSON_IsString(i))
                return 0;
        *ret = strdup(i->valuestring);
        return *ret ? 0 : -ENOMEM;
}

void kms_key_done(struct kms_key *k)
{
        if (!k)
                return;
        free(k->key_id);
        free(k->arn);
        free(k->key_manager);
        free(k->key_state);
        *k = (struct kms_key){};
}

static int key_from_json(const cJSON *j, struct kms_key *ret)
{
        _cleanup_(kms_key_done) struct kms_key k = {};
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "KeyMetadata");
        int r;

        if (!cJSON_IsObject(m))
                return -EBADMSG;
        r = dup_str(m, "KeyId", &k.key_id);
        if (r >= 0)
                r = dup_str(m, "Arn", &k.arn);
        if (r >= 0)
                r = dup_str(m, "KeyManager", &k.key_manager);
        if (r >= 0)
                r = dup_str(m, "KeyState", &k.key_state);
        if (r < 0)
                return r;
        /* Without its id and its manager the answer cannot decide anything. */
        if (!k.key_id || !*k.key_id || !k.key_manager)
                return -EBADMSG;
        *ret = k;
        k = (struct kms_key){};
        return 0;
}

int kms_parse_describe_key(const char *body, size_t len, struct kms_key *ret)
{
        _cleanup_json_ cJSON *j = NULL;
        int r = awsjson_parse(body, len, &j);

        if (r < 0)
                return r;
        return key_from_json(j, ret);
}

int kms_describe_key(struct awsjson_client *c, const char *key_id, struct kms_key *ret,
                     struct aws_error *err)
{
        _cleanup_json_ cJSON *req = NULL, *ans = NULL;
        int r;

        if (!key_id || !*key_id)
                return -EINVAL;
        req = cJSON_CreateObject();
        if (!req || !cJSON_AddStringToObject(req, "KeyId", key_id))
                return -ENOMEM;
        r = awsjson_call(c, "DescribeKey", req, &ans, err);
        if (r < 0)
                return r;
        return key_from_json(ans, ret);
}

/* The partition of a key ARN ("arn:aws-cn:kms:..."), "aws" when it is not an ARN. */
static const char *partition_of(const char *key_id, char *buf, size_t size)
{
        const char *p, *q;

        if (!startswith(key_id, "arn:"))
                return "aws";
        p = key_id + 4;
        q = strchr(p, ':');
        if (!q || q == p || (size_t)(q - p) >= size)
                return "aws";
        memcpy(buf, p, (size_t)(q - p));
        buf[q - p] = '\0';
        return buf;
}

/* What EBS needs in the grantee's account to copy or launch from an encrypted image. */
const char *const kms_image_grant_ops[KMS_IMAGE_GRANT_OPS + 1] = {
        "Decrypt",
        "DescribeKey",
        "GenerateDataKeyWithoutPlaintext",
        "ReEncryptFrom",
        "ReEncryptTo",
        "CreateGrant",
        NULL,
};

int kms_grantee_principal(const char *key_id, const char *grantee, char **ret)
{
        char part[32];

        /* A bare account id becomes its root principal; an ARN is used as given. */
        if (strspn(grantee, "0123456789") == strlen(grantee)) {
                if (asprintf(ret, "arn:%s:iam::%s:root", partition_of(key_id, part, sizeof(part)),
                             grantee) < 0)
                        return -ENOMEM;
                return 0;
        }
        *ret = strdup(grantee);
        return *ret ? 0 : -ENOMEM;
}

/* The CreateGrant request: the key, the grantee's principal, the operations, the name. */
static int grant_request(const char *key_id, const char *grantee, const char *name, cJSON **ret)
{
        _cleanup_json_ cJSON *req = NULL;
        _cleanup_free_ char *principal = NULL;
        cJSON *arr;
        int r;

        if (!key_id || !*key_id || !grantee || !*grantee)
                return -EINVAL;
        r = kms_grantee_principal(key_id, grantee, &principal);
        if (r < 0)
                return r;
        req = cJSON_CreateObject();
        arr = cJSON_CreateStringArray(kms_image_grant_ops, KMS_IMAGE_GRANT_OPS);
        if (!req || !arr) {
                cJSON_Delete(arr);
                return -ENOMEM;
        }
        cJSON_AddItemToObject(req, "Operations", arr);
        if (!cJSON_AddStringToObject(req, "KeyId", key_id) ||
            !cJSON_AddStringToObject(req, "GranteePrincipal", principal) ||
            (name && !cJSON_AddStringToObject(req, "Name", name)))
                return -ENOMEM;
        *ret = TAKE_PTR(req);
        return 0;
}

int kms_create_grant(struct awsjson_client *c, const char *key_id, const char *grantee,
                     const char *name, char **ret_grant_id, struct aws_error *err)
{
        _cleanup_json_ cJSON *req = NULL, *ans = NULL;
        int r = grant_request(key_id, grantee, name, &req);

        if (r >= 0)
                r = awsjson_call(c, "CreateGrant", req, &ans, err);
        if (r < 0 || !ret_grant_id)
                return r;
        r = dup_str(ans, "GrantId", ret_grant_id);
        if (r >= 0 && !*ret_grant_id)
                r = -EBADMSG;
        return r;
}

int kms_create_grant_dry_run(struct awsjson_client *c, const char *key_id, const char *grantee,
                             char **ret_made_grant_id, struct aws_error *err)
{
        _cleanup_(aws_error_done) struct aws_error e = {};
        _cleanup_json_ cJSON *req = NULL, *ans = NULL;
        int r = grant_request(key_id, grantee, "ec2-imaged-preflight", &req);

        *ret_made_grant_id = NULL;
        if (r < 0)
                return r;
        if (!cJSON_AddTrueToObject(req, "DryRun"))
                return -ENOMEM;
        r = awsjson_call(c, "CreateGrant", req, &ans, &e);
        /* KMS answers a DryRun with an error either way: this one means "would succeed". */
        if (r == -EREMOTEIO && streq_ptr(e.code, "DryRunOperationException"))
                return 0;
        /* KMS says AccessDeniedException; the AWS front end before it (and moto) AccessDenied. */
        if (r == -EREMOTEIO &&
            (streq_ptr(e.code, "AccessDeniedException") || streq_ptr(e.code, "AccessDenied")))
                r = -EPERM;
        /* A KMS that ignores DryRun made the grant: that is not a pre-flight's to leave. Its id
         * goes to the caller, who revokes it (NULL when the answer did not say it). */
        if (r >= 0) {
                if (dup_str(ans, "GrantId", ret_made_grant_id) < 0)
                        return -ENOMEM;
                r = -EPROTO;
        }
        if (e.http_status || e.code)
                aws_error_move(err, &e);
        return r;
}

int ssm_put_parameter(struct awsjson_client *c, const char *name, const char *value,
                      const char *data_type, bool overwrite, int64_t *ret_version,
                      struct aws_error *err)
{
        _cleanup_json_ cJSON *req = NULL, *ans = NULL;
        const cJSON *v;
        int r;

        if (!name || !*name || !value)
                return -EINVAL;
        req = cJSON_CreateObject();
        if (!req || !cJSON_AddStringToObject(req, "Name", name) ||
            !cJSON_AddStringToObject(req, "Value", value) ||
            !cJSON_AddStringToObject(req, "Type", "String") ||
            (data_type && !cJSON_AddStringToObject(req, "DataType", data_type)) ||
            !cJSON_AddBoolToObject(req, "Overwrite", overwrite))
                return -ENOMEM;
        r = awsjson_call(c, "PutParameter", req, &ans, err);
        if (r < 0 || !ret_version)
                return r;
        v = cJSON_GetObjectItemCaseSensitive(ans, "Version");
        if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > 9007199254740992.0 ||
            (double)(int64_t)v->valuedouble != v->valuedouble)
                return -EBADMSG;
        *ret_version = (int64_t)v->valuedouble;
        return 0;
}

/* The one entry of a PutEvents answer: its EventId, or the error that refused it. */
static int put_events_entry(const cJSON *ans, char **ret_event_id, struct aws_error *err)
{
        const cJSON *entry =
                cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(ans, "Entries"), 0);
        _cleanup_free_ char *id = NULL, *code = NULL, *msg = NULL;
        int r;

        r = dup_str(entry, "ErrorCode", &code);
        if (r >= 0)
                r = dup_str(entry, "ErrorMessage", &msg);
        if (r >= 0)
                r = dup_str(entry, "EventId", &id);
        if (r < 0)
                return r;
        if (code) {
                aws_error_done(err);
                err->code = TAKE_PTR(code);
                err->message = TAKE_PTR(msg);
                return -EREMOTEIO;
        }
        if (!id)
                return -EBADMSG;
        if (ret_event_id)
                *ret_event_id = TAKE_PTR(id);
        return 0;
}

int events_put_event(struct awsjson_client *c, const char *bus, const char *source,
                     const char *detail_type, const char *detail, char **ret_event_id,
                     struct aws_error *err)
{
        _cleanup_json_ cJSON *req = NULL, *ans = NULL;
        cJSON *entries, *e;
        int r;

        if (!source || !detail_type || !detail)
                return -EINVAL;
        req = cJSON_CreateObject();
        entries = cJSON_AddArrayToObject(req, "Entries");
        e = cJSON_CreateObject();
        if (!req || !entries || !e)
                return cJSON_Delete(e), -ENOMEM;
        cJSON_AddItemToArray(entries, e);
        if ((bus && !cJSON_AddStringToObject(e, "EventBusName", bus)) ||
            !cJSON_AddStringToObject(e, "Source", source) ||
            !cJSON_AddStringToObject(e, "DetailType", detail_type) ||
            !cJSON_AddStringToObject(e, "Detail", detail))
                return -ENOMEM;
        r = awsjson_call(c, "PutEvents", req, &ans, err);
        if (r < 0)
                return r;
        return put_events_entry(ans, ret_event_id, err);
}
