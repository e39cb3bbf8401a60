/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the AWS probes (dist_probe.c, kms_probe.c, creds_probe.c) share: the usage exit, the
 * loopback check every client's effective endpoint passes before anything is sent, optional
 * arguments, and the JSON object each prints last with the call's outcome.
 */
#pragma once

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "aws/error.h"
#include "util/macro.h"

/* A usage error: exit status 2. */
static inline void usage(const char *msg)
{
        fprintf(stderr, "%s: %s\n", program_invocation_short_name, msg);
        exit(2);
}

/* These tests must never reach AWS or the metadata service. */
static inline bool loopback(const char *url)
{
        return startswith(url, "http://127.") || startswith(url, "http://localhost:") ||
               startswith(url, "http://[::1]:");
}

static inline void add_str(cJSON *o, const char *k, const char *v)
{
        if (v)
                cJSON_AddStringToObject(o, k, v);
        else
                cJSON_AddNullToObject(o, k);
}

/* Argument I of the N in A, NULL when it is missing or "-". */
static inline const char *opt_arg(char **a, size_t n, size_t i)
{
        return i < n && !streq(a[i], "-") ? a[i] : NULL;
}

/* Adds the outcome R and ERR (freed) to OUT, prints and frees OUT; the exit status. */
static inline int probe_print(cJSON *out, int r, struct aws_error *err)
{
        char *s;

        cJSON_AddBoolToObject(out, "ok", r >= 0);
        cJSON_AddNumberToObject(out, "errno", r < 0 ? -r : 0);
        add_str(out, "error_code", err->code);
        add_str(out, "error_message", err->message);
        cJSON_AddNumberToObject(out, "http_status", (double)err->http_status);
        aws_error_done(err);
        s = cJSON_PrintUnformatted(out);
        printf("%s\n", s ? s : "{}");
        free(s);
        cJSON_Delete(out);
        return r >= 0 ? 0 : 1;
}
