/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Target accounts: the state's "targets" list round-trips, a state without it loads, bad shapes
 * are refused; the [distribute] target_* words are checked as they are read and looked up.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/state.h"

#define RUN_HEAD "{\"current\":{\"run_id\":\"r\",\"phase\":\"distributing\",\"mode\":\"reboot\""

static void test_state_targets(void **unused)
{
        static const char old[] = RUN_HEAD ",\"distribution\":[{\"region\":\"a\"}]}}";
        static const char *const bad[] = {
                RUN_HEAD ",\"targets\":{}}}",
                RUN_HEAD ",\"targets\":[{\"region\":\"a\"}]}}",
                RUN_HEAD ",\"targets\":[{\"account\":\"1\",\"region\":\"a\"},"
                         "{\"account\":\"1\",\"region\":\"a\"}]}}",
                RUN_HEAD ",\"targets\":[{\"account\":\"1\",\"region\":\"a\",\"state\":7}]}}",
        };
        struct state s = {}, l = {};
        struct run_state *r, *c = NULL;
        struct run_target *t, *again;
        char *text;

        assert_int_equal(state_parse(old, strlen(old), &l), 0);
        assert_int_equal(l.current->n_targets, 0);
        assert_null(l.current->targets);
        state_done(&l);

        assert_int_equal(run_state_new(MODE_REBOOT, false, &r), 0);
        assert_int_equal(run_state_target(r, "222222222222", "us-east-1", &t), 0);
        assert_int_equal(run_state_set(&t->state, "copying"), 0);
        assert_int_equal(run_state_target(r, "222222222222", "us-west-2", &t), 0);
        assert_int_equal(run_state_set(&t->image_id, "ami-2"), 0);
        assert_int_equal(run_state_set(&t->state, "available"), 0);
        assert_int_equal(run_state_target(r, "222222222222", "us-west-2", &again), 0);
        assert_ptr_equal(t, again);
        assert_int_equal(r->n_targets, 2);
        s.current = r;
        text = state_format(&s);
        assert_non_null(text);
        assert_int_equal(state_parse(text, strlen(text), &l), 0);
        free(text);
        assert_int_equal(l.current->n_targets, 2);
        assert_string_equal(l.current->targets[0].account, "222222222222");
        assert_string_equal(l.current->targets[0].state, "copying");
        assert_null(l.current->targets[0].image_id);
        assert_string_equal(l.current->targets[1].region, "us-west-2");
        assert_string_equal(l.current->targets[1].image_id, "ami-2");
        assert_int_equal(run_state_copy(l.current, &c), 0);
        assert_string_equal(c->targets[1].state, "available");
        run_state_free(c);
        state_done(&l);
        for (size_t i = 2; i < RUN_TARGETS_MAX; i++) {
                char region[16];

                snprintf(region, sizeof(region), "r-%zu", i);
                assert_int_equal(run_state_target(r, "1", region, &t), 0);
        }
        assert_int_equal(run_state_target(r, "1", "one-too-many", &t), -E2BIG);
        state_done(&s);
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_int_equal(state_parse(bad[i], strlen(bad[i]), &l), -EBADMSG);
}

static int parse(const char *text, struct config *c, struct config_error *e)
{
        config_init(c);
        return config_parse_buffer(c, text, strlen(text), "test.conf", e);
}

static void test_config_targets(void **unused)
{
        static const struct {
                const char *line, *word;
        } bad[] = {
                {"target_accounts = 2222:importer", "'2222:importer'"},
                {"target_accounts = 222222222222", "'222222222222'"},
                {"target_accounts = 222222222222:bad*name", "'222222222222:bad*name'"},
                {"target_external_id = x", "external id"},
                {"target_kms_key = 222222222222:alias/k", "'222222222222:alias/k'"},
                {"target_kms_key = 222222222222:us_east_1:k", "'222222222222:us_east_1:k'"},
                {"target_kms_key = 222222222222:us-east-1:", "'222222222222:us-east-1:'"},
                {"target_ssm_parameter = 222222222222:a:b", "'222222222222:a:b'"},
                {"target_ssm_parameter = /golden", "'/golden'"},
        };
        struct config c;
        struct config_error e = {};
        char text[256];

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                snprintf(text, sizeof(text), "[distribute]\n%s\n", bad[i].line);
                assert_int_equal(parse(text, &c, &e), -EINVAL);
                assert_int_equal(e.line, 2);
                assert_non_null(strstr(e.message, "[distribute] target_"));
                assert_non_null(strstr(e.message, bad[i].word));
                config_error_done(&e);
                config_done(&c);
        }
        assert_int_equal(parse("[distribute]\n"
                               "target_accounts = 222222222222:path/importer 333333333333:b\n"
                               "target_external_id = golden-7\n"
                               "target_kms_key = 222222222222:us-east-1:alias/k "
                               "222222222222:us-west-2:arn:aws:kms:us-west-2:222222222222:key/1\n"
                               "target_ssm_parameter = 333333333333:/golden/web\n",
                               &c, &e),
                         0);
        assert_string_equal(c.dist_target_external_id, "golden-7");
        assert_string_equal(config_target_kms_key(&c, "222222222222", "us-east-1"), "alias/k");
        assert_string_equal(config_target_kms_key(&c, "222222222222", "us-west-2"),
                            "arn:aws:kms:us-west-2:222222222222:key/1");
        assert_null(config_target_kms_key(&c, "222222222222", "us-east-2"));
        assert_null(config_target_kms_key(&c, "333333333333", "us-east-1"));
        assert_string_equal(config_target_ssm_parameter(&c, "333333333333"), "/golden/web");
        assert_null(config_target_ssm_parameter(&c, "222222222222"));
        config_done(&c);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_state_targets),
                cmocka_unit_test(test_config_targets),
        };
        return cmocka_run_group_tests_name("targets", tests, NULL, NULL);
}
