/* SPDX-License-Identifier: Apache-2.0 */
/* Configuration: inih files driven by one key table (section, key, type, bounds, default). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define CONFIG_DEFAULT_PATH "/etc/ec2-imaged/ec2-imaged.conf"
#define CONFIG_MAX_SIZE     (256u * 1024u)
/*
 * [image] tag lines: EC2 allows 50 tags on an image, ec2-imaged puts up to 7 of its own, and an
 * operator may replace two of those (core/imagetags.h).
 */
#define CONFIG_MAX_TAGS 45

/*
 * The enumerated values of the configuration, each with one string table (config.c):
 * NAME_to_string() and NAME_from_string() (exact names; a file's value may be in any case).
 */
/* [imds] endpoint_mode */
enum imds_endpoint_mode {
        IMDS_ENDPOINT_MODE_IPV4,
        IMDS_ENDPOINT_MODE_IPV6,
        _IMDS_ENDPOINT_MODE_MAX,
};

/* [run] mode, and the mode of one run */
enum run_mode {
        MODE_NO_REBOOT,
        MODE_REBOOT,
        _RUN_MODE_MAX,
};

/* [freeze] on_failure */
enum freeze_on_failure {
        FREEZE_ON_FAILURE_ABORT,
        FREEZE_ON_FAILURE_CONTINUE, /* crash-consistent image, tagged so */
        _FREEZE_ON_FAILURE_MAX,
};

/* [patch] on_reboot_required (read by hooks/patch) */
enum patch_on_reboot_required {
        PATCH_ON_REBOOT_REQUIRED_IGNORE,
        PATCH_ON_REBOOT_REQUIRED_FAIL,
        PATCH_ON_REBOOT_REQUIRED_REBOOT_MODE,
        _PATCH_ON_REBOOT_REQUIRED_MAX,
};

/* [boot_check] on_failure: what becomes of an image whose boot check failed */
enum boot_check_on_failure {
        BOOT_CHECK_KEEP,       /* tagged failed, left for inspection */
        BOOT_CHECK_DEREGISTER, /* deregistered with its snapshots */
        _BOOT_CHECK_ON_FAILURE_MAX,
};

const char *imds_endpoint_mode_to_string(enum imds_endpoint_mode m);
int imds_endpoint_mode_from_string(const char *s);
const char *run_mode_to_string(enum run_mode m);
int run_mode_from_string(const char *s);
const char *freeze_on_failure_to_string(enum freeze_on_failure f);
int freeze_on_failure_from_string(const char *s);
const char *patch_on_reboot_required_to_string(enum patch_on_reboot_required p);
int patch_on_reboot_required_from_string(const char *s);
const char *boot_check_on_failure_to_string(enum boot_check_on_failure f);
int boot_check_on_failure_from_string(const char *s);

struct config_tag {
        char *key;
        char *value;     /* in the configuration a template (core/template.h); in a run, rendered */
        unsigned source; /* the file it came from (its index in sources), and its line */
        unsigned line;
};

/* A file as it was parsed: its name and its contents (for the snapshot a worker is given). */
struct config_source {
        char *name;
        char *data;
        size_t len;
};

struct config {
        /* [imds] */
        char *imds_endpoint;
        enum imds_endpoint_mode imds_endpoint_mode;
        unsigned imds_token_ttl;
        unsigned imds_connect_timeout_ms;
        unsigned imds_timeout_ms;
        unsigned imds_retry_deadline_ms;
        bool imds_allow_imdsv1;
        bool imds_disabled;

        /* [aws] */
        char *region;
        char *endpoint_url;
        unsigned aws_connect_timeout_ms;
        unsigned aws_timeout_ms;
        unsigned aws_retry_deadline_ms;
        unsigned aws_max_attempts;

        /* [run] */
        enum run_mode mode;
        char *state_dir;
        unsigned wait_timeout_s;
        unsigned wait_poll_max_s;
        unsigned adopt_timeout_s; /* how long an image is looked for after an unclear answer */

        /* [image] */
        char *image_name;        /* template */
        char *image_description; /* template */
        bool image_imds_v2_only; /* the published images: ImdsSupport v2.0 */

        /* [freeze] */
        char **freeze_mounts; /* NULL or {"auto"}: every freezable mount; else the list */
        unsigned freeze_timeout_ms;
        enum freeze_on_failure freeze_on_failure;

        /* [hooks] */
        char *hooks_dir;
        unsigned hook_timeout_s;
        unsigned hook_kill_grace_s;
        char **hooks_continue_on_error;     /* phases whose failed hooks do not abort the run */
        unsigned hook_hold_ready_timeout_s; /* a held hook's start to its READY */

        /* [daemon] */
        char *control_socket;
        bool user_data;             /* act on an ec2-imaged directive in the IMDS user-data */
        unsigned stop_timeout_s;    /* how long a stopping daemon waits for its run's worker */
        unsigned cloud_init_wait_s; /* before a first-boot run; 0: do not wait */

        /* [distribute]: after the image is available (see distribute.h) */
        char **dist_regions;           /* regions to copy to */
        char **dist_kms_keys;          /* REGION:KEY words: the key of the copy in REGION */
        char **dist_share_accounts;    /* 12-digit account ids */
        char **dist_share_orgs;        /* organization ARNs */
        char **dist_share_ous;         /* organizational unit ARNs */
        bool dist_create_grants;       /* KMS grants on customer keys for the shared accounts */
        unsigned dist_grant_ttl_days;  /* revoke them this long after the run; 0: keep */
        unsigned dist_deprecate_days;  /* 0: never */
        unsigned dist_keep_newest;     /* 0: no count rule */
        unsigned dist_keep_days;       /* 0: no age rule */
        char *dist_lineage;            /* ec2-imaged:lineage tag value; NULL: the instance id */
        char **dist_launch_template;   /* NAME (the run's region) or REGION:NAME words */
        char *dist_lt_source_version;  /* version the new one is made from */
        char **dist_ssm_parameter;     /* NAME (every region) or REGION:NAME words */
        bool dist_protect_published;   /* deregistration protection on the published images */
        unsigned dist_max_copies;      /* CopyImage calls in flight at once */
        char **dist_target_accounts;   /* ACCOUNT:ROLE_NAME words: push a copy into each */
        char *dist_target_external_id; /* AssumeRole's ExternalId for every target; NULL: none */
        char **dist_target_kms_keys;   /* ACCOUNT:REGION:KEY words: the key of its copy there */
        char **dist_target_ssm_params; /* ACCOUNT:NAME words: its parameter, in each region */

        /* [boot_check]: launch the image once before sharing and publishing it (bootcheck.h) */
        bool boot_check_enable;
        char *boot_check_instance_type;
        char *boot_check_subnet;           /* subnet-...; NULL: the default subnet */
        char **boot_check_security_groups; /* sg-... */
        char *boot_check_instance_profile; /* name or ARN; NULL: none */
        char **boot_check_require_units;   /* units that must be active on the clone */
        unsigned boot_check_timeout_s;     /* the clone's report is waited for this long */
        enum boot_check_on_failure boot_check_on_failure;

        /* [sanitize] and [patch]: read by the shipped hook scripts; validated here */
        char **sanitize_enable;            /* operation names (or "all") added to the defaults */
        char **sanitize_disable;           /* operation names (or "all") taken away; wins */
        unsigned sanitize_restore_after_s; /* the identity comes back this late at the latest */
        char *sanitize_script;             /* what `ec2-imaged sanitize` execs */
        char **patch_hold;                 /* packages kept at their version */
        enum patch_on_reboot_required patch_on_reboot_required;
        char *patch_script; /* what `ec2-imaged patch` execs */

        /* [mysql], [postgresql], [services]: read by the database hooks; validated here */
        char *mysql_socket;
        char *mysql_host; /* NULL: the socket */
        unsigned mysql_port;
        char *mysql_user;
        char *mysql_option_file; /* root-only client option file with the password */
        bool mysql_flush_local_tables;
        bool mysql_flush_binary_logs;
        unsigned mysql_lock_timeout_s;
        char *mysql_position_file; /* the binlog position of the image */
        char **pg_clusters;        /* HOST[:PORT] words */
        char *pg_user;
        char *pg_passfile;    /* root-only libpq password file; NULL: peer as pg_user */
        char *pg_label_dir;   /* where postgresql-hold leaves each backup label */
        char **services_stop; /* units services-stop stops for the freeze */
        /* [notify]: told at the end of every run (run/notify.c); NULL: not told */
        char *notify_event_bus;           /* EventBridge bus name or ARN (PutEvents) */
        char *notify_sns_topic_arn;       /* SNS topic (Publish), in the ARN's region */
        char *notify_prometheus_textfile; /* absolute path of a .prom file, replaced atomically */

        /*
         * [image] tag = Key=Value (repeatable): put on every image and its snapshots, the value a
         * template rendered once per run (run/provenance.h)
         */
        struct config_tag tags[CONFIG_MAX_TAGS];
        size_t n_tags;

        /* where each value came from, for messages */
        char *path;
        /* the files parsed, in order */
        struct config_source *sources;
        size_t n_sources;
};

struct config_error {
        char *file;
        unsigned line;
        char *message;
};

void config_init(struct config *c);
void config_done(struct config *c);
void config_error_done(struct config_error *e);

/*
 * Load PATH (default CONFIG_DEFAULT_PATH) and then PATH.d/\*.conf in lexical order; for the default
 * path the drop-in directory is /etc/ec2-imaged/conf.d. A missing main file at the default path
 * is not an error (defaults apply); a missing file given explicitly is. On failure err names the
 * file, line and key.
 */
int config_load(const char *path, bool explicit_path, struct config *ret, struct config_error *err);

/* Parse one buffer as if it were the file `name` (used by the drop-in loader and the fuzzer). */
int config_parse_buffer(struct config *c, const char *data, size_t len, const char *name,
                        struct config_error *err);

/* Record a parsed file in c->sources (config_load() does it for every file it parses). */
int config_add_source(struct config *c, const char *name, const char *data, size_t len);

/*
 * The daemon hands each worker the configuration it accepted, not the files as they are by the
 * time the worker starts (a refused reload must not reach the next run): a sealed memfd holding
 * the name and contents of every file config_load() parsed (config_snapshot.c), inherited by the
 * worker as the descriptor named in $EC2_IMAGED_CONFIG_FD. config_snapshot_new() returns the
 * memfd (O_CLOEXEC) or -errno; config_load_snapshot() parses one as config_load() parsed the
 * files, and refuses (-EPERM) a descriptor that is not a sealed memfd.
 */
#define CONFIG_FD_ENV "EC2_IMAGED_CONFIG_FD"
int config_snapshot_new(const struct config *c);
int config_load_snapshot(int fd, struct config *ret, struct config_error *err);

/*
 * The description of one key: config.c's table holds every key once, with its default and bounds;
 * the parser, config_init() and the checks of the shipped file and ec2-imaged.conf(5) read it.
 */
enum config_key_type {
        CONFIG_KEY_STRING,
        CONFIG_KEY_UINT,
        CONFIG_KEY_BOOL,
        CONFIG_KEY_ENUM,
        CONFIG_KEY_STRV, /* words separated by spaces, tabs or commas */
};

struct config_key {
        const char *section;
        const char *name;
        enum config_key_type type;
        size_t offset;             /* of the value in struct config */
        unsigned long min, max;    /* UINT: bounds; STRING: length; STRV: max words */
        unsigned long def;         /* UINT, BOOL, ENUM: the default */
        const char *def_text;      /* STRING, STRV: the default as a file writes it; NULL: none */
        const char *const *values; /* ENUM: its string table; STRV: the words allowed (NULL: any) */
        size_t n_values;
        /* STRING, STRV: the shape of the value or of each word (NULL: any); *msg says why not. */
        bool (*check)(const char *word, char **msg);
};

/*
 * The shapes of the [distribute] target_* words (config_targets.c), checked as each is read:
 * ACCOUNT:ROLE_NAME, the external id, ACCOUNT:REGION:KEY, ACCOUNT:NAME.
 */
bool config_check_target_account(const char *word, char **msg);
bool config_check_external_id(const char *word, char **msg);
bool config_check_target_kms_key(const char *word, char **msg);
bool config_check_target_ssm_parameter(const char *word, char **msg);
/* The KEY of target_kms_key for account and region, or NULL. */
const char *config_target_kms_key(const struct config *c, const char *account, const char *region);
/* The NAME of target_ssm_parameter for account, or NULL. */
const char *config_target_ssm_parameter(const struct config *c, const char *account);

/* The key table, in the order of the shipped file. */
const struct config_key *config_keys(size_t *ret_n);
/* The default of k as the shipped file writes it ("" for none), or NULL when memory ran out. */
char *config_key_default(const struct config_key *k);
