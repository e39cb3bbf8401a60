/* SPDX-License-Identifier: Apache-2.0 */
/* Image names: a template rendered (core/template.h), checked against EC2's AMI name rules. */
#include "run/imagename.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/macro.h"
#include "util/str.h"

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

int image_name_render(const char *tmpl, const struct template_fields *f, char **ret,
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
