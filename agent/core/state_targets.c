/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The copies a run pushes into target accounts, in the current run's "targets" list: one record
 * per account and region. A state file without the list (older versions) has none.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/state.h"
#include "util/json.h"
#include "util/macro.h"
#include "util/str.h"

/* The string fields of a record, by their name in the file. */
static const struct {
        const char *name;
        size_t offset;
        bool required;
} target_fields[] = {
        {"account", offsetof(struct run_target, account), true},
        {"region", offsetof(struct run_target, region), true},
        {"image_id", offsetof(struct run_target, image_id), false},
        {"state", offsetof(struct run_target, state), false},
};

static char **field(struct run_target *t, size_t i)
{
        return (char **)((char *)t + target_fields[i].offset);
}

void run_state_targets_done(struct run_state *r)
{
        for (size_t i = 0; i < r->n_targets; i++)
                for (size_t f = 0; f < ELEMENTSOF(target_fields); f++)
                        free(*field(&r->targets[i], f));
        free(r->targets);
        r->targets = NULL;
        r->n_targets = 0;
}

int run_state_target(struct run_state *r, const char *account, const char *region,
                     struct run_target **ret)
{
        struct run_target *v;

        for (size_t i = 0; i < r->n_targets; i++)
                if (streq(r->targets[i].account, account) && streq(r->targets[i].region, region))
                        return *ret = &r->targets[i], 0;
        if (r->n_targets >= RUN_TARGETS_MAX)
                return -E2BIG;
        v = reallocarray(r->targets, r->n_targets + 1, sizeof(*v));
        if (!v)
                return -ENOMEM;
        r->targets = v;
        v[r->n_targets] = (struct run_target){.account = strdup(account), .region = strdup(region)};
        if (!v[r->n_targets].account || !v[r->n_targets].region) {
                free(v[r->n_targets].account);
                free(v[r->n_targets].region);
                return -ENOMEM;
        }
        *ret = &v[r->n_targets++];
        return 0;
}

int run_targets_to_json(const struct run_state *r, cJSON *o)
{
        cJSON *arr;

        if (r->n_targets == 0)
                return 0;
        arr = cJSON_AddArrayToObject(o, "targets");
        if (!arr)
                return -ENOMEM;
        for (size_t i = 0; i < r->n_targets; i++) {
                cJSON *item = cJSON_CreateObject();
                int e = 0;

                if (!item)
                        return -ENOMEM;
                cJSON_AddItemToArray(arr, item);
                for (size_t f = 0; f < ELEMENTSOF(target_fields); f++)
                        e |= json_add_str(item, target_fields[f].name,
                                          *field((struct run_target *)&r->targets[i], f));
                if (e)
                        return -ENOMEM;
        }
        return 0;
}

/* One string field: absent or null is NULL; anything but a string of sane length is refused. */
static int get_field(const cJSON *item, const char *name, bool required, char **ret)
{
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(item, name);

        if (!v || cJSON_IsNull(v))
                return required ? -EBADMSG : 0;
        if (!cJSON_IsString(v) || strlen(v->valuestring) > 2048)
                return -EBADMSG;
        return (*ret = strdup(v->valuestring)) ? 0 : -ENOMEM;
}

int run_targets_from_json(const cJSON *o, struct run_state *r)
{
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(o, "targets"), *item;

        if (!arr)
                return 0;
        if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) > RUN_TARGETS_MAX)
                return -EBADMSG;
        cJSON_ArrayForEach(item, arr)
        {
                _cleanup_free_ char *account = NULL, *region = NULL;
                struct run_target *t;
                size_t before = r->n_targets;

                if (!cJSON_IsObject(item) || get_field(item, "account", true, &account) < 0 ||
                    get_field(item, "region", true, &region) < 0 ||
                    run_state_target(r, account, region, &t) < 0 || r->n_targets == before)
                        return -EBADMSG; /* a second record of one account and region too */
                if (get_field(item, "image_id", false, &t->image_id) < 0 ||
                    get_field(item, "state", false, &t->state) < 0)
                        return -EBADMSG;
        }
        return 0;
}
