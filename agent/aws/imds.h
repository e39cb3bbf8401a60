/* SPDX-License-Identifier: Apache-2.0 */
/* IMDSv2 client: session token, metadata paths, identity document, role credentials, user-data. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "aws/imds_parse.h"

struct aws_credentials;

/* What a 0 below stands for; also the defaults of the [imds] keys (core/config.c). */
#define IMDS_MAX_TTL_S                  21600u /* the longest token lifetime IMDS grants */
#define IMDS_CONNECT_TIMEOUT_MS_DEFAULT 1000u
#define IMDS_TIMEOUT_MS_DEFAULT         2000u
#define IMDS_RETRY_DEADLINE_MS_DEFAULT  10000u

struct imds_config {
        const char *endpoint;        /* config key; NULL: from the environment or the default */
        const char *endpoint_mode;   /* "IPv4" or "IPv6" (any case); NULL: environment, else IPv4 */
        unsigned token_ttl_s;        /* 1..IMDS_MAX_TTL_S; 0: IMDS_MAX_TTL_S */
        unsigned connect_timeout_ms; /* 0: the default above */
        unsigned timeout_ms;         /* per request; 0: the default above */
        unsigned retry_deadline_ms;  /* all attempts of one call, token PUT included; 0: default */
        bool allow_imdsv1;           /* fall back to tokenless GETs when the token PUT is refused */
        bool disabled;               /* also set by AWS_EC2_METADATA_DISABLED=true */
        /*
         * Ceiling per response, user-data included; 0: 64 KiB. IMDS serves user-data decoded and
         * EC2 caps it at 16 KiB, so 64 KiB leaves room for user-data that is itself base64 text.
         */
        size_t max_body;
};

/* One client per user: it caches a token and reuses one HTTP handle, and has no lock. */
struct imds;

/*
 * Resolve the endpoint: AWS_EC2_METADATA_SERVICE_ENDPOINT, then the config key, then the mode
 * (AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE, then the config key): http://169.254.169.254 or
 * http://[fd00:ec2::254]. The environment wins, as in the AWS SDKs; an empty variable counts as
 * unset. Trailing '/'s are dropped. -EINVAL for an unknown mode, an endpoint that is not an
 * http:// or https:// URL, or a token_ttl_s over 21600. Nothing is sent here.
 */
int imds_new(const struct imds_config *cfg, struct imds **ret);
struct imds *imds_free(struct imds *m);
const char *imds_endpoint(const struct imds *m);

/*
 * GET a path below the endpoint, e.g. "/latest/meta-data/instance-id". -ENOENT on 404, -EACCES
 * on 403 (and on a 401 that a fresh token did not cure), -EINVAL on 400, -ENODEV when IMDS is
 * disabled, -EFBIG over the ceiling, -ETIME when retries ran out, other transport errors as
 * http.h maps them. A token PUT that is refused fails the call the same way (403: -EACCES,
 * 404/405: -EOPNOTSUPP) unless allow_imdsv1 lets the GET go out without a token.
 * The body is NUL-terminated (it may also contain NULs: use the length).
 */
int imds_get(struct imds *m, const char *path, char **ret_body, size_t *ret_len);

/* -EBADMSG when IMDS answers with something that does not look like the value asked for. */
int imds_instance_id(struct imds *m, char **ret);
int imds_region(struct imds *m, char **ret);
int imds_availability_zone(struct imds *m, char **ret);
int imds_identity(struct imds *m, struct imds_identity *ret);
/* -ENOENT when the instance has no role. */
int imds_role_name(struct imds *m, char **ret);
/* -ENOENT when the instance has no role; -EACCES when IMDS reports a Code other than Success. */
int imds_role_credentials(struct imds *m, struct aws_credentials *ret);
/* -ENOENT when there is no user-data. */
int imds_user_data(struct imds *m, char **ret, size_t *ret_len);

/* Counters for tests and `whoami --json`: tokens obtained, and HTTP requests sent. */
unsigned imds_token_fetches(const struct imds *m);
unsigned imds_requests(const struct imds *m);
