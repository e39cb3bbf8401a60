/* SPDX-License-Identifier: Apache-2.0 */
/*
 * AWS JSON 1.1 protocol on top of signed_post.c: the target header, the body, the answer and the
 * error shape. The KMS, SSM and EventBridge calls live in awsjson_calls.c.
 */
#include "aws/awsjson.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/macro.h"
#include "aws/ec2.h"
#include "aws/http.h"
#include "aws/vocab.h"

#define AWSJSON_CONTENT_TYPE "application/x-amz-json-1.1"

struct awsjson_client {
        enum awsjson_service service;
        struct signed_post *sp;
};

static const struct {
        const char *signing_name; /* and host prefix */
        const char *env_name;     /* AWS_ENDPOINT_URL_<env_name> */
        const char *target_prefix;
} services[] = {
        [AWSJSON_KMS] = {"kms", "KMS", "TrentService"},
        [AWSJSON_SSM] = {"ssm", "SSM", "AmazonSSM"},
        [AWSJSON_EVENTS] = {"events", "EVENTS", "AWSEvents"},
};

int awsjson_client_new(const struct awsjson_client_config *cfg, struct creds_provider *creds,
                       struct awsjson_client **ret)
{
        _cleanup_free_ char *url = NULL;
        struct aws_transport tp;
        struct awsjson_client *c;
        int r;

        if (!cfg || (unsigned)cfg->service >= ELEMENTSOF(services) ||
            !aws_region_valid(cfg->region))
                return -EINVAL;
        url = aws_endpoint_resolve(services[cfg->service].env_name,
                                   services[cfg->service].signing_name, cfg->region,
                                   cfg->endpoint_url);
        if (!url)
                return -ENOMEM;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->service = cfg->service;
        tp = cfg->transport;
        if (tp.max_body == 0 || tp.max_body > AWSJSON_MAX_BODY)
                tp.max_body = AWSJSON_MAX_BODY;
        r = signed_post_new(
                &(struct signed_post_config){.region = cfg->region,
                                             .service = services[cfg->service].signing_name,
                                             .endpoint = url,
                                             .content_type = AWSJSON_CONTENT_TYPE,
                                             .transport = tp},
                creds, &c->sp);
        if (r < 0) {
                free(c);
                return r;
        }
        *ret = c;
        return 0;
}

struct awsjson_client *awsjson_client_free(struct awsjson_client *c)
{
        if (!c)
                return NULL;
        signed_post_free(c->sp);
        free(c);
        return NULL;
}

const char *awsjson_client_endpoint(const struct awsjson_client *c)
{
        return signed_post_endpoint(c->sp);
}

void awsjson_client_set_budget(struct awsjson_client *c, struct aws_budget *b)
{
        signed_post_set_budget(c->sp, b);
}

unsigned awsjson_client_last_attempts(const struct awsjson_client *c)
{
        return signed_post_last_attempts(c->sp);
}

static bool depth_ok(const cJSON *j, unsigned depth)
{
        if (depth > AWSJSON_MAX_DEPTH)
                return false;
        for (const cJSON *i = j->child; i; i = i->next)
                if (!depth_ok(i, depth + 1))
                        return false;
        return true;
}

int awsjson_parse(const char *body, size_t len, cJSON **ret)
{
        const char *end = NULL;
        cJSON *j;

        if (len > AWSJSON_MAX_BODY)
                return -EFBIG;
        if (!body || len == 0)
                return -EBADMSG;
        j = cJSON_ParseWithLengthOpts(body, len, &end, false);
        if (!j)
                return -EBADMSG;
        /* Only white space may follow the object. */
        while (end && end < body + len && strchr(" \t\r\n", *end) && *end)
                end++;
        if (!cJSON_IsObject(j) || !end || end != body + len || !depth_ok(j, 0)) {
                cJSON_Delete(j);
                return -EBADMSG;
        }
        *ret = j;
        return 0;
}

static const char *json_str(const cJSON *o, const char *name)
{
        const cJSON *i = cJSON_GetObjectItemCaseSensitive(o, name);

        return cJSON_IsString(i) ? i->valuestring : NULL;
}

int awsjson_parse_error(const char *body, size_t len, struct aws_error *err)
{
        _cleanup_(aws_error_done) struct aws_error e = {};
        cJSON *j = NULL;
        const char *type, *msg, *start, *stop;
        int r = awsjson_parse(body, len, &j);

        if (r < 0)
                return r;
        type = json_str(j, "__type");
        if (!type)
                type = json_str(j, "code");
        msg = json_str(j, "message");
        if (!msg)
                msg = json_str(j, "Message");
        /* "com.amazonaws.kms#NotFoundException" or "NotFoundException:http://..." */
        start = type ? strrchr(type, '#') : NULL;
        start = start ? start + 1 : type;
        stop = start ? strchrnul(start, ':') : NULL;
        if (!start || stop == start) {
                cJSON_Delete(j);
                return -EBADMSG;
        }
        e.code = strndup(start, (size_t)(stop - start));
        e.message = msg ? strdup(msg) : NULL;
        cJSON_Delete(j);
        if (!e.code || (msg && !e.message))
                return -ENOMEM;
        aws_error_move(err, &e);
        return 0;
}

struct answer {
        const char *operation;
        cJSON *json;
};

/*
 * A 2xx answer. An operation without output (PutKeyPolicy, RevokeGrant) may answer with no body
 * at all, which botocore reads as {}; moto answers some of them with null.
 */
static int parse_answer(const char *body, size_t len, cJSON **ret)
{
        if (len == 0 || (len == 4 && memcmp(body, "null", 4) == 0)) {
                *ret = cJSON_CreateObject();
                return *ret ? 0 : -ENOMEM;
        }
        return awsjson_parse(body, len, ret);
}

static int handle_response(const struct http_response *resp, void *userdata, struct aws_error *err)
{
        struct answer *a = userdata;
        _cleanup_(aws_error_done) struct aws_error e = {.http_status = resp->status};
        int r;

        if (resp->status >= 200 && resp->status < 300) {
                r = parse_answer(resp->body, resp->body_len, &a->json);
                if (r >= 0)
                        return 0;
                log_debug("%s: HTTP %ld with a body that is not a JSON object", a->operation,
                          resp->status);
                r = -EBADMSG;
        } else {
                r = awsjson_parse_error(resp->body, resp->body_len, &e);
                /*
                 * An authorization layer in front of a JSON service may answer in the Query
                 * protocol's XML (<ErrorResponse><Errors><Error>), as moto's IAM checks do.
                 */
                if (r < 0 && resp->body_len > 0 && resp->body[0] == '<')
                        r = ec2_parse_error(resp->body, resp->body_len, &e);
                e.http_status = resp->status;
                r = r < 0 ? -EBADMSG : -EREMOTEIO;
        }
        aws_error_move(err, &e);
        return r;
}

static bool operation_valid(const char *op)
{
        if (!op || !*op || strlen(op) > 64)
                return false;
        for (const char *p = op; *p; p++)
                if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                      (*p >= '0' && *p <= '9')))
                        return false;
        return true;
}

int awsjson_call(struct awsjson_client *c, const char *operation, const cJSON *request, cJSON **ret,
                 struct aws_error *err)
{
        _cleanup_free_ char *body = NULL, *target = NULL;
        struct answer a = {.operation = operation};
        int r;

        if (!operation_valid(operation))
                return -EINVAL;
        body = request ? cJSON_PrintUnformatted(request) : strdup("{}");
        if (!body)
                return -ENOMEM;
        if (asprintf(&target, "%s.%s", services[c->service].target_prefix, operation) < 0) {
                target = NULL;
                return -ENOMEM;
        }
        r = signed_post_call(c->sp, operation, target, body, strlen(body), handle_response, &a,
                             err);
        if (r < 0)
                return r;
        if (ret)
                *ret = a.json;
        else
                cJSON_Delete(a.json);
        return 0;
}
