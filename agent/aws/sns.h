/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SNS client: Publish, in the Query protocol of ec2.c (version 2010-03-31) on signed_post.c, for
 * the message a run sends when it ends (run/notify.c).
 */
#pragma once

#include "aws/signed_post.h"

struct creds_provider;

struct sns_client_config {
        const char *region; /* required: the topic's region */
        /*
         * The endpoint: AWS_ENDPOINT_URL_SNS, then AWS_ENDPOINT_URL, then this, then
         * https://sns.REGION.amazonaws.com.
         */
        const char *endpoint_url;
        struct aws_transport transport;
};

struct sns_client;
int sns_client_new(const struct sns_client_config *cfg, struct creds_provider *creds,
                   struct sns_client **ret);
struct sns_client *sns_client_free(struct sns_client *c);
const char *sns_client_endpoint(const struct sns_client *c);
/* Share a region's rate limit and retry quota (budget.h); NULL: none. */
void sns_client_set_budget(struct sns_client *c, struct aws_budget *b);

/* SNS's limits on a subject: 1..100 printable ASCII characters, no line break. */
#define SNS_SUBJECT_MAX 100

struct sns_message {
        const char *topic_arn;
        const char *subject; /* -EINVAL unless 1..SNS_SUBJECT_MAX printable ASCII */
        const char *text;    /* the message */
        const char *attr_name;  /* NULL: no message attribute */
        const char *attr_value; /* a String attribute */
};

/*
 * Publish. 0 and the message id (ret_message_id may be NULL); -EREMOTEIO with err filled when SNS
 * answered with an error; -EBADMSG for an answer without a MessageId; other errors as
 * signed_post_call().
 */
int sns_publish(struct sns_client *c, const struct sns_message *m, char **ret_message_id,
                struct aws_error *err);

/* The region of an SNS topic ARN (arn:PARTITION:sns:REGION:ACCOUNT:NAME), or -EINVAL. */
int sns_topic_region(const char *topic_arn, char **ret);
