/* SPDX-License-Identifier: Apache-2.0 */
/* Configuration loading: one table of keys, one inih handler that validates against it. */
#include "core/config.h"

#include <dirent.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "util/log.h"
#include "util/macro.h"
#include "util/parse.h"
#include "util/str.h"
#include "util/strtable.h"

enum key_type {
        KEY_STRING,
        KEY_UINT,
        KEY_BOOL,
        KEY_ENUM,
        KEY_STRV, /* space-separated words */
};

struct config_key {
        const char *section;
        const char *name;
        enum key_type type;
        size_t offset;
        unsigned long min, max;    /* KEY_UINT bounds; KEY_STRING maximum length in max */
        const char *def;           /* default, parsed like a value from a file */
        const char *const *values; /* KEY_ENUM: the enum's string table; KEY_STRV: the words */
        size_t n_values;           /* allowed (NULL: any) */
};

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

static const char *const hook_phases[] = {"pre-image", "pre-freeze", "post-thaw", "post-image"};

/* The operations of hooks/sanitize (`ec2-imaged sanitize --list`); a test keeps them equal. */
static const char *const sanitize_ops[] = {"all",
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
                                           "cron-spool"};

#define OFF(field)   offsetof(struct config, field)
#define WORDS(table) table, ELEMENTSOF(table)

/* KEY_ENUM fields are written through an int. */
_Static_assert(sizeof(enum imds_endpoint_mode) == sizeof(int) &&
                       sizeof(enum run_mode) == sizeof(int) &&
                       sizeof(enum freeze_on_failure) == sizeof(int) &&
                       sizeof(enum patch_on_reboot_required) == sizeof(int),
               "enums are ints");

/* The single description of every key; conf/ec2-imaged.conf documents each of them. */
static const struct config_key keys[] = {
        {"imds", "endpoint", KEY_STRING, OFF(imds_endpoint), 0, 256, NULL, NULL, 0},
        {"imds", "endpoint_mode", KEY_ENUM, OFF(imds_endpoint_mode), 0, 0, "IPv4",
         WORDS(imds_endpoint_mode_table)},
        {"imds", "token_ttl", KEY_UINT, OFF(imds_token_ttl), 1, 21600, "21600", NULL, 0},
        {"imds", "connect_timeout_ms", KEY_UINT, OFF(imds_connect_timeout_ms), 10, 60000, "1000",
         NULL, 0},
        {"imds", "timeout_ms", KEY_UINT, OFF(imds_timeout_ms), 10, 60000, "2000", NULL, 0},
        {"imds", "retry_deadline_ms", KEY_UINT, OFF(imds_retry_deadline_ms), 0, 600000, "10000",
         NULL, 0},
        {"imds", "allow_imdsv1", KEY_BOOL, OFF(imds_allow_imdsv1), 0, 0, "no", NULL, 0},
        {"imds", "disabled", KEY_BOOL, OFF(imds_disabled), 0, 0, "no", NULL, 0},
        {"aws", "region", KEY_STRING, OFF(region), 0, 64, NULL, NULL, 0},
        {"aws", "endpoint_url", KEY_STRING, OFF(endpoint_url), 0, 256, NULL, NULL, 0},
        {"aws", "connect_timeout_ms", KEY_UINT, OFF(aws_connect_timeout_ms), 10, 60000, "3000",
         NULL, 0},
        {"aws", "timeout_ms", KEY_UINT, OFF(aws_timeout_ms), 100, 600000, "30000", NULL, 0},
        {"aws", "retry_deadline_ms", KEY_UINT, OFF(aws_retry_deadline_ms), 0, 3600000, "120000",
         NULL, 0},
        {"aws", "max_attempts", KEY_UINT, OFF(aws_max_attempts), 1, 100, "8", NULL, 0},
        {"run", "mode", KEY_ENUM, OFF(mode), 0, 0, "no-reboot", WORDS(run_mode_table)},
        {"run", "state_dir", KEY_STRING, OFF(state_dir), 1, 1024, "/var/lib/ec2-imaged", NULL, 0},
        {"run", "wait_timeout_s", KEY_UINT, OFF(wait_timeout_s), 60, 86400, "7200", NULL, 0},
        {"run", "wait_poll_max_s", KEY_UINT, OFF(wait_poll_max_s), 1, 600, "60", NULL, 0},
        {"run", "adopt_timeout_s", KEY_UINT, OFF(adopt_timeout_s), 0, 3600, "300", NULL, 0},
        {"image", "name", KEY_STRING, OFF(image_name), 1, 512, "{hostname}-{date:%Y%m%d-%H%M%S}",
         NULL, 0},
        {"image", "description", KEY_STRING, OFF(image_description), 0, 512,
         "ec2-imaged run {run_id} of {instance_id}", NULL, 0},
        {"freeze", "mounts", KEY_STRV, OFF(freeze_mounts), 0, 64, "auto", NULL, 0},
        {"freeze", "timeout_ms", KEY_UINT, OFF(freeze_timeout_ms), 1000, 600000, "30000", NULL, 0},
        {"freeze", "on_failure", KEY_ENUM, OFF(freeze_on_failure), 0, 0, "abort",
         WORDS(freeze_on_failure_table)},
        {"hooks", "dir", KEY_STRING, OFF(hooks_dir), 1, 1024, "/etc/ec2-imaged/hooks", NULL, 0},
        {"hooks", "timeout_s", KEY_UINT, OFF(hook_timeout_s), 1, 86400, "600", NULL, 0},
        {"hooks", "kill_grace_s", KEY_UINT, OFF(hook_kill_grace_s), 1, 600, "10", NULL, 0},
        {"hooks", "continue_on_error", KEY_STRV, OFF(hooks_continue_on_error), 0, 4, "",
         WORDS(hook_phases)},
        {"daemon", "control_socket", KEY_STRING, OFF(control_socket), 1, 107,
         "/run/ec2-imaged/control.sock", NULL, 0},
        {"daemon", "user_data", KEY_BOOL, OFF(user_data), 0, 0, "no", NULL, 0},
        {"daemon", "stop_timeout_s", KEY_UINT, OFF(stop_timeout_s), 1, 3600, "60", NULL, 0},
        {"daemon", "cloud_init_wait_s", KEY_UINT, OFF(cloud_init_wait_s), 0, 86400, "1800", NULL,
         0},
        /* 31 regions besides the run's own: the state keeps RUN_DIST_MAX (32) of them. */
        {"distribute", "regions", KEY_STRV, OFF(dist_regions), 0, 31, "", NULL, 0},
        {"distribute", "kms_key", KEY_STRV, OFF(dist_kms_keys), 0, 32, "", NULL, 0},
        {"distribute", "share_accounts", KEY_STRV, OFF(dist_share_accounts), 0, 100, "", NULL, 0},
        {"distribute", "share_organizations", KEY_STRV, OFF(dist_share_orgs), 0, 20, "", NULL, 0},
        {"distribute", "share_ous", KEY_STRV, OFF(dist_share_ous), 0, 50, "", NULL, 0},
        {"distribute", "create_grants", KEY_BOOL, OFF(dist_create_grants), 0, 0, "no", NULL, 0},
        {"distribute", "deprecate_after_days", KEY_UINT, OFF(dist_deprecate_days), 0, 36500, "0",
         NULL, 0},
        {"distribute", "keep_newest", KEY_UINT, OFF(dist_keep_newest), 0, 1000, "0", NULL, 0},
        {"distribute", "keep_days", KEY_UINT, OFF(dist_keep_days), 0, 36500, "0", NULL, 0},
        {"distribute", "lineage", KEY_STRING, OFF(dist_lineage), 0, 128, NULL, NULL, 0},
        {"distribute", "launch_template", KEY_STRING, OFF(dist_launch_template), 0, 128, NULL, NULL,
         0},
        {"distribute", "launch_template_source_version", KEY_STRING, OFF(dist_lt_source_version), 1,
         32, "$Default", NULL, 0},
        {"distribute", "ssm_parameter", KEY_STRING, OFF(dist_ssm_parameter), 0, 1011, NULL, NULL,
         0},
        {"distribute", "max_copies_in_flight", KEY_UINT, OFF(dist_max_copies), 1, 50, "5", NULL, 0},
        {"sanitize", "enable", KEY_STRV, OFF(sanitize_enable), 0, 64, "", WORDS(sanitize_ops)},
        {"sanitize", "disable", KEY_STRV, OFF(sanitize_disable), 0, 64, "", WORDS(sanitize_ops)},
        {"sanitize", "restore_after_s", KEY_UINT, OFF(sanitize_restore_after_s), 60, 86400, "900",
         NULL, 0},
        {"sanitize", "script", KEY_STRING, OFF(sanitize_script), 1, 1024,
         "/usr/lib/ec2-imaged/hooks/sanitize", NULL, 0},
        {"patch", "hold", KEY_STRV, OFF(patch_hold), 0, 256, "", NULL, 0},
        {"patch", "on_reboot_required", KEY_ENUM, OFF(patch_on_reboot_required), 0, 0, "ignore",
         WORDS(patch_on_reboot_required_table)},
        {"patch", "script", KEY_STRING, OFF(patch_script), 1, 1024,
         "/usr/lib/ec2-imaged/hooks/patch", NULL, 0},
};

struct parse_ctx {
        struct config *config;
        struct config_error *err;
        const char *name;
        const char *data;
        size_t len, pos;
        unsigned line;
        int failed;       /* -errno of the first failure */
        char *long_value; /* the value of the current line when it is too long for inih */
};

/* Longest line we accept; inih's own buffer (200 in Debian's build) is far shorter. */
#define CONFIG_LINE_MAX 4096
/* What inih is handed instead of a value that lives in ctx->long_value. */
#define LONG_VALUE_MARK "\x01long"

static int set_error(struct parse_ctx *ctx, int r, const char *fmt, ...) _printf_(3, 4);
static int set_error(struct parse_ctx *ctx, int r, const char *fmt, ...)
{
        va_list ap;
        char *msg = NULL;

        if (ctx->failed)
                return 0;
        ctx->failed = r;
        va_start(ap, fmt);
        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL;
        va_end(ap);
        if (ctx->err) {
                config_error_done(ctx->err);
                ctx->err->file = strdup(ctx->name);
                ctx->err->line = ctx->line;
                ctx->err->message = msg;
        } else {
                free(msg);
        }
        return 0; /* tells inih to stop at this error */
}

static const struct config_key *find_key(const char *section, const char *name)
{
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                if (strcasecmp(keys[i].section, section) == 0 && streq(keys[i].name, name))
                        return &keys[i];
        return NULL;
}

/* Store one value into its field. Returns -errno and a message for the caller to report. */
static int apply(struct config *c, const struct config_key *k, const char *value, char **msg)
{
        void *field = (char *)c + k->offset;

        switch (k->type) {
        case KEY_STRING: {
                char **s = field, *n;
                if (strlen(value) > k->max)
                        return *msg = strprintf("value is longer than %lu characters", k->max),
                               -E2BIG;
                n = strdup(value);
                if (!n)
                        return -ENOMEM;
                free(*s);
                *s = *value ? n : (free(n), NULL);
                return 0;
        }
        case KEY_UINT: {
                uint64_t v;
                int r = safe_atou64(value, &v);
                if (r < 0)
                        return *msg = strprintf("'%s' is not a non-negative integer", value),
                               -EINVAL;
                if (v < k->min || v > k->max)
                        return *msg = strprintf("%s is out of range %lu..%lu", value, k->min,
                                                k->max),
                               -ERANGE;
                *(unsigned *)field = (unsigned)v;
                return 0;
        }
        case KEY_BOOL: {
                int b = parse_boolean(value);
                if (b < 0)
                        return *msg = strprintf("'%s' is not a boolean (yes/no)", value), -EINVAL;
                *(bool *)field = b;
                return 0;
        }
        case KEY_STRV: {
                char ***v = field, **n = NULL;
                _cleanup_free_ char *copy = strdup(value);
                char *save = NULL, *w;
                size_t count = 0;

                if (!copy)
                        return -ENOMEM;
                for (w = strtok_r(copy, " \t,", &save); w; w = strtok_r(NULL, " \t,", &save)) {
                        bool ok = !k->values ||
                                  string_table_find(k->values, k->n_values, w, false) >= 0;
                        if (!ok || ++count > k->max || strv_push(&n, w) < 0) {
                                strv_free(n);
                                if (!ok)
                                        return *msg = strprintf("'%s' is not allowed here", w),
                                               -EINVAL;
                                return *msg = strprintf("more than %lu entries", k->max), -E2BIG;
                        }
                }
                strv_free(*v);
                *v = n;
                return 0;
        }
        case KEY_ENUM: {
                int i = string_table_find(k->values, k->n_values, value, true);
                if (i < 0)
                        return *msg = strprintf("'%s' is not one of the allowed values", value),
                               -EINVAL;
                *(int *)field = i;
                return 0;
        }
        }
        return -EINVAL;
}

/*
 * "tag = Key=Value", repeatable. inih splits names at ':' as well as '=', so tag keys such as
 * "team:owner" could not be ini keys themselves; the key lives in the value instead.
 */
static int apply_tag(struct parse_ctx *ctx, const char *value)
{
        struct config *c = ctx->config;
        const char *eq = strchr(value, '=');
        size_t i, klen;

        if (!eq || eq == value)
                return set_error(ctx, -EINVAL, "[image] tag: expected Key=Value, got '%s'", value);
        klen = (size_t)(eq - value);
        while (klen > 0 && value[klen - 1] == ' ')
                klen--;
        eq++;
        while (*eq == ' ')
                eq++;
        /* AWS limits: keys 1..128 characters, values 0..256, and aws: is reserved. */
        if (klen == 0 || klen > 128 || strlen(eq) > 256)
                return set_error(ctx, -E2BIG,
                                 "[image] tag: key must be 1..128 and value 0..256 characters");
        if (klen >= 4 && strncasecmp(value, "aws:", 4) == 0)
                return set_error(ctx, -EINVAL, "[image] tag: the aws: prefix is reserved by AWS");
        if (klen >= 11 && strncmp(value, "ec2-imaged:", 11) == 0)
                return set_error(ctx, -EINVAL, "[image] tag: the ec2-imaged: prefix is ours");
        for (i = 0; i < c->n_tags; i++)
                if (strlen(c->tags[i].key) == klen && strncmp(c->tags[i].key, value, klen) == 0)
                        break;
        if (i == c->n_tags) {
                if (c->n_tags >= CONFIG_MAX_TAGS)
                        return set_error(ctx, -E2BIG, "[image] tag: more than %d tags",
                                         CONFIG_MAX_TAGS);
                c->tags[i].key = strndup(value, klen);
                if (!c->tags[i].key)
                        return set_error(ctx, -ENOMEM, "out of memory");
                c->n_tags++;
        }
        free(c->tags[i].value);
        c->tags[i].value = strdup(eq);
        if (!c->tags[i].value)
                return set_error(ctx, -ENOMEM, "out of memory");
        return 1;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
        struct parse_ctx *ctx = user;
        const struct config_key *k;
        _cleanup_free_ char *msg = NULL;
        int r;

        if (ctx->failed)
                return 0;
        if (!name) /* a bare [section] line */
                return 1;
        if (streq(value, LONG_VALUE_MARK) && ctx->long_value)
                value = ctx->long_value;
        if (strcasecmp(section, "image") == 0 && streq(name, "tag"))
                return apply_tag(ctx, value);
        k = find_key(section, name);
        if (!k)
                return set_error(ctx, -ENOENT, "unknown key '%s' in section [%s]", name, section);
        r = apply(ctx->config, k, value, &msg);
        if (r < 0)
                return set_error(ctx, r, "[%s] %s: %s", k->section, k->name,
                                 msg ? msg : "invalid value");
        return 1;
}

/* inih reads through us one line at a time, so we know the line number of every key. */
/*
 * A line longer than inih's buffer (a long list of mount points, say) would be cut by inih. Such a
 * line must be "key = value": we keep the value ourselves and hand inih the key with a marker that
 * the handler swaps back. Comments and section lines are never that long in practice; a long one
 * is refused.
 */
static char *long_line(struct parse_ctx *ctx, char *str, int num, const char *line, size_t n)
{
        const char *sep = strpbrk(line, "=:"), *v, *end = line + n;
        size_t klen;

        if (!sep || *line == '[' || *line == ';' || *line == '#') {
                set_error(ctx, -E2BIG, "line longer than %d characters is not key = value",
                          num - 2);
                return NULL;
        }
        klen = (size_t)(sep - line);
        if (klen + sizeof(" = " LONG_VALUE_MARK "\n") > (size_t)num) {
                set_error(ctx, -E2BIG, "key longer than %d characters", num / 2);
                return NULL;
        }
        for (v = sep + 1; v < end && (*v == ' ' || *v == '\t'); v++)
                ;
        /* inih's rule for inline comments: ';' after white space */
        for (const char *c = v; c < end; c++)
                if (*c == ';' && c > v && (c[-1] == ' ' || c[-1] == '\t')) {
                        end = c;
                        break;
                }
        while (end > v && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' || end[-1] == '\r'))
                end--;
        free(ctx->long_value);
        ctx->long_value = strndup(v, (size_t)(end - v));
        if (!ctx->long_value) {
                set_error(ctx, -ENOMEM, "out of memory");
                return NULL;
        }
        snprintf(str, (size_t)num, "%.*s= " LONG_VALUE_MARK "\n", (int)klen, line);
        return str;
}

static char *reader(char *str, int num, void *stream)
{
        struct parse_ctx *ctx = stream;
        char line[CONFIG_LINE_MAX + 2];
        size_t n = 0;

        if (ctx->pos >= ctx->len || ctx->failed)
                return NULL;
        ctx->line++;
        while (ctx->pos < ctx->len && n < CONFIG_LINE_MAX + 1) {
                char ch = ctx->data[ctx->pos++];
                if (ch == '\0') {
                        set_error(ctx, -EINVAL, "NUL byte in configuration");
                        return NULL;
                }
                line[n++] = ch;
                if (ch == '\n')
                        break;
        }
        line[n] = '\0';
        if (n > CONFIG_LINE_MAX) {
                set_error(ctx, -E2BIG, "line longer than %d characters", CONFIG_LINE_MAX);
                return NULL;
        }
        if (n + 1 > (size_t)num)
                return long_line(ctx, str, num, line, n);
        memcpy(str, line, n + 1);
        return str;
}

int config_parse_buffer(struct config *c, const char *data, size_t len, const char *name,
                        struct config_error *err)
{
        struct parse_ctx ctx = {.config = c, .err = err, .name = name, .data = data, .len = len};
        int r;

        if (len > CONFIG_MAX_SIZE) {
                set_error(&ctx, -EFBIG, "larger than %u bytes", CONFIG_MAX_SIZE);
                return ctx.failed;
        }
        r = ini_parse_stream(reader, &ctx, handler, &ctx);
        free(ctx.long_value);
        if (ctx.failed)
                return ctx.failed;
        if (r != 0) {
                /* inih found a syntax error (a line that is neither [section] nor key = value) */
                ctx.line = r > 0 ? (unsigned)r : ctx.line;
                set_error(&ctx, -EINVAL, "syntax error (expected [section] or key = value)");
                return ctx.failed;
        }
        return 0;
}

static int parse_file(struct config *c, const char *path, struct config_error *err)
{
        _cleanup_free_ char *data = NULL;
        struct parse_ctx ctx = {.name = path, .err = err};
        struct stat st;
        size_t n;
        FILE *f;
        int r;

        f = fopen(path, "re");
        if (!f)
                return -errno;
        /* /dev/null is allowed as "no settings", e.g. ec2-imaged --config /dev/null check */
        if (fstat(fileno(f), &st) < 0 || (!S_ISREG(st.st_mode) && !streq(path, "/dev/null"))) {
                fclose(f);
                set_error(&ctx, -EINVAL, "not a regular file");
                return ctx.failed;
        }
        if ((size_t)st.st_size > CONFIG_MAX_SIZE) {
                fclose(f);
                set_error(&ctx, -EFBIG, "larger than %u bytes", CONFIG_MAX_SIZE);
                return ctx.failed;
        }
        data = malloc((size_t)st.st_size + 1);
        if (!data) {
                fclose(f);
                return -ENOMEM;
        }
        n = fread(data, 1, (size_t)st.st_size, f);
        fclose(f);
        r = config_parse_buffer(c, data, n, path, err);
        if (r < 0)
                return r;
        return config_add_source(c, path, data, n);
}

static int conf_filter(const struct dirent *de)
{
        size_t l = strlen(de->d_name);

        return de->d_name[0] != '.' && l > 5 && streq(de->d_name + l - 5, ".conf");
}

static int load_dropins(struct config *c, const char *dir, struct config_error *err)
{
        struct dirent **list = NULL;
        int n, r = 0;

        n = scandir(dir, &list, conf_filter, alphasort);
        if (n < 0)
                return errno == ENOENT ? 0 : -errno;
        for (int i = 0; i < n; i++) {
                _cleanup_free_ char *p = NULL;
                if (r >= 0) {
                        p = strprintf("%s/%s", dir, list[i]->d_name);
                        r = p ? parse_file(c, p, err) : -ENOMEM;
                }
                free(list[i]);
        }
        free(list);
        return r;
}

static int apply_defaults(struct config *c)
{
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                _cleanup_free_ char *msg = NULL;
                int r;

                if (!keys[i].def || !*keys[i].def)
                        continue;
                r = apply(c, &keys[i], keys[i].def, &msg);
                if (r < 0)
                        return r;
        }
        return 0;
}

void config_init(struct config *c)
{
        *c = (struct config){};
        (void)apply_defaults(c);
}

void config_done(struct config *c)
{
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                if (keys[i].type == KEY_STRING)
                        free(*(char **)((char *)c + keys[i].offset));
                else if (keys[i].type == KEY_STRV)
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

int config_load(const char *path, bool explicit_path, struct config *ret, struct config_error *err)
{
        _cleanup_free_ char *dropins = NULL;
        struct config c;
        int r;

        if (!path)
                path = CONFIG_DEFAULT_PATH;
        config_init(&c);
        c.path = strdup(path);
        if (!c.path)
                return -ENOMEM;
        r = parse_file(&c, path, err);
        if (r == -ENOENT && !explicit_path)
                r = 0;
        else if (r < 0 && err && !err->message) {
                err->file = strdup(path);
                err->message = strprintf("cannot read: %s", strerror(-r));
        }
        if (r < 0)
                goto fail;
        if (streq(path, CONFIG_DEFAULT_PATH))
                dropins = strdup("/etc/ec2-imaged/conf.d");
        else
                dropins = strprintf("%s.d", path);
        if (!dropins) {
                r = -ENOMEM;
                goto fail;
        }
        r = load_dropins(&c, dropins, err);
        if (r < 0) {
                if (err && !err->message) {
                        err->file = strdup(dropins);
                        err->message = strprintf("cannot read: %s", strerror(-r));
                }
                goto fail;
        }
        *ret = c;
        return 0;
fail:
        config_done(&c);
        return r;
}

const char *const *config_known_keys(void)
{
        static const char *names[ELEMENTSOF(keys) + 1];

        if (!names[0])
                for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                        static char buf[ELEMENTSOF(keys)][64];
                        snprintf(buf[i], sizeof(buf[i]), "%s.%s", keys[i].section, keys[i].name);
                        names[i] = buf[i];
                }
        return names;
}
