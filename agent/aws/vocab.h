/* SPDX-License-Identifier: Apache-2.0 */
/* The common AWS vocabulary: name rules and where a setting comes from. See vocab.c. */
#pragma once

#include <stdbool.h>

/* Visible ASCII: what may travel in an HTTP header value without being able to end it. */
bool aws_visible_char(char c);

/* Regions end up in host names and signing scopes: us-east-1, us-gov-west-1 (1-32 of [a-z0-9-]). */
bool aws_region_valid(const char *s);
/* Zones: us-east-1a, us-west-2-lax-1a, us-east-1-wl1-bos-wlz-1 (1-64 of [a-z0-9-]). */
bool aws_zone_valid(const char *s);
bool aws_account_id_valid(const char *s);    /* 12 digits */
bool aws_instance_id_valid(const char *s);   /* i- and 8 to 32 lowercase hex digits */
bool aws_image_id_valid(const char *s);      /* ami- and 8 to 32 lowercase hex digits */
bool aws_architecture_valid(const char *s);  /* x86_64, arm64, ... */
bool aws_instance_type_valid(const char *s); /* m7g.large */
bool aws_role_name_valid(const char *s);     /* IAM: [\w+=,.@-]{1,64} */
bool aws_access_key_id_valid(const char *s); /* IAM: [\w]{16,128} */
bool aws_secret_access_key_valid(const char *s);
bool aws_session_token_valid(const char *s);
/*
 * The region of an ARN of service in a region and an account, arn:PARTITION:SERVICE:REGION:
 * ACCOUNT:RESOURCE (an SNS topic, an EventBridge bus), with a non-empty RESOURCE; -EINVAL for
 * anything else.
 */
int aws_arn_region(const char *arn, const char *service, char **ret);

/*
 * "The environment beats the configuration", as in the AWS SDKs: the value of env_name when it is
 * set and not empty, else configured when not empty, else NULL. Not a copy.
 */
const char *aws_setting(const char *env_name, const char *configured);

/*
 * The endpoint of a service, with the AWS SDKs' precedence: AWS_ENDPOINT_URL_<ENV_NAME> (e.g.
 * AWS_ENDPOINT_URL_EC2), AWS_ENDPOINT_URL, the configured URL, https://HOST.REGION.amazonaws.com.
 * Empty values count as unset. A string the caller frees; NULL on ENOMEM.
 */
char *aws_endpoint_resolve(const char *env_name, const char *host, const char *region,
                           const char *configured);
