/* SPDX-License-Identifier: Apache-2.0 */
/*
 * STS in the Query protocol: AssumeRole, whose answer is a secret (a key and a session token),
 * and GetCallerIdentity. The encoding, the call and the error shape are ec2.c's; what is STS's
 * own is the version, the endpoint, the argument rules and the reading of the answers.
 */
#include "aws/sts.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/ec2.h"
#include "aws/vocab.h"
#include "aws/xml.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/secret.h"
#include "util/str.h"

#define STS_API_VERSION "2011-06-15"
/* IAM's limit on an ARN; a role ARN is far shorter in practice. */
#define ROLE_ARN_MAX 2048

/* An STS client is a Query client with STS's signing name, host and endpoint variable. */
struct sts_client {
        struct ec2_client *query;
};

int sts_client_new(const struct sts_client_config *cfg, struct creds_provider *creds,
                   struct sts_client **ret)
{
        struct sts_client *c;
        int r;

        if (!cfg)
                return -EINVAL;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        r = ec2_query_client_new("sts", "STS",
                                 &(struct ec2_client_config){.region = cfg->region,
                                                             .endpoint_url = cfg->endpoint_url,
                                                             .transport = cfg->transport},
                                 creds, &c->query);
        if (r < 0) {
                free(c);
                return r;
        }
        *ret = c;
        return 0;
}

struct sts_client *sts_client_free(struct sts_client *c)
{
        if (c)
                ec2_client_free(c->query);
        free(c);
        return NULL;
}

const char *sts_client_endpoint(const struct sts_client *c)
{
        return ec2_client_endpoint(c->query);
}

static bool is_word(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_';
}

static bool is_session_char(char c)
{
        return is_word(c) || (c != '\0' && strchr("+=,.@-", c));
}

static bool is_external_id_char(char c)
{
        return is_session_char(c) || c == ':' || c == '/';
}

/* Role paths and names: IAM's [\w+=,.@-] with '/' between the parts. */
static bool is_role_path_char(char c)
{
        return is_session_char(c) || c == '/';
}

static bool is_partition_char(char c)
{
        return (c >= 'a' && c <= 'z') || c == '-';
}

bool sts_session_name_valid(const char *s)
{
        return string_matches(s, 2, 64, is_session_char);
}

bool sts_external_id_valid(const char *s)
{
        return string_matches(s, 2, 1224, is_external_id_char);
}

bool sts_role_arn_valid(const char *s)
{
        const char *p, *q;
        char account[13];

        /* arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME */
        if (!s || strlen(s) > ROLE_ARN_MAX || !startswith(s, "arn:"))
                return false;
        p = s + 4;
        q = strchr(p, ':');
        if (!q || q == p || q - p > 32)
                return false;
        for (const char *i = p; i < q; i++)
                if (!is_partition_char(*i))
                        return false;
        if (!startswith(q, ":iam::"))
                return false;
        p = q + 6;
        q = strchr(p, ':');
        if (!q || q - p != 12)
                return false;
        memcpy(account, p, 12);
        account[12] = '\0';
        if (!aws_account_id_valid(account) || !startswith(q, ":role/"))
                return false;
        p = q + 6;
        /* The name after the last '/' must not be empty, nor any part of the path. */
        return string_matches(p, 1, ROLE_ARN_MAX, is_role_path_char) && !strstr(p, "//") &&
               p[0] != '/' && p[strlen(p) - 1] != '/';
}

/*
 * Free a document whose text held a secret: wipe every text node first. Short strings that
 * libxml2 keeps in the document's dictionary (under 16 bytes, never a key or a token) are shared
 * and left alone.
 */
static void doc_wipe_free(xmlDoc *doc)
{
        xmlNode *n;

        if (!doc)
                return;
        n = xmlDocGetRootElement(doc);
        while (n) {
                if ((n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) && n->content &&
                    !(doc->dict && xmlDictOwns(doc->dict, n->content)))
                        secret_wipe(n->content, strlen((const char *)n->content));
                /* Depth first, without recursion. */
                if (n->children) {
                        n = n->children;
                        continue;
                }
                while (n && !n->next)
                        n = n->parent && n->parent->type != XML_DOCUMENT_NODE ? n->parent : NULL;
                if (n)
                        n = n->next;
        }
        xmlFreeDoc(doc);
}

static void doc_wipe_freep(xmlDoc **doc)
{
        doc_wipe_free(*doc);
}

/* The text of child name, checked by valid; -EBADMSG when it is missing or does not pass. */
static int secret_child(const xmlNode *parent, const char *name, bool (*valid)(const char *),
                        char **ret)
{
        char *s = NULL;
        int r = xml_child_text(parent, name, &s);

        if (r < 0)
                return ec2_required(r);
        if (!valid(s)) {
                secret_free(s);
                return log_debug_errno(-EBADMSG, "AssumeRole: malformed %s", name);
        }
        *ret = s;
        return 0;
}

static bool any_text(const char *s)
{
        return s != NULL;
}

/* The role's name: what follows the last '/' of its ARN. */
static int role_name_of(const char *role_arn, char **ret)
{
        const char *slash = strrchr(role_arn, '/');

        *ret = strdup(slash ? slash + 1 : role_arn);
        return *ret ? 0 : -ENOMEM;
}

static int credentials_from_doc(xmlDoc *doc, const char *role_arn, struct aws_credentials *ret)
{
        _cleanup_(aws_credentials_done) struct aws_credentials c = {};
        _cleanup_free_ char *expiration = NULL;
        const xmlNode *cr;
        int r;

        cr = xml_path(xmlDocGetRootElement(doc), "AssumeRoleResult", "Credentials", NULL);
        if (!cr)
                return -EBADMSG;
        r = secret_child(cr, "AccessKeyId", aws_access_key_id_valid, &c.access_key_id);
        if (r >= 0)
                r = secret_child(cr, "SecretAccessKey", aws_secret_access_key_valid,
                                 &c.secret_access_key);
        if (r >= 0)
                r = secret_child(cr, "SessionToken", aws_session_token_valid, &c.session_token);
        if (r >= 0)
                r = secret_child(cr, "Expiration", any_text, &expiration);
        if (r < 0)
                return r;
        if (parse_iso8601(expiration, &c.expiration) < 0 || c.expiration == 0)
                return log_debug_errno(-EBADMSG, "AssumeRole: bad Expiration");
        c.source = strprintf("assumed-role:%s", role_arn);
        if (!c.source || role_name_of(role_arn, &c.role_name) < 0)
                return -ENOMEM;
        *ret = c;
        c = (struct aws_credentials){};
        return 0;
}

int sts_parse_assume_role(const char *body, size_t len, const char *role_arn,
                          struct aws_credentials *ret)
{
        _cleanup_(doc_wipe_freep) xmlDoc *doc = NULL;
        int r;

        if (!sts_role_arn_valid(role_arn))
                return -EINVAL;
        r = ec2_parse_answer(body, len, "AssumeRoleResponse", &doc);
        if (r < 0)
                return r;
        return credentials_from_doc(doc, role_arn, ret);
}

static int assume_role_params(const struct sts_assume_role_args *a, struct ec2_params *p)
{
        char duration[16];
        int r;

        if (!sts_role_arn_valid(a->role_arn) || !sts_session_name_valid(a->session_name) ||
            (a->external_id && !sts_external_id_valid(a->external_id)) ||
            (a->duration_s &&
             (a->duration_s < STS_DURATION_MIN_S || a->duration_s > STS_DURATION_MAX_S)))
                return -EINVAL;
        r = ec2_params_add(p, "RoleArn", a->role_arn);
        if (r >= 0)
                r = ec2_params_add(p, "RoleSessionName", a->session_name);
        if (r >= 0 && a->external_id)
                r = ec2_params_add(p, "ExternalId", a->external_id);
        if (r >= 0 && a->duration_s) {
                snprintf(duration, sizeof(duration), "%u", a->duration_s);
                r = ec2_params_add(p, "DurationSeconds", duration);
        }
        return r;
}

int sts_assume_role(struct sts_client *c, const struct sts_assume_role_args *a,
                    struct aws_credentials *ret, struct aws_error *err)
{
        _cleanup_params_ struct ec2_params *p = NULL;
        _cleanup_(doc_wipe_freep) xmlDoc *doc = NULL;
        int r;

        if (!a)
                return -EINVAL;
        r = ec2_params_new(&p);
        if (r < 0)
                return r;
        r = assume_role_params(a, p);
        if (r < 0)
                return r;
        r = ec2_query_call(c->query, STS_API_VERSION, "AssumeRole", p, true, &doc, err);
        if (r < 0)
                return r;
        r = credentials_from_doc(doc, a->role_arn, ret);
        if (r < 0)
                log_debug_errno(r, "AssumeRole %s: the answer holds no usable credentials",
                                a->role_arn);
        return r;
}

void sts_identity_done(struct sts_identity *id)
{
        if (!id)
                return;
        free(id->account);
        free(id->arn);
        free(id->user_id);
        *id = (struct sts_identity){};
}

int sts_get_caller_identity(struct sts_client *c, struct sts_identity *ret, struct aws_error *err)
{
        _cleanup_(sts_identity_done) struct sts_identity id = {};
        _cleanup_xml_doc_ xmlDoc *doc = NULL;
        const xmlNode *res;
        int r;

        r = ec2_query_call(c->query, STS_API_VERSION, "GetCallerIdentity", NULL, false, &doc, err);
        if (r < 0)
                return r;
        res = xml_child(xmlDocGetRootElement(doc), "GetCallerIdentityResult");
        r = ec2_required(xml_child_text(res, "Account", &id.account));
        if (r >= 0)
                r = ec2_required(xml_child_text(res, "Arn", &id.arn));
        if (r >= 0)
                r = xml_child_text_opt(res, "UserId", &id.user_id);
        if (r < 0)
                return r;
        if (!aws_account_id_valid(id.account))
                return -EBADMSG;
        *ret = id;
        id = (struct sts_identity){};
        return 0;
}
