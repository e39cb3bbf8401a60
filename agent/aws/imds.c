/* SPDX-License-Identifier: Apache-2.0 */
/*
 * IMDSv2 client. One session token is cached and reused until shortly before it expires; every
 * GET carries it. Calls retry transport failures and 5xx answers with full-jitter backoff under
 * one deadline, and every response body has a ceiling. The token, the credential documents and
 * the headers that carry the token are secrets: wiped when released, never logged.
 */
#include "aws/imds.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aws/credentials.h"
#include "aws/http.h"
#include "aws/vocab.h"
#include "util/backoff.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/secret.h"
#include "util/str.h"
#include "util/timeutil.h"

#define IMDS_IPV4_ENDPOINT    "http://169.254.169.254"
#define IMDS_IPV6_ENDPOINT    "http://[fd00:ec2::254]"
#define IMDS_TOKEN_PATH       "/latest/api/token"
#define IMDS_DEFAULT_MAX_BODY (64u * 1024u)
/* Real tokens are about 56 characters; anything near this ceiling is not a token. */
#define IMDS_TOKEN_MAX_BODY    4096u
#define IMDS_BACKOFF_BASE_USEC (100 * USEC_PER_MSEC)
#define IMDS_BACKOFF_CAP_USEC  (2 * USEC_PER_SEC)

struct imds {
        struct http_client *http;
        char *endpoint;
        char *token;        /* secret */
        usec_t token_until; /* CLOCK_MONOTONIC time after which we fetch a new one */
        unsigned token_ttl_s;
        unsigned connect_timeout_ms;
        unsigned timeout_ms;
        unsigned retry_deadline_ms;
        size_t max_body;
        bool allow_imdsv1;
        bool disabled;
        unsigned token_fetches;
        unsigned requests;
};

/* ---- endpoint and configuration ---- */

static int endpoint_normalize(const char *url, char **ret)
{
        size_t n = strlen(url), scheme;
        char *s;

        if (strncasecmp(url, "http://", 7) == 0)
                scheme = 7;
        else if (strncasecmp(url, "https://", 8) == 0)
                scheme = 8;
        else
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (!aws_visible_char(url[i]))
                        return -EINVAL;
        /* We append paths that start with '/', so "http://host/" would give "//latest/...". */
        while (n > scheme && url[n - 1] == '/')
                n--;
        if (n == scheme || url[scheme] == '/')
                return -EINVAL;
        s = strndup(url, n);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static int endpoint_resolve(const struct imds_config *cfg, char **ret)
{
        const char *url, *mode;

        url = aws_setting("AWS_EC2_METADATA_SERVICE_ENDPOINT", cfg->endpoint);
        if (url)
                return endpoint_normalize(url, ret);

        /* Unlike the URL, a configured mode is taken as written: an empty one is a mistake. */
        mode = getenv_nonempty("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
        if (!mode)
                mode = cfg->endpoint_mode;
        if (!mode || strcasecmp(mode, "IPv4") == 0)
                url = IMDS_IPV4_ENDPOINT;
        else if (strcasecmp(mode, "IPv6") == 0)
                url = IMDS_IPV6_ENDPOINT;
        else
                return log_debug_errno(-EINVAL, "Unknown IMDS endpoint mode '%s'", mode);
        return endpoint_normalize(url, ret);
}

static bool disabled_by_env(void)
{
        const char *v = getenv("AWS_EC2_METADATA_DISABLED");

        /* The SDKs accept exactly "true" in any case; anything else leaves IMDS enabled. */
        return v && strcasecmp(v, "true") == 0;
}

int imds_new(const struct imds_config *cfg, struct imds **ret)
{
        static const struct imds_config defaults = {};
        _cleanup_free_ char *endpoint = NULL;
        struct imds *m;
        int r;

        if (!cfg)
                cfg = &defaults;
        if (cfg->token_ttl_s > IMDS_MAX_TTL_S)
                return -EINVAL;
        r = endpoint_resolve(cfg, &endpoint);
        if (r < 0)
                return r;
        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        *m = (struct imds){
                .endpoint = TAKE_PTR(endpoint),
                .token_ttl_s = cfg->token_ttl_s ? cfg->token_ttl_s : IMDS_MAX_TTL_S,
                .connect_timeout_ms = cfg->connect_timeout_ms ?: IMDS_CONNECT_TIMEOUT_MS_DEFAULT,
                .timeout_ms = cfg->timeout_ms ?: IMDS_TIMEOUT_MS_DEFAULT,
                .retry_deadline_ms = cfg->retry_deadline_ms ?: IMDS_RETRY_DEADLINE_MS_DEFAULT,
                .max_body = cfg->max_body ? cfg->max_body : IMDS_DEFAULT_MAX_BODY,
                .allow_imdsv1 = cfg->allow_imdsv1,
                .disabled = cfg->disabled || disabled_by_env(),
        };
        /* IMDS is link-local: a proxy could not reach it, and must never see the token. */
        r = http_client_new(true, &m->http);
        if (r < 0) {
                imds_free(m);
                return r;
        }
        *ret = m;
        return 0;
}

struct imds *imds_free(struct imds *m)
{
        if (!m)
                return NULL;
        http_client_free(m->http);
        secret_free(m->token);
        free(m->endpoint);
        free(m);
        return NULL;
}

const char *imds_endpoint(const struct imds *m)
{
        return m->endpoint;
}

unsigned imds_token_fetches(const struct imds *m)
{
        return m->token_fetches;
}

unsigned imds_requests(const struct imds *m)
{
        return m->requests;
}

/* ---- requests ---- */

/* Release a response whose body may hold a secret (a token or a credential document). */
static void response_wipe(struct http_response *resp)
{
        secret_wipe(resp->body, resp->body_len);
        http_response_done(resp);
}

static bool status_is_transient(long status)
{
        /* IMDS answers 503 when busy and 429 when it throttles; both clear up on their own. */
        return status >= 500 || status == 429;
}

static int status_to_errno(long status)
{
        switch (status) {
        case 400:
                return -EINVAL;
        case 401:
        case 403:
                return -EACCES;
        case 404:
                return -ENOENT;
        case 405:
                return -EOPNOTSUPP;
        default:
                return -EPROTO;
        }
}

/*
 * Send one request, its timeouts cut to what is left of the call's deadline so that a call never
 * runs much past retry_deadline_ms however the attempts go.
 */
static int send_request(struct imds *m, const struct backoff *b, const char *method,
                        const char *path, const char *const *headers, size_t max_body,
                        struct http_response *ret)
{
        _cleanup_free_ char *url = NULL;
        usec_t now = now_usec(CLOCK_MONOTONIC);
        long left_ms, timeout_ms, connect_ms;

        if (now >= b->deadline)
                return -ETIME;
        left_ms = (long)((b->deadline - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC);
        timeout_ms = left_ms < (long)m->timeout_ms ? left_ms : (long)m->timeout_ms;
        connect_ms =
                timeout_ms < (long)m->connect_timeout_ms ? timeout_ms : (long)m->connect_timeout_ms;
        if (asprintf(&url, "%s%s", m->endpoint, path) < 0)
                return -ENOMEM;
        m->requests++;
        return http_client_perform(m->http,
                                   &(struct http_request){
                                           .method = method,
                                           .url = url,
                                           .headers = headers,
                                           .connect_timeout_ms = connect_ms,
                                           .timeout_ms = timeout_ms,
                                           .max_body = max_body,
                                           .secret = true,
                                   },
                                   ret);
}

/*
 * Obtain a new session token. On success the token is cached; on an HTTP refusal
 * *ret_status tells which, so the caller can decide whether IMDSv1 is a fallback.
 */
static int token_fetch(struct imds *m, struct backoff *b, long *ret_status)
{
        char ttl_header[64];
        const char *const headers[] = {ttl_header, NULL};
        int r;

        snprintf(ttl_header, sizeof(ttl_header), "X-aws-ec2-metadata-token-ttl-seconds: %u",
                 m->token_ttl_s);
        *ret_status = 0;
        for (;;) {
                struct http_response resp = {};
                /*
                 * The token's lifetime starts at the server somewhere between sending and the
                 * answer; counting from before the send keeps us on the safe side.
                 */
                usec_t sent = now_usec(CLOCK_MONOTONIC), margin;
                char *token;

                r = send_request(m, b, "PUT", IMDS_TOKEN_PATH, headers, IMDS_TOKEN_MAX_BODY, &resp);
                if (r < 0) {
                        if (!http_error_is_transient(r))
                                return log_debug_errno(r, "IMDS token request failed: %m");
                        log_debug_errno(r, "IMDS token request failed, retrying: %m");
                } else if (resp.status == 200) {
                        if (resp.body_len == 0 || strlen(resp.body) != resp.body_len ||
                            !string_matches(resp.body, 1, IMDS_TOKEN_MAX_BODY, aws_visible_char)) {
                                response_wipe(&resp);
                                return log_debug_errno(-EBADMSG, "IMDS sent a malformed token");
                        }
                        token = TAKE_PTR(resp.body);
                        response_wipe(&resp);
                        secret_free(m->token);
                        m->token = token;
                        margin = m->token_ttl_s * USEC_PER_SEC / 4;
                        if (margin > 60 * USEC_PER_SEC)
                                margin = 60 * USEC_PER_SEC;
                        m->token_until = sent + m->token_ttl_s * USEC_PER_SEC - margin;
                        m->token_fetches++;
                        return 0;
                } else if (!status_is_transient(resp.status)) {
                        *ret_status = resp.status;
                        response_wipe(&resp);
                        /* A 404 here means no token API at all, not a missing resource. */
                        r = *ret_status == 404 ? -EOPNOTSUPP : status_to_errno(*ret_status);
                        return log_debug_errno(r, "IMDS refused a token: HTTP %ld", *ret_status);
                } else {
                        log_debug("IMDS token request got HTTP %ld, retrying", resp.status);
                        response_wipe(&resp);
                }
                if (backoff_sleep(b) < 0)
                        return log_debug_errno(-ETIME, "IMDS token: out of retries");
        }
}

static void token_drop(struct imds *m)
{
        m->token = secret_free(m->token);
        m->token_until = 0;
}

/*
 * Make sure a valid token is cached, or (only with allow_imdsv1, and only when the token PUT
 * says the service does not do tokens) report that this request goes out without one.
 */
static int token_ensure(struct imds *m, struct backoff *b, bool *ret_tokenless)
{
        long status;
        int r;

        *ret_tokenless = false;
        if (m->token && now_usec(CLOCK_MONOTONIC) < m->token_until)
                return 0;
        token_drop(m);
        r = token_fetch(m, b, &status);
        if (r >= 0)
                return 0;
        if (m->allow_imdsv1 && (status == 403 || status == 404 || status == 405)) {
                log_debug("IMDS does not issue tokens (HTTP %ld), falling back to IMDSv1", status);
                *ret_tokenless = true;
                return 0;
        }
        return r;
}

static bool path_is_valid(const char *path)
{
        return path && path[0] == '/' && string_matches(path, 1, 1024, aws_visible_char);
}

/* GET with the cached token: retries, one token refresh on 401, a ceiling of max_body. */
static int imds_fetch(struct imds *m, const char *path, size_t max_body, char **ret_body,
                      size_t *ret_len)
{
        struct backoff b;
        bool refreshed = false;
        int r;

        if (m->disabled)
                return -ENODEV;
        if (!path_is_valid(path))
                return -EINVAL;
        backoff_init(&b, IMDS_BACKOFF_BASE_USEC, IMDS_BACKOFF_CAP_USEC,
                     m->retry_deadline_ms * USEC_PER_MSEC, 0);
        for (;;) {
                _cleanup_secret_ char *token_header = NULL;
                const char *headers[] = {NULL, NULL};
                struct http_response resp = {};
                bool tokenless;

                r = token_ensure(m, &b, &tokenless);
                if (r < 0)
                        return r;
                if (!tokenless) {
                        if (asprintf(&token_header, "X-aws-ec2-metadata-token: %s", m->token) < 0)
                                return -ENOMEM;
                        headers[0] = token_header;
                }
                r = send_request(m, &b, "GET", path, headers, max_body, &resp);
                if (r < 0) {
                        if (!http_error_is_transient(r))
                                return log_debug_errno(r, "IMDS GET %s failed: %m", path);
                        log_debug_errno(r, "IMDS GET %s failed, retrying: %m", path);
                } else if (resp.status == 200) {
                        *ret_body = TAKE_PTR(resp.body);
                        if (ret_len)
                                *ret_len = resp.body_len;
                        http_response_done(&resp);
                        return 0;
                } else if (resp.status == 401 && !tokenless && !refreshed) {
                        /*
                         * The token expired early or IMDS restarted and forgot it. Fetch a
                         * new one, once: a second 401 is not something a token can cure.
                         */
                        log_debug("IMDS GET %s: token rejected, fetching a new one", path);
                        http_response_done(&resp);
                        token_drop(m);
                        refreshed = true;
                        continue;
                } else if (!status_is_transient(resp.status)) {
                        long status = resp.status;

                        http_response_done(&resp);
                        return log_debug_errno(status_to_errno(status), "IMDS GET %s: HTTP %ld",
                                               path, status);
                } else {
                        log_debug("IMDS GET %s: HTTP %ld, retrying", path, resp.status);
                        http_response_done(&resp);
                }
                if (backoff_sleep(&b) < 0)
                        return log_debug_errno(-ETIME, "IMDS GET %s: out of retries", path);
        }
}

int imds_get(struct imds *m, const char *path, char **ret_body, size_t *ret_len)
{
        return imds_fetch(m, path, m->max_body, ret_body, ret_len);
}

/* GET a single-line text value, trimmed of trailing whitespace, and check its shape. */
static int get_value(struct imds *m, const char *path, bool (*valid)(const char *), char **ret)
{
        _cleanup_free_ char *body = NULL;
        size_t len;
        int r;

        r = imds_fetch(m, path, m->max_body, &body, &len);
        if (r < 0)
                return r;
        if (strlen(body) != len)
                return -EBADMSG;
        while (len > 0 && (body[len - 1] == '\n' || body[len - 1] == '\r' || body[len - 1] == ' '))
                body[--len] = '\0';
        if (!valid(body))
                return log_debug_errno(-EBADMSG, "IMDS %s: unexpected value", path);
        *ret = TAKE_PTR(body);
        return 0;
}

int imds_instance_id(struct imds *m, char **ret)
{
        return get_value(m, "/latest/meta-data/instance-id", aws_instance_id_valid, ret);
}

int imds_region(struct imds *m, char **ret)
{
        return get_value(m, "/latest/meta-data/placement/region", aws_region_valid, ret);
}

int imds_availability_zone(struct imds *m, char **ret)
{
        return get_value(m, "/latest/meta-data/placement/availability-zone", aws_zone_valid, ret);
}

int imds_identity(struct imds *m, struct imds_identity *ret)
{
        _cleanup_free_ char *body = NULL;
        size_t len;
        int r;

        r = imds_fetch(m, "/latest/dynamic/instance-identity/document", m->max_body, &body, &len);
        if (r < 0)
                return r;
        return imds_parse_identity(body, len, ret);
}

int imds_role_name(struct imds *m, char **ret)
{
        _cleanup_free_ char *body = NULL;
        size_t len;
        char *name;
        int r;

        r = imds_fetch(m, "/latest/meta-data/iam/security-credentials/", m->max_body, &body, &len);
        if (r < 0)
                return r;
        if (strlen(body) != len)
                return -EBADMSG;
        /* The listing has one role per line; an instance profile holds exactly one role. */
        name = body;
        name[strcspn(name, "\r\n")] = '\0';
        if (name[0] == '\0')
                return -ENOENT;
        if (!aws_role_name_valid(name))
                return log_debug_errno(-EBADMSG, "IMDS sent a malformed role name");
        *ret = TAKE_PTR(body);
        return 0;
}

int imds_role_credentials(struct imds *m, struct aws_credentials *ret)
{
        _cleanup_free_ char *role = NULL, *path = NULL;
        struct http_response resp = {};
        int r;

        r = imds_role_name(m, &role);
        if (r < 0)
                return r;
        if (asprintf(&path, "/latest/meta-data/iam/security-credentials/%s", role) < 0)
                return -ENOMEM;
        r = imds_fetch(m, path, m->max_body, &resp.body, &resp.body_len);
        if (r < 0)
                return r;
        r = imds_parse_credentials(resp.body, resp.body_len, role, ret);
        response_wipe(&resp);
        return r;
}

int imds_user_data(struct imds *m, char **ret, size_t *ret_len)
{
        return imds_fetch(m, "/latest/user-data", m->max_body, ret, ret_len);
}
