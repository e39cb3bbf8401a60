/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Credentials without a network: the environment source, copying and freeing, and the provider
 * with a fake clock. Role refreshes against a live IMDS are covered by
 * tests/integration/test_imds_client.py; here IMDS is absent, disabled, or a dead loopback port.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "aws/credentials.h"
#include "aws/imds.h"
#include "aws/creds_provider.h"
#include "util/macro.h"

#define DEAD_ENDPOINT "http://127.0.0.1:1"

struct fake_clock {
        usec_t now;
        unsigned reads;
};

static usec_t fake_clock_read(void *userdata)
{
        struct fake_clock *c = userdata;

        c->reads++;
        return c->now;
}

static void clear_env(void)
{
        unsetenv("AWS_ACCESS_KEY_ID");
        unsetenv("AWS_SECRET_ACCESS_KEY");
        unsetenv("AWS_SESSION_TOKEN");
        unsetenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
        unsetenv("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
        unsetenv("AWS_EC2_METADATA_DISABLED");
}

static int setup(void **state)
{
        clear_env();
        return 0;
}

static int teardown(void **state)
{
        clear_env();
        return 0;
}

static void set_env_pair(const char *id, const char *secret, const char *token)
{
        setenv("AWS_ACCESS_KEY_ID", id, 1);
        setenv("AWS_SECRET_ACCESS_KEY", secret, 1);
        if (token)
                setenv("AWS_SESSION_TOKEN", token, 1);
        else
                unsetenv("AWS_SESSION_TOKEN");
}

static void test_env_none(void **state)
{
        struct aws_credentials c = {.access_key_id = (char *)"untouched"};

        assert_int_equal(aws_credentials_from_env(&c), -ENOKEY);
        /* Empty values count as unset, as they do in the SDKs. */
        set_env_pair("", "", "");
        assert_int_equal(aws_credentials_from_env(&c), -ENOKEY);
        assert_string_equal(c.access_key_id, "untouched");
}

static void test_env_pair(void **state)
{
        struct aws_credentials c = {};

        set_env_pair("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", NULL);
        assert_int_equal(aws_credentials_from_env(&c), 0);
        assert_string_equal(c.access_key_id, "AKIDEXAMPLE");
        assert_string_equal(c.secret_access_key, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
        assert_null(c.session_token);
        assert_int_equal(c.expiration, 0);
        assert_string_equal(c.source, "environment");
        assert_null(c.role_name);
        aws_credentials_done(&c);

        set_env_pair("ASIAEXAMPLE", "secret", "session-token");
        assert_int_equal(aws_credentials_from_env(&c), 0);
        assert_string_equal(c.session_token, "session-token");
        aws_credentials_done(&c);

        set_env_pair("ASIAEXAMPLE", "secret", "");
        assert_int_equal(aws_credentials_from_env(&c), 0);
        assert_null(c.session_token);
        aws_credentials_done(&c);
}

static void test_env_partial(void **state)
{
        struct aws_credentials c = {};

        setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
        assert_int_equal(aws_credentials_from_env(&c), -EINVAL);
        set_env_pair("", "secret", NULL);
        assert_int_equal(aws_credentials_from_env(&c), -EINVAL);
        /* A token alone is not credentials at all. */
        set_env_pair("", "", "token");
        assert_int_equal(aws_credentials_from_env(&c), -ENOKEY);
        set_env_pair("AKID EXAMPLE", "secret", NULL);
        assert_int_equal(aws_credentials_from_env(&c), -EINVAL);
        set_env_pair("AKIDEXAMPLE", "secret\n", NULL);
        assert_int_equal(aws_credentials_from_env(&c), -EINVAL);
        set_env_pair("AKIDEXAMPLE", "secret", "tok\r\nX-Injected: 1");
        assert_int_equal(aws_credentials_from_env(&c), -EINVAL);
        assert_null(c.access_key_id);
}

static void test_copy_and_done(void **state)
{
        struct aws_credentials src = {
                .access_key_id = (char *)"ASIAIMDSTEST00000001",
                .secret_access_key = (char *)"secret",
                .session_token = NULL,
                .expiration = 42,
                .source = (char *)"instance-role:r",
                .role_name = (char *)"r",
        };
        struct aws_credentials dst = {};

        assert_int_equal(aws_credentials_copy(&src, &dst), 0);
        assert_string_equal(dst.access_key_id, src.access_key_id);
        assert_ptr_not_equal(dst.access_key_id, src.access_key_id);
        assert_string_equal(dst.secret_access_key, "secret");
        assert_null(dst.session_token);
        assert_int_equal(dst.expiration, 42);
        assert_string_equal(dst.source, "instance-role:r");
        assert_string_equal(dst.role_name, "r");
        aws_credentials_done(&dst);
        assert_null(dst.access_key_id);
        assert_null(dst.secret_access_key);
        assert_null(dst.source);
        aws_credentials_done(&dst);
        aws_credentials_done(NULL);
}

static void test_provider_env(void **state)
{
        struct fake_clock clock = {.now = 1000 * USEC_PER_SEC};
        struct creds_provider *p = NULL;
        const struct aws_credentials *c = NULL;

        set_env_pair("AKIDEXAMPLE", "secret", "tok");
        assert_int_equal(creds_provider_new(NULL, fake_clock_read, &clock, &p), 0);
        assert_int_equal(creds_provider_get(p, &c), 0);
        assert_string_equal(c->access_key_id, "AKIDEXAMPLE");
        assert_string_equal(c->session_token, "tok");
        assert_string_equal(c->source, "environment");
        /* Environment credentials do not expire: the clock is not even consulted. */
        assert_int_equal(clock.reads, 0);

        /* The environment is read on each call, so a change is picked up. */
        set_env_pair("AKIDOTHER", "secret2", NULL);
        assert_int_equal(creds_provider_get(p, &c), 0);
        assert_string_equal(c->access_key_id, "AKIDOTHER");
        assert_null(c->session_token);
        creds_provider_invalidate(p);
        assert_int_equal(creds_provider_get(p, &c), 0);
        assert_string_equal(c->access_key_id, "AKIDOTHER");

        /* Half a pair is an error, not a reason to fall through to the role. */
        unsetenv("AWS_SECRET_ACCESS_KEY");
        c = NULL;
        assert_int_equal(creds_provider_get(p, &c), -EINVAL);
        assert_null(c);
        creds_provider_free(p);
        assert_null(creds_provider_free(NULL));
        creds_provider_invalidate(NULL);
}

static void test_provider_no_source(void **state)
{
        struct creds_provider *p = NULL;
        const struct aws_credentials *c = NULL;

        assert_int_equal(creds_provider_new(NULL, NULL, NULL, &p), 0);
        assert_int_equal(creds_provider_get(p, &c), -ENOKEY);
        assert_null(c);
        creds_provider_free(p);
}

static void test_provider_imds_disabled(void **state)
{
        struct fake_clock clock = {.now = 1000 * USEC_PER_SEC};
        struct imds *m = NULL;
        struct creds_provider *p = NULL;
        const struct aws_credentials *c = NULL;

        assert_int_equal(
                imds_new(&(struct imds_config){.endpoint = DEAD_ENDPOINT, .disabled = true}, &m),
                0);
        assert_int_equal(creds_provider_new(m, fake_clock_read, &clock, &p), 0);
        assert_int_equal(creds_provider_get(p, &c), -ENOKEY);
        assert_null(c);
        assert_int_equal(imds_requests(m), 0);
        /* Environment credentials still win over a disabled IMDS. */
        set_env_pair("AKIDEXAMPLE", "secret", NULL);
        assert_int_equal(creds_provider_get(p, &c), 0);
        assert_string_equal(c->source, "environment");
        creds_provider_free(p);
        imds_free(m);
}

static void test_provider_imds_unreachable(void **state)
{
        struct fake_clock clock = {.now = 1000 * USEC_PER_SEC};
        struct imds *m = NULL;
        struct creds_provider *p = NULL;
        const struct aws_credentials *c = NULL;
        int r;

        assert_int_equal(imds_new(&(struct imds_config){.endpoint = DEAD_ENDPOINT,
                                                        .connect_timeout_ms = 100,
                                                        .timeout_ms = 100,
                                                        .retry_deadline_ms = 150},
                                  &m),
                         0);
        assert_int_equal(creds_provider_new(m, fake_clock_read, &clock, &p), 0);
        /* An IMDS that does not answer is a failure to report, not "no credentials". */
        r = creds_provider_get(p, &c);
        assert_true(r == -ETIME || r == -ECONNREFUSED);
        assert_null(c);
        assert_true(imds_requests(m) >= 1);
        creds_provider_free(p);
        imds_free(m);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_env_none, setup, teardown),
                cmocka_unit_test_setup_teardown(test_env_pair, setup, teardown),
                cmocka_unit_test_setup_teardown(test_env_partial, setup, teardown),
                cmocka_unit_test_setup_teardown(test_copy_and_done, setup, teardown),
                cmocka_unit_test_setup_teardown(test_provider_env, setup, teardown),
                cmocka_unit_test_setup_teardown(test_provider_no_source, setup, teardown),
                cmocka_unit_test_setup_teardown(test_provider_imds_disabled, setup, teardown),
                cmocka_unit_test_setup_teardown(test_provider_imds_unreachable, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
