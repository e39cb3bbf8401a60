/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reading configuration files: inih through a reader of our own (line numbers, long lines), one
 * handler that stores each key by config.c's table, and the main file with its drop-ins.
 */
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

#include "aws/vocab.h"
#include "core/config_internal.h"
#include "core/imagetags.h"
#include "core/template.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/parse.h"
#include "util/str.h"
#include "util/strtable.h"

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

/* Our keys an operator may set in place of our default (imagetags.h): they add no tag. */
static bool tag_replaces_default(const char *key)
{
        return streq(key, TAG_SOURCE_IMAGE) || streq(key, TAG_OS);
}

/*
 * EC2's rules for a tag (its user guide's "Tag restrictions"): a key of 1..128 and a value of at
 * most 256 Unicode characters, neither starting with "aws:" in any case (reserved for AWS). The
 * value is a template (core/template.h): its placeholders must be known, and its characters
 * outside them already count against the limit; what it renders to is checked again when a run
 * renders it (run/provenance.c). The ec2-imaged: prefix is ours, but for the defaults an operator
 * may replace.
 */
static int check_tag(struct parse_ctx *ctx, const char *key, const char *value)
{
        _cleanup_free_ char *err = NULL;
        size_t literal;

        if (utf8_chars(key) > 128)
                return set_error(ctx, -E2BIG, "[image] tag '%s': key longer than 128 characters",
                                 key);
        if (strncasecmp(key, "aws:", 4) == 0 || strncasecmp(value, "aws:", 4) == 0)
                return set_error(ctx, -EINVAL,
                                 "[image] tag '%s': the aws: prefix is reserved by AWS", key);
        if (startswith(key, "ec2-imaged:") && !tag_replaces_default(key))
                return set_error(ctx, -EINVAL,
                                 "[image] tag '%s': the ec2-imaged: prefix is ours (but for %s "
                                 "and %s)",
                                 key, TAG_SOURCE_IMAGE, TAG_OS);
        if (template_check(value, true, &literal, &err) < 0)
                return set_error(ctx, -EINVAL, "[image] tag '%s': %s", key, err);
        if (literal > 256)
                return set_error(ctx, -E2BIG,
                                 "[image] tag '%s': value longer than 256 characters (%zu "
                                 "before its placeholders are filled in)",
                                 key, literal);
        return 1;
}

/*
 * "tag = Key=Value", repeatable. inih splits names at ':' as well as '=', so tag keys such as
 * "team:owner" could not be ini keys themselves; the key lives in the value instead. A key given
 * twice in one file is an error; a later file (a drop-in) replaces an earlier file's value, as it
 * does for every key.
 */
static int apply_tag(struct parse_ctx *ctx, const char *value)
{
        struct config *c = ctx->config;
        const char *eq = strchr(value, '=');
        _cleanup_free_ char *key = NULL;
        size_t i, klen, counted = 0;
        int r;

        if (!eq || eq == value)
                return set_error(ctx, -EINVAL, "[image] tag: expected Key=Value, got '%s'", value);
        for (klen = (size_t)(eq - value); klen > 0 && value[klen - 1] == ' '; klen--)
                ;
        for (eq++; *eq == ' '; eq++)
                ;
        if (klen == 0)
                return set_error(ctx, -EINVAL, "[image] tag: empty key in '%s'", value);
        key = strndup(value, klen);
        if (!key)
                return set_error(ctx, -ENOMEM, "out of memory");
        r = check_tag(ctx, key, eq);
        if (r <= 0)
                return r;
        for (i = 0; i < c->n_tags && !streq(c->tags[i].key, key); i++)
                counted += !tag_replaces_default(c->tags[i].key);
        if (i < c->n_tags && c->tags[i].source == c->n_sources)
                return set_error(ctx, -EEXIST, "[image] tag '%s': duplicate key (also on line %u)",
                                 key, c->tags[i].line);
        if (i == c->n_tags) {
                if (!tag_replaces_default(key) && counted + 1 + IMAGE_TAGS_OWN > EC2_TAGS_MAX)
                        return set_error(ctx, -E2BIG,
                                         "[image] tag '%s': more than %d tags (EC2 allows %d on "
                                         "an image, and ec2-imaged puts %d of its own)",
                                         key, EC2_TAGS_MAX - IMAGE_TAGS_OWN, EC2_TAGS_MAX,
                                         IMAGE_TAGS_OWN);
                c->tags[i].key = TAKE_PTR(key);
                c->n_tags++;
        }
        c->tags[i].source = c->n_sources;
        c->tags[i].line = ctx->line;
        free(c->tags[i].value);
        c->tags[i].value = strdup(eq);
        if (!c->tags[i].value)
                return set_error(ctx, -ENOMEM, "out of memory");
        return 1;
}

/* Shapes the key table cannot say ([notify]), checked here so that the error names the line. */
static int check_shape(const struct config_key *k, const char *value, char **msg)
{
        static const char bus_chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789._-/";
        _cleanup_free_ char *region = NULL;
        size_t n = strlen(value);

        if (n == 0 || strcasecmp(k->section, "notify") != 0)
                return 0;
        if (streq(k->name, "sns_topic_arn") && aws_arn_region(value, "sns", &region) < 0)
                return *msg = strprintf("'%s' is not an SNS topic ARN "
                                        "(arn:aws:sns:REGION:ACCOUNT:NAME)",
                                        value),
                       -EINVAL;
        if (streq(k->name, "event_bus") &&
            (startswith(value, "arn:")
                     ? aws_arn_region(value, "events", &region) < 0 || !strstr(value, ":event-bus/")
                     : n > 256 || strspn(value, bus_chars) != n))
                return *msg = strprintf("'%s' is neither an event bus name nor an event bus ARN "
                                        "(arn:aws:events:REGION:ACCOUNT:event-bus/NAME)",
                                        value),
                       -EINVAL;
        if (streq(k->name, "prometheus_textfile") && (value[0] != '/' || value[n - 1] == '/'))
                return *msg = strprintf("'%s' is not the absolute path of a file", value), -EINVAL;
        return 0;
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
        k = config_find_key(section, name);
        if (!k)
                return set_error(ctx, -ENOENT, "unknown key '%s' in section [%s]", name, section);
        r = config_apply(ctx->config, k, value, &msg);
        if (r >= 0)
                r = check_shape(k, value, &msg);
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
