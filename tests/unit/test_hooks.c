/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Hooks: real shell-script hooks in a temporary directory, run through hooks_run_phase() (and a
 * helper through hooks_run_helper()): order, skip rules, the child's environment, signal state and
 * descriptors, output capture, timeouts that kill the whole process group, and how each ending is
 * classified. Vetting: test_hooks_list.c.
 */
#include "hooks_fixture.h"

static void test_order_and_skips(void **state)
{
        struct fixture *f = *state;
        struct hooks_phase_result res;
        _cleanup_free_ char *out = NULL, *text = NULL, *sub = NULL;

        appender(f, "20-b", 0755, "");
        appender(f, "10-a", 0755, "");
        appender(f, "100-z", 0700, "");
        appender(f, "30-c", 0755, "");
        appender(f, "Z-upper", 0755, "");
        /* None of these may run. */
        appender(f, ".hidden", 0755, "");
        appender(f, "40-x~", 0755, "");
        appender(f, "50-y.dpkg-old", 0755, "");
        appender(f, "51-y.dpkg-dist", 0755, "");
        appender(f, "60-z.rpmsave", 0755, "");
        appender(f, "61-z.rpmnew", 0755, "");
        appender(f, "70-w.disabled", 0755, "");
        appender(f, "80-noexec", 0644, "");
        sub = strprintf("%s/90-dir", f->phase);
        assert_int_equal(mkdir(sub, 0755), 0);
        free(sub);
        sub = strprintf("%s/85-masked", f->phase);
        assert_int_equal(symlink("/dev/null", sub), 0);

        assert_int_equal(hooks_dry_run_phase(&f->opts, HOOK_PHASE_PRE_IMAGE, &text), 0);
        assert_contains(text, "pre-image: 10-a would run\n");
        assert_contains(text, "pre-image: 50-y.dpkg-old skipped: package manager leftover\n");
        assert_contains(text, "pre-image: 40-x~ skipped: backup file\n");
        assert_contains(text, "pre-image: 80-noexec skipped: not executable\n");
        assert_contains(text, "pre-image: 85-masked skipped: masked (symlink to /dev/null)\n");
        assert_contains(text, "pre-image: 90-dir skipped: directory\n");
        assert_null(read_text(f->dir, "out")); /* the dry run ran nothing */

        assert_int_equal(run(f, &res), 0);
        assert_null(res.message);
        assert_int_equal(res.n_hooks, 5);
        assert_int_equal(res.n_failed, 0);
        assert_string_equal(res.hooks[0].name, "10-a");
        assert_int_equal(res.hooks[0].status, HOOK_SUCCESS);
        hooks_phase_result_done(&res);

        /* Byte order: digits before upper case, "100-z" between "10-a" and "20-b". */
        out = read_text(f->dir, "out");
        assert_non_null(out);
        assert_string_equal(out, "10-a\n100-z\n20-b\n30-c\nZ-upper\n");
}

static void test_no_hooks(void **state)
{
        struct fixture *f = *state;
        struct hooks_phase_result res;
        struct hooks_opts o = f->opts;
        _cleanup_free_ char *missing = strprintf("%s/nonexistent", f->dir), *text = NULL;

        /* Hooks directory exists, phase directory does not. */
        assert_int_equal(hooks_run_phase(&o, HOOK_PHASE_POST_THAW, &f->env, &res), 0);
        assert_int_equal(res.n_hooks, 0);
        hooks_phase_result_done(&res);

        /* No hooks directory at all. */
        o.hooks_dir = missing;
        assert_int_equal(hooks_run_phase(&o, HOOK_PHASE_PRE_IMAGE, &f->env, &res), 0);
        assert_int_equal(res.n_hooks, 0);
        hooks_phase_result_done(&res);
        assert_int_equal(hooks_dry_run_phase(&o, HOOK_PHASE_PRE_FREEZE, &text), 0);
        assert_contains(text, "pre-freeze: no hooks (");

        /* An empty phase directory. */
        assert_int_equal(run(f, &res), 0);
        assert_int_equal(res.n_hooks, 0);
        hooks_phase_result_done(&res);

        assert_int_equal(hooks_run_phase(&f->opts, "pre-lunch", &f->env, &res), -EINVAL);
        assert_string_equal(res.message, "unknown hook phase 'pre-lunch'");
        hooks_phase_result_done(&res);
        assert_int_equal(hooks_dry_run_phase(&f->opts, "pre-lunch", &text), -EINVAL);
}

static void test_exit_status_stops_phase(void **state)
{
        struct fixture *f = *state;
        struct hooks_phase_result res;
        _cleanup_free_ char *out = NULL;

        appender(f, "10-ok", 0755, "");
        appender(f, "20-fail", 0755, "echo about to fail\nexit 3");
        appender(f, "30-after", 0755, "");

        assert_int_equal(run(f, &res), -EPROTO);
        assert_int_equal(res.n_hooks, 2);
        assert_int_equal(res.n_failed, 1);
        assert_int_equal(res.hooks[1].status, HOOK_EXITED);
        assert_int_equal(res.hooks[1].exit_status, 3);
        assert_string_equal(res.hooks[1].message, "hook 20-fail (pre-image) exited with status 3");
        assert_string_equal(res.message, "hook 20-fail (pre-image) exited with status 3");
        assert_non_null(res.hooks[1].tail);
        assert_string_equal(res.hooks[1].tail[0], "about to fail");
        assert_null(res.hooks[1].tail[1]);
        hooks_phase_result_done(&res);

        out = read_text(f->dir, "out");
        assert_string_equal(out, "10-ok\n20-fail\n");
}

static void test_continue_on_error(void **state)
{
        struct fixture *f = *state;
        struct hooks_phase_result res;
        _cleanup_free_ char *out = NULL;

        appender(f, "10-fail", 0755, "exit 1");
        appender(f, "20-signal", 0755, "kill -TERM $$");
        appender(f, "30-after", 0755, "");
        f->opts.continue_on_error = true;

        assert_int_equal(run(f, &res), -EPROTO);
        assert_int_equal(res.n_hooks, 3);
        assert_int_equal(res.n_failed, 2);
        assert_int_equal(res.hooks[0].status, HOOK_EXITED);
        assert_int_equal(res.hooks[1].status, HOOK_KILLED);
        assert_int_equal(res.hooks[1].signal, SIGTERM);
        assert_string_equal(res.hooks[1].message,
                            "hook 20-signal (pre-image) was killed by signal SIGTERM");
        assert_int_equal(res.hooks[2].status, HOOK_SUCCESS);
        assert_contains(res.message, "2 hooks of phase pre-image failed: hook 10-fail (pre-image) "
                                     "exited with status 1; hook 20-signal");
        hooks_phase_result_done(&res);

        out = read_text(f->dir, "out");
        assert_string_equal(out, "10-fail\n20-signal\n30-after\n");
}

static void test_timeout_kills_group(void **state)
{
        struct fixture *f = *state;
        struct hooks_phase_result res;
        _cleanup_free_ char *body =
                strprintf("sleep 1000 &\necho $! > %s/gpid\necho started\nsleep 1000", f->dir);
        pid_t grandchild;

        hook(f, "10-slow", 0755, body);
        f->opts.timeout_ms = 300;
        f->opts.kill_grace_ms = 5000; /* SIGTERM is enough here */

        assert_int_equal(run(f, &res), -ETIMEDOUT);
        assert_int_equal(res.hooks[0].status, HOOK_TIMED_OUT);
        assert_int_equal(res.hooks[0].signal, SIGTERM);
        assert_string_equal(hook_status_to_string(res.hooks[0].status), "timed-out");
        assert_string_equal(res.hooks[0].message,
                            "hook 10-slow (pre-image) timed out after 300 ms and was killed");
        assert_string_equal(res.hooks[0].tail[0], "started");
        hooks_phase_result_done(&res);

        /* Checked right away: we return only once nothing of the group is alive. */
        grandchild = read_pid(f->dir, "gpid");
        assert_true(process_dead(grandchild));
}

static void test_timeout_sigkill_after_grace(void **state)
{
        struct fixture *f = *state;
        struct hooks_phase_result res;
        /* The ignored SIGTERM is inherited by the background sleep, too. */
        _cleanup_free_ char *body =
                strprintf("trap '' TERM\nsleep 1000 &\necho $! > %s/gpid\nsleep 1000", f->dir);

        hook(f, "10-stubborn", 0755, body);
        f->opts.timeout_ms = 200;
        f->opts.kill_grace_ms = 200;

        assert_int_equal(run(f, &res), -ETIMEDOUT);
        assert_int_equal(res.hooks[0].status, HOOK_TIMED_OUT);
        assert_int_equal(res.hooks[0].signal, SIGKILL);
        assert_string_equal(res.hooks[0].message, "hook 10-stubborn (pre-image) timed out after "
                                                  "200 ms and was killed (SIGKILL after 200 ms)");
        hooks_phase_result_done(&res);
        assert_true(process_dead(read_pid(f->dir, "gpid")));
}

static void test_leftover_processes_killed(void **state)
{
        struct fixture *f = *state;
        struct hooks_phase_result res;
        /* The background sleep keeps the output pipe open, too. */
        _cleanup_free_ char *body = strprintf("sleep 1000 &\necho $! > %s/gpid\necho done", f->dir);

        hook(f, "10-forgetful", 0755, body);
        assert_int_equal(run(f, &res), 0);
        assert_int_equal(res.hooks[0].status, HOOK_SUCCESS);
        assert_true(res.hooks[0].left_processes);
        assert_string_equal(res.hooks[0].tail[0], "done");
        hooks_phase_result_done(&res);
        assert_true(process_dead(read_pid(f->dir, "gpid")));
}

static void test_environment(void **state)
{
        struct fixture *f = *state;
        struct hooks_phase_result res;
        _cleanup_free_ char *body =
                strprintf("tr '\\0' '\\n' < /proc/$$/environ | sort > %s/env", f->dir);
        _cleanup_free_ char *env1 = NULL, *env2 = NULL;

        assert_int_equal(setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG", 1), 0);
        assert_int_equal(setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1), 0);
        assert_int_equal(setenv("LD_PRELOAD", "", 1), 0);
        hook(f, "10-env", 0755, body);

        f->env.image_id = "ami-0123456789abcdef0";
        f->env.mode = HOOKS_MODE_REBOOT;
        f->env.dry_run = true;
        assert_int_equal(run(f, &res), 0);
        hooks_phase_result_done(&res);
        env1 = read_text(f->dir, "env");
        assert_string_equal(env1,
                            "EC2_IMAGED_DRY_RUN=1\n"
                            "EC2_IMAGED_MODE=reboot\n"
                            "EC2_IMAGED_PHASE=pre-image\n"
                            "EC2_IMAGED_RUN_ID=run-1\n"
                            "IMAGE_ID=ami-0123456789abcdef0\n"
                            "IMAGE_NAME=web-2026-11-26\n"
                            "INSTANCE_ID=i-0123456789abcdef0\n"
                            "LANG=C.UTF-8\n"
                            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
                            "REGION=eu-west-1\n");

        f->env.image_id = NULL;
        f->env.mode = HOOKS_MODE_NO_REBOOT;
        f->env.dry_run = false;
        assert_int_equal(run(f, &res), 0);
        hooks_phase_result_done(&res);
        env2 = read_text(f->dir, "env");
        assert_string_equal(env2,
                            "EC2_IMAGED_MODE=no-reboot\n"
                            "EC2_IMAGED_PHASE=pre-image\n"
                            "EC2_IMAGED_RUN_ID=run-1\n"
                            "IMAGE_NAME=web-2026-11-26\n"
                            "INSTANCE_ID=i-0123456789abcdef0\n"
                            "LANG=C.UTF-8\n"
                            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
                            "REGION=eu-west-1\n");
        unsetenv("AWS_SECRET_ACCESS_KEY");
        unsetenv("AWS_ACCESS_KEY_ID");
        unsetenv("LD_PRELOAD");
}

static void test_signal_state(void **state)
{
        struct fixture *f = *state;
        struct hooks_phase_result res;
        /*
         * exec, so that the process reading its own status is the one we started: dash blocks
         * every signal while it waits for a child, and /proc/$$/status read from that child would
         * show dash's mask rather than ours.
         */
        _cleanup_free_ char *body =
                strprintf("exec grep -E '^Sig(Blk|Ign):' /proc/self/status > %s/sig", f->dir);
        _cleanup_free_ char *sig = NULL;
        struct sigaction ign = {.sa_handler = SIG_IGN}, old_int, old_pipe;
        sigset_t block, old_mask;

        sigemptyset(&block);
        sigaddset(&block, SIGUSR1);
        sigaddset(&block, SIGTERM);
        assert_int_equal(sigprocmask(SIG_BLOCK, &block, &old_mask), 0);
        assert_int_equal(sigaction(SIGINT, &ign, &old_int), 0);
        assert_int_equal(sigaction(SIGPIPE, &ign, &old_pipe), 0);

        hook(f, "10-sig", 0755, body);
        assert_int_equal(run(f, &res), 0);
        hooks_phase_result_done(&res);

        assert_int_equal(sigprocmask(SIG_SETMASK, &old_mask, NULL), 0);
        assert_int_equal(sigaction(SIGINT, &old_int, NULL), 0);
        assert_int_equal(sigaction(SIGPIPE, &old_pipe, NULL), 0);

        sig = read_text(f->dir, "sig");
        assert_string_equal(sig, "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
}

static void test_stdio_cwd_fds_pgrp(void **state)
{
        struct fixture *f = *state;
        struct hooks_phase_result res;
        _cleanup_free_ char *body =
                strprintf("exec > %s/proc 2>&1\n"
                          "readlink /proc/$$/fd/0\n"
                          "readlink /proc/$$/cwd\n"
                          "[ -e /proc/$$/fd/77 ] && echo fd77-leaked || echo fd77-closed\n"
                          "set -- $(sed 's/.*) //' /proc/$$/stat)\n"
                          "[ \"$3\" = \"$$\" ] && echo own-pgrp || echo pgrp=$3\n"
                          "read x && echo stdin-has-data || echo stdin-eof\n",
                          f->dir);
        _cleanup_free_ char *body2 =
                strprintf("[ \"$(readlink /proc/$$/fd/1)\" = \"$(readlink /proc/$$/fd/2)\" ] && "
                          "readlink /proc/$$/fd/1 | grep -q '^pipe:' && echo one-pipe > %s/pipe",
                          f->dir);
        _cleanup_free_ char *out = NULL, *pipe_out = NULL;
        int fd = open("/dev/zero", O_RDONLY); /* deliberately without O_CLOEXEC */

        assert_true(fd >= 0);
        assert_int_equal(dup2(fd, 77), 77);
        close(fd);
        hook(f, "10-proc", 0755, body);
        hook(f, "20-pipe", 0755, body2);
        assert_int_equal(run(f, &res), 0);
        hooks_phase_result_done(&res);
        close(77);

        out = read_text(f->dir, "proc");
        assert_string_equal(out, "/dev/null\n/\nfd77-closed\nown-pgrp\nstdin-eof\n");
        pipe_out = read_text(f->dir, "pipe");
        assert_string_equal(pipe_out, "one-pipe\n");
}

static void test_output_capture(void **state)
{
        struct fixture *f = *state;
        struct hooks_phase_result res;
        _cleanup_free_ char *log = NULL;
        char **t;
        int saved;

        hook(f, "10-out", 0755,
             "echo first\necho to-stderr >&2\nprintf 'crlf\\r\\n'\n"
             "head -c 10000 /dev/zero | tr '\\0' x\necho\n"
             "head -c 3800 /dev/zero | tr '\\0' a\necho\nprintf 'no newline'");
        saved = stderr_to_file(f);
        assert_int_equal(run(f, &res), 0);
        stderr_restore(saved);

        t = res.hooks[0].tail;
        assert_non_null(t);
        assert_string_equal(t[0], "first");
        assert_string_equal(t[1], "to-stderr");
        assert_string_equal(t[2], "crlf");
        /* 10000 bytes in one line: split into records of SUPERVISE_LINE_MAX. */
        assert_int_equal(strlen(t[3]), SUPERVISE_LINE_MAX);
        assert_int_equal(strlen(t[4]), SUPERVISE_LINE_MAX);
        assert_int_equal(strlen(t[5]), 10000 - 2 * SUPERVISE_LINE_MAX);
        assert_int_equal(strspn(t[5], "x"), strlen(t[5]));
        /* Exactly SUPERVISE_LINE_MAX and a newline: one record, no empty one after it. */
        assert_int_equal(strlen(t[6]), SUPERVISE_LINE_MAX);
        assert_int_equal(strspn(t[6], "a"), SUPERVISE_LINE_MAX);
        assert_string_equal(t[7], "no newline");
        assert_null(t[8]);
        assert_false(res.hooks[0].output_truncated);
        assert_int_equal(res.hooks[0].output_bytes, 6 + 10 + 6 + 10000 + 1 + 3801 + 10);
        hooks_phase_result_done(&res);

        log = read_text(f->dir, "log");
        assert_contains(log, "Running hook 10-out (pre-image)\n");
        assert_contains(log, "10-out: first\n");
        assert_contains(log, "10-out: to-stderr\n");
        assert_contains(log, "10-out: no newline\n");
        assert_contains(log, "hook 10-out (pre-image) succeeded in");
}

static void test_output_cap_and_tail(void **state)
{
        struct fixture *f = *state;
        struct hooks_phase_result res;
        _cleanup_free_ char *log = NULL;
        int saved;

        /* 2 MiB of long lines, then 30 short ones: only the tail of those survives. */
        hook(f, "10-chatty", 0755,
             "head -c 2097152 /dev/zero | tr '\\0' y\necho\n"
             "i=0; while [ $i -lt 30 ]; do echo line$i; i=$((i+1)); done");
        saved = stderr_to_file(f);
        assert_int_equal(run(f, &res), 0);
        stderr_restore(saved);

        assert_true(res.hooks[0].output_truncated);
        assert_int_equal(res.hooks[0].output_bytes, 2097152 + 1 + 30 * 6 + 20 * 1);
        assert_int_equal(strv_length(res.hooks[0].tail), SUPERVISE_TAIL_LINES);
        /* Once over the limit nothing more is logged, so the tail ends in the long line. */
        assert_int_equal(strspn(res.hooks[0].tail[SUPERVISE_TAIL_LINES - 1], "y"),
                         strlen(res.hooks[0].tail[SUPERVISE_TAIL_LINES - 1]));
        hooks_phase_result_done(&res);

        log = read_text(f->dir, "log");
        assert_contains(log, "10-chatty: output exceeds 1048576 bytes, discarding the rest\n");
        assert_contains(log, "bytes of output were discarded\n");
}

static void test_exec_failed(void **state)
{
        struct fixture *f = *state;
        struct hooks_phase_result res;
        _cleanup_free_ char *path = strprintf("%s/10-nointerp", f->phase);
        FILE *fp = fopen(path, "we");

        assert_non_null(fp);
        fputs("#!/nonexistent/interpreter\n", fp);
        fclose(fp);
        assert_int_equal(chmod(path, 0755), 0);

        assert_int_equal(run(f, &res), -ENOENT);
        assert_int_equal(res.hooks[0].status, HOOK_EXEC_FAILED);
        assert_int_equal(res.hooks[0].error, -ENOENT);
        assert_string_equal(res.hooks[0].message,
                            "hook 10-nointerp (pre-image) could not be executed: No such file or "
                            "directory (missing interpreter?)");
        hooks_phase_result_done(&res);
}

/* A helper: our argv and a minimal environment, a helper's wording, the same timeout. */
static void test_run_helper(void **state)
{
        struct fixture *f = *state;
        struct hook_result res;
        char *ok[] = {(char *)"/bin/sh",
                      (char *)"-c",
                      (char *)"echo \"$1 ${EC2_IMAGED_TEST_LEAK:-none} $PATH\"; exit $2",
                      (char *)"sh",
                      (char *)"hello",
                      (char *)"0",
                      NULL};
        char *fail[] = {(char *)"/bin/sh", (char *)"-c", (char *)"exit 2", NULL};
        char *slow[] = {(char *)"/bin/sleep", (char *)"1000", NULL};

        (void)f;
        setenv("EC2_IMAGED_TEST_LEAK", "secret", 1);
        assert_int_equal(hooks_run_helper("sh", "test", ok, 10000, &res), 0);
        assert_int_equal(res.status, HOOK_SUCCESS);
        assert_string_equal(res.tail[0], "hello none " HOOK_PATH_ENV);
        hook_result_done(&res);

        assert_int_equal(hooks_run_helper("sh", "test", fail, 10000, &res), -EPROTO);
        assert_int_equal(res.status, HOOK_EXITED);
        assert_int_equal(res.exit_status, 2);
        assert_string_equal(res.message, "helper sh (test) exited with status 2");
        hook_result_done(&res);

        assert_int_equal(hooks_run_helper("sleep", "test", slow, 200, &res), -ETIMEDOUT);
        assert_string_equal(res.message,
                            "helper sleep (test) timed out after 200 ms and was killed");
        hook_result_done(&res);
        unsetenv("EC2_IMAGED_TEST_LEAK");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_order_and_skips, setup, teardown),
                cmocka_unit_test_setup_teardown(test_no_hooks, setup, teardown),
                cmocka_unit_test_setup_teardown(test_exit_status_stops_phase, setup, teardown),
                cmocka_unit_test_setup_teardown(test_continue_on_error, setup, teardown),
                cmocka_unit_test_setup_teardown(test_timeout_kills_group, setup, teardown),
                cmocka_unit_test_setup_teardown(test_timeout_sigkill_after_grace, setup, teardown),
                cmocka_unit_test_setup_teardown(test_leftover_processes_killed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_environment, setup, teardown),
                cmocka_unit_test_setup_teardown(test_signal_state, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stdio_cwd_fds_pgrp, setup, teardown),
                cmocka_unit_test_setup_teardown(test_output_capture, setup, teardown),
                cmocka_unit_test_setup_teardown(test_output_cap_and_tail, setup, teardown),
                cmocka_unit_test_setup_teardown(test_exec_failed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_run_helper, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
