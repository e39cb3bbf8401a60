/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The CLI's one way to print. A command builds its result as one cJSON tree through the
 * result_* helpers below, which keep the first allocation failure instead of each caller checking
 * each call; output_print() then writes the tree as JSON (cJSON's formatted print, for --json) or
 * as the text of the result's view, read from the same tree. No command prints on its own.
 */
#pragma once

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>

/* How the text of a result reads; the JSON is always the tree itself. */
enum output_view {
        VIEW_WHOAMI,        /* the instance's identity and credentials */
        VIEW_CHECK,         /* the pre-flight items and the verdict */
        VIEW_RUN,           /* a run (run_state_to_json()) with a dry run's "dry_run_report" */
        VIEW_NO_RESUME,     /* resume found no run of this instance */
        VIEW_NO_FIRST_BOOT, /* first-boot decided against a run, and why */
        VIEW_STATUS,        /* the state file (state_to_json()): the run under way or the last */
        VIEW_THAWED,        /* thaw: the mounts it thawed */
        VIEW_STARTED,       /* trigger: the daemon started a run */
        VIEW_WORKER,        /* trigger --wait: the answer of the daemon's worker (its --json) */
        VIEW_GRANTS,        /* grants: the recorded KMS grants */
        VIEW_KMS_POLICY,    /* kms-policy: the statements of each key */
        VIEW_IMPORT,        /* import: the copy of a shared image in this account */
        _VIEW_MAX,
};

struct result {
        enum output_view view;
        cJSON *tree;
        /*
         * VIEW_WORKER whose answer is not one JSON document (a worker that died mid-print):
         * written out as it came, in both forms.
         */
        const char *raw;
        int error; /* the first failure while building: -ENOMEM */
};

/* A result whose tree is an empty object, to add to. */
void result_new(struct result *res, enum output_view view);
/* A result whose tree is tree, built elsewhere (NULL: memory ran out there); res owns it. */
void result_take(struct result *res, enum output_view view, cJSON *tree);
/* A VIEW_WORKER result of the worker's answer, parsed once; raw (borrowed) when it is no JSON. */
void result_worker_answer(struct result *res, const char *answer);
void result_done(struct result *res);

/*
 * Add item under key to the object parent, or append it to the array parent (key NULL). Takes
 * item; a NULL item is a failed allocation, a NULL parent one that failed before: both are kept
 * in res->error and the call does nothing else. Returns item, or NULL.
 */
cJSON *result_add(struct result *res, cJSON *parent, const char *key, cJSON *item);
/* key: value, or key: null when value is NULL. */
cJSON *result_add_str(struct result *res, cJSON *parent, const char *key, const char *value);
cJSON *result_add_bool(struct result *res, cJSON *parent, const char *key, bool value);
cJSON *result_add_array(struct result *res, cJSON *parent, const char *key);
cJSON *result_add_object(struct result *res, cJSON *parent, const char *key);
/* key: [strings of the NULL-terminated v] (an empty array for NULL). */
cJSON *result_add_strv(struct result *res, cJSON *parent, const char *key, char *const *v);

/* Write the result to f as JSON or as text; -ENOMEM when it could not be built or printed. */
int output_print(const struct result *res, bool json, FILE *f);
/*
 * A command's last step: print the result on stdout, free it, and return exit_code, or 1
 * (EXIT_FAILED) after an error message when it could not be printed.
 */
int output_finish(struct result *res, bool json, int exit_code);
