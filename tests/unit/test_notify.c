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

#include "aws/vocab.h"
#include "core/config.h"
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
        assert_int_equal(aws_arn_region("arn:aws:sns:eu-west-1:123456789012:runs", "sns", &region),
                         0);
        assert_string_equal(region, "eu-west-1");
        free(region);
        assert_int_equal(aws_arn_region("arn:aws-cn:sns:cn-north-1:123456789012:t", "sns", &region),
                         0);
        assert_string_equal(region, "cn-north-1");
        free(region);
        assert_int_equal(aws_arn_region("arn:aws:sqs:eu-west-1:123456789012:q", "sns", &region),
                         -EINVAL);
        assert_int_equal(aws_arn_region("arn:aws:sns:eu-west-1:1234:t", "sns", &region), -EINVAL);
        assert_int_equal(aws_arn_region("arn:aws:sns:eu-west-1:123456789012:", "sns", &region),
                         -EINVAL);
        assert_int_equal(aws_arn_region("runs", "sns", &region), -EINVAL);
}

/* [notify] values of the wrong shape stop the load with the file, the line and the key. */
static void test_config_shapes(void **unused)
{
        static const char *const bad[] = {
                "[notify]\nsns_topic_arn = arn:aws:sqs:us-east-1:123456789012:q\n",
                "[notify]\nsns_topic_arn = image-runs\n",
                "[notify]\nevent_bus = arn:aws:events:us-east-1:123456789012:rule/x\n",
                "[notify]\nevent_bus = golden images\n",
                "[notify]\nprometheus_textfile = ec2-imaged.prom\n",
                "[notify]\nprometheus_textfile = /var/lib/prometheus/\n",
        };
        static const char good[] =
                "[notify]\nsns_topic_arn = arn:aws:sns:eu-west-1:123456789012:runs\n"
                "event_bus = arn:aws:events:eu-west-1:123456789012:event-bus/golden\n"
                "prometheus_textfile = /var/lib/prometheus/node-exporter/ec2-imaged.prom\n";
        struct config c;
        struct config_error e = {};

        (void)unused;
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                config_init(&c);
                assert_int_equal(config_parse_buffer(&c, bad[i], strlen(bad[i]), "t.conf", &e),
                                 -EINVAL);
                assert_string_equal(e.file, "t.conf");
                assert_int_equal(e.line, 2);
                assert_non_null(strstr(e.message, "[notify] "));
                config_error_done(&e);
                config_done(&c);
        }
        config_init(&c);
        assert_int_equal(config_parse_buffer(&c, good, strlen(good), "t.conf", &e), 0);
        assert_string_equal(c.notify_event_bus,
                            "arn:aws:events:eu-west-1:123456789012:event-bus/golden");
        config_done(&c);
        config_init(&c);
        static const char name_only[] = "[notify]\nevent_bus = golden\n";
        assert_int_equal(config_parse_buffer(&c, name_only, strlen(name_only), "t.conf", &e), 0);
        config_done(&c);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_render),
                cmocka_unit_test(test_topic_region),
                cmocka_unit_test(test_config_shapes),
        };
        return cmocka_run_group_tests_name("notify", tests, NULL, NULL);
}
