/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The AWS error of an answer, whatever the protocol that carried it (EC2 Query, AWS JSON): its
 * lifetime, its one-word description for messages, and the one table of codes worth retrying.
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

bool aws_error_is_transient(long http_status, const char *code)
{
        /*
         * Throttling and server-side failures, from the AWS SDKs' retry tables. Client errors
         * (bad parameters, missing resources, auth) never get better by trying again.
         */
        static const char *const codes[] = {
                "RequestLimitExceeded",
                "Throttling",
                "ThrottlingException",
                "ThrottledException",
                "RequestThrottled",
                "RequestThrottledException",
                "TooManyRequestsException",
                "SlowDown",
                "PriorRequestNotComplete",
                "EC2ThrottledException",
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
        };

        if (code)
                for (size_t i = 0; i < ELEMENTSOF(codes); i++)
                        if (streq(code, codes[i]))
                                return true;
        return http_status == 500 || http_status == 502 || http_status == 503 || http_status == 504;
}
