/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The error AWS answered with, as every client here carries it to its caller, and what its codes
 * mean: worth another attempt, throttling, a refused clock, stale credentials. See error.c.
 */
#pragma once

#include <stdbool.h>

/*
 * An error AWS returned; code, message and request_id are NULL when the failure was not AWS's
 * answer (http_status is still set when there was an HTTP answer, e.g. a body that is not XML).
 * Callers zero-initialise it and call aws_error_done() afterwards; a failing call replaces what it
 * held, a successful call leaves it untouched.
 */
struct aws_error {
        long http_status;
        char *code;
        char *message;
        char *request_id;
};
void aws_error_done(struct aws_error *e);
/* Move src into dst, dropping whatever dst held; src is left empty. */
void aws_error_move(struct aws_error *dst, struct aws_error *src);

/*
 * What went wrong, in a word for a message: AWS's error code when AWS answered with one, else
 * strerror(-r) of the call's result r (< 0). Not a copy; valid while e is.
 */
const char *aws_error_describe(const struct aws_error *e, int r);

/*
 * What an answer's code (NULL: none) or HTTP status means. The one place that decides which AWS
 * errors are worth another attempt (throttling, server-side failures, 500/502/503/504).
 */
bool aws_error_is_transient(long http_status, const char *code);
/* Throttling: AWS did not act on the request, so even a call that must not run twice may repeat. */
bool aws_error_is_throttling(const char *code);
/* AWS refused the time of the signature (the JSON services say so as a bad signature). */
bool aws_error_is_clock(const char *code);
/* AWS no longer takes the credentials: revoked, expired early, or rotated under us. */
bool aws_error_is_stale_credentials(const char *code);
