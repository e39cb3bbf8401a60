/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One retry budget and rate limit per region, shared by every client of that region (EC2, KMS,
 * SSM), so that a long distribution does not turn throttling into a storm: each attempt waits
 * for a token of a token bucket whose rate halves on every throttling answer and creeps back up
 * on successes (the AWS SDKs' "adaptive" idea), and each retry spends from a quota that successes
 * refill (their "standard" retry quota). When the quota is spent, calls fail on their first
 * transient error instead of retrying.
 */
#pragma once

#include <stdbool.h>

#include "util/timeutil.h"

#define BUDGET_RETRY_CAPACITY 500u /* as the AWS SDKs */
#define BUDGET_RETRY_COST     5u
#define BUDGET_TIMEOUT_COST   10u /* a throttling answer costs more */
#define BUDGET_RATE_MIN       0.5 /* calls per second, never below */

struct aws_budget {
        double rate;     /* calls per second allowed now */
        double max_rate; /* the ceiling it creeps back to */
        double tokens;   /* of the bucket, at most the burst */
        double burst;
        usec_t last; /* CLOCK_MONOTONIC of the last refill */
        unsigned retry_tokens;
};

/* max_rate calls per second, bursts of burst calls. */
void aws_budget_init(struct aws_budget *b, double max_rate, double burst);

/* How long to wait at now before the next attempt may go; takes the token when 0. */
usec_t aws_budget_delay(struct aws_budget *b, usec_t now);
/* Wait for the next token (sleeps on CLOCK_MONOTONIC). */
void aws_budget_acquire(struct aws_budget *b);
/* An attempt succeeded: one retry token back, the rate a little higher. */
void aws_budget_success(struct aws_budget *b);
/* Before a retry: false when the quota cannot pay for it. throttled: AWS said slow down. */
bool aws_budget_take_retry(struct aws_budget *b, bool throttled);
