/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The EC2 actions of the boot check (distribute/bootcheck.c): launching one instance from the new
 * image, finding it again by its tag, reading its tags, its status checks and its console output,
 * and terminating it. Each is a small function on top of ec2_call() (ec2.h), with its parser
 * exposed for the unit tests and the fuzzer.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "aws/ec2.h"

struct ec2_run_instance_args {
        const char *image_id;                  /* required */
        const char *instance_type;             /* required */
        const char *subnet_id;                 /* NULL: the default subnet */
        const char *const *security_group_ids; /* NULL-terminated; NULL: the default group */
        const char *instance_profile;          /* a name, or an ARN ("arn:..."); NULL: none */
        const char *user_data;                 /* plain text, sent base64-encoded */
        const char *client_token;              /* required: one instance however often sent */
        const struct ec2_tag *tags;            /* on the instance and its volumes */
        size_t n_tags;
        bool dry_run; /* DryRun: allowed is 0 with *ret_instance_id NULL, else -EPERM (err) */
};

/*
 * RunInstances of one instance with InstanceInitiatedShutdownBehavior=terminate and IMDSv2 only
 * (MetadataOptions.HttpTokens=required): a power-off from inside ends it. Under a->dry_run, an EC2
 * that ignored DryRun and made the instance gives its id, as without.
 */
int ec2_run_instance(struct ec2_client *c, const struct ec2_run_instance_args *a,
                     char **ret_instance_id, struct aws_error *err);
/* TerminateInstances of one instance; one EC2 does not know (any more) counts as terminated. */
int ec2_terminate_instance(struct ec2_client *c, const char *instance_id, struct aws_error *err);
/* The ids of every instance (terminated ones included) carrying tag key=value (NULL-terminated). */
int ec2_find_instances_by_tag(struct ec2_client *c, const char *key, const char *value, char ***ret,
                              struct aws_error *err);
/* The value of tag key on the instance (DescribeTags), *ret NULL when it has no such tag. */
int ec2_instance_tag(struct ec2_client *c, const char *instance_id, const char *key, char **ret,
                     struct aws_error *err);

struct ec2_instance_status {
        char *state;           /* pending, running, shutting-down, terminated, ... */
        char *system_status;   /* ok, impaired, initializing, insufficient-data, not-applicable */
        char *instance_status; /* the same values */
};
void ec2_instance_status_done(struct ec2_instance_status *s);
/* DescribeInstanceStatus (IncludeAllInstances): -ENOENT when EC2 lists nothing for the id. */
int ec2_describe_instance_status(struct ec2_client *c, const char *instance_id,
                                 struct ec2_instance_status *ret, struct aws_error *err);
/* GetConsoleOutput, decoded; *ret NULL (0) when EC2 has none yet. */
int ec2_get_console_output(struct ec2_client *c, const char *instance_id, char **ret,
                           size_t *ret_len, struct aws_error *err);

/* The parsers (errors as in ec2.h). */
int ec2_parse_run_instance(const char *body, size_t len, char **ret_instance_id);
int ec2_parse_instance_ids(const char *body, size_t len, char ***ret);
int ec2_parse_tag_value(const char *body, size_t len, const char *key, char **ret);
int ec2_parse_instance_status(const char *body, size_t len, struct ec2_instance_status *ret);
int ec2_parse_console_output(const char *body, size_t len, char **ret, size_t *ret_len);
