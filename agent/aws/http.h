/* SPDX-License-Identifier: Apache-2.0 */
/* HTTP over libcurl: one reusable handle per peer, bounded bodies, errors mapped to -errno. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "util/timeutil.h"

struct http_request {
        const char *method; /* "GET", "PUT", "POST" */
        const char *url;
        const char *const *headers; /* NULL-terminated "Name: value" strings, may be NULL */
        const void *body;
        size_t body_len;
        long connect_timeout_ms; /* 0: 2000 */
        long timeout_ms;         /* 0: 10000 */
        size_t max_body;         /* ceiling on the response body; 0: 1 MiB */
        /*
         * The headers or the response hold secrets (an IMDS token, a credential document): the
         * body grows without leaving stale copies and the header list is wiped before it is freed.
         */
        bool secret;
};

struct http_response {
        long status;
        char *body; /* NUL-terminated, never NULL after success */
        size_t body_len;
        char *request_id; /* x-amzn-RequestId or x-amz-request-id header, if any */
        usec_t date;      /* the Date header (CLOCK_REALTIME usec), 0 when none or unreadable */
};

struct http_client;

/* no_proxy: ignore http_proxy/https_proxy (IMDS is link-local and never proxied). */
int http_client_new(bool no_proxy, struct http_client **ret);
struct http_client *http_client_free(struct http_client *c);

/*
 * Perform one request. 0 and a filled response for any HTTP status; -errno for transport
 * failures: -ECONNREFUSED, -ETIMEDOUT, -EHOSTUNREACH, -ECONNRESET, -EFBIG (body over the
 * ceiling), -EPROTO (TLS or protocol failure), -ENOMEM, -EIO.
 */
int http_client_perform(struct http_client *c, const struct http_request *req,
                        struct http_response *ret);
void http_response_done(struct http_response *r);

/* Transport errors worth another attempt. */
bool http_error_is_transient(int r);

/* Percent-encode with AWS's rules (unreserved A-Za-z0-9-_.~ kept); NULL on ENOMEM. */
char *aws_uri_encode(const char *s, size_t len, bool keep_slash);
