/* SPDX-License-Identifier: Apache-2.0 */
/* Run state as JSON (cJSON), saved atomically, with a bounded history of finished runs. */
#include "core/state.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <unistd.h>

#include "util/fileio.h"
#include "util/json.h"
#include "util/macro.h"
#include "util/str.h"

static const char *const phase_names[_PHASE_MAX] = {
        [PHASE_PREFLIGHT] = "preflight",
        [PHASE_PRE_IMAGE] = "pre-image",
        [PHASE_PRE_FREEZE] = "pre-freeze",
        [PHASE_FREEZING] = "freezing",
        [PHASE_CREATING] = "creating",
        [PHASE_REBOOTING] = "rebooting",
        [PHASE_POST_THAW] = "post-thaw",
        [PHASE_WAITING] = "waiting",
        [PHASE_DISTRIBUTING] = "distributing",
        [PHASE_POST_IMAGE] = "post-image",
        [PHASE_DONE] = "done",
        [PHASE_FAILED] = "failed",
};

const char *run_phase_to_string(enum run_phase p)
{
        return (unsigned)p < _PHASE_MAX ? phase_names[p] : NULL;
}

int run_phase_from_string(const char *s)
{
        for (int i = 0; s && i < _PHASE_MAX; i++)
                if (streq(s, phase_names[i]))
                        return i;
        return -EINVAL;
}

static const char *const outcome_names[_CREATE_OUTCOME_MAX] = {
        [CREATE_NOT_SENT] = NULL,     [CREATE_ANSWERED] = "answered",
        [CREATE_UNKNOWN] = "unknown", [CREATE_ADOPTED] = "adopted",
        [CREATE_LATE] = "late",       [CREATE_DEREGISTERED] = "deregistered",
        [CREATE_ABSENT] = "absent",
};

const char *create_outcome_to_string(enum create_outcome o)
{
        return (unsigned)o < _CREATE_OUTCOME_MAX ? outcome_names[o] : NULL;
}

int create_outcome_from_string(const char *s)
{
        for (int i = 1; s && i < _CREATE_OUTCOME_MAX; i++)
                if (streq(s, outcome_names[i]))
                        return i;
        return -EINVAL;
}

const char *run_mode_to_string(enum run_mode m)
{
        return m == MODE_REBOOT ? "reboot" : "no-reboot";
}

int run_mode_from_string(const char *s)
{
        if (streq_ptr(s, "no-reboot"))
                return MODE_NO_REBOOT;
        if (streq_ptr(s, "reboot"))
                return MODE_REBOOT;
        return -EINVAL;
}

static char *new_uuid(void)
{
        uint8_t b[16];

        if (getrandom(b, sizeof(b), 0) != sizeof(b))
                return NULL;
        b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
        b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
        return strprintf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                         b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
                         b[12], b[13], b[14], b[15]);
}

int run_state_new(enum run_mode mode, bool dry_run, struct run_state **ret)
{
        struct run_state *r = calloc(1, sizeof(*r));

        if (!r)
                return -ENOMEM;
        r->run_id = new_uuid();
        if (!r->run_id) {
                free(r);
                return -ENOMEM;
        }
        r->mode = mode;
        r->dry_run = dry_run;
        r->phase = PHASE_PREFLIGHT;
        r->freeze_window_ms = -1;
        r->create_call_ms = -1;
        r->started = r->updated = now_usec(CLOCK_REALTIME);
        *ret = r;
        return 0;
}

struct run_state *run_state_free(struct run_state *r)
{
        if (!r)
                return NULL;
        free(r->run_id);
        free(r->instance_id);
        free(r->region);
        free(r->image_name);
        free(r->image_id);
        free(r->image_state);
        free(r->consistency);
        free(r->error);
        free(r->boot_id);
        strv_free(r->frozen_mounts);
        for (size_t i = 0; i < r->n_dist; i++) {
                free(r->dist[i].region);
                free(r->dist[i].image_id);
                free(r->dist[i].state);
                free(r->dist[i].lt_version);
                strv_free(r->dist[i].done);
        }
        free(r->dist);
        free(r);
        return NULL;
}

int run_state_add_dist(struct run_state *r, const char *region, struct run_dist **ret)
{
        struct run_dist *v;

        if (!region)
                return -EINVAL;
        if (r->n_dist >= RUN_DIST_MAX)
                return -E2BIG;
        v = reallocarray(r->dist, r->n_dist + 1, sizeof(*v));
        if (!v)
                return -ENOMEM;
        r->dist = v;
        v[r->n_dist] = (struct run_dist){.region = strdup(region)};
        if (!v[r->n_dist].region)
                return -ENOMEM;
        if (ret)
                *ret = &v[r->n_dist];
        r->n_dist++;
        return 0;
}

struct run_dist *run_state_find_dist(const struct run_state *r, const char *region)
{
        for (size_t i = 0; region && i < r->n_dist; i++)
                if (streq(r->dist[i].region, region))
                        return &r->dist[i];
        return NULL;
}

bool run_dist_done(const struct run_dist *d, const char *step)
{
        for (char **s = d->done; s && *s; s++)
                if (streq(*s, step))
                        return true;
        return false;
}

int run_dist_mark(struct run_dist *d, const char *step)
{
        if (run_dist_done(d, step))
                return 0;
        if (strv_length(d->done) >= RUN_DIST_STEPS_MAX)
                return -E2BIG;
        return strv_push(&d->done, step);
}

int run_state_set(char **field, const char *value)
{
        char *n = NULL;

        if (value) {
                n = strdup(value);
                if (!n)
                        return -ENOMEM;
        }
        free(*field);
        *field = n;
        return 0;
}

static void history_entry_done(struct history_entry *h)
{
        free(h->run_id);
        free(h->result);
        free(h->instance_id);
        free(h->image_id);
        free(h->image_name);
        free(h->consistency);
        free(h->error);
        *h = (struct history_entry){};
}

void state_done(struct state *s)
{
        run_state_free(s->current);
        for (size_t i = 0; i < s->n_history; i++)
                history_entry_done(&s->history[i]);
        *s = (struct state){};
}

bool history_tracks_late_image(const struct history_entry *h)
{
        return streq_ptr(h->result, "failed") &&
               (h->create_outcome == CREATE_UNKNOWN || h->create_outcome == CREATE_LATE);
}

/* Make room for one entry: the oldest goes, unless it is still needed to track an image. */
static void evict_one(struct state *s)
{
        size_t victim = s->n_history - 1;

        for (size_t i = s->n_history; i-- > 0;)
                if (!history_tracks_late_image(&s->history[i])) {
                        victim = i;
                        break;
                }
        history_entry_done(&s->history[victim]);
        memmove(&s->history[victim], &s->history[victim + 1],
                (s->n_history - victim - 1) * sizeof(s->history[0]));
        s->n_history--;
}

static int finish_as(struct state *s, const char *result, usec_t now)
{
        struct run_state *r = s->current;
        struct history_entry h;

        if (!r)
                return 0;
        h = (struct history_entry){
                .run_id = TAKE_PTR(r->run_id),
                .result = strdup(result),
                .instance_id = TAKE_PTR(r->instance_id),
                .image_id = TAKE_PTR(r->image_id),
                .image_name = TAKE_PTR(r->image_name),
                .consistency = TAKE_PTR(r->consistency),
                .error = TAKE_PTR(r->error),
                .create_outcome = r->create_outcome,
                .started = r->started,
                .finished = now,
        };
        if (!h.result) {
                history_entry_done(&h);
                return -ENOMEM;
        }
        if (s->n_history == STATE_HISTORY_MAX)
                evict_one(s);
        memmove(&s->history[1], &s->history[0], s->n_history * sizeof(s->history[0]));
        s->history[0] = h;
        s->n_history++;
        s->current = run_state_free(s->current);
        return 0;
}

int state_finish_current(struct state *s, usec_t now)
{
        if (!s->current)
                return 0;
        return finish_as(s, s->current->phase == PHASE_DONE ? "success" : "failed", now);
}

int state_inherit_current(struct state *s, usec_t now)
{
        struct run_state *r = s->current;
        char *why;

        if (!r)
                return 0;
        why = strprintf("run of instance %s in phase %s, inherited with the image this instance "
                        "was launched from; not resumed",
                        strna(r->instance_id), run_phase_to_string(r->phase));
        if (!why)
                return -ENOMEM;
        free(r->error);
        r->error = why;
        return finish_as(s, "inherited", now);
}

const char *state_this_boot(void)
{
        static char id[64];
        static bool done;
        _cleanup_free_ char *text = NULL;
        size_t len;

        if (done)
                return id[0] ? id : NULL;
        done = true;
        if (read_file_bounded("/proc/sys/kernel/random/boot_id", sizeof(id) - 1, &text, &len) < 0)
                return NULL;
        text[strcspn(text, "\n")] = '\0';
        snprintf(id, sizeof(id), "%s", text);
        return id[0] ? id : NULL;
}

bool run_state_frozen_in_this_boot(const struct run_state *r)
{
        const char *boot = state_this_boot();

        return r && (r->phase == PHASE_FREEZING || r->phase == PHASE_CREATING) && boot &&
               streq_ptr(r->boot_id, boot);
}

/* --- JSON --- */

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
        e |= json_add_str(o, "consistency", r->consistency);
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
                t = cJSON_AddObjectToObject(times, phase_names[i]);
                if (!t)
                        break;
                add_num(t, "start_us", (double)r->times[i].start);
                add_num(t, "end_us", (double)r->times[i].end);
                if (r->times[i].end >= r->times[i].start)
                        add_num(t, "ms",
                                (double)((r->times[i].end - r->times[i].start) / USEC_PER_MSEC));
        }
        if (r->n_dist > 0 && dist_to_json(o, r) < 0)
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
                json_add_str(e, "result", h->result);
                json_add_str(e, "instance_id", h->instance_id);
                json_add_str(e, "image_id", h->image_id);
                json_add_str(e, "image_name", h->image_name);
                json_add_str(e, "consistency", h->consistency);
                json_add_str(e, "error", h->error);
                json_add_str(e, "create_outcome", create_outcome_to_string(h->create_outcome));
                add_num(e, "started_us", (double)h->started);
                add_num(e, "finished_us", (double)h->finished);
                cJSON_AddItemToArray(hist, e);
        }
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

static int get_outcome(const cJSON *o, enum create_outcome *ret)
{
        _cleanup_free_ char *s = NULL;
        int r = get_str(o, "create_outcome", &s);

        if (r < 0 || !s)
                return r;
        r = create_outcome_from_string(s);
        if (r < 0)
                return -EBADMSG;
        *ret = (enum create_outcome)r;
        return 0;
}

static int dist_from_json(const cJSON *arr, struct run_state *r)
{
        const cJSON *item;

        if (!arr)
                return 0;
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
        return 0;
}

static int run_from_json(const cJSON *o, struct run_state **ret)
{
        struct run_state *r = calloc(1, sizeof(*r));
        _cleanup_free_ char *phase = NULL, *mode = NULL;
        const cJSON *mounts, *times, *dry;
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
        e |= get_str(o, "consistency", &r->consistency);
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
        e |= get_outcome(o, &r->create_outcome);
        if (e)
                goto bad;
        p = run_phase_from_string(phase);
        m = run_mode_from_string(mode);
        if (!r->run_id || p < 0 || m < 0)
                goto bad;
        r->phase = (enum run_phase)p;
        r->mode = (enum run_mode)m;
        dry = cJSON_GetObjectItemCaseSensitive(o, "dry_run");
        r->dry_run = cJSON_IsTrue(dry);
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
                const cJSON *t = cJSON_GetObjectItemCaseSensitive(times, phase_names[i]);
                if (!t)
                        continue;
                if (!cJSON_IsObject(t) || get_usec(t, "start_us", &r->times[i].start) < 0 ||
                    get_usec(t, "end_us", &r->times[i].end) < 0)
                        goto bad;
        }
        if (dist_from_json(cJSON_GetObjectItemCaseSensitive(o, "distribution"), r) < 0)
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
                int e = 0;

                if (s.n_history >= STATE_HISTORY_MAX)
                        break;
                if (!cJSON_IsObject(i))
                        goto out;
                h = &s.history[s.n_history++];
                e |= get_str(i, "run_id", &h->run_id);
                e |= get_str(i, "result", &h->result);
                e |= get_str(i, "instance_id", &h->instance_id);
                e |= get_str(i, "image_id", &h->image_id);
                e |= get_str(i, "image_name", &h->image_name);
                e |= get_str(i, "consistency", &h->consistency);
                e |= get_str(i, "error", &h->error);
                e |= get_usec(i, "started_us", &h->started);
                e |= get_usec(i, "finished_us", &h->finished);
                e |= get_outcome(i, &h->create_outcome);
                if (e || !h->run_id || !h->result)
                        goto out;
        }
        *ret = s;
        s = (struct state){};
        r = 0;
out:
        state_done(&s);
        cJSON_Delete(root);
        return r;
}

int state_load(const char *dir, struct state *ret)
{
        _cleanup_free_ char *data = NULL;
        size_t len;
        int r;

        r = read_file_in(dir, "state.json", STATE_MAX_SIZE, &data, &len);
        if (r < 0)
                return r;
        if (!data) {
                *ret = (struct state){};
                return 0;
        }
        return state_parse(data, len, ret);
}

int state_save(const char *dir, const struct state *s)
{
        _cleanup_free_ char *path = strprintf("%s/state.json", dir), *text = state_format(s);
        int r;

        if (!path || !text)
                return -ENOMEM;
        r = mkdir_parents(dir, 0700);
        if (r < 0)
                return r;
        return write_file_atomic(path, text, strlen(text), 0600);
}

int state_save_run(const char *dir, struct state *s, struct run_state *run)
{
        if (run->dry_run)
                return 0;
        run->updated = now_usec(CLOCK_REALTIME);
        if (run_state_set(&run->boot_id, state_this_boot()) < 0)
                return -ENOMEM;
        return state_save(dir, s);
}

int state_lock(const char *dir)
{
        _cleanup_free_ char *path = strprintf("%s/run.lock", dir);
        int fd, r;

        if (!path)
                return -ENOMEM;
        r = mkdir_parents(dir, 0700);
        if (r < 0)
                return r;
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
        if (fd < 0)
                return -errno;
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                r = errno == EWOULDBLOCK ? -EBUSY : -errno;
                close(fd);
                return r;
        }
        return fd;
}
