/* SPDX-License-Identifier: Apache-2.0 */
/*
 * creds_probe: the credentials chain with the shared files attached (aws/creds_profile.h) and
 * the STS client (aws/sts.h) against moto, one JSON object per run. Used by
 * tests/integration/test_sts_profile.py.
 *
 *   creds_probe --endpoint URL --region R [--profile NAME] CALL ARGS...
 *
 * CALLs: whoami
 *            the chain's credentials (environment, then the shared files; no IMDS), then
 *            GetCallerIdentity signed with them
 *        assume-role ROLE_ARN SESSION [EXTERNAL_ID|-] [DURATION|-] [KMS_KEY]
 *            AssumeRole signed with the chain's credentials; then GetCallerIdentity and, with
 *            KMS_KEY, DescribeKey, both signed with the role's credentials
 *
 * Prints the credentials' source, access key id (no secret), role name, whether there is a
 * session token, the expiry, and what the calls answered; never a secret key or token. The
 * effective endpoints must be loopback, else nothing is sent. Exit status: 0 when every call
 * succeeded, 1 when one failed, 2 for a usage error.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/awsjson.h"
#include "aws/creds_profile.h"
#include "aws/creds_provider.h"
#include "aws/credentials.h"
#include "aws/sts.h"
#include "util/log.h"
#include "util/macro.h"

#include "probe.h"

struct probe {
        const char *endpoint, *region, *profile;
        struct aws_transport transport;
        cJSON *out;
        struct aws_error err;
};

/* What may be shown of a set of credentials: never the secret key or the token. */
static void add_credentials(cJSON *o, const struct aws_credentials *c)
{
        char exp[21] = "";

        if (c->expiration)
                format_iso8601(c->expiration, exp);
        add_str(o, "source", c->source);
        add_str(o, "access_key_id", c->access_key_id);
        add_str(o, "role_name", c->role_name);
        cJSON_AddBoolToObject(o, "session_token", c->session_token != NULL);
        add_str(o, "expiration", *exp ? exp : NULL);
}

static int sts_open(struct probe *p, struct creds_provider *creds, struct sts_client **ret)
{
        struct sts_client_config cfg = {
                .region = p->region, .endpoint_url = p->endpoint, .transport = p->transport};

        if (sts_client_new(&cfg, creds, ret) < 0)
                usage("cannot make the STS client");
        if (!loopback(sts_client_endpoint(*ret)))
                usage("refusing a non-loopback endpoint");
        return 0;
}

/* GetCallerIdentity signed by creds, into out's object name. */
static int identity(struct probe *p, struct creds_provider *creds, const char *name)
{
        struct sts_client *sts = NULL;
        struct sts_identity id = {};
        cJSON *o = cJSON_AddObjectToObject(p->out, name);
        int r;

        sts_open(p, creds, &sts);
        r = sts_get_caller_identity(sts, &id, &p->err);
        add_str(o, "account", id.account);
        add_str(o, "arn", id.arn);
        sts_identity_done(&id);
        sts_client_free(sts);
        return r;
}

static int describe_key(struct probe *p, struct creds_provider *creds, const char *key)
{
        struct awsjson_client *kms = NULL;
        struct kms_key k = {};
        cJSON *o = cJSON_AddObjectToObject(p->out, "key");
        int r;

        if (awsjson_client_new(&(struct awsjson_client_config){.service = AWSJSON_KMS,
                                                               .region = p->region,
                                                               .endpoint_url = p->endpoint,
                                                               .transport = p->transport},
                               creds, &kms) < 0)
                usage("cannot make the KMS client");
        if (!loopback(awsjson_client_endpoint(kms)))
                usage("refusing a non-loopback endpoint");
        r = kms_describe_key(kms, key, &k, &p->err);
        add_str(o, "arn", k.arn);
        kms_key_done(&k);
        awsjson_client_free(kms);
        return r;
}

static int assume_role(struct probe *p, struct creds_provider *chain, char **a, int n)
{
        struct aws_credentials c = {};
        struct creds_provider *role = NULL;
        struct sts_client *sts = NULL;
        const char *duration = opt_arg(a, n, 3);
        int r;

        if (n < 2)
                usage("assume-role ROLE_ARN SESSION [EXTERNAL_ID|-] [DURATION|-] [KMS_KEY]");
        sts_open(p, chain, &sts);
        r = sts_assume_role(
                sts,
                &(struct sts_assume_role_args){
                        .role_arn = a[0],
                        .session_name = a[1],
                        .external_id = opt_arg(a, n, 2),
                        .duration_s = duration ? (unsigned)strtoul(duration, NULL, 10) : 0},
                &c, &p->err);
        sts_client_free(sts);
        if (r < 0)
                return r;
        add_credentials(cJSON_AddObjectToObject(p->out, "credentials"), &c);
        r = creds_provider_new_static(&c, &role);
        aws_credentials_done(&c);
        if (r < 0)
                return r;
        r = identity(p, role, "identity");
        if (r >= 0 && opt_arg(a, n, 4))
                r = describe_key(p, role, a[4]);
        creds_provider_free(role);
        return r;
}

static int whoami(struct probe *p, struct creds_provider *chain)
{
        const struct aws_credentials *c;
        int r = creds_provider_get(chain, &c);

        if (r < 0)
                return r;
        add_credentials(cJSON_AddObjectToObject(p->out, "credentials"), c);
        return identity(p, chain, "identity");
}

static void parse_options(struct probe *p, int argc, char **argv)
{
        static const struct option opts[] = {
                {"endpoint", required_argument, NULL, 'e'},
                {"region", required_argument, NULL, 'r'},
                {"profile", required_argument, NULL, 'p'},
                {},
        };
        int opt;

        while ((opt = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
                if (opt == 'e')
                        p->endpoint = optarg;
                else if (opt == 'r')
                        p->region = optarg;
                else if (opt == 'p')
                        p->profile = optarg;
                else
                        usage("bad option");
        }
        if (optind >= argc || !p->region)
                usage("--region and a call are required");
}

int main(int argc, char **argv)
{
        struct probe p = {.transport = {.retry_base_ms = 20, .retry_cap_ms = 200}};
        struct creds_provider *chain = NULL;
        const char *call;
        int r;

        log_set_target(LOG_TARGET_STDERR);
        log_set_max_level(LOG_WARNING);
        parse_options(&p, argc, argv);
        call = argv[optind];
        if (creds_provider_new(NULL, NULL, NULL, &chain) < 0 ||
            creds_profile_attach(chain, &(struct creds_profile_config){.profile = p.profile,
                                                                       .region = p.region,
                                                                       .endpoint_url = p.endpoint,
                                                                       .transport = p.transport}) <
                    0)
                usage("cannot make the credentials chain");
        p.out = cJSON_CreateObject();
        cJSON_AddStringToObject(p.out, "call", call);
        if (streq(call, "whoami"))
                r = whoami(&p, chain);
        else if (streq(call, "assume-role"))
                r = assume_role(&p, chain, argv + optind + 1, argc - optind - 1);
        else
                usage("unknown call");
        creds_provider_free(chain);
        return probe_print(p.out, r, &p.err);
}
