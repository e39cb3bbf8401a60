/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Parsers of what IMDS answers in JSON: the instance identity document and the role credentials.
 * Pure functions of their input (no I/O), so that the fuzz targets reach them directly. Every
 * value is checked against aws/vocab.c's rules; the credential document is wiped before it is
 * freed.
 */
#include "aws/imds_parse.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/credentials.h"
#include "aws/vocab.h"
#include "util/json.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/secret.h"
#include "util/str.h"
#include "util/timeutil.h"

/* Parse one JSON object filling the whole input (trailing whitespace allowed). */
static int parse_object(const char *json, size_t len, cJSON **ret)
{
        const char *end = NULL;
        cJSON *root;

        if (!json)
                return -EINVAL;
        if (len > IMDS_MAX_JSON)
                return -EFBIG;
        /*
         * cJSON decodes "\u0000" into a NUL that silently ends the C string, so "i-0123\u0000x"
         * would pass as "i-0123". No IMDS document has one: refuse instead of truncating.
         */
        if (memmem(json, len, "\\u0000", 6))
                return -EBADMSG;
        root = cJSON_ParseWithLengthOpts(json, len, &end, false);
        if (!root)
                return -EBADMSG;
        while (end && end < json + len &&
               (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t'))
                end++;
        if (!cJSON_IsObject(root) || !end || end != json + len) {
                cJSON_Delete(root);
                return -EBADMSG;
        }
        *ret = root;
        return 0;
}

/* A string member that passes valid(), or NULL. */
static const char *member_string(const cJSON *obj, const char *name, bool (*valid)(const char *))
{
        const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);

        if (!cJSON_IsString(item) || !item->valuestring || !valid(item->valuestring))
                return NULL;
        return item->valuestring;
}

void imds_identity_done(struct imds_identity *id)
{
        if (!id)
                return;
        free(id->instance_id);
        free(id->region);
        free(id->availability_zone);
        free(id->account_id);
        free(id->architecture);
        free(id->image_id);
        free(id->instance_type);
        *id = (struct imds_identity){};
}

int imds_parse_identity(const char *json, size_t len, struct imds_identity *ret)
{
        static const struct {
                const char *name;
                size_t offset;
                bool (*valid)(const char *);
        } fields[] = {
                {"instanceId", offsetof(struct imds_identity, instance_id), aws_instance_id_valid},
                {"region", offsetof(struct imds_identity, region), aws_region_valid},
                {"availabilityZone", offsetof(struct imds_identity, availability_zone),
                 aws_zone_valid},
                {"accountId", offsetof(struct imds_identity, account_id), aws_account_id_valid},
                {"architecture", offsetof(struct imds_identity, architecture),
                 aws_architecture_valid},
                {"imageId", offsetof(struct imds_identity, image_id), aws_image_id_valid},
                {"instanceType", offsetof(struct imds_identity, instance_type),
                 aws_instance_type_valid},
        };
        _cleanup_(imds_identity_done) struct imds_identity id = {};
        _cleanup_json_ cJSON *root = NULL;
        int r;

        r = parse_object(json, len, &root);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
                const char *v = member_string(root, fields[i].name, fields[i].valid);
                char **slot = (char **)((char *)&id + fields[i].offset);

                if (!v)
                        return log_debug_errno(-EBADMSG, "Identity document: bad or no %s",
                                               fields[i].name);
                *slot = strdup(v);
                if (!*slot)
                        return -ENOMEM;
        }
        *ret = id;
        id = (struct imds_identity){};
        return 0;
}

/* Wipe every string in a parsed document before it is freed: it held a secret key and token. */
static void cjson_wipe(cJSON *j)
{
        for (; j; j = j->next) {
                if (j->valuestring)
                        secret_wipe(j->valuestring, strlen(j->valuestring));
                cjson_wipe(j->child);
        }
}

static void cjson_wipe_deletep(cJSON **j)
{
        cjson_wipe(*j);
        cJSON_Delete(*j);
}

static bool valid_any(const char *s)
{
        return true;
}

int imds_parse_credentials(const char *json, size_t len, const char *role,
                           struct aws_credentials *ret)
{
        _cleanup_(cjson_wipe_deletep) cJSON *root = NULL;
        const char *code, *key_id, *secret, *token, *expiration;
        struct aws_credentials c = {};
        usec_t expires;
        int r;

        if (!role || !aws_role_name_valid(role))
                return -EINVAL;
        r = parse_object(json, len, &root);
        if (r < 0)
                return r;
        code = member_string(root, "Code", valid_any);
        if (!code)
                return log_debug_errno(-EBADMSG, "Role credentials: no Code");
        if (!streq(code, "Success"))
                /* Codes are AWS error names such as AssumeRoleUnauthorizedAccess: safe to log. */
                return log_debug_errno(-EACCES, "Role credentials: Code %.64s", code);
        key_id = member_string(root, "AccessKeyId", aws_access_key_id_valid);
        secret = member_string(root, "SecretAccessKey", aws_secret_access_key_valid);
        token = member_string(root, "Token", aws_session_token_valid);
        expiration = member_string(root, "Expiration", valid_any);
        if (!key_id || !secret || !token || !expiration)
                return log_debug_errno(-EBADMSG, "Role credentials: bad or missing fields");
        if (parse_iso8601(expiration, &expires) < 0 || expires == 0)
                return log_debug_errno(-EBADMSG, "Role credentials: bad Expiration");

        c.expiration = expires;
        c.access_key_id = strdup(key_id);
        c.secret_access_key = strdup(secret);
        c.session_token = strdup(token);
        c.role_name = strdup(role);
        if (asprintf(&c.source, "instance-role:%s", role) < 0)
                c.source = NULL;
        if (!c.access_key_id || !c.secret_access_key || !c.session_token || !c.role_name ||
            !c.source) {
                aws_credentials_done(&c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}
