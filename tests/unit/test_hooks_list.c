/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Hook vetting, through hooks_run_phase(): writable hooks and directories (and the directories
 * above them, up to "/"), owners, symlinks and names are refused before anything runs, each with
 * a message naming the path and the reason.
 */
#include "hooks_fixture.h"

static void test_refused_writable_hook(void **state)
{
        struct fixture *f = *state;
        struct hooks_phase_result res;
        _cleanup_free_ char *bad = NULL, *expect = NULL, *out = NULL, *text = NULL;

        appender(f, "10-ok", 0755, "");
        bad = add_hook(f, "20-bad", 0777, "true");
        appender(f, "30-ok", 0755, "");
        hook(f, "40-group", 0775, "true");

        /* A refusal stops the phase before anything runs, and names every refused file. */
        assert_int_equal(run(f, &res), -EPERM);
        assert_int_equal(res.n_hooks, 2);
        assert_int_equal(res.hooks[0].status, HOOK_REFUSED);
        expect =
                strprintf("hook 20-bad (pre-image) refused: %s is world-writable (mode 0777)", bad);
        assert_string_equal(res.hooks[0].message, expect);
        assert_contains(res.hooks[1].message, "40-group is group-writable (mode 0775)");
        assert_contains(res.message, "2 hooks of phase pre-image failed");
        hooks_phase_result_done(&res);
        assert_null(read_text(f->dir, "out"));

        assert_int_equal(hooks_dry_run_phase(&f->opts, HOOK_PHASE_PRE_IMAGE, &text), 2);
        assert_contains(text, "pre-image: 20-bad REFUSED: ");
        assert_contains(text, "pre-image: 10-ok would run\n");

        /* With continue_on_error the others run; the phase still fails. */
        f->opts.continue_on_error = true;
        assert_int_equal(run(f, &res), -EPERM);
        assert_int_equal(res.n_hooks, 4);
        assert_int_equal(res.n_failed, 2);
        hooks_phase_result_done(&res);
        out = read_text(f->dir, "out");
        assert_string_equal(out, "10-ok\n30-ok\n");
}

static void test_refused_directories(void **state)
{
        struct fixture *f = *state;
        struct hooks_phase_result res;
        _cleanup_free_ char *expect = NULL, *text = NULL;

        appender(f, "10-ok", 0755, "");

        assert_int_equal(chmod(f->phase, 0775), 0);
        assert_int_equal(run(f, &res), -EPERM);
        expect = strprintf("hooks of phase pre-image refused: hooks directory %s is "
                           "group-writable (mode 0775)",
                           f->phase);
        assert_string_equal(res.message, expect);
        assert_int_equal(res.n_hooks, 0);
        hooks_phase_result_done(&res);
        assert_int_equal(hooks_dry_run_phase(&f->opts, HOOK_PHASE_PRE_IMAGE, &text), 1);
        assert_contains(text, "pre-image: all hooks REFUSED: hooks directory ");
        assert_int_equal(chmod(f->phase, 0755), 0);

        assert_int_equal(chmod(f->dir, 01777), 0);
        assert_int_equal(run(f, &res), -EPERM);
        free(expect);
        expect = strprintf("hooks of phase pre-image refused: hooks directory %s is "
                           "world-writable (mode 1777)",
                           f->dir);
        assert_string_equal(res.message, expect);
        hooks_phase_result_done(&res);
        assert_int_equal(chmod(f->dir, 0755), 0);

        assert_null(read_text(f->dir, "out"));
        assert_int_equal(run(f, &res), 0);
        hooks_phase_result_done(&res);
}

static void test_refused_owner(void **state)
{
        struct fixture *f = *state;
        struct hooks_phase_result res;
        _cleanup_free_ char *bad = NULL, *expect = NULL;
        uid_t me = geteuid();

        /* The required owner is a parameter, so this part works without root too. */
        hook(f, "10-mine", 0755, "true");
        f->opts.required_uid = me + 1;
        assert_int_equal(run(f, &res), -EPERM);
        expect = strprintf("hooks of phase pre-image refused: hooks directory %s is owned by "
                           "uid %u, not %u",
                           f->dir, (unsigned)me, (unsigned)me + 1);
        assert_string_equal(res.message, expect);
        hooks_phase_result_done(&res);
        f->opts.required_uid = me;

        if (me != 0) {
                print_message("not root: skipping the chown part\n");
                return;
        }
        bad = add_hook(f, "20-nobody", 0755, "true");
        assert_int_equal(chown(bad, 65534, 65534), 0);
        assert_int_equal(run(f, &res), -EPERM);
        free(expect);
        expect = strprintf("hook 20-nobody (pre-image) refused: %s is owned by uid 65534, not 0",
                           bad);
        assert_string_equal(res.hooks[0].message, expect);
        hooks_phase_result_done(&res);
        assert_int_equal(unlink(bad), 0);

        assert_int_equal(chown(f->phase, 65534, 65534), 0);
        assert_int_equal(run(f, &res), -EPERM);
        assert_contains(res.message, "pre-image.d is owned by uid 65534, not 0");
        hooks_phase_result_done(&res);
}

static void test_symlinks_and_names(void **state)
{
        struct fixture *f = *state;
        struct hooks_phase_result res;
        _cleanup_free_ char *lib = strprintf("%s/lib", f->dir), *good = NULL, *bad = NULL,
                            *link = NULL, *out = NULL;
        FILE *fp;

        assert_int_equal(mkdir(lib, 0755), 0);
        assert_int_equal(chmod(lib, 0755), 0);
        good = strprintf("%s/good", lib);
        bad = strprintf("%s/bad", lib);
        fp = fopen(good, "we");
        fprintf(fp, "#!/bin/sh\necho linked >> %s/out\n", f->dir);
        fclose(fp);
        assert_int_equal(chmod(good, 0755), 0);
        fp = fopen(bad, "we");
        fputs("#!/bin/sh\ntrue\n", fp);
        fclose(fp);
        assert_int_equal(chmod(bad, 0757), 0);

        link = strprintf("%s/10-good", f->phase);
        assert_int_equal(symlink(good, link), 0);
        assert_int_equal(run(f, &res), 0);
        hooks_phase_result_done(&res);
        out = read_text(f->dir, "out");
        assert_string_equal(out, "linked\n");

        free(link);
        link = strprintf("%s/20-bad", f->phase);
        assert_int_equal(symlink(bad, link), 0);
        free(link);
        link = strprintf("%s/30-dangling", f->phase);
        assert_int_equal(symlink("/nonexistent/hook", link), 0);
        hook(f, "40-new\nline", 0755, "true");
        assert_int_equal(run(f, &res), -EPERM);
        assert_int_equal(res.n_hooks, 3);
        assert_contains(res.hooks[0].message, "20-bad is a symlink to ");
        assert_contains(res.hooks[0].message, "/lib/bad, which is world-writable (mode 0757)");
        assert_contains(res.hooks[1].message, "30-dangling is a dangling symlink");
        /* Escaped wherever it is shown, so that it cannot add journald fields. */
        assert_string_equal(res.hooks[2].name, "40-new\\nline");
        assert_contains(res.hooks[2].message, "/pre-image.d/40-new\\nline has control characters "
                                              "in its name");
        hooks_phase_result_done(&res);

        /* The target's directory counts, too. */
        assert_int_equal(unlink(link), 0);
        assert_int_equal(chmod(bad, 0755), 0);
        assert_int_equal(chmod(lib, 0777), 0);
        free(link);
        link = strprintf("%s/40-new\nline", f->phase);
        assert_int_equal(unlink(link), 0);
        assert_int_equal(run(f, &res), -EPERM);
        assert_contains(res.message, "/lib is world-writable (mode 0777)");
        hooks_phase_result_done(&res);
}
/* Make <base>/<name> as a directory with mode, whatever the umask. */
static char *mkdir_mode(const char *base, const char *name, mode_t mode)
{
        char *p = strprintf("%s/%s", base, name);

        assert_non_null(p);
        assert_int_equal(mkdir(p, 0700), 0);
        assert_int_equal(chmod(p, mode), 0);
        return p;
}

/*
 * Every directory above the hooks directory counts, up to "/": one that others may write
 * without the sticky bit (they could move the hooks aside and put others there) refuses every
 * hook, by name; a sticky one (as /tmp is) does not.
 */
static void test_refused_unsafe_ancestors(void **state)
{
        struct fixture *f = *state;
        struct hooks_phase_result res;
        _cleanup_free_ char *ww = mkdir_mode(f->dir, "ww", 0777);
        _cleanup_free_ char *hooks = mkdir_mode(ww, "hooks", 0755);
        _cleanup_free_ char *phase = mkdir_mode(hooks, "pre-image.d", 0755);
        _cleanup_free_ char *expect = NULL, *text = NULL, *hook_path = NULL, *out = NULL;
        FILE *fp;

        hook_path = strprintf("%s/10-deep", phase);
        fp = fopen(hook_path, "we");
        assert_non_null(fp);
        fprintf(fp, "#!/bin/sh\necho deep >> %s/out\n", f->dir);
        fclose(fp);
        assert_int_equal(chmod(hook_path, 0755), 0);
        f->opts.hooks_dir = hooks;

        assert_int_equal(run(f, &res), -EPERM);
        expect = strprintf("hooks of phase pre-image refused: hooks directory %s: %s is "
                           "world-writable (mode 0777) and not sticky",
                           hooks, ww);
        assert_string_equal(res.message, expect);
        hooks_phase_result_done(&res);
        assert_int_equal(hooks_dry_run_phase(&f->opts, HOOK_PHASE_PRE_IMAGE, &text), 1);
        assert_contains(text, "pre-image: all hooks REFUSED: hooks directory ");
        assert_null(read_text(f->dir, "out"));

        /* Sticky, as /tmp is: others cannot rename or remove what they do not own. */
        assert_int_equal(chmod(ww, 01777), 0);
        assert_int_equal(run(f, &res), 0);
        hooks_phase_result_done(&res);
        out = read_text(f->dir, "out");
        assert_string_equal(out, "deep\n");

        if (geteuid() != 0) {
                print_message("not root: skipping the chown part\n");
                return;
        }
        assert_int_equal(chmod(ww, 0755), 0);
        assert_int_equal(chown(ww, 65534, 65534), 0);
        assert_int_equal(run(f, &res), -EPERM);
        free(expect);
        expect = strprintf("hooks of phase pre-image refused: hooks directory %s: %s is owned "
                           "by uid 65534, neither root nor 0",
                           hooks, ww);
        assert_string_equal(res.message, expect);
        hooks_phase_result_done(&res);
}

/* The same for what a symlink hook points at: the target's grandparent here. */
static void test_refused_symlink_target_ancestor(void **state)
{
        struct fixture *f = *state;
        struct hooks_phase_result res;
        _cleanup_free_ char *opt = mkdir_mode(f->dir, "opt", 0777);
        _cleanup_free_ char *bin = mkdir_mode(opt, "bin", 0755);
        _cleanup_free_ char *target = strprintf("%s/hook", bin);
        _cleanup_free_ char *link = strprintf("%s/10-linked", f->phase);
        _cleanup_free_ char *expect = NULL;
        FILE *fp = fopen(target, "we");

        assert_non_null(fp);
        fprintf(fp, "#!/bin/sh\necho linked >> %s/out\n", f->dir);
        fclose(fp);
        assert_int_equal(chmod(target, 0755), 0);
        assert_int_equal(symlink(target, link), 0);

        assert_int_equal(run(f, &res), -EPERM);
        expect = strprintf("hook 10-linked (pre-image) refused: %s is a symlink to %s, and %s is "
                           "world-writable (mode 0777) and not sticky",
                           link, target, opt);
        assert_string_equal(res.hooks[0].message, expect);
        hooks_phase_result_done(&res);
        assert_null(read_text(f->dir, "out"));

        assert_int_equal(chmod(opt, 0755), 0);
        assert_int_equal(run(f, &res), 0);
        hooks_phase_result_done(&res);
}

/*
 * Each hook is vetted again right before it runs: one that an earlier hook of the phase made
 * world-writable is refused then, with the same message as a refusal at listing time.
 */
static void test_refused_right_before_it_runs(void **state)
{
        struct fixture *f = *state;
        struct hooks_phase_result res;
        _cleanup_free_ char *body = strprintf("chmod 0777 %s/20-late", f->phase);
        _cleanup_free_ char *late = NULL, *expect = NULL;

        hook(f, "10-spoil", 0755, body);
        late = add_hook(f, "20-late", 0755, "true");
        assert_int_equal(run(f, &res), -EPERM);
        assert_int_equal(res.n_hooks, 2);
        assert_int_equal(res.hooks[0].status, HOOK_SUCCESS);
        assert_int_equal(res.hooks[1].status, HOOK_REFUSED);
        expect = strprintf("hook 20-late (pre-image) refused: %s is world-writable (mode 0777)",
                           late);
        assert_string_equal(res.hooks[1].message, expect);
        hooks_phase_result_done(&res);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_refused_writable_hook, setup, teardown),
                cmocka_unit_test_setup_teardown(test_refused_right_before_it_runs, setup, teardown),
                cmocka_unit_test_setup_teardown(test_refused_directories, setup, teardown),
                cmocka_unit_test_setup_teardown(test_refused_owner, setup, teardown),
                cmocka_unit_test_setup_teardown(test_symlinks_and_names, setup, teardown),
                cmocka_unit_test_setup_teardown(test_refused_unsafe_ancestors, setup, teardown),
                cmocka_unit_test_setup_teardown(test_refused_symlink_target_ancestor, setup,
                                                teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
