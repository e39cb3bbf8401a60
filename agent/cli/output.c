/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Results of the CLI's commands: built as one cJSON tree, printed as that tree (--json) or as the
 * text of its view. The text views read the tree and nothing else, so that the two forms cannot
 * say different things.
 */
#include "cli/output.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/command.h"
#include "core/state.h"
#include "util/log.h"
#include "util/macro.h"

void result_new(struct result *res, enum output_view view)
{
        result_take(res, view, cJSON_CreateObject());
}

void result_take(struct result *res, enum output_view view, cJSON *tree)
{
        *res = (struct result){.view = view, .tree = tree, .error = tree ? 0 : -ENOMEM};
}

void result_worker_answer(struct result *res, const char *answer)
{
        const char *end = NULL;
        cJSON *tree;

        answer = answer ? answer : "";
        /* One document and nothing after it but the newline: else it is passed on as it came. */
        tree = cJSON_ParseWithOpts(answer, &end, false);
        if (tree && end[strspn(end, " \t\r\n")] == '\0') {
                result_take(res, VIEW_WORKER, tree);
                return;
        }
        cJSON_Delete(tree);
        *res = (struct result){.view = VIEW_WORKER, .raw = answer};
}

void result_done(struct result *res)
{
        cJSON_Delete(res->tree);
        res->tree = NULL;
}

cJSON *result_add(struct result *res, cJSON *parent, const char *key, cJSON *item)
{
        bool added = item && parent &&
                     (cJSON_IsArray(parent) ? cJSON_AddItemToArray(parent, item)
                                            : key && cJSON_AddItemToObject(parent, key, item));

        if (!added) {
                cJSON_Delete(item);
                res->error = -ENOMEM;
                return NULL;
        }
        return item;
}

cJSON *result_add_str(struct result *res, cJSON *parent, const char *key, const char *value)
{
        return result_add(res, parent, key, value ? cJSON_CreateString(value) : cJSON_CreateNull());
}

cJSON *result_add_bool(struct result *res, cJSON *parent, const char *key, bool value)
{
        return result_add(res, parent, key, cJSON_CreateBool(value));
}

cJSON *result_add_array(struct result *res, cJSON *parent, const char *key)
{
        return result_add(res, parent, key, cJSON_CreateArray());
}

cJSON *result_add_object(struct result *res, cJSON *parent, const char *key)
{
        return result_add(res, parent, key, cJSON_CreateObject());
}

cJSON *result_add_strv(struct result *res, cJSON *parent, const char *key, char *const *v)
{
        cJSON *a = result_add_array(res, parent, key);

        for (char *const *s = v; a && s && *s; s++)
                result_add_str(res, a, NULL, *s);
        return a;
}

/* The JSON form: cJSON's formatted print of the tree and a newline. */
static int print_json(const cJSON *j, FILE *f)
{
        _cleanup_free_ char *text = cJSON_Print(j);

        if (!text)
                return -ENOMEM;
        fprintf(f, "%s\n", text);
        return 0;
}

/* --- the text views: each reads the tree of its result --- */

static const char *str(const cJSON *j, const char *key)
{
        return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, key));
}

static double num(const cJSON *j, const char *key, double missing)
{
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(j, key);

        return cJSON_IsNumber(n) ? n->valuedouble : missing;
}

static bool is_true(const cJSON *j, const char *key)
{
        return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, key));
}

static void text_whoami(const cJSON *j, FILE *f)
{
        const char *source = str(j, "credential_source"),
                   *expires = str(j, "credential_expiration");

        fprintf(f, "instance:    %s\n", strna(str(j, "instance_id")));
        fprintf(f, "region:      %s (%s)\n", strna(str(j, "region")),
                strna(str(j, "availability_zone")));
        fprintf(f, "account:     %s\n", strna(str(j, "account_id")));
        fprintf(f, "role:        %s\n", str(j, "role") ? str(j, "role") : "(none)");
        /* No source: no credentials at all, which is not the same as keys that never expire. */
        fprintf(f, "credentials: %s\n", source ? source : "(none)");
        fprintf(f, "expires:     %s\n", !source ? "-" : expires ? expires : "never");
}

/* A pre-flight item's result as the JSON names it and as the text's first column shows it. */
static const struct {
        const char *name;
        const char *label;
} check_results[] = {
        {"ok", "ok"},
        {"skipped", "skip"},
        {"failed", "FAIL"},
};

static const char *check_label(const char *name)
{
        for (size_t i = 0; i < ELEMENTSOF(check_results); i++)
                if (streq_ptr(name, check_results[i].name))
                        return check_results[i].label;
        return "?";
}

static void text_check(const cJSON *j, FILE *f)
{
        const cJSON *item;

        fprintf(f, "%-5s %-13s %s\n", "ok", "config", strna(str(j, "config")));
        cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(j, "checks"))
                fprintf(f, "%-5s %-13s %s\n", check_label(str(item, "result")),
                        strna(str(item, "name")), strna(str(item, "detail")));
        fprintf(f, "%s\n",
                is_true(j, "ok") ? "ready: this instance can be imaged"
                                 : "NOT READY: fix the first failed item above");
}

/* A run as run_state_to_json() describes it; the phases shown with their duration. */
static void text_run_state(const cJSON *r, FILE *f)
{
        static const enum run_phase timed[] = {PHASE_PREFLIGHT, PHASE_PRE_IMAGE, PHASE_PRE_FREEZE,
                                               PHASE_FREEZING,  PHASE_REBOOTING, PHASE_POST_THAW,
                                               PHASE_WAITING,   PHASE_POST_IMAGE};
        const cJSON *times = cJSON_GetObjectItemCaseSensitive(r, "phase_times");

        fprintf(f, "run:          %s (%s%s)\n", strna(str(r, "run_id")), strna(str(r, "mode")),
                is_true(r, "dry_run") ? ", dry run" : "");
        fprintf(f, "phase:        %s\n", strna(str(r, "phase")));
        fprintf(f, "image:        %s %s\n", strna(str(r, "image_id")), strna(str(r, "image_name")));
        fprintf(f, "state:        %s\n", strna(str(r, "image_state")));
        fprintf(f, "consistency:  %s\n", strna(str(r, "consistency")));
        if (num(r, "freeze_window_ms", -1) >= 0)
                fprintf(f, "freeze:       %ld ms (CreateImage call %ld ms)\n",
                        (long)num(r, "freeze_window_ms", -1), (long)num(r, "create_call_ms", -1));
        for (size_t i = 0; i < ELEMENTSOF(timed); i++) {
                const char *phase = run_phase_to_string(timed[i]);
                double ms = num(cJSON_GetObjectItemCaseSensitive(times, phase), "ms", -1);
                if (ms >= 0)
                        fprintf(f, "  %-11s %llu ms\n", phase, (unsigned long long)ms);
        }
        if (str(r, "error"))
                fprintf(f, "error:        %s\n", str(r, "error"));
}

static void text_run(const cJSON *j, FILE *f)
{
        const cJSON *line;

        cJSON_ArrayForEach(line, cJSON_GetObjectItemCaseSensitive(j, "dry_run_report"))
                fprintf(f, "%s\n", strempty(cJSON_GetStringValue(line)));
        text_run_state(j, f);
}

static void text_no_resume(const cJSON *j, FILE *f)
{
        const char *inherited = str(j, "inherited");

        if (inherited)
                fprintf(f,
                        "no unfinished run to resume (run %s came with the image of another "
                        "instance: filed as inherited)\n",
                        inherited);
        else
                fputs("no unfinished run to resume\n", f);
}

static void text_no_first_boot(const cJSON *j, FILE *f)
{
        fprintf(f, "no first-boot run: %s\n", strna(str(j, "reason")));
}

static void text_status(const cJSON *j, FILE *f)
{
        const cJSON *current = cJSON_GetObjectItemCaseSensitive(j, "current");
        const cJSON *last = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "history"), 0);

        if (cJSON_IsObject(current))
                text_run_state(current, f);
        else if (last)
                fprintf(f, "no run under way; last run %s: %s, image %s %s (%s)%s%s\n",
                        strna(str(last, "run_id")), strna(str(last, "result")),
                        strna(str(last, "image_id")), strna(str(last, "image_name")),
                        strna(str(last, "consistency")), str(last, "error") ? ": " : "",
                        strempty(str(last, "error")));
        else
                fputs("no run yet\n", f);
}

static void text_thawed(const cJSON *j, FILE *f)
{
        const cJSON *thawed = cJSON_GetObjectItemCaseSensitive(j, "thawed"), *m;

        cJSON_ArrayForEach(m, thawed) fprintf(f, "thawed %s\n", strempty(cJSON_GetStringValue(m)));
        if (cJSON_GetArraySize(thawed) == 0)
                fputs("nothing was frozen\n", f);
}

static void text_started(const cJSON *j, FILE *f)
{
        fputs("run started\n", f);
}

/* One line of the worker's run; an answer that is not a run is shown as it is. */
static void text_worker(const cJSON *j, FILE *f)
{
        const char *error = str(j, "error");

        if (!str(j, "run_id")) {
                (void)print_json(j, f);
                return;
        }
        fprintf(f, "run %s: %s, image %s%s%s\n", str(j, "run_id"), strna(str(j, "phase")),
                strna(str(j, "image_id")), error ? ": " : "", strempty(error));
}

static void text_grants(const cJSON *j, FILE *f)
{
        const cJSON *grants = cJSON_GetObjectItemCaseSensitive(j, "grants"), *g;

        if (cJSON_GetObjectItemCaseSensitive(j, "revoked"))
                fprintf(f, "revoked %ld expired grant(s)\n", (long)num(j, "revoked", 0));
        cJSON_ArrayForEach(g, grants)
        {
                fprintf(f, "%s %s on %s for %s in %s, image %s\n", strna(str(g, "state")),
                        strna(str(g, "grant_id")), strna(str(g, "key_arn")),
                        strna(str(g, "grantee")), strna(str(g, "region")),
                        strna(str(g, "image_id")));
                fprintf(f, "  created %s, expires %s\n", strna(str(g, "created")),
                        str(g, "expires") ? str(g, "expires") : "never");
        }
        if (cJSON_GetArraySize(grants) == 0)
                fputs("no grants recorded\n", f);
}

/* Per key, its statements as JSON, ready to add to the key policy's "Statement" list. */
static void text_kms_policy(const cJSON *j, FILE *f)
{
        const cJSON *k;

        cJSON_ArrayForEach(k, cJSON_GetObjectItemCaseSensitive(j, "keys"))
        {
                fprintf(f, "KMS key %s in %s, statements for its key policy:\n",
                        strna(str(k, "key")), strna(str(k, "region")));
                (void)print_json(cJSON_GetObjectItemCaseSensitive(k, "statements"), f);
        }
}

static void text_import(const cJSON *j, FILE *f)
{
        if (str(j, "error")) {
                fprintf(f, "import of %s failed: %s\n", strna(str(j, "source_image_id")),
                        str(j, "error"));
                return;
        }
        fprintf(f, "%s %s/%s from %s as %s in %s, encrypted with %s\n",
                cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "adopted")) ? "already imported"
                                                                             : "imported",
                strna(str(j, "source_account")), strna(str(j, "source_image_id")),
                strna(str(j, "source_region")), strna(str(j, "image_id")), strna(str(j, "region")),
                strna(str(j, "kms_key")));
        if (str(j, "launch_template"))
                fprintf(f, "launch template %s: default version %s\n", str(j, "launch_template"),
                        strna(str(j, "launch_template_version")));
        if (str(j, "ssm_parameter"))
                fprintf(f, "SSM parameter %s = %s\n", str(j, "ssm_parameter"),
                        strna(str(j, "image_id")));
}

static void (*const text_views[_VIEW_MAX])(const cJSON *j, FILE *f) = {
        [VIEW_WHOAMI] = text_whoami,
        [VIEW_CHECK] = text_check,
        [VIEW_RUN] = text_run,
        [VIEW_NO_RESUME] = text_no_resume,
        [VIEW_NO_FIRST_BOOT] = text_no_first_boot,
        [VIEW_STATUS] = text_status,
        [VIEW_THAWED] = text_thawed,
        [VIEW_STARTED] = text_started,
        [VIEW_WORKER] = text_worker,
        [VIEW_GRANTS] = text_grants,
        [VIEW_KMS_POLICY] = text_kms_policy,
        [VIEW_IMPORT] = text_import,
};

int output_print(const struct result *res, bool json, FILE *f)
{
        if (res->raw) {
                fputs(res->raw, f);
                return 0;
        }
        if (res->error < 0 || !res->tree)
                return -ENOMEM;
        if (json)
                return print_json(res->tree, f);
        text_views[res->view](res->tree, f);
        return 0;
}

int output_finish(struct result *res, bool json, int exit_code)
{
        int r = output_print(res, json, stdout);

        result_done(res);
        if (r < 0) {
                log_error_errno(r, "Cannot print the result: %m");
                return EXIT_FAILED;
        }
        return exit_code;
}
