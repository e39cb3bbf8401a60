/* SPDX-License-Identifier: Apache-2.0 */
/* Image names and descriptions from templates, checked against EC2's AMI name rules. */
#pragma once

#include <time.h>

struct image_name_fields {
        const char *instance_id;
        const char *hostname;
        const char *region;
        const char *account_id;
        const char *run_id;
        const char *mode;
        time_t now;
};

/*
 * Render "{field}" and "{date:strftime-format}" (UTC) placeholders. An unknown field or an
 * unterminated brace is -EINVAL with a message in *ret_error.
 */
int template_render(const char *tmpl, const struct image_name_fields *f, char **ret,
                    char **ret_error);

/* EC2's rules for AMI names: 3..128 characters of [A-Za-z0-9()[] ./'@_-]. */
int ami_name_check(const char *name, char **ret_error);

/* Render and check a name in one go. */
int image_name_render(const char *tmpl, const struct image_name_fields *f, char **ret,
                      char **ret_error);
