/* SPDX-License-Identifier: Apache-2.0 */
/* The clone's side of the boot check: look at this boot, report by a tag, power off. */
#include "run/bootcheck_report.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aws/creds_provider.h"
#include "aws/ec2.h"
#include "core/context.h"
#include "core/imagetags.h"
#include "host/hooks.h"
#include "host/hooks_list.h"
#include "util/buf.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/str.h"

#define SYSTEMCTL_TIMEOUT_MS 60000u

static int append(struct buf *b, const char *s)
{
        return buf_printf(b, "%s%s", b->len > strlen("failed:") ? "; " : "", s);
}

char *boot_report_verdict(const struct boot_report_input *in)
{
        struct buf b = {};
        char *out;
        int r;

        if (streq_ptr(in->system_state, "running") && !in->inactive_units && !in->local_check)
                return strdup("ok");
        r = buf_printf(&b, "failed:");
        if (r >= 0 && !streq_ptr(in->system_state, "running")) {
                _cleanup_free_ char *s =
                        strprintf("system %s", in->system_state ? in->system_state : "unknown");
                r = s ? append(&b, s) : -ENOMEM;
        }
        for (char *const *u = in->failed_units; r >= 0 && u && *u; u++) {
                _cleanup_free_ char *s = strprintf("%s failed", *u);
                r = s ? append(&b, s) : -ENOMEM;
        }
        for (char *const *u = in->inactive_units; r >= 0 && u && *u; u++) {
                _cleanup_free_ char *s = strprintf("required %s", *u);
                r = s ? append(&b, s) : -ENOMEM;
        }
        if (r >= 0 && in->local_check)
                r = append(&b, in->local_check);
        out = r >= 0 ? buf_steal(&b, NULL) : NULL;
        buf_free(&b);
        if (!out)
                return NULL;
        /* A tag value: printable ASCII (unit names may hold escapes), EC2's length. */
        for (char *p = out; *p; p++)
                if ((unsigned char)*p < ' ' || (unsigned char)*p > '~')
                        *p = '?';
        if (strlen(out) > BOOT_REPORT_MAX)
                out[BOOT_REPORT_MAX] = '\0';
        return out;
}

/* Run systemctl with args; *ret_lines: its output's last lines. Its exit status, or -errno. */
static int systemctl(const char *path, const char *a1, const char *a2, const char *a3,
                     const char *a4, unsigned timeout_ms, char ***ret_lines)
{
        char *argv[] = {(char *)path, (char *)a1, (char *)a2, (char *)a3, (char *)a4, NULL};
        struct hook_result res = {};
        int r;

        r = hooks_run_helper("systemctl", "boot check", argv, timeout_ms, &res);
        if (r == -EPROTO && res.status == HOOK_EXITED)
                r = res.exit_status;
        if (r >= 0 && ret_lines) {
                *ret_lines = res.tail;
                res.tail = NULL;
        }
        hook_result_done(&res);
        return r;
}

/* The first word of each line ("unit.service loaded failed failed ..."). */
static int first_words(char **lines, char ***ret)
{
        for (char **l = lines; l && *l; l++) {
                (*l)[strcspn(*l, " \t")] = '\0';
                if (**l && strv_push(ret, *l) < 0)
                        return -ENOMEM;
        }
        return 0;
}

/* systemd's view: the system state (waiting for the boot to finish) and its failed units. */
static int look_at_systemd(const char *sc, unsigned timeout_ms, char **ret_state,
                           char ***ret_failed)
{
        _cleanup_strv_free_ char **lines = NULL, **failed = NULL;
        int r;

        r = systemctl(sc, "is-system-running", "--wait", NULL, NULL, timeout_ms, &lines);
        if (r < 0)
                return log_error_errno(r, "systemctl is-system-running: %m");
        *ret_state = strdup(lines && lines[0] ? lines[strv_length(lines) - 1] : "unknown");
        if (!*ret_state)
                return -ENOMEM;
        if (streq(*ret_state, "running"))
                return 0;
        lines = strv_free(lines);
        r = systemctl(sc, "list-units", "--state=failed", "--plain", "--no-legend",
                      SYSTEMCTL_TIMEOUT_MS, &lines);
        if (r >= 0)
                r = first_words(lines, &failed);
        if (r < 0)
                return log_error_errno(r, "systemctl list-units --state=failed: %m");
        *ret_failed = TAKE_PTR(failed);
        return 0;
}

/* "UNIT (STATE)" for each [boot_check] require_units unit that is not active. */
static int look_at_required(const char *sc, char *const *units, char ***ret)
{
        for (char *const *u = units; u && *u; u++) {
                _cleanup_strv_free_ char **lines = NULL;
                int r = systemctl(sc, "is-active", "--", *u, NULL, SYSTEMCTL_TIMEOUT_MS, &lines);

                if (r < 0)
                        return log_error_errno(r, "systemctl is-active %s: %m", *u);
                if (r != 0 &&
                    strv_pushf(ret, "%s (%s)", *u, lines && lines[0] ? lines[0] : "unknown") < 0)
                        return -ENOMEM;
        }
        return 0;
}

/* The local parts of `check`: NULL when they pass, else a message. */
static char *local_check(struct context *ctx)
{
        static const char *const phases[] = {"pre-image", "pre-freeze", "post-thaw", "post-image"};
        const struct aws_credentials *creds = NULL;
        int r;

        r = creds_provider_get(ctx->creds, &creds);
        if (r < 0)
                return strprintf("no AWS credentials: %s", strerror(-r));
        for (size_t i = 0; i < ELEMENTSOF(phases); i++) {
                struct hook_list l = {};
                char *why = NULL;

                r = hooks_list(ctx->config->hooks_dir, phases[i], 0, &l);
                if (r < 0)
                        why = strprintf("hooks of %s: %s", phases[i], strerror(-r));
                else if (l.dir_refusal || l.n_refused > 0)
                        why = strprintf("%zu hook(s) of %s refused%s%s", l.n_refused, phases[i],
                                        l.dir_refusal ? ": " : "", strempty(l.dir_refusal));
                hook_list_done(&l);
                if (why)
                        return why;
        }
        return NULL;
}

static int tag_myself(struct context *ctx, const char *report)
{
        const char *ids[] = {ctx->identity.instance_id, NULL};
        const struct ec2_tag tag = {TAG_BOOT_CHECK_RESULT, report};
        struct aws_error e = {};
        int r;

        r = context_open_ec2(ctx);
        if (r >= 0)
                r = ec2_create_tags(ctx->ec2, ids, &tag, 1, false, &e);
        if (r < 0)
                log_error_errno(r, "Boot check: cannot tag %s with the report: %s%s%m",
                                ctx->identity.instance_id, strempty(e.code), e.code ? ": " : "");
        aws_error_done(&e);
        return r;
}

int boot_check_report(struct context *ctx, const char *run_id, char **ret_report)
{
        _cleanup_strv_free_ char **failed = NULL, **inactive = NULL;
        _cleanup_free_ char *sc = NULL, *state = NULL, *local = NULL, *report = NULL;
        const char *search = getenv("PATH");
        unsigned wait_ms = ctx->config->boot_check_timeout_s * 1000u;
        int r;

        r = find_executable("systemctl", search && *search ? search : HOOK_PATH_ENV, &sc);
        if (r >= 0)
                r = look_at_systemd(sc, wait_ms, &state, &failed);
        if (r >= 0)
                r = look_at_required(sc, ctx->config->boot_check_require_units, &inactive);
        local = local_check(ctx);
        {
                struct boot_report_input in = {
                        .system_state = r < 0 ? "unknown (systemctl failed)" : state,
                        .failed_units = failed,
                        .inactive_units = inactive,
                        .local_check = local,
                };
                report = boot_report_verdict(&in);
        }
        if (!report)
                return -ENOMEM;
        log_notice("Boot check of run %s: %s", run_id, report);
        r = tag_myself(ctx, report);
        if (sc) {
                log_info("Boot check reported; powering off");
                (void)systemctl(sc, "poweroff", NULL, NULL, NULL, SYSTEMCTL_TIMEOUT_MS, NULL);
        }
        if (r < 0)
                return r;
        *ret_report = TAKE_PTR(report);
        return 0;
}
