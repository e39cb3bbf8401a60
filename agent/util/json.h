/* SPDX-License-Identifier: Apache-2.0 */
/* cJSON helpers shared by the state file, the AWS JSON clients, IMDS and the CLI's output. */
#pragma once

#include <cjson/cJSON.h>
#include <errno.h>

/* For _cleanup_json_: deletes the tree a variable holds when it goes out of scope. */
static inline void json_freep(cJSON **j)
{
        cJSON_Delete(*j);
}
#define _cleanup_json_ __attribute__((cleanup(json_freep)))

/* Add k: v, or k: null when v is NULL. -ENOMEM when cJSON could not allocate. */
static inline int json_add_str(cJSON *o, const char *k, const char *v)
{
        cJSON *i = v ? cJSON_CreateString(v) : cJSON_CreateNull();

        if (!i)
                return -ENOMEM;
        cJSON_AddItemToObject(o, k, i);
        return 0;
}
