/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ec2_probe: drive the EC2 Query API client against moto (directly or through the fault proxy)
 * and print one JSON object for the call. Used by tests/integration/test_ec2_client.py.
 *
 *   ec2_probe [--endpoint URL] --region R [--max-attempts N] [--retry-deadline-ms MS]
 *             [--retry-base-ms MS] [--retry-cap-ms MS] [--timeout-ms MS]
 *             [--connect-timeout-ms MS] [--max-body BYTES] [--warm] [--once] [--debug]
 *             CALL ARGS...
 *
 * --warm makes a DescribeImages call first (its result is not printed), so that the call under
 * test goes out on a reused connection; --once makes it a call that must not run twice (as the
 * flow makes CreateImage).
 *
 * CALLs: describe-instance ID
 *        create-image ID NAME [--description D] [--no-reboot] [--dry-run] [--tag K=V]...
 *                     [--no-snapshot-tags]
 *        describe-images [--name N] [--image-id I]
 *        create-tags RESOURCE... --tag K=V... [--dry-run]
 *        deregister-image ID [--delete-snapshots] [--dry-run]
 *        delete-snapshot ID [--dry-run]
 *        raw ACTION [NAME=VALUE]...
 *
 * Credentials come from the environment (AWS_ACCESS_KEY_ID, ...) through the credentials
 * provider; they are never printed. The effective endpoint (AWS_ENDPOINT_URL_EC2 and
 * AWS_ENDPOINT_URL win over --endpoint, as in the SDKs) must be loopback, else nothing is sent.
 * Exit status: 0 when the call succeeded, 1 when it failed, 2 for a usage error.
 */
#include <cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libxml/tree.h>

#include "aws/credentials.h"
#include "aws/ec2.h"
#include "aws/creds_provider.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/parse.h"

#define MAX_TAGS 64

struct call_args {
        const char *positional[64];
        size_t n_positional;
        struct ec2_tag tags[MAX_TAGS];
        size_t n_tags;
        const char *name, *image_id, *description;
        bool dry_run, no_reboot, delete_snapshots, no_snapshot_tags;
};

static void usage(const char *msg)
{
        fprintf(stderr, "ec2_probe: %s\n", msg);
        exit(2);
}

static void add_str(cJSON *o, const char *k, const char *v)
{
        if (v)
                cJSON_AddStringToObject(o, k, v);
        else
                cJSON_AddNullToObject(o, k);
}

static void emit(cJSON *o)
{
        char *s = cJSON_PrintUnformatted(o);

        if (!s)
                usage("out of memory");
        printf("%s\n", s);
        fflush(stdout);
        free(s);
        cJSON_Delete(o);
}

/* Refuse anything but loopback: these tests must never reach AWS or the metadata service. */
static bool endpoint_is_loopback(const char *url)
{
        CURLU *u = curl_url();
        char *host = NULL;
        bool ok = false;

        if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
            curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
                ok = streq(host, "localhost") || streq(host, "[::1]") || startswith(host, "127.");
        curl_free(host);
        curl_url_cleanup(u);
        return ok;
}

static void parse_call_args(int argc, char **argv, struct call_args *a)
{
        for (int i = 0; i < argc; i++) {
                const char *s = argv[i];
                const char *next = i + 1 < argc ? argv[i + 1] : NULL;

                if (streq(s, "--dry-run"))
                        a->dry_run = true;
                else if (streq(s, "--no-reboot"))
                        a->no_reboot = true;
                else if (streq(s, "--delete-snapshots"))
                        a->delete_snapshots = true;
                else if (streq(s, "--no-snapshot-tags"))
                        a->no_snapshot_tags = true;
                else if (streq(s, "--name") && next)
                        a->name = argv[++i];
                else if (streq(s, "--image-id") && next)
                        a->image_id = argv[++i];
                else if (streq(s, "--description") && next)
                        a->description = argv[++i];
                else if (streq(s, "--tag") && next) {
                        char *eq = strchr(argv[++i], '=');
                        if (!eq || a->n_tags >= MAX_TAGS)
                                usage("--tag takes KEY=VALUE");
                        *eq = '\0';
                        a->tags[a->n_tags++] = (struct ec2_tag){argv[i], eq + 1};
                } else if (startswith(s, "--"))
                        usage("unknown or incomplete call option");
                else if (a->n_positional < ELEMENTSOF(a->positional))
                        a->positional[a->n_positional++] = s;
                else
                        usage("too many arguments");
        }
}

static cJSON *instance_json(const struct ec2_instance *in)
{
        cJSON *o = cJSON_CreateObject(), *devs = cJSON_AddArrayToObject(o, "block_devices");

        add_str(o, "instance_id", in->instance_id);
        add_str(o, "state", in->state);
        add_str(o, "root_device_name", in->root_device_name);
        add_str(o, "root_device_type", in->root_device_type);
        add_str(o, "image_id", in->image_id);
        add_str(o, "architecture", in->architecture);
        for (size_t i = 0; i < in->n_devices; i++) {
                cJSON *d = cJSON_CreateObject();
                add_str(d, "device_name", in->devices[i].device_name);
                add_str(d, "volume_id", in->devices[i].volume_id);
                cJSON_AddItemToArray(devs, d);
        }
        return o;
}

static cJSON *images_json(const struct ec2_image *ims, size_t n)
{
        cJSON *arr = cJSON_CreateArray();

        for (size_t i = 0; i < n; i++) {
                cJSON *o = cJSON_CreateObject(), *snaps, *tags;

                add_str(o, "image_id", ims[i].image_id);
                add_str(o, "name", ims[i].name);
                add_str(o, "state", ims[i].state);
                add_str(o, "state_reason", ims[i].state_reason);
                add_str(o, "creation_date", ims[i].creation_date);
                snaps = cJSON_AddArrayToObject(o, "snapshot_ids");
                for (char **s = ims[i].snapshot_ids; s && *s; s++)
                        cJSON_AddItemToArray(snaps, cJSON_CreateString(*s));
                tags = cJSON_AddObjectToObject(o, "tags");
                for (size_t k = 0; k < ims[i].n_tags; k++)
                        cJSON_AddStringToObject(tags, ims[i].tags[k].key, ims[i].tags[k].value);
                cJSON_AddItemToArray(arr, o);
        }
        return arr;
}

static int call_raw(struct ec2_client *c, const struct call_args *a, cJSON *out,
                    struct aws_error *err)
{
        struct ec2_params *p = NULL;
        xmlDoc *doc = NULL;
        xmlChar *xml = NULL;
        int r, len = 0;

        if (a->n_positional < 1)
                usage("raw needs ACTION");
        r = ec2_params_new(&p);
        for (size_t i = 1; r >= 0 && i < a->n_positional; i++) {
                const char *eq = strchr(a->positional[i], '=');
                _cleanup_free_ char *name = NULL;

                if (!eq)
                        usage("raw parameters are NAME=VALUE");
                name = strndup(a->positional[i], (size_t)(eq - a->positional[i]));
                r = name ? ec2_params_add(p, name, eq + 1) : -ENOMEM;
        }
        if (r >= 0)
                r = ec2_call(c, a->positional[0], p, &doc, err);
        ec2_params_free(p);
        if (r < 0)
                return r;
        xmlDocDumpMemory(doc, &xml, &len);
        add_str(out, "root", (const char *)xmlDocGetRootElement(doc)->name);
        add_str(out, "xml", (const char *)xml);
        xmlFree(xml);
        xmlFreeDoc(doc);
        return 0;
}

static int run_call(struct ec2_client *c, const char *call, struct call_args *a, cJSON *out,
                    struct aws_error *err)
{
        const char *const *pos = a->positional;
        int r;

        if (streq(call, "describe-instance")) {
                struct ec2_instance in = {};
                if (a->n_positional != 1)
                        usage("describe-instance ID");
                r = ec2_describe_instance(c, pos[0], &in, err);
                if (r >= 0)
                        cJSON_AddItemToObject(out, "instance", instance_json(&in));
                ec2_instance_done(&in);
                return r;
        }
        if (streq(call, "create-image")) {
                char *id = NULL;
                if (a->n_positional != 2)
                        usage("create-image ID NAME");
                r = ec2_create_image(c,
                                     &(struct ec2_create_image_args){
                                             .instance_id = pos[0],
                                             .name = pos[1],
                                             .description = a->description,
                                             .no_reboot = a->no_reboot,
                                             .tags = a->tags,
                                             .n_tags = a->n_tags,
                                             .no_snapshot_tags = a->no_snapshot_tags,
                                             .dry_run = a->dry_run,
                                     },
                                     &id, err);
                if (r >= 0)
                        add_str(out, "image_id", id);
                free(id);
                return r;
        }
        if (streq(call, "describe-images")) {
                struct ec2_image *ims = NULL;
                size_t n = 0;
                r = ec2_describe_own_images(c, a->name ? "name" : NULL, a->name, a->image_id, &ims,
                                            &n, err);
                if (r >= 0)
                        cJSON_AddItemToObject(out, "images", images_json(ims, n));
                ec2_images_free(ims, n);
                return r;
        }
        if (streq(call, "create-tags")) {
                const char *ids[ELEMENTSOF(a->positional) + 1] = {};
                for (size_t i = 0; i < a->n_positional; i++)
                        ids[i] = pos[i];
                return ec2_create_tags(c, ids, a->tags, a->n_tags, a->dry_run, err);
        }
        if (streq(call, "deregister-image")) {
                if (a->n_positional != 1)
                        usage("deregister-image ID");
                return ec2_deregister_image(c, pos[0], a->delete_snapshots, a->dry_run, err);
        }
        if (streq(call, "delete-snapshot")) {
                if (a->n_positional != 1)
                        usage("delete-snapshot ID");
                return ec2_delete_snapshot(c, pos[0], a->dry_run, err);
        }
        if (streq(call, "raw"))
                return call_raw(c, a, out, err);
        usage("unknown call");
        return -EINVAL;
}

static unsigned opt_uint(const char *s)
{
        unsigned v;

        if (safe_atou(s, &v) < 0)
                usage("bad number");
        return v;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                {"endpoint", required_argument, NULL, 'e'},
                {"region", required_argument, NULL, 'r'},
                {"max-attempts", required_argument, NULL, 'a'},
                {"retry-deadline-ms", required_argument, NULL, 'd'},
                {"retry-base-ms", required_argument, NULL, 'b'},
                {"retry-cap-ms", required_argument, NULL, 'c'},
                {"timeout-ms", required_argument, NULL, 't'},
                {"connect-timeout-ms", required_argument, NULL, 'C'},
                {"max-body", required_argument, NULL, 'm'},
                {"debug", no_argument, NULL, 'D'},
                {"warm", no_argument, NULL, 'W'},
                {"once", no_argument, NULL, 'O'},
                {},
        };
        struct ec2_client_config cfg = {};
        struct creds_provider *creds = NULL;
        struct ec2_client *c = NULL;
        struct aws_error err = {};
        struct call_args a = {};
        const char *call;
        bool warm = false, once = false;
        cJSON *out;
        int opt, r;

        log_set_target(LOG_TARGET_STDERR);
        log_set_max_level(LOG_WARNING);
        /* '+': stop at the call name; what follows belongs to the call. */
        while ((opt = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
                switch (opt) {
                case 'e':
                        cfg.endpoint_url = optarg;
                        break;
                case 'r':
                        cfg.region = optarg;
                        break;
                case 'a':
                        cfg.transport.max_attempts = opt_uint(optarg);
                        break;
                case 'd':
                        cfg.transport.retry_deadline_ms = opt_uint(optarg);
                        break;
                case 'b':
                        cfg.transport.retry_base_ms = opt_uint(optarg);
                        break;
                case 'c':
                        cfg.transport.retry_cap_ms = opt_uint(optarg);
                        break;
                case 't':
                        cfg.transport.timeout_ms = opt_uint(optarg);
                        break;
                case 'C':
                        cfg.transport.connect_timeout_ms = opt_uint(optarg);
                        break;
                case 'm':
                        cfg.transport.max_body = opt_uint(optarg);
                        break;
                case 'D':
                        log_set_max_level(LOG_DEBUG);
                        break;
                case 'W':
                        warm = true;
                        break;
                case 'O':
                        once = true;
                        break;
                default:
                        usage("bad option");
                }
        }
        if (optind >= argc)
                usage("no call given");
        if (!cfg.region)
                usage("--region is required");
        call = argv[optind];
        parse_call_args(argc - optind - 1, argv + optind + 1, &a);

        r = creds_provider_new(NULL, NULL, NULL, &creds);
        if (r < 0)
                usage("cannot make a credentials provider");
        r = ec2_client_new(&cfg, creds, &c);
        if (r < 0)
                usage("cannot make the EC2 client (bad region or endpoint?)");
        if (!endpoint_is_loopback(ec2_client_endpoint(c)))
                usage("refusing a non-loopback endpoint");

        if (warm) {
                struct ec2_image *ims = NULL;
                size_t n = 0;

                if (ec2_describe_own_images(c, "name", "ec2-probe-warm-up", NULL, &ims, &n, &err) <
                    0)
                        usage("the warm-up DescribeImages failed");
                ec2_images_free(ims, n);
        }
        if (once)
                ec2_client_limit_next_call(c, true, 0);
        out = cJSON_CreateObject();
        cJSON_AddStringToObject(out, "call", call);
        r = run_call(c, call, &a, out, &err);
        cJSON_AddBoolToObject(out, "ok", r >= 0);
        if (r < 0) {
                cJSON *e = cJSON_AddObjectToObject(out, "error");
                cJSON_AddNumberToObject(e, "errno", -r);
                add_str(e, "errno_name", strerrorname_np(-r));
                add_str(e, "code", err.code);
                add_str(e, "message", err.message);
                add_str(e, "request_id", err.request_id);
                cJSON_AddNumberToObject(e, "http_status", (double)err.http_status);
        }
        cJSON_AddNumberToObject(out, "attempts", ec2_client_last_attempts(c));
        emit(out);
        aws_error_done(&err);
        ec2_client_free(c);
        creds_provider_free(creds);
        return r < 0 ? 1 : 0;
}
