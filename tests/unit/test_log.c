/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log_hold(): while held, nothing reaches the log's file descriptor; on release the held records
 * come out in the order they were made, and past the bound the extra ones are counted and
 * reported instead of kept. stderr is pointed at a temporary file for the test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"

struct capture {
        char path[64];
        int fd;           /* the temporary file */
        int saved_stderr; /* the real stderr, while captured */
};

static int setup(void **state)
{
        static struct capture c;

        snprintf(c.path, sizeof(c.path), "/tmp/ec2-imaged-log-XXXXXX");
        c.fd = mkstemp(c.path);
        assert_true(c.fd >= 0);
        c.saved_stderr = -1;
        log_set_target(LOG_TARGET_STDERR);
        log_set_max_level(LOG_DEBUG);
        *state = &c;
        return 0;
}

static int teardown(void **state)
{
        struct capture *c = *state;

        close(c->fd);
        unlink(c->path);
        return 0;
}

/* stderr into the file from its start; cmocka's own reports must not go there, so assertions
 * come after capture_end(). */
static void capture_begin(struct capture *c)
{
        fflush(stderr);
        assert_int_equal(ftruncate(c->fd, 0), 0);
        c->saved_stderr = dup(STDERR_FILENO);
        assert_true(c->saved_stderr >= 0);
        assert_int_equal(dup2(c->fd, STDERR_FILENO), STDERR_FILENO);
        assert_int_equal(lseek(STDERR_FILENO, 0, SEEK_SET), 0);
}

static void capture_end(struct capture *c)
{
        fflush(stderr);
        dup2(c->saved_stderr, STDERR_FILENO);
        close(c->saved_stderr);
        c->saved_stderr = -1;
}

static off_t written(const struct capture *c)
{
        struct stat st;

        if (fstat(c->fd, &st) < 0)
                return -1;
        return st.st_size;
}

/* What was written to the file, as one string (the caller frees it). */
static char *contents(const struct capture *c)
{
        off_t n = written(c);
        char *s;

        assert_true(n >= 0);
        s = calloc(1, (size_t)n + 1);
        assert_non_null(s);
        assert_int_equal(pread(c->fd, s, (size_t)n, 0), n);
        return s;
}

static void test_held_then_in_order(void **state)
{
        struct capture *c = *state;
        off_t before, during;
        int r;
        char *s;

        capture_begin(c);
        log_info("before the freeze");
        before = written(c);
        log_hold(true);
        log_info("held %d", 1);
        log_debug("held %d", 2);
        log_struct(LOG_NOTICE, "IMAGE_ID=ami-1\n", "held %d", 3);
        r = log_error_errno(-5, "held %d: %m", 4);
        during = written(c);
        log_hold(false);
        log_info("after the thaw");
        capture_end(c);

        assert_true(before > 0);
        assert_int_equal(r, -5);
        /* Nothing at all reached the file while held. */
        assert_int_equal(during, before);
        assert_false(log_is_held());
        s = contents(c);
        assert_string_equal(s, "ec2-imaged: before the freeze\n"
                               "ec2-imaged: held 1\n"
                               "ec2-imaged: held 2\n"
                               "ec2-imaged: held 3\n"
                               "ec2-imaged: held 4: Input/output error\n"
                               "ec2-imaged: after the thaw\n");
        free(s);
}

/* Past 256 KiB of held text, records are dropped, counted, and the count is logged last. */
static void test_bounded(void **state)
{
        struct capture *c = *state;
        char big[1000];
        int kept = 0, dropped = 0;
        off_t during;
        char *s, *p;

        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        capture_begin(c);
        log_hold(true);
        for (int i = 0; i < 400; i++)
                log_info("%04d %s", i, big);
        during = written(c);
        log_hold(false);
        capture_end(c);

        assert_int_equal(during, 0);
        s = contents(c);
        p = s;
        /* The first ones, whole and in order; then the report of the rest. */
        for (int i = 0; i < 400; i++) {
                char line[1100];
                int n = snprintf(line, sizeof(line), "ec2-imaged: %04d %s\n", i, big);

                if (strncmp(p, line, (size_t)n) != 0)
                        break;
                p += n;
                kept++;
        }
        assert_true(kept >= 200 && kept < 400);
        assert_int_equal(sscanf(p, "ec2-imaged: %d log records were dropped", &dropped), 1);
        assert_int_equal(kept + dropped, 400);
        assert_non_null(strstr(p, "while filesystems were frozen\n"));
        free(s);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_held_then_in_order),
                cmocka_unit_test(test_bounded),
        };

        return cmocka_run_group_tests_name("log", tests, setup, teardown);
}
