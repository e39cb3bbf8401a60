/* SPDX-License-Identifier: Apache-2.0 */
/* Time in microseconds, clocks as seams, and ISO 8601 timestamps as AWS writes them. */
#pragma once

#include <stdint.h>
#include <time.h>

typedef uint64_t usec_t;

#define USEC_PER_SEC  1000000ULL
#define USEC_PER_MSEC 1000ULL
#define USEC_INFINITY UINT64_MAX

usec_t now_usec(clockid_t clock);

/* A clock that callers can replace in tests; NULL means the real CLOCK_REALTIME. */
typedef usec_t (*clock_fn)(void *userdata);

/* Parse "2026-11-26T14:52:52Z" (also with fractional seconds) into microseconds since the epoch. */
int parse_iso8601(const char *s, usec_t *ret);
/* Format as "YYYYMMDDTHHMMSSZ" (SigV4's X-Amz-Date); buf must hold 17 bytes. */
void format_amz_date(usec_t t, char buf[static 17]);
/* Format as "2026-11-26T14:52:52Z"; buf must hold 21 bytes. */
void format_iso8601(usec_t t, char buf[static 21]);
