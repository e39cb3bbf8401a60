/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The EC2 actions the imager needs, each a small function on top of ec2_call(), and the parsers
 * of their answers (also reachable from raw bodies for the unit tests and the fuzzer).
 */
#include "aws/ec2.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/macro.h"
#include "aws/xml.h"

int ec2_parse_answer(const char *body, size_t len, const char *root_name, xmlDoc **ret)
{
        _cleanup_xml_doc_ xmlDoc *doc = NULL;
        int r = xml_parse(body, len, &doc);

        if (r < 0)
                return r;
        if (!xml_is(xmlDocGetRootElement(doc), root_name))
                return -EBADMSG;
        *ret = TAKE_PTR(doc);
        return 0;
}

void ec2_product_codes_free(struct ec2_product_code *pc, size_t n)
{
        for (size_t i = 0; pc && i < n; i++) {
                free(pc[i].code);
                free(pc[i].type);
        }
        free(pc);
}

const struct ec2_product_code *ec2_marketplace_code(const struct ec2_product_code *pc, size_t n)
{
        for (size_t i = 0; pc && i < n; i++)
                if (streq_ptr(pc[i].type, "marketplace"))
                        return &pc[i];
        return NULL;
}

/* <item><productCode>ID</productCode><type>marketplace</type></item>: the id is required. */
static int product_code_from_item(const xmlNode *item, void *elem)
{
        struct ec2_product_code *pc = elem;
        int r = ec2_required(xml_child_text(item, "productCode", &pc->code));

        if (r >= 0 && !*pc->code)
                r = -EBADMSG;
        return r < 0 ? r : xml_child_text_opt(item, "type", &pc->type);
}

static int product_codes(const xmlNode *item, struct ec2_product_code **ret, size_t *ret_n)
{
        return xml_parse_items(xml_child(item, "productCodes"), sizeof(**ret),
                               product_code_from_item, (void **)ret, ret_n);
}

void ec2_instance_done(struct ec2_instance *i)
{
        if (!i)
                return;
        free(i->instance_id);
        free(i->state);
        free(i->root_device_name);
        free(i->root_device_type);
        free(i->image_id);
        free(i->architecture);
        for (size_t k = 0; k < i->n_devices; k++) {
                free(i->devices[k].device_name);
                free(i->devices[k].volume_id);
        }
        free(i->devices);
        ec2_product_codes_free(i->product_codes, i->n_product_codes);
        *i = (struct ec2_instance){};
}

static int device_from_item(const xmlNode *bd, void *elem)
{
        struct ec2_block_device *d = elem;
        int r = ec2_required(xml_child_text(bd, "deviceName", &d->device_name));

        return r < 0 ? r : xml_child_text_opt(xml_child(bd, "ebs"), "volumeId", &d->volume_id);
}

static int instance_from_doc(xmlDoc *doc, struct ec2_instance *ret)
{
        _cleanup_(ec2_instance_done) struct ec2_instance in = {};
        const xmlNode *root = xmlDocGetRootElement(doc), *item = NULL;
        int r;

        /* One instance was asked for; the first instance of the first reservation is it. */
        XML_FOREACH(res, xml_child(root, "reservationSet"), "item")
        {
                item = xml_path(res, "instancesSet", "item", NULL);
                if (item)
                        break;
        }
        if (!item)
                return xml_child(root, "reservationSet") ? -ENOENT : -EBADMSG;

        r = ec2_required(xml_child_text(item, "instanceId", &in.instance_id));
        if (r >= 0)
                r = xml_child_text_opt(xml_child(item, "instanceState"), "name", &in.state);
        if (r >= 0)
                r = xml_child_text_opt(item, "rootDeviceName", &in.root_device_name);
        if (r >= 0)
                r = xml_child_text_opt(item, "rootDeviceType", &in.root_device_type);
        if (r >= 0)
                r = xml_child_text_opt(item, "imageId", &in.image_id);
        if (r >= 0)
                r = xml_child_text_opt(item, "architecture", &in.architecture);
        if (r >= 0)
                r = xml_parse_items(xml_child(item, "blockDeviceMapping"), sizeof(*in.devices),
                                    device_from_item, (void **)&in.devices, &in.n_devices);
        if (r >= 0)
                r = product_codes(item, &in.product_codes, &in.n_product_codes);
        if (r < 0)
                return r;
        *ret = in;
        in = (struct ec2_instance){};
        return 0;
}

int ec2_parse_instance(const char *body, size_t len, struct ec2_instance *ret)
{
        _cleanup_xml_doc_ xmlDoc *doc = NULL;
        int r = ec2_parse_answer(body, len, "DescribeInstancesResponse", &doc);

        if (r < 0)
                return r;
        return instance_from_doc(doc, ret);
}

void ec2_image_done(struct ec2_image *im)
{
        if (!im)
                return;
        free(im->image_id);
        free(im->owner_id);
        free(im->name);
        free(im->description);
        free(im->state);
        free(im->state_reason);
        free(im->creation_date);
        free(im->deprecation_time);
        free(im->deregistration_protection);
        free(im->kms_key_id);
        for (char **s = im->snapshot_ids; s && *s; s++)
                free(*s);
        free(im->snapshot_ids);
        for (size_t k = 0; k < im->n_tags; k++) {
                free(im->tags[k].key);
                free(im->tags[k].value);
        }
        free(im->tags);
        ec2_product_codes_free(im->product_codes, im->n_product_codes);
        *im = (struct ec2_image){};
}

void ec2_images_free(struct ec2_image *ims, size_t n)
{
        for (size_t i = 0; ims && i < n; i++)
                ec2_image_done(&ims[i]);
        free(ims);
}

static int image_snapshots(const xmlNode *item, struct ec2_image *im)
{
        const xmlNode *set = xml_child(item, "blockDeviceMapping");
        size_t n = 0, k = 0;
        int r;

        n = xml_count(set, "item");
        im->snapshot_ids = calloc(n + 1, sizeof(char *));
        if (!im->snapshot_ids)
                return -ENOMEM;
        XML_FOREACH(bd, set, "item")
        {
                /* Instance-store and no-device mappings have no snapshot. */
                if (!im->kms_key_id) {
                        r = xml_child_text_opt(xml_child(bd, "ebs"), "kmsKeyId", &im->kms_key_id);
                        if (r < 0)
                                return r;
                }
                r = xml_child_text_opt(xml_child(bd, "ebs"), "snapshotId", &im->snapshot_ids[k]);
                if (r < 0)
                        return r;
                if (im->snapshot_ids[k] && *im->snapshot_ids[k])
                        k++;
                else
                        free(TAKE_PTR(im->snapshot_ids[k]));
        }
        return 0;
}

static int tag_from_item(const xmlNode *t, void *elem)
{
        struct ec2_image_tag *tag = elem;
        int r = ec2_required(xml_child_text(t, "key", &tag->key));

        if (r >= 0)
                r = xml_child_text(t, "value", &tag->value);
        /* EC2 leaves out <value> for an empty value. */
        if (r == -ENOENT)
                r = (tag->value = strdup("")) ? 0 : -ENOMEM;
        return r;
}

/* An image of DescribeImages into elem; elem is left zeroed on failure. */
static int image_from_item(const xmlNode *item, void *elem)
{
        struct ec2_image *ret = elem;
        _cleanup_(ec2_image_done) struct ec2_image im = {};
        int r;

        r = ec2_required(xml_child_text(item, "imageId", &im.image_id));
        if (r >= 0)
                r = xml_child_text_opt(item, "imageOwnerId", &im.owner_id);
        if (r >= 0)
                r = xml_child_text_opt(item, "name", &im.name);
        if (r >= 0)
                r = xml_child_text_opt(item, "description", &im.description);
        if (r >= 0)
                r = xml_child_text_opt(item, "imageState", &im.state);
        if (r >= 0)
                r = xml_child_text_opt(xml_child(item, "stateReason"), "message", &im.state_reason);
        if (r >= 0)
                r = xml_child_text_opt(item, "creationDate", &im.creation_date);
        if (r >= 0)
                r = xml_child_text_opt(item, "deprecationTime", &im.deprecation_time);
        if (r >= 0)
                r = xml_child_text_opt(item, "deregistrationProtection",
                                       &im.deregistration_protection);
        if (r >= 0)
                r = image_snapshots(item, &im);
        if (r >= 0)
                r = xml_parse_items(xml_child(item, "tagSet"), sizeof(*im.tags), tag_from_item,
                                    (void **)&im.tags, &im.n_tags);
        if (r >= 0)
                r = product_codes(item, &im.product_codes, &im.n_product_codes);
        if (r < 0)
                return r;
        *ret = im;
        im = (struct ec2_image){};
        return 0;
}

/* The images of a DescribeImagesResponse document. */
static int images_from_doc(xmlDoc *doc, struct ec2_image **ret, size_t *ret_n)
{
        /* An empty answer may leave out <imagesSet/> altogether. */
        const xmlNode *set = xml_child(xmlDocGetRootElement(doc), "imagesSet");
        struct ec2_image *ims = NULL;
        size_t n = 0;
        int r = xml_parse_items(set, sizeof(*ims), image_from_item, (void **)&ims, &n);

        if (r < 0) {
                ec2_images_free(ims, n);
                return r;
        }
        *ret = ims;
        *ret_n = n;
        return 0;
}

int ec2_parse_images(const char *body, size_t len, struct ec2_image **ret, size_t *ret_n)
{
        _cleanup_xml_doc_ xmlDoc *doc = NULL;
        int r = ec2_parse_answer(body, len, "DescribeImagesResponse", &doc);

        if (r < 0)
                return r;
        return images_from_doc(doc, ret, ret_n);
}

static int image_id_from_doc(xmlDoc *doc, char **ret)
{
        char *id;
        int r = ec2_required(xml_child_text(xmlDocGetRootElement(doc), "imageId", &id));

        if (r < 0)
                return r;
        if (!*id) {
                free(id);
                return -EBADMSG;
        }
        *ret = id;
        return 0;
}

int ec2_parse_image_id(const char *body, size_t len, const char *root_name, char **ret)
{
        _cleanup_xml_doc_ xmlDoc *doc = NULL;
        int r = ec2_parse_answer(body, len, root_name, &doc);

        if (r < 0)
                return r;
        return image_id_from_doc(doc, ret);
}

int ec2_parse_create_image(const char *body, size_t len, char **ret_image_id)
{
        return ec2_parse_image_id(body, len, "CreateImageResponse", ret_image_id);
}

/* prefix.N.Key / prefix.N.Value for each tag, N from 1. */
int ec2_params_add_tags(struct ec2_params *p, const char *prefix, const struct ec2_tag *tags,
                        size_t n)
{
        int r = 0;

        for (size_t i = 0; r >= 0 && i < n; i++) {
                if (!tags[i].key)
                        return -EINVAL;
                r = ec2_params_addf(p, tags[i].key, "%s.%zu.Key", prefix, i + 1);
                if (r >= 0)
                        r = ec2_params_addf(p, strempty(tags[i].value), "%s.%zu.Value", prefix,
                                            i + 1);
        }
        return r;
}

/*
 * Run a mutating call. With dry_run, EC2 answers with an error either way: DryRunOperation
 * means the call would have been allowed (0), UnauthorizedOperation that it would not (-EPERM).
 */
int ec2_call_mutating(struct ec2_client *c, const char *action, struct ec2_params *p, bool dry_run,
                      xmlDoc **ret_doc, struct aws_error *err)
{
        _cleanup_(aws_error_done) struct aws_error e = {};
        _cleanup_xml_doc_ xmlDoc *doc = NULL;
        int r = dry_run ? ec2_params_add(p, "DryRun", "true") : 0;

        if (r < 0)
                return r;
        r = ec2_call(c, action, p, &doc, &e);
        if (dry_run && r == -EREMOTEIO && streq_ptr(e.code, "DryRunOperation"))
                return 0;
        if (dry_run && r == -EREMOTEIO && streq_ptr(e.code, "UnauthorizedOperation"))
                r = -EPERM;
        if (r < 0) {
                if (e.http_status || e.code)
                        aws_error_move(err, &e);
                return r;
        }
        if (ret_doc)
                *ret_doc = TAKE_PTR(doc);
        return 0;
}

int ec2_call_image_id(struct ec2_client *c, const char *action, struct ec2_params *p, bool dry_run,
                      char **ret_image_id, struct aws_error *err)
{
        _cleanup_xml_doc_ xmlDoc *doc = NULL;
        int r = ec2_call_mutating(c, action, p, dry_run, &doc, err);

        if (r < 0)
                return r;
        if (dry_run) {
                if (ret_image_id)
                        *ret_image_id = NULL;
                return 0;
        }
        return image_id_from_doc(doc, ret_image_id);
}

int ec2_describe_instance(struct ec2_client *c, const char *instance_id, struct ec2_instance *ret,
                          struct aws_error *err)
{
        _cleanup_params_ struct ec2_params *p = NULL;
        _cleanup_xml_doc_ xmlDoc *doc = NULL;
        int r;

        if (!instance_id)
                return -EINVAL;
        r = ec2_params_build(&p, "InstanceId.1", instance_id, NULL);
        if (r >= 0)
                r = ec2_call(c, "DescribeInstances", p, &doc, err);
        if (r < 0)
                return r;
        return instance_from_doc(doc, ret);
}

int ec2_create_image(struct ec2_client *c, const struct ec2_create_image_args *a,
                     char **ret_image_id, struct aws_error *err)
{
        static const char *const types[] = {"image", "snapshot"};
        _cleanup_params_ struct ec2_params *p = NULL;
        int r;

        if (!a || !a->instance_id || !a->name)
                return -EINVAL;
        /* clang-format off */
        r = ec2_params_build(&p,
                             "InstanceId", a->instance_id,
                             "Name", a->name,
                             "Description", a->description,
                             "NoReboot", a->no_reboot ? "true" : "false",
                             NULL);
        /* clang-format on */
        /* The same tags on the image and on each snapshot, so either can be found by them. */
        for (size_t i = 0; r >= 0 && a->n_tags > 0 && i < (a->no_snapshot_tags ? 1u : 2u); i++) {
                _cleanup_free_ char *prefix = NULL;

                r = ec2_params_addf(p, types[i], "TagSpecification.%zu.ResourceType", i + 1);
                if (r >= 0 && asprintf(&prefix, "TagSpecification.%zu.Tag", i + 1) < 0) {
                        prefix = NULL;
                        r = -ENOMEM;
                }
                if (r >= 0)
                        r = ec2_params_add_tags(p, prefix, a->tags, a->n_tags);
        }
        if (r < 0)
                return r;
        return ec2_call_image_id(c, "CreateImage", p, a->dry_run, ret_image_id, err);
}

/* DescribeImages with Owner.1 = owner (NULL: any), one filter (NULL: none) and/or an id. */
static int describe_images(struct ec2_client *c, const char *owner, const char *filter,
                           const char *value, const char *image_id, struct ec2_image **ret,
                           size_t *ret_n, struct aws_error *err)
{
        _cleanup_params_ struct ec2_params *p = NULL;
        _cleanup_xml_doc_ xmlDoc *doc = NULL;
        int r;

        if (filter && !value)
                return -EINVAL;
        /* clang-format off */
        r = ec2_params_build(&p,
                             "Owner.1", owner,
                             "Filter.1.Name", filter,
                             "Filter.1.Value.1", filter ? value : NULL,
                             "ImageId.1", image_id,
                             NULL);
        /* clang-format on */
        if (r >= 0)
                r = ec2_call(c, "DescribeImages", p, &doc, err);
        if (r < 0)
                return r;
        return images_from_doc(doc, ret, ret_n);
}

int ec2_describe_image_any_owner(struct ec2_client *c, const char *image_id, struct ec2_image *ret,
                                 struct aws_error *err)
{
        _cleanup_(aws_error_done) struct aws_error e = {};
        struct ec2_image *ims = NULL;
        size_t n = 0;
        int r;

        if (!image_id)
                return -EINVAL;
        r = describe_images(c, NULL, NULL, NULL, image_id, &ims, &n, &e);
        /* A deregistered image is "not found" or "unavailable", depending on how long ago. */
        if (r == -EREMOTEIO && (streq_ptr(e.code, "InvalidAMIID.NotFound") ||
                                streq_ptr(e.code, "InvalidAMIID.Unavailable")))
                return -ENOENT;
        if (r < 0) {
                aws_error_move(err, &e);
                return r;
        }
        if (n > 0) {
                *ret = ims[0];
                ims[0] = (struct ec2_image){};
        }
        ec2_images_free(ims, n);
        return n > 0 ? 0 : -ENOENT;
}

int ec2_describe_own_images(struct ec2_client *c, const char *filter, const char *value,
                            const char *image_id, struct ec2_image **ret, size_t *ret_n,
                            struct aws_error *err)
{
        return describe_images(c, "self", filter, value, image_id, ret, ret_n, err);
}

int ec2_create_tags(struct ec2_client *c, const char *const *resource_ids,
                    const struct ec2_tag *tags, size_t n_tags, bool dry_run, struct aws_error *err)
{
        _cleanup_params_ struct ec2_params *p = NULL;
        int r;

        if (!resource_ids || !resource_ids[0] || n_tags == 0)
                return -EINVAL;
        r = ec2_params_new(&p);
        for (size_t i = 0; r >= 0 && resource_ids[i]; i++)
                r = ec2_params_addf(p, resource_ids[i], "ResourceId.%zu", i + 1);
        if (r >= 0)
                r = ec2_params_add_tags(p, "Tag", tags, n_tags);
        if (r < 0)
                return r;
        return ec2_call_mutating(c, "CreateTags", p, dry_run, NULL, err);
}

int ec2_delete_snapshot(struct ec2_client *c, const char *snapshot_id, bool dry_run,
                        struct aws_error *err)
{
        _cleanup_params_ struct ec2_params *p = NULL;
        int r;

        if (!snapshot_id)
                return -EINVAL;
        r = ec2_params_build(&p, "SnapshotId", snapshot_id, NULL);
        if (r < 0)
                return r;
        return ec2_call_mutating(c, "DeleteSnapshot", p, dry_run, NULL, err);
}

/* Delete what is left of the snapshots; EC2 may already have removed them with the image. */
static int delete_leftover_snapshots(struct ec2_client *c, char **snapshot_ids,
                                     struct aws_error *err)
{
        for (char **s = snapshot_ids; s && *s; s++) {
                _cleanup_(aws_error_done) struct aws_error e = {};
                int r = ec2_delete_snapshot(c, *s, false, &e);

                if (r == -EREMOTEIO && streq_ptr(e.code, "InvalidSnapshot.NotFound"))
                        continue;
                if (r < 0) {
                        log_debug_errno(r, "EC2 DeleteSnapshot %s failed: %m", *s);
                        aws_error_move(err, &e);
                        return r;
                }
        }
        return 0;
}

int ec2_deregister_image(struct ec2_client *c, const char *image_id, bool delete_snapshots,
                         bool dry_run, struct aws_error *err)
{
        _cleanup_params_ struct ec2_params *p = NULL;
        _cleanup_(ec2_image_done) struct ec2_image im = {};
        struct ec2_image *ims = NULL;
        size_t n = 0;
        int r;

        if (!image_id)
                return -EINVAL;
        /*
         * Learn the snapshots before the image is gone: afterwards nothing links them to it
         * but the tags we put on them.
         */
        if (delete_snapshots && !dry_run) {
                r = ec2_describe_own_images(c, NULL, NULL, image_id, &ims, &n, err);
                if (r < 0)
                        return r;
                if (n > 0) {
                        im = ims[0];
                        ims[0] = (struct ec2_image){};
                }
                ec2_images_free(ims, n);
        }
        r = ec2_params_build(&p, "ImageId", image_id, "DeleteAssociatedSnapshots",
                             delete_snapshots ? "true" : NULL, NULL);
        if (r >= 0)
                r = ec2_call_mutating(c, "DeregisterImage", p, dry_run, NULL, err);
        if (r < 0 || dry_run || !delete_snapshots)
                return r;
        return delete_leftover_snapshots(c, im.snapshot_ids, err);
}
