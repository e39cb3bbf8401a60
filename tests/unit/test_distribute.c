/*
 * Distribution pieces that need no peer: the per-region KMS key of [distribute] kms_key, the
 * recognition of AWS-managed keys, and the [distribute] keys' defaults and bounds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "aws/awsjson.h"
#include "config.h"
#include "distribute.h"
#include "distribute_aws.h"

static void parse(struct config *c, const char *text)
{
        struct config_error e = {};

        config_init(c);
        assert_int_equal(config_parse_buffer(c, text, strlen(text), "test.conf", &e), 0);
        config_error_done(&e);
}

static void test_kms_key_for(void **state)
{
        struct config c;

        parse(&c, "[distribute]\nregions = us-west-2 eu-west-1\n"
                  "kms_key = us-west-2:alias/golden "
                  "eu-west-1:arn:aws:kms:eu-west-1:111122223333:key/k1 us-west:bad\n");
        assert_string_equal(dist_kms_key_for(&c, "us-west-2"), "alias/golden");
        /* An ARN keeps its own colons: only the first one separates the region. */
        assert_string_equal(dist_kms_key_for(&c, "eu-west-1"),
                            "arn:aws:kms:eu-west-1:111122223333:key/k1");
        /* A region is matched whole, never as a prefix. */
        assert_null(dist_kms_key_for(&c, "us-west-1"));
        assert_null(dist_kms_key_for(&c, "us"));
        assert_null(dist_kms_key_for(&c, "ap-south-1"));
        assert_string_equal(c.dist_regions[1], "eu-west-1");
        assert_true(distribute_configured(&c));
        config_done(&c);
}

static void test_aws_managed(void **state)
{
        struct kms_key customer = {.key_id = "k", .key_manager = "CUSTOMER"};
        struct kms_key aws = {.key_id = "k", .key_manager = "AWS"};

        assert_true(dist_key_is_aws_managed("alias/aws/ebs", &customer));
        assert_true(
                dist_key_is_aws_managed("arn:aws:kms:us-east-1:111122223333:alias/aws/ebs", NULL));
        assert_true(dist_key_is_aws_managed("1234abcd-12ab-34cd-56ef-1234567890ab", &aws));
        assert_false(dist_key_is_aws_managed("alias/golden", &customer));
        assert_false(dist_key_is_aws_managed("alias/awsome", NULL));
}

static void test_defaults_and_bounds(void **state)
{
        struct config c;
        struct config_error e = {};
        static const char too_many[] = "[distribute]\nmax_copies_in_flight = 51\n";

        parse(&c, "");
        assert_false(distribute_configured(&c));
        assert_int_equal(c.dist_max_copies, 5);
        assert_string_equal(c.dist_lt_source_version, "$Default");
        assert_false(c.dist_create_grants);
        assert_null(c.dist_regions);
        config_done(&c);
        /* A lineage alone asks for nothing. */
        parse(&c, "[distribute]\nlineage = web\n");
        assert_false(distribute_configured(&c));
        config_done(&c);
        parse(&c, "[distribute]\nkeep_days = 30\n");
        assert_true(distribute_configured(&c));
        config_done(&c);
        config_init(&c);
        assert_int_equal(config_parse_buffer(&c, too_many, strlen(too_many), "t.conf", &e),
                         -ERANGE);
        assert_int_equal(e.line, 2);
        config_error_done(&e);
        config_done(&c);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_kms_key_for),
                cmocka_unit_test(test_aws_managed),
                cmocka_unit_test(test_defaults_and_bounds),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
