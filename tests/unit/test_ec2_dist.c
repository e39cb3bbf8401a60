/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The parsers of the distribution calls' answers (ec2_dist.h), on answers captured from moto
 * (tests/fuzz/corpus/fuzz_ec2_xml/moto_*) and shaped after the EC2 API reference (aws_*), plus
 * the per-region endpoint of a second client.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aws/ec2.h"
#include "aws/ec2_dist.h"
#include "util/fileio.h"
#include "util/str.h"

#define CORPUS SRCDIR "/tests/fuzz/corpus/fuzz_ec2_xml/"
#define NS     "xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\""

static char *corpus(const char *name, size_t *len)
{
        char *data = NULL;

        assert_int_equal(read_file_bounded(name, 1 << 20, &data, len), 0);
        return data;
}

static void test_copy_image(void **state)
{
        static const char empty[] = "<CopyImageResponse " NS "><imageId></imageId>"
                                    "</CopyImageResponse>";
        static const char other[] = "<CreateImageResponse " NS "><imageId>ami-1</imageId>"
                                    "</CreateImageResponse>";
        size_t len;
        char *body = corpus(CORPUS "moto_copy_image.xml", &len), *id = NULL;

        assert_int_equal(ec2_parse_copy_image(body, len, &id), 0);
        assert_string_equal(id, "ami-08465ebf944d858d9");
        free(id);
        free(body);
        id = NULL;
        /* An empty id, or the answer to another action, is not a copy. */
        assert_int_equal(ec2_parse_copy_image(empty, strlen(empty), &id), -EBADMSG);
        assert_int_equal(ec2_parse_copy_image(other, strlen(other), &id), -EBADMSG);
        assert_null(id);
}

static void test_create_lt_version(void **state)
{
        static const char bad_num[] =
                "<CreateLaunchTemplateVersionResponse " NS "><launchTemplateVersion>"
                "<versionNumber>-2</versionNumber></launchTemplateVersion>"
                "</CreateLaunchTemplateVersionResponse>";
        static const char no_version[] = "<CreateLaunchTemplateVersionResponse " NS ">"
                                         "<requestId>x</requestId>"
                                         "</CreateLaunchTemplateVersionResponse>";
        size_t len;
        char *body = corpus(CORPUS "moto_create_lt_version.xml", &len);
        int64_t v = 0;

        assert_int_equal(ec2_parse_create_lt_version(body, len, &v), 0);
        assert_int_equal(v, 2);
        free(body);
        v = 7;
        assert_int_equal(ec2_parse_create_lt_version(bad_num, strlen(bad_num), &v), -EBADMSG);
        assert_int_equal(ec2_parse_create_lt_version(no_version, strlen(no_version), &v), -EBADMSG);
        assert_int_equal(v, 7);
}

static void test_lt_versions(void **state)
{
        /* The default version 1 with an image, and the latest (3) without one. */
        static const char aws[] =
                "<DescribeLaunchTemplateVersionsResponse " NS "><requestId>r</requestId>"
                "<launchTemplateVersionSet><item><launchTemplateId>lt-0abc</launchTemplateId>"
                "<versionNumber>1</versionNumber><defaultVersion>true</defaultVersion>"
                "<launchTemplateData><imageId>ami-1</imageId><instanceType>t3.micro"
                "</instanceType></launchTemplateData></item><item><launchTemplateId>lt-0abc"
                "</launchTemplateId><versionNumber>3</versionNumber><defaultVersion>false"
                "</defaultVersion><launchTemplateData/></item></launchTemplateVersionSet>"
                "<nextToken>page2</nextToken></DescribeLaunchTemplateVersionsResponse>";
        static const char empty[] = "<DescribeLaunchTemplateVersionsResponse " NS ">"
                                    "<launchTemplateVersionSet/>"
                                    "</DescribeLaunchTemplateVersionsResponse>";
        struct ec2_lt_version *v = NULL;
        size_t n = 0, len;
        char *body = corpus(CORPUS "moto_describe_lt_versions.xml", &len);

        assert_int_equal(ec2_parse_lt_versions(body, len, &v, &n), 0);
        /* moto lists $Default and $Latest separately even when they are the same version. */
        assert_int_equal(n, 2);
        assert_string_equal(v[0].template_id, "lt-4fb7d2b706a47ad4e");
        assert_int_equal(v[0].version, 2);
        assert_true(v[0].is_default);
        assert_string_equal(v[0].image_id, "ami-6ffcc6c2027ae6bf7");
        ec2_lt_versions_free(v, n);
        free(body);

        assert_int_equal(ec2_parse_lt_versions(aws, strlen(aws), &v, &n), 0);
        assert_int_equal(n, 2);
        assert_int_equal(v[0].version, 1);
        assert_true(v[0].is_default);
        assert_string_equal(v[0].image_id, "ami-1");
        assert_int_equal(v[1].version, 3);
        assert_false(v[1].is_default);
        assert_null(v[1].image_id);
        ec2_lt_versions_free(v, n);

        assert_int_equal(ec2_parse_lt_versions(empty, strlen(empty), &v, &n), 0);
        assert_int_equal(n, 0);
        ec2_lt_versions_free(v, n);
}

static void test_lt_ids(void **state)
{
        static const char missing_id[] = "<DescribeLaunchTemplatesResponse " NS "><launchTemplates>"
                                         "<item><launchTemplateName>x</launchTemplateName></item>"
                                         "</launchTemplates></DescribeLaunchTemplatesResponse>";
        static const char none[] = "<DescribeLaunchTemplatesResponse " NS ">"
                                   "</DescribeLaunchTemplatesResponse>";
        size_t len;
        char *body = corpus(CORPUS "moto_describe_lts.xml", &len), **ids = NULL;

        assert_int_equal(ec2_parse_lt_ids(body, len, &ids), 0);
        assert_string_equal(ids[0], "lt-4fb7d2b706a47ad4e");
        assert_null(ids[1]);
        free(ids[0]);
        free(ids);
        free(body);
        ids = NULL;
        assert_int_equal(ec2_parse_lt_ids(missing_id, strlen(missing_id), &ids), -EBADMSG);
        assert_null(ids);
        assert_int_equal(ec2_parse_lt_ids(none, strlen(none), &ids), 0);
        assert_null(ids[0]);
        free(ids);
}

static void test_lineage_images(void **state)
{
        static const char aws[] =
                "<DescribeImagesResponse " NS "><imagesSet><item><imageId>ami-1</imageId>"
                "<imageState>available</imageState><creationDate>2026-01-01T00:00:00.000Z"
                "</creationDate><deprecationTime>2026-06-01T00:00:00.000Z</deprecationTime>"
                "<deregistrationProtection>enabled-with-cooldown</deregistrationProtection>"
                "<blockDeviceMapping><item><deviceName>/dev/xvda</deviceName><ebs><snapshotId>"
                "snap-1</snapshotId><encrypted>true</encrypted><kmsKeyId>arn:aws:kms:us-east-1:"
                "111122223333:key/k1</kmsKeyId></ebs></item></blockDeviceMapping>"
                "</item></imagesSet></DescribeImagesResponse>";
        struct ec2_image *ims = NULL;
        size_t n = 0, len;
        char *body = corpus(CORPUS "moto_describe_images_lineage.xml", &len);

        assert_int_equal(ec2_parse_images(body, len, &ims, &n), 0);
        assert_int_equal(n, 1);
        assert_string_equal(ims[0].tags[0].key, "ec2-imaged:lineage");
        assert_string_equal(ims[0].tags[0].value, "web");
        assert_string_equal(ims[0].snapshot_ids[0], "snap-11df02a37e043b7e7");
        assert_null(ims[0].deprecation_time);
        assert_null(ims[0].deregistration_protection);
        assert_null(ims[0].kms_key_id);
        ec2_images_free(ims, n);
        free(body);

        assert_int_equal(ec2_parse_images(aws, strlen(aws), &ims, &n), 0);
        assert_string_equal(ims[0].deprecation_time, "2026-06-01T00:00:00.000Z");
        assert_string_equal(ims[0].deregistration_protection, "enabled-with-cooldown");
        assert_string_equal(ims[0].kms_key_id, "arn:aws:kms:us-east-1:111122223333:key/k1");
        ec2_images_free(ims, n);
}

static void test_return_true(void **state)
{
        static const char no[] = "<EnableImageDeprecationResponse " NS "><return>false</return>"
                                 "</EnableImageDeprecationResponse>";
        size_t len;
        char *body = corpus(CORPUS "aws_enable_image_deprecation.xml", &len);

        assert_int_equal(ec2_parse_return_true(body, len, "EnableImageDeprecationResponse"), 0);
        assert_int_equal(ec2_parse_return_true(body, len, "DeregisterImageResponse"), -EBADMSG);
        free(body);
        assert_int_equal(ec2_parse_return_true(no, strlen(no), "EnableImageDeprecationResponse"),
                         -EBADMSG);
}

static void test_region_clients(void **state)
{
        /* One client per region; the endpoint follows the region unless the environment says. */
        struct ec2_client_config cfg = {.region = "us-west-2"};
        struct ec2_client *c = NULL;

        unsetenv("AWS_ENDPOINT_URL_EC2");
        unsetenv("AWS_ENDPOINT_URL");
        assert_int_equal(ec2_client_new(&cfg, NULL, &c), 0);
        assert_string_equal(ec2_client_endpoint(c), "https://ec2.us-west-2.amazonaws.com");
        c = ec2_client_free(c);
        setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000", 1);
        cfg.region = "eu-west-1";
        assert_int_equal(ec2_client_new(&cfg, NULL, &c), 0);
        assert_string_equal(ec2_client_endpoint(c), "http://127.0.0.1:5000");
        ec2_client_free(c);
        unsetenv("AWS_ENDPOINT_URL");
}

static void test_args_checked(void **state)
{
        /* Missing arguments are refused before any client use (no client is needed). */
        struct aws_error e = {};
        struct ec2_share s = {EC2_SHARE_ACCOUNT, "111122223333"};
        int64_t v;

        assert_int_equal(ec2_copy_image(NULL, &(struct ec2_copy_image_args){.name = "x"}, NULL, &e),
                         -EINVAL);
        assert_int_equal(ec2_add_launch_permissions(NULL, "ami-1", &s, 0, false, &e), -EINVAL);
        assert_int_equal(ec2_add_create_volume_permission(NULL, "snap-1", NULL, false, &e),
                         -EINVAL);
        assert_int_equal(ec2_create_launch_template_version(NULL, "", NULL, "ami-1", NULL, NULL,
                                                            false, &v, &e),
                         -EINVAL);
        assert_int_equal(ec2_set_launch_template_default(NULL, "lt-1", 0, false, &e), -EINVAL);
        assert_null(e.code);
}

/* DescribeVolumes as the EC2 API reference shapes it: the keys of the encrypted volumes, once. */
static void test_volume_keys(void **state)
{
        static const char body[] =
                "<DescribeVolumesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">"
                "<requestId>r</requestId><volumeSet>"
                "<item><volumeId>vol-1</volumeId><encrypted>true</encrypted>"
                "<kmsKeyId>arn:aws:kms:us-east-1:123456789012:key/k1</kmsKeyId></item>"
                "<item><volumeId>vol-2</volumeId><encrypted>false</encrypted></item>"
                "<item><volumeId>vol-3</volumeId><encrypted>true</encrypted>"
                "<kmsKeyId>arn:aws:kms:us-east-1:123456789012:key/k1</kmsKeyId></item>"
                "<item><volumeId>vol-4</volumeId><encrypted>true</encrypted>"
                "<kmsKeyId>arn:aws:kms:us-east-1:123456789012:key/k2</kmsKeyId></item>"
                "<item><volumeId>vol-5</volumeId><encrypted>false</encrypted>"
                "<kmsKeyId>stale</kmsKeyId></item>"
                "</volumeSet></DescribeVolumesResponse>";
        static const char none[] = "<DescribeVolumesResponse><volumeSet><item><volumeId>vol-1"
                                   "</volumeId><encrypted>false</encrypted></item></volumeSet>"
                                   "</DescribeVolumesResponse>";
        static const char wrong[] = "<DescribeImagesResponse><volumeSet/></DescribeImagesResponse>";
        char **keys = NULL;

        assert_int_equal(ec2_parse_volume_keys(body, strlen(body), &keys), 0);
        assert_string_equal(keys[0], "arn:aws:kms:us-east-1:123456789012:key/k1");
        assert_string_equal(keys[1], "arn:aws:kms:us-east-1:123456789012:key/k2");
        assert_null(keys[2]);
        strv_free(keys);
        assert_int_equal(ec2_parse_volume_keys(none, strlen(none), &keys), 0);
        assert_non_null(keys);
        assert_null(keys[0]);
        strv_free(keys);
        keys = NULL;
        assert_int_equal(ec2_parse_volume_keys(wrong, strlen(wrong), &keys), -EBADMSG);
        assert_null(keys);
}

/*
 * Public sharing is never done: `all` (the group EC2 takes for "everyone") is refused as a share
 * of any kind before anything is sent. A client without credentials shows the difference: a real
 * account id gets as far as needing them.
 */
static void test_never_public(void **state)
{
        struct ec2_client_config cfg = {.region = "us-east-1",
                                        .endpoint_url = "http://127.0.0.1:9"};
        static const char *const all[] = {"111122223333", "ALL", NULL};
        static const char *const one[] = {"111122223333", NULL};
        struct aws_error e = {};
        struct ec2_client *c;

        unsetenv("AWS_ENDPOINT_URL");
        unsetenv("AWS_ENDPOINT_URL_EC2");
        assert_int_equal(ec2_client_new(&cfg, NULL, &c), 0);
        for (int k = EC2_SHARE_ACCOUNT; k <= EC2_SHARE_OU; k++) {
                struct ec2_share s[] = {{EC2_SHARE_ACCOUNT, "111122223333"}, {k, "all"}};

                assert_int_equal(ec2_add_launch_permissions(c, "ami-1", s, 2, true, &e), -EINVAL);
                assert_int_equal(ec2_add_launch_permissions(c, "ami-1", s, 1, true, &e), -ENOKEY);
        }
        assert_int_equal(ec2_add_create_volume_permission(c, "snap-1", all, false, &e), -EINVAL);
        assert_int_equal(ec2_add_create_volume_permission(c, "snap-1", one, false, &e), -ENOKEY);
        assert_null(e.code);
        ec2_client_free(c);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_copy_image),     cmocka_unit_test(test_create_lt_version),
                cmocka_unit_test(test_lt_versions),    cmocka_unit_test(test_lt_ids),
                cmocka_unit_test(test_lineage_images), cmocka_unit_test(test_return_true),
                cmocka_unit_test(test_region_clients), cmocka_unit_test(test_args_checked),
                cmocka_unit_test(test_never_public),   cmocka_unit_test(test_volume_keys),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
