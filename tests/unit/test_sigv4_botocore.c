/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Our SigV4 signature must be byte-for-byte botocore's. For each request below (the EC2 Query API
 * calls the agent makes, with and without a session token) tests/unit/botocore_sign.py signs it
 * with botocore's SigV4Auth under Debian's /usr/bin/python3 at a fixed timestamp and prints the
 * Authorization header and the canonical request it signed; we sign the same request with
 * sigv4_sign() and compare both. Only public example credentials are used.
 *
 * botocore adds X-Amz-Date and X-Amz-Security-Token itself and takes Host from the URL; on our
 * side those are the caller's job, so this also checks that our callers' convention (sign the
 * session token as a header) is the one botocore follows.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "aws/credentials.h"
#include "aws/sigv4.h"
#include "util/macro.h"

#define PYTHON     "/usr/bin/python3"
#define AKID       "AKIDEXAMPLE"
#define SECRET     "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define TOKEN      "FQoGZXIvYXdzEXAMPLE//fake/session+token=="
#define TIMESTAMP  "20240229T235959Z"
#define REGION     "us-west-2"
#define SERVICE    "ec2"
#define EC2_HOST   "ec2.us-west-2.amazonaws.com"
#define FORM_TYPE  "application/x-www-form-urlencoded; charset=utf-8"
#define MAX_OUTPUT (64 * 1024)

struct sign_case {
        const char *name;
        const char *method;
        const char *path;
        const char *query; /* NULL: none */
        const char *content_type;
        const char *body;
        const char *session_token;
};

#define DESCRIBE_IMAGES                                                                            \
        "Action=DescribeImages&Version=2016-11-15&Owner.1=self&Filter.1.Name=name"                 \
        "&Filter.1.Value.1=my%20image"

static const struct sign_case sign_cases[] = {
        {"ec2-post", "POST", "/", NULL, FORM_TYPE, DESCRIBE_IMAGES, NULL},
        {"ec2-post-session-token", "POST", "/", NULL, FORM_TYPE, DESCRIBE_IMAGES, TOKEN},
        /* The Query API over GET: botocore sorts the query, we decode, re-encode and sort. */
        {"ec2-get-query", "GET", "/", DESCRIBE_IMAGES, NULL, "", TOKEN},
        /* A wire-encoded path with dot segments and a doubled slash: both double-encode. */
        {"path-normalize", "GET", "/a%20b/./c//", NULL, NULL, "", NULL},
};

static char *script_path(void)
{
        const char *slash = strrchr(__FILE__, '/');
        char *p = NULL;

        /* __FILE__ is "tests/unit/test_sigv4_botocore.c" as make compiles it from the repo root,
         * which is also where make runs the tests from. */
        if (slash)
                assert_true(asprintf(&p, "%.*s/botocore_sign.py", (int)(slash - __FILE__),
                                     __FILE__) > 0);
        else
                p = strdup("botocore_sign.py");
        assert_non_null(p);
        if (access(p, R_OK) < 0)
                fail_msg("%s: %s (run from the repository root)", p, strerror(errno));
        return p;
}

/* Run argv[0] with stdout captured (at most MAX_OUTPUT bytes); fail the test unless it exits 0. */
static char *run_capture(char *const argv[])
{
        _cleanup_free_ char *out = malloc(MAX_OUTPUT + 1);
        size_t len = 0;
        int fds[2], status;
        pid_t pid;

        assert_non_null(out);
        assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                int null = open("/dev/null", O_RDONLY | O_CLOEXEC);

                if (null < 0 || dup2(null, STDIN_FILENO) < 0 || dup2(fds[1], STDOUT_FILENO) < 0)
                        _exit(127);
                execv(argv[0], argv);
                _exit(127);
        }
        close(fds[1]);
        for (;;) {
                ssize_t n = read(fds[0], out + len, MAX_OUTPUT - len);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                len += (size_t)n;
                if (len == MAX_OUTPUT)
                        break;
        }
        close(fds[0]);
        while (waitpid(pid, &status, 0) < 0)
                assert_int_equal(errno, EINTR);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                fail_msg("%s %s failed (status 0x%x); is python3-botocore installed?", argv[0],
                         argv[2], (unsigned)status);
        assert_true(len < MAX_OUTPUT);
        out[len] = '\0';
        return TAKE_PTR(out);
}

static void test_same_as_botocore(void **state)
{
        const struct sign_case *c = *state;
        _cleanup_free_ char *script = script_path(), *url = NULL, *ctype_arg = NULL;
        _cleanup_free_ char *out = NULL, *creq = NULL, *signed_headers = NULL, *authz = NULL;
        struct aws_credentials creds = {.access_key_id = AKID, .secret_access_key = SECRET};
        struct sigv4_header headers[4];
        const char *argv[32];
        size_t n_argv = 0, n_headers = 0;
        char *boto_creq;

        assert_true(asprintf(&url, "https://" EC2_HOST "%s%s%s", c->path, c->query ? "?" : "",
                             strempty(c->query)) > 0);
        if (c->content_type)
                assert_true(asprintf(&ctype_arg, "Content-Type: %s", c->content_type) > 0);

        argv[n_argv++] = PYTHON;
        argv[n_argv++] = "-I"; /* Debian's botocore, whatever PYTHONPATH or ~/.local hold */
        argv[n_argv++] = script;
        argv[n_argv++] = "--method";
        argv[n_argv++] = c->method;
        argv[n_argv++] = "--url";
        argv[n_argv++] = url;
        argv[n_argv++] = "--region=" REGION;
        argv[n_argv++] = "--service=" SERVICE;
        argv[n_argv++] = "--timestamp=" TIMESTAMP;
        argv[n_argv++] = "--access-key=" AKID;
        argv[n_argv++] = "--secret-key=" SECRET;
        if (c->session_token) {
                argv[n_argv++] = "--session-token";
                argv[n_argv++] = c->session_token;
        }
        if (ctype_arg) {
                argv[n_argv++] = "--header";
                argv[n_argv++] = ctype_arg;
        }
        argv[n_argv++] = "--body";
        argv[n_argv++] = c->body;
        argv[n_argv] = NULL;
        out = run_capture((char *const *)argv);

        /* Line 1: Authorization; then the canonical request, with print()'s newline at the end. */
        boto_creq = strchr(out, '\n');
        assert_non_null(boto_creq);
        *boto_creq++ = '\0';
        if (*boto_creq && boto_creq[strlen(boto_creq) - 1] == '\n')
                boto_creq[strlen(boto_creq) - 1] = '\0';

        /* The caller's side of the contract: Host, X-Amz-Date and, with a session token, the
         * X-Amz-Security-Token header, all signed. */
        headers[n_headers++] = (struct sigv4_header){"Host", EC2_HOST};
        if (c->content_type)
                headers[n_headers++] = (struct sigv4_header){"Content-Type", c->content_type};
        headers[n_headers++] = (struct sigv4_header){"X-Amz-Date", TIMESTAMP};
        if (c->session_token) {
                creds.session_token = (char *)c->session_token;
                headers[n_headers++] =
                        (struct sigv4_header){"X-Amz-Security-Token", c->session_token};
        }
        struct sigv4_request req = {
                .method = c->method,
                .path = c->path,
                .query = c->query,
                .headers = headers,
                .n_headers = n_headers,
                .payload = c->body,
                .payload_len = strlen(c->body),
        };

        assert_int_equal(sigv4_canonical_request(&req, &creq, &signed_headers), 0);
        if (strcmp(creq, boto_creq) != 0)
                fail_msg("%s: canonical request differs\n--- botocore\n%s\n--- ours\n%s\n", c->name,
                         boto_creq, creq);
        assert_int_equal(sigv4_sign(&req, &creds, REGION, SERVICE, TIMESTAMP, &authz), 0);
        if (strcmp(authz, out) != 0)
                fail_msg("%s: Authorization differs\n--- botocore\n%s\n--- ours\n%s\n", c->name,
                         out, authz);
}

int main(void)
{
        struct CMUnitTest tests[ELEMENTSOF(sign_cases)];
        int failed;

        for (size_t i = 0; i < ELEMENTSOF(sign_cases); i++)
                tests[i] = (struct CMUnitTest){.name = sign_cases[i].name,
                                               .test_func = test_same_as_botocore,
                                               .initial_state = (void *)&sign_cases[i]};
        failed = _cmocka_run_group_tests("sigv4 vs botocore", tests, ELEMENTSOF(tests), NULL, NULL);
        fflush(stdout);
        fprintf(stderr, "test_sigv4_botocore: %zu requests compared with botocore, %d failed\n",
                ELEMENTSOF(sign_cases), failed);
        return failed ? 1 : 0;
}
