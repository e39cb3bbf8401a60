/* SPDX-License-Identifier: Apache-2.0 */
/* cJSON helpers shared by the state file and the CLI's JSON output. */
#pragma once

#include <cjson/cJSON.h>
#include <errno.h>

/* Add k: v, or k: null when v is NULL. -ENOMEM when cJSON could not allocate. */
static inline int json_add_str(cJSON *o, const char *k, const char *v)
{
        cJSON *i = v ? cJSON_CreateString(v) : cJSON_CreateNull();

        if (!i)
                return -ENOMEM;
        cJSON_AddItemToObject(o, k, i);
        return 0;
}
