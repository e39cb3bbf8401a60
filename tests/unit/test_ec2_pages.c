/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The paged launch template listings (ec2_dist.c) against a loopback HTTP peer of this test that
 * answers every page with a NextToken up to a page count it is given: the listing is whole at the
 * 100-page limit, and one page more is an error that names the template, not a silent cut.
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
#include "aws/ec2.h"
#include "aws/ec2_dist.h"
#include "util/str.h"

#define NS "xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\""

struct peer {
        int listen_fd;
        unsigned pages;    /* the last page served has no NextToken */
        unsigned requests; /* paged requests answered */
        pthread_t thread;
};

/* One request's head and body; false when the client closed the connection. */
static bool read_request(int fd, char *buf, size_t size, size_t *len)
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
        *len = n;
        return true;
}

static void answer(int fd, struct peer *p, const char *request)
{
        bool versions = strstr(request, "Action=DescribeLaunchTemplateVersions") != NULL;
        unsigned page = ++p->requests;
        char next[64] = "", *body, *head;

        if (page < p->pages)
                snprintf(next, sizeof(next), "<nextToken>page-%u</nextToken>", page + 1);
        if (versions)
                body = strprintf("<DescribeLaunchTemplateVersionsResponse " NS ">"
                                 "<requestId>r</requestId><launchTemplateVersionSet><item>"
                                 "<launchTemplateId>lt-0abc</launchTemplateId><versionNumber>%u"
                                 "</versionNumber><defaultVersion>false</defaultVersion>"
                                 "<launchTemplateData><imageId>ami-1</imageId>"
                                 "</launchTemplateData></item></launchTemplateVersionSet>%s"
                                 "</DescribeLaunchTemplateVersionsResponse>",
                                 page, next);
        else
                body = strprintf("<DescribeLaunchTemplatesResponse " NS "><requestId>r</requestId>"
                                 "<launchTemplates><item><launchTemplateId>lt-%u"
                                 "</launchTemplateId></item></launchTemplates>%s"
                                 "</DescribeLaunchTemplatesResponse>",
                                 page, next);
        head = strprintf("HTTP/1.1 200 OK\r\nContent-Type: text/xml;charset=UTF-8\r\n"
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
                size_t len;

                if (fd < 0)
                        return NULL;
                while (read_request(fd, buf, sizeof(buf), &len))
                        answer(fd, p, buf);
                close(fd);
        }
}

/* A client of a fresh peer that serves PAGES pages. */
static struct ec2_client *client(struct peer *p, unsigned pages, struct creds_provider **creds)
{
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t alen = sizeof(a);
        struct ec2_client *c = NULL;
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
        unsetenv("AWS_ENDPOINT_URL_EC2");
        unsetenv("AWS_ENDPOINT_URL");
        assert_int_equal(creds_provider_new(NULL, NULL, NULL, creds), 0);
        assert_int_equal(ec2_client_new(&(struct ec2_client_config){.region = "us-east-1",
                                                                    .endpoint_url = url},
                                        *creds, &c),
                         0);
        return c;
}

static void done(struct peer *p, struct ec2_client *c, struct creds_provider *creds)
{
        ec2_client_free(c);
        creds_provider_free(creds);
        shutdown(p->listen_fd, SHUT_RDWR);
        close(p->listen_fd);
        pthread_join(p->thread, NULL);
}

static void test_versions(void **state)
{
        struct creds_provider *creds;
        struct ec2_lt_version *v = NULL;
        struct aws_error e = {};
        struct peer p;
        struct ec2_client *c = client(&p, 100, &creds);
        size_t n = 0;

        /* 100 pages, the last without NextToken: the whole listing. */
        assert_int_equal(ec2_describe_launch_template_versions(c, "web", NULL, &v, &n, &e), 0);
        assert_int_equal(n, 100);
        assert_int_equal(v[99].version, 100);
        ec2_lt_versions_free(v, n);
        done(&p, c, creds);

        /* One page more: an error naming the template, after the 100 pages the limit allows. */
        c = client(&p, 101, &creds);
        v = NULL;
        assert_int_equal(ec2_describe_launch_template_versions(c, "web", NULL, &v, &n, &e), -E2BIG);
        assert_null(v);
        assert_int_equal(p.requests, 100);
        assert_non_null(e.message);
        assert_non_null(strstr(e.message, "launch template web"));
        assert_non_null(strstr(e.message, "more than 100 pages"));
        aws_error_done(&e);
        done(&p, c, creds);
}

static void test_templates(void **state)
{
        struct creds_provider *creds;
        struct aws_error e = {};
        struct peer p;
        struct ec2_client *c = client(&p, 100, &creds);
        char **ids = NULL;

        assert_int_equal(ec2_describe_launch_template_ids(c, &ids, &e), 0);
        assert_int_equal(strv_length(ids), 100);
        assert_string_equal(ids[99], "lt-100");
        strv_free(ids);
        done(&p, c, creds);

        c = client(&p, 1000, &creds);
        ids = NULL;
        assert_int_equal(ec2_describe_launch_template_ids(c, &ids, &e), -E2BIG);
        assert_null(ids);
        assert_int_equal(p.requests, 100);
        assert_non_null(strstr(e.message, "launch templates: more than 100 pages"));
        aws_error_done(&e);
        done(&p, c, creds);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_versions),
                cmocka_unit_test(test_templates),
        };

        return cmocka_run_group_tests_name("ec2 pages", tests, NULL, NULL);
}
