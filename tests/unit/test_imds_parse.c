/* SPDX-License-Identifier: Apache-2.0 */
/*
 * IMDS without a network: the identity and credential parsers, endpoint resolution from the
 * environment and the config, and the disabled switch. Anything that could send a request points
 * at a dead loopback port, never at the real metadata service.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/credentials.h"
#include "aws/imds.h"
#include "util/macro.h"

/* Port 1 on loopback: nothing listens there, so a request fails at once and stays local. */
#define DEAD_ENDPOINT "http://127.0.0.1:1"

static const char identity_json[] = "{\n"
                                    "  \"accountId\" : \"896453262835\",\n"
                                    "  \"architecture\" : \"x86_64\",\n"
                                    "  \"availabilityZone\" : \"us-east-1f\",\n"
                                    "  \"billingProducts\" : null,\n"
                                    "  \"imageId\" : \"ami-0b69ea66ff7391e80\",\n"
                                    "  \"instanceId\" : \"i-1234567890abcdef0\",\n"
                                    "  \"instanceType\" : \"m4.xlarge\",\n"
                                    "  \"pendingTime\" : \"2019-10-31T07:02:24Z\",\n"
                                    "  \"privateIp\" : \"10.0.7.10\",\n"
                                    "  \"region\" : \"us-east-1\",\n"
                                    "  \"version\" : \"2017-09-30\"\n"
                                    "}";

static const char creds_json[] =
        "{\n"
        "  \"Code\" : \"Success\",\n"
        "  \"LastUpdated\" : \"2026-11-26T08:52:52Z\",\n"
        "  \"Type\" : \"AWS-HMAC\",\n"
        "  \"AccessKeyId\" : \"ASIAIMDSTEST00000001\",\n"
        "  \"SecretAccessKey\" : \"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\",\n"
        "  \"Token\" : \"IQoJb3JpZ2luX2VjEXAMPLETOKEN==\",\n"
        "  \"Expiration\" : \"2026-11-26T14:52:52Z\"\n"
        "}";

static void clear_env(void)
{
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

/* Replace the first occurrence of `from` in `base` by `to`; the result is freed by the caller. */
static char *replace(const char *base, const char *from, const char *to)
{
        const char *p = strstr(base, from);
        char *out;

        assert_non_null(p);
        assert_true(asprintf(&out, "%.*s%s%s", (int)(p - base), base, to, p + strlen(from)) > 0);
        return out;
}

/* ---- identity document ---- */

static void test_identity_good(void **state)
{
        struct imds_identity id = {};

        assert_int_equal(imds_parse_identity(identity_json, strlen(identity_json), &id), 0);
        assert_string_equal(id.instance_id, "i-1234567890abcdef0");
        assert_string_equal(id.region, "us-east-1");
        assert_string_equal(id.availability_zone, "us-east-1f");
        assert_string_equal(id.account_id, "896453262835");
        assert_string_equal(id.architecture, "x86_64");
        assert_string_equal(id.image_id, "ami-0b69ea66ff7391e80");
        assert_string_equal(id.instance_type, "m4.xlarge");
        imds_identity_done(&id);
        assert_null(id.instance_id);
        imds_identity_done(&id); /* twice is harmless */
        imds_identity_done(NULL);
}

static void test_identity_compact_and_trailing_newline(void **state)
{
        static const char doc[] =
                "{\"accountId\":\"123456789012\",\"architecture\":\"arm64\","
                "\"availabilityZone\":\"us-west-2-lax-1a\",\"imageId\":\"ami-12345678\","
                "\"instanceId\":\"i-12345678\",\"instanceType\":\"u-6tb1.metal\","
                "\"region\":\"us-west-2\"}\n";
        struct imds_identity id = {};

        assert_int_equal(imds_parse_identity(doc, strlen(doc), &id), 0);
        assert_string_equal(id.availability_zone, "us-west-2-lax-1a");
        assert_string_equal(id.instance_type, "u-6tb1.metal");
        imds_identity_done(&id);
}

static void expect_identity(const char *doc, size_t len, int expected)
{
        struct imds_identity id = {.instance_id = (char *)"untouched"};

        assert_int_equal(imds_parse_identity(doc, len, &id), expected);
        /* Out-parameters are written only on success. */
        assert_string_equal(id.instance_id, "untouched");
        assert_null(id.region);
}

static void expect_identity_edit(const char *from, const char *to, int expected)
{
        _cleanup_free_ char *doc = replace(identity_json, from, to);

        expect_identity(doc, strlen(doc), expected);
}

static void test_identity_missing_fields(void **state)
{
        expect_identity_edit("\"accountId\"", "\"accountID\"", -EBADMSG);
        expect_identity_edit("\"instanceId\"", "\"instance\"", -EBADMSG);
        expect_identity_edit("\"region\"", "\"Region\"", -EBADMSG);
        expect_identity_edit("\"availabilityZone\"", "\"az\"", -EBADMSG);
        expect_identity_edit("\"architecture\"", "\"arch\"", -EBADMSG);
        expect_identity_edit("\"imageId\"", "\"image\"", -EBADMSG);
        expect_identity_edit("\"instanceType\"", "\"type\"", -EBADMSG);
}

static void test_identity_wrong_types(void **state)
{
        expect_identity_edit("\"896453262835\"", "896453262835", -EBADMSG);
        expect_identity_edit("\"i-1234567890abcdef0\"", "null", -EBADMSG);
        expect_identity_edit("\"us-east-1\"", "[\"us-east-1\"]", -EBADMSG);
        expect_identity_edit("\"x86_64\"", "{}", -EBADMSG);
        expect_identity_edit("\"m4.xlarge\"", "true", -EBADMSG);
}

static void test_identity_bad_values(void **state)
{
        /* The AEMM defaults carry a 10-digit account: real ones have 12. */
        expect_identity_edit("896453262835", "0123456789", -EBADMSG);
        expect_identity_edit("896453262835", "89645326283x", -EBADMSG);
        expect_identity_edit("i-1234567890abcdef0", "i-1234567890ABCDEF0", -EBADMSG);
        expect_identity_edit("i-1234567890abcdef0", "1234567890abcdef0", -EBADMSG);
        expect_identity_edit("i-1234567890abcdef0", "i-123", -EBADMSG);
        expect_identity_edit("i-1234567890abcdef0", "i-12345678/../x", -EBADMSG);
        expect_identity_edit("\"us-east-1\"", "\"US-EAST-1\"", -EBADMSG);
        expect_identity_edit("\"us-east-1\"", "\"us east 1\"", -EBADMSG);
        expect_identity_edit("\"us-east-1\"", "\"\"", -EBADMSG);
        expect_identity_edit("\"us-east-1\"", "\"-us-east-1\"", -EBADMSG);
        expect_identity_edit("ami-0b69ea66ff7391e80", "aki-0b69ea66", -EBADMSG);
        expect_identity_edit("m4.xlarge", "m4 xlarge", -EBADMSG);
        expect_identity_edit("\"us-east-1f\"", "\"us-east-1f\\n\"", -EBADMSG);
        expect_identity_edit("\"us-east-1f\"", "\"us-east-1f\\u0000x\"", -EBADMSG);
}

static void test_identity_garbage(void **state)
{
        static const char nul_inside[] = "{\"a\":1}\0junk";
        _cleanup_free_ char *trailing = NULL, *huge = NULL, *deep = NULL;
        size_t n;

        expect_identity("", 0, -EBADMSG);
        expect_identity("{", 1, -EBADMSG);
        expect_identity("[]", 2, -EBADMSG);
        expect_identity("\"x\"", 3, -EBADMSG);
        expect_identity("null", 4, -EBADMSG);
        expect_identity(nul_inside, sizeof(nul_inside) - 1, -EBADMSG);
        expect_identity("<html><body>404 - Not Found</body></html>", 41, -EBADMSG);
        /* Only the given length counts: a valid document cut short is not valid. */
        expect_identity(identity_json, strlen(identity_json) - 1, -EBADMSG);

        assert_true(asprintf(&trailing, "%s{}", identity_json) > 0);
        expect_identity(trailing, strlen(trailing), -EBADMSG);

        /* Over the 64 KiB ceiling: refused before parsing. */
        n = 64 * 1024 + 1;
        huge = malloc(n);
        assert_non_null(huge);
        memset(huge, ' ', n);
        huge[0] = '{';
        huge[n - 1] = '}';
        expect_identity(huge, n, -EFBIG);

        /* Deep nesting is refused by cJSON's nesting limit, not by the stack. */
        n = 20000;
        deep = malloc(n);
        assert_non_null(deep);
        memset(deep, '[', n);
        expect_identity(deep, n, -EBADMSG);
        expect_identity(NULL, 0, -EINVAL);
}

/* ---- role credentials ---- */

static void test_credentials_good(void **state)
{
        struct aws_credentials c = {};

        assert_int_equal(imds_parse_credentials(creds_json, strlen(creds_json), "imaged-role", &c),
                         0);
        assert_string_equal(c.access_key_id, "ASIAIMDSTEST00000001");
        assert_string_equal(c.secret_access_key, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
        assert_string_equal(c.session_token, "IQoJb3JpZ2luX2VjEXAMPLETOKEN==");
        /* 2026-11-26T14:52:52Z */
        assert_int_equal(c.expiration, 1795704772ULL * 1000000ULL);
        assert_string_equal(c.source, "instance-role:imaged-role");
        assert_string_equal(c.role_name, "imaged-role");
        aws_credentials_done(&c);
        assert_null(c.access_key_id);
        assert_null(c.secret_access_key);
        assert_int_equal(c.expiration, 0);
}

static void test_credentials_fractional_expiration(void **state)
{
        _cleanup_free_ char *doc =
                replace(creds_json, "2026-11-26T14:52:52Z", "2026-11-26T14:52:52.123Z");
        struct aws_credentials c = {};

        assert_int_equal(imds_parse_credentials(doc, strlen(doc), "r", &c), 0);
        assert_int_equal(c.expiration, 1795704772ULL * 1000000ULL);
        aws_credentials_done(&c);
}

static void expect_creds(const char *doc, size_t len, const char *role, int expected)
{
        struct aws_credentials c = {.access_key_id = (char *)"untouched"};

        assert_int_equal(imds_parse_credentials(doc, len, role, &c), expected);
        assert_string_equal(c.access_key_id, "untouched");
        assert_null(c.secret_access_key);
}

static void expect_creds_edit(const char *from, const char *to, int expected)
{
        _cleanup_free_ char *doc = replace(creds_json, from, to);

        expect_creds(doc, strlen(doc), "r", expected);
}

static void test_credentials_code(void **state)
{
        expect_creds_edit("\"Success\"", "\"AssumeRoleUnauthorizedAccess\"", -EACCES);
        expect_creds_edit("\"Success\"", "\"success\"", -EACCES);
        expect_creds_edit("\"Success\"", "true", -EBADMSG);
        expect_creds_edit("\"Code\"", "\"code\"", -EBADMSG);
}

static void test_credentials_missing_and_wrong_types(void **state)
{
        expect_creds_edit("\"AccessKeyId\"", "\"AccessKeyID\"", -EBADMSG);
        expect_creds_edit("\"SecretAccessKey\"", "\"Secret\"", -EBADMSG);
        expect_creds_edit("\"Token\"", "\"SessionToken\"", -EBADMSG);
        expect_creds_edit("\"Expiration\"", "\"Expires\"", -EBADMSG);
        expect_creds_edit("\"ASIAIMDSTEST00000001\"", "12345678901234567890", -EBADMSG);
        expect_creds_edit("\"IQoJb3JpZ2luX2VjEXAMPLETOKEN==\"", "null", -EBADMSG);
        expect_creds_edit("\"2026-11-26T14:52:52Z\"", "1795704772", -EBADMSG);
        expect_creds_edit("\"ASIAIMDSTEST00000001\"", "\"\"", -EBADMSG);
        expect_creds_edit("\"ASIAIMDSTEST00000001\"", "\"ASIA SHORT\"", -EBADMSG);
        expect_creds_edit("\"IQoJb3JpZ2luX2VjEXAMPLETOKEN==\"", "\"tok\\r\\nX-Evil: 1\"", -EBADMSG);
}

static void test_credentials_bad_expiration(void **state)
{
        expect_creds_edit("2026-11-26T14:52:52Z", "tomorrow", -EBADMSG);
        expect_creds_edit("2026-11-26T14:52:52Z", "", -EBADMSG);
        expect_creds_edit("2026-11-26T14:52:52Z", "2026-11-26", -EBADMSG);
        expect_creds_edit("2026-11-26T14:52:52Z", "2026-11-26T14:52:52+02:00", -EBADMSG);
        expect_creds_edit("2026-11-26T14:52:52Z", "2026-11-26T14:52:52Zjunk", -EBADMSG);
        expect_creds_edit("2026-11-26T14:52:52Z", "1970-01-01T00:00:00Z", -EBADMSG);
}

static void test_credentials_garbage(void **state)
{
        _cleanup_free_ char *huge = NULL;
        size_t n = 1024 * 1024;

        expect_creds("", 0, "r", -EBADMSG);
        expect_creds("{}", 2, "r", -EBADMSG);
        expect_creds("[{\"Code\":\"Success\"}]", 20, "r", -EBADMSG);
        expect_creds(creds_json, 10, "r", -EBADMSG);
        huge = malloc(n);
        assert_non_null(huge);
        memset(huge, 'A', n);
        expect_creds(huge, n, "r", -EFBIG);
        /* The role name ends up in a URL and in `source`: it must be a valid IAM name. */
        expect_creds(creds_json, strlen(creds_json), "", -EINVAL);
        expect_creds(creds_json, strlen(creds_json), "../admin", -EINVAL);
        expect_creds(creds_json, strlen(creds_json), NULL, -EINVAL);
}

/* ---- endpoint resolution ---- */

static void expect_endpoint(const struct imds_config *cfg, const char *expected)
{
        struct imds *m = NULL;

        assert_int_equal(imds_new(cfg, &m), 0);
        assert_string_equal(imds_endpoint(m), expected);
        /* Resolving an endpoint sends nothing. */
        assert_int_equal(imds_requests(m), 0);
        imds_free(m);
}

static void expect_new_fails(const struct imds_config *cfg, int expected)
{
        struct imds *m = (struct imds *)0x1;

        assert_int_equal(imds_new(cfg, &m), expected);
        assert_ptr_equal(m, (struct imds *)0x1);
}

static void test_endpoint_default(void **state)
{
        expect_endpoint(&(struct imds_config){}, "http://169.254.169.254");
        expect_endpoint(NULL, "http://169.254.169.254");
}

static void test_endpoint_mode(void **state)
{
        expect_endpoint(&(struct imds_config){.endpoint_mode = "IPv6"}, "http://[fd00:ec2::254]");
        expect_endpoint(&(struct imds_config){.endpoint_mode = "ipv6"}, "http://[fd00:ec2::254]");
        expect_endpoint(&(struct imds_config){.endpoint_mode = "ipV4"}, "http://169.254.169.254");
        expect_new_fails(&(struct imds_config){.endpoint_mode = "IPv5"}, -EINVAL);
        expect_new_fails(&(struct imds_config){.endpoint_mode = ""}, -EINVAL);

        /* The environment's mode wins over the config's. */
        setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "IPV6", 1);
        expect_endpoint(&(struct imds_config){.endpoint_mode = "IPv4"}, "http://[fd00:ec2::254]");
        expect_endpoint(&(struct imds_config){}, "http://[fd00:ec2::254]");
        setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "bogus", 1);
        expect_new_fails(&(struct imds_config){.endpoint_mode = "IPv4"}, -EINVAL);
        /* An empty variable counts as unset. */
        setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "", 1);
        expect_endpoint(&(struct imds_config){.endpoint_mode = "IPv6"}, "http://[fd00:ec2::254]");
}

static void test_endpoint_explicit(void **state)
{
        expect_endpoint(&(struct imds_config){.endpoint = "http://127.0.0.1:8111"},
                        "http://127.0.0.1:8111");
        expect_endpoint(&(struct imds_config){.endpoint = "http://127.0.0.1:8111/"},
                        "http://127.0.0.1:8111");
        expect_endpoint(&(struct imds_config){.endpoint = "http://127.0.0.1:8111///"},
                        "http://127.0.0.1:8111");
        expect_endpoint(&(struct imds_config){.endpoint = "https://[::1]:8443/prefix/"},
                        "https://[::1]:8443/prefix");
        /* An explicit endpoint beats any mode, even a bad one it makes irrelevant. */
        expect_endpoint(
                &(struct imds_config){.endpoint = "http://127.0.0.1:1", .endpoint_mode = "x"},
                "http://127.0.0.1:1");
        expect_new_fails(&(struct imds_config){.endpoint = "127.0.0.1:8111"}, -EINVAL);
        expect_new_fails(&(struct imds_config){.endpoint = "ftp://127.0.0.1"}, -EINVAL);
        expect_new_fails(&(struct imds_config){.endpoint = "http://"}, -EINVAL);
        expect_new_fails(&(struct imds_config){.endpoint = "http:///x"}, -EINVAL);
        expect_new_fails(&(struct imds_config){.endpoint = "http://127.0.0.1 /x"}, -EINVAL);
}

static void test_endpoint_env_wins(void **state)
{
        setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.2:1234/", 1);
        setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "IPv6", 1);
        expect_endpoint(
                &(struct imds_config){.endpoint = "http://127.0.0.1:8111", .endpoint_mode = "IPv6"},
                "http://127.0.0.2:1234");
        setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "not a url", 1);
        expect_new_fails(&(struct imds_config){.endpoint = "http://127.0.0.1:8111"}, -EINVAL);
        setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "", 1);
        expect_endpoint(&(struct imds_config){.endpoint = "http://127.0.0.1:8111"},
                        "http://127.0.0.1:8111");
}

static void test_config_bounds(void **state)
{
        expect_new_fails(&(struct imds_config){.endpoint = DEAD_ENDPOINT, .token_ttl_s = 21601},
                         -EINVAL);
        expect_endpoint(&(struct imds_config){.endpoint = DEAD_ENDPOINT, .token_ttl_s = 21600},
                        DEAD_ENDPOINT);
        expect_endpoint(&(struct imds_config){.endpoint = DEAD_ENDPOINT, .token_ttl_s = 1},
                        DEAD_ENDPOINT);
}

/* ---- disabled ---- */

static void expect_disabled(const struct imds_config *cfg)
{
        struct imds *m = NULL;
        struct imds_identity id = {};
        struct aws_credentials c = {};
        char *s = (char *)"untouched";
        size_t len = 7;

        assert_int_equal(imds_new(cfg, &m), 0);
        assert_int_equal(imds_get(m, "/latest/meta-data/", &s, &len), -ENODEV);
        assert_int_equal(imds_instance_id(m, &s), -ENODEV);
        assert_int_equal(imds_region(m, &s), -ENODEV);
        assert_int_equal(imds_availability_zone(m, &s), -ENODEV);
        assert_int_equal(imds_identity(m, &id), -ENODEV);
        assert_int_equal(imds_role_name(m, &s), -ENODEV);
        assert_int_equal(imds_role_credentials(m, &c), -ENODEV);
        assert_int_equal(imds_user_data(m, &s, &len), -ENODEV);
        assert_string_equal(s, "untouched");
        assert_int_equal(len, 7);
        assert_null(id.instance_id);
        assert_null(c.access_key_id);
        assert_int_equal(imds_requests(m), 0);
        assert_int_equal(imds_token_fetches(m), 0);
        imds_free(m);
}

static void test_disabled(void **state)
{
        /* Even with the default endpoint nothing goes out: the check comes first. */
        expect_disabled(&(struct imds_config){.disabled = true});
        setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
        expect_disabled(&(struct imds_config){});
        setenv("AWS_EC2_METADATA_DISABLED", "TRUE", 1);
        expect_disabled(&(struct imds_config){.endpoint_mode = "IPv6"});
}

static void test_not_disabled_by_other_values(void **state)
{
        static const char *const values[] = {"false", "1", "yes", ""};
        struct imds_config cfg = {.endpoint = DEAD_ENDPOINT,
                                  .connect_timeout_ms = 100,
                                  .timeout_ms = 100,
                                  .retry_deadline_ms = 150};

        for (size_t i = 0; i < ELEMENTSOF(values); i++) {
                struct imds *m = NULL;
                char *s = NULL;
                int r;

                setenv("AWS_EC2_METADATA_DISABLED", values[i], 1);
                assert_int_equal(imds_new(&cfg, &m), 0);
                r = imds_get(m, "/latest/meta-data/instance-id", &s, NULL);
                /* It tried (to a dead loopback port) and ran out of time or was refused. */
                assert_true(r == -ETIME || r == -ECONNREFUSED);
                assert_true(imds_requests(m) >= 1);
                assert_null(s);
                imds_free(m);
        }
}

static void test_bad_path(void **state)
{
        struct imds *m = NULL;
        char *s = NULL;

        assert_int_equal(imds_new(&(struct imds_config){.endpoint = DEAD_ENDPOINT}, &m), 0);
        assert_int_equal(imds_get(m, "latest/meta-data", &s, NULL), -EINVAL);
        assert_int_equal(imds_get(m, "/latest/meta data", &s, NULL), -EINVAL);
        assert_int_equal(imds_get(m, "/latest/x\r\nHost: evil", &s, NULL), -EINVAL);
        assert_int_equal(imds_requests(m), 0);
        imds_free(m);
        assert_null(imds_free(NULL));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_identity_good, setup, teardown),
                cmocka_unit_test_setup_teardown(test_identity_compact_and_trailing_newline, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_identity_missing_fields, setup, teardown),
                cmocka_unit_test_setup_teardown(test_identity_wrong_types, setup, teardown),
                cmocka_unit_test_setup_teardown(test_identity_bad_values, setup, teardown),
                cmocka_unit_test_setup_teardown(test_identity_garbage, setup, teardown),
                cmocka_unit_test_setup_teardown(test_credentials_good, setup, teardown),
                cmocka_unit_test_setup_teardown(test_credentials_fractional_expiration, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_credentials_code, setup, teardown),
                cmocka_unit_test_setup_teardown(test_credentials_missing_and_wrong_types, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_credentials_bad_expiration, setup, teardown),
                cmocka_unit_test_setup_teardown(test_credentials_garbage, setup, teardown),
                cmocka_unit_test_setup_teardown(test_endpoint_default, setup, teardown),
                cmocka_unit_test_setup_teardown(test_endpoint_mode, setup, teardown),
                cmocka_unit_test_setup_teardown(test_endpoint_explicit, setup, teardown),
                cmocka_unit_test_setup_teardown(test_endpoint_env_wins, setup, teardown),
                cmocka_unit_test_setup_teardown(test_config_bounds, setup, teardown),
                cmocka_unit_test_setup_teardown(test_disabled, setup, teardown),
                cmocka_unit_test_setup_teardown(test_not_disabled_by_other_values, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bad_path, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
