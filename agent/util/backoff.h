/* SPDX-License-Identifier: Apache-2.0 */
/* Exponential backoff with full jitter, a cap and a deadline (the one retry schedule we use). */
#pragma once

#include <stdbool.h>

#include "util/timeutil.h"

struct backoff {
        usec_t base;     /* first ceiling of the random delay */
        usec_t cap;      /* largest ceiling */
        usec_t deadline; /* CLOCK_MONOTONIC time after which we give up */
        unsigned attempt;
        unsigned max_attempts; /* 0: only the deadline limits */
};

void backoff_init(struct backoff *b, usec_t base, usec_t cap, usec_t budget, unsigned max_attempts);
/*
 * Choose the next delay: uniform in [0, min(cap, base * 2^attempt)], cut so that it ends before
 * the deadline. Returns -ETIME when the deadline or the attempt limit is reached.
 */
int backoff_next(struct backoff *b, usec_t *ret_delay);
/* Sleep for the next delay; -ETIME when there is none. */
int backoff_sleep(struct backoff *b);
