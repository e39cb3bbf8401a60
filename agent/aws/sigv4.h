/*
 * AWS Signature Version 4, as pure functions, one per stage so that each stage can be checked
 * against AWS's own test suite (.creq, .sts, .authz).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct aws_credentials;

struct sigv4_header {
        const char *name;  /* any case; lowercased in the canonical form */
        const char *value; /* leading/trailing spaces trimmed and inner runs folded */
};

struct sigv4_request {
        const char *method;
        const char *path;  /* raw path, e.g. "/" or "/example space/" */
        const char *query; /* raw query string without '?', may be NULL or "" */
        const struct sigv4_header *headers;
        size_t n_headers; /* must include Host and X-Amz-Date (and any others to sign) */
        const void *payload;
        size_t payload_len;
};

/* Hex SHA-256 of data into out[65]. */
void sigv4_sha256_hex(const void *data, size_t len, char out[static 65]);

/* Canonical request and the signed-headers list ("host;x-amz-date"). Callers free both. */
int sigv4_canonical_request(const struct sigv4_request *req, char **ret_creq,
                            char **ret_signed_headers);
/* "AWS4-HMAC-SHA256\n<amz_date>\n<scope>\n<hex sha256 of creq>"; scope is
 * DATE/REGION/SERVICE/aws4_request. */
int sigv4_string_to_sign(const char *amz_date, const char *scope, const char *creq, char **ret);
/* kSigning = HMAC chain over date (YYYYMMDD), region, service, "aws4_request". Wipe it after use.
 */
int sigv4_signing_key(const char *secret, const char *date, const char *region, const char *service,
                      uint8_t out[static 32]);
/* "AWS4-HMAC-SHA256 Credential=AKID/scope, SignedHeaders=..., Signature=hex" */
int sigv4_authorization(const char *access_key_id, const char *scope, const char *signed_headers,
                        const uint8_t key[static 32], const char *sts, char **ret);

/* All stages at once: amz_date is "YYYYMMDDTHHMMSSZ". Returns the Authorization header value. */
int sigv4_sign(const struct sigv4_request *req, const struct aws_credentials *creds,
               const char *region, const char *service, const char *amz_date, char **ret_authz);
