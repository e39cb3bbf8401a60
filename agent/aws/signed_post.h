/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What every AWS API client here shares, whatever its protocol (EC2 Query, AWS JSON): the
 * endpoint of a service in a region, a SigV4-signed POST, the AWS error of an answer (error.h),
 * and the retry loop with full-jitter backoff and a deadline.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "aws/error.h"
#include "util/timeutil.h"

struct aws_budget;
struct creds_provider;
struct http_response;

/* What a 0 below stands for; also the defaults of the [aws] keys (core/config.c). */
#define AWS_CONNECT_TIMEOUT_MS_DEFAULT 3000u
#define AWS_TIMEOUT_MS_DEFAULT         30000u
#define AWS_RETRY_DEADLINE_MS_DEFAULT  120000u
#define AWS_MAX_ATTEMPTS_DEFAULT       8u

/* How calls go over the wire; the same for every client built on signed_post (EC2, KMS, SSM). */
struct aws_transport {
        unsigned connect_timeout_ms; /* 0: the default above */
        unsigned timeout_ms;         /* per attempt; 0: the default above */
        unsigned retry_deadline_ms;  /* all attempts of one call; 0: the default above */
        unsigned retry_base_ms;      /* 0: 200 */
        unsigned retry_cap_ms;       /* 0: 20000 */
        unsigned max_attempts;       /* 0: the default above */
        size_t max_body;             /* 0: 8 MiB; a client may lower it */
        clock_fn clock;              /* for X-Amz-Date; NULL: real time */
        void *clock_userdata;
};

struct signed_post_config {
        const char *region;   /* required; the signing region */
        const char *service;  /* required; the signing service: "ec2", "kms", "ssm" */
        const char *endpoint; /* required; an http(s) URL without credentials, query, fragment */
        const char *content_type; /* required */
        struct aws_transport transport;
};

struct signed_post;
/* -EINVAL for a bad region or an endpoint that could not be signed. */
int signed_post_new(const struct signed_post_config *cfg, struct creds_provider *creds,
                    struct signed_post **ret);
struct signed_post *signed_post_free(struct signed_post *sp);
const char *signed_post_endpoint(const struct signed_post *sp);
const char *signed_post_region(const struct signed_post *sp);
/*
 * Limits for the next signed_post_call() only. once: the call must not run twice (CreateImage
 * has no idempotency token), so after a failure that may have reached AWS (a reset or timeout
 * after sending, a 5xx) it is not repeated and the caller looks the outcome up; only refused
 * connections and throttling are retried. deadline_ms (0: the configured one): a tighter bound
 * on all attempts, e.g. the freeze timeout while filesystems are frozen.
 */
void signed_post_limit_next(struct signed_post *sp, bool once, unsigned deadline_ms);
/*
 * Share a region's rate limit and retry quota (budget.h) with this client; NULL: none. The budget
 * must outlive its use.
 */
void signed_post_set_budget(struct signed_post *sp, struct aws_budget *b);
/* Attempts made by the most recent signed_post_call() (0 before any). */
unsigned signed_post_last_attempts(const struct signed_post *sp);

/*
 * Turn one HTTP answer into the protocol's result: 0 (and the result kept in userdata) on
 * success; -EREMOTEIO with err filled for an AWS error; -EBADMSG with err->http_status for a body
 * that is not what the protocol answers. Only a 0 may keep anything in userdata.
 */
typedef int (*signed_post_answer_fn)(const struct http_response *resp, void *userdata,
                                     struct aws_error *err);

/*
 * One call: the body POSTed, signed afresh for each attempt, with X-Amz-Target when target is not
 * NULL. Throttling codes, 500/502/503/504, a non-protocol 5xx body and transient transport errors
 * are retried; a 2xx body that could not be read never is (the call may have taken effect).
 * -ETIME when the attempts or the deadline ran out (err holds the last AWS answer, if any);
 * -ENOKEY (or the provider's error) without credentials; otherwise what answer returned or the
 * transport error (http.h). what names the call in debug logs.
 */
int signed_post_call(struct signed_post *sp, const char *what, const char *target, const char *body,
                     size_t body_len, signed_post_answer_fn answer, void *userdata,
                     struct aws_error *err);
