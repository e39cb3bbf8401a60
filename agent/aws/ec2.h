/*
 * EC2 Query API client: form-encoded POSTs signed with SigV4, XML answers parsed with libxml2,
 * retries for throttling and 5xx. Each API call is one small function on top of ec2_call().
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <libxml/tree.h>

#include "../util/timeutil.h"

struct creds_provider;

/* An error AWS returned; everything is NULL when the failure was not AWS's answer. */
struct aws_error {
        long http_status;
        char *code;
        char *message;
        char *request_id;
};
void aws_error_done(struct aws_error *e);

struct ec2_client_config {
        const char *region;       /* required */
        const char *endpoint_url; /* config key; env AWS_ENDPOINT_URL_EC2, AWS_ENDPOINT_URL win */
        unsigned connect_timeout_ms; /* 0: 3000 */
        unsigned timeout_ms;         /* per attempt; 0: 30000 */
        unsigned retry_deadline_ms;  /* all attempts of one call; 0: 120000 */
        unsigned retry_base_ms;      /* 0: 200 */
        unsigned retry_cap_ms;       /* 0: 20000 */
        unsigned max_attempts;       /* 0: 8 */
        size_t max_body;             /* 0: 8 MiB */
        clock_fn clock;              /* for X-Amz-Date; NULL: real time */
        void *clock_userdata;
};

struct ec2_client;
int ec2_client_new(const struct ec2_client_config *cfg, struct creds_provider *creds,
                   struct ec2_client **ret);
struct ec2_client *ec2_client_free(struct ec2_client *c);
const char *ec2_client_endpoint(const struct ec2_client *c);

/* Query parameters, kept in insertion order; encoded and sorted when sent. */
struct ec2_params;
int ec2_params_new(struct ec2_params **ret);
struct ec2_params *ec2_params_free(struct ec2_params *p);
int ec2_params_add(struct ec2_params *p, const char *name, const char *value);
int ec2_params_addf(struct ec2_params *p, const char *value, const char *name_fmt, ...)
        __attribute__((format(printf, 3, 4)));

/*
 * One call. 0 and the parsed answer on success. -EREMOTEIO when AWS answered with an error
 * (err filled with its code, message and request id). -EBADMSG for an answer that is not the
 * XML we expect. -ETIME when retries ran out (err holds the last AWS error, if any). Transport
 * errors as in http.h. Throttling codes, 500/502/503/504 and transport errors are retried.
 */
int ec2_call(struct ec2_client *c, const char *action, struct ec2_params *params, xmlDoc **ret_doc,
             struct aws_error *err);

/* The one place that decides which AWS errors are worth another attempt. */
bool aws_error_is_transient(long http_status, const char *code);

/*
 * DryRun helpers: mutating calls take dry_run; with it they return 0 when AWS says
 * DryRunOperation (allowed) and -EPERM with err filled on UnauthorizedOperation.
 */

struct ec2_block_device {
        char *device_name;
        char *volume_id; /* NULL for instance-store */
};

struct ec2_instance {
        char *instance_id;
        char *state;
        char *root_device_name;
        char *root_device_type;
        char *image_id;
        char *architecture;
        struct ec2_block_device *devices;
        size_t n_devices;
};
void ec2_instance_done(struct ec2_instance *i);

struct ec2_tag {
        const char *key;
        const char *value;
};

struct ec2_image {
        char *image_id;
        char *name;
        char *state; /* pending, available, failed, error, ... */
        char *state_reason;
        char *creation_date;
        char **snapshot_ids; /* NULL-terminated */
        struct {
                char *key;
                char *value;
        } * tags;
        size_t n_tags;
};
void ec2_image_done(struct ec2_image *im);
void ec2_images_free(struct ec2_image *ims, size_t n);

struct ec2_create_image_args {
        const char *instance_id;
        const char *name;
        const char *description;
        bool no_reboot;
        const struct ec2_tag *tags; /* applied to the image and its snapshots (TagSpecification) */
        size_t n_tags;
        bool dry_run;
};

int ec2_describe_instance(struct ec2_client *c, const char *instance_id, struct ec2_instance *ret,
                          struct aws_error *err);
int ec2_create_image(struct ec2_client *c, const struct ec2_create_image_args *a,
                     char **ret_image_id, struct aws_error *err);
/* Images owned by this account, filtered by exact name and/or image id (either may be NULL). */
int ec2_describe_images(struct ec2_client *c, const char *name, const char *image_id,
                        struct ec2_image **ret, size_t *ret_n, struct aws_error *err);
int ec2_create_tags(struct ec2_client *c, const char *const *resource_ids,
                    const struct ec2_tag *tags, size_t n_tags, bool dry_run, struct aws_error *err);
int ec2_deregister_image(struct ec2_client *c, const char *image_id, bool delete_snapshots,
                         bool dry_run, struct aws_error *err);
int ec2_delete_snapshot(struct ec2_client *c, const char *snapshot_id, bool dry_run,
                        struct aws_error *err);

/* Parsers of EC2 XML, exposed for the fuzz targets and unit tests. */
int ec2_parse_error(const char *body, size_t len, struct aws_error *err);
int ec2_parse_instance(const char *body, size_t len, struct ec2_instance *ret);
int ec2_parse_images(const char *body, size_t len, struct ec2_image **ret, size_t *ret_n);
