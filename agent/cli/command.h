/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What main.c hands each command of its table: the options of the command line, the command's
 * own arguments, and the configuration and clients its table entry asks for. A command returns
 * its exit code; only main() exits.
 */
#pragma once

#include <stdbool.h>

#include "util/cmdline.h"

struct context;

/* Exit codes, documented in --help and the README. */
enum {
        EXIT_OK = 0,
        EXIT_FAILED = 1,     /* the operation failed */
        EXIT_USAGE = 2,      /* bad command line or invalid configuration */
        EXIT_CHECK = 3,      /* `check`: a pre-flight item failed */
        EXIT_BUSY = 4,       /* another run holds the lock */
        EXIT_UNFINISHED = 5, /* `run`: an unfinished run must be resumed first */
};

struct cli {
        struct cmdline_common common; /* -c (default CONFIG_DEFAULT_PATH), -v */
        bool json;                    /* --json */
        bool dry_run;                 /* run --dry-run */
        const char *mode;             /* run --mode, NULL when not given */
        bool wait;                    /* trigger --wait */
        bool all;                     /* thaw --all */
        bool revoke_expired;          /* grants --revoke-expired */
        const char *region;           /* kms-policy, import --region; NULL when not given */
        const char *source_region;    /* import --source-region, NULL when not given */
        const char *kms_key;          /* import --kms-key, NULL when not given */
        const char *name;             /* import --name, NULL when not given */
        const char *launch_template;  /* import --launch-template, NULL when not given */
        const char *ssm_parameter;    /* import --ssm-parameter, NULL when not given */
        const char *argument;         /* the command's one argument (import's image id) */
        int argc;                     /* the command's arguments; argv[0] is its name */
        char **argv;
        struct context *ctx; /* what the command's entry asks for (only ->config without clients) */
};
