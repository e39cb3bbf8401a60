/* SPDX-License-Identifier: Apache-2.0 */
/*
 * AWS Signature Version 4, the canonical request: the URI, the query and the headers in AWS's
 * canonical form, each a pure function of its input so that the unit test can hold it against
 * AWS's own test suite (.creq). The hashes, the signing key and the signature are sigv4_sign.c's.
 *
 * Nothing here logs: the canonical request can carry the session token.
 */
#include "aws/sigv4.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "aws/http.h"
#include "aws/sigv4_internal.h"
#include "util/buf.h"
#include "util/macro.h"
#include "util/secret.h"

/*
 * These buffers can hold the session token or the secret key: they grow in buf's secret mode,
 * which never leaves a copy of the old block behind in freed memory.
 */
static int sbuf_append(struct buf *b, const void *p, size_t n)
{
        b->secret = true;
        return buf_append(b, p, n);
}

static int sbuf_puts(struct buf *b, const char *s)
{
        return sbuf_append(b, s, strlen(s));
}

int sigv4_sbuf_join(struct buf *b, ...)
{
        const char *s;
        va_list ap;
        int r = 0;

        va_start(ap, b);
        while (r >= 0 && (s = va_arg(ap, const char *)))
                r = sbuf_puts(b, s);
        va_end(ap);
        return r;
}

/* The whitespace that canonical header values fold: blanks, and the line breaks of folded lines. */
static bool is_lws(char c)
{
        return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* RFC 9110 token characters: what a header name or method may consist of. */
static bool is_token(const char *s)
{
        if (!s || !*s)
                return false;
        for (; *s; s++) {
                char c = *s;
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      strchr("!#$%&'*+-.^_`|~", c)))
                        return false;
        }
        return true;
}

static char ascii_lower(char c)
{
        return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static int ascii_casecmp(const char *a, const char *b)
{
        for (;; a++, b++) {
                unsigned char x = (unsigned char)ascii_lower(*a),
                              y = (unsigned char)ascii_lower(*b);
                if (x != y || !x)
                        return x - y;
        }
}

struct span {
        const char *p;
        size_t len;
};

/*
 * Canonical URI: dot segments removed and empty segments (duplicate slashes) dropped, the way
 * botocore's remove_dot_segments() does it, then every segment URI-encoded once. The path is
 * taken as it goes on the wire, so an already percent-encoded path ("/a%20b") comes out encoded a
 * second time ("/a%2520b"), which is what AWS asks of every service but S3; the test suite's raw
 * paths ("/example space/") come out encoded once.
 */
static int append_canonical_uri(struct buf *b, const char *path)
{
        _cleanup_free_ struct span *segs = NULL;
        size_t n_segs = 0, max_segs = 1, path_len;
        int r;

        if (!path || !*path)
                return sbuf_puts(b, "/");
        if (path[0] != '/')
                return -EINVAL;

        path_len = strlen(path);
        for (const char *p = path; *p; p++)
                max_segs += *p == '/';
        segs = calloc(max_segs, sizeof(*segs));
        if (!segs)
                return -ENOMEM;

        for (const char *p = path; *p;) {
                const char *end = strchrnul(p, '/');
                size_t len = (size_t)(end - p);

                if (len == 2 && p[0] == '.' && p[1] == '.') {
                        if (n_segs > 0)
                                n_segs--;
                } else if (len > 0 && !(len == 1 && p[0] == '.')) {
                        segs[n_segs++] = (struct span){p, len};
                }
                p = *end ? end + 1 : end;
        }

        r = sbuf_puts(b, "/");
        for (size_t i = 0; r >= 0 && i < n_segs; i++) {
                _cleanup_free_ char *enc = aws_uri_encode(segs[i].p, segs[i].len, false);

                if (!enc)
                        return -ENOMEM;
                if (i > 0)
                        r = sbuf_puts(b, "/");
                if (r >= 0)
                        r = sbuf_puts(b, enc);
        }
        /* A trailing slash names a different resource; keep it unless nothing is left. */
        if (r >= 0 && n_segs > 0 && path[path_len - 1] == '/')
                r = sbuf_puts(b, "/");
        return r;
}

static int hex_value(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/*
 * Percent-decode s[0..len) and encode it again with AWS's rules, so that "%E1%88%B4", raw UTF-8 and
 * "%e1%88%b4" all end up as the same canonical "%E1%88%B4". '+' is taken literally (RFC 3986), not
 * as a space: our callers encode spaces as %20. A broken escape is refused rather than guessed at,
 * because the service would read it in its own way and the signature would not match.
 */
static int query_reencode(const char *s, size_t len, char **ret)
{
        _cleanup_free_ char *dec = malloc(len + 1);
        size_t n = 0;
        char *enc;

        if (!dec)
                return -ENOMEM;
        for (size_t i = 0; i < len; i++) {
                if (s[i] == '%') {
                        int hi, lo;

                        if (len - i < 3)
                                return -EINVAL;
                        hi = hex_value(s[i + 1]);
                        lo = hex_value(s[i + 2]);
                        if (hi < 0 || lo < 0)
                                return -EINVAL;
                        dec[n++] = (char)(hi << 4 | lo);
                        i += 2;
                } else {
                        dec[n++] = s[i];
                }
        }
        enc = aws_uri_encode(dec, n, false);
        secret_wipe(dec, n);
        if (!enc)
                return -ENOMEM;
        *ret = enc;
        return 0;
}

struct query_param {
        char *key; /* canonical (re-encoded) */
        char *value;
};

static int query_param_cmp(const void *a, const void *b)
{
        const struct query_param *x = a, *y = b;
        int c = strcmp(x->key, y->key);

        return c ? c : strcmp(x->value, y->value);
}

struct query_params {
        struct query_param *v;
        size_t n;
};

static void query_params_done(struct query_params *q)
{
        for (size_t i = 0; i < q->n; i++) {
                secret_free(q->v[i].key);
                secret_free(q->v[i].value);
        }
        free(q->v);
}

/*
 * Canonical query: split on '&', each pair on its first '=' (a key without '=' gets an empty
 * value), both halves re-encoded, sorted by key and then by value. Empty pairs ("a=1&&b=2") carry
 * nothing and are skipped.
 */
static int append_canonical_query(struct buf *b, const char *query)
{
        _cleanup_(query_params_done) struct query_params q = {};
        size_t max = 1;
        int r = 0;

        if (!query || !*query)
                return 0;
        for (const char *p = query; *p; p++)
                max += *p == '&';
        q.v = calloc(max, sizeof(*q.v));
        if (!q.v)
                return -ENOMEM;

        for (const char *p = query; *p;) {
                const char *end = strchrnul(p, '&');
                const char *eq = memchr(p, '=', (size_t)(end - p));
                const char *kend = eq ? eq : end;
                const char *v = eq ? eq + 1 : end;
                struct query_param *qp = &q.v[q.n];

                if (end > p) {
                        r = query_reencode(p, (size_t)(kend - p), &qp->key);
                        if (r < 0)
                                return r;
                        r = query_reencode(v, (size_t)(end - v), &qp->value);
                        if (r < 0) {
                                qp->key = secret_free(qp->key);
                                return r;
                        }
                        q.n++;
                }
                p = *end ? end + 1 : end;
        }

        qsort(q.v, q.n, sizeof(*q.v), query_param_cmp);
        for (size_t i = 0; r >= 0 && i < q.n; i++)
                r = sigv4_sbuf_join(b, i > 0 ? "&" : "", q.v[i].key, "=", q.v[i].value, NULL);
        return r;
}

/*
 * Append a header value trimmed at both ends with every inner run of whitespace folded to one
 * space, which also joins the lines of an obs-folded (multi-line) value: the words of the value,
 * one space apart.
 */
static int append_trimmed(struct buf *b, const char *v)
{
        bool first = true;
        int r = 0;

        for (const char *p = v; r >= 0 && *p;) {
                const char *start;

                if (is_lws(*p)) {
                        p++;
                        continue;
                }
                start = p;
                while (*p && !is_lws(*p))
                        p++;
                if (!first)
                        r = sbuf_puts(b, " ");
                if (r >= 0)
                        r = sbuf_append(b, start, (size_t)(p - start));
                first = false;
        }
        return r;
}

struct header_ref {
        const struct sigv4_header *h;
        size_t idx;
};

/* By lowercased name; headers of the same name keep the order they were given in. */
static int header_ref_cmp(const void *a, const void *b)
{
        const struct header_ref *x = a, *y = b;
        int c = ascii_casecmp(x->h->name, y->h->name);

        if (c)
                return c;
        return (x->idx > y->idx) - (x->idx < y->idx);
}

static int append_lower(struct buf *b, const char *s)
{
        int r = 0;

        for (; r >= 0 && *s; s++) {
                char c = ascii_lower(*s);
                r = sbuf_append(b, &c, 1);
        }
        return r;
}

/*
 * Canonical headers ("name:v1,v2\n" per distinct lowercased name, sorted) into b, and the signed
 * headers list ("host;x-amz-date") into sh. Host and X-Amz-Date must be among them; Authorization
 * must not, since signing a stale one (say on a retry) yields a request no service accepts.
 */
static int append_canonical_headers(struct buf *b, struct buf *sh,
                                    const struct sigv4_header *headers, size_t n_headers)
{
        _cleanup_free_ struct header_ref *refs = NULL;
        bool have_host = false, have_date = false;
        int r = 0;

        if (n_headers == 0 || !headers)
                return -EINVAL;
        refs = calloc(n_headers, sizeof(*refs));
        if (!refs)
                return -ENOMEM;
        for (size_t i = 0; i < n_headers; i++) {
                if (!is_token(headers[i].name) || !headers[i].value)
                        return -EINVAL;
                if (ascii_casecmp(headers[i].name, "authorization") == 0)
                        return -EINVAL;
                have_host = have_host || ascii_casecmp(headers[i].name, "host") == 0;
                have_date = have_date || ascii_casecmp(headers[i].name, "x-amz-date") == 0;
                refs[i] = (struct header_ref){&headers[i], i};
        }
        if (!have_host || !have_date)
                return -EINVAL;

        qsort(refs, n_headers, sizeof(*refs), header_ref_cmp);
        for (size_t i = 0; r >= 0 && i < n_headers; i++) {
                bool first = i == 0 || ascii_casecmp(refs[i - 1].h->name, refs[i].h->name) != 0;
                bool last = i + 1 == n_headers ||
                            ascii_casecmp(refs[i + 1].h->name, refs[i].h->name) != 0;

                if (first) {
                        r = sbuf_puts(sh, sh->len > 0 ? ";" : "");
                        if (r >= 0)
                                r = append_lower(sh, refs[i].h->name);
                        if (r >= 0)
                                r = append_lower(b, refs[i].h->name);
                }
                if (r >= 0)
                        r = sbuf_puts(b, first ? ":" : ",");
                if (r >= 0)
                        r = append_trimmed(b, refs[i].h->value);
                if (r >= 0 && last)
                        r = sbuf_puts(b, "\n");
        }
        return r;
}

int sigv4_canonical_request(const struct sigv4_request *req, char **ret_creq,
                            char **ret_signed_headers)
{
        _cleanup_buf_wipe_ struct buf creq = {}, uri = {}, query = {}, headers = {}, sh = {};
        char payload_hash[65];
        char *c, *s;
        int r;

        if (!req || !ret_creq || !ret_signed_headers || !is_token(req->method))
                return -EINVAL;

        r = sigv4_sha256_hex(req->payload, req->payload_len, payload_hash);
        if (r < 0)
                return r;

        r = append_canonical_uri(&uri, req->path);
        if (r >= 0)
                r = append_canonical_query(&query, req->query);
        if (r >= 0)
                r = append_canonical_headers(&headers, &sh, req->headers, req->n_headers);
        /* The header block ends in its own "\n", hence the blank line before the signed list. */
        if (r >= 0)
                r = sigv4_sbuf_join(&creq, req->method, "\n", strempty(uri.data), "\n",
                                    strempty(query.data), "\n", strempty(headers.data), "\n",
                                    strempty(sh.data), "\n", payload_hash, NULL);
        if (r < 0)
                return r;

        c = buf_steal(&creq, NULL);
        s = buf_steal(&sh, NULL);
        if (!c || !s) {
                secret_free(c);
                free(s);
                return -ENOMEM;
        }
        *ret_creq = c;
        *ret_signed_headers = s;
        return 0;
}

bool sigv4_header_date_matches(const struct sigv4_request *req, const char *amz_date)
{
        const char *found = NULL;
        size_t len;

        for (size_t i = 0; i < req->n_headers; i++) {
                if (!req->headers[i].name || ascii_casecmp(req->headers[i].name, "x-amz-date") != 0)
                        continue;
                if (found || !req->headers[i].value)
                        return false; /* two would be signed as "a,b" */
                found = req->headers[i].value;
        }
        if (!found)
                return false;
        while (is_lws(*found))
                found++;
        len = strlen(found);
        while (len > 0 && is_lws(found[len - 1]))
                len--;
        return len == strlen(amz_date) && memcmp(found, amz_date, len) == 0;
}
