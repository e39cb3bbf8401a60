/* SPDX-License-Identifier: Apache-2.0 */
/* The daemon's wire protocols: worker progress messages and control requests. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/control.h"

static void test_progress_round_trip(void **state)
{
        char *mounts[] = {"/a", "/b", NULL};
        struct run_state run = {
                .run_id = "3f2a0c1e-0000-4000-8000-000000000001",
                .phase = PHASE_FREEZING,
                .mode = MODE_NO_REBOOT,
                .frozen_mounts = mounts,
        };
        char msg[PROGRESS_MSG_MAX + 1];
        struct progress p;
        int sp[2];
        ssize_t n;

        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
        progress_send(sp[1], &run);
        run.phase = PHASE_WAITING;
        run.image_id = "ami-0123456789abcdef0";
        progress_send(sp[1], &run);

        n = recv(sp[0], msg, sizeof(msg), 0);
        assert_true(n > 0);
        assert_int_equal(progress_parse(msg, (size_t)n, &p), 0);
        assert_int_equal(p.phase, PHASE_FREEZING);
        assert_string_equal(p.run_id, run.run_id);
        assert_string_equal(p.image_id, "");
        assert_string_equal(p.mode, "no-reboot");
        assert_int_equal(p.n_mounts, 2);

        n = recv(sp[0], msg, sizeof(msg), 0);
        assert_int_equal(progress_parse(msg, (size_t)n, &p), 0);
        assert_int_equal(p.phase, PHASE_WAITING);
        assert_string_equal(p.image_id, "ami-0123456789abcdef0");

        /* A closed daemon end: no SIGPIPE, nothing blocks. */
        close(sp[0]);
        progress_send(sp[1], &run);
        close(sp[1]);
}

static void test_progress_rejected(void **state)
{
        static const char *const bad[] = {
                "",
                "phase=sideways\n",
                "run_id=x\n",
                "phase=waiting\nimage_id=ami 1\n",
                "phase=waiting\nmounts=-1\n",
                "phase=waiting\nmounts=99999\n",
                "phase=waiting\nno equals sign\n",
                "phase=waiting\nrun_id="
                "0123456789012345678901234567890123456789012345678901234567890123456789\n",
        };
        static const char newer[] = "phase=done\nlater=ignored\n";
        struct progress p;

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_int_equal(progress_parse(bad[i], strlen(bad[i]), &p), -EBADMSG);
        assert_int_equal(progress_parse(newer, strlen(newer), &p), 0);
        assert_int_equal(p.phase, PHASE_DONE);
}

static void test_requests(void **state)
{
        enum control_request r;

        assert_int_equal(control_parse_request("trigger", 7, &r), 0);
        assert_int_equal(r, CONTROL_TRIGGER);
        assert_int_equal(control_parse_request("trigger --wait\n", 15, &r), 0);
        assert_int_equal(r, CONTROL_TRIGGER_WAIT);
        assert_int_equal(control_parse_request("trigger --now", 13, &r), -EBADMSG);
        assert_int_equal(control_parse_request("", 0, &r), -EBADMSG);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_progress_round_trip),
                cmocka_unit_test(test_progress_rejected),
                cmocka_unit_test(test_requests),
        };
        return cmocka_run_group_tests_name("control", tests, NULL, NULL);
}
