/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Mount selection from fake mountinfo files: what "auto" picks and skips, explicit lists and their
 * errors, bind mount dedup, order (loop backing files from a fake sysfs tree), escaping. Nothing
 * here freezes anything: the mountinfo files describe mounts that do not exist, and only
 * freeze_select(), mountinfo_select() and the set's bookkeeping run.
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
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/freeze.h"
#include "host/mountinfo.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/str.h"

/* A mountinfo "file" in memory, reachable by path through /proc/self/fd. */
struct fake {
        int fd;
        char path[64];
};

static void fake_open(struct fake *f, const char *text)
{
        f->fd = memfd_create("mountinfo", MFD_CLOEXEC);
        assert_true(f->fd >= 0);
        assert_int_equal(write(f->fd, text, strlen(text)), (ssize_t)strlen(text));
        snprintf(f->path, sizeof(f->path), "/proc/self/fd/%d", f->fd);
}

static void fake_close(struct fake *f)
{
        close(f->fd);
}

/* Log lines go to stderr; catch them so tests can check that an error names the mount. */
static int saved_stderr = -1, capture_fd = -1;

static void capture_start(void)
{
        fflush(stderr);
        capture_fd = memfd_create("stderr", MFD_CLOEXEC);
        assert_true(capture_fd >= 0);
        saved_stderr = dup(STDERR_FILENO);
        dup2(capture_fd, STDERR_FILENO);
}

static char *capture_stop(void)
{
        char *s = calloc(1, 8192);

        fflush(stderr);
        dup2(saved_stderr, STDERR_FILENO);
        close(saved_stderr);
        assert_non_null(s);
        assert_true(pread(capture_fd, s, 8191, 0) >= 0);
        close(capture_fd);
        return s;
}

/* ------------------------------------------------------------------ a fake sysfs */

/* A sysfs tree in a temporary directory: dev/block/MAJ:MIN entries, loop/backing_file... */
struct fake_sys {
        char root[128];
};

/* Every tree lives under this one, which the group's teardown removes even after a failure. */
static char fake_sys_base[] = "/tmp/test_freeze_select.XXXXXX";

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
        return remove(path);
}

static int fake_sys_setup(void **state)
{
        return mkdtemp(fake_sys_base) ? 0 : -1;
}

static int fake_sys_teardown(void **state)
{
        return nftw(fake_sys_base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void fake_sys_open(struct fake_sys *s)
{
        snprintf(s->root, sizeof(s->root), "%s/sys.XXXXXX", fake_sys_base);
        assert_non_null(mkdtemp(s->root));
}

static void fake_sys_close(struct fake_sys *s)
{
        assert_int_equal(nftw(s->root, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
}

/* ROOT/rel with its parent directories, for a file or a link. */
static char *fake_sys_path(const struct fake_sys *s, const char *rel)
{
        char *path = strprintf("%s/%s", s->root, rel);

        assert_non_null(path);
        for (char *p = path + strlen(s->root) + 1; (p = strchr(p, '/')); p++) {
                *p = '\0';
                assert_true(mkdir(path, 0755) == 0 || errno == EEXIST);
                *p = '/';
        }
        return path;
}

static void fake_sys_file(const struct fake_sys *s, const char *rel, const char *text)
{
        char *path = fake_sys_path(s, rel);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        close(fd);
        free(path);
}

static void fake_sys_link(const struct fake_sys *s, const char *rel, const char *target)
{
        char *path = fake_sys_path(s, rel);

        assert_int_equal(symlink(target, path), 0);
        free(path);
}

/* A loop device MAJ:MIN (its sysfs directory as dev/block/MAJ:MIN) backed by FILE. */
static void fake_loop(const struct fake_sys *s, const char *dev, const char *file)
{
        char *rel = strprintf("dev/block/%s/loop/backing_file", dev);
        char *text = strprintf("%s\n", file);

        fake_sys_file(s, rel, text);
        free(rel);
        free(text);
}

/* ------------------------------------------------------------------ selection */

/*
 * Run mountinfo_select on text, with the sysfs tree sys (NULL: an empty one, so that no loop
 * device of this machine takes part); on success compare with the expected NULL-terminated list.
 */
static int select_sys(const char *text, const struct fake_sys *sys, const char *const *configured,
                      const char *const *want, char **ret_log)
{
        struct fake f;
        struct fake_sys empty;
        char **got = NULL;
        int r;

        if (!sys)
                fake_sys_open(&empty);
        fake_open(&f, text);
        capture_start();
        r = mountinfo_select(configured, f.path, sys ? sys->root : empty.root, false, &got);
        if (!sys)
                fake_sys_close(&empty);
        if (ret_log)
                *ret_log = capture_stop();
        else
                free(capture_stop());
        fake_close(&f);
        if (r < 0) {
                assert_null(got);
                return r;
        }
        assert_non_null(got);
        for (size_t i = 0; want && want[i]; i++) {
                assert_non_null(got[i]);
                assert_string_equal(got[i], want[i]);
        }
        assert_int_equal(strv_length(got), want ? strv_length((char *const *)want) : 0);
        strv_free(got);
        return r;
}

static int select_from(const char *text, const char *const *configured, const char *const *want,
                       char **ret_log)
{
        return select_sys(text, NULL, configured, want, ret_log);
}

/* A machine with every kind of mount auto must tell apart. */
static const char *const MACHINE =
        "22 27 0:21 / /proc rw,relatime - proc proc rw\n"
        "23 27 0:22 / /sys rw,relatime - sysfs sysfs rw\n"
        "24 27 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw,size=1234k,mode=755\n"
        "25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw\n"
        "27 1 259:1 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p1 rw,discard\n"
        "30 27 259:3 / /data rw,noatime shared:5 - xfs /dev/nvme1n1 rw,inode64\n"
        "31 30 259:4 / /data/deep/inner rw shared:6 - ext4 /dev/nvme2n1 rw\n"
        "32 27 0:40 / /run rw,nosuid shared:7 - tmpfs tmpfs rw,mode=755\n"
        "33 27 0:41 / /var/lib/docker/overlay2/x/merged rw - overlay overlay rw,lowerdir=/a\n"
        "34 27 0:42 / /mnt/nfs rw - nfs4 server:/export rw,vers=4.2\n"
        "35 27 259:5 / /mnt/ro ro,relatime - ext4 /dev/nvme3n1 ro\n"
        "36 27 259:3 /srv /srv rw,noatime shared:5 - xfs /dev/nvme1n1 rw,inode64\n"
        "37 27 259:6 / /boot/efi rw - vfat /dev/nvme0n1p15 rw\n"
        "38 27 7:0 / /mnt/img rw - ext4 /dev/loop0 rw\n"
        "39 27 0:43 / /mnt/fuse rw - fuse.sshfs host:/ rw\n"
        "40 27 0:44 / /mnt/empty rw - ext4  rw\n"
        "41 27 259:7 / /scratch rw,relatime - btrfs /dev/nvme4n1 rw,subvolid=5\n"
        "42 27 259:7 /@home /home rw,relatime - btrfs /dev/nvme4n1 rw,subvolid=256\n";

static void test_auto_picks_block_filesystems(void **state)
{
        static const char *const want[] = {"/data/deep/inner", "/mnt/img", "/data",
                                           "/scratch",         "/",        NULL};
        static const char *const auto_word[] = {"auto", NULL};
        static const char *const empty[] = {NULL};

        assert_int_equal(select_from(MACHINE, NULL, want, NULL), 0);
        assert_int_equal(select_from(MACHINE, empty, want, NULL), 0);
        assert_int_equal(select_from(MACHINE, auto_word, want, NULL), 0);
}

static void test_auto_nothing_freezable(void **state)
{
        assert_int_equal(select_from("22 27 0:21 / /proc rw - proc proc rw\n"
                                     "32 27 0:40 / / rw - tmpfs tmpfs rw\n",
                                     NULL, NULL, NULL),
                         0);
}

/* The same superblock through two mounts is frozen once; the whole-fs mount is preferred. */
static void test_auto_dedupes_bind_mounts(void **state)
{
        static const char *const want[] = {"/data", "/", NULL};

        assert_int_equal(select_from("27 1 259:1 / / rw - ext4 /dev/vda1 rw\n"
                                     "29 27 259:3 /sub /srv/sub rw - xfs /dev/vdb rw\n"
                                     "30 27 259:3 / /data rw - xfs /dev/vdb rw\n"
                                     "31 27 259:3 / /mnt/again rw - xfs /dev/vdb rw\n"
                                     "32 27 259:1 /home /home rw - ext4 /dev/vda1 rw\n",
                                     NULL, want, NULL),
                         0);
}

/* A read-only bind mount does not hide the read-write mount of the same filesystem. */
static void test_auto_ro_bind_of_rw_fs(void **state)
{
        static const char *const want[] = {"/data", NULL};

        assert_int_equal(select_from("30 1 259:3 / /ro-view ro - xfs /dev/vdb rw\n"
                                     "31 1 259:3 / /data rw - xfs /dev/vdb rw\n",
                                     NULL, want, NULL),
                         0);
}

/* Of two mounts on one path only the later (upper) one can be reached and frozen. */
static void test_auto_overmounted(void **state)
{
        static const char *const want[] = {"/data", NULL};
        static const char *const explicit_data[] = {"/data", NULL};

        assert_int_equal(select_from("30 1 8:16 / /data rw - ext4 /dev/sdb rw\n"
                                     "31 30 8:32 / /data rw - xfs /dev/sdc rw\n",
                                     NULL, want, NULL),
                         0);
        /* The upper one is tmpfs: nothing on /data can be frozen, in either mode. */
        assert_int_equal(select_from("30 1 8:16 / /data rw - ext4 /dev/sdb rw\n"
                                     "31 30 0:50 / /data rw - tmpfs tmpfs rw\n",
                                     NULL, NULL, NULL),
                         0);
        assert_int_equal(select_from("30 1 8:16 / /data rw - ext4 /dev/sdb rw\n"
                                     "31 30 0:50 / /data rw - tmpfs tmpfs rw\n",
                                     explicit_data, NULL, NULL),
                         -EOPNOTSUPP);
}

static void test_explicit_list(void **state)
{
        static const char *const conf[] = {"/", "/data/", "//data/deep/inner", NULL};
        static const char *const want[] = {"/data/deep/inner", "/data", "/", NULL};
        static const char *const ties[] = {"/scratch", "/data", "/home", NULL};
        static const char *const want_ties[] = {"/scratch", "/data", NULL};

        assert_int_equal(select_from(MACHINE, conf, want, NULL), 0);
        /* Equal depth: configured order. */
        assert_int_equal(select_from(MACHINE, ties, want_ties, NULL), 0);
}

static void test_explicit_not_a_mount_point(void **state)
{
        static const char *const conf[] = {"/data", "/data/deep", NULL};
        char *log = NULL;

        assert_int_equal(select_from(MACHINE, conf, NULL, &log), -EINVAL);
        assert_non_null(strstr(log, "/data/deep"));
        assert_non_null(strstr(log, "not a mount point"));
        free(log);
}

static void test_explicit_unfreezable_type(void **state)
{
        static const char *const tmpfs[] = {"/run", NULL};
        static const char *const nfs[] = {"/data", "/mnt/nfs", NULL};
        static const char *const vfat[] = {"/boot/efi", NULL};
        char *log = NULL;

        assert_int_equal(select_from(MACHINE, tmpfs, NULL, &log), -EOPNOTSUPP);
        assert_non_null(strstr(log, "/run"));
        assert_non_null(strstr(log, "tmpfs"));
        free(log);
        assert_int_equal(select_from(MACHINE, nfs, NULL, &log), -EOPNOTSUPP);
        assert_non_null(strstr(log, "/mnt/nfs"));
        assert_non_null(strstr(log, "nfs4"));
        free(log);
        assert_int_equal(select_from(MACHINE, vfat, NULL, NULL), -EOPNOTSUPP);
}

static void test_explicit_bad_paths(void **state)
{
        static const char *const relative[] = {"data", NULL};
        static const char *const dotdot[] = {"/data/../data", NULL};
        static const char *const mixed[] = {"auto", "/data", NULL};
        static const char *const empty_str[] = {"", NULL};
        char *log = NULL;

        assert_int_equal(select_from(MACHINE, relative, NULL, &log), -EINVAL);
        assert_non_null(strstr(log, "\"data\""));
        free(log);
        assert_int_equal(select_from(MACHINE, dotdot, NULL, NULL), -EINVAL);
        assert_int_equal(select_from(MACHINE, mixed, NULL, NULL), -EINVAL);
        assert_int_equal(select_from(MACHINE, empty_str, NULL, NULL), -EINVAL);
}

/* Read-only is skipped (with a notice), bind mounts of one filesystem are reduced to one. */
static void test_explicit_ro_and_duplicates(void **state)
{
        static const char *const conf[] = {"/mnt/ro", "/data", "/srv", "/data", NULL};
        static const char *const want[] = {"/data", NULL};
        char *log = NULL;

        assert_int_equal(select_from(MACHINE, conf, want, &log), 0);
        assert_non_null(strstr(log, "/mnt/ro"));
        assert_non_null(strstr(log, "/srv is the same filesystem as /data"));
        free(log);
}

/* \040 (space), \011 (tab), \012 (newline) and \134 (backslash) as the kernel writes them. */
static void test_escaped_paths(void **state)
{
        static const char *const want[] = {"/mnt/a b\tc", "/mnt/new\nline", "/mnt/back\\slash",
                                           NULL};
        static const char *const conf[] = {"/mnt/a b\tc", NULL};
        static const char *const want_one[] = {"/mnt/a b\tc", NULL};
        const char *text = "30 1 8:1 / /mnt/a\\040b\\011c rw - ext4 /dev/sda1 rw\n"
                           "31 1 8:2 / /mnt/new\\012line rw - xfs /dev/sda2 rw\n"
                           "32 1 8:3 / /mnt/back\\134slash rw - ext4 /dev/disk/by\\040id rw\n";

        assert_int_equal(select_from(text, NULL, want, NULL), 0);
        assert_int_equal(select_from(text, conf, want_one, NULL), 0);
}

static void test_malformed(void **state)
{
        char *log = NULL;

        /* No " - " separator. */
        assert_int_equal(select_from("27 1 8:1 / / rw ext4 /dev/sda1 rw\n", NULL, NULL, &log),
                         -EBADMSG);
        assert_non_null(strstr(log, ":1:"));
        free(log);
        /* Bad major:minor, on line 2. */
        assert_int_equal(select_from("27 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
                                     "28 1 8x1 / /a rw - ext4 /dev/sda2 rw\n",
                                     NULL, NULL, &log),
                         -EBADMSG);
        assert_non_null(strstr(log, ":2:"));
        free(log);
        /* Truncated after the separator. */
        assert_int_equal(select_from("27 1 8:1 / / rw - ext4\n", NULL, NULL, NULL), -EBADMSG);
        /* An escaped NUL would cut the path short. */
        assert_int_equal(
                select_from("27 1 8:1 / /a\\000b rw - ext4 /dev/sda1 rw\n", NULL, NULL, NULL),
                -EBADMSG);
        /* Blank lines and a missing final newline are fine. */
        assert_int_equal(select_from("\n27 1 8:1 / / rw - ext4 /dev/sda1 rw", NULL,
                                     (const char *const[]){"/", NULL}, NULL),
                         0);
}

static void test_too_big_and_missing(void **state)
{
        struct fake f;
        char **got = NULL;

        fake_open(&f, "");
        assert_int_equal(ftruncate(f.fd, FREEZE_MOUNTINFO_MAX + 1), 0);
        capture_start();
        assert_int_equal(freeze_select(NULL, f.path, &got), -EFBIG);
        free(capture_stop());
        fake_close(&f);
        assert_null(got);

        capture_start();
        assert_int_equal(freeze_select(NULL, "/nonexistent/mountinfo", &got), -ENOENT);
        free(capture_stop());
        assert_null(got);
}

/*
 * Loop devices and what holds their backing files. A filesystem goes before the one that holds
 * its backing file, whatever the depth of their mount points says: /mnt (depth 1) before
 * /data/vm (depth 2) which holds its image, and /mnt/nested/deeper before /mnt which holds its
 * own. A partition of a loop device (/part) and a device-mapper device over one (/lvm, its backing
 * file reached through /srv, a bind mount of /data) count too; a backing file on a filesystem
 * that is not frozen (tmpfs) orders nothing. Among the rest, the usual order.
 */
static const char *const LOOPS = "27 1 259:1 / / rw - ext4 /dev/nvme0n1p1 rw\n"
                                 "30 27 259:3 / /data rw - xfs /dev/nvme1n1 rw\n"
                                 "31 30 259:4 / /data/vm rw - xfs /dev/nvme2n1 rw\n"
                                 "32 27 7:0 / /mnt rw - ext4 /dev/loop0 rw\n"
                                 "33 32 7:1 / /mnt/nested/deeper rw - ext4 /dev/loop1 rw\n"
                                 "34 27 0:40 / /run rw - tmpfs tmpfs rw\n"
                                 "35 27 7:2 / /tmpbacked rw - ext4 /dev/loop2 rw\n"
                                 "36 27 259:9 / /part rw - ext4 /dev/loop3p1 rw\n"
                                 "37 27 253:0 / /lvm rw - xfs /dev/mapper/vg-lv rw\n"
                                 "38 27 259:3 /srvdir /srv rw - xfs /dev/nvme1n1 rw\n";

static void fake_loops(struct fake_sys *sys)
{
        fake_sys_open(sys);
        fake_loop(sys, "7:0", "/data/vm/disk.img");
        fake_loop(sys, "7:1", "/mnt/inner.img");
        fake_loop(sys, "7:2", "/run/scratch.img");
        /* loop3p1 is a partition: sysfs links it into its disk's directory. */
        fake_sys_file(sys, "devices/loop3/loop/backing_file", "/data/part.img\n");
        fake_sys_file(sys, "devices/loop3/loop3p1/partition", "1\n");
        fake_sys_link(sys, "dev/block/259:9", "../../devices/loop3/loop3p1");
        /* dm-0 is built on loop4. */
        fake_sys_file(sys, "devices/loop4/loop/backing_file", "/srv/pv.img\n");
        fake_sys_link(sys, "devices/dm-0/slaves/loop4", "../../loop4");
        fake_sys_link(sys, "dev/block/253:0", "../../devices/dm-0");
}

static void test_order_by_backing_file(void **state)
{
        static const char *const want[] = {"/mnt/nested/deeper",
                                           "/mnt",
                                           "/data/vm",
                                           "/tmpbacked",
                                           "/part",
                                           "/lvm",
                                           "/data",
                                           "/",
                                           NULL};
        static const char *const baseline[] = {"/mnt/nested/deeper",
                                               "/data/vm",
                                               "/data",
                                               "/mnt",
                                               "/tmpbacked",
                                               "/part",
                                               "/lvm",
                                               "/",
                                               NULL};
        struct fake_sys sys;

        fake_loops(&sys);
        assert_int_equal(select_sys(LOOPS, &sys, NULL, want, NULL), 0);
        fake_sys_close(&sys);
        /* Without backing files: deepest first, then mountinfo order. */
        assert_int_equal(select_sys(LOOPS, NULL, NULL, baseline, NULL), 0);
}

/* In an explicit list too, before the configured order, and for thaw_all (lenient) alike. */
static void test_order_by_backing_file_explicit(void **state)
{
        static const char *const text = "30 1 8:16 / /x rw - xfs /dev/sdb rw\n"
                                        "31 1 7:0 / /y rw - ext4 /dev/loop0 rw\n";
        static const char *const conf[] = {"/x", "/y", NULL};
        static const char *const want[] = {"/y", "/x", NULL};
        struct fake_sys sys;
        struct fake f;
        char **got = NULL;

        fake_sys_open(&sys);
        fake_loop(&sys, "7:0", "/x/images/y.img");
        assert_int_equal(select_sys(text, &sys, conf, want, NULL), 0);
        fake_open(&f, text);
        assert_int_equal(mountinfo_select(conf, f.path, sys.root, true, &got), 0);
        fake_close(&f);
        assert_string_equal(got[0], "/y");
        assert_string_equal(got[1], "/x");
        assert_null(got[2]);
        strv_free(got);
        fake_sys_close(&sys);
}

/* The holder is the longest mount point above the file, by whole path components. */
static void test_backing_file_holder(void **state)
{
        static const char *const text = "27 1 259:1 / / rw - ext4 /dev/vda1 rw\n"
                                        "30 27 259:3 / /data rw - xfs /dev/vdb rw\n"
                                        "31 27 7:0 / /a rw - ext4 /dev/loop0 rw\n";
        static const char *const on_root[] = {"/data", "/a", "/", NULL};
        static const char *const on_data[] = {"/a", "/data", "/", NULL};
        struct fake_sys sys;

        /* /database is not under /data: the image is on /, which comes last anyway. */
        fake_sys_open(&sys);
        fake_loop(&sys, "7:0", "/database/a.img");
        assert_int_equal(select_sys(text, &sys, NULL, on_root, NULL), 0);
        fake_sys_close(&sys);
        /* A deleted backing file still lives on its filesystem. */
        fake_sys_open(&sys);
        fake_loop(&sys, "7:0", "/data/a.img (deleted)");
        assert_int_equal(select_sys(text, &sys, NULL, on_data, NULL), 0);
        fake_sys_close(&sys);
}

/* Two loop filesystems holding each other's images cannot exist; if sysfs said so, no hang. */
static void test_backing_file_cycle(void **state)
{
        static const char *const text = "31 1 7:0 / /p rw - ext4 /dev/loop0 rw\n"
                                        "32 1 7:1 / /q rw - ext4 /dev/loop1 rw\n";
        static const char *const want[] = {"/p", "/q", NULL};
        struct fake_sys sys;
        char *log = NULL;

        fake_sys_open(&sys);
        fake_loop(&sys, "7:0", "/q/p.img");
        fake_loop(&sys, "7:1", "/p/q.img");
        assert_int_equal(select_sys(text, &sys, NULL, want, &log), 0);
        assert_non_null(strstr(log, "cycle"));
        free(log);
        fake_sys_close(&sys);
}

/* The real mountinfo parses (whatever it holds); nothing is frozen. */
static void test_real_mountinfo_parses(void **state)
{
        char **got = NULL;

        assert_int_equal(freeze_select(NULL, NULL, &got), 0);
        assert_non_null(got);
        strv_free(got);
}

/* The set's bookkeeping, without freezing: bounds, and an empty set is a no-op. */
static void test_set_bookkeeping(void **state)
{
        struct freeze_set *s = NULL;
        char *mounts[] = {"/a", "/b", NULL};

        assert_int_equal(freeze_set_new(mounts, 0, &s), -ERANGE);
        assert_int_equal(freeze_set_new(mounts, FREEZE_TIMEOUT_MAX_MS + 1, &s), -ERANGE);
        assert_null(s);
        assert_int_equal(freeze_set_new(mounts, 5000, &s), 0);
        assert_int_equal(freeze_set_size(s), 2);
        assert_string_equal(freeze_set_mounts(s)[1], "/b");
        assert_null(freeze_set_mounts(s)[2]);
        assert_false(freeze_set_is_frozen(s));
        assert_int_equal(freeze_set_n_frozen(s), 0);
        assert_int_equal(freeze_set_guard_fd(s), -1);
        assert_int_equal(freeze_set_window_ms(s), 0);
        assert_int_equal(freeze_set_thaw(s), 0);
        assert_null(freeze_set_free(s));

        assert_int_equal(freeze_set_new(NULL, 5000, &s), 0);
        assert_int_equal(freeze_set_freeze(s), 0);
        assert_false(freeze_set_is_frozen(s));
        assert_int_equal(freeze_set_thaw(s), 0);
        assert_int_equal(freeze_emergency_thaw(), 0);
        freeze_set_free(s);
        freeze_set_free(NULL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_auto_picks_block_filesystems),
                cmocka_unit_test(test_auto_nothing_freezable),
                cmocka_unit_test(test_auto_dedupes_bind_mounts),
                cmocka_unit_test(test_auto_ro_bind_of_rw_fs),
                cmocka_unit_test(test_auto_overmounted),
                cmocka_unit_test(test_explicit_list),
                cmocka_unit_test(test_explicit_not_a_mount_point),
                cmocka_unit_test(test_explicit_unfreezable_type),
                cmocka_unit_test(test_explicit_bad_paths),
                cmocka_unit_test(test_explicit_ro_and_duplicates),
                cmocka_unit_test(test_escaped_paths),
                cmocka_unit_test(test_malformed),
                cmocka_unit_test(test_too_big_and_missing),
                cmocka_unit_test(test_order_by_backing_file),
                cmocka_unit_test(test_order_by_backing_file_explicit),
                cmocka_unit_test(test_backing_file_holder),
                cmocka_unit_test(test_backing_file_cycle),
                cmocka_unit_test(test_real_mountinfo_parses),
                cmocka_unit_test(test_set_bookkeeping),
        };

        log_set_target(LOG_TARGET_STDERR);
        return cmocka_run_group_tests(tests, fake_sys_setup, fake_sys_teardown);
}
