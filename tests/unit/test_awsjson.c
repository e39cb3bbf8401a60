/* SPDX-License-Identifier: Apache-2.0 */
/*
 * AWS JSON protocol pieces that need no peer: answers and error bodies captured from moto
 * (tests/fuzz/corpus/fuzz_awsjson/moto_*) or shaped after the KMS and SSM API references
 * (aws_*), hostile JSON, the transient table for JSON error names, and endpoint precedence.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "aws/awsjson.h"
#include "util/fileio.h"

#define CORPUS SRCDIR "/tests/fuzz/corpus/fuzz_awsjson/"

static char *corpus(const char *name, size_t *len)
{
        char *data = NULL;

        assert_int_equal(read_file_bounded(name, 1 << 20, &data, len), 0);
        return data;
}

static void test_describe_key(void **state)
{
        struct kms_key k = {};
        size_t len;
        char *body = corpus(CORPUS "moto_describe_key_customer.json", &len);

        assert_int_equal(kms_parse_describe_key(body, len, &k), 0);
        assert_string_equal(k.key_id, "e3230483-7523-44dd-941e-f215d0ad78bf");
        assert_string_equal(k.arn, "arn:aws:kms:us-east-1:123456789012:key/"
                                   "e3230483-7523-44dd-941e-f215d0ad78bf");
        assert_string_equal(k.key_manager, "CUSTOMER");
        assert_string_equal(k.key_state, "Enabled");
        kms_key_done(&k);
        free(body);

        body = corpus(CORPUS "aws_describe_key_aws_managed.json", &len);
        assert_int_equal(kms_parse_describe_key(body, len, &k), 0);
        assert_string_equal(k.key_manager, "AWS");
        kms_key_done(&k);
        assert_null(k.key_id);
        free(body);
}

static void test_describe_key_malformed(void **state)
{
        static const char *const bad[] = {
                "{}",
                "{\"KeyMetadata\":[]}",
                "{\"KeyMetadata\":{\"KeyId\":\"x\"}}",
                "{\"KeyMetadata\":{\"KeyId\":\"\",\"KeyManager\":\"AWS\"}}",
                "{\"KeyMetadata\":{\"KeyId\":7,\"KeyManager\":\"AWS\"}}",
                "[{\"KeyMetadata\":{\"KeyId\":\"x\",\"KeyManager\":\"AWS\"}}]",
                "null",
                "",
                "{\"KeyMetadata\":{\"KeyId\":\"x\",\"KeyManager\":\"AWS\"}",
        };
        struct kms_key k = {};

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_int_equal(kms_parse_describe_key(bad[i], strlen(bad[i]), &k), -EBADMSG);
        assert_null(k.key_id);
}

static void test_errors(void **state)
{
        struct aws_error e = {};
        size_t len;
        char *body = corpus(CORPUS "moto_error_notfound.json", &len);

        assert_int_equal(awsjson_parse_error(body, len, &e), 0);
        assert_string_equal(e.code, "NotFoundException");
        assert_string_equal(e.message,
                            "Alias arn:aws:kms:us-east-1:123456789012:alias/nope is not found.");
        free(body);
        /* The namespace before '#' and a URL after ':' are not part of the code. */
        body = corpus(CORPUS "aws_error_namespaced.json", &len);
        assert_int_equal(awsjson_parse_error(body, len, &e), 0);
        assert_string_equal(e.code, "AccessDeniedException");
        free(body);
        body = corpus(CORPUS "aws_error_throttle_suffix.json", &len);
        assert_int_equal(awsjson_parse_error(body, len, &e), 0);
        assert_string_equal(e.code, "ThrottlingException");
        assert_string_equal(e.message, "Rate exceeded");
        assert_true(aws_error_is_transient(400, e.code));
        free(body);
        body = corpus(CORPUS "moto_error_parameter_exists.json", &len);
        assert_int_equal(awsjson_parse_error(body, len, &e), 0);
        assert_string_equal(e.code, "ParameterAlreadyExists");
        assert_false(aws_error_is_transient(400, e.code));
        free(body);
        aws_error_done(&e);

        /* No code, an empty one, or not JSON: not an AWS error. */
        assert_int_equal(awsjson_parse_error("{\"message\":\"x\"}", 15, &e), -EBADMSG);
        assert_int_equal(awsjson_parse_error("{\"__type\":\"x#\"}", 15, &e), -EBADMSG);
        assert_int_equal(awsjson_parse_error("<html/>", 7, &e), -EBADMSG);
        assert_null(e.code);
        assert_true(aws_error_is_transient(400, "KMSInternalException"));
        assert_true(aws_error_is_transient(500, "InternalServerError"));
        assert_false(aws_error_is_transient(400, "AccessDeniedException"));
}

static void test_parse_hostile(void **state)
{
        cJSON *j = NULL;
        size_t len;
        char *body = corpus(CORPUS "deep.json", &len);

        /* Deeper than any answer, trailing garbage, a bare null, over the ceiling. */
        assert_int_equal(awsjson_parse(body, len, &j), -EBADMSG);
        free(body);
        body = corpus(CORPUS "trailing.json", &len);
        assert_int_equal(awsjson_parse(body, len, &j), -EBADMSG);
        free(body);
        assert_int_equal(awsjson_parse("null", 4, &j), -EBADMSG);
        assert_int_equal(awsjson_parse("{\"a\":1}\n", AWSJSON_MAX_BODY + 1, &j), -EFBIG);
        assert_null(j);
        /* Length-bounded: what follows len is never read. */
        assert_int_equal(awsjson_parse("{\"a\":1}{", 7, &j), 0);
        cJSON_Delete(j);
        assert_int_equal(awsjson_parse("{\"a\":1} \r\n", 10, &j), 0);
        cJSON_Delete(j);
}

static void endpoint_is(enum awsjson_service s, const char *region, const char *configured,
                        const char *expect)
{
        struct awsjson_client *c = NULL;

        assert_int_equal(
                awsjson_client_new(&(struct awsjson_client_config){.service = s,
                                                                   .region = region,
                                                                   .endpoint_url = configured},
                                   NULL, &c),
                0);
        assert_string_equal(awsjson_client_endpoint(c), expect);
        awsjson_client_free(c);
}

static void test_endpoints(void **state)
{
        struct awsjson_client *c = NULL;
        struct kms_key k = {};
        struct aws_error e = {};

        unsetenv("AWS_ENDPOINT_URL");
        unsetenv("AWS_ENDPOINT_URL_KMS");
        unsetenv("AWS_ENDPOINT_URL_SSM");
        endpoint_is(AWSJSON_KMS, "us-west-2", NULL, "https://kms.us-west-2.amazonaws.com");
        endpoint_is(AWSJSON_SSM, "eu-west-1", NULL, "https://ssm.eu-west-1.amazonaws.com");
        endpoint_is(AWSJSON_SSM, "eu-west-1", "http://127.0.0.1:1", "http://127.0.0.1:1");
        setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:2", 1);
        endpoint_is(AWSJSON_KMS, "us-west-2", "http://127.0.0.1:1", "http://127.0.0.1:2");
        setenv("AWS_ENDPOINT_URL_KMS", "http://127.0.0.1:3", 1);
        endpoint_is(AWSJSON_KMS, "us-west-2", NULL, "http://127.0.0.1:3");
        /* The KMS variable is not the SSM one. */
        endpoint_is(AWSJSON_SSM, "us-west-2", NULL, "http://127.0.0.1:2");
        unsetenv("AWS_ENDPOINT_URL");
        unsetenv("AWS_ENDPOINT_URL_KMS");

        assert_int_equal(awsjson_client_new(&(struct awsjson_client_config){.service = AWSJSON_KMS,
                                                                            .region = "US-EAST-1"},
                                            NULL, &c),
                         -EINVAL);
        /* No credentials: refused before anything is sent (a closed port anyway). */
        assert_int_equal(
                awsjson_client_new(
                        &(struct awsjson_client_config){.service = AWSJSON_KMS,
                                                        .region = "us-east-1",
                                                        .endpoint_url = "http://127.0.0.1:9"},
                        NULL, &c),
                0);
        assert_int_equal(kms_describe_key(c, "alias/x", &k, &e), -ENOKEY);
        assert_int_equal(awsjson_client_last_attempts(c), 1);
        assert_int_equal(awsjson_call(c, "Bad.Op", NULL, NULL, &e), -EINVAL);
        assert_int_equal(ssm_put_parameter(c, "", "ami-1", NULL, true, NULL, &e), -EINVAL);
        assert_int_equal(kms_create_grant(c, "k", NULL, NULL, NULL, &e), -EINVAL);
        assert_null(e.code);
        awsjson_client_free(c);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_describe_key), cmocka_unit_test(test_describe_key_malformed),
                cmocka_unit_test(test_errors),       cmocka_unit_test(test_parse_hostile),
                cmocka_unit_test(test_endpoints),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
