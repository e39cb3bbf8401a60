/* SPDX-License-Identifier: Apache-2.0 */
/*
 * AWS Signature Version 4, as pure functions, one per stage so that each stage can be checked
 * against AWS's own test suite (.creq, .sts, .authz).
 *
 * All functions return 0 or -errno (-EINVAL for malformed input, -EFBIG past the 1 MiB ceiling
 * on any string built, -ENOMEM, -EIO when libcrypto fails) and write their out-parameters only on
 * success. Nothing here logs. The canonical request can contain the session token and the
 * Authorization header is a credential too: free them with secret_free(), never log them.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct aws_credentials;

struct sigv4_header {
        const char *name;  /* any case (an RFC 9110 token); lowercased in the canonical form */
        const char *value; /* trimmed; inner runs of SP/HT/CR/LF folded to one space, which also
                            * joins the lines of a multi-line (obs-folded) value */
};

struct sigv4_request {
        const char *method; /* as sent; not uppercased */
        /*
         * The path as it goes on the wire, e.g. "/" or "/a%20b". NULL or "" means "/". Dot
         * segments and duplicate slashes are removed, then each segment is URI-encoded once
         * more: "/a%20b" signs as "/a%2520b", the double encoding AWS expects of every service
         * but S3 (S3 is not supported here). A raw "/example space/" signs as
         * "/example%20space/", which is what the AWS test suite expects.
         */
        const char *path;
        /*
         * Raw query string without '?', may be NULL or "". Split on '&' and each pair on its
         * first '='; both halves are percent-decoded, re-encoded with AWS's rules and sorted by
         * name, then value. '+' is a literal plus, not a space. A broken %-escape is -EINVAL.
         */
        const char *query;
        /*
         * Must include Host and X-Amz-Date, must not include Authorization. Headers of the same
         * name are joined with ',' in the order given. Every header passed is signed.
         *
         * Session tokens: sigv4_sign() signs exactly the headers given and never looks at
         * creds->session_token. When the credentials carry a session token, the caller adds
         * "X-Amz-Security-Token: <token>" to these headers (and sends it), as botocore does.
         */
        const struct sigv4_header *headers;
        size_t n_headers;
        const void *payload; /* may be NULL when payload_len is 0 */
        size_t payload_len;
};

/* Hex SHA-256 of data into out[65]. */
int sigv4_sha256_hex(const void *data, size_t len, char out[static 65]);

/*
 * Canonical request and the signed-headers list ("host;x-amz-date"). Callers free both (the
 * canonical request with secret_free(): it may hold the session token).
 */
int sigv4_canonical_request(const struct sigv4_request *req, char **ret_creq,
                            char **ret_signed_headers);
/* "AWS4-HMAC-SHA256\n<amz_date>\n<scope>\n<hex sha256 of creq>"; scope is
 * DATE/REGION/SERVICE/aws4_request. */
int sigv4_string_to_sign(const char *amz_date, const char *scope, const char *creq, char **ret);
/*
 * kSigning = HMAC chain over date (YYYYMMDD), region, service, "aws4_request", keyed first with
 * "AWS4" + secret. The intermediate keys are wiped here; the caller wipes out after use.
 */
int sigv4_signing_key(const char *secret, const char *date, const char *region, const char *service,
                      uint8_t out[static 32]);
/* "AWS4-HMAC-SHA256 Credential=AKID/scope, SignedHeaders=..., Signature=hex" */
int sigv4_authorization(const char *access_key_id, const char *scope, const char *signed_headers,
                        const uint8_t key[static 32], const char *sts, char **ret);

/*
 * All stages at once: amz_date is "YYYYMMDDTHHMMSSZ" and must equal the request's X-Amz-Date
 * header. Returns the Authorization header value (free with secret_free()). Reads only
 * creds->access_key_id and creds->secret_access_key; see sigv4_request.headers for the session
 * token.
 */
int sigv4_sign(const struct sigv4_request *req, const struct aws_credentials *creds,
               const char *region, const char *service, const char *amz_date, char **ret_authz);
