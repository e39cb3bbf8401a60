/* SPDX-License-Identifier: Apache-2.0 */
/*
 * util/buf.h: the ceiling, and buf_finish() handing the string over on success and leaving
 * nothing behind (and the caller's pointer untouched) on failure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

static void test_finish_success(void **state)
{
        struct buf b = {};
        char *s = NULL;
        size_t len = 0;

        assert_int_equal(buf_printf(&b, "%s=%d", "a", 1), 0);
        assert_int_equal(buf_finish(&b, 0, &s, &len), 0);
        assert_string_equal(s, "a=1");
        assert_int_equal(len, 3);
        assert_null(b.data);
        free(s);

        /* Nothing appended is an empty string, not NULL. */
        assert_int_equal(buf_finish(&b, 0, &s, NULL), 0);
        assert_string_equal(s, "");
        free(s);
}

static void test_finish_failure(void **state)
{
        struct buf b = {.max = 4, .secret = true};
        char *s = (char *)"untouched";
        int r;

        assert_int_equal(buf_append(&b, "abc", 3), 0);
        r = buf_append(&b, "de", 2);
        assert_int_equal(r, -EFBIG);
        assert_int_equal(buf_finish(&b, r, &s, NULL), -EFBIG);
        assert_string_equal(s, "untouched");
        assert_null(b.data);
        assert_int_equal(b.len, 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_finish_success),
                cmocka_unit_test(test_finish_failure),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
