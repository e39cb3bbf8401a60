/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The parsers of the boot check's answers (ec2_boot.h), on answers shaped after the EC2 API
 * reference and moto's: RunInstances, DescribeInstances by tag, DescribeTags,
 * DescribeInstanceStatus and GetConsoleOutput.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "aws/ec2_boot.h"
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
        char **ids = NULL;

        assert_int_equal(ec2_parse_instance_ids(two, strlen(two), &ids), 0);
        assert_int_equal(strv_length(ids), 2);
        assert_string_equal(ids[1], "i-2");
        ids = strv_free(ids);
        assert_int_equal(ec2_parse_instance_ids(empty, strlen(empty), &ids), 0);
        assert_null(ids);
        assert_int_equal(ec2_parse_instance_ids(noid, strlen(noid), &ids), -EBADMSG);
}

static void test_tag_value(void **state)
{
        static const char tags[] =
                "<DescribeTagsResponse " NS "><tagSet>"
                "<item><resourceId>i-1</resourceId><key>other</key><value>x</value></item>"
                "<item><resourceId>i-1</resourceId><key>ec2-imaged:boot-check-result</key>"
                "<value>failed:sshd.service failed</value></item>"
                "<item><key>empty</key><value/></item>"
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
        struct ec2_instance_status s = {};

        assert_int_equal(ec2_parse_instance_status(st, strlen(st), &s), 0);
        assert_string_equal(s.state, "running");
        assert_string_equal(s.system_status, "ok");
        assert_string_equal(s.instance_status, "impaired");
        ec2_instance_status_done(&s);
        assert_int_equal(ec2_parse_instance_status(none, strlen(none), &s), -ENOENT);
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
        char *text = NULL;
        size_t len = 0;

        assert_int_equal(ec2_parse_console_output(out, strlen(out), &text, &len), 0);
        assert_int_equal(len, 13);
        assert_string_equal(text, "Kernel panic\n");
        free(text);
        assert_int_equal(ec2_parse_console_output(empty, strlen(empty), &text, &len), 0);
        assert_null(text);
        assert_int_equal(ec2_parse_console_output(bad, strlen(bad), &text, &len), -EBADMSG);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_run_instance),   cmocka_unit_test(test_instance_ids),
                cmocka_unit_test(test_tag_value),      cmocka_unit_test(test_instance_status),
                cmocka_unit_test(test_console_output),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
