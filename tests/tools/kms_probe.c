/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kms_probe: the KMS grant and key policy calls (aws/kms.h) against moto, one JSON object per
 * call. Used by tests/integration/test_kms_client.py.
 *
 *   kms_probe --endpoint URL --region R CALL ARGS...
 *
 * CALLs: list-grants KEY [GRANTEE]
 *        revoke-grant KEY GRANT_ID
 *        retire-grant KEY GRANT_ID
 *        get-policy KEY
 *        put-policy KEY POLICY_JSON
 *
 * Credentials come from the environment through the credentials provider; they are never
 * printed. The effective endpoint must be loopback, else nothing is sent. Exit status: 0 when
 * the call succeeded, 1 when it failed, 2 for a usage error.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/creds_provider.h"
#include "aws/kms.h"
#include "util/log.h"
#include "util/macro.h"

#include "probe.h"

static cJSON *grant_json(const struct kms_grant *g)
{
        cJSON *o = cJSON_CreateObject(), *ops = cJSON_AddArrayToObject(o, "operations");

        cJSON_AddStringToObject(o, "grant_id", g->grant_id);
        cJSON_AddStringToObject(o, "key_id", g->key_id);
        cJSON_AddStringToObject(o, "grantee_principal", g->grantee_principal);
        if (g->name)
                cJSON_AddStringToObject(o, "name", g->name);
        for (char **s = g->operations; s && *s; s++)
                cJSON_AddItemToArray(ops, cJSON_CreateString(*s));
        return o;
}

static int run(struct awsjson_client *c, const char *call, char **a, int n, cJSON *out,
               struct aws_error *err)
{
        if (streq(call, "list-grants") && (n == 1 || n == 2)) {
                struct kms_grant *g = NULL;
                size_t k = 0;
                cJSON *arr = cJSON_AddArrayToObject(out, "grants");
                int r = kms_list_grants(c, a[0], n == 2 ? a[1] : NULL, &g, &k, err);

                for (size_t i = 0; r >= 0 && i < k; i++)
                        cJSON_AddItemToArray(arr, grant_json(&g[i]));
                if (r >= 0)
                        kms_grants_free(g, k);
                return r;
        }
        if (streq(call, "revoke-grant") && n == 2)
                return kms_revoke_grant(c, a[0], a[1], err);
        if (streq(call, "retire-grant") && n == 2)
                return kms_retire_grant(c, a[0], a[1], err);
        if (streq(call, "get-policy") && n == 1) {
                char *policy = NULL;
                int r = kms_get_key_policy(c, a[0], &policy, err);

                if (r >= 0)
                        cJSON_AddStringToObject(out, "policy", policy);
                free(policy);
                return r;
        }
        if (streq(call, "put-policy") && n == 2)
                return kms_put_key_policy(c, a[0], a[1], err);
        usage("unknown call or wrong arguments");
        return -EINVAL;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                {"endpoint", required_argument, NULL, 'e'},
                {"region", required_argument, NULL, 'r'},
                {},
        };
        const char *endpoint = NULL, *region = NULL;
        struct creds_provider *creds = NULL;
        struct awsjson_client *c = NULL;
        struct aws_error err = {};
        cJSON *out;
        int opt, r;

        log_set_target(LOG_TARGET_STDERR);
        log_set_max_level(LOG_WARNING);
        while ((opt = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
                if (opt == 'e')
                        endpoint = optarg;
                else if (opt == 'r')
                        region = optarg;
                else
                        usage("bad option");
        }
        if (optind >= argc || !region)
                usage("--region and a call are required");
        if (creds_provider_new(NULL, NULL, NULL, &creds) < 0 ||
            awsjson_client_new(&(struct awsjson_client_config){.service = AWSJSON_KMS,
                                                               .region = region,
                                                               .endpoint_url = endpoint,
                                                               .transport = {.retry_base_ms = 20,
                                                                             .retry_cap_ms = 200}},
                               creds, &c) < 0)
                usage("cannot make the client");
        if (!loopback(awsjson_client_endpoint(c)))
                usage("refusing a non-loopback endpoint");
        out = cJSON_CreateObject();
        cJSON_AddStringToObject(out, "call", argv[optind]);
        r = run(c, argv[optind], argv + optind + 1, argc - optind - 1, out, &err);
        awsjson_client_free(c);
        creds_provider_free(creds);
        return probe_print(out, r, &err);
}
