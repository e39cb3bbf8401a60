/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The run state's JSON form (state.json, `status --json`, `run --json`): writing it, and reading
 * it back with a bound on every string, number and list, so that a corrupt file is -EBADMSG.
 */
#include "core/state.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/json.h"
#include "util/macro.h"
#include "util/str.h"

/* get_enum() writes enum fields through an int. */
_Static_assert(sizeof(enum create_outcome) == sizeof(int) &&
                       sizeof(enum boot_check_stage) == sizeof(int) &&
                       sizeof(enum consistency) == sizeof(int) &&
                       sizeof(enum run_result) == sizeof(int),
               "enums are ints");

static int add_num(cJSON *o, const char *k, double v)
{
        return cJSON_AddNumberToObject(o, k, v) ? 0 : -ENOMEM;
}

static int dist_to_json(cJSON *o, const struct run_state *r)
{
        cJSON *arr = cJSON_AddArrayToObject(o, "distribution");

        for (size_t i = 0; arr && i < r->n_dist; i++) {
                const struct run_dist *d = &r->dist[i];
                cJSON *item = cJSON_CreateObject(), *done;
                int e = 0;

                if (!item)
                        return -ENOMEM;
                cJSON_AddItemToArray(arr, item);
                e |= json_add_str(item, "region", d->region);
                e |= json_add_str(item, "image_id", d->image_id);
                e |= json_add_str(item, "state", d->state);
                e |= json_add_str(item, "lt_version", d->lt_version);
                done = cJSON_AddArrayToObject(item, "done");
                for (char **s = d->done; done && s && *s; s++)
                        cJSON_AddItemToArray(done, cJSON_CreateString(*s));
                if (e || !done)
                        return -ENOMEM;
        }
        return arr ? 0 : -ENOMEM;
}

/* Encryption in place (distribute_encrypt.c): written only once it is under way. */
static int encrypt_to_json(cJSON *o, const struct run_state *r)
{
        cJSON *snaps;
        int e = 0;

        e |= json_add_str(o, "create_name", r->create_name);
        if (!r->unencrypted_image_id)
                return e;
        e |= json_add_str(o, "unencrypted_image_id", r->unencrypted_image_id);
        e |= cJSON_AddBoolToObject(o, "unencrypted_deregistered", r->unencrypted_deregistered)
                     ? 0
                     : -ENOMEM;
        snaps = cJSON_AddArrayToObject(o, "unencrypted_snapshot_ids");
        for (char **s = r->unencrypted_snapshot_ids; snaps && s && *s; s++)
                cJSON_AddItemToArray(snaps, cJSON_CreateString(*s));
        return e || !snaps ? -ENOMEM : 0;
}

/* The boot check (distribute/bootcheck.c): written only once it has started. */
static int boot_check_to_json(cJSON *o, const struct run_state *r)
{
        const struct run_boot_check *b = &r->boot_check;
        cJSON *c;
        int e = 0;

        if (b->stage == BOOT_CHECK_NONE)
                return 0;
        c = cJSON_AddObjectToObject(o, "boot_check");
        if (!c)
                return -ENOMEM;
        e |= json_add_str(c, "stage", boot_check_stage_to_string(b->stage));
        e |= json_add_str(c, "instance_id", b->instance_id);
        e |= json_add_str(c, "reason", b->reason);
        e |= add_num(c, "started_us", (double)b->started);
        e |= cJSON_AddBoolToObject(c, "terminated", b->terminated) ? 0 : -ENOMEM;
        e |= cJSON_AddBoolToObject(c, "image_handled", b->image_handled) ? 0 : -ENOMEM;
        return e ? -ENOMEM : 0;
}

cJSON *run_state_to_json(const struct run_state *r)
{
        cJSON *o = cJSON_CreateObject(), *times, *mounts;
        int e = 0;

        if (!o)
                return NULL;
        e |= json_add_str(o, "run_id", r->run_id);
        e |= json_add_str(o, "phase", run_phase_to_string(r->phase));
        e |= json_add_str(o, "mode", run_mode_to_string(r->mode));
        e |= cJSON_AddBoolToObject(o, "dry_run", r->dry_run) ? 0 : -ENOMEM;
        e |= json_add_str(o, "instance_id", r->instance_id);
        e |= json_add_str(o, "region", r->region);
        e |= json_add_str(o, "image_name", r->image_name);
        e |= json_add_str(o, "image_id", r->image_id);
        e |= json_add_str(o, "image_state", r->image_state);
        e |= json_add_str(o, "consistency", consistency_to_string(r->consistency));
        e |= json_add_str(o, "error", r->error);
        e |= json_add_str(o, "boot_id", r->boot_id);
        e |= add_num(o, "freeze_window_ms", (double)r->freeze_window_ms);
        e |= add_num(o, "create_call_ms", (double)r->create_call_ms);
        e |= json_add_str(o, "create_outcome", create_outcome_to_string(r->create_outcome));
        if (r->unknown_since)
                e |= add_num(o, "unknown_since_us", (double)r->unknown_since);
        e |= add_num(o, "boots", r->boots);
        e |= add_num(o, "started_us", (double)r->started);
        e |= add_num(o, "updated_us", (double)r->updated);
        mounts = cJSON_AddArrayToObject(o, "frozen_mounts");
        for (char **m = r->frozen_mounts; mounts && m && *m; m++)
                cJSON_AddItemToArray(mounts, cJSON_CreateString(*m));
        times = cJSON_AddObjectToObject(o, "phase_times");
        for (int i = 0; times && i < _PHASE_MAX; i++) {
                cJSON *t;
                if (r->times[i].start == 0)
                        continue;
                t = cJSON_AddObjectToObject(times, run_phase_to_string(i));
                if (!t)
                        break;
                add_num(t, "start_us", (double)r->times[i].start);
                add_num(t, "end_us", (double)r->times[i].end);
                if (r->times[i].end >= r->times[i].start)
                        add_num(t, "ms",
                                (double)((r->times[i].end - r->times[i].start) / USEC_PER_MSEC));
        }
        if (encrypt_to_json(o, r) < 0 || boot_check_to_json(o, r) < 0 ||
            (r->n_dist > 0 && dist_to_json(o, r) < 0) || run_targets_to_json(r, o) < 0 ||
            run_holders_to_json(r, o) < 0 || run_tags_to_json(r, o) < 0)
                e = -ENOMEM;
        if (e || !mounts || !times) {
                cJSON_Delete(o);
                return NULL;
        }
        return o;
}

/* The text of the tree o (cJSON's formatted print), which is freed; NULL when o is NULL. */
static char *format_tree(cJSON *o)
{
        char *s = o ? cJSON_Print(o) : NULL;

        cJSON_Delete(o);
        return s;
}

char *run_state_format(const struct run_state *r)
{
        return format_tree(run_state_to_json(r));
}

cJSON *state_to_json(const struct state *s)
{
        cJSON *o = cJSON_CreateObject(), *hist;

        if (!o)
                return NULL;
        cJSON_AddNumberToObject(o, "version", 1);
        if (s->current) {
                cJSON *c = run_state_to_json(s->current);
                if (!c)
                        goto fail;
                cJSON_AddItemToObject(o, "current", c);
        } else {
                cJSON_AddNullToObject(o, "current");
        }
        hist = cJSON_AddArrayToObject(o, "history");
        if (!hist)
                goto fail;
        for (size_t i = 0; i < s->n_history; i++) {
                const struct history_entry *h = &s->history[i];
                cJSON *e = cJSON_CreateObject();
                if (!e)
                        goto fail;
                json_add_str(e, "run_id", h->run_id);
                json_add_str(e, "result", run_result_to_string(h->result));
                json_add_str(e, "instance_id", h->instance_id);
                json_add_str(e, "image_id", h->image_id);
                json_add_str(e, "image_name", h->image_name);
                json_add_str(e, "consistency", consistency_to_string(h->consistency));
                json_add_str(e, "error", h->error);
                json_add_str(e, "create_outcome", create_outcome_to_string(h->create_outcome));
                add_num(e, "started_us", (double)h->started);
                add_num(e, "finished_us", (double)h->finished);
                cJSON_AddItemToArray(hist, e);
        }
        if (state_grants_to_json(s, o) < 0)
                goto fail;
        return o;
fail:
        cJSON_Delete(o);
        return NULL;
}

char *state_format(const struct state *s)
{
        return format_tree(state_to_json(s));
}

/* Strings of at most 1 KiB; anything else in a string field is a corrupt state file. */
static int get_str(const cJSON *o, const char *k, char **ret)
{
        const cJSON *i = cJSON_GetObjectItemCaseSensitive(o, k);

        if (!i || cJSON_IsNull(i))
                return 0;
        if (!cJSON_IsString(i) || strlen(i->valuestring) > 1024)
                return -EBADMSG;
        return run_state_set(ret, i->valuestring);
}

static int get_num(const cJSON *o, const char *k, double min, double max, double *ret)
{
        const cJSON *i = cJSON_GetObjectItemCaseSensitive(o, k);

        if (!i)
                return 0;
        if (!cJSON_IsNumber(i) || !(i->valuedouble >= min && i->valuedouble <= max))
                return -EBADMSG;
        *ret = i->valuedouble;
        return 0;
}

static int get_usec(const cJSON *o, const char *k, usec_t *ret)
{
        double d = 0;
        int r = get_num(o, k, 0, 9e15, &d);

        if (r >= 0)
                *ret = (usec_t)d;
        return r;
}

/* An enumerated value by its name; absent or null leaves *ret as it is. */
static int get_enum(const cJSON *o, const char *k, int (*from_string)(const char *), int *ret)
{
        _cleanup_free_ char *s = NULL;
        int r = get_str(o, k, &s);

        if (r < 0 || !s)
                return r;
        r = from_string(s);
        if (r < 0)
                return -EBADMSG;
        *ret = r;
        return 0;
}

/* The "distribution" list and the copies in target accounts (absent: none). */
static int dist_from_json(const cJSON *o, struct run_state *r)
{
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(o, "distribution"), *item;

        if (!arr)
                return run_targets_from_json(o, r);
        if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) > RUN_DIST_MAX)
                return -EBADMSG;
        cJSON_ArrayForEach(item, arr)
        {
                _cleanup_free_ char *region = NULL;
                const cJSON *done, *s;
                struct run_dist *d;
                int e = 0;

                if (!cJSON_IsObject(item) || get_str(item, "region", &region) < 0 || !region ||
                    run_state_find_dist(r, region) || run_state_add_dist(r, region, &d) < 0)
                        return -EBADMSG;
                e |= get_str(item, "image_id", &d->image_id);
                e |= get_str(item, "state", &d->state);
                e |= get_str(item, "lt_version", &d->lt_version);
                done = cJSON_GetObjectItemCaseSensitive(item, "done");
                if (e || (done &&
                          (!cJSON_IsArray(done) || cJSON_GetArraySize(done) > RUN_DIST_STEPS_MAX)))
                        return -EBADMSG;
                cJSON_ArrayForEach(s, done)
                {
                        if (!cJSON_IsString(s) || strlen(s->valuestring) > 64 ||
                            run_dist_mark(d, s->valuestring) < 0)
                                return -EBADMSG;
                }
        }
        return run_targets_from_json(o, r);
}

/* The fields of encryption in place; a state written before it had them has none (0). */
static int encrypt_from_json(const cJSON *o, struct run_state *r)
{
        const cJSON *snaps = cJSON_GetObjectItemCaseSensitive(o, "unencrypted_snapshot_ids");
        const cJSON *i;
        int e = 0;

        e |= get_str(o, "create_name", &r->create_name);
        e |= get_str(o, "unencrypted_image_id", &r->unencrypted_image_id);
        r->unencrypted_deregistered =
                cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "unencrypted_deregistered"));
        if (e || (snaps && (!cJSON_IsArray(snaps) || cJSON_GetArraySize(snaps) > 128)))
                return -EBADMSG;
        cJSON_ArrayForEach(i, snaps)
        {
                if (!cJSON_IsString(i) || strlen(i->valuestring) > 64 ||
                    strv_push(&r->unencrypted_snapshot_ids, i->valuestring) < 0)
                        return -EBADMSG;
        }
        return 0;
}

/* The boot check's fields; a state without them has none (BOOT_CHECK_NONE). */
static int boot_check_from_json(const cJSON *o, struct run_state *r)
{
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "boot_check");
        struct run_boot_check *b = &r->boot_check;
        int e = 0;

        if (!c)
                return 0;
        if (!cJSON_IsObject(c))
                return -EBADMSG;
        e |= get_enum(c, "stage", boot_check_stage_from_string, (int *)&b->stage);
        e |= get_str(c, "instance_id", &b->instance_id);
        e |= get_str(c, "reason", &b->reason);
        e |= get_usec(c, "started_us", &b->started);
        b->terminated = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "terminated"));
        b->image_handled = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "image_handled"));
        return e || b->stage == BOOT_CHECK_NONE ? -EBADMSG : 0;
}

static int run_from_json(const cJSON *o, struct run_state **ret)
{
        struct run_state *r = calloc(1, sizeof(*r));
        _cleanup_free_ char *phase = NULL, *mode = NULL;
        const cJSON *mounts, *times;
        double d;
        int e = 0, p, m;

        if (!r)
                return -ENOMEM;
        r->freeze_window_ms = r->create_call_ms = -1;
        if (!cJSON_IsObject(o))
                goto bad;
        e |= get_str(o, "run_id", &r->run_id);
        e |= get_str(o, "phase", &phase);
        e |= get_str(o, "mode", &mode);
        e |= get_str(o, "instance_id", &r->instance_id);
        e |= get_str(o, "region", &r->region);
        e |= get_str(o, "image_name", &r->image_name);
        e |= get_str(o, "image_id", &r->image_id);
        e |= get_str(o, "image_state", &r->image_state);
        e |= get_enum(o, "consistency", consistency_from_string, (int *)&r->consistency);
        e |= get_str(o, "error", &r->error);
        e |= get_str(o, "boot_id", &r->boot_id);
        d = -1;
        e |= get_num(o, "freeze_window_ms", -1, 1e12, &d);
        r->freeze_window_ms = (long)d;
        d = -1;
        e |= get_num(o, "create_call_ms", -1, 1e12, &d);
        r->create_call_ms = (long)d;
        d = 0;
        e |= get_num(o, "boots", 0, 1e6, &d);
        r->boots = (unsigned)d;
        e |= get_usec(o, "started_us", &r->started);
        e |= get_usec(o, "updated_us", &r->updated);
        e |= get_usec(o, "unknown_since_us", &r->unknown_since);
        e |= get_enum(o, "create_outcome", create_outcome_from_string, (int *)&r->create_outcome);
        if (e)
                goto bad;
        p = run_phase_from_string(phase);
        m = run_mode_from_string(mode);
        if (!r->run_id || p < 0 || m < 0)
                goto bad;
        r->phase = (enum run_phase)p;
        r->mode = (enum run_mode)m;
        r->dry_run = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "dry_run"));
        mounts = cJSON_GetObjectItemCaseSensitive(o, "frozen_mounts");
        if (mounts) {
                const cJSON *i;
                if (!cJSON_IsArray(mounts) || cJSON_GetArraySize(mounts) > 256)
                        goto bad;
                cJSON_ArrayForEach(i, mounts)
                {
                        if (!cJSON_IsString(i) || i->valuestring[0] != '/' ||
                            strlen(i->valuestring) > 4096)
                                goto bad;
                        if (strv_push(&r->frozen_mounts, i->valuestring) < 0)
                                goto bad;
                }
        }
        times = cJSON_GetObjectItemCaseSensitive(o, "phase_times");
        if (times && !cJSON_IsObject(times))
                goto bad;
        for (int i = 0; times && i < _PHASE_MAX; i++) {
                const cJSON *t = cJSON_GetObjectItemCaseSensitive(times, run_phase_to_string(i));
                if (!t)
                        continue;
                if (!cJSON_IsObject(t) || get_usec(t, "start_us", &r->times[i].start) < 0 ||
                    get_usec(t, "end_us", &r->times[i].end) < 0)
                        goto bad;
        }
        if (encrypt_from_json(o, r) < 0 || boot_check_from_json(o, r) < 0 ||
            dist_from_json(o, r) < 0 || run_holders_from_json(o, r) < 0 ||
            run_tags_from_json(o, r) < 0)
                goto bad;
        *ret = r;
        return 0;
bad:
        run_state_free(r);
        return -EBADMSG;
}

int run_state_copy(const struct run_state *r, struct run_state **ret)
{
        cJSON *o = run_state_to_json(r);
        int e;

        if (!o)
                return -ENOMEM;
        e = run_from_json(o, ret);
        cJSON_Delete(o);
        return e;
}

int state_parse(const char *json, size_t len, struct state *ret)
{
        struct state s = {};
        const cJSON *cur, *hist, *i;
        cJSON *root;
        int r = -EBADMSG;

        if (len > STATE_MAX_SIZE)
                return -EFBIG;
        root = cJSON_ParseWithLength(json, len);
        if (!root || !cJSON_IsObject(root))
                goto out;
        cur = cJSON_GetObjectItemCaseSensitive(root, "current");
        if (cur && !cJSON_IsNull(cur) && run_from_json(cur, &s.current) < 0)
                goto out;
        hist = cJSON_GetObjectItemCaseSensitive(root, "history");
        if (hist && !cJSON_IsArray(hist))
                goto out;
        cJSON_ArrayForEach(i, hist)
        {
                struct history_entry *h;
                int e = 0, result = -1;

                if (s.n_history >= STATE_HISTORY_MAX)
                        break;
                if (!cJSON_IsObject(i))
                        goto out;
                h = &s.history[s.n_history++];
                e |= get_str(i, "run_id", &h->run_id);
                e |= get_enum(i, "result", run_result_from_string, &result);
                e |= get_str(i, "instance_id", &h->instance_id);
                e |= get_str(i, "image_id", &h->image_id);
                e |= get_str(i, "image_name", &h->image_name);
                e |= get_enum(i, "consistency", consistency_from_string, (int *)&h->consistency);
                e |= get_str(i, "error", &h->error);
                e |= get_usec(i, "started_us", &h->started);
                e |= get_usec(i, "finished_us", &h->finished);
                e |= get_enum(i, "create_outcome", create_outcome_from_string,
                              (int *)&h->create_outcome);
                if (e || !h->run_id || result < 0)
                        goto out;
                h->result = (enum run_result)result;
        }
        if (state_grants_from_json(root, &s) < 0)
                goto out;
        *ret = s;
        s = (struct state){};
        r = 0;
out:
        state_done(&s);
        cJSON_Delete(root);
        return r;
}
