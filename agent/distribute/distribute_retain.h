/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Retention of one lineage in one region: among the images that ec2-imaged made for the lineage
 * (tags ec2-imaged:lineage and ec2-imaged:run-id), keep the newest N and those younger than D,
 * and deregister the rest with their snapshots. Never touched: the image just made, an image a
 * launch template's default or latest version uses, an image with deregistration protection.
 */
#pragma once

#include <stdbool.h>

#include "util/timeutil.h"

struct aws_error;
struct ec2_client;
struct ec2_image;

struct retain_opts {
        const char *lineage;
        unsigned keep_newest;      /* 0: no count rule */
        unsigned keep_days;        /* 0: no age rule */
        const char *keep_image_id; /* the run's image in this region: always kept */
        usec_t now;                /* CLOCK_REALTIME */
        bool dry_run;              /* only list what would go */
        /*
         * [distribute] protect_published: the deregistration protection of an image the rules
         * retire is ours when "enabled" (no cooldown), and is lifted
         * (DisableImageDeregistrationProtection) before it goes. Otherwise a protected image
         * is kept: someone else protected it.
         */
        bool lift_protection;
        char ***gone; /* NULL, or gets the ids of the images deregistered */
};

/* Whether the options ask for any retention at all. */
bool retain_enabled(const struct retain_opts *o);

enum retain_verdict {
        RETAIN_NOT_OURS,        /* no ec2-imaged:run-id tag: never touched */
        RETAIN_KEEP_CURRENT,    /* the run's own image */
        RETAIN_KEEP_RULES,      /* among the newest N, younger than D, or of unknown age */
        RETAIN_KEEP_REFERENCED, /* a launch template's default or latest version uses it */
        RETAIN_KEEP_PROTECTED,  /* deregistration protection */
        RETAIN_DELETE,
        RETAIN_LIFT_AND_DELETE, /* protected, lift_protection: lifted, then deregistered */
};

/*
 * The decision alone (no calls): sort ims newest first and set verdicts[i] for each ims[i].
 * referenced: the image ids launch templates use (NULL-terminated, may be NULL).
 */
void retain_decide(const struct retain_opts *o, struct ec2_image *ims, size_t n,
                   char *const *referenced, enum retain_verdict *verdicts);

/*
 * Apply the rules in c's region. Each image deregistered (or, with dry_run, that would be) is
 * appended to *report as a line naming the image, its name, region and age. On an AWS failure,
 * err is filled and what was done so far stays reported.
 */
int retain_region(struct ec2_client *c, const struct retain_opts *o, char ***report,
                  struct aws_error *err);
