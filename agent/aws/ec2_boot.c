/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The boot check's EC2 calls (RunInstances, TerminateInstances, DescribeInstances by tag,
 * DescribeTags, DescribeInstanceStatus, GetConsoleOutput) and the parsers of their answers.
 */
#include "aws/ec2_boot.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "util/macro.h"
#include "util/str.h"
#include "aws/xml.h"

/* The console output EC2 keeps is 64 KiB; base64 makes it a third larger. */
#define CONSOLE_B64_MAX (128u * 1024u)
#define USER_DATA_MAX   (16u * 1024u) /* EC2's limit, before encoding */

static char *base64_encode(const char *s)
{
        size_t n = strlen(s);
        char *out = malloc(4 * ((n + 2) / 3) + 1);

        if (out)
                EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s, (int)n);
        return out;
}

/* Base64 text (white space allowed, as EC2 may wrap it) decoded; -EBADMSG when it is not. */
static int base64_decode(const char *s, char **ret, size_t *ret_len)
{
        _cleanup_free_ char *clean = malloc(strlen(s) + 1), *out = NULL;
        size_t n = 0, pad = 0;
        int m;

        if (!clean)
                return -ENOMEM;
        for (const char *p = s; *p; p++)
                if (!strchr(" \t\r\n", *p))
                        clean[n++] = *p;
        clean[n] = '\0';
        if (n % 4 != 0 || n > CONSOLE_B64_MAX)
                return -EBADMSG;
        out = malloc(n / 4 * 3 + 1);
        if (!out)
                return -ENOMEM;
        m = EVP_DecodeBlock((unsigned char *)out, (unsigned char *)clean, (int)n);
        if (m < 0)
                return -EBADMSG;
        /* EVP_DecodeBlock counts the padding as bytes. */
        pad = n >= 1 && clean[n - 1] == '=' ? (n >= 2 && clean[n - 2] == '=' ? 2 : 1) : 0;
        *ret_len = (size_t)m - pad;
        out[*ret_len] = '\0';
        *ret = TAKE_PTR(out);
        return 0;
}

static int run_params(const struct ec2_run_instance_args *a, struct ec2_params **ret)
{
        _cleanup_params_ struct ec2_params *p = NULL;
        _cleanup_free_ char *ud = NULL;
        bool arn = a->instance_profile && startswith(a->instance_profile, "arn:");
        int r;

        if (a->user_data && strlen(a->user_data) > USER_DATA_MAX)
                return -E2BIG;
        if (a->user_data && !(ud = base64_encode(a->user_data)))
                return -ENOMEM;
        /* clang-format off */
        r = ec2_params_build(&p,
                             "ImageId", a->image_id,
                             "InstanceType", a->instance_type,
                             "MinCount", "1",
                             "MaxCount", "1",
                             "SubnetId", a->subnet_id,
                             "IamInstanceProfile.Arn", arn ? a->instance_profile : NULL,
                             "IamInstanceProfile.Name", arn ? NULL : a->instance_profile,
                             "UserData", ud,
                             "ClientToken", a->client_token,
                             "InstanceInitiatedShutdownBehavior", "terminate",
                             "MetadataOptions.HttpTokens", "required",
                             "MetadataOptions.HttpEndpoint", "enabled",
                             "TagSpecification.1.ResourceType", a->n_tags > 0 ? "instance" : NULL,
                             "TagSpecification.2.ResourceType", a->n_tags > 0 ? "volume" : NULL,
                             NULL);
        /* clang-format on */
        for (size_t i = 0; r >= 0 && a->security_group_ids && a->security_group_ids[i]; i++)
                r = ec2_params_addf(p, a->security_group_ids[i], "SecurityGroupId.%zu", i + 1);
        if (r >= 0 && a->n_tags > 0)
                r = ec2_params_add_tags(p, "TagSpecification.1.Tag", a->tags, a->n_tags);
        if (r >= 0 && a->n_tags > 0)
                r = ec2_params_add_tags(p, "TagSpecification.2.Tag", a->tags, a->n_tags);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(p);
        return 0;
}

static int first_instance_id(xmlDoc *doc, char **ret)
{
        const xmlNode *item = xml_path(xmlDocGetRootElement(doc), "instancesSet", "item", NULL);

        return ec2_required(xml_child_text(item, "instanceId", ret));
}

int ec2_parse_run_instance(const char *body, size_t len, char **ret_instance_id)
{
        _cleanup_xml_doc_ xmlDoc *doc = NULL;
        int r = ec2_parse_answer(body, len, "RunInstancesResponse", &doc);

        return r < 0 ? r : first_instance_id(doc, ret_instance_id);
}

int ec2_run_instance(struct ec2_client *c, const struct ec2_run_instance_args *a,
                     char **ret_instance_id, struct aws_error *err)
{
        _cleanup_params_ struct ec2_params *p = NULL;
        _cleanup_xml_doc_ xmlDoc *doc = NULL;
        int r;

        if (!a || !a->image_id || !a->instance_type || !a->client_token)
                return -EINVAL;
        r = run_params(a, &p);
        if (r >= 0)
                r = ec2_call_mutating(c, "RunInstances", p, a->dry_run, &doc, err);
        if (r < 0)
                return r;
        if (!doc) { /* DryRunOperation: allowed */
                *ret_instance_id = NULL;
                return 0;
        }
        if (!xml_is(xmlDocGetRootElement(doc), "RunInstancesResponse"))
                return -EBADMSG;
        return first_instance_id(doc, ret_instance_id);
}

int ec2_terminate_instance(struct ec2_client *c, const char *instance_id, struct aws_error *err)
{
        _cleanup_params_ struct ec2_params *p = NULL;
        _cleanup_(aws_error_done) struct aws_error e = {};
        int r;

        if (!instance_id)
                return -EINVAL;
        r = ec2_params_build(&p, "InstanceId.1", instance_id, NULL);
        if (r >= 0)
                r = ec2_call(c, "TerminateInstances", p, NULL, &e);
        if (r == -EREMOTEIO && streq_ptr(e.code, "InvalidInstanceID.NotFound"))
                return 0;
        if (r < 0 && (e.code || e.http_status))
                aws_error_move(err, &e);
        return r;
}

static int instance_ids_from_doc(xmlDoc *doc, char ***ret)
{
        const xmlNode *root = xmlDocGetRootElement(doc);
        _cleanup_strv_free_ char **ids = NULL;
        int r = 0;

        if (!xml_child(root, "reservationSet"))
                return -EBADMSG;
        XML_FOREACH(res, xml_child(root, "reservationSet"), "item")
        XML_FOREACH(item, xml_child(res, "instancesSet"), "item")
        {
                _cleanup_free_ char *id = NULL;

                r = ec2_required(xml_child_text(item, "instanceId", &id));
                if (r >= 0)
                        r = strv_push(&ids, id);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(ids);
        return 0;
}

int ec2_parse_instance_ids(const char *body, size_t len, char ***ret)
{
        _cleanup_xml_doc_ xmlDoc *doc = NULL;
        int r = ec2_parse_answer(body, len, "DescribeInstancesResponse", &doc);

        return r < 0 ? r : instance_ids_from_doc(doc, ret);
}

int ec2_find_instances_by_tag(struct ec2_client *c, const char *key, const char *value, char ***ret,
                              struct aws_error *err)
{
        _cleanup_params_ struct ec2_params *p = NULL;
        _cleanup_xml_doc_ xmlDoc *doc = NULL;
        _cleanup_free_ char *filter = NULL;
        int r;

        if (!key || !value)
                return -EINVAL;
        filter = strprintf("tag:%s", key);
        if (!filter)
                return -ENOMEM;
        r = ec2_params_build(&p, "Filter.1.Name", filter, "Filter.1.Value.1", value, NULL);
        if (r >= 0)
                r = ec2_call(c, "DescribeInstances", p, &doc, err);
        return r < 0 ? r : instance_ids_from_doc(doc, ret);
}

static int tag_value_from_doc(xmlDoc *doc, const char *key, char **ret)
{
        const xmlNode *root = xmlDocGetRootElement(doc);

        if (!xml_child(root, "tagSet"))
                return -EBADMSG;
        XML_FOREACH(item, xml_child(root, "tagSet"), "item")
        {
                _cleanup_free_ char *k = NULL;
                int r = ec2_required(xml_child_text(item, "key", &k));

                if (r < 0)
                        return r;
                if (!streq(k, key))
                        continue;
                r = xml_child_text_opt(item, "value", ret);
                /* A tag with an empty value is still there: "" rather than NULL. */
                if (r >= 0 && !*ret && !(*ret = strdup("")))
                        r = -ENOMEM;
                return r;
        }
        *ret = NULL;
        return 0;
}

int ec2_parse_tag_value(const char *body, size_t len, const char *key, char **ret)
{
        _cleanup_xml_doc_ xmlDoc *doc = NULL;
        int r = ec2_parse_answer(body, len, "DescribeTagsResponse", &doc);

        return r < 0 ? r : tag_value_from_doc(doc, key, ret);
}

int ec2_instance_tag(struct ec2_client *c, const char *instance_id, const char *key, char **ret,
                     struct aws_error *err)
{
        _cleanup_params_ struct ec2_params *p = NULL;
        _cleanup_xml_doc_ xmlDoc *doc = NULL;
        int r;

        if (!instance_id || !key)
                return -EINVAL;
        /* clang-format off */
        r = ec2_params_build(&p,
                             "Filter.1.Name", "resource-id",
                             "Filter.1.Value.1", instance_id,
                             "Filter.2.Name", "key",
                             "Filter.2.Value.1", key,
                             NULL);
        /* clang-format on */
        if (r >= 0)
                r = ec2_call(c, "DescribeTags", p, &doc, err);
        return r < 0 ? r : tag_value_from_doc(doc, key, ret);
}

void ec2_instance_status_done(struct ec2_instance_status *s)
{
        if (!s)
                return;
        free(s->state);
        free(s->system_status);
        free(s->instance_status);
        *s = (struct ec2_instance_status){};
}

static int status_from_doc(xmlDoc *doc, struct ec2_instance_status *ret)
{
        const xmlNode *root = xmlDocGetRootElement(doc), *item;
        struct ec2_instance_status s = {};
        int r;

        if (!xml_child(root, "instanceStatusSet"))
                return -EBADMSG;
        item = xml_path(root, "instanceStatusSet", "item", NULL);
        if (!item)
                return -ENOENT;
        r = xml_child_text_opt(xml_child(item, "instanceState"), "name", &s.state);
        if (r >= 0)
                r = xml_child_text_opt(xml_child(item, "systemStatus"), "status", &s.system_status);
        if (r >= 0)
                r = xml_child_text_opt(xml_child(item, "instanceStatus"), "status",
                                       &s.instance_status);
        if (r < 0) {
                ec2_instance_status_done(&s);
                return r;
        }
        *ret = s;
        return 0;
}

int ec2_parse_instance_status(const char *body, size_t len, struct ec2_instance_status *ret)
{
        _cleanup_xml_doc_ xmlDoc *doc = NULL;
        int r = ec2_parse_answer(body, len, "DescribeInstanceStatusResponse", &doc);

        return r < 0 ? r : status_from_doc(doc, ret);
}

int ec2_describe_instance_status(struct ec2_client *c, const char *instance_id,
                                 struct ec2_instance_status *ret, struct aws_error *err)
{
        _cleanup_params_ struct ec2_params *p = NULL;
        _cleanup_xml_doc_ xmlDoc *doc = NULL;
        int r;

        if (!instance_id)
                return -EINVAL;
        r = ec2_params_build(&p, "InstanceId.1", instance_id, "IncludeAllInstances", "true", NULL);
        if (r >= 0)
                r = ec2_call(c, "DescribeInstanceStatus", p, &doc, err);
        return r < 0 ? r : status_from_doc(doc, ret);
}

static int console_from_doc(xmlDoc *doc, char **ret, size_t *ret_len)
{
        _cleanup_free_ char *b64 = NULL;
        int r = xml_child_text_opt(xmlDocGetRootElement(doc), "output", &b64);

        if (r < 0)
                return r;
        if (!b64 || !*b64) {
                *ret = NULL;
                *ret_len = 0;
                return 0;
        }
        return base64_decode(b64, ret, ret_len);
}

int ec2_parse_console_output(const char *body, size_t len, char **ret, size_t *ret_len)
{
        _cleanup_xml_doc_ xmlDoc *doc = NULL;
        int r = ec2_parse_answer(body, len, "GetConsoleOutputResponse", &doc);

        return r < 0 ? r : console_from_doc(doc, ret, ret_len);
}

int ec2_get_console_output(struct ec2_client *c, const char *instance_id, char **ret,
                           size_t *ret_len, struct aws_error *err)
{
        _cleanup_params_ struct ec2_params *p = NULL;
        _cleanup_xml_doc_ xmlDoc *doc = NULL;
        int r;

        if (!instance_id)
                return -EINVAL;
        r = ec2_params_build(&p, "InstanceId", instance_id, NULL);
        if (r >= 0)
                r = ec2_call(c, "GetConsoleOutput", p, &doc, err);
        if (r >= 0 && !xml_is(xmlDocGetRootElement(doc), "GetConsoleOutputResponse"))
                r = -EBADMSG;
        return r < 0 ? r : console_from_doc(doc, ret, ret_len);
}
