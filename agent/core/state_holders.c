/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The held hooks of a run (host/hold.h) in the run state: the list, and its JSON form, read back
 * with a bound on every string, number and list as the rest of the state (state_json.c).
 */
#include "core/state.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/json.h"
#include "util/macro.h"
#include "util/str.h"

#define HOLDER_STR_MAX 4096u /* a message; a name or a KEY=VALUE is far shorter */

int run_state_add_holder(struct run_state *r, struct run_holder **ret)
{
        struct run_holder *v;

        if (r->n_holders >= RUN_HOLDERS_MAX)
                return -E2BIG;
        v = reallocarray(r->holders, r->n_holders + 1, sizeof(*v));
        if (!v)
                return -ENOMEM;
        r->holders = v;
        v[r->n_holders] = (struct run_holder){.ready_ms = -1, .held_ms = -1};
        *ret = &v[r->n_holders++];
        return 0;
}

void run_state_clear_holders(struct run_state *r)
{
        for (size_t i = 0; i < r->n_holders; i++) {
                free(r->holders[i].name);
                free(r->holders[i].end);
                strv_free(r->holders[i].values);
                free(r->holders[i].message);
        }
        free(r->holders);
        r->holders = NULL;
        r->n_holders = 0;
}

static int holder_to_json(const struct run_holder *h, cJSON *item)
{
        cJSON *values;
        int e = 0;

        e |= json_add_str(item, "name", h->name);
        e |= json_add_str(item, "end", h->end);
        e |= cJSON_AddNumberToObject(item, "exit_status", h->exit_status) ? 0 : -ENOMEM;
        e |= cJSON_AddNumberToObject(item, "signal", h->signal) ? 0 : -ENOMEM;
        e |= cJSON_AddNumberToObject(item, "ready_ms", (double)h->ready_ms) ? 0 : -ENOMEM;
        e |= cJSON_AddNumberToObject(item, "held_ms", (double)h->held_ms) ? 0 : -ENOMEM;
        e |= cJSON_AddBoolToObject(item, "lost_while_holding", h->lost) ? 0 : -ENOMEM;
        e |= json_add_str(item, "message", h->message);
        values = cJSON_AddObjectToObject(item, "values");
        for (char **v = h->values; values && v && *v; v++) {
                const char *eq = strchr(*v, '=');
                _cleanup_free_ char *k = eq ? strndup(*v, (size_t)(eq - *v)) : NULL;

                if (!k || !cJSON_AddStringToObject(values, k, eq + 1))
                        return -ENOMEM;
        }
        return e || !values ? -ENOMEM : 0;
}

int run_holders_to_json(const struct run_state *r, cJSON *o)
{
        cJSON *arr;

        if (r->n_holders == 0)
                return 0;
        arr = cJSON_AddArrayToObject(o, "holders");
        for (size_t i = 0; arr && i < r->n_holders; i++) {
                cJSON *item = cJSON_CreateObject();

                if (!item)
                        return -ENOMEM;
                cJSON_AddItemToArray(arr, item);
                if (holder_to_json(&r->holders[i], item) < 0)
                        return -ENOMEM;
        }
        return arr ? 0 : -ENOMEM;
}

static int str_field(const cJSON *o, const char *k, bool required, char **ret)
{
        const cJSON *i = cJSON_GetObjectItemCaseSensitive(o, k);

        if (!i || cJSON_IsNull(i))
                return required ? -EBADMSG : 0;
        if (!cJSON_IsString(i) || strlen(i->valuestring) > HOLDER_STR_MAX)
                return -EBADMSG;
        *ret = strdup(i->valuestring);
        return *ret ? 0 : -ENOMEM;
}

static int num_field(const cJSON *o, const char *k, double min, double max, double *ret)
{
        const cJSON *i = cJSON_GetObjectItemCaseSensitive(o, k);

        if (!cJSON_IsNumber(i) || !(i->valuedouble >= min && i->valuedouble <= max))
                return -EBADMSG;
        *ret = i->valuedouble;
        return 0;
}

static int holder_from_json(const cJSON *item, struct run_holder *h)
{
        const cJSON *values = cJSON_GetObjectItemCaseSensitive(item, "values"), *v;
        double st = 0, sig = 0, ready = 0, held = 0;
        int e = 0;

        if (!cJSON_IsObject(item) || (values && !cJSON_IsObject(values)) ||
            cJSON_GetArraySize(values) > 16)
                return -EBADMSG;
        e |= str_field(item, "name", true, &h->name);
        e |= str_field(item, "end", true, &h->end);
        e |= str_field(item, "message", false, &h->message);
        e |= num_field(item, "exit_status", 0, 255, &st);
        e |= num_field(item, "signal", 0, 64, &sig);
        e |= num_field(item, "ready_ms", -1, 1e12, &ready);
        e |= num_field(item, "held_ms", -1, 1e12, &held);
        if (e)
                return -EBADMSG;
        h->exit_status = (int)st;
        h->signal = (int)sig;
        h->ready_ms = (long)ready;
        h->held_ms = (long)held;
        h->lost = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(item, "lost_while_holding"));
        cJSON_ArrayForEach(v, values)
        {
                if (!cJSON_IsString(v) || strlen(v->string) > 64 || strlen(v->valuestring) > 256 ||
                    strv_pushf(&h->values, "%s=%s", v->string, v->valuestring) < 0)
                        return -EBADMSG;
        }
        return 0;
}

int run_holders_from_json(const cJSON *o, struct run_state *r)
{
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(o, "holders"), *item;

        if (!arr)
                return 0;
        if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) > RUN_HOLDERS_MAX)
                return -EBADMSG;
        cJSON_ArrayForEach(item, arr)
        {
                struct run_holder *h;
                int r2 = run_state_add_holder(r, &h);

                if (r2 < 0 || holder_from_json(item, h) < 0)
                        return -EBADMSG;
        }
        return 0;
}
