/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Prometheus textfile's text (label values escaped, measures left out when not taken, the
 * history counted by result) and the region of an SNS topic ARN.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "aws/sns.h"
#include "core/state.h"
#include "run/notify.h"

static void test_render(void **unused)
{
        struct state s = {};
        struct run_state *run;
        char *text = NULL;

        (void)unused;
        assert_int_equal(run_state_new(MODE_REBOOT, false, &run), 0);
        free(run->run_id);
        run->run_id = strdup("a\"b\\c\nd");
        run->phase = PHASE_FAILED;
        run->started = 1000 * USEC_PER_SEC;
        run->create_call_ms = 1500;
        s.history[0].result = RESULT_FAILED;
        s.history[1].result = RESULT_SUCCESS;
        s.history[2].result = RESULT_FAILED;
        s.n_history = 3;
        assert_int_equal(notify_metrics_render(&s, run, 1002500 * USEC_PER_MSEC, &text), 0);
        assert_non_null(strstr(text, "ec2_imaged_last_run_info{run_id=\"a\\\"b\\\\c\\nd\","
                                     "image_id=\"\",result=\"failed\"} 1\n"));
        assert_non_null(strstr(text, "\nec2_imaged_last_run_success 0\n"));
        assert_non_null(strstr(text, "\nec2_imaged_last_run_start_time_seconds 1000.000\n"));
        assert_non_null(strstr(text, "\nec2_imaged_last_run_end_time_seconds 1002.500\n"));
        assert_non_null(strstr(text, "\nec2_imaged_last_run_duration_seconds 2.500\n"));
        assert_non_null(strstr(text, "\nec2_imaged_last_run_create_image_seconds 1.500\n"));
        /* Not measured (-1): no family at all. */
        assert_null(strstr(text, "freeze_window"));
        assert_non_null(strstr(text, "\nec2_imaged_runs{result=\"success\"} 1\n"
                                     "ec2_imaged_runs{result=\"failed\"} 2\n"
                                     "ec2_imaged_runs{result=\"inherited\"} 0\n"));
        free(text);
        run_state_free(run);
}

static void test_topic_region(void **unused)
{
        char *region = NULL;

        (void)unused;
        assert_int_equal(sns_topic_region("arn:aws:sns:eu-west-1:123456789012:runs", &region), 0);
        assert_string_equal(region, "eu-west-1");
        free(region);
        assert_int_equal(sns_topic_region("arn:aws-cn:sns:cn-north-1:123456789012:t", &region), 0);
        assert_string_equal(region, "cn-north-1");
        free(region);
        assert_int_equal(sns_topic_region("arn:aws:sqs:eu-west-1:123456789012:q", &region),
                         -EINVAL);
        assert_int_equal(sns_topic_region("arn:aws:sns:eu-west-1:1234:t", &region), -EINVAL);
        assert_int_equal(sns_topic_region("arn:aws:sns:eu-west-1:123456789012:", &region), -EINVAL);
        assert_int_equal(sns_topic_region("runs", &region), -EINVAL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_render),
                cmocka_unit_test(test_topic_region),
        };
        return cmocka_run_group_tests_name("notify", tests, NULL, NULL);
}
