/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The loopback HTTP peer of the paging tests (test_ec2_pages.c, test_kms_pages.c): a thread
 * that accepts connections on a free loopback port, reads each request whole and answers it
 * with 200 and the body its test's answer function makes for the page it counts. Also the
 * environment credentials both tests sign with.
 */
#pragma once

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "aws/creds_provider.h"
#include "util/str.h"

struct page_peer {
        int listen_fd;
        const char *content_type;
        /* The body of the answer to REQUEST, the PAGE-th one (from 1), malloc'ed. */
        char *(*answer)(struct page_peer *p, const char *request, unsigned page);
        unsigned pages;    /* the last page served says there is no next one */
        unsigned requests; /* requests answered */
        char url[64];
        pthread_t thread;
};

/* One request's head and body; false when the client closed the connection. */
static inline bool page_peer_read(int fd, char *buf, size_t size)
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

static inline void *page_peer_serve(void *userdata)
{
        struct page_peer *p = userdata;
        static char buf[65536];

        for (;;) {
                int fd = accept(p->listen_fd, NULL, NULL);

                if (fd < 0)
                        return NULL;
                while (page_peer_read(fd, buf, sizeof(buf))) {
                        char *body = p->answer(p, buf, ++p->requests);
                        char *head = strprintf("HTTP/1.1 200 OK\r\nContent-Type: %s\r\n"
                                               "Content-Length: %zu\r\n\r\n",
                                               p->content_type, strlen(body));

                        assert_true(write(fd, head, strlen(head)) == (ssize_t)strlen(head));
                        assert_true(write(fd, body, strlen(body)) == (ssize_t)strlen(body));
                        free(head);
                        free(body);
                }
                close(fd);
        }
}

/*
 * Starts P serving PAGES pages (P's answer and content_type set by the caller; a test that keeps
 * more counters embeds P first in its own struct) and
 * makes a credentials provider of the environment's example keys with no endpoint of the
 * environment's (ENDPOINT_VAR, AWS_ENDPOINT_URL) to override P's url.
 */
static inline void page_peer_start(struct page_peer *p, unsigned pages, const char *endpoint_var,
                                   struct creds_provider **creds)
{
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t alen = sizeof(a);

        p->pages = pages;
        p->requests = 0;
        p->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(p->listen_fd >= 0);
        assert_int_equal(bind(p->listen_fd, (struct sockaddr *)&a, sizeof(a)), 0);
        assert_int_equal(listen(p->listen_fd, 8), 0);
        assert_int_equal(getsockname(p->listen_fd, (struct sockaddr *)&a, &alen), 0);
        assert_int_equal(pthread_create(&p->thread, NULL, page_peer_serve, p), 0);
        snprintf(p->url, sizeof(p->url), "http://127.0.0.1:%u", ntohs(a.sin_port));
        setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
        setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", 1);
        unsetenv(endpoint_var);
        unsetenv("AWS_ENDPOINT_URL");
        assert_int_equal(creds_provider_new(NULL, NULL, NULL, creds), 0);
}

static inline void page_peer_stop(struct page_peer *p, struct creds_provider *creds)
{
        creds_provider_free(creds);
        shutdown(p->listen_fd, SHUT_RDWR);
        close(p->listen_fd);
        pthread_join(p->thread, NULL);
}
