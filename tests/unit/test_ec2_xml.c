/* SPDX-License-Identifier: Apache-2.0 */
/*
 * EC2 Query API pieces that need no peer: the XML parsers on real-shaped answers (most captured
 * from moto, the rest shaped after the EC2 API reference), hostile XML, the transient-error table,
 * parameter encoding and endpoint resolution.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/ec2.h"
#include "aws/xml.h"
#include "util/buf.h"
#include "util/macro.h"

#define NS "xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\""

static int parse_error_str(const char *s, struct aws_error *e)
{
        return ec2_parse_error(s, strlen(s), e);
}

static void test_error_ec2(void **state)
{
        /* EC2's own shape, as in the API reference's "Error response" example. */
        static const char body[] =
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                "<Response><Errors><Error><Code>InvalidInstanceID.NotFound</Code>"
                "<Message>The instance ID 'i-1a2b3c4d' does not exist</Message></Error></Errors>"
                "<RequestID>ea966190-f9aa-478e-9ede-example</RequestID></Response>";
        struct aws_error e = {};

        assert_int_equal(parse_error_str(body, &e), 0);
        assert_string_equal(e.code, "InvalidInstanceID.NotFound");
        assert_string_equal(e.message, "The instance ID 'i-1a2b3c4d' does not exist");
        assert_string_equal(e.request_id, "ea966190-f9aa-478e-9ede-example");
        assert_int_equal(e.http_status, 0);
        aws_error_done(&e);
        assert_null(e.code);
}

static void test_error_moto_shapes(void **state)
{
        /* moto: the EC2 namespace on <Response>, and an empty <Message/>. */
        static const char ns[] = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
                                 "<Response " NS "><Errors><Error><Code>InvalidSnapshot.NotFound"
                                 "</Code><Message/></Error></Errors><RequestID>request-id"
                                 "</RequestID></Response>";
        /* moto's IAM layer (auth failures): <ErrorResponse>, no request id. */
        static const char auth[] = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<ErrorResponse>"
                                   "<Errors><Error><Code>AuthFailure</Code><Message>AWS was not "
                                   "able to validate the provided access credentials</Message>"
                                   "<Type>Sender</Type></Error></Errors></ErrorResponse>";
        /* The Query protocol's generic shape, without <Errors>. */
        static const char generic[] = "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling"
                                      "</Code><Message>Rate exceeded</Message></Error>"
                                      "<RequestId>abc</RequestId></ErrorResponse>";
        struct aws_error e = {};

        assert_int_equal(parse_error_str(ns, &e), 0);
        assert_string_equal(e.code, "InvalidSnapshot.NotFound");
        assert_string_equal(e.message, "");
        assert_string_equal(e.request_id, "request-id");
        /* A second parse replaces what the first left. */
        assert_int_equal(parse_error_str(auth, &e), 0);
        assert_string_equal(e.code, "AuthFailure");
        assert_null(e.request_id);
        assert_int_equal(parse_error_str(generic, &e), 0);
        assert_string_equal(e.code, "Throttling");
        assert_string_equal(e.request_id, "abc");
        aws_error_done(&e);
}

static void test_error_malformed(void **state)
{
        static const char *const bad[] = {
                "",
                "not xml at all",
                "<html><body>502 Bad Gateway</body></html>",
                "<Response><Errors><Error><Message>no code</Message></Error></Errors></Response>",
                "<Response><Errors><Error><Code></Code></Error></Errors></Response>",
                "<Response><Errors></Errors></Response>",
                "<Response><Errors><Error><Code>X</Code></Error></Errors>", /* truncated */
                "<DescribeImagesResponse><imagesSet/></DescribeImagesResponse>",
        };
        struct aws_error e = {.http_status = 7};

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_int_equal(parse_error_str(bad[i], &e), -EBADMSG);
        /* Out-parameters are only written on success. */
        assert_int_equal(e.http_status, 7);
        assert_null(e.code);
}

/* DescribeInstances as moto answers it, trimmed of the network interface details. */
static const char describe_instances[] =
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
        "<DescribeInstancesResponse " NS "><reservationSet><item>"
        "<reservationId>r-89b44bdb433d5ce4e</reservationId><ownerId>123456789012</ownerId>"
        "<groupSet/><instancesSet><item><architecture>x86_64</architecture>"
        "<blockDeviceMapping><item><deviceName>/dev/xvda</deviceName><ebs>"
        "<attachTime>2026-11-26T15:03:56.000Z</attachTime>"
        "<deleteOnTermination>true</deleteOnTermination><status>attached</status>"
        "<volumeId>vol-5becbe795fca0fa96</volumeId></ebs></item>"
        "<item><deviceName>/dev/sdb</deviceName><ebs><status>attached</status>"
        "<volumeId>vol-0123456789abcdef0</volumeId></ebs></item>"
        "<item><deviceName>/dev/sdc</deviceName></item></blockDeviceMapping>"
        "<rootDeviceName>/dev/xvda</rootDeviceName><rootDeviceType>ebs</rootDeviceType>"
        "<stateReason><code/><message/></stateReason><imageId>ami-03cf127a</imageId>"
        "<instanceId>i-30ddc8de21cdcc1dd</instanceId>"
        "<instanceState><code>16</code><name>running</name></instanceState>"
        "<tagSet><item><key>Name</key><value>web</value></item></tagSet>"
        "</item></instancesSet></item></reservationSet><requestId>r1</requestId>"
        "</DescribeInstancesResponse>";

static void test_instance(void **state)
{
        struct ec2_instance in = {};

        assert_int_equal(ec2_parse_instance(describe_instances, strlen(describe_instances), &in),
                         0);
        assert_string_equal(in.instance_id, "i-30ddc8de21cdcc1dd");
        assert_string_equal(in.state, "running");
        assert_string_equal(in.root_device_name, "/dev/xvda");
        assert_string_equal(in.root_device_type, "ebs");
        assert_string_equal(in.image_id, "ami-03cf127a");
        assert_string_equal(in.architecture, "x86_64");
        assert_int_equal(in.n_devices, 3);
        assert_string_equal(in.devices[0].device_name, "/dev/xvda");
        assert_string_equal(in.devices[0].volume_id, "vol-5becbe795fca0fa96");
        assert_string_equal(in.devices[1].volume_id, "vol-0123456789abcdef0");
        assert_string_equal(in.devices[2].device_name, "/dev/sdc");
        assert_null(in.devices[2].volume_id);
        ec2_instance_done(&in);
}

static void test_instance_edge(void **state)
{
        static const char empty[] = "<DescribeInstancesResponse " NS "><reservationSet/>"
                                    "<requestId>x</requestId></DescribeInstancesResponse>";
        static const char no_id[] = "<DescribeInstancesResponse><reservationSet><item>"
                                    "<instancesSet><item><imageId>ami-1</imageId></item>"
                                    "</instancesSet></item></reservationSet>"
                                    "</DescribeInstancesResponse>";
        static const char wrong_root[] = "<DescribeImagesResponse><reservationSet/>"
                                         "</DescribeImagesResponse>";
        static const char no_set[] = "<DescribeInstancesResponse/>";
        struct ec2_instance in = {.instance_id = (char *)"untouched"};

        assert_int_equal(ec2_parse_instance(empty, strlen(empty), &in), -ENOENT);
        assert_int_equal(ec2_parse_instance(no_id, strlen(no_id), &in), -EBADMSG);
        assert_int_equal(ec2_parse_instance(wrong_root, strlen(wrong_root), &in), -EBADMSG);
        assert_int_equal(ec2_parse_instance(no_set, strlen(no_set), &in), -EBADMSG);
        assert_string_equal(in.instance_id, "untouched");
}

/* DescribeImages as moto answers it for an image made by CreateImage, plus a pending one. */
static const char describe_images[] =
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
        "<DescribeImagesResponse " NS "><imagesSet><item><blockDeviceMapping><item><ebs>"
        "<deleteOnTermination>false</deleteOnTermination>"
        "<snapshotId>snap-3e12c57ab6510273e</snapshotId><volumeSize>15</volumeSize>"
        "<volumeType>standard</volumeType></ebs><deviceName>/dev/sda1</deviceName></item>"
        "<item><deviceName>/dev/sdb</deviceName><virtualName>ephemeral0</virtualName></item>"
        "<item><deviceName>/dev/sdc</deviceName><ebs><snapshotId>snap-2</snapshotId></ebs></item>"
        "</blockDeviceMapping><description>d</description><name>ec2-imaged-test</name>"
        "<rootDeviceName>/dev/sda1</rootDeviceName><tagSet><item><key>k1</key><value>v1</value>"
        "</item><item><key>empty</key><value/></item><item><key>novalue</key></item>"
        "<item><key>amp</key><value>a &amp; b &lt;c&gt; &#233;</value></item></tagSet>"
        "<imageId>ami-f0f10ab228686399d</imageId><imageState>available</imageState>"
        "<imageOwnerId>123456789012</imageOwnerId>"
        "<creationDate>2026-11-26T15:03:56.000Z</creationDate></item>"
        "<item><imageId>ami-2</imageId><name>second</name><imageState>failed</imageState>"
        "<stateReason><code>Client.InternalError</code><message>Client.InternalError: Client "
        "error on launch</message></stateReason><blockDeviceMapping/><tagSet/></item>"
        "</imagesSet><requestId>request-id</requestId></DescribeImagesResponse>";

static void test_images(void **state)
{
        struct ec2_image *ims = NULL;
        size_t n = 0;

        assert_int_equal(ec2_parse_images(describe_images, strlen(describe_images), &ims, &n), 0);
        assert_int_equal(n, 2);
        assert_string_equal(ims[0].image_id, "ami-f0f10ab228686399d");
        assert_string_equal(ims[0].name, "ec2-imaged-test");
        assert_string_equal(ims[0].owner_id, "123456789012");
        assert_null(ims[1].owner_id);
        assert_string_equal(ims[0].state, "available");
        assert_null(ims[0].state_reason);
        assert_string_equal(ims[0].creation_date, "2026-11-26T15:03:56.000Z");
        assert_string_equal(ims[0].snapshot_ids[0], "snap-3e12c57ab6510273e");
        assert_string_equal(ims[0].snapshot_ids[1], "snap-2");
        assert_null(ims[0].snapshot_ids[2]);
        assert_int_equal(ims[0].n_tags, 4);
        assert_string_equal(ims[0].tags[0].key, "k1");
        assert_string_equal(ims[0].tags[0].value, "v1");
        assert_string_equal(ims[0].tags[1].value, "");
        assert_string_equal(ims[0].tags[2].value, "");
        assert_string_equal(ims[0].tags[3].value, "a & b <c> \xc3\xa9");
        assert_string_equal(ims[1].state, "failed");
        assert_string_equal(ims[1].state_reason, "Client.InternalError: Client error on launch");
        assert_null(ims[1].snapshot_ids[0]);
        assert_int_equal(ims[1].n_tags, 0);
        assert_null(ims[1].creation_date);
        ec2_images_free(ims, n);
}

static void test_images_empty(void **state)
{
        static const char empty[] = "<DescribeImagesResponse " NS "><imagesSet/><requestId>x"
                                    "</requestId></DescribeImagesResponse>";
        static const char no_set[] = "<DescribeImagesResponse " NS "><requestId>x</requestId>"
                                     "</DescribeImagesResponse>";
        static const char no_id[] = "<DescribeImagesResponse><imagesSet><item><name>x</name>"
                                    "</item></imagesSet></DescribeImagesResponse>";
        static const char no_key[] = "<DescribeImagesResponse><imagesSet><item><imageId>a"
                                     "</imageId><tagSet><item><value>v</value></item></tagSet>"
                                     "</item></imagesSet></DescribeImagesResponse>";
        struct ec2_image *ims = (struct ec2_image *)&ims;
        size_t n = 99;

        assert_int_equal(ec2_parse_images(empty, strlen(empty), &ims, &n), 0);
        assert_int_equal(n, 0);
        assert_null(ims);
        assert_int_equal(ec2_parse_images(no_set, strlen(no_set), &ims, &n), 0);
        assert_int_equal(n, 0);
        n = 99;
        assert_int_equal(ec2_parse_images(no_id, strlen(no_id), &ims, &n), -EBADMSG);
        assert_int_equal(ec2_parse_images(no_key, strlen(no_key), &ims, &n), -EBADMSG);
        assert_int_equal(n, 99);
}

/*
 * productCodes as the EC2 API reference shapes them: an instance launched from an AWS
 * Marketplace image carries its codes, and so does the image (DevPay is the old other type).
 */
static void test_product_codes(void **state)
{
        static const char inst[] =
                "<DescribeInstancesResponse " NS "><reservationSet><item><instancesSet><item>"
                "<instanceId>i-1</instanceId><imageId>ami-1</imageId><productCodes><item>"
                "<productCode>8fsgd7m3k8bgn1c6rvw1ymq4b</productCode><type>marketplace</type>"
                "</item></productCodes></item></instancesSet></item></reservationSet>"
                "</DescribeInstancesResponse>";
        static const char imgs[] =
                "<DescribeImagesResponse " NS "><imagesSet><item><imageId>ami-1</imageId>"
                "<productCodes><item><productCode>devpay1</productCode><type>devpay</type></item>"
                "<item><productCode>mp2</productCode><type>marketplace</type></item>"
                "<item><productCode>untyped</productCode></item></productCodes></item>"
                "<item><imageId>ami-2</imageId><productCodes/></item></imagesSet>"
                "</DescribeImagesResponse>";
        static const char *const bad[] = {
                "<DescribeImagesResponse><imagesSet><item><imageId>a</imageId><productCodes>"
                "<item><type>marketplace</type></item></productCodes></item></imagesSet>"
                "</DescribeImagesResponse>",
                "<DescribeImagesResponse><imagesSet><item><imageId>a</imageId><productCodes>"
                "<item><productCode/><type>marketplace</type></item></productCodes></item>"
                "</imagesSet></DescribeImagesResponse>",
        };
        struct ec2_instance in = {};
        struct ec2_image *ims = NULL;
        size_t n = 0;

        assert_int_equal(ec2_parse_instance(inst, strlen(inst), &in), 0);
        assert_int_equal(in.n_product_codes, 1);
        assert_string_equal(in.product_codes[0].code, "8fsgd7m3k8bgn1c6rvw1ymq4b");
        assert_ptr_equal(ec2_marketplace_code(in.product_codes, in.n_product_codes),
                         &in.product_codes[0]);
        ec2_instance_done(&in);
        /* The instance of test_instance has none. */
        assert_int_equal(ec2_parse_instance(describe_instances, strlen(describe_instances), &in),
                         0);
        assert_int_equal(in.n_product_codes, 0);
        assert_null(ec2_marketplace_code(in.product_codes, in.n_product_codes));
        ec2_instance_done(&in);

        assert_int_equal(ec2_parse_images(imgs, strlen(imgs), &ims, &n), 0);
        assert_int_equal(n, 2);
        assert_int_equal(ims[0].n_product_codes, 3);
        assert_string_equal(ims[0].product_codes[0].type, "devpay");
        assert_null(ims[0].product_codes[2].type);
        assert_string_equal(ec2_marketplace_code(ims[0].product_codes, 3)->code, "mp2");
        assert_int_equal(ims[1].n_product_codes, 0);
        assert_null(ec2_marketplace_code(ims[1].product_codes, ims[1].n_product_codes));
        ec2_images_free(ims, n);
        ims = NULL;
        n = 0;
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_int_equal(ec2_parse_images(bad[i], strlen(bad[i]), &ims, &n), -EBADMSG);
        assert_null(ims);
}

static void test_create_image(void **state)
{
        static const char ok[] =
                "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<CreateImageResponse " NS
                "><imageId>ami-f0f10ab228686399d</imageId><requestId>"
                "request-id</requestId></CreateImageResponse>";
        static const char aws[] =
                "<CreateImageResponse xmlns=\"http://ec2.amazonaws.com/doc/"
                "2016-11-15/\">\n   <requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE"
                "</requestId>\n   <imageId>ami-1234567890abcdef0</imageId>\n"
                "</CreateImageResponse>";
        static const char *const bad[] = {
                "<CreateImageResponse><requestId>x</requestId></CreateImageResponse>",
                "<CreateImageResponse><imageId></imageId></CreateImageResponse>",
                "<CreateImagesResponse><imageId>ami-1</imageId></CreateImagesResponse>",
                "<CreateImageResponse><imageId>ami-1</imageId>",
        };
        char *id = NULL;

        assert_int_equal(ec2_parse_create_image(ok, strlen(ok), &id), 0);
        assert_string_equal(id, "ami-f0f10ab228686399d");
        free(id);
        assert_int_equal(ec2_parse_create_image(aws, strlen(aws), &id), 0);
        assert_string_equal(id, "ami-1234567890abcdef0");
        free(id);
        id = NULL;
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_int_equal(ec2_parse_create_image(bad[i], strlen(bad[i]), &id), -EBADMSG);
        assert_null(id);
}

static void test_hostile_xml(void **state)
{
        /* Entity expansion ("billion laughs") and external entities: refused, never expanded. */
        static const char laughs[] =
                "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY a \"aaaaaaaaaa\">"
                "<!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;"
                "&b;&b;&b;\">]><Response><Errors><Error><Code>&c;</Code></Error></Errors>"
                "</Response>";
        static const char xxe[] = "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x SYSTEM "
                                  "\"file:///etc/passwd\">]><CreateImageResponse><imageId>&x;"
                                  "</imageId></CreateImageResponse>";
        static const char net[] = "<?xml version=\"1.0\"?><!DOCTYPE r SYSTEM "
                                  "\"http://127.0.0.1:9/x.dtd\"><Response/>";
        struct aws_error e = {};
        char *id = NULL;

        assert_int_equal(parse_error_str(laughs, &e), -EBADMSG);
        assert_int_equal(ec2_parse_create_image(xxe, strlen(xxe), &id), -EBADMSG);
        assert_int_equal(parse_error_str(net, &e), -EBADMSG);
        assert_null(e.code);
        assert_null(id);
}

static void test_deep_and_big(void **state)
{
        struct buf b = {.max = XML_MAX_BODY + 16};
        struct ec2_image *ims = NULL;
        size_t n = 0;
        char *s;
        size_t len;

        /* Nesting far past libxml2's ceiling of 256 levels. */
        assert_int_equal(buf_printf(&b, "<DescribeImagesResponse><imagesSet>"), 0);
        for (int i = 0; i < 5000; i++)
                assert_int_equal(buf_append(&b, "<item>", 6), 0);
        s = buf_steal(&b, &len);
        assert_int_equal(ec2_parse_images(s, len, &ims, &n), -EBADMSG);
        free(s);

        /* A body over the ceiling is refused before libxml2 sees it. */
        s = malloc(XML_MAX_BODY + 1);
        assert_non_null(s);
        memset(s, ' ', XML_MAX_BODY + 1);
        memcpy(s, "<Response>", 10);
        assert_int_equal(ec2_parse_images(s, XML_MAX_BODY + 1, &ims, &n), -EFBIG);
        free(s);

        /* Many images are fine as long as the body is within bounds. */
        b = (struct buf){.max = XML_MAX_BODY};
        assert_int_equal(buf_printf(&b, "<DescribeImagesResponse><imagesSet>"), 0);
        for (int i = 0; i < 2000; i++)
                assert_int_equal(buf_printf(&b,
                                            "<item><imageId>ami-%d</imageId><tagSet><item><key>k"
                                            "</key><value>v</value></item></tagSet></item>",
                                            i),
                                 0);
        assert_int_equal(buf_printf(&b, "</imagesSet></DescribeImagesResponse>"), 0);
        s = buf_steal(&b, &len);
        assert_int_equal(ec2_parse_images(s, len, &ims, &n), 0);
        assert_int_equal(n, 2000);
        assert_string_equal(ims[1999].image_id, "ami-1999");
        ec2_images_free(ims, n);
        free(s);
}

static void test_transient(void **state)
{
        static const struct {
                long status;
                const char *code;
                bool transient;
        } table[] = {
                {503, "RequestLimitExceeded", true},
                {400, "RequestLimitExceeded", true},
                {400, "Throttling", true},
                {400, "ThrottlingException", true},
                {400, "RequestThrottled", true},
                {503, "SlowDown", true},
                {400, "PriorRequestNotComplete", true},
                {500, "InternalError", true},
                {500, "InternalFailure", true},
                {503, "ServiceUnavailable", true},
                {503, "Unavailable", true},
                {500, NULL, true},
                {502, NULL, true},
                {503, NULL, true},
                {504, NULL, true},
                {400, "InvalidAMIID.NotFound", false},
                {400, "InvalidParameterValue", false},
                {401, "AuthFailure", false},
                {403, "UnauthorizedOperation", false},
                {412, "DryRunOperation", false},
                {400, "IdempotentParameterMismatch", false},
                {501, NULL, false},
                {404, NULL, false},
                {200, NULL, false},
                {0, NULL, false},
                {400, "throttling", false}, /* codes are case-sensitive */
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (aws_error_is_transient(table[i].status, table[i].code) != table[i].transient)
                        fail_msg("%ld %s", table[i].status, strna(table[i].code));
}

static void test_params(void **state)
{
        struct ec2_params *p = NULL;
        char *body = NULL;
        size_t len = 0;

        assert_int_equal(ec2_params_new(&p), 0);
        assert_int_equal(ec2_params_add(p, "Tag.1.Value", "a b/c=d&e+f~g_h.i-j"), 0);
        assert_int_equal(ec2_params_add(p, "ResourceId.1", "ami-1"), 0);
        assert_int_equal(ec2_params_addf(p, "k\xc3\xa9y", "Tag.%d.Key", 1), 0);
        assert_int_equal(ec2_params_add(p, "DryRun", "true"), 0);
        assert_int_equal(ec2_params_add(p, "Empty", ""), 0);
        /* Ours to set, duplicates, and missing values are refused. */
        assert_int_equal(ec2_params_add(p, "Action", "x"), -EINVAL);
        assert_int_equal(ec2_params_add(p, "Version", "x"), -EINVAL);
        assert_int_equal(ec2_params_add(p, "DryRun", "false"), -EEXIST);
        assert_int_equal(ec2_params_add(p, "X", NULL), -EINVAL);
        assert_int_equal(ec2_params_add(p, "", "x"), -EINVAL);

        assert_int_equal(ec2_params_encode(p, "CreateTags", &body, &len), 0);
        assert_string_equal(body, "Action=CreateTags&Version=2016-11-15&DryRun=true&Empty=&"
                                  "ResourceId.1=ami-1&Tag.1.Key=k%C3%A9y&"
                                  "Tag.1.Value=a+b%2Fc%3Dd%26e%2Bf~g_h.i-j");
        assert_int_equal(len, strlen(body));
        free(body);

        assert_int_equal(ec2_params_encode(NULL, "DescribeImages", &body, &len), 0);
        assert_string_equal(body, "Action=DescribeImages&Version=2016-11-15");
        free(body);
        body = NULL;
        assert_int_equal(ec2_params_encode(p, "Bad&Action", &body, &len), -EINVAL);
        assert_int_equal(ec2_params_encode(p, "", &body, &len), -EINVAL);
        assert_null(body);
        ec2_params_free(p);
}

static void test_params_sort_numeric(void **state)
{
        /* Byte order, not numeric: what matters is that the order is stable and documented. */
        struct ec2_params *p = NULL;
        char *body = NULL;

        assert_int_equal(ec2_params_new(&p), 0);
        for (int i = 12; i >= 1; i--)
                assert_int_equal(ec2_params_addf(p, "r", "ResourceId.%d", i), 0);
        assert_int_equal(ec2_params_encode(p, "CreateTags", &body, NULL), 0);
        assert_non_null(strstr(body, "ResourceId.1=r&ResourceId.10=r&ResourceId.11=r&"
                                     "ResourceId.12=r&ResourceId.2=r"));
        free(body);
        ec2_params_free(p);
}

/* A call's parameters in one list: a NULL value leaves its name out; set replaces a value. */
static void test_params_build(void **state)
{
        struct ec2_params *p = NULL;
        char *body = NULL;

        assert_int_equal(ec2_params_build(&p, "ImageId", "ami-1", "Description", NULL,
                                          "DeleteAssociatedSnapshots", "true", NULL),
                         0);
        assert_int_equal(ec2_params_set(p, "NextToken", "a"), 0);
        assert_int_equal(ec2_params_set(p, "NextToken", "b c"), 0);
        assert_int_equal(ec2_params_encode(p, "DeregisterImage", &body, NULL), 0);
        assert_string_equal(body, "Action=DeregisterImage&Version=2016-11-15&"
                                  "DeleteAssociatedSnapshots=true&ImageId=ami-1&NextToken=b+c");
        free(body);
        ec2_params_free(p);

        /* A refused parameter fails the whole list and hands nothing out. */
        p = NULL;
        assert_int_equal(ec2_params_build(&p, "ImageId", "ami-1", "Action", "x", NULL), -EINVAL);
        assert_null(p);
        assert_int_equal(ec2_params_build(&p, NULL), 0);
        assert_int_equal(ec2_params_encode(p, "DescribeLaunchTemplates", &body, NULL), 0);
        assert_string_equal(body, "Action=DescribeLaunchTemplates&Version=2016-11-15");
        free(body);
        ec2_params_free(p);
}

/* What a message says of a failed call: AWS's code when it answered with one, else the errno. */
static void test_error_describe(void **state)
{
        struct aws_error e = {.http_status = 400};

        assert_string_equal(aws_error_describe(&e, -ETIMEDOUT), strerror(ETIMEDOUT));
        assert_string_equal(aws_error_describe(NULL, -ENOKEY), strerror(ENOKEY));
        e.code = (char *)"InvalidAMIID.NotFound";
        assert_string_equal(aws_error_describe(&e, -EREMOTEIO), "InvalidAMIID.NotFound");

        /* The code tables beside the transient one. */
        assert_true(aws_error_is_throttling("RequestLimitExceeded"));
        assert_true(aws_error_is_throttling("SlowDown"));
        assert_false(aws_error_is_throttling("InternalError"));
        assert_false(aws_error_is_throttling(NULL));
        assert_true(aws_error_is_clock("RequestTimeTooSkewed"));
        assert_true(aws_error_is_clock("InvalidSignatureException"));
        assert_false(aws_error_is_clock("ExpiredToken"));
        assert_true(aws_error_is_stale_credentials("ExpiredToken"));
        assert_true(aws_error_is_stale_credentials("AuthFailure"));
        assert_false(aws_error_is_stale_credentials("RequestExpired"));
}

static void endpoint_is(const char *cfg_url, const char *env_ec2, const char *env_all,
                        const char *expect)
{
        struct ec2_client_config cfg = {.region = "eu-central-1", .endpoint_url = cfg_url};
        struct ec2_client *c = NULL;

        if (env_ec2)
                setenv("AWS_ENDPOINT_URL_EC2", env_ec2, 1);
        else
                unsetenv("AWS_ENDPOINT_URL_EC2");
        if (env_all)
                setenv("AWS_ENDPOINT_URL", env_all, 1);
        else
                unsetenv("AWS_ENDPOINT_URL");
        assert_int_equal(ec2_client_new(&cfg, NULL, &c), 0);
        assert_string_equal(ec2_client_endpoint(c), expect);
        assert_int_equal(ec2_client_last_attempts(c), 0);
        ec2_client_free(c);
}

static void test_endpoint(void **state)
{
        struct ec2_client_config cfg = {.region = "eu-central-1"};
        struct ec2_client *c = NULL;

        endpoint_is(NULL, NULL, NULL, "https://ec2.eu-central-1.amazonaws.com");
        endpoint_is("http://127.0.0.1:5000", NULL, NULL, "http://127.0.0.1:5000");
        endpoint_is("http://127.0.0.1:5000", NULL, "http://127.0.0.1:6000",
                    "http://127.0.0.1:6000");
        endpoint_is("http://127.0.0.1:5000", "http://127.0.0.1:7000", "http://127.0.0.1:6000",
                    "http://127.0.0.1:7000");
        /* Empty variables count as unset. */
        endpoint_is("http://127.0.0.1:5000", "", "", "http://127.0.0.1:5000");
        unsetenv("AWS_ENDPOINT_URL_EC2");
        unsetenv("AWS_ENDPOINT_URL");

        /* What could not be signed or sent is refused when the client is made. */
        cfg.endpoint_url = "ftp://127.0.0.1/";
        assert_int_equal(ec2_client_new(&cfg, NULL, &c), -EINVAL);
        cfg.endpoint_url = "http://127.0.0.1:5000/?x=1";
        assert_int_equal(ec2_client_new(&cfg, NULL, &c), -EINVAL);
        cfg.endpoint_url = "http://user:pw@127.0.0.1:5000/";
        assert_int_equal(ec2_client_new(&cfg, NULL, &c), -EINVAL);
        cfg.endpoint_url = "http://127.0.0.1:5000";
        cfg.region = "eu-central-1.evil.example";
        assert_int_equal(ec2_client_new(&cfg, NULL, &c), -EINVAL);
        cfg.region = NULL;
        assert_int_equal(ec2_client_new(&cfg, NULL, &c), -EINVAL);
        assert_null(c);
}

static void test_call_without_credentials(void **state)
{
        /* No provider: refused before anything is sent (the endpoint is a closed port anyway). */
        struct ec2_client_config cfg = {.region = "us-east-1",
                                        .endpoint_url = "http://127.0.0.1:9"};
        struct ec2_client *c = NULL;
        struct aws_error e = {};
        struct ec2_image *ims = NULL;
        size_t n = 0;

        unsetenv("AWS_ENDPOINT_URL_EC2");
        unsetenv("AWS_ENDPOINT_URL");
        assert_int_equal(ec2_client_new(&cfg, NULL, &c), 0);
        assert_int_equal(ec2_describe_own_images(c, "name", "x", NULL, &ims, &n, &e), -ENOKEY);
        assert_int_equal(ec2_client_last_attempts(c), 1);
        assert_null(e.code);
        assert_int_equal(e.http_status, 0);
        ec2_client_free(c);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_error_ec2),
                cmocka_unit_test(test_error_moto_shapes),
                cmocka_unit_test(test_error_malformed),
                cmocka_unit_test(test_instance),
                cmocka_unit_test(test_instance_edge),
                cmocka_unit_test(test_images),
                cmocka_unit_test(test_images_empty),
                cmocka_unit_test(test_product_codes),
                cmocka_unit_test(test_create_image),
                cmocka_unit_test(test_hostile_xml),
                cmocka_unit_test(test_deep_and_big),
                cmocka_unit_test(test_transient),
                cmocka_unit_test(test_params),
                cmocka_unit_test(test_params_sort_numeric),
                cmocka_unit_test(test_params_build),
                cmocka_unit_test(test_error_describe),
                cmocka_unit_test(test_endpoint),
                cmocka_unit_test(test_call_without_credentials),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
