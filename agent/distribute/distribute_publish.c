/* SPDX-License-Identifier: Apache-2.0 */
/* Launch template versions and SSM parameters that publish an image (see distribute_publish.h). */
#include "distribute/distribute_publish.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>

#include "aws/awsjson.h"
#include "aws/ec2_dist.h"
#include "distribute/distribute_aws.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/str.h"

/*
 * Resolve "$Default"/"$Latest" (or a number) of template to the version number as text; 1 when
 * it is $Latest and that version already uses image_id, else 0.
 */
static int lt_resolve(struct ec2_client *c, const char *region, const char *template,
                      const char *which, const char *image_id, char **ret, char **why)
{
        const char *const v[] = {which, NULL};
        struct ec2_lt_version *lv = NULL;
        struct aws_error e = {};
        size_t n = 0;
        int r;

        r = ec2_describe_launch_template_versions(c, template, v, &lv, &n, &e);
        if (r < 0)
                return dist_fail(why, r, &e, "DescribeLaunchTemplateVersions", region);
        if (n == 0) {
                if (!*why)
                        *why = strprintf("launch template %s has no version %s in %s", template,
                                         which, region);
                r = -ENOENT;
        } else {
                *ret = strprintf("%" PRId64, lv[0].version);
                r = *ret ? 0 : -ENOMEM;
                if (r >= 0 && streq(which, "$Latest"))
                        r = streq_ptr(lv[0].image_id, image_id) ? 1 : 0;
        }
        ec2_lt_versions_free(lv, n);
        return r;
}

int dist_lt_version(struct ec2_client *c, const char *region, const char *template,
                    const char *source_version, const char *image_id, const char *description,
                    const char *client_token, char **ret_version, char **why)
{
        _cleanup_free_ char *latest = NULL, *src = NULL;
        struct aws_error e = {};
        int64_t v = 0;
        int r;

        r = lt_resolve(c, region, template, "$Latest", image_id, &latest, why);
        if (r < 0)
                return r;
        /* A version already made with this image (before an interruption) is reused. */
        if (r > 0) {
                *ret_version = TAKE_PTR(latest);
                return 0;
        }
        r = lt_resolve(c, region, template, source_version, image_id, &src, why);
        if (r < 0)
                return r;
        r = ec2_create_launch_template_version(c, template, src, image_id, description,
                                               client_token, false, &v, &e);
        if (r < 0)
                return e.code ? dist_fail(why, r, &e, "CreateLaunchTemplateVersion", region) : r;
        *ret_version = strprintf("%" PRId64, v);
        return *ret_version ? 0 : -ENOMEM;
}

int dist_lt_set_default(struct ec2_client *c, const char *region, const char *template,
                        const char *version, char **why)
{
        struct aws_error e = {};
        int r;

        r = ec2_set_launch_template_default(c, template, strtoll(version, NULL, 10), false, &e);
        if (r < 0)
                return dist_fail(why, r, &e, "ModifyLaunchTemplate", region);
        return 0;
}

int dist_publish_ssm(struct awsjson_client *ssm, const char *region, const char *name,
                     const char *image_id, char **why)
{
        struct aws_error e = {};
        int r;

        r = ssm_put_parameter(ssm, name, image_id, "aws:ec2:image", true, NULL, &e);
        if (r < 0)
                return dist_fail(why, r, &e, "SSM PutParameter", region);
        log_info("SSM parameter %s in %s = %s", name, region, image_id);
        return 0;
}
