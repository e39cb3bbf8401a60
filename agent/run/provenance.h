/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Provenance in the tags of a run's images: the [image] tag templates (core/template.h) rendered
 * once per run, before anything is changed, with what the run knows of this machine, and saved
 * in the run state (run->tags) so that every image, copy and resumed step carries the same values.
 *
 * The provenance placeholders:
 *   {source_image_id}  the AMI this instance was launched from (IMDS identity document)
 *   {os_id}            ID= of /etc/os-release (else /usr/lib/os-release); "" when absent
 *   {os_version}       VERSION_ID= of the same file; "" when absent
 *   {kernel}           uname -r of the run's start
 *   {patched_at}       STATE_DIR/patched-at, which hooks/patch writes after a successful upgrade
 *                      (ISO 8601 UTC, 2026-12-07T00:12:03Z); "never" when there is no such file,
 *                      "unknown" when it cannot be read or is not such a time
 *   {config_sha256}    SHA-256 (hex) of the configuration files as parsed (the main file, then
 *                      its drop-ins, each file's bytes one after another), then of every hook
 *                      that would run, phase by phase (pre-image, pre-freeze, hold, post-thaw,
 *                      post-image) and in each phase in run order, as "PHASE/NAME", a NUL byte
 *                      and the hook's contents
 *
 * Unless the configuration sets them, the tags TAG_SOURCE_IMAGE = "{source_image_id}" and TAG_OS
 * = "{os_id} {os_version}" (core/imagetags.h) come after the configured ones.
 */
#pragma once

#include "core/config.h"
#include "core/template.h"

struct context;
struct run_state;

/* What the provenance placeholders stand for. */
struct provenance {
        char *source_image_id;
        char *os_id;
        char *os_version;
        char *kernel;
        char *patched_at;
        char *config_sha256;
};
void provenance_done(struct provenance *p);

/* ID= and VERSION_ID= of os-release text (quotes and escapes as os-release(5)); NULL: absent. */
int os_release_parse(const char *data, size_t len, char **ret_id, char **ret_version);
/* STATE_DIR/patched-at read from the open state directory: see above. */
int patched_at_read(int state_dir_fd, char **ret);
/* {config_sha256} of cfg (its sources and the hooks in cfg->hooks_dir). */
int config_sha256_hex(const struct config *cfg, char out[static 65]);
/* Gather all of it for cfg; source_image_id is given (the instance's identity). */
int provenance_gather(const struct config *cfg, const char *source_image_id,
                      struct provenance *ret);

/*
 * Render cfg's [image] tags and the defaults with base (the image name's fields) and p into
 * run->tags, which must be empty. A rendered value over 256 characters or starting with "aws:"
 * is -E2BIG / -EINVAL with *ret_error naming the tag.
 */
int provenance_render_tags(const struct config *cfg, const struct template_fields *base,
                           const struct provenance *p, struct run_state *run, char **ret_error);

/*
 * The run's image name ([image] name) into run->image_name and its tags into run->tags, from the
 * instance's identity in ctx (loaded), before anything is changed; used by the run and by
 * `check`. On failure *ret_error says which template and why.
 */
int run_name_and_tags(const struct context *ctx, struct run_state *run, char **ret_error);
