/* SPDX-License-Identifier: Apache-2.0 */
/* The per-region rate limit and retry quota (aws/budget.h), on a clock of the test's own. */
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
        assert_true(b.rate == BUDGET_RATE_MIN);
}

static void test_retry_quota(void **state)
{
        struct aws_budget b;
        unsigned n = 0;

        aws_budget_init(&b, 10.0, 10.0);
        while (aws_budget_take_retry(&b, false))
                n++;
        assert_int_equal(n, BUDGET_RETRY_CAPACITY / BUDGET_RETRY_COST);
        /* Spent: no retry until successes pay for one. */
        for (unsigned i = 0; i < BUDGET_RETRY_COST - 1; i++)
                aws_budget_success(&b);
        assert_false(aws_budget_take_retry(&b, false));
        aws_budget_success(&b);
        assert_true(aws_budget_take_retry(&b, false));
        /* Throttling costs more. */
        for (unsigned i = 0; i < BUDGET_TIMEOUT_COST - 1; i++)
                aws_budget_success(&b);
        assert_false(aws_budget_take_retry(&b, true));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_rate),
                cmocka_unit_test(test_retry_quota),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
