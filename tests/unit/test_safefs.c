/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The safe file operations (host/safefs*.c) on a scratch tree: an image root with hostile names
 * and symlinks that lead to an "outside" directory next to it, which must never change. Each
 * tree test runs twice: with openat2() and with the component-by-component fallback.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/safefs.h"
#include "host/safefs_home.h"
#include "host/safefs_tree.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/str.h"

struct fixture {
        char dir[64];     /* the scratch directory */
        char root[96];    /* <dir>/root: the image */
        char outside[96]; /* <dir>/outside: what the links point to */
        bool no_openat2;  /* use the fallback */
        char *manifest;   /* what the last operation printed */
        size_t manifest_len;
        FILE *out;
        struct safefs fs;
};

static int setup_with(void **state, bool no_openat2)
{
        struct fixture *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        snprintf(f->dir, sizeof(f->dir), "/tmp/test-safefs-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->root, sizeof(f->root), "%s/root", f->dir);
        snprintf(f->outside, sizeof(f->outside), "%s/outside", f->dir);
        assert_int_equal(mkdir(f->root, 0755), 0);
        assert_int_equal(mkdir(f->outside, 0755), 0);
        f->no_openat2 = no_openat2;
        log_set_target(LOG_TARGET_STDERR);
        *state = f;
        return 0;
}

static int setup(void **state)
{
        return setup_with(state, false);
}

static int setup_fallback(void **state)
{
        return setup_with(state, true);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
        return remove(p);
}

static int teardown(void **state)
{
        struct fixture *f = *state;

        nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        free(f->manifest);
        free(f);
        return 0;
}

/* Path of rel (inside the root when it starts with '/', else inside the scratch directory). */
static char *at(struct fixture *f, const char *rel)
{
        return rel[0] == '/' ? strprintf("%s%s", f->root, rel) : strprintf("%s/%s", f->dir, rel);
}

static void mkdirs(const char *path)
{
        _cleanup_free_ char *p = strdup(path);

        for (char *s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
                *s = '\0';
                mkdir(p, 0755);
                *s = '/';
        }
}

static void put(struct fixture *f, const char *rel, const char *data)
{
        _cleanup_free_ char *p = at(f, rel);
        FILE *o;

        mkdirs(p);
        o = fopen(p, "w");
        assert_non_null(o);
        fputs(data, o);
        fclose(o);
}

static void ln(struct fixture *f, const char *rel, const char *target)
{
        _cleanup_free_ char *p = at(f, rel);

        mkdirs(p);
        assert_int_equal(symlink(target, p), 0);
}

static void mkd(struct fixture *f, const char *rel)
{
        _cleanup_free_ char *p = at(f, rel);

        mkdirs(p);
        assert_int_equal(mkdir(p, 0755), 0);
}

static char *text(struct fixture *f, const char *rel)
{
        _cleanup_free_ char *p = at(f, rel);
        char buf[256] = "";
        FILE *i = fopen(p, "r");

        if (!i)
                return NULL;
        (void)!fread(buf, 1, sizeof(buf) - 1, i);
        fclose(i);
        return strdup(buf);
}

static bool present(struct fixture *f, const char *rel)
{
        _cleanup_free_ char *p = at(f, rel);
        struct stat st;

        return lstat(p, &st) == 0;
}

static void assert_text(struct fixture *f, const char *rel, const char *want)
{
        _cleanup_free_ char *t = text(f, rel);

        assert_non_null(t);
        assert_string_equal(t, want);
}

static void begin(struct fixture *f, const char *op, bool dry_run)
{
        free(f->manifest);
        f->manifest = NULL;
        f->out = open_memstream(&f->manifest, &f->manifest_len);
        assert_non_null(f->out);
        assert_int_equal(safefs_open(f->root, op, dry_run, f->out, &f->fs), 0);
        f->fs.no_openat2 = f->no_openat2;
}

static void end(struct fixture *f)
{
        safefs_close(&f->fs);
        fclose(f->out);
}

/* ---- names ---- */

static void test_escape_and_rotated_names(void **state)
{
        _cleanup_free_ char *e = safefs_escape("/a\nb\tc\\d\x01\x7f é");

        assert_string_equal(e, "/a\\nb\\tc\\\\d\\x01\\x7f é");
        for (const char *const *n =
                     (const char *const[]){"syslog.1", "x.12", "libc.so.6", "a.gz", "b.xz", "c.bz2",
                                           "d.zst", "e.old", "auth.log-20261120", ".gz", NULL};
             *n; n++)
                assert_true(safefs_is_rotated_log(*n));
        for (const char *const *n =
                     (const char *const[]){"syslog", "x.123", "x1", "a.log", "auth.log-2026112",
                                           "-123456789", "1", "x.", "gz", NULL};
             *n; n++)
                assert_false(safefs_is_rotated_log(*n));
}

/* ---- logs ---- */

static void plant_logs(struct fixture *f)
{
        _cleanup_free_ char *shadow = at(f, "/etc/shadow"), *hard = at(f, "/var/log/hard.log");
        _cleanup_free_ char *fifo = at(f, "/var/log/fifo"), *out_dir = at(f, "outside");
        _cleanup_free_ char *out_log = at(f, "outside/c.log");

        put(f, "/etc/shadow", "secret\n");
        put(f, "/var/log/x\netc/shadow", "log\n");
        put(f, "/var/log/svc/-rf", "x\n");
        put(f, "/var/log/svc/a.log", "a\n");
        put(f, "/var/log/svc/a.log.1", "old\n");
        put(f, "/var/log/svc/b.gz", "old\n");
        put(f, "/var/log/empty.log", "");
        put(f, "/var/log/journal/m/system.journal", "j\n");
        put(f, "/var/log/journal/m/system@1.journal", "j\n");
        put(f, "/var/log/journal/m/user-1000.journal~", "j\n");
        put(f, "outside/c.log", "canary\n");
        put(f, "outside/c.log.1", "canary\n");
        ln(f, "/var/log/out", out_dir);
        ln(f, "/var/log/out.1", out_log);
        ln(f, "/var/log/rel", "../../../outside");
        assert_int_equal(link(shadow, hard), 0);
        assert_int_equal(mkfifo(fifo, 0644), 0);
}

static void assert_outside_intact(struct fixture *f)
{
        assert_text(f, "/etc/shadow", "secret\n");
        assert_text(f, "outside/c.log", "canary\n");
        assert_text(f, "outside/c.log.1", "canary\n");
}

static const char logs_manifest[] = "logfiles\tremove\t/var/log/journal/m/system.journal\n"
                                    "logfiles\tremove\t/var/log/journal/m/system@1.journal\n"
                                    "logfiles\tremove\t/var/log/journal/m/user-1000.journal~\n"
                                    "logfiles\tremove\t/var/log/out.1\n"
                                    "logfiles\ttruncate\t/var/log/svc/-rf\n"
                                    "logfiles\ttruncate\t/var/log/svc/a.log\n"
                                    "logfiles\tremove\t/var/log/svc/a.log.1\n"
                                    "logfiles\tremove\t/var/log/svc/b.gz\n"
                                    "logfiles\ttruncate\t/var/log/x\\netc/shadow\n";

static void test_logs(void **state)
{
        struct fixture *f = *state;

        plant_logs(f);
        begin(f, "logfiles", true);
        assert_int_equal(safefs_logs(&f->fs, "/var/log", false), 0);
        end(f);
        assert_string_equal(f->manifest, logs_manifest);
        assert_text(f, "/var/log/svc/a.log", "a\n");
        assert_true(present(f, "/var/log/svc/a.log.1"));

        begin(f, "logfiles", false);
        assert_int_equal(safefs_logs(&f->fs, "/var/log", false), 0);
        end(f);
        assert_string_equal(f->manifest, logs_manifest);
        assert_int_equal(f->fs.n_refused, 1); /* hard.log */
        assert_outside_intact(f);
        assert_text(f, "/var/log/hard.log", "secret\n");
        assert_text(f, "/var/log/x\netc/shadow", "");
        assert_text(f, "/var/log/svc/-rf", "");
        assert_text(f, "/var/log/svc/a.log", "");
        assert_false(present(f, "/var/log/svc/a.log.1"));
        assert_false(present(f, "/var/log/svc/b.gz"));
        assert_false(present(f, "/var/log/out.1"));
        assert_true(present(f, "/var/log/out"));
        assert_true(present(f, "/var/log/fifo"));
        assert_false(present(f, "/var/log/journal/m/system.journal"));
}

static void test_logs_live_journal(void **state)
{
        struct fixture *f = *state;

        plant_logs(f);
        begin(f, "logfiles", false);
        assert_int_equal(safefs_logs(&f->fs, "/var/log", true), 0);
        end(f);
        assert_true(present(f, "/var/log/journal/m/system.journal"));
        assert_false(present(f, "/var/log/journal/m/system@1.journal"));
        assert_false(present(f, "/var/log/journal/m/user-1000.journal~"));
        assert_outside_intact(f);
}

/* A tree whose top is a symlink is not entered, a top with a symlink on the way neither. */
static void test_top_behind_a_symlink(void **state)
{
        struct fixture *f = *state;
        _cleanup_free_ char *out_dir = at(f, "outside");

        put(f, "outside/c.log", "canary\n");
        put(f, "outside/c.log.1", "canary\n");
        put(f, "/etc/shadow", "secret\n");
        mkd(f, "/var");
        ln(f, "/var/log", out_dir);
        ln(f, "/srv", "var/log");
        begin(f, "logfiles", false);
        assert_int_equal(safefs_logs(&f->fs, "/var/log", false), 0);
        assert_int_equal(safefs_remove_contents(&f->fs, "/srv", NULL), 0);
        assert_int_equal(safefs_remove_matching(&f->fs, "/var/log/*"), 0);
        assert_int_equal(safefs_remove(&f->fs, "/var/log/c.log"), 0);
        end(f);
        assert_string_equal(f->manifest, "");
        assert_outside_intact(f);
}

/* ---- removals ---- */

static void test_remove_contents(void **state)
{
        struct fixture *f = *state;
        _cleanup_free_ char *out_dir = at(f, "outside");

        put(f, "outside/c.log", "canary\n");
        put(f, "outside/c.log.1", "canary\n");
        put(f, "/etc/shadow", "secret\n");
        put(f, "/tmp/-rf", "x");
        put(f, "/tmp/a b/c/d/e", "x");
        put(f, "/tmp/*", "x");
        put(f, "/tmp/.hidden/x", "x");
        put(f, "/tmp/x\ny", "x");
        put(f, "/tmp/systemd-private-1/tmp/f", "in use");
        ln(f, "/tmp/lnk", out_dir);
        ln(f, "/tmp/d/sub", "../../../outside");
        ln(f, "/tmp/d/abs", out_dir);
        begin(f, "tmp-files", false);
        assert_int_equal(safefs_remove_contents(&f->fs, "/tmp", "systemd-private-*"), 0);
        end(f);
        assert_string_equal(f->manifest, "tmp-files\tremove\t/tmp/*\n"
                                         "tmp-files\tremove\t/tmp/-rf\n"
                                         "tmp-files\tremove\t/tmp/.hidden\n"
                                         "tmp-files\tremove\t/tmp/a b\n"
                                         "tmp-files\tremove\t/tmp/d\n"
                                         "tmp-files\tremove\t/tmp/lnk\n"
                                         "tmp-files\tremove\t/tmp/x\\ny\n");
        assert_int_equal(f->fs.n_refused, 0);
        assert_outside_intact(f);
        assert_true(present(f, "/tmp/systemd-private-1/tmp/f"));
        assert_false(present(f, "/tmp/d"));
        assert_false(present(f, "/tmp/lnk"));
        assert_false(present(f, "/tmp/a b"));
        assert_true(present(f, "/tmp"));
}

/* A tree deeper than SAFEFS_MAX_DEPTH is refused below that depth, not followed to the end. */
static void test_remove_too_deep(void **state)
{
        struct fixture *f = *state;
        _cleanup_free_ char *top = at(f, "/tmp/deep");
        int fd;

        mkd(f, "/tmp/deep");
        fd = open(top, O_RDONLY | O_DIRECTORY);
        for (int i = 0; i < SAFEFS_MAX_DEPTH + 10; i++) {
                int next;

                assert_int_equal(mkdirat(fd, "d", 0755), 0);
                next = openat(fd, "d", O_RDONLY | O_DIRECTORY);
                close(fd);
                fd = next;
        }
        close(fd);
        begin(f, "tmp-files", false);
        assert_int_equal(safefs_remove_contents(&f->fs, "/tmp", NULL), 0);
        end(f);
        assert_int_equal(f->fs.n_refused, 1);
        assert_true(present(f, "/tmp/deep/d/d"));
}

static void test_remove_matching(void **state)
{
        struct fixture *f = *state;
        _cleanup_free_ char *out_dir = at(f, "outside");

        put(f, "outside/c.log", "canary\n");
        put(f, "outside/c.log.1", "canary\n");
        put(f, "/etc/shadow", "secret\n");
        put(f, "/var/cache/apt/archives/a.deb", "x");
        put(f, "/var/cache/apt/archives/b c.deb", "x");
        put(f, "/var/cache/apt/archives/.c.deb", "x");
        put(f, "/var/cache/apt/archives/lock", "x");
        put(f, "/var/lib/cloud/instances/i-1/obj", "x");
        ln(f, "/var/lib/cloud/instance", "/var/lib/cloud/instances/i-1");
        ln(f, "/var/lib/dhclient", out_dir);
        begin(f, "op", false);
        assert_int_equal(safefs_remove_matching(&f->fs, "/var/cache/apt/archives/*.deb"), 0);
        assert_int_equal(safefs_remove_matching(&f->fs, "/var/lib/dhclient/*"), 0);
        assert_int_equal(safefs_remove(&f->fs, "/var/lib/cloud/instance"), 0);
        assert_int_equal(safefs_remove(&f->fs, "/var/lib/cloud/instances"), 0);
        assert_int_equal(safefs_remove(&f->fs, "/var/lib/cloud/none"), 0);
        end(f);
        assert_string_equal(f->manifest, "op\tremove\t/var/cache/apt/archives/a.deb\n"
                                         "op\tremove\t/var/cache/apt/archives/b c.deb\n"
                                         "op\tremove\t/var/lib/cloud/instance\n"
                                         "op\tremove\t/var/lib/cloud/instances\n");
        assert_true(present(f, "/var/cache/apt/archives/.c.deb"));
        assert_true(present(f, "/var/cache/apt/archives/lock"));
        assert_false(present(f, "/var/lib/cloud/instances"));
        assert_outside_intact(f);

        /* A pattern in the directory part, a relative path: refused as errors. */
        begin(f, "op", false);
        assert_int_equal(safefs_remove_matching(&f->fs, "/var/c*/x"), -EINVAL);
        end(f);
        begin(f, "op", false);
        assert_int_equal(safefs_remove(&f->fs, "etc/shadow"), -EINVAL);
        end(f);
        assert_outside_intact(f);
}

/* ---- homes ---- */

static void plant_homes(struct fixture *f)
{
        _cleanup_free_ char *ssh = at(f, "outside/ssh"), *home = at(f, "outside/home");

        put(f, "/root/.ssh/authorized_keys", "root-key\n");
        put(f, "/root/.bash_history", "h\n");
        put(f, "/home/a b/.bash_history", "h\n");
        put(f, "/home/a b/.ssh/authorized_keys", "ab-key\n");
        put(f, "/home/x\ny/.bash_history", "h\n");
        put(f, "/home/.hidden/.bash_history", "not a home\n");
        put(f, "/home/u/.bash_history", "h\n");
        put(f, "outside/ssh/authorized_keys", "deploy-key\n");
        put(f, "outside/home/.bash_history", "not a home\n");
        ln(f, "/home/u/.ssh", ssh);
        ln(f, "/home/w", home);
}

static char *home_files[] = {(char *)".bash_history", (char *)".ssh/authorized_keys", NULL};

static void test_home_remove(void **state)
{
        struct fixture *f = *state;

        plant_homes(f);
        begin(f, "op", false);
        assert_int_equal(safefs_home_remove(&f->fs, home_files), 0);
        end(f);
        assert_string_equal(f->manifest, "op\tremove\t/root/.bash_history\n"
                                         "op\tremove\t/root/.ssh/authorized_keys\n"
                                         "op\tremove\t/home/a b/.bash_history\n"
                                         "op\tremove\t/home/a b/.ssh/authorized_keys\n"
                                         "op\tremove\t/home/u/.bash_history\n"
                                         "op\tremove\t/home/x\\ny/.bash_history\n");
        assert_int_equal(f->fs.n_refused, 1); /* /home/u/.ssh */
        assert_text(f, "outside/ssh/authorized_keys", "deploy-key\n");
        assert_text(f, "outside/home/.bash_history", "not a home\n");
        assert_text(f, "/home/.hidden/.bash_history", "not a home\n");
        assert_false(present(f, "/home/x\ny/.bash_history"));
}

static void test_home_stash_and_restore(void **state)
{
        struct fixture *f = *state;
        _cleanup_free_ char *stash = at(f, "stash"),
                            *keys = at(f, "/home/a b/.ssh/authorized_keys");
        _cleanup_free_ char *ssh = at(f, "/home/a b/.ssh"), *real = at(f, "/home/a b/.ssh.real");
        struct timespec old[2] = {{.tv_sec = 1000000000}, {.tv_sec = 1000000000}};
        struct stat st;

        plant_homes(f);
        ln(f, "/home/a b/.ssh/authorized_keys2", "/etc/ssh/keys/ab");
        assert_int_equal(chmod(keys, 0640), 0);
        assert_int_equal(utimensat(AT_FDCWD, keys, old, 0), 0);
        if (geteuid() == 0)
                assert_int_equal(chown(keys, 1000, 1001), 0);
        assert_int_equal(mkdir(stash, 0700), 0);
        char *files[] = {(char *)".ssh/authorized_keys", (char *)".ssh/authorized_keys2", NULL};

        begin(f, "ssh-authorized-keys", false);
        assert_int_equal(safefs_home_stash(&f->fs, stash, files), 0);
        end(f);
        assert_string_equal(f->manifest,
                            "ssh-authorized-keys\tstash\t/root/.ssh/authorized_keys\n"
                            "ssh-authorized-keys\tremove\t/root/.ssh/authorized_keys\n"
                            "ssh-authorized-keys\tstash\t/home/a b/.ssh/authorized_keys\n"
                            "ssh-authorized-keys\tremove\t/home/a b/.ssh/authorized_keys\n"
                            "ssh-authorized-keys\tstash\t/home/a b/.ssh/authorized_keys2\n"
                            "ssh-authorized-keys\tremove\t/home/a b/.ssh/authorized_keys2\n");
        assert_false(present(f, "/home/a b/.ssh/authorized_keys"));
        assert_text(f, "outside/ssh/authorized_keys", "deploy-key\n");

        /* "a b" swaps .ssh for a link to root's: the restore refuses it, root keeps its key. */
        assert_int_equal(rename(ssh, real), 0);
        ln(f, "/home/a b/.ssh", "../../root/.ssh");
        begin(f, "restore", false);
        assert_int_equal(safefs_home_restore(&f->fs, stash), 0);
        end(f);
        assert_string_equal(f->manifest, "restore\trestore\t/root/.ssh/authorized_keys\n");
        assert_int_equal(f->fs.n_refused, 1);
        assert_text(f, "/root/.ssh/authorized_keys", "root-key\n");
        assert_false(present(f, "/root/.ssh/authorized_keys2"));

        /* Put back the directory: the next restore brings the file with owner, mode and times,
         * and the link as a link. */
        assert_int_equal(unlink(ssh), 0);
        assert_int_equal(rename(real, ssh), 0);
        begin(f, "restore", false);
        assert_int_equal(safefs_home_restore(&f->fs, stash), 0);
        end(f);
        assert_int_equal(f->fs.n_refused, 0);
        assert_text(f, "/home/a b/.ssh/authorized_keys", "ab-key\n");
        assert_int_equal(lstat(keys, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0640);
        assert_int_equal(st.st_mtim.tv_sec, 1000000000);
        if (geteuid() == 0) {
                assert_int_equal(st.st_uid, 1000);
                assert_int_equal(st.st_gid, 1001);
        }
        {
                _cleanup_free_ char *l = at(f, "/home/a b/.ssh/authorized_keys2");
                char target[64] = "";
                assert_int_equal(readlink(l, target, sizeof(target) - 1), 16);
                assert_string_equal(target, "/etc/ssh/keys/ab");
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_escape_and_rotated_names),
                cmocka_unit_test_setup_teardown(test_logs, setup, teardown),
                cmocka_unit_test_setup_teardown(test_logs, setup_fallback, teardown),
                cmocka_unit_test_setup_teardown(test_logs_live_journal, setup, teardown),
                cmocka_unit_test_setup_teardown(test_top_behind_a_symlink, setup, teardown),
                cmocka_unit_test_setup_teardown(test_top_behind_a_symlink, setup_fallback,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_remove_contents, setup, teardown),
                cmocka_unit_test_setup_teardown(test_remove_contents, setup_fallback, teardown),
                cmocka_unit_test_setup_teardown(test_remove_too_deep, setup, teardown),
                cmocka_unit_test_setup_teardown(test_remove_matching, setup, teardown),
                cmocka_unit_test_setup_teardown(test_remove_matching, setup_fallback, teardown),
                cmocka_unit_test_setup_teardown(test_home_remove, setup, teardown),
                cmocka_unit_test_setup_teardown(test_home_remove, setup_fallback, teardown),
                cmocka_unit_test_setup_teardown(test_home_stash_and_restore, setup, teardown),
                cmocka_unit_test_setup_teardown(test_home_stash_and_restore, setup_fallback,
                                                teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
