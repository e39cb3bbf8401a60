/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Profiles of the AWS shared files (aws/creds_profile.c) without a network: which files and which
 * profile, static keys, what is refused before any AssumeRole (half a key pair, a missing source,
 * a cycle, a chain too long, unsupported ways), and the chain the profile is attached to. The
 * AssumeRole calls themselves are tested against moto (test_sts_profile.py); here STS is a dead
 * loopback port that no test reaches. Also the STS parsers and argument rules (aws/sts.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aws/creds_profile.h"
#include "aws/creds_provider.h"
#include "aws/sts.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/str.h"

#define DEAD_ENDPOINT "http://127.0.0.1:1"
#define KEY_ID        "AKIAEXAMPLEEXAMPLE00"
#define SECRET        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY"
#define ROLE          "arn:aws:iam::111111111111:role/target"

static char dir[] = "/tmp/test_creds_profile.XXXXXX";
static char creds_path[64], config_path[64];

static void write_text(const char *path, const char *text)
{
        FILE *f = fopen(path, "w");

        assert_non_null(f);
        assert_int_equal(fputs(text, f) >= 0, 1);
        assert_int_equal(fclose(f), 0);
}

static int setup(void **state)
{
        static const char *const vars[] = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                           "AWS_SESSION_TOKEN", "AWS_PROFILE",
                                           "AWS_CONFIG_FILE",   "AWS_SHARED_CREDENTIALS_FILE",
                                           "AWS_REGION",        "AWS_DEFAULT_REGION",
                                           "AWS_ENDPOINT_URL",  "AWS_ENDPOINT_URL_STS"};

        for (size_t i = 0; i < ELEMENTSOF(vars); i++)
                unsetenv(vars[i]);
        unlink(creds_path);
        unlink(config_path);
        return 0;
}

/* A resolution that must fail before anything is sent (the endpoint is dead anyway). */
static struct creds_profile_config cfg(const char *profile)
{
        return (struct creds_profile_config){
                .profile = profile,
                .credentials_file = creds_path,
                .config_file = config_path,
                .endpoint_url = DEAD_ENDPOINT,
                .transport = {.connect_timeout_ms = 100, .retry_deadline_ms = 200}};
}

static int resolve(const char *profile, struct aws_credentials *c)
{
        struct creds_profile_config k = cfg(profile);

        return creds_profile_resolve(&k, LOG_DEBUG, c);
}

static void test_static_keys(void **state)
{
        struct aws_credentials c = {};

        write_text(creds_path, "[default]\naws_access_key_id = " KEY_ID
                               "\naws_secret_access_key = " SECRET "\naws_session_token = tok\n");
        assert_int_equal(resolve(NULL, &c), 0);
        assert_string_equal(c.access_key_id, KEY_ID);
        assert_string_equal(c.secret_access_key, SECRET);
        assert_string_equal(c.session_token, "tok");
        assert_string_equal(c.source, "profile:default");
        assert_null(c.role_name);
        assert_int_equal(c.expiration, 0);
        aws_credentials_done(&c);
        /* In the config file, under [profile NAME], and named by AWS_PROFILE. */
        write_text(config_path, "[profile dev]\naws_access_key_id = AKIADEVDEVDEVDEVDEV0\n"
                                "aws_secret_access_key = s\n");
        setenv("AWS_PROFILE", "dev", 1);
        assert_int_equal(resolve(NULL, &c), 0);
        assert_string_equal(c.access_key_id, "AKIADEVDEVDEVDEVDEV0");
        assert_null(c.session_token);
        assert_string_equal(c.source, "profile:dev");
        aws_credentials_done(&c);
}

static void test_which_profile(void **state)
{
        struct aws_credentials c = {};

        /* No files, no name: nothing applies, the chain goes on. */
        assert_int_equal(resolve(NULL, &c), -ENOKEY);
        /* A default profile without credentials: the same. */
        write_text(config_path, "[default]\nregion = eu-west-1\n[profile named]\nregion = x\n");
        assert_int_equal(resolve(NULL, &c), -ENOKEY);
        /* A named profile must exist and give credentials. */
        assert_int_equal(resolve("nope", &c), -EINVAL);
        assert_int_equal(resolve("named", &c), -EINVAL);
        setenv("AWS_PROFILE", "nope", 1);
        assert_int_equal(resolve(NULL, &c), -EINVAL);
        assert_null(c.access_key_id);
}

static void test_refused_before_sending(void **state)
{
        static const struct {
                const char *config;
                const char *profile;
                int error;
        } cases[] = {
                {"[default]\naws_access_key_id = " KEY_ID "\n", NULL, -EINVAL},
                {"[default]\naws_secret_access_key = " SECRET "\n", NULL, -EINVAL},
                {"[default]\naws_access_key_id = short\naws_secret_access_key = s\n", NULL,
                 -EINVAL},
                {"[default]\ncredential_process = /bin/true\n", NULL, -EINVAL},
                {"[profile a]\nrole_arn = " ROLE "\n", "a", -EINVAL},
                {"[profile a]\nrole_arn = not-an-arn\nsource_profile = a\n", "a", -EINVAL},
                {"[profile a]\nrole_arn = " ROLE "\ncredential_source = Ec2InstanceMetadata\n", "a",
                 -EINVAL},
                {"[profile a]\nrole_arn = " ROLE "\nsource_profile = b\nmfa_serial = x\n", "a",
                 -EINVAL},
                {"[profile a]\nrole_arn = " ROLE "\nsource_profile = b\n", "a", -EINVAL},
                {"[profile a]\nrole_arn = " ROLE "\nsource_profile = b\n[profile b]\nregion = x\n",
                 "a", -EINVAL},
                {"[profile a]\nrole_arn = " ROLE "\nsource_profile = a\n", "a", -ELOOP},
                {"[profile a]\nrole_arn = " ROLE "\nsource_profile = b\n"
                 "[profile b]\nrole_arn = " ROLE "\nsource_profile = a\n",
                 "a", -ELOOP},
                {"[profile a]\nrole_arn = " ROLE "\nsource_profile = b\nduration_seconds = 60\n",
                 "a", -EINVAL},
                {"[profile a]\nrole_arn = " ROLE "\nsource_profile = b\nexternal_id = x y\n", "a",
                 -EINVAL},
        };
        struct aws_credentials c = {};

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                write_text(config_path, cases[i].config);
                assert_int_equal(resolve(cases[i].profile, &c), cases[i].error);
                assert_null(c.access_key_id);
        }
}

/* resolve(), with what it logs (at LOG_ERR, to stderr) in *ret_log. */
static int resolve_logged(const char *profile, struct aws_credentials *c, char **ret_log)
{
        struct creds_profile_config k = cfg(profile);
        FILE *f = tmpfile();
        int saved, r;
        off_t n;

        assert_non_null(f);
        fflush(stderr);
        saved = dup(STDERR_FILENO);
        assert_true(saved >= 0);
        assert_true(dup2(fileno(f), STDERR_FILENO) >= 0);
        log_set_target(LOG_TARGET_STDERR);
        r = creds_profile_resolve(&k, LOG_ERR, c);
        fflush(stderr);
        assert_true(dup2(saved, STDERR_FILENO) >= 0);
        close(saved);
        n = lseek(fileno(f), 0, SEEK_END);
        assert_true(n >= 0);
        *ret_log = calloc(1, (size_t)n + 1);
        assert_non_null(*ret_log);
        assert_int_equal(pread(fileno(f), *ret_log, (size_t)n, 0), n);
        fclose(f);
        return r;
}

/*
 * A cycle would also end at the chain's length limit, with the same -ELOOP: the reason logged
 * tells that it was seen as a cycle, at once.
 */
static void test_cycle_named(void **state)
{
        static const char *const cases[][2] = {
                {"[profile a]\nrole_arn = " ROLE "\nsource_profile = a\n",
                 "source_profile: a cycle: a -> a"},
                {"[profile a]\nrole_arn = " ROLE "\nsource_profile = b\n"
                 "[profile b]\nrole_arn = " ROLE "\nsource_profile = a\n",
                 "source_profile: a cycle: a -> b -> a"},
        };
        struct aws_credentials c = {};

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char *log = NULL;

                write_text(config_path, cases[i][0]);
                assert_int_equal(resolve_logged("a", &c, &log), -ELOOP);
                assert_non_null(strstr(log, cases[i][1]));
                assert_null(c.access_key_id);
                free(log);
        }
}

static void test_chain_too_long(void **state)
{
        _cleanup_free_ char *text = NULL;
        char *t = NULL;
        struct aws_credentials c = {};

        /* p0 -> p1 -> ... -> p6, which holds keys: 7 roles, more than allowed. */
        for (int i = 0; i <= CREDS_PROFILE_MAX_CHAIN + 1; i++) {
                t = strprintf("%s[profile p%d]\nrole_arn = " ROLE "\nsource_profile = p%d\n",
                              text ? text : "", i, i + 1);
                free(text);
                text = t;
        }
        t = strprintf("%s[profile p%d]\naws_access_key_id = " KEY_ID
                      "\naws_secret_access_key = s\n",
                      text, CREDS_PROFILE_MAX_CHAIN + 2);
        free(text);
        text = t;
        write_text(config_path, text);
        assert_int_equal(resolve("p0", &c), -ELOOP);
}

static void test_default_paths(void **state)
{
        _cleanup_free_ char *aws = strprintf("%s/.aws", dir), *path = NULL;
        struct creds_profile_config k = {.endpoint_url = DEAD_ENDPOINT};
        struct aws_credentials c = {};

        /* ~/.aws/credentials, then $AWS_SHARED_CREDENTIALS_FILE with its ~/ */
        setenv("HOME", dir, 1);
        assert_int_equal(mkdir(aws, 0700), 0);
        path = strprintf("%s/credentials", aws);
        write_text(path, "[default]\naws_access_key_id = " KEY_ID "\naws_secret_access_key = s\n");
        assert_int_equal(creds_profile_resolve(&k, LOG_DEBUG, &c), 0);
        assert_string_equal(c.access_key_id, KEY_ID);
        aws_credentials_done(&c);
        setenv("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/other", 1);
        assert_int_equal(creds_profile_resolve(&k, LOG_DEBUG, &c), -ENOKEY);
        /* A path that is not a regular file counts as no file, as in botocore. */
        setenv("AWS_SHARED_CREDENTIALS_FILE", dir, 1);
        assert_int_equal(creds_profile_resolve(&k, LOG_DEBUG, &c), -ENOKEY);
        unlink(path);
        rmdir(aws);
}

/* The profile's region, for commands that may run off EC2 (import): the config file only. */
static void test_profile_region(void **state)
{
        struct creds_profile_config k = cfg(NULL);
        char *region = NULL;

        assert_int_equal(creds_profile_region(&k, &region), 0); /* no file */
        assert_null(region);
        write_text(config_path, "[default]\nregion = us-west-2\n[profile a]\nregion = "
                                "eu-west-1\n[profile b]\noutput = json\n[profile bad]\n"
                                "region = not a region\n");
        write_text(creds_path, "[c]\nregion = ap-south-1\n");
        assert_int_equal(creds_profile_region(&k, &region), 0);
        assert_string_equal(region, "us-west-2");
        free(region);
        setenv("AWS_PROFILE", "a", 1);
        assert_int_equal(creds_profile_region(&k, &region), 0);
        assert_string_equal(region, "eu-west-1");
        free(region);
        k.profile = "b";
        assert_int_equal(creds_profile_region(&k, &region), 0);
        assert_null(region);
        k.profile = "c"; /* the credentials file's region is not read, as in botocore */
        assert_int_equal(creds_profile_region(&k, &region), 0);
        assert_null(region);
        k.profile = "bad";
        assert_int_equal(creds_profile_region(&k, &region), -EINVAL);
        assert_null(region);
}

static void test_attached_to_the_chain(void **state)
{
        struct creds_provider *p = NULL;
        const struct aws_credentials *c = NULL;
        struct creds_profile_config k = cfg(NULL);

        assert_int_equal(creds_provider_new(NULL, NULL, NULL, &p), 0);
        assert_int_equal(creds_profile_attach(p, &k), 0);
        /* Nothing applies, and that is kept: a file written later is not read. */
        assert_int_equal(creds_provider_get(p, &c), -ENOKEY);
        write_text(creds_path,
                   "[default]\naws_access_key_id = " KEY_ID "\naws_secret_access_key = s\n");
        assert_int_equal(creds_provider_get(p, &c), -ENOKEY);
        creds_provider_free(p);
        /* A new chain reads it; the environment still comes first. */
        assert_int_equal(creds_provider_new(NULL, NULL, NULL, &p), 0);
        assert_int_equal(creds_profile_attach(p, &k), 0);
        assert_int_equal(creds_provider_get(p, &c), 0);
        assert_string_equal(c->source, "profile:default");
        setenv("AWS_ACCESS_KEY_ID", "AKIAENVENVENVENVENV0", 1);
        setenv("AWS_SECRET_ACCESS_KEY", "e", 1);
        assert_int_equal(creds_provider_get(p, &c), 0);
        assert_string_equal(c->source, "environment");
        creds_provider_free(p);
}

static void test_static_provider(void **state)
{
        struct aws_credentials src = {.access_key_id = (char *)KEY_ID,
                                      .secret_access_key = (char *)SECRET,
                                      .source = (char *)"x"};
        struct creds_provider *p = NULL;
        const struct aws_credentials *c = NULL;

        assert_int_equal(creds_provider_new_static(&(struct aws_credentials){}, &p), -EINVAL);
        assert_int_equal(creds_provider_new_static(&src, &p), 0);
        /* Its own set, whatever the environment says. */
        setenv("AWS_ACCESS_KEY_ID", "AKIAENVENVENVENVENV0", 1);
        setenv("AWS_SECRET_ACCESS_KEY", "e", 1);
        assert_int_equal(creds_provider_get(p, &c), 0);
        assert_string_equal(c->access_key_id, KEY_ID);
        creds_provider_invalidate(p);
        assert_int_equal(creds_provider_get(p, &c), 0);
        assert_string_equal(c->secret_access_key, SECRET);
        creds_provider_free(p);
}

static void test_sts_rules(void **state)
{
        assert_true(sts_role_arn_valid(ROLE));
        assert_true(sts_role_arn_valid("arn:aws-us-gov:iam::111111111111:role/path/to/r+=,.@-"));
        assert_false(sts_role_arn_valid("arn:aws:iam::11111111111:role/r"));
        assert_false(sts_role_arn_valid("arn:aws:iam::111111111111:user/r"));
        assert_false(sts_role_arn_valid("arn:aws:iam::111111111111:role/"));
        assert_false(sts_role_arn_valid("arn:aws:iam::111111111111:role/a//b"));
        assert_false(sts_role_arn_valid("arn:aws:sts::111111111111:role/r"));
        assert_false(sts_role_arn_valid("arn::iam::111111111111:role/r"));
        assert_false(sts_role_arn_valid("arn:aws:iam::111111111111:role/r s"));
        assert_false(sts_role_arn_valid(NULL));
        assert_true(sts_session_name_valid("ec2-imaged-1700000000"));
        assert_false(sts_session_name_valid("x"));
        assert_false(sts_session_name_valid("with space"));
        assert_true(sts_external_id_valid("urn:ext/id-1"));
        assert_false(sts_external_id_valid("a"));
}

static void test_sts_parse(void **state)
{
        static const char body[] =
                "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
                "<AssumeRoleResult><AssumedRoleUser><Arn>arn:aws:sts::111111111111:assumed-role/"
                "target/s</Arn></AssumedRoleUser><Credentials>"
                "<AccessKeyId>ASIAEXAMPLEEXAMPLE00</AccessKeyId>"
                "<SecretAccessKey>" SECRET "</SecretAccessKey>"
                "<SessionToken>FwoGZXIvYXdzEXAMPLE</SessionToken>"
                "<Expiration>2030-01-02T03:04:05.123Z</Expiration>"
                "</Credentials></AssumeRoleResult></AssumeRoleResponse>";
        struct aws_credentials c = {};
        char *bad;

        assert_int_equal(sts_parse_assume_role(body, sizeof(body) - 1, ROLE, &c), 0);
        assert_string_equal(c.access_key_id, "ASIAEXAMPLEEXAMPLE00");
        assert_string_equal(c.secret_access_key, SECRET);
        assert_string_equal(c.session_token, "FwoGZXIvYXdzEXAMPLE");
        assert_int_equal(c.expiration, 1893553445000000ULL);
        assert_string_equal(c.role_name, "target");
        assert_string_equal(c.source, "assumed-role:" ROLE);
        aws_credentials_done(&c);
        /* Each credential field is required and checked. */
        static const char *const parts[] = {"<SessionToken>", "<Expiration>2030", "<AccessKeyId>"};
        for (size_t i = 0; i < ELEMENTSOF(parts); i++) {
                bad = strdup(body);
                memcpy(strstr(bad, parts[i]) + 1, "Xx", 2);
                assert_int_equal(sts_parse_assume_role(bad, strlen(bad), ROLE, &c), -EBADMSG);
                free(bad);
        }
        bad = strdup(body);
        memcpy(strstr(bad, SECRET), "a b", 3);
        assert_int_equal(sts_parse_assume_role(bad, strlen(bad), ROLE, &c), -EBADMSG);
        free(bad);
        assert_int_equal(sts_parse_assume_role("<GetCallerIdentityResponse/>", 28, ROLE, &c),
                         -EBADMSG);
        assert_null(c.access_key_id);
}

static int group_setup(void **state)
{
        assert_non_null(mkdtemp(dir));
        snprintf(creds_path, sizeof(creds_path), "%s/credentials", dir);
        snprintf(config_path, sizeof(config_path), "%s/config", dir);
        return 0;
}

static int group_teardown(void **state)
{
        _cleanup_free_ char *aws = strprintf("%s/.aws", dir),
                            *path = strprintf("%s/.aws/credentials", dir);

        /* Also what a failed test_default_paths left behind. */
        setup(state);
        unlink(path);
        rmdir(aws);
        rmdir(dir);
        return 0;
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup(test_static_keys, setup),
                cmocka_unit_test_setup(test_which_profile, setup),
                cmocka_unit_test_setup(test_refused_before_sending, setup),
                cmocka_unit_test_setup(test_cycle_named, setup),
                cmocka_unit_test_setup(test_chain_too_long, setup),
                cmocka_unit_test_setup(test_default_paths, setup),
                cmocka_unit_test_setup(test_profile_region, setup),
                cmocka_unit_test_setup(test_attached_to_the_chain, setup),
                cmocka_unit_test_setup(test_static_provider, setup),
                cmocka_unit_test(test_sts_rules),
                cmocka_unit_test(test_sts_parse),
        };

        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
