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

static void copy_file(const char *from, const char *to, mode_t mode)
{
        char buf[65536];
        int in = open(from, O_RDONLY | O_CLOEXEC), out;
        ssize_t n;

        assert_true(in >= 0);
        out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0700);
        assert_true(out >= 0);
        while ((n = read(in, buf, sizeof(buf))) > 0)
                assert_int_equal(write(out, buf, (size_t)n), n);
        assert_int_equal(n, 0);
        close(in);
        assert_int_equal(close(out), 0);
        assert_int_equal(chmod(to, mode), 0);
}

/* Vet <phase>/name as the run does, right before it executes it; returns the descriptor. */
static int vet(struct fixture *f, const char *name)
{
        _cleanup_close_ int dir_fd = open(f->phase, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_free_ char *reason = NULL;
        int fd = -1;

        assert_true(dir_fd >= 0);
        assert_int_equal(hook_open_vetted(dir_fd, name, geteuid(), &fd, &reason), 0);
        assert_null(reason);
        assert_true(fd > STDERR_FILENO);
        return fd;
}

/* Put a file with other content where the vetted one was, as a rename would. */
static void swap_in(struct fixture *f, const char *name, const char *from_binary,
                    const char *script_body)
{
        _cleanup_free_ char *tmp = strprintf("%s/.swap", f->phase);
        _cleanup_free_ char *path = strprintf("%s/%s", f->phase, name);

        if (from_binary) {
                copy_file(from_binary, tmp, 0755);
        } else {
                FILE *fp = fopen(tmp, "we");

                assert_non_null(fp);
                fprintf(fp, "#!/bin/sh\n%s\n", script_body);
                fclose(fp);
                assert_int_equal(chmod(tmp, 0755), 0);
        }
        assert_int_equal(rename(tmp, path), 0);
}

static int run_fd(struct fixture *f, const char *name, int fd, struct hook_result *res)
{
        char *envp[] = {(char *)"PATH=" HOOK_PATH_ENV, NULL};
        char *argv[2];

        *res = (struct hook_result){};
        res->name = strdup(name);
        res->path = strprintf("%s/%s", f->phase, name);
        assert_non_null(res->name);
        assert_non_null(res->path);
        argv[0] = res->path;
        argv[1] = NULL;
        return hook_run(HOOK_PHASE_PRE_IMAGE, argv, envp, fd, 5000, 200, res);
}

/*
 * A binary hook replaced between its vetting and its exec: what runs is the vetted file (true),
 * not what the path names by then (false), which is what an exec by path runs.
 */
static void test_swapped_binary_runs_the_vetted_file(void **state)
{
        struct fixture *f = *state;
        struct hook_result res;
        _cleanup_free_ char *path = strprintf("%s/10-bin", f->phase);
        _cleanup_close_ int fd = -1;

        copy_file("/bin/true", path, 0755);
        fd = vet(f, "10-bin");
        swap_in(f, "10-bin", "/bin/false", NULL);
        assert_int_equal(run_fd(f, "10-bin", fd, &res), 0);
        assert_int_equal(res.status, HOOK_SUCCESS);
        hook_result_done(&res);

        /* The control: by path, the swapped-in file runs. */
        assert_int_equal(run_fd(f, "10-bin", -1, &res), 0);
        assert_int_equal(res.status, HOOK_EXITED);
        assert_int_equal(res.exit_status, 1);
        hook_result_done(&res);
}

/*
 * A #! script is run by path (so that its $0 is its path), after a check that the path still
 * names the vetted file: a swapped one is not run at all.
 */
static void test_swapped_script_is_not_run(void **state)
{
        struct fixture *f = *state;
        struct hook_result res;
        _cleanup_free_ char *body = strprintf("echo \"vetted $0\" >> %s/out", f->dir);
        _cleanup_free_ char *body2 = strprintf("echo swapped >> %s/out", f->dir);
        _cleanup_free_ char *path = strprintf("%s/10-sh", f->phase), *out = NULL, *expect = NULL;
        _cleanup_close_ int fd = -1, fd2 = -1;

        hook(f, "10-sh", 0755, body);
        fd = vet(f, "10-sh");
        assert_int_equal(run_fd(f, "10-sh", fd, &res), 0);
        assert_int_equal(res.status, HOOK_SUCCESS);
        hook_result_done(&res);
        out = read_text(f->dir, "out");
        expect = strprintf("vetted %s\n", path);
        assert_string_equal(out, expect);

        fd2 = vet(f, "10-sh");
        swap_in(f, "10-sh", NULL, body2);
        assert_int_equal(run_fd(f, "10-sh", fd2, &res), 0);
        assert_int_equal(res.status, HOOK_EXEC_FAILED);
        assert_int_equal(res.error, -ESTALE);
        assert_string_equal(res.message, "hook 10-sh (pre-image) could not be executed: Stale "
                                         "file handle (it was replaced after it was vetted)");
        hook_result_done(&res);
        free(out);
        out = read_text(f->dir, "out");
        assert_string_equal(out, expect);
}

/*
 * supervise_start() hands the child back running, in a process group of its own, before anything
 * reads its output or reaps it; supervise_finish() then reads its output and describes its end.
 */
static void test_start_then_finish(void **state)
{
        char *argv[] = {(char *)"/bin/sh", (char *)"-c", (char *)"echo started; exec sleep 1000",
                        NULL};
        char *envp[] = {(char *)"PATH=" HOOK_PATH_ENV, NULL};
        const struct supervise_opts o = {.label = "helper sleeper (test)",
                                         .name = "sleeper",
                                         .fields = "HOOK=sleeper\n",
                                         .path = argv[0],
                                         .argv = argv,
                                         .envp = envp,
                                         .exec_fd = -1,
                                         .timeout_ms = 300,
                                         .grace_ms = 200};
        struct supervise_result res;
        struct supervised *s;
        pid_t pid;

        (void)state;
        assert_int_equal(supervise_start(&o, &s), 0);
        pid = supervise_pid(s);
        assert_true(pid > 0);
        /* Still there (running, or a zombie nobody reaped yet), leading its own group. */
        assert_int_equal(getpgid(pid), pid);
        supervise_finish(s, &res);
        assert_int_equal(res.end, SUPERVISE_TIMED_OUT);
        assert_int_equal(res.signal, SIGTERM);
        assert_false(res.sigkilled);
        assert_string_equal(res.tail[0], "started");
        assert_string_equal(res.message, "helper sleeper (test) timed out after 300 ms and was "
                                         "killed");
        assert_true(process_dead(pid));
        supervise_result_done(&res);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_umask, setup, teardown),
                cmocka_unit_test_setup_teardown(test_helper_umask, setup, teardown),
                cmocka_unit_test_setup_teardown(test_setsid_daemon_killed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_setsid_daemon_ignoring_sigterm_killed, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_swapped_binary_runs_the_vetted_file, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_swapped_script_is_not_run, setup, teardown),
                cmocka_unit_test(test_start_then_finish),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
