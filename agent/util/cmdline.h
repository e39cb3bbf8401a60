/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The options both executables take: ec2-imaged, and ec2-imaged-daemon, which `ec2-imaged
 * daemon` execs into with the same ones. -c/--config PATH names the configuration file,
 * -v/--verbose logs at debug level.
 */
#pragma once

#include <getopt.h>
#include <stdbool.h>

/* Their entries in a getopt_long() table; their short options are "c:v". */
/* clang-format off */
#define CMDLINE_COMMON_OPTIONS \
        {"config", required_argument, NULL, 'c'}, {"verbose", no_argument, NULL, 'v'}
/* clang-format on */

struct cmdline_common {
        const char *config_path; /* the caller's default until -c names one */
        bool config_explicit;    /* -c was given: a missing file is an error */
        bool verbose;
};

/*
 * Take option c (with optarg arg) when it is one of CMDLINE_COMMON_OPTIONS: true, and -v raises
 * the log level to debug at once. false for any other option, which stays the caller's.
 */
bool cmdline_common_option(int c, const char *arg, struct cmdline_common *o);
