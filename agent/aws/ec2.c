/* SPDX-License-Identifier: Apache-2.0 */
/*
 * EC2 Query API protocol: form-encoded parameters, XML answers and error bodies, on top of the
 * signed, retried POSTs of signed_post.c. The per-action calls live in ec2_calls.c.
 */
#include "aws/ec2.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/secret.h"
#include "aws/http.h"
#include "aws/xml.h"
#include "aws/vocab.h"

#define EC2_API_VERSION   "2016-11-15"
#define EC2_CONTENT_TYPE  "application/x-www-form-urlencoded; charset=utf-8"
#define EC2_MAX_PARAMS    4096u
#define EC2_MAX_BODY_SENT (1024u * 1024u)

struct ec2_client {
        struct signed_post *sp;
};

struct ec2_param {
        char *name;
        char *value;
};

struct ec2_params {
        struct ec2_param *v;
        size_t n, cap;
};

int ec2_query_client_new(const char *service, const char *env_name,
                         const struct ec2_client_config *cfg, struct creds_provider *creds,
                         struct ec2_client **ret)
{
        _cleanup_free_ char *url = NULL;
        struct ec2_client *c;
        int r;

        if (!cfg || !aws_region_valid(cfg->region))
                return -EINVAL;
        url = aws_endpoint_resolve(env_name, service, cfg->region, cfg->endpoint_url);
        if (!url)
                return -ENOMEM;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        r = signed_post_new(&(struct signed_post_config){.region = cfg->region,
                                                         .service = service,
                                                         .endpoint = url,
                                                         .content_type = EC2_CONTENT_TYPE,
                                                         .transport = cfg->transport},
                            creds, &c->sp);
        if (r < 0) {
                free(c);
                return r;
        }
        *ret = c;
        return 0;
}

int ec2_client_new(const struct ec2_client_config *cfg, struct creds_provider *creds,
                   struct ec2_client **ret)
{
        return ec2_query_client_new("ec2", "EC2", cfg, creds, ret);
}

struct ec2_client *ec2_client_free(struct ec2_client *c)
{
        if (!c)
                return NULL;
        signed_post_free(c->sp);
        free(c);
        return NULL;
}

const char *ec2_client_endpoint(const struct ec2_client *c)
{
        return signed_post_endpoint(c->sp);
}

const char *ec2_client_region(const struct ec2_client *c)
{
        return signed_post_region(c->sp);
}

void ec2_client_set_budget(struct ec2_client *c, struct aws_budget *b)
{
        signed_post_set_budget(c->sp, b);
}

unsigned ec2_client_last_attempts(const struct ec2_client *c)
{
        return signed_post_last_attempts(c->sp);
}

int ec2_params_new(struct ec2_params **ret)
{
        struct ec2_params *p = calloc(1, sizeof(*p));

        if (!p)
                return -ENOMEM;
        *ret = p;
        return 0;
}

struct ec2_params *ec2_params_free(struct ec2_params *p)
{
        if (!p)
                return NULL;
        for (size_t i = 0; i < p->n; i++) {
                free(p->v[i].name);
                free(p->v[i].value);
        }
        free(p->v);
        free(p);
        return NULL;
}

/* Takes ownership of name. */
static int params_add_owned(struct ec2_params *p, char *name, const char *value)
{
        char *v = NULL;
        int r = -EINVAL;

        /* Action and Version are ours to set; a name twice would be ambiguous to EC2. */
        if (!*name || streq(name, "Action") || streq(name, "Version") || !value)
                goto fail;
        r = -EEXIST;
        for (size_t i = 0; i < p->n; i++)
                if (streq(p->v[i].name, name))
                        goto fail;
        r = -E2BIG;
        if (p->n >= EC2_MAX_PARAMS)
                goto fail;
        r = -ENOMEM;
        if (p->n == p->cap) {
                size_t cap = p->cap ? p->cap * 2 : 16;
                struct ec2_param *nv = reallocarray(p->v, cap, sizeof(*nv));
                if (!nv)
                        goto fail;
                p->v = nv;
                p->cap = cap;
        }
        v = strdup(value);
        if (!v)
                goto fail;
        p->v[p->n++] = (struct ec2_param){.name = name, .value = v};
        return 0;
fail:
        free(name);
        return r;
}

int ec2_params_add(struct ec2_params *p, const char *name, const char *value)
{
        char *n = name ? strdup(name) : NULL;

        if (!name)
                return -EINVAL;
        if (!n)
                return -ENOMEM;
        return params_add_owned(p, n, value);
}

int ec2_params_addf(struct ec2_params *p, const char *value, const char *name_fmt, ...)
{
        char *name;
        va_list ap;
        int n;

        va_start(ap, name_fmt);
        n = vasprintf(&name, name_fmt, ap);
        va_end(ap);
        if (n < 0)
                return -ENOMEM;
        return params_add_owned(p, name, value);
}

int ec2_params_build(struct ec2_params **ret, ...)
{
        _cleanup_params_ struct ec2_params *p = NULL;
        const char *name, *value;
        va_list ap;
        int r;

        r = ec2_params_new(&p);
        va_start(ap, ret);
        while (r >= 0 && (name = va_arg(ap, const char *))) {
                value = va_arg(ap, const char *);
                if (value)
                        r = ec2_params_add(p, name, value);
        }
        va_end(ap);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(p);
        return 0;
}

int ec2_params_set(struct ec2_params *p, const char *name, const char *value)
{
        char *v;

        for (size_t i = 0; name && value && i < p->n; i++) {
                if (!streq(p->v[i].name, name))
                        continue;
                v = strdup(value);
                if (!v)
                        return -ENOMEM;
                free(p->v[i].value);
                p->v[i].value = v;
                return 0;
        }
        return ec2_params_add(p, name, value);
}

static int param_cmp(const void *a, const void *b)
{
        const struct ec2_param *const *x = a, *const *y = b;

        return strcmp((*x)->name, (*y)->name);
}

/*
 * AWS's percent-encoding, except that a space becomes '+' as in any HTML form: that is what
 * botocore sends, byte for byte, and moto checks signatures against the form re-encoded that way
 * (EC2 itself accepts either, since it hashes the body as sent).
 */
static int append_encoded(struct buf *b, const char *s)
{
        _cleanup_free_ char *e = aws_uri_encode(s, strlen(s), false);
        char *w;

        if (!e)
                return -ENOMEM;
        w = e;
        for (const char *r = e; *r; r++) {
                if (startswith(r, "%20")) {
                        *w++ = '+';
                        r += 2;
                } else {
                        *w++ = *r;
                }
        }
        *w = '\0';
        return buf_append(b, e, (size_t)(w - e));
}

static bool action_valid(const char *action)
{
        if (!action || !*action || strlen(action) > 64)
                return false;
        for (const char *p = action; *p; p++)
                if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                      (*p >= '0' && *p <= '9')))
                        return false;
        return true;
}

/* The Query protocol's body for any service: the API version is the service's (STS: 2011-06-15). */
static int query_params_encode(const struct ec2_params *p, const char *action, const char *version,
                               char **ret, size_t *ret_len)
{
        _cleanup_free_ const struct ec2_param **sorted = NULL;
        struct buf b = {.max = EC2_MAX_BODY_SENT};
        size_t n = p ? p->n : 0;
        int r;

        if (!action_valid(action))
                return -EINVAL;
        if (n > 0) {
                sorted = calloc(n, sizeof(*sorted));
                if (!sorted)
                        return -ENOMEM;
                for (size_t i = 0; i < n; i++)
                        sorted[i] = &p->v[i];
                qsort(sorted, n, sizeof(*sorted), param_cmp);
        }
        r = buf_printf(&b, "Action=%s&Version=%s", action, version);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                r = buf_append(&b, "&", 1);
                if (r >= 0)
                        r = append_encoded(&b, sorted[i]->name);
                if (r >= 0)
                        r = buf_append(&b, "=", 1);
                if (r >= 0)
                        r = append_encoded(&b, sorted[i]->value);
        }
        return buf_finish(&b, r, ret, ret_len);
}

int ec2_params_encode(const struct ec2_params *p, const char *action, char **ret, size_t *ret_len)
{
        return query_params_encode(p, action, EC2_API_VERSION, ret, ret_len);
}

int ec2_parse_error(const char *body, size_t len, struct aws_error *err)
{
        _cleanup_xml_doc_ xmlDoc *doc = NULL;
        _cleanup_(aws_error_done) struct aws_error e = {};
        xmlNode *root, *error;
        int r;

        r = xml_parse(body, len, &doc);
        if (r < 0)
                return r;
        /*
         * EC2 answers <Response><Errors><Error>; the shared AWS front end (e.g. for auth
         * failures) answers <ErrorResponse>, with or without the <Errors> level.
         */
        root = xmlDocGetRootElement(doc);
        if (!xml_is(root, "Response") && !xml_is(root, "ErrorResponse"))
                return -EBADMSG;
        error = xml_path(root, "Errors", "Error", NULL);
        if (!error)
                error = xml_child(root, "Error");
        if (!error)
                return -EBADMSG;
        r = xml_child_text(error, "Code", &e.code);
        if (r < 0)
                return r == -ENOENT ? -EBADMSG : r;
        if (!*e.code)
                return -EBADMSG;
        r = xml_child_text_opt(error, "Message", &e.message);
        if (r >= 0)
                r = xml_child_text_opt(root, "RequestID", &e.request_id);
        if (r >= 0 && !e.request_id)
                r = xml_child_text_opt(root, "RequestId", &e.request_id);
        if (r < 0)
                return r;
        aws_error_move(err, &e);
        return 0;
}

struct answer {
        const char *action;
        bool secret; /* the body holds credentials (STS): wiped once read */
        xmlDoc *doc;
};

/*
 * Turn one HTTP answer into a document or an AWS error. -EBADMSG with err->http_status when the
 * body is not what we expect; -EREMOTEIO with err filled for an AWS error.
 */
static int handle_response(const struct http_response *resp, void *userdata, struct aws_error *err)
{
        struct answer *a = userdata;
        _cleanup_(aws_error_done) struct aws_error e = {.http_status = resp->status};
        _cleanup_xml_doc_ xmlDoc *doc = NULL;
        xmlNode *root;
        char expect[96];
        int r;

        if (resp->status >= 200 && resp->status < 300) {
                r = xml_parse(resp->body, resp->body_len, &doc);
                root = r >= 0 ? xmlDocGetRootElement(doc) : NULL;
                snprintf(expect, sizeof(expect), "%sResponse", a->action);
                if (root && xml_is(root, expect)) {
                        if (a->secret)
                                secret_wipe(resp->body, resp->body_len);
                        a->doc = TAKE_PTR(doc);
                        return 0;
                }
                log_debug("EC2 %s: HTTP %ld with a body that is not a %s", a->action, resp->status,
                          expect);
                r = -EBADMSG;
        } else {
                r = ec2_parse_error(resp->body, resp->body_len, &e);
                e.http_status = resp->status;
                r = r < 0 ? -EBADMSG : -EREMOTEIO;
        }
        if (a->secret)
                secret_wipe(resp->body, resp->body_len);
        aws_error_move(err, &e);
        return r;
}

void ec2_client_limit_next_call(struct ec2_client *c, bool once, unsigned deadline_ms)
{
        signed_post_limit_next(c->sp, once, deadline_ms);
}

int ec2_call(struct ec2_client *c, const char *action, struct ec2_params *params, xmlDoc **ret_doc,
             struct aws_error *err)
{
        return ec2_query_call(c, EC2_API_VERSION, action, params, false, ret_doc, err);
}

int ec2_query_call(struct ec2_client *c, const char *version, const char *action,
                   struct ec2_params *params, bool secret_answer, xmlDoc **ret_doc,
                   struct aws_error *err)
{
        _cleanup_free_ char *body = NULL;
        struct answer a = {.action = action, .secret = secret_answer};
        size_t body_len;
        int r;

        r = query_params_encode(params, action, version, &body, &body_len);
        if (r < 0)
                return r;
        r = signed_post_call(c->sp, action, NULL, body, body_len, handle_response, &a, err);
        if (r < 0)
                return r;
        if (ret_doc)
                *ret_doc = a.doc;
        else
                xmlFreeDoc(a.doc);
        return 0;
}
