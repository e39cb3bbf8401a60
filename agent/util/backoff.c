/* SPDX-License-Identifier: Apache-2.0 */
/* Full-jitter exponential backoff ("Exponential Backoff And Jitter", AWS Architecture Blog). */
#include "util/backoff.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

void backoff_init(struct backoff *b, usec_t base, usec_t cap, usec_t budget, unsigned max_attempts)
{
        *b = (struct backoff){
                .base = base,
                .cap = cap,
                .deadline = now_usec(CLOCK_MONOTONIC) + budget,
                .max_attempts = max_attempts,
        };
}

static uint64_t random_u64(void)
{
        uint64_t v;

        if (getrandom(&v, sizeof(v), 0) != sizeof(v))
                v = (uint64_t)random() << 32 ^ (uint64_t)random();
        return v;
}

int backoff_next(struct backoff *b, usec_t *ret_delay)
{
        usec_t now = now_usec(CLOCK_MONOTONIC), ceiling, delay;

        if (b->max_attempts > 0 && b->attempt + 1 >= b->max_attempts)
                return -ETIME;
        if (now >= b->deadline)
                return -ETIME;
        ceiling = b->base;
        for (unsigned i = 0; i < b->attempt && ceiling < b->cap; i++)
                ceiling *= 2;
        if (ceiling > b->cap)
                ceiling = b->cap;
        delay = ceiling ? random_u64() % (ceiling + 1) : 0;
        if (now + delay >= b->deadline)
                delay = b->deadline - now;
        b->attempt++;
        *ret_delay = delay;
        return 0;
}

int backoff_sleep(struct backoff *b)
{
        usec_t d;
        struct timespec ts;
        int r = backoff_next(b, &d);

        if (r < 0)
                return r;
        ts.tv_sec = (time_t)(d / USEC_PER_SEC);
        ts.tv_nsec = (long)(d % USEC_PER_SEC) * 1000;
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
        return 0;
}
