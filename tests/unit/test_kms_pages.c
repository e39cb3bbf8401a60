/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ListGrants page by page (aws/kms.c) against a loopback HTTP peer of this test that answers
 * every page with Truncated and a NextMarker up to a page count it is given (moto never pages):
 * each marker is sent back, the listing is whole at the 100-page limit, and one page more is an
 * error naming the key, not a silent cut. Also an answer that says Truncated without a marker.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "aws/creds_provider.h"
#include "aws/kms.h"
#include "util/str.h"

#define KEY_ARN "arn:aws:kms:us-east-1:123456789012:key/0d1e2f3a-0000-4000-8000-000000000000"

struct peer {
        int listen_fd;
        unsigned pages;       /* the last page served has no NextMarker */
        bool no_marker;       /* answer Truncated without NextMarker */
        unsigned requests;    /* pages answered */
        unsigned bad_markers; /* requests whose Marker was not the one the last page gave */
        pthread_t thread;
};

/* One request's head and body; false when the client closed the connection. */
static bool read_request(int fd, char *buf, size_t size)
{
        size_t n = 0;
        char *end = NULL;
        long body = 0;

        while (!end) {
                ssize_t k = read(fd, buf + n, size - 1 - n);
                if (k <= 0)
                        return false;
                n += (size_t)k;
                buf[n] = '\0';
                end = strstr(buf, "\r\n\r\n");
        }
        for (char *h = buf; h < end; h = strstr(h, "\r\n") + 2)
                if (strncasecmp(h, "Content-Length:", 15) == 0)
                        body = strtol(h + 15, NULL, 10);
        while (n < (size_t)(end + 4 - buf) + (size_t)body) {
                ssize_t k = read(fd, buf + n, size - 1 - n);
                if (k <= 0)
                        return false;
                n += (size_t)k;
        }
        buf[n] = '\0';
        return true;
}

static void answer(int fd, struct peer *p, const char *request)
{
        unsigned page = ++p->requests;
        char want[64], next[64] = "", *body, *head;

        /* Page N > 1 must come with the marker page N-1 gave. */
        snprintf(want, sizeof(want), "\"Marker\":\"page-%u\"", page);
        if ((page == 1) != (strstr(request, "\"Marker\"") == NULL) ||
            (page > 1 && !strstr(request, want)) || !strstr(request, "\"Limit\":100"))
                p->bad_markers++;
        if (page < p->pages)
                snprintf(next, sizeof(next), ",\"Truncated\":true%s%u%s",
                         p->no_marker ? ",\"X\":\"" : ",\"NextMarker\":\"page-", page + 1, "\"");
        body = strprintf("{\"Grants\":[{\"GrantId\":\"g-%u\",\"KeyId\":\"" KEY_ARN "\","
                         "\"GranteePrincipal\":\"arn:aws:iam::%s:root\","
                         "\"Operations\":[\"Decrypt\",\"CreateGrant\"],"
                         "\"CreationDate\":1.7E9}]%s}",
                         page, page % 2 ? "111122223333" : "444455556666", next);
        head = strprintf("HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\n"
                         "Content-Length: %zu\r\n\r\n",
                         strlen(body));
        assert_true(write(fd, head, strlen(head)) == (ssize_t)strlen(head));
        assert_true(write(fd, body, strlen(body)) == (ssize_t)strlen(body));
        free(head);
        free(body);
}

static void *serve(void *userdata)
{
        struct peer *p = userdata;
        static char buf[65536];

        for (;;) {
                int fd = accept(p->listen_fd, NULL, NULL);

                if (fd < 0)
                        return NULL;
                while (read_request(fd, buf, sizeof(buf)))
                        answer(fd, p, buf);
                close(fd);
        }
}

/* A client of a fresh peer that serves PAGES pages. */
static struct awsjson_client *client(struct peer *p, unsigned pages, struct creds_provider **creds)
{
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t alen = sizeof(a);
        struct awsjson_client *c = NULL;
        char url[64];

        *p = (struct peer){.pages = pages};
        p->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(p->listen_fd >= 0);
        assert_int_equal(bind(p->listen_fd, (struct sockaddr *)&a, sizeof(a)), 0);
        assert_int_equal(listen(p->listen_fd, 8), 0);
        assert_int_equal(getsockname(p->listen_fd, (struct sockaddr *)&a, &alen), 0);
        assert_int_equal(pthread_create(&p->thread, NULL, serve, p), 0);
        snprintf(url, sizeof(url), "http://127.0.0.1:%u", ntohs(a.sin_port));
        setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
        setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", 1);
        unsetenv("AWS_ENDPOINT_URL_KMS");
        unsetenv("AWS_ENDPOINT_URL");
        assert_int_equal(creds_provider_new(NULL, NULL, NULL, creds), 0);
        assert_int_equal(awsjson_client_new(&(struct awsjson_client_config){.service = AWSJSON_KMS,
                                                                            .region = "us-east-1",
                                                                            .endpoint_url = url},
                                            *creds, &c),
                         0);
        return c;
}

static void done(struct peer *p, struct awsjson_client *c, struct creds_provider *creds)
{
        awsjson_client_free(c);
        creds_provider_free(creds);
        shutdown(p->listen_fd, SHUT_RDWR);
        close(p->listen_fd);
        pthread_join(p->thread, NULL);
}

static void test_pages(void **state)
{
        struct creds_provider *creds;
        struct kms_grant *g = NULL;
        struct aws_error e = {};
        struct peer p;
        struct awsjson_client *c = client(&p, 3, &creds);
        size_t n = 0;

        assert_int_equal(kms_list_grants(c, KEY_ARN, NULL, &g, &n, &e), 0);
        assert_int_equal(n, 3);
        assert_int_equal(p.requests, 3);
        assert_int_equal(p.bad_markers, 0);
        assert_string_equal(g[2].grant_id, "g-3");
        assert_string_equal(g[0].key_id, KEY_ARN);
        assert_string_equal(g[1].operations[1], "CreateGrant");
        assert_int_equal(g[0].creation_date, 1700000000ull * 1000000ull);
        kms_grants_free(g, n);
        /* The grantee filter keeps the odd pages' grants. */
        p.requests = 0;
        assert_int_equal(kms_list_grants(c, KEY_ARN, "arn:aws:iam::111122223333:root", &g, &n, &e),
                         0);
        assert_int_equal(n, 2);
        assert_string_equal(g[1].grant_id, "g-3");
        kms_grants_free(g, n);
        done(&p, c, creds);
}

static void test_page_ceiling(void **state)
{
        struct creds_provider *creds;
        struct kms_grant *g = NULL;
        struct aws_error e = {};
        struct peer p;
        struct awsjson_client *c = client(&p, KMS_GRANTS_MAX_PAGES, &creds);
        size_t n = 0;

        /* 100 pages, the last one not truncated: the whole listing. */
        assert_int_equal(kms_list_grants(c, KEY_ARN, NULL, &g, &n, &e), 0);
        assert_int_equal(n, KMS_GRANTS_MAX_PAGES);
        assert_int_equal(p.bad_markers, 0);
        kms_grants_free(g, n);
        done(&p, c, creds);

        /* One page more: an error naming the key, after the 100 pages the limit allows. */
        c = client(&p, KMS_GRANTS_MAX_PAGES + 1, &creds);
        g = NULL;
        assert_int_equal(kms_list_grants(c, KEY_ARN, NULL, &g, &n, &e), -E2BIG);
        assert_null(g);
        assert_int_equal(p.requests, KMS_GRANTS_MAX_PAGES);
        assert_non_null(e.message);
        assert_non_null(strstr(e.message, "grants of key " KEY_ARN ": more than 100 pages"));
        aws_error_done(&e);
        done(&p, c, creds);
}

static void test_truncated_without_marker(void **state)
{
        struct creds_provider *creds;
        struct kms_grant *g = NULL;
        struct aws_error e = {};
        struct peer p;
        struct awsjson_client *c = client(&p, 5, &creds);
        size_t n = 0;

        p.no_marker = true;
        assert_int_equal(kms_list_grants(c, KEY_ARN, NULL, &g, &n, &e), -EBADMSG);
        assert_int_equal(p.requests, 1);
        assert_null(g);
        done(&p, c, creds);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_pages),
                cmocka_unit_test(test_page_ceiling),
                cmocka_unit_test(test_truncated_without_marker),
        };

        return cmocka_run_group_tests_name("kms pages", tests, NULL, NULL);
}
