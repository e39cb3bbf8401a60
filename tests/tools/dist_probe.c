/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dist_probe: drive the distribution calls (aws/ec2_dist.h) and the KMS/SSM JSON client
 * (aws/awsjson.h) against moto, directly or through the fault proxy, and print one JSON object
 * for the call. Used by tests/integration/test_dist_client.py.
 *
 *   dist_probe --endpoint URL --region R [--max-attempts N] CALL ARGS... [--dry-run]
 *
 * CALLs: copy-image SRC_REGION SRC_IMAGE NAME [KMS_KEY|-] [CLIENT_TOKEN|-] [TAG_K=V]
 *        share-image IMAGE account:ID|org:ARN|ou:ARN...
 *        share-snapshot SNAPSHOT ACCOUNT...
 *        deprecate IMAGE TIME
 *        images-by-tag KEY VALUE
 *        lt-version TEMPLATE IMAGE [SOURCE_VERSION]
 *        lt-default TEMPLATE VERSION
 *        lt-versions TEMPLATE|- [VERSION...]
 *        lt-ids
 *        kms-describe KEY
 *        kms-grant KEY GRANTEE
 *        ssm-put NAME VALUE [no-overwrite]
 *
 * Credentials come from the environment through the credentials provider; they are never
 * printed. The effective endpoint must be loopback, else nothing is sent. Exit status: 0 when
 * the call succeeded, 1 when it failed, 2 for a usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/awsjson.h"
#include "aws/credentials.h"
#include "aws/ec2_dist.h"
#include "aws/creds_provider.h"
#include "util/log.h"
#include "util/macro.h"

#include "probe.h"

static int run_ec2(struct ec2_client *c, const char *call, char **a, size_t n, bool dry_run,
                   cJSON *out, struct aws_error *err)
{
        _cleanup_free_ char *id = NULL;
        int r = -EINVAL;

        if (streq(call, "copy-image") && n >= 3) {
                struct ec2_tag tag = {};
                char *eq = n > 5 ? strchr(a[5], '=') : NULL;

                if (eq) {
                        *eq = '\0';
                        tag = (struct ec2_tag){a[5], eq + 1};
                }
                r = ec2_copy_image(c,
                                   &(struct ec2_copy_image_args){.source_region = a[0],
                                                                 .source_image_id = a[1],
                                                                 .name = a[2],
                                                                 .kms_key_id = opt_arg(a, n, 3),
                                                                 .copy_image_tags = true,
                                                                 .tags = &tag,
                                                                 .n_tags = eq ? 1 : 0,
                                                                 .client_token = opt_arg(a, n, 4),
                                                                 .dry_run = dry_run},
                                   &id, err);
                add_str(out, "image_id", r >= 0 ? id : NULL);
        } else if (streq(call, "share-image") && n >= 2) {
                struct ec2_share s[16];
                size_t k = 0;

                for (size_t i = 1; i < n && k < ELEMENTSOF(s); i++, k++) {
                        const char *v = strchr(a[i], ':');
                        if (!v)
                                usage("share-image takes KIND:VALUE");
                        s[k].kind = startswith(a[i], "account:") ? EC2_SHARE_ACCOUNT
                                    : startswith(a[i], "org:")   ? EC2_SHARE_ORGANIZATION
                                                                 : EC2_SHARE_OU;
                        s[k].value = v + 1;
                }
                r = ec2_add_launch_permissions(c, a[0], s, k, dry_run, err);
        } else if (streq(call, "share-snapshot") && n >= 2) {
                a[n] = NULL;
                r = ec2_add_create_volume_permission(c, a[0], (const char *const *)a + 1, dry_run,
                                                     err);
        } else if (streq(call, "deprecate") && n == 2) {
                r = ec2_enable_image_deprecation(c, a[0], a[1], dry_run, err);
        } else if (streq(call, "images-by-tag") && n == 2) {
                struct ec2_image *ims = NULL;
                size_t k = 0;
                cJSON *arr = cJSON_AddArrayToObject(out, "images");

                r = ec2_describe_images_by_tag(c, a[0], a[1], &ims, &k, err);
                for (size_t i = 0; r >= 0 && i < k; i++) {
                        cJSON *o = cJSON_CreateObject();
                        add_str(o, "image_id", ims[i].image_id);
                        add_str(o, "name", ims[i].name);
                        add_str(o, "creation_date", ims[i].creation_date);
                        cJSON_AddItemToArray(arr, o);
                }
                if (r >= 0)
                        ec2_images_free(ims, k);
        } else if (streq(call, "lt-version") && n >= 2) {
                int64_t v = 0;

                r = ec2_create_launch_template_version(c, a[0], opt_arg(a, n, 2), a[1], "probe",
                                                       NULL, dry_run, &v, err);
                cJSON_AddNumberToObject(out, "version", (double)v);
        } else if (streq(call, "lt-default") && n == 2) {
                r = ec2_set_launch_template_default(c, a[0], strtoll(a[1], NULL, 10), dry_run, err);
        } else if (streq(call, "lt-versions") && n >= 1) {
                struct ec2_lt_version *v = NULL;
                size_t k = 0;
                cJSON *arr = cJSON_AddArrayToObject(out, "versions");

                a[n] = NULL;
                r = ec2_describe_launch_template_versions(c, opt_arg(a, n, 0),
                                                          n > 1 ? (const char *const *)a + 1 : NULL,
                                                          &v, &k, err);
                for (size_t i = 0; r >= 0 && i < k; i++) {
                        cJSON *o = cJSON_CreateObject();
                        add_str(o, "template_id", v[i].template_id);
                        cJSON_AddNumberToObject(o, "version", (double)v[i].version);
                        cJSON_AddBoolToObject(o, "default", v[i].is_default);
                        add_str(o, "image_id", v[i].image_id);
                        cJSON_AddItemToArray(arr, o);
                }
                if (r >= 0)
                        ec2_lt_versions_free(v, k);
        } else if (streq(call, "lt-ids") && n == 0) {
                char **ids = NULL;
                cJSON *arr = cJSON_AddArrayToObject(out, "ids");

                r = ec2_describe_launch_template_ids(c, &ids, err);
                for (char **s = r >= 0 ? ids : NULL; s && *s; s++) {
                        cJSON_AddItemToArray(arr, cJSON_CreateString(*s));
                        free(*s);
                }
                free(r >= 0 ? ids : NULL);
        } else {
                usage("unknown call or wrong arguments");
        }
        return r;
}

static int run_json(struct awsjson_client *c, const char *call, char **a, size_t n, cJSON *out,
                    struct aws_error *err)
{
        _cleanup_free_ char *grant = NULL;
        struct kms_key k = {};
        int64_t v = 0;
        int r;

        if (streq(call, "kms-describe") && n == 1) {
                r = kms_describe_key(c, a[0], &k, err);
                add_str(out, "key_id", k.key_id);
                add_str(out, "arn", k.arn);
                add_str(out, "key_manager", k.key_manager);
                add_str(out, "key_state", k.key_state);
                kms_key_done(&k);
        } else if (streq(call, "kms-grant") && n == 2) {
                r = kms_create_grant(c, a[0], a[1], "probe", &grant, err);
                add_str(out, "grant_id", r >= 0 ? grant : NULL);
        } else if (streq(call, "ssm-put") && n >= 2) {
                r = ssm_put_parameter(c, a[0], a[1], "aws:ec2:image",
                                      !(n > 2 && streq(a[2], "no-overwrite")), &v, err);
                cJSON_AddNumberToObject(out, "version", (double)v);
        } else {
                usage("unknown call or wrong arguments");
                r = -EINVAL;
        }
        return r;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                {"endpoint", required_argument, NULL, 'e'},
                {"region", required_argument, NULL, 'r'},
                {"max-attempts", required_argument, NULL, 'a'},
                {},
        };
        const char *endpoint = NULL, *region = NULL, *call;
        struct creds_provider *creds = NULL;
        struct aws_error err = {};
        unsigned attempts = 0;
        struct aws_transport transport;
        char *args[64];
        size_t n = 0;
        bool dry_run = false;
        cJSON *out;
        int opt, r;

        log_set_target(LOG_TARGET_STDERR);
        log_set_max_level(LOG_WARNING);
        while ((opt = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
                if (opt == 'e')
                        endpoint = optarg;
                else if (opt == 'r')
                        region = optarg;
                else if (opt == 'a')
                        attempts = (unsigned)strtoul(optarg, NULL, 10);
                else
                        usage("bad option");
        }
        if (optind >= argc || !region)
                usage("--region and a call are required");
        call = argv[optind];
        for (int i = optind + 1; i < argc; i++) {
                if (streq(argv[i], "--dry-run"))
                        dry_run = true;
                else if (n < ELEMENTSOF(args) - 1)
                        args[n++] = argv[i];
        }
        r = creds_provider_new(NULL, NULL, NULL, &creds);
        if (r < 0)
                usage("cannot make a credentials provider");
        out = cJSON_CreateObject();
        cJSON_AddStringToObject(out, "call", call);
        transport = (struct aws_transport){
                .max_attempts = attempts, .retry_base_ms = 20, .retry_cap_ms = 200};
        if (startswith(call, "kms-") || startswith(call, "ssm-")) {
                struct awsjson_client *c = NULL;
                struct awsjson_client_config cfg = {
                        .service = startswith(call, "kms-") ? AWSJSON_KMS : AWSJSON_SSM,
                        .region = region,
                        .endpoint_url = endpoint,
                        .transport = transport};

                if (awsjson_client_new(&cfg, creds, &c) < 0)
                        usage("cannot make the client");
                if (!loopback(awsjson_client_endpoint(c)))
                        usage("refusing a non-loopback endpoint");
                r = run_json(c, call, args, n, out, &err);
                cJSON_AddNumberToObject(out, "attempts", awsjson_client_last_attempts(c));
                awsjson_client_free(c);
        } else {
                struct ec2_client *c = NULL;
                struct ec2_client_config cfg = {
                        .region = region, .endpoint_url = endpoint, .transport = transport};

                if (ec2_client_new(&cfg, creds, &c) < 0)
                        usage("cannot make the client");
                if (!loopback(ec2_client_endpoint(c)))
                        usage("refusing a non-loopback endpoint");
                r = run_ec2(c, call, args, n, dry_run, out, &err);
                cJSON_AddNumberToObject(out, "attempts", ec2_client_last_attempts(c));
                ec2_client_free(c);
        }
        creds_provider_free(creds);
        return probe_print(out, r, &err);
}
