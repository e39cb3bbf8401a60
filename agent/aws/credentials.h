/* SPDX-License-Identifier: Apache-2.0 */
/* AWS credentials as a value (the provider chain that finds them is creds_provider.h). */
#pragma once

#include <stdbool.h>

#include "util/timeutil.h"

struct aws_credentials {
        char *access_key_id;
        char *secret_access_key; /* secret: wiped on free, never logged */
        char *session_token;     /* secret: wiped on free, never logged; may be NULL */
        usec_t expiration;       /* CLOCK_REALTIME usec; 0 = does not expire */
        char *source;            /* "environment" or "instance-role:NAME" (safe to print) */
        char *role_name;         /* NULL for environment credentials */
};

/* Wipes the secrets, frees everything and leaves an empty struct; accepts NULL. */
void aws_credentials_done(struct aws_credentials *c);
int aws_credentials_copy(const struct aws_credentials *src, struct aws_credentials *dst);

/*
 * AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY, optional AWS_SESSION_TOKEN (empty counts as unset).
 * -ENOKEY when neither is set, -EINVAL when only one of the pair is, or a value is malformed.
 */
int aws_credentials_from_env(struct aws_credentials *ret);
