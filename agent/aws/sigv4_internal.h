/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the two halves of SigV4 share (sigv4.c: the canonical request; sigv4_sign.c: the string to
 * sign, the signing key and the signature). Not for use outside them.
 */
#pragma once

#include <stdbool.h>

#include "util/buf.h"
#include "util/macro.h"

struct sigv4_request;

static inline void buf_wipep(struct buf *b)
{
        buf_wipe(b);
}
#define _cleanup_buf_wipe_ _cleanup_(buf_wipep)

/*
 * Append every string argument up to the NULL to b, in buf's secret mode (these buffers can hold
 * the session token or the secret key); stops at the first error.
 */
int sigv4_sbuf_join(struct buf *b, ...) __attribute__((sentinel));

/*
 * The X-Amz-Date header and amz_date must agree: the service checks the signature against the
 * header, so a mismatch would be a request that fails with a confusing SignatureDoesNotMatch.
 */
bool sigv4_header_date_matches(const struct sigv4_request *req, const char *amz_date);
