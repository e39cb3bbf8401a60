/* SPDX-License-Identifier: Apache-2.0 */
/*
 * How a hook is started and what it may leave behind: its umask, the descriptor that is executed
 * (the vetted file, not whatever its path names later), and processes that leave its process
 * group (setsid, double fork).
 */
#include "hooks_fixture.h"

#include <sys/prctl.h>
#include <sys/wait.h>

/* The unit runs with UMask=0077; a hook (and what it installs) gets 022. */
static void test_umask(void **state)
{
        struct fixture *f = *state;
        struct hooks_phase_result res;
        _cleanup_free_ char *body = strprintf("umask > %s/umask", f->dir);
        _cleanup_free_ char *got = NULL;
        mode_t old = umask(0077);

        hook(f, "10-umask", 0755, body);
        assert_int_equal(run(f, &res), 0);
        hooks_phase_result_done(&res);
        umask(old);
        got = read_text(f->dir, "umask");
        assert_string_equal(got, "0022\n");
}

/* So does a helper run under supervision. */
static void test_helper_umask(void **state)
{
        struct fixture *f = *state;
        struct hook_result res;
        char *argv[] = {(char *)"/bin/sh", (char *)"-c", (char *)"umask", NULL};
        mode_t old = umask(0077);

        (void)f;
        assert_int_equal(hooks_run_helper("sh", "test", argv, 10000, &res), 0);
        umask(old);
        assert_string_equal(res.tail[0], "0022");
        hook_result_done(&res);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_umask, setup, teardown),
                cmocka_unit_test_setup_teardown(test_helper_umask, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
