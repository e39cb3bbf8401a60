/* SPDX-License-Identifier: Apache-2.0 */
/* Bounded reads of a descriptor and of optional files (util/fileio.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/fileio.h"
#include "util/macro.h"
#include "util/str.h"

/* A socketpair's far end gets n packets of 4096 bytes, packet i filled with 'a' + i. */
static int seqpacket_with(unsigned n)
{
        char packet[4096];
        int sv[2];

        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        for (unsigned i = 0; i < n; i++) {
                memset(packet, 'a' + (int)i, sizeof(packet));
                assert_int_equal(send(sv[1], packet, sizeof(packet), 0), sizeof(packet));
        }
        close(sv[1]);
        return sv[0];
}

static void test_read_fd_seqpacket(void **state)
{
        char *buf;
        size_t len;
        int fd = seqpacket_with(5);

        /* Every packet arrives whole, in order, and the buffer grows past its first size. */
        assert_int_equal(read_fd_bounded(fd, false, 5 * 4096, &buf, &len), 0);
        assert_int_equal(len, 5 * 4096);
        for (unsigned i = 0; i < 5; i++)
                for (size_t j = 0; j < 4096; j++)
                        if (buf[i * 4096 + j] != 'a' + (int)i)
                                fail_msg("byte %zu of packet %u is '%c'", j, i, buf[i * 4096 + j]);
        assert_int_equal(buf[len], '\0');
        free(buf);
        close(fd);

        fd = seqpacket_with(5);
        assert_int_equal(read_fd_bounded(fd, false, 5 * 4096 - 1, &buf, &len), -EFBIG);
        close(fd);
}

static void test_read_fd_positional(void **state)
{
        int fd = memfd_create("test", MFD_CLOEXEC);
        char *buf;
        size_t len;

        assert_true(fd >= 0);
        assert_int_equal(write_all(fd, "hello, world", 12), 0);
        /* From offset 0 whatever the descriptor's offset (now at the end), which stays. */
        assert_int_equal(read_fd_bounded(fd, true, 12, &buf, &len), 0);
        assert_int_equal(len, 12);
        assert_string_equal(buf, "hello, world");
        free(buf);
        assert_int_equal(lseek(fd, 0, SEEK_CUR), 12);
        assert_int_equal(read_fd_bounded(fd, true, 11, &buf, &len), -EFBIG);
        close(fd);
}

static void test_read_file_in(void **state)
{
        char dir[] = "/tmp/ec2-imaged-fileio-XXXXXX";
        char *path, *buf = (char *)"untouched";
        size_t len = 0;

        assert_non_null(mkdtemp(dir));
        assert_int_equal(read_file_in(dir, "absent", 10, &buf, &len), 0);
        assert_null(buf);
        path = strprintf("%s/present", dir);
        assert_int_equal(write_file_atomic(path, "abc\n", 4, 0600), 0);
        assert_int_equal(read_file_in(dir, "present", 10, &buf, &len), 0);
        assert_int_equal(len, 4);
        assert_string_equal(buf, "abc\n");
        free(buf);
        assert_int_equal(read_file_in(dir, "present", 3, &buf, &len), -EFBIG);
        unlink(path);
        rmdir(dir);
        free(path);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_read_fd_seqpacket),
                cmocka_unit_test(test_read_fd_positional),
                cmocka_unit_test(test_read_file_in),
        };
        return cmocka_run_group_tests_name("fileio", tests, NULL, NULL);
}
