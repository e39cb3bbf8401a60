/* SPDX-License-Identifier: Apache-2.0 */
/* Image name templates and AMI name rules. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "run/imagename.h"

static const struct template_fields fields = {
        .instance_id = "i-0123456789abcdef0",
        .hostname = "web-1",
        .region = "eu-west-1",
        .account_id = "123456789012",
        .run_id = "3f2a",
        .mode = "no-reboot",
        .now = 1795705972, /* 2026-11-26T15:12:52Z */
};

static void ok(const char *tmpl, const char *want)
{
        char *out = NULL, *err = NULL;

        assert_int_equal(image_name_render(tmpl, &fields, &out, &err), 0);
        assert_string_equal(out, want);
        free(out);
}

static void bad(const char *tmpl, const char *needle)
{
        char *out = NULL, *err = NULL;

        assert_int_equal(image_name_render(tmpl, &fields, &out, &err), -EINVAL);
        assert_null(out);
        assert_non_null(err);
        if (!strstr(err, needle))
                fail_msg("'%s' lacks '%s'", err, needle);
        free(err);
}

static void test_render(void **unused)
{
        ok("{hostname}-{date:%Y%m%d-%H%M%S}", "web-1-20261126-151252");
        ok("golden/{region}/{instance_id} ({mode}) [{run_id}]",
           "golden/eu-west-1/i-0123456789abcdef0 (no-reboot) [3f2a]");
        ok("acct@{account_id}'s_image.v1", "acct@123456789012's_image.v1");
}

static void test_rejected(void **unused)
{
        bad("{nosuch}", "unknown field '{nosuch}'");
        bad("{hostname", "unterminated");
        bad("ab", "3..128");
        bad("name:with:colons", "':'");
        bad("{date:%Y}{date:%Y}{date:%Y}{date:%Y}{date:%Y}{date:%Y}{date:%Y}{date:%Y}{date:%Y}"
            "{date:%Y}{date:%Y}{date:%Y}{date:%Y}{date:%Y}{date:%Y}{date:%Y}{date:%Y}{date:%Y}"
            "{date:%Y}{date:%Y}{date:%Y}{date:%Y}{date:%Y}{date:%Y}{date:%Y}{date:%Y}{date:%Y}"
            "{date:%Y}{date:%Y}{date:%Y}{date:%Y}{date:%Y}{date:%Y}{date:%Y}",
            "3..128");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_render),
                cmocka_unit_test(test_rejected),
        };
        return cmocka_run_group_tests_name("imagename", tests, NULL, NULL);
}
