/* SPDX-License-Identifier: Apache-2.0 */
/* The tags of ec2-imaged's images (see imagetags.h). */
#include "core/imagetags.h"

#include "core/state.h"
#include "util/macro.h"

/* The configuration leaves room for ours (core/config_load.c). */
_Static_assert(CONFIG_MAX_TAGS + 4 <= IMAGE_TAGS_MAX, "room for our tags");

size_t image_tags_build(const struct config *cfg, const struct run_state *run, const char *lineage,
                        struct ec2_tag tags[static IMAGE_TAGS_MAX])
{
        size_t n = 0;

        if (run->n_tags > 0)
                for (size_t i = 0; i < run->n_tags && n < IMAGE_TAGS_MAX - 4; i++)
                        tags[n++] = (struct ec2_tag){run->tags[i].key, run->tags[i].value};
        else
                for (size_t i = 0; i < cfg->n_tags; i++)
                        tags[n++] = (struct ec2_tag){cfg->tags[i].key, cfg->tags[i].value};
        tags[n++] = (struct ec2_tag){TAG_RUN_ID, run->run_id};
        tags[n++] = (struct ec2_tag){TAG_CONSISTENCY,
                                     consistency_to_string(run->consistency ?: CONSISTENCY_CRASH)};
        tags[n++] = (struct ec2_tag){TAG_SOURCE, run->instance_id};
        if (lineage)
                tags[n++] = (struct ec2_tag){TAG_LINEAGE, lineage};
        return n;
}

const char *image_tag(const struct ec2_image *im, const char *key)
{
        for (size_t i = 0; i < im->n_tags; i++)
                if (streq_ptr(im->tags[i].key, key))
                        return im->tags[i].value;
        return NULL;
}
