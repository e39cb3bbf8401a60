/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SNS Publish in the Query protocol: the encoding, the call and the error shape are ec2.c's (as
 * for STS); what is SNS's own is the version, the endpoint and the parameters of a message.
 */
#include "aws/sns.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "aws/ec2.h"
#include "aws/vocab.h"
#include "aws/xml.h"
#include "util/macro.h"
#include "util/str.h"

#define SNS_API_VERSION "2010-03-31"

int sns_client_new(const struct ec2_client_config *cfg, struct creds_provider *creds,
                   struct ec2_client **ret)
{
        return ec2_query_client_new("sns", "SNS", cfg, creds, ret);
}

static bool subject_valid(const char *s)
{
        size_t n = s ? strlen(s) : 0;

        if (n == 0 || n > SNS_SUBJECT_MAX)
                return false;
        for (const char *p = s; *p; p++)
                if (*p < 0x20 || *p > 0x7e)
                        return false;
        return true;
}

int sns_publish(struct ec2_client *c, const struct sns_message *m, char **ret_message_id,
                struct aws_error *err)
{
        _cleanup_params_ struct ec2_params *p = NULL;
        _cleanup_xml_doc_ xmlDoc *doc = NULL;
        _cleanup_free_ char *id = NULL;
        int r;

        if (!m || !m->topic_arn || !m->text || !subject_valid(m->subject) ||
            (m->attr_name && !m->attr_value))
                return -EINVAL;
        r = ec2_params_build(&p, "TopicArn", m->topic_arn, "Subject", m->subject, "Message",
                             m->text, NULL);
        if (r >= 0 && m->attr_name)
                r = ec2_params_add(p, "MessageAttributes.entry.1.Name", m->attr_name);
        if (r >= 0 && m->attr_name)
                r = ec2_params_add(p, "MessageAttributes.entry.1.Value.DataType", "String");
        if (r >= 0 && m->attr_name)
                r = ec2_params_add(p, "MessageAttributes.entry.1.Value.StringValue", m->attr_value);
        if (r < 0)
                return r;
        r = ec2_query_call(c, SNS_API_VERSION, "Publish", p, false, &doc, err);
        if (r < 0)
                return r;
        r = ec2_required(xml_child_text(xml_child(xmlDocGetRootElement(doc), "PublishResult"),
                                        "MessageId", &id));
        if (r < 0)
                return r;
        if (ret_message_id)
                *ret_message_id = TAKE_PTR(id);
        return 0;
}
