/* SPDX-License-Identifier: Apache-2.0 */
/* libcurl wrapper. The handle is reused so that TCP and TLS connections are kept warm. */
#include "aws/http.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/buf.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/secret.h"

struct http_client {
        CURL *curl;
        bool no_proxy;
};

struct transfer {
        struct buf body;
        bool too_big;
        char *request_id;
        usec_t date;
        const char *upload; /* the request body, handed to curl by on_read() */
        size_t upload_len, upload_pos;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_status;

static void global_init(void)
{
        global_status = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int http_client_new(bool no_proxy, struct http_client **ret)
{
        struct http_client *c;

        pthread_once(&global_once, global_init);
        if (global_status != CURLE_OK)
                return -EIO;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->curl = curl_easy_init();
        if (!c->curl) {
                free(c);
                return -ENOMEM;
        }
        c->no_proxy = no_proxy;
        *ret = c;
        return 0;
}

struct http_client *http_client_free(struct http_client *c)
{
        if (!c)
                return NULL;
        curl_easy_cleanup(c->curl);
        free(c);
        return NULL;
}

static size_t on_body(char *p, size_t size, size_t n, void *userdata)
{
        struct transfer *t = userdata;
        size_t len = size * n;

        if (buf_append(&t->body, p, len) < 0) {
                t->too_big = true;
                return 0; /* makes curl fail with CURLE_WRITE_ERROR */
        }
        return len;
}

/* "Date: Sun, 06 Dec 2026 12:00:00 GMT": what the server's clock said, for clock-skew checks. */
static void header_date(const char *p, size_t len, struct transfer *t)
{
        char v[64];
        time_t when;

        if (len <= 5 || strncasecmp(p, "date:", 5) != 0 || len - 5 >= sizeof(v))
                return;
        memcpy(v, p + 5, len - 5);
        v[len - 5] = '\0';
        v[strcspn(v, "\r\n")] = '\0';
        when = curl_getdate(v + strspn(v, " \t"), NULL);
        if (when > 0)
                t->date = (usec_t)when * USEC_PER_SEC;
}

static size_t on_header(char *p, size_t size, size_t n, void *userdata)
{
        struct transfer *t = userdata;
        size_t len = size * n;
        static const char *const names[] = {"x-amzn-requestid:", "x-amz-request-id:"};

        header_date(p, len, t);

        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                size_t nl = strlen(names[i]);
                if (len > nl && strncasecmp(p, names[i], nl) == 0 && !t->request_id) {
                        const char *v = p + nl;
                        size_t vl = len - nl;
                        while (vl > 0 && (*v == ' ' || *v == '\t'))
                                v++, vl--;
                        while (vl > 0 &&
                               (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
                                vl--;
                        t->request_id = strndup(v, vl);
                }
        }
        return len;
}

static size_t on_read(char *p, size_t size, size_t n, void *userdata)
{
        struct transfer *t = userdata;
        size_t len = size * n, left = t->upload_len - t->upload_pos;

        if (len > left)
                len = left;

        memcpy(p, t->upload + t->upload_pos, len);
        t->upload_pos += len;
        return len;
}

/*
 * When a reused connection dies after the whole request went out and before any byte of the
 * answer came back, libcurl sends the request again on a fresh connection on its own (lib/
 * transfer.c, Curl_retry_request), and to do so rewinds the body it has sent. For an AWS call
 * that may have acted (CreateImage makes an image; EC2 answers the second one with
 * InvalidAMIName.Duplicate at best), that silent second request is refused here: the rewind fails,
 * curl reports CURLE_SEND_FAIL_REWIND, and the caller's own retry rules decide, once.
 */
static int on_seek(_unused_ void *userdata, _unused_ curl_off_t offset, _unused_ int origin)
{
        return CURL_SEEKFUNC_CANTSEEK;
}

static int map_curl_error(CURLcode cc, const struct transfer *t)
{
        switch (cc) {
        case CURLE_OK:
                return 0;
        case CURLE_WRITE_ERROR:
                return t->too_big ? -EFBIG : -EIO;
        case CURLE_COULDNT_CONNECT:
                return -ECONNREFUSED;
        case CURLE_OPERATION_TIMEDOUT:
                return -ETIMEDOUT;
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
                return -EHOSTUNREACH;
        case CURLE_GOT_NOTHING:
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
        case CURLE_PARTIAL_FILE:
        case CURLE_SEND_FAIL_REWIND: /* sent, connection lost, not sent again (on_seek) */
                return -ECONNRESET;
        case CURLE_OUT_OF_MEMORY:
                return -ENOMEM;
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CIPHER:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_URL_MALFORMAT:
        case CURLE_WEIRD_SERVER_REPLY:
                return -EPROTO;
        default:
                return -EIO;
        }
}

int http_client_perform(struct http_client *c, const struct http_request *req,
                        struct http_response *ret)
{
        struct transfer t = {
                .body = {.max = req->max_body ? req->max_body : BUF_DEFAULT_MAX,
                         .secret = req->secret},
        };
        struct curl_slist *headers = NULL, *tmp;
        CURL *h = c->curl;
        CURLcode cc;
        long status = 0;
        int r;

        curl_easy_reset(h);
        for (const char *const *p = req->headers; p && *p; p++) {
                tmp = curl_slist_append(headers, *p);
                if (!tmp) {
                        curl_slist_free_all(headers);
                        return -ENOMEM;
                }
                headers = tmp;
        }
        /* curl adds "Expect: 100-continue" to larger POSTs; AWS does not need the extra trip. */
        tmp = curl_slist_append(headers, "Expect:");
        if (tmp)
                headers = tmp;

        curl_easy_setopt(h, CURLOPT_URL, req->url);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                         req->connect_timeout_ms ? req->connect_timeout_ms : 2000L);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, req->timeout_ms ? req->timeout_ms : 10000L);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, &t);
        curl_easy_setopt(h, CURLOPT_USERAGENT, "ec2-imaged/" EC2_IMAGED_VERSION);
        if (c->no_proxy)
                curl_easy_setopt(h, CURLOPT_PROXY, "");
        if (req->body_len > 0) {
                /* Through on_read and on_seek, so that curl never sends it twice by itself. */
                t.upload = req->body;
                t.upload_len = req->body_len;
                curl_easy_setopt(h, CURLOPT_POST, 1L);
                curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
                curl_easy_setopt(h, CURLOPT_READDATA, &t);
                curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
                curl_easy_setopt(h, CURLOPT_SEEKDATA, &t);
                curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        } else if (req->body || streq(req->method, "POST") || streq(req->method, "PUT")) {
                curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
                curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
        }

        cc = curl_easy_perform(h);
        if (req->secret)
                for (struct curl_slist *l = headers; l; l = l->next)
                        secret_wipe(l->data, strlen(l->data));
        curl_slist_free_all(headers);
        r = map_curl_error(cc, &t);
        if (r < 0) {
                log_debug("HTTP %s %s failed: %s", req->method, req->url, curl_easy_strerror(cc));
                buf_free(&t.body);
                free(t.request_id);
                return r;
        }
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        *ret = (struct http_response){.status = status, .request_id = t.request_id, .date = t.date};
        ret->body = buf_steal(&t.body, &ret->body_len);
        if (!ret->body) {
                free(t.request_id);
                return -ENOMEM;
        }
        return 0;
}

void http_response_done(struct http_response *r)
{
        free(r->body);
        free(r->request_id);
        *r = (struct http_response){};
}

bool http_error_is_transient(int r)
{
        return r == -ECONNREFUSED || r == -ETIMEDOUT || r == -ECONNRESET || r == -EHOSTUNREACH ||
               r == -EIO;
}

char *aws_uri_encode(const char *s, size_t len, bool keep_slash)
{
        static const char hex[] = "0123456789ABCDEF";
        char *out = malloc(len * 3 + 1), *o = out;

        if (!out)
                return NULL;
        for (size_t i = 0; i < len; i++) {
                unsigned char ch = (unsigned char)s[i];
                if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                    (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.' || ch == '~' ||
                    (keep_slash && ch == '/')) {
                        *o++ = (char)ch;
                } else {
                        *o++ = '%';
                        *o++ = hex[ch >> 4];
                        *o++ = hex[ch & 15];
                }
        }
        *o = '\0';
        return out;
}
