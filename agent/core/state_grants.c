/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The KMS grants runs made, in the state file's top-level "grants" list: kept apart from the
 * current run and the history, which new runs replace, because a grant outlives the run that
 * made it until it is revoked. A state file without the list (older versions) has none.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/state.h"
#include "util/json.h"
#include "util/macro.h"

/* The string fields of a record, by their name in the file. */
static const struct {
        const char *name;
        size_t offset;
        bool required;
} grant_fields[] = {
        {"grant_id", offsetof(struct grant_record, grant_id), true},
        {"key_arn", offsetof(struct grant_record, key_arn), true},
        {"grantee", offsetof(struct grant_record, grantee), true},
        {"image_id", offsetof(struct grant_record, image_id), false},
        {"region", offsetof(struct grant_record, region), true},
        {"run_id", offsetof(struct grant_record, run_id), false},
};

static char **field(struct grant_record *g, size_t i)
{
        return (char **)((char *)g + grant_fields[i].offset);
}

static void grant_record_done(struct grant_record *g)
{
        for (size_t i = 0; i < ELEMENTSOF(grant_fields); i++)
                free(*field(g, i));
        *g = (struct grant_record){};
}

void state_grants_done(struct state *s)
{
        for (size_t i = 0; i < s->n_grants; i++)
                grant_record_done(&s->grants[i]);
        free(s->grants);
        s->grants = NULL;
        s->n_grants = 0;
}

struct grant_record *state_find_grant(const struct state *s, const char *grant_id)
{
        for (size_t i = 0; grant_id && i < s->n_grants; i++)
                if (streq(s->grants[i].grant_id, grant_id))
                        return &s->grants[i];
        return NULL;
}

/* Room for one more: drop the oldest revoked record when the list is full. */
static int make_room(struct state *s)
{
        struct grant_record *n;

        if (s->n_grants >= STATE_GRANTS_MAX) {
                size_t i = 0;

                while (i < s->n_grants && s->grants[i].revoked == 0)
                        i++;
                if (i == s->n_grants)
                        return -E2BIG;
                grant_record_done(&s->grants[i]);
                memmove(&s->grants[i], &s->grants[i + 1],
                        (s->n_grants - i - 1) * sizeof(*s->grants));
                s->n_grants--;
                return 0;
        }
        n = reallocarray(s->grants, s->n_grants + 1, sizeof(*s->grants));
        if (!n)
                return -ENOMEM;
        s->grants = n;
        return 0;
}

int state_add_grant(struct state *s, const struct grant_record *g)
{
        struct grant_record c = {.created = g->created, .revoked = g->revoked};
        int r;

        for (size_t i = 0; i < ELEMENTSOF(grant_fields); i++) {
                const char *v = *field((struct grant_record *)g, i);

                if (v && !(*field(&c, i) = strdup(v))) {
                        grant_record_done(&c);
                        return -ENOMEM;
                }
        }
        r = make_room(s);
        if (r < 0) {
                grant_record_done(&c);
                return r;
        }
        s->grants[s->n_grants++] = c;
        return 0;
}

cJSON *grant_record_to_json(const struct grant_record *g)
{
        cJSON *o = cJSON_CreateObject();
        int e = 0;

        if (!o)
                return NULL;
        for (size_t i = 0; i < ELEMENTSOF(grant_fields); i++)
                e |= json_add_str(o, grant_fields[i].name, *field((struct grant_record *)g, i));
        e |= !cJSON_AddNumberToObject(o, "created_us", (double)g->created);
        e |= !cJSON_AddNumberToObject(o, "revoked_us", (double)g->revoked);
        if (e) {
                cJSON_Delete(o);
                return NULL;
        }
        return o;
}

int state_grants_to_json(const struct state *s, cJSON *root)
{
        cJSON *arr = cJSON_AddArrayToObject(root, "grants");

        if (!arr)
                return -ENOMEM;
        for (size_t i = 0; i < s->n_grants; i++) {
                cJSON *o = grant_record_to_json(&s->grants[i]);

                if (!o)
                        return -ENOMEM;
                cJSON_AddItemToArray(arr, o);
        }
        return 0;
}

/* A time in microseconds; absent is 0. */
static int usec_from_json(const cJSON *o, const char *k, usec_t *ret)
{
        const cJSON *i = cJSON_GetObjectItemCaseSensitive(o, k);

        if (!i)
                return 0;
        if (!cJSON_IsNumber(i) || !(i->valuedouble >= 0 && i->valuedouble <= 9e15))
                return -EBADMSG;
        *ret = (usec_t)i->valuedouble;
        return 0;
}

static int record_from_json(const cJSON *o, struct grant_record *g)
{
        if (!cJSON_IsObject(o))
                return -EBADMSG;
        for (size_t i = 0; i < ELEMENTSOF(grant_fields); i++) {
                const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, grant_fields[i].name);

                if (!v || cJSON_IsNull(v)) {
                        if (grant_fields[i].required)
                                return -EBADMSG;
                        continue;
                }
                if (!cJSON_IsString(v) || strlen(v->valuestring) > 2048)
                        return -EBADMSG;
                if (!(*field(g, i) = strdup(v->valuestring)))
                        return -ENOMEM;
        }
        if (usec_from_json(o, "created_us", &g->created) < 0 ||
            usec_from_json(o, "revoked_us", &g->revoked) < 0)
                return -EBADMSG;
        return 0;
}

int state_grants_from_json(const cJSON *root, struct state *s)
{
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "grants"), *i;
        int r = 0;

        if (!arr || cJSON_IsNull(arr))
                return 0;
        if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) > STATE_GRANTS_MAX)
                return -EBADMSG;
        cJSON_ArrayForEach(i, arr)
        {
                struct grant_record g = {};

                r = record_from_json(i, &g);
                if (r >= 0)
                        r = state_add_grant(s, &g);
                grant_record_done(&g);
                if (r < 0)
                        return r;
        }
        return 0;
}
