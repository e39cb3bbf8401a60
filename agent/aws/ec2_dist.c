/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Distribution and lifecycle calls of the EC2 Query API (CopyImage, launch and volume
 * permissions, deprecation, lookups by tag, launch template versions) and the parsers of their
 * answers.
 */
#include "aws/ec2_dist.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/macro.h"
#include "util/parse.h"
#include "util/str.h"
#include "aws/xml.h"

/* Paged describe calls stop here whatever NextToken says: a loop guard, not a real limit. */
#define MAX_PAGES 100

int ec2_parse_copy_image(const char *body, size_t len, char **ret_image_id)
{
        _cleanup_xml_doc_ xmlDoc *doc = NULL;
        int r = ec2_parse_answer(body, len, "CopyImageResponse", &doc);

        if (r < 0)
                return r;
        return ec2_image_id_from_doc(doc, ret_image_id);
}

int ec2_copy_image(struct ec2_client *c, const struct ec2_copy_image_args *a, char **ret_image_id,
                   struct aws_error *err)
{
        _cleanup_params_ struct ec2_params *p = NULL;
        _cleanup_xml_doc_ xmlDoc *doc = NULL;
        int r;

        if (!a || !a->source_region || !a->source_image_id || !a->name)
                return -EINVAL;
        r = ec2_params_new(&p);
        if (r >= 0)
                r = ec2_params_add(p, "SourceRegion", a->source_region);
        if (r >= 0)
                r = ec2_params_add(p, "SourceImageId", a->source_image_id);
        if (r >= 0)
                r = ec2_params_add(p, "Name", a->name);
        if (r >= 0 && a->description)
                r = ec2_params_add(p, "Description", a->description);
        /* EC2 refuses a KmsKeyId without Encrypted=true. */
        if (r >= 0 && (a->encrypted || a->kms_key_id))
                r = ec2_params_add(p, "Encrypted", "true");
        if (r >= 0 && a->kms_key_id)
                r = ec2_params_add(p, "KmsKeyId", a->kms_key_id);
        if (r >= 0 && a->copy_image_tags)
                r = ec2_params_add(p, "CopyImageTags", "true");
        if (r >= 0 && a->n_tags > 0) {
                r = ec2_params_add(p, "TagSpecification.1.ResourceType", "image");
                if (r >= 0)
                        r = ec2_params_add_tags(p, "TagSpecification.1.Tag", a->tags, a->n_tags);
        }
        if (r >= 0 && a->client_token)
                r = ec2_params_add(p, "ClientToken", a->client_token);
        if (r >= 0)
                r = ec2_params_add_dry_run(p, a->dry_run);
        if (r >= 0)
                r = ec2_call_mutating(c, "CopyImage", p, a->dry_run, &doc, err);
        if (r < 0)
                return r;
        if (a->dry_run) {
                if (ret_image_id)
                        *ret_image_id = NULL;
                return 0;
        }
        return ec2_image_id_from_doc(doc, ret_image_id);
}

static const char *share_field(enum ec2_share_kind k)
{
        switch (k) {
        case EC2_SHARE_ACCOUNT:
                return "UserId";
        case EC2_SHARE_ORGANIZATION:
                return "OrganizationArn";
        case EC2_SHARE_OU:
                return "OrganizationalUnitArn";
        }
        return NULL;
}

int ec2_add_launch_permissions(struct ec2_client *c, const char *image_id,
                               const struct ec2_share *shares, size_t n, bool dry_run,
                               struct aws_error *err)
{
        _cleanup_params_ struct ec2_params *p = NULL;
        int r;

        if (!image_id || !shares || n == 0)
                return -EINVAL;
        r = ec2_params_new(&p);
        if (r >= 0)
                r = ec2_params_add(p, "ImageId", image_id);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                const char *f = share_field(shares[i].kind);

                if (!f || !shares[i].value)
                        return -EINVAL;
                r = ec2_params_addf(p, shares[i].value, "LaunchPermission.Add.%zu.%s", i + 1, f);
        }
        if (r >= 0)
                r = ec2_params_add_dry_run(p, dry_run);
        if (r < 0)
                return r;
        return ec2_call_mutating(c, "ModifyImageAttribute", p, dry_run, NULL, err);
}

int ec2_add_create_volume_permission(struct ec2_client *c, const char *snapshot_id,
                                     const char *const *account_ids, bool dry_run,
                                     struct aws_error *err)
{
        _cleanup_params_ struct ec2_params *p = NULL;
        int r;

        if (!snapshot_id || !account_ids || !account_ids[0])
                return -EINVAL;
        r = ec2_params_new(&p);
        if (r >= 0)
                r = ec2_params_add(p, "SnapshotId", snapshot_id);
        if (r >= 0)
                r = ec2_params_add(p, "Attribute", "createVolumePermission");
        if (r >= 0)
                r = ec2_params_add(p, "OperationType", "add");
        for (size_t i = 0; r >= 0 && account_ids[i]; i++)
                r = ec2_params_addf(p, account_ids[i], "UserId.%zu", i + 1);
        if (r >= 0)
                r = ec2_params_add_dry_run(p, dry_run);
        if (r < 0)
                return r;
        return ec2_call_mutating(c, "ModifySnapshotAttribute", p, dry_run, NULL, err);
}

int ec2_parse_return_true(const char *body, size_t len, const char *root_name)
{
        _cleanup_xml_doc_ xmlDoc *doc = NULL;
        _cleanup_free_ char *v = NULL;
        int r = ec2_parse_answer(body, len, root_name, &doc);

        if (r >= 0)
                r = ec2_required(xml_child_text(xmlDocGetRootElement(doc), "return", &v));
        if (r < 0)
                return r;
        return streq(v, "true") ? 0 : -EBADMSG;
}

int ec2_enable_image_deprecation(struct ec2_client *c, const char *image_id,
                                 const char *deprecate_at, bool dry_run, struct aws_error *err)
{
        _cleanup_params_ struct ec2_params *p = NULL;
        int r;

        if (!image_id || !deprecate_at)
                return -EINVAL;
        r = ec2_params_new(&p);
        if (r >= 0)
                r = ec2_params_add(p, "ImageId", image_id);
        if (r >= 0)
                r = ec2_params_add(p, "DeprecateAt", deprecate_at);
        if (r >= 0)
                r = ec2_params_add_dry_run(p, dry_run);
        if (r < 0)
                return r;
        return ec2_call_mutating(c, "EnableImageDeprecation", p, dry_run, NULL, err);
}

int ec2_describe_images_by_tag(struct ec2_client *c, const char *key, const char *value,
                               struct ec2_image **ret, size_t *ret_n, struct aws_error *err)
{
        _cleanup_params_ struct ec2_params *p = NULL;
        _cleanup_xml_doc_ xmlDoc *doc = NULL;
        _cleanup_free_ char *filter = NULL;
        int r;

        if (!key || !*key || !value)
                return -EINVAL;
        if (asprintf(&filter, "tag:%s", key) < 0)
                return -ENOMEM;
        r = ec2_params_new(&p);
        if (r >= 0)
                r = ec2_params_add(p, "Owner.1", "self");
        if (r >= 0)
                r = ec2_params_add(p, "Filter.1.Name", filter);
        if (r >= 0)
                r = ec2_params_add(p, "Filter.1.Value.1", value);
        if (r >= 0)
                r = ec2_call(c, "DescribeImages", p, &doc, err);
        if (r < 0)
                return r;
        return ec2_images_from_doc(doc, ret, ret_n);
}

/* An id is "lt-" and hex digits; anything else is a name. */
static int add_template(struct ec2_params *p, const char *template)
{
        bool is_id = startswith(template, "lt-") && template[3] &&
                     strspn(template + 3, "0123456789abcdef") == strlen(template + 3);

        return ec2_params_add(p, is_id ? "LaunchTemplateId" : "LaunchTemplateName", template);
}

void ec2_lt_versions_free(struct ec2_lt_version *v, size_t n)
{
        for (size_t i = 0; v && i < n; i++) {
                free(v[i].template_id);
                free(v[i].image_id);
        }
        free(v);
}

static int lt_version_from_item(const xmlNode *item, struct ec2_lt_version *ret)
{
        _cleanup_free_ char *num = NULL, *def = NULL;
        struct ec2_lt_version v = {};
        uint64_t u;
        int r;

        r = ec2_required(xml_child_text(item, "versionNumber", &num));
        if (r >= 0)
                r = safe_atou64(num, &u) < 0 || u > INT64_MAX ? -EBADMSG : 0;
        if (r >= 0)
                r = xml_child_text_opt(item, "defaultVersion", &def);
        if (r >= 0)
                r = xml_child_text_opt(item, "launchTemplateId", &v.template_id);
        if (r >= 0)
                r = xml_child_text_opt(xml_child(item, "launchTemplateData"), "imageId",
                                       &v.image_id);
        if (r < 0) {
                free(v.template_id);
                free(v.image_id);
                return r;
        }
        v.version = (int64_t)u;
        v.is_default = streq_ptr(def, "true");
        *ret = v;
        return 0;
}

int ec2_parse_create_lt_version(const char *body, size_t len, int64_t *ret_version)
{
        _cleanup_xml_doc_ xmlDoc *doc = NULL;
        struct ec2_lt_version v = {};
        const xmlNode *item;
        int r = ec2_parse_answer(body, len, "CreateLaunchTemplateVersionResponse", &doc);

        if (r < 0)
                return r;
        item = xml_child(xmlDocGetRootElement(doc), "launchTemplateVersion");
        if (!item)
                return -EBADMSG;
        r = lt_version_from_item(item, &v);
        if (r < 0)
                return r;
        *ret_version = v.version;
        free(v.template_id);
        free(v.image_id);
        return 0;
}

int ec2_create_launch_template_version(struct ec2_client *c, const char *template,
                                       const char *source_version, const char *image_id,
                                       const char *description, const char *client_token,
                                       bool dry_run, int64_t *ret_version, struct aws_error *err)
{
        _cleanup_params_ struct ec2_params *p = NULL;
        _cleanup_xml_doc_ xmlDoc *doc = NULL;
        struct ec2_lt_version v = {};
        const xmlNode *item;
        int r;

        if (!template || !*template || !image_id)
                return -EINVAL;
        r = ec2_params_new(&p);
        if (r >= 0)
                r = add_template(p, template);
        if (r >= 0 && source_version)
                r = ec2_params_add(p, "SourceVersion", source_version);
        if (r >= 0 && description)
                r = ec2_params_add(p, "VersionDescription", description);
        if (r >= 0)
                r = ec2_params_add(p, "LaunchTemplateData.ImageId", image_id);
        /* The retries of a call that may have worked must not make a second version. */
        if (r >= 0 && client_token)
                r = ec2_params_add(p, "ClientToken", client_token);
        if (r >= 0)
                r = ec2_params_add_dry_run(p, dry_run);
        if (r >= 0)
                r = ec2_call_mutating(c, "CreateLaunchTemplateVersion", p, dry_run, &doc, err);
        if (r < 0 || dry_run)
                return r;
        item = xml_child(xmlDocGetRootElement(doc), "launchTemplateVersion");
        if (!item)
                return -EBADMSG;
        r = lt_version_from_item(item, &v);
        if (r < 0)
                return r;
        free(v.template_id);
        free(v.image_id);
        if (ret_version)
                *ret_version = v.version;
        return 0;
}

int ec2_set_launch_template_default(struct ec2_client *c, const char *template, int64_t version,
                                    bool dry_run, struct aws_error *err)
{
        _cleanup_params_ struct ec2_params *p = NULL;
        char num[24];
        int r;

        if (!template || !*template || version < 1)
                return -EINVAL;
        snprintf(num, sizeof(num), "%" PRId64, version);
        r = ec2_params_new(&p);
        if (r >= 0)
                r = add_template(p, template);
        if (r >= 0)
                r = ec2_params_add(p, "SetDefaultVersion", num);
        if (r >= 0)
                r = ec2_params_add_dry_run(p, dry_run);
        if (r < 0)
                return r;
        return ec2_call_mutating(c, "ModifyLaunchTemplate", p, dry_run, NULL, err);
}

/*
 * NextToken still set after MAX_PAGES pages: a listing cut short would look complete (retention
 * would miss the images that launch templates use), so it is an error naming what was listed.
 */
static int too_many_pages(const char *what, struct aws_error *err)
{
        aws_error_done(err);
        err->message = strprintf("%s: more than %u pages of results (NextToken still set); not "
                                 "listing further",
                                 what, MAX_PAGES);
        return -E2BIG;
}

/* Append the versions of one DescribeLaunchTemplateVersions page; *next is its NextToken. */
static int lt_versions_from_doc(xmlDoc *doc, struct ec2_lt_version **v, size_t *n, char **next)
{
        const xmlNode *root = xmlDocGetRootElement(doc);
        const xmlNode *set = xml_child(root, "launchTemplateVersionSet");
        size_t add = xml_count(set, "item");
        struct ec2_lt_version *nv;
        int r;

        if (add > 0) {
                nv = reallocarray(*v, *n + add, sizeof(*nv));
                if (!nv)
                        return -ENOMEM;
                *v = nv;
        }
        XML_FOREACH(item, set, "item")
        {
                r = lt_version_from_item(item, &(*v)[*n]);
                if (r < 0)
                        return r;
                (*n)++;
        }
        return xml_child_text_opt(root, "nextToken", next);
}

int ec2_parse_lt_versions(const char *body, size_t len, struct ec2_lt_version **ret, size_t *ret_n)
{
        _cleanup_xml_doc_ xmlDoc *doc = NULL;
        _cleanup_free_ char *next = NULL;
        struct ec2_lt_version *v = NULL;
        size_t n = 0;
        int r = ec2_parse_answer(body, len, "DescribeLaunchTemplateVersionsResponse", &doc);

        if (r >= 0)
                r = lt_versions_from_doc(doc, &v, &n, &next);
        if (r < 0) {
                ec2_lt_versions_free(v, n);
                return r;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

int ec2_describe_launch_template_versions(struct ec2_client *c, const char *template,
                                          const char *const *versions, struct ec2_lt_version **ret,
                                          size_t *ret_n, struct aws_error *err)
{
        _cleanup_free_ char *next = NULL;
        struct ec2_lt_version *v = NULL;
        size_t n = 0;
        int r = 0;

        for (unsigned page = 0; r >= 0 && page < MAX_PAGES; page++) {
                _cleanup_params_ struct ec2_params *p = NULL;
                _cleanup_xml_doc_ xmlDoc *doc = NULL;
                _cleanup_free_ char *token = TAKE_PTR(next);

                if (page > 0 && (!token || !*token))
                        break;
                r = ec2_params_new(&p);
                if (r >= 0 && template)
                        r = add_template(p, template);
                for (size_t i = 0; r >= 0 && versions && versions[i]; i++)
                        r = ec2_params_addf(p, versions[i], "LaunchTemplateVersion.%zu", i + 1);
                if (r >= 0 && token)
                        r = ec2_params_add(p, "NextToken", token);
                if (r >= 0)
                        r = ec2_call(c, "DescribeLaunchTemplateVersions", p, &doc, err);
                if (r >= 0)
                        r = lt_versions_from_doc(doc, &v, &n, &next);
        }
        if (r >= 0 && next && *next) {
                _cleanup_free_ char *what =
                        strprintf("versions of launch template %s", strna(template));
                r = too_many_pages(what ? what : "launch template versions", err);
        }
        if (r < 0) {
                ec2_lt_versions_free(v, n);
                return r;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

/* Append the ids of one DescribeLaunchTemplates page to the NULL-terminated *ids. */
static int lt_ids_from_doc(xmlDoc *doc, char ***ids, size_t *n, char **next)
{
        const xmlNode *root = xmlDocGetRootElement(doc);
        const xmlNode *set = xml_child(root, "launchTemplates");
        size_t add = xml_count(set, "item");
        char **nv = reallocarray(*ids, *n + add + 1, sizeof(char *));
        int r;

        if (!nv)
                return -ENOMEM;
        *ids = nv;
        nv[*n] = NULL;
        XML_FOREACH(item, set, "item")
        {
                r = ec2_required(xml_child_text(item, "launchTemplateId", &nv[*n]));
                if (r < 0) {
                        nv[*n] = NULL;
                        return r;
                }
                nv[++(*n)] = NULL;
        }
        return xml_child_text_opt(root, "nextToken", next);
}

int ec2_parse_lt_ids(const char *body, size_t len, char ***ret)
{
        _cleanup_xml_doc_ xmlDoc *doc = NULL;
        _cleanup_free_ char *next = NULL;
        char **ids = NULL;
        size_t n = 0;
        int r = ec2_parse_answer(body, len, "DescribeLaunchTemplatesResponse", &doc);

        if (r >= 0)
                r = lt_ids_from_doc(doc, &ids, &n, &next);
        if (r < 0) {
                strv_free(ids);
                return r;
        }
        *ret = ids;
        return 0;
}

int ec2_describe_launch_template_ids(struct ec2_client *c, char ***ret, struct aws_error *err)
{
        _cleanup_free_ char *next = NULL;
        char **ids = NULL;
        size_t n = 0;
        int r = 0;

        for (unsigned page = 0; r >= 0 && page < MAX_PAGES; page++) {
                _cleanup_params_ struct ec2_params *p = NULL;
                _cleanup_xml_doc_ xmlDoc *doc = NULL;
                _cleanup_free_ char *token = TAKE_PTR(next);

                if (page > 0 && (!token || !*token))
                        break;
                r = ec2_params_new(&p);
                if (r >= 0 && token)
                        r = ec2_params_add(p, "NextToken", token);
                if (r >= 0)
                        r = ec2_call(c, "DescribeLaunchTemplates", p, &doc, err);
                if (r >= 0)
                        r = lt_ids_from_doc(doc, &ids, &n, &next);
        }
        if (r >= 0 && next && *next)
                r = too_many_pages("launch templates", err);
        if (r < 0) {
                strv_free(ids);
                return r;
        }
        *ret = ids;
        return 0;
}
