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
#include <strings.h>

#include "util/macro.h"
#include "util/parse.h"
#include "util/str.h"
#include "aws/xml.h"

/* Paged describe calls stop here whatever NextToken says: a loop guard, not a real limit. */
#define MAX_PAGES 100

int ec2_parse_copy_image(const char *body, size_t len, char **ret_image_id)
{
        return ec2_parse_image_id(body, len, "CopyImageResponse", ret_image_id);
}

int ec2_copy_image(struct ec2_client *c, const struct ec2_copy_image_args *a, char **ret_image_id,
                   struct aws_error *err)
{
        _cleanup_params_ struct ec2_params *p = NULL;
        int r;

        if (!a || !a->source_region || !a->source_image_id || !a->name)
                return -EINVAL;
        /* EC2 refuses a KmsKeyId without Encrypted=true. */
        /* clang-format off */
        r = ec2_params_build(&p,
                             "SourceRegion", a->source_region,
                             "SourceImageId", a->source_image_id,
                             "Name", a->name,
                             "Description", a->description,
                             "Encrypted", a->encrypted || a->kms_key_id ? "true" : NULL,
                             "KmsKeyId", a->kms_key_id,
                             "CopyImageTags", a->copy_image_tags ? "true" : NULL,
                             "ClientToken", a->client_token,
                             "TagSpecification.1.ResourceType", a->n_tags > 0 ? "image" : NULL,
                             NULL);
        /* clang-format on */
        if (r >= 0 && a->n_tags > 0)
                r = ec2_params_add_tags(p, "TagSpecification.1.Tag", a->tags, a->n_tags);
        if (r < 0)
                return r;
        return ec2_call_image_id(c, "CopyImage", p, a->dry_run, ret_image_id, err);
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
        r = ec2_params_build(&p, "ImageId", image_id, NULL);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                const char *f = share_field(shares[i].kind);

                /* Never `all`: public sharing is not something ec2-imaged does. */
                if (!f || !shares[i].value || strcasecmp(shares[i].value, "all") == 0)
                        return -EINVAL;
                r = ec2_params_addf(p, shares[i].value, "LaunchPermission.Add.%zu.%s", i + 1, f);
        }
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
        r = ec2_params_build(&p, "SnapshotId", snapshot_id, "Attribute", "createVolumePermission",
                             "OperationType", "add", NULL);
        for (size_t i = 0; r >= 0 && account_ids[i]; i++)
                r = strcasecmp(account_ids[i], "all") == 0
                            ? -EINVAL
                            : ec2_params_addf(p, account_ids[i], "UserId.%zu", i + 1);
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
        r = ec2_params_build(&p, "ImageId", image_id, "DeprecateAt", deprecate_at, NULL);
        if (r < 0)
                return r;
        return ec2_call_mutating(c, "EnableImageDeprecation", p, dry_run, NULL, err);
}

int ec2_set_imds_v2_only(struct ec2_client *c, const char *image_id, bool dry_run,
                         struct aws_error *err)
{
        _cleanup_params_ struct ec2_params *p = NULL;
        int r;

        if (!image_id)
                return -EINVAL;
        r = ec2_params_build(&p, "ImageId", image_id, "ImdsSupport.Value", "v2.0", NULL);
        if (r < 0)
                return r;
        return ec2_call_mutating(c, "ModifyImageAttribute", p, dry_run, NULL, err);
}

int ec2_set_deregistration_protection(struct ec2_client *c, const char *image_id, bool enable,
                                      bool dry_run, struct aws_error *err)
{
        _cleanup_params_ struct ec2_params *p = NULL;
        int r;

        if (!image_id)
                return -EINVAL;
        r = ec2_params_build(&p, "ImageId", image_id, NULL);
        if (r < 0)
                return r;
        return ec2_call_mutating(c,
                                 enable ? "EnableImageDeregistrationProtection"
                                        : "DisableImageDeregistrationProtection",
                                 p, dry_run, NULL, err);
}

int ec2_describe_images_by_tag(struct ec2_client *c, const char *key, const char *value,
                               struct ec2_image **ret, size_t *ret_n, struct aws_error *err)
{
        _cleanup_free_ char *filter = NULL;

        if (!key || !*key || !value)
                return -EINVAL;
        if (asprintf(&filter, "tag:%s", key) < 0)
                return -ENOMEM;
        return ec2_describe_own_images(c, filter, value, NULL, ret, ret_n, err);
}

/* The parameter that names template: an id is "lt-" and hex digits; anything else is a name. */
static const char *template_param(const char *template)
{
        bool is_id = template && startswith(template, "lt-") && template[3] &&
                     strspn(template + 3, "0123456789abcdef") == strlen(template + 3);

        return is_id ? "LaunchTemplateId" : "LaunchTemplateName";
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

/* The number of the version a CreateLaunchTemplateVersion answer made; ret_version may be NULL. */
static int new_lt_version_from_doc(xmlDoc *doc, int64_t *ret_version)
{
        const xmlNode *item = xml_child(xmlDocGetRootElement(doc), "launchTemplateVersion");
        struct ec2_lt_version v = {};
        int r;

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

int ec2_parse_create_lt_version(const char *body, size_t len, int64_t *ret_version)
{
        _cleanup_xml_doc_ xmlDoc *doc = NULL;
        int r = ec2_parse_answer(body, len, "CreateLaunchTemplateVersionResponse", &doc);

        if (r < 0)
                return r;
        return new_lt_version_from_doc(doc, ret_version);
}

int ec2_create_launch_template_version(struct ec2_client *c, const char *template,
                                       const char *source_version, const char *image_id,
                                       const char *description, const char *client_token,
                                       bool dry_run, int64_t *ret_version, struct aws_error *err)
{
        _cleanup_params_ struct ec2_params *p = NULL;
        _cleanup_xml_doc_ xmlDoc *doc = NULL;
        int r;

        if (!template || !*template || !image_id)
                return -EINVAL;
        /* With a ClientToken, the retries of a call that may have worked make no second version. */
        /* clang-format off */
        r = ec2_params_build(&p,
                             template_param(template), template,
                             "SourceVersion", source_version,
                             "VersionDescription", description,
                             "LaunchTemplateData.ImageId", image_id,
                             "ClientToken", client_token,
                             NULL);
        /* clang-format on */
        if (r >= 0)
                r = ec2_call_mutating(c, "CreateLaunchTemplateVersion", p, dry_run, &doc, err);
        if (r < 0 || dry_run)
                return r;
        return new_lt_version_from_doc(doc, ret_version);
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
        r = ec2_params_build(&p, template_param(template), template, "SetDefaultVersion", num,
                             NULL);
        if (r < 0)
                return r;
        return ec2_call_mutating(c, "ModifyLaunchTemplate", p, dry_run, NULL, err);
}

/* Take one <item> of a listing into userdata. */
typedef int (*item_fn)(const xmlNode *item, void *userdata);

/* Hand each <item> of one page's set_name to add(); *next is the page's NextToken. */
static int page_items(xmlDoc *doc, const char *set_name, item_fn add, void *userdata, char **next)
{
        const xmlNode *root = xmlDocGetRootElement(doc);
        int r;

        XML_FOREACH(item, xml_child(root, set_name), "item")
        {
                r = add(item, userdata);
                if (r < 0)
                        return r;
        }
        return xml_child_text_opt(root, "nextToken", next);
}

/*
 * A describe call page by page: p's parameters and the NextToken of the page before, each item of
 * each answer's set_name handed to add(). NextToken still set after MAX_PAGES pages: a listing cut
 * short would look complete (retention would miss the images that launch templates use), so it is
 * an error naming what was listed.
 */
static int call_pages(struct ec2_client *c, const char *action, struct ec2_params *p,
                      const char *set_name, item_fn add, void *userdata, const char *what,
                      struct aws_error *err)
{
        _cleanup_free_ char *next = NULL;
        int r = 0;

        for (unsigned i = 0; i < MAX_PAGES; i++) {
                _cleanup_xml_doc_ xmlDoc *doc = NULL;
                _cleanup_free_ char *token = TAKE_PTR(next);

                if (i > 0 && (!token || !*token))
                        return 0;
                if (token)
                        r = ec2_params_set(p, "NextToken", token);
                if (r >= 0)
                        r = ec2_call(c, action, p, &doc, err);
                if (r >= 0)
                        r = page_items(doc, set_name, add, userdata, &next);
                if (r < 0)
                        return r;
        }
        if (!next || !*next)
                return 0;
        aws_error_done(err);
        err->message = strprintf("%s: more than %u pages of results (NextToken still set); not "
                                 "listing further",
                                 what, MAX_PAGES);
        return -E2BIG;
}

struct lt_versions {
        struct ec2_lt_version *v;
        size_t n;
};

static int lt_version_add(const xmlNode *item, void *userdata)
{
        struct lt_versions *l = userdata;
        struct ec2_lt_version *nv = reallocarray(l->v, l->n + 1, sizeof(*nv));
        int r;

        if (!nv)
                return -ENOMEM;
        l->v = nv;
        r = lt_version_from_item(item, &l->v[l->n]);
        if (r >= 0)
                l->n++;
        return r;
}

/* Hand the versions over when r >= 0, else free them; returns r. */
static int lt_versions_finish(struct lt_versions *l, int r, struct ec2_lt_version **ret,
                              size_t *ret_n)
{
        if (r < 0) {
                ec2_lt_versions_free(l->v, l->n);
                return r;
        }
        *ret = l->v;
        *ret_n = l->n;
        return 0;
}

#define LT_VERSION_SET "launchTemplateVersionSet"

int ec2_parse_lt_versions(const char *body, size_t len, struct ec2_lt_version **ret, size_t *ret_n)
{
        _cleanup_xml_doc_ xmlDoc *doc = NULL;
        _cleanup_free_ char *next = NULL;
        struct lt_versions l = {};
        int r = ec2_parse_answer(body, len, "DescribeLaunchTemplateVersionsResponse", &doc);

        if (r >= 0)
                r = page_items(doc, LT_VERSION_SET, lt_version_add, &l, &next);
        return lt_versions_finish(&l, r, ret, ret_n);
}

int ec2_describe_launch_template_versions(struct ec2_client *c, const char *template,
                                          const char *const *versions, struct ec2_lt_version **ret,
                                          size_t *ret_n, struct aws_error *err)
{
        _cleanup_params_ struct ec2_params *p = NULL;
        _cleanup_free_ char *what = strprintf("versions of launch template %s", strna(template));
        struct lt_versions l = {};
        int r;

        r = ec2_params_build(&p, template_param(template), template, NULL);
        for (size_t i = 0; r >= 0 && versions && versions[i]; i++)
                r = ec2_params_addf(p, versions[i], "LaunchTemplateVersion.%zu", i + 1);
        if (r >= 0)
                r = call_pages(c, "DescribeLaunchTemplateVersions", p, LT_VERSION_SET,
                               lt_version_add, &l, what ? what : "launch template versions", err);
        return lt_versions_finish(&l, r, ret, ret_n);
}

static int lt_id_add(const xmlNode *item, void *userdata)
{
        _cleanup_free_ char *id = NULL;
        int r = ec2_required(xml_child_text(item, "launchTemplateId", &id));

        return r < 0 ? r : strv_push(userdata, id);
}

/* Hand the strings over (an empty vector when there are none) when r >= 0, else free them. */
static int strv_finish(char **ids, int r, char ***ret)
{
        if (r >= 0 && !ids)
                r = (ids = calloc(1, sizeof(char *))) ? 0 : -ENOMEM;
        if (r < 0) {
                strv_free(ids);
                return r;
        }
        *ret = ids;
        return 0;
}

/* One page of an answer whose items add() turns into strings (launch template ids, keys). */
static int parse_strv_page(const char *body, size_t len, const char *root_name,
                           const char *set_name, item_fn add, char ***ret)
{
        _cleanup_xml_doc_ xmlDoc *doc = NULL;
        _cleanup_free_ char *next = NULL;
        char **v = NULL;
        int r = ec2_parse_answer(body, len, root_name, &doc);

        if (r >= 0)
                r = page_items(doc, set_name, add, &v, &next);
        return strv_finish(v, r, ret);
}

int ec2_parse_lt_ids(const char *body, size_t len, char ***ret)
{
        return parse_strv_page(body, len, "DescribeLaunchTemplatesResponse", "launchTemplates",
                               lt_id_add, ret);
}

int ec2_describe_launch_template_ids(struct ec2_client *c, char ***ret, struct aws_error *err)
{
        _cleanup_params_ struct ec2_params *p = NULL;
        char **ids = NULL;
        int r;

        r = ec2_params_new(&p);
        if (r >= 0)
                r = call_pages(c, "DescribeLaunchTemplates", p, "launchTemplates", lt_id_add, &ids,
                               "launch templates", err);
        return strv_finish(ids, r, ret);
}

/* The key of an encrypted volume of DescribeVolumes, added once; an unencrypted one has none. */
static int volume_key_add(const xmlNode *item, void *userdata)
{
        _cleanup_free_ char *encrypted = NULL, *key = NULL;
        char ***keys = userdata;
        int r = xml_child_text_opt(item, "encrypted", &encrypted);

        if (r >= 0 && streq_ptr(encrypted, "true"))
                r = xml_child_text_opt(item, "kmsKeyId", &key);
        if (r < 0 || !key || !*key || strv_contains(*keys, key))
                return r;
        return strv_push(keys, key);
}

int ec2_parse_volume_keys(const char *body, size_t len, char ***ret)
{
        return parse_strv_page(body, len, "DescribeVolumesResponse", "volumeSet", volume_key_add,
                               ret);
}

int ec2_describe_volume_keys(struct ec2_client *c, const char *const *volume_ids, char ***ret,
                             struct aws_error *err)
{
        _cleanup_params_ struct ec2_params *p = NULL;
        char **keys = NULL;
        int r;

        if (!volume_ids || !volume_ids[0])
                return -EINVAL;
        r = ec2_params_new(&p);
        for (size_t i = 0; r >= 0 && volume_ids[i]; i++)
                r = ec2_params_addf(p, volume_ids[i], "VolumeId.%zu", i + 1);
        if (r >= 0)
                r = call_pages(c, "DescribeVolumes", p, "volumeSet", volume_key_add, &keys,
                               "volumes", err);
        return strv_finish(keys, r, ret);
}
