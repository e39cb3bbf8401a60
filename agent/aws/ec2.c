/*
 * EC2 Query API transport: endpoint resolution, form-encoded parameters, SigV4 signing of each
 * attempt, error bodies, and the retry loop. The per-action calls live in ec2_calls.c.
 */
#include "ec2.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/backoff.h"
#include "../util/buf.h"
#include "../util/log.h"
#include "../util/macro.h"
#include "../util/secret.h"
#include "credentials.h"
#include "http.h"
#include "sigv4.h"
#include "xml.h"

#define EC2_API_VERSION   "2016-11-15"
#define EC2_CONTENT_TYPE  "application/x-www-form-urlencoded; charset=utf-8"
#define EC2_MAX_PARAMS    4096u
#define EC2_MAX_BODY_SENT (1024u * 1024u)

struct ec2_client {
        char *region;
        char *endpoint; /* the URL we POST to */
        char *host;     /* Host header: host, plus ":port" when the port is not the default */
        char *path;     /* the URL's path, signed as the canonical URI */
        struct http_client *http;
        struct creds_provider *creds;
        unsigned connect_timeout_ms, timeout_ms, retry_deadline_ms, retry_base_ms, retry_cap_ms;
        unsigned max_attempts;
        size_t max_body;
        clock_fn clock;
        void *clock_userdata;
        unsigned last_attempts;
};

struct ec2_param {
        char *name;
        char *value;
};

struct ec2_params {
        struct ec2_param *v;
        size_t n, cap;
};

void aws_error_done(struct aws_error *e)
{
        if (!e)
                return;
        free(e->code);
        free(e->message);
        free(e->request_id);
        *e = (struct aws_error){};
}

/* Move src into dst, dropping whatever dst held. */
static void aws_error_move(struct aws_error *dst, struct aws_error *src)
{
        aws_error_done(dst);
        *dst = *src;
        *src = (struct aws_error){};
}

bool aws_error_is_transient(long http_status, const char *code)
{
        /*
         * Throttling and server-side failures, from the AWS SDKs' retry tables. Client errors
         * (bad parameters, missing resources, auth) never get better by trying again.
         */
        static const char *const codes[] = {
                "RequestLimitExceeded",
                "Throttling",
                "ThrottlingException",
                "ThrottledException",
                "RequestThrottled",
                "RequestThrottledException",
                "TooManyRequestsException",
                "SlowDown",
                "PriorRequestNotComplete",
                "EC2ThrottledException",
                "BandwidthLimitExceeded",
                "InternalError",
                "InternalFailure",
                "ServiceUnavailable",
                "Unavailable",
                "RequestTimeout",
                "RequestTimeoutException",
        };

        if (code)
                for (size_t i = 0; i < ELEMENTSOF(codes); i++)
                        if (streq(code, codes[i]))
                                return true;
        return http_status == 500 || http_status == 502 || http_status == 503 || http_status == 504;
}

static const char *endpoint_from_env(const char *configured)
{
        /* The AWS SDKs' precedence: service-specific variable, global variable, config file. */
        const char *e = getenv("AWS_ENDPOINT_URL_EC2");

        if (e && *e)
                return e;
        e = getenv("AWS_ENDPOINT_URL");
        if (e && *e)
                return e;
        return configured && *configured ? configured : NULL;
}

static bool region_valid(const char *region)
{
        /* The region ends up in a host name and in the signing scope. */
        if (!region || !*region || strlen(region) > 64)
                return false;
        for (const char *p = region; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
                        return false;
        return true;
}

/* Split the endpoint URL into the Host header and the path; reject what we could not sign. */
static int endpoint_parse(struct ec2_client *c)
{
        CURLU *u = curl_url();
        char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *query = NULL, *user = NULL,
             *frag = NULL;
        int r = -EINVAL;

        if (!u)
                return -ENOMEM;
        if (curl_url_set(u, CURLUPART_URL, c->endpoint, 0) != CURLUE_OK)
                goto out;
        if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
                goto out;
        if (!streq(scheme, "https") && !streq(scheme, "http"))
                goto out;
        /* Credentials, queries or fragments in the endpoint would not survive signing. */
        if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
            curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_OK ||
            curl_url_get(u, CURLUPART_FRAGMENT, &frag, 0) == CURLUE_OK)
                goto out;
        if (curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK)
                goto out;
        /* CURLUPART_PORT without CURLU_DEFAULT_PORT is only set when the URL names a port. */
        if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK &&
            !(streq(scheme, "https") && streq(port, "443")) &&
            !(streq(scheme, "http") && streq(port, "80"))) {
                if (asprintf(&c->host, "%s:%s", host, port) < 0) {
                        c->host = NULL;
                        r = -ENOMEM;
                        goto out;
                }
        } else {
                c->host = strdup(host);
        }
        c->path = strdup(path && *path ? path : "/");
        r = c->host && c->path ? 0 : -ENOMEM;
out:
        curl_free(scheme);
        curl_free(host);
        curl_free(port);
        curl_free(path);
        curl_free(query);
        curl_free(user);
        curl_free(frag);
        curl_url_cleanup(u);
        return r;
}

int ec2_client_new(const struct ec2_client_config *cfg, struct creds_provider *creds,
                   struct ec2_client **ret)
{
        struct ec2_client *c;
        const char *url;
        int r;

        if (!cfg || !region_valid(cfg->region))
                return -EINVAL;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->creds = creds;
        c->connect_timeout_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms : 3000;
        c->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 30000;
        c->retry_deadline_ms = cfg->retry_deadline_ms ? cfg->retry_deadline_ms : 120000;
        c->retry_base_ms = cfg->retry_base_ms ? cfg->retry_base_ms : 200;
        c->retry_cap_ms = cfg->retry_cap_ms ? cfg->retry_cap_ms : 20000;
        c->max_attempts = cfg->max_attempts ? cfg->max_attempts : 8;
        c->max_body = cfg->max_body ? cfg->max_body : 8u * 1024u * 1024u;
        c->clock = cfg->clock;
        c->clock_userdata = cfg->clock_userdata;
        c->region = strdup(cfg->region);
        url = endpoint_from_env(cfg->endpoint_url);
        if (url)
                c->endpoint = strdup(url);
        else if (asprintf(&c->endpoint, "https://ec2.%s.amazonaws.com", cfg->region) < 0)
                c->endpoint = NULL;
        if (!c->region || !c->endpoint) {
                r = -ENOMEM;
                goto fail;
        }
        r = endpoint_parse(c);
        if (r < 0) {
                log_debug("EC2 endpoint is not a usable http(s) URL without credentials or query");
                goto fail;
        }
        r = http_client_new(false, &c->http);
        if (r < 0)
                goto fail;
        *ret = c;
        return 0;
fail:
        ec2_client_free(c);
        return r;
}

struct ec2_client *ec2_client_free(struct ec2_client *c)
{
        if (!c)
                return NULL;
        http_client_free(c->http);
        free(c->region);
        free(c->endpoint);
        free(c->host);
        free(c->path);
        free(c);
        return NULL;
}

const char *ec2_client_endpoint(const struct ec2_client *c)
{
        return c->endpoint;
}

unsigned ec2_client_last_attempts(const struct ec2_client *c)
{
        return c->last_attempts;
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

int ec2_params_encode(const struct ec2_params *p, const char *action, char **ret, size_t *ret_len)
{
        _cleanup_free_ const struct ec2_param **sorted = NULL;
        struct buf b = {.max = EC2_MAX_BODY_SENT};
        size_t n = p ? p->n : 0;
        char *s;
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
        r = buf_printf(&b, "Action=%s&Version=%s", action, EC2_API_VERSION);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                r = buf_append(&b, "&", 1);
                if (r >= 0)
                        r = append_encoded(&b, sorted[i]->name);
                if (r >= 0)
                        r = buf_append(&b, "=", 1);
                if (r >= 0)
                        r = append_encoded(&b, sorted[i]->value);
        }
        if (r < 0) {
                buf_free(&b);
                return r;
        }
        s = buf_steal(&b, ret_len);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
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

/*
 * Turn one HTTP answer into a document or an AWS error. -EBADMSG with err->http_status when the
 * body is not what we expect; -EREMOTEIO with err filled for an AWS error.
 */
static int handle_response(const char *action, const struct http_response *resp, xmlDoc **ret_doc,
                           struct aws_error *err)
{
        _cleanup_(aws_error_done) struct aws_error e = {.http_status = resp->status};
        _cleanup_xml_doc_ xmlDoc *doc = NULL;
        xmlNode *root;
        char expect[96];
        int r;

        if (resp->status >= 200 && resp->status < 300) {
                r = xml_parse(resp->body, resp->body_len, &doc);
                root = r >= 0 ? xmlDocGetRootElement(doc) : NULL;
                snprintf(expect, sizeof(expect), "%sResponse", action);
                if (root && xml_is(root, expect)) {
                        *ret_doc = TAKE_PTR(doc);
                        return 0;
                }
                log_debug("EC2 %s: HTTP %ld with a body that is not a %s", action, resp->status,
                          expect);
                r = -EBADMSG;
        } else {
                r = ec2_parse_error(resp->body, resp->body_len, &e);
                e.http_status = resp->status;
                r = r < 0 ? -EBADMSG : -EREMOTEIO;
        }
        if (!e.request_id && resp->request_id) {
                e.request_id = strdup(resp->request_id);
                if (!e.request_id)
                        return -ENOMEM;
        }
        aws_error_move(err, &e);
        return r;
}

static char *header_new(const char *name, const char *value)
{
        char *h;

        if (asprintf(&h, "%s: %s", name, value) < 0)
                return NULL;
        return h;
}

/* One signed POST. */
static int attempt(struct ec2_client *c, const char *action, const char *body, size_t body_len,
                   unsigned timeout_ms, xmlDoc **ret_doc, struct aws_error *err)
{
        const struct aws_credentials *cr;
        struct sigv4_header sh[4];
        struct http_response resp = {};
        _cleanup_free_ char *h_host = NULL, *h_date = NULL, *h_type = NULL;
        _cleanup_secret_ char *authz = NULL, *h_token = NULL, *h_authz = NULL;
        const char *headers[6];
        char amz_date[17];
        size_t n = 0, nh = 0;
        usec_t now;
        int r;

        if (!c->creds)
                return -ENOKEY;
        r = creds_provider_get(c->creds, &cr);
        if (r < 0)
                return r;

        /* A fresh X-Amz-Date for every attempt: AWS rejects signatures older than 5 minutes. */
        now = c->clock ? c->clock(c->clock_userdata) : now_usec(CLOCK_REALTIME);
        format_amz_date(now, amz_date);
        sh[n++] = (struct sigv4_header){"Host", c->host};
        sh[n++] = (struct sigv4_header){"X-Amz-Date", amz_date};
        sh[n++] = (struct sigv4_header){"Content-Type", EC2_CONTENT_TYPE};
        if (cr->session_token)
                sh[n++] = (struct sigv4_header){"X-Amz-Security-Token", cr->session_token};
        r = sigv4_sign(&(struct sigv4_request){.method = "POST",
                                               .path = c->path,
                                               .query = "",
                                               .headers = sh,
                                               .n_headers = n,
                                               .payload = body,
                                               .payload_len = body_len},
                       cr, c->region, "ec2", amz_date, &authz);
        if (r < 0)
                return r;

        h_host = header_new("Host", c->host);
        h_date = header_new("X-Amz-Date", amz_date);
        h_type = header_new("Content-Type", EC2_CONTENT_TYPE);
        h_authz = header_new("Authorization", authz);
        if (cr->session_token)
                h_token = header_new("X-Amz-Security-Token", cr->session_token);
        if (!h_host || !h_date || !h_type || !h_authz || (cr->session_token && !h_token))
                return -ENOMEM;
        headers[nh++] = h_host;
        headers[nh++] = h_date;
        headers[nh++] = h_type;
        if (h_token)
                headers[nh++] = h_token;
        headers[nh++] = h_authz;
        headers[nh] = NULL;

        r = http_client_perform(c->http,
                                &(struct http_request){.method = "POST",
                                                       .url = c->endpoint,
                                                       .headers = headers,
                                                       .body = body,
                                                       .body_len = body_len,
                                                       .connect_timeout_ms = c->connect_timeout_ms,
                                                       .timeout_ms = timeout_ms,
                                                       .max_body = c->max_body,
                                                       /* the session token header */
                                                       .secret = h_token != NULL},
                                &resp);
        if (r < 0)
                return r;
        r = handle_response(action, &resp, ret_doc, err);
        http_response_done(&resp);
        return r;
}

static bool attempt_is_transient(int r, const struct aws_error *e)
{
        /*
         * A 2xx body we could not read is never retried: the call may have done its work, and
         * repeating a mutating call would do it twice. A non-XML 5xx (a load balancer's page)
         * is as transient as an XML one.
         */
        if (r == -EREMOTEIO || (r == -EBADMSG && e->http_status >= 300))
                return aws_error_is_transient(e->http_status, e->code);
        return http_error_is_transient(r);
}

int ec2_call(struct ec2_client *c, const char *action, struct ec2_params *params, xmlDoc **ret_doc,
             struct aws_error *err)
{
        _cleanup_(aws_error_done) struct aws_error last = {};
        _cleanup_free_ char *body = NULL;
        struct backoff b;
        size_t body_len;
        int r;

        c->last_attempts = 0;
        r = ec2_params_encode(params, action, &body, &body_len);
        if (r < 0)
                return r;
        backoff_init(&b, c->retry_base_ms * USEC_PER_MSEC, c->retry_cap_ms * USEC_PER_MSEC,
                     c->retry_deadline_ms * USEC_PER_MSEC, c->max_attempts);
        for (;;) {
                _cleanup_(aws_error_done) struct aws_error e = {};
                _cleanup_xml_doc_ xmlDoc *doc = NULL;
                usec_t now = now_usec(CLOCK_MONOTONIC);
                unsigned timeout_ms = c->timeout_ms;

                /* No attempt may run past the deadline of the whole call. */
                if (now >= b.deadline)
                        break;
                if ((b.deadline - now) / USEC_PER_MSEC < timeout_ms)
                        timeout_ms = (unsigned)((b.deadline - now) / USEC_PER_MSEC);
                if (timeout_ms == 0)
                        break;

                c->last_attempts++;
                r = attempt(c, action, body, body_len, timeout_ms, &doc, &e);
                if (r >= 0) {
                        if (ret_doc)
                                *ret_doc = TAKE_PTR(doc);
                        return 0;
                }
                if (!attempt_is_transient(r, &e)) {
                        if (e.http_status || e.code)
                                aws_error_move(err, &e);
                        return r;
                }
                log_debug_errno(r, "EC2 %s attempt %u failed (HTTP %ld, %s): %m", action,
                                c->last_attempts, e.http_status, strna(e.code));
                /* Keep the last answer AWS gave, even if a transport error came after it. */
                if (e.http_status || e.code)
                        aws_error_move(&last, &e);
                if (backoff_sleep(&b) < 0)
                        break;
        }
        log_debug("EC2 %s: giving up after %u attempts", action, c->last_attempts);
        aws_error_move(err, &last);
        return -ETIME;
}
