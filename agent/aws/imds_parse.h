/* SPDX-License-Identifier: Apache-2.0 */
/* Parsers of IMDS JSON (identity document, role credentials); see imds_parse.c. */
#pragma once

#include <stddef.h>

struct aws_credentials;

/* The ceiling of a JSON document from IMDS. */
#define IMDS_MAX_JSON (64u * 1024u)

struct imds_identity {
        char *instance_id;
        char *region;
        char *availability_zone;
        char *account_id;
        char *architecture;
        char *image_id;
        char *instance_type;
};

/*
 * Parsers of IMDS JSON, exposed for the fuzz targets. -EBADMSG for malformed JSON, missing or
 * mistyped fields and implausible values, -EFBIG for input over 64 KiB; credentials whose Code
 * is not "Success" give -EACCES.
 */
int imds_parse_identity(const char *json, size_t len, struct imds_identity *ret);
int imds_parse_credentials(const char *json, size_t len, const char *role,
                           struct aws_credentials *ret);
void imds_identity_done(struct imds_identity *id);
