/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Configuration text parsed as if read from CONFIG_FIXTURE_FILE, and a parse error expected at a
 * line with a message part, for the configuration's unit tests (test_config.c, test_tags.c).
 * Include after cmocka.h and core/config.h, with CONFIG_FIXTURE_FILE defined.
 */
#pragma once

#include <string.h>

#ifndef CONFIG_FIXTURE_FILE
#error "define CONFIG_FIXTURE_FILE before including config_fixture.h"
#endif

static int parse(const char *text, struct config *c, struct config_error *e)
{
        config_init(c);
        return config_parse_buffer(c, text, strlen(text), CONFIG_FIXTURE_FILE, e);
}

static void expect_error(const char *text, unsigned line, const char *needle)
{
        struct config c;
        struct config_error e = {};

        assert_true(parse(text, &c, &e) < 0);
        assert_string_equal(e.file, CONFIG_FIXTURE_FILE);
        assert_int_equal(e.line, line);
        assert_non_null(e.message);
        if (!strstr(e.message, needle))
                fail_msg("message '%s' lacks '%s'", e.message, needle);
        config_error_done(&e);
        config_done(&c);
}
