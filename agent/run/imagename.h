/* SPDX-License-Identifier: Apache-2.0 */
/* Image names and descriptions from templates, checked against EC2's AMI name rules. */
#pragma once

#include "core/template.h"

/* EC2's rules for AMI names: 3..128 characters of [A-Za-z0-9()[] ./'@_-]. */
int ami_name_check(const char *name, char **ret_error);

/* Render and check a name in one go. */
int image_name_render(const char *tmpl, const struct template_fields *f, char **ret,
                      char **ret_error);
