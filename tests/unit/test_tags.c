/* SPDX-License-Identifier: Apache-2.0 */
/*
 * [image] tag lines checked at load against EC2's tag rules (file, line and key in the message),
 * and tag templates rendered with the provenance placeholders into the run's tags.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"
#include "core/imagetags.h"
#include "core/state.h"
#include "core/template.h"
#include "run/provenance.h"
#include "util/buf.h"
#include "util/macro.h"
#include "util/str.h"

/* s n times (a test's short strings). */
static char *strrep(const char *s, size_t n)
{
        struct buf b = {.max = 1 << 20};

        for (size_t i = 0; i < n; i++)
                assert_int_equal(buf_append(&b, s, strlen(s)), 0);
        return buf_steal(&b, NULL);
}

#define CONFIG_FIXTURE_FILE "tags.conf"
#include "config_fixture.h"

/* "[image]\n" and n tag lines k0=v .. k(n-1)=v */
static char *many_tags(size_t n, const char *extra)
{
        struct buf b = {.max = 1 << 20};

        assert_int_equal(buf_printf(&b, "[image]\n%s", extra), 0);
        for (size_t i = 0; i < n; i++)
                assert_int_equal(buf_printf(&b, "tag = k%zu=v\n", i), 0);
        return buf_steal(&b, NULL);
}

static void test_load_errors(void **unused)
{
        _cleanup_free_ char *long_key = NULL, *long_value = NULL, *unicode = NULL;
        _cleanup_free_ char *max = NULL, *over = NULL, *max_replacing = NULL;
        struct config c;
        struct config_error e = {};

        expect_error("[image]\ntag = a={nosuch}\n", 2, "tag 'a': unknown field '{nosuch}'");
        expect_error("[image]\ntag = a=x{kernel\n", 2, "tag 'a': unterminated '{'");
        expect_error("[image]\n\ntag = AWS:x=1\n", 3, "tag 'AWS:x': the aws: prefix");
        expect_error("[image]\ntag = x=aWs:1\n", 2, "tag 'x': the aws: prefix");
        expect_error("[image]\ntag = ec2-imaged:run-id=1\n", 2, "prefix is ours");
        expect_error("[image]\ntag = a=1\ntag = b=2\ntag = a=3\n", 4,
                     "tag 'a': duplicate key (also on line 2)");
        long_key = strprintf("[image]\ntag = %0129d=1\n", 0);
        expect_error(long_key, 2, "key longer than 128 characters");
        long_value = strprintf("[image]\ntag = v=%0250d{kernel}%07d\n", 0, 0);
        expect_error(long_value, 2, "tag 'v': value longer than 256 characters (257 before");
        /* Characters, not bytes: 128 two-byte characters are a key EC2 takes. */
        {
                _cleanup_free_ char *k = strrep("é", 128), *v = strrep("ü", 256);
                unicode = strprintf("[image]\ntag = %s=%s\n", k, v);
        }
        assert_int_equal(parse(unicode, &c, &e), 0);
        config_done(&c);
        /* 50 a resource, 7 of them ours: 43 of the operator's, plus the 2 defaults replaced. */
        max = many_tags(43, "");
        assert_int_equal(parse(max, &c, &e), 0);
        assert_int_equal(c.n_tags, 43);
        config_done(&c);
        over = many_tags(44, "");
        expect_error(over, 45, "tag 'k43': more than 43 tags (EC2 allows 50");
        max_replacing = many_tags(43, "tag = ec2-imaged:os=x\ntag = ec2-imaged:source-image=y\n");
        assert_int_equal(parse(max_replacing, &c, &e), 0);
        assert_int_equal(c.n_tags, 45);
        config_done(&c);
}

static char *tmpdir;

static void write_file(const char *dir, const char *name, const char *text, mode_t mode)
{
        _cleanup_free_ char *p = strprintf("%s/%s", dir, name);
        FILE *f = fopen(p, "we");

        assert_non_null(f);
        fputs(text, f);
        assert_int_equal(fclose(f), 0);
        assert_int_equal(chmod(p, mode), 0);
}

/* A drop-in replaces a tag of the main file (as it does any key); one file may not repeat it. */
static void test_dropin_replaces(void **unused)
{
        _cleanup_free_ char *conf = strprintf("%s/main.conf", tmpdir);
        _cleanup_free_ char *dropins = strprintf("%s/main.conf.d", tmpdir);
        struct config c;
        struct config_error e = {};

        write_file(tmpdir, "main.conf", "[image]\ntag = team=blue\ntag = app=web\n", 0644);
        assert_int_equal(mkdir(dropins, 0755), 0);
        write_file(dropins, "10-x.conf", "[image]\ntag = team=red\n", 0644);
        assert_int_equal(config_load(conf, true, &c, &e), 0);
        assert_int_equal(c.n_tags, 2);
        assert_string_equal(c.tags[0].key, "team");
        assert_string_equal(c.tags[0].value, "red");
        config_done(&c);
        write_file(dropins, "10-x.conf", "[image]\ntag = team=red\ntag = team=green\n", 0644);
        assert_true(config_load(conf, true, &c, &e) < 0);
        assert_non_null(strstr(e.file, "10-x.conf"));
        assert_int_equal(e.line, 3);
        assert_non_null(strstr(e.message, "tag 'team': duplicate key (also on line 2)"));
        config_error_done(&e);
}

static const struct template_fields base = {
        .instance_id = "i-0123456789abcdef0",
        .hostname = "web-1",
        .region = "eu-west-1",
        .account_id = "123456789012",
        .run_id = "3f2a",
        .mode = "no-reboot",
        .now = 1795705972, /* 2026-11-26T15:12:52Z */
};

static const struct provenance prov = {
        .source_image_id = "ami-0abcdef1234567890",
        .os_id = "debian",
        .os_version = "12",
        .kernel = "6.1.0-28-cloud-amd64",
        .patched_at = "2026-11-26T14:00:00Z",
        .config_sha256 = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8",
};

static void render(const char *conf, struct run_state *run, int want, const char *needle)
{
        _cleanup_free_ char *err = NULL;
        struct config c;
        struct config_error e = {};

        assert_int_equal(parse(conf, &c, &e), 0);
        assert_int_equal(provenance_render_tags(&c, &base, &prov, run, &err), want);
        if (needle && (!err || !strstr(err, needle)))
                fail_msg("'%s' lacks '%s'", strna(err), needle);
        config_done(&c);
}

static void test_render(void **unused)
{
        _cleanup_(run_state_freep) struct run_state *run = calloc(1, sizeof(*run));
        struct ec2_tag tags[IMAGE_TAGS_MAX];
        struct config c;
        size_t n;

        render("[image]\ntag = built={date:%Y-%m-%d} on {hostname} ({mode}, {run_id})\n"
               "tag = from={source_image_id} {os_id}/{os_version} {kernel}\n"
               "tag = patched={patched_at}\ntag = conf={config_sha256}\n"
               "tag = where={account_id}/{region}/{instance_id}\n",
               run, 0, NULL);
        assert_int_equal(run->n_tags, 7);
        assert_string_equal(run_state_tag(run, "built"), "2026-11-26 on web-1 (no-reboot, 3f2a)");
        assert_string_equal(run_state_tag(run, "from"),
                            "ami-0abcdef1234567890 debian/12 6.1.0-28-cloud-amd64");
        assert_string_equal(run_state_tag(run, "patched"), "2026-11-26T14:00:00Z");
        assert_string_equal(run_state_tag(run, "conf"), prov.config_sha256);
        assert_string_equal(run_state_tag(run, "where"),
                            "123456789012/eu-west-1/i-0123456789abcdef0");
        /* the defaults come after the configured tags */
        assert_string_equal(run->tags[5].key, TAG_SOURCE_IMAGE);
        assert_string_equal(run->tags[5].value, "ami-0abcdef1234567890");
        assert_string_equal(run->tags[6].key, TAG_OS);
        assert_string_equal(run->tags[6].value, "debian 12");
        /* The images get the run's rendered values, not the configuration's templates. */
        run->run_id = strdup("3f2a");
        run->instance_id = strdup("i-0123456789abcdef0");
        config_init(&c);
        n = image_tags_build(&c, run, "lin", tags);
        assert_int_equal(n, 11);
        assert_string_equal(tags[0].value, "2026-11-26 on web-1 (no-reboot, 3f2a)");
        assert_string_equal(tags[7].key, TAG_RUN_ID);
        assert_string_equal(tags[10].value, "lin");
        config_done(&c);
}

static void test_render_defaults_replaced(void **unused)
{
        _cleanup_(run_state_freep) struct run_state *run = calloc(1, sizeof(*run));

        render("[image]\ntag = ec2-imaged:os={os_id}\n", run, 0, NULL);
        assert_int_equal(run->n_tags, 2);
        assert_string_equal(run->tags[0].key, TAG_OS);
        assert_string_equal(run->tags[0].value, "debian");
        assert_string_equal(run->tags[1].key, TAG_SOURCE_IMAGE);
}

/* A value that only its rendering makes too long, or reserved, fails naming the tag. */
static void test_render_refused(void **unused)
{
        _cleanup_(run_state_freep) struct run_state *run = calloc(1, sizeof(*run));
        _cleanup_free_ char *conf = NULL, *filler = strrep("x", 200);

        conf = strprintf("[image]\ntag = ok=1\ntag = long=%s{config_sha256}\n", filler);
        render(conf, run, -E2BIG, "[image] tag 'long': the value renders to 264 characters");
        assert_int_equal(run->n_tags, 0);
        render("[image]\ntag = r={hostname}\n", run, 0, NULL);
        run_state_clear_tags(run);
        {
                struct template_fields f = base;
                _cleanup_free_ char *err = NULL;
                struct config c;
                struct config_error e = {};

                f.hostname = "aws:evil";
                assert_int_equal(parse("[image]\ntag = r={hostname}\n", &c, &e), 0);
                assert_int_equal(provenance_render_tags(&c, &f, &prov, run, &err), -EINVAL);
                assert_non_null(strstr(err, "tag 'r': the value renders to 'aws:evil'"));
                config_done(&c);
        }
}

/* Names know no provenance placeholders: an image name stays what it was. */
static void test_name_scope(void **unused)
{
        _cleanup_free_ char *err = NULL;
        size_t literal;

        assert_int_equal(template_check("{kernel}", false, &literal, &err), -EINVAL);
        assert_non_null(strstr(err, "unknown field '{kernel}'"));
        assert_int_equal(template_check("é{kernel}{date:%Y}x", true, &literal, &err), 0);
        assert_int_equal(literal, 2);
}

static void test_os_release(void **unused)
{
        static const char text[] = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=x\n"
                                   "VERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nID=debian\n"
                                   "ID_LIKE=ubuntu\n";
        _cleanup_free_ char *id = NULL, *version = NULL, *id2 = NULL, *v2 = NULL;

        assert_int_equal(os_release_parse(text, strlen(text), &id, &version), 0);
        assert_string_equal(id, "debian");
        assert_string_equal(version, "12");
        static const char amzn[] = "ID='amzn'\nVERSION_ID=\"2\\\"023\"";

        assert_int_equal(os_release_parse(amzn, strlen(amzn), &id2, &v2), 0);
        assert_string_equal(id2, "amzn");
        assert_string_equal(v2, "2\"023");
}

static void test_patched_at(void **unused)
{
        _cleanup_free_ char *d = strprintf("%s/state", tmpdir), *link = NULL;
        char *v = NULL;
        int fd;

        assert_int_equal(mkdir(d, 0700), 0);
        fd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(patched_at_read(fd, &v), 0);
        assert_string_equal(v, "never");
        free(v);
        write_file(d, "patched-at", "2026-12-07T00:12:03Z\n", 0600);
        assert_int_equal(patched_at_read(fd, &v), 0);
        assert_string_equal(v, "2026-12-07T00:12:03Z");
        free(v);
        write_file(d, "patched-at", "yesterday\n", 0600);
        assert_int_equal(patched_at_read(fd, &v), 0);
        assert_string_equal(v, "unknown");
        free(v);
        /* never through a symlink, never more than a time's worth of bytes */
        write_file(tmpdir, "elsewhere", "2026-12-07T00:12:03Z\n", 0600);
        link = strprintf("%s/patched-at", d);
        assert_int_equal(unlink(link), 0);
        assert_int_equal(symlink("../elsewhere", link), 0);
        assert_int_equal(patched_at_read(fd, &v), 0);
        assert_string_equal(v, "unknown");
        free(v);
        assert_int_equal(unlink(link), 0);
        {
                _cleanup_free_ char *big = strrep("2026-12-07T00:12:03Z", 100);
                write_file(d, "patched-at", big, 0600);
        }
        assert_int_equal(patched_at_read(fd, &v), 0);
        assert_string_equal(v, "unknown");
        free(v);
        close(fd);
}

/* {config_sha256} as the README tells an operator to recompute it, with sha256sum. */
static void test_config_sha256(void **unused)
{
        _cleanup_free_ char *conf = strprintf("%s/sha.conf", tmpdir);
        _cleanup_free_ char *hooks = strprintf("%s/hooks", tmpdir), *cmd = NULL, *text = NULL;
        _cleanup_free_ char *pre = strprintf("%s/pre-image.d", hooks);
        _cleanup_free_ char *post = strprintf("%s/post-image.d", hooks);
        char got[65], want[65] = "";
        struct config c;
        struct config_error e = {};
        FILE *p;

        assert_int_equal(mkdir(hooks, 0755), 0);
        assert_int_equal(mkdir(pre, 0755), 0);
        assert_int_equal(mkdir(post, 0755), 0);
        text = strprintf("[hooks]\ndir = %s\n[image]\ntag = c={config_sha256}\n", hooks);
        write_file(tmpdir, "sha.conf", text, 0644);
        write_file(pre, "20-b", "#!/bin/sh\necho b\n", 0755);
        write_file(pre, "10-a", "#!/bin/sh\necho a\n", 0755);
        write_file(pre, "README", "not a hook\n", 0644);       /* no execute bit: skipped */
        write_file(pre, "30-c.disabled", "#!/bin/sh\n", 0755); /* skipped by its name */
        write_file(post, "10-z", "#!/bin/sh\nexit 0\n", 0755);
        assert_int_equal(config_load(conf, true, &c, &e), 0);
        assert_int_equal(config_sha256_hex(&c, got), 0);
        config_done(&c);
        cmd = strprintf(
                "cd %s && { cat sha.conf; printf 'pre-image/10-a\\0'; cat hooks/pre-image.d/10-a; "
                "printf 'pre-image/20-b\\0'; cat hooks/pre-image.d/20-b; "
                "printf 'post-image/10-z\\0'; cat hooks/post-image.d/10-z; } | sha256sum",
                tmpdir);
        p = popen(cmd, "r");
        assert_non_null(p);
        assert_non_null(fgets(want, sizeof(want), p));
        pclose(p);
        assert_string_equal(got, want);
}

/* The rendered tags live in the run state: kept in order through the file, bad shapes refused. */
static void test_state_round_trip(void **unused)
{
        static const char bad_dup[] = "{\"current\":{\"run_id\":\"x\",\"phase\":\"rebooting\","
                                      "\"mode\":\"reboot\",\"tags\":{\"a\":\"1\",\"a\":\"2\"}}}";
        static const char bad_num[] = "{\"current\":{\"run_id\":\"x\",\"phase\":\"rebooting\","
                                      "\"mode\":\"reboot\",\"tags\":{\"a\":1}}}";
        struct state s = {}, back = {};
        _cleanup_free_ char *text = NULL, *text2 = NULL;

        assert_int_equal(run_state_new(MODE_REBOOT, false, &s.current), 0);
        assert_int_equal(run_state_add_tag(s.current, "z", "last? no, first"), 0);
        assert_int_equal(run_state_add_tag(s.current, "a", "été"), 0);
        assert_int_equal(run_state_add_tag(s.current, "", ""), 0);
        text = state_format(&s);
        assert_int_equal(state_parse(text, strlen(text), &back), -EBADMSG); /* empty key */
        run_state_clear_tags(s.current);
        assert_int_equal(run_state_add_tag(s.current, "z", "first"), 0);
        assert_int_equal(run_state_add_tag(s.current, "a", "été"), 0);
        free(text);
        text = state_format(&s);
        assert_int_equal(state_parse(text, strlen(text), &back), 0);
        assert_int_equal(back.current->n_tags, 2);
        assert_string_equal(back.current->tags[0].key, "z");
        assert_string_equal(back.current->tags[1].value, "été");
        text2 = state_format(&back);
        assert_string_equal(text, text2);
        state_done(&back);
        assert_int_equal(state_parse(bad_dup, strlen(bad_dup), &back), -EBADMSG);
        assert_int_equal(state_parse(bad_num, strlen(bad_num), &back), -EBADMSG);
        state_done(&s);
}

static int setup(void **unused)
{
        char t[] = "/tmp/test_tags.XXXXXX";

        tmpdir = strdup(mkdtemp(t));
        return tmpdir ? 0 : -1;
}

static int teardown(void **unused)
{
        _cleanup_free_ char *cmd = strprintf("rm -rf -- '%s'", tmpdir);

        free(tmpdir);
        return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_load_errors),
                cmocka_unit_test(test_dropin_replaces),
                cmocka_unit_test(test_render),
                cmocka_unit_test(test_render_defaults_replaced),
                cmocka_unit_test(test_render_refused),
                cmocka_unit_test(test_name_scope),
                cmocka_unit_test(test_os_release),
                cmocka_unit_test(test_patched_at),
                cmocka_unit_test(test_config_sha256),
                cmocka_unit_test(test_state_round_trip),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
