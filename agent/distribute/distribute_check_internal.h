/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the pre-flight of distribution (distribute_check.c: configuration, keys, the image's
 * source, retention) and its DryRuns of the run's calls (distribute_check_calls.c) share.
 */
#pragma once

#include <stdbool.h>

#include "aws/ec2_dist.h"
#include "distribute/distribute_aws.h"

struct config;
struct context;

struct check {
        struct context *ctx;
        const struct config *cfg;
        const char *lineage;
        struct dist_clients clients;
        char ***report; /* never NULL: a scratch vector when the caller wants no report */
        char *why;
        bool probed;            /* the lineage was looked up (lineage_probe) */
        struct ec2_image probe; /* an image of the lineage that ec2-imaged made; zero: none */
};

/*
 * DryRun KMS CreateGrant on key in region for each account the run grants it to
 * (dist_grantees()); the first refusal is recorded in k->why.
 */
int dist_check_grants(struct check *k, const char *region, const char *key);
/*
 * The DryRuns of the run's calls in region (own: the run's region, where the instance's own AMI
 * and the lineage's images are): one line each in k->report, the first refusal in k->why.
 */
int dist_check_calls(struct check *k, const char *region, bool own);
