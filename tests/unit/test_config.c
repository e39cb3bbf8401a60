/* SPDX-License-Identifier: Apache-2.0 */
/* Config parsing: defaults, bounds, unknown keys and syntax errors reported with file and line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"
#include "util/macro.h"
#include "util/str.h"

#define CONFIG_FIXTURE_FILE "test.conf"
#include "config_fixture.h"

static void test_defaults(void **state)
{
        struct config c;

        config_init(&c);
        assert_int_equal(c.imds_token_ttl, 21600);
        assert_int_equal(c.imds_timeout_ms, 2000);
        assert_false(c.imds_allow_imdsv1);
        assert_null(c.region);
        assert_int_equal(c.aws_max_attempts, 8);
        config_done(&c);
}

static void test_values(void **state)
{
        struct config c;
        struct config_error e = {};

        assert_int_equal(
                parse("[imds]\nendpoint = http://127.0.0.1:1\ntoken_ttl=60\n"
                      "allow_imdsv1 = yes\nendpoint_mode = ipv6\n[aws]\nregion = eu-west-1\n"
                      "[image]\ntag = Team=platform\ntag = cost:center = 42\n",
                      &c, &e),
                0);
        assert_string_equal(c.imds_endpoint, "http://127.0.0.1:1");
        assert_int_equal(c.imds_token_ttl, 60);
        assert_true(c.imds_allow_imdsv1);
        assert_int_equal(c.imds_endpoint_mode, IMDS_ENDPOINT_MODE_IPV6);
        assert_string_equal(c.region, "eu-west-1");
        assert_int_equal(c.n_tags, 2);
        assert_string_equal(c.tags[1].key, "cost:center");
        assert_string_equal(c.tags[1].value, "42");
        config_done(&c);
}

static void test_errors(void **state)
{
        expect_error("[imds]\n# comment\nbogus = 1\n", 3, "unknown key 'bogus' in section [imds]");
        expect_error("[imds]\ntoken_ttl = 0\n", 2, "out of range 1..21600");
        expect_error("[imds]\ntoken_ttl = 21601\n", 2, "out of range");
        expect_error("[imds]\ntoken_ttl = -5\n", 2, "not a non-negative integer");
        /* A retry deadline of 0 is no time for even one attempt: refused, not the default. */
        expect_error("[aws]\nretry_deadline_ms = 0\n", 2,
                     "[aws] retry_deadline_ms: 0 is out of range 100..3600000");
        expect_error("[imds]\nretry_deadline_ms = 0\n", 2,
                     "[imds] retry_deadline_ms: 0 is out of range 10..600000");
        expect_error("[imds]\ntoken_ttl = 12abc\n", 2, "not a non-negative integer");
        expect_error("[imds]\nallow_imdsv1 = maybe\n", 2, "not a boolean");
        expect_error("[imds]\nendpoint_mode = ipv5\n", 2, "allowed values");
        expect_error("[nosuch]\nkey = 1\n", 2, "unknown key");
        expect_error("\n\nthis is not ini\n", 3, "syntax error");
        expect_error("[image]\ntag = aws:name=x\n", 2, "reserved");
        expect_error("[image]\ntag = novalue\n", 2, "Key=Value");
        /* A key that needs a value (a path, a template) may not be set to nothing. */
        expect_error("[run]\nstate_dir =\n", 2, "[run] state_dir: may not be empty");
        expect_error("[hooks]\ndir = \n", 2, "may not be empty");
}

#define NAME_128                                                                                   \
        "golden-check-0123456789-golden-check-0123456789-golden-check-0123456789-golden-check-"    \
        "0123456789-golden-check-0123456789-golden-c"

/* [boot_check] instance_profile = profile: taken as it is, or refused naming its key. */
static void expect_profile(const char *profile, bool good)
{
        _cleanup_free_ char *text = strprintf("[boot_check]\ninstance_profile = %s\n", profile);
        struct config c;
        struct config_error e = {};

        assert_int_equal(strlen(NAME_128), 128);
        if (!good) {
                expect_error(text, 2, "expected an instance profile name or ARN");
                return;
        }
        assert_int_equal(parse(text, &c, &e), 0);
        assert_string_equal(c.boot_check_instance_profile, profile);
        config_done(&c);
}

/* [boot_check]: each word has its key's shape, named with its file, line and key. */
static void test_boot_check(void **state)
{
        struct config c;
        struct config_error e = {};

        assert_int_equal(parse("[boot_check]\nenable = yes\ninstance_type = m7g.16xlarge\n"
                               "subnet = subnet-0abc12\nsecurity_groups = sg-1 sg-0ff\n"
                               "instance_profile = golden-check\n"
                               "require_units = sshd.service getty@tty1.service\n"
                               "timeout_s = 60\non_failure = deregister\n",
                               &c, &e),
                         0);
        assert_true(c.boot_check_enable);
        assert_string_equal(c.boot_check_instance_type, "m7g.16xlarge");
        assert_string_equal(c.boot_check_subnet, "subnet-0abc12");
        assert_int_equal(strv_length(c.boot_check_security_groups), 2);
        assert_string_equal(c.boot_check_security_groups[0], "sg-1");
        assert_string_equal(c.boot_check_security_groups[1], "sg-0ff");
        assert_string_equal(c.boot_check_instance_profile, "golden-check");
        assert_int_equal(strv_length(c.boot_check_require_units), 2);
        assert_string_equal(c.boot_check_require_units[1], "getty@tty1.service");
        assert_int_equal(c.boot_check_timeout_s, 60);
        assert_int_equal(c.boot_check_on_failure, BOOT_CHECK_DEREGISTER);
        config_done(&c);
        /* A profile is named by its name (128 characters at most) or by its ARN. */
        expect_profile("arn:aws:iam::123456789012:instance-profile/golden/check", true);
        expect_profile("arn:aws-cn:iam::123456789012:instance-profile/golden", true);
        expect_profile("arn:aws:iam::123456789012:role/golden", false);
        expect_profile(NAME_128 "", true);
        expect_profile(NAME_128 "x", false);
        config_init(&c);
        assert_false(c.boot_check_enable);
        assert_string_equal(c.boot_check_instance_type, "t3.micro");
        assert_int_equal(c.boot_check_timeout_s, 900);
        config_done(&c);
        expect_error("[boot_check]\ninstance_type = T3 micro\n", 2,
                     "[boot_check] instance_type: 'T3 micro': expected an instance type");
        expect_error("[boot_check]\nsubnet = vpc-123\n", 2, "expected a subnet id");
        expect_error("[boot_check]\n\nsecurity_groups = sg-1 default\n", 3,
                     "'default': expected a security group id");
        expect_error("[boot_check]\ninstance_profile = a/b\n", 2, "instance profile");
        expect_error("[boot_check]\nrequire_units = sshd\n", 2, "expected a unit name");
        expect_error("[boot_check]\ntimeout_s = 5\n", 2, "out of range 10..86400");
        expect_error("[boot_check]\non_failure = delete\n", 2, "allowed values");
        /* The edges of each shape: what EC2 or systemd would refuse at the first boot check. */
        expect_error("[boot_check]\ninstance_type = .micro\n", 2, "expected an instance type");
        expect_error("[boot_check]\ninstance_type = t3micro\n", 2, "expected an instance type");
        expect_error("[boot_check]\nsubnet = subnet-0ABC12\n", 2, "expected a subnet id");
        expect_error("[boot_check]\nsubnet = subnet-\n", 2, "expected a subnet id");
        expect_error("[boot_check]\nsecurity_groups = sg-1 sg-0fg\n", 2, "'sg-0fg'");
        expect_error("[boot_check]\nrequire_units = .service\n", 2, "expected a unit name");
        expect_error("[boot_check]\nrequire_units = sshd.\n", 2, "expected a unit name");
        expect_error("[boot_check]\ntimeout_s = 86401\n", 2, "out of range 10..86400");
}

static void test_long_line(void **state)
{
        char text[5000];
        struct config c;
        struct config_error e = {};
        size_t n;

        /* A value longer than inih's own line buffer is kept whole. */
        n = (size_t)snprintf(text, sizeof(text), "[freeze]\nmounts = ");
        for (int i = 0; i < 40; i++)
                n += (size_t)snprintf(text + n, sizeof(text) - n, "/mnt/some/rather/long/path%02d ",
                                      i);
        snprintf(text + n, sizeof(text) - n, " ; a comment\n[aws]\nregion = eu-west-1\n");
        assert_int_equal(parse(text, &c, &e), 0);
        assert_int_equal(strv_length(c.freeze_mounts), 40);
        assert_string_equal(c.freeze_mounts[39], "/mnt/some/rather/long/path39");
        assert_string_equal(c.region, "eu-west-1");
        config_done(&c);

        /* Past our own ceiling, or a long line that is not key = value: an error with its line. */
        memset(text, 'a', sizeof(text) - 1);
        text[sizeof(text) - 1] = '\0';
        memcpy(text, "[aws]\nregion = ", 15);
        expect_error(text, 2, "longer than 4096");
        memset(text, '#', 600);
        text[600] = '\0';
        expect_error(text, 1, "not key = value");
}

static void test_dropins(void **state)
{
        char dir[] = "/tmp/ec2-imaged-test-XXXXXX";
        char path[256], dpath[256], f1[300], f2[300];
        struct config c;
        struct config_error e = {};
        FILE *f;

        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/main.conf", dir);
        snprintf(dpath, sizeof(dpath), "%s/main.conf.d", dir);
        snprintf(f1, sizeof(f1), "%s/10-a.conf", dpath);
        snprintf(f2, sizeof(f2), "%s/20-b.conf", dpath);
        assert_int_equal(mkdir(dpath, 0700), 0);
        f = fopen(path, "w");
        fputs("[aws]\nregion = us-east-1\nmax_attempts = 3\n", f);
        fclose(f);
        f = fopen(f2, "w");
        fputs("[aws]\nregion = eu-north-1\n", f);
        fclose(f);
        f = fopen(f1, "w");
        fputs("[aws]\nregion = ap-south-1\nmax_attempts = 5\n", f);
        fclose(f);

        assert_int_equal(config_load(path, true, &c, &e), 0);
        assert_string_equal(c.region, "eu-north-1"); /* 20-b wins over 10-a over main */
        assert_int_equal(c.aws_max_attempts, 5);
        config_done(&c);

        f = fopen(f2, "w");
        fputs("[aws]\n\nmax_attempts = 1000\n", f);
        fclose(f);
        assert_true(config_load(path, true, &c, &e) < 0);
        assert_string_equal(e.file, f2);
        assert_int_equal(e.line, 3);
        config_error_done(&e);

        unlink(f1);
        unlink(f2);
        rmdir(dpath);
        unlink(path);
        /* an explicit path that does not exist is an error; the default path is not */
        assert_int_equal(config_load(path, true, &c, &e), -ENOENT);
        assert_non_null(e.message);
        config_error_done(&e);
        rmdir(dir);
}

/*
 * The snapshot a worker is given: the files as they were when loaded (changing them afterwards
 * changes nothing), parsed under their own names, drop-ins included; only a sealed memfd is taken.
 */
static void test_snapshot(void **state)
{
        char dir[] = "/tmp/ec2-imaged-snap-XXXXXX";
        struct config c, l;
        struct config_error e = {};
        char *path, *dpath, *drop;
        int fd, plain;
        FILE *f;

        assert_non_null(mkdtemp(dir));
        path = strprintf("%s/main.conf", dir);
        dpath = strprintf("%s/main.conf.d", dir);
        drop = strprintf("%s/main.conf.d/10-a.conf", dir);
        assert_int_equal(mkdir(dpath, 0700), 0);
        f = fopen(path, "w");
        fputs("[aws]\nregion = us-east-1\n[image]\ntag = team=blue\n", f);
        fclose(f);
        f = fopen(drop, "w");
        fputs("max_attempts = 4\n", f); /* no section: an error in its own file only */
        fclose(f);
        assert_true(config_load(path, true, &c, &e) < 0);
        assert_string_equal(e.file, drop);
        config_error_done(&e);
        f = fopen(drop, "w");
        fputs("[aws]\nmax_attempts = 4\n", f);
        fclose(f);
        assert_int_equal(config_load(path, true, &c, &e), 0);
        assert_int_equal(c.n_sources, 2);
        fd = config_snapshot_new(&c);
        assert_true(fd >= 0);
        config_done(&c);

        /* Whatever the files say now, the snapshot holds what was loaded. */
        f = fopen(path, "w");
        fputs("[run]\nmode = sideways\n", f);
        fclose(f);
        assert_int_equal(config_load_snapshot(fd, &l, &e), 0);
        assert_string_equal(l.path, path);
        assert_string_equal(l.region, "us-east-1");
        assert_int_equal(l.aws_max_attempts, 4);
        assert_int_equal(l.n_tags, 1);
        assert_string_equal(l.tags[0].value, "blue");
        assert_int_equal(l.n_sources, 2);
        assert_string_equal(l.sources[1].name, drop);
        config_done(&l);
        /* Sealed: it cannot be changed, nor read as anything but itself. */
        assert_true(write(fd, "x", 1) < 0);
        assert_int_equal(config_load_snapshot(fd, &l, &e), 0);
        config_done(&l);
        close(fd);

        /* A descriptor that is not a sealed memfd is not taken. */
        plain = open(path, O_RDONLY | O_CLOEXEC);
        assert_true(plain >= 0);
        assert_int_equal(config_load_snapshot(plain, &l, &e), -EPERM);
        close(plain);
        plain = memfd_create("not-sealed", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        assert_true(plain >= 0);
        assert_int_equal(config_load_snapshot(plain, &l, &e), -EPERM);
        close(plain);

        unlink(drop);
        rmdir(dpath);
        unlink(path);
        rmdir(dir);
        free(path);
        free(dpath);
        free(drop);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_defaults),  cmocka_unit_test(test_values),
                cmocka_unit_test(test_errors),    cmocka_unit_test(test_boot_check),
                cmocka_unit_test(test_long_line), cmocka_unit_test(test_dropins),
                cmocka_unit_test(test_snapshot),
        };
        return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
