/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Hooks: run each vetted hook of a phase (hooks_list.c finds and vets them) with its environment,
 * under supervision (supervise.c: a clean child, a deadline, its output logged, its end
 * described), map each end to a hook's result, and sum the phase up. See hooks.h for the policy.
 */
#include "host/hooks.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "host/hooks_list.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/str.h"

/* ---- a hook's result ---- */

const char *hook_status_to_string(enum hook_status s)
{
        static const char *const names[] = {
                [HOOK_SUCCESS] = "success", [HOOK_EXITED] = "exited",
                [HOOK_KILLED] = "killed",   [HOOK_TIMED_OUT] = "timed-out",
                [HOOK_REFUSED] = "refused", [HOOK_EXEC_FAILED] = "exec-failed",
        };
        return (unsigned)s < ELEMENTSOF(names) ? names[s] : "unknown";
}

int hook_result_errno(const struct hook_result *h)
{
        switch (h->status) {
        case HOOK_SUCCESS:
                return 0;
        case HOOK_REFUSED:
                return -EPERM;
        case HOOK_TIMED_OUT:
                return -ETIMEDOUT;
        case HOOK_EXEC_FAILED:
                return h->error < 0 ? h->error : -ENOEXEC;
        default:
                return -EPROTO;
        }
}

void hook_result_done(struct hook_result *h)
{
        free(h->name);
        free(h->path);
        free(h->message);
        strv_free(h->tail);
        *h = (struct hook_result){};
}

/* A supervised child's end in a hook's terms; takes the message and the tail. */
static void hook_result_take(struct hook_result *h, struct supervise_result *r)
{
        static const enum hook_status status[] = {
                [SUPERVISE_EXITED] = HOOK_EXITED,
                [SUPERVISE_SIGNALED] = HOOK_KILLED,
                [SUPERVISE_TIMED_OUT] = HOOK_TIMED_OUT,
                [SUPERVISE_NOT_STARTED] = HOOK_EXEC_FAILED,
                [SUPERVISE_NOT_EXECUTED] = HOOK_EXEC_FAILED,
                [SUPERVISE_LOST] = HOOK_EXEC_FAILED,
        };

        h->status = r->end == SUPERVISE_EXITED && r->code == 0 ? HOOK_SUCCESS : status[r->end];
        h->exit_status = r->end == SUPERVISE_EXITED ? r->code : 0;
        h->signal = r->signal;
        h->error = r->error;
        h->duration_usec = r->duration_usec;
        h->message = TAKE_PTR(r->message);
        h->tail = TAKE_PTR(r->tail);
        h->output_bytes = r->output_bytes;
        h->output_truncated = r->output_truncated;
        h->left_processes = r->left_processes;
}

/* Run a hook or a helper (kind) under supervision, its log lines and messages worded for it. */
static int run_supervised(const char *kind, const char *phase, char *const argv[], char **envp,
                          int exec_fd, unsigned timeout_ms, unsigned grace_ms,
                          struct hook_result *res)
{
        _cleanup_free_ char *label = strprintf("%s %s (%s)", kind, res->name, phase);
        _cleanup_free_ char *fields = strprintf("HOOK=%s\n", res->name);
        _cleanup_(supervise_result_done) struct supervise_result sr = {};
        const struct supervise_opts o = {
                .label = label,
                .name = res->name,
                .fields = fields,
                .path = res->path,
                .argv = argv,
                .envp = envp,
                .exec_fd = exec_fd,
                .timeout_ms = timeout_ms,
                .grace_ms = grace_ms,
        };
        int r;

        if (!label || !fields)
                return -ENOMEM;
        r = supervise_run(&o, &sr);
        if (r < 0)
                return r;
        hook_result_take(res, &sr);
        return 0;
}

int hook_run(const char *phase, char *const argv[], char **envp, int exec_fd, unsigned timeout_ms,
             unsigned grace_ms, struct hook_result *res)
{
        return run_supervised("hook", phase, argv, envp, exec_fd, timeout_ms, grace_ms, res);
}

/* ---- running one hook ---- */

char **hooks_build_env(const char *phase, const struct hook_env *env)
{
        _cleanup_strv_free_ char **v = NULL;
        const struct {
                const char *key, *value;
        } vars[] = {
                {"PATH", HOOK_PATH_ENV},
                {"LANG", "C.UTF-8"},
                {"EC2_IMAGED_PHASE", phase},
                {"EC2_IMAGED_RUN_ID", env->run_id},
                {"INSTANCE_ID", env->instance_id},
                {"REGION", env->region},
                {"IMAGE_NAME", env->image_name},
                {"IMAGE_ID", env->image_id},
                {"EC2_IMAGED_CONFIG",
                 env->config_path && env->config_path[0] == '/' ? env->config_path : NULL},
                {"EC2_IMAGED_MODE", env->mode == HOOKS_MODE_REBOOT ? "reboot" : "no-reboot"},
                {"EC2_IMAGED_DRY_RUN", env->dry_run ? "1" : NULL},
        };

        for (size_t i = 0; i < ELEMENTSOF(vars); i++) {
                _cleanup_free_ char *s = NULL;

                if (!vars[i].value || !vars[i].value[0])
                        continue;
                s = strprintf("%s=%s", vars[i].key, vars[i].value);
                if (!s || strv_push(&v, s) < 0)
                        return NULL;
        }
        return TAKE_PTR(v);
}

/* A hook that failed vetting (in dir, for reason): not run, its refusal recorded and logged. */
static void refuse(struct hook_result *h, const char *phase, const char *dir, const char *reason)
{
        _cleanup_free_ char *fields = strprintf("HOOK=%s\n", h->name);

        h->status = HOOK_REFUSED;
        h->message =
                strprintf("hook %s (%s) refused: %s/%s %s", h->name, phase, dir, h->name, reason);
        log_struct(LOG_ERR, fields, "%s", strna(h->message));
}

/*
 * Vet the hook once more, right before it runs (an earlier hook of the phase may have changed
 * things, and it is root's to do so), and execute the descriptor that vetting opened: the vetted
 * file, whatever its path names by then.
 */
static int run_one(const struct hooks_opts *o, const struct hook_list *l, const char *dir,
                   const struct hook_entry *e, const char *phase, char **envp,
                   struct hook_result *res)
{
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *reason = NULL;
        char *argv[] = {res->path, NULL};
        int r;

        r = hook_open_vetted(l->dir_fd, e->name, o->required_uid, &fd, &reason);
        if (r < 0)
                return r;
        if (reason) {
                refuse(res, phase, dir, reason);
                return 0;
        }
        return hook_run(phase, argv, envp, fd,
                        o->timeout_ms ? o->timeout_ms : HOOKS_DEFAULT_TIMEOUT_MS,
                        o->kill_grace_ms ? o->kill_grace_ms : HOOKS_DEFAULT_KILL_GRACE_MS, res);
}

int hooks_run_helper(const char *name, const char *purpose, char *const argv[], unsigned timeout_ms,
                     struct hook_result *ret)
{
        char *envp[] = {(char *)"PATH=" HOOK_PATH_ENV, (char *)"LANG=C.UTF-8", NULL};
        int r;

        *ret = (struct hook_result){};
        ret->name = hook_name_escape(name);
        ret->path = strdup(argv[0]);
        if (!ret->name || !ret->path)
                return -ENOMEM;
        r = run_supervised("helper", purpose, argv, envp, -1, timeout_ms,
                           HOOKS_DEFAULT_KILL_GRACE_MS, ret);
        return r < 0 ? r : hook_result_errno(ret);
}

/* ---- phases ---- */

void hooks_phase_result_done(struct hooks_phase_result *r)
{
        for (size_t i = 0; i < r->n_hooks; i++)
                hook_result_done(&r->hooks[i]);
        free(r->hooks);
        free(r->phase);
        free(r->dir);
        free(r->message);
        *r = (struct hooks_phase_result){};
}

static char *summarize(const struct hooks_phase_result *r)
{
        struct buf b = {.max = 8192};
        size_t k = 0;

        if (r->n_failed == 1)
                for (size_t i = 0; i < r->n_hooks; i++)
                        if (r->hooks[i].status != HOOK_SUCCESS)
                                return strdup(strna(r->hooks[i].message));
        (void)buf_printf(&b, "%zu hooks of phase %s failed:", r->n_failed, r->phase);
        for (size_t i = 0; i < r->n_hooks; i++)
                if (r->hooks[i].status != HOOK_SUCCESS)
                        (void)buf_printf(&b, "%s %s", k++ ? ";" : "", strna(r->hooks[i].message));
        return buf_steal(&b, NULL);
}

int hooks_run_phase(const struct hooks_opts *opts, const char *phase, const struct hook_env *env,
                    struct hooks_phase_result *ret)
{
        _cleanup_(hook_list_done) struct hook_list l = {};
        _cleanup_strv_free_ char **envp = NULL;
        bool refusing;
        int r, first = 0;

        *ret = (struct hooks_phase_result){};
        ret->phase = strdup(strempty(phase));
        if (!ret->phase)
                return -ENOMEM;
        if (!hooks_phase_is_valid(phase)) {
                ret->message = strprintf("unknown hook phase '%s'", strempty(phase));
                return -EINVAL;
        }
        r = hooks_list(opts->hooks_dir, phase, opts->required_uid, &l);
        if (r < 0) {
                ret->message = strprintf("cannot list hooks of phase %s in %s: %s", phase,
                                         opts->hooks_dir ? opts->hooks_dir : HOOKS_DEFAULT_DIR,
                                         strerror(-r));
                log_error("%s", strna(ret->message));
                return r;
        }
        ret->dir = TAKE_PTR(l.dir);
        if (l.dir_refusal) {
                ret->message = strprintf("hooks of phase %s refused: %s", phase, l.dir_refusal);
                log_error("%s", strna(ret->message));
                return -EPERM;
        }
        if (l.n_run + l.n_refused == 0)
                return 0;

        envp = hooks_build_env(phase, env);
        ret->hooks = calloc(l.n_run + l.n_refused, sizeof(struct hook_result));
        if (!envp || !ret->hooks)
                return -ENOMEM;

        /* Without continue_on_error, refusals stop the phase before anything runs: all of them
         * are recorded, so that the operator can fix them in one go. */
        refusing = l.n_refused > 0 && !opts->continue_on_error;
        for (size_t i = 0; i < l.n_entries; i++) {
                struct hook_entry *e = &l.entries[i];
                struct hook_result *h;

                if (e->state == HOOK_ENTRY_SKIPPED || (refusing && e->state == HOOK_ENTRY_RUN))
                        continue;
                if (ret->n_failed > 0 && !refusing && !opts->continue_on_error)
                        break;
                h = &ret->hooks[ret->n_hooks++];
                h->name = hook_name_escape(e->name);
                h->path = strdup(e->path);
                if (!h->name || !h->path)
                        return -ENOMEM;
                if (e->state == HOOK_ENTRY_REFUSED) {
                        refuse(h, phase, ret->dir, e->reason);
                } else {
                        r = run_one(opts, &l, ret->dir, e, phase, envp, h);
                        if (r < 0)
                                return r;
                }
                if (h->status != HOOK_SUCCESS) {
                        ret->n_failed++;
                        if (first == 0)
                                first = hook_result_errno(h);
                }
        }
        if (ret->n_failed > 0)
                ret->message = summarize(ret);
        return first;
}

/* A dry run only lists: hooks_list.c does it and words the result. */
int hooks_dry_run_phase(const struct hooks_opts *opts, const char *phase, char **ret_text)
{
        return hooks_list_dry_run(opts->hooks_dir, phase, opts->required_uid, ret_text);
}
