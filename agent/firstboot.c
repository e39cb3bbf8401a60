/* First boot from user-data: the directive, once per instance id. */
#include "firstboot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "context.h"
#include "imds.h"
#include "userdata.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/str.h"

#define MARKER_MAX 128

/* The instance id that had its first-boot run, from STATE_DIR/first-boot, or NULL. */
static int recorded_instance(const char *state_dir, char **ret)
{
        _cleanup_free_ char *path = strprintf("%s/first-boot", state_dir), *text = NULL;
        size_t len;
        int r;

        if (!path)
                return -ENOMEM;
        r = read_file_bounded(path, MARKER_MAX, &text, &len);
        if (r == -ENOENT) {
                *ret = NULL;
                return 0;
        }
        if (r < 0)
                return log_error_errno(r, "%s: %m", path);
        text[strcspn(text, "\n")] = '\0';
        *ret = TAKE_PTR(text);
        return 0;
}

static int record_instance(const char *state_dir, const char *instance_id)
{
        _cleanup_free_ char *path = strprintf("%s/first-boot", state_dir);
        _cleanup_free_ char *line = strprintf("%s\n", instance_id);
        int r;

        if (!path || !line)
                return -ENOMEM;
        r = mkdir_parents(state_dir, 0700);
        if (r >= 0)
                r = write_file_atomic(path, line, strlen(line), 0600);
        if (r < 0)
                return log_error_errno(r, "%s: cannot record the first-boot run: %m", path);
        return 0;
}

int first_boot_decide(struct context *ctx, enum run_mode *ret_mode, const char **ret_reason)
{
        const struct config *cfg = ctx->config;
        _cleanup_free_ char *data = NULL, *done = NULL;
        struct userdata_directive d;
        const char *msg = NULL;
        unsigned line = 0;
        size_t len = 0;
        int r;

        r = imds_user_data(ctx->imds, &data, &len);
        if (r == -ENOENT) {
                *ret_reason = "the instance has no user-data";
                return FIRST_BOOT_NONE;
        }
        if (r == -EFBIG) {
                *ret_reason = "the user-data is too large to look into";
                log_warning("User-data over %u bytes: not looked into for a directive",
                            USERDATA_MAX);
                return FIRST_BOOT_NONE;
        }
        if (r < 0)
                return log_error_errno(r, "Cannot read the user-data from IMDS: %m");
        r = userdata_parse(data, len, &d, &line, &msg);
        if (r == -EFBIG) {
                *ret_reason = "the user-data is too large to look into";
                return FIRST_BOOT_NONE;
        }
        if (r < 0) {
                log_error("user-data:%u: " USERDATA_PREFIX " %s; no first-boot run", line, msg);
                return -EINVAL;
        }
        if (!d.found || !d.first_boot) {
                *ret_reason = d.found ? "the user-data directive has no run=first-boot"
                                      : "no " USERDATA_PREFIX " directive in the user-data";
                return FIRST_BOOT_NONE;
        }
        r = recorded_instance(cfg->state_dir, &done);
        if (r < 0)
                return r;
        if (streq_ptr(done, ctx->identity.instance_id)) {
                *ret_reason = "this instance had its first-boot run already";
                return FIRST_BOOT_DONE_BEFORE;
        }
        r = run_mode_from_string(d.mode ? d.mode : cfg->mode);
        if (r < 0)
                return r;
        *ret_mode = (enum run_mode)r;
        r = record_instance(cfg->state_dir, ctx->identity.instance_id);
        if (r < 0)
                return r;
        log_notice("user-data:%u asks for a first-boot run (%s) of %s", d.line,
                   run_mode_to_string(*ret_mode), ctx->identity.instance_id);
        *ret_reason = "run=first-boot";
        return FIRST_BOOT_RUN;
}
