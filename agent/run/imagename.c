/* SPDX-License-Identifier: Apache-2.0 */
/* Template rendering for image names and descriptions. */
#include "run/imagename.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/macro.h"
#include "util/str.h"

static const char *field_value(const struct image_name_fields *f, const char *name, size_t len)
{
        static const struct {
                const char *name;
                size_t offset;
        } fields[] = {
                {"instance_id", offsetof(struct image_name_fields, instance_id)},
                {"hostname", offsetof(struct image_name_fields, hostname)},
                {"region", offsetof(struct image_name_fields, region)},
                {"account_id", offsetof(struct image_name_fields, account_id)},
                {"run_id", offsetof(struct image_name_fields, run_id)},
                {"mode", offsetof(struct image_name_fields, mode)},
        };

        for (size_t i = 0; i < ELEMENTSOF(fields); i++)
                if (strlen(fields[i].name) == len && strncmp(fields[i].name, name, len) == 0) {
                        const char *v = *(const char *const *)((const char *)f + fields[i].offset);
                        return v ? v : "";
                }
        return NULL;
}

int template_render(const char *tmpl, const struct image_name_fields *f, char **ret,
                    char **ret_error)
{
        struct buf b = {.max = 4096};
        const char *p = tmpl;
        int r = 0;

        while (*p && r >= 0) {
                const char *close;

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
                        _cleanup_free_ char *fmt = strndup(p + 6, (size_t)(close - p - 6));
                        char out[256];
                        struct tm tm;
                        size_t n;

                        if (!fmt) {
                                r = -ENOMEM;
                                break;
                        }
                        gmtime_r(&f->now, &tm);
                        /* The format comes from the administrator's configuration, by design. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
                        n = strftime(out, sizeof(out), fmt, &tm);
#pragma GCC diagnostic pop
                        if (n == 0 && *fmt) {
                                *ret_error = strprintf("date format '%s' yields nothing", fmt);
                                r = -EINVAL;
                                break;
                        }
                        r = buf_append(&b, out, n);
                } else {
                        const char *v = field_value(f, p + 1, (size_t)(close - p - 1));
                        if (!v) {
                                *ret_error = strprintf(
                                        "unknown field '%.*s' in template '%s' (known: "
                                        "instance_id hostname region account_id run_id mode "
                                        "date:FORMAT)",
                                        (int)(close - p + 1), p, tmpl);
                                r = -EINVAL;
                                break;
                        }
                        r = buf_append(&b, v, strlen(v));
                }
                p = close + 1;
        }
        if (r == -EFBIG)
                *ret_error = strprintf("template '%s' renders longer than 4096 bytes", tmpl);
        if (r < 0) {
                buf_free(&b);
                return r;
        }
        *ret = buf_steal(&b, NULL);
        return *ret ? 0 : -ENOMEM;
}

int ami_name_check(const char *name, char **ret_error)
{
        size_t len = strlen(name);

        if (len < 3 || len > 128) {
                *ret_error =
                        strprintf("image name '%s' must be 3..128 characters, not %zu", name, len);
                return -EINVAL;
        }
        for (const char *c = name; *c; c++) {
                if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                    (*c >= '0' && *c <= '9') || strchr("()[] ./-'@_", *c))
                        continue;
                *ret_error = strprintf("image name '%s' has '%c', which AMI names do not allow "
                                       "(letters, digits and ()[] ./-'@_ only)",
                                       name, *c);
                return -EINVAL;
        }
        return 0;
}

int image_name_render(const char *tmpl, const struct image_name_fields *f, char **ret,
                      char **ret_error)
{
        _cleanup_free_ char *name = NULL;
        int r = template_render(tmpl, f, &name, ret_error);

        if (r < 0)
                return r;
        r = ami_name_check(name, ret_error);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(name);
        return 0;
}
