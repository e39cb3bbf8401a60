/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The run state: the names of its enumerated values, a run and its distribution, the bounded
 * history of finished runs, and the state file (state_json.c's text, saved atomically) with the
 * run lock.
 */
#include "core/state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <unistd.h>

#include "util/fileio.h"
#include "util/macro.h"
#include "util/str.h"
#include "util/strtable.h"

static const char *const run_phase_table[_PHASE_MAX] = {
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
DEFINE_STRING_TABLE_LOOKUP(run_phase, enum run_phase)

static const char *const create_outcome_table[_CREATE_OUTCOME_MAX] = {
        [CREATE_NOT_SENT] = NULL,     [CREATE_ANSWERED] = "answered",
        [CREATE_UNKNOWN] = "unknown", [CREATE_ADOPTED] = "adopted",
        [CREATE_LATE] = "late",       [CREATE_DEREGISTERED] = "deregistered",
        [CREATE_ABSENT] = "absent",
};
DEFINE_STRING_TABLE_LOOKUP(create_outcome, enum create_outcome)

static const char *const boot_check_stage_table[_BOOT_CHECK_STAGE_MAX] = {
        [BOOT_CHECK_LAUNCHING] = "launching",
        [BOOT_CHECK_WAITING] = "waiting",
        [BOOT_CHECK_PASSED] = "passed",
        [BOOT_CHECK_FAILED] = "failed",
};
DEFINE_STRING_TABLE_LOOKUP(boot_check_stage, enum boot_check_stage)

static const char *const consistency_table[_CONSISTENCY_MAX] = {
        [CONSISTENCY_UNSET] = NULL,
        [CONSISTENCY_FS_FROZEN] = "fs-frozen",
        [CONSISTENCY_REBOOTED] = "rebooted",
        [CONSISTENCY_CRASH] = "crash",
};
DEFINE_STRING_TABLE_LOOKUP(consistency, enum consistency)

static const char *const run_result_table[_RUN_RESULT_MAX] = {
        [RESULT_SUCCESS] = "success",
        [RESULT_FAILED] = "failed",
        [RESULT_INHERITED] = "inherited",
};
DEFINE_STRING_TABLE_LOOKUP(run_result, enum run_result)

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
        _cleanup_(run_state_freep) struct run_state *r = calloc(1, sizeof(*r));

        if (!r)
                return -ENOMEM;
        r->run_id = new_uuid();
        if (!r->run_id)
                return -ENOMEM;
        r->mode = mode;
        r->dry_run = dry_run;
        r->phase = PHASE_PREFLIGHT;
        r->freeze_window_ms = -1;
        r->create_call_ms = -1;
        r->started = r->updated = now_usec(CLOCK_REALTIME);
        *ret = TAKE_PTR(r);
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
        free(r->create_name);
        free(r->image_id);
        free(r->image_state);
        free(r->unencrypted_image_id);
        strv_free(r->unencrypted_snapshot_ids);
        free(r->error);
        free(r->boot_id);
        strv_free(r->frozen_mounts);
        run_state_clear_holders(r);
        run_state_clear_tags(r);
        for (size_t i = 0; i < r->n_dist; i++) {
                free(r->dist[i].region);
                free(r->dist[i].image_id);
                free(r->dist[i].state);
                free(r->dist[i].lt_version);
                strv_free(r->dist[i].done);
        }
        free(r->dist);
        run_state_targets_done(r);
        free(r->boot_check.instance_id);
        free(r->boot_check.reason);
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
        free(h->instance_id);
        free(h->image_id);
        free(h->image_name);
        free(h->error);
        *h = (struct history_entry){};
}

void state_done(struct state *s)
{
        run_state_free(s->current);
        for (size_t i = 0; i < s->n_history; i++)
                history_entry_done(&s->history[i]);
        state_grants_done(s);
        *s = (struct state){};
}

bool history_tracks_late_image(const struct history_entry *h)
{
        return h->result == RESULT_FAILED &&
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

static int finish_as(struct state *s, enum run_result result, usec_t now)
{
        struct run_state *r = s->current;
        struct history_entry h;

        if (!r)
                return 0;
        h = (struct history_entry){
                .run_id = TAKE_PTR(r->run_id),
                .result = result,
                .instance_id = TAKE_PTR(r->instance_id),
                .image_id = TAKE_PTR(r->image_id),
                .image_name = TAKE_PTR(r->image_name),
                .consistency = r->consistency,
                .error = TAKE_PTR(r->error),
                .create_outcome = r->create_outcome,
                .started = r->started,
                .finished = now,
        };
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
        return finish_as(s, s->current->phase == PHASE_DONE ? RESULT_SUCCESS : RESULT_FAILED, now);
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
        return finish_as(s, RESULT_INHERITED, now);
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
