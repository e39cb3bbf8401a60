/* SPDX-License-Identifier: Apache-2.0 */
/* Pre-flight checks: everything a run needs, verified without changing anything. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct context;

#define PREFLIGHT_MAX 16

struct preflight_item {
        const char *name;
        int result; /* 0 ok, -errno failed, 1 skipped because an earlier item failed */
        char *detail;
};

struct preflight {
        struct preflight_item items[PREFLIGHT_MAX];
        size_t n;
};

/* Run every check; returns 0 when all passed, -EPERM-like negative when any failed. */
int preflight_run(struct context *ctx, struct preflight *ret);
void preflight_done(struct preflight *p);
