/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Distribution pieces that need no peer: the per-region KMS key of [distribute] kms_key, the
 * recognition of AWS-managed keys, and the [distribute] keys' defaults and bounds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/awsjson.h"
#include "aws/ec2.h"
#include "core/config.h"
#include "distribute/distribute.h"
#include "distribute/distribute_aws.h"
#include "distribute/distribute_internal.h"
#include "distribute/distribute_retain.h"
#include "run/flow_image.h"

#define DAY (86400 * USEC_PER_SEC)

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

/* In place: a key for the run's own region; a key of another region only makes copies. */
/* launch_template and ssm_parameter words: REGION:NAME wins; a plain NAME where it applies. */
static void test_word_for(void **state)
{
        char *words[] = {"us-west-2:web-west", "web", "eu-west-1:web-eu", NULL};
        char *regional[] = {"us-west-2:web-west", NULL};

        (void)state;
        assert_string_equal(dist_word_for(words, "us-west-2", "us-east-1", false), "web-west");
        assert_string_equal(dist_word_for(words, "us-east-1", "us-east-1", false), "web");
        assert_string_equal(dist_word_for(words, "eu-west-1", "us-east-1", true), "web-eu");
        /* A plain name: the run's region only, or every region (ssm_parameter). */
        assert_null(dist_word_for(words, "ap-south-1", "us-east-1", false));
        assert_string_equal(dist_word_for(words, "ap-south-1", "us-east-1", true), "web");
        assert_null(dist_word_for(regional, "us-east-1", "us-east-1", true));
        assert_null(dist_word_for(NULL, "us-east-1", "us-east-1", true));
        /* A region's name is the whole word before ':'. */
        assert_null(dist_word_for(regional, "us-west", "us-east-1", false));
}

static void test_encrypts_in_place(void **state)
{
        struct config c;

        parse(&c, "[distribute]\nkms_key = us-east-1:alias/golden\n");
        assert_true(distribute_configured(&c));
        assert_true(distribute_encrypts_in_place(&c, "us-east-1"));
        assert_false(distribute_encrypts_in_place(&c, "us-west-2"));
        assert_false(distribute_encrypts_in_place(&c, NULL));
        config_done(&c);
}

/* EC2 names an image's key by its ARN; the configuration by id, ARN or alias (DescribeKey). */
static void test_image_key_matches(void **state)
{
        static const char arn[] = "arn:aws:kms:us-east-1:111122223333:key/1234abcd";
        struct kms_key k = {.key_id = "1234abcd", .arn = (char *)arn};
        struct kms_key other = {.key_id = "abcd", .arn = "arn:aws:kms:us-east-1:1:key/abcd"};
        struct kms_key no_arn = {.key_id = "1234abcd"};

        assert_true(dist_image_key_matches(arn, &k));
        assert_true(dist_image_key_matches("1234abcd", &k));
        assert_true(dist_image_key_matches(arn, &no_arn));
        /* A key id that is only the tail of another id is not it. */
        assert_false(dist_image_key_matches(arn, &other));
        assert_false(dist_image_key_matches(NULL, &k));
        assert_false(dist_image_key_matches(arn, &(struct kms_key){}));
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

/* An image of ours (run_id set) or not, made on day `day` of 2026-01. */
static struct ec2_image image(const char *id, int day, bool ours, const char *protection)
{
        struct ec2_image im = {.image_id = strdup(id), .n_tags = ours ? 1 : 0};
        char date[32];

        snprintf(date, sizeof(date), "2026-01-%02dT10:00:00.000Z", day);
        im.creation_date = strdup(date);
        im.deregistration_protection = protection ? strdup(protection) : NULL;
        if (ours) {
                im.tags = calloc(1, sizeof(*im.tags));
                im.tags[0] = (struct ec2_image_tag){strdup(TAG_RUN_ID), strdup("r")};
        }
        return im;
}

static enum retain_verdict verdict_of(const struct ec2_image *ims, const enum retain_verdict *v,
                                      size_t n, const char *id)
{
        for (size_t i = 0; i < n; i++)
                if (strcmp(ims[i].image_id, id) == 0)
                        return v[i];
        fail_msg("%s not found", id);
        return RETAIN_NOT_OURS;
}

/* An image whose boot check failed is no keeper: the next good one takes its place. */
static void test_retention_skips_failed_boot_check(void **state)
{
        struct ec2_image ims[4];
        enum retain_verdict v[4];
        struct retain_opts o = {.lineage = "web", .keep_newest = 2, .keep_days = 30};

        assert_int_equal(parse_iso8601("2026-01-31T10:00:00Z", &o.now), 0);
        ims[0] = image("ami-failed", 29, true, NULL);
        ims[1] = image("ami-good", 28, true, NULL);
        ims[2] = image("ami-old", 27, true, NULL);
        ims[3] = image("ami-failed-protected", 26, true, "enabled");
        for (size_t i = 0; i < 4; i += 3) {
                ims[i].tags = realloc(ims[i].tags, 2 * sizeof(*ims[i].tags));
                ims[i].tags[1] = (struct ec2_image_tag){strdup(TAG_BOOT_CHECK),
                                                        strdup(BOOT_CHECK_VERDICT_FAILED)};
                ims[i].n_tags = 2;
        }
        retain_decide(&o, ims, 4, NULL, v);
        assert_int_equal(verdict_of(ims, v, 4, "ami-failed"), RETAIN_DELETE);
        assert_int_equal(verdict_of(ims, v, 4, "ami-good"), RETAIN_KEEP_RULES);
        assert_int_equal(verdict_of(ims, v, 4, "ami-old"), RETAIN_KEEP_RULES);
        assert_int_equal(verdict_of(ims, v, 4, "ami-failed-protected"), RETAIN_KEEP_PROTECTED);
        for (size_t i = 0; i < 4; i++)
                ec2_image_done(&ims[i]);
}

static void test_retention_rules(void **state)
{
        char *refs[] = {"ami-3", NULL};
        struct ec2_image ims[7];
        enum retain_verdict v[7];
        usec_t now;
        struct retain_opts o = {.lineage = "web", .keep_newest = 2, .keep_image_id = "ami-new"};

        assert_int_equal(parse_iso8601("2026-01-31T10:00:00Z", &now), 0);
        o.now = now;
        /* Given in no particular order. */
        ims[0] = image("ami-1", 1, true, NULL);
        ims[1] = image("ami-new", 30, true, NULL);
        ims[2] = image("ami-3", 3, true, NULL);
        ims[3] = image("ami-29", 29, true, NULL);
        ims[4] = image("ami-hand", 2, false, NULL);
        ims[5] = image("ami-4", 4, true, "enabled-with-cooldown");
        ims[6] = image("ami-28", 28, true, NULL);
        retain_decide(&o, ims, 7, refs, v);
        assert_string_equal(ims[0].image_id, "ami-new"); /* newest first */
        assert_int_equal(verdict_of(ims, v, 7, "ami-new"), RETAIN_KEEP_CURRENT);
        /* The run's image is the first of the two kept; the next newest is the second. */
        assert_int_equal(verdict_of(ims, v, 7, "ami-29"), RETAIN_KEEP_RULES);
        assert_int_equal(verdict_of(ims, v, 7, "ami-28"), RETAIN_DELETE);
        assert_int_equal(verdict_of(ims, v, 7, "ami-4"), RETAIN_KEEP_PROTECTED);
        assert_int_equal(verdict_of(ims, v, 7, "ami-3"), RETAIN_KEEP_REFERENCED);
        assert_int_equal(verdict_of(ims, v, 7, "ami-hand"), RETAIN_NOT_OURS);
        assert_int_equal(verdict_of(ims, v, 7, "ami-1"), RETAIN_DELETE);

        /* Days alone: younger than 5 days stays, however many there are. */
        o.keep_newest = 0;
        o.keep_days = 5;
        retain_decide(&o, ims, 7, NULL, v);
        assert_int_equal(verdict_of(ims, v, 7, "ami-28"), RETAIN_KEEP_RULES);
        assert_int_equal(verdict_of(ims, v, 7, "ami-3"), RETAIN_DELETE);
        /* Both: kept by either rule. */
        o.keep_newest = 3;
        o.keep_days = 1;
        retain_decide(&o, ims, 7, NULL, v);
        assert_int_equal(verdict_of(ims, v, 7, "ami-28"), RETAIN_KEEP_RULES);
        assert_int_equal(verdict_of(ims, v, 7, "ami-4"), RETAIN_KEEP_PROTECTED);
        assert_int_equal(verdict_of(ims, v, 7, "ami-1"), RETAIN_DELETE);
        /* protect_published: our protection ("enabled") is lifted, a cooldown one is not ours. */
        free(ims[6].deregistration_protection);
        ims[6].deregistration_protection = strdup("enabled");
        assert_string_equal(ims[6].image_id, "ami-1");
        retain_decide(&o, ims, 7, NULL, v);
        assert_int_equal(verdict_of(ims, v, 7, "ami-1"), RETAIN_KEEP_PROTECTED);
        o.lift_protection = true;
        retain_decide(&o, ims, 7, NULL, v);
        assert_int_equal(verdict_of(ims, v, 7, "ami-1"), RETAIN_LIFT_AND_DELETE);
        assert_int_equal(verdict_of(ims, v, 7, "ami-4"), RETAIN_KEEP_PROTECTED);
        o.lift_protection = false;
        assert_true(retain_enabled(&o));
        o.keep_newest = o.keep_days = 0;
        assert_false(retain_enabled(&o));
        for (size_t i = 0; i < 7; i++)
                ec2_image_done(&ims[i]);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_kms_key_for),
                cmocka_unit_test(test_word_for),
                cmocka_unit_test(test_encrypts_in_place),
                cmocka_unit_test(test_image_key_matches),
                cmocka_unit_test(test_aws_managed),
                cmocka_unit_test(test_defaults_and_bounds),
                cmocka_unit_test(test_retention_rules),
                cmocka_unit_test(test_retention_skips_failed_boot_check),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
