/* SPDX-License-Identifier: Apache-2.0 */
/*
 * AWS Signature Version 4 over OpenSSL's libcrypto, after the canonical request (sigv4.c): the
 * string to sign, the signing key derived from the secret, the Authorization header, and
 * sigv4_sign() running every stage. Each stage is a pure function of its inputs, so the unit test
 * can hold each one against AWS's own test suite (.sts, .authz).
 *
 * Nothing here logs: the signing key and the Authorization header are credentials in their own
 * right.
 */
#include "aws/sigv4.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "aws/credentials.h"
#include "aws/sigv4_internal.h"
#include "util/buf.h"
#include "util/macro.h"
#include "util/secret.h"

#define SIGV4_ALGORITHM  "AWS4-HMAC-SHA256"
#define SIGV4_TERMINATOR "aws4_request"
#define SHA256_LEN       32

static void hex_encode(const uint8_t *in, size_t n, char *out)
{
        static const char hex[] = "0123456789abcdef";

        for (size_t i = 0; i < n; i++) {
                out[2 * i] = hex[in[i] >> 4];
                out[2 * i + 1] = hex[in[i] & 15];
        }
        out[2 * n] = '\0';
}

static bool is_digits(const char *s, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (s[i] < '0' || s[i] > '9')
                        return false;
        return true;
}

/* "YYYYMMDDTHHMMSSZ"; only the shape is checked, the values are the caller's clock. */
static bool is_amz_date(const char *s)
{
        return s && strlen(s) == 16 && is_digits(s, 8) && s[8] == 'T' && is_digits(s + 9, 6) &&
               s[15] == 'Z';
}

/*
 * Region, service and access key id end up inside the '/'-separated credential scope and the
 * ", "-separated Authorization header, so anything that would shift those fields is refused.
 */
static bool is_scope_part(const char *s)
{
        if (!s || !*s)
                return false;
        for (; *s; s++)
                if ((unsigned char)*s <= ' ' || *s == '/' || *s == ',' || *s == 0x7f)
                        return false;
        return true;
}

int sigv4_sha256_hex(const void *data, size_t len, char out[static 65])
{
        uint8_t md[EVP_MAX_MD_SIZE];
        unsigned int md_len = 0;

        if (!data && len > 0)
                return -EINVAL;
        if (!EVP_Digest(data ? data : "", len, md, &md_len, EVP_sha256(), NULL) ||
            md_len != SHA256_LEN)
                return -EIO;
        hex_encode(md, SHA256_LEN, out);
        return 0;
}

/* One HMAC-SHA256 step, through a local so that out is written only on success. */
static int hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len,
                       uint8_t out[static SHA256_LEN])
{
        uint8_t md[EVP_MAX_MD_SIZE];
        unsigned int md_len = 0;

        if (key_len > INT_MAX)
                return -EINVAL;
        if (!HMAC(EVP_sha256(), key, (int)key_len, msg_len ? msg : (const void *)"", msg_len, md,
                  &md_len) ||
            md_len != SHA256_LEN) {
                secret_wipe(md, sizeof(md));
                return -EIO;
        }
        memcpy(out, md, SHA256_LEN);
        secret_wipe(md, sizeof(md));
        return 0;
}

int sigv4_string_to_sign(const char *amz_date, const char *scope, const char *creq, char **ret)
{
        _cleanup_buf_wipe_ struct buf sts = {};
        char creq_hash[65];
        int r;

        if (!is_amz_date(amz_date) || !scope || !*scope || strpbrk(scope, "\r\n") || !creq || !ret)
                return -EINVAL;
        r = sigv4_sha256_hex(creq, strlen(creq), creq_hash);
        if (r < 0)
                return r;
        r = buf_printf(&sts, SIGV4_ALGORITHM "\n%s\n%s\n%s", amz_date, scope, creq_hash);
        return buf_finish(&sts, r, ret, NULL);
}

/* The four links of the key chain, wiped together however the derivation ends. */
struct key_chain {
        uint8_t date[SHA256_LEN], region[SHA256_LEN], service[SHA256_LEN], signing[SHA256_LEN];
};

static void key_chain_wipe(struct key_chain *k)
{
        secret_wipe(k, sizeof(*k));
}

static void signing_key_wipe(uint8_t (*k)[SHA256_LEN])
{
        secret_wipe(*k, sizeof(*k));
}

int sigv4_signing_key(const char *secret, const char *date, const char *region, const char *service,
                      uint8_t out[static 32])
{
        _cleanup_buf_wipe_ struct buf k_secret = {};
        _cleanup_(key_chain_wipe) struct key_chain k = {};
        int r;

        if (!secret || !*secret || !date || strlen(date) != 8 || !is_digits(date, 8) ||
            !is_scope_part(region) || !is_scope_part(service))
                return -EINVAL;

        r = sigv4_sbuf_join(&k_secret, "AWS4", secret, NULL);
        if (r >= 0)
                r = hmac_sha256(k_secret.data, k_secret.len, date, 8, k.date);
        if (r >= 0)
                r = hmac_sha256(k.date, SHA256_LEN, region, strlen(region), k.region);
        if (r >= 0)
                r = hmac_sha256(k.region, SHA256_LEN, service, strlen(service), k.service);
        if (r >= 0)
                r = hmac_sha256(k.service, SHA256_LEN, SIGV4_TERMINATOR, strlen(SIGV4_TERMINATOR),
                                k.signing);
        if (r < 0)
                return r;
        memcpy(out, k.signing, SHA256_LEN);
        return 0;
}

int sigv4_authorization(const char *access_key_id, const char *scope, const char *signed_headers,
                        const uint8_t key[static 32], const char *sts, char **ret)
{
        _cleanup_buf_wipe_ struct buf authz = {};
        uint8_t sig[SHA256_LEN];
        char sig_hex[2 * SHA256_LEN + 1];
        int r;

        if (!is_scope_part(access_key_id) || !scope || !*scope || strpbrk(scope, " ,\r\n") ||
            !signed_headers || !*signed_headers || strpbrk(signed_headers, " ,\r\n") || !sts ||
            !ret)
                return -EINVAL;

        r = hmac_sha256(key, SHA256_LEN, sts, strlen(sts), sig);
        if (r < 0)
                return r;
        hex_encode(sig, SHA256_LEN, sig_hex);
        secret_wipe(sig, sizeof(sig));

        r = sigv4_sbuf_join(&authz, SIGV4_ALGORITHM " Credential=", access_key_id, "/", scope,
                            ", SignedHeaders=", signed_headers, ", Signature=", sig_hex, NULL);
        secret_wipe(sig_hex, sizeof(sig_hex));
        return buf_finish(&authz, r, ret, NULL);
}

int sigv4_sign(const struct sigv4_request *req, const struct aws_credentials *creds,
               const char *region, const char *service, const char *amz_date, char **ret_authz)
{
        _cleanup_secret_ char *creq = NULL, *sts = NULL;
        _cleanup_free_ char *signed_headers = NULL;
        _cleanup_(signing_key_wipe) uint8_t key[SHA256_LEN] = {};
        struct buf scope = {};
        char date[9];
        int r;

        if (!req || !creds || !creds->access_key_id || !creds->secret_access_key ||
            !is_scope_part(region) || !is_scope_part(service) || !is_amz_date(amz_date) ||
            !ret_authz)
                return -EINVAL;
        if (!req->headers || !sigv4_header_date_matches(req, amz_date))
                return -EINVAL;

        memcpy(date, amz_date, 8);
        date[8] = '\0';
        r = buf_printf(&scope, "%s/%s/%s/" SIGV4_TERMINATOR, date, region, service);
        if (r >= 0)
                r = sigv4_canonical_request(req, &creq, &signed_headers);
        if (r >= 0)
                r = sigv4_string_to_sign(amz_date, scope.data, creq, &sts);
        if (r >= 0)
                r = sigv4_signing_key(creds->secret_access_key, date, region, service, key);
        if (r >= 0)
                r = sigv4_authorization(creds->access_key_id, scope.data, signed_headers, key, sts,
                                        ret_authz);
        buf_free(&scope);
        return r;
}
