/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The fixture of the hook tests (test_hooks.c, test_hooks_list.c): a temporary hooks directory
 * with a pre-image.d, options and environment for it, and helpers that write hooks and read what
 * they left behind.
 */
#pragma once

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/hooks.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/parse.h"
#include "util/str.h"

struct fixture {
        char dir[64];   /* the hooks directory */
        char phase[96]; /* <dir>/pre-image.d */
        struct hooks_opts opts;
        struct hook_env env;
};

static inline int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        snprintf(f->dir, sizeof(f->dir), "/tmp/test-hooks-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        assert_int_equal(chmod(f->dir, 0755), 0);
        snprintf(f->phase, sizeof(f->phase), "%s/pre-image.d", f->dir);
        assert_int_equal(mkdir(f->phase, 0755), 0);
        assert_int_equal(chmod(f->phase, 0755), 0); /* whatever the umask */
        f->opts = (struct hooks_opts){
                .hooks_dir = f->dir,
                .required_uid = geteuid(),
                .timeout_ms = 5000,
                .kill_grace_ms = 200,
        };
        f->env = (struct hook_env){
                .run_id = "run-1",
                .instance_id = "i-0123456789abcdef0",
                .region = "eu-west-1",
                .image_name = "web-2026-11-26",
        };
        log_set_target(LOG_TARGET_STDERR);
        *state = f;
        return 0;
}

static inline int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        return remove(path);
}

static inline int teardown(void **state)
{
        struct fixture *f = *state;

        nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        free(f);
        return 0;
}

/* Write <phase dir>/name as a /bin/sh script with the given body and mode. */
static inline char *add_hook(struct fixture *f, const char *name, mode_t mode, const char *body)
{
        char *path = strprintf("%s/%s", f->phase, name);
        FILE *fp;

        assert_non_null(path);
        fp = fopen(path, "we");
        assert_non_null(fp);
        fprintf(fp, "#!/bin/sh\n%s\n", body);
        assert_int_equal(fclose(fp), 0);
        assert_int_equal(chmod(path, mode), 0);
        return path;
}

static inline void hook(struct fixture *f, const char *name, mode_t mode, const char *body)
{
        free(add_hook(f, name, mode, body));
}

/* A hook that appends its name to <dir>/out, then runs `extra`. */
static inline void appender(struct fixture *f, const char *name, mode_t mode, const char *extra)
{
        _cleanup_free_ char *body =
                strprintf("echo \"$(basename \"$0\")\" >> %s/out\n%s", f->dir, extra);

        assert_non_null(body);
        hook(f, name, mode, body);
}

static inline char *read_text(const char *dir, const char *name)
{
        _cleanup_free_ char *path = strprintf("%s/%s", dir, name);
        char *s = NULL;
        size_t n = 0;
        FILE *fp, *mem;
        int c;

        assert_non_null(path);
        fp = fopen(path, "re");
        if (!fp)
                return NULL;
        mem = open_memstream(&s, &n);
        assert_non_null(mem);
        while ((c = fgetc(fp)) != EOF)
                fputc(c, mem);
        fclose(fp);
        fclose(mem);
        return s;
}

static inline void assert_contains(const char *haystack, const char *needle)
{
        if (!haystack || !strstr(haystack, needle))
                fail_msg("'%s' lacks '%s'", haystack ? haystack : "(null)", needle);
}

/* Dead means gone, or a zombie waiting for whoever inherited it. */
static inline bool process_dead(pid_t pid)
{
        char path[64], buf[512], st;
        const char *p;
        FILE *fp;
        size_t n;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        fp = fopen(path, "re");
        if (!fp)
                return true;
        n = fread(buf, 1, sizeof(buf) - 1, fp);
        fclose(fp);
        buf[n] = '\0';
        p = strrchr(buf, ')');
        return !p || sscanf(p + 1, " %c", &st) != 1 || st == 'Z' || st == 'X';
}

static inline pid_t read_pid(const char *dir, const char *name)
{
        _cleanup_free_ char *s = read_text(dir, name);
        unsigned pid;

        assert_non_null(s);
        s[strcspn(s, "\n")] = '\0';
        assert_int_equal(safe_atou(s, &pid), 0);
        return (pid_t)pid;
}

static inline int run(struct fixture *f, struct hooks_phase_result *res)
{
        return hooks_run_phase(&f->opts, HOOK_PHASE_PRE_IMAGE, &f->env, res);
}

/* Send our stderr (where the log goes) to <dir>/log while fn runs; returns the old stderr. */
static inline int stderr_to_file(struct fixture *f)
{
        _cleanup_free_ char *path = strprintf("%s/log", f->dir);
        int saved = dup(STDERR_FILENO), fd;

        assert_true(saved >= 0);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
        close(fd);
        return saved;
}

static inline void stderr_restore(int saved)
{
        assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
        close(saved);
}
