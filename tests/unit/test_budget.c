/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The per-region rate limit and retry quota (aws/budget.h), on a clock of the test's own. The
 * expected numbers are the documented ones (README, Throttling: the AWS SDKs' 500 tokens, 5 a
 * retry, 10 after throttling, one back per success; the rate halves on throttling, never below
 * 0.5 calls per second, and creeps back by 0.1 per success), written out here rather than taken
 * from budget.h, so that a changed constant fails the test instead of moving it along.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdbool.h>

#include "aws/budget.h"

static void test_rate(void **state)
{
        struct aws_budget b;
        usec_t t = 1000 * USEC_PER_SEC;

        aws_budget_init(&b, 2.0, 2.0);
        /* The burst goes at once, then one call every half second. */
        assert_int_equal(aws_budget_delay(&b, t), 0);
        assert_int_equal(aws_budget_delay(&b, t), 0);
        assert_in_range(aws_budget_delay(&b, t), USEC_PER_SEC / 2, USEC_PER_SEC / 2 + 1);
        t += USEC_PER_SEC / 2;
        assert_int_equal(aws_budget_delay(&b, t), 0);
        /* Throttling halves the rate: the next call waits a full second. */
        assert_true(aws_budget_take_retry(&b, true));
        assert_true(b.rate == 1.0);
        assert_in_range(aws_budget_delay(&b, t), USEC_PER_SEC, USEC_PER_SEC + 1);
        /* Successes bring it back up, never past the ceiling. */
        for (int i = 0; i < 100; i++)
                aws_budget_success(&b);
        assert_true(b.rate == 2.0);
        /* Never below the floor, however much throttling. */
        for (int i = 0; i < 20; i++)
                aws_budget_take_retry(&b, true);
        assert_true(b.rate == 0.5);
}

static void test_retry_quota(void **state)
{
        struct aws_budget b;
        unsigned n = 0;

        aws_budget_init(&b, 10.0, 10.0);
        while (aws_budget_take_retry(&b, false))
                n++;
        assert_int_equal(n, 100); /* 500 tokens, 5 a retry */
        /* Spent: no retry until successes pay for one (one token each). */
        for (unsigned i = 0; i < 4; i++)
                aws_budget_success(&b);
        assert_false(aws_budget_take_retry(&b, false));
        aws_budget_success(&b);
        assert_true(aws_budget_take_retry(&b, false));
        /* Throttling costs 10: nine successes are not enough, the tenth is. */
        for (unsigned i = 0; i < 9; i++)
                aws_budget_success(&b);
        assert_false(aws_budget_take_retry(&b, true));
        aws_budget_success(&b);
        assert_true(aws_budget_take_retry(&b, true));
        /* Refilled by successes, never past the 500. */
        for (unsigned i = 0; i < 1000; i++)
                aws_budget_success(&b);
        for (n = 0; aws_budget_take_retry(&b, true); n++)
                ;
        assert_int_equal(n, 50);
}

static void test_rate_creeps_back(void **state)
{
        struct aws_budget b;

        aws_budget_init(&b, 4.0, 1.0);
        assert_true(aws_budget_take_retry(&b, true));
        assert_true(b.rate == 2.0);
        /* 0.1 call per second more per success: ten successes give one back. */
        for (int i = 0; i < 10; i++)
                aws_budget_success(&b);
        assert_in_range((long)(b.rate * 1000 + 0.5), 3000, 3000);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_rate),
                cmocka_unit_test(test_retry_quota),
                cmocka_unit_test(test_rate_creeps_back),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
