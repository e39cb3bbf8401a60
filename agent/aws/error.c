/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The AWS error of an answer, whatever the protocol that carried it (EC2 Query, AWS JSON): its
 * lifetime, its one-word description for messages, and the tables of what its codes mean (worth
 * retrying, throttling, a refused clock, stale credentials), each code listed once.
 */
#include "aws/error.h"

#include <stdlib.h>
#include <string.h>

#include "util/macro.h"

void aws_error_done(struct aws_error *e)
{
        if (!e)
                return;
        free(e->code);
        free(e->message);
        free(e->request_id);
        *e = (struct aws_error){};
}

void aws_error_move(struct aws_error *dst, struct aws_error *src)
{
        aws_error_done(dst);
        *dst = *src;
        *src = (struct aws_error){};
}

const char *aws_error_describe(const struct aws_error *e, int r)
{
        return e && e->code ? e->code : strerror(-r);
}

/* Is code one of the NULL-terminated codes? NULL is none. */
static bool code_in(const char *code, const char *const *codes)
{
        for (; code && *codes; codes++)
                if (streq(code, *codes))
                        return true;
        return false;
}

bool aws_error_is_throttling(const char *code)
{
        static const char *const codes[] = {
                "RequestLimitExceeded",     "Throttling",
                "ThrottlingException",      "ThrottledException",
                "RequestThrottled",         "RequestThrottledException",
                "TooManyRequestsException", "SlowDown",
                "EC2ThrottledException",    NULL,
        };

        return code_in(code, codes);
}

bool aws_error_is_transient(long http_status, const char *code)
{
        /*
         * Throttling and server-side failures, from the AWS SDKs' retry tables. Client errors
         * (bad parameters, missing resources, auth) never get better by trying again.
         */
        static const char *const codes[] = {
                "PriorRequestNotComplete",
                "BandwidthLimitExceeded",
                "InternalError",
                "InternalFailure",
                "ServiceUnavailable",
                "Unavailable",
                "RequestTimeout",
                "RequestTimeoutException",
                /* The JSON protocol's names (KMS, SSM). */
                "KMSInternalException",
                "InternalServerError",
                NULL,
        };

        if (aws_error_is_throttling(code) || code_in(code, codes))
                return true;
        return http_status == 500 || http_status == 502 || http_status == 503 || http_status == 504;
}

bool aws_error_is_clock(const char *code)
{
        static const char *const codes[] = {
                "RequestTimeTooSkewed",
                "RequestExpired",
                "RequestInTheFuture",
                "InvalidSignatureException",
                "SignatureDoesNotMatch",
                "AuthFailure",
                NULL,
        };

        return code_in(code, codes);
}

bool aws_error_is_stale_credentials(const char *code)
{
        static const char *const codes[] = {
                "AuthFailure",           "ExpiredToken",
                "ExpiredTokenException", "UnrecognizedClientException",
                "InvalidClientTokenId",  NULL,
        };

        return code_in(code, codes);
}
