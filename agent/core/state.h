/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Persistent run state (/var/lib/ec2-imaged/state.json): the current run's phase and what it has
 * learned (image name, image id, frozen mounts), plus a short history of finished runs. Saved
 * atomically before every step that cannot be undone, so that a crash or a reboot resumes.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "core/config.h" /* enum run_mode */
#include "util/macro.h"
#include "util/timeutil.h"

struct cJSON;

#define STATE_DEFAULT_DIR "/var/lib/ec2-imaged"
#define STATE_MAX_SIZE    (256u * 1024u)
#define STATE_HISTORY_MAX 20

enum run_phase {
        PHASE_PREFLIGHT,    /* checks and the image name; nothing changed yet */
        PHASE_PRE_IMAGE,    /* pre-image hooks */
        PHASE_PRE_FREEZE,   /* pre-freeze hooks (no-reboot) */
        PHASE_FREEZING,     /* filesystems may be frozen: thaw on start if found here */
        PHASE_CREATING,     /* CreateImage sent or about to be: look the name up before retrying */
        PHASE_REBOOTING,    /* reboot mode: CreateImage sent, EC2 will stop us */
        PHASE_POST_THAW,    /* post-thaw hooks (no-reboot) */
        PHASE_WAITING,      /* waiting for the image to become available */
        PHASE_DISTRIBUTING, /* copies, sharing, lifecycle, publishing ([distribute]) */
        PHASE_POST_IMAGE,   /* post-image hooks */
        PHASE_DONE,
        PHASE_FAILED,
        _PHASE_MAX,
};

/* How far the image can be trusted: written in the state and on the image's tag. */
enum consistency {
        CONSISTENCY_UNSET, /* not settled yet (null in the file) */
        CONSISTENCY_FS_FROZEN,
        CONSISTENCY_REBOOTED,
        CONSISTENCY_CRASH,
        _CONSISTENCY_MAX,
};

/* What became of the run's CreateImage. */
enum create_outcome {
        CREATE_NOT_SENT,     /* no CreateImage yet (no "create_outcome" in the file) */
        CREATE_ANSWERED,     /* EC2 answered with the image id */
        CREATE_UNKNOWN,      /* sent, no clear answer: the image may exist or appear later */
        CREATE_ADOPTED,      /* unknown, then found by its name and run id and taken on */
        CREATE_LATE,         /* unknown, appeared after its run had failed; deregistered later */
        CREATE_DEREGISTERED, /* appeared after its run had failed, and was deregistered */
        CREATE_ABSENT,       /* unknown, and no image appeared long after the run failed */
        _CREATE_OUTCOME_MAX,
};

/* Where the boot check of the run's image stands (distribute/bootcheck.c). */
enum boot_check_stage {
        BOOT_CHECK_NONE,      /* not started (no "boot_check" in the file) */
        BOOT_CHECK_LAUNCHING, /* saved before RunInstances: an instance may exist, found by tag */
        BOOT_CHECK_WAITING,   /* the instance is known; its report is waited for */
        BOOT_CHECK_PASSED,
        BOOT_CHECK_FAILED,
        _BOOT_CHECK_STAGE_MAX,
};

/*
 * The boot check: its stage, the instance launched from the image, what the clone reported (or
 * why the check failed), when it started (the timeout counts from there, across a resume),
 * whether the instance is terminated and whether a failed image was tagged (and deregistered).
 */
struct run_boot_check {
        enum boot_check_stage stage;
        char *instance_id;
        char *reason;
        usec_t started;
        bool terminated;
        bool image_handled;
};

#define RUN_DIST_MAX       32 /* regions a run distributes to, its own included */
#define RUN_HOLDERS_MAX    64 /* held hooks (host/hold.h) a run reports */
#define RUN_DIST_STEPS_MAX 32

/*
 * Distribution in one region: the image there (a copy, or the run's image in its own region)
 * and the steps already done, by name (distribute.c's), so that a resumed run skips them.
 */
struct run_dist {
        char *region;
        char *image_id;   /* NULL until CopyImage answered (or a lost copy was found) */
        char *state;      /* EC2's state of that image as last seen */
        char *lt_version; /* the launch template version made for it, once made */
        char **done;      /* NULL-terminated */
};

#define RUN_TARGETS_MAX 640 /* target accounts (20) times regions (32) */

/*
 * A copy pushed into a target account ([distribute] target_accounts) in one region of the run:
 * recorded before its copy is asked for (image_id NULL, state "copying") and again once it is
 * known and available, so that a resumed run asks again (the copy's ClientToken and its name make
 * that idempotent) rather than forget it.
 */
struct run_target {
        char *account;
        char *region;
        char *image_id; /* the copy in the target account, once known */
        char *state;    /* "copying", then "available" */
};

struct phase_time {
        usec_t start; /* CLOCK_REALTIME */
        usec_t end;
};

/* How a held hook (host/hold.h) did, as the run reports it. */
struct run_holder {
        char *name;
        char *end;       /* holder_end_to_string(): "released", "exited", "timed-out", ... */
        int exit_status; /* "exited" */
        int signal;      /* "killed", "timed-out" */
        long ready_ms;   /* from its start to READY; -1: never ready */
        long held_ms;    /* from READY to the release; -1: never held */
        bool lost;       /* it ended while it held: the image is not application-consistent */
        char **values;   /* "KEY=VALUE" lines it reported, NULL-terminated (or NULL) */
        char *message;   /* NULL when it was released and exited with status 0 */
};

/* One tag of the run's images, rendered from [image] tag (run/provenance.h). */
struct run_tag {
        char *key;
        char *value;
};

#define RUN_TAGS_MAX 50 /* EC2's limit per resource (core/imagetags.h) */

struct run_state {
        char *run_id;
        enum run_phase phase;
        enum run_mode mode;
        bool dry_run;
        char *instance_id;
        char *region;
        char *image_name; /* the run's image's name, as [image] name rendered it */
        /*
         * The name CreateImage gives the image when it is not image_name: with encryption in place
         * (distribute_encrypt.c) the unencrypted original is made under a name of its own, so that
         * its encrypted copy can take image_name (AMI names are unique in a region). NULL: as
         * image_name. Decided once, before CreateImage.
         */
        char *create_name;
        char *image_id; /* the run's image; with encryption in place, the copy once it is made */
        char *image_state;
        /*
         * Encryption in place: the unencrypted original and its snapshots, recorded before its
         * copy is asked for, and whether the original has been deregistered (with them).
         */
        char *unencrypted_image_id;
        char **unencrypted_snapshot_ids; /* NULL-terminated */
        bool unencrypted_deregistered;
        enum consistency consistency;
        char *error;
        char *boot_id;         /* the boot in which the state was last saved (a freeze is only
                                  ever left behind in that boot) */
        char **frozen_mounts;  /* NULL-terminated; what the freeze covers while PHASE_FREEZING */
        long freeze_window_ms; /* -1 until measured */
        long create_call_ms;   /* CreateImage round trip, -1 until measured */
        enum create_outcome create_outcome;
        usec_t unknown_since; /* CLOCK_REALTIME: when the outcome became CREATE_UNKNOWN */
        unsigned boots;       /* reboot mode: boots seen since CreateImage */
        usec_t started;
        usec_t updated;
        struct phase_time times[_PHASE_MAX];
        struct run_dist *dist; /* PHASE_DISTRIBUTING onwards; dist[0] is the run's own region */
        size_t n_dist;
        struct run_target *targets; /* the copies in target accounts (state_targets.c) */
        size_t n_targets;
        struct run_holder *holders; /* the held hooks, once released (after the thaw) */
        size_t n_holders;
        struct run_boot_check boot_check;
        /*
         * The tags of the run's images, rendered once before CreateImage (state_tags.c): every
         * image and copy of the run carries the same values, also after a resume or a reboot.
         * None (n_tags 0) in a state saved before they were rendered, or by an older version.
         */
        struct run_tag *tags;
        size_t n_tags;
};

/* How a run ended, in the history. */
enum run_result {
        RESULT_SUCCESS,
        RESULT_FAILED,
        RESULT_INHERITED, /* another instance's run (see state_inherit_current()) */
        _RUN_RESULT_MAX,
};

struct history_entry {
        char *run_id;
        enum run_result result;
        char *instance_id; /* the instance that ran it */
        char *image_id;
        char *image_name;
        enum consistency consistency;
        char *error;
        enum create_outcome create_outcome; /* CREATE_UNKNOWN: an image may still appear */
        usec_t started;
        usec_t finished;
};

/*
 * A KMS grant a run made (or found by ListGrants, made by a run that crashed before it could
 * record it), kept across runs until revoked: it expires [distribute] grant_ttl_days after
 * created, and goes with the image it serves when retention retires that image.
 */
struct grant_record {
        char *grant_id;
        char *key_arn;
        char *grantee; /* as configured: an account id */
        char *image_id;
        char *region;
        char *run_id;   /* the last run that created or reused it */
        usec_t created; /* CLOCK_REALTIME: when that run created or reused it */
        usec_t revoked; /* 0 while the grant stands */
};

#define STATE_GRANTS_MAX 256

struct state {
        struct run_state *current; /* NULL when no run is under way */
        struct history_entry history[STATE_HISTORY_MAX];
        size_t n_history;            /* newest first */
        struct grant_record *grants; /* oldest first */
        size_t n_grants;
};

const char *run_phase_to_string(enum run_phase p);
int run_phase_from_string(const char *s);
const char *run_result_to_string(enum run_result r);
int run_result_from_string(const char *s);
/* NULL for CONSISTENCY_UNSET. */
const char *consistency_to_string(enum consistency c);
int consistency_from_string(const char *s);
/* NULL for BOOT_CHECK_NONE. */
const char *boot_check_stage_to_string(enum boot_check_stage s);
int boot_check_stage_from_string(const char *s);
/* NULL for CREATE_NOT_SENT. */
const char *create_outcome_to_string(enum create_outcome o);
int create_outcome_from_string(const char *s);

/* A new run with a fresh random id (UUID v4 text). */
int run_state_new(enum run_mode mode, bool dry_run, struct run_state **ret);
struct run_state *run_state_free(struct run_state *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct run_state *, run_state_free)
int run_state_set(char **field, const char *value);
/* The name CreateImage uses for the run's image: create_name, else image_name. */
static inline const char *run_state_create_name(const struct run_state *r)
{
        return r->create_name ? r->create_name : r->image_name;
}
/* Append a region with nothing done yet; -E2BIG past RUN_DIST_MAX. */
int run_state_add_dist(struct run_state *r, const char *region, struct run_dist **ret);
struct run_dist *run_state_find_dist(const struct run_state *r, const char *region);
bool run_dist_done(const struct run_dist *d, const char *step);
int run_dist_mark(struct run_dist *d, const char *step);
/* The record of account's copy in region, added (nothing known yet) when absent; -E2BIG. */
int run_state_target(struct run_state *r, const char *account, const char *region,
                     struct run_target **ret);
void run_state_targets_done(struct run_state *r);
/* The run's "targets" list: added to o when there is one; read from it (absent: none). */
int run_targets_to_json(const struct run_state *r, struct cJSON *o);
int run_targets_from_json(const struct cJSON *o, struct run_state *r);
/* A deep copy. */
int run_state_copy(const struct run_state *r, struct run_state **ret);

void state_done(struct state *s);
/*
 * A failed run whose CreateImage had no clear answer and whose image may still appear, or
 * appeared and is not yet deregistered: later runs look for it (run/late_images.c).
 */
bool history_tracks_late_image(const struct history_entry *h);
/*
 * Move the finished current run into the history (newest first, bounded: the oldest entry goes,
 * but one that tracks an image of a failed run, history_tracks_late_image(), only when every
 * entry is such).
 */
int state_finish_current(struct state *s, usec_t now);
/*
 * Move the current run into the history as "inherited": it belongs to another instance (its
 * state came with the image this instance was launched from) and nothing of it is resumed.
 */
int state_inherit_current(struct state *s, usec_t now);

/* This boot's id (/proc/sys/kernel/random/boot_id), or NULL when it cannot be read. */
const char *state_this_boot(void);
/*
 * Whether the run stands in the frozen window (PHASE_FREEZING or PHASE_CREATING) and was saved
 * there in this boot: only then may something of it still be frozen. A reboot thaws everything,
 * and the state an image carries was saved in another instance's boot.
 */
bool run_state_frozen_in_this_boot(const struct run_state *r);

/* Load from dir/state.json; a missing file is an empty state. -EBADMSG names nothing: callers do.
 */
int state_load(const char *dir, struct state *ret);
/* Save atomically to dir/state.json (mode 0600). */
int state_save(const char *dir, const struct state *s);
/*
 * Save s after a step of run, its current run: the run's update time and this boot are stamped
 * first (whether a freeze may still be under way after a crash depends on the boot). A dry run
 * is never saved (0).
 */
int state_save_run(const char *dir, struct state *s, struct run_state *run);

int state_parse(const char *json, size_t len, struct state *ret);
/* The state file's JSON, as a tree (NULL when memory ran out) and as its text. */
struct cJSON *state_to_json(const struct state *s);
char *state_format(const struct state *s);
/* One run as a JSON object (the CLI's result of `run`, `resume`), as a tree and as its text. */
struct cJSON *run_state_to_json(const struct run_state *r);
char *run_state_format(const struct run_state *r);

/* The record of grant_id, or NULL. */
struct grant_record *state_find_grant(const struct state *s, const char *grant_id);
/*
 * Append a copy of g; when STATE_GRANTS_MAX are recorded the oldest revoked one makes room, and
 * with none revoked -E2BIG (a grant is never forgotten while it stands).
 */
int state_add_grant(struct state *s, const struct grant_record *g);
void state_grants_done(struct state *s);
/* Append a holder, all zero but ready_ms and held_ms (-1); -E2BIG past RUN_HOLDERS_MAX. */
int run_state_add_holder(struct run_state *r, struct run_holder **ret);
void run_state_clear_holders(struct run_state *r);
/* The run's "holders" list: added to o (only when there are holders); read from o. */
int run_holders_to_json(const struct run_state *r, struct cJSON *o);
int run_holders_from_json(const struct cJSON *o, struct run_state *r);

/* Append a rendered tag (copies of key and value); -E2BIG past RUN_TAGS_MAX. */
int run_state_add_tag(struct run_state *r, const char *key, const char *value);
const char *run_state_tag(const struct run_state *r, const char *key);
void run_state_clear_tags(struct run_state *r);
/* The run's "tags" object: added to o (only when there are tags); read from o (absent: none). */
int run_tags_to_json(const struct run_state *r, struct cJSON *o);
int run_tags_from_json(const struct cJSON *o, struct run_state *r);

/* The "grants" list of the state file: added to root; read from it (absent: none). */
int state_grants_to_json(const struct state *s, struct cJSON *root);
int state_grants_from_json(const struct cJSON *root, struct state *s);
/* One record as a JSON object (also the CLI's `grants`), NULL when memory ran out. */
struct cJSON *grant_record_to_json(const struct grant_record *g);

/* Take the run lock (dir/run.lock, flock); -EBUSY when another run holds it. Returns an fd. */
int state_lock(const char *dir);
