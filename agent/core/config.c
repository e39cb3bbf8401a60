/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The configuration's keys: one table that describes every key once (type, bounds, default), the
 * string tables of its enumerated values, and storing one value into its field. Reading files is
 * config_load.c's; handing a configuration to a worker is config_snapshot.c's.
 */
#include "core/config.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aws/imds.h"
#include "aws/signed_post.h"
#include "core/config_internal.h"
#include "host/freeze.h"
#include "util/macro.h"
#include "util/parse.h"
#include "util/str.h"
#include "util/strtable.h"

static const char *const imds_endpoint_mode_table[_IMDS_ENDPOINT_MODE_MAX] = {
        [IMDS_ENDPOINT_MODE_IPV4] = "IPv4",
        [IMDS_ENDPOINT_MODE_IPV6] = "IPv6",
};
DEFINE_STRING_TABLE_LOOKUP(imds_endpoint_mode, enum imds_endpoint_mode)

static const char *const run_mode_table[_RUN_MODE_MAX] = {
        [MODE_NO_REBOOT] = "no-reboot",
        [MODE_REBOOT] = "reboot",
};
DEFINE_STRING_TABLE_LOOKUP(run_mode, enum run_mode)

static const char *const freeze_on_failure_table[_FREEZE_ON_FAILURE_MAX] = {
        [FREEZE_ON_FAILURE_ABORT] = "abort",
        [FREEZE_ON_FAILURE_CONTINUE] = "continue",
};
DEFINE_STRING_TABLE_LOOKUP(freeze_on_failure, enum freeze_on_failure)

static const char *const patch_on_reboot_required_table[_PATCH_ON_REBOOT_REQUIRED_MAX] = {
        [PATCH_ON_REBOOT_REQUIRED_IGNORE] = "ignore",
        [PATCH_ON_REBOOT_REQUIRED_FAIL] = "fail",
        [PATCH_ON_REBOOT_REQUIRED_REBOOT_MODE] = "reboot-mode",
};
DEFINE_STRING_TABLE_LOOKUP(patch_on_reboot_required, enum patch_on_reboot_required)

static const char *const boot_check_on_failure_table[_BOOT_CHECK_ON_FAILURE_MAX] = {
        [BOOT_CHECK_KEEP] = "keep",
        [BOOT_CHECK_DEREGISTER] = "deregister",
};
DEFINE_STRING_TABLE_LOOKUP(boot_check_on_failure, enum boot_check_on_failure)

/* KEY_ENUM values are stored through an int. */
_Static_assert(sizeof(enum imds_endpoint_mode) == sizeof(int) &&
                       sizeof(enum run_mode) == sizeof(int) &&
                       sizeof(enum freeze_on_failure) == sizeof(int) &&
                       sizeof(enum patch_on_reboot_required) == sizeof(int) &&
                       sizeof(enum boot_check_on_failure) == sizeof(int),
               "enums are ints");

static const char *const hook_phases[] = {"pre-image", "pre-freeze", "post-thaw", "post-image"};

/* The operations of hooks/sanitize (`ec2-imaged sanitize --list`); a test keeps them equal. */
static const char *const sanitize_ops[] = {
        "all",
        "ssh-hostkeys",
        "machine-id",
        "ssh-authorized-keys",
        "logfiles",
        "cloud-init",
        "cloud-init-configs",
        "shell-history",
        "tmp-files",
        "package-manager-cache",
        "dhcp-client-state",
        "udev-persistent-net",
        "random-seed",
        "crash-data",
        "passwd-backups",
        "rpm-db",
        "yum-uuid",
        "mail-spool",
        "cron-spool",
};

/* One row of the table per type: what the type does not use stays 0. */
#define OFF(field) offsetof(struct config, field)
#define STRING_KEY(sec, key, field, least, most, d)                                                \
        {                                                                                          \
                .section = sec, .name = key, .type = CONFIG_KEY_STRING, .offset = OFF(field),      \
                .min = least, .max = most, .def_text = d                                           \
        }
#define UINT_KEY(sec, key, field, lo, hi, d)                                                       \
        {                                                                                          \
                .section = sec, .name = key, .type = CONFIG_KEY_UINT, .offset = OFF(field),        \
                .min = lo, .max = hi, .def = d                                                     \
        }
#define BOOL_KEY(sec, key, field, d)                                                               \
        {                                                                                          \
                .section = sec, .name = key, .type = CONFIG_KEY_BOOL, .offset = OFF(field),        \
                .def = d                                                                           \
        }
#define ENUM_KEY(sec, key, field, table, d)                                                        \
        {                                                                                          \
                .section = sec, .name = key, .type = CONFIG_KEY_ENUM, .offset = OFF(field),        \
                .def = d, .values = table, .n_values = ELEMENTSOF(table)                           \
        }
#define STRV_KEY(sec, key, field, most, d)                                                         \
        {                                                                                          \
                .section = sec, .name = key, .type = CONFIG_KEY_STRV, .offset = OFF(field),        \
                .max = most, .def_text = d                                                         \
        }
#define WORDS_KEY(sec, key, field, most, words)                                                    \
        {                                                                                          \
                .section = sec, .name = key, .type = CONFIG_KEY_STRV, .offset = OFF(field),        \
                .max = most, .def_text = "", .values = words, .n_values = ELEMENTSOF(words)        \
        }
/* Rows whose value, or each word, must have a shape (fn) as it is read; no default. */
#define STRING_KEY_CHECKED(sec, key, field, most, fn)                                              \
        {                                                                                          \
                .section = sec, .name = key, .type = CONFIG_KEY_STRING, .offset = OFF(field),      \
                .max = most, .check = fn                                                           \
        }
#define STRV_KEY_CHECKED(sec, key, field, most, fn)                                                \
        {                                                                                          \
                .section = sec, .name = key, .type = CONFIG_KEY_STRV, .offset = OFF(field),        \
                .max = most, .def_text = "", .check = fn                                           \
        }

/*
 * The single description of every key. The defaults and bounds that a lower layer applies by
 * itself (a 0 in its settings, a limit it enforces) are its macros, so that both say the same.
 * conf/ec2-imaged.conf and ec2-imaged.conf(5) document every key with this default (a test
 * compares them).
 */
static const struct config_key keys[] = {
        STRING_KEY("imds", "endpoint", imds_endpoint, 0, 256, NULL),
        ENUM_KEY("imds", "endpoint_mode", imds_endpoint_mode, imds_endpoint_mode_table,
                 IMDS_ENDPOINT_MODE_IPV4),
        UINT_KEY("imds", "token_ttl", imds_token_ttl, 1, IMDS_MAX_TTL_S, IMDS_MAX_TTL_S),
        UINT_KEY("imds", "connect_timeout_ms", imds_connect_timeout_ms, 10, 60000,
                 IMDS_CONNECT_TIMEOUT_MS_DEFAULT),
        UINT_KEY("imds", "timeout_ms", imds_timeout_ms, 10, 60000, IMDS_TIMEOUT_MS_DEFAULT),
        /*
         * A retry deadline bounds every attempt of a call, the first one included: 0 would be no
         * time at all (the clients read a 0 in their settings as "the default", which nobody
         * writing 0 means), so it starts at the shortest timeout of one request.
         */
        UINT_KEY("imds", "retry_deadline_ms", imds_retry_deadline_ms, 10, 600000,
                 IMDS_RETRY_DEADLINE_MS_DEFAULT),
        BOOL_KEY("imds", "allow_imdsv1", imds_allow_imdsv1, false),
        BOOL_KEY("imds", "disabled", imds_disabled, false),

        STRING_KEY("aws", "region", region, 0, 64, NULL),
        STRING_KEY("aws", "endpoint_url", endpoint_url, 0, 256, NULL),
        UINT_KEY("aws", "connect_timeout_ms", aws_connect_timeout_ms, 10, 60000,
                 AWS_CONNECT_TIMEOUT_MS_DEFAULT),
        UINT_KEY("aws", "timeout_ms", aws_timeout_ms, 100, 600000, AWS_TIMEOUT_MS_DEFAULT),
        UINT_KEY("aws", "retry_deadline_ms", aws_retry_deadline_ms, 100, 3600000,
                 AWS_RETRY_DEADLINE_MS_DEFAULT),
        UINT_KEY("aws", "max_attempts", aws_max_attempts, 1, 100, AWS_MAX_ATTEMPTS_DEFAULT),

        ENUM_KEY("run", "mode", mode, run_mode_table, MODE_NO_REBOOT),
        STRING_KEY("run", "state_dir", state_dir, 1, 1024, "/var/lib/ec2-imaged"),
        UINT_KEY("run", "wait_timeout_s", wait_timeout_s, 60, 86400, 7200),
        UINT_KEY("run", "wait_poll_max_s", wait_poll_max_s, 1, 600, 60),
        UINT_KEY("run", "adopt_timeout_s", adopt_timeout_s, 0, 3600, 300),

        STRING_KEY("image", "name", image_name, 1, 512, "{hostname}-{date:%Y%m%d-%H%M%S}"),
        STRING_KEY("image", "description", image_description, 0, 512,
                   "ec2-imaged run {run_id} of {instance_id}"),
        BOOL_KEY("image", "imds_v2_only", image_imds_v2_only, true),

        STRV_KEY("freeze", "mounts", freeze_mounts, 64, "auto"),
        UINT_KEY("freeze", "timeout_ms", freeze_timeout_ms, FREEZE_TIMEOUT_MIN_MS,
                 FREEZE_TIMEOUT_MAX_MS, 30000),
        ENUM_KEY("freeze", "on_failure", freeze_on_failure, freeze_on_failure_table,
                 FREEZE_ON_FAILURE_ABORT),

        STRING_KEY("hooks", "dir", hooks_dir, 1, 1024, "/etc/ec2-imaged/hooks"),
        UINT_KEY("hooks", "timeout_s", hook_timeout_s, 1, 86400, 600),
        UINT_KEY("hooks", "kill_grace_s", hook_kill_grace_s, 1, 600, 10),
        WORDS_KEY("hooks", "continue_on_error", hooks_continue_on_error, 4, hook_phases),
        UINT_KEY("hooks", "hold_ready_timeout_s", hook_hold_ready_timeout_s, 1, 3600, 60),

        /* sizeof(sockaddr_un.sun_path) - 1 */
        STRING_KEY("daemon", "control_socket", control_socket, 1, 107,
                   "/run/ec2-imaged/control.sock"),
        BOOL_KEY("daemon", "user_data", user_data, false),
        UINT_KEY("daemon", "stop_timeout_s", stop_timeout_s, 1, 3600, 60),
        UINT_KEY("daemon", "cloud_init_wait_s", cloud_init_wait_s, 0, 86400, 1800),

        /* 31 regions besides the run's own: the state keeps RUN_DIST_MAX (32) of them. */
        STRV_KEY("distribute", "regions", dist_regions, 31, ""),
        STRV_KEY("distribute", "kms_key", dist_kms_keys, 32, ""),
        STRV_KEY("distribute", "share_accounts", dist_share_accounts, 100, ""),
        STRV_KEY("distribute", "share_organizations", dist_share_orgs, 20, ""),
        STRV_KEY("distribute", "share_ous", dist_share_ous, 50, ""),
        BOOL_KEY("distribute", "create_grants", dist_create_grants, false),
        UINT_KEY("distribute", "grant_ttl_days", dist_grant_ttl_days, 0, 36500, 0),
        UINT_KEY("distribute", "deprecate_after_days", dist_deprecate_days, 0, 36500, 0),
        UINT_KEY("distribute", "keep_newest", dist_keep_newest, 0, 1000, 0),
        UINT_KEY("distribute", "keep_days", dist_keep_days, 0, 36500, 0),
        STRING_KEY("distribute", "lineage", dist_lineage, 0, 128, NULL),
        STRV_KEY("distribute", "launch_template", dist_launch_template, 32, ""),
        STRING_KEY("distribute", "launch_template_source_version", dist_lt_source_version, 1, 32,
                   "$Default"),
        STRV_KEY("distribute", "ssm_parameter", dist_ssm_parameter, 32, ""),
        BOOL_KEY("distribute", "protect_published", dist_protect_published, false),
        UINT_KEY("distribute", "max_copies_in_flight", dist_max_copies, 1, 50, 5),
        STRV_KEY_CHECKED("distribute", "target_accounts", dist_target_accounts, 20,
                         config_check_target_account),
        STRING_KEY_CHECKED("distribute", "target_external_id", dist_target_external_id, 1224,
                           config_check_external_id),
        STRV_KEY_CHECKED("distribute", "target_kms_key", dist_target_kms_keys, 640,
                         config_check_target_kms_key),
        STRV_KEY_CHECKED("distribute", "target_ssm_parameter", dist_target_ssm_params, 20,
                         config_check_target_ssm_parameter),

        BOOL_KEY("boot_check", "enable", boot_check_enable, false),
        STRING_KEY("boot_check", "instance_type", boot_check_instance_type, 1, 64, "t3.micro"),
        STRING_KEY("boot_check", "subnet", boot_check_subnet, 0, 64, NULL),
        STRV_KEY("boot_check", "security_groups", boot_check_security_groups, 16, ""),
        STRING_KEY("boot_check", "instance_profile", boot_check_instance_profile, 0, 2048, NULL),
        STRV_KEY("boot_check", "require_units", boot_check_require_units, 64, ""),
        UINT_KEY("boot_check", "timeout_s", boot_check_timeout_s, 10, 86400, 900),
        ENUM_KEY("boot_check", "on_failure", boot_check_on_failure, boot_check_on_failure_table,
                 BOOT_CHECK_KEEP),

        WORDS_KEY("sanitize", "enable", sanitize_enable, 64, sanitize_ops),
        WORDS_KEY("sanitize", "disable", sanitize_disable, 64, sanitize_ops),
        UINT_KEY("sanitize", "restore_after_s", sanitize_restore_after_s, 60, 86400, 900),
        STRING_KEY("sanitize", "script", sanitize_script, 1, 1024,
                   "/usr/lib/ec2-imaged/hooks/sanitize"),

        STRV_KEY("patch", "hold", patch_hold, 256, ""),
        ENUM_KEY("patch", "on_reboot_required", patch_on_reboot_required,
                 patch_on_reboot_required_table, PATCH_ON_REBOOT_REQUIRED_IGNORE),
        STRING_KEY("patch", "script", patch_script, 1, 1024, "/usr/lib/ec2-imaged/hooks/patch"),

        /* Read by the database hooks (hooks/mysql-hold, postgresql-*, services-stop). */
        STRING_KEY("mysql", "socket", mysql_socket, 1, 107, "/run/mysqld/mysqld.sock"),
        STRING_KEY("mysql", "host", mysql_host, 0, 255, NULL),
        UINT_KEY("mysql", "port", mysql_port, 1, 65535, 3306),
        STRING_KEY("mysql", "user", mysql_user, 1, 80, "root"),
        STRING_KEY("mysql", "option_file", mysql_option_file, 0, 1024, NULL),
        BOOL_KEY("mysql", "flush_local_tables", mysql_flush_local_tables, true),
        BOOL_KEY("mysql", "flush_binary_logs", mysql_flush_binary_logs, false),
        UINT_KEY("mysql", "lock_timeout_s", mysql_lock_timeout_s, 1, 3600, 30),
        STRING_KEY("mysql", "position_file", mysql_position_file, 1, 1024,
                   "/var/lib/ec2-imaged/mysql-binlog-position"),
        STRV_KEY("postgresql", "clusters", pg_clusters, 4, "/run/postgresql:5432"),
        STRING_KEY("postgresql", "user", pg_user, 1, 63, "postgres"),
        STRING_KEY("postgresql", "passfile", pg_passfile, 0, 1024, NULL),
        STRING_KEY("postgresql", "label_dir", pg_label_dir, 1, 1024,
                   "/var/lib/ec2-imaged/postgresql"),
        STRV_KEY("services", "stop", services_stop, 64, ""),
        /* EventBridge takes a bus name of 256 characters or its ARN (1600). */
        STRING_KEY("notify", "event_bus", notify_event_bus, 0, 1600, NULL),
        STRING_KEY("notify", "sns_topic_arn", notify_sns_topic_arn, 0, 1024, NULL),
        STRING_KEY("notify", "prometheus_textfile", notify_prometheus_textfile, 0, 1024, NULL),
};

/*
 * The shape of the words of some keys, checked at load so that a typo is named with its file and
 * line rather than by EC2 at the first boot check. NULL: fine; else what is wrong.
 */
static bool only_chars(const char *w, const char *set)
{
        return *w && strspn(w, set) == strlen(w);
}

#define LOWER_ALNUM "abcdefghijklmnopqrstuvwxyz0123456789"
#define ALNUM       LOWER_ALNUM "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

static const char *shape_instance_type(const char *w)
{
        /* "t3.micro", "m7g.16xlarge", "u-6tb1.metal": a family, a dot, a size. */
        return only_chars(w, LOWER_ALNUM ".-") && strchr(w, '.') && w[0] != '.'
                       ? NULL
                       : "expected an instance type such as t3.micro";
}

static bool aws_id(const char *w, const char *prefix)
{
        return startswith(w, prefix) && only_chars(w + strlen(prefix), "0123456789abcdef");
}

static const char *shape_subnet(const char *w)
{
        return aws_id(w, "subnet-") ? NULL : "expected a subnet id (subnet-...)";
}

static const char *shape_security_group(const char *w)
{
        return aws_id(w, "sg-") ? NULL : "expected a security group id (sg-...)";
}

static const char *shape_instance_profile(const char *w)
{
        /* IAM's names: [\w+=,.@-]{1,128}; or the profile's ARN. */
        if (startswith(w, "arn:aws") && strstr(w, ":instance-profile/"))
                return NULL;
        return strlen(w) <= 128 && only_chars(w, ALNUM "_+=,.@-")
                       ? NULL
                       : "expected an instance profile name or ARN";
}

static const char *shape_unit(const char *w)
{
        /* systemd's unit name characters, with a type suffix ("sshd.service"). */
        const char *dot = strrchr(w, '.');

        return strlen(w) <= 255 && only_chars(w, ALNUM ":_.\\@-") && dot && dot != w && dot[1]
                       ? NULL
                       : "expected a unit name such as sshd.service";
}

static const struct {
        const char *section, *name;
        const char *(*check)(const char *word);
} shapes[] = {
        {"boot_check", "instance_type", shape_instance_type},
        {"boot_check", "subnet", shape_subnet},
        {"boot_check", "security_groups", shape_security_group},
        {"boot_check", "instance_profile", shape_instance_profile},
        {"boot_check", "require_units", shape_unit},
};

/* Each word of the value just stored for k (a STRING's one word) has its key's shape. */
static int check_shape(const struct config *c, const struct config_key *k, char **msg)
{
        const void *field = (const char *)c + k->offset;

        for (size_t i = 0; i < ELEMENTSOF(shapes); i++) {
                if (!streq(shapes[i].section, k->section) || !streq(shapes[i].name, k->name))
                        continue;
                if (k->type == CONFIG_KEY_STRING) {
                        const char *v = *(char *const *)field, *why = v ? shapes[i].check(v) : NULL;
                        if (why)
                                return *msg = strprintf("'%s': %s", v, why), -EINVAL;
                        return 0;
                }
                for (char *const *w = *(char **const *)field; w && *w; w++) {
                        const char *why = shapes[i].check(*w);
                        if (why)
                                return *msg = strprintf("'%s': %s", *w, why), -EINVAL;
                }
        }
        return 0;
}

const struct config_key *config_keys(size_t *ret_n)
{
        *ret_n = ELEMENTSOF(keys);
        return keys;
}

const struct config_key *config_find_key(const char *section, const char *name)
{
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                if (strcasecmp(keys[i].section, section) == 0 && streq(keys[i].name, name))
                        return &keys[i];
        return NULL;
}

char *config_key_default(const struct config_key *k)
{
        switch (k->type) {
        case CONFIG_KEY_UINT:
                return strprintf("%lu", k->def);
        case CONFIG_KEY_BOOL:
                return strdup(k->def ? "yes" : "no");
        case CONFIG_KEY_ENUM:
                return strdup(k->values[k->def]);
        case CONFIG_KEY_STRING:
        case CONFIG_KEY_STRV:
                break;
        }
        return strdup(strempty(k->def_text));
}

/* "a b,c": the words, each one of k's allowed words if it names some. */
static int apply_words(char ***field, const struct config_key *k, const char *value, char **msg)
{
        _cleanup_free_ char *copy = strdup(value);
        char *save = NULL, *w, **n = NULL;
        size_t count = 0;

        if (!copy)
                return -ENOMEM;
        for (w = strtok_r(copy, " \t,", &save); w; w = strtok_r(NULL, " \t,", &save)) {
                bool ok = !k->values || string_table_find(k->values, k->n_values, w, false) >= 0;
                if (ok && k->check && !k->check(w, msg)) {
                        strv_free(n);
                        return -EINVAL;
                }
                if (!ok || ++count > k->max || strv_push(&n, w) < 0) {
                        strv_free(n);
                        if (!ok)
                                return *msg = strprintf("'%s' is not allowed here", w), -EINVAL;
                        return *msg = strprintf("more than %lu entries", k->max), -E2BIG;
                }
        }
        strv_free(*field);
        *field = n;
        return 0;
}

static int apply_string(char **field, const struct config_key *k, const char *value, char **msg)
{
        char *n;

        if (strlen(value) > k->max)
                return *msg = strprintf("value is longer than %lu characters", k->max), -E2BIG;
        /* Only "may not be empty" is in use: the table's minimum lengths are 0 or 1. */
        if (strlen(value) < k->min)
                return *msg = strdup("may not be empty"), -EINVAL;
        if (*value && k->check && !k->check(value, msg))
                return -EINVAL;
        n = strdup(value);
        if (!n)
                return -ENOMEM;
        free(*field);
        *field = *value ? n : (free(n), NULL);
        return 0;
}

static int apply_value(void *field, const struct config_key *k, const char *value, char **msg)
{
        uint64_t v;
        int r;

        switch (k->type) {
        case CONFIG_KEY_STRING:
                return apply_string(field, k, value, msg);
        case CONFIG_KEY_UINT:
                if (safe_atou64(value, &v) < 0)
                        return *msg = strprintf("'%s' is not a non-negative integer", value),
                               -EINVAL;
                if (v < k->min || v > k->max)
                        return *msg = strprintf("%s is out of range %lu..%lu", value, k->min,
                                                k->max),
                               -ERANGE;
                *(unsigned *)field = (unsigned)v;
                return 0;
        case CONFIG_KEY_BOOL:
                r = parse_boolean(value);
                if (r < 0)
                        return *msg = strprintf("'%s' is not a boolean (yes/no)", value), -EINVAL;
                *(bool *)field = r;
                return 0;
        case CONFIG_KEY_STRV:
                return apply_words(field, k, value, msg);
        case CONFIG_KEY_ENUM:
                r = string_table_find(k->values, k->n_values, value, true);
                if (r < 0)
                        return *msg = strprintf("'%s' is not one of the allowed values", value),
                               -EINVAL;
                *(int *)field = r;
                return 0;
        }
        return -EINVAL;
}

int config_apply(struct config *c, const struct config_key *k, const char *value, char **msg)
{
        int r = apply_value((char *)c + k->offset, k, value, msg);

        return r < 0 ? r : check_shape(c, k, msg);
}

void config_init(struct config *c)
{
        *c = (struct config){};
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                const struct config_key *k = &keys[i];
                void *field = (char *)c + k->offset;
                _cleanup_free_ char *msg = NULL;

                if (k->type == CONFIG_KEY_UINT)
                        *(unsigned *)field = (unsigned)k->def;
                else if (k->type == CONFIG_KEY_BOOL)
                        *(bool *)field = k->def;
                else if (k->type == CONFIG_KEY_ENUM)
                        *(int *)field = (int)k->def;
                else if (k->def_text && *k->def_text)
                        (void)config_apply(c, k, k->def_text, &msg); /* only ENOMEM can fail */
        }
}

void config_done(struct config *c)
{
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                if (keys[i].type == CONFIG_KEY_STRING)
                        free(*(char **)((char *)c + keys[i].offset));
                else if (keys[i].type == CONFIG_KEY_STRV)
                        strv_free(*(char ***)((char *)c + keys[i].offset));
        for (size_t i = 0; i < c->n_tags; i++) {
                free(c->tags[i].key);
                free(c->tags[i].value);
        }
        for (size_t i = 0; i < c->n_sources; i++) {
                free(c->sources[i].name);
                free(c->sources[i].data);
        }
        free(c->sources);
        free(c->path);
        *c = (struct config){};
}

void config_error_done(struct config_error *e)
{
        free(e->file);
        free(e->message);
        *e = (struct config_error){};
}
