/* SPDX-License-Identifier: Apache-2.0 */
/* The `#ec2-imaged:` user-data directive. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/imagetags.h"
#include "run/bootcheck_report.h"
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

/* The boot check's line, as the run writes it, and what is not a run id. */
static void test_boot_check(void **state)
{
        char ud[256];
        struct userdata_directive d;

        snprintf(ud, sizeof(ud), BOOT_CHECK_USERDATA_FMT, "0c1d2e3f-aaaa-4bbb-8ccc-0123456789ab");
        d = parse_ok(ud);
        assert_true(d.found);
        assert_false(d.first_boot);
        assert_string_equal(d.boot_check, "0c1d2e3f-aaaa-4bbb-8ccc-0123456789ab");
        /* With run=first-boot beside it, both are read; first_boot_decide() lets it win. */
        d = parse_ok("#ec2-imaged: run=first-boot\n#ec2-imaged: boot-check=abc-1\n");
        assert_true(d.first_boot);
        assert_string_equal(d.boot_check, "abc-1");
        d = parse_ok("#ec2-imaged: run=first-boot\n");
        assert_string_equal(d.boot_check, "");
        parse_bad("#ec2-imaged: boot-check=\n", 1, "run id");
        parse_bad("#ec2-imaged: boot-check=$(reboot)\n", 1, "run id");
        parse_bad("#ec2-imaged: boot-check=0123456789012345678901234567890123456789012345678901234"
                  "5678901234\n",
                  1, "run id");
}

/* The clone's report: "ok" only when everything holds; else every reason, tag-sized. */
static void test_report_verdict(void **state)
{
        char *failed[] = {"nginx.service", "bad\x01unit.mount", NULL};
        char *inactive[] = {"sshd.service (inactive)", NULL};
        char long_reason[600];
        struct boot_report_input in = {.system_state = "running"};
        char *v;

        v = boot_report_verdict(&in);
        assert_string_equal(v, "ok");
        free(v);
        in.inactive_units = inactive;
        v = boot_report_verdict(&in);
        assert_string_equal(v, "failed:required sshd.service (inactive)");
        free(v);
        in = (struct boot_report_input){.system_state = "degraded",
                                        .failed_units = failed,
                                        .local_check = "1 hook(s) of pre-image refused"};
        v = boot_report_verdict(&in);
        assert_string_equal(v, "failed:system degraded; nginx.service failed; bad?unit.mount "
                               "failed; 1 hook(s) of pre-image refused");
        free(v);
        in = (struct boot_report_input){.system_state = NULL};
        v = boot_report_verdict(&in);
        assert_string_equal(v, "failed:system unknown");
        free(v);
        memset(long_reason, 'x', sizeof(long_reason) - 1);
        long_reason[sizeof(long_reason) - 1] = '\0';
        in = (struct boot_report_input){.system_state = "running", .local_check = long_reason};
        v = boot_report_verdict(&in);
        assert_int_equal(strlen(v), BOOT_REPORT_MAX);
        assert_true(strncmp(v, "failed:xxx", 10) == 0);
        free(v);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_found),
                cmocka_unit_test(test_not_found),
                cmocka_unit_test(test_bad),
                cmocka_unit_test(test_boot_check),
                cmocka_unit_test(test_report_verdict),
        };
        return cmocka_run_group_tests_name("userdata", tests, NULL, NULL);
}
