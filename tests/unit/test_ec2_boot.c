/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The parsers of the boot check's answers (ec2_boot.h), on answers shaped after the EC2 API
 * reference and moto's: RunInstances, DescribeInstances by tag, DescribeTags,
 * DescribeInstanceStatus and GetConsoleOutput. And the RunInstances request itself, as a loopback
 * peer (page_peer.h) receives it: the parameters moto does not look at.
 */
#include "page_peer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "aws/ec2.h"
#include "aws/ec2_boot.h"
#include "util/macro.h"
#include "util/str.h"

#define NS "xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\""

static void test_run_instance(void **state)
{
        static const char ok[] = "<RunInstancesResponse " NS "><reservationId>r-1</reservationId>"
                                 "<instancesSet><item><instanceId>i-0abc</instanceId>"
                                 "<instanceState><name>pending</name></instanceState></item>"
                                 "</instancesSet></RunInstancesResponse>";
        static const char none[] = "<RunInstancesResponse " NS "><instancesSet/>"
                                   "</RunInstancesResponse>";
        static const char other[] = "<DescribeInstancesResponse " NS "><instancesSet><item>"
                                    "<instanceId>i-0abc</instanceId></item></instancesSet>"
                                    "</DescribeInstancesResponse>";
        char *id = NULL;

        assert_int_equal(ec2_parse_run_instance(ok, strlen(ok), &id), 0);
        assert_string_equal(id, "i-0abc");
        free(id);
        id = NULL;
        assert_int_equal(ec2_parse_run_instance(none, strlen(none), &id), -EBADMSG);
        assert_int_equal(ec2_parse_run_instance(other, strlen(other), &id), -EBADMSG);
        assert_null(id);
}

static void test_instance_ids(void **state)
{
        static const char two[] = "<DescribeInstancesResponse " NS "><reservationSet>"
                                  "<item><instancesSet><item><instanceId>i-1</instanceId></item></"
                                  "instancesSet></item>"
                                  "<item><instancesSet><item><instanceId>i-2</instanceId></item></"
                                  "instancesSet></item>"
                                  "</reservationSet></DescribeInstancesResponse>";
        static const char empty[] = "<DescribeInstancesResponse " NS "><reservationSet/>"
                                    "</DescribeInstancesResponse>";
        static const char noid[] =
                "<DescribeInstancesResponse " NS "><reservationSet><item><instancesSet><item>"
                "<imageId>ami-1</imageId></item></instancesSet></item></reservationSet>"
                "</DescribeInstancesResponse>";
        static const char one_res[] =
                "<DescribeInstancesResponse " NS "><reservationSet><item><instancesSet>"
                "<item><instanceId>i-1</instanceId></item><item><instanceId>i-2</instanceId>"
                "</item></instancesSet></item></reservationSet></DescribeInstancesResponse>";
        static const char noset[] = "<DescribeInstancesResponse " NS "/>";
        char **ids = NULL;

        assert_int_equal(ec2_parse_instance_ids(two, strlen(two), &ids), 0);
        assert_int_equal(strv_length(ids), 2);
        assert_string_equal(ids[1], "i-2");
        ids = strv_free(ids);
        assert_int_equal(ec2_parse_instance_ids(empty, strlen(empty), &ids), 0);
        assert_null(ids);
        assert_int_equal(ec2_parse_instance_ids(noid, strlen(noid), &ids), -EBADMSG);
        assert_int_equal(ec2_parse_instance_ids(one_res, strlen(one_res), &ids), 0);
        assert_int_equal(strv_length(ids), 2);
        assert_string_equal(ids[0], "i-1");
        assert_string_equal(ids[1], "i-2");
        ids = strv_free(ids);
        /* No reservationSet at all is not "no instance": a check would launch a second one. */
        assert_int_equal(ec2_parse_instance_ids(noset, strlen(noset), &ids), -EBADMSG);
        assert_null(ids);
}

static void test_tag_value(void **state)
{
        static const char tags[] =
                "<DescribeTagsResponse " NS "><tagSet>"
                "<item><resourceId>i-1</resourceId><key>other</key><value>x</value></item>"
                "<item><resourceId>i-1</resourceId><key>ec2-imaged:boot-check-result</key>"
                "<value>failed:sshd.service failed</value></item>"
                "<item><key>empty</key><value/></item>"
                "<item><key>novalue</key></item>"
                "</tagSet></DescribeTagsResponse>";
        static const char none[] = "<DescribeTagsResponse " NS "><tagSet/></DescribeTagsResponse>";
        static const char bad[] = "<DescribeTagsResponse " NS "/>";
        char *v = NULL;

        assert_int_equal(
                ec2_parse_tag_value(tags, strlen(tags), "ec2-imaged:boot-check-result", &v), 0);
        assert_string_equal(v, "failed:sshd.service failed");
        free(v);
        assert_int_equal(ec2_parse_tag_value(tags, strlen(tags), "empty", &v), 0);
        assert_string_equal(v, "");
        free(v);
        assert_int_equal(ec2_parse_tag_value(tags, strlen(tags), "novalue", &v), 0);
        assert_string_equal(v, "");
        free(v);
        assert_int_equal(ec2_parse_tag_value(none, strlen(none), "other", &v), 0);
        assert_null(v);
        assert_int_equal(ec2_parse_tag_value(bad, strlen(bad), "other", &v), -EBADMSG);
}

static void test_instance_status(void **state)
{
        static const char st[] =
                "<DescribeInstanceStatusResponse " NS "><instanceStatusSet><item>"
                "<instanceId>i-1</instanceId><instanceState><code>16</code><name>running</name>"
                "</instanceState><systemStatus><status>ok</status></systemStatus>"
                "<instanceStatus><status>impaired</status></instanceStatus></item>"
                "</instanceStatusSet></DescribeInstanceStatusResponse>";
        static const char none[] = "<DescribeInstanceStatusResponse " NS "><instanceStatusSet/>"
                                   "</DescribeInstanceStatusResponse>";
        static const char noset[] = "<DescribeInstanceStatusResponse " NS "/>";
        struct ec2_instance_status s = {};

        assert_int_equal(ec2_parse_instance_status(st, strlen(st), &s), 0);
        assert_string_equal(s.state, "running");
        assert_string_equal(s.system_status, "ok");
        assert_string_equal(s.instance_status, "impaired");
        ec2_instance_status_done(&s);
        assert_int_equal(ec2_parse_instance_status(none, strlen(none), &s), -ENOENT);
        /* Without its set the answer is broken, not "no status yet". */
        assert_int_equal(ec2_parse_instance_status(noset, strlen(noset), &s), -EBADMSG);
}

/* <output>b64</output>: code, and the text it decodes to (NULL: none). */
static void expect_console(const char *b64, int code, const char *want)
{
        _cleanup_free_ char *body = strprintf("<GetConsoleOutputResponse " NS "><instanceId>i-1"
                                              "</instanceId><output>%s</output>"
                                              "</GetConsoleOutputResponse>",
                                              b64);
        _cleanup_free_ char *text = NULL;
        size_t len = 7;

        assert_non_null(body);
        assert_int_equal(ec2_parse_console_output(body, strlen(body), &text, &len), code);
        if (code < 0)
                return;
        if (!want) {
                assert_null(text);
                assert_int_equal(len, 0);
                return;
        }
        assert_non_null(text);
        assert_int_equal(len, strlen(want));
        assert_string_equal(text, want);
}

static void test_console_output(void **state)
{
        /* "Kernel panic\n" in base64, wrapped as EC2 may wrap it. */
        static const char out[] = "<GetConsoleOutputResponse " NS "><instanceId>i-1</instanceId>"
                                  "<output>S2VybmVs\nIHBhbmljCg==</output>"
                                  "</GetConsoleOutputResponse>";
        static const char empty[] = "<GetConsoleOutputResponse " NS "><instanceId>i-1</instanceId>"
                                    "</GetConsoleOutputResponse>";
        static const char bad[] = "<GetConsoleOutputResponse " NS "><output>S2V*</output>"
                                  "</GetConsoleOutputResponse>";
        _cleanup_free_ char *big = NULL;
        char *text = NULL;
        size_t len = 0;

        assert_int_equal(ec2_parse_console_output(out, strlen(out), &text, &len), 0);
        assert_int_equal(len, 13);
        assert_string_equal(text, "Kernel panic\n");
        free(text);
        assert_int_equal(ec2_parse_console_output(empty, strlen(empty), &text, &len), 0);
        assert_null(text);
        assert_int_equal(ec2_parse_console_output(bad, strlen(bad), &text, &len), -EBADMSG);
        /* One '=' of padding: "Kernel panic!\n", 14 bytes. */
        expect_console("S2VybmVsIHBhbmljIQo=", 0, "Kernel panic!\n");
        /* No padding (and a space inside): "Kernel panic", 12 bytes. */
        expect_console("S2VybmVs IHBhbmlj", 0, "Kernel panic");
        expect_console("", 0, NULL);
        /* A length that is no multiple of 4, and more than the 64 KiB EC2 keeps. */
        expect_console("S2VybmVsIHBhbmljIQo", -EBADMSG, NULL);
        big = malloc(128 * 1024 + 5);
        assert_non_null(big);
        memset(big, 'A', 128 * 1024 + 4);
        big[128 * 1024 + 4] = '\0';
        expect_console(big, -EBADMSG, NULL);
}

static char *last_request;

static char *run_answer(struct page_peer *p, const char *request, unsigned page)
{
        (void)p;
        (void)page;
        free(last_request);
        last_request = strdup(request);
        return strprintf("<RunInstancesResponse " NS "><instancesSet><item><instanceId>i-0abc"
                         "</instanceId></item></instancesSet></RunInstancesResponse>");
}

/* RunInstances of a, as the peer received it (its form body), or NULL when nothing was sent. */
static char *run_request(const struct ec2_run_instance_args *a, int code)
{
        struct page_peer p = {.content_type = "text/xml;charset=UTF-8", .answer = run_answer};
        struct creds_provider *creds = NULL;
        struct ec2_client *c = NULL;
        struct aws_error e = {};
        char *id = NULL, *req;

        page_peer_start(&p, 1, "AWS_ENDPOINT_URL_EC2", &creds);
        assert_int_equal(ec2_client_new(&(struct ec2_client_config){.region = "us-east-1",
                                                                    .endpoint_url = p.url},
                                        creds, &c),
                         0);
        assert_int_equal(ec2_run_instance(c, a, &id, &e), code);
        if (code == 0)
                assert_string_equal(id, "i-0abc");
        free(id);
        aws_error_done(&e);
        ec2_client_free(c);
        page_peer_stop(&p, creds);
        req = TAKE_PTR(last_request);
        return req;
}

static void assert_param(const char *req, const char *param)
{
        /* Each parameter stands between '&' or the body's ends. */
        _cleanup_free_ char *mid = strprintf("&%s&", param);
        const char *body = req ? strstr(req, "\r\n\r\n") : NULL;
        _cleanup_free_ char *whole = body ? strprintf("&%s&", body + 4) : NULL;

        if (!whole || !strstr(whole, mid))
                fail_msg("RunInstances lacks %s: %s", param, body ? body + 4 : "(nothing sent)");
}

static void test_run_instance_request(void **state)
{
        const char *const groups[] = {"sg-1", "sg-0ff", NULL};
        const struct ec2_tag tags[] = {{"ec2-imaged:boot-check", "run-1"}};
        struct ec2_run_instance_args a = {
                .image_id = "ami-0abc",
                .instance_type = "t3.micro",
                .subnet_id = "subnet-0abc12",
                .security_group_ids = groups,
                .instance_profile = "golden-check",
                .user_data = "#!/bin/sh\n",
                .client_token = "run-1-boot-check",
                .tags = tags,
                .n_tags = 1,
        };
        _cleanup_free_ char *req = run_request(&a, 0), *arn = NULL, *none = NULL;
        _cleanup_free_ char *ud = malloc(16 * 1024 + 2);

        (void)state;
        assert_param(req, "Action=RunInstances");
        assert_param(req, "ImageId=ami-0abc");
        assert_param(req, "MinCount=1");
        assert_param(req, "MaxCount=1");
        assert_param(req, "SubnetId=subnet-0abc12");
        assert_param(req, "SecurityGroupId.1=sg-1");
        assert_param(req, "SecurityGroupId.2=sg-0ff");
        assert_param(req, "IamInstanceProfile.Name=golden-check");
        assert_param(req, "UserData=IyEvYmluL3NoCg%3D%3D");
        assert_param(req, "ClientToken=run-1-boot-check");
        assert_param(req, "MetadataOptions.HttpEndpoint=enabled");
        assert_param(req, "TagSpecification.1.ResourceType=instance");
        assert_param(req, "TagSpecification.2.ResourceType=volume");
        assert_param(req, "TagSpecification.2.Tag.1.Key=ec2-imaged%3Aboot-check");
        assert_param(req, "TagSpecification.2.Tag.1.Value=run-1");
        assert_null(strstr(req, "IamInstanceProfile.Arn"));

        /* A profile's ARN goes as the ARN; no subnet, group or profile: none sent. */
        a.instance_profile = "arn:aws:iam::123456789012:instance-profile/golden-check";
        arn = run_request(&a, 0);
        assert_param(arn, "IamInstanceProfile.Arn=arn%3Aaws%3Aiam%3A%3A123456789012%3Ainstance-"
                          "profile%2Fgolden-check");
        assert_null(strstr(arn, "IamInstanceProfile.Name"));
        a.instance_profile = a.subnet_id = NULL;
        a.security_group_ids = NULL;
        none = run_request(&a, 0);
        assert_param(none, "ImageId=ami-0abc");
        assert_null(strstr(none, "SubnetId"));
        assert_null(strstr(none, "SecurityGroupId"));
        assert_null(strstr(none, "IamInstanceProfile"));

        /* User data past EC2's 16 KiB is refused before anything is sent. */
        assert_non_null(ud);
        memset(ud, 'x', 16 * 1024 + 1);
        ud[16 * 1024 + 1] = '\0';
        a.user_data = ud;
        assert_null(run_request(&a, -E2BIG));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_run_instance),   cmocka_unit_test(test_instance_ids),
                cmocka_unit_test(test_tag_value),      cmocka_unit_test(test_instance_status),
                cmocka_unit_test(test_console_output), cmocka_unit_test(test_run_instance_request),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
