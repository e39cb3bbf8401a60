/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Templates with "{field}" and "{date:strftime-format}" placeholders: the image's name and
 * description (run/imagename.h) and the values of [image] tag lines. Here, below the run, so that
 * the configuration can check a tag's template when it is loaded.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/*
 * What the placeholders stand for. The provenance fields (source_image_id and below) exist in
 * tag values only: with provenance false they are unknown fields. NULL renders as "".
 */
struct template_fields {
        const char *instance_id;
        const char *hostname;
        const char *region;
        const char *account_id;
        const char *run_id;
        const char *mode;
        time_t now;
        bool provenance;
        const char *source_image_id; /* the AMI this instance was launched from */
        const char *os_id;           /* os-release ID */
        const char *os_version;      /* os-release VERSION_ID */
        const char *kernel;          /* uname -r */
        const char *patched_at;      /* the patch hook's last upgrade, or "never" */
        const char *config_sha256;   /* run/provenance.h says over what */
};

/*
 * Render "{field}" and "{date:strftime-format}" (UTC) placeholders. An unknown field or an
 * unterminated brace is -EINVAL with a message in *ret_error.
 */
int template_render(const char *tmpl, const struct template_fields *f, char **ret,
                    char **ret_error);

/*
 * Check a template without rendering it: every placeholder known (the provenance ones too when
 * provenance is set), every brace closed. 0 with *ret_literal, the number of characters (UTF-8
 * code points) outside placeholders (the least the template renders to), else -EINVAL with a
 * message in *ret_error.
 */
int template_check(const char *tmpl, bool provenance, size_t *ret_literal, char **ret_error);

/* Characters of a UTF-8 string (code points: what EC2's tag limits count). */
size_t utf8_chars(const char *s);
