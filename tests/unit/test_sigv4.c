/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SigV4 against AWS's own test suite: every case directory under
 * $TESTDATA/aws-sig-v4-test-suite (some nested one level deeper, e.g. normalize-path/get-space)
 * is found by walking the tree, its .req parsed, and the canonical request, string to sign and
 * Authorization header held against .creq, .sts and .authz. Finding no case at all is a failure,
 * so a moved or missing suite cannot pass silently. A few edge cases the suite does not cover
 * follow.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "aws/credentials.h"
#include "aws/sigv4.h"
#include "util/macro.h"
#include "util/secret.h"

#define SUITE_DIR    "aws-sig-v4-test-suite"
#define SUITE_REGION "us-east-1"
#define SUITE_SVC    "service"
#define SUITE_AKID   "AKIDEXAMPLE"
#define SUITE_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define MAX_FILE     (64u * 1024u)
#define MAX_HEADERS  64

/*
 * Cases whose .req leaves out the X-Amz-Security-Token that their .creq signs: AWS produced them
 * from credentials carrying a session token, i.e. the convention our callers follow (add the
 * header, then sign). The token is taken from the case's .sreq. The suite's other token cases
 * under post-sts-token/ carry the header in .req, or sign without it, and need nothing special.
 */
static const char *const session_token_cases[] = {"get-vanilla-with-session-token"};

struct suite_case {
        char *dir;  /* full path of the case directory */
        char *name; /* relative to the suite root, e.g. "normalize-path/get-space" */
        char *base; /* the directory's own name, which also names its files */
};

static struct suite_case *cases;
static size_t n_cases;

static int read_file(const char *path, char **ret, size_t *ret_len)
{
        _cleanup_free_ char *data = NULL;
        FILE *f = fopen(path, "re");
        size_t n;

        if (!f)
                return -errno;
        data = malloc(MAX_FILE + 1);
        if (!data) {
                fclose(f);
                return -ENOMEM;
        }
        n = fread(data, 1, MAX_FILE + 1, f);
        if (ferror(f) || n > MAX_FILE) {
                fclose(f);
                return -EFBIG;
        }
        fclose(f);
        data[n] = '\0';
        *ret = TAKE_PTR(data);
        if (ret_len)
                *ret_len = n;
        return 0;
}

static char *case_file(const struct suite_case *c, const char *ext)
{
        char *p = NULL;

        assert_true(asprintf(&p, "%s/%s.%s", c->dir, c->base, ext) > 0);
        return p;
}

static char *read_case_file(const struct suite_case *c, const char *ext, size_t *ret_len)
{
        _cleanup_free_ char *path = case_file(c, ext);
        char *data = NULL;
        int r = read_file(path, &data, ret_len);

        if (r < 0)
                fail_msg("%s: %s", path, strerror(-r));
        return data;
}

/* A parsed .req: pointers into one mutable copy of the file's text. */
struct parsed_req {
        char *text;
        const char *method, *path, *query;
        struct sigv4_header headers[MAX_HEADERS + 1]; /* one spare for a session token */
        char *joined[MAX_HEADERS + 1]; /* values glued from continuation lines, owned */
        size_t n_headers;
        const char *body;
        size_t body_len;
};

static void parsed_req_done(struct parsed_req *p)
{
        for (size_t i = 0; i < ELEMENTSOF(p->joined); i++)
                free(p->joined[i]);
        free(p->text);
}

/* Cut the line at *pos (ending in "\n" or "\r\n" or at the end) and advance past it. */
static char *next_line(char **pos)
{
        char *line = *pos, *nl;

        if (!line)
                return NULL;
        nl = strchr(line, '\n');
        if (nl) {
                *nl = '\0';
                *pos = nl + 1;
        } else {
                *pos = NULL;
        }
        if (nl && nl > line && nl[-1] == '\r')
                nl[-1] = '\0';
        return line;
}

/*
 * Parse "METHOD target HTTP/1.1", headers (a line that starts with a blank continues the header
 * before it), an empty line, then the body. The target can contain spaces (get-space), so the
 * method ends at the first space and the version starts at the last.
 */
static int parse_req(char *text, size_t len, struct parsed_req *p)
{
        char *pos = text, *line, *sp, *q;

        p->text = text;
        line = next_line(&pos);
        sp = line ? strchr(line, ' ') : NULL;
        q = line ? strrchr(line, ' ') : NULL;
        if (!sp || q == sp)
                return -EINVAL;
        *sp = '\0';
        *q = '\0';
        p->method = line;
        p->path = sp + 1;
        q = strchr(sp + 1, '?');
        if (q) {
                *q = '\0';
                p->query = q + 1;
        }

        while ((line = next_line(&pos)) && *line) {
                if (*line == ' ' || *line == '\t') {
                        /* A continuation line: glue it on with the line break intact, which is
                         * what sigv4 must fold. */
                        size_t i = p->n_headers - 1;
                        char *v = NULL;

                        if (p->n_headers == 0 ||
                            asprintf(&v, "%s\n%s", p->headers[i].value, line) < 0)
                                return -EINVAL;
                        free(p->joined[i]);
                        p->joined[i] = v;
                        p->headers[i].value = v;
                        continue;
                }
                sp = strchr(line, ':');
                if (!sp || p->n_headers == MAX_HEADERS)
                        return -EINVAL;
                *sp = '\0';
                p->headers[p->n_headers++] = (struct sigv4_header){line, sp + 1};
        }
        p->body = pos ? pos : "";
        p->body_len = pos ? len - (size_t)(pos - text) : 0;
        return 0;
}

static const char *find_header(const struct parsed_req *p, const char *name)
{
        for (size_t i = 0; i < p->n_headers; i++)
                if (strcasecmp(p->headers[i].name, name) == 0)
                        return p->headers[i].value;
        return NULL;
}

static void assert_stage(const char *name, const char *stage, const char *got, const char *want)
{
        if (strcmp(got, want) != 0)
                fail_msg("%s: %s differs\n--- expected\n%s\n--- got\n%s\n", name, stage, want, got);
}

static void test_suite_case(void **state)
{
        const struct suite_case *c = *state;
        _cleanup_(parsed_req_done) struct parsed_req p = {};
        _cleanup_free_ char *want_creq = NULL, *want_sts = NULL, *want_authz = NULL;
        _cleanup_free_ char *creq = NULL, *signed_headers = NULL, *sts = NULL, *authz = NULL,
                            *authz2 = NULL, *sreq = NULL, *scope = NULL;
        struct aws_credentials creds = {.access_key_id = SUITE_AKID,
                                        .secret_access_key = SUITE_SECRET};
        const char *amz_date;
        char *text, date[9];
        uint8_t key[32];
        size_t len = 0;
        int r;

        text = read_case_file(c, "req", &len);
        r = parse_req(text, len, &p);
        want_creq = read_case_file(c, "creq", NULL);
        want_sts = read_case_file(c, "sts", NULL);
        want_authz = read_case_file(c, "authz", NULL);
        if (r < 0)
                fail_msg("%s: cannot parse .req", c->name);

        for (size_t i = 0; i < ELEMENTSOF(session_token_cases); i++) {
                _cleanup_(parsed_req_done) struct parsed_req s = {};

                if (strcmp(c->name, session_token_cases[i]) != 0)
                        continue;
                text = read_case_file(c, "sreq", &len);
                assert_int_equal(parse_req(text, len, &s), 0);
                sreq = strdup(strempty(find_header(&s, "X-Amz-Security-Token")));
                assert_non_null(sreq);
                assert_true(*sreq);
                creds.session_token = sreq;
                /* What our callers do with a session token: sign it as a header. */
                p.headers[p.n_headers++] = (struct sigv4_header){"X-Amz-Security-Token", sreq};
        }

        amz_date = find_header(&p, "X-Amz-Date");
        assert_non_null(amz_date);
        assert_int_equal(strlen(amz_date), 16);
        memcpy(date, amz_date, 8);
        date[8] = '\0';
        assert_true(asprintf(&scope, "%s/%s/%s/aws4_request", date, SUITE_REGION, SUITE_SVC) > 0);

        struct sigv4_request req = {
                .method = p.method,
                .path = p.path,
                .query = p.query,
                .headers = p.headers,
                .n_headers = p.n_headers,
                .payload = p.body,
                .payload_len = p.body_len,
        };

        assert_int_equal(sigv4_canonical_request(&req, &creq, &signed_headers), 0);
        assert_stage(c->name, "canonical request", creq, want_creq);
        assert_int_equal(sigv4_string_to_sign(amz_date, scope, creq, &sts), 0);
        assert_stage(c->name, "string to sign", sts, want_sts);
        assert_int_equal(sigv4_signing_key(SUITE_SECRET, date, SUITE_REGION, SUITE_SVC, key), 0);
        assert_int_equal(sigv4_authorization(SUITE_AKID, scope, signed_headers, key, sts, &authz),
                         0);
        secret_wipe(key, sizeof(key));
        assert_stage(c->name, "authorization", authz, want_authz);

        /* And all at once, the way the agent signs. */
        assert_int_equal(sigv4_sign(&req, &creds, SUITE_REGION, SUITE_SVC, amz_date, &authz2), 0);
        assert_stage(c->name, "sigv4_sign", authz2, want_authz);
}

static int case_cmp(const void *a, const void *b)
{
        return strcmp(((const struct suite_case *)a)->name, ((const struct suite_case *)b)->name);
}

/* A case is a directory D holding D/<basename D>.req; anything else is walked into. */
static int walk(const char *root, const char *rel)
{
        _cleanup_free_ char *dir = NULL, *req = NULL;
        const char *base = strrchr(rel, '/') ? strrchr(rel, '/') + 1 : rel;
        struct dirent *de;
        struct stat st;
        DIR *d;
        int r = 0;

        if (asprintf(&dir, "%s%s%s", root, *rel ? "/" : "", rel) < 0)
                return -ENOMEM;
        if (*rel && asprintf(&req, "%s/%s.req", dir, base) < 0)
                return -ENOMEM;
        if (req && stat(req, &st) == 0) {
                struct suite_case *n = realloc(cases, (n_cases + 1) * sizeof(*cases));

                if (!n)
                        return -ENOMEM;
                cases = n;
                cases[n_cases].dir = TAKE_PTR(dir);
                cases[n_cases].name = strdup(rel);
                cases[n_cases].base = strdup(base);
                if (!cases[n_cases].name || !cases[n_cases].base)
                        return -ENOMEM;
                n_cases++;
                return 0;
        }

        d = opendir(dir);
        if (!d)
                return -errno;
        while (r >= 0 && (de = readdir(d))) {
                _cleanup_free_ char *sub = NULL, *full = NULL;

                if (de->d_name[0] == '.')
                        continue;
                if (asprintf(&sub, "%s%s%s", rel, *rel ? "/" : "", de->d_name) < 0 ||
                    asprintf(&full, "%s/%s", dir, de->d_name) < 0) {
                        r = -ENOMEM;
                        break;
                }
                if (stat(full, &st) == 0 && S_ISDIR(st.st_mode))
                        r = walk(root, sub);
        }
        closedir(d);
        return r;
}

/* Edge cases the suite does not cover. */

static const struct sigv4_header base_headers[] = {
        {"Host", "example.amazonaws.com"},
        {"X-Amz-Date", "20150830T123600Z"},
};

static char *creq_of(const char *method, const char *path, const char *query, int *ret_r)
{
        struct sigv4_request req = {method, path, query, base_headers, ELEMENTSOF(base_headers),
                                    NULL,   0};
        _cleanup_free_ char *sh = NULL;
        char *creq = NULL;

        *ret_r = sigv4_canonical_request(&req, &creq, &sh);
        return creq;
}

/* The second line of a canonical request (URI) or the third (query), as a new string. */
static char *creq_line(const char *creq, int n)
{
        const char *s = creq;

        for (int i = 0; i < n; i++)
                s = strchr(s, '\n') + 1;
        return strndup(s, strcspn(s, "\n"));
}

static void test_paths_and_queries(void **state)
{
        static const struct {
                const char *path, *query, *want_uri, *want_query;
        } t[] = {
                {"/a/./b/../c//", NULL, "/a/c/", ""},
                {"/a%20b", NULL, "/a%2520b", ""}, /* wire-encoded path: double-encoded */
                {"/..", NULL, "/", ""},
                {"/a/.", NULL, "/a", ""},
                {"", "", "/", ""},
                {"/", "b&a=&c=1+2", "/", "a=&b=&c=1%2B2"},
                {"/", "x=%e1%88%b4&&y=%7E", "/", "x=%E1%88%B4&y=~"},
                {"/", "Filter.1.Value.1=my%20image&Action=X", "/",
                 "Action=X&Filter.1.Value.1=my%20image"},
        };

        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                _cleanup_free_ char *creq = NULL, *uri = NULL, *query = NULL;
                int r;

                creq = creq_of("GET", t[i].path, t[i].query, &r);
                assert_int_equal(r, 0);
                uri = creq_line(creq, 1);
                query = creq_line(creq, 2);
                assert_string_equal(uri, t[i].want_uri);
                assert_string_equal(query, t[i].want_query);
        }
}

static void test_rejects(void **state)
{
        static const struct sigv4_header no_host[] = {{"X-Amz-Date", "20150830T123600Z"}};
        static const struct sigv4_header with_authz[] = {
                {"Host", "h"}, {"X-Amz-Date", "20150830T123600Z"}, {"Authorization", "x"}};
        static const struct sigv4_header bad_name[] = {
                {"Host", "h"}, {"X-Amz-Date", "20150830T123600Z"}, {"Bad Name", "x"}};
        struct aws_credentials creds = {.access_key_id = SUITE_AKID,
                                        .secret_access_key = SUITE_SECRET};
        char *creq = (char *)"untouched", *sh = (char *)"untouched", *authz = (char *)"untouched";
        struct sigv4_request req = {"GET", "/", NULL, no_host, 1, NULL, 0};
        int r;

        assert_int_equal(sigv4_canonical_request(&req, &creq, &sh), -EINVAL);
        req.headers = with_authz;
        req.n_headers = 3;
        assert_int_equal(sigv4_canonical_request(&req, &creq, &sh), -EINVAL);
        req.headers = bad_name;
        assert_int_equal(sigv4_canonical_request(&req, &creq, &sh), -EINVAL);
        /* Out-parameters are written only on success. */
        assert_string_equal(creq, "untouched");
        assert_string_equal(sh, "untouched");

        assert_null(creq_of("GET", "/", "a=%zz", &r));
        assert_int_equal(r, -EINVAL);
        assert_null(creq_of("GET", "/", "a=%4", &r));
        assert_int_equal(r, -EINVAL);
        assert_null(creq_of("GET", "relative", NULL, &r));
        assert_int_equal(r, -EINVAL);

        /* amz_date must agree with the X-Amz-Date that gets signed. */
        req.headers = base_headers;
        req.n_headers = ELEMENTSOF(base_headers);
        assert_int_equal(sigv4_sign(&req, &creds, "us-east-1", "ec2", "20150830T123601Z", &authz),
                         -EINVAL);
        assert_int_equal(sigv4_sign(&req, &creds, "us/east", "ec2", "20150830T123600Z", &authz),
                         -EINVAL);
        assert_string_equal(authz, "untouched");
}

/* The worked example of deriving a signing key in AWS's SigV4 documentation. */
static void test_signing_key_docs_example(void **state)
{
        uint8_t key[32];
        char hex[65];

        assert_int_equal(sigv4_signing_key(SUITE_SECRET, "20120215", "us-east-1", "iam", key), 0);
        for (size_t i = 0; i < 32; i++)
                snprintf(hex + 2 * i, 3, "%02x", key[i]);
        assert_string_equal(hex,
                            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
        assert_int_equal(sigv4_sha256_hex(NULL, 0, hex), 0);
        assert_string_equal(hex,
                            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

int main(void)
{
        static const struct CMUnitTest edge_tests[] = {
                cmocka_unit_test(test_paths_and_queries),
                cmocka_unit_test(test_rejects),
                cmocka_unit_test(test_signing_key_docs_example),
        };
        _cleanup_free_ char *root = NULL;
        _cleanup_free_ struct CMUnitTest *tests = NULL;
        const char *testdata = getenv("TESTDATA");
        int r, failed;

        if (!testdata || !*testdata) {
                fprintf(stderr, "test_sigv4: TESTDATA is not set; it must point at the directory "
                                "holding " SUITE_DIR "/\n");
                return 1;
        }
        if (asprintf(&root, "%s/%s", testdata, SUITE_DIR) < 0)
                return 1;
        r = walk(root, "");
        if (r < 0) {
                fprintf(stderr, "test_sigv4: %s: %s\n", root, strerror(-r));
                return 1;
        }
        if (n_cases == 0) {
                fprintf(stderr, "test_sigv4: no test cases found under %s\n", root);
                return 1;
        }
        qsort(cases, n_cases, sizeof(*cases), case_cmp);

        tests = calloc(n_cases, sizeof(*tests));
        if (!tests)
                return 1;
        for (size_t i = 0; i < n_cases; i++)
                tests[i] = (struct CMUnitTest){.name = cases[i].name,
                                               .test_func = test_suite_case,
                                               .initial_state = &cases[i]};

        failed = _cmocka_run_group_tests(SUITE_DIR, tests, n_cases, NULL, NULL);
        fflush(stdout);
        fprintf(stderr,
                "test_sigv4: %zu AWS SigV4 suite cases checked (canonical request, string to "
                "sign, authorization), %d failed\n",
                n_cases, failed);
        failed += cmocka_run_group_tests_name("sigv4 edge cases", edge_tests, NULL, NULL);

        for (size_t i = 0; i < n_cases; i++) {
                free(cases[i].dir);
                free(cases[i].name);
                free(cases[i].base);
        }
        free(cases);
        return failed ? 1 : 0;
}
