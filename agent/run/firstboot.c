/* SPDX-License-Identifier: Apache-2.0 */
/* First boot from user-data: the `#ec2-imaged:` directive, strictly parsed, once per instance id.
 */
#include "run/firstboot.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/context.h"
#include "host/hooks.h"
#include "aws/imds.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/str.h"

#define MARKER_MAX 128

static bool is_blank(char c)
{
        return c == ' ' || c == '\t';
}

/* One word "key=value" of a directive line; wlen bytes at w. */
static int apply_word(struct userdata_directive *d, const char *w, size_t wlen, const char **msg)
{
        const char *eq = memchr(w, '=', wlen);
        size_t kl, vl;
        const char *v;

        if (!eq) {
                *msg = "expected key=value";
                return -EINVAL;
        }
        kl = (size_t)(eq - w);
        v = eq + 1;
        vl = wlen - kl - 1;
        if (kl == 3 && memcmp(w, "run", 3) == 0) {
                if (vl == 10 && memcmp(v, "first-boot", 10) == 0) {
                        d->first_boot = true;
                        return 0;
                }
                *msg = "run: the only value is first-boot";
                return -EINVAL;
        }
        if (kl == 4 && memcmp(w, "mode", 4) == 0) {
                _cleanup_free_ char *name = strndup(v, vl);
                int m = name ? run_mode_from_string(name) : -ENOMEM;

                if (m == -ENOMEM)
                        return m;
                if (m < 0) {
                        *msg = "mode: must be no-reboot or reboot";
                        return -EINVAL;
                }
                d->has_mode = true;
                d->mode = (enum run_mode)m;
                return 0;
        }
        if (kl == 10 && memcmp(w, "boot-check", 10) == 0) {
                /*
                 * A run id: what ec2-imaged's run ids are made of, and never empty. v is a word
                 * of the user-data, not a string: no strspn() past its vl bytes.
                 */
                bool ok = vl > 0 && vl <= USERDATA_RUN_ID_MAX;

                for (size_t k = 0; ok && k < vl; k++)
                        ok = isxdigit((unsigned char)v[k]) || v[k] == '-';
                if (!ok) {
                        *msg = "boot-check: must be a run id";
                        return -EINVAL;
                }
                memcpy(d->boot_check, v, vl);
                d->boot_check[vl] = '\0';
                return 0;
        }
        *msg = "unknown key (known: run, mode, boot-check)";
        return -EINVAL;
}

static int parse_line(struct userdata_directive *d, const char *p, size_t len, const char **msg)
{
        size_t i = 0;

        if (len > USERDATA_LINE_MAX) {
                *msg = "directive line too long";
                return -EINVAL;
        }
        for (size_t k = 0; k < len; k++)
                if ((unsigned char)p[k] < ' ' && p[k] != '\t') {
                        *msg = "control character in the directive";
                        return -EINVAL;
                } else if ((unsigned char)p[k] > '~') {
                        *msg = "non-ASCII character in the directive";
                        return -EINVAL;
                }
        while (i < len) {
                size_t start;
                int r;

                while (i < len && is_blank(p[i]))
                        i++;
                if (i == len)
                        break;
                if (p[i] == '#') /* a trailing comment */
                        break;
                start = i;
                while (i < len && !is_blank(p[i]))
                        i++;
                r = apply_word(d, p + start, i - start, msg);
                if (r < 0)
                        return r;
        }
        return 0;
}

int userdata_parse(const char *data, size_t len, struct userdata_directive *ret, unsigned *ret_line,
                   const char **ret_message)
{
        struct userdata_directive d = {};
        const size_t plen = strlen(USERDATA_PREFIX);
        unsigned line = 0, n = 0;

        if (len > USERDATA_MAX)
                return -EFBIG;
        /* gzip (cloud-init accepts it); we do not decompress outside input */
        if (len >= 2 && (unsigned char)data[0] == 0x1f && (unsigned char)data[1] == 0x8b) {
                *ret = d;
                return 0;
        }
        for (size_t pos = 0; pos < len;) {
                const char *p = data + pos, *nl = memchr(p, '\n', len - pos);
                size_t l = nl ? (size_t)(nl - p) : len - pos, i = 0;
                const char *msg = NULL;

                pos += l + 1;
                line++;
                if (l > 0 && p[l - 1] == '\r')
                        l--;
                while (i < l && is_blank(p[i]))
                        i++;
                if (l - i < plen || memcmp(p + i, USERDATA_PREFIX, plen) != 0)
                        continue;
                if (++n > USERDATA_DIRECTIVES_MAX)
                        msg = "more than 16 directive lines";
                else if (parse_line(&d, p + i + plen, l - i - plen, &msg) >= 0)
                        msg = NULL;
                if (msg) {
                        if (ret_line)
                                *ret_line = line;
                        if (ret_message)
                                *ret_message = msg;
                        return -EINVAL;
                }
                d.found = true;
                d.line = line;
        }
        *ret = d;
        return 0;
}

/* The instance id that had its first-boot run, from STATE_DIR/first-boot, or NULL. */
static int recorded_instance(const char *state_dir, char **ret)
{
        _cleanup_free_ char *text = NULL;
        int r;

        r = read_file_in(state_dir, "first-boot", MARKER_MAX, &text, NULL);
        if (r < 0)
                return log_error_errno(r, "%s/first-boot: %m", state_dir);
        if (text)
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

/*
 * The directive sits in the user-data that cloud-init is still acting on (packages, runcmd) when
 * the daemon starts, and sanitization must not race cloud-init writing its instance state: let
 * cloud-init finish first. `cloud-init status --wait` exits 0 when done (or disabled), 2 (since
 * 23.4) when done with recoverable errors, 1 on errors. 0 to run, else -errno (logged).
 */
static int wait_for_cloud_init(const struct config *cfg)
{
        _cleanup_free_ char *path = NULL;
        char *argv[] = {NULL, (char *)"status", (char *)"--wait", NULL};
        struct hook_result res;
        const char *search = getenv("PATH");
        int r;

        if (cfg->cloud_init_wait_s == 0)
                return 0;
        r = find_executable("cloud-init", search && *search ? search : HOOK_PATH_ENV, &path);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return log_error_errno(r, "Cannot look for cloud-init: %m");
        log_info("Waiting up to %u s for cloud-init to finish before the first-boot run",
                 cfg->cloud_init_wait_s);
        argv[0] = path;
        r = hooks_run_helper("cloud-init", "first-boot wait", argv, cfg->cloud_init_wait_s * 1000u,
                             &res);
        if (r == -EPROTO && res.status == HOOK_EXITED && res.exit_status == 2) {
                log_warning("cloud-init finished with recoverable errors (see `cloud-init status "
                            "--long`); going on with the first-boot run");
                r = 0;
        } else if (r < 0) {
                log_error("No first-boot run: %s; see `cloud-init status --long`",
                          strna(res.message));
        }
        hook_result_done(&res);
        return r;
}

int first_boot_decide(struct context *ctx, enum run_mode *ret_mode, char *ret_boot_check,
                      const char **ret_reason)
{
        const struct config *cfg = ctx->config;
        _cleanup_free_ char *data = NULL, *done = NULL;
        struct userdata_directive d;
        const char *msg = NULL;
        unsigned line = 0;
        size_t len = 0;
        int r, wait;

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
        if (d.boot_check[0]) {
                log_notice("user-data:%u: launched by the boot check of run %s: reporting only",
                           d.line, d.boot_check);
                memcpy(ret_boot_check, d.boot_check, sizeof(d.boot_check));
                *ret_reason = "launched by a boot check, which it reported to";
                return FIRST_BOOT_BOOT_CHECK;
        }
        /* The daemon starts this worker for [boot_check] enable = yes too. */
        if (!cfg->user_data) {
                *ret_reason = "[daemon] user_data = no";
                return FIRST_BOOT_NONE;
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
        *ret_mode = d.has_mode ? d.mode : cfg->mode;
        /* Killed while waiting (the daemon restarted), the next start decides again. */
        wait = wait_for_cloud_init(cfg);
        r = record_instance(cfg->state_dir, ctx->identity.instance_id);
        if (r < 0)
                return r;
        if (wait < 0)
                return wait;
        log_notice("user-data:%u asks for a first-boot run (%s) of %s", d.line,
                   run_mode_to_string(*ret_mode), ctx->identity.instance_id);
        *ret_reason = "run=first-boot";
        return FIRST_BOOT_RUN;
}
