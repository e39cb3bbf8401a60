/* IMDSv2 client: session token, metadata paths, identity document, role credentials, user-data. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct aws_credentials;

struct imds_config {
        const char *endpoint;        /* config key; NULL: from the environment or the default */
        const char *endpoint_mode;   /* "IPv4" or "IPv6"; NULL: from the environment, else IPv4 */
        unsigned token_ttl_s;        /* 1..21600; 0: 21600 */
        unsigned connect_timeout_ms; /* 0: 1000 */
        unsigned timeout_ms;         /* per request; 0: 2000 */
        unsigned retry_deadline_ms;  /* all attempts of one call; 0: 10000 */
        bool allow_imdsv1;           /* fall back to tokenless GETs when the token PUT is refused */
        bool disabled;               /* also set by AWS_EC2_METADATA_DISABLED=true */
        size_t max_body; /* ceiling per response; 0: 64 KiB (user-data: 16 KiB * 4 max) */
};

struct imds_identity {
        char *instance_id;
        char *region;
        char *availability_zone;
        char *account_id;
        char *architecture;
        char *image_id;
        char *instance_type;
};

struct imds;

/*
 * Resolve the endpoint: AWS_EC2_METADATA_SERVICE_ENDPOINT, then the config key, then the mode
 * (AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE, then the config key): http://169.254.169.254 or
 * http://[fd00:ec2::254]. The environment wins, as in the AWS SDKs.
 */
int imds_new(const struct imds_config *cfg, struct imds **ret);
struct imds *imds_free(struct imds *m);
const char *imds_endpoint(const struct imds *m);

/*
 * GET a path below the endpoint, e.g. "/latest/meta-data/instance-id". -ENOENT on 404, -EACCES
 * on 403, -EINVAL on 400, -ENODEV when IMDS is disabled, -EFBIG over the ceiling, -ETIME when
 * retries ran out, other transport errors as http.h maps them.
 */
int imds_get(struct imds *m, const char *path, char **ret_body, size_t *ret_len);

int imds_instance_id(struct imds *m, char **ret);
int imds_region(struct imds *m, char **ret);
int imds_availability_zone(struct imds *m, char **ret);
int imds_identity(struct imds *m, struct imds_identity *ret);
/* -ENOENT when the instance has no role. */
int imds_role_name(struct imds *m, char **ret);
int imds_role_credentials(struct imds *m, struct aws_credentials *ret);
/* -ENOENT when there is no user-data. */
int imds_user_data(struct imds *m, char **ret, size_t *ret_len);

/* Counters for tests and `whoami --json`: token fetches and requests sent. */
unsigned imds_token_fetches(const struct imds *m);

/* Parsers of IMDS JSON, exposed for the fuzz targets. */
int imds_parse_identity(const char *json, size_t len, struct imds_identity *ret);
int imds_parse_credentials(const char *json, size_t len, const char *role,
                           struct aws_credentials *ret);
void imds_identity_done(struct imds_identity *id);
