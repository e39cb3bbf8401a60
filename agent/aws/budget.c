/* SPDX-License-Identifier: Apache-2.0 */
/* Per-region rate limit and retry quota (see budget.h). */
#include "aws/budget.h"

#include <time.h>

void aws_budget_init(struct aws_budget *b, double max_rate, double burst)
{
        *b = (struct aws_budget){
                .rate = max_rate,
                .max_rate = max_rate,
                .tokens = burst,
                .burst = burst,
                .retry_tokens = BUDGET_RETRY_CAPACITY,
        };
}

static void refill(struct aws_budget *b, usec_t now)
{
        if (b->last != 0 && now > b->last) {
                b->tokens += b->rate * (double)(now - b->last) / (double)USEC_PER_SEC;
                if (b->tokens > b->burst)
                        b->tokens = b->burst;
        }
        b->last = now;
}

usec_t aws_budget_delay(struct aws_budget *b, usec_t now)
{
        refill(b, now);
        if (b->tokens >= 1.0) {
                b->tokens -= 1.0;
                return 0;
        }
        return (usec_t)((1.0 - b->tokens) / b->rate * (double)USEC_PER_SEC) + 1;
}

void aws_budget_acquire(struct aws_budget *b)
{
        usec_t d;

        while ((d = aws_budget_delay(b, now_usec(CLOCK_MONOTONIC))) > 0) {
                struct timespec ts = {.tv_sec = (time_t)(d / USEC_PER_SEC),
                                      .tv_nsec = (long)(d % USEC_PER_SEC) * 1000};
                nanosleep(&ts, NULL);
        }
}

void aws_budget_success(struct aws_budget *b)
{
        if (b->retry_tokens < BUDGET_RETRY_CAPACITY)
                b->retry_tokens++;
        /* Additive increase: a tenth of a call per second per success, up to the ceiling. */
        b->rate += 0.1;
        if (b->rate > b->max_rate)
                b->rate = b->max_rate;
}

bool aws_budget_take_retry(struct aws_budget *b, bool throttled)
{
        unsigned cost = throttled ? BUDGET_TIMEOUT_COST : BUDGET_RETRY_COST;

        if (throttled) {
                /* Multiplicative decrease. */
                b->rate /= 2;
                if (b->rate < BUDGET_RATE_MIN)
                        b->rate = BUDGET_RATE_MIN;
        }
        if (b->retry_tokens < cost)
                return false;
        b->retry_tokens -= cost;
        return true;
}
