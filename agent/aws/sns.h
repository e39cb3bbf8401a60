/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SNS client: Publish, in the Query protocol of ec2.c (version 2010-03-31) on signed_post.c, for
 * the message a run sends when it ends (run/notify.c).
 */
#pragma once

#include "aws/signed_post.h"

struct creds_provider;
struct ec2_client;
struct ec2_client_config;

/*
 * An SNS client is a Query client (ec2.h) with SNS's signing name and host; free it with
 * ec2_client_free(), share a budget with ec2_client_set_budget(). cfg->region is the topic's;
 * the endpoint: AWS_ENDPOINT_URL_SNS, then AWS_ENDPOINT_URL, then cfg->endpoint_url, then
 * https://sns.REGION.amazonaws.com.
 */
int sns_client_new(const struct ec2_client_config *cfg, struct creds_provider *creds,
                   struct ec2_client **ret);

/* SNS's limits on a subject: 1..100 printable ASCII characters, no line break. */
#define SNS_SUBJECT_MAX 100

struct sns_message {
        const char *topic_arn;
        const char *subject;    /* -EINVAL unless 1..SNS_SUBJECT_MAX printable ASCII */
        const char *text;       /* the message */
        const char *attr_name;  /* NULL: no message attribute */
        const char *attr_value; /* a String attribute */
};

/*
 * Publish. 0 and the message id (ret_message_id may be NULL); -EREMOTEIO with err filled when SNS
 * answered with an error; -EBADMSG for an answer without a MessageId; other errors as
 * signed_post_call().
 */
int sns_publish(struct ec2_client *c, const struct sns_message *m, char **ret_message_id,
                struct aws_error *err);
