/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The transport shared by the AWS clients: endpoint parsing, SigV4 signing of each attempt and the
 * retry loop (error.c says which AWS errors are transient). The protocols (ec2.c, awsjson.c) only
 * encode bodies and read answers.
 */
#include "aws/signed_post.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/backoff.h"
#include "aws/budget.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/secret.h"
#include "aws/credentials.h"
#include "aws/http.h"
#include "aws/sigv4.h"
#include "aws/vocab.h"
#include "aws/creds_provider.h"

struct signed_post {
        char *region;
        char *service;
        char *endpoint; /* the URL we POST to */
        char *host;     /* Host header: host, plus ":port" when the port is not the default */
        char *path;     /* the URL's path, signed as the canonical URI */
        char *content_type;
        struct http_client *http;
        struct creds_provider *creds;
        unsigned connect_timeout_ms, timeout_ms, retry_deadline_ms, retry_base_ms, retry_cap_ms;
        unsigned max_attempts;
        size_t max_body;
        clock_fn clock;
        void *clock_userdata;
        /*
         * AWS's clock minus ours, learnt from the Date of an answer that refused our time, and
         * added to every later X-Amz-Date (as the AWS SDKs do).
         */
        int64_t skew_usec;
        unsigned last_attempts;
        struct aws_budget *budget; /* shared by the clients of a region; not owned */
        /* signed_post_limit_next(): apply to the next call only */
        bool next_once;
        unsigned next_deadline_ms;
};

/* Split the endpoint URL into the Host header and the path; reject what we could not sign. */
static int endpoint_parse(struct signed_post *sp)
{
        CURLU *u = curl_url();
        char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *query = NULL, *user = NULL,
             *frag = NULL;
        int r = -EINVAL;

        if (!u)
                return -ENOMEM;
        if (curl_url_set(u, CURLUPART_URL, sp->endpoint, 0) != CURLUE_OK)
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
                if (asprintf(&sp->host, "%s:%s", host, port) < 0) {
                        sp->host = NULL;
                        r = -ENOMEM;
                        goto out;
                }
        } else {
                sp->host = strdup(host);
        }
        sp->path = strdup(path && *path ? path : "/");
        r = sp->host && sp->path ? 0 : -ENOMEM;
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

int signed_post_new(const struct signed_post_config *cfg, struct creds_provider *creds,
                    struct signed_post **ret)
{
        struct signed_post *sp;
        int r;

        if (!cfg || !aws_region_valid(cfg->region) || !cfg->service || !cfg->endpoint ||
            !cfg->content_type)
                return -EINVAL;
        sp = calloc(1, sizeof(*sp));
        if (!sp)
                return -ENOMEM;
        sp->creds = creds;
        sp->connect_timeout_ms =
                cfg->transport.connect_timeout_ms ?: AWS_CONNECT_TIMEOUT_MS_DEFAULT;
        sp->timeout_ms = cfg->transport.timeout_ms ?: AWS_TIMEOUT_MS_DEFAULT;
        sp->retry_deadline_ms = cfg->transport.retry_deadline_ms ?: AWS_RETRY_DEADLINE_MS_DEFAULT;
        sp->retry_base_ms = cfg->transport.retry_base_ms ? cfg->transport.retry_base_ms : 200;
        sp->retry_cap_ms = cfg->transport.retry_cap_ms ? cfg->transport.retry_cap_ms : 20000;
        sp->max_attempts = cfg->transport.max_attempts ?: AWS_MAX_ATTEMPTS_DEFAULT;
        sp->max_body = cfg->transport.max_body ? cfg->transport.max_body : 8u * 1024u * 1024u;
        sp->clock = cfg->transport.clock;
        sp->clock_userdata = cfg->transport.clock_userdata;
        sp->region = strdup(cfg->region);
        sp->service = strdup(cfg->service);
        sp->endpoint = strdup(cfg->endpoint);
        sp->content_type = strdup(cfg->content_type);
        if (!sp->region || !sp->service || !sp->endpoint || !sp->content_type) {
                r = -ENOMEM;
                goto fail;
        }
        r = endpoint_parse(sp);
        if (r < 0) {
                log_debug("%s endpoint is not a usable http(s) URL without credentials or query",
                          cfg->service);
                goto fail;
        }
        r = http_client_new(false, &sp->http);
        if (r < 0)
                goto fail;
        *ret = sp;
        return 0;
fail:
        signed_post_free(sp);
        return r;
}

struct signed_post *signed_post_free(struct signed_post *sp)
{
        if (!sp)
                return NULL;
        http_client_free(sp->http);
        free(sp->region);
        free(sp->service);
        free(sp->endpoint);
        free(sp->host);
        free(sp->path);
        free(sp->content_type);
        free(sp);
        return NULL;
}

const char *signed_post_endpoint(const struct signed_post *sp)
{
        return sp->endpoint;
}

const char *signed_post_region(const struct signed_post *sp)
{
        return sp->region;
}

unsigned signed_post_last_attempts(const struct signed_post *sp)
{
        return sp->last_attempts;
}

/* What an attempt tells the retry loop beyond its result. */
struct attempt_info {
        usec_t our_time;    /* our clock when the answer came, without skew_usec */
        usec_t server_time; /* the answer's Date header; 0 when none */
        bool role_creds;    /* signed with role credentials (which a new fetch may replace) */
};

static usec_t clock_now(const struct signed_post *sp)
{
        return sp->clock ? sp->clock(sp->clock_userdata) : now_usec(CLOCK_REALTIME);
}

/* Host, X-Amz-Date, Content-Type, X-Amz-Target, X-Amz-Security-Token: all signed when sent. */
#define MAX_SIGNED_HEADERS 5

/* One attempt's headers as curl takes them ("Name: value"), Authorization last, NULL-terminated. */
struct wire_headers {
        char *line[MAX_SIGNED_HEADERS + 2];
};

/* The lines hold the session token and the Authorization header: wiped, whatever they hold. */
static void wire_headers_done(struct wire_headers *w)
{
        for (size_t i = 0; i < ELEMENTSOF(w->line); i++)
                w->line[i] = secret_free(w->line[i]);
}

/*
 * Sign one attempt and write its headers. A fresh X-Amz-Date for every attempt: AWS rejects
 * signatures older than 5 minutes. On AWS's clock, as far as an earlier answer told us how far
 * ours is off.
 */
static int sign_attempt(struct signed_post *sp, const struct aws_credentials *cr,
                        const char *target, const char *body, size_t body_len,
                        struct wire_headers *w)
{
        struct sigv4_header sh[MAX_SIGNED_HEADERS];
        _cleanup_secret_ char *authz = NULL;
        char amz_date[17];
        size_t n = 0;
        int r;

        format_amz_date((usec_t)((int64_t)clock_now(sp) + sp->skew_usec), amz_date);
        sh[n++] = (struct sigv4_header){"Host", sp->host};
        sh[n++] = (struct sigv4_header){"X-Amz-Date", amz_date};
        sh[n++] = (struct sigv4_header){"Content-Type", sp->content_type};
        if (target)
                sh[n++] = (struct sigv4_header){"X-Amz-Target", target};
        if (cr->session_token)
                sh[n++] = (struct sigv4_header){"X-Amz-Security-Token", cr->session_token};
        r = sigv4_sign(&(struct sigv4_request){.method = "POST",
                                               .path = sp->path,
                                               .query = "",
                                               .headers = sh,
                                               .n_headers = n,
                                               .payload = body,
                                               .payload_len = body_len},
                       cr, sp->region, sp->service, amz_date, &authz);
        /* The headers just signed go on the wire as they are, in the same order. */
        for (size_t i = 0; r >= 0 && i <= n; i++)
                if (asprintf(&w->line[i], "%s: %s", i < n ? sh[i].name : "Authorization",
                             i < n ? sh[i].value : authz) < 0) {
                        w->line[i] = NULL;
                        r = -ENOMEM;
                }
        return r;
}

/* One signed POST; its answer goes to answer(). */
static int attempt(struct signed_post *sp, const char *target, const char *body, size_t body_len,
                   unsigned timeout_ms, signed_post_answer_fn answer, void *userdata,
                   struct aws_error *err, struct attempt_info *info)
{
        _cleanup_(wire_headers_done) struct wire_headers w = {};
        const struct aws_credentials *cr;
        struct http_response resp = {};
        int r;

        if (!sp->creds)
                return -ENOKEY;
        r = creds_provider_get(sp->creds, &cr);
        if (r < 0)
                return r;
        info->role_creds = cr->role_name != NULL;
        r = sign_attempt(sp, cr, target, body, body_len, &w);
        if (r < 0)
                return r;
        r = http_client_perform(sp->http,
                                &(struct http_request){.method = "POST",
                                                       .url = sp->endpoint,
                                                       .headers = (const char *const *)w.line,
                                                       .body = body,
                                                       .body_len = body_len,
                                                       .connect_timeout_ms = sp->connect_timeout_ms,
                                                       .timeout_ms = timeout_ms,
                                                       .max_body = sp->max_body,
                                                       /* the session token header */
                                                       .secret = cr->session_token != NULL},
                                &resp);
        if (r < 0)
                return r;
        info->our_time = clock_now(sp);
        info->server_time = resp.date;
        r = answer(&resp, userdata, err);
        if (r < 0 && !err->request_id && resp.request_id) {
                err->request_id = strdup(resp.request_id);
                if (!err->request_id)
                        r = -ENOMEM;
        }
        http_response_done(&resp);
        return r;
}

/*
 * For a call that must not run twice: only failures that prove the request was not acted on are
 * retried (refused or unroutable connections, throttling). Everything else may have reached AWS
 * and is left to the caller, who can look the result up.
 */
static bool attempt_is_safe_to_repeat(int r, const struct aws_error *e)
{
        if (r == -EREMOTEIO || (r == -EBADMSG && e->http_status >= 300))
                return aws_error_is_throttling(e->code);
        return r == -ECONNREFUSED || r == -EHOSTUNREACH;
}

void signed_post_set_budget(struct signed_post *sp, struct aws_budget *b)
{
        sp->budget = b;
}

void signed_post_limit_next(struct signed_post *sp, bool once, unsigned deadline_ms)
{
        sp->next_once = once;
        sp->next_deadline_ms = deadline_ms;
}

/* AWS accepts signatures within 5 minutes of its time; the SDKs correct beyond 4. */
#define SKEW_TOLERANCE_USEC ((int64_t)4 * 60 * (int64_t)USEC_PER_SEC)

struct auth_retries {
        bool clock, credentials; /* each is tried once per call */
};

/*
 * After an authentication failure, which means AWS did nothing with the request (so even a call
 * that must not run twice may be sent again): when AWS refused our time and its Date says our
 * clock is off, sign with AWS's time from now on; when it refused role credentials, drop them so
 * that the next attempt fetches fresh ones. Returns true when one more attempt is worth it, at
 * once; each remedy is tried once per call.
 */
static bool fix_authentication(struct signed_post *sp, const struct attempt_info *a,
                               const struct aws_error *e, struct auth_retries *tried)
{
        if (!e->code)
                return false;
        if (!tried->clock && aws_error_is_clock(e->code) && a->server_time != 0) {
                int64_t offset = (int64_t)a->server_time - (int64_t)a->our_time;
                int64_t change = offset - sp->skew_usec;

                if (change > SKEW_TOLERANCE_USEC || change < -SKEW_TOLERANCE_USEC) {
                        log_debug("%s: %s; AWS's clock is %+" PRId64 " s from ours: signing with "
                                  "its time",
                                  sp->service, e->code, offset / (int64_t)USEC_PER_SEC);
                        sp->skew_usec = offset;
                        tried->clock = true;
                        return true;
                }
        }
        if (!tried->credentials && aws_error_is_stale_credentials(e->code) && a->role_creds) {
                log_debug("%s: %s; fetching the role credentials again", sp->service, e->code);
                creds_provider_invalidate(sp->creds);
                tried->credentials = true;
                return true;
        }
        return false;
}

static bool attempt_is_transient(int r, const struct aws_error *e)
{
        /*
         * A 2xx body we could not read is never retried: the call may have done its work, and
         * repeating a mutating call would do it twice. A non-protocol 5xx (a load balancer's
         * page) is as transient as a proper one.
         */
        if (r == -EREMOTEIO || (r == -EBADMSG && e->http_status >= 300))
                return aws_error_is_transient(e->http_status, e->code);
        return http_error_is_transient(r);
}

int signed_post_call(struct signed_post *sp, const char *what, const char *target, const char *body,
                     size_t body_len, signed_post_answer_fn answer, void *userdata,
                     struct aws_error *err)
{
        _cleanup_(aws_error_done) struct aws_error last = {};
        struct auth_retries tried = {};
        struct backoff b;
        int r;

        bool once = sp->next_once;
        unsigned deadline_ms = sp->next_deadline_ms && sp->next_deadline_ms < sp->retry_deadline_ms
                                       ? sp->next_deadline_ms
                                       : sp->retry_deadline_ms;

        sp->next_once = false;
        sp->next_deadline_ms = 0;
        sp->last_attempts = 0;
        backoff_init(&b, sp->retry_base_ms * USEC_PER_MSEC, sp->retry_cap_ms * USEC_PER_MSEC,
                     deadline_ms * USEC_PER_MSEC, sp->max_attempts);
        for (;;) {
                _cleanup_(aws_error_done) struct aws_error e = {};
                usec_t now = now_usec(CLOCK_MONOTONIC);
                unsigned timeout_ms = sp->timeout_ms;
                struct attempt_info info = {};

                /* No attempt may run past the deadline of the whole call. */
                if (now >= b.deadline)
                        break;
                if ((b.deadline - now) / USEC_PER_MSEC < timeout_ms)
                        timeout_ms = (unsigned)((b.deadline - now) / USEC_PER_MSEC);
                if (timeout_ms == 0)
                        break;

                if (sp->budget)
                        aws_budget_acquire(sp->budget);
                sp->last_attempts++;
                r = attempt(sp, target, body, body_len, timeout_ms, answer, userdata, &e, &info);
                if (r >= 0) {
                        if (sp->budget)
                                aws_budget_success(sp->budget);
                        return 0;
                }
                if (r == -EREMOTEIO && fix_authentication(sp, &info, &e, &tried)) {
                        aws_error_move(&last, &e);
                        continue;
                }
                if (!attempt_is_transient(r, &e) || (once && !attempt_is_safe_to_repeat(r, &e))) {
                        if (e.http_status || e.code)
                                aws_error_move(err, &e);
                        return r;
                }
                log_debug_errno(r, "%s %s attempt %u failed (HTTP %ld, %s): %m", sp->service, what,
                                sp->last_attempts, e.http_status, strna(e.code));
                /* The region's retry quota is spent: fail now rather than add to the storm. */
                if (sp->budget &&
                    !aws_budget_take_retry(sp->budget, aws_error_is_throttling(e.code))) {
                        log_debug("%s %s: the region's retry quota is spent", sp->service, what);
                        if (e.http_status || e.code)
                                aws_error_move(err, &e);
                        return r;
                }
                /* Keep the last answer AWS gave, even if a transport error came after it. */
                if (e.http_status || e.code)
                        aws_error_move(&last, &e);
                if (backoff_sleep(&b) < 0)
                        break;
        }
        log_debug("%s %s: giving up after %u attempts", sp->service, what, sp->last_attempts);
        aws_error_move(err, &last);
        return -ETIME;
}
