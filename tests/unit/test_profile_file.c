/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The reader of the AWS shared files (aws/profile_file.c): botocore's sections and profiles,
 * keys, continuation lines, the merge of the config and credentials files, and the errors, which
 * name file and line and never quote a value.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "aws/profile_file.h"
#include "util/macro.h"

#define SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY"

static const char *value(const struct profile_set *s, const char *profile, const char *key)
{
        const struct profile_value *v = profile_get(profile_set_find(s, profile), key);

        return v ? v->value : NULL;
}

static void test_credentials_file(void **state)
{
        static const char text[] = "# comment\n"
                                   "; comment too\n"
                                   "[default]\n"
                                   "AWS_Access_Key_ID = AKIAEXAMPLEEXAMPLE00  \r\n"
                                   "aws_secret_access_key=" SECRET "\n"
                                   "\n"
                                   "[profile dev]\n"
                                   "region: eu-west-1\n"
                                   "empty =\n";
        struct profile_set s = {};
        const struct profile_value *v;

        assert_int_equal(
                profile_set_add(&s, PROFILE_FILE_CREDENTIALS, "/c", text, sizeof(text) - 1, NULL),
                0);
        assert_int_equal(s.n_profiles, 2);
        v = profile_get(profile_set_find(&s, "default"), "aws_access_key_id");
        assert_non_null(v);
        assert_string_equal(v->value, "AKIAEXAMPLEEXAMPLE00");
        assert_string_equal(v->path, "/c");
        assert_int_equal(v->line, 4);
        assert_string_equal(value(&s, "default", "aws_secret_access_key"), SECRET);
        /* In the credentials file, "profile dev" is a profile's whole name. */
        assert_string_equal(value(&s, "profile dev", "region"), "eu-west-1");
        assert_string_equal(value(&s, "profile dev", "empty"), "");
        assert_null(profile_set_find(&s, "dev"));
        assert_int_equal(profile_set_find(&s, "profile dev")->line, 7);
        profile_set_done(&s);
        profile_set_done(&s);
}

static void test_config_file_sections(void **state)
{
        static const char text[] = "[default]\nregion = us-east-1\n"
                                   "[profile dev]\nregion = eu-west-1\n"
                                   "[profile \"two words\"]\nregion = eu-west-2\n"
                                   "[profile a b]\nregion = ignored\n"
                                   "[sso-session corp]\nsso_region = us-east-1\n"
                                   "[profilx typo]\nregion = ignored\n"
                                   "[plugins]\ncli_legacy_plugin_path = /x\n";
        struct profile_set s = {};

        assert_int_equal(
                profile_set_add(&s, PROFILE_FILE_CONFIG, "/cfg", text, sizeof(text) - 1, NULL), 0);
        assert_int_equal(s.n_profiles, 3);
        assert_string_equal(value(&s, "default", "region"), "us-east-1");
        assert_string_equal(value(&s, "dev", "region"), "eu-west-1");
        assert_string_equal(value(&s, "two words", "region"), "eu-west-2");
        assert_null(profile_set_find(&s, "a b"));
        assert_null(profile_set_find(&s, "sso-session corp"));
        assert_null(profile_set_find(&s, "typo"));
        profile_set_done(&s);
}

static void test_continuation_lines(void **state)
{
        static const char text[] = "[profile dev]\n"
                                   "s3 =\n"
                                   "    max_concurrent_requests = 20\n"
                                   "    addressing_style = path\n"
                                   "region = eu-west-1\n"
                                   "[plugins]\n"
                                   "x =\n"
                                   "  y = 1\n";
        struct profile_set s = {};

        assert_int_equal(
                profile_set_add(&s, PROFILE_FILE_CONFIG, "/cfg", text, sizeof(text) - 1, NULL), 0);
        assert_string_equal(value(&s, "dev", "s3"),
                            "\nmax_concurrent_requests = 20\naddressing_style = path");
        assert_string_equal(value(&s, "dev", "region"), "eu-west-1");
        assert_null(value(&s, "dev", "max_concurrent_requests"));
        profile_set_done(&s);
}

static void test_merge_credentials_over_config(void **state)
{
        static const char config[] = "[profile dev]\nregion = eu-west-1\n"
                                     "aws_access_key_id = AKIACONFIG0000000000\n";
        static const char creds[] = "[dev]\naws_access_key_id = AKIACREDS00000000000\n"
                                    "[other]\nregion = us-east-2\n";
        struct profile_set s = {};
        const struct profile_value *v;

        assert_int_equal(
                profile_set_add(&s, PROFILE_FILE_CONFIG, "/cfg", config, sizeof(config) - 1, NULL),
                0);
        assert_int_equal(profile_set_add(&s, PROFILE_FILE_CREDENTIALS, "/creds", creds,
                                         sizeof(creds) - 1, NULL),
                         0);
        assert_int_equal(s.n_profiles, 2);
        v = profile_get(profile_set_find(&s, "dev"), "aws_access_key_id");
        assert_string_equal(v->value, "AKIACREDS00000000000");
        assert_string_equal(v->path, "/creds");
        assert_int_equal(v->line, 2);
        v = profile_get(profile_set_find(&s, "dev"), "region");
        assert_string_equal(v->value, "eu-west-1");
        assert_string_equal(v->path, "/cfg");
        assert_string_equal(value(&s, "other", "region"), "us-east-2");
        profile_set_done(&s);
}

/* Parse text as a credentials file into a set that holds one profile already: it must fail. */
static void expect_error(const char *text, int error, const char *message)
{
        static const char first[] = "[profile kept]\nregion = us-east-1\n";
        struct profile_set s = {};
        char *msg = NULL;

        assert_int_equal(
                profile_set_add(&s, PROFILE_FILE_CONFIG, "/cfg", first, sizeof(first) - 1, NULL),
                0);
        assert_int_equal(
                profile_set_add(&s, PROFILE_FILE_CREDENTIALS, "/creds", text, strlen(text), &msg),
                error);
        assert_non_null(msg);
        assert_string_equal(msg, message);
        assert_null(strstr(msg, SECRET));
        /* What the failed file held was not merged; what came before stays. */
        assert_int_equal(s.n_profiles, 1);
        assert_non_null(profile_set_find(&s, "kept"));
        free(msg);
        profile_set_done(&s);
}

static void test_errors(void **state)
{
        expect_error("aws_access_key_id = x\n", -EINVAL,
                     "/creds:1: a key before the first [section]");
        expect_error("[a]\nregion = x\nthis has " SECRET " in it\n", -EINVAL,
                     "/creds:3: neither [section] nor key = value");
        expect_error("[a]\n= " SECRET "\n", -EINVAL, "/creds:2: a value without a key");
        expect_error("[a]\nx = 1\n[b]\n[a]\n", -EINVAL,
                     "/creds:4: section [a] appears twice in this file");
        expect_error("[a]\nAWS_SECRET_ACCESS_KEY = " SECRET "\naws_secret_access_key = x\n",
                     -EINVAL, "/creds:3: aws_secret_access_key is set twice in profile a");
        expect_error("[a\n", -EINVAL, "/creds:1: a section header without its closing ']'");
        expect_error("[ ]\n", -EINVAL, "/creds:1: an empty section name");
}

static void test_errors_config(void **state)
{
        static const char text[] = "[default]\nregion = x\n[profile default]\nregion = y\n";
        static const char nul[] = "[a]\nx = 1\ny = \0\n";
        struct profile_set s = {};
        char *msg = NULL, *big;

        /* [default] and [profile default] name one profile: ambiguous. */
        assert_int_equal(
                profile_set_add(&s, PROFILE_FILE_CONFIG, "/cfg", text, sizeof(text) - 1, &msg),
                -EINVAL);
        assert_string_equal(msg, "/cfg:3: profile default is defined twice in this file");
        free(msg);
        assert_int_equal(
                profile_set_add(&s, PROFILE_FILE_CONFIG, "/cfg", nul, sizeof(nul) - 1, &msg),
                -EINVAL);
        assert_string_equal(msg, "/cfg:3: a NUL byte");
        free(msg);
        big = calloc(1, PROFILE_FILE_MAX + 2);
        memset(big, '#', PROFILE_FILE_MAX + 1);
        assert_int_equal(
                profile_set_add(&s, PROFILE_FILE_CONFIG, "/cfg", big, PROFILE_FILE_MAX + 1, &msg),
                -EFBIG);
        assert_non_null(strstr(msg, "/cfg: larger than"));
        free(msg);
        assert_int_equal(
                profile_set_add(&s, PROFILE_FILE_CONFIG, "/cfg", big, PROFILE_FILE_MAX, NULL), 0);
        free(big);
        assert_int_equal(s.n_profiles, 0);
        profile_set_done(&s);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_credentials_file),
                cmocka_unit_test(test_config_file_sections),
                cmocka_unit_test(test_continuation_lines),
                cmocka_unit_test(test_merge_credentials_over_config),
                cmocka_unit_test(test_errors),
                cmocka_unit_test(test_errors_config),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
