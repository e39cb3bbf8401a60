/* SPDX-License-Identifier: Apache-2.0 */
/* Retention per lineage and region (see distribute_retain.h). */
#include "distribute/distribute_retain.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "aws/ec2_dist.h"
#include "core/imagetags.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/str.h"

bool retain_enabled(const struct retain_opts *o)
{
        return o->lineage && (o->keep_newest > 0 || o->keep_days > 0);
}

/* Newest first; ISO 8601 UTC times of the same shape sort as strings. */
static int by_creation_desc(const void *a, const void *b)
{
        const struct ec2_image *x = a, *y = b;

        return -strcmp(strempty(x->creation_date), strempty(y->creation_date));
}

/* The image ids of every launch template's default and latest versions in c's region. */
static int referenced_images(struct ec2_client *c, char ***ret, struct aws_error *err)
{
        static const char *const which[] = {"$Default", "$Latest", NULL};
        _cleanup_strv_free_ char **ids = NULL;
        char **refs = NULL;
        int r;

        r = ec2_describe_launch_template_ids(c, &ids, err);
        if (r < 0)
                return r;
        for (char **t = ids; *t; t++) {
                struct ec2_lt_version *v = NULL;
                size_t n = 0;

                r = ec2_describe_launch_template_versions(c, *t, which, &v, &n, err);
                for (size_t i = 0; r >= 0 && i < n; i++)
                        if (v[i].image_id && !strv_contains(refs, v[i].image_id))
                                r = strv_push(&refs, v[i].image_id);
                if (r >= 0)
                        ec2_lt_versions_free(v, n);
                if (r < 0) {
                        strv_free(refs);
                        return r;
                }
        }
        *ret = refs;
        return 0;
}

/* Whether the rules keep the image at rank (0: newest) of age age_us. */
static bool rules_keep(const struct retain_opts *o, size_t rank, usec_t age_us)
{
        if (o->keep_newest > 0 && rank < o->keep_newest)
                return true;
        if (o->keep_days > 0 && age_us < (usec_t)o->keep_days * 86400 * USEC_PER_SEC)
                return true;
        return false;
}

/* An image the rules do not keep: what else holds it, if anything. */
static enum retain_verdict unkept_verdict(const struct retain_opts *o, const struct ec2_image *im,
                                          char *const *referenced)
{
        if (strv_contains(referenced, im->image_id))
                return RETAIN_KEEP_REFERENCED;
        /*
         * Ours is "enabled" (set without cooldown); one with a cooldown was set by someone else,
         * and lifting it would only start the cooldown.
         */
        if (o->lift_protection && streq_ptr(im->deregistration_protection, "enabled"))
                return RETAIN_LIFT_AND_DELETE;
        if (startswith(strempty(im->deregistration_protection), "enabled"))
                return RETAIN_KEEP_PROTECTED;
        return RETAIN_DELETE;
}

void retain_decide(const struct retain_opts *o, struct ec2_image *ims, size_t n,
                   char *const *referenced, enum retain_verdict *verdicts)
{
        /* The image just made is the newest, whatever the clock's resolution says: rank 0. */
        size_t rank = o->keep_image_id ? 1 : 0;

        qsort(ims, n, sizeof(*ims), by_creation_desc);
        for (size_t i = 0; i < n; i++) {
                const struct ec2_image *im = &ims[i];
                usec_t created = 0, age;

                /* Only what ec2-imaged made: the lineage tag alone could be anyone's. */
                if (!image_tag(im, TAG_RUN_ID)) {
                        verdicts[i] = RETAIN_NOT_OURS;
                        continue;
                }
                if (streq_ptr(im->image_id, o->keep_image_id)) {
                        verdicts[i] = RETAIN_KEEP_CURRENT;
                        continue;
                }
                /*
                 * An image that failed its boot check is never a keeper: it neither counts
                 * among the newest nor stays for its age (a template or protection still holds it).
                 */
                if (streq_ptr(image_tag(im, TAG_BOOT_CHECK), BOOT_CHECK_VERDICT_FAILED)) {
                        verdicts[i] = unkept_verdict(o, im, referenced);
                        continue;
                }
                /* Without a creation date its age is unknown: it stays and counts. */
                if (!im->creation_date || parse_iso8601(im->creation_date, &created) < 0) {
                        rank++;
                        verdicts[i] = RETAIN_KEEP_RULES;
                        continue;
                }
                age = o->now > created ? o->now - created : 0;
                verdicts[i] = rules_keep(o, rank++, age) ? RETAIN_KEEP_RULES
                                                         : unkept_verdict(o, im, referenced);
        }
}

int retain_region(struct ec2_client *c, const struct retain_opts *o, char ***report,
                  struct aws_error *err)
{
        _cleanup_strv_free_ char **refs = NULL;
        _cleanup_free_ enum retain_verdict *v = NULL;
        struct ec2_image *ims = NULL;
        const char *region = ec2_client_region(c);
        size_t n = 0;
        int r;

        if (!retain_enabled(o))
                return 0;
        r = ec2_describe_images_by_tag(c, TAG_LINEAGE, o->lineage, &ims, &n, err);
        if (r >= 0)
                r = referenced_images(c, &refs, err);
        if (r >= 0 && n > 0 && !(v = calloc(n, sizeof(*v))))
                r = -ENOMEM;
        if (r < 0) {
                ec2_images_free(ims, n);
                return r;
        }
        retain_decide(o, ims, n, refs, v);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                const struct ec2_image *im = &ims[i];

                if (v[i] == RETAIN_KEEP_REFERENCED || v[i] == RETAIN_KEEP_PROTECTED)
                        log_info("Retention keeps %s in %s: %s", im->image_id, region,
                                 v[i] == RETAIN_KEEP_REFERENCED
                                         ? "a launch template uses it"
                                         : "deregistration protection is on");
                if (v[i] != RETAIN_DELETE && v[i] != RETAIN_LIFT_AND_DELETE)
                        continue;
                if (!o->dry_run && v[i] == RETAIN_LIFT_AND_DELETE) {
                        r = ec2_set_deregistration_protection(c, im->image_id, false, false, err);
                        if (r < 0)
                                break;
                        log_info("Retention lifted the deregistration protection of %s in %s",
                                 im->image_id, region);
                }
                if (!o->dry_run) {
                        r = ec2_deregister_image(c, im->image_id, true, false, err);
                        if (r < 0)
                                break;
                        log_notice("Retention deregistered %s '%s' in %s with its snapshots",
                                   im->image_id, strna(im->name), region);
                        if (o->gone)
                                r = strv_push(o->gone, im->image_id);
                        if (r < 0)
                                break;
                }
                r = strv_pushf(report, "%s %s '%s' in %s (created %s)",
                               o->dry_run ? "would deregister" : "deregistered", im->image_id,
                               strna(im->name), region, im->creation_date);
        }
        ec2_images_free(ims, n);
        return r;
}
