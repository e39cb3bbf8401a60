/* SPDX-License-Identifier: Apache-2.0 */
/* Templates with placeholders (see template.h). */
#include "core/template.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/macro.h"
#include "util/str.h"

#define TEMPLATE_MAX 4096

static const struct {
        const char *name;
        size_t offset;
        bool provenance;
} fields[] = {
        {"instance_id", offsetof(struct template_fields, instance_id), false},
        {"hostname", offsetof(struct template_fields, hostname), false},
        {"region", offsetof(struct template_fields, region), false},
        {"account_id", offsetof(struct template_fields, account_id), false},
        {"run_id", offsetof(struct template_fields, run_id), false},
        {"mode", offsetof(struct template_fields, mode), false},
        {"source_image_id", offsetof(struct template_fields, source_image_id), true},
        {"os_id", offsetof(struct template_fields, os_id), true},
        {"os_version", offsetof(struct template_fields, os_version), true},
        {"kernel", offsetof(struct template_fields, kernel), true},
        {"patched_at", offsetof(struct template_fields, patched_at), true},
        {"config_sha256", offsetof(struct template_fields, config_sha256), true},
};

/* The index of the field "{name}" (len characters), or -1 when there is none (in this scope). */
static int field_index(const char *name, size_t len, bool provenance)
{
        for (size_t i = 0; i < ELEMENTSOF(fields); i++)
                if (strlen(fields[i].name) == len && strncmp(fields[i].name, name, len) == 0 &&
                    (provenance || !fields[i].provenance))
                        return (int)i;
        return -1;
}

static char *unknown_field(const char *p, const char *close, const char *tmpl, bool provenance)
{
        return strprintf("unknown field '%.*s' in template '%s' (known: instance_id hostname "
                         "region account_id run_id mode date:FORMAT%s)",
                         (int)(close - p + 1), p, tmpl,
                         provenance ? " source_image_id os_id os_version kernel patched_at "
                                      "config_sha256"
                                    : "");
}

int template_check(const char *tmpl, bool provenance, size_t *ret_literal, char **ret_error)
{
        size_t literal = 0;

        for (const char *p = tmpl; *p;) {
                const char *close;

                if (*p != '{') {
                        /* continuation bytes of UTF-8 are not characters of their own */
                        literal += ((unsigned char)*p & 0xC0) != 0x80;
                        p++;
                        continue;
                }
                close = strchr(p, '}');
                if (!close) {
                        *ret_error = strprintf("unterminated '{' in template '%s'", tmpl);
                        return -EINVAL;
                }
                if (!startswith(p, "{date:") &&
                    field_index(p + 1, (size_t)(close - p - 1), provenance) < 0) {
                        *ret_error = unknown_field(p, close, tmpl, provenance);
                        return -EINVAL;
                }
                p = close + 1;
        }
        *ret_literal = literal;
        return 0;
}

static int render_date(struct buf *b, const char *p, const char *close, time_t now,
                       char **ret_error)
{
        _cleanup_free_ char *fmt = strndup(p + 6, (size_t)(close - p - 6));
        char out[256];
        struct tm tm;
        size_t n;

        if (!fmt)
                return -ENOMEM;
        gmtime_r(&now, &tm);
        /* The format comes from the administrator's configuration, by design. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        n = strftime(out, sizeof(out), fmt, &tm);
#pragma GCC diagnostic pop
        if (n == 0 && *fmt) {
                *ret_error = strprintf("date format '%s' yields nothing", fmt);
                return -EINVAL;
        }
        return buf_append(b, out, n);
}

int template_render(const char *tmpl, const struct template_fields *f, char **ret, char **ret_error)
{
        struct buf b = {.max = TEMPLATE_MAX};
        const char *p = tmpl;
        int r = 0;

        while (*p && r >= 0) {
                const char *close, *v;
                int i;

                if (*p != '{') {
                        r = buf_append(&b, p++, 1);
                        continue;
                }
                close = strchr(p, '}');
                if (!close) {
                        *ret_error = strprintf("unterminated '{' in template '%s'", tmpl);
                        r = -EINVAL;
                        break;
                }
                if (startswith(p, "{date:")) {
                        r = render_date(&b, p, close, f->now, ret_error);
                } else {
                        i = field_index(p + 1, (size_t)(close - p - 1), f->provenance);
                        if (i < 0) {
                                *ret_error = unknown_field(p, close, tmpl, f->provenance);
                                r = -EINVAL;
                                break;
                        }
                        v = *(const char *const *)((const char *)f + fields[i].offset);
                        r = buf_append(&b, strempty(v), strlen(strempty(v)));
                }
                p = close + 1;
        }
        if (r == -EFBIG)
                *ret_error =
                        strprintf("template '%s' renders longer than %d bytes", tmpl, TEMPLATE_MAX);
        if (r < 0) {
                buf_free(&b);
                return r;
        }
        *ret = buf_steal(&b, NULL);
        return *ret ? 0 : -ENOMEM;
}

size_t utf8_chars(const char *s)
{
        size_t n = 0;

        for (; *s; s++)
                n += ((unsigned char)*s & 0xC0) != 0x80;
        return n;
}
