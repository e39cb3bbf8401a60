/* SPDX-License-Identifier: Apache-2.0 */
/* The `#ec2-imaged:` user-data directive. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "run/firstboot.h"

static struct userdata_directive parse_ok(const char *text)
{
        struct userdata_directive d;

        assert_int_equal(userdata_parse(text, strlen(text), &d, NULL, NULL), 0);
        return d;
}

static void parse_bad(const char *text, unsigned want_line, const char *want)
{
        struct userdata_directive d;
        const char *msg = NULL;
        unsigned line = 0;

        assert_int_equal(userdata_parse(text, strlen(text), &d, &line, &msg), -EINVAL);
        assert_int_equal(line, want_line);
        assert_non_null(strstr(msg, want));
}

static void test_found(void **state)
{
        struct userdata_directive d;

        d = parse_ok("#!/bin/sh\n#ec2-imaged: run=first-boot mode=reboot\necho hi\n");
        assert_true(d.found && d.first_boot);
        assert_true(d.has_mode && d.mode == MODE_REBOOT);
        assert_int_equal(d.line, 2);

        /* cloud-config, CRLF, indentation, a trailing comment, merged lines */
        d = parse_ok("#cloud-config\r\n  #ec2-imaged: run=first-boot # once\r\n"
                     "#ec2-imaged: mode=no-reboot\r\nruncmd: []\r\n");
        assert_true(d.found && d.first_boot);
        assert_true(d.has_mode && d.mode == MODE_NO_REBOOT);
        assert_int_equal(d.line, 3);

        d = parse_ok("#ec2-imaged: mode=reboot\n");
        assert_true(d.found);
        assert_false(d.first_boot);
}

static void test_not_found(void **state)
{
        struct userdata_directive d;
        static const char gz[] = "\x1f\x8b\x08\x00#ec2-imaged: run=first-boot\n";

        d = parse_ok("");
        assert_false(d.found);
        d = parse_ok("# ec2-imaged: run=first-boot\n#ec2-imaged run=first-boot\necho "
                     "'#ec2-imaged: run=first-boot'\n");
        assert_false(d.found);
        assert_false(d.has_mode);
        assert_int_equal(userdata_parse(gz, sizeof(gz) - 1, &d, NULL, NULL), 0);
        assert_false(d.found);
}

static void test_bad(void **state)
{
        char *big;
        struct userdata_directive d;

        parse_bad("x\n#ec2-imaged: run=always\n", 2, "first-boot");
        parse_bad("#ec2-imaged: mode=fast\n", 1, "no-reboot or reboot");
        parse_bad("#ec2-imaged: colour=blue\n", 1, "unknown key");
        parse_bad("#ec2-imaged: run\n", 1, "key=value");
        parse_bad("#ec2-imaged: run=first-boot\x01\n", 1, "control character");
        big = malloc(USERDATA_MAX + 1);
        assert_non_null(big);
        memset(big, 'a', USERDATA_MAX + 1);
        assert_int_equal(userdata_parse(big, USERDATA_MAX + 1, &d, NULL, NULL), -EFBIG);
        free(big);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_found),
                cmocka_unit_test(test_not_found),
                cmocka_unit_test(test_bad),
        };
        return cmocka_run_group_tests_name("userdata", tests, NULL, NULL);
}
