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

/* Whether pid is gone; kills it when it is not, so that a failing test leaves nothing behind. */
static bool gone_or_kill(pid_t pid)
{
        bool dead = process_dead(pid);

        if (!dead)
                (void)kill(pid, SIGKILL);
        return dead;
}

/*
 * A daemon started with setsid leaves the hook's process group, and its parent exits: only a
 * subreaper finds it. It is gone when the phase returns, and the hook is still a success.
 */
static void test_setsid_daemon_killed(void **state)
{
        struct fixture *f = *state;
        struct hooks_phase_result res;
        _cleanup_free_ char *body = strprintf(
                "setsid sh -c 'sleep 1000 </dev/null >/dev/null 2>&1 & echo $! > %s/dpid' "
                "</dev/null >/dev/null 2>&1 &\n"
                "while [ ! -s %s/dpid ]; do sleep 0.01; done\necho started",
                f->dir, f->dir);
        int was = -1, r;
        bool dead;

        hook(f, "10-detach", 0755, body);
        r = run(f, &res);
        dead = gone_or_kill(read_pid(f->dir, "dpid"));
        assert_int_equal(r, 0);
        assert_true(dead);
        assert_int_equal(res.hooks[0].status, HOOK_SUCCESS);
        assert_true(res.hooks[0].left_processes);
        hooks_phase_result_done(&res);
        /* The subreaper setting is given back. */
        assert_int_equal(prctl(PR_GET_CHILD_SUBREAPER, &was), 0);
        assert_int_equal(was, 0);
}

/* One that ignores SIGTERM in a session of its own gets SIGKILL after the grace period. */
static void test_setsid_daemon_ignoring_sigterm_killed(void **state)
{
        struct fixture *f = *state;
        struct hooks_phase_result res;
        _cleanup_free_ char *body =
                strprintf("setsid sh -c 'trap \"\" TERM; echo $$ > %s/dpid; "
                          "while :; do sleep 1; done' </dev/null >/dev/null 2>&1 &\n"
                          "while [ ! -s %s/dpid ]; do sleep 0.01; done",
                          f->dir, f->dir);
        bool dead;
        int r;

        hook(f, "10-stubborn", 0755, body);
        r = run(f, &res);
        /* Its loop's sleep is in its session: the group goes too. */
        dead = gone_or_kill(read_pid(f->dir, "dpid"));
        if (!dead)
                (void)kill(-read_pid(f->dir, "dpid"), SIGKILL);
        assert_int_equal(r, 0);
        assert_true(dead);
        assert_true(res.hooks[0].left_processes);
        hooks_phase_result_done(&res);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_umask, setup, teardown),
                cmocka_unit_test_setup_teardown(test_helper_umask, setup, teardown),
                cmocka_unit_test_setup_teardown(test_setsid_daemon_killed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_setsid_daemon_ignoring_sigterm_killed, setup,
                                                teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
