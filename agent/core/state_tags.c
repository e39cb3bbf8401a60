/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The rendered tags of a run's images, in the current run's "tags" object (key: value, in the
 * order they are put on the images). A state file without it (older versions, or a run that
 * failed before it rendered them) has none.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/state.h"
#include "core/template.h"
#include "util/json.h"
#include "util/macro.h"
#include "util/str.h"

int run_state_add_tag(struct run_state *r, const char *key, const char *value)
{
        _cleanup_free_ char *k = strdup(key), *v = strdup(value);
        struct run_tag *t;

        if (r->n_tags >= RUN_TAGS_MAX)
                return -E2BIG;
        if (!k || !v)
                return -ENOMEM;
        t = reallocarray(r->tags, r->n_tags + 1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        r->tags = t;
        r->tags[r->n_tags++] = (struct run_tag){TAKE_PTR(k), TAKE_PTR(v)};
        return 0;
}

const char *run_state_tag(const struct run_state *r, const char *key)
{
        for (size_t i = 0; i < r->n_tags; i++)
                if (streq(r->tags[i].key, key))
                        return r->tags[i].value;
        return NULL;
}

void run_state_clear_tags(struct run_state *r)
{
        for (size_t i = 0; i < r->n_tags; i++) {
                free(r->tags[i].key);
                free(r->tags[i].value);
        }
        free(r->tags);
        r->tags = NULL;
        r->n_tags = 0;
}

int run_tags_to_json(const struct run_state *r, cJSON *o)
{
        cJSON *t;

        if (r->n_tags == 0)
                return 0;
        t = cJSON_AddObjectToObject(o, "tags");
        if (!t)
                return -ENOMEM;
        for (size_t i = 0; i < r->n_tags; i++)
                if (json_add_str(t, r->tags[i].key, r->tags[i].value) < 0)
                        return -ENOMEM;
        return 0;
}

/* EC2's limits (core/config_load.c checks the configuration against them): a file beyond is bad. */
int run_tags_from_json(const cJSON *o, struct run_state *r)
{
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "tags"), *i;

        if (!t)
                return 0;
        if (!cJSON_IsObject(t))
                return -EBADMSG;
        cJSON_ArrayForEach(i, t)
        {
                if (!cJSON_IsString(i) || !i->string[0] || utf8_chars(i->string) > 128 ||
                    utf8_chars(i->valuestring) > 256 || run_state_tag(r, i->string))
                        return -EBADMSG;
                if (run_state_add_tag(r, i->string, i->valuestring) < 0)
                        return -EBADMSG;
        }
        return 0;
}
