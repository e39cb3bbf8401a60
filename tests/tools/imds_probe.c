/* SPDX-License-Identifier: Apache-2.0 */
/*
 * imds_probe: drive the IMDS client and the credentials provider against a test IMDS server, one
 * operation after another in a single process (so the token cache and the credential cache carry
 * over), printing one JSON line per operation. Used by tests/integration/test_imds_client.py.
 *
 *   imds_probe --endpoint URL [--ttl S] [--timeout-ms N] [--connect-timeout-ms N]
 *              [--retry-deadline-ms N] [--max-body N] [--allow-imdsv1] [--debug] OP...
 *
 * OPs: get PATH | instance-id | region | az | identity | role | creds | user-data | sleep MS |
 *      provider-creds | advance S (move the provider's clock S seconds ahead) | invalidate |
 *      pause (print {"op":"pause"} and wait for a line on stdin)
 *
 * Never prints a secret key, session token or IMDS token: for credentials it prints the access
 * key id, expiration, source and a short SHA-256 prefix of the session token, enough for tests
 * to tell rotations apart. The endpoint must be loopback; anything else is refused.
 */
#include <cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "aws/credentials.h"
#include "aws/imds.h"
#include "aws/creds_provider.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/parse.h"
#include "util/secret.h"

struct probe {
        struct imds *imds;
        struct creds_provider *provider;
        usec_t clock_offset; /* added to CLOCK_REALTIME for the provider */
};

static usec_t probe_clock(void *userdata)
{
        const struct probe *p = userdata;

        return now_usec(CLOCK_REALTIME) + p->clock_offset;
}

static void emit(cJSON *o)
{
        char *s = cJSON_PrintUnformatted(o);

        if (!s) {
                fprintf(stderr, "imds_probe: out of memory\n");
                exit(1);
        }
        printf("%s\n", s);
        fflush(stdout);
        free(s);
        cJSON_Delete(o);
}

static cJSON *result(const char *op, int r)
{
        cJSON *o = cJSON_CreateObject();

        cJSON_AddStringToObject(o, "op", op);
        cJSON_AddBoolToObject(o, "ok", r >= 0);
        if (r < 0) {
                cJSON_AddNumberToObject(o, "errno", -r);
                cJSON_AddStringToObject(o, "error", strerror(-r));
        }
        return o;
}

/* The first 12 hex digits of SHA-256: tells values apart without revealing them. */
static void sha256_prefix(const void *data, size_t len, char out[13])
{
        static const char hex[] = "0123456789abcdef";
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned mdlen = 0;

        if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen < 6) {
                snprintf(out, 13, "error");
                return;
        }
        for (unsigned i = 0; i < 6; i++) {
                out[2 * i] = hex[md[i] >> 4];
                out[2 * i + 1] = hex[md[i] & 15];
        }
        out[12] = '\0';
}

static void add_credentials(cJSON *o, const struct aws_credentials *c)
{
        char when[21], digest[13];

        cJSON_AddStringToObject(o, "access_key_id", c->access_key_id);
        if (c->expiration) {
                format_iso8601(c->expiration, when);
                cJSON_AddStringToObject(o, "expiration", when);
        } else {
                cJSON_AddNullToObject(o, "expiration");
        }
        cJSON_AddStringToObject(o, "source", strempty(c->source));
        if (c->role_name)
                cJSON_AddStringToObject(o, "role", c->role_name);
        if (c->session_token) {
                sha256_prefix(c->session_token, strlen(c->session_token), digest);
                cJSON_AddStringToObject(o, "token_sha256", digest);
        } else {
                cJSON_AddNullToObject(o, "token_sha256");
        }
}

static bool printable_text(const char *s, size_t len)
{
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char)s[i];
                if (c >= 0x80 || (c < ' ' && c != '\n' && c != '\r' && c != '\t'))
                        return false;
        }
        return true;
}

/* Bodies: length and digest always; the text itself when it is short ASCII and not a secret. */
static void add_body(cJSON *o, const char *body, size_t len, bool secret)
{
        char digest[13];

        cJSON_AddNumberToObject(o, "len", (double)len);
        sha256_prefix(body, len, digest);
        cJSON_AddStringToObject(o, "sha256", digest);
        if (!secret && len <= 4096 && printable_text(body, len))
                cJSON_AddStringToObject(o, "body", body);
}

static bool path_is_secret(const char *path)
{
        const char *p = strstr(path, "security-credentials/");

        /* The listing names the role; below it are the keys. The token path issues a token. */
        return (p && p[strlen("security-credentials/")] != '\0') || strstr(path, "/api/token");
}

static void op_string(const char *op, int (*fn)(struct imds *, char **), struct imds *m,
                      const char *key)
{
        char *v = NULL;
        int r = fn(m, &v);
        cJSON *o = result(op, r);

        if (r >= 0)
                cJSON_AddStringToObject(o, key, v);
        free(v);
        emit(o);
}

static int run_op(struct probe *p, char **argv, int argc, int i)
{
        const char *op = argv[i];
        cJSON *o;
        int r;

        if (streq(op, "get") || streq(op, "sleep") || streq(op, "advance")) {
                if (i + 1 >= argc) {
                        fprintf(stderr, "imds_probe: %s needs an argument\n", op);
                        exit(2);
                }
        }
        if (streq(op, "get")) {
                const char *path = argv[i + 1];
                char *body = NULL;
                size_t len = 0;

                r = imds_get(p->imds, path, &body, &len);
                o = result(op, r);
                cJSON_AddStringToObject(o, "path", path);
                if (r >= 0) {
                        add_body(o, body, len, path_is_secret(path));
                        if (path_is_secret(path))
                                secret_wipe(body, len);
                }
                free(body);
                emit(o);
                return 2;
        }
        if (streq(op, "sleep") || streq(op, "advance")) {
                uint64_t n;

                if (safe_atou64(argv[i + 1], &n) < 0) {
                        fprintf(stderr, "imds_probe: bad number for %s: %s\n", op, argv[i + 1]);
                        exit(2);
                }
                if (streq(op, "sleep")) {
                        struct timespec ts = {.tv_sec = (time_t)(n / 1000),
                                              .tv_nsec = (long)(n % 1000) * 1000000L};
                        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                                ;
                } else {
                        p->clock_offset += n * USEC_PER_SEC;
                }
                o = result(op, 0);
                cJSON_AddNumberToObject(o, streq(op, "sleep") ? "ms" : "s", (double)n);
                emit(o);
                return 2;
        }
        if (streq(op, "instance-id")) {
                op_string(op, imds_instance_id, p->imds, "instance_id");
        } else if (streq(op, "region")) {
                op_string(op, imds_region, p->imds, "region");
        } else if (streq(op, "az")) {
                op_string(op, imds_availability_zone, p->imds, "availability_zone");
        } else if (streq(op, "role")) {
                op_string(op, imds_role_name, p->imds, "role");
        } else if (streq(op, "identity")) {
                struct imds_identity id = {};

                r = imds_identity(p->imds, &id);
                o = result(op, r);
                if (r >= 0) {
                        cJSON_AddStringToObject(o, "instance_id", id.instance_id);
                        cJSON_AddStringToObject(o, "region", id.region);
                        cJSON_AddStringToObject(o, "availability_zone", id.availability_zone);
                        cJSON_AddStringToObject(o, "account_id", id.account_id);
                        cJSON_AddStringToObject(o, "architecture", id.architecture);
                        cJSON_AddStringToObject(o, "image_id", id.image_id);
                        cJSON_AddStringToObject(o, "instance_type", id.instance_type);
                }
                imds_identity_done(&id);
                emit(o);
        } else if (streq(op, "creds")) {
                struct aws_credentials c = {};

                r = imds_role_credentials(p->imds, &c);
                o = result(op, r);
                if (r >= 0)
                        add_credentials(o, &c);
                aws_credentials_done(&c);
                emit(o);
        } else if (streq(op, "provider-creds")) {
                const struct aws_credentials *c = NULL;

                r = creds_provider_get(p->provider, &c);
                o = result(op, r);
                if (r >= 0)
                        add_credentials(o, c);
                emit(o);
        } else if (streq(op, "pause")) {
                /*
                 * Lets a test change the server between two operations without racing us: we
                 * report the pause, then wait for a line (or EOF) on stdin.
                 */
                char line[64];

                emit(result(op, 0));
                if (!fgets(line, sizeof(line), stdin) && ferror(stdin))
                        fprintf(stderr, "imds_probe: reading stdin: %s\n", strerror(errno));
        } else if (streq(op, "invalidate")) {
                creds_provider_invalidate(p->provider);
                emit(result(op, 0));
        } else if (streq(op, "user-data")) {
                char *body = NULL;
                size_t len = 0;

                r = imds_user_data(p->imds, &body, &len);
                o = result(op, r);
                if (r >= 0)
                        add_body(o, body, len, false);
                free(body);
                emit(o);
        } else {
                fprintf(stderr, "imds_probe: unknown operation '%s'\n", op);
                exit(2);
        }
        return 1;
}

/* Test tool, test traffic: the resolved endpoint must be on this machine. */
static bool endpoint_is_loopback(const char *url)
{
        static const char *const hosts[] = {"127.", "localhost:", "localhost/", "[::1]"};
        const char *h = strstr(url, "://");

        if (!h)
                return false;
        h += 3;
        if (streq(h, "localhost"))
                return true;
        for (size_t i = 0; i < ELEMENTSOF(hosts); i++)
                if (strncasecmp(h, hosts[i], strlen(hosts[i])) == 0)
                        return true;
        return false;
}

static unsigned parse_unsigned_or_die(const char *opt, const char *s)
{
        unsigned v;

        if (safe_atou(s, &v) < 0) {
                fprintf(stderr, "imds_probe: bad number for --%s: %s\n", opt, s);
                exit(2);
        }
        return v;
}

int main(int argc, char **argv)
{
        static const struct option options[] = {
                {"endpoint", required_argument, NULL, 'e'},
                {"ttl", required_argument, NULL, 't'},
                {"timeout-ms", required_argument, NULL, 'T'},
                {"connect-timeout-ms", required_argument, NULL, 'c'},
                {"retry-deadline-ms", required_argument, NULL, 'r'},
                {"max-body", required_argument, NULL, 'm'},
                {"allow-imdsv1", no_argument, NULL, '1'},
                {"debug", no_argument, NULL, 'd'},
                {},
        };
        struct imds_config cfg = {};
        struct probe p = {};
        cJSON *o;
        int c, r;

        while ((c = getopt_long(argc, argv, "+", options, NULL)) >= 0) {
                switch (c) {
                case 'e':
                        cfg.endpoint = optarg;
                        break;
                case 't':
                        cfg.token_ttl_s = parse_unsigned_or_die("ttl", optarg);
                        break;
                case 'T':
                        cfg.timeout_ms = parse_unsigned_or_die("timeout-ms", optarg);
                        break;
                case 'c':
                        cfg.connect_timeout_ms =
                                parse_unsigned_or_die("connect-timeout-ms", optarg);
                        break;
                case 'r':
                        cfg.retry_deadline_ms = parse_unsigned_or_die("retry-deadline-ms", optarg);
                        break;
                case 'm':
                        cfg.max_body = parse_unsigned_or_die("max-body", optarg);
                        break;
                case '1':
                        cfg.allow_imdsv1 = true;
                        break;
                case 'd':
                        log_set_max_level(LOG_DEBUG);
                        break;
                default:
                        fprintf(stderr, "usage: imds_probe --endpoint URL [options] OP...\n");
                        return 2;
                }
        }
        log_set_target(LOG_TARGET_STDERR);
        if (!cfg.endpoint) {
                fprintf(stderr, "imds_probe: --endpoint is required\n");
                return 2;
        }
        r = imds_new(&cfg, &p.imds);
        if (r < 0) {
                fprintf(stderr, "imds_probe: imds_new: %s\n", strerror(-r));
                return 2;
        }
        /* AWS_EC2_METADATA_SERVICE_ENDPOINT wins over --endpoint, as in the agent: check both. */
        if (!endpoint_is_loopback(imds_endpoint(p.imds))) {
                fprintf(stderr, "imds_probe: refusing non-loopback endpoint %s\n",
                        imds_endpoint(p.imds));
                imds_free(p.imds);
                return 2;
        }
        r = creds_provider_new(p.imds, probe_clock, &p, &p.provider);
        if (r < 0) {
                imds_free(p.imds);
                return 2;
        }
        for (int i = optind; i < argc;)
                i += run_op(&p, argv, argc, i);

        o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "token_fetches", imds_token_fetches(p.imds));
        cJSON_AddNumberToObject(o, "requests", imds_requests(p.imds));
        emit(o);
        creds_provider_free(p.provider);
        imds_free(p.imds);
        return 0;
}
